/* validate.h — owns leak-free validation during training: a fixed set of
 * held-out images with synthetic defects, scored exactly as inference scores
 * them, and the field's metrics over it.
 *
 * The set is built once, at create, from the held-out good training images
 * only (ds->train[val_idx[i]]; test/ is never read, so choosing a checkpoint
 * by these numbers does not look at the test set). For each image: the image
 * itself (label 0, empty mask), loaded and resized as `diffad predict` loads
 * it, plus n_per_image synthetic anomalies from the training synthesiser
 * (dd_synth, sc copied with normal_prob 0 and the model size), drawn from
 * dd_rng_seed2(seed ^ "valid", i * n_per_image + j), so the set is a pure
 * function of (dataset, val_idx, sc, n_per_image, seed). A draw that finds no
 * room for a mask (max_tries) stays a good image and is counted as one.
 *
 * A run copies the trainer's parameter values into an inference model (batch
 * 1, built once) and scores every image with the inference noise levels and
 * the noise `diffad predict` uses by default (DD_PREDICT_SEED of model.h,
 * drawn once): the score of a clean validation image is bit for bit the score
 * `diffad predict` gives that file with a model file of the same weights. The map is
 * smoothed by the model's map_sigma as the scorer smooths a one-tile map; image
 * score = top-k mean (dd_model_topk). Metrics: image AUROC, pixel AP and AUPRO
 * (FPR <= 0.3) from the eval metrics accumulator, overall set. */
#ifndef DD_VALIDATE_H
#define DD_VALIDATE_H

#include <stdint.h>

#include "core/arena.h"
#include "core/status.h"
#include "data/dataset.h"
#include "data/synth.h"
#include "model/model.h"

typedef struct dd_val_metrics {
    double image_auroc, pixel_ap, aupro; /* NaN only if undefined (no anomalous image) */
    double seconds;                       /* wall time of the run */
    int n_images, n_anomalous;
} dd_val_metrics;

typedef struct dd_validator dd_validator;

/* Build the set and the inference model. ds must stay open only during this
 * call (the set is copied). Errors: no validation images, an index outside
 * ds->train, n_per_image < 1, no anomaly pastable in any image, unreadable
 * files (named), a bad model config. threads as dd_model_create. */
int dd_validator_create(const dd_dataset *ds, const int *val_idx, int n_val,
                        const dd_synth_config *sc, int n_per_image, uint64_t seed,
                        const dd_model_config *cfg, int threads, dd_validator **out,
                        dd_error *err);

/* Score the set with `weights` (a parameter table of the same config: tensor
 * count, total size, names and offsets must match, else DD_E_INVALID) and
 * compute the metrics. Deterministic: the same weights give the same numbers. */
int dd_validator_run(dd_validator *v, const dd_params *weights, dd_val_metrics *out,
                     dd_error *err);

/* The inference noise levels the next runs use (creation: cfg's t_s / t_b). Choosing the
 * levels per model scores the same set once per pair (train/trainer.c). DD_E_RANGE unless
 * 0 <= t_s < t_b < T. */
int dd_validator_set_levels(dd_validator *v, int t_s, int t_b, dd_error *err);

/* The map smoothing the next runs use (creation: cfg's map_sigma); DD_E_RANGE outside
 * 0..DD_MAX_MAP_SIGMA. */
int dd_validator_set_map_sigma(dd_validator *v, float map_sigma, dd_error *err);

void dd_validator_free(dd_validator *v);

/* Inspection (tests, reports). Number of images in the set; image i
 * ([H,W,3] in [0,1]), its mask ([H,W] {0,1}), label and source item (index into
 * ds->train); the image score of the last run (NaN before the first). */
int dd_validator_count(const dd_validator *v);
const float *dd_validator_image(const dd_validator *v, int i, const float **mask, int *label,
                                int *item);
double dd_validator_score(const dd_validator *v, int i);

#endif
