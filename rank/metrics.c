/* metrics.c - NDCG@k (exponential gain), MAP, binary log-loss.
 *
 * Conventions follow XGBoost 1.7 and LightGBM so that numbers printed by
 * `funnel rank-eval` are comparable with theirs: gain 2^label - 1, discount
 * 1/log2(rank + 1), a query whose ideal DCG is 0 counts as 1, MAP treats
 * label > 0 as relevant and gives AP 1 to queries without relevant documents.
 * Tied scores keep row order (stable); NaN scores rank last. */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rank_int.h"

/* Small queries are the norm; stack buffers avoid malloc for them. */
#define STACK_N 256

/* Rows of one query in rank order (rank_int.h): from the stack buffer when
 * it fits (2 * STACK_N entries: order + merge scratch), else malloc'd.
 * NULL on out-of-memory; release with order_free(order, stack). */
static size_t *query_order(const double *scores, size_t n, size_t *stack)
{
    size_t *o = n <= STACK_N ? stack : malloc(2 * n * sizeof *o);
    if (o)
        rank__order_desc(scores, n, o, o + n);
    return o;
}

static void order_free(size_t *o, const size_t *stack)
{
    if (o != stack)
        free(o);
}

double rank_ndcg_query(const float *labels, const double *scores, size_t n, unsigned k)
{
    if (n == 0)
        return 1.0;
    size_t top = (k == 0 || k > n) ? n : k;
    float lstack[STACK_N];
    float *l = n <= STACK_N ? lstack : malloc(n * sizeof(float));
    if (!l)
        return NAN;
    double idcg = rank__ideal_dcg(labels, n, top, l);
    if (l != lstack)
        free(l);
    if (idcg <= 0)
        return 1.0;

    size_t ostack[2 * STACK_N];
    size_t *o = query_order(scores, n, ostack);
    if (!o)
        return NAN;
    double dcg = 0;
    for (size_t r = 0; r < top; r++)
        dcg += (exp2(labels[o[r]]) - 1.0) / log2((double)r + 2.0);
    order_free(o, ostack);
    return dcg / idcg;
}

/* Groups of d, or the whole dataset as one query when it has none. */
static size_t ngroups(const rank_dataset *d) { return d->nqueries ? d->nqueries : (d->rows ? 1 : 0); }
static size_t gbegin(const rank_dataset *d, size_t q) { return d->nqueries ? d->group[q] : 0; }
static size_t gend(const rank_dataset *d, size_t q) { return d->nqueries ? d->group[q + 1] : d->rows; }

double rank_ndcg(const rank_dataset *d, const double *scores, unsigned k)
{
    size_t nq = ngroups(d);
    if (nq == 0)
        return 0;
    double sum = 0;
    for (size_t q = 0; q < nq; q++) {
        size_t b = gbegin(d, q), e = gend(d, q);
        sum += rank_ndcg_query(d->label + b, scores + b, e - b, k);
    }
    return sum / (double)nq;
}

static double ap_query(const float *labels, const double *scores, size_t n)
{
    size_t ostack[2 * STACK_N];
    size_t *o = query_order(scores, n, ostack);
    if (!o)
        return NAN;
    double hits = 0, sum = 0;
    for (size_t r = 0; r < n; r++) {
        if (labels[o[r]] > 0) {
            hits += 1;
            sum += hits / (double)(r + 1);
        }
    }
    order_free(o, ostack);
    return hits > 0 ? sum / hits : 1.0;
}

double rank_map(const rank_dataset *d, const double *scores)
{
    size_t nq = ngroups(d);
    if (nq == 0)
        return 0;
    double sum = 0;
    for (size_t q = 0; q < nq; q++) {
        size_t b = gbegin(d, q), e = gend(d, q);
        sum += ap_query(d->label + b, scores + b, e - b);
    }
    return sum / (double)nq;
}

/* log(1 + exp(x)) without overflow. */
static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

double rank_logloss(const rank_dataset *d, const double *margins)
{
    if (d->rows == 0)
        return 0;
    double sum = 0;
    for (size_t i = 0; i < d->rows; i++)
        sum += d->label[i] > 0 ? softplus(-margins[i]) : softplus(margins[i]);
    return sum / (double)d->rows;
}
