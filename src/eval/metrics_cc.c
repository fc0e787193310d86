/* metrics_cc.c — 8-connected component labelling of ground-truth masks (AUPRO regions) and the
 * radix sorts used on pixel keys (see metrics_internal.h). */
#include "eval/metrics_internal.h"

#include <string.h>

static int32_t find_root(int32_t *parent, int32_t i) {
    while (parent[i] != i) {
        parent[i] = parent[parent[i]]; /* path halving keeps the trees flat */
        i = parent[i];
    }
    return i;
}

static void unite(int32_t *parent, int32_t a, int32_t b) {
    a = find_root(parent, a);
    b = find_root(parent, b);
    /* The smaller index becomes the root, so roots are each component's first raster pixel. */
    if (a < b) parent[b] = a;
    else if (b < a) parent[a] = b;
}

long dd_label_regions(const float *mask, int H, int W, int32_t *parent, uint32_t *size) {
    long n = (long)H * W, regions = 0;
    /* Union-find in raster order: each defect pixel joins its already visited neighbours
     * (left, up-left, up, up-right) — the four that 8-connectivity adds going forward. */
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            int32_t i = (int32_t)((long)y * W + x);
            if (!(mask[i] > 0.5f)) {
                parent[i] = -1;
                continue;
            }
            parent[i] = i;
            if (x > 0 && parent[i - 1] >= 0) unite(parent, i, i - 1);
            if (y > 0) {
                int32_t u = i - W;
                if (x > 0 && parent[u - 1] >= 0) unite(parent, i, u - 1);
                if (parent[u] >= 0) unite(parent, i, u);
                if (x + 1 < W && parent[u + 1] >= 0) unite(parent, i, u + 1);
            }
        }
    }
    for (long i = 0; i < n; i++) size[i] = 0;
    for (long i = 0; i < n; i++) {
        if (parent[i] < 0) continue;
        int32_t r = find_root(parent, (int32_t)i);
        parent[i] = r;
        if (size[r]++ == 0) regions++;
    }
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
