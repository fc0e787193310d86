/* metrics_topk.c — the image score: mean of the k largest anomaly-map values (docs/method.md §9).
 *
 * Selection is a most-significant-digit radix select on the order-preserving float keys
 * (11 + 11 + 10 bits): three counting passes narrow down the exact key of the k-th largest value,
 * a fourth sums everything above it. O(n), no copy of the map and no allocation, so it can run on
 * the inference path; the result is independent of the order of the values except for the
 * rounding of the double-precision sum. */
#include "eval/metrics.h"
#include "eval/metrics_internal.h"

#include <math.h>

int dd_topk_mean(const float *map, long n, long k, double *mean, dd_error *err) {
    if (!map || !mean || n <= 0)
        return dd_fail(err, DD_E_INVALID, "topk: no map, no output or n = %ld", n);
    if (k < 1) return dd_fail(err, DD_E_INVALID, "topk: k = %ld, must be >= 1", k);
    if (k > n) k = n;
    /* Digits of the key, high to low. */
    static const int shift[3] = {21, 10, 0};
    static const int width[3] = {11, 11, 10};
    uint32_t prefix = 0, pmask = 0; /* key bits fixed so far */
    long need = k;                  /* how many of the largest we still need within the prefix */
    unsigned long cnt[2048];
    for (int pass = 0; pass < 3; pass++) {
        int nb = 1 << width[pass];
        for (int d = 0; d < nb; d++) cnt[d] = 0;
        for (long i = 0; i < n; i++) {
            if (pass == 0 && isnan(map[i]))
                return dd_fail(err, DD_E_INVALID, "topk: map has NaN at index %ld", i);
            uint32_t key = dd_key_of(map[i]);
            if ((key & pmask) == prefix) cnt[(key >> shift[pass]) & (uint32_t)(nb - 1)]++;
        }
        int d = nb - 1;
        for (; d > 0 && cnt[d] < (unsigned long)need; d--) need -= (long)cnt[d];
        prefix |= (uint32_t)d << shift[pass];
        pmask |= (uint32_t)(nb - 1) << shift[pass];
    }
    /* prefix is now the key of the k-th largest value; `need` copies of it are in the top k. */
    double sum = 0;
    for (long i = 0; i < n; i++) {
        uint32_t key = dd_key_of(map[i]);
        if (key > prefix) sum += map[i];
    }
    sum += (double)need * dd_float_of(prefix);
    *mean = sum / (double)k;
    return DD_OK;
}
