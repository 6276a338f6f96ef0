/* xgboost.h - import XGBoost JSON models (Booster.save_model("m.json"),
 * XGBoost 1.x gbtree), so that teams training with XGBoost serve their models
 * unchanged. Objectives: rank:ndcg, rank:pairwise, rank:map -> lambdarank;
 * binary:logistic / reg:logistic -> binary (margins; apply rank_sigmoid);
 * reg:squarederror -> regression. base_score is converted to the margin
 * (logit for logistic objectives). Splits: XGBoost goes left when
 * x < split_condition; missing follows default_left.
 *
 * Feature numbering: XGBoost column j is our column j. rank_dataset stores
 * SVMlight feature id k (1-based) in column k-1, so train XGBoost on the same
 * columns: sklearn's load_svmlight_file(path, zero_based=False) or
 * DMatrix("path?format=libsvm&indexing_mode=1"). A model trained on a 1-based
 * file read with XGBoost's default (ids used as written, column 0 unused)
 * is shifted by one: load the data with opts.zero_based for it. Scores are
 * summed in double (XGBoost: float32); they agree to ~1e-6
 * (tests/rank/test_xgboost.c). */
#ifndef FUNNEL_RANK_XGBOOST_H
#define FUNNEL_RANK_XGBOOST_H

#include "fn_error.h"
#include "model.h"

/* Returns 0 and a finalized model, or FN_EPARSE / FN_EINVAL (unsupported
 * booster or objective; message in eb), -errno. */
int rank_xgboost_import(const char *json_path, rank_model_t **out, fn_errbuf *eb);

#endif
