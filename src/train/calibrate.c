/* calibrate.c — thresholds from held-out good images (see calibrate.h).
 *
 * The scores must be the ones `diffad predict` gives for the saved model, so
 * this repeats the public API's path (src/api.c) step for step: an inference
 * model of batch 1, the image decoded to float RGB and resized with dd_resize
 * only when its size differs, the noise drawn once from DD_PREDICT_SEED, and
 * the image score as the top-k mean of the map. */
#include "train/calibrate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "data/image.h"
#include "eval/metrics.h"

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Value at quantile q (nearest rank, upper) of n sorted values. */
static float quantile(const float *v, size_t n, double q) {
    size_t i = (size_t)ceil(q * (double)n);
    if (i > 0) i--;
    if (i >= n) i = n - 1;
    return v[i];
}

/* Prefix err's message with the image path (copied first: the message is the source). */
static int with_path(dd_error *err, int rc, const char *path) {
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return dd_fail(err, rc, "%s: %s", path, msg);
}

/* One image's score and map, as diffad_predict computes them. */
static int score_image(dd_model *m, const char *path, const float *noise, float *input, float *score,
                       float *map, dd_error *err) {
    int h = m->cfg.unet.h, w = m->cfg.unet.w;
    dd_image im = {0};
    int rc = dd_image_load_rgb(path, &im, err);
    if (rc) return rc;
    if (im.w == w && im.h == h) memcpy(input, im.data, (size_t)h * w * 3 * sizeof(float));
    else rc = dd_resize(im.data, im.h, im.w, 3, input, h, w, err);
    dd_image_free(&im);
    if (rc) return with_path(err, rc, path);
    if ((rc = dd_model_infer_with(m, input, noise, map, NULL, err))) return with_path(err, rc, path);
    double s = 0;
    if ((rc = dd_topk_mean(map, (long)h * w, dd_model_topk(&m->cfg), &s, err))) return with_path(err, rc, path);
    *score = (float)s;
    return DD_OK;
}

int dd_calibrate(dd_model_config *cfg, const float *weights, size_t n_weights, const dd_dataset *ds,
                 const int *val, int n_val, float false_reject, int threads, dd_error *err) {
    if (n_val < 1) return dd_fail(err, DD_E_INVALID, "calibration: no held-out images");
    dd_model *m = NULL;
    int rc = dd_model_create(cfg, 1, 0, threads, &m, err);
    if (rc) return rc;
    if (m->params.total != n_weights) {
        dd_model_free(m);
        return dd_fail(err, DD_E_INVALID, "calibration: %zu weights given, the model has %zu", n_weights, m->params.total);
    }
    memcpy(m->params.value, weights, n_weights * sizeof(float));
    size_t hw = (size_t)cfg->unet.h * cfg->unet.w;
    float *scores = malloc(sizeof(float) * (size_t)n_val), *pix = malloc(sizeof(float) * hw * (size_t)n_val);
    float *noise = malloc(sizeof(float) * hw * 6), *input = malloc(sizeof(float) * hw * 3);
    if (!scores || !pix || !noise || !input) rc = dd_fail(err, DD_E_NOMEM, "calibration: out of memory");
    if (!rc) {
        dd_rng r;
        dd_rng_seed(&r, DD_PREDICT_SEED);
        dd_model_draw_noise(cfg, &r, noise, 2);
    }
    for (int i = 0; i < n_val && !rc; i++)
        rc = score_image(m, ds->train[val[i]].path, noise, input, &scores[i], pix + hw * (size_t)i, err);
    if (!rc) {
        qsort(scores, (size_t)n_val, sizeof(float), cmp_float);
        qsort(pix, hw * (size_t)n_val, sizeof(float), cmp_float);
        cfg->image_threshold = quantile(scores, (size_t)n_val, 1.0 - false_reject);
        cfg->pixel_threshold = quantile(pix, hw * (size_t)n_val, 1.0 - false_reject / 10.0);
        cfg->score_lo = quantile(scores, (size_t)n_val, 0.5);
        /* keep normalisation well defined when all good scores coincide */
        if (cfg->image_threshold <= cfg->score_lo) cfg->image_threshold = cfg->score_lo + 1e-6f;
        cfg->score_hi = cfg->image_threshold;
    }
    free(scores);
    free(pix);
    free(noise);
    free(input);
    dd_model_free(m);
    return rc;
}
