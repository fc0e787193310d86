/* perlin.c — Perlin-noise masks (see perlin.h). */
#include "data/perlin.h"

#include <math.h>
#include <stddef.h>

static inline float fade(float t) { return t * t * t * (t * (t * 6.0f - 15.0f) + 10.0f); }

void dd_perlin_noise(float *out, int h, int w, int res_y, int res_x, float angle_deg,
                     dd_rng *r) {
    if (res_y < 1) res_y = 1;
    if (res_x < 1) res_x = 1;
    if (res_y > 64) res_y = 64;
    if (res_x > 64) res_x = 64;
    /* (res+1)^2 gradients, row-major over the lattice. */
    float gy[65 * 65], gx[65 * 65];
    int gw = res_x + 1;
    for (int i = 0; i < (res_y + 1) * gw; i++) {
        double a = 2.0 * M_PI * dd_rng_uniform(r);
        gy[i] = (float)cos(a); /* DRAEM: first component pairs with the row axis */
        gx[i] = (float)sin(a);
    }
    double th = angle_deg * M_PI / 180.0, c = cos(th), s = sin(th);
    double cy = (h - 1) * 0.5, cx = (w - 1) * 0.5;
    float sy = (float)res_y / (float)h, sx = (float)res_x / (float)w;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            /* Inverse rotation: where in the unrotated noise this pixel reads. */
            double dy = y - cy, dx = x - cx;
            double py = cy + c * dy - s * dx, px = cx + s * dy + c * dx;
            float v = 0.0f;
            if (py > -0.5 && py < h - 0.5 && px > -0.5 && px < w - 0.5) {
                if (py < 0) py = 0;
                if (px < 0) px = 0;
                float u = (float)py * sy, t = (float)px * sx;
                int iy = (int)u, ix = (int)t;
                if (iy >= res_y) iy = res_y - 1;
                if (ix >= res_x) ix = res_x - 1;
                float fy = u - iy, fx = t - ix;
                int g00 = iy * gw + ix, g10 = g00 + gw, g01 = g00 + 1, g11 = g10 + 1;
                float n00 = gy[g00] * fy + gx[g00] * fx;
                float n10 = gy[g10] * (fy - 1) + gx[g10] * fx;
                float n01 = gy[g01] * fy + gx[g01] * (fx - 1);
                float n11 = gy[g11] * (fy - 1) + gx[g11] * (fx - 1);
                float ty = fade(fy), tx = fade(fx);
                float a0 = n00 + ty * (n10 - n00), a1 = n01 + ty * (n11 - n01);
                v = 1.41421356f * (a0 + tx * (a1 - a0));
            }
            out[(size_t)y * w + x] = v;
        }
    }
}

void dd_perlin_params_init(dd_perlin_params *p) {
    p->scale_min = 0;
    p->scale_max = 5;
    p->threshold = 0.5f;
    p->rotate_max_deg = 90.0f;
    p->max_tries = 50;
}

long dd_mask_binarise_fg(float *mask, size_t n, const uint8_t *fg, float threshold) {
    long count = 0;
    for (size_t i = 0; i < n; i++) {
        float m = (mask[i] > threshold && (!fg || fg[i])) ? 1.0f : 0.0f;
        mask[i] = m;
        count += m > 0;
    }
    return count;
}

long dd_perlin_mask(float *mask, int h, int w, const uint8_t *fg, const dd_perlin_params *p,
                    dd_rng *r, int *tries) {
    int n_try = p->max_tries > 0 ? p->max_tries : 1;
    int lo = p->scale_min < 0 ? 0 : p->scale_min, hi = p->scale_max > 6 ? 6 : p->scale_max;
    if (hi < lo) hi = lo;
    size_t n = (size_t)h * w;
    long count = 0;
    int t;
    for (t = 1; t <= n_try; t++) {
        int a = (int)dd_rng_int(r, lo, hi), b = (int)dd_rng_int(r, lo, hi);
        float ang = dd_rng_range(r, -p->rotate_max_deg, p->rotate_max_deg);
        dd_perlin_noise(mask, h, w, 1 << a, 1 << b, ang, r);
        if ((count = dd_mask_binarise_fg(mask, n, fg, p->threshold)) > 0) break;
    }
    if (tries) *tries = t > n_try ? n_try : t;
    return count;
}
