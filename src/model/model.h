/* model.h — owns a whole DiffusionAD model: configuration, the two networks over
 * one parameter table (denoiser "unet.*" in optimiser group 0, segmentation
 * "seg.*" in group 1), the schedule, the activation arena and the joint
 * training step of docs/method.md §6, plus single-image inference (§1, §3).
 * One model object is built for one batch size and mode (training or inference). */
#ifndef DD_MODEL_H
#define DD_MODEL_H

#include <stdint.h>

#include "nn/adam.h"
#include "core/arena.h"
#include "core/limits.h"
#include "model/diffusion.h"
#include "model/roi.h"
#include "backend/backend.h"
#include "core/rng.h"
#include "nn/segnet.h"
#include "nn/unet.h"

#define DD_FORMAT_VERSION 1
/* Seed of the inference noise when the caller gives none (diffad_params_init's
 * default), so calibration scores images exactly as predict does. */
#define DD_PREDICT_SEED 0x5EEDULL

typedef struct dd_model_config {
    dd_unet_config unet;
    int seg_width;          /* 64 in the paper */
    int T;                  /* 1000 */
    int t_s, t_b;           /* inference noise levels: 200, 400 */
    float guide_w;          /* 1 */
    int train_ts_max;       /* t_s ~ U{0..299} */
    int train_tb_min;       /* t_b ~ U{300..T-1} */
    int train_ts_min;       /* lower end of t_s (0 in the paper) */
    int train_tb_max;       /* upper end of t_b; 0: T-1 (the paper) */
    float snr_gamma;        /* Min-SNR-gamma weighting of the noise loss: each sample's MSE
                               at timestep t times min(SNR_t, gamma) / SNR_t, SNR_t =
                               abar_t / (1 - abar_t) (docs/method.md §6); 0: off (the paper) */
    int grey_noise;         /* 1: one noise value per pixel for all 3 channels (grey data stays
                               grey when noised); 0: per channel (the paper); -1 (a setting
                               only): the trainer decides from the training images */
    float tile_scale;       /* working scale of an image (docs/method.md §11): 0 fit the whole
                               image to the model size (the paper); f > 0 resize by f (1 =
                               native) and cover it with overlapping model-size tiles (crops in
                               training); -1 (a setting only): the trainer decides (1 when every
                               training image is at least the model size, else 0) */
    float tile_overlap;     /* tiled inference: overlap of neighbouring tiles, share of a tile (0.25) */
    float lr_unet, lr_seg;  /* 1e-4, 1e-5 (paper) */
    float clip_norm;        /* <= 0: off */
    float focal_weight, focal_alpha, focal_gamma, smoothl1_beta; /* 5, 0.5, 4, 1 */
    int topk;               /* image score = mean of the top-k map values; 0: scale 50 by area */
    float map_sigma;        /* the stitched anomaly map smoothed by a Gaussian of this sigma
                               (working pixels) before the score, the regions and the pixel
                               map (infer/scorer.h); 0: off (the paper) */
    dd_conv_algo conv_algo;
    dd_precision precision; /* convolution arithmetic: auto (bf16 where the CPU has it), f32, bf16 */
    /* calibrated on good validation images (0 = not calibrated) */
    float image_threshold, pixel_threshold;
    float score_lo, score_hi; /* normalisation: (score - lo) / (hi - lo), threshold maps to 0.5 */
    /* defect regions (8-connected groups of map pixels above pixel_threshold; eval/regions.h) */
    long min_area;          /* pixels at the input size: smaller regions are ignored, and an image
                               is NG only with one region this large (0: every region counts) */
    int max_regions;        /* regions reported per image, largest peak first (16) */
    float mm_per_pixel;     /* > 0: areas also in mm^2; 0 unknown */
    /* three-way decision (OK / REVIEW / NG): images scoring in (review_lo, review_hi] go to a
     * person; review is the share of good calibration images the band was set to take below the
     * threshold (0: off, the two-way decision). Set by calibration (dd_calibrate_review). */
    float review, review_lo, review_hi;
} dd_model_config;

#define DD_MAX_AREA (1L << 28)     /* min_area range 0..DD_MAX_AREA (the largest image's pixels) */
#define DD_MAX_REGIONS 1024        /* max_regions range 0..DD_MAX_REGIONS */
#define DD_MAX_MM_PER_PIXEL 1000.0 /* mm_per_pixel range 0..DD_MAX_MM_PER_PIXEL */
#define DD_MAX_MAP_SIGMA 64.0      /* map_sigma range 0..DD_MAX_MAP_SIGMA working pixels */

/* The paper's published configuration at h x w (docs/method.md §4-5). */
void dd_model_config_paper(dd_model_config *c, int h, int w);
int dd_model_config_check(const dd_model_config *c, dd_error *err);
/* The region keys' ranges (part of dd_model_config_check; also the API's override check):
 * DD_E_RANGE naming the key, the message starting with `prefix`. */
int dd_model_check_regions(long min_area, int max_regions, float mm_per_pixel, const char *prefix, dd_error *err);
/* The review band's check (part of dd_model_config_check; also the API's override check): both
 * finite, lo <= hi (lo == hi: no band). DD_E_RANGE naming the key, the message starting with prefix. */
int dd_model_check_review(float review_lo, float review_hi, const char *prefix, dd_error *err);
/* Top-k for a map of h x w: cfg topk or round(50 * h * w / 65536), at least 1. */
int dd_model_topk(const dd_model_config *c);

typedef struct dd_model {
    dd_model_config cfg;
    dd_params params;
    dd_unet unet;
    dd_segnet seg;
    dd_schedule sched;
    dd_engine *eng;
    dd_arena arena;
    int batch, training;
    dd_adam adam;
    /* step / inference buffers (arena) */
    float *x_in;      /* [2B,H,W,3]: x_ts for each sample, then x_tb */
    float *noise;     /* [2B,H,W,3]: eps_s, then eps_b */
    float *x0_hat;    /* [B,H,W,3] */
    float *seg_in;    /* [B,H,W,6] */
    float *dseg_in, *dx0_hat, *de, *dmask; /* training */
    int *tvec;        /* [2B] */
    /* data-parallel part (dd_model_forward_backward_part): the losses are this batch's
     * share of a global batch of part_global samples with part_normal normal ones (0: the
     * batch is the whole) */
    int part_global, part_normal;
    double ms_unet, ms_seg; /* wall time of the last forward's two parts */
    dd_roi roi;       /* region of interest (model file tensor "roi.mask"; none: mask NULL), owned;
                         the scorer applies it (infer/scorer.h), the networks never see it */
} dd_model;

typedef struct dd_step_stats {
    double loss, noise, focal, smoothl1, grad_norm;
    int normal_count;
} dd_step_stats;

/* Build a model for `batch` images; training allocates gradients, Adam state and
 * the saved activations. threads <= 0: OpenMP default. */
int dd_model_create(const dd_model_config *cfg, int batch, int training, int threads,
                    dd_model **out, dd_error *err);
/* The same on a given backend (NULL: "cpu"); e.g. bench/op_profile.h's timing wrapper. */
int dd_model_create_on(const dd_backend *be, const dd_model_config *cfg, int batch, int training,
                       int threads, dd_model **out, dd_error *err);
void dd_model_free(dd_model *m);
/* Samples per denoiser pass of a model (nn/unet.h "Passes"): 2 * batch in training and
 * with Winograd convolutions (f32), else batch (the t_s pass, then the t_b pass). */
int dd_model_denoiser_chunk(const dd_model_config *cfg, int batch, int training, const dd_engine *e);
/* Frees the activation arena of a model that will not run again (a finished training
 * run before it calibrates with a model of its own): parameters, gradients, Adam state
 * and settings stay, for saving. Every later forward, step or inference fails with
 * DD_E_INVALID. */
void dd_model_free_activations(dd_model *m);
/* PyTorch-default initialisation from a seed. */
void dd_model_init_weights(dd_model *m, uint64_t seed);
/* Bytes: parameters (+ gradients + Adam), arena, oneDNN scratch (with the frozen weights). */
size_t dd_model_memory(const dd_model *m);
/* An inference model whose weights will not change again (a loaded model file):
 * its convolutions keep their converted weights (when they fit in DD_FROZEN_WEIGHTS_CAP
 * bytes: the CPU profile's do, the paper configuration's do not; counted by
 * dd_model_memory) instead of converting them on every inference.
 * Never on a model that trains, validates or takes weights copied in later. */
#define DD_FROZEN_WEIGHTS_CAP ((size_t)64 << 20)
int dd_model_freeze_weights(dd_model *m, dd_error *err);
/* The convolution arithmetic the model runs (resolved: DD_PREC_F32 or DD_PREC_BF16). */
dd_precision dd_model_precision(const dd_model *m);
/* Parameter count of the group (0 denoiser, 1 segmentation), trainable only. */
size_t dd_model_param_count(const dd_model *m, int group);

/* The joint training step of docs/method.md §6 comes in two calls so that a hook
 * (gradient all-reduce, accumulation, ...) can sit between them:
 *
 * dd_model_forward_backward_with: zero the gradients, forward, losses, backward;
 * gradients end in m->params.grad, the loss terms in *st (grad_norm is left 0:
 * dd_model_update reports it). Timesteps and noise are given (ts, tb [B]; eps
 * [2B,H,W,3]: eps_s then eps_b). images [B,H,W,3] in [0,1], masks [B,H,W] in
 * {0,1}, labels [B] (0 normal). A non-finite loss is an error (no backward). */
int dd_model_forward_backward_with(dd_model *m, const float *images, const float *masks,
                                   const int *labels, const int *ts, const int *tb, const float *eps,
                                   dd_step_stats *st, dd_error *err);
/* The same with timesteps and noise drawn from r (docs/method.md §6). */
int dd_model_forward_backward(dd_model *m, const float *images, const float *masks,
                              const int *labels, dd_rng *r, dd_step_stats *st, dd_error *err);
/* One Adam update from the gradients in m->params.grad with these learning rates
 * (denoiser, segmentation); the pre-clipping gradient norm into *grad_norm (may be NULL). */
int dd_model_update(dd_model *m, float lr_unet, float lr_seg, double *grad_norm, dd_error *err);
/* Updates taken so far (Adam's step counter, which its bias correction uses); set on resume. */
long dd_model_updates(const dd_model *m);
void dd_model_set_updates(dd_model *m, long step);

/* One part of a data-parallel step (docs/training.md "Several processes"): this model's
 * batch is samples [offset, offset + batch) of a global batch of global_batch samples
 * with global_normal normal ones in all. Timesteps and noise are drawn from r for the
 * whole global batch in dd_model_forward_backward's order and this part's slice is used;
 * every loss term is this part's share of the global loss (focal and SmoothL1 scaled by
 * batch / global_batch, the noise loss divided by global_normal), so gradients and loss
 * terms summed over the parts are the global step's. dd_model_forward_backward is the
 * part (offset 0, global_batch = batch, global_normal = its own count). */
int dd_model_forward_backward_part(dd_model *m, const float *images, const float *masks,
                                   const int *labels, dd_rng *r, int offset, int global_batch,
                                   int global_normal, dd_step_stats *st, dd_error *err);

/* forward_backward + update at the learning rates in m->adam.lr (the fused step
 * the reference tests use). */
int dd_model_train_step_with(dd_model *m, const float *images, const float *masks,
                             const int *labels, const int *ts, const int *tb, const float *eps,
                             dd_step_stats *st, dd_error *err);
int dd_model_train_step(dd_model *m, const float *images, const float *masks, const int *labels,
                        dd_rng *r, dd_step_stats *st, dd_error *err);
/* Forward only (no update), for the reference test: fills x0_hat, seg mask, stats. */
int dd_model_forward_with(dd_model *m, const float *images, const float *masks, const int *labels,
                          const int *ts, const int *tb, const float *eps, dd_step_stats *st,
                          dd_error *err);

/* Standard normal noise for n_images [H,W,3] images into eps, in the one order every
 * caller (training step, predict, validation, calibration) uses: per channel, or with
 * grey_noise == 1 one value per pixel copied to the 3 channels. */
void dd_model_draw_noise(const dd_model_config *c, dd_rng *r, float *eps, size_t n_images);

/* Inference on B images [B,H,W,3] at the configured t_s, t_b, w, with noise from
 * (seed): anomaly maps [B,H,W] into map (may be NULL: read m->seg.mask), the
 * reconstructions into recon [B,H,W,3] (may be NULL: m->x0_hat). */
int dd_model_infer(dd_model *m, const float *images, uint64_t seed, float *map, float *recon,
                   dd_error *err);
/* The same with given noise eps [2B,H,W,3] (eps_s for each image, then eps_b). */
int dd_model_infer_with(dd_model *m, const float *images, const float *eps, float *map,
                        float *recon, dd_error *err);

#endif
