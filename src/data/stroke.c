/* stroke.c — thin-stroke anomaly masks (see stroke.h). */
#include "data/stroke.h"

#include <math.h>
#include <string.h>

#include "data/perlin.h"

static float log_uniform(dd_rng *r, float lo, float hi) {
    if (hi <= lo) return lo;
    return expf(dd_rng_range(r, logf(lo), logf(hi)));
}

/* Marks every pixel centre within radius of (cy, cx) (pixel centres at i + 0.5). */
static void stamp(float *mask, int h, int w, float cy, float cx, float radius) {
    int y0 = (int)floorf(cy - radius), y1 = (int)ceilf(cy + radius);
    int x0 = (int)floorf(cx - radius), x1 = (int)ceilf(cx + radius);
    if (y0 < 0) y0 = 0;
    if (x0 < 0) x0 = 0;
    if (y1 > h - 1) y1 = h - 1;
    if (x1 > w - 1) x1 = w - 1;
    float r2 = radius * radius;
    for (int y = y0; y <= y1; y++) {
        float dy = (float)y + 0.5f - cy;
        for (int x = x0; x <= x1; x++) {
            float dx = (float)x + 0.5f - cx;
            if (dy * dy + dx * dx <= r2) mask[(size_t)y * w + x] = 1.0f;
        }
    }
}

/* One curve: B(t) = (1-t)^2 p0 + 2(1-t)t p1 + t^2 p2, t in [0, 1]. */
static void draw_stroke(float *mask, int h, int w, dd_rng *r) {
    float side = (float)(h < w ? h : w);
    float len = log_uniform(r, 2.0f, 0.6f * side);
    float max_rad = side / 40.0f;
    float radius = log_uniform(r, 0.5f, max_rad > 1.0f ? max_rad : 1.0f);
    float ang = dd_rng_range(r, 0.0f, 6.2831853f);
    float y0 = dd_rng_range(r, 0.0f, (float)h), x0 = dd_rng_range(r, 0.0f, (float)w);
    float dy = sinf(ang) * len, dx = cosf(ang) * len;
    float bend = dd_rng_range(r, -0.5f, 0.5f) * len;
    float y2 = y0 + dy, x2 = x0 + dx;
    float y1 = y0 + 0.5f * dy + cosf(ang) * bend, x1 = x0 + 0.5f * dx - sinf(ang) * bend;
    /* the control polygon bounds the curve's length: stamps at most half a pixel apart */
    float poly = len + 2.0f * fabsf(bend);
    int n = (int)ceilf(poly * 2.0f) + 1;
    for (int i = 0; i <= n; i++) {
        float t = (float)i / (float)n, u = 1.0f - t;
        float cy = u * u * y0 + 2.0f * u * t * y1 + t * t * y2;
        float cx = u * u * x0 + 2.0f * u * t * x1 + t * t * x2;
        stamp(mask, h, w, cy, cx, radius);
    }
}

long dd_stroke_mask(float *mask, int h, int w, const uint8_t *fg, int max_tries, dd_rng *r,
                    int *tries) {
    int n_try = max_tries > 0 ? max_tries : 1;
    size_t n = (size_t)h * w;
    long count = 0;
    int t;
    for (t = 1; t <= n_try; t++) {
        memset(mask, 0, n * sizeof(float));
        int strokes = (int)dd_rng_int(r, 1, 3);
        for (int s = 0; s < strokes; s++) draw_stroke(mask, h, w, r);
        /* the pen marks 1 on 0: binarising at 0.5 only applies the foreground */
        if ((count = dd_mask_binarise_fg(mask, n, fg, 0.5f)) > 0) break;
    }
    if (tries) *tries = t > n_try ? n_try : t;
    return count;
}
