/* prf.c - feedback term vectors and rescoring (prf.h). */
#include "prf.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "integrity.h"
#include "search_int.h"

/* ---- term vectors ---- */

typedef struct fb_args {
    const uint32_t *docs;
    size_t n;
    fn_arena *mem;
    idx_fbdoc *out;
    double max_df;
} fb_args;

/* Each document's stored term vector (format.h tvec): its terms are in id
 * order, which is the vocabulary's byte order, so they come sorted. */
static int run_feedback(idx_searcher_t *s, void *ud)
{
    fb_args *a = ud;
    const idx_reader_t *r = s->r;
    idx_tvec *tv = &s->tv;
    /* a dynamic stop list: terms in more than max_df of the documents are no
     * expansion terms (the length stays the whole bag's) */
    double cap = a->max_df > 0 ? a->max_df * (double)r->info.docs_total : INFINITY;
    for (size_t i = 0; i < a->n; i++) {
        uint32_t doc = a->docs[i];
        int rc = idx_tvec_get(r, s->txn, doc, tv, s->eb);
        if (rc) return rc;
        idx_fbdoc *o = &a->out[i];
        o->doc = doc;
        o->terms = fn_arena_alloc(a->mem, (tv->n ? tv->n : 1) * sizeof *o->terms);
        o->tf = fn_arena_alloc(a->mem, (tv->n ? tv->n : 1) * sizeof *o->tf);
        if (!o->terms || !o->tf) return fn_seterr(s->eb, -ENOMEM, "out of memory");
        uint64_t length = 0;
        o->nterms = 0;
        for (uint32_t j = 0; j < tv->n; j++) {
            uint64_t tf = (uint64_t)tv->tf[2 * j] + tv->tf[2 * j + 1];
            length += tf;
            const char *term;
            size_t len;
            uint32_t gdf;
            if ((rc = idx_vocab_get(r, s->txn, tv->termid[j], &term, &len, &gdf, s->eb))) return rc;
            if ((double)gdf > cap) continue;
            char *t = fn_arena_strndup(a->mem, term, len);
            if (!t) return fn_seterr(s->eb, -ENOMEM, "out of memory");
            o->terms[o->nterms] = t;
            o->tf[o->nterms++] = tf > UINT32_MAX ? UINT32_MAX : (uint32_t)tf;
        }
        o->length = length > UINT32_MAX ? UINT32_MAX : (uint32_t)length;
    }
    return 0;
}

int idx_feedback_docs(idx_searcher_t *s, const uint32_t *docs, size_t n, double max_df, fn_arena *mem,
                      idx_fbdoc *out, fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    fn_errbuf local;
    s->eb = eb ? eb : &local;
    if (!(max_df >= 0 && max_df <= 1))
        return fn_seterr(eb, FN_EINVAL, "max_df: %g is not a share of the documents in 0..1", max_df);
    for (size_t i = 0; i < n; i++)
        if (docs[i] >= s->r->info.docs)
            return fn_seterr(eb, FN_EINVAL, "doc %u: out of range (the shard has %llu documents)",
                             docs[i], (unsigned long long)s->r->info.docs);
    memset(out, 0, n * sizeof *out);
    fb_args a = { docs, n, mem, out, max_df };
    return n ? idx_searcher_run(s, run_feedback, &a) : 0;
}

/* ---- rescoring ---- */

typedef struct rs_args {
    const char *const *terms;
    const double *weights;
    size_t nterms;
    const uint32_t *docs;
    size_t n;
    double *scores;
} rs_args;

/* (termid, query term) of the terms this shard knows, by termid */
typedef struct rs_term { uint32_t termid, t; } rs_term;

static int rs_term_cmp(const void *a, const void *b)
{
    const rs_term *x = a, *y = b;
    return (x->termid > y->termid) - (x->termid < y->termid);
}

/* Each document's frequencies of the query terms come from its term vector
 * (format.h tvec), a merge of two id-sorted lists: a few hundred documents
 * cost a few hundred small reads, not a seek in every term's postings. */
static int run_rescore(idx_searcher_t *s, void *ud)
{
    rs_args *a = ud;
    const idx_reader_t *r = s->r;
    double N = (double)r->info.docs_total;
    rs_term *known = malloc(a->nterms * sizeof *known);
    uint32_t *tf = malloc(a->nterms * 2 * sizeof *tf);
    size_t nk = 0;
    int rc = 0;
    if (!known || !tf) { rc = fn_seterr(s->eb, -ENOMEM, "out of memory"); goto out; }
    for (size_t t = 0; t < a->nterms; t++) {
        qterm *q = &s->qt[t];
        idx_term_rec tr;
        q->found = 0;
        q->gdf = 0;
        rc = idx_term_get(r, s->txn, s->tbuf + q->off, q->len, &tr, s->eb);
        if (rc == 0) {
            q->termid = tr.termid;
            q->gdf = tr.gdf;
            q->found = 1;
            known[nk++] = (rs_term){ tr.termid, (uint32_t)t };
        } else if (rc != FN_ENOTFOUND) {
            goto out;
        }
        rc = 0;
        double gdf = (double)q->gdf;
        q->idf = log(1.0 + (N - gdf + 0.5) / (gdf + 0.5));
    }
    qsort(known, nk, sizeof *known, rs_term_cmp);
    idx_tvec *tv = &s->tv;
    for (size_t i = 0; i < a->n; i++) {
        if (!nk) { a->scores[i] = 0.0; continue; }
        if ((rc = idx_tvec_get(r, s->txn, a->docs[i], tv, s->eb))) goto out;
        memset(tf, 0, a->nterms * 2 * sizeof *tf);
        for (size_t j = 0, k = 0; j < tv->n && k < nk;) {
            if (tv->termid[j] < known[k].termid) j++;
            else if (tv->termid[j] > known[k].termid) k++;
            else {
                tf[2 * known[k].t] = tv->tf[2 * j];
                tf[2 * known[k].t + 1] = tv->tf[2 * j + 1];
                j++;
                k++;
            }
        }
        /* summed in the query's order, whatever the ids' */
        double sum = 0.0;
        for (size_t t = 0; t < a->nterms; t++) {
            const uint32_t *f = tf + 2 * t;
            if (!f[0] && !f[1]) continue;
            sum += idx_term_bm25f(r, &s->bm25, a->weights[t] * s->qt[t].idf, a->docs[i], f);
        }
        a->scores[i] = sum;
    }
out:
    free(known);
    free(tf);
    return rc;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int idx_rescore(idx_searcher_t *s, const idx_bm25_params *bm25, const char *const *terms,
                const double *weights, size_t nterms, const uint32_t *docs, const uint64_t *keys,
                size_t n, double *scores, fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    fn_errbuf local;
    s->eb = eb ? eb : &local;
    const idx_reader_t *r = s->r;
    for (size_t i = 0; i < n; i++) {
        if (docs[i] >= r->info.docs)
            return fn_seterr(eb, FN_EINVAL, "docs[%zu]: %u is out of range (the shard has %llu documents)",
                             i, docs[i], (unsigned long long)r->info.docs);
        if (keys && keys[i] != r->keys[docs[i]])
            return fn_seterr(eb, FN_EINVAL, "docs[%zu]: document %u has another key here (a document "
                             "number from another build of this shard?)", i, docs[i]);
    }
    for (size_t t = 0; t < nterms; t++) {
        size_t len = terms[t] ? strlen(terms[t]) : 0;
        if (len == 0 || len > IDX_MAX_TERM_BYTES)
            return fn_seterr(eb, FN_EINVAL, "terms[%zu]: %s", t, len ? "longer than a term can be" : "empty");
        if (!isfinite(weights[t]) || weights[t] < 0)
            return fn_seterr(eb, FN_EINVAL, "weights[%zu]: %g is not a finite weight >= 0", t, weights[t]);
    }
    /* distinct documents (a document asked twice is a caller's mistake) */
    uint32_t *sd = malloc((n ? n : 1) * sizeof *sd);
    if (!sd) return fn_seterr(eb, -ENOMEM, "out of memory");
    memcpy(sd, docs, n * sizeof *sd);
    qsort(sd, n, sizeof *sd, u32_cmp);
    for (size_t i = 1; i < n; i++)
        if (sd[i - 1] == sd[i]) {
            int rc = fn_seterr(eb, FN_EINVAL, "docs: document %u appears twice", sd[i]);
            free(sd);
            return rc;
        }
    free(sd);
    /* distinct terms: a duplicate would count twice */
    const char **sorted = malloc((nterms ? nterms : 1) * sizeof *sorted);
    if (!sorted) return fn_seterr(eb, -ENOMEM, "out of memory");
    memcpy(sorted, terms, nterms * sizeof *sorted);
    qsort(sorted, nterms, sizeof *sorted, str_cmp);
    for (size_t t = 1; t < nterms; t++)
        if (strcmp(sorted[t - 1], sorted[t]) == 0) {
            int rc = fn_seterr(eb, FN_EINVAL, "terms: \"%.64s\" appears twice", sorted[t]);
            free(sorted);
            return rc;
        }
    free(sorted);

    if (bm25) s->bm25 = *bm25;
    else idx_bm25_defaults(&s->bm25);
    s->nq = s->nu = s->nseq = 0;
    s->tlen = 0;
    if (idx_grow((void **)&s->qt, &s->qcap, nterms ? nterms : 1, sizeof *s->qt))
        return fn_seterr(eb, -ENOMEM, "out of memory");
    for (size_t t = 0; t < nterms; t++) {
        size_t len = strlen(terms[t]);
        if (idx_grow((void **)&s->tbuf, &s->tcap, s->tlen + len, 1))
            return fn_seterr(eb, -ENOMEM, "out of memory");
        memcpy(s->tbuf + s->tlen, terms[t], len);
        memset(&s->qt[t], 0, sizeof s->qt[t]);
        s->qt[t].off = s->tlen;
        s->qt[t].len = (uint32_t)len;
        s->qt[t].qw = 1;
        s->tlen += len;
    }
    for (size_t i = 0; i < n; i++) scores[i] = 0.0;
    if (!n || !nterms) return 0;
    rs_args a = { terms, weights, nterms, docs, n, scores };
    int rc = idx_searcher_run(s, run_rescore, &a);
    /* the searcher's query is no longer the last idx_search's */
    s->nq = 0;
    return rc;
}

size_t idx_query_weights(const idx_searcher_t *s, uint32_t *out, size_t cap)
{
    for (size_t i = 0; i < s->nq && i < cap; i++) out[i] = s->qt[i].qw;
    return s->nq;
}
