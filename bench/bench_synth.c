/* bench_synth.c — synthetic-sample throughput (samples/s), not a test.
 *
 * usage: bench_synth [DATA_DIR [TEXTURE_DIR]]   (default data/sample/pcb, procedural)
 * For each model size: one thread calling dd_synth_sample directly (images
 * already cached), then the feeder with 1 and 2 workers (batch 16), timed
 * after a warm-up batch so that first decodes are not counted. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "data/dataset.h"
#include "data/feeder.h"
#include "data/synth.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    const char *data = argc > 1 ? argv[1] : "data/sample/pcb";
    const char *tex = argc > 2 ? argv[2] : NULL;
    dd_error e = {0};
    dd_dataset *ds;
    if (dd_dataset_open(data, &ds, &e)) {
        fprintf(stderr, "bench_synth: %s\n", e.msg);
        return 2;
    }
    printf("data: %s (%d train images), sources: %s\n", data, ds->n_train,
           tex ? tex : "procedural");
    printf("%-9s %-8s %-22s %12s\n", "size", "mode", "producer", "samples/s");
    int sizes[2] = {128, 256};
    for (int si = 0; si < 2; si++) {
        for (int mode = 0; mode < 2; mode++) {
            dd_synth_config cfg;
            dd_synth_config_init(&cfg);
            cfg.h = cfg.w = sizes[si];
            cfg.mode = mode;
            cfg.texture_dir = tex;
            const char *mname = mode == DD_SYNTH_OBJECT ? "object" : "texture";
            dd_synth *s;
            if (dd_synth_create(ds, &cfg, &s, &e)) {
                fprintf(stderr, "bench_synth: %s\n", e.msg);
                return 2;
            }
            size_t hw = (size_t)cfg.h * cfg.w;
            float *img = malloc(sizeof(float) * hw * 3), *m = malloc(sizeof(float) * hw), l;
            int n = ds->n_train;
            for (int i = 0; i < n; i++) dd_synth_sample(s, i, 1, (uint64_t)i, img, m, &l, NULL, NULL, &e);
            int reps = sizes[si] == 128 ? 400 : 120;
            double t0 = now();
            for (int i = 0; i < reps; i++)
                dd_synth_sample(s, i % n, 2, (uint64_t)i, img, m, &l, NULL, NULL, &e);
            double dt = now() - t0;
            printf("%4dx%-4d %-8s %-22s %12.1f\n", cfg.h, cfg.w, mname, "dd_synth_sample, 1 thr",
                   reps / dt);
            /* the same with no cache: every sample decodes its PNG again */
            dd_synth_free(s);
            cfg.cache_mb = 0;
            dd_synth_create(ds, &cfg, &s, &e);
            t0 = now();
            for (int i = 0; i < reps / 2; i++)
                dd_synth_sample(s, i % n, 2, (uint64_t)i, img, m, &l, NULL, NULL, &e);
            dt = now() - t0;
            printf("%4dx%-4d %-8s %-22s %12.1f\n", cfg.h, cfg.w, mname, "  same, no image cache",
                   reps / 2 / dt);
            dd_synth_free(s);
            cfg.cache_mb = 1024;
            free(img);
            free(m);
            for (int workers = 1; workers <= 2; workers++) {
                dd_feeder *f;
                if (dd_feeder_create(ds, NULL, 0, &cfg, 16, workers, 3, &f, &e)) {
                    fprintf(stderr, "bench_synth: %s\n", e.msg);
                    return 2;
                }
                dd_batch b;
                int warm = (n + 15) / 16; /* one epoch fills the image cache */
                for (int k = 0; k < warm; k++) dd_feeder_next(f, &b, &e);
                int nb = sizes[si] == 128 ? 25 : 8;
                t0 = now();
                for (int k = 0; k < nb; k++) dd_feeder_next(f, &b, &e);
                dt = now() - t0;
                char name[64];
                snprintf(name, sizeof name, "feeder, %d worker%s", workers, workers > 1 ? "s" : "");
                printf("%4dx%-4d %-8s %-22s %12.1f\n", cfg.h, cfg.w, mname, name, nb * 16 / dt);
                dd_feeder_free(f);
            }
        }
    }
    dd_dataset_free(ds);
    return 0;
}
