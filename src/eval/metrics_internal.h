/* metrics_internal.h — owns the accumulator's layout, shared by metrics_acc.c (adding images),
 * metrics_compute.c (sorting, sweeping) and metrics_cc.c (region labelling). Not public.
 *
 * Pixel values are stored as "keys": the float's bits mapped so that unsigned order is numeric
 * order (negative floats are bit-flipped, others get the sign bit set; −0 is stored as +0). Equal
 * keys are equal floats, so ties survive exactly and radix sorting works on the keys. */
#ifndef DD_METRICS_INTERNAL_H
#define DD_METRICS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "eval/metrics.h"

/* Pixels of one defect type (segment 0 holds the good images). */
typedef struct dd_px_seg {
    char *name;
    long n_images;
    long n_unmasked; /* of these, images without pixel truth (dd_metrics_add_image_unmasked) */
    /* exact mode */
    uint32_t *neg;          /* keys of normal pixels */
    size_t n_neg, cap_neg;
    uint64_t *pos;          /* key << 32 | size of the pixel's ground-truth region */
    size_t n_pos, cap_pos;
    int sorted;
    /* histogram mode */
    uint64_t *hneg, *hpos;  /* counts per bin */
    double *hpro;           /* Σ 1/region size per bin */
    /* both modes */
    long long tot_neg, tot_pos;
    long n_regions;
} dd_px_seg;

struct dd_metrics {
    dd_metrics_params p;
    int mode;     /* DD_PIXEL_EXACT or DD_PIXEL_HISTOGRAM for new pixels */
    int has_maps; /* -1 until the first image, then 0 or 1 */
    /* images */
    double *score;
    unsigned char *label;
    int *seg_of;
    size_t n_img, cap_img;
    /* pixels, per defect type */
    dd_px_seg *seg;
    int n_seg, cap_seg;
    /* labelling scratch, reused across images */
    int32_t *cc_parent;
    uint32_t *cc_size;
    size_t cc_cap;
};

static inline uint32_t dd_key_of(float v) {
    union { float f; uint32_t u; } c;
    c.f = v == 0.0f ? 0.0f : v; /* −0 → +0 */
    return (c.u & 0x80000000u) ? ~c.u : (c.u | 0x80000000u);
}

static inline float dd_float_of(uint32_t k) {
    union { float f; uint32_t u; } c;
    c.u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    return c.f;
}

/* Histogram bin of a key: equal bins over [0,1], values outside clamped to the end bins. */
static inline int dd_bin_of(uint32_t key, int bins) {
    double v = dd_float_of(key);
    if (!(v > 0)) return 0;
    if (v >= 1) return bins - 1;
    int b = (int)(v * bins);
    return b < bins ? b : bins - 1;
}

/* Label the 8-connected components of mask > 0.5 (H×W). parent receives, for every pixel, the
 * index of its component's root pixel (−1 for normal pixels); size[root] the component size.
 * Returns the number of components. parent and size hold H·W entries. */
long dd_label_regions(const float *mask, int H, int W, int32_t *parent, uint32_t *size);

/* Sort keys ascending (LSD radix, 3 passes of 11 bits); tmp holds n entries. */
void dd_radix_sort_u32(uint32_t *a, uint32_t *tmp, size_t n);
/* Sort by the upper 32 bits ascending; tmp holds n entries. */
void dd_radix_sort_u64_hi(uint64_t *a, uint64_t *tmp, size_t n);

#endif
