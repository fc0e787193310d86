/* test_ops.c — every op against an independent naive double-precision reference
 * (forward) and by central finite differences (backward), plus bad-input errors and
 * run-to-run determinism. Tolerances: forward 1e-5 (scale-aware relative, see
 * check_max_err); finite differences 3e-3, set by float32 rounding of the
 * perturbed forward passes (step 1e-2, or 1e-3 near kinks). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "backend/dnn.h"
#include "backend/ops.h"

static unsigned long long rng_state = 42;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
}
static float *rnd(size_t n, float scale) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}

/* ---- finite differences ----
 * fwd(ctx) computes the op's output from the buffers in ctx; L = sum(g * y). For a
 * few entries of a chosen input buffer, (L(x+h) - L(x-h)) / 2h is compared with the
 * analytic gradient. */
typedef void (*fwd_fn)(void *ctx);
static double loss_of(fwd_fn f, void *ctx, const float *y, const float *g, size_t ny) {
    f(ctx);
    double s = 0;
    for (size_t i = 0; i < ny; i++) s += (double)g[i] * y[i];
    return s;
}
static void fd_check(const char *what, fwd_fn f, void *ctx, float *x, size_t nx, const float *grad,
                     const float *y, const float *g, size_t ny, float h) {
    double maxg = 1e-3, maxd = 0;
    int probes = nx < 40 ? (int)nx : 40;
    for (size_t i = 0; i < nx; i++) maxg = fabs(grad[i]) > maxg ? fabs(grad[i]) : maxg;
    for (int k = 0; k < probes; k++) {
        size_t i = nx < 40 ? (size_t)k : (size_t)(((unsigned long long)k * 2654435761ULL) % nx);
        float keep = x[i];
        x[i] = keep + h;
        double lp = loss_of(f, ctx, y, g, ny);
        x[i] = keep - h;
        double lm = loss_of(f, ctx, y, g, ny);
        x[i] = keep;
        double fd = (lp - lm) / (2.0 * h);
        double d = fabs(fd - grad[i]);
        if (d > maxd) maxd = d;
    }
    f(ctx);
    CHECK(maxd / maxg < 3e-3, "%s: finite-difference error %.3g (relative to max |grad| %.3g)", what,
          maxd / maxg, maxg);
}

/* ---- convolution ---- */
typedef struct { dd_conv *c; float *x, *w, *b, *y; } conv_ctx;
static void conv_fwd(void *p) {
    conv_ctx *c = p;
    dd_conv_forward(c->c, c->x, c->w, c->b, c->y, NULL);
}
static void conv_naive(const dd_conv_shape *s, const float *x, const float *w, const float *b, double *y) {
    int ho, wo;
    dd_conv_out_hw(s, &ho, &wo);
    for (int n = 0; n < s->n; n++)
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++)
                for (int o = 0; o < s->cout; o++) {
                    double acc = b[o];
                    for (int ki = 0; ki < s->k; ki++)
                        for (int kj = 0; kj < s->k; kj++) {
                            int yi = i * s->stride + ki - s->pad, xj = j * s->stride + kj - s->pad;
                            if (yi < 0 || yi >= s->h || xj < 0 || xj >= s->w) continue;
                            for (int ci = 0; ci < s->cin; ci++)
                                acc += (double)x[(((size_t)n * s->h + yi) * s->w + xj) * s->cin + ci] *
                                       w[(((size_t)o * s->cin + ci) * s->k + ki) * s->k + kj];
                        }
                    y[(((size_t)n * ho + i) * wo + j) * s->cout + o] = acc;
                }
}
static double max_err_d(const float *a, const double *b, size_t n) {
    double m = 0, s = 1e-30;
    for (size_t i = 0; i < n; i++) s = fabs(b[i]) > s ? fabs(b[i]) : s;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]) / s;
        if (!(d <= m)) m = d;
    }
    return m;
}

static void test_conv(dd_engine *eng, int n, int h, int w, int cin, int cout, int k, int stride, dd_conv_algo algo) {
    dd_conv_shape s = {n, h, w, cin, cout, k, stride, k / 2};
    dd_conv *c;
    dd_error err = {0};
    if (dd_conv_create(eng, &s, algo, 1, &c, &err)) {
        CHECK(0, "conv create: %s", err.msg);
        return;
    }
    int ho, wo;
    dd_conv_out_hw(&s, &ho, &wo);
    size_t nx = (size_t)n * h * w * cin, nw = (size_t)cout * cin * k * k, ny = (size_t)n * ho * wo * cout;
    conv_ctx cx = {c, rnd(nx, 1), rnd(nw, 0.3f), rnd(cout, 1), malloc(ny * 4)};
    double *ref = malloc(ny * sizeof *ref);
    conv_fwd(&cx);
    conv_naive(&s, cx.x, cx.w, cx.b, ref);
    double e = max_err_d(cx.y, ref, ny);
    char what[128];
    snprintf(what, sizeof what, "conv %dx%d s%d %d->%d on %dx%dx%d (%s)", k, k, stride, cin, cout, n, h, w,
             algo == DD_CONV_WINOGRAD ? "winograd" : "direct");
    CHECK(e < (algo == DD_CONV_WINOGRAD ? 1e-4 : 1e-5), "%s forward vs naive: %.3g", what, e);
    float *g = rnd(ny, 1), *dx = malloc(nx * 4), *dw = calloc(nw, 4), *db = calloc(cout, 4);
    CHECK(dd_conv_backward(c, cx.x, cx.w, g, dx, dw, db, 0, &err) == 0, "conv backward: %s", err.msg);
    fd_check(what, conv_fwd, &cx, cx.x, nx, dx, cx.y, g, ny, 1e-2f);
    fd_check(what, conv_fwd, &cx, cx.w, nw, dw, cx.y, g, ny, 1e-2f);
    fd_check(what, conv_fwd, &cx, cx.b, cout, db, cx.y, g, ny, 1e-2f);
    /* Determinism: the same call twice gives the same bits. */
    float *dx2 = malloc(nx * 4), *dw2 = calloc(nw, 4), *db2 = calloc(cout, 4);
    dd_conv_backward(c, cx.x, cx.w, g, dx2, dw2, db2, 0, &err);
    CHECK(!memcmp(dx, dx2, nx * 4) && !memcmp(dw, dw2, nw * 4), "%s: backward not bit-reproducible", what);
    free(cx.x), free(cx.w), free(cx.b), free(cx.y), free(ref), free(g), free(dx), free(dw), free(db);
    free(dx2), free(dw2), free(db2);
    dd_conv_free(c);
}

/* ---- GroupNorm ---- */
typedef struct { float *x, *gamma, *beta, *y, *mean, *rstd; int n, hw, c, g, silu; } gn_ctx;
static void gn_fwd(void *p) {
    gn_ctx *q = p;
    dd_groupnorm_forward(q->x, q->gamma, q->beta, q->y, q->mean, q->rstd, q->n, q->hw, q->c, q->g, 1e-5f, q->silu, NULL);
}
static void test_groupnorm(int silu) {
    int n = 2, hw = 12, c = 48, g = 6;
    size_t nx = (size_t)n * hw * c;
    gn_ctx q = {rnd(nx, 2), rnd(c, 1), rnd(c, 1), malloc(nx * 4), malloc(n * g * 4), malloc(n * g * 4), n, hw, c, g, silu};
    for (size_t i = 0; i < nx; i++) q.x[i] += 0.5f; /* a non-zero mean */
    gn_fwd(&q);
    double *ref = malloc(nx * sizeof *ref);
    int cg = c / g;
    for (int b = 0; b < n; b++)
        for (int gi = 0; gi < g; gi++) {
            double s = 0, s2 = 0, cnt = hw * cg;
            for (int p = 0; p < hw; p++)
                for (int k = gi * cg; k < (gi + 1) * cg; k++) s += q.x[((size_t)b * hw + p) * c + k];
            double m = s / cnt;
            for (int p = 0; p < hw; p++)
                for (int k = gi * cg; k < (gi + 1) * cg; k++) {
                    double d = q.x[((size_t)b * hw + p) * c + k] - m;
                    s2 += d * d;
                }
            double r = 1 / sqrt(s2 / cnt + 1e-5);
            for (int p = 0; p < hw; p++)
                for (int k = gi * cg; k < (gi + 1) * cg; k++) {
                    size_t o = ((size_t)b * hw + p) * c + k;
                    double z = (q.x[o] - m) * r * q.gamma[k] + q.beta[k];
                    ref[o] = silu ? z / (1 + exp(-z)) : z;
                }
        }
    CHECK(max_err_d(q.y, ref, nx) < 1e-5, "groupnorm%s forward vs naive: %.3g", silu ? "+silu" : "", max_err_d(q.y, ref, nx));
    float *gr = rnd(nx, 1), *dx = malloc(nx * 4), *dg = calloc(c, 4), *dbt = calloc(c, 4);
    dd_groupnorm_backward(q.x, q.gamma, q.beta, q.mean, q.rstd, gr, dx, dg, dbt, n, hw, c, g, silu, 0, NULL);
    const char *nm = silu ? "groupnorm+silu" : "groupnorm";
    fd_check(nm, gn_fwd, &q, q.x, nx, dx, q.y, gr, nx, 1e-2f);
    fd_check(nm, gn_fwd, &q, q.gamma, c, dg, q.y, gr, nx, 1e-2f);
    fd_check(nm, gn_fwd, &q, q.beta, c, dbt, q.y, gr, nx, 1e-2f);
    free(q.x), free(q.gamma), free(q.beta), free(q.y), free(q.mean), free(q.rstd), free(ref), free(gr), free(dx), free(dg), free(dbt);
}

/* ---- BatchNorm (training mode) ---- */
typedef struct { float *x, *gamma, *beta, *y, *mean, *rstd; size_t p; int c; } bn_ctx;
static void bn_fwd(void *v) {
    bn_ctx *q = v;
    dd_batchnorm_forward(q->x, q->gamma, q->beta, NULL, NULL, q->y, q->mean, q->rstd, q->p, q->c, 1e-5f, 0.1f, 1, NULL);
}
static void test_batchnorm(void) {
    size_t p = 30;
    int c = 20;
    bn_ctx q = {rnd(p * c, 2), rnd(c, 1), rnd(c, 1), malloc(p * c * 4), malloc(c * 4), malloc(c * 4), p, c};
    bn_fwd(&q);
    double *ref = malloc(p * c * sizeof *ref);
    for (int k = 0; k < c; k++) {
        double s = 0, s2 = 0;
        for (size_t i = 0; i < p; i++) s += q.x[i * c + k];
        double m = s / p;
        for (size_t i = 0; i < p; i++) s2 += (q.x[i * c + k] - m) * (q.x[i * c + k] - m);
        double r = 1 / sqrt(s2 / p + 1e-5);
        for (size_t i = 0; i < p; i++) ref[i * c + k] = (q.x[i * c + k] - m) * r * q.gamma[k] + q.beta[k];
    }
    CHECK(max_err_d(q.y, ref, p * c) < 1e-5, "batchnorm forward vs naive: %.3g", max_err_d(q.y, ref, p * c));
    float *gr = rnd(p * c, 1), *dx = malloc(p * c * 4), *dg = calloc(c, 4), *dbt = calloc(c, 4);
    dd_batchnorm_backward(q.x, q.gamma, q.mean, q.rstd, gr, dx, dg, dbt, p, c, 0, NULL);
    fd_check("batchnorm", bn_fwd, &q, q.x, p * c, dx, q.y, gr, p * c, 1e-2f);
    fd_check("batchnorm", bn_fwd, &q, q.gamma, c, dg, q.y, gr, p * c, 1e-2f);
    fd_check("batchnorm", bn_fwd, &q, q.beta, c, dbt, q.y, gr, p * c, 1e-2f);
    free(q.x), free(q.gamma), free(q.beta), free(q.y), free(q.mean), free(q.rstd), free(ref), free(gr), free(dx), free(dg), free(dbt);
}

/* ---- spatial and elementwise ops through one harness ---- */
enum { OP_AVG, OP_MAX, OP_NEAR, OP_BIL, OP_SILU, OP_RELU, OP_SIG };
typedef struct { int op, n, h, w, c; float *x, *y; } sp_ctx;
static size_t sp_out(const sp_ctx *q) {
    size_t in = (size_t)q->n * q->h * q->w * q->c;
    return q->op == OP_AVG || q->op == OP_MAX ? in / 4 : q->op == OP_NEAR || q->op == OP_BIL ? in * 4 : in;
}
static void sp_fwd(void *v) {
    sp_ctx *q = v;
    size_t n = (size_t)q->n * q->h * q->w * q->c;
    switch (q->op) {
    case OP_AVG: dd_avgpool2_forward(q->x, q->y, q->n, q->h, q->w, q->c, NULL); break;
    case OP_MAX: dd_maxpool2_forward(q->x, q->y, q->n, q->h, q->w, q->c, NULL); break;
    case OP_NEAR: dd_upnearest2_forward(q->x, q->y, q->n, q->h, q->w, q->c); break;
    case OP_BIL: dd_upbilinear2_forward(q->x, q->y, q->n, q->h, q->w, q->c); break;
    case OP_SILU: dd_silu_forward(q->x, q->y, n); break;
    case OP_RELU: dd_relu_forward(q->x, q->y, n); break;
    case OP_SIG: dd_sigmoid_forward(q->x, q->y, n); break;
    }
}
static void sp_naive(const sp_ctx *q, double *r) {
    int n = q->n, h = q->h, w = q->w, c = q->c;
#define X(b, i, j, k) ((double)q->x[(((size_t)(b) * h + (i)) * w + (j)) * c + (k)])
    for (int b = 0; b < n; b++)
        for (int k = 0; k < c; k++) {
            if (q->op == OP_AVG || q->op == OP_MAX)
                for (int i = 0; i < h / 2; i++)
                    for (int j = 0; j < w / 2; j++) {
                        double a = X(b, 2 * i, 2 * j, k), bb = X(b, 2 * i, 2 * j + 1, k), cc = X(b, 2 * i + 1, 2 * j, k), d = X(b, 2 * i + 1, 2 * j + 1, k);
                        r[(((size_t)b * (h / 2) + i) * (w / 2) + j) * c + k] =
                            q->op == OP_AVG ? (a + bb + cc + d) / 4 : fmax(fmax(a, bb), fmax(cc, d));
                    }
            else if (q->op == OP_NEAR || q->op == OP_BIL)
                for (int i = 0; i < 2 * h; i++)
                    for (int j = 0; j < 2 * w; j++) {
                        double v;
                        if (q->op == OP_NEAR) v = X(b, i / 2, j / 2, k);
                        else {
                            double sy = i * (h - 1.0) / (2 * h - 1.0), sx = j * (w - 1.0) / (2 * w - 1.0);
                            int y0 = (int)sy, x0 = (int)sx, y1 = y0 + 1 < h ? y0 + 1 : h - 1, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
                            double fy = sy - y0, fx = sx - x0;
                            v = (1 - fy) * ((1 - fx) * X(b, y0, x0, k) + fx * X(b, y0, x1, k)) + fy * ((1 - fx) * X(b, y1, x0, k) + fx * X(b, y1, x1, k));
                        }
                        r[(((size_t)b * 2 * h + i) * 2 * w + j) * c + k] = v;
                    }
            else
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < w; j++) {
                        double v = X(b, i, j, k);
                        r[(((size_t)b * h + i) * w + j) * c + k] =
                            q->op == OP_SILU ? v / (1 + exp(-v)) : q->op == OP_RELU ? (v > 0 ? v : 0) : 1 / (1 + exp(-v));
                    }
        }
#undef X
}
static void test_spatial(int op, const char *name) {
    sp_ctx q = {op, 2, 6, 4, 5, NULL, NULL};
    size_t nx = (size_t)q.n * q.h * q.w * q.c, ny = sp_out(&q);
    q.x = rnd(nx, 2);
    q.y = malloc(ny * 4);
    sp_fwd(&q);
    double *ref = malloc(ny * sizeof *ref);
    sp_naive(&q, ref);
    CHECK(max_err_d(q.y, ref, ny) < 1e-6, "%s forward vs naive: %.3g", name, max_err_d(q.y, ref, ny));
    float *g = rnd(ny, 1), *dx = malloc(nx * 4);
    switch (op) {
    case OP_AVG: dd_avgpool2_backward(g, dx, q.n, q.h, q.w, q.c, 0, NULL); break;
    case OP_MAX: dd_maxpool2_backward(q.x, g, dx, q.n, q.h, q.w, q.c, 0, NULL); break;
    case OP_NEAR: dd_upnearest2_backward(g, dx, q.n, q.h, q.w, q.c, 0); break;
    case OP_BIL: dd_upbilinear2_backward(g, dx, q.n, q.h, q.w, q.c, 0); break;
    case OP_SILU: dd_silu_backward(q.x, g, dx, nx, 0); break;
    case OP_RELU: dd_relu_backward(q.y, g, dx, nx, 0); break;
    case OP_SIG: dd_sigmoid_backward(q.y, g, dx, nx, 0); break;
    }
    fd_check(name, sp_fwd, &q, q.x, nx, dx, q.y, g, ny, (op == OP_MAX || op == OP_RELU) ? 1e-3f : 1e-2f);
    /* acc = 1 adds onto what is there. */
    float *dx2 = malloc(nx * 4);
    for (size_t i = 0; i < nx; i++) dx2[i] = 1.0f;
    switch (op) {
    case OP_AVG: dd_avgpool2_backward(g, dx2, q.n, q.h, q.w, q.c, 1, NULL); break;
    case OP_MAX: dd_maxpool2_backward(q.x, g, dx2, q.n, q.h, q.w, q.c, 1, NULL); break;
    case OP_NEAR: dd_upnearest2_backward(g, dx2, q.n, q.h, q.w, q.c, 1); break;
    case OP_BIL: dd_upbilinear2_backward(g, dx2, q.n, q.h, q.w, q.c, 1); break;
    case OP_SILU: dd_silu_backward(q.x, g, dx2, nx, 1); break;
    case OP_RELU: dd_relu_backward(q.y, g, dx2, nx, 1); break;
    case OP_SIG: dd_sigmoid_backward(q.y, g, dx2, nx, 1); break;
    }
    double m = 0;
    for (size_t i = 0; i < nx; i++) m = fmax(m, fabs(dx2[i] - 1.0f - dx[i]));
    CHECK(m < 1e-6, "%s backward with accumulate: off by %.3g", name, m);
    free(q.x), free(q.y), free(ref), free(g), free(dx), free(dx2);
}

/* ---- linear ---- */
typedef struct { float *x, *w, *b, *y; int m, in, out; } lin_ctx;
static void lin_fwd(void *v) {
    lin_ctx *q = v;
    dd_linear_forward(q->x, q->w, q->b, q->y, q->m, q->in, q->out, NULL);
}
static void test_linear(void) {
    lin_ctx q = {rnd(5 * 9, 1), rnd(4 * 9, 1), rnd(4, 1), malloc(5 * 4 * 4), 5, 9, 4};
    lin_fwd(&q);
    double ref[20];
    for (int i = 0; i < 5; i++)
        for (int o = 0; o < 4; o++) {
            double s = q.b[o];
            for (int k = 0; k < 9; k++) s += (double)q.x[i * 9 + k] * q.w[o * 9 + k];
            ref[i * 4 + o] = s;
        }
    CHECK(max_err_d(q.y, ref, 20) < 1e-6, "linear forward vs naive");
    float *g = rnd(20, 1), dx[45], dw[36] = {0}, db[4] = {0};
    dd_linear_backward(q.x, q.w, g, dx, dw, db, 5, 9, 4, 0, NULL);
    fd_check("linear", lin_fwd, &q, q.x, 45, dx, q.y, g, 20, 1e-2f);
    fd_check("linear", lin_fwd, &q, q.w, 36, dw, q.y, g, 20, 1e-2f);
    fd_check("linear", lin_fwd, &q, q.b, 4, db, q.y, g, 20, 1e-2f);
    free(q.x), free(q.w), free(q.b), free(q.y), free(g);
}

/* ---- attention ---- */
typedef struct { float *qkv, *a, *probs; int n, l, c, heads; } at_ctx;
static void at_fwd(void *v) {
    at_ctx *q = v;
    dd_attention_forward(q->qkv, q->a, q->probs, 1, q->n, q->l, q->c, q->heads, NULL);
}
static void test_attention(void) {
    at_ctx q = {NULL, NULL, NULL, 2, 10, 12, 3};
    size_t nq = (size_t)q.n * q.l * 3 * q.c, na = (size_t)q.n * q.l * q.c;
    q.qkv = rnd(nq, 1.5f);
    q.a = malloc(na * 4);
    q.probs = malloc((size_t)q.n * q.heads * q.l * q.l * 4);
    at_fwd(&q);
    double *ref = malloc(na * sizeof *ref);
    int d = q.c / q.heads;
    for (int b = 0; b < q.n; b++)
        for (int h = 0; h < q.heads; h++)
            for (int t = 0; t < q.l; t++) {
                double w[64], mx = -1e300, s = 0;
                for (int u = 0; u < q.l; u++) {
                    double dot = 0;
                    for (int k = 0; k < d; k++)
                        dot += (double)q.qkv[((size_t)b * q.l + t) * 3 * q.c + h * 3 * d + k] *
                               q.qkv[((size_t)b * q.l + u) * 3 * q.c + h * 3 * d + d + k];
                    w[u] = dot / sqrt((double)d);
                    mx = fmax(mx, w[u]);
                }
                for (int u = 0; u < q.l; u++) s += (w[u] = exp(w[u] - mx));
                for (int k = 0; k < d; k++) {
                    double acc = 0;
                    for (int u = 0; u < q.l; u++) acc += w[u] / s * q.qkv[((size_t)b * q.l + u) * 3 * q.c + h * 3 * d + 2 * d + k];
                    ref[((size_t)b * q.l + t) * q.c + h * d + k] = acc;
                }
            }
    CHECK(max_err_d(q.a, ref, na) < 1e-5, "attention forward vs naive: %.3g", max_err_d(q.a, ref, na));
    float *g = rnd(na, 1), *dqkv = malloc(nq * 4), *scr = malloc((size_t)q.l * q.l * 4);
    dd_attention_backward(q.qkv, q.probs, g, dqkv, scr, q.n, q.l, q.c, q.heads, 0, NULL);
    fd_check("attention", at_fwd, &q, q.qkv, nq, dqkv, q.a, g, na, 1e-2f);
    free(q.qkv), free(q.a), free(q.probs), free(ref), free(g), free(dqkv), free(scr);
}

/* ---- losses ---- */
typedef struct { int kind; float *p, *y; size_t n; float loss[1]; } ls_ctx;
static void ls_fwd(void *v) {
    ls_ctx *q = v;
    q->loss[0] = q->kind == 0 ? (float)dd_mse_loss(q->p, q->y, NULL, q->n, 1, 0)
               : q->kind == 1 ? (float)dd_focal_loss(q->p, q->y, NULL, q->n, 0.5f, 4.0f, 1, 0)
                              : (float)dd_smoothl1_loss(q->p, q->y, NULL, q->n, 1.0f, 1, 0);
}
static void test_losses(void) {
    const char *names[3] = {"mse", "focal", "smoothl1"};
    for (int kind = 0; kind < 3; kind++) {
        ls_ctx q = {kind, rnd(64, 2), rnd(64, 1), 64, {0}};
        if (kind == 1)
            for (int i = 0; i < 64; i++) q.p[i] = 0.05f + 0.425f * (q.p[i] + 2) / 2, q.y[i] = q.y[i] > 0.3f;
        float dp[64], one = 1.0f;
        if (kind == 0) dd_mse_loss(q.p, q.y, dp, 64, 1, 0);
        if (kind == 1) dd_focal_loss(q.p, q.y, dp, 64, 0.5f, 4.0f, 1, 0);
        if (kind == 2) dd_smoothl1_loss(q.p, q.y, dp, 64, 1.0f, 1, 0);
        fd_check(names[kind], ls_fwd, &q, q.p, 64, dp, q.loss, &one, 1, kind == 0 ? 1e-2f : 1e-3f);
        free(q.p), free(q.y);
    }
    /* Hand values: focal at p = 0.5, y = 1: bce = ln 2, pt = 0.5, 0.5 * 0.5^4 * ln 2. */
    float p = 0.5f, y = 1.0f;
    CHECK(fabs(dd_focal_loss(&p, &y, NULL, 1, 0.5f, 4.0f, 1, 0) - 0.5 * 0.0625 * log(2.0)) < 1e-7, "focal hand value");
    float a[2] = {0.5f, 3.0f}, b[2] = {0, 0};
    CHECK(fabs(dd_smoothl1_loss(a, b, NULL, 2, 1.0f, 1, 0) - (0.125 + 2.5) / 2) < 1e-7, "smoothl1 hand value");
    /* p = 0 with y = 1 must not give inf/NaN (log clamped at -100). */
    p = 0.0f;
    double l = dd_focal_loss(&p, &y, NULL, 1, 0.5f, 4.0f, 1, 0);
    CHECK(isfinite(l) && fabs(l - 50.0) < 1e-4, "focal at p=0 clamps the log: %g", l);
}

/* ---- bad input: errors name the op and the shapes ---- */
static void test_bad_input(dd_engine *eng) {
    dd_error err = {0};
    dd_conv *c = NULL;
    dd_conv_shape s = {0, 8, 8, 4, 4, 3, 1, 1};
    CHECK(dd_conv_create(eng, &s, DD_CONV_DIRECT, 1, &c, &err) == DD_E_INVALID && !c, "zero batch accepted");
    CHECK(strstr(err.msg, "conv") && strstr(err.msg, "N=0"), "conv error message: '%s'", err.msg);
    dd_conv_shape s2 = {1, 1, 1, 4, 4, 5, 1, 0};
    CHECK(dd_conv_create(eng, &s2, DD_CONV_DIRECT, 0, &c, &err) == DD_E_INVALID, "empty output accepted: %s", err.msg);
    float x[64] = {0}, y[64];
    CHECK(dd_groupnorm_forward(x, x, x, y, y, y, 1, 2, 30, 8, 1e-5f, 0, &err) == DD_E_INVALID && strstr(err.msg, "groupnorm") && strstr(err.msg, "C=30"),
          "groupnorm with C %% G != 0: '%s'", err.msg);
    CHECK(dd_avgpool2_forward(x, y, 1, 3, 4, 1, &err) == DD_E_INVALID && strstr(err.msg, "H=3"), "odd pooling: '%s'", err.msg);
    CHECK(dd_attention_forward(x, y, y, 0, 1, 2, 10, 3, &err) == DD_E_INVALID && strstr(err.msg, "heads=3"), "attention heads: '%s'", err.msg);
    CHECK(dd_linear_forward(x, x, NULL, y, 0, 3, 3, &err) == DD_E_INVALID && strstr(err.msg, "linear"), "linear M=0: '%s'", err.msg);
    CHECK(dd_timestep_embedding((int[]){1}, y, 1, 7, &err) == DD_E_INVALID, "odd embedding width accepted");
    CHECK(dd_sgemm('N', 'N', 2, 0, 2, 1, x, 2, x, 2, 0, y, 2, &err) == DD_E_INVALID, "sgemm N=0 accepted");
    CHECK(dd_groupnorm_groups(128, 32) == 32 && dd_groupnorm_groups(48, 32) == 16 && dd_groupnorm_groups(24, 32) == 8,
          "groupnorm group rule gcd(32, C)");
}

int main(void) {
    dd_engine *eng;
    dd_error err = {0};
    if (dd_engine_create(2, &eng, &err)) {
        CHECK(0, "engine: %s", err.msg);
        return check_summary("test_ops");
    }
    test_conv(eng, 2, 7, 6, 5, 8, 3, 1, DD_CONV_DIRECT);
    test_conv(eng, 2, 8, 6, 4, 6, 3, 2, DD_CONV_DIRECT);
    test_conv(eng, 1, 5, 5, 7, 3, 1, 1, DD_CONV_DIRECT);
    test_conv(eng, 2, 8, 8, 16, 16, 3, 1, DD_CONV_WINOGRAD);
    test_groupnorm(0);
    test_groupnorm(1);
    test_batchnorm();
    test_spatial(OP_AVG, "avgpool2");
    test_spatial(OP_MAX, "maxpool2");
    test_spatial(OP_NEAR, "upnearest2");
    test_spatial(OP_BIL, "upbilinear2");
    test_spatial(OP_SILU, "silu");
    test_spatial(OP_RELU, "relu");
    test_spatial(OP_SIG, "sigmoid");
    test_linear();
    test_attention();
    test_losses();
    test_bad_input(eng);
    dd_engine_free(eng);
    return check_summary("test_ops");
}
