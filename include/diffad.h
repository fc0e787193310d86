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
 *     diffad_free(ctx);
 *
 * Every function returns DIFFAD_OK (0) or an error code; the message is in
 * diffad_error(ctx) (or in the caller's buffer for diffad_create). The library
 * never prints (use the log callback), never exits, and keeps no global state:
 * two contexts can run in two threads. All memory of a context is allocated by
 * diffad_create; predictions allocate nothing. */
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

typedef struct diffad_params {
    int threads;          /* compute threads; 0 = all cores */
    size_t memory_budget; /* bytes; 0 = no limit. diffad_create fails if the model needs more */
    uint64_t seed;        /* noise seed of the two denoiser passes (same seed, same result) */
    void (*log)(int level, const char *message, void *user); /* may be NULL */
    void *log_user;
    int skip_recon;       /* 1: no reconstruction in the result (saves 24 MB per input megapixel) */
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

typedef struct diffad_result {
    float score;          /* raw image score: mean of the top-k anomaly-map values */
    float normalized;     /* score mapped so that the threshold is 0.5 (0..1, clipped) */
    float threshold;      /* stored image threshold (0 if the model is not calibrated) */
    int is_ng;            /* score > threshold (0 if not calibrated) */
    int calibrated;
    int map_width, map_height;  /* the input image's own size */
    const float *map;     /* anomaly map [map_height * map_width] in [0,1] at the input size; owned by ctx */
    const float *recon;   /* reconstruction [map_height * map_width * 3] at the input size; NULL with
                             skip_recon; owned by ctx */
    float pixel_threshold;
    int work_width, work_height; /* the working size the networks saw: the model size when the
                             model fits whole images (tile_scale 0), else the image resized by
                             tile_scale and covered by tiles_x * tiles_y model-size tiles */
    int tiles_x, tiles_y;
    const float *work_map; /* anomaly map [work_height * work_width] at the working size; owned by ctx */
    double ms_preprocess, ms_denoise, ms_segment, ms_postprocess;
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
/* The stored image and pixel thresholds; returns 1 if the model is calibrated, else 0. */
DIFFAD_API int diffad_thresholds(const diffad_ctx *ctx, float *image_threshold, float *pixel_threshold);
DIFFAD_API void diffad_free(diffad_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
