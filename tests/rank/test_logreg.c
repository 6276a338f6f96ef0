/* test_logreg.c - L2 logistic regression reaches the optimum of
 * C * sum(logloss) + 0.5 * ||w||^2: against a brute-force 1-D minimisation,
 * and by a vanishing gradient on a 3-feature set with an intercept. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "rank_testdata.h"
#include "train.h"

static double logloss1(double y, double z)
{
    double m = y > 0.5 ? -z : z;
    return m > 0 ? m + log1p(exp(-m)) : log1p(exp(m));
}

static double obj1(const float *X, const float *y, int n, double C, double w)
{
    double f = 0.5 * w * w;
    for (int i = 0; i < n; i++)
        f += C * logloss1(y[i], w * X[i]);
    return f;
}

/* w_j recovered by scoring unit vectors: margin(e_j) - margin(0) */
static void weights_of(const rank_model_t *m, size_t nf, double *w, double *bias)
{
    float *x = calloc(nf, sizeof *x);
    double s0, s;
    rank_model_score(m, x, 1, nf, &s0);
    for (size_t j = 0; j < nf; j++) {
        x[j] = 1.0f;
        rank_model_score(m, x, 1, nf, &s);
        w[j] = s - s0;
        x[j] = 0.0f;
    }
    *bias = s0;
    free(x);
}

Test(logreg, one_dimension_matches_brute_force)
{
    /* no intercept, one feature: minimise a 1-D convex function by golden
     * section search and compare */
    const float X[8] = { -2, -1, -0.5f, 0.3f, 0.5f, 1, 1.5f, 2 };
    const float y[8] = { 0, 0, 1, 0, 1, 1, 0, 1 };
    rank_dataset d = rt_dataset(8, 1, X, y);
    rank_logreg_params p;
    rank_logreg_defaults(&p);
    p.C = 2.0;
    p.fit_intercept = 0;
    rank_model_t *m = NULL;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(rank_train_logistic(&d, &p, &m, &eb), 0, "%s", eb.msg);
    cr_assert_eq(rank_model_kind(m), RANK_MODEL_LINEAR);
    double w, b;
    weights_of(m, 1, &w, &b);
    cr_assert_float_eq(b, 0.0, 1e-15);

    double lo = -10, hi = 10;
    const double phi = (sqrt(5.0) - 1) / 2;
#define F(v) obj1(X, y, 8, p.C, (v))
    for (int it = 0; it < 200; it++) {
        double a = hi - phi * (hi - lo), c = lo + phi * (hi - lo);
        if (F(a) < F(c))
            hi = c;
        else
            lo = a;
    }
    double wb = (lo + hi) / 2;
    cr_assert_float_eq(w, wb, 1e-6, "w %.9f brute force %.9f", w, wb);
    cr_assert_float_eq(F(w), F(wb), 1e-10);
#undef F
    rank_model_free(m);
    free(d.X);
    free(d.label);
}

Test(logreg, gradient_vanishes_with_intercept)
{
    enum { R = 300, NF = 3 };
    static float X[R * NF], y[R];
    uint64_t s = 99;
    for (size_t r = 0; r < R; r++) {
        double z = -0.5;
        for (size_t f = 0; f < NF; f++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            double v = (double)(s >> 11) * 0x1.0p-53 * 2 - 1;
            if (f == 2 && r % 4)
                v = 0;          /* sparse column; some NaN as missing = 0 */
            X[r * NF + f] = (float)v;
            z += (f == 0 ? 2.0 : f == 1 ? -1.0 : 0.5) * v;
        }
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(s >> 11) * 0x1.0p-53;
        y[r] = u < 1 / (1 + exp(-z));
    }
    X[7 * NF + 2] = NAN;
    rank_dataset d = rt_dataset(R, NF, X, y);
    rank_logreg_params p;
    rank_logreg_defaults(&p);
    p.C = 0.5;
    rank_model_t *m = NULL;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(rank_train_logistic(&d, &p, &m, &eb), 0, "%s", eb.msg);
    double w[NF], b;
    weights_of(m, NF, w, &b);
    /* gradient of C * sum logloss + 0.5 ||w||^2 */
    double g[NF + 1] = { 0 };
    for (size_t r = 0; r < R; r++) {
        double z = b;
        for (size_t f = 0; f < NF; f++) {
            float v = X[r * NF + f];
            z += isnan(v) ? 0 : w[f] * v;
        }
        double e = p.C * (1 / (1 + exp(-z)) - y[r]);
        for (size_t f = 0; f < NF; f++) {
            float v = X[r * NF + f];
            g[f] += isnan(v) ? 0 : e * v;
        }
        g[NF] += e;
    }
    for (size_t f = 0; f < NF; f++)
        g[f] += w[f];
    for (size_t j = 0; j <= NF; j++)
        cr_assert_lt(fabs(g[j]), 1e-6, "gradient[%zu] = %g", j, g[j]);
    /* the signs of the generating model are recovered */
    cr_assert_gt(w[0], 0.5);
    cr_assert_lt(w[1], -0.2);
    /* penalised: a smaller C shrinks the weights */
    rank_model_t *m2 = NULL;
    p.C = 0.01;
    cr_assert_eq(rank_train_logistic(&d, &p, &m2, &eb), 0);
    double w2[NF], b2;
    weights_of(m2, NF, w2, &b2);
    cr_assert_lt(fabs(w2[0]), fabs(w[0]));
    rank_model_free(m);
    rank_model_free(m2);
    free(d.X);
    free(d.label);
}

Test(logreg, separable_data_stays_finite)
{
    const float X[6] = { -3, -2, -1, 1, 2, 3 };
    const float y[6] = { 0, 0, 0, 1, 1, 1 };
    rank_dataset d = rt_dataset(6, 1, X, y);
    rank_logreg_params p;
    rank_logreg_defaults(&p);
    p.C = 100;
    rank_model_t *m = NULL;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(rank_train_logistic(&d, &p, &m, &eb), 0);
    double w, b, sc[6];
    weights_of(m, 1, &w, &b);
    cr_assert(isfinite(w) && w > 1.0);
    rank_model_score(m, X, 6, 1, sc);
    cr_assert_lt(rank_logloss(&d, sc), 0.05);
    rank_model_free(m);
    p.C = 0;
    cr_assert_eq(rank_train_logistic(&d, &p, &m, &eb), FN_EINVAL);
    free(d.X);
    free(d.label);
}
