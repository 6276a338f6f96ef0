/* rank_int.h - internals shared by the rank/ modules; not a public API.
 *
 * One ordering and one ideal-DCG computation for the trainer (lambdas and
 * per-round NDCG) and for the metrics, so that what the trainer optimises and
 * what `funnel rank-eval` reports rank documents identically. */
#ifndef FUNNEL_RANK_INT_H
#define FUNNEL_RANK_INT_H

#include <stddef.h>

/* Lists up to this long are insertion-sorted in place and need no tmp. */
#define RANK__SMALL_SORT 32

/* order[0..n) = 0..n-1 sorted by s descending; ties keep index order
 * (stable), NaN scores last. tmp: n entries of scratch, may be NULL when
 * n <= RANK__SMALL_SORT. Allocates nothing. */
void rank__order_desc(const double *s, size_t n, size_t *order, size_t *tmp);

/* Ideal DCG@k (gain 2^label - 1, discount 1/log2(rank + 2), rank 0-based) of
 * n labels; k == 0 or k > n means all n. scratch: n floats. */
double rank__ideal_dcg(const float *labels, size_t n, size_t k, float *scratch);

#endif
