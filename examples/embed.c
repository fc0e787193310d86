/* embed.c — how a host program embeds diffad: through include/diffad.h only.
 *
 *   embed MODEL                     score a synthetic gradient image
 *   embed MODEL IMAGE.png           score a PNG/JPEG/BMP (decoded here with stb_image)
 *   embed MODEL IMAGE.raw W H C     score raw 8-bit pixels, C = 1 (grey) or 3 (RGB)
 *
 * Shows: params and the log callback, create / predict / free, reading the
 * result (score, OK/NG against the model's stored threshold, the anomaly map),
 * and two contexts used from two threads at once — the library keeps no global
 * state, so each thread simply owns its context. Build: see examples/README.md. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>

#include "diffad.h"

/* The library never prints; it hands its messages to this callback. */
static void on_log(int level, const char *message, void *user) {
    static const char *names[] = {"error", "warn", "info"};
    fprintf(stderr, "[%s %s] %s\n", (const char *)user, level >= 0 && level <= 2 ? names[level] : "?", message);
}

typedef struct pixels {
    unsigned char *data;
    int w, h, c;
    int from_stb; /* free with stbi_image_free */
} pixels;

static int load_raw(const char *path, int w, int h, int c, pixels *px) {
    if (w <= 0 || h <= 0 || (c != 1 && c != 3)) {
        fprintf(stderr, "embed: raw image needs W H > 0 and C = 1 or 3\n");
        return 1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    size_t n = (size_t)w * h * c;
    px->data = malloc(n);
    size_t got = px->data ? fread(px->data, 1, n, f) : 0;
    fclose(f);
    if (got != n) {
        fprintf(stderr, "embed: %s: %zu bytes, %dx%dx%d needs %zu\n", path, got, w, h, c, n);
        return 1;
    }
    px->w = w, px->h = h, px->c = c;
    return 0;
}

/* A left-to-right grey ramp with a bright square: something to score without a file. */
static int make_gradient(pixels *px) {
    px->w = 256, px->h = 192, px->c = 3;
    px->data = malloc((size_t)px->w * px->h * 3);
    if (!px->data) return 1;
    for (int y = 0; y < px->h; y++)
        for (int x = 0; x < px->w; x++)
            for (int k = 0; k < 3; k++) {
                int v = x * 255 / (px->w - 1);
                if (x > 150 && x < 180 && y > 60 && y < 90) v = 255;
                px->data[((size_t)y * px->w + x) * 3 + k] = (unsigned char)v;
            }
    return 0;
}

typedef struct job {
    const char *model;
    const pixels *px;
    char name[16];
    float score;
    int rc;
} job;

/* One thread, one context: created, used and freed here. */
static void *worker(void *arg) {
    job *j = arg;
    diffad_params p;
    diffad_params_init(&p);
    p.threads = 1; /* two threads of one core each */
    p.log = on_log, p.log_user = j->name;
    diffad_ctx *ctx = NULL;
    char msg[512];
    if ((j->rc = diffad_create(j->model, &p, &ctx, msg, sizeof msg))) return NULL;
    diffad_image img = {j->px->data, j->px->w, j->px->h, j->px->c, (size_t)j->px->w * j->px->c, DIFFAD_U8};
    diffad_result r;
    if (!(j->rc = diffad_predict(ctx, &img, &r))) j->score = r.score;
    diffad_free(ctx);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 3 && argc != 6) {
        fprintf(stderr, "usage: embed MODEL [IMAGE | IMAGE.raw W H C]\n");
        return 2;
    }
    const char *model = argv[1];
    pixels px = {0};
    int rc = 0;
    if (argc == 6) rc = load_raw(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), &px);
    else if (argc == 3) {
        px.data = stbi_load(argv[2], &px.w, &px.h, &px.c, 3); /* always RGB */
        px.c = 3, px.from_stb = 1;
        if (!px.data) fprintf(stderr, "embed: %s: %s\n", argv[2], stbi_failure_reason()), rc = 1;
    } else rc = make_gradient(&px);
    if (rc) {
        if (px.from_stb) stbi_image_free(px.data);
        else free(px.data);
        return 2;
    }

    /* 1. one context, one prediction */
    diffad_params p;
    diffad_params_init(&p);
    p.log = on_log, p.log_user = "main";
    diffad_ctx *ctx = NULL;
    char msg[512];
    if (diffad_create(model, &p, &ctx, msg, sizeof msg)) {
        fprintf(stderr, "embed: %s\n", msg);
        return 2;
    }
    int mh, mw;
    diffad_model_size(ctx, &mh, &mw);
    printf("model %dx%d, context memory %.1f MiB\n", mh, mw, diffad_memory(ctx) / 1048576.0);
    diffad_image img = {px.data, px.w, px.h, px.c, (size_t)px.w * px.c, DIFFAD_U8};
    diffad_result r;
    if (diffad_predict(ctx, &img, &r)) {
        fprintf(stderr, "embed: %s\n", diffad_error(ctx));
        diffad_free(ctx);
        return 2;
    }
    /* the map belongs to the context and is valid until its next predict: copy what you keep */
    float peak = 0;
    for (int i = 0; i < r.map_width * r.map_height; i++) peak = r.map[i] > peak ? r.map[i] : peak;
    printf("image %dx%dx%d: score %.6f normalized %.4f threshold %.6f -> %s (map peak %.4f, pixel threshold %.4f)\n",
           px.w, px.h, px.c, r.score, r.normalized, r.threshold, r.calibrated ? (r.is_ng ? "NG" : "OK") : "uncalibrated",
           peak, r.pixel_threshold);
    printf("ms: preprocess %.2f denoise %.2f segment %.2f postprocess %.2f\n", r.ms_preprocess, r.ms_denoise,
           r.ms_segment, r.ms_postprocess);
    float score = r.score;
    diffad_free(ctx);

    /* 2. two contexts in two threads at once: the same image gives the same score */
    job jobs[2] = {{model, &px, "thread-1", 0, 0}, {model, &px, "thread-2", 0, 0}};
    pthread_t t[2];
    int started[2];
    for (int i = 0; i < 2; i++) started[i] = !pthread_create(&t[i], NULL, worker, &jobs[i]);
    for (int i = 0; i < 2; i++)
        if (started[i]) pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        if (!started[i] || jobs[i].rc) rc = 2;
        else printf("%s: score %.6f (%s)\n", jobs[i].name, jobs[i].score, jobs[i].score == score ? "same" : "DIFFERENT");
        if (started[i] && !jobs[i].rc && jobs[i].score != score) rc = 2;
    }
    if (px.from_stb) stbi_image_free(px.data);
    else free(px.data);
    return rc;
}
