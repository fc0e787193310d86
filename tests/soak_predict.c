/* soak_predict.c — a long soak of the public prediction API (`make soak`; not part
 * of `make test`: it scores tens of thousands of images).
 *
 * Two tiny random models (the make_model recipe of test_api.c: weights that give
 * non-flat maps), one fitting whole images (tile_scale 0) and one tiling them
 * (tile_scale 0.5), score SOAK_N (default 10,000) generated images of mixed
 * sizes (24..200 wide, 24..150 high), grey and RGB, DIFFAD_U8 and DIFFAD_F32,
 * some with padded rows; every fourth image goes to the tiled model. First from
 * 1 thread: the reference scores and a hash of every map's bits. Then from 2, 4
 * and 8 threads, each with its own two contexts, taking images from a shared
 * counter (so each context sees another mix of sizes than the reference did):
 * every score and map must equal the reference bit for bit. VmRSS
 * (/proc/self/status) is recorded after each 1,000 images of each phase and
 * printed as a table beside the bytes the contexts hold (diffad_memory, which
 * grows while larger images first arrive) and the RSS once the phase's contexts
 * are freed ("freed"); it must stay flat (growth from the 2,000th image to the
 * last below SOAK_RSS_SLACK_MIB, default 32).
 *
 * Exit status 0 when every image matched and no phase grew; the summary line is
 * check.h's. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "live_model.h"
#include "diffad.h"
#include "model/model.h"
#include "model/modelfile.h"

#define HW 32
#define MAX_W 200
#define MAX_H 150
#define MAX_PHASES 4
#define MAX_ROWS 1000

static const int PHASE_THREADS[MAX_PHASES] = {1, 2, 4, 8};

static char g_dir[256], g_model[2][512];
static int g_n;

typedef struct ref {
    uint32_t score_bits;
    uint64_t map_hash;
} ref;
static ref *g_ref;

/* Per phase: RSS (KiB) after every 1,000 images, mismatches, errors. */
static long g_rss[MAX_PHASES][MAX_ROWS];
static long g_rss_freed[MAX_PHASES];
/* Bytes the live contexts hold (diffad_memory), each thread's own slot, and
 * their sum at every RSS sample: buffers grow when a larger image first
 * arrives, which is growth by design, not a leak. */
static _Atomic size_t g_mem[8];
static double g_ctx_mib[MAX_PHASES][MAX_ROWS];
static atomic_int g_next, g_done, g_mismatch, g_errors;
static int g_phase;
/* Workers wait here twice after their last image: no context is freed before
 * every image is scored (so the last RSS sample has all contexts), then main
 * lets them free. */
static pthread_barrier_t g_bar;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) v = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return v;
}

/* A tiny model with non-flat maps (test_api.c make_model). */
static float g_tile_scale; /* the tweak below sets it */
static void set_tile_scale(dd_model_config *c) { c->tile_scale = g_tile_scale; }

static int make_model(const char *path, float tile_scale) {
    g_tile_scale = tile_scale;
    return live_model_save(path, HW, 1234, set_tile_scale);
}

static uint64_t mix(uint64_t x) {
    x ^= x >> 33, x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33, x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

/* Image i, a pure function of i: size, channels, format, row padding, pixels
 * (a gradient, a brighter square and noise). buf holds MAX_H rows of MAX_W * 3
 * floats plus padding. */
static diffad_image make_image(int i, unsigned char *buf) {
    uint64_t h = mix((uint64_t)i + 1);
    int w = 24 + (int)(h % (MAX_W - 23)), ht = 24 + (int)((h >> 16) % (MAX_H - 23));
    int c = (h >> 32) & 1 ? 3 : 1, f32 = (h >> 33) & 1;
    size_t sample = f32 ? sizeof(float) : 1, stride = (size_t)w * c * sample + ((h >> 34) % 3) * 4;
    int sx = (int)((h >> 40) % (unsigned)w), sy = (int)((h >> 48) % (unsigned)ht), side = 4 + (int)((h >> 56) % 12);
    uint64_t r = h;
    for (int y = 0; y < ht; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) {
                r = r * 6364136223846793005ULL + 1442695040888963407ULL;
                float v = 0.2f + 0.4f * (float)(x + y) / (float)(w + ht) + 0.05f * (float)((r >> 40) & 255) / 255.0f;
                if (x >= sx && x < sx + side && y >= sy && y < sy + side) v += 0.3f + 0.05f * k;
                if (v > 1) v = 1;
                unsigned char *p = buf + (size_t)y * stride + ((size_t)x * c + k) * sample;
                if (f32) memcpy(p, &v, sizeof v);
                else *p = (unsigned char)(v * 255.0f + 0.5f);
            }
    diffad_image im = {buf, w, ht, c, stride, f32 ? DIFFAD_F32 : DIFFAD_U8};
    return im;
}

static uint64_t hash_floats(const float *v, size_t n) {
    uint64_t x = 1469598103934665603ULL;
    const unsigned char *b = (const unsigned char *)v;
    for (size_t i = 0; i < n * sizeof(float); i++) x = (x ^ b[i]) * 1099511628211ULL;
    return x;
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    diffad_params p;
    diffad_params_init(&p);
    p.threads = 1;
    p.skip_recon = 1;
    diffad_ctx *ctx[2] = {NULL, NULL};
    char msg[512];
    unsigned char *buf = malloc((size_t)MAX_H * (MAX_W * 3 * sizeof(float) + 16));
    for (int m = 0; m < 2; m++)
        if (diffad_create(g_model[m], &p, &ctx[m], msg, sizeof msg)) {
            fprintf(stderr, "FAIL diffad_create %s: %s\n", g_model[m], msg);
            atomic_fetch_add(&g_errors, 1);
        }
    int ok = buf && ctx[0] && ctx[1];
    for (;;) {
        int i = atomic_fetch_add(&g_next, 1);
        if (i >= g_n) break;
        if (ok) {
            diffad_image im = make_image(i, buf);
            diffad_result res;
            diffad_ctx *c = ctx[i % 4 == 3];
            if (diffad_predict(c, &im, &res) != DIFFAD_OK) {
                if (atomic_fetch_add(&g_errors, 1) < 5)
                    fprintf(stderr, "FAIL image %d (%dx%d): %s\n", i, im.width, im.height, diffad_error(c));
            } else {
                atomic_store(&g_mem[id], diffad_memory(ctx[0]) + diffad_memory(ctx[1]));
                uint32_t bits;
                memcpy(&bits, &res.score, sizeof bits);
                uint64_t hm = hash_floats(res.map, (size_t)res.map_width * res.map_height);
                if (g_phase == 0) {
                    g_ref[i].score_bits = bits, g_ref[i].map_hash = hm;
                } else if (bits != g_ref[i].score_bits || hm != g_ref[i].map_hash) {
                    if (atomic_fetch_add(&g_mismatch, 1) < 5)
                        fprintf(stderr, "FAIL image %d (%dx%d): score %.9g, map %016llx differ from 1 thread's\n", i,
                                im.width, im.height, res.score, (unsigned long long)hm);
                }
            }
        }
        int d = atomic_fetch_add(&g_done, 1) + 1;
        if (d % 1000 == 0 && d / 1000 - 1 < MAX_ROWS) {
            size_t mem = 0;
            for (int k = 0; k < 8; k++) mem += atomic_load(&g_mem[k]);
            g_rss[g_phase][d / 1000 - 1] = rss_kib();
            g_ctx_mib[g_phase][d / 1000 - 1] = mem / 1048576.0;
        }
    }
    pthread_barrier_wait(&g_bar);
    pthread_barrier_wait(&g_bar);
    diffad_free(ctx[0]);
    diffad_free(ctx[1]);
    free(buf);
    return NULL;
}

int main(void) {
    const char *e = getenv("SOAK_N");
    g_n = e ? atoi(e) : 10000;
    if (g_n < 1000 || g_n > 1000 * MAX_ROWS) g_n = 10000;
    e = getenv("SOAK_RSS_SLACK_MIB");
    double slack = e ? atof(e) : 32;
    snprintf(g_dir, sizeof g_dir, "/tmp/diffad_soak_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(g_model[0], sizeof g_model[0], "%s/fit.safetensors", g_dir);
    snprintf(g_model[1], sizeof g_model[1], "%s/tiled.safetensors", g_dir);
    CHECK(!make_model(g_model[0], 0) && !make_model(g_model[1], 0.5f), "tiny models saved");
    g_ref = calloc((size_t)g_n, sizeof *g_ref);
    if (check_failed || !g_ref) return check_summary("soak_predict");
    int rows = g_n / 1000;
    double secs[MAX_PHASES];
    int mism[MAX_PHASES], errs[MAX_PHASES];
    printf("soak_predict: %d images per phase (24..%d x 24..%d, grey/RGB, U8/F32, a quarter tiled), "
           "%d-px models, 1 compute thread per context\n",
           g_n, MAX_W, MAX_H, HW);
    for (int ph = 0; ph < MAX_PHASES; ph++) {
        int nt = PHASE_THREADS[ph];
        g_phase = ph;
        atomic_store(&g_next, 0), atomic_store(&g_done, 0), atomic_store(&g_mismatch, 0), atomic_store(&g_errors, 0);
        pthread_t th[8];
        pthread_barrier_init(&g_bar, NULL, (unsigned)nt + 1);
        double t0 = now_s();
        for (int k = 0; k < 8; k++) atomic_store(&g_mem[k], 0);
        for (int k = 0; k < nt; k++)
            if (pthread_create(&th[k], NULL, worker, (void *)(intptr_t)k)) {
                fprintf(stderr, "soak_predict: cannot start thread %d of %d\n", k + 1, nt);
                return 1;
            }
        pthread_barrier_wait(&g_bar); /* every image scored, every context alive */
        secs[ph] = now_s() - t0;
        pthread_barrier_wait(&g_bar);
        for (int k = 0; k < nt; k++) pthread_join(th[k], NULL);
        pthread_barrier_destroy(&g_bar);
        g_rss_freed[ph] = rss_kib();
        mism[ph] = atomic_load(&g_mismatch), errs[ph] = atomic_load(&g_errors);
        CHECK(errs[ph] == 0, "%d threads: every image scored (%d errors)", nt, errs[ph]);
        if (ph) CHECK(mism[ph] == 0, "%d threads: every score and map == 1 thread's, bit for bit (%d differ)", nt, mism[ph]);
        double growth = rows >= 2 ? (g_rss[ph][rows - 1] - g_rss[ph][1]) / 1024.0 : 0;
        CHECK(growth < slack, "%d threads: RSS flat (%+.1f MiB from image 2,000 to %d)", nt, growth, g_n);
        printf("phase %d thread%s: %.1f s, %.0f images/s, %d mismatches, %d errors\n", nt, nt > 1 ? "s" : "",
                secs[ph], g_n / secs[ph], mism[ph], errs[ph]);
        fflush(stdout);
    }
    printf("\nVmRSS (MiB) after each 1,000 images, and (in brackets) the MiB the contexts hold (diffad_memory)\n%8s",
           "images");
    for (int ph = 0; ph < MAX_PHASES; ph++) printf("  %15d thr", PHASE_THREADS[ph]);
    printf("\n");
    for (int r = 0; r < rows; r++) {
        printf("%8d", (r + 1) * 1000);
        for (int ph = 0; ph < MAX_PHASES; ph++) printf("  %8.1f (%6.1f)", g_rss[ph][r] / 1024.0, g_ctx_mib[ph][r]);
        printf("\n");
    }
    printf("%8s", "freed");
    for (int ph = 0; ph < MAX_PHASES; ph++) printf("  %8.1f         ", g_rss_freed[ph] / 1024.0);
    printf("\n%8s", "s");
    for (int ph = 0; ph < MAX_PHASES; ph++) printf("  %8.1f         ", secs[ph]);
    printf("\n%8s", "differ");
    for (int ph = 0; ph < MAX_PHASES; ph++) printf("  %8d         ", ph ? mism[ph] : 0);
    printf("\n\n");
    free(g_ref);
    remove(g_model[0]), remove(g_model[1]), rmdir(g_dir);
    return check_summary("soak_predict");
}
