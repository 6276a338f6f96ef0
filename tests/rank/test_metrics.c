/* test_metrics.c - NDCG@k (exp gain, IDCG 0 -> 1, stable ties), MAP, log-loss
 * against hand-computed values. */
#include <criterion/criterion.h>
#include <math.h>

#include "metrics.h"

Test(metrics, ndcg_hand_computed)
{
    /* score order: row1 (2), row2 (0), row3 (1), row0 (3) */
    float lab[4] = {3, 2, 0, 1};
    double sc[4] = {0.1, 0.9, 0.5, 0.2};
    double dcg = 3.0 + 0.0 / log2(3) + 1.0 / 2.0 + 7.0 / log2(5);
    double idcg = 7.0 + 3.0 / log2(3) + 1.0 / 2.0 + 0.0;
    cr_assert_float_eq(rank_ndcg_query(lab, sc, 4, 0), dcg / idcg, 1e-12);
    cr_assert_float_eq(rank_ndcg_query(lab, sc, 4, 4), dcg / idcg, 1e-12);
    cr_assert_float_eq(rank_ndcg_query(lab, sc, 4, 10), dcg / idcg, 1e-12, "k > n is the whole list");
    cr_assert_float_eq(rank_ndcg_query(lab, sc, 4, 2), 3.0 / (7.0 + 3.0 / log2(3)), 1e-12);
    cr_assert_float_eq(rank_ndcg_query(lab, sc, 4, 1), 3.0 / 7.0, 1e-12);
    /* perfect order */
    double good[4] = {4, 3, 1, 2};
    cr_assert_float_eq(rank_ndcg_query(lab, good, 4, 3), 1.0, 1e-12);
}

Test(metrics, ndcg_ties_keep_row_order_and_idcg0_is_1)
{
    float lab[2] = {0, 1};
    double tie[2] = {1, 1};
    cr_assert_float_eq(rank_ndcg_query(lab, tie, 2, 0), 1.0 / log2(3), 1e-12);
    float none[3] = {0, 0, 0};
    double sc[3] = {3, 2, 1};
    cr_assert_float_eq(rank_ndcg_query(none, sc, 3, 10), 1.0, 0);
    /* NaN scores rank last */
    double nan_first[2] = {NAN, 0};
    cr_assert_float_eq(rank_ndcg_query(lab, nan_first, 2, 1), 1.0, 1e-12);
}

Test(metrics, dataset_mean_and_map)
{
    float label[7] = {1, 0, 1, 0, /* q2 */ 0, 0, /* q3 */ 2};
    size_t group[4] = {0, 4, 6, 7};
    rank_dataset d = {.rows = 7, .nfeatures = 0, .label = label, .nqueries = 3, .group = group};
    double s[7] = {4, 3, 2, 1, 5, 6, 0};
    double q1 = (1.0 + 1.0 / log2(4)) / (1.0 + 1.0 / log2(3));
    cr_assert_float_eq(rank_ndcg(&d, s, 10), (q1 + 1.0 + 1.0) / 3.0, 1e-12);
    cr_assert_float_eq(rank_ndcg(&d, s, 1), (1.0 + 1.0 + 1.0) / 3.0, 1e-12);
    /* AP q1 = (1/1 + 2/3) / 2; q2 has no relevant: 1; q3: 1 */
    cr_assert_float_eq(rank_map(&d, s), ((1.0 + 2.0 / 3.0) / 2.0 + 1.0 + 1.0) / 3.0, 1e-12);
    double rev[7] = {1, 2, 3, 4, 0, 0, 0};
    /* relevant at ranks 2 and 4: (1/2 + 2/4) / 2 */
    cr_assert_float_eq(rank_map(&d, rev), (0.5 + 1.0 + 1.0) / 3.0, 1e-12);
}

Test(metrics, logloss)
{
    float label[3] = {1, 0, 2};
    rank_dataset d = {.rows = 3, .label = label};
    double m[3] = {0, 0, 0};
    cr_assert_float_eq(rank_logloss(&d, m), log(2.0), 1e-12);
    double m2[3] = {2, -1, 800};
    double want = (log1p(exp(-2.0)) + log1p(exp(-1.0)) + 0.0) / 3.0;
    cr_assert_float_eq(rank_logloss(&d, m2), want, 1e-12);
    double m3[3] = {-800, 0, 0};
    cr_assert(isfinite(rank_logloss(&d, m3)));
    cr_assert_float_eq(rank_logloss(&d, m3), (800.0 + log(2.0) + log(2.0)) / 3.0, 1e-9);
}
