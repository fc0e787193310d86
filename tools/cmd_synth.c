/* cmd_synth.c — `diffad synth`: a picture of what the model is trained on.
 *
 * Draws N synthetic training samples exactly as the trainer's feeder would
 * (same synthesiser, same per-sample seeding) and writes one PNG grid; each
 * sample is three panels: the image, its anomaly mask, the augmented anomaly
 * source (dark for normal samples). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "data/dataset.h"
#include "data/image.h"
#include "core/rng.h"
#include "data/synth.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: diffad synth --data DIR [--out grid.png] [--n 16] [--size HxW]\n"
            "                    [--textures DIR] [--seed S] [--mode object|texture]\n"
            "                    [--fg auto|none|estimate|random] [--normal-prob P]\n"
            "                    [--large-masks P]\n"
            "Writes a grid of N synthetic training samples (image | mask | anomaly source).\n"
            "  --data DIR      MVTec category folder (train/good) or a folder of good images\n"
            "  --size HxW      model size, default 256x256\n"
            "  --textures DIR  anomaly-source images (default: built-in procedural textures)\n"
            "  --normal-prob P share of untouched samples (default 0.5, as in training)\n"
            "  --large-masks P share of large smooth masks (extension, default 0)\n");
}

static int fail(const char *msg) {
    fprintf(stderr, "diffad synth: %s\n", msg);
    return 2;
}

static int parse_float(const char *s, float lo, float hi, float *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) return -1;
    *out = (float)v;
    return 0;
}

int cmd_synth(int argc, char **argv) {
    const char *data = NULL, *out = "synth_grid.png", *tex = NULL;
    long n = 16;
    unsigned long long seed = 0;
    dd_synth_config cfg;
    dd_synth_config_init(&cfg);
    char msg[700];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            snprintf(msg, sizeof msg, "unknown option or missing value: %s (see --help)", a);
            return fail(msg);
        }
        i++;
        char *end;
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--textures")) tex = v;
        else if (!strcmp(a, "--n")) {
            n = strtol(v, &end, 10);
            if (end == v || *end || n < 1 || n > 1024) return fail("--n must be 1..1024");
        } else if (!strcmp(a, "--seed")) {
            seed = strtoull(v, &end, 10);
            if (end == v || *end) return fail("--seed must be a non-negative integer");
        } else if (!strcmp(a, "--size")) {
            int h, w;
            char x;
            if (sscanf(v, "%d%c%d", &h, &x, &w) != 3 || (x != 'x' && x != 'X') || h < 8 ||
                w < 8 || h > 4096 || w > 4096)
                return fail("--size must be HxW with sides in 8..4096, e.g. 256x256");
            cfg.h = h;
            cfg.w = w;
        } else if (!strcmp(a, "--mode")) {
            if (!strcmp(v, "object")) cfg.mode = DD_SYNTH_OBJECT;
            else if (!strcmp(v, "texture")) cfg.mode = DD_SYNTH_TEXTURE;
            else return fail("--mode must be object or texture");
        } else if (!strcmp(a, "--fg")) {
            if (!strcmp(v, "auto")) cfg.fg_mode = DD_FG_AUTO;
            else if (!strcmp(v, "none")) cfg.fg_mode = DD_FG_NONE;
            else if (!strcmp(v, "estimate")) cfg.fg_mode = DD_FG_ESTIMATE;
            else if (!strcmp(v, "random")) cfg.fg_mode = DD_FG_RANDOM;
            else return fail("--fg must be auto, none, estimate or random");
        } else if (!strcmp(a, "--normal-prob")) {
            if (parse_float(v, 0, 1, &cfg.normal_prob)) return fail("--normal-prob must be in [0, 1]");
        } else if (!strcmp(a, "--large-masks")) {
            if (parse_float(v, 0, 1, &cfg.large_mask_prob))
                return fail("--large-masks must be in [0, 1]");
        } else {
            snprintf(msg, sizeof msg, "unknown option %s (see --help)", a);
            return fail(msg);
        }
    }
    if (!data) return fail("--data DIR is required (see --help)");
    cfg.texture_dir = tex;

    dd_error err = {0};
    dd_dataset *ds = NULL;
    dd_synth *s = NULL;
    int rc = dd_dataset_open(data, &ds, &err);
    if (!rc) rc = dd_synth_create(ds, &cfg, &s, &err);
    if (rc) {
        dd_dataset_free(ds);
        return fail(err.msg);
    }
    int h = cfg.h, w = cfg.w, gap = 4;
    int per_row = (int)ceil(sqrt((double)n / 3.0));
    if (per_row < 1) per_row = 1;
    int rows = (int)((n + per_row - 1) / per_row);
    int gw = per_row * (3 * w + 2 * gap) + (per_row + 1) * 3 * gap;
    int gh = rows * h + (rows + 1) * gap;
    size_t hw = (size_t)h * w;
    float *grid = malloc(sizeof(float) * (size_t)gh * gw * 3);
    float *img = malloc(sizeof(float) * hw * 3), *src = malloc(sizeof(float) * hw * 3);
    float *mask = malloc(sizeof(float) * hw);
    if (!grid || !img || !src || !mask) {
        rc = dd_fail(&err, DD_E_NOMEM, "no memory for a %dx%d grid", gh, gw);
    } else {
        for (size_t i = 0; i < (size_t)gh * gw * 3; i++) grid[i] = 0.2f;
    }
    dd_rng pick;
    dd_rng_seed(&pick, seed);
    int anomalous = 0;
    for (long k = 0; !rc && k < n; k++) {
        int item = (int)dd_rng_int(&pick, 0, ds->n_train - 1);
        float label;
        dd_synth_info info;
        rc = dd_synth_sample(s, item, seed, (uint64_t)k, img, mask, &label, src, &info, &err);
        if (rc) break;
        anomalous += label > 0;
        if (!info.anomalous)
            for (size_t i = 0; i < hw * 3; i++) src[i] = 0.08f;
        int r = (int)(k / per_row), c = (int)(k % per_row);
        int y0 = gap + r * (h + gap), x0 = 3 * gap + c * (3 * w + 5 * gap);
        dd_image_paste(grid, gh, gw, img, h, w, 3, y0, x0);
        dd_image_paste(grid, gh, gw, mask, h, w, 1, y0, x0 + w + gap);
        dd_image_paste(grid, gh, gw, src, h, w, 3, y0, x0 + 2 * (w + gap));
    }
    if (!rc) rc = dd_write_png_rgb8(out, grid, gh, gw, &err);
    if (!rc)
        printf("diffad synth: wrote %s (%ld samples, %d anomalous, %dx%d, %s mode, sources: %s)\n",
               out, n, anomalous, h, w, cfg.mode == DD_SYNTH_OBJECT ? "object" : "texture",
               tex ? tex : "built-in procedural textures");
    free(grid);
    free(img);
    free(src);
    free(mask);
    dd_synth_free(s);
    dd_dataset_free(ds);
    return rc ? fail(err.msg) : 0;
}
