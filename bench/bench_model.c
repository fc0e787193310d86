/* bench_model.c — whole-model benchmark of diffad (our C library), the C half of
 * bench/run_model.sh and bench/run_peers.sh. The PyTorch half is bench/model_torch.py.
 *
 *   bench_model --config cpu|paper [--threads N] [--algo auto|direct|winograd]
 *               [--precision auto|f32|bf16]
 *               [--warmup W] [--limit-gb G] MODE
 *   MODE: --infer REPS        batch-1 inference (dd_model_infer: the 2 denoiser passes, one
 *                             after the other + guided reconstruction + segmentation pass)
 *         --train REPS --batch B   joint training step (dd_model_train_step, Adam)
 *         --iter PASSES       iterative DDPM reconstruction from t = 400 with a batch-1
 *                             denoiser (PASSES >= 401: the whole chain t = 400..0)
 *         --plan --batch B [--training]   print dd_model_memory and exit
 *         --dump FILE         one inference with fixed input and noise; writes raw float32
 *                             NHWC: image [H,W,3], eps [2,H,W,3] (eps_s, eps_b), map [H,W],
 *                             recon [H,W,3]
 *   --profile (with --infer or --train): the model runs on op_profile.h's timing backend;
 *             after the warm-up, a Markdown table of where the repetitions' time went (per
 *             op: calls, ms, % of the step, GFLOP/s against the f32 and bf16 peaks measured
 *             in the same process: sgemm 1024^3 and a 1x1 convolution 1024->1024 at 64x64)
 *             and the largest convolution shapes goes to stderr.
 *
 * Weights: the deterministic hash rule of hashfill_params() in tests/hashfill.h, the
 * same as fill() in tests/py/ref_model.py, so the PyTorch side has identical weights.
 * Output: one JSON object per line (a record per timed repetition, then a "mem" record
 * with VmHWM/VmRSS from /proc/self/status and dd_model_memory). Every process measures
 * one configuration, so VmHWM is that configuration's peak. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/fileio.h"
#include "train/settings.h"
#include "model/diffusion.h"
#include "model/model.h"
#include "../tests/hashfill.h"
#include "op_profile.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}


/* The benchmark image: a smooth pattern plus a little hash noise, in [0, 1]
 * (bench_image() in model_torch.py computes the same values). */
static void bench_image(float *img, int B, int H, int W) {
    size_t n = (size_t)B * H * W * 3;
    hashfill_uniform("bench.image", img, n);
    for (int b = 0; b < B; b++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++) {
                    size_t i = (((size_t)b * H + y) * W + x) * 3 + c;
                    float s = 0.5f + 0.3f * sinf(0.05f * (float)(x + 2 * c)) * cosf(0.07f * (float)(y + b));
                    img[i] = s + 0.1f * img[i];
                }
}

static void proc_mem(double *hwm_mb, double *rss_mb) {
    *hwm_mb = *rss_mb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        long kb;
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) *hwm_mb = kb / 1024.0;
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) *rss_mb = kb / 1024.0;
    }
    fclose(f);
}

static const char *CFG = "cpu";
static int THREADS = 2;
static const char *ALGO = "auto"; /* the library default (DD_CONV_AUTO) */
static const char *PREC = "auto"; /* asked; the record says what ran */
static const char *PREC_RAN = "?";

static void rec_head(const char *what, int batch) {
    printf("{\"impl\":\"ours\",\"algo\":\"%s\",\"precision\":\"%s\",\"cfg\":\"%s\",\"threads\":%d,\"what\":\"%s\",\"batch\":%d",
           ALGO, PREC_RAN, CFG, THREADS, what, batch);
}

static void print_mem(const char *what, int batch, const dd_model *m) {
    double hwm, rss;
    proc_mem(&hwm, &rss);
    rec_head(what, batch);
    printf(",\"hwm_mb\":%.1f,\"rss_mb\":%.1f,\"model_mb\":%.1f}\n", hwm, rss,
           m ? dd_model_memory(m) / 1048576.0 : -1.0);
    fflush(stdout);
}

static int die(const char *what, const dd_error *err) {
    fprintf(stderr, "bench_model: %s: %s\n", what, err->msg);
    return 1;
}

static int PROFILE = 0; /* --profile: ops timed by op_profile.h */
static const dd_backend *model_backend(void) { return PROFILE ? opprof_backend() : NULL; }

/* Best GFLOP/s over 10 runs of a 1x1 convolution 1024 -> 1024 at 1x64x64 (a product of
 * 4096 x 1024 x 1024) in precision p on the plain cpu backend, or of sgemm 1024^3 when
 * gemm != 0: the peaks the profile compares the ops with. */
static double measure_peak(dd_precision p, int gemm, dd_error *err) {
    dd_engine *e = NULL;
    dd_conv *c = NULL;
    const dd_backend *be = dd_backend_get("cpu");
    double best = -1;
    const dd_conv_shape s = {1, 64, 64, 1024, 1024, 1, 1, 0, 0};
    size_t n = gemm ? (size_t)1024 * 1024 : (size_t)64 * 64 * 1024;
    float *a = malloc(n * sizeof(float)), *w = malloc((size_t)1024 * 1024 * sizeof(float)), *y = malloc(n * sizeof(float));
    if (!a || !w || !y || dd_engine_create(THREADS, &e, err) || dd_engine_set_precision(e, p, err)) goto done;
    for (size_t i = 0; i < n; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)1024 * 1024; i++) w[i] = (float)(i % 5) * 0.01f;
    if (!gemm && be->conv_create(e, &s, DD_CONV_DIRECT, 0, &c, err)) goto done;
    for (int r = 0; r < 12; r++) {
        double t0 = now_ms();
        int rc = gemm ? be->sgemm(e, 'N', 'N', 1024, 1024, 1024, 1.0f, a, 1024, w, 1024, 0.0f, y, 1024, err)
                      : be->conv_forward(c, a, w, NULL, y, err);
        if (rc) goto done;
        double ms = now_ms() - t0, gf = 2.0 * 1024 * 1024 * (gemm ? 1024 : 4096) / (ms * 1e6);
        if (r >= 2 && gf > best) best = gf;
    }
done:
    if (c) be->conv_free(c);
    dd_engine_free(e);
    free(a), free(w), free(y);
    return best;
}

static void print_profile(int reps, double step_ms_sum, const dd_model *m) {
    dd_error err = {0};
    double sg = measure_peak(DD_PREC_F32, 1, &err), cf = measure_peak(DD_PREC_F32, 0, &err);
    double cb = dd_engine_has_bf16(m->eng) ? measure_peak(DD_PREC_BF16, 0, &err) : -1;
    double pf = sg > cf ? sg : cf;
    fprintf(stderr, "\n%s config, %s, %d threads, %d repetitions, %.1f ms each; peaks measured here: f32 %.0f GFLOP/s "
                    "(sgemm %.0f, 1x1 conv %.0f), bf16 1x1 conv %.0f GFLOP/s\n\n",
            CFG, PREC_RAN, THREADS, reps, step_ms_sum / reps, pf, sg, cf, cb);
    opprof_print(stderr, reps, step_ms_sum / reps, pf, cb, dd_model_precision(m) == DD_PREC_BF16, 12);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "bench_model: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static void usage(void) {
    fprintf(stderr,
            "usage: bench_model --config cpu|paper [--threads N] [--algo auto|direct|winograd] [--warmup W]\n"
            "                   [--precision auto|f32|bf16]\n"
            "                   [--limit-gb G] (--infer REPS | --train REPS --batch B | --iter PASSES |\n"
            "                   --plan --batch B [--training] | --dump FILE) [--profile]\n");
}

int main(int argc, char **argv) {
    const char *mode = NULL, *dump = NULL;
    int reps = 0, batch = 1, warmup = 1, training = 0;
    double limit_gb = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--config") && v) CFG = v, i++;
        else if (!strcmp(a, "--threads") && v) THREADS = atoi(v), i++;
        else if (!strcmp(a, "--algo") && v) ALGO = v, i++;
        else if (!strcmp(a, "--precision") && v) PREC = v, i++;
        else if (!strcmp(a, "--warmup") && v) warmup = atoi(v), i++;
        else if (!strcmp(a, "--batch") && v) batch = atoi(v), i++;
        else if (!strcmp(a, "--limit-gb") && v) limit_gb = atof(v), i++;
        else if ((!strcmp(a, "--infer") || !strcmp(a, "--train") || !strcmp(a, "--iter")) && v) mode = a + 2, reps = atoi(v), i++;
        else if (!strcmp(a, "--dump") && v) mode = "dump", dump = v, i++;
        else if (!strcmp(a, "--plan")) mode = "plan";
        else if (!strcmp(a, "--training")) training = 1;
        else if (!strcmp(a, "--profile")) PROFILE = 1;
        else {
            usage();
            return 2;
        }
    }
    if (!mode || THREADS < 1 || batch < 1 || warmup < 0) {
        usage();
        return 2;
    }
    if (limit_gb > 0) {
        struct rlimit rl = {(rlim_t)(limit_gb * 1073741824.0), (rlim_t)(limit_gb * 1073741824.0)};
        if (setrlimit(RLIMIT_AS, &rl)) perror("bench_model: setrlimit");
    }
    dd_settings s;
    dd_error err = {0};
    if (dd_settings_profile(&s, CFG, &err)) return die("profile", &err);
    dd_model_config cfg = s.model;
    if (!strcmp(ALGO, "winograd")) cfg.conv_algo = DD_CONV_WINOGRAD;
    else if (!strcmp(ALGO, "direct")) cfg.conv_algo = DD_CONV_DIRECT;
    else if (!strcmp(ALGO, "auto")) cfg.conv_algo = DD_CONV_AUTO;
    else {
        usage();
        return 2;
    }
    if (dd_model_config_set(&cfg, "precision", PREC, "--precision", &err)) return die("precision", &err);
    const int H = cfg.unet.h, W = cfg.unet.w;
    const size_t HW = (size_t)H * W;

    if (!strcmp(mode, "plan")) {
        dd_model *m;
        if (dd_model_create(&cfg, batch, training, THREADS, &m, &err)) return die("create", &err);
        PREC_RAN = dd_precision_name(dd_model_precision(m));
        rec_head(training ? "plan_train" : "plan_infer", batch);
        printf(",\"model_mb\":%.1f,\"params_mb\":%.1f,\"arena_mb\":%.1f}\n", dd_model_memory(m) / 1048576.0,
               (training ? 4.0 : 1.0) * m->params.total * 4 / 1048576.0, m->arena.cap / 1048576.0);
        dd_model_free(m);
        return 0;
    }

    if (!strcmp(mode, "train")) {
        dd_model *m;
        if (dd_model_create_on(model_backend(), &cfg, batch, 1, THREADS, &m, &err)) return die("create (training)", &err);
        PREC_RAN = dd_precision_name(dd_model_precision(m));
        hashfill_params(&m->params);
        float *img = xmalloc((size_t)batch * HW * 3 * sizeof(float));
        float *mask = xmalloc((size_t)batch * HW * sizeof(float));
        int *labels = xmalloc((size_t)batch * sizeof(int));
        bench_image(img, batch, H, W);
        for (int b = 0; b < batch; b++) {
            labels[b] = b % 2;
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    mask[(size_t)b * HW + (size_t)y * W + x] =
                        (labels[b] && y >= H / 4 && y < H / 2 && x >= W / 3 && x < W / 2) ? 1.0f : 0.0f;
        }
        dd_rng r;
        dd_rng_seed(&r, 11);
        double ms_sum = 0;
        for (int i = 0; i < warmup + reps; i++) {
            dd_step_stats st;
            if (i == warmup) opprof_reset();
            double t0 = now_ms();
            if (dd_model_train_step(m, img, mask, labels, &r, &st, &err)) return die("train step", &err);
            double ms = now_ms() - t0;
            if (i < warmup) continue;
            ms_sum += ms;
            rec_head("train", batch);
            printf(",\"ms\":%.3f,\"ms_fwd_unet\":%.3f,\"ms_fwd_seg\":%.3f,\"loss\":%.5g}\n", ms, m->ms_unet, m->ms_seg,
                   st.loss);
            fflush(stdout);
        }
        print_mem("mem_train", batch, m);
        if (PROFILE && reps > 0) print_profile(reps, ms_sum, m);
        free(img), free(mask), free(labels);
        dd_model_free(m);
        return 0;
    }

    dd_model *m;
    if (dd_model_create_on(model_backend(), &cfg, 1, 0, THREADS, &m, &err)) return die("create (inference)", &err);
    PREC_RAN = dd_precision_name(dd_model_precision(m));
    hashfill_params(&m->params);
    /* as diffad_create does: the weights stay converted between inferences */
    if (dd_model_freeze_weights(m, &err)) return die("freeze weights", &err);
    float *img = xmalloc(HW * 3 * sizeof(float));
    float *map = xmalloc(HW * sizeof(float));
    float *recon = xmalloc(HW * 3 * sizeof(float));
    bench_image(img, 1, H, W);

    if (!strcmp(mode, "dump")) {
        float *eps = xmalloc(2 * HW * 3 * sizeof(float));
        dd_rng r;
        dd_rng_seed(&r, 1234);
        for (size_t i = 0; i < 2 * HW * 3; i++) eps[i] = (float)dd_rng_normal(&r);
        if (dd_model_infer_with(m, img, eps, map, recon, &err)) return die("infer", &err);
        dd_afile *f = dd_afile_open(dump, &err);
        if (!f) return die("dump", &err);
        dd_afile_write(f, img, HW * 3 * sizeof(float));
        dd_afile_write(f, eps, 2 * HW * 3 * sizeof(float));
        dd_afile_write(f, map, HW * sizeof(float));
        dd_afile_write(f, recon, HW * 3 * sizeof(float));
        if (dd_afile_commit(f, &err)) return die("dump", &err);
        free(eps);
    } else if (!strcmp(mode, "infer")) {
        double ms_sum = 0;
        for (int i = 0; i < warmup + reps; i++) {
            if (i == warmup) opprof_reset();
            double t0 = now_ms();
            if (dd_model_infer(m, img, 1234 + (uint64_t)i, map, recon, &err)) return die("infer", &err);
            double ms = now_ms() - t0;
            if (i < warmup) continue;
            ms_sum += ms;
            rec_head("infer", 1);
            printf(",\"ms\":%.3f,\"ms_unet\":%.3f,\"ms_seg\":%.3f}\n", ms, m->ms_unet, m->ms_seg);
            fflush(stdout);
        }
        print_mem("mem_infer", 1, m);
        if (PROFILE && reps > 0) print_profile(reps, ms_sum, m);
    } else if (!strcmp(mode, "iter")) {
        /* A batch-1 denoiser over the model's parameter table: the model declares the
         * denoiser first, so a second declaration gives the same tensor indices. */
        dd_params tmp;
        dd_params_init(&tmp);
        dd_unet u1;
        memset(&u1, 0, sizeof u1);
        dd_arena a1, meas;
        if (dd_unet_declare(&u1, &cfg.unet, &tmp, "unet", 0, &err) ||
            dd_unet_build(&u1, m->eng, 1, 1, 0, cfg.conv_algo, &err))
            return die("batch-1 denoiser", &err);
        dd_params_free(&tmp);
        dd_arena_init_measure(&meas);
        if (dd_unet_plan(&u1, &meas, &err) || dd_arena_create(&a1, meas.used, &err) || dd_unet_plan(&u1, &a1, &err))
            return die("batch-1 denoiser plan", &err);
        /* check: the batch-1 denoiser agrees with the model's (2 samples, in passes; its embedding products have 2 rows, so ~1e-6 apart) */
        const int t0s = cfg.t_b;
        float *x = xmalloc(HW * 3 * sizeof(float)), *e = xmalloc(HW * 3 * sizeof(float));
        float *x2 = xmalloc(2 * HW * 3 * sizeof(float));
        dd_rng r;
        dd_rng_seed(&r, 99);
        for (size_t i = 0; i < HW * 3; i++) e[i] = (float)dd_rng_normal(&r);
        dd_q_sample(&m->sched, t0s, img, e, x, HW * 3);
        memcpy(x2, x, HW * 3 * sizeof(float));
        memcpy(x2 + HW * 3, x, HW * 3 * sizeof(float));
        int tt[2] = {t0s, t0s};
        if (dd_unet_forward(&m->unet, &m->params, x2, tt, &err)) return die("denoiser", &err);
        memcpy(x2, m->unet.eps, HW * 3 * sizeof(float));
        if (dd_unet_forward(&u1, &m->params, x, tt, &err)) return die("denoiser b1", &err);
        double dmax = 0, emax = 0;
        for (size_t i = 0; i < HW * 3; i++) {
            dmax = fmax(dmax, fabs(x2[i] - u1.eps[i]));
            emax = fmax(emax, fabs(x2[i]));
        }
        fprintf(stderr, "bench_model: batch-1 vs batch-2 denoiser max |diff| %.3g (max |eps| %.3g)\n", dmax, emax);
        /* one-step reconstruction time for comparison (the model's two denoiser passes + guidance) */
        for (int i = 0; i < warmup + 3; i++) {
            if (dd_model_infer(m, img, 5 + (uint64_t)i, map, recon, &err)) return die("infer", &err);
            if (i < warmup) continue;
            rec_head("onestep_recon", 1);
            printf(",\"ms\":%.3f}\n", m->ms_unet);
        }
        /* the chain: x_400 -> ... -> x_0, one denoiser pass per step */
        int passes = reps < 1 ? 1 : reps, full = passes >= t0s + 1;
        if (full) passes = t0s + 1;
        for (int i = 0; i < warmup; i++)
            if (dd_unet_forward(&u1, &m->params, x, tt, &err)) return die("denoiser b1", &err);
        double tstart = now_ms();
        for (int k = 0; k < passes; k++) {
            int t = t0s - k;
            double p0 = now_ms();
            if (dd_unet_forward(&u1, &m->params, x, &t, &err)) return die("denoiser b1", &err);
            dd_ddpm_step(&m->sched, t, x, u1.eps, HW * 3, &r);
            rec_head("iter_pass", 1);
            printf(",\"ms\":%.3f,\"t\":%d}\n", now_ms() - p0, t);
        }
        double total = now_ms() - tstart;
        rec_head(full ? "iter_total" : "iter_partial", 1);
        printf(",\"ms\":%.3f,\"passes\":%d,\"t_start\":%d}\n", total, passes, t0s);
        print_mem("mem_iter", 1, m);
        dd_arena_free(&a1);
        dd_unet_free(&u1);
        free(x), free(e), free(x2);
    }
    free(img), free(map), free(recon);
    dd_model_free(m);
    return 0;
}
