/* codec.c - the postings codec registry (see codec.h), and the CPU checks
 * of the SIMD decoders (codec_simd.h). */
#include "codec.h"
#include "codec_simd.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

extern const idx_codec_t idx_codec_varint;        /* codec_varint.c */
extern const idx_codec_t idx_codec_streamvbyte;   /* codec_streamvbyte.c */
extern const idx_codec_t idx_codec_bp128;         /* codec_bp128.c */

/* NULL-terminated; the first entry is the default. */
static const idx_codec_t *const registry[] = {
    &idx_codec_bp128,
    &idx_codec_varint,
    &idx_codec_streamvbyte,
    NULL,
};

const idx_codec_t *idx_codec_find(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; registry[i]; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

const idx_codec_t *const *idx_codec_all(void)
{
    return registry;
}

/* ---- decoder paths (codec_simd.h) ---- */

const char *idx_codec_path_name(int path)
{
    static const char *const names[IDX_NPATHS] = { "scalar", "sse2", "ssse3" };
    return path >= 0 && path < IDX_NPATHS ? names[path] : "?";
}

/* Bit p set: the CPU runs path p; computed on first use (every thread
 * computes the same, so a race only repeats the work). */
static _Atomic int cpu_paths = -1;

int idx_codec_path_ok(int path)
{
    if (path < 0 || path >= IDX_NPATHS) return 0;
    int have = atomic_load_explicit(&cpu_paths, memory_order_relaxed);
    if (have < 0) {
        have = 1 << IDX_PATH_SCALAR;
#if defined(__x86_64__) && defined(__GNUC__)
        __builtin_cpu_init();
        have |= 1 << IDX_PATH_SSE2;   /* x86-64 baseline */
        if (__builtin_cpu_supports("ssse3")) have |= 1 << IDX_PATH_SSSE3;
#endif
        atomic_store_explicit(&cpu_paths, have, memory_order_relaxed);
    }
    return (have >> path) & 1;
}

int idx_codec_choose_path(_Atomic int *chosen, int (*has)(int path))
{
    int p = atomic_load_explicit(chosen, memory_order_relaxed);
    if (p < 0) {
        p = IDX_PATH_SCALAR;
        if (!idx_codec_scalar_forced())
            for (int q = IDX_NPATHS - 1; q > IDX_PATH_SCALAR; q--)
                if (idx_codec_path_ok(q) && has(q)) { p = q; break; }
        atomic_store_explicit(chosen, p, memory_order_relaxed);
    }
    return p;
}

static _Atomic int scalar_forced = -1;

int idx_codec_scalar_forced(void)
{
    int f = atomic_load_explicit(&scalar_forced, memory_order_relaxed);
    if (f < 0) {
        const char *e = getenv("FUNNEL_CODEC_SCALAR");
        f = e && strcmp(e, "1") == 0;
        atomic_store_explicit(&scalar_forced, f, memory_order_relaxed);
    }
    return f;
}
