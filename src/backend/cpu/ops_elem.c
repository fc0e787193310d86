/* ops_elem.c — elementwise activations, residual and broadcast adds, channel
 * concat, 2x2 pooling and 2x upsampling (see ops.h for the conventions). */
#include <math.h>
#include <string.h>

#include "backend/cpu/fastmath.h"
#include "backend/cpu/ops.h"

#define SET_OR_ADD(dst, v, acc) ((acc) ? ((dst) += (v)) : ((dst) = (v)))

void dd_silu_forward(const float *x, float *y, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = dd_siluf(x[i]);
}

void dd_silu_backward(const float *x, const float *dy, float *dx, size_t n, int acc) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = dy[i] * dd_silu_grad(x[i]);
        SET_OR_ADD(dx[i], g, acc);
    }
}

void dd_relu_forward(const float *x, float *y, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void dd_relu_backward(const float *y, const float *dy, float *dx, size_t n, int acc) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = y[i] > 0.0f ? dy[i] : 0.0f;
        SET_OR_ADD(dx[i], g, acc);
    }
}

void dd_sigmoid_forward(const float *x, float *y, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = dd_sigmoidf(x[i]);
}

void dd_sigmoid_backward(const float *y, const float *dy, float *dx, size_t n, int acc) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = dy[i] * y[i] * (1.0f - y[i]);
        SET_OR_ADD(dx[i], g, acc);
    }
}

void dd_add_forward(const float *a, const float *b, float *y, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void dd_copy_grad(const float *dy, float *dx, size_t n, int acc) {
    if (!acc) {
        if (dx != dy) memcpy(dx, dy, n * sizeof *dx);
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dx[i] += dy[i];
}

void dd_add_scalar(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++) x[i] += v;
}

void dd_add_bcast_forward(float *y, const float *b, int n, size_t hw, int c) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int s = 0; s < n; s++)
        for (size_t q = 0; q < hw; q++) {
            float *yv = y + ((size_t)s * hw + q) * c;
            const float *bv = b + (size_t)s * c;
            for (int k = 0; k < c; k++) yv[k] += bv[k];
        }
}

void dd_add_bcast_backward(const float *dy, float *db, int n, size_t hw, int c) {
    for (int s = 0; s < n; s++) {
        float *d = db + (size_t)s * c;
        for (int k = 0; k < c; k++) d[k] = 0.0f;
        for (size_t q = 0; q < hw; q++) {
            const float *g = dy + ((size_t)s * hw + q) * c;
            for (int k = 0; k < c; k++) d[k] += g[k];
        }
    }
}

void dd_concat_forward(const float *a, int ca, const float *b, int cb, float *y, size_t p) {
    int c = ca + cb;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < p; i++) {
        memcpy(y + i * c, a + i * ca, (size_t)ca * sizeof *y);
        memcpy(y + i * c + ca, b + i * cb, (size_t)cb * sizeof *y);
    }
}

void dd_concat_backward(const float *dy, float *da, int ca, float *db, int cb, size_t p, int acc_a,
                        int acc_b) {
    int c = ca + cb;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < p; i++) {
        const float *g = dy + i * c;
        if (da)
            for (int k = 0; k < ca; k++) SET_OR_ADD(da[i * ca + k], g[k], acc_a);
        if (db)
            for (int k = 0; k < cb; k++) SET_OR_ADD(db[i * cb + k], g[ca + k], acc_b);
    }
}

static int check_pool(const char *op, int n, int h, int w, int c, dd_error *err) {
    if (n <= 0 || h <= 0 || w <= 0 || c <= 0 || (h & 1) || (w & 1))
        return dd_fail(err, DD_E_INVALID, "%s: needs a non-empty input with even H and W, got N=%d H=%d W=%d C=%d",
                       op, n, h, w, c);
    return DD_OK;
}

/* y[n,i,j,:] = mean of x[n, 2i..2i+1, 2j..2j+1, :]. */
int dd_avgpool2_forward(const float *x, float *y, int n, int h, int w, int c, dd_error *err) {
    int rc = check_pool("avgpool2 forward", n, h, w, c, err);
    if (rc) return rc;
    int ho = h / 2, wo = w / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < n; b++)
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++) {
                const float *x00 = x + (((size_t)b * h + 2 * i) * w + 2 * j) * c;
                const float *x10 = x00 + (size_t)w * c;
                float *o = y + (((size_t)b * ho + i) * wo + j) * c;
                for (int k = 0; k < c; k++) o[k] = 0.25f * (x00[k] + x00[c + k] + x10[k] + x10[c + k]);
            }
    return DD_OK;
}

int dd_avgpool2_backward(const float *dy, float *dx, int n, int h, int w, int c, int acc,
                         dd_error *err) {
    int rc = check_pool("avgpool2 backward", n, h, w, c, err);
    if (rc) return rc;
    int ho = h / 2, wo = w / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < n; b++)
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++) {
                const float *g = dy + (((size_t)b * ho + i) * wo + j) * c;
                float *d00 = dx + (((size_t)b * h + 2 * i) * w + 2 * j) * c;
                float *d10 = d00 + (size_t)w * c;
                for (int k = 0; k < c; k++) {
                    float v = 0.25f * g[k];
                    SET_OR_ADD(d00[k], v, acc);
                    SET_OR_ADD(d00[c + k], v, acc);
                    SET_OR_ADD(d10[k], v, acc);
                    SET_OR_ADD(d10[c + k], v, acc);
                }
            }
    return DD_OK;
}

int dd_maxpool2_forward(const float *x, float *y, int n, int h, int w, int c, dd_error *err) {
    int rc = check_pool("maxpool2 forward", n, h, w, c, err);
    if (rc) return rc;
    int ho = h / 2, wo = w / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < n; b++)
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++) {
                const float *x00 = x + (((size_t)b * h + 2 * i) * w + 2 * j) * c;
                const float *x10 = x00 + (size_t)w * c;
                float *o = y + (((size_t)b * ho + i) * wo + j) * c;
                for (int k = 0; k < c; k++) {
                    float m = x00[k];
                    if (x00[c + k] > m) m = x00[c + k];
                    if (x10[k] > m) m = x10[k];
                    if (x10[c + k] > m) m = x10[c + k];
                    o[k] = m;
                }
            }
    return DD_OK;
}

int dd_maxpool2_backward(const float *x, const float *dy, float *dx, int n, int h, int w, int c,
                         int acc, dd_error *err) {
    int rc = check_pool("maxpool2 backward", n, h, w, c, err);
    if (rc) return rc;
    int ho = h / 2, wo = w / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < n; b++)
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++) {
                const float *x00 = x + (((size_t)b * h + 2 * i) * w + 2 * j) * c;
                const float *x10 = x00 + (size_t)w * c;
                const float *g = dy + (((size_t)b * ho + i) * wo + j) * c;
                float *d00 = dx + (((size_t)b * h + 2 * i) * w + 2 * j) * c;
                float *d10 = d00 + (size_t)w * c;
                for (int k = 0; k < c; k++) {
                    /* First maximum in row-major window order, as PyTorch. */
                    int arg = 0;
                    float m = x00[k];
                    if (x00[c + k] > m) m = x00[c + k], arg = 1;
                    if (x10[k] > m) m = x10[k], arg = 2;
                    if (x10[c + k] > m) arg = 3;
                    float v[4] = {0, 0, 0, 0};
                    v[arg] = g[k];
                    SET_OR_ADD(d00[k], v[0], acc);
                    SET_OR_ADD(d00[c + k], v[1], acc);
                    SET_OR_ADD(d10[k], v[2], acc);
                    SET_OR_ADD(d10[c + k], v[3], acc);
                }
            }
    return DD_OK;
}

/* y[n, 2i+a, 2j+b, :] = x[n, i, j, :]. */
void dd_upnearest2_forward(const float *x, float *y, int n, int h, int w, int c) {
    int ho = 2 * h, wo = 2 * w;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < n; b++)
        for (int i = 0; i < ho; i++) {
            const float *src = x + ((size_t)b * h + i / 2) * w * c;
            float *dst = y + ((size_t)b * ho + i) * wo * c;
            for (int j = 0; j < wo; j++) memcpy(dst + (size_t)j * c, src + (size_t)(j / 2) * c, (size_t)c * sizeof *y);
        }
}

void dd_upnearest2_backward(const float *dy, float *dx, int n, int h, int w, int c, int acc) {
    int wo = 2 * w;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < n; b++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) {
                const float *g00 = dy + (((size_t)b * 2 * h + 2 * i) * wo + 2 * j) * c;
                const float *g10 = g00 + (size_t)wo * c;
                float *d = dx + (((size_t)b * h + i) * w + j) * c;
                for (int k = 0; k < c; k++) {
                    float v = (g00[k] + g00[c + k]) + (g10[k] + g10[c + k]);
                    SET_OR_ADD(d[k], v, acc);
                }
            }
}

/* align_corners = true: output o maps to input o * (in-1)/(out-1). */
static void lerp_coord(int o, int in, int out, int *i0, int *i1, float *f) {
    float scale = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    float s = (float)o * scale;
    int a = (int)s;
    if (a > in - 1) a = in - 1;
    *i0 = a;
    *i1 = a + 1 < in ? a + 1 : in - 1;
    *f = s - (float)a;
}

void dd_upbilinear2_forward(const float *x, float *y, int n, int h, int w, int c) {
    int ho = 2 * h, wo = 2 * w;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < n; b++)
        for (int i = 0; i < ho; i++) {
            int y0, y1;
            float fy;
            lerp_coord(i, h, ho, &y0, &y1, &fy);
            const float *r0 = x + ((size_t)b * h + y0) * w * c;
            const float *r1 = x + ((size_t)b * h + y1) * w * c;
            float *dst = y + ((size_t)b * ho + i) * wo * c;
            for (int j = 0; j < wo; j++) {
                int x0, x1;
                float fx;
                lerp_coord(j, w, wo, &x0, &x1, &fx);
                const float *a = r0 + (size_t)x0 * c, *bb = r0 + (size_t)x1 * c;
                const float *cc = r1 + (size_t)x0 * c, *d = r1 + (size_t)x1 * c;
                float w00 = (1 - fy) * (1 - fx), w01 = (1 - fy) * fx, w10 = fy * (1 - fx), w11 = fy * fx;
                float *o = dst + (size_t)j * c;
                for (int k = 0; k < c; k++) o[k] = w00 * a[k] + w01 * bb[k] + w10 * cc[k] + w11 * d[k];
            }
        }
}

/* Scatter form; each thread owns a block of channels of one sample, so no two
 * threads write the same dx element and the summation order is fixed. */
void dd_upbilinear2_backward(const float *dy, float *dx, int n, int h, int w, int c, int acc) {
    int ho = 2 * h, wo = 2 * w;
    const int CB = 16;
    int nblk = (c + CB - 1) / CB;
    if (!acc) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < (size_t)n * h * w * c; i++) dx[i] = 0.0f;
    }
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < n; b++)
        for (int blk = 0; blk < nblk; blk++) {
            int k0 = blk * CB, k1 = k0 + CB < c ? k0 + CB : c;
            for (int i = 0; i < ho; i++) {
                int y0, y1;
                float fy;
                lerp_coord(i, h, ho, &y0, &y1, &fy);
                float *r0 = dx + ((size_t)b * h + y0) * w * c;
                float *r1 = dx + ((size_t)b * h + y1) * w * c;
                const float *src = dy + ((size_t)b * ho + i) * wo * c;
                for (int j = 0; j < wo; j++) {
                    int x0, x1;
                    float fx;
                    lerp_coord(j, w, wo, &x0, &x1, &fx);
                    float w00 = (1 - fy) * (1 - fx), w01 = (1 - fy) * fx, w10 = fy * (1 - fx), w11 = fy * fx;
                    const float *g = src + (size_t)j * c;
                    for (int k = k0; k < k1; k++) {
                        r0[(size_t)x0 * c + k] += w00 * g[k];
                        r0[(size_t)x1 * c + k] += w01 * g[k];
                        r1[(size_t)x0 * c + k] += w10 * g[k];
                        r1[(size_t)x1 * c + k] += w11 * g[k];
                    }
                }
            }
        }
}
