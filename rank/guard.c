/* guard.c - guarded model selection by inner cross-validation (guard.h).
 *
 * Work plan: the training queries are shuffled (seeded) and dealt into K
 * inner folds; for each fold the other folds' queries are copied into an
 * inner training set (rank_dataset_subset: bins, base weight and trees see
 * nothing else) and the fold's queries into a held-out set. Tasks are the
 * (setting, fold) pairs; a task trains one model (trees or linear) and
 * scores its held-out queries for every interpolation strength of that
 * setting. Tasks write
 * disjoint slots of one (candidate x query) table, so running them on any
 * number of threads gives the same table, the same choice and the same
 * model. Statistics and the choice are computed from the table afterwards.
 */
#define _POSIX_C_SOURCE 200809L
#include "guard.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fn_rand.h"
#include "metrics.h"
#include "rank_int.h"

/* The grid. Strong regularisation throughout: few shallow trees, a small
 * learning rate, at least 20 documents a leaf, L2 10 on leaf values, half the
 * features and 80% of the queries per tree. margin: the fraction
 * of the fitted base weight w0 the trees start from. A full-strength margin
 * left the trees little to do (on cranfield's stage-2 data, inner CV of the
 * first outer fold, d3-t100 gained +2.7% NDCG@10 with it, +7.6% without and
 * +4-6% at a quarter of it, docs/ltr.md), so the trees start from 0 or from
 * w0 / 4. The most expensive settings come first: tasks start with them. */
typedef struct gsetting {
    unsigned depth, trees;
    double lr, margin;
} gsetting;

static const gsetting GRID[] = {
    {3, 100, 0.05, 0.25},
    {3, 100, 0.05, 0.0},
    {2, 50, 0.05, 0.25},
    {2, 50, 0.05, 0.0},
};
#define NGRID (sizeof GRID / sizeof GRID[0])

/* Linear candidates: NDCG-weighted pairwise logistic loss over standardised
 * features on top of the fixed base margin, L2 LIN_L2[i] per training query
 * (the pair weights of a query sum to about 1 at most). */
static const double LIN_L2[] = {1.0, 0.1};
#define NLIN (sizeof LIN_L2 / sizeof LIN_L2[0])

/* The candidates in report order (ties go to the earlier one). Trees with a
 * margin are also interpolated towards the base: margin * w0 * base + alpha
 * * trees, alpha a power of two so that scaling the leaves is exact; without
 * a margin scaling the trees would not change their order. */
enum { GC_BASE, GC_TREES, GC_LINEAR, GC_ALT };
typedef struct gcand {
    int kind;
    unsigned setting;   /* GRID index, or LIN_L2 index */
    double alpha;
} gcand;

static const gcand CANDS[] = {
    {GC_BASE, 0, 0},
    {GC_TREES, 3, 1.0},                                           /* d2-t50 */
    {GC_TREES, 2, 0.25}, {GC_TREES, 2, 0.5}, {GC_TREES, 2, 1.0},  /* d2-t50, margin */
    {GC_TREES, 1, 1.0},                                           /* d3-t100 */
    {GC_TREES, 0, 0.25}, {GC_TREES, 0, 0.5}, {GC_TREES, 0, 1.0},  /* d3-t100, margin */
    {GC_LINEAR, 0, 0},
    {GC_LINEAR, 1, 0},
    /* the alternative score: alone (alpha 0), and base + alpha * r * alt */
    {GC_ALT, 0, 0}, {GC_ALT, 0, 0.5}, {GC_ALT, 0, 1.0}, {GC_ALT, 0, 2.0},
};
#define NCANDS (sizeof CANDS / sizeof CANDS[0])
#define NALT 4   /* the GC_ALT entries at CANDS' end */

/* Logistic regression: C over standardised features. */
static const double CGRID[] = {0.001, 0.01, 0.1, 1.0, 10.0};
#define NCGRID (sizeof CGRID / sizeof CGRID[0])

#define GUARD_NDCG_K 10

void rank_guard_defaults(rank_guard_params *p)
{
    memset(p, 0, sizeof *p);
    p->objective = RANK_OBJ_LAMBDARANK;
    p->inner_folds = 5;
    p->seed = 1;
    p->threads = 2;
    /* 2.5, not 2.0: with the alternative-score candidates there are 15
     * chances to pass by luck; at 2.0 one npl outer fold took base+alt-a2
     * (inner t 2.18) and lost 6.9% on its 18 held-out queries */
    p->min_t = 2.5;
    p->train_depth = 100;
    p->alt_feature = RANK_GUARD_NO_ALT;
}

/* r = sum of base / sum of alt over d's rows where both are finite and
 * alt > 0 (1 if none): puts alt on the base's scale. */
static double alt_ratio(const rank_dataset *d, size_t base, size_t alt)
{
    double sb = 0, sa = 0;
    for (size_t i = 0; i < d->rows; i++) {
        float b = d->X[i * d->nfeatures + base], a = d->X[i * d->nfeatures + alt];
        if (isnan(b) || isnan(a) || a <= 0) continue;
        sb += b;
        sa += a;
    }
    return sa > 0 && sb > 0 ? sb / sa : 1.0;
}

/* The linear model wb * base + wa * alt (0 trees). */
static int alt_model(const rank_dataset *d, size_t base, size_t alt, double wb, double wa, rank_model_t **out)
{
    rank_model_t *m = NULL;
    double *w = calloc(d->nfeatures, sizeof *w);
    int rc = w ? rank_model_new(RANK_MODEL_TREES, "lambdarank", d->nfeatures, &m) : -ENOMEM;
    if (rc == 0) {
        w[base] += wb;
        w[alt] += wa;
        rc = rank_model_set_linear_part(m, w);
    }
    if (rc == 0 && d->feature_names)
        rc = rank_model_set_feature_names(m, (const char *const *)d->feature_names, d->nfeatures);
    if (rc == 0)
        rc = rank_model_finalize(m);
    free(w);
    if (rc) {
        rank_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

static inline double xv(float v)
{
    return isnan(v) ? 0.0 : (double)v;
}

/* Mean and (population) variance of column f, NaN as 0; 0 and 0 without rows. */
static void col_moments(const rank_dataset *d, size_t f, double *mu, double *var)
{
    const size_t N = d->rows, F = d->nfeatures;
    double a = 0, b = 0;
    for (size_t i = 0; i < N; i++) {
        double x = xv(d->X[i * F + f]);
        a += x;
        b += x * x;
    }
    *mu = N ? a / (double)N : 0;
    *var = N ? b / (double)N - *mu * *mu : 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- base weight */

typedef struct wfit {
    const rank_dataset *d;
    size_t col;
    enum rank_objective obj;
    unsigned k;
    double b0;              /* binary: logit of the positive rate */
    double *sc, *g, *h;     /* max query length */
} wfit;

/* d/dw of the loss at w (increasing in w: the loss is convex along w * x). */
static int wfit_deriv(wfit *f, double w, double *out)
{
    const rank_dataset *d = f->d;
    const size_t F = d->nfeatures;
    double sum = 0;
    if (f->obj == RANK_OBJ_LAMBDARANK) {
        for (size_t q = 0; q < d->nqueries; q++) {
            size_t b = d->group[q], n = d->group[q + 1] - b;
            for (size_t i = 0; i < n; i++)
                f->sc[i] = w * xv(d->X[(b + i) * F + f->col]);
            int rc = rank_lambda_gradients(d->label + b, f->sc, n, f->k, f->g, f->h);
            if (rc)
                return rc;
            for (size_t i = 0; i < n; i++)
                sum += f->g[i] * xv(d->X[(b + i) * F + f->col]);
        }
    } else {
        for (size_t r = 0; r < d->rows; r++) {
            double x = xv(d->X[r * F + f->col]);
            sum += (rank_sigmoid(f->b0 + w * x) - (d->label[r] > 0 ? 1.0 : 0.0)) * x;
        }
    }
    *out = sum;
    return 0;
}

int rank_base_weight_fit(const rank_dataset *d, size_t col, enum rank_objective obj, unsigned ndcg_k, double *w0)
{
    *w0 = 0;
    if (!d || col >= d->nfeatures || d->rows == 0 ||
        (obj != RANK_OBJ_LAMBDARANK && obj != RANK_OBJ_BINARY) || (obj == RANK_OBJ_LAMBDARANK && !d->nqueries))
        return FN_EINVAL;
    const size_t F = d->nfeatures;
    double s1 = 0, s2 = 0;
    for (size_t r = 0; r < d->rows; r++) {
        double x = xv(d->X[r * F + col]);
        s1 += x;
        s2 += x * x;
    }
    double mean = s1 / (double)d->rows, var = s2 / (double)d->rows - mean * mean;
    if (!(var > 0) || !isfinite(var))
        return 0; /* constant: no margin */
    size_t maxn = 1;
    for (size_t q = 0; q < d->nqueries; q++)
        if (d->group[q + 1] - d->group[q] > maxn)
            maxn = d->group[q + 1] - d->group[q];
    wfit f = {.d = d, .col = col, .obj = obj, .k = ndcg_k};
    if (obj == RANK_OBJ_BINARY) {
        size_t pos = 0;
        for (size_t r = 0; r < d->rows; r++)
            pos += d->label[r] > 0;
        if (pos > 0 && pos < d->rows) {
            double pr = (double)pos / (double)d->rows;
            f.b0 = log(pr / (1.0 - pr));
        }
    }
    f.sc = malloc(maxn * sizeof(double));
    f.g = malloc(maxn * sizeof(double));
    f.h = malloc(maxn * sizeof(double));
    int rc = -ENOMEM;
    if (!f.sc || !f.g || !f.h)
        goto out;
    /* g(w) = dL/dw is increasing. Bracket the root on a decade grid from
     * 1/sd(x), then refine log(w) by regula falsi (Illinois) to 1e-4. */
    const double scale = 1.0 / sqrt(var);
    double a = log(scale), b, ga, gb;
    if ((rc = wfit_deriv(&f, exp(a), &ga)))
        goto out;
    const double step = ga < 0 ? log(10.0) : -log(10.0);
    int found = 0;
    for (int i = 0; i < 6 && !found; i++) {
        b = a + step;
        if ((rc = wfit_deriv(&f, exp(b), &gb)))
            goto out;
        if ((ga < 0) != (gb < 0))
            found = 1;
        else {
            a = b;
            ga = gb;
        }
    }
    if (!found) {
        /* no root within 1e-6..1e6 / sd: the derivative stays negative (the
         * feature separates the labels: the largest weight) or positive
         * (it does not help even a little: no margin) */
        *w0 = ga < 0 ? exp(a) : 0.0;
        goto out;
    }
    if (a > b) { /* a below the root, b above it */
        double t = a;
        a = b;
        b = t;
        t = ga;
        ga = gb;
        gb = t;
    }
    int side = 0;
    for (int it = 0; it < 40 && b - a > 1e-4; it++) {
        double c = (a * gb - b * ga) / (gb - ga), gc;
        if (!(c > a && c < b))
            c = 0.5 * (a + b);
        if ((rc = wfit_deriv(&f, exp(c), &gc)))
            goto out;
        if (gc < 0) {
            a = c;
            ga = gc;
            if (side == -1)
                gb *= 0.5;
            side = -1;
        } else {
            b = c;
            gb = gc;
            if (side == 1)
                ga *= 0.5;
            side = 1;
        }
        if (gc == 0) {
            a = b = c;
            break;
        }
    }
    *w0 = exp(0.5 * (a + b));
    rc = 0;
out:
    free(f.sc);
    free(f.g);
    free(f.h);
    return rc;
}

/* ---------------------------------------------------------------- models */

/* m with every leaf multiplied by alpha (base margin and names kept). */
static int scaled_copy(const rank_model_t *m, double alpha, rank_model_t **out)
{
    size_t nf = rank_model_nfeatures(m);
    rank_model_t *c = NULL;
    rank_node *nodes = NULL;
    double *w = calloc(nf ? nf : 1, sizeof *w);
    const char **names = calloc(nf ? nf : 1, sizeof *names);
    int rc = -ENOMEM;
    if (!w || !names)
        goto out;
    if ((rc = rank_model_new(RANK_MODEL_TREES, rank_model_objective(m), nf, &c)))
        goto out;
    rank_model_set_base_score(c, rank_model_base_score(m));
    for (size_t t = 0; t < rank_model_ntrees(m); t++) {
        size_t n;
        const rank_node *src = rank_model_tree(m, t, &n);
        rank_node *nn = realloc(nodes, n * sizeof *nn);
        if (!nn) {
            rc = -ENOMEM;
            goto out;
        }
        nodes = nn;
        for (size_t i = 0; i < n; i++) {
            nodes[i] = src[i];
            if (nodes[i].feature < 0)
                nodes[i].value *= alpha;
        }
        if ((rc = rank_model_add_tree(c, nodes, n)))
            goto out;
    }
    int named = 0;
    for (size_t i = 0; i < nf; i++) {
        w[i] = rank_model_weight(m, i);
        names[i] = rank_model_feature_name(m, i);
        named |= names[i] != NULL;
    }
    if (rank_model_nweights(m) && (rc = rank_model_set_linear_part(c, w)))
        goto out;
    if (named && (rc = rank_model_set_feature_names(c, names, nf)))
        goto out;
    if ((rc = rank_model_finalize(c)))
        goto out;
    *out = c;
    c = NULL;
out:
    rank_model_free(c);
    free(nodes);
    free(w);
    free(names);
    return rc;
}

/* "Keep the base order": 0 trees, weight 1 on the base column. */
static int base_model(const rank_dataset *d, size_t col, rank_model_t **out)
{
    return alt_model(d, col, col, 1.0, 0.0, out);
}

static void tree_params(const gsetting *s, const rank_guard_params *p, double w0, rank_gbdt_params *gp)
{
    rank_gbdt_defaults(gp);
    gp->objective = RANK_OBJ_LAMBDARANK;
    gp->trees = s->trees;
    gp->max_depth = s->depth;
    gp->learning_rate = s->lr;
    gp->min_leaf = 20;
    gp->lambda_l2 = 10.0;
    gp->feature_subsample = 0.5;
    gp->row_subsample = 0.8;
    gp->max_bins = 256;
    gp->ndcg_k = GUARD_NDCG_K;
    gp->seed = p->seed;
    gp->threads = 1;
    gp->base_feature = p->base_feature;
    gp->base_weight = w0 * s->margin;
}

/* Logistic regression on standardised columns, returned in raw units: w_i =
 * w'_i / sd_i, bias = b' - sum w'_i mu_i / sd_i, so it scores raw rows
 * (NaN as 0, the same as in training). */
static int train_logistic_std(const rank_dataset *d, double C, rank_model_t **out, fn_errbuf *eb)
{
    const size_t N = d->rows, F = d->nfeatures;
    double *mu = calloc(F, sizeof *mu), *sd = calloc(F, sizeof *sd), *w = calloc(F, sizeof *w);
    rank_dataset s;
    memset(&s, 0, sizeof s);
    s.rows = N;
    s.nfeatures = F;
    s.X = malloc((N ? N : 1) * F * sizeof *s.X);
    s.label = d->label; /* borrowed: not freed below */
    rank_model_t *m = NULL, *r = NULL;
    int rc = -ENOMEM;
    if (!mu || !sd || !w || !s.X) {
        fn_seterr(eb, rc, "guard: out of memory");
        goto out;
    }
    for (size_t f = 0; f < F; f++) {
        double var;
        col_moments(d, f, &mu[f], &var);
        sd[f] = var > 1e-24 * (1 + mu[f] * mu[f]) ? sqrt(var) : 0;
        for (size_t i = 0; i < N; i++)
            s.X[i * F + f] = sd[f] > 0 ? (float)((xv(d->X[i * F + f]) - mu[f]) / sd[f]) : 0.0f;
    }
    rank_logreg_params lp;
    rank_logreg_defaults(&lp);
    lp.C = C;
    if ((rc = rank_train_logistic(&s, &lp, &m, eb)))
        goto out;
    double bias = rank_model_bias(m) + rank_model_base_score(m);
    for (size_t f = 0; f < F; f++) {
        double ws = rank_model_weight(m, f);
        w[f] = sd[f] > 0 ? ws / sd[f] : 0;
        if (sd[f] > 0)
            bias -= ws * mu[f] / sd[f];
    }
    if ((rc = rank_model_new(RANK_MODEL_LINEAR, "logistic", F, &r)) || (rc = rank_model_set_linear(r, w, bias)) ||
        (d->feature_names &&
         (rc = rank_model_set_feature_names(r, (const char *const *)d->feature_names, F))) ||
        (rc = rank_model_finalize(r))) {
        fn_seterr(eb, rc, "guard: cannot build the logistic model");
        goto out;
    }
    *out = r;
    r = NULL;
out:
    rank_model_free(m);
    rank_model_free(r);
    free(s.X);
    free(mu);
    free(sd);
    free(w);
    return rc;
}

/* The linear candidate: scores w0 * base + v . z with z the standardised
 * features (missing as 0) and v fitted, base's own v fixed at 0, by Newton's
 * method (steps by conjugate gradients) on the convex loss
 *   sum over pairs c_ij log(1 + exp(-(s_i - s_j))) + lambda/2 |v|^2
 * where the pairs and c_ij are LambdaMART's at the base order (label_i >
 * label_j, one of the two in the base's top 10, c_ij = |dNDCG@10| of
 * swapping them): fixed weights, so a true convex function and not a
 * moving target. Returned as a 0-tree model whose linear part is w0 on the
 * base plus v / sd on the others (base_score the centring), which scores
 * raw rows. */
static int train_linear_rank(const rank_dataset *d, size_t base, double w0, double l2_per_query, rank_model_t **out,
                             fn_errbuf *eb)
{
    const size_t F = d->nfeatures, K10 = GUARD_NDCG_K;
    double *mu = calloc(F, sizeof *mu), *sd = calloc(F, sizeof *sd);
    size_t maxn = 1;
    for (size_t q = 0; q < d->nqueries; q++)
        if (d->group[q + 1] - d->group[q] > maxn)
            maxn = d->group[q + 1] - d->group[q];
    double *sc = malloc(maxn * sizeof *sc), *gain = malloc(maxn * sizeof *gain), *disc = malloc(maxn * sizeof *disc);
    size_t *order = malloc(maxn * sizeof *order), *otmp = malloc(maxn * sizeof *otmp);
    float *lab = malloc(maxn * sizeof *lab);
    /* pair p's nonzero z_hi - z_lo: Dv/Df[Dp[p] .. Dp[p+1]) (sparse data:
     * documents that both lack a feature differ by 0 in it) */
    float *Dv = NULL;
    uint32_t *Df = NULL;
    size_t *Dp = NULL, nnz = 0, ncap = 0;
    double *pc = NULL, *pm = NULL, *ps = NULL;
    size_t np = 0, pcap = 0;
    double *v = calloc(F, sizeof *v), *g = calloc(F, sizeof *g), *hw = NULL;
    double *step = calloc(F, sizeof *step), *vn = calloc(F, sizeof *vn), *w = calloc(F, sizeof *w);
    double *cr = calloc(F, sizeof *cr), *cd = calloc(F, sizeof *cd), *Hd = calloc(F, sizeof *Hd);
    rank_model_t *m = NULL;
    int rc = -ENOMEM;
    if (!mu || !sd || !sc || !gain || !disc || !order || !otmp || !lab || !v || !g || !step || !vn || !w || !cr ||
        !cd || !Hd)
        goto oom;
    for (size_t f = 0; f < F; f++) {
        double var;
        col_moments(d, f, &mu[f], &var);
        sd[f] = f != base && var > 1e-24 * (1 + mu[f] * mu[f]) ? sqrt(var) : 0; /* base: fixed, not fitted */
    }
    for (size_t q = 0; q < d->nqueries; q++) {
        size_t b0 = d->group[q], n = d->group[q + 1] - b0;
        if (n < 2)
            continue;
        const float *L = d->label + b0;
        double idcg = rank__ideal_dcg(L, n, K10, lab);
        if (idcg <= 0)
            continue;
        for (size_t i = 0; i < n; i++)
            sc[i] = xv(d->X[(b0 + i) * F + base]);
        rank__order_desc(sc, n, order, otmp);
        for (size_t r = 0; r < n; r++) {
            gain[r] = exp2(L[order[r]]) - 1.0;
            disc[r] = 1.0 / log2(2.0 + (double)r);
        }
        for (size_t a = 0; a < K10 && a + 1 < n; a++)
            for (size_t bq = a + 1; bq < n; bq++) {
                size_t da = order[a], db = order[bq];
                if (L[da] == L[db])
                    continue;
                size_t hi = L[da] > L[db] ? da : db, lo = hi == da ? db : da;
                if (np + 1 >= pcap) {
                    size_t nc = pcap ? 2 * pcap : 4096;
                    double *n1 = realloc(pc, nc * sizeof *n1);
                    if (n1)
                        pc = n1;
                    double *n2 = realloc(pm, nc * sizeof *n2);
                    if (n2)
                        pm = n2;
                    size_t *n3 = realloc(Dp, nc * sizeof *n3);
                    if (n3)
                        Dp = n3;
                    if (!n1 || !n2 || !n3)
                        goto oom;
                    pcap = nc;
                }
                if (nnz + F > ncap) {
                    size_t nc = ncap ? 2 * ncap : 4096 * (F + 1);
                    while (nc < nnz + F)
                        nc *= 2;
                    float *nv = realloc(Dv, nc * sizeof *nv);
                    if (nv)
                        Dv = nv;
                    uint32_t *nf = realloc(Df, nc * sizeof *nf);
                    if (nf)
                        Df = nf;
                    if (!nv || !nf)
                        goto oom;
                    ncap = nc;
                }
                const float *xh = d->X + (b0 + hi) * F, *xl = d->X + (b0 + lo) * F;
                Dp[np] = nnz;
                for (size_t f = 0; f < F; f++) {
                    float z = sd[f] > 0 ? (float)((xv(xh[f]) - xv(xl[f])) / sd[f]) : 0.0f;
                    if (z != 0) {
                        Dv[nnz] = z;
                        Df[nnz++] = (uint32_t)f;
                    }
                }
                pc[np] = fabs(gain[a] - gain[bq]) * fabs(disc[a] - disc[bq]) / idcg;
                pm[np] = w0 * (xv(xh[base]) - xv(xl[base]));
                np++;
                Dp[np] = nnz;
            }
    }
    if (!(ps = malloc((np ? np : 1) * sizeof *ps)) || !(hw = malloc((np ? np : 1) * sizeof *hw)))
        goto oom;
    const double lambda = l2_per_query * (double)(d->nqueries ? d->nqueries : 1);
    /* loss at v, margins into ps */
#define LOSS(vv, out)                                                                       \
    do {                                                                                    \
        double J_ = 0;                                                                      \
        for (size_t p_ = 0; p_ < np; p_++) {                                                \
            double s_ = pm[p_];                                                             \
            for (size_t e_ = Dp[p_]; e_ < Dp[p_ + 1]; e_++)                                 \
                s_ += (vv)[Df[e_]] * Dv[e_];                                                \
            ps[p_] = s_;                                                                    \
            J_ += pc[p_] * (s_ > 0 ? log1p(exp(-s_)) : -s_ + log1p(exp(s_)));               \
        }                                                                                   \
        for (size_t f_ = 0; f_ < F; f_++)                                                   \
            J_ += 0.5 * lambda * (vv)[f_] * (vv)[f_];                                       \
        (out) = J_;                                                                         \
    } while (0)
    double J;
    LOSS(v, J);
    for (int it = 0; it < 30; it++) {
        /* gradient, and the pairs' curvature for the Hessian-vector products */
        memset(g, 0, F * sizeof *g);
        double gmax = 0, gn = 0;
        for (size_t pp = 0; pp < np; pp++) {
            double sg = 1.0 / (1.0 + exp(ps[pp])); /* sigma(-s) */
            double gw = -pc[pp] * sg;
            hw[pp] = pc[pp] * sg * (1.0 - sg);
            for (size_t e = Dp[pp]; e < Dp[pp + 1]; e++)
                g[Df[e]] += gw * Dv[e];
        }
        for (size_t f = 0; f < F; f++) {
            g[f] += lambda * v[f];
            gn += g[f] * g[f];
            if (fabs(g[f]) > gmax)
                gmax = fabs(g[f]);
        }
        if (gmax < 1e-10 * (1 + lambda))
            break;
        /* Newton step by conjugate gradients on H step = -g (H = sum hw d d^T +
         * lambda I, positive definite), to 1% of |g| */
        memset(step, 0, F * sizeof *step);
        for (size_t f = 0; f < F; f++)
            cr[f] = cd[f] = -g[f];
        double rr = gn;
        for (size_t cgi = 0; cgi < 50 && rr > 1e-4 * gn; cgi++) {
            memset(Hd, 0, F * sizeof *Hd);
            for (size_t pp = 0; pp < np; pp++) {
                double t = 0;
                for (size_t e = Dp[pp]; e < Dp[pp + 1]; e++)
                    t += Dv[e] * cd[Df[e]];
                t *= hw[pp];
                for (size_t e = Dp[pp]; e < Dp[pp + 1]; e++)
                    Hd[Df[e]] += t * Dv[e];
            }
            double dHd = 0;
            for (size_t f = 0; f < F; f++) {
                Hd[f] += lambda * cd[f];
                dHd += cd[f] * Hd[f];
            }
            if (!(dHd > 0))
                break;
            double a = rr / dHd, rn = 0;
            for (size_t f = 0; f < F; f++) {
                step[f] += a * cd[f];
                cr[f] -= a * Hd[f];
                rn += cr[f] * cr[f];
            }
            for (size_t f = 0; f < F; f++)
                cd[f] = cr[f] + rn / rr * cd[f];
            rr = rn;
        }
        double slope = 0, smax = 0;
        for (size_t f = 0; f < F; f++) {
            slope += g[f] * step[f];
            if (fabs(step[f]) > smax)
                smax = fabs(step[f]);
        }
        if (!(slope < 0) || smax < 1e-12)
            break;
        double t = 1.0, Jn = J;
        int okstep = 0;
        for (int ls = 0; ls < 40; ls++, t *= 0.5) {
            for (size_t f = 0; f < F; f++)
                vn[f] = v[f] + t * step[f];
            LOSS(vn, Jn);
            if (Jn <= J + 1e-4 * t * slope) {
                okstep = 1;
                break;
            }
        }
        if (!okstep)
            break;
        memcpy(v, vn, F * sizeof *v);
        double dJ = J - Jn;
        J = Jn;
        if (dJ <= 1e-12 * (fabs(J) + 1e-300))
            break;
    }
#undef LOSS
    double bias = 0;
    for (size_t f = 0; f < F; f++) {
        w[f] = sd[f] > 0 ? v[f] / sd[f] : 0;
        bias -= w[f] * mu[f];
    }
    w[base] = w0;
    if ((rc = rank_model_new(RANK_MODEL_TREES, "lambdarank", F, &m)))
        goto fail;
    rank_model_set_base_score(m, bias);
    if ((rc = rank_model_set_linear_part(m, w)) ||
        (d->feature_names && (rc = rank_model_set_feature_names(m, (const char *const *)d->feature_names, F))) ||
        (rc = rank_model_finalize(m)))
        goto fail;
    *out = m;
    m = NULL;
    rc = 0;
    goto done;
oom:
    rc = -ENOMEM;
fail:
    fn_seterr(eb, rc, "guard: linear model: %s", fn_strerror(rc));
done:
    rank_model_free(m);
    free(mu);
    free(sd);
    free(sc);
    free(gain);
    free(disc);
    free(order);
    free(otmp);
    free(lab);
    free(Dv);
    free(Df);
    free(Dp);
    free(pc);
    free(pm);
    free(ps);
    free(v);
    free(g);
    free(hw);
    free(cr);
    free(cd);
    free(Hd);
    free(step);
    free(vn);
    free(w);
    return rc;
}

/* Each query's top n rows by the base column (missing as 0; ties in row
 * order), in their original order. n == 0 or a query no longer than n: all
 * of it. Training on the documents the base already ranks high, as the
 * stage-2 model re-ranks a BM25F window: on cranfield's stage-2 windows (~490
 * documents a query) inner CV gave d3-t100 +7.6% NDCG@10 trained on each
 * query's top 100, +3.7% on its top 200 and +3.2% on all (docs/ltr.md). */
static int top_by_base(const rank_dataset *d, size_t base, size_t n, rank_dataset *out)
{
    const size_t F = d->nfeatures;
    memset(out, 0, sizeof *out);
    size_t maxn = 1, rows = 0;
    for (size_t q = 0; q < d->nqueries; q++) {
        size_t m = d->group[q + 1] - d->group[q];
        if (m > maxn)
            maxn = m;
        rows += n && m > n ? n : m;
    }
    double *sc = malloc(maxn * sizeof *sc);
    size_t *order = malloc(maxn * sizeof *order), *tmp = malloc(maxn * sizeof *tmp);
    uint8_t *keep = malloc(maxn);
    out->rows = rows;
    out->nfeatures = F;
    out->nqueries = d->nqueries;
    out->X = malloc((rows ? rows : 1) * F * sizeof *out->X);
    out->label = malloc((rows ? rows : 1) * sizeof *out->label);
    out->group = malloc((d->nqueries + 1) * sizeof *out->group);
    int rc = -ENOMEM;
    if (!sc || !order || !tmp || !keep || !out->X || !out->label || !out->group)
        goto out;
    if (d->feature_names) {
        if (!(out->feature_names = calloc(F, sizeof(char *))))
            goto out;
        for (size_t f = 0; f < F; f++)
            if (d->feature_names[f] && !(out->feature_names[f] = strdup(d->feature_names[f])))
                goto out;
    }
    size_t w = 0;
    out->group[0] = 0;
    for (size_t q = 0; q < d->nqueries; q++) {
        size_t b = d->group[q], m = d->group[q + 1] - b;
        memset(keep, 1, m);
        if (n && m > n) {
            for (size_t i = 0; i < m; i++)
                sc[i] = xv(d->X[(b + i) * F + base]);
            rank__order_desc(sc, m, order, tmp);
            memset(keep, 0, m);
            for (size_t i = 0; i < n; i++)
                keep[order[i]] = 1;
        }
        for (size_t i = 0; i < m; i++)
            if (keep[i]) {
                memcpy(out->X + w * F, d->X + (b + i) * F, F * sizeof *out->X);
                out->label[w++] = d->label[b + i];
            }
        out->group[q + 1] = w;
    }
    rc = 0;
out:
    free(sc);
    free(order);
    free(tmp);
    free(keep);
    if (rc)
        rank_dataset_free(out);
    return rc;
}

/* ---------------------------------------------------------------- inner CV */

struct gctx;
typedef struct gctx {
    const rank_dataset *d;          /* grouped (logistic without groups: one row a group) */
    const rank_dataset *dtop;       /* d, each query cut to its top train_depth by the base */
    const rank_guard_params *p;
    unsigned K;
    size_t nq;
    rank_dataset *tr, *ho;          /* [K] */
    size_t **hoq;                   /* [K] global query of each held-out query */
    size_t *nho;                    /* [K] */
    double *w0;                     /* [K] */
    double *val;                    /* [ncand * nq]: NDCG@10 (lambdarank) or summed log-loss (logistic) */
    size_t ncand;
    double w0all;                   /* on all the data */
    /* tasks: the base weights of the folds and of all the data, then the
     * (setting, fold) trainings */
    int (*fn)(struct gctx *, size_t, fn_errbuf *);
    size_t ntasks, next;
    pthread_mutex_t mu;
    int rc;
    size_t rc_task;
    fn_errbuf eb;
} gctx;

static int run_one(gctx *c, size_t task, fn_errbuf *eb)
{
    const rank_guard_params *p = c->p;
    /* the largest tree settings first and the (cheap) linear ones last, so
     * that the last tasks to finish are short */
    size_t pos = task / c->K, k = task % c->K;
    size_t s = p->objective == RANK_OBJ_LOGISTIC ? NCGRID - 1 - pos : pos < NGRID ? NGRID - 1 - pos : pos;
    const rank_dataset *tr = &c->tr[k], *ho = &c->ho[k];
    rank_model_t *m = NULL, *ma = NULL;
    double *sc = malloc((ho->rows ? ho->rows : 1) * sizeof *sc);
    int rc = -ENOMEM;
    if (!sc)
        goto out;
    if (p->objective == RANK_OBJ_LOGISTIC) {
        if ((rc = train_logistic_std(tr, CGRID[s], &m, eb)))
            goto out;
        rank_model_score(m, ho->X, ho->rows, ho->nfeatures, sc);
        for (size_t j = 0; j < c->nho[k]; j++) {
            double sum = 0;
            for (size_t r = ho->group[j]; r < ho->group[j + 1]; r++) {
                double z = sc[r], y = ho->label[r] > 0 ? 1.0 : 0.0;
                /* log(1 + e^-|z|) + max(z, 0) - y z: log-loss of a margin, stable */
                sum += log1p(exp(-fabs(z))) + (z > 0 ? z : 0) - y * z;
            }
            c->val[s * c->nq + c->hoq[k][j]] = sum;
        }
        rc = 0;
        goto out;
    }
    int kind = s >= NGRID ? GC_LINEAR : GC_TREES;
    unsigned si = (unsigned)(kind == GC_LINEAR ? s - NGRID : s);
    if (kind == GC_LINEAR) {
        if ((rc = train_linear_rank(tr, p->base_feature, c->w0[k], LIN_L2[si], &m, eb)))
            goto out;
    } else {
        rank_gbdt_params gp;
        tree_params(&GRID[si], p, c->w0[k], &gp);
        if ((rc = rank_train_gbdt(tr, NULL, &gp, NULL, NULL, &m, eb)))
            goto out;
    }
    /* every candidate made from this model */
    for (size_t cand = 0; cand < NCANDS; cand++) {
        if (CANDS[cand].kind != kind || CANDS[cand].setting != si)
            continue;
        const rank_model_t *use = m;
        if (kind == GC_TREES && CANDS[cand].alpha != 1.0) {
            if ((rc = scaled_copy(m, CANDS[cand].alpha, &ma))) {
                fn_seterr(eb, rc, "guard: out of memory");
                goto out;
            }
            use = ma;
        }
        rank_model_score(use, ho->X, ho->rows, ho->nfeatures, sc);
        for (size_t j = 0; j < c->nho[k]; j++) {
            size_t b = ho->group[j], n = ho->group[j + 1] - b;
            c->val[cand * c->nq + c->hoq[k][j]] = rank_ndcg_query(ho->label + b, sc + b, n, GUARD_NDCG_K);
        }
        rank_model_free(ma);
        ma = NULL;
    }
    rc = 0;
out:
    rank_model_free(m);
    rank_model_free(ma);
    free(sc);
    if (rc && !eb->msg[0])
        fn_seterr(eb, rc, "guard: %s", fn_strerror(rc));
    return rc;
}

static int fit_one(gctx *c, size_t task, fn_errbuf *eb)
{
    const rank_dataset *d = task < c->K ? &c->tr[task] : c->dtop;
    double *w = task < c->K ? &c->w0[task] : &c->w0all;
    int rc = rank_base_weight_fit(d, c->p->base_feature, RANK_OBJ_LAMBDARANK, GUARD_NDCG_K, w);
    if (rc)
        fn_seterr(eb, rc, "guard: cannot fit the base weight: %s", fn_strerror(rc));
    return rc;
}

static void *worker(void *arg)
{
    gctx *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        size_t t = c->next < c->ntasks && !c->rc ? c->next++ : SIZE_MAX;
        pthread_mutex_unlock(&c->mu);
        if (t == SIZE_MAX)
            return NULL;
        fn_errbuf eb = {{0}};
        int rc = c->fn(c, t, &eb);
        if (rc) {
            pthread_mutex_lock(&c->mu);
            if (!c->rc || t < c->rc_task) { /* report the first task's error, whatever the timing */
                c->rc = rc;
                c->rc_task = t;
                c->eb = eb;
            }
            pthread_mutex_unlock(&c->mu);
        }
    }
}

static void run_tasks(gctx *c, int (*fn)(gctx *, size_t, fn_errbuf *), size_t ntasks, unsigned threads)
{
    pthread_t th[64];
    unsigned started = 0;
    c->fn = fn;
    c->ntasks = ntasks;
    c->next = 0;
    if (threads > 64)
        threads = 64;
    pthread_mutex_init(&c->mu, NULL);
    for (unsigned i = 1; i < threads && i < c->ntasks; i++) {
        if (pthread_create(&th[started], NULL, worker, c) != 0)
            break; /* fewer threads: same result, slower */
        started++;
    }
    worker(c);
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&c->mu);
}

/* ---------------------------------------------------------------- driver */

void rank_guard_report_free(rank_guard_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->cand && i < r->ncand; i++) {
        free(r->cand[i].fold);
        free(r->cand[i].query);
    }
    free(r->cand);
    memset(r, 0, sizeof *r);
}

double rank_guard_paired_t(const rank_guard_cand *a, const rank_guard_cand *b, size_t nqueries)
{
    double s1 = 0, s2 = 0;
    size_t n = 0;
    for (size_t q = 0; q < nqueries; q++) {
        double x = a->query[q] - b->query[q];
        if (isnan(x))
            continue;
        s1 += x;
        s2 += x * x;
        n++;
    }
    if (n < 2)
        return 0;
    double mean = s1 / (double)n, var = (s2 - s1 * mean) / (double)(n - 1);
    if (var > 1e-30)
        return mean / sqrt(var / (double)n);
    return mean > 0 ? INFINITY : 0;
}

/* Queries whose documents do not all share one label: the others score the
 * same under every candidate and would only dilute the t statistic. */
static int informative(const rank_dataset *d, size_t q)
{
    for (size_t r = d->group[q] + 1; r < d->group[q + 1]; r++)
        if (d->label[r] != d->label[d->group[q]])
            return 1;
    return 0;
}

int rank_guard_train(const rank_dataset *din, const rank_guard_params *p, rank_guard_report *rep,
                     rank_model_t **out, fn_errbuf *eb)
{
    *out = NULL;
    if (rep)
        memset(rep, 0, sizeof *rep);
    double t0 = now_s();
    if (!din || !p || din->rows == 0 || din->nfeatures == 0)
        return fn_seterr(eb, FN_EINVAL, "guard: empty training data");
    const int logistic = p->objective == RANK_OBJ_LOGISTIC;
    if (!logistic && p->objective != RANK_OBJ_LAMBDARANK)
        return fn_seterr(eb, FN_EINVAL, "guard: the objective must be lambdarank or logistic");
    if (!logistic && din->nqueries == 0)
        return fn_seterr(eb, FN_EINVAL, "guard: lambdarank needs query groups (qid: or a .query file)");
    if (!logistic && p->base_feature >= din->nfeatures)
        return fn_seterr(eb, FN_EINVAL, "guard: base feature column %zu is beyond the %zu features",
                         p->base_feature, din->nfeatures);
    if (!logistic && p->alt_feature != RANK_GUARD_NO_ALT &&
        (p->alt_feature >= din->nfeatures || p->alt_feature == p->base_feature))
        return fn_seterr(eb, FN_EINVAL, "guard: alternative feature column %zu is beyond the %zu features "
                         "or is the base", p->alt_feature, din->nfeatures);
    if (!(p->min_t >= 0) || !isfinite(p->min_t))
        return fn_seterr(eb, FN_EINVAL, "guard: bad min_t");

    /* logistic data without groups: every row its own group, so that one
     * code path deals rows or queries into folds */
    rank_dataset dg = *din;
    size_t *rowgroups = NULL;
    if (din->nqueries == 0) {
        if (!(rowgroups = malloc((din->rows + 1) * sizeof *rowgroups)))
            return fn_seterr(eb, -ENOMEM, "guard: out of memory");
        for (size_t r = 0; r <= din->rows; r++)
            rowgroups[r] = r;
        dg.nqueries = din->rows;
        dg.group = rowgroups;
        dg.qids = NULL;
    }
    const rank_dataset *d = &dg;
    const size_t nq = d->nqueries;
    unsigned K = p->inner_folds ? p->inner_folds : 5;
    if (K < 2 || K > nq) {
        free(rowgroups);
        return fn_seterr(eb, FN_EINVAL, "guard: %u inner folds need 2 <= folds <= %zu %s", K, nq,
                         din->nqueries ? "queries" : "rows");
    }
    const size_t nsettings = logistic ? NCGRID : NGRID + NLIN;
    /* the alternative score's candidates come last: left out without one */
    const size_t ncand = logistic ? NCGRID : p->alt_feature == RANK_GUARD_NO_ALT ? NCANDS - NALT : NCANDS;

    gctx c;
    memset(&c, 0, sizeof c);
    c.d = d;
    c.p = p;
    c.K = K;
    c.nq = nq;
    c.ncand = ncand;
    size_t *fold = malloc(nq * sizeof *fold), *perm = malloc(nq * sizeof *perm);
    size_t *sel = malloc(nq * sizeof *sel);
    c.tr = calloc(K, sizeof *c.tr);
    c.ho = calloc(K, sizeof *c.ho);
    c.hoq = calloc(K, sizeof *c.hoq);
    c.nho = calloc(K, sizeof *c.nho);
    c.w0 = calloc(K, sizeof *c.w0);
    c.val = calloc(ncand * nq, sizeof *c.val);
    double *colsum = NULL;
    rank_dataset dtop_buf;
    memset(&dtop_buf, 0, sizeof dtop_buf);
    rank_model_t *m = NULL, *mfinal = NULL;
    rank_guard_report r;
    memset(&r, 0, sizeof r);
    int rc = -ENOMEM;
    if (!fold || !perm || !sel || !c.tr || !c.ho || !c.hoq || !c.nho || !c.w0 || !c.val)
        goto oom;

    /* inner folds: a seeded shuffle of the queries dealt round-robin */
    uint64_t rng = p->seed ^ 0x6775617264ULL; /* "guard" */
    for (size_t q = 0; q < nq; q++)
        perm[q] = q;
    for (size_t i = nq; i > 1; i--) {
        size_t j = (size_t)(fn_splitmix64(&rng) % i);
        size_t x = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = x;
    }
    for (size_t i = 0; i < nq; i++)
        fold[perm[i]] = i % K;
    for (unsigned k = 0; k < K; k++) {
        size_t n = 0;
        for (size_t q = 0; q < nq; q++)
            if (fold[q] != k)
                sel[n++] = q;
        if ((rc = rank_dataset_subset(d, sel, n, &c.tr[k])))
            goto oom;
        if (!logistic && p->train_depth) {
            rank_dataset cut;
            if ((rc = top_by_base(&c.tr[k], p->base_feature, p->train_depth, &cut)))
                goto oom;
            rank_dataset_free(&c.tr[k]);
            c.tr[k] = cut;
        }
        n = 0;
        for (size_t q = 0; q < nq; q++)
            if (fold[q] == k)
                sel[n++] = q;
        if (!(c.hoq[k] = malloc((n ? n : 1) * sizeof **c.hoq)))
            goto oom;
        memcpy(c.hoq[k], sel, n * sizeof *sel);
        c.nho[k] = n;
        if ((rc = rank_dataset_subset(d, sel, n, &c.ho[k])))
            goto oom;
    }
    unsigned threads = p->threads ? p->threads : 1;
    c.dtop = d;
    if (!logistic && p->train_depth) {
        if ((rc = top_by_base(d, p->base_feature, p->train_depth, &dtop_buf)))
            goto oom;
        c.dtop = &dtop_buf;
    }
    const rank_dataset *dtop = c.dtop;
    if (!logistic) {
        run_tasks(&c, fit_one, K + 1, threads);
        if (c.rc) {
            rc = c.rc;
            fn_seterr(eb, rc, "%s", c.eb.msg);
            goto fail;
        }
    }
    /* candidate 0 (lambdarank): the base order, no training involved */
    if (!logistic) {
        size_t maxn = 1;
        for (size_t q = 0; q < nq; q++)
            if (d->group[q + 1] - d->group[q] > maxn)
                maxn = d->group[q + 1] - d->group[q];
        if (!(colsum = malloc(maxn * sizeof *colsum)))
            goto oom;
        for (size_t q = 0; q < nq; q++) {
            size_t b = d->group[q], n = d->group[q + 1] - b;
            for (size_t i = 0; i < n; i++)
                colsum[i] = xv(d->X[(b + i) * d->nfeatures + p->base_feature]);
            c.val[q] = rank_ndcg_query(d->label + b, colsum, n, GUARD_NDCG_K);
        }
    }
    /* the alternative score's candidates: no training but r, from each
     * inner fold's training part; held-out queries scored whole */
    const int have_alt = !logistic && p->alt_feature != RANK_GUARD_NO_ALT;
    for (unsigned k = 0; have_alt && k < K; k++) {
        double ratio = alt_ratio(&c.tr[k], p->base_feature, p->alt_feature);
        for (size_t ci = 0; ci < ncand; ci++) {
            if (CANDS[ci].kind != GC_ALT) continue;
            for (size_t j = 0; j < c.nho[k]; j++) {
                size_t q = c.hoq[k][j], b = d->group[q], n = d->group[q + 1] - b;
                for (size_t i = 0; i < n; i++) {
                    double a = xv(d->X[(b + i) * d->nfeatures + p->alt_feature]);
                    double x = xv(d->X[(b + i) * d->nfeatures + p->base_feature]);
                    colsum[i] = CANDS[ci].alpha == 0 ? a : x + CANDS[ci].alpha * ratio * a;
                }
                c.val[ci * nq + q] = rank_ndcg_query(d->label + b, colsum, n, GUARD_NDCG_K);
            }
        }
    }
    run_tasks(&c, run_one, nsettings * K, threads);
    if (c.rc) {
        rc = c.rc;
        fn_seterr(eb, rc, "%s", c.eb.msg);
        goto fail;
    }

    /* statistics */
    r.objective = p->objective;
    r.rows = din->rows;
    r.nqueries = din->nqueries;
    r.nfeatures = d->nfeatures;
    r.folds = K;
    r.seed = p->seed;
    r.min_t = p->min_t;
    r.base_feature = p->base_feature;
    r.train_depth = logistic ? 0 : p->train_depth;
    r.ncand = ncand;
    if (!(r.cand = calloc(ncand, sizeof *r.cand)))
        goto oom;
    for (size_t i = 0; i < ncand; i++)
        if (!(r.cand[i].fold = calloc(K, sizeof *r.cand[i].fold)) ||
            !(r.cand[i].query = malloc(nq * sizeof *r.cand[i].query)))
            goto oom;
    for (size_t q = 0; q < nq && !logistic; q++)
        r.ninformative += (size_t)informative(d, q);
    for (size_t ci = 0; ci < ncand; ci++) {
        rank_guard_cand *cd = &r.cand[ci];
        const double *v = c.val + ci * nq;
        if (logistic) {
            snprintf(cd->name, sizeof cd->name, "C=%g", CGRID[ci]);
        } else if (ci == 0) {
            snprintf(cd->name, sizeof cd->name, "base");
        } else if (CANDS[ci].kind == GC_TREES) {
            const gsetting *s = &GRID[CANDS[ci].setting];
            if (s->margin > 0)
                snprintf(cd->name, sizeof cd->name, "lm-d%u-t%u-m%g-a%g", s->depth, s->trees, s->margin,
                         CANDS[ci].alpha);
            else
                snprintf(cd->name, sizeof cd->name, "lm-d%u-t%u", s->depth, s->trees);
        } else if (CANDS[ci].kind == GC_ALT) {
            if (CANDS[ci].alpha == 0)
                snprintf(cd->name, sizeof cd->name, "alt");
            else
                snprintf(cd->name, sizeof cd->name, "base+alt-a%g", CANDS[ci].alpha);
        } else {
            snprintf(cd->name, sizeof cd->name, "lin-l2-%g", LIN_L2[CANDS[ci].setting]);
        }
        double totn = 0;
        for (unsigned k = 0; k < K; k++) {
            double sum = 0, cnt = 0;
            for (size_t j = 0; j < c.nho[k]; j++) {
                size_t q = c.hoq[k][j];
                sum += v[q];
                cnt += logistic ? (double)(d->group[q + 1] - d->group[q]) : 1.0;
            }
            cd->fold[k] = cnt > 0 ? sum / cnt : 0;
            totn += cnt;
        }
        /* the overall mean in query order, so it does not depend on the fold layout's summation order */
        double all = 0;
        for (size_t q = 0; q < nq; q++) {
            all += v[q];
            cd->query[q] = logistic || informative(d, q) ? v[q] : NAN;
        }
        cd->mean = totn > 0 ? all / totn : 0;
    }
    size_t chosen = 0;
    if (logistic) {
        for (size_t ci = 1; ci < ncand; ci++)
            if (r.cand[ci].mean < r.cand[chosen].mean)
                chosen = ci;
    } else {
        const rank_guard_cand *b = &r.cand[0];
        for (size_t ci = 1; ci < ncand; ci++) {
            rank_guard_cand *cd = &r.cand[ci];
            cd->delta = cd->mean - b->mean;
            for (unsigned k = 0; k < K; k++)
                cd->wins += cd->fold[k] > b->fold[k];
            cd->t = rank_guard_paired_t(cd, b, nq);
            cd->eligible = cd->mean > b->mean && 2 * cd->wins > K && cd->t >= p->min_t &&
                           (CANDS[ci].kind != GC_ALT || have_alt);
            if (cd->eligible && (chosen == 0 || cd->mean > r.cand[chosen].mean))
                chosen = ci;
        }
    }
    r.chosen = chosen;

    /* the choice, retrained on all the data */
    if (logistic) {
        if ((rc = train_logistic_std(din, CGRID[chosen], &mfinal, eb)))
            goto fail;
    } else {
        r.base_weight = c.w0all;
        if (chosen == 0) {
            if ((rc = base_model(din, p->base_feature, &mfinal))) {
                fn_seterr(eb, rc, "guard: cannot build the base model");
                goto fail;
            }
        } else if (CANDS[chosen].kind == GC_ALT) {
            double a = CANDS[chosen].alpha;
            double ratio = alt_ratio(dtop, p->base_feature, p->alt_feature);
            if ((rc = alt_model(din, p->base_feature, p->alt_feature, a == 0 ? 0.0 : 1.0,
                                a == 0 ? 1.0 : a * ratio, &mfinal))) {
                fn_seterr(eb, rc, "guard: cannot build the model");
                goto fail;
            }
        } else if (CANDS[chosen].kind == GC_LINEAR) {
            if ((rc = train_linear_rank(dtop, p->base_feature, r.base_weight, LIN_L2[CANDS[chosen].setting], &mfinal,
                                        eb)))
                goto fail;
        } else {
            double alpha = CANDS[chosen].alpha;
            rank_gbdt_params gp;
            tree_params(&GRID[CANDS[chosen].setting], p, r.base_weight, &gp);
            gp.threads = p->threads ? p->threads : 1; /* one training left: split it instead */
            if ((rc = rank_train_gbdt(dtop, NULL, &gp, NULL, NULL, &m, eb)))
                goto fail;
            if (alpha == 1.0) {
                mfinal = m;
                m = NULL;
            } else if ((rc = scaled_copy(m, alpha, &mfinal))) {
                fn_seterr(eb, rc, "guard: out of memory");
                goto fail;
            }
        }
    }
    r.seconds = now_s() - t0;
    *out = mfinal;
    mfinal = NULL;
    if (rep) {
        *rep = r;
        memset(&r, 0, sizeof r);
    }
    rc = 0;
    goto fail;
oom:
    rc = fn_seterr(eb, -ENOMEM, "guard: out of memory");
fail:
    rank_guard_report_free(&r);
    rank_model_free(m);
    rank_model_free(mfinal);
    for (unsigned k = 0; c.tr && k < K; k++)
        rank_dataset_free(&c.tr[k]);
    for (unsigned k = 0; c.ho && k < K; k++)
        rank_dataset_free(&c.ho[k]);
    for (unsigned k = 0; c.hoq && k < K; k++)
        free(c.hoq[k]);
    free(c.tr);
    free(c.ho);
    free(c.hoq);
    free(c.nho);
    free(c.w0);
    free(c.val);
    free(colsum);
    rank_dataset_free(&dtop_buf);
    free(fold);
    free(perm);
    free(sel);
    free(rowgroups);
    return rc;
}

/* ---------------------------------------------------------------- report */

void rank_guard_report_print(const rank_guard_report *r, const char *const *names, FILE *f)
{
    const int logistic = r->objective == RANK_OBJ_LOGISTIC;
    if (logistic) {
        fprintf(f, "guard: logistic, %zu rows", r->rows);
        if (r->nqueries)
            fprintf(f, " (%zu queries)", r->nqueries);
        fprintf(f, ", %zu features, standardised; %u inner folds by %s (seed %llu); rule: lowest mean "
                   "log-loss\n",
                r->nfeatures, r->folds, r->nqueries ? "query" : "row", (unsigned long long)r->seed);
    } else {
        const char *bn = names ? names[r->base_feature] : NULL;
        fprintf(f, "guard: lambdarank, %zu queries (%zu informative), %zu rows, %zu features; base %s "
                   "(column %zu), margin weight %.6g\n",
                r->nqueries, r->ninformative, r->rows, r->nfeatures, bn ? bn : "-", r->base_feature,
                r->base_weight);
        fprintf(f, "guard: %u inner folds by query (seed %llu); training on each query's top ", r->folds,
                (unsigned long long)r->seed);
        if (r->train_depth)
            fprintf(f, "%zu by the base", r->train_depth);
        else
            fprintf(f, "documents, all of them");
        fprintf(f, "; eligible: mean > base, beats base on > %u/2 folds, paired t >= %.2f\n", r->folds, r->min_t);
    }
    fprintf(f, "guard: %-22s %8s", "candidate", logistic ? "logloss" : "ndcg@10");
    if (!logistic)
        fprintf(f, " %8s %5s %6s", "vs base", "wins", "t");
    for (unsigned k = 0; k < r->folds; k++) {
        char h[16];
        snprintf(h, sizeof h, "fold %u", k + 1);
        fprintf(f, " %8s", h);
    }
    fputc('\n', f);
    for (size_t i = 0; i < r->ncand; i++) {
        const rank_guard_cand *c = &r->cand[i];
        fprintf(f, "guard: %-22s %8.4f", c->name, c->mean);
        if (!logistic) {
            if (i == 0)
                fprintf(f, " %8s %5s %6s", "", "", "");
            else
                fprintf(f, " %+8.4f %3u/%-1u %6.2f", c->delta, c->wins, r->folds, c->t);
        }
        for (unsigned k = 0; k < r->folds; k++)
            fprintf(f, " %8.4f", c->fold[k]);
        fprintf(f, "%s\n", i == r->chosen ? "  <- chosen" : (!logistic && c->eligible) ? "  eligible" : "");
    }
    const rank_guard_cand *ch = &r->cand[r->chosen];
    if (logistic) {
        fprintf(f, "guard: chose %s (lowest mean log-loss %.4f); retrained on all %zu rows (%.2f s)\n", ch->name,
                ch->mean, r->rows, r->seconds);
    } else if (r->chosen == 0) {
        size_t best = r->ncand > 1 ? 1 : 0;
        for (size_t i = 2; i < r->ncand; i++)
            if (r->cand[i].mean > r->cand[best].mean)
                best = i;
        fprintf(f, "guard: chose base: no candidate is eligible");
        if (best)
            fprintf(f, " (best mean: %s %+.4f, %u/%u folds, t %.2f)", r->cand[best].name, r->cand[best].delta,
                    r->cand[best].wins, r->folds, r->cand[best].t);
        fprintf(f, "; the base order, 0 trees (%.2f s)\n", r->seconds);
    } else {
        fprintf(f, "guard: chose %s: %+.4f over base, %u/%u folds, t %.2f; retrained on all %zu queries (%.2f s)\n",
                ch->name, ch->delta, ch->wins, r->folds, ch->t, r->nqueries, r->seconds);
    }
}
