/* metrics_compute.c — turns the accumulator into results: sorts the exact pixel keys, walks every
 * set of images (overall, then each defect type with the good images) from the highest score
 * down through the threshold sweep, and builds the report curves and score histograms. Pixel
 * sweeps see only images with pixel truth (defective images added without a mask store none). */
#include "eval/metrics_internal.h"
#include "eval/metrics_sweep.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double s;
    int label;
} scored;

static int by_score_desc(const void *pa, const void *pb) {
    double a = ((const scored *)pa)->s, b = ((const scored *)pb)->s;
    return (a < b) - (a > b);
}

/* Image-level sweep over the images whose segment is in `in` (in[seg] != 0). */
static int image_metrics(const dd_metrics *a, const unsigned char *in, scored *buf,
                         dd_metrics_set *set, dd_curve_builder *roc) {
    size_t n = 0;
    long P = 0, N = 0;
    for (size_t i = 0; i < a->n_img; i++) {
        if (!in[a->seg_of[i]]) continue;
        buf[n].s = a->score[i];
        buf[n].label = a->label[i];
        P += a->label[i];
        N += !a->label[i];
        n++;
    }
    set->n_good = N;
    set->n_defective = P;
    qsort(buf, n, sizeof *buf, by_score_desc);
    dd_sweep sw;
    dd_sweep_begin(&sw, (double)P, (double)N, 0, 0, roc, NULL);
    for (size_t i = 0; i < n;) {
        double thr = buf[i].s, dtp = 0, dfp = 0;
        for (; i < n && buf[i].s == thr; i++) {
            dtp += buf[i].label;
            dfp += !buf[i].label;
        }
        dd_sweep_group(&sw, thr, dtp, dfp, 0);
    }
    dd_sweep_end(&sw, &set->m[DD_M_IMAGE_AUROC], &set->m[DD_M_IMAGE_AP],
                 &set->m[DD_M_IMAGE_F1MAX], &set->image_f1_threshold, NULL, 0);
    return DD_OK;
}

/* Exact pixel sweep: a k-way merge, from the top, of the sorted key arrays of the segments. */
static int sweep_exact(dd_sweep *sw, dd_px_seg *const *segs, int k) {
    size_t *ni = malloc(sizeof(size_t) * 2 * (size_t)k);
    if (!ni) return DD_E_NOMEM;
    size_t *pi = ni + k; /* remaining entries; the next one is at index remaining − 1 */
    for (int j = 0; j < k; j++) {
        ni[j] = segs[j]->n_neg;
        pi[j] = segs[j]->n_pos;
    }
    for (;;) {
        uint32_t best = 0;
        int any = 0;
        for (int j = 0; j < k; j++) {
            if (ni[j] && (!any || segs[j]->neg[ni[j] - 1] > best)) {
                best = segs[j]->neg[ni[j] - 1];
                any = 1;
            }
            if (pi[j]) {
                uint32_t key = (uint32_t)(segs[j]->pos[pi[j] - 1] >> 32);
                if (!any || key > best) {
                    best = key;
                    any = 1;
                }
            }
        }
        if (!any) break;
        double dtp = 0, dfp = 0, dpro = 0;
        for (int j = 0; j < k; j++) {
            const uint32_t *neg = segs[j]->neg;
            const uint64_t *pos = segs[j]->pos;
            size_t c = ni[j];
            while (c && neg[c - 1] == best) c--;
            dfp += (double)(ni[j] - c);
            ni[j] = c;
            while (pi[j] && (uint32_t)(pos[pi[j] - 1] >> 32) == best) {
                dtp += 1;
                dpro += 1.0 / (double)(uint32_t)pos[pi[j] - 1];
                pi[j]--;
            }
        }
        dd_sweep_group(sw, dd_float_of(best), dtp, dfp, dpro);
    }
    free(ni);
    return DD_OK;
}

static void sweep_hist(dd_sweep *sw, dd_px_seg *const *segs, int k, int B) {
    for (int b = B - 1; b >= 0; b--) {
        double dtp = 0, dfp = 0, dpro = 0;
        for (int j = 0; j < k; j++) {
            dtp += (double)segs[j]->hpos[b];
            dfp += (double)segs[j]->hneg[b];
            dpro += segs[j]->hpro[b];
        }
        if (dtp > 0 || dfp > 0) dd_sweep_group(sw, (double)b / B, dtp, dfp, dpro);
    }
}

static int pixel_metrics(const dd_metrics *a, dd_px_seg *const *segs, int k, dd_metrics_set *set,
                         dd_curve_builder *roc, dd_curve_builder *pro) {
    long long P = 0, N = 0;
    long R = 0;
    for (int j = 0; j < k; j++) {
        P += segs[j]->tot_pos;
        N += segs[j]->tot_neg;
        R += segs[j]->n_regions;
    }
    set->n_pixels = P + N;
    set->n_defect_pixels = P;
    set->n_regions = R;
    /* Images without maps say nothing of pixels; nor do defective images without masks (they
     * are left out, so a set whose defective images all lack one has no pixel truth to test). */
    const char *why = a->has_maps == 0 ? "no anomaly maps given"
                      : set->n_defective > 0 && set->n_defective_masked == 0
                          ? "no defective image has a ground-truth mask"
                      : a->has_maps != 1 ? "no anomaly maps given"
                                         : NULL;
    if (why) {
        for (int m = DD_M_PIXEL_AUROC; m <= DD_M_AUPRO; m++) {
            set->m[m].defined = 0;
            set->m[m].value = 0;
            set->m[m].bound = 0;
            set->m[m].why = why;
        }
        set->pixel_f1_threshold = NAN;
        return DD_OK;
    }
    int binned = a->mode == DD_PIXEL_HISTOGRAM;
    dd_sweep sw;
    dd_sweep_begin(&sw, (double)P, (double)N, (double)R, binned, roc, pro);
    if (binned) sweep_hist(&sw, segs, k, a->p.hist_bins);
    else if (sweep_exact(&sw, segs, k)) return DD_E_NOMEM;
    dd_sweep_end(&sw, &set->m[DD_M_PIXEL_AUROC], &set->m[DD_M_PIXEL_AP],
                 &set->m[DD_M_PIXEL_F1MAX], &set->pixel_f1_threshold, &set->m[DD_M_AUPRO], 1);
    return DD_OK;
}

static int sort_segments(dd_metrics *a, dd_error *err) {
    if (a->mode != DD_PIXEL_EXACT) return DD_OK;
    size_t big = 0;
    for (int i = 0; i < a->n_seg; i++) {
        size_t bn = a->seg[i].n_neg * sizeof(uint32_t), bp = a->seg[i].n_pos * sizeof(uint64_t);
        if (!a->seg[i].sorted && bn > big) big = bn;
        if (!a->seg[i].sorted && bp > big) big = bp;
    }
    if (big == 0) return DD_OK;
    void *tmp = malloc(big);
    if (!tmp) return dd_fail(err, DD_E_NOMEM, "metrics: out of memory sorting %zu bytes", big);
    for (int i = 0; i < a->n_seg; i++) {
        dd_px_seg *s = &a->seg[i];
        if (s->sorted) continue;
        dd_radix_sort_u32(s->neg, tmp, s->n_neg);
        dd_radix_sort_u64_hi(s->pos, tmp, s->n_pos);
        s->sorted = 1;
    }
    free(tmp);
    return DD_OK;
}

void dd_metrics_result_free(dd_metrics_result *r) {
    if (!r) return;
    for (int i = 0; i < r->n_sets; i++) free(r->sets[i].name);
    free(r->sets);
    dd_curve_free(&r->image_roc);
    dd_curve_free(&r->pixel_roc);
    dd_curve_free(&r->pro);
    free(r->score_hist_good);
    free(r->score_hist_defective);
    free(r);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Insertion sort of segment indices by name: few types, and qsort has no context argument. */
static void sort_by_name(const dd_metrics *a, int *idx, int n) {
    for (int i = 1; i < n; i++) {
        int v = idx[i], j = i;
        for (; j > 0 && strcmp(a->seg[idx[j - 1]].name, a->seg[v].name) > 0; j--) idx[j] = idx[j - 1];
        idx[j] = v;
    }
}

static void score_histograms(const dd_metrics *a, dd_metrics_result *r, double thr_hint) {
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < a->n_img; i++) {
        if (a->score[i] < lo) lo = a->score[i];
        if (a->score[i] > hi) hi = a->score[i];
    }
    if (isfinite(thr_hint)) {
        if (thr_hint < lo) lo = thr_hint;
        if (thr_hint > hi) hi = thr_hint;
    }
    if (!(lo < hi)) {
        lo = (a->n_img ? lo : 0) - 0.5;
        hi = lo + 1;
    }
    double pad = 0.02 * (hi - lo);
    r->score_lo = lo - pad;
    r->score_hi = hi + pad;
    int nb = r->score_bins;
    for (size_t i = 0; i < a->n_img; i++) {
        int b = (int)((a->score[i] - r->score_lo) / (r->score_hi - r->score_lo) * nb);
        b = b < 0 ? 0 : b >= nb ? nb - 1 : b;
        (a->label[i] ? r->score_hist_defective : r->score_hist_good)[b]++;
    }
}

int dd_metrics_compute(dd_metrics *a, dd_metrics_result **out, dd_error *err) {
    if (!a || !out) return dd_fail(err, DD_E_INVALID, "metrics: no accumulator or output");
    *out = NULL;
    int rc = sort_segments(a, err);
    if (rc) return rc;
    dd_metrics_result *r = calloc(1, sizeof *r);
    if (!r) return dd_fail(err, DD_E_NOMEM, "metrics: out of memory");
    r->pixel_mode = dd_metrics_pixel_mode(a);
    r->hist_bins = a->p.hist_bins;
    r->score_bins = a->p.score_bins;
    int good = -1, ntypes = 0;
    for (int i = 0; i < a->n_seg; i++) {
        if (strcmp(a->seg[i].name, "good") == 0) good = i;
        else ntypes++;
    }
    int nsets = 1 + ntypes, k = a->n_seg;
    int *order = malloc(sizeof(int) * (size_t)(k + 1));
    unsigned char *in = calloc((size_t)(nsets) * (size_t)(k + 1), 1);
    dd_px_seg **segs = malloc(sizeof(dd_px_seg *) * (size_t)nsets * (size_t)(k + 1));
    int *nseg = malloc(sizeof(int) * (size_t)nsets);
    scored *buf = malloc(sizeof(scored) * (a->n_img + 1));
    r->sets = calloc((size_t)nsets, sizeof *r->sets);
    r->score_hist_good = calloc((size_t)r->score_bins, sizeof(long));
    r->score_hist_defective = calloc((size_t)r->score_bins, sizeof(long));
    rc = DD_E_NOMEM;
    if (!order || !in || !segs || !nseg || !buf || !r->sets || !r->score_hist_good ||
        !r->score_hist_defective)
        goto done;
    r->n_sets = nsets;
    /* Sets: 0 = overall (every segment), then each defect type (its segment and the good one),
     * types in name order so that outputs do not depend on the order images came in. */
    int nt = 0;
    for (int i = 0; i < k; i++)
        if (i != good) order[nt++] = i;
    sort_by_name(a, order, nt);
    for (int s = 0; s < nsets; s++) {
        unsigned char *ins = in + (size_t)s * (size_t)(k + 1);
        dd_px_seg **ss = segs + (size_t)s * (size_t)(k + 1);
        nseg[s] = 0;
        for (int i = 0; i < k; i++) {
            if (s == 0 || i == good || i == order[s - 1]) {
                ins[i] = 1;
                ss[nseg[s]++] = &a->seg[i];
                if (i != good) r->sets[s].n_defective_masked += a->seg[i].n_images - a->seg[i].n_unmasked;
            }
        }
        if (!(r->sets[s].name = dup_str(s == 0 ? "overall" : a->seg[order[s - 1]].name))) goto done;
    }
    dd_curve_builder broc, bproc, bpro;
    int cp = a->p.curve_points;
    if (dd_curve_builder_init(&broc, &r->image_roc, cp, 1, 1) ||
        dd_curve_builder_init(&bproc, &r->pixel_roc, cp, 1, 1) ||
        dd_curve_builder_init(&bpro, &r->pro, cp, DD_AUPRO_FPR_LIMIT, 1))
        goto done;
    for (int s = 0; s < nsets; s++)
        image_metrics(a, in + (size_t)s * (size_t)(k + 1), buf, &r->sets[s], s ? NULL : &broc);
    /* Pixel sweeps are independent and read-only over the sorted keys: one set per thread. */
    int fail = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : fail)
    for (int s = 0; s < nsets; s++)
        fail |= pixel_metrics(a, segs + (size_t)s * (size_t)(k + 1), nseg[s], &r->sets[s],
                              s ? NULL : &bproc, s ? NULL : &bpro) != DD_OK;
    if (fail) goto done;
    /* Curves of undefined metrics are dropped rather than drawn half-way. */
    if (!r->sets[0].m[DD_M_IMAGE_AUROC].defined) r->image_roc.n = 0;
    if (!r->sets[0].m[DD_M_PIXEL_AUROC].defined) r->pixel_roc.n = 0;
    if (!r->sets[0].m[DD_M_AUPRO].defined) r->pro.n = 0;
    score_histograms(a, r, r->sets[0].m[DD_M_IMAGE_F1MAX].defined ? r->sets[0].image_f1_threshold
                                                                   : NAN);
    rc = DD_OK;
done:
    free(order);
    free(in);
    free(segs);
    free(nseg);
    free(buf);
    if (rc) {
        dd_metrics_result_free(r);
        return dd_fail(err, rc, "metrics: out of memory computing the metrics");
    }
    *out = r;
    return DD_OK;
}
