/* ops.h — owns the cpu backend's ops besides convolution (dnn.h): each op is a
 * forward/backward pair over raw host float buffers, activations in NHWC, as
 * OpenMP loops. The networks reach them through the dd_backend table
 * (backend/backend.h, filled in cpu.c); tests may call them directly.
 *
 * Conventions (all ops):
 *  - Shapes are given in the comment of each op; P = N*H*W pixels, C channels.
 *  - Backward functions write the input gradient dx: overwritten when
 *    `acc` == 0, added to when `acc` != 0 (a tensor feeding several consumers).
 *  - Parameter gradients (dgamma, dbeta, dw, db) always accumulate (+=); the
 *    training step zeroes the gradient block once per step.
 *  - Loops are OpenMP-parallel with static schedules and every reduction has a
 *    fixed order, so results depend only on inputs (and never on thread timing).
 *  - Fallible ops return a status and fill err; pure elementwise ops cannot fail. */
#ifndef DD_CPU_OPS_H
#define DD_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "core/status.h"

/* ---- elementwise: x, y, dy, dx are [n] ---- */
void dd_silu_forward(const float *x, float *y, size_t n);
void dd_silu_backward(const float *x, const float *dy, float *dx, size_t n, int acc);
void dd_relu_forward(const float *x, float *y, size_t n);
/* y is the forward output (relu'(x) = y > 0). */
void dd_relu_backward(const float *y, const float *dy, float *dx, size_t n, int acc);
void dd_sigmoid_forward(const float *x, float *y, size_t n);
void dd_sigmoid_backward(const float *y, const float *dy, float *dx, size_t n, int acc);
/* y = a + b. */
void dd_add_forward(const float *a, const float *b, float *y, size_t n);
/* dx (+)= dy: the gradient of a residual add for one of its inputs. */
void dd_copy_grad(const float *dy, float *dx, size_t n, int acc);
/* x[i] += v. */
void dd_add_scalar(float *x, size_t n, float v);
/* y [N,HW,C] += b [N,C] (per-sample channel vector broadcast over pixels). */
void dd_add_bcast_forward(float *y, const float *b, int n, size_t hw, int c);
/* db [N,C] = sum over HW of dy [N,HW,C], overwritten; float sums in pixel order. */
void dd_add_bcast_backward(const float *dy, float *db, int n, size_t hw, int c);

/* ---- channel concat: a [P,Ca], b [P,Cb] -> y [P,Ca+Cb] ---- */
void dd_concat_forward(const float *a, int ca, const float *b, int cb, float *y, size_t p);
/* da [P,Ca], db [P,Cb] from dy [P,Ca+Cb]; either may be NULL. */
void dd_concat_backward(const float *dy, float *da, int ca, float *db, int cb, size_t p, int acc_a,
                        int acc_b);

/* ---- 2x2 pooling, stride 2: x [N,H,W,C] -> y [N,H/2,W/2,C] (H, W even) ---- */
int dd_avgpool2_forward(const float *x, float *y, int n, int h, int w, int c, dd_error *err);
int dd_avgpool2_backward(const float *dy, float *dx, int n, int h, int w, int c, int acc,
                         dd_error *err);
int dd_maxpool2_forward(const float *x, float *y, int n, int h, int w, int c, dd_error *err);
/* The max position is recomputed from x (first maximum in row-major order, as PyTorch). */
int dd_maxpool2_backward(const float *x, const float *dy, float *dx, int n, int h, int w, int c,
                         int acc, dd_error *err);

/* ---- 2x upsampling: x [N,H,W,C] -> y [N,2H,2W,C] ---- */
void dd_upnearest2_forward(const float *x, float *y, int n, int h, int w, int c);
void dd_upnearest2_backward(const float *dy, float *dx, int n, int h, int w, int c, int acc);
/* Bilinear with align_corners = true (PyTorch nn.Upsample(scale_factor=2, mode='bilinear')). */
void dd_upbilinear2_forward(const float *x, float *y, int n, int h, int w, int c);
void dd_upbilinear2_backward(const float *dy, float *dx, int n, int h, int w, int c, int acc);

/* ---- GroupNorm over x [N,HW,C], G groups (C % G == 0), affine gamma/beta [C] ----
 * y = GN(x) (then SiLU when silu != 0). mean, rstd [N,G] are saved for backward. */
int dd_groupnorm_forward(const float *x, const float *gamma, const float *beta, float *y,
                         float *mean, float *rstd, int n, int hw, int c, int g, float eps, int silu,
                         dd_error *err);
/* The same with y written as bfloat16 (the float32 results rounded as oneDNN's reorder
 * rounds them, backend/cpu/bf16.h): the input of a bf16 convolution (dd_conv_forward_bf16). */
int dd_groupnorm_forward_bf16(const float *x, const float *gamma, const float *beta, uint16_t *y,
                              float *mean, float *rstd, int n, int hw, int c, int g, float eps,
                              int silu, dd_error *err);
int dd_groupnorm_backward(const float *x, const float *gamma, const float *beta,
                          const float *mean, const float *rstd, const float *dy, float *dx,
                          float *dgamma, float *dbeta, int n, int hw, int c, int g, int silu,
                          int acc, dd_error *err);
/* (The group-count rule dd_groupnorm_groups is backend-neutral: backend/backend.h.) */

/* ---- BatchNorm2d over x [P,C] (P = N*H*W) ----
 * training != 0: batch statistics (biased variance to normalise, unbiased into the
 * running variance, momentum m: run = (1-m)*run + m*batch); saves mean, rstd [C].
 * training == 0: running statistics. */
int dd_batchnorm_forward(const float *x, const float *gamma, const float *beta, float *run_mean,
                         float *run_var, float *y, float *mean, float *rstd, size_t p, int c,
                         float eps, float momentum, int training, dd_error *err);
/* Backward of the training-mode forward. */
int dd_batchnorm_backward(const float *x, const float *gamma, const float *mean,
                          const float *rstd, const float *dy, float *dx, float *dgamma,
                          float *dbeta, size_t p, int c, int acc, dd_error *err);
/* The same over the global batch of a data-parallel run: red (may be NULL: the above)
 * sums the per-channel sums and the value counts over the processes, so mean and
 * variance (forward) and the two gradient means (backward) are the global batch's;
 * dgamma and dbeta get this process's share (the gradient sum adds the rest). */
int dd_batchnorm_forward_red(const float *x, const float *gamma, const float *beta, float *run_mean,
                             float *run_var, float *y, float *mean, float *rstd, size_t p, int c,
                             float eps, float momentum, int training, const dd_reducer *red, dd_error *err);
int dd_batchnorm_backward_red(const float *x, const float *gamma, const float *mean,
                              const float *rstd, const float *dy, float *dx, float *dgamma,
                              float *dbeta, size_t p, int c, int acc, const dd_reducer *red, dd_error *err);

/* ---- linear: x [M,I], w [O,I] (PyTorch layout), b [O] -> y [M,O] ---- */
int dd_linear_forward(const float *x, const float *w, const float *b, float *y, int m, int in,
                      int out, dd_error *err);
/* dx [M,I] (may be NULL), dw [O,I] and db [O] accumulate. */
int dd_linear_backward(const float *x, const float *w, const float *dy, float *dx, float *dw,
                       float *db, int m, int in, int out, int acc, dd_error *err);

/* ---- multi-head self-attention core (docs/method.md §4) ----
 * qkv [N,L,3C] with the head-major channel layout: head h owns channels
 * [h*3d, h*3d+d) = q, [h*3d+d, h*3d+2d) = k, [h*3d+2d, h*3d+3d) = v, d = C/heads.
 * a [N,L,C]: head h writes channels [h*d, (h+1)*d). weights = softmax_keys(q.k / sqrt(d)).
 * probs: [N,heads,L,L] to keep the weights for backward (training), or an [L,L]
 * scratch when store_probs == 0 (inference). */
int dd_attention_forward(const float *qkv, float *a, float *probs, int store_probs, int n, int l,
                         int c, int heads, dd_error *err);
/* dqkv [N,L,3C] is overwritten (or added to with acc). scratch: [L,L]. */
int dd_attention_backward(const float *qkv, const float *probs, const float *da, float *dqkv,
                          float *scratch, int n, int l, int c, int heads, int acc, dd_error *err);

/* ---- sinusoidal timestep embedding: t [N] -> e [N,dim], [sin | cos] halves,
 * frequency i = exp(-ln(10000) * i / (dim/2)). dim even. ---- */
int dd_timestep_embedding(const int *t, float *e, int n, int dim, dd_error *err);

/* ---- losses (mean reduction); each returns the loss and writes d(scale*loss)/dpred ---- */
/* mean((pred - target)^2) over n. */
double dd_mse_loss(const float *pred, const float *target, float *dpred, size_t n, float scale,
                   int acc);
/* Focal on probabilities: bce = -(y log p + (1-y) log(1-p)) with logs clamped at -100,
 * pt = exp(-bce), mean(alpha (1-pt)^gamma bce). The bce gradient uses PyTorch's
 * (p - y) / max(p (1-p), 1e-12). */
double dd_focal_loss(const float *p, const float *y, float *dp, size_t n, float alpha,
                     float gamma, float scale, int acc);
/* SmoothL1 with beta: mean of 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta. */
double dd_smoothl1_loss(const float *pred, const float *target, float *dpred, size_t n,
                        float beta, float scale, int acc);

/* ---- diffusion, per sample over n values (formulas in backend.h) ---- */
/* z = a x + b y. */
void dd_axpby(float a, const float *x, float b, const float *y, float *z, size_t n);
/* The guided one-step reconstruction: x0_hat (and x0_b into x0b_out, may be NULL). */
void dd_recon_forward(const dd_guided_coef *k, const float *x_ts, const float *x_tb,
                      const float *e_s, const float *e_b, float *x0_hat, float *x0b_out,
                      size_t n);
/* Its backward: de_s, de_b accumulate. */
void dd_recon_backward(const dd_guided_coef *k, const float *x_ts, const float *x_tb,
                       const float *e_s, const float *e_b, const float *dx0_hat, float *de_s,
                       float *de_b, size_t n);
/* One DDPM reverse step in place; noise NULL: x = x0 (t = 0). */
void dd_ddpm_update(const dd_ddpm_coef *k, float *x, const float *eps, const float *noise,
                    size_t n);

/* ---- optimiser ---- */
/* acc + sum of (double)x[i]^2, sequential in index order. */
double dd_sumsq(const float *x, size_t n, double acc);
/* One Adam update of w, m, v [n] from g [n] (formula in backend.h's adam_update). */
void dd_adam_update(float *w, const float *g, float *m, float *v, size_t n, const dd_adam_coef *k);

#endif
