/* fastmath.h — owns the vectorisable elementwise math of the ops: an inline
 * exp(x) that compilers turn into SIMD code (libm's expf is a scalar call),
 * and SiLU / sigmoid built on it. Relative error of dd_expf below 2e-7 over the
 * float range (checked in tests/test_ops.c against exp in double); dd_expf_glibc, the
 * exp with libm's own bits for the training softmax; dd_silu_array /
 * dd_silu_grad_array, the same functions over arrays with fewer AVX-512 instructions
 * (the same bits, see there); dd_silu_array_bf16out, a faster SiLU with a stated error
 * for outputs rounded to bf16. */
#ifndef DD_FASTMATH_H
#define DD_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

static inline float dd_expf(float x) {
    /* exp(x) = 2^n * exp(r), n = round(x / ln2), r = x - n ln2 in [-ln2/2, ln2/2];
     * exp(r) by a degree-6 polynomial (Cephes coefficients). */
    x = x < -87.3f ? -87.3f : x > 88.3f ? 88.3f : x;
    /* round to nearest by the 1.5 * 2^23 trick (a libm call would stop vectorisation);
     * t's low significand bits then hold n itself */
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3333309980e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* 2^n from t's bits, not (int32_t)n: converting a NaN to int is undefined behaviour
     * (UBSan stops there); for every other x the same value. A NaN x stays NaN through p. */
    uint32_t tb;
    memcpy(&tb, &t, sizeof tb);
    uint32_t e = (tb - 0x4b400000u + 127u) << 23;
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

/* Arrays of SiLU values and SiLU gradients, y[k] = f(x[k]) for k < n (y == x allowed),
 * with the bits of dd_siluf / dd_silu_grad. Why: the GroupNorm+SiLU was 31 % of a
 * CPU-profile inference on AMX, two thirds of it the SiLU. On AVX-512 the exp takes
 * two instructions where the compiled dd_expf takes six (the rounding of x / ln2 by
 * vrndscaleps instead of the shift trick, the scaling by 2^n by vscalefps instead of
 * building the exponent bits and multiplying, the clamp by vmaxps / vminps instead of
 * compares and blends); everything else is dd_expf's operations in dd_expf's order (no
 * contraction: -std=c11), so it is the same function lane by lane: checked once over
 * every float x (2^32 values, 2026-12-03: dd_silu_array's bits equal dd_siluf's, NaN
 * for NaN); tests/test_ops.c checks a strided sample and the special cases. 0.45 -> 0.40
 * ns per value in a loop over 4,096 floats on the AMX VM. (A division-free sigmoid, a
 * 14-bit reciprocal with a Newton step and a Markstein correction, also gives the IEEE
 * quotient except for all-ones significands and subnormal results, but measured
 * slower there: the vector units, not the divider, are the limit.) */
#if defined(__AVX512F__)
static inline __m512 dd_expf_v16(__m512 x) {
    /* the clamp of dd_expf; a NaN stays NaN (vmaxps / vminps return their 2nd operand) */
    x = _mm512_max_ps(_mm512_set1_ps(-87.3f), x);
    x = _mm512_min_ps(_mm512_set1_ps(88.3f), x);
    /* round(x / ln2) to nearest even: what dd_expf's 1.5 * 2^23 trick computes */
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(0.693359375f)));
    r = _mm512_add_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(2.12194440e-4f)));
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(8.3333309980e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(p, r), r), r), _mm512_set1_ps(1.0f));
    /* p * 2^n, n in [-126, 127] after the clamp: 2^n is a normal float, one rounding */
    return _mm512_scalef_ps(p, n);
}

static inline __m512 dd_sigmoidf_v16(__m512 x) {
    __m512 e = dd_expf_v16(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}
#endif

static inline void dd_silu_array(float *y, const float *x, int n) {
    int k = 0;
#if defined(__AVX512F__)
    for (; k + 16 <= n; k += 16) {
        __m512 z = _mm512_loadu_ps(x + k);
        _mm512_storeu_ps(y + k, _mm512_mul_ps(z, dd_sigmoidf_v16(z)));
    }
#endif
    for (; k < n; k++) y[k] = dd_siluf(x[k]);
}

static inline void dd_silu_grad_array(float *y, const float *x, int n) {
    int k = 0;
#if defined(__AVX512F__)
    const __m512 one = _mm512_set1_ps(1.0f);
    for (; k + 16 <= n; k += 16) {
        __m512 z = _mm512_loadu_ps(x + k);
        __m512 s = dd_sigmoidf_v16(z);
        /* s * (1 + z * (1 - s)), as dd_silu_grad */
        _mm512_storeu_ps(y + k, _mm512_mul_ps(s, _mm512_add_ps(one, _mm512_mul_ps(z, _mm512_sub_ps(one, s)))));
    }
#endif
    for (; k < n; k++) y[k] = dd_silu_grad(x[k]);
}

/* y[k] = silu(x[k]) to within 3.9e-6 relative for |x| <= 80 (beyond: x for x > 80, a
 * value in (-1e-34 |x|, 0] for x < -80; NaN for NaN), for outputs rounded to bfloat16 next
 * (relative step 2^-8): the GroupNorm+SiLU that feeds a bf16 convolution. Half the vector
 * operations of dd_silu_array: exp(-x) = 2^t with t = -x log2 e split into n + f by one
 * rounding, 2^f by a degree-6 polynomial in fused multiply-adds, 2^n by vscalefps, and
 * 1 / (1 + e) by a 14-bit reciprocal with one Newton step; t is clamped to +-126, so
 * beyond |x| = 87.3 the result is x (x > 0) or 0 / a tiny negative (x < 0), as
 * dd_siluf's to within 1e-36. Measured 0.44 -> 0.22 ns per value (4,096-float array,
 * AMX VM); after the rounding to bf16, 4,633 of the 2.2e9 floats with |x| <= 80 differ
 * from the rounding of dd_siluf, each by one bf16 step (all checked once, 2026-12-03;
 * tests/test_ops.c checks a sample). Elsewhere than AVX-512: dd_siluf. */
static inline void dd_silu_array_bf16out(float *y, const float *x, int n) {
    int k = 0;
#if defined(__AVX512F__)
    const __m512 one = _mm512_set1_ps(1.0f);
    for (; k + 16 <= n; k += 16) {
        __m512 z = _mm512_loadu_ps(x + k);
        __m512 t = _mm512_mul_ps(z, _mm512_set1_ps(-1.44269504088896341f));
        /* |t| <= 126: 2^t and 1 + 2^t stay finite (a reciprocal of +inf would meet 0 * inf
         * in the Newton step: NaN) */
        t = _mm512_min_ps(_mm512_set1_ps(126.0f), _mm512_max_ps(_mm512_set1_ps(-126.0f), t));
        __m512 nn = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m512 f = _mm512_sub_ps(t, nn); /* [-0.5, 0.5] */
        /* 2^f = exp(f ln 2): Taylor coefficients (ln 2)^i / i!, i = 6 .. 0 */
        __m512 p = _mm512_set1_ps(1.5403530393381606e-4f);
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558146428443e-3f));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618129107628477e-3f));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550410866482158e-2f));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.2402265069591007f));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6931471805599453f));
        p = _mm512_fmadd_ps(p, f, one);
        __m512 d = _mm512_add_ps(one, _mm512_scalef_ps(p, nn));
        __m512 r = _mm512_rcp14_ps(d);
        r = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, one), r);
        _mm512_storeu_ps(y + k, _mm512_mul_ps(z, r));
    }
#endif
    for (; k < n; k++) y[k] = dd_siluf(x[k]);
}

/* exp(x) with the bits of glibc's expf (2.28 and later, the x86-64 variant glibc picks on
 * CPUs with FMA, which is every CPU diffad's AVX2 and AVX-512 builds run on): ARM's
 * optimized-routines algorithm (MIT) with glibc's constants and its fused multiply-adds,
 * read from Debian 12's libm (k = round(x 32/ln2) by the shift trick, 2^(k/32) from a
 * 32-entry table, a degree-3 polynomial in double; error < 0.502 ulp). Unlike the libm
 * call it vectorises. Valid where dd_expf_glibc_in_range(x) (|x| < 80, not NaN);
 * elsewhere the caller calls expf (the range glibc treats as special). Checked against
 * expf over every float of the range (2,235,564,032 values, none differ, 2026-12-03;
 * tests/test_ops.c checks a strided sample). */
static const uint64_t dd_exp2f_tab[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
    0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
    0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
    0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
    0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
    0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540};

static inline int dd_expf_glibc_in_range(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return ((u >> 20) & 0x7ff) < 0x42a; /* glibc: abstop < top12(88.0f) */
}

static inline float dd_expf_glibc(float x) {
    double xd = x;
    double kd = fma(0x1.71547652b82fep+5, xd, 0x1.8p+52); /* x 32/ln2 + shift */
    uint64_t ki;
    memcpy(&ki, &kd, sizeof ki);
    kd -= 0x1.8p+52;
    double r = fma(0x1.71547652b82fep+5, xd, -kd);
    uint64_t t = dd_exp2f_tab[ki & 31] + (ki << 47);
    double s;
    memcpy(&s, &t, sizeof s);
    double z = fma(0x1.c6af84b912394p-20, r, 0x1.ebfce50fac4f3p-13);
    double r2 = r * r;
    double y = fma(0x1.62e42ff0c52d6p-6, r, 1.0);
    y = fma(z, r2, y);
    return (float)(y * s);
}

#endif
