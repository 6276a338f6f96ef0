/* feature_registry.c - the feature registry and the window features
 * (feature_registry.h). Apart from the extractors (features.c) so that the
 * coordinator can use it without the index reader. */
#include "feature_registry.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "feature_cols.h"

static const idx_feature_def registry[F_NALL] = {
    [F_BM25F] = { "bm25f", IDX_FEAT_CHEAP, "BM25F over title and body (the selection's, without static signals)" },
    [F_SEL] = { "sel_score", IDX_FEAT_CHEAP, "the selection score: BM25F + weighted static signals + user terms" },
    [F_BM25_T] = { "bm25_title", IDX_FEAT_CHEAP, "BM25 of the title alone (k1 and b of the shard's bm25 settings)" },
    [F_BM25_B] = { "bm25_body", IDX_FEAT_CHEAP, "BM25 of the body alone" },
    [F_BM25B_T] = { "bm25b_title", IDX_FEAT_CHEAP, "BM25 of the title at a second setting: k1 0.9, b 0.4" },
    [F_BM25B_B] = { "bm25b_body", IDX_FEAT_CHEAP, "BM25 of the body at k1 0.9, b 0.4" },
    [F_LM_T] = { "lm_title", IDX_FEAT_CHEAP, "Dirichlet-smoothed query log-likelihood of the title, mu = 4 x avglen" },
    [F_LM_B] = { "lm_body", IDX_FEAT_CHEAP, "Dirichlet-smoothed query log-likelihood of the body, mu = 4 x avglen" },
    [F_DFR_T] = { "dfr_title", IDX_FEAT_CHEAP, "DFR InL2 of the title" },
    [F_DFR_B] = { "dfr_body", IDX_FEAT_CHEAP, "DFR InL2 of the body" },
    [F_TFIDF_T] = { "tfidf_title", IDX_FEAT_CHEAP, "sum of qw (1 + ln tf) ln((N + 1) / df) over the title" },
    [F_TFIDF_B] = { "tfidf_body", IDX_FEAT_CHEAP, "the same over the body" },
    [F_TF_T] = { "tf_title", IDX_FEAT_CHEAP, "sum of the query terms' frequencies in the title" },
    [F_TF_B] = { "tf_body", IDX_FEAT_CHEAP, "sum of the query terms' frequencies in the body" },
    [F_COV_T] = { "cov_title", IDX_FEAT_CHEAP, "query terms in the title / query terms" },
    [F_COV_B] = { "cov_body", IDX_FEAT_CHEAP, "query terms in the body / query terms" },
    [F_COV_ANY] = { "cov_any", IDX_FEAT_CHEAP, "query terms anywhere in the document / query terms" },
    [F_IDF_SUM] = { "idf_sum", IDX_FEAT_CHEAP, "sum of BM25 idf over the matched query terms" },
    [F_IDF_MAX] = { "idf_max", IDX_FEAT_CHEAP, "largest idf of a matched query term (0: none)" },
    [F_IDF_MIN] = { "idf_min", IDX_FEAT_CHEAP, "smallest idf of a matched query term (0: none)" },
    [F_LEN_T] = { "len_title", IDX_FEAT_CHEAP, "title length in indexed tokens" },
    [F_LEN_B] = { "len_body", IDX_FEAT_CHEAP, "body length in indexed tokens" },
    [F_POP] = { "pop_log", IDX_FEAT_CHEAP, "ln(1 + popularity)" },
    [F_AGE] = { "age_days", IDX_FEAT_CHEAP, "(request time - published_at) / 86400; missing without published_at" },
    [F_URLD] = { "url_depth", IDX_FEAT_CHEAP, "path segments of the url" },
    [F_QLEN] = { "q_len", IDX_FEAT_CHEAP, "distinct query terms after analysis" },
    [F_QFOUND] = { "q_found", IDX_FEAT_CHEAP, "query terms that occur in the index" },
    [F_VEC_SIM] = { "vec_sim", IDX_FEAT_CHEAP, "similarity of the document's vector to the query vector by the index's metric (cosine, dot, or minus the squared L2 distance); missing without either" },
    [F_PHRASE_T] = { "phrase_title", IDX_FEAT_FULL, "occurrences of the whole query as a phrase in the title (2+ terms)" },
    [F_PHRASE_B] = { "phrase_body", IDX_FEAT_FULL, "occurrences of the whole query as a phrase in the body" },
    [F_PROXWIN_B] = { "prox_window_body", IDX_FEAT_FULL, "smallest body window (tokens) holding every matched query term; missing under 2" },
    [F_PROXRATIO_B] = { "prox_ratio_body", IDX_FEAT_FULL, "matched query terms / that window (0 under 2)" },
    [F_BIGRAM_T] = { "bigrams_title", IDX_FEAT_FULL, "adjacent query-term pairs found in order within 3 tokens in the title" },
    [F_BIGRAM_B] = { "bigrams_body", IDX_FEAT_FULL, "the same in the body" },
    [F_W_BM25F_REL] = { "w_bm25f_rel", IDX_FEAT_WINDOW, "bm25f / the largest bm25f of the stage-2 window" },
    [F_W_BM25F_RANK] = { "w_bm25f_rank", IDX_FEAT_WINDOW, "rank by bm25f in the stage-2 window (1 = best)" },
    [F_W_LM_B_GAP] = { "w_lm_body_gap", IDX_FEAT_WINDOW, "lm_body - the largest lm_body of the window" },
    [F_PRF_RM3] = { "prf_rm3", IDX_FEAT_WINDOW, "BM25F of the RM3-expanded query (pseudo-relevance feedback from the index's best selection candidates); missing without feedback" },
    [F_PRF_RM3_REL] = { "prf_rm3_rel", IDX_FEAT_WINDOW, "prf_rm3 / the largest prf_rm3 of the window" },
    [F_INTENT_DOC] = { "intent_doc", IDX_FEAT_WINDOW, "the query intent model's probability of the document's vertical (coordinator --intent-model); missing without a model or a vertical" },
    [F_INTENT_MAX] = { "intent_max", IDX_FEAT_WINDOW, "the query intent model's largest probability: how sure it is of any vertical; missing without a model" },
};

_Static_assert(IDX_F_BM25F == F_BM25F, "the coordinator's bm25f column");
_Static_assert(IDX_F_PRF_RM3 == F_PRF_RM3, "the coordinator's prf_rm3 column");
_Static_assert(IDX_F_PRF_RM3_REL == F_PRF_RM3_REL, "the coordinator's prf_rm3_rel column");
_Static_assert(IDX_F_INTENT_DOC == F_INTENT_DOC, "the coordinator's intent_doc column");
_Static_assert(IDX_F_INTENT_MAX == F_INTENT_MAX, "the coordinator's intent_max column");

const idx_feature_def *idx_features(size_t *n)
{
    *n = F_NALL;
    return registry;
}

size_t idx_features_cheap(void) { return F_NCHEAP; }
size_t idx_features_shard(void) { return F_NSHARD; }
size_t idx_features_all(void) { return F_NALL; }

long idx_feature_find(const char *name)
{
    for (long i = 0; i < F_NALL; i++)
        if (strcmp(registry[i].name, name) == 0) return i;
    return -1;
}

static int float_asc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* How many of sorted[0, n) (ascending, no NaN) are greater than v. */
static size_t count_greater(const float *sorted, size_t n, float v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] > v) hi = mid;
        else lo = mid + 1;
    }
    return n - lo;
}

void idx_features_window(float *rows, size_t n, size_t stride)
{
    float best = -INFINITY, best_lm = -INFINITY, best_prf = -INFINITY;
    /* the window's bm25f values sorted, for the ranks: n log n, not n^2
     * (a NaN is greater than nothing and nothing is greater than it) */
    float *sorted = malloc((n ? n : 1) * sizeof *sorted);
    size_t nsorted = 0;
    for (size_t i = 0; i < n && sorted; i++)
        if (!isnan(rows[i * stride + F_BM25F])) sorted[nsorted++] = rows[i * stride + F_BM25F];
    if (sorted) qsort(sorted, nsorted, sizeof *sorted, float_asc);
    for (size_t i = 0; i < n; i++) {
        const float *r = rows + i * stride;
        if (r[F_BM25F] > best) best = r[F_BM25F];
        if (r[F_LM_B] > best_lm) best_lm = r[F_LM_B];
        if (r[F_PRF_RM3] > best_prf) best_prf = r[F_PRF_RM3];   /* NaN never compares greater */
    }
    for (size_t i = 0; i < n; i++) {
        float *r = rows + i * stride;
        r[F_W_BM25F_REL] = best > 0 ? r[F_BM25F] / best : 0;
        /* rank among the window by bm25f: 1 + the rows strictly better */
        size_t rank = 1;
        if (!sorted)   /* out of memory: count them one by one */
            for (size_t j = 0; j < n; j++) rank += rows[j * stride + F_BM25F] > r[F_BM25F];
        else if (!isnan(r[F_BM25F]))
            rank += count_greater(sorted, nsorted, r[F_BM25F]);
        r[F_W_BM25F_RANK] = (float)rank;
        r[F_W_LM_B_GAP] = r[F_LM_B] - best_lm;
        /* prf_rm3 is the caller's (NaN without feedback); NaN stays NaN */
        r[F_PRF_RM3_REL] = best_prf > 0 ? r[F_PRF_RM3] / best_prf : isnan(r[F_PRF_RM3]) ? NAN : 0;
    }
    free(sorted);
}
