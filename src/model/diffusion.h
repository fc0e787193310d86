/* diffusion.h — owns the DDPM schedule and everything computed from it
 * (docs/method.md §2-3): forward noising, the one-step x0 estimate, norm-guided
 * one-step reconstruction (forward and its backward for training) and the
 * iterative DDPM reverse sampler kept as the slow baseline. Images are NHWC. */
#ifndef DD_DIFFUSION_H
#define DD_DIFFUSION_H

#include <stddef.h>

#include "backend/backend.h"
#include "core/rng.h"
#include "core/status.h"

#define DD_T_MAX 4000

typedef struct dd_schedule {
    int T;
    double beta[DD_T_MAX], alpha_bar[DD_T_MAX];
} dd_schedule;

/* Linear betas from 1e-4*(1000/T) to 0.02*(1000/T); abar_t = prod_{i<=t} (1 - beta_i). */
int dd_schedule_init(dd_schedule *s, int T, dd_error *err);

/* Coefficients for the backend's loops (backend.h): q_sample's a = sqrt(abar_t),
 * b = sqrt(1 - abar_t); the guided reconstruction's; one DDPM step's. */
void dd_q_coef(const dd_schedule *s, int t, float *a, float *b);
void dd_guided_coef_at(const dd_schedule *s, int ts, int tb, float w, dd_guided_coef *k);
void dd_ddpm_coef_at(const dd_schedule *s, int t, dd_ddpm_coef *k);

/* Host forms (cpu backend), for tests and benchmarks; the model calls its engine's
 * backend with the coefficients above.
 * x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, over n values. */
void dd_q_sample(const dd_schedule *s, int t, const float *x0, const float *eps, float *xt, size_t n);

/* Norm-guided one-step reconstruction for one sample of n values (docs/method.md §3):
 * x0_b = clamp(x0(x_tb, t_b, e_b)); r = sqrt(ab_s) x0_b + sqrt(1-ab_s) e_s;
 * e_hat = e_s - sqrt(1-ab_s) w (r - x_ts); x0_hat = clamp(x0(x_ts, t_s, e_hat)).
 * x0b_out may be NULL. */
void dd_guided_recon(const dd_schedule *s, int ts, int tb, float w, const float *x_ts,
                     const float *x_tb, const float *e_s, const float *e_b, float *x0_hat,
                     float *x0b_out, size_t n);
/* Gradients of the above for d(x0_hat): adds into de_s and de_b (the clamps pass
 * gradient only inside [-1, 1], as torch.clamp). */
void dd_guided_recon_backward(const dd_schedule *s, int ts, int tb, float w, const float *x_ts,
                              const float *x_tb, const float *e_s, const float *e_b,
                              const float *dx0_hat, float *de_s, float *de_b, size_t n);

/* One reverse DDPM step from x_t (t >= 1) with predicted noise e: posterior mean
 * of x_{t-1} from the clamped x0 estimate, plus sqrt(beta_t) z (z ~ N(0,1) from r);
 * at t == 0 returns the clamped x0 estimate. In place on x. */
void dd_ddpm_step(const dd_schedule *s, int t, float *x, const float *e, size_t n, dd_rng *r);

#endif
