/* test_settings.c — the key-table engine (core/settings_table.h) through its two
 * tables, the model keys (model/config.h) and the training keys with the
 * profiles (train/settings.h): NaN and infinities refused naming the key, unknown
 * keys named with their origin, ranges, whole numbers, exact 64-bit seeds, enums,
 * strings, the custom size / multiplier / attention keys, JSON config files, and
 * the model JSON of model files: the same text as before the split (files
 * written before still load) and an exact round trip; the JSON writers (valid
 * UTF-8 out whatever comes in, null for non-finite numbers). */
#include "train/settings.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/fileio.h"
#include "core/json.h"
#include "core/text.h"
#include "core/limits.h"
#include "data/synth.h"

static dd_settings cpu(void) {
    dd_settings s;
    dd_error e = {0};
    dd_settings_profile(&s, "cpu", &e);
    return s;
}

/* set must fail with `code`, naming every word of `names` in the message. */
static void expect_fail(const char *key, const char *value, int code, const char *must1, const char *must2) {
    dd_settings s = cpu(), before = s;
    dd_error e = {0};
    int rc = dd_settings_set(&s, key, value, "command line", &e);
    CHECK(rc == code && strstr(e.msg, must1) && (!must2 || strstr(e.msg, must2)),
          "--%s %s: rc %d (want %d), '%s'", key, value, rc, code, e.msg);
    CHECK(!memcmp(&s, &before, sizeof s), "--%s %s: a refused value changes nothing", key, value);
}

static void test_non_finite(void) {
    const char *bad[] = {"nan", "NaN", "-nan", "inf", "-inf", "infinity", "1e999", "-1e999"};
    const char *float_keys[] = {"lr_unet", "guide_w", "image_threshold", "val_fraction", "ema_decay", "minutes", "snr_gamma",
                                "intensity_source_prob"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        for (size_t k = 0; k < sizeof float_keys / sizeof *float_keys; k++)
            expect_fail(float_keys[k], bad[i], DD_E_INVALID, float_keys[k], "command line");
    expect_fail("steps", "nan", DD_E_INVALID, "steps", "finite");
    expect_fail("snr_gamma", "-1", DD_E_RANGE, "snr_gamma", "command line");
    expect_fail("intensity_source_prob", "1.5", DD_E_RANGE, "intensity_source_prob", "command line");
    expect_fail("batch", "inf", DD_E_INVALID, "batch", "finite");
    /* in a model file's stored config: named with the file */
    dd_model_config m;
    dd_error e = {0};
    int rc = dd_model_config_from_json(&m, "{\"score_hi\":\"nan\"}", "x.safetensors (stored config)", &e);
    CHECK(rc && strstr(e.msg, "score_hi") && strstr(e.msg, "x.safetensors"), "stored NaN: %d '%s'", rc, e.msg);
    rc = dd_model_config_from_json(&m, "{\"pixel_threshold\":\"-Infinity\"}", "y", &e);
    CHECK(rc && strstr(e.msg, "pixel_threshold"), "stored -Infinity: %d '%s'", rc, e.msg);
    /* the region keys (issue 13): bad values named with the key, good ones kept */
    static const char *region_bad[][2] = {{"min_area", "-1"},     {"min_area", "2.5"},        {"min_area", "268435457"},
                                          {"max_regions", "-1"},  {"max_regions", "1025"},    {"mm_per_pixel", "nan"},
                                          {"mm_per_pixel", "-0.1"}, {"mm_per_pixel", "inf"}, {"mm_per_pixel", "1001"}};
    for (size_t i = 0; i < sizeof region_bad / sizeof *region_bad; i++) {
        char txt[128];
        snprintf(txt, sizeof txt, "{\"%s\":\"%s\"}", region_bad[i][0], region_bad[i][1]);
        rc = dd_model_config_from_json(&m, txt, "r.safetensors", &e);
        CHECK(rc && strstr(e.msg, region_bad[i][0]) && strstr(e.msg, "r.safetensors"), "stored %s %s: %d '%s'", region_bad[i][0],
              region_bad[i][1], rc, e.msg);
        dd_settings rs = cpu();
        rc = dd_settings_set(&rs, region_bad[i][0], region_bad[i][1], "command line", &e);
        CHECK(rc && strstr(e.msg, region_bad[i][0]), "--%s %s: %d '%s'", region_bad[i][0], region_bad[i][1], rc, e.msg);
    }
    rc = dd_model_config_from_json(&m, "{\"min_area\":\"50\",\"max_regions\":\"0\",\"mm_per_pixel\":\"0.035\"}", "r", &e);
    CHECK(rc == DD_OK && m.min_area == 50 && m.max_regions == 0 && m.mm_per_pixel == 0.035f && dd_model_config_check(&m, &e) == DD_OK,
          "stored region keys read: %s", e.msg);
    /* the model check refuses what the key table would (a config built in code) */
    m.min_area = -3;
    CHECK(dd_model_config_check(&m, &e) == DD_E_RANGE && strstr(e.msg, "min_area"), "check min_area: '%s'", e.msg);
    m.min_area = 0, m.mm_per_pixel = NAN;
    CHECK(dd_model_config_check(&m, &e) == DD_E_RANGE && strstr(e.msg, "mm_per_pixel"), "check mm_per_pixel: '%s'", e.msg);
    m.mm_per_pixel = 0, m.max_regions = 5000;
    CHECK(dd_model_config_check(&m, &e) == DD_E_RANGE && strstr(e.msg, "max_regions"), "check max_regions: '%s'", e.msg);
    /* and in a config file */
    dd_settings s = cpu();
    dd_json *j = NULL;
    const char *txt = "{\"batch\": 4, \"focal_gamma\": \"inf\"}";
    CHECK(dd_json_parse(txt, strlen(txt), "cfg.json", &j, &e) == DD_OK, "parse: %s", e.msg);
    rc = dd_settings_apply_json(&s, j, "cfg.json", 0, &e);
    CHECK(rc && strstr(e.msg, "focal_gamma") && strstr(e.msg, "cfg.json"), "config file inf: %d '%s'", rc, e.msg);
    dd_json_free(j);
}

static void test_keys(void) {
    dd_error e = {0};
    /* unknown keys: named, with the origin and the hint */
    expect_fail("bogus_key", "1", DD_E_INVALID, "bogus_key", "unknown setting");
    dd_settings s = cpu();
    int rc = dd_settings_set(&s, "bogus_key", "1", "my.json", &e);
    CHECK(rc && strstr(e.msg, "my.json") && strstr(e.msg, "--help"), "unknown: '%s'", e.msg);
    /* ranges and whole numbers */
    expect_fail("batch", "1", DD_E_RANGE, "batch", "out of range");
    char big[32];
    snprintf(big, sizeof big, "%d", DD_MAX_BATCH + 1);
    expect_fail("batch", big, DD_E_RANGE, "batch", NULL);
    expect_fail("steps", "1.5", DD_E_INVALID, "steps", "whole");
    expect_fail("steps", "12abc", DD_E_INVALID, "steps", "number");
    expect_fail("val_fraction", "0.95", DD_E_RANGE, "val_fraction", NULL);
    expect_fail("topk", "-1", DD_E_RANGE, "topk", NULL);
    expect_fail("map_sigma", "-0.5", DD_E_RANGE, "map_sigma", NULL);
    expect_fail("map_sigma", "65", DD_E_RANGE, "map_sigma", NULL);
    expect_fail("seed", "-3", DD_E_RANGE, "seed", NULL);
    s = cpu();
    CHECK(dd_settings_set(&s, "batch", "16", "t", &e) == DD_OK && s.train.batch == 16, "batch 16");
    CHECK(dd_settings_set(&s, "steps", "1e3", "t", &e) == DD_OK && s.train.steps == 1000, "steps 1e3");
    CHECK(dd_settings_set(&s, "lr_seg", "3e-4", "t", &e) == DD_OK && s.model.lr_seg == 3e-4f, "lr_seg");
    CHECK(dd_settings_set(&s, "seed", "12345678901234567", "t", &e) == DD_OK && s.train.seed == 12345678901234567ull,
          "a 64-bit seed is exact: %llu", (unsigned long long)s.train.seed);
    /* enums, from the data layer's names */
    CHECK(dd_settings_set(&s, "synth_mode", "texture", "t", &e) == DD_OK && s.train.synth_mode == DD_SYNTH_TEXTURE, "synth_mode");
    CHECK(dd_settings_set(&s, "foreground", "random", "t", &e) == DD_OK && s.train.fg_mode == DD_FG_RANDOM, "foreground");
    CHECK(dd_settings_set(&s, "lr_schedule", "cosine", "t", &e) == DD_OK && s.train.lr_schedule == DD_LR_COSINE, "lr_schedule");
    CHECK(dd_settings_set(&s, "conv_algo", "winograd", "t", &e) == DD_OK && s.model.conv_algo == DD_CONV_WINOGRAD, "conv_algo");
    expect_fail("foreground", "maybe", DD_E_INVALID, "foreground", "'estimate'");
    expect_fail("conv_algo", "fast", DD_E_INVALID, "conv_algo", "'direct'");
    /* strings */
    char longs[1100];
    memset(longs, 'a', sizeof longs - 1);
    longs[sizeof longs - 1] = 0;
    expect_fail("textures", longs, DD_E_RANGE, "textures", "too long");
    CHECK(dd_settings_set(&s, "textures", "/data/tex", "t", &e) == DD_OK && !strcmp(s.train.textures, "/data/tex"), "textures");
    /* the custom keys */
    CHECK(dd_settings_set(&s, "size", "96x160", "t", &e) == DD_OK && s.model.unet.h == 96 && s.model.unet.w == 160, "size HxW");
    CHECK(dd_settings_set(&s, "size", "64", "t", &e) == DD_OK && s.model.unet.h == 64 && s.model.unet.w == 64, "size square");
    expect_fail("size", "12x", DD_E_INVALID, "size", "HxW");
    expect_fail("size", "16x16", DD_E_INVALID, "size", "range");
    CHECK(dd_settings_set(&s, "channel_mult", "1,2", "t", &e) == DD_OK && s.model.unet.levels == 2 &&
              s.model.unet.mult[1] == 2, "channel_mult");
    expect_fail("channel_mult", "1,99", DD_E_INVALID, "channel_mult", NULL);
    expect_fail("channel_mult", "none", DD_E_INVALID, "channel_mult", NULL);
    CHECK(dd_settings_set(&s, "attention", "none", "t", &e) == DD_OK && s.model.unet.n_attn == 0, "attention none");
    CHECK(dd_settings_set(&s, "attention", "32, 8", "t", &e) == DD_OK && s.model.unet.n_attn == 2 &&
              s.model.unet.attn[1] == 8, "attention list");
    /* profiles */
    CHECK(dd_settings_profile(&s, "paper", &e) == DD_OK && s.model.unet.h == 256 && s.train.batch == 16, "paper profile");
    CHECK(dd_settings_profile(&s, "gpu", &e) == DD_E_INVALID && strstr(e.msg, "gpu"), "unknown profile: '%s'", e.msg);
}

static void test_json(void) {
    dd_error e = {0};
    /* the stored model config: the text model files have carried so far, plus
     * train_ts_min, train_tb_max, grey_noise, tile_scale and tile_overlap (added 2026-11-30),
     * the region keys min_area, max_regions, mm_per_pixel (issue 13), precision (issue 12) and
     * snr_gamma (2026-12-02) and map_sigma (2026-12-03) */
    dd_settings s = cpu();
    char *j = dd_model_config_json(&s.model);
    const char *golden =
        "{\"size\":\"128x128\",\"base_channels\":\"32\",\"channel_mult\":\"1,2,2,4\",\"res_blocks\":\"1\","
        "\"attention\":\"16\",\"heads\":\"4\",\"groups\":\"32\",\"seg_width\":\"16\",\"T\":\"1000\",\"t_s\":\"200\","
        "\"t_b\":\"400\",\"guide_w\":\"1\",\"train_ts_max\":\"299\",\"train_tb_min\":\"300\",\"train_ts_min\":\"0\",\"train_tb_max\":\"0\",\"snr_gamma\":\"0\",\"grey_noise\":\"0\","
        "\"tile_scale\":\"0\",\"tile_overlap\":\"0.25\",\"lr_unet\":\"0.000500000024\",\"lr_seg\":\"0.00100000005\",\"clip_norm\":\"0\",\"focal_weight\":\"5\","
        "\"focal_alpha\":\"0.5\",\"focal_gamma\":\"4\",\"smoothl1_beta\":\"1\",\"topk\":\"0\",\"map_sigma\":\"0\",\"conv_algo\":\"auto\",\"precision\":\"auto\","
        "\"image_threshold\":\"0\",\"pixel_threshold\":\"0\",\"score_lo\":\"0\",\"score_hi\":\"0\","
        "\"min_area\":\"0\",\"max_regions\":\"16\",\"mm_per_pixel\":\"0\",\"review\":\"0\",\"review_lo\":\"0\",\"review_hi\":\"0\"}";
    CHECK(j && !strcmp(j, golden), "model JSON of the cpu profile:\n%s\nexpected\n%s", j ? j : "(null)", golden);
    free(j);
    {
        /* a file written before the timestep-range keys existed loads with the paper's ranges */
        const char *old =
            "{\"size\":\"128x128\",\"T\":\"1000\",\"train_ts_max\":\"299\",\"train_tb_min\":\"300\"}";
        dd_model_config mc;
        memset(&mc, 0x55, sizeof mc);
        CHECK(dd_model_config_from_json(&mc, old, "old file", &e) == DD_OK && mc.train_ts_min == 0 &&
                  mc.train_tb_max == 0 && mc.snr_gamma == 0 && mc.map_sigma == 0 && mc.grey_noise == 0 && mc.train_ts_max == 299 && mc.min_area == 0 &&
                  mc.max_regions == 16 && mc.mm_per_pixel == 0 && mc.precision == DD_PREC_F32,
              "an old model config without train_ts_min/train_tb_max (and without precision: f32, as it was calibrated): %s",
              e.msg);
    }

    /* round trip of awkward values: every float bit, lists, enum */
    dd_settings_profile(&s, "paper", &e);
    s.model.image_threshold = 0.1234567891f;
    s.model.pixel_threshold = -3.4e-38f;
    s.model.score_lo = 1.17549435e-38f;
    s.model.score_hi = 9.87654e29f;
    s.model.lr_seg = nextafterf(1e-5f, 1.0f);
    s.model.unet.n_attn = 0;
    s.model.conv_algo = DD_CONV_DIRECT;
    s.model.topk = 77;
    s.model.map_sigma = 1.75f;
    j = dd_model_config_json(&s.model);
    dd_model_config back;
    memset(&back, 0xAB, sizeof back);
    int rc = j ? dd_model_config_from_json(&back, j, "round trip", &e) : -1;
    CHECK(rc == DD_OK, "read back: %s", e.msg);
    char *j2 = dd_model_config_json(&back);
    CHECK(j && j2 && !strcmp(j, j2), "JSON round trip:\n%s\n%s", j ? j : "", j2 ? j2 : "");
    CHECK(back.image_threshold == s.model.image_threshold && back.pixel_threshold == s.model.pixel_threshold &&
              back.score_lo == s.model.score_lo && back.score_hi == s.model.score_hi && back.lr_seg == s.model.lr_seg &&
              back.unet.n_attn == 0 && back.conv_algo == DD_CONV_DIRECT && back.topk == 77 && back.map_sigma == 1.75f &&
              back.unet.levels == s.model.unet.levels && !memcmp(back.unet.mult, s.model.unet.mult, sizeof(int) * 6),
          "values bit for bit");
    free(j);
    free(j2);

    /* stored configs are strict and model-only; missing keys keep the paper defaults */
    dd_model_config m;
    rc = dd_model_config_from_json(&m, "{\"batch\":\"8\"}", "f.safetensors", &e);
    CHECK(rc && strstr(e.msg, "batch") && strstr(e.msg, "f.safetensors"), "a training key in a model config: '%s'", e.msg);
    rc = dd_model_config_from_json(&m, "{\"size\":\"64x96\"}", "old", &e);
    CHECK(rc == DD_OK && m.unet.h == 64 && m.unet.w == 96 && m.T == 1000 && m.seg_width == 64, "partial config: %s", e.msg);
    rc = dd_model_config_from_json(&m, "[1]", "arr", &e);
    CHECK(rc && strstr(e.msg, "arr"), "not an object: '%s'", e.msg);

    /* config files: numbers, strings and lists */
    char path[] = "/tmp/dd_test_settings_XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    const char *cfg = "{\"batch\": 4, \"channel_mult\": [1, 2, 4], \"attention\": [], \"synth_mode\": \"texture\","
                      " \"guide_w\": 0.5, \"seed\": \"18000000000000000000\"}";
    CHECK(dd_write_file_atomic(path, cfg, strlen(cfg), &e) == DD_OK, "write config: %s", e.msg);
    s = cpu();
    rc = dd_settings_load_file(&s, path, &e);
    CHECK(rc == DD_OK && s.train.batch == 4 && s.model.unet.levels == 3 && s.model.unet.mult[2] == 4 &&
              s.model.unet.n_attn == 0 && s.train.synth_mode == DD_SYNTH_TEXTURE && s.model.guide_w == 0.5f &&
              s.train.seed == 18000000000000000000ull,
          "config file: %s", e.msg);
    const char *bad = "{\"batch\": 4, \"no_such\": 1}";
    dd_write_file_atomic(path, bad, strlen(bad), &e);
    rc = dd_settings_load_file(&s, path, &e);
    CHECK(rc && strstr(e.msg, "no_such") && strstr(e.msg, path), "unknown key in a file: '%s'", e.msg);
    const char *wrong = "{\"attention\": [\"x\"]}";
    dd_write_file_atomic(path, wrong, strlen(wrong), &e);
    rc = dd_settings_load_file(&s, path, &e);
    CHECK(rc && strstr(e.msg, "attention"), "list of strings: '%s'", e.msg);
    unlink(path);
    /* model_only refuses training keys by name */
    dd_json *jj = NULL;
    const char *t = "{\"steps\": 5}";
    dd_json_parse(t, strlen(t), "m", &jj, &e);
    rc = dd_settings_apply_json(&s, jj, "m", 1, &e);
    CHECK(rc && strstr(e.msg, "not a model setting") && strstr(e.msg, "steps"), "model_only: '%s'", e.msg);
    dd_json_free(jj);
}

static void test_help(void) {
    dd_settings s = cpu();
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return;
    dd_settings_print_help(&s, f);
    fclose(f);
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    CHECK(lines == dd_model_key_table()->n + dd_train_key_table()->n, "one help line per key (%d)", lines);
    CHECK(strstr(buf, "--size               128x128") && strstr(buf, "--foreground         auto") &&
              strstr(buf, "--lr_schedule        constant"),
          "help shows current values:\n%s", buf);
    free(buf);
}

/* Independent of the library: is s[0..n) valid UTF-8 (no overlongs, surrogates, > U+10FFFF)? */
static int valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], cp, k;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xE0) == 0xC0) k = 1, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0) k = 2, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0) k = 3, cp = c & 0x07;
        else return 0;
        for (unsigned j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        static const unsigned min[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += k + 1;
    }
    return 1;
}

/* The JSON writers (core/json.h, core/text.h): always valid JSON in valid UTF-8, each invalid
 * byte as U+FFFD, valid text kept; no NaN token for non-finite numbers (issue 14 item 10). */
static void test_json_writer(void) {
    static const struct {
        const char *in, *want; /* want: the string the strict reader gives back */
    } cases[] = {
        {"plain \"q\" \\ \x01\n", "plain \"q\" \\ \x01\n"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"}, /* é € U+1F600 */
        {"latin1 caf\xe9.png", "latin1 caf\xef\xbf\xbd.png"},
        {"a\xff\xfe" "b", "a\xef\xbf\xbd\xef\xbf\xbd" "b"},
        {"overlong \xc0\xaf", "overlong \xef\xbf\xbd\xef\xbf\xbd"},
        {"surrogate \xed\xa0\x80", "surrogate \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"big \xf4\x90\x80\x80", "big \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"cut \xe2\x82", "cut \xef\xbf\xbd\xef\xbf\xbd"},
        {"stray \x80 x", "stray \xef\xbf\xbd x"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *mem = NULL;
        size_t mlen = 0;
        FILE *f = open_memstream(&mem, &mlen);
        if (!f) { SKIP("open_memstream"); return; }
        dd_json_write_string(f, cases[i].in);
        fclose(f);
        char esc[512] = "";
        dd_json_escape(esc, sizeof esc, cases[i].in);
        dd_textbuf tb;
        dd_textbuf_init(&tb);
        dd_textbuf_json_string(&tb, cases[i].in);
        CHECK(valid_utf8((const unsigned char *)mem, mlen), "case %zu: output is valid UTF-8: %s", i, mem);
        CHECK(!strcmp(mem, esc) && tb.s && !strcmp(mem, tb.s), "case %zu: the three writers agree: %s | %s | %s", i, mem,
              esc, tb.s ? tb.s : "");
        dd_json *j = NULL;
        dd_error e = {0};
        CHECK(dd_json_parse(mem, mlen, "out", &j, &e) == DD_OK && j->type == DD_JSTR && !strcmp(j->str, cases[i].want),
              "case %zu: reads back as expected: %s (%s)", i, mem, e.msg);
        dd_json_free(j);
        dd_textbuf_free(&tb);
        free(mem);
    }
    const double nums[] = {NAN, INFINITY, -INFINITY, 0.25, (double)0.1f};
    const char *want[] = {"null", "null", "null", "0.25", "0.100000001"};
    for (int i = 0; i < 5; i++) {
        char *mem = NULL;
        size_t mlen = 0;
        FILE *f = open_memstream(&mem, &mlen);
        if (!f) { SKIP("open_memstream"); return; }
        dd_json_write_number(f, nums[i]);
        fclose(f);
        CHECK(!strcmp(mem, want[i]), "number %g written as %s, want %s", nums[i], mem, want[i]);
        free(mem);
    }
}

int main(void) {
    test_json_writer();
    test_non_finite();
    test_keys();
    test_json();
    test_help();
    return check_summary("test_settings");
}
