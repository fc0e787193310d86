/* settings.h — owns the named settings of a training run and the profiles:
 * the training key table (batch, steps, seed, threads, workers, val_fraction,
 * checkpoints, logging, synthetic-defect options, calibration, learning-rate
 * schedule, EMA, validation) on the engine of core/settings_table.h, and
 * dd_settings = the model keys (model/config.h) + the training keys, the one
 * structure a user sets. Profiles ("cpu", the default for 2-core machines, and
 * "paper", docs/training.md) give every value; then a JSON config file; then
 * "--KEY VALUE". Unknown keys and out-of-range values are errors that name the
 * key and where it came from. */
#ifndef DD_TRAIN_SETTINGS_H
#define DD_TRAIN_SETTINGS_H

#include <stdint.h>
#include <stdio.h>

#include "core/json.h"
#include "core/settings_table.h"
#include "model/config.h"

typedef struct dd_train_opts {
    int batch;              /* images per step */
    long steps;             /* optimisation steps */
    uint64_t seed;
    int threads;            /* 0: all cores */
    int workers;            /* data threads */
    float val_fraction;     /* share of train/good held out for calibration */
    long checkpoint_every;  /* steps between checkpoints (0: only at the end) */
    long log_every;         /* steps between CSV log lines */
    char textures[1024];    /* anomaly-source image folder ("" = built-in procedural) */
    int synth_mode;         /* DD_SYNTH_OBJECT / DD_SYNTH_TEXTURE */
    int fg_mode;            /* DD_FG_* */
    float normal_prob;
    float large_mask_prob;
    float stroke_mask_prob;  /* share of thin-stroke synthetic defects (data/stroke.h) */
    float shift_source_prob; /* share of synthetic defects sourced from the part displaced (data/synth.h) */
    float intensity_source_prob; /* share of intensity-only synthetic defects (data/synth.h) */
    int binary_changed_mask; /* binary parts: label only the pixels a synthetic defect changed (data/synth.h) */
    float false_reject;     /* calibration: share of good validation images allowed over the threshold */
    float lr_warmup;        /* steps of linear learning-rate warm-up */
    float minutes;          /* wall-clock budget of the training loop (0: off; steps is then an upper bound) */
    int lr_schedule;        /* DD_LR_CONSTANT / DD_LR_COSINE / DD_LR_WSD */
    float lr_min_ratio;     /* cosine, wsd: final learning rate as a share of the configured one */
    float lr_decay_share;   /* wsd: share of the horizon spent in the final linear decay */
    float ema_decay;        /* EMA of the weights (0: off); the saved model then holds the EMA weights */
    float val_every_min;    /* minutes between synthetic validations (0: off) */
    int val_per_image;      /* synthetic defects per held-out image in a validation */
    int keep_best;          /* with validation: save the best-validated weights, not the last */
    int skip_bad;           /* 1: leave undecodable training images out (a warning each); 0: refuse the run */
    char level_grid[256];   /* inference noise levels "TS:TB,..." scored on the synthetic validation after
                               training beside the model's own t_s/t_b; the best is saved ("" or "none": off) */
} dd_train_opts;

/* Most level pairs level_grid may list (the model's own pair is scored in addition). */
#define DD_MAX_LEVEL_PAIRS 16

/* wsd (warm-up, stable, decay): the constant rate that short budgets need (finding 8),
 * then a linear decay over the run's last lr_decay_share, so the saved weights come from
 * a settled end instead of a noisy snapshot of a constant-rate walk (finding 17). */
enum { DD_LR_CONSTANT = 0, DD_LR_COSINE = 1, DD_LR_WSD = 2 };

typedef struct dd_settings {
    dd_model_config model;
    dd_train_opts train;
} dd_settings;

/* The training keys; their offsets are into dd_train_opts. */
const dd_key_table *dd_train_key_table(void);

/* Profile "paper" (docs/training.md) or "cpu" (the default for 2-core machines): every
 * model and training value. */
int dd_settings_profile(dd_settings *s, const char *profile, dd_error *err);
/* Set one key (model or training) from text ("--key value" or a config file);
 * `origin` names the source in messages. */
int dd_settings_set(dd_settings *s, const char *key, const char *value, const char *origin,
                    dd_error *err);
/* Apply every member of a JSON object (a config file); model_only: only model
 * keys are accepted. */
int dd_settings_apply_json(dd_settings *s, const dd_json *obj, const char *origin, int model_only,
                           dd_error *err);
/* A JSON config file (at most 1 MiB). */
int dd_settings_load_file(dd_settings *s, const char *path, dd_error *err);
/* Parse a level grid ("TS:TB,TS:TB,...", decimal, no spaces; "", "none" or "off" give 0 pairs) into
 * pairs[n][2] with 0 <= TS < TB < T for each; at most DD_MAX_LEVEL_PAIRS pairs. A pair
 * listed twice is kept once. Errors name `origin` (e.g. "level_grid") and the pair. */
int dd_level_grid_parse(const char *text, int T, int pairs[][2], int *n, const char *origin, dd_error *err);
/* Print all keys (model, then training) with their current values and help. */
void dd_settings_print_help(const dd_settings *s, FILE *f);

#endif
