/* test_ops.c — every op against an independent naive double-precision reference
 * (forward) and by central finite differences (backward), plus bad-input errors and
 * run-to-run determinism; the cpu backend's dd_backend table: every entry set, the
 * name switch, and calls through the table bit-identical to the direct calls. Tolerances: forward 1e-5 (scale-aware relative, see
 * check_max_err); finite differences 3e-3, set by float32 rounding of the
 * perturbed forward passes (step 1e-2, or 1e-3 near kinks). */
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "backend/backend.h"
#include "backend/cpu/bf16.h"
#include "backend/cpu/dnn.h"
#include "backend/cpu/fastmath.h"
#include "backend/cpu/ops.h"
#include "core/rng.h"
#include "model/diffusion.h"

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
static int same_bits(const float *a, const float *b, size_t n) { return !memcmp(a, b, n * sizeof *a); }
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
    dd_conv_shape s = {n, h, w, cin, cout, k, stride, k / 2, 0};
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

/* ---- bf16 convolution ----
 * With precision bf16 the primitives read src, weights and dy rounded to bfloat16
 * (round to nearest even) and accumulate in float32. So (1) on inputs that are
 * already bf16 values, every output equals the float32 convolution's within float32
 * summation error (1e-5): this pins the rounding and the f32 accumulation; (2) on
 * arbitrary inputs it stays within bf16's relative precision (2^-8; tolerance 2e-2,
 * scale-aware like check_max_err) of float32; (3) the backward that converts dy once
 * for both primitives equals the one that converts it per primitive, bit for bit. */
static float to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}
static float max_rel(const float *a, const float *b, size_t n) {
    float m = 0, s = 1e-30f;
    for (size_t i = 0; i < n; i++) s = fabsf(b[i]) > s ? fabsf(b[i]) : s;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]) / s;
        if (!(d <= m)) m = d;
    }
    return m;
}
static void test_conv_bf16(dd_engine *f32eng, int n, int h, int w, int cin, int cout, int k, int stride) {
    dd_error err = {0};
    dd_engine *beng = NULL;
    if (dd_engine_create(2, &beng, &err) || dd_engine_set_precision(beng, DD_PREC_BF16, &err)) {
        CHECK(0, "bf16 engine: %s", err.msg);
        dd_engine_free(beng);
        return;
    }
    dd_conv_shape s = {n, h, w, cin, cout, k, stride, k / 2, 0};
    dd_conv *cb = NULL, *cf = NULL;
    CHECK(dd_conv_create(beng, &s, DD_CONV_WINOGRAD, 1, &cb, &err) == 0, "bf16 conv create: %s", err.msg);
    CHECK(dd_conv_create(f32eng, &s, DD_CONV_DIRECT, 1, &cf, &err) == 0, "f32 conv create: %s", err.msg);
    if (!cb || !cf) goto out;
    CHECK(dd_conv_is_bf16(cb) && !dd_conv_is_bf16(cf) && dd_conv_algo_used(cb) == DD_CONV_DIRECT,
          "bf16 conv: made in bf16 (direct: oneDNN has no bf16 Winograd), impl %s", dd_conv_impl(cb));
    int ho, wo;
    dd_conv_out_hw(&s, &ho, &wo);
    size_t nx = (size_t)n * h * w * cin, nw = (size_t)cout * cin * k * k, ny = (size_t)n * ho * wo * cout;
    float *x = rnd(nx, 1), *wt = rnd(nw, 0.3f), *b = rnd(cout, 1), *g = rnd(ny, 1);
    float *xr = malloc(nx * 4), *wr = malloc(nw * 4), *gr = malloc(ny * 4);
    for (size_t i = 0; i < nx; i++) xr[i] = to_bf16(x[i]);
    for (size_t i = 0; i < nw; i++) wr[i] = to_bf16(wt[i]);
    for (size_t i = 0; i < ny; i++) gr[i] = to_bf16(g[i]);
    float *yb = malloc(ny * 4), *yf = malloc(ny * 4), *yfr = malloc(ny * 4);
    float *dxb = malloc(nx * 4), *dxf = malloc(nx * 4), *dxfr = malloc(nx * 4);
    float *dwb = calloc(nw, 4), *dwf = calloc(nw, 4), *dwfr = calloc(nw, 4), *dw1 = calloc(nw, 4);
    float *dbb = calloc(cout, 4), *dbf = calloc(cout, 4);
    char what[128];
    snprintf(what, sizeof what, "bf16 conv %dx%d s%d %d->%d on %dx%dx%d", k, k, stride, cin, cout, n, h, w);
    CHECK(dd_conv_forward(cb, x, wt, b, yb, &err) == 0 && dd_conv_forward(cf, x, wt, b, yf, &err) == 0 &&
          dd_conv_forward(cf, xr, wr, b, yfr, &err) == 0, "%s forward: %s", what, err.msg);
    CHECK(dd_conv_backward(cb, x, wt, g, dxb, dwb, dbb, 0, &err) == 0 &&
          dd_conv_backward(cf, x, wt, g, dxf, dwf, dbf, 0, &err) == 0 &&
          dd_conv_backward(cf, xr, wr, gr, dxfr, dwfr, NULL, 0, &err) == 0, "%s backward: %s", what, err.msg);
    float e;
    CHECK((e = max_rel(yb, yfr, ny)) < 1e-5f, "%s forward = f32 on bf16-rounded inputs: %.3g", what, e);
    CHECK((e = max_rel(dxb, dxfr, nx)) < 1e-5f, "%s backward-data = f32 on rounded w, dy: %.3g", what, e);
    CHECK((e = max_rel(dwb, dwfr, nw)) < 1e-5f, "%s backward-weights = f32 on rounded x, dy: %.3g", what, e);
    CHECK((e = max_rel(yb, yf, ny)) < 2e-2f, "%s forward vs f32: %.3g (bf16 precision 2^-8)", what, e);
    CHECK((e = max_rel(dxb, dxf, nx)) < 2e-2f, "%s backward-data vs f32: %.3g", what, e);
    CHECK((e = max_rel(dwb, dwf, nw)) < 2e-2f, "%s backward-weights vs f32: %.3g", what, e);
    CHECK((e = max_rel(dbb, dbf, cout)) < 2e-2f, "%s bias gradient vs f32: %.3g", what, e);
    /* dy converted once for both primitives == converted for backward-weights alone */
    CHECK(dd_conv_backward(cb, x, wt, g, NULL, dw1, NULL, 0, &err) == 0, "%s: %s", what, err.msg);
    CHECK(!memcmp(dw1, dwb, nw * 4), "%s: weight gradient with and without backward-data differ", what);
    /* accumulate: dx += */
    float *dxa = malloc(nx * 4);
    memcpy(dxa, dxb, nx * 4);
    CHECK(dd_conv_backward(cb, x, wt, g, dxa, NULL, NULL, 1, &err) == 0, "%s: %s", what, err.msg);
    int acc_ok = 1;
    for (size_t i = 0; i < nx; i++) acc_ok &= dxa[i] == dxb[i] + dxb[i];
    CHECK(acc_ok, "%s: accumulated backward-data is 2x the single one", what);
    free(dxa);
    free(x), free(wt), free(b), free(g), free(xr), free(wr), free(gr), free(yb), free(yf), free(yfr);
    free(dxb), free(dxf), free(dxfr), free(dwb), free(dwf), free(dwfr), free(dw1), free(dbb), free(dbf);
out:
    dd_conv_free(cb);
    dd_conv_free(cf);
    dd_engine_free(beng);
}

/* Precision resolution: auto follows the machine, bf16 without native bf16 is refused
 * with a message naming the instructions and the alternatives, and the engine stays f32. */
static void test_precision(dd_engine *eng) {
    dd_error err = {0};
    CHECK(dd_engine_precision(eng) == DD_PREC_F32, "a new engine is f32");
    int has = dd_engine_has_bf16(eng);
    dd_engine *e = NULL;
    CHECK(dd_engine_create(1, &e, &err) == 0, "engine: %s", err.msg);
    if (!e) return;
    CHECK(dd_engine_set_precision(e, DD_PREC_AUTO, &err) == 0 &&
              dd_engine_precision(e) == (has ? DD_PREC_BF16 : DD_PREC_F32),
          "auto resolves to %s on this machine", has ? "bf16" : "f32");
    CHECK(dd_engine_set_precision(e, DD_PREC_F32, &err) == 0 && dd_engine_precision(e) == DD_PREC_F32, "f32 on request");
    int rc = dd_engine_set_precision(e, DD_PREC_BF16, &err);
    if (has) CHECK(rc == 0 && dd_engine_precision(e) == DD_PREC_BF16, "bf16 on request: %s", err.msg);
    else
        CHECK(rc == DD_E_INVALID && strstr(err.msg, "AVX512-BF16") && strstr(err.msg, "auto or f32") &&
                  dd_engine_precision(e) == DD_PREC_F32,
              "bf16 without the instructions refused: '%s'", err.msg);
    CHECK(dd_engine_set_precision(e, (dd_precision)7, &err) == DD_E_INVALID, "unknown precision refused");
    CHECK(!strcmp(dd_precision_name(DD_PREC_BF16), "bf16") && !strcmp(dd_precision_name(DD_PREC_F32), "f32") &&
              !strcmp(dd_precision_name(DD_PREC_AUTO), "auto"), "precision names");
    dd_engine_free(e);
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

/* ---- the norms at a size where the reductions cut the pixels into many chunks ----
 * (ops_norm.c sums pixel chunks in parallel, keeps the SiLU gradient in dx between its
 * two backward passes when dx is not accumulated into, and prefetches ahead.) GroupNorm
 * (+SiLU) forward and backward against a naive double reference, the accumulate form
 * against "dx before + the plain result" bit for bit, and every output with the other
 * thread count bit for bit; BatchNorm's backward likewise. C = 40 is not a multiple of
 * the 16 lanes. */
static double max_abs_d(const double *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}
static void test_norms_chunked(int silu) {
    int n = 2, hw = 2500, c = 40, g = 8, cg = c / g;
    size_t nx = (size_t)n * hw * c;
    float *x = rnd(nx, 2), *gam = rnd(c, 1), *bet = rnd(c, 1), *dy = rnd(nx, 1);
    float *y = malloc(nx * 4), *y1 = malloc(nx * 4), *mean = malloc(n * g * 4), *rstd = malloc(n * g * 4);
    float *m1 = malloc(n * g * 4), *r1 = malloc(n * g * 4);
    float *dx = malloc(nx * 4), *dx1 = malloc(nx * 4), *dxa = rnd(nx, 1), *d0 = malloc(nx * 4);
    float *dg = calloc(c, 4), *db = calloc(c, 4), *dg1 = calloc(c, 4), *db1 = calloc(c, 4);
    double *ry = malloc(nx * sizeof *ry), *rdx = malloc(nx * sizeof *rdx), *rdg = calloc(c, sizeof *rdg), *rdb = calloc(c, sizeof *rdb);
    for (size_t i = 0; i < nx; i++) x[i] += 0.7f;
    memcpy(d0, dxa, nx * 4);
    dd_error err = {0};
    int rc = dd_groupnorm_forward(x, gam, bet, y, mean, rstd, n, hw, c, g, 1e-5f, silu, &err);
    if (!rc) rc = dd_groupnorm_backward(x, gam, bet, mean, rstd, dy, dx, dg, db, n, hw, c, g, silu, 0, &err);
    if (!rc) rc = dd_groupnorm_backward(x, gam, bet, mean, rstd, dy, dxa, NULL, NULL, n, hw, c, g, silu, 1, &err);
    int threads = omp_get_max_threads();
    omp_set_num_threads(threads > 1 ? 1 : 2); /* the other thread count */
    if (!rc) rc = dd_groupnorm_forward(x, gam, bet, y1, m1, r1, n, hw, c, g, 1e-5f, silu, &err);
    if (!rc) rc = dd_groupnorm_backward(x, gam, bet, mean, rstd, dy, dx1, dg1, db1, n, hw, c, g, silu, 0, &err);
    omp_set_num_threads(threads);
    CHECK(rc == 0, "groupnorm chunked silu=%d: %s", silu, err.msg);
    /* naive reference in double */
    for (int b = 0; b < n; b++)
        for (int gi = 0; gi < g; gi++) {
            double s = 0, s2 = 0, cnt = (double)hw * cg, a = 0, ax = 0;
            for (int p = 0; p < hw; p++)
                for (int k = gi * cg; k < (gi + 1) * cg; k++) s += x[((size_t)b * hw + p) * c + k];
            double m = s / cnt;
            for (int p = 0; p < hw; p++)
                for (int k = gi * cg; k < (gi + 1) * cg; k++) {
                    double d = x[((size_t)b * hw + p) * c + k] - m;
                    s2 += d * d;
                }
            double r = 1 / sqrt(s2 / cnt + 1e-5);
            for (int pass = 0; pass < 2; pass++)
                for (int p = 0; p < hw; p++)
                    for (int k = gi * cg; k < (gi + 1) * cg; k++) {
                        size_t o = ((size_t)b * hw + p) * c + k;
                        double xh = (x[o] - m) * r, z = xh * gam[k] + bet[k], sg = 1 / (1 + exp(-z));
                        double dz = silu ? dy[o] * sg * (1 + z * (1 - sg)) : dy[o];
                        if (pass == 0) {
                            ry[o] = silu ? z * sg : z;
                            a += gam[k] * dz, ax += gam[k] * dz * xh;
                            rdg[k] += dz * xh, rdb[k] += dz;
                        } else {
                            rdx[o] = r * (gam[k] * dz - a / cnt - xh * ax / cnt);
                        }
                    }
        }
    double ey = max_err_d(y, ry, nx), edx = max_err_d(dx, rdx, nx) / max_abs_d(rdx, nx);
    double edg = max_err_d(dg, rdg, c) / max_abs_d(rdg, c), edb = max_err_d(db, rdb, c) / max_abs_d(rdb, c);
    CHECK(ey < 1e-5, "groupnorm chunked silu=%d forward vs naive: %.3g", silu, ey);
    CHECK(edx < 1e-5 && edg < 1e-5 && edb < 1e-5, "groupnorm chunked silu=%d backward vs naive (relative): dx %.3g dgamma %.3g dbeta %.3g",
          silu, edx, edg, edb);
    int acc_ok = 1;
    for (size_t i = 0; i < nx; i++) {
        float want = d0[i] + dx[i];
        if (memcmp(&want, &dxa[i], 4)) acc_ok = 0;
    }
    CHECK(acc_ok, "groupnorm chunked silu=%d: the accumulate form adds the same bits", silu);
    CHECK(same_bits(y, y1, nx) && same_bits(mean, m1, (size_t)n * g) && same_bits(rstd, r1, (size_t)n * g),
          "groupnorm chunked silu=%d forward: the same bits with another thread count", silu);
    CHECK(same_bits(dx, dx1, nx) && same_bits(dg, dg1, c) && same_bits(db, db1, c),
          "groupnorm chunked silu=%d backward: the same bits with another thread count", silu);
    if (!silu) { /* BatchNorm over all n*hw pixels: backward across thread counts and vs naive */
        size_t p = (size_t)n * hw;
        float *bm = malloc(c * 4), *br = malloc(c * 4);
        memset(dg, 0, c * 4), memset(db, 0, c * 4), memset(dg1, 0, c * 4), memset(db1, 0, c * 4);
        rc = dd_batchnorm_forward(x, gam, bet, NULL, NULL, y, bm, br, p, c, 1e-5f, 0.1f, 1, &err);
        if (!rc) rc = dd_batchnorm_backward(x, gam, bm, br, dy, dx, dg, db, p, c, 0, &err);
        omp_set_num_threads(threads > 1 ? 1 : 2);
        if (!rc) rc = dd_batchnorm_backward(x, gam, bm, br, dy, dx1, dg1, db1, p, c, 0, &err);
        omp_set_num_threads(threads);
        CHECK(rc == 0, "batchnorm chunked: %s", err.msg);
        double e = 0;
        for (int k = 0; k < c; k++) {
            double s = 0, s2 = 0, a = 0, ax = 0;
            for (size_t i = 0; i < p; i++) s += x[i * c + k];
            double m = s / p;
            for (size_t i = 0; i < p; i++) s2 += (x[i * c + k] - m) * (x[i * c + k] - m);
            double r = 1 / sqrt(s2 / p + 1e-5);
            for (size_t i = 0; i < p; i++) a += dy[i * c + k], ax += dy[i * c + k] * (x[i * c + k] - m) * r;
            for (size_t i = 0; i < p; i++) {
                double want = gam[k] * r * (dy[i * c + k] - a / p - (x[i * c + k] - m) * r * ax / p);
                e = fmax(e, fabs(dx[i * c + k] - want));
            }
        }
        CHECK(e < 1e-4, "batchnorm chunked backward vs naive: %.3g", e);
        CHECK(same_bits(dx, dx1, nx) && same_bits(dg, dg1, c) && same_bits(db, db1, c),
              "batchnorm chunked backward: the same bits with another thread count");
        free(bm), free(br);
    }
    free(x), free(gam), free(bet), free(dy), free(y), free(y1), free(mean), free(rstd), free(m1), free(r1);
    free(dx), free(dx1), free(dxa), free(d0), free(dg), free(db), free(dg1), free(db1);
    free(ry), free(rdx), free(rdg), free(rdb);
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
/* dd_expf_glibc (the training softmax's exp) against libm's expf bit for bit: every
 * 4099th float bit pattern and every float near the range limit (|x| just below 80) and
 * near 0; out of its range the caller uses expf, so there only the range test is checked.
 * (Every float of the range, 2,235,564,032 values, was checked once on 2026-12-03: none
 * differ; bench/README.md "Training step on Sapphire Rapids".) */
static void test_expf_glibc(void) {
    long checked = 0, differ = 0, range_wrong = 0;
    for (uint64_t u64 = 0; u64 < (1ull << 32); u64 += 4099) {
        uint32_t u = (uint32_t)u64;
        float x;
        memcpy(&x, &u, sizeof x);
        int in = dd_expf_glibc_in_range(x);
        if (in != (isfinite(x) && fabsf(x) < 80.0f)) range_wrong++;
        if (!in) continue;
        float a = dd_expf_glibc(x), b = expf(x);
        checked++;
        if (memcmp(&a, &b, sizeof a)) differ++;
    }
    const float edges[] = {80.0f, -80.0f, 1e-30f, -1e-30f, 1.0f, -1.0f};
    for (int e = 0; e < 6; e++) {
        float x = edges[e];
        for (int k = 0; k < 20000; k++) {
            x = nextafterf(x, 0.0f);
            if (!dd_expf_glibc_in_range(x)) { range_wrong++; continue; }
            float a = dd_expf_glibc(x), b = expf(x);
            checked++;
            if (memcmp(&a, &b, sizeof a)) differ++;
        }
    }
    CHECK(differ == 0 && range_wrong == 0 && checked > 600000,
          "dd_expf_glibc: %ld of %ld values differ from libm's expf, %ld range decisions wrong", differ, checked, range_wrong);
}

/* dd_silu_array / dd_silu_grad_array (the GroupNorm's SiLU; vrndscaleps / vscalefps on
 * AVX-512) against the scalar dd_siluf / dd_silu_grad, bit for bit: a strided sample of
 * all 2^32 floats in blocks of 16 lanes (the whole range was checked once, fastmath.h),
 * the clamp edges, zeros, infinities, NaN and subnormals, and a length that leaves a tail. */
static void test_silu_arrays(void) {
    enum { B = 4099 };
    static float x[B + 64], a[B + 64], g[B + 64];
    long checked = 0, differ = 0;
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 87.3f, -87.3f, 88.3f, -88.3f,
                             88.4f, -88.4f, 1e-40f, -1e-40f, 1e-30f, 100.0f, -100.0f, 0.5f, -3.0f};
    for (uint64_t start = 0; start < (1ull << 32); start += 7919ull * B) {
        int n = 0;
        for (uint64_t u64 = start; n < B && u64 < (1ull << 32); u64 += 7919, n++) {
            uint32_t u = (uint32_t)u64;
            memcpy(&x[n], &u, sizeof(float));
        }
        for (size_t k = 0; k < sizeof special / sizeof special[0] && n < B + 64; k++) x[n++] = special[k];
        dd_silu_array(a, x, n);
        dd_silu_grad_array(g, x, n);
        for (int i = 0; i < n; i++) {
            float ra = dd_siluf(x[i]), rg = dd_silu_grad(x[i]);
            checked++;
            if (!(isnan(ra) && isnan(a[i])) && memcmp(&ra, &a[i], sizeof ra)) differ++;
            if (!(isnan(rg) && isnan(g[i])) && memcmp(&rg, &g[i], sizeof rg)) differ++;
        }
    }
    CHECK(differ == 0 && checked > 500000,
          "dd_silu_array / dd_silu_grad_array: %ld of %ld values differ from dd_siluf / dd_silu_grad", differ, 2 * checked);
}

/* dd_silu_array_bf16out (the SiLU of a GroupNorm that writes bf16) against dd_siluf: for
 * |x| <= 80 the bf16 roundings agree or differ by one step, on at most 1 in 10^4 values
 * (all 2^32 floats once, 2026-12-03: 4,633 of 2.2e9, max relative error 3.9e-6); beyond,
 * x for x > 80, a value in (-1e-34 |x|, 0] for x < -80; NaN for NaN. A strided sample. */
static void test_silu_bf16out(void) {
    enum { B = 4099 };
    static float x[B], a[B];
    long checked = 0, flips = 0, far = 0, wrong = 0;
    double worst = 0;
    for (uint64_t start = 0; start < (1ull << 32); start += 6007ull * B) {
        int n = 0;
        for (uint64_t u64 = start; n < B && u64 < (1ull << 32); u64 += 6007, n++) {
            uint32_t u = (uint32_t)u64;
            memcpy(&x[n], &u, sizeof(float));
        }
        dd_silu_array_bf16out(a, x, n);
        for (int i = 0; i < n; i++) {
            float v = x[i], r = dd_siluf(v);
            if (isnan(v)) {
                wrong += !isnan(a[i]);
            } else if (isinf(v)) {
                wrong += v > 0 ? a[i] != v : !(a[i] <= 0 || isnan(a[i]));
            } else if (fabsf(v) > 80.0f) {
                wrong += v > 0 ? fabsf(a[i] - v) > 1e-6f * v : !(a[i] <= 0 && fabsf(a[i]) <= 1e-34f * fabsf(v));
            } else {
                checked++;
                uint16_t h1 = dd_bf16_from_f32(r), h2 = dd_bf16_from_f32(a[i]);
                if (h1 != h2) {
                    flips++;
                    far += abs((int)(h1 & 0x7fff) - (int)(h2 & 0x7fff)) > 1 || ((h1 ^ h2) & 0x8000);
                }
                if (r != 0) worst = fmax(worst, fabs((double)a[i] - r) / fabs(r));
            }
        }
    }
    CHECK(checked > 300000 && far == 0 && wrong == 0 && flips <= checked / 10000 && worst < 1e-5,
          "dd_silu_array_bf16out: %ld of %ld bf16 roundings differ (%ld by more than one step), max relative error %.3g, %ld wrong beyond |x| 80 or NaN",
          flips, checked, far, worst, wrong);
}

/* Inference (store_probs 0) takes its own softmax (dd_expf, 16 partial sums): against a
 * naive double reference and against the training path, for rows shorter than, a multiple
 * of and not a multiple of the 16 lanes; and the same bits with one thread and with several. */
static void test_attention_infer(void) {
    const int ls[] = {10, 48, 77};
    for (int li = 0; li < 3; li++) {
        int n = 2, l = ls[li], c = 16, heads = 2, d = c / heads;
        size_t nq = (size_t)n * l * 3 * c, na = (size_t)n * l * c;
        float *qkv = rnd(nq, 2.5f), *a_tr = malloc(na * 4), *a_in = malloc(na * 4), *a_1t = malloc(na * 4);
        float *pr_tr = malloc((size_t)n * heads * l * l * 4), *pr_in = malloc((size_t)l * l * 4);
        double *ref = malloc(na * sizeof *ref), *w = malloc((size_t)l * sizeof *w);
        dd_error err = {0};
        int rc = dd_attention_forward(qkv, a_tr, pr_tr, 1, n, l, c, heads, &err);
        if (!rc) rc = dd_attention_forward(qkv, a_in, pr_in, 0, n, l, c, heads, &err);
        int threads = omp_get_max_threads();
        omp_set_num_threads(threads > 1 ? 1 : 2); /* the other thread count */
        if (!rc) rc = dd_attention_forward(qkv, a_1t, pr_in, 0, n, l, c, heads, &err);
        omp_set_num_threads(threads);
        CHECK(rc == 0, "attention inference L=%d: %s", l, err.msg);
        for (int b = 0; b < n; b++)
            for (int h = 0; h < heads; h++)
                for (int t = 0; t < l; t++) {
                    double mx = -1e300, s = 0;
                    for (int u = 0; u < l; u++) {
                        double dot = 0;
                        for (int k = 0; k < d; k++)
                            dot += (double)qkv[((size_t)b * l + t) * 3 * c + h * 3 * d + k] *
                                   qkv[((size_t)b * l + u) * 3 * c + h * 3 * d + d + k];
                        w[u] = dot / sqrt((double)d);
                        mx = fmax(mx, w[u]);
                    }
                    for (int u = 0; u < l; u++) s += (w[u] = exp(w[u] - mx));
                    for (int k = 0; k < d; k++) {
                        double acc = 0;
                        for (int u = 0; u < l; u++) acc += w[u] / s * qkv[((size_t)b * l + u) * 3 * c + h * 3 * d + 2 * d + k];
                        ref[((size_t)b * l + t) * c + h * d + k] = acc;
                    }
                }
        CHECK(max_err_d(a_in, ref, na) < 1e-5, "attention inference L=%d vs naive: %.3g", l, max_err_d(a_in, ref, na));
        CHECK(check_max_err(a_in, a_tr, (long)na) < 1e-6, "attention inference L=%d vs the training path: %.3g", l,
              check_max_err(a_in, a_tr, (long)na));
        CHECK(same_bits(a_in, a_1t, na), "attention inference L=%d: the same bits with another thread count", l);
        free(qkv), free(a_tr), free(a_in), free(a_1t), free(pr_tr), free(pr_in), free(ref), free(w);
    }
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
    test_attention_infer();
    test_expf_glibc();
    test_silu_arrays();
    test_silu_bf16out();
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

/* ---- broadcast add, scalar add, squared norm, Adam update ---- */
typedef struct { float *y0, *y, *b; int n, c; size_t hw; } bc_ctx;
static void bc_fwd(void *v) {
    bc_ctx *q = v;
    size_t ny = (size_t)q->n * q->hw * q->c;
    memcpy(q->y, q->y0, ny * sizeof *q->y);
    dd_add_bcast_forward(q->y, q->b, q->n, q->hw, q->c);
}
static void test_bcast(void) {
    int n = 3, c = 19;
    size_t hw = 37, ny = (size_t)n * hw * c;
    bc_ctx q = {rnd(ny, 1), malloc(ny * 4), rnd((size_t)n * c, 1), n, c, hw};
    double *ref = malloc(ny * sizeof *ref);
    bc_fwd(&q);
    for (int s = 0; s < n; s++)
        for (size_t p = 0; p < hw; p++)
            for (int k = 0; k < c; k++) {
                size_t i = ((size_t)s * hw + p) * c + k;
                ref[i] = (double)q.y0[i] + q.b[(size_t)s * c + k];
            }
    CHECK(max_err_d(q.y, ref, ny) < 1e-7, "add_bcast forward vs naive: %.3g", max_err_d(q.y, ref, ny));
    /* backward: db[s,k] = sum over pixels of dy; naive double sum, then finite differences */
    float *g = rnd(ny, 1), *db = malloc((size_t)n * c * 4);
    double *rdb = calloc((size_t)n * c, sizeof *rdb);
    dd_add_bcast_backward(g, db, n, hw, c);
    for (int s = 0; s < n; s++)
        for (size_t p = 0; p < hw; p++)
            for (int k = 0; k < c; k++) rdb[(size_t)s * c + k] += g[((size_t)s * hw + p) * c + k];
    CHECK(max_err_d(db, rdb, (size_t)n * c) < 1e-5, "add_bcast backward vs naive: %.3g", max_err_d(db, rdb, (size_t)n * c));
    fd_check("add_bcast", bc_fwd, &q, q.b, (size_t)n * c, db, q.y, g, ny, 1e-2f);
    float x[5] = {1, -2, 0.5f, 3, 0};
    dd_add_scalar(x, 4, 1.0f);
    CHECK(x[0] == 2 && x[1] == -1 && x[2] == 1.5f && x[3] == 4 && x[4] == 0, "add_scalar");
    free(q.y0), free(q.y), free(q.b), free(ref), free(g), free(db), free(rdb);
}

static void test_optim(void) {
    size_t n = 1003;
    float *g = rnd(n, 2);
    double ref = 0.5;
    for (size_t i = 0; i < n; i++) ref += (double)g[i] * g[i];
    double got = dd_sumsq(g, n, 0.5);
    CHECK(fabs(got - ref) <= 1e-12 * ref, "sumsq vs naive: %.17g vs %.17g", got, ref);
    /* chaining over pieces equals one pass (the grad norm relies on it) */
    CHECK(dd_sumsq(g + 400, n - 400, dd_sumsq(g, 400, 0.5)) == got, "sumsq chained != one pass");
    /* Adam: the update against the formula in double */
    float *w = rnd(n, 1), *m = rnd(n, 0.1f), *v = rnd(n, 0.1f);
    for (size_t i = 0; i < n; i++) v[i] = fabsf(v[i]);
    double *rw = malloc(n * sizeof *rw), *rm = malloc(n * sizeof *rm), *rv = malloc(n * sizeof *rv);
    dd_adam_coef k = {.clip = 0.7f, .b1 = 0.9f, .b2 = 0.999f, .omb1 = 0.1f, .omb2 = 0.001f,
                      .eps = 1e-8f, .step_size = 1e-3f, .bc2_sqrt = 0.3f};
    for (size_t i = 0; i < n; i++) {
        double gi = (double)g[i] * k.clip;
        rm[i] = m[i] * (double)k.b1 + gi * k.omb1;
        rv[i] = v[i] * (double)k.b2 + gi * gi * k.omb2;
        rw[i] = w[i] - (double)k.step_size * rm[i] / (sqrt(rv[i]) / k.bc2_sqrt + k.eps);
    }
    dd_adam_update(w, g, m, v, n, &k);
    CHECK(max_err_d(m, rm, n) < 1e-6 && max_err_d(v, rv, n) < 1e-6 && max_err_d(w, rw, n) < 1e-6,
          "adam update vs naive: m %.3g v %.3g w %.3g", max_err_d(m, rm, n), max_err_d(v, rv, n), max_err_d(w, rw, n));
    free(g), free(w), free(m), free(v), free(rw), free(rm), free(rv);
}


/* ---- diffusion ops: naive double reference, finite differences, and the same bits
 * as model/diffusion.c's loops (which the model still calls; they move here) ---- */
static dd_guided_coef guided_coef(const dd_schedule *s, int ts, int tb, float w) {
    double abs_ = s->alpha_bar[ts], abb = s->alpha_bar[tb];
    dd_guided_coef k = {(float)(1.0 / sqrt(abs_)), (float)sqrt(1.0 / abs_ - 1.0), (float)(1.0 / sqrt(abb)),
                        (float)sqrt(1.0 / abb - 1.0), (float)sqrt(abs_), (float)sqrt(1.0 - abs_), w};
    return k;
}
static double clampd(double v) { return v < -1 ? -1 : v > 1 ? 1 : v; }
typedef struct { const dd_guided_coef *k; float *xs, *xb, *es, *eb, *y; size_t n; } gr_ctx;
static void gr_fwd(void *v) {
    gr_ctx *q = v;
    dd_recon_forward(q->k, q->xs, q->xb, q->es, q->eb, q->y, NULL, q->n);
}
static void test_diffusion(void) {
    dd_schedule sch;
    dd_error err = {0};
    CHECK(dd_schedule_init(&sch, 1000, &err) == DD_OK, "schedule: %s", err.msg);
    size_t n = 777;
    float *x0 = rnd(n, 1), *eps = rnd(n, 1.5f), *xt = malloc(n * 4), *xt2 = malloc(n * 4);
    double *ref = malloc(n * sizeof *ref);
    /* noising */
    float a = (float)sqrt(sch.alpha_bar[250]), b = (float)sqrt(1.0 - sch.alpha_bar[250]);
    dd_axpby(a, x0, b, eps, xt, n);
    for (size_t i = 0; i < n; i++) ref[i] = (double)a * x0[i] + (double)b * eps[i];
    CHECK(max_err_d(xt, ref, n) < 1e-6, "axpby vs naive: %.3g", max_err_d(xt, ref, n));
    dd_q_sample(&sch, 250, x0, eps, xt2, n);
    CHECK(same_bits(xt, xt2, n), "axpby differs from dd_q_sample");
    /* guided reconstruction */
    int ts = 200, tb = 400;
    dd_guided_coef k = guided_coef(&sch, ts, tb, 1.0f);
    float *xs = malloc(n * 4), *xb = malloc(n * 4), *es = rnd(n, 1), *eb = rnd(n, 1);
    dd_q_sample(&sch, ts, x0, eps, xs, n);
    dd_q_sample(&sch, tb, x0, es, xb, n);
    float *y1 = malloc(n * 4), *y2 = malloc(n * 4), *xb1 = malloc(n * 4), *xb2 = malloc(n * 4);
    dd_recon_forward(&k, xs, xb, es, eb, y1, xb1, n);
    dd_guided_recon(&sch, ts, tb, 1.0f, xs, xb, es, eb, y2, xb2, n);
    CHECK(same_bits(y1, y2, n) && same_bits(xb1, xb2, n), "guided reconstruction differs from dd_guided_recon");
    {
        double aS = sch.alpha_bar[ts], aB = sch.alpha_bar[tb];
        for (size_t i = 0; i < n; i++) {
            double x0b = clampd(xb[i] / sqrt(aB) - sqrt(1 / aB - 1) * eb[i]);
            double eh = es[i] - sqrt(1 - aS) * (sqrt(aS) * x0b + sqrt(1 - aS) * es[i] - xs[i]);
            ref[i] = clampd(xs[i] / sqrt(aS) - sqrt(1 / aS - 1) * eh);
        }
        CHECK(max_err_d(y1, ref, n) < 1e-5, "guided reconstruction vs naive: %.3g", max_err_d(y1, ref, n));
    }
    float *g = rnd(n, 1), *ds1 = rnd(n, 1), *db1 = rnd(n, 1), *ds2 = malloc(n * 4), *db2 = malloc(n * 4);
    memcpy(ds2, ds1, n * 4), memcpy(db2, db1, n * 4);
    dd_recon_backward(&k, xs, xb, es, eb, g, ds1, db1, n);
    dd_guided_recon_backward(&sch, ts, tb, 1.0f, xs, xb, es, eb, g, ds2, db2, n);
    CHECK(same_bits(ds1, ds2, n) && same_bits(db1, db2, n), "guided reconstruction backward differs from dd_guided_recon_backward");
    float *zs = calloc(n, 4), *zb = calloc(n, 4);
    dd_recon_backward(&k, xs, xb, es, eb, g, zs, zb, n);
    gr_ctx q = {&k, xs, xb, es, eb, y1, n};
    fd_check("guided reconstruction d e_s", gr_fwd, &q, es, n, zs, y1, g, n, 1e-3f);
    fd_check("guided reconstruction d e_b", gr_fwd, &q, eb, n, zb, y1, g, n, 1e-3f);
    /* DDPM step at t = 100 and t = 0, noise drawn in the model's order */
    for (int t = 100; t >= 0; t -= 100) {
        double ab = sch.alpha_bar[t], abp = t > 0 ? sch.alpha_bar[t - 1] : 1.0, beta = sch.beta[t];
        dd_ddpm_coef c = {(float)(1.0 / sqrt(ab)), (float)sqrt(1.0 / ab - 1.0), (float)(beta * sqrt(abp) / (1.0 - ab)),
                          (float)((1.0 - abp) * sqrt(1.0 - beta) / (1.0 - ab)), (float)sqrt(beta)};
        dd_rng r1, r2;
        dd_rng_seed(&r1, 5), dd_rng_seed(&r2, 5);
        float *noise = malloc(n * 4);
        for (size_t i = 0; t > 0 && i < n; i++) noise[i] = (float)dd_rng_normal(&r1);
        memcpy(xt2, xs, n * 4), memcpy(xt, xs, n * 4);
        for (size_t i = 0; i < n; i++) {
            double z0 = clampd(xt[i] / sqrt(ab) - sqrt(1 / ab - 1) * eps[i]);
            ref[i] = t ? beta * sqrt(abp) / (1 - ab) * z0 + (1 - abp) * sqrt(1 - beta) / (1 - ab) * xt[i] + sqrt(beta) * noise[i] : z0;
        }
        dd_ddpm_update(&c, xt, eps, t ? noise : NULL, n);
        dd_ddpm_step(&sch, t, xt2, eps, n, &r2);
        CHECK(same_bits(xt, xt2, n), "ddpm update at t=%d differs from dd_ddpm_step", t);
        CHECK(max_err_d(xt, ref, n) < 1e-5, "ddpm update at t=%d vs naive: %.3g", t, max_err_d(xt, ref, n));
        free(noise);
    }
    free(x0), free(eps), free(xt), free(xt2), free(ref), free(xs), free(xb), free(es), free(eb);
    free(y1), free(y2), free(xb1), free(xb2), free(g), free(ds1), free(db1), free(ds2), free(db2), free(zs), free(zb);
}

/* ---- the backend table ---- */
/* Every entry of dd_backend; the size check below fails when an entry is added to
 * backend.h and not here. */
#define BACKEND_ENTRIES(X)                                                                 \
    X(engine_create) X(engine_free) X(activate) X(scratch_bytes) X(commit_scratch) X(freeze_weights) \
    X(has_bf16)                                                                            \
    X(buf_alloc) X(buf_free) X(buf_zero) X(copy_h2d) X(copy_d2h) X(copy_d2d)               \
    X(conv_create) X(conv_free) X(conv_algo_used) X(conv_impl) X(conv_forward)             \
    X(conv_takes_bf16) X(conv_accumulates) X(conv_forward_bf16) X(groupnorm_forward_bf16)                      \
    X(conv_backward) X(sgemm) X(linear_forward) X(linear_backward) X(groupnorm_forward)    \
    X(groupnorm_backward) X(batchnorm_forward) X(batchnorm_backward) X(silu_forward)       \
    X(silu_backward) X(relu_forward) X(relu_backward) X(sigmoid_forward)                   \
    X(sigmoid_backward) X(add_forward) X(copy_grad) X(add_scalar) X(add_bcast_forward)     \
    X(add_bcast_backward) X(concat_forward) X(concat_backward) X(avgpool2_forward)         \
    X(avgpool2_backward) X(maxpool2_forward) X(maxpool2_backward) X(upnearest2_forward)    \
    X(upnearest2_backward) X(upbilinear2_forward) X(upbilinear2_backward)                  \
    X(attention_forward) X(attention_backward) X(timestep_embedding) X(mse_loss)           \
    X(focal_loss) X(smoothl1_loss) X(axpby) X(guided_recon_forward)                       \
    X(guided_recon_backward) X(ddpm_step) X(sumsq) X(adam_update)

static void test_backend_table(dd_engine *eng) {
    const dd_backend *be = dd_backend_get("cpu");
    CHECK(be && !strcmp(be->name, "cpu"), "dd_backend_get(\"cpu\")");
    CHECK(!dd_backend_get("cuda-not-built") && !dd_backend_get("") && !dd_backend_get(NULL),
          "unknown backend names give NULL");
    if (!be) return;
    CHECK(dd_engine_backend(eng) == be, "dd_engine_create makes a cpu engine");
    int count = 0;
#define NONNULL(f)                                                                         \
    count++;                                                                               \
    CHECK(be->f != NULL, "cpu backend: entry " #f " is NULL");
    BACKEND_ENTRIES(NONNULL)
#undef NONNULL
    CHECK(sizeof(dd_backend) == sizeof(const char *) + (size_t)count * sizeof(void (*)(void)),
          "dd_backend has %zu bytes, the test lists %d entries: list the new ones in BACKEND_ENTRIES",
          sizeof(dd_backend), count);

    dd_error err = {0};
    dd_engine *e2 = NULL;
    CHECK(dd_engine_create_on(be, 1, &e2, &err) == DD_OK && e2 && dd_engine_threads(e2) == 1 &&
          dd_engine_backend(e2) == be, "dd_engine_create_on(cpu): %s", err.msg);
    dd_engine_free(e2);
    dd_engine_activate(eng); /* back to this test's thread count */

    /* buffers */
    size_t nb = 1000;
    float *d = be->buf_alloc(eng, nb * sizeof *d), *h = rnd(nb, 1), *h2 = malloc(nb * sizeof *h2);
    CHECK(d && ((uintptr_t)d & 63) == 0, "buf_alloc: 64-byte aligned");
    be->copy_h2d(eng, d, h, nb * sizeof *d);
    be->copy_d2h(eng, h2, d, nb * sizeof *d);
    CHECK(same_bits(h, h2, nb), "copy_h2d / copy_d2h round trip");
    be->buf_zero(eng, d, nb * sizeof *d);
    be->copy_d2d(eng, h2, d, nb * sizeof *d);
    int zero = 1;
    for (size_t i = 0; i < nb; i++) zero &= h2[i] == 0.0f;
    CHECK(zero, "buf_zero / copy_d2d");
    be->buf_free(eng, d);
    be->buf_free(eng, NULL);
    free(h), free(h2);

    /* through the table == direct, bit for bit */
    int n = 2, hh = 8, ww = 8, c = 32, g = 8, hw = hh * ww;
    size_t nx = (size_t)n * hw * c;
    float *x = rnd(nx, 1), *gam = rnd(c, 1), *bet = rnd(c, 1), *dy = rnd(nx, 1);
    float *y1 = malloc(nx * 4), *y2 = malloc(nx * 4), *dx1 = malloc(nx * 4), *dx2 = malloc(nx * 4);
    float mean1[16], rstd1[16], mean2[16], rstd2[16];
    float dg1[32] = {0}, db1[32] = {0}, dg2[32] = {0}, db2[32] = {0};
    dd_groupnorm_forward(x, gam, bet, y1, mean1, rstd1, n, hw, c, g, 1e-5f, 1, &err);
    be->groupnorm_forward(eng, x, gam, bet, y2, mean2, rstd2, n, hw, c, g, 1e-5f, 1, &err);
    dd_groupnorm_backward(x, gam, bet, mean1, rstd1, dy, dx1, dg1, db1, n, hw, c, g, 1, 0, &err);
    be->groupnorm_backward(eng, x, gam, bet, mean2, rstd2, dy, dx2, dg2, db2, n, hw, c, g, 1, 0, &err);
    CHECK(same_bits(y1, y2, nx) && same_bits(dx1, dx2, nx) && same_bits(dg1, dg2, c) && same_bits(db1, db2, c),
          "groupnorm+silu through the table differs from the direct call");
    dd_silu_forward(x, y1, nx);
    be->silu_forward(eng, x, y2, nx);
    CHECK(same_bits(y1, y2, nx), "silu through the table differs");
    dd_upbilinear2_forward(x, y1, n, hh / 2, ww / 2, c);
    be->upbilinear2_forward(eng, x, y2, n, hh / 2, ww / 2, c);
    CHECK(same_bits(y1, y2, nx), "upbilinear2 through the table differs");
    float sum1[64], sum2[64];
    dd_add_bcast_backward(dy, sum1, n, (size_t)hw, c);
    be->add_bcast_backward(eng, dy, sum2, n, (size_t)hw, c);
    CHECK(same_bits(sum1, sum2, (size_t)n * c), "add_bcast_backward through the table differs");
    /* attention: L = 16, C = 32, 4 heads; qkv [N,L,3C] = the first 2*16*96 values of x */
    {
        float *pr1 = malloc((size_t)n * 4 * 16 * 16 * 4), *pr2 = malloc((size_t)n * 4 * 16 * 16 * 4);
        float *a1 = malloc((size_t)n * 16 * 32 * 4), *a2 = malloc((size_t)n * 16 * 32 * 4);
        CHECK(dd_attention_forward(x, a1, pr1, 1, n, 16, 32, 4, &err) == DD_OK &&
              be->attention_forward(eng, x, a2, pr2, 1, n, 16, 32, 4, &err) == DD_OK &&
              same_bits(a1, a2, (size_t)n * 16 * 32) && same_bits(pr1, pr2, (size_t)n * 4 * 16 * 16),
              "attention through the table differs: %s", err.msg);
        free(pr1), free(pr2), free(a1), free(a2);
    }
    /* convolution made and run through the table, against one made and run directly */
    {
        dd_conv_shape s = {n, hh, ww, c, 16, 3, 1, 1, 0};
        dd_conv *c1 = NULL, *c2 = NULL;
        size_t nw = (size_t)16 * c * 9, ny = (size_t)n * hw * 16;
        float *w = rnd(nw, 0.1f), *b = rnd(16, 1), *gy = rnd(ny, 1);
        float *o1 = malloc(ny * 4), *o2 = malloc(ny * 4), *dw1 = calloc(nw, 4), *dw2 = calloc(nw, 4);
        if (dd_conv_create(eng, &s, DD_CONV_DIRECT, 1, &c1, &err) ||
            be->conv_create(eng, &s, DD_CONV_DIRECT, 1, &c2, &err) || dd_engine_commit_scratch(eng, &err)) {
            CHECK(0, "conv create: %s", err.msg);
        } else {
            dd_conv_forward(c1, x, w, b, o1, &err);
            be->conv_forward(c2, x, w, b, o2, &err);
            dd_conv_backward(c1, x, w, gy, dx1, dw1, NULL, 0, &err);
            be->conv_backward(c2, x, w, gy, dx2, dw2, NULL, 0, &err);
            CHECK(same_bits(o1, o2, ny) && same_bits(dx1, dx2, nx) && same_bits(dw1, dw2, nw),
                  "conv through the table differs");
            CHECK(be->conv_algo_used(c2) == DD_CONV_DIRECT && !strcmp(be->conv_impl(c2), dd_conv_impl(c1)),
                  "conv_algo_used / conv_impl through the table");
        }
        be->conv_free(c2);
        dd_conv_free(c1);
        free(w), free(b), free(gy), free(o1), free(o2), free(dw1), free(dw2);
    }
    /* a loss with its gradient, and the Adam update */
    {
        float *pp = malloc(nx * 4), *yy = malloc(nx * 4);
        for (size_t i = 0; i < nx; i++) pp[i] = 0.5f + 0.45f * x[i], yy[i] = dy[i] > 0.5f;
        double l1 = dd_focal_loss(pp, yy, dx1, nx, 0.5f, 4.0f, 5.0f, 0);
        double l2 = be->focal_loss(eng, pp, yy, dx2, nx, 0.5f, 4.0f, 5.0f, 0);
        CHECK(l1 == l2 && same_bits(dx1, dx2, nx), "focal loss through the table differs");
        dd_adam_coef k = {1.0f, 0.9f, 0.999f, 0.1f, 0.001f, 1e-8f, 1e-3f, 0.04f};
        float *w1 = rnd(nx, 1), *w2 = malloc(nx * 4), *m1 = calloc(nx, 4), *m2 = calloc(nx, 4);
        float *v1 = calloc(nx, 4), *v2 = calloc(nx, 4);
        memcpy(w2, w1, nx * 4);
        dd_adam_update(w1, dy, m1, v1, nx, &k);
        be->adam_update(eng, w2, dy, m2, v2, nx, &k);
        CHECK(same_bits(w1, w2, nx) && same_bits(m1, m2, nx) && same_bits(v1, v2, nx),
              "adam update through the table differs");
        CHECK(dd_sumsq(dy, nx, 0) == be->sumsq(eng, dy, nx, 0), "sumsq through the table differs");
        dd_guided_coef gk = {2.0f, 1.5f, 3.0f, 2.5f, 0.5f, 0.8f, 1.0f};
        dd_recon_forward(&gk, x, dy, w1, pp, y1, dx1, nx);
        be->guided_recon_forward(eng, &gk, x, dy, w1, pp, y2, dx2, nx);
        CHECK(same_bits(y1, y2, nx) && same_bits(dx1, dx2, nx), "guided reconstruction through the table differs");
        free(pp), free(yy), free(w1), free(w2), free(m1), free(m2), free(v1), free(v2);
    }
    free(x), free(gam), free(bet), free(dy), free(y1), free(y2), free(dx1), free(dx2);
}

/* ---- frozen weights (dd_engine_freeze_weights) ----
 * A frozen engine's forward convolutions keep their converted weights: the output is
 * bit-identical to an unfrozen engine's, the block is counted in scratch_bytes, a new
 * weights pointer is converted again, and new values at the same pointer are not seen
 * (the promise the caller made; checked so that a cache that is not used fails here).
 * With a cap below what the convolutions need nothing is kept (all or nothing). Run at the engine's precision (bf16 where the CPU has it). */
static void test_frozen_weights(int bf16) {
    dd_error err = {0};
    dd_engine *ref = NULL, *fr = NULL, *none = NULL;
    if (dd_engine_create(2, &ref, &err) || dd_engine_create(2, &fr, &err) || dd_engine_create(2, &none, &err)) {
        CHECK(0, "frozen weights: engines: %s", err.msg);
        dd_engine_free(ref), dd_engine_free(fr), dd_engine_free(none);
        return;
    }
    dd_precision p = bf16 ? DD_PREC_BF16 : DD_PREC_F32;
    dd_engine_set_precision(ref, p, &err), dd_engine_set_precision(fr, p, &err), dd_engine_set_precision(none, p, &err);
    dd_conv_shape s = {1, 12, 10, 16, 32, 3, 1, 1, 0}; /* N H W Cin Cout k stride pad */
    size_t nx = (size_t)12 * 10 * 16, nw = (size_t)32 * 16 * 9, ny = (size_t)12 * 10 * 32;
    float *x = rnd(nx, 1), *w = rnd(nw, 0.2f), *w2 = rnd(nw, 0.2f), *b = rnd(32, 1);
    float *y_ref = malloc(ny * 4), *y_ref2 = malloc(ny * 4), *y = malloc(ny * 4);
    dd_conv *cr = NULL, *cf = NULL, *cn = NULL;
    if (dd_conv_create(ref, &s, DD_CONV_DIRECT, 0, &cr, &err) || dd_conv_create(fr, &s, DD_CONV_DIRECT, 0, &cf, &err) ||
        dd_conv_create(none, &s, DD_CONV_DIRECT, 0, &cn, &err)) {
        CHECK(0, "frozen weights: conv create: %s", err.msg);
        goto done;
    }
    size_t before = dd_engine_scratch_bytes(fr);
    CHECK(dd_engine_freeze_weights(fr, (size_t)1 << 30, &err) == 0, "freeze: %s", err.msg);
    CHECK(dd_engine_freeze_weights(fr, (size_t)1 << 30, &err) == DD_E_INVALID, "a second freeze is refused");
    size_t wbytes = (size_t)32 * 16 * 9 * (bf16 ? 2 : 4);
    CHECK(dd_engine_scratch_bytes(fr) >= before + wbytes && dd_engine_scratch_bytes(fr) <= before + wbytes + 4096,
          "the weight block is counted: %zu -> %zu bytes (weights %zu)", before, dd_engine_scratch_bytes(fr), wbytes);
    CHECK(dd_engine_freeze_weights(none, wbytes / 2, &err) == 0 && dd_engine_scratch_bytes(none) == before,
          "a cap below the need: no block (%zu bytes, unfrozen %zu)", dd_engine_scratch_bytes(none), before);
    dd_conv_forward(cr, x, w, b, y_ref, &err);
    dd_conv_forward(cr, x, w2, b, y_ref2, &err);
    for (int rep = 0; rep < 2; rep++) {
        CHECK(dd_conv_forward(cf, x, w, b, y, &err) == 0 && same_bits(y, y_ref, ny),
              "frozen forward %d differs from the unfrozen engine's", rep);
    }
    CHECK(dd_conv_forward(cf, x, w2, b, y, &err) == 0 && same_bits(y, y_ref2, ny),
          "frozen forward with another weights pointer: not converted again");
    /* new values at the same pointer: the frozen conv keeps what it converted */
    float *keep = malloc(nw * 4);
    memcpy(keep, w2, nw * 4);
    memcpy(w2, w, nw * 4);
    CHECK(dd_conv_forward(cf, x, w2, b, y, &err) == 0 && same_bits(y, y_ref2, ny),
          "frozen forward: the kept weights were not used (converted again at the same pointer)");
    /* no block: converted on every call, so the new values are seen */
    CHECK(dd_conv_forward(cn, x, w2, b, y, &err) == 0 && same_bits(y, y_ref, ny),
          "engine without a block: the weights' new values were not used");
    memcpy(w2, keep, nw * 4);
    free(keep);
done:
    dd_conv_free(cr), dd_conv_free(cf), dd_conv_free(cn);
    dd_engine_free(ref), dd_engine_free(fr), dd_engine_free(none);
    free(x), free(w), free(w2), free(b), free(y_ref), free(y_ref2), free(y);
}

/* The accumulating forward (shape.accumulate, a sum post-op): y_new = y_old + (conv(x) + b),
 * the same bits as an overwriting forward followed by the addition, at the engine's precision;
 * a conv built with backward ignores the request (training keeps its buffers). */
static void test_conv_accumulate(int bf16) {
    dd_error err = {0};
    dd_engine *e = NULL;
    if (dd_engine_create(2, &e, &err)) {
        CHECK(0, "accumulate: engine: %s", err.msg);
        return;
    }
    dd_engine_set_precision(e, bf16 ? DD_PREC_BF16 : DD_PREC_F32, &err);
    const dd_conv_shape shapes[] = {{1, 12, 10, 16, 32, 3, 1, 1, 1}, {2, 9, 7, 32, 16, 1, 1, 0, 1}, {1, 16, 16, 8, 8, 3, 2, 1, 1}};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        dd_conv_shape s = shapes[si], plain_s = s;
        plain_s.accumulate = 0;
        int ho, wo;
        dd_conv_out_hw(&s, &ho, &wo);
        size_t nx = (size_t)s.n * s.h * s.w * s.cin, nw = (size_t)s.cout * s.cin * s.k * s.k;
        size_t ny = (size_t)s.n * ho * wo * s.cout;
        float *x = rnd(nx, 1), *w = rnd(nw, 0.2f), *b = rnd((size_t)s.cout, 1), *y0 = rnd(ny, 1);
        float *y = malloc(ny * 4), *ref = malloc(ny * 4);
        dd_conv *ca = NULL, *cp = NULL, *ct = NULL;
        if (dd_conv_create(e, &s, DD_CONV_DIRECT, 0, &ca, &err) || dd_conv_create(e, &plain_s, DD_CONV_DIRECT, 0, &cp, &err) ||
            dd_conv_create(e, &s, DD_CONV_DIRECT, 1, &ct, &err) || dd_engine_commit_scratch(e, &err)) {
            CHECK(0, "accumulate: create: %s", err.msg);
        } else {
            CHECK(!dd_conv_accumulates(cp) && !dd_conv_accumulates(ct), "shape %zu: no accumulation unless asked, none with backward",
                  si);
            dd_conv_forward(cp, x, w, b, ref, &err);
            for (size_t i = 0; i < ny; i++) ref[i] = y0[i] + ref[i];
            memcpy(y, y0, ny * 4);
            int rc = dd_conv_forward(ca, x, w, b, y, &err);
            if (dd_conv_accumulates(ca))
                CHECK(rc == 0 && same_bits(y, ref, ny), "shape %zu (%s): y += conv differs from y + conv (%s)", si,
                      bf16 ? "bf16" : "f32", rc ? err.msg : "bits");
            else
                SKIP("shape %zu (%s): the backend builds no accumulating forward here (%s)", si, bf16 ? "bf16" : "f32",
                     dd_conv_impl(ca));
            memcpy(y, y0, ny * 4);
            dd_conv_forward(ct, x, w, b, y, &err); /* built with backward: overwrites */
            dd_conv_forward(cp, x, w, b, ref, &err);
            CHECK(same_bits(y, ref, ny), "shape %zu: a conv with backward overwrites y", si);
        }
        dd_conv_free(ca), dd_conv_free(cp), dd_conv_free(ct);
        free(x), free(w), free(b), free(y0), free(y), free(ref);
    }
    dd_engine_free(e);
}

/* ---- bad input: errors name the op and the shapes ---- */
static void test_bad_input(dd_engine *eng) {
    dd_error err = {0};
    dd_conv *c = NULL;
    dd_conv_shape s = {0, 8, 8, 4, 4, 3, 1, 1, 0};
    CHECK(dd_conv_create(eng, &s, DD_CONV_DIRECT, 1, &c, &err) == DD_E_INVALID && !c, "zero batch accepted");
    CHECK(strstr(err.msg, "conv") && strstr(err.msg, "N=0"), "conv error message: '%s'", err.msg);
    dd_conv_shape s2 = {1, 1, 1, 4, 4, 5, 1, 0, 0};
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
    test_precision(eng);
    if (dd_engine_has_bf16(eng)) {
        test_conv_bf16(eng, 2, 7, 6, 5, 8, 3, 1);
        test_conv_bf16(eng, 2, 8, 6, 4, 6, 3, 2);
        test_conv_bf16(eng, 1, 5, 5, 7, 3, 1, 1);
        test_conv_bf16(eng, 2, 16, 16, 32, 64, 3, 1);
    } else {
        printf("test_ops: skipped the bf16 convolution checks: this CPU has no AVX512-BF16\n");
    }
    test_frozen_weights(0);
    if (dd_engine_has_bf16(eng)) test_frozen_weights(1);
    test_conv_accumulate(0);
    if (dd_engine_has_bf16(eng)) test_conv_accumulate(1);
    test_groupnorm(0);
    test_groupnorm(1);
    test_batchnorm();
    test_norms_chunked(0);
    test_norms_chunked(1);
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
    test_bcast();
    test_optim();
    test_diffusion();
    test_backend_table(eng);
    test_bad_input(eng);
    dd_engine_free(eng);
    return check_summary("test_ops");
}
