/* kernels_avx2.h - index/ann internals: the AVX2+FMA kernels as inline
 * functions, for kernels.c (the dispatched function pointers) and for the
 * AVX2 instances of the search loops in hnsw.c, which inline them.
 * Call them only from code compiled for (or dispatched to) AVX2+FMA.
 *
 * l2: sum (a_i - b_i)^2; dot: sum a_i b_i. 32 floats a step in four
 * accumulators, then 8 a step, then the last d % 8 through a masked load
 * (no scalar tail, no byte read past the vector). */
#ifndef FUNNEL_INDEX_ANN_KERNELS_AVX2_H
#define FUNNEL_INDEX_ANN_KERNELS_AVX2_H

#include <stddef.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define ANN_HAVE_AVX2_CODE 1
#include <immintrin.h>

#define ANN__AVX2 __attribute__((target("avx2,fma"), always_inline, unused))

/* ann__avx2_mask + 8 - r: the first r lanes on (-1), the rest off, r = 0..7 */
static const int ann__avx2_mask[16] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };

ANN__AVX2 static inline float ann__hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

ANN__AVX2 static inline float ann__l2_avx2(const float *a, const float *b, size_t d)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 t2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 t3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
        s2 = _mm256_fmadd_ps(t2, t2, s2);
        s3 = _mm256_fmadd_ps(t3, t3, s3);
    }
    for (; i + 8 <= d; i += 8) {
        __m256 t = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(t, t, s0);
    }
    if (i < d) {
        __m256i m = _mm256_loadu_si256((const __m256i *)(ann__avx2_mask + 8 - (d - i)));
        __m256 t = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
        s1 = _mm256_fmadd_ps(t, t, s1);
    }
    return ann__hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

ANN__AVX2 static inline float ann__dot_avx2(const float *a, const float *b, size_t d)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= d; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < d) {
        __m256i m = _mm256_loadu_si256((const __m256i *)(ann__avx2_mask + 8 - (d - i)));
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
    }
    return ann__hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}
/* the four horizontal sums of v0..v3 as one vector {sum v0, sum v1, sum v2, sum v3} */
ANN__AVX2 static inline __m128 ann__hsum4x256(__m256 v0, __m256 v1, __m256 v2, __m256 v3)
{
    __m256 a = _mm256_hadd_ps(v0, v1);          /* v0 pairs, v1 pairs (per 128-bit half) */
    __m256 b = _mm256_hadd_ps(v2, v3);
    __m256 c = _mm256_hadd_ps(a, b);            /* s0 s1 s2 s3 per half */
    return _mm_add_ps(_mm256_castps256_ps128(c), _mm256_extractf128_ps(c, 1));
}

/* l2 / dot of a against four vectors at once (out[i] for b[i]): four
 * independent chains hide each other's latency, the query is loaded once per
 * step, and one horizontal sum serves all four. Same summation order within
 * each vector as ann__l2_avx2 / ann__dot_avx2 for d < 32; in general within
 * rounding of them. */
ANN__AVX2 static inline void ann__l2x4_avx2(const float *a, const float *const b[4], size_t d,
                                            float out[4])
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        __m256 x = _mm256_loadu_ps(a + i);
        __m256 t0 = _mm256_sub_ps(x, _mm256_loadu_ps(b[0] + i));
        __m256 t1 = _mm256_sub_ps(x, _mm256_loadu_ps(b[1] + i));
        __m256 t2 = _mm256_sub_ps(x, _mm256_loadu_ps(b[2] + i));
        __m256 t3 = _mm256_sub_ps(x, _mm256_loadu_ps(b[3] + i));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
        s2 = _mm256_fmadd_ps(t2, t2, s2);
        s3 = _mm256_fmadd_ps(t3, t3, s3);
    }
    if (i < d) {
        __m256i m = _mm256_loadu_si256((const __m256i *)(ann__avx2_mask + 8 - (d - i)));
        __m256 x = _mm256_maskload_ps(a + i, m);
        __m256 t0 = _mm256_sub_ps(x, _mm256_maskload_ps(b[0] + i, m));
        __m256 t1 = _mm256_sub_ps(x, _mm256_maskload_ps(b[1] + i, m));
        __m256 t2 = _mm256_sub_ps(x, _mm256_maskload_ps(b[2] + i, m));
        __m256 t3 = _mm256_sub_ps(x, _mm256_maskload_ps(b[3] + i, m));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
        s2 = _mm256_fmadd_ps(t2, t2, s2);
        s3 = _mm256_fmadd_ps(t3, t3, s3);
    }
    _mm_storeu_ps(out, ann__hsum4x256(s0, s1, s2, s3));
}

ANN__AVX2 static inline void ann__dotx4_avx2(const float *a, const float *const b[4], size_t d,
                                             float out[4])
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        __m256 x = _mm256_loadu_ps(a + i);
        s0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b[0] + i), s0);
        s1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b[1] + i), s1);
        s2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b[2] + i), s2);
        s3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b[3] + i), s3);
    }
    if (i < d) {
        __m256i m = _mm256_loadu_si256((const __m256i *)(ann__avx2_mask + 8 - (d - i)));
        __m256 x = _mm256_maskload_ps(a + i, m);
        s0 = _mm256_fmadd_ps(x, _mm256_maskload_ps(b[0] + i, m), s0);
        s1 = _mm256_fmadd_ps(x, _mm256_maskload_ps(b[1] + i, m), s1);
        s2 = _mm256_fmadd_ps(x, _mm256_maskload_ps(b[2] + i, m), s2);
        s3 = _mm256_fmadd_ps(x, _mm256_maskload_ps(b[3] + i, m), s3);
    }
    _mm_storeu_ps(out, ann__hsum4x256(s0, s1, s2, s3));
}
#else
#define ANN_HAVE_AVX2_CODE 0
#endif

#endif
