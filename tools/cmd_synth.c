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

#include "cli_opts.h"
#include "commands.h"
#include "data/dataset.h"
#include "data/image.h"
#include "core/rng.h"
#include "data/synth.h"

static const char USAGE[] =
    "usage: diffad synth --data DIR [--out grid.png] [--n 16] [--size HxW]\n"
    "                    [--textures DIR] [--seed S] [--mode object|texture]\n"
    "                    [--fg auto|none|estimate|random] [--normal-prob P]\n"
    "                    [--large-masks P] [--stroke-masks P] [--shift-sources P]\n"
    "                    [--intensity-sources P] [--binary-changed-mask 0|1]\n"
    "Writes a grid of N synthetic training samples (image | mask | anomaly source).\n";

static int fail(const char *msg) {
    fprintf(stderr, "diffad synth: %s\n", msg);
    return 2;
}

int cmd_synth(int argc, char **argv) {
    const char *data = NULL, *out = "synth_grid.png", *tex = NULL;
    long n = 16;
    unsigned long long seed = 0;
    dd_synth_config cfg;
    dd_synth_config_init(&cfg);
    int size[2] = {cfg.h, cfg.w};
    const cli_opt opts[] = {
        {"data", "DIR", CLI_STR, &data, .help = "MVTec category folder (train/good) or a folder of good images"},
        {"out", "FILE", CLI_STR, &out, .help = "the grid PNG (default synth_grid.png)"},
        {"n", "N", CLI_LONG, &n, 1, 1024, .help = "samples, 1..1024 (default 16)"},
        {"size", "HxW", CLI_CUSTOM, size, .parse = cli_parse_size, .help = "model size, default 256x256"},
        {"textures", "DIR", CLI_STR, &tex, .help = "anomaly-source images (default: built-in procedural textures)"},
        {"seed", "S", CLI_U64, &seed, .help = "seed of the samples (default 0)"},
        {"mode", "M", CLI_CHOICE, &cfg.mode, .choices = dd_synth_mode_names,
         .help = "object (default) or texture"},
        {"fg", "F", CLI_CHOICE, &cfg.fg_mode, .choices = dd_fg_mode_names,
         .help = "foreground restriction: auto (default), none, estimate or random"},
        {"normal-prob", "P", CLI_FLOAT, &cfg.normal_prob, 0, 1,
         .help = "share of untouched samples (default 0.5, as in training)"},
        {"large-masks", "P", CLI_FLOAT, &cfg.large_mask_prob, 0, 1,
         .help = "share of large smooth masks (extension, default 0)"},
        {"stroke-masks", "P", CLI_FLOAT, &cfg.stroke_mask_prob, 0, 1,
         .help = "share of thin-stroke masks: scratches, cuts, bridges, spots (training's stroke_mask_prob, default 0)"},
        {"shift-sources", "P", CLI_FLOAT, &cfg.shift_source_prob, 0, 1,
         .help = "share of defects made of the part itself displaced (training's shift_source_prob, default 0)"},
        {"intensity-sources", "P", CLI_FLOAT, &cfg.intensity_source_prob, 0, 1,
         .help = "share of defects that only make the part darker or lighter (training's intensity_source_prob, default 0)"},
        {"binary-changed-mask", "0|1", CLI_INT, &cfg.binary_changed_mask, 0, 1,
         .help = "binary parts: 1 = masks keep only the pixels the defect changed (training's binary_changed_mask)"},
    };
    const cli_spec spec = {"synth", USAGE, opts, (int)(sizeof opts / sizeof *opts), NULL, NULL, NULL, NULL, NULL};
    char msg[600];
    int pr = cli_parse(&spec, argc, argv, NULL, NULL, msg, sizeof msg);
    if (pr != CLI_OK) return pr == CLI_HELP ? 0 : fail(msg);
    cfg.h = size[0], cfg.w = size[1];
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
