/* features.c - the feature registry and its extractors (feature_registry.h,
 * formulas in docs/ranking.md).
 *
 * All statistics are GLOBAL (document count, document and collection
 * frequencies, average lengths: format.h), so a document's features do not
 * depend on how the corpus is split, like its BM25F score.
 */
#include "feature_registry.h"
#include "feature_cols.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reader_int.h"
#include "search_int.h"

/* ---- extractors ---- */

static const uint32_t *positions(const idx_searcher_t *s, size_t i, size_t t, int f, uint32_t *n)
{
    size_t nq = s->nq;
    *n = s->htf[(i * nq + t) * 2 + f];
    return s->pos + s->poff[(i * nq + t) * 2 + f];
}

static int has(const uint32_t *p, uint32_t n, uint32_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && p[lo] == x;
}

/* Occurrences of the whole query, in order and at the query's distances
 * (stopwords included), in field f of candidate i. */
static double phrase(const idx_searcher_t *s, size_t i, int f)
{
    if (s->nseq < 2) return 0;
    uint32_t n0;
    const uint32_t *p0 = positions(s, i, s->qseq[0][0], f, &n0);
    double count = 0;
    for (uint32_t a = 0; a < n0; a++) {
        int all = 1;
        for (size_t j = 1; j < s->nseq && all; j++) {
            int64_t want = (int64_t)p0[a] + (int64_t)s->qseq[j][1] - (int64_t)s->qseq[0][1];
            uint32_t nj;
            const uint32_t *pj = positions(s, i, s->qseq[j][0], f, &nj);
            all = want >= 0 && want <= UINT32_MAX && has(pj, nj, (uint32_t)want);
        }
        count += all;
    }
    return count;
}

/* Adjacent query-term pairs (different terms) found in order within 3
 * tokens in field f of candidate i. */
static double bigrams(const idx_searcher_t *s, size_t i, int f)
{
    double count = 0;
    for (size_t j = 0; j + 1 < s->nseq; j++) {
        uint32_t ta = s->qseq[j][0], tb = s->qseq[j + 1][0];
        if (ta == tb) continue;
        uint32_t na, nb;
        const uint32_t *pa = positions(s, i, ta, f, &na), *pb = positions(s, i, tb, f, &nb);
        int found = 0;
        for (uint32_t a = 0, b = 0; a < na && b < nb && !found;) {
            if (pb[b] <= pa[a]) b++;
            else if (pb[b] - pa[a] <= 3) found = 1;
            else a++;
        }
        count += found;
    }
    return count;
}

/* The smallest body window holding a position of every query term present
 * in the body of candidate i; *m = how many such terms. */
static double prox_window(const idx_searcher_t *s, size_t i, uint32_t *m)
{
    size_t nq = s->nq;
    uint32_t cur[256], cnt[256];
    const uint32_t *lists[256];
    size_t k = 0;
    for (size_t t = 0; t < nq && k < 256; t++) {
        uint32_t n;
        const uint32_t *p = positions(s, i, t, 1, &n);
        if (!n) continue;
        lists[k] = p;
        cnt[k] = n;
        cur[k] = 0;
        k++;
    }
    *m = (uint32_t)k;
    if (k < 2) return NAN;
    /* advance the list holding the window's minimum until one runs out */
    uint64_t best = UINT64_MAX;
    for (;;) {
        uint32_t lo = UINT32_MAX, hi = 0;
        size_t at = 0;
        for (size_t j = 0; j < k; j++) {
            uint32_t v = lists[j][cur[j]];
            if (v < lo) { lo = v; at = j; }
            if (v > hi) hi = v;
        }
        if ((uint64_t)hi - lo + 1 < best) best = (uint64_t)hi - lo + 1;
        if (++cur[at] >= cnt[at]) break;
    }
    return (double)best;
}

typedef struct feat_args {
    const idx_hit *hits;
    size_t n;
    int full;
    float *out;
    size_t stride;
} feat_args;

/* The document's similarity to the query vector, as the index's metric
 * scores (knn.h: larger is better), in double; NaN without either vector. */
static double vec_sim(const idx_searcher_t *s, uint32_t d)
{
    const idx_reader_t *r = s->r;
    if (!s->qvdim || !r->vec_rows || r->vec_rows[d] == IDX_NO_VECTOR) return NAN;
    const float *x = r->vecs + (size_t)r->vec_rows[d] * r->info.vec_dim, *q = s->qvec;
    double dot = 0, qq = 0, xx = 0, l2 = 0;
    for (uint32_t i = 0; i < s->qvdim; i++) {
        dot += (double)q[i] * x[i];
        qq += (double)q[i] * q[i];
        xx += (double)x[i] * x[i];
        l2 += ((double)q[i] - x[i]) * ((double)q[i] - x[i]);
    }
    switch ((ann_metric)r->info.vec_metric) {
    case ANN_L2: return -l2;
    case ANN_DOT: return dot;
    default: return qq > 0 && xx > 0 ? dot / sqrt(qq * xx) : 0.0;
    }
}

static int compute(idx_searcher_t *s, void *ud)
{
    feat_args *a = ud;
    const idx_reader_t *r = s->r;
    size_t nq = s->nq, n = a->n;
    /* the selection's candidates come with their frequencies (and where
     * their positions are): no second walk over the postings */
    int rec = idx_cand_recorded(s, a->hits, n);
    int rc;
    if (rec) {
        if (a->full && (rc = idx_cand_positions(s, a->hits, n))) return rc;
    } else {
        uint32_t *docs = malloc((n ? n : 1) * sizeof *docs);
        if (!docs) return -ENOMEM;
        for (size_t i = 0; i < n; i++) docs[i] = a->hits[i].doc;
        rc = idx_cand_terms(s, docs, n, nq, a->full);
        free(docs);
        if (rc) return rc;
    }

    const double N = (double)r->info.docs_total;
    const idx_bm25_params *bp = &s->bm25;
    static const double k1b = 0.9, bb = 0.4;
    double mu[IDX_NFIELDS], avg[IDX_NFIELDS];
    for (int f = 0; f < IDX_NFIELDS; f++) {
        mu[f] = fmax(1.0, 4.0 * r->info.avglen[f]);
        avg[f] = r->info.avglen[f] > 0 ? r->info.avglen[f] : 1.0;
    }
    uint32_t qfound = 0;
    for (size_t t = 0; t < nq; t++) qfound += s->qt[t].gdf > 0;

    /* What does not depend on the document, once per query term (the same
     * expressions as in the loop they came from, so the same bits): the
     * idfs, mu x p per field; and a table of the language model's term for
     * a field without the term, which depends on the field's length only.
     * The table is filled as lengths come up (NaN = not yet); it covers
     * the lengths below the candidates' longest (at most LMEMO), and only
     * when there are more candidates than lengths to fill: a 200-term
     * query over explain's 100 hits would fill 3 MiB to save 40,000 logs. */
    enum { LMEMO = 1024 };
    size_t nqa = nq ? nq : 1, lmemo = 0;
    for (size_t i = 0; i < n && lmemo < LMEMO; i++) {
        uint32_t d = a->hits[i].doc;
        for (int f = 0; f < IDX_NFIELDS; f++)
            if (r->len[f][d] >= lmemo) lmemo = r->len[f][d] < LMEMO ? (size_t)r->len[f][d] + 1 : LMEMO;
    }
    if (lmemo > n) lmemo = 0;
    double *pt = malloc(nqa * (4 + 2 * lmemo) * sizeof *pt);
    if (!pt) return -ENOMEM;
    double *idf_dfr = pt, *idf_tfidf = pt + nqa, *mupc = pt + 2 * nqa, *memo = pt + 4 * nqa;
    for (size_t t = 0; t < nq; t++) {
        const qterm *q = &s->qt[t];
        idf_dfr[t] = log2((N + 1.0) / ((double)q->gdf + 0.5));
        idf_tfidf[t] = log((N + 1.0) / (double)q->gdf);
        for (int f = 0; f < IDX_NFIELDS; f++) {
            double pc = ((double)q->gcf[f] + 0.5) / ((double)r->sumlen[f] + 1.0);
            mupc[2 * t + f] = mu[f] * pc;
        }
    }
    for (size_t j = 0; j < nq * 2 * lmemo; j++) memo[j] = NAN;
    /* ln(tf) for the usual small frequencies, computed here (not folded
     * by the compiler, whose ln may round differently from libm's) */
    enum { NLOG = 64 };
    double lntf[NLOG];
    for (uint32_t x = 1; x < NLOG; x++) lntf[x] = log((double)x);
    lntf[0] = -INFINITY;

    for (size_t i = 0; i < n; i++) {
        /* the candidates are in score order, so their per-document values
         * are all over memory: ask for a later candidate's in advance */
        enum { AHEAD = 8 };
        if (i + AHEAD < n) {
            uint32_t e = a->hits[i + AHEAD].doc;
            __builtin_prefetch(&r->len[0][e]);
            __builtin_prefetch(&r->len[1][e]);
            __builtin_prefetch(&r->pop[e]);
            __builtin_prefetch(&r->pub[e]);
            __builtin_prefetch(&r->urld[e]);
            if (rec) __builtin_prefetch(s->ctf + (size_t)a->hits[i + AHEAD].cand * nq * 2);
        }
        float *row = a->out + i * a->stride;
        uint32_t d = a->hits[i].doc;
        const uint32_t *tf = rec ? s->ctf + (size_t)a->hits[i].cand * nq * 2 : s->htf + i * nq * 2;
        double len[IDX_NFIELDS] = { r->len[0][d], r->len[1][d] };
        double v[F_NSHARD];
        memset(v, 0, sizeof v);
        double idf_min = INFINITY, idf_max = 0;
        uint32_t cov[IDX_NFIELDS] = { 0, 0 }, cov_any = 0;
        double lenmu[IDX_NFIELDS] = { len[0] + mu[0], len[1] + mu[1] };
        double dfrl[IDX_NFIELDS] = { NAN, NAN };   /* log2(1 + avg / len), when first needed */
        for (size_t t = 0; t < nq; t++) {
            const qterm *q = &s->qt[t];
            if (q->gdf == 0) continue;   /* not in the index: contributes to no model */
            double qw = q->qw;
            const uint32_t *tft = tf + 2 * t;
            v[F_BM25F] += idx_term_bm25f(r, bp, qw * q->idf, d, tft);
            for (int f = 0; f < IDX_NFIELDS; f++) {
                double x = tft[f];
                /* language model over every query term the index knows */
                if (x == 0) {
                    uint32_t l = r->len[f][d];
                    double *m = l < lmemo ? &memo[(2 * t + f) * lmemo + l] : NULL;
                    if (!m || isnan(*m)) {
                        double lm = log((x + mupc[2 * t + f]) / lenmu[f]);
                        if (m) *m = lm;
                        v[f ? F_LM_B : F_LM_T] += qw * lm;
                    } else {
                        v[f ? F_LM_B : F_LM_T] += qw * *m;
                    }
                    continue;
                }
                v[f ? F_LM_B : F_LM_T] += qw * log((x + mupc[2 * t + f]) / lenmu[f]);
                double b1 = bp->b[f];
                v[f ? F_BM25_B : F_BM25_T] += qw * q->idf * x * (bp->k1 + 1.0) /
                                              (x + bp->k1 * (1.0 - b1 + b1 * len[f] / avg[f]));
                v[f ? F_BM25B_B : F_BM25B_T] += qw * q->idf * x * (k1b + 1.0) /
                                                (x + k1b * (1.0 - bb + bb * len[f] / avg[f]));
                if (len[f] > 0 && isnan(dfrl[f])) dfrl[f] = log2(1.0 + avg[f] / len[f]);
                double tfn = len[f] > 0 ? x * dfrl[f] : 0;
                v[f ? F_DFR_B : F_DFR_T] += qw * tfn / (tfn + 1.0) * idf_dfr[t];
                double lx = tft[f] < NLOG ? lntf[tft[f]] : log(x);
                v[f ? F_TFIDF_B : F_TFIDF_T] += qw * (1.0 + lx) * idf_tfidf[t];
                v[f ? F_TF_B : F_TF_T] += x;
                cov[f]++;
            }
            if (tft[0] + tft[1]) {
                cov_any++;
                v[F_IDF_SUM] += q->idf;
                if (q->idf > idf_max) idf_max = q->idf;
                if (q->idf < idf_min) idf_min = q->idf;
            }
        }
        double nqd = nq ? (double)nq : 1.0;
        v[F_SEL] = a->hits[i].score;
        v[F_COV_T] = cov[0] / nqd;
        v[F_COV_B] = cov[1] / nqd;
        v[F_COV_ANY] = cov_any / nqd;
        v[F_IDF_MAX] = cov_any ? idf_max : 0;
        v[F_IDF_MIN] = cov_any ? idf_min : 0;
        v[F_LEN_T] = len[0];
        v[F_LEN_B] = len[1];
        v[F_POP] = log1p((double)r->pop[d]);
        v[F_AGE] = r->pub[d] == IDX_NO_TIME ? NAN : (double)(s->now - r->pub[d]) / 86400.0;
        v[F_URLD] = r->urld[d];
        v[F_QLEN] = (double)nq;
        v[F_QFOUND] = qfound;
        v[F_VEC_SIM] = vec_sim(s, d);
        size_t ncols = F_NCHEAP;
        if (a->full) {
            uint32_t m;
            double win = prox_window(s, i, &m);
            v[F_PHRASE_T] = phrase(s, i, 0);
            v[F_PHRASE_B] = phrase(s, i, 1);
            v[F_PROXWIN_B] = win;
            v[F_PROXRATIO_B] = m >= 2 ? m / win : 0;
            v[F_BIGRAM_T] = bigrams(s, i, 0);
            v[F_BIGRAM_B] = bigrams(s, i, 1);
            ncols = F_NSHARD;
        }
        for (size_t c = 0; c < ncols; c++) row[c] = (float)v[c];
    }
    free(pt);
    return 0;
}

int idx_features_compute(idx_searcher_t *s, const idx_hit *hits, size_t n, int full, float *out,
                         size_t stride, fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    if (stride < (full ? (size_t)F_NSHARD : (size_t)F_NCHEAP))
        return fn_seterr(eb, FN_EINVAL, "idx_features_compute: stride %zu too small", stride);
    if (!n) return 0;
    fn_errbuf local;
    s->eb = eb ? eb : &local;
    feat_args a = { hits, n, full, out, stride };
    int rc = idx_searcher_run(s, compute, &a);
    if (rc && eb && !eb->msg[0]) fn_seterr(eb, rc, "features: %s", fn_strerror(rc));
    return rc;
}
