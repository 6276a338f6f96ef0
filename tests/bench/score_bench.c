/* score_bench - scoring speed: 500 documents x 500 trees of depth 6.
 *
 * usage: score_bench [--model FILE | --xgboost m.json] [--data SVMLIGHT] [--docs N] [--trees T]
 *                    [--depth D] [--reps R] [--kinds complete,sparse,trained] [--method NAME]
 *                    [--train FILE] [--cache MODEL]
 * Without a model it measures three model kinds, T trees of depth D each:
 *   complete  random complete trees (2^D leaves; features and thresholds drawn
 *             from the data's own values, missing directions at random)
 *   sparse    random trees grown with split probability 0.7 below the root
 *             (about 17 leaves at depth 6, like XGBoost's depth-6 trees here)
 *   trained   our LambdaMART (rank_train_gbdt, one thread) on rank.train; the
 *             model is cached in --cache (default score_bench_trained.model in
 *             the working directory) as training takes a while.
 * Documents: the first N rows of the data (rank.test of the LightGBM
 * lambdarank example by default), NaN where a feature is absent. Prints, per
 * scoring method, the median / p10 / p90 time of one call (N documents,
 * single thread) over R repetitions and the speed-up over the naive
 * pointer-chasing baseline. A benchmark, not a test: nothing is asserted
 * except that every method returns the same scores. FUNNEL_SCORE_CPU=avx2
 * (or avx512, portable) shows what a CPU without AVX-512 would run:
 * the methods it lacks print as not available and "auto" is its choice;
 * --method NAME times one method (and naive). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataset.h"
#include "model.h"
#include "model_int.h"
#include "train.h"
#include "xgboost.h"

#ifndef FUNNEL_DATA_DIR
#define FUNNEL_DATA_DIR "../shared/data"
#endif

static uint64_t rs = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Complete tree of depth D in rank_node form (nodes in BFS order). */
static void random_tree(rank_node *nodes, unsigned D, const rank_dataset *d)
{
    size_t ni = ((size_t)1 << D) - 1, nl = (size_t)1 << D;
    for (size_t i = 0; i < ni; i++) {
        size_t f, r;
        float v;
        int tries = 0;
        do { /* a feature value that exists, so splits are not degenerate */
            f = rnd() % d->nfeatures;
            r = rnd() % d->rows;
            v = d->X[r * d->nfeatures + f];
        } while (isnan(v) && ++tries < 100);
        nodes[i] = (rank_node){.feature = (int32_t)f, .threshold = isnan(v) ? 0.5f : v,
                               .left = (int32_t)(2 * i + 1), .right = (int32_t)(2 * i + 2),
                               .missing_left = rnd() & 1};
    }
    for (size_t j = 0; j < nl; j++)
        nodes[ni + j] = (rank_node){.feature = -1, .left = -1, .right = -1,
                                    .value = ((double)(rnd() % 20001) - 10000) / 1e5};
}

/* Random tree, split probability 0.7 below the root; returns the node index. */
static int32_t sparse_node(rank_node *nodes, size_t *n, unsigned d, unsigned D, const rank_dataset *ds)
{
    size_t i = (*n)++;
    if (d == D || (d > 0 && rnd() % 10 >= 7)) {
        nodes[i] = (rank_node){.feature = -1, .left = -1, .right = -1,
                               .value = ((double)(rnd() % 20001) - 10000) / 1e5};
        return (int32_t)i;
    }
    size_t f, r;
    float v;
    int tries = 0;
    do {
        f = rnd() % ds->nfeatures;
        r = rnd() % ds->rows;
        v = ds->X[r * ds->nfeatures + f];
    } while (isnan(v) && ++tries < 100);
    nodes[i] = (rank_node){.feature = (int32_t)f, .threshold = isnan(v) ? 0.5f : v, .missing_left = rnd() & 1};
    int32_t l = sparse_node(nodes, n, d + 1, D, ds);
    int32_t rr = sparse_node(nodes, n, d + 1, D, ds);
    nodes[i].left = l;
    nodes[i].right = rr;
    return (int32_t)i;
}

static int random_model(const char *kind, size_t ntrees, unsigned depth, const rank_dataset *d, rank_model_t **out)
{
    rank_model_t *m;
    int rc = rank_model_new(RANK_MODEL_TREES, "lambdarank", d->nfeatures, &m);
    if (rc)
        return rc;
    rank_node *nodes = malloc(((size_t)2 << depth) * sizeof(rank_node));
    if (!nodes)
        rc = -1;
    for (size_t t = 0; rc == 0 && t < ntrees; t++) {
        size_t n = 0;
        if (!strcmp(kind, "complete")) {
            random_tree(nodes, depth, d);
            n = ((size_t)2 << depth) - 1;
        } else {
            sparse_node(nodes, &n, 0, depth, d);
        }
        rc = rank_model_add_tree(m, nodes, n);
    }
    free(nodes);
    if (rc == 0)
        rc = rank_model_finalize(m);
    if (rc) {
        rank_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

static int trained_model(const char *train, const char *cache, size_t ntrees, unsigned depth, rank_model_t **out,
                         fn_errbuf *eb)
{
    if (rank_model_load(cache, out, eb) == 0 && rank_model_ntrees(*out) == ntrees)
        return 0;
    if (*out)
        rank_model_free(*out);
    *out = NULL;
    fprintf(stderr, "score_bench: training %zu trees of depth %u on %s (cached in %s)...\n", ntrees, depth, train,
            cache);
    rank_dataset tr;
    int rc = rank_dataset_load(train, NULL, &tr, eb);
    if (rc)
        return rc;
    rank_gbdt_params p;
    rank_gbdt_defaults(&p);
    p.trees = (unsigned)ntrees;
    p.max_depth = depth;
    p.threads = 2;
    rc = rank_train_gbdt(&tr, NULL, &p, NULL, NULL, out, eb);
    rank_dataset_free(&tr);
    if (rc == 0 && rank_model_save(*out, cache, eb) != 0)
        fprintf(stderr, "score_bench: cannot cache the model: %s\n", eb->msg);
    return rc;
}

static int bench(rank_model_t *m, const char *label, const rank_dataset *d, size_t ndocs, size_t reps,
                 int only)
{
    /* documents: the first ndocs rows, repeated if the data is shorter */
    size_t stride = d->nfeatures > rank_model_nfeatures(m) ? d->nfeatures : rank_model_nfeatures(m);
    float *X = malloc(ndocs * stride * sizeof(float));
    double *ref = malloc(ndocs * sizeof(double)), *out = malloc(ndocs * sizeof(double));
    double *t = malloc(reps * sizeof(double));
    if (!X || !ref || !out || !t)
        return 1;
    for (size_t r = 0; r < ndocs; r++)
        for (size_t f = 0; f < stride; f++)
            X[r * stride + f] = f < d->nfeatures ? d->X[(r % d->rows) * d->nfeatures + f] : NAN;
    printf("\n[%s] %zu documents x %zu trees (max depth %zu, %zu leaves), %zu features, %zu reps, "
           "single thread; cpu: %s%s; auto method: %s\n",
           label, ndocs, rank_model_ntrees(m), rank_model_max_depth(m), rank_model_nleaves(m),
           rank_model_nfeatures(m), reps, rank_score_cpu_name(m->cpu),
           getenv("FUNNEL_SCORE_CPU") ? " (FUNNEL_SCORE_CPU)" : "", rank_score_method_name(m->method));
    rank_model_score_method(m, RANK_SCORE_NAIVE, X, ndocs, stride, ref);
    printf("%-8s %10s %10s %10s %8s %12s\n", "method", "median_ms", "p10_ms", "p90_ms", "x_naive", "ns/doc/tree");
    double naive_med = 0;
    int bad = 0;
    for (int meth = RANK_SCORE_NAIVE; meth < RANK_SCORE_NMETHODS; meth++) {
        if (only && meth != only && meth != RANK_SCORE_NAIVE)
            continue;
        if (!rank_score_method_available(m, meth)) {
            printf("%-8s  (not available for this model / CPU)\n", rank_score_method_name(meth));
            continue;
        }
        /* the slow baselines get fewer repetitions */
        size_t r = meth <= RANK_SCORE_FLAT && reps > 20 ? 20 : reps;
        rank_model_score_method(m, meth, X, ndocs, stride, out); /* warm up */
        for (size_t i = 0; i < r; i++) {
            double t0 = now_ms();
            rank_model_score_method(m, meth, X, ndocs, stride, out);
            t[i] = now_ms() - t0;
        }
        qsort(t, r, sizeof(double), cmp_d);
        double med = t[r / 2], p10 = t[r / 10], p90 = t[(r * 9) / 10];
        if (meth == RANK_SCORE_NAIVE)
            naive_med = med;
        int same = memcmp(out, ref, ndocs * sizeof(double)) == 0;
        printf("%-8s %10.4f %10.4f %10.4f %8.2f %12.3f%s%s\n", rank_score_method_name(meth), med, p10, p90,
               naive_med / med, med * 1e6 / (double)(ndocs * rank_model_ntrees(m)),
               meth == m->method ? "  <- auto" : "", same ? "" : "  DISAGREES WITH NAIVE");
        bad |= !same;
    }
    free(t);
    free(ref);
    free(out);
    free(X);
    return bad;
}

int main(int argc, char **argv)
{
    const char *data = FUNNEL_DATA_DIR "/lightgbm-lambdarank/rank.test";
    const char *train = FUNNEL_DATA_DIR "/lightgbm-lambdarank/rank.train";
    const char *model_path = NULL, *xgb_path = NULL, *cache = "score_bench_trained.model";
    const char *kinds = "complete,sparse,trained";
    size_t ndocs = 500, ntrees = 500, reps = 300;
    unsigned depth = 6;
    int only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model_path = argv[++i];
        else if (!strcmp(argv[i], "--xgboost") && i + 1 < argc)
            xgb_path = argv[++i];
        else if (!strcmp(argv[i], "--data") && i + 1 < argc)
            data = argv[++i];
        else if (!strcmp(argv[i], "--train") && i + 1 < argc)
            train = argv[++i];
        else if (!strcmp(argv[i], "--cache") && i + 1 < argc)
            cache = argv[++i];
        else if (!strcmp(argv[i], "--kinds") && i + 1 < argc)
            kinds = argv[++i];
        else if (!strcmp(argv[i], "--method") && i + 1 < argc) {
            const char *name = argv[++i];
            for (int k = RANK_SCORE_NAIVE; k < RANK_SCORE_NMETHODS; k++)
                if (!strcmp(name, rank_score_method_name(k)))
                    only = k;
        } else if (!strcmp(argv[i], "--docs") && i + 1 < argc)
            ndocs = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--trees") && i + 1 < argc)
            ntrees = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--depth") && i + 1 < argc)
            depth = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--model FILE | --xgboost m.json] [--data FILE] [--docs N] [--trees T] "
                            "[--depth D] [--reps R] [--kinds complete,sparse,trained] [--method NAME] "
                            "[--train FILE] [--cache MODEL]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1 || depth > 20 || ndocs < 1)
        return 2;
    fn_errbuf eb = {{0}};
    rank_dataset d;
    int rc = rank_dataset_load(data, NULL, &d, &eb);
    if (rc) {
        fprintf(stderr, "score_bench: %s\n", fn_errmsg(&eb, rc));
        return 1;
    }
    int bad = 0;
    if (model_path || xgb_path) {
        rank_model_t *m = NULL;
        rc = model_path ? rank_model_load(model_path, &m, &eb) : rank_xgboost_import(xgb_path, &m, &eb);
        if (rc) {
            fprintf(stderr, "score_bench: model: %s\n", fn_errmsg(&eb, rc));
            return 1;
        }
        bad |= bench(m, model_path ? model_path : xgb_path, &d, ndocs, reps, only);
        rank_model_free(m);
    } else {
        const char *names[] = {"complete", "sparse", "trained"};
        for (int k = 0; k < 3; k++) {
            if (!strstr(kinds, names[k]))
                continue;
            rank_model_t *m = NULL;
            rc = k < 2 ? random_model(names[k], ntrees, depth, &d, &m)
                       : trained_model(train, cache, ntrees, depth, &m, &eb);
            if (rc) {
                fprintf(stderr, "score_bench: %s model: %s\n", names[k], fn_errmsg(&eb, rc));
                return 1;
            }
            bad |= bench(m, names[k], &d, ndocs, reps, only);
            rank_model_free(m);
        }
    }
    rank_dataset_free(&d);
    if (bad)
        fprintf(stderr, "score_bench: some method disagrees with naive traversal\n");
    return bad;
}
