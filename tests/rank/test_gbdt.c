/* test_gbdt.c - the histogram GBDT trainer: known splits, histogram split ==
 * exhaustive exact split, determinism across seeds and threads, early
 * stopping, binary log-loss, and LambdaMART quality on the LightGBM example
 * data (FUNNEL_DATA). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "rank_testdata.h"
#include "testutil.h"
#include "train.h"

/* ---- helpers ---- */

static void one_query(rank_dataset *d)
{
    d->nqueries = 1;
    d->group = malloc(2 * sizeof *d->group);
    d->group[0] = 0;
    d->group[1] = d->rows;
}

static void freedata(rank_dataset *d)
{
    free(d->X);
    free(d->label);
    free(d->group);
}

static void load_rank(const char *name, size_t nf, rank_dataset *d)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/lightgbm-lambdarank/%s", tu_data_dir(), name);
    rank_dataset_opts o = { 0 };
    o.nfeatures = nf;
    fn_errbuf eb = { { 0 } };
    int rc = rank_dataset_load(path, &o, d, &eb);
    cr_assert_eq(rc, 0, "%s: %s", path, fn_errmsg(&eb, rc));
}

static char *model_text(const rank_model_t *m)
{
    char path[] = "/tmp/test_gbdt_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    fn_errbuf eb = { { 0 } };
    int rc = rank_model_save(m, path, &eb);
    cr_assert_eq(rc, 0, "%s", fn_errmsg(&eb, rc));
    char *s = tu_read_file(path, NULL);
    cr_assert_not_null(s);
    unlink(path);
    return s;
}

static rank_model_t *train_ok(const rank_dataset *tr, const rank_dataset *va, const rank_gbdt_params *p,
                              rank_round_cb cb, void *ud)
{
    rank_model_t *m = NULL;
    fn_errbuf eb = { { 0 } };
    int rc = rank_train_gbdt(tr, va, p, cb, ud, &m, &eb);
    cr_assert_eq(rc, 0, "train: %s", fn_errmsg(&eb, rc));
    cr_assert_not_null(m);
    return m;
}

/* ---- a split known in advance ---- */

/* 8 rows x 3 features; feature 2 separates the labels perfectly at 0.6,
 * features 0 and 1 only partly. */
static const float KX[8 * 3] = {
    0.9f, 0.1f, 0.1f,
    0.2f, 0.8f, 0.2f,
    0.7f, 0.3f, 0.3f,
    0.4f, 0.6f, 0.4f,
    0.5f, 0.2f, 0.6f,
    0.6f, 0.9f, 0.7f,
    0.1f, 0.4f, 0.8f,
    0.8f, 0.7f, 0.9f,
};
static const float KY[8] = { 0, 0, 0, 0, 1, 1, 1, 1 };

Test(gbdt, known_first_split_binary)
{
    rank_dataset d = rt_dataset(8, 3, KX, KY);
    rank_gbdt_params p;
    rank_gbdt_defaults(&p);
    p.objective = RANK_OBJ_BINARY;
    p.trees = 3;
    p.max_depth = 2;
    rank_model_t *m = train_ok(&d, NULL, &p, NULL, NULL);
    size_t n;
    const rank_node *t = rank_model_tree(m, 0, &n);
    cr_assert_eq(t[0].feature, 2);
    cr_assert_eq(t[0].threshold, 0.6f);        /* smallest value of the right side */
    cr_assert_eq(t[0].missing_left, 1);        /* 0 < 0.6: NaN goes where 0 goes */
    /* a perfect split: both children are pure, nothing left to split */
    cr_assert_eq(n, 3);
    cr_assert_lt(t[t[0].left].value, 0.0);
    cr_assert_gt(t[t[0].right].value, 0.0);
    /* balanced labels: base score log(0.5/0.5) = 0 */
    cr_assert_float_eq(rank_model_base_score(m), 0.0, 1e-15);
    /* leaf = -G/(H+1) * 0.1 with g = 0.5 - y, h = 0.25 on 4 rows */
    cr_assert_float_eq(t[t[0].left].value, -(4 * 0.5) / (4 * 0.25 + 1.0) * 0.1, 1e-7);
    rank_model_free(m);
    freedata(&d);
}

Test(gbdt, known_first_split_lambdarank)
{
    rank_dataset d = rt_dataset(8, 3, KX, KY);
    one_query(&d);
    rank_gbdt_params p;
    rank_gbdt_defaults(&p);
    p.trees = 1;
    p.min_child_weight = 0;
    rank_model_t *m = train_ok(&d, NULL, &p, NULL, NULL);
    size_t n;
    const rank_node *t = rank_model_tree(m, 0, &n);
    cr_assert_eq(t[0].feature, 2);
    cr_assert_eq(t[0].threshold, 0.6f);
    double s[8];
    rank_model_score(m, KX, 8, 3, s);
    cr_assert_float_eq(rank_ndcg(&d, s, 10), 1.0, 1e-12);
    rank_model_free(m);
    freedata(&d);
}

/* ---- histogram split == exhaustive exact split ---- */

typedef struct exact {
    int feature;
    float threshold;
    double gain, second;    /* best gain and best gain of a different split */
} exact;

/* Exhaustive search over every feature and every threshold between distinct
 * values, for rows rows[0..n), with the trainer's gain formula. */
static exact exact_split(const float *X, size_t nf, const double *g, const double *h,
                         const size_t *rows, size_t n, double l2, unsigned minleaf)
{
    exact best = { -1, 0, -INFINITY, -INFINITY };
    double G = 0, H = 0;
    for (size_t i = 0; i < n; i++) {
        G += g[rows[i]];
        H += h[rows[i]];
    }
    for (size_t f = 0; f < nf; f++) {
        for (size_t c = 0; c < n; c++) {
            float thr = X[rows[c] * nf + f];    /* candidate: x < thr goes left */
            double GL = 0, HL = 0;
            size_t nl = 0;
            for (size_t i = 0; i < n; i++)
                if (X[rows[i] * nf + f] < thr) {
                    GL += g[rows[i]];
                    HL += h[rows[i]];
                    nl++;
                }
            if (nl < minleaf || n - nl < minleaf)
                continue;
            double gain = GL * GL / (HL + l2) + (G - GL) * (G - GL) / (H - HL + l2) - G * G / (H + l2);
            int same = best.feature == (int)f && best.threshold == thr;
            if (gain > best.gain) {
                if (!same)
                    best.second = best.gain;
                best.gain = gain;
                best.feature = (int)f;
                best.threshold = thr;
            } else if (!same && gain > best.second) {
                best.second = gain;
            }
        }
    }
    return best;
}

Test(gbdt, histogram_split_equals_exact_split)
{
    /* 60 rows, 5 features with at most 40 distinct values each: every value
     * gets its own bin, so histogram search must find the exact best split,
     * at the root and at both children. */
    enum { R = 60, NF = 5 };
    float X[R * NF], y[R];
    uint64_t s = 12345;
    for (size_t i = 0; i < R * NF; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        X[i] = (float)((s >> 33) % 40) / 8.0f;
    }
    for (size_t r = 0; r < R; r++)
        y[r] = (X[r * NF + 1] + 0.5f * X[r * NF + 3] + (float)(r % 3)) > 5.0f;
    rank_dataset d = rt_dataset(R, NF, X, y);
    rank_gbdt_params p;
    rank_gbdt_defaults(&p);
    p.objective = RANK_OBJ_BINARY;
    p.trees = 1;
    p.max_depth = 2;
    p.min_child_weight = 0;
    p.min_leaf = 3;
    rank_model_t *m = train_ok(&d, NULL, &p, NULL, NULL);
    size_t n;
    const rank_node *t = rank_model_tree(m, 0, &n);

    /* gradients at the base score, as the trainer sees them in round 1 */
    double base = rank_model_base_score(m), g[R], h[R];
    double pr = 1.0 / (1.0 + exp(-base));
    for (size_t r = 0; r < R; r++) {
        g[r] = pr - y[r];
        h[r] = pr * (1 - pr);
    }
    size_t all[R], left[R], right[R], nl = 0, nr = 0;
    for (size_t r = 0; r < R; r++)
        all[r] = r;
    exact e = exact_split(X, NF, g, h, all, R, p.lambda_l2, p.min_leaf);
    cr_assert_gt(e.gain - e.second, 1e-9, "test data has a near tie at the root");
    cr_assert_eq(t[0].feature, e.feature);
    cr_assert_eq(t[0].threshold, e.threshold);
    for (size_t r = 0; r < R; r++) {
        if (X[r * NF + e.feature] < e.threshold)
            left[nl++] = r;
        else
            right[nr++] = r;
    }
    const size_t *sub[2] = { left, right };
    size_t subn[2] = { nl, nr };
    int32_t child[2] = { t[0].left, t[0].right };
    for (int c = 0; c < 2; c++) {
        exact ec = exact_split(X, NF, g, h, sub[c], subn[c], p.lambda_l2, p.min_leaf);
        const rank_node *cn = &t[child[c]];
        if (ec.feature < 0 || ec.gain <= 1e-12) {
            cr_assert_eq(cn->feature, -1);
            continue;
        }
        cr_assert_gt(ec.gain - ec.second, 1e-9, "near tie in child %d", c);
        cr_assert_eq(cn->feature, ec.feature, "child %d", c);
        /* the cut is the next distinct value of the whole training column,
         * which need not occur in this child: compare the partitions */
        for (size_t i = 0; i < subn[c]; i++) {
            float v = X[sub[c][i] * NF + ec.feature];
            cr_assert_eq(v < cn->threshold, v < ec.threshold, "child %d row %zu", c, sub[c][i]);
        }
    }
    rank_model_free(m);
    freedata(&d);
}

/* ---- binary objective ---- */

Test(gbdt, binary_reduces_logloss)
{
    enum { R = 200, NF = 4 };
    float X[R * NF], y[R];
    uint64_t s = 7;
    for (size_t r = 0; r < R; r++) {
        for (size_t f = 0; f < NF; f++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            X[r * NF + f] = (float)((s >> 11) * 0x1.0p-53);
        }
        y[r] = X[r * NF + 0] + X[r * NF + 2] > 1.0f;     /* separable, not axis-aligned */
    }
    X[5] = NAN;     /* a missing value: scores as 0 */
    rank_dataset d = rt_dataset(R, NF, X, y);
    rank_gbdt_params p;
    rank_gbdt_defaults(&p);
    p.objective = RANK_OBJ_BINARY;
    p.trees = 50;
    p.max_depth = 3;
    p.learning_rate = 0.3;
    rank_model_t *m = train_ok(&d, NULL, &p, NULL, NULL);
    cr_assert_str_eq(rank_model_objective(m), "binary");
    double sc[R], base[R];
    rank_model_score(m, X, R, NF, sc);
    for (size_t r = 0; r < R; r++)
        base[r] = rank_model_base_score(m);
    double l0 = rank_logloss(&d, base), l1 = rank_logloss(&d, sc);
    cr_assert_lt(l1, 0.1, "log-loss %g (start %g)", l1, l0);
    cr_assert_lt(l1, 0.2 * l0);
    /* NaN and 0 score the same */
    float x0[NF], xn[NF];
    memcpy(x0, X + 5 * NF, sizeof x0);
    memcpy(xn, X + 5 * NF, sizeof xn);
    x0[1] = 0.0f;
    xn[1] = NAN;
    double a, b;
    rank_model_score(m, x0, 1, NF, &a);
    rank_model_score(m, xn, 1, NF, &b);
    cr_assert(a == b);
    rank_model_free(m);
    freedata(&d);
}

Test(gbdt, rejects_bad_input)
{
    rank_dataset d = rt_dataset(8, 3, KX, KY);
    rank_gbdt_params p;
    rank_gbdt_defaults(&p);
    rank_model_t *m = (rank_model_t *)&p;
    fn_errbuf eb = { { 0 } };
    /* lambdarank without groups */
    cr_assert_eq(rank_train_gbdt(&d, NULL, &p, NULL, NULL, &m, &eb), FN_EINVAL);
    cr_assert_null(m);
    cr_assert(strstr(eb.msg, "group"));
    p.objective = RANK_OBJ_BINARY;
    p.learning_rate = 0;
    cr_assert_eq(rank_train_gbdt(&d, NULL, &p, NULL, NULL, &m, &eb), FN_EINVAL);
    freedata(&d);
}

/* ---- real data: determinism, threads, early stopping, quality ---- */

Test(gbdt, deterministic_seeds_and_threads)
{
    rank_dataset tr;
    load_rank("rank.train", 300, &tr);
    rank_gbdt_params p;
    rank_gbdt_defaults(&p);
    p.trees = 15;
    p.row_subsample = 0.8;
    p.feature_subsample = 0.7;
    p.seed = 42;
    rank_model_t *a = train_ok(&tr, NULL, &p, NULL, NULL);
    rank_model_t *b = train_ok(&tr, NULL, &p, NULL, NULL);
    p.threads = 2;
    rank_model_t *c = train_ok(&tr, NULL, &p, NULL, NULL);
    p.threads = 3;
    rank_model_t *c3 = train_ok(&tr, NULL, &p, NULL, NULL);
    p.threads = 1;
    p.seed = 43;
    rank_model_t *e = train_ok(&tr, NULL, &p, NULL, NULL);
    char *ta = model_text(a), *tb = model_text(b), *tc = model_text(c), *tc3 = model_text(c3),
         *te = model_text(e);
    cr_assert_str_eq(ta, tb, "same seed, different models");
    cr_assert_str_eq(ta, tc, "threads 1 and 2 differ");
    cr_assert_str_eq(ta, tc3, "threads 1 and 3 differ");
    cr_assert_str_neq(ta, te, "a different seed with subsampling gave the same model");
    /* without subsampling the seed does not matter, and threads still agree */
    p.row_subsample = p.feature_subsample = 1.0;
    p.trees = 5;
    rank_model_t *f = train_ok(&tr, NULL, &p, NULL, NULL);
    p.seed = 1;
    p.threads = 2;
    rank_model_t *g = train_ok(&tr, NULL, &p, NULL, NULL);
    char *tf = model_text(f), *tg = model_text(g);
    cr_assert_str_eq(tf, tg);
    free(ta); free(tb); free(tc); free(tc3); free(te); free(tf); free(tg);
    rank_model_free(a); rank_model_free(b); rank_model_free(c); rank_model_free(c3);
    rank_model_free(e); rank_model_free(f); rank_model_free(g);
    rank_dataset_free(&tr);
}

typedef struct rec {
    unsigned rounds;
    double valid10[400];
    double train10;
} rec;

static int record(void *ud, unsigned round, const double tm[4], const double *vm)
{
    rec *r = ud;
    r->rounds = round;
    r->train10 = tm[3];
    if (vm && round < 400)
        r->valid10[round] = vm[3];
    return 0;
}

Test(gbdt, early_stopping_keeps_best_round, .timeout = 120)
{
    rank_dataset tr, va;
    load_rank("rank.train", 300, &tr);
    load_rank("rank.test", 300, &va);
    rank_gbdt_params p;
    rank_gbdt_defaults(&p);
    p.trees = 300;
    p.learning_rate = 0.5;      /* overfits quickly */
    p.early_stopping = 5;
    rec r = { 0 };
    rank_model_t *m = train_ok(&tr, &va, &p, record, &r);
    size_t kept = rank_model_ntrees(m);
    cr_assert_lt(r.rounds, 300, "never stopped");
    cr_assert_eq(r.rounds, kept + 5, "stopped %u rounds in, kept %zu trees", r.rounds, kept);
    double best = -1;
    unsigned best_round = 0;
    for (unsigned i = 1; i <= r.rounds; i++)
        if (r.valid10[i] > best) {
            best = r.valid10[i];
            best_round = i;
        }
    cr_assert_eq(kept, best_round);
    /* the kept model scores as the best round did */
    double *s = malloc(va.rows * sizeof *s);
    rank_model_score(m, va.X, va.rows, va.nfeatures, s);
    cr_assert_float_eq(rank_ndcg(&va, s, 10), best, 1e-12);
    free(s);
    rank_model_free(m);
    rank_dataset_free(&tr);
    rank_dataset_free(&va);
}

Test(gbdt, lambdamart_quality_and_binning_agree, .timeout = 120)
{
    /* acceptance: 100 trees, depth 6, lr 0.1 -> NDCG@10 >= 0.7485 on rank.test */
    rank_dataset tr, te;
    load_rank("rank.train", 300, &tr);
    load_rank("rank.test", 300, &te);
    rank_gbdt_params p;
    rank_gbdt_defaults(&p);
    cr_assert_eq(p.trees, 100);
    cr_assert_eq(p.max_depth, 6);
    cr_assert_float_eq(p.learning_rate, 0.1, 1e-15);
    rec r = { 0 };
    rank_model_t *m = train_ok(&tr, NULL, &p, record, &r);
    cr_assert_eq(rank_model_ntrees(m), 100);
    cr_assert_leq(rank_model_max_depth(m), 6);
    double *s = malloc(te.rows * sizeof *s), *st = malloc(tr.rows * sizeof *st);
    rank_model_score(m, te.X, te.rows, te.nfeatures, s);
    double ndcg = rank_ndcg(&te, s, 10);
    cr_log_info("NDCG@10 on rank.test: %.4f", ndcg);
    cr_assert_geq(ndcg, 0.7485, "NDCG@10 %.4f", ndcg);
    /* the model scores the training rows exactly as the trainer's binned
     * traversal did (same NDCG as the last round's report) */
    rank_model_score(m, tr.X, tr.rows, tr.nfeatures, st);
    cr_assert_float_eq(rank_ndcg(&tr, st, 10), r.train10, 1e-12);
    free(s);
    free(st);
    rank_model_free(m);
    rank_dataset_free(&tr);
    rank_dataset_free(&te);
}

static size_t leaf_of(const rank_node *t, const float *x)
{
    size_t i = 0;
    while (t[i].feature >= 0) {
        float v = x[t[i].feature];
        int left = isnan(v) ? t[i].missing_left : v < t[i].threshold;
        i = (size_t)(left ? t[i].left : t[i].right);
    }
    return i;
}

Test(gbdt, growth_limits_min_leaf_and_leaves)
{
    rank_dataset tr;
    load_rank("rank.train", 300, &tr);
    rank_gbdt_params p;
    rank_gbdt_defaults(&p);
    p.trees = 5;
    p.min_leaf = 40;
    rank_model_t *m = train_ok(&tr, NULL, &p, NULL, NULL);
    size_t *cnt = NULL;
    for (size_t k = 0; k < rank_model_ntrees(m); k++) {
        size_t n;
        const rank_node *t = rank_model_tree(m, k, &n);
        cnt = realloc(cnt, n * sizeof *cnt);
        memset(cnt, 0, n * sizeof *cnt);
        for (size_t r = 0; r < tr.rows; r++)
            cnt[leaf_of(t, tr.X + r * tr.nfeatures)]++;
        size_t leaves = 0;
        for (size_t i = 0; i < n; i++)
            if (t[i].feature < 0) {
                leaves++;
                cr_assert_geq(cnt[i], 40, "tree %zu leaf %zu has %zu rows", k, i, cnt[i]);
            }
        cr_assert_gt(leaves, 8, "min_leaf 40 should still allow a real tree");
    }
    rank_model_free(m);

    /* best-first growth: depth unlimited, exactly max_leaves leaves */
    rank_gbdt_defaults(&p);
    p.trees = 3;
    p.max_depth = 0;
    p.max_leaves = 7;
    m = train_ok(&tr, NULL, &p, NULL, NULL);
    for (size_t k = 0; k < 3; k++) {
        size_t n;
        rank_model_tree(m, k, &n);
        cr_assert_eq(n, 2 * 7 - 1, "tree %zu has %zu nodes", k, n);
    }
    rank_model_free(m);
    /* depth-wise growth bounded by max_leaves as well */
    p.max_depth = 6;
    p.max_leaves = 10;
    m = train_ok(&tr, NULL, &p, NULL, NULL);
    cr_assert_leq(rank_model_nleaves(m), 3 * 10);
    cr_assert_leq(rank_model_max_depth(m), 6);
    rank_model_free(m);
    free(cnt);
    rank_dataset_free(&tr);
}

Test(gbdt, binary_early_stopping_on_logloss)
{
    enum { R = 400, NF = 3 };
    static float X[R * NF], y[R];
    uint64_t s = 3;
    for (size_t r = 0; r < R; r++) {
        for (size_t f = 0; f < NF; f++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            X[r * NF + f] = (float)((s >> 11) * 0x1.0p-53);
        }
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        y[r] = ((s >> 11) * 0x1.0p-53) < X[r * NF];    /* noisy: overfits */
    }
    rank_dataset tr = rt_dataset(R / 2, NF, X, y), va = rt_dataset(R / 2, NF, X + R / 2 * NF, y + R / 2);
    rank_gbdt_params p;
    rank_gbdt_defaults(&p);
    p.objective = RANK_OBJ_BINARY;
    p.trees = 500;
    p.learning_rate = 0.3;
    p.early_stopping = 10;
    rank_model_t *m = train_ok(&tr, &va, &p, NULL, NULL);
    size_t kept = rank_model_ntrees(m);
    cr_assert(kept >= 1 && kept < 100, "kept %zu trees", kept);
    double *sc = malloc(va.rows * sizeof *sc);
    rank_model_score(m, va.X, va.rows, NF, sc);
    double best = rank_logloss(&va, sc);
    cr_assert_lt(best, 0.69);
    rank_model_free(m);
    /* the kept model is no worse than any other prefix length tried */
    for (unsigned t = 1; t <= kept + 10; t += 3) {
        p.trees = t;
        p.early_stopping = 0;
        m = train_ok(&tr, NULL, &p, NULL, NULL);
        rank_model_score(m, va.X, va.rows, NF, sc);
        cr_assert_geq(rank_logloss(&va, sc), best - 1e-12, "%u trees beat the kept %zu", t, kept);
        rank_model_free(m);
    }
    free(sc);
    freedata(&tr);
    freedata(&va);
}
