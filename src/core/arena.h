/* arena.h — owns the memory model: one block per lifetime.
 *
 * dd_arena: a bump allocator over one 64-byte-aligned block. Networks first run
 * their buffer plan on a *measuring* arena (capacity 0: it only adds up sizes),
 * then allocate exactly that once and run the plan again to hand out pointers.
 * Nothing is freed individually; dd_arena_reset() rewinds, dd_arena_free() frees;
 * dd_arena_seek() lets a plan give one stretch of the block to two lifetimes.
 *
 * dd_params: the named-tensor table for parameters. Values, gradients and the two
 * Adam moments each live in one contiguous float block; every tensor is a named
 * view (offset + shape) into all four. */
#ifndef DD_ARENA_H
#define DD_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct dd_arena {
    unsigned char *base; /* NULL while measuring */
    size_t cap;          /* bytes in base */
    size_t used;         /* bytes handed out (or counted while measuring) */
    size_t peak;         /* high-water mark of used */
} dd_arena;

/* A measuring arena: allocations return NULL and only count bytes. */
void dd_arena_init_measure(dd_arena *a);
/* Allocate one block of `bytes` (rounded up to 64). */
int dd_arena_create(dd_arena *a, size_t bytes, dd_error *err);
/* Floats from the arena, 64-byte aligned. While measuring returns NULL (and counts);
 * when the arena is too small returns NULL and sets *err (DD_E_NOMEM). */
float *dd_arena_floats(dd_arena *a, size_t n, dd_error *err);
void dd_arena_reset(dd_arena *a);
/* Continue handing out at byte offset `off` (a multiple of 64, an earlier value of
 * a->used or of peak). Seeking back hands the same bytes out again: for buffers whose
 * lifetimes do not overlap with those handed out there before (a network that runs
 * after another). A plan that seeks back needs an arena of the measuring one's peak. */
void dd_arena_seek(dd_arena *a, size_t off);
void dd_arena_free(dd_arena *a);

#define DD_MAX_DIMS 4
#define DD_NAME_MAX 96

typedef struct dd_param {
    char name[DD_NAME_MAX]; /* PyTorch state_dict name, e.g. "down.1.0.in_layers.2.weight" */
    int ndim;
    int64_t shape[DD_MAX_DIMS]; /* PyTorch layout (conv O,I,kh,kw; linear out,in) */
    size_t offset;              /* in floats, into each of the four blocks */
    size_t numel;
    int trainable;              /* 0 for buffers such as BatchNorm running stats */
    int group;                  /* optimiser group (learning rate) */
    int kind;                   /* DD_PK_*: what the tensor is, for initialisation */
} dd_param;

/* Parameter kinds. */
enum { DD_PK_WEIGHT = 0, DD_PK_BIAS, DD_PK_NORM_WEIGHT, DD_PK_NORM_BIAS, DD_PK_RUN_MEAN,
       DD_PK_RUN_VAR, DD_PK_COUNTER };

typedef struct dd_params {
    dd_param *items;
    int count, cap;
    size_t total;   /* floats in each block */
    float *value;   /* [total] */
    float *grad;    /* [total] (NULL until dd_params_alloc with grads) */
    float *adam_m;  /* [total] */
    float *adam_v;  /* [total] */
} dd_params;

void dd_params_init(dd_params *p);
/* Declare a tensor (before dd_params_alloc); returns its index or -1 with err set. */
int dd_params_add(dd_params *p, const char *name, int ndim, const int64_t *shape, int trainable,
                  int group, dd_error *err);
/* Allocate the value block (and grad + Adam blocks when `training`), zero-filled. */
int dd_params_alloc(dd_params *p, int training, dd_error *err);
/* Index of a name, or -1. */
int dd_params_find(const dd_params *p, const char *name);
float *dd_params_value(const dd_params *p, int idx);
float *dd_params_grad(const dd_params *p, int idx);
void dd_params_zero_grad(dd_params *p);
void dd_params_free(dd_params *p);

/* In a plan function (run twice: measuring, then placing): ptr = count floats from
 * arena a; returns DD_E_NOMEM from the caller when a placing arena runs out. */
#define DD_ARENA_ALLOC(a, err, ptr, count)                                    \
    do {                                                                      \
        (ptr) = dd_arena_floats((a), (count), (err));                         \
        if ((a)->base && !(ptr)) return DD_E_NOMEM;                           \
    } while (0)

#endif
