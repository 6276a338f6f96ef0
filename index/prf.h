/* prf.h - the shard's half of pseudo-relevance feedback (docs/ranking.md,
 * "prf_rm3"): the term vectors of feedback documents, and the score of
 * documents for a weighted query of analyzed terms.
 *
 * The coordinator owns the relevance model: it takes the best selection
 * candidates of the whole index as feedback (each shard sends the term
 * vectors of its own best ones), expands the query with RM3 and asks each
 * shard to score its documents of the stage-2 window for the expanded
 * query. Both calls here work on one searcher, in its read transaction and
 * guard, and validate what they are given; neither uses the searcher's
 * last query, and both leave it unusable for features or explain of that
 * query (the shard runs them as separate requests).
 */
#ifndef FUNNEL_INDEX_PRF_H
#define FUNNEL_INDEX_PRF_H

#include <stddef.h>
#include <stdint.h>

#include "fn_arena.h"
#include "fn_error.h"
#include "search.h"

/* One document's analyzed title and body as a bag of terms. */
typedef struct idx_fbdoc {
    uint32_t doc;
    uint32_t length;        /* tokens (stopwords out) = the sum of tf */
    size_t nterms;
    const char **terms;     /* distinct, NUL-terminated, in byte order */
    uint32_t *tf;           /* parallel to terms */
} idx_fbdoc;

/* Term vectors of docs[0, n) (shard-local numbers), as the index stores
 * them (format.h tvec: the document's analyzed title and body terms with
 * their frequencies). With max_df > 0 a term in more than max_df x all
 * documents (its global df) is left out of `terms` - a stop list taken from
 * the index - while `length` stays the whole bag's. Every array lives in
 * mem. Returns 0, FN_EINVAL (a doc number out of range, max_df not in
 * 0..1), -ENOMEM or a damage code (idx_is_damage: a term vector or
 * vocabulary record that fails its checks). */
int idx_feedback_docs(idx_searcher_t *s, const uint32_t *docs, size_t n, double max_df, fn_arena *mem,
                      idx_fbdoc *out, fn_errbuf *eb);

/* scores[i] = sum over terms t of weights[t] x BM25F share of t in docs[i]
 * (idx_term_bm25f with bm25, NULL = defaults; the global idf), for a query
 * of analyzed terms used as given (not re-analyzed). keys (may be NULL)
 * must match the documents' keys: a document number from another build of
 * this shard is refused. Terms the index does not know add 0.
 * FN_EINVAL names a bad argument (doc out of range, key mismatch, a weight
 * not finite or negative, an empty or over-long or duplicate term). */
int idx_rescore(idx_searcher_t *s, const idx_bm25_params *bm25, const char *const *terms,
                const double *weights, size_t nterms, const uint32_t *docs, const uint64_t *keys,
                size_t n, double *scores, fn_errbuf *eb);

/* The query-term weights (occurrences in the query) of the searcher's last
 * idx_search, in the order of its idx_results.terms: out[0, n), n = that
 * count (at most cap written). Call before idx_feedback_docs/idx_rescore. */
size_t idx_query_weights(const idx_searcher_t *s, uint32_t *out, size_t cap);

/* Cap on feedback documents one request may ask a shard for. */
#define IDX_MAX_FEEDBACK_DOCS 100
/* Cap on the terms of a rescoring query. */
#define IDX_MAX_RESCORE_TERMS 1000

#endif
