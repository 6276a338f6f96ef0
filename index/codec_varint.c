/* codec_varint.c - LEB128: 7 bits a byte, low groups first, high bit set on
 * every byte but the last. At most 5 bytes per uint32. */
#include "codec.h"

#include <string.h>

static size_t varint_max_bytes(size_t n)
{
    return n * 5;
}

static size_t varint_encode(const uint32_t *in, size_t n, uint8_t *out)
{
    uint8_t *p = out;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = in[i];
        while (v >= 0x80) {
            *p++ = (uint8_t)(v | 0x80);
            v >>= 7;
        }
        *p++ = (uint8_t)v;
    }
    return (size_t)(p - out);
}

static size_t varint_decode(const uint8_t *in, size_t avail, size_t n, uint32_t *out)
{
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        /* Eight one-byte values at once (no high bit in a word): the usual
         * case for term frequencies and the gaps of common terms. */
        while (i + 8 <= n && at + 8 <= avail) {
            uint64_t w;
            memcpy(&w, in + at, 8);
            if (w & 0x8080808080808080ull) break;
            for (int j = 0; j < 8; j++) out[i + j] = in[at + j];
            i += 8;
            at += 8;
        }
        if (i == n) break;
        uint32_t v = 0;
        unsigned shift = 0;
        for (;;) {
            if (at >= avail) return 0;                 /* truncated */
            uint8_t b = in[at++];
            if (shift == 28 && (b & 0xF0)) return 0;   /* more than 32 bits: corrupt */
            v |= (uint32_t)(b & 0x7F) << shift;
            if (!(b & 0x80)) break;
            shift += 7;
        }
        out[i] = v;
    }
    return at;
}

/* Not static: codec.c registers it. */
extern const idx_codec_t idx_codec_varint;
const idx_codec_t idx_codec_varint = {
    .name = "varint",
    .max_bytes = varint_max_bytes,
    .encode = varint_encode,
    .decode = varint_decode,
};
