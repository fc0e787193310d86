/* ops_norm.c — GroupNorm (optionally fused with SiLU; float32 or bf16 output) and
 * BatchNorm on NHWC.
 *
 * Per-channel reductions run over blocks of 16 channels: each work item sums one
 * (sample, channel block) over all pixels in a fixed order (four interleaved partial
 * sums, see PU), in double. The result is therefore independent of the thread count,
 * and reading 16 contiguous floats per pixel keeps whole cache lines in use. */
#include <math.h>
#include <string.h>

#include "backend/cpu/bf16.h"
#include "backend/cpu/fastmath.h"
#include "backend/cpu/ops.h"

#define CB 16
#define MAX_C 4096

/* Pixels per iteration of the per-block reductions: four independent accumulator
 * sets keep the adds (and, in the backward, the SiLU gradients) of four pixels in
 * flight instead of one dependent chain per pixel (measured 1.3-1.5x on the backward
 * reduction; bench/README.md). The order of the sums is fixed, so results stay
 * independent of the thread count. */
#define PU 4

/* sums[b*c + k] = sum over pixels of x[b, :, k]; sq likewise of x^2. */
static void channel_sums(const float *x, double *sum, double *sq, int n, size_t hw, int c) {
    int nblk = (c + CB - 1) / CB;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < n; b++)
        for (int blk = 0; blk < nblk; blk++) {
            int k0 = blk * CB, kn = (k0 + CB < c ? k0 + CB : c) - k0;
            double s[PU][CB] = {{0}}, q[PU][CB] = {{0}};
            const float *base = x + (size_t)b * hw * c + k0;
            size_t p = 0;
            if (kn == CB)
                for (; p + PU <= hw; p += PU)
                    for (int u = 0; u < PU; u++) {
                        const float *v = base + (p + u) * c;
#pragma omp simd
                        for (int k = 0; k < CB; k++) {
                            double d = v[k];
                            s[u][k] += d;
                            q[u][k] += d * d;
                        }
                    }
            for (; p < hw; p++) {
                const float *v = base + p * c;
                for (int k = 0; k < kn; k++) {
                    double d = v[k];
                    s[0][k] += d;
                    q[0][k] += d * d;
                }
            }
            for (int k = 0; k < kn; k++) {
                double ts = 0, tq = 0;
                for (int u = 0; u < PU; u++) ts += s[u][k], tq += q[u][k];
                sum[(size_t)b * c + k0 + k] = ts;
                sq[(size_t)b * c + k0 + k] = tq;
            }
        }
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
        channel_sums(xb, sum, sq, 1, (size_t)hw, c);
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
            if (silu)
                for (int k = 0; k < c; k++) yv[k] = dd_siluf(xv[k] * scale[k] + shift[k]);
            else
                for (int k = 0; k < c; k++) yv[k] = xv[k] * scale[k] + shift[k];
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
    int nblk = (c + CB - 1) / CB;
    double cnt = (double)hw * cg;
    for (int b = 0; b < n; b++) {
        size_t base = (size_t)b * hw * c;
        for (int k = 0; k < c; k++) mc[k] = mean[b * g + k / cg], rc_[k] = rstd[b * g + k / cg];
        /* Pass 1: dz = dy * silu'(z) (or dy); per-channel sums of dz and dz*xhat,
         * one block of 16 channels per work item, pixels in order. */
#pragma omp parallel for schedule(static)
        for (int blk = 0; blk < nblk; blk++) {
            int k0 = blk * CB, kn = (k0 + CB < c ? k0 + CB : c) - k0;
            double s[CB] = {0}, sx[CB] = {0};
            float m[CB] = {0}, r[CB] = {0}, ga[CB] = {0}, be[CB] = {0};
            for (int k = 0; k < kn; k++) m[k] = mc[k0 + k], r[k] = rc_[k0 + k], ga[k] = gamma[k0 + k], be[k] = beta[k0 + k];
            int p = 0;
            if (kn == CB) {
                double as[PU][CB] = {{0}}, ax[PU][CB] = {{0}};
                for (; p + PU <= hw; p += PU) {
                    float fs[PU][CB], fx[PU][CB];
                    for (int u = 0; u < PU; u++) {
                        const float *xv = x + base + (size_t)(p + u) * c + k0, *gv = dy + base + (size_t)(p + u) * c + k0;
                        if (silu) {
#pragma omp simd
                            for (int k = 0; k < CB; k++) {
                                float xh = (xv[k] - m[k]) * r[k];
                                float dz = gv[k] * dd_silu_grad(xh * ga[k] + be[k]);
                                fs[u][k] = dz;
                                fx[u][k] = dz * xh;
                            }
                        } else {
#pragma omp simd
                            for (int k = 0; k < CB; k++) {
                                fs[u][k] = gv[k];
                                fx[u][k] = gv[k] * ((xv[k] - m[k]) * r[k]);
                            }
                        }
                    }
                    for (int u = 0; u < PU; u++)
                        for (int k = 0; k < CB; k++) as[u][k] += fs[u][k], ax[u][k] += fx[u][k];
                }
                for (int u = 0; u < PU; u++)
                    for (int k = 0; k < CB; k++) s[k] += as[u][k], sx[k] += ax[u][k];
            }
            for (; p < hw; p++)
                for (int k = 0; k < kn; k++) {
                    size_t o = base + (size_t)p * c + k0 + k;
                    float xh = (x[o] - m[k]) * r[k];
                    float dz = silu ? dy[o] * dd_silu_grad(xh * ga[k] + be[k]) : dy[o];
                    s[k] += dz;
                    sx[k] += (double)(dz * xh);
                }
            for (int k = 0; k < kn; k++) sdz[k0 + k] = s[k], sdzx[k0 + k] = sx[k];
        }
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
            if (silu) {
#pragma omp simd
                for (int k = 0; k < c; k++) {
                    float xh = (xv[k] - mc[k]) * rc_[k];
                    float dz = gv[k] * dd_silu_grad(xh * gamma[k] + beta[k]);
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
        channel_sums(x, sum, sum + c, 1, p, c);
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
    int nblk = (c + CB - 1) / CB;
    double sdz[MAX_C], sdzx[MAX_C];
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        int k0 = blk * CB, kn = (k0 + CB < c ? k0 + CB : c) - k0;
        double s[CB] = {0}, sx[CB] = {0};
        for (size_t i = 0; i < p; i++)
            for (int k = 0; k < kn; k++) {
                float g = dy[i * c + k0 + k];
                s[k] += g;
                sx[k] += (double)g * (x[i * c + k0 + k] - mean[k0 + k]) * rstd[k0 + k];
            }
        for (int k = 0; k < kn; k++) sdz[k0 + k] = s[k], sdzx[k0 + k] = sx[k];
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
