/* arena.c — one-block allocators (see arena.h). */
#include "core/arena.h"

#include <stdlib.h>
#include <string.h>

#define DD_ALIGN 64

static size_t round_up(size_t n) { return (n + DD_ALIGN - 1) / DD_ALIGN * DD_ALIGN; }

void dd_arena_init_measure(dd_arena *a) { memset(a, 0, sizeof *a); }

int dd_arena_create(dd_arena *a, size_t bytes, dd_error *err) {
    memset(a, 0, sizeof *a);
    bytes = round_up(bytes ? bytes : DD_ALIGN);
    a->base = aligned_alloc(DD_ALIGN, bytes);
    if (!a->base)
        return dd_fail(err, DD_E_NOMEM, "arena: cannot allocate %zu bytes (%.1f MiB)", bytes,
                       bytes / 1048576.0);
    a->cap = bytes;
    return DD_OK;
}

float *dd_arena_floats(dd_arena *a, size_t n, dd_error *err) {
    size_t bytes = round_up(n * sizeof(float));
    if (!a->base) { /* measuring */
        a->used += bytes;
        if (a->used > a->peak) a->peak = a->used;
        return NULL;
    }
    if (a->used + bytes > a->cap) {
        dd_fail(err, DD_E_NOMEM, "arena: request of %zu bytes exceeds its %zu-byte block (%zu used)",
                bytes, a->cap, a->used);
        return NULL;
    }
    float *p = (float *)(a->base + a->used);
    a->used += bytes;
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

void dd_arena_reset(dd_arena *a) { a->used = 0; }

void dd_arena_seek(dd_arena *a, size_t off) {
    a->used = round_up(off);
    if (a->used > a->peak) a->peak = a->used;
}

void dd_arena_free(dd_arena *a) {
    free(a->base);
    memset(a, 0, sizeof *a);
}

void dd_params_init(dd_params *p) { memset(p, 0, sizeof *p); }

int dd_params_add(dd_params *p, const char *name, int ndim, const int64_t *shape, int trainable,
                  int group, dd_error *err) {
    if (p->value) {
        dd_fail(err, DD_E_INVALID, "params: cannot add '%s' after allocation", name);
        return -1;
    }
    if (ndim < 1 || ndim > DD_MAX_DIMS || strlen(name) >= DD_NAME_MAX) {
        dd_fail(err, DD_E_INVALID, "params: bad declaration of '%s' (ndim %d)", name, ndim);
        return -1;
    }
    if (dd_params_find(p, name) >= 0) {
        dd_fail(err, DD_E_INVALID, "params: duplicate name '%s'", name);
        return -1;
    }
    if (p->count == p->cap) {
        int ncap = p->cap ? p->cap * 2 : 64;
        dd_param *ni = realloc(p->items, (size_t)ncap * sizeof *ni);
        if (!ni) {
            dd_fail(err, DD_E_NOMEM, "params: out of memory adding '%s'", name);
            return -1;
        }
        p->items = ni;
        p->cap = ncap;
    }
    dd_param *t = &p->items[p->count];
    memset(t, 0, sizeof *t);
    strcpy(t->name, name);
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0) {
            dd_fail(err, DD_E_INVALID, "params: '%s' has a zero or negative dimension", name);
            return -1;
        }
        t->shape[i] = shape[i];
        t->numel *= (size_t)shape[i];
    }
    t->trainable = trainable;
    t->group = group;
    /* Keep every tensor 16-float aligned inside the block (64 bytes) for vector loads. */
    t->offset = (p->total + 15) / 16 * 16;
    p->total = t->offset + t->numel;
    return p->count++;
}

int dd_params_alloc(dd_params *p, int training, dd_error *err) {
    size_t n = (p->total + 15) / 16 * 16;
    size_t bytes = (n ? n : 16) * sizeof(float);
    int blocks = training ? 4 : 1;
    float **dst[4] = {&p->value, &p->grad, &p->adam_m, &p->adam_v};
    for (int b = 0; b < blocks; b++) {
        *dst[b] = aligned_alloc(DD_ALIGN, bytes);
        if (!*dst[b])
            return dd_fail(err, DD_E_NOMEM, "params: cannot allocate %zu bytes for %d tensors",
                           bytes, p->count);
        memset(*dst[b], 0, bytes);
    }
    return DD_OK;
}

int dd_params_find(const dd_params *p, const char *name) {
    for (int i = 0; i < p->count; i++)
        if (strcmp(p->items[i].name, name) == 0) return i;
    return -1;
}

float *dd_params_value(const dd_params *p, int idx) { return p->value + p->items[idx].offset; }
float *dd_params_grad(const dd_params *p, int idx) {
    return p->grad ? p->grad + p->items[idx].offset : NULL;
}

void dd_params_zero_grad(dd_params *p) {
    if (p->grad) memset(p->grad, 0, p->total * sizeof(float));
}

void dd_params_free(dd_params *p) {
    free(p->items);
    free(p->value);
    free(p->grad);
    free(p->adam_m);
    free(p->adam_v);
    memset(p, 0, sizeof *p);
}
