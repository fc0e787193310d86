/* dnn.h — owns the oneDNN glue: the CPU engine and stream, a shared scratch
 * block, 2-D convolutions (forward, backward-data, backward-weights primitives
 * created once per shape) and the sgemm used by linear layers and attention.
 *
 * Layouts seen by callers: activations NHWC float32; conv weights in PyTorch's
 * OIHW (so checkpoints map 1:1); bias [Cout]. oneDNN may pick a blocked weight
 * (or, for Winograd, activation) format internally; the reorders to and from it
 * are created with the primitive and run from the shared scratch block, so no
 * execution allocates. */
#ifndef DD_DNN_H
#define DD_DNN_H

#include <stddef.h>

#include "core/status.h"

typedef struct dd_engine dd_engine;

/* threads <= 0: use OpenMP's default. The thread count is set on the calling thread. */
int dd_engine_create(int threads, dd_engine **out, dd_error *err);
void dd_engine_free(dd_engine *e);
int dd_engine_threads(const dd_engine *e);
/* Apply the engine's thread count to the calling thread (OpenMP's setting is per thread). */
void dd_engine_activate(const dd_engine *e);
/* Bytes of the shared scratch block (reorders, oneDNN scratchpads, accumulation). */
size_t dd_engine_scratch_bytes(const dd_engine *e);
/* Allocate the scratch block at its final size. Call after creating every
 * primitive; dd_conv_* calls it themselves if needed (not on the steady path). */
int dd_engine_commit_scratch(dd_engine *e, dd_error *err);

/* DD_CONV_AUTO (for layers, see layers.c): in training, Winograd for 3x3 stride-1
 * convolutions with at least 64 input and output channels (faster per layer and per
 * training step, bench/README.md); direct everywhere else, inference included. */
typedef enum { DD_CONV_DIRECT = 0, DD_CONV_WINOGRAD = 1, DD_CONV_AUTO = 2 } dd_conv_algo;

typedef struct dd_conv_shape {
    int n, h, w;    /* input batch and spatial size */
    int cin, cout;  /* channels */
    int k;          /* kernel size (1 or 3; any odd k works) */
    int stride;     /* 1 or 2 */
    int pad;        /* usually k / 2 */
} dd_conv_shape;

typedef struct dd_conv dd_conv;

/* Output spatial size for a shape. */
void dd_conv_out_hw(const dd_conv_shape *s, int *ho, int *wo);
/* Create the primitives for one shape. with_backward also builds backward-data and
 * backward-weights. algo DD_CONV_WINOGRAD falls back to direct where oneDNN has no
 * Winograd kernel (dd_conv_algo_used tells). */
int dd_conv_create(dd_engine *e, const dd_conv_shape *s, dd_conv_algo algo, int with_backward,
                   dd_conv **out, dd_error *err);
void dd_conv_free(dd_conv *c);
dd_conv_algo dd_conv_algo_used(const dd_conv *c);
/* oneDNN's implementation name of the forward primitive (e.g. "jit:avx512_core"). */
const char *dd_conv_impl(const dd_conv *c);

/* y[N,Ho,Wo,Cout] = conv(x[N,H,W,Cin], w[Cout,Cin,k,k]) + b[Cout] (b may be NULL). */
int dd_conv_forward(dd_conv *c, const float *x, const float *w, const float *b, float *y,
                    dd_error *err);
/* Backward. dy[N,Ho,Wo,Cout]. Any of dx[N,H,W,Cin], dw[Cout,Cin,k,k], db[Cout] may be
 * NULL (skipped). dw and db always accumulate (+=); dx accumulates when accumulate != 0
 * and is overwritten otherwise. */
int dd_conv_backward(dd_conv *c, const float *x, const float *w, const float *dy, float *dx,
                     float *dw, float *db, int accumulate, dd_error *err);

/* Row-major C[M,N] = alpha * op(A) op(B) + beta * C through dnnl_sgemm; ta/tb 'N' or 'T'. */
int dd_sgemm(char ta, char tb, long m, long n, long k, float alpha, const float *a, long lda,
             const float *b, long ldb, float beta, float *c, long ldc, dd_error *err);

#endif
