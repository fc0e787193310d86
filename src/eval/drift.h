/* drift.h — owns watching production scores against calibration: the good-score
 * distribution a model file keeps (metadata "calibration_scores", written by training's
 * calibration and `diffad calibrate`), its text form, the two-sample Kolmogorov–Smirnov
 * test, and the drift rule `diffad predict --stats / --drift_window` applies.
 *
 * Which scores are compared: "good-part scores" are image scores at or below the model's
 * image threshold, on both sides (the calibration images and the run). Production runs
 * contain defects; scores above the threshold are the detector's job, not evidence of a
 * changed camera, and truncating both samples at the same threshold keeps them comparable
 * when nothing has changed. */
#ifndef DD_DRIFT_H
#define DD_DRIFT_H

#include <stddef.h>

#include "core/status.h"

/* Metadata key of the model file and the most values it stores: more calibration images are
 * kept as this many evenly spaced order statistics (the test then counts this many). */
#define DD_CALIB_SCORES_KEY "calibration_scores"
#define DD_CALIB_SCORES_MAX 4096

/* Kolmogorov's limiting distribution: Q(lambda) = P(K > lambda) =
 * 2 sum_{k>=1} (-1)^(k-1) exp(-2 k^2 lambda^2) (scipy.special.kolmogorov); 1 for lambda <= 0. */
double dd_kolmogorov_sf(double lambda);

/* Two-sample Kolmogorov–Smirnov test of a[0..na) against b[0..nb), both sorted ascending
 * (checked): D = sup |F_a - F_b| (exact; ties handled as scipy.stats.ks_2samp) and the
 * asymptotic two-sided p-value Q((sqrt(ne) + 0.12 + 0.11 / sqrt(ne)) * D), ne = na nb / (na + nb)
 * (Stephens' correction; Numerical Recipes' probks). DD_E_INVALID when a sample is empty or
 * unsorted or holds NaN. */
int dd_ks_two_sample(const float *a, size_t na, const float *b, size_t nb, double *D, double *p, dd_error *err);

/* The stored form: "n:v1,v2,..." with %.9g values (bit-exact floats), ascending. n is the
 * number of calibration images the values stand for (>= the values' count). */
int dd_calib_scores_format(const float *sorted, size_t n, char **text, dd_error *err);
/* Parse that text; *values malloc'ed (free()), *count values, *n_images the images. Any
 * malformed text is DD_E_FORMAT naming what is wrong (the caller prefixes the file). */
int dd_calib_scores_parse(const char *text, float **values, size_t *count, size_t *n_images, dd_error *err);

/* The drift rule's settings. */
typedef struct dd_drift_rule {
    double alpha;     /* KS p-value below which the difference is significant (0.01) */
    double min_shift; /* and |median shift| / (threshold - calibration median) at least this (0.1) */
} dd_drift_rule;

void dd_drift_rule_init(dd_drift_rule *r);

typedef struct dd_drift_result {
    size_t n_ref, n_run;    /* good-part scores compared (at or below the threshold) */
    double D, p;            /* KS statistic and p-value */
    double median_ref, median_run;
    double shift;           /* (median_run - median_ref) / (threshold - median_ref) */
    int drift;              /* p < alpha and |shift| >= min_shift */
} dd_drift_result;

/* Compare a run's good-part scores (run: sorted ascending, any scores: those above threshold
 * are left out here) with the calibration's. DD_E_INVALID when either side has no score at or
 * below the threshold or threshold <= median_ref (an uncalibrated model). */
int dd_drift_check(const float *calib_sorted, size_t n_calib, const float *run_sorted, size_t n_run, float threshold,
                   const dd_drift_rule *rule, dd_drift_result *out, dd_error *err);

/* Value at quantile q in [0,1] of n sorted values, linear between order statistics (numpy's
 * default); n >= 1. */
double dd_quantile_sorted(const float *v, size_t n, double q);

#endif
