/* metrics_write.c — metrics.json, metrics.csv and the Markdown table (see metrics.h). */
#include "eval/metrics.h"
#include "core/text.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *keys[DD_M_COUNT] = {"image_auroc", "image_ap",    "image_f1max", "pixel_auroc",
                                       "pixel_ap",    "pixel_f1max", "aupro"};
static const char *labels[DD_M_COUNT] = {"image AUROC", "image AP",    "image F1-max",
                                         "pixel AUROC", "pixel AP",    "pixel F1-max", "AUPRO"};

const char *dd_metric_key(int w) { return w >= 0 && w < DD_M_COUNT ? keys[w] : "?"; }
const char *dd_metric_label(int w) { return w >= 0 && w < DD_M_COUNT ? labels[w] : "?"; }

const char *dd_pixel_mode_name(int mode) {
    return mode == DD_PIXEL_EXACT ? "exact" : mode == DD_PIXEL_HISTOGRAM ? "histogram" : "none";
}

/* One sentence on how exact the pixel metrics are, used by every writer. */
static void mode_note(dd_textbuf *b, const dd_metrics_result *r) {
    if (r->pixel_mode == DD_PIXEL_EXACT)
        dd_textbuf_puts(b, "pixel metrics exact for the float32 anomaly maps (every distinct value "
                           "is a threshold)");
    else if (r->pixel_mode == DD_PIXEL_HISTOGRAM)
        dd_textbuf_printf(b, "pixel metrics from a histogram of %d bins over [0,1] (bin width %.3g): "
                             "each value carries a bound on its error from binning",
                          r->hist_bins, 1.0 / r->hist_bins);
    else
        dd_textbuf_puts(b, "no anomaly maps: pixel metrics undefined");
}

static const char *images(long n) { return n == 1 ? "image" : "images"; }

int dd_metrics_truth_note(const dd_metrics_set *s, char *buf, size_t cap) {
    long nd = s->n_defective, nm = s->n_defective_masked, nu = nd - nm;
    if (!buf || cap == 0) return nu > 0;
    if (nu <= 0) {
        if (nd == 0)
            snprintf(buf, cap, "pixel metrics over the %ld good %s (no defective images)", s->n_good,
                     images(s->n_good));
        else
            snprintf(buf, cap, "pixel metrics over all %ld good and %ld defective %s", s->n_good, nd,
                     images(nd));
        return 0;
    }
    if (nm == 0)
        snprintf(buf, cap, "pixel metrics undefined: none of the %ld defective %s has a mask "
                           "(the image metrics count every image)", nd, images(nd));
    else
        snprintf(buf, cap, "pixel metrics over %ld of %ld defective %s (%ld %s no mask) and the %ld "
                           "good %s; images without a mask count in the image metrics only",
                 nm, nd, images(nd), nu, nu == 1 ? "has" : "have", s->n_good, images(s->n_good));
    return 1;
}

/* Largest error bound over the pixel metrics of all sets. */
static double max_bound(const dd_metrics_result *r) {
    double m = 0;
    for (int s = 0; s < r->n_sets; s++)
        for (int k = 0; k < DD_M_COUNT; k++)
            if (r->sets[s].m[k].defined && r->sets[s].m[k].bound > m) m = r->sets[s].m[k].bound;
    return m;
}

static void json_num(dd_textbuf *b, double v) {
    if (isfinite(v)) dd_textbuf_printf(b, "%.10g", v);
    else dd_textbuf_puts(b, "null");
}

static void json_curve(dd_textbuf *b, const char *name, const dd_curve *c, int last) {
    dd_textbuf_printf(b, "    \"%s\": {\"x\": [", name);
    for (int i = 0; i < c->n; i++) dd_textbuf_printf(b, "%s%.6g", i ? ", " : "", c->x[i]);
    dd_textbuf_puts(b, "], \"y\": [");
    for (int i = 0; i < c->n; i++) dd_textbuf_printf(b, "%s%.6g", i ? ", " : "", c->y[i]);
    dd_textbuf_printf(b, "]}%s\n", last ? "" : ",");
}

int dd_metrics_write_json(const dd_metrics_result *r, const char *path, dd_error *err) {
    if (!r || !path) return dd_fail(err, DD_E_INVALID, "metrics json: no result or path");
    dd_textbuf b;
    dd_textbuf_init(&b);
    dd_textbuf_printf(&b, "{\n  \"pixel_mode\": \"%s\",\n  \"pixel_mode_note\": \"",
                      dd_pixel_mode_name(r->pixel_mode));
    mode_note(&b, r);
    dd_textbuf_puts(&b, "\",\n");
    if (r->n_sets > 0) {
        char note[300];
        dd_metrics_truth_note(&r->sets[0], note, sizeof note);
        dd_textbuf_puts(&b, "  \"pixel_truth_note\": ");
        dd_textbuf_json_string(&b, note);
        dd_textbuf_puts(&b, ",\n");
    }
    if (r->pixel_mode == DD_PIXEL_HISTOGRAM)
        dd_textbuf_printf(&b, "  \"hist_bins\": %d,\n", r->hist_bins);
    dd_textbuf_printf(&b, "  \"aupro_fpr_limit\": %g,\n  \"sets\": [\n", DD_AUPRO_FPR_LIMIT);
    for (int s = 0; s < r->n_sets; s++) {
        const dd_metrics_set *st = &r->sets[s];
        dd_textbuf_puts(&b, "    {\"name\": ");
        dd_textbuf_json_string(&b, st->name);
        dd_textbuf_printf(&b, ", \"n_good\": %ld, \"n_defective\": %ld, \"n_defective_masked\": %ld, "
                              "\"n_pixels\": %lld, \"n_defect_pixels\": %lld, \"n_regions\": %ld,\n",
                          st->n_good, st->n_defective, st->n_defective_masked, st->n_pixels,
                          st->n_defect_pixels, st->n_regions);
        dd_textbuf_puts(&b, "     \"image_f1_threshold\": ");
        json_num(&b, st->m[DD_M_IMAGE_F1MAX].defined ? st->image_f1_threshold : NAN);
        dd_textbuf_puts(&b, ", \"pixel_f1_threshold\": ");
        json_num(&b, st->m[DD_M_PIXEL_F1MAX].defined ? st->pixel_f1_threshold : NAN);
        dd_textbuf_puts(&b, ",\n     \"metrics\": {\n");
        for (int k = 0; k < DD_M_COUNT; k++) {
            const dd_metric *m = &st->m[k];
            dd_textbuf_printf(&b, "       \"%s\": {\"value\": ", keys[k]);
            if (m->defined) {
                json_num(&b, m->value);
                dd_textbuf_puts(&b, ", \"bound\": ");
                json_num(&b, m->bound);
            } else {
                dd_textbuf_puts(&b, "null, \"undefined\": ");
                dd_textbuf_json_string(&b, m->why ? m->why : "undefined");
            }
            dd_textbuf_printf(&b, "}%s\n", k + 1 < DD_M_COUNT ? "," : "");
        }
        dd_textbuf_printf(&b, "     }}%s\n", s + 1 < r->n_sets ? "," : "");
    }
    dd_textbuf_puts(&b, "  ],\n  \"curves\": {\n");
    json_curve(&b, "image_roc", &r->image_roc, 0);
    json_curve(&b, "pixel_roc", &r->pixel_roc, 0);
    json_curve(&b, "pro", &r->pro, 1);
    dd_textbuf_puts(&b, "  },\n  \"score_histogram\": {\"lo\": ");
    json_num(&b, r->score_lo);
    dd_textbuf_puts(&b, ", \"hi\": ");
    json_num(&b, r->score_hi);
    dd_textbuf_puts(&b, ", \"good\": [");
    for (int i = 0; i < r->score_bins; i++)
        dd_textbuf_printf(&b, "%s%ld", i ? ", " : "", r->score_hist_good[i]);
    dd_textbuf_puts(&b, "], \"defective\": [");
    for (int i = 0; i < r->score_bins; i++)
        dd_textbuf_printf(&b, "%s%ld", i ? ", " : "", r->score_hist_defective[i]);
    dd_textbuf_puts(&b, "]}\n}\n");
    int rc = dd_textbuf_write_atomic(&b, path, err);
    dd_textbuf_free(&b);
    return rc;
}

static void csv_field(dd_textbuf *b, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        dd_textbuf_puts(b, s);
        return;
    }
    dd_textbuf_puts(b, "\"");
    for (; *s; s++) dd_textbuf_put(b, *s == '"' ? "\"\"" : s, *s == '"' ? 2 : 1);
    dd_textbuf_puts(b, "\"");
}

int dd_metrics_write_csv(const dd_metrics_result *r, const char *path, dd_error *err) {
    if (!r || !path) return dd_fail(err, DD_E_INVALID, "metrics csv: no result or path");
    dd_textbuf b;
    dd_textbuf_init(&b);
    /* One row per set; an undefined metric is an empty cell (its reason is in metrics.json). */
    dd_textbuf_puts(&b, "set,n_good,n_defective");
    for (int k = 0; k < DD_M_COUNT; k++) dd_textbuf_printf(&b, ",%s", keys[k]);
    /* n_defective_masked last, so the columns before it stay where they were */
    dd_textbuf_puts(&b, ",pixel_mode,pixel_error_bound,n_defective_masked\n");
    for (int s = 0; s < r->n_sets; s++) {
        const dd_metrics_set *st = &r->sets[s];
        csv_field(&b, st->name);
        dd_textbuf_printf(&b, ",%ld,%ld", st->n_good, st->n_defective);
        double bound = 0;
        for (int k = 0; k < DD_M_COUNT; k++) {
            if (st->m[k].defined) {
                dd_textbuf_printf(&b, ",%.10g", st->m[k].value);
                if (st->m[k].bound > bound) bound = st->m[k].bound;
            } else {
                dd_textbuf_puts(&b, ",");
            }
        }
        dd_textbuf_printf(&b, ",%s,%.3g,%ld\n", dd_pixel_mode_name(r->pixel_mode), bound,
                          st->n_defective_masked);
    }
    int rc = dd_textbuf_write_atomic(&b, path, err);
    dd_textbuf_free(&b);
    return rc;
}

static void md_text(dd_textbuf *b, const char *s) {
    for (; *s; s++) dd_textbuf_put(b, *s == '|' ? "\\|" : s, *s == '|' ? 2 : 1);
}

static int md_build(const dd_metrics_result *r, dd_textbuf *b) {
    dd_textbuf_puts(b, "| set | good | defective |");
    for (int k = 0; k < DD_M_COUNT; k++) dd_textbuf_printf(b, " %s |", labels[k]);
    dd_textbuf_puts(b, "\n|---|---:|---:|");
    for (int k = 0; k < DD_M_COUNT; k++) dd_textbuf_puts(b, "---:|");
    dd_textbuf_puts(b, "\n");
    const char *why[DD_M_COUNT * 4];
    int nwhy = 0;
    for (int s = 0; s < r->n_sets; s++) {
        const dd_metrics_set *st = &r->sets[s];
        dd_textbuf_puts(b, "| ");
        md_text(b, st->name);
        dd_textbuf_printf(b, " | %ld | %ld", st->n_good, st->n_defective);
        if (st->n_defective_masked < st->n_defective)
            dd_textbuf_printf(b, " (%ld with mask)", st->n_defective_masked);
        dd_textbuf_puts(b, " |");
        for (int k = 0; k < DD_M_COUNT; k++) {
            const dd_metric *m = &st->m[k];
            if (m->defined) {
                dd_textbuf_printf(b, " %.2f |", 100 * m->value);
                continue;
            }
            dd_textbuf_puts(b, " n/a |");
            int seen = 0;
            for (int i = 0; i < nwhy; i++) seen |= strcmp(why[i], m->why) == 0;
            if (!seen && nwhy < (int)(sizeof why / sizeof *why)) why[nwhy++] = m->why;
        }
        dd_textbuf_puts(b, "\n");
    }
    dd_textbuf_puts(b, "\nValues in percent; ");
    mode_note(b, r);
    if (r->pixel_mode == DD_PIXEL_HISTOGRAM)
        dd_textbuf_printf(b, " (largest: ±%.4f points)", 100 * max_bound(r));
    dd_textbuf_printf(b, ". AUPRO up to FPR %g.\n", DD_AUPRO_FPR_LIMIT);
    char note[300];
    if (r->n_sets > 0 && dd_metrics_truth_note(&r->sets[0], note, sizeof note)) {
        note[0] = (char)toupper((unsigned char)note[0]); /* a sentence of its own here */
        dd_textbuf_printf(b, "%s.\n", note);
    }
    for (int i = 0; i < nwhy; i++) dd_textbuf_printf(b, "n/a: %s.\n", why[i]);
    return b->oom ? DD_E_NOMEM : DD_OK;
}

int dd_metrics_markdown(const dd_metrics_result *r, char **out, dd_error *err) {
    if (!r || !out) return dd_fail(err, DD_E_INVALID, "metrics markdown: no result or output");
    *out = NULL;
    dd_textbuf b;
    dd_textbuf_init(&b);
    if (md_build(r, &b)) {
        dd_textbuf_free(&b);
        return dd_fail(err, DD_E_NOMEM, "metrics markdown: out of memory");
    }
    *out = b.s;
    return DD_OK;
}

int dd_metrics_write_markdown(const dd_metrics_result *r, const char *path, dd_error *err) {
    if (!r || !path) return dd_fail(err, DD_E_INVALID, "metrics markdown: no result or path");
    dd_textbuf b;
    dd_textbuf_init(&b);
    md_build(r, &b);
    int rc = dd_textbuf_write_atomic(&b, path, err);
    dd_textbuf_free(&b);
    return rc;
}
