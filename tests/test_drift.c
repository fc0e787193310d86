/* test_drift.c — the production watch of eval/drift.h: Kolmogorov's distribution and the
 * two-sample KS statistic against scipy, the stored calibration-score text (bit-exact round
 * trip, subsampling, malformed text), the drift rule on samples with a known answer, and the
 * review band of train/calibrate.h. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "eval/drift.h"
#include "train/calibrate.h"

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* scipy 1.10.1, scipy.special.kolmogorov (2026-11-30); both sides of the series switch at 1.18 */
static void test_kolmogorov(void) {
    static const double ref[][2] = {{0.05, 1.0},
                                    {0.3, 0.9999906941986655},
                                    {1.0, 0.26999967167735456},
                                    {1.17, 0.12939004218561884},
                                    {1.19, 0.11774229287977166},
                                    {1.36, 0.049485876755377876},
                                    {2.0, 0.0006709252557796953},
                                    {3.0, 3.045995948942526e-08},
                                    {5.0, 3.8574996959278356e-22}};
    for (size_t i = 0; i < sizeof ref / sizeof *ref; i++) {
        double q = dd_kolmogorov_sf(ref[i][0]);
        CHECK(check_rel(q, ref[i][1], 1e-300) < 1e-9, "Q(%g) = %.17g, scipy %.17g", ref[i][0], q, ref[i][1]);
    }
    CHECK(dd_kolmogorov_sf(0) == 1 && dd_kolmogorov_sf(-1) == 1, "Q(lambda <= 0) = 1");
}

static void test_ks(void) {
    dd_error err = {0};
    double D, p;
    /* ties inside and across the samples: scipy.stats.ks_2samp statistic, p from scipy's
     * kolmogorov at the Stephens-corrected lambda */
    const float a[] = {0.1f, 0.2f, 0.2f, 0.3f, 0.4f, 0.5f, 0.5f, 0.55f};
    const float b[] = {0.15f, 0.2f, 0.3f, 0.45f, 0.5f, 0.6f, 0.62f, 0.7f, 0.7f};
    CHECK(!dd_ks_two_sample(a, 8, b, 9, &D, &p, &err), "%s", err.msg);
    CHECK(fabs(D - 0.4444444444444444) < 1e-12 && check_rel(p, 0.2789504836289399, 1e-30) < 1e-9,
          "KS with ties: D %.16g p %.16g (scipy 0.4444444444444444, 0.2789504836289399)", D, p);
    float x[200], y[150];
    for (int i = 0; i < 200; i++) x[i] = (float)(i / 200.0);
    for (int j = 0; j < 150; j++) y[j] = (float)(j / 150.0 * 0.8 + 0.15);
    CHECK(!dd_ks_two_sample(x, 200, y, 150, &D, &p, &err), "%s", err.msg);
    CHECK(fabs(D - 0.15333333333333332) < 1e-9 && check_rel(p, 0.0316512514852219, 1e-30) < 1e-6,
          "KS 200 vs 150: D %.16g p %.16g (scipy 0.15333333333333332, 0.0316512514852219)", D, p);
    CHECK(!dd_ks_two_sample(x, 200, x, 200, &D, &p, &err) && D == 0 && p == 1, "a sample against itself: D 0, p 1");
    /* bad input */
    const float uns[] = {0.3f, 0.1f}, nan_[] = {0.1f, NAN};
    CHECK(dd_ks_two_sample(uns, 2, b, 9, &D, &p, &err) == DD_E_INVALID && strstr(err.msg, "not sorted"), "unsorted: %s", err.msg);
    CHECK(dd_ks_two_sample(nan_, 2, b, 9, &D, &p, &err) == DD_E_INVALID && strstr(err.msg, "NaN"), "NaN: %s", err.msg);
    CHECK(dd_ks_two_sample(a, 0, b, 9, &D, &p, &err) == DD_E_INVALID && strstr(err.msg, "empty"), "empty: %s", err.msg);
}

static void test_calib_text(void) {
    dd_error err = {0};
    float v[5000];
    dd_rng r;
    dd_rng_seed(&r, 7);
    for (int i = 0; i < 5000; i++) v[i] = (float)dd_rng_normal(&r) * 0.01f + 0.3f;
    qsort(v, 5000, sizeof *v, cmp_float);
    char *t = NULL;
    float *back = NULL;
    size_t n = 0, imgs = 0;
    /* a small set: every value, bit for bit */
    CHECK(!dd_calib_scores_format(v, 37, &t, &err) && !dd_calib_scores_parse(t, &back, &n, &imgs, &err), "%s", err.msg);
    CHECK(n == 37 && imgs == 37 && back && !memcmp(back, v, 37 * sizeof *v), "37 scores round-trip bit for bit");
    free(t), free(back);
    /* more than the cap: evenly spaced order statistics, both ends kept, the count of images kept */
    CHECK(!dd_calib_scores_format(v, 5000, &t, &err) && !dd_calib_scores_parse(t, &back, &n, &imgs, &err), "%s", err.msg);
    CHECK(n == DD_CALIB_SCORES_MAX && imgs == 5000 && back && back[0] == v[0] && back[n - 1] == v[4999],
          "5000 scores kept as %zu values for %zu images, ends kept", n, imgs);
    int even = 1;
    for (size_t k = 0; back && k < n; k++) even &= back[k] == v[llround((double)k * 4999.0 / (DD_CALIB_SCORES_MAX - 1))];
    CHECK(even, "the kept values are the evenly spaced order statistics");
    free(t), free(back);
    /* malformed text: one message naming the key */
    const char *bad[] = {"", "abc", "3", "3:", "0:1", "-2:1,2", " -2:1,2", "+2:1,2", "2:0.1,0.2,0.3", "3:0.3,0.2", "3:0.1,nan", "3:0.1,,0.2",
                         "3:0.1,0.2,", "3:0.1x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = dd_calib_scores_parse(bad[i], &back, &n, &imgs, &err);
        CHECK(rc == DD_E_FORMAT && back == NULL && strstr(err.msg, DD_CALIB_SCORES_KEY), "'%s' refused: %s", bad[i], err.msg);
    }
}

/* Draw n scores ~ N(mu, 0.01), sorted. */
static void draw(float *v, int n, double mu, uint64_t seed) {
    dd_rng r;
    dd_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) v[i] = (float)(mu + 0.01 * dd_rng_normal(&r));
    qsort(v, (size_t)n, sizeof *v, cmp_float);
}

static void test_drift_rule(void) {
    dd_error err = {0};
    dd_drift_rule rule;
    dd_drift_rule_init(&rule);
    static float cal[300], run[400];
    const float thr = 0.33f; /* 3 sd above the mean 0.30 */
    draw(cal, 300, 0.30, 1);
    dd_drift_result d;
    /* the same distribution: no drift */
    draw(run, 400, 0.30, 2);
    CHECK(!dd_drift_check(cal, 300, run, 400, thr, &rule, &d, &err) && !d.drift && d.p > 0.05,
          "same distribution: no drift (D %.3f p %.3g shift %.3f) %s", d.D, d.p, d.shift, err.msg);
    /* a shift of half a standard deviation up (a sixth of the way to the threshold): drift */
    draw(run, 400, 0.305, 3);
    CHECK(!dd_drift_check(cal, 300, run, 400, thr, &rule, &d, &err) && d.drift && d.shift > 0.1 && d.shift < 0.3,
          "shift up by 0.5 sd: drift (D %.3f p %.3g shift %.3f)", d.D, d.p, d.shift);
    /* downwards too */
    draw(run, 400, 0.295, 4);
    CHECK(!dd_drift_check(cal, 300, run, 400, thr, &rule, &d, &err) && d.drift && d.shift < -0.1, "shift down: drift (shift %.3f)", d.shift);
    /* defects (scores above the threshold) are not drift: a quarter of the run far above it */
    draw(run, 400, 0.30, 5);
    for (int i = 300; i < 400; i++) run[i] = 0.5f + i * 1e-4f;
    CHECK(!dd_drift_check(cal, 300, run, 400, thr, &rule, &d, &err) && !d.drift && d.n_run <= 300,
          "scores over the threshold are left out: no drift (n_run %zu, p %.3g)", d.n_run, d.p);
    /* significant but tiny shifts are not reported: min_shift */
    dd_drift_rule loose = rule;
    loose.min_shift = 0.9;
    draw(run, 400, 0.305, 3);
    CHECK(!dd_drift_check(cal, 300, run, 400, thr, &loose, &d, &err) && !d.drift && d.p < 0.01, "min_shift 0.9 holds a small shift back");
    /* nothing comparable */
    CHECK(dd_drift_check(cal, 300, run, 400, 0.1f, &rule, &d, &err) == DD_E_INVALID && strstr(err.msg, "calibration"),
          "a threshold below every calibration score: %s", err.msg);
    float high[3] = {0.9f, 0.95f, 0.99f};
    CHECK(dd_drift_check(cal, 300, high, 3, thr, &rule, &d, &err) == DD_E_INVALID && strstr(err.msg, "this run"),
          "a run with every score over the threshold: %s", err.msg);
    /* quantile: numpy's linear rule */
    const float q[] = {1, 2, 4, 8};
    CHECK(dd_quantile_sorted(q, 4, 0.5) == 3 && dd_quantile_sorted(q, 4, 0.25) == 1.75 && dd_quantile_sorted(q, 4, 1) == 8 &&
              dd_quantile_sorted(q, 1, 0.7) == 1,
          "quantiles as numpy.quantile");
}

static void test_review_band(void) {
    dd_error err = {0};
    float s[100];
    for (int i = 0; i < 100; i++) s[i] = (float)(i + 1); /* 1..100 */
    dd_model_config c;
    memset(&c, 0, sizeof c);
    c.image_threshold = 99; /* the 0.99 quantile (nearest rank) */
    c.review = 0.05f;
    CHECK(!dd_calibrate_review(&c, s, 100, 0.01f, &err), "%s", err.msg);
    /* rank ceil(0.94 * 100) = 94 -> 94; band (94, 104]: 5 of the good scores (95..99) below the threshold */
    CHECK(c.review_lo == 94 && c.review_hi == 104, "band (%g, %g], expected (94, 104]", c.review_lo, c.review_hi);
    c.review = 0;
    CHECK(!dd_calibrate_review(&c, s, 100, 0.01f, &err) && c.review_lo == 0 && c.review_hi == 0, "review 0: no band");
    c.review = 0.5f;
    CHECK(dd_calibrate_review(&c, s, 100, 0.5f, &err) == DD_E_RANGE && strstr(err.msg, "review"), "review + false_reject >= 1: %s",
          err.msg);
}

int main(void) {
    test_kolmogorov();
    test_ks();
    test_calib_text();
    test_drift_rule();
    test_review_band();
    return check_summary("test_drift");
}
