/* kernels.c - squared L2 and inner product over float32 vectors, scalar and
 * AVX2+FMA (kernels_avx2.h), chosen at run time (kernels.h).
 *
 * The AVX2 versions differ from the scalar ones only in summation order
 * (rounding): tests/index/ann/test_hnsw.c holds them to 1e-5 relative on
 * every length 1..80 and on 784 and 25. */
#include "kernels.h"
#include "kernels_avx2.h"

#include <stdlib.h>
#include <string.h>

static float l2_scalar(const float *a, const float *b, size_t d)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= d; i += 4) {
        float t0 = a[i] - b[i], t1 = a[i + 1] - b[i + 1];
        float t2 = a[i + 2] - b[i + 2], t3 = a[i + 3] - b[i + 3];
        s0 += t0 * t0;
        s1 += t1 * t1;
        s2 += t2 * t2;
        s3 += t3 * t3;
    }
    for (; i < d; i++) {
        float t = a[i] - b[i];
        s0 += t * t;
    }
    return (s0 + s1) + (s2 + s3);
}

static float dot_scalar(const float *a, const float *b, size_t d)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= d; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < d; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static const ann__kernel_set scalar_set = { "scalar", l2_scalar, dot_scalar };

const ann__kernel_set *ann__kernels_scalar(void) { return &scalar_set; }

#if ANN_HAVE_AVX2_CODE
__attribute__((target("avx2,fma")))
static float l2_avx2(const float *a, const float *b, size_t d) { return ann__l2_avx2(a, b, d); }
__attribute__((target("avx2,fma")))
static float dot_avx2(const float *a, const float *b, size_t d) { return ann__dot_avx2(a, b, d); }

static const ann__kernel_set avx2_set = { "avx2", l2_avx2, dot_avx2 };

const ann__kernel_set *ann__kernels_avx2(void)
{
    static _Atomic int have = -1;   /* every thread computes the same */
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return have ? &avx2_set : NULL;
}
#else
const ann__kernel_set *ann__kernels_avx2(void) { return NULL; }
#endif

const ann__kernel_set *ann__kernels(void)
{
    static const ann__kernel_set *_Atomic chosen;
    const ann__kernel_set *k = chosen;
    if (!k) {
        const char *env = getenv("FUNNEL_ANN_KERNEL");
        k = env && strcmp(env, "scalar") == 0 ? NULL : ann__kernels_avx2();
        if (!k) k = &scalar_set;
        chosen = k;
    }
    return k;
}
