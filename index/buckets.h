/* buckets.h - documents to shards through a fixed number of buckets.
 *
 * A document's bucket is xxh64(id, seed 0) % IDX_BUCKETS; a bucket map says
 * which shard holds each bucket. An index records its map (meta "buckets",
 * index.json "buckets"), so the partitioning can change without rehashing
 * every document: adding a shard moves whole buckets to it (about 1/(N+1)
 * of them, taken evenly from the others), and any map gives the same scores
 * because every shard stores the global statistics (format.h).
 *
 * Text form: comma-separated ranges "FIRST-LAST:SHARD" (or "B:SHARD"), in
 * bucket order, covering 0..IDX_BUCKETS-1 exactly once; shards are 0..N-1,
 * each holding at least one bucket.
 */
#ifndef FUNNEL_INDEX_BUCKETS_H
#define FUNNEL_INDEX_BUCKETS_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"

#define IDX_BUCKETS 4096u
#define IDX_MAX_SHARDS IDX_BUCKETS   /* every shard holds a bucket at least */
/* the longest text form: every bucket its own range, "BBBB:SSSS," each */
#define IDX_BUCKETS_TEXT_MAX (IDX_BUCKETS * 10 + 1)

typedef struct idx_bucket_map {
    uint32_t shards;
    uint16_t shard[IDX_BUCKETS];
} idx_bucket_map;

static inline uint32_t idx_bucket_of(uint64_t key) { return (uint32_t)(key % IDX_BUCKETS); }

/* The map of a fresh build: contiguous ranges, bucket b on shard b * n / IDX_BUCKETS
 * (n = 1..IDX_MAX_SHARDS). */
void idx_buckets_default(idx_bucket_map *m, uint32_t n);

/* The text form into out (at most cap bytes, IDX_BUCKETS_TEXT_MAX is always
 * enough). Returns 0 or FN_ELIMIT. */
int idx_buckets_format(const idx_bucket_map *m, char *out, size_t cap);

/* Parse the text form. Returns 0 or FN_EPARSE (eb names the problem: a
 * range out of order, a gap, an overlap, a shard with no bucket, ...). */
int idx_buckets_parse(const char *text, idx_bucket_map *m, fn_errbuf *eb);

/* The map with one shard more (shard in->shards): the new shard gets
 * IDX_BUCKETS / (n + 1) buckets, taken one at a time from the shard holding
 * the most (the highest-numbered bucket of it), so every shard ends within
 * one bucket of the others' counts when they started even. *moved = buckets
 * that changed shard. Returns 0 or FN_ELIMIT (IDX_MAX_SHARDS already). */
int idx_buckets_add_shard(const idx_bucket_map *in, idx_bucket_map *out, uint32_t *moved);

#endif
