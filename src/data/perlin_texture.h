/* perlin_texture.h — owns the built-in procedural anomaly sources.
 *
 * Used when no texture folder is given, so that training works out of the
 * box without the (research-only) DTD images. Each call draws one texture
 * from the generator: fractal Perlin noise, turbulent marble, rotated
 * stripes, a rotated checkerboard or scattered discs, coloured by two or
 * three random colours. Not DTD, but with the same role: unfamiliar
 * structure and colour to paste into good images. */
#ifndef DD_PERLIN_TEXTURE_H
#define DD_PERLIN_TEXTURE_H

#include "core/rng.h"

enum { DD_PTEX_FRACTAL, DD_PTEX_MARBLE, DD_PTEX_STRIPES, DD_PTEX_CHECKER, DD_PTEX_SPOTS,
       DD_PTEX_COUNT };

/* out: h x w x 3 in [0, 1]; scratch: h*w floats. Returns the kind drawn. */
int dd_procedural_texture(float *out, int h, int w, dd_rng *r, float *scratch);

#endif
