/* metrics_cc.c — the 8-connected regions of ground-truth masks (AUPRO; the labelling itself is
 * dd_cc_label, eval/regions.h) and the radix sorts used on pixel keys (see metrics_internal.h). */
#include "eval/metrics_internal.h"
#include "eval/regions.h"

#include <string.h>

long dd_label_regions(const float *mask, int H, int W, int32_t *parent, uint32_t *size) {
    /* the one 8-connected labelling (eval/regions.h), at the masks' 0.5 */
    long n = (long)H * W, regions = dd_cc_label(mask, H, W, 0.5f, parent);
    for (long i = 0; i < n; i++) size[i] = 0;
    for (long i = 0; i < n; i++)
        if (parent[i] >= 0) size[parent[i]]++;
    return regions;
}

void dd_radix_sort_u32(uint32_t *a, uint32_t *tmp, size_t n) {
    if (n < 2) return;
    uint32_t *src = a, *dst = tmp;
    for (int shift = 0; shift < 32; shift += 11) {
        size_t cnt[2048];
        memset(cnt, 0, sizeof cnt);
        for (size_t i = 0; i < n; i++) cnt[(src[i] >> shift) & 2047]++;
        size_t sum = 0;
        for (int d = 0; d < 2048; d++) {
            size_t c = cnt[d];
            cnt[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) dst[cnt[(src[i] >> shift) & 2047]++] = src[i];
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    /* Three passes: the result is in tmp. */
    memcpy(a, src, n * sizeof *a);
}

void dd_radix_sort_u64_hi(uint64_t *a, uint64_t *tmp, size_t n) {
    if (n < 2) return;
    uint64_t *src = a, *dst = tmp;
    for (int shift = 32; shift < 64; shift += 11) {
        size_t cnt[2048];
        memset(cnt, 0, sizeof cnt);
        for (size_t i = 0; i < n; i++) cnt[(src[i] >> shift) & 2047]++;
        size_t sum = 0;
        for (int d = 0; d < 2048; d++) {
            size_t c = cnt[d];
            cnt[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) dst[cnt[(src[i] >> shift) & 2047]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    memcpy(a, src, n * sizeof *a);
}
