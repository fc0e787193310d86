/* rng.c — xoshiro256** with splitmix64 seeding (see rng.h). */
#include "core/rng.h"

#include <math.h>

uint64_t dd_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void dd_rng_seed(dd_rng *r, uint64_t seed) {
    uint64_t st = seed;
    for (int i = 0; i < 4; i++) r->s[i] = dd_splitmix64(&st);
    /* splitmix64 never yields four zeros in a row, but be explicit: the
     * all-zero state is the one xoshiro cannot leave. */
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1;
    r->spare = 0;
    r->has_spare = 0;
}

void dd_rng_seed2(dd_rng *r, uint64_t seed, uint64_t index) {
    /* Hash the index before combining so that nearby (seed, index) pairs such
     * as (1, 0) and (0, 1) do not collide. */
    uint64_t a = index ^ 0xD1B54A32D192ED03ull;
    uint64_t h = dd_splitmix64(&a);
    dd_rng_seed(r, seed ^ h);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t dd_rng_u64(dd_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double dd_rng_uniform(dd_rng *r) { return (double)(dd_rng_u64(r) >> 11) * 0x1.0p-53; }

float dd_rng_range(dd_rng *r, float lo, float hi) {
    float v = lo + (float)(dd_rng_uniform(r) * ((double)hi - (double)lo));
    /* Rounding to float can land exactly on hi; keep the interval half-open. */
    return (v >= hi && hi > lo) ? nextafterf(hi, lo) : v;
}

int64_t dd_rng_int(dd_rng *r, int64_t lo, int64_t hi) {
    if (hi <= lo) return lo;
    uint64_t span = (uint64_t)hi - (uint64_t)lo + 1; /* 0 means the full 2^64 range */
    if (span == 0) return (int64_t)dd_rng_u64(r);
    /* Rejection sampling removes the modulo bias. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % span + 1) % span;
    uint64_t x;
    do x = dd_rng_u64(r);
    while (x > limit);
    return (int64_t)((uint64_t)lo + x % span);
}

double dd_rng_normal(dd_rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1, u2;
    do u1 = dd_rng_uniform(r);
    while (u1 <= 0.0); /* log(0) is -inf */
    u2 = dd_rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1)), th = 2.0 * M_PI * u2;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}
