/* ops_norm.c — GroupNorm (optionally fused with SiLU; float32 or bf16 output) and
 * BatchNorm on NHWC.
 *
 * Per-channel reductions read the tensor in memory order, in pixel chunks whose count
 * depends on the shape only, summed in double and combined in chunk order: results are
 * independent of the thread count (see red_chunks). */
#include <math.h>
#include <string.h>

#include "backend/cpu/bf16.h"
#include "backend/cpu/fastmath.h"
#include "backend/cpu/prefetch.h"
#include "backend/cpu/ops.h"

#define MAX_C 4096

/* Per-channel reductions over pixels (the statistics of both norms, the sums of their
 * backward passes) read the NHWC tensor in its memory order: the pixels are cut into
 * chunks, each work item sums one chunk into its own per-channel partials, and the
 * partials are added in chunk order. Whole pixel rows in order are one sequential
 * stream per work item, which the prefetch ahead (prefetch.h) follows (before 2026-12-03
 * a work item summed one 16-channel block, one cache line every C floats; alone, the
 * change to rows measured within noise; with the prefetch and dz kept (below) the norms
 * took 1.6x (forward) and 2.9x (backward) less time per training step:
 * bench/README.md "Training step on Sapphire Rapids"). The chunk count depends on the
 * shape only, never on the thread count, so results do not either. Partials live on the
 * stack: chunks x C <= RED_PART. */
#define RED_PART 4096
#define RED_CHUNKS 64

static int red_chunks(size_t p, int c) {
    int k = RED_PART / c;
    if (k > RED_CHUNKS) k = RED_CHUNKS;
    if (k < 1) k = 1;
    if ((size_t)k > p) k = (int)p;
    return k;
}

static size_t chunk_begin(size_t p, int chunks, int j) { return p * (size_t)j / (size_t)chunks; }

/* out[k] = sum over chunks j (in order) of part[j*c + k]. */
static void add_partials(const double *part, int chunks, int c, double *out) {
    for (int k = 0; k < c; k++) out[k] = 0;
    for (int j = 0; j < chunks; j++)
        for (int k = 0; k < c; k++) out[k] += part[(size_t)j * c + k];
}

/* sum[k] = sum over the p pixels of x[:, k]; sq likewise of x^2. */
static void channel_sums(const float *x, double *sum, double *sq, size_t p, int c) {
    double ps[RED_PART], pq[RED_PART];
    int chunks = red_chunks(p, c);
#pragma omp parallel for schedule(static)
    for (int j = 0; j < chunks; j++) {
        double *s = ps + (size_t)j * c, *q = pq + (size_t)j * c;
        for (int k = 0; k < c; k++) s[k] = 0, q[k] = 0;
        for (size_t i = chunk_begin(p, chunks, j); i < chunk_begin(p, chunks, j + 1); i++) {
            const float *v = x + i * c;
            dd_prefetch_ahead(v, x + p * c, (size_t)c, 0);
#pragma omp simd
            for (int k = 0; k < c; k++) {
                double d = v[k];
                s[k] += d;
                q[k] += d * d;
            }
        }
    }
    add_partials(ps, chunks, c, sum);
    add_partials(pq, chunks, c, sq);
}

static int gn_check(const char *op, int n, int hw, int c, int g, dd_error *err) {
    if (n <= 0 || hw <= 0 || c <= 0 || g <= 0 || c % g || c > MAX_C)
        return dd_fail(err, DD_E_INVALID, "%s: invalid shape N=%d HW=%d C=%d groups=%d (C must be a multiple of groups, C <= %d)",
                       op, n, hw, c, g, MAX_C);
    return DD_OK;
}

/* Statistics and the elementwise pass go one sample at a time so that every
 * temporary fits in fixed stack arrays (no allocation on the hot path). The output is
 * float32 (y) or, for a bf16 convolution that reads it next, bfloat16 (y16): the same
 * float32 values rounded as oneDNN's reorder would round them (bf16.h). */
static int groupnorm_forward(const float *x, const float *gamma, const float *beta, float *y,
                             uint16_t *y16, float *mean, float *rstd, int n, int hw, int c, int g,
                             float eps, int silu, const char *op, dd_error *err) {
    int rc = gn_check(op, n, hw, c, g, err);
    if (rc) return rc;
    double sum[MAX_C], sq[MAX_C];
    float scale[MAX_C], shift[MAX_C];
    int cg = c / g;
    double cnt = (double)hw * cg;
    for (int b = 0; b < n; b++) {
        const float *xb = x + (size_t)b * hw * c;
        channel_sums(xb, sum, sq, (size_t)hw, c);
        for (int gi = 0; gi < g; gi++) {
            double s = 0, q = 0;
            for (int k = gi * cg; k < (gi + 1) * cg; k++) s += sum[k], q += sq[k];
            double m = s / cnt, var = q / cnt - m * m;
            if (var < 0) var = 0;
            float r = (float)(1.0 / sqrt(var + eps));
            mean[b * g + gi] = (float)m;
            rstd[b * g + gi] = r;
            for (int k = gi * cg; k < (gi + 1) * cg; k++) {
                scale[k] = r * gamma[k];
                shift[k] = beta[k] - (float)m * scale[k];
            }
        }
        size_t base = (size_t)b * hw * c;
#pragma omp parallel for schedule(static)
        for (int p = 0; p < hw; p++) {
            const float *xv = xb + (size_t)p * c;
            float row[MAX_C]; /* a bf16 output's float32 values, rounded below */
            float *yv = y16 ? row : y + base + (size_t)p * c;
            dd_prefetch_ahead(xv, xb + (size_t)hw * c, (size_t)c, 0);
            if (!y16) dd_prefetch_ahead(yv, y + base + (size_t)hw * c, (size_t)c, 1);
            for (int k = 0; k < c; k++) yv[k] = xv[k] * scale[k] + shift[k];
            /* the row is in L1: a second pass is cheap; a bf16 output takes the SiLU
             * whose error is far below its rounding (fastmath.h) */
            if (silu && y16) dd_silu_array_bf16out(yv, yv, c);
            else if (silu) dd_silu_array(yv, yv, c);
            if (y16) dd_bf16_store(y16 + base + (size_t)p * c, row, c);
        }
    }
    return DD_OK;
}

int dd_groupnorm_forward(const float *x, const float *gamma, const float *beta, float *y,
                         float *mean, float *rstd, int n, int hw, int c, int g, float eps, int silu,
                         dd_error *err) {
    return groupnorm_forward(x, gamma, beta, y, NULL, mean, rstd, n, hw, c, g, eps, silu,
                             "groupnorm forward", err);
}

int dd_groupnorm_forward_bf16(const float *x, const float *gamma, const float *beta, uint16_t *y,
                              float *mean, float *rstd, int n, int hw, int c, int g, float eps,
                              int silu, dd_error *err) {
    return groupnorm_forward(x, gamma, beta, NULL, y, mean, rstd, n, hw, c, g, eps, silu,
                             "groupnorm forward (bf16 output)", err);
}

/* sg[k] = silu'(z[k]) of one pixel's row, z = xhat * gamma + beta with xhat = (x - mean) *
 * rstd: the operations of the backward's loops in their order, so the same bits. */
static void silu_grad_row(float *sg, const float *xv, const float *mc, const float *rs,
                          const float *gamma, const float *beta, int c) {
    for (int k = 0; k < c; k++) sg[k] = ((xv[k] - mc[k]) * rs[k]) * gamma[k] + beta[k];
    dd_silu_grad_array(sg, sg, c);
}

int dd_groupnorm_backward(const float *x, const float *gamma, const float *beta,
                          const float *mean, const float *rstd, const float *dy, float *dx,
                          float *dgamma, float *dbeta, int n, int hw, int c, int g, int silu,
                          int acc, dd_error *err) {
    int rc = gn_check("groupnorm backward", n, hw, c, g, err);
    if (rc) return rc;
    double sdz[MAX_C], sdzx[MAX_C]; /* per channel: sum dz, sum dz * xhat */
    float gm[MAX_C], gmx[MAX_C];    /* per channel's group: mean gamma*dz, mean gamma*dz*xhat */
    float mc[MAX_C], rc_[MAX_C];    /* per channel: its group's mean and 1/std */
    int cg = c / g;
    double cnt = (double)hw * cg;
    /* Pass 1 keeps dz in dx when dx is not accumulated into, so that pass 2 need not
     * evaluate the SiLU gradient (an exp and a division per value) a second time;
     * the same float dz either way, so the result is the same bits. */
    int dz_in_dx = silu && !acc;
    for (int b = 0; b < n; b++) {
        size_t base = (size_t)b * hw * c;
        for (int k = 0; k < c; k++) mc[k] = mean[b * g + k / cg], rc_[k] = rstd[b * g + k / cg];
        /* Pass 1: dz = dy * silu'(z) (or dy); per-channel sums of dz and dz*xhat. */
        double ps[RED_PART], px[RED_PART];
        int chunks = red_chunks((size_t)hw, c);
#pragma omp parallel for schedule(static)
        for (int j = 0; j < chunks; j++) {
            double *s = ps + (size_t)j * c, *sx = px + (size_t)j * c;
            float sg[MAX_C]; /* silu'(z) of the pixel's row */
            for (int k = 0; k < c; k++) s[k] = 0, sx[k] = 0;
            for (size_t i = chunk_begin((size_t)hw, chunks, j); i < chunk_begin((size_t)hw, chunks, j + 1); i++) {
                const float *xv = x + base + i * c, *gv = dy + base + i * c;
                dd_prefetch_ahead(xv, x + base + (size_t)hw * c, (size_t)c, 0);
                dd_prefetch_ahead(gv, dy + base + (size_t)hw * c, (size_t)c, 0);
                if (silu) silu_grad_row(sg, xv, mc, rc_, gamma, beta, c);
                if (dz_in_dx) {
                    float *dzv = dx + base + i * c;
#pragma omp simd
                    for (int k = 0; k < c; k++) {
                        float xh = (xv[k] - mc[k]) * rc_[k];
                        float dz = gv[k] * sg[k];
                        s[k] += dz;
                        sx[k] += dz * xh;
                        dzv[k] = dz;
                    }
                } else if (silu) {
#pragma omp simd
                    for (int k = 0; k < c; k++) {
                        float xh = (xv[k] - mc[k]) * rc_[k];
                        float dz = gv[k] * sg[k];
                        s[k] += dz;
                        sx[k] += dz * xh;
                    }
                } else {
#pragma omp simd
                    for (int k = 0; k < c; k++) {
                        s[k] += gv[k];
                        sx[k] += gv[k] * ((xv[k] - mc[k]) * rc_[k]);
                    }
                }
            }
        }
        add_partials(ps, chunks, c, sdz);
        add_partials(px, chunks, c, sdzx);
        for (int k = 0; k < c; k++) {
            if (dgamma) dgamma[k] += (float)sdzx[k];
            if (dbeta) dbeta[k] += (float)sdz[k];
        }
        for (int gi = 0; gi < g; gi++) {
            double a = 0, bb = 0;
            for (int k = gi * cg; k < (gi + 1) * cg; k++) a += gamma[k] * sdz[k], bb += gamma[k] * sdzx[k];
            for (int k = gi * cg; k < (gi + 1) * cg; k++) gm[k] = (float)(a / cnt), gmx[k] = (float)(bb / cnt);
        }
        /* Pass 2: dx = rstd * (gamma*dz - mean(gamma*dz) - xhat * mean(gamma*dz*xhat)). */
#pragma omp parallel for schedule(static)
        for (int p = 0; p < hw; p++) {
            size_t o = base + (size_t)p * c;
            const float *xv = x + o, *gv = dy + o;
            float *dv = dx + o;
            size_t end = base + (size_t)hw * c;
            dd_prefetch_ahead(xv, x + end, (size_t)c, 0);
            if (!dz_in_dx) dd_prefetch_ahead(gv, dy + end, (size_t)c, 0);
            dd_prefetch_ahead(dv, dx + end, (size_t)c, 1);
            if (dz_in_dx) {
#pragma omp simd
                for (int k = 0; k < c; k++) {
                    float xh = (xv[k] - mc[k]) * rc_[k];
                    dv[k] = rc_[k] * (gamma[k] * dv[k] - gm[k] - xh * gmx[k]);
                }
            } else if (silu) {
                float sg[MAX_C];
                silu_grad_row(sg, xv, mc, rc_, gamma, beta, c);
#pragma omp simd
                for (int k = 0; k < c; k++) {
                    float xh = (xv[k] - mc[k]) * rc_[k];
                    float dz = gv[k] * sg[k];
                    float v = rc_[k] * (gamma[k] * dz - gm[k] - xh * gmx[k]);
                    dv[k] = acc ? dv[k] + v : v;
                }
            } else {
#pragma omp simd
                for (int k = 0; k < c; k++) {
                    float xh = (xv[k] - mc[k]) * rc_[k];
                    float v = rc_[k] * (gamma[k] * gv[k] - gm[k] - xh * gmx[k]);
                    dv[k] = acc ? dv[k] + v : v;
                }
            }
        }
    }
    return DD_OK;
}

int dd_batchnorm_forward(const float *x, const float *gamma, const float *beta, float *run_mean,
                         float *run_var, float *y, float *mean, float *rstd, size_t p, int c,
                         float eps, float momentum, int training, dd_error *err) {
    return dd_batchnorm_forward_red(x, gamma, beta, run_mean, run_var, y, mean, rstd, p, c, eps, momentum,
                                    training, NULL, err);
}

int dd_batchnorm_forward_red(const float *x, const float *gamma, const float *beta, float *run_mean,
                             float *run_var, float *y, float *mean, float *rstd, size_t p, int c,
                             float eps, float momentum, int training, const dd_reducer *red, dd_error *err) {
    if (p == 0 || c <= 0 || c > MAX_C)
        return dd_fail(err, DD_E_INVALID, "batchnorm forward: invalid shape P=%zu C=%d", p, c);
    if (training && p < 2 && !red)
        return dd_fail(err, DD_E_INVALID, "batchnorm forward: training needs more than one value per channel (P=%zu)", p);
    float scale[MAX_C], shift[MAX_C];
    if (training) {
        double sum[2 * MAX_C + 1];
        channel_sums(x, sum, sum + c, p, c);
        double np = (double)p;
        if (red) { /* the global batch's sums and count */
            sum[2 * c] = np;
            int rc = red->sum_f64(red->ctx, sum, 2 * (size_t)c + 1, err);
            if (rc) return rc;
            np = sum[2 * c];
        }
        for (int k = 0; k < c; k++) {
            double m = sum[k] / np, var = sum[c + k] / np - m * m;
            if (var < 0) var = 0;
            mean[k] = (float)m;
            rstd[k] = (float)(1.0 / sqrt(var + eps));
            if (run_mean) run_mean[k] = (float)((1.0 - momentum) * run_mean[k] + momentum * m);
            if (run_var)
                run_var[k] = (float)((1.0 - momentum) * run_var[k] + momentum * var * np / (np - 1));
            scale[k] = rstd[k] * gamma[k];
            shift[k] = beta[k] - mean[k] * scale[k];
        }
    } else {
        for (int k = 0; k < c; k++) {
            float r = 1.0f / sqrtf(run_var[k] + eps);
            scale[k] = r * gamma[k];
            shift[k] = beta[k] - run_mean[k] * scale[k];
        }
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < p; i++)
        for (int k = 0; k < c; k++) y[i * c + k] = x[i * c + k] * scale[k] + shift[k];
    return DD_OK;
}

int dd_batchnorm_backward(const float *x, const float *gamma, const float *mean,
                          const float *rstd, const float *dy, float *dx, float *dgamma,
                          float *dbeta, size_t p, int c, int acc, dd_error *err) {
    return dd_batchnorm_backward_red(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, p, c, acc, NULL, err);
}

int dd_batchnorm_backward_red(const float *x, const float *gamma, const float *mean,
                              const float *rstd, const float *dy, float *dx, float *dgamma,
                              float *dbeta, size_t p, int c, int acc, const dd_reducer *red, dd_error *err) {
    if (p == 0 || c <= 0 || c > MAX_C)
        return dd_fail(err, DD_E_INVALID, "batchnorm backward: invalid shape P=%zu C=%d", p, c);
    double sdz[MAX_C], sdzx[MAX_C];
    {
        double ps[RED_PART], px[RED_PART];
        int chunks = red_chunks(p, c);
#pragma omp parallel for schedule(static)
        for (int j = 0; j < chunks; j++) {
            double *s = ps + (size_t)j * c, *sx = px + (size_t)j * c;
            for (int k = 0; k < c; k++) s[k] = 0, sx[k] = 0;
            for (size_t i = chunk_begin(p, chunks, j); i < chunk_begin(p, chunks, j + 1); i++) {
                const float *g = dy + i * c, *xv = x + i * c;
#pragma omp simd
                for (int k = 0; k < c; k++) {
                    s[k] += g[k];
                    sx[k] += (double)g[k] * (xv[k] - mean[k]) * rstd[k];
                }
            }
        }
        add_partials(ps, chunks, c, sdz);
        add_partials(px, chunks, c, sdzx);
    }
    float a[MAX_C], mb[MAX_C], mbx[MAX_C];
    for (int k = 0; k < c; k++) {
        if (dgamma) dgamma[k] += (float)sdzx[k];
        if (dbeta) dbeta[k] += (float)sdz[k];
    }
    double np = (double)p;
    if (red) { /* the means below are over the global batch */
        double v[2 * MAX_C + 1];
        memcpy(v, sdz, sizeof(double) * (size_t)c);
        memcpy(v + c, sdzx, sizeof(double) * (size_t)c);
        v[2 * c] = np;
        int rc = red->sum_f64(red->ctx, v, 2 * (size_t)c + 1, err);
        if (rc) return rc;
        memcpy(sdz, v, sizeof(double) * (size_t)c);
        memcpy(sdzx, v + c, sizeof(double) * (size_t)c);
        np = v[2 * c];
    }
    for (int k = 0; k < c; k++) {
        a[k] = gamma[k] * rstd[k];
        mb[k] = (float)(sdz[k] / np);
        mbx[k] = (float)(sdzx[k] / np);
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < p; i++)
        for (int k = 0; k < c; k++) {
            float xh = (x[i * c + k] - mean[k]) * rstd[k];
            float v = a[k] * (dy[i * c + k] - mb[k] - xh * mbx[k]);
            if (acc) dx[i * c + k] += v;
            else dx[i * c + k] = v;
        }
    return DD_OK;
}
