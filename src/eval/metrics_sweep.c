/* metrics_sweep.c — the threshold sweep and curve decimation (see metrics_sweep.h). */
#include "eval/metrics_sweep.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int dd_curve_builder_init(dd_curve_builder *b, dd_curve *c, int points, double xmax, double ymax) {
    memset(b, 0, sizeof *b);
    if (points < 2) points = 2;
    /* Kept points are >= step apart along a monotone path of L1 length <= 2 (scaled axes), so
     * at most 2/step + 1 of them; plus the first and last. */
    b->step = 2.0 / points;
    b->cap = points + 4;
    b->c = c;
    b->sx = 1.0 / xmax;
    b->sy = 1.0 / ymax;
    c->n = 0;
    c->x = malloc(sizeof(float) * (size_t)b->cap);
    c->y = malloc(sizeof(float) * (size_t)b->cap);
    if (!c->x || !c->y) {
        dd_curve_free(c);
        return DD_E_NOMEM;
    }
    return DD_OK;
}

static void keep(dd_curve_builder *b, double x, double y) {
    dd_curve *c = b->c;
    int i = c->n < b->cap ? c->n++ : c->n - 1; /* cannot overflow (see init); stay safe anyway */
    c->x[i] = (float)x;
    c->y[i] = (float)y;
}

void dd_curve_builder_add(dd_curve_builder *b, double x, double y) {
    dd_curve *c = b->c;
    if (c->n == 0) {
        keep(b, x, y);
        return;
    }
    double d = fabs(x - c->x[c->n - 1]) * b->sx + fabs(y - c->y[c->n - 1]) * b->sy;
    if (d >= b->step) {
        keep(b, x, y);
        b->pending = 0;
    } else {
        b->px = x;
        b->py = y;
        b->pending = 1;
    }
}

void dd_curve_builder_finish(dd_curve_builder *b) {
    if (b->pending) keep(b, b->px, b->py);
    b->pending = 0;
}

void dd_curve_free(dd_curve *c) {
    free(c->x);
    free(c->y);
    c->x = c->y = NULL;
    c->n = 0;
}

void dd_sweep_begin(dd_sweep *s, double P, double N, double R, int binned, dd_curve_builder *roc,
                    dd_curve_builder *procurve) {
    memset(s, 0, sizeof *s);
    s->P = P;
    s->N = N;
    s->R = R;
    s->binned = binned;
    s->f1_thr = NAN;
    s->roc = roc;
    s->procurve = procurve;
    if (roc) dd_curve_builder_add(roc, 0, 0);
    if (procurve) dd_curve_builder_add(procurve, 0, 0);
}

static void pro_step(dd_sweep *s, double dpro) {
    const double lim = DD_AUPRO_FPR_LIMIT;
    double x0 = s->pro_fpr, y0 = s->pro_y;
    double x1 = s->fp / s->N, y1 = s->pro / s->R;
    (void)dpro;
    if (x1 > 1) x1 = 1; /* the MVTec code clips; rounding can only overshoot by an ulp */
    if (y1 > 1) y1 = 1;
    if (x1 <= lim) {
        s->aupro += 0.5 * (x1 - x0) * (y0 + y1);
        if (s->binned) s->b_aupro += 0.5 * (x1 - x0) * (y1 - y0);
        if (s->procurve) dd_curve_builder_add(s->procurve, x1, y1);
    } else {
        double yi = y0 + (y1 - y0) * (lim - x0) / (x1 - x0);
        s->aupro += 0.5 * (yi + y0) * (lim - x0);
        /* Over [x0, lim] the exact area lies in [y0·w, y1·w]; the interpolated one is
         * y0·w + ½·(y1−y0)·w²/(x1−x0); the larger gap is the one to y1·w. */
        if (s->binned) s->b_aupro += (lim - x0) * (y1 - y0) * (1 - 0.5 * (lim - x0) / (x1 - x0));
        if (s->procurve) dd_curve_builder_add(s->procurve, lim, yi);
        s->aupro_done = 1;
    }
    s->pro_fpr = x1;
    s->pro_y = y1;
}

void dd_sweep_group(dd_sweep *s, double thr, double dtp, double dfp, double dpro) {
    double tp0 = s->tp, fp0 = s->fp;
    s->auc2 += dfp * (2 * tp0 + dtp);
    s->tp = tp0 + dtp;
    s->fp = fp0 + dfp;
    s->pro += dpro;
    if (s->P > 0) {
        if (dtp > 0) s->ap += (dtp / s->P) * (s->tp / (s->tp + s->fp));
        double f1 = 2 * s->tp / (s->tp + s->fp + s->P);
        if (f1 > s->f1) {
            s->f1 = f1;
            s->f1_thr = thr;
        }
        if (s->binned) {
            if (dtp > 0) {
                /* Exact AP inside the bin is largest when its positives all come first, tied
                 * (precision hi for all), and smallest when its negatives all come first and
                 * the positives one by one (Σ_j (tp0+j)/(tp0+j+fp0+dfp)). O(dtp) per bin. */
                double hi = dtp * (tp0 + dtp) / (tp0 + dtp + fp0);
                double mid = dtp * (tp0 + dtp) / (tp0 + dtp + fp0 + dfp), lo = 0;
                for (double j = 1; j <= dtp; j++) lo += (tp0 + j) / (tp0 + j + fp0 + dfp);
                s->b_ap += fmax(hi - mid, mid - lo) / s->P;
            }
            double f1hi = 2 * (tp0 + dtp) / (tp0 + dtp + fp0 + s->P);
            if (f1hi > s->f1_hi) s->f1_hi = f1hi;
            if (s->N > 0) s->b_auc += 0.5 * dtp * dfp;
        }
    }
    if (s->roc && s->P > 0 && s->N > 0) dd_curve_builder_add(s->roc, s->fp / s->N, s->tp / s->P);
    if (s->R > 0 && s->N > 0 && !s->aupro_done) pro_step(s, dpro);
}

static void set_undef(dd_metric *m, const char *why) {
    m->defined = 0;
    m->value = 0;
    m->bound = 0;
    m->why = why;
}

static void set_val(dd_metric *m, double v, double bound) {
    m->defined = 1;
    m->value = v;
    m->bound = bound > 0 ? bound : 0;
    m->why = NULL;
}

void dd_sweep_end(dd_sweep *s, dd_metric *auroc, dd_metric *ap, dd_metric *f1, double *f1_thr,
                  dd_metric *aupro, int pixel_level) {
    const char *nopos = pixel_level ? "no defect pixels in the ground truth"
                                    : "no defective images (needs both classes)";
    const char *noneg = pixel_level ? "no normal pixels" : "no good images (needs both classes)";
    if (s->roc) dd_curve_builder_finish(s->roc);
    if (s->procurve) dd_curve_builder_finish(s->procurve);
    if (s->P <= 0) set_undef(auroc, nopos);
    else if (s->N <= 0) set_undef(auroc, noneg);
    else set_val(auroc, s->auc2 / (2 * s->P * s->N), s->b_auc / (s->P * s->N));
    if (s->P <= 0) {
        set_undef(ap, nopos);
        set_undef(f1, nopos);
        *f1_thr = NAN;
    } else {
        set_val(ap, s->ap, s->b_ap);
        set_val(f1, s->f1, s->binned ? s->f1_hi - s->f1 : 0);
        *f1_thr = s->f1_thr;
    }
    if (aupro) {
        if (s->R <= 0) set_undef(aupro, "no ground-truth defect regions");
        else if (s->N <= 0) set_undef(aupro, "no normal pixels");
        else set_val(aupro, s->aupro / DD_AUPRO_FPR_LIMIT, s->b_aupro / DD_AUPRO_FPR_LIMIT);
    }
}
