/* synth.c — synthetic anomalies for training (see synth.h). */
#include "data/synth.h"

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/augment.h"
#include "data/foreground.h"
#include "data/image.h"
#include "data/perlin.h"
#include "data/perlin_texture.h"
#include "data/stroke.h"
#include "core/rng.h"

const char *const dd_synth_mode_names[] = {"object", "texture", NULL};
const char *const dd_fg_mode_names[] = {"auto", "none", "estimate", "random", NULL};

void dd_synth_config_init(dd_synth_config *c) {
    memset(c, 0, sizeof *c);
    c->h = c->w = 256;
    c->normal_prob = 0.5f;
    c->mode = DD_SYNTH_OBJECT;
    c->fg_mode = DD_FG_AUTO;
    c->texture_dir = NULL;
    c->max_textures = 0;
    c->perlin_scale_min = 0;
    c->perlin_scale_max = 5;
    c->perlin_threshold = 0.5f;
    c->rotate_max_deg = 90.0f;
    c->max_tries = 50;
    c->beta_min = 0.2f;
    c->beta_max = 0.8f;
    c->self_aug_prob = 0.5f;
    c->large_mask_prob = 0.0f;
    c->binary_changed_mask = 0;
    c->stroke_mask_prob = 0.0f;
    c->shift_source_prob = 0.0f;
    c->intensity_source_prob = 0.0f;
    c->cache_mb = 1024;
    c->work_scale = 0.0f;
}

/* Keeps the crop draws off the (seed, index) stream of the sample itself, so that
 * fit mode draws exactly the numbers it drew before crops existed. */
#define CROP_SEED_TAG 0x63726f70ULL /* "crop" */

typedef struct {
    uint16_t *img; /* wh*ww*3, value/65535 */
    uint8_t *fg;   /* wh*ww */
    int wh, ww;    /* working size (0 until known) */
} cache_entry;

struct dd_synth {
    dd_synth_config cfg;
    char *texture_dir;
    const dd_dataset *ds;
    uint8_t **tex; /* n_tex textures, h*w*3 bytes each */
    int n_tex;
    pthread_mutex_t mu; /* guards the cache */
    cache_entry *cache;
    long cache_used, cache_cap; /* bytes */
};

const dd_synth_config *dd_synth_config_of(const dd_synth *s) { return &s->cfg; }
int dd_synth_n_textures(const dd_synth *s) { return s->n_tex; }

/* ---- textures ---------------------------------------------------------------- */

typedef struct {
    char **v;
    int n, cap;
} pathlist;

static int pl_push(pathlist *l, char *p) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        char **v = realloc(l->v, sizeof(char *) * (size_t)cap);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = p;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Image files under dir, recursively (sorted by full path). */
static int walk(const char *dir, int depth, pathlist *out, dd_error *err) {
    DIR *d = opendir(dir);
    if (!d) return dd_fail(err, DD_E_IO, "%s: cannot open texture folder: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = DD_OK;
    while (!rc && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(n);
        if (!p) {
            rc = dd_fail(err, DD_E_NOMEM, "%s: no memory", dir);
            break;
        }
        snprintf(p, n, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode) && depth < 8) {
            rc = walk(p, depth + 1, out, err);
            free(p);
        } else if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && dd_is_image_name(e->d_name)) {
            if (pl_push(out, p)) {
                free(p);
                rc = dd_fail(err, DD_E_NOMEM, "%s: no memory", dir);
            }
        } else {
            free(p);
        }
    }
    closedir(d);
    return rc;
}

static int load_texture(const char *path, int h, int w, uint8_t **out, dd_error *err) {
    dd_image im;
    int rc = dd_image_load_rgb(path, &im, err);
    if (rc) return rc;
    float *f = malloc(sizeof(float) * (size_t)h * w * 3);
    uint8_t *t = malloc((size_t)h * w * 3);
    if (!f || !t) {
        free(f);
        free(t);
        dd_image_free(&im);
        return dd_fail(err, DD_E_NOMEM, "%s: no memory for texture", path);
    }
    if (im.h * 2 <= h && im.w * 2 <= w) { /* small tileable pattern: repeat it */
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                memcpy(f + ((size_t)y * w + x) * 3,
                       im.data + ((size_t)(y % im.h) * im.w + (x % im.w)) * 3, 3 * sizeof(float));
    } else if ((rc = dd_resize(im.data, im.h, im.w, 3, f, h, w, err))) {
        free(f);
        free(t);
        dd_image_free(&im);
        return rc;
    }
    for (size_t i = 0; i < (size_t)h * w * 3; i++) {
        float v = f[i];
        t[i] = (uint8_t)(v <= 0 ? 0 : v >= 1 ? 255 : (int)(v * 255.0f + 0.5f));
    }
    free(f);
    dd_image_free(&im);
    *out = t;
    return DD_OK;
}

static int load_textures(dd_synth *s, dd_error *err) {
    pathlist all = {0};
    int rc = walk(s->texture_dir, 0, &all, err);
    if (!rc && all.n == 0)
        rc = dd_fail(err, DD_E_FORMAT, "%s: no images (png, jpg, bmp, pgm, ppm) in texture folder",
                     s->texture_dir);
    if (!rc) {
        qsort(all.v, (size_t)all.n, sizeof(char *), cmp_str);
        int k = all.n;
        if (s->cfg.max_textures > 0 && s->cfg.max_textures < k) k = s->cfg.max_textures;
        s->tex = calloc((size_t)k, sizeof(uint8_t *));
        if (!s->tex) rc = dd_fail(err, DD_E_NOMEM, "textures: no memory");
        for (int i = 0; !rc && i < k; i++) {
            const char *p = all.v[(long)i * all.n / k]; /* evenly spaced subset */
            rc = load_texture(p, s->cfg.h, s->cfg.w, &s->tex[i], err);
            if (!rc) s->n_tex = i + 1;
        }
    }
    for (int i = 0; i < all.n; i++) free(all.v[i]);
    free(all.v);
    return rc;
}

/* ---- lifetime ------------------------------------------------------------------ */

int dd_synth_create(const dd_dataset *ds, const dd_synth_config *cfg, dd_synth **out,
                    dd_error *err) {
    *out = NULL;
    if (!cfg) return dd_fail(err, DD_E_INVALID, "synth: no config");
    if (cfg->h < 8 || cfg->w < 8 || cfg->h > 8192 || cfg->w > 8192)
        return dd_fail(err, DD_E_RANGE, "synth: model size %dx%d not in 8..8192", cfg->h, cfg->w);
    if (!(cfg->normal_prob >= 0 && cfg->normal_prob <= 1) ||
        !(cfg->self_aug_prob >= 0 && cfg->self_aug_prob <= 1) ||
        !(cfg->large_mask_prob >= 0 && cfg->large_mask_prob <= 1) ||
        !(cfg->stroke_mask_prob >= 0 && cfg->stroke_mask_prob <= 1) ||
        !(cfg->shift_source_prob >= 0 && cfg->shift_source_prob <= 1) ||
        !(cfg->intensity_source_prob >= 0 && cfg->intensity_source_prob <= 1))
        return dd_fail(err, DD_E_RANGE, "synth: probabilities must lie in [0, 1]");
    if (!(cfg->beta_min >= 0 && cfg->beta_min <= cfg->beta_max && cfg->beta_max <= 1))
        return dd_fail(err, DD_E_RANGE, "synth: need 0 <= beta_min <= beta_max <= 1 (got %g, %g)",
                       cfg->beta_min, cfg->beta_max);
    if (cfg->perlin_scale_min < 0 || cfg->perlin_scale_max > 6 ||
        cfg->perlin_scale_min > cfg->perlin_scale_max)
        return dd_fail(err, DD_E_RANGE, "synth: Perlin scales must satisfy 0 <= min <= max <= 6");
    if (cfg->mode != DD_SYNTH_OBJECT && cfg->mode != DD_SYNTH_TEXTURE)
        return dd_fail(err, DD_E_INVALID, "synth: unknown mode %d", cfg->mode);
    if (cfg->fg_mode < DD_FG_AUTO || cfg->fg_mode > DD_FG_RANDOM)
        return dd_fail(err, DD_E_INVALID, "synth: unknown foreground mode %d", cfg->fg_mode);
    dd_synth *s = calloc(1, sizeof *s);
    if (!s) return dd_fail(err, DD_E_NOMEM, "synth: no memory");
    s->cfg = *cfg;
    s->ds = ds;
    pthread_mutex_init(&s->mu, NULL);
    if (cfg->texture_dir) {
        s->texture_dir = strdup(cfg->texture_dir);
        s->cfg.texture_dir = s->texture_dir;
    }
    int rc = DD_OK;
    if (cfg->texture_dir && !s->texture_dir) rc = dd_fail(err, DD_E_NOMEM, "synth: no memory");
    if (!rc && s->texture_dir) rc = load_textures(s, err);
    if (!rc && ds && ds->n_train > 0) {
        s->cache = calloc((size_t)ds->n_train, sizeof(cache_entry));
        if (!s->cache) rc = dd_fail(err, DD_E_NOMEM, "synth: no memory");
        s->cache_cap = cfg->cache_mb > 0 ? cfg->cache_mb * 1024L * 1024L : 0;
    }
    if (rc) {
        dd_synth_free(s);
        return rc;
    }
    *out = s;
    return DD_OK;
}

void dd_synth_free(dd_synth *s) {
    if (!s) return;
    for (int i = 0; i < s->n_tex; i++) free(s->tex[i]);
    free(s->tex);
    if (s->cache && s->ds)
        for (int i = 0; i < s->ds->n_train; i++) {
            free(s->cache[i].img);
            free(s->cache[i].fg);
        }
    free(s->cache);
    free(s->texture_dir);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- training images and their foreground ----------------------------------------- */

/* Which foreground an item uses (random regions are drawn per sample). */
enum { FG_ALL, FG_FILE, FG_EST, FG_RANDOM };

static int fg_kind(const dd_synth *s, const dd_item *it) {
    if (s->cfg.fg_mode == DD_FG_NONE) return FG_ALL;
    if (it && it->fg_path) return FG_FILE;
    if (s->cfg.fg_mode == DD_FG_RANDOM) return FG_RANDOM;
    if (s->cfg.fg_mode == DD_FG_ESTIMATE) return FG_EST;
    return s->cfg.mode == DD_SYNTH_OBJECT ? FG_EST : FG_ALL;
}

static int compute_fg(const dd_synth *s, const dd_item *it, const float *img, uint8_t *fg, int h,
                      int w, dd_error *err) {
    size_t n = (size_t)h * w;
    switch (fg_kind(s, it)) {
    case FG_FILE: {
        dd_image m;
        int rc = dd_image_load_mask(it->fg_path, &m, err);
        if (rc) return rc;
        float *r = malloc(sizeof(float) * n);
        if (!r) {
            dd_image_free(&m);
            return dd_fail(err, DD_E_NOMEM, "%s: no memory", it->fg_path);
        }
        rc = dd_resize(m.data, m.h, m.w, 1, r, h, w, err);
        long cnt = 0;
        for (size_t i = 0; !rc && i < n; i++) cnt += fg[i] = r[i] > 0.5f;
        if (!rc && cnt == 0) memset(fg, 1, n); /* an empty mask would allow no defect at all */
        free(r);
        dd_image_free(&m);
        return rc;
    }
    case FG_EST: return dd_foreground_estimate(img, h, w, fg, NULL, err);
    default: memset(fg, 1, n); return DD_OK;
    }
}

/* Size of a training item at the working scale: the model size in fit mode, else the
 * image resized by work_scale with each side at least the model side (as the scorer,
 * infer/scorer.h, sizes an image for inference). Read from the header once. */
static int item_work_size(dd_synth *s, int item, int *wh, int *ww, dd_error *err) {
    int h = s->cfg.h, w = s->cfg.w;
    if (!(s->cfg.work_scale > 0)) {
        *wh = h, *ww = w;
        return DD_OK;
    }
    cache_entry *ce = &s->cache[item];
    pthread_mutex_lock(&s->mu);
    int kh = ce->wh, kw = ce->ww;
    pthread_mutex_unlock(&s->mu);
    if (!kh) {
        int ih, iw, c;
        int rc = dd_image_info(s->ds->train[item].path, &ih, &iw, &c, err);
        if (rc) return rc;
        dd_scaled_size(ih, iw, s->cfg.work_scale, h, w, &kh, &kw);
        pthread_mutex_lock(&s->mu);
        ce->wh = kh, ce->ww = kw;
        pthread_mutex_unlock(&s->mu);
    }
    *wh = kh, *ww = kw;
    return DD_OK;
}

/* Normal image (float, after 16-bit rounding) and foreground of a training item at its
 * working size wh x ww (item_work_size). */
static int get_item(dd_synth *s, int item, float *img, uint8_t *fg, int wh, int ww, dd_error *err) {
    if (!s->ds || item < 0 || item >= s->ds->n_train)
        return dd_fail(err, DD_E_RANGE, "synth: training item %d out of range (0..%d)", item,
                       s->ds ? s->ds->n_train - 1 : -1);
    size_t n = (size_t)wh * ww, n3 = n * 3;
    pthread_mutex_lock(&s->mu);
    cache_entry *ce = &s->cache[item];
    if (ce->img) {
        for (size_t i = 0; i < n3; i++) img[i] = (float)ce->img[i] / 65535.0f;
        memcpy(fg, ce->fg, n);
        pthread_mutex_unlock(&s->mu);
        return DD_OK;
    }
    pthread_mutex_unlock(&s->mu);
    const dd_item *it = &s->ds->train[item];
    int rc = dd_item_load(it, wh, ww, img, NULL, err);
    if (rc) return rc;
    uint16_t *q = malloc(n3 * sizeof(uint16_t));
    if (!q) return dd_fail(err, DD_E_NOMEM, "%s: no memory", it->path);
    for (size_t i = 0; i < n3; i++) {
        float v = img[i];
        q[i] = (uint16_t)(v <= 0 ? 0 : v >= 1 ? 65535 : (int)(v * 65535.0f + 0.5f));
        img[i] = (float)q[i] / 65535.0f;
    }
    if ((rc = compute_fg(s, it, img, fg, wh, ww, err))) {
        free(q);
        return rc;
    }
    long bytes = (long)(n3 * sizeof(uint16_t) + n);
    uint8_t *f = NULL;
    pthread_mutex_lock(&s->mu);
    if (!ce->img && s->cache_used + bytes <= s->cache_cap && (f = malloc(n))) {
        memcpy(f, fg, n);
        ce->img = q;
        ce->fg = f;
        s->cache_used += bytes;
        q = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    free(q);
    return DD_OK;
}

/* The model-size normal image and foreground of sample (seed, index) of an item: the
 * whole item in fit mode, else a crop at a position drawn from (seed ^ CROP_SEED_TAG,
 * index). */
static int get_crop(dd_synth *s, int item, uint64_t seed, uint64_t index, float *img, uint8_t *fg,
                    dd_error *err) {
    if (!s->ds || item < 0 || item >= s->ds->n_train)
        return dd_fail(err, DD_E_RANGE, "synth: training item %d out of range (0..%d)", item,
                       s->ds ? s->ds->n_train - 1 : -1);
    int h = s->cfg.h, w = s->cfg.w, wh, ww;
    int rc = item_work_size(s, item, &wh, &ww, err);
    if (rc) return rc;
    if (wh == h && ww == w) return get_item(s, item, img, fg, h, w, err);
    dd_rng r;
    dd_rng_seed2(&r, seed ^ CROP_SEED_TAG, index);
    int y0 = (int)dd_rng_int(&r, 0, wh - h), x0 = (int)dd_rng_int(&r, 0, ww - w);
    /* cached: convert only the crop */
    pthread_mutex_lock(&s->mu);
    const cache_entry *ce = &s->cache[item];
    if (ce->img) {
        for (int y = 0; y < h; y++) {
            const uint16_t *q = ce->img + ((size_t)(y0 + y) * ww + x0) * 3;
            float *o = img + (size_t)y * w * 3;
            for (int x = 0; x < w * 3; x++) o[x] = (float)q[x] / 65535.0f;
            memcpy(fg + (size_t)y * w, ce->fg + (size_t)(y0 + y) * ww + x0, (size_t)w);
        }
        pthread_mutex_unlock(&s->mu);
        return DD_OK;
    }
    pthread_mutex_unlock(&s->mu);
    float *full = malloc((size_t)wh * ww * 3 * sizeof(float));
    uint8_t *ffg = malloc((size_t)wh * ww);
    if (!full || !ffg) rc = dd_fail(err, DD_E_NOMEM, "synth: no memory for a %dx%d training image", wh, ww);
    if (!rc) rc = get_item(s, item, full, ffg, wh, ww, err);
    if (!rc) {
        for (int y = 0; y < h; y++) {
            memcpy(img + (size_t)y * w * 3, full + ((size_t)(y0 + y) * ww + x0) * 3, (size_t)w * 3 * sizeof(float));
            memcpy(fg + (size_t)y * w, ffg + (size_t)(y0 + y) * ww + x0, (size_t)w);
        }
    }
    free(full);
    free(ffg);
    return rc;
}

int dd_synth_foreground(dd_synth *s, int item, uint8_t *fg, dd_error *err) {
    size_t n3 = (size_t)s->cfg.h * s->cfg.w * 3;
    float *img = malloc(n3 * sizeof(float));
    if (!img) return dd_fail(err, DD_E_NOMEM, "synth: no memory");
    int rc = get_crop(s, item, 0, 0, img, fg, err);
    free(img);
    return rc;
}

int dd_synth_normal(dd_synth *s, int item, uint64_t seed, uint64_t index, float *img, dd_error *err) {
    if (!s || !img) return dd_fail(err, DD_E_INVALID, "synth: NULL buffer");
    uint8_t *fg = malloc((size_t)s->cfg.h * s->cfg.w);
    if (!fg) return dd_fail(err, DD_E_NOMEM, "synth: no memory");
    int rc = get_crop(s, item, seed, index, img, fg, err);
    free(fg);
    return rc;
}

/* ---- one sample ------------------------------------------------------------------------- */

static void random_region(uint8_t *fg, int h, int w, dd_rng *r) {
    int rh = (int)(h * dd_rng_range(r, 0.3f, 1.0f)), rw = (int)(w * dd_rng_range(r, 0.3f, 1.0f));
    if (rh < 1) rh = 1;
    if (rw < 1) rw = 1;
    int y0 = (int)dd_rng_int(r, 0, h - rh), x0 = (int)dd_rng_int(r, 0, w - rw);
    memset(fg, 0, (size_t)h * w);
    for (int y = y0; y < y0 + rh; y++) memset(fg + (size_t)y * w + x0, 1, (size_t)rw);
}

/* The part's own structure, displaced: a[y][x] = normal[(y - dy) mod h][(x - dx) mod w] with
 * dy, dx ~ U{-h/4..h/4}, U{-w/4..w/4} (redrawn, at most 16 times, while |dy| + |dx| < 2).
 * Pasted under the mask it moves, removes or duplicates features at their own scale and
 * contrast (a trace where there was none, a gap in a thread) — defects a texture or a
 * shuffled copy does not look like. *moved = |dy| + |dx| (reported as info->texture). */
static void shifted_copy(const float *normal, float *a, int h, int w, dd_rng *r, int *moved) {
    int my = h / 4 > 1 ? h / 4 : 1, mx = w / 4 > 1 ? w / 4 : 1;
    int dy = 0, dx = 0;
    for (int tries = 0; tries < 16 && abs(dy) + abs(dx) < 2; tries++) {
        dy = (int)dd_rng_int(r, -my, my);
        dx = (int)dd_rng_int(r, -mx, mx);
    }
    if (abs(dy) + abs(dx) < 2) dx = dx < 0 ? -2 : 2; /* never the image itself */
    for (int y = 0; y < h; y++) {
        int sy = ((y - dy) % h + h) % h;
        for (int x = 0; x < w; x++) {
            int sx = ((x - dx) % w + w) % w;
            memcpy(a + ((size_t)y * w + x) * 3, normal + ((size_t)sy * w + sx) * 3, 3 * sizeof(float));
        }
    }
    *moved = abs(dy) + abs(dx);
}

/* The intensity-only source: the part itself, darker or lighter by a change of one sign
 * s and size d ~ U(0.15, 0.5) of full scale, split u ~ U(0, 1) between a gain and an offset,
 * A = clamp(N * (1 + s*d*u) + s*d*(1 - u) / 2, 0, 1), every channel alike (grey stays grey).
 * After the blend (1 - beta in 0.2 .. 0.8) the visible change is ~1.5 % .. 40 % of full scale:
 * stains, discoloured or low-contrast regions that keep the part's own structure, which no
 * texture or shuffled copy produces (docs/training.md, findings 4 and 5). *milli = the signed
 * change in 1/1000 (reported as info->texture). */
static void intensity_copy(const float *normal, float *a, size_t n3, dd_rng *r, int *milli) {
    float sign = dd_rng_uniform(r) < 0.5f ? -1.0f : 1.0f;
    float d = dd_rng_range(r, 0.15f, 0.5f), u = dd_rng_uniform(r);
    float gain = 1.0f + sign * d * u, offset = sign * d * (1.0f - u) * 0.5f;
    for (size_t i = 0; i < n3; i++) {
        float v = normal[i] * gain + offset;
        a[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    }
    *milli = (int)lrintf(sign * d * 1000.0f);
}

/* Drops from mask the pixels whose largest channel change from normal to img is below
 * min_change; returns the pixels left. */
static long keep_changed(float *mask, const float *img, const float *normal, size_t n, float min_change) {
    long left = 0;
    for (size_t i = 0; i < n; i++) {
        if (mask[i] == 0.0f) continue;
        float dmax = 0.0f;
        for (int k = 0; k < 3; k++) {
            float dv = fabsf(img[i * 3 + k] - normal[i * 3 + k]);
            dmax = dv > dmax ? dv : dmax;
        }
        if (dmax < min_change) mask[i] = 0.0f;
        else left++;
    }
    return left;
}

static int apply_core(dd_synth *s, const float *normal, const uint8_t *fg, uint64_t seed,
                      uint64_t index, float *img, float *mask, float *label, float *source,
                      dd_synth_info *info, int random_fg, dd_error *err) {
    const dd_synth_config *c = &s->cfg;
    int h = c->h, w = c->w;
    size_t n = (size_t)h * w, n3 = n * 3;
    dd_synth_info inf = {0, DD_SRC_NONE, -1, {-1, -1, -1}, 0, 0.0f, 0};
    dd_rng r;
    dd_rng_seed2(&r, seed, index);

    memcpy(img, normal, n3 * sizeof(float));
    memset(mask, 0, n * sizeof(float));
    if (source) memset(source, 0, n3 * sizeof(float));
    *label = 0.0f;
    if (dd_rng_uniform(&r) < c->normal_prob) {
        if (info) *info = inf;
        return DD_OK;
    }
    float *scratch = malloc(n3 * sizeof(float));
    float *a = source ? source : malloc(n3 * sizeof(float));
    uint8_t *region = random_fg ? malloc(n) : NULL;
    if (!scratch || !a || (random_fg && !region)) {
        free(scratch);
        if (a != source) free(a);
        free(region);
        return dd_fail(err, DD_E_NOMEM, "synth: no memory for a %dx%d sample", h, w);
    }
    if (random_fg) {
        random_region(region, h, w, &r);
        fg = region;
    }
    dd_perlin_params pp;
    dd_perlin_params_init(&pp);
    pp.scale_min = c->perlin_scale_min;
    pp.scale_max = c->perlin_scale_max;
    pp.threshold = c->perlin_threshold;
    pp.rotate_max_deg = c->rotate_max_deg;
    pp.max_tries = c->max_tries;
    /* Only draw for an extension when it is on, so the paper's stream of
     * random numbers is unchanged by its existence. */
    if (c->stroke_mask_prob > 0 && dd_rng_uniform(&r) < c->stroke_mask_prob) {
        inf.mask_pixels = dd_stroke_mask(mask, h, w, fg, c->max_tries, &r, &inf.tries);
    } else {
        if (c->large_mask_prob > 0 && dd_rng_uniform(&r) < c->large_mask_prob) {
            pp.scale_min = 0;
            pp.scale_max = 2;
            pp.threshold = dd_rng_range(&r, 0.2f, 0.5f);
        }
        inf.mask_pixels = dd_perlin_mask(mask, h, w, fg, &pp, &r, &inf.tries);
    }
    if (inf.mask_pixels == 0) { /* nowhere to paste: a normal sample, honestly labelled */
        memset(mask, 0, n * sizeof(float));
    } else {
        /* A grey part gets grey defects: colour alone would be a give-away the
         * segmentation net learns instead of the defect's structure. */
        int grey = 1;
        for (size_t i = 0; i < n && grey; i++)
            grey = normal[i * 3] == normal[i * 3 + 1] && normal[i * 3] == normal[i * 3 + 2];
        /* A binary part (e.g. a binarised PCB scan; after resizing only its edges
         * are grey) gets binary defects: a blended grey patch would never occur in
         * a real image and would teach the wrong cue. */
        size_t pure = 0;
        for (size_t i = 0; grey && i < n; i++) pure += normal[i * 3] == 0.0f || normal[i * 3] == 1.0f;
        int binary = grey && pure >= n * 3 / 4;
        /* Each extension draws only when it is on (and the intensity one only where it can
         * change something: not on binary parts), so that the paper's random stream is
         * unchanged by its existence. */
        int intensity = 0;
        if (c->intensity_source_prob > 0 && !binary && dd_rng_uniform(&r) < c->intensity_source_prob) {
            intensity = 1;
            inf.source = DD_SRC_INTENSITY;
            intensity_copy(normal, a, n3, &r, &inf.texture);
        } else if (c->shift_source_prob > 0 && dd_rng_uniform(&r) < c->shift_source_prob) {
            inf.source = DD_SRC_SHIFT;
            shifted_copy(normal, a, h, w, &r, &inf.texture);
        } else if (c->mode == DD_SYNTH_OBJECT && dd_rng_uniform(&r) < c->self_aug_prob) {
            inf.source = DD_SRC_SELF;
            memcpy(a, normal, n3 * sizeof(float));
            dd_aug_pick3(a, h, w, &r, scratch, inf.aug);
            dd_strip_shuffle(a, h, w, 8, &r, scratch);
        } else {
            if (s->n_tex > 0) {
                inf.source = DD_SRC_TEXTURE;
                inf.texture = (int)dd_rng_int(&r, 0, s->n_tex - 1);
                const uint8_t *t = s->tex[inf.texture];
                for (size_t i = 0; i < n3; i++) a[i] = (float)t[i] / 255.0f;
            } else {
                inf.source = DD_SRC_PROCEDURAL;
                inf.texture = dd_procedural_texture(a, h, w, &r, scratch);
            }
            dd_aug_pick3(a, h, w, &r, scratch, inf.aug);
        }
        if (grey)
            for (size_t i = 0; i < n; i++) {
                float y = 0.299f * a[i * 3] + 0.587f * a[i * 3 + 1] + 0.114f * a[i * 3 + 2];
                a[i * 3] = a[i * 3 + 1] = a[i * 3 + 2] = y;
            }
        float beta = dd_rng_range(&r, c->beta_min, c->beta_max);
        if (c->beta_max <= c->beta_min) beta = c->beta_min;
        inf.beta = beta;
        for (size_t i = 0; i < n; i++) {
            if (mask[i] == 0.0f) continue;
            for (int k = 0; k < 3; k++) {
                float v = beta * normal[i * 3 + k] + (1.0f - beta) * a[i * 3 + k];
                img[i * 3 + k] = binary ? (v > 0.5f ? 1.0f : 0.0f) : v;
            }
        }
        /* Label only what the paste changed: on a binary part thresholding keeps many of the
         * region's pixels as they were (any change counts); an intensity change the clamp
         * leaves invisible (a white or black part: under half a grey level) is no defect. The
         * two never meet (intensity sources skip binary parts). */
        if (binary && c->binary_changed_mask) inf.mask_pixels = keep_changed(mask, img, normal, n, FLT_TRUE_MIN);
        else if (intensity) inf.mask_pixels = keep_changed(mask, img, normal, n, 0.5f / 255.0f);
        inf.anomalous = inf.mask_pixels > 0;
        *label = inf.anomalous ? 1.0f : 0.0f;
    }
    if (info) *info = inf;
    free(scratch);
    if (a != source) free(a);
    free(region);
    return DD_OK;
}

int dd_synth_apply(dd_synth *s, const float *normal, const uint8_t *fg, uint64_t seed,
                   uint64_t index, float *img, float *mask, float *label, float *source,
                   dd_synth_info *info, dd_error *err) {
    if (!s || !normal || !img || !mask || !label)
        return dd_fail(err, DD_E_INVALID, "synth: NULL buffer");
    int kind = fg_kind(s, NULL);
    if (s->cfg.fg_mode == DD_FG_NONE) fg = NULL;
    return apply_core(s, normal, fg, seed, index, img, mask, label, source, info,
                      kind == FG_RANDOM, err);
}

int dd_synth_sample(dd_synth *s, int item, uint64_t seed, uint64_t index, float *img,
                    float *mask, float *label, float *source, dd_synth_info *info,
                    dd_error *err) {
    if (!s || !img || !mask || !label) return dd_fail(err, DD_E_INVALID, "synth: NULL buffer");
    size_t n = (size_t)s->cfg.h * s->cfg.w;
    float *normal = malloc(n * 3 * sizeof(float));
    uint8_t *fg = malloc(n);
    if (!normal || !fg) {
        free(normal);
        free(fg);
        return dd_fail(err, DD_E_NOMEM, "synth: no memory");
    }
    int rc = get_crop(s, item, seed, index, normal, fg, err);
    if (!rc) {
        int random_fg = s->ds && fg_kind(s, &s->ds->train[item]) == FG_RANDOM;
        rc = apply_core(s, normal, fg, seed, index, img, mask, label, source, info, random_fg,
                        err);
    }
    free(normal);
    free(fg);
    return rc;
}
