/* model.h - ranking/classification models: one text format, fast batch scoring.
 *
 * A model is loaded once and then shared read-only by any number of threads:
 * rank_model_score() takes no lock, allocates nothing and writes only `out`.
 *
 * Kinds:
 *   RANK_MODEL_TREES   additive tree ensemble (LambdaMART, pointwise GBDT,
 *                      imported XGBoost) with an optional linear part:
 *                      score = base_score + sum of leaves + sum_i w_i * x_i
 *                      (x_i NaN counts as 0). The linear part carries a base
 *                      margin (e.g. BM25F the trees were trained on top of);
 *                      0 trees and weight 1 on one feature is that feature's
 *                      order exactly. Binary objectives report the raw margin;
 *                      callers apply rank_sigmoid() for a probability.
 *   RANK_MODEL_LINEAR  w . x + bias (logistic regression: margin as above).
 *
 * Missing values (NaN) follow each split's default direction. Models trained
 * here set it to the side 0.0 would take, so NaN and 0 score the same.
 *
 * File format (docs/ltr.md): text, one item a line, versioned:
 *
 *   funnel-model 1
 *   kind trees                     | kind linear
 *   objective lambdarank           | binary | logistic | regression
 *   features 300
 *   feature 0 bm25_title           (optional, one per named feature)
 *   base_score 0
 *   trees 100                      (trees only)
 *   tree 0 nodes 63
 *   node 0 split 12 0.455 1 2 L    (id, feature, threshold, left, right, missing L|R; goes left if x < threshold)
 *   node 1 leaf 0.0123             (thresholds printed with %.9g, float-exact; leaf values,
 *                                  base_score, bias and weights with %.17g, double-exact)
 *   ...
 *   bias -0.12                     (linear only)
 *   weight 3 0.5                   (feature, value; absent = 0; linear models, and
 *                                  trees after the last tree: the linear part)
 *   end
 */
#ifndef FUNNEL_RANK_MODEL_H
#define FUNNEL_RANK_MODEL_H

#include <stddef.h>
#include <math.h>
#include <stdint.h>

#include "fn_error.h"

#define RANK_MODEL_VERSION 1
/* The most feature columns a model file may declare (a bound on what a
 * loaded or pushed model may allocate; the registry has 41, LETOR-style
 * sets hundreds). */
#define RANK_MODEL_MAX_FEATURES (1 << 20)

typedef struct rank_model rank_model_t;   /* opaque, immutable once built */

enum rank_model_kind { RANK_MODEL_TREES = 0, RANK_MODEL_LINEAR = 1 };

/* One node of a tree as the trainer and the importer produce it. Children are
 * indices in the same tree's node array; a leaf has feature == -1. */
typedef struct rank_node {
    int32_t feature;        /* -1 = leaf */
    float threshold;        /* x < threshold goes left */
    int32_t left, right;
    uint8_t missing_left;   /* NaN goes left */
    double value;           /* leaf value */
} rank_node;

/* ---- building (trainer, importer) ---- */
/* Empty model; objective is "lambdarank", "binary", "logistic" or "regression". */
int rank_model_new(enum rank_model_kind kind, const char *objective, size_t nfeatures,
                   rank_model_t **out);
/* Append a tree (copied). Node 0 is the root. Returns 0 or FN_EINVAL (bad links). */
int rank_model_add_tree(rank_model_t *m, const rank_node *nodes, size_t n);
void rank_model_set_base_score(rank_model_t *m, double base);
/* Linear models: weights[nfeatures] copied. */
int rank_model_set_linear(rank_model_t *m, const double *weights, double bias);
/* Tree models: the linear part, weights[nfeatures] copied (finite; zeros are
 * not stored). NULL removes it. FN_EINVAL on other kinds. */
int rank_model_set_linear_part(rank_model_t *m, const double *weights);
/* Optional names (copied); NULL entries allowed. */
int rank_model_set_feature_names(rank_model_t *m, const char *const *names, size_t n);
/* Finish building: compiles the fast scoring layout. Call once, before scoring. */
int rank_model_finalize(rank_model_t *m);

/* ---- files ---- */
int rank_model_load(const char *path, rank_model_t **out, fn_errbuf *eb);   /* FN_EPARSE "FILE:LINE: ..." / FN_EVERSION */
int rank_model_save(const rank_model_t *m, const char *path, fn_errbuf *eb); /* atomic: tmp + rename */
void rank_model_free(rank_model_t *m);

/* ---- introspection ---- */
enum rank_model_kind rank_model_kind(const rank_model_t *m);
const char *rank_model_objective(const rank_model_t *m);
size_t rank_model_nfeatures(const rank_model_t *m);
size_t rank_model_ntrees(const rank_model_t *m);
size_t rank_model_max_depth(const rank_model_t *m);
size_t rank_model_nleaves(const rank_model_t *m);
double rank_model_base_score(const rank_model_t *m);
/* Linear models' bias (0 for trees). */
double rank_model_bias(const rank_model_t *m);
/* Weight of column i (linear models: the weights; trees: the linear part); 0 if none. */
double rank_model_weight(const rank_model_t *m, size_t i);
/* Number of nonzero weights. */
size_t rank_model_nweights(const rank_model_t *m);
const char *rank_model_feature_name(const rank_model_t *m, size_t i);  /* NULL if unnamed */
/* Column of a named feature, or -1. For callers that map their named features once. */
long rank_model_feature_index(const rank_model_t *m, const char *name);
/* Tree t's nodes (as built/loaded), for tests and the importer check. */
const rank_node *rank_model_tree(const rank_model_t *m, size_t t, size_t *n);

/* ---- scoring ---- */
/* Score n rows of X (row r at X + r*stride, stride >= nfeatures floats; NaN =
 * missing) into out[n] (raw margins). Thread-safe, allocation-free. */
void rank_model_score(const rank_model_t *m, const float *X, size_t n, size_t stride, double *out);

static inline double rank_sigmoid(double x)
{
    return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

#endif
