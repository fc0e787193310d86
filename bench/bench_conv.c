/* bench_conv.c — the convolution op benchmark: forward and training-pass (forward +
 * backward-data + backward-weights) times of our oneDNN glue (src/backend/dnn.h), direct and
 * Winograd, on the conv shapes of the networks, and the dnnl_sgemm peak.
 *
 * It measures and prints raw records, one per line, so that run_conv.sh can interleave
 * it with the PyTorch script (bench/conv_torch.py, same record format) and pool the
 * repetitions of several rounds; --table turns the records into the Markdown table.
 *
 *   bench_conv --list                       the shapes: "id N Cin Cout H W k stride pad"
 *   bench_conv [--shape ID]... [opts]       measure our conv (all shapes by default)
 *   bench_conv --sgemm [opts]               dnnl_sgemm 2048^3 through dd_sgemm, every rep
 *   bench_conv --table FILE|- [--stat min]  Markdown table from the records in FILE
 *   bench_conv --all [opts]                 sgemm + every shape, then the table (ours only)
 * opts: --threads T (2), --min-time S (seconds of timed reps per measurement, 0.6),
 *       --max-reps R (200), --min-reps R (5), --warmup W (2).
 *
 * Records (whitespace separated; every timed repetition is its own record):
 *   time ID WHO WHAT SECONDS     WHO: direct|wino|torch_nchw|torch_cl
 *                                WHAT: fwd|train|bwd_data|bwd_weights|bwd_data_acc
 *   info ID KEY VALUE            implementation names, fallback, max relative differences
 *   sgemm GFLOPS                 one 2048^3 sgemm
 *   meta KEY VALUE               threads, versions
 * The table takes the median over all repetitions of all rounds per (shape, WHO, WHAT)
 * and the best sgemm. A training pass is counted as 3 x the forward FLOPs
 * (2 N Ho Wo Cout Cin k^2); Winograd GFLOP/s are "effective" (direct-equivalent FLOPs). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/dnn.h"

typedef struct {
    int n, cin, cout, h, w, k, stride, pad;
} bshape;

/* The conv shapes of the denoiser U-Net and the segmentation net (NHWC, 3x3 pad 1
 * stride 1 unless said). */
static const bshape SHAPES[] = {
    {8, 128, 128, 64, 64, 3, 1, 1},   {8, 64, 64, 128, 128, 3, 1, 1},
    {4, 256, 256, 32, 32, 3, 1, 1},   {1, 128, 128, 256, 256, 3, 1, 1},
    {16, 32, 32, 64, 64, 3, 1, 1},    {8, 256, 128, 32, 32, 1, 1, 0},
};
#define NSHAPES ((int)(sizeof SHAPES / sizeof SHAPES[0]))

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void out_hw(const bshape *s, int *ho, int *wo) {
    *ho = (s->h + 2 * s->pad - s->k) / s->stride + 1;
    *wo = (s->w + 2 * s->pad - s->k) / s->stride + 1;
}

/* Forward FLOPs: 2 N Ho Wo Cout Cin k^2. */
static double fwd_flops(const bshape *s) {
    int ho, wo;
    out_hw(s, &ho, &wo);
    return 2.0 * s->n * ho * wo * (double)s->cout * s->cin * s->k * s->k;
}

static void shape_name(const bshape *s, char *buf, size_t len) {
    if (s->k == 3 && s->stride == 1 && s->pad == 1)
        snprintf(buf, len, "%d×%d→%d×%d×%d", s->n, s->cin, s->cout, s->h, s->w);
    else
        snprintf(buf, len, "%d×%d→%d×%d×%d k%d s%d p%d", s->n, s->cin, s->cout, s->h, s->w,
                 s->k, s->stride, s->pad);
}

/* Where records go (stdout, or a temporary file for --all). */
static FILE *rec;

/* ---- options ---- */
typedef struct {
    int threads;
    double min_time;
    int min_reps, max_reps, warmup;
} opts;

static unsigned long long rng_state = 0x9e3779b97f4a7c15ULL;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
}

static float *alloc_f(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) {
        fprintf(stderr, "bench_conv: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}
static float *rand_f(size_t n, float scale) {
    float *p = alloc_f(n);
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}

static void die(const char *what, const dd_error *err) {
    fprintf(stderr, "bench_conv: %s: %s\n", what, err->msg);
    exit(1);
}

/* ---- timing ---- */
typedef int (*run_fn)(void *ctx);

/* Warm up, pick a repetition count from the last warm-up (>= min_time of timed work,
 * within [min_reps, max_reps]), print every repetition as a "time" record. */
static void measure(const opts *o, int id, const char *who, const char *what, run_fn f,
                    void *ctx) {
    double t1 = 0;
    for (int i = 0; i < o->warmup || i < 1; i++) {
        double t0 = now();
        if (f(ctx)) exit(1);
        t1 = now() - t0;
    }
    int reps = t1 > 0 ? (int)ceil(o->min_time / t1) : o->max_reps;
    if (reps < o->min_reps) reps = o->min_reps;
    if (reps > o->max_reps) reps = o->max_reps;
    for (int i = 0; i < reps; i++) {
        double t0 = now();
        if (f(ctx)) exit(1);
        fprintf(rec, "time %d %s %s %.9f\n", id, who, what, now() - t0);
    }
    fflush(rec);
}

typedef struct {
    dd_conv *c;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
} conv_ctx;

static int run_fwd(void *p) {
    conv_ctx *c = p;
    dd_error err;
    if (dd_conv_forward(c->c, c->x, c->w, c->b, c->y, &err)) die("conv forward", &err);
    return 0;
}
static int run_bwd_data(void *p) {
    conv_ctx *c = p;
    dd_error err;
    if (dd_conv_backward(c->c, c->x, c->w, c->dy, c->dx, NULL, NULL, 0, &err))
        die("conv backward-data", &err);
    return 0;
}
static int run_bwd_data_acc(void *p) { /* dx += ..., through the glue's staging */
    conv_ctx *c = p;
    dd_error err;
    if (dd_conv_backward(c->c, c->x, c->w, c->dy, c->dx, NULL, NULL, 1, &err))
        die("conv backward-data (accumulate)", &err);
    return 0;
}
static int run_bwd_weights(void *p) {
    conv_ctx *c = p;
    dd_error err;
    if (dd_conv_backward(c->c, c->x, c->w, c->dy, NULL, c->dw, c->db, 0, &err))
        die("conv backward-weights", &err);
    return 0;
}
/* One training pass as a layer runs it: forward, then dx (overwritten), dw and db
 * (accumulated, as the library always does for parameter gradients). */
static int run_train(void *p) {
    conv_ctx *c = p;
    dd_error err;
    if (dd_conv_forward(c->c, c->x, c->w, c->b, c->y, &err)) die("conv forward", &err);
    if (dd_conv_backward(c->c, c->x, c->w, c->dy, c->dx, c->dw, c->db, 0, &err))
        die("conv backward", &err);
    return 0;
}

/* max |a - b| / max |b|: the difference relative to the reference's scale. */
static double max_rel(const float *a, const float *b, size_t n) {
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > md) md = d;
        if (fabs((double)b[i]) > mb) mb = fabs((double)b[i]);
    }
    return mb > 0 ? md / mb : md;
}

static void bench_shape(dd_engine *eng, const opts *o, int id) {
    const bshape *bs = &SHAPES[id];
    dd_conv_shape s = {bs->n, bs->h, bs->w, bs->cin, bs->cout, bs->k, bs->stride, bs->pad, 0};
    int ho, wo;
    out_hw(bs, &ho, &wo);
    size_t nx = (size_t)s.n * s.h * s.w * s.cin, ny = (size_t)s.n * ho * wo * s.cout;
    size_t nw = (size_t)s.cout * s.cin * s.k * s.k;
    dd_error err;
    dd_conv *cd = NULL, *cw = NULL;
    if (dd_conv_create(eng, &s, DD_CONV_DIRECT, 1, &cd, &err)) die("create direct conv", &err);
    if (dd_conv_create(eng, &s, DD_CONV_WINOGRAD, 1, &cw, &err)) die("create Winograd conv", &err);
    if (dd_engine_commit_scratch(eng, &err)) die("scratch", &err);
    fprintf(rec, "info %d direct_impl %s\n", id, dd_conv_impl(cd));
    fprintf(rec, "info %d wino_impl %s\n", id, dd_conv_impl(cw));
    fprintf(rec, "info %d wino_algo %s\n", id,
           dd_conv_algo_used(cw) == DD_CONV_WINOGRAD ? "winograd" : "direct(fallback)");
    fprintf(rec, "info %d scratch_mib %.1f\n", id, (double)dd_engine_scratch_bytes(eng) / 1048576.0);

    float scale = 1.0f / sqrtf((float)(s.cin * s.k * s.k));
    conv_ctx c = {NULL,           rand_f(nx, 1.0f), rand_f(nw, scale), rand_f((size_t)s.cout, 0.1f),
                  alloc_f(ny),    rand_f(ny, 1.0f), alloc_f(nx),       alloc_f(nw),
                  alloc_f((size_t)s.cout)};
    memset(c.dw, 0, nw * sizeof(float));
    memset(c.db, 0, (size_t)s.cout * sizeof(float));

    /* Winograd against direct on the same inputs: y, dx, dw. */
    if (dd_conv_algo_used(cw) == DD_CONV_WINOGRAD) {
        float *y0 = alloc_f(ny), *dx0 = alloc_f(nx), *dw0 = alloc_f(nw), *db0 = alloc_f((size_t)s.cout);
        float *y1 = alloc_f(ny), *dx1 = alloc_f(nx), *dw1 = alloc_f(nw), *db1 = alloc_f((size_t)s.cout);
        memset(dw0, 0, nw * sizeof(float)), memset(dw1, 0, nw * sizeof(float));
        memset(db0, 0, (size_t)s.cout * sizeof(float)), memset(db1, 0, (size_t)s.cout * sizeof(float));
        if (dd_conv_forward(cd, c.x, c.w, c.b, y0, &err) ||
            dd_conv_backward(cd, c.x, c.w, c.dy, dx0, dw0, db0, 0, &err))
            die("direct reference", &err);
        if (dd_conv_forward(cw, c.x, c.w, c.b, y1, &err) ||
            dd_conv_backward(cw, c.x, c.w, c.dy, dx1, dw1, db1, 0, &err))
            die("Winograd pass", &err);
        fprintf(rec, "info %d wino_rel_y %.3g\n", id, max_rel(y1, y0, ny));
        fprintf(rec, "info %d wino_rel_dx %.3g\n", id, max_rel(dx1, dx0, nx));
        fprintf(rec, "info %d wino_rel_dw %.3g\n", id, max_rel(dw1, dw0, nw));
        free(y0), free(dx0), free(dw0), free(db0), free(y1), free(dx1), free(dw1), free(db1);
    }
    fflush(rec);

    c.c = cd;
    measure(o, id, "direct", "fwd", run_fwd, &c);
    measure(o, id, "direct", "train", run_train, &c);
    measure(o, id, "direct", "bwd_data", run_bwd_data, &c);
    measure(o, id, "direct", "bwd_weights", run_bwd_weights, &c);
    measure(o, id, "direct", "bwd_data_acc", run_bwd_data_acc, &c);
    if (dd_conv_algo_used(cw) == DD_CONV_WINOGRAD) {
        c.c = cw;
        measure(o, id, "wino", "fwd", run_fwd, &c);
        measure(o, id, "wino", "train", run_train, &c);
        measure(o, id, "wino", "bwd_data", run_bwd_data, &c);
        measure(o, id, "wino", "bwd_weights", run_bwd_weights, &c);
    }
    dd_conv_free(cd);
    dd_conv_free(cw);
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.dy), free(c.dx), free(c.dw), free(c.db);
}

/* ---- sgemm peak ---- */
static void bench_sgemm(const opts *o) {
    const long n = 2048;
    float *a = rand_f((size_t)(n * n), 1.0f), *b = rand_f((size_t)(n * n), 1.0f);
    float *c = alloc_f((size_t)(n * n));
    memset(c, 0, (size_t)(n * n) * sizeof(float));
    dd_error err;
    double flops = 2.0 * n * n * n;
    int reps = o->min_reps > 8 ? o->min_reps : 8;
    for (int i = 0; i < o->warmup + reps; i++) {
        double t0 = now();
        if (dd_sgemm('N', 'N', n, n, n, 1.0f, a, n, b, n, 0.0f, c, n, &err)) die("sgemm", &err);
        double t = now() - t0;
        if (i >= o->warmup) fprintf(rec, "sgemm %.2f\n", flops / t * 1e-9);
    }
    fflush(rec);
    free(a), free(b), free(c);
}

/* ---- table from records ---- */
enum { W_DIRECT, W_WINO, W_NCHW, W_CL, NWHO };
enum { P_FWD, P_TRAIN, P_BWD_D, P_BWD_W, P_BWD_D_ACC, NWHAT };
static const char *WHO[NWHO] = {"direct", "wino", "torch_nchw", "torch_cl"};
static const char *WHAT[NWHAT] = {"fwd", "train", "bwd_data", "bwd_weights", "bwd_data_acc"};

typedef struct {
    double *v;
    int n, cap;
} vec;
static void vec_push(vec *a, double x) {
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->v = realloc(a->v, (size_t)a->cap * sizeof(double));
        if (!a->v) {
            fprintf(stderr, "bench_conv: out of memory\n");
            exit(1);
        }
    }
    a->v[a->n++] = x;
}
static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static int stat_min; /* --stat min: best time instead of the median */
static double median(vec *a) {
    if (a->n == 0) return NAN;
    qsort(a->v, (size_t)a->n, sizeof(double), cmp_d);
    if (stat_min) return a->v[0];
    return a->n % 2 ? a->v[a->n / 2] : 0.5 * (a->v[a->n / 2 - 1] + a->v[a->n / 2]);
}
static int find(const char *const *names, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

#define NKEYS 8
static const char *KEYS[NKEYS] = {"direct_impl", "wino_impl", "wino_algo",   "wino_rel_y",
                                  "wino_rel_dx", "wino_rel_dw", "scratch_mib", "torch_conv"};
typedef struct {
    vec t[NWHO][NWHAT];
    char info[NKEYS][96];
} shape_rec;

static void cell(char *buf, size_t len, double v, const char *fmt) {
    if (isnan(v)) snprintf(buf, len, "–");
    else snprintf(buf, len, fmt, v);
}

/* Geometric mean accumulator over the shapes that have a value. */
typedef struct {
    double logsum;
    int n;
} gmean;
static void gm_add(gmean *g, double v) {
    if (!isnan(v) && v > 0) g->logsum += log(v), g->n++;
}
static double gm_get(const gmean *g) { return g->n ? exp(g->logsum / g->n) : NAN; }

static int print_table(FILE *f) {
    shape_rec *r = calloc(NSHAPES, sizeof *r);
    vec sg = {0};
    char meta[8][2][96];
    int nmeta = 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char a[64], b[64], c2[64], d[96];
        int id;
        double v;
        if (sscanf(line, "time %d %63s %63s %lf", &id, a, b, &v) == 4) {
            int wi = find(WHO, NWHO, a), pi = find(WHAT, NWHAT, b);
            if (id >= 0 && id < NSHAPES && wi >= 0 && pi >= 0) vec_push(&r[id].t[wi][pi], v);
        } else if (sscanf(line, "info %d %63s %95[^\n]", &id, a, d) == 3) {
            int ki = find(KEYS, NKEYS, a);
            if (id >= 0 && id < NSHAPES && ki >= 0) snprintf(r[id].info[ki], 96, "%s", d);
        } else if (sscanf(line, "sgemm %lf", &v) == 1) {
            vec_push(&sg, v);
        } else if (sscanf(line, "meta %63s %63[^\n]", c2, d) == 2 && nmeta < 8) {
            int k;
            for (k = 0; k < nmeta && strcmp(meta[k][0], c2); k++) {}
            snprintf(meta[k][0], 96, "%s", c2);
            snprintf(meta[k][1], 96, "%s", d);
            if (k == nmeta) nmeta++;
        }
    }
    double peak = NAN;
    for (int i = 0; i < sg.n; i++)
        if (isnan(peak) || sg.v[i] > peak) peak = sg.v[i];

    printf("sgemm peak (dnnl_sgemm 2048³ through dd_sgemm, best of %d): ", sg.n);
    if (isnan(peak)) printf("not measured.\n");
    else printf("%.1f GFLOP/s.\n", peak);
    for (int k = 0; k < nmeta; k++) printf("%s: %s. ", meta[k][0], meta[k][1]);
    if (nmeta) printf("\n");
    printf("\nGFLOP/s from the %s time over all repetitions; train = fwd + bwd-data + "
           "bwd-weights = 3 × fwd FLOPs; Winograd is effective (direct-equivalent FLOPs / time); "
           "PyTorch is the faster of NCHW and channels_last (CL) per column.\n\n",
           stat_min ? "minimum" : "median");
    printf("| shape (N×Cin→Cout×H×W) | GFLOP fwd / train | ours direct fwd | ours direct train "
           "| ours Winograd train | PyTorch fwd | PyTorch train | ours/PyTorch train (direct) "
           "| ours/PyTorch train (Winograd) | direct train %% of sgemm peak |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    gmean g[8] = {{0, 0}}, g_nchw = {0, 0}, g_cl = {0, 0}, g_wd = {0, 0};
    double med[NSHAPES][NWHO][NWHAT];
    for (int i = 0; i < NSHAPES; i++)
        for (int w = 0; w < NWHO; w++)
            for (int p = 0; p < NWHAT; p++) med[i][w][p] = median(&r[i].t[w][p]);
    int any = 0;
    for (int i = 0; i < NSHAPES; i++) {
        int has = 0;
        for (int w = 0; w < NWHO; w++) has |= r[i].t[w][P_TRAIN].n > 0;
        if (!has) continue;
        any = 1;
        double ff = fwd_flops(&SHAPES[i]) * 1e-9, tf = 3 * ff;
        double dfwd = ff / med[i][W_DIRECT][P_FWD], dtr = tf / med[i][W_DIRECT][P_TRAIN];
        int wino = !strcmp(r[i].info[2], "winograd");
        double wtr = wino ? tf / med[i][W_WINO][P_TRAIN] : dtr; /* fallback = direct */
        /* PyTorch: the faster layout per column (fmax skips a missing one). */
        double tfwd = fmax(ff / med[i][W_NCHW][P_FWD], ff / med[i][W_CL][P_FWD]);
        double ttr = fmax(tf / med[i][W_NCHW][P_TRAIN], tf / med[i][W_CL][P_TRAIN]);
        const char *lf = tfwd == ff / med[i][W_CL][P_FWD] ? " CL" : " NCHW";
        const char *lt = ttr == tf / med[i][W_CL][P_TRAIN] ? " CL" : " NCHW";
        double vals[8] = {dfwd, dtr, wtr, tfwd, ttr, dtr / ttr, wtr / ttr, 100 * dtr / peak};
        gm_add(&g_nchw, med[i][W_NCHW][P_TRAIN] / med[i][W_DIRECT][P_TRAIN]);
        gm_add(&g_cl, med[i][W_CL][P_TRAIN] / med[i][W_DIRECT][P_TRAIN]);
        if (wino) gm_add(&g_wd, med[i][W_DIRECT][P_TRAIN] / med[i][W_WINO][P_TRAIN]);
        char name[64], cs[8][32];
        shape_name(&SHAPES[i], name, sizeof name);
        for (int k = 0; k < 8; k++) {
            gm_add(&g[k], vals[k]);
            cell(cs[k], sizeof cs[k], vals[k], k == 5 || k == 6 ? "%.2f×" : k == 7 ? "%.0f %%" : "%.0f");
        }
        char ws[48], tfs[48], tts[48];
        snprintf(ws, sizeof ws, "%s%s", cs[2], wino ? "" : " (direct)");
        snprintf(tfs, sizeof tfs, "%s%s", cs[3], isnan(tfwd) ? "" : lf);
        snprintf(tts, sizeof tts, "%s%s", cs[4], isnan(ttr) ? "" : lt);
        printf("| %s | %.2f / %.2f | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, ff, tf, cs[0],
               cs[1], ws, tfs, tts, cs[5], cs[6], cs[7]);
    }
    if (any) {
        char cs[8][32];
        for (int k = 0; k < 8; k++)
            cell(cs[k], sizeof cs[k], gm_get(&g[k]),
                 k == 5 || k == 6 ? "%.2f×" : k == 7 ? "%.0f %%" : "%.0f");
        printf("| **geometric mean** | | **%s** | **%s** | **%s** | **%s** | **%s** | **%s** | **%s** "
               "| **%s** |\n", cs[0], cs[1], cs[2], cs[3], cs[4], cs[5], cs[6], cs[7]);
        double rd = gm_get(&g[5]), rw = gm_get(&g[6]), pk = gm_get(&g[7]);
        printf("\nTargets (geometric means of training passes): ours direct / PyTorch = %.2f× "
               "(target ≥ 1.6×: %s); direct at %.0f %% of the sgemm peak (target ≥ 80 %%: %s). "
               "With Winograd where it exists: %.2f× PyTorch (%s).\n",
               rd, isnan(rd) ? "not measured" : rd >= 1.6 ? "met" : "not met", pk,
               isnan(pk) ? "not measured" : pk >= 80 ? "met" : "not met", rw,
               isnan(rw) ? "not measured" : rw >= 1.6 ? "≥ 1.6×" : "< 1.6×");
        printf("Ours direct train against each PyTorch layout alone: %.2f× NCHW, %.2f× "
               "channels_last. Winograd train over direct train: %.2f× (geometric mean over the "
               "%d shapes where Winograd ran).\n",
               gm_get(&g_nchw), gm_get(&g_cl), gm_get(&g_wd), g_wd.n);
    }

    printf("\nDetails: %s ms per call (direct: fwd / bwd-data / bwd-weights / train), "
           "backward-data with accumulate (dx +=, staged), "
           "oneDNN implementations (forward primitive), Winograd max |Δ| / max |direct| "
           "(y, dx, dw), PyTorch GFLOP/s by layout.\n\n",
           stat_min ? "minimum" : "median");
    printf("| shape | direct ms fwd / bwd-d / bwd-w / train | direct ms bwd-d accumulate | Winograd ms fwd / bwd-d / bwd-w / "
           "train | direct impl | Winograd impl | Winograd rel. diff y / dx / dw "
           "| PyTorch train NCHW / channels_last | PyTorch fwd NCHW / channels_last |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < NSHAPES; i++) {
        int has = 0;
        for (int w = 0; w < NWHO; w++) has |= r[i].t[w][P_TRAIN].n > 0;
        if (!has) continue;
        double ff = fwd_flops(&SHAPES[i]) * 1e-9, tf = 3 * ff;
        char name[64], ms[2][4][16], rel[3][16], tt[4][16], acc[16];
        shape_name(&SHAPES[i], name, sizeof name);
        for (int w = 0; w < 2; w++)
            for (int p = 0; p < 4; p++) {
                static const int order[4] = {P_FWD, P_BWD_D, P_BWD_W, P_TRAIN};
                cell(ms[w][p], sizeof ms[w][p], 1e3 * med[i][w][order[p]], "%.1f");
            }
        cell(acc, sizeof acc, 1e3 * med[i][W_DIRECT][P_BWD_D_ACC], "%.1f");
        for (int k = 0; k < 3; k++)
            snprintf(rel[k], sizeof rel[k], "%s", r[i].info[3 + k][0] ? r[i].info[3 + k] : "–");
        cell(tt[0], sizeof tt[0], tf / med[i][W_NCHW][P_TRAIN], "%.0f");
        cell(tt[1], sizeof tt[1], tf / med[i][W_CL][P_TRAIN], "%.0f");
        cell(tt[2], sizeof tt[2], ff / med[i][W_NCHW][P_FWD], "%.0f");
        cell(tt[3], sizeof tt[3], ff / med[i][W_CL][P_FWD], "%.0f");
        int wino = !strcmp(r[i].info[2], "winograd");
        char wms[80];
        if (wino)
            snprintf(wms, sizeof wms, "%s / %s / %s / %s", ms[1][0], ms[1][1], ms[1][2], ms[1][3]);
        else
            snprintf(wms, sizeof wms, "fell back to direct");
        printf("| %s | %s / %s / %s / %s | %s | %s | %s | %s | %s / %s / %s | %s / %s | %s / %s |\n",
               name, ms[0][0], ms[0][1], ms[0][2], ms[0][3], acc, wms,
               r[i].info[0][0] ? r[i].info[0] : "–", r[i].info[1][0] ? r[i].info[1] : "–",
               rel[0], rel[1], rel[2], tt[0], tt[1], tt[2], tt[3]);
    }
    for (int i = 0; i < NSHAPES; i++)
        for (int w = 0; w < NWHO; w++)
            for (int p = 0; p < NWHAT; p++) free(r[i].t[w][p].v);
    free(r);
    free(sg.v);
    return 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: bench_conv [--list | --sgemm | --all | --table FILE|- [--stat median|min]]\n"
            "                  [--shape ID]...\n"
            "                  [--threads T] [--min-time S] [--min-reps R] [--max-reps R] "
            "[--warmup W]\n");
}

int main(int argc, char **argv) {
    opts o = {2, 0.6, 5, 200, 2};
    int list = 0, sgemm = 0, all = 0, nsel = 0, sel[64];
    const char *table = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--list")) list = 1;
        else if (!strcmp(a, "--sgemm")) sgemm = 1;
        else if (!strcmp(a, "--all")) all = 1;
        else if (!strcmp(a, "--table") && v) table = v, i++;
        else if (!strcmp(a, "--stat") && v && (!strcmp(v, "min") || !strcmp(v, "median")))
            stat_min = !strcmp(v, "min"), i++;
        else if (!strcmp(a, "--threads") && v) o.threads = atoi(v), i++;
        else if (!strcmp(a, "--min-time") && v) o.min_time = atof(v), i++;
        else if (!strcmp(a, "--min-reps") && v) o.min_reps = atoi(v), i++;
        else if (!strcmp(a, "--max-reps") && v) o.max_reps = atoi(v), i++;
        else if (!strcmp(a, "--warmup") && v) o.warmup = atoi(v), i++;
        else if (!strcmp(a, "--shape") && v && nsel < 64) {
            sel[nsel] = atoi(v), i++;
            if (sel[nsel] < 0 || sel[nsel] >= NSHAPES) {
                fprintf(stderr, "bench_conv: shape id %s out of range 0..%d\n", v, NSHAPES - 1);
                return 2;
            }
            nsel++;
        } else {
            usage();
            return 2;
        }
    }
    if (o.threads < 1 || o.min_reps < 1 || o.max_reps < o.min_reps || o.warmup < 0) {
        usage();
        return 2;
    }
    if (list) {
        for (int i = 0; i < NSHAPES; i++) {
            const bshape *s = &SHAPES[i];
            printf("%d %d %d %d %d %d %d %d %d\n", i, s->n, s->cin, s->cout, s->h, s->w, s->k,
                   s->stride, s->pad);
        }
        return 0;
    }
    rec = stdout;
    if (table) {
        FILE *f = strcmp(table, "-") ? fopen(table, "r") : stdin;
        if (!f) {
            fprintf(stderr, "bench_conv: cannot open %s\n", table);
            return 1;
        }
        int rc = print_table(f);
        if (f != stdin) fclose(f);
        return rc;
    }

    dd_engine *eng;
    dd_error err;
    if (dd_engine_create(o.threads, &eng, &err)) die("engine", &err);
    if (all) {
        /* Everything, ours only, into a temporary record file, then the table. */
        rec = tmpfile();
        if (!rec) {
            fprintf(stderr, "bench_conv: cannot create a temporary file\n");
            return 1;
        }
        fprintf(rec, "meta threads %d\n", o.threads);
        bench_sgemm(&o);
        for (int i = 0; i < NSHAPES; i++) bench_shape(eng, &o, i);
        dd_engine_free(eng);
        rewind(rec);
        int rc = print_table(rec);
        fclose(rec);
        return rc;
    }
    fprintf(rec, "meta threads %d\n", o.threads);
    if (sgemm) bench_sgemm(&o);
    if (!sgemm || nsel) {
        if (nsel)
            for (int i = 0; i < nsel; i++) bench_shape(eng, &o, sel[i]);
        else
            for (int i = 0; i < NSHAPES; i++) bench_shape(eng, &o, i);
    }
    dd_engine_free(eng);
    return 0;
}
