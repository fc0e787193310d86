/* val_rank.c — scores finished models on the trainer's synthetic validation (train/
 * validate.h), rebuilt from each run's own held-out images, so that validation designs
 * can be compared by how well they rank runs (docs/training.md, "Validation against the
 * test set"). Never reads test/.
 *
 *   val_rank --data DIR [--textures DIR] [--foreground auto|none] [--val_fraction F]
 *            [--per_image N] [--variant paper|small] [--binary_changed_mask 0|1]
 *            [--levels TS:TB,...] [--map_sigma S,...] [--threads T] MODEL:SEED ...
 *
 * For each MODEL:SEED: the held-out split of DIR/train/good that `diffad train --seed
 * SEED --val_fraction F` made (dd_dataset_split_train), a validator over it with the
 * training synthesiser at the model's size (normal_prob, large_mask_prob and tiles at
 * their defaults; a tiled model's crops at its working scale, as the trainer validates
 * it) and N defects per image, drawn from SEED as the
 * trainer draws them; the model's weights scored on it. Variants of the pasted defects:
 *   paper  the trainer's (Perlin lattice 2^0..2^5 periods across the image)
 *   small  only fine lattices (2^4..2^6): blobs of a few pixels at 128 px, the size of
 *          real pitting and PCB faults (docs/training.md findings 6, 10)
 * --binary_changed_mask as the run was trained (the CPU profile's default is 1 since
 * 2026-11-30; it changes the masks of binary images only). --levels scores each model once
 * per pair of inference noise levels (t_s:t_b, default: the model's own), the candidates
 * of choosing the levels per model on the validation (docs/training.md). --map_sigma scores
 * each model and level pair once per map smoothing (default: the model's own).
 * Output: one JSON line per model and level pair (image AUROC, pixel AP, AUPRO, their mean = the val
 * score the trainer logs, seconds). Exit 2 on a bad argument or file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/synth.h"
#include "model/modelfile.h"
#include "model/diffusion.h"
#include "train/settings.h"
#include "train/validate.h"

static int usage(void) {
    fprintf(stderr, "usage: val_rank --data DIR [--textures DIR] [--foreground auto|none] [--val_fraction F] "
                    "[--per_image N] [--variant paper|small] [--binary_changed_mask 0|1] [--levels TS:TB,...] "
                    "[--map_sigma S,...] [--threads T] MODEL:SEED ...\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *data = NULL, *textures = NULL, *variant = "paper";
    int fg = DD_FG_AUTO, per_image = 2, threads = 2, first = argc, bcm = 0;
    int levels[DD_MAX_LEVEL_PAIRS][2], n_levels = 0; /* 0 pairs: the model's own (the trainer's parser) */
    double val_fraction = 0.1;
    float sigmas[16];
    int n_sigmas = 0; /* 0: the model's own */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strncmp(a, "--", 2) && !v) return usage();
        if (!strcmp(a, "--data")) data = v, i++;
        else if (!strcmp(a, "--textures")) textures = v, i++;
        else if (!strcmp(a, "--foreground")) {
            if (!strcmp(v, "none")) fg = DD_FG_NONE;
            else if (strcmp(v, "auto")) return usage();
            i++;
        } else if (!strcmp(a, "--val_fraction")) val_fraction = atof(v), i++;
        else if (!strcmp(a, "--per_image")) per_image = atoi(v), i++;
        else if (!strcmp(a, "--variant")) variant = v, i++;
        else if (!strcmp(a, "--threads")) threads = atoi(v), i++;
        else if (!strcmp(a, "--binary_changed_mask")) bcm = atoi(v), i++;
        else if (!strcmp(a, "--levels")) {
            dd_error e = {0};
            if (dd_level_grid_parse(v, DD_T_MAX, levels, &n_levels, "--levels", &e)) {
                fprintf(stderr, "val_rank: %s\n", e.msg);
                return 2;
            }
            i++;
        }
        else if (!strcmp(a, "--map_sigma")) {
            char *p = (char *)v, *end;
            for (n_sigmas = 0; n_sigmas < 16; p = end + 1) {
                double x = strtod(p, &end);
                if (end == p || !(x >= 0 && x <= DD_MAX_MAP_SIGMA) || (*end && *end != ',')) return usage();
                sigmas[n_sigmas++] = (float)x;
                if (!*end) break;
            }
            i++;
        }
        else if (!strncmp(a, "--", 2)) return usage();
        else {
            first = i;
            break;
        }
    }
    if (!data || first >= argc || per_image < 1 || threads < 1 || !(val_fraction > 0 && val_fraction < 1) ||
        (strcmp(variant, "paper") && strcmp(variant, "small")))
        return usage();
    dd_error err = {0};
    dd_dataset *ds = NULL;
    if (dd_dataset_open(data, &ds, &err)) {
        fprintf(stderr, "val_rank: %s\n", err.msg);
        return 2;
    }
    int status = 0;
    for (int i = first; i < argc && !status; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s", argv[i]);
        char *colon = strrchr(path, ':');
        if (!colon) {
            fprintf(stderr, "val_rank: %s: expected MODEL:SEED\n", argv[i]);
            status = 2;
            break;
        }
        *colon = 0;
        uint64_t seed = strtoull(colon + 1, NULL, 10);
        dd_model *m = NULL;
        dd_validator *v = NULL;
        int *tr = NULL, *val = NULL, ntr = 0, nval = 0;
        dd_val_metrics vm;
        dd_synth_config sc;
        dd_synth_config_init(&sc);
        int rc = dd_model_load(path, 1, 0, threads, &m, &err);
        if (!rc) {
            sc.h = m->cfg.unet.h, sc.w = m->cfg.unet.w;
            sc.fg_mode = fg;
            sc.texture_dir = textures;
            sc.work_scale = m->cfg.tile_scale; /* tiled models: crops at the working scale, as trained */
            if (!strcmp(variant, "small")) sc.perlin_scale_min = 4, sc.perlin_scale_max = 6;
            rc = dd_dataset_split_train(ds, val_fraction, seed, &tr, &ntr, &val, &nval, &err);
        }
        sc.binary_changed_mask = bcm;
        /* one set per model, scored once per level pair (as the trainer's level choice does) */
        if (!rc) rc = dd_validator_create(ds, val, nval, &sc, per_image, seed, &m->cfg, threads, &v, &err);
        for (int li = 0; li < (n_levels ? n_levels : 1) * (n_sigmas ? n_sigmas : 1) && !rc; li++) {
            dd_model_config cfg = m->cfg;
            int lv = n_sigmas ? li / n_sigmas : li;
            if (n_levels) cfg.t_s = levels[lv][0], cfg.t_b = levels[lv][1];
            if (n_sigmas) cfg.map_sigma = sigmas[li % n_sigmas];
            rc = dd_validator_set_levels(v, cfg.t_s, cfg.t_b, &err);
            if (!rc) rc = dd_validator_set_map_sigma(v, cfg.map_sigma, &err);
            if (!rc) rc = dd_validator_run(v, &m->params, &vm, &err);
            if (!rc) {
                printf("{\"model\":\"%s\",\"seed\":%llu,\"variant\":\"%s\",\"per_image\":%d,\"t_s\":%d,\"t_b\":%d,"
                       "\"map_sigma\":%g,\"n_images\":%d,\"n_anomalous\":%d,"
                       "\"image_auroc\":%.6f,\"pixel_ap\":%.6f,\"aupro\":%.6f,\"val_score\":%.6f,\"seconds\":%.2f}\n",
                       path, (unsigned long long)seed, variant, per_image, cfg.t_s, cfg.t_b, (double)cfg.map_sigma, vm.n_images, vm.n_anomalous,
                       vm.image_auroc, vm.pixel_ap, vm.aupro, (vm.image_auroc + vm.pixel_ap + vm.aupro) / 3, vm.seconds);
                fflush(stdout);
            }
        }
        dd_validator_free(v);
        if (rc) {
            fprintf(stderr, "val_rank: %s: %s\n", path, err.msg);
            status = 2;
        }
        dd_model_free(m);
        free(tr), free(val);
    }
    dd_dataset_free(ds);
    return status;
}
