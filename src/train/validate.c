/* validate.c — owns the validation set built from held-out good training images and
 * its scoring through the inference path (see validate.h). */
#include "train/validate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rng.h"
#include "data/image.h"
#include "eval/metrics.h"

/* "valid": keeps the validation defects off the training stream's (seed, index) draws
 * even when the trainer passes its own seed. */
#define VAL_SEED_TAG 0x76616c6964ULL

struct dd_validator {
    dd_model *model; /* inference, batch 1: the batch size predict uses, so scores match bit for bit */
    int h, w, n;
    long topk;
    float *block;   /* one allocation: images [n,H,W,3] | masks [n,H,W] | noise [2,H,W,3] |
                       smoothed map [H,W] | the blur's row pass [H,W] */
    float *images, *masks, *noise, *smoothed, *blur_tmp;
    int *labels, *items;
    double *scores; /* of the last run */
    int n_anomalous;
};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int dd_validator_create(const dd_dataset *ds, const int *val_idx, int n_val,
                        const dd_synth_config *sc, int n_per_image, uint64_t seed,
                        const dd_model_config *cfg, int threads, dd_validator **out,
                        dd_error *err) {
    if (out) *out = NULL;
    if (!ds || !val_idx || !sc || !cfg || !out)
        return dd_fail(err, DD_E_INVALID, "validation: NULL argument");
    if (n_val < 1)
        return dd_fail(err, DD_E_INVALID, "validation: no held-out images (val_fraction 0?)");
    if (n_per_image < 1 || n_per_image > 1000)
        return dd_fail(err, DD_E_RANGE, "validation: %d synthetic anomalies per image, 1..1000 expected",
                       n_per_image);
    for (int i = 0; i < n_val; i++)
        if (val_idx[i] < 0 || val_idx[i] >= ds->n_train)
            return dd_fail(err, DD_E_RANGE, "validation: index %d is not a training image (0..%d)", val_idx[i],
                           ds->n_train - 1);
    int rc = dd_model_config_check(cfg, err);
    if (rc) return rc;
    dd_validator *v = calloc(1, sizeof *v);
    if (!v) return dd_fail(err, DD_E_NOMEM, "validation: out of memory");
    v->h = cfg->unet.h, v->w = cfg->unet.w;
    v->n = n_val * (1 + n_per_image);
    v->topk = dd_model_topk(cfg);
    size_t hw = (size_t)v->h * v->w;
    v->block = malloc(((size_t)v->n * hw * 4 + hw * 8) * sizeof(float));
    v->labels = malloc((size_t)v->n * sizeof(int));
    v->items = malloc((size_t)v->n * sizeof(int));
    v->scores = malloc((size_t)v->n * sizeof(double));
    if (!v->block || !v->labels || !v->items || !v->scores) {
        rc = dd_fail(err, DD_E_NOMEM, "validation: out of memory for %d images of %dx%d", v->n, v->h, v->w);
        dd_validator_free(v);
        return rc;
    }
    v->images = v->block;
    v->masks = v->images + (size_t)v->n * hw * 3;
    v->noise = v->masks + (size_t)v->n * hw;
    v->smoothed = v->noise + hw * 6;
    v->blur_tmp = v->smoothed + hw;
    for (int i = 0; i < v->n; i++) v->scores[i] = NAN;

    /* The training synthesiser, forced to paste a defect in every draw. */
    dd_synth_config c = *sc;
    c.h = v->h, c.w = v->w;
    c.normal_prob = 0.0f;
    dd_synth *syn = NULL;
    if ((rc = dd_synth_create(ds, &c, &syn, err))) {
        dd_validator_free(v);
        return rc;
    }
    int k = 0;
    for (int i = 0; i < n_val && !rc; i++) {
        const dd_item *it = &ds->train[val_idx[i]];
        /* Fit mode: the file as predict reads it (decode, float RGB, dd_resize to the model
         * size). Tiled mode: a model-size crop at the working scale, i.e. one tile, as
         * the synthetic samples below are. */
        if (c.work_scale > 0)
            rc = dd_synth_normal(syn, val_idx[i], seed ^ VAL_SEED_TAG, (uint64_t)i * n_per_image + (uint64_t)n_per_image * n_val,
                                 v->images + (size_t)k * hw * 3, err);
        else rc = dd_item_load(it, v->h, v->w, v->images + (size_t)k * hw * 3, NULL, err);
        if (rc) break;
        memset(v->masks + (size_t)k * hw, 0, hw * sizeof(float));
        v->labels[k] = 0, v->items[k] = val_idx[i];
        k++;
        for (int j = 0; j < n_per_image && !rc; j++, k++) {
            float label = 0;
            rc = dd_synth_sample(syn, val_idx[i], seed ^ VAL_SEED_TAG, (uint64_t)i * n_per_image + j,
                                 v->images + (size_t)k * hw * 3, v->masks + (size_t)k * hw, &label, NULL,
                                 NULL, err);
            v->labels[k] = label > 0.5f, v->items[k] = val_idx[i];
            v->n_anomalous += v->labels[k];
        }
    }
    dd_synth_free(syn);
    if (!rc && v->n_anomalous == 0)
        rc = dd_fail(err, DD_E_INVALID,
                     "validation: no synthetic defect fits in any of the %d held-out images (foreground empty?)", n_val);
    if (!rc) rc = dd_model_create(cfg, 1, 0, threads, &v->model, err);
    if (rc) {
        dd_validator_free(v);
        return rc;
    }
    /* The draw api.c makes once per context (= dd_model_infer's draw at batch 1). */
    dd_rng r;
    dd_rng_seed(&r, DD_PREDICT_SEED);
    dd_model_draw_noise(cfg, &r, v->noise, 2);
    *out = v;
    return DD_OK;
}

/* Same architecture means the same declaration order, so names, shapes and offsets agree;
 * checking them catches a trainer built from a different config before values are mixed up. */
static int check_layout(const dd_params *a, const dd_params *b, dd_error *err) {
    if (!a->value) return dd_fail(err, DD_E_INVALID, "validation: the weight table has no values");
    if (a->count != b->count || a->total != b->total)
        return dd_fail(err, DD_E_INVALID,
                       "validation: weight table has %d tensors / %zu floats, the validation model %d / %zu "
                       "(different model config?)",
                       a->count, a->total, b->count, b->total);
    for (int i = 0; i < a->count; i++) {
        const dd_param *x = &a->items[i], *y = &b->items[i];
        if (x->offset != y->offset || x->numel != y->numel || strcmp(x->name, y->name))
            return dd_fail(err, DD_E_INVALID,
                           "validation: weight tensor %d is %s (%zu floats at %zu), the validation model has %s "
                           "(%zu at %zu)",
                           i, x->name, x->numel, x->offset, y->name, y->numel, y->offset);
    }
    return DD_OK;
}

static double metric_or_nan(const dd_metrics_set *s, int which) {
    return s->m[which].defined ? s->m[which].value : NAN;
}

int dd_validator_run(dd_validator *v, const dd_params *weights, dd_val_metrics *out, dd_error *err) {
    if (!v || !weights || !out) return dd_fail(err, DD_E_INVALID, "validation: NULL argument");
    memset(out, 0, sizeof *out);
    double t0 = now_s();
    int rc = check_layout(weights, &v->model->params, err);
    if (rc) return rc;
    /* Values include BatchNorm running statistics (buffers), which inference uses. */
    memcpy(v->model->params.value, weights->value, weights->total * sizeof(float));
    dd_metrics_params mp;
    dd_metrics_params_init(&mp);
    dd_metrics *acc = NULL;
    dd_metrics_result *res = NULL;
    if ((rc = dd_metrics_new(&mp, &acc, err))) return rc;
    size_t hw = (size_t)v->h * v->w;
    for (int i = 0; i < v->n && !rc; i++) {
        const float *img = v->images + (size_t)i * hw * 3, *mask = v->masks + (size_t)i * hw;
        double score = 0;
        if ((rc = dd_model_infer_with(v->model, img, v->noise, NULL, NULL, err))) break;
        /* the map as the scorer makes it from one tile: smoothed by the model's map_sigma */
        const float *map = v->model->seg.mask;
        float sigma = v->model->cfg.map_sigma;
        if (sigma > 0) {
            if ((rc = dd_gaussian_blur(map, v->smoothed, v->h, v->w, sigma, v->blur_tmp, err))) break;
            map = v->smoothed;
        }
        if ((rc = dd_topk_mean(map, (long)hw, v->topk, &score, err))) break;
        /* Stored as predict reports it (diffad_result.score is a float). */
        v->scores[i] = (float)score;
        rc = dd_metrics_add_image(acc, v->scores[i], v->labels[i], v->labels[i] ? "synthetic" : NULL,
                                  map, mask, v->h, v->w, err);
    }
    if (!rc) rc = dd_metrics_compute(acc, &res, err);
    if (!rc) {
        const dd_metrics_set *s = &res->sets[0];
        out->image_auroc = metric_or_nan(s, DD_M_IMAGE_AUROC);
        out->pixel_ap = metric_or_nan(s, DD_M_PIXEL_AP);
        out->aupro = metric_or_nan(s, DD_M_AUPRO);
        out->n_images = v->n;
        out->n_anomalous = v->n_anomalous;
        out->seconds = now_s() - t0;
    }
    dd_metrics_result_free(res);
    dd_metrics_free(acc);
    return rc;
}

int dd_validator_set_levels(dd_validator *v, int t_s, int t_b, dd_error *err) {
    if (!v) return dd_fail(err, DD_E_INVALID, "validation: NULL argument");
    dd_model_config c = v->model->cfg; /* the model's own rule for the levels */
    c.t_s = t_s, c.t_b = t_b;
    int rc = dd_model_config_check(&c, err);
    /* read at every inference (dd_model_infer_with); nothing precomputed depends on them */
    if (!rc) v->model->cfg.t_s = t_s, v->model->cfg.t_b = t_b;
    return rc;
}

int dd_validator_set_map_sigma(dd_validator *v, float map_sigma, dd_error *err) {
    if (!v) return dd_fail(err, DD_E_INVALID, "validation: NULL argument");
    dd_model_config c = v->model->cfg;
    c.map_sigma = map_sigma;
    int rc = dd_model_config_check(&c, err);
    if (!rc) v->model->cfg.map_sigma = map_sigma; /* read at every run */
    return rc;
}

void dd_validator_free(dd_validator *v) {
    if (!v) return;
    dd_model_free(v->model);
    free(v->block);
    free(v->labels);
    free(v->items);
    free(v->scores);
    free(v);
}

int dd_validator_count(const dd_validator *v) { return v ? v->n : 0; }

const float *dd_validator_image(const dd_validator *v, int i, const float **mask, int *label, int *item) {
    if (!v || i < 0 || i >= v->n) return NULL;
    size_t hw = (size_t)v->h * v->w;
    if (mask) *mask = v->masks + (size_t)i * hw;
    if (label) *label = v->labels[i];
    if (item) *item = v->items[i];
    return v->images + (size_t)i * hw * 3;
}

double dd_validator_score(const dd_validator *v, int i) {
    return v && i >= 0 && i < v->n ? v->scores[i] : NAN;
}
