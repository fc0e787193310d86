/* diffusion.c — schedule, noising, guided one-step reconstruction, DDPM step. */
#include "model/diffusion.h"

#include <math.h>

#include "backend/cpu/ops.h"

int dd_schedule_init(dd_schedule *s, int T, dd_error *err) {
    if (T < 2 || T > DD_T_MAX)
        return dd_fail(err, DD_E_RANGE, "diffusion: T = %d out of range 2..%d", T, DD_T_MAX);
    s->T = T;
    double scale = 1000.0 / T, lo = 1e-4 * scale, hi = 0.02 * scale, ab = 1.0;
    for (int t = 0; t < T; t++) {
        /* np.linspace(lo, hi, T) */
        s->beta[t] = lo + (hi - lo) * t / (T - 1);
        ab *= 1.0 - s->beta[t];
        s->alpha_bar[t] = ab;
    }
    return DD_OK;
}

void dd_q_coef(const dd_schedule *s, int t, float *a, float *b) {
    *a = (float)sqrt(s->alpha_bar[t]), *b = (float)sqrt(1.0 - s->alpha_bar[t]);
}

void dd_guided_coef_at(const dd_schedule *s, int ts, int tb, float w, dd_guided_coef *k) {
    double abs_ = s->alpha_bar[ts], abb = s->alpha_bar[tb];
    /* x0(x, t, e) = x / sqrt(abar) - sqrt(1/abar - 1) e */
    k->rs = (float)(1.0 / sqrt(abs_)), k->ms = (float)sqrt(1.0 / abs_ - 1.0);
    k->rb = (float)(1.0 / sqrt(abb)), k->mb = (float)sqrt(1.0 / abb - 1.0);
    k->sa = (float)sqrt(abs_), k->k = (float)sqrt(1.0 - abs_);
    k->w = w;
}

void dd_ddpm_coef_at(const dd_schedule *s, int t, dd_ddpm_coef *k) {
    double ab = s->alpha_bar[t], ab_prev = t > 0 ? s->alpha_bar[t - 1] : 1.0, beta = s->beta[t];
    k->rs = (float)(1.0 / sqrt(ab)), k->ms = (float)sqrt(1.0 / ab - 1.0);
    /* posterior q(x_{t-1} | x_t, x0): mean = c0 x0 + ct x_t, variance beta_t (the
     * reference's fixed "large" variance) */
    k->c0 = (float)(beta * sqrt(ab_prev) / (1.0 - ab));
    k->ct = (float)((1.0 - ab_prev) * sqrt(1.0 - beta) / (1.0 - ab));
    k->sd = (float)sqrt(beta);
}

/* The host forms below run the cpu backend's loops (backend/cpu/ops.h) with the
 * coefficients above: one implementation of each formula. */
void dd_q_sample(const dd_schedule *s, int t, const float *x0, const float *eps, float *xt, size_t n) {
    float a, b;
    dd_q_coef(s, t, &a, &b);
    dd_axpby(a, x0, b, eps, xt, n);
}

void dd_guided_recon(const dd_schedule *s, int ts, int tb, float w, const float *x_ts,
                     const float *x_tb, const float *e_s, const float *e_b, float *x0_hat,
                     float *x0b_out, size_t n) {
    dd_guided_coef k;
    dd_guided_coef_at(s, ts, tb, w, &k);
    dd_recon_forward(&k, x_ts, x_tb, e_s, e_b, x0_hat, x0b_out, n);
}

void dd_guided_recon_backward(const dd_schedule *s, int ts, int tb, float w, const float *x_ts,
                              const float *x_tb, const float *e_s, const float *e_b,
                              const float *dx0_hat, float *de_s, float *de_b, size_t n) {
    dd_guided_coef k;
    dd_guided_coef_at(s, ts, tb, w, &k);
    dd_recon_backward(&k, x_ts, x_tb, e_s, e_b, dx0_hat, de_s, de_b, n);
}

void dd_ddpm_step(const dd_schedule *s, int t, float *x, const float *e, size_t n, dd_rng *r) {
    dd_ddpm_coef k;
    dd_ddpm_coef_at(s, t, &k);
    if (t == 0) {
        dd_ddpm_update(&k, x, e, NULL, n);
        return;
    }
    /* the normals in index order, as the reference draws them */
    float buf[4096];
    for (size_t i0 = 0; i0 < n; i0 += 4096) {
        size_t m = n - i0 < 4096 ? n - i0 : 4096;
        for (size_t i = 0; i < m; i++) buf[i] = (float)dd_rng_normal(r);
        dd_ddpm_update(&k, x + i0, e + i0, buf, m);
    }
}
