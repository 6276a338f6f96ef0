/* stage1.h - the shard's part of the funnel (docs/ranking.md):
 *
 *   selection (BM25F + static signals over the shard, top selection_k)
 *     -> stage 1 (the stage-1 model over the cheap features, top k)
 *     -> the survivors' full features, stored fields and explain.
 *
 * Runs on a worker thread with one searcher; every array it returns lives
 * in the request's arena.
 */
#ifndef FUNNEL_SHARD_STAGE1_H
#define FUNNEL_SHARD_STAGE1_H

#include <stddef.h>
#include <stdint.h>

#include "fn_arena.h"
#include "fn_error.h"
#include "search.h"
#include "stage.h"

typedef struct shard_funnel_req {
    idx_query q;                /* text, k = selection_k, limits, deadline, bm25, sel, user, now */
    uint32_t k;                 /* survivors to return */
    int features;               /* 0 none, 1 cheap + selection order (no stage 1), 2 full */
    uint32_t feature_hits;      /* features 2: for the first this many survivors (0 = all) */
    int skip_stage1;
    int explain;
    uint32_t explain_hits;
    uint32_t field_hits;        /* stored fields (id, title, url) for the first this many
                                 * survivors only (0 = all); the others' are NULL */
    int no_fields;              /* none at all (a selection benchmark) */
} shard_funnel_req;

typedef struct shard_funnel_out {
    idx_results sel;            /* the selection (its hits are the searcher's) */
    idx_hit *hits;              /* the survivors, best first, with stored fields */
    size_t n;
    double *stage1_score;       /* per survivor (= selection score when stage 1 did not run) */
    float *rows;                /* nrows x stride features when asked (cheap or shard), else NULL */
    size_t nrows;               /* the first nrows survivors have features */
    size_t stride, ncols;
    rank_stage_acct acct[2];    /* "selection", "stage1" */
} shard_funnel_out;

/* Returns 0 or an idx_search / idx_features_compute error (message in eb). */
int shard_funnel_run(idx_searcher_t *se, const shard_funnel_req *rq, const rank_ranker *stage1,
                     fn_arena *mem, shard_funnel_out *out, fn_errbuf *eb);

#endif
