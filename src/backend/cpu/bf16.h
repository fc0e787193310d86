/* bf16.h — owns the float32 -> bfloat16 rounding the cpu backend's ops use when
 * they write a bf16 activation for a convolution (dd_groupnorm_forward_bf16): the
 * same bits as oneDNN's reorder on AVX512-BF16 CPUs, i.e. the VCVTNEPS2BF16
 * instruction (Intel SDM, "convert_fp32_to_bfloat16"): round to nearest even,
 * denormal inputs read as zero (keeping the sign), a NaN stays a quiet NaN. Checked
 * bit for bit against oneDNN's reorder in tests/test_bf16_act.c. */
#ifndef DD_CPU_BF16_H
#define DD_CPU_BF16_H

#include <stdint.h>
#include <string.h>
#if defined(__AVX512BF16__) && defined(__AVX512F__)
#include <immintrin.h>
#endif

static inline uint16_t dd_bf16_from_f32(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u); /* zero or denormal */
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even (inf stays inf) */
    return (uint16_t)(u >> 16);
}

/* dst[0, n) = the rounding of src[0, n): 16 values per VCVTNEPS2BF16 where the compiler
 * targets AVX512-BF16 (-march=native on such a CPU), dd_bf16_from_f32 for the rest and
 * elsewhere (the same bits, checked in tests/test_bf16_act.c). The instruction measured
 * 1.3x faster than the vectorised integer code for a GroupNorm writing bf16
 * (bench/README.md "bf16 activations and the inference softmax"). */
static inline void dd_bf16_store(uint16_t *dst, const float *src, int n) {
    int k = 0;
#if defined(__AVX512BF16__) && defined(__AVX512F__)
    for (; k + 16 <= n; k += 16) {
        __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + k));
        _mm256_storeu_si256((__m256i *)(dst + k), (__m256i)h);
    }
#endif
    for (; k < n; k++) dst[k] = dd_bf16_from_f32(src[k]);
}

static inline float dd_f32_from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#endif
