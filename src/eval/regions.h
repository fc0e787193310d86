/* regions.h — owns the 8-connected components of a map above a threshold: the one labelling
 * (dd_cc_label, which AUPRO's ground-truth regions also use through metrics_cc.c) and the
 * defect regions of an anomaly map (dd_regions_find): per region the bounding box, the area,
 * the peak and the mean map value, sorted by peak. The buffers live in a dd_regions and are
 * kept across maps: they grow only when a larger map first arrives, so finding the regions of
 * a map allocates nothing once its size has been seen. Deterministic (raster-order sums and a
 * total sort order). */
#ifndef DD_REGIONS_H
#define DD_REGIONS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Label the 8-connected components of v > thr (H x W; NaN counts as below). parent receives,
 * for every pixel, the index of its component's root (the component's first pixel in raster
 * order), or -1 for a pixel not above thr. Returns the number of components. parent holds
 * H*W entries; H*W must fit in int32_t. */
long dd_cc_label(const float *v, int H, int W, float thr, int32_t *parent);

/* One region, in map pixels. */
typedef struct dd_region {
    int x, y, w, h;   /* bounding box: top-left pixel, width and height */
    long area;        /* pixels in the region */
    float peak, mean; /* highest and mean map value over the region's pixels */
} dd_region;

typedef struct dd_region_acc dd_region_acc; /* per-component sums (regions.c) */

/* Buffers of dd_regions_find; zero-initialise, dd_regions_free when done. */
typedef struct dd_regions {
    int32_t *label;      /* [cap_px] */
    size_t cap_px;
    dd_region_acc *acc;  /* [cap_acc]: at most ceil(H/2) * ceil(W/2) components */
    size_t cap_acc;
} dd_regions;

/* Bytes the buffers hold now, and would hold after a map of H x W. */
size_t dd_regions_bytes(const dd_regions *r);
size_t dd_regions_bytes_for(const dd_regions *r, int H, int W);
/* Grow the buffers for an H x W map (nothing to do when they are large enough). */
int dd_regions_reserve(dd_regions *r, int H, int W, dd_error *err);

/* The regions of map > thr with area >= min_area (min_area <= 1: all), sorted by peak
 * descending (ties: the region whose first raster pixel comes first). The first
 * min(found, max_out) go to out; *found (may be NULL) gets how many there are in all.
 * Returns DD_OK, DD_E_INVALID for a bad argument, or DD_E_NOMEM when the buffers cannot grow. */
int dd_regions_find(dd_regions *r, const float *map, int H, int W, float thr, long min_area, dd_region *out,
                    int max_out, int *n_out, long *found, dd_error *err);

void dd_regions_free(dd_regions *r);

#endif
