/* dataset.h - learning-to-rank / classification data in memory.
 *
 * Reads SVMlight / LETOR text: `label [qid:Q] fid:value ... [# comment]`,
 * feature ids 1-based (as LETOR, XGBoost's libsvm parser with indexing_mode=1
 * and LightGBM write them) or 0-based (opts.zero_based), sparse or dense; and
 * the LightGBM/XGBoost layout where query groups come from a separate file
 * (`FILE.query`: one group size a line) instead of qid: tokens.
 * Optional feature names: a file with one name a line (line i names feature i
 * in file numbering), or a header on the file's first line,
 *
 *   # features: bm25f bm25_title tf_body ...
 *
 * naming the columns in order ([A-Za-z0-9_.]+ each, no duplicates; the first
 * name is column 0, i.e. feature id 1 in a 1-based file). Other tools read it
 * as a comment. A names file wins over the header. The header must name as
 * many features as the data has columns (its largest feature id), or loading
 * fails with "FILE:1: ..."; a repeated identical header (concatenated files)
 * is skipped, a different one is an error.
 *
 * Storage: dense row-major float matrix X[rows][nfeatures]; a feature absent
 * from a sparse row is NaN ("missing", as XGBoost treats it). Our own models
 * send missing values the way 0 would go (model.h), so for them NaN and 0 are
 * the same; imported XGBoost models keep XGBoost's default directions.
 * Rows of one query are contiguous; group[q]..group[q+1] are query q's rows.
 */
#ifndef FUNNEL_RANK_DATASET_H
#define FUNNEL_RANK_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"

typedef struct rank_dataset {
    size_t rows;
    size_t nfeatures;       /* columns in X: max feature id seen (+1 if zero_based) or opts.nfeatures */
    float *X;               /* rows * nfeatures, row-major, NaN = missing */
    float *label;           /* rows */
    size_t nqueries;        /* 0 if the data has no groups (classification) */
    size_t *group;          /* nqueries + 1 offsets into rows */
    char **qids;            /* nqueries query ids as written (qid:Q) or "1".."n" for .query files; may be NULL */
    char **feature_names;   /* nfeatures names or NULL */
} rank_dataset;

typedef struct rank_dataset_opts {
    const char *group_file;     /* NULL = use FILE.query if it exists, else qid: tokens */
    const char *names_file;     /* NULL = no names */
    int zero_based;             /* feature ids start at 0 */
    size_t nfeatures;           /* 0 = infer; else the column count (larger ids are an error) */
} rank_dataset_opts;

/* Load path into *out (caller frees with rank_dataset_free). Errors:
 * -errno (cannot open), FN_EPARSE ("FILE:LINE: reason" in eb: bad label,
 * bad fid:value, non-increasing ids, qid: rows of one query not contiguous,
 * group sizes that do not add up to the row count, a bad features header).
 * opts may be NULL. */
int rank_dataset_load(const char *path, const rank_dataset_opts *opts, rank_dataset *out, fn_errbuf *eb);
void rank_dataset_free(rank_dataset *d);

/* The queries queries[0..nq) of d (indices into d's groups, in that order)
 * as a new dataset with copies of their rows, qids and d's feature names.
 * Used to hold queries out: nothing of the other queries is copied. Returns
 * 0, FN_EINVAL (an index out of range) or -ENOMEM. */
int rank_dataset_subset(const rank_dataset *d, const size_t *queries, size_t nq, rank_dataset *out);

#endif
