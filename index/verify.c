/* verify.c - offline check of a shard or a whole index (verify.h).
 *
 * A shard is opened with IDX_OPEN_QUICK after its whole-file check, so that
 * a file whose content (not size) no longer matches its checksum is still
 * walked: the walk then names the damaged value instead of only saying
 * "the file changed". Every walk runs in an idx_guard over its map.
 */
#include "verify.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "integrity.h"
#include "fn_io.h"
#include "reader_int.h"

#define MAX_SHARDS 100000

typedef struct vshard {
    char dir[4096];
    char name[256];
    idx_reader_t *r;        /* open (quick) after a clean check, for the index checks */
    int rc;
    fn_errbuf problem;
    uint64_t bytes, postings, blocks, skips;
    uint64_t sumlen[IDX_NFIELDS];   /* meta sumlen_title / sumlen_body (global) */
    uint64_t normsum[IDX_NFIELDS];  /* this shard's norms, added up */
} vshard;

/* Messages from the reader start with the shard directory; the report
 * already says which shard it is. */
static void strip_dir(char *msg, const char *dir)
{
    size_t n = strlen(dir);
    if (!n || strncmp(msg, dir, n) != 0) return;
    const char *rest = msg + n;
    if (rest[0] == ':' && rest[1] == ' ') rest += 2;
    else if (rest[0] == '/') rest += 1;
    else return;
    memmove(msg, rest, strlen(rest) + 1);
}

static int set_problem(vshard *vs, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int set_problem(vshard *vs, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vs->problem.msg, sizeof vs->problem.msg, fmt, ap);
    va_end(ap);
    strip_dir(vs->problem.msg, vs->dir);
    if (!vs->problem.msg[0]) snprintf(vs->problem.msg, sizeof vs->problem.msg, "%s", fn_strerror(rc));
    vs->rc = rc;
    return rc;
}

/* ---- one shard: the walk ---- */

typedef struct walk {
    vshard *vs;
    idx_reader_t *r;
    MDB_txn *txn;
    MDB_cursor *cur;
    fn_errbuf *eb;
    /* per doc: the postings' term frequencies added up per field, then a sum
     * of tv_mix over its postings (the term vector must give the same) */
    uint64_t *tfsum;
    idx_tvec tv;
    /* where the walk is, for a fault's message */
    const char *at;         /* "meta", "postings", "terms", "docs" */
    char term[IDX_MAX_TERM_BYTES];  /* a copy: after a fault the map is not to be read */
    size_t term_len;
    uint32_t block, doc;
    uint32_t docs[IDX_BLOCK_SIZE], tf[IDX_NFIELDS][IDX_BLOCK_SIZE];
    uint32_t *pos;          /* a block's positions */
    size_t poscap;
    idx_srcbuf src;         /* the documents' sources, decompressed */
} walk;

/* What follows "..., block B: " in a decoder's message. */
static const char *block_tail(const char *msg)
{
    const char *p = strstr(msg, ", block ");
    if (p && (p = strstr(p, ": "))) return p + 2;
    return msg;
}

/* One posting (term, frequencies) as 64 bits; summed over a document's
 * postings it is order-free, so the postings walk and the term vector can
 * be compared without holding either. */
static uint64_t tv_mix(uint32_t termid, uint32_t tft, uint32_t tfb)
{
    uint64_t x[2] = { termid, (uint64_t)tft << 32 | tfb };
    return XXH3_64bits(x, sizeof x);
}

static int walk_blocks(walk *w, const MDB_val *term, const idx_term_rec *tr)
{
    const idx_reader_t *r = w->r;
    uint64_t sum = 0, cf[IDX_NFIELDS] = { 0, 0 };
    uint32_t last = 0;
    const uint32_t *lasts = NULL;
    const float *bmax = NULL;
    fn_errbuf seb = { { 0 } };
    int src = idx_term_skips(r, w->txn, tr->termid, tr->nblocks, &lasts, &bmax, &seb);
    if (src)
        return fn_seterr(w->eb, src, "term \"%s\": %s", IDX_SHOW(term->mv_data, term->mv_size), fn_errmsg(&seb, src));
    w->vs->skips += lasts != NULL;
    for (uint32_t b = 0; b < tr->nblocks; b++) {
        uint32_t n;
        fn_errbuf beb = { { 0 } };
        w->block = b;
        int rc = idx_block_get(r, w->txn, tr->termid, b, w->docs, w->tf[0], w->tf[1], &n, &beb);
        if (rc)
            return fn_seterr(w->eb, rc, "postings of term \"%s\", block %u: %s", IDX_SHOW(term->mv_data, term->mv_size),
                             b, block_tail(fn_errmsg(&beb, rc)));
        if (b + 1 < tr->nblocks && n != r->block_size)
            return fn_seterr(w->eb, FN_ECORRUPT, "postings of term \"%s\", block %u: %u postings in a "
                             "block that is not the term's last (expected %u)",
                             IDX_SHOW(term->mv_data, term->mv_size), b, n, r->block_size);
        if (b > 0 && w->docs[0] <= last)
            return fn_seterr(w->eb, FN_ECORRUPT, "postings of term \"%s\", block %u: documents out of "
                             "order (doc %u after doc %u)", IDX_SHOW(term->mv_data, term->mv_size), b,
                             w->docs[0], last);
        /* its skip data: the block's last document, and a maximum no posting exceeds */
        if (lasts && lasts[b] != w->docs[n - 1])
            return fn_seterr(w->eb, FN_ECORRUPT, "skips of term \"%s\", block %u: last document %u, but the "
                             "block ends at %u", IDX_SHOW(term->mv_data, term->mv_size), b, lasts[b], w->docs[n - 1]);
        for (uint32_t i = 0; i < n && bmax; i++) {
            uint32_t d = w->docs[i];
            const uint32_t len[IDX_NFIELDS] = { r->len[0][d], r->len[1][d] }, tf[IDX_NFIELDS] = { w->tf[0][i], w->tf[1][i] };
            double g = idx_tf_part(&r->bm, r->info.avglen, len, tf);
            if (g > (double)bmax[b])
                return fn_seterr(w->eb, FN_ECORRUPT, "skips of term \"%s\", block %u: maximum %.9g, but doc %u "
                                 "scores %.9g: block-max pruning would lose it", IDX_SHOW(term->mv_data, term->mv_size),
                                 b, (double)bmax[b], d, g);
        }
        for (uint32_t i = 0; i < n; i++) {
            uint64_t *t = w->tfsum + 3 * (size_t)w->docs[i];
            t[0] += w->tf[0][i];
            t[1] += w->tf[1][i];
            t[2] += tv_mix(tr->termid, w->tf[0][i], w->tf[1][i]);
            cf[0] += w->tf[0][i];
            cf[1] += w->tf[1][i];
        }
        /* the block's positions: their checksum, count and order */
        if ((rc = idx_positions_get(r, w->txn, tr->termid, b, w->tf[0], w->tf[1], n, &w->pos, &w->poscap, &beb)))
            return fn_seterr(w->eb, rc, "positions of term \"%s\", block %u: %s",
                             IDX_SHOW(term->mv_data, term->mv_size), b, block_tail(fn_errmsg(&beb, rc)));
        last = w->docs[n - 1];
        sum += n;
    }
    if (sum != tr->df)
        return fn_seterr(w->eb, FN_ECORRUPT, "postings of term \"%s\": %" PRIu64 " postings, but its "
                         "record says df %u", IDX_SHOW(term->mv_data, term->mv_size), sum, tr->df);
    if (cf[0] > tr->gcf[0] || cf[1] > tr->gcf[1])
        return fn_seterr(w->eb, FN_ECORRUPT, "term \"%s\": this shard alone has %" PRIu64 " / %" PRIu64
                         " occurrences in titles / bodies, more than the whole index's %" PRIu64 " / %" PRIu64,
                         IDX_SHOW(term->mv_data, term->mv_size), cf[0], cf[1], tr->gcf[0], tr->gcf[1]);
    w->vs->postings += sum;
    w->vs->blocks += tr->nblocks;
    return 0;
}

static int walk_terms(walk *w)
{
    const idx_reader_t *r = w->r;
    int rc = mdb_cursor_open(w->txn, r->terms, &w->cur);
    if (rc) return fn_seterr(w->eb, idx_mdb_code(rc), "terms: %s", mdb_strerror(rc));
    MDB_val k, v, pk = { 0, NULL };
    uint64_t i = 0;
    for (rc = mdb_cursor_get(w->cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(w->cur, &k, &v, MDB_NEXT), i++) {
        if (k.mv_size == 0 || k.mv_size > IDX_MAX_TERM_BYTES || !idx_in_map(r, k.mv_data, k.mv_size))
            return fn_seterr(w->eb, FN_ECORRUPT, "terms: entry %" PRIu64 " has a key of %zu bytes: a page "
                             "is damaged", i, k.mv_size);
        if (i && idx_key_cmp(pk.mv_data, pk.mv_size, k.mv_data, k.mv_size) >= 0)
            return fn_seterr(w->eb, FN_ECORRUPT, "terms: \"%s\" comes after \"%s\" in the B-tree: "
                             "keys out of order, a page is damaged", IDX_SHOW(k.mv_data, k.mv_size),
                             IDX_SHOW(pk.mv_data, pk.mv_size));
        idx_term_rec tr;
        if ((rc = idx_term_decode(r, k.mv_data, k.mv_size, &v, &tr, w->eb))) return rc;
        if (tr.termid != i)
            return fn_seterr(w->eb, FN_ECORRUPT, "term \"%s\": term id %u, but it is term %" PRIu64
                             " in key order", IDX_SHOW(k.mv_data, k.mv_size), tr.termid, i);
        /* the vocabulary names the same term under its id */
        const char *vt;
        size_t vlen;
        uint32_t vgdf;
        if ((rc = idx_vocab_get(r, w->txn, tr.termid, &vt, &vlen, &vgdf, w->eb))) return rc;
        if (vlen != k.mv_size || memcmp(vt, k.mv_data, vlen) != 0 || vgdf != tr.gdf)
            return fn_seterr(w->eb, FN_ECORRUPT, "vocabulary: term id %u is \"%s\" (gdf %u), but its terms "
                             "record is \"%s\" (gdf %u)", tr.termid, IDX_SHOW(vt, vlen), vgdf,
                             IDX_SHOW(k.mv_data, k.mv_size), tr.gdf);
        /* a query finds terms by lookup, not by walking: the B-tree must route to it */
        MDB_val lv;
        int lrc = mdb_get(w->txn, r->terms, &k, &lv);
        if (lrc || lv.mv_data != v.mv_data)
            return fn_seterr(w->eb, FN_ECORRUPT, "term \"%s\": a lookup does not find its record (%s): "
                             "the terms B-tree is damaged", IDX_SHOW(k.mv_data, k.mv_size),
                             lrc ? mdb_strerror(lrc) : "it finds another one");
        w->at = "postings";
        w->term_len = k.mv_size;
        memcpy(w->term, k.mv_data, k.mv_size);
        if ((rc = walk_blocks(w, &k, &tr))) return rc;
        w->at = "terms";
        pk = k;
    }
    if (rc != MDB_NOTFOUND) return fn_seterr(w->eb, idx_mdb_code(rc), "terms: %s", mdb_strerror(rc));
    if (i != r->info.terms)
        return fn_seterr(w->eb, FN_ECORRUPT, "terms: %" PRIu64 " records, but meta says %" PRIu64, i,
                         r->info.terms);
    mdb_cursor_close(w->cur);
    w->cur = NULL;
    MDB_stat ms;
    if ((rc = mdb_stat(w->txn, r->postings, &ms)))
        return fn_seterr(w->eb, idx_mdb_code(rc), "postings: %s", mdb_strerror(rc));
    if (ms.ms_entries != w->vs->blocks)
        return fn_seterr(w->eb, FN_ECORRUPT, "postings: %zu blocks stored, but the term records account "
                         "for %" PRIu64, ms.ms_entries, w->vs->blocks);
    if ((rc = mdb_stat(w->txn, r->positions, &ms)))
        return fn_seterr(w->eb, idx_mdb_code(rc), "positions: %s", mdb_strerror(rc));
    if (ms.ms_entries != w->vs->blocks)
        return fn_seterr(w->eb, FN_ECORRUPT, "positions: %zu blocks stored, but the postings have %" PRIu64,
                         ms.ms_entries, w->vs->blocks);
    if ((rc = mdb_stat(w->txn, r->vocab, &ms)))
        return fn_seterr(w->eb, idx_mdb_code(rc), "vocab: %s", mdb_strerror(rc));
    if (ms.ms_entries != r->info.terms)
        return fn_seterr(w->eb, FN_ECORRUPT, "vocab: %zu terms, but meta says %" PRIu64, ms.ms_entries,
                         r->info.terms);
    if ((rc = mdb_stat(w->txn, r->skips, &ms)))
        return fn_seterr(w->eb, idx_mdb_code(rc), "skips: %s", mdb_strerror(rc));
    if (ms.ms_entries != w->vs->skips)
        return fn_seterr(w->eb, FN_ECORRUPT, "skips: %zu terms' skip data stored, but %" PRIu64 " terms have 2 "
                         "blocks or more", ms.ms_entries, w->vs->skips);
    return 0;
}

/* A JSON string member equal to p[0..n) ("" for a missing or non-string one). */
static int json_member_is(json_t *o, const char *name, const char *p, size_t n)
{
    json_t *m = json_object_get(o, name);
    if (!json_is_string(m)) return n == 0;
    return json_string_length(m) == n && memcmp(json_string_value(m), p, n) == 0;
}

/* NULL when the document's attributes (format.h attrs) are its JSON's,
 * else which differs. */
static const char *attrs_differ(const idx_reader_t *r, uint32_t d, json_t *o)
{
    static const char *const differ[IDX_NATTRS] = { "its \"vertical\" is not the stored attribute's",
                                                    "its \"lang\" is not the stored attribute's",
                                                    "its \"labels\" are not the stored attribute's" };
    idx_attr_doc ad;
    char why[80];
    if (idx_attrs_from_json(o, &ad, why, sizeof why)) return "its attributes are not valid (the build refuses them)";
    for (int ai = 0; ai < IDX_NATTRS; ai++) {
        const idx_attr *a = &r->attrs.a[ai];
        uint32_t have = a->off ? a->off[d + 1] - a->off[d] : 0;
        if (have != ad.n[ai]) return differ[ai];
        for (uint32_t j = 0; j < ad.n[ai]; j++) {
            int64_t c = idx_attr_find(a, ad.v[ai][j], ad.len[ai][j]);
            int found = 0;
            for (uint32_t x = 0; c >= 0 && x < have && !found; x++) found = a->code[a->off[d] + x] == (uint32_t)c;
            if (!found) return differ[ai];
        }
    }
    return NULL;
}

/* The document's docsig (format.h): its checksum and length, a filter score
 * exactly when meta names a filter model, and the signature of the source's
 * title and body. */
static const char *docsig_differs(walk *w, uint32_t d, json_t *o, int *rc)
{
    float fs;
    uint8_t sig[IDX_DUPSIG_BYTES], want[IDX_DUPSIG_BYTES];
    if ((*rc = idx_docsig_get(w->r, w->txn, d, &fs, sig, w->eb))) return NULL;
    if (!!isnan(fs) != !w->r->info.filter_model[0])
        return w->r->info.filter_model[0] ? "has no filter score, but meta names a filter model"
                                          : "has a filter score, but meta names no filter model";
    json_t *t = json_object_get(o, "title"), *b = json_object_get(o, "body");
    idx_dupsig(json_is_string(t) ? json_string_value(t) : NULL, json_is_string(t) ? json_string_length(t) : 0,
               json_is_string(b) ? json_string_value(b) : NULL, json_is_string(b) ? json_string_length(b) : 0, want);
    return memcmp(sig, want, IDX_DUPSIG_BYTES) ? "its near-duplicate signature is not its source's" : NULL;
}

static int check_source(walk *w, uint32_t d, const idx_doc_rec *dr)
{
    const char *src;
    size_t len;
    int rc = idx_source_get(w->r, w->txn, d, &w->src, &src, &len, w->eb);
    if (rc) return rc;
    json_error_t jerr;
    json_t *o = json_loadb(src, len, 0, &jerr);
    if (!o) return fn_seterr(w->eb, FN_ECORRUPT, "source of doc %u: not JSON (%s)", d, jerr.text);
    const char *bad = !json_is_object(o) ? "not a JSON object"
                      : !json_member_is(o, "id", dr->id, dr->id_len) ? "its \"id\" is not the id of its stored record"
                      : !json_member_is(o, "title", dr->title, dr->title_len) ? "its \"title\" is not the stored record's"
                      : !json_member_is(o, "url", dr->url, dr->url_len) ? "its \"url\" is not the stored record's"
                      : attrs_differ(w->r, d, o);
    const char *sbad = NULL;
    if (!bad) sbad = docsig_differs(w, d, o, &rc);
    json_decref(o);
    if (bad) return fn_seterr(w->eb, FN_ECORRUPT, "source of doc %u (id \"%s\"): %s", d,
                              IDX_SHOW(dr->id, dr->id_len), bad);
    if (rc) return rc;
    if (sbad) return fn_seterr(w->eb, FN_ECORRUPT, "docsig of doc %u (id \"%s\"): %s", d,
                               IDX_SHOW(dr->id, dr->id_len), sbad);
    return 0;
}

static int walk_docs(walk *w)
{
    const idx_reader_t *r = w->r;
    uint64_t docs = r->info.docs;
    int rc;
    for (uint32_t d = 0; d < docs; d++) {
        w->doc = d;
        idx_doc_rec dr;
        if ((rc = idx_doc_get(r, w->txn, d, &dr, w->eb))) return rc;
        uint32_t d2;
        rc = idx_id_get(r, w->txn, dr.id, dr.id_len, &d2, w->eb);
        if (rc == FN_ENOTFOUND)
            return fn_seterr(w->eb, FN_ECORRUPT, "id \"%s\" (doc %u): not found in ids: the ids "
                             "B-tree is damaged", IDX_SHOW(dr.id, dr.id_len), d);
        if (rc) return rc;
        if (d2 != d)
            return fn_seterr(w->eb, FN_ECORRUPT, "id \"%s\": leads to doc %u, but it is the id of doc %u",
                             IDX_SHOW(dr.id, dr.id_len), d2, d);
        if (r->keys[d] != XXH64(dr.id, dr.id_len, 0))
            return fn_seterr(w->eb, FN_ECORRUPT, "norms: keys[%u] is not xxh64 of doc %u's id \"%s\"", d, d,
                             IDX_SHOW(dr.id, dr.id_len));
        for (int f = 0; f < IDX_NFIELDS; f++) {
            if (r->len[f][d] != w->tfsum[3 * (size_t)d + f])
                return fn_seterr(w->eb, FN_ECORRUPT, "norms: doc %u has %s length %u, but its postings "
                                 "hold %" PRIu64 " %s tokens", d, f ? "body" : "title", r->len[f][d],
                                 w->tfsum[3 * (size_t)d + f], f ? "body" : "title");
            w->vs->normsum[f] += r->len[f][d];
        }
        if ((rc = check_source(w, d, &dr))) return rc;
        /* its term vector: the document's postings, transposed */
        if ((rc = idx_tvec_get(r, w->txn, d, &w->tv, w->eb))) return rc;
        uint64_t mix = 0;
        for (uint32_t e = 0; e < w->tv.n; e++)
            mix += tv_mix(w->tv.termid[e], w->tv.tf[2 * e], w->tv.tf[2 * e + 1]);
        if (mix != w->tfsum[3 * (size_t)d + 2])
            return fn_seterr(w->eb, FN_ECORRUPT, "term vector of doc %u: its %u terms are not the "
                             "document's postings", d, w->tv.n);
    }
    static const char *const dbname[5] = { IDX_DB_DOCS, IDX_DB_SOURCE, IDX_DB_IDS, IDX_DB_TVEC, IDX_DB_DOCSIG };
    const MDB_dbi dbi[5] = { r->docs, r->source, r->ids, r->tvec, r->docsig };
    for (int i = 0; i < 5; i++) {
        MDB_stat ms;
        if ((rc = mdb_stat(w->txn, dbi[i], &ms)))
            return fn_seterr(w->eb, idx_mdb_code(rc), "%s: %s", dbname[i], mdb_strerror(rc));
        if (ms.ms_entries != docs)
            return fn_seterr(w->eb, FN_ECORRUPT, "%s: %zu entries, but meta says %" PRIu64 " docs", dbname[i],
                             ms.ms_entries, docs);
    }
    return 0;
}

static int meta_number(walk *w, const char *key, uint64_t *out)
{
    MDB_val k = { strlen(key), (void *)key }, v;
    int rc = mdb_get(w->txn, w->r->meta, &k, &v);
    if (rc) return fn_seterr(w->eb, rc == MDB_NOTFOUND ? FN_EFORMAT : idx_mdb_code(rc), "meta: %s: %s", key,
                             mdb_strerror(rc));
    char buf[32], *end;
    if (v.mv_size == 0 || v.mv_size >= sizeof buf || !idx_in_map(w->r, v.mv_data, v.mv_size))
        return fn_seterr(w->eb, FN_EFORMAT, "meta: %s: not a number", key);
    memcpy(buf, v.mv_data, v.mv_size);
    buf[v.mv_size] = '\0';
    errno = 0;
    *out = strtoull(buf, &end, 10);
    if (errno || *end || buf[0] == '-') return fn_seterr(w->eb, FN_EFORMAT, "meta: %s: not a number", key);
    return 0;
}

static int walk_meta(walk *w)
{
    const idx_index_info *in = &w->r->info;
    static const char *const key[IDX_NFIELDS] = { "sumlen_title", "sumlen_body" };
    for (int f = 0; f < IDX_NFIELDS; f++) {
        int rc = meta_number(w, key[f], &w->vs->sumlen[f]);
        if (rc) return rc;
        /* the build writes avglen = sumlen / docs_total, %.17g: it reads back exactly */
        double want = in->docs_total ? (double)w->vs->sumlen[f] / (double)in->docs_total : 0.0;
        if (in->avglen[f] != want)
            return fn_seterr(w->eb, FN_ECORRUPT, "meta: avglen_%s %.17g, but sumlen / docs_total = %.17g",
                             f ? "body" : "title", in->avglen[f], want);
    }
    return 0;
}

static int walk_all(walk *w)
{
    int rc;
    w->at = "meta";
    if ((rc = walk_meta(w))) return rc;
    w->at = "terms";
    if ((rc = walk_terms(w))) return rc;
    w->at = "docs";
    if ((rc = walk_docs(w))) return rc;
    /* the ANN graph, whole (a quick open checks only its structure) */
    if (w->r->ann) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", w->r->dir, IDX_ANN_FILE);
        ann_hnsw_t *h = NULL;
        fn_errbuf aeb = { { 0 } };
        rc = ann_hnsw_open(path, w->r->vecs, w->r->info.vec_dim, 0, &h, &aeb);
        ann_hnsw_close(h);
        if (rc) return fn_seterr(w->eb, rc, "%s: %s", IDX_ANN_FILE, aeb.msg[0] ? aeb.msg : fn_strerror(rc));
    }
    return 0;
}

/* walk_all inside a guard; the wrapper keeps no state a jump could lose. */
static int walk_guarded(walk *w)
{
    idx_guard g;
    if (idx_guard_enter(&g, w->r->map, w->r->mapsize) == 0) {
        if (sigsetjmp(g.jb, 0) != 0) {
            if (w->at[0] == 'p')
                return fn_seterr(w->eb, FN_ECORRUPT, "postings of term \"%s\", block %u: %s",
                                 IDX_SHOW(w->term, w->term_len), w->block, idx_guard_what(&g));
            if (w->at[0] == 'd')
                return fn_seterr(w->eb, FN_ECORRUPT, "records of doc %u (docs, ids, source): %s", w->doc,
                                 idx_guard_what(&g));
            return fn_seterr(w->eb, FN_ECORRUPT, "%s: %s", w->at, idx_guard_what(&g));
        }
    }
    int rc = walk_all(w);
    idx_guard_leave(&g);
    return rc;
}

/* ---- one shard ---- */

static int check_shard(vshard *vs)
{
    fn_errbuf eb = { { 0 } }, feb = { { 0 } };
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", vs->dir);
    if (stat(path, &st))
        return errno == ENOENT ? set_problem(vs, FN_ECORRUPT, "data.mdb: missing")
                               : set_problem(vs, -errno, "data.mdb: %s", strerror(errno));
    vs->bytes = (uint64_t)st.st_size;

    int frc = idx_verify_file(vs->dir, &feb);
    if (frc == FN_EFORMAT) {
        /* no checksum file: an index of an older schema says so at open */
        idx_reader_t *old = NULL;
        if (idx_reader_open_ex(vs->dir, IDX_OPEN_QUICK, &old, &eb) == FN_EVERSION)
            return set_problem(vs, FN_EVERSION, "%s", eb.msg);
        idx_reader_close(old);
    }
    if (frc && frc != FN_ECORRUPT) return set_problem(vs, frc, "%s", feb.msg);
    if (frc) {
        /* a file of another size is truncated or grown: nothing to localise */
        uint64_t hash, want;
        fn_errbuf ceb;
        if (idx_checksum_read(vs->dir, &hash, &want, &ceb) != 0 || want != vs->bytes)
            return set_problem(vs, frc, "%s", feb.msg);
    }

    int rc = idx_reader_open_ex(vs->dir, IDX_OPEN_QUICK, &vs->r, &eb);
    if (rc) return set_problem(vs, rc, "%s", eb.msg);
    walk w = { .vs = vs, .r = vs->r, .eb = &eb };
    w.tfsum = calloc(vs->r->info.docs ? 3 * vs->r->info.docs : 1, sizeof *w.tfsum);
    if (!w.tfsum) return set_problem(vs, -ENOMEM, "out of memory");
    if ((rc = mdb_txn_begin(vs->r->env, NULL, MDB_RDONLY, &w.txn)) == 0) {
        rc = walk_guarded(&w);
        if (w.cur) mdb_cursor_close(w.cur);
        mdb_txn_abort(w.txn);
    } else {
        rc = fn_seterr(&eb, idx_mdb_code(rc), "txn: %s", mdb_strerror(rc));
    }
    free(w.tfsum);
    idx_tvec_free(&w.tv);
    free(w.pos);
    idx_srcbuf_free(&w.src);
    if (rc) return set_problem(vs, rc, "%s", eb.msg);
    if (frc)
        return set_problem(vs, frc, "%s; every stored value checks out, so the damage is in space no "
                           "value uses (free pages, page padding, page headers)", feb.msg);
    return 0;
}

static void report_shard(const vshard *vs, idx_verify_cb cb, void *ud)
{
    if (!cb) return;
    char line[1400], size[32];
    idx_verify_report rep = { .name = vs->name, .rc = vs->rc, .problem = vs->rc ? vs->problem.msg : "",
                              .line = line, .shards = 1, .damaged = vs->rc != 0, .bytes = vs->bytes };
    if (vs->rc) {
        /* damage, or a shard this build cannot read at all (an older schema, no permission) */
        snprintf(line, sizeof line, "%s: %s: %s", vs->name, idx_is_damage(vs->rc) ? "DAMAGED" : "UNREADABLE",
                 vs->problem.msg);
    } else {
        rep.docs = vs->r->info.docs;
        rep.terms = vs->r->info.terms;
        rep.postings = vs->postings;
        fn_format_bytes(vs->bytes, size, sizeof size);
        snprintf(line, sizeof line, "%s: ok (%" PRIu64 " docs, %" PRIu64 " terms, %" PRIu64 " postings, %s, "
                 "checksum ok)", vs->name, rep.docs, rep.terms, rep.postings, size);
    }
    cb(ud, &rep);
}

/* ---- the whole index ---- */

typedef struct merge {
    vshard *vs;
    uint32_t n;
    int all;                  /* every shard checked out: sums must match exactly */
    MDB_txn **txn;
    MDB_cursor **cur;
    MDB_val *k, *v;
    int *live;
    uint64_t terms, postings;
    fn_errbuf *eb;
} merge;

static int merge_terms(merge *m)
{
    int rc;
    for (uint32_t i = 0; i < m->n; i++) {
        if (!m->vs[i].r) continue;
        if ((rc = mdb_txn_begin(m->vs[i].r->env, NULL, MDB_RDONLY, &m->txn[i])) ||
            (rc = mdb_cursor_open(m->txn[i], m->vs[i].r->terms, &m->cur[i])))
            return fn_seterr(m->eb, idx_mdb_code(rc), "%s: terms: %s", m->vs[i].name, mdb_strerror(rc));
        rc = mdb_cursor_get(m->cur[i], &m->k[i], &m->v[i], MDB_FIRST);
        if (rc && rc != MDB_NOTFOUND)
            return fn_seterr(m->eb, idx_mdb_code(rc), "%s: terms: %s", m->vs[i].name, mdb_strerror(rc));
        m->live[i] = rc == 0;
    }
    for (;;) {
        const MDB_val *min = NULL;
        for (uint32_t i = 0; i < m->n; i++)
            if (m->live[i] && (!min || idx_key_cmp(m->k[i].mv_data, m->k[i].mv_size, min->mv_data, min->mv_size) < 0))
                min = &m->k[i];
        if (!min) break;
        MDB_val term = *min;   /* stays valid: every txn is open until the end */
        uint64_t sumdf = 0, gcf[IDX_NFIELDS] = { 0, 0 };
        uint32_t gdf = 0, first = UINT32_MAX, have = 0;
        for (uint32_t i = 0; i < m->n; i++) {
            if (!m->live[i] || idx_key_cmp(m->k[i].mv_data, m->k[i].mv_size, term.mv_data, term.mv_size) != 0)
                continue;
            idx_term_rec tr;
            if ((rc = idx_term_decode(m->vs[i].r, term.mv_data, term.mv_size, &m->v[i], &tr, m->eb)))
                return rc;
            have++;
            if (first == UINT32_MAX) {
                first = i;
                gdf = tr.gdf;
                gcf[0] = tr.gcf[0];
                gcf[1] = tr.gcf[1];
            } else if (tr.gcf[0] != gcf[0] || tr.gcf[1] != gcf[1]) {
                return fn_seterr(m->eb, FN_ECORRUPT, "term \"%s\": collection frequencies differ between "
                                 "%s and %s", IDX_SHOW(term.mv_data, term.mv_size), m->vs[first].name,
                                 m->vs[i].name);
            } else if (tr.gdf != gdf) {
                return fn_seterr(m->eb, FN_ECORRUPT, "term \"%s\": gdf %u on %s, but %u on %s",
                                 IDX_SHOW(term.mv_data, term.mv_size), gdf, m->vs[first].name, tr.gdf,
                                 m->vs[i].name);
            }
            sumdf += tr.df;
            rc = mdb_cursor_get(m->cur[i], &m->k[i], &m->v[i], MDB_NEXT);
            if (rc && rc != MDB_NOTFOUND)
                return fn_seterr(m->eb, idx_mdb_code(rc), "%s: terms: %s", m->vs[i].name, mdb_strerror(rc));
            m->live[i] = rc == 0;
        }
        /* every shard has every term (format.h), with or without postings */
        if (m->all && have != m->n)
            return fn_seterr(m->eb, FN_ECORRUPT, "term \"%s\": on %u of the %u shards; every shard has "
                             "every term", IDX_SHOW(term.mv_data, term.mv_size), have, m->n);
        if (m->all ? sumdf != gdf : sumdf > gdf)
            return fn_seterr(m->eb, FN_ECORRUPT, "term \"%s\": gdf %u, but the shards' df add up to %" PRIu64,
                             IDX_SHOW(term.mv_data, term.mv_size), gdf, sumdf);
        m->terms++;
        m->postings += sumdf;
    }
    return 0;
}

static int merge_guarded(merge *m, uint32_t i);

/* One frame of merge_guarded: shard i's guard (i is not changed after the
 * sigsetjmp, so no register copy of it can be clobbered by the jump). */
static int merge_guarded_at(merge *m, const uint32_t i)
{
    idx_guard g;
    if (idx_guard_enter(&g, m->vs[i].r->map, m->vs[i].r->mapsize) == 0) {
        if (sigsetjmp(g.jb, 0) != 0)
            return fn_seterr(m->eb, FN_ECORRUPT, "%s: data.mdb: %s", m->vs[i].name, idx_guard_what(&g));
    }
    int rc = merge_guarded(m, i + 1);
    idx_guard_leave(&g);
    return rc;
}

/* merge_terms inside one guard per shard's map (nested: a frame each). */
static int merge_guarded(merge *m, uint32_t i)
{
    while (i < m->n && !m->vs[i].r) i++;
    if (i == m->n) return merge_terms(m);
    return merge_guarded_at(m, i);
}

/* The checks across shards, over those that checked out. */
static int check_global(vshard *vs, uint32_t n, uint32_t damaged, json_t *ij, merge *m, fn_errbuf *eb)
{
    m->eb = eb;
    const idx_index_info *ref = NULL;
    uint32_t refi = 0;
    uint64_t docs = 0, normsum[IDX_NFIELDS] = { 0, 0 };
    for (uint32_t i = 0; i < n; i++) {
        if (!vs[i].r) continue;
        const idx_index_info *in = &vs[i].r->info;
        docs += in->docs;
        for (int f = 0; f < IDX_NFIELDS; f++) normsum[f] += vs[i].normsum[f];
        if (!ref) {
            ref = in;
            refi = i;
            continue;
        }
        const char *what = in->docs_total != ref->docs_total ? "docs_total"
                           : vs[i].sumlen[0] != vs[refi].sumlen[0] ? "sumlen_title"
                           : vs[i].sumlen[1] != vs[refi].sumlen[1] ? "sumlen_body"
                           : in->avglen[0] != ref->avglen[0] ? "avglen_title"
                           : in->avglen[1] != ref->avglen[1] ? "avglen_body"
                           : strcmp(in->analyzer, ref->analyzer) ? "analyzer"
                           : strcmp(in->codec, ref->codec) ? "codec"
                           : vs[i].r->block_size != vs[refi].r->block_size ? "block_size" : NULL;
        if (what)
            return fn_seterr(eb, FN_ECORRUPT, "meta: %s differs between %s and %s", what, vs[refi].name,
                             vs[i].name);
    }
    if (!ref) return 0;
    json_t *jd = json_object_get(ij, "docs");
    if (json_is_integer(jd) && (uint64_t)json_integer_value(jd) != ref->docs_total)
        return fn_seterr(eb, FN_ECORRUPT, "index.json says %" JSON_INTEGER_FORMAT " docs, the shards' meta %"
                         PRIu64, json_integer_value(jd), ref->docs_total);
    if (!damaged) {
        if (docs != ref->docs_total)
            return fn_seterr(eb, FN_ECORRUPT, "the shards hold %" PRIu64 " docs, but docs_total is %" PRIu64,
                             docs, ref->docs_total);
        for (int f = 0; f < IDX_NFIELDS; f++)
            if (normsum[f] != vs[refi].sumlen[f])
                return fn_seterr(eb, FN_ECORRUPT, "the shards' %s norms add up to %" PRIu64 ", but sumlen_%s "
                                 "is %" PRIu64, f ? "body" : "title", normsum[f], f ? "body" : "title",
                                 vs[refi].sumlen[f]);
    }
    int rc = merge_guarded(m, 0);
    for (uint32_t i = 0; i < n; i++) {
        if (m->cur[i]) mdb_cursor_close(m->cur[i]);
        if (m->txn[i]) mdb_txn_abort(m->txn[i]);
    }
    if (rc) return rc;
    if (!damaged) {
        json_t *jt = json_object_get(ij, "terms"), *jp = json_object_get(ij, "postings");
        if (json_is_integer(jt) && (uint64_t)json_integer_value(jt) != m->terms)
            return fn_seterr(eb, FN_ECORRUPT, "index.json says %" JSON_INTEGER_FORMAT " terms, the shards "
                             "hold %" PRIu64, json_integer_value(jt), m->terms);
        if (json_is_integer(jp) && (uint64_t)json_integer_value(jp) != m->postings)
            return fn_seterr(eb, FN_ECORRUPT, "index.json says %" JSON_INTEGER_FORMAT " postings, the shards "
                             "hold %" PRIu64, json_integer_value(jp), m->postings);
    }
    return 0;
}

static int verify_index(const char *dir, json_t *ij, uint32_t n, idx_verify_cb cb, void *ud, fn_errbuf *eb)
{
    vshard *vs = calloc(n, sizeof *vs);
    merge m = { .vs = vs, .n = n, .eb = eb };
    m.txn = calloc(n, sizeof *m.txn);
    m.cur = calloc(n, sizeof *m.cur);
    m.k = calloc(n, sizeof *m.k);
    m.v = calloc(n, sizeof *m.v);
    m.live = calloc(n, sizeof *m.live);
    int rc = 0;
    if (!vs || !m.txn || !m.cur || !m.k || !m.v || !m.live) {
        rc = fn_seterr(eb, -ENOMEM, "out of memory");
        goto out;
    }
    uint32_t damaged = 0, unreadable = 0;
    char first[800] = "";
    for (uint32_t i = 0; i < n; i++) {
        vshard *s = &vs[i];
        snprintf(s->name, sizeof s->name, "shard-%03u", i);
        snprintf(s->dir, sizeof s->dir, "%s/%s", dir, s->name);
        struct stat st;
        if (stat(s->dir, &st) || !S_ISDIR(st.st_mode)) {
            set_problem(s, FN_ECORRUPT, "missing: index.json names %u shards", n);
        } else if (check_shard(s) == 0) {
            const idx_index_info *in = &s->r->info;
            if (in->shard != i || in->shards != n)
                set_problem(s, FN_ECORRUPT, "meta says shard %u of %u, but it is shard %u of %u in this index "
                            "(a shard of another index?)", in->shard, in->shards, i, n);
        }
        if (s->rc) {
            if (!damaged++) snprintf(first, sizeof first, "%s: %s", s->name, s->problem.msg);
            if (!idx_is_damage(s->rc) && !unreadable++) rc = s->rc;
            idx_reader_close(s->r);
            s->r = NULL;
        }
        report_shard(s, cb, ud);
    }
    m.all = damaged == 0;
    fn_errbuf geb = { { 0 } };
    int grc = check_global(vs, n, damaged, ij, &m, &geb);
    uint64_t docs = 0, bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        bytes += vs[i].bytes;
        if (vs[i].r) docs += vs[i].r->info.docs;
    }
    char line[1400], gmsg[600];
    if (grc) snprintf(gmsg, sizeof gmsg, "global statistics inconsistent: %s", geb.msg);
    if (!damaged && !grc) {
        snprintf(line, sizeof line, "index: ok (%u shard%s, %" PRIu64 " docs, global statistics consistent)", n,
                 n == 1 ? "" : "s", docs);
    } else if (damaged) {
        /* "damaged" counts every shard that is not ok; UNREADABLE only when none is damaged */
        int only_unreadable = unreadable == damaged && !grc;
        snprintf(line, sizeof line, "index: %s (%u of %u shard%s%s%s)", only_unreadable ? "UNREADABLE" : "DAMAGED",
                 damaged, n, n == 1 ? "" : "s", grc ? "; " : "", grc ? gmsg : "");
        rc = fn_seterr(eb, only_unreadable ? rc : FN_ECORRUPT, "%s", first);
    } else {
        snprintf(line, sizeof line, "index: DAMAGED (%s)", gmsg);
        rc = fn_seterr(eb, FN_ECORRUPT, "%s", gmsg);
    }
    if (cb) {
        idx_verify_report rep = { .summary = 1, .name = "index", .rc = rc, .problem = rc ? eb->msg : "",
                                  .line = line, .shards = n, .damaged = damaged, .docs = docs,
                                  .terms = m.terms, .postings = m.postings, .bytes = bytes };
        cb(ud, &rep);
    }
out:
    for (uint32_t i = 0; vs && i < n; i++) idx_reader_close(vs[i].r);
    free(vs);
    free(m.txn);
    free(m.cur);
    free(m.k);
    free(m.v);
    free(m.live);
    return rc;
}

int idx_verify(const char *path, idx_verify_cb cb, void *ud, fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    char p[4200];
    struct stat st;
    if (stat(path, &st)) return fn_seterr(eb, -errno, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return fn_seterr(eb, FN_EINVAL, "%s: not a directory", path);
    if (strlen(path) > 3800) return fn_seterr(eb, FN_EINVAL, "%s: path too long", path);

    snprintf(p, sizeof p, "%s/index.json", path);
    if (stat(p, &st) == 0) {
        json_error_t jerr;
        json_t *ij = json_load_file(p, 0, &jerr);
        if (!ij) return fn_seterr(eb, FN_EFORMAT, "%s: %s", p, jerr.text);
        json_t *js = json_object_get(ij, "shards");
        json_int_t n = json_is_integer(js) ? json_integer_value(js) : 0;
        int rc;
        if (n < 1 || n > MAX_SHARDS)
            rc = fn_seterr(eb, FN_EFORMAT, "%s: no valid \"shards\" (1..%d)", p, MAX_SHARDS);
        else
            rc = verify_index(path, ij, (uint32_t)n, cb, ud, eb);
        json_decref(ij);
        return rc;
    }
    snprintf(p, sizeof p, "%s/data.mdb", path);
    if (stat(p, &st) == 0) {
        vshard *vs = calloc(1, sizeof *vs);
        if (!vs) return fn_seterr(eb, -ENOMEM, "out of memory");
        snprintf(vs->dir, sizeof vs->dir, "%s", path);
        size_t len = strlen(vs->dir);
        while (len > 1 && vs->dir[len - 1] == '/') vs->dir[--len] = '\0';
        const char *base = strrchr(vs->dir, '/');
        snprintf(vs->name, sizeof vs->name, "%.255s", base ? base + 1 : vs->dir);
        check_shard(vs);
        report_shard(vs, cb, ud);
        int rc = !vs->rc ? 0 : fn_seterr(eb, idx_is_damage(vs->rc) ? FN_ECORRUPT : vs->rc, "%s: %s", vs->name,
                                         vs->problem.msg);
        idx_reader_close(vs->r);
        free(vs);
        return rc;
    }
    snprintf(p, sizeof p, "%s/shard-000", path);
    if (stat(p, &st) == 0)
        return fn_seterr(eb, FN_EFORMAT, "%s: no index.json: not a published index (an unfinished build?)", path);
    return fn_seterr(eb, -ENOENT, "%s: neither an index (index.json) nor a shard directory (data.mdb)", path);
}
