/* test_scorer.c — the one scoring path (src/infer/scorer.h): working size, tile
 * positions, stitching against a naive re-implementation, agreement with a plain
 * model inference for an image of exactly one tile, odd and tiny sizes, top-k
 * scaled by the area, the maps at the input size, bounded memory for a large
 * image, and the public API on tiled models (grey, U8, 16-bit file, budget).
 * Uses a tiny random model (32x32) built in memory. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "live_model.h"
#include "diffad.h"
#include "data/image.h"
#include "eval/metrics.h"
#include "infer/scorer.h"
#include "model/model.h"
#include "model/modelfile.h"

#define HW 32

static void tiny_config(dd_model_config *c, float tile_scale) {
    dd_model_config_paper(c, HW, HW);
    c->unet.base = 8, c->unet.levels = 2, c->unet.mult[0] = 1, c->unet.mult[1] = 2;
    c->unet.res_blocks = 1, c->unet.n_attn = 0, c->unet.heads = 1, c->unet.groups = 8;
    c->seg_width = 4;
    c->tile_scale = tile_scale;
}

/* Weights that give non-flat maps (see test_api.c make_model for why). */
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

/* A smooth test picture with a bright square "defect". */
static float *picture(int h, int w, int grey) {
    float *p = malloc((size_t)h * w * 3 * sizeof(float));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < 3; k++) {
                float v = 0.5f + 0.3f * sinf(0.21f * x + (grey ? 0 : k)) * cosf(0.17f * y);
                if (y > h / 3 && y < h / 3 + 6 && x > w / 2 && x < w / 2 + 6) v = 0.98f;
                p[((size_t)y * w + x) * 3 + k] = v;
            }
    return p;
}

static void test_positions(void) {
    static int pos[DD_TILE_MAX_PER_AXIS];
    CHECK(dd_tile_positions(32, 32, 0.25f, pos, 64) == 1 && pos[0] == 0, "one tile for len == tile");
    CHECK(dd_tile_positions(31, 32, 0.25f, pos, 64) == 0, "len < tile is refused");
    CHECK(dd_tile_positions(100, 32, 1.0f, pos, 64) == 0, "overlap 1 is refused");
    int n = dd_tile_positions(33, 32, 0.25f, pos, 64);
    CHECK(n == 2 && pos[0] == 0 && pos[1] == 1, "33 over 32: two tiles at 0 and 1 (n=%d)", n);
    const int lens[] = {33, 45, 64, 77, 100, 128, 257, 640, 1999};
    const float ovs[] = {0.0f, 0.25f, 0.5f, 0.75f};
    int bad = 0;
    for (size_t a = 0; a < sizeof lens / sizeof *lens; a++)
        for (size_t b = 0; b < sizeof ovs / sizeof *ovs; b++) {
            int len = lens[a], t = 32;
            n = dd_tile_positions(len, t, ovs[b], pos, DD_TILE_MAX_PER_AXIS);
            if (n < 2 || pos[0] != 0 || pos[n - 1] != len - t) { bad++; continue; }
            for (int i = 1; i < n; i++) {
                int step = pos[i] - pos[i - 1];
                /* no gap, and at least the requested overlap (to the rounding of one pixel) */
                if (step <= 0 || step > t || t - step < ovs[b] * t - 1) bad++;
            }
            /* the fewest tiles: one fewer would need a stride above the allowed one */
            if (n > 2 && (double)(len - t) / (n - 2) <= t * (1 - ovs[b]) + 1e-9) bad++;
        }
    CHECK(bad == 0, "tile positions: %d violations (edges, gaps, overlap, fewest tiles)", bad);
    CHECK(dd_tile_positions(1999, 32, 0.75f, pos, 64) == 0, "more tiles than the caller's room is refused");
}

static void test_work_size(void) {
    dd_model_config c;
    tiny_config(&c, 0);
    int wh, ww;
    dd_scorer_work_size(&c, 640, 480, &wh, &ww);
    CHECK(wh == HW && ww == HW, "fit: working size is the model size (%dx%d)", wh, ww);
    c.tile_scale = 1;
    dd_scorer_work_size(&c, 640, 480, &wh, &ww);
    CHECK(wh == 640 && ww == 480, "scale 1: native (%dx%d)", wh, ww);
    c.tile_scale = 0.5f;
    dd_scorer_work_size(&c, 641, 40, &wh, &ww);
    CHECK(wh == 321 && ww == HW, "scale 0.5: 641x40 -> 321x32 (a side below the tile is stretched), got %dx%d", wh, ww);
    dd_scorer_work_size(&c, 10, 10, &wh, &ww);
    CHECK(wh == HW && ww == HW, "tiny image: one tile (%dx%d)", wh, ww);
}

/* An image of exactly one tile: the scorer's map, reconstruction and score are those of
 * dd_model_infer_with + dd_topk_mean, bit for bit, in fit and in tiled mode. */
static void test_one_tile_agreement(void) {
    for (int mode = 0; mode < 2; mode++) {
        dd_model *m = tiny_model(mode ? 1.0f : 0.0f);
        if (!m) { CHECK(0, "model"); return; }
        dd_scorer *s = NULL;
        dd_error err = {0};
        CHECK(dd_scorer_create(m, NULL, &s, &err) == DD_OK, "scorer: %s", err.msg);
        float *img = picture(HW, HW, 0);
        dd_score r;
        CHECK(dd_scorer_run(s, img, HW, HW, &r, &err) == DD_OK, "run: %s", err.msg);
        CHECK(r.tiles_x == 1 && r.tiles_y == 1 && r.h == HW && r.w == HW, "one tile, map at input size");
        float *map = malloc(HW * HW * sizeof(float)), *rec = malloc(HW * HW * 3 * sizeof(float));
        float *noise = malloc(HW * HW * 6 * sizeof(float));
        dd_rng rng;
        dd_rng_seed(&rng, DD_PREDICT_SEED);
        dd_model_draw_noise(&m->cfg, &rng, noise, 2);
        CHECK(dd_model_infer_with(m, img, noise, map, rec, &err) == DD_OK, "infer: %s", err.msg);
        double ref = 0;
        dd_topk_mean(map, HW * HW, dd_model_topk(&m->cfg), &ref, &err);
        CHECK(!memcmp(map, r.map, HW * HW * sizeof(float)), "mode %d: map bit-identical to plain inference", mode);
        CHECK(!memcmp(rec, r.recon, HW * HW * 3 * sizeof(float)), "mode %d: reconstruction bit-identical", mode);
        CHECK(r.score == ref, "mode %d: score %.9g == %.9g", mode, r.score, ref);
        free(map), free(rec), free(noise), free(img);
        dd_scorer_free(s);
        dd_model_free(m);
    }
}

/* Stitching against a naive per-pixel weighted average of the tiles' own maps. */
static void test_stitch_naive(void) {
    dd_model *m = tiny_model(1.0f);
    if (!m) { CHECK(0, "model"); return; }
    dd_scorer *s = NULL;
    dd_error err = {0};
    dd_scorer_opts o;
    dd_scorer_opts_init(&o);
    o.overlap = 0.4f;
    CHECK(dd_scorer_create(m, &o, &s, &err) == DD_OK, "scorer: %s", err.msg);
    const int H = 45, W = 77; /* not multiples of the tile */
    float *img = picture(H, W, 1);
    dd_score r;
    CHECK(dd_scorer_run(s, img, H, W, &r, &err) == DD_OK, "run: %s", err.msg);
    int py[16], px[16];
    int ny = dd_tile_positions(H, HW, 0.4f, py, 16), nx = dd_tile_positions(W, HW, 0.4f, px, 16);
    CHECK(r.tiles_y == ny && r.tiles_x == nx && ny >= 2 && nx >= 3, "tiles %dx%d", r.tiles_y, r.tiles_x);
    double *num = calloc((size_t)H * W, sizeof(double)), *den = calloc((size_t)H * W, sizeof(double));
    float *tile = malloc(HW * HW * 3 * sizeof(float)), *map = malloc(HW * HW * sizeof(float));
    float *noise = malloc(HW * HW * 6 * sizeof(float));
    dd_rng rng;
    dd_rng_seed(&rng, DD_PREDICT_SEED);
    dd_model_draw_noise(&m->cfg, &rng, noise, 2);
    for (int a = 0; a < ny; a++)
        for (int b = 0; b < nx; b++) {
            for (int y = 0; y < HW; y++)
                for (int x = 0; x < HW * 3; x++) tile[y * HW * 3 + x] = img[((size_t)(py[a] + y) * W + px[b]) * 3 + x];
            dd_model_infer_with(m, tile, noise, map, NULL, &err);
            for (int y = 0; y < HW; y++)
                for (int x = 0; x < HW; x++) {
                    double wy = fmax(1e-3, 0.5 - 0.5 * cos(2 * M_PI * (y + 0.5) / HW));
                    double wx = fmax(1e-3, 0.5 - 0.5 * cos(2 * M_PI * (x + 0.5) / HW));
                    size_t i = (size_t)(py[a] + y) * W + px[b] + x;
                    num[i] += wy * wx * map[y * HW + x];
                    den[i] += wy * wx;
                }
        }
    double worst = 0;
    for (size_t i = 0; i < (size_t)H * W; i++) worst = fmax(worst, fabs(num[i] / den[i] - r.map[i]));
    CHECK(worst < 2e-6, "stitched map vs naive weighted average: max |diff| %.3g", worst);
    /* top-k scaled by the area */
    long k = lround((double)dd_model_topk(&m->cfg) * H * W / (HW * HW));
    CHECK(r.k == k, "top-k %ld == %ld (model k scaled by the area)", r.k, k);
    double ref = 0;
    dd_topk_mean(r.map, (long)H * W, k, &ref, &err);
    CHECK(fabs(ref - r.score) < 1e-12, "score is the top-k mean of the stitched map");
    /* deterministic */
    double first = r.score;
    float *copy = malloc((size_t)H * W * sizeof(float));
    memcpy(copy, r.map, (size_t)H * W * sizeof(float));
    dd_scorer_run(s, img, H, W, &r, &err);
    CHECK(r.score == first && !memcmp(copy, r.map, (size_t)H * W * sizeof(float)), "same image, same bits");
    free(copy), free(num), free(den), free(tile), free(map), free(noise), free(img);
    dd_scorer_free(s);
    dd_model_free(m);
}

/* map_sigma: the stitched working map is the unsmoothed one through dd_gaussian_blur (itself
 * checked against scipy in test_report), the score its top-k mean, the input-size map resized
 * from it; at scale 1 (tiles) and at 0.5 (the input-size map differs from the working one). */
static void test_map_sigma(void) {
    const float scales[2] = {1.0f, 0.5f};
    for (int t = 0; t < 2; t++) {
        dd_model *m = tiny_model(scales[t]);
        if (!m) { CHECK(0, "model"); return; }
        dd_scorer *s = NULL;
        dd_error err = {0};
        CHECK(dd_scorer_create(m, NULL, &s, &err) == DD_OK, "scorer: %s", err.msg);
        const int H = 45, W = 77;
        float *img = picture(H, W, 0);
        dd_score r;
        CHECK(dd_scorer_run(s, img, H, W, &r, &err) == DD_OK, "run: %s", err.msg);
        int wh = r.work_h, ww = r.work_w;
        size_t whw = (size_t)wh * ww;
        float *plain = malloc(whw * sizeof(float)), *ref = malloc(whw * sizeof(float));
        float *ref_in = malloc((size_t)H * W * sizeof(float));
        memcpy(plain, r.work_map, whw * sizeof(float));
        size_t held0 = dd_scorer_memory(s);
        m->cfg.map_sigma = 2.5f; /* read at every run */
        CHECK(dd_scorer_run(s, img, H, W, &r, &err) == DD_OK, "run with map_sigma: %s", err.msg);
        dd_gaussian_blur(plain, ref, wh, ww, 2.5f, NULL, &err);
        CHECK(r.work_h == wh && r.work_w == ww && !memcmp(r.work_map, ref, whw * sizeof(float)),
              "scale %g: the smoothed working map is the plain one blurred (sigma 2.5)", scales[t]);
        double diff = 0;
        for (size_t i = 0; i < whw; i++) diff = fmax(diff, fabs(plain[i] - ref[i]));
        CHECK(diff > 1e-4, "scale %g: smoothing changes the map (max |diff| %.3g)", scales[t], diff);
        double score = 0;
        dd_topk_mean(ref, (long)whw, r.k, &score, &err);
        CHECK(score == r.score, "scale %g: score %.9g is the top-k mean of the smoothed map (%.9g)", scales[t], r.score,
              score);
        if (wh != H || ww != W) {
            dd_resize(ref, wh, ww, 1, ref_in, H, W, &err);
            CHECK(!memcmp(ref_in, r.map, (size_t)H * W * sizeof(float)), "scale %g: the input-size map is resized from the smoothed one",
                  scales[t]);
        } else {
            CHECK(r.map == r.work_map, "scale 1: the map is the working map");
        }
        CHECK(dd_scorer_memory(s) == held0 + whw * sizeof(float), "scale %g: smoothing holds one more working map (%zu -> %zu bytes)",
              scales[t], held0, dd_scorer_memory(s));
        free(plain), free(ref), free(ref_in), free(img);
        dd_scorer_free(s);
        dd_model_free(m);
    }
    /* the key's range (model config check) */
    dd_model_config c;
    tiny_config(&c, 0);
    dd_error err = {0};
    const float bad[3] = {-1.0f, 64.5f, NAN};
    for (int i = 0; i < 3; i++) {
        c.map_sigma = bad[i];
        CHECK(dd_model_config_check(&c, &err) == DD_E_RANGE && strstr(err.msg, "map_sigma"), "map_sigma %g refused: '%s'",
              bad[i], err.msg);
    }
}

/* Scale 0.5 and a tiny image: maps come back at the input size; memory stays bounded. */
static void test_sizes_and_memory(void) {
    dd_model *m = tiny_model(0.5f);
    if (!m) { CHECK(0, "model"); return; }
    dd_scorer *s = NULL;
    dd_error err = {0};
    dd_scorer_opts o;
    dd_scorer_opts_init(&o);
    o.want_recon = 0;
    CHECK(dd_scorer_create(m, &o, &s, &err) == DD_OK, "scorer: %s", err.msg);
    float *img = picture(101, 67, 0);
    dd_score r;
    CHECK(dd_scorer_run(s, img, 101, 67, &r, &err) == DD_OK, "run 101x67: %s", err.msg);
    CHECK(r.h == 101 && r.w == 67 && r.work_h == 51 && r.work_w == 34 && !r.recon, "101x67 at 0.5: work %dx%d, map %dx%d, no recon",
          r.work_h, r.work_w, r.h, r.w);
    int in_range = 1;
    for (int i = 0; i < 101 * 67; i++) in_range &= r.map[i] >= 0 && r.map[i] <= 1;
    CHECK(in_range, "map values in [0,1]");
    free(img);
    img = picture(7, 5, 1);
    CHECK(dd_scorer_run(s, img, 7, 5, &r, &err) == DD_OK, "run 7x5: %s", err.msg);
    CHECK(r.h == 7 && r.w == 5 && r.tiles_x == 1 && r.tiles_y == 1, "tiny image: one tile, map 7x5");
    free(img);
    /* 2048 x 2048 at scale 0.5: predicted need before, held after, and no growth on a repeat */
    size_t before = dd_scorer_bytes_for(s, 2048, 2048);
    img = picture(2048, 2048, 0);
    CHECK(dd_scorer_run(s, img, 2048, 2048, &r, &err) == DD_OK, "run 2048x2048: %s", err.msg);
    size_t held = dd_scorer_memory(s);
    CHECK(held == before, "memory held %zu == predicted %zu", held, before);
    /* per input pixel: stitched map (1/4 at scale 0.5), working image (3/4), output map (1) floats */
    size_t px = (size_t)2048 * 2048;
    CHECK(held < px * sizeof(float) * 3, "2048x2048 without reconstruction holds %.1f MiB (< 12 bytes per input pixel)",
          held / 1048576.0);
    dd_scorer_run(s, img, 2048, 2048, &r, &err);
    CHECK(dd_scorer_memory(s) == held, "no growth on a second image of the same size");
    free(img);
    dd_scorer_free(s);
    dd_model_free(m);
}

/* The public API on a tiled model file: grey U8, RGB F32 and a 16-bit PNG agree; the
 * map is at the input size; a budget refuses a too-large image and leaves the context usable. */
static void test_api_tiled(void) {
    char dir[] = "/tmp/dd_scorer_XXXXXX", path[256], png[256];
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return; }
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    dd_model *m = tiny_model(1.0f);
    dd_error err = {0};
    CHECK(m && dd_model_save(m, path, 0, NULL, 0, &err) == DD_OK, "save: %s", err.msg);
    dd_model_free(m);
    diffad_params p;
    diffad_params_init(&p);
    p.threads = 1;
    diffad_ctx *c = NULL;
    char msg[512];
    CHECK(diffad_create(path, &p, &c, msg, sizeof msg) == DIFFAD_OK, "create: %s", msg);
    if (!c) return;
    const int H = 50, W = 70;
    float *rgb = picture(H, W, 1);
    unsigned char *g8 = malloc((size_t)H * W);
    for (int i = 0; i < H * W; i++) g8[i] = (unsigned char)lrintf(rgb[3 * i] * 255);
    for (int i = 0; i < H * W * 3; i++) rgb[i] = g8[i / 3] / 255.0f;
    diffad_image f = {rgb, W, H, 3, (size_t)W * 3 * sizeof(float), DIFFAD_F32};
    diffad_image g = {g8, W, H, 1, (size_t)W, DIFFAD_U8};
    diffad_result a, b;
    CHECK(diffad_predict(c, &f, &a) == DIFFAD_OK, "predict F32: %s", diffad_error(c));
    float sa = a.score;
    float *ma = malloc((size_t)H * W * sizeof(float));
    memcpy(ma, a.map, (size_t)H * W * sizeof(float));
    CHECK(a.map_width == W && a.map_height == H && a.tiles_x == 3 && a.tiles_y == 2 && a.work_width == W,
          "map at the input size %dx%d, %dx%d tiles", a.map_width, a.map_height, a.tiles_x, a.tiles_y);
    CHECK(diffad_predict(c, &g, &b) == DIFFAD_OK, "predict grey U8: %s", diffad_error(c));
    CHECK(b.score == sa && !memcmp(ma, b.map, (size_t)H * W * sizeof(float)), "grey U8 == F32 k/255, bit for bit");
    /* a 16-bit grey PNG of the same values (k/255 * 65535 is exact for k*257) */
    snprintf(png, sizeof png, "%s/g16.png", dir);
    float *grey = malloc((size_t)H * W * sizeof(float));
    for (int i = 0; i < H * W; i++) grey[i] = g8[i] / 255.0f;
    CHECK(dd_write_png_gray16(png, grey, H, W, &err) == DD_OK, "write 16-bit: %s", err.msg);
    dd_image im = {0};
    CHECK(dd_image_load_rgb(png, &im, &err) == DD_OK, "load 16-bit: %s", err.msg);
    diffad_image h16 = {im.data, im.w, im.h, 3, (size_t)im.w * 3 * sizeof(float), DIFFAD_F32};
    CHECK(diffad_predict(c, &h16, &b) == DIFFAD_OK, "predict 16-bit: %s", diffad_error(c));
    CHECK(fabsf(b.score - sa) < 1e-6f, "16-bit file scores as the 8-bit values (%.9g vs %.9g)", b.score, sa);
    dd_image_free(&im);
    diffad_free(c);
    /* a budget: enough for this image, not for 4000x4000 */
    p.memory_budget = 64u << 20;
    CHECK(diffad_create(path, &p, &c, msg, sizeof msg) == DIFFAD_OK, "create with budget: %s", msg);
    if (c) {
        size_t big = (size_t)4000 * 4000;
        unsigned char *z = calloc(big, 1);
        diffad_image bi = {z, 4000, 4000, 1, 4000, DIFFAD_U8};
        int rc = diffad_predict(c, &bi, &b);
        CHECK(rc == DIFFAD_E_NOMEM && strstr(diffad_error(c), "budget"), "4000x4000 over a 64 MiB budget: %d %s", rc,
              diffad_error(c));
        CHECK(diffad_predict(c, &g, &b) == DIFFAD_OK && b.score == sa, "context still scores after the refusal");
        free(z);
        diffad_free(c);
    }
    free(rgb), free(g8), free(ma), free(grey);
    unlink(png), unlink(path), rmdir(dir);
}

int main(void) {
    test_positions();
    test_work_size();
    test_one_tile_agreement();
    test_stitch_naive();
    test_sizes_and_memory();
    test_map_sigma();
    test_api_tiled();
    return check_summary("test_scorer");
}
