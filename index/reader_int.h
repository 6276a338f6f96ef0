/* reader_int.h - the opened shard (idx_reader) and the decoders of every
 * stored value, shared inside index/ by search.c and verify.c.
 *
 * Every decoder checks the value's checksum (format.h) and its shape before
 * trusting a byte of it, and says what was damaged in eb. Pointers they
 * return point into LMDB's map: valid until the read transaction ends, and
 * reading them must happen inside an idx_guard (integrity.h).
 */
#ifndef FUNNEL_INDEX_READER_INT_H
#define FUNNEL_INDEX_READER_INT_H

#include <lmdb.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#include "attrs.h"
#include "codec.h"
#include "format.h"
#include "search.h"
#include "buckets.h"
#include "ann/hnsw.h"

struct idx_reader {
    char dir[4096];
    MDB_env *env;
    MDB_dbi meta, terms, postings, docs, ids, norms, source, positions, skips, vocab, tvec, vectors, attrsdb,
        docsig;
    idx_bm25_params bm;           /* the settings of the skips' block maxima (meta blockmax_bm25) */
    idx_index_info info;
    idx_bucket_map bmap;          /* meta "buckets" (buckets.h): which shard holds a document id */
    const idx_codec_t *codec;
    uint32_t block_size;
    uint32_t *len[IDX_NFIELDS];   /* copies of the norms (checked at open) */
    uint64_t *keys;
    float *pop;                   /* static signals (format.h "norms"), checked at open */
    int64_t *pub;
    uint16_t *urld;
    idx_attrs attrs;              /* vertical, lang, labels and the sorted orders (attrs.h), checked at open */
    uint64_t sumlen[IDX_NFIELDS]; /* global token counts per field (meta) */
    int fd;                       /* data.mdb, LMDB's descriptor */
    off_t size;                   /* data.mdb as opened ... */
    struct timespec mtime;        /* ... and its modification time */
    const char *map;              /* LMDB's map of data.mdb */
    size_t mapsize;
    /* Per term id: its skip data (format.h skips) decoded and checked on
     * first use (idx_term_skips) and kept while the reader is open: the
     * last document of each posting block, then each block's maximum as a
     * float; 8 bytes a block of the shard at most. Published with an atomic
     * swap, so searchers on any thread share them. */
    _Atomic(uint32_t *) *lasts;
    /* Per document: where its stored record (docs) lies in the map, once a
     * read found it: (offset + 1) << 24 | size, 0 = not yet. Saves the
     * B-tree search of every later read of the record (a funnel query reads
     * hundreds); 8 bytes a document. */
    _Atomic uint64_t *docat;
    /* The same for each document's term vector and each term id's
     * vocabulary entry (format.h tvec, vocab): 8 bytes a document and a term. */
    _Atomic uint64_t *tvat, *vocat;
    /* Vectors (format.h vectors), when info.vec_dim > 0: vec_count rows of
     * vec_dim floats in place in the map (little-endian, as the host is:
     * checked at open), the row of each document and the document of each
     * row (copies of the norms), and the shard's HNSW graph over the rows
     * (NULL if the shard has none). */
    const float *vecs;
    float *vecs_own;              /* vecs, when the value was not 4-byte aligned in the map (a small one) */
    uint32_t *vec_rows, *vec_docs;
    struct ann_hnsw *ann;
};

/* LMDB reports system errors as positive errno values. */
static inline int idx_mdb_code(int rc) { return rc > 0 ? -rc : rc; }

/* Do n bytes at p lie inside the map? A damaged page can give a value whose
 * size or place runs past the end of the file; reading it would fault
 * outside the guarded range (SIGSEGV), so decoders check this first. */
static inline int idx_in_map(const idx_reader_t *r, const void *p, size_t n)
{
    const char *c = p;
    return c >= r->map && (size_t)(c - r->map) <= r->mapsize && n <= r->mapsize - (size_t)(c - r->map);
}

/* A stored key (a term, an id: possibly damaged bytes) for a message: at
 * most 64 bytes, UTF-8 kept, anything else (and quotes) as \xHH. buf: 260
 * bytes is enough. IDX_SHOW uses a buffer of its own per use. */
const char *idx_show(const void *p, size_t n, char *buf, size_t cap);
#define IDX_SHOW(p, n) idx_show((p), (n), (char[260]){ 0 }, 260)

/* LMDB's default key order: bytes, then the shorter first. */
static inline int idx_key_cmp(const void *a, size_t al, const void *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

/* Document doc's docsig value (format.h): checksum and length checked; the
 * filter score (NaN: none) and the signature (IDX_DUPSIG_BYTES), either
 * output may be NULL. FN_ECORRUPT naming the document when damaged. */
int idx_docsig_get(const idx_reader_t *r, MDB_txn *txn, uint32_t doc, float *score, uint8_t *sig,
                   fn_errbuf *eb);
int idx_docsig_decode(uint32_t doc, const MDB_val *v, float *score, uint8_t *sig, fn_errbuf *eb);

/* Term record of `term` (len bytes). 0, FN_ENOTFOUND, FN_ECORRUPT or an LMDB code.
 * FN_ENOTFOUND is proved, not just LMDB's word: a damaged key or branch page
 * would otherwise make a present term look absent and a query silently lose
 * it (see term_absent in reader.c). */
int idx_term_get(const idx_reader_t *r, MDB_txn *txn, const char *term, size_t len,
                 idx_term_rec *out, fn_errbuf *eb);
/* Check a term record value found under `term`. */
int idx_term_decode(const idx_reader_t *r, const char *term, size_t len, const MDB_val *v,
                    idx_term_rec *out, fn_errbuf *eb);

/* Posting block `block` of term `termid`: n (1..block_size) absolute doc
 * numbers (ascending, < docs) and both fields' frequencies. */
int idx_block_get(const idx_reader_t *r, MDB_txn *txn, uint32_t termid, uint32_t block,
                  uint32_t *docs, uint32_t *tf_title, uint32_t *tf_body, uint32_t *n,
                  fn_errbuf *eb);
int idx_block_decode(const idx_reader_t *r, uint32_t termid, uint32_t block, const MDB_val *v,
                     uint32_t *docs, uint32_t *tf_title, uint32_t *tf_body, uint32_t *n,
                     fn_errbuf *eb);

/* idx_block_get through an LMDB cursor on the postings: with `next` the
 * cursor stands on (termid, block - 1) and steps to the next key instead of
 * searching the B-tree from its root (the blocks of a term are adjacent
 * keys). The same checks and errors as idx_block_get. */
int idx_block_get_cur(const idx_reader_t *r, MDB_cursor *mc, int next, uint32_t termid, uint32_t block,
                      uint32_t *docs, uint32_t *tf_title, uint32_t *tf_body, uint32_t *n, fn_errbuf *eb);

/* A posting block's first and last document, checked against the block's
 * checksum but not decoded: lets a walk skip blocks it does not need. */
int idx_block_peek(const idx_reader_t *r, MDB_txn *txn, uint32_t termid, uint32_t block,
                   uint32_t *first, uint32_t *last, fn_errbuf *eb);

/* The BM25F term-frequency part of one posting, tfn (k1 + 1) / (k1 + tfn)
 * (its share is qw idf times it), with idx_term_bm25f's operations: what
 * the skips' block maxima bound (the builder and verify compute it). */
static inline double idx_tf_part(const idx_bm25_params *p, const double avglen[IDX_NFIELDS],
                                 const uint32_t len[IDX_NFIELDS], const uint32_t tf[IDX_NFIELDS])
{
    double tfn = 0.0;
    for (int f = 0; f < IDX_NFIELDS; f++) {
        if (!tf[f]) continue;
        double norm = 1.0 - p->b[f] + p->b[f] * (double)len[f] / avglen[f];
        tfn += p->w[f] * (double)tf[f] / norm;
    }
    return tfn <= 0.0 ? 0.0 : tfn * (p->k1 + 1.0) / (p->k1 + tfn);
}

/* Grow *p (*cap elements of elem bytes) to hold at least need, doubling;
 * 0 or -ENOMEM (*p unchanged). The index's one growable-array helper. */
int idx_grow(void **p, size_t *cap, size_t need, size_t elem);

/* A term of one block has no skip data. */
#define IDX_LASTS_MIN_BLOCKS 2

/* The term's skip data (format.h skips): *lasts = the last document of each
 * of its nblocks posting blocks (ascending), *bmax (may be NULL) = each
 * block's largest BM25F term-frequency part at the settings r->bm; both
 * NULL for a term of one block. The first call for a term reads and checks
 * its skips value (checksum, size, order, range) and keeps the arrays for
 * the reader's life; later calls return them. A seek then finds the block
 * holding a document by binary search and reads only the blocks it needs;
 * block-max pruning bounds a block's scores without reading it. Damage
 * codes (a missing or damaged value: FN_ECORRUPT); -ENOMEM. */
int idx_term_skips(const idx_reader_t *r, MDB_txn *txn, uint32_t termid, uint32_t nblocks,
                   const uint32_t **lasts, const float **bmax, fn_errbuf *eb);

static inline int idx_term_lasts(const idx_reader_t *r, MDB_txn *txn, uint32_t termid, uint32_t nblocks,
                                 const uint32_t **lasts, fn_errbuf *eb)
{
    return idx_term_skips(r, txn, termid, nblocks, lasts, NULL, eb);
}

/* The first of lasts[from, n) that is >= d (n when none). */
static inline uint32_t idx_lasts_find(const uint32_t *lasts, uint32_t from, uint32_t n, uint32_t d)
{
    while (from < n) {
        uint32_t mid = from + (n - from) / 2;
        if (lasts[mid] < d) from = mid + 1;
        else n = mid;
    }
    return from;
}

/* The positions of posting block (termid, block) whose n postings have the
 * given frequencies: absolute positions into *pos (grown as needed; caller
 * frees), posting by posting, each its title positions then its body
 * positions, ascending within each field. */
int idx_positions_get(const idx_reader_t *r, MDB_txn *txn, uint32_t termid, uint32_t block,
                      const uint32_t *tf_title, const uint32_t *tf_body, uint32_t n,
                      uint32_t **pos, size_t *cap, fn_errbuf *eb);

/* The positions value of (termid, block), checked against its checksum,
 * not decoded: *data and *size are the coded values after the header
 * (pointing into the map), *count how many values they hold. For readers of
 * a few postings' positions (idx_cand_positions in search.c). */
int idx_positions_raw(const idx_reader_t *r, MDB_txn *txn, uint32_t termid, uint32_t block,
                      const uint8_t **data, size_t *size, uint32_t *count, fn_errbuf *eb);

/* A document's term vector (format.h tvec), decoded: n entries ascending by
 * termid, tf[e * 2 + field]. The arrays are the caller's (grown as needed,
 * reused document after document; idx_tvec_free). */
typedef struct idx_tvec {
    uint32_t n;
    uint32_t *termid;
    uint32_t *tf;
    size_t idcap, tfcap;
} idx_tvec;
void idx_tvec_free(idx_tvec *tv);

/* The term vector of doc into *tv, its checksum, coding, order and ranges
 * checked (a damaged value: FN_ECORRUPT "term vector of doc N: ..."); -ENOMEM. */
int idx_tvec_get(const idx_reader_t *r, MDB_txn *txn, uint32_t doc, idx_tvec *tv, fn_errbuf *eb);

/* The term of termid (format.h vocab): *term points into the map (valid for
 * the transaction; not NUL-terminated), *len bytes; *gdf its global df.
 * FN_ECORRUPT for a missing or damaged value. */
int idx_vocab_get(const idx_reader_t *r, MDB_txn *txn, uint32_t termid, const char **term, size_t *len,
                  uint32_t *gdf, fn_errbuf *eb);

/* The stored record of doc (id, title, url; not NUL-terminated). */
typedef struct idx_doc_rec {
    const char *id, *title, *url;
    uint32_t id_len, title_len, url_len;
} idx_doc_rec;
int idx_doc_get(const idx_reader_t *r, MDB_txn *txn, uint32_t doc, idx_doc_rec *out, fn_errbuf *eb);
int idx_doc_decode(uint32_t doc, const MDB_val *v, idx_doc_rec *out, fn_errbuf *eb);

/* What idx_source_get decompresses with, kept by its caller to be reused
 * document after document (a searcher's, a verify walk's): a zstd
 * decompression context (created on first use) and the caller-owned buffer
 * the JSON is decompressed into. Zero-initialise; idx_srcbuf_free. Not
 * shared between threads. */
typedef struct idx_srcbuf {
    ZSTD_DCtx *dctx;
    char *buf;
    size_t cap;
} idx_srcbuf;
void idx_srcbuf_free(idx_srcbuf *sb);

/* The JSON source of doc (format.h: source), its checksum checked, then
 * decompressed into sb->buf: *json = sb->buf, *len bytes, NUL-terminated
 * (valid until the next call with sb). A damaged value - raw_len over
 * IDX_MAX_SOURCE_BYTES or not the frame's content size, a frame that is not
 * exactly the value's rest or does not decompress to exactly raw_len bytes -
 * is FN_ECORRUPT ("source of doc N: ..."), before any allocation it asks for. */
int idx_source_get(const idx_reader_t *r, MDB_txn *txn, uint32_t doc, idx_srcbuf *sb, const char **json,
                   size_t *len, fn_errbuf *eb);

/* Doc number of external id; 0, FN_ENOTFOUND, FN_ECORRUPT or an LMDB code. */
int idx_id_get(const idx_reader_t *r, MDB_txn *txn, const char *id, size_t len, uint32_t *doc,
               fn_errbuf *eb);
int idx_id_decode(const idx_reader_t *r, const char *id, size_t len, const MDB_val *v,
                  uint32_t *doc, fn_errbuf *eb);

#endif
