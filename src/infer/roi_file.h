/* roi_file.h — owns reading a region of interest (model/roi.h) from an image file, the
 * `--roi FILE` of `diffad train` and `diffad calibrate`.
 *
 * Any image the decoder reads (PNG 8/16-bit, JPEG, BMP, PGM/PPM; grey, RGB or RGBA) defined
 * over the camera frame: a pixel whose grey or colour value is nonzero is inspected, a black
 * (0) pixel is ignored, so the usual "white = inspect, black = ignore" mask works as drawn;
 * an alpha channel is not looked at. Lossy JPEG can leave near-black noise that counts as
 * inspected: draw masks as PNG. The mask is kept at the file's own size; the scorer resamples
 * it to each image (roi.h's rule). */
#ifndef DD_ROI_FILE_H
#define DD_ROI_FILE_H

#include "core/status.h"
#include "model/roi.h"

/* Reads path into *out (replacing what was there; unchanged on failure). Refuses, with one
 * message naming the file, an unreadable or undecodable file (DD_E_IO / DD_E_FORMAT) and a
 * mask that ignores every pixel (DD_E_FORMAT). */
int dd_roi_load(const char *path, dd_roi *out, dd_error *err);

#endif
