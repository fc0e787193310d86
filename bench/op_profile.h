/* op_profile.h — owns the op-timing backend of the benchmarks: a dd_backend
 * (backend/backend.h) whose every numeric entry times the same entry of an inner
 * backend (the cpu one) and adds the wall time, the call count and, where the op is a
 * product, its floating-point operations to a per-op record. A model built on it
 * (dd_model_create_on) runs exactly the inner backend's code, so its results are
 * bit-identical; the cost is two clock reads per op call (~thousands per training step).
 *
 *   const dd_backend *be = opprof_backend();        // wraps dd_backend_get("cpu")
 *   dd_model_create_on(be, &cfg, ...); ...warm up...; opprof_reset();
 *   ...timed steps...; opprof_print(stdout, reps, step_ms);
 *
 * FLOP counts (multiply-add = 2): convolution 2·N·Ho·Wo·Cout·Cin·k² per direction
 * (backward counts data and weights separately when both are asked for; a Winograd
 * convolution does fewer multiplications, so its "GFLOP/s" is direct-equivalent and may
 * exceed the peak); sgemm 2mnk;
 * linear 2·M·I·O per direction; attention forward 4·N·L²·C (q·kᵀ and p·v), backward
 * 8·N·L²·C. Everything else is memory-bound and reported by time only.
 * Ops run on the calling thread (OpenMP inside), so wall time per call is the op's. */
#ifndef OP_PROFILE_H
#define OP_PROFILE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"

enum {
    OP_CONV_FWD, OP_CONV_BWD, OP_SGEMM, OP_LINEAR_FWD, OP_LINEAR_BWD, OP_GN_FWD, OP_GN_BWD,
    OP_BN_FWD, OP_BN_BWD, OP_SILU_FWD, OP_SILU_BWD, OP_RELU_FWD, OP_RELU_BWD, OP_SIGMOID_FWD,
    OP_SIGMOID_BWD, OP_ADD, OP_COPY_GRAD, OP_ADD_SCALAR, OP_BCAST_FWD, OP_BCAST_BWD,
    OP_CONCAT_FWD, OP_CONCAT_BWD, OP_AVGPOOL_FWD, OP_AVGPOOL_BWD, OP_MAXPOOL_FWD,
    OP_MAXPOOL_BWD, OP_UPNEAR_FWD, OP_UPNEAR_BWD, OP_UPBIL_FWD, OP_UPBIL_BWD, OP_ATTN_FWD,
    OP_ATTN_BWD, OP_TEMB, OP_MSE, OP_FOCAL, OP_SMOOTHL1, OP_AXPBY, OP_GUIDED_FWD,
    OP_GUIDED_BWD, OP_DDPM, OP_SUMSQ, OP_ADAM, OP_BUF_ZERO, OP_COPY, OP_COUNT
};
static const char *const opprof_names[OP_COUNT] = {
    "conv forward", "conv backward (data + weights)", "sgemm", "linear forward", "linear backward",
    "groupnorm(+silu) forward", "groupnorm(+silu) backward", "batchnorm forward", "batchnorm backward",
    "silu forward", "silu backward", "relu forward", "relu backward", "sigmoid forward",
    "sigmoid backward", "add", "copy/accumulate gradient", "add scalar", "broadcast add forward",
    "broadcast add backward", "concat forward", "concat backward", "avgpool forward",
    "avgpool backward", "maxpool forward", "maxpool backward", "upsample nearest forward",
    "upsample nearest backward", "upsample bilinear forward", "upsample bilinear backward",
    "attention core forward", "attention core backward", "timestep embedding", "mse loss",
    "focal loss", "smoothl1 loss", "axpby (q_sample)", "guided reconstruction forward",
    "guided reconstruction backward", "ddpm step", "sum of squares (grad norm)", "adam update",
    "buffer zero", "buffer copy"};

typedef struct { double s, flop; long calls; } opprof_rec;
static opprof_rec opprof_tab[OP_COUNT];
static const dd_backend *opprof_inner;

/* Per convolution shape and direction, for the "largest convolutions" list. */
#define OPPROF_MAX_CONV 256
typedef struct {
    dd_conv_shape s;
    int winograd; /* the inner backend ran it as Winograd (FLOPs still counted as direct) */
    double fwd_s, bwd_s, fwd_flop, bwd_flop;
    long fwd_calls, bwd_calls;
} opprof_conv_rec;
static opprof_conv_rec opprof_convs[OPPROF_MAX_CONV];
static int opprof_nconv;

/* The wrapper's convolution: the inner one plus the shape (for FLOPs). */
typedef struct { dd_conv *inner; dd_conv_shape s; int rec; } opprof_conv;

static double opprof_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
/* Adds one call of op since t0; returns its duration (one clock read for every total). */
static double opprof_add(int op, double t0, double flop) {
    double dt = opprof_now() - t0;
    opprof_tab[op].s += dt;
    opprof_tab[op].flop += flop;
    opprof_tab[op].calls++;
    return dt;
}
static void opprof_reset(void) {
    memset(opprof_tab, 0, sizeof opprof_tab);
    for (int i = 0; i < opprof_nconv; i++) {
        opprof_conv_rec *r = &opprof_convs[i];
        r->fwd_s = r->bwd_s = r->fwd_flop = r->bwd_flop = 0;
        r->fwd_calls = r->bwd_calls = 0;
    }
}
static double opprof_conv_flop(const dd_conv_shape *s) {
    int ho, wo;
    dd_conv_out_hw(s, &ho, &wo);
    return 2.0 * s->n * ho * wo * (double)s->cout * s->cin * s->k * s->k;
}

#define OPP_T0 double t0_ = opprof_now()
#define OPP_I opprof_inner

/* ---- pass-through: engine, buffers ---- */
static int opp_engine_create(dd_engine *e, void **st, dd_error *err) { return OPP_I->engine_create(e, st, err); }
static void opp_engine_free(void *st) { OPP_I->engine_free(st); }
static void opp_activate(const dd_engine *e) { OPP_I->activate(e); }
static size_t opp_scratch_bytes(const dd_engine *e) { return OPP_I->scratch_bytes(e); }
static int opp_commit_scratch(dd_engine *e, dd_error *err) { return OPP_I->commit_scratch(e, err); }
static int opp_freeze_weights(dd_engine *e, size_t cap, dd_error *err) {
    return OPP_I->freeze_weights ? OPP_I->freeze_weights(e, cap, err) : DD_OK;
}
static int opp_has_bf16(void) { return OPP_I->has_bf16(); }
static void *opp_buf_alloc(dd_engine *e, size_t b) { return OPP_I->buf_alloc(e, b); }
static void opp_buf_free(dd_engine *e, void *p) { OPP_I->buf_free(e, p); }
static void opp_buf_zero(dd_engine *e, void *p, size_t b) { OPP_T0; OPP_I->buf_zero(e, p, b); opprof_add(OP_BUF_ZERO, t0_, 0); }
static void opp_h2d(dd_engine *e, void *d, const void *s, size_t b) { OPP_T0; OPP_I->copy_h2d(e, d, s, b); opprof_add(OP_COPY, t0_, 0); }
static void opp_d2h(dd_engine *e, void *d, const void *s, size_t b) { OPP_T0; OPP_I->copy_d2h(e, d, s, b); opprof_add(OP_COPY, t0_, 0); }
static void opp_d2d(dd_engine *e, void *d, const void *s, size_t b) { OPP_T0; OPP_I->copy_d2d(e, d, s, b); opprof_add(OP_COPY, t0_, 0); }

/* ---- convolutions ---- */
static int opp_conv_create(dd_engine *e, const dd_conv_shape *s, dd_conv_algo algo, int wb, dd_conv **out,
                           dd_error *err) {
    opprof_conv *c = calloc(1, sizeof *c);
    if (!c) return dd_fail(err, DD_E_NOMEM, "op profile: out of memory");
    int rc = OPP_I->conv_create(e, s, algo, wb, &c->inner, err);
    if (rc) {
        free(c);
        return rc;
    }
    c->s = *s;
    c->rec = -1;
    for (int i = 0; i < opprof_nconv && c->rec < 0; i++)
        if (!memcmp(&opprof_convs[i].s, s, sizeof *s)) c->rec = i;
    if (c->rec < 0 && opprof_nconv < OPPROF_MAX_CONV) {
        c->rec = opprof_nconv++;
        memset(&opprof_convs[c->rec], 0, sizeof opprof_convs[0]);
        opprof_convs[c->rec].s = *s;
    }
    if (c->rec >= 0 && OPP_I->conv_algo_used(c->inner) == DD_CONV_WINOGRAD) opprof_convs[c->rec].winograd = 1;
    *out = (dd_conv *)c;
    return DD_OK;
}
static void opp_conv_free(dd_conv *c) {
    if (!c) return;
    OPP_I->conv_free(((opprof_conv *)c)->inner);
    free(c);
}
static dd_conv_algo opp_conv_algo_used(const dd_conv *c) { return OPP_I->conv_algo_used(((const opprof_conv *)c)->inner); }
static const char *opp_conv_impl(const dd_conv *c) { return OPP_I->conv_impl(((const opprof_conv *)c)->inner); }
/* One forward convolution started at t0: into the op table and its shape's record. */
static void opp_conv_forward_done(const opprof_conv *c, double t0) {
    double f = opprof_conv_flop(&c->s), dt = opprof_add(OP_CONV_FWD, t0, f);
    if (c->rec >= 0) opprof_convs[c->rec].fwd_s += dt, opprof_convs[c->rec].fwd_flop += f, opprof_convs[c->rec].fwd_calls++;
}
static int opp_conv_forward(dd_conv *cv, const float *x, const float *w, const float *b, float *y, dd_error *err) {
    opprof_conv *c = (opprof_conv *)cv;
    OPP_T0;
    int rc = OPP_I->conv_forward(c->inner, x, w, b, y, err);
    opp_conv_forward_done(c, t0_);
    return rc;
}
static int opp_conv_takes_bf16(const dd_conv *c) {
    return OPP_I->conv_takes_bf16 && OPP_I->conv_takes_bf16(((const opprof_conv *)c)->inner);
}
static int opp_conv_accumulates(const dd_conv *c) {
    return OPP_I->conv_accumulates && OPP_I->conv_accumulates(((const opprof_conv *)c)->inner);
}
static int opp_conv_forward_bf16(dd_conv *cv, const uint16_t *x, const float *w, const float *b, float *y,
                                 dd_error *err) {
    opprof_conv *c = (opprof_conv *)cv;
    OPP_T0;
    int rc = OPP_I->conv_forward_bf16(c->inner, x, w, b, y, err);
    opp_conv_forward_done(c, t0_);
    return rc;
}
static int opp_conv_backward(dd_conv *cv, const float *x, const float *w, const float *dy, float *dx, float *dw,
                             float *db, int acc, dd_error *err) {
    opprof_conv *c = (opprof_conv *)cv;
    OPP_T0;
    int rc = OPP_I->conv_backward(c->inner, x, w, dy, dx, dw, db, acc, err);
    double f = opprof_conv_flop(&c->s) * ((dx != NULL) + (dw != NULL)), dt = opprof_add(OP_CONV_BWD, t0_, f);
    if (c->rec >= 0) opprof_convs[c->rec].bwd_s += dt, opprof_convs[c->rec].bwd_flop += f, opprof_convs[c->rec].bwd_calls++;
    return rc;
}

/* ---- products ---- */
static int opp_sgemm(dd_engine *e, char ta, char tb, long m, long n, long k, float al, const float *a, long lda,
                     const float *b, long ldb, float be, float *c, long ldc, dd_error *err) {
    OPP_T0;
    int rc = OPP_I->sgemm(e, ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc, err);
    opprof_add(OP_SGEMM, t0_, 2.0 * m * n * k);
    return rc;
}
static int opp_linear_forward(dd_engine *e, const float *x, const float *w, const float *b, float *y, int m, int in,
                              int out, dd_error *err) {
    OPP_T0;
    int rc = OPP_I->linear_forward(e, x, w, b, y, m, in, out, err);
    opprof_add(OP_LINEAR_FWD, t0_, 2.0 * m * in * out);
    return rc;
}
static int opp_linear_backward(dd_engine *e, const float *x, const float *w, const float *dy, float *dx, float *dw,
                               float *db, int m, int in, int out, int acc, dd_error *err) {
    OPP_T0;
    int rc = OPP_I->linear_backward(e, x, w, dy, dx, dw, db, m, in, out, acc, err);
    opprof_add(OP_LINEAR_BWD, t0_, 2.0 * m * in * out * ((dx != NULL) + (dw != NULL)));
    return rc;
}

/* ---- normalisation ---- */
static int opp_gn_fwd(dd_engine *e, const float *x, const float *g, const float *b, float *y, float *mean, float *rstd,
                      int n, int hw, int c, int gr, float eps, int silu, dd_error *err) {
    OPP_T0;
    int rc = OPP_I->groupnorm_forward(e, x, g, b, y, mean, rstd, n, hw, c, gr, eps, silu, err);
    opprof_add(OP_GN_FWD, t0_, 0);
    return rc;
}
static int opp_gn_fwd_bf16(dd_engine *e, const float *x, const float *g, const float *b, uint16_t *y, float *mean,
                           float *rstd, int n, int hw, int c, int gr, float eps, int silu, dd_error *err) {
    OPP_T0;
    int rc = OPP_I->groupnorm_forward_bf16(e, x, g, b, y, mean, rstd, n, hw, c, gr, eps, silu, err);
    opprof_add(OP_GN_FWD, t0_, 0);
    return rc;
}
static int opp_gn_bwd(dd_engine *e, const float *x, const float *g, const float *b, const float *mean,
                      const float *rstd, const float *dy, float *dx, float *dg, float *db, int n, int hw, int c,
                      int gr, int silu, int acc, dd_error *err) {
    OPP_T0;
    int rc = OPP_I->groupnorm_backward(e, x, g, b, mean, rstd, dy, dx, dg, db, n, hw, c, gr, silu, acc, err);
    opprof_add(OP_GN_BWD, t0_, 0);
    return rc;
}
static int opp_bn_fwd(dd_engine *e, const float *x, const float *g, const float *b, float *rm, float *rv, float *y,
                      float *mean, float *rstd, size_t p, int c, float eps, float mom, int tr, dd_error *err) {
    OPP_T0;
    int rc = OPP_I->batchnorm_forward(e, x, g, b, rm, rv, y, mean, rstd, p, c, eps, mom, tr, err);
    opprof_add(OP_BN_FWD, t0_, 0);
    return rc;
}
static int opp_bn_bwd(dd_engine *e, const float *x, const float *g, const float *mean, const float *rstd,
                      const float *dy, float *dx, float *dg, float *db, size_t p, int c, int acc, dd_error *err) {
    OPP_T0;
    int rc = OPP_I->batchnorm_backward(e, x, g, mean, rstd, dy, dx, dg, db, p, c, acc, err);
    opprof_add(OP_BN_BWD, t0_, 0);
    return rc;
}

/* ---- elementwise ---- */
#define OPP_UNARY(fn, op)                                                                 \
    static void opp_##fn(dd_engine *e, const float *x, float *y, size_t n) {              \
        OPP_T0;                                                                           \
        OPP_I->fn(e, x, y, n);                                                            \
        opprof_add(op, t0_, 0);                                                           \
    }
#define OPP_UNARY_BWD(fn, op)                                                             \
    static void opp_##fn(dd_engine *e, const float *x, const float *dy, float *dx, size_t n, \
                         int acc) {                                                       \
        OPP_T0;                                                                           \
        OPP_I->fn(e, x, dy, dx, n, acc);                                                  \
        opprof_add(op, t0_, 0);                                                           \
    }
OPP_UNARY(silu_forward, OP_SILU_FWD)
OPP_UNARY_BWD(silu_backward, OP_SILU_BWD)
OPP_UNARY(relu_forward, OP_RELU_FWD)
OPP_UNARY_BWD(relu_backward, OP_RELU_BWD)
OPP_UNARY(sigmoid_forward, OP_SIGMOID_FWD)
OPP_UNARY_BWD(sigmoid_backward, OP_SIGMOID_BWD)
static void opp_add(dd_engine *e, const float *a, const float *b, float *y, size_t n) { OPP_T0; OPP_I->add_forward(e, a, b, y, n); opprof_add(OP_ADD, t0_, 0); }
static void opp_copy_grad(dd_engine *e, const float *dy, float *dx, size_t n, int acc) { OPP_T0; OPP_I->copy_grad(e, dy, dx, n, acc); opprof_add(OP_COPY_GRAD, t0_, 0); }
static void opp_add_scalar(dd_engine *e, float *x, size_t n, float v) { OPP_T0; OPP_I->add_scalar(e, x, n, v); opprof_add(OP_ADD_SCALAR, t0_, 0); }
static void opp_bcast_fwd(dd_engine *e, float *y, const float *b, int n, size_t hw, int c) { OPP_T0; OPP_I->add_bcast_forward(e, y, b, n, hw, c); opprof_add(OP_BCAST_FWD, t0_, 0); }
static void opp_bcast_bwd(dd_engine *e, const float *dy, float *db, int n, size_t hw, int c) { OPP_T0; OPP_I->add_bcast_backward(e, dy, db, n, hw, c); opprof_add(OP_BCAST_BWD, t0_, 0); }
static void opp_concat_fwd(dd_engine *e, const float *a, int ca, const float *b, int cb, float *y, size_t p) {
    OPP_T0;
    OPP_I->concat_forward(e, a, ca, b, cb, y, p);
    opprof_add(OP_CONCAT_FWD, t0_, 0);
}
static void opp_concat_bwd(dd_engine *e, const float *dy, float *da, int ca, float *db, int cb, size_t p, int aa, int ab) {
    OPP_T0;
    OPP_I->concat_backward(e, dy, da, ca, db, cb, p, aa, ab);
    opprof_add(OP_CONCAT_BWD, t0_, 0);
}

/* ---- resampling ---- */
#define OPP_POOL(fn, op)                                                                        \
    static int opp_##fn(dd_engine *e, const float *x, float *y, int n, int h, int w, int c, dd_error *err) { \
        OPP_T0;                                                                                 \
        int rc = OPP_I->fn(e, x, y, n, h, w, c, err);                                           \
        opprof_add(op, t0_, 0);                                                                 \
        return rc;                                                                              \
    }
OPP_POOL(avgpool2_forward, OP_AVGPOOL_FWD)
OPP_POOL(maxpool2_forward, OP_MAXPOOL_FWD)
static int opp_avgpool2_backward(dd_engine *e, const float *dy, float *dx, int n, int h, int w, int c, int acc, dd_error *err) {
    OPP_T0;
    int rc = OPP_I->avgpool2_backward(e, dy, dx, n, h, w, c, acc, err);
    opprof_add(OP_AVGPOOL_BWD, t0_, 0);
    return rc;
}
static int opp_maxpool2_backward(dd_engine *e, const float *x, const float *dy, float *dx, int n, int h, int w, int c,
                                 int acc, dd_error *err) {
    OPP_T0;
    int rc = OPP_I->maxpool2_backward(e, x, dy, dx, n, h, w, c, acc, err);
    opprof_add(OP_MAXPOOL_BWD, t0_, 0);
    return rc;
}
#define OPP_UP(fn, op)                                                                     \
    static void opp_##fn(dd_engine *e, const float *x, float *y, int n, int h, int w, int c) { \
        OPP_T0;                                                                            \
        OPP_I->fn(e, x, y, n, h, w, c);                                                    \
        opprof_add(op, t0_, 0);                                                            \
    }
#define OPP_UP_BWD(fn, op)                                                                          \
    static void opp_##fn(dd_engine *e, const float *dy, float *dx, int n, int h, int w, int c, int acc) { \
        OPP_T0;                                                                                     \
        OPP_I->fn(e, dy, dx, n, h, w, c, acc);                                                      \
        opprof_add(op, t0_, 0);                                                                     \
    }
OPP_UP(upnearest2_forward, OP_UPNEAR_FWD)
OPP_UP_BWD(upnearest2_backward, OP_UPNEAR_BWD)
OPP_UP(upbilinear2_forward, OP_UPBIL_FWD)
OPP_UP_BWD(upbilinear2_backward, OP_UPBIL_BWD)

/* ---- attention, embedding ---- */
static int opp_attn_fwd(dd_engine *e, const float *qkv, float *a, float *probs, int store, int n, int l, int c, int heads,
                        dd_error *err) {
    OPP_T0;
    int rc = OPP_I->attention_forward(e, qkv, a, probs, store, n, l, c, heads, err);
    opprof_add(OP_ATTN_FWD, t0_, 4.0 * n * (double)l * l * c);
    return rc;
}
static int opp_attn_bwd(dd_engine *e, const float *qkv, const float *probs, const float *da, float *dqkv, float *scr,
                        int n, int l, int c, int heads, int acc, dd_error *err) {
    OPP_T0;
    int rc = OPP_I->attention_backward(e, qkv, probs, da, dqkv, scr, n, l, c, heads, acc, err);
    opprof_add(OP_ATTN_BWD, t0_, 8.0 * n * (double)l * l * c);
    return rc;
}
static int opp_temb(dd_engine *e, const int *t, float *emb, int n, int dim, dd_error *err) {
    OPP_T0;
    int rc = OPP_I->timestep_embedding(e, t, emb, n, dim, err);
    opprof_add(OP_TEMB, t0_, 0);
    return rc;
}

/* ---- losses, diffusion, optimiser ---- */
static double opp_mse(dd_engine *e, const float *p, const float *t, float *dp, size_t n, float s, int acc) {
    OPP_T0;
    double r = OPP_I->mse_loss(e, p, t, dp, n, s, acc);
    opprof_add(OP_MSE, t0_, 0);
    return r;
}
static double opp_focal(dd_engine *e, const float *p, const float *y, float *dp, size_t n, float al, float ga, float s,
                        int acc) {
    OPP_T0;
    double r = OPP_I->focal_loss(e, p, y, dp, n, al, ga, s, acc);
    opprof_add(OP_FOCAL, t0_, 0);
    return r;
}
static double opp_smoothl1(dd_engine *e, const float *p, const float *t, float *dp, size_t n, float beta, float s, int acc) {
    OPP_T0;
    double r = OPP_I->smoothl1_loss(e, p, t, dp, n, beta, s, acc);
    opprof_add(OP_SMOOTHL1, t0_, 0);
    return r;
}
static void opp_axpby(dd_engine *e, float a, const float *x, float b, const float *y, float *z, size_t n) {
    OPP_T0;
    OPP_I->axpby(e, a, x, b, y, z, n);
    opprof_add(OP_AXPBY, t0_, 0);
}
static void opp_guided_fwd(dd_engine *e, const dd_guided_coef *k, const float *xs, const float *xb, const float *es,
                           const float *eb, float *x0, float *x0b, size_t n) {
    OPP_T0;
    OPP_I->guided_recon_forward(e, k, xs, xb, es, eb, x0, x0b, n);
    opprof_add(OP_GUIDED_FWD, t0_, 0);
}
static void opp_guided_bwd(dd_engine *e, const dd_guided_coef *k, const float *xs, const float *xb, const float *es,
                           const float *eb, const float *dx0, float *des, float *deb, size_t n) {
    OPP_T0;
    OPP_I->guided_recon_backward(e, k, xs, xb, es, eb, dx0, des, deb, n);
    opprof_add(OP_GUIDED_BWD, t0_, 0);
}
static void opp_ddpm(dd_engine *e, const dd_ddpm_coef *k, float *x, const float *eps, const float *noise, size_t n) {
    OPP_T0;
    OPP_I->ddpm_step(e, k, x, eps, noise, n);
    opprof_add(OP_DDPM, t0_, 0);
}
static double opp_sumsq(dd_engine *e, const float *x, size_t n, double acc) {
    OPP_T0;
    double r = OPP_I->sumsq(e, x, n, acc);
    opprof_add(OP_SUMSQ, t0_, 0);
    return r;
}
static void opp_adam(dd_engine *e, float *w, const float *g, float *m, float *v, size_t n, const dd_adam_coef *k) {
    OPP_T0;
    OPP_I->adam_update(e, w, g, m, v, n, k);
    opprof_add(OP_ADAM, t0_, 0);
}

/* The wrapper around dd_backend_get("cpu"). */
static const dd_backend *opprof_backend(void) {
    static dd_backend be;
    opprof_inner = dd_backend_get("cpu");
    be = (dd_backend){
        .name = "cpu (op-timed)",
        .engine_create = opp_engine_create, .engine_free = opp_engine_free, .activate = opp_activate,
        .scratch_bytes = opp_scratch_bytes, .commit_scratch = opp_commit_scratch,
        .freeze_weights = opp_freeze_weights, .has_bf16 = opp_has_bf16,
        .buf_alloc = opp_buf_alloc, .buf_free = opp_buf_free, .buf_zero = opp_buf_zero,
        .copy_h2d = opp_h2d, .copy_d2h = opp_d2h, .copy_d2d = opp_d2d,
        .conv_create = opp_conv_create, .conv_free = opp_conv_free, .conv_algo_used = opp_conv_algo_used,
        .conv_impl = opp_conv_impl, .conv_forward = opp_conv_forward, .conv_backward = opp_conv_backward,
        .sgemm = opp_sgemm, .linear_forward = opp_linear_forward, .linear_backward = opp_linear_backward,
        .groupnorm_forward = opp_gn_fwd, .groupnorm_backward = opp_gn_bwd,
        /* the optional bf16 entries only where the wrapped backend has them */
        .conv_takes_bf16 = opprof_inner->conv_takes_bf16 ? opp_conv_takes_bf16 : NULL,
        .conv_forward_bf16 = opprof_inner->conv_forward_bf16 ? opp_conv_forward_bf16 : NULL,
        .conv_accumulates = opprof_inner->conv_accumulates ? opp_conv_accumulates : NULL,
        .groupnorm_forward_bf16 = opprof_inner->groupnorm_forward_bf16 ? opp_gn_fwd_bf16 : NULL,
        .batchnorm_forward = opp_bn_fwd, .batchnorm_backward = opp_bn_bwd,
        .silu_forward = opp_silu_forward, .silu_backward = opp_silu_backward,
        .relu_forward = opp_relu_forward, .relu_backward = opp_relu_backward,
        .sigmoid_forward = opp_sigmoid_forward, .sigmoid_backward = opp_sigmoid_backward,
        .add_forward = opp_add, .copy_grad = opp_copy_grad, .add_scalar = opp_add_scalar,
        .add_bcast_forward = opp_bcast_fwd, .add_bcast_backward = opp_bcast_bwd,
        .concat_forward = opp_concat_fwd, .concat_backward = opp_concat_bwd,
        .avgpool2_forward = opp_avgpool2_forward, .avgpool2_backward = opp_avgpool2_backward,
        .maxpool2_forward = opp_maxpool2_forward, .maxpool2_backward = opp_maxpool2_backward,
        .upnearest2_forward = opp_upnearest2_forward, .upnearest2_backward = opp_upnearest2_backward,
        .upbilinear2_forward = opp_upbilinear2_forward, .upbilinear2_backward = opp_upbilinear2_backward,
        .attention_forward = opp_attn_fwd, .attention_backward = opp_attn_bwd, .timestep_embedding = opp_temb,
        .mse_loss = opp_mse, .focal_loss = opp_focal, .smoothl1_loss = opp_smoothl1,
        .axpby = opp_axpby, .guided_recon_forward = opp_guided_fwd, .guided_recon_backward = opp_guided_bwd,
        .ddpm_step = opp_ddpm, .sumsq = opp_sumsq, .adam_update = opp_adam,
    };
    return &be;
}

/* A Markdown table of the ops (sorted by time) per repetition, against the step's own
 * wall time step_ms (the rest, "outside the ops", is the model code between op calls),
 * with GFLOP/s of the products against the measured peaks (<= 0: not shown); then the
 * `top` convolution shapes by time. */
static int opprof_cmp_desc(const void *a, const void *b) {
    double x = opprof_tab[*(const int *)a].s, y = opprof_tab[*(const int *)b].s;
    return x < y ? 1 : x > y ? -1 : 0;
}
static int opprof_conv_cmp_desc(const void *a, const void *b) {
    const opprof_conv_rec *x = &opprof_convs[*(const int *)a], *y = &opprof_convs[*(const int *)b];
    double tx = x->fwd_s + x->bwd_s, ty = y->fwd_s + y->bwd_s;
    return tx < ty ? 1 : tx > ty ? -1 : 0;
}
static void opprof_print(FILE *f, int reps, double step_ms, double peak_f32, double peak_bf16, int conv_bf16, int top) {
    int idx[OP_COUNT];
    double total = 0;
    for (int i = 0; i < OP_COUNT; i++) idx[i] = i, total += opprof_tab[i].s;
    qsort(idx, OP_COUNT, sizeof idx[0], opprof_cmp_desc);
    double step_s = step_ms / 1e3;
    double peak_conv = conv_bf16 ? peak_bf16 : peak_f32;
    fprintf(f, "GFLOP/s of convolutions count direct-convolution FLOPs (Winograd ones do fewer).\n\n");
    fprintf(f, "| op | calls | ms | %% of step | GFLOP | GFLOP/s | %% of peak |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (int j = 0; j < OP_COUNT; j++) {
        const opprof_rec *r = &opprof_tab[idx[j]];
        if (!r->calls) continue;
        double ms = r->s / reps * 1e3, gf = r->flop / reps / 1e9;
        int conv = idx[j] == OP_CONV_FWD || idx[j] == OP_CONV_BWD;
        double peak = conv ? peak_conv : peak_f32;
        fprintf(f, "| %s | %ld | %.1f | %.1f |", opprof_names[idx[j]], r->calls / reps, ms, 100.0 * ms / step_ms);
        if (r->flop > 0) {
            double rate = r->flop / r->s / 1e9;
            fprintf(f, " %.2f | %.0f |", gf, rate);
            if (peak > 0) fprintf(f, " %.0f |\n", 100.0 * rate / peak);
            else fprintf(f, " – |\n");
        } else
            fprintf(f, " – | – | – |\n");
    }
    double outside = step_s - total / reps;
    fprintf(f, "| (outside the ops: model code, copies between them) | – | %.1f | %.1f | – | – | – |\n", outside * 1e3,
            100.0 * outside / step_s);
    fprintf(f, "| **step** | – | %.1f | 100 | – | – | – |\n", step_ms);
    if (top <= 0 || !opprof_nconv) return;
    int ci[OPPROF_MAX_CONV];
    for (int i = 0; i < opprof_nconv; i++) ci[i] = i;
    qsort(ci, (size_t)opprof_nconv, sizeof ci[0], opprof_conv_cmp_desc);
    fprintf(f, "\nLargest convolution shapes (N×H×W, Cin→Cout, k/stride; forward and backward per repetition):\n\n"
               "| shape | algo | fwd ms | fwd GFLOP/s | bwd ms | bwd GFLOP/s | %% of step |\n|---|---|---:|---:|---:|---:|---:|\n");
    for (int j = 0; j < opprof_nconv && j < top; j++) {
        const opprof_conv_rec *r = &opprof_convs[ci[j]];
        if (!r->fwd_calls && !r->bwd_calls) break;
        fprintf(f, "| %d×%d×%d, %d→%d, %d/%d | %s | %.1f | %.0f | ", r->s.n, r->s.h, r->s.w, r->s.cin, r->s.cout, r->s.k,
                r->s.stride, r->winograd ? "winograd" : "direct", r->fwd_s / reps * 1e3, r->fwd_s > 0 ? r->fwd_flop / r->fwd_s / 1e9 : 0);
        if (r->bwd_calls) fprintf(f, "%.1f | %.0f |", r->bwd_s / reps * 1e3, r->bwd_s > 0 ? r->bwd_flop / r->bwd_s / 1e9 : 0);
        else fprintf(f, "– | – |");
        fprintf(f, " %.1f |\n", 100.0 * (r->fwd_s + r->bwd_s) / reps * 1e3 / step_ms);
    }
}

#endif
