/* stage2.c - the coordinator's end of the funnel (stage2.h). */
#include "stage2.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "feature_registry.h"

int coord_features_match(char *const *names, size_t n)
{
    size_t nreg;
    const idx_feature_def *reg = idx_features(&nreg);
    if (n > idx_features_shard()) return 0;
    for (size_t i = 0; i < n; i++)
        if (!names[i] || strcmp(names[i], reg[i].name) != 0) return 0;
    return 1;
}

int coord_stage2(fn_arena *a, const Funnel__V1__ShardHit *const *hits, size_t got, size_t window,
                 const double *prf, Funnel__V1__IntentScore *const *intent, size_t nintent,
                 const rank_ranker *model, int want_rows, coord_stage2_out *out)
{
    memset(out, 0, sizeof *out);
    out->acct.name = "stage2";
    if (window > got) window = got;
    /* a model needs every window row (the caller checked the shards' columns) */
    for (size_t i = 0; i < window && model; i++)
        if (!hits[i]->n_features) model = NULL;
    out->window = window;
    size_t cap = got ? got : 1;
    out->order = fn_arena_alloc(a, cap * sizeof *out->order);
    out->score = fn_arena_alloc(a, cap * sizeof *out->score);
    if (a->oom) return -ENOMEM;
    for (size_t i = 0; i < got; i++) {
        out->order[i] = (uint32_t)i;
        out->score[i] = hits[i]->score;
    }

    /* feature rows: the shard's columns, then the window's; a hit the
     * shard sent without features (past its feature_hits) gets NaN */
    int have = 0;
    for (size_t i = 0; i < got && want_rows && !have; i++) have = hits[i]->n_features > 0;
    if (have) {
        size_t nc = idx_features_all();
        out->ncols = nc;
        out->rows = fn_arena_alloc(a, got * nc * sizeof *out->rows);
        if (!out->rows) return -ENOMEM;
        for (size_t i = 0; i < got; i++) {
            float *row = out->rows + i * nc;
            size_t have_cols = hits[i]->n_features < nc ? hits[i]->n_features : nc;
            memcpy(row, hits[i]->features, have_cols * sizeof *row);
            for (size_t c = have_cols; c < nc; c++) row[c] = NAN;
            if (prf) row[IDX_F_PRF_RM3] = (float)prf[i];
            /* query intent: how much the query wants this document's
             * vertical (0 for one the model does not know), and how sure
             * the model is of any */
            row[IDX_F_INTENT_MAX] = nintent ? (float)intent[0]->score : NAN;
            row[IDX_F_INTENT_DOC] = NAN;
            const char *v = hits[i]->vertical;
            if (nintent && v && *v) {
                row[IDX_F_INTENT_DOC] = 0;
                for (size_t j = 0; j < nintent; j++)
                    if (intent[j]->vertical && strcmp(intent[j]->vertical, v) == 0) row[IDX_F_INTENT_DOC] = (float)intent[j]->score;
            }
        }
        idx_features_window(out->rows, window, nc);
    }

    /* stage 2 over the window, through the shared driver */
    rank_list l = { 0 };
    l.n = window;
    l.item = fn_arena_alloc(a, cap * sizeof *l.item);
    l.key = fn_arena_alloc(a, cap * sizeof *l.key);
    l.score = fn_arena_alloc(a, cap * sizeof *l.score);
    if (a->oom) return -ENOMEM;
    for (size_t i = 0; i < window; i++) {
        l.item[i] = (uint32_t)i;
        l.key[i] = hits[i]->key;
        l.score[i] = hits[i]->score;
    }
    l.rows = out->rows;
    l.stride = out->ncols;
    int rc = rank_stage_run(&l, model, window, "merge (stage-1)", &out->acct);
    if (rc) return rc;
    out->ran = out->acct.ran;
    for (size_t i = 0; i < window; i++) {
        out->order[i] = l.item[i];
        out->score[i] = l.score[i];
    }
    return 0;
}
