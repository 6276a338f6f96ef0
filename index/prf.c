/* prf.c - feedback term vectors and rescoring (prf.h). */
#include "prf.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "integrity.h"
#include "search_int.h"

/* ---- term vectors ---- */

typedef struct tok { uint32_t off, len; } tok;   /* into the bag's bytes */

typedef struct bag {
    char *bytes; size_t blen, bcap;
    tok *t; size_t n, cap;
} bag;

static int bag_cb(void *ud, const char *term, size_t len, uint32_t pos)
{
    (void)pos;
    bag *b = ud;
    if (idx_grow((void **)&b->bytes, &b->bcap, b->blen + len, 1) ||
        idx_grow((void **)&b->t, &b->cap, b->n + 1, sizeof *b->t))
        return -ENOMEM;
    memcpy(b->bytes + b->blen, term, len);
    b->t[b->n++] = (tok){ (uint32_t)b->blen, (uint32_t)len };
    b->blen += len;
    return 0;
}

static _Thread_local const char *tl_bytes;   /* qsort has no context argument */

static int tok_cmp(const void *a, const void *b)
{
    const tok *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(tl_bytes + x->off, tl_bytes + y->off, n);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

typedef struct fb_args {
    const uint32_t *docs;
    size_t n;
    fn_arena *mem;
    idx_fbdoc *out;
    double max_df;
} fb_args;

static int analyze_field(idx_searcher_t *s, json_t *root, const char *name, uint32_t doc, bag *b)
{
    json_t *v = json_object_get(root, name);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v))
        return fn_seterr(s->eb, FN_ECORRUPT, "source of doc %u: \"%s\" is not a string", doc, name);
    int rc = idx_analyze(s->an, json_string_value(v), json_string_length(v), bag_cb, b);
    return rc ? fn_seterr(s->eb, rc < 0 ? rc : -ENOMEM, "out of memory") : 0;
}

static int run_feedback(idx_searcher_t *s, void *ud)
{
    fb_args *a = ud;
    const idx_reader_t *r = s->r;
    bag b = { 0 };
    int rc = 0;
    for (size_t i = 0; i < a->n && !rc; i++) {
        uint32_t doc = a->docs[i];
        const char *src;
        size_t len;
        if ((rc = idx_source_get(r, s->txn, doc, &s->src, &src, &len, s->eb))) break;
        json_error_t je;
        json_t *root = json_loadb(src, len, 0, &je);
        if (!root || !json_is_object(root)) {
            json_decref(root);
            rc = fn_seterr(s->eb, FN_ECORRUPT, "source of doc %u: not a JSON object", doc);
            break;
        }
        b.blen = b.n = 0;
        rc = analyze_field(s, root, "title", doc, &b);
        if (!rc) rc = analyze_field(s, root, "body", doc, &b);
        json_decref(root);
        if (rc) break;
        tl_bytes = b.bytes;
        qsort(b.t, b.n, sizeof *b.t, tok_cmp);
        idx_fbdoc *o = &a->out[i];
        o->doc = doc;
        o->length = (uint32_t)b.n;
        size_t distinct = 0;
        for (size_t j = 0; j < b.n; j++)
            if (j == 0 || tok_cmp(&b.t[j - 1], &b.t[j]) != 0) distinct++;
        o->terms = fn_arena_alloc(a->mem, (distinct ? distinct : 1) * sizeof *o->terms);
        o->tf = fn_arena_alloc(a->mem, (distinct ? distinct : 1) * sizeof *o->tf);
        if (!o->terms || !o->tf) {
            rc = fn_seterr(s->eb, -ENOMEM, "out of memory");
            break;
        }
        o->nterms = 0;
        for (size_t j = 0; j < b.n; j++) {
            if (j && tok_cmp(&b.t[j - 1], &b.t[j]) == 0) {
                o->tf[o->nterms - 1]++;
                continue;
            }
            char *t = fn_arena_strndup(a->mem, b.bytes + b.t[j].off, b.t[j].len);
            if (!t) {
                rc = fn_seterr(s->eb, -ENOMEM, "out of memory");
                break;
            }
            o->terms[o->nterms] = t;
            o->tf[o->nterms++] = 1;
        }
        if (!rc && a->max_df > 0) {
            /* a dynamic stop list: terms in more than max_df of the documents
             * are no expansion terms (the length stays the whole bag's) */
            double cap = a->max_df * (double)r->info.docs_total;
            size_t keep = 0;
            for (size_t j = 0; j < o->nterms && !rc; j++) {
                idx_term_rec tr;
                int grc = idx_term_get(r, s->txn, o->terms[j], strlen(o->terms[j]), &tr, s->eb);
                if (grc && grc != FN_ENOTFOUND) rc = grc;
                else if (grc == FN_ENOTFOUND || (double)tr.gdf <= cap) {
                    o->terms[keep] = o->terms[j];
                    o->tf[keep++] = o->tf[j];
                }
            }
            o->nterms = keep;
        }
    }
    free(b.bytes);
    free(b.t);
    return rc;
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

static int run_rescore(idx_searcher_t *s, void *ud)
{
    rs_args *a = ud;
    const idx_reader_t *r = s->r;
    double N = (double)r->info.docs_total;
    /* the terms become the searcher's query terms for idx_cand_terms */
    for (size_t t = 0; t < a->nterms; t++) {
        qterm *q = &s->qt[t];
        idx_term_rec tr;
        q->found = 0;
        q->gdf = 0;
        int rc = idx_term_get(r, s->txn, s->tbuf + q->off, q->len, &tr, s->eb);
        if (rc == 0) {
            q->termid = tr.termid;
            q->nblocks = tr.nblocks;
            q->gdf = tr.gdf;
            q->found = tr.df > 0;
        } else if (rc != FN_ENOTFOUND) {
            return rc;
        }
        double gdf = (double)q->gdf;
        q->idf = log(1.0 + (N - gdf + 0.5) / (gdf + 0.5));
    }
    int rc = idx_cand_terms(s, a->docs, a->n, a->nterms, 0);
    if (rc) return rc;
    for (size_t i = 0; i < a->n; i++) {
        double sum = 0.0;
        for (size_t t = 0; t < a->nterms; t++) {
            const uint32_t *tf = s->htf + (i * a->nterms + t) * 2;
            if (!tf[0] && !tf[1]) continue;
            sum += idx_term_bm25f(r, &s->bm25, a->weights[t] * s->qt[t].idf, a->docs[i], tf);
        }
        a->scores[i] = sum;
    }
    return 0;
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
    /* distinct documents (idx_cand_terms fills one entry per document) */
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
