/* ops_diffusion.c — the per-element loops of the diffusion process: noising
 * (axpby), the guided one-step reconstruction and its backward, and the DDPM
 * reverse step (see ops.h; the scalars come from model/diffusion.c). Sequential
 * loops, as the model's own versions, so the results are the same bits. */
#include "backend/cpu/ops.h"

static inline float clampf(float v) { return v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v; }

void dd_axpby(float a, const float *x, float b, const float *y, float *z, size_t n) {
    for (size_t i = 0; i < n; i++) z[i] = a * x[i] + b * y[i];
}

void dd_recon_forward(const dd_guided_coef *c, const float *x_ts, const float *x_tb,
                      const float *e_s, const float *e_b, float *x0_hat, float *x0b_out,
                      size_t n) {
    float rs = c->rs, ms = c->ms, rb = c->rb, mb = c->mb, sa = c->sa, k = c->k, w = c->w;
    for (size_t i = 0; i < n; i++) {
        float x0b = clampf(x_tb[i] * rb - mb * e_b[i]);
        float r = sa * x0b + k * e_s[i];
        float eh = e_s[i] - k * w * (r - x_ts[i]);
        x0_hat[i] = clampf(x_ts[i] * rs - ms * eh);
        if (x0b_out) x0b_out[i] = x0b;
    }
}

void dd_recon_backward(const dd_guided_coef *c, const float *x_ts, const float *x_tb,
                       const float *e_s, const float *e_b, const float *dx0_hat, float *de_s,
                       float *de_b, size_t n) {
    float rs = c->rs, ms = c->ms, rb = c->rb, mb = c->mb, sa = c->sa, k = c->k, w = c->w;
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

void dd_ddpm_update(const dd_ddpm_coef *c, float *x, const float *eps, const float *noise,
                    size_t n) {
    float rs = c->rs, ms = c->ms, c0 = c->c0, ct = c->ct, sd = c->sd;
    for (size_t i = 0; i < n; i++) {
        float x0 = clampf(x[i] * rs - ms * eps[i]);
        x[i] = noise ? c0 * x0 + ct * x[i] + sd * noise[i] : x0;
    }
}
