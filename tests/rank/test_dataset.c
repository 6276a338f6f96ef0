/* test_dataset.c - SVMlight / LETOR / .query reader: layouts and errors. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"
#include "testutil.h"

static char dir[256];

static void setup(void)
{
    tu_mkdtemp(dir, sizeof dir, "/tmp/test_dataset_XXXXXX");
}

static void teardown(void)
{
    cr_assert_eq(tu_rmtree(dir), 0);
}

/* Write dir/name with text; returns the path (static buffer rotation). */
static const char *wfile(const char *name, const char *text)
{
    static char paths[4][300];
    static int k;
    char *p = paths[k++ & 3];
    snprintf(p, 300, "%s/%s", dir, name);
    tu_write_file(p, text);
    return p;
}

TestSuite(dataset, .init = setup, .fini = teardown);

Test(dataset, qid_sparse_comments)
{
    const char *p = wfile("a.txt",
                          "# header comment\n"
                          "2 qid:10 1:0.5 3:1.5 # doc A\n"
                          "0 qid:10 2:-1\n"
                          "\n"
                          "1 qid:7 1:2 3:3e-1\n");
    rank_dataset d;
    fn_errbuf eb = {{0}};
    int rc = rank_dataset_load(p, NULL, &d, &eb);
    cr_assert_eq(rc, 0, "%s", eb.msg);
    cr_assert_eq(d.rows, 3);
    cr_assert_eq(d.nfeatures, 3);
    cr_assert_eq(d.nqueries, 2);
    cr_assert_eq(d.group[0], 0);
    cr_assert_eq(d.group[1], 2);
    cr_assert_eq(d.group[2], 3);
    cr_assert_str_eq(d.qids[0], "10");
    cr_assert_str_eq(d.qids[1], "7");
    cr_assert_float_eq(d.label[0], 2.0f, 0);
    cr_assert_float_eq(d.X[0], 0.5f, 0);
    cr_assert(isnan(d.X[1]));
    cr_assert_float_eq(d.X[2], 1.5f, 0);
    cr_assert(isnan(d.X[3]));
    cr_assert_float_eq(d.X[4], -1.0f, 0);
    cr_assert_float_eq(d.X[8], 0.3f, 1e-7);
    cr_assert_null(d.feature_names);
    rank_dataset_free(&d);
}

Test(dataset, query_file_autodetect_and_explicit)
{
    const char *p = wfile("b.txt", "1 1:1\n0 2:1\n0 1:3\n1 3:4\n1 1:1\n");
    wfile("b.txt.query", "2\n3\n");
    rank_dataset d;
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_dataset_load(p, NULL, &d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(d.nqueries, 2);
    cr_assert_eq(d.group[1], 2);
    cr_assert_eq(d.group[2], 5);
    cr_assert_str_eq(d.qids[1], "2");
    rank_dataset_free(&d);

    const char *g = wfile("other.groups", "1\n1\n3\n");
    rank_dataset_opts o = {.group_file = g};
    cr_assert_eq(rank_dataset_load(p, &o, &d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(d.nqueries, 3);
    cr_assert_eq(d.group[3], 5);
    rank_dataset_free(&d);
}

Test(dataset, no_groups_is_classification)
{
    const char *p = wfile("c.txt", "1 1:1\n0 2:1\n");
    rank_dataset d;
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_dataset_load(p, NULL, &d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(d.nqueries, 0);
    cr_assert_null(d.group);
    cr_assert_eq(d.rows, 2);
    rank_dataset_free(&d);
}

Test(dataset, dense_bare_values_and_zero_based)
{
    const char *p = wfile("d.txt", "1 0.1 0.2 0.3\n0 1 2 3\n");
    rank_dataset d;
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_dataset_load(p, NULL, &d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(d.nfeatures, 3);
    cr_assert_float_eq(d.X[5], 3.0f, 0);
    rank_dataset_free(&d);

    const char *z = wfile("z.txt", "1 0:5 2:7\n");
    rank_dataset_opts o = {.zero_based = 1};
    cr_assert_eq(rank_dataset_load(z, &o, &d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(d.nfeatures, 3);
    cr_assert_float_eq(d.X[0], 5.0f, 0);
    cr_assert_float_eq(d.X[2], 7.0f, 0);
    rank_dataset_free(&d);

    /* fixed width: extra columns are NaN, larger ids are errors */
    rank_dataset_opts w = {.nfeatures = 5};
    cr_assert_eq(rank_dataset_load(p, &w, &d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(d.nfeatures, 5);
    cr_assert(isnan(d.X[4]));
    rank_dataset_free(&d);
    rank_dataset_opts w2 = {.nfeatures = 2};
    cr_assert_eq(rank_dataset_load(p, &w2, &d, &eb), FN_EPARSE);
    cr_assert(strstr(eb.msg, "d.txt:1:") != NULL, "%s", eb.msg);
}

Test(dataset, names_file)
{
    const char *p = wfile("n.txt", "1 1:1 2:2\n");
    const char *n = wfile("n.names", "bm25_title\nbm25_body\npagerank\n");
    rank_dataset_opts o = {.names_file = n};
    rank_dataset d;
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_dataset_load(p, &o, &d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(d.nfeatures, 3, "names widen the matrix");
    cr_assert_str_eq(d.feature_names[0], "bm25_title");
    cr_assert_str_eq(d.feature_names[2], "pagerank");
    cr_assert(isnan(d.X[2]));
    rank_dataset_free(&d);
}

/* Load must fail with FN_EPARSE and a message starting with "FILE:LINE:". */
static void expect_error(const char *text, const char *query, int line, const char *what)
{
    const char *p = wfile("e.txt", text);
    char qpath[300];
    snprintf(qpath, sizeof(qpath), "%s.query", p);
    if (query)
        wfile("e.txt.query", query);
    else
        unlink(qpath);
    rank_dataset d;
    fn_errbuf eb = {{0}};
    int rc = rank_dataset_load(p, NULL, &d, &eb);
    cr_assert_eq(rc, FN_EPARSE, "%s: rc %d", what, rc);
    char want[400];
    snprintf(want, sizeof(want), "%s:%d:", query ? qpath : p, line);
    cr_assert(strncmp(eb.msg, want, strlen(want)) == 0, "%s: got \"%s\", want prefix \"%s\"", what, eb.msg,
              want);
    cr_assert_eq(d.rows, 0);
    cr_assert_null(d.X);
}

Test(dataset, errors_with_line_numbers)
{
    expect_error("1 1:1\nx 1:2\n", NULL, 2, "bad label");
    expect_error("1 1:1\n1 a:2\n", NULL, 2, "bad fid");
    expect_error("1 1:1\n\n1 2:zz\n", NULL, 3, "bad value");
    expect_error("1 2:1 2:3\n", NULL, 1, "repeated id");
    expect_error("1 3:1 2:3\n", NULL, 1, "decreasing ids");
    expect_error("1 0:1\n", NULL, 1, "id 0 in 1-based");
    expect_error("1 qid:1 1:1\n1 qid:2 1:1\n# c\n0 qid:1 1:1\n", NULL, 4, "non-contiguous qid");
    expect_error("1 qid:1 1:1\n1 1:1\n", NULL, 2, "missing qid");
    expect_error("1 1:1 0.5\n", NULL, 1, "mixed");
    expect_error("1 1:1\n1 1:1\n1 1:1\n", "1\n1\n", 2, "groups short");
    expect_error("1 1:1\n1 1:1\n", "1\n2\n", 2, "groups long");
    expect_error("1 1:1\n1 1:1\n", "1\nabc\n", 2, "bad group size");
    expect_error("1 1:1\n1 1:1\n", "0\n2\n", 1, "zero group");
}

/* "# features: ..." on line 1 names the columns (the feature registry's
 * training files); a names file wins over it. */
Test(dataset, features_header)
{
    const char *p = wfile("h.txt",
                          "# features: bm25f tf_body cover.title\n"
                          "2 qid:1 1:3.5 2:1 3:0.5 # doc 7\n"
                          "# a plain comment\n"
                          "0 qid:1 1:1.25 2:0 3:0\n"
                          "1 qid:2 1:2 3:1\n");
    rank_dataset d;
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_dataset_load(p, NULL, &d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(d.rows, 3);
    cr_assert_eq(d.nqueries, 2);
    cr_assert_eq(d.nfeatures, 3);
    cr_assert_not_null(d.feature_names);
    cr_assert_str_eq(d.feature_names[0], "bm25f");
    cr_assert_str_eq(d.feature_names[1], "tf_body");
    cr_assert_str_eq(d.feature_names[2], "cover.title");
    cr_assert_float_eq(d.X[0], 3.5f, 0);
    cr_assert(isnan(d.X[7]));
    rank_dataset_free(&d);

    /* a wider requested width keeps the names and pads unnamed columns */
    rank_dataset_opts w = {.nfeatures = 5};
    cr_assert_eq(rank_dataset_load(p, &w, &d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(d.nfeatures, 5);
    cr_assert_str_eq(d.feature_names[2], "cover.title");
    cr_assert_null(d.feature_names[3]);
    rank_dataset_free(&d);

    /* the names file wins */
    const char *n = wfile("h.names", "a\nb\nc\n");
    rank_dataset_opts o = {.names_file = n};
    cr_assert_eq(rank_dataset_load(p, &o, &d, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(d.feature_names[0], "a");
    rank_dataset_free(&d);

    /* zero-based ids: the first name is still column 0 */
    const char *z = wfile("hz.txt", "#features: x y\n1 qid:1 0:1 1:2\n");
    rank_dataset_opts zo = {.zero_based = 1};
    cr_assert_eq(rank_dataset_load(z, &zo, &d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(d.nfeatures, 2);
    cr_assert_str_eq(d.feature_names[1], "y");
    cr_assert_float_eq(d.X[1], 2.0f, 0);
    rank_dataset_free(&d);

    /* a header alone: no rows, its width */
    const char *e = wfile("he.txt", "# features: a b\n");
    cr_assert_eq(rank_dataset_load(e, NULL, &d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(d.rows, 0);
    cr_assert_eq(d.nfeatures, 2);
    rank_dataset_free(&d);

    /* concatenated files repeat the same header: skipped */
    const char *c = wfile("hc.txt", "# features: a b\n1 qid:1 1:1 2:2\n# features: a b\n0 qid:2 1:3 2:4\n");
    cr_assert_eq(rank_dataset_load(c, NULL, &d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(d.rows, 2);
    cr_assert_eq(d.nqueries, 2);
    rank_dataset_free(&d);

    /* "# feature" (no colon) and "#features" elsewhere in a comment are plain comments */
    const char *q = wfile("hq.txt", "# feature list below\n1 qid:1 1:1 # features: x\n");
    cr_assert_eq(rank_dataset_load(q, NULL, &d, &eb), 0, "%s", eb.msg);
    cr_assert_null(d.feature_names);
    rank_dataset_free(&d);
}

Test(dataset, features_header_errors)
{
    expect_error("# features: a b\n1 qid:1 1:1 2:2\n0 qid:1 1:1 3:1\n", NULL, 1, "more columns than names");
    expect_error("# features: a b-c\n1 qid:1 1:1 2:2\n", NULL, 1, "bad name");
    expect_error("# features: a b a\n1 qid:1 1:1 2:2 3:3\n", NULL, 1, "duplicate name");
    expect_error("# features:\n1 qid:1 1:1\n", NULL, 1, "no names");
    expect_error("1 qid:1 1:1 2:2\n# features: a b\n", NULL, 2, "header not first");
    expect_error("# features: a b\n1 qid:1 1:1 2:2\n# features: a c\n", NULL, 3, "second header differs");
    /* the message names the line with the widest row */
    rank_dataset d;
    fn_errbuf eb = {{0}};
    const char *p = wfile("hw.txt", "# features: a b\n1 qid:1 1:1\n0 qid:1 1:1 7:1\n");
    cr_assert_eq(rank_dataset_load(p, NULL, &d, &eb), FN_EPARSE);
    cr_assert(strstr(eb.msg, "names 2 features but the data has 7 columns (feature id 7 on line 3)"), "%s", eb.msg);
    /* a requested width below the header's */
    const char *h = wfile("hn.txt", "# features: a b c\n1 qid:1 1:1 2:2 3:3\n");
    rank_dataset_opts w = {.nfeatures = 2};
    cr_assert_eq(rank_dataset_load(h, &w, &d, &eb), FN_EPARSE);
    cr_assert(strstr(eb.msg, "hn.txt:") != NULL, "%s", eb.msg);
}

/* Sparse rows may leave the last named features out everywhere: they are
 * missing (NaN), and the width is the header's. */
Test(dataset, header_wider_than_the_rows)
{
    rank_dataset d;
    fn_errbuf eb = {{0}};
    const char *p = wfile("wide.txt", "# features: a b c\n1 qid:1 1:1 2:2\n0 qid:1 1:3\n");
    cr_assert_eq(rank_dataset_load(p, NULL, &d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(d.nfeatures, 3);
    cr_assert(isnan(d.X[2]) && isnan(d.X[5]) && isnan(d.X[4]));
    cr_assert_str_eq(d.feature_names[2], "c");
    rank_dataset_free(&d);
}

/* Held-out subsets copy only their own queries' rows. */
Test(dataset, subset_by_query)
{
    const char *p = wfile("s.txt",
                          "# features: a b\n"
                          "1 qid:q1 1:1 2:10\n0 qid:q1 1:2 2:20\n"
                          "2 qid:q2 1:3 2:30\n"
                          "0 qid:q3 1:4 2:40\n1 qid:q3 1:5 2:50\n0 qid:q3 1:6\n");
    rank_dataset d, s;
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_dataset_load(p, NULL, &d, &eb), 0, "%s", eb.msg);
    size_t pick[] = {2, 0};
    cr_assert_eq(rank_dataset_subset(&d, pick, 2, &s), 0);
    cr_assert_eq(s.rows, 5);
    cr_assert_eq(s.nqueries, 2);
    cr_assert_eq(s.group[1], 3);
    cr_assert_eq(s.group[2], 5);
    cr_assert_str_eq(s.qids[0], "q3");
    cr_assert_str_eq(s.qids[1], "q1");
    cr_assert_str_eq(s.feature_names[1], "b");
    cr_assert_float_eq(s.X[0], 4.0f, 0);
    cr_assert(isnan(s.X[5]));
    cr_assert_float_eq(s.X[6], 1.0f, 0);
    cr_assert_float_eq(s.label[4], 0.0f, 0);
    rank_dataset_free(&s);
    size_t bad[] = {3};
    cr_assert_eq(rank_dataset_subset(&d, bad, 1, &s), FN_EINVAL);
    cr_assert_eq(rank_dataset_subset(&d, NULL, 0, &s), 0);
    cr_assert_eq(s.rows, 0);
    rank_dataset_free(&s);
    rank_dataset_free(&d);
}

Test(dataset, missing_file)
{
    rank_dataset d;
    fn_errbuf eb = {{0}};
    int rc = rank_dataset_load("/nonexistent/x.txt", NULL, &d, &eb);
    cr_assert_eq(rc, -ENOENT);
    cr_assert(strstr(eb.msg, "/nonexistent/x.txt") != NULL);
}

Test(dataset, lightgbm_lambdarank_data)
{
    const char *data = getenv("FUNNEL_DATA");
    cr_assert_not_null(data, "FUNNEL_DATA not set");
    char p[512];
    snprintf(p, sizeof(p), "%s/lightgbm-lambdarank/rank.train", data);
    rank_dataset d;
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_dataset_load(p, NULL, &d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(d.rows, 3005);
    cr_assert_eq(d.nqueries, 201);
    cr_assert_eq(d.nfeatures, 300);
    cr_assert_eq(d.group[201], 3005);
    /* first row: "0 10:0.89 11:0.75 ..." */
    cr_assert_float_eq(d.label[0], 0.0f, 0);
    cr_assert(isnan(d.X[0]));
    cr_assert_float_eq(d.X[9], 0.89f, 0);
    cr_assert_float_eq(d.X[10], 0.75f, 0);
    rank_dataset_free(&d);
}
