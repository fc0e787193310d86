/* report.c — the HTML test report: keeps the worst-scored images as they are offered and writes
 * one self-contained page (see report.h). Charts are in report_plot.c, pictures in
 * report_image.c. */
#include "eval/report.h"
#include "eval/report_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PIC_INPUT, PIC_TRUTH, PIC_RECON, PIC_HEAT, NPIC };
static const char *pic_name[NPIC] = {"input", "ground truth", "reconstruction", "heat map"};

typedef struct kept_entry {
    char *name, *type;
    int label;
    double score;
    unsigned char *png[NPIC];
    size_t len[NPIC];
} kept_entry;

/* The gallery of one class: at most cap entries, the worst ones seen so far. */
typedef struct gallery {
    kept_entry *e;
    int n, cap;
} gallery;

struct dd_report {
    dd_report_params p;
    char *title;
    gallery good, bad;
};

void dd_report_params_init(dd_report_params *p) {
    p->title = "diffad test report";
    p->gallery_good = 6;
    p->gallery_defective = 6;
    p->max_side = 256;
    p->threshold = NAN;
}

static char *dup_str(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int dd_report_new(const dd_report_params *p, dd_report **out, dd_error *err) {
    dd_report_params d;
    if (!out) return dd_fail(err, DD_E_INVALID, "report: no output pointer");
    *out = NULL;
    if (!p) {
        dd_report_params_init(&d);
        p = &d;
    }
    if (p->gallery_good < 0 || p->gallery_good > 1000 || p->gallery_defective < 0 ||
        p->gallery_defective > 1000)
        return dd_fail(err, DD_E_RANGE, "report: gallery sizes %d / %d outside 0..1000",
                       p->gallery_good, p->gallery_defective);
    if (p->max_side < 16 || p->max_side > 4096)
        return dd_fail(err, DD_E_RANGE, "report: max_side %d outside 16..4096", p->max_side);
    dd_report *r = calloc(1, sizeof *r);
    if (!r) return dd_fail(err, DD_E_NOMEM, "report: out of memory");
    r->p = *p;
    r->title = dup_str(p->title ? p->title : "diffad test report");
    r->good.cap = p->gallery_good;
    r->bad.cap = p->gallery_defective;
    r->good.e = calloc((size_t)r->good.cap + 1, sizeof(kept_entry));
    r->bad.e = calloc((size_t)r->bad.cap + 1, sizeof(kept_entry));
    if (!r->title || !r->good.e || !r->bad.e) {
        dd_report_free(r);
        return dd_fail(err, DD_E_NOMEM, "report: out of memory");
    }
    r->p.title = r->title;
    *out = r;
    return DD_OK;
}

static void entry_free(kept_entry *e) {
    free(e->name);
    free(e->type);
    for (int k = 0; k < NPIC; k++) free(e->png[k]);
    memset(e, 0, sizeof *e);
}

void dd_report_free(dd_report *r) {
    if (!r) return;
    for (int i = 0; i < r->good.n; i++) entry_free(&r->good.e[i]);
    for (int i = 0; i < r->bad.n; i++) entry_free(&r->bad.e[i]);
    free(r->good.e);
    free(r->bad.e);
    free(r->title);
    free(r);
}

/* "Badness": a good image is worse the higher its score, a defective one the lower. */
static double badness(int label, double score) { return label ? -score : score; }

/* Index of the least bad kept entry (the one to replace), or −1 when there is free room. */
static int least_bad(const gallery *g) {
    if (g->n < g->cap) return -1;
    int m = 0;
    for (int i = 1; i < g->n; i++)
        if (badness(g->e[i].label, g->e[i].score) < badness(g->e[m].label, g->e[m].score)) m = i;
    return m;
}

int dd_report_wants(const dd_report *r, int label, double score) {
    const gallery *g = label ? &r->bad : &r->good;
    if (g->cap == 0 || !isfinite(score)) return 0;
    int m = least_bad(g);
    /* Strictly worse only: among equals, the first one offered stays (deterministic). */
    return m < 0 || badness(label, score) > badness(g->e[m].label, g->e[m].score);
}

int dd_report_add(dd_report *r, const dd_report_entry *e, int *kept, dd_error *err) {
    if (kept) *kept = 0;
    if (!r || !e) return dd_fail(err, DD_E_INVALID, "report: no report or entry");
    if (e->label != 0 && e->label != 1)
        return dd_fail(err, DD_E_INVALID, "report: label %d is not 0 or 1", e->label);
    if (!isfinite(e->score))
        return dd_fail(err, DD_E_INVALID, "report: image '%s': score is not finite",
                       e->name ? e->name : "?");
    if (!dd_report_wants(r, e->label, e->score)) return DD_OK;
    kept_entry k;
    memset(&k, 0, sizeof k);
    k.label = e->label;
    k.score = e->score;
    k.name = dup_str(e->name ? e->name : "");
    k.type = dup_str(e->defect_type);
    if (!k.name || (e->defect_type && !k.type)) {
        entry_free(&k);
        return dd_fail(err, DD_E_NOMEM, "report: out of memory");
    }
    const dd_report_image *pics[NPIC] = {&e->input, &e->truth, &e->recon, &e->heat};
    for (int i = 0; i < NPIC; i++) {
        int rc = DD_OK;
        if (pics[i]->rgb)
            rc = dd_png_encode_rgb(pics[i]->rgb, pics[i]->h, pics[i]->w, r->p.max_side, &k.png[i],
                                   &k.len[i], err);
        else if (pics[i]->png_path)
            rc = dd_png_read_file(pics[i]->png_path, &k.png[i], &k.len[i], err);
        if (rc) {
            entry_free(&k);
            return rc;
        }
    }
    gallery *g = e->label ? &r->bad : &r->good;
    int m = least_bad(g);
    if (m < 0) {
        m = g->n++;
    } else {
        entry_free(&g->e[m]);
    }
    g->e[m] = k;
    if (kept) *kept = 1;
    return DD_OK;
}

static const char *page_css =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;"
    "color:#1f2937;background:#f8fafc}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px}"
    "h3{font-size:15px;margin:18px 0 8px;color:#374151}"
    ".note{color:#4b5563;margin:4px 0}"
    "table{border-collapse:collapse;background:#fff;font-variant-numeric:tabular-nums}"
    "th,td{border:1px solid #d1d5db;padding:4px 10px;text-align:right}"
    "th{background:#f1f5f9}td:first-child,th:first-child{text-align:left}"
    "tr.overall td{font-weight:600;background:#eef2ff}td.na{color:#9ca3af}"
    ".charts{display:flex;flex-wrap:wrap;gap:16px}"
    ".chart{background:#fff;border:1px solid #e5e7eb}"
    ".chart text{font:11px system-ui,sans-serif;fill:#374151}"
    ".chart .ct{font-size:14px;font-weight:600}.chart .al{font-size:12px}"
    ".chart .lg{font-size:12px}.chart .na{font-size:13px;fill:#9ca3af}"
    ".grid line{stroke:#e5e7eb}.frame{fill:none;stroke:#6b7280}"
    ".diag{stroke:#9ca3af;stroke-dasharray:4 4}"
    ".curve{fill:none;stroke-width:2}.bars{fill-opacity:.55}"
    ".thr{stroke:#111827;stroke-width:1.5;stroke-dasharray:6 3}"
    ".gallery{display:flex;flex-direction:column;gap:12px}"
    ".entry{background:#fff;border:1px solid #e5e7eb;padding:8px}"
    ".entry .pics{display:flex;gap:8px;flex-wrap:wrap}"
    ".entry figure{margin:0;text-align:center;font-size:12px;color:#4b5563}"
    ".entry img,.entry .empty{width:192px;height:192px;object-fit:contain;background:#111;"
    "display:block;image-rendering:pixelated}"
    ".entry .empty{background:#e5e7eb}"
    ".entry .cap{margin:6px 0 0}.ng{color:#b91c1c;font-weight:600}.ok{color:#15803d;"
    "font-weight:600}";

static void metrics_table(dd_textbuf *b, const dd_metrics_result *m) {
    dd_textbuf_puts(b, "<table id=\"metrics\"><thead><tr><th>set</th><th>good</th>"
                       "<th>defective</th>");
    for (int k = 0; k < DD_M_COUNT; k++) dd_textbuf_printf(b, "<th>%s</th>", dd_metric_label(k));
    dd_textbuf_puts(b, "</tr></thead><tbody>");
    for (int s = 0; s < m->n_sets; s++) {
        const dd_metrics_set *st = &m->sets[s];
        dd_textbuf_printf(b, "<tr%s><td>", s == 0 ? " class=\"overall\"" : "");
        dd_textbuf_html(b, st->name);
        dd_textbuf_printf(b, "</td><td>%ld</td><td>%ld", st->n_good, st->n_defective);
        if (st->n_defective_masked < st->n_defective)
            dd_textbuf_printf(b, " (%ld with mask)", st->n_defective_masked);
        dd_textbuf_puts(b, "</td>");
        for (int k = 0; k < DD_M_COUNT; k++) {
            const dd_metric *v = &st->m[k];
            if (!v->defined) {
                dd_textbuf_puts(b, "<td class=\"na\" title=\"");
                dd_textbuf_html(b, v->why ? v->why : "undefined");
                dd_textbuf_puts(b, "\">n/a</td>");
            } else if (v->bound > 0) {
                dd_textbuf_printf(b, "<td title=\"error bound ±%.4f points\">%.2f</td>",
                                  100 * v->bound, 100 * v->value);
            } else {
                dd_textbuf_printf(b, "<td>%.2f</td>", 100 * v->value);
            }
        }
        dd_textbuf_puts(b, "</tr>");
    }
    dd_textbuf_puts(b, "</tbody></table>");
}

static void mode_line(dd_textbuf *b, const dd_metrics_result *m) {
    dd_textbuf_puts(b, "<p class=\"note\">Values in percent. Pixel metrics: ");
    if (m->pixel_mode == DD_PIXEL_EXACT)
        dd_textbuf_puts(b, "<b>exact</b> (every distinct anomaly-map value is a threshold).");
    else if (m->pixel_mode == DD_PIXEL_HISTOGRAM)
        dd_textbuf_printf(b, "<b>histogram</b> of %d bins over [0,1] (the test set exceeded the "
                             "memory budget); hover a value for its error bound.",
                          m->hist_bins);
    else
        dd_textbuf_puts(b, "none (no anomaly maps were given).");
    dd_textbuf_printf(b, " AUPRO integrates the per-region overlap up to a pixel FPR of %g. "
                         "Hover n/a for the reason.</p>", DD_AUPRO_FPR_LIMIT);
    char note[300];
    if (m->n_sets > 0 && dd_metrics_truth_note(&m->sets[0], note, sizeof note)) {
        note[0] = (char)toupper((unsigned char)note[0]);
        dd_textbuf_puts(b, "<p class=\"note\" id=\"pixel-truth\"><b>");
        dd_textbuf_html(b, note);
        dd_textbuf_puts(b, ".</b></p>");
    }
}

/* Sort order inside a gallery section: worst first. */
static int cmp_bad(const void *pa, const void *pb) {
    const kept_entry *a = pa, *b = pb;
    double x = badness(a->label, a->score), y = badness(b->label, b->score);
    return (x < y) - (x > y);
}

static void gallery_html(dd_textbuf *b, const gallery *g, const char *id, const char *title,
                         double thr) {
    dd_textbuf_printf(b, "<h3>%s</h3><div class=\"gallery\" id=\"%s\">", title, id);
    if (g->n == 0) dd_textbuf_puts(b, "<p class=\"note\">none</p>");
    kept_entry *sorted = malloc(sizeof *sorted * (size_t)(g->n ? g->n : 1));
    if (!sorted) {
        b->oom = 1;
        return;
    }
    memcpy(sorted, g->e, sizeof *sorted * (size_t)g->n);
    qsort(sorted, (size_t)g->n, sizeof *sorted, cmp_bad);
    for (int i = 0; i < g->n; i++) {
        const kept_entry *e = &sorted[i];
        dd_textbuf_puts(b, "<div class=\"entry\"><div class=\"pics\">");
        for (int k = 0; k < NPIC; k++) {
            dd_textbuf_puts(b, "<figure>");
            if (e->png[k]) {
                dd_textbuf_puts(b, "<img alt=\"");
                dd_textbuf_puts(b, pic_name[k]);
                dd_textbuf_puts(b, "\" src=\"data:image/png;base64,");
                dd_textbuf_base64(b, e->png[k], e->len[k]);
                dd_textbuf_puts(b, "\">");
            } else {
                dd_textbuf_puts(b, "<div class=\"empty\"></div>");
            }
            dd_textbuf_printf(b, "<figcaption>%s</figcaption></figure>", pic_name[k]);
        }
        dd_textbuf_puts(b, "</div><p class=\"cap\"><b>");
        dd_textbuf_html(b, e->name);
        dd_textbuf_puts(b, "</b>");
        if (e->label && e->type) {
            dd_textbuf_puts(b, " · ");
            dd_textbuf_html(b, e->type);
        }
        dd_textbuf_printf(b, " · score %.4f", e->score);
        if (isfinite(thr)) {
            int ng = e->score >= thr, right = ng == e->label;
            dd_textbuf_printf(b, " · <span class=\"%s\">%s</span> (%s)", ng ? "ng" : "ok",
                              ng ? "NG" : "OK", right ? "correct" : e->label ? "missed" :
                                                                               "false alarm");
        }
        dd_textbuf_puts(b, "</p></div>");
    }
    dd_textbuf_puts(b, "</div>");
    free(sorted);
}

int dd_report_write(const dd_report *r, const dd_metrics_result *m, const char *path,
                    dd_error *err) {
    if (!r || !path) return dd_fail(err, DD_E_INVALID, "report: no report or path");
    double thr = r->p.threshold;
    if (!isfinite(thr) && m && m->n_sets > 0 && m->sets[0].m[DD_M_IMAGE_F1MAX].defined)
        thr = m->sets[0].image_f1_threshold;
    dd_textbuf b;
    dd_textbuf_init(&b);
    dd_textbuf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                        "<meta name=\"viewport\" content=\"width=device-width\"><title>");
    dd_textbuf_html(&b, r->title);
    dd_textbuf_printf(&b, "</title><style>%s</style></head><body><h1>", page_css);
    dd_textbuf_html(&b, r->title);
    dd_textbuf_puts(&b, "</h1>");
    if (m && m->n_sets > 0) {
        dd_textbuf_puts(&b, "<h2>Metrics</h2>");
        metrics_table(&b, m);
        mode_line(&b, m);
        if (isfinite(thr))
            dd_textbuf_printf(&b, "<p class=\"note\">OK/NG threshold on the image score: <b>%.4g"
                                  "</b> (%s).</p>",
                              thr, isfinite(r->p.threshold) ? "given" : "image F1-max threshold");
        dd_textbuf_puts(&b, "<h2>Curves</h2><div class=\"charts\">");
        dd_svg_series roc[2] = {{&m->image_roc, "image", "#7c3aed"},
                                {&m->pixel_roc, "pixel", "#059669"}};
        dd_svg_lines(&b, "roc", "ROC (overall)", "false positive rate", "true positive rate", 1, 1,
                     roc, 2);
        dd_svg_series pro[1] = {{&m->pro, "PRO", "#ea580c"}};
        dd_svg_lines(&b, "pro", "PRO curve (overall)", "pixel false positive rate",
                     "per-region overlap", DD_AUPRO_FPR_LIMIT, 0, pro, 1);
        dd_svg_histogram(&b, "hist", "Image scores", m->score_lo, m->score_hi, m->score_hist_good,
                         m->score_hist_defective, m->score_bins, thr);
        dd_textbuf_puts(&b, "</div>");
    }
    dd_textbuf_puts(&b, "<h2>Worst-scored images</h2><p class=\"note\">Heat maps use one fixed "
                        "colour scale for every image (no per-image normalisation):</p>");
    dd_svg_colorbar(&b);
    gallery_html(&b, &r->bad, "gallery-defective",
                 "Defective images with the lowest scores (possible misses)", thr);
    gallery_html(&b, &r->good, "gallery-good",
                 "Good images with the highest scores (possible false alarms)", thr);
    dd_textbuf_puts(&b, "<p class=\"note\">Generated by diffad.</p></body></html>\n");
    int rc = dd_textbuf_write_atomic(&b, path, err);
    dd_textbuf_free(&b);
    return rc;
}
