/* metrics.h — owns the evaluation metrics of the field (docs/method.md §8) over a labelled test set:
 * image AUROC / AP / F1-max over image scores, pixel AUROC / AP / F1-max over every test pixel,
 * and AUPRO (MVTec AD definition, FPR limit 0.3), overall and per defect type; the curve points
 * the HTML report draws; the JSON / CSV / Markdown writers; and the top-k image score.
 *
 * Use: dd_metrics_new() an accumulator, dd_metrics_add_image() once per test image (as each
 * one is scored, so nothing else has to be kept), dd_metrics_compute() into a result, write it.
 *
 * Pixel truth may be missing for some defective images (a user's labelled folders where only
 * some images have a mask): add those with dd_metrics_add_image_unmasked(). They count in the
 * image metrics only; the pixel metrics cover the good images (all pixels normal) and the
 * defective images that have a mask, and every set says how many that is (n_defective_masked),
 * which every writer reports when it is not all of them.
 *
 * Ties are handled as scikit-learn does (roc_auc_score, average_precision_score,
 * precision_recall_curve): every distinct score is one threshold, "score >= thr" is positive.
 *
 * Pixel storage and its accuracy (the "pixel mode", reported in every output):
 *  - exact: the anomaly-map values are kept as the float32 they are (4 bytes per normal pixel,
 *    8 per defect pixel: value + size of its ground-truth region), sorted at compute time; every
 *    pixel metric is then exact for the given float maps. Computing needs a temporary as large as
 *    the biggest defect type's pixel array; the budget counts it.
 *  - histogram: once storage (+ that temporary) would exceed params.max_pixel_bytes, every stored
 *    value is binned into hist_bins equal bins over [0,1] (values outside are clamped to the end
 *    bins) and later images go straight into the bins (24 bytes per bin per defect type, no
 *    per-pixel memory). Every curve point at a bin edge is still exact; only the ordering inside a
 *    bin is lost. Each pixel metric then carries a rigorous bound on |histogram − exact| computed
 *    from the bins themselves (see metrics_sweep.h), reported next to the value.
 * Image-level metrics are always exact (one double per image). */
#ifndef DD_METRICS_H
#define DD_METRICS_H

#include <stddef.h>

#include "core/status.h"

/* Which metric: the index into dd_metrics_set.m[]. */
enum {
    DD_M_IMAGE_AUROC = 0,
    DD_M_IMAGE_AP,
    DD_M_IMAGE_F1MAX,
    DD_M_PIXEL_AUROC,
    DD_M_PIXEL_AP,
    DD_M_PIXEL_F1MAX,
    DD_M_AUPRO,
    DD_M_COUNT
};

/* How pixel data were kept (see above). */
enum { DD_PIXEL_NONE = 0, DD_PIXEL_EXACT = 1, DD_PIXEL_HISTOGRAM = 2 };

/* AUPRO integrates the PRO curve over pixel FPR in [0, DD_AUPRO_FPR_LIMIT] and divides by it. */
#define DD_AUPRO_FPR_LIMIT 0.3

typedef struct dd_metrics_params {
    size_t max_pixel_bytes; /* exact-mode budget; default 512 MiB; 0 = histogram from the start */
    int hist_bins;          /* histogram mode bins over [0,1]; default 65536; 2^8 .. 2^24 */
    int curve_points;       /* at most about this many points per report curve; default 256 */
    int score_bins;         /* bins of the image-score histograms in the report; default 40 */
} dd_metrics_params;

void dd_metrics_params_init(dd_metrics_params *p);

/* One metric value. Metrics that need both classes (or regions) are "undefined" with a reason
 * instead of NaN. */
typedef struct dd_metric {
    int defined;     /* 1: value is the metric; 0: see why */
    double value;    /* in [0,1] */
    double bound;    /* max |value − exact value| from histogram binning; 0 when exact */
    const char *why; /* static reason when undefined, NULL otherwise */
} dd_metric;

/* Metrics of one set of test images: "overall", or one defect type = the good test images plus
 * the images of that type. */
typedef struct dd_metrics_set {
    char *name;
    long n_good, n_defective;
    /* Defective images with pixel truth (a mask): the pixel metrics are over the n_good good
     * images and these; the other n_defective − n_defective_masked count in the image metrics
     * only. Equal to n_defective unless dd_metrics_add_image_unmasked() was used. */
    long n_defective_masked;
    long long n_pixels, n_defect_pixels;
    long n_regions; /* ground-truth connected components (8-connectivity) */
    dd_metric m[DD_M_COUNT];
    /* Score at which F1-max is reached (the highest such threshold; "score >= thr" is NG); valid
     * only when the matching F1-max is defined. In histogram mode, a bin's lower edge. */
    double image_f1_threshold, pixel_f1_threshold;
} dd_metrics_set;

/* A curve downsampled for drawing: consecutive kept points are at least about 1/curve_points
 * apart (L1, axes scaled to [0,1]); the first and last points are always kept. */
typedef struct dd_curve {
    int n;
    float *x, *y;
} dd_curve;

typedef struct dd_metrics_result {
    int pixel_mode; /* DD_PIXEL_* */
    int hist_bins;  /* histogram mode: bin width is 1/hist_bins */
    int n_sets;
    dd_metrics_set *sets; /* sets[0] is "overall", then the defect types in name order */
    /* Curves of the overall set (n == 0 when the metric is undefined). */
    dd_curve image_roc; /* x = FPR, y = TPR */
    dd_curve pixel_roc;
    dd_curve pro; /* x = pixel FPR in [0, 0.3], y = PRO */
    /* Image-score histograms (good and defective images) over [score_lo, score_hi]. */
    int score_bins;
    double score_lo, score_hi;
    long *score_hist_good, *score_hist_defective;
} dd_metrics_result;

typedef struct dd_metrics dd_metrics;

int dd_metrics_new(const dd_metrics_params *p, dd_metrics **out, dd_error *err);
void dd_metrics_free(dd_metrics *acc);

/* Add one test image.
 * score: the image score (finite). label: 0 good, 1 defective.
 * defect_type: the defect folder name for label 1 (NULL → "defect"); ignored for label 0.
 * map: H×W anomaly map (finite floats, nominally [0,1]) or NULL; either every image has a map or
 *      none has (then the pixel metrics are undefined).
 * mask: H×W ground truth (> 0.5 is defect) or NULL (all normal). A good image with defect pixels
 *       in its mask is rejected: the labels contradict each other. */
int dd_metrics_add_image(dd_metrics *acc, double score, int label, const char *defect_type,
                         const float *map, const float *mask, int H, int W, dd_error *err);

/* Add one defective image whose pixel truth is unknown (it has no ground-truth mask): its score
 * counts in the image metrics; its pixels are in no pixel metric (its anomaly map is not needed).
 * Mixes with images added by dd_metrics_add_image, with or without maps. A set whose defective
 * images all lack a mask has its pixel metrics undefined ("no defective image has a ground-truth
 * mask"). Good images always have pixel truth (every pixel normal): add them with
 * dd_metrics_add_image. defect_type as there (NULL → "defect"). */
int dd_metrics_add_image_unmasked(dd_metrics *acc, double score, const char *defect_type,
                                  dd_error *err);

/* Current pixel mode (DD_PIXEL_*) and bytes held for pixel data. */
int dd_metrics_pixel_mode(const dd_metrics *acc);
size_t dd_metrics_pixel_bytes(const dd_metrics *acc);

/* Compute every metric over what was added so far (the accumulator stays usable). */
int dd_metrics_compute(dd_metrics *acc, dd_metrics_result **out, dd_error *err);
void dd_metrics_result_free(dd_metrics_result *r);

/* "image_auroc", ... (keys of the JSON / CSV) and "image AUROC", ... (table headers). */
const char *dd_metric_key(int which);
const char *dd_metric_label(int which);
/* "exact", "histogram" or "none". */
const char *dd_pixel_mode_name(int mode);

/* One sentence saying which images the pixel metrics of a set cover, e.g. "pixel metrics over
 * 12 of 20 defective images (8 have no mask) and the 10 good images; images without a mask
 * count in the image metrics only", or "pixel metrics over all 10 good and 20 defective images"
 * when every defective image has a mask. Returns 1 when some defective image has no mask (the
 * writers print the sentence then; metrics.json always has it), else 0. */
int dd_metrics_truth_note(const dd_metrics_set *s, char *buf, size_t cap);

/* Writers; each file is written atomically (temporary file in the same folder, then rename). */
int dd_metrics_write_json(const dd_metrics_result *r, const char *path, dd_error *err);
int dd_metrics_write_csv(const dd_metrics_result *r, const char *path, dd_error *err);
/* The Markdown table (values in percent) as a malloc'd string the caller frees, and its file. */
int dd_metrics_markdown(const dd_metrics_result *r, char **out, dd_error *err);
int dd_metrics_write_markdown(const dd_metrics_result *r, const char *path, dd_error *err);

/* Image score helper: mean of the k largest values of map[0..n). O(n) radix selection on the
 * float bits (four passes, no copy, no allocation); k is clamped to n. NaN values are rejected.
 * Which k a model uses is the model's rule, dd_model_topk (model/model.h), the one inference
 * calls; this function only takes it. */
int dd_topk_mean(const float *map, long n, long k, double *mean, dd_error *err);

#endif
