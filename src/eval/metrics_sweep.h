/* metrics_sweep.h — owns the threshold sweep, the one place where AUROC, AP, F1-max and AUPRO
 * are computed (internal to the metrics module).
 *
 * The caller visits the samples from the highest score down, one "group" at a time: all samples
 * with one distinct score (exact input) or all samples of one histogram bin (binned input), giving
 * how many positives (dtp) and negatives (dfp) the group holds and, for AUPRO, the sum over its
 * positive pixels of 1/(size of the pixel's ground-truth region) (dpro). With R regions in all,
 * PRO(thr) = (1/R)·Σ_{defect pixels p, s_p >= thr} 1/|region(p)| is exactly the MVTec mean over
 * regions of the covered fraction, so one running sum gives the PRO curve.
 *
 * Formulas (match scikit-learn and the MVTec AD evaluation code):
 *  AUROC  = Σ_groups dfp·(tp_before + dtp/2) / (P·N)     (= trapezoid ROC area; ties count ½)
 *  AP     = Σ_groups (dtp/P)·tp/(tp+fp)                  (tp, fp after the group)
 *  F1-max = max_groups 2·tp/(tp + fp + P)
 *  AUPRO  = trapezoid area of (0,0),(FPR,PRO)...,(1,1) up to FPR 0.3, the last segment cut at 0.3
 *           by linear interpolation, divided by 0.3.
 *
 * Binned input: every point at a bin edge is an exact curve point; inside a bin the exact curve
 * is an unknown monotone path through the box between two such points. Hence the bounds on
 * |binned − exact| accumulated here:
 *  AUROC: Σ ½·dtp·dfp/(P·N) (half of each box);
 *  AP:    Σ max(hi − mid, mid − lo)/P per bin, with mid = dtp·(tp0+dtp)/(tp0+dtp+fp0+dfp) the
 *         binned term, hi = dtp·(tp0+dtp)/(tp0+dtp+fp0) (the bin's positives first, tied) and
 *         lo = Σ_{j=1..dtp} (tp0+j)/(tp0+j+fp0+dfp) (its negatives first): the extreme orders;
 *  F1:    max_b 2(tp0+dtp)/(tp0+dtp+fp0+P) − binned F1-max (binned ≤ exact ≤ that);
 *  AUPRO: (Σ ½·ΔFPR·ΔPRO over whole boxes below 0.3 + w·ΔPRO·(1 − w/(2·ΔFPR)) for the box cut
 *         at 0.3, w = 0.3 − FPR0) / 0.3.
 * Each bound is attained by some ordering inside the bins (tests/test_metrics.c shows cases), so
 * none can be made smaller without more information. */
#ifndef DD_METRICS_SWEEP_H
#define DD_METRICS_SWEEP_H

#include "eval/metrics.h"

/* Streaming decimation of a monotone curve into at most cap points. */
typedef struct dd_curve_builder {
    dd_curve *c;           /* output; x, y allocated with cap entries */
    int cap;
    double step;           /* minimum L1 distance between kept points (scaled axes) */
    double sx, sy;         /* axis scales to [0,1] */
    double px, py;         /* pending (latest, not yet kept) point */
    int pending;
} dd_curve_builder;

/* cap >= 4; points: target number of points. DD_E_NOMEM on failure. */
int dd_curve_builder_init(dd_curve_builder *b, dd_curve *c, int points, double xmax, double ymax);
void dd_curve_builder_add(dd_curve_builder *b, double x, double y);
void dd_curve_builder_finish(dd_curve_builder *b);
void dd_curve_free(dd_curve *c);

typedef struct dd_sweep {
    double P, N, R; /* totals: positives, negatives, regions */
    int binned;
    double tp, fp, pro;          /* running sums */
    double auc2;                 /* Σ dfp·(2·tp_before + dtp) */
    double ap, f1, f1_thr;
    double aupro, pro_fpr, pro_y; /* area so far and the last curve point */
    int aupro_done;
    double b_auc, b_ap, f1_hi, b_aupro; /* binned bounds */
    dd_curve_builder *roc, *procurve; /* optional */
} dd_sweep;

void dd_sweep_begin(dd_sweep *s, double P, double N, double R, int binned, dd_curve_builder *roc,
                    dd_curve_builder *procurve);
void dd_sweep_group(dd_sweep *s, double thr, double dtp, double dfp, double dpro);
/* Fill auroc, ap, f1 (+ threshold) and aupro, each defined or not with a reason; "what" names
 * the level in the reasons ("images" / "pixels"). aupro may be NULL. */
void dd_sweep_end(dd_sweep *s, dd_metric *auroc, dd_metric *ap, dd_metric *f1, double *f1_thr,
                  dd_metric *aupro, int pixel_level);

#endif
