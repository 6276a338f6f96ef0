/* stage2.h - the coordinator's end of the funnel (docs/ranking.md): the
 * shards' survivors, merged exactly by their stage-1 scores, form a global
 * window of stage2_k; its feature rows get the window features (relative
 * to the rest of the window, feature_registry.h); the stage-2 model
 * re-scores and re-orders the window through the shared stage driver
 * (rank/stage.h). Ranks past the window keep the merge order.
 */
#ifndef FUNNEL_COORD_STAGE2_H
#define FUNNEL_COORD_STAGE2_H

#include <stddef.h>
#include <stdint.h>

#include "fn_arena.h"
#include "funnel.pb-c.h"
#include "stage.h"

typedef struct coord_stage2_out {
    uint32_t *order;        /* got entries: final position p holds merged entry order[p] */
    double *score;          /* per final position: the stage-2 score, or the stage-1 score past the window / without a model */
    float *rows;            /* per merged entry: idx_features_all() columns, or NULL */
    size_t ncols;
    size_t window;          /* entries stage 2 looked at */
    int ran;                /* a model re-ranked the window */
    rank_stage_acct acct;
} coord_stage2_out;

/* hits[0, got): the merged list, best stage-1 score first (ties by key).
 * want_rows: assemble feature rows (for a model, explain or a features
 * request); rows need every hit to carry the shard's features. model may be
 * NULL. prf (NULL = none): per merged entry, the prf_rm3 column (NaN where
 * feedback did not score it). intent[0, nintent): the query's intent scores,
 * most probable first (nintent 0 = no intent model), for the intent_doc
 * (the score of each hit's vertical, ShardHit.vertical) and intent_max
 * columns. Returns 0 or -ENOMEM. */
int coord_stage2(fn_arena *a, const Funnel__V1__ShardHit *const *hits, size_t got, size_t window,
                 const double *prf, Funnel__V1__IntentScore *const *intent, size_t nintent,
                 const rank_ranker *model, int want_rows, coord_stage2_out *out);

/* 1 if names[0, n) are the registry's first n feature names (the shard and
 * the coordinator agree on the columns). */
int coord_features_match(char *const *names, size_t n);

#endif
