/* reader.c - opening a shard read-only and decoding its stored values
 * (search.h, reader_int.h).
 *
 * Opening proves the file is what the build wrote before LMDB maps it: the
 * whole data.mdb is hashed with pread and compared with SHARDDIR/checksum
 * (unless IDX_OPEN_QUICK), then LMDB's own metadata is checked against the
 * file size (a truncated file would otherwise fault on first use), then the
 * meta entries and the norms arrays are checked against their checksums.
 * The norms (16 bytes a document) are copied out of the map so they outlive
 * the open transaction; everything else is read inside a query's read
 * transaction and its own guard.
 */
#include "reader_int.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utf8proc.h>

#include "integrity.h"

/* ---- decoders ---- */

const char *idx_show(const void *p, size_t n, char *buf, size_t cap)
{
    const uint8_t *s = p;
    size_t o = 0, i = 0, lim = n > 64 ? 64 : n;
    while (i < lim && o + 5 < cap) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate(s + i, (utf8proc_ssize_t)(lim - i), &cp);
        if (l > 0 && cp >= 0x20 && cp != 0x7f && cp != '"' && cp != '\\' && o + (size_t)l < cap) {
            memcpy(buf + o, s + i, (size_t)l);
            o += (size_t)l;
            i += (size_t)l;
        } else {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", s[i]);
            i++;
        }
    }
    if (n > lim && o + 4 < cap) o += (size_t)snprintf(buf + o, cap - o, "...");
    buf[o < cap ? o : cap - 1] = '\0';
    return buf;
}

int idx_term_decode(const idx_reader_t *r, const char *term, size_t len, const MDB_val *v,
                    idx_term_rec *out, fn_errbuf *eb)
{
    if (v->mv_size != IDX_TERM_REC_BYTES)
        return fn_seterr(eb, FN_ECORRUPT, "term \"%s\": record of %zu bytes, expected %d",
                         IDX_SHOW(term, len), v->mv_size, IDX_TERM_REC_BYTES);
    const uint8_t *p = v->mv_data;
    if (r && !idx_in_map(r, p, v->mv_size))
        return fn_seterr(eb, FN_ECORRUPT, "term \"%s\": record lies outside the file: a page is damaged",
                         IDX_SHOW(term, len));
    if (idx_get_u32le(p + 32) != idx_sum32(p, 32, idx_key_seed(term, len)))
        return fn_seterr(eb, FN_ECORRUPT, "term \"%s\": record checksum mismatch",
                         IDX_SHOW(term, len));
    out->termid = idx_get_u32le(p);
    out->df = idx_get_u32le(p + 4);
    out->gdf = idx_get_u32le(p + 8);
    out->nblocks = idx_get_u32le(p + 12);
    out->gcf[0] = idx_get_u64le(p + 16);
    out->gcf[1] = idx_get_u64le(p + 24);
    uint64_t need = r ? ((uint64_t)out->df + r->block_size - 1) / r->block_size : out->nblocks;
    if (out->gdf == 0 || out->gdf < out->df || out->nblocks != need ||
        out->gcf[0] + out->gcf[1] < out->gdf ||
        (r && (out->df > r->info.docs || out->termid >= r->info.terms)))
        return fn_seterr(eb, FN_ECORRUPT, "term \"%s\": inconsistent record (df %u, gdf %u, blocks %u)",
                         IDX_SHOW(term, len), out->df, out->gdf, out->nblocks);
    return 0;
}

/* mdb_get did not find `term`. Term ids are ranks in key order, so the term
 * is really absent only if the records just below and just above it (each
 * proved intact by its checksum, which binds it to its key) have consecutive
 * ids, or the term sorts before the first or after the last one. A damaged
 * key or branch page that hid a present term fails this. */
static int term_absent(const idx_reader_t *r, MDB_txn *txn, const char *term, size_t len, fn_errbuf *eb)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, r->terms, &c);
    if (rc) return fn_seterr(eb, idx_mdb_code(rc), "terms: %s", mdb_strerror(rc));
    MDB_val k = { len, (void *)term }, v;
    idx_term_rec prev = { 0 }, next = { 0 };
    int has_prev = 0, has_next = 0, order_ok = 1;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (rc == 0) {
        has_next = 1;
        if (!idx_in_map(r, k.mv_data, k.mv_size)) goto damaged;
        order_ok = idx_key_cmp(k.mv_data, k.mv_size, term, len) > 0;
        if ((rc = idx_term_decode(r, k.mv_data, k.mv_size, &v, &next, eb))) goto out;
        rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
    } else if (rc == MDB_NOTFOUND) {
        rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    }
    if (rc == 0) {
        has_prev = 1;
        if (!idx_in_map(r, k.mv_data, k.mv_size)) goto damaged;
        order_ok &= idx_key_cmp(k.mv_data, k.mv_size, term, len) < 0;
        if ((rc = idx_term_decode(r, k.mv_data, k.mv_size, &v, &prev, eb))) goto out;
    } else if (rc != MDB_NOTFOUND) {
        rc = fn_seterr(eb, idx_mdb_code(rc), "terms: %s", mdb_strerror(rc));
        goto out;
    }
    int ok = has_prev ? (has_next ? prev.termid + 1 == next.termid : prev.termid + 1 == r->info.terms)
                      : (has_next ? next.termid == 0 : r->info.terms == 0);
    if (ok && order_ok) {
        rc = FN_ENOTFOUND;
        goto out;
    }
damaged:
    rc = fn_seterr(eb, FN_ECORRUPT, "term \"%s\": not found, but the terms around it do not prove "
                   "it absent: the terms B-tree is damaged", IDX_SHOW(term, len));
out:
    mdb_cursor_close(c);
    return rc;
}

int idx_term_get(const idx_reader_t *r, MDB_txn *txn, const char *term, size_t len,
                 idx_term_rec *out, fn_errbuf *eb)
{
    MDB_val k = { len, (void *)term }, v;
    int rc = mdb_get(txn, r->terms, &k, &v);
    if (rc == MDB_NOTFOUND) return term_absent(r, txn, term, len, eb);
    if (rc) return fn_seterr(eb, idx_mdb_code(rc), "terms: %s", mdb_strerror(rc));
    return idx_term_decode(r, term, len, &v, out, eb);
}

int idx_block_decode(const idx_reader_t *r, uint32_t termid, uint32_t block, const MDB_val *v,
                     uint32_t *docs, uint32_t *tf_title, uint32_t *tf_body, uint32_t *n_out,
                     fn_errbuf *eb)
{
    const uint8_t *p = v->mv_data;
    if (!idx_in_map(r, p, v->mv_size))
        return fn_seterr(eb, FN_ECORRUPT, "postings of term id %u, block %u: value lies outside the "
                         "file: a page is damaged", termid, block);
    if (v->mv_size < IDX_BLOCK_HDR ||
        idx_get_u32le(p) != idx_sum32(p + 4, v->mv_size - 4, (uint64_t)termid << 32 | block))
        return fn_seterr(eb, FN_ECORRUPT, "postings of term id %u, block %u: checksum mismatch",
                         termid, block);
    uint32_t n = idx_get_u32le(p + 4), first = idx_get_u32le(p + 8), last = idx_get_u32le(p + 12);
    if (n == 0 || n > r->block_size)
        return fn_seterr(eb, FN_ECORRUPT, "postings of term id %u, block %u: %u postings", termid, block, n);
    size_t off = IDX_BLOCK_HDR, used;
    uint32_t *dst[3] = { docs, tf_title, tf_body };
    for (int a = 0; a < 3; a++) {
        used = r->codec->decode(p + off, v->mv_size - off, n, dst[a]);
        if (!used)
            return fn_seterr(eb, FN_ECORRUPT, "postings of term id %u, block %u: cannot decode", termid, block);
        off += used;
    }
    /* gaps: 0 first, then >= 1; every posting has a term frequency */
    uint64_t d = first;
    int bad = docs[0] != 0;
    for (uint32_t i = 0; i < n; i++) {
        bad |= i && docs[i] == 0;
        d += docs[i];
        bad |= (uint64_t)tf_title[i] + tf_body[i] == 0;
        docs[i] = (uint32_t)d;
    }
    if (bad || d != last || last >= r->info.docs)
        return fn_seterr(eb, FN_ECORRUPT, "postings of term id %u, block %u: bad document numbers",
                         termid, block);
    *n_out = n;
    return 0;
}

int idx_block_get(const idx_reader_t *r, MDB_txn *txn, uint32_t termid, uint32_t block,
                  uint32_t *docs, uint32_t *tf_title, uint32_t *tf_body, uint32_t *n,
                  fn_errbuf *eb)
{
    uint8_t key[8];
    idx_put_u32be(key, termid);
    idx_put_u32be(key + 4, block);
    MDB_val k = { 8, key }, v;
    int rc = mdb_get(txn, r->postings, &k, &v);
    if (rc == MDB_NOTFOUND)
        return fn_seterr(eb, FN_ECORRUPT, "postings of term id %u, block %u: missing", termid, block);
    if (rc) return fn_seterr(eb, idx_mdb_code(rc), "postings: %s", mdb_strerror(rc));
    return idx_block_decode(r, termid, block, &v, docs, tf_title, tf_body, n, eb);
}

int idx_block_get_cur(const idx_reader_t *r, MDB_cursor *mc, int next, uint32_t termid, uint32_t block,
                      uint32_t *docs, uint32_t *tf_title, uint32_t *tf_body, uint32_t *n, fn_errbuf *eb)
{
    uint8_t key[8];
    idx_put_u32be(key, termid);
    idx_put_u32be(key + 4, block);
    MDB_val k = { 8, key }, v;
    int rc = MDB_NOTFOUND;
    if (next) {
        /* the next key in the B-tree, without a search from the root; any
         * other key than the one wanted (a missing block, damage) falls
         * back to the search, which says what is wrong */
        MDB_val nk;
        rc = mdb_cursor_get(mc, &nk, &v, MDB_NEXT);
        if (rc == 0 && !(nk.mv_size == 8 && idx_in_map(r, nk.mv_data, 8) && memcmp(nk.mv_data, key, 8) == 0))
            rc = MDB_NOTFOUND;
    }
    if (rc) rc = mdb_cursor_get(mc, &k, &v, MDB_SET_KEY);
    if (rc == MDB_NOTFOUND)
        return fn_seterr(eb, FN_ECORRUPT, "postings of term id %u, block %u: missing", termid, block);
    if (rc) return fn_seterr(eb, idx_mdb_code(rc), "postings: %s", mdb_strerror(rc));
    return idx_block_decode(r, termid, block, &v, docs, tf_title, tf_body, n, eb);
}

int idx_block_peek(const idx_reader_t *r, MDB_txn *txn, uint32_t termid, uint32_t block,
                   uint32_t *first, uint32_t *last, fn_errbuf *eb)
{
    uint8_t key[8];
    idx_put_u32be(key, termid);
    idx_put_u32be(key + 4, block);
    MDB_val k = { 8, key }, v;
    int rc = mdb_get(txn, r->postings, &k, &v);
    if (rc == MDB_NOTFOUND)
        return fn_seterr(eb, FN_ECORRUPT, "postings of term id %u, block %u: missing", termid, block);
    if (rc) return fn_seterr(eb, idx_mdb_code(rc), "postings: %s", mdb_strerror(rc));
    const uint8_t *p = v.mv_data;
    if (!idx_in_map(r, p, v.mv_size))
        return fn_seterr(eb, FN_ECORRUPT, "postings of term id %u, block %u: value lies outside the "
                         "file: a page is damaged", termid, block);
    if (v.mv_size < IDX_BLOCK_HDR ||
        idx_get_u32le(p) != idx_sum32(p + 4, v.mv_size - 4, (uint64_t)termid << 32 | block))
        return fn_seterr(eb, FN_ECORRUPT, "postings of term id %u, block %u: checksum mismatch",
                         termid, block);
    *first = idx_get_u32le(p + 8);
    *last = idx_get_u32le(p + 12);
    if (*first > *last || *last >= r->info.docs)
        return fn_seterr(eb, FN_ECORRUPT, "postings of term id %u, block %u: bad document numbers",
                         termid, block);
    return 0;
}

int idx_term_skips(const idx_reader_t *r, MDB_txn *txn, uint32_t termid, uint32_t nblocks,
                   const uint32_t **lasts, const float **bmax, fn_errbuf *eb)
{
    *lasts = NULL;
    if (bmax) *bmax = NULL;
    if (nblocks < IDX_LASTS_MIN_BLOCKS || !r->lasts || termid >= r->info.terms) return 0;
    uint32_t *got = atomic_load_explicit(&r->lasts[termid], memory_order_acquire);
    if (got) {
        *lasts = got;
        if (bmax) *bmax = (const float *)(got + nblocks);
        return 0;
    }
    uint8_t key[4];
    idx_put_u32be(key, termid);
    MDB_val k = { 4, key }, v;
    int rc = mdb_get(txn, r->skips, &k, &v);
    if (rc == MDB_NOTFOUND)
        return fn_seterr(eb, FN_ECORRUPT, "skips of term id %u: missing", termid);
    if (rc) return fn_seterr(eb, idx_mdb_code(rc), "skips: %s", mdb_strerror(rc));
    const uint8_t *p = v.mv_data;
    if (!idx_in_map(r, p, v.mv_size))
        return fn_seterr(eb, FN_ECORRUPT, "skips of term id %u: value lies outside the file: a page is "
                         "damaged", termid);
    if (v.mv_size != 8 + (size_t)nblocks * 8 || idx_get_u32le(p) != idx_sum32(p + 4, v.mv_size - 4, termid) ||
        idx_get_u32le(p + 4) != nblocks)
        return fn_seterr(eb, FN_ECORRUPT, "skips of term id %u: checksum or size mismatch", termid);
    /* one allocation: the lasts, then the maxima (float and uint32_t have
     * the same size and alignment here) */
    _Static_assert(sizeof(float) == sizeof(uint32_t), "float is 32 bits");
    uint32_t *a = malloc((size_t)nblocks * 8);
    if (!a) return fn_seterr(eb, -ENOMEM, "out of memory");
    float *m = (float *)(a + nblocks);
    for (uint32_t b = 0; b < nblocks; b++) {
        a[b] = idx_get_u32le(p + 8 + 4 * (size_t)b);
        uint32_t bits = idx_get_u32le(p + 8 + 4 * ((size_t)nblocks + b));
        memcpy(&m[b], &bits, 4);
        if ((b && a[b] <= a[b - 1]) || a[b] >= r->info.docs || !(m[b] >= 0.0f) || !isfinite(m[b])) {
            free(a);
            return fn_seterr(eb, FN_ECORRUPT, "skips of term id %u, block %u: out of order or out of range",
                             termid, b);
        }
    }
    uint32_t *none = NULL;
    if (!atomic_compare_exchange_strong_explicit(&r->lasts[termid], &none, a, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        free(a);   /* another searcher kept the same array first */
        a = none;
    }
    *lasts = a;
    if (bmax) *bmax = (const float *)(a + nblocks);
    return 0;
}

/* The value under u32be key in dbi, found through *at - where an earlier
 * read found it, (offset + 1) << 24 | size, 0 = not yet - when at is not
 * NULL: a sealed file's pages never move, so a value read often (a
 * document's record or term vector, a term of the vocabulary) costs one
 * B-tree search, not one a read. Returns 0, MDB_NOTFOUND, another LMDB
 * code, or -1 for a value lying outside the map (damage). The caller checks
 * the value's own checksum every time: damage after the first read is
 * still found. */
static int cached_get(const idx_reader_t *r, MDB_txn *txn, MDB_dbi dbi, _Atomic uint64_t *at, uint32_t key,
                      MDB_val *v)
{
    uint64_t a = at ? atomic_load_explicit(at, memory_order_relaxed) : 0;
    if (a) {
        v->mv_data = (void *)(r->map + (a >> 24) - 1);
        v->mv_size = a & 0xffffff;
        return 0;
    }
    uint8_t dk[4];
    idx_put_u32be(dk, key);
    MDB_val k = { 4, dk };
    int rc = mdb_get(txn, dbi, &k, v);
    if (rc) return rc;
    if (!idx_in_map(r, v->mv_data, v->mv_size)) return -1;
    uint64_t off = (uint64_t)((const char *)v->mv_data - r->map) + 1;
    if (at && v->mv_size < (1u << 24) && off < (1ull << 40))
        atomic_store_explicit(at, off << 24 | v->mv_size, memory_order_relaxed);
    return 0;
}

/* cached_get of `key` (< n) with the errors a reader reports, each naming
 * the value as "WHAT KEY" ("term vector of doc 7"): FN_ECORRUPT for a key out
 * of range, a missing value or one outside the map; LMDB's other codes. */
static int value_get(const idx_reader_t *r, MDB_txn *txn, MDB_dbi dbi, _Atomic uint64_t *cache, uint64_t n,
                     uint32_t key, const char *what, const char *dbname, MDB_val *v, fn_errbuf *eb)
{
    if (key >= n)
        return fn_seterr(eb, FN_ECORRUPT, "%s %u: out of range (%llu)", what, key, (unsigned long long)n);
    int rc = cached_get(r, txn, dbi, cache ? &cache[key] : NULL, key, v);
    if (rc == MDB_NOTFOUND) return fn_seterr(eb, FN_ECORRUPT, "%s %u: missing", what, key);
    if (rc == -1) return fn_seterr(eb, FN_ECORRUPT, "%s %u: lies outside the file: a page is damaged", what, key);
    if (rc) return fn_seterr(eb, idx_mdb_code(rc), "%s: %s", dbname, mdb_strerror(rc));
    return 0;
}

int idx_docsig_decode(uint32_t doc, const MDB_val *v, float *score, uint8_t *sig, fn_errbuf *eb)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size != IDX_DOCSIG_BYTES)
        return fn_seterr(eb, FN_ECORRUPT, "docsig of doc %u: %zu bytes, want %d", doc, v->mv_size, IDX_DOCSIG_BYTES);
    if (idx_get_u32le(p) != idx_sum32(p + 4, IDX_DOCSIG_BYTES - 4, doc))
        return fn_seterr(eb, FN_ECORRUPT, "docsig of doc %u: checksum mismatch", doc);
    float f;
    uint32_t bits = idx_get_u32le(p + 4);
    memcpy(&f, &bits, 4);
    if (!isnan(f) && !(f >= 0 && f <= 1))
        return fn_seterr(eb, FN_ECORRUPT, "docsig of doc %u: filter score %g outside [0, 1]", doc, (double)f);
    if (score) *score = f;
    if (sig) memcpy(sig, p + 8, IDX_DUPSIG_BYTES);
    return 0;
}

int idx_docsig_get(const idx_reader_t *r, MDB_txn *txn, uint32_t doc, float *score, uint8_t *sig, fn_errbuf *eb)
{
    MDB_val v;
    int rc = value_get(r, txn, r->docsig, NULL, r->info.docs, doc, "docsig of doc", "docsig", &v, eb);
    return rc ? rc : idx_docsig_decode(doc, &v, score, sig, eb);
}

void idx_tvec_free(idx_tvec *tv)
{
    free(tv->termid);
    free(tv->tf);
    memset(tv, 0, sizeof *tv);
}

/* A LEB128 varint of at most 5 bytes ending before end; 0 on overrun. */
static size_t tv_varint(const uint8_t *p, const uint8_t *end, uint32_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < 5 && p + i < end; i++) {
        x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            if (x > UINT32_MAX) return 0;
            *v = (uint32_t)x;
            return i + 1;
        }
    }
    return 0;
}

/* tv_varint without the bounds check, for a caller that knows 5 bytes are
 * there: 1 when the varint is well-formed and fits 32 bits. */
static inline int tv_fast(const uint8_t **pp, uint32_t *v)
{
    const uint8_t *p = *pp;
    uint32_t x = p[0];
    if (x < 0x80) { *pp = p + 1; *v = x; return 1; }
    x &= 0x7f;
    for (int i = 1; i < 5; i++) {
        uint32_t c = p[i];
        x |= (c & 0x7f) << (7 * i);
        if (c < 0x80) {
            *pp = p + i + 1;
            *v = x;
            return i < 4 || c < 0x10;
        }
    }
    *pp = p + 5;
    return 0;
}

int idx_tvec_get(const idx_reader_t *r, MDB_txn *txn, uint32_t doc, idx_tvec *tv, fn_errbuf *eb)
{
    MDB_val v;
    int rc = value_get(r, txn, r->tvec, r->tvat, r->info.docs, doc, "term vector of doc", "tvec", &v, eb);
    if (rc) return rc;
    const uint8_t *p = v.mv_data, *end = p + v.mv_size;
    if (v.mv_size < IDX_TVEC_HDR || idx_get_u32le(p) != idx_sum32(p + 4, v.mv_size - 4, doc))
        return fn_seterr(eb, FN_ECORRUPT, "term vector of doc %u: checksum mismatch", doc);
    uint32_t n = idx_get_u32le(p + 4);
    /* an entry is 2 bytes at least: a count the value cannot hold is damage,
     * caught before it sizes an allocation */
    if ((size_t)n > (v.mv_size - IDX_TVEC_HDR) / 2)
        return fn_seterr(eb, FN_ECORRUPT, "term vector of doc %u: %u terms in %zu bytes", doc, n, v.mv_size);
    if (idx_grow((void **)&tv->termid, &tv->idcap, n ? n : 1, sizeof *tv->termid) ||
        idx_grow((void **)&tv->tf, &tv->tfcap, n ? (size_t)n * 2 : 2, sizeof *tv->tf))
        return fn_seterr(eb, -ENOMEM, "out of memory");
    p += IDX_TVEC_HDR;
    uint32_t prev = 0, i = 0;
    /* while a whole entry (3 varints of at most 5 bytes) surely fits, no
     * per-byte bounds check; the last entries take the checked path */
    for (; i < n && end - p >= 15; i++) {
        uint32_t gap = 0, code = 0, tft = 0;
        int ok = tv_fast(&p, &gap) & tv_fast(&p, &code);
        if (code & 1) ok &= tv_fast(&p, &tft) & (tft != 0);
        uint32_t id = prev + gap;
        if (!ok || (i && gap == 0) || id < prev || id >= r->info.terms || (code >> 1 == 0 && tft == 0)) goto bad;
        tv->termid[i] = prev = id;
        tv->tf[2 * i] = tft;
        tv->tf[2 * i + 1] = code >> 1;
    }
    for (; i < n; i++) {
        uint32_t gap, code, tft = 0;
        size_t a = tv_varint(p, end, &gap);
        size_t b = a ? tv_varint(p + a, end, &code) : 0;
        if (!b) goto bad;
        p += a + b;
        if (code & 1) {
            size_t c = tv_varint(p, end, &tft);
            if (!c || tft == 0) goto bad;
            p += c;
        }
        uint32_t id = prev + gap;
        if ((i && gap == 0) || id < prev || id >= r->info.terms || (code >> 1 == 0 && tft == 0)) goto bad;
        tv->termid[i] = prev = id;
        tv->tf[2 * i] = tft;
        tv->tf[2 * i + 1] = code >> 1;
    }
    if (p != end) goto bad;
    tv->n = n;
    return 0;
bad:
    return fn_seterr(eb, FN_ECORRUPT, "term vector of doc %u: bad coding, order or term id", doc);
}

int idx_vocab_get(const idx_reader_t *r, MDB_txn *txn, uint32_t termid, const char **term, size_t *len,
                  uint32_t *gdf, fn_errbuf *eb)
{
    MDB_val v;
    int rc = value_get(r, txn, r->vocab, r->vocat, r->info.terms, termid, "vocabulary: term id", "vocab", &v, eb);
    if (rc) return rc;
    const uint8_t *p = v.mv_data;
    if (v.mv_size <= IDX_VOCAB_HDR || v.mv_size > IDX_VOCAB_HDR + IDX_MAX_TERM_BYTES ||
        idx_get_u32le(p) != idx_sum32(p + 4, v.mv_size - 4, termid))
        return fn_seterr(eb, FN_ECORRUPT, "vocabulary: term id %u: checksum or size mismatch", termid);
    *gdf = idx_get_u32le(p + 4);
    *term = (const char *)p + IDX_VOCAB_HDR;
    *len = v.mv_size - IDX_VOCAB_HDR;
    return 0;
}

int idx_positions_get(const idx_reader_t *r, MDB_txn *txn, uint32_t termid, uint32_t block,
                      const uint32_t *tf_title, const uint32_t *tf_body, uint32_t n,
                      uint32_t **pos, size_t *cap, fn_errbuf *eb)
{
    const uint8_t *data;
    size_t size;
    uint32_t count;
    int rc = idx_positions_raw(r, txn, termid, block, &data, &size, &count, eb);
    if (rc) return rc;
    uint64_t want = 0;
    for (uint32_t i = 0; i < n; i++) want += (uint64_t)tf_title[i] + tf_body[i];
    if (count != want)
        return fn_seterr(eb, FN_ECORRUPT, "positions of term id %u, block %u: %u positions, the "
                         "postings say %llu", termid, block, count, (unsigned long long)want);
    if (count > *cap) {
        size_t nc = *cap ? *cap : 256;
        while (nc < count) nc *= 2;
        uint32_t *np = realloc(*pos, nc * sizeof *np);
        if (!np) return fn_seterr(eb, -ENOMEM, "out of memory");
        *pos = np;
        *cap = nc;
    }
    size_t off = 0;
    for (uint32_t i = 0; i < count; i += r->block_size) {
        uint32_t c = count - i < r->block_size ? count - i : r->block_size;
        size_t used = r->codec->decode(data + off, size - off, c, *pos + i);
        if (!used)
            return fn_seterr(eb, FN_ECORRUPT, "positions of term id %u, block %u: cannot decode",
                             termid, block);
        off += used;
    }
    if (off != size)
        return fn_seterr(eb, FN_ECORRUPT, "positions of term id %u, block %u: trailing bytes", termid, block);
    /* gaps -> positions, per posting and field */
    uint32_t *q = *pos;
    for (uint32_t i = 0; i < n; i++) {
        for (int f = 0; f < 2; f++) {
            uint32_t tf = f ? tf_body[i] : tf_title[i];
            uint64_t at = 0;
            for (uint32_t j = 0; j < tf; j++, q++) {
                at += *q;
                if (at > UINT32_MAX || (j && *q == 0))
                    return fn_seterr(eb, FN_ECORRUPT, "positions of term id %u, block %u: not ascending",
                                     termid, block);
                *q = (uint32_t)at;
            }
        }
    }
    return 0;
}

int idx_positions_raw(const idx_reader_t *r, MDB_txn *txn, uint32_t termid, uint32_t block,
                      const uint8_t **data, size_t *size, uint32_t *count, fn_errbuf *eb)
{
    uint8_t key[8];
    idx_put_u32be(key, termid);
    idx_put_u32be(key + 4, block);
    MDB_val k = { 8, key }, v;
    int rc = mdb_get(txn, r->positions, &k, &v);
    if (rc == MDB_NOTFOUND)
        return fn_seterr(eb, FN_ECORRUPT, "positions of term id %u, block %u: missing", termid, block);
    if (rc) return fn_seterr(eb, idx_mdb_code(rc), "positions: %s", mdb_strerror(rc));
    const uint8_t *p = v.mv_data;
    if (!idx_in_map(r, p, v.mv_size) || v.mv_size < IDX_POS_HDR ||
        idx_get_u32le(p) != idx_sum32(p + 4, v.mv_size - 4, (uint64_t)termid << 32 | block))
        return fn_seterr(eb, FN_ECORRUPT, "positions of term id %u, block %u: checksum mismatch",
                         termid, block);
    *count = idx_get_u32le(p + 4);
    *data = p + IDX_POS_HDR;
    *size = v.mv_size - IDX_POS_HDR;
    return 0;
}

int idx_doc_decode(uint32_t doc, const MDB_val *v, idx_doc_rec *out, fn_errbuf *eb)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size < IDX_DOC_HDR || idx_get_u32le(p) != idx_sum32(p + 4, v->mv_size - 4, doc))
        return fn_seterr(eb, FN_ECORRUPT, "stored record of doc %u: checksum mismatch", doc);
    uint64_t a = idx_get_u32le(p + 4), b = idx_get_u32le(p + 8), c = idx_get_u32le(p + 12);
    if (a == 0 || IDX_DOC_HDR + a + b + c != v->mv_size)
        return fn_seterr(eb, FN_ECORRUPT, "stored record of doc %u: bad field lengths", doc);
    out->id = (const char *)p + IDX_DOC_HDR;
    out->title = out->id + a;
    out->url = out->title + b;
    out->id_len = (uint32_t)a;
    out->title_len = (uint32_t)b;
    out->url_len = (uint32_t)c;
    return 0;
}

int idx_doc_get(const idx_reader_t *r, MDB_txn *txn, uint32_t doc, idx_doc_rec *out, fn_errbuf *eb)
{
    MDB_val v;
    int rc = value_get(r, txn, r->docs, r->docat, r->info.docs, doc, "stored record of doc", "docs", &v, eb);
    return rc ? rc : idx_doc_decode(doc, &v, out, eb);
}

void idx_srcbuf_free(idx_srcbuf *sb)
{
    ZSTD_freeDCtx(sb->dctx);
    free(sb->buf);
    *sb = (idx_srcbuf){ 0 };
}

int idx_source_get(const idx_reader_t *r, MDB_txn *txn, uint32_t doc, idx_srcbuf *sb, const char **json,
                   size_t *len, fn_errbuf *eb)
{
    uint8_t dk[4];
    idx_put_u32be(dk, doc);
    MDB_val k = { 4, dk }, v;
    int rc = mdb_get(txn, r->source, &k, &v);
    if (rc == MDB_NOTFOUND) return fn_seterr(eb, FN_ECORRUPT, "source of doc %u: missing", doc);
    if (rc) return fn_seterr(eb, idx_mdb_code(rc), "source: %s", mdb_strerror(rc));
    const uint8_t *p = v.mv_data;
    if (!idx_in_map(r, p, v.mv_size))
        return fn_seterr(eb, FN_ECORRUPT, "source of doc %u: lies outside the file: a page is damaged", doc);
    if (v.mv_size < 4 || idx_get_u32le(p) != idx_sum32(p + 4, v.mv_size - 4, doc))
        return fn_seterr(eb, FN_ECORRUPT, "source of doc %u: checksum mismatch", doc);
    /* the sum holds: what follows is the builder's, unless someone wrote a
     * value with a right sum - check everything before trusting a length */
    if (v.mv_size < IDX_SOURCE_HDR)
        return fn_seterr(eb, FN_ECORRUPT, "source of doc %u: %zu bytes, shorter than its %d-byte header", doc,
                         v.mv_size, IDX_SOURCE_HDR);
    uint32_t raw = idx_get_u32le(p + 4);
    const uint8_t *z = p + IDX_SOURCE_HDR;
    size_t zn = v.mv_size - IDX_SOURCE_HDR;
    if (raw == 0 || raw > IDX_MAX_SOURCE_BYTES)
        return fn_seterr(eb, FN_ECORRUPT, "source of doc %u: length %" PRIu32 " is outside 1..%u bytes", doc, raw,
                         IDX_MAX_SOURCE_BYTES);
    unsigned long long fcs = ZSTD_getFrameContentSize(z, zn);
    if (fcs == ZSTD_CONTENTSIZE_ERROR || fcs == ZSTD_CONTENTSIZE_UNKNOWN)
        return fn_seterr(eb, FN_ECORRUPT, "source of doc %u: not a zstd frame with its content size", doc);
    if (fcs != raw)
        return fn_seterr(eb, FN_ECORRUPT, "source of doc %u: length %" PRIu32 ", but its zstd frame holds %llu "
                         "bytes", doc, raw, fcs);
    size_t fn = ZSTD_findFrameCompressedSize(z, zn);
    if (ZSTD_isError(fn) || fn != zn)
        return fn_seterr(eb, FN_ECORRUPT, "source of doc %u: its zstd frame %s", doc,
                         ZSTD_isError(fn) ? "is damaged" : "does not end where the value does");
    if (sb->cap < (size_t)raw + 1) {
        char *nb = realloc(sb->buf, (size_t)raw + 1);
        if (!nb) return fn_seterr(eb, -ENOMEM, "out of memory");
        sb->buf = nb;
        sb->cap = (size_t)raw + 1;
    }
    if (!sb->dctx && !(sb->dctx = ZSTD_createDCtx())) return fn_seterr(eb, -ENOMEM, "out of memory");
    size_t got = ZSTD_decompressDCtx(sb->dctx, sb->buf, raw, z, zn);
    if (ZSTD_isError(got))
        return fn_seterr(eb, FN_ECORRUPT, "source of doc %u: zstd frame does not decompress (%s)", doc,
                         ZSTD_getErrorName(got));
    if (got != raw)
        return fn_seterr(eb, FN_ECORRUPT, "source of doc %u: zstd frame decompresses to %zu bytes, not %" PRIu32,
                         doc, got, raw);
    sb->buf[raw] = '\0';
    *json = sb->buf;
    *len = raw;
    return 0;
}

int idx_id_decode(const idx_reader_t *r, const char *id, size_t len, const MDB_val *v,
                  uint32_t *doc, fn_errbuf *eb)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size != IDX_ID_REC_BYTES || !idx_in_map(r, p, v->mv_size) || idx_get_u32le(p + 4) != idx_sum32(p, 4, idx_key_seed(id, len)))
        return fn_seterr(eb, FN_ECORRUPT, "id \"%s\": record checksum mismatch",
                         IDX_SHOW(id, len));
    *doc = idx_get_u32le(p);
    if (*doc >= r->info.docs)
        return fn_seterr(eb, FN_ECORRUPT, "id \"%s\": doc %u out of range", IDX_SHOW(id, len), *doc);
    return 0;
}

int idx_id_get(const idx_reader_t *r, MDB_txn *txn, const char *id, size_t len, uint32_t *doc,
               fn_errbuf *eb)
{
    MDB_val k = { len, (void *)id }, v;
    int rc = mdb_get(txn, r->ids, &k, &v);
    if (rc == MDB_NOTFOUND) return FN_ENOTFOUND;
    if (rc) return fn_seterr(eb, idx_mdb_code(rc), "ids: %s", mdb_strerror(rc));
    return idx_id_decode(r, id, len, &v, doc, eb);
}

/* ---- open ---- */

/* fn_strerror does not name LMDB's own codes (MDB_INVALID, ...) */
static const char *errname(int rc)
{
    return rc >= MDB_KEYEXIST && rc <= MDB_LAST_ERRCODE ? mdb_strerror(rc) : fn_strerror(rc);
}

static int meta_get(MDB_txn *txn, MDB_dbi dbi, const char *key, char *buf, size_t cap)
{
    MDB_val k = { strlen(key), (void *)key }, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc) return rc == MDB_NOTFOUND ? FN_EFORMAT : idx_mdb_code(rc);
    if (v.mv_size >= cap || memchr(v.mv_data, '\0', v.mv_size)) return FN_EFORMAT;
    memcpy(buf, v.mv_data, v.mv_size);
    buf[v.mv_size] = '\0';
    return 0;
}

static int meta_u64(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t *out)
{
    char buf[64], *end;
    int rc = meta_get(txn, dbi, key, buf, sizeof buf);
    if (rc) return rc;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno || end == buf || *end || buf[0] == '-') return FN_EFORMAT;
    *out = v;
    return 0;
}

static int meta_double(MDB_txn *txn, MDB_dbi dbi, const char *key, double *out)
{
    char buf[64], *end;
    int rc = meta_get(txn, dbi, key, buf, sizeof buf);
    if (rc) return rc;
    *out = strtod(buf, &end);
    if (end == buf || *end || !(*out >= 0.0)) return FN_EFORMAT;
    return 0;
}

static int load_norm(MDB_txn *txn, MDB_dbi dbi, const char *key, size_t width, uint64_t n, void **out)
{
    MDB_val k = { strlen(key), (void *)key }, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc) return rc == MDB_NOTFOUND ? FN_EFORMAT : idx_mdb_code(rc);
    if (v.mv_size != 4 + n * width) return FN_EFORMAT;
    const uint8_t *p = v.mv_data;
    if (idx_get_u32le(p) != idx_sum32(p + 4, n * width, 0)) return FN_ECORRUPT;
    p += 4;
    void *a = malloc(n ? n * width : 1);
    if (!a) return -ENOMEM;
    for (uint64_t i = 0; i < n; i++) {
        if (width == 4) ((uint32_t *)a)[i] = idx_get_u32le(p + 4 * i);   /* f32 arrays too: same bits */
        else if (width == 8) ((uint64_t *)a)[i] = idx_get_u64le(p + 8 * i);
        else ((uint16_t *)a)[i] = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
    }
    *out = a;
    return 0;
}

/* The vectors (format.h vectors, norms vec_rows / vec_docs), in place. */
static int open_vectors(idx_reader_t *r, MDB_txn *txn, const char **what)
{
    idx_index_info *in = &r->info;
    uint64_t v;
    char metric[16];
    int rc;
    *what = "meta vec_dim";
    if ((rc = meta_u64(txn, r->meta, "vec_dim", &v))) return rc;
    if (v > ANN_MAX_DIM) return FN_EFORMAT;
    in->vec_dim = (uint32_t)v;
    *what = "meta vec_count";
    if ((rc = meta_u64(txn, r->meta, "vec_count", &in->vec_count))) return rc;
    *what = "meta vec_metric";
    ann_metric m;
    if ((rc = meta_get(txn, r->meta, "vec_metric", metric, sizeof metric))) return rc;
    if (ann_metric_parse(metric, &m)) return FN_EFORMAT;
    in->vec_metric = (uint32_t)m;
    if (!in->vec_dim) return in->vec_count ? FN_EFORMAT : 0;
    if (in->vec_count > in->docs) return FN_EFORMAT;
    *what = "norms \"vec_rows\"";
    if ((rc = load_norm(txn, r->norms, "vec_rows", 4, in->docs, (void **)&r->vec_rows))) return rc;
    if (!in->vec_count) return 0;
    *what = "norms \"vec_docs\"";
    if ((rc = load_norm(txn, r->norms, "vec_docs", 4, in->vec_count, (void **)&r->vec_docs))) return rc;
    for (uint64_t i = 0; i < in->vec_count; i++)
        if (r->vec_docs[i] >= in->docs || (i && r->vec_docs[i] <= r->vec_docs[i - 1]) ||
            r->vec_rows[r->vec_docs[i]] != i)
            return FN_ECORRUPT;
    *what = "vectors";
    static const char key[] = "f32";
    MDB_val k = { 3, (void *)key }, val;
    if ((rc = mdb_get(txn, r->vectors, &k, &val))) return rc == MDB_NOTFOUND ? FN_EFORMAT : idx_mdb_code(rc);
    const uint8_t *p = val.mv_data;
    if (!idx_in_map(r, p, val.mv_size)) return FN_ECORRUPT;
    if (val.mv_size != IDX_VEC_HDR + in->vec_count * in->vec_dim * 4 || idx_get_u32le(p + 4) != in->vec_count ||
        idx_get_u32le(p + 8) != in->vec_dim)
        return FN_EFORMAT;
    /* the whole array once, at open (about 0.1 s a GiB): a search then reads
     * rows in place, without a check of its own */
    if (idx_get_u32le(p) != idx_sum32(p + 4, val.mv_size - 4, in->vec_dim)) return FN_ECORRUPT;
    /* used in place as floats: the host must store them as the file does */
    const uint32_t one = 1;
    if (*(const uint8_t *)&one != 1) return FN_EFORMAT;
    if ((uintptr_t)(p + IDX_VEC_HDR) & 3) {
        /* a small value lives inside a leaf page, 2-byte aligned: a copy
         * (large ones sit in overflow pages, page-aligned plus the header) */
        size_t bytes = val.mv_size - IDX_VEC_HDR;
        if (!(r->vecs_own = malloc(bytes ? bytes : 1))) return -ENOMEM;
        memcpy(r->vecs_own, p + IDX_VEC_HDR, bytes);
        r->vecs = r->vecs_own;
    } else {
        r->vecs = (const float *)(const void *)(p + IDX_VEC_HDR);
    }
    for (uint64_t i = 0; i < in->vec_count * in->vec_dim; i++)
        if (!isfinite(r->vecs[i])) return FN_ECORRUPT;
    return 0;
}

/* Everything after mdb_env_open; runs inside the caller's guard. */
static int open_txn(idx_reader_t *r, fn_errbuf *eb)
{
    const char *dir = r->dir, *what = "missing database";
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &txn);
    if (rc) return fn_seterr(eb, idx_mdb_code(rc), "%s: %s", dir, mdb_strerror(rc));
    if ((rc = mdb_dbi_open(txn, IDX_DB_META, 0, &r->meta)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_TERMS, 0, &r->terms)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_POSTINGS, 0, &r->postings)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_DOCS, 0, &r->docs)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_IDS, 0, &r->ids)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_NORMS, 0, &r->norms))) {
        if (rc == MDB_NOTFOUND) rc = FN_EFORMAT;
        goto fail;
    }
    idx_index_info *in = &r->info;
    uint64_t v;
    what = "meta schema";
    if ((rc = meta_u64(txn, r->meta, "schema", &v))) goto fail;
    if (v != IDX_SCHEMA_VERSION) {
        rc = fn_seterr(eb, FN_EVERSION, "%s: index schema %" PRIu64 ", this build reads schema %d: "
                       "rebuild the index with this version's `funnel index build`",
                       dir, v, IDX_SCHEMA_VERSION);
        goto fail_msg;
    }
    /* source (schema 2) and positions (3) are newer: open them after the
     * version check so an old index gets the message above */
    if ((rc = mdb_dbi_open(txn, IDX_DB_SOURCE, 0, &r->source)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_POSITIONS, 0, &r->positions)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_SKIPS, 0, &r->skips)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_VOCAB, 0, &r->vocab)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_TVEC, 0, &r->tvec)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_VECTORS, 0, &r->vectors)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_ATTRS, 0, &r->attrsdb)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_DOCSIG, 0, &r->docsig))) {
        if (rc == MDB_NOTFOUND) rc = FN_EFORMAT;
        goto fail;
    }
    in->schema = (uint32_t)v;
    what = "meta";
    char sumtxt[16];
    uint32_t msum;
    if ((rc = meta_get(txn, r->meta, "meta_sum", sumtxt, sizeof sumtxt)) ||
        (rc = idx_meta_sum(txn, r->meta, &msum)))
        goto fail;
    if (strtoul(sumtxt, NULL, 16) != msum || strlen(sumtxt) != 8) {
        rc = fn_seterr(eb, FN_ECORRUPT, "%s: meta: checksum mismatch: the index is damaged", dir);
        goto fail_msg;
    }
    if ((rc = meta_u64(txn, r->meta, "shard", &v))) goto fail;
    in->shard = (uint32_t)v;
    if ((rc = meta_u64(txn, r->meta, "shards", &v))) goto fail;
    in->shards = (uint32_t)v;
    if ((rc = meta_u64(txn, r->meta, "docs", &in->docs)) ||
        (rc = meta_u64(txn, r->meta, "docs_total", &in->docs_total)) ||
        (rc = meta_u64(txn, r->meta, "terms", &in->terms)) ||
        (rc = meta_double(txn, r->meta, "avglen_title", &in->avglen[IDX_FIELD_TITLE])) ||
        (rc = meta_double(txn, r->meta, "avglen_body", &in->avglen[IDX_FIELD_BODY])) ||
        (rc = meta_get(txn, r->meta, "analyzer", in->analyzer, sizeof in->analyzer)) ||
        (rc = meta_get(txn, r->meta, "codec", in->codec, sizeof in->codec)) ||
        (rc = meta_u64(txn, r->meta, "block_size", &v)))
        goto fail;
    what = "meta buckets";
    {
        char *bt = malloc(IDX_BUCKETS_TEXT_MAX);
        if (!bt) {
            rc = -ENOMEM;
            goto fail;
        }
        fn_errbuf beb;
        rc = meta_get(txn, r->meta, "buckets", bt, IDX_BUCKETS_TEXT_MAX);
        if (rc == 0 && (idx_buckets_parse(bt, &r->bmap, &beb) || r->bmap.shards != in->shards)) rc = FN_EFORMAT;
        free(bt);
        if (rc) goto fail;
    }
    what = "meta filter_model";
    in->filter_threshold = in->filter_strict = NAN;
    in->filter_model[0] = '\0';
    rc = meta_get(txn, r->meta, "filter_model", in->filter_model, sizeof in->filter_model);
    if (rc == 0) {
        /* both thresholds in [0, 1], strict never above the threshold (rank/cfilter.h) */
        what = "meta filter_threshold";
        if ((rc = meta_double(txn, r->meta, "filter_threshold", &in->filter_threshold))) goto fail;
        what = "meta filter_strict";
        if ((rc = meta_double(txn, r->meta, "filter_strict", &in->filter_strict))) goto fail;
        if (!(in->filter_threshold <= 1 && in->filter_strict <= in->filter_threshold)) {
            rc = FN_EFORMAT;
            goto fail;
        }
    } else if (rc != FN_EFORMAT) {
        goto fail;
    } else {
        in->filter_model[0] = '\0';   /* absent: built without a filter */
    }
    what = "meta blockmax_bm25";
    {
        char bm[160], *p = bm, *end;
        double x[5];
        if ((rc = meta_get(txn, r->meta, "blockmax_bm25", bm, sizeof bm))) goto fail;
        for (int i = 0; i < 5; i++, p = end) {
            x[i] = strtod(p, &end);
            if (end == p || !isfinite(x[i]) || x[i] < 0) {
                rc = FN_EFORMAT;
                goto fail;
            }
        }
        r->bm = (idx_bm25_params){ x[0], { x[1], x[2] }, { x[3], x[4] } };
    }
    what = "meta";
    if (in->docs > UINT32_MAX || in->docs > in->docs_total || v == 0 || v > IDX_BLOCK_SIZE ||
        in->shards == 0 || in->shard >= in->shards || in->terms > UINT32_MAX) {
        rc = FN_EFORMAT;
        goto fail;
    }
    r->block_size = (uint32_t)v;
    if (!(r->codec = idx_codec_find(in->codec))) {
        rc = fn_seterr(eb, FN_EFORMAT, "%s: unknown postings codec \"%s\"", dir, in->codec);
        goto fail_msg;
    }
    what = "norms \"title\"";
    if ((rc = load_norm(txn, r->norms, "title", 4, in->docs, (void **)&r->len[IDX_FIELD_TITLE]))) goto fail;
    what = "norms \"body\"";
    if ((rc = load_norm(txn, r->norms, "body", 4, in->docs, (void **)&r->len[IDX_FIELD_BODY]))) goto fail;
    what = "norms \"keys\"";
    if ((rc = load_norm(txn, r->norms, "keys", 8, in->docs, (void **)&r->keys))) goto fail;
    what = "norms \"popularity\"";
    if ((rc = load_norm(txn, r->norms, "popularity", 4, in->docs, (void **)&r->pop))) goto fail;
    what = "norms \"published_at\"";
    if ((rc = load_norm(txn, r->norms, "published_at", 8, in->docs, (void **)&r->pub))) goto fail;
    what = "norms \"url_depth\"";
    if ((rc = load_norm(txn, r->norms, "url_depth", 2, in->docs, (void **)&r->urld))) goto fail;
    for (uint64_t d = 0; d < in->docs; d++)
        if (!(r->pop[d] >= 0) || !isfinite(r->pop[d])) { rc = FN_ECORRUPT; goto fail; }
    if ((rc = open_vectors(r, txn, &what))) goto fail;
    if ((rc = idx_attrs_load(r, txn, r->attrsdb, eb))) {
        char m[sizeof eb->msg];
        snprintf(m, sizeof m, "%s", eb ? eb->msg : "");
        fn_seterr(eb, rc, "%s: %s%s", dir, m, idx_is_damage(rc) ? ": the index is damaged" : "");
        goto fail_msg;
    }
    what = "meta";
    if ((rc = meta_u64(txn, r->meta, "sumlen_title", &r->sumlen[IDX_FIELD_TITLE])) ||
        (rc = meta_u64(txn, r->meta, "sumlen_body", &r->sumlen[IDX_FIELD_BODY])))
        goto fail;
    /* committing a read txn keeps the dbi handles open for later txns */
    rc = mdb_txn_commit(txn);
    if (rc) return fn_seterr(eb, idx_mdb_code(rc), "%s: %s", dir, mdb_strerror(rc));
    return 0;
fail:
    rc = idx_mdb_code(rc);
    fn_seterr(eb, rc, "%s: %s: %s%s", dir, what, errname(rc),
              idx_is_damage(rc) ? ": the index is damaged" : "");
fail_msg:
    mdb_txn_abort(txn);
    return rc;
}

/* Where LMDB mapped data.mdb: the guard's range and the decoders' bounds.
 * mdb_env_info's me_mapaddr is NULL unless MDB_FIXEDMAP, so find the mapping
 * that holds the main database's first key; the pages that read are inside
 * the size the caller has just checked. */
static int first_key(idx_reader_t *r, MDB_val *k)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *c;
    MDB_val v;
    int rc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &txn);
    if (rc) return rc;
    if ((rc = mdb_dbi_open(txn, NULL, 0, &dbi)) == 0 && (rc = mdb_cursor_open(txn, dbi, &c)) == 0) {
        rc = mdb_cursor_get(c, k, &v, MDB_FIRST);
        mdb_cursor_close(c);
    }
    mdb_txn_abort(txn);
    return rc;
}

static int find_map(idx_reader_t *r, size_t mapsize, fn_errbuf *eb)
{
    MDB_val k = { 0, NULL };
    int rc = first_key(r, &k);
    if (rc == MDB_NOTFOUND)
        return fn_seterr(eb, FN_EFORMAT, "%s: LMDB's main database is empty: not an index, or damaged", r->dir);
    if (rc) {
        rc = idx_mdb_code(rc);
        return fn_seterr(eb, rc, "%s: %s%s", r->dir, errname(rc),
                         idx_is_damage(rc) ? ": the index is damaged" : "");
    }
    const char *start;
    size_t len;
    if ((rc = idx_map_of(k.mv_data, &start, &len)))
        return fn_seterr(eb, rc, "%s/data.mdb: cannot find LMDB's map of it in /proc/self/maps: %s", r->dir,
                         fn_strerror(rc));
    r->map = start;
    r->mapsize = len < mapsize ? len : mapsize;
    return 0;
}

static int open_guarded(idx_reader_t *r, fn_errbuf *eb)
{
    idx_guard g;
    if (idx_guard_enter(&g, r->map, r->mapsize) == 0) {
        if (sigsetjmp(g.jb, 0) != 0)
            return fn_seterr(eb, FN_ECORRUPT, "%s: data.mdb: %s", r->dir, idx_guard_what(&g));
    }
    int rc = open_txn(r, eb);
    idx_guard_leave(&g);
    return rc;
}

static int open_env_guarded(idx_reader_t *r, const struct stat *st, fn_errbuf *eb);

int idx_reader_open_ex(const char *dir, unsigned flags, idx_reader_t **out, fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    *out = NULL;
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (stat(path, &st)) return fn_seterr(eb, -ENOENT, "%s: no index here", dir);
    if (strlen(dir) >= sizeof ((idx_reader_t *)0)->dir)
        return fn_seterr(eb, FN_EINVAL, "%s: path too long", dir);
    int rc;
    if (!(flags & (IDX_OPEN_QUICK | IDX_OPEN_CHECKED)) && (rc = idx_verify_file(dir, eb)) != 0) {
        /* a schema-1 index has no checksum file: say which version it is */
        if (rc == FN_EFORMAT) {
            fn_errbuf veb;
            idx_reader_t *old;
            int orc = idx_reader_open_ex(dir, flags | IDX_OPEN_QUICK, &old, &veb);
            if (orc == FN_EVERSION) { if (eb) *eb = veb; return orc; }
            if (orc == 0) idx_reader_close(old);
        }
        return rc;
    }

    idx_reader_t *r = calloc(1, sizeof *r);
    if (!r) return fn_seterr(eb, -ENOMEM, "out of memory");
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    r->fd = -1;
    if ((rc = mdb_env_create(&r->env))) {
        free(r);
        return fn_seterr(eb, idx_mdb_code(rc), "%s: %s", dir, mdb_strerror(rc));
    }
    /* LMDB's assertions on damaged pages jump back to our guards (integrity.h) */
    mdb_env_set_assert(r->env, idx_lmdb_assert);
    if ((rc = open_env_guarded(r, &st, eb)) || (rc = open_guarded(r, eb))) goto fail;
    if ((r->info.terms && !(r->lasts = calloc(r->info.terms, sizeof *r->lasts))) ||
        (r->info.docs && !(r->docat = calloc(r->info.docs, sizeof *r->docat))) ||
        (r->info.docs && !(r->tvat = calloc(r->info.docs, sizeof *r->tvat))) ||
        (r->info.terms && !(r->vocat = calloc(r->info.terms, sizeof *r->vocat)))) {
        rc = fn_seterr(eb, -ENOMEM, "out of memory");
        goto fail;
    }
    if (r->info.vec_count) {
        /* the graph over the rows, its own file (format.h ann.hnsw): checked
         * whole unless the open is quick, its structure always */
        snprintf(path, sizeof path, "%s/%s", dir, IDX_ANN_FILE);
        fn_errbuf aeb = { { 0 } };
        rc = ann_hnsw_open(path, r->vecs, r->info.vec_dim, (flags & IDX_OPEN_QUICK) ? ANN_OPEN_NOVERIFY : 0,
                           &r->ann, &aeb);
        if (!rc) {
            ann_hnsw_info hi;
            ann_hnsw_get_info(r->ann, &hi);
            if (hi.n != r->info.vec_count || hi.metric != (ann_metric)r->info.vec_metric)
                rc = fn_seterr(&aeb, FN_ECORRUPT, "a graph of %zu %s vectors, the shard has %llu %s ones", hi.n,
                               ann_metric_name(hi.metric), (unsigned long long)r->info.vec_count,
                               ann_metric_name((ann_metric)r->info.vec_metric));
        }
        if (rc) {
            if (rc == -ENOENT) rc = FN_ECORRUPT;
            fn_seterr(eb, rc, "%s: %s: %s", dir, IDX_ANN_FILE, aeb.msg[0] ? aeb.msg : fn_strerror(rc));
            goto fail;
        }
    }
    *out = r;
    return 0;
fail:
    idx_reader_close(r);
    /* Damage can also fail an open with codes of its own (a meta page that
     * asks for an impossible map: ENOMEM, EINVAL): without the whole-file
     * check so far, it tells damage from the rest. */
    fn_errbuf veb;
    if (!idx_is_damage(rc) && rc != FN_EVERSION && (flags & IDX_OPEN_QUICK) &&
        idx_verify_file(dir, &veb) == FN_ECORRUPT) {
        fn_errbuf first = { { 0 } };
        if (eb) first = *eb;
        return fn_seterr(eb, FN_ECORRUPT, "%s; %s", first.msg[0] ? first.msg : errname(rc), veb.msg);
    }
    return rc;
}

/* mdb_env_open up to knowing where the map is; runs inside the caller's
 * guard. */
static int open_env(idx_reader_t *r, const struct stat *st, fn_errbuf *eb)
{
    const char *dir = r->dir;
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    int rc;
    if ((rc = mdb_env_set_maxdbs(r->env, IDX_MAX_DBS)) ||
        /* only what the file holds: LMDB grows it to the used size, and a
         * small mapping keeps readers valgrind-friendly */
        (rc = mdb_env_set_mapsize(r->env, (size_t)st->st_size)) ||
        /* NOLOCK: a sealed index has no writer, so readers need no lock
         * file and the directory may be read-only; NORDAHEAD: a query
         * touches a few scattered pages, and read-ahead would map (and
         * count in RSS) the neighbours it never reads */
        (rc = mdb_env_open(r->env, dir, MDB_RDONLY | MDB_NOTLS | MDB_NOLOCK | MDB_NORDAHEAD, 0644))) {
        rc = idx_mdb_code(rc);
        /* LMDB's two meta pages are the least an LMDB file holds; shorter
         * (e.g. 0 bytes) gives odd errors (EBADF, ENOENT) */
        if (!idx_is_damage(rc) && (uint64_t)st->st_size < 2 * (uint64_t)sysconf(_SC_PAGESIZE))
            return fn_seterr(eb, FN_ECORRUPT, "%s: %lld bytes: too short for an LMDB file: the file is "
                             "truncated", path, (long long)st->st_size);
        return fn_seterr(eb, rc, "%s: open: %s%s", dir, errname(rc),
                         idx_is_damage(rc) ? ": the index is damaged" : "");
    }
    /* LMDB maps as much as its metadata says the file holds; a shorter file
     * would fault (SIGBUS) on the first read past its end. */
    MDB_envinfo ei;
    MDB_stat ms;
    struct stat fst;
    if ((rc = mdb_env_get_fd(r->env, &r->fd)) || (rc = mdb_env_info(r->env, &ei)) ||
        (rc = mdb_env_stat(r->env, &ms)))
        return fn_seterr(eb, idx_mdb_code(rc), "%s: %s", dir, mdb_strerror(rc));
    if (fstat(r->fd, &fst)) return fn_seterr(eb, -errno, "%s: %s", path, strerror(errno));
    uint64_t need = ((uint64_t)ei.me_last_pgno + 1) * ms.ms_psize;
    if ((uint64_t)fst.st_size < need)
        return fn_seterr(eb, FN_ECORRUPT, "%s: %lld bytes, but LMDB's metadata references %" PRIu64
                         " bytes: the file is truncated", path, (long long)fst.st_size, need);
    r->size = fst.st_size;
    r->mtime = fst.st_mtim;
    return find_map(r, ei.me_mapsize, eb);
}

/* open_env inside a guard of any address: until the map is known, a damaged
 * meta page (a wrong page size) can make LMDB itself read past the end of
 * the file, and nothing but LMDB reads a mapped file here. */
static int open_env_guarded(idx_reader_t *r, const struct stat *st, fn_errbuf *eb)
{
    idx_guard g;
    if (idx_guard_enter(&g, NULL, IDX_GUARD_ANY) == 0) {
        if (sigsetjmp(g.jb, 0) != 0)
            return fn_seterr(eb, FN_ECORRUPT, "%s: data.mdb: LMDB's metadata is damaged: opening it, %s", r->dir,
                             g.sig == SIGBUS ? "LMDB read past the end of the file (SIGBUS)" : idx_guard_what(&g));
    }
    int rc = open_env(r, st, eb);
    idx_guard_leave(&g);
    return rc;
}

int idx_reader_open(const char *dir, idx_reader_t **out, fn_errbuf *eb)
{
    return idx_reader_open_ex(dir, 0, out, eb);
}

void idx_reader_close(idx_reader_t *r)
{
    if (!r) return;
    if (r->env) mdb_env_close(r->env);
    if (r->lasts) {
        for (uint64_t t = 0; t < r->info.terms; t++) free(atomic_load_explicit(&r->lasts[t], memory_order_relaxed));
        free(r->lasts);
    }
    free((void *)r->docat);
    free((void *)r->tvat);
    free((void *)r->vocat);
    ann_hnsw_close(r->ann);
    free(r->vecs_own);
    free(r->vec_rows);
    free(r->vec_docs);
    free(r->len[0]);
    free(r->len[1]);
    free(r->keys);
    free(r->pop);
    free(r->pub);
    free(r->urld);
    idx_attrs_free(&r->attrs);
    free(r);
}

int idx_reader_populate(idx_reader_t *r, idx_pace *pace, uint64_t *mapped, fn_errbuf *eb)
{
    uint64_t len = (uint64_t)r->size < r->mapsize ? (uint64_t)r->size : r->mapsize;
    int rc = idx_map_populate(r->map, len, pace, mapped);
    if (rc == -EFAULT)
        return fn_seterr(eb, FN_ECORRUPT, "%s/data.mdb: mapping it failed after %" PRIu64 " of %" PRIu64
                         " bytes: the file was cut short", r->dir, *mapped, len);
    if (rc) return fn_seterr(eb, rc, "%s/data.mdb: mapping it: %s", r->dir, strerror(-rc));
    return 0;
}

const idx_index_info *idx_reader_info(const idx_reader_t *r) { return &r->info; }
const char *idx_reader_dir(const idx_reader_t *r) { return r->dir; }
uint32_t idx_reader_shard_of(const idx_reader_t *r, uint64_t key) { return r->bmap.shard[idx_bucket_of(key)]; }

int idx_reader_check(const idx_reader_t *r, fn_errbuf *eb)
{
    struct stat st;
    if (fstat(r->fd, &st))
        return fn_seterr(eb, FN_ECORRUPT, "%s/data.mdb: cannot stat: %s", r->dir, strerror(errno));
    if (st.st_size != r->size)
        return fn_seterr(eb, FN_ECORRUPT, "%s/data.mdb changed size on disk while open "
                         "(%lld -> %lld bytes): something wrote or truncated the index",
                         r->dir, (long long)r->size, (long long)st.st_size);
    if (st.st_mtim.tv_sec != r->mtime.tv_sec || st.st_mtim.tv_nsec != r->mtime.tv_nsec)
        return fn_seterr(eb, FN_ECORRUPT, "%s/data.mdb was modified on disk while open: "
                         "something wrote into the index", r->dir);
    return 0;
}

static int get_doc(idx_reader_t *r, MDB_txn *txn, const char *id, idx_srcbuf *sb, fn_errbuf *eb)
{
    uint32_t doc;
    int rc = idx_id_get(r, txn, id, strlen(id), &doc, eb);
    if (rc == FN_ENOTFOUND) return fn_seterr(eb, rc, "no document with id \"%.200s\"", id);
    if (rc) return rc;
    const char *src;
    size_t len;
    return idx_source_get(r, txn, doc, sb, &src, &len, eb);
}

int idx_docs_signals(const idx_reader_t *r, const uint32_t *docs, size_t n, float *scores, uint8_t *sigs,
                     fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (docs[i] >= r->info.docs)
            return fn_seterr(eb, FN_EINVAL, "docsig: document %u is out of range (the shard has %llu)", docs[i],
                             (unsigned long long)r->info.docs);
    if (n == 0) return 0;
    int rc = idx_reader_check(r, eb);
    if (rc) return rc;
    MDB_txn *txn;
    if ((rc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &txn)))
        return fn_seterr(eb, idx_mdb_code(rc), "txn: %s", mdb_strerror(rc));
    idx_guard g;
    if (idx_guard_enter(&g, r->map, r->mapsize) == 0) {
        if (sigsetjmp(g.jb, 0) != 0) {
            mdb_txn_abort(txn);
            return fn_seterr(eb, FN_ECORRUPT, "%s/data.mdb: %s (while open)", r->dir, idx_guard_what(&g));
        }
    }
    for (size_t i = 0; i < n && !rc; i++)
        rc = idx_docsig_get(r, txn, docs[i], scores ? &scores[i] : NULL, sigs ? sigs + i * IDX_DUPSIG_BYTES : NULL,
                            eb);
    idx_guard_leave(&g);
    mdb_txn_abort(txn);
    return rc;
}

int idx_doc_filter_score(const idx_reader_t *r, uint32_t doc, float *out, fn_errbuf *eb)
{
    return idx_docs_signals(r, &doc, 1, out, NULL, eb);
}

int idx_doc_dupsig(const idx_reader_t *r, uint32_t doc, uint8_t *out, fn_errbuf *eb)
{
    return idx_docs_signals(r, &doc, 1, NULL, out, eb);
}

int idx_reader_get_doc(idx_reader_t *r, const char *id, char **json, fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    *json = NULL;
    int rc = idx_reader_check(r, eb);
    if (rc) return rc;
    /* on the heap: a fault's jump back must still find (and free) it */
    idx_srcbuf *sb = calloc(1, sizeof *sb);
    if (!sb) return fn_seterr(eb, -ENOMEM, "out of memory");
    MDB_txn *txn;
    if ((rc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &txn))) {
        free(sb);
        return fn_seterr(eb, idx_mdb_code(rc), "txn: %s", mdb_strerror(rc));
    }
    idx_guard g;
    if (idx_guard_enter(&g, r->map, r->mapsize) == 0) {
        if (sigsetjmp(g.jb, 0) != 0) {
            mdb_txn_abort(txn);
            idx_srcbuf_free(sb);
            free(sb);
            return fn_seterr(eb, FN_ECORRUPT, "%s/data.mdb: %s (while open)", r->dir, idx_guard_what(&g));
        }
    }
    rc = get_doc(r, txn, id, sb, eb);
    idx_guard_leave(&g);
    mdb_txn_abort(txn);
    if (!rc) {
        *json = sb->buf;   /* NUL-terminated: the caller's now */
        sb->buf = NULL;
    }
    idx_srcbuf_free(sb);
    free(sb);
    return rc;
}
