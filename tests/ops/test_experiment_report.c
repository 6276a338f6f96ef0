/* test_experiment_report.c - `funnel experiment report` (ops/ops_experiment.c):
 * Wilson intervals, the interleaving credit rules, the per-arm counts. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops_experiment.h"

#define near(x, want) (fabs((x) - (want)) < 5e-5)

Test(wilson, known_values)
{
    /* Newcombe, Statistics in Medicine 17 (1998), table I: 81/263 -> 0.2553, 0.3662 */
    static const struct { uint64_t k, n; double lo, hi; } v[] = {
        {81, 263, 0.255289, 0.366210}, {5, 10, 0.236593, 0.763407}, {50, 100, 0.403832, 0.596168},
        {0, 10, 0.0, 0.277533},        {18, 20, 0.698966, 0.972134},
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        double lo, hi;
        ops_wilson(v[i].k, v[i].n, OPS_EXP_Z95, &lo, &hi);
        cr_assert(near(lo, v[i].lo) && near(hi, v[i].hi), "%llu/%llu: [%f, %f]", (unsigned long long)v[i].k,
                  (unsigned long long)v[i].n, lo, hi);
    }
    double lo, hi;
    ops_wilson(0, 0, OPS_EXP_Z95, &lo, &hi);
    cr_assert(lo == 0 && hi == 1, "no trials: the whole range");
    ops_wilson(10, 10, OPS_EXP_Z95, &lo, &hi);
    cr_assert(near(hi, 1) && near(lo, 0.722467), "10/10: [%f, %f]", lo, hi);
}

Test(credit, rules)
{
    const uint8_t c1[4] = {1, 0, 0, 0}, c2[4] = {1, 1, 0, 0}, c3[4] = {0, 0, 0, 0}, c4[4] = {0, 1, 1, 1};
    cr_assert_eq(ops_interleave_credit("ABAB", c1, 4), 1, "one click on A: A wins");
    cr_assert_eq(ops_interleave_credit("BAAB", c1, 4), -1);
    cr_assert_eq(ops_interleave_credit("ABAB", c2, 4), 0, "one each: a tie");
    cr_assert_eq(ops_interleave_credit("ABAB", c3, 4), 0, "no click: a tie");
    cr_assert_eq(ops_interleave_credit("ABBA", c4, 4), -1, "B 2, A 1");
    cr_assert_eq(ops_interleave_credit("\0\0\0A", c4, 4), 1, "hits without a team do not count");
    const uint8_t c5[3] = {1, 1, 0}, c6[3] = {1, 0, 1};
    cr_assert_eq(ops_interleave_credit("NAB", c5, 3), 1, "neutral hits (\"AB\") do not count: A wins by its one");
    cr_assert_eq(ops_interleave_credit("NAB", c6, 3), -1);
    cr_assert_eq(ops_interleave_credit("NNB", c5, 3), 0, "only neutral clicks: a tie");
    cr_assert_str_eq(ops_interleave_verdict(55, 45, OPS_EXP_Z95), "no significant difference");   /* [0.452, 0.644] */
    cr_assert_str_eq(ops_interleave_verdict(60, 40, OPS_EXP_Z95), "A better");   /* [0.502, 0.691] */
    cr_assert_str_eq(ops_interleave_verdict(70, 30, OPS_EXP_Z95), "A better");
    cr_assert_str_eq(ops_interleave_verdict(30, 70, OPS_EXP_Z95), "B better");
    cr_assert_str_eq(ops_interleave_verdict(0, 0, OPS_EXP_Z95), "no significant difference");
}

static char *tmpfile_with(const char *text)
{
    char *p = strdup("/tmp/test_exp_report.XXXXXX");
    int fd = mkstemp(p);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return p;
}

static const ops_exp_arm *arm_of(const ops_exp_report *r, const char *e, const char *a)
{
    for (size_t i = 0; i < r->narms; i++)
        if (!strcmp(r->arms[i].experiment, e) && !strcmp(r->arms[i].arm, a)) return &r->arms[i];
    return NULL;
}

Test(report, counts_and_credit)
{
    char *imp = tmpfile_with(
        /* an old line: no experiment */
        "{\"request_id\":\"1/1\",\"hits\":[{\"id\":\"a\",\"position\":1},{\"id\":\"b\",\"position\":2}]}\n"
        "\n"
        "{\"request_id\":\"1/2\",\"experiment\":\"e\",\"arm\":\"il\",\"hits\":[{\"id\":\"a\",\"position\":1,\"team\":\"A\"},"
        "{\"id\":\"b\",\"position\":2,\"team\":\"B\"},{\"id\":\"c\",\"position\":3,\"team\":\"B\"}]}\n"
        "{\"request_id\":\"1/3\",\"experiment\":\"e\",\"arm\":\"il\",\"hits\":[{\"id\":\"b\",\"position\":1,\"team\":\"B\"},"
        "{\"id\":\"a\",\"position\":2,\"team\":\"A\"}]}\n"
        "{\"request_id\":\"1/4\",\"experiment\":\"e\",\"arm\":\"il\",\"hits\":[{\"id\":\"a\",\"position\":1,\"team\":\"A\"},"
        "{\"id\":\"b\",\"position\":2,\"team\":\"B\"}]}\n"
        /* both rankers' first pick: neutral */
        "{\"request_id\":\"1/5\",\"experiment\":\"e\",\"arm\":\"il\",\"hits\":[{\"id\":\"n\",\"position\":1,\"team\":\"AB\"},"
        "{\"id\":\"a\",\"position\":2,\"team\":\"A\"},{\"id\":\"b\",\"position\":3,\"team\":\"B\"}]}\n"
        "{\"request_id\":\"2/1\",\"experiment\":\"e\",\"arm\":\"ctl\",\"hits\":[{\"id\":\"x\",\"position\":11}]}\n");
    char *clk = tmpfile_with(
        "{\"request_id\":\"1/1\",\"id\":\"b\",\"position\":2,\"dwell\":30}\n"
        /* 1/2: A's a (short) and B's b and c: B wins; successful by c */
        "{\"request_id\":\"1/2\",\"id\":\"a\",\"position\":1,\"dwell\":3}\n"
        "{\"request_id\":\"1/2\",\"id\":\"b\",\"position\":2,\"dwell\":5}\n"
        "{\"request_id\":\"1/2\",\"id\":\"c\",\"position\":3,\"dwell\":12}\n"
        /* 1/3: A's a twice (one click, the longer dwell counts): A wins, successful */
        "{\"request_id\":\"1/3\",\"id\":\"a\",\"position\":2,\"dwell\":2}\n"
        "{\"request_id\":\"1/3\",\"id\":\"a\",\"position\":2,\"dwell\":15}\n"
        /* 1/4: no click: a tie. 2/1: a click without a dwell: not successful */
        "{\"request_id\":\"2/1\",\"id\":\"x\",\"position\":11}\n"
        /* 1/5: the neutral n (successful) and A's a: A wins, by a alone */
        "{\"request_id\":\"1/5\",\"id\":\"n\",\"position\":1,\"dwell\":12}\n"
        "{\"request_id\":\"1/5\",\"id\":\"a\",\"position\":2,\"dwell\":3}\n");
    const char *imps[] = {imp}, *clicks[] = {clk};
    ops_exp_report r;
    fn_errbuf eb = {{0}};
    cr_assert_eq(ops_experiment_report(imps, 1, clicks, 1, 10, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(r.impressions, 6);
    cr_assert_eq(r.clicks, 8);
    cr_assert_eq(r.narms, 3);
    cr_assert_str_eq(r.arms[0].experiment, "", "sorted: no experiment first");
    const ops_exp_arm *il = arm_of(&r, "e", "il"), *ctl = arm_of(&r, "e", "ctl"), *none = arm_of(&r, "", "");
    cr_assert(il && ctl && none);
    cr_assert(il->interleave && !ctl->interleave && !none->interleave);
    cr_assert_eq(il->impressions, 4);
    cr_assert_eq(il->clicks, 6);
    cr_assert_eq(il->clicked, 3);
    cr_assert_eq(il->successful, 3);
    cr_assert_eq(il->wins_a, 2);
    cr_assert_eq(il->wins_b, 1);
    cr_assert_eq(il->ties, 1);
    cr_assert_eq(il->neutral_clicks, 1);
    cr_assert_eq(ctl->clicked, 1);
    cr_assert_eq(ctl->successful, 0, "a click without a dwell is not a successful session");
    cr_assert_eq(none->successful, 1);
    ops_exp_report_free(&r);
    /* --min-dwell 0: every click is a success */
    cr_assert_eq(ops_experiment_report(imps, 1, clicks, 1, 0, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(arm_of(&r, "e", "ctl")->successful, 1);
    ops_exp_report_free(&r);
    /* --min-dwell 20: 1/3's longest click is 15 s */
    cr_assert_eq(ops_experiment_report(imps, 1, clicks, 1, 20, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(arm_of(&r, "e", "il")->successful, 0);
    ops_exp_report_free(&r);
    unlink(imp);
    unlink(clk);
    free(imp);
    free(clk);
}

Test(report, bad_lines)
{
    static const struct { const char *imp, *clk, *want; } bad[] = {
        {"{\"request_id\":\"1\",\"hits\":[{\"id\":\"a\",\"position\":1}]}\n", "{\"request_id\":\"2\",\"id\":\"a\",\"position\":1}\n",
         "click for an unknown request_id \"2\""},
        {"{\"request_id\":\"1\",\"hits\":[{\"id\":\"a\",\"position\":1}]}\n", "{\"request_id\":\"1\",\"id\":\"b\",\"position\":1}\n",
         "request \"1\" showed \"a\" at position 1, not \"b\""},
        {"{\"request_id\":\"1\",\"hits\":[{\"id\":\"a\",\"position\":1}]}\n", "{\"request_id\":\"1\",\"id\":\"a\",\"position\":2}\n",
         "request \"1\" showed positions 1-1, not 2"},
        {"{\"request_id\":\"1\",\"hits\":[{\"id\":\"a\",\"position\":1,\"team\":\"C\"}]}\n", "", "hits[0]: \"team\" is not \"A\", \"B\" or \"AB\""},
        {"{\"request_id\":\"1\",\"experiment\":\"e\",\"hits\":[]}\n", "", "\"experiment\" and \"arm\" come together"},
        {"{\"request_id\":\"1\",\"hits\":[]}\n{\"request_id\":\"1\",\"hits\":[]}\n", "", "request_id \"1\" repeats"},
        {"{\"request_id\":\"1\",\"hits\":[{\"id\":\"a\",\"position\":1},{\"id\":\"b\",\"position\":3}]}\n", "",
         "hits[1]: position 3 after 1"},
        {"nope\n", "", "invalid JSON"},
        {"{\"request_id\":\"1\",\"hits\":[{\"id\":\"a\",\"position\":1}]}\n", "{\"request_id\":\"1\",\"id\":\"a\",\"position\":1,\"dwell\":-1}\n",
         "\"dwell\" is negative"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *imp = tmpfile_with(bad[i].imp), *clk = tmpfile_with(bad[i].clk);
        const char *imps[] = {imp}, *clicks[] = {clk};
        ops_exp_report r;
        fn_errbuf eb = {{0}};
        cr_assert_eq(ops_experiment_report(imps, 1, clicks, 1, 10, &r, &eb), FN_EPARSE, "case %zu", i);
        cr_assert(strstr(eb.msg, bad[i].want), "case %zu: %s", i, eb.msg);
        /* FILE:LINE: first */
        cr_assert(strncmp(eb.msg, "/tmp/test_exp_report.", 21) == 0 && strchr(eb.msg, ':'), "case %zu: %s", i, eb.msg);
        unlink(imp);
        unlink(clk);
        free(imp);
        free(clk);
    }
}
