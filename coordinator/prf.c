/* prf.c - the RM3 expanded query (prf.h). */
#include "prf.h"

#include "analyzer.h"
#include "synonyms.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct fbref { const Funnel__V1__FeedbackDoc *d; } fbref;

static int fb_cmp(const void *a, const void *b)
{
    const Funnel__V1__FeedbackDoc *x = ((const fbref *)a)->d, *y = ((const fbref *)b)->d;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->key > y->key) - (x->key < y->key);
}

/* one (term, document rank, probability) of the relevance model */
typedef struct tw { const char *term; uint32_t rank; double p; } tw;

static int tw_term_rank(const void *a, const void *b)
{
    const tw *x = a, *y = b;
    int c = strcmp(x->term, y->term);
    if (c) return c;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

static int tw_weight(const void *a, const void *b)
{
    const tw *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return strcmp(x->term, y->term);
}

static int tw_term(const void *a, const void *b)
{
    return strcmp(((const tw *)a)->term, ((const tw *)b)->term);
}

int coord_prf_expand(fn_arena *a, const coord_prf_params *p,
                     const Funnel__V1__ShardSearchResponse *const *resps, size_t n, coord_prf_query *out)
{
    memset(out, 0, sizeof *out);
    if (!p->docs || !p->terms) return 0;

    /* the feedback documents: the best p->docs over every shard */
    size_t nfb = 0;
    for (size_t i = 0; i < n; i++)
        if (resps[i]) nfb += resps[i]->n_feedback;
    if (!nfb) return 0;
    fbref *fb = malloc(nfb * sizeof *fb);
    if (!fb) return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; resps[i] && j < resps[i]->n_feedback; j++) fb[k++].d = resps[i]->feedback[j];
    qsort(fb, nfb, sizeof *fb, fb_cmp);
    if (nfb > p->docs) nfb = p->docs;

    /* document weights: a softmax of their selection scores at
     * temperature x the best score (the exponent is never positive), or
     * with temperature 0 the scores themselves; normalised, and uniform if
     * they do not sum to something positive */
    double s1 = fb[0].d->score;
    double *dw = malloc(nfb * sizeof *dw);
    if (!dw) {
        free(fb);
        return -ENOMEM;
    }
    double ssum = 0.0;
    for (size_t i = 0; i < nfb; i++) {
        double sc = fb[i].d->score > 0 ? fb[i].d->score : 0.0;
        dw[i] = p->temperature > 0 && s1 > 0 ? exp(-(s1 - sc) / (p->temperature * s1)) : sc;
        ssum += dw[i];
    }
    size_t npairs = 0;
    for (size_t i = 0; i < nfb; i++)
        if (fb[i].d->length && fb[i].d->n_tf == fb[i].d->n_terms) npairs += fb[i].d->n_terms;
    tw *pw = malloc((npairs ? npairs : 1) * sizeof *pw);
    if (!pw) {
        free(fb);
        free(dw);
        return -ENOMEM;
    }
    size_t m = 0;
    for (size_t i = 0; i < nfb; i++) {
        const Funnel__V1__FeedbackDoc *d = fb[i].d;
        if (!d->length || d->n_tf != d->n_terms) continue;
        double wd = ssum > 0 ? dw[i] / ssum : 1.0 / (double)nfb;
        for (size_t t = 0; t < d->n_terms; t++)
            pw[m++] = (tw){ d->terms[t], (uint32_t)i, wd * (double)d->tf[t] / (double)d->length };
    }
    out->fb_docs = nfb;
    free(fb);
    free(dw);

    /* P(w|R): the pairs of one term summed in document-rank order */
    qsort(pw, m, sizeof *pw, tw_term_rank);
    size_t nt = 0;
    for (size_t i = 0; i < m; i++) {
        if (nt && strcmp(pw[nt - 1].term, pw[i].term) == 0) {
            pw[nt - 1].p += pw[i].p;
        } else {
            pw[nt++] = pw[i];
        }
    }
    qsort(pw, nt, sizeof *pw, tw_weight);
    if (nt > p->terms) nt = p->terms;
    double psum = 0.0;
    for (size_t i = 0; i < nt; i++) psum += pw[i].p;

    /* the query's own terms and weights */
    const Funnel__V1__ShardSearchResponse *qr = NULL;
    for (size_t i = 0; i < n && !qr; i++)
        if (resps[i] && resps[i]->n_terms && resps[i]->n_term_weights == resps[i]->n_terms) qr = resps[i];
    size_t nq = qr ? qr->n_terms : 0;
    double qsum = 0.0;
    for (size_t i = 0; i < nq; i++) qsum += qr->term_weights[i];

    tw *all = malloc((nt + nq ? nt + nq : 1) * sizeof *all);
    if (!all) {
        free(pw);
        return -ENOMEM;
    }
    size_t na = 0;
    for (size_t i = 0; i < nt && psum > 0; i++)
        all[na++] = (tw){ pw[i].term, 1, (1.0 - p->lambda) * pw[i].p / psum };
    for (size_t i = 0; i < nq && qsum > 0; i++)
        all[na++] = (tw){ qr->terms[i], 0, p->lambda * qr->term_weights[i] / qsum };
    free(pw);
    /* merge by term: the query's share first, then the model's */
    qsort(all, na, sizeof *all, tw_term_rank);
    size_t nout = 0;
    for (size_t i = 0; i < na; i++) {
        if (nout && strcmp(all[nout - 1].term, all[i].term) == 0) all[nout - 1].p += all[i].p;
        else all[nout++] = all[i];
    }
    qsort(all, nout, sizeof *all, tw_term);
    out->terms = fn_arena_alloc(a, (nout ? nout : 1) * sizeof *out->terms);
    out->weights = fn_arena_alloc(a, (nout ? nout : 1) * sizeof *out->weights);
    if (!out->terms || !out->weights) {
        free(all);
        return -ENOMEM;
    }
    for (size_t i = 0; i < nout; i++) {
        if (!(out->terms[i] = fn_arena_strdup(a, all[i].term))) {
            free(all);
            return -ENOMEM;
        }
        out->weights[i] = all[i].p;
    }
    out->n = nout;
    free(all);
    return 0;
}

/* ---- synonyms ---- */

typedef struct syn_ctx {
    fn_arena *a;
    char **tok;             /* the collected tokens */
    size_t n, cap;
    int oom;
} syn_ctx;

static int collect_cb(void *ud, const char *term, size_t len, uint32_t pos)
{
    (void)pos;
    syn_ctx *c = ud;
    if (c->n == c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 16;
        char **nt = fn_arena_alloc(c->a, nc * sizeof *nt);
        if (!nt) return c->oom = 1;
        if (c->n) memcpy(nt, c->tok, c->n * sizeof *nt);
        c->tok = nt;
        c->cap = nc;
    }
    if (!(c->tok[c->n] = fn_arena_strndup(c->a, term, len))) return c->oom = 1;
    c->n++;
    return 0;
}

/* The tokens of text[0, len) by analyzer an, into c (reset first). */
static int tokens(struct idx_analyzer *an, const char *text, size_t len, syn_ctx *c)
{
    c->n = 0;
    int rc = idx_analyze(an, text, len, collect_cb, c);
    return c->oom ? -ENOMEM : rc;
}

int coord_syn_expand(fn_arena *a, const struct syn_dict *syn, struct idx_analyzer *an, struct idx_analyzer *raw,
                     double weight, const char *text, const char *const *qterms, size_t nq,
                     coord_prf_query *out)
{
    memset(out, 0, sizeof *out);
    if (!nq) return 0;
    syn_ctx words = { .a = a }, st = { .a = a };
    if (tokens(raw, text, strlen(text), &words)) return -ENOMEM;
    tw *all = NULL;
    size_t na = 0, cap = nq + 64;
    if (!(all = fn_arena_alloc(a, cap * sizeof *all))) return -ENOMEM;
    /* the query's terms weigh their occurrences in the text, as in the
     * selection's BM25F (qw): cisi's long queries repeat words */
    syn_ctx occ = { .a = a };
    if (tokens(an, text, strlen(text), &occ)) return -ENOMEM;
    for (size_t i = 0; i < nq; i++) {
        double qw = 0;
        for (size_t j = 0; j < occ.n; j++) qw += strcmp(occ.tok[j], qterms[i]) == 0;
        all[na++] = (tw){ qterms[i], 0, qw > 0 ? qw : 1.0 };
    }
    for (size_t w = 0; w < words.n && na < COORD_SYN_MAX_TERMS; w++) {
        /* only words the shards searched for (a positive term) */
        if (tokens(an, words.tok[w], strlen(words.tok[w]), &st)) return -ENOMEM;
        int positive = 0;
        for (size_t j = 0; j < st.n && !positive; j++)
            for (size_t i = 0; i < nq && !positive; i++) positive = strcmp(st.tok[j], qterms[i]) == 0;
        if (!positive) continue;
        const char *syns[16];
        size_t ns = syn_lookup(syn, words.tok[w], strlen(words.tok[w]), syns, 16);
        /* each synonym's index term(s), the word's own terms left out */
        size_t first = na;
        for (size_t k = 0; k < ns && na < COORD_SYN_MAX_TERMS; k++) {
            syn_ctx sy = { .a = a };
            if (tokens(an, syns[k], strlen(syns[k]), &sy)) return -ENOMEM;
            for (size_t j = 0; j < sy.n && na < COORD_SYN_MAX_TERMS; j++) {
                int dup = 0;
                for (size_t i = 0; i < na && !dup; i++) dup = strcmp(all[i].term, sy.tok[j]) == 0;
                if (dup) continue;
                if (na == cap) {
                    tw *nb = fn_arena_alloc(a, 2 * cap * sizeof *nb);
                    if (!nb) return -ENOMEM;
                    memcpy(nb, all, na * sizeof *nb);
                    all = nb;
                    cap *= 2;
                }
                all[na++] = (tw){ sy.tok[j], 1, 0.0 };
            }
        }
        for (size_t i = first; i < na; i++) all[i].p = weight / (double)(na - first);
    }
    qsort(all, na, sizeof *all, tw_term);
    out->terms = fn_arena_alloc(a, na * sizeof *out->terms);
    out->weights = fn_arena_alloc(a, na * sizeof *out->weights);
    if (!out->terms || !out->weights) return -ENOMEM;
    for (size_t i = 0; i < na; i++) {
        out->terms[i] = (char *)all[i].term;
        out->weights[i] = all[i].p;
    }
    out->n = na;
    return 0;
}
