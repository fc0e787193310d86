/* calibrate.c — thresholds from held-out good images (see calibrate.h).
 *
 * The scores must be the ones `diffad predict` gives for the saved model, so the
 * images go through the scorer predict uses (infer/scorer.h: an inference model of
 * batch 1, the noise of DD_PREDICT_SEED, working scale, tiles, top-k), each file
 * decoded to float RGB as `diffad predict` decodes it. The pixel threshold is a
 * quantile of the maps at the images' own size, as predict returns them, over the
 * pixels the region of interest inspects (all pixels without one). */
#include "train/calibrate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "infer/scorer.h"

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

size_t dd_calibrate_rank(size_t n, double q) {
    /* q comes from float settings (1 - 0.01f is 0.99000000022...): without the tolerance,
     * 100 images would give rank 100 (the highest score) instead of 99 */
    double r = ceil(q * (double)n - 1e-6);
    if (r < 1) r = 1;
    if (r > (double)n) r = (double)n;
    return (size_t)r;
}

/* Value at quantile q (nearest rank, upper) of n sorted values. */
static float quantile(const float *v, size_t n, double q) { return v[dd_calibrate_rank(n, q) - 1]; }

/* Prefix err's message with the image path (copied first: the message is the source). */
static int with_path(dd_error *err, int rc, const char *path) {
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return dd_fail(err, rc, "%s: %s", path, msg);
}

int dd_calibrate(dd_model_config *cfg, const float *weights, size_t n_weights, const dd_roi *roi,
                 const dd_dataset *ds, const int *val, int n_val, float false_reject, int threads,
                 float *sorted_scores, dd_error *err) {
    if (n_val < 1) return dd_fail(err, DD_E_INVALID, "calibration: no held-out images");
    dd_model *m = NULL;
    int rc = dd_model_create(cfg, 1, 0, threads, &m, err);
    if (rc) return rc;
    if (m->params.total != n_weights) {
        dd_model_free(m);
        return dd_fail(err, DD_E_INVALID, "calibration: %zu weights given, the model has %zu", n_weights, m->params.total);
    }
    memcpy(m->params.value, weights, n_weights * sizeof(float));
    if (roi && (rc = dd_roi_copy(&m->roi, roi, err))) { /* the scorer applies the model's ROI */
        dd_model_free(m);
        return rc;
    }
    dd_scorer *sc = NULL;
    dd_scorer_opts so;
    dd_scorer_opts_init(&so); /* predict's defaults: DD_PREDICT_SEED, the model's overlap */
    so.want_recon = 0;
    float *scores = malloc(sizeof(float) * (size_t)n_val), *pix = NULL;
    size_t n_pix = 0, cap_pix = 0;
    if (!scores) rc = dd_fail(err, DD_E_NOMEM, "calibration: out of memory");
    if (!rc) rc = dd_scorer_create(m, &so, &sc, err);
    for (int i = 0; i < n_val && !rc; i++) {
        const char *path = ds->train[val[i]].path;
        dd_image im = {0};
        dd_score r;
        if ((rc = dd_image_load_rgb(path, &im, err))) break;
        rc = dd_scorer_run(sc, im.data, im.h, im.w, &r, err);
        dd_image_free(&im);
        if (rc) {
            rc = with_path(err, rc, path);
            break;
        }
        scores[i] = (float)r.score; /* as predict reports it (diffad_result.score is a float) */
        size_t n = (size_t)r.roi_pixels; /* the inspected pixels (all without an ROI) */
        if (n_pix + n > cap_pix) {
            size_t nc = (n_pix + n) * 2;
            float *p = realloc(pix, nc * sizeof(float));
            if (!p) {
                rc = dd_fail(err, DD_E_NOMEM, "calibration: out of memory for %zu map values", nc);
                break;
            }
            pix = p, cap_pix = nc;
        }
        if (r.roi)
            for (size_t j = 0; j < (size_t)r.h * r.w; j++) {
                if (r.roi[j]) pix[n_pix++] = r.map[j];
            }
        else {
            memcpy(pix + n_pix, r.map, n * sizeof(float));
            n_pix += n;
        }
    }
    if (!rc) {
        qsort(scores, (size_t)n_val, sizeof(float), cmp_float);
        qsort(pix, n_pix, sizeof(float), cmp_float);
        cfg->image_threshold = quantile(scores, (size_t)n_val, 1.0 - false_reject);
        cfg->pixel_threshold = quantile(pix, n_pix, 1.0 - false_reject / 10.0);
        cfg->score_lo = quantile(scores, (size_t)n_val, 0.5);
        /* keep normalisation well defined when all good scores coincide */
        if (cfg->image_threshold <= cfg->score_lo) cfg->image_threshold = cfg->score_lo + 1e-6f;
        cfg->score_hi = cfg->image_threshold;
        rc = dd_calibrate_review(cfg, scores, (size_t)n_val, false_reject, err);
        if (!rc && sorted_scores) memcpy(sorted_scores, scores, sizeof(float) * (size_t)n_val);
    }
    free(scores);
    free(pix);
    dd_scorer_free(sc);
    dd_model_free(m);
    return rc;
}

int dd_calibrate_review(dd_model_config *cfg, const float *sorted_scores, size_t n, float false_reject, dd_error *err) {
    cfg->review_lo = cfg->review_hi = 0;
    if (!(cfg->review > 0)) return DD_OK;
    double q = 1.0 - (double)false_reject - (double)cfg->review;
    if (q <= 0)
        return dd_fail(err, DD_E_RANGE, "calibration: review %g + false_reject %g leave no good image OK (their sum must be below 1)",
                       (double)cfg->review, (double)false_reject);
    float lo = quantile(sorted_scores, n, q), thr = cfg->image_threshold;
    /* with few images the quantile can be the threshold itself: the band then has no lower
     * half; keep it, and its upper half, well defined */
    if (lo > thr) lo = thr;
    cfg->review_lo = lo;
    cfg->review_hi = thr + (thr - lo);
    return DD_OK;
}
