/* score_bench - scoring speed: 500 documents x 500 trees of depth 6.
 *
 * usage: score_bench [--model FILE | --xgboost m.json] [--data SVMLIGHT] [--docs N] [--trees T]
 *                    [--depth D] [--reps R]
 * Without a model it builds T random complete trees of depth D (features and
 * thresholds drawn from the data's own values, missing directions at random).
 * Documents: the first N rows of the data (rank.test of the LightGBM
 * lambdarank example by default), NaN where a feature is absent. Prints, per
 * scoring method, the median / p10 / p90 time of one call (N documents,
 * single thread) over R repetitions and the speed-up over the naive
 * pointer-chasing baseline. A benchmark, not a test: nothing is asserted
 * except that every method returns the same scores. */
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

int main(int argc, char **argv)
{
    const char *data = FUNNEL_DATA_DIR "/lightgbm-lambdarank/rank.test";
    const char *model_path = NULL, *xgb_path = NULL;
    size_t ndocs = 500, ntrees = 500, reps = 200;
    unsigned depth = 6;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model_path = argv[++i];
        else if (!strcmp(argv[i], "--xgboost") && i + 1 < argc)
            xgb_path = argv[++i];
        else if (!strcmp(argv[i], "--data") && i + 1 < argc)
            data = argv[++i];
        else if (!strcmp(argv[i], "--docs") && i + 1 < argc)
            ndocs = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--trees") && i + 1 < argc)
            ntrees = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--depth") && i + 1 < argc)
            depth = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--model FILE | --xgboost m.json] [--data FILE] [--docs N] [--trees T] "
                            "[--depth D] [--reps R]\n", argv[0]);
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
    rank_model_t *m = NULL;
    if (model_path)
        rc = rank_model_load(model_path, &m, &eb);
    else if (xgb_path)
        rc = rank_xgboost_import(xgb_path, &m, &eb);
    else {
        rc = rank_model_new(RANK_MODEL_TREES, "lambdarank", d.nfeatures, &m);
        rank_node *nodes = malloc(((size_t)2 << depth) * sizeof(rank_node));
        for (size_t t = 0; rc == 0 && t < ntrees; t++) {
            random_tree(nodes, depth, &d);
            rc = rank_model_add_tree(m, nodes, ((size_t)2 << depth) - 1);
        }
        free(nodes);
        if (rc == 0)
            rc = rank_model_finalize(m);
    }
    if (rc) {
        fprintf(stderr, "score_bench: model: %s\n", fn_errmsg(&eb, rc));
        return 1;
    }
    /* documents: the first ndocs rows, repeated if the data is shorter */
    size_t stride = d.nfeatures > rank_model_nfeatures(m) ? d.nfeatures : rank_model_nfeatures(m);
    float *X = malloc(ndocs * stride * sizeof(float));
    for (size_t r = 0; r < ndocs; r++)
        for (size_t f = 0; f < stride; f++)
            X[r * stride + f] = f < d.nfeatures ? d.X[(r % d.rows) * d.nfeatures + f] : NAN;

    printf("score_bench: %zu documents x %zu trees (max depth %zu, %zu leaves), %zu features, %zu reps, "
           "single thread; auto method: %s\n",
           ndocs, rank_model_ntrees(m), rank_model_max_depth(m), rank_model_nleaves(m), rank_model_nfeatures(m),
           reps, rank_score_method_name(m->method));
    double *ref = malloc(ndocs * sizeof(double)), *out = malloc(ndocs * sizeof(double));
    double *t = malloc(reps * sizeof(double));
    rank_model_score_method(m, RANK_SCORE_NAIVE, X, ndocs, stride, ref);
    double naive_med = 0;
    printf("%-8s %10s %10s %10s %8s %12s\n", "method", "median_ms", "p10_ms", "p90_ms", "x_naive", "ns/doc/tree");
    for (int meth = RANK_SCORE_NAIVE; meth < RANK_SCORE_NMETHODS; meth++) {
        if (!rank_score_method_available(m, meth)) {
            printf("%-8s  (not available for this model / CPU)\n", rank_score_method_name(meth));
            continue;
        }
        size_t r = reps < 20 && meth == RANK_SCORE_NAIVE ? reps : reps;
        rank_model_score_method(m, meth, X, ndocs, stride, out); /* warm up */
        for (size_t i = 0; i < r; i++) {
            double t0 = now_ms();
            rank_model_score_method(m, meth, X, ndocs, stride, out);
            t[i] = now_ms() - t0;
        }
        if (memcmp(out, ref, ndocs * sizeof(double)) != 0) {
            fprintf(stderr, "score_bench: method %s disagrees with naive\n", rank_score_method_name(meth));
            return 1;
        }
        qsort(t, r, sizeof(double), cmp_d);
        double med = t[r / 2], p10 = t[r / 10], p90 = t[(r * 9) / 10];
        if (meth == RANK_SCORE_NAIVE)
            naive_med = med;
        printf("%-8s %10.4f %10.4f %10.4f %8.2f %12.3f\n", rank_score_method_name(meth), med, p10, p90,
               naive_med / med, med * 1e6 / (double)(ndocs * rank_model_ntrees(m)));
    }
    free(t);
    free(ref);
    free(out);
    free(X);
    rank_model_free(m);
    rank_dataset_free(&d);
    return 0;
}
