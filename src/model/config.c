/* config.c — the model key table and its JSON form (see config.h). */
#include "model/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(dd_conv_algo) == sizeof(int), "conv_algo is stored through an int (enum key)");
_Static_assert(sizeof(dd_precision) == sizeof(int), "precision is stored through an int (enum key)");

/* "HxW" or one number for a square, each side in lo..hi. */
static int parse_size(const dd_key *k, void *obj, const char *v, char *why, size_t cap) {
    dd_model_config *m = obj;
    int h, w, n = -1;
    if (sscanf(v, "%dx%d%n", &h, &w, &n) != 2 || n < 0 || v[n]) {
        n = -1;
        if (sscanf(v, "%d%n", &h, &n) != 1 || n < 0 || v[n]) {
            snprintf(why, cap, "needs HxW (e.g. 128x128)");
            return -1;
        }
        w = h;
    }
    if (h < k->lo || h > k->hi || w < k->lo || w > k->hi) {
        snprintf(why, cap, "is out of range %g..%g per side", k->lo, k->hi);
        return -1;
    }
    m->unet.h = h, m->unet.w = w;
    return 0;
}

static void print_size(const dd_key *k, const void *obj, char *buf, size_t cap) {
    (void)k;
    const dd_model_config *m = obj;
    snprintf(buf, cap, "%dx%d", m->unet.h, m->unet.w);
}

/* "a,b,c" (or "none" / "" for an empty list), each in lo..hi, at most max. */
static int parse_list(const char *v, int *out, int max, int *n, double lo, double hi) {
    *n = 0;
    if (!strcmp(v, "none") || !*v) return 0;
    const char *p = v;
    while (*p) {
        char *e;
        long x = strtol(p, &e, 10);
        if (e == p || x < lo || x > hi || *n >= max) return -1;
        out[(*n)++] = (int)x;
        p = e;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p) return -1;
    }
    return 0;
}

static void print_list(const int *v, int n, char *buf, size_t cap) {
    buf[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, "%s%d", i ? "," : "", v[i]);
    }
    if (!n) snprintf(buf, cap, "none");
}

static int parse_mult(const dd_key *k, void *obj, const char *v, char *why, size_t cap) {
    dd_model_config *m = obj;
    int t[DD_UNET_MAX_LEVELS], n;
    if (parse_list(v, t, DD_UNET_MAX_LEVELS, &n, k->lo, k->hi) || n == 0) {
        snprintf(why, cap, "needs 1..%d comma-separated integers %g..%g", DD_UNET_MAX_LEVELS, k->lo, k->hi);
        return -1;
    }
    memcpy(m->unet.mult, t, sizeof(int) * (size_t)n);
    m->unet.levels = n;
    return 0;
}

static void print_mult(const dd_key *k, const void *obj, char *buf, size_t cap) {
    (void)k;
    const dd_model_config *m = obj;
    print_list(m->unet.mult, m->unet.levels, buf, cap);
}

static int parse_attn(const dd_key *k, void *obj, const char *v, char *why, size_t cap) {
    dd_model_config *m = obj;
    int t[DD_UNET_MAX_LEVELS], n;
    if (parse_list(v, t, DD_UNET_MAX_LEVELS, &n, k->lo, k->hi)) {
        snprintf(why, cap, "needs up to %d comma-separated map sizes %g..%g or 'none'", DD_UNET_MAX_LEVELS, k->lo,
                 k->hi);
        return -1;
    }
    memcpy(m->unet.attn, t, sizeof(int) * (size_t)n);
    m->unet.n_attn = n;
    return 0;
}

static void print_attn(const dd_key *k, const void *obj, char *buf, size_t cap) {
    (void)k;
    const dd_model_config *m = obj;
    print_list(m->unet.attn, m->unet.n_attn, buf, cap);
}

/* Indexed by dd_conv_algo. */
static const char *const CONV_ALGO_NAMES[] = {"direct", "winograd", "auto", NULL};
/* Indexed by dd_precision. */
static const char *const PRECISION_NAMES[] = {"f32", "bf16", "auto", NULL};

#define M(f) offsetof(dd_model_config, f)
#define NUM(name, type, field, lo, hi, text) {name, type, M(field), lo, hi, .help = text}
/* The order is the order of the stored metadata and of the help. */
static const dd_key KEYS[] = {
    {"size", DD_KEY_CUSTOM, M(unet.h), 32, 4096, .parse = parse_size, .print = print_size,
     .help = "model input HxW, e.g. 128x128 (any aspect; each side divisible by 32 and by 2^(levels-1))"},
    NUM("base_channels", DD_KEY_INT, unet.base, 2, 1024, "denoiser base channels C"),
    {"channel_mult", DD_KEY_CUSTOM, M(unet.mult), 1, 16, .parse = parse_mult, .print = print_mult,
     .help = "denoiser channel multipliers per level, e.g. 1,2,2,4"},
    NUM("res_blocks", DD_KEY_INT, unet.res_blocks, 1, 8, "residual blocks per level"),
    {"attention", DD_KEY_CUSTOM, M(unet.attn), 1, 4096, .parse = parse_attn, .print = print_attn,
     .help = "feature-map sizes (shorter side) with self-attention, e.g. 32,16,8; 'none'"},
    NUM("heads", DD_KEY_INT, unet.heads, 1, 64, "attention heads"),
    NUM("groups", DD_KEY_INT, unet.groups, 1, 1024, "GroupNorm groups (gcd(groups, C) where C is not a multiple)"),
    NUM("seg_width", DD_KEY_INT, seg_width, 1, 256, "segmentation net width w"),
    NUM("T", DD_KEY_INT, T, 2, DD_T_MAX, "diffusion steps"),
    NUM("t_s", DD_KEY_INT, t_s, 0, DD_T_MAX - 1, "inference small noise level"),
    NUM("t_b", DD_KEY_INT, t_b, 1, DD_T_MAX - 1, "inference large noise level"),
    NUM("guide_w", DD_KEY_FLOAT, guide_w, 0, 10, "norm guidance weight w"),
    NUM("train_ts_max", DD_KEY_INT, train_ts_max, 0, DD_T_MAX - 1, "training: upper end of t_s"),
    NUM("train_tb_min", DD_KEY_INT, train_tb_min, 1, DD_T_MAX - 1, "training: t_b ~ U{train_tb_min..train_tb_max}"),
    NUM("train_ts_min", DD_KEY_INT, train_ts_min, 0, DD_T_MAX - 1, "training: t_s ~ U{train_ts_min..train_ts_max}"),
    NUM("train_tb_max", DD_KEY_INT, train_tb_max, 0, DD_T_MAX - 1, "training: upper end of t_b (0: T-1)"),
    NUM("snr_gamma", DD_KEY_FLOAT, snr_gamma, 0, 1e6, "training: Min-SNR-gamma weight of the noise loss, min(SNR_t, gamma) / SNR_t per sample (0: off, the paper)"),
    NUM("grey_noise", DD_KEY_INT, grey_noise, -1, 1, "noise shared by the 3 channels: 1, 0 (per channel, paper), -1 auto (1 when every training image is grey)"),
    NUM("tile_scale", DD_KEY_FLOAT, tile_scale, -1, 16, "working scale: 0 fit the image to the model size; f > 0 resize by f (1 native) and tile it (crops in training); -1 auto (1 when every training image is at least the model size)"),
    NUM("tile_overlap", DD_KEY_FLOAT, tile_overlap, 0, 0.9, "tiled inference: overlap of neighbouring tiles as a share of the tile"),
    NUM("lr_unet", DD_KEY_FLOAT, lr_unet, 0, 1, "denoiser learning rate"),
    NUM("lr_seg", DD_KEY_FLOAT, lr_seg, 0, 1, "segmentation learning rate"),
    NUM("clip_norm", DD_KEY_FLOAT, clip_norm, 0, 1e9, "clip the global gradient norm (0: off)"),
    NUM("focal_weight", DD_KEY_FLOAT, focal_weight, 0, 1000, "weight of the focal loss"),
    NUM("focal_alpha", DD_KEY_FLOAT, focal_alpha, 0, 1, "focal alpha"),
    NUM("focal_gamma", DD_KEY_FLOAT, focal_gamma, 0, 10, "focal gamma"),
    NUM("smoothl1_beta", DD_KEY_FLOAT, smoothl1_beta, 1e-6, 100, "SmoothL1 beta"),
    NUM("topk", DD_KEY_INT, topk, 0, 1 << 30, "image score = mean of the top-k map values (0: 50 scaled by area)"),
    NUM("map_sigma", DD_KEY_FLOAT, map_sigma, 0, DD_MAX_MAP_SIGMA, "anomaly map smoothed by a Gaussian of this sigma (working pixels) before the score, the regions and the pixel map (0: off, the paper)"),
    {"conv_algo", DD_KEY_ENUM, M(conv_algo), .names = CONV_ALGO_NAMES,
     .help = "convolution algorithm: auto (Winograd for training layers with >= 64 channels), direct or winograd"},
    {"precision", DD_KEY_ENUM, M(precision), .names = PRECISION_NAMES,
     .help = "convolution arithmetic: auto (bf16 where the CPU has AVX512-BF16, else f32), f32, or bf16 (refused without the instructions); weights, model files and all other ops stay float32"},
    NUM("image_threshold", DD_KEY_FLOAT, image_threshold, -1e30, 1e30, "calibrated image-score threshold (set by train)"),
    NUM("pixel_threshold", DD_KEY_FLOAT, pixel_threshold, -1e30, 1e30, "calibrated pixel threshold (set by train)"),
    NUM("score_lo", DD_KEY_FLOAT, score_lo, -1e30, 1e30, "score normalisation: typical good score (set by train)"),
    NUM("score_hi", DD_KEY_FLOAT, score_hi, -1e30, 1e30, "score normalisation: maps to 1 (set by train)"),
    NUM("min_area", DD_KEY_LONG, min_area, 0, DD_MAX_AREA,
        "defect regions: smaller ones (pixels at the input size) are ignored, and an image is NG only with a region this large (0: every region counts)"),
    NUM("max_regions", DD_KEY_INT, max_regions, 0, DD_MAX_REGIONS, "defect regions reported per image, highest peak first"),
    NUM("mm_per_pixel", DD_KEY_FLOAT, mm_per_pixel, 0, DD_MAX_MM_PER_PIXEL, "input pixel size in mm: > 0 also reports region areas in mm^2 (0: unknown)"),
    NUM("review", DD_KEY_FLOAT, review, 0, 0.5, "three-way decision: share of good calibration images sent to REVIEW below the threshold; sets review_lo/review_hi (0: OK/NG only)"),
    NUM("review_lo", DD_KEY_FLOAT, review_lo, -1e30, 1e30, "three-way decision: scores in (review_lo, review_hi] are REVIEW (set by calibration)"),
    NUM("review_hi", DD_KEY_FLOAT, review_hi, -1e30, 1e30, "three-way decision: upper end of the REVIEW band (set by calibration)"),
};

static const dd_key_table TABLE = {KEYS, (int)(sizeof KEYS / sizeof KEYS[0]), NULL};

const dd_key_table *dd_model_key_table(void) { return &TABLE; }

int dd_model_config_set(dd_model_config *m, const char *key, const char *value, const char *origin,
                        dd_error *err) {
    dd_key_group g = {&TABLE, m};
    return dd_keys_set(&g, 1, key, value, origin, err);
}

char *dd_model_config_json(const dd_model_config *m) {
    dd_textbuf b;
    dd_textbuf_init(&b);
    int first = 1;
    dd_textbuf_puts(&b, "{");
    dd_keys_json_members(&TABLE, m, &b, &first);
    dd_textbuf_puts(&b, "}");
    if (b.oom) {
        dd_textbuf_free(&b);
        return NULL;
    }
    return b.s;
}

int dd_model_config_from_json(dd_model_config *m, const char *text, const char *origin,
                              dd_error *err) {
    dd_json *j = NULL;
    int rc = dd_json_parse(text, strlen(text), origin, &j, err);
    if (rc) return rc;
    dd_model_config c;
    dd_model_config_paper(&c, 256, 256);
    c.precision = DD_PREC_F32; /* files written before the key existed were calibrated in f32 */
    dd_key_group g = {&TABLE, &c};
    rc = dd_keys_apply_json(&g, 1, j, origin, err);
    dd_json_free(j);
    if (!rc) *m = c;
    return rc;
}
