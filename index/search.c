/* search.c - postings cursors, BM25F and exhaustive DAAT top-k (search.h).
 *
 * The reader and the decoders of stored values are in reader.c. Everything a
 * query reads from LMDB (term records, posting blocks, stored records) is
 * read inside the searcher's per-query read transaction, checked against its
 * checksum, and decoded or copied before that transaction is reset; the
 * whole query runs inside an idx_guard so a data file truncated under us
 * turns into an error instead of a SIGBUS.
 */
#include "search.h"

#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <math.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analyzer.h"
#include "codec.h"
#include "format.h"
#include "integrity.h"
#include "reader_int.h"

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

typedef struct hent { double score; uint64_t key; uint32_t doc; } hent;

struct idx_searcher {
    idx_reader_t *r;
    idx_analyzer_t *an;
    MDB_txn *txn;            /* reset between queries */
    fn_errbuf *eb;           /* the running query's */
    char *tbuf; size_t tlen, tcap;
    qterm *qt; size_t nq, qcap;
    const char **tptr; size_t tptrcap;
    cursor *cur; size_t curcap;
    hent *heap; size_t hcap;
    uint32_t *htf; size_t htfcap;  /* explain: nq*2 tfs per explained hit */
    uint32_t (*xdoc)[2]; size_t xdoccap;  /* explain: (doc, hit) sorted by doc */
    idx_hit *hits; size_t hitcap;
    idx_term_explain *expl; size_t explcap;
    char *sbuf; size_t slen, scap;
    size_t (*offs)[3]; size_t offscap;
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
        rc = fn_seterr(eb, idx_mdb_code(rc), "txn: %s", mdb_strerror(rc));
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

#define FREE_SCRATCH(p, cap) do { free(p); (p) = NULL; (cap) = 0; } while (0)

/* Give back scratch arrays that a large query grew: a searcher lives as
 * long as the shard, and one k=10000 explain query must not keep its
 * megabytes for good. Small arrays stay for the next query. */
static void searcher_trim(idx_searcher_t *s)
{
    enum { KEEP = 64u << 10 };
    if (s->hcap * sizeof *s->heap > KEEP) FREE_SCRATCH(s->heap, s->hcap);
    if (s->htfcap * sizeof *s->htf > KEEP) FREE_SCRATCH(s->htf, s->htfcap);
    if (s->xdoccap * sizeof *s->xdoc > KEEP) FREE_SCRATCH(s->xdoc, s->xdoccap);
    if (s->hitcap * sizeof *s->hits > KEEP) FREE_SCRATCH(s->hits, s->hitcap);
    if (s->explcap * sizeof *s->expl > KEEP) FREE_SCRATCH(s->expl, s->explcap);
    if (s->scap > KEEP) FREE_SCRATCH(s->sbuf, s->scap);
    if (s->offscap * sizeof *s->offs > KEEP) FREE_SCRATCH(s->offs, s->offscap);
    if (s->curcap * sizeof *s->cur > KEEP) FREE_SCRATCH(s->cur, s->curcap);
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
    free(s->xdoc);
    free(s->hits);
    free(s->expl);
    free(s->sbuf);
    free(s->offs);
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
    uint32_t n;
    int rc = idx_block_get(s->r, s->txn, c->termid, c->block, c->docs, c->tf[0], c->tf[1], &n, s->eb);
    if (rc) return rc;
    /* blocks of a term are in ascending document order */
    if (c->block > 0 && c->docs[0] <= c->doc)
        return fn_seterr(s->eb, FN_ECORRUPT, "postings of term id %u, block %u: out of order",
                         c->termid, c->block);
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

/* Append a NUL-terminated copy of p[0..n) to sbuf; returns its offset or (size_t)-1. */
static size_t sbuf_add(idx_searcher_t *s, const char *p, size_t n)
{
    if (grow((void **)&s->sbuf, &s->scap, s->slen + n + 1, 1)) return (size_t)-1;
    size_t off = s->slen;
    if (n) memcpy(s->sbuf + off, p, n);
    s->sbuf[off + n] = '\0';
    s->slen += n + 1;
    return off;
}

static uint64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int xdoc_cmp(const void *a, const void *b)
{
    const uint32_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Explain: the field frequencies of every query term in the first nexpl
 * hits (s->heap, sorted), into s->htf (nq * 2 per hit). The search itself
 * keeps no per-document frequencies (that would cost k x terms memory for
 * a few explained hits), so each term's postings are walked again up to the
 * largest explained document: explain costs about one more pass over the
 * query's postings, and memory only for what is explained. */
static int explain_tfs(idx_searcher_t *s, size_t nexpl)
{
    size_t nq = s->nq;
    if (grow((void **)&s->htf, &s->htfcap, nexpl * nq * 2, sizeof *s->htf) ||
        grow((void **)&s->xdoc, &s->xdoccap, nexpl, sizeof *s->xdoc))
        return -ENOMEM;
    memset(s->htf, 0, nexpl * nq * 2 * sizeof *s->htf);
    for (size_t h = 0; h < nexpl; h++) {
        s->xdoc[h][0] = s->heap[h].doc;
        s->xdoc[h][1] = (uint32_t)h;
    }
    qsort(s->xdoc, nexpl, sizeof *s->xdoc, xdoc_cmp);
    uint32_t maxdoc = s->xdoc[nexpl - 1][0];
    for (size_t i = 0; i < nq; i++) {
        cursor *c = &s->cur[i];
        if (!s->qt[i].found) continue;
        size_t x = 0;
        c->doc = 0;
        for (c->block = 0; c->block < c->nblocks && x < nexpl; c->block++) {
            int rc = load_block(s, c);
            if (rc) return rc;
            for (uint32_t p = 0; p < c->n && x < nexpl; ) {
                uint32_t d = c->docs[p], want = s->xdoc[x][0];
                if (d < want) p++;
                else if (d > want) x++;
                else {
                    uint32_t *tf = s->htf + (size_t)s->xdoc[x][1] * nq * 2 + 2 * i;
                    tf[0] = c->tf[0][p];
                    tf[1] = c->tf[1][p];
                    p++;
                    x++;
                }
            }
            c->doc = c->docs[c->n - 1];
            if (c->doc >= maxdoc) break;
        }
    }
    return 0;
}

/* The query proper; runs inside idx_search's guard and read transaction. */
static int run_query(idx_searcher_t *s, const idx_query *q, const idx_bm25_params *bp, idx_results *res)
{
    const idx_reader_t *r = s->r;
    fn_errbuf *eb = s->eb;
    size_t nq = s->nq;
    int rc;
    if (grow((void **)&s->cur, &s->curcap, nq + 1, sizeof *s->cur)) return -ENOMEM;
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
        idx_term_rec tr;
        rc = idx_term_get(r, s->txn, s->tbuf + t->off, t->len, &tr, eb);
        if (rc == 0) {
            c->termid = tr.termid;
            c->nblocks = tr.nblocks;
            t->gdf = tr.gdf;
            t->found = 1;
        } else if (rc != FN_ENOTFOUND) {
            return rc;
        }
        double gdf = (double)t->gdf;
        t->idf = log(1.0 + (N - gdf + 0.5) / (gdf + 0.5));
        if (t->found) {
            c->done = 0;
            c->block = 0;
            if ((rc = load_block(s, c))) return rc;
            active++;
        }
    }

    /* exhaustive DAAT OR */
    size_t kk = q->k < r->info.docs ? q->k : (size_t)r->info.docs;
    if (kk == 0) kk = 1;
    if (grow((void **)&s->heap, &s->hcap, kk, sizeof *s->heap)) return -ENOMEM;
    int explain = q->explain && nq;
    size_t nh = 0;
    uint64_t matches = 0;
    while (active) {
        /* the deadline is checked every 4096 documents: a few hundred us */
        if (q->deadline_ns && (matches & 4095) == 4095 && mono_ns() > q->deadline_ns)
            return fn_seterr(eb, -ETIMEDOUT, "search stopped at the deadline after %" PRIu64
                             " matching documents", matches);
        uint32_t d = UINT32_MAX;
        for (size_t i = 0; i < nq; i++)
            if (!s->cur[i].done && s->cur[i].doc < d) d = s->cur[i].doc;
        double score = 0.0;
        for (size_t i = 0; i < nq; i++) {
            cursor *c = &s->cur[i];
            if (c->done || c->doc != d) continue;
            uint32_t tf[IDX_NFIELDS] = { c->tf[0][c->pos], c->tf[1][c->pos] };
            score += term_score(r, bp, (double)s->qt[i].qw * s->qt[i].idf, d, tf);
            if ((rc = cursor_next(s, c))) return rc;
            if (c->done) active--;
        }
        matches++;
        hent e = { score, r->keys[d], d };
        if (nh < kk) {
            s->heap[nh] = e;
            sift_up(s->heap, nh++);
        } else if (better(&e, &s->heap[0])) {
            s->heap[0] = e;
            sift_down(s->heap, nh, 0);
        }
    }
    qsort(s->heap, nh, sizeof *s->heap, hent_cmp);

    /* results: stored fields, and explain for the first explain_hits */
    size_t nexpl = !explain ? 0 : q->explain_hits && q->explain_hits < nh ? q->explain_hits : nh;
    if (nexpl && (rc = explain_tfs(s, nexpl))) return rc;
    if (grow((void **)&s->hits, &s->hitcap, nh + 1, sizeof *s->hits) ||
        grow((void **)&s->offs, &s->offscap, nh + 1, sizeof *s->offs) ||
        (nexpl && grow((void **)&s->expl, &s->explcap, nexpl * nq, sizeof *s->expl)))
        return -ENOMEM;
    for (size_t h = 0; h < nh; h++) {
        const hent *e = &s->heap[h];
        idx_hit *hit = &s->hits[h];
        memset(hit, 0, sizeof *hit);
        hit->doc = e->doc;
        hit->key = e->key;
        hit->score = e->score;
        idx_doc_rec dr;
        if ((rc = idx_doc_get(r, s->txn, e->doc, &dr, eb))) return rc;
        size_t *o = s->offs[h];
        if ((o[0] = sbuf_add(s, dr.id, dr.id_len)) == (size_t)-1 ||
            (o[1] = sbuf_add(s, dr.title, dr.title_len)) == (size_t)-1 ||
            (o[2] = sbuf_add(s, dr.url, dr.url_len)) == (size_t)-1)
            return -ENOMEM;
        if (h < nexpl) {
            hit->terms = s->expl + h * nq;
            const uint32_t *tf = s->htf + h * nq * 2;
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
        s->hits[h].id = s->sbuf + s->offs[h][0];
        s->hits[h].title = s->sbuf + s->offs[h][1];
        s->hits[h].url = s->sbuf + s->offs[h][2];
    }
    res->hits = s->hits;
    res->nhits = nh;
    res->matches = matches;
    return 0;
}

/* run_query inside a guard: the wrapper keeps no state of its own, so
 * nothing is lost when a SIGBUS jumps back here. */
static int run_guarded(idx_searcher_t *s, const idx_query *q, const idx_bm25_params *bp, idx_results *res)
{
    idx_guard g;
    if (idx_guard_enter(&g, s->r->map, s->r->mapsize) == 0) {
        if (sigsetjmp(g.jb, 0) != 0)
            return fn_seterr(s->eb, FN_ECORRUPT, "%s/data.mdb: %s (while open)", s->r->dir,
                             idx_guard_what(&g));
    }
    int rc = run_query(s, q, bp, res);
    idx_guard_leave(&g);
    return rc;
}

int idx_search(idx_searcher_t *s, const idx_query *q, idx_results *res, fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    memset(res, 0, sizeof *res);
    if (!q || !q->text || q->k == 0) return fn_seterr(eb, FN_EINVAL, "query text and k >= 1 are required");
    uint64_t t0 = mono_ns();
    const idx_reader_t *r = s->r;
    idx_bm25_params defp;
    const idx_bm25_params *bp = q->bm25;
    if (!bp) { idx_bm25_defaults(&defp); bp = &defp; }
    fn_errbuf local;
    s->eb = eb ? eb : &local;

    s->nq = 0;
    s->tlen = 0;
    s->slen = 0;
    int rc = idx_analyze(s->an, q->text, strlen(q->text), qtok_cb, s);
    if (rc) return fn_seterr(eb, rc < 0 ? rc : -ENOMEM, "query analysis failed");
    size_t nq = s->nq;
    if (q->max_terms && nq > q->max_terms)
        return fn_seterr(eb, FN_ELIMIT, "query: %zu distinct terms after analysis, over the limit "
                         "of %u (max-query-terms)", nq, (unsigned)q->max_terms);
    if (grow((void **)&s->tptr, &s->tptrcap, nq + 1, sizeof *s->tptr)) return -ENOMEM;
    for (size_t i = 0; i < nq; i++) s->tptr[i] = s->tbuf + s->qt[i].off;
    res->terms = s->tptr;
    res->nterms = nq;

    /* a sealed file that changed under us is damaged: do not read it */
    if ((rc = idx_reader_check(r, eb))) return rc;
    if ((rc = mdb_txn_renew(s->txn))) return fn_seterr(eb, idx_mdb_code(rc), "txn: %s", mdb_strerror(rc));
    rc = run_guarded(s, q, bp, res);
    mdb_txn_reset(s->txn);
    res->time_us = (mono_ns() - t0) / 1000;
    if (rc) {
        res->hits = NULL;
        res->nhits = 0;
        if (eb && !eb->msg[0]) fn_seterr(eb, rc, "search: %s", fn_strerror(rc));
        searcher_trim(s);
        return rc;
    }
    return 0;
}

/* Called by the owner once it has copied the results (they live in the
 * scratch arrays until then). */
void idx_searcher_release(idx_searcher_t *s)
{
    searcher_trim(s);
}
