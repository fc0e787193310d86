/* trainer.c — a training run (see trainer.h): set-up, the step loop with its
 * schedule, EMA, checkpoints, validation and log, and the final model file. */
#include "train/trainer.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "core/fileio.h"
#include "data/dataset.h"
#include "data/feeder.h"
#include "data/image.h"
#include "infer/roi_file.h"
#include "model/modelfile.h"
#include "eval/drift.h"
#include "train/calibrate.h"

#define PATH_CAP 4096

struct dd_trainer {
    dd_settings s;
    dd_trainer_opts o;
    char data[PATH_CAP], out[PATH_CAP], ckpt[PATH_CAP + 8], best[PATH_CAP + 8], log[PATH_CAP];
    char resume[PATH_CAP], init[PATH_CAP];
    char data_real[PATH_CAP];  /* the data folder, canonical (realpath): recorded in checkpoints */
    dd_trainer_info info;
    dd_dataset *ds;
    int n_listed;           /* ds->n_train as listed; undecodable images (skip_bad) sit after ds->n_train */
    char **skipped;         /* messages of the images left out, one per file */
    int n_skipped;
    int *tr, *val, ntr, nval;
    dd_model *m;
    dd_roi roi;             /* --roi, read at create; moved into m->roi once the model exists */
    dd_synth_config sc;
    dd_feeder *feeder;
    dd_validator *validator;
    FILE *logf;
    float *ema;             /* EMA of m->params.value (same layout), NULL when off */
    long start;             /* step the run starts from */
    double elapsed_before;  /* training-loop seconds of the earlier parts of a resumed run */
    long horizon;           /* the schedule's last step + 1: `steps`, or the budget's estimate */
    int val_on;             /* validation every val_every_min and at the end */
    int level_pairs[DD_MAX_LEVEL_PAIRS][2]; /* level_grid, parsed */
    int n_level_pairs;      /* 0: no choice of the inference levels */
    double best_score;      /* of <out>.best (this run's or a resumed one's); -inf: none */
    long best_step;
    volatile sig_atomic_t stop_req;
    int ran;
    /* data parallel (dd_dist): processes, this one's rank, samples per process */
    int ranks, rank, part;
    dd_dist dist;
};

/* Rank 0 of a data-parallel run, or the only process: the one that writes. */
static int writer(const dd_trainer *t) { return t->rank == 0; }

static int dist_reduce_f64(void *ctx, double *v, size_t n, dd_error *err) {
    const dd_dist *d = ctx;
    return d->sum_f64(d->ctx, v, n, err);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

void dd_trainer_opts_init(dd_trainer_opts *o) { memset(o, 0, sizeof *o); }

static int copy_path(char *dst, size_t cap, const char *src, const char *what, dd_error *err) {
    if (snprintf(dst, cap, "%s", src ? src : "") >= (int)cap)
        return dd_fail(err, DD_E_INVALID, "%s path is too long (%zu characters at most)", what, cap - 1);
    return DD_OK;
}

float dd_lr_factor(int schedule, long step, float warmup, long horizon, float min_ratio, float decay_share) {
    /* The warm-up branch is written exactly as the original CLI loop so the
     * constant schedule keeps its bits: float division of (step + 1) by warmup. */
    if (warmup > 0 && step < warmup) return (float)(step + 1) / warmup;
    if (schedule == DD_LR_WSD) {
        double span = (double)decay_share * (double)horizon;
        if (!(span > 0)) return 1.0f;
        double p = ((double)step + 1 - ((double)horizon - span)) / span;
        if (p <= 0) return 1.0f;
        if (p > 1) p = 1;
        return (float)(1.0 - (1.0 - min_ratio) * p);
    }
    if (schedule != DD_LR_COSINE) return 1.0f;
    double w = warmup > 0 ? warmup : 0, span = (double)horizon - w;
    double p = span > 0 ? ((double)step + 1 - w) / span : 1.0;
    if (p < 0) p = 0;
    if (p > 1) p = 1;
    return (float)(min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + cos(M_PI * p)));
}

/* What the weights' shapes depend on (channels, widths, depths, which levels have
 * attention), not the image size: a model trained at one size (a generic start) can be
 * fine-tuned at another, since convolutions and attention have no size-dependent weights.
 * One line naming the first difference. */
static int check_same_architecture(const char *path, const dd_model_config *f, const dd_model_config *c,
                                   dd_error *err) {
    const dd_unet_config *a = &f->unet, *b = &c->unet;
    const char *hint = "(--init needs the architecture of this run; the image size may differ)";
    if (a->in_ch != b->in_ch)
        return dd_fail(err, DD_E_FORMAT, "%s: %d input channels, this run has %d %s", path, a->in_ch, b->in_ch, hint);
    if (a->base != b->base)
        return dd_fail(err, DD_E_FORMAT, "%s: base_channels %d, this run has %d %s", path, a->base, b->base, hint);
    int mult_same = a->levels == b->levels;
    for (int i = 0; mult_same && i < a->levels; i++) mult_same = a->mult[i] == b->mult[i];
    if (!mult_same) return dd_fail(err, DD_E_FORMAT, "%s: other channel_mult than this run %s", path, hint);
    if (a->res_blocks != b->res_blocks)
        return dd_fail(err, DD_E_FORMAT, "%s: res_blocks %d, this run has %d %s", path, a->res_blocks, b->res_blocks, hint);
    for (int l = 0; l < a->levels; l++) {
        int in_file = dd_unet_attn_at_level(a, l), in_run = dd_unet_attn_at_level(b, l);
        if (in_file != in_run)
            return dd_fail(err, DD_E_FORMAT,
                           "%s: attention %s at level %d (%dx%d maps of its %dx%d model), this run %s at its %dx%d maps "
                           "(%dx%d model; set --attention) %s",
                           path, in_file ? "is" : "is not", l, a->h >> l, a->w >> l, a->h, a->w,
                           in_run ? "has it" : "has none", b->h >> l, b->w >> l, b->h, b->w, hint);
    }
    if (a->heads != b->heads || a->groups != b->groups)
        return dd_fail(err, DD_E_FORMAT, "%s: heads/groups %d/%d, this run has %d/%d %s", path, a->heads, a->groups,
                       b->heads, b->groups, hint);
    if (f->seg_width != c->seg_width)
        return dd_fail(err, DD_E_FORMAT, "%s: seg_width %d, this run has %d %s", path, f->seg_width, c->seg_width, hint);
    return DD_OK;
}

/* Metadata value of a file as a number; absent -> *found = 0. */
static int meta_number(const char *path, const char *key, double *v, int *found, dd_error *err) {
    dd_model_config cfg;
    char *s = NULL;
    int rc = dd_model_file_config(path, &cfg, key, &s, err);
    if (rc) return rc;
    *found = s != NULL;
    if (s) *v = strtod(s, NULL);
    free(s);
    return DD_OK;
}

static int start_from_checkpoint(dd_trainer *t, dd_error *err) {
    const char *path = t->resume;
    double v = 0;
    int found, rc;
    if ((rc = meta_number(path, "train_step", &v, &found, err))) return rc;
    if (!found) return dd_fail(err, DD_E_FORMAT, "%s: not a checkpoint (no training state; it may be a final model)", path);
    t->start = (long)v;
    if ((rc = dd_model_load_into(t->m, path, 1, err))) return rc;
    dd_model_set_updates(t->m, t->start);
    if ((rc = meta_number(path, "train_elapsed_s", &v, &found, err))) return rc;
    t->elapsed_before = found ? v : 0;
    /* a budgeted run's horizon estimate carries over until this run re-estimates it */
    if ((rc = meta_number(path, "train_horizon", &v, &found, err))) return rc;
    if (found && t->s.train.minutes > 0 && v >= 1 && v < (double)t->horizon) t->horizon = (long)v;
    if (t->ema) {
        /* a checkpoint without EMA (written with ema_decay 0) starts the average here */
        if ((rc = dd_model_read_block(path, t->m, DD_EMA_PREFIX, t->ema, &found, err))) return rc;
        if (!found) memcpy(t->ema, t->m->params.value, t->m->params.total * sizeof(float));
    }
    return DD_OK;
}

static int start_from_init(dd_trainer *t, dd_error *err) {
    dd_model_config fcfg;
    int rc = dd_model_file_config(t->init, &fcfg, NULL, NULL, err);
    if (rc || (rc = check_same_architecture(t->init, &fcfg, &t->m->cfg, err))) return rc;
    return dd_model_read_block(t->init, t->m, "", t->m->params.value, NULL, err);
}

/* grey_noise -1 (auto): shared noise when every training image is grey (one channel,
 * or grey + alpha), read from the file headers only. The model file stores the result. */
static int resolve_grey_noise(dd_trainer *t, dd_error *err) {
    int grey = 1;
    for (int i = 0; i < t->ds->n_train && grey; i++) {
        int h, w, c;
        int rc = dd_image_info(t->ds->train[i].path, &h, &w, &c, err);
        if (rc) return rc;
        grey = c <= 2;
    }
    t->s.model.grey_noise = grey;
    return DD_OK;
}

/* tile_scale -1 (auto): native-resolution crops (1) when every training image is at
 * least the model size on both sides and larger on one, else fit (0); from the headers. */
static int resolve_tile_scale(dd_trainer *t, dd_error *err) {
    int larger = t->ds->n_train > 0, h = t->s.model.unet.h, w = t->s.model.unet.w;
    for (int i = 0; i < t->ds->n_train && larger; i++) {
        int ih, iw, c;
        int rc = dd_image_info(t->ds->train[i].path, &ih, &iw, &c, err);
        if (rc) return rc;
        larger = ih >= h && iw >= w && (ih > h || iw > w);
    }
    t->s.model.tile_scale = larger ? 1.0f : 0.0f;
    return DD_OK;
}

/* --- checks before step 1 (issue 14) ------------------------------------- */

/* A file the run will write: `writer` (model, checkpoint, best weights) goes through
 * the atomic writer, which replaces a symlink by name; the log is opened in place, so
 * its existing file must be regular after following links. Then a unique temporary
 * file is created and removed in the folder, so a missing or unwritable folder is
 * found now and not after training. */
static int check_output(const char *path, const char *what, int writer, const char *hint, dd_error *err) {
    struct stat st;
    int have = writer ? lstat(path, &st) == 0 : stat(path, &st) == 0;
    if (have && S_ISDIR(st.st_mode))
        return dd_fail(err, DD_E_IO, "%s %s: is a folder, not a file%s", what, path, hint);
    if (have && !S_ISREG(st.st_mode) && !(writer && S_ISLNK(st.st_mode)))
        return dd_fail(err, DD_E_IO, "%s %s: exists and is not a regular file (a FIFO, socket or device); "
                       "refusing to write there", what, path);
    dd_error e = {0};
    dd_afile *f = dd_afile_open(path, &e);
    if (!f) return dd_fail(err, e.code ? e.code : DD_E_IO, "%s: %s", what, e.msg);
    dd_afile_abort(f);
    return DD_OK;
}

static int check_outputs(const dd_trainer *t, dd_error *err) {
    int rc;
    if ((rc = check_output(t->out, "model file", 1, " (--out names the model file to write)", err)) ||
        (rc = check_output(t->ckpt, "checkpoint", 1, "", err)) ||
        (rc = check_output(t->best, "best-weights file", 1, "", err)) || (rc = check_output(t->log, "log", 0, "", err)))
        return rc;
    return DD_OK;
}

/* The folder of `path` ("." when it has none). */
static void folder_of(const char *path, char *dir, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, cap, ".");
    else if (slash == path) snprintf(dir, cap, "/");
    else snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

/* Free space in the output folder for the model file and, when checkpoints are
 * written during the run, one checkpoint (weights, both Adam moments, the EMA).
 * Skipped where the file system reports no sizes. */
static int check_space(const dd_trainer *t, dd_error *err) {
    char dir[PATH_CAP];
    folder_of(t->out, dir, sizeof dir);
    struct statvfs v;
    if (statvfs(dir, &v) != 0 || v.f_blocks == 0) return DD_OK;
    double weights = (double)t->m->params.total * sizeof(float);
    double need = weights + (t->s.train.checkpoint_every > 0 ? weights * (3 + (t->ema != NULL)) : 0);
    double avail = (double)v.f_bavail * (double)v.f_frsize;
    if (avail < need)
        return dd_fail(err, DD_E_IO, "output folder '%s' has %.1f MiB free; the model file%s needs about %.1f MiB", dir,
                       avail / 1048576.0, t->s.train.checkpoint_every > 0 ? " and a checkpoint" : "", need / 1048576.0);
    return DD_OK;
}

/* Opens the log for writing (appending on resume) without blocking on a FIFO
 * (O_NONBLOCK, then fstat: only a regular file is accepted). */
static FILE *open_log(const char *path, int append, dd_error *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC | (append ? O_APPEND : 0), 0644);
    if (fd < 0) {
        int e = errno;
        dd_fail(err, DD_E_IO, "log %s: cannot open for writing (%s)", path,
                e == ENXIO ? "a FIFO, not a regular file" : strerror(e));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        dd_fail(err, DD_E_IO, "log %s: not a regular file", path);
        return NULL;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (!append && ftruncate(fd, 0) != 0) {
        int e = errno;
        close(fd);
        dd_fail(err, DD_E_IO, "log %s: cannot truncate (%s)", path, strerror(e));
        return NULL;
    }
    FILE *f = fdopen(fd, append ? "a" : "w");
    if (!f) {
        int e = errno;
        close(fd);
        dd_fail(err, DD_E_IO, "log %s: cannot open for writing (%s)", path, strerror(e));
    }
    return f;
}

/* Decodes every training image once, fully and as training does (a truncated
 * file can have a readable header), over `threads` threads. With skip_bad the
 * undecodable ones are moved after ds->n_train in listing order (the dataset
 * frees them: dd_trainer_free restores the count) and their messages kept;
 * without, the run is refused naming the first. */
static int check_training_images(dd_trainer *t, dd_error *err) {
    dd_dataset *ds = t->ds;
    const int n = ds->n_train;
    int *bad = calloc((size_t)n, sizeof(int)), nbad = 0;
    if (!bad) return dd_fail(err, DD_E_NOMEM, "train: out of memory");
    int nt = t->s.train.threads > 0 ? t->s.train.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nt < 1) nt = 1;
#pragma omp parallel for schedule(dynamic) num_threads(nt)
    for (int i = 0; i < n; i++) {
        dd_image im = {0};
        bad[i] = dd_image_load_rgb(ds->train[i].path, &im, NULL) != DD_OK;
        dd_image_free(&im);
    }
    for (int i = 0; i < n; i++) nbad += bad[i];
    int rc = DD_OK;
    if (nbad == 0) goto done;
    t->skipped = calloc((size_t)nbad, sizeof(char *));
    if (!t->skipped) {
        rc = dd_fail(err, DD_E_NOMEM, "train: out of memory");
        goto done;
    }
    for (int i = 0; i < n && t->n_skipped < nbad; i++) {
        if (!bad[i]) continue;
        dd_error e = {0};
        dd_image im = {0};
        if (dd_image_load_rgb(ds->train[i].path, &im, &e) == DD_OK) /* it changed since: still left out */
            snprintf(e.msg, sizeof e.msg, "%s: could not be decoded", ds->train[i].path);
        dd_image_free(&im);
        if (!(t->skipped[t->n_skipped++] = strdup(e.msg))) {
            rc = dd_fail(err, DD_E_NOMEM, "train: out of memory");
            goto done;
        }
    }
    if (!t->s.train.skip_bad) {
        rc = dd_fail(err, DD_E_FORMAT, "%s (%d of %d training images cannot be decoded; skip_bad 1 leaves them out)",
                     t->skipped[0], nbad, n);
        goto done;
    }
    if (nbad == n) {
        rc = dd_fail(err, DD_E_FORMAT, "none of the %d training images can be decoded (the first: %s)", n, t->skipped[0]);
        goto done;
    }
    /* stable partition: the decodable images keep their order (and the split its meaning) */
    dd_item *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp) {
        rc = dd_fail(err, DD_E_NOMEM, "train: out of memory");
        goto done;
    }
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!bad[i]) tmp[k++] = ds->train[i];
    for (int i = 0; i < n; i++)
        if (bad[i]) tmp[k++] = ds->train[i];
    memcpy(ds->train, tmp, (size_t)n * sizeof *tmp);
    free(tmp);
    ds->n_train = n - nbad;
done:
    free(bad);
    return rc;
}

/* --resume: the checkpoint's batch, data folder and training-image count must be
 * this run's, or the data stream would not continue the one it was trained on.
 * Checkpoints written before these keys existed are not checked. */
static int check_resume_matches(const dd_trainer *t, dd_error *err) {
    const char *path = t->resume;
    double v = 0;
    int found, rc;
    if ((rc = meta_number(path, "train_batch", &v, &found, err))) return rc;
    if (found && (long)v != t->s.train.batch)
        return dd_fail(err, DD_E_INVALID, "%s: the checkpoint was trained with batch %ld, this run has batch %d "
                       "(--resume needs the checkpoint's batch)", path, (long)v, t->s.train.batch);
    dd_model_config cfg;
    char *d = NULL;
    if ((rc = dd_model_file_config(path, &cfg, "train_data", &d, err))) return rc;
    if (d && strcmp(d, t->data_real)) {
        rc = dd_fail(err, DD_E_INVALID, "%s: the checkpoint was trained on data '%s', this run has '%s' "
                     "(--resume needs the checkpoint's data folder)", path, d, t->data_real);
        free(d);
        return rc;
    }
    free(d);
    if ((rc = meta_number(path, "train_images", &v, &found, err))) return rc;
    if (found && (long)v != t->ntr)
        return dd_fail(err, DD_E_INVALID, "%s: the checkpoint was trained on %ld training images, this run has %d "
                       "in '%s' (the folder changed since?)", path, (long)v, t->ntr, t->data_real);
    return DD_OK;
}

int dd_trainer_create(const dd_settings *s, const dd_trainer_opts *o, dd_trainer **out, dd_error *err) {
    *out = NULL;
    if (!o->data || !o->data[0]) return dd_fail(err, DD_E_INVALID, "train: a data folder is required");
    if (o->resume && o->init) return dd_fail(err, DD_E_INVALID, "train: --resume and --init exclude each other");
    int rc = dd_model_config_check(&s->model, err);
    if (rc) return rc;
    dd_trainer *t = calloc(1, sizeof *t);
    if (!t) return dd_fail(err, DD_E_NOMEM, "train: out of memory");
    t->s = *s;
    t->o = *o;
    t->best_score = -INFINITY;
    t->best_step = -1;
    t->horizon = s->train.steps;
    const dd_train_opts *to = &t->s.train;
    t->ranks = 1, t->rank = 0, t->part = to->batch;
    if (o->dist && o->dist->size > 1) {
        const dd_dist *d = o->dist;
        if (!d->sum_f32 || !d->sum_f64 || d->rank < 0 || d->rank >= d->size) {
            rc = dd_fail(err, DD_E_INVALID, "train: invalid process group (rank %d of %d)", d->rank, d->size);
            goto fail;
        }
        if (to->batch % d->size) {
            rc = dd_fail(err, DD_E_INVALID, "batch %d cannot be split over %d processes (it must be a multiple of the "
                         "process count)", to->batch, d->size);
            goto fail;
        }
        t->dist = *d;
        t->ranks = d->size, t->rank = d->rank, t->part = to->batch / d->size;
        if (t->part < 2) {
            rc = dd_fail(err, DD_E_INVALID, "batch %d over %d processes leaves %d sample per process (BatchNorm needs "
                         "2 or more: batch >= %d)", to->batch, d->size, t->part, 2 * d->size);
            goto fail;
        }
    }
    const char *o_out = o->out ? o->out : "model.safetensors";
    if ((rc = copy_path(t->data, sizeof t->data, o->data, "data", err)) ||
        (rc = copy_path(t->out, sizeof t->out, o_out, "output", err)) ||
        (rc = copy_path(t->resume, sizeof t->resume, o->resume, "resume", err)) ||
        (rc = copy_path(t->init, sizeof t->init, o->init, "init", err)))
        goto fail;
    snprintf(t->ckpt, sizeof t->ckpt, "%s.ckpt", t->out);
    snprintf(t->best, sizeof t->best, "%s.best", t->out);
    if (o->log_path) rc = copy_path(t->log, sizeof t->log, o->log_path, "log", err);
    else if (snprintf(t->log, sizeof t->log, "%s.log.csv", t->out) >= (int)sizeof t->log)
        rc = dd_fail(err, DD_E_INVALID, "output path is too long for its log name");
    if (rc || (writer(t) && (rc = check_outputs(t, err)))) goto fail;
    if (o->roi && (rc = dd_roi_load(o->roi, &t->roi, err))) goto fail;
    if (t->roi.mask && dd_roi_count_at(&t->roi, s->model.unet.h, s->model.unet.w) < 1) {
        rc = dd_fail(err, DD_E_FORMAT, "%s: the %dx%d region of interest covers no pixel at the model size %dx%d (a pixel "
                     "is inspected when at least half of it is)", o->roi, t->roi.w, t->roi.h, s->model.unet.w, s->model.unet.h);
        goto fail;
    }

    if ((rc = dd_dataset_open(t->data, &t->ds, err))) goto fail;
    t->n_listed = t->ds->n_train;
    char *real = realpath(t->data, NULL);
    rc = copy_path(t->data_real, sizeof t->data_real, real ? real : t->data, "data", err);
    free(real);
    if (rc || (rc = check_training_images(t, err))) goto fail;
    if (to->val_fraction > 0 && t->ds->n_train < 2) {
        rc = dd_fail(err, DD_E_INVALID,
                     "%s: %d good training image%s: nothing can be held out to calibrate the thresholds "
                     "(val_fraction %g); add images, or set val_fraction 0 to save an uncalibrated model",
                     t->data, t->ds->n_train, t->ds->n_train == 1 ? "" : "s", to->val_fraction);
        goto fail;
    }
    if ((rc = dd_dataset_split_train(t->ds, to->val_fraction, to->seed, &t->tr, &t->ntr, &t->val, &t->nval, err)))
        goto fail;
    t->val_on = to->val_every_min > 0 && writer(t); /* the others would only wait for it */
    if (t->val_on && !o->validate && t->nval < 1) {
        rc = dd_fail(err, DD_E_INVALID, "val_every_min needs held-out images (val_fraction > 0; %d held out)", t->nval);
        goto fail;
    }
    if ((rc = dd_level_grid_parse(to->level_grid, t->s.model.T, t->level_pairs, &t->n_level_pairs, "level_grid", err)))
        goto fail;
    /* the choice scores synthetic defects in the held-out images: without them (val_fraction
     * 0) there is nothing to choose on, and the model keeps t_s / t_b (the info says why) */
    if (!writer(t)) t->n_level_pairs = 0;
    if (t->n_level_pairs && t->nval < 1 && !o->validate) {
        t->n_level_pairs = 0;
        snprintf(t->info.levels_note, sizeof t->info.levels_note, "no held-out images (val_fraction %g)",
                 to->val_fraction);
    }
    if (t->s.model.grey_noise < 0 && (rc = resolve_grey_noise(t, err))) goto fail;
    if (t->s.model.tile_scale < 0 && (rc = resolve_tile_scale(t, err))) goto fail;
    if ((rc = dd_model_create(&t->s.model, t->part, 1, to->threads, &t->m, err))) goto fail;
    if (t->ranks > 1) { /* BatchNorm over the global batch */
        dd_reducer red = {dist_reduce_f64, &t->dist};
        dd_engine_set_reducer(t->m->eng, &red);
    }
    if (to->ema_decay > 0) {
        t->ema = calloc(t->m->params.total, sizeof(float));
        if (!t->ema) { rc = dd_fail(err, DD_E_NOMEM, "train: out of memory for the EMA weights"); goto fail; }
    }
    if (writer(t) && (rc = check_space(t, err))) goto fail;
    if (t->resume[0] && !(rc = check_resume_matches(t, err))) rc = start_from_checkpoint(t, err);
    else if (t->init[0]) rc = start_from_init(t, err);
    else dd_model_init_weights(t->m, to->seed);
    if (rc) goto fail;
    /* the region of interest: --roi, else a resumed checkpoint's (read with its tensors); the
     * training itself never uses it, calibration and the files written do */
    if (t->roi.mask) {
        dd_roi_free(&t->m->roi);
        t->m->roi = t->roi;
        memset(&t->roi, 0, sizeof t->roi);
    }
    if (t->ema && !t->resume[0]) memcpy(t->ema, t->m->params.value, t->m->params.total * sizeof(float));

    dd_synth_config_init(&t->sc);
    t->sc.h = t->s.model.unet.h, t->sc.w = t->s.model.unet.w;
    t->sc.mode = to->synth_mode;
    t->sc.fg_mode = to->fg_mode;
    t->sc.texture_dir = to->textures[0] ? t->s.train.textures : NULL;
    t->sc.normal_prob = to->normal_prob;
    t->sc.large_mask_prob = to->large_mask_prob;
    t->sc.binary_changed_mask = to->binary_changed_mask;
    t->sc.stroke_mask_prob = to->stroke_mask_prob;
    t->sc.shift_source_prob = to->shift_source_prob;
    t->sc.intensity_source_prob = to->intensity_source_prob;
    t->sc.work_scale = t->s.model.tile_scale; /* crops of the working scale, as inference tiles it */
    if ((t->val_on || t->n_level_pairs) && !o->validate) {
        rc = dd_validator_create(t->ds, t->val, t->nval, &t->sc, to->val_per_image, to->seed, &t->s.model, to->threads,
                                 &t->validator, err);
        /* asked-for validation must work; the level choice alone is a refinement the run can
         * do without (e.g. images too small for any synthetic defect): it keeps t_s / t_b */
        if (rc && !t->val_on) {
            snprintf(t->info.levels_note, sizeof t->info.levels_note, "%.200s", err->msg);
            t->n_level_pairs = 0;
            err->msg[0] = 0, err->code = 0;
            rc = DD_OK;
        }
        if (rc) goto fail;
    }
    if (t->val_on && to->keep_best && t->resume[0]) {
        /* the resumed run competes with the best weights kept so far (a regular file:
         * check_outputs refused anything else there) */
        struct stat bst;
        if (stat(t->best, &bst) == 0 && S_ISREG(bst.st_mode)) {
            double v = 0, st = 0;
            int found, found_st;
            if ((rc = meta_number(t->best, "val_score", &v, &found, err)) ||
                (rc = meta_number(t->best, "train_step", &st, &found_st, err)))
                goto fail;
            if (found) t->best_score = v, t->best_step = found_st ? (long)st : -1;
        }
    }
    if ((rc = dd_feeder_create_part(t->ds, t->tr, t->ntr, &t->sc, t->part, t->rank * t->part, to->batch,
                                    to->workers, to->seed, t->start, &t->feeder, err)))
        goto fail;
    /* Last: the first thing written. */
    if (writer(t) && !(t->logf = open_log(t->log, t->resume[0] != 0, err))) {
        rc = err ? err->code : DD_E_IO;
        goto fail;
    }
    if (t->logf && !t->resume[0])
        fprintf(t->logf, "step,loss,noise,focal,smoothl1,grad_norm,normal,samples_per_s,elapsed_s,lr_unet,lr_seg,"
                         "val_image_auroc,val_pixel_ap,val_aupro\n");
    dd_trainer_info *in = &t->info;
    in->n_train = t->ntr, in->n_val = t->nval;
    in->tile_scale = t->s.model.tile_scale, in->grey_noise = t->s.model.grey_noise;
    in->precision = dd_precision_name(dd_model_precision(t->m));
    in->ranks = t->ranks, in->part_batch = t->part;
    in->params_unet = dd_model_param_count(t->m, 0);
    in->params_seg = dd_model_param_count(t->m, 1);
    in->memory = dd_model_memory(t->m) + (t->ema ? t->m->params.total * sizeof(float) : 0);
    in->start = t->start, in->steps = to->steps;
    in->resumed = t->resume[0] != 0, in->initialised = t->init[0] != 0;
    in->out = t->out, in->ckpt = t->ckpt, in->best = t->best, in->log = t->log;
    in->n_skipped = t->n_skipped, in->skipped = (const char *const *)t->skipped;
    in->roi_h = t->m->roi.h, in->roi_w = t->m->roi.w;
    in->roi_share = t->m->roi.mask ? (double)t->m->roi.inspected / ((double)t->m->roi.h * t->m->roi.w) : 1;
    *out = t;
    return DD_OK;
fail:
    dd_trainer_free(t);
    return rc;
}

const dd_trainer_info *dd_trainer_get_info(const dd_trainer *t) { return &t->info; }
const dd_model *dd_trainer_model(const dd_trainer *t) { return t->m; }
const float *dd_trainer_weights(const dd_trainer *t) { return t->ema ? t->ema : t->m->params.value; }
void dd_trainer_request_stop(dd_trainer *t) { t->stop_req = 1; }

static int stop_requested(const dd_trainer *t) { return t->stop_req || (t->o.stop && *t->o.stop); }

/* ema = d * ema + (1 - d) * params with d = min(decay, (1 + n) / (10 + n)) after n
 * updates: the ramp keeps the first steps' random weights from dominating short runs.
 * BatchNorm running statistics are averaged too (they belong to the weights);
 * the batch counters are copied. */
static void ema_update(dd_trainer *t) {
    const dd_params *p = &t->m->params;
    double n = (double)dd_model_updates(t->m), ramp = (1 + n) / (10 + n);
    float d = (float)(t->s.train.ema_decay < ramp ? t->s.train.ema_decay : ramp), e = 1.0f - d;
    for (int i = 0; i < p->count; i++) {
        const dd_param *it = &p->items[i];
        float *a = t->ema + it->offset;
        const float *v = p->value + it->offset;
        if (it->kind == DD_PK_COUNTER) memcpy(a, v, it->numel * sizeof(float));
        else
            for (size_t k = 0; k < it->numel; k++) a[k] = d * a[k] + e * v[k];
    }
}

static double val_score(const dd_val_metrics *v) {
    double s = 0;
    int n = 0;
    const double x[3] = {v->image_auroc, v->pixel_ap, v->aupro};
    for (int i = 0; i < 3; i++)
        if (isfinite(x[i])) s += x[i], n++;
    return n ? s / n : -INFINITY;
}

/* The validation of weights w inferred at levels t_s / t_b: the caller's hook or the built-in set. */
static int run_validation(dd_trainer *t, const dd_params *w, int t_s, int t_b, dd_val_metrics *vm, dd_error *err) {
    if (t->o.validate) return t->o.validate(t->o.validate_ctx, w, t_s, t_b, vm, err);
    int rc = dd_validator_set_levels(t->validator, t_s, t_b, err);
    return rc ? rc : dd_validator_run(t->validator, w, vm, err);
}

/* level_grid: score the saved weights at the model's own levels (own_score when already
 * known, else NAN) and at each pair of the grid on the validation set; the model keeps
 * the first pair with the highest score (ties keep its own). The scores go to res and, as
 * "TS:TB=score,...", to *text (the model file's level_scores; caller frees). */
static int choose_levels(dd_trainer *t, const float *weights, double own_score, dd_train_result *res, char **text,
                         dd_error *err) {
    dd_model *m = t->m;
    dd_params w = m->params;
    w.value = (float *)weights;
    double t0 = now_s();
    res->n_levels = 0;
    res->levels[0][0] = m->cfg.t_s, res->levels[0][1] = m->cfg.t_b;
    int n = 1;
    for (int i = 0; i < t->n_level_pairs; i++)
        if (t->level_pairs[i][0] != m->cfg.t_s || t->level_pairs[i][1] != m->cfg.t_b) {
            res->levels[n][0] = t->level_pairs[i][0], res->levels[n][1] = t->level_pairs[i][1];
            n++;
        }
    int best = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 || isnan(own_score)) {
            dd_val_metrics vm;
            int rc = run_validation(t, &w, res->levels[i][0], res->levels[i][1], &vm, err);
            if (rc) {
                char msg[sizeof err->msg];
                snprintf(msg, sizeof msg, "%s", err->msg);
                return dd_fail(err, rc, "choosing the inference levels (%d:%d): %s", res->levels[i][0],
                               res->levels[i][1], msg);
            }
            res->level_scores[i] = val_score(&vm);
        } else res->level_scores[0] = own_score;
        if (res->level_scores[i] > res->level_scores[best]) best = i;
    }
    res->n_levels = n;
    res->levels_s = now_s() - t0;
    m->cfg.t_s = res->levels[best][0], m->cfg.t_b = res->levels[best][1];
    size_t cap = (size_t)n * 40 + 1;
    char *s = malloc(cap);
    if (!s) return dd_fail(err, DD_E_NOMEM, "train: out of memory for the level scores");
    size_t len = 0;
    s[0] = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%d:%d=%.6f", i ? "," : "", res->levels[i][0], res->levels[i][1],
                                res->level_scores[i]);
    *text = s;
    return DD_OK;
}

/* Validate the weights the model file would get; keep them in <out>.best when best. */
static int validate(dd_trainer *t, long step, dd_val_metrics *vm, double *score, int *new_best, dd_error *err) {
    dd_params w = t->m->params; /* a view with the saved weights as values */
    w.value = (float *)dd_trainer_weights(t);
    int rc = run_validation(t, &w, t->m->cfg.t_s, t->m->cfg.t_b, vm, err);
    if (rc) return rc;
    *score = val_score(vm);
    *new_best = *score > t->best_score;
    if (!*new_best) return DD_OK;
    t->best_score = *score, t->best_step = step;
    if (!t->s.train.keep_best) return DD_OK;
    char sv[64], st[32];
    snprintf(sv, sizeof sv, "%.17g", *score);
    snprintf(st, sizeof st, "%ld", step);
    dd_kv kv[2] = {{"val_score", sv}, {"train_step", st}};
    dd_save_opts so = {w.value, 0, NULL, kv, 2};
    return dd_model_save_ex(t->m, t->best, &so, err);
}

static int save_checkpoint(dd_trainer *t, long step, double elapsed, dd_error *err) {
    if (!writer(t)) return DD_OK;
    char sv[32], se[64], sh[32], sb[32], sn[32];
    snprintf(sv, sizeof sv, "%ld", step);
    snprintf(se, sizeof se, "%.3f", elapsed);
    snprintf(sh, sizeof sh, "%ld", t->horizon);
    snprintf(sb, sizeof sb, "%d", t->s.train.batch);
    snprintf(sn, sizeof sn, "%d", t->ntr);
    /* batch, data folder and training-image count: what --resume must find again */
    dd_kv kv[6] = {{"train_step", sv}, {"train_elapsed_s", se}, {"train_horizon", sh},
                   {"train_batch", sb}, {"train_data", t->data_real}, {"train_images", sn}};
    dd_save_opts so = {NULL, 1, t->ema, kv, 6};
    return dd_model_save_ex(t->m, t->ckpt, &so, err);
}

static void log_line(dd_trainer *t, const dd_train_progress *p) {
    if (!t->logf) return;
    const dd_step_stats *st = &p->stats;
    fprintf(t->logf, "%ld,%.6f,%.6f,%.6f,%.6f,%.4f,%d,%.2f,%.1f,%.4g,%.4g", p->step, st->loss, st->noise, st->focal,
            st->smoothl1, st->grad_norm, st->normal_count, p->samples_per_s, p->elapsed_s, p->lr_unet, p->lr_seg);
    if (p->validated) fprintf(t->logf, ",%.5f,%.5f,%.5f\n", p->val.image_auroc, p->val.pixel_ap, p->val.aupro);
    else fputs(",,,\n", t->logf);
    fflush(t->logf);
}

static int with_step(dd_error *err, int rc, long step) {
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return dd_fail(err, rc, "step %ld: %s", step, msg);
}

int dd_trainer_run(dd_trainer *t, dd_train_result *res, dd_error *err) {
    memset(res, 0, sizeof *res);
    res->best_score = res->final_score = -INFINITY;
    res->best_step = -1;
    if (t->ran) return dd_fail(err, DD_E_INVALID, "train: dd_trainer_run may be called once");
    t->ran = 1;
    const dd_train_opts *to = &t->s.train;
    dd_model *m = t->m;
    const double budget = to->minutes > 0 ? to->minutes * 60.0 : 0;
    const double val_period = to->val_every_min * 60.0;
    long step = t->start, done = 0;
    double t0 = now_s(), step_time_sum = 0, first_step_time = 0, next_val = val_period, comm_sum = 0;
    int rc = DD_OK, final_validated = 0;
    dd_train_progress p;
    memset(&p, 0, sizeof p);
    p.start = t->start, p.budgeted = budget > 0;
    while (step < to->steps) {
        int want_stop = stop_requested(t) || (budget > 0 && t->elapsed_before + (now_s() - t0) >= budget);
        if (t->ranks == 1 && want_stop) break;
        double ts0 = now_s();
        dd_batch b;
        if ((rc = dd_feeder_next(t->feeder, &b, err))) return rc;
        int labels[4096], own_normal = 0;
        for (int i = 0; i < b.n; i++) labels[i] = b.labels[i] > 0.5f, own_normal += !labels[i];
        int global_normal = own_normal;
        if (t->ranks > 1) {
            /* one small sum: normal samples of the global batch, stop votes (any process's
             * Ctrl-C or budget stops all, at the same step) and rank 0's schedule horizon
             * (its clock decides a budgeted run's length, so the learning rates agree) */
            double v[3] = {own_normal, want_stop, writer(t) ? (double)t->horizon : 0}, c0 = now_s();
            if ((rc = t->dist.sum_f64(t->dist.ctx, v, 3, err))) return with_step(err, rc, step);
            comm_sum += now_s() - c0;
            if (v[1] > 0) break;
            global_normal = (int)v[0];
            t->horizon = (long)v[2];
        } else if (want_stop) break;
        float f = dd_lr_factor(to->lr_schedule, step, to->lr_warmup, t->horizon, to->lr_min_ratio,
                                 to->lr_decay_share);
        p.lr_unet = t->s.model.lr_unet * f;
        p.lr_seg = t->s.model.lr_seg * f;
        dd_rng r;
        dd_rng_seed2(&r, to->seed ^ 0x747261696eULL, (uint64_t)step); /* a pure function of (seed, step) */
        if ((rc = dd_model_forward_backward_part(m, b.images, b.masks, labels, &r, t->rank * t->part, to->batch,
                                                 global_normal, &p.stats, err)))
            return with_step(err, rc, step);
        if (t->ranks > 1) {
            /* the global batch's gradient (one block) and loss terms */
            double v[4] = {p.stats.loss, p.stats.noise, p.stats.focal, p.stats.smoothl1}, c0 = now_s();
            if ((rc = t->dist.sum_f32(t->dist.ctx, m->params.grad, m->params.total, err)) ||
                (rc = t->dist.sum_f64(t->dist.ctx, v, 4, err)))
                return with_step(err, rc, step);
            comm_sum += now_s() - c0;
            p.stats.loss = v[0], p.stats.noise = v[1], p.stats.focal = v[2], p.stats.smoothl1 = v[3];
            p.stats.normal_count = global_normal;
        }
        if ((t->o.grad_hook && (rc = t->o.grad_hook(t->o.hook_ctx, &m->params, err))) ||
            (rc = dd_model_update(m, p.lr_unet, p.lr_seg, &p.stats.grad_norm, err)))
            return with_step(err, rc, step);
        if (t->ema) ema_update(t);
        step++, done++;
        double now = now_s(), dt = now - ts0, run_s = now - t0;
        if (done == 1) first_step_time = dt;
        else step_time_sum += dt; /* the first step (kernel JIT, thread start) is not typical */
        p.step = step;
        p.elapsed_s = t->elapsed_before + run_s;
        p.samples_per_s = done * to->batch / run_s;
        p.comm_s = comm_sum / done; /* BatchNorm's small sums (inside the step) not included */
        double per_step = done > 1 ? step_time_sum / (done - 1) : first_step_time;
        if (budget > 0) {
            /* Horizon of the schedule: the steps the budget allows at the measured
             * speed, once 20 steps or 5 % of the budget have been seen, then
             * re-estimated every step; until then the `steps` upper bound. */
            if (done >= 20 || run_s >= 0.05 * budget) {
                double est = step + floor((budget - p.elapsed_s) / per_step);
                t->horizon = est < step ? step : est > to->steps ? to->steps : (long)est;
            }
            p.total = t->horizon;
            p.eta_s = budget - p.elapsed_s > 0 ? budget - p.elapsed_s : 0;
        } else {
            p.total = to->steps;
            p.eta_s = (to->steps - step) * (run_s / done);
        }
        int last = step >= to->steps || (budget > 0 && p.elapsed_s >= budget);
        p.validated = p.new_best = 0;
        if (t->val_on && (last || run_s >= next_val)) {
            if ((rc = validate(t, step, &p.val, &p.val_score, &p.new_best, err))) return with_step(err, rc, step);
            p.validated = 1;
            final_validated = last;
            res->validated = 1;
            next_val = (now_s() - t0) + val_period;
        }
        if (step % to->log_every == 0 || last || p.validated) log_line(t, &p);
        if (to->checkpoint_every > 0 && step % to->checkpoint_every == 0 && step < to->steps &&
            (rc = save_checkpoint(t, step, t->elapsed_before + (now_s() - t0), err)))
            return rc;
        if (t->o.progress) t->o.progress(t->o.progress_ctx, &p);
    }
    double train_s = now_s() - t0;
    res->step = step, res->steps_run = done;
    res->train_s = train_s;
    res->samples_per_s = train_s > 0 ? done * to->batch / train_s : 0;
    res->comm_s = done ? comm_sum / done : 0;
    if (stop_requested(t) || (t->ranks > 1 && step < to->steps && !(budget > 0))) {
        res->interrupted = 1;
        return save_checkpoint(t, step, t->elapsed_before + train_s, err);
    }
    if (!writer(t)) return DD_OK; /* rank 0 validates, calibrates and writes the model */
    const float *final = dd_trainer_weights(t);
    float *best_w = NULL;
    if (t->val_on) {
        /* the loop can end without validating its last weights: the budget ran out
         * between steps, or there was nothing left to train */
        if (!final_validated) {
            if ((rc = validate(t, step, &p.val, &p.val_score, &p.new_best, err))) return rc;
            res->validated = 1;
        }
        res->final_val = p.val;
        res->final_score = p.val_score;
        res->best_score = t->best_score, res->best_step = t->best_step;
        if (to->keep_best && t->best_score > p.val_score) {
            best_w = calloc(m->params.total, sizeof(float));
            if (!best_w) return dd_fail(err, DD_E_NOMEM, "train: out of memory for the best weights");
            if ((rc = dd_model_read_block(t->best, m, "", best_w, NULL, err))) {
                free(best_w);
                return rc;
            }
            final = best_w;
            res->used_best = 1;
        }
    }
    /* Thresholds first, from the held-out good images scored in memory exactly as
     * predict scores files, then one atomic write: a model file appears at `out`
     * only trained and calibrated (or deliberately uncalibrated with val_fraction
     * 0). If the level choice or calibration fails the weights are kept in the
     * checkpoint instead. */
    dd_save_opts so = {final, 0, NULL, NULL, 0};
    char *calib_text = NULL; /* the good-score distribution for drift checks (eval/drift.h) */
    char *level_text = NULL; /* the scores of the level choice */
    dd_kv extra_kv[2];
    /* no step follows: the training activations make room for the calibration's model
     * (the process's peak stays the training steps'; what is saved stays) */
    dd_model_free_activations(m);
    /* the levels first: the thresholds are quantiles of scores at the levels the file keeps */
    const int own_ts = m->cfg.t_s, own_tb = m->cfg.t_b;
    dd_model_config cfg = m->cfg;
    if (t->n_level_pairs) {
        double own = NAN;
        if (t->val_on) own = res->used_best ? t->best_score : p.val_score;
        rc = choose_levels(t, final, own, res, &level_text, err);
        if (!rc) extra_kv[so.n_extra++] = (dd_kv){"level_scores", level_text};
        cfg = m->cfg;
    }
    if (!rc && t->nval > 0) {
        float *sorted = malloc(sizeof(float) * (size_t)t->nval);
        rc = sorted ? DD_OK : dd_fail(err, DD_E_NOMEM, "train: out of memory for the calibration scores");
        if (!rc)
            rc = dd_calibrate(&cfg, final, m->params.total, &m->roi, t->ds, t->val, t->nval, to->false_reject, to->threads,
                              sorted, err);
        if (!rc) rc = dd_calib_scores_format(sorted, (size_t)t->nval, &calib_text, err);
        free(sorted);
        if (!rc) {
            extra_kv[so.n_extra++] = (dd_kv){DD_CALIB_SCORES_KEY, calib_text};
            res->calibrated = 1;
            /* the rank dd_calibrate's quantile takes (calibrate.c): the highest held-out score
             * when n_val * false_reject < 1, so no rate below 1 / n_val could be set */
            res->threshold_is_max = dd_calibrate_rank((size_t)t->nval, 1.0 - to->false_reject) >= (size_t)t->nval;
            res->image_threshold = cfg.image_threshold, res->pixel_threshold = cfg.pixel_threshold;
            res->review_lo = cfg.review_lo, res->review_hi = cfg.review_hi;
        }
    }
    if (rc) {
        /* the checkpoint keeps the weights with the run's own settings, levels included */
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        m->cfg.t_s = own_ts, m->cfg.t_b = own_tb;
        dd_error e2 = {0};
        if (save_checkpoint(t, step, t->elapsed_before + train_s, &e2) == DD_OK)
            rc = dd_fail(err, rc, "%s (no model written; the trained weights are in %s)", msg, t->ckpt);
        free(best_w);
        free(calib_text);
        free(level_text);
        return rc;
    }
    m->cfg = cfg;
    so.extra = so.n_extra ? extra_kv : NULL;
    res->t_s = m->cfg.t_s, res->t_b = m->cfg.t_b;
    rc = dd_model_save_ex(m, t->out, &so, err);
    free(best_w);
    free(calib_text);
    free(level_text);
    if (rc) return rc;
    remove(t->ckpt);
    if (t->val_on) remove(t->best);
    return DD_OK;
}

void dd_trainer_free(dd_trainer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_skipped; i++) free(t->skipped[i]);
    free(t->skipped);
    if (t->logf) fclose(t->logf);
    dd_validator_free(t->validator);
    dd_feeder_free(t->feeder);
    dd_model_free(t->m);
    dd_roi_free(&t->roi);
    free(t->ema);
    free(t->tr);
    free(t->val);
    if (t->ds) t->ds->n_train = t->n_listed; /* last user gone: the images left out are freed with the rest */
    dd_dataset_free(t->ds);
    free(t);
}
