/* report.h — owns what people look at: the self-contained HTML test report (metrics table,
 * ROC / PRO curves and score histograms as inline SVG, a gallery of the worst-scored images as
 * embedded PNG data URIs; no network, no scripts, no external fonts), and the display helpers
 * shared with `diffad predict`: the fixed heat-map colour scale and the Gaussian smoothing of
 * anomaly maps (docs/method.md §8: sigma 4 px at 256 px; never per-image min–max normalisation).
 *
 * Use: dd_report_new(); for each scored test image, if dd_report_wants() says so, render its
 * images and dd_report_add() them (only the worst few are kept, already PNG-encoded, so memory
 * stays small whatever the test set); dd_metrics_compute(); dd_report_write() (atomic). */
#ifndef DD_REPORT_H
#define DD_REPORT_H

#include "data/image.h"
#include "eval/metrics.h"
#include "core/status.h"

/* ---- heat maps and smoothing (used by the report and by predict) ---- */

/* Fixed colour scale over [0,1] ("Turbo": dark blue → cyan → green → yellow → red), values
 * clamped to [0,1], NaN drawn black. 0 always looks the same, in every image. */
void dd_heat_color(float v, unsigned char rgb[3]);
/* map (H×W) → RGB8 (H×W×3). */
void dd_heat_rgb(const float *map, int H, int W, unsigned char *rgb);
/* out = (1 − alpha)·img + alpha·colour(map), per pixel; img and out are H×W×3 RGB8 and may be
 * the same buffer; alpha in [0,1] (0.5 is customary). */
void dd_heat_overlay(const unsigned char *img, const float *map, int H, int W, float alpha,
                     unsigned char *out);

/* Display smoothing sigma for an H×W map: 4 px at 256×256, proportional to sqrt(H·W). */
float dd_display_sigma(int H, int W);
/* The blur itself: dd_gaussian_blur (data/image.h). */

/* ---- the HTML report ---- */

typedef struct dd_report_params {
    const char *title;     /* page title; copied; default "diffad test report" */
    int gallery_good;      /* good images with the highest scores to show; default 6 */
    int gallery_defective; /* defective images with the lowest scores to show; default 6 */
    int max_side;          /* larger RGB images are box-downscaled to fit; default 256 */
    /* OK/NG threshold drawn on the histogram and used for the gallery verdicts; NaN (the
     * default) → the overall image F1-max threshold of the metrics given to dd_report_write. */
    double threshold;
} dd_report_params;

void dd_report_params_init(dd_report_params *p);

/* One picture: an RGB8 buffer (h×w×3, row-major), or a PNG file on disk (embedded as it is,
 * used when rgb is NULL), or neither (the cell is left empty). */
typedef struct dd_report_image {
    const unsigned char *rgb;
    int h, w;
    const char *png_path;
} dd_report_image;

typedef struct dd_report_entry {
    const char *name;        /* e.g. "crack/003.png"; copied */
    const char *defect_type; /* shown for defective images; copied; may be NULL */
    int label;               /* 0 good, 1 defective */
    double score;            /* the image score */
    dd_report_image input, truth, recon, heat; /* input, ground truth, reconstruction, heat map */
} dd_report_entry;

typedef struct dd_report dd_report;

int dd_report_new(const dd_report_params *p, dd_report **out, dd_error *err);
void dd_report_free(dd_report *r);
/* 1 if an image with this label and score would enter the gallery now (so the caller can skip
 * rendering images that would be thrown away), else 0. */
int dd_report_wants(const dd_report *r, int label, double score);
/* Offer an image: kept if it is among the worst so far (good: highest scores; defective: lowest),
 * replacing the least bad one; its pictures are PNG-encoded now. *kept (may be NULL) says whether
 * it was kept. DD_E_IO / DD_E_FORMAT for a PNG file that cannot be read or is not a PNG. */
int dd_report_add(dd_report *r, const dd_report_entry *e, int *kept, dd_error *err);
/* Write the page (atomically). m may be NULL (gallery only). */
int dd_report_write(const dd_report *r, const dd_metrics_result *m, const char *path,
                    dd_error *err);

#endif
