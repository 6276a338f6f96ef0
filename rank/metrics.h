/* metrics.h - ranking and classification metrics over a rank_dataset.
 *
 * NDCG@k uses exponential gain 2^label - 1 and log2(rank+1) discount; ties in
 * scores are broken by row order (stable), and a query with no relevant
 * document (ideal DCG 0) counts as 1, as LightGBM and XGBoost do. MAP counts
 * label > 0 as relevant (queries without relevant documents: AP = 1, as
 * XGBoost's map). */
#ifndef FUNNEL_RANK_METRICS_H
#define FUNNEL_RANK_METRICS_H

#include <stddef.h>

#include "dataset.h"

/* Mean NDCG@k over the queries of d for scores[rows]. k = 0: whole list. */
double rank_ndcg(const rank_dataset *d, const double *scores, unsigned k);
/* NDCG@k of one query. */
double rank_ndcg_query(const float *labels, const double *scores, size_t n, unsigned k);
double rank_map(const rank_dataset *d, const double *scores);
/* Mean binary log-loss of margins (sigmoid applied) against labels > 0. */
double rank_logloss(const rank_dataset *d, const double *margins);

#endif
