/* feature_registry.h - the named features of a (query, document) pair: the
 * funnel's ranking signals (docs/ranking.md has every formula). Not
 * "features.h": that name is glibc's, and index/ is on the include path.
 *
 * The registry is one table in column order. Names are stable: models refer
 * to their features by name (rank/model.h), so a name is never reused for a
 * different formula. Three costs:
 *
 *   IDX_FEAT_CHEAP   from the postings, document lengths and static signals:
 *                    computed for every selection candidate; the only ones a
 *                    stage-1 model may use.
 *   IDX_FEAT_FULL    also needs term positions (phrases, proximity): computed
 *                    on the shard for the stage-1 survivors only.
 *   IDX_FEAT_WINDOW  relative to the other documents of the stage-2 window
 *                    (e.g. bm25f over the window's best): computed by the
 *                    coordinator after the merge (stage 2 only).
 *
 * Columns are ordered cheap, full, window, so a shard's vector is a prefix of
 * the full one.
 */
#ifndef FUNNEL_INDEX_FEATURE_REGISTRY_H
#define FUNNEL_INDEX_FEATURE_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"
#include "search.h"

enum idx_feature_cost { IDX_FEAT_CHEAP = 0, IDX_FEAT_FULL = 1, IDX_FEAT_WINDOW = 2 };

typedef struct idx_feature_def {
    const char *name;
    enum idx_feature_cost cost;
    const char *what;           /* one line for docs and `funnel model info` */
} idx_feature_def;

/* The registry; *n = its length. */
const idx_feature_def *idx_features(size_t *n);
/* Columns of each cost: [0, cheap) cheap, [cheap, shard) full, [shard, all) window. */
size_t idx_features_cheap(void);
size_t idx_features_shard(void);
size_t idx_features_all(void);
/* Column of a name, or -1. */
long idx_feature_find(const char *name);

/* Columns the coordinator relies on. */
#define IDX_F_BM25F 0
#define IDX_F_PRF_RM3 37      /* the coordinator fills it (coordinator/prf.h) */
#define IDX_F_PRF_RM3_REL 38
#define IDX_F_INTENT_DOC 39   /* the coordinator fills both (query intent, coordinator/stage2.c) */
#define IDX_F_INTENT_MAX 40

/* The features of hits[0, n) - hits of the searcher's last idx_search, in
 * any order - for that query: the cheap ones (full = 0) or cheap and full
 * (full = 1), row i at out + i * stride (stride >= the count). Missing
 * values (e.g. the age of a document without published_at) are NaN.
 * Returns 0, -ENOMEM, or a damage code as idx_search. */
int idx_features_compute(idx_searcher_t *s, const idx_hit *hits, size_t n, int full, float *out,
                         size_t stride, fn_errbuf *eb);

/* The window features of rows[0, n) (each a row of idx_features_all()
 * columns whose shard part is filled), written into their window columns. */
void idx_features_window(float *rows, size_t n, size_t stride);

#endif
