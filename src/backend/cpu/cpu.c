/* cpu.c — the cpu backend's table (see cpu.h): engine hooks and convolutions from
 * dnn.c, buffers as aligned host memory, and one thin adapter per op that drops the
 * engine argument and calls the OpenMP op of ops.h (the ops take the thread count
 * that dd_engine_activate set on the calling thread). */
#include "backend/cpu/cpu.h"

#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dnn.h"
#include "backend/cpu/ops.h"

/* ---- buffers: host memory ---- */
static void *buf_alloc(dd_engine *e, size_t bytes) {
    (void)e;
    return aligned_alloc(64, bytes ? (bytes + 63) / 64 * 64 : 64);
}
static void buf_free(dd_engine *e, void *p) {
    (void)e;
    free(p);
}
static void buf_zero(dd_engine *e, void *p, size_t bytes) {
    (void)e;
    memset(p, 0, bytes);
}
static void copy_bytes(dd_engine *e, void *dst, const void *src, size_t bytes) {
    (void)e;
    if (dst != src) memcpy(dst, src, bytes);
}

/* ---- adapters ---- */
static int sgemm(dd_engine *e, char ta, char tb, long m, long n, long k, float alpha,
                 const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc,
                 dd_error *err) {
    (void)e;
    return dd_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, err);
}
static int linear_forward(dd_engine *e, const float *x, const float *w, const float *b, float *y,
                          int m, int in, int out, dd_error *err) {
    (void)e;
    return dd_linear_forward(x, w, b, y, m, in, out, err);
}
static int linear_backward(dd_engine *e, const float *x, const float *w, const float *dy,
                           float *dx, float *dw, float *db, int m, int in, int out, int acc,
                           dd_error *err) {
    (void)e;
    return dd_linear_backward(x, w, dy, dx, dw, db, m, in, out, acc, err);
}
static int groupnorm_forward(dd_engine *e, const float *x, const float *gamma, const float *beta,
                             float *y, float *mean, float *rstd, int n, int hw, int c, int g,
                             float eps, int silu, dd_error *err) {
    (void)e;
    return dd_groupnorm_forward(x, gamma, beta, y, mean, rstd, n, hw, c, g, eps, silu, err);
}
static int groupnorm_forward_bf16(dd_engine *e, const float *x, const float *gamma,
                                  const float *beta, uint16_t *y, float *mean, float *rstd, int n,
                                  int hw, int c, int g, float eps, int silu, dd_error *err) {
    (void)e;
    return dd_groupnorm_forward_bf16(x, gamma, beta, y, mean, rstd, n, hw, c, g, eps, silu, err);
}
static int groupnorm_backward(dd_engine *e, const float *x, const float *gamma, const float *beta,
                              const float *mean, const float *rstd, const float *dy, float *dx,
                              float *dgamma, float *dbeta, int n, int hw, int c, int g, int silu,
                              int acc, dd_error *err) {
    (void)e;
    return dd_groupnorm_backward(x, gamma, beta, mean, rstd, dy, dx, dgamma, dbeta, n, hw, c, g,
                                 silu, acc, err);
}
static int batchnorm_forward(dd_engine *e, const float *x, const float *gamma, const float *beta,
                             float *run_mean, float *run_var, float *y, float *mean, float *rstd,
                             size_t p, int c, float eps, float momentum, int training,
                             dd_error *err) {
    return dd_batchnorm_forward_red(x, gamma, beta, run_mean, run_var, y, mean, rstd, p, c, eps,
                                    momentum, training, dd_engine_reducer(e), err);
}
static int batchnorm_backward(dd_engine *e, const float *x, const float *gamma, const float *mean,
                              const float *rstd, const float *dy, float *dx, float *dgamma,
                              float *dbeta, size_t p, int c, int acc, dd_error *err) {
    return dd_batchnorm_backward_red(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, p, c, acc,
                                     dd_engine_reducer(e), err);
}
static void silu_forward(dd_engine *e, const float *x, float *y, size_t n) {
    (void)e;
    dd_silu_forward(x, y, n);
}
static void silu_backward(dd_engine *e, const float *x, const float *dy, float *dx, size_t n,
                          int acc) {
    (void)e;
    dd_silu_backward(x, dy, dx, n, acc);
}
static void relu_forward(dd_engine *e, const float *x, float *y, size_t n) {
    (void)e;
    dd_relu_forward(x, y, n);
}
static void relu_backward(dd_engine *e, const float *y, const float *dy, float *dx, size_t n,
                          int acc) {
    (void)e;
    dd_relu_backward(y, dy, dx, n, acc);
}
static void sigmoid_forward(dd_engine *e, const float *x, float *y, size_t n) {
    (void)e;
    dd_sigmoid_forward(x, y, n);
}
static void sigmoid_backward(dd_engine *e, const float *y, const float *dy, float *dx, size_t n,
                             int acc) {
    (void)e;
    dd_sigmoid_backward(y, dy, dx, n, acc);
}
static void add_forward(dd_engine *e, const float *a, const float *b, float *y, size_t n) {
    (void)e;
    dd_add_forward(a, b, y, n);
}
static void copy_grad(dd_engine *e, const float *dy, float *dx, size_t n, int acc) {
    (void)e;
    dd_copy_grad(dy, dx, n, acc);
}
static void add_scalar(dd_engine *e, float *x, size_t n, float v) {
    (void)e;
    dd_add_scalar(x, n, v);
}
static void add_bcast_forward(dd_engine *e, float *y, const float *b, int n, size_t hw, int c) {
    (void)e;
    dd_add_bcast_forward(y, b, n, hw, c);
}
static void add_bcast_backward(dd_engine *e, const float *dy, float *db, int n, size_t hw, int c) {
    (void)e;
    dd_add_bcast_backward(dy, db, n, hw, c);
}
static void concat_forward(dd_engine *e, const float *a, int ca, const float *b, int cb, float *y,
                           size_t p) {
    (void)e;
    dd_concat_forward(a, ca, b, cb, y, p);
}
static void concat_backward(dd_engine *e, const float *dy, float *da, int ca, float *db, int cb,
                            size_t p, int acc_a, int acc_b) {
    (void)e;
    dd_concat_backward(dy, da, ca, db, cb, p, acc_a, acc_b);
}
static int avgpool2_forward(dd_engine *e, const float *x, float *y, int n, int h, int w, int c,
                            dd_error *err) {
    (void)e;
    return dd_avgpool2_forward(x, y, n, h, w, c, err);
}
static int avgpool2_backward(dd_engine *e, const float *dy, float *dx, int n, int h, int w, int c,
                             int acc, dd_error *err) {
    (void)e;
    return dd_avgpool2_backward(dy, dx, n, h, w, c, acc, err);
}
static int maxpool2_forward(dd_engine *e, const float *x, float *y, int n, int h, int w, int c,
                            dd_error *err) {
    (void)e;
    return dd_maxpool2_forward(x, y, n, h, w, c, err);
}
static int maxpool2_backward(dd_engine *e, const float *x, const float *dy, float *dx, int n,
                             int h, int w, int c, int acc, dd_error *err) {
    (void)e;
    return dd_maxpool2_backward(x, dy, dx, n, h, w, c, acc, err);
}
static void upnearest2_forward(dd_engine *e, const float *x, float *y, int n, int h, int w, int c) {
    (void)e;
    dd_upnearest2_forward(x, y, n, h, w, c);
}
static void upnearest2_backward(dd_engine *e, const float *dy, float *dx, int n, int h, int w,
                                int c, int acc) {
    (void)e;
    dd_upnearest2_backward(dy, dx, n, h, w, c, acc);
}
static void upbilinear2_forward(dd_engine *e, const float *x, float *y, int n, int h, int w,
                                int c) {
    (void)e;
    dd_upbilinear2_forward(x, y, n, h, w, c);
}
static void upbilinear2_backward(dd_engine *e, const float *dy, float *dx, int n, int h, int w,
                                 int c, int acc) {
    (void)e;
    dd_upbilinear2_backward(dy, dx, n, h, w, c, acc);
}
static int attention_forward(dd_engine *e, const float *qkv, float *a, float *probs,
                             int store_probs, int n, int l, int c, int heads, dd_error *err) {
    (void)e;
    return dd_attention_forward(qkv, a, probs, store_probs, n, l, c, heads, err);
}
static int attention_backward(dd_engine *e, const float *qkv, const float *probs, const float *da,
                              float *dqkv, float *scratch, int n, int l, int c, int heads, int acc,
                              dd_error *err) {
    (void)e;
    return dd_attention_backward(qkv, probs, da, dqkv, scratch, n, l, c, heads, acc, err);
}
static int timestep_embedding(dd_engine *e, const int *t, float *emb, int n, int dim,
                              dd_error *err) {
    (void)e;
    return dd_timestep_embedding(t, emb, n, dim, err);
}
static double mse_loss(dd_engine *e, const float *pred, const float *target, float *dpred,
                       size_t n, float scale, int acc) {
    (void)e;
    return dd_mse_loss(pred, target, dpred, n, scale, acc);
}
static double focal_loss(dd_engine *e, const float *p, const float *y, float *dp, size_t n,
                         float alpha, float gamma, float scale, int acc) {
    (void)e;
    return dd_focal_loss(p, y, dp, n, alpha, gamma, scale, acc);
}
static double smoothl1_loss(dd_engine *e, const float *pred, const float *target, float *dpred,
                            size_t n, float beta, float scale, int acc) {
    (void)e;
    return dd_smoothl1_loss(pred, target, dpred, n, beta, scale, acc);
}
static void axpby(dd_engine *e, float a, const float *x, float b, const float *y, float *z,
                  size_t n) {
    (void)e;
    dd_axpby(a, x, b, y, z, n);
}
static void guided_recon_forward(dd_engine *e, const dd_guided_coef *k, const float *x_ts,
                                 const float *x_tb, const float *e_s, const float *e_b,
                                 float *x0_hat, float *x0b_out, size_t n) {
    (void)e;
    dd_recon_forward(k, x_ts, x_tb, e_s, e_b, x0_hat, x0b_out, n);
}
static void guided_recon_backward(dd_engine *e, const dd_guided_coef *k, const float *x_ts,
                                  const float *x_tb, const float *e_s, const float *e_b,
                                  const float *dx0_hat, float *de_s, float *de_b, size_t n) {
    (void)e;
    dd_recon_backward(k, x_ts, x_tb, e_s, e_b, dx0_hat, de_s, de_b, n);
}
static void ddpm_step(dd_engine *e, const dd_ddpm_coef *k, float *x, const float *eps,
                      const float *noise, size_t n) {
    (void)e;
    dd_ddpm_update(k, x, eps, noise, n);
}
static double sumsq(dd_engine *e, const float *x, size_t n, double acc) {
    (void)e;
    return dd_sumsq(x, n, acc);
}
static void adam_update(dd_engine *e, float *w, const float *g, float *m, float *v, size_t n,
                        const dd_adam_coef *k) {
    (void)e;
    dd_adam_update(w, g, m, v, n, k);
}

const dd_backend dd_backend_cpu = {
    .name = "cpu",
    .engine_create = dd_cpu_engine_create,
    .engine_free = dd_cpu_engine_free,
    .activate = dd_cpu_activate,
    .scratch_bytes = dd_cpu_scratch_bytes,
    .commit_scratch = dd_cpu_commit_scratch,
    .freeze_weights = dd_cpu_freeze_weights,
    .has_bf16 = dd_cpu_has_bf16,
    .buf_alloc = buf_alloc,
    .buf_free = buf_free,
    .buf_zero = buf_zero,
    .copy_h2d = copy_bytes,
    .copy_d2h = copy_bytes,
    .copy_d2d = copy_bytes,
    .conv_create = dd_conv_create,
    .conv_free = dd_conv_free,
    .conv_algo_used = dd_conv_algo_used,
    .conv_impl = dd_conv_impl,
    .conv_forward = dd_conv_forward,
    .conv_takes_bf16 = dd_conv_takes_bf16,
    .conv_accumulates = dd_conv_accumulates,
    .conv_forward_bf16 = dd_conv_forward_bf16,
    .conv_backward = dd_conv_backward,
    .sgemm = sgemm,
    .linear_forward = linear_forward,
    .linear_backward = linear_backward,
    .groupnorm_forward = groupnorm_forward,
    .groupnorm_forward_bf16 = groupnorm_forward_bf16,
    .groupnorm_backward = groupnorm_backward,
    .batchnorm_forward = batchnorm_forward,
    .batchnorm_backward = batchnorm_backward,
    .silu_forward = silu_forward,
    .silu_backward = silu_backward,
    .relu_forward = relu_forward,
    .relu_backward = relu_backward,
    .sigmoid_forward = sigmoid_forward,
    .sigmoid_backward = sigmoid_backward,
    .add_forward = add_forward,
    .copy_grad = copy_grad,
    .add_scalar = add_scalar,
    .add_bcast_forward = add_bcast_forward,
    .add_bcast_backward = add_bcast_backward,
    .concat_forward = concat_forward,
    .concat_backward = concat_backward,
    .avgpool2_forward = avgpool2_forward,
    .avgpool2_backward = avgpool2_backward,
    .maxpool2_forward = maxpool2_forward,
    .maxpool2_backward = maxpool2_backward,
    .upnearest2_forward = upnearest2_forward,
    .upnearest2_backward = upnearest2_backward,
    .upbilinear2_forward = upbilinear2_forward,
    .upbilinear2_backward = upbilinear2_backward,
    .attention_forward = attention_forward,
    .attention_backward = attention_backward,
    .timestep_embedding = timestep_embedding,
    .mse_loss = mse_loss,
    .focal_loss = focal_loss,
    .smoothl1_loss = smoothl1_loss,
    .axpby = axpby,
    .guided_recon_forward = guided_recon_forward,
    .guided_recon_backward = guided_recon_backward,
    .ddpm_step = ddpm_step,
    .sumsq = sumsq,
    .adam_update = adam_update,
};
