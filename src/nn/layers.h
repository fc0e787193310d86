/* layers.h — owns the parameterised layers that networks are built from: a
 * convolution, a GroupNorm, a BatchNorm and a linear layer, each binding named
 * tensors in a dd_params table (PyTorch state_dict names) to the ops of the
 * engine's backend (backend/backend.h). A layer is declared (names and shapes)
 * before the parameter block exists; a convolution is then built for one
 * activation shape on one engine (the backend's primitives, once). Every forward
 * and backward runs on the engine e it is given (for a convolution: the one it
 * was built on). */
#ifndef DD_LAYERS_H
#define DD_LAYERS_H

#include "core/arena.h"
#include "backend/backend.h"
#include "core/rng.h"
#include "core/status.h"

typedef struct dd_convl {
    int w, b;             /* param indices: "<name>.weight" [O,I,k,k], "<name>.bias" [O] */
    int cin, cout, k, stride;
    int zero_init;        /* guided-diffusion zero_module */
    dd_conv *prim;        /* made by the backend of eng */
    dd_engine *eng;       /* the engine it was built on */
    int ho, wo;           /* output size once built */
    int accumulate;       /* set before an inference build: the forward adds to y where the
                             backend can (dd_convl_accumulates) */
} dd_convl;

typedef struct dd_gnl {
    int g, b;             /* "<name>.weight", "<name>.bias" [C] */
    int c, groups;
    float *mean, *rstd;   /* [N, groups], from the arena */
} dd_gnl;

typedef struct dd_bnl {
    int g, b, rm, rv, nbt; /* weight, bias, running_mean, running_var, num_batches_tracked */
    int c;
    float *mean, *rstd;    /* [C], from the arena */
} dd_bnl;

typedef struct dd_linl {
    int w, b; /* "<name>.weight" [O,I], "<name>.bias" [O] */
    int in, out;
} dd_linl;

int dd_convl_declare(dd_convl *l, dd_params *p, const char *name, int cin, int cout, int k,
                     int stride, int zero_init, int group, dd_error *err);
/* Create the primitives for input [n,h,w,cin]. */
int dd_convl_build(dd_convl *l, dd_engine *e, int n, int h, int w, dd_conv_algo algo, int training,
                   dd_error *err);
int dd_convl_forward(dd_engine *e, const dd_convl *l, const dd_params *p, const float *x, float *y,
                     dd_error *err);
/* The same with a caller's bias [cout] in place of the layer's (NULL: the layer's): inference
 * folds a per-channel addend that follows the convolution into it. */
int dd_convl_forward_b(dd_engine *e, const dd_convl *l, const dd_params *p, const float *x, const float *bias,
                       float *y, dd_error *err);
/* 1 when the convolution also runs from a bf16 source (backend's conv_takes_bf16; then
 * dd_gnl_forward_bf16 and dd_convl_forward_bf16 exist): the inference path that skips
 * the conversion of its input. */
int dd_convl_takes_bf16(const dd_convl *l);
/* 1 when the built convolution's forward adds its result to y (accumulate was set and the
 * backend does it inside the convolution: backend.h conv_accumulates). */
int dd_convl_accumulates(const dd_convl *l);
int dd_convl_forward_bf16(dd_engine *e, const dd_convl *l, const dd_params *p, const uint16_t *x,
                          float *y, dd_error *err);
int dd_convl_forward_bf16_b(dd_engine *e, const dd_convl *l, const dd_params *p, const uint16_t *x,
                            const float *bias, float *y, dd_error *err);
/* dW, db accumulate into p->grad; dx (may be NULL) overwritten or added (acc). */
int dd_convl_backward(dd_engine *e, const dd_convl *l, dd_params *p, const float *x, const float *dy,
                      float *dx, int acc, dd_error *err);
/* Frees the primitives through the backend they were built on (unbuilt: nothing). */
void dd_convl_free(dd_convl *l);

int dd_gnl_declare(dd_gnl *l, dd_params *p, const char *name, int c, int groups_wanted, int group,
                   dd_error *err);
/* Statistics buffers for batch n. */
int dd_gnl_plan(dd_gnl *l, dd_arena *a, int n, dd_error *err);
int dd_gnl_forward(dd_engine *e, const dd_gnl *l, const dd_params *p, const float *x, float *y,
                   int n, int hw, int silu, dd_error *err);
/* dd_gnl_forward writing bf16 for dd_convl_forward_bf16 (only where it takes bf16). */
int dd_gnl_forward_bf16(dd_engine *e, const dd_gnl *l, const dd_params *p, const float *x,
                        uint16_t *y, int n, int hw, int silu, dd_error *err);
int dd_gnl_backward(dd_engine *e, const dd_gnl *l, dd_params *p, const float *x, const float *dy,
                    float *dx, int n, int hw, int silu, int acc, dd_error *err);

int dd_bnl_declare(dd_bnl *l, dd_params *p, const char *name, int c, int group, dd_error *err);
int dd_bnl_plan(dd_bnl *l, dd_arena *a, dd_error *err);
/* training: batch statistics, and num_batches_tracked += 1. */
int dd_bnl_forward(dd_engine *e, const dd_bnl *l, dd_params *p, const float *x, float *y, size_t pix,
                   int training, dd_error *err);
int dd_bnl_backward(dd_engine *e, const dd_bnl *l, dd_params *p, const float *x, const float *dy,
                    float *dx, size_t pix, int acc, dd_error *err);

int dd_linl_declare(dd_linl *l, dd_params *p, const char *name, int in, int out, int group,
                    dd_error *err);
int dd_linl_forward(dd_engine *e, const dd_linl *l, const dd_params *p, const float *x, float *y,
                    int m, dd_error *err);
int dd_linl_backward(dd_engine *e, const dd_linl *l, dd_params *p, const float *x, const float *dy,
                     float *dx, int m, int acc, dd_error *err);

/* PyTorch's default initialisation of a conv / linear: weight and bias uniform in
 * +-1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5)); zero_init layers stay 0.
 * GroupNorm/BatchNorm: weight 1, bias 0, running_var 1. Called once the block exists;
 * these write the parameter values on the host (a device backend uploads them). */
void dd_convl_init(const dd_convl *l, dd_params *p, dd_rng *r);
void dd_linl_init(const dd_linl *l, dd_params *p, dd_rng *r);
void dd_gnl_init(const dd_gnl *l, dd_params *p);
void dd_bnl_init(const dd_bnl *l, dd_params *p);

#endif
