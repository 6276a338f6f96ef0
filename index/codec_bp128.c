/* codec_bp128.c - "bp128": binary packing at the block's bit width in the
 * vertical 4-lane layout of Lemire and Boytsov's SIMD-BP128 ("Decoding
 * billions of integers per second through vectorization", 2015), so that an
 * SSE2 register decodes four values per shift-and-mask.
 *
 * Format of n values (1..IDX_BLOCK_SIZE; n = 0 is no bytes at all):
 *
 *   u8 b              the largest bit width of the n values (0..32)
 *   vertical part     the first 4k values, k = n / 4: value 4j+l goes to
 *                     lane l (0..3) as the lane's j-th b-bit field. A lane is
 *                     a little-endian bit stream (field j at bits j*b ..
 *                     j*b+b-1, low bits first) cut into W = ceil(k*b / 32)
 *                     32-bit words, and word w of lane l is stored (little
 *                     endian) at byte 16*w + 4*l: row w of the part is one
 *                     16-byte vector of the four lanes' w-th words. 16*W
 *                     bytes; the unused high bits of the last row are 0.
 *   tail              the last r = n % 4 values as one little-endian bit
 *                     stream, value t at bits t*b .. t*b+b-1: ceil(r*b / 8)
 *                     bytes, unused high bits of the last byte 0.
 *
 * So the size is 1 + 16*ceil((n/4)*b / 32) + ceil((n%4)*b / 8), a function
 * of (b, n) alone: decode reads b, refuses b > 32 or n > IDX_BLOCK_SIZE, and
 * checks the size against avail before it reads anything else. b = 0 (all
 * values 0) has no payload. A full block of 128 is 1 + 16*b bytes.
 *
 * Decoders (chosen once per process, codec_simd.h): a portable scalar one,
 * the reference and the fallback (FUNNEL_CODEC_SCALAR=1), and SSE2 on
 * x86-64 (its baseline, so every x86-64 CPU has it): four values per
 * shift/and, one fully unrolled instantiation per b, every row index and
 * shift a constant. Every SIMD load is a whole 16-byte row inside the
 * vertical part, and a row is loaded only when a value of the first 4k
 * needs it, so nothing is read past the size checked against avail. An
 * AVX2 decoder (two value vectors a step, per-half vpsrlvd/vpsllvd) was
 * tried and was no faster on 128-value blocks (call, dispatch and the
 * stores dominate; at b >= 20 its two-row loads made it slower), so there
 * is none. The encoder is scalar. Unused bits are not checked (a damaged
 * value the checksums let through decodes to some values). */
#include "codec.h"
#include "codec_simd.h"

#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define BP_X86 1
#include <immintrin.h>
#endif

static inline uint32_t get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t low_mask(unsigned b)
{
    return b >= 32 ? 0xFFFFFFFFu : (1u << b) - 1;
}

/* Rows (16-byte vectors) of the vertical part of n values at width b. */
static inline size_t bp_rows(size_t n, unsigned b)
{
    return ((n / 4) * b + 31) / 32;
}

static inline size_t bp_tail_bytes(size_t n, unsigned b)
{
    return ((n % 4) * b + 7) / 8;
}

static size_t bp_max_bytes(size_t n)
{
    return n ? 1 + 16 * bp_rows(n, 32) + bp_tail_bytes(n, 32) : 0;   /* = 1 + 4n */
}

static size_t bp_encode(const uint32_t *in, size_t n, uint8_t *out)
{
    if (n == 0) return 0;
    uint32_t all = 0;
    for (size_t i = 0; i < n; i++) all |= in[i];
    unsigned b = 0;
    while (b < 32 && (all >> b)) b++;
    out[0] = (uint8_t)b;
    uint8_t *p = out + 1;
    size_t k = n / 4, rows = bp_rows(n, b);
    for (unsigned l = 0; l < 4; l++) {
        uint64_t acc = 0;
        unsigned have = 0;
        size_t w = 0;
        for (size_t j = 0; j < k; j++) {
            acc |= (uint64_t)in[4 * j + l] << have;
            have += b;
            if (have >= 32) {
                put_u32le(p + 16 * w++ + 4 * l, (uint32_t)acc);
                acc >>= 32;
                have -= 32;
            }
        }
        if (have) put_u32le(p + 16 * w++ + 4 * l, (uint32_t)acc);
    }
    p += 16 * rows;
    uint64_t acc = 0;
    unsigned have = 0;
    for (size_t i = 4 * k; i < n; i++) {
        acc |= (uint64_t)in[i] << have;
        for (have += b; have >= 8; have -= 8) {
            *p++ = (uint8_t)acc;
            acc >>= 8;
        }
    }
    if (have) *p++ = (uint8_t)acc;
    return (size_t)(p - out);
}

/* ---- decoders: the vertical part's first 4k values, 0 <= b <= 32 ---- */

static void unpack_scalar(const uint8_t *in, uint32_t *out, size_t k, unsigned b)
{
    const uint32_t mask = low_mask(b);
    uint64_t acc[4] = { 0, 0, 0, 0 };
    unsigned have = 0;   /* bits in each lane's acc (the same for all four) */
    const uint8_t *row = in;
    for (size_t j = 0; j < k; j++) {
        if (have < b) {
            for (unsigned l = 0; l < 4; l++) acc[l] |= (uint64_t)get_u32le(row + 4 * l) << have;
            row += 16;
            have += 32;
        }
        for (unsigned l = 0; l < 4; l++) {
            out[4 * j + l] = (uint32_t)acc[l] & mask;
            acc[l] >>= b;
        }
        have -= b;
    }
}

/* The tail: r < 4 values from ceil(r*b / 8) bytes. */
static void unpack_tail(const uint8_t *in, uint32_t *out, size_t r, unsigned b)
{
    const uint32_t mask = low_mask(b);
    uint64_t acc = 0;
    unsigned have = 0;
    for (size_t t = 0; t < r; t++) {
        for (; have < b; have += 8) acc |= (uint64_t)*in++ << have;
        out[t] = (uint32_t)acc & mask;
        acc >>= b;
        have -= b;
    }
}

#define BP_WIDTHS(F) \
    F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11) F(12) F(13) F(14) F(15) F(16) \
    F(17) F(18) F(19) F(20) F(21) F(22) F(23) F(24) F(25) F(26) F(27) F(28) F(29) F(30) F(31) F(32)

#ifdef BP_X86
/* Value vector j (values 4j..4j+3) sits at bits j*b of every lane: in row
 * (j*b)/32 from bit (j*b)%32, and on into the next row when it crosses.
 * Fully unrolled for one b, every row index and shift is a constant; a row
 * is loaded when the first value that needs it comes, and j == k stops
 * before that. */
static inline __attribute__((always_inline))
void unpack_sse2_b(const uint8_t *in, uint32_t *out, unsigned k, const unsigned b)
{
    const __m128i mask = _mm_set1_epi32((int)low_mask(b));
    const __m128i *rows = (const __m128i *)in;
    __m128i cur = _mm_setzero_si128();
    unsigned at = ~0u;   /* the row in cur */
#pragma GCC unroll 32
    for (unsigned j = 0; j < 32; j++) {
        if (j == k) return;
        if (b == 0) {
            _mm_storeu_si128((__m128i *)out + j, cur);
            continue;
        }
        unsigned lo = j * b, r0 = lo / 32, r1 = (lo + b - 1) / 32, s = lo % 32;
        if (r0 != at) {
            cur = _mm_loadu_si128(rows + r0);
            at = r0;
        }
        __m128i v = _mm_srli_epi32(cur, (int)s);
        if (r1 != r0) {
            cur = _mm_loadu_si128(rows + r1);
            at = r1;
            v = _mm_or_si128(v, _mm_slli_epi32(cur, (int)(32 - s)));
        }
        if (b < 32 && (r1 != r0 || s + b < 32)) v = _mm_and_si128(v, mask);
        _mm_storeu_si128((__m128i *)out + j, v);
    }
}

/* noipa: see search.c's share_scalar (GCC 12.2 may take a function whose
 * only effect is such stores for pure and drop its calls). */
__attribute__((noipa))
static void unpack_sse2(const uint8_t *in, uint32_t *out, size_t k, unsigned b)
{
    switch (b) {
#define BP_CASE(B) case B: unpack_sse2_b(in, out, (unsigned)k, B); return;
    BP_CASE(0) BP_WIDTHS(BP_CASE)
#undef BP_CASE
    default: return;
    }
}
#endif

/* ---- dispatch ---- */

typedef void unpack_fn(const uint8_t *in, uint32_t *out, size_t k, unsigned b);

static size_t bp_decode_with(unpack_fn *unpack, const uint8_t *in, size_t avail, size_t n,
                             uint32_t *out)
{
    if (n == 0 || n > IDX_BLOCK_SIZE || avail == 0) return 0;
    unsigned b = in[0];
    if (b > 32) return 0;
    size_t rows = bp_rows(n, b), total = 1 + 16 * rows + bp_tail_bytes(n, b);
    if (total > avail) return 0;
    size_t k = n / 4;
    if (k) unpack(in + 1, out, k, b);
    if (n % 4) unpack_tail(in + 1 + 16 * rows, out + 4 * k, n % 4, b);
    return total;
}

static unpack_fn *path_fn(int path)
{
    if (!idx_codec_path_ok(path)) return NULL;
    switch (path) {
    case IDX_PATH_SCALAR: return unpack_scalar;
#ifdef BP_X86
    case IDX_PATH_SSE2: return unpack_sse2;
#endif
    default: return NULL;
    }
}

static int has_path(int path) { return path_fn(path) != NULL; }

int idx_bp128_path(void)
{
    static _Atomic int chosen = -1;
    return idx_codec_choose_path(&chosen, has_path);
}

size_t idx_bp128_decode_path(int path, const uint8_t *in, size_t avail, size_t n, uint32_t *out)
{
    unpack_fn *f = path_fn(path);
    return f ? bp_decode_with(f, in, avail, n, out) : 0;
}

static size_t bp_decode(const uint8_t *in, size_t avail, size_t n, uint32_t *out)
{
    static unpack_fn *_Atomic fn;
    unpack_fn *f = atomic_load_explicit(&fn, memory_order_relaxed);
    if (!f) {
        f = path_fn(idx_bp128_path());
        atomic_store_explicit(&fn, f, memory_order_relaxed);
    }
    return bp_decode_with(f, in, avail, n, out);
}

/* Not static: codec.c registers it. */
extern const idx_codec_t idx_codec_bp128;
const idx_codec_t idx_codec_bp128 = {
    .name = "bp128",
    .max_bytes = bp_max_bytes,
    .encode = bp_encode,
    .decode = bp_decode,
};
