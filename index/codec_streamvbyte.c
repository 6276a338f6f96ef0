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
 * SVB_SLACK bytes of avail follow it. */
#include "codec.h"

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

static size_t svb_decode(const uint8_t *in, size_t avail, size_t n, uint32_t *out)
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
    if (total > avail) return 0;
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

/* Not static: codec.c registers it. */
extern const idx_codec_t idx_codec_streamvbyte;
const idx_codec_t idx_codec_streamvbyte = {
    .name = "streamvbyte",
    .max_bytes = svb_max_bytes,
    .encode = svb_encode,
    .decode = svb_decode,
};
