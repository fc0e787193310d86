/* layers.c — named parameterised layers over the backend's ops (see layers.h). */
#include "nn/layers.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"

static int add_kind(dd_params *p, const char *name, const char *suffix, int ndim, int64_t d0,
                    int64_t d1, int64_t d2, int64_t d3, int trainable, int group, int kind,
                    dd_error *err) {
    char full[DD_NAME_MAX];
    int n = snprintf(full, sizeof full, "%s.%s", name, suffix);
    if (n < 0 || n >= (int)sizeof full) {
        dd_fail(err, DD_E_INVALID, "layer name too long: %s.%s", name, suffix);
        return -1;
    }
    int64_t shape[4] = {d0, d1, d2, d3};
    int idx = dd_params_add(p, full, ndim, shape, trainable, group, err);
    if (idx >= 0) p->items[idx].kind = kind;
    return idx;
}

/* Conv / linear tensors: "weight" (ndim > 1) or "bias". */
static int add(dd_params *p, const char *name, const char *suffix, int ndim, int64_t d0, int64_t d1,
               int64_t d2, int64_t d3, int trainable, int group, dd_error *err) {
    return add_kind(p, name, suffix, ndim, d0, d1, d2, d3, trainable, group,
                    ndim > 1 ? DD_PK_WEIGHT : DD_PK_BIAS, err);
}

int dd_convl_declare(dd_convl *l, dd_params *p, const char *name, int cin, int cout, int k,
                     int stride, int zero_init, int group, dd_error *err) {
    memset(l, 0, sizeof *l);
    l->cin = cin, l->cout = cout, l->k = k, l->stride = stride, l->zero_init = zero_init;
    l->w = add(p, name, "weight", 4, cout, cin, k, k, 1, group, err);
    if (l->w < 0) return err ? err->code : DD_E_INVALID;
    l->b = add(p, name, "bias", 1, cout, 0, 0, 0, 1, group, err);
    return l->b < 0 ? (err ? err->code : DD_E_INVALID) : DD_OK;
}

int dd_convl_build(dd_convl *l, dd_engine *e, int n, int h, int w, dd_conv_algo algo, int training,
                   dd_error *err) {
    dd_conv_shape s = {n, h, w, l->cin, l->cout, l->k, l->stride, l->k / 2, l->accumulate && !training};
    dd_conv_out_hw(&s, &l->ho, &l->wo);
    /* Winograd only exists for 3x3 stride 1, and only pays with >= 64 channels. */
    dd_conv_algo a = DD_CONV_DIRECT;
    if (l->k == 3 && l->stride == 1) {
        if (algo == DD_CONV_WINOGRAD) a = DD_CONV_WINOGRAD;
        /* auto: Winograd only when training. At inference it measured slower at one
         * thread and needs ~2 GB more at the paper config (bench/README.md). */
        if (algo == DD_CONV_AUTO && training && l->cin >= 64 && l->cout >= 64) a = DD_CONV_WINOGRAD;
    }
    l->eng = e;
    return dd_engine_backend(e)->conv_create(e, &s, a, training, &l->prim, err);
}

int dd_convl_forward(dd_engine *e, const dd_convl *l, const dd_params *p, const float *x, float *y,
                     dd_error *err) {
    return dd_convl_forward_b(e, l, p, x, NULL, y, err);
}

int dd_convl_forward_b(dd_engine *e, const dd_convl *l, const dd_params *p, const float *x, const float *bias,
                       float *y, dd_error *err) {
    return dd_engine_backend(e)->conv_forward(l->prim, x, dd_params_value(p, l->w),
                                              bias ? bias : dd_params_value(p, l->b), y, err);
}

int dd_convl_takes_bf16(const dd_convl *l) {
    const dd_backend *be = l->prim ? dd_engine_backend(l->eng) : NULL;
    return be && be->conv_takes_bf16 && be->conv_forward_bf16 && be->groupnorm_forward_bf16 &&
           be->conv_takes_bf16(l->prim);
}

int dd_convl_accumulates(const dd_convl *l) {
    const dd_backend *be = l->prim ? dd_engine_backend(l->eng) : NULL;
    return be && be->conv_accumulates && be->conv_accumulates(l->prim);
}

int dd_convl_forward_bf16(dd_engine *e, const dd_convl *l, const dd_params *p, const uint16_t *x,
                          float *y, dd_error *err) {
    return dd_convl_forward_bf16_b(e, l, p, x, NULL, y, err);
}

int dd_convl_forward_bf16_b(dd_engine *e, const dd_convl *l, const dd_params *p, const uint16_t *x,
                            const float *bias, float *y, dd_error *err) {
    return dd_engine_backend(e)->conv_forward_bf16(l->prim, x, dd_params_value(p, l->w),
                                                   bias ? bias : dd_params_value(p, l->b), y, err);
}

int dd_convl_backward(dd_engine *e, const dd_convl *l, dd_params *p, const float *x, const float *dy,
                      float *dx, int acc, dd_error *err) {
    return dd_engine_backend(e)->conv_backward(l->prim, x, dd_params_value(p, l->w), dy, dx,
                                               dd_params_grad(p, l->w), dd_params_grad(p, l->b),
                                               acc, err);
}

void dd_convl_free(dd_convl *l) {
    if (l->prim) dd_engine_backend(l->eng)->conv_free(l->prim);
    l->prim = NULL;
}

int dd_gnl_declare(dd_gnl *l, dd_params *p, const char *name, int c, int groups_wanted, int group,
                   dd_error *err) {
    memset(l, 0, sizeof *l);
    l->c = c;
    l->groups = dd_groupnorm_groups(c, groups_wanted);
    l->g = add_kind(p, name, "weight", 1, c, 0, 0, 0, 1, group, DD_PK_NORM_WEIGHT, err);
    if (l->g < 0) return err ? err->code : DD_E_INVALID;
    l->b = add_kind(p, name, "bias", 1, c, 0, 0, 0, 1, group, DD_PK_NORM_BIAS, err);
    return l->b < 0 ? (err ? err->code : DD_E_INVALID) : DD_OK;
}

int dd_gnl_plan(dd_gnl *l, dd_arena *a, int n, dd_error *err) {
    l->mean = dd_arena_floats(a, (size_t)n * l->groups, err);
    l->rstd = dd_arena_floats(a, (size_t)n * l->groups, err);
    return (a->base && (!l->mean || !l->rstd)) ? DD_E_NOMEM : DD_OK;
}

int dd_gnl_forward(dd_engine *e, const dd_gnl *l, const dd_params *p, const float *x, float *y,
                   int n, int hw, int silu, dd_error *err) {
    return dd_engine_backend(e)->groupnorm_forward(e, x, dd_params_value(p, l->g),
                                                   dd_params_value(p, l->b), y, l->mean, l->rstd,
                                                   n, hw, l->c, l->groups, 1e-5f, silu, err);
}

int dd_gnl_forward_bf16(dd_engine *e, const dd_gnl *l, const dd_params *p, const float *x,
                        uint16_t *y, int n, int hw, int silu, dd_error *err) {
    return dd_engine_backend(e)->groupnorm_forward_bf16(e, x, dd_params_value(p, l->g),
                                                        dd_params_value(p, l->b), y, l->mean,
                                                        l->rstd, n, hw, l->c, l->groups, 1e-5f,
                                                        silu, err);
}

int dd_gnl_backward(dd_engine *e, const dd_gnl *l, dd_params *p, const float *x, const float *dy,
                    float *dx, int n, int hw, int silu, int acc, dd_error *err) {
    return dd_engine_backend(e)->groupnorm_backward(
        e, x, dd_params_value(p, l->g), dd_params_value(p, l->b), l->mean, l->rstd, dy, dx,
        dd_params_grad(p, l->g), dd_params_grad(p, l->b), n, hw, l->c, l->groups, silu, acc, err);
}

int dd_bnl_declare(dd_bnl *l, dd_params *p, const char *name, int c, int group, dd_error *err) {
    memset(l, 0, sizeof *l);
    l->c = c;
    if ((l->g = add_kind(p, name, "weight", 1, c, 0, 0, 0, 1, group, DD_PK_NORM_WEIGHT, err)) < 0 ||
        (l->b = add_kind(p, name, "bias", 1, c, 0, 0, 0, 1, group, DD_PK_NORM_BIAS, err)) < 0 ||
        (l->rm = add_kind(p, name, "running_mean", 1, c, 0, 0, 0, 0, group, DD_PK_RUN_MEAN, err)) < 0 ||
        (l->rv = add_kind(p, name, "running_var", 1, c, 0, 0, 0, 0, group, DD_PK_RUN_VAR, err)) < 0 ||
        (l->nbt = add_kind(p, name, "num_batches_tracked", 1, 1, 0, 0, 0, 0, group, DD_PK_COUNTER, err)) < 0)
        return err ? err->code : DD_E_INVALID;
    return DD_OK;
}

int dd_bnl_plan(dd_bnl *l, dd_arena *a, dd_error *err) {
    l->mean = dd_arena_floats(a, (size_t)l->c, err);
    l->rstd = dd_arena_floats(a, (size_t)l->c, err);
    return (a->base && (!l->mean || !l->rstd)) ? DD_E_NOMEM : DD_OK;
}

int dd_bnl_forward(dd_engine *e, const dd_bnl *l, dd_params *p, const float *x, float *y, size_t pix,
                   int training, dd_error *err) {
    const dd_backend *be = dd_engine_backend(e);
    int rc = be->batchnorm_forward(e, x, dd_params_value(p, l->g), dd_params_value(p, l->b),
                                   dd_params_value(p, l->rm), dd_params_value(p, l->rv), y, l->mean,
                                   l->rstd, pix, l->c, 1e-5f, 0.1f, training, err);
    if (!rc && training) be->add_scalar(e, dd_params_value(p, l->nbt), 1, 1.0f);
    return rc;
}

int dd_bnl_backward(dd_engine *e, const dd_bnl *l, dd_params *p, const float *x, const float *dy,
                    float *dx, size_t pix, int acc, dd_error *err) {
    return dd_engine_backend(e)->batchnorm_backward(e, x, dd_params_value(p, l->g), l->mean,
                                                    l->rstd, dy, dx, dd_params_grad(p, l->g),
                                                    dd_params_grad(p, l->b), pix, l->c, acc, err);
}

int dd_linl_declare(dd_linl *l, dd_params *p, const char *name, int in, int out, int group,
                    dd_error *err) {
    memset(l, 0, sizeof *l);
    l->in = in, l->out = out;
    l->w = add(p, name, "weight", 2, out, in, 0, 0, 1, group, err);
    if (l->w < 0) return err ? err->code : DD_E_INVALID;
    l->b = add(p, name, "bias", 1, out, 0, 0, 0, 1, group, err);
    return l->b < 0 ? (err ? err->code : DD_E_INVALID) : DD_OK;
}

int dd_linl_forward(dd_engine *e, const dd_linl *l, const dd_params *p, const float *x, float *y,
                    int m, dd_error *err) {
    return dd_engine_backend(e)->linear_forward(e, x, dd_params_value(p, l->w),
                                                dd_params_value(p, l->b), y, m, l->in, l->out, err);
}

int dd_linl_backward(dd_engine *e, const dd_linl *l, dd_params *p, const float *x, const float *dy,
                     float *dx, int m, int acc, dd_error *err) {
    return dd_engine_backend(e)->linear_backward(e, x, dd_params_value(p, l->w), dy, dx,
                                                 dd_params_grad(p, l->w), dd_params_grad(p, l->b),
                                                 m, l->in, l->out, acc, err);
}

static void uniform_fill(float *x, size_t n, float bound, dd_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = dd_rng_range(r, -bound, bound);
}

void dd_convl_init(const dd_convl *l, dd_params *p, dd_rng *r) {
    size_t nw = p->items[l->w].numel;
    float *w = dd_params_value(p, l->w), *b = dd_params_value(p, l->b);
    if (l->zero_init) {
        memset(w, 0, nw * sizeof *w);
        memset(b, 0, (size_t)l->cout * sizeof *b);
        return;
    }
    float bound = 1.0f / sqrtf((float)(l->cin * l->k * l->k));
    uniform_fill(w, nw, bound, r);
    uniform_fill(b, (size_t)l->cout, bound, r);
}

void dd_linl_init(const dd_linl *l, dd_params *p, dd_rng *r) {
    float bound = 1.0f / sqrtf((float)l->in);
    uniform_fill(dd_params_value(p, l->w), (size_t)l->in * l->out, bound, r);
    uniform_fill(dd_params_value(p, l->b), (size_t)l->out, bound, r);
}

void dd_gnl_init(const dd_gnl *l, dd_params *p) {
    float *g = dd_params_value(p, l->g), *b = dd_params_value(p, l->b);
    for (int i = 0; i < l->c; i++) g[i] = 1.0f, b[i] = 0.0f;
}

void dd_bnl_init(const dd_bnl *l, dd_params *p) {
    float *g = dd_params_value(p, l->g), *b = dd_params_value(p, l->b);
    float *rm = dd_params_value(p, l->rm), *rv = dd_params_value(p, l->rv);
    for (int i = 0; i < l->c; i++) g[i] = 1.0f, b[i] = 0.0f, rm[i] = 0.0f, rv[i] = 1.0f;
    dd_params_value(p, l->nbt)[0] = 0.0f;
}
