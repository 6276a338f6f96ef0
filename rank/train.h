/* train.h - model training: LambdaMART and pointwise GBDT (histogram-based
 * gradient-boosted trees), and L2-regularised logistic regression.
 *
 * Deterministic: the same data, parameters and seed give the same model,
 * bit for bit, whatever the thread count.
 */
#ifndef FUNNEL_RANK_TRAIN_H
#define FUNNEL_RANK_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "fn_error.h"
#include "model.h"

enum rank_objective {
    RANK_OBJ_LAMBDARANK = 0,   /* pairwise lambdas optimising NDCG@k, exponential gain 2^rel - 1 */
    RANK_OBJ_BINARY = 1,       /* pointwise GBDT, binary log-loss (labels > 0 are positive) */
    RANK_OBJ_LOGISTIC = 2,     /* linear logistic regression (rank_train_logistic) */
};

typedef struct rank_gbdt_params {
    enum rank_objective objective;  /* LAMBDARANK or BINARY */
    unsigned trees;             /* 100 */
    unsigned max_depth;         /* 6; 0 = unlimited (then max_leaves bounds the tree) */
    unsigned max_leaves;        /* 0 = 2^max_depth */
    double learning_rate;       /* 0.1 */
    unsigned min_leaf;          /* minimum documents per leaf: 1 */
    double min_child_weight;    /* minimum hessian sum per leaf: 1e-3 (LightGBM's; lambda
                                   hessians are on a smaller scale than XGBoost's, where 1 is
                                   the default and costs 0.03 NDCG@10 here: docs/ltr.md) */
    double lambda_l2;           /* L2 on leaf values: 1.0 */
    double min_split_gain;      /* 0 */
    double row_subsample;       /* 1.0 (queries are sampled whole for lambdarank) */
    double feature_subsample;   /* 1.0, per tree */
    unsigned max_bins;          /* 256 */
    unsigned ndcg_k;            /* 10: lambdas optimise NDCG@ndcg_k (0 = whole list) */
    unsigned early_stopping;    /* rounds without validation improvement before stopping; 0 = off */
    uint64_t seed;              /* 1 */
    unsigned threads;           /* 1 */
    /* Base margin: every score starts at base_weight * x[base_feature] (NaN
     * as 0) on top of the usual initial score, so the trees fit what that
     * feature (BM25F) misses; the model carries "weight base_feature
     * base_weight" as its linear part, so scoring adds it back. 0 = off. */
    size_t base_feature;        /* column */
    double base_weight;         /* 0 (off) */
} rank_gbdt_params;

void rank_gbdt_defaults(rank_gbdt_params *p);

/* Per-round report: round (1-based), training metric and validation metrics
 * (valid may be NULL). For lambdarank metrics are NDCG@1,3,5,10 (ndcg[4]); for
 * binary, ndcg[0] is the log-loss. Return non-zero to stop training. */
typedef int (*rank_round_cb)(void *ud, unsigned round, const double train_metric[4],
                             const double *valid_metric /* [4] or NULL */);

/* Train a tree ensemble. valid may be NULL (no early stopping then). On
 * success *out is a finalized model; with early stopping it keeps the trees up
 * to the best validation round. */
int rank_train_gbdt(const rank_dataset *train, const rank_dataset *valid,
                    const rank_gbdt_params *p, rank_round_cb cb, void *ud,
                    rank_model_t **out, fn_errbuf *eb);

typedef struct rank_logreg_params {
    double C;                   /* inverse L2 strength, as scikit-learn: minimise
                                   C * sum(logloss) + 0.5 * ||w||^2 (bias not penalised); 1.0 */
    unsigned max_iter;          /* 200 */
    double tol;                 /* gradient-norm tolerance: 1e-8 */
    int fit_intercept;          /* 1 */
} rank_logreg_params;

void rank_logreg_defaults(rank_logreg_params *p);

/* Train logistic regression (labels > 0 positive); missing (NaN) counts as 0. */
int rank_train_logistic(const rank_dataset *train, const rank_logreg_params *p,
                        rank_model_t **out, fn_errbuf *eb);

/* ---- pieces exposed for tests ---- */

/* LambdaMART gradients for ONE query of n documents: labels[n], scores[n] ->
 * grad[n], hess[n] (grad is the derivative of the loss, i.e. -lambda). k as
 * ndcg_k. Documents with equal labels form no pair. Returns 0. */
int rank_lambda_gradients(const float *labels, const double *scores, size_t n, unsigned k,
                          double *grad, double *hess);

#endif
