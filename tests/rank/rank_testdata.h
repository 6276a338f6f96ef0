/* rank_testdata.h - a small in-memory rank_dataset for the trainer tests. */
#ifndef FUNNEL_RANK_TESTDATA_H
#define FUNNEL_RANK_TESTDATA_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"

/** A dataset of `rows` x `nf` features copied from X (row-major) and label,
 * with no groups. The caller frees X and label (and group, if it adds one). */
static inline rank_dataset rt_dataset(size_t rows, size_t nf, const float *X, const float *label)
{
    rank_dataset d;
    memset(&d, 0, sizeof d);
    d.rows = rows;
    d.nfeatures = nf;
    d.X = malloc(rows * nf * sizeof *d.X);
    d.label = malloc(rows * sizeof *d.label);
    cr_assert(d.X && d.label);
    memcpy(d.X, X, rows * nf * sizeof *d.X);
    memcpy(d.label, label, rows * sizeof *d.label);
    return d;
}

#endif
