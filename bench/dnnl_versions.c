/* dnnl_versions.c — issue 12 deliverable 2: the same convolutions (and GroupNorm) timed
 * through oneDNN 2.x (Debian's, what diffad links) and oneDNN 3.x (PyPI's onednn-devel),
 * one source compiled against either API, so the dependency is chosen by measurement.
 *
 * Each convolution is set up exactly as src/backend/cpu/dnn.c sets up diffad's: NHWC
 * activations, weights in the layout the primitive wants ("any"), forward_training, and in
 * bf16 mode bf16 src / weights / diff_dst with float32 dst / diff_src / diff_weights / bias.
 * Times are of the primitive executions only (operands already in the primitive's layout;
 * diffad's conversions are the same work under either version). GroupNorm: under 3.x
 * oneDNN's group_normalization primitive (forward with a swish post-op = GroupNorm + SiLU,
 * backward as eltwise swish backward + GroupNorm backward), under 2.x (which has no
 * GroupNorm primitive) diffad's own fused op from libdiffad.a, the one training uses.
 *
 * usage: dnnl_versions [--reps R] [--batch N]   (threads: OMP_NUM_THREADS for 2.x's OpenMP,
 *        the process's CPUs for 3.x's TBB; bench/run_dnnl_versions.sh runs both builds)
 * Output: one line per op, "op shape precision ms GFLOP/s", medians over R runs after 2 warm-ups. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dnnl.h>
#if DNNL_VERSION_MAJOR < 3
#include "backend/cpu/ops.h"
#include "core/status.h"
#endif

#define CHECK(call)                                                                             \
    do {                                                                                        \
        dnnl_status_t st_ = (call);                                                             \
        if (st_ != dnnl_success) {                                                              \
            fprintf(stderr, "dnnl_versions: %s failed (status %d) at line %d\n", #call, (int)st_, \
                    __LINE__);                                                                  \
            exit(2);                                                                            \
        }                                                                                       \
    } while (0)

static dnnl_engine_t eng;
static dnnl_stream_t strm;
static int reps = 10;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int r) {
    qsort(t, r, sizeof *t, cmp_d);
    return r % 2 ? t[r / 2] : 0.5 * (t[r / 2 - 1] + t[r / 2]);
}

/* ---- the two APIs behind one set of helpers ---- */
#if DNNL_VERSION_MAJOR >= 3
typedef dnnl_memory_desc_t md_t; /* a handle in 3.x */
static md_t md_tag(int nd, const dnnl_dims_t d, dnnl_data_type_t t, dnnl_format_tag_t tag) {
    md_t m;
    CHECK(dnnl_memory_desc_create_with_tag(&m, nd, d, t, tag));
    return m;
}
#else
typedef dnnl_memory_desc_t md_t; /* a struct in 2.x */
static md_t md_tag(int nd, const dnnl_dims_t d, dnnl_data_type_t t, dnnl_format_tag_t tag) {
    md_t m;
    CHECK(dnnl_memory_desc_init_by_tag(&m, nd, d, t, tag));
    return m;
}
#endif

/* a memory object in the primitive's own layout for argument `what` */
static dnnl_memory_t mem_for(const_dnnl_primitive_desc_t pd, dnnl_query_t what, int idx) {
    dnnl_memory_t m;
    CHECK(dnnl_memory_create(&m, dnnl_primitive_desc_query_md(pd, what, idx), eng, DNNL_MEMORY_ALLOCATE));
    /* fill with small values: denormals or NaN would distort the timing */
    void *p;
    CHECK(dnnl_memory_get_data_handle(m, &p));
    size_t bytes = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, what, idx));
    unsigned char *b = p;
    for (size_t i = 0; i < bytes; i++) b[i] = (unsigned char)((i * 2654435761u >> 13) & 0x3f) | 0x3c * ((i & 1) == 1);
    return m;
}

static double time_prim(dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args) {
    double t[64];
    int r = reps > 64 ? 64 : reps;
    for (int i = 0; i < 2 + r; i++) {
        double t0 = now_ms();
        CHECK(dnnl_primitive_execute(prim, strm, nargs, args));
        CHECK(dnnl_stream_wait(strm));
        if (i >= 2) t[i - 2] = now_ms() - t0;
    }
    return median(t, r);
}

static dnnl_primitive_t make(const_dnnl_primitive_desc_t pd) {
    dnnl_primitive_t p;
    CHECK(dnnl_primitive_create(&p, pd));
    return p;
}

static const char *impl_of(const_dnnl_primitive_desc_t pd) {
    const char *s = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s);
    return s ? s : "?";
}

/* ---- convolution: forward, backward-data, backward-weights, as diffad runs them ---- */
static void conv(int n, int cin, int cout, int h, int w, int bf16) {
    dnnl_dims_t src_d = {n, cin, h, w}, dst_d = {n, cout, h, w}, w_d = {cout, cin, 3, 3}, b_d = {cout};
    dnnl_dims_t strides = {1, 1}, pad = {1, 1};
    dnnl_data_type_t in_t = bf16 ? dnnl_bf16 : dnnl_f32;
    md_t src_in = md_tag(4, src_d, in_t, dnnl_nhwc), w_in = md_tag(4, w_d, in_t, dnnl_format_tag_any);
    md_t dst_in = md_tag(4, dst_d, in_t, dnnl_nhwc), src_out = md_tag(4, src_d, dnnl_f32, dnnl_nhwc);
    md_t dst_out = md_tag(4, dst_d, dnnl_f32, dnnl_nhwc), w_out = md_tag(4, w_d, dnnl_f32, dnnl_format_tag_any);
    md_t b_md = md_tag(1, b_d, dnnl_f32, dnnl_x);
    dnnl_primitive_desc_t fpd, bdpd, bwpd;
#if DNNL_VERSION_MAJOR >= 3
    dnnl_dims_t dil = {0, 0};
    CHECK(dnnl_convolution_forward_primitive_desc_create(&fpd, eng, dnnl_forward_training, dnnl_convolution_direct,
                                                         src_in, w_in, b_md, dst_out, strides, dil, pad, pad, NULL));
    CHECK(dnnl_convolution_backward_data_primitive_desc_create(&bdpd, eng, dnnl_convolution_direct, src_out, w_in,
                                                               dst_in, strides, dil, pad, pad, fpd, NULL));
    CHECK(dnnl_convolution_backward_weights_primitive_desc_create(&bwpd, eng, dnnl_convolution_direct, src_in,
                                                                  w_out, b_md, dst_in, strides, dil, pad, pad,
                                                                  fpd, NULL));
#else
    dnnl_convolution_desc_t fd, bdd, bwd;
    CHECK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &src_in, &w_in,
                                             &b_md, &dst_out, strides, pad, pad));
    CHECK(dnnl_primitive_desc_create(&fpd, &fd, NULL, eng, NULL));
    CHECK(dnnl_convolution_backward_data_desc_init(&bdd, dnnl_convolution_direct, &src_out, &w_in, &dst_in,
                                                   strides, pad, pad));
    CHECK(dnnl_primitive_desc_create(&bdpd, &bdd, NULL, eng, fpd));
    CHECK(dnnl_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct, &src_in, &w_out, &b_md,
                                                      &dst_in, strides, pad, pad));
    CHECK(dnnl_primitive_desc_create(&bwpd, &bwd, NULL, eng, fpd));
#endif
    double gflop = 2.0 * n * h * w * cout * cin * 9 / 1e9;
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d->%dx%dx%d", n, cin, cout, h, w);
    const char *prec = bf16 ? "bf16" : "f32";
    {
        dnnl_memory_t s = mem_for(fpd, dnnl_query_src_md, 0), wt = mem_for(fpd, dnnl_query_weights_md, 0),
                      b = mem_for(fpd, dnnl_query_weights_md, 1), d = mem_for(fpd, dnnl_query_dst_md, 0);
        dnnl_exec_arg_t a[] = {{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, wt}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, d}};
        dnnl_primitive_t p = make(fpd);
        double ms = time_prim(p, 4, a);
        printf("conv_fwd %s %s %.3f ms %.0f GFLOP/s [%s]\n", shape, prec, ms, gflop / ms * 1e3, impl_of(fpd));
        dnnl_primitive_destroy(p);
        dnnl_memory_destroy(s), dnnl_memory_destroy(wt), dnnl_memory_destroy(b), dnnl_memory_destroy(d);
    }
    {
        dnnl_memory_t dy = mem_for(bdpd, dnnl_query_diff_dst_md, 0), wt = mem_for(bdpd, dnnl_query_weights_md, 0),
                      dx = mem_for(bdpd, dnnl_query_diff_src_md, 0);
        dnnl_exec_arg_t a[] = {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, wt}, {DNNL_ARG_DIFF_SRC, dx}};
        dnnl_primitive_t p = make(bdpd);
        double ms = time_prim(p, 3, a);
        printf("conv_bwd_data %s %s %.3f ms %.0f GFLOP/s [%s]\n", shape, prec, ms, gflop / ms * 1e3, impl_of(bdpd));
        dnnl_primitive_destroy(p);
        dnnl_memory_destroy(dy), dnnl_memory_destroy(wt), dnnl_memory_destroy(dx);
    }
    {
        dnnl_memory_t s = mem_for(bwpd, dnnl_query_src_md, 0), dy = mem_for(bwpd, dnnl_query_diff_dst_md, 0),
                      dw = mem_for(bwpd, dnnl_query_diff_weights_md, 0), db = mem_for(bwpd, dnnl_query_diff_weights_md, 1);
        dnnl_exec_arg_t a[] = {{DNNL_ARG_SRC, s}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_WEIGHTS, dw},
                               {DNNL_ARG_DIFF_BIAS, db}};
        dnnl_primitive_t p = make(bwpd);
        double ms = time_prim(p, 4, a);
        printf("conv_bwd_weights %s %s %.3f ms %.0f GFLOP/s [%s]\n", shape, prec, ms, gflop / ms * 1e3,
               impl_of(bwpd));
        dnnl_primitive_destroy(p);
        dnnl_memory_destroy(s), dnnl_memory_destroy(dy), dnnl_memory_destroy(dw), dnnl_memory_destroy(db);
    }
    dnnl_primitive_desc_destroy(fpd), dnnl_primitive_desc_destroy(bdpd), dnnl_primitive_desc_destroy(bwpd);
#if DNNL_VERSION_MAJOR >= 3
    md_t all[] = {src_in, w_in, dst_in, src_out, dst_out, w_out, b_md};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) dnnl_memory_desc_destroy(all[i]);
#endif
}

/* ---- GroupNorm + SiLU, forward and backward (NHWC, 32 groups or fewer) ---- */
static void groupnorm(int n, int c, int h, int w, int groups, int bf16) {
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%dx%dx%d/g%d", n, c, h, w, groups);
    double mbytes = (double)n * c * h * w * 4 / 1e6; /* one f32 tensor, for reference */
#if DNNL_VERSION_MAJOR >= 3
    dnnl_dims_t d = {n, c, h, w};
    dnnl_data_type_t t = bf16 ? dnnl_bf16 : dnnl_f32;
    md_t x_md = md_tag(4, d, t, dnnl_nhwc);
    unsigned flags = dnnl_use_scale | dnnl_use_shift;
    dnnl_post_ops_t po;
    dnnl_primitive_attr_t attr;
    CHECK(dnnl_post_ops_create(&po));
    CHECK(dnnl_post_ops_append_eltwise(po, dnnl_eltwise_swish, 1.0f, 0.0f));
    CHECK(dnnl_primitive_attr_create(&attr));
    CHECK(dnnl_primitive_attr_set_post_ops(attr, po));
    dnnl_primitive_desc_t fpd, bpd, spd, sfpd;
    CHECK(dnnl_group_normalization_forward_primitive_desc_create(&fpd, eng, dnnl_forward_training, x_md, x_md,
                                                                 groups, 1e-5f, flags, attr));
    /* the backward needs the pre-activation z = GN(x): a plain forward (no post-op) is
     * its hint; SiLU's backward is a separate eltwise primitive on z */
    dnnl_primitive_desc_t plain;
    CHECK(dnnl_group_normalization_forward_primitive_desc_create(&plain, eng, dnnl_forward_training, x_md, x_md,
                                                                 groups, 1e-5f, flags, NULL));
    CHECK(dnnl_group_normalization_backward_primitive_desc_create(&bpd, eng, dnnl_backward, x_md, x_md, x_md,
                                                                  groups, 1e-5f, flags, plain, NULL));
    CHECK(dnnl_eltwise_forward_primitive_desc_create(&sfpd, eng, dnnl_forward_training, dnnl_eltwise_swish, x_md,
                                                     x_md, 1.0f, 0.0f, NULL));
    CHECK(dnnl_eltwise_backward_primitive_desc_create(&spd, eng, dnnl_eltwise_swish, x_md, x_md, x_md, 1.0f, 0.0f,
                                                      sfpd, NULL));
    dnnl_memory_t x = mem_for(fpd, dnnl_query_src_md, 0), y = mem_for(fpd, dnnl_query_dst_md, 0),
                  sc = mem_for(fpd, dnnl_query_weights_md, 0), sh = mem_for(fpd, dnnl_query_weights_md, 1),
                  mean = mem_for(fpd, dnnl_query_dst_md, 1), var = mem_for(fpd, dnnl_query_dst_md, 2);
    dnnl_memory_t dy = mem_for(bpd, dnnl_query_diff_dst_md, 0), dz = mem_for(bpd, dnnl_query_diff_dst_md, 0),
                  dx = mem_for(bpd, dnnl_query_diff_src_md, 0), dsc = mem_for(bpd, dnnl_query_diff_weights_md, 0),
                  dsh = mem_for(bpd, dnnl_query_diff_weights_md, 1);
    dnnl_exec_arg_t fa[] = {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}, {DNNL_ARG_SCALE, sc}, {DNNL_ARG_SHIFT, sh},
                            {DNNL_ARG_MEAN, mean}, {DNNL_ARG_VARIANCE, var}};
    dnnl_exec_arg_t sa[] = {{DNNL_ARG_SRC, y}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, dz}};
    dnnl_exec_arg_t ba[] = {{DNNL_ARG_SRC, x},        {DNNL_ARG_MEAN, mean},         {DNNL_ARG_VARIANCE, var},
                            {DNNL_ARG_DIFF_DST, dz},  {DNNL_ARG_SCALE, sc},          {DNNL_ARG_DIFF_SRC, dx},
                            {DNNL_ARG_DIFF_SCALE, dsc}, {DNNL_ARG_DIFF_SHIFT, dsh}};
    dnnl_primitive_t fp = make(fpd), sp = make(spd), bp = make(bpd);
    double f = time_prim(fp, 6, fa), s = time_prim(sp, 3, sa), b = time_prim(bp, 8, ba);
    const char *prec = bf16 ? "bf16" : "f32";
    printf("gn_silu_fwd %s %s %.3f ms %.0f MB/s-of-f32 [%s]\n", shape, prec, f, mbytes / f * 1e3, impl_of(fpd));
    printf("gn_silu_bwd %s %s %.3f ms (silu %.3f + gn %.3f) [%s]\n", shape, prec, s + b, s, b, impl_of(bpd));
    dnnl_primitive_destroy(fp), dnnl_primitive_destroy(sp), dnnl_primitive_destroy(bp);
    dnnl_memory_t ms[] = {x, y, sc, sh, mean, var, dy, dz, dx, dsc, dsh};
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) dnnl_memory_destroy(ms[i]);
    dnnl_primitive_desc_destroy(fpd), dnnl_primitive_desc_destroy(plain), dnnl_primitive_desc_destroy(bpd);
    dnnl_primitive_desc_destroy(sfpd), dnnl_primitive_desc_destroy(spd);
    dnnl_primitive_attr_destroy(attr), dnnl_post_ops_destroy(po), dnnl_memory_desc_destroy(x_md);
#else
    if (bf16) return; /* diffad's GroupNorm is float32 */
    size_t sz = (size_t)n * c * h * w;
    float *x = malloc(sz * 4), *y = malloc(sz * 4), *dy = malloc(sz * 4), *dx = malloc(sz * 4);
    float *gamma = malloc(c * 4), *beta = malloc(c * 4), *dg = malloc(c * 4), *db = malloc(c * 4);
    float *mean = malloc((size_t)n * groups * 4), *rstd = malloc((size_t)n * groups * 4);
    if (!x || !y || !dy || !dx || !gamma || !beta || !dg || !db || !mean || !rstd) {
        fprintf(stderr, "dnnl_versions: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < sz; i++) x[i] = sinf(i * 0.37f), dy[i] = cosf(i * 0.11f) * 0.1f;
    for (int k = 0; k < c; k++) gamma[k] = 1.0f + 0.01f * k, beta[k] = 0.01f * k;
    dd_error err = {0};
    double tf[64], tb[64];
    int r = reps > 64 ? 64 : reps;
    for (int i = 0; i < 2 + r; i++) {
        double t0 = now_ms();
        if (dd_groupnorm_forward(x, gamma, beta, y, mean, rstd, n, h * w, c, groups, 1e-5f, 1, &err)) {
            fprintf(stderr, "dnnl_versions: %s\n", err.msg);
            exit(2);
        }
        double t1 = now_ms();
        if (dd_groupnorm_backward(x, gamma, beta, mean, rstd, dy, dx, dg, db, n, h * w, c, groups, 1, 0, &err)) {
            fprintf(stderr, "dnnl_versions: %s\n", err.msg);
            exit(2);
        }
        if (i >= 2) tf[i - 2] = t1 - t0, tb[i - 2] = now_ms() - t1;
    }
    double f = median(tf, r), b = median(tb, r);
    printf("gn_silu_fwd %s f32 %.3f ms %.0f MB/s-of-f32 [diffad]\n", shape, f, mbytes / f * 1e3);
    printf("gn_silu_bwd %s f32 %.3f ms [diffad, fused]\n", shape, b);
    free(x), free(y), free(dy), free(dx), free(gamma), free(beta), free(dg), free(db), free(mean), free(rstd);
#endif
}

int main(int argc, char **argv) {
    int batch = 8;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: dnnl_versions [--reps R] [--batch N]\n");
            return 2;
        }
    }
    if (reps < 1 || batch < 1) {
        fprintf(stderr, "dnnl_versions: --reps and --batch must be at least 1\n");
        return 2;
    }
    const dnnl_version_t *v = dnnl_version();
    printf("oneDNN %d.%d.%d (%s), cpu runtime %s, batch %d, %d reps\n", v->major, v->minor, v->patch, v->hash,
           v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : v->cpu_runtime == DNNL_RUNTIME_TBB ? "TBB"
           : v->cpu_runtime == DNNL_RUNTIME_SYCL ? "SYCL" : "other",
           batch, reps);
    CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    /* the CPU profile's convolutions at 128 px (bench/README.md "Where the time goes") */
    static const int shapes[][4] = {{32, 32, 128, 128}, {96, 32, 128, 128}, {64, 64, 128, 128},
                                    {64, 64, 64, 64},   {128, 64, 64, 64},  {64, 64, 32, 32},
                                    {128, 128, 16, 16}};
    for (int bf = 1; bf >= 0; bf--)
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
            conv(batch, shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], bf);
    static const int gshapes[][3] = {{32, 128, 128}, {64, 64, 64}, {128, 16, 16}};
    for (int bf = 1; bf >= 0; bf--)
        for (size_t i = 0; i < sizeof gshapes / sizeof *gshapes; i++)
            groupnorm(batch, gshapes[i][0], gshapes[i][1], gshapes[i][2], 32, bf); /* gcd(C, 32) = 32 here */
    dnnl_stream_destroy(strm);
    dnnl_engine_destroy(eng);
    return 0;
}
