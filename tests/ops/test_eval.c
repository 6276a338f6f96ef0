/* test_eval.c - ops/eval.c against hand-computed metrics (the conventions
 * of shared/tools/trec_eval.py; eval_agreement.sh checks the rest). */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval.h"

#define EPS 1e-12

static char *write_tmp(const char *content)
{
    char *path = strdup("/tmp/funnel_eval_XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs(content, f);
    fclose(f);
    return path;
}

static ops_qrels *qrels_from(const char *text)
{
    char *p = write_tmp(text);
    ops_qrels *q = NULL;
    fn_errbuf eb = { { 0 } };
    int rc = ops_eval_load_qrels(p, &q, &eb);
    cr_assert_eq(rc, 0, "%s", fn_errmsg(&eb, rc));
    unlink(p);
    free(p);
    return q;
}

static ops_run *run_from(const char *text)
{
    char *p = write_tmp(text);
    ops_run *r = NULL;
    fn_errbuf eb = { { 0 } };
    int rc = ops_eval_load_run(p, &r, &eb);
    cr_assert_eq(rc, 0, "%s", fn_errmsg(&eb, rc));
    unlink(p);
    free(p);
    return r;
}

typedef struct seen {
    int n;
    char qid[16][16];
    double v[16][OPS_EVAL_NMETRICS];
} seen;

static void per_cb(void *ud, const char *qid, const double v[OPS_EVAL_NMETRICS])
{
    seen *s = ud;
    cr_assert_lt(s->n, 16);
    snprintf(s->qid[s->n], sizeof s->qid[0], "%s", qid);
    memcpy(s->v[s->n], v, sizeof s->v[0]);
    s->n++;
}

static const char *QRELS =
    "q1 0 d1 2\n"
    "q1 0 d2 1\n"
    "q1 0 d3 0\n"
    "\n"
    "q1 0 d4 1\n"
    "q2 0 a 1\n"
    "q3 0 x 0\n"          /* no positive judgment: skipped */
    "q4 0 z 1\n";         /* not in the run: scores 0 */

static const char *RUN =
    "q1 Q0 d3 1 9.0 tag\n"
    "q1 Q0 d1 2 8.0 tag\n"
    "q1 Q0 d5 3 7.0 tag\n"
    "q1 Q0 d4 4 6.0 tag\n"
    "q2 Q0 a 1 5 tag\n"   /* tie with b: b ranks first (docid descending) */
    "q2 Q0 b 2 5 tag\n"
    "q3 Q0 x 1 1 tag\n"
    "q9 Q0 d1 1 1 tag\n"; /* unjudged query: ignored */

Test(eval, hand_computed)
{
    ops_qrels *q = qrels_from(QRELS);
    ops_run *r = run_from(RUN);
    ops_eval_result m;
    seen s = { 0 };
    cr_assert_eq(ops_eval_compute(q, r, &m, per_cb, &s), 0);
    cr_assert_eq(m.queries, 3);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.qid[0], "q1");
    cr_assert_str_eq(s.qid[1], "q2");
    cr_assert_str_eq(s.qid[2], "q4");

    /* q1: ranked d3(0) d1(2) d5(-) d4(1); positives d1:2 d2:1 d4:1. */
    double q1[OPS_EVAL_NMETRICS] = {
        (2 / log2(3) + 1 / log2(5)) / (2 / log2(2) + 1 / log2(3) + 1 / log2(4)),
        (1.0 / 2 + 2.0 / 4) / 3, 1.0 / 2, 0.2, 2.0 / 3, 2.0 / 3,
    };
    /* q2: ranked b a; positive a at rank 2. */
    double q2[OPS_EVAL_NMETRICS] = { 1 / log2(3), 0.5, 0.5, 0.1, 1, 1 };
    for (int k = 0; k < OPS_EVAL_NMETRICS; k++) {
        cr_assert_float_eq(s.v[0][k], q1[k], EPS, "q1 %s", ops_eval_metric_names[k]);
        cr_assert_float_eq(s.v[1][k], q2[k], EPS, "q2 %s", ops_eval_metric_names[k]);
        cr_assert_float_eq(s.v[2][k], 0, EPS, "q4 %s", ops_eval_metric_names[k]);
        cr_assert_float_eq(m.v[k], (q1[k] + q2[k]) / 3, EPS, "mean %s", ops_eval_metric_names[k]);
    }
    cr_assert_str_eq(ops_eval_metric_names[OPS_EVAL_NDCG10], "ndcg@10");
    cr_assert_str_eq(ops_eval_metric_names[OPS_EVAL_R1000], "r@1000");
    ops_eval_run_free(r);
    ops_eval_qrels_free(q);
}

Test(eval, tie_breaking)
{
    /* Equal scores rank 9, 2, 1, 10: characters descending, prefix first. */
    ops_qrels *q = qrels_from("t1 0 10 1\nt2 0 1 1\nt3 0 9 1\nt4 0 2 1\n");
    ops_run *r = NULL;
    cr_assert_eq(ops_eval_run_new(&r), 0);
    const char *qids[] = { "t1", "t2", "t3", "t4" };
    const char *docs[] = { "1", "10", "2", "9" };
    for (int i = 0; i < 4; i++)
        for (int d = 0; d < 4; d++)
            cr_assert_eq(ops_eval_run_add(r, qids[i], docs[d], 3.5), 0);
    /* A higher score beats any docid. */
    cr_assert_eq(ops_eval_run_add(r, "t1", "0", 4.0), 0);
    ops_eval_result m;
    seen s = { 0 };
    cr_assert_eq(ops_eval_compute(q, r, &m, per_cb, &s), 0);
    cr_assert_eq(s.n, 4);
    cr_assert_float_eq(s.v[0][OPS_EVAL_MRR], 1.0 / 5, EPS);   /* t1: 0 9 2 1 10 */
    cr_assert_float_eq(s.v[1][OPS_EVAL_MRR], 1.0 / 3, EPS);   /* t2: "1" third */
    cr_assert_float_eq(s.v[2][OPS_EVAL_MRR], 1.0, EPS);       /* t3: "9" first */
    cr_assert_float_eq(s.v[3][OPS_EVAL_MRR], 1.0 / 2, EPS);   /* t4: "2" second */
    ops_eval_run_free(r);
    ops_eval_qrels_free(q);
}

Test(eval, cutoffs_and_duplicates)
{
    /* 1500 docs, positives at ranks 5, 150 and 1200: only the first two count
     * for map/r@1000, only the first for r@100 and p@10. */
    ops_qrels *q = qrels_from("c 0 doc5 1\nc 0 doc150 3\nc 0 doc1200 1\nd 0 x 1\nd 0 x 0\ne 0 y 1\n");
    ops_run *r = NULL;
    cr_assert_eq(ops_eval_run_new(&r), 0);
    char id[32];
    for (int i = 1; i <= 1500; i++) {
        snprintf(id, sizeof id, "doc%d", i);
        cr_assert_eq(ops_eval_run_add(r, "c", id, 10000.0 - i), 0);
    }
    /* The reference keeps duplicates: "y" twice counts as two hits. */
    cr_assert_eq(ops_eval_run_add(r, "e", "y", 2), 0);
    cr_assert_eq(ops_eval_run_add(r, "e", "y", 1), 0);
    ops_eval_result m;
    seen s = { 0 };
    cr_assert_eq(ops_eval_compute(q, r, &m, per_cb, &s), 0);
    /* "d": the later judgment (0) wins, so d has no positive and is skipped. */
    cr_assert_eq(m.queries, 2);
    cr_assert_str_eq(s.qid[0], "c");
    cr_assert_str_eq(s.qid[1], "e");
    double *c = s.v[0];
    cr_assert_float_eq(c[OPS_EVAL_NDCG10], (1 / log2(6)) / (3 + 1 / log2(3) + 1 / log2(4)), EPS);
    cr_assert_float_eq(c[OPS_EVAL_MAP], (1.0 / 5 + 2.0 / 150) / 3, EPS);
    cr_assert_float_eq(c[OPS_EVAL_MRR], 1.0 / 5, EPS);
    cr_assert_float_eq(c[OPS_EVAL_P10], 0.1, EPS);
    cr_assert_float_eq(c[OPS_EVAL_R100], 1.0 / 3, EPS);
    cr_assert_float_eq(c[OPS_EVAL_R1000], 2.0 / 3, EPS);
    double *e = s.v[1];
    cr_assert_float_eq(e[OPS_EVAL_MAP], 2.0, EPS);
    cr_assert_float_eq(e[OPS_EVAL_P10], 0.2, EPS);
    cr_assert_float_eq(e[OPS_EVAL_NDCG10], 1 + 1 / log2(3), EPS);
    ops_eval_run_free(r);
    ops_eval_qrels_free(q);
}

Test(eval, no_queries)
{
    ops_qrels *q = qrels_from("a 0 x 0\n");
    ops_run *r = run_from("");
    ops_eval_result m;
    cr_assert_eq(ops_eval_compute(q, r, &m, NULL, NULL), 0);
    cr_assert_eq(m.queries, 0);
    cr_assert_float_eq(m.v[OPS_EVAL_MAP], 0, EPS);
    ops_eval_run_free(r);
    ops_eval_qrels_free(q);
}

Test(eval, malformed_lines)
{
    fn_errbuf eb = { { 0 } };
    char *p = write_tmp("q1 0 d1 1\n\nq1 0 d2\n");
    ops_qrels *q = (ops_qrels *)0x1;
    cr_assert_eq(ops_eval_load_qrels(p, &q, &eb), FN_EPARSE);
    cr_assert_null(q);
    cr_assert(strstr(eb.msg, ":3:") != NULL, "message: %s", eb.msg);
    unlink(p); free(p);

    p = write_tmp("q1 0 d1 1.5\n");
    cr_assert_eq(ops_eval_load_qrels(p, &q, &eb), FN_EPARSE);
    cr_assert(strstr(eb.msg, ":1:") != NULL, "message: %s", eb.msg);
    unlink(p); free(p);

    ops_run *r = (ops_run *)0x1;
    p = write_tmp("q1 Q0 d1 1 2.5 t\nq1 Q0 d2 2 abc t\n");
    cr_assert_eq(ops_eval_load_run(p, &r, &eb), FN_EPARSE);
    cr_assert_null(r);
    cr_assert(strstr(eb.msg, ":2:") != NULL, "message: %s", eb.msg);
    unlink(p); free(p);

    p = write_tmp("q1 Q0 d1 1\n");
    cr_assert_eq(ops_eval_load_run(p, &r, &eb), FN_EPARSE);
    cr_assert(strstr(eb.msg, ":1:") != NULL, "message: %s", eb.msg);
    unlink(p); free(p);

    p = write_tmp("q1 Q0 d1 1 nan\n");
    cr_assert_eq(ops_eval_load_run(p, &r, &eb), FN_EPARSE);
    unlink(p); free(p);

    cr_assert_eq(ops_eval_load_run("/nonexistent/funnel.run", &r, &eb), -ENOENT);
    cr_assert_eq(ops_eval_load_qrels("/nonexistent/funnel.qrels", &q, &eb), -ENOENT);

    cr_assert_eq(ops_eval_run_new(&r), 0);
    cr_assert_eq(ops_eval_run_add(r, "q", "a b", 1), FN_EINVAL);
    cr_assert_eq(ops_eval_run_add(r, "", "a", 1), FN_EINVAL);
    cr_assert_eq(ops_eval_run_add(r, "q", "a", NAN), FN_EINVAL);
    ops_eval_run_free(r);
}
