/* regions_ref.h — an independent reference for the defect regions of a map (test_regions,
 * test_api): a naive flood fill (explicit stack, 8 neighbours) labels v > thr, a raster pass sums
 * each region, a sort orders them by peak descending (ties: first raster pixel). Nothing here
 * shares code with src/eval/regions.c. */
#ifndef DD_REGIONS_REF_H
#define DD_REGIONS_REF_H

#include <math.h>
#include <stdlib.h>

typedef struct ref_region {
    int x0, y0, x1, y1;
    long area, first; /* first: the region's first pixel in raster order */
    float peak;
    double sum;       /* raster order */
} ref_region;

/* The regions of v > thr in order of their first raster pixel, at most cap; returns how
 * many there are in all (> cap: only cap were filled), -1 when out of memory. */
static int ref_regions(const float *v, int H, int W, float thr, ref_region *out, int cap) {
    long n = (long)H * W;
    int *lab = malloc((size_t)n * sizeof *lab);
    long *stack = malloc((size_t)n * sizeof *stack);
    if (!lab || !stack) {
        free(lab), free(stack);
        return -1;
    }
    int nr = 0;
    for (long i = 0; i < n; i++) lab[i] = -1;
    for (long s = 0; s < n; s++) {
        if (lab[s] >= 0 || !(v[s] > thr)) continue;
        long top = 0;
        stack[top++] = s;
        lab[s] = nr;
        while (top) {
            long i = stack[--top];
            int y = (int)(i / W), x = (int)(i % W);
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int yy = y + dy, xx = x + dx;
                    if ((!dx && !dy) || yy < 0 || xx < 0 || yy >= H || xx >= W) continue;
                    long j = (long)yy * W + xx;
                    if (lab[j] >= 0 || !(v[j] > thr)) continue;
                    lab[j] = nr;
                    stack[top++] = j;
                }
        }
        nr++;
    }
    for (int k = 0; k < nr && k < cap; k++) out[k] = (ref_region){W, H, -1, -1, 0, -1, -INFINITY, 0};
    for (long i = 0; i < n; i++) {
        int k = lab[i];
        if (k < 0 || k >= cap) continue;
        ref_region *r = &out[k];
        int y = (int)(i / W), x = (int)(i % W);
        if (r->first < 0) r->first = i;
        r->x0 = x < r->x0 ? x : r->x0, r->x1 = x > r->x1 ? x : r->x1;
        r->y0 = y < r->y0 ? y : r->y0, r->y1 = y > r->y1 ? y : r->y1;
        r->area++;
        r->sum += v[i];
        if (v[i] > r->peak) r->peak = v[i];
    }
    free(lab);
    free(stack);
    return nr;
}

static int ref_cmp(const void *pa, const void *pb) {
    const ref_region *a = pa, *b = pb;
    if (a->peak != b->peak) return a->peak > b->peak ? -1 : 1;
    return (a->first > b->first) - (a->first < b->first);
}

/* The expected list: regions of min_area pixels or more, by peak; returns its length, or -1
 * when there are more than cap regions. */
static int ref_expected(const float *v, int H, int W, float thr, long min_area, ref_region *out, int cap) {
    int n = ref_regions(v, H, W, thr, out, cap), m = 0;
    if (n < 0 || n > cap) return -1;
    for (int k = 0; k < n; k++)
        if (out[k].area >= min_area) out[m++] = out[k];
    qsort(out, (size_t)m, sizeof *out, ref_cmp);
    return m;
}

static float ref_mean(const ref_region *r) { return (float)(r->sum / r->area); }

#endif
