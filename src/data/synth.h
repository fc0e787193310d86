/* synth.h — owns the synthetic-anomaly generator that feeds training
 * (docs/method.md §7).
 *
 * A sample is a pure function of (seed, index) and the training item: one
 * dd_rng seeded by dd_rng_seed2(seed, index) draws, in this order, normal
 * or not; the foreground region (random-region mode only); the Perlin mask
 * (redrawn until non-empty inside the foreground, at most max_tries); the
 * anomaly source (self-augmentation or texture, which texture, which three
 * augmentations and their parameters); and beta. Worker threads therefore
 * cannot change a sample. The blend: S = M*(beta*N + (1-beta)*A) + (1-M)*N.
 *
 * Crops (work_scale > 0): the image is resized by work_scale instead (each side
 * at least the model's) and each sample takes an H x W crop at a position drawn
 * from (seed ^ tag, index), then the defect is pasted into the crop as above.
 *
 * Training images are decoded once, resized to H x W (or the working size) and kept in memory as
 * 16-bit values (up to cache_mb; beyond it they are decoded again on each
 * use, after the same 16-bit rounding, so the cache never changes a sample).
 * Texture images are decoded once at creation, resized (or tiled, when
 * smaller than half the model size in both directions, as tileable
 * patterns are) and kept as 8-bit.
 *
 * Foreground: a user-supplied mask (dataset item fg_path, e.g.
 * <category>/foreground/<stem>.png) is used whenever present, unless fg_mode
 * is DD_FG_NONE. Otherwise DD_FG_AUTO means the estimate (foreground.h) in
 * object mode and the whole image in texture mode.
 *
 * Beyond the paper (off by default): large_mask_prob draws, with that
 * probability, a mask from low-frequency noise (periods 2^0..2^2) with a
 * lower threshold (U(0.2, 0.5)), i.e. large smooth regions, which small
 * Perlin blobs never produce (docs/training.md, finding 4); beta_min/beta_max can widen the
 * blend range for softer, low-contrast defects; stroke_mask_prob draws, with that
 * probability (before the large-mask draw, which it then skips), a mask of thin curves
 * (stroke.h); shift_source_prob takes, with that probability (drawn before the
 * self/texture choice), the part itself displaced as the anomaly source;
 * intensity_source_prob takes, with that probability (drawn first, and only on parts that are
 * not binary), the part itself made darker or lighter as the source: an intensity-only defect
 * (stain, discolouration, a large low-contrast region) with the part's own structure. */
#ifndef DD_SYNTH_H
#define DD_SYNTH_H

#include <stdint.h>

#include "data/dataset.h"
#include "core/status.h"

enum { DD_SYNTH_OBJECT = 0, DD_SYNTH_TEXTURE = 1 };
enum { DD_FG_AUTO = 0, DD_FG_NONE, DD_FG_ESTIMATE, DD_FG_RANDOM };
/* Their names, indexed by value, NULL-terminated ("object", "texture"; "auto",
 * "none", "estimate", "random"): the one spelling for settings and options. */
extern const char *const dd_synth_mode_names[];
extern const char *const dd_fg_mode_names[];

typedef struct dd_synth_config {
    int h, w;                 /* model size (256 x 256) */
    float normal_prob;        /* share of untouched samples (0.5) */
    int mode;                 /* DD_SYNTH_OBJECT or DD_SYNTH_TEXTURE (object) */
    int fg_mode;              /* DD_FG_* (auto) */
    const char *texture_dir;  /* folder (searched recursively) of anomaly-source
                                 images; NULL = built-in procedural textures */
    int max_textures;         /* 0 = all; else an evenly spaced subset */
    int perlin_scale_min;     /* a, b ~ U{min..max}, periods 2^a x 2^b (0, 5) */
    int perlin_scale_max;
    float perlin_threshold;   /* 0.5 */
    float rotate_max_deg;     /* noise rotation U(-max, max) (90) */
    int max_tries;            /* non-empty mask retries (50) */
    float beta_min, beta_max; /* blend weight of the normal image (0.2, 0.8) */
    float self_aug_prob;      /* object mode: share of self-augmented sources (0.5) */
    float large_mask_prob;    /* extension, see above (0 = paper) */
    int binary_changed_mask;  /* binary parts only: 1 = the ground-truth mask keeps only the pixels
                                 the paste changed (thresholding keeps many of the region's pixels
                                 as they were, so the whole region is a noisy label); 0 = the whole
                                 Perlin region (the paper). A paste that changed nothing is an
                                 honestly labelled normal sample. */
    float stroke_mask_prob;   /* share of defects whose mask is thin strokes (stroke.h:
                                 scratches, cuts, bridges, spots) instead of Perlin blobs
                                 (0 = paper) */
    float shift_source_prob;  /* share of defects whose source is the part itself displaced by up to
                                 a quarter of each side (moved, missing or doubled structure,
                                 e.g. PCB traces); 0 = paper */
    float intensity_source_prob; /* share of defects whose source is the part itself darker or
                                 lighter (gain and offset of one sign, all channels alike; not on
                                 binary parts, whose pastes are thresholded); 0 = paper */
    long cache_mb;            /* memory for resized training images (1024) */
    float work_scale;         /* 0: each training image resized to h x w (the paper); f > 0:
                                 resized by f (each side at least h, w) and a random h x w
                                 crop taken per sample, the defect pasted into the crop */
} dd_synth_config;

void dd_synth_config_init(dd_synth_config *cfg);

typedef struct dd_synth dd_synth;

/* ds may be NULL when only dd_synth_apply() is used. Loads the textures
 * (errors name the offending file). cfg is copied (texture_dir too). */
int dd_synth_create(const dd_dataset *ds, const dd_synth_config *cfg, dd_synth **out,
                    dd_error *err);
void dd_synth_free(dd_synth *s);

const dd_synth_config *dd_synth_config_of(const dd_synth *s);
int dd_synth_n_textures(const dd_synth *s);

enum { DD_SRC_NONE = 0, DD_SRC_TEXTURE, DD_SRC_PROCEDURAL, DD_SRC_SELF, DD_SRC_SHIFT, DD_SRC_INTENSITY };

typedef struct dd_synth_info {
    int anomalous;      /* 1 if a defect was pasted */
    int source;         /* DD_SRC_* */
    int texture;        /* texture index or procedural kind (DD_SRC_SHIFT: the displacement
                           |dy| + |dx| in pixels; DD_SRC_INTENSITY: the change in 1/1000 of
                           full scale, signed: -500 .. 500); -1 if none */
    int aug[3];         /* the three augmentations (augment.h kinds), -1 if none */
    int tries;          /* Perlin draws used */
    float beta;
    long mask_pixels;
} dd_synth_info;

/* One sample from training item `item` (index into ds->train):
 * img h*w*3, mask h*w ({0,1}), *label (0 or 1); source (optional, h*w*3) gets
 * the augmented anomaly source (zeros for a normal sample); info optional.
 * Thread-safe: any number of threads may call it on one dd_synth. */
int dd_synth_sample(dd_synth *s, int item, uint64_t seed, uint64_t index, float *img,
                    float *mask, float *label, float *source, dd_synth_info *info,
                    dd_error *err);

/* Same on a caller-given normal image (h*w*3) and foreground (h*w bytes,
 * NULL = whole image; ignored in DD_FG_NONE / DD_FG_RANDOM modes). */
int dd_synth_apply(dd_synth *s, const float *normal, const uint8_t *fg, uint64_t seed,
                   uint64_t index, float *img, float *mask, float *label, float *source,
                   dd_synth_info *info, dd_error *err);

/* The foreground mask item `item` uses (h*w bytes; all ones when none
 * applies; random-region mode draws per sample and reports all ones here).
 * With work_scale > 0: the foreground of the crop that sample (0, 0) takes. */
int dd_synth_foreground(dd_synth *s, int item, uint8_t *fg, dd_error *err);

/* The normal (defect-free) model-size image sample (seed, index) of the item starts
 * from: the whole item in fit mode, its crop with work_scale > 0 (img h*w*3). */
int dd_synth_normal(dd_synth *s, int item, uint64_t seed, uint64_t index, float *img, dd_error *err);

#endif
