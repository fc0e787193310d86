/* augment.h — owns the augmentations applied to anomaly sources (docs/method.md §7)
 * and the strip-shuffling self-augmentation.
 *
 * Images are float H x W x 3 channels-last in [0, 1], changed in place. The
 * ten operations follow DRAEM's imgaug list; the ones defined on 8-bit
 * histograms (solarize, posterize, autocontrast, equalize) quantise to
 * k/255 first and reproduce PIL's lookup tables exactly, so they can be
 * checked against hand-computed values. `scratch` arguments need h*w*3
 * floats; passing them keeps the hot path free of allocations. */
#ifndef DD_AUGMENT_H
#define DD_AUGMENT_H

#include "core/rng.h"

enum {
    DD_AUG_GAMMA,        /* per-channel gamma, each ~ U(0.5, 2): v^g */
    DD_AUG_BRIGHTNESS,   /* luma * U(0.8, 1.2) + U(-30, 30)/255, chroma kept */
    DD_AUG_SHARPNESS,    /* PIL EnhanceSharpness, factor ~ U(0, 2) */
    DD_AUG_HUESAT,       /* hue and saturation each + U(-50, 50) (imgaug units) */
    DD_AUG_SOLARIZE,     /* p 0.5: invert values >= U(32, 128)/255 */
    DD_AUG_POSTERIZE,    /* keep U{1..8} high bits (PIL) */
    DD_AUG_INVERT,       /* 1 - v */
    DD_AUG_AUTOCONTRAST, /* PIL autocontrast, cutoff ~ U{0..20} % */
    DD_AUG_EQUALIZE,     /* PIL histogram equalisation, per channel */
    DD_AUG_ROTATE,       /* rotation ~ U(-45, 45) deg, bilinear, black fill */
    DD_AUG_COUNT
};

const char *dd_aug_name(int kind);

/* The operations with explicit parameters. */
void dd_aug_gamma(float *img, int h, int w, const float gamma[3]);
/* Y = .299 R + .587 G + .114 B; every channel += Y*(mul-1) + add; clamp. */
void dd_aug_brightness(float *img, int h, int w, float mul, float add);
/* PIL: blend with the SMOOTH-filtered image ([1 1 1; 1 5 1; 1 1 1]/13, border
 * pixels unfiltered): out = smooth + factor * (img - smooth), clamped. */
void dd_aug_sharpness(float *img, int h, int w, float factor, float *scratch);
/* Hue += dhue_deg (degrees), saturation += dsat (in [0,1] units), in HSV. */
void dd_aug_hue_sat(float *img, int h, int w, float dhue_deg, float dsat);
/* Quantise to 8 bits; values q >= threshold (in 0..255 units) -> 255 - q. */
void dd_aug_solarize(float *img, int h, int w, float threshold);
void dd_aug_posterize(float *img, int h, int w, int bits);
void dd_aug_invert(float *img, int h, int w);
void dd_aug_autocontrast(float *img, int h, int w, int cutoff_pct);
void dd_aug_equalize(float *img, int h, int w);
/* Rotate about the image centre by deg (clockwise on screen, y pointing down). */
void dd_aug_rotate(float *img, int h, int w, float deg, float *scratch);

/* Draw the parameters of `kind` from r (ranges above) and apply it. */
void dd_aug_random(float *img, int h, int w, int kind, dd_rng *r, float *scratch);

/* Three distinct operations drawn from the ten, applied in the drawn order;
 * kinds (optional) receives them. */
void dd_aug_pick3(float *img, int h, int w, dd_rng *r, float *scratch, int kinds[3]);

/* Self-augmentation: cut into n vertical strips (n = 8 in the method), shuffle
 * the even-indexed and the odd-indexed strips separately and concatenate
 * [evens | odds]; then the same with n horizontal strips. Strip boundaries
 * are floor(i*W/n), so any size works. */
void dd_strip_shuffle(float *img, int h, int w, int n, dd_rng *r, float *scratch);

#endif
