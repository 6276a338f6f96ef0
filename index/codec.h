/* codec.h - the postings codec seam (after PISA's BlockCodec).
 *
 * A codec encodes one block of at most IDX_BLOCK_SIZE uint32 values (doc-id
 * gaps or term frequencies) and decodes it back. Postings blocks (format.h)
 * are made of several such encoded arrays one after another, so decode must
 * report how many bytes it consumed. Codecs are stateless and thread-safe.
 *
 * Registered codecs: "bp128" (the default: bit packing at the block's
 * largest bit width in a 4-lane SIMD layout, codec_bp128.c), "varint"
 * (LEB128) and "streamvbyte" (control bytes apart from data; Debian's
 * libstreamvbyte, with our own SSSE3 decoder). On the 1M-document corpus
 * bp128 took top-10 selection from 545 to 420 us a query (docs/evaluation.md).
 * The index records its codec name in meta, and a reader refuses an index
 * whose codec it does not know.
 */
#ifndef FUNNEL_INDEX_CODEC_H
#define FUNNEL_INDEX_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define IDX_BLOCK_SIZE 128

typedef struct idx_codec {
    const char *name;
    /* Upper bound of encode()'s output for n values. */
    size_t (*max_bytes)(size_t n);
    /* Encode n values into out (at least max_bytes(n) bytes). Returns bytes written. */
    size_t (*encode)(const uint32_t *in, size_t n, uint8_t *out);
    /* Decode exactly n values from in (avail bytes readable). Returns bytes
     * consumed, or 0 if the input is truncated/corrupt (never reads past avail). */
    size_t (*decode)(const uint8_t *in, size_t avail, size_t n, uint32_t *out);
} idx_codec_t;

/* Look a codec up by name; NULL if unknown. */
const idx_codec_t *idx_codec_find(const char *name);
/* The registry, NULL-terminated (for tests that round-trip every codec). */
const idx_codec_t *const *idx_codec_all(void);

#endif
