/* roi.c — the region-of-interest mask: checks, copies and the half-the-area resampling
 * (see roi.h). */
#include "model/roi.h"

#include <stdlib.h>
#include <string.h>

int dd_roi_check(const uint8_t *mask, int h, int w, const char *what, dd_error *err) {
    if (h < 1 || w < 1 || h > DD_ROI_MAX_SIDE || w > DD_ROI_MAX_SIDE || (long)h * w > DD_ROI_MAX_PIXELS)
        return dd_fail(err, DD_E_RANGE, "%s: region of interest of %dx%d pixels (each side 1..%d, at most %ld pixels)",
                       what, w, h, DD_ROI_MAX_SIDE, DD_ROI_MAX_PIXELS);
    if (!mask) return dd_fail(err, DD_E_INVALID, "%s: region of interest without a mask", what);
    size_t n = (size_t)h * w, ones = 0;
    for (size_t i = 0; i < n; i++) {
        if (mask[i] > 1)
            return dd_fail(err, DD_E_FORMAT, "%s: region of interest value %u at (%zu,%zu): only 0 (ignored) and 1 "
                           "(inspected) are allowed", what, mask[i], i % (size_t)w, i / (size_t)w);
        ones += mask[i];
    }
    if (!ones)
        return dd_fail(err, DD_E_FORMAT, "%s: the region of interest ignores every pixel (nothing would be inspected)",
                       what);
    return DD_OK;
}

int dd_roi_set(dd_roi *dst, const uint8_t *mask, int h, int w, const char *what, dd_error *err) {
    int rc = dd_roi_check(mask, h, w, what, err);
    if (rc) return rc;
    size_t n = (size_t)h * w;
    uint8_t *p = malloc(n);
    if (!p) return dd_fail(err, DD_E_NOMEM, "%s: out of memory for a %dx%d region of interest", what, w, h);
    memcpy(p, mask, n);
    long ones = 0;
    for (size_t i = 0; i < n; i++) ones += p[i];
    dd_roi_free(dst);
    dst->mask = p, dst->h = h, dst->w = w, dst->inspected = ones;
    return DD_OK;
}

int dd_roi_copy(dd_roi *dst, const dd_roi *src, dd_error *err) {
    if (dst == src) return DD_OK;
    if (!src || !src->mask) {
        dd_roi_free(dst);
        return DD_OK;
    }
    return dd_roi_set(dst, src->mask, src->h, src->w, "region of interest", err);
}

void dd_roi_free(dd_roi *r) {
    if (!r) return;
    free(r->mask);
    memset(r, 0, sizeof *r);
}

int dd_roi_equal(const dd_roi *a, const dd_roi *b) {
    int ha = a && a->mask, hb = b && b->mask;
    if (!ha || !hb) return ha == hb;
    return a->h == b->h && a->w == b->w && !memcmp(a->mask, b->mask, (size_t)a->h * a->w);
}

/* Along one axis, in units where a source pixel has length n_out and an output pixel n_in
 * (both spans then total n_in * n_out): the source pixels output pixel o overlaps, [*i0, *i1). */
static void span_of(long o, long n_in, long n_out, long *i0, long *i1) {
    *i0 = o * n_in / n_out;
    *i1 = ((o + 1) * n_in + n_out - 1) / n_out;
    if (*i1 > n_in) *i1 = n_in;
}

static uint64_t overlap(long o, long i, long n_in, long n_out) {
    long a = o * n_in > i * n_out ? o * n_in : i * n_out;
    long b = (o + 1) * n_in < (i + 1) * n_out ? (o + 1) * n_in : (i + 1) * n_out;
    return b > a ? (uint64_t)(b - a) : 0;
}

long dd_roi_resample(const dd_roi *r, int h, int w, uint8_t *dst, uint64_t *acc) {
    if (!r || !r->mask || h < 1 || w < 1 || !dst || !acc) return -1;
    const long H = r->h, W = r->w;
    /* an output pixel's rectangle has area H * W in these units: inspected when the
     * inspected part, sum of overlap_y * overlap_x over its ones, is at least half of it */
    const uint64_t whole = (uint64_t)H * (uint64_t)W;
    long count = 0;
    for (long oy = 0; oy < h; oy++) {
        long y0, y1;
        span_of(oy, H, h, &y0, &y1);
        memset(acc, 0, (size_t)w * sizeof *acc);
        for (long iy = y0; iy < y1; iy++) {
            uint64_t wy = overlap(oy, iy, H, h);
            if (!wy) continue;
            const uint8_t *row = r->mask + (size_t)iy * W;
            for (long ox = 0; ox < w; ox++) {
                long x0, x1;
                span_of(ox, W, w, &x0, &x1);
                uint64_t sx = 0;
                for (long ix = x0; ix < x1; ix++)
                    if (row[ix]) sx += overlap(ox, ix, W, w);
                acc[ox] += wy * sx;
            }
        }
        uint8_t *out = dst + (size_t)oy * w;
        for (long ox = 0; ox < w; ox++) {
            out[ox] = 2 * acc[ox] >= whole;
            count += out[ox];
        }
    }
    return count;
}

long dd_roi_count_at(const dd_roi *r, int h, int w) {
    if (!r || !r->mask || h < 1 || w < 1) return -1;
    uint8_t *dst = malloc((size_t)h * w);
    uint64_t *acc = malloc((size_t)w * sizeof *acc);
    long n = dst && acc ? dd_roi_resample(r, h, w, dst, acc) : -1;
    free(dst);
    free(acc);
    return n;
}
