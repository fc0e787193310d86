/* ops_attn.c — linear layers, multi-head self-attention and the sinusoidal
 * timestep embedding; every matrix product goes through dnnl_sgemm (dnn.h). */
#include <math.h>
#include <string.h>

#include "backend/cpu/dnn.h"
#include "backend/cpu/fastmath.h"
#include "backend/cpu/ops.h"

int dd_linear_forward(const float *x, const float *w, const float *b, float *y, int m, int in,
                      int out, dd_error *err) {
    if (m <= 0 || in <= 0 || out <= 0 || !x || !w || !y)
        return dd_fail(err, DD_E_INVALID, "linear forward: invalid shape M=%d in=%d out=%d", m, in, out);
    /* y[M,O] = x[M,I] . w[O,I]^T */
    int rc = dd_sgemm('N', 'T', m, out, in, 1.0f, x, in, w, in, 0.0f, y, out, err);
    if (rc || !b) return rc;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < m; i++)
        for (int o = 0; o < out; o++) y[(size_t)i * out + o] += b[o];
    return DD_OK;
}

int dd_linear_backward(const float *x, const float *w, const float *dy, float *dx, float *dw,
                       float *db, int m, int in, int out, int acc, dd_error *err) {
    if (m <= 0 || in <= 0 || out <= 0 || !dy)
        return dd_fail(err, DD_E_INVALID, "linear backward: invalid shape M=%d in=%d out=%d", m, in, out);
    int rc;
    /* dx[M,I] = dy[M,O] . w[O,I] */
    if (dx && (rc = dd_sgemm('N', 'N', m, in, out, 1.0f, dy, out, w, in, acc ? 1.0f : 0.0f, dx, in, err)))
        return rc;
    /* dw[O,I] += dy^T[O,M] . x[M,I] */
    if (dw && (rc = dd_sgemm('T', 'N', out, in, m, 1.0f, dy, out, x, in, 1.0f, dw, in, err)))
        return rc;
    if (db)
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int i = 0; i < m; i++) s += dy[(size_t)i * out + o];
            db[o] += (float)s;
        }
    return DD_OK;
}

static int attn_check(const char *op, int n, int l, int c, int heads, dd_error *err) {
    if (n <= 0 || l <= 0 || c <= 0 || heads <= 0 || c % heads)
        return dd_fail(err, DD_E_INVALID, "%s: invalid shape N=%d L=%d C=%d heads=%d (C must be a multiple of heads)",
                       op, n, l, c, heads);
    return DD_OK;
}

/* Row-wise softmax of s[L,L] in place, with the max subtracted for stability. The
 * exponentials have libm's expf bits (dd_expf_glibc, vectorised, in blocks of SM_BLOCK;
 * expf itself where outside its range) and the row sum runs in order, so the values are
 * those of the scalar loop `r[j] = expf(r[j] - m); sum += r[j]` this replaced (2026-12-03:
 * test_model_torch's PyTorch gradient comparison is written against that rounding). */
#define SM_BLOCK 256
static void softmax_rows(float *s, int l) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < l; i++) {
        float *r = s + (size_t)i * l;
        float m = r[0];
        for (int j = 1; j < l; j++) m = r[j] > m ? r[j] : m;
        float sum = 0.0f, x[SM_BLOCK];
        for (int j0 = 0; j0 < l; j0 += SM_BLOCK) {
            int nb = l - j0 < SM_BLOCK ? l - j0 : SM_BLOCK;
            float *rb = r + j0;
            for (int j = 0; j < nb; j++) x[j] = rb[j] - m;
#pragma omp simd
            for (int j = 0; j < nb; j++) rb[j] = dd_expf_glibc(x[j]);
            for (int j = 0; j < nb; j++) {
                if (!dd_expf_glibc_in_range(x[j])) rb[j] = expf(x[j]);
                sum += rb[j];
            }
        }
        float inv = 1.0f / sum;
        for (int j = 0; j < l; j++) r[j] *= inv;
    }
}

/* The same at inference (nothing is stored for a backward): dd_expf (fastmath.h,
 * relative error < 2e-7) in vectorised loops, the row sum in 16 partial sums added in a
 * fixed order, so the result depends on neither the vector width nor the thread count.
 * Training keeps libm's expf bits (softmax_rows, dd_expf_glibc): its forward rounding is
 * what the PyTorch gradient comparison (test_model_torch) is written against, and a
 * rounding-level change flips a max-pool or clamp decision there (bench/README.md "Where
 * the time goes"). Measured: bench/README.md "bf16 activations and the inference softmax". */
#define SM_LANES 16
static void softmax_rows_infer(float *s, int l) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < l; i++) {
        float *r = s + (size_t)i * l;
        /* the row maximum in lanes too (a max is exact in any order) */
        float lane_max[SM_LANES];
        for (int u = 0; u < SM_LANES; u++) lane_max[u] = r[0];
        int j = 0;
        for (; j + SM_LANES <= l; j += SM_LANES)
#pragma omp simd
            for (int u = 0; u < SM_LANES; u++) lane_max[u] = r[j + u] > lane_max[u] ? r[j + u] : lane_max[u];
        float m = r[0];
        for (; j < l; j++) m = r[j] > m ? r[j] : m;
        for (int u = 0; u < SM_LANES; u++) m = lane_max[u] > m ? lane_max[u] : m;
        float part[SM_LANES] = {0};
        j = 0;
        for (; j + SM_LANES <= l; j += SM_LANES)
#pragma omp simd
            for (int u = 0; u < SM_LANES; u++) {
                float v = dd_expf(r[j + u] - m);
                r[j + u] = v;
                part[u] += v;
            }
        for (int u = 0; j < l; j++, u++) {
            r[j] = dd_expf(r[j] - m);
            part[u] += r[j];
        }
        float sum = 0.0f;
        for (int u = 0; u < SM_LANES; u++) sum += part[u];
        float inv = 1.0f / sum;
#pragma omp simd
        for (int k = 0; k < l; k++) r[k] *= inv;
    }
}

int dd_attention_forward(const float *qkv, float *a, float *probs, int store_probs, int n, int l,
                         int c, int heads, dd_error *err) {
    int rc = attn_check("attention forward", n, l, c, heads, err);
    if (rc) return rc;
    int d = c / heads;
    long ld = 3L * c;
    float scale = 1.0f / sqrtf((float)d);
    for (int b = 0; b < n; b++)
        for (int h = 0; h < heads; h++) {
            const float *q = qkv + (size_t)b * l * ld + (size_t)h * 3 * d;
            const float *k = q + d, *v = q + 2 * d;
            float *p = store_probs ? probs + ((size_t)b * heads + h) * l * l : probs;
            /* p[L,L] = scale * q[L,d] . k[L,d]^T, softmax over keys */
            if ((rc = dd_sgemm('N', 'T', l, l, d, scale, q, ld, k, ld, 0.0f, p, l, err))) return rc;
            if (store_probs) softmax_rows(p, l);
            else softmax_rows_infer(p, l);
            /* a[:, h*d:(h+1)*d] = p[L,L] . v[L,d] */
            if ((rc = dd_sgemm('N', 'N', l, d, l, 1.0f, p, l, v, ld, 0.0f,
                               a + (size_t)b * l * c + (size_t)h * d, c, err)))
                return rc;
        }
    return DD_OK;
}

int dd_attention_backward(const float *qkv, const float *probs, const float *da, float *dqkv,
                          float *scratch, int n, int l, int c, int heads, int acc, dd_error *err) {
    int rc = attn_check("attention backward", n, l, c, heads, err);
    if (rc) return rc;
    int d = c / heads;
    long ld = 3L * c;
    float scale = 1.0f / sqrtf((float)d), beta = acc ? 1.0f : 0.0f;
    for (int b = 0; b < n; b++)
        for (int h = 0; h < heads; h++) {
            size_t off = (size_t)b * l * ld + (size_t)h * 3 * d;
            const float *q = qkv + off, *k = q + d, *v = q + 2 * d;
            float *dq = dqkv + off, *dk = dq + d, *dv = dq + 2 * d;
            const float *p = probs + ((size_t)b * heads + h) * l * l;
            const float *g = da + (size_t)b * l * c + (size_t)h * d;
            float *dp = scratch;
            /* dp[L,L] = g[L,d] . v^T ; dv[L,d] = p^T . g */
            if ((rc = dd_sgemm('N', 'T', l, l, d, 1.0f, g, c, v, ld, 0.0f, dp, l, err)) ||
                (rc = dd_sgemm('T', 'N', l, d, l, 1.0f, p, l, g, c, beta, dv, ld, err)))
                return rc;
            /* softmax backward: ds = p * (dp - sum_j dp*p) */
#pragma omp parallel for schedule(static)
            for (int i = 0; i < l; i++) {
                const float *pr = p + (size_t)i * l;
                float *r = dp + (size_t)i * l;
                float dot = 0.0f;
                for (int j = 0; j < l; j++) dot += r[j] * pr[j];
                for (int j = 0; j < l; j++) r[j] = pr[j] * (r[j] - dot);
            }
            /* dq = scale * ds . k ; dk = scale * ds^T . q */
            if ((rc = dd_sgemm('N', 'N', l, d, l, scale, dp, l, k, ld, beta, dq, ld, err)) ||
                (rc = dd_sgemm('T', 'N', l, d, l, scale, dp, l, q, ld, beta, dk, ld, err)))
                return rc;
        }
    return DD_OK;
}

int dd_timestep_embedding(const int *t, float *e, int n, int dim, dd_error *err) {
    if (n <= 0 || dim <= 0 || (dim & 1))
        return dd_fail(err, DD_E_INVALID, "timestep embedding: invalid N=%d dim=%d (dim must be even)", n, dim);
    int half = dim / 2;
    /* Same float32 operation order as the PyTorch reference:
     * freqs = exp(-ln(10000) * arange(half) / half); args = t * freqs. */
    const float neg_log = (float)-log(10000.0);
    for (int b = 0; b < n; b++)
        for (int i = 0; i < half; i++) {
            float freq = expf(neg_log * (float)i / (float)half);
            float arg = (float)t[b] * freq;
            e[(size_t)b * dim + i] = sinf(arg);
            e[(size_t)b * dim + half + i] = cosf(arg);
        }
    return DD_OK;
}
