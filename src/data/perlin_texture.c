/* perlin_texture.c — procedural anomaly sources (see perlin_texture.h). */
#include "data/perlin_texture.h"

#include <math.h>
#include <stddef.h>

#include "data/perlin.h"

/* Fractal (fBm) noise in roughly [-1, 1]: octaves of doubling frequency. */
static void fbm(float *acc, int h, int w, int base, int octaves, dd_rng *r, float *tmp) {
    size_t n = (size_t)h * w;
    for (size_t i = 0; i < n; i++) acc[i] = 0;
    float amp = 1.0f, norm = 0;
    for (int o = 0; o < octaves; o++) {
        int res = base << o;
        if (res > 64) res = 64;
        dd_perlin_noise(tmp, h, w, res, res, 0.0f, r);
        for (size_t i = 0; i < n; i++) acc[i] += amp * tmp[i];
        norm += amp;
        amp *= 0.5f;
    }
    for (size_t i = 0; i < n; i++) acc[i] /= norm;
}

int dd_procedural_texture(float *out, int h, int w, dd_rng *r, float *scratch) {
    int kind = (int)dd_rng_int(r, 0, DD_PTEX_COUNT - 1);
    float col[3][3];
    for (int k = 0; k < 3; k++)
        for (int c = 0; c < 3; c++) col[k][c] = (float)dd_rng_uniform(r);
    size_t n = (size_t)h * w;
    /* t[i] in [0, 1] picks the colour: scratch holds t, out's first plane is
     * borrowed as a temporary for the noise octaves. */
    float *t = scratch;
    float *tmp = out; /* overwritten below once t is final */
    double th = dd_rng_range(r, 0.0f, (float)M_PI), ct = cos(th), st = sin(th);
    float side = (float)(h > w ? h : w);
    switch (kind) {
    case DD_PTEX_FRACTAL: {
        fbm(t, h, w, (int)dd_rng_int(r, 2, 8), 4, r, tmp);
        float gain = dd_rng_range(r, 1.0f, 3.0f);
        for (size_t i = 0; i < n; i++) t[i] = 0.5f + 0.5f * tanhf(gain * 1.5f * t[i]);
        break;
    }
    case DD_PTEX_MARBLE: {
        fbm(t, h, w, (int)dd_rng_int(r, 2, 6), 4, r, tmp);
        float freq = dd_rng_range(r, 4.0f, 16.0f) * 2.0f * (float)M_PI / side;
        float turb = dd_rng_range(r, 2.0f, 8.0f);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                size_t i = (size_t)y * w + x;
                float u = (float)(x * ct + y * st);
                t[i] = 0.5f + 0.5f * sinf(freq * u + turb * t[i]);
            }
        break;
    }
    case DD_PTEX_STRIPES: {
        float period = dd_rng_range(r, 4.0f, side / 4.0f);
        float duty = dd_rng_range(r, 0.2f, 0.8f);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float u = (float)(x * ct + y * st) / period;
                t[(size_t)y * w + x] = (u - floorf(u)) < duty ? 1.0f : 0.0f;
            }
        break;
    }
    case DD_PTEX_CHECKER: {
        float cell = dd_rng_range(r, 4.0f, side / 6.0f);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float u = (float)(x * ct + y * st) / cell, v = (float)(-x * st + y * ct) / cell;
                long a = (long)floorf(u) + (long)floorf(v);
                t[(size_t)y * w + x] = (a & 1) ? 1.0f : 0.0f;
            }
        break;
    }
    default: { /* spots: discs of random radius; t = 0.5 background, 0 or 1 inside */
        for (size_t i = 0; i < n; i++) t[i] = 0.5f;
        int count = (int)dd_rng_int(r, 10, 80);
        for (int k = 0; k < count; k++) {
            float cy = dd_rng_range(r, 0.0f, (float)h), cx = dd_rng_range(r, 0.0f, (float)w);
            float rad = dd_rng_range(r, side / 64.0f + 1.0f, side / 8.0f + 2.0f);
            float val = dd_rng_uniform(r) < 0.5 ? 0.0f : 1.0f;
            int y0 = (int)(cy - rad), y1 = (int)(cy + rad), x0 = (int)(cx - rad),
                x1 = (int)(cx + rad);
            for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < h; y++)
                for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < w; x++) {
                    float dy = y - cy, dx = x - cx;
                    if (dy * dy + dx * dx <= rad * rad) t[(size_t)y * w + x] = val;
                }
        }
        break;
    }
    }
    /* Colour ramp: t in [0, .5] between colours 0 and 1, [.5, 1] between 1 and 2. */
    for (size_t i = 0; i < n; i++) {
        float v = t[i] < 0 ? 0 : (t[i] > 1 ? 1 : t[i]);
        const float *a, *b;
        float f;
        if (v < 0.5f) { a = col[0]; b = col[1]; f = v * 2.0f; }
        else { a = col[1]; b = col[2]; f = (v - 0.5f) * 2.0f; }
        for (int c = 0; c < 3; c++) out[i * 3 + c] = a[c] + f * (b[c] - a[c]);
    }
    return kind;
}
