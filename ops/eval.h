/* eval.h - TREC-style retrieval evaluation, bit-for-bit the conventions of
 * shared/tools/trec_eval.py (the reference; tests/ops/eval_agreement.sh checks
 * agreement to 1e-4 on every metric):
 *
 *   ndcg@10  linear gain (the grade), log2(rank+1) discount, ideal DCG from all
 *            judged positives (grade > 0) of the query
 *   map      average precision over the first 1000 ranked documents, divided
 *            by the number of judged positives
 *   mrr      1/rank of the first positive within the first 1000
 *   p@10     positives in the first 10 / 10 (even if fewer were returned)
 *   r@100, r@1000   positives in the first k / judged positives
 *
 * Queries without a positive judgment are skipped; a judged query missing
 * from the run scores 0 on everything; run queries that are not judged are
 * ignored. The run is ranked by score descending, ties broken by document id
 * compared character by character DEscending, a proper prefix first (the
 * reference sorts on a tuple of negated character codes): equal-score ids
 * "1" "10" "2" "9" rank as 9, 2, 1, 10. The rank column of a run file is
 * ignored. A document listed twice for a query
 * counts twice, as in the reference.
 *
 * File formats (whitespace-separated, blank lines ignored):
 *   qrels:  qid iter docid grade          (exactly 4 fields, integer grade;
 *                                          a repeated (qid, docid) keeps the last)
 *   run:    qid Q0 docid rank score [tag ...]   (at least 5 fields)
 */
#ifndef FUNNEL_OPS_EVAL_H
#define FUNNEL_OPS_EVAL_H

#include <stddef.h>

#include "fn_error.h"

enum ops_eval_metric {
    OPS_EVAL_NDCG10 = 0,
    OPS_EVAL_MAP,
    OPS_EVAL_MRR,
    OPS_EVAL_P10,
    OPS_EVAL_R100,
    OPS_EVAL_R1000,
    OPS_EVAL_NMETRICS
};

/* "ndcg@10", "map", "mrr", "p@10", "r@100", "r@1000" (indexed by the enum). */
extern const char *const ops_eval_metric_names[OPS_EVAL_NMETRICS];

typedef struct ops_qrels ops_qrels;   /* opaque */
typedef struct ops_run ops_run;       /* opaque */

typedef struct ops_eval_result {
    size_t queries;                   /* evaluated queries (those with a positive judgment) */
    double v[OPS_EVAL_NMETRICS];      /* means over those queries; all 0 if queries == 0 */
} ops_eval_result;

/* Called once per evaluated query, in qid order (bytewise), with that query's
 * metrics. qid and v are valid only during the call. */
typedef void (*ops_eval_perquery_cb)(void *ud, const char *qid, const double v[OPS_EVAL_NMETRICS]);

/* Load a qrels file. *out is owned by the caller (ops_eval_qrels_free).
 * Returns 0, -errno (cannot open/read; message in eb), FN_EPARSE ("PATH:LINE:
 * ..." in eb) or -ENOMEM. */
int ops_eval_load_qrels(const char *path, ops_qrels **out, fn_errbuf *eb);
void ops_eval_qrels_free(ops_qrels *q);

/* Load a run file (TREC format above); same conventions as load_qrels. Scores
 * must parse as finite-or-infinite doubles (NaN is a parse error). */
int ops_eval_load_run(const char *path, ops_run **out, fn_errbuf *eb);

/* Build a run in memory instead (e.g. from live search results). */
int ops_eval_run_new(ops_run **out);
/* Copies qid and docid. Returns 0, FN_EINVAL (NaN score, empty or
 * whitespace-containing id) or -ENOMEM. */
int ops_eval_run_add(ops_run *r, const char *qid, const char *docid, double score);
void ops_eval_run_free(ops_run *r);

/* Evaluate run against qrels. mean receives the averages; cb (may be NULL)
 * sees every evaluated query. Returns 0 or -ENOMEM. Neither input is
 * modified (the run is ranked into a private copy). */
int ops_eval_compute(const ops_qrels *q, const ops_run *r, ops_eval_result *mean,
                     ops_eval_perquery_cb cb, void *ud);

#endif
