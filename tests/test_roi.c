/* test_roi.c — the region of interest (issue 13 item 3): model/roi.h, infer/roi_file.h, the
 * scorer, the model file, calibration, the C API and the CLI.
 * - resampling: the half-the-area rule against a brute-force sum over every stored pixel
 *   (and a floating-point coverage away from exact ties) on random masks scaled up, down and
 *   sideways, plus hand-made cases (copy, replication, the tie at exactly half, a mask that
 *   vanishes);
 * - ROI images: nonzero in any channel = inspected (grey, RGB, 16-bit); all-black, missing and
 *   non-image files refused naming the file, the previous ROI kept;
 * - the scorer, fit model: with an ROI that ignores the unmasked map's peak, the map equals
 *   the model's without ROI inside it and is 0 outside (input and working size, bit for bit),
 *   the score is the top-k of the masked working map and drops;
 * - the scorer and the API, tiled model: a strong defect inside the ignored strip changes
 *   nothing (maps, score, regions, decision bit for bit) while, without the ROI, it changes
 *   the map; regions lie inside the ROI;
 * - model file: the mask survives save / load bit for bit (and a re-save is byte-identical),
 *   a file without one loads as none, corrupt entries (dtype, shape, size, values, all zero,
 *   truncated, misnamed) are refused with DD_E_FORMAT / DIFFAD_E_FORMAT naming roi.mask;
 * - calibration: the pixel threshold is the quantile over the inspected pixels only, the
 *   image threshold that of predict's scores;
 * - CLI: train --roi stores it; calibrate --roi sets it and recalibrates (= dd_calibrate with
 *   that ROI); predict's score and saved map follow it; calibrate --roi none removes it; a
 *   missing, all-black or vanishing --roi exits 2 with one line naming the file, leaving the
 *   model byte-unchanged and train writing nothing;
 * - the trainer: --roi held from create, written into the checkpoint of an interrupted run, and
 *   a resume without --roi puts the checkpoint's ROI into the model file.
 * Uses tiny random models (32x32) and, for the CLI, 4 images of the bundled sample. */
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "live_model.h"
#include "diffad.h"
#include "data/dataset.h"
#include "data/image.h"
#include "eval/metrics.h"
#include "infer/roi_file.h"
#include "infer/scorer.h"
#include "model/model.h"
#include "model/modelfile.h"
#include "model/roi.h"
#include "train/calibrate.h"
#include "train/settings.h"
#include "train/trainer.h"

#define HW 32

static char g_dir[256], g_cli[1024];
static const char *g_data;

static void path_in(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", g_dir, name); }

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static uint64_t g_rng = 12345;
static unsigned rnd(void) {
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)(g_rng >> 33);
}

/* ---- resampling against brute force ---- */

/* The rule written out over every stored pixel: the output pixel's rectangle in stored
 * coordinates, [oy*H/h, (oy+1)*H/h) x [ox*W/w, (ox+1)*W/w), scaled by h (y) and w (x) to
 * integers; inspected when the inspected overlap is at least half its area (H*W in those
 * units). *ties counts the output pixels at exactly half; *float_bad those where the
 * floating-point coverage (a different computation) disagrees away from a tie. */
static void naive_resample(const uint8_t *m, int H, int W, int h, int w, uint8_t *out, int *ties, int *float_bad) {
    for (int oy = 0; oy < h; oy++)
        for (int ox = 0; ox < w; ox++) {
            unsigned long long in = 0;
            double cov = 0;
            for (int iy = 0; iy < H; iy++)
                for (int ix = 0; ix < W; ix++) {
                    if (!m[(size_t)iy * W + ix]) continue;
                    long a = (long)oy * H > (long)iy * h ? (long)oy * H : (long)iy * h;
                    long b = (long)(oy + 1) * H < (long)(iy + 1) * h ? (long)(oy + 1) * H : (long)(iy + 1) * h;
                    long c = (long)ox * W > (long)ix * w ? (long)ox * W : (long)ix * w;
                    long d = (long)(ox + 1) * W < (long)(ix + 1) * w ? (long)(ox + 1) * W : (long)(ix + 1) * w;
                    if (b > a && d > c) in += (unsigned long long)(b - a) * (unsigned long long)(d - c);
                    /* the same overlap in stored-pixel units, in floating point */
                    double y0 = (double)oy * H / h, y1 = (double)(oy + 1) * H / h;
                    double x0 = (double)ox * W / w, x1 = (double)(ox + 1) * W / w;
                    double oyl = fmin(y1, iy + 1.0) - fmax(y0, (double)iy), oxl = fmin(x1, ix + 1.0) - fmax(x0, (double)ix);
                    if (oyl > 0 && oxl > 0) cov += oyl * oxl;
                }
            unsigned long long whole = (unsigned long long)H * W;
            out[(size_t)oy * w + ox] = 2 * in >= whole;
            cov /= ((double)H / h) * ((double)W / w);
            if (2 * in == whole) (*ties)++;
            else if ((cov >= 0.5) != (2 * in >= whole)) (*float_bad)++;
        }
}

static void test_resample_rule(void) {
    const int src[][2] = {{1, 1}, {2, 3}, {3, 2}, {7, 5}, {16, 16}, {13, 29}};
    const int dst[][2] = {{1, 1}, {2, 3}, {5, 7}, {16, 16}, {32, 32}, {9, 31}, {40, 11}, {13, 29}};
    int cases = 0, bad = 0, count_bad = 0, ties = 0, float_bad = 0;
    for (size_t a = 0; a < sizeof src / sizeof *src; a++)
        for (size_t b = 0; b < sizeof dst / sizeof *dst; b++)
            for (int rep = 0; rep < 3; rep++) {
                int H = src[a][0], W = src[a][1], h = dst[b][0], w = dst[b][1];
                uint8_t *m = malloc((size_t)H * W), *got = malloc((size_t)h * w), *want = malloc((size_t)h * w);
                uint64_t *acc = malloc((size_t)w * sizeof *acc);
                for (int i = 0; i < H * W; i++) m[i] = rep == 0 ? (rnd() % 2) : rep == 1 ? (rnd() % 4 == 0) : (rnd() % 4 != 0);
                m[0] = 1; /* never all zero */
                dd_roi r = {H, W, m, 0};
                long n = dd_roi_resample(&r, h, w, got, acc);
                naive_resample(m, H, W, h, w, want, &ties, &float_bad);
                long nw = 0;
                for (int i = 0; i < h * w; i++) nw += want[i];
                bad += memcmp(got, want, (size_t)h * w) != 0;
                count_bad += n != nw;
                cases++;
                free(m), free(got), free(want), free(acc);
            }
    CHECK(bad == 0 && count_bad == 0, "half-the-area rule equals the brute-force sum in %d of %d size pairs (%d counts wrong)",
          cases - bad, cases, count_bad);
    CHECK(float_bad == 0 && ties > 0, "floating-point coverage agrees away from exact ties (%d disagree; %d ties seen)",
          float_bad, ties);
    /* by hand */
    uint64_t acc[64];
    uint8_t o[64];
    uint8_t half[4] = {1, 1, 0, 0}, quarter[4] = {1, 0, 0, 0}, diag[4] = {1, 0, 0, 1};
    dd_roi r = {2, 2, half, 2};
    CHECK(dd_roi_resample(&r, 1, 1, o, acc) == 1 && o[0] == 1, "2 of 4 pixels: exactly half, inspected");
    r.mask = quarter;
    CHECK(dd_roi_resample(&r, 1, 1, o, acc) == 0 && o[0] == 0, "1 of 4 pixels: ignored");
    r.mask = diag;
    long n = dd_roi_resample(&r, 4, 4, o, acc);
    int rep_ok = n == 8;
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) rep_ok = rep_ok && o[y * 4 + x] == diag[(y / 2) * 2 + x / 2];
    CHECK(rep_ok, "2x upsampling replicates every pixel (%ld inspected)", n);
    n = dd_roi_resample(&r, 2, 2, o, acc);
    CHECK(n == 2 && !memcmp(o, diag, 4), "the same size copies the mask");
    uint8_t row1[3] = {1, 0, 0}, row2[3] = {0, 1, 0};
    dd_roi r3 = {1, 3, row1, 1};
    n = dd_roi_resample(&r3, 1, 2, o, acc);
    CHECK(n == 1 && o[0] == 1 && o[1] == 0, "3 -> 2: [1,0,0] -> [1,0] (coverage 2/3 and 0)");
    r3.mask = row2;
    n = dd_roi_resample(&r3, 1, 2, o, acc);
    CHECK(n == 0 && o[0] == 0 && o[1] == 0 && dd_roi_count_at(&r3, 1, 2) == 0,
          "3 -> 2: [0,1,0] vanishes (coverage 1/3 each side)");
    CHECK(dd_roi_resample(NULL, 2, 2, o, acc) == -1 && dd_roi_resample(&r, 0, 2, o, acc) == -1, "bad arguments: -1");
    /* checks */
    dd_error err = {0};
    uint8_t zeros[6] = {0}, two[4] = {0, 2, 1, 0};
    CHECK(dd_roi_check(zeros, 2, 3, "x", &err) == DD_E_FORMAT && strstr(err.msg, "ignores every pixel"), "all zero refused: %s",
          err.msg);
    CHECK(dd_roi_check(two, 2, 2, "x", &err) == DD_E_FORMAT && strstr(err.msg, "value 2"), "value 2 refused: %s", err.msg);
    CHECK(dd_roi_check(half, 0, 2, "x", &err) == DD_E_RANGE, "size 0 refused: %s", err.msg);
}

/* ---- ROI image files ---- */

static void test_roi_file(void) {
    char f[600], g[600], h16[600], black[600], txt[600], missing[600];
    path_in(f, sizeof f, "roi_grey.png");
    path_in(g, sizeof g, "roi_rgb.png");
    path_in(h16, sizeof h16, "roi_16.png");
    path_in(black, sizeof black, "roi_black.png");
    path_in(txt, sizeof txt, "roi_text.png");
    path_in(missing, sizeof missing, "no_such_roi.png");
    dd_error err = {0};
    /* grey 8-bit: 0 ignored, anything from 1/255 up inspected */
    float v[12];
    for (int i = 0; i < 12; i++) v[i] = (float)((i % 3) * (i % 5)) / 255.0f; /* several zeros, small and large values */
    v[5] = 1.0f;
    int ok = !dd_write_png_gray8(f, v, 3, 4, &err);
    float rgb[4 * 3] = {0, 0, 0, 0, 0, 1.0f / 255, 0, 0, 0, 1, 1, 1}; /* 2x2: black, blue 1, black, white */
    ok = ok && !dd_write_png_rgb8(g, rgb, 2, 2, &err);
    float w16[4] = {0, 1.0f / 65535, 0, 0};
    ok = ok && !dd_write_png_gray16(h16, w16, 2, 2, &err);
    float z[6] = {0};
    ok = ok && !dd_write_png_gray8(black, z, 2, 3, &err);
    FILE *t = fopen(txt, "w");
    if (t) fputs("this is not an image\n", t), fclose(t);
    CHECK(ok && t, "fixture files: %s", err.msg);
    dd_roi r = {0};
    int rc = dd_roi_load(f, &r, &err);
    int same = !rc && r.h == 3 && r.w == 4;
    long want_n = 0;
    for (int i = 0; same && i < 12; i++) same = r.mask[i] == (v[i] != 0), want_n += v[i] != 0;
    CHECK(same && r.inspected == want_n, "grey PNG: nonzero = inspected (%s)", err.msg);
    rc = dd_roi_load(g, &r, &err);
    CHECK(!rc && r.h == 2 && r.w == 2 && r.mask[0] == 0 && r.mask[1] == 1 && r.mask[2] == 0 && r.mask[3] == 1,
          "RGB PNG: a pixel with only blue = 1/255 is inspected (%s)", err.msg);
    rc = dd_roi_load(h16, &r, &err);
    CHECK(!rc && r.inspected == 1 && r.mask[1] == 1, "16-bit PNG: 1/65535 is inspected (%s)", err.msg);
    /* failures name the file and keep the previous ROI */
    dd_roi keep = {0};
    dd_roi_copy(&keep, &r, &err);
    rc = dd_roi_load(black, &r, &err);
    CHECK(rc == DD_E_FORMAT && strstr(err.msg, black) && strstr(err.msg, "all black"), "all-black ROI refused: %s", err.msg);
    rc = dd_roi_load(missing, &r, &err);
    CHECK(rc && strstr(err.msg, missing), "missing ROI file refused naming it: %s", err.msg);
    rc = dd_roi_load(txt, &r, &err);
    CHECK(rc == DD_E_FORMAT && strstr(err.msg, txt), "a text file named .png refused naming it: %s", err.msg);
    CHECK(dd_roi_equal(&r, &keep), "the previous ROI is kept after the failures");
    dd_roi_free(&r);
    dd_roi_free(&keep);
}

/* ---- scorer ---- */

static void tiny_config(dd_model_config *c, float tile_scale) {
    dd_model_config_paper(c, HW, HW);
    c->unet.base = 8, c->unet.levels = 2, c->unet.mult[0] = 1, c->unet.mult[1] = 2;
    c->unet.res_blocks = 1, c->unet.n_attn = 0, c->unet.heads = 1, c->unet.groups = 8;
    c->seg_width = 4;
    c->tile_scale = tile_scale;
}

static dd_model *tiny_model(float tile_scale) {
    dd_model_config c;
    tiny_config(&c, tile_scale);
    dd_model *m = NULL;
    dd_error err = {0};
    if (dd_model_create(&c, 1, 0, 1, &m, &err)) {
        fprintf(stderr, "tiny_model: %s\n", err.msg);
        return NULL;
    }
    dd_model_init_weights(m, 7);
    live_model_weights(m, 2.5f);
    return m;
}

/* A copy of m's weights and config in a new inference model (the ROI not copied). */
static dd_model *clone_model(const dd_model *m) {
    dd_model *c = NULL;
    dd_error err = {0};
    if (dd_model_create(&m->cfg, 1, 0, 1, &c, &err)) return NULL;
    memcpy(c->params.value, m->params.value, m->params.total * sizeof(float));
    return c;
}

static float *picture(int h, int w, int seed) {
    float *p = malloc((size_t)h * w * 3 * sizeof(float));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < 3; k++)
                p[((size_t)y * w + x) * 3 + k] = 0.5f + 0.3f * sinf(0.21f * x + k + seed) * cosf(0.17f * y - seed);
    return p;
}

typedef struct scored {
    double score;
    long k;
    float *map, *work;
    int h, w, wh, ww;
    uint8_t *roi, *work_roi;
    long roi_pixels;
} scored;

static int score_copy(dd_model *m, const float *img, int h, int w, scored *o) {
    memset(o, 0, sizeof *o);
    dd_scorer *s = NULL;
    dd_error err = {0};
    dd_score r;
    int rc = dd_scorer_create(m, NULL, &s, &err);
    if (!rc) rc = dd_scorer_run(s, img, h, w, &r, &err);
    if (rc) {
        fprintf(stderr, "score: %s\n", err.msg);
        dd_scorer_free(s);
        return rc;
    }
    o->score = r.score, o->k = r.k, o->h = r.h, o->w = r.w, o->wh = r.work_h, o->ww = r.work_w;
    o->roi_pixels = r.roi_pixels;
    size_t n = (size_t)h * w, nw = (size_t)r.work_h * r.work_w;
    o->map = malloc(n * sizeof(float)), o->work = malloc(nw * sizeof(float));
    memcpy(o->map, r.map, n * sizeof(float));
    memcpy(o->work, r.work_map, nw * sizeof(float));
    if (r.roi) {
        o->roi = malloc(n), o->work_roi = malloc(nw);
        memcpy(o->roi, r.roi, n);
        memcpy(o->work_roi, r.work_roi, nw);
    }
    dd_scorer_free(s);
    return 0;
}

static void scored_free(scored *o) { free(o->map), free(o->work), free(o->roi), free(o->work_roi); }

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* Fit model: the ROI ignores a patch around the unmasked working map's peak. */
static void test_scorer_fit(void) {
    dd_model *a = tiny_model(0), *b = a ? clone_model(a) : NULL;
    CHECK(a && b, "tiny models");
    if (!a || !b) {
        dd_model_free(a), dd_model_free(b);
        return;
    }
    const int ih = 40, iw = 48, RH = 20, RW = 24; /* image and stored ROI (the camera frame at half resolution) */
    float *img = picture(ih, iw, 1);
    scored A, B;
    CHECK(!score_copy(a, img, ih, iw, &A) && !A.roi && A.roi_pixels == ih * iw, "scored without ROI");
    long peak = 0;
    for (long i = 1; i < (long)A.wh * A.ww; i++)
        if (A.work[i] > A.work[peak]) peak = i;
    int py = (int)(peak / A.ww) * RH / A.wh, px = (int)(peak % A.ww) * RW / A.ww;
    uint8_t mask[RH * RW];
    for (int y = 0; y < RH; y++)
        for (int x = 0; x < RW; x++) mask[y * RW + x] = !(abs(y - py) <= 3 && abs(x - px) <= 3);
    dd_error err = {0};
    CHECK(!dd_roi_set(&b->roi, mask, RH, RW, "test", &err), "set the ROI: %s", err.msg);
    CHECK(!score_copy(b, img, ih, iw, &B) && B.roi && B.work_roi, "scored with the ROI");
    uint8_t *rin = malloc((size_t)ih * iw), *rwk = malloc((size_t)A.wh * A.ww);
    int ties = 0, fb = 0;
    naive_resample(mask, RH, RW, ih, iw, rin, &ties, &fb);
    naive_resample(mask, RH, RW, A.wh, A.ww, rwk, &ties, &fb);
    if (B.roi) {
        CHECK(!memcmp(B.roi, rin, (size_t)ih * iw) && !memcmp(B.work_roi, rwk, (size_t)A.wh * A.ww),
              "the ROI the scorer used equals the brute-force resampling at 48x40 and 32x32");
        long n_in = 0, in_ok = 1, work_ok = 1;
        for (long i = 0; i < (long)ih * iw; i++) {
            n_in += rin[i];
            in_ok &= rin[i] ? B.map[i] == A.map[i] : B.map[i] == 0.0f;
        }
        float *masked = malloc((size_t)A.wh * A.ww * sizeof(float));
        for (long i = 0; i < (long)A.wh * A.ww; i++) {
            masked[i] = rwk[i] ? A.work[i] : 0.0f;
            work_ok &= B.work[i] == masked[i];
        }
        CHECK(in_ok && B.roi_pixels == n_in, "input-size map: the unmasked map inside the ROI, 0 outside (bit for bit; %ld "
              "inspected)", n_in);
        CHECK(work_ok, "working-size map: the unmasked map inside the ROI, 0 outside (bit for bit)");
        double want = 0;
        CHECK(!dd_topk_mean(masked, (long)A.wh * A.ww, B.k, &want, &err) && B.score == want,
              "score = top-%ld mean of the masked working map: %.9g vs %.9g", B.k, B.score, want);
        qsort(masked, (size_t)A.wh * A.ww, sizeof(float), cmp_desc);
        double naive = 0;
        for (long i = 0; i < B.k; i++) naive += masked[i];
        naive /= (double)B.k;
        CHECK(fabs(naive - B.score) <= 1e-6 * fabs(naive), "score vs a naive sorted top-k: %.9g vs %.9g", B.score, naive);
        CHECK(B.score < A.score, "ignoring the peak lowers the score: %.9g -> %.9g", A.score, B.score);
        free(masked);
    }
    /* a model whose ROI covers nothing at the image size: refused, not scored as 0 */
    uint8_t one[64 * 64] = {0};
    one[0] = 1;
    dd_model *c = clone_model(a);
    dd_scorer *s = NULL;
    dd_score r;
    CHECK(c && !dd_roi_set(&c->roi, one, 64, 64, "test", &err) && !dd_scorer_create(c, NULL, &s, &err) &&
              dd_scorer_run(s, img, ih, iw, &r, &err) == DD_E_RANGE && strstr(err.msg, "covers no pixel"),
          "an ROI vanishing at the image size is refused: %s", err.msg);
    dd_scorer_free(s);
    dd_model_free(c);
    free(rin), free(rwk), free(img);
    scored_free(&A), scored_free(&B);
    dd_model_free(a), dd_model_free(b);
}

/* Save m (with its ROI and the given thresholds) to path. */
static int save_calibrated(dd_model *m, const char *path, float pix_thr, float img_thr) {
    dd_error err = {0};
    dd_model_config keep = m->cfg;
    m->cfg.pixel_threshold = pix_thr, m->cfg.image_threshold = img_thr;
    m->cfg.score_lo = img_thr * 0.5f, m->cfg.score_hi = img_thr;
    int rc = dd_model_save(m, path, 0, NULL, 0, &err);
    if (rc) fprintf(stderr, "save %s: %s\n", path, err.msg);
    m->cfg = keep;
    return rc;
}

static diffad_ctx *open_model(const char *path) {
    diffad_params p;
    diffad_params_init(&p);
    p.threads = 1;
    diffad_ctx *c = NULL;
    char msg[600];
    if (diffad_create(path, &p, &c, msg, sizeof msg)) fprintf(stderr, "diffad_create: %s\n", msg);
    return c;
}

/* Tiled model: a strong defect inside the ignored strip, far enough from the ROI that no tile
 * seeing it reaches inspected pixels, changes nothing. */
static void test_scorer_tiled(void) {
    dd_model *t = tiny_model(1.0f), *tr = t ? clone_model(t) : NULL;
    CHECK(t && tr, "tiny tiled models");
    if (!t || !tr) {
        dd_model_free(t), dd_model_free(tr);
        return;
    }
    const int ih = 64, iw = 128, RH = 32, RW = 64, IGN = 40; /* ROI at half resolution; x < IGN ignored */
    const int dy = 20, dx = 4, ds = 6;                         /* the defect */
    float *i0 = picture(ih, iw, 2), *i1 = picture(ih, iw, 2);
    for (int y = dy; y < dy + ds; y++)
        for (int x = dx; x < dx + ds; x++)
            for (int k = 0; k < 3; k++) i1[((size_t)y * iw + x) * 3 + k] = ((x + y) % 2) ? 1.0f : 0.0f;
    /* precondition: every tile that sees the defect ends left of the ROI */
    int pos[64], n = dd_tile_positions(iw, HW, t->cfg.tile_overlap, pos, 64), reach = 0;
    for (int i = 0; i < n; i++)
        if (pos[i] < dx + ds && pos[i] + HW > dx && pos[i] + HW > reach) reach = pos[i] + HW;
    CHECK(n > 1 && reach > 0 && reach <= IGN, "the tiles seeing the defect end at x = %d <= %d (%d tiles per row)", reach,
          IGN, n);
    uint8_t mask[RH * RW];
    for (int y = 0; y < RH; y++)
        for (int x = 0; x < RW; x++) mask[y * RW + x] = x * 2 >= IGN;
    dd_error err = {0};
    CHECK(!dd_roi_set(&tr->roi, mask, RH, RW, "test", &err), "%s", err.msg);
    scored a0, a1, b0, b1;
    int ok = !score_copy(t, i0, ih, iw, &a0) && !score_copy(t, i1, ih, iw, &a1) && !score_copy(tr, i0, ih, iw, &b0) &&
             !score_copy(tr, i1, ih, iw, &b1);
    CHECK(ok && a0.wh == ih && a0.ww == iw, "scored (working size %dx%d = the input's)", a0.ww, a0.wh);
    if (ok) {
        size_t nn = (size_t)ih * iw;
        CHECK(memcmp(a0.map, a1.map, nn * sizeof(float)) != 0, "without the ROI the defect changes the map");
        CHECK(!memcmp(b0.map, b1.map, nn * sizeof(float)) && b0.score == b1.score,
              "with the ROI the defect changes neither map nor score (%.9g vs %.9g; without ROI %.9g vs %.9g)", b0.score,
              b1.score, a0.score, a1.score);
        int zero_ok = 1, same_ok = 1;
        for (int y = 0; y < ih; y++)
            for (int x = 0; x < iw; x++) {
                size_t i = (size_t)y * iw + x;
                if (x < IGN) zero_ok &= b1.map[i] == 0.0f;
                else same_ok &= b1.map[i] == a1.map[i];
            }
        CHECK(zero_ok && same_ok, "map 0 in the ignored strip, the unmasked map elsewhere");
        /* the API: regions and decision of a calibrated model, both images */
        float thr_pix = 0;
        {
            float *v = malloc(nn * sizeof(float));
            size_t k = 0;
            for (int y = 0; y < ih; y++)
                for (int x = IGN; x < iw; x++) v[k++] = a0.map[(size_t)y * iw + x];
            qsort(v, k, sizeof(float), cmp_desc);
            thr_pix = v[k / 20]; /* the top 5 % of the inspected pixels: some regions */
            free(v);
        }
        char path[600], path_no[600];
        path_in(path, sizeof path, "tiled_roi.safetensors");
        path_in(path_no, sizeof path_no, "tiled_noroi.safetensors");
        ok = !save_calibrated(tr, path, thr_pix, (float)b0.score * 0.99f) &&
             !save_calibrated(t, path_no, thr_pix, (float)b0.score * 0.99f);
        diffad_ctx *c = ok ? open_model(path) : NULL, *cn = ok ? open_model(path_no) : NULL;
        CHECK(c && cn, "API contexts");
        if (c && cn) {
            int rw = 0, rh = 0;
            CHECK(diffad_roi(c, &rw, &rh) == 1 && rw == RW && rh == RH, "diffad_roi: %dx%d", rw, rh);
            CHECK(diffad_roi(cn, &rw, &rh) == 0 && rw == 0 && rh == 0 && !diffad_roi_mask(cn), "no ROI: diffad_roi 0");
            CHECK(!diffad_roi_mask(c), "no mask before a prediction");
            diffad_image d0 = {i0, iw, ih, 3, (size_t)iw * 3 * sizeof(float), DIFFAD_F32};
            diffad_image d1 = {i1, iw, ih, 3, (size_t)iw * 3 * sizeof(float), DIFFAD_F32};
            diffad_result r0, r1;
            diffad_region g0[64];
            int n0 = 0;
            long f0 = 0;
            float s0 = 0;
            int ng0 = 0, api_ok = !diffad_predict(c, &d0, &r0);
            if (api_ok) {
                n0 = r0.n_regions, f0 = r0.regions_found, s0 = r0.score, ng0 = r0.is_ng;
                memcpy(g0, r0.regions, (size_t)(n0 < 64 ? n0 : 64) * sizeof *g0);
                CHECK(r0.score == (float)b0.score && !memcmp(r0.map, b0.map, nn * sizeof(float)),
                      "the API returns the scorer's masked map and score");
            }
            api_ok = api_ok && !diffad_predict(c, &d1, &r1);
            CHECK(api_ok, "API predictions: %s", diffad_error(c));
            if (api_ok) {
                CHECK(f0 > 0, "the calibrated model finds regions (%ld)", f0);
                CHECK(r1.score == s0 && r1.is_ng == ng0 && r1.regions_found == f0 && r1.n_regions == n0 &&
                          !memcmp(r1.regions, g0, (size_t)n0 * sizeof *g0),
                      "regions and decision unchanged by the defect in the ignored strip (%ld / %ld regions)", f0,
                      r1.regions_found);
                int inside = 1;
                for (int i = 0; i < r1.n_regions; i++) inside &= r1.regions[i].x >= IGN;
                CHECK(inside, "every region lies inside the ROI");
                const unsigned char *m = diffad_roi_mask(c);
                int mask_ok = m != NULL;
                for (int y = 0; mask_ok && y < ih; y++)
                    for (int x = 0; x < iw; x++) mask_ok &= m[(size_t)y * iw + x] == (x >= IGN);
                CHECK(mask_ok, "diffad_roi_mask: the ROI at the image size");
                /* any size: the same rule (dd_roi_resample) as the map's mask, e.g. the test report's display size */
                unsigned char *at = malloc((size_t)iw * ih), *ref = malloc((size_t)iw * ih);
                uint64_t *acc = malloc((size_t)iw * sizeof *acc);
                if (at && ref && acc) {
                    CHECK(diffad_roi_mask_at(c, iw, ih, at) == 1 && !memcmp(at, m, (size_t)iw * ih),
                          "diffad_roi_mask_at at the image size = diffad_roi_mask");
                    int dw = iw / 3 + 1, dh = ih / 2 + 1;
                    long n_ref = dd_roi_resample(&tr->roi, dh, dw, ref, acc);
                    CHECK(n_ref > 0 && diffad_roi_mask_at(c, dw, dh, at) == 1 && !memcmp(at, ref, (size_t)dw * dh),
                          "diffad_roi_mask_at %dx%d = dd_roi_resample", dw, dh);
                    memset(at, 7, 4);
                    CHECK(diffad_roi_mask_at(cn, 2, 2, at) == 0 && at[0] == 7, "no ROI: diffad_roi_mask_at 0, dst untouched");
                    CHECK(diffad_roi_mask_at(c, 0, 2, at) == DIFFAD_E_INVALID && diffad_roi_mask_at(c, 2, -1, at) == DIFFAD_E_INVALID &&
                              diffad_roi_mask_at(c, 2, 2, NULL) == DIFFAD_E_INVALID &&
                              diffad_roi_mask_at(NULL, 2, 2, at) == DIFFAD_E_INVALID &&
                              diffad_roi_mask_at(c, 70000, 2, at) == DIFFAD_E_INVALID,
                          "diffad_roi_mask_at refuses bad arguments");
                }
                free(at), free(ref), free(acc);
                diffad_image bad = {i0, iw, ih, 5, (size_t)iw * 3, DIFFAD_U8};
                CHECK(diffad_predict(c, &bad, &r1) && !diffad_roi_mask(c), "no mask after a failed prediction");
            }
        }
        diffad_free(c), diffad_free(cn);
    }
    scored_free(&a0), scored_free(&a1), scored_free(&b0), scored_free(&b1);
    free(i0), free(i1);
    dd_model_free(t), dd_model_free(tr);
}

/* ---- model file ---- */

static int contains(const unsigned char *b, long n, const char *s) {
    size_t k = strlen(s);
    for (long i = 0; i + (long)k <= n; i++)
        if (!memcmp(b + i, s, k)) return 1;
    return 0;
}

static long file_bytes(const char *path, unsigned char **out) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = malloc(n > 0 ? (size_t)n : 1);
    if (fread(*out, 1, (size_t)n, f) != (size_t)n) n = -1;
    fclose(f);
    return n;
}

static int write_file(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(b, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* src with `from` replaced by `to` in the header (once), and then data byte `at` (counted from
 * the end, 1 = the last; 0: none) set to `value`, or the last `cut` bytes dropped. */
static int doctor(const char *src, const char *dst, const char *from, const char *to, long at, int value, long cut) {
    unsigned char *b = NULL;
    long n = file_bytes(src, &b);
    if (n < 8) return free(b), 0;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | b[i];
    if (!to) to = "";
    char *h = malloc(hl + strlen(to) + 16);
    memcpy(h, b + 8, hl);
    h[hl] = 0;
    if (from) {
        char *p = strstr(h, from);
        if (!p) return free(b), free(h), 0;
        size_t tail = strlen(p + strlen(from));
        memmove(p + strlen(to), p + strlen(from), tail + 1);
        memcpy(p, to, strlen(to));
    }
    size_t nh = strlen(h);
    while (nh % 8) h[nh++] = ' ';
    long data = n - 8 - (long)hl;
    unsigned char *d = b + 8 + hl;
    if (at > 0) d[data - at] = (unsigned char)value;
    if (cut > 0) data -= cut;
    FILE *f = fopen(dst, "wb");
    int ok = f != NULL;
    unsigned char lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (unsigned char)((uint64_t)nh >> (8 * i));
    ok = ok && fwrite(lb, 1, 8, f) == 8 && fwrite(h, 1, nh, f) == nh && fwrite(d, 1, (size_t)data, f) == (size_t)data;
    if (f) ok = fclose(f) == 0 && ok;
    free(b), free(h);
    return ok;
}

static void test_modelfile(void) {
    dd_model *m = tiny_model(0);
    CHECK(m != NULL, "tiny model");
    if (!m) return;
    char f0[600], f1[600], f2[600], bad[600];
    path_in(f0, sizeof f0, "noroi.safetensors");
    path_in(f1, sizeof f1, "roi.safetensors");
    path_in(f2, sizeof f2, "roi2.safetensors");
    path_in(bad, sizeof bad, "bad.safetensors");
    dd_error err = {0};
    CHECK(!dd_model_save(m, f0, 0, NULL, 0, &err), "save without ROI: %s", err.msg);
    const int RH = 37, RW = 23;
    uint8_t mask[RH * RW];
    for (int i = 0; i < RH * RW; i++) mask[i] = rnd() % 3 != 0;
    CHECK(!dd_roi_set(&m->roi, mask, RH, RW, "test", &err) && !dd_model_save(m, f1, 0, NULL, 0, &err), "save with ROI: %s",
          err.msg);
    dd_model *l = NULL;
    CHECK(!dd_model_load(f1, 1, 0, 1, &l, &err) && l->roi.mask && l->roi.h == RH && l->roi.w == RW &&
              !memcmp(l->roi.mask, mask, sizeof mask),
          "the ROI survives save / load bit for bit (%s)", err.msg);
    unsigned char *b1 = NULL, *b2 = NULL;
    long n1 = l && !dd_model_save(l, f2, 0, NULL, 0, &err) ? file_bytes(f1, &b1) : -1, n2 = file_bytes(f2, &b2);
    CHECK(n1 > 0 && n1 == n2 && !memcmp(b1, b2, (size_t)n1), "a loaded model saves to the same bytes");
    free(b1), free(b2);
    /* the header entry as docs/model-file.md describes it */
    unsigned char *b = NULL;
    long n = file_bytes(f1, &b);
    char want[128];
    snprintf(want, sizeof want, "\"roi.mask\":{\"dtype\":\"U8\",\"shape\":[%d,%d],\"data_offsets\":[", RH, RW);
    CHECK(n > 0 && contains(b, n, want) && !memcmp(b + n - RH * RW, mask, sizeof mask),
          "header entry %s..., the mask's bytes last in the file", want);
    free(b);
    dd_model *l0 = NULL;
    CHECK(!dd_model_load(f0, 1, 0, 1, &l0, &err) && !l0->roi.mask && l0->roi.h == 0, "a file without ROI loads as none");
    if (l) CHECK(!dd_model_load_into(l, f0, 0, &err) && !l->roi.mask, "load_into a file without ROI clears it: %s", err.msg);
    dd_model_free(l), dd_model_free(l0);
    /* corrupt entries: DD_E_FORMAT naming the file and roi.mask */
    char shape[32], shape_w[32], shape_3[32];
    snprintf(shape, sizeof shape, "[%d,%d]", RH, RW);
    snprintf(shape_w, sizeof shape_w, "[%d,%d]", RH, RW + 1);
    snprintf(shape_3, sizeof shape_3, "[1,%d,%d]", RH, RW);
    struct {
        const char *what, *from, *to;
        long at;
        int value;
        long cut;
        const char *msg;
    } cases[] = {
        {"dtype I8", "\"dtype\":\"U8\"", "\"dtype\":\"I8\"", 0, 0, 0, "dtype I8"},
        {"dtype F32", "\"dtype\":\"U8\"", "\"dtype\":\"F32\"", 0, 0, 0, "dtype F32"},
        {"another width", shape, shape_w, 0, 0, 0, "needs 888"},
        {"3-d shape", shape, shape_3, 0, 0, 0, "[height, width]"},
        {"zero height", shape, "[0,23]", 0, 0, 0, "[height, width]"},
        {"a value 2", NULL, NULL, 5, 2, 0, "value 2"},
        {"a value 255", NULL, NULL, 1, 255, 0, "value 255"},
        {"truncated", NULL, NULL, 0, 0, 1, "does not fit"},
        {"misnamed", "\"roi.mask\"", "\"roi.masks\"", 0, 0, 0, "roi.masks"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int made = doctor(f1, bad, cases[i].from, cases[i].to, cases[i].at, cases[i].value, cases[i].cut);
        dd_model *x = NULL;
        int rc = made ? dd_model_load(bad, 1, 0, 1, &x, &err) : -1;
        CHECK(rc == DD_E_FORMAT && !x && strstr(err.msg, bad) && strstr(err.msg, "roi.mask") && strstr(err.msg, cases[i].msg),
              "%s refused (%d): %s", cases[i].what, rc, err.msg);
    }
    /* all zero: every mask byte 0 */
    unsigned char *z = NULL;
    n = file_bytes(f1, &z);
    if (n > 0) memset(z + n - RH * RW, 0, (size_t)RH * RW);
    dd_model *x = NULL;
    CHECK(n > 0 && write_file(bad, z, (size_t)n) && dd_model_load(bad, 1, 0, 1, &x, &err) == DD_E_FORMAT &&
              strstr(err.msg, "ignores every pixel"),
          "an all-zero ROI in the file refused: %s", err.msg);
    free(z);
    diffad_params p;
    diffad_params_init(&p);
    diffad_ctx *c = NULL;
    char msg[600];
    CHECK(diffad_create(bad, &p, &c, msg, sizeof msg) == DIFFAD_E_FORMAT && !c && strstr(msg, "roi.mask"),
          "the API refuses it with DIFFAD_E_FORMAT: %s", msg);
    dd_model_free(m);
}

/* ---- calibration ---- */

static int cmp_asc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void test_calibration(void) {
    dd_model *m = tiny_model(0);
    if (!m) return;
    char dir[600], f[700], model[600];
    path_in(dir, sizeof dir, "calgood");
    mkdir(dir, 0755);
    const int n_img = 5, ih = 40, iw = 48;
    dd_error err = {0};
    int ok = 1;
    for (int k = 0; k < n_img && ok; k++) {
        float *p = picture(ih, iw, 10 + k);
        snprintf(f, sizeof f, "%s/good%d.png", dir, k);
        ok = !dd_write_png_rgb8(f, p, ih, iw, &err);
        free(p);
    }
    uint8_t mask[20 * 24];
    for (int i = 0; i < 20 * 24; i++) mask[i] = (i % 24) >= 9; /* left 9 of 24 columns ignored */
    ok = ok && !dd_roi_set(&m->roi, mask, 20, 24, "test", &err);
    path_in(model, sizeof model, "cal_roi.safetensors");
    ok = ok && !dd_model_save(m, model, 0, NULL, 0, &err);
    CHECK(ok, "fixtures: %s", err.msg);
    dd_dataset *ds = NULL;
    int idx[5] = {0, 1, 2, 3, 4};
    dd_model_config cfg = m->cfg;
    const float fr = 0.2f;
    ok = ok && !dd_dataset_open(dir, &ds, &err) && ds->n_train == n_img &&
         !dd_calibrate(&cfg, m->params.value, m->params.total, &m->roi, ds, idx, n_img, fr, 1, NULL, &err);
    CHECK(ok, "dd_calibrate with the ROI: %s", err.msg);
    diffad_ctx *c = ok ? open_model(model) : NULL;
    if (c) {
        float scores[5], *pix = malloc((size_t)n_img * ih * iw * sizeof(float)), *all = malloc((size_t)n_img * ih * iw * sizeof(float));
        size_t np = 0, na = 0;
        for (int k = 0; k < n_img && ok; k++) {
            dd_image im = {0};
            diffad_result r;
            snprintf(f, sizeof f, "%s", ds->train[k].path);
            ok = !dd_image_load_rgb(f, &im, &err);
            diffad_image di = {im.data, im.w, im.h, 3, (size_t)im.w * 3 * sizeof(float), DIFFAD_F32};
            ok = ok && !diffad_predict(c, &di, &r);
            const unsigned char *roi = ok ? diffad_roi_mask(c) : NULL;
            ok = ok && roi;
            for (int i = 0; ok && i < ih * iw; i++) {
                if (roi[i]) pix[np++] = r.map[i];
                all[na++] = r.map[i];
            }
            if (ok) scores[k] = r.score;
            dd_image_free(&im);
        }
        CHECK(ok, "predict on the calibration images");
        if (ok) {
            qsort(scores, n_img, sizeof(float), cmp_asc);
            qsort(pix, np, sizeof(float), cmp_asc);
            qsort(all, na, sizeof(float), cmp_asc);
            float it = scores[dd_calibrate_rank((size_t)n_img, 1.0 - fr) - 1];
            float pt = pix[dd_calibrate_rank(np, 1.0 - fr / 10.0) - 1];
            float pt_all = all[dd_calibrate_rank(na, 1.0 - fr / 10.0) - 1];
            CHECK(cfg.image_threshold == it, "image threshold = quantile of predict's scores: %.9g vs %.9g", cfg.image_threshold, it);
            CHECK(np < na && cfg.pixel_threshold == pt && pt != pt_all,
                  "pixel threshold = quantile over the %zu inspected pixels (%.9g vs %.9g), not over all %zu (%.9g)", np,
                  cfg.pixel_threshold, pt, na, pt_all);
        }
        free(pix), free(all);
    }
    diffad_free(c);
    dd_dataset_free(ds);
    dd_model_free(m);
}

/* ---- CLI ---- */

static int have_cli(void) { return access(g_cli, X_OK) == 0; }

static int run_cli(const char *args, char *out, size_t cap) {
    char cmd[4096], log[600];
    path_in(log, sizeof log, "cli.out");
    snprintf(cmd, sizeof cmd, "timeout 600 '%s' %s > '%s' 2>&1 < /dev/null", g_cli, args, log);
    int st = system(cmd);
    FILE *f = fopen(log, "rb");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    if (f) fclose(f);
    out[n] = 0;
    remove(log);
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static int same_file(const unsigned char *a, long na, const char *path) {
    unsigned char *b = NULL;
    long nb = file_bytes(path, &b);
    int same = na > 0 && na == nb && !memcmp(a, b, (size_t)na);
    free(b);
    return same;
}

#define TINY_ARGS "--quiet --size 32x32 --base_channels 8 --channel_mult 1,2 --attention none --heads 1 --groups 8 " \
                  "--seg_width 4 --batch 2 --steps 1 --threads 1 --workers 1 --checkpoint_every 0"

static void test_cli(void) {
    if (!have_cli()) {
        SKIP("no CLI at %s", g_cli);
        return;
    }
    char src[600];
    snprintf(src, sizeof src, "%s/train/good", g_data);
    if (!exists(src)) {
        SKIP("no sample at %s", src);
        return;
    }
    char good[600], cmd[4096], roi1[600], roi2[600], black[600], speck[600], missing[600], model[600], o[16384];
    path_in(good, sizeof good, "good4");
    mkdir(good, 0755);
    snprintf(cmd, sizeof cmd, "ls '%s'/*.png | head -4 | xargs -I{} cp {} '%s'/", src, good);
    CHECK(system(cmd) == 0, "4 sample images copied");
    /* ROIs over the 640x640 frame, drawn at 64x64: left quarter ignored; then a label strip at the top */
    path_in(roi1, sizeof roi1, "roi1.png");
    path_in(roi2, sizeof roi2, "roi2.png");
    path_in(black, sizeof black, "black.png");
    path_in(speck, sizeof speck, "speck.png");
    path_in(missing, sizeof missing, "missing_roi.png");
    float a[64 * 64], b[64 * 64], z[64 * 64] = {0}, s[64 * 64] = {0};
    for (int i = 0; i < 64 * 64; i++) a[i] = (i % 64) >= 16 ? 1.0f : 0.0f, b[i] = i / 64 >= 10 ? 1.0f : 0.0f;
    s[0] = 1; /* one pixel of 64x64: less than half of any model pixel at 32x32 */
    dd_error err = {0};
    CHECK(!dd_write_png_gray8(roi1, a, 64, 64, &err) && !dd_write_png_gray8(roi2, b, 64, 64, &err) &&
              !dd_write_png_gray8(black, z, 64, 64, &err) && !dd_write_png_gray8(speck, s, 64, 64, &err),
          "ROI images: %s", err.msg);
    path_in(model, sizeof model, "cli.safetensors");
    /* train --roi: stored, mentioned */
    snprintf(cmd, sizeof cmd, "train --data '%s' --out '%s' --roi '%s' " TINY_ARGS, good, model, roi1);
    int rc = run_cli(cmd, o, sizeof o);
    dd_roi want1 = {0}, want2 = {0};
    dd_roi_load(roi1, &want1, &err);
    dd_roi_load(roi2, &want2, &err);
    dd_model *m = NULL;
    CHECK(rc == 0 && strstr(o, "region of interest") && !dd_model_load(model, 1, 0, 1, &m, &err) && dd_roi_equal(&m->roi, &want1),
          "train --roi stores the ROI (exit %d): %s", rc, o);
    dd_model_free(m);
    m = NULL;
    /* train with a bad --roi: exit 2, one line naming it, nothing written */
    char nomodel[600], nolog[700];
    path_in(nomodel, sizeof nomodel, "never.safetensors");
    snprintf(nolog, sizeof nolog, "%s.log.csv", nomodel);
    const char *bads[] = {missing, black, speck};
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "train --data '%s' --out '%s' --roi '%s' " TINY_ARGS, good, nomodel, bads[i]);
        rc = run_cli(cmd, o, sizeof o);
        CHECK(rc == 2 && count_lines(o) == 1 && strstr(o, bads[i]) && !exists(nomodel) && !exists(nolog),
              "train --roi %s: exit 2, one line naming it, nothing written (%d): %s", bads[i], rc, o);
    }
    /* calibrate --roi: replaced and recalibrated with it, = dd_calibrate */
    snprintf(cmd, sizeof cmd, "calibrate --model '%s' --good '%s' --roi '%s' --false_reject 0.25 --threads 1", model, good, roi2);
    rc = run_cli(cmd, o, sizeof o);
    dd_model_config after;
    CHECK(rc == 0 && strstr(o, "region of interest") && strstr(o, roi2), "calibrate --roi ran (exit %d): %s", rc, o);
    int ok = !dd_model_load(model, 1, 0, 1, &m, &err) && !dd_model_file_config(model, &after, NULL, NULL, &err);
    CHECK(ok && dd_roi_equal(&m->roi, &want2), "calibrate --roi replaced the stored ROI");
    if (ok) {
        dd_dataset *ds = NULL;
        dd_model_config want = after;
        int idx[4] = {0, 1, 2, 3};
        ok = !dd_dataset_open(good, &ds, &err) && ds->n_train == 4 &&
             !dd_calibrate(&want, m->params.value, m->params.total, &want2, ds, idx, 4, 0.25f, 1, NULL, &err);
        CHECK(ok && want.image_threshold == after.image_threshold && want.pixel_threshold == after.pixel_threshold,
              "the new thresholds are dd_calibrate's with the new ROI: %.9g / %.9g vs %.9g / %.9g (%s)", after.image_threshold,
              after.pixel_threshold, want.image_threshold, want.pixel_threshold, err.msg);
        dd_model_config none = after;
        ok = ok && !dd_calibrate(&none, m->params.value, m->params.total, NULL, ds, idx, 4, 0.25f, 1, NULL, &err);
        CHECK(ok && none.pixel_threshold != after.pixel_threshold,
              "without the ROI the pixel threshold would differ (%.9g vs %.9g): the ROI was used", none.pixel_threshold,
              after.pixel_threshold);
        /* predict uses the stored ROI: its score is the API's, its saved map 0 outside */
        char img[700], outdir[600], mapf[1600], ovf[1600];
        snprintf(img, sizeof img, "%s", ds->train[0].path);
        path_in(outdir, sizeof outdir, "pred");
        snprintf(cmd, sizeof cmd, "predict --model '%s' --threads 1 --out '%s' --save-map --save-overlay '%s'", model, outdir, img);
        rc = run_cli(cmd, o, sizeof o);
        diffad_ctx *c = open_model(model);
        dd_image im = {0};
        diffad_result r;
        ok = c && !dd_image_load_rgb(img, &im, &err);
        diffad_image di = {im.data, im.w, im.h, 3, (size_t)im.w * 3 * sizeof(float), DIFFAD_F32};
        ok = ok && !diffad_predict(c, &di, &r);
        const char *sp = strstr(o, "\"score\":");
        CHECK((rc == 0 || rc == 1) && ok && sp && strtof(sp + 8, NULL) == r.score, "predict's score is the API's %.9g: %s",
              ok ? r.score : -1.0f, o);
        const char *stem = strrchr(img, '/');
        char st[800];
        snprintf(st, sizeof st, "%s", stem ? stem + 1 : img);
        char *dot = strrchr(st, '.');
        if (dot) *dot = 0;
        snprintf(mapf, sizeof mapf, "%s/%s_map.png", outdir, st);
        snprintf(ovf, sizeof ovf, "%s/%s_overlay.png", outdir, st);
        dd_image mp = {0};
        const unsigned char *roi = ok ? diffad_roi_mask(c) : NULL;
        int map_ok = roi && !dd_image_load_mask(mapf, &mp, &err) && mp.h == im.h && mp.w == im.w;
        long zeros = 0, inspected = 0;
        for (long i = 0; map_ok && i < (long)im.h * im.w; i++) {
            if (!roi[i]) map_ok &= mp.data[i] == 0.0f, zeros++;
            else inspected += mp.data[i] > 0;
        }
        CHECK(map_ok && zeros > 0 && inspected > 0 && exists(ovf),
              "predict --save-map: 0 on the %ld ignored pixels, nonzero on %ld inspected ones; overlay written", zeros, inspected);
        dd_image_free(&mp);
        dd_image_free(&im);
        diffad_free(c);
        dd_dataset_free(ds);
    }
    dd_model_free(m);
    m = NULL;
    /* bad --roi for calibrate: exit 2, one line naming the file, the model byte-unchanged */
    unsigned char *before = NULL;
    long nb = file_bytes(model, &before);
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "calibrate --model '%s' --good '%s' --roi '%s' --threads 1", model, good, bads[i]);
        rc = run_cli(cmd, o, sizeof o);
        CHECK(rc == 2 && count_lines(o) == 1 && strstr(o, bads[i]) && same_file(before, nb, model),
              "calibrate --roi %s: exit 2, one line naming it, model unchanged (%d): %s", bads[i], rc, o);
    }
    /* calibrate --map_sigma: the key is stored and the thresholds are dd_calibrate's with it;
     * out-of-range values: exit 2, one line naming the option, the model byte-unchanged */
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "calibrate --model '%s' --good '%s' --map_sigma %s --threads 1", model, good,
                 i ? "70" : "-1");
        rc = run_cli(cmd, o, sizeof o);
        CHECK(rc == 2 && count_lines(o) == 1 && strstr(o, "map_sigma") && same_file(before, nb, model),
              "calibrate --map_sigma %s: exit 2, one line naming it, model unchanged (%d): %s", i ? "70" : "-1", rc, o);
    }
    snprintf(cmd, sizeof cmd, "calibrate --model '%s' --good '%s' --map_sigma 1.5 --false_reject 0.25 --threads 1", model, good);
    rc = run_cli(cmd, o, sizeof o);
    {
        dd_model_config got;
        dd_dataset *ds = NULL;
        int idx[4] = {0, 1, 2, 3};
        int ok2 = rc == 0 && !dd_model_load(model, 1, 0, 1, &m, &err) && !dd_model_file_config(model, &got, NULL, NULL, &err) &&
                  got.map_sigma == 1.5f && !dd_dataset_open(good, &ds, &err);
        dd_model_config want = got, plain = got;
        plain.map_sigma = 0;
        ok2 = ok2 && !dd_calibrate(&want, m->params.value, m->params.total, &m->roi, ds, idx, 4, 0.25f, 1, NULL, &err) &&
              !dd_calibrate(&plain, m->params.value, m->params.total, &m->roi, ds, idx, 4, 0.25f, 1, NULL, &err);
        CHECK(ok2 && want.image_threshold == got.image_threshold && want.pixel_threshold == got.pixel_threshold &&
                  plain.image_threshold != got.image_threshold,
              "calibrate --map_sigma 1.5 stores it and calibrates with it: %.9g / %.9g (with) %.9g (without) (exit %d: %s %s)",
              got.image_threshold, want.image_threshold, plain.image_threshold, rc, o, err.msg);
        dd_dataset_free(ds);
        dd_model_free(m);
        m = NULL;
    }
    free(before);
    /* a model with a corrupt ROI: predict stops naming it */
    char corrupt[600];
    path_in(corrupt, sizeof corrupt, "corrupt_cli.safetensors");
    CHECK(doctor(model, corrupt, NULL, "", 3, 7, 0), "corrupt copy");
    snprintf(cmd, sizeof cmd, "predict --model '%s' --threads 1 '%s/%s'", corrupt, good, "x.png");
    rc = run_cli(cmd, o, sizeof o);
    CHECK(rc == 2 && strstr(o, "roi.mask") && strstr(o, "value 7"), "predict with a corrupt ROI: exit 2 naming roi.mask (%d): %s",
          rc, o);
    /* --roi none removes it */
    snprintf(cmd, sizeof cmd, "calibrate --model '%s' --good '%s' --roi none --threads 1", model, good);
    rc = run_cli(cmd, o, sizeof o);
    CHECK(rc == 0 && strstr(o, "region of interest removed") && !dd_model_load(model, 1, 0, 1, &m, &err) && !m->roi.mask,
          "calibrate --roi none removes the ROI (exit %d): %s", rc, o);
    dd_model_free(m);
    dd_roi_free(&want1), dd_roi_free(&want2);
}

/* ---- the trainer: --roi at create, kept across an interruption and a resume ---- */

static volatile sig_atomic_t g_stop;
static void stop_at_1(void *ctx, const dd_train_progress *p) {
    (void)ctx;
    if (p->step >= 1) g_stop = 1;
}

static void test_trainer_resume(void) {
    char good[600], roi[600], out[600], ckpt[700];
    path_in(good, sizeof good, "good4"); /* test_cli's copy of 4 sample images */
    path_in(roi, sizeof roi, "roi1.png");
    path_in(out, sizeof out, "resumed.safetensors");
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", out);
    if (!exists(good) || !exists(roi)) {
        SKIP("no sample images (test_cli did not set them up)");
        return;
    }
    dd_settings s;
    dd_error err = {0};
    const char *kv[][2] = {{"size", "32x32"}, {"base_channels", "8"}, {"channel_mult", "1,2"}, {"attention", "none"},
                           {"heads", "1"}, {"groups", "8"}, {"seg_width", "4"}, {"batch", "2"}, {"steps", "2"},
                           {"threads", "1"}, {"workers", "1"}, {"checkpoint_every", "0"}, {"ema_decay", "0"}};
    int ok = !dd_settings_profile(&s, "cpu", &err);
    for (size_t i = 0; ok && i < sizeof kv / sizeof *kv; i++) ok = !dd_settings_set(&s, kv[i][0], kv[i][1], "test", &err);
    CHECK(ok, "settings: %s", err.msg);
    dd_roi want = {0};
    ok = ok && !dd_roi_load(roi, &want, &err);
    dd_trainer_opts o;
    dd_trainer_opts_init(&o);
    o.data = good, o.out = out, o.roi = roi, o.progress = stop_at_1, o.stop = &g_stop;
    dd_trainer *t = NULL;
    dd_train_result r;
    g_stop = 0;
    ok = ok && !dd_trainer_create(&s, &o, &t, &err);
    const dd_trainer_info *in = ok ? dd_trainer_get_info(t) : NULL;
    CHECK(ok && in->roi_w == 64 && in->roi_h == 64 && fabs(in->roi_share - 0.75) < 1e-12 &&
              dd_roi_equal(&dd_trainer_model(t)->roi, &want),
          "the trainer holds the --roi mask (%s)", err.msg);
    ok = ok && !dd_trainer_run(t, &r, &err) && r.interrupted;
    dd_trainer_free(t);
    t = NULL;
    dd_model *c = NULL;
    CHECK(ok && !dd_model_load(ckpt, 2, 1, 1, &c, &err) && dd_roi_equal(&c->roi, &want),
          "the checkpoint of an interrupted run holds the ROI (%s)", err.msg);
    dd_model_free(c);
    /* resume without --roi: the checkpoint's ROI goes into the model file */
    o.roi = NULL, o.resume = ckpt, o.progress = NULL, o.stop = NULL;
    ok = ok && !dd_trainer_create(&s, &o, &t, &err) && !dd_trainer_run(t, &r, &err) && !r.interrupted && r.calibrated;
    dd_trainer_free(t);
    dd_model *m = NULL;
    CHECK(ok && !dd_model_load(out, 1, 0, 1, &m, &err) && dd_roi_equal(&m->roi, &want),
          "resumed without --roi, the model file keeps the checkpoint's ROI (%s)", err.msg);
    dd_model_free(m);
    dd_roi_free(&want);
}

int main(int argc, char **argv) {
    (void)argc;
    char self[900];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(g_cli, sizeof g_cli, "%.900s/../diffad", dirname(self));
    g_data = getenv("DIFFAD_SAMPLE");
    if (!g_data) g_data = "data/sample/pcb";
    snprintf(g_dir, sizeof g_dir, "/tmp/test_roi_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_resample_rule();
    test_roi_file();
    test_scorer_fit();
    test_scorer_tiled();
    test_modelfile();
    test_calibration();
    test_cli();
    test_trainer_resume();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", g_dir);
    return check_summary("test_roi");
}
