/* test_validate.c — validation during training (src/train/validate.h) on the bundled
 * sample (data/sample/pcb, or $DIFFAD_SAMPLE):
 * (a) the set holds only held-out train/good images: every entry comes from a val_idx item,
 *     clean entries are that file bit for bit, synthetic ones are that image outside their
 *     mask, and none equals a test/ image;
 * (b) two runs give the same numbers and scores; other weights give other scores;
 * (c) a weight table of another config is refused with a message;
 * (d) an untrained model gives metrics in [0,1];
 * (e) the metrics equal those of a separately built inference model (dd_model_infer with the
 *     predict seed) fed to the metrics API, and each clean image's score equals what the
 *     public API (diffad_predict, the path of `diffad predict`/`test`) gives its file;
 * (f) cost at the CPU profile, 128x128: 6 held-out images x (1 + 2), timed and printed
 *     at 1 thread ($DIFFAD_VAL_THREADS); DIFFAD_VAL_BENCH=1 also times one training step of
 *     the profile's batch for comparison.
 * (a)-(e) use a tiny 64x64 model with non-trivial outputs so they run in seconds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "live_model.h"
#include "diffad.h"
#include "data/image.h"
#include "eval/metrics.h"
#include "train/settings.h"
#include "model/model.h"
#include "model/modelfile.h"
#include "train/validate.h"

#define HW 64
#define PER 2

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void tiny_config(dd_model_config *c, int seg_width) {
    dd_model_config_paper(c, HW, HW);
    c->unet.base = 8, c->unet.levels = 2, c->unet.mult[0] = 1, c->unet.mult[1] = 2;
    c->unet.res_blocks = 1, c->unet.n_attn = 0, c->unet.heads = 1, c->unet.groups = 8;
    c->seg_width = seg_width;
}


static int in_list(int x, const int *v, int n) {
    for (int i = 0; i < n; i++)
        if (v[i] == x) return 1;
    return 0;
}

static void test_set_contents(const dd_dataset *ds, const dd_validator *v, const int *val, int nval,
                              const int *tr, int ntr) {
    size_t hw = (size_t)HW * HW;
    float *ref = malloc(hw * 3 * sizeof(float)), *t = malloc(hw * 3 * sizeof(float));
    int n = dd_validator_count(v), bad_item = 0, bad_path = 0, bad_clean = 0, bad_synth = 0, n_anom = 0,
        n_clean = 0, equal_test = 0;
    dd_error e = {0};
    for (int i = 0; i < n; i++) {
        const float *mask;
        int label, item;
        const float *img = dd_validator_image(v, i, &mask, &label, &item);
        if (!img || !in_list(item, val, nval) || in_list(item, tr, ntr)) { bad_item++; continue; }
        const char *p = ds->train[item].path;
        if (!strstr(p, "/train/good/") || strstr(p, "/test/")) bad_path++;
        if (dd_item_load(&ds->train[item], HW, HW, ref, NULL, &e)) { bad_clean++; continue; }
        float mmax = 0;
        for (size_t k = 0; k < hw; k++) mmax = fmaxf(mmax, mask[k]);
        if (label == 0 && mmax == 0 && !memcmp(img, ref, hw * 3 * sizeof(float))) {
            n_clean++;
            /* not any test image (good or defective) */
            for (int j = 0; j < ds->n_test; j++) {
                if (dd_item_load(&ds->test[j], HW, HW, t, NULL, &e)) { equal_test++; break; }
                double d = 0;
                for (size_t k = 0; k < hw * 3; k++) d = fmax(d, fabs((double)img[k] - t[k]));
                if (d < 1e-3) equal_test++;
            }
            continue;
        }
        n_anom += label;
        /* a synthetic defect on this very image: outside the mask it is the image (16-bit cache) */
        double d = 0;
        for (size_t k = 0; k < hw; k++)
            if (mask[k] == 0)
                for (int c = 0; c < 3; c++) d = fmax(d, fabs((double)img[k * 3 + c] - ref[k * 3 + c]));
        if (!(label == 1 && mmax == 1 && d <= 1.0 / 65535)) bad_synth++;
    }
    CHECK(n == nval * (1 + PER), "set size %d, expected %d", n, nval * (1 + PER));
    CHECK(bad_item == 0, "%d entries from outside the held-out list (or from the training part)", bad_item);
    CHECK(bad_path == 0, "%d entries not under train/good", bad_path);
    CHECK(bad_clean == 0, "%d source images could not be reloaded: %s", bad_clean, e.msg);
    CHECK(n_clean == nval, "%d clean entries equal their file bit for bit, expected %d", n_clean, nval);
    CHECK(bad_synth == 0, "%d synthetic entries are not a defect pasted on their held-out image", bad_synth);
    CHECK(n_anom == nval * PER, "%d synthetic anomalies, expected %d", n_anom, nval * PER);
    CHECK(equal_test == 0, "%d validation images equal a test image", equal_test);
    free(ref), free(t);
}

static int in01(double x) { return x >= 0 && x <= 1; }

/* The reference: an inference model built here, dd_model_infer with the predict seed, the
 * metrics API directly. Returns 0 and fills the three metrics and scores[]. */
static int reference(const dd_model_config *cfg, const dd_params *w, const dd_validator *v, double *m3,
                     double *scores, dd_model **keep) {
    dd_error e = {0};
    dd_model *m = NULL;
    if (dd_model_create(cfg, 1, 0, 1, &m, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    for (int i = 0; i < w->count; i++) { /* by name, independent of the validator's layout check */
        int k = dd_params_find(&m->params, w->items[i].name);
        if (k < 0) { dd_model_free(m); return 1; }
        memcpy(dd_params_value(&m->params, k), dd_params_value(w, i), w->items[i].numel * sizeof(float));
    }
    size_t hw = (size_t)HW * HW;
    float *map = malloc(hw * sizeof(float));
    dd_metrics_params mp;
    dd_metrics_params_init(&mp);
    dd_metrics *acc = NULL;
    dd_metrics_result *res = NULL;
    int rc = dd_metrics_new(&mp, &acc, &e);
    for (int i = 0; i < dd_validator_count(v) && !rc; i++) {
        const float *mask;
        int label;
        const float *img = dd_validator_image(v, i, &mask, &label, NULL);
        double s;
        rc = dd_model_infer(m, img, DD_PREDICT_SEED, map, NULL, &e) ||
             (cfg->map_sigma > 0 && dd_gaussian_blur(map, map, HW, HW, cfg->map_sigma, NULL, &e)) ||
             dd_topk_mean(map, (long)hw, dd_model_topk(cfg), &s, &e) ||
             dd_metrics_add_image(acc, (float)s, label, label ? "defect" : NULL, map, mask, HW, HW, &e);
        scores[i] = (float)s;
    }
    if (!rc) rc = dd_metrics_compute(acc, &res, &e);
    if (!rc) {
        m3[0] = res->sets[0].m[DD_M_IMAGE_AUROC].value;
        m3[1] = res->sets[0].m[DD_M_PIXEL_AP].value;
        m3[2] = res->sets[0].m[DD_M_AUPRO].value;
    } else {
        fprintf(stderr, "reference: %s\n", e.msg);
    }
    dd_metrics_result_free(res);
    dd_metrics_free(acc);
    free(map);
    if (!rc && keep) *keep = m;
    else dd_model_free(m);
    return rc;
}

/* Each clean entry through the public API with a model file of the same weights. */
static void test_predict_agrees(dd_model *m, const dd_dataset *ds, const dd_validator *v) {
    char dir[] = "/tmp/dd_validate_XXXXXX", path[64];
    if (!mkdtemp(dir)) { SKIP("no temporary folder"); return; }
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    dd_error e = {0};
    int rc = dd_model_save(m, path, 0, NULL, 0, &e);
    CHECK(rc == 0, "save: %s", e.msg);
    diffad_params p;
    diffad_params_init(&p);
    p.threads = 1;
    diffad_ctx *c = NULL;
    char msg[512];
    if (!rc) {
        rc = diffad_create(path, &p, &c, msg, sizeof msg);
        CHECK(rc == 0, "diffad_create: %s", msg);
    }
    CHECK(p.seed == DD_PREDICT_SEED, "DD_PREDICT_SEED is the public API's default seed");
    int compared = 0, differ = 0;
    for (int i = 0; !rc && i < dd_validator_count(v); i++) {
        if (i % (1 + PER)) continue; /* each held-out image comes first, then its defects */
        int item;
        dd_validator_image(v, i, NULL, NULL, &item);
        dd_image im = {0};
        if (dd_image_load_rgb(ds->train[item].path, &im, &e)) { CHECK(0, "%s", e.msg); break; }
        diffad_image di = {im.data, im.w, im.h, 3, (size_t)im.w * 3 * sizeof(float), DIFFAD_F32};
        diffad_result r;
        if (diffad_predict(c, &di, &r)) { CHECK(0, "predict: %s", diffad_error(c)); dd_image_free(&im); break; }
        compared++;
        if ((double)r.score != dd_validator_score(v, i)) {
            differ++;
            fprintf(stderr, "  %s: predict %.9g, validation %.9g\n", ds->train[item].path, r.score,
                    dd_validator_score(v, i));
        }
        dd_image_free(&im);
    }
    CHECK(compared > 0 && differ == 0, "predict and validation scores of the clean files: %d of %d differ", differ,
          compared);
    diffad_free(c);
    remove(path);
    rmdir(dir);
}

static void test_tiny(const dd_dataset *ds) {
    dd_error e = {0};
    int *tr = NULL, *val = NULL, ntr = 0, nval = 0;
    if (dd_dataset_split_train(ds, 0.1, 1, &tr, &ntr, &val, &nval, &e)) { CHECK(0, "split: %s", e.msg); return; }
    dd_model_config cfg;
    tiny_config(&cfg, 4);
    /* the trainer's side: a training model (gradients, Adam) whose table is handed over */
    dd_model *tm = NULL;
    if (dd_model_create(&cfg, 2, 1, 1, &tm, &e)) { CHECK(0, "train model: %s", e.msg); free(tr), free(val); return; }
    dd_model_init_weights(tm, 7);
    dd_synth_config sc;
    dd_synth_config_init(&sc);
    sc.h = sc.w = HW;
    sc.fg_mode = DD_FG_NONE;
    dd_validator *v = NULL, *v2 = NULL;
    int rc = dd_validator_create(ds, val, nval, &sc, PER, 42, &cfg, 1, &v, &e);
    CHECK(rc == 0, "create: %s", e.msg);
    if (rc) goto done;
    test_set_contents(ds, v, val, nval, tr, ntr);

    /* (d) straight from init (flat map, tied scores): defined and in [0,1] */
    dd_val_metrics a, b;
    rc = dd_validator_run(v, &tm->params, &a, &e);
    CHECK(rc == 0, "run: %s", e.msg);
    CHECK(in01(a.image_auroc) && in01(a.pixel_ap) && in01(a.aupro),
          "untrained metrics in [0,1]: image AUROC %g, pixel AP %g, AUPRO %g", a.image_auroc, a.pixel_ap, a.aupro);
    CHECK(a.n_images == nval * (1 + PER) && a.n_anomalous == nval * PER, "counts %d / %d", a.n_images,
          a.n_anomalous);

    /* (b) determinism with non-trivial outputs, and a second validator from the same inputs */
    live_model_weights(tm, 2.5f);
    rc = dd_validator_run(v, &tm->params, &a, &e) || dd_validator_run(v, &tm->params, &b, &e);
    CHECK(rc == 0, "run: %s", e.msg);
    CHECK(a.image_auroc == b.image_auroc && a.pixel_ap == b.pixel_ap && a.aupro == b.aupro,
          "two runs: %.17g %.17g %.17g vs %.17g %.17g %.17g", a.image_auroc, a.pixel_ap, a.aupro, b.image_auroc,
          b.pixel_ap, b.aupro);
    CHECK(in01(a.image_auroc) && in01(a.pixel_ap) && in01(a.aupro) && a.seconds > 0,
          "metrics in [0,1]: %g %g %g (%.2f s)", a.image_auroc, a.pixel_ap, a.aupro, a.seconds);
    int n = dd_validator_count(v);
    double *s1 = malloc(sizeof(double) * n), *s2 = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) s1[i] = dd_validator_score(v, i);
    double smin = 1e9, smax = -1e9;
    for (int i = 0; i < n; i++) smin = fmin(smin, s1[i]), smax = fmax(smax, s1[i]);
    CHECK(smax - smin > 1e-6, "scores are not all tied (%.9g..%.9g): the comparison below is non-trivial", smin, smax);
    rc = dd_validator_create(ds, val, nval, &sc, PER, 42, &cfg, 1, &v2, &e) ||
         dd_validator_run(v2, &tm->params, &b, &e);
    CHECK(rc == 0, "second validator: %s", e.msg);
    int same = !rc;
    for (int i = 0; i < n && same; i++) {
        const float *m1, *m2;
        same = !memcmp(dd_validator_image(v, i, &m1, NULL, NULL), dd_validator_image(v2, i, &m2, NULL, NULL),
                       sizeof(float) * HW * HW * 3) &&
               !memcmp(m1, m2, sizeof(float) * HW * HW) && dd_validator_score(v2, i) == s1[i];
    }
    CHECK(same && a.image_auroc == b.image_auroc && a.aupro == b.aupro,
          "a second validator from the same seed has the same images, masks, scores and metrics");

    /* (e) against a separately built inference path */
    double m3[3];
    dd_model *ref = NULL;
    rc = reference(&cfg, &tm->params, v, m3, s2, &ref);
    CHECK(rc == 0, "reference path ran");
    if (!rc) {
        int sd = 0;
        for (int i = 0; i < n; i++) sd += s2[i] != s1[i];
        CHECK(sd == 0, "%d of %d image scores differ from dd_model_infer + dd_topk_mean", sd, n);
        CHECK(m3[0] == a.image_auroc && m3[1] == a.pixel_ap && m3[2] == a.aupro,
              "metrics: validator %.17g %.17g %.17g, reference %.17g %.17g %.17g", a.image_auroc, a.pixel_ap,
              a.aupro, m3[0], m3[1], m3[2]);
        test_predict_agrees(ref, ds, v);
    }
    dd_model_free(ref);

    /* other weights, other scores: the table really is copied on each run */
    live_model_weights(tm, 1.5f);
    rc = dd_validator_run(v, &tm->params, &b, &e);
    int changed = 0;
    for (int i = 0; i < n; i++) changed += dd_validator_score(v, i) != s1[i];
    CHECK(rc == 0 && changed == n, "changed weights change every score (%d of %d)", changed, n);

    /* (g) the map smoothing (map_sigma): the validator smooths as the reference path does, the
     * scores move, and predict with a model file of that setting gives the same scores */
    for (int i = 0; i < n; i++) s1[i] = dd_validator_score(v, i);
    dd_model_config cs = cfg;
    cs.map_sigma = 1.5f;
    rc = dd_validator_set_map_sigma(v, cs.map_sigma, &e) || dd_validator_run(v, &tm->params, &a, &e);
    CHECK(rc == 0, "run with map_sigma 1.5: %s", e.msg);
    ref = NULL;
    if (!rc) rc = reference(&cs, &tm->params, v, m3, s2, &ref);
    if (!rc) {
        int sd = 0, moved = 0;
        for (int i = 0; i < n; i++) sd += s2[i] != dd_validator_score(v, i), moved += s1[i] != dd_validator_score(v, i);
        CHECK(sd == 0 && moved == n, "map_sigma 1.5: %d of %d scores differ from the smoothed reference, %d moved", sd, n,
              moved);
        CHECK(m3[0] == a.image_auroc && m3[1] == a.pixel_ap && m3[2] == a.aupro,
              "map_sigma 1.5 metrics: validator %.17g %.17g %.17g, reference %.17g %.17g %.17g", a.image_auroc,
              a.pixel_ap, a.aupro, m3[0], m3[1], m3[2]);
        test_predict_agrees(ref, ds, v);
    }
    dd_model_free(ref);
    dd_error e5 = {0};
    CHECK(dd_validator_set_map_sigma(v, -0.5f, &e5) == DD_E_RANGE && strstr(e5.msg, "map_sigma") &&
              dd_validator_set_map_sigma(v, 65.0f, &e5) == DD_E_RANGE && dd_validator_set_map_sigma(v, NAN, &e5) == DD_E_RANGE,
          "map_sigma -0.5, 65 and NaN refused: '%s'", e5.msg);
    rc = dd_validator_set_map_sigma(v, 0, &e) || dd_validator_run(v, &tm->params, &b, &e);
    int back = !rc;
    for (int i = 0; i < n && back; i++) back = dd_validator_score(v, i) == s1[i];
    CHECK(back, "map_sigma 0 again gives the unsmoothed scores");
    free(s1), free(s2);

    /* (c) weight tables of another layout */
    dd_model_config other;
    tiny_config(&other, 8);
    dd_model *om = NULL;
    if (!dd_model_create(&other, 1, 0, 1, &om, &e)) {
        dd_error e2 = {0};
        rc = dd_validator_run(v, &om->params, &b, &e2);
        CHECK(rc == DD_E_INVALID && strstr(e2.msg, "weight table"), "seg width 8 vs 4 refused: rc %d, '%s'", rc,
              e2.msg);
        dd_model_free(om);
    }
    dd_params fake = tm->params;
    fake.count--; /* same floats, one tensor short */
    dd_error e3 = {0};
    rc = dd_validator_run(v, &fake, &b, &e3);
    CHECK(rc == DD_E_INVALID && e3.msg[0], "a table with one tensor less refused: '%s'", e3.msg);
    fake = tm->params;
    dd_param items[1024];
    if (fake.count <= 1024) {
        memcpy(items, fake.items, sizeof(dd_param) * fake.count);
        snprintf(items[3].name, sizeof items[3].name, "renamed");
        fake.items = items;
        dd_error e4 = {0};
        rc = dd_validator_run(v, &fake, &b, &e4);
        CHECK(rc == DD_E_INVALID && strstr(e4.msg, "renamed"), "a renamed tensor refused: '%s'", e4.msg);
    }

    /* bad arguments */
    dd_validator *bad = NULL;
    int idx_bad[1] = {ds->n_train};
    CHECK(dd_validator_create(ds, idx_bad, 1, &sc, PER, 1, &cfg, 1, &bad, &e) == DD_E_RANGE && !bad,
          "an index past train/good is refused");
    CHECK(dd_validator_create(ds, val, 0, &sc, PER, 1, &cfg, 1, &bad, &e) == DD_E_INVALID && !bad,
          "no held-out images is refused");
    CHECK(dd_validator_create(ds, val, nval, &sc, 0, 1, &cfg, 1, &bad, &e) == DD_E_RANGE && !bad,
          "zero anomalies per image is refused");
done:
    dd_validator_free(v);
    dd_validator_free(v2);
    dd_model_free(tm);
    free(tr), free(val);
}

/* (f) the cost at the CPU profile: 6 held-out images x (1 + 2) at 128x128. */
static void test_cost(const dd_dataset *ds) {
    dd_settings s;
    dd_error e = {0};
    if (dd_settings_profile(&s, "cpu", &e)) { CHECK(0, "%s", e.msg); return; }
    /* 1 thread by default: on a shared machine OpenMP teams wait on each other's cores */
    int threads = getenv("DIFFAD_VAL_THREADS") ? atoi(getenv("DIFFAD_VAL_THREADS")) : 1;
    int *tr = NULL, *val = NULL, ntr = 0, nval = 0;
    if (dd_dataset_split_train(ds, 0.1, 1, &tr, &ntr, &val, &nval, &e)) { CHECK(0, "split: %s", e.msg); return; }
    dd_synth_config sc;
    dd_synth_config_init(&sc);
    sc.h = s.model.unet.h, sc.w = s.model.unet.w;
    sc.fg_mode = DD_FG_NONE;
    const char *tex = "../shared/data/textures";
    if (access(tex, R_OK) == 0) sc.texture_dir = tex;
    dd_model *tm = NULL;
    dd_validator *v = NULL;
    int rc = dd_model_create(&s.model, 1, 0, threads, &tm, &e);
    if (!rc) dd_model_init_weights(tm, 3);
    double t0 = now_s();
    if (!rc) rc = dd_validator_create(ds, val, nval, &sc, 2, 5, &s.model, threads, &v, &e);
    double t_create = now_s() - t0;
    dd_val_metrics a = {0};
    if (!rc) rc = dd_validator_run(v, &tm->params, &a, &e);
    CHECK(rc == 0, "CPU profile validation: %s", e.msg);
    if (!rc) {
        CHECK(in01(a.image_auroc) && in01(a.pixel_ap) && in01(a.aupro), "CPU-profile metrics in [0,1]");
        printf("validation cost, CPU profile %dx%d, %d threads, %d held-out images x (1 + 2) = %d images "
               "(%d anomalous, textures %s): create %.2f s, run %.2f s (%.0f ms per image)\n",
               s.model.unet.h, s.model.unet.w, threads, nval, a.n_images, a.n_anomalous,
               sc.texture_dir ? sc.texture_dir : "procedural", t_create, a.seconds, 1e3 * a.seconds / a.n_images);
    }
    if (!rc && getenv("DIFFAD_VAL_BENCH")) { /* one training step at the profile's batch, for scale */
        dd_model *m = NULL;
        int B = s.train.batch;
        if (!dd_model_create(&s.model, B, 1, threads, &m, &e)) {
            dd_model_init_weights(m, 1);
            size_t hw = (size_t)s.model.unet.h * s.model.unet.w;
            float *img = calloc(hw * 3 * B, sizeof(float)), *mask = calloc(hw * B, sizeof(float));
            int labels[64] = {0};
            dd_rng r;
            dd_rng_seed(&r, 1);
            dd_step_stats st;
            dd_model_train_step(m, img, mask, labels, &r, &st, &e); /* warm-up */
            double t1 = now_s();
            rc = dd_model_train_step(m, img, mask, labels, &r, &st, &e);
            double t_step = now_s() - t1;
            printf("one training step, batch %d: %.2f s (validation run = %.1f steps)\n", B, t_step,
                   a.seconds / t_step);
            free(img), free(mask);
            dd_model_free(m);
        }
    }
    dd_validator_free(v);
    dd_model_free(tm);
    free(tr), free(val);
}

int main(void) {
    const char *root = getenv("DIFFAD_SAMPLE");
    if (!root) root = "data/sample/pcb";
    dd_dataset *ds = NULL;
    dd_error e = {0};
    if (dd_dataset_open(root, &ds, &e)) {
        SKIP("%s: %s", root, e.msg);
        return check_summary("test_validate");
    }
    test_tiny(ds);
    test_cost(ds);
    dd_dataset_free(ds);
    return check_summary("test_validate");
}
