/* interval.c — exact binomial confidence intervals (see interval.h). */
#include "eval/interval.h"

#include <math.h>

/* Continued fraction of I_x(a, b) (modified Lentz), valid for x < (a + 1) / (a + b + 2). */
static double betacf(double a, double b, double x) {
    const double tiny = 1e-300;
    double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
    if (fabs(d) < tiny) d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 300; m++) {
        int m2 = 2 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < 1e-15) break;
    }
    return h;
}

double dd_betainc(double a, double b, double x) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1) / (a + b + 2)) return exp(lbt) * betacf(a, b, x) / a;
    return 1 - exp(lbt) * betacf(b, a, 1 - x) / b;
}

/* x with I_x(a, b) = p, by bisection (I is increasing in x): 200 halvings reach
 * double precision on [0, 1]. */
static double beta_quantile(double a, double b, double p) {
    double lo = 0, hi = 1;
    for (int i = 0; i < 200 && hi - lo > 1e-16; i++) {
        double mid = 0.5 * (lo + hi);
        if (dd_betainc(a, b, mid) < p) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

int dd_clopper_pearson(long k, long n, double conf, double *lo, double *hi) {
    *lo = 0, *hi = 1;
    if (n < 1 || k < 0 || k > n || !(conf > 0 && conf < 1)) return -1;
    double alpha = 1 - conf;
    *lo = k == 0 ? 0 : beta_quantile((double)k, (double)(n - k + 1), alpha / 2);
    *hi = k == n ? 1 : beta_quantile((double)(k + 1), (double)(n - k), 1 - alpha / 2);
    return 0;
}
