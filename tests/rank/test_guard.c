/* test_guard.c - the guarded trainer (rank/guard.h) and base margins:
 * synthetic queries where a feature carries signal beyond the base (the
 * guard must leave the base order and win on held-out queries) or where
 * every other feature is noise (it must keep the base order, exactly);
 * determinism for a seed and across thread counts; the inner CV sees only
 * the queries it is given; the base weight fit; LambdaMART and binary GBDT
 * with a base margin; logistic C selection; LightGBM's lambdarank data. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"
#include "guard.h"
#include "metrics.h"
#include "model.h"
#include "testutil.h"
#include "train.h"

static char dir[256];

static void setup(void)
{
    tu_mkdtemp(dir, sizeof dir, "/tmp/test_guard_XXXXXX");
}

static void teardown(void)
{
    cr_assert_eq(tu_rmtree(dir), 0);
}

TestSuite(guard, .init = setup, .fini = teardown, .timeout = 300);

static uint64_t rs;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}
static double urand(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }
static double gauss(void)
{
    double u = urand() + 1e-12, v = urand();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* nq queries of nd documents, nf features. Utility u = z1 + signal * z2 +
 * 0.3 e; labels 2 / 1 / 0 for the top ~4% / next ~8% of u over the whole
 * set. Column 0 ("bm25f") = 8 + 2 (z1 + 0.6 e0): the base sees z1 through
 * noise; column 1 = z2 (signal > 0: the trees can add what the base
 * misses); the other columns are noise, some of them NaN. */
static void gen(rank_dataset *d, size_t nq, size_t nd, size_t nf, double signal, uint64_t seed)
{
    rs = seed * 0x9E3779B97F4A7C15ULL + 88172645463325252ULL;
    memset(d, 0, sizeof *d);
    size_t N = nq * nd;
    d->rows = N;
    d->nfeatures = nf;
    d->nqueries = nq;
    d->X = malloc(N * nf * sizeof(float));
    d->label = malloc(N * sizeof(float));
    d->group = malloc((nq + 1) * sizeof(size_t));
    d->feature_names = calloc(nf, sizeof(char *));
    d->qids = calloc(nq, sizeof(char *));
    cr_assert(d->X && d->label && d->group && d->feature_names && d->qids);
    for (size_t f = 0; f < nf; f++) {
        char b[32];
        snprintf(b, sizeof b, f == 0 ? "bm25f" : "f%zu", f);
        d->feature_names[f] = strdup(b);
    }
    for (size_t q = 0; q < nq; q++) {
        char b[32];
        snprintf(b, sizeof b, "q%zu", q);
        d->qids[q] = strdup(b);
        d->group[q] = q * nd;
    }
    d->group[nq] = N;
    double qshift = 0;
    for (size_t r = 0; r < N; r++) {
        if (r % nd == 0)
            qshift = gauss() * 0.5; /* queries differ in their base scale */
        double z1 = gauss(), z2 = gauss();
        double u = z1 + signal * z2 + 0.3 * gauss();
        float *x = d->X + r * nf;
        x[0] = (float)(8 + qshift + 2 * (z1 + 0.6 * gauss()));
        if (nf > 1)
            x[1] = (float)z2;
        for (size_t f = 2; f < nf; f++)
            x[f] = (f % 5 == 0 && urand() < 0.2) ? NAN : (float)gauss();
        double sd = sqrt(1 + signal * signal + 0.09);
        d->label[r] = u > 1.75 * sd ? 2.0f : u > 1.2 * sd ? 1.0f : 0.0f;
    }
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    return b;
}

static char *model_text(const rank_model_t *m, const char *name)
{
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_model_save(m, p, &eb), 0, "%s", eb.msg);
    return slurp(p);
}

static double ndcg_of(const rank_model_t *m, const rank_dataset *d)
{
    double *s = malloc(d->rows * sizeof *s);
    rank_model_score(m, d->X, d->rows, d->nfeatures, s);
    double v = rank_ndcg(d, s, 10);
    free(s);
    return v;
}

static double ndcg_base(const rank_dataset *d)
{
    double *s = malloc(d->rows * sizeof *s);
    for (size_t r = 0; r < d->rows; r++)
        s[r] = isnan(d->X[r * d->nfeatures]) ? 0 : d->X[r * d->nfeatures];
    double v = rank_ndcg(d, s, 10);
    free(s);
    return v;
}

static rank_model_t *guard(const rank_dataset *d, unsigned threads, uint64_t seed, rank_guard_report *rep)
{
    rank_guard_params p;
    rank_guard_defaults(&p);
    p.base_feature = 0;
    p.threads = threads;
    p.seed = seed;
    rank_model_t *m = NULL;
    fn_errbuf eb = {{0}};
    int rc = rank_guard_train(d, &p, rep, &m, &eb);
    cr_assert_eq(rc, 0, "%s", eb.msg);
    cr_assert_not_null(m);
    return m;
}

static char *report_text(const rank_guard_report *r, const rank_dataset *d)
{
    char p[400];
    snprintf(p, sizeof p, "%s/report.txt", dir);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    rank_guard_report_print(r, (const char *const *)d->feature_names, f);
    fclose(f);
    return slurp(p);
}

/* Real signal beyond the base: the guard leaves the base order, and the
 * model wins on queries it never saw. */
Test(guard, signal_beyond_the_base_is_used)
{
    rank_dataset tr, te;
    gen(&tr, 100, 40, 10, 0.8, 1);
    gen(&te, 300, 40, 10, 0.8, 2);
    rank_guard_report rep;
    rank_model_t *m = guard(&tr, 2, 1, &rep);
    char *txt = report_text(&rep, &tr);
    fprintf(stderr, "%s", txt);
    cr_assert_neq(rep.chosen, 0, "%s", txt);
    cr_assert(rep.cand[rep.chosen].eligible);
    cr_assert_gt(rep.cand[rep.chosen].t, 2.0);
    /* the report keeps each candidate's per-query values: t recomputes from them */
    cr_assert_float_eq(rank_guard_paired_t(&rep.cand[rep.chosen], &rep.cand[0], rep.nqueries),
                       rep.cand[rep.chosen].t, 1e-12);
    cr_assert_float_eq(rank_guard_paired_t(&rep.cand[0], &rep.cand[rep.chosen], rep.nqueries),
                       -rep.cand[rep.chosen].t, 1e-12);
    cr_assert_eq(rank_guard_paired_t(&rep.cand[0], &rep.cand[0], rep.nqueries), 0.0, "no gain, t 0");
    cr_assert_gt(rep.base_weight, 0);
    cr_assert_eq(rank_model_weight(m, 0), rep.base_weight, "the base margin is the model's linear part");
    cr_assert_str_eq(rank_model_feature_name(m, 0), "bm25f");
    double base = ndcg_base(&te), got = ndcg_of(m, &te);
    fprintf(stderr, "held-out ndcg@10: base %.4f guard %.4f\n", base, got);
    cr_assert_gt(got, base + 0.05, "held out: %.4f vs base %.4f", got, base);
    cr_assert(strstr(txt, "<- chosen"));
    cr_assert(strstr(txt, "guard: chose lm-") || strstr(txt, "guard: chose lin-"), "%s", txt);
    free(txt);
    rank_guard_report_free(&rep);
    rank_model_free(m);
    rank_dataset_free(&tr);
    rank_dataset_free(&te);
}

/* Pure noise beyond the base: the guard keeps the base order, and the saved
 * model reproduces it exactly (score == the base feature, NaN as 0). */
Test(guard, noise_keeps_the_base_order_exactly)
{
    for (uint64_t seed = 1; seed <= 2; seed++) {
        rank_dataset tr;
        gen(&tr, 80, 40, 10, 0.0, 10 + seed);
        /* column 1 is noise too when signal is 0 */
        rank_guard_report rep;
        rank_model_t *m = guard(&tr, 2, seed, &rep);
        char *txt = report_text(&rep, &tr);
        fprintf(stderr, "%s", txt);
        cr_assert_eq(rep.chosen, 0, "seed %llu: %s", (unsigned long long)seed, txt);
        cr_assert(strstr(txt, "guard: chose base: no candidate is eligible"), "%s", txt);
        cr_assert_eq(rank_model_ntrees(m), 0);
        cr_assert_eq(rank_model_nweights(m), 1);
        cr_assert_eq(rank_model_weight(m, 0), 1.0);
        char *text = model_text(m, "base.model");
        cr_assert(strstr(text, "\ntrees 0\nweight 0 1\nend\n"), "%s", text);
        free(text);
        char p[400];
        snprintf(p, sizeof p, "%s/base.model", dir);
        rank_model_t *l;
        fn_errbuf eb = {{0}};
        cr_assert_eq(rank_model_load(p, &l, &eb), 0, "%s", eb.msg);
        double *s = malloc(tr.rows * sizeof *s);
        tr.X[5 * tr.nfeatures] = NAN;
        rank_model_score(l, tr.X, tr.rows, tr.nfeatures, s);
        for (size_t r = 0; r < tr.rows; r++) {
            float v = tr.X[r * tr.nfeatures];
            cr_assert_eq(s[r], isnan(v) ? 0.0 : (double)v);
        }
        free(s);
        free(txt);
        rank_model_free(l);
        rank_guard_report_free(&rep);
        rank_model_free(m);
        rank_dataset_free(&tr);
    }
}

/* The same data and seed give the same report and the same model file, for
 * 1, 2 and 3 threads; another seed deals other folds. */
Test(guard, deterministic_for_a_seed_and_any_thread_count)
{
    rank_dataset tr;
    gen(&tr, 60, 30, 8, 0.6, 5);
    rank_guard_report r1, r2, r3, r4;
    rank_model_t *m1 = guard(&tr, 1, 7, &r1), *m2 = guard(&tr, 2, 7, &r2), *m3 = guard(&tr, 3, 7, &r3);
    rank_model_t *m4 = guard(&tr, 2, 8, &r4);
    char *t1 = model_text(m1, "1.model"), *t2 = model_text(m2, "2.model"), *t3 = model_text(m3, "3.model");
    cr_assert_str_eq(t1, t2);
    cr_assert_str_eq(t1, t3);
    cr_assert_eq(r1.ncand, r2.ncand);
    cr_assert_eq(r1.chosen, r2.chosen);
    for (size_t i = 0; i < r1.ncand; i++) {
        cr_assert_eq(r1.cand[i].mean, r2.cand[i].mean);
        cr_assert_eq(r1.cand[i].t, r3.cand[i].t);
        for (unsigned k = 0; k < r1.folds; k++)
            cr_assert_eq(r1.cand[i].fold[k], r2.cand[i].fold[k]);
    }
    /* another seed: other folds (the overall means move, base's included) */
    int differs = 0;
    for (unsigned k = 0; k < r1.folds; k++)
        differs |= r1.cand[0].fold[k] != r4.cand[0].fold[k];
    cr_assert(differs, "seed 8 dealt the same folds as seed 7");
    free(t1);
    free(t2);
    free(t3);
    rank_guard_report_free(&r1);
    rank_guard_report_free(&r2);
    rank_guard_report_free(&r3);
    rank_guard_report_free(&r4);
    rank_model_free(m1);
    rank_model_free(m2);
    rank_model_free(m3);
    rank_model_free(m4);
    rank_dataset_free(&tr);
}

/* Outer CV hands the guard its training queries only: the result for a set
 * of queries must not depend on any other query. Two collections share 80
 * queries and differ in the other 40 (noise in one, strong signal in the
 * other); the guard on the shared 80, taken from either, gives the same
 * model file and report. */
Test(guard, inner_cv_sees_only_the_given_queries)
{
    rank_dataset a, b, shared, sa, sb;
    gen(&shared, 80, 25, 10, 0.5, 21);
    rank_dataset pa, pb;
    gen(&pa, 40, 25, 10, 0.0, 22);
    gen(&pb, 40, 25, 10, 2.0, 23);
    /* a = shared queries interleaved with pa's; b = with pb's, another order */
    for (int which = 0; which < 2; which++) {
        rank_dataset *dst = which ? &b : &a, *other = which ? &pb : &pa;
        memset(dst, 0, sizeof *dst);
        dst->nfeatures = 10;
        dst->nqueries = 120;
        dst->rows = shared.rows + other->rows;
        dst->X = malloc(dst->rows * 10 * sizeof(float));
        dst->label = malloc(dst->rows * sizeof(float));
        dst->group = malloc(121 * sizeof(size_t));
        dst->feature_names = calloc(10, sizeof(char *));
        for (size_t f = 0; f < 10; f++)
            dst->feature_names[f] = strdup(shared.feature_names[f]);
        size_t r = 0, qs = 0, qo = 0;
        for (size_t q = 0; q < 120; q++) {
            int take_shared = which ? (q >= 40) : (q % 3 != 2);
            const rank_dataset *src = take_shared ? &shared : other;
            size_t sq = take_shared ? qs++ : qo++;
            size_t b0 = src->group[sq], n = src->group[sq + 1] - b0;
            dst->group[q] = r;
            memcpy(dst->X + r * 10, src->X + b0 * 10, n * 10 * sizeof(float));
            memcpy(dst->label + r, src->label + b0, n * sizeof(float));
            r += n;
        }
        dst->group[120] = r;
    }
    size_t ia[80], ib[80];
    for (size_t i = 0, na = 0, nb = 0; i < 120; i++) {
        if (i % 3 != 2)
            ia[na++] = i;
        if (i >= 40)
            ib[nb++] = i;
    }
    cr_assert_eq(rank_dataset_subset(&a, ia, 80, &sa), 0);
    cr_assert_eq(rank_dataset_subset(&b, ib, 80, &sb), 0);
    rank_guard_report ra, rb;
    rank_model_t *ma = guard(&sa, 2, 1, &ra), *mb = guard(&sb, 2, 1, &rb);
    char *ta = model_text(ma, "a.model"), *tb = model_text(mb, "b.model");
    cr_assert_str_eq(ta, tb);
    char *xa = report_text(&ra, &sa), *xb = report_text(&rb, &sb);
    /* the reports differ only in the seconds */
    const char *ca = strrchr(xa, '('), *cb = strrchr(xb, '(');
    cr_assert(ca && cb);
    cr_assert_eq(ca - xa, cb - xb);
    cr_assert_eq(strncmp(xa, xb, (size_t)(ca - xa)), 0, "%s\n---\n%s", xa, xb);
    /* and the guard on the whole of b (its strong-signal queries included) does see more */
    rank_guard_report rfull;
    rank_model_t *mfull = guard(&b, 2, 1, &rfull);
    cr_assert_neq(rfull.cand[0].mean, rb.cand[0].mean);
    free(ta);
    free(tb);
    free(xa);
    free(xb);
    rank_guard_report_free(&ra);
    rank_guard_report_free(&rb);
    rank_guard_report_free(&rfull);
    rank_model_free(ma);
    rank_model_free(mb);
    rank_model_free(mfull);
    rank_dataset_free(&a);
    rank_dataset_free(&b);
    rank_dataset_free(&sa);
    rank_dataset_free(&sb);
    rank_dataset_free(&shared);
    rank_dataset_free(&pa);
    rank_dataset_free(&pb);
}

/* w0 solves d/dw loss(w0 * base) = 0: the loss is lower there than a little
 * to either side; a useless or reversed base gets 0. */
Test(guard, base_weight_fit)
{
    rank_dataset d;
    gen(&d, 80, 40, 3, 0.0, 31);
    double w;
    cr_assert_eq(rank_base_weight_fit(&d, 0, RANK_OBJ_LAMBDARANK, 10, &w), 0);
    cr_assert_gt(w, 0.05);
    cr_assert_lt(w, 20);
    /* the NDCG-weighted pairwise loss along w: a minimum at w */
    double L[3], ws[3] = {w * 0.8, w, w * 1.25};
    for (int i = 0; i < 3; i++) {
        L[i] = 0;
        for (size_t q = 0; q < d.nqueries; q++) {
            size_t b = d.group[q], n = d.group[q + 1] - b;
            double sc[40], g[40], h[40];
            for (size_t j = 0; j < n; j++)
                sc[j] = ws[i] * d.X[(b + j) * 3];
            rank_lambda_gradients(d.label + b, sc, n, 10, g, h);
            /* loss from the gradients' pair terms is not exposed: use sum g*x as the derivative instead */
            double dd = 0;
            for (size_t j = 0; j < n; j++)
                dd += g[j] * d.X[(b + j) * 3];
            L[i] += dd;
        }
    }
    cr_assert_lt(L[0], 0, "derivative below w is negative: %g", L[0]);
    cr_assert_gt(L[2], 0, "derivative above w is positive: %g", L[2]);
    cr_assert_lt(fabs(L[1]), 0.05 * (fabs(L[0]) + fabs(L[2])));
    /* reversed base: no margin */
    for (size_t r = 0; r < d.rows; r++)
        d.X[r * 3] = -d.X[r * 3];
    cr_assert_eq(rank_base_weight_fit(&d, 0, RANK_OBJ_LAMBDARANK, 10, &w), 0);
    cr_assert_eq(w, 0);
    /* constant base: no margin */
    for (size_t r = 0; r < d.rows; r++)
        d.X[r * 3] = 1;
    cr_assert_eq(rank_base_weight_fit(&d, 0, RANK_OBJ_LAMBDARANK, 10, &w), 0);
    cr_assert_eq(w, 0);
    /* binary: positive and finite */
    gen(&d, 20, 40, 3, 0.0, 32);
    for (size_t r = 0; r < d.rows; r++)
        d.X[r * 3] -= 8;
    double wb;
    cr_assert_eq(rank_base_weight_fit(&d, 0, RANK_OBJ_BINARY, 10, &wb), 0);
    cr_assert_gt(wb, 0.1);
    cr_assert_lt(wb, 10);
    cr_assert_eq(rank_base_weight_fit(&d, 3, RANK_OBJ_BINARY, 10, &wb), FN_EINVAL);
    rank_dataset_free(&d);
}

/* LambdaMART and binary GBDT from a base margin: the model carries the
 * weight, scores are trees + w * base (checked against the same trees
 * without the linear part), and the trees are not those grown from 0. */
Test(guard, gbdt_with_a_base_margin)
{
    rank_dataset d;
    gen(&d, 60, 30, 6, 0.7, 41);
    for (int obj = 0; obj < 2; obj++) {
        rank_gbdt_params p;
        rank_gbdt_defaults(&p);
        p.objective = obj ? RANK_OBJ_BINARY : RANK_OBJ_LAMBDARANK;
        p.trees = 10;
        p.max_depth = 3;
        p.base_feature = 0;
        p.base_weight = 0.375;
        rank_model_t *m, *m0;
        fn_errbuf eb = {{0}};
        cr_assert_eq(rank_train_gbdt(&d, NULL, &p, NULL, NULL, &m, &eb), 0, "%s", eb.msg);
        p.base_weight = 0;
        cr_assert_eq(rank_train_gbdt(&d, NULL, &p, NULL, NULL, &m0, &eb), 0, "%s", eb.msg);
        cr_assert_eq(rank_model_weight(m, 0), 0.375);
        cr_assert_eq(rank_model_nweights(m), 1);
        cr_assert_eq(rank_model_nweights(m0), 0);
        char *a = model_text(m, "m.model"), *b = model_text(m0, "m0.model");
        cr_assert_str_neq(a, b, "the margin changes the trees");
        cr_assert(strstr(a, "\nweight 0 0.375\nend\n"), "%s", a);
        free(a);
        free(b);
        /* the same trees without the linear part */
        rank_model_t *t;
        cr_assert_eq(rank_model_new(RANK_MODEL_TREES, rank_model_objective(m), 6, &t), 0);
        rank_model_set_base_score(t, rank_model_base_score(m));
        for (size_t i = 0; i < rank_model_ntrees(m); i++) {
            size_t n;
            const rank_node *nd = rank_model_tree(m, i, &n);
            cr_assert_eq(rank_model_add_tree(t, nd, n), 0);
        }
        cr_assert_eq(rank_model_finalize(t), 0);
        double *s = malloc(d.rows * sizeof *s), *st = malloc(d.rows * sizeof *st);
        d.X[3 * 6] = NAN;
        rank_model_score(m, d.X, d.rows, 6, s);
        rank_model_score(t, d.X, d.rows, 6, st);
        for (size_t r = 0; r < d.rows; r++) {
            float v = d.X[r * 6];
            cr_assert_eq(s[r], st[r] + (isnan(v) ? 0 : 0.375 * (double)v));
        }
        free(s);
        free(st);
        rank_model_free(t);
        rank_model_free(m);
        rank_model_free(m0);
        /* a bad base column */
        p.base_weight = 1;
        p.base_feature = 6;
        cr_assert_eq(rank_train_gbdt(&d, NULL, &p, NULL, NULL, &m, &eb), FN_EINVAL);
    }
    rank_dataset_free(&d);
}

/* The linear candidate on data whose extra signal is linear: it is chosen
 * (or a tree model is, if better), and a chosen linear model is a 0-tree
 * model with w0 on the base and a positive weight on the signal column. */
Test(guard, linear_candidate)
{
    rank_dataset tr, te;
    gen(&tr, 100, 40, 8, 0.5, 71);
    gen(&te, 200, 40, 8, 0.5, 72);
    rank_guard_report rep;
    rank_model_t *m = guard(&tr, 2, 1, &rep);
    char *txt = report_text(&rep, &tr);
    fprintf(stderr, "%s", txt);
    cr_assert(strstr(txt, "\nguard: lin-l2-1 "), "%s", txt);
    cr_assert(strstr(txt, "\nguard: lin-l2-0.1 "), "%s", txt);
    const rank_guard_cand *lin = &rep.cand[rep.ncand - 1];
    cr_assert_str_eq(lin->name, "lin-l2-0.1");
    cr_assert_gt(lin->delta, 0.02, "a linear signal: the linear model gains on inner CV (%g)", lin->delta);
    cr_assert(strncmp(rep.cand[rep.chosen].name, "lin-", 4) == 0, "%s", txt);
    cr_assert_eq(rank_model_ntrees(m), 0);
    cr_assert_eq(rank_model_weight(m, 0), rep.base_weight);
    cr_assert_gt(rank_model_weight(m, 1), 0.05, "the signal column");
    for (size_t f = 2; f < 8; f++)
        cr_assert_lt(fabs(rank_model_weight(m, f)), 0.5 * rank_model_weight(m, 1), "noise column %zu", f);
    double base = ndcg_base(&te), got = ndcg_of(m, &te);
    cr_assert_gt(got, base + 0.03, "held out: %.4f vs base %.4f", got, base);
    /* round trip: a plain model file */
    char *text = model_text(m, "lin.model");
    cr_assert(strstr(text, "\ntrees 0\nweight 0 "), "%s", text);
    free(text);
    free(txt);
    rank_guard_report_free(&rep);
    rank_model_free(m);
    rank_dataset_free(&tr);
    rank_dataset_free(&te);
}

/* Logistic regression: C chosen by inner-CV log-loss over standardised
 * features, returned in raw units (it scores raw rows). */
Test(guard, logistic_chooses_C)
{
    rank_dataset d;
    gen(&d, 60, 30, 8, 0.7, 51);
    rank_guard_params p;
    rank_guard_defaults(&p);
    p.objective = RANK_OBJ_LOGISTIC;
    rank_guard_report rep;
    rank_model_t *m;
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_guard_train(&d, &p, &rep, &m, &eb), 0, "%s", eb.msg);
    char *txt = report_text(&rep, &d);
    fprintf(stderr, "%s", txt);
    cr_assert_eq(rank_model_kind(m), RANK_MODEL_LINEAR);
    cr_assert_str_eq(rank_model_objective(m), "logistic");
    cr_assert_str_eq(rank_model_feature_name(m, 0), "bm25f");
    for (size_t i = 0; i < rep.ncand; i++)
        cr_assert_geq(rep.cand[i].mean, rep.cand[rep.chosen].mean);
    cr_assert_gt(rank_model_weight(m, 0), 0);
    cr_assert_gt(rank_model_weight(m, 1), 0);
    cr_assert(strstr(txt, "guard: chose C="), "%s", txt);
    /* its log-loss on the training data beats the positive rate's */
    double *s = malloc(d.rows * sizeof *s), *c0 = malloc(d.rows * sizeof *c0);
    rank_model_score(m, d.X, d.rows, d.nfeatures, s);
    size_t pos = 0;
    for (size_t r = 0; r < d.rows; r++)
        pos += d.label[r] > 0;
    for (size_t r = 0; r < d.rows; r++)
        c0[r] = log((double)pos / (double)(d.rows - pos));
    cr_assert_lt(rank_logloss(&d, s), rank_logloss(&d, c0) - 0.05);
    free(s);
    free(c0);
    free(txt);
    rank_guard_report_free(&rep);
    rank_model_free(m);
    /* without groups: rows are dealt into folds */
    free(d.group);
    for (size_t q = 0; q < d.nqueries; q++)
        free(d.qids[q]);
    free(d.qids);
    d.group = NULL;
    d.qids = NULL;
    d.nqueries = 0;
    cr_assert_eq(rank_guard_train(&d, &p, &rep, &m, &eb), 0, "%s", eb.msg);
    cr_assert_eq(rank_model_kind(m), RANK_MODEL_LINEAR);
    rank_guard_report_free(&rep);
    rank_model_free(m);
    rank_dataset_free(&d);
}

Test(guard, rejects_bad_input)
{
    rank_dataset d;
    gen(&d, 6, 10, 4, 0.5, 61);
    rank_guard_params p;
    rank_guard_defaults(&p);
    rank_model_t *m;
    fn_errbuf eb = {{0}};
    p.base_feature = 4;
    cr_assert_eq(rank_guard_train(&d, &p, NULL, &m, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "base feature"), "%s", eb.msg);
    p.base_feature = 0;
    p.inner_folds = 7;
    cr_assert_eq(rank_guard_train(&d, &p, NULL, &m, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "inner folds"), "%s", eb.msg);
    p.inner_folds = 3;
    p.objective = RANK_OBJ_BINARY;
    cr_assert_eq(rank_guard_train(&d, &p, NULL, &m, &eb), FN_EINVAL);
    p.objective = RANK_OBJ_LAMBDARANK;
    cr_assert_eq(rank_guard_train(&d, &p, NULL, &m, &eb), 0, "%s", eb.msg); /* 6 queries, 3 folds: fine */
    rank_model_free(m);
    free(d.group);
    for (size_t q = 0; q < d.nqueries; q++)
        free(d.qids[q]);
    free(d.qids);
    d.qids = NULL;
    d.group = NULL;
    d.nqueries = 0;
    cr_assert_eq(rank_guard_train(&d, &p, NULL, &m, &eb), FN_EINVAL);
    cr_assert_null(m);
    rank_dataset_free(&d);
}

/* LightGBM's lambdarank example (no BM25 column): the base is the single
 * column that ranks the training queries best; the guard still trains. */
Test(guard, lightgbm_lambdarank_data)
{
    const char *data = getenv("FUNNEL_DATA");
    cr_assert_not_null(data, "FUNNEL_DATA not set");
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/lightgbm-lambdarank/rank.train", data);
    snprintf(p2, sizeof p2, "%s/lightgbm-lambdarank/rank.test", data);
    rank_dataset tr, te;
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_dataset_load(p1, NULL, &tr, &eb), 0, "%s", eb.msg);
    rank_dataset_opts o = {.nfeatures = tr.nfeatures};
    cr_assert_eq(rank_dataset_load(p2, &o, &te, &eb), 0, "%s", eb.msg);
    double *s = malloc(tr.rows * sizeof *s);
    size_t best = 0;
    double bestv = -1;
    for (size_t f = 0; f < tr.nfeatures; f++) {
        for (size_t r = 0; r < tr.rows; r++)
            s[r] = isnan(tr.X[r * tr.nfeatures + f]) ? 0 : tr.X[r * tr.nfeatures + f];
        double v = rank_ndcg(&tr, s, 10);
        if (v > bestv) {
            bestv = v;
            best = f;
        }
    }
    free(s);
    rank_guard_params p;
    rank_guard_defaults(&p);
    p.base_feature = best;
    rank_guard_report rep;
    rank_model_t *m;
    /* the first 120 queries (the sanitizer build is slow; the CLI test runs all 201) */
    size_t first[120];
    for (size_t q = 0; q < 120; q++)
        first[q] = q;
    rank_dataset sub;
    cr_assert_eq(rank_dataset_subset(&tr, first, 120, &sub), 0);
    cr_assert_eq(rank_guard_train(&sub, &p, &rep, &m, &eb), 0, "%s", eb.msg);
    char *txt = report_text(&rep, &sub);
    fprintf(stderr, "%s", txt);
    rank_dataset_free(&sub);
    cr_assert_eq(rep.ncand, 11);
    cr_assert_eq(rep.nqueries, 120);
    /* the base alone on rank.test, and the chosen model */
    double *st = malloc(te.rows * sizeof *st);
    for (size_t r = 0; r < te.rows; r++)
        st[r] = isnan(te.X[r * te.nfeatures + best]) ? 0 : te.X[r * te.nfeatures + best];
    double base = rank_ndcg(&te, st, 10), got = ndcg_of(m, &te);
    fprintf(stderr, "rank.test ndcg@10: base column %zu %.4f, guard (%s) %.4f\n", best, base,
            rep.cand[rep.chosen].name, got);
    if (rep.chosen)
        cr_assert_gt(got, base, "a chosen model should beat the base on rank.test too");
    else
        cr_assert_eq(got, base);
    free(st);
    free(txt);
    rank_guard_report_free(&rep);
    rank_model_free(m);
    rank_dataset_free(&tr);
    rank_dataset_free(&te);
}

/* Column 2 made an alternative ranking score: a less noisy view of z1 than
 * the base (alt_good) or pure noise. Labels do not change. */
static void make_alt(rank_dataset *d, int alt_good, uint64_t seed)
{
    rs = seed * 0x2545F4914F6CDD1DULL + 1;
    for (size_t r = 0; r < d->rows; r++) {
        float *x = d->X + r * d->nfeatures;
        /* recover z1 from the base's construction is impossible; use the
         * label-bearing utility through the base plus less noise instead */
        double base = x[0];
        x[2] = alt_good ? (float)(3.0 + 0.5 * base + 0.4 * d->label[r] + 0.2 * gauss()) : (float)(3.0 + gauss());
    }
    free(d->feature_names[2]);
    d->feature_names[2] = strdup("prf_rm3");
}

/* An alternative score that ranks better than the base: one of the "alt"
 * candidates (no trees) is chosen, the model is 0 trees with the alt's weight
 * in its linear part, and it wins on held-out queries. As noise it is not. */
Test(guard, alternative_score_candidates)
{
    rank_dataset tr, te;
    gen(&tr, 120, 40, 4, 0.0, 11);
    gen(&te, 300, 40, 4, 0.0, 12);
    make_alt(&tr, 1, 1);
    make_alt(&te, 1, 2);
    rank_guard_params p;
    rank_guard_defaults(&p);
    p.base_feature = 0;
    p.alt_feature = 2;
    rank_guard_report rep;
    rank_model_t *m = NULL;
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_guard_train(&tr, &p, &rep, &m, &eb), 0, "%s", eb.msg);
    char *txt = report_text(&rep, &tr);
    fprintf(stderr, "%s", txt);
    cr_assert(strstr(txt, "guard: alt ") && strstr(txt, "base+alt-a1 "), "alt candidates listed: %s", txt);
    cr_assert(strstr(txt, "guard: chose alt") || strstr(txt, "guard: chose base+alt"), "%s", txt);
    cr_assert_eq(rank_model_ntrees(m), 0);
    cr_assert_gt(rank_model_weight(m, 2), 0, "the alt's weight");
    double base = ndcg_base(&te), got = ndcg_of(m, &te);
    fprintf(stderr, "held-out ndcg@10: base %.4f guard %.4f\n", base, got);
    cr_assert_gt(got, base + 0.02, "held out: %.4f vs base %.4f", got, base);
    free(txt);
    rank_guard_report_free(&rep);
    rank_model_free(m);

    /* the alt as noise: never chosen */
    make_alt(&tr, 0, 3);
    cr_assert_eq(rank_guard_train(&tr, &p, &rep, &m, &eb), 0, "%s", eb.msg);
    txt = report_text(&rep, &tr);
    cr_assert(!strstr(txt, "guard: chose alt") && !strstr(txt, "guard: chose base+alt"), "%s", txt);
    free(txt);
    rank_guard_report_free(&rep);
    rank_model_free(m);

    /* an alt column that is the base, or past the data, is refused */
    p.alt_feature = 0;
    cr_assert_eq(rank_guard_train(&tr, &p, &rep, &m, &eb), FN_EINVAL);
    p.alt_feature = 9;
    cr_assert_eq(rank_guard_train(&tr, &p, &rep, &m, &eb), FN_EINVAL);
    rank_dataset_free(&tr);
    rank_dataset_free(&te);
}
