/* regions.c — 8-connected labelling and the defect regions of an anomaly map (see regions.h). */
#include "eval/regions.h"

#include <stdlib.h>
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

long dd_cc_label(const float *v, int H, int W, float thr, int32_t *parent) {
    long n = (long)H * W, regions = 0;
    /* Union-find in raster order: each pixel above thr joins its already visited neighbours
     * (left, up-left, up, up-right) — the four that 8-connectivity adds going forward. */
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            int32_t i = (int32_t)((long)y * W + x);
            if (!(v[i] > thr)) {
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
    /* Flatten: every pixel points at its root (roots come first in raster order). */
    for (long i = 0; i < n; i++) {
        if (parent[i] < 0) continue;
        int32_t r = find_root(parent, (int32_t)i);
        parent[i] = r;
        regions += r == (int32_t)i;
    }
    return regions;
}

struct dd_region_acc {
    int32_t x0, y0, x1, y1;
    int32_t first;  /* the root's raster index: the tie-break of the sort */
    uint32_t area;
    float peak;
    double sum;
};

/* Components of 8-connectivity in an H x W map: each 2x2 block holds pixels of at most one
 * (its pixels are all neighbours), so there are at most ceil(H/2) * ceil(W/2). */
static size_t max_components(int H, int W) { return (size_t)((H + 1) / 2) * (size_t)((W + 1) / 2); }

size_t dd_regions_bytes(const dd_regions *r) {
    return r ? r->cap_px * sizeof *r->label + r->cap_acc * sizeof(dd_region_acc) : 0;
}

size_t dd_regions_bytes_for(const dd_regions *r, int H, int W) {
    size_t px = (size_t)H * W, na = max_components(H, W);
    size_t cp = r && r->cap_px > px ? r->cap_px : px, ca = r && r->cap_acc > na ? r->cap_acc : na;
    return cp * sizeof(int32_t) + ca * sizeof(dd_region_acc);
}

int dd_regions_reserve(dd_regions *r, int H, int W, dd_error *err) {
    if (!r || H <= 0 || W <= 0 || (long long)H * W > INT32_MAX)
        return dd_fail(err, DD_E_INVALID, "regions: bad map size %dx%d", H, W);
    size_t px = (size_t)H * W, na = max_components(H, W);
    if (px > r->cap_px) {
        int32_t *p = realloc(r->label, px * sizeof *p);
        if (!p) return dd_fail(err, DD_E_NOMEM, "regions: out of memory for a %dx%d map", W, H);
        r->label = p, r->cap_px = px;
    }
    if (na > r->cap_acc) {
        dd_region_acc *a = realloc(r->acc, na * sizeof *a);
        if (!a) return dd_fail(err, DD_E_NOMEM, "regions: out of memory for a %dx%d map", W, H);
        r->acc = a, r->cap_acc = na;
    }
    return DD_OK;
}

/* a comes before b: peak descending, then first raster pixel ascending. A total order, so the
 * result does not depend on how the regions are selected. */
static int before(const dd_region_acc *a, const dd_region_acc *b) {
    if (a->peak != b->peak) return a->peak > b->peak;
    return a->first < b->first;
}

/* Binary heap with the region that comes first on top. */
static void sift_down(dd_region_acc *h, size_t n, size_t i) {
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && before(&h[c + 1], &h[c])) c++;
        if (!before(&h[c], &h[i])) return;
        dd_region_acc t = h[i];
        h[i] = h[c], h[c] = t;
        i = c;
    }
}

int dd_regions_find(dd_regions *r, const float *map, int H, int W, float thr, long min_area, dd_region *out,
                    int max_out, int *n_out, long *found, dd_error *err) {
    if (n_out) *n_out = 0;
    if (found) *found = 0;
    if (!map || max_out < 0 || (max_out > 0 && !out))
        return dd_fail(err, DD_E_INVALID, "regions: NULL map or output");
    int rc = dd_regions_reserve(r, H, W, err);
    if (rc) return rc;
    int32_t *lab = r->label;
    dd_cc_label(map, H, W, thr, lab);
    /* One raster pass: a root opens its component's accumulator (roots precede their
     * members) and is relabelled -2 - k; a member finds k through its root. */
    size_t n = 0;
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            int32_t i = (int32_t)((long)y * W + x), p = lab[i];
            if (p < 0) continue;
            float v = map[i];
            dd_region_acc *a;
            if (p == i) {
                a = &r->acc[n];
                a->x0 = a->x1 = x, a->y0 = a->y1 = y;
                a->first = i, a->area = 0, a->peak = v, a->sum = 0;
                lab[i] = -2 - (int32_t)n++;
            } else {
                a = &r->acc[-2 - lab[p]];
                if (x < a->x0) a->x0 = x;
                if (x > a->x1) a->x1 = x;
                a->y1 = y; /* rows come in order */
                if (v > a->peak) a->peak = v;
            }
            a->area++;
            a->sum += v;
        }
    }
    /* Keep the regions of min_area pixels or more, then take the first max_out by peak from a
     * heap: O(n + max_out log n), and no allocation (qsort may allocate). */
    size_t kept = 0;
    for (size_t k = 0; k < n; k++)
        if ((long)r->acc[k].area >= min_area) r->acc[kept++] = r->acc[k];
    for (size_t k = kept / 2; k-- > 0;) sift_down(r->acc, kept, k);
    int m = kept < (size_t)max_out ? (int)kept : max_out;
    size_t left = kept;
    for (int k = 0; k < m; k++) {
        const dd_region_acc top = r->acc[0], *a = &top;
        r->acc[0] = r->acc[--left];
        sift_down(r->acc, left, 0);
        out[k].x = a->x0, out[k].y = a->y0;
        out[k].w = a->x1 - a->x0 + 1, out[k].h = a->y1 - a->y0 + 1;
        out[k].area = (long)a->area;
        out[k].peak = a->peak;
        out[k].mean = (float)(a->sum / a->area);
    }
    if (n_out) *n_out = m;
    if (found) *found = (long)kept;
    return DD_OK;
}

void dd_regions_free(dd_regions *r) {
    if (!r) return;
    free(r->label);
    free(r->acc);
    memset(r, 0, sizeof *r);
}
