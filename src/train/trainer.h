/* trainer.h — owns a training run in the library: the split of the good images
 * into training and held-out parts, the batch feeder, the training model, the
 * learning-rate schedule (warm-up, constant or cosine, horizon from `steps` or
 * from a wall-clock budget), the optional EMA of the weights, checkpoints and
 * exact resume, the CSV log, the stop condition (steps, budget, stop flag),
 * periodic validation with the best weights kept, and the final calibration of
 * the thresholds on the held-out good images. It never prints: the caller sees
 * the run through a progress callback and the info / result structs.
 *
 * One step: feeder batch -> dd_model_forward_backward with timesteps and noise
 * from dd_rng_seed2(seed ^ "train", step) -> grad_hook (NULL: none) ->
 * dd_model_update at the scheduled learning rates -> EMA update. The data
 * stream and the noise are pure functions of (seed, step), so with a step
 * budget a run is bit-reproducible and a resumed run continues exactly; with
 * a time budget (`minutes`) the number of steps, and with the cosine schedule
 * the learning rates, depend on the machine's speed. */
#ifndef DD_TRAINER_H
#define DD_TRAINER_H

#include <signal.h>

#include "train/settings.h"
#include "model/model.h"
#include "train/validate.h"

typedef struct dd_train_progress {
    long step;              /* steps done, counting those before a resume */
    long total;             /* steps planned: `steps`, or with a time budget the current estimate */
    long start;             /* the step this run started from (resume) */
    int budgeted;           /* 1: total and eta follow the `minutes` budget */
    dd_step_stats stats;    /* the last step's loss terms, gradient norm and normal count */
    float lr_unet, lr_seg;  /* learning rates of the last step */
    double samples_per_s;   /* mean of this run so far */
    double comm_s;          /* several processes: mean seconds per step spent in the sums (0: one process) */
    double elapsed_s;       /* wall time of the training loop, earlier parts of a resumed run included */
    double eta_s;           /* remaining time of the loop (to `total`, or to the budget) */
    int validated;          /* 1: val was measured after this step */
    dd_val_metrics val;
    double val_score;       /* mean of val's three metrics (the defined ones) */
    int new_best;           /* 1: val_score is the best so far */
} dd_train_progress;

typedef void (*dd_progress_fn)(void *ctx, const dd_train_progress *p);

/* Data-parallel training over several processes (docs/training.md "Several processes"):
 * the caller's communication (the CLI's is MPI). Each process trains batch / size samples
 * of every global batch (its part: [rank * b, (rank + 1) * b)), with the global batch's
 * timesteps and noise; per step the processes sum (sum_f64) their normal-sample counts and
 * stop votes, BatchNorm statistics (synchronised BatchNorm), then (sum_f32) the gradients
 * in place (one contiguous block) and (sum_f64) the loss terms. Every process then takes the
 * same Adam update. Rank 0 alone validates, writes the log, checkpoints and the model
 * file and calibrates; the others stop after the last step. Both functions replace v[0, n)
 * by its sum over the processes, the same on every process, and return 0 or an error. */
typedef struct dd_dist {
    int rank, size;         /* size <= 1: one process (the functions are not called) */
    int (*sum_f32)(void *ctx, float *v, size_t n, dd_error *err);
    int (*sum_f64)(void *ctx, double *v, size_t n, dd_error *err);
    void *ctx;
} dd_dist;
/* Called between backward and update with the gradients in params->grad (e.g. to
 * all-reduce them); a non-zero return stops the run with that status. */
typedef int (*dd_grad_hook_fn)(void *ctx, dd_params *params, dd_error *err);
/* Validation of the weights the model would be saved with (EMA when on), inferred with the
 * noise levels t_s / t_b (the model's own, or a candidate of level_grid at the end). */
typedef int (*dd_validate_fn)(void *ctx, const dd_params *weights, int t_s, int t_b, dd_val_metrics *out,
                              dd_error *err);

typedef struct dd_trainer_opts {
    const char *data;         /* category folder or folder of good images (required) */
    const char *out;          /* model file (default "model.safetensors"); checkpoint <out>.ckpt,
                                 best-validated weights <out>.best */
    const char *log_path;     /* CSV log; NULL: <out>.log.csv */
    const char *resume;       /* checkpoint to continue exactly, or NULL */
    const char *init;         /* model file whose weights start the run (fine-tuning), or NULL;
                                 same architecture and size required */
    dd_progress_fn progress;  /* called after every step; may be NULL */
    void *progress_ctx;
    dd_grad_hook_fn grad_hook;
    void *hook_ctx;
    dd_validate_fn validate;  /* NULL: the built-in dd_validator when val_every_min > 0 or
                                 level_grid is set */
    void *validate_ctx;
    volatile sig_atomic_t *stop; /* polled once per step (e.g. set by a SIGINT handler); may be NULL */
    const dd_dist *dist;      /* NULL: one process */
    const char *roi;          /* region of interest image (infer/roi_file.h), stored in the model
                                 file and used by the final calibration; NULL: none, or on
                                 --resume the checkpoint's. Training itself ignores it (synthetic
                                 defects are pasted anywhere); --init never takes the file's ROI */
} dd_trainer_opts;

typedef struct dd_trainer_info {
    int n_train, n_val;             /* good images used for training / held out */
    size_t params_unet, params_seg; /* trainable parameter counts */
    size_t memory;                  /* bytes of the training model (dd_model_memory) */
    long start, steps;              /* first step (after a resume) and the step limit */
    int resumed, initialised;       /* started from --resume / from --init */
    float tile_scale;               /* resolved working scale (0 fit, > 0 crops; docs/method.md §11) */
    int grey_noise;                 /* resolved */
    const char *precision;          /* convolution arithmetic, resolved: "f32" or "bf16" */
    int ranks, part_batch;          /* processes and samples of each batch per process (1, batch) */
    const char *out, *ckpt, *best, *log; /* paths the run writes */
    int n_skipped;                  /* training images that cannot be decoded, left out (skip_bad 1) */
    const char *const *skipped;     /* one message per such image, naming the file and the problem */
    int roi_h, roi_w;               /* the region of interest the model file gets (0 x 0: none) */
    double roi_share;               /* its inspected share of the pixels (1 without one) */
    char levels_note[256];          /* "": level_grid is used (or empty); else why the inference
                                       levels will not be chosen (no held-out images, no synthetic
                                       defect fits in them): the run keeps t_s / t_b */
} dd_trainer_info;

typedef struct dd_train_result {
    long step;                  /* steps done in all (the checkpoint's step when interrupted) */
    long steps_run;             /* steps done by this run */
    double train_s;             /* wall time of this run's training loop */
    double samples_per_s;
    double comm_s;              /* several processes: mean seconds per step in the gradient and loss sums */
    int interrupted;            /* stop flag: a checkpoint was written, no model file */
    int calibrated;             /* thresholds set (val_fraction > 0) */
    int threshold_is_max;       /* the image threshold is the highest held-out good score: with n held
                                   out, a false-reject rate below 1/n cannot be set (n * false_reject < 1) */
    float image_threshold, pixel_threshold;
    float review_lo, review_hi; /* the three-way decision's band (both 0: none) */
    int validated;              /* at least one validation ran */
    dd_val_metrics final_val;   /* validation of the last weights */
    double final_score, best_score;
    long best_step;             /* step of the best validation */
    int used_best;              /* the model file holds the best-validated weights, not the last */
    /* level_grid: every pair scored on the validation after training (the model's own first),
     * its val score, and the pair the model file got (the first with the highest score) */
    int n_levels;
    int levels[DD_MAX_LEVEL_PAIRS + 1][2];
    double level_scores[DD_MAX_LEVEL_PAIRS + 1];
    int t_s, t_b;               /* the inference levels saved (with or without a choice) */
    double levels_s;            /* wall time of the choice */
} dd_train_result;

typedef struct dd_trainer dd_trainer;

void dd_trainer_opts_init(dd_trainer_opts *o);

/* Opens the data, splits it, builds the model (fresh from seed, from --init or
 * from the checkpoint), the feeder and the validator, and opens the log. Every
 * check happens before anything is written, so a failed create leaves existing
 * files as they were:
 * - the settings, and the init or resume file;
 * - every training image decodes (skip_bad 0: refused naming the first that does
 *   not; skip_bad 1: those are left out of training and of the held-out images,
 *   and listed in the info);
 * - the outputs (the model file, <out>.ckpt, <out>.best, the log) are not folders
 *   or other non-regular files, a temporary file can be created in their folders,
 *   and the model folder has room for the model file and, with checkpoint_every
 *   > 0, a checkpoint;
 * - with val_fraction > 0, at least 2 good images;
 * - a resumed checkpoint's batch, data folder and training-image count (keys
 *   train_batch, train_data, train_images) are this run's.
 * s is copied. */
int dd_trainer_create(const dd_settings *s, const dd_trainer_opts *o, dd_trainer **out,
                      dd_error *err);
const dd_trainer_info *dd_trainer_get_info(const dd_trainer *t);

/* Trains until `steps`, the time budget or the stop flag. On stop: writes the
 * checkpoint and returns DD_OK with res->interrupted = 1. Otherwise calibrates
 * the weights the model gets (the EMA or best-validated ones when those are on)
 * on the held-out images, writes the model file once, atomically, with the
 * thresholds, and removes the checkpoint and <out>.best. A failed calibration
 * writes the checkpoint instead and no model file. Call once. */
int dd_trainer_run(dd_trainer *t, dd_train_result *res, dd_error *err);

/* Asks a running dd_trainer_run to stop after the current step (async-signal-safe). */
void dd_trainer_request_stop(dd_trainer *t);

/* The training model (its params are the last weights, not the EMA) and the
 * weights the model file gets (the EMA block when on, else the params). */
const dd_model *dd_trainer_model(const dd_trainer *t);
const float *dd_trainer_weights(const dd_trainer *t);

/* Learning-rate factor of step (0-based) for the schedule: linear warm-up over
 * `warmup` steps, then 1 (constant), a cosine from 1 to min_ratio reached at the
 * last step (horizon - 1), or (wsd) 1 until the last decay_share × horizon steps
 * and a straight line from 1 down to min_ratio over them, reached at the last step. */
float dd_lr_factor(int schedule, long step, float warmup, long horizon, float min_ratio, float decay_share);

void dd_trainer_free(dd_trainer *t);

#endif
