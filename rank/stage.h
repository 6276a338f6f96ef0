/* stage.h - the funnel's stage contract: a ranked list of candidates, a
 * model bound to named feature columns (a ranker), and the one driver every
 * model stage runs through (shard/stage1.c, coordinator/stage2.c).
 *
 * A stage takes a list, scores it with its ranker (or, without one, keeps
 * the order it was given), orders it by score (ties by key, so every shard
 * count gives the same order), keeps the best `keep`, and reports what it did
 * in a rank_stage_acct: documents in and out, time, and a note. The driver
 * fills the accounting, not the stage, so explain output and the funnel
 * counts in every response come from one place.
 *
 * Rankers are loaded once and shared read-only by any number of threads;
 * a running cluster swaps them (model push) with reference counts, so a
 * query keeps the ranker it started with.
 */
#ifndef FUNNEL_RANK_STAGE_H
#define FUNNEL_RANK_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"
#include "model.h"

/* Candidates: parallel arrays, item i = caller's index of candidate i. */
typedef struct rank_list {
    size_t n;
    uint32_t *item;
    uint64_t *key;       /* the shard-independent tie-break (xxh64 of the id) */
    double *score;       /* the last stage's score */
    const float *rows;   /* feature rows, row item[i] at rows + item[i] * stride; NULL = none */
    size_t stride;
} rank_list;

typedef struct rank_stage_acct {
    const char *name;
    int ran;              /* a model scored the list */
    uint64_t time_us;
    uint64_t count_in, count_out;
    char note[160];
} rank_stage_acct;

/* ---- rankers ---- */

typedef struct rank_ranker rank_ranker;   /* opaque, immutable, reference counted */

/* Bind model m (taken over: freed with the ranker, or on error) to the
 * feature columns names[0, ncols): every feature of the model must be
 * named, and its name must be one of names[i] with allowed[i] != 0 (allowed
 * NULL = all). FN_EINVAL naming every unknown or unusable feature
 * otherwise. label names the model in messages and status (e.g. its file). */
int rank_ranker_new(rank_model_t *m, const char *label, const char *const *names,
                    const unsigned char *allowed, size_t ncols, rank_ranker **out, fn_errbuf *eb);
/* Load a model file (rank_model_load) and bind it. */
int rank_ranker_load(const char *path, const char *const *names, const unsigned char *allowed,
                     size_t ncols, rank_ranker **out, fn_errbuf *eb);
/* The same from the text of a model file (a pushed model). */
int rank_ranker_parse(const char *text, size_t len, const char *label, const char *const *names,
                      const unsigned char *allowed, size_t ncols, rank_ranker **out, fn_errbuf *eb);

rank_ranker *rank_ranker_ref(rank_ranker *r);     /* NULL-safe; thread-safe */
void rank_ranker_unref(rank_ranker *r);           /* NULL-safe; frees at zero */

/* Admin/PushModel's modes (funnel.proto PushModelRequest.Mode, the same
 * values): REPLACE makes the model live at once (no model: remove the
 * stage's); STAGE keeps it beside the live one as the candidate; ACTIVATE
 * makes the candidate live; DISCARD drops it. */
enum { RANK_PUSH_REPLACE = 0, RANK_PUSH_STAGE = 1, RANK_PUSH_ACTIVATE = 2, RANK_PUSH_DISCARD = 3 };

/* The checks every server makes on a push's mode and model size, before
 * the model is parsed: FN_EINVAL "mode: 7 is not 0 (replace), 1 (stage),
 * 2 (activate) or 3 (discard)", "model: STAGE needs a model (there is no
 * staged removal)", "model: ACTIVATE takes no model (it makes the staged
 * one live)" (DISCARD alike); 0 otherwise. */
int rank_push_check_mode(int mode, size_t model_len, fn_errbuf *eb);

/* "NAME (kind, T trees, F features, xxh64 H)", for logs and Admin/Status. */
const char *rank_ranker_describe(const rank_ranker *r);
const rank_model_t *rank_ranker_model(const rank_ranker *r);
/* 1 if the model reads column col: a tree splits on it or its linear
 * weight is nonzero (NULL-safe: 0). A stage computes an expensive column
 * only when its model needs it. */
int rank_ranker_uses(const rank_ranker *r, size_t col);

/* Score rows[i * stride] for i < n into out[n]. Thread-safe; allocates a
 * scratch matrix (n x the model's features) for the column mapping. */
int rank_ranker_score(const rank_ranker *r, const float *rows, size_t n, size_t stride, double *out);

/* ---- the driver ---- */

/* Run one stage on l: score it with ranker (NULL: keep l's order and
 * scores, note "no model: <why> order kept"), order it by (score desc, key
 * asc), keep the best `keep`. acct->name must be set; the rest is filled.
 * -ENOMEM on failure (the list is then unchanged). */
int rank_stage_run(rank_list *l, const rank_ranker *ranker, size_t keep, const char *kept_order,
                   rank_stage_acct *acct);

/* Order l by (score desc, key asc) without a model. */
void rank_list_sort(rank_list *l);

#endif
