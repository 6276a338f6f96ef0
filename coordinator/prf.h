/* prf.h - the coordinator's half of pseudo-relevance feedback: the RM3
 * expanded query (docs/ranking.md, feature "prf_rm3").
 *
 * Feedback: the best `docs` selection candidates of the whole index, by
 * (selection score desc, key asc) - each shard sends its own best ones with
 * their term vectors, so the set does not depend on the shard count.
 * Relevance model RM1 (Lavrenko and Croft 2001, the "RM3" of Abdul-Jaleel
 * et al. 2004 once interpolated with the query):
 *
 *   P(w|R) = sum_D  v(D) / sum_D' v(D')  x  tf(w, D) / |D|,
 *   v(D) = exp(-(s1 - s(D)) / (temperature x s1))
 *
 * over the feedback documents D with selection scores s(D), s1 the best:
 * a sharp softmax, so a clear top dominates the feedback (weights linear in
 * s(D) lost 7.4% NDCG@10 on ADI and 1.5% on TIME, collections with few
 * relevant documents per query; this form +1.6% and +0.1%, chosen on
 * cranfield/npl/cisi and sub-collections drawn from them; docs/ranking.md,
 * temperature 0 = linear weights s(D) / sum s); the `terms`
 * most likely w (ties by byte order) are kept and renormalised, and
 *
 *   weight(w) = lambda x qw(w) / sum qw  +  (1 - lambda) x P(w|R)
 *
 * with qw the query-term occurrences. A shard scores its documents for the
 * weighted query with BM25F (index/prf.h). Every sum runs in an order fixed
 * by the data (documents by rank, terms by bytes), so 1 and N shards give
 * bit-identical weights.
 */
#ifndef FUNNEL_COORD_PRF_H
#define FUNNEL_COORD_PRF_H

#include <stddef.h>
#include <stdint.h>

#include "fn_arena.h"
#include "funnel.pb-c.h"

typedef struct coord_prf_params {
    uint32_t docs;      /* feedback documents (10; 0 = feedback off) */
    uint32_t terms;     /* expansion terms kept (50) */
    double lambda;      /* the original query's share (0.7) */
    double temperature; /* feedback weights: softmax of the scores at temperature x s1 (0.1); 0 = linear */
    double max_df;      /* expansion terms only from terms in at most this share of the documents (0.2; 0 = all) */
} coord_prf_params;

#define COORD_DEFAULT_PRF_DOCS   10
#define COORD_DEFAULT_PRF_TERMS  50
#define COORD_DEFAULT_PRF_LAMBDA 0.7
#define COORD_DEFAULT_PRF_TEMPERATURE 0.1
#define COORD_DEFAULT_PRF_MAX_DF 0.2

/* The expanded query: n distinct terms in byte order with their weights. */
typedef struct coord_prf_query {
    size_t n;
    char **terms;
    double *weights;
    size_t fb_docs;     /* feedback documents used */
} coord_prf_query;

/* Expand from the shards' replies resps[0, n) (NULL entries: no reply).
 * The query terms and their weights come from the first reply that has
 * them. Arrays live in a. Returns 0 (out->n = 0: nothing to expand with,
 * e.g. no feedback documents) or -ENOMEM. */
int coord_prf_expand(fn_arena *a, const coord_prf_params *p,
                     const Funnel__V1__ShardSearchResponse *const *resps, size_t n, coord_prf_query *out);

/* Synonym expansion (EXPAND_SYNONYMS, docs/query-language.md "Expansion"):
 * the query's terms (qterms[0, nq), each weighing its occurrences in text,
 * as the selection's qw) and, for every word of
 * text whose index term is one of them (so excluded words are not
 * expanded), its WordNet synonyms (query/synonyms.h) analysed by an (the
 * index's analyzer), each synonym term weight / (that word's synonyms), so
 * a word's synonyms together weigh `weight`. raw: the same analyzer without
 * stemming, to find the words. At most COORD_SYN_MAX_TERMS terms: a long
 * query's later words get no synonyms once the query fills it (the work a
 * request causes stays bounded, and Shard/Rescore takes it). Terms in byte
 * order, into a. 0 or -ENOMEM. */
#define COORD_SYN_MAX_TERMS 1000   /* = Shard/Rescore's limit, IDX_MAX_RESCORE_TERMS (index/prf.h) */
struct syn_dict;
struct idx_analyzer;
int coord_syn_expand(fn_arena *a, const struct syn_dict *syn, struct idx_analyzer *an, struct idx_analyzer *raw,
                     double weight, const char *text, const char *const *qterms, size_t nq,
                     coord_prf_query *out);

#endif
