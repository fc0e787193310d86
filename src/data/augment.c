/* augment.c — anomaly-source augmentations (see augment.h). */
#include "data/augment.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

const char *dd_aug_name(int kind) {
    static const char *names[DD_AUG_COUNT] = {
        "gamma",    "brightness", "sharpness",    "hue_sat",  "solarize",
        "posterize", "invert",    "autocontrast", "equalize", "rotate"};
    return (kind >= 0 && kind < DD_AUG_COUNT) ? names[kind] : "?";
}

static inline float clamp01(float v) { return v < 0 ? 0 : (v > 1 ? 1 : v); }
static inline int q8(float v) { return (int)(clamp01(v) * 255.0f + 0.5f); }

void dd_aug_gamma(float *img, int h, int w, const float gamma[3]) {
    size_t n = (size_t)h * w;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) img[i * 3 + c] = powf(clamp01(img[i * 3 + c]), gamma[c]);
}

void dd_aug_brightness(float *img, int h, int w, float mul, float add) {
    size_t n = (size_t)h * w;
    for (size_t i = 0; i < n; i++) {
        float *p = img + i * 3;
        float y = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
        float d = y * (mul - 1.0f) + add;
        for (int c = 0; c < 3; c++) p[c] = clamp01(p[c] + d);
    }
}

void dd_aug_sharpness(float *img, int h, int w, float factor, float *scratch) {
    size_t n = (size_t)h * w * 3;
    memcpy(scratch, img, n * sizeof(float)); /* scratch = smoothed (border = original) */
    for (int y = 1; y < h - 1; y++)
        for (int x = 1; x < w - 1; x++)
            for (int c = 0; c < 3; c++) {
                float s = 0;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                        s += img[((size_t)(y + dy) * w + (x + dx)) * 3 + c];
                s += 4.0f * img[((size_t)y * w + x) * 3 + c]; /* centre weight 5 */
                scratch[((size_t)y * w + x) * 3 + c] = s / 13.0f;
            }
    for (size_t i = 0; i < n; i++) img[i] = clamp01(scratch[i] + factor * (img[i] - scratch[i]));
}

static void rgb2hsv(const float *p, float *hh, float *ss, float *vv) {
    float r = p[0], g = p[1], b = p[2];
    float mx = fmaxf(r, fmaxf(g, b)), mn = fminf(r, fminf(g, b)), d = mx - mn;
    float hue = 0;
    if (d > 0) {
        if (mx == r) hue = 60.0f * fmodf((g - b) / d, 6.0f);
        else if (mx == g) hue = 60.0f * ((b - r) / d + 2.0f);
        else hue = 60.0f * ((r - g) / d + 4.0f);
    }
    if (hue < 0) hue += 360.0f;
    *hh = hue;
    *ss = mx > 0 ? d / mx : 0;
    *vv = mx;
}

static void hsv2rgb(float hue, float s, float v, float *p) {
    float c = v * s, hp = hue / 60.0f;
    float x = c * (1.0f - fabsf(fmodf(hp, 2.0f) - 1.0f)), m = v - c;
    float r = 0, g = 0, b = 0;
    int sector = (int)hp;
    switch (sector) {
    case 0: r = c; g = x; break;
    case 1: r = x; g = c; break;
    case 2: g = c; b = x; break;
    case 3: g = x; b = c; break;
    case 4: r = x; b = c; break;
    default: r = c; b = x; break;
    }
    p[0] = clamp01(r + m);
    p[1] = clamp01(g + m);
    p[2] = clamp01(b + m);
}

void dd_aug_hue_sat(float *img, int h, int w, float dhue_deg, float dsat) {
    size_t n = (size_t)h * w;
    for (size_t i = 0; i < n; i++) {
        float hue, s, v;
        rgb2hsv(img + i * 3, &hue, &s, &v);
        hue = fmodf(hue + dhue_deg, 360.0f);
        if (hue < 0) hue += 360.0f;
        if (hue >= 360.0f) hue = 0;
        hsv2rgb(hue, clamp01(s + dsat), v, img + i * 3);
    }
}

void dd_aug_solarize(float *img, int h, int w, float threshold) {
    size_t n = (size_t)h * w * 3;
    for (size_t i = 0; i < n; i++) {
        int q = q8(img[i]);
        img[i] = (float)((float)q >= threshold ? 255 - q : q) / 255.0f;
    }
}

void dd_aug_posterize(float *img, int h, int w, int bits) {
    if (bits < 1) bits = 1;
    if (bits > 8) bits = 8;
    int keep = ~((1 << (8 - bits)) - 1) & 0xFF;
    size_t n = (size_t)h * w * 3;
    for (size_t i = 0; i < n; i++) img[i] = (float)(q8(img[i]) & keep) / 255.0f;
}

void dd_aug_invert(float *img, int h, int w) {
    size_t n = (size_t)h * w * 3;
    for (size_t i = 0; i < n; i++) img[i] = 1.0f - clamp01(img[i]);
}

static void hist_channel(const float *img, size_t n, int c, long hist[256]) {
    memset(hist, 0, 256 * sizeof(long));
    for (size_t i = 0; i < n; i++) hist[q8(img[i * 3 + c])]++;
}

static void apply_lut(float *img, size_t n, int c, const int lut[256]) {
    for (size_t i = 0; i < n; i++) img[i * 3 + c] = (float)lut[q8(img[i * 3 + c])] / 255.0f;
}

/* PIL ImageOps.autocontrast(image, cutoff) per band. */
void dd_aug_autocontrast(float *img, int h, int w, int cutoff_pct) {
    size_t n = (size_t)h * w;
    for (int c = 0; c < 3; c++) {
        long hist[256];
        hist_channel(img, n, c, hist);
        if (cutoff_pct > 0) {
            long total = 0;
            for (int i = 0; i < 256; i++) total += hist[i];
            long cut = total * cutoff_pct / 100;
            for (int lo = 0; lo < 256 && cut > 0; lo++) {
                if (cut > hist[lo]) { cut -= hist[lo]; hist[lo] = 0; }
                else { hist[lo] -= cut; cut = 0; }
            }
            cut = total * cutoff_pct / 100;
            for (int hi = 255; hi >= 0 && cut > 0; hi--) {
                if (cut > hist[hi]) { cut -= hist[hi]; hist[hi] = 0; }
                else { hist[hi] -= cut; cut = 0; }
            }
        }
        int lo = 0, hi = 255;
        while (lo < 256 && !hist[lo]) lo++;
        while (hi >= 0 && !hist[hi]) hi--;
        int lut[256];
        if (hi <= lo) {
            for (int i = 0; i < 256; i++) lut[i] = i;
        } else {
            double scale = 255.0 / (hi - lo), offset = -lo * scale;
            for (int i = 0; i < 256; i++) {
                int v = (int)(i * scale + offset);
                lut[i] = v < 0 ? 0 : (v > 255 ? 255 : v);
            }
        }
        apply_lut(img, n, c, lut);
    }
}

/* PIL ImageOps.equalize per band. */
void dd_aug_equalize(float *img, int h, int w) {
    size_t n = (size_t)h * w;
    for (int c = 0; c < 3; c++) {
        long hist[256];
        hist_channel(img, n, c, hist);
        long total = 0, last = 0;
        int nonzero = 0;
        for (int i = 0; i < 256; i++)
            if (hist[i]) {
                total += hist[i];
                last = hist[i];
                nonzero++;
            }
        if (nonzero <= 1) continue;
        long step = (total - last) / 255;
        if (!step) continue;
        int lut[256];
        long acc = step / 2;
        for (int i = 0; i < 256; i++) {
            long v = acc / step;
            lut[i] = v > 255 ? 255 : (int)v;
            acc += hist[i];
        }
        apply_lut(img, n, c, lut);
    }
}

void dd_aug_rotate(float *img, int h, int w, float deg, float *scratch) {
    size_t n = (size_t)h * w * 3;
    memcpy(scratch, img, n * sizeof(float));
    double th = deg * M_PI / 180.0, c = cos(th), s = sin(th);
    double cy = (h - 1) * 0.5, cx = (w - 1) * 0.5;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double dy = y - cy, dx = x - cx;
            /* inverse map: rotating the image by +deg reads the source at -deg */
            double sy = cy + c * dy - s * dx, sx = cx + s * dy + c * dx;
            float *o = img + ((size_t)y * w + x) * 3;
            int y0 = (int)floor(sy), x0 = (int)floor(sx);
            float fy = (float)(sy - y0), fx = (float)(sx - x0);
            float acc[3] = {0, 0, 0};
            for (int k = 0; k < 4; k++) { /* bilinear, zero outside */
                int yy = y0 + (k >> 1), xx = x0 + (k & 1);
                if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                float wt = ((k >> 1) ? fy : 1 - fy) * ((k & 1) ? fx : 1 - fx);
                const float *p = scratch + ((size_t)yy * w + xx) * 3;
                for (int ch = 0; ch < 3; ch++) acc[ch] += wt * p[ch];
            }
            for (int ch = 0; ch < 3; ch++) o[ch] = clamp01(acc[ch]);
        }
}

void dd_aug_random(float *img, int h, int w, int kind, dd_rng *r, float *scratch) {
    switch (kind) {
    case DD_AUG_GAMMA: {
        float g[3];
        for (int c = 0; c < 3; c++) g[c] = dd_rng_range(r, 0.5f, 2.0f);
        dd_aug_gamma(img, h, w, g);
        break;
    }
    case DD_AUG_BRIGHTNESS: {
        float mul = dd_rng_range(r, 0.8f, 1.2f);
        float add = (float)dd_rng_int(r, -30, 30) / 255.0f;
        dd_aug_brightness(img, h, w, mul, add);
        break;
    }
    case DD_AUG_SHARPNESS: dd_aug_sharpness(img, h, w, dd_rng_range(r, 0.0f, 2.0f), scratch); break;
    case DD_AUG_HUESAT: {
        /* imgaug maps hue values in [-255, 255] onto the full circle. */
        float dh = (float)dd_rng_int(r, -50, 50) * (360.0f / 255.0f);
        float ds = (float)dd_rng_int(r, -50, 50) / 255.0f;
        dd_aug_hue_sat(img, h, w, dh, ds);
        break;
    }
    case DD_AUG_SOLARIZE: {
        float thr = dd_rng_range(r, 32.0f, 128.0f);
        if (dd_rng_uniform(r) < 0.5) dd_aug_solarize(img, h, w, thr);
        break;
    }
    case DD_AUG_POSTERIZE: dd_aug_posterize(img, h, w, (int)dd_rng_int(r, 1, 8)); break;
    case DD_AUG_INVERT: dd_aug_invert(img, h, w); break;
    case DD_AUG_AUTOCONTRAST: dd_aug_autocontrast(img, h, w, (int)dd_rng_int(r, 0, 20)); break;
    case DD_AUG_EQUALIZE: dd_aug_equalize(img, h, w); break;
    case DD_AUG_ROTATE: dd_aug_rotate(img, h, w, dd_rng_range(r, -45.0f, 45.0f), scratch); break;
    default: break;
    }
}

void dd_aug_pick3(float *img, int h, int w, dd_rng *r, float *scratch, int kinds[3]) {
    int k[DD_AUG_COUNT];
    for (int i = 0; i < DD_AUG_COUNT; i++) k[i] = i;
    for (int i = 0; i < 3; i++) { /* partial Fisher-Yates: 3 distinct, in drawn order */
        int j = (int)dd_rng_int(r, i, DD_AUG_COUNT - 1);
        int t = k[i];
        k[i] = k[j];
        k[j] = t;
    }
    for (int i = 0; i < 3; i++) {
        dd_aug_random(img, h, w, k[i], r, scratch);
        if (kinds) kinds[i] = k[i];
    }
}

static void shuffle_ints(int *v, int n, dd_rng *r) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)dd_rng_int(r, 0, i);
        int t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* New strip order: [shuffled evens | shuffled odds]. */
static void strip_order(int n, dd_rng *r, int *order) {
    int ev[64], od[64], ne = 0, no = 0;
    for (int i = 0; i < n; i++) {
        if (i % 2 == 0) ev[ne++] = i;
        else od[no++] = i;
    }
    shuffle_ints(ev, ne, r);
    shuffle_ints(od, no, r);
    for (int i = 0; i < ne; i++) order[i] = ev[i];
    for (int i = 0; i < no; i++) order[ne + i] = od[i];
}

void dd_strip_shuffle(float *img, int h, int w, int n, dd_rng *r, float *scratch) {
    if (n < 2) return;
    if (n > 64) n = 64;
    int order[64];
    size_t total = (size_t)h * w * 3;
    /* vertical strips: column ranges */
    int nv = n > w ? w : n;
    strip_order(nv, r, order);
    memcpy(scratch, img, total * sizeof(float));
    for (int y = 0; y < h; y++) {
        int dst = 0;
        for (int k = 0; k < nv; k++) {
            int s = order[k], x0 = (int)((long)s * w / nv), x1 = (int)((long)(s + 1) * w / nv);
            memcpy(img + ((size_t)y * w + dst) * 3, scratch + ((size_t)y * w + x0) * 3,
                   sizeof(float) * 3 * (size_t)(x1 - x0));
            dst += x1 - x0;
        }
    }
    /* horizontal strips: row ranges */
    int nh = n > h ? h : n;
    strip_order(nh, r, order);
    memcpy(scratch, img, total * sizeof(float));
    int dst = 0;
    size_t row = (size_t)w * 3;
    for (int k = 0; k < nh; k++) {
        int s = order[k], y0 = (int)((long)s * h / nh), y1 = (int)((long)(s + 1) * h / nh);
        memcpy(img + (size_t)dst * row, scratch + (size_t)y0 * row,
               sizeof(float) * row * (size_t)(y1 - y0));
        dst += y1 - y0;
    }
}
