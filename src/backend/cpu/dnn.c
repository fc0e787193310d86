/* dnn.c — oneDNN engine state, convolution primitives and sgemm of the cpu
 * backend (see dnn.h). */
#include "backend/cpu/dnn.h"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/bf16.h"
#include "backend/cpu/cpu.h"
#include "backend/cpu/prefetch.h"

/* The cpu backend's state of a dd_engine (dd_engine_state). */
typedef struct cpu_engine {
    const void *tag; /* &cpu_engine_tag: the state is this backend's (a wrapping backend,
                        e.g. bench/op_profile.h, hands the same state through) */
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    unsigned char *scratch; /* shared by all primitives of this engine (they run one at a time) */
    size_t scratch_cap, scratch_need;
    /* Frozen weights (dd_cpu_freeze_weights): the converted weights of the forward
     * convolutions, one slot per convolution handed out at its first forward while the
     * block lasts. wcache_need: what every convolution made so far would take. */
    int frozen;
    unsigned char *wcache;
    size_t wcache_need, wcache_cap, wcache_used;
} cpu_engine;

#define DNNL_TRY(call, what)                                                                   \
    do {                                                                                       \
        dnnl_status_t st_ = (call);                                                            \
        if (st_ != dnnl_success) {                                                             \
            rc = dd_fail(err, DD_E_BACKEND, "%s: oneDNN status %d", what, (int)st_);           \
            goto fail;                                                                         \
        }                                                                                      \
    } while (0)

static const char cpu_engine_tag = 0;

int dd_cpu_engine_create(dd_engine *de, void **state, dd_error *err) {
    (void)de;
    *state = NULL;
    cpu_engine *e = calloc(1, sizeof *e);
    if (!e) return dd_fail(err, DD_E_NOMEM, "engine: out of memory");
    e->tag = &cpu_engine_tag;
    int rc = DD_OK;
    DNNL_TRY(dnnl_engine_create(&e->eng, dnnl_cpu, 0), "engine: create CPU engine");
    DNNL_TRY(dnnl_stream_create(&e->stream, e->eng, dnnl_stream_default_flags),
             "engine: create stream");
    *state = e;
    return DD_OK;
fail:
    dd_cpu_engine_free(e);
    return rc;
}

void dd_cpu_engine_free(void *state) {
    cpu_engine *e = state;
    if (!e) return;
    if (e->stream) dnnl_stream_destroy(e->stream);
    if (e->eng) dnnl_engine_destroy(e->eng);
    free(e->scratch);
    free(e->wcache);
    free(e);
}

/* Signal guard. oneDNN's f32 GEMM kernels (jit_avx512_common_gemm_f32 and its AVX2
 * sibling, behind dnnl_sgemm and any primitive that falls back to "gemm:jit") point the
 * stack pointer at a heap workspace while they run, up to oneDNN 3.11.0 (oneDNN issue
 * #4845, fixed by PR #4855; Debian's 2.6 has it). A signal handler that runs on such a
 * thread then writes its frame into the heap: glibc later aborts with "corrupted size
 * vs. prev_size", or numbers change silently. Measured here: a no-op SIGUSR1 handler
 * and a training run sent ~5,600 signals aborted within 2 steps; a 30 us SIGALRM timer
 * corrupts a loop of dnnl_sgemm calls within seconds (tests/test_signals.c).
 * So no asynchronous signal may be handled on a thread while it is inside oneDNN: the
 * calling thread blocks them around each oneDNN call (a pending signal is delivered right
 * after the call, so Ctrl-C still stops a run within one operation), and the OpenMP
 * workers that run oneDNN's parallel parts block them for good (dd_cpu_activate; a
 * process-directed signal then goes to a thread that takes it). Faults (SIGSEGV, SIGBUS,
 * SIGFPE, SIGILL, SIGTRAP, SIGSYS) and SIGABRT stay deliverable so crash handlers work. */
static pthread_once_t async_signals_once = PTHREAD_ONCE_INIT;
static sigset_t async_signals;

static void async_signals_init(void) {
    sigfillset(&async_signals);
    const int keep[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) sigdelset(&async_signals, keep[i]);
}

/* Blocks the asynchronous signals on the calling thread; *saved gets the mask to restore. */
static void signals_hold(sigset_t *saved) {
    pthread_once(&async_signals_once, async_signals_init);
    pthread_sigmask(SIG_BLOCK, &async_signals, saved);
}

static void signals_release(const sigset_t *saved) { pthread_sigmask(SIG_SETMASK, saved, NULL); }

void dd_cpu_activate(const dd_engine *e) {
    int n = dd_engine_threads(e);
    omp_set_num_threads(n);
    /* The pool's workers (not the calling thread: it is the user's) block the asynchronous
     * signals for good; a worker created later inside a guarded call inherits the block. */
    if (n > 1) {
#pragma omp parallel num_threads(n)
        if (omp_get_thread_num() != 0) {
            sigset_t unused;
            signals_hold(&unused);
        }
    }
}

/* oneDNN's execute under the signal guard; every primitive of this file runs through it. */
static dnnl_status_t guarded_execute(dnnl_primitive_t prim, dnnl_stream_t stream, int nargs,
                                     const dnnl_exec_arg_t *args) {
    sigset_t saved;
    signals_hold(&saved);
    dnnl_status_t st = dnnl_primitive_execute(prim, stream, nargs, args);
    signals_release(&saved);
    return st;
}

size_t dd_cpu_scratch_bytes(const dd_engine *de) {
    const cpu_engine *e = dd_engine_state(de);
    return e->scratch_need + e->wcache_cap;
}

static int commit_scratch(cpu_engine *e, dd_error *err) {
    if (e->scratch_cap >= e->scratch_need) return DD_OK;
    free(e->scratch);
    size_t bytes = (e->scratch_need + 63) / 64 * 64;
    e->scratch = aligned_alloc(64, bytes);
    if (!e->scratch) {
        e->scratch_cap = 0;
        return dd_fail(err, DD_E_NOMEM, "engine: cannot allocate %zu bytes of scratch", bytes);
    }
    e->scratch_cap = bytes;
    return DD_OK;
}

int dd_cpu_commit_scratch(dd_engine *de, dd_error *err) {
    return commit_scratch(dd_engine_state(de), err);
}

/* ---- convolution ------------------------------------------------------------ */

/* One argument of a primitive: the caller's layout and the primitive's. When they
 * differ, the argument lives in scratch (at offset `off`) and a reorder moves it. */
typedef struct port {
    dnnl_memory_desc_t user_md, prim_md;
    int reordered;
    /* The conversion is float32 -> bf16 in the same layout (an activation or dy in
     * NHWC): done by convert_bf16 below instead of the reorder primitive. */
    int flat_bf16;
    size_t off, bytes;
    dnnl_memory_t user_mem, prim_mem;
    dnnl_primitive_t reorder; /* user->prim for inputs, prim->user for outputs */
} port;

enum { P_SRC, P_W, P_B, P_DST, P_DIFF_SRC, P_DIFF_W, P_DIFF_B, P_DIFF_DST_D, P_DIFF_DST_W,
       P_SRC_W, P_W_D, P_COUNT };

struct dd_conv {
    cpu_engine *e;
    dd_conv_shape s;
    int ho, wo;
    dd_conv_algo algo;
    int bf16;             /* DD_PREC_BF16 operands (see conv_build) */
    int share_diff_dst;   /* backward converts dy once for both primitives */
    int src_bf16_nhwc;    /* the forward reads its source as bf16 NHWC (dd_conv_forward_bf16) */
    int accumulates;      /* the forward has a sum post-op: y += conv(x) + b (shape.accumulate) */
    char impl[64];
    dnnl_primitive_t fwd, bwd_d, bwd_w;
    port p[P_COUNT];
    size_t pad_fwd, pad_bwd_d, pad_bwd_w; /* oneDNN scratchpad bytes of each primitive */
    size_t pad_off_fwd, pad_off_bwd_d, pad_off_bwd_w; /* their offsets in engine scratch */
    size_t acc_off_d, acc_off_w;          /* user-layout staging for accumulating dx, dw + db */
    dnnl_memory_t pad_mem_fwd, pad_mem_bwd_d, pad_mem_bwd_w;
    size_t need;                          /* total scratch bytes this conv uses */
    int has_wslot;                        /* a slot in the engine's weight cache (frozen) */
    size_t wslot;                         /* its offset */
    const void *wslot_src;                /* the weights converted there (NULL: none yet) */
    float *zero_bias;                     /* [Cout] zeros, for bias-free calls */
};

static size_t align64(size_t n) { return (n + 63) / 64 * 64; }

/* Set up a port once the primitive's md is known; input ports reorder user->prim. */
static int port_init(dd_conv *c, port *pt, const dnnl_memory_desc_t *prim_md, int is_input,
                     size_t *cursor, dd_error *err) {
    int rc = DD_OK;
    pt->prim_md = *prim_md;
    pt->reordered = !dnnl_memory_desc_equal(&pt->user_md, &pt->prim_md);
    DNNL_TRY(dnnl_memory_create(&pt->user_mem, &pt->user_md, c->e->eng, DNNL_MEMORY_NONE),
             "conv: memory");
    if (!pt->reordered) return DD_OK;
    pt->bytes = dnnl_memory_desc_get_size(&pt->prim_md);
    if (is_input && pt->user_md.data_type == dnnl_f32 && pt->prim_md.data_type == dnnl_bf16) {
        dnnl_memory_desc_t as_bf16 = pt->user_md;
        as_bf16.data_type = dnnl_bf16;
        pt->flat_bf16 = dnnl_memory_desc_equal(&as_bf16, &pt->prim_md);
    }
    pt->off = *cursor;
    *cursor += align64(pt->bytes);
    DNNL_TRY(dnnl_memory_create(&pt->prim_mem, &pt->prim_md, c->e->eng, DNNL_MEMORY_NONE),
             "conv: memory");
    dnnl_primitive_desc_t rpd = NULL;
    const dnnl_memory_desc_t *from = is_input ? &pt->user_md : &pt->prim_md;
    const dnnl_memory_desc_t *to = is_input ? &pt->prim_md : &pt->user_md;
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&rpd, from, c->e->eng, to, c->e->eng, NULL),
             "conv: reorder descriptor");
    dnnl_status_t st = dnnl_primitive_create(&pt->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    if (st != dnnl_success) return dd_fail(err, DD_E_BACKEND, "conv: reorder primitive");
    return DD_OK;
fail:
    return rc;
}

static void port_free(port *pt) {
    if (pt->user_mem) dnnl_memory_destroy(pt->user_mem);
    if (pt->prim_mem) dnnl_memory_destroy(pt->prim_mem);
    if (pt->reorder) dnnl_primitive_destroy(pt->reorder);
}

/* Point a port at the caller's buffer, its converted copy at prim (when it has one);
 * returns the memory the primitive should use. */
static dnnl_memory_t port_bind_at(port *pt, const void *user, void *prim) {
    dnnl_memory_set_data_handle(pt->user_mem, (void *)user);
    if (!pt->reordered) return pt->user_mem;
    dnnl_memory_set_data_handle(pt->prim_mem, prim);
    return pt->prim_mem;
}
/* ... with the converted copy in the shared scratch. */
static dnnl_memory_t port_bind(dd_conv *c, port *pt, const void *user) {
    return port_bind_at(pt, user, c->e->scratch + pt->off);
}

/* dst[0, n) = bf16 rounding of src[0, n) (bf16.h: the bits of oneDNN's reorder, checked in
 * tests/test_bf16_act.c), in blocks over the threads, prefetching ahead. oneDNN 2.6's
 * reorder for this (jit:uni) ran at ~3.9 G values/s on 2 threads on the AMX machine of
 * 2026-12-03: 240 activation conversions took 14 % of a CPU-profile training step
 * (bench/README.md "Training step on Sapphire Rapids"). */
#define CONVERT_BLOCK 256
static void convert_bf16(uint16_t *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += CONVERT_BLOCK) {
        size_t m = n - i < CONVERT_BLOCK ? n - i : CONVERT_BLOCK;
        dd_prefetch_ahead(src + i, src + n, m, 0);
        dd_bf16_store(dst + i, src + i, (int)m);
    }
}

static int run_reorder(dd_conv *c, port *pt, int to_prim, dd_error *err) {
    if (!pt->reordered) return DD_OK;
    if (to_prim && pt->flat_bf16) { /* the buffers port_bind set; bytes: the bf16 copy's */
        void *user = NULL, *prim = NULL;
        dnnl_memory_get_data_handle(pt->user_mem, &user);
        dnnl_memory_get_data_handle(pt->prim_mem, &prim);
        convert_bf16(prim, user, pt->bytes / sizeof(uint16_t));
        return DD_OK;
    }
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, to_prim ? pt->user_mem : pt->prim_mem},
                            {DNNL_ARG_TO, to_prim ? pt->prim_mem : pt->user_mem}};
    if (guarded_execute(pt->reorder, c->e->stream, 2, a) != dnnl_success)
        return dd_fail(err, DD_E_BACKEND, "conv: reorder failed");
    return DD_OK;
}

/* sum: a sum post-op (dst = dst_old + result, scale 1): the accumulating forward. */
static int make_prim(dd_conv *c, const_dnnl_op_desc_t od, const_dnnl_primitive_desc_t hint, int sum,
                     dnnl_primitive_desc_t *pd, dnnl_primitive_t *prim, size_t *pad_bytes,
                     const char *what, dd_error *err) {
    int rc = DD_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    DNNL_TRY(dnnl_primitive_attr_create(&attr), what);
    DNNL_TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), what);
    if (sum) {
        DNNL_TRY(dnnl_post_ops_create(&po), what);
        DNNL_TRY(dnnl_post_ops_append_sum(po, 1.0f), what);
        DNNL_TRY(dnnl_primitive_attr_set_post_ops(attr, po), what);
        dnnl_post_ops_destroy(po);
        po = NULL;
    }
    dnnl_status_t st = dnnl_primitive_desc_create(pd, od, attr, c->e->eng, hint);
    dnnl_primitive_attr_destroy(attr);
    attr = NULL;
    if (st != dnnl_success) {
        *pd = NULL;
        return dd_fail(err, DD_E_BACKEND, "%s: no oneDNN implementation (status %d)", what,
                       (int)st);
    }
    DNNL_TRY(dnnl_primitive_create(prim, *pd), what);
    *pad_bytes = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(*pd, dnnl_query_scratchpad_md, 0));
    return DD_OK;
fail:
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* oneDNN's own ISA answer (it honours ONEDNN_MAX_CPU_ISA; the ISA masks nest). */
static int cpu_isa_has(dnnl_cpu_isa_t want) {
    return ((unsigned)dnnl_get_effective_cpu_isa() & (unsigned)want) == (unsigned)want;
}

/* Whether oneDNN's direct convolutions on NHWC activations are as fast as on its
 * blocked layouts: on AVX-512 CPUs (brgconv / jit_avx512 kernels) yes, below not. */
static int nhwc_kernels_fast(void) { return cpu_isa_has(dnnl_cpu_isa_avx512_core); }

static int conv_build(dd_conv *c, int with_backward, dd_error *err) {
    const dd_conv_shape *s = &c->s;
    int rc = DD_OK;
    dnnl_alg_kind_t alg = c->algo == DD_CONV_WINOGRAD ? dnnl_convolution_winograd
                                                      : dnnl_convolution_direct;
    dnnl_dims_t src_d = {s->n, s->cin, s->h, s->w}, dst_d = {s->n, s->cout, c->ho, c->wo};
    dnnl_dims_t w_d = {s->cout, s->cin, s->k, s->k}, b_d = {s->cout};
    dnnl_dims_t strides = {s->stride, s->stride}, pad = {s->pad, s->pad};
    dnnl_dims_t pad_r = {(c->ho - 1) * s->stride + s->k - s->h - s->pad,
                         (c->wo - 1) * s->stride + s->k - s->w - s->pad};
    /* Direct: activations stay NHWC where oneDNN's NHWC kernels are as fast as blocked
     * (AVX-512: measured, docs/architecture.md), weights 'any'. Without AVX-512 (AVX2
     * CPUs) oneDNN 2.6's NHWC kernels run at a third to a half of its blocked ones
     * (jit:avx2, 16x128x128 64->64: backward-weights 3.3x, backward-data 1.9x, forward
     * 2.1x slower; bench/README.md "AVX2 CPUs"), so there the activations are 'any' too
     * and the ports convert NHWC <-> blocked around each primitive, as for Winograd.
     * Winograd: oneDNN needs blocked activations too, so everything is 'any'.
     * bf16 (direct only; oneDNN has no bf16 Winograd): the operands each primitive
     * reads (src, weights, diff_dst) are bf16 and what it writes (dst, diff_src,
     * diff_weights, bias) float32, so callers keep float32 buffers: the ports convert
     * inputs on the way in and no output needs converting back (measured: converting
     * outputs back cost as much as the bf16 convolutions saved, bench/README.md). */
    dnnl_format_tag_t act_tag = c->algo == DD_CONV_WINOGRAD || !nhwc_kernels_fast() ? dnnl_format_tag_any
                                                                                     : dnnl_nhwc;
    dnnl_data_type_t in_t = c->bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t src_in, w_in, dst_in, src_out, dst_out, w_out, b_md;
    dnnl_memory_desc_init_by_tag(&src_in, 4, src_d, in_t, act_tag);
    dnnl_memory_desc_init_by_tag(&w_in, 4, w_d, in_t, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&dst_in, 4, dst_d, in_t, act_tag);
    dnnl_memory_desc_init_by_tag(&src_out, 4, src_d, dnnl_f32, act_tag);
    dnnl_memory_desc_init_by_tag(&dst_out, 4, dst_d, dnnl_f32, act_tag);
    dnnl_memory_desc_init_by_tag(&w_out, 4, w_d, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&b_md, 1, b_d, dnnl_f32, dnnl_x);
    dnnl_memory_desc_t src_user, dst_user, w_user;
    dnnl_memory_desc_init_by_tag(&src_user, 4, src_d, dnnl_f32, dnnl_nhwc);
    dnnl_memory_desc_init_by_tag(&dst_user, 4, dst_d, dnnl_f32, dnnl_nhwc);
    dnnl_memory_desc_init_by_tag(&w_user, 4, w_d, dnnl_f32, dnnl_oihw);

    dnnl_convolution_desc_t fd, bdd, bwd;
    dnnl_primitive_desc_t fpd = NULL, bdpd = NULL, bwpd = NULL;
    /* Scratch layout: the three primitives never run at once and nothing they leave in
     * scratch is read by another (except dy, below), so each phase lays its converted
     * operands, its oneDNN scratchpad and its accumulation staging out from offset 0,
     * and the conv needs the largest phase, not their sum:
     *   forward          [src][w][b][dst][pad]
     *   backward-data    [dy][w][dx][pad][staging of dx]
     *   backward-weights [dy (the same copy when both want one layout)][src][dw][db][pad][staging of dw, db] */
    size_t cursor = 0, phase_max = 0;
    DNNL_TRY(dnnl_convolution_forward_desc_init(&fd, with_backward ? dnnl_forward_training
                                                                   : dnnl_forward_inference,
                                                alg, &src_in, &w_in, &b_md, &dst_out, strides,
                                                pad, pad_r),
             "conv: forward descriptor");
    /* The accumulating forward: a sum post-op, kept only where the primitive writes the
     * caller's NHWC float32 directly (the old y is then what it reads); with a converted
     * dst (AVX2's blocked layouts) the plain forward is built and conv_accumulates says 0. */
    c->accumulates = 0;
    if (s->accumulate && !with_backward) {
        rc = make_prim(c, &fd, NULL, 1, &fpd, &c->fwd, &c->pad_fwd, "conv forward (accumulating)", err);
        if (!rc && dnnl_memory_desc_equal(dnnl_primitive_desc_query_md(fpd, dnnl_query_dst_md, 0), &dst_user))
            c->accumulates = 1;
        else {
            if (fpd) dnnl_primitive_desc_destroy(fpd);
            if (c->fwd) dnnl_primitive_destroy(c->fwd);
            fpd = NULL, c->fwd = NULL;
            dd_error_clear(err);
        }
    }
    if (!c->accumulates) rc = make_prim(c, &fd, NULL, 0, &fpd, &c->fwd, &c->pad_fwd, "conv forward", err);
    if (rc) goto fail;
    const char *impl = NULL;
    dnnl_primitive_desc_query(fpd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(c->impl, sizeof c->impl, "%s", impl ? impl : "?");

    c->p[P_SRC].user_md = src_user;
    c->p[P_W].user_md = w_user;
    c->p[P_B].user_md = b_md;
    c->p[P_DST].user_md = dst_user;
    if ((rc = port_init(c, &c->p[P_SRC], dnnl_primitive_desc_query_md(fpd, dnnl_query_src_md, 0), 1, &cursor, err)) ||
        (rc = port_init(c, &c->p[P_W], dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 0), 1, &cursor, err)) ||
        (rc = port_init(c, &c->p[P_B], dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 1), 1, &cursor, err)) ||
        (rc = port_init(c, &c->p[P_DST], dnnl_primitive_desc_query_md(fpd, dnnl_query_dst_md, 0), 0, &cursor, err)))
        goto fail;
    c->pad_off_fwd = cursor;
    cursor += align64(c->pad_fwd);
    phase_max = cursor;
    {
        dnnl_memory_desc_t bf16_nhwc;
        dnnl_memory_desc_init_by_tag(&bf16_nhwc, 4, src_d, dnnl_bf16, dnnl_nhwc);
        c->src_bf16_nhwc = c->p[P_SRC].reordered && dnnl_memory_desc_equal(&c->p[P_SRC].prim_md, &bf16_nhwc);
    }

    if (with_backward) {
        DNNL_TRY(dnnl_convolution_backward_data_desc_init(&bdd, alg, &src_out, &w_in, &dst_in,
                                                          strides, pad, pad_r),
                 "conv: backward-data descriptor");
        rc = make_prim(c, &bdd, fpd, 0, &bdpd, &c->bwd_d, &c->pad_bwd_d, "conv backward-data", err);
        if (rc) goto fail;
        DNNL_TRY(dnnl_convolution_backward_weights_desc_init(&bwd, alg, &src_in, &w_out, &b_md,
                                                             &dst_in, strides, pad, pad_r),
                 "conv: backward-weights descriptor");
        rc = make_prim(c, &bwd, fpd, 0, &bwpd, &c->bwd_w, &c->pad_bwd_w, "conv backward-weights", err);
        if (rc) goto fail;
        c->p[P_DIFF_SRC].user_md = src_user;
        c->p[P_DIFF_DST_D].user_md = dst_user;
        c->p[P_W_D].user_md = w_user;
        c->p[P_DIFF_W].user_md = w_user;
        c->p[P_DIFF_B].user_md = b_md;
        c->p[P_DIFF_DST_W].user_md = dst_user;
        c->p[P_SRC_W].user_md = src_user;
        size_t dx_bytes = (size_t)s->n * s->h * s->w * s->cin * sizeof(float);
        size_t dw_bytes = ((size_t)s->cout * s->cin * s->k * s->k + (size_t)s->cout) * sizeof(float);
        /* backward-data */
        cursor = 0;
        if ((rc = port_init(c, &c->p[P_DIFF_DST_D], dnnl_primitive_desc_query_md(bdpd, dnnl_query_diff_dst_md, 0), 1, &cursor, err)))
            goto fail;
        size_t dy_end = cursor;
        if ((rc = port_init(c, &c->p[P_W_D], dnnl_primitive_desc_query_md(bdpd, dnnl_query_weights_md, 0), 1, &cursor, err)) ||
            (rc = port_init(c, &c->p[P_DIFF_SRC], dnnl_primitive_desc_query_md(bdpd, dnnl_query_diff_src_md, 0), 0, &cursor, err)))
            goto fail;
        c->pad_off_bwd_d = cursor;
        cursor += align64(c->pad_bwd_d);
        c->acc_off_d = cursor;
        cursor += align64(dx_bytes);
        if (cursor > phase_max) phase_max = cursor;
        /* backward-weights: both backward primitives read dy; when they want it in the
         * same converted layout, backward-data's copy (at 0) serves both */
        cursor = 0;
        if ((rc = port_init(c, &c->p[P_DIFF_DST_W], dnnl_primitive_desc_query_md(bwpd, dnnl_query_diff_dst_md, 0), 1, &cursor, err)))
            goto fail;
        port *dd = &c->p[P_DIFF_DST_D], *dw = &c->p[P_DIFF_DST_W];
        if (dd->reordered && dw->reordered && dnnl_memory_desc_equal(&dd->prim_md, &dw->prim_md)) {
            c->share_diff_dst = 1;
            dw->off = dd->off;
            cursor = dy_end;
        }
        if ((rc = port_init(c, &c->p[P_SRC_W], dnnl_primitive_desc_query_md(bwpd, dnnl_query_src_md, 0), 1, &cursor, err)) ||
            (rc = port_init(c, &c->p[P_DIFF_W], dnnl_primitive_desc_query_md(bwpd, dnnl_query_diff_weights_md, 0), 0, &cursor, err)) ||
            (rc = port_init(c, &c->p[P_DIFF_B], dnnl_primitive_desc_query_md(bwpd, dnnl_query_diff_weights_md, 1), 0, &cursor, err)))
            goto fail;
        c->pad_off_bwd_w = cursor;
        cursor += align64(c->pad_bwd_w);
        c->acc_off_w = cursor;
        cursor += align64(dw_bytes);
        if (cursor > phase_max) phase_max = cursor;
    }
    c->need = phase_max;
    {
        const dnnl_memory_desc_t *m;
        m = dnnl_primitive_desc_query_md(fpd, dnnl_query_scratchpad_md, 0);
        DNNL_TRY(dnnl_memory_create(&c->pad_mem_fwd, m, c->e->eng, DNNL_MEMORY_NONE), "conv: scratchpad");
        if (with_backward) {
            m = dnnl_primitive_desc_query_md(bdpd, dnnl_query_scratchpad_md, 0);
            DNNL_TRY(dnnl_memory_create(&c->pad_mem_bwd_d, m, c->e->eng, DNNL_MEMORY_NONE), "conv: scratchpad");
            m = dnnl_primitive_desc_query_md(bwpd, dnnl_query_scratchpad_md, 0);
            DNNL_TRY(dnnl_memory_create(&c->pad_mem_bwd_w, m, c->e->eng, DNNL_MEMORY_NONE), "conv: scratchpad");
        }
    }
fail:
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (bdpd) dnnl_primitive_desc_destroy(bdpd);
    if (bwpd) dnnl_primitive_desc_destroy(bwpd);
    return rc;
}

static void conv_release(dd_conv *c) {
    for (int i = 0; i < P_COUNT; i++) port_free(&c->p[i]);
    if (c->fwd) dnnl_primitive_destroy(c->fwd);
    if (c->bwd_d) dnnl_primitive_destroy(c->bwd_d);
    if (c->bwd_w) dnnl_primitive_destroy(c->bwd_w);
    if (c->pad_mem_fwd) dnnl_memory_destroy(c->pad_mem_fwd);
    if (c->pad_mem_bwd_d) dnnl_memory_destroy(c->pad_mem_bwd_d);
    if (c->pad_mem_bwd_w) dnnl_memory_destroy(c->pad_mem_bwd_w);
    cpu_engine *e = c->e;
    dd_conv_shape s = c->s;
    int ho = c->ho, wo = c->wo;
    float *zb = c->zero_bias;
    int bf16 = c->bf16;
    memset(c, 0, sizeof *c);
    c->e = e, c->s = s, c->ho = ho, c->wo = wo, c->zero_bias = zb, c->bf16 = bf16;
}

int dd_conv_create(dd_engine *de, const dd_conv_shape *s, dd_conv_algo algo, int with_backward,
                   dd_conv **out, dd_error *err) {
    *out = NULL;
    if (!de || !s) return dd_fail(err, DD_E_INVALID, "conv: NULL engine or shape");
    cpu_engine *e = dd_engine_state(de);
    if (!e || e->tag != &cpu_engine_tag)
        return dd_fail(err, DD_E_INVALID, "conv: engine of backend '%s', whose state is not the cpu backend's",
                       dd_engine_backend(de)->name);
    if (s->n <= 0 || s->h <= 0 || s->w <= 0 || s->cin <= 0 || s->cout <= 0 || s->k <= 0 ||
        s->stride <= 0 || s->pad < 0)
        return dd_fail(err, DD_E_INVALID,
                       "conv: invalid shape N=%d H=%d W=%d Cin=%d Cout=%d k=%d stride=%d pad=%d",
                       s->n, s->h, s->w, s->cin, s->cout, s->k, s->stride, s->pad);
    dd_conv *c = calloc(1, sizeof *c);
    if (!c) return dd_fail(err, DD_E_NOMEM, "conv: out of memory");
    c->e = e;
    c->s = *s;
    dd_conv_out_hw(s, &c->ho, &c->wo);
    if (c->ho <= 0 || c->wo <= 0) {
        free(c);
        return dd_fail(err, DD_E_INVALID, "conv: %dx%d input with k=%d pad=%d gives an empty output",
                       s->h, s->w, s->k, s->pad);
    }
    c->bf16 = dd_engine_precision(de) == DD_PREC_BF16;
    c->algo = c->bf16 ? DD_CONV_DIRECT : algo; /* oneDNN has no bf16 Winograd */
    c->zero_bias = calloc((size_t)s->cout, sizeof(float));
    if (!c->zero_bias) {
        free(c);
        return dd_fail(err, DD_E_NOMEM, "conv: out of memory");
    }
    int rc = conv_build(c, with_backward, err);
    if (rc && c->algo == DD_CONV_WINOGRAD) { /* no Winograd kernel for this shape: go direct */
        conv_release(c);
        c->algo = DD_CONV_DIRECT;
        dd_error_clear(err);
        rc = conv_build(c, with_backward, err);
    }
    if (rc) {
        char msg[sizeof err->msg];
        if (err) snprintf(msg, sizeof msg, "%s", err->msg);
        dd_conv_free(c);
        return dd_fail(err, rc, "%s (shape N=%d %dx%d %d->%d k=%d s=%d)", err ? msg : "", s->n,
                       s->h, s->w, s->cin, s->cout, s->k, s->stride);
    }
    if (c->need > e->scratch_need) e->scratch_need = c->need;
    if (c->p[P_W].reordered) e->wcache_need += align64(c->p[P_W].bytes);
    *out = c;
    return DD_OK;
}

/* Frozen weights. Inference converts every convolution's float32 OIHW weights to the
 * kernel's blocked layout (and to bf16) on each forward, as training must; measured
 * 2026-12-01, CPU profile, batch 1, bf16: 132 weight reorders, ~8 ms of ~60 ms of oneDNN
 * time per inference (ONEDNN_VERBOSE). With the weights frozen each forward convolution
 * keeps its converted weights in a slot of one block and converts again only when called
 * with another weights pointer: CPU-profile inference 1.09x faster for 10.6 MB (bf16).
 * All or nothing: when the convolutions need more than cap (the paper configuration's
 * 160 M weights: 320 MB in bf16) nothing is kept — keeping the first 64 MB of them
 * measured no speed-up there (its time is in the large convolutions) for 64 MB more. */
int dd_cpu_freeze_weights(dd_engine *de, size_t cap, dd_error *err) {
    cpu_engine *e = dd_engine_state(de);
    if (e->frozen) return dd_fail(err, DD_E_INVALID, "engine: weights already frozen");
    size_t bytes = e->wcache_need <= cap ? e->wcache_need : 0; /* align64 sums: a multiple of 64 */
    if (bytes) {
        e->wcache = aligned_alloc(64, bytes);
        if (!e->wcache)
            return dd_fail(err, DD_E_NOMEM, "engine: cannot allocate %zu bytes for the converted weights", bytes);
    }
    e->wcache_cap = bytes;
    e->wcache_used = 0;
    e->frozen = 1;
    return DD_OK;
}

void dd_conv_free(dd_conv *c) {
    if (!c) return;
    conv_release(c);
    free(c->zero_bias);
    free(c);
}

int dd_cpu_has_bf16(void) { return cpu_isa_has(dnnl_cpu_isa_avx512_core_bf16); }

int dd_conv_is_bf16(const dd_conv *c) { return c->bf16; }

dd_conv_algo dd_conv_algo_used(const dd_conv *c) { return c->algo; }
const char *dd_conv_impl(const dd_conv *c) { return c->impl; }

static int exec(dd_conv *c, dnnl_primitive_t prim, int nargs, dnnl_exec_arg_t *args,
                dnnl_memory_t pad, size_t pad_off, const char *what, dd_error *err) {
    dnnl_memory_set_data_handle(pad, c->e->scratch + pad_off);
    args[nargs].arg = DNNL_ARG_SCRATCHPAD;
    args[nargs].memory = pad;
    if (guarded_execute(prim, c->e->stream, nargs + 1, args) != dnnl_success)
        return dd_fail(err, DD_E_BACKEND, "%s: execution failed", what);
    return DD_OK;
}

/* The source is x (float32 NHWC, converted by the port) or x16 (already the
 * primitive's bf16 NHWC: bound as it is, no conversion). */
static int conv_forward(dd_conv *c, const float *x, const uint16_t *x16, const float *w,
                        const float *b, float *y, dd_error *err) {
    int rc = commit_scratch(c->e, err);
    if (rc) return rc;
    dnnl_exec_arg_t a[5];
    port *ps = &c->p[P_SRC];
    if (x16) dnnl_memory_set_data_handle(ps->prim_mem, (void *)x16);
    a[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, x16 ? ps->prim_mem : port_bind(c, ps, x)};
    port *pw = &c->p[P_W];
    cpu_engine *e = c->e;
    if (e->frozen && pw->reordered && !c->has_wslot && e->wcache_cap - e->wcache_used >= align64(pw->bytes)) {
        c->wslot = e->wcache_used, c->has_wslot = 1; /* once per convolution */
        e->wcache_used += align64(pw->bytes);
    }
    a[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, c->has_wslot ? port_bind_at(pw, w, e->wcache + c->wslot)
                                                            : port_bind(c, pw, w)};
    int w_ready = c->has_wslot && c->wslot_src == w; /* the slot holds these weights, converted */
    int n = 2;
    /* The primitive was made with a bias; without one, bind the conv's zero bias. */
    a[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, port_bind(c, &c->p[P_B], b ? b : c->zero_bias)};
    a[n++] = (dnnl_exec_arg_t){DNNL_ARG_DST, port_bind(c, &c->p[P_DST], y)};
    if ((!x16 && (rc = run_reorder(c, ps, 1, err))) || (!w_ready && (rc = run_reorder(c, pw, 1, err))))
        return rc;
    if (c->has_wslot) c->wslot_src = w;
    if ((rc = exec(c, c->fwd, n, a, c->pad_mem_fwd, c->pad_off_fwd, "conv forward", err))) return rc;
    return run_reorder(c, &c->p[P_DST], 0, err);
}

int dd_conv_forward(dd_conv *c, const float *x, const float *w, const float *b, float *y,
                    dd_error *err) {
    if (!c || !x || !w || !y) return dd_fail(err, DD_E_INVALID, "conv forward: NULL buffer");
    return conv_forward(c, x, NULL, w, b, y, err);
}

int dd_conv_takes_bf16(const dd_conv *c) { return c && c->src_bf16_nhwc; }

int dd_conv_accumulates(const dd_conv *c) { return c && c->accumulates; }

int dd_conv_forward_bf16(dd_conv *c, const uint16_t *x, const float *w, const float *b, float *y,
                         dd_error *err) {
    if (!c || !x || !w || !y) return dd_fail(err, DD_E_INVALID, "conv forward: NULL buffer");
    if (!c->src_bf16_nhwc)
        return dd_fail(err, DD_E_INVALID, "conv forward: this convolution does not read a bf16 NHWC source");
    return conv_forward(c, NULL, x, w, b, y, err);
}

static void add_into(float *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

int dd_conv_backward(dd_conv *c, const float *x, const float *w, const float *dy, float *dx,
                     float *dw, float *db, int accumulate, dd_error *err) {
    if (!c || !dy) return dd_fail(err, DD_E_INVALID, "conv backward: NULL buffer");
    if (!c->bwd_d) return dd_fail(err, DD_E_INVALID, "conv backward: created without backward");
    int rc = commit_scratch(c->e, err);
    if (rc) return rc;
    const dd_conv_shape *s = &c->s;
    if (dx) {
        float *stage = (float *)(c->e->scratch + c->acc_off_d);
        if (!w) return dd_fail(err, DD_E_INVALID, "conv backward: NULL weights");
        float *target = accumulate ? stage : dx;
        dnnl_exec_arg_t a[4];
        a[0] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, port_bind(c, &c->p[P_DIFF_DST_D], dy)};
        a[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, port_bind(c, &c->p[P_W_D], w)};
        a[2] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SRC, port_bind(c, &c->p[P_DIFF_SRC], target)};
        if ((rc = run_reorder(c, &c->p[P_DIFF_DST_D], 1, err)) ||
            (rc = run_reorder(c, &c->p[P_W_D], 1, err)) ||
            (rc = exec(c, c->bwd_d, 3, a, c->pad_mem_bwd_d, c->pad_off_bwd_d, "conv backward-data", err)) ||
            (rc = run_reorder(c, &c->p[P_DIFF_SRC], 0, err)))
            return rc;
        if (accumulate) add_into(dx, stage, (size_t)s->n * s->h * s->w * s->cin);
    }
    if (dw || db) {
        if (!x) return dd_fail(err, DD_E_INVALID, "conv backward: NULL input");
        size_t nw = (size_t)s->cout * s->cin * s->k * s->k;
        /* Parameter gradients always accumulate (the denoiser runs twice per step). */
        float *tw = (float *)(c->e->scratch + c->acc_off_w), *tb = tw + nw;
        dnnl_exec_arg_t a[5];
        a[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, port_bind(c, &c->p[P_SRC_W], x)};
        a[1] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, port_bind(c, &c->p[P_DIFF_DST_W], dy)};
        a[2] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_WEIGHTS, port_bind(c, &c->p[P_DIFF_W], tw)};
        a[3] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, port_bind(c, &c->p[P_DIFF_B], tb)};
        /* dy is already converted when backward-data just ran on the shared copy. */
        int dy_ready = dx && c->share_diff_dst;
        if ((rc = run_reorder(c, &c->p[P_SRC_W], 1, err)) ||
            (!dy_ready && (rc = run_reorder(c, &c->p[P_DIFF_DST_W], 1, err))) ||
            (rc = exec(c, c->bwd_w, 4, a, c->pad_mem_bwd_w, c->pad_off_bwd_w, "conv backward-weights", err)) ||
            (rc = run_reorder(c, &c->p[P_DIFF_W], 0, err)) ||
            (rc = run_reorder(c, &c->p[P_DIFF_B], 0, err)))
            return rc;
        if (dw) add_into(dw, tw, nw);
        if (db) add_into(db, tb, (size_t)s->cout);
    }
    return DD_OK;
}

int dd_sgemm(char ta, char tb, long m, long n, long k, float alpha, const float *a, long lda,
             const float *b, long ldb, float beta, float *c, long ldc, dd_error *err) {
    if (m <= 0 || n <= 0 || k <= 0 || !a || !b || !c)
        return dd_fail(err, DD_E_INVALID, "sgemm: invalid arguments M=%ld N=%ld K=%ld", m, n, k);
    sigset_t saved; /* the GEMM kernel this calls is the one the signal guard is for */
    signals_hold(&saved);
    dnnl_status_t st = dnnl_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    signals_release(&saved);
    if (st != dnnl_success)
        return dd_fail(err, DD_E_BACKEND, "sgemm %c%c M=%ld N=%ld K=%ld: oneDNN status %d", ta,
                       tb, m, n, k, (int)st);
    return DD_OK;
}
