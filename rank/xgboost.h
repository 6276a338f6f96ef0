/* xgboost.h - import XGBoost JSON models (Booster.save_model("m.json"),
 * XGBoost 1.x gbtree), so that teams training with XGBoost serve their models
 * unchanged. Objectives: rank:ndcg, rank:pairwise, rank:map -> lambdarank;
 * binary:logistic / reg:logistic -> binary (margins; apply rank_sigmoid);
 * reg:squarederror -> regression. base_score is converted to the margin
 * (logit for logistic objectives). Splits: XGBoost goes left when
 * x < split_condition; missing follows default_left. */
#ifndef FUNNEL_RANK_XGBOOST_H
#define FUNNEL_RANK_XGBOOST_H

#include "fn_error.h"
#include "model.h"

/* Returns 0 and a finalized model, or FN_EPARSE / FN_EINVAL (unsupported
 * booster or objective; message in eb), -errno. */
int rank_xgboost_import(const char *json_path, rank_model_t **out, fn_errbuf *eb);

#endif
