/* unet.h — owns the reconstruction sub-network: the guided-diffusion style
 * denoiser U-Net eps_theta(x_t, t) of docs/method.md §4, forward and backward, with
 * parameters named as the reference's PyTorch state_dict (prefixed, e.g.
 * "unet.down.1.0.in_layers.2.weight").
 *
 * Life cycle: dd_unet_declare (names into a dd_params table) -> dd_params_alloc
 * -> dd_unet_build (the backend's convolution primitives for a batch size, on one
 * engine) -> dd_unet_plan twice (a measuring arena, then the real one) ->
 * forward/backward any number of times without allocating. Activations are NHWC;
 * every op runs through the build engine's backend (backend/backend.h).
 *
 * Passes (inference): a denoiser built for n samples in passes of `chunk` < n runs
 * its image-sized layers over chunk samples at a time, one pass after the other, and
 * plans their activations for one pass only (the model's two noise levels t_s, t_b
 * as two passes: half the activation memory). The time embeddings and each block's
 * embedding projection are still computed for all n samples in one product, as in a
 * single pass: a matrix product's rounding may depend on its row count, and the
 * other ops (direct convolutions, GroupNorm, attention) compute each sample on its own,
 * so the passes give the bits of one pass over all n (tests/test_model_torch.c checks).
 * Winograd convolutions do not (their result depends on the batch): the model keeps one
 * pass for them (dd_model_denoiser_chunk). */
#ifndef DD_UNET_H
#define DD_UNET_H

#include <stdint.h>

#include "core/arena.h"
#include "backend/backend.h"

#include "nn/layers.h"
#include "core/rng.h"

#define DD_UNET_MAX_LEVELS 8
#define DD_UNET_MAX_MODULES 128

typedef struct dd_unet_config {
    int h, w;                         /* image size; each divisible by 2^(levels-1) */
    int in_ch;                        /* 3 */
    int base;                         /* C: 128 in the paper */
    int levels;                       /* number of channel multipliers */
    int mult[DD_UNET_MAX_LEVELS];     /* 1,1,2,2,4,4 in the paper */
    int res_blocks;                   /* 2 */
    int n_attn;
    int attn[DD_UNET_MAX_LEVELS];     /* attention where the map's shorter side is one of these */
    int heads;                        /* 4 */
    int groups;                       /* 32; fewer channels use gcd(32, C) */
} dd_unet_config;

/* The paper's configuration at h x w (256 px: 1,1,2,2,4,4, attention 32/16/8). */
void dd_unet_config_paper(dd_unet_config *c, int h, int w);
/* Checks sizes, divisibility and limits; the message names the offending key. */
int dd_unet_config_check(const dd_unet_config *c, dd_error *err);
/* 1 when the blocks of `level` (0 = full size, maps h >> level by w >> level) have
 * self-attention. The weights' shapes depend on these levels, not on the image size:
 * two configurations with the same levels, widths and attention levels share a layout. */
int dd_unet_attn_at_level(const dd_unet_config *c, int level);

enum { DD_MOD_CONV = 0, DD_MOD_RES = 1, DD_MOD_ATTN = 2 };

typedef struct dd_resblock {
    int in, out, mode; /* mode: 0 plain, 1 down (2x2 average pool), 2 up (2x nearest) */
    int h, w, ho, wo;  /* input and output spatial size */
    dd_gnl gn1, gn2;
    dd_convl conv1, conv2, skip;
    int has_skip;
    dd_linl emb;
    /* activations */
    const float *x;              /* input [N,h,w,in] */
    float *a1, *a1m, *xm;        /* SiLU(GN1(x)) [N,h,w,in]; resampled a1 and x [N,ho,wo,in]
                                    (xm only with a skip conv, else built in the output) */
    float *h1, *a2, *eproj;      /* conv1 + emb [N,ho,wo,out]; SiLU(GN2(h1)); [N,out] */
    float *h2;                   /* conv2 output before the residual add (a temporary) */
} dd_resblock;

typedef struct dd_attnblock {
    int c, h, w, heads;
    dd_gnl norm;
    dd_linl qkv, proj;           /* "to_qkv" [3C,C,1], "proj_out" [C,C,1] (Conv1d layout) */
    const float *x;
    float *hn, *qkvb, *a, *probs; /* [N,L,C], [N,L,3C], [N,L,C], [N,heads,L,L] or [L,L] */
} dd_attnblock;

typedef struct dd_umod {
    int kind;
    int section;      /* 0 encoder, 1 middle, 2 decoder */
    int unit_end;     /* last module of a down.K / up.K unit (an encoder one is a skip) */
    int takes_skip;   /* first module of a decoder unit: input = concat(h, skip) */
    int skip_src;     /* module index of the skip it pops */
    int c_out, ho, wo;
    dd_convl conv;    /* DD_MOD_CONV (the input conv) */
    dd_resblock rb;
    dd_attnblock at;
    const float *in;  /* input of the last forward */
    float *in_cat;    /* concat buffer [N,h,w,in] when takes_skip (a shared scratch buffer) */
    float *out;       /* [N,ho,wo,c_out] */
    float *dout;      /* gradient of out (training; shared by non-neighbours unless a skip) */
} dd_umod;

typedef struct dd_unet {
    dd_unet_config cfg;
    dd_engine *eng;              /* the engine of dd_unet_build: every op runs on it */
    int n;                       /* samples of a forward (its timesteps and output) */
    int chunk;                   /* samples per pass of the image-sized layers: the batch the
                                    convolutions were built for and the activations are
                                    planned for (n, or a divisor of n at inference) */
    int training;
    int nmod;
    dd_umod mod[DD_UNET_MAX_MODULES];
    dd_linl temb1, temb2;        /* time_embedding.1 (C->4C), time_embedding.3 (4C->4C) */
    dd_gnl out_gn;               /* out.0 */
    dd_convl out_conv;           /* out.2, zero-initialised */
    /* buffers */
    float *temb, *e1, *s1, *emb, *semb;   /* [N,C], [N,4C] x4 */
    float *head_a, *eps;                  /* SiLU(GN(h)) [N,H,W,C*m0]; output [N,H,W,in_ch] */
    float *scratch[4];                    /* shared temporaries (training: max_act floats each;
                                             inference: what each holds at most) */
    uint16_t *act16;                      /* inference with bf16 convolutions: a GroupNorm+SiLU
                                             output in bf16 for the convolution that reads it
                                             (no conversion in between); NULL otherwise */
    float *dsemb, *demb, *ds1, *de1;      /* [N,4C] gradients */
    float *deproj;                        /* [N, max channels] (training) */
    float *zeros;                         /* [max channels] zeros: conv1's bias in an inference
                                             pass of several samples (res_forward) */
    int zeros_n;
    int fold_emb;                         /* inference: the time embedding rides in conv1's bias
                                             (dd_unet_build says where) */
    float *lscratch;                      /* [L,L] of the largest attention map (training) */
    size_t max_act;                       /* floats of the largest activation of a pass (each
                                             scratch buffer's size in training) */
    int *t;                               /* [N] timesteps of the last forward */
    int tcap;
    size_t work_from;                     /* arena offset (bytes) from which dd_unet_plan's buffers
                                             hold nothing that outlives an inference forward: eps
                                             comes before it, so an owner may give that memory to a
                                             network that runs afterwards (model.c: the seg net) */
} dd_unet;

/* Declare every parameter (prefix e.g. "unet"); params are in optimiser group `group`. */
int dd_unet_declare(dd_unet *u, const dd_unet_config *cfg, dd_params *p, const char *prefix,
                    int group, dd_error *err);
/* PyTorch default initialisation with the zero-initialised layers of docs/method.md §4. */
void dd_unet_init(dd_unet *u, dd_params *p, dd_rng *r);
/* Create the primitives for n samples run in passes of chunk (a divisor of n; training:
 * chunk == n, with backward) on engine e, which then runs every op of forward and
 * backward. */
int dd_unet_build(dd_unet *u, dd_engine *e, int n, int chunk, int training, dd_conv_algo algo,
                  dd_error *err);
/* Hand out activation (and, training, gradient) buffers: eps first, then (from
 * u->work_from) the rest. */
int dd_unet_plan(dd_unet *u, dd_arena *a, dd_error *err);
/* eps[N,H,W,in_ch] = eps_theta(x[N,H,W,in_ch], t[N]); returns a pointer to u->eps. */
int dd_unet_forward(dd_unet *u, dd_params *p, const float *x, const int *t, dd_error *err);
/* Accumulates parameter gradients for d(eps) = deps [N,H,W,in_ch]. */
int dd_unet_backward(dd_unet *u, dd_params *p, const float *deps, dd_error *err);
void dd_unet_free(dd_unet *u);

#endif
