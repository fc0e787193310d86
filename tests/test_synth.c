/* test_synth.c — Perlin masks, augmentations, foreground, synthesiser, feeder. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/augment.h"
#include "check.h"
#include "data/dataset.h"
#include "data/feeder.h"
#include "data/foreground.h"
#include "data/image.h"
#include "data/perlin.h"
#include "data/perlin_texture.h"
#include "data/stroke.h"
#include "core/rng.h"
#include "data/synth.h"

static char tmpdir[256];

static int near(float a, float b) { return fabsf(a - b) < 1e-5f; }

/* ---- rng ---------------------------------------------------------------------- */
static void test_rng(void) {
    dd_rng a, b;
    dd_rng_seed(&a, 42);
    dd_rng_seed(&b, 42);
    int same = 1;
    for (int i = 0; i < 100; i++) same &= dd_rng_u64(&a) == dd_rng_u64(&b);
    CHECK(same, "same seed, same stream");
    dd_rng_seed2(&a, 1, 0);
    dd_rng_seed2(&b, 0, 1);
    CHECK(dd_rng_u64(&a) != dd_rng_u64(&b), "seed2 (1,0) != (0,1)");
    double s = 0, s2 = 0;
    int lo = 0, hi = 0, inrange = 1;
    for (int i = 0; i < 20000; i++) {
        double u = dd_rng_uniform(&a);
        inrange &= u >= 0 && u < 1;
        int64_t k = dd_rng_int(&a, -2, 3);
        inrange &= k >= -2 && k <= 3;
        lo += k == -2;
        hi += k == 3;
        double z = dd_rng_normal(&a);
        s += z;
        s2 += z * z;
    }
    CHECK(inrange, "uniform in [0,1), int in [lo,hi]");
    CHECK(lo > 2800 && hi > 2800, "int endpoints both drawn (%d, %d of ~3333)", lo, hi);
    CHECK(fabs(s / 20000) < 0.05 && fabs(s2 / 20000 - 1) < 0.05, "normal mean %.3f var %.3f",
          s / 20000, s2 / 20000);
}

/* ---- augmentations on tiny images, against hand-computed values ------------------ */
static void fill3(float *img, int n, float r, float g, float b) {
    for (int i = 0; i < n; i++) {
        img[i * 3] = r;
        img[i * 3 + 1] = g;
        img[i * 3 + 2] = b;
    }
}

static void test_augment(void) {
    float im[32 * 32 * 3], sc[32 * 32 * 3];
    /* gamma */
    fill3(im, 1, 0.25f, 0.5f, 0.81f);
    float g[3] = {2.0f, 0.5f, 1.0f};
    dd_aug_gamma(im, 1, 1, g);
    CHECK(near(im[0], 0.0625f) && near(im[1], sqrtf(0.5f)) && near(im[2], 0.81f), "gamma");
    /* brightness: Y = .299*.2 + .587*.4 + .114*.6 = .363; d = .363*.1 + .02 */
    fill3(im, 1, 0.2f, 0.4f, 0.6f);
    dd_aug_brightness(im, 1, 1, 1.1f, 0.02f);
    CHECK(near(im[0], 0.2563f) && near(im[1], 0.4563f) && near(im[2], 0.6563f),
          "brightness %g %g %g", im[0], im[1], im[2]);
    /* sharpness on a 3x3 impulse: smooth centre = 5/13, border unfiltered */
    memset(im, 0, sizeof(float) * 27);
    fill3(im + 12, 1, 1, 1, 1);
    dd_aug_sharpness(im, 3, 3, 0.5f, sc);
    CHECK(near(im[12], 9.0f / 13.0f) && im[0] == 0.0f, "sharpness 0.5: %g", im[12]);
    memset(im, 0, sizeof(float) * 27);
    fill3(im + 12, 1, 0.5f, 0.5f, 0.5f);
    dd_aug_sharpness(im, 3, 3, 0.0f, sc);
    CHECK(near(im[12], 2.5f / 13.0f), "sharpness 0 = smoothed: %g", im[12]);
    /* hue/saturation */
    fill3(im, 1, 1, 0, 0);
    dd_aug_hue_sat(im, 1, 1, 120.0f, 0.0f);
    CHECK(near(im[0], 0) && near(im[1], 1) && near(im[2], 0), "red + 120 deg = green");
    fill3(im, 1, 1, 0, 0);
    dd_aug_hue_sat(im, 1, 1, 0.0f, -0.5f);
    CHECK(near(im[0], 1) && near(im[1], 0.5f) && near(im[2], 0.5f), "saturation -0.5");
    fill3(im, 1, 0.3f, 0.3f, 0.3f);
    dd_aug_hue_sat(im, 1, 1, 77.0f, 0.0f);
    CHECK(near(im[0], 0.3f) && near(im[1], 0.3f), "grey has no hue");
    /* solarize, posterize, invert */
    fill3(im, 1, 100 / 255.0f, 200 / 255.0f, 128 / 255.0f);
    dd_aug_solarize(im, 1, 1, 128.0f);
    CHECK(im[0] == 100 / 255.0f && im[1] == 55 / 255.0f && im[2] == 127 / 255.0f, "solarize");
    fill3(im, 1, 200 / 255.0f, 100 / 255.0f, 255 / 255.0f);
    dd_aug_posterize(im, 1, 1, 2);
    CHECK(im[0] == 192 / 255.0f && im[1] == 64 / 255.0f && im[2] == 192 / 255.0f, "posterize 2");
    fill3(im, 1, 0.25f, 0, 1);
    dd_aug_invert(im, 1, 1);
    CHECK(im[0] == 0.75f && im[1] == 1 && im[2] == 0, "invert");
    /* autocontrast, cutoff 0: {50, 100, 150} -> {0, int(127.5) = 127, 255} */
    fill3(im, 1, 50 / 255.0f, 0, 0);
    fill3(im + 3, 1, 100 / 255.0f, 0, 0);
    fill3(im + 6, 1, 150 / 255.0f, 0, 0);
    dd_aug_autocontrast(im, 1, 3, 0);
    CHECK(im[0] == 0 && im[3] == 127 / 255.0f && im[6] == 1.0f, "autocontrast %g %g %g",
          im[0] * 255, im[3] * 255, im[6] * 255);
    CHECK(im[1] == 0, "constant channel unchanged");
    /* equalize (PIL): 1024 px, 512 x 0, 256 x 100, 256 x 200: step = 768 // 255 = 3,
     * lut[0] = 1//3 = 0, lut[100] = 513//3 = 171, lut[200] = 769//3 = 256 -> 255 */
    for (int i = 0; i < 1024; i++)
        fill3(im + i * 3, 1, (i < 512 ? 0 : i < 768 ? 100 : 200) / 255.0f, 0.5f, 0.5f);
    dd_aug_equalize(im, 32, 32);
    CHECK(im[0] == 0 && im[600 * 3] == 171 / 255.0f && im[900 * 3] == 1.0f,
          "equalize %g %g %g", im[0] * 255, im[600 * 3] * 255, im[900 * 3] * 255);
    /* rotate by 90 on 3x3: clockwise, the bottom-left pixel goes to the top-left */
    memset(im, 0, sizeof(float) * 27);
    fill3(im + 6 * 3, 1, 1, 1, 1); /* (row 2, col 0) */
    dd_aug_rotate(im, 3, 3, 90.0f, sc);
    CHECK(near(im[0], 1) && near(im[6 * 3], 0), "rotate 90: %g %g", im[0], im[18]);
    dd_aug_rotate(im, 3, 3, 0.0f, sc);
    CHECK(near(im[0], 1), "rotate 0 is identity");
    /* pick3: three distinct kinds, and deterministic */
    dd_rng r;
    int distinct = 1, seen[DD_AUG_COUNT] = {0};
    for (int t = 0; t < 200; t++) {
        int k[3];
        dd_rng_seed2(&r, 5, (uint64_t)t);
        for (int i = 0; i < 16 * 16 * 3; i++) im[i] = (float)(i % 7) / 7.0f;
        dd_aug_pick3(im, 16, 16, &r, sc, k);
        distinct &= k[0] != k[1] && k[1] != k[2] && k[0] != k[2];
        for (int i = 0; i < 3; i++) seen[k[i]]++;
    }
    int all = 1;
    for (int i = 0; i < DD_AUG_COUNT; i++) all &= seen[i] > 30;
    CHECK(distinct, "pick3 draws three distinct augmentations");
    CHECK(all, "every augmentation gets drawn");
}

static void test_strips(void) {
    int h = 16, w = 24; /* w not divisible by 8 strips evenly? 24/8 = 3, h 16/8 = 2 */
    float im[16 * 24 * 3], sc[16 * 24 * 3];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) fill3(im + (y * w + x) * 3, 1, (float)x, (float)y, 0);
    dd_rng r;
    dd_rng_seed(&r, 9);
    dd_strip_shuffle(im, h, w, 8, &r, sc);
    /* columns: output strip k holds source strip s_k; first 4 even, last 4 odd */
    int ok = 1, colmap[8], rowmap[8];
    for (int k = 0; k < 8; k++) {
        colmap[k] = (int)im[(k * 3) * 3] / 3;
        rowmap[k] = (int)im[(k * 2 * w) * 3 + 1] / 2;
        for (int j = 0; j < 3; j++) ok &= (int)im[(k * 3 + j) * 3] == colmap[k] * 3 + j;
    }
    int evens = 1, odds = 1, perm = 0, rperm = 0;
    for (int k = 0; k < 4; k++) {
        evens &= colmap[k] % 2 == 0 && rowmap[k] % 2 == 0;
        odds &= colmap[k + 4] % 2 == 1 && rowmap[k + 4] % 2 == 1;
    }
    for (int k = 0; k < 8; k++) {
        perm |= 1 << colmap[k];
        rperm |= 1 << rowmap[k];
    }
    CHECK(ok, "strips move as whole blocks");
    CHECK(evens && odds, "even strips first, then odd strips (columns and rows)");
    CHECK(perm == 255 && rperm == 255, "every strip used once");
    /* odd size: strips of unequal width still tile the image */
    float o[7 * 11 * 3], os[7 * 11 * 3];
    double s1 = 0, s2 = 0;
    for (int i = 0; i < 7 * 11 * 3; i++) s1 += o[i] = (float)i;
    dd_strip_shuffle(o, 7, 11, 8, &r, os);
    for (int i = 0; i < 7 * 11 * 3; i++) s2 += o[i];
    CHECK(s1 == s2, "odd sizes: content preserved");
}

/* ---- Perlin --------------------------------------------------------------------- */
static void test_perlin(void) {
    int h = 64, w = 48;
    float nz[64 * 48], m1[64 * 48], m2[64 * 48];
    dd_rng r;
    dd_rng_seed(&r, 3);
    dd_perlin_noise(nz, h, w, 4, 8, 0.0f, &r);
    float mn = 1e9f, mx = -1e9f;
    for (int i = 0; i < h * w; i++) {
        mn = fminf(mn, nz[i]);
        mx = fmaxf(mx, nz[i]);
    }
    CHECK(mn >= -1.01f && mx <= 1.01f && mx - mn > 0.5f, "noise range [%g, %g]", mn, mx);
    CHECK(nz[0] == 0.0f, "noise is 0 at lattice points");
    dd_perlin_params pp;
    dd_perlin_params_init(&pp);
    uint8_t fg[64 * 48];
    for (int i = 0; i < h * w; i++) fg[i] = (i % w) < w / 2; /* left half */
    int inside = 1, nonempty = 1;
    for (int t = 0; t < 50; t++) {
        dd_rng_seed2(&r, 11, (uint64_t)t);
        int tries;
        long c = dd_perlin_mask(m1, h, w, fg, &pp, &r, &tries);
        dd_rng_seed2(&r, 11, (uint64_t)t);
        dd_perlin_mask(m2, h, w, fg, &pp, &r, NULL);
        nonempty &= c > 0;
        CHECK(memcmp(m1, m2, sizeof m1) == 0, "mask deterministic");
        for (int i = 0; i < h * w; i++) inside &= !(m1[i] > 0) || fg[i];
    }
    CHECK(nonempty, "masks non-empty within 50 tries");
    CHECK(inside, "masks stay inside the foreground");
    memset(fg, 0, sizeof fg);
    CHECK(dd_perlin_mask(m1, h, w, fg, &pp, &r, NULL) == 0, "empty foreground -> empty mask");
    /* procedural textures: all kinds in range */
    float tex[40 * 40 * 3], sc[40 * 40];
    int kinds = 0, range = 1;
    for (int t = 0; t < 40; t++) {
        dd_rng_seed2(&r, 77, (uint64_t)t);
        kinds |= 1 << dd_procedural_texture(tex, 40, 40, &r, sc);
        for (int i = 0; i < 40 * 40 * 3; i++) range &= tex[i] >= 0 && tex[i] <= 1;
    }
    CHECK(kinds == (1 << DD_PTEX_COUNT) - 1, "all procedural kinds drawn (%x)", kinds);
    CHECK(range, "procedural textures in [0, 1]");
}

/* ---- foreground estimate ---------------------------------------------------------- */
static void disc_image(float *img, uint8_t *truth, int h, int w, float rad, unsigned seed) {
    dd_rng r;
    dd_rng_seed(&r, seed);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float dy = y - h * 0.5f, dx = x - w * 0.55f;
            int in = dy * dy + dx * dx < rad * rad;
            if (truth) truth[y * w + x] = (uint8_t)in;
            float base = in ? 0.7f : 0.15f;
            if (in && (x / 4 + y / 4) % 2) base = 0.55f; /* some texture on the part */
            for (int c = 0; c < 3; c++)
                img[(y * w + x) * 3 + c] = base + 0.04f * (float)dd_rng_normal(&r);
        }
}

static void test_foreground(void) {
    int h = 96, w = 128;
    float *img = malloc(sizeof(float) * h * w * 3);
    uint8_t *truth = malloc((size_t)h * w), *fg = malloc((size_t)h * w);
    disc_image(img, truth, h, w, 30.0f, 1);
    float frac = 0;
    CHECK(dd_foreground_estimate(img, h, w, fg, &frac, NULL) == DD_OK, "estimate");
    long inter = 0, uni = 0;
    for (int i = 0; i < h * w; i++) {
        inter += fg[i] && truth[i];
        uni += fg[i] || truth[i];
    }
    CHECK(uni > 0 && (double)inter / uni > 0.9, "disc IoU %.3f", (double)inter / uni);
    /* flat image: no object found -> whole image */
    for (int i = 0; i < h * w * 3; i++) img[i] = 0.5f;
    dd_foreground_estimate(img, h, w, fg, &frac, NULL);
    long all = 0;
    for (int i = 0; i < h * w; i++) all += fg[i];
    CHECK(all == (long)h * w, "flat image -> whole image foreground");
    float v[6] = {0.1f, 0.12f, 0.11f, 0.8f, 0.82f, 0.79f};
    float t = dd_otsu_threshold(v, 6, 0, 1);
    CHECK(t > 0.12f && t < 0.79f, "otsu between the modes: %g", t);
    free(img);
    free(truth);
    free(fg);
}

/* ---- synthesiser without a dataset ------------------------------------------------------ */
static void test_synth_apply(void) {
    int h = 48, w = 40;
    dd_synth_config cfg;
    dd_synth_config_init(&cfg);
    cfg.h = h;
    cfg.w = w;
    dd_synth *s;
    dd_error e = {0};
    CHECK(dd_synth_create(NULL, &cfg, &s, &e) == DD_OK, "create: %s", e.msg);
    size_t n = (size_t)h * w;
    float *N = malloc(sizeof(float) * n * 3), *I1 = malloc(sizeof(float) * n * 3),
          *I2 = malloc(sizeof(float) * n * 3), *M1 = malloc(sizeof(float) * n),
          *M2 = malloc(sizeof(float) * n), *A1 = malloc(sizeof(float) * n * 3),
          *A2 = malloc(sizeof(float) * n * 3);
    uint8_t *fg = malloc(n);
    disc_image(N, fg, h, w, 14.0f, 2);
    int same = 1, inside = 1, consistent = 1, blend = 1, n_anom = 0, n_self = 0, n_proc = 0;
    long area_small = 0;
    for (int t = 0; t < 400; t++) {
        float l1, l2;
        dd_synth_info in1, in2;
        dd_synth_apply(s, N, fg, 1234, (uint64_t)t, I1, M1, &l1, A1, &in1, NULL);
        dd_synth_apply(s, N, fg, 1234, (uint64_t)t, I2, M2, &l2, A2, &in2, NULL);
        same &= memcmp(I1, I2, n * 12) == 0 && memcmp(M1, M2, n * 4) == 0 && l1 == l2 &&
                memcmp(A1, A2, n * 12) == 0;
        long cnt = 0;
        for (size_t i = 0; i < n; i++) {
            cnt += M1[i] > 0;
            inside &= !(M1[i] > 0) || fg[i];
        }
        consistent &= (l1 == 1.0f) == (cnt > 0) && (l1 == 0.0f || l1 == 1.0f);
        if (l1 == 1.0f) {
            n_anom++;
            n_self += in1.source == DD_SRC_SELF;
            n_proc += in1.source == DD_SRC_PROCEDURAL;
            area_small += cnt;
            float b = in1.beta;
            blend &= b >= 0.2f && b < 0.8f;
            for (size_t i = 0; i < n * 3; i++) {
                float want = M1[i / 3] > 0 ? b * N[i] + (1 - b) * A1[i] : N[i];
                blend &= fabsf(I1[i] - want) < 1e-6f;
            }
        } else {
            blend &= memcmp(I1, N, n * 12) == 0;
        }
    }
    CHECK(same, "same (seed, index) -> bit-identical sample");
    CHECK(inside, "masks inside the foreground");
    CHECK(consistent, "label 1 iff mask non-empty");
    CHECK(blend, "S = M*(beta N + (1-beta) A) + (1-M) N with beta in [0.2, 0.8)");
    CHECK(n_anom > 160 && n_anom < 240, "anomalous share %d/400 near 0.5", n_anom);
    CHECK(n_self > n_anom / 4 && n_proc > n_anom / 4, "object mode: self %d, procedural %d of %d",
          n_self, n_proc, n_anom);
    float l;
    dd_synth_apply(s, N, fg, 1234, 0, I1, M1, &l, NULL, NULL, NULL);
    dd_synth_apply(s, N, fg, 1235, 0, I2, M2, &l, NULL, NULL, NULL);
    int differ = memcmp(I1, I2, n * 12) != 0;
    dd_synth_apply(s, N, fg, 1234, 1, I2, M2, &l, NULL, NULL, NULL);
    differ &= 1; /* index 0 and 1 may both be normal; check over many below */
    CHECK(differ, "different seed -> different sample");
    dd_synth_free(s);

    /* normal fraction over many draws; texture mode never self-augments */
    cfg.mode = DD_SYNTH_TEXTURE;
    cfg.h = cfg.w = 16;
    CHECK(dd_synth_create(NULL, &cfg, &s, &e) == DD_OK, "create texture mode");
    float tn[16 * 16 * 3], ti[16 * 16 * 3], tm[16 * 16];
    for (int i = 0; i < 16 * 16 * 3; i++) tn[i] = 0.5f;
    int normals = 0, selfs = 0;
    for (int t = 0; t < 3000; t++) {
        dd_synth_info in;
        dd_synth_apply(s, tn, NULL, 99, (uint64_t)t, ti, tm, &l, NULL, &in, NULL);
        normals += l == 0.0f;
        selfs += in.source == DD_SRC_SELF;
    }
    CHECK(fabs(normals / 3000.0 - 0.5) < 0.035, "normal fraction %.3f", normals / 3000.0);
    CHECK(selfs == 0, "texture mode: no self-augmentation");
    dd_synth_free(s);

    /* extension: large masks cover more */
    cfg.mode = DD_SYNTH_OBJECT;
    cfg.h = h;
    cfg.w = w;
    cfg.normal_prob = 0;
    cfg.large_mask_prob = 1;
    CHECK(dd_synth_create(NULL, &cfg, &s, &e) == DD_OK, "create large");
    long area_large = 0;
    int nl = 0;
    for (int t = 0; t < 100; t++) {
        dd_synth_apply(s, N, NULL, 5, (uint64_t)t, I1, M1, &l, NULL, NULL, NULL);
        for (size_t i = 0; i < n; i++) area_large += M1[i] > 0;
        nl += l == 1.0f;
    }
    double mean_small = n_anom ? (double)area_small / n_anom : 0, mean_large = (double)area_large / nl;
    CHECK(mean_large > 1.5 * mean_small, "large masks: mean area %.0f vs %.0f px", mean_large,
          mean_small);
    dd_synth_free(s);
    cfg.beta_min = 0.9f;
    cfg.beta_max = 0.1f;
    CHECK(dd_synth_create(NULL, &cfg, &s, &e) == DD_E_RANGE, "bad beta range refused: %s", e.msg);
    free(N); free(I1); free(I2); free(M1); free(M2); free(A1); free(A2); free(fg);
}

/* Share of mask pixels whose whole (2k+1)^2 neighbourhood lies in the mask: near 0 for
 * thin strokes, large for Perlin blobs. */
static double interior_share(const float *m, int h, int w, int k) {
    long in = 0, all = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            if (!(m[(size_t)y * w + x] > 0)) continue;
            all++;
            int full = y >= k && x >= k && y + k < h && x + k < w;
            for (int dy = -k; dy <= k && full; dy++)
                for (int dx = -k; dx <= k && full; dx++) full = m[(size_t)(y + dy) * w + x + dx] > 0;
            in += full;
        }
    return all ? (double)in / all : 0;
}

/* Thin-stroke masks (stroke.h): deterministic, {0,1}, inside the foreground, never empty,
 * a spread from spots to long scratches, and thin (unlike Perlin blobs). */
static void test_stroke(void) {
    enum { H = 128, W = 128 };
    static float m1[H * W], m2[H * W];
    static uint8_t fg[H * W];
    for (int i = 0; i < H * W; i++) fg[i] = (i % W) < W / 2; /* left half */
    dd_rng r;
    int inside = 1, binary = 1, nonempty = 1, same = 1, spots = 0, long_ones = 0;
    long max_area = 0;
    double thin = 0, blob = 0;
    const int draws = 400;
    /* the pen radius is at most 128/40 = 3.2 px: a neighbourhood of 9x9 never fits inside a
     * single stroke; it fits only where strokes cross */
    for (int t = 0; t < draws; t++) {
        int tries = 0;
        dd_rng_seed2(&r, 21, (uint64_t)t);
        long c = dd_stroke_mask(m1, H, W, t % 2 ? fg : NULL, 50, &r, &tries);
        dd_rng_seed2(&r, 21, (uint64_t)t);
        dd_stroke_mask(m2, H, W, t % 2 ? fg : NULL, 50, &r, NULL);
        same &= memcmp(m1, m2, sizeof m1) == 0;
        nonempty &= c > 0 && tries >= 1 && tries <= 50;
        long cnt = 0;
        int y0 = H, y1 = -1, x0 = W, x1 = -1;
        for (int i = 0; i < H * W; i++) {
            binary &= m1[i] == 0.0f || m1[i] == 1.0f;
            if (t % 2) inside &= !(m1[i] > 0) || fg[i];
            if (m1[i] > 0) {
                cnt++;
                int y = i / W, x = i % W;
                y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1, x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
            }
        }
        same &= cnt == c;
        max_area = cnt > max_area ? cnt : max_area;
        spots += cnt > 0 && cnt <= 30;
        long_ones += cnt > 0 && (y1 - y0 >= 40 || x1 - x0 >= 40);
        thin += interior_share(m1, H, W, 4);
    }
    dd_perlin_params pp;
    dd_perlin_params_init(&pp);
    for (int t = 0; t < 100; t++) {
        dd_rng_seed2(&r, 22, (uint64_t)t);
        dd_perlin_mask(m1, H, W, NULL, &pp, &r, NULL);
        blob += interior_share(m1, H, W, 4);
    }
    thin /= draws, blob /= 100;
    CHECK(same, "stroke masks deterministic, count returned = pixels set");
    CHECK(binary && nonempty && inside, "stroke masks {0,1}, non-empty, inside the foreground");
    CHECK(max_area <= H * W / 4, "3 strokes cover at most a quarter of the image (max %ld px)", max_area);
    CHECK(spots >= draws / 10, "short strokes (spots, <= 30 px): %d of %d", spots, draws);
    CHECK(long_ones >= draws / 10, "long strokes (>= 40 px across): %d of %d", long_ones, draws);
    CHECK(thin < 0.01 && blob > 0.03, "strokes are thin: 9x9-interior share %.4f (Perlin blobs %.3f)", thin,
          blob);
    memset(fg, 0, sizeof fg);
    int tries = 0;
    CHECK(dd_stroke_mask(m1, H, W, fg, 7, &r, &tries) == 0 && tries == 7, "empty foreground: empty mask after max_tries");

    /* through the synthesiser: every defect a stroke, the image changed only inside it */
    dd_synth_config cfg;
    dd_synth_config_init(&cfg);
    cfg.h = 64, cfg.w = 96, cfg.normal_prob = 0, cfg.stroke_mask_prob = 1;
    dd_synth *s = NULL;
    dd_error e = {0};
    CHECK(dd_synth_create(NULL, &cfg, &s, &e) == DD_OK, "create with stroke masks: %s", e.msg);
    static float N[64 * 96 * 3], I[64 * 96 * 3], M[64 * 96];
    for (int i = 0; i < 64 * 96 * 3; i++) N[i] = (float)((i * 7919) % 256) / 255.0f;
    int anomalous = 0, outside_same = 1;
    double share = 0;
    for (int t = 0; t < 100; t++) {
        float l;
        dd_synth_apply(s, N, NULL, 3, (uint64_t)t, I, M, &l, NULL, NULL, NULL);
        anomalous += l == 1.0f;
        for (int i = 0; i < 64 * 96; i++)
            if (!(M[i] > 0)) outside_same &= I[i * 3] == N[i * 3] && I[i * 3 + 1] == N[i * 3 + 1] && I[i * 3 + 2] == N[i * 3 + 2];
        share += interior_share(M, 64, 96, 4);
    }
    CHECK(anomalous == 100 && outside_same, "stroke defects: %d of 100 anomalous, image unchanged outside the mask",
          anomalous);
    CHECK(share / 100 < 0.01, "synthesised stroke masks are thin (%.4f)", share / 100);
    dd_synth_free(s);
    cfg.stroke_mask_prob = 1.5f;
    CHECK(dd_synth_create(NULL, &cfg, &s, &e) == DD_E_RANGE, "stroke_mask_prob 1.5 refused: %s", e.msg);
}

/* shift_source_prob: the source is the image itself displaced (wrapping) by 2 .. a quarter
 * side, and the paste keeps the blend rule. */
static void test_shift_source(void) {
    enum { H = 48, W = 80 };
    dd_synth_config cfg;
    dd_synth_config_init(&cfg);
    cfg.h = H, cfg.w = W, cfg.normal_prob = 0, cfg.shift_source_prob = 1;
    dd_synth *s = NULL;
    dd_error e = {0};
    CHECK(dd_synth_create(NULL, &cfg, &s, &e) == DD_OK, "create with shift sources: %s", e.msg);
    static float N[H * W * 3], I[H * W * 3], I2[H * W * 3], M[H * W], A[H * W * 3];
    for (int i = 0; i < H * W * 3; i++) N[i] = (float)(((uint32_t)i * 2654435761u) >> 24) / 255.0f; /* no period */
    int shifts = 0, exact = 1, in_range = 1, blended = 1, outside_same = 1, same_again = 1, moved_min = 1 << 30,
        moved_max = 0;
    for (int t = 0; t < 60; t++) {
        float l, l2;
        dd_synth_info in;
        dd_synth_apply(s, N, NULL, 5, (uint64_t)t, I, M, &l, A, &in, NULL);
        dd_synth_apply(s, N, NULL, 5, (uint64_t)t, I2, M, &l2, NULL, NULL, NULL);
        same_again &= memcmp(I, I2, sizeof I) == 0 && l == l2;
        if (in.source != DD_SRC_SHIFT) continue;
        shifts++;
        moved_min = in.texture < moved_min ? in.texture : moved_min;
        moved_max = in.texture > moved_max ? in.texture : moved_max;
        /* find the displacement that reproduces the source exactly */
        int found = 0;
        for (int dy = -H / 4; dy <= H / 4 && !found; dy++)
            for (int dx = -W / 4; dx <= W / 4 && !found; dx++) {
                int ok = 1;
                for (int y = 0; y < H && ok; y++)
                    for (int x = 0; x < W && ok; x++)
                        for (int k = 0; k < 3; k++)
                            ok &= A[(y * W + x) * 3 + k] == N[((((y - dy) % H + H) % H) * W + (((x - dx) % W + W) % W)) * 3 + k];
                if (ok) found = 1, in_range &= abs(dy) + abs(dx) == in.texture && abs(dy) + abs(dx) >= 2;
            }
        exact &= found;
        for (int i = 0; i < H * W; i++) {
            if (M[i] > 0)
                for (int k = 0; k < 3; k++) {
                    float v = in.beta * N[i * 3 + k] + (1 - in.beta) * A[i * 3 + k];
                    blended &= fabsf(I[i * 3 + k] - v) <= 1e-6f;
                }
            else
                outside_same &= memcmp(I + i * 3, N + i * 3, 3 * sizeof(float)) == 0;
        }
    }
    CHECK(shifts == 60, "shift_source_prob 1: every defect's source is the shifted part (%d of 60)", shifts);
    CHECK(exact && in_range, "the source is the image displaced (wrapping) by |dy| + |dx| = the reported 2 .. h/4 + w/4 (%d .. %d)",
          moved_min, moved_max);
    CHECK(moved_max > 8, "displacements reach beyond a few pixels (max %d)", moved_max);
    CHECK(blended && outside_same, "shifted source pasted by the blend rule inside the mask, untouched outside");
    CHECK(same_again, "shifted-source samples deterministic");
    dd_synth_free(s);
    cfg.shift_source_prob = -0.1f;
    CHECK(dd_synth_create(NULL, &cfg, &s, &e) == DD_E_RANGE, "shift_source_prob -0.1 refused: %s", e.msg);
}

/* intensity_source_prob: the source is the part itself darker or lighter (one gain and offset
 * of one sign for every channel), pasted by the blend rule; pixels the clamp leaves visibly
 * unchanged are not labelled; grey stays grey; binary parts never get one and draw nothing
 * for it (their samples are those of intensity_source_prob 0). */
static void test_intensity_source(void) {
    enum { H = 48, W = 80, NS = 60 };
    dd_synth_config cfg;
    dd_synth_config_init(&cfg);
    cfg.h = H, cfg.w = W, cfg.normal_prob = 0, cfg.intensity_source_prob = 1;
    dd_synth *s = NULL, *off = NULL;
    dd_error e = {0};
    CHECK(dd_synth_create(NULL, &cfg, &s, &e) == DD_OK, "create with intensity sources: %s", e.msg);
    static float N[H * W * 3], G[H * W * 3], B[H * W * 3], I[H * W * 3], I2[H * W * 3], M[H * W], M2[H * W],
        A[H * W * 3];
    for (int i = 0; i < H * W * 3; i++) N[i] = (float)(((uint32_t)i * 2654435761u) >> 24) / 255.0f;
    for (int i = 0; i < H * W; i++) G[i * 3] = G[i * 3 + 1] = G[i * 3 + 2] = N[i * 3];
    int count = 0, affine = 1, one_sign = 1, sizes = 1, blended = 1, labels = 1, same_again = 1, darker = 0,
        lighter = 0, grey = 1;
    for (int pass = 0; pass < 2; pass++) {
        const float *P = pass ? G : N;
        for (int t = 0; t < NS; t++) {
            float l, l2;
            dd_synth_info in;
            dd_synth_apply(s, P, NULL, 9, (uint64_t)t, I, M, &l, A, &in, NULL);
            dd_synth_apply(s, P, NULL, 9, (uint64_t)t, I2, M2, &l2, NULL, NULL, NULL);
            same_again &= memcmp(I, I2, sizeof I) == 0 && memcmp(M, M2, sizeof M) == 0 && l == l2;
            if (in.source != DD_SRC_INTENSITY) continue;
            count++;
            int milli = in.texture;
            sizes &= abs(milli) >= 150 && abs(milli) <= 500;
            darker += milli < 0, lighter += milli > 0;
            /* recover gain and offset from two unclamped values, then check every pixel */
            float g = 0, o = 0;
            int have = 0;
            for (int i = 0; i + 1 < H * W * 3 && !have; i++)
                for (int j = i + 1; j < i + 64 && j < H * W * 3 && !have; j++)
                    if (A[i] > 0 && A[i] < 1 && A[j] > 0 && A[j] < 1 && fabsf(P[i] - P[j]) > 0.3f) {
                        g = (A[i] - A[j]) / (P[i] - P[j]), o = A[i] - g * P[i], have = 1;
                    }
            affine &= have;
            for (int i = 0; i < H * W * 3 && have; i++) {
                float v = P[i] * g + o;
                v = v < 0 ? 0 : v > 1 ? 1 : v;
                affine &= fabsf(A[i] - v) <= 1e-4f;
                one_sign &= milli > 0 ? A[i] >= P[i] : A[i] <= P[i];
            }
            for (int i = 0; i < H * W; i++) {
                float dmax = 0;
                for (int k = 0; k < 3; k++) {
                    float v = in.beta * P[i * 3 + k] + (1 - in.beta) * A[i * 3 + k];
                    float d = fabsf(I[i * 3 + k] - P[i * 3 + k]);
                    dmax = d > dmax ? d : dmax;
                    if (M[i] > 0) blended &= fabsf(I[i * 3 + k] - v) <= 1e-6f;
                }
                /* labelled pixels are visibly changed; unlabelled ones (outside the region, or
                 * pruned inside it) are not */
                labels &= M[i] > 0 ? dmax >= 0.5f / 255.0f : dmax < 0.5f / 255.0f;
                if (pass) grey &= I[i * 3] == I[i * 3 + 1] && I[i * 3] == I[i * 3 + 2];
            }
        }
    }
    CHECK(count == 2 * NS, "intensity_source_prob 1: every defect's source is the part darker or lighter (%d of %d)",
          count, 2 * NS);
    CHECK(affine && one_sign, "the source is clamp(N * gain + offset) for one gain and offset, changing one way");
    CHECK(sizes && darker > 5 && lighter > 5, "changes of 150..500/1000 of full scale, both darker (%d) and lighter (%d)",
          darker, lighter);
    CHECK(blended && labels, "pasted by the blend rule; exactly the visibly changed pixels labelled");
    CHECK(grey, "a grey part stays grey");
    CHECK(same_again, "intensity-source samples deterministic");
    /* a binary part: no intensity defects, and the same samples as with the option off */
    for (int i = 0; i < H * W; i++) B[i * 3] = B[i * 3 + 1] = B[i * 3 + 2] = N[i * 3] > 0.5f ? 1.0f : 0.0f;
    dd_synth_config c0 = cfg;
    c0.intensity_source_prob = 0;
    CHECK(dd_synth_create(NULL, &c0, &off, &e) == DD_OK, "create without intensity sources: %s", e.msg);
    int binary_same = 1, binary_none = 1;
    for (int t = 0; t < NS; t++) {
        float l, l2;
        dd_synth_info in;
        dd_synth_apply(s, B, NULL, 9, (uint64_t)t, I, M, &l, NULL, &in, NULL);
        dd_synth_apply(off, B, NULL, 9, (uint64_t)t, I2, M2, &l2, NULL, NULL, NULL);
        binary_none &= in.source != DD_SRC_INTENSITY;
        binary_same &= memcmp(I, I2, sizeof I) == 0 && memcmp(M, M2, sizeof M) == 0 && l == l2;
    }
    CHECK(binary_none && binary_same, "binary parts: no intensity defects, samples as with the option off");
    dd_synth_free(off);
    dd_synth_free(s);
    cfg.intensity_source_prob = 1.5f;
    CHECK(dd_synth_create(NULL, &cfg, &s, &e) == DD_E_RANGE, "intensity_source_prob 1.5 refused: %s", e.msg);
}

/* ---- with a dataset on disk: foreground files, textures, feeder ------------------------- */
static void mkdirs(const char *p) {
    char b[600];
    snprintf(b, sizeof b, "%s", p);
    for (char *q = b + 1; *q; q++)
        if (*q == '/') {
            *q = 0;
            mkdir(b, 0755);
            *q = '/';
        }
    mkdir(b, 0755);
}

static const char *P(const char *fmt, int i) {
    static char buf[4][600];
    static int k;
    char *b = buf[k++ & 3];
    char name[256];
    snprintf(name, sizeof name, fmt, i);
    snprintf(b, 600, "%s/%s", tmpdir, name);
    return b;
}

static void make_fixture(int n_train) {
    mkdirs(P("cat/train/good", 0));
    mkdirs(P("cat/foreground", 0));
    mkdirs(P("tex/sub", 0));
    int h = 30, w = 40;
    float *img = malloc(sizeof(float) * h * w * 3);
    for (int i = 0; i < n_train; i++) {
        disc_image(img, NULL, h, w, 9.0f, (unsigned)i + 10);
        dd_write_png_rgb8(P("cat/train/good/%03d.png", i), img, h, w, NULL);
    }
    float half[30 * 40];
    for (int i = 0; i < h * w; i++) half[i] = (i % w) < w / 2 ? 1.0f : 0.0f;
    dd_write_png_gray8(P("cat/foreground/%03d.png", 1), half, h, w, NULL);
    for (int i = 0; i < 30 * 40 * 3; i++) img[i] = (float)((i * 13) % 17) / 16.0f;
    dd_write_png_rgb8(P("tex/a.png", 0), img, 30, 40, NULL);
    dd_write_png_rgb8(P("tex/sub/b.png", 0), img, 6, 5, NULL); /* small: tiled */
    free(img);
}

static void test_with_dataset(void) {
    make_fixture(10);
    dd_dataset *ds;
    dd_error e = {0};
    CHECK(dd_dataset_open(P("cat", 0), &ds, &e) == DD_OK, "open fixture: %s", e.msg);
    if (!ds) return;
    CHECK(ds->n_train == 10 && ds->train[1].fg_path && !ds->train[0].fg_path,
          "foreground file attached to item 1 only");
    dd_synth_config cfg;
    dd_synth_config_init(&cfg);
    cfg.h = 32;
    cfg.w = 32;
    cfg.texture_dir = P("tex", 0);
    cfg.mode = DD_SYNTH_TEXTURE;
    cfg.fg_mode = DD_FG_ESTIMATE;
    dd_synth *s;
    CHECK(dd_synth_create(ds, &cfg, &s, &e) == DD_OK, "synth with textures: %s", e.msg);
    if (s) {
        CHECK(dd_synth_n_textures(s) == 2, "two textures found recursively");
        uint8_t fg[32 * 32];
        dd_synth_foreground(s, 1, fg, &e);
        int left = 1;
        for (int i = 0; i < 32 * 32; i++) left &= fg[i] == ((i % 32) < 16);
        CHECK(left, "user foreground file takes precedence over the estimate");
        float img[32 * 32 * 3], m[32 * 32], l;
        int inside = 1, tex = 0;
        for (int t = 0; t < 60; t++) {
            dd_synth_info in;
            dd_synth_sample(s, 1, 7, (uint64_t)t, img, m, &l, NULL, &in, &e);
            for (int i = 0; i < 32 * 32; i++) inside &= !(m[i] > 0) || (i % 32) < 16;
            tex += in.source == DD_SRC_TEXTURE;
        }
        CHECK(inside, "samples of item 1 stay in its user foreground");
        CHECK(tex > 10, "texture-folder sources used (%d)", tex);
        CHECK(dd_synth_sample(s, 10, 7, 0, img, m, &l, NULL, NULL, &e) == DD_E_RANGE,
              "item out of range");
        dd_synth_free(s);
    }
    cfg.texture_dir = P("no-such-dir", 0);
    CHECK(dd_synth_create(ds, &cfg, &s, &e) == DD_E_IO && strstr(e.msg, "no-such-dir"),
          "missing texture folder named: %s", e.msg);

    /* feeder: same batches for 0, 1 and 3 workers */
    cfg.texture_dir = NULL;
    cfg.mode = DD_SYNTH_OBJECT;
    cfg.fg_mode = DD_FG_AUTO;
    int B = 4, nb = 6;
    size_t per = (size_t)B * 32 * 32;
    float *ref_i = malloc(sizeof(float) * per * 3 * nb), *ref_m = malloc(sizeof(float) * per * nb);
    float ref_l[4 * 6];
    int ref_items[4 * 6];
    int idx[8] = {0, 1, 2, 3, 5, 6, 8, 9};
    for (int workers = 0; workers <= 3; workers += (workers == 0 ? 1 : 2)) {
        dd_feeder *f;
        CHECK(dd_feeder_create(ds, idx, 8, &cfg, B, workers, 2024, &f, &e) == DD_OK,
              "feeder (%d workers): %s", workers, e.msg);
        if (!f) continue;
        int same = 1, perm_ok = 1;
        for (int k = 0; k < nb; k++) {
            dd_batch b;
            if (dd_feeder_next(f, &b, &e) != DD_OK) {
                CHECK(0, "next: %s", e.msg);
                break;
            }
            same &= b.index == k && b.n == B && b.epoch == (long)k * B / 8;
            if (workers == 0) {
                memcpy(ref_i + per * 3 * k, b.images, sizeof(float) * per * 3);
                memcpy(ref_m + per * k, b.masks, sizeof(float) * per);
                memcpy(ref_l + B * k, b.labels, sizeof(float) * B);
                memcpy(ref_items + B * k, b.items, sizeof(int) * B);
            } else {
                same &= memcmp(ref_i + per * 3 * k, b.images, sizeof(float) * per * 3) == 0;
                same &= memcmp(ref_m + per * k, b.masks, sizeof(float) * per) == 0;
                same &= memcmp(ref_l + B * k, b.labels, sizeof(float) * B) == 0;
                same &= memcmp(ref_items + B * k, b.items, sizeof(int) * B) == 0;
            }
        }
        /* each epoch (8 samples = 2 batches) is a permutation of the index list */
        for (int ep = 0; ep < 3; ep++) {
            int seen = 0;
            for (int j = 0; j < 8; j++) seen |= 1 << ref_items[ep * 8 + j];
            perm_ok &= seen == ((1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 6) |
                                (1 << 8) | (1 << 9));
        }
        CHECK(same, "%d workers: batches bit-identical to the synchronous feeder", workers);
        CHECK(perm_ok, "every epoch visits each listed item once");
        dd_feeder_free(f);
    }
    int differ_epochs = memcmp(ref_items, ref_items + 8, sizeof(int) * 8) != 0;
    CHECK(differ_epochs, "epochs are shuffled differently");
    free(ref_i);
    free(ref_m);

    /* a corrupt training image surfaces through dd_feeder_next, named */
    FILE *fp = fopen(P("cat/train/good/%03d.png", 4), "wb");
    if (fp) {
        fputs("garbage", fp);
        fclose(fp);
    }
    dd_feeder *f;
    if (dd_feeder_create(ds, NULL, 0, &cfg, 5, 2, 1, &f, &e) == DD_OK) {
        dd_batch b;
        int rc = DD_OK;
        for (int k = 0; k < 6 && rc == DD_OK; k++) rc = dd_feeder_next(f, &b, &e);
        CHECK(rc == DD_E_FORMAT && strstr(e.msg, "004.png"), "worker error reported: %s", e.msg);
        dd_feeder_free(f);
    }
    CHECK(dd_feeder_create(ds, NULL, 0, &cfg, 0, 2, 1, &f, &e) == DD_E_RANGE, "batch 0 refused");
    dd_dataset_free(ds);
}

/* Crops (work_scale > 0): a normal sample is a model-size window of the image at its
 * working size, at a position that varies with the sample index and reaches both edges;
 * the same (seed, index) gives the same crop; a user foreground is cropped with the image;
 * a scale below 1 shrinks the image first; an image smaller than the model is stretched. */
static void test_crops(void) {
    mkdirs(P("big/train/good", 0));
    mkdirs(P("big/foreground", 0));
    const int H = 48, W = 80;
    float *img = malloc(sizeof(float) * H * W * 3), fgimg[48 * 80];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int k = 0; k < 3; k++) img[(y * W + x) * 3 + k] = (float)((x * 37 + y * 101 + x * y * 13 + k * 7) % 251) / 250.0f;
    dd_write_png_rgb8(P("big/train/good/%03d.png", 0), img, H, W, NULL);
    for (int i = 0; i < H * W; i++) fgimg[i] = (i % W) < W / 2 ? 1.0f : 0.0f;
    dd_write_png_gray8(P("big/foreground/%03d.png", 0), fgimg, H, W, NULL);
    dd_image full = {0};
    dd_error e = {0};
    dd_image_load_rgb(P("big/train/good/%03d.png", 0), &full, &e);
    dd_dataset *ds = NULL;
    CHECK(dd_dataset_open(P("big", 0), &ds, &e) == DD_OK, "open crop fixture: %s", e.msg);
    if (!ds || !full.data) { free(img); dd_image_free(&full); return; }
    dd_synth_config cfg;
    dd_synth_config_init(&cfg);
    cfg.h = 32, cfg.w = 32, cfg.work_scale = 1.0f, cfg.normal_prob = 1.0f, cfg.fg_mode = DD_FG_AUTO;
    dd_synth *s = NULL;
    CHECK(dd_synth_create(ds, &cfg, &s, &e) == DD_OK, "synth with crops: %s", e.msg);
    float crop[32 * 32 * 3], again[32 * 32 * 3], m[32 * 32], l;
    int found_all = 1, min_x = W, max_x = 0, min_y = H, max_y = 0;
    for (int t = 0; s && t < 40; t++) {
        dd_synth_sample(s, 0, 3, (uint64_t)t, crop, m, &l, NULL, NULL, &e);
        int hit = 0;
        for (int y0 = 0; y0 <= H - 32 && !hit; y0++)
            for (int x0 = 0; x0 <= W - 32 && !hit; x0++) {
                int same = 1;
                for (int y = 0; y < 32 && same; y++)
                    for (int x = 0; x < 32 * 3 && same; x++)
                        same = fabsf(crop[y * 96 + x] - full.data[((y0 + y) * W + x0) * 3 + x]) < 1e-4f;
                if (same) {
                    hit = 1;
                    min_x = x0 < min_x ? x0 : min_x, max_x = x0 > max_x ? x0 : max_x;
                    min_y = y0 < min_y ? y0 : min_y, max_y = y0 > max_y ? y0 : max_y;
                }
            }
        found_all &= hit;
    }
    CHECK(found_all, "every normal sample is a 32x32 window of the native image");
    CHECK(min_x < 10 && max_x > W - 32 - 10 && min_y < 6 && max_y > H - 32 - 6,
          "crop positions spread over the image (x %d..%d, y %d..%d)", min_x, max_x, min_y, max_y);
    if (s) {
        dd_synth_sample(s, 0, 3, 5, crop, m, &l, NULL, NULL, &e);
        dd_synth_sample(s, 0, 3, 5, again, m, &l, NULL, NULL, &e);
        CHECK(!memcmp(crop, again, sizeof crop), "same (seed, index), same crop");
        float nrm[32 * 32 * 3];
        CHECK(dd_synth_normal(s, 0, 3, 5, nrm, &e) == DD_OK && !memcmp(nrm, crop, sizeof crop),
              "dd_synth_normal gives the crop the sample starts from");
        dd_synth_free(s);
    }
    /* defects stay inside the cropped foreground (left half of the image) */
    cfg.normal_prob = 0.0f;
    cfg.fg_mode = DD_FG_AUTO;
    s = NULL;
    CHECK(dd_synth_create(ds, &cfg, &s, &e) == DD_OK, "synth: %s", e.msg);
    int inside = 1, pasted = 0;
    for (int t = 0; s && t < 40; t++) {
        dd_synth_sample(s, 0, 9, (uint64_t)t, crop, m, &l, NULL, NULL, &e);
        float nrm[32 * 32 * 3];
        dd_synth_normal(s, 0, 9, (uint64_t)t, nrm, &e);
        /* locate the crop: the fixture pattern is unique per position */
        pasted += l > 0.5f;
        int x0 = -1;
        for (int c = 0; c <= W - 32 && x0 < 0; c++) {
            int ok = 1;
            for (int y0 = 0; y0 <= H - 32 && ok; y0++) {
                ok = 1;
                for (int x = 0; x < 32 && ok; x++) ok = fabsf(nrm[x * 3] - full.data[(y0 * W + c + x) * 3]) < 1e-4f;
                if (ok) x0 = c;
                ok = x0 < 0;
            }
        }
        for (int i = 0; i < 32 * 32 && x0 >= 0; i++) inside &= !(m[i] > 0) || x0 + (i % 32) < W / 2;
    }
    CHECK(pasted > 20 && inside, "crop defects inside the cropped user foreground (%d pasted)", pasted);
    dd_synth_free(s);
    /* scale 0.5: the 48x80 image becomes 32x40 (the short side stretched to the model's 32) */
    cfg.normal_prob = 1.0f, cfg.work_scale = 0.5f;
    s = NULL;
    CHECK(dd_synth_create(ds, &cfg, &s, &e) == DD_OK, "synth at 0.5: %s", e.msg);
    if (s) {
        dd_image small = {0};
        dd_image_resized(&full, 32, 40, &small, &e);
        int found = 1;
        for (int t = 0; t < 10; t++) {
            dd_synth_sample(s, 0, 1, (uint64_t)t, crop, m, &l, NULL, NULL, &e);
            int hit = 0;
            for (int x0 = 0; x0 <= 8 && !hit; x0++) {
                int same = 1;
                for (int y = 0; y < 32 && same; y++)
                    for (int x = 0; x < 96 && same; x++) same = fabsf(crop[y * 96 + x] - small.data[(y * 40 + x0) * 3 + x]) < 1e-4f;
                hit = same;
            }
            found &= hit;
        }
        CHECK(found, "scale 0.5: crops are windows of the image resized to 32x40");
        dd_image_free(&small);
        dd_synth_free(s);
    }
    free(img);
    dd_image_free(&full);
    dd_dataset_free(ds);
}

/* Binary parts (a binarised board: only 0 and 1): the pasted defect is thresholded, so many
 * pixels of its Perlin region keep their value. binary_changed_mask 1 labels only the changed
 * ones: same draws and images as 0 (the RNG stream is untouched), the mask a subset of the
 * region, every labelled pixel changed, every changed pixel labelled; a paste that changed
 * nothing is a normal sample with label 0. */
static void test_binary_changed_mask(void) {
    int h = 48, w = 40;
    size_t n = (size_t)h * w;
    float *N = malloc(sizeof(float) * n * 3), *I0 = malloc(sizeof(float) * n * 3), *I1 = malloc(sizeof(float) * n * 3),
          *M0 = malloc(sizeof(float) * n), *M1 = malloc(sizeof(float) * n);
    for (int y = 0; y < h; y++) /* tracks: vertical stripes of 1 on 0 */
        for (int x = 0; x < w; x++)
            for (int k = 0; k < 3; k++) N[((size_t)y * w + x) * 3 + k] = (x / 3) % 2 ? 1.0f : 0.0f;
    dd_synth_config c0, c1;
    dd_synth_config_init(&c0);
    c0.h = h, c0.w = w, c0.fg_mode = DD_FG_NONE, c0.normal_prob = 0;
    c1 = c0;
    c1.binary_changed_mask = 1;
    dd_synth *s0 = NULL, *s1 = NULL;
    dd_error e = {0};
    CHECK(dd_synth_create(NULL, &c0, &s0, &e) == DD_OK && dd_synth_create(NULL, &c1, &s1, &e) == DD_OK, "create: %s", e.msg);
    int same_img = 1, subset = 1, changed_ok = 1, labels_ok = 1, smaller = 0, n_anom = 0;
    for (int t = 0; s0 && s1 && t < 200; t++) {
        float l0, l1;
        dd_synth_info i0, i1;
        dd_synth_apply(s0, N, NULL, 77, (uint64_t)t, I0, M0, &l0, NULL, &i0, NULL);
        dd_synth_apply(s1, N, NULL, 77, (uint64_t)t, I1, M1, &l1, NULL, &i1, NULL);
        same_img &= !memcmp(I0, I1, n * 3 * sizeof(float));
        long cnt = 0, cnt0 = 0;
        for (size_t i = 0; i < n; i++) {
            int changed = I1[i * 3] != N[i * 3];
            subset &= M1[i] == 0.0f || M0[i] != 0.0f;
            changed_ok &= (M1[i] != 0.0f) == changed;
            cnt += M1[i] != 0.0f, cnt0 += M0[i] != 0.0f;
        }
        labels_ok &= i1.mask_pixels == cnt && l1 == (cnt > 0 ? 1.0f : 0.0f) && i1.anomalous == (cnt > 0) &&
                     (l0 == 0.0f || i0.mask_pixels == cnt0);
        smaller += cnt < cnt0;
        n_anom += cnt > 0;
    }
    CHECK(same_img, "binary_changed_mask changes the labels, never the images");
    CHECK(subset, "the changed-pixel mask lies inside the Perlin region");
    CHECK(changed_ok, "labelled exactly where the paste changed a pixel");
    CHECK(labels_ok, "mask_pixels, label and anomalous agree with the mask");
    CHECK(smaller > 20 && n_anom > 20, "the region mask overstates the change (%d of 200 smaller; %d anomalous)", smaller, n_anom);
    /* grey but not binary images keep the whole region */
    for (size_t i = 0; i < n * 3; i++) N[i] = 0.3f + 0.4f * (float)((i / 3) % 7) / 7.0f;
    int whole = 1;
    for (int t = 0; s1 && t < 50; t++) {
        float l0, l1;
        dd_synth_apply(s0, N, NULL, 5, (uint64_t)t, I0, M0, &l0, NULL, NULL, NULL);
        dd_synth_apply(s1, N, NULL, 5, (uint64_t)t, I1, M1, &l1, NULL, NULL, NULL);
        whole &= !memcmp(M0, M1, n * sizeof(float)) && l0 == l1;
    }
    CHECK(whole, "non-binary images: the option changes nothing");
    dd_synth_free(s0), dd_synth_free(s1);
    free(N), free(I0), free(I1), free(M0), free(M1);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dd_test_synth_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp");
        return check_summary("test_synth");
    }
    test_rng();
    test_augment();
    test_strips();
    test_perlin();
    test_foreground();
    test_synth_apply();
    test_binary_changed_mask();
    test_stroke();
    test_shift_source();
    test_intensity_source();
    test_with_dataset();
    test_crops();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_summary("test_synth");
}
