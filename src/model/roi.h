/* roi.h — owns the region of interest (ROI) of a model: a binary mask over the camera frame
 * that says which pixels are inspected (1) and which are ignored (0: labels, serial numbers,
 * fixtures). The model file stores it losslessly as the U8 tensor "roi.mask" [h, w] at its
 * own resolution (docs/model-file.md); the scorer (infer/scorer.h) resamples it to each
 * image's size and to the working size and zeroes the anomaly map outside it, so the image
 * score, the regions, the decision and the calibration never see the ignored pixels.
 *
 * Resampling rule ("half the area"): an output pixel of an h x w grid covers the rectangle
 * [y*H/h, (y+1)*H/h) x [x*W/w, (x+1)*W/w) of the stored H x W mask; it is inspected when at
 * least half of that rectangle's area is inspected. Computed exactly in integers (no
 * rounding, no ties decided by floating point), so upsampling by an integer factor
 * replicates pixels and an unchanged size copies the mask.
 *
 * Loading an ROI from an image file needs the image decoder and lives in infer/roi_file.h. */
#ifndef DD_ROI_H
#define DD_ROI_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define DD_ROI_MAX_SIDE 65536                 /* each side 1..DD_ROI_MAX_SIDE */
#define DD_ROI_MAX_PIXELS (64L * 1024 * 1024) /* h * w at most: the image decoder's default cap */
#define DD_ROI_TENSOR "roi.mask"              /* its name in the model file */

typedef struct dd_roi {
    int h, w;       /* stored size; 0 x 0 when there is no ROI */
    uint8_t *mask;  /* [h*w] row major, 1 inspected, 0 ignored; NULL: no ROI (all inspected) */
    long inspected; /* pixels of mask that are 1 (>= 1) */
} dd_roi;

/* Checks an h x w mask: sides in range, every value 0 or 1, at least one 1. DD_E_RANGE for the
 * size, DD_E_FORMAT for the values, the message starting with `what` (e.g. the file). */
int dd_roi_check(const uint8_t *mask, int h, int w, const char *what, dd_error *err);
/* dst = a checked copy of mask (any previous ROI of dst is freed; on failure dst is unchanged). */
int dd_roi_set(dd_roi *dst, const uint8_t *mask, int h, int w, const char *what, dd_error *err);
/* dst = a copy of src (src without a mask: dst is cleared). On failure dst is unchanged. */
int dd_roi_copy(dd_roi *dst, const dd_roi *src, dd_error *err);
/* Frees the mask; the ROI is then "none". */
void dd_roi_free(dd_roi *r);
/* 1 when both are absent, or both present with the same size and bits. */
int dd_roi_equal(const dd_roi *a, const dd_roi *b);

/* The ROI resampled to h x w by the half-the-area rule above, into dst [h*w] (0/1); acc is
 * scratch of w entries. Returns the number of inspected pixels of dst (0: the ROI covers no
 * pixel at that size), or -1 for a bad argument (no mask, h or w < 1). */
long dd_roi_resample(const dd_roi *r, int h, int w, uint8_t *dst, uint64_t *acc);
/* Inspected pixels of the ROI at h x w (allocates its own scratch; for checks, not the hot
 * path). -1: bad argument or out of memory. */
long dd_roi_count_at(const dd_roi *r, int h, int w);

#endif
