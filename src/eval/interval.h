/* interval.h — owns confidence intervals for rates measured on a finite number of
 * images: the exact (Clopper–Pearson) binomial interval, used by `diffad calibrate`
 * for the expected false-reject rate and by `diffad test` for the false-reject and
 * missed-defect rates at the model's threshold. */
#ifndef DD_INTERVAL_H
#define DD_INTERVAL_H

/* Regularized incomplete beta I_x(a, b), a, b > 0, x in [0, 1]. */
double dd_betainc(double a, double b, double x);

/* The two-sided Clopper–Pearson interval for k events in n trials (0 <= k <= n, n >= 1)
 * at confidence conf (e.g. 0.95): lo = Beta^-1(alpha/2; k, n-k+1) (0 when k = 0),
 * hi = Beta^-1(1-alpha/2; k+1, n-k) (1 when k = n), alpha = 1 - conf. Returns 0, or -1
 * for arguments out of range (lo = 0, hi = 1 then). */
int dd_clopper_pearson(long k, long n, double conf, double *lo, double *hi);

#endif
