/* kernels.h - index/ann internals: the distance kernels and their runtime
 * dispatch. Not part of the API (hnsw.h); tests/index/ann checks that every
 * path agrees with the scalar one.
 *
 * Two kernels, each in two versions:
 *   l2(a, b, d)  = sum (a_i - b_i)^2
 *   dot(a, b, d) = sum a_i b_i
 * scalar: plain C, four partial sums (any CPU).
 avx2:   AVX2 + FMA (kernels_avx2.h, inline so that hnsw.c's AVX2 search
 *         loops inline them), 32 floats a step in four accumulators, then 8 a
 *         step, the last d % 8 by a masked load (no scalar tail, no read past
 *         the vector). Chosen at run time when the CPU has AVX2 and FMA; no
 *         AVX-512 instruction anywhere.
 * FUNNEL_ANN_KERNEL=scalar in the environment forces the scalar path (for
 * measurements); it is read once, at the first ann__kernels() call.
 */
#ifndef FUNNEL_INDEX_ANN_KERNELS_H
#define FUNNEL_INDEX_ANN_KERNELS_H

#include <stddef.h>

typedef float (*ann__kernel_fn)(const float *a, const float *b, size_t d);

typedef struct ann__kernel_set {
    const char *name;           /* "avx2" or "scalar" */
    ann__kernel_fn l2, dot;
} ann__kernel_set;

/** The best kernels for this CPU (see above). Never NULL; thread-safe. */
const ann__kernel_set *ann__kernels(void);
/** The scalar kernels, always available. */
const ann__kernel_set *ann__kernels_scalar(void);
/** The AVX2+FMA kernels, or NULL when the CPU (or the compiler) has none. */
const ann__kernel_set *ann__kernels_avx2(void);

#endif
