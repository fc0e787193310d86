/* test_metrics.c — metrics against hand-computed cases, scikit-learn (random and heavily tied
 * data, image and pixel level), an independent Python AUPRO (tests/py/metrics_ref.py), the
 * histogram fallback against exact mode within its stated bounds, top-k mean against a sort,
 * and the JSON / CSV / Markdown writers. Run from the repository root (make test does). */
#include "eval/metrics.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "eval/interval.h"
#include "model/model.h"

/* k of the top-k image score for an H x W map: the model's rule, the one inference uses. */
static long model_topk(int h, int w) {
    dd_model_config c;
    memset(&c, 0, sizeof c);
    c.unet.h = h, c.unet.w = w;
    return dd_model_topk(&c);
}

#define PY "/usr/bin/python3"
#define REF_SCRIPT "tests/py/metrics_ref.py"

/* ---------- small helpers ---------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd_u64(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rnd(void) { return (double)(rnd_u64() >> 11) / 9007199254740992.0; }
static int rnd_int(int n) { return (int)(rnd() * n); }

static const dd_metrics_set *find_set(const dd_metrics_result *r, const char *name) {
    for (int i = 0; i < r->n_sets; i++)
        if (strcmp(r->sets[i].name, name) == 0) return &r->sets[i];
    return NULL;
}

static int metric_index(const char *key) {
    for (int k = 0; k < DD_M_COUNT; k++)
        if (strcmp(dd_metric_key(k), key) == 0) return k;
    return -1;
}

#define CHECK_VAL(m, v, tol, what)                                                                 \
    CHECK((m).defined && fabs((m).value - (v)) <= (tol), "%s: got %s%.12f, want %.12f", what,      \
          (m).defined ? "" : "(undefined) ", (m).value, (double)(v))

/* ---------- hand-computed cases ---------- */

static void test_hand_image(void) {
    dd_error err = {0};
    dd_metrics *a = NULL;
    dd_metrics_result *r = NULL;
    /* good {0.1, 0.4}, defective {0.35, 0.8}.
     * AUROC: pairs (defect > good): 0.35>0.1, 0.8>0.1, 0.8>0.4 → 3/4.
     * AP: descending 0.8(+) R=1/2 P=1; 0.4(−); 0.35(+) R=1 P=2/3 → 1/2 + 1/2·2/3 = 5/6.
     * F1 = 2TP/(TP+FP+P): at 0.8: 2/3; at 0.4: 2/4; at 0.35: 4/5 → F1-max 0.8 at 0.35. */
    CHECK(dd_metrics_new(NULL, &a, &err) == DD_OK, "new: %s", err.msg);
    dd_metrics_add_image(a, 0.1, 0, NULL, NULL, NULL, 0, 0, &err);
    dd_metrics_add_image(a, 0.4, 0, NULL, NULL, NULL, 0, 0, &err);
    dd_metrics_add_image(a, 0.35, 1, "crack", NULL, NULL, 0, 0, &err);
    CHECK(dd_metrics_add_image(a, 0.8, 1, "crack", NULL, NULL, 0, 0, &err) == DD_OK, "add: %s",
          err.msg);
    CHECK(dd_metrics_compute(a, &r, &err) == DD_OK, "compute: %s", err.msg);
    if (r) {
        CHECK(r->n_sets == 2, "sets %d, want overall + crack", r->n_sets);
        CHECK_VAL(r->sets[0].m[DD_M_IMAGE_AUROC], 0.75, 1e-12, "hand image AUROC");
        CHECK_VAL(r->sets[0].m[DD_M_IMAGE_AP], 5.0 / 6, 1e-12, "hand image AP");
        CHECK_VAL(r->sets[0].m[DD_M_IMAGE_F1MAX], 0.8, 1e-12, "hand image F1-max");
        CHECK(r->sets[0].image_f1_threshold == 0.35, "F1 threshold %g, want 0.35",
              r->sets[0].image_f1_threshold);
        CHECK(!r->sets[0].m[DD_M_PIXEL_AUROC].defined && r->sets[0].m[DD_M_PIXEL_AUROC].why,
              "pixel AUROC without maps must be undefined with a reason");
        CHECK(r->pixel_mode == DD_PIXEL_NONE, "pixel mode %d", r->pixel_mode);
        CHECK(r->image_roc.n >= 3 && r->image_roc.x[0] == 0 && r->image_roc.y[0] == 0 &&
                  r->image_roc.x[r->image_roc.n - 1] == 1 && r->image_roc.y[r->image_roc.n - 1] == 1,
              "image ROC must run from (0,0) to (1,1)");
        long ng = 0, nd = 0;
        for (int i = 0; i < r->score_bins; i++) {
            ng += r->score_hist_good[i];
            nd += r->score_hist_defective[i];
        }
        CHECK(ng == 2 && nd == 2, "score histograms hold %ld good, %ld defective", ng, nd);
    }
    dd_metrics_result_free(r);
    dd_metrics_free(a);

    /* Ties: good {0.5, 0.2}, defective {0.5, 0.5}. AUROC: each defect ties one good (½) and
     * beats the other (1): (1.5 + 1.5)/4 = 0.75. AP: one group at 0.5 with TP 2, FP 1 → R=1,
     * P=2/3 → 2/3. F1 at 0.5: 4/(2+1+2) = 0.8. */
    a = NULL;
    r = NULL;
    dd_metrics_new(NULL, &a, &err);
    dd_metrics_add_image(a, 0.5, 0, NULL, NULL, NULL, 0, 0, &err);
    dd_metrics_add_image(a, 0.2, 0, NULL, NULL, NULL, 0, 0, &err);
    dd_metrics_add_image(a, 0.5, 1, "x", NULL, NULL, 0, 0, &err);
    dd_metrics_add_image(a, 0.5, 1, "x", NULL, NULL, 0, 0, &err);
    CHECK(dd_metrics_compute(a, &r, &err) == DD_OK, "compute: %s", err.msg);
    if (r) {
        CHECK_VAL(r->sets[0].m[DD_M_IMAGE_AUROC], 0.75, 1e-12, "tied image AUROC");
        CHECK_VAL(r->sets[0].m[DD_M_IMAGE_AP], 2.0 / 3, 1e-12, "tied image AP");
        CHECK_VAL(r->sets[0].m[DD_M_IMAGE_F1MAX], 0.8, 1e-12, "tied image F1-max");
    }
    dd_metrics_result_free(r);
    dd_metrics_free(a);
}

static void test_hand_pixel(void) {
    dd_error err = {0};
    dd_metrics *a = NULL;
    dd_metrics_result *r = NULL;
    /* Image A (good, 2×2): all 0.1.
     * Image B (defect, 2×4):  mask  1 0 0 1    map  .9 .2 .2 .6
     *                               1 0 0 0         .3 .7 .1 .1
     * Regions (8-conn): r1 = {(0,0),(1,0)} size 2 (scores .9, .3); r2 = {(0,3)} size 1 (.6).
     * Normals: B: .2 .2 .7 .1 .1, A: .1 ×4 → N = 9; P = 3.
     * Thresholds:  .9 → FPR 0,   PRO (½+0)/2 = .25
     *              .7 → FPR 1/9, PRO .25
     *              .6 → FPR 1/9, PRO (½+1)/2 = .75
     *              .3 → FPR 1/9, PRO 1
     *              .2 → FPR 3/9; .1 → FPR 1.
     * AUPRO: area to 0.3 = .25·(1/9) + 1·(0.3 − 1/9) = 0.3 − 1/12 → /0.3 = 13/18.
     * Pixel AUROC: .9 beats 9 normals, .6 beats 8, .3 beats 8 → 25/27.
     * Pixel AP: .9: R 1/3 P 1; .6: R 2/3 P 2/3; .3: R 1 P 3/4 → 1/3 + 2/9 + 1/4 = 29/36.
     * Pixel F1 = 2TP/(TP+FP+3): .9: 2/4; .7: 2/5; .6: 4/6; .3: 6/7; .2: 6/9 → 6/7 at 0.3. */
    float mapA[4] = {.1f, .1f, .1f, .1f};
    float mapB[8] = {.9f, .2f, .2f, .6f, .3f, .7f, .1f, .1f};
    float maskB[8] = {1, 0, 0, 1, 1, 0, 0, 0};
    CHECK(dd_metrics_new(NULL, &a, &err) == DD_OK, "new: %s", err.msg);
    CHECK(dd_metrics_add_image(a, 0.1, 0, NULL, mapA, NULL, 2, 2, &err) == DD_OK, "add A: %s",
          err.msg);
    CHECK(dd_metrics_add_image(a, 0.9, 1, "spot", mapB, maskB, 2, 4, &err) == DD_OK, "add B: %s",
          err.msg);
    CHECK(dd_metrics_compute(a, &r, &err) == DD_OK, "compute: %s", err.msg);
    if (r) {
        const dd_metrics_set *s = &r->sets[0];
        CHECK(r->pixel_mode == DD_PIXEL_EXACT, "pixel mode %s", dd_pixel_mode_name(r->pixel_mode));
        CHECK(s->n_regions == 2 && s->n_pixels == 12 && s->n_defect_pixels == 3,
              "regions %ld pixels %lld defect %lld", s->n_regions, s->n_pixels, s->n_defect_pixels);
        CHECK_VAL(s->m[DD_M_AUPRO], 13.0 / 18, 1e-7, "hand AUPRO");
        CHECK_VAL(s->m[DD_M_PIXEL_AUROC], 25.0 / 27, 1e-12, "hand pixel AUROC");
        CHECK_VAL(s->m[DD_M_PIXEL_AP], 29.0 / 36, 1e-7, "hand pixel AP");
        CHECK_VAL(s->m[DD_M_PIXEL_F1MAX], 6.0 / 7, 1e-12, "hand pixel F1-max");
        CHECK(fabs(s->pixel_f1_threshold - 0.3) < 1e-7, "pixel F1 threshold %g, want 0.3",
              s->pixel_f1_threshold);
        CHECK(!s->m[DD_M_IMAGE_AUROC].defined || s->m[DD_M_IMAGE_AUROC].value == 1,
              "image AUROC of 1 good (0.1) vs 1 defect (0.9) must be 1");
        CHECK(r->pro.n >= 2 && fabs(r->pro.x[r->pro.n - 1] - 0.3) < 1e-6,
              "PRO curve must end at FPR 0.3 (ends at %g)", r->pro.n ? r->pro.x[r->pro.n - 1] : -1);
    }
    dd_metrics_result_free(r);
    dd_metrics_free(a);

    /* 8-connectivity: mask 1 1 0   map .2 .2 .5
     *                      0 0 1       .1 .1 .9
     * (0,1) and (1,2) touch diagonally: one region of 3 (4-connectivity would see 2 and 1).
     * .9 → FPR 0, PRO 1/3; .5 → FPR 1/3 (> 0.3, cut there). Area to 0.3 = 0.3·1/3 → AUPRO 1/3.
     * (With 4-connectivity PRO(.9) = (0 + 1)/2 and AUPRO would be 1/2.) */
    float map2[6] = {.2f, .2f, .5f, .1f, .1f, .9f};
    float mask2[6] = {1, 1, 0, 0, 0, 1};
    a = NULL;
    r = NULL;
    dd_metrics_new(NULL, &a, &err);
    CHECK(dd_metrics_add_image(a, 0.9, 1, "d", map2, mask2, 2, 3, &err) == DD_OK, "add: %s",
          err.msg);
    CHECK(dd_metrics_compute(a, &r, &err) == DD_OK, "compute: %s", err.msg);
    if (r) {
        CHECK(r->sets[0].n_regions == 1, "diagonal pixels must form one region (got %ld)",
              r->sets[0].n_regions);
        CHECK_VAL(r->sets[0].m[DD_M_AUPRO], 1.0 / 3, 1e-7, "8-connected AUPRO");
        CHECK(!r->sets[0].m[DD_M_IMAGE_AUROC].defined &&
                  strstr(r->sets[0].m[DD_M_IMAGE_AUROC].why, "good"),
              "image AUROC without good images must be undefined, naming the missing class");
    }
    dd_metrics_result_free(r);
    dd_metrics_free(a);
}

static void test_bad_input(void) {
    dd_error err = {0};
    dd_metrics *a = NULL;
    dd_metrics_new(NULL, &a, &err);
    float m[4] = {0, 0, 0, 0}, mk[4] = {1, 0, 0, 0};
    CHECK(dd_metrics_add_image(a, NAN, 0, NULL, NULL, NULL, 0, 0, &err) == DD_E_INVALID,
          "NaN score accepted");
    CHECK(dd_metrics_add_image(a, 0.5, 2, NULL, NULL, NULL, 0, 0, &err) == DD_E_INVALID,
          "label 2 accepted");
    CHECK(dd_metrics_add_image(a, 0.5, 0, NULL, m, mk, 2, 2, &err) == DD_E_INVALID &&
              strstr(err.msg, "labelled good"),
          "good image with a defect mask accepted (%s)", err.msg);
    CHECK(dd_metrics_add_image(a, 0.5, 1, "good", m, mk, 2, 2, &err) == DD_E_INVALID,
          "defect type 'good' accepted");
    m[2] = NAN;
    CHECK(dd_metrics_add_image(a, 0.5, 1, "x", m, mk, 2, 2, &err) == DD_E_INVALID,
          "NaN map accepted");
    m[2] = 0;
    CHECK(dd_metrics_add_image(a, 0.5, 1, "x", m, mk, 0, 2, &err) == DD_E_RANGE, "0×2 map accepted");
    CHECK(dd_metrics_add_image(a, 0.5, 1, "x", m, mk, 2, 2, &err) == DD_OK, "valid image refused");
    CHECK(dd_metrics_add_image(a, 0.5, 0, NULL, NULL, NULL, 0, 0, &err) == DD_E_INVALID,
          "mixing images with and without maps accepted");
    dd_metrics_params p;
    dd_metrics_params_init(&p);
    p.hist_bins = 3;
    dd_metrics *b = NULL;
    CHECK(dd_metrics_new(&p, &b, &err) == DD_E_RANGE && !b, "hist_bins 3 accepted");
    dd_metrics_free(a);
}

/* ---------- random cases, checked against tests/py/metrics_ref.py ---------- */

typedef struct {
    int n;
    double *score;
    int *label;
    int *nomask; /* 1: a defective image added without pixel truth (dd_metrics_add_image_unmasked) */
    const char **type;
    int *H, *W;
    float **map, **mask;
} tcase;

static void free_case(tcase *c) {
    for (int i = 0; i < c->n; i++) {
        free(c->map[i]);
        free(c->mask[i]);
    }
    free(c->score);
    free(c->label);
    free(c->nomask);
    free(c->type);
    free(c->H);
    free(c->W);
    free(c->map);
    free(c->mask);
}

/* n images, ngood good; maps (if with_maps) of random sizes around side; levels > 0 quantises
 * maps and scores to that many levels (heavy ties). */
static tcase make_case(int n, int ngood, int with_maps, int side, int levels) {
    static const char *types[] = {"crack", "hole", "scratch"};
    tcase c;
    c.n = n;
    c.score = calloc((size_t)n, sizeof *c.score);
    c.label = calloc((size_t)n, sizeof *c.label);
    c.nomask = calloc((size_t)n, sizeof *c.nomask);
    c.type = calloc((size_t)n, sizeof *c.type);
    c.H = calloc((size_t)n, sizeof *c.H);
    c.W = calloc((size_t)n, sizeof *c.W);
    c.map = calloc((size_t)n, sizeof *c.map);
    c.mask = calloc((size_t)n, sizeof *c.mask);
    for (int i = 0; i < n; i++) {
        int lab = i >= ngood;
        c.label[i] = lab;
        c.type[i] = lab ? types[rnd_int(3)] : "good";
        if (!with_maps) {
            double s = rnd() + 0.4 * lab;
            c.score[i] = levels ? round(s * levels) / levels : s;
            continue;
        }
        int H = side - 4 + rnd_int(9), W = side - 4 + rnd_int(9);
        c.H[i] = H;
        c.W[i] = W;
        float *mp = malloc(sizeof(float) * (size_t)(H * W));
        float *mk = calloc((size_t)(H * W), sizeof(float));
        if (lab) {
            int blobs = 1 + rnd_int(3);
            for (int b = 0; b < blobs; b++) {
                double cy = rnd() * H, cx = rnd() * W, ry = 0.5 + rnd() * 5, rx = 0.5 + rnd() * 5;
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++) {
                        double dy = (y - cy) / ry, dx = (x - cx) / rx;
                        if (dy * dy + dx * dx <= 1) mk[y * W + x] = 0.8f + 0.2f * (float)rnd();
                    }
            }
            /* A diagonal-only pair, to exercise 8-connectivity. */
            int y = rnd_int(H - 1), x = rnd_int(W - 1);
            mk[y * W + x] = 1;
            mk[(y + 1) * W + x + 1] = 1;
        }
        for (int p = 0; p < H * W; p++) {
            double v = rnd() * rnd() * 0.7 + (mk[p] > 0.5f ? 0.15 + 0.5 * rnd() : 0);
            if (mk[p] <= 0.5f) mk[p] = rnd() < 0.5 ? 0.0f : (float)(0.5 * rnd()); /* soft ≤ .5 */
            v = v > 1 ? 1 : v;
            mp[p] = (float)(levels ? round(v * levels) / levels : v);
        }
        c.map[i] = mp;
        c.mask[i] = mk;
        double s = 0;
        CHECK(dd_topk_mean(mp, (long)H * W, model_topk(H, W), &s, NULL) == DD_OK,
              "topk failed");
        c.score[i] = levels ? round(s * levels) / levels : s;
    }
    return c;
}

static int feed(dd_metrics *a, const tcase *c) {
    dd_error err = {0};
    for (int i = 0; i < c->n; i++) {
        int rc = c->nomask[i] ? dd_metrics_add_image_unmasked(a, c->score[i], c->type[i], &err)
                              : dd_metrics_add_image(a, c->score[i], c->label[i], c->type[i], c->map[i],
                                                     c->mask[i], c->H[i], c->W[i], &err);
        if (rc) {
            CHECK(0, "add image %d: %s", i, err.msg);
            return rc;
        }
    }
    return 0;
}

static int dump_case(const tcase *c, const char *dir) {
    char p[512];
    snprintf(p, sizeof p, "%s/images.txt", dir);
    FILE *f = fopen(p, "w");
    if (!f) return -1;
    for (int i = 0; i < c->n; i++)
        fprintf(f, "%.17g %d %s %d %d %d\n", c->score[i], c->label[i], c->type[i], c->H[i], c->W[i],
                c->nomask[i]);
    fclose(f);
    if (!c->map[0]) return 0;
    snprintf(p, sizeof p, "%s/maps.f32", dir);
    FILE *fm = fopen(p, "wb");
    snprintf(p, sizeof p, "%s/masks.u8", dir);
    FILE *fk = fopen(p, "wb");
    if (!fm || !fk) {
        if (fm) fclose(fm);
        if (fk) fclose(fk);
        return -1;
    }
    for (int i = 0; i < c->n; i++) {
        long n = (long)c->H[i] * c->W[i];
        fwrite(c->map[i], sizeof(float), (size_t)n, fm); /* little-endian host assumed (x86) */
        for (long j = 0; j < n; j++) fputc(c->mask[i][j] > 0.5f, fk);
    }
    fclose(fm);
    fclose(fk);
    return 0;
}

/* Compare every line of ref.txt with the C result; returns the number of values compared. */
static int compare_ref(const dd_metrics_result *r, const char *dir, const char *label, double tol) {
    char p[512], set[128], key[64], val[64];
    snprintf(p, sizeof p, "%s/ref.txt", dir);
    FILE *f = fopen(p, "r");
    CHECK(f != NULL, "%s: no reference output %s", label, p);
    if (!f) return 0;
    int n = 0;
    while (fscanf(f, "%127s %63s %63s", set, key, val) == 3) {
        double v = strtod(val, NULL);
        const dd_metrics_set *s = find_set(r, set);
        int k = metric_index(key);
        CHECK(s && k >= 0, "%s: C result lacks %s/%s", label, set, key);
        if (!s || k < 0) continue;
        const dd_metric *m = &s->m[k];
        if (isnan(v))
            CHECK(!m->defined && m->why, "%s %s %s: sklearn undefined, C gives %g", label, set,
                  key, m->value);
        else
            CHECK(m->defined && fabs(m->value - v) <= tol, "%s %s %s: C %.12f%s, reference %.12f",
                  label, set, key, m->value, m->defined ? "" : " (undefined)", v);
        n++;
    }
    fclose(f);
    return n;
}

static int have_python(void) {
    if (access(PY, X_OK) != 0) return 0;
    return system(PY " -c 'import sklearn, scipy, numpy' >/dev/null 2>&1") == 0;
}

static void test_against_python(void) {
    if (!have_python()) {
        SKIP("%s with sklearn + scipy not available: reference comparison skipped", PY);
        return;
    }
    if (access(REF_SCRIPT, R_OK) != 0) {
        SKIP("%s not found (run from the repository root)", REF_SCRIPT);
        return;
    }
    char root[] = "/tmp/dd_metrics_XXXXXX";
    if (!mkdtemp(root)) {
        CHECK(0, "mkdtemp failed");
        return;
    }
    enum { NC = 4 };
    static const char *names[NC] = {"random", "tied", "image_only", "image_only_tied"};
    tcase cases[NC];
    cases[0] = make_case(30, 10, 1, 40, 0);
    cases[1] = make_case(30, 8, 1, 36, 6);
    cases[2] = make_case(3000, 1000, 0, 0, 0);
    cases[3] = make_case(3000, 1200, 0, 0, 20);
    char cmd[4096];
    int off = snprintf(cmd, sizeof cmd, "%s %s", PY, REF_SCRIPT);
    for (int i = 0; i < NC; i++) {
        char d[256];
        snprintf(d, sizeof d, "%s/%s", root, names[i]);
        mkdir(d, 0700);
        CHECK(dump_case(&cases[i], d) == 0, "cannot write case %s", d);
        off += snprintf(cmd + off, sizeof cmd - (size_t)off, " %s", d);
    }
    CHECK(system(cmd) == 0, "reference script failed: %s", cmd);
    for (int i = 0; i < NC; i++) {
        dd_metrics *a = NULL;
        dd_metrics_result *r = NULL;
        dd_error err = {0};
        dd_metrics_new(NULL, &a, &err);
        char d[256];
        snprintf(d, sizeof d, "%s/%s", root, names[i]);
        if (feed(a, &cases[i]) == 0 && dd_metrics_compute(a, &r, &err) == DD_OK) {
            int n = compare_ref(r, d, names[i], 1e-9);
            CHECK(n == r->n_sets * DD_M_COUNT, "%s: compared %d values, want %d", names[i], n,
                  r->n_sets * DD_M_COUNT);
        } else {
            CHECK(0, "%s: %s", names[i], err.msg);
        }
        dd_metrics_result_free(r);
        dd_metrics_free(a);
        free_case(&cases[i]);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", root);
}

/* ---------- histogram mode against exact mode ---------- */

static void test_histogram(void) {
    tcase c = make_case(40, 12, 1, 48, 0);
    dd_metrics_params p;
    dd_metrics_params_init(&p);
    dd_metrics *ex = NULL, *h0 = NULL, *hs = NULL;
    dd_metrics_result *re = NULL, *r0 = NULL, *rs = NULL;
    dd_error err = {0};
    dd_metrics_new(&p, &ex, &err);
    p.max_pixel_bytes = 0; /* histogram from the start */
    p.hist_bins = 4096;    /* coarse, so the bounds are visible */
    dd_metrics_new(&p, &h0, &err);
    p.max_pixel_bytes = 200000; /* switches part-way through */
    dd_metrics_new(&p, &hs, &err);
    feed(ex, &c);
    feed(h0, &c);
    CHECK(dd_metrics_pixel_mode(hs) == DD_PIXEL_NONE, "mode before any image");
    feed(hs, &c);
    CHECK(dd_metrics_pixel_mode(ex) == DD_PIXEL_EXACT, "large budget must stay exact");
    CHECK(dd_metrics_pixel_mode(hs) == DD_PIXEL_HISTOGRAM, "small budget must switch to histogram");
    CHECK(dd_metrics_pixel_bytes(hs) <= 4u * 4096 * 24, "histogram mode holds %zu bytes",
          dd_metrics_pixel_bytes(hs));
    CHECK(dd_metrics_compute(ex, &re, &err) == DD_OK, "%s", err.msg);
    CHECK(dd_metrics_compute(h0, &r0, &err) == DD_OK, "%s", err.msg);
    CHECK(dd_metrics_compute(hs, &rs, &err) == DD_OK, "%s", err.msg);
    if (re && r0 && rs) {
        CHECK(r0->pixel_mode == DD_PIXEL_HISTOGRAM && r0->hist_bins == 4096, "histogram mode");
        double worst_ratio = 0, any_bound = 0;
        for (int s = 0; s < re->n_sets; s++)
            for (int k = 0; k < DD_M_COUNT; k++) {
                const dd_metric *e = &re->sets[s].m[k], *h = &r0->sets[s].m[k],
                                *hh = &rs->sets[s].m[k];
                CHECK(e->defined == h->defined, "defined mismatch %s", dd_metric_key(k));
                if (!e->defined) continue;
                CHECK(e->bound == 0, "exact mode must report bound 0");
                double d = fabs(h->value - e->value);
                CHECK(d <= h->bound + 1e-12, "%s %s: |hist − exact| = %.3g > stated bound %.3g",
                      re->sets[s].name, dd_metric_key(k), d, h->bound);
                CHECK(h->bound < 0.02, "%s bound %.3g unreasonably loose", dd_metric_key(k),
                      h->bound);
                CHECK(fabs(hh->value - h->value) < 1e-12 && fabs(hh->bound - h->bound) < 1e-12,
                      "switching mid-way must equal histogram-from-start (%s)", dd_metric_key(k));
                if (h->bound > 0) worst_ratio = fmax(worst_ratio, d / h->bound);
                any_bound = fmax(any_bound, h->bound);
            }
        CHECK(any_bound > 0, "histogram mode must state non-zero bounds");
        (void)worst_ratio;
    }
    dd_metrics_result_free(re);
    dd_metrics_result_free(r0);
    dd_metrics_result_free(rs);
    dd_metrics_free(ex);
    dd_metrics_free(h0);
    dd_metrics_free(hs);
    free_case(&c);
}

/* The bounds are attained: inside one bin, all 10 defect pixels (one region) sit just above 20
 * normal pixels; 80 more normals are far below. Exact: every metric is 1. Binned (one group
 * TP 10 FP 20, then FP 80): AUROC 1 − ½·10·20/(10·100) = 0.9, bound 0.1 (= the error);
 * F1 = 2·10/(10+20+10) = 0.5, bound 2·10/(10+0+10) − 0.5 = 0.5 (= the error);
 * AUPRO: curve (0,0),(0.2,1),(1,1) → (0.5·0.2 + 0.1)/0.3 = 2/3, bound ½·0.2·1/0.3 = 1/3 (= the
 * error); AP = 1/3, bound 10/10 − 1/21 ≥ the error 2/3. */
static void test_histogram_bounds_attained(void) {
    enum { H = 11, W = 10 };
    float map[H * W], mask[H * W];
    for (int i = 0; i < H * W; i++) {
        mask[i] = i < W;
        map[i] = i < W ? 0.900001f : i < 3 * W ? 0.9f : 0.1f;
    }
    dd_metrics_params p;
    dd_metrics_params_init(&p);
    p.max_pixel_bytes = 0;
    p.hist_bins = 4096; /* 0.9 and 0.900001 share bin 3686 */
    dd_metrics *a = NULL;
    dd_metrics_result *r = NULL;
    dd_error err = {0};
    dd_metrics_new(&p, &a, &err);
    CHECK(dd_metrics_add_image(a, 1, 1, "d", map, mask, H, W, &err) == DD_OK, "%s", err.msg);
    CHECK(dd_metrics_compute(a, &r, &err) == DD_OK, "%s", err.msg);
    if (r) {
        const dd_metric *m = r->sets[0].m;
        CHECK_VAL(m[DD_M_PIXEL_AUROC], 0.9, 1e-12, "binned AUROC");
        CHECK(fabs(m[DD_M_PIXEL_AUROC].bound - 0.1) < 1e-12, "AUROC bound %.12g, want 0.1",
              m[DD_M_PIXEL_AUROC].bound);
        CHECK_VAL(m[DD_M_PIXEL_F1MAX], 0.5, 1e-12, "binned F1");
        CHECK(fabs(m[DD_M_PIXEL_F1MAX].bound - 0.5) < 1e-12, "F1 bound %.12g, want 0.5",
              m[DD_M_PIXEL_F1MAX].bound);
        CHECK_VAL(m[DD_M_AUPRO], 2.0 / 3, 1e-9, "binned AUPRO");
        CHECK(fabs(m[DD_M_AUPRO].bound - 1.0 / 3) < 1e-9, "AUPRO bound %.12g, want 1/3",
              m[DD_M_AUPRO].bound);
        CHECK_VAL(m[DD_M_PIXEL_AP], 1.0 / 3, 1e-12, "binned AP");
        CHECK(m[DD_M_PIXEL_AP].bound >= 2.0 / 3 && m[DD_M_PIXEL_AP].bound <= 1,
              "AP bound %.12g must cover the error 2/3", m[DD_M_PIXEL_AP].bound);
    }
    dd_metrics_result_free(r);
    dd_metrics_free(a);

    /* Everything in one bin, the 10 defect pixels just above the 100 normals. Exact: all 1.
     * Binned: a single group straight from (0,0) to (1,1).
     * AP = 10/110, bound = 1·10/10 − 10/110 (positives first, tied) = the error.
     * AUPRO: interpolated PRO at 0.3 is 0.3 → area 0.045 → 0.15; bound for the cut box
     * w·ΔPRO·(1 − w/2) = 0.3·0.85 → /0.3 = 0.85 = the error. */
    for (int i = 0; i < H * W; i++) map[i] = i < W ? 0.500001f : 0.5f;
    a = NULL;
    r = NULL;
    dd_metrics_new(&p, &a, &err);
    CHECK(dd_metrics_add_image(a, 1, 1, "d", map, mask, H, W, &err) == DD_OK, "%s", err.msg);
    CHECK(dd_metrics_compute(a, &r, &err) == DD_OK, "%s", err.msg);
    if (r) {
        const dd_metric *m = r->sets[0].m;
        CHECK_VAL(m[DD_M_PIXEL_AP], 10.0 / 110, 1e-12, "one-bin AP");
        CHECK(fabs(m[DD_M_PIXEL_AP].bound - 100.0 / 110) < 1e-12, "AP bound %.12g, want 10/11",
              m[DD_M_PIXEL_AP].bound);
        CHECK_VAL(m[DD_M_AUPRO], 0.15, 1e-9, "one-bin AUPRO");
        CHECK(fabs(m[DD_M_AUPRO].bound - 0.85) < 1e-9, "AUPRO bound %.12g, want 0.85",
              m[DD_M_AUPRO].bound);
    }
    dd_metrics_result_free(r);
    dd_metrics_free(a);

    /* Negatives first inside the bin, below 1000 higher normals: rows 0 = 10 defect pixels
     * at 0.5, row 1 = 10 normals at 0.500001 (same bin), rows 2..101 = 1000 normals at 0.9,
     * the rest 0.1. Exact AP = Σ_j j/(j+1010)/10 (the lowest order); binned 10/1020; the
     * "positives first" side (10/1010 − 10/1020) is smaller, so bound = binned − exact. */
    {
        enum { H2 = 110, W2 = 10 };
        static float map2[H2 * W2], mask2[H2 * W2];
        for (int i = 0; i < H2 * W2; i++) {
            mask2[i] = i < W2;
            map2[i] = i < W2 ? 0.5f : i < 2 * W2 ? 0.500001f : i < 102 * W2 ? 0.9f : 0.1f;
        }
        a = NULL;
        r = NULL;
        dd_metrics_new(&p, &a, &err);
        dd_metrics_add_image(a, 1, 1, "d", map2, mask2, H2, W2, &err);
        CHECK(dd_metrics_compute(a, &r, &err) == DD_OK, "%s", err.msg);
        if (r) {
            double exact = 0;
            for (int j = 1; j <= 10; j++) exact += j / (j + 1010.0) / 10;
            const dd_metric *m = r->sets[0].m;
            CHECK_VAL(m[DD_M_PIXEL_AP], 10.0 / 1020, 1e-12, "binned AP");
            CHECK(fabs(m[DD_M_PIXEL_AP].bound - (10.0 / 1020 - exact)) < 1e-12,
                  "AP bound %.12g, want %.12g", m[DD_M_PIXEL_AP].bound, 10.0 / 1020 - exact);
        }
        dd_metrics_result_free(r);
        dd_metrics_free(a);
    }
}

/* ---------- top-k mean ---------- */

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

static void test_topk(void) {
    CHECK(model_topk(256, 256) == 50, "k at 256² = %ld", model_topk(256, 256));
    CHECK(model_topk(128, 128) == 13, "k at 128² = %ld (12.5 rounds to 13)", model_topk(128, 128));
    CHECK(model_topk(8, 8) == 1, "k at 8² must be at least 1");
    CHECK(model_topk(512, 512) == 200, "k at 512²");
    CHECK(model_topk(256, 128) == 25, "k at 256x128 = %ld", model_topk(256, 128));
    {
        dd_model_config c;
        dd_model_config_paper(&c, 256, 256);
        CHECK(dd_model_topk(&c) == 50, "paper config: k = %d", dd_model_topk(&c));
        c.topk = 7;
        CHECK(dd_model_topk(&c) == 7, "an explicit topk is used as is: %d", dd_model_topk(&c));
    }
    for (int t = 0; t < 40; t++) {
        long n = 1 + rnd_int(t < 20 ? 200 : 70000);
        float *m = malloc(sizeof(float) * (size_t)n), *s = malloc(sizeof(float) * (size_t)n);
        int mode = t % 4;
        for (long i = 0; i < n; i++) {
            double v = rnd();
            if (mode == 1) v = round(v * 4) / 4;   /* heavy ties */
            if (mode == 2) v = (v - 0.5) * 1e-3;   /* negatives and zeros around 0 */
            if (mode == 3) v = i % 7 == 0 ? -0.0 : v * 1e-30; /* signed zero, denormal-ish */
            m[i] = (float)v;
        }
        memcpy(s, m, sizeof(float) * (size_t)n);
        qsort(s, (size_t)n, sizeof *s, cmp_desc);
        long k = t % 5 == 0 ? n : 1 + rnd_int((int)(n < 300 ? n : 300));
        double ref = 0, got = -1;
        for (long i = 0; i < k; i++) ref += s[i];
        ref /= (double)k;
        CHECK(dd_topk_mean(m, n, k, &got, NULL) == DD_OK, "topk failed");
        CHECK(fabs(got - ref) <= 1e-12 * (fabs(ref) + 1e-30) + 1e-300,
              "topk n=%ld k=%ld mode %d: %.17g vs sorted %.17g", n, k, mode, got, ref);
        free(m);
        free(s);
    }
    float z[3] = {1, NAN, 2};
    double out;
    dd_error err = {0};
    CHECK(dd_topk_mean(z, 3, 1, &out, &err) == DD_E_INVALID, "NaN map accepted by topk");
    CHECK(dd_topk_mean(z, 0, 1, &out, &err) == DD_E_INVALID, "n = 0 accepted by topk");
}

/* ---------- writers ---------- */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static void test_writers(void) {
    char root[] = "/tmp/dd_metrics_w_XXXXXX";
    if (!mkdtemp(root)) {
        CHECK(0, "mkdtemp");
        return;
    }
    tcase c = make_case(16, 5, 1, 24, 0);
    c.type[c.n - 1] = "odd, \"name\" | x"; /* CSV quoting, JSON escaping, Markdown pipes */
    dd_metrics *a = NULL;
    dd_metrics_result *r = NULL;
    dd_error err = {0};
    dd_metrics_new(NULL, &a, &err);
    feed(a, &c);
    CHECK(dd_metrics_compute(a, &r, &err) == DD_OK, "%s", err.msg);
    char pj[300], pc[300], pm[300];
    snprintf(pj, sizeof pj, "%s/metrics.json", root);
    snprintf(pc, sizeof pc, "%s/metrics.csv", root);
    snprintf(pm, sizeof pm, "%s/metrics.md", root);
    CHECK(dd_metrics_write_json(r, pj, &err) == DD_OK, "json: %s", err.msg);
    CHECK(dd_metrics_write_csv(r, pc, &err) == DD_OK, "csv: %s", err.msg);
    CHECK(dd_metrics_write_markdown(r, pm, &err) == DD_OK, "md: %s", err.msg);
    char *md = NULL;
    CHECK(dd_metrics_markdown(r, &md, &err) == DD_OK && md, "markdown string: %s", err.msg);
    char *mdf = slurp(pm), *csv = slurp(pc), *js = slurp(pj);
    CHECK(md && mdf && strcmp(md, mdf) == 0, "markdown file differs from the returned string");
    CHECK(md && strstr(md, "| overall |") && strstr(md, "AUPRO") && strstr(md, "exact") &&
              strstr(md, "odd, \"name\" \\| x"),
          "markdown table content:\n%s", md ? md : "(null)");
    CHECK(csv && strstr(csv, "set,n_good,n_defective,image_auroc") &&
              strstr(csv, "\"odd, \"\"name\"\" | x\""),
          "csv content:\n%s", csv ? csv : "(null)");
    CHECK(js && strstr(js, "\"pixel_mode\": \"exact\"") && strstr(js, "\"odd, \\\"name\\\" | x\""),
          "json content");
    CHECK(md && !strstr(md, "with mask") && !strstr(md, "Pixel metrics over"),
          "every defective image has a mask: the table stays as it was:\n%s", md ? md : "(null)");
    CHECK(js && strstr(js, "\"pixel_truth_note\": \"pixel metrics over all 5 good and 11 defective images\""),
          "json: the note says every image is in the pixel metrics");
    /* No temporary files left behind by the atomic writes. */
    DIR *d = opendir(root);
    int files = 0, temps = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        /* the atomic writer's temporaries are hidden: ".<name>.XXXXXX.tmp" */
        if (e->d_name[0] == '.' || strstr(e->d_name, ".tmp")) temps++;
        else files++;
    }
    if (d) closedir(d);
    CHECK(files == 3 && temps == 0, "%d files, %d temporaries in %s", files, temps, root);
    /* Valid JSON, checked by Python's parser when there is one. */
    if (access(PY, X_OK) == 0) {
        char cmd[600];
        snprintf(cmd, sizeof cmd,
                 PY " -c 'import json,sys; d=json.load(open(sys.argv[1])); "
                    "assert d[\"sets\"][0][\"name\"]==\"overall\"' %s",
                 pj);
        CHECK(system(cmd) == 0, "metrics.json does not parse");
    } else {
        SKIP("%s not available: JSON parse check skipped", PY);
    }
    CHECK(dd_metrics_write_json(r, "/nonexistent-dir/metrics.json", &err) == DD_E_IO &&
              strstr(err.msg, "/nonexistent-dir"),
          "writing into a missing folder must fail with DD_E_IO naming the path (%s)", err.msg);
    free(md);
    free(mdf);
    free(csv);
    free(js);
    dd_metrics_result_free(r);
    dd_metrics_free(a);
    free_case(&c);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", root);
}


/* ---------- defective images without pixel truth (issue 13 item 1) ---------- */

/* Pixel AUROC the slow way: every (defect pixel, normal pixel) pair of the images with pixel truth
 * in set `type` (NULL: overall), ½ for a tie. Independent of the sweep. */
static double naive_pixel_auroc(const tcase *c, const char *type) {
    long long P = 0, N = 0;
    double wins = 0;
    for (int i = 0; i < c->n; i++) {
        if (c->nomask[i] || (type && c->label[i] && strcmp(c->type[i], type))) continue;
        for (int p = 0; p < c->H[i] * c->W[i]; p++) {
            if (c->mask[i][p] <= 0.5f) continue;
            P++;
            for (int j = 0; j < c->n; j++) {
                if (c->nomask[j] || (type && c->label[j] && strcmp(c->type[j], type))) continue;
                for (int q = 0; q < c->H[j] * c->W[j]; q++) {
                    if (c->mask[j][q] > 0.5f) continue;
                    wins += c->map[i][p] > c->map[j][q] ? 1 : c->map[i][p] == c->map[j][q] ? 0.5 : 0;
                }
            }
        }
    }
    for (int j = 0; j < c->n; j++)
        if (!c->nomask[j] && (!type || !c->label[j] || !strcmp(c->type[j], type)))
            for (int q = 0; q < c->H[j] * c->W[j]; q++) N += c->mask[j][q] <= 0.5f;
    return P && N ? wins / ((double)P * N) : NAN;
}

static void test_partial_masks(void) {
    dd_error err = {0};
    dd_metrics *a = NULL;
    dd_metrics_result *r = NULL;
    /* The hand case of test_hand_pixel (good A, defective B with its mask) plus two defective
     * images without masks: C ("spot", score 0.05) and D ("other", score 0.2). The pixel metrics
     * must be exactly the hand values (C and D have no pixels in them); the image metrics count
     * all four: good {0.1} vs defective {0.9, 0.05, 0.2} → AUROC 2/3. */
    float mapA[4] = {.1f, .1f, .1f, .1f};
    float mapB[8] = {.9f, .2f, .2f, .6f, .3f, .7f, .1f, .1f};
    float maskB[8] = {1, 0, 0, 1, 1, 0, 0, 0};
    dd_metrics_new(NULL, &a, &err);
    CHECK(dd_metrics_add_image_unmasked(a, 0.05, "spot", &err) == DD_OK, "unmasked first: %s", err.msg);
    CHECK(dd_metrics_add_image(a, 0.1, 0, NULL, mapA, NULL, 2, 2, &err) == DD_OK, "add A: %s", err.msg);
    CHECK(dd_metrics_add_image(a, 0.9, 1, "spot", mapB, maskB, 2, 4, &err) == DD_OK, "add B: %s", err.msg);
    CHECK(dd_metrics_add_image_unmasked(a, 0.2, "other", &err) == DD_OK, "unmasked after maps: %s", err.msg);
    CHECK(dd_metrics_compute(a, &r, &err) == DD_OK, "compute: %s", err.msg);
    if (r) {
        const dd_metrics_set *o = find_set(r, "overall"), *sp = find_set(r, "spot"), *ot = find_set(r, "other");
        CHECK(o && sp && ot && r->n_sets == 3, "sets overall, other, spot");
        if (o && sp && ot) {
            CHECK(o->n_good == 1 && o->n_defective == 3 && o->n_defective_masked == 1, "overall counts %ld/%ld/%ld",
                  o->n_good, o->n_defective, o->n_defective_masked);
            CHECK(sp->n_defective == 2 && sp->n_defective_masked == 1 && ot->n_defective == 1 &&
                      ot->n_defective_masked == 0,
                  "per-type counts");
            CHECK_VAL(o->m[DD_M_IMAGE_AUROC], 2.0 / 3, 1e-12, "image AUROC over all four images");
            CHECK_VAL(o->m[DD_M_PIXEL_AUROC], 25.0 / 27, 1e-12, "pixel AUROC over A and B only");
            CHECK_VAL(o->m[DD_M_PIXEL_AP], 29.0 / 36, 1e-7, "pixel AP over A and B only");
            CHECK_VAL(o->m[DD_M_PIXEL_F1MAX], 6.0 / 7, 1e-12, "pixel F1-max over A and B only");
            CHECK_VAL(o->m[DD_M_AUPRO], 13.0 / 18, 1e-7, "AUPRO over A and B only");
            CHECK(o->n_pixels == 12 && o->n_defect_pixels == 3 && o->n_regions == 2, "pixel counts of A and B");
            CHECK_VAL(sp->m[DD_M_PIXEL_AUROC], 25.0 / 27, 1e-12, "spot: pixel AUROC over A and B");
            CHECK_VAL(sp->m[DD_M_IMAGE_AUROC], 0.5, 1e-12, "spot: image AUROC {0.9, 0.05} vs {0.1}");
            for (int k = DD_M_PIXEL_AUROC; k <= DD_M_AUPRO; k++)
                CHECK(!ot->m[k].defined && ot->m[k].why && !strcmp(ot->m[k].why, "no defective image has a ground-truth mask"),
                      "other: %s undefined with the reason (%s)", dd_metric_key(k), ot->m[k].why ? ot->m[k].why : "none");
            CHECK_VAL(ot->m[DD_M_IMAGE_AUROC], 1.0, 1e-12, "other: image AUROC 0.2 vs 0.1");
            char note[300];
            CHECK(dd_metrics_truth_note(o, note, sizeof note) == 1 &&
                      !strcmp(note, "pixel metrics over 1 of 3 defective images (2 have no mask) and the 1 good image; "
                                    "images without a mask count in the image metrics only"),
                  "overall note: %s", note);
            CHECK(dd_metrics_truth_note(ot, note, sizeof note) == 1 && strstr(note, "none of the 1 defective image has a mask"),
                  "other note: %s", note);
        }
        CHECK(r->pixel_roc.n > 0 && r->pro.n > 0, "overall pixel curves are drawn");
    }
    dd_metrics_result_free(r);
    dd_metrics_free(a);

    /* No defective image has a mask: pixel metrics undefined, with or without good images */
    for (int with_good = 0; with_good < 2; with_good++) {
        a = NULL, r = NULL;
        dd_metrics_new(NULL, &a, &err);
        if (with_good) dd_metrics_add_image(a, 0.1, 0, NULL, mapA, NULL, 2, 2, &err);
        dd_metrics_add_image_unmasked(a, 0.3, "x", &err);
        dd_metrics_add_image_unmasked(a, 0.05, "y", &err);
        CHECK(dd_metrics_compute(a, &r, &err) == DD_OK, "compute: %s", err.msg);
        if (r) {
            const dd_metric *m = r->sets[0].m;
            CHECK(!m[DD_M_PIXEL_AUROC].defined && !strcmp(m[DD_M_PIXEL_AUROC].why, "no defective image has a ground-truth mask") &&
                      !m[DD_M_AUPRO].defined && r->pixel_roc.n == 0 && r->pro.n == 0,
                  "no masks (good images %d): pixel metrics undefined with the reason", with_good);
            if (with_good) CHECK_VAL(m[DD_M_IMAGE_AUROC], 0.5, 1e-12, "no masks: image AUROC still computed");
            CHECK(r->sets[0].n_defective_masked == 0, "n_defective_masked 0");
        }
        dd_metrics_result_free(r);
        dd_metrics_free(a);
    }
    /* Images without maps at all and unmasked ones: the reason stays "no anomaly maps" */
    a = NULL, r = NULL;
    dd_metrics_new(NULL, &a, &err);
    dd_metrics_add_image(a, 0.1, 0, NULL, NULL, NULL, 0, 0, &err);
    dd_metrics_add_image(a, 0.4, 1, "x", NULL, NULL, 0, 0, &err);
    CHECK(dd_metrics_add_image_unmasked(a, 0.3, "x", &err) == DD_OK, "unmasked mixes with map-less images: %s", err.msg);
    if (dd_metrics_compute(a, &r, &err) == DD_OK)
        CHECK(!r->sets[0].m[DD_M_PIXEL_AP].defined && !strcmp(r->sets[0].m[DD_M_PIXEL_AP].why, "no anomaly maps given") &&
                  r->sets[0].n_defective_masked == 1,
              "map-less: reason %s", r->sets[0].m[DD_M_PIXEL_AP].why);
    dd_metrics_result_free(r);
    /* bad input */
    CHECK(dd_metrics_add_image_unmasked(a, NAN, "x", &err) == DD_E_INVALID, "NaN score accepted (unmasked)");
    CHECK(dd_metrics_add_image_unmasked(a, 0.5, "good", &err) == DD_E_INVALID && strstr(err.msg, "'good'"),
          "defect type 'good' accepted (unmasked)");
    CHECK(dd_metrics_add_image_unmasked(NULL, 0.5, "x", &err) == DD_E_INVALID, "NULL accumulator");
    dd_metrics_free(a);

    /* Random images, a third of the defective ones and every "hole" without a mask, against
     * tests/py/metrics_ref.py (scikit-learn over the images with pixel truth) and a pairwise
     * pixel AUROC; histogram mode within its stated bounds of exact mode. */
    tcase c = make_case(24, 8, 1, 22, 0);
    long want_masked = 0, want_def = 0;
    for (int i = 0; i < c.n; i++) {
        if (!c.label[i]) continue;
        c.nomask[i] = !strcmp(c.type[i], "hole") || i % 3 == 0;
        want_def++;
        want_masked += !c.nomask[i];
    }
    CHECK(want_masked > 0 && want_masked < want_def, "the case mixes masked and unmasked images");
    dd_metrics_params p;
    dd_metrics_params_init(&p);
    dd_metrics *ex = NULL, *hi = NULL;
    dd_metrics_result *re = NULL, *rh = NULL;
    dd_metrics_new(&p, &ex, &err);
    p.max_pixel_bytes = 0;
    p.hist_bins = 4096;
    dd_metrics_new(&p, &hi, &err);
    feed(ex, &c);
    feed(hi, &c);
    CHECK(dd_metrics_compute(ex, &re, &err) == DD_OK && dd_metrics_compute(hi, &rh, &err) == DD_OK, "%s", err.msg);
    if (re && rh) {
        CHECK(re->sets[0].n_defective == want_def && re->sets[0].n_defective_masked == want_masked,
              "overall: %ld of %ld masked, want %ld of %ld", re->sets[0].n_defective_masked, re->sets[0].n_defective,
              want_masked, want_def);
        for (int s = 0; s < re->n_sets; s++) {
            const dd_metrics_set *st = &re->sets[s];
            const char *type = s ? st->name : NULL;
            long m = 0;
            for (int i = 0; i < c.n; i++) m += c.label[i] && !c.nomask[i] && (!type || !strcmp(c.type[i], type));
            CHECK(st->n_defective_masked == m, "%s: n_defective_masked %ld, want %ld", st->name, st->n_defective_masked, m);
            double naive = naive_pixel_auroc(&c, type);
            if (isnan(naive))
                CHECK(!st->m[DD_M_PIXEL_AUROC].defined, "%s: pixel AUROC must be undefined", st->name);
            else
                CHECK_VAL(st->m[DD_M_PIXEL_AUROC], naive, 1e-12, "pairwise pixel AUROC over the masked subset");
            for (int k = 0; k < DD_M_COUNT; k++) {
                const dd_metric *e = &st->m[k], *h = &rh->sets[s].m[k];
                CHECK(e->defined == h->defined, "%s %s: defined in one mode only", st->name, dd_metric_key(k));
                if (e->defined && h->defined)
                    CHECK(fabs(h->value - e->value) <= h->bound + 1e-12, "%s %s: histogram %.9f vs exact %.9f, bound %.3g",
                          st->name, dd_metric_key(k), h->value, e->value, h->bound);
            }
        }
        const dd_metrics_set *hole = find_set(re, "hole");
        CHECK(!hole || (!hole->m[DD_M_AUPRO].defined && !strcmp(hole->m[DD_M_AUPRO].why, "no defective image has a ground-truth mask")),
              "hole (no masks): AUPRO undefined with the reason");
    }
    if (!have_python()) {
        SKIP("%s with sklearn + scipy not available: partial-mask reference comparison skipped", PY);
    } else if (access(REF_SCRIPT, R_OK) != 0) {
        SKIP("%s not found (run from the repository root)", REF_SCRIPT);
    } else if (re) {
        char root[] = "/tmp/dd_metrics_partial_XXXXXX";
        if (mkdtemp(root)) {
            CHECK(dump_case(&c, root) == 0, "cannot write the case to %s", root);
            char cmd[600];
            snprintf(cmd, sizeof cmd, "%s %s %s", PY, REF_SCRIPT, root);
            CHECK(system(cmd) == 0, "reference script failed: %s", cmd);
            int n = compare_ref(re, root, "partial masks", 1e-9);
            CHECK(n == re->n_sets * DD_M_COUNT, "partial masks: compared %d values, want %d", n, re->n_sets * DD_M_COUNT);
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
            if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", root);
        } else CHECK(0, "mkdtemp");
    }
    /* The writers say which images the pixel metrics cover */
    char wdir[] = "/tmp/dd_metrics_pw_XXXXXX";
    if (re && mkdtemp(wdir)) {
        char pj[300], pc[300], pm[300];
        snprintf(pj, sizeof pj, "%s/metrics.json", wdir);
        snprintf(pc, sizeof pc, "%s/metrics.csv", wdir);
        snprintf(pm, sizeof pm, "%s/metrics.md", wdir);
        CHECK(dd_metrics_write_json(re, pj, &err) == DD_OK && dd_metrics_write_csv(re, pc, &err) == DD_OK &&
                  dd_metrics_write_markdown(re, pm, &err) == DD_OK,
              "write: %s", err.msg);
        char *js = slurp(pj), *csv = slurp(pc), *md = slurp(pm), want[300], note[300];
        dd_metrics_truth_note(&re->sets[0], note, sizeof note);
        snprintf(want, sizeof want, "\"n_defective\": %ld, \"n_defective_masked\": %ld,", want_def, want_masked);
        CHECK(js && strstr(js, want) && strstr(js, "\"pixel_truth_note\": \"pixel metrics over ") && strstr(js, note),
              "metrics.json has the counts and the note:\n%s", js ? js : "(null)");
        snprintf(want, sizeof want, "| %ld (%ld with mask) |", want_def, want_masked);
        CHECK(md && strstr(md, want) && strstr(md, "\nPixel metrics over ") && strstr(md, "count in the image metrics only.\n"),
              "metrics.md shows the counts and the note:\n%s", md ? md : "(null)");
        snprintf(want, sizeof want, ",%ld\n", want_masked);
        CHECK(csv && strstr(csv, ",pixel_error_bound,n_defective_masked\n") && strstr(csv, want), "metrics.csv:\n%s",
              csv ? csv : "(null)");
        if (access(PY, X_OK) == 0) {
            char cmd[700];
            snprintf(cmd, sizeof cmd,
                     PY " -c 'import json,sys; d=json.load(open(sys.argv[1])); s=d[\"sets\"][0]; "
                        "assert s[\"n_defective_masked\"]==%ld and s[\"n_defective\"]==%ld' %s",
                     want_masked, want_def, pj);
            CHECK(system(cmd) == 0, "metrics.json parses with the counts");
        }
        free(js), free(csv), free(md);
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", wdir);
        if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", wdir);
    }
    dd_metrics_result_free(re);
    dd_metrics_result_free(rh);
    dd_metrics_free(ex);
    dd_metrics_free(hi);
    free_case(&c);
}

/* Clopper-Pearson against scipy.stats.beta.ppf (scipy 1.10, 2026-11-30): lo = ppf(0.025, k, n-k+1),
 * hi = ppf(0.975, k+1, n-k). */
static void test_clopper_pearson(void) {
    const struct { long k, n; double lo, hi; } ref[] = {
        {0, 100, 0.0, 0.03621669264517641},          {1, 100, 0.00025314603297742064, 0.054459385392080645},
        {5, 50, 0.03327509358902247, 0.21813536643420225}, {3, 7, 0.09898827844250786, 0.8159484323599169},
        {10, 10, 0.6915028921812392, 1.0},           {0, 1, 0.0, 0.975},
    };
    for (size_t i = 0; i < sizeof ref / sizeof ref[0]; i++) {
        double lo, hi;
        int rc = dd_clopper_pearson(ref[i].k, ref[i].n, 0.95, &lo, &hi);
        CHECK(rc == 0 && fabs(lo - ref[i].lo) < 1e-9 && fabs(hi - ref[i].hi) < 1e-9,
              "Clopper-Pearson %ld of %ld: [%.12g, %.12g], scipy [%.12g, %.12g]", ref[i].k, ref[i].n, lo, hi, ref[i].lo,
              ref[i].hi);
    }
    double lo, hi;
    CHECK(dd_clopper_pearson(3, 2, 0.95, &lo, &hi) == -1 && dd_clopper_pearson(0, 0, 0.95, &lo, &hi) == -1 &&
              dd_clopper_pearson(1, 5, 1.0, &lo, &hi) == -1 && lo == 0 && hi == 1,
          "Clopper-Pearson refuses k > n, n = 0, conf 1");
    CHECK(fabs(dd_betainc(2, 3, 0.4) - 0.5248) < 1e-12, "I_0.4(2,3) = 0.5248: %.15g", dd_betainc(2, 3, 0.4));
}

int main(void) {
    test_hand_image();
    test_hand_pixel();
    test_bad_input();
    test_topk();
    test_histogram();
    test_histogram_bounds_attained();
    test_writers();
    test_clopper_pearson();
    test_against_python();
    test_partial_masks();
    return check_summary("test_metrics");
}
