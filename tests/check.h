/* check.h — the tiny test harness every tests/test_*.c program uses.
 *
 * CHECK(cond, fmt, ...) records a pass or a failure (with file:line and the
 * message); SKIP(fmt, ...) records a skipped case with its reason;
 * check_summary() prints "N passed, N failed, N skipped" and returns the exit
 * status. Each test program is its own executable; `make test` runs them all. */
#ifndef DD_CHECK_H
#define DD_CHECK_H

#include <math.h>
#include <stdio.h>

static int check_passed, check_failed, check_skipped;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (cond) {                                                             \
            check_passed++;                                                     \
        } else {                                                                \
            check_failed++;                                                     \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

#define SKIP(...)                                                               \
    do {                                                                        \
        check_skipped++;                                                        \
        fprintf(stderr, "SKIP %s:%d: ", __FILE__, __LINE__);                    \
        fprintf(stderr, __VA_ARGS__);                                           \
        fputc('\n', stderr);                                                    \
    } while (0)

/* Relative error of a against b, normalised by max(|b|, floor). */
static inline double check_rel(double a, double b, double floor_) {
    double d = fabs(a - b), s = fabs(b) > floor_ ? fabs(b) : floor_;
    return d / s;
}

/* Max over i of |a_i - b_i| / (max_j |b_j| + tiny): a scale-aware error for arrays. */
static inline double check_max_err(const float *a, const float *b, long n) {
    double m = 0, s = 1e-30;
    for (long i = 0; i < n; i++) s = fabs(b[i]) > s ? fabs(b[i]) : s;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / s;
        if (d > m || d != d) m = (d != d) ? INFINITY : d;
    }
    return m;
}

static inline int check_summary(const char *name) {
    printf("%s: %d passed, %d failed, %d skipped\n", name, check_passed, check_failed,
           check_skipped);
    return check_failed ? 1 : 0;
}

#endif
