/* backend.h — owns the compute-backend interface: one table of function pointers
 * (dd_backend) for every op the networks run, the engine that carries a backend
 * and its state (dd_engine), and the switch that picks a backend by name.
 *
 * The nn layer (layers, unet, segnet, adam) runs every numeric op on activations,
 * gradients and parameters through the table of the engine it was built on:
 *     const dd_backend *be = dd_engine_backend(e);
 *     be->silu_forward(e, x, y, n);
 * so a new backend (CUDA/cuDNN, ...) is a new folder src/backend/<name>/ that fills a
 * dd_backend, plus one line in dd_backend_get() (backend.c). Today: "cpu"
 * (src/backend/cpu/: oneDNN convolutions and sgemm, OpenMP loops for the rest).
 *
 * Conventions of every op (as src/backend/cpu/ops.h):
 *  - Pointers to tensors are *device* buffers of the engine's backend (for "cpu":
 *    host memory); they come from buf_alloc (or, for cpu, any host memory). Scalars,
 *    shapes and the timestep list of timestep_embedding are host values.
 *  - Activations are NHWC float32; P = N*H*W pixels, C channels. Conv weights are
 *    PyTorch's OIHW, linear weights [O,I]; biases [O].
 *  - Backward functions write the input gradient dx: overwritten when acc == 0,
 *    added to when acc != 0. Parameter gradients (dgamma, dbeta, dw, db) always
 *    accumulate (+=).
 *  - Results depend only on the inputs (fixed reduction orders, never thread timing);
 *    a backend documents where its rounding differs from the cpu backend.
 *  - Fallible ops return a DD_* status and fill err; pure elementwise ops cannot fail.
 *  - Ops run in call order on the engine (for a device backend: on one stream); the
 *    functions returning a host value (losses, sumsq) wait for it. */
#ifndef DD_BACKEND_H
#define DD_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct dd_engine dd_engine;
typedef struct dd_backend dd_backend;

/* ---- convolution descriptors (backend-neutral) ---- */

/* DD_CONV_AUTO (for layers, see nn/layers.c): in training, Winograd for 3x3 stride-1
 * convolutions with at least 64 input and output channels (faster per layer and per
 * training step, bench/README.md); direct everywhere else, inference included. A
 * backend without Winograd runs direct and says so in conv_algo_used. */
typedef enum { DD_CONV_DIRECT = 0, DD_CONV_WINOGRAD = 1, DD_CONV_AUTO = 2 } dd_conv_algo;

/* Arithmetic of the convolutions (the bulk of every step). DD_PREC_BF16: inputs,
 * weights and output gradients rounded to bfloat16, products accumulated in float32,
 * outputs and parameter gradients float32 (weights, optimizer state and every other op
 * stay float32). DD_PREC_AUTO resolves to bf16 where the backend has native bf16
 * arithmetic and to f32 elsewhere (dd_engine_set_precision). */
typedef enum { DD_PREC_F32 = 0, DD_PREC_BF16 = 1, DD_PREC_AUTO = 2 } dd_precision;

/* Sums across the processes of a data-parallel run (e.g. MPI_Allreduce): v[0, n) is
 * replaced by its sum over all processes, on every process. Ops whose result depends
 * on the whole batch (BatchNorm statistics) call it when an engine has one. Returns 0,
 * or an error status with err filled. */
typedef struct dd_reducer {
    int (*sum_f64)(void *ctx, double *v, size_t n, dd_error *err);
    void *ctx;
} dd_reducer;

typedef struct dd_conv_shape {
    int n, h, w;    /* input batch and spatial size */
    int cin, cout;  /* channels */
    int k;          /* kernel size (1 or 3; any odd k works) */
    int stride;     /* 1 or 2 */
    int pad;        /* usually k / 2 */
    int accumulate; /* 1: the forward adds its result to y (y += conv(x) + b) where the backend
                       can do that inside the convolution (conv_accumulates says whether it
                       does; else the forward overwrites y as with 0); forward-only convs */
} dd_conv_shape;

/* One convolution, created for one shape by a backend (its primitives, plans or
 * descriptors); only the backend that made it may run or free it. */
typedef struct dd_conv dd_conv;

/* Output spatial size for a shape. */
void dd_conv_out_hw(const dd_conv_shape *s, int *ho, int *wo);
/* The documented GroupNorm rule for small channel counts: gcd(wanted, C) groups
 * (wanted when C % wanted == 0). */
int dd_groupnorm_groups(int c, int wanted);

/* Scalars of one Adam update (nn/adam.c computes them once per step, as
 * torch.optim.Adam's single-tensor path: scalars in double, tensors in float). */
typedef struct dd_adam_coef {
    float clip;       /* gradient scale (global-norm clipping; 1 = none) */
    float b1, b2;     /* beta1, beta2 */
    float omb1, omb2; /* 1 - beta1, 1 - beta2 (rounded from double) */
    float eps;
    float step_size;  /* lr / (1 - beta1^t) */
    float bc2_sqrt;   /* sqrt(1 - beta2^t) */
} dd_adam_coef;

/* Scalars of the guided one-step reconstruction for one sample (model/diffusion.c
 * computes them from the schedule, in double, rounded to float): x0(x, t, e) =
 * x * r - m * e at t_s (rs, ms) and t_b (rb, mb); sa = sqrt(abar_s), k =
 * sqrt(1 - abar_s); w the guidance weight. */
typedef struct dd_guided_coef {
    float rs, ms, rb, mb, sa, k, w;
} dd_guided_coef;

/* Scalars of one DDPM reverse step at t: x0 = clamp(x * rs - ms * e); then
 * x = c0 x0 + ct x + sd noise (x = x0 at t = 0). */
typedef struct dd_ddpm_coef {
    float rs, ms, c0, ct, sd;
} dd_ddpm_coef;

/* ---- the table ---- */
struct dd_backend {
    const char *name;

    /* -- engine: the backend's state (library handles, stream, scratch) -- */
    /* Make the state for engine e (dd_engine_threads(e) is already set); *state is
     * handed back by dd_engine_state(e). */
    int (*engine_create)(dd_engine *e, void **state, dd_error *err);
    void (*engine_free)(void *state);
    /* Make the engine current on the calling thread (cpu: OpenMP thread count;
     * a device backend: its device). */
    void (*activate)(const dd_engine *e);
    /* Bytes of the shared scratch block that the convolutions made so far need, and
     * its allocation at that size (call after creating every convolution). */
    size_t (*scratch_bytes)(const dd_engine *e);
    int (*commit_scratch)(dd_engine *e, dd_error *err);
    /* Promise that the weights the convolutions are given no longer change (inference
     * from a loaded model): each forward may keep its weights converted to the kernel's
     * layout and precision, in one block (counted by scratch_bytes) when all of them fit
     * in cap bytes, instead of converting them on every call. A call with another weights pointer
     * converts again; new values at the same pointer are NOT seen. May be NULL. */
    int (*freeze_weights)(dd_engine *e, size_t cap, dd_error *err);
    /* 1 when this backend runs bf16 convolutions natively on this machine (cpu: the
     * CPU has AVX512-BF16 or AMX and oneDNN may use it). */
    int (*has_bf16)(void);

    /* -- buffers -- */
    /* bytes of device memory, 64-byte aligned (cpu: aligned host malloc); NULL when
     * out of memory. buf_free(NULL) does nothing. */
    void *(*buf_alloc)(dd_engine *e, size_t bytes);
    void (*buf_free)(dd_engine *e, void *p);
    /* p[0, bytes) = 0 (device buffer). */
    void (*buf_zero)(dd_engine *e, void *p, size_t bytes);
    /* Copies of bytes: host -> device, device -> host, device -> device (cpu: memcpy). */
    void (*copy_h2d)(dd_engine *e, void *dst, const void *src, size_t bytes);
    void (*copy_d2h)(dd_engine *e, void *dst, const void *src, size_t bytes);
    void (*copy_d2d)(dd_engine *e, void *dst, const void *src, size_t bytes);

    /* -- convolution: y [N,Ho,Wo,Cout] = conv(x [N,H,W,Cin], w [Cout,Cin,k,k]) + b [Cout] -- */
    /* Create for one shape; with_backward also builds backward-data and -weights.
     * algo DD_CONV_WINOGRAD falls back to direct where there is no Winograd kernel. */
    int (*conv_create)(dd_engine *e, const dd_conv_shape *s, dd_conv_algo algo,
                       int with_backward, dd_conv **out, dd_error *err);
    void (*conv_free)(dd_conv *c);
    dd_conv_algo (*conv_algo_used)(const dd_conv *c);
    /* The implementation's name (cpu: oneDNN's, e.g. "jit:avx512_core"). */
    const char *(*conv_impl)(const dd_conv *c);
    /* b may be NULL (no bias). */
    int (*conv_forward)(dd_conv *c, const float *x, const float *w, const float *b, float *y,
                        dd_error *err);
    /* Optional (both NULL where a backend has no bf16 path). A convolution for which
     * conv_takes_bf16 says 1 also runs from a bfloat16 NHWC source that a producer wrote
     * in that form (groupnorm_forward_bf16): the same bits as conv_forward on the float32
     * values, without converting them (the inference path of nn/unet.c). */
    int (*conv_takes_bf16)(const dd_conv *c);
    /* Optional (NULL: never): 1 when a convolution created with shape.accumulate adds its
     * forward result to y: y_new = y + (conv(x) + b), one f32 addition per value, so the
     * same bits as an overwriting forward followed by y_old + y. */
    int (*conv_accumulates)(const dd_conv *c);
    int (*conv_forward_bf16)(dd_conv *c, const uint16_t *x, const float *w, const float *b,
                             float *y, dd_error *err);
    /* dy [N,Ho,Wo,Cout]. Any of dx [N,H,W,Cin], dw [Cout,Cin,k,k], db [Cout] may be NULL
     * (skipped); dw, db accumulate; dx accumulates when acc != 0, else is overwritten. */
    int (*conv_backward)(dd_conv *c, const float *x, const float *w, const float *dy, float *dx,
                         float *dw, float *db, int acc, dd_error *err);

    /* -- matrix products -- */
    /* Row-major C [M,N] = alpha * op(A) op(B) + beta * C; ta/tb 'N' or 'T'. */
    int (*sgemm)(dd_engine *e, char ta, char tb, long m, long n, long k, float alpha,
                 const float *a, long lda, const float *b, long ldb, float beta, float *c,
                 long ldc, dd_error *err);
    /* y [M,O] = x [M,I] . w [O,I]^T + b [O] (b may be NULL). */
    int (*linear_forward)(dd_engine *e, const float *x, const float *w, const float *b, float *y,
                          int m, int in, int out, dd_error *err);
    /* dx [M,I] (may be NULL; acc), dw [O,I] and db [O] accumulate. */
    int (*linear_backward)(dd_engine *e, const float *x, const float *w, const float *dy,
                           float *dx, float *dw, float *db, int m, int in, int out, int acc,
                           dd_error *err);

    /* -- normalisation -- */
    /* GroupNorm over x [N,HW,C], G groups (C % G == 0), affine gamma/beta [C]:
     * y = GN(x) (then SiLU when silu != 0); mean, rstd [N,G] saved for backward. */
    int (*groupnorm_forward)(dd_engine *e, const float *x, const float *gamma,
                             const float *beta, float *y, float *mean, float *rstd, int n,
                             int hw, int c, int g, float eps, int silu, dd_error *err);
    /* Optional: groupnorm_forward with y written as bfloat16 for conv_forward_bf16 (the
     * float32 results rounded to nearest even, as the backend's own conversion would). */
    int (*groupnorm_forward_bf16)(dd_engine *e, const float *x, const float *gamma,
                                  const float *beta, uint16_t *y, float *mean, float *rstd,
                                  int n, int hw, int c, int g, float eps, int silu, dd_error *err);
    /* dx [N,HW,C] (acc); dgamma, dbeta [C] accumulate. */
    int (*groupnorm_backward)(dd_engine *e, const float *x, const float *gamma,
                              const float *beta, const float *mean, const float *rstd,
                              const float *dy, float *dx, float *dgamma, float *dbeta, int n,
                              int hw, int c, int g, int silu, int acc, dd_error *err);
    /* BatchNorm2d over x [P,C]. training != 0: batch statistics (biased variance to
     * normalise, unbiased into run_var, run = (1-m)*run + m*batch), mean, rstd [C]
     * saved; training == 0: running statistics run_mean, run_var [C]. */
    int (*batchnorm_forward)(dd_engine *e, const float *x, const float *gamma,
                             const float *beta, float *run_mean, float *run_var, float *y,
                             float *mean, float *rstd, size_t p, int c, float eps,
                             float momentum, int training, dd_error *err);
    /* Backward of the training-mode forward: dx [P,C] (acc); dgamma, dbeta [C] accumulate. */
    int (*batchnorm_backward)(dd_engine *e, const float *x, const float *gamma,
                              const float *mean, const float *rstd, const float *dy, float *dx,
                              float *dgamma, float *dbeta, size_t p, int c, int acc,
                              dd_error *err);

    /* -- elementwise: x, y, dy, dx [n] -- */
    void (*silu_forward)(dd_engine *e, const float *x, float *y, size_t n);
    void (*silu_backward)(dd_engine *e, const float *x, const float *dy, float *dx, size_t n,
                          int acc);
    void (*relu_forward)(dd_engine *e, const float *x, float *y, size_t n);
    /* y is the forward output (relu'(x) = y > 0). */
    void (*relu_backward)(dd_engine *e, const float *y, const float *dy, float *dx, size_t n,
                          int acc);
    void (*sigmoid_forward)(dd_engine *e, const float *x, float *y, size_t n);
    /* y is the forward output. */
    void (*sigmoid_backward)(dd_engine *e, const float *y, const float *dy, float *dx,
                             size_t n, int acc);
    /* y = a + b. */
    void (*add_forward)(dd_engine *e, const float *a, const float *b, float *y, size_t n);
    /* dx (+)= dy: the gradient of a residual add for one of its inputs (acc = 1 also
     * serves as the in-place add y += x). */
    void (*copy_grad)(dd_engine *e, const float *dy, float *dx, size_t n, int acc);
    /* x[i] += v, i < n. */
    void (*add_scalar)(dd_engine *e, float *x, size_t n, float v);
    /* y [N,HW,C] += b [N,C]: a per-sample channel vector broadcast over the pixels. */
    void (*add_bcast_forward)(dd_engine *e, float *y, const float *b, int n, size_t hw, int c);
    /* db [N,C] = sum over HW of dy [N,HW,C] (overwritten; float sum in pixel order). */
    void (*add_bcast_backward)(dd_engine *e, const float *dy, float *db, int n, size_t hw,
                               int c);

    /* -- channel concat: a [P,Ca], b [P,Cb] -> y [P,Ca+Cb] -- */
    void (*concat_forward)(dd_engine *e, const float *a, int ca, const float *b, int cb,
                           float *y, size_t p);
    /* da [P,Ca], db [P,Cb] from dy [P,Ca+Cb]; either may be NULL. */
    void (*concat_backward)(dd_engine *e, const float *dy, float *da, int ca, float *db, int cb,
                            size_t p, int acc_a, int acc_b);

    /* -- 2x2 pooling, stride 2: x [N,H,W,C] -> y [N,H/2,W/2,C] (H, W even) -- */
    int (*avgpool2_forward)(dd_engine *e, const float *x, float *y, int n, int h, int w, int c,
                            dd_error *err);
    int (*avgpool2_backward)(dd_engine *e, const float *dy, float *dx, int n, int h, int w,
                             int c, int acc, dd_error *err);
    int (*maxpool2_forward)(dd_engine *e, const float *x, float *y, int n, int h, int w, int c,
                            dd_error *err);
    /* The max position is recomputed from x (first maximum in row-major order). */
    int (*maxpool2_backward)(dd_engine *e, const float *x, const float *dy, float *dx, int n,
                             int h, int w, int c, int acc, dd_error *err);

    /* -- 2x upsampling: x [N,H,W,C] -> y [N,2H,2W,C] -- */
    void (*upnearest2_forward)(dd_engine *e, const float *x, float *y, int n, int h, int w,
                               int c);
    void (*upnearest2_backward)(dd_engine *e, const float *dy, float *dx, int n, int h, int w,
                                int c, int acc);
    /* Bilinear, align_corners = true. */
    void (*upbilinear2_forward)(dd_engine *e, const float *x, float *y, int n, int h, int w,
                                int c);
    void (*upbilinear2_backward)(dd_engine *e, const float *dy, float *dx, int n, int h, int w,
                                 int c, int acc);

    /* -- multi-head self-attention core: qkv [N,L,3C] head-major (head h owns channels
     * [h*3d, h*3d+d) = q, then k, then v; d = C/heads) -> a [N,L,C];
     * weights = softmax_keys(q.k / sqrt(d)). probs: [N,heads,L,L] kept for backward
     * (store_probs != 0) or an [L,L] scratch (inference). -- */
    int (*attention_forward)(dd_engine *e, const float *qkv, float *a, float *probs,
                             int store_probs, int n, int l, int c, int heads, dd_error *err);
    /* dqkv [N,L,3C] (acc); scratch [L,L]. */
    int (*attention_backward)(dd_engine *e, const float *qkv, const float *probs,
                              const float *da, float *dqkv, float *scratch, int n, int l, int c,
                              int heads, int acc, dd_error *err);

    /* -- sinusoidal timestep embedding: t [N] (host ints) -> emb [N,dim], [sin | cos]
     * halves, frequency i = exp(-ln(10000) * i / (dim/2)); dim even. -- */
    int (*timestep_embedding)(dd_engine *e, const int *t, float *emb, int n, int dim,
                              dd_error *err);

    /* -- losses (mean reduction): return the loss (host double) and write
     * d(scale*loss)/dpred into dpred [n] (may be NULL; acc) -- */
    /* mean((pred - target)^2). */
    double (*mse_loss)(dd_engine *e, const float *pred, const float *target, float *dpred,
                       size_t n, float scale, int acc);
    /* Focal on probabilities p [n], labels y [n] (cpu/ops.h has the exact formula). */
    double (*focal_loss)(dd_engine *e, const float *p, const float *y, float *dp, size_t n,
                         float alpha, float gamma, float scale, int acc);
    /* SmoothL1 with beta. */
    double (*smoothl1_loss)(dd_engine *e, const float *pred, const float *target, float *dpred,
                            size_t n, float beta, float scale, int acc);

    /* -- diffusion (docs/method.md §2-3), per sample over its n = H*W*3 values -- */
    /* z = a x + b y over [n] (q_sample: x_t = sqrt(abar) x0 + sqrt(1-abar) eps). */
    void (*axpby)(dd_engine *e, float a, const float *x, float b, const float *y, float *z,
                  size_t n);
    /* x0_hat [n] from x_ts, x_tb, e_s, e_b [n]: x0_b = clamp(x0(x_tb, e_b)),
     * e_hat = e_s - k w (sa x0_b + k e_s - x_ts), x0_hat = clamp(x0(x_ts, e_hat));
     * x0b_out [n] (may be NULL) receives x0_b. */
    void (*guided_recon_forward)(dd_engine *e, const dd_guided_coef *k, const float *x_ts,
                                 const float *x_tb, const float *e_s, const float *e_b,
                                 float *x0_hat, float *x0b_out, size_t n);
    /* From dx0_hat [n]: de_s, de_b [n] accumulate (+=); clamps pass no gradient
     * outside [-1, 1]. */
    void (*guided_recon_backward)(dd_engine *e, const dd_guided_coef *k, const float *x_ts,
                                  const float *x_tb, const float *e_s, const float *e_b,
                                  const float *dx0_hat, float *de_s, float *de_b, size_t n);
    /* One reverse step in place on x [n] with the predicted noise eps [n] and fresh
     * standard normals noise [n] (NULL at t = 0: x = x0). */
    void (*ddpm_step)(dd_engine *e, const dd_ddpm_coef *k, float *x, const float *eps,
                      const float *noise, size_t n);

    /* -- optimiser -- */
    /* acc + sum of x[i]^2 over x [n], in double (cpu: sequential in index order, so
     * chaining calls over tensors equals one pass over all of them). */
    double (*sumsq)(dd_engine *e, const float *x, size_t n, double acc);
    /* One Adam update of w, m, v [n] from g [n]: gi = g*clip; m = b1 m + omb1 gi;
     * v = b2 v + omb2 gi^2; w -= step_size * m / (sqrt(v) / bc2_sqrt + eps). */
    void (*adam_update)(dd_engine *e, float *w, const float *g, float *m, float *v, size_t n,
                        const dd_adam_coef *k);
};

/* The backend called `name` ("cpu"), or NULL for an unknown name. */
const dd_backend *dd_backend_get(const char *name);

/* ---- engine ---- */
/* An engine on backend be (NULL: "cpu"). threads <= 0: OpenMP's default (all
 * processors); the engine is made current on the calling thread. */
int dd_engine_create_on(const dd_backend *be, int threads, dd_engine **out, dd_error *err);
/* The same on the cpu backend. */
int dd_engine_create(int threads, dd_engine **out, dd_error *err);
void dd_engine_free(dd_engine *e);
const dd_backend *dd_engine_backend(const dd_engine *e);
int dd_engine_threads(const dd_engine *e);
/* The backend's own state (for backend implementations). */
void *dd_engine_state(const dd_engine *e);
/* Make the engine current on the calling thread (OpenMP's setting is per thread). */
void dd_engine_activate(const dd_engine *e);
/* The precision of the convolutions created from now on (created ones keep theirs).
 * DD_PREC_AUTO picks bf16 where the backend has it, f32 elsewhere; DD_PREC_BF16 on a
 * machine without native bf16 fails with DD_E_INVALID (the engine stays f32). */
int dd_engine_set_precision(dd_engine *e, dd_precision p, dd_error *err);
/* The resolved precision: DD_PREC_F32 (a new engine) or DD_PREC_BF16. */
dd_precision dd_engine_precision(const dd_engine *e);
/* Batch statistics across processes: with a reducer, BatchNorm in training uses the
 * statistics of the global batch (synchronised BatchNorm); NULL (the default): this
 * process's batch. The reducer is copied. */
void dd_engine_set_reducer(dd_engine *e, const dd_reducer *r);
const dd_reducer *dd_engine_reducer(const dd_engine *e);
/* Whether e's backend has native bf16 on this machine. */
int dd_engine_has_bf16(const dd_engine *e);
/* "f32" / "bf16" / "auto". */
const char *dd_precision_name(dd_precision p);
/* Bytes of the shared scratch block (reorders, library scratchpads, accumulation). */
size_t dd_engine_scratch_bytes(const dd_engine *e);
/* Allocate the scratch block at its final size. Call after creating every
 * convolution; conv_forward/backward call it themselves if needed. */
int dd_engine_commit_scratch(dd_engine *e, dd_error *err);
/* The backend's freeze_weights (see the table): call after creating every convolution,
 * only where the weights will not change again. A backend without it: nothing. */
int dd_engine_freeze_weights(dd_engine *e, size_t cap, dd_error *err);

#endif
