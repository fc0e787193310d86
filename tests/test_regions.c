/* test_regions.c — the defect regions of an anomaly map (eval/regions.h) against an independent
 * reference (tests/regions_ref.h): a naive flood fill (explicit stack, 8 neighbours) labels
 * map > thr, a raster pass sums each region, a sort orders them by peak (ties: first raster
 * pixel). Checks:
 * hand-made blobs with known boxes, areas, peaks and means; random maps of many shapes and
 * thresholds (every field bit for bit, min_area, max_out, the total count); the worst case of
 * isolated pixels (the most components a map can have); NaN and values equal to the threshold;
 * buffers that do not grow for a map size already seen; the AUPRO labelling
 * (dd_label_regions) on the same mechanism. */
#include "eval/regions.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "eval/metrics_internal.h"
#include "regions_ref.h"

static int same_region(const dd_region *g, const ref_region *r) {
    float mean = ref_mean(r);
    return g->x == r->x0 && g->y == r->y0 && g->w == r->x1 - r->x0 + 1 && g->h == r->y1 - r->y0 + 1 &&
           g->area == r->area && !memcmp(&g->peak, &r->peak, sizeof(float)) && !memcmp(&g->mean, &mean, sizeof(float));
}

static long g_compared; /* regions compared field by field, over all maps */

/* The library against the reference on one map; returns 1 when everything agrees. */
static int compare(dd_regions *rs, const float *v, int H, int W, float thr, long min_area, int max_out, const char *what) {
    int cap = (int)(((H + 1) / 2) * ((W + 1) / 2)) + 1;
    ref_region *ref = malloc((size_t)cap * sizeof *ref);
    dd_region *got = calloc((size_t)(max_out > 0 ? max_out : 1), sizeof *got);
    int m = ref_expected(v, H, W, thr, min_area, ref, cap), n = -1;
    long found = -1;
    dd_error e = {0};
    int rc = dd_regions_find(rs, v, H, W, thr, min_area, got, max_out, &n, &found, &e);
    int ok = rc == DD_OK && found == m && n == (m < max_out ? m : max_out);
    CHECK(ok, "%s (%dx%d thr %g min_area %ld max %d): rc %d '%s', found %ld of %d, listed %d", what, H, W, thr, min_area,
          max_out, rc, e.msg, found, m, n);
    for (int k = 0; ok && k < n; k++) {
        int same = same_region(&got[k], &ref[k]);
        CHECK(same, "%s: region %d: got box %d,%d %dx%d area %ld peak %.9g mean %.9g; expected %d,%d %dx%d area %ld peak %.9g mean %.9g",
              what, k, got[k].x, got[k].y, got[k].w, got[k].h, got[k].area, got[k].peak, got[k].mean, ref[k].x0, ref[k].y0,
              ref[k].x1 - ref[k].x0 + 1, ref[k].y1 - ref[k].y0 + 1, ref[k].area, ref[k].peak, ref[k].sum / ref[k].area);
        ok &= same;
        g_compared++;
    }
    free(ref);
    free(got);
    return ok;
}

/* ---------- hand-made blobs ---------- */

/* A 10 x 14 map (rows below; '.' 0.1, digits d -> d/8, '#' 0.75, 'N' NaN, '=' exactly 0.5, the threshold):
 *   a U shape whose arms join only at the bottom (one region, two union-find trees merging);
 *   a diagonal chain (8-connected only through corners); a single pixel at the border;
 *   a NaN and a value equal to the threshold (neither is above it). */
static const char *BLOBS[10] = {
    "5.7...........",
    "5.5......6....",
    "5.5.......7..N",
    "555........7..",
    "............6=",
    ".#............",
    ".##...........",
    "...........#..",
    "..........#.#.",
    "6..........##.",
};

static void test_blobs(void) {
    enum { H = 10, W = 14 };
    static float v[H * W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            char ch = BLOBS[y][x];
            v[y * W + x] = ch == '.' ? 0.1f : ch == '#' ? 0.75f : ch == 'N' ? NAN : ch == '=' ? 0.5f : (ch - '0') / 8.0f;
        }
    dd_regions rs = {0};
    dd_region g[8];
    int n = 0;
    long found = 0;
    dd_error e = {0};
    CHECK(dd_regions_find(&rs, v, H, W, 0.5f, 0, g, 8, &n, &found, &e) == DD_OK, "find: %s", e.msg);
    /* by peak, ties by first raster pixel: the U (7/8 at (2,0), first pixel (0,0)), the chain (7/8,
     * first pixel (9,1)), then three at 0.75: the L of '#' at (1,5), the ring of '#' at (11,7), the
     * corner pixel 6/8 at (0,9) */
    CHECK(found == 5 && n == 5, "5 regions (found %ld, listed %d)", found, n);
    if (n == 5) {
        /* U: x 0..2, y 0..3; 4 + 1 + 4 = 9 pixels, eight of 5/8 and one of 7/8 */
        CHECK(g[0].x == 0 && g[0].y == 0 && g[0].w == 3 && g[0].h == 4 && g[0].area == 9 && g[0].peak == 0.875f &&
                  g[0].mean == (float)((8 * 0.625 + 0.875) / 9),
              "U: %d,%d %dx%d area %ld peak %g mean %.9g", g[0].x, g[0].y, g[0].w, g[0].h, g[0].area, g[0].peak, g[0].mean);
        /* the chain: (9,1) 6/8, (10,2) 7/8, (11,3) 7/8, (12,4) 6/8: peak 7/8, tie with U broken by first pixel:
         * U's first pixel (0,0) comes before (9,1) */
        CHECK(g[1].x == 9 && g[1].y == 1 && g[1].w == 4 && g[1].h == 4 && g[1].area == 4 && g[1].peak == 0.875f &&
                  g[1].mean == 0.8125f,
              "chain: %d,%d %dx%d area %ld peak %g mean %g", g[1].x, g[1].y, g[1].w, g[1].h, g[1].area, g[1].peak, g[1].mean);
        CHECK(g[2].x == 1 && g[2].y == 5 && g[2].w == 2 && g[2].h == 2 && g[2].area == 3 && g[2].peak == 0.75f && g[2].mean == 0.75f,
              "L of '#': %d,%d %dx%d area %ld", g[2].x, g[2].y, g[2].w, g[2].h, g[2].area);
        CHECK(g[3].x == 10 && g[3].y == 7 && g[3].w == 3 && g[3].h == 3 && g[3].area == 5 && g[3].peak == 0.75f,
              "ring of '#': %d,%d %dx%d area %ld", g[3].x, g[3].y, g[3].w, g[3].h, g[3].area);
        CHECK(g[4].x == 0 && g[4].y == 9 && g[4].w == 1 && g[4].h == 1 && g[4].area == 1 && g[4].peak == 0.75f && g[4].mean == 0.75f,
              "corner pixel: %d,%d %dx%d area %ld peak %g", g[4].x, g[4].y, g[4].w, g[4].h, g[4].area, g[4].peak);
    }
    compare(&rs, v, H, W, 0.5f, 0, 8, "blobs");
    /* min_area drops the specks, max_out cuts the list, not the count */
    CHECK(dd_regions_find(&rs, v, H, W, 0.5f, 4, g, 8, &n, &found, &e) == DD_OK && found == 3 && n == 3 && g[0].area == 9 &&
              g[1].area == 4 && g[2].area == 5,
          "min_area 4: found %ld, listed %d", found, n);
    CHECK(dd_regions_find(&rs, v, H, W, 0.5f, 0, g, 2, &n, &found, &e) == DD_OK && found == 5 && n == 2 && g[1].x == 9,
          "max_out 2: found %ld, listed %d", found, n);
    CHECK(dd_regions_find(&rs, v, H, W, 0.5f, 0, NULL, 0, &n, &found, &e) == DD_OK && found == 5 && n == 0,
          "max_out 0 still counts: found %ld", found);
    CHECK(dd_regions_find(&rs, v, H, W, 0.9f, 0, g, 8, &n, &found, &e) == DD_OK && found == 0 && n == 0, "nothing above 0.9");
    CHECK(dd_regions_find(&rs, NULL, H, W, 0.5f, 0, g, 8, &n, &found, &e) == DD_E_INVALID, "NULL map refused");
    CHECK(dd_regions_find(&rs, v, 0, W, 0.5f, 0, g, 8, &n, &found, &e) == DD_E_INVALID && strstr(e.msg, "0x14"),
          "a 0-row map refused: %s", e.msg);
    dd_regions_free(&rs);
}

/* ---------- random maps ---------- */

static void test_random(void) {
    dd_rng r;
    dd_rng_seed(&r, 77);
    static const int sizes[][2] = {{1, 1}, {1, 17}, {23, 1}, {2, 2}, {7, 5}, {16, 16}, {31, 47}, {64, 40}, {3, 200}};
    dd_regions rs = {0};
    int all = 1;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int H = sizes[s][0], W = sizes[s][1];
        float *v = malloc((size_t)H * W * sizeof *v);
        for (int trial = 0; trial < 12; trial++) {
            /* smooth-ish blobs: a few bumps plus noise, on a grid of coarse values for ties */
            int bumps = 1 + (int)(dd_rng_uniform(&r) * 6);
            float cy[6], cx[6], rad[6];
            for (int b = 0; b < bumps; b++)
                cy[b] = (float)(dd_rng_uniform(&r) * H), cx[b] = (float)(dd_rng_uniform(&r) * W),
                rad[b] = (float)(0.5 + dd_rng_uniform(&r) * 6);
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    double a = 0.25 * dd_rng_uniform(&r);
                    for (int b = 0; b < bumps; b++) {
                        double d2 = ((y - cy[b]) * (y - cy[b]) + (x - cx[b]) * (x - cx[b])) / (rad[b] * rad[b]);
                        a += 0.8 * exp(-d2);
                    }
                    if (trial % 3 == 0) a = floor(a * 16) / 16; /* ties of peaks */
                    v[(size_t)y * W + x] = (float)a;
                }
            float thr = (float)(0.2 + 0.5 * dd_rng_uniform(&r));
            long min_area = trial % 4 == 1 ? 1 + (long)(dd_rng_uniform(&r) * 6) : 0;
            int max_out = trial % 5 == 2 ? 1 + (int)(dd_rng_uniform(&r) * 3) : 1000;
            char what[64];
            snprintf(what, sizeof what, "random %dx%d #%d", H, W, trial);
            all &= compare(&rs, v, H, W, thr, min_area, max_out, what);
        }
        free(v);
    }
    CHECK(all && g_compared > 150, "every random map agrees with the flood fill (%ld regions compared)", g_compared);
    dd_regions_free(&rs);
}

/* The most components a map can have: isolated pixels on every other row and column. */
static void test_worst_case(void) {
    static const int sizes[][2] = {{9, 13}, {10, 12}, {1, 9}, {8, 1}};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int H = sizes[s][0], W = sizes[s][1];
        float *v = calloc((size_t)H * W, sizeof *v);
        for (int y = 0; y < H; y += 2)
            for (int x = 0; x < W; x += 2) v[y * W + x] = 0.5f + 0.001f * (float)(y * W + x);
        dd_regions rs = {0};
        long found = 0;
        int n = 0;
        dd_error e = {0};
        static dd_region g[200];
        CHECK(dd_regions_find(&rs, v, H, W, 0.25f, 0, g, 200, &n, &found, &e) == DD_OK &&
                  found == (long)((H + 1) / 2) * ((W + 1) / 2),
              "%dx%d isolated pixels: %ld regions", H, W, found);
        CHECK(n > 0 && g[0].y == 2 * ((H - 1) / 2) && g[0].area == 1, "highest peak first (the last pixel): %d,%d", g[0].x, g[0].y);
        compare(&rs, v, H, W, 0.25f, 0, 200, "isolated pixels");
        dd_regions_free(&rs);
        free(v);
    }
}

/* Buffers grow only for a larger map; a size seen before allocates nothing. */
static void test_reuse(void) {
    dd_regions rs = {0};
    dd_error e = {0};
    float *v = calloc(40 * 30, sizeof *v);
    for (int i = 0; i < 40 * 30; i++) v[i] = (float)((i * 37) % 11) / 10.0f;
    dd_region g[4];
    int n;
    long found;
    CHECK(dd_regions_find(&rs, v, 40, 30, 0.5f, 0, g, 4, &n, &found, &e) == DD_OK, "first map");
    size_t bytes = dd_regions_bytes(&rs);
    const int32_t *lab = rs.label;
    const void *acc = rs.acc;
    CHECK(bytes == dd_regions_bytes_for(&rs, 40, 30) && bytes == dd_regions_bytes_for(&rs, 20, 30),
          "bytes_for a size seen or smaller = the bytes held (%zu)", bytes);
    CHECK(dd_regions_bytes_for(&rs, 41, 30) > bytes, "bytes_for a larger map grows");
    for (int k = 0; k < 3; k++) {
        CHECK(dd_regions_find(&rs, v, 40, 30, 0.3f + 0.1f * k, 0, g, 4, &n, &found, &e) == DD_OK, "again");
        CHECK(dd_regions_find(&rs, v, 20, 30, 0.5f, 0, g, 4, &n, &found, &e) == DD_OK, "smaller");
        CHECK(dd_regions_find(&rs, v, 30, 40, 0.5f, 0, g, 4, &n, &found, &e) == DD_OK, "transposed");
    }
    CHECK(rs.label == lab && rs.acc == acc && dd_regions_bytes(&rs) == bytes, "no buffer moved or grew");
    dd_regions_free(&rs);
    free(v);
}

/* AUPRO's labelling of masks runs on dd_cc_label: the sizes match the flood fill's areas. */
static void test_label_regions(void) {
    enum { H = 10, W = 14 };
    static float m[H * W];
    static int32_t parent[H * W];
    static uint32_t size[H * W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            char ch = BLOBS[y][x];
            m[y * W + x] = ch == '.' || ch == '=' || ch == 'N' ? 0.0f : 1.0f;
        }
    long n = dd_label_regions(m, H, W, parent, size);
    static ref_region ref[64];
    int nr = ref_regions(m, H, W, 0.5f, ref, 64);
    int ok = n == nr;
    for (int k = 0; ok && k < nr; k++) ok = parent[ref[k].first] == (int32_t)ref[k].first && (long)size[ref[k].first] == ref[k].area;
    CHECK(ok && n == 5, "dd_label_regions: %ld regions, roots and sizes as the flood fill's (%d)", n, nr);
}

int main(void) {
    test_blobs();
    test_random();
    test_worst_case();
    test_reuse();
    test_label_regions();
    return check_summary("test_regions");
}
