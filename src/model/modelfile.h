/* modelfile.h — owns the model file: safetensors (8-byte little-endian header
 * length, JSON header, raw little-endian tensor data) with the reference's
 * PyTorch state_dict names ("unet.*", "seg.*"), and in "__metadata__" the format
 * name and version, the whole model config (thresholds and normalisation
 * included), and for checkpoints the training state. A checkpoint also holds the
 * Adam moments as "adam_m.<name>" / "adam_v.<name>" and, when the run keeps an
 * exponential moving average of the weights, that copy as "ema.<name>". A model with a
 * region of interest (m->roi, model/roi.h) stores it last, as the U8 tensor "roi.mask"
 * [h, w] of 0/1 values; loading reads it into m->roi (a file without one loads as "no ROI")
 * and refuses a mis-typed, mis-shaped, truncated, non-binary or all-zero one.
 *
 * Writing goes through the atomic writer (core/fileio.h): a fresh temporary
 * file next to <path>, renamed over it only when complete, so a crash never
 * leaves a broken file and a planted symlink is never written through. Reading checks every size, offset, name,
 * shape and dtype, and names the file and the problem when anything is off: a
 * path that is not a regular file (a FIFO is refused without blocking on it), a
 * header key listed twice, two tensors whose data_offsets overlap. */
#ifndef DD_MODELFILE_H
#define DD_MODELFILE_H

#include "model/model.h"

#define DD_MODEL_FORMAT "diffad"
#define DD_HEADER_MAX (64u << 20) /* largest JSON header accepted */

typedef struct dd_kv {
    const char *key, *value;
} dd_kv;

/* Save parameters (and, with_optimizer, the Adam moments) plus metadata. extra:
 * n_extra additional metadata strings (e.g. training state). */
int dd_model_save(const dd_model *m, const char *path, int with_optimizer, const dd_kv *extra,
                  int n_extra, dd_error *err);

#define DD_EMA_PREFIX "ema."

typedef struct dd_save_opts {
    const float *values;  /* the weights to save (same layout as m->params.value); NULL: m's own */
    int with_optimizer;   /* also the Adam moments (checkpoints) */
    const float *ema;     /* non-NULL: also this block as DD_EMA_PREFIX "<name>" (checkpoints) */
    const dd_kv *extra;   /* additional metadata strings */
    int n_extra;
} dd_save_opts;
/* dd_model_save with a choice of weights and the EMA block. */
int dd_model_save_ex(const dd_model *m, const char *path, const dd_save_opts *o, dd_error *err);

/* Read one block of tensors "<prefix><name>" for every parameter of m into dst
 * (same layout as m->params.value), checking each shape; prefix "" reads the
 * weights themselves. m's config is not compared (the caller checks what must
 * match). found != NULL: an absent block sets *found = 0 and is not an error. */
int dd_model_read_block(const char *path, const dd_model *m, const char *prefix, float *dst,
                        int *found, dd_error *err);

/* Read only the header: the model config and (optionally) one metadata value.
 * meta_key may be NULL; *meta_value is malloc'ed (NULL when absent). */
int dd_model_file_config(const char *path, dd_model_config *cfg, const char *meta_key,
                         char **meta_value, dd_error *err);

/* Create a model from a file for `batch` images (training: with optimiser state
 * when the file has it). */
int dd_model_load(const char *path, int batch, int training, int threads, dd_model **out,
                  dd_error *err);
/* The same in another convolution precision (a dd_precision; < 0: the file's setting). */
int dd_model_load_at(const char *path, int batch, int training, int threads, int precision,
                     dd_model **out, dd_error *err);
/* Load tensors into an existing model whose config matches the file's (the precision may
 * differ: the model keeps its own). */
int dd_model_load_into(dd_model *m, const char *path, int with_optimizer, dd_error *err);

#endif
