/* metrics_acc.c — the metrics accumulator: takes test images one by one, keeps image scores and
 * pixel data compactly, and switches from exact to histogram storage when the budget is reached
 * (see metrics.h for the modes and metrics_internal.h for the layout). */
#include "eval/metrics_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIDE 65536
#define MAX_PIXELS (1L << 30) /* region labels are int32 pixel indices */

void dd_metrics_params_init(dd_metrics_params *p) {
    p->max_pixel_bytes = (size_t)512 << 20;
    p->hist_bins = 65536;
    p->curve_points = 256;
    p->score_bins = 40;
}

int dd_metrics_new(const dd_metrics_params *p, dd_metrics **out, dd_error *err) {
    dd_metrics_params d;
    if (!out) return dd_fail(err, DD_E_INVALID, "metrics: no output pointer");
    *out = NULL;
    if (!p) {
        dd_metrics_params_init(&d);
        p = &d;
    }
    if (p->hist_bins < 256 || p->hist_bins > (1 << 24))
        return dd_fail(err, DD_E_RANGE, "metrics: hist_bins %d outside 256..16777216", p->hist_bins);
    if (p->curve_points < 8 || p->curve_points > 100000)
        return dd_fail(err, DD_E_RANGE, "metrics: curve_points %d outside 8..100000",
                       p->curve_points);
    if (p->score_bins < 2 || p->score_bins > 10000)
        return dd_fail(err, DD_E_RANGE, "metrics: score_bins %d outside 2..10000", p->score_bins);
    dd_metrics *a = calloc(1, sizeof *a);
    if (!a) return dd_fail(err, DD_E_NOMEM, "metrics: out of memory");
    a->p = *p;
    a->mode = p->max_pixel_bytes == 0 ? DD_PIXEL_HISTOGRAM : DD_PIXEL_EXACT;
    a->has_maps = -1;
    *out = a;
    return DD_OK;
}

static void seg_free_exact(dd_px_seg *s) {
    free(s->neg);
    free(s->pos);
    s->neg = NULL;
    s->pos = NULL;
    s->n_neg = s->cap_neg = s->n_pos = s->cap_pos = 0;
}

void dd_metrics_free(dd_metrics *a) {
    if (!a) return;
    for (int i = 0; i < a->n_seg; i++) {
        dd_px_seg *s = &a->seg[i];
        free(s->name);
        seg_free_exact(s);
        free(s->hneg);
        free(s->hpos);
        free(s->hpro);
    }
    free(a->seg);
    free(a->score);
    free(a->label);
    free(a->seg_of);
    free(a->cc_parent);
    free(a->cc_size);
    free(a);
}

int dd_metrics_pixel_mode(const dd_metrics *a) {
    return a->has_maps == 1 ? a->mode : DD_PIXEL_NONE;
}

size_t dd_metrics_pixel_bytes(const dd_metrics *a) {
    size_t b = 0;
    for (int i = 0; i < a->n_seg; i++) {
        const dd_px_seg *s = &a->seg[i];
        b += s->cap_neg * sizeof *s->neg + s->cap_pos * sizeof *s->pos;
        if (s->hneg) b += (size_t)a->p.hist_bins * (2 * sizeof(uint64_t) + sizeof(double));
    }
    return b;
}

static int seg_alloc_hist(dd_metrics *a, dd_px_seg *s) {
    size_t B = (size_t)a->p.hist_bins;
    s->hneg = calloc(B, sizeof *s->hneg);
    s->hpos = calloc(B, sizeof *s->hpos);
    s->hpro = calloc(B, sizeof *s->hpro);
    return s->hneg && s->hpos && s->hpro;
}

/* Index of the segment for a defect type (0 = good), created on first use. */
static int find_seg(dd_metrics *a, const char *name, dd_error *err) {
    for (int i = 0; i < a->n_seg; i++)
        if (strcmp(a->seg[i].name, name) == 0) return i;
    if (a->n_seg == a->cap_seg) {
        int cap = a->cap_seg ? 2 * a->cap_seg : 8;
        dd_px_seg *s = realloc(a->seg, sizeof *s * (size_t)cap);
        if (!s) return -dd_fail(err, DD_E_NOMEM, "metrics: out of memory (defect types)");
        a->seg = s;
        a->cap_seg = cap;
    }
    dd_px_seg *s = &a->seg[a->n_seg];
    memset(s, 0, sizeof *s);
    size_t len = strlen(name);
    s->name = malloc(len + 1);
    if (!s->name) return -dd_fail(err, DD_E_NOMEM, "metrics: out of memory (defect types)");
    memcpy(s->name, name, len + 1);
    if (a->mode == DD_PIXEL_HISTOGRAM && a->has_maps == 1 && !seg_alloc_hist(a, s)) {
        free(s->name);
        free(s->hneg);
        free(s->hpos);
        free(s->hpro);
        return -dd_fail(err, DD_E_NOMEM, "metrics: out of memory (histogram for type '%s')", name);
    }
    return a->n_seg++;
}

/* Move every stored pixel into histograms and keep binning from now on. */
static int to_histogram(dd_metrics *a, dd_error *err) {
    int B = a->p.hist_bins;
    for (int i = 0; i < a->n_seg; i++) {
        dd_px_seg *s = &a->seg[i];
        if (!s->hneg && !seg_alloc_hist(a, s))
            return dd_fail(err, DD_E_NOMEM, "metrics: out of memory switching to histogram mode "
                                            "(%d bins for type '%s')", B, s->name);
    }
    for (int i = 0; i < a->n_seg; i++) {
        dd_px_seg *s = &a->seg[i];
        for (size_t j = 0; j < s->n_neg; j++) s->hneg[dd_bin_of(s->neg[j], B)]++;
        for (size_t j = 0; j < s->n_pos; j++) {
            int b = dd_bin_of((uint32_t)(s->pos[j] >> 32), B);
            s->hpos[b]++;
            s->hpro[b] += 1.0 / (double)(uint32_t)s->pos[j];
        }
        seg_free_exact(s);
    }
    a->mode = DD_PIXEL_HISTOGRAM;
    return DD_OK;
}

static size_t grow_cap(size_t cap, size_t need) {
    size_t c = cap ? cap : 65536;
    while (c < need) c += c / 2;
    return c;
}

/* Bytes exact mode would hold after making room for n_neg / n_pos more pixels in segment t,
 * plus the sort temporary for the largest array. */
static size_t exact_need(const dd_metrics *a, int t, size_t add_neg, size_t add_pos) {
    size_t tot = 0, big = 0;
    for (int i = 0; i < a->n_seg; i++) {
        const dd_px_seg *s = &a->seg[i];
        size_t cn = s->cap_neg, cp = s->cap_pos;
        if (i == t && s->n_neg + add_neg > cn) cn = grow_cap(cn, s->n_neg + add_neg);
        if (i == t && s->n_pos + add_pos > cp) cp = grow_cap(cp, s->n_pos + add_pos);
        tot += cn * sizeof(uint32_t) + cp * sizeof(uint64_t);
        size_t bn = (i == t ? s->n_neg + add_neg : s->n_neg) * sizeof(uint32_t);
        size_t bp = (i == t ? s->n_pos + add_pos : s->n_pos) * sizeof(uint64_t);
        if (bn > big) big = bn;
        if (bp > big) big = bp;
    }
    return tot + big;
}

static int reserve_exact(dd_px_seg *s, size_t add_neg, size_t add_pos, dd_error *err) {
    if (s->n_neg + add_neg > s->cap_neg) {
        size_t c = grow_cap(s->cap_neg, s->n_neg + add_neg);
        uint32_t *p = realloc(s->neg, c * sizeof *p);
        if (!p) return dd_fail(err, DD_E_NOMEM, "metrics: out of memory (%zu pixel values)", c);
        s->neg = p;
        s->cap_neg = c;
    }
    if (s->n_pos + add_pos > s->cap_pos) {
        size_t c = grow_cap(s->cap_pos, s->n_pos + add_pos);
        uint64_t *p = realloc(s->pos, c * sizeof *p);
        if (!p) return dd_fail(err, DD_E_NOMEM, "metrics: out of memory (%zu pixel values)", c);
        s->pos = p;
        s->cap_pos = c;
    }
    return DD_OK;
}

static int grow_images(dd_metrics *a, dd_error *err) {
    if (a->n_img < a->cap_img) return DD_OK;
    size_t cap = a->cap_img ? 2 * a->cap_img : 256;
    double *sc = realloc(a->score, cap * sizeof *sc);
    if (sc) a->score = sc;
    unsigned char *lb = realloc(a->label, cap * sizeof *lb);
    if (lb) a->label = lb;
    int *so = realloc(a->seg_of, cap * sizeof *so);
    if (so) a->seg_of = so;
    if (!sc || !lb || !so) return dd_fail(err, DD_E_NOMEM, "metrics: out of memory (images)");
    a->cap_img = cap;
    return DD_OK;
}

/* The checks every added image passes; returns its defect type ("good" for label 0). */
static int check_image(const dd_metrics *a, double score, int label, const char *defect_type,
                       const char **type, dd_error *err) {
    long idx = (long)a->n_img;
    if (!isfinite(score))
        return dd_fail(err, DD_E_INVALID, "metrics: image %ld: score is not finite", idx);
    if (label != 0 && label != 1)
        return dd_fail(err, DD_E_INVALID, "metrics: image %ld: label %d is not 0 or 1", idx, label);
    *type = label ? (defect_type && *defect_type ? defect_type : "defect") : "good";
    if (label && strcmp(*type, "good") == 0)
        return dd_fail(err, DD_E_INVALID,
                       "metrics: image %ld: defective image with defect type 'good'", idx);
    return DD_OK;
}

static void record_image(dd_metrics *a, double score, int label, int t) {
    a->seg[t].n_images++;
    a->score[a->n_img] = score;
    a->label[a->n_img] = (unsigned char)label;
    a->seg_of[a->n_img] = t;
    a->n_img++;
}

int dd_metrics_add_image_unmasked(dd_metrics *a, double score, const char *defect_type,
                                  dd_error *err) {
    if (!a) return dd_fail(err, DD_E_INVALID, "metrics: no accumulator");
    const char *type = NULL;
    int rc = check_image(a, score, 1, defect_type, &type, err);
    if (rc || (rc = grow_images(a, err))) return rc;
    int t = find_seg(a, type, err);
    if (t < 0) return -t;
    a->seg[t].n_unmasked++;
    record_image(a, score, 1, t);
    return DD_OK;
}

int dd_metrics_add_image(dd_metrics *a, double score, int label, const char *defect_type,
                         const float *map, const float *mask, int H, int W, dd_error *err) {
    if (!a) return dd_fail(err, DD_E_INVALID, "metrics: no accumulator");
    long idx = (long)a->n_img;
    const char *type = NULL;
    int rc = check_image(a, score, label, defect_type, &type, err);
    if (rc) return rc;
    int with_map = map != NULL;
    if (a->has_maps >= 0 && a->has_maps != with_map)
        return dd_fail(err, DD_E_INVALID,
                       "metrics: image %ld %s an anomaly map but earlier images %s: give maps for "
                       "all images or for none", idx, with_map ? "has" : "has no",
                       a->has_maps ? "had" : "had none");
    long n = 0;
    if (with_map || mask) {
        if (H <= 0 || W <= 0 || H > MAX_SIDE || W > MAX_SIDE || (long)H * W > MAX_PIXELS)
            return dd_fail(err, DD_E_RANGE, "metrics: image %ld: map size %dx%d out of range",
                           idx, H, W);
        n = (long)H * W;
    }
    if (with_map) {
        for (long i = 0; i < n; i++)
            if (isnan(map[i]))
                return dd_fail(err, DD_E_INVALID, "metrics: image %ld: anomaly map has NaN at "
                                                  "pixel (%ld, %ld)", idx, i / W, i % W);
    }
    /* Labelling first: it validates the mask against the label before anything is stored. */
    long regions = 0, n_pos = 0;
    if (mask && (with_map || !label)) {
        if ((size_t)n > a->cc_cap) {
            int32_t *p = realloc(a->cc_parent, (size_t)n * sizeof *p);
            if (p) a->cc_parent = p;
            uint32_t *s = realloc(a->cc_size, (size_t)n * sizeof *s);
            if (s) a->cc_size = s;
            if (!p || !s) return dd_fail(err, DD_E_NOMEM, "metrics: out of memory (labelling)");
            a->cc_cap = (size_t)n;
        }
        regions = dd_label_regions(mask, H, W, a->cc_parent, a->cc_size);
        for (long i = 0; i < n; i++) n_pos += a->cc_parent[i] >= 0;
        if (!label && n_pos > 0)
            return dd_fail(err, DD_E_INVALID, "metrics: image %ld is labelled good but its mask "
                                              "has %ld defect pixels", idx, n_pos);
    }
    if ((rc = grow_images(a, err))) return rc;
    int t = find_seg(a, type, err);
    if (t < 0) return -t;
    a->has_maps = with_map;
    if (with_map) {
        dd_px_seg *s = &a->seg[t];
        size_t add_neg = (size_t)(n - n_pos), add_pos = (size_t)n_pos;
        if (a->mode == DD_PIXEL_EXACT && exact_need(a, t, add_neg, add_pos) > a->p.max_pixel_bytes)
            if ((rc = to_histogram(a, err))) return rc;
        if (a->mode == DD_PIXEL_HISTOGRAM && !s->hneg && !seg_alloc_hist(a, s))
            return dd_fail(err, DD_E_NOMEM, "metrics: out of memory (histogram for type '%s')",
                           type);
        if (a->mode == DD_PIXEL_EXACT) {
            if ((rc = reserve_exact(s, add_neg, add_pos, err))) return rc;
            for (long i = 0; i < n; i++) {
                uint32_t k = dd_key_of(map[i]);
                if (n_pos && a->cc_parent[i] >= 0)
                    s->pos[s->n_pos++] = (uint64_t)k << 32 | a->cc_size[a->cc_parent[i]];
                else
                    s->neg[s->n_neg++] = k;
            }
            s->sorted = 0;
        } else {
            int B = a->p.hist_bins;
            for (long i = 0; i < n; i++) {
                int b = dd_bin_of(dd_key_of(map[i]), B);
                if (n_pos && a->cc_parent[i] >= 0) {
                    s->hpos[b]++;
                    s->hpro[b] += 1.0 / (double)a->cc_size[a->cc_parent[i]];
                } else {
                    s->hneg[b]++;
                }
            }
        }
        s->tot_neg += (long long)add_neg;
        s->tot_pos += n_pos;
        s->n_regions += regions;
    }
    record_image(a, score, label, t);
    return DD_OK;
}
