/* rng.h — owns the library's seedable pseudo-random generator.
 *
 * xoshiro256** seeded through splitmix64: fast, small state, good statistics,
 * and the same stream on every platform (no libc rand()). Everything random
 * in diffad draws from a dd_rng, so a run is reproducible from its seed.
 * dd_rng_seed2() derives an independent stream from (seed, index): the data
 * side uses it to make each synthetic sample a pure function of
 * (seed, sample index), whatever thread produces it. */
#ifndef DD_RNG_H
#define DD_RNG_H

#include <stdint.h>

typedef struct dd_rng {
    uint64_t s[4];
    /* Box-Muller makes normals in pairs; the second is kept here. */
    double spare;
    int has_spare;
} dd_rng;

/* splitmix64 step: a good 64-bit mixer, also useful to hash integers. */
uint64_t dd_splitmix64(uint64_t *state);

/* Seed from one 64-bit value (any value, 0 included). */
void dd_rng_seed(dd_rng *r, uint64_t seed);

/* Seed a stream that depends on both seed and index (e.g. sample number);
 * streams for different indices are statistically independent. */
void dd_rng_seed2(dd_rng *r, uint64_t seed, uint64_t index);

/* Next raw 64-bit value. */
uint64_t dd_rng_u64(dd_rng *r);

/* Uniform double in [0, 1) with 53 random bits. */
double dd_rng_uniform(dd_rng *r);

/* Uniform float in [lo, hi). */
float dd_rng_range(dd_rng *r, float lo, float hi);

/* Uniform integer in [lo, hi] (inclusive, unbiased); returns lo if hi <= lo. */
int64_t dd_rng_int(dd_rng *r, int64_t lo, int64_t hi);

/* Standard normal N(0, 1) by Box-Muller. */
double dd_rng_normal(dd_rng *r);

#endif
