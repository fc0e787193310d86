/* feeder.c — threaded batch producer (see feeder.h). */
#include "data/feeder.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

/* Seeds of epoch shuffles are kept apart from sample seeds. */
#define PERM_SALT 0x5045524D5F534C54ull

typedef struct {
    float *images, *masks, *labels;
    int *items;
    long ready; /* batch number + 1 once filled, 0 while empty */
} slot;

typedef struct {
    int *perm;  /* shuffled index list of epoch `epoch` */
    long epoch; /* -1: none yet */
} perm_cache;

struct dd_feeder {
    const dd_dataset *ds;
    dd_synth *synth;
    int *idx, n_idx, batch, n_workers, n_slots, h, w;
    int global_batch, offset; /* this feeder's samples are [offset, offset + batch) of each global batch */
    uint64_t seed;
    slot *slots;
    pthread_t *threads;
    int n_threads;
    perm_cache sync_perm; /* for n_workers == 0 */
    pthread_mutex_t mu;
    pthread_cond_t cv_space, cv_ready;
    long next_prod, next_cons, released;
    int holding, stop;
    int err_code;
    dd_error err;
};

dd_synth *dd_feeder_synth(dd_feeder *f) { return f->synth; }

static void make_perm(const dd_feeder *f, long epoch, perm_cache *pc) {
    if (pc->epoch == epoch) return;
    memcpy(pc->perm, f->idx, sizeof(int) * (size_t)f->n_idx);
    dd_rng r;
    dd_rng_seed2(&r, f->seed ^ PERM_SALT, (uint64_t)epoch);
    for (int i = f->n_idx - 1; i > 0; i--) {
        int j = (int)dd_rng_int(&r, 0, i);
        int t = pc->perm[i];
        pc->perm[i] = pc->perm[j];
        pc->perm[j] = t;
    }
    pc->epoch = epoch;
}

static int fill(dd_feeder *f, long k, slot *s, perm_cache *pc, dd_error *err) {
    size_t hw = (size_t)f->h * f->w;
    for (int j = 0; j < f->batch; j++) {
        long p = k * f->global_batch + f->offset + j;
        make_perm(f, p / f->n_idx, pc);
        int item = pc->perm[p % f->n_idx];
        s->items[j] = item;
        int rc = dd_synth_sample(f->synth, item, f->seed, (uint64_t)p, s->images + hw * 3 * j,
                                 s->masks + hw * j, s->labels + j, NULL, NULL, err);
        if (rc) return rc;
    }
    return DD_OK;
}

static void *worker(void *arg) {
    dd_feeder *f = arg;
    perm_cache pc = {malloc(sizeof(int) * (size_t)f->n_idx), -1};
    pthread_mutex_lock(&f->mu);
    if (!pc.perm && !f->err_code) {
        f->err_code = dd_fail(&f->err, DD_E_NOMEM, "feeder: no memory in worker");
        f->stop = 1;
        pthread_cond_broadcast(&f->cv_ready);
    }
    while (!f->stop) {
        if (f->next_prod >= f->released + f->n_slots) {
            pthread_cond_wait(&f->cv_space, &f->mu);
            continue;
        }
        long k = f->next_prod++;
        slot *s = &f->slots[k % f->n_slots];
        pthread_mutex_unlock(&f->mu);
        dd_error e = {0};
        int rc = fill(f, k, s, &pc, &e);
        pthread_mutex_lock(&f->mu);
        if (rc) {
            if (!f->err_code) {
                f->err_code = rc;
                f->err = e;
            }
            f->stop = 1;
            pthread_cond_broadcast(&f->cv_space);
        } else {
            s->ready = k + 1;
        }
        pthread_cond_broadcast(&f->cv_ready);
    }
    pthread_mutex_unlock(&f->mu);
    free(pc.perm);
    return NULL;
}

void dd_feeder_free(dd_feeder *f) {
    if (!f) return;
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    pthread_cond_broadcast(&f->cv_space);
    pthread_cond_broadcast(&f->cv_ready);
    pthread_mutex_unlock(&f->mu);
    for (int i = 0; i < f->n_threads; i++) pthread_join(f->threads[i], NULL);
    free(f->threads);
    if (f->slots)
        for (int i = 0; i < f->n_slots; i++) {
            free(f->slots[i].images);
            free(f->slots[i].masks);
            free(f->slots[i].labels);
            free(f->slots[i].items);
        }
    free(f->slots);
    free(f->sync_perm.perm);
    free(f->idx);
    dd_synth_free(f->synth);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv_space);
    pthread_cond_destroy(&f->cv_ready);
    free(f);
}

int dd_feeder_create(const dd_dataset *ds, const int *indices, int n_indices,
                     const dd_synth_config *cfg, int batch, int n_workers, uint64_t seed,
                     dd_feeder **out, dd_error *err) {
    return dd_feeder_create_at(ds, indices, n_indices, cfg, batch, n_workers, seed, 0, out, err);
}

int dd_feeder_create_at(const dd_dataset *ds, const int *indices, int n_indices,
                        const dd_synth_config *cfg, int batch, int n_workers, uint64_t seed,
                        long start_batch, dd_feeder **out, dd_error *err) {
    return dd_feeder_create_part(ds, indices, n_indices, cfg, batch, 0, batch, n_workers, seed, start_batch, out, err);
}

int dd_feeder_create_part(const dd_dataset *ds, const int *indices, int n_indices,
                          const dd_synth_config *cfg, int batch, int offset, int global_batch, int n_workers,
                          uint64_t seed, long start_batch, dd_feeder **out, dd_error *err) {
    *out = NULL;
    if (offset < 0 || global_batch < batch || offset > global_batch - batch)
        return dd_fail(err, DD_E_RANGE, "feeder: part [%d, %d) is not inside a global batch of %d", offset,
                       offset + batch, global_batch);
    if (start_batch < 0) return dd_fail(err, DD_E_RANGE, "feeder: negative start batch %ld", start_batch);
    if (!ds || !cfg) return dd_fail(err, DD_E_INVALID, "feeder: no dataset or config");
    if (batch < 1 || batch > DD_MAX_BATCH)
        return dd_fail(err, DD_E_RANGE, "feeder: batch size %d not in 1..%d", batch, DD_MAX_BATCH);
    if (n_workers < 0 || n_workers > 64)
        return dd_fail(err, DD_E_RANGE, "feeder: %d workers not in 0..64", n_workers);
    int n = indices ? n_indices : ds->n_train;
    if (n < 1) return dd_fail(err, DD_E_INVALID, "feeder: no training items to draw from");
    for (int i = 0; indices && i < n; i++)
        if (indices[i] < 0 || indices[i] >= ds->n_train)
            return dd_fail(err, DD_E_RANGE, "feeder: index %d out of range (0..%d)", indices[i],
                           ds->n_train - 1);
    dd_feeder *f = calloc(1, sizeof *f);
    if (!f) return dd_fail(err, DD_E_NOMEM, "feeder: no memory");
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv_space, NULL);
    pthread_cond_init(&f->cv_ready, NULL);
    f->ds = ds;
    f->n_idx = n;
    f->batch = batch;
    f->global_batch = global_batch, f->offset = offset;
    f->n_workers = n_workers;
    f->seed = seed;
    f->h = cfg->h;
    f->w = cfg->w;
    f->n_slots = n_workers > 0 ? n_workers + 2 : 1;
    f->sync_perm.epoch = -1;
    /* Batches are a pure function of (seed, batch number): resuming just starts later. */
    f->next_prod = f->next_cons = f->released = start_batch;
    int rc = dd_synth_create(ds, cfg, &f->synth, err);
    if (rc) {
        dd_feeder_free(f);
        return rc;
    }
    f->idx = malloc(sizeof(int) * (size_t)n);
    f->sync_perm.perm = malloc(sizeof(int) * (size_t)n);
    f->slots = calloc((size_t)f->n_slots, sizeof(slot));
    if (!f->idx || !f->sync_perm.perm || !f->slots) {
        dd_feeder_free(f);
        return dd_fail(err, DD_E_NOMEM, "feeder: no memory");
    }
    for (int i = 0; i < n; i++) f->idx[i] = indices ? indices[i] : i;
    size_t hw = (size_t)f->h * f->w;
    for (int i = 0; i < f->n_slots; i++) {
        slot *s = &f->slots[i];
        s->images = malloc(sizeof(float) * hw * 3 * (size_t)batch);
        s->masks = malloc(sizeof(float) * hw * (size_t)batch);
        s->labels = malloc(sizeof(float) * (size_t)batch);
        s->items = malloc(sizeof(int) * (size_t)batch);
        if (!s->images || !s->masks || !s->labels || !s->items) {
            dd_feeder_free(f);
            return dd_fail(err, DD_E_NOMEM,
                           "feeder: no memory for %d batches of %d x %dx%d samples",
                           f->n_slots, batch, f->h, f->w);
        }
    }
    if (n_workers > 0) {
        f->threads = calloc((size_t)n_workers, sizeof(pthread_t));
        if (!f->threads) {
            dd_feeder_free(f);
            return dd_fail(err, DD_E_NOMEM, "feeder: no memory");
        }
        for (int i = 0; i < n_workers; i++) {
            if (pthread_create(&f->threads[i], NULL, worker, f) != 0) {
                dd_feeder_free(f);
                return dd_fail(err, DD_E_NOMEM, "feeder: cannot start worker thread %d", i);
            }
            f->n_threads = i + 1;
        }
    }
    *out = f;
    return DD_OK;
}

int dd_feeder_next(dd_feeder *f, dd_batch *b, dd_error *err) {
    if (!f || !b) return dd_fail(err, DD_E_INVALID, "feeder: NULL argument");
    memset(b, 0, sizeof *b);
    slot *s;
    long k;
    if (f->n_workers == 0) {
        if (f->err_code) return dd_fail(err, f->err_code, "%s", f->err.msg);
        k = f->next_cons;
        s = &f->slots[0];
        dd_error e = {0};
        int rc = fill(f, k, s, &f->sync_perm, &e);
        if (rc) {
            f->err_code = rc;
            f->err = e;
            return dd_fail(err, rc, "%s", e.msg);
        }
        f->next_cons++;
    } else {
        pthread_mutex_lock(&f->mu);
        if (f->holding) { /* the caller is done with the previous batch */
            f->released++;
            f->holding = 0;
            pthread_cond_broadcast(&f->cv_space);
        }
        k = f->next_cons;
        s = &f->slots[k % f->n_slots];
        while (s->ready != k + 1 && !f->err_code) pthread_cond_wait(&f->cv_ready, &f->mu);
        if (s->ready != k + 1) {
            int code = f->err_code;
            dd_fail(err, code, "%s", f->err.msg);
            pthread_mutex_unlock(&f->mu);
            return code;
        }
        s->ready = 0;
        f->next_cons++;
        f->holding = 1;
        pthread_mutex_unlock(&f->mu);
    }
    b->n = f->batch;
    b->h = f->h;
    b->w = f->w;
    b->images = s->images;
    b->masks = s->masks;
    b->labels = s->labels;
    b->items = s->items;
    b->index = k;
    b->epoch = (k * f->global_batch + f->offset) / f->n_idx;
    return DD_OK;
}
