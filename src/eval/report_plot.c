/* report_plot.c — the report's inline SVG charts: ROC / PRO line charts, score histograms and
 * the heat-map colour bar (see report_internal.h). Plain SVG 1.1 elements only, so any browser
 * draws them without scripts. */
#include "eval/report.h"
#include "eval/report_internal.h"

#include <math.h>

enum { CW = 380, CH = 340, ML = 58, MR = 16, MT = 46, MB = 52 };
#define PW (CW - ML - MR)
#define PH (CH - MT - MB)

/* A "nice" tick step (1, 2, 2.5 or 5 × 10^k) giving about 5 intervals over range. */
static double nice_step(double range) {
    double raw = range / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    return p * (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10);
}

static void open_chart(dd_textbuf *b, const char *id, const char *title) {
    dd_textbuf_printf(b, "<svg id=\"%s\" class=\"chart\" "
                         "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\">",
                      id, CW, CH, CW, CH);
    dd_textbuf_puts(b, "<title>");
    dd_textbuf_html(b, title);
    dd_textbuf_printf(b, "</title><rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>"
                         "<text x=\"%d\" y=\"20\" text-anchor=\"middle\" class=\"ct\">",
                      CW, CH, CW / 2);
    dd_textbuf_html(b, title);
    dd_textbuf_puts(b, "</text>");
}

/* Grid, frame, ticks and axis labels for [x0,x1]×[y0,y1]; counts (int_y) get whole ticks. */
static void axes(dd_textbuf *b, double x0, double x1, double y0, double y1, const char *xl,
                 const char *yl, int int_y) {
    double sx = nice_step(x1 - x0), sy = nice_step(y1 - y0);
    if (int_y) sy = sy < 1 ? 1 : round(sy);
    dd_textbuf_puts(b, "<g class=\"grid\">");
    for (double v = ceil(x0 / sx - 1e-9) * sx; v <= x1 + 1e-9 * (x1 - x0); v += sx) {
        double X = ML + (v - x0) / (x1 - x0) * PW;
        dd_textbuf_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
                             "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>",
                          X, MT, X, MT + PH, X, MT + PH + 16, fabs(v) < 1e-12 ? 0 : v);
    }
    for (double v = ceil(y0 / sy - 1e-9) * sy; v <= y1 + 1e-9 * (y1 - y0); v += sy) {
        double Y = MT + (1 - (v - y0) / (y1 - y0)) * PH;
        dd_textbuf_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>"
                             "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>",
                          ML, Y, ML + PW, Y, ML - 6, Y + 4, fabs(v) < 1e-12 ? 0 : v);
    }
    dd_textbuf_printf(b, "</g><rect class=\"frame\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>",
                      ML, MT, PW, PH);
    dd_textbuf_printf(b, "<text class=\"al\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">", ML + PW / 2,
                      CH - 12);
    dd_textbuf_html(b, xl);
    dd_textbuf_printf(b, "</text><text class=\"al\" transform=\"translate(16 %d) rotate(-90)\" "
                         "text-anchor=\"middle\">", MT + PH / 2);
    dd_textbuf_html(b, yl);
    dd_textbuf_puts(b, "</text>");
}

/* Legend entry i of n: top-left, or bottom-right (where ROC and PRO curves leave room). */
static void legend(dd_textbuf *b, int i, int n, const char *name, const char *color, int right) {
    int x = right ? ML + PW - 110 : ML + 10,
        y = right ? MT + PH - 10 - 18 * (n - 1 - i) : MT + 18 + 18 * i;
    dd_textbuf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"10\" fill=\"%s\"/>"
                         "<text x=\"%d\" y=\"%d\" class=\"lg\">",
                      x, y - 9, color, x + 20, y);
    dd_textbuf_html(b, name);
    dd_textbuf_puts(b, "</text>");
}

void dd_svg_lines(dd_textbuf *b, const char *id, const char *title, const char *xlabel,
                  const char *ylabel, double xmax, int diagonal, const dd_svg_series *s, int ns) {
    open_chart(b, id, title);
    axes(b, 0, xmax, 0, 1, xlabel, ylabel, 0);
    if (diagonal)
        dd_textbuf_printf(b, "<line class=\"diag\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>", ML,
                          MT + PH, ML + PW, MT);
    int shown = 0, nshow = 0;
    for (int k = 0; k < ns; k++) nshow += s[k].c && s[k].c->n >= 2;
    for (int k = 0; k < ns; k++) {
        const dd_curve *c = s[k].c;
        if (!c || c->n < 2) continue;
        dd_textbuf_printf(b, "<polyline class=\"curve\" stroke=\"%s\" points=\"", s[k].color);
        for (int i = 0; i < c->n; i++)
            dd_textbuf_printf(b, "%s%.1f,%.1f", i ? " " : "", ML + c->x[i] / xmax * PW,
                              MT + (1 - c->y[i]) * PH);
        dd_textbuf_puts(b, "\"/>");
        legend(b, shown++, nshow, s[k].name, s[k].color, 1);
    }
    if (!shown)
        dd_textbuf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"na\">"
                             "undefined for this test set</text>", ML + PW / 2, MT + PH / 2);
    dd_textbuf_puts(b, "</svg>");
}

void dd_svg_histogram(dd_textbuf *b, const char *id, const char *title, double lo, double hi,
                      const long *good, const long *bad, int bins, double thr) {
    long top = 1;
    for (int i = 0; i < bins; i++) {
        if (good[i] > top) top = good[i];
        if (bad[i] > top) top = bad[i];
    }
    open_chart(b, id, title);
    double st = nice_step((double)top);
    st = st < 1 ? 1 : round(st);
    double ymax = ceil((double)top / st) * st;
    axes(b, lo, hi, 0, ymax, "image score", "images", 1);
    static const char *col[2] = {"#2563eb", "#dc2626"};
    for (int set = 0; set < 2; set++) {
        const long *h = set ? bad : good;
        dd_textbuf_printf(b, "<g class=\"bars\" fill=\"%s\">", col[set]);
        for (int i = 0; i < bins; i++) {
            if (!h[i]) continue;
            double x = ML + (double)i / bins * PW, w = (double)PW / bins,
                   hh = (double)h[i] / ymax * PH;
            dd_textbuf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>",
                              x, MT + PH - hh, w, hh);
        }
        dd_textbuf_puts(b, "</g>");
    }
    legend(b, 0, 2, "good", col[0], 0);
    legend(b, 1, 2, "defective", col[1], 0);
    if (isfinite(thr) && thr >= lo && thr <= hi) {
        double X = ML + (thr - lo) / (hi - lo) * PW;
        /* The label sits above the frame, clear of the bars and the legend. */
        dd_textbuf_printf(b, "<line class=\"thr\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
                             "<text x=\"%.1f\" y=\"%d\" class=\"lg\" text-anchor=\"middle\">"
                             "threshold %.4g</text>",
                          X, MT - 4, X, MT + PH, X < ML + 50 ? ML + 50 : X > ML + PW - 50 ?
                          ML + PW - 50 : X, MT - 8, thr);
    }
    dd_textbuf_puts(b, "</svg>");
}

void dd_svg_colorbar(dd_textbuf *b) {
    dd_textbuf_puts(b, "<svg id=\"colorbar\" "
                       "viewBox=\"0 0 260 34\" width=\"260\" height=\"34\" role=\"img\">"
                       "<title>heat-map colour scale, anomaly 0 to 1</title><defs>"
                       "<linearGradient id=\"heat\" x1=\"0\" x2=\"1\" y1=\"0\" y2=\"0\">");
    for (int i = 0; i <= 20; i++) {
        unsigned char c[3];
        dd_heat_color((float)i / 20, c);
        dd_textbuf_printf(b, "<stop offset=\"%g\" stop-color=\"#%02x%02x%02x\"/>", i / 20.0, c[0],
                          c[1], c[2]);
    }
    dd_textbuf_puts(b, "</linearGradient></defs><rect x=\"10\" y=\"2\" width=\"240\" height=\"14\" "
                       "fill=\"url(#heat)\"/><text x=\"10\" y=\"30\" class=\"lg\">0</text>"
                       "<text x=\"130\" y=\"30\" class=\"lg\" text-anchor=\"middle\">0.5</text>"
                       "<text x=\"250\" y=\"30\" class=\"lg\" text-anchor=\"end\">1</text></svg>");
}
