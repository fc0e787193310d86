/* diffusion.c — schedule, noising, guided one-step reconstruction, DDPM step. */
#include "model/diffusion.h"

#include <math.h>

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

void dd_q_sample(const dd_schedule *s, int t, const float *x0, const float *eps, float *xt, size_t n) {
    float a = (float)sqrt(s->alpha_bar[t]), b = (float)sqrt(1.0 - s->alpha_bar[t]);
    for (size_t i = 0; i < n; i++) xt[i] = a * x0[i] + b * eps[i];
}

static inline float clampf(float v) { return v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v; }

void dd_guided_recon(const dd_schedule *s, int ts, int tb, float w, const float *x_ts,
                     const float *x_tb, const float *e_s, const float *e_b, float *x0_hat,
                     float *x0b_out, size_t n) {
    double abs_ = s->alpha_bar[ts], abb = s->alpha_bar[tb];
    /* x0(x, t, e) = x / sqrt(abar) - sqrt(1/abar - 1) e */
    float rs = (float)(1.0 / sqrt(abs_)), ms = (float)sqrt(1.0 / abs_ - 1.0);
    float rb = (float)(1.0 / sqrt(abb)), mb = (float)sqrt(1.0 / abb - 1.0);
    float sa = (float)sqrt(abs_), k = (float)sqrt(1.0 - abs_);
    for (size_t i = 0; i < n; i++) {
        float x0b = clampf(x_tb[i] * rb - mb * e_b[i]);
        float r = sa * x0b + k * e_s[i];
        float eh = e_s[i] - k * w * (r - x_ts[i]);
        x0_hat[i] = clampf(x_ts[i] * rs - ms * eh);
        if (x0b_out) x0b_out[i] = x0b;
    }
}

void dd_guided_recon_backward(const dd_schedule *s, int ts, int tb, float w, const float *x_ts,
                              const float *x_tb, const float *e_s, const float *e_b,
                              const float *dx0_hat, float *de_s, float *de_b, size_t n) {
    double abs_ = s->alpha_bar[ts], abb = s->alpha_bar[tb];
    float rs = (float)(1.0 / sqrt(abs_)), ms = (float)sqrt(1.0 / abs_ - 1.0);
    float rb = (float)(1.0 / sqrt(abb)), mb = (float)sqrt(1.0 / abb - 1.0);
    float sa = (float)sqrt(abs_), k = (float)sqrt(1.0 - abs_);
    for (size_t i = 0; i < n; i++) {
        float zb = x_tb[i] * rb - mb * e_b[i];
        float x0b = clampf(zb);
        float r = sa * x0b + k * e_s[i];
        float eh = e_s[i] - k * w * (r - x_ts[i]);
        float z = x_ts[i] * rs - ms * eh;
        float dz = (z >= -1.0f && z <= 1.0f) ? dx0_hat[i] : 0.0f;
        float deh = -ms * dz;
        /* e_hat = e_s - k w (sa x0_b + k e_s - x_ts) */
        de_s[i] += deh * (1.0f - k * w * k);
        float dx0b = deh * (-k * w * sa);
        if (zb >= -1.0f && zb <= 1.0f) de_b[i] += -mb * dx0b;
    }
}

void dd_ddpm_step(const dd_schedule *s, int t, float *x, const float *e, size_t n, dd_rng *r) {
    double ab = s->alpha_bar[t], ab_prev = t > 0 ? s->alpha_bar[t - 1] : 1.0, beta = s->beta[t];
    float rs = (float)(1.0 / sqrt(ab)), ms = (float)sqrt(1.0 / ab - 1.0);
    /* posterior q(x_{t-1} | x_t, x0): mean = c0 x0 + ct x_t, variance beta_t (the
     * reference's fixed "large" variance) */
    float c0 = (float)(beta * sqrt(ab_prev) / (1.0 - ab));
    float ct = (float)((1.0 - ab_prev) * sqrt(1.0 - beta) / (1.0 - ab));
    float sd = (float)sqrt(beta);
    for (size_t i = 0; i < n; i++) {
        float x0 = clampf(x[i] * rs - ms * e[i]);
        if (t == 0) {
            x[i] = x0;
            continue;
        }
        x[i] = c0 * x0 + ct * x[i] + sd * (float)dd_rng_normal(r);
    }
}
