/* lambdarank.c - LambdaMART gradients for one query (Burges, "From RankNet to
 * LambdaRank to LambdaMART", 2010), following LightGBM's lambdarank objective:
 *
 *   documents sorted by the current score (descending, ties by row order);
 *   pairs (i, j) with label_i > label_j where at least one of the two is in
 *   the top k of that order (LightGBM's truncation: the outer loop runs over
 *   the first k positions, the inner over all later ones);
 *   |dNDCG| = |2^l_i - 2^l_j| * |1/log2(2+r_i) - 1/log2(2+r_j)| / IDCG@k
 *   (r 0-based ranks; the discount is not cut at k, as in LightGBM);
 *   rho = 1 / (1 + exp(sigma * (s_i - s_j))), sigma = 1;
 *   lambda = sigma * |dNDCG| * rho, hess = sigma^2 * |dNDCG| * rho * (1 - rho);
 *   grad_i -= lambda, grad_j += lambda, both hessians += hess.
 *
 * grad is the derivative of the (pairwise logistic, NDCG-weighted) loss, so
 * the better document gets a negative gradient and boosting subtracts it.
 * LightGBM's optional lambdarank_norm (divide by 0.01 + |s_i - s_j| and
 * rescale by log2(1 + sum|lambda|) / sum|lambda|) is not applied: XGBoost
 * does not normalise either and it made no difference worth a knob here.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rank_int.h"
#include "train.h"

/* Most queries are short; a fixed buffer avoids malloc in the common case. */
#define SMALL_QUERY 256

int rank_lambda_gradients(const float *labels, const double *scores, size_t n, unsigned k,
                          double *grad, double *hess)
{
    for (size_t i = 0; i < n; i++)
        grad[i] = hess[i] = 0.0;
    if (n < 2)
        return 0;
    size_t kk = (k == 0 || k > n) ? n : k;

    size_t order_buf[SMALL_QUERY], tmp_buf[SMALL_QUERY];
    float lab_buf[SMALL_QUERY];
    double gain_buf[SMALL_QUERY], disc_buf[SMALL_QUERY];
    size_t *order = order_buf, *tmp = tmp_buf;
    float *lab = lab_buf;
    double *gain = gain_buf, *disc = disc_buf;
    void *heap = NULL;
    if (n > SMALL_QUERY) {
        heap = malloc(n * (2 * sizeof *order + sizeof *lab + 2 * sizeof(double)));
        if (!heap)
            return -ENOMEM;
        order = heap;
        tmp = order + n;
        gain = (double *)(tmp + n);
        disc = gain + n;
        lab = (float *)(disc + n);
    }

    double idcg = rank__ideal_dcg(labels, n, kk, lab);
    if (idcg <= 0.0)        /* no relevant document: nothing to order */
        goto out;
    double inv_idcg = 1.0 / idcg;

    rank__order_desc(scores, n, order, tmp);
    for (size_t r = 0; r < n; r++) {
        gain[r] = exp2(labels[order[r]]) - 1.0;
        disc[r] = 1.0 / log2(2.0 + (double)r);
    }

    for (size_t a = 0; a < kk && a + 1 < n; a++) {
        size_t da = order[a];
        for (size_t b = a + 1; b < n; b++) {
            size_t db = order[b];
            if (labels[da] == labels[db])
                continue;
            size_t hi = da, lo = db;            /* hi: the more relevant one */
            if (labels[db] > labels[da]) {
                hi = db;
                lo = da;
            }
            double dndcg = fabs(gain[a] - gain[b]) * fabs(disc[a] - disc[b]) * inv_idcg;
            double rho = 1.0 / (1.0 + exp(scores[hi] - scores[lo]));
            double lambda = dndcg * rho;
            double h = dndcg * rho * (1.0 - rho);
            grad[hi] -= lambda;
            grad[lo] += lambda;
            hess[hi] += h;
            hess[lo] += h;
        }
    }
out:
    free(heap);
    return 0;
}
