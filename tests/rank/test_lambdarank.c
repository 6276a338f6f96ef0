/* test_lambdarank.c - LambdaMART gradients against values worked out by hand
 * for one 4-document query. */
#include <criterion/criterion.h>
#include <math.h>

#include "train.h"

/* labels 2, 0, 1, 0 and scores 0.5, 1.0, -0.3, 0.2: the current order is
 * doc1 (rank 0), doc0 (rank 1), doc3 (rank 2), doc2 (rank 3). */
static const float LAB[4] = { 2, 0, 1, 0 };
static const double SC[4] = { 0.5, 1.0, -0.3, 0.2 };

static double rho(double si, double sj)
{
    return 1.0 / (1.0 + exp(si - sj));
}

Test(lambdarank, four_documents_full_list)
{
    double g[4], h[4];
    cr_assert_eq(rank_lambda_gradients(LAB, SC, 4, 0, g, h), 0);

    /* discounts by rank, gains 2^l - 1 = 3, 0, 1, 0 */
    const double D0 = 1.0, D1 = 1.0 / log2(3.0), D2 = 0.5, D3 = 1.0 / log2(5.0);
    const double idcg = 3.0 * D0 + 1.0 * D1;                 /* ideal: labels 2, 1 on top */
    cr_assert_float_eq(idcg, 3.6309297535714578, 1e-12);
    /* |dNDCG| of each pair (more relevant first): |gain diff| * |discount diff| / IDCG */
    const double n01 = 3.0 * (D0 - D1) / idcg;   /* doc0 rank1, doc1 rank0 */
    const double n02 = 2.0 * (D1 - D3) / idcg;   /* doc0 rank1, doc2 rank3 */
    const double n03 = 3.0 * (D1 - D2) / idcg;   /* doc0 rank1, doc3 rank2 */
    const double n21 = 1.0 * (D0 - D3) / idcg;   /* doc2 rank3, doc1 rank0 */
    const double n23 = 1.0 * (D2 - D3) / idcg;   /* doc2 rank3, doc3 rank2 */
    cr_assert_float_eq(n01, 0.30493863, 1e-8);   /* swapping the top two costs 0.305 NDCG */

    const double l01 = n01 * rho(0.5, 1.0), l02 = n02 * rho(0.5, -0.3), l03 = n03 * rho(0.5, 0.2);
    const double l21 = n21 * rho(-0.3, 1.0), l23 = n23 * rho(-0.3, 0.2);
    cr_assert_float_eq(g[0], -(l01 + l02 + l03), 1e-12);
    cr_assert_float_eq(g[1], l01 + l21, 1e-12);
    cr_assert_float_eq(g[2], l02 - l21 - l23, 1e-12);
    cr_assert_float_eq(g[3], l03 + l23, 1e-12);

#define HS(n, si, sj) ((n) * rho(si, sj) * (1.0 - rho(si, sj)))
    cr_assert_float_eq(h[0], HS(n01, 0.5, 1.0) + HS(n02, 0.5, -0.3) + HS(n03, 0.5, 0.2), 1e-12);
    cr_assert_float_eq(h[1], HS(n01, 0.5, 1.0) + HS(n21, -0.3, 1.0), 1e-12);
    cr_assert_float_eq(h[2], HS(n02, 0.5, -0.3) + HS(n21, -0.3, 1.0) + HS(n23, -0.3, 0.2), 1e-12);
    cr_assert_float_eq(h[3], HS(n03, 0.5, 0.2) + HS(n23, -0.3, 0.2), 1e-12);
#undef HS

    /* pairwise: the lambdas cancel; the best document is pushed up */
    cr_assert_float_eq(g[0] + g[1] + g[2] + g[3], 0.0, 1e-12);
    cr_assert_lt(g[0], 0.0);
    cr_assert_gt(g[1], 0.0);
}

Test(lambdarank, truncation_at_k)
{
    /* k = 1: only pairs with a document at rank 0 (doc1), IDCG@1 = 3 */
    double g[4], h[4];
    cr_assert_eq(rank_lambda_gradients(LAB, SC, 4, 1, g, h), 0);
    const double D0 = 1.0, D1 = 1.0 / log2(3.0), D3 = 1.0 / log2(5.0);
    const double l01 = 3.0 * (D0 - D1) / 3.0 * rho(0.5, 1.0);
    const double l21 = 1.0 * (D0 - D3) / 3.0 * rho(-0.3, 1.0);
    cr_assert_float_eq(g[0], -l01, 1e-12);
    cr_assert_float_eq(g[1], l01 + l21, 1e-12);
    cr_assert_float_eq(g[2], -l21, 1e-12);
    cr_assert_float_eq(g[3], 0.0, 1e-15);   /* doc3's pairs are all below rank 0 */
    cr_assert_float_eq(h[3], 0.0, 1e-15);

    /* k = 2: doc3 pairs with doc0 (rank 1) but not with doc2 */
    cr_assert_eq(rank_lambda_gradients(LAB, SC, 4, 2, g, h), 0);
    const double idcg2 = 3.0 + D1, D2 = 0.5;
    const double l03 = 3.0 * (D1 - D2) / idcg2 * rho(0.5, 0.2);
    cr_assert_float_eq(g[3], l03, 1e-12);
}

Test(lambdarank, no_pairs_no_gradient)
{
    double g[4] = { 9, 9, 9, 9 }, h[4] = { 9, 9, 9, 9 };
    const float zero[4] = { 0, 0, 0, 0 }, same[4] = { 2, 2, 2, 2 };
    cr_assert_eq(rank_lambda_gradients(zero, SC, 4, 10, g, h), 0);
    for (int i = 0; i < 4; i++)
        cr_assert(g[i] == 0.0 && h[i] == 0.0);
    cr_assert_eq(rank_lambda_gradients(same, SC, 4, 10, g, h), 0);
    for (int i = 0; i < 4; i++)
        cr_assert(g[i] == 0.0 && h[i] == 0.0);
    cr_assert_eq(rank_lambda_gradients(LAB, SC, 1, 10, g, h), 0);
    cr_assert(g[0] == 0.0 && h[0] == 0.0);
}

Test(lambdarank, ties_keep_row_order)
{
    /* equal scores: the order is row order, so doc0 (label 0) is rank 0 and
     * doc1 (label 1) rank 1: |dNDCG| = (1 - 1/log2 3) / 1, rho = 1/2 */
    const float lab[2] = { 0, 1 };
    const double sc[2] = { 0.0, 0.0 };
    double g[2], h[2];
    cr_assert_eq(rank_lambda_gradients(lab, sc, 2, 0, g, h), 0);
    double n = 1.0 - 1.0 / log2(3.0);
    cr_assert_float_eq(g[1], -0.5 * n, 1e-12);
    cr_assert_float_eq(g[0], 0.5 * n, 1e-12);
    cr_assert_float_eq(h[0], 0.25 * n, 1e-12);
}

Test(lambdarank, long_query_matches_pairwise_formula)
{
    /* a query longer than the on-stack buffer: compare with a direct O(n^2)
     * evaluation of the same formulas */
    enum { N = 300 };
    static float lab[N];
    static double sc[N], g[N], h[N], eg[N];
    for (int i = 0; i < N; i++) {
        lab[i] = (float)((i * 7) % 5);
        sc[i] = sin(i * 0.37);
    }
    cr_assert_eq(rank_lambda_gradients(lab, sc, N, 0, g, h), 0);
    /* ranks by score */
    static int rank[N];
    for (int i = 0; i < N; i++) {
        int r = 0;
        for (int j = 0; j < N; j++)
            if (sc[j] > sc[i] || (sc[j] == sc[i] && j < i))
                r++;
        rank[i] = r;
    }
    double idcg = 0;
    {
        int cnt[5] = { 0 };
        for (int i = 0; i < N; i++)
            cnt[(int)lab[i]]++;
        int pos = 0;
        for (int l = 4; l >= 0; l--)
            for (int c = 0; c < cnt[l]; c++, pos++)
                idcg += (exp2(l) - 1) / log2(2.0 + pos);
    }
    for (int i = 0; i < N; i++)
        eg[i] = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            if (lab[i] > lab[j]) {
                double dn = (exp2(lab[i]) - exp2(lab[j])) *
                            fabs(1 / log2(2.0 + rank[i]) - 1 / log2(2.0 + rank[j])) / idcg;
                double l = dn * rho(sc[i], sc[j]);
                eg[i] -= l;
                eg[j] += l;
            }
    for (int i = 0; i < N; i++)
        cr_assert_float_eq(g[i], eg[i], 1e-9, "doc %d", i);
}
