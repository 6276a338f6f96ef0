/* codec_simd.h - private to the codecs, their tests and benches: the decoder
 * paths of the codecs that have SIMD decoders (bp128, streamvbyte).
 *
 * A codec's decode (codec.h) picks the best path this CPU has, once (the
 * checks are cached); FUNNEL_CODEC_SCALAR=1 in the environment at that first
 * use forces the scalar path (the reference). Every path gives the same
 * values and the same byte count, and refuses the same input; the
 * *_decode_path functions let a test run each one on the same bytes. */
#ifndef FUNNEL_INDEX_CODEC_SIMD_H
#define FUNNEL_INDEX_CODEC_SIMD_H

#include <stddef.h>
#include <stdint.h>

enum {
    IDX_PATH_SCALAR,   /* portable C (for streamvbyte: the library's decoder) */
    IDX_PATH_SSE2,     /* x86-64 baseline */
    IDX_PATH_SSSE3,    /* pshufb */
    IDX_NPATHS,
};

/* "scalar", "sse2", "ssse3". */
const char *idx_codec_path_name(int path);
/* Whether this build and CPU can run the path (scalar: always). */
int idx_codec_path_ok(int path);
/* FUNNEL_CODEC_SCALAR=1 in the environment (read once). */
int idx_codec_scalar_forced(void);
/* The best path a codec has (has(path) != 0) that this CPU runs, scalar if
 * forced, computed once into *chosen (initially -1; a race only repeats it). */
int idx_codec_choose_path(_Atomic int *chosen, int (*has)(int path));

/* One codec's decode with a given path; 0 as decode's, and also for a path
 * the codec does not have or the CPU cannot run. */
size_t idx_bp128_decode_path(int path, const uint8_t *in, size_t avail, size_t n, uint32_t *out);
size_t idx_svb_decode_path(int path, const uint8_t *in, size_t avail, size_t n, uint32_t *out);
/* The path each codec's decode uses on this machine. */
int idx_bp128_path(void);
int idx_svb_path(void);

#endif
