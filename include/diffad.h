/* diffad.h — the public C API of diffad (DiffusionAD anomaly detection).
 *
 * Typical use:
 *     diffad_params p;
 *     diffad_params_init(&p);
 *     p.threads = 2;
 *     diffad_ctx *ctx;
 *     char msg[512];
 *     if (diffad_create("model.safetensors", &p, &ctx, msg, sizeof msg)) { puts(msg); ... }
 *     diffad_image img = {pixels, width, height, 3, width * 3, DIFFAD_U8};
 *     diffad_result r;
 *     if (diffad_predict(ctx, &img, &r)) puts(diffad_error(ctx));
 *     else printf("score %.4f %s\n", r.score, r.is_ng ? "NG" : "OK");
 *     for (int i = 0; i < r.n_regions; i++)   (defect regions, calibrated models)
 *         printf("  box %d,%d %dx%d area %ld\n", r.regions[i].x, r.regions[i].y,
 *                r.regions[i].width, r.regions[i].height, r.regions[i].area);
 *     diffad_free(ctx);
 *
 * A model with a region of interest (diffad_roi) returns maps that are 0 where it
 * ignores the image; nothing else changes for the caller.
 *
 * Every function returns DIFFAD_OK (0) or an error code; the message is in
 * diffad_error(ctx) (or in the caller's buffer for diffad_create). The library
 * never prints (use the log callback), never exits, and keeps no global state:
 * two contexts can run in two threads. All memory of a context is allocated by
 * diffad_create; predictions allocate nothing.
 *
 * Signals: your program's signal handlers keep working, but none runs on a thread
 * while it is inside oneDNN (whose GEMM kernels would let a handler's frame overwrite
 * the heap, oneDNN issue #4845): the calling thread holds asynchronous signals for the
 * length of each oneDNN call (they arrive right after it), and the OpenMP worker
 * threads diffad computes with block them for good. */
#ifndef DIFFAD_H
#define DIFFAD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DIFFAD_VERSION "0.1.0"

/* Marks the functions the shared library exports. The library is compiled with
 * -fvisibility=hidden, so libdiffad.so exports these diffad_* functions and
 * nothing else (scripts/check_exports.sh checks it). A host may predefine it. */
#ifndef DIFFAD_API
#if defined(__GNUC__) && __GNUC__ >= 4
#define DIFFAD_API __attribute__((visibility("default")))
#else
#define DIFFAD_API
#endif
#endif

enum {
    DIFFAD_OK = 0,
    DIFFAD_E_INVALID = 1, /* bad argument: NULL or too-small buffer, bad size */
    DIFFAD_E_NOMEM = 2,   /* allocation failed or over the memory budget */
    DIFFAD_E_IO = 3,      /* file could not be read */
    DIFFAD_E_FORMAT = 4,  /* model file malformed, truncated or for another version */
    DIFFAD_E_BACKEND = 5, /* oneDNN failure */
    DIFFAD_E_RANGE = 6    /* value out of range */
};

enum { DIFFAD_U8 = 0, DIFFAD_F32 = 1 }; /* pixel formats: 0..255 bytes or 0..1 floats */
enum { DIFFAD_LOG_ERROR = 0, DIFFAD_LOG_WARN = 1, DIFFAD_LOG_INFO = 2 };
/* Convolution arithmetic (diffad_params.precision): the model file's setting (new models:
 * auto), auto (bf16 where the CPU has AVX512-BF16, else f32), f32, or bf16 (diffad_create
 * fails on a CPU without the instructions). Scores in bf16 differ from f32 by about 1e-3
 * (docs/method.md §12). */
enum { DIFFAD_PRECISION_MODEL = 0, DIFFAD_PRECISION_AUTO = 1, DIFFAD_PRECISION_F32 = 2,
       DIFFAD_PRECISION_BF16 = 3 };

typedef struct diffad_params {
    int threads;          /* compute threads; 0 = all cores */
    size_t memory_budget; /* bytes; 0 = no limit. diffad_create fails if the model needs more */
    uint64_t seed;        /* noise seed of the two denoiser passes (same seed, same result) */
    void (*log)(int level, const char *message, void *user); /* may be NULL */
    void *log_user;
    int skip_recon;       /* 1: no reconstruction in the result (saves 24 MB per input megapixel) */
    int precision;        /* DIFFAD_PRECISION_*; 0 = the model file's setting */
} diffad_params;

/* The caller's pixels, checked by diffad_predict before anything is read:
 * - width and height 1..65536, at most 2^28 pixels; channels 1 or 3;
 * - stride: bytes from one row to the next, >= width * channels * sample size and
 *   <= DIFFAD_MAX_STRIDE (and (height-1) * stride + row must be addressable);
 *   rows are read only inside [data, data + (height-1) * stride + row);
 * - DIFFAD_F32: data and stride need not be 4-byte aligned (samples are copied
 *   byte-wise, never loaded through a misaligned float pointer); values are 0..1;
 *   values in the tolerance [DIFFAD_F32_MIN, DIFFAD_F32_MAX] are used as given,
 *   values outside it are refused with DIFFAD_E_RANGE and a message naming the
 *   pixel (x,y) and channel; NaN and infinities with DIFFAD_E_INVALID. */
#define DIFFAD_MAX_STRIDE ((size_t)1 << 31)
#define DIFFAD_F32_MIN (-1.0f)
#define DIFFAD_F32_MAX 2.0f

typedef struct diffad_image {
    const void *data;     /* top-left pixel */
    int width, height;
    int channels;         /* 1 (grey) or 3 (RGB, interleaved) */
    size_t stride;        /* bytes from one row to the next (see above) */
    int format;           /* DIFFAD_U8 or DIFFAD_F32 */
} diffad_image;

/* A defect region: one 8-connected group of anomaly-map pixels above the model's calibrated
 * pixel threshold (map > pixel_threshold, the pixels of predict --save-mask), in the input
 * image's own pixels. */
typedef struct diffad_region {
    int x, y, width, height; /* bounding box: top-left pixel (x right, y down) and size */
    long area;               /* pixels in the region itself (not its box) */
    float area_mm2;          /* area * mm_per_pixel^2; 0 when mm_per_pixel is 0 (unknown) */
    float peak, mean;        /* highest and mean map value over the region's pixels */
} diffad_region;

/* How regions are reported and decided. A model file stores them (model keys min_area,
 * max_regions, mm_per_pixel, docs/model-file.md); diffad_create takes the stored values and
 * diffad_set_region_params overrides them for one context. */
typedef struct diffad_region_params {
    long min_area;      /* 0..DIFFAD_MAX_AREA pixels at the input size. 0 (default): every region
                           counts and the decision is the score's alone. > 0: smaller regions
                           (specks) are ignored — not reported, not counted — and an image is NG
                           only if its score is over the threshold AND it has at least one
                           region of min_area pixels or more */
    int max_regions;    /* 0..DIFFAD_MAX_REGIONS regions reported per image, highest peak first
                           (default 16); a reporting limit only, the decision sees every region */
    float mm_per_pixel; /* 0..DIFFAD_MAX_MM_PER_PIXEL: the input pixel's size in mm; > 0 fills
                           area_mm2 (default 0: unknown) */
    float review_lo, review_hi; /* the three-way decision's band in raw image-score units: a
                           calibrated image scoring in (review_lo, review_hi] is
                           DIFFAD_PART_REVIEW (a person decides), whatever the two-way rule says;
                           outside it the two-way rule decides. review_lo == review_hi: no band
                           (OK / NG only). Finite, review_lo <= review_hi. Default: the model's
                           review_lo / review_hi (set at calibration with `review`, else 0) */
} diffad_region_params;

/* The decision about one part (diffad_result.decision). */
enum { DIFFAD_PART_OK = 0, DIFFAD_PART_NG = 1, DIFFAD_PART_REVIEW = 2, DIFFAD_PART_UNCALIBRATED = 3 };

#define DIFFAD_MAX_AREA (1L << 28)
#define DIFFAD_MAX_REGIONS 1024
#define DIFFAD_MAX_MM_PER_PIXEL 1000.0f

typedef struct diffad_result {
    float score;          /* raw image score: mean of the top-k anomaly-map values */
    float normalized;     /* score mapped so that the threshold is 0.5 (0..1, clipped) */
    float threshold;      /* stored image threshold (0 if the model is not calibrated) */
    int is_ng;            /* decision == DIFFAD_PART_NG: score > threshold and, when min_area > 0,
                             regions_found > 0, and the score not inside the review band
                             (0 if not calibrated); see diffad_region_params */
    int calibrated;
    int map_width, map_height;  /* the input image's own size */
    const float *map;     /* anomaly map [map_height * map_width] in [0,1] at the input size (0 outside
                             the model's region of interest, see diffad_roi); owned by ctx */
    const float *recon;   /* reconstruction [map_height * map_width * 3] at the input size; NULL with
                             skip_recon; owned by ctx */
    float pixel_threshold;
    int work_width, work_height; /* the working size the networks saw: the model size when the
                             model fits whole images (tile_scale 0), else the image resized by
                             tile_scale and covered by tiles_x * tiles_y model-size tiles */
    int tiles_x, tiles_y;
    const float *work_map; /* anomaly map [work_height * work_width] at the working size; owned by ctx */
    double ms_preprocess, ms_denoise, ms_segment, ms_postprocess;
    /* Defect regions (calibrated models only; 0 and NULL otherwise): the regions of at least
     * min_area pixels, sorted by peak descending (ties: the one whose first pixel in raster
     * order comes first), at most max_regions of them. The array is owned by ctx and valid
     * until the next call on it. regions_found counts them all (n_regions = min(regions_found,
     * max_regions)). The time to find them is part of ms_postprocess. */
    int n_regions;
    const diffad_region *regions;
    long regions_found;
    int decision;         /* DIFFAD_PART_*: OK, NG (is_ng), REVIEW (the score is inside the review
                             band, see diffad_region_params) or UNCALIBRATED */
} diffad_result;

typedef struct diffad_ctx diffad_ctx;

DIFFAD_API void diffad_params_init(diffad_params *p);
/* Load a model file and allocate everything for prediction. On failure *out is
 * NULL and the message is written to errbuf (may be NULL). */
DIFFAD_API int diffad_create(const char *model_path, const diffad_params *p, diffad_ctx **out,
                             char *errbuf, size_t errlen);
/* Score one image of any size: resized to the model size (tile_scale 0), or
 * resized by the model's tile_scale and tiled; the map comes back at the
 * image's own size. The result's arrays stay valid until the next call on this
 * context. Buffers grow when a larger image first arrives (within memory_budget). */
DIFFAD_API int diffad_predict(diffad_ctx *ctx, const diffad_image *img, diffad_result *res);
DIFFAD_API const char *diffad_error(const diffad_ctx *ctx);
/* Model size and the bytes this context holds. */
DIFFAD_API void diffad_model_size(const diffad_ctx *ctx, int *height, int *width);
DIFFAD_API size_t diffad_memory(const diffad_ctx *ctx);
/* The convolution arithmetic this context runs: "f32" or "bf16". */
DIFFAD_API const char *diffad_precision(const diffad_ctx *ctx);
/* The stored image and pixel thresholds; returns 1 if the model is calibrated, else 0. */
DIFFAD_API int diffad_thresholds(const diffad_ctx *ctx, float *image_threshold, float *pixel_threshold);
/* Region of interest: a mask stored in the model file (diffad train --roi, diffad calibrate
 * --roi) over the camera frame, resized to each image (a pixel is inspected when at least half
 * of its area is). Outside it the anomaly map is 0 (map and work_map), so the score, the
 * regions, the decision and the calibration ignore those pixels. diffad_roi returns 1 and the
 * stored mask's size when the model has one, else 0 (and 0 x 0). */
DIFFAD_API int diffad_roi(const diffad_ctx *ctx, int *width, int *height);
/* The region of interest at the size of the last successful diffad_predict's map (map_width *
 * map_height bytes, row major, 1 inspected, 0 ignored); NULL when the model has none or no
 * prediction succeeded. Owned by ctx, valid until the next call on it. */
DIFFAD_API const unsigned char *diffad_roi_mask(const diffad_ctx *ctx);
/* The region of interest resampled to any width x height by the same rule (e.g. for a picture
 * at a display size) into dst (width * height bytes, row major, 1 inspected, 0 ignored).
 * Returns 1 when filled, 0 when the model has no region of interest (dst untouched), or
 * DIFFAD_E_INVALID for a NULL ctx or dst or a size below 1 or above 65535. */
DIFFAD_API int diffad_roi_mask_at(const diffad_ctx *ctx, int width, int height, unsigned char *dst);
/* The context's region settings: the model file's, unless set below. */
DIFFAD_API int diffad_get_region_params(const diffad_ctx *ctx, diffad_region_params *rp);
/* Override the region settings for this context's next predictions (read them with
 * diffad_get_region_params, change what you need, set them back). A value out of range (a
 * negative min_area, a NaN or negative mm_per_pixel, ...) is refused with DIFFAD_E_RANGE and a
 * message naming the key; the settings are then unchanged. */
DIFFAD_API int diffad_set_region_params(diffad_ctx *ctx, const diffad_region_params *rp);
/* The good-image scores the model was calibrated on (ascending; at most 4096 evenly spaced
 * order statistics of them), for drift checks: *scores points into ctx, *n_images is how many
 * images they stand for. Returns the number of values, 0 when the file keeps none (models
 * calibrated before 2026-11-30, uncalibrated models). */
DIFFAD_API int diffad_calibration_scores(const diffad_ctx *ctx, const float **scores, int *n_images);
DIFFAD_API void diffad_free(diffad_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
