/* format.h - the on-disk layout of a Funnel index (schema version 9).
 *
 * An index directory IDXDIR holds one LMDB environment per shard:
 *
 *   IDXDIR/index.json          {"schema":8,"shards":N,"docs":D,"created":T,...} (informational)
 *   IDXDIR/shard-000/data.mdb  ... IDXDIR/shard-(N-1)/data.mdb
 *   IDXDIR/shard-NNN/checksum  "funnel-checksum 1\nxxh3-64 <16 hex>\nbytes <size>\n": the
 *                              whole data.mdb as the build sealed it (verified at open)
 *
 * A document goes to the shard its bucket  xxh64(id, seed 0) % 4096  is mapped to
 * (buckets.h; meta and index.json "buckets" record the map, schema 9; a fresh
 * build maps contiguous ranges, bucket b to shard b * N / 4096) and gets the next shard-local
 * document number (0, 1, 2, ... in corpus order). Every shard stores the GLOBAL
 * statistics (document count, per-term document frequency, average field
 * lengths) so that a BM25 score does not depend on how the corpus was split.
 *
 * Integrity (schema 2): every value a query reads carries a 32-bit checksum,
 * idx_sum32() = low 32 bits of XXH3-64 seeded with what the value is stored
 * under, so damage to a value, or a value found under the wrong key, is
 * detected on read. The data file as a whole is checked against `checksum`
 * when a shard opens it.
 *
 * Named databases (keys fixed-width big-endian where numeric, so LMDB's byte
 * order is numeric order; values little-endian):
 *
 *   meta      text key -> text value (decimal numbers, %.17g doubles):
 *               schema, shard, shards, docs (this shard), docs_total (global),
 *               sumlen_title, sumlen_body (global token counts),
 *               avglen_title, avglen_body (global), terms (this shard's vocabulary),
 *               codec ("bp128"; codec.h), block_size (128), analyzer (idx_analyzer_describe),
 *               blockmax_bm25 ("k1 b_title b_body w_title w_body", %.17g each: the
 *               BM25F settings the skips' block maxima were computed with),
 *               created (unix seconds), vec_dim (0: no vectors), vec_metric ("l2",
 *               "dot", "cosine"), vec_count (this shard's vectors), ann_M and ann_efc
 *               (the graph's settings), with a content filter (schema 8):
 *               filter_model (the model file's base name), filter_threshold and
 *               filter_strict (%.17g; absent: the index has no filter scores), and
 *               meta_sum: 8 hex digits, idx_meta_sum over every other entry
 *   terms     term bytes (analyzed, <= 255 bytes) -> idx_term_rec (36 bytes):
 *               u32le termid, df, gdf, nblocks, u64le cf_title, cf_body (GLOBAL
 *               collection frequencies: the term's occurrences in that field over
 *               the whole index), u32le sum = idx_sum32(32 bytes, XXH3-64(term))
 *   postings  u32be termid | u32be block number -> posting block (below)
 *   docs      u32be doc -> the fields responses need, a binary record:
 *               u32le sum | u32le id_len | u32le title_len | u32le url_len | id | title | url
 *               sum = idx_sum32(the bytes after it, doc)
 *   source    u32be doc -> u32le sum | u32le raw_len | zstd frame (schema 5):
 *               the document's JSON object, compact (all corpus fields, unknown
 *               ones included), raw_len bytes (1 .. IDX_MAX_SOURCE_BYTES),
 *               compressed as one zstd frame (level IDX_SOURCE_ZSTD_LEVEL, no
 *               dictionary; the frame records its content size, = raw_len, and
 *               carries no checksum of its own); sum = idx_sum32(the bytes after
 *               it, doc). A reader checks the sum, then raw_len against the cap,
 *               the frame's content size and its length against the value's,
 *               and that it decompresses to exactly raw_len bytes.
 *   positions u32be termid | u32be block number -> the block's term positions (below)
 *   skips     u32be termid -> the term's skip data, for terms of 2 blocks or more:
 *               u32le sum | u32le nblocks | u32le last[nblocks] | f32le max[nblocks]
 *               last[b] = the last document of posting block b; max[b] = the largest
 *               BM25F term-frequency part, tfn (k1 + 1) / (k1 + tfn), over the block's
 *               postings at the blockmax_bm25 settings, rounded up to a float (a
 *               posting's share is qw idf times it: the block-max bound of pruning);
 *               sum = idx_sum32(the bytes after it, termid)
 *   vocab     u32be termid -> u32le sum | u32le gdf | the term's bytes (schema 6):
 *               the vocabulary by id, for readers of term vectors; gdf as in
 *               the term's `terms` record; sum = idx_sum32(the bytes after it,
 *               termid). One entry per term id, 0 .. terms-1.
 *   tvec      u32be doc -> u32le sum | u32le nterms | nterms entries (schema 6):
 *               the document's term vector (its distinct analyzed terms with
 *               their frequencies: the postings of the document, transposed),
 *               ascending by termid, each entry LEB128 varints:
 *                 termid gap (the first entry's termid itself, then termid -
 *                 previous termid, >= 1), code = tf_body * 2 + (tf_title > 0),
 *                 then tf_title only if tf_title > 0;
 *               tf_title + tf_body >= 1; sum = idx_sum32(the bytes after it, doc).
 *               The feedback stage reads it instead of re-analyzing the source,
 *               and rescores a few documents from it instead of seeking postings.
 *   vectors   "f32" -> u32le sum | u32le count | u32le dim | u32le 0 | f32le[count x dim]
 *               (schema 6; only in an index with vectors, meta vec_dim > 0): the
 *               shard's document vectors ("embedding"), row r the vector of
 *               document vec_docs[r] (norms), as given (cosine ones are not
 *               normalised here; the graph keeps their norms); one value, so
 *               LMDB keeps the rows contiguous in its overflow pages and a
 *               reader uses them in place; sum = idx_sum32(the bytes after it, dim).
 *   attrs     "vertical" | "lang" | "labels" -> u32le sum | u32le nvals | u32le nentries |
 *             u32le dict_bytes | nvals x (u16le len 1..511, bytes) ascending (memcmp, shorter
 *             first) | when nentries > 0: u32le off[docs + 1] | u32le code[nentries], each
 *             document's codes ascending (schema 7; attrs.h); sum = idx_sum32(the bytes after
 *             it, XXH3-64(name))
 *   docsig    u32be doc -> u32le sum | f32le filter_score | IDX_DUPSIG_BYTES dupsig
 *               (schema 8; IDX_DOCSIG_BYTES in all): the content filter's
 *               probability (NaN: built without a filter model) and the
 *               near-duplicate signature (dupsig.h; all zero: no words);
 *               sum = idx_sum32(the bytes after it, doc). One per document.
 *   ids       external id bytes -> u32le doc | u32le sum = idx_sum32(4 doc bytes, XXH3-64(id))
 *   norms     "title" -> u32le sum | u32le[docs] token counts; "body" -> same;
 *             "keys" -> u32le sum | u64le[docs] xxh64(id) (the shard-independent tie-break);
 *             static signals of the documents (features.h):
 *             "popularity" -> u32le sum | f32le[docs] (the corpus field, >= 0; 0 if absent),
 *             "published_at" -> u32le sum | i64le[docs] unix seconds (IDX_NO_TIME if absent),
 *             "url_depth" -> u32le sum | u16le[docs] path segments of the url (idx_url_depth);
 *             with vectors: "vec_rows" -> u32le sum | u32le[docs] the row of each
 *             document's vector (IDX_NO_VECTOR: none), "vec_docs" -> u32le sum |
 *             u32le[vec_count] the document of each row, ascending;
 *             sum = idx_sum32(array, 0)
 *
 * SHARDDIR/ann.hnsw (schema 6, when the shard has vectors): the HNSW graph over
 * the rows of `vectors` (index/ann/hnsw.h: its own format and checksum; the
 * vectors are not repeated in it), written after data.mdb is sealed.
 *
 * Term ids are the rank of the term in this shard's sorted vocabulary, so
 * postings keys are written in order (MDB_APPEND).
 *
 * Posting block value: u32le sum | u32le n | u32le first_doc | u32le last_doc
 * (IDX_BLOCK_HDR bytes), then three arrays, each encoded with the index codec
 * (codec.h) for n values, back to back:
 *   doc gaps   (docs[0] - first_doc = 0, then docs[i] - docs[i-1])
 *   tf_title   (term frequency in the title field; may be 0)
 *   tf_body    (term frequency in the body field; may be 0; tf_title+tf_body >= 1)
 * sum = idx_sum32(the bytes after it, termid << 32 | block).
 * A term with df postings has ceil(df / block_size) blocks, all full but the last.
 *
 * Positions value (same key as its posting block): u32le sum | u32le count,
 * then `count` values coded with the index codec in chunks of at most
 * block_size values: for each posting of the block in order, its tf_title
 * title positions then its tf_body body positions, each field's as gaps from
 * the previous position of that field (the first from 0), so count = sum of
 * (tf_title + tf_body) over the block. A position counts every token of the
 * field, stopwords included, from 0. sum = idx_sum32(the bytes after it,
 * termid << 32 | block).
 */
#ifndef FUNNEL_INDEX_FORMAT_H
#define FUNNEL_INDEX_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

#include "dupsig.h"

#define IDX_SCHEMA_VERSION 9
#define IDX_MAX_TERM_BYTES 255
#define IDX_MAX_DBS 16
/* Address space, not disk: LMDB maps this much but only writes what it uses. */
#define IDX_MAP_SIZE (1ULL << 40)

#define IDX_DB_META "meta"
#define IDX_DB_TERMS "terms"
#define IDX_DB_POSTINGS "postings"
#define IDX_DB_DOCS "docs"
#define IDX_DB_IDS "ids"
#define IDX_DB_NORMS "norms"
#define IDX_DB_SOURCE "source"
#define IDX_DB_POSITIONS "positions"
#define IDX_DB_SKIPS "skips"
#define IDX_DB_VOCAB "vocab"
#define IDX_DB_TVEC "tvec"
#define IDX_DB_VECTORS "vectors"
#define IDX_DB_ATTRS "attrs"
#define IDX_DB_DOCSIG "docsig"
#define IDX_ANN_FILE "ann.hnsw"
#define IDX_VEC_HDR 16                        /* vectors: sum, count, dim, 0 */
#define IDX_NO_VECTOR UINT32_MAX              /* vec_rows of a document without one */
#define IDX_CHECKSUM_FILE "checksum"

#define IDX_TERM_REC_BYTES 36
#define IDX_POS_HDR 8
#define IDX_NO_TIME INT64_MIN     /* published_at of a document without one */
#define IDX_BLOCK_HDR 16
#define IDX_DOC_HDR 16
#define IDX_ID_REC_BYTES 8
#define IDX_VOCAB_HDR 8                       /* vocab: sum, gdf */
#define IDX_TVEC_HDR 8                        /* tvec: sum, nterms */
#define IDX_SOURCE_HDR 8                      /* source: sum, raw_len */
#define IDX_DOCSIG_BYTES (8 + IDX_DUPSIG_BYTES)  /* docsig: sum, filter score, dupsig */
#define IDX_MAX_SOURCE_BYTES (64u << 20)      /* a document's compact JSON, at most */
#define IDX_SOURCE_ZSTD_LEVEL 1                /* levels 2, 3: no smaller, slower (index-format.md) */

enum idx_field { IDX_FIELD_TITLE = 0, IDX_FIELD_BODY = 1, IDX_NFIELDS = 2 };

typedef struct idx_term_rec {
    uint32_t termid;    /* rank in this shard's sorted vocabulary */
    uint32_t df;        /* documents in THIS shard containing the term */
    uint32_t gdf;       /* documents in the WHOLE index containing the term */
    uint32_t nblocks;   /* ceil(df / block_size) */
    uint64_t gcf[2];    /* occurrences in title / body in the WHOLE index */
} idx_term_rec;         /* stored as 4 x u32le, 2 x u64le, the checksum */

typedef struct idx_block_hdr {
    uint32_t n;          /* postings in this block, 1..block_size */
    uint32_t first_doc;
    uint32_t last_doc;
} idx_block_hdr;         /* stored as 3 x u32le after the checksum */

/* ---- byte order helpers (inline defs) ---- */
static inline void idx_put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline uint32_t idx_get_u32be(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void idx_put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t idx_get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline void idx_put_u64le(uint8_t *p, uint64_t v)
{
    idx_put_u32le(p, (uint32_t)v); idx_put_u32le(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t idx_get_u64le(const uint8_t *p)
{
    return (uint64_t)idx_get_u32le(p) | ((uint64_t)idx_get_u32le(p + 4) << 32);
}

/* The checksum of every stored value (see above). */
static inline uint32_t idx_sum32(const void *p, size_t n, uint64_t seed)
{
    return (uint32_t)XXH3_64bits_withSeed(p, n, seed);
}

/* Path segments of a url: "http://x.org/a/b/c.html?q" -> 3, "x.org" -> 0,
 * "/a/" -> 1. Empty segments do not count; the query and fragment are not
 * part of the path. */
static inline uint16_t idx_url_depth(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    if (p == url && *p != '/') {         /* no scheme: "host/path" or "path" */
        const char *slash = strchr(p, '/');
        if (!slash) return 0;
        p = slash;
    } else if (p != url) {               /* skip the host */
        while (*p && *p != '/' && *p != '?' && *p != '#') p++;
    }
    unsigned depth = 0;
    int in_seg = 0;
    for (; *p && *p != '?' && *p != '#'; p++) {
        if (*p == '/') in_seg = 0;
        else if (!in_seg) { in_seg = 1; depth++; }
    }
    return (uint16_t)(depth > 65535 ? 65535 : depth);
}

/* Seed for values whose key is text (terms, ids). */
static inline uint64_t idx_key_seed(const void *key, size_t n)
{
    return XXH3_64bits(key, n);
}

#endif
