/* fastmath.h — owns the vectorisable elementwise math of the ops: an inline
 * exp(x) that compilers turn into SIMD code (libm's expf is a scalar call),
 * and SiLU / sigmoid built on it. Relative error of dd_expf below 2e-7 over the
 * float range (checked in tests/test_ops.c against exp in double). */
#ifndef DD_FASTMATH_H
#define DD_FASTMATH_H

#include <stdint.h>
#include <string.h>

static inline float dd_expf(float x) {
    /* exp(x) = 2^n * exp(r), n = round(x / ln2), r = x - n ln2 in [-ln2/2, ln2/2];
     * exp(r) by a degree-6 polynomial (Cephes coefficients). */
    x = x < -87.3f ? -87.3f : x > 88.3f ? 88.3f : x;
    /* round to nearest by the 1.5 * 2^23 trick (a libm call would stop vectorisation) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3333309980e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    return p * s;
}

static inline float dd_sigmoidf(float x) { return 1.0f / (1.0f + dd_expf(-x)); }
static inline float dd_siluf(float x) { return x * dd_sigmoidf(x); }
/* d silu(z) / dz */
static inline float dd_silu_grad(float z) {
    float s = dd_sigmoidf(z);
    return s * (1.0f + z * (1.0f - s));
}

#endif
