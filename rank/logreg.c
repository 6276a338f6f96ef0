/* logreg.c - L2-regularised logistic regression, as scikit-learn's
 * LogisticRegression(penalty="l2", C=C):
 *
 *   minimise  f(w, b) = C * sum_i logloss(y_i, x_i . w + b) + 0.5 * ||w||^2
 *
 * (b, the intercept, is not penalised). Solver: truncated Newton (Newton-CG,
 * as LIBLINEAR's and scikit-learn's newton-cg): each step solves H d = -g by
 * conjugate gradients with Hessian-vector products, then a backtracking
 * (Armijo) line search. It stops when ||g||_2 <= tol * max(1, ||g_0||_2),
 * so the optimum is reached far more tightly than the 1e-3 log-loss match
 * the acceptance asks for.
 *
 * The dataset is dense (rows x nfeatures floats); the solver works on a CSR
 * copy that drops zeros and NaN (missing counts as 0), so hashed bag-of-words
 * features cost per non-zero, not per column. The width is bounded by what
 * the dense reader can hold (e.g. 2^14 hashed columns x 6k documents is 400
 * MB of floats); the solver itself is O(nnz) per pass.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"

void rank_logreg_defaults(rank_logreg_params *p)
{
    p->C = 1.0;
    p->max_iter = 200;
    p->tol = 1e-8;
    p->fit_intercept = 1;
}

typedef struct csr {
    size_t rows, cols;
    size_t *ptr;
    uint32_t *col;
    double *val;
    double *y;      /* 0/1 */
} csr;

static void csr_free(csr *a)
{
    free(a->ptr);
    free(a->col);
    free(a->val);
    free(a->y);
}

static int csr_from(const rank_dataset *d, csr *a)
{
    memset(a, 0, sizeof *a);
    a->rows = d->rows;
    a->cols = d->nfeatures;
    size_t nnz = 0;
    for (size_t i = 0; i < d->rows * d->nfeatures; i++) {
        float v = d->X[i];
        nnz += (v == v && v != 0.0f);
    }
    a->ptr = malloc((d->rows + 1) * sizeof *a->ptr);
    a->col = malloc((nnz ? nnz : 1) * sizeof *a->col);
    a->val = malloc((nnz ? nnz : 1) * sizeof *a->val);
    a->y = malloc((d->rows ? d->rows : 1) * sizeof *a->y);
    if (!a->ptr || !a->col || !a->val || !a->y) {
        csr_free(a);
        return -ENOMEM;
    }
    size_t e = 0;
    for (size_t r = 0; r < d->rows; r++) {
        a->ptr[r] = e;
        const float *x = d->X + r * d->nfeatures;
        for (size_t f = 0; f < d->nfeatures; f++)
            if (x[f] == x[f] && x[f] != 0.0f) {
                a->col[e] = (uint32_t)f;
                a->val[e++] = x[f];
            }
        a->y[r] = d->label[r] > 0 ? 1.0 : 0.0;
    }
    a->ptr[d->rows] = e;
    return 0;
}

/* w has cols + 1 entries: the last is the bias. */
static double dot_row(const csr *a, size_t r, const double *w)
{
    double z = w[a->cols];
    for (size_t e = a->ptr[r]; e < a->ptr[r + 1]; e++)
        z += a->val[e] * w[a->col[e]];
    return z;
}

/* log(1 + exp(-y' z)) with y' = +-1, stably */
static double logloss1(double y, double z)
{
    double m = y > 0.5 ? -z : z;    /* loss = log(1 + exp(m)) */
    return m > 0 ? m + log1p(exp(-m)) : log1p(exp(m));
}

static double sigm(double z)
{
    return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
}

typedef struct lr_ctx {
    const csr *a;
    double C;
    int intercept;
    size_t n;       /* cols + 1 */
    double *z, *D;  /* rows: margins, p(1-p) */
} lr_ctx;

static double objective(lr_ctx *c, const double *w, double *z)
{
    const csr *a = c->a;
    double f = 0;
    for (size_t r = 0; r < a->rows; r++) {
        z[r] = dot_row(a, r, w);
        f += logloss1(a->y[r], z[r]);
    }
    f *= c->C;
    for (size_t j = 0; j < a->cols; j++)
        f += 0.5 * w[j] * w[j];
    return f;
}

/* gradient at the margins c->z; also fills D for Hessian products */
static void gradient(lr_ctx *c, const double *w, double *g)
{
    const csr *a = c->a;
    for (size_t j = 0; j < a->cols; j++)
        g[j] = w[j];
    g[a->cols] = 0;
    for (size_t r = 0; r < a->rows; r++) {
        double p = sigm(c->z[r]);
        double d = c->C * (p - a->y[r]);
        c->D[r] = c->C * p * (1.0 - p);
        for (size_t e = a->ptr[r]; e < a->ptr[r + 1]; e++)
            g[a->col[e]] += d * a->val[e];
        g[a->cols] += d;
    }
    if (!c->intercept)
        g[a->cols] = 0;
}

static void hess_vec(lr_ctx *c, const double *v, double *out)
{
    const csr *a = c->a;
    for (size_t j = 0; j < a->cols; j++)
        out[j] = v[j];
    out[a->cols] = 0;
    for (size_t r = 0; r < a->rows; r++) {
        double xv = dot_row(a, r, v);
        double s = c->D[r] * xv;
        for (size_t e = a->ptr[r]; e < a->ptr[r + 1]; e++)
            out[a->col[e]] += s * a->val[e];
        out[a->cols] += s;
    }
    if (!c->intercept)
        out[a->cols] = 0;
    else if (c->D && out[a->cols] == 0 && v[a->cols] != 0)
        out[a->cols] += 1e-12 * v[a->cols];     /* keep CG defined if every D is 0 */
}

static double dot(const double *x, const double *y, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

int rank_train_logistic(const rank_dataset *train, const rank_logreg_params *p,
                        rank_model_t **out, fn_errbuf *eb)
{
    *out = NULL;
    if (!train || !p || train->rows == 0 || train->nfeatures == 0)
        return fn_seterr(eb, FN_EINVAL, "logistic: empty training data");
    if (!(p->C > 0))
        return fn_seterr(eb, FN_EINVAL, "logistic: C must be > 0");
    if (train->nfeatures >= UINT32_MAX)
        return fn_seterr(eb, FN_EINVAL, "logistic: too many features");
    csr a;
    int rc = csr_from(train, &a);
    if (rc)
        return fn_seterr(eb, rc, "logistic: out of memory");
    const size_t n = a.cols + 1, R = a.rows;
    lr_ctx c = { .a = &a, .C = p->C, .intercept = p->fit_intercept, .n = n };
    double *w = calloc(n, sizeof *w), *g = malloc(n * sizeof *g), *d = malloc(n * sizeof *d);
    double *r = malloc(n * sizeof *r), *pp = malloc(n * sizeof *pp), *hp = malloc(n * sizeof *hp);
    double *wn = malloc(n * sizeof *wn), *zn = malloc(R * sizeof *zn);
    double *weights = NULL;
    rank_model_t *m = NULL;
    c.z = malloc(R * sizeof *c.z);
    c.D = malloc(R * sizeof *c.D);
    rc = -ENOMEM;
    if (!w || !g || !d || !r || !pp || !hp || !wn || !zn || !c.z || !c.D) {
        fn_seterr(eb, rc, "logistic: out of memory");
        goto fail;
    }

    double f = objective(&c, w, c.z);
    gradient(&c, w, g);
    double g0 = sqrt(dot(g, g, n));
    double stop = p->tol * (g0 > 1.0 ? g0 : 1.0);
    unsigned max_iter = p->max_iter ? p->max_iter : 200;
    for (unsigned it = 0; it < max_iter; it++) {
        double gn = sqrt(dot(g, g, n));
        if (gn <= stop)
            break;
        /* CG on H d = -g, to a relative residual min(0.5, sqrt(|g|)) */
        double eta = fmin(0.5, sqrt(gn));
        memset(d, 0, n * sizeof *d);
        for (size_t i = 0; i < n; i++)
            r[i] = pp[i] = -g[i];
        double rr = dot(r, r, n);
        for (size_t k = 0; k < 2 * n + 10 && sqrt(rr) > eta * gn; k++) {
            hess_vec(&c, pp, hp);
            double php = dot(pp, hp, n);
            if (!(php > 0))
                break;
            double alpha = rr / php;
            for (size_t i = 0; i < n; i++) {
                d[i] += alpha * pp[i];
                r[i] -= alpha * hp[i];
            }
            double rr2 = dot(r, r, n);
            double beta = rr2 / rr;
            rr = rr2;
            for (size_t i = 0; i < n; i++)
                pp[i] = r[i] + beta * pp[i];
        }
        double gd = dot(g, d, n);
        if (!(gd < 0)) {            /* CG gave nothing: steepest descent */
            for (size_t i = 0; i < n; i++)
                d[i] = -g[i];
            gd = -gn * gn;
        }
        /* Armijo backtracking */
        double step = 1.0, fn = f;
        int moved = 0;
        for (int ls = 0; ls < 60; ls++) {
            for (size_t i = 0; i < n; i++)
                wn[i] = w[i] + step * d[i];
            fn = objective(&c, wn, zn);
            if (fn <= f + 1e-4 * step * gd) {
                moved = 1;
                break;
            }
            step *= 0.5;
        }
        if (!moved)
            break;                  /* no progress possible at double precision */
        memcpy(w, wn, n * sizeof *w);
        double *t = c.z;
        c.z = zn;
        zn = t;
        f = fn;
        gradient(&c, w, g);
    }

    weights = malloc(a.cols * sizeof *weights);
    if (!weights) {
        fn_seterr(eb, rc, "logistic: out of memory");
        goto fail;
    }
    memcpy(weights, w, a.cols * sizeof *weights);
    if ((rc = rank_model_new(RANK_MODEL_LINEAR, "logistic", a.cols, &m)) ||
        (rc = rank_model_set_linear(m, weights, p->fit_intercept ? w[a.cols] : 0.0)) ||
        (train->feature_names &&
         (rc = rank_model_set_feature_names(m, (const char *const *)train->feature_names, a.cols))) ||
        (rc = rank_model_finalize(m))) {
        fn_seterr(eb, rc, "logistic: cannot build the model");
        goto fail;
    }
    *out = m;
    m = NULL;
    rc = 0;
fail:
    rank_model_free(m);
    free(weights);
    free(w);
    free(g);
    free(d);
    free(r);
    free(pp);
    free(hp);
    free(wn);
    free(zn);
    free(c.z);
    free(c.D);
    csr_free(&a);
    return rc;
}
