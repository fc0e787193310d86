/* hashfill.h — the deterministic weight fill shared by the PyTorch reference
 * (fill() in tests/py/ref_model.py), tests/test_model_torch.c and
 * bench/bench_model.c: every tensor is filled from a counter-based hash of
 * (7, tensor name, index), so both sides hold identical weights without a file. */
#ifndef DD_HASHFILL_H
#define DD_HASHFILL_H

#include <math.h>
#include <stdint.h>

#include "core/arena.h"

static inline uint64_t hashfill_fnv1a(const char *s) {
    uint64_t h = 0xCBF29CE484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001B3ULL;
    return h;
}

/* Uniform [-1, 1): splitmix64 finaliser of (7 ^ fnv(name)) + i * golden ratio. */
static inline void hashfill_uniform(const char *name, float *out, size_t n) {
    uint64_t base = 7ULL ^ hashfill_fnv1a(name);
    for (size_t i = 0; i < n; i++) {
        uint64_t z = base + (uint64_t)i * 0x9E3779B97F4A7C15ULL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        out[i] = (float)((double)(z >> 40) / (double)(1 << 24) * 2.0 - 1.0);
    }
}

/* Non-zero weights everywhere (zero-initialised layers too, so every gradient flows). */
static inline void hashfill_params(dd_params *p) {
    for (int i = 0; i < p->count; i++) {
        dd_param *t = &p->items[i];
        float *v = p->value + t->offset;
        if (t->kind == DD_PK_COUNTER) {
            v[0] = 0;
            continue;
        }
        hashfill_uniform(t->name, v, t->numel);
        for (size_t k = 0; k < t->numel; k++) {
            float u = v[k];
            switch (t->kind) {
            case DD_PK_RUN_VAR: v[k] = 1.0f + 0.2f * fabsf(u); break;
            case DD_PK_RUN_MEAN: v[k] = 0.1f * u; break;
            case DD_PK_NORM_WEIGHT: v[k] = 1.0f + 0.2f * u; break;
            case DD_PK_NORM_BIAS: v[k] = 0.1f * u; break;
            case DD_PK_WEIGHT: v[k] = u / sqrtf((float)(t->numel / (size_t)t->shape[0])); break;
            default: v[k] = 0.2f * u; break;
            }
        }
    }
}

#endif
