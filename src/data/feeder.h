/* feeder.h — owns the producer side of training: worker threads that build
 * batches of synthetic samples ahead of the training step.
 *
 * A ring of preallocated batch buffers (n_workers + 2 of them) is filled by
 * pthreads; dd_feeder_next() hands out the next batch in order. The stream is
 * deterministic: sample p of the run (p = batch * B + j; for a part of a global
 * batch, p = batch * B_global + offset + j) is training item
 * perm_e[p mod n] of epoch e = p / n, where perm_e is a shuffle of the index
 * list seeded by (seed, e), and its synthetic defect is drawn from
 * dd_rng_seed2(seed, p). Batches may straddle an epoch boundary; the same
 * seed gives the same batches for any number of workers (0 = produce on the
 * caller's thread). */
#ifndef DD_FEEDER_H
#define DD_FEEDER_H

#include <stdint.h>

#include "data/dataset.h"
#include "core/limits.h"
#include "core/status.h"
#include "data/synth.h"

typedef struct dd_batch {
    int n, h, w;     /* samples, model size */
    float *images;   /* n x h x w x 3, channels-last, [0, 1] */
    float *masks;    /* n x h x w, {0, 1} */
    float *labels;   /* n, 0 normal / 1 synthetic anomaly */
    int *items;      /* n, index into ds->train of each sample's image */
    long index;      /* batch number, from 0 */
    long epoch;      /* epoch of the batch's first sample */
} dd_batch;

typedef struct dd_feeder dd_feeder;

/* indices: the training items to use (e.g. the train part of
 * dd_dataset_split_train); NULL = all of ds->train. The list is copied; ds
 * must outlive the feeder. n_workers: 0..64 threads. */
int dd_feeder_create(const dd_dataset *ds, const int *indices, int n_indices,
                     const dd_synth_config *cfg, int batch, int n_workers, uint64_t seed,
                     dd_feeder **out, dd_error *err);

/* The same, with the stream starting at batch `start_batch` (to resume a run). */
int dd_feeder_create_at(const dd_dataset *ds, const int *indices, int n_indices,
                        const dd_synth_config *cfg, int batch, int n_workers, uint64_t seed,
                        long start_batch, dd_feeder **out, dd_error *err);

/* A part of each batch, for data-parallel training: this feeder produces samples
 * [offset, offset + batch) of every global batch of global_batch samples (sample p =
 * k * global_batch + offset + j), so the union over the parts is the batch one feeder of
 * global_batch would make. dd_feeder_create_at is the whole (offset 0, global = batch). */
int dd_feeder_create_part(const dd_dataset *ds, const int *indices, int n_indices,
                          const dd_synth_config *cfg, int batch, int offset, int global_batch, int n_workers,
                          uint64_t seed, long start_batch, dd_feeder **out, dd_error *err);

/* The next batch; its buffers stay valid until the next call or
 * dd_feeder_free. A worker's error (e.g. an unreadable image) is returned
 * here, with its message. */
int dd_feeder_next(dd_feeder *f, dd_batch *b, dd_error *err);

/* Stops and joins the workers, frees everything. */
void dd_feeder_free(dd_feeder *f);

/* The feeder's synthesiser (e.g. for dd_synth_n_textures). */
dd_synth *dd_feeder_synth(dd_feeder *f);

#endif
