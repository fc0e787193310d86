/* image.h — owns image I/O and resampling for the whole library.
 *
 * In memory an image is float, channels-last (H x W x C interleaved, row
 * major), values in [0, 1]. Colour images are always 3 channels: grayscale
 * is replicated, an alpha channel is dropped (industrial images carry no
 * meaningful transparency). Masks and maps are 1 channel.
 *
 * Reading goes through stb_image with two guards for untrusted files: only
 * PNG (8/16-bit), JPEG, BMP and binary PGM/PPM are accepted (sniffed from the
 * first bytes, so a text file named .png is refused before any decoder runs),
 * and the pixel count announced by the header is checked against a cap
 * before decoding. Files are read by dd_read_file and written by the atomic
 * writer (core/fileio.h), so an existing file is never left half-written.
 * Writing is PNG only. */
#ifndef DD_IMAGE_H
#define DD_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Default cap on width*height of a decoded image (64 Mpixel, 768 MiB as
 * float RGB): far above any inspection camera, far below what a forged
 * header could make us allocate. */
#define DD_IMAGE_MAX_PIXELS_DEFAULT (64L * 1024 * 1024)
/* Files larger than this are refused before they are read into memory. */
#define DD_IMAGE_MAX_FILE_BYTES (1024L * 1024 * 1024)

typedef struct dd_image {
    int h, w, c;   /* c is 1 or 3 */
    float *data;   /* h*w*c floats, owned; free with dd_image_free */
} dd_image;

/* Allocate an h x w x c image (zero-filled). */
int dd_image_alloc(dd_image *img, int h, int w, int c, dd_error *err);
void dd_image_free(dd_image *img);

/* Header only: width, height and channel count in the file (no decoding). */
int dd_image_info(const char *path, int *h, int *w, int *c, dd_error *err);

/* Decode an image file into `out` with `channels` = 3 (RGB) or 1 (mask:
 * luminance for colour files). max_pixels <= 0 means the default cap.
 * 16-bit PNGs keep their precision (divided by 65535). */
int dd_image_load(const char *path, int channels, long max_pixels, dd_image *out,
                  dd_error *err);

/* Shorthands with the default cap. */
int dd_image_load_rgb(const char *path, dd_image *out, dd_error *err);
int dd_image_load_mask(const char *path, dd_image *out, dd_error *err);

/* Decode from memory; `name` is only used in messages. This is the entry the
 * fuzzer drives. */
int dd_image_decode(const void *buf, size_t len, const char *name, int channels,
                    long max_pixels, dd_image *out, dd_error *err);

/* Resample src (sh x sw x c) into dst (dh x dw x c), separably per axis:
 * area averaging along an axis that shrinks (every source pixel weighted by
 * its exact overlap), bilinear with pixel-centre alignment (PyTorch
 * align_corners=False, edges clamped) along an axis that grows, and a plain
 * copy along an axis that keeps its size. src and dst must not overlap. */
int dd_resize(const float *src, int sh, int sw, int c, float *dst, int dh, int dw,
              dd_error *err);

/* Size of an ih x iw image resized by `scale` with each side at least min_h x min_w (a
 * side that would come out smaller is stretched to the minimum): the working size of
 * tiled models (docs/method.md §11), shared by training crops and inference tiles.
 * scale <= 0 (fit) gives min_h x min_w. */
void dd_scaled_size(int ih, int iw, float scale, int min_h, int min_w, int *oh, int *ow);

/* Resize into a freshly allocated image. */
int dd_image_resized(const dd_image *src, int h, int w, dd_image *out, dd_error *err);

/* Separable Gaussian blur of an H x W map, as scipy.ndimage.gaussian_filter(mode="reflect",
 * truncate=4): radius round(4·sigma), edges mirrored (d c b a | a b c d). Used for the
 * anomaly map before the score (the model's map_sigma, infer/scorer.h) and for display
 * (eval/report.h). in and out may be the same buffer;
 * tmp holds H·W floats (NULL: allocated and freed here). sigma in (0, 100]; sigma 0 copies. */
int dd_gaussian_blur(const float *in, float *out, int H, int W, float sigma, float *tmp,
                     dd_error *err);

/* Mask to {0, 1}: v > thr -> 1, else 0 (masks after resizing use thr 0.5). */
void dd_mask_binarize(float *m, size_t n, float thr);

/* PNG writers; values are clamped to [0, 1] and rounded.
 * gray8 / gray16: h x w single-channel maps and masks; rgb8: h x w x 3. */
int dd_write_png_gray8(const char *path, const float *v, int h, int w, dd_error *err);
int dd_write_png_gray16(const char *path, const float *v, int h, int w, dd_error *err);
int dd_write_png_rgb8(const char *path, const float *rgb, int h, int w, dd_error *err);
/* Any dd_image (c = 1 -> gray8, c = 3 -> rgb8). */
int dd_image_write_png(const char *path, const dd_image *img, dd_error *err);

/* Copy src (sh x sw x sc, sc 1 or 3) into dst (dh x dw x 3) at (y0, x0),
 * replicating a single channel; parts outside dst are clipped. For grids. */
void dd_image_paste(float *dst, int dh, int dw, const float *src, int sh, int sw, int sc,
                    int y0, int x0);

#endif
