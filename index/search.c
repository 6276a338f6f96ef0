/* search.c - shard reader, postings cursors, BM25F and exhaustive DAAT top-k (search.h).
 *
 * Memory safety of LMDB pointers: the reader copies the norms arrays (16
 * bytes a document) into malloc'd memory at open, so they outlive the open
 * transaction. Everything else (term records, posting blocks, stored
 * documents) is read inside the searcher's per-query read transaction and
 * decoded or copied before that transaction is reset.
 */
#include "search.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <lmdb.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "analyzer.h"
#include "codec.h"
#include "format.h"

struct idx_reader {
    MDB_env *env;
    MDB_dbi meta, terms, postings, docs, ids, norms;
    idx_index_info info;
    const idx_codec_t *codec;
    uint32_t block_size;
    uint32_t *len[IDX_NFIELDS];   /* copies of the norms */
    uint64_t *keys;
};

/* Chosen with tests/bench/bm25_grid over cranfield, npl and cisi (one set for
 * all three, docs/evaluation.md): the centre of the plateau k1 1.0-1.4,
 * b_body 0.6; the title parameters hardly matter there (npl has no titles,
 * cranfield's body repeats its title). */
void idx_bm25_defaults(idx_bm25_params *p)
{
    p->k1 = 1.2;
    p->b[IDX_FIELD_TITLE] = 0.75;
    p->b[IDX_FIELD_BODY] = 0.6;
    p->w[IDX_FIELD_TITLE] = 2.0;
    p->w[IDX_FIELD_BODY] = 1.0;
}

/* LMDB reports system errors as positive errno values. */
static int mdb_code(int rc) { return rc > 0 ? -rc : rc; }

/* ---- reader ---- */

static int meta_get(MDB_txn *txn, MDB_dbi dbi, const char *key, char *buf, size_t cap)
{
    MDB_val k = { strlen(key), (void *)key }, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc) return rc == MDB_NOTFOUND ? FN_EFORMAT : mdb_code(rc);
    if (v.mv_size >= cap) return FN_EFORMAT;
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
    if (errno || end == buf || *end) return FN_EFORMAT;
    *out = v;
    return 0;
}

static int meta_double(MDB_txn *txn, MDB_dbi dbi, const char *key, double *out)
{
    char buf[64], *end;
    int rc = meta_get(txn, dbi, key, buf, sizeof buf);
    if (rc) return rc;
    *out = strtod(buf, &end);
    if (end == buf || *end) return FN_EFORMAT;
    return 0;
}

static int load_norm(MDB_txn *txn, MDB_dbi dbi, const char *key, size_t width, uint64_t n, void **out)
{
    MDB_val k = { strlen(key), (void *)key }, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc) return rc == MDB_NOTFOUND ? FN_EFORMAT : mdb_code(rc);
    if (v.mv_size != n * width) return FN_EFORMAT;
    void *a = malloc(n ? n * width : 1);
    if (!a) return -ENOMEM;
    const uint8_t *p = v.mv_data;
    for (uint64_t i = 0; i < n; i++) {
        if (width == 4) ((uint32_t *)a)[i] = idx_get_u32le(p + 4 * i);
        else ((uint64_t *)a)[i] = idx_get_u64le(p + 8 * i);
    }
    *out = a;
    return 0;
}

int idx_reader_open(const char *dir, idx_reader_t **out, fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    *out = NULL;
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (stat(path, &st)) return fn_seterr(eb, -ENOENT, "%s: no index here", dir);

    idx_reader_t *r = calloc(1, sizeof *r);
    if (!r) return -ENOMEM;
    int rc;
    MDB_txn *txn = NULL;
    const char *what = "open";
    if ((rc = mdb_env_create(&r->env))) goto fail;
    if ((rc = mdb_env_set_maxdbs(r->env, IDX_MAX_DBS)) ||
        /* only what the file holds: LMDB grows it to the used size, and a
         * small mapping keeps readers valgrind-friendly */
        (rc = mdb_env_set_mapsize(r->env, (size_t)st.st_size)) ||
        (rc = mdb_env_open(r->env, dir, MDB_RDONLY | MDB_NOTLS, 0644)))
        goto fail_env;
    if ((rc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &txn))) goto fail_env;
    what = "missing database";
    if ((rc = mdb_dbi_open(txn, IDX_DB_META, 0, &r->meta)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_TERMS, 0, &r->terms)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_POSTINGS, 0, &r->postings)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_DOCS, 0, &r->docs)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_IDS, 0, &r->ids)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_NORMS, 0, &r->norms))) {
        if (rc == MDB_NOTFOUND) rc = FN_EFORMAT;
        goto fail_txn;
    }

    idx_index_info *in = &r->info;
    uint64_t v;
    what = "meta schema";
    if ((rc = meta_u64(txn, r->meta, "schema", &v))) goto fail_txn;
    if (v != IDX_SCHEMA_VERSION) {
        rc = fn_seterr(eb, FN_EVERSION, "%s: index schema %" PRIu64 ", this build reads %d", dir, v, IDX_SCHEMA_VERSION);
        goto fail_txn_msg;
    }
    in->schema = (uint32_t)v;
    what = "meta";
    if ((rc = meta_u64(txn, r->meta, "shard", &v))) goto fail_txn;
    in->shard = (uint32_t)v;
    if ((rc = meta_u64(txn, r->meta, "shards", &v))) goto fail_txn;
    in->shards = (uint32_t)v;
    if ((rc = meta_u64(txn, r->meta, "docs", &in->docs)) ||
        (rc = meta_u64(txn, r->meta, "docs_total", &in->docs_total)) ||
        (rc = meta_u64(txn, r->meta, "terms", &in->terms)) ||
        (rc = meta_double(txn, r->meta, "avglen_title", &in->avglen[IDX_FIELD_TITLE])) ||
        (rc = meta_double(txn, r->meta, "avglen_body", &in->avglen[IDX_FIELD_BODY])) ||
        (rc = meta_get(txn, r->meta, "analyzer", in->analyzer, sizeof in->analyzer)) ||
        (rc = meta_get(txn, r->meta, "codec", in->codec, sizeof in->codec)) ||
        (rc = meta_u64(txn, r->meta, "block_size", &v)))
        goto fail_txn;
    if (in->docs > UINT32_MAX || in->docs > in->docs_total || v == 0 || v > IDX_BLOCK_SIZE) {
        rc = FN_EFORMAT;
        goto fail_txn;
    }
    r->block_size = (uint32_t)v;
    if (!(r->codec = idx_codec_find(in->codec))) {
        rc = fn_seterr(eb, FN_EFORMAT, "%s: unknown postings codec \"%s\"", dir, in->codec);
        goto fail_txn_msg;
    }
    what = "norms";
    if ((rc = load_norm(txn, r->norms, "title", 4, in->docs, (void **)&r->len[IDX_FIELD_TITLE])) ||
        (rc = load_norm(txn, r->norms, "body", 4, in->docs, (void **)&r->len[IDX_FIELD_BODY])) ||
        (rc = load_norm(txn, r->norms, "keys", 8, in->docs, (void **)&r->keys)))
        goto fail_txn;
    /* committing a read txn keeps the dbi handles open for later txns */
    if ((rc = mdb_txn_commit(txn))) { txn = NULL; goto fail_env; }
    *out = r;
    return 0;

fail_txn:
    rc = mdb_code(rc);
    fn_seterr(eb, rc, "%s: %s: %s", dir, what, fn_strerror(rc));
fail_txn_msg:
    mdb_txn_abort(txn);
    idx_reader_close(r);
    return rc;
fail_env:
    rc = mdb_code(rc);
    fn_seterr(eb, rc, "%s: %s: %s", dir, what, fn_strerror(rc));
    idx_reader_close(r);
    return rc;
fail:
    free(r);
    rc = mdb_code(rc);
    return fn_seterr(eb, rc, "%s: %s", dir, fn_strerror(rc));
}

void idx_reader_close(idx_reader_t *r)
{
    if (!r) return;
    if (r->env) mdb_env_close(r->env);
    free(r->len[0]);
    free(r->len[1]);
    free(r->keys);
    free(r);
}

const idx_index_info *idx_reader_info(const idx_reader_t *r) { return &r->info; }

int idx_reader_get_doc(idx_reader_t *r, const char *id, char **json, fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    *json = NULL;
    MDB_txn *txn;
    int rc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &txn);
    if (rc) return fn_seterr(eb, mdb_code(rc), "txn: %s", mdb_strerror(rc));
    MDB_val k = { strlen(id), (void *)id }, v;
    rc = mdb_get(txn, r->ids, &k, &v);
    if (rc == MDB_NOTFOUND) { rc = fn_seterr(eb, FN_ENOTFOUND, "no document with id \"%.200s\"", id); goto out; }
    if (rc) { rc = fn_seterr(eb, mdb_code(rc), "ids: %s", mdb_strerror(rc)); goto out; }
    if (v.mv_size != 4) { rc = fn_seterr(eb, FN_EFORMAT, "ids: bad value"); goto out; }
    uint8_t dk[4];
    idx_put_u32be(dk, idx_get_u32le(v.mv_data));
    k = (MDB_val){ 4, dk };
    rc = mdb_get(txn, r->docs, &k, &v);
    if (rc) { rc = fn_seterr(eb, rc == MDB_NOTFOUND ? FN_EFORMAT : mdb_code(rc), "docs: %s", mdb_strerror(rc)); goto out; }
    char *s = malloc(v.mv_size + 1);
    if (!s) { rc = -ENOMEM; goto out; }
    memcpy(s, v.mv_data, v.mv_size);
    s[v.mv_size] = '\0';
    *json = s;
out:
    mdb_txn_abort(txn);
    return rc;
}

/* ---- searcher ---- */

typedef struct cursor {
    uint32_t termid, nblocks, block;
    uint32_t pos, n;
    uint32_t doc;          /* current document; valid unless done */
    int done;
    uint32_t docs[IDX_BLOCK_SIZE];
    uint32_t tf[IDX_NFIELDS][IDX_BLOCK_SIZE];
} cursor;

typedef struct qterm {
    size_t off;            /* into tbuf */
    uint32_t len, qw;
    uint64_t gdf;
    double idf;
    int found;
} qterm;

typedef struct hent { double score; uint64_t key; uint32_t doc, slot; } hent;

struct idx_searcher {
    idx_reader_t *r;
    idx_analyzer_t *an;
    MDB_txn *txn;            /* reset between queries */
    char *tbuf; size_t tlen, tcap;
    qterm *qt; size_t nq, qcap;
    const char **tptr; size_t tptrcap;
    cursor *cur; size_t curcap;
    hent *heap; size_t hcap;
    uint32_t *htf;           /* explain: per heap slot nq*2 tfs */
    uint32_t *scratch_tf; size_t stfcap;
    idx_hit *hits; size_t hitcap;
    idx_term_explain *expl; size_t explcap;
    char *sbuf; size_t slen, scap;
    int oom;
};

int idx_searcher_create(idx_reader_t *r, idx_searcher_t **out, fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    *out = NULL;
    idx_searcher_t *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    s->r = r;
    idx_analyzer_opts ao;
    char storage[512];
    int rc = idx_analyzer_opts_parse(r->info.analyzer, &ao, storage, sizeof storage);
    if (rc) { rc = fn_seterr(eb, FN_EFORMAT, "bad analyzer description \"%s\"", r->info.analyzer); goto fail; }
    if ((rc = idx_analyzer_create(&ao, &s->an, eb))) goto fail;
    if ((rc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &s->txn))) {
        rc = fn_seterr(eb, mdb_code(rc), "txn: %s", mdb_strerror(rc));
        goto fail_an;
    }
    mdb_txn_reset(s->txn);
    *out = s;
    return 0;
fail_an:
    idx_analyzer_destroy(s->an);
fail:
    free(s);
    return rc;
}

void idx_searcher_destroy(idx_searcher_t *s)
{
    if (!s) return;
    if (s->txn) mdb_txn_abort(s->txn);
    idx_analyzer_destroy(s->an);
    free(s->tbuf);
    free(s->qt);
    free(s->tptr);
    free(s->cur);
    free(s->heap);
    free(s->htf);
    free(s->scratch_tf);
    free(s->hits);
    free(s->expl);
    free(s->sbuf);
    free(s);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2;
    void *n = realloc(*p, nc * elem);
    if (!n) return -ENOMEM;
    *p = n;
    *cap = nc;
    return 0;
}

/* Query analysis: distinct terms in first-occurrence order, qw = count. */
static int qtok_cb(void *ud, const char *term, size_t len, uint32_t pos)
{
    (void)pos;
    idx_searcher_t *s = ud;
    if (len == 0 || len > IDX_MAX_TERM_BYTES) return 0;
    for (size_t i = 0; i < s->nq; i++)
        if (s->qt[i].len == len && memcmp(s->tbuf + s->qt[i].off, term, len) == 0) {
            s->qt[i].qw++;
            return 0;
        }
    if (grow((void **)&s->qt, &s->qcap, s->nq + 1, sizeof *s->qt) ||
        grow((void **)&s->tbuf, &s->tcap, s->tlen + len + 1, 1))
        return -ENOMEM;
    memcpy(s->tbuf + s->tlen, term, len);
    s->tbuf[s->tlen + len] = '\0';
    s->qt[s->nq++] = (qterm){ .off = s->tlen, .len = (uint32_t)len, .qw = 1 };
    s->tlen += len + 1;
    return 0;
}

static int load_block(idx_searcher_t *s, cursor *c)
{
    const idx_reader_t *r = s->r;
    uint8_t key[8];
    idx_put_u32be(key, c->termid);
    idx_put_u32be(key + 4, c->block);
    MDB_val k = { 8, key }, v;
    int rc = mdb_get(s->txn, r->postings, &k, &v);
    if (rc) return rc == MDB_NOTFOUND ? FN_EFORMAT : mdb_code(rc);
    if (v.mv_size < 12) return FN_EFORMAT;
    const uint8_t *p = v.mv_data;
    uint32_t n = idx_get_u32le(p), first = idx_get_u32le(p + 4), last = idx_get_u32le(p + 8);
    if (n == 0 || n > r->block_size) return FN_EFORMAT;
    size_t off = 12, used;
    uint32_t *dst[3] = { c->docs, c->tf[0], c->tf[1] };
    for (int a = 0; a < 3; a++) {
        used = r->codec->decode(p + off, v.mv_size - off, n, dst[a]);
        if (!used) return FN_EFORMAT;
        off += used;
    }
    uint32_t d = first;
    for (uint32_t i = 0; i < n; i++) {
        d += c->docs[i];
        c->docs[i] = d;
    }
    if (d != last || last >= r->info.docs) return FN_EFORMAT;
    c->n = n;
    c->pos = 0;
    c->doc = c->docs[0];
    return 0;
}

static int cursor_next(idx_searcher_t *s, cursor *c)
{
    if (++c->pos < c->n) {
        c->doc = c->docs[c->pos];
        return 0;
    }
    if (++c->block >= c->nblocks) {
        c->done = 1;
        return 0;
    }
    return load_block(s, c);
}

/* BM25F share of one term for document d (search.h). Used by both scoring and
 * explain so that explain's contributions add up to the score exactly. */
static inline double term_score(const idx_reader_t *r, const idx_bm25_params *p, double qidf,
                                uint32_t d, const uint32_t tf[IDX_NFIELDS])
{
    double tfn = 0.0;
    for (int f = 0; f < IDX_NFIELDS; f++) {
        if (!tf[f]) continue;
        double norm = 1.0 - p->b[f] + p->b[f] * (double)r->len[f][d] / r->info.avglen[f];
        tfn += p->w[f] * (double)tf[f] / norm;
    }
    if (tfn <= 0.0) return 0.0;
    return qidf * tfn * (p->k1 + 1.0) / (p->k1 + tfn);
}

/* a ranks before b: score descending, then key ascending */
static inline int better(const hent *a, const hent *b)
{
    return a->score > b->score || (a->score == b->score && (a->key < b->key || (a->key == b->key && a->doc < b->doc)));
}

/* min-heap with the worst entry at the root */
static void sift_down(hent *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, w = i;
        if (l < n && better(&h[w], &h[l])) w = l;
        if (l + 1 < n && better(&h[w], &h[l + 1])) w = l + 1;
        if (w == i) return;
        hent t = h[i]; h[i] = h[w]; h[w] = t;
        i = w;
    }
}

static void sift_up(hent *h, size_t i)
{
    while (i) {
        size_t p = (i - 1) / 2;
        if (!better(&h[p], &h[i])) return;
        hent t = h[i]; h[i] = h[p]; h[p] = t;
        i = p;
    }
}

static int hent_cmp(const void *a, const void *b)
{
    const hent *x = a, *y = b;
    return better(x, y) ? -1 : better(y, x) ? 1 : 0;
}

/* Append a NUL-terminated copy to sbuf; returns its offset or (size_t)-1. */
static size_t sbuf_add(idx_searcher_t *s, const char *str)
{
    size_t len = strlen(str);
    if (grow((void **)&s->sbuf, &s->scap, s->slen + len + 1, 1)) return (size_t)-1;
    size_t off = s->slen;
    memcpy(s->sbuf + off, str, len + 1);
    s->slen += len + 1;
    return off;
}

static const char *jstr(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    return json_is_string(v) ? json_string_value(v) : "";
}

static int sbuf_append(idx_searcher_t *s, const char *p, size_t n)
{
    if (grow((void **)&s->sbuf, &s->scap, s->slen + n, 1)) return -1;
    memcpy(s->sbuf + s->slen, p, n);
    s->slen += n;
    return 0;
}

static const char *skip_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* p is at a string's opening quote: returns the position after the closing
 * one, or NULL (malformed, \u escape, no memory). With out, the decoded
 * string is appended to sbuf, NUL-terminated, and its offset put in *out. */
static const char *scan_str(idx_searcher_t *s, const char *p, const char *e, size_t *out)
{
    const char *run = ++p;
    if (out) *out = s->slen;
    for (; p < e; p++) {
        if (*p == '"') {
            if (out && (sbuf_append(s, run, (size_t)(p - run)) || sbuf_append(s, "", 1))) return NULL;
            return p + 1;
        }
        if (*p != '\\') continue;
        if (p + 1 >= e) return NULL;
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *hit = strchr(from, p[1]);
        if (!p[1] || !hit) return NULL;     /* \uXXXX: left to jansson */
        if (out && (sbuf_append(s, run, (size_t)(p - run)) || sbuf_append(s, to + (hit - from), 1))) return NULL;
        run = ++p + 1;
    }
    return NULL;
}

/* Skip one JSON value of any kind; NULL if malformed. */
static const char *skip_value(idx_searcher_t *s, const char *p, const char *e)
{
    int depth = 0;
    while (p < e) {
        char c = *p;
        if (c == '"') {
            if (!(p = scan_str(s, p, e, NULL))) return NULL;
        } else if (c == '{' || c == '[') {
            depth++;
            p++;
        } else if (c == '}' || c == ']') {
            if (depth == 0) return p;
            depth--;
            p++;
        } else if (c == ',' && depth == 0) {
            return p;
        } else {
            p++;
        }
        if (depth == 0 && (c == '"' || c == '}' || c == ']')) return p;
    }
    return NULL;
}

/* Fast path for the compact JSON the builder stores: pick the top-level
 * string members id, title and url without building a tree (parsing whole
 * documents with jansson dominated a k=1000 search). Returns 1 on success,
 * 0 when the text is anything unusual (then the caller uses jansson). */
static int scan_fields(idx_searcher_t *s, const char *p, size_t n, size_t off[3])
{
    static const char *const names[3] = { "id", "title", "url" };
    const char *e = p + n;
    p = skip_ws(p, e);
    if (p >= e || *p++ != '{') return 0;
    for (;;) {
        p = skip_ws(p, e);
        if (p < e && *p == '}') break;
        if (p >= e || *p != '"') return 0;
        const char *k = p + 1, *ke = scan_str(s, p, e, NULL);
        if (!ke) return 0;
        size_t klen = (size_t)(ke - 1 - k);
        int want = -1;
        for (int i = 0; i < 3; i++)
            if (strlen(names[i]) == klen && memcmp(names[i], k, klen) == 0) want = i;
        p = skip_ws(ke, e);
        if (p >= e || *p++ != ':') return 0;
        p = skip_ws(p, e);
        if (p >= e) return 0;
        if (want >= 0 && off[want] != (size_t)-1) return 0;   /* duplicate key */
        if (want >= 0 && *p == '"') p = scan_str(s, p, e, &off[want]);
        else p = skip_value(s, p, e);
        if (!p) return 0;
        p = skip_ws(p, e);
        if (p < e && *p == ',') { p++; continue; }
        if (p < e && *p == '}') break;
        return 0;
    }
    for (int i = 0; i < 3; i++)
        if (off[i] == (size_t)-1 && (off[i] = sbuf_add(s, "")) == (size_t)-1) return -1;
    return 1;
}

/* Offsets in sbuf of a stored document's id, title and url ("" if absent or
 * not a string). */
static int stored_fields(idx_searcher_t *s, const void *data, size_t n, size_t off[3])
{
    size_t mark = s->slen;
    off[0] = off[1] = off[2] = (size_t)-1;
    int ok = scan_fields(s, data, n, off);
    if (ok < 0) return -ENOMEM;
    if (ok) return 0;
    s->slen = mark;
    json_error_t jerr;
    json_t *o = json_loadb(data, n, 0, &jerr);
    if (!o) return FN_EFORMAT;
    off[0] = sbuf_add(s, jstr(o, "id"));
    off[1] = sbuf_add(s, jstr(o, "title"));
    off[2] = sbuf_add(s, jstr(o, "url"));
    json_decref(o);
    if (off[0] == (size_t)-1 || off[1] == (size_t)-1 || off[2] == (size_t)-1) return -ENOMEM;
    return 0;
}

static double elapsed_us(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e6 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e3;
}

int idx_search(idx_searcher_t *s, const idx_query *q, idx_results *res, fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    memset(res, 0, sizeof *res);
    if (!q || !q->text || q->k == 0) return fn_seterr(eb, FN_EINVAL, "query text and k >= 1 are required");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const idx_reader_t *r = s->r;
    idx_bm25_params defp;
    const idx_bm25_params *bp = q->bm25;
    if (!bp) { idx_bm25_defaults(&defp); bp = &defp; }

    s->nq = 0;
    s->tlen = 0;
    s->slen = 0;
    int rc = idx_analyze(s->an, q->text, strlen(q->text), qtok_cb, s);
    if (rc) return fn_seterr(eb, rc < 0 ? rc : -ENOMEM, "query analysis failed");
    size_t nq = s->nq;
    if (grow((void **)&s->tptr, &s->tptrcap, nq + 1, sizeof *s->tptr)) return -ENOMEM;
    for (size_t i = 0; i < nq; i++) s->tptr[i] = s->tbuf + s->qt[i].off;
    res->terms = s->tptr;
    res->nterms = nq;

    if ((rc = mdb_txn_renew(s->txn))) return fn_seterr(eb, mdb_code(rc), "txn: %s", mdb_strerror(rc));
    if (grow((void **)&s->cur, &s->curcap, nq + 1, sizeof *s->cur) ||
        grow((void **)&s->scratch_tf, &s->stfcap, 2 * nq + 2, sizeof *s->scratch_tf)) {
        rc = -ENOMEM;
        goto out;
    }
    /* look the terms up; idf from the global df */
    double N = (double)r->info.docs_total;
    size_t active = 0;
    for (size_t i = 0; i < nq; i++) {
        qterm *t = &s->qt[i];
        cursor *c = &s->cur[i];
        memset(c, 0, offsetof(cursor, docs));
        c->done = 1;
        t->found = 0;
        t->gdf = 0;
        MDB_val k = { t->len, s->tbuf + t->off }, v;
        int g = mdb_get(s->txn, r->terms, &k, &v);
        if (g == 0) {
            if (v.mv_size != 16) { rc = FN_EFORMAT; goto out; }
            const uint8_t *p = v.mv_data;
            c->termid = idx_get_u32le(p);
            t->gdf = idx_get_u32le(p + 8);
            c->nblocks = idx_get_u32le(p + 12);
            t->found = c->nblocks > 0;
        } else if (g != MDB_NOTFOUND) {
            rc = mdb_code(g);
            goto out;
        }
        double gdf = (double)t->gdf;
        t->idf = log(1.0 + (N - gdf + 0.5) / (gdf + 0.5));
        if (t->found) {
            c->done = 0;
            c->block = 0;
            if ((rc = load_block(s, c))) goto out;
            active++;
        }
    }

    /* exhaustive DAAT OR */
    size_t kk = q->k < r->info.docs ? q->k : (size_t)r->info.docs;
    if (kk == 0) kk = 1;
    if (grow((void **)&s->heap, &s->hcap, kk, sizeof *s->heap)) { rc = -ENOMEM; goto out; }
    if (q->explain) {
        size_t cap = 0;
        free(s->htf);
        s->htf = NULL;
        if (nq && grow((void **)&s->htf, &cap, kk * nq * 2, sizeof *s->htf)) { rc = -ENOMEM; goto out; }
    }
    size_t nh = 0;
    uint64_t matches = 0;
    uint32_t *stf = s->scratch_tf;
    while (active) {
        uint32_t d = UINT32_MAX;
        for (size_t i = 0; i < nq; i++)
            if (!s->cur[i].done && s->cur[i].doc < d) d = s->cur[i].doc;
        double score = 0.0;
        for (size_t i = 0; i < nq; i++) {
            cursor *c = &s->cur[i];
            if (c->done || c->doc != d) {
                stf[2 * i] = stf[2 * i + 1] = 0;
                continue;
            }
            uint32_t tf[IDX_NFIELDS] = { c->tf[0][c->pos], c->tf[1][c->pos] };
            stf[2 * i] = tf[0];
            stf[2 * i + 1] = tf[1];
            score += term_score(r, bp, (double)s->qt[i].qw * s->qt[i].idf, d, tf);
            if ((rc = cursor_next(s, c))) goto out;
            if (c->done) active--;
        }
        matches++;
        hent e = { score, r->keys[d], d, 0 };
        if (nh < kk) {
            e.slot = (uint32_t)nh;
            s->heap[nh] = e;
            if (q->explain && nq) memcpy(s->htf + (size_t)e.slot * nq * 2, stf, nq * 2 * sizeof *stf);
            sift_up(s->heap, nh++);
        } else if (better(&e, &s->heap[0])) {
            e.slot = s->heap[0].slot;
            s->heap[0] = e;
            if (q->explain && nq) memcpy(s->htf + (size_t)e.slot * nq * 2, stf, nq * 2 * sizeof *stf);
            sift_down(s->heap, nh, 0);
        }
    }
    qsort(s->heap, nh, sizeof *s->heap, hent_cmp);

    /* results: stored fields and explain */
    if (grow((void **)&s->hits, &s->hitcap, nh + 1, sizeof *s->hits) ||
        (q->explain && grow((void **)&s->expl, &s->explcap, nh * nq + 1, sizeof *s->expl))) {
        rc = -ENOMEM;
        goto out;
    }
    size_t (*offs)[3] = malloc((nh + 1) * sizeof *offs);
    if (!offs) { rc = -ENOMEM; goto out; }
    for (size_t h = 0; h < nh; h++) {
        const hent *e = &s->heap[h];
        idx_hit *hit = &s->hits[h];
        memset(hit, 0, sizeof *hit);
        hit->doc = e->doc;
        hit->key = e->key;
        hit->score = e->score;
        uint8_t dk[4];
        idx_put_u32be(dk, e->doc);
        MDB_val k = { 4, dk }, v;
        int g = mdb_get(s->txn, r->docs, &k, &v);
        if (g) { rc = g == MDB_NOTFOUND ? FN_EFORMAT : mdb_code(g); free(offs); goto out; }
        if ((rc = stored_fields(s, v.mv_data, v.mv_size, offs[h]))) { free(offs); goto out; }
        if (q->explain) {
            hit->terms = s->expl + h * nq;
            const uint32_t *tf = s->htf + (size_t)e->slot * nq * 2;
            for (size_t i = 0; i < nq; i++) {
                idx_term_explain *x = &hit->terms[i];
                x->term = s->tptr[i];
                x->qw = s->qt[i].qw;
                x->gdf = s->qt[i].gdf;
                x->idf = s->qt[i].idf;
                x->tf[0] = tf[2 * i];
                x->tf[1] = tf[2 * i + 1];
                x->contribution = term_score(r, bp, (double)s->qt[i].qw * s->qt[i].idf, e->doc, x->tf);
            }
        }
    }
    /* sbuf may have moved while growing: set the pointers last */
    for (size_t h = 0; h < nh; h++) {
        s->hits[h].id = s->sbuf + offs[h][0];
        s->hits[h].title = s->sbuf + offs[h][1];
        s->hits[h].url = s->sbuf + offs[h][2];
    }
    free(offs);
    res->hits = s->hits;
    res->nhits = nh;
    res->matches = matches;
    rc = 0;
out:
    mdb_txn_reset(s->txn);
    res->time_us = (uint64_t)elapsed_us(&t0);
    if (rc) {
        res->hits = NULL;
        res->nhits = 0;
        return fn_seterr(eb, rc, "search: %s", fn_strerror(rc));
    }
    return 0;
}
