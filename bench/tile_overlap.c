/* tile_overlap.c — chooses the inference tile overlap by measurement, without the test set.
 *
 * usage: tile_overlap MODEL DATA [TEXTURE_DIR] [OVERLAPS] [THREADS] [MAX_IMAGES]
 *   MODEL     a tiled model (tile_scale > 0) trained on DATA
 *   DATA      its category folder; the held-out good images are the trainer's split
 *             (val_fraction 0.1, seed 1: the defaults), never test/
 *   OVERLAPS  comma-separated list (default 0,0.25,0.5)
 *   MAX_IMAGES  use the first N held-out images only (default all)
 * Each held-out image is brought to its working size, and two synthetic defects (the
 * training synthesiser at the working size, pasted into the whole image) are added per
 * image; every image is scored through the scorer (src/infer/scorer.h) at each overlap.
 * Prints image AUROC, pixel AP and AUPRO of the synthetic set, tiles per image and ms per
 * image for each overlap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/dataset.h"
#include "data/image.h"
#include "data/synth.h"
#include "eval/metrics.h"
#include "infer/scorer.h"
#include "model/modelfile.h"

#define PER_IMAGE 2

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct sample {
    float *img, *mask; /* [wh,ww,3], [wh,ww] */
    int h, w, label;
} sample;

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: tile_overlap MODEL DATA [TEXTURE_DIR] [OVERLAPS] [THREADS] [MAX_IMAGES]\n");
        return 2;
    }
    const char *tex = argc > 3 && strcmp(argv[3], "-") ? argv[3] : NULL;
    const char *ovs = argc > 4 ? argv[4] : "0,0.25,0.5";
    int threads = argc > 5 ? atoi(argv[5]) : 0;
    int max_images = argc > 6 ? atoi(argv[6]) : 0;
    dd_error e = {0};
    dd_model *m = NULL;
    dd_dataset *ds = NULL;
    int *tr = NULL, *val = NULL, ntr = 0, nval = 0;
    if (dd_model_load(argv[1], 1, 0, threads, &m, &e) || dd_dataset_open(argv[2], &ds, &e) ||
        dd_dataset_split_train(ds, 0.1, 1, &tr, &ntr, &val, &nval, &e)) {
        fprintf(stderr, "tile_overlap: %s\n", e.msg);
        return 2;
    }
    if (max_images > 0 && nval > max_images) nval = max_images;
    if (!(m->cfg.tile_scale > 0)) {
        fprintf(stderr, "tile_overlap: %s fits whole images (tile_scale 0): nothing to tile\n", argv[1]);
        return 2;
    }
    /* the synthetic set at the working size */
    int n = nval * (1 + PER_IMAGE);
    sample *S = calloc((size_t)n, sizeof *S);
    int k = 0;
    for (int i = 0; i < nval; i++) {
        dd_image im = {0};
        if (dd_image_load_rgb(ds->train[val[i]].path, &im, &e)) {
            fprintf(stderr, "tile_overlap: %s\n", e.msg);
            return 2;
        }
        int wh, ww;
        dd_scorer_work_size(&m->cfg, im.h, im.w, &wh, &ww);
        size_t px = (size_t)wh * ww;
        float *work = malloc(px * 3 * sizeof(float));
        dd_resize(im.data, im.h, im.w, 3, work, wh, ww, &e);
        dd_image_free(&im);
        dd_synth_config c;
        dd_synth_config_init(&c);
        c.h = wh, c.w = ww, c.normal_prob = 0, c.texture_dir = tex, c.fg_mode = DD_FG_NONE;
        dd_synth *syn = NULL;
        if (dd_synth_create(NULL, &c, &syn, &e)) {
            fprintf(stderr, "tile_overlap: %s\n", e.msg);
            return 2;
        }
        for (int j = 0; j <= PER_IMAGE; j++, k++) {
            S[k].h = wh, S[k].w = ww;
            S[k].img = malloc(px * 3 * sizeof(float));
            S[k].mask = calloc(px, sizeof(float));
            float label = 0;
            if (j == 0) memcpy(S[k].img, work, px * 3 * sizeof(float));
            else dd_synth_apply(syn, work, NULL, 0x7469ULL, (uint64_t)i * PER_IMAGE + j, S[k].img, S[k].mask, &label, NULL,
                                NULL, &e);
            S[k].label = label > 0.5f;
        }
        dd_synth_free(syn);
        free(work);
    }
    /* the images are at the working scale already: score them at scale 1 (same tiles) */
    float scale = m->cfg.tile_scale;
    m->cfg.tile_scale = 1.0f;
    printf("model %s (%dx%d, tile_scale %g), %d held-out images + %d synthetic defects each\n", argv[1], m->cfg.unet.h,
           m->cfg.unet.w, scale, nval, PER_IMAGE);
    printf("| overlap | tiles/image | ms/image | image AUROC | pixel AP | AUPRO |\n|---:|---:|---:|---:|---:|---:|\n");
    char *list = strdup(ovs);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        dd_scorer_opts o;
        dd_scorer_opts_init(&o);
        o.overlap = (float)atof(tok);
        o.want_recon = 0;
        dd_scorer *s = NULL;
        dd_metrics *acc = NULL;
        dd_metrics_result *res = NULL;
        if (dd_scorer_create(m, &o, &s, &e) || dd_metrics_new(NULL, &acc, &e)) {
            fprintf(stderr, "tile_overlap: %s\n", e.msg);
            return 2;
        }
        double t0 = now(), tiles = 0;
        for (int i = 0; i < n; i++) {
            dd_score r;
            if (dd_scorer_run(s, S[i].img, S[i].h, S[i].w, &r, &e) ||
                dd_metrics_add_image(acc, (float)r.score, S[i].label, S[i].label ? "synthetic" : NULL, r.map, S[i].mask,
                                     S[i].h, S[i].w, &e)) {
                fprintf(stderr, "tile_overlap: %s\n", e.msg);
                return 2;
            }
            tiles += r.tiles_x * r.tiles_y;
        }
        double ms = (now() - t0) * 1e3 / n;
        if (dd_metrics_compute(acc, &res, &e)) {
            fprintf(stderr, "tile_overlap: %s\n", e.msg);
            return 2;
        }
        const dd_metrics_set *st = &res->sets[0];
        printf("| %s | %.1f | %.0f | %.1f | %.1f | %.1f |\n", tok, tiles / n, ms, 100 * st->m[DD_M_IMAGE_AUROC].value,
               100 * st->m[DD_M_PIXEL_AP].value, 100 * st->m[DD_M_AUPRO].value);
        fflush(stdout);
        dd_metrics_result_free(res);
        dd_metrics_free(acc);
        dd_scorer_free(s);
    }
    free(list);
    for (int i = 0; i < n; i++) free(S[i].img), free(S[i].mask);
    free(S), free(tr), free(val);
    dd_dataset_free(ds);
    dd_model_free(m);
    return 0;
}
