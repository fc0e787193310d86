/* api.c — the public API of include/diffad.h over the model file (modelfile.h)
 * and the scorer (infer/scorer.h). One context = one inference model (batch 1),
 * its scorer and the staging buffer for the caller's pixels; nothing is
 * allocated per prediction once the largest image size has been seen. */
#include "diffad.h"

#include <assert.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/status.h"
#include "eval/drift.h"
#include "eval/regions.h"
#include "infer/scorer.h"
#include "model/modelfile.h"

/* The internal status codes (core/status.h) are returned to callers unchanged
 * (diffad_create and diffad_predict pass a dd_* failure code through), so every
 * DD_E_* must equal its public DIFFAD_E_* twin. */
static_assert((int)DD_OK == (int)DIFFAD_OK, "status codes: DD_OK != DIFFAD_OK");
static_assert((int)DD_E_INVALID == (int)DIFFAD_E_INVALID, "status codes: DD_E_INVALID != DIFFAD_E_INVALID");
static_assert((int)DD_E_NOMEM == (int)DIFFAD_E_NOMEM, "status codes: DD_E_NOMEM != DIFFAD_E_NOMEM");
static_assert((int)DD_E_IO == (int)DIFFAD_E_IO, "status codes: DD_E_IO != DIFFAD_E_IO");
static_assert((int)DD_E_FORMAT == (int)DIFFAD_E_FORMAT, "status codes: DD_E_FORMAT != DIFFAD_E_FORMAT");
static_assert((int)DD_E_BACKEND == (int)DIFFAD_E_BACKEND, "status codes: DD_E_BACKEND != DIFFAD_E_BACKEND");
static_assert((int)DD_E_RANGE == (int)DIFFAD_E_RANGE, "status codes: DD_E_RANGE != DIFFAD_E_RANGE");
/* the region keys' ranges are the model's (model/model.h) */
static_assert(DIFFAD_MAX_AREA == DD_MAX_AREA, "DIFFAD_MAX_AREA != DD_MAX_AREA");
static_assert(DIFFAD_MAX_REGIONS == DD_MAX_REGIONS, "DIFFAD_MAX_REGIONS != DD_MAX_REGIONS");
static_assert((long)DIFFAD_MAX_MM_PER_PIXEL == (long)DD_MAX_MM_PER_PIXEL, "DIFFAD_MAX_MM_PER_PIXEL != DD_MAX_MM_PER_PIXEL");

struct diffad_ctx {
    diffad_params params;
    dd_model *model;
    dd_scorer *scorer; /* the one scoring path (infer/scorer.h), shared with calibration */
    int h, w;
    float *staging;    /* [max source pixels * 3] float copy of the caller's pixels, grown once */
    size_t staging_cap;
    diffad_region_params rp; /* the model's region keys, or diffad_set_region_params' */
    dd_regions regions;      /* labelling buffers (calibrated models), grown with the largest map */
    dd_region *found;        /* [region_cap] the regions of the last map */
    diffad_region *out;      /* [region_cap] the same as the caller sees them */
    int region_cap;          /* >= rp.max_regions, at least 1 */
    float *calib_scores;     /* the model file's calibration_scores (eval/drift.h), or NULL */
    size_t n_calib, n_calib_images;
    const uint8_t *last_roi; /* the ROI at the last prediction's input size (scorer-owned), or NULL */
    char err[512];
};

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int set_err(diffad_ctx *c, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    if (c->params.log) c->params.log(DIFFAD_LOG_ERROR, c->err, c->params.log_user);
    return code;
}

static int is_calibrated(const dd_model_config *cfg) { return cfg->score_hi > cfg->score_lo; }

/* Check and take region settings; the output arrays grow to max_regions (never per image). */
static int region_params(diffad_ctx *c, const diffad_region_params *rp, dd_error *err) {
    int rc = dd_model_check_regions(rp->min_area, rp->max_regions, rp->mm_per_pixel, "", err);
    if (!rc) rc = dd_model_check_review(rp->review_lo, rp->review_hi, "", err);
    if (rc) return rc;
    int need = rp->max_regions > 1 ? rp->max_regions : 1;
    if (need > c->region_cap) {
        dd_region *f = realloc(c->found, (size_t)need * sizeof *f);
        if (f) c->found = f;
        diffad_region *o = realloc(c->out, (size_t)need * sizeof *o);
        if (o) c->out = o;
        if (!f || !o) return dd_fail(err, DD_E_NOMEM, "out of memory for %d regions", need);
        c->region_cap = need;
    }
    c->rp = *rp;
    return DD_OK;
}

void diffad_params_init(diffad_params *p) {
    memset(p, 0, sizeof *p);
    p->seed = DD_PREDICT_SEED;
}

/* The file's good-score distribution (metadata, eval/drift.h); absent in older files. */
static int load_calibration_scores(diffad_ctx *c, const char *path, dd_error *err) {
    dd_model_config cfg;
    char *text = NULL;
    int rc = dd_model_file_config(path, &cfg, DD_CALIB_SCORES_KEY, &text, err);
    if (!rc && text) {
        rc = dd_calib_scores_parse(text, &c->calib_scores, &c->n_calib, &c->n_calib_images, err);
        if (rc) {
            char m[sizeof err->msg];
            snprintf(m, sizeof m, "%s", err->msg);
            rc = dd_fail(err, rc, "%s: %s", path, m);
        }
    }
    free(text);
    return rc;
}

int diffad_create(const char *model_path, const diffad_params *p, diffad_ctx **out, char *errbuf,
                  size_t errlen) {
    dd_error err = {0};
    if (out) *out = NULL;
    if (!model_path || !out) {
        if (errbuf && errlen) snprintf(errbuf, errlen, "diffad_create: NULL model path or output");
        return DIFFAD_E_INVALID;
    }
    diffad_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        if (errbuf && errlen) snprintf(errbuf, errlen, "diffad_create: out of memory");
        return DIFFAD_E_NOMEM;
    }
    if (p) c->params = *p;
    else diffad_params_init(&c->params);
    static const int to_dd[] = {-1, DD_PREC_AUTO, DD_PREC_F32, DD_PREC_BF16};
    int prec = c->params.precision;
    int rc = prec < 0 || prec > DIFFAD_PRECISION_BF16
                 ? dd_fail(&err, DD_E_INVALID, "diffad_create: precision %d is not one of DIFFAD_PRECISION_*", prec)
                 : dd_model_load_at(model_path, 1, 0, c->params.threads, to_dd[prec], &c->model, &err);
    /* the context never changes its weights: keep them converted (src/model/model.h) */
    if (!rc) rc = dd_model_freeze_weights(c->model, &err);
    if (!rc) {
        c->h = c->model->cfg.unet.h, c->w = c->model->cfg.unet.w;
        dd_scorer_opts so;
        dd_scorer_opts_init(&so);
        so.seed = c->params.seed;
        so.want_recon = !c->params.skip_recon;
        rc = dd_scorer_create(c->model, &so, &c->scorer, &err);
    }
    if (!rc) {
        const dd_model_config *cfg = &c->model->cfg;
        diffad_region_params rp = {cfg->min_area, cfg->max_regions, cfg->mm_per_pixel, cfg->review_lo, cfg->review_hi};
        rc = region_params(c, &rp, &err);
        if (!rc && is_calibrated(cfg)) rc = load_calibration_scores(c, model_path, &err);
        /* a calibrated model's regions: buffers for a map of the model size now, so images of
         * that size find their regions without growing anything */
        if (!rc && is_calibrated(cfg)) rc = dd_regions_reserve(&c->regions, c->h, c->w, &err);
    }
    if (!rc && c->params.memory_budget && diffad_memory(c) > c->params.memory_budget)
        rc = dd_fail(&err, DD_E_NOMEM, "%s: the model needs %.1f MiB, over the budget of %.1f MiB", model_path,
                     diffad_memory(c) / 1048576.0, c->params.memory_budget / 1048576.0);
    if (rc) {
        if (errbuf && errlen) snprintf(errbuf, errlen, "%s", err.msg);
        if (c->params.log) c->params.log(DIFFAD_LOG_ERROR, err.msg, c->params.log_user);
        diffad_free(c);
        return rc;
    }
    /* One warm-up prediction on a blank model-size image: oneDNN's first calls
     * JIT-compile kernels and start threads, which would otherwise land on the
     * first real image. */
    c->staging = calloc((size_t)c->h * c->w * 3, sizeof(float));
    dd_score sc;
    if (!c->staging) rc = dd_fail(&err, DD_E_NOMEM, "%s: out of memory for the image buffers", model_path);
    else {
        c->staging_cap = (size_t)c->h * c->w * 3;
        rc = dd_scorer_run(c->scorer, c->staging, c->h, c->w, &sc, &err);
    }
    if (rc) {
        if (errbuf && errlen) snprintf(errbuf, errlen, "%s", err.msg);
        diffad_free(c);
        return rc;
    }
    if (c->params.log) {
        char m[256];
        snprintf(m, sizeof m, "loaded %s: %dx%d, %.1f MiB", model_path, c->h, c->w, diffad_memory(c) / 1048576.0);
        c->params.log(DIFFAD_LOG_INFO, m, c->params.log_user);
    }
    *out = c;
    return DIFFAD_OK;
}

/* Bytes of the region buffers after a map of h x w (none for an uncalibrated model, which
 * finds no regions). */
static size_t region_bytes(const diffad_ctx *c, int h, int w) {
    size_t out = (size_t)c->region_cap * (sizeof *c->found + sizeof *c->out);
    if (!is_calibrated(&c->model->cfg)) return out + dd_regions_bytes(&c->regions);
    return out + dd_regions_bytes_for(&c->regions, h, w);
}

/* Caller's pixels -> float [0,1] RGB at source size (staging). */
static int preprocess(diffad_ctx *c, const diffad_image *img) {
    if (!img || !img->data) return set_err(c, DIFFAD_E_INVALID, "predict: NULL image or pixel buffer");
    if (img->width <= 0 || img->height <= 0 || img->width > 65536 || img->height > 65536 ||
        (long long)img->width * img->height > (1LL << 28))
        return set_err(c, DIFFAD_E_INVALID, "predict: image size %dx%d out of range", img->width, img->height);
    if (img->channels != 1 && img->channels != 3)
        return set_err(c, DIFFAD_E_INVALID, "predict: %d channels; 1 (grey) or 3 (RGB) expected", img->channels);
    if (img->format != DIFFAD_U8 && img->format != DIFFAD_F32)
        return set_err(c, DIFFAD_E_INVALID, "predict: unknown pixel format %d", img->format);
    size_t sample = img->format == DIFFAD_U8 ? 1 : sizeof(float);
    size_t row = (size_t)img->width * img->channels * sample;
    if (img->stride < row)
        return set_err(c, DIFFAD_E_INVALID, "predict: stride %zu bytes is smaller than a row of %zu bytes", img->stride, row);
    /* the last row starts at (height-1)*stride: that and its row must be addressable */
    if (img->stride > DIFFAD_MAX_STRIDE ||
        (img->height > 1 && img->stride > ((size_t)PTRDIFF_MAX - row) / (size_t)(img->height - 1)))
        return set_err(c, DIFFAD_E_INVALID, "predict: stride %zu bytes is too large (at most %zu, and (height-1)*stride + row "
                       "must fit in memory)", img->stride, (size_t)DIFFAD_MAX_STRIDE);
    size_t n = (size_t)img->width * img->height * 3;
    /* buffers grow only when a larger source size first appears; the budget is checked first */
    size_t need = dd_model_memory(c->model) + dd_scorer_bytes_for(c->scorer, img->height, img->width) +
                  (n > c->staging_cap ? n : c->staging_cap) * sizeof(float) + region_bytes(c, img->height, img->width);
    if (c->params.memory_budget && need > c->params.memory_budget)
        return set_err(c, DIFFAD_E_NOMEM, "predict: a %dx%d image needs %.1f MiB in all, over the memory budget of %.1f MiB",
                       img->width, img->height, need / 1048576.0, c->params.memory_budget / 1048576.0);
    if (n > c->staging_cap) {
        float *s = realloc(c->staging, n * sizeof(float));
        if (!s) return set_err(c, DIFFAD_E_NOMEM, "predict: out of memory for a %dx%d image", img->width, img->height);
        c->staging = s, c->staging_cap = n;
    }
    for (int y = 0; y < img->height; y++) {
        const unsigned char *r = (const unsigned char *)img->data + (size_t)y * img->stride;
        float *o = c->staging + (size_t)y * img->width * 3;
        for (int x = 0; x < img->width; x++)
            for (int k = 0; k < 3; k++) {
                size_t i = (size_t)x * img->channels + (img->channels == 1 ? 0 : k);
                float v;
                if (img->format == DIFFAD_U8) v = r[i] / 255.0f;
                else memcpy(&v, r + i * sizeof v, sizeof v); /* data and stride need not be float-aligned */
                if (!(v >= -1e30f && v <= 1e30f))
                    return set_err(c, DIFFAD_E_INVALID, "predict: pixel (%d,%d) is NaN or infinite", x, y);
                if (v < DIFFAD_F32_MIN || v > DIFFAD_F32_MAX)
                    return set_err(c, DIFFAD_E_RANGE, "predict: pixel (%d,%d) channel %d is %g, outside the accepted range "
                                   "[%g, %g] of DIFFAD_F32 (0..1 expected)", x, y, img->channels == 1 ? 0 : k, v,
                                   (double)DIFFAD_F32_MIN, (double)DIFFAD_F32_MAX);
                o[(size_t)x * 3 + k] = v;
            }
    }
    return DIFFAD_OK;
}

int diffad_predict(diffad_ctx *c, const diffad_image *img, diffad_result *res) {
    if (!c) return DIFFAD_E_INVALID;
    if (!res) return set_err(c, DIFFAD_E_INVALID, "predict: NULL result");
    memset(res, 0, sizeof *res);
    c->last_roi = NULL;
    double t0 = now_ms();
    int rc = preprocess(c, img);
    if (rc) return rc;
    double t1 = now_ms();
    dd_error e = {0};
    dd_score sc;
    if ((rc = dd_scorer_run(c->scorer, c->staging, img->height, img->width, &sc, &e)))
        return set_err(c, rc, "predict: %s", e.msg);
    const dd_model_config *cfg = &c->model->cfg;
    res->score = (float)sc.score;
    res->threshold = cfg->image_threshold;
    res->pixel_threshold = cfg->pixel_threshold;
    res->calibrated = is_calibrated(cfg);
    if (res->calibrated) {
        /* the defect regions: map > pixel threshold, 8-connected, at the input size */
        int n = 0;
        long found = 0;
        if ((rc = dd_regions_find(&c->regions, sc.map, sc.h, sc.w, cfg->pixel_threshold, c->rp.min_area, c->found,
                                  c->rp.max_regions, &n, &found, &e)))
            return set_err(c, rc, "predict: %s", e.msg);
        double mm2 = (double)c->rp.mm_per_pixel * c->rp.mm_per_pixel;
        for (int i = 0; i < n; i++) {
            const dd_region *g = &c->found[i];
            c->out[i] = (diffad_region){g->x, g->y, g->w, g->h, g->area, (float)(g->area * mm2), g->peak, g->mean};
        }
        res->n_regions = n;
        res->regions = n ? c->out : NULL;
        res->regions_found = found;
    }
    double t2 = now_ms();
    /* NG: the score over the threshold and, with min_area > 0, a region of min_area pixels or
     * more (smaller ones were left out above, so any region left is one) */
    res->is_ng = res->calibrated && res->score > cfg->image_threshold && (c->rp.min_area <= 0 || res->regions_found > 0);
    /* the review band overrides the two-way rule inside it (a person decides there) */
    if (res->calibrated && c->rp.review_lo < c->rp.review_hi && res->score > c->rp.review_lo &&
        res->score <= c->rp.review_hi)
        res->is_ng = 0, res->decision = DIFFAD_PART_REVIEW;
    else res->decision = !res->calibrated ? DIFFAD_PART_UNCALIBRATED : res->is_ng ? DIFFAD_PART_NG : DIFFAD_PART_OK;
    if (res->calibrated) {
        float v = 0.5f * (res->score - cfg->score_lo) / (cfg->image_threshold - cfg->score_lo);
        res->normalized = v < 0 ? 0 : v > 1 ? 1 : v;
    }
    res->map_width = sc.w, res->map_height = sc.h;
    res->map = sc.map; /* 0 outside the region of interest (the scorer applied it) */
    res->recon = sc.recon;
    c->last_roi = sc.roi;
    res->work_width = sc.work_w, res->work_height = sc.work_h;
    res->tiles_x = sc.tiles_x, res->tiles_y = sc.tiles_y;
    res->work_map = sc.work_map;
    res->ms_preprocess = t1 - t0;
    res->ms_denoise = sc.ms_denoise;
    res->ms_segment = sc.ms_segment;
    res->ms_postprocess = (t2 - t1) - sc.ms_denoise - sc.ms_segment;
    return DIFFAD_OK;
}

const char *diffad_error(const diffad_ctx *c) { return c ? c->err : "NULL context"; }

void diffad_model_size(const diffad_ctx *c, int *h, int *w) {
    if (h) *h = c ? c->h : 0;
    if (w) *w = c ? c->w : 0;
}

const char *diffad_precision(const diffad_ctx *c) {
    return c && c->model ? dd_precision_name(dd_model_precision(c->model)) : "f32";
}

size_t diffad_memory(const diffad_ctx *c) {
    if (!c || !c->model) return 0;
    return dd_model_memory(c->model) + dd_scorer_memory(c->scorer) + c->staging_cap * sizeof(float) +
           dd_regions_bytes(&c->regions) + (size_t)c->region_cap * (sizeof *c->found + sizeof *c->out);
}

int diffad_thresholds(const diffad_ctx *c, float *image_threshold, float *pixel_threshold) {
    if (!c || !c->model) return 0;
    const dd_model_config *cfg = &c->model->cfg;
    if (image_threshold) *image_threshold = cfg->image_threshold;
    if (pixel_threshold) *pixel_threshold = cfg->pixel_threshold;
    return cfg->score_hi > cfg->score_lo;
}

int diffad_roi(const diffad_ctx *c, int *width, int *height) {
    int has = c && c->model && c->model->roi.mask;
    if (width) *width = has ? c->model->roi.w : 0;
    if (height) *height = has ? c->model->roi.h : 0;
    return has;
}

const unsigned char *diffad_roi_mask(const diffad_ctx *c) { return c ? c->last_roi : NULL; }

int diffad_roi_mask_at(const diffad_ctx *c, int width, int height, unsigned char *dst) {
    if (!c || !dst || width < 1 || height < 1 || width > 65535 || height > 65535) return DIFFAD_E_INVALID;
    if (!c->model || !c->model->roi.mask) return 0;
    uint64_t *acc = malloc((size_t)width * sizeof *acc); /* not the hot path: a picture's worth */
    if (!acc) return DIFFAD_E_NOMEM;
    long n = dd_roi_resample(&c->model->roi, height, width, dst, acc);
    free(acc);
    return n < 0 ? DIFFAD_E_INVALID : 1;
}

int diffad_get_region_params(const diffad_ctx *c, diffad_region_params *rp) {
    if (!c || !rp) return DIFFAD_E_INVALID;
    *rp = c->rp;
    return DIFFAD_OK;
}

int diffad_set_region_params(diffad_ctx *c, const diffad_region_params *rp) {
    if (!c) return DIFFAD_E_INVALID;
    if (!rp) return set_err(c, DIFFAD_E_INVALID, "region params: NULL");
    dd_error e = {0};
    int rc = region_params(c, rp, &e);
    return rc ? set_err(c, rc, "region params: %s", e.msg) : DIFFAD_OK;
}

int diffad_calibration_scores(const diffad_ctx *c, const float **scores, int *n_images) {
    if (scores) *scores = c ? c->calib_scores : NULL;
    if (n_images) *n_images = c ? (int)c->n_calib_images : 0;
    return c ? (int)c->n_calib : 0;
}

void diffad_free(diffad_ctx *c) {
    if (!c) return;
    free(c->calib_scores);
    dd_regions_free(&c->regions);
    free(c->found);
    free(c->out);
    dd_scorer_free(c->scorer);
    dd_model_free(c->model);
    free(c->staging);
    free(c);
}
