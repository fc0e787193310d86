/* perlin.h — owns Perlin-noise anomaly masks (DRAEM / DiffusionAD, docs/method.md §7).
 *
 * Gradient noise on a res_y x res_x lattice spread over the image (periods
 * 2^a x 2^b cells, random unit gradients at the (res+1)^2 lattice points,
 * quintic fade, scaled by sqrt(2)), the same function as DRAEM's
 * rand_perlin_2d_np but evaluated at continuous positions, so any image size
 * works (DRAEM needs H, W divisible by the period) and the rotation is exact
 * instead of a resampled image. Positions that rotate in from outside the
 * image get noise 0, as imgaug's constant-fill rotation gives. */
#ifndef DD_PERLIN_H
#define DD_PERLIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"

/* Noise into out[h*w]: res_y x res_x cells (1..64 each), rotated by
 * angle_deg about the image centre. Gradients drawn from r. */
void dd_perlin_noise(float *out, int h, int w, int res_y, int res_x, float angle_deg,
                     dd_rng *r);

typedef struct dd_perlin_params {
    int scale_min, scale_max; /* a, b ~ U{scale_min..scale_max}; periods 2^a x 2^b (0, 5) */
    float threshold;          /* mask = noise > threshold (0.5) */
    float rotate_max_deg;     /* rotation ~ U(-max, max) (90) */
    int max_tries;            /* redraw until non-empty, at most this often (50) */
} dd_perlin_params;

void dd_perlin_params_init(dd_perlin_params *p);

/* Binary mask into mask[h*w] ({0,1} floats), restricted to fg (h*w bytes,
 * non-zero = allowed; NULL = everywhere). Every try redraws the periods,
 * rotation and gradients. Returns the number of mask pixels (0 when every
 * try came out empty); *tries (optional) gets the tries used. */
long dd_perlin_mask(float *mask, int h, int w, const uint8_t *fg, const dd_perlin_params *p,
                    dd_rng *r, int *tries);

/* The foreground rule every mask shape shares (Perlin blobs, strokes): mask[i] becomes 1
 * where mask[i] > threshold and fg allows it (fg NULL: everywhere), else 0. Returns the
 * number of mask pixels, 0 asking the caller to redraw. */
long dd_mask_binarise_fg(float *mask, size_t n, const uint8_t *fg, float threshold);

#endif
