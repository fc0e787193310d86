/* calibrate.h — owns threshold calibration: score held-out good images with given
 * weights exactly as `diffad predict` would (same preprocessing, same noise, same
 * top-k score) and set the image / pixel thresholds and the score normalisation
 * from their quantiles. */
#ifndef DD_CALIBRATE_H
#define DD_CALIBRATE_H

#include "data/dataset.h"
#include "model/model.h"
#include "model/roi.h"

/* Scores ds->train[val[i]] for i < n_val with `weights` (a value block in the
 * layout of a model built from cfg, e.g. m->params.value or an EMA copy) and
 * writes into *cfg: image_threshold = the (1 - false_reject) quantile of the
 * image scores, pixel_threshold = the (1 - false_reject / 10) quantile of all
 * map values, score_lo = the median score, score_hi = image_threshold (kept
 * above score_lo), and the review band (dd_calibrate_review with cfg->review). threads <= 0:
 * OpenMP default. roi: the model's region of interest (NULL or no mask: none); the images are
 * scored with it as predict scores them, and the pixel quantile is taken over the inspected
 * pixels only (ignored ones are no evidence). sorted_scores: NULL, or n_val floats that receive
 * the image scores in ascending order (the good-score distribution a model file keeps for drift
 * checks, eval/drift.h). */
int dd_calibrate(dd_model_config *cfg, const float *weights, size_t n_weights, const dd_roi *roi,
                 const dd_dataset *ds, const int *val, int n_val, float false_reject, int threads,
                 float *sorted_scores, dd_error *err);

/* The three-way decision's band from n good scores (ascending) and cfg's image threshold:
 * with cfg->review = r > 0, review_lo = the score at quantile 1 - false_reject - r (so about a
 * share r of good parts lands in (review_lo, threshold] and goes to a person instead of OK) and
 * review_hi = threshold + (threshold - review_lo) (a band symmetric around the threshold: parts
 * just above it go to a person instead of NG). r = 0: both 0 (no band). DD_E_RANGE when
 * 1 - false_reject - r <= 0. */
int dd_calibrate_review(dd_model_config *cfg, const float *sorted_scores, size_t n, float false_reject, dd_error *err);

/* The 1-based nearest rank (upper) of quantile q among n sorted values: ceil(q * n), with a
 * tolerance of 1e-6 for q computed from float settings, kept in 1..n. The image threshold is
 * the value at dd_calibrate_rank(n, 1 - false_reject). */
size_t dd_calibrate_rank(size_t n, double q);

#endif
