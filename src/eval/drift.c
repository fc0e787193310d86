/* drift.c — calibration score distribution, two-sample KS test, drift rule (see drift.h). */
#include "eval/drift.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"

double dd_kolmogorov_sf(double lambda) {
    if (!(lambda > 0)) return 1.0;
    if (lambda < 1.18) {
        /* the alternating series converges slowly here; the theta-function form
         * P(K <= l) = sqrt(2 pi) / l * sum_{k>=1} exp(-(2k-1)^2 pi^2 / (8 l^2)) converges fast */
        const double pi = 3.14159265358979323846;
        double s = 0, w = -pi * pi / (8.0 * lambda * lambda);
        for (int k = 1; k <= 20; k++) {
            double t = exp((2.0 * k - 1) * (2.0 * k - 1) * w);
            s += t;
            if (t < 1e-17 * s) break;
        }
        double cdf = sqrt(2.0 * pi) / lambda * s;
        return cdf >= 1 ? 0.0 : 1.0 - cdf;
    }
    double s = 0, sign = 1, w = -2.0 * lambda * lambda;
    for (int k = 1; k <= 100; k++, sign = -sign) {
        double t = exp(w * k * k);
        s += sign * t;
        if (t < 1e-17 * fabs(s)) break;
    }
    s *= 2;
    return s < 0 ? 0 : s > 1 ? 1 : s;
}

static int check_sorted(const float *v, size_t n, const char *which, dd_error *err) {
    if (!n) return dd_fail(err, DD_E_INVALID, "KS test: the %s sample is empty", which);
    for (size_t i = 0; i < n; i++) {
        if (isnan(v[i])) return dd_fail(err, DD_E_INVALID, "KS test: the %s sample holds NaN (value %zu)", which, i);
        if (i && v[i] < v[i - 1]) return dd_fail(err, DD_E_INVALID, "KS test: the %s sample is not sorted (value %zu)", which, i);
    }
    return DD_OK;
}

int dd_ks_two_sample(const float *a, size_t na, const float *b, size_t nb, double *D, double *p, dd_error *err) {
    int rc = check_sorted(a, na, "first", err);
    if (!rc) rc = check_sorted(b, nb, "second", err);
    if (rc) return rc;
    /* walk the distinct values of both samples in order; after passing every value <= v the
     * empirical CDFs are i/na and j/nb (scipy's searchsorted side='right') */
    size_t i = 0, j = 0;
    double d = 0;
    while (i < na || j < nb) {
        float v = i < na && (j >= nb || a[i] <= b[j]) ? a[i] : b[j];
        while (i < na && a[i] <= v) i++;
        while (j < nb && b[j] <= v) j++;
        double diff = fabs((double)i / na - (double)j / nb);
        if (diff > d) d = diff;
    }
    double ne = (double)na * nb / ((double)na + nb), sq = sqrt(ne);
    *D = d;
    *p = dd_kolmogorov_sf((sq + 0.12 + 0.11 / sq) * d);
    return DD_OK;
}

int dd_calib_scores_format(const float *sorted, size_t n, char **text, dd_error *err) {
    *text = NULL;
    if (!n) return dd_fail(err, DD_E_INVALID, "calibration scores: none");
    size_t keep = n < DD_CALIB_SCORES_MAX ? n : DD_CALIB_SCORES_MAX;
    dd_textbuf b;
    dd_textbuf_init(&b);
    dd_textbuf_printf(&b, "%zu:", n);
    for (size_t k = 0; k < keep; k++) {
        /* evenly spaced order statistics, first and last included */
        size_t i = keep == n ? k : (size_t)llround((double)k * (double)(n - 1) / (double)(keep - 1));
        dd_textbuf_printf(&b, "%s%.9g", k ? "," : "", sorted[i]);
    }
    if (b.oom) {
        dd_textbuf_free(&b);
        return dd_fail(err, DD_E_NOMEM, "calibration scores: out of memory");
    }
    *text = b.s;
    return DD_OK;
}

int dd_calib_scores_parse(const char *text, float **values, size_t *count, size_t *n_images, dd_error *err) {
    *values = NULL, *count = 0, *n_images = 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    if (!isdigit((unsigned char)text[0]) || *end != ':' || errno || !n)
        return dd_fail(err, DD_E_FORMAT, "%s: expected \"<images>:<v1>,<v2>,...\"", DD_CALIB_SCORES_KEY);
    size_t cap = 1;
    for (const char *s = end + 1; *s; s++) cap += *s == ',';
    if (cap > DD_CALIB_SCORES_MAX || cap > n)
        return dd_fail(err, DD_E_FORMAT, "%s: %zu values for %llu images (at most %d and at most the images)",
                       DD_CALIB_SCORES_KEY, cap, n, DD_CALIB_SCORES_MAX);
    float *v = malloc(cap * sizeof *v);
    if (!v) return dd_fail(err, DD_E_NOMEM, "%s: out of memory", DD_CALIB_SCORES_KEY);
    const char *s = end + 1;
    for (size_t k = 0; k < cap; k++) {
        errno = 0;
        float x = strtof(s, &end);
        if (end == s || errno || !isfinite(x) || (*end != ',' && *end) || (k && x < v[k - 1])) {
            free(v);
            return dd_fail(err, DD_E_FORMAT, "%s: value %zu is not a finite number in ascending order", DD_CALIB_SCORES_KEY,
                           k + 1);
        }
        v[k] = x;
        s = end + (*end == ',');
    }
    *values = v, *count = cap, *n_images = (size_t)n;
    return DD_OK;
}

void dd_drift_rule_init(dd_drift_rule *r) {
    r->alpha = 0.01;
    r->min_shift = 0.1;
}

double dd_quantile_sorted(const float *v, size_t n, double q) {
    if (n == 1 || q <= 0) return v[0];
    if (q >= 1) return v[n - 1];
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    double f = pos - (double)i;
    return i + 1 < n ? v[i] + f * ((double)v[i + 1] - v[i]) : v[i];
}

/* Count of sorted values at or below thr. */
static size_t upto(const float *v, size_t n, float thr) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] <= thr) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

int dd_drift_check(const float *calib_sorted, size_t n_calib, const float *run_sorted, size_t n_run, float threshold,
                   const dd_drift_rule *rule, dd_drift_result *out, dd_error *err) {
    memset(out, 0, sizeof *out);
    size_t nr = upto(calib_sorted, n_calib, threshold), nn = upto(run_sorted, n_run, threshold);
    if (!nr) return dd_fail(err, DD_E_INVALID, "drift: no calibration score at or below the threshold %g", threshold);
    if (!nn) return dd_fail(err, DD_E_INVALID, "drift: no score of this run at or below the threshold %g", threshold);
    int rc = dd_ks_two_sample(calib_sorted, nr, run_sorted, nn, &out->D, &out->p, err);
    if (rc) return rc;
    out->n_ref = nr, out->n_run = nn;
    out->median_ref = dd_quantile_sorted(calib_sorted, nr, 0.5);
    out->median_run = dd_quantile_sorted(run_sorted, nn, 0.5);
    double gap = threshold - out->median_ref;
    if (!(gap > 0)) return dd_fail(err, DD_E_INVALID, "drift: the threshold %g is not above the calibration median %g", threshold, out->median_ref);
    out->shift = (out->median_run - out->median_ref) / gap;
    out->drift = out->p < rule->alpha && fabs(out->shift) >= rule->min_shift;
    return DD_OK;
}
