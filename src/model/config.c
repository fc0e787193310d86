/* config.c — the settings key table (see config.h). */
#include "model/config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "data/image.h"
#include "data/synth.h"

enum { K_INT, K_LONG, K_U64, K_FLOAT, K_MULT, K_ATTN, K_ALGO, K_STR, K_SIZE, K_SYNTH_MODE, K_FG, K_LR_SCHED };

typedef struct key {
    const char *name;
    int type;
    size_t off;
    double lo, hi;
    int model;   /* stored in model files */
    const char *help;
} key;

#define M(f) offsetof(dd_settings, model.f)
#define T(f) offsetof(dd_settings, train.f)
static const key KEYS[] = {
    {"size", K_SIZE, M(unet.h), 32, 4096, 1, "model input HxW, e.g. 128x128 (any aspect; each side divisible by 32 and by 2^(levels-1))"},
    {"base_channels", K_INT, M(unet.base), 2, 1024, 1, "denoiser base channels C"},
    {"channel_mult", K_MULT, M(unet.mult), 1, 16, 1, "denoiser channel multipliers per level, e.g. 1,2,2,4"},
    {"res_blocks", K_INT, M(unet.res_blocks), 1, 8, 1, "residual blocks per level"},
    {"attention", K_ATTN, M(unet.attn), 0, 4096, 1, "feature-map sizes (shorter side) with self-attention, e.g. 32,16,8; 'none'"},
    {"heads", K_INT, M(unet.heads), 1, 64, 1, "attention heads"},
    {"groups", K_INT, M(unet.groups), 1, 1024, 1, "GroupNorm groups (gcd(groups, C) where C is not a multiple)"},
    {"seg_width", K_INT, M(seg_width), 1, 256, 1, "segmentation net width w"},
    {"T", K_INT, M(T), 2, DD_T_MAX, 1, "diffusion steps"},
    {"t_s", K_INT, M(t_s), 0, DD_T_MAX - 1, 1, "inference small noise level"},
    {"t_b", K_INT, M(t_b), 1, DD_T_MAX - 1, 1, "inference large noise level"},
    {"guide_w", K_FLOAT, M(guide_w), 0, 10, 1, "norm guidance weight w"},
    {"train_ts_max", K_INT, M(train_ts_max), 0, DD_T_MAX - 1, 1, "training: t_s ~ U{0..train_ts_max}"},
    {"train_tb_min", K_INT, M(train_tb_min), 1, DD_T_MAX - 1, 1, "training: t_b ~ U{train_tb_min..T-1}"},
    {"lr_unet", K_FLOAT, M(lr_unet), 0, 1, 1, "denoiser learning rate"},
    {"lr_seg", K_FLOAT, M(lr_seg), 0, 1, 1, "segmentation learning rate"},
    {"clip_norm", K_FLOAT, M(clip_norm), 0, 1e9, 1, "clip the global gradient norm (0: off)"},
    {"focal_weight", K_FLOAT, M(focal_weight), 0, 1000, 1, "weight of the focal loss"},
    {"focal_alpha", K_FLOAT, M(focal_alpha), 0, 1, 1, "focal alpha"},
    {"focal_gamma", K_FLOAT, M(focal_gamma), 0, 10, 1, "focal gamma"},
    {"smoothl1_beta", K_FLOAT, M(smoothl1_beta), 1e-6, 100, 1, "SmoothL1 beta"},
    {"topk", K_INT, M(topk), 0, 1 << 30, 1, "image score = mean of the top-k map values (0: 50 scaled by area)"},
    {"conv_algo", K_ALGO, M(conv_algo), 0, 2, 1, "convolution algorithm: auto (Winograd for training layers with >= 64 channels), direct or winograd"},
    {"image_threshold", K_FLOAT, M(image_threshold), -1e30, 1e30, 1, "calibrated image-score threshold (set by train)"},
    {"pixel_threshold", K_FLOAT, M(pixel_threshold), -1e30, 1e30, 1, "calibrated pixel threshold (set by train)"},
    {"score_lo", K_FLOAT, M(score_lo), -1e30, 1e30, 1, "score normalisation: typical good score (set by train)"},
    {"score_hi", K_FLOAT, M(score_hi), -1e30, 1e30, 1, "score normalisation: maps to 1 (set by train)"},
    {"batch", K_INT, T(batch), 2, 4096, 0, "images per training step"},
    {"steps", K_LONG, T(steps), 1, 1e12, 0, "training steps"},
    {"seed", K_U64, T(seed), 0, 1.8e19, 0, "random seed"},
    {"threads", K_INT, T(threads), 0, 1024, 0, "compute threads (0: all cores)"},
    {"workers", K_INT, T(workers), 0, 64, 0, "data threads synthesising samples ahead"},
    {"val_fraction", K_FLOAT, T(val_fraction), 0, 0.9, 0, "share of train/good held out for calibration"},
    {"checkpoint_every", K_LONG, T(checkpoint_every), 0, 1e12, 0, "steps between checkpoints (0: end only)"},
    {"log_every", K_LONG, T(log_every), 1, 1e12, 0, "steps between log lines"},
    {"textures", K_STR, T(textures), 0, 0, 0, "folder of anomaly-source images ('' = built-in procedural textures)"},
    {"synth_mode", K_SYNTH_MODE, T(synth_mode), 0, 1, 0, "object (self-augmentation, foreground) or texture"},
    {"foreground", K_FG, T(fg_mode), 0, 3, 0, "foreground restriction: auto, none, estimate, random"},
    {"normal_prob", K_FLOAT, T(normal_prob), 0, 1, 0, "share of samples left normal"},
    {"large_mask_prob", K_FLOAT, T(large_mask_prob), 0, 1, 0, "share of large smooth synthetic defects (0: paper)"},
    {"false_reject", K_FLOAT, T(false_reject), 0, 0.5, 0, "calibration: share of good validation images over the threshold"},
    {"lr_warmup", K_FLOAT, T(lr_warmup), 0, 1e9, 0, "steps of linear learning-rate warm-up"},
    {"minutes", K_FLOAT, T(minutes), 0, 1e7, 0, "wall-clock training budget in minutes (0: off; steps is then an upper bound; not bit-reproducible)"},
    {"lr_schedule", K_LR_SCHED, T(lr_schedule), 0, 1, 0, "learning-rate schedule after warm-up: constant or cosine (to lr_min_ratio at the last step)"},
    {"lr_min_ratio", K_FLOAT, T(lr_min_ratio), 0, 1, 0, "cosine: final learning rate as a share of lr_unet / lr_seg"},
    {"ema_decay", K_FLOAT, T(ema_decay), 0, 0.999999, 0, "exponential moving average of the weights, saved instead of them (0: off; e.g. 0.999)"},
    {"val_every_min", K_FLOAT, T(val_every_min), 0, 1e7, 0, "minutes between validations on synthetic defects in the held-out images (0: off)"},
    {"val_per_image", K_INT, T(val_per_image), 1, 64, 0, "validation: synthetic defects per held-out image"},
    {"keep_best", K_INT, T(keep_best), 0, 1, 0, "with validation: save the best-validated weights (1) or the last (0)"},
};
#define NKEYS ((int)(sizeof KEYS / sizeof KEYS[0]))

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
         * budgets need (DESIGN.md). */
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
        s->model.lr_unet = 2e-4f;
        s->model.lr_seg = 1e-3f;
        s->train.batch = 8;
        s->train.steps = 1500;
        return DD_OK;
    }
    return dd_fail(err, DD_E_INVALID, "unknown profile '%s' (known: cpu, paper)", profile);
}

static const key *find_key(const char *name) {
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(KEYS[i].name, name)) return &KEYS[i];
    return NULL;
}

static int parse_num(const char *v, double *out) {
    char *e;
    errno = 0;
    *out = strtod(v, &e);
    while (*e == ' ') e++;
    return (errno || e == v || *e) ? -1 : 0;
}

static int parse_list(const char *v, int *out, int max, int *n, double lo, double hi) {
    *n = 0;
    if (!strcmp(v, "none") || !*v) return 0;
    const char *p = v;
    while (*p) {
        char *e;
        long x = strtol(p, &e, 10);
        if (e == p || x < lo || x > hi || *n >= max) return -1;
        out[(*n)++] = (int)x;
        p = e;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p) return -1;
    }
    return 0;
}

int dd_settings_set(dd_settings *s, const char *name, const char *v, const char *origin,
                    dd_error *err) {
    const key *k = find_key(name);
    if (!k) return dd_fail(err, DD_E_INVALID, "%s: unknown setting '%s' (see 'diffad train --help')", origin, name);
    char *base = (char *)s + k->off;
    double x;
    switch (k->type) {
    case K_INT: case K_LONG: case K_U64: case K_FLOAT:
        if (parse_num(v, &x))
            return dd_fail(err, DD_E_INVALID, "%s: setting '%s' needs a number, got '%s'", origin, name, v);
        if (!(x >= k->lo && x <= k->hi)) /* written so that NaN fails too */
            return dd_fail(err, DD_E_RANGE, "%s: setting '%s' = %s is out of range %g..%g", origin, name, v, k->lo, k->hi);
        if (k->type != K_FLOAT && x != (double)(long long)x)
            return dd_fail(err, DD_E_INVALID, "%s: setting '%s' needs a whole number, got '%s'", origin, name, v);
        if (k->type == K_INT) *(int *)base = (int)x;
        else if (k->type == K_LONG) *(long *)base = (long)x;
        else if (k->type == K_U64) *(uint64_t *)base = (uint64_t)x;
        else *(float *)base = (float)x;
        return DD_OK;
    case K_SIZE: {
        int h, w;
        char tail;
        if (sscanf(v, "%dx%d%c", &h, &w, &tail) != 2 && sscanf(v, "%d%c", &h, &tail) == 1) w = h;
        else if (sscanf(v, "%dx%d%c", &h, &w, &tail) != 2)
            return dd_fail(err, DD_E_INVALID, "%s: setting 'size' needs HxW (e.g. 128x128), got '%s'", origin, v);
        if (h < k->lo || h > k->hi || w < k->lo || w > k->hi)
            return dd_fail(err, DD_E_RANGE, "%s: size %dx%d out of range %g..%g per side", origin, h, w, k->lo, k->hi);
        s->model.unet.h = h, s->model.unet.w = w;
        return DD_OK;
    }
    case K_MULT: {
        int n;
        if (parse_list(v, s->model.unet.mult, DD_UNET_MAX_LEVELS, &n, k->lo, k->hi) || n == 0)
            return dd_fail(err, DD_E_INVALID, "%s: channel_mult needs 1..%d comma-separated integers 1..16, got '%s'", origin, DD_UNET_MAX_LEVELS, v);
        s->model.unet.levels = n;
        return DD_OK;
    }
    case K_ATTN: {
        int n;
        if (parse_list(v, s->model.unet.attn, DD_UNET_MAX_LEVELS, &n, 1, k->hi))
            return dd_fail(err, DD_E_INVALID, "%s: attention needs comma-separated map sizes or 'none', got '%s'", origin, v);
        s->model.unet.n_attn = n;
        return DD_OK;
    }
    case K_ALGO:
        if (!strcmp(v, "direct")) s->model.conv_algo = DD_CONV_DIRECT;
        else if (!strcmp(v, "winograd")) s->model.conv_algo = DD_CONV_WINOGRAD;
        else if (!strcmp(v, "auto")) s->model.conv_algo = DD_CONV_AUTO;
        else return dd_fail(err, DD_E_INVALID, "%s: conv_algo must be 'auto', 'direct' or 'winograd', got '%s'", origin, v);
        return DD_OK;
    case K_SYNTH_MODE:
        if (!strcmp(v, "object")) s->train.synth_mode = DD_SYNTH_OBJECT;
        else if (!strcmp(v, "texture")) s->train.synth_mode = DD_SYNTH_TEXTURE;
        else return dd_fail(err, DD_E_INVALID, "%s: synth_mode must be 'object' or 'texture', got '%s'", origin, v);
        return DD_OK;
    case K_FG:
        if (!strcmp(v, "auto")) s->train.fg_mode = DD_FG_AUTO;
        else if (!strcmp(v, "none")) s->train.fg_mode = DD_FG_NONE;
        else if (!strcmp(v, "estimate")) s->train.fg_mode = DD_FG_ESTIMATE;
        else if (!strcmp(v, "random")) s->train.fg_mode = DD_FG_RANDOM;
        else return dd_fail(err, DD_E_INVALID, "%s: foreground must be auto, none, estimate or random, got '%s'", origin, v);
        return DD_OK;
    case K_LR_SCHED:
        if (!strcmp(v, "constant")) s->train.lr_schedule = DD_LR_CONSTANT;
        else if (!strcmp(v, "cosine")) s->train.lr_schedule = DD_LR_COSINE;
        else return dd_fail(err, DD_E_INVALID, "%s: lr_schedule must be 'constant' or 'cosine', got '%s'", origin, v);
        return DD_OK;
    case K_STR:
        if (strlen(v) >= sizeof s->train.textures)
            return dd_fail(err, DD_E_RANGE, "%s: setting '%s' is too long", origin, name);
        strcpy(base, v);
        return DD_OK;
    }
    return dd_fail(err, DD_E_INVALID, "%s: setting '%s' has an unknown type", origin, name);
}

int dd_settings_apply_json(dd_settings *s, const dd_json *obj, const char *origin, int model_only,
                           dd_error *err) {
    if (!obj || obj->type != DD_JOBJ) return dd_fail(err, DD_E_FORMAT, "%s: a config must be a JSON object", origin);
    for (const dd_json *c = obj->child; c; c = c->next) {
        const key *k = find_key(c->key);
        if (!k) return dd_fail(err, DD_E_INVALID, "%s: unknown setting '%s'", origin, c->key);
        if (model_only && !k->model) return dd_fail(err, DD_E_FORMAT, "%s: '%s' is not a model setting", origin, c->key);
        char buf[1100];
        if (c->type == DD_JSTR) snprintf(buf, sizeof buf, "%s", c->str);
        else if (c->type == DD_JNUM) snprintf(buf, sizeof buf, "%.17g", c->num);
        else if (c->type == DD_JARR) {
            buf[0] = 0;
            for (const dd_json *e = c->child; e; e = e->next) {
                if (e->type != DD_JNUM) return dd_fail(err, DD_E_INVALID, "%s: '%s' must be a list of numbers", origin, c->key);
                size_t n = strlen(buf);
                snprintf(buf + n, sizeof buf - n, "%s%.17g", n ? "," : "", e->num);
            }
            if (!c->child) strcpy(buf, "none");
        } else return dd_fail(err, DD_E_INVALID, "%s: setting '%s' has the wrong type", origin, c->key);
        int rc = dd_settings_set(s, c->key, buf, origin, err);
        if (rc) return rc;
    }
    return DD_OK;
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

/* exact: round-trip precision (model files); otherwise short (help text). */
static void value_text(const dd_settings *s, const key *k, char *buf, size_t cap, int exact) {
    const char *base = (const char *)s + k->off;
    switch (k->type) {
    case K_INT: snprintf(buf, cap, "%d", *(const int *)base); break;
    case K_LONG: snprintf(buf, cap, "%ld", *(const long *)base); break;
    case K_U64: snprintf(buf, cap, "%llu", (unsigned long long)*(const uint64_t *)base); break;
    case K_FLOAT: snprintf(buf, cap, exact ? "%.9g" : "%g", *(const float *)base); break;
    case K_SIZE: snprintf(buf, cap, "%dx%d", s->model.unet.h, s->model.unet.w); break;
    case K_MULT: case K_ATTN: {
        const int *v = k->type == K_MULT ? s->model.unet.mult : s->model.unet.attn;
        int n = k->type == K_MULT ? s->model.unet.levels : s->model.unet.n_attn;
        buf[0] = 0;
        for (int i = 0; i < n; i++) {
            size_t l = strlen(buf);
            snprintf(buf + l, cap - l, "%s%d", i ? "," : "", v[i]);
        }
        if (!n) snprintf(buf, cap, "none");
        break;
    }
    case K_ALGO:
        snprintf(buf, cap, "%s", s->model.conv_algo == DD_CONV_WINOGRAD ? "winograd" : s->model.conv_algo == DD_CONV_AUTO ? "auto" : "direct");
        break;
    case K_SYNTH_MODE: snprintf(buf, cap, "%s", s->train.synth_mode == DD_SYNTH_TEXTURE ? "texture" : "object"); break;
    case K_FG: {
        static const char *n[] = {"auto", "none", "estimate", "random"};
        int f = s->train.fg_mode;
        snprintf(buf, cap, "%s", f >= 0 && f < 4 ? n[f] : "?");
        break;
    }
    case K_LR_SCHED: snprintf(buf, cap, "%s", s->train.lr_schedule == DD_LR_COSINE ? "cosine" : "constant"); break;
    case K_STR: snprintf(buf, cap, "%s", base); break;
    }
}

char *dd_settings_model_json(const dd_model_config *m) {
    dd_settings s;
    memset(&s, 0, sizeof s);
    s.model = *m;
    size_t cap = 8192;
    char *out = malloc(cap);
    if (!out) return NULL;
    strcpy(out, "{");
    int first = 1;
    for (int i = 0; i < NKEYS; i++) {
        const key *k = &KEYS[i];
        if (!k->model) continue;
        char v[256];
        value_text(&s, k, v, sizeof v, 1);
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s\"%s\":\"%s\"", first ? "" : ",", k->name, v);
        first = 0;
    }
    strcat(out, "}");
    return out;
}

int dd_model_config_from_json(dd_model_config *m, const char *text, const char *origin,
                              dd_error *err) {
    dd_json *j = NULL;
    int rc = dd_json_parse(text, strlen(text), origin, &j, err);
    if (rc) return rc;
    dd_settings s;
    dd_settings_profile(&s, "paper", NULL);
    rc = dd_settings_apply_json(&s, j, origin, 1, err);
    dd_json_free(j);
    if (!rc) *m = s.model;
    return rc;
}

void dd_settings_print_help(const dd_settings *s, FILE *f) {
    for (int i = 0; i < NKEYS; i++) {
        char v[1100];
        value_text(s, &KEYS[i], v, sizeof v, 0);
        fprintf(f, "  --%-18s %-14s %s\n", KEYS[i].name, v, KEYS[i].help);
    }
}
