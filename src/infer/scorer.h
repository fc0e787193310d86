/* scorer.h — owns the one path from an image to its anomaly score and map
 * (docs/method.md §11): the working scale, the tiles, the stitching, the image
 * score and the map at the input's own size. diffad_predict (src/api.c), the
 * threshold calibration (train/calibrate.c) and therefore `diffad test` and
 * `diffad predict` all score through it, so they agree bit for bit.
 *
 *   image [ih,iw,3] in [0,1]
 *     -> working image [wh,ww,3]: the model size when tile_scale == 0 (fit, the
 *        paper); else the image resized by tile_scale, each side at least the
 *        model side (a smaller image is stretched up to one tile)
 *     -> tiles of the model size [h,w,3] at positions dd_tile_positions gives
 *        (evenly spread, first and last at the edges, overlap >= tile_overlap),
 *        one inference each (batch 1, the same noise for every tile)
 *     -> stitched map [wh,ww]: sum_t win(y-ty) win(x-tx) map_t / sum_t win win,
 *        win a raised cosine floored at DD_TILE_WIN_FLOOR (tile borders, where
 *        the convolutions see padding, count least); one tile is copied as is
 *     -> smoothed, when the model's map_sigma > 0: a Gaussian of that sigma in working
 *        pixels (dd_gaussian_blur, edges mirrored) over the stitched map
 *     -> map [ih,iw] (and reconstruction [ih,iw,3], optional) resized back to
 *        the input size (dd_resize; a copy when the sizes agree)
 *     -> region of interest (the model's m->roi, model/roi.h), when it has one:
 *        resampled to [ih,iw] and to [wh,ww] (half-the-area rule), both maps set
 *        to 0 outside it (the input-size map is resized from the unmasked stitched
 *        map, so pixels just inside the ROI keep their values)
 *     -> score: mean of the top k of the (masked) stitched map, k = topk * wh*ww
 *        / (h*w) (the model's k scaled by the real area; k itself in fit mode).
 *        The ROI does not change k: defects keep their size whatever is ignored.
 * Everything downstream (regions, decision, calibration quantiles) reads these
 * maps, so the ROI is applied here once for predict, test, calibrate and the API.
 * An image at whose size the ROI covers no pixel is refused (DD_E_RANGE).
 *
 * Memory: buffers grow when a larger image first arrives and are kept (no
 * allocation per image after that); dd_scorer_bytes_for says in advance what an
 * image of a size needs, so a caller can refuse it under a budget. Per input
 * megapixel at scale 1: ~12 MB working image, 4 MB stitched map, 4 MB output
 * map, plus 24 MB with the reconstruction on, plus ~2 MB with an ROI, plus 4 MB
 * with map_sigma > 0. The resampled ROI is recomputed only when the input size changes. */
#ifndef DD_SCORER_H
#define DD_SCORER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "model/model.h"

#define DD_TILE_WIN_FLOOR 1e-3f
#define DD_TILE_MAX_PER_AXIS 4096

typedef struct dd_scorer_opts {
    uint64_t seed;    /* noise of the two denoiser passes (DD_PREDICT_SEED by default) */
    int want_recon;   /* 1: also stitch the reconstruction (3 floats per working pixel) */
    float overlap;    /* < 0: the model's tile_overlap */
} dd_scorer_opts;

void dd_scorer_opts_init(dd_scorer_opts *o);

typedef struct dd_score {
    double score;           /* top-k mean of the stitched map */
    long k;                 /* the k used */
    int h, w;               /* input size */
    const float *map;       /* [h,w] anomaly map at the input size, in [0,1] (scorer-owned) */
    const float *recon;     /* [h,w,3] reconstruction at the input size, or NULL when off */
    int work_h, work_w;     /* working size (the model size in fit mode) */
    const float *work_map;  /* [work_h,work_w] stitched map at the working size */
    int tiles_y, tiles_x;
    double ms_resample, ms_denoise, ms_segment, ms_stitch;
    const uint8_t *roi;      /* [h,w] the ROI at the input size (1 inspected, 0 ignored: map is 0
                                there), or NULL when the model has none (scorer-owned) */
    const uint8_t *work_roi; /* [work_h,work_w] the same at the working size, or NULL */
    long roi_pixels;         /* inspected pixels of roi (h*w without an ROI) */
} dd_score;

typedef struct dd_scorer dd_scorer;

/* m: an inference model of batch 1, owned by the caller and used by no one else
 * while the scorer runs. Draws the noise once from o->seed, and copies m's region of
 * interest (m->roi): a later change of m->roi does not reach this scorer. */
int dd_scorer_create(dd_model *m, const dd_scorer_opts *o, dd_scorer **out, dd_error *err);
void dd_scorer_free(dd_scorer *s);

/* Score one image (float RGB [ih,iw,3], values in [0,1]). The result's arrays stay
 * valid until the next call. */
int dd_scorer_run(dd_scorer *s, const float *rgb, int ih, int iw, dd_score *out, dd_error *err);

/* Working size of an ih x iw image under the model's tile_scale. */
void dd_scorer_work_size(const dd_model_config *c, int ih, int iw, int *wh, int *ww);
/* Start offsets of the tiles along an axis of length len (>= tile): n = 1 when
 * len == tile, else the fewest tiles with overlap >= `overlap` of a tile, spread
 * evenly (first at 0, last at len - tile). Returns n (0 on bad input or n > max). */
int dd_tile_positions(int len, int tile, float overlap, int *pos, int max);
/* Bytes the scorer's buffers hold now, and would hold after an ih x iw image. */
size_t dd_scorer_memory(const dd_scorer *s);
size_t dd_scorer_bytes_for(const dd_scorer *s, int ih, int iw);

#endif
