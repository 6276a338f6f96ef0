/* test_xgboost.c - the XGBoost JSON importer against real XGBoost predictions.
 *
 * Runs /usr/bin/python3 tests/rank/xgb_train.py DATA_DIR TMPDIR, which trains
 * an XGBRanker (rank:ndcg, hist, 50 trees, depth 6, lr 0.1, 1 thread) and a
 * binary:logistic classifier on rank.train and writes XGBoost's own margins
 * on rank.test. Every imported-model score must be within 1e-5 of them.
 * Skipped only when python3-xgboost (or sklearn/numpy) is missing. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dataset.h"
#include "testutil.h"
#include "metrics.h"
#include "model.h"
#include "xgboost.h"

#ifndef XGB_SCRIPT
#define XGB_SCRIPT "tests/rank/xgb_train.py"
#endif

static char dir[256];
static char data_dir[512];

static void setup(void)
{
    const char *data = getenv("FUNNEL_DATA");
    cr_assert_not_null(data, "FUNNEL_DATA not set");
    snprintf(data_dir, sizeof(data_dir), "%s/lightgbm-lambdarank", data);
    tu_mkdtemp(dir, sizeof dir, "/tmp/test_xgboost_XXXXXX");
}

static void teardown(void)
{
    cr_assert_eq(tu_rmtree(dir), 0);
}

TestSuite(xgboost, .init = setup, .fini = teardown, .timeout = 110);

/* Train the reference models once per test (a couple of seconds). */
static void train_reference(void)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s' '%s' '%s' 2>'%s/py.err'", XGB_SCRIPT, data_dir, dir, dir);
    int st = system(cmd);
    cr_assert(st != -1 && WIFEXITED(st), "cannot run %s", cmd);
    if (WEXITSTATUS(st) == 77)
        cr_skip_test("python3-xgboost / sklearn / numpy not installed: XGBoost import not checked");
    if (WEXITSTATUS(st) != 0) {
        char p[300], line[512] = "";
        snprintf(p, sizeof(p), "%s/py.err", dir);
        FILE *f = fopen(p, "r");
        if (f) {
            size_t k = fread(line, 1, sizeof(line) - 1, f);
            line[k] = 0;
            fclose(f);
        }
        cr_assert_fail("xgb_train.py failed (exit %d): %s", WEXITSTATUS(st), line);
    }
}

static double *read_preds(const char *name, size_t n)
{
    char p[300];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f, "%s", p);
    double *v = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(fscanf(f, "%lf", &v[i]), 1, "%s: row %zu", p, i);
    double extra;
    cr_assert_eq(fscanf(f, "%lf", &extra), EOF, "%s has more than %zu rows", p, n);
    fclose(f);
    return v;
}

static void load_test(rank_dataset *d, size_t nfeatures)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/rank.test", data_dir);
    rank_dataset_opts o = {.nfeatures = nfeatures};
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_dataset_load(p, &o, d, &eb), 0, "%s", eb.msg);
}

static void check_model(const char *json, const char *pred, const char *objective)
{
    char p[300];
    snprintf(p, sizeof(p), "%s/%s", dir, json);
    rank_model_t *m;
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_xgboost_import(p, &m, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(rank_model_objective(m), objective);
    cr_assert_eq(rank_model_nfeatures(m), 300);
    rank_dataset d;
    load_test(&d, rank_model_nfeatures(m));
    double *want = read_preds(pred, d.rows);
    double *got = malloc(d.rows * sizeof(double));
    rank_model_score(m, d.X, d.rows, d.nfeatures, got);
    double maxdiff = 0;
    size_t worst = 0;
    for (size_t r = 0; r < d.rows; r++) {
        double diff = fabs(got[r] - want[r]);
        if (diff > maxdiff)
            maxdiff = diff, worst = r;
    }
    cr_log_info("%s: %zu rows, %zu trees, max |ours - xgboost| = %.3g (row %zu)", json, d.rows,
                rank_model_ntrees(m), maxdiff, worst);
    cr_assert_leq(maxdiff, 1e-5, "%s row %zu: ours %.9g xgboost %.9g", json, worst, got[worst], want[worst]);

    /* the imported model survives our own format unchanged */
    snprintf(p, sizeof(p), "%s/%s.model", dir, json);
    cr_assert_eq(rank_model_save(m, p, &eb), 0, "%s", eb.msg);
    rank_model_t *l;
    cr_assert_eq(rank_model_load(p, &l, &eb), 0, "%s", eb.msg);
    double *again = malloc(d.rows * sizeof(double));
    rank_model_score(l, d.X, d.rows, d.nfeatures, again);
    cr_assert_eq(memcmp(again, got, d.rows * sizeof(double)), 0);
    free(again);
    rank_model_free(l);

    free(want);
    free(got);
    rank_dataset_free(&d);
    rank_model_free(m);
}

Test(xgboost, ranker_and_binary_match_xgboost_predictions)
{
    train_reference();
    check_model("m.json", "m.pred", "lambdarank");
    check_model("b.json", "b.pred", "binary");

    /* our NDCG@10 on XGBoost's own predictions equals its eval ndcg@10 */
    rank_dataset d;
    load_test(&d, 300);
    double *pred = read_preds("m.pred", d.rows);
    char p[300];
    snprintf(p, sizeof(p), "%s/m.ndcg", dir);
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f);
    double xgb_ndcg;
    cr_assert_eq(fscanf(f, "%lf", &xgb_ndcg), 1);
    fclose(f);
    double ours = rank_ndcg(&d, pred, 10);
    cr_log_info("ndcg@10 on rank.test: xgboost %.9g, rank_ndcg %.9g", xgb_ndcg, ours);
    cr_assert_float_eq(ours, xgb_ndcg, 1e-6, "ours %.9g xgboost %.9g", ours, xgb_ndcg);
    free(pred);
    rank_dataset_free(&d);
}

Test(xgboost, rejects_bad_files)
{
    char p[300];
    fn_errbuf eb = {{0}};
    rank_model_t *m;
    snprintf(p, sizeof(p), "%s/bad.json", dir);
    FILE *f = fopen(p, "w");
    fputs("{\"learner\": {\n  \"objective\": {\"name\": \"rank:ndcg\"},\n  oops }}\n", f);
    fclose(f);
    cr_assert_eq(rank_xgboost_import(p, &m, &eb), FN_EPARSE);
    cr_assert(strstr(eb.msg, "bad.json:3:") != NULL, "%s", eb.msg);

    f = fopen(p, "w");
    fputs("{\"learner\": {\"objective\": {\"name\": \"multi:softmax\"},"
          "\"learner_model_param\": {\"base_score\": \"5E-1\", \"num_feature\": \"2\"}}}", f);
    fclose(f);
    cr_assert_eq(rank_xgboost_import(p, &m, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "multi:softmax") != NULL, "%s", eb.msg);

    /* a hand-written one-split model: x0 < 0.5 -> 1.0 else 2.0, NaN right */
    f = fopen(p, "w");
    fputs("{\"learner\": {\"objective\": {\"name\": \"reg:squarederror\"},"
          "\"learner_model_param\": {\"base_score\": \"2.5E-1\", \"num_feature\": \"2\", \"num_class\": \"0\"},"
          "\"gradient_booster\": {\"name\": \"gbtree\", \"model\": {\"trees\": [{"
          "\"left_children\": [1, -1, -1], \"right_children\": [2, -1, -1], \"split_indices\": [1, 0, 0],"
          "\"split_conditions\": [0.5, 1.0, 2.0], \"default_left\": [0, 0, 0], \"split_type\": [0, 0, 0]}]}}}}",
          f);
    fclose(f);
    cr_assert_eq(rank_xgboost_import(p, &m, &eb), 0, "%s", eb.msg);
    float X[6] = {9, 0.25f, 9, 0.5f, 9, NAN};
    double s[3];
    rank_model_score(m, X, 3, 2, s);
    cr_assert_eq(s[0], 1.25);
    cr_assert_eq(s[1], 2.25);
    cr_assert_eq(s[2], 2.25);
    rank_model_free(m);

    cr_assert_eq(rank_xgboost_import("/nonexistent.json", &m, &eb), -ENOENT, "%s", eb.msg);
}
