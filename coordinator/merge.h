/* merge.h - exact k-way merge of per-shard ranked lists.
 *
 * Global order is (score desc, key asc, list asc): key is the xxh64 of the
 * external document id, so ties break the same way whatever the sharding;
 * the list index only matters for two equal (score, key) pairs, which only a
 * misconfigured cluster (one document on two shards) produces.
 */
#ifndef FUNNEL_COORD_MERGE_H
#define FUNNEL_COORD_MERGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct coord_merge_item {
    double score;
    uint64_t key;
} coord_merge_item;

typedef struct coord_merge_list {
    const coord_merge_item *items;   /* sorted by (score desc, key asc) */
    size_t n;
} coord_merge_list;

typedef struct coord_merge_ref {
    uint32_t list;                   /* which input list */
    uint32_t pos;                    /* position in that list */
} coord_merge_ref;

/** -1/0/1: does a rank before b in the global order? NaN scores rank last. */
int coord_merge_cmp(const coord_merge_item *a, const coord_merge_item *b);

/** 1 if items[0..n) is in (score desc, key asc) order. */
int coord_merge_is_sorted(const coord_merge_item *items, size_t n);

/** Sort items in place into (score desc, key asc) order, and perm (if not
 *  NULL, n entries) along with it, so perm[i] tells where item i came from
 *  when perm was 0..n-1 on entry. Returns 0 or -ENOMEM. */
int coord_merge_sort(coord_merge_item *items, uint32_t *perm, size_t n);

/** Merge nlists sorted lists and write the references of global ranks
 *  [skip, skip + take) into out (room for take entries). Returns the number
 *  written (less than take when the lists run out). Lists must be sorted
 *  (see coord_merge_is_sorted); the inputs are not modified. Returns 0 also
 *  on out-of-memory for the heap (nlists > 64 only), after setting *err to
 *  -ENOMEM if err is not NULL. */
size_t coord_merge(const coord_merge_list *lists, size_t nlists, size_t skip, size_t take,
                   coord_merge_ref *out, int *err);

#endif
