/* settings.c — the training key table, the profiles and dd_settings (see settings.h). */
#include "train/settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/limits.h"
#include "data/synth.h"

/* Indexed by DD_LR_*. */
static const char *const LR_SCHEDULE_NAMES[] = {"constant", "cosine", "wsd", NULL};

#define T(f) offsetof(dd_train_opts, f)
#define NUM(name, type, field, lo, hi, text) {name, type, T(field), lo, hi, .help = text}
static const dd_key KEYS[] = {
    NUM("batch", DD_KEY_INT, batch, 2, DD_MAX_BATCH, "images per training step"),
    NUM("steps", DD_KEY_LONG, steps, 1, 1e12, "training steps"),
    NUM("seed", DD_KEY_U64, seed, 0, 1.8e19, "random seed"),
    NUM("threads", DD_KEY_INT, threads, 0, 1024, "compute threads (0: all cores)"),
    NUM("workers", DD_KEY_INT, workers, 0, 64, "data threads synthesising samples ahead"),
    NUM("val_fraction", DD_KEY_FLOAT, val_fraction, 0, 0.9, "share of train/good held out for calibration"),
    NUM("checkpoint_every", DD_KEY_LONG, checkpoint_every, 0, 1e12, "steps between checkpoints (0: end only)"),
    NUM("log_every", DD_KEY_LONG, log_every, 1, 1e12, "steps between log lines"),
    {"textures", DD_KEY_STRING, T(textures), .cap = sizeof(((dd_train_opts *)0)->textures),
     .help = "folder of anomaly-source images ('' = built-in procedural textures)"},
    {"synth_mode", DD_KEY_ENUM, T(synth_mode), .names = dd_synth_mode_names,
     .help = "object (self-augmentation, foreground) or texture"},
    {"foreground", DD_KEY_ENUM, T(fg_mode), .names = dd_fg_mode_names,
     .help = "foreground restriction: auto, none, estimate, random"},
    NUM("normal_prob", DD_KEY_FLOAT, normal_prob, 0, 1, "share of samples left normal"),
    NUM("large_mask_prob", DD_KEY_FLOAT, large_mask_prob, 0, 1, "share of large smooth synthetic defects (0: paper)"),
    NUM("stroke_mask_prob", DD_KEY_FLOAT, stroke_mask_prob, 0, 1,
        "share of synthetic defects drawn as thin strokes: scratches, cuts, bridges, spots (0: paper)"),
    NUM("shift_source_prob", DD_KEY_FLOAT, shift_source_prob, 0, 1,
        "share of synthetic defects made of the part itself displaced: moved, missing or doubled structure (0: paper)"),
    NUM("intensity_source_prob", DD_KEY_FLOAT, intensity_source_prob, 0, 1,
        "share of synthetic defects that only make the part darker or lighter: stains, low-contrast regions; not on binary parts (0: paper)"),
    NUM("binary_changed_mask", DD_KEY_INT, binary_changed_mask, 0, 1,
        "binary parts (e.g. PCB scans): 1 labels only the pixels a synthetic defect changed, 0 its whole region (paper)"),
    NUM("false_reject", DD_KEY_FLOAT, false_reject, 0, 0.5, "calibration: share of good validation images over the threshold"),
    NUM("lr_warmup", DD_KEY_FLOAT, lr_warmup, 0, 1e9, "steps of linear learning-rate warm-up"),
    NUM("minutes", DD_KEY_FLOAT, minutes, 0, 1e7,
        "wall-clock training budget in minutes (0: off; steps is then an upper bound; not bit-reproducible)"),
    {"lr_schedule", DD_KEY_ENUM, T(lr_schedule), .names = LR_SCHEDULE_NAMES,
     .help = "learning-rate schedule after warm-up: constant, cosine (to lr_min_ratio at the last step) or wsd "
             "(constant, then a linear decay to lr_min_ratio over the last lr_decay_share of the run)"},
    NUM("lr_min_ratio", DD_KEY_FLOAT, lr_min_ratio, 0, 1,
        "cosine / wsd: final learning rate as a share of lr_unet / lr_seg"),
    NUM("lr_decay_share", DD_KEY_FLOAT, lr_decay_share, 0, 1,
        "wsd: share of the run (steps, or the budget's estimate) spent decaying at the end"),
    NUM("ema_decay", DD_KEY_FLOAT, ema_decay, 0, 0.999999,
        "exponential moving average of the weights, saved instead of them (0: off; e.g. 0.999)"),
    NUM("val_every_min", DD_KEY_FLOAT, val_every_min, 0, 1e7,
        "minutes between validations on synthetic defects in the held-out images (0: off)"),
    NUM("val_per_image", DD_KEY_INT, val_per_image, 1, 64, "validation: synthetic defects per held-out image"),
    NUM("keep_best", DD_KEY_INT, keep_best, 0, 1, "with validation: save the best-validated weights (1) or the last (0)"),
    NUM("skip_bad", DD_KEY_INT, skip_bad, 0, 1,
        "training images that cannot be decoded: 0 refuses the run naming the file, 1 leaves them out with a warning"),
    {"level_grid", DD_KEY_STRING, T(level_grid), .cap = sizeof(((dd_train_opts *)0)->level_grid),
     .help = "inference levels t_s:t_b,... tried on the synthetic validation after training besides t_s/t_b; "
             "the best is saved ('' or none: off)"},
};

static const dd_key_table TABLE = {KEYS, (int)(sizeof KEYS / sizeof KEYS[0]), NULL};

const dd_key_table *dd_train_key_table(void) { return &TABLE; }

/* The namespace of dd_settings: model keys, then training keys. The model
 * table carries the hint for unknown keys. */
static int groups(dd_settings *s, dd_key_group g[2], dd_key_table *model_hinted) {
    *model_hinted = *dd_model_key_table();
    model_hinted->unknown_hint = " (see 'diffad train --help')";
    g[0].table = model_hinted, g[0].obj = &s->model;
    g[1].table = &TABLE, g[1].obj = &s->train;
    return 2;
}

static void train_defaults(dd_train_opts *t) {
    memset(t, 0, sizeof *t);
    t->batch = 8;
    t->steps = 2000;
    t->seed = 1;
    t->threads = 0;
    t->workers = 1;
    t->val_fraction = 0.1f;
    t->checkpoint_every = 500;
    t->log_every = 10;
    t->synth_mode = DD_SYNTH_OBJECT;
    t->fg_mode = DD_FG_AUTO;
    t->normal_prob = 0.5f;
    t->large_mask_prob = 0.0f;
    t->false_reject = 0.01f;
    t->lr_warmup = 0;
    t->minutes = 0;
    t->lr_schedule = DD_LR_CONSTANT;
    t->lr_min_ratio = 0.05f;
    t->lr_decay_share = 0.2f;
    t->ema_decay = 0;
    t->val_every_min = 0;
    t->val_per_image = 2;
    t->keep_best = 1;
}

int dd_settings_profile(dd_settings *s, const char *profile, dd_error *err) {
    memset(s, 0, sizeof *s);
    train_defaults(&s->train);
    if (!strcmp(profile, "paper")) {
        dd_model_config_paper(&s->model, 256, 256);
        s->train.batch = 16;
        s->train.steps = 3000L * 20; /* the paper trains 3000 epochs; set steps for your data */
        return DD_OK;
    }
    if (!strcmp(profile, "cpu")) {
        /* Sized for a 2-core machine (see README "CPU profile"): 128 px, a 4-level
         * denoiser with base 32 and one residual block per level, attention at 16 px,
         * segmentation width 16, and the faster segmentation learning rate that short
         * budgets need (docs/training.md, finding 2). */
        dd_model_config_paper(&s->model, 128, 128);
        dd_unet_config *u = &s->model.unet;
        u->base = 32;
        u->levels = 4;
        int m[4] = {1, 2, 2, 4};
        memcpy(u->mult, m, sizeof m);
        u->res_blocks = 1;
        u->n_attn = 1;
        u->attn[0] = 16;
        u->heads = 4;
        s->model.seg_width = 16;
        s->model.lr_unet = 5e-4f; /* measured: docs/training.md finding 11 */
        s->model.lr_seg = 1e-3f;
        s->train.batch = 8;
        s->train.steps = 1500;
        /* an average over ~100 steps: the last snapshot of constant-rate training swings
         * (docs/training.md findings 17, 18) */
        s->train.ema_decay = 0.99f;
        /* binary parts: label only what a synthetic defect changed (finding 21; no effect on
         * grey or colour images) */
        s->train.binary_changed_mask = 1;
        /* inference levels chosen per model on the synthetic validation after training: the
         * validation prefers lower levels than 200/400 on most short-budget models, and the
         * test localisation follows (docs/training.md findings 24, 25) */
        snprintf(s->train.level_grid, sizeof s->train.level_grid, "50:150,100:300");
        return DD_OK;
    }
    return dd_fail(err, DD_E_INVALID, "unknown profile '%s' (known: cpu, paper)", profile);
}

int dd_level_grid_parse(const char *text, int T, int pairs[][2], int *n, const char *origin, dd_error *err) {
    *n = 0;
    if (text && (!strcmp(text, "none") || !strcmp(text, "off"))) return DD_OK;
    for (const char *q = text; q && *q;) {
        char *end;
        long ts = strtol(q, &end, 10), tb = -1;
        int ok = end != q && *end == ':' && (*q >= '0' && *q <= '9');
        if (ok) {
            const char *b = end + 1;
            tb = strtol(b, &end, 10);
            ok = end != b && *b >= '0' && *b <= '9' && (*end == ',' || !*end);
        }
        int len = 0;
        while (q[len] && q[len] != ',') len++;
        if (!ok)
            return dd_fail(err, DD_E_FORMAT, "%s: '%.*s' is not a pair TS:TB of noise levels (e.g. 100:300)", origin,
                           len, q);
        if (ts < 0 || tb <= ts || tb >= T)
            return dd_fail(err, DD_E_RANGE, "%s: '%.*s' needs 0 <= TS < TB < %d", origin, len, q, T);
        int dup = 0;
        for (int i = 0; i < *n; i++) dup |= pairs[i][0] == ts && pairs[i][1] == tb;
        if (!dup) {
            if (*n == DD_MAX_LEVEL_PAIRS)
                return dd_fail(err, DD_E_RANGE, "%s: more than %d level pairs", origin, DD_MAX_LEVEL_PAIRS);
            pairs[*n][0] = (int)ts, pairs[*n][1] = (int)tb, (*n)++;
        }
        q = *end ? end + 1 : end;
        if (*end && !*q) return dd_fail(err, DD_E_FORMAT, "%s: ends with a comma", origin);
    }
    return DD_OK;
}

int dd_settings_set(dd_settings *s, const char *key, const char *value, const char *origin,
                    dd_error *err) {
    dd_key_group g[2];
    dd_key_table mt;
    int n = groups(s, g, &mt);
    return dd_keys_set(g, n, key, value, origin, err);
}

int dd_settings_apply_json(dd_settings *s, const dd_json *obj, const char *origin, int model_only,
                           dd_error *err) {
    dd_key_group g[2];
    dd_key_table mt;
    int n = groups(s, g, &mt);
    if (model_only && obj && obj->type == DD_JOBJ)
        for (const dd_json *c = obj->child; c; c = c->next)
            if (!dd_keys_find(g[0].table, c->key) && dd_keys_find(g[1].table, c->key))
                return dd_fail(err, DD_E_FORMAT, "%s: '%s' is not a model setting", origin, c->key);
    return dd_keys_apply_json(g, model_only ? 1 : n, obj, origin, err);
}

int dd_settings_load_file(dd_settings *s, const char *path, dd_error *err) {
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = dd_read_file(path, 1 << 20, &buf, &len, err);
    if (rc) return rc;
    dd_json *j = NULL;
    rc = dd_json_parse((const char *)buf, len, path, &j, err);
    free(buf);
    if (rc) return rc;
    rc = dd_settings_apply_json(s, j, path, 0, err);
    dd_json_free(j);
    return rc;
}

void dd_settings_print_help(const dd_settings *s, FILE *f) {
    dd_key_group g[2];
    dd_key_table mt;
    int n = groups((dd_settings *)s, g, &mt); /* read only: print takes the objects as const */
    dd_keys_print_help(g, n, f);
}
