/* stroke.h — owns thin-stroke anomaly masks: scratches, cuts, bridges and spots
 * (beyond the paper; docs/method.md §7).
 *
 * Perlin blobs (perlin.h) never give a long thin defect: a scratch on metal, an open
 * (a gap cut across a track) or a short (a bridge drawn between tracks) on a circuit
 * board. A stroke mask is 1 to 3 quadratic Bézier curves, each drawn with a round pen:
 *   length  L ~ log-uniform(2, 0.6 · min(h, w)) pixels (short strokes are spots and
 *           pin-holes, long ones scratches),
 *   pen radius ~ log-uniform(0.5, max(1, min(h, w) / 40)) pixels,
 *   direction ~ U(0, 2π), start anywhere in the image, the control point off the
 *           chord's middle by U(−0.5, 0.5) · L across it (straight to strongly bent).
 * The curve is stamped every half pixel; a pixel whose centre lies within the pen
 * radius of a stamped point is in the mask. */
#ifndef DD_STROKE_H
#define DD_STROKE_H

#include <stdint.h>

#include "core/rng.h"

/* Binary mask into mask[h*w] ({0,1} floats), restricted to fg (h*w bytes, non-zero =
 * allowed; NULL = everywhere). Redraws every stroke until the mask is non-empty, at
 * most max_tries times (>= 1). Returns the number of mask pixels (0 when every try
 * came out empty); *tries (optional) gets the tries used. */
long dd_stroke_mask(float *mask, int h, int w, const uint8_t *fg, int max_tries, dd_rng *r,
                    int *tries);

#endif
