/* guard.h - guarded model selection for small training sets.
 *
 * With a few dozen to a few hundred judged queries a learner's noise can
 * outweigh its signal: LambdaMART over simple features re-ranking BM25's top
 * 100 gained on one collection and lost on others (issue 7). The guard picks
 * the model by inner cross-validation BY QUERY on the training data it is
 * given, and nothing else:
 *
 *   candidates  "base": 0 trees, weight 1 on the base feature (BM25F order);
 *               LambdaMART with the base feature as its base margin (initial
 *               score w0 * base, w0 fitted on the training queries) over all
 *               features, a small grid of strongly regularised settings, each
 *               at interpolation strengths alpha (base margin + alpha * trees);
 *               linear models over standardised features on top of the same
 *               margin (the base's weight fixed), two L2 strengths;
 *               with an alternative score A (alt_feature, e.g. prf_rm3): A
 *               alone, and base + a x r x A for a in {0.5, 1, 2}, r = the sum
 *               of base / the sum of A over the training rows (no learning
 *               beyond r: interpolations with the BM25 score);
 *   evaluation  every training query is held out once (inner folds, seeded);
 *               its NDCG@10 under each candidate trained without it;
 *   rule        a candidate other than "base" is eligible only if its mean
 *               inner NDCG@10 is higher than base's, it beats base on a strict
 *               majority of the inner folds, and the paired t statistic of its
 *               per-query gain (queries whose documents do not all share one
 *               label) is >= min_t; the eligible candidate with the highest
 *               mean wins (ties: the earlier, smaller one), else "base".
 *   result      the choice retrained on all the given data (a tree model
 *               whose linear part carries the base margin; docs/ltr.md).
 *
 * For logistic regression (stage-1 models) the guard chooses the L2 strength
 * C over standardised features by the lowest mean inner-CV log-loss.
 *
 * Deterministic for a seed, whatever the thread count.
 */
#ifndef FUNNEL_RANK_GUARD_H
#define FUNNEL_RANK_GUARD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dataset.h"
#include "fn_error.h"
#include "model.h"
#include "train.h"

typedef struct rank_guard_params {
    enum rank_objective objective;  /* RANK_OBJ_LAMBDARANK (default) or RANK_OBJ_LOGISTIC */
    size_t base_feature;            /* lambdarank: column of the base score (BM25F) */
    unsigned inner_folds;           /* 5 (2.. queries) */
    uint64_t seed;                  /* 1: inner folds and the trees' sampling */
    unsigned threads;               /* 2: (setting, fold) trainings run in parallel */
    double min_t;                   /* 2.5: paired t a candidate needs against base */
    size_t train_depth;             /* 100: lambdarank models train on each query's top N by the
                                       base (held-out queries are scored whole); 0 = all */
    size_t alt_feature;             /* lambdarank: column of an alternative ranking score (e.g.
                                       prf_rm3), tried alone and interpolated with the base;
                                       RANK_GUARD_NO_ALT (default) = none */
} rank_guard_params;
#define RANK_GUARD_NO_ALT ((size_t)-1)

void rank_guard_defaults(rank_guard_params *p);

typedef struct rank_guard_cand {
    char name[48];
    double mean;        /* lambdarank: mean inner NDCG@10 over all queries; logistic: mean log-loss over rows */
    double *fold;       /* [folds]: the same per inner fold */
    unsigned wins;      /* lambdarank: folds where it beats base */
    double delta;       /* lambdarank: mean - base's mean */
    double t;           /* lambdarank: paired t of the per-query gain over informative queries */
    int eligible;       /* passes the rule (lambdarank) */
    double *query;      /* [nqueries]: lambdarank: the query's inner NDCG@10, NaN for a query that is
                           not informative (all its documents share one label); logistic: its log-loss sum */
} rank_guard_cand;

typedef struct rank_guard_report {
    enum rank_objective objective;
    size_t rows, nqueries, ninformative, nfeatures;
    unsigned folds;
    uint64_t seed;
    double min_t;
    size_t base_feature;
    size_t train_depth;
    double base_weight;     /* w0 fitted on all the data (lambdarank) */
    rank_guard_cand *cand;
    size_t ncand;
    size_t chosen;          /* index into cand */
    double seconds;         /* wall time, retraining included */
} rank_guard_report;

/* Select and train. d: the training data only (lambdarank: query groups;
 * logistic: groups optional, rows are folded otherwise). On success *out is
 * a finalized model carrying d's feature names, and rep (may be NULL) is
 * filled (free it with rank_guard_report_free). */
int rank_guard_train(const rank_dataset *d, const rank_guard_params *p, rank_guard_report *rep,
                     rank_model_t **out, fn_errbuf *eb);
void rank_guard_report_free(rank_guard_report *r);
/* The paired t statistic of a's per-query gain over b (a->query[q] -
 * b->query[q], queries where both are numbers): mean / standard error;
 * +INFINITY for a constant positive gain, 0 with fewer than two queries or
 * no gain at all. a and b come from reports over the same queries. */
double rank_guard_paired_t(const rank_guard_cand *a, const rank_guard_cand *b, size_t nqueries);
/* The report as text, one "guard: " line each (docs/ltr.md). names: d's
 * feature names or NULL. */
void rank_guard_report_print(const rank_guard_report *r, const char *const *names, FILE *f);

/* The base margin weight w0 >= 0 for column col: for lambdarank the root of
 * the derivative of LambdaMART's loss along w0 * x (the NDCG-weighted pairwise
 * loss the first tree would see; its pair weights do not depend on w0 > 0);
 * for binary the log-loss minimiser of logit(positive rate) + w0 * x. NaN
 * counts as 0. 0 when the feature does not help. */
int rank_base_weight_fit(const rank_dataset *d, size_t col, enum rank_objective obj, unsigned ndcg_k,
                         double *w0);

#endif
