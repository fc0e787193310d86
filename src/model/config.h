/* config.h — owns the named settings of a model and of a training run: one key
 * table (name, type, range, help) drives config files (JSON), --key value
 * overrides, the profiles ("paper", "cpu"), the metadata stored in model files
 * and the help text. Unknown keys and out-of-range values are errors that name
 * the key and where it came from. */
#ifndef DD_CONFIG_H
#define DD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "model/model.h"

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
    float false_reject;     /* calibration: share of good validation images allowed over the threshold */
    float lr_warmup;        /* steps of linear learning-rate warm-up */
    float minutes;          /* wall-clock budget of the training loop (0: off; steps is then an upper bound) */
    int lr_schedule;        /* DD_LR_CONSTANT / DD_LR_COSINE */
    float lr_min_ratio;     /* cosine: final learning rate as a share of the configured one */
    float ema_decay;        /* EMA of the weights (0: off); the saved model then holds the EMA weights */
    float val_every_min;    /* minutes between synthetic validations (0: off) */
    int val_per_image;      /* synthetic defects per held-out image in a validation */
    int keep_best;          /* with validation: save the best-validated weights, not the last */
} dd_train_opts;

enum { DD_LR_CONSTANT = 0, DD_LR_COSINE = 1 };

typedef struct dd_settings {
    dd_model_config model;
    dd_train_opts train;
} dd_settings;

/* Profile "paper" (METHOD.md) or "cpu" (the default for 2-core machines). */
int dd_settings_profile(dd_settings *s, const char *profile, dd_error *err);
/* Set one key from text ("--key value" or a config file); `origin` names the source. */
int dd_settings_set(dd_settings *s, const char *key, const char *value, const char *origin,
                    dd_error *err);
/* Apply every member of a JSON object (a config file). */
int dd_settings_apply_json(dd_settings *s, const dd_json *obj, const char *origin, int model_only,
                           dd_error *err);
int dd_settings_load_file(dd_settings *s, const char *path, dd_error *err);
/* The model keys as a JSON object text (for model-file metadata); caller frees. */
char *dd_settings_model_json(const dd_model_config *m);
/* Read model keys back from that text into m (strict: unknown keys are errors). */
int dd_model_config_from_json(dd_model_config *m, const char *text, const char *origin,
                              dd_error *err);
/* Print all keys with their current values and help. */
void dd_settings_print_help(const dd_settings *s, FILE *f);

#endif
