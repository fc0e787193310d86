/* dnn.h — owns the oneDNN glue of the cpu backend: the engine state (oneDNN
 * engine and stream, a shared scratch block), 2-D convolutions (forward,
 * backward-data, backward-weights primitives created once per shape) and the
 * sgemm used by linear layers and attention. The networks reach these through the
 * dd_backend table (backend/backend.h); tests and benchmarks may call them directly.
 *
 * Layouts seen by callers: activations NHWC float32; conv weights in PyTorch's
 * OIHW (so checkpoints map 1:1); bias [Cout]. oneDNN may pick a blocked weight
 * (or, for Winograd, activation) format internally; the reorders to and from it
 * are created with the primitive and run from the shared scratch block, so no
 * execution allocates. */
#ifndef DD_CPU_DNN_H
#define DD_CPU_DNN_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "core/status.h"

/* The engine hooks of the cpu backend (dd_backend.engine_create ... commit_scratch):
 * the state is the oneDNN engine, stream and scratch block; activate sets the
 * engine's OpenMP thread count on the calling thread. */
int dd_cpu_engine_create(dd_engine *e, void **state, dd_error *err);
void dd_cpu_engine_free(void *state);
void dd_cpu_activate(const dd_engine *e);
size_t dd_cpu_scratch_bytes(const dd_engine *e);
int dd_cpu_commit_scratch(dd_engine *e, dd_error *err);
/* dd_backend.freeze_weights: the weight cache block (see dnn.c "Frozen weights"). */
int dd_cpu_freeze_weights(dd_engine *e, size_t cap, dd_error *err);
/* 1 when oneDNN may use AVX512-BF16 (or AMX) here, i.e. bf16 convolutions run natively. */
int dd_cpu_has_bf16(void);

/* Create the primitives for one shape on a cpu engine, in the engine's precision
 * (dd_engine_precision: bf16 convolutions are always direct). with_backward also builds
 * backward-data and backward-weights. algo DD_CONV_WINOGRAD falls back to direct where
 * oneDNN has no Winograd kernel (dd_conv_algo_used tells). */
int dd_conv_create(dd_engine *e, const dd_conv_shape *s, dd_conv_algo algo, int with_backward,
                   dd_conv **out, dd_error *err);
void dd_conv_free(dd_conv *c);
dd_conv_algo dd_conv_algo_used(const dd_conv *c);
/* 1 when c runs in bf16 (made on an engine of precision DD_PREC_BF16). */
int dd_conv_is_bf16(const dd_conv *c);
/* oneDNN's implementation name of the forward primitive (e.g. "jit:avx512_core"). */
const char *dd_conv_impl(const dd_conv *c);

/* y[N,Ho,Wo,Cout] = conv(x[N,H,W,Cin], w[Cout,Cin,k,k]) + b[Cout] (b may be NULL). */
int dd_conv_forward(dd_conv *c, const float *x, const float *w, const float *b, float *y,
                    dd_error *err);
/* 1 when c's forward reads its source as bf16 NHWC, so a producer may write it in that
 * form and call dd_conv_forward_bf16 (c is bf16 and direct). */
int dd_conv_takes_bf16(const dd_conv *c);
int dd_conv_accumulates(const dd_conv *c);
/* dd_conv_forward with the source already rounded to bf16 (NHWC, as bf16.h rounds):
 * the same result as dd_conv_forward on the float32 values, without their conversion. */
int dd_conv_forward_bf16(dd_conv *c, const uint16_t *x, const float *w, const float *b, float *y,
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
