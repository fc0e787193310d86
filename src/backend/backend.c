/* backend.c — the backend switch and the backend-neutral engine (see backend.h). */
#include "backend/backend.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"

struct dd_engine {
    const dd_backend *be;
    int threads;
    dd_precision precision; /* resolved: f32 or bf16 */
    dd_reducer reducer;     /* sum_f64 NULL: none */
    void *state; /* the backend's */
};

const dd_backend *dd_backend_get(const char *name) {
    if (!name) return NULL;
    /* One line per backend (e.g. "cuda" -> &dd_backend_cuda, under its build flag). */
    if (!strcmp(name, "cpu")) return &dd_backend_cpu;
    return NULL;
}

int dd_engine_create_on(const dd_backend *be, int threads, dd_engine **out, dd_error *err) {
    *out = NULL;
    if (!be) be = &dd_backend_cpu;
    dd_engine *e = calloc(1, sizeof *e);
    if (!e) return dd_fail(err, DD_E_NOMEM, "engine: out of memory");
    e->be = be;
    /* The thread count is per engine; each entry point that runs OpenMP code
     * (dd_engine_activate) sets it on the calling thread, since OpenMP's setting
     * belongs to the thread, not to the process. */
    e->threads = threads > 0 ? threads : omp_get_num_procs();
    be->activate(e);
    int rc = be->engine_create(e, &e->state, err);
    if (rc) {
        free(e);
        return rc;
    }
    *out = e;
    return DD_OK;
}

int dd_engine_create(int threads, dd_engine **out, dd_error *err) {
    return dd_engine_create_on(&dd_backend_cpu, threads, out, err);
}

void dd_engine_free(dd_engine *e) {
    if (!e) return;
    e->be->engine_free(e->state);
    free(e);
}

const dd_backend *dd_engine_backend(const dd_engine *e) { return e->be; }
int dd_engine_threads(const dd_engine *e) { return e->threads; }
void *dd_engine_state(const dd_engine *e) { return e->state; }
void dd_engine_activate(const dd_engine *e) { e->be->activate(e); }
void dd_engine_set_reducer(dd_engine *e, const dd_reducer *r) {
    if (r) e->reducer = *r;
    else memset(&e->reducer, 0, sizeof e->reducer);
}
const dd_reducer *dd_engine_reducer(const dd_engine *e) { return e->reducer.sum_f64 ? &e->reducer : NULL; }

int dd_engine_has_bf16(const dd_engine *e) { return e->be->has_bf16 && e->be->has_bf16(); }

const char *dd_precision_name(dd_precision p) {
    return p == DD_PREC_BF16 ? "bf16" : p == DD_PREC_AUTO ? "auto" : "f32";
}

int dd_engine_set_precision(dd_engine *e, dd_precision p, dd_error *err) {
    if (p != DD_PREC_F32 && p != DD_PREC_BF16 && p != DD_PREC_AUTO)
        return dd_fail(err, DD_E_INVALID, "engine: unknown precision %d", (int)p);
    int has = dd_engine_has_bf16(e);
    if (p == DD_PREC_BF16 && !has)
        return dd_fail(err, DD_E_INVALID,
                       "precision bf16: this %s machine has no native bf16 arithmetic "
                       "(the cpu backend needs AVX512-BF16 or AMX); use precision auto or f32",
                       e->be->name);
    e->precision = p == DD_PREC_AUTO ? (has ? DD_PREC_BF16 : DD_PREC_F32) : p;
    return DD_OK;
}

dd_precision dd_engine_precision(const dd_engine *e) { return e->precision; }
size_t dd_engine_scratch_bytes(const dd_engine *e) { return e->be->scratch_bytes(e); }
int dd_engine_commit_scratch(dd_engine *e, dd_error *err) { return e->be->commit_scratch(e, err); }
int dd_engine_freeze_weights(dd_engine *e, size_t cap, dd_error *err) {
    return e->be->freeze_weights ? e->be->freeze_weights(e, cap, err) : DD_OK;
}

void dd_conv_out_hw(const dd_conv_shape *s, int *ho, int *wo) {
    *ho = (s->h + 2 * s->pad - s->k) / s->stride + 1;
    *wo = (s->w + 2 * s->pad - s->k) / s->stride + 1;
}

int dd_groupnorm_groups(int c, int wanted) {
    int a = c, b = wanted > 0 ? wanted : 32;
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}
