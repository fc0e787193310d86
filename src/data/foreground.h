/* foreground.h — owns the estimate of an object's silhouette, used to keep
 * synthetic anomalies on the part (docs/method.md §7).
 *
 * The reference shipped masks from a salient-object network; users should not
 * need that. The estimate: per-pixel colour distance from the border colour
 * (median of the outermost pixels, where the background is for a centred
 * object), box-blurred, split by Otsu's threshold, cleaned by a morphological
 * opening and closing, holes filled. When the result covers under 1 % or
 * over 99 % of the image, the estimate is not trusted and the whole image is
 * foreground. User-supplied masks (dataset.h fg_path) take precedence over
 * this; see synth.h. */
#ifndef DD_FOREGROUND_H
#define DD_FOREGROUND_H

#include <stdint.h>

#include "core/status.h"

/* img: h x w x 3 in [0,1]; fg: h*w bytes out, 1 = object. Returns DD_OK or
 * DD_E_NOMEM / DD_E_INVALID. *fraction (optional) gets the covered share
 * before the whole-image fallback. */
int dd_foreground_estimate(const float *img, int h, int w, uint8_t *fg, float *fraction,
                           dd_error *err);

/* Otsu's threshold of values v[n] (in [lo, hi], 256 bins); exported for tests. */
float dd_otsu_threshold(const float *v, long n, float lo, float hi);

#endif
