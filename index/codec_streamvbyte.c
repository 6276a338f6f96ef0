/* codec_streamvbyte.c - Stream VByte (Lemire, Kurz, Rupp 2017) through
 * libstreamvbyte: (n+3)/4 control bytes, four 2-bit codes each (code c = c+1
 * data bytes, low code first, unused codes of the last byte 0), then the
 * values' little-endian bytes. Same sizes as varint's up to 2^21, but control
 * and data are apart, so a SIMD decoder does four values with one shuffle.
 *
 * The library's decoder trusts its input: it reads as many data bytes as the
 * control bytes say, and its x86 SIMD loop loads 16 bytes per group of four
 * values however short that group is (up to 12 bytes past the data's end).
 * Values live in an LMDB mmap and a damaged one must fail cleanly, so decode
 * sizes the encoding from the control bytes first, refuses it if it does not
 * fit in avail, and decodes from a padded stack copy when fewer than
 * SVB_SLACK bytes of avail follow it.
 *
 * Debian builds the library without its SIMD decoder, so on x86-64 CPUs with
 * SSSE3 decode uses our own (svb_unpack_ssse3: pshufb, the same format and
 * the same values), chosen once at run time (codec_simd.h); the library's
 * decoder is the fallback and the reference (FUNNEL_CODEC_SCALAR=1). */
#include "codec.h"
#include "codec_simd.h"

#include <stdatomic.h>
#include <string.h>
#include <streamvbyte.h>

/* Bytes a decoder (or an encoder's store) may touch past the encoding: one
 * 16-byte SIMD load/store. */
#define SVB_SLACK 16

/* Data bytes of a control byte: 4 codes, each code + 1 bytes. */
#define SVB_L(k) (4 + ((k) & 3) + (((k) >> 2) & 3) + (((k) >> 4) & 3) + (((k) >> 6) & 3))
#define SVB_L4(k) SVB_L(k), SVB_L((k) + 1), SVB_L((k) + 2), SVB_L((k) + 3)
#define SVB_L16(k) SVB_L4(k), SVB_L4((k) + 4), SVB_L4((k) + 8), SVB_L4((k) + 12)
#define SVB_L64(k) SVB_L16(k), SVB_L16((k) + 16), SVB_L16((k) + 32), SVB_L16((k) + 48)
static const uint8_t svb_len[256] = { SVB_L64(0), SVB_L64(64), SVB_L64(128), SVB_L64(192) };

static size_t svb_max_bytes(size_t n)
{
    /* The SIMD encoder of some library builds stores 16 bytes per group of
     * four values: the slack keeps that inside the caller's buffer. */
    return (n + 3) / 4 + 4 * n + SVB_SLACK;
}

static size_t svb_encode(const uint32_t *in, size_t n, uint8_t *out)
{
    if (n == 0) return 0;
    return streamvbyte_encode(in, (uint32_t)n, out);
}

/* The encoding's size from its control bytes (0: truncated or corrupt),
 * before any data byte is read. */
static size_t svb_size(const uint8_t *in, size_t avail, size_t n)
{
    if (n == 0) return 0;
    /* n is a block's count, at most IDX_BLOCK_SIZE (codec.h): the stack
     * copy below is sized for that. */
    if (n > IDX_BLOCK_SIZE) return 0;
    size_t keys = (n + 3) / 4;
    if (avail < keys) return 0;
    size_t data = 0;
    for (size_t i = 0; i + 1 < keys; i++) data += svb_len[in[i]];
    /* The last control byte: codes past n must be 0 (the encoder's), and
     * each of those counted one byte in the table. */
    unsigned used = (unsigned)(n - 4 * (keys - 1)), last = in[keys - 1];
    if (used < 4 && (last >> (2 * used))) return 0;
    data += svb_len[last] - (4 - used);
    size_t total = keys + data;
    return total <= avail ? total : 0;
}

/* The library's decoder (scalar in Debian's build). */
static size_t svb_decode_lib(const uint8_t *in, size_t avail, size_t n, uint32_t *out)
{
    size_t total = svb_size(in, avail, n);
    if (!total) return 0;
    if (avail - total >= SVB_SLACK) {
        streamvbyte_decode(in, out, (uint32_t)n);
        return total;
    }
    uint8_t pad[(IDX_BLOCK_SIZE + 3) / 4 + 4 * IDX_BLOCK_SIZE + SVB_SLACK];
    memcpy(pad, in, total);
    memset(pad + total, 0, SVB_SLACK);
    streamvbyte_decode(pad, out, (uint32_t)n);
    return total;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* pshufb masks: for control byte k, value i's code c takes c+1 data bytes
 * from offset o (the bytes of the values before it) into its 4 output
 * bytes; 0xFF (high bit set) zeroes the rest. */
#define SVB_C(k, i) (((k) >> (2 * (i))) & 3)
#define SVB_O(k, i) ((i) == 0 ? 0 : (i) == 1 ? SVB_C(k, 0) + 1 \
                     : (i) == 2 ? SVB_C(k, 0) + SVB_C(k, 1) + 2 \
                     : SVB_C(k, 0) + SVB_C(k, 1) + SVB_C(k, 2) + 3)
#define SVB_B(k, i, p) (uint8_t)((p) <= SVB_C(k, i) ? SVB_O(k, i) + (p) : 0xFF)
#define SVB_V(k, i) SVB_B(k, i, 0), SVB_B(k, i, 1), SVB_B(k, i, 2), SVB_B(k, i, 3)
#define SVB_S(k) { SVB_V(k, 0), SVB_V(k, 1), SVB_V(k, 2), SVB_V(k, 3) }
#define SVB_S4(k) SVB_S(k), SVB_S((k) + 1), SVB_S((k) + 2), SVB_S((k) + 3)
#define SVB_S16(k) SVB_S4(k), SVB_S4((k) + 4), SVB_S4((k) + 8), SVB_S4((k) + 12)
#define SVB_S64(k) SVB_S16(k), SVB_S16((k) + 16), SVB_S16((k) + 32), SVB_S16((k) + 48)
static const uint8_t svb_shuf[256][16] __attribute__((aligned(16))) = {
    SVB_S64(0), SVB_S64(64), SVB_S64(128), SVB_S64(192)
};

/* Our own SSSE3 decoder, the library's format: one 16-byte load, one
 * pshufb and one store per four values, while 16 bytes of avail remain
 * from the group's data; the rest (and a last group of fewer than four)
 * byte by byte. The size is checked first, so these never read past it.
 * noipa: see search.c's share_scalar. */
__attribute__((target("ssse3"), noipa))
static void svb_unpack_ssse3(const uint8_t *in, size_t avail, size_t n, uint32_t *out)
{
    const uint8_t *keys = in, *data = in + (n + 3) / 4, *end = in + avail;
    size_t i = 0;
    for (; i + 4 <= n && end - data >= 16; i += 4) {
        unsigned k = keys[i / 4];
        __m128i d = _mm_loadu_si128((const __m128i *)data);
        __m128i m = _mm_load_si128((const __m128i *)svb_shuf[k]);
        _mm_storeu_si128((__m128i *)(out + i), _mm_shuffle_epi8(d, m));
        data += svb_len[k];
    }
    for (; i < n; i++) {
        unsigned c = (keys[i / 4] >> (2 * (i % 4))) & 3;
        uint32_t v = 0;
        for (unsigned b = 0; b <= c; b++) v |= (uint32_t)data[b] << (8 * b);
        data += c + 1;
        out[i] = v;
    }
}

static size_t svb_decode_ssse3(const uint8_t *in, size_t avail, size_t n, uint32_t *out)
{
    size_t total = svb_size(in, avail, n);
    if (total) svb_unpack_ssse3(in, avail, n, out);
    return total;
}
#endif

typedef size_t decode_fn(const uint8_t *in, size_t avail, size_t n, uint32_t *out);

static decode_fn *path_fn(int path)
{
    if (!idx_codec_path_ok(path)) return NULL;
    switch (path) {
    case IDX_PATH_SCALAR: return svb_decode_lib;
#if defined(__x86_64__) && defined(__GNUC__)
    case IDX_PATH_SSSE3: return svb_decode_ssse3;
#endif
    default: return NULL;
    }
}

static int has_path(int path) { return path_fn(path) != NULL; }

int idx_svb_path(void)
{
    static _Atomic int chosen = -1;
    return idx_codec_choose_path(&chosen, has_path);
}

size_t idx_svb_decode_path(int path, const uint8_t *in, size_t avail, size_t n, uint32_t *out)
{
    decode_fn *f = path_fn(path);
    return f ? f(in, avail, n, out) : 0;
}

static size_t svb_decode(const uint8_t *in, size_t avail, size_t n, uint32_t *out)
{
    static decode_fn *_Atomic fn;
    decode_fn *f = atomic_load_explicit(&fn, memory_order_relaxed);
    if (!f) {
        f = path_fn(idx_svb_path());
        atomic_store_explicit(&fn, f, memory_order_relaxed);
    }
    return f(in, avail, n, out);
}

/* Not static: codec.c registers it. */
extern const idx_codec_t idx_codec_streamvbyte;
const idx_codec_t idx_codec_streamvbyte = {
    .name = "streamvbyte",
    .max_bytes = svb_max_bytes,
    .encode = svb_encode,
    .decode = svb_decode,
};
