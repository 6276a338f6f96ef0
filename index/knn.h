/* knn.h - nearest neighbours of a query vector on one shard: the vector half
 * of selection (docs/vectors.md).
 *
 * A shard's vectors and its HNSW graph are opened with the shard
 * (idx_reader_open: format.h vectors, ann.hnsw). idx_knn searches them with a
 * searcher's scratch, inside its read transaction and guard, so a search
 * runs on any query thread and damage is an error, not a signal.
 */
#ifndef FUNNEL_INDEX_KNN_H
#define FUNNEL_INDEX_KNN_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"
#include "search.h"

typedef struct idx_knn_query {
    const float *vec;           /* dim floats, finite */
    uint32_t dim;               /* must be the index's vec_dim */
    size_t k;                   /* 1 .. IDX_MAX_KNN_K */
    size_t ef;                  /* the graph search's candidate list (0: max(k, 64)); >= k is used */
    int exact;                  /* brute force over every vector: the exact answer */
    /* which documents may be returned (shard-local numbers; bit d % 64 of
     * allow[d / 64]); NULL = all */
    const uint64_t *allow;
    /* and which pass this filter (query/filter.h; NULL = all): compiled on
     * the shard; when few documents pass (a 32nd of the vectors or less)
     * the search is exact over them instead of a graph walk that would
     * step over the rest */
    const struct fn_fnode *filter;
    uint64_t deadline_ns;       /* CLOCK_MONOTONIC ns (0 = none): stop there, say so */
    /* documents left out by key, as idx_query.exclude (NULL = none) */
    int (*exclude)(const void *ud, uint64_t key);
    const void *exclude_ud;
} idx_knn_query;

/* score: larger is better whatever the metric - the cosine, the dot product,
 * or minus the squared Euclidean distance (l2). */
typedef struct idx_knn_hit {
    uint32_t doc;
    uint64_t key;               /* xxh64 of the id: the tie-break across shards */
    float score;
} idx_knn_hit;

#define IDX_MAX_KNN_K 10000
#define IDX_MAX_KNN_EF 100000

/* The k nearest documents to q->vec, best first (ties by key), into hits
 * (room for q->k): *n of them (fewer when the shard has fewer vectors, the
 * filter allows fewer or the deadline came first: *deadline_hit = 1, the
 * best found so far). A shard without vectors answers 0 hits. FN_EINVAL for
 * a query the index cannot answer (no vectors in the index, another
 * dimension, a value not finite, k or ef out of range); -ENOMEM; damage. */
int idx_knn(idx_searcher_t *s, const idx_knn_query *q, idx_knn_hit *hits, size_t *n, int *deadline_hit,
            fn_errbuf *eb);

#endif
