/* test_plan.c - ops/ops_plan.c: `funnel plan`, the capacity planner (issue 13).
 *
 * The arithmetic on a hand-made costs file (COSTS below), worked by hand:
 *
 *   shard CPU per search   c(d) = 1000 + 0.01 * d us
 *   coordinator CPU        500 + 1500 + 50 * S us
 *   shard latency at d0 = 1,000,000 docs: p50 5, p90 11, p99 21 ms; fixed part f = 1 ms
 *   coordinator's own p99  4 ms
 *   machine: 4 cores, 64 GiB; index 1000 bytes per document
 *
 * funnel plan --docs 10000000 --qps 1000 --p99-ms 50 --util 0.5:
 *   tail: z = -ln(1 - q); between p90 (z = ln 10) and p99 (z = ln 100) the slope is
 *     theta = (21 - 11) / (ln 100 - ln 10) = 10 / ln 10 = 4.3429 ms, so beyond p99
 *     L_d0(q) = 21 + 10 * log10(0.01 / (1 - q)) (10 ms per decade of 1 - q).
 *   fan-out: q_S = 0.99^(1/S); L_d(q) = 1 + (L_d0(q) - 1) * d / 10^6; d = ceil(10^7 / S);
 *     p99(S) = 4 + 0.05 * S + L_d(q_S).
 *   S = 6: d = 1666667, 1 - q = 1 - 0.99^(1/6) = 0.00167365, L_d0 = 21 + 10 * log10(5.9750) = 28.7633,
 *     L_d = 1 + 27.7633 * 1.666667 = 47.2722, p99 = 4 + 0.3 + 47.2722 = 51.572 > 50
 *   S = 7: d = 1428572, 1 - q = 1 - 0.99^(1/7) = 0.00143473, L_d0 = 21 + 10 * log10(6.9699) = 29.4323,
 *     L_d = 1 + 28.4323 * 1.428572 = 41.6176, p99 = 4 + 0.35 + 41.6176 = 45.968 <= 50  -> S = 7
 *   memory: floor(64 * 2^30 * 0.5 / 1000) = 34359738 docs per shard -> 1 shard; S = max(7, 1) = 7
 *   replicas: c = 1000 + 0.01 * 1428572 = 15285.72 us; capacity = 4 * 0.5 * 10^6 / 15285.72 = 130.841/s;
 *     R = max(2, ceil(1000 / 130.841)) = max(2, ceil(7.6429)) = 8
 *   coordinators: 500 + 1500 + 50 * 7 = 2350 us; 1000 * 2350 / (4 * 0.5 * 10^6) = 1.175 -> max(2, 2) = 2
 *   machines: 7 * 8 = 56 shard machines + 2 = 58
 * With 1 GiB per machine instead: floor(2^30 * 0.5 / 1000) = 536870 docs per shard,
 *   ceil(10^7 / 536870) = ceil(18.626) = 19 shards (memory wins over latency's 7).
 */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops.h"
#include "testutil.h"

static char tmp[PATH_MAX];
static char costs_path[PATH_MAX + 32];
static char out_text[1 << 16], err_text[1 << 14];

#define COSTS_FMT                                                                                    \
    "{\n"                                                                                            \
    "  \"format\": \"funnel-plan-costs/1\",\n"                                                       \
    "  \"machine\": {\"cpu_model\": \"Test CPU\", \"cores\": 4, \"memory_gib\": %s},\n"             \
    "  \"measured_by\": \"by hand\", \"date\": \"2026-01-01\",\n"                                    \
    "  \"shard_fixed_us\": 1000, \"selection_us_per_doc\": 0.01,\n"                                  \
    "  \"coordinator_us_per_query\": 500, \"stage2_us_per_query\": 1500, \"merge_us_per_shard\": 50,\n" \
    "  \"index_bytes_per_doc\": 1000,\n"                                                             \
    "  \"shard_latency\": {\"docs_per_shard\": 1000000, \"fixed_ms\": 1, \"samples\": 5000,\n"       \
    "                    \"quantiles_ms\": {\"0.5\": 5, \"0.9\": 11, \"0.99\": 21}},\n"              \
    "  \"coordinator_latency_ms\": {\"p50\": 1, \"p99\": 4}\n"                                       \
    "}\n"

static void write_costs(const char *text)
{
    tu_write_file(costs_path, text);
}

static void write_costs_mem(const char *mem)
{
    char buf[4096];
    snprintf(buf, sizeof buf, COSTS_FMT, mem);
    write_costs(buf);
}

static void setup(void)
{
    tu_mkdtemp(tmp, sizeof tmp, "/tmp/test_plan.XXXXXX");
    snprintf(costs_path, sizeof costs_path, "%s/costs.json", tmp);
    write_costs_mem("64");
    unsetenv("FUNNEL_PLAN_COSTS");
}

static void teardown(void)
{
    cr_assert_eq(tu_rmtree(tmp), 0);
}

TestSuite(plan, .init = setup, .fini = teardown);

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Run `funnel plan ARGS...` (NULL-terminated) in this process, stdout and
 * stderr captured into out_text / err_text. Returns the exit status. */
static int run_plan(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "plan";
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s && argc < 31; s = va_arg(ap, const char *)) argv[argc++] = (char *)s;
    va_end(ap);
    argv[argc] = NULL;
    char op[PATH_MAX + 16], ep[PATH_MAX + 16];
    snprintf(op, sizeof op, "%s/out", tmp);
    snprintf(ep, sizeof ep, "%s/err", tmp);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int fo = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(so >= 0 && se >= 0 && fo >= 0 && fe >= 0);
    dup2(fo, 1);
    dup2(fe, 2);
    int rc = ops_cmd_plan(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so), close(se), close(fo), close(fe);
    slurp(op, out_text, sizeof out_text);
    slurp(ep, err_text, sizeof err_text);
    return rc;
}

static double jnum(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_number(v), "no number \"%s\" in the JSON plan", key);
    return json_number_value(v);
}

static json_t *plan_json(const char *docs, const char *qps, const char *p99)
{
    int rc = run_plan("--docs", docs, "--qps", qps, "--p99-ms", p99, "--util", "0.5", "--costs", costs_path,
                      "--json", NULL);
    cr_assert_eq(rc, OPS_EXIT_OK, "exit %d, stderr: %s", rc, err_text);
    json_error_t je;
    json_t *o = json_loads(out_text, 0, &je);
    cr_assert_not_null(o, "not JSON: %s\n%s", je.text, out_text);
    return o;
}

static void damaged_replace_in(const char *good, const char *from, const char *to, const char *want);

#define NEAR(a, b, tol) cr_assert(fabs((a) - (b)) <= (tol), "%s = %.9g, want %.9g", #a, (double)(a), (double)(b))

Test(plan, arithmetic_matches_the_hand_computed_plan)
{
    json_t *o = plan_json("10000000", "1000", "50");
    NEAR(jnum(o, "shards_for_latency"), 7, 0);
    NEAR(jnum(o, "shards_for_memory"), 1, 0);
    NEAR(jnum(o, "shards"), 7, 0);
    NEAR(jnum(o, "docs_per_shard"), 1428572, 0);
    NEAR(jnum(o, "fanout_one_minus_q"), 0.00143473, 1e-8);
    NEAR(jnum(o, "tail_theta_ms"), 10 / log(10), 1e-9);
    NEAR(jnum(o, "shard_latency_d0_ms"), 29.4323, 1e-3);
    NEAR(jnum(o, "shard_latency_ms"), 41.6176, 1e-3);
    NEAR(jnum(o, "planned_p99_ms"), 45.968, 1e-3);
    NEAR(jnum(o, "shard_cpu_us"), 15285.72, 1e-6);
    NEAR(jnum(o, "replica_qps"), 130.841, 1e-3);
    NEAR(jnum(o, "replicas_exact"), 7.6429, 1e-4);
    NEAR(jnum(o, "replicas"), 8, 0);
    NEAR(jnum(o, "coordinator_cpu_us"), 2350, 1e-9);
    NEAR(jnum(o, "coordinators_exact"), 1.175, 1e-9);
    NEAR(jnum(o, "coordinators"), 2, 0);
    NEAR(jnum(o, "shard_machines"), 56, 0);
    NEAR(jnum(o, "machines"), 58, 0);
    json_decref(o);
}

Test(plan, text_shows_each_step_as_formula_and_value)
{
    int rc = run_plan("--docs", "10000000", "--qps", "1000", "--p99-ms", "50", "--util", "0.5", "--costs",
                      costs_path, NULL);
    cr_assert_eq(rc, OPS_EXIT_OK, "stderr: %s", err_text);
    /* the shard count before the answer misses the target, the answer meets it */
    cr_assert_not_null(strstr(out_text, "p99(6) = 4 + 50 * 6 / 1000 + 47.272 = 51.572 ms > 50 ms"), "%s", out_text);
    cr_assert_not_null(strstr(out_text, "p99(7) = 4 + 50 * 7 / 1000 + 41.618 = 45.968 ms <= 50 ms"), "%s", out_text);
    cr_assert_not_null(strstr(out_text, "d = ceil(N / S) = ceil(10000000 / 7) = 1428572 docs"), "%s", out_text);
    cr_assert_not_null(strstr(out_text, "R = max(2, ceil(Q / capacity)) = max(2, ceil(1000 / 130.8)) = "
                                        "max(2, ceil(7.643)) = 8 replicas"), "%s", out_text);
    cr_assert_not_null(strstr(out_text, "shard machines = S * R = 7 * 8 = 56"), "%s", out_text);
    cr_assert_not_null(strstr(out_text, "machines = 56 + 2 = 58"), "%s", out_text);
    cr_assert_not_null(strstr(out_text, "Test CPU, 4 cores"), "%s", out_text);
}

Test(plan, memory_can_need_more_shards_than_latency)
{
    write_costs_mem("1");
    json_t *o = plan_json("10000000", "1000", "50");
    NEAR(jnum(o, "shards_for_latency"), 7, 0);
    NEAR(jnum(o, "shards_for_memory"), 19, 0);
    NEAR(jnum(o, "shards"), 19, 0);
    NEAR(jnum(o, "docs_per_shard"), 526316, 0);
    json_decref(o);
}

Test(plan, merge_latency_apart_from_merge_cpu)
{
    /* merge_latency_us_per_shard 0: p99(7) = 4 + 0 + 41.6176; the CPU still counts 50 us per shard */
    char good[4096], with[4200];
    snprintf(good, sizeof good, COSTS_FMT, "64");
    char *at = strstr(good, "\"merge_us_per_shard\"");
    snprintf(with, sizeof with, "%.*s\"merge_latency_us_per_shard\": 0, %s", (int)(at - good), good, at);
    write_costs(with);
    json_t *o = plan_json("10000000", "1000", "50");
    NEAR(jnum(o, "shards"), 7, 0);
    NEAR(jnum(o, "merge_ms"), 0, 0);
    NEAR(jnum(o, "planned_p99_ms"), 45.618, 1e-3);
    NEAR(jnum(o, "coordinator_cpu_us"), 2350, 1e-9);
    json_decref(o);
}

Test(plan, shard_window_share_shrinks_with_shards)
{
    /* shard_window {selection_k 1000, overprovision 1.5, us_per_doc 2}: with S = 7 a shard
     * selects w = min(1000, ceil(1000 * 1.5 / 7)) = ceil(214.29) = 215 documents, so
     * c = 1000 + 0.01 * 1428572 + 2 * 215 = 15715.72 us; capacity = 2 * 10^6 / 15715.72 = 127.26/s;
     * R = ceil(1000 / 127.26) = ceil(7.858) = 8. With --docs 1000 one shard: w = 1000,
     * c = 1000 + 10 + 2000 = 3010 us. */
    char good[4096], with[4300];
    snprintf(good, sizeof good, COSTS_FMT, "64");
    char *at = strstr(good, "\"index_bytes_per_doc\"");
    snprintf(with, sizeof with, "%.*s\"shard_window\": {\"selection_k\": 1000, \"overprovision\": 1.5, "
             "\"us_per_doc\": 2}, %s", (int)(at - good), good, at);
    write_costs(with);
    json_t *o = plan_json("10000000", "1000", "50");
    NEAR(jnum(o, "shards"), 7, 0);
    NEAR(jnum(o, "window_share"), 215, 0);
    NEAR(jnum(o, "shard_cpu_us"), 15715.72, 1e-6);
    NEAR(jnum(o, "replicas_exact"), 1000 * 15715.72 / 2e6, 1e-9);
    NEAR(jnum(o, "replicas"), 8, 0);
    json_decref(o);
    o = plan_json("1000", "1", "50");
    NEAR(jnum(o, "shards"), 1, 0);
    NEAR(jnum(o, "window_share"), 1000, 0);
    NEAR(jnum(o, "shard_cpu_us"), 3010, 1e-9);
    json_decref(o);
    damaged_replace_in(with, "\"overprovision\": 1.5", "\"overprovision\": 0.5", "\"shard_window.overprovision\" is 0.5");
}

Test(plan, at_least_two_replicas_and_two_coordinators)
{
    json_t *o = plan_json("1000", "1", "50");
    NEAR(jnum(o, "shards"), 1, 0);
    NEAR(jnum(o, "replicas"), 2, 0);
    NEAR(jnum(o, "coordinators"), 2, 0);
    NEAR(jnum(o, "machines"), 4, 0);
    json_decref(o);
}

Test(plan, unreachable_target_is_an_error_naming_the_floor)
{
    /* the coordinator's own p99 is 4 ms: no shard count gets a search under 4 ms */
    int rc = run_plan("--docs", "10000000", "--qps", "1000", "--p99-ms", "4", "--costs", costs_path, NULL);
    cr_assert_eq(rc, OPS_EXIT_FAIL);
    cr_assert_not_null(strstr(err_text, "no shard count"), "%s", err_text);
    cr_assert_not_null(strstr(err_text, "coordinator p99 4"), "%s", err_text);
}

static void bad_arg(const char *flag, const char *value, const char *want)
{
    int rc;
    if (strcmp(flag, "--docs") == 0)
        rc = run_plan("--docs", value, "--qps", "10", "--p99-ms", "50", "--costs", costs_path, NULL);
    else if (strcmp(flag, "--qps") == 0)
        rc = run_plan("--docs", "100", "--qps", value, "--p99-ms", "50", "--costs", costs_path, NULL);
    else
        rc = run_plan("--docs", "100", "--qps", "10", "--p99-ms", "50", flag, value, "--costs", costs_path, NULL);
    cr_assert_eq(rc, OPS_EXIT_USAGE, "%s %s: exit %d", flag, value, rc);
    cr_assert_not_null(strstr(err_text, want), "%s %s: stderr '%s' does not name %s", flag, value, err_text, want);
    cr_assert_eq(out_text[0], '\0');
}

Test(plan, bad_numbers_are_usage_errors_naming_the_flag)
{
    bad_arg("--docs", "abc", "bad value for --docs: 'abc'");
    bad_arg("--docs", "0", "bad value for --docs");
    bad_arg("--docs", "1.5", "bad value for --docs");
    bad_arg("--docs", "-5", "bad value for --docs");
    bad_arg("--docs", "", "bad value for --docs");
    bad_arg("--qps", "0", "bad value for --qps");
    bad_arg("--qps", "1e400", "bad value for --qps");
    bad_arg("--qps", "nan", "bad value for --qps");
    bad_arg("--p99-ms", "-1", "bad value for --p99-ms");
    bad_arg("--p99-ms", "10ms", "bad value for --p99-ms");
    bad_arg("--util", "1.5", "bad value for --util");
    bad_arg("--util", "0", "bad value for --util");
    bad_arg("--cores", "0", "bad value for --cores");
}

Test(plan, missing_and_extra_arguments_are_usage_errors)
{
    cr_assert_eq(run_plan("--docs", "100", "--p99-ms", "50", "--costs", costs_path, NULL), OPS_EXIT_USAGE);
    cr_assert_not_null(strstr(err_text, "--qps is required"), "%s", err_text);
    cr_assert_eq(run_plan("--qps", "1", "--p99-ms", "50", NULL), OPS_EXIT_USAGE);
    cr_assert_not_null(strstr(err_text, "--docs is required"), "%s", err_text);
    cr_assert_eq(run_plan("--docs", "100", "--qps", "1", "--costs", costs_path, NULL), OPS_EXIT_USAGE);
    cr_assert_not_null(strstr(err_text, "--p99-ms is required"), "%s", err_text);
    cr_assert_eq(run_plan("--docs", "100", "--qps", "1", "--p99-ms", "5", "extra", "--costs", costs_path, NULL),
                 OPS_EXIT_USAGE);
    cr_assert_not_null(strstr(err_text, "unexpected argument 'extra'"), "%s", err_text);
    cr_assert_eq(run_plan("--help", NULL), OPS_EXIT_OK);
    cr_assert_not_null(strstr(out_text, "usage: funnel plan"));
}

static void damaged(const char *text, const char *want)
{
    write_costs(text);
    int rc = run_plan("--docs", "1000000", "--qps", "100", "--p99-ms", "50", "--costs", costs_path, NULL);
    cr_assert_eq(rc, OPS_EXIT_FAIL, "exit %d for %s", rc, text);
    cr_assert_not_null(strstr(err_text, "bad costs file"), "%s", err_text);
    cr_assert_not_null(strstr(err_text, costs_path), "%s", err_text);
    cr_assert_not_null(strstr(err_text, want), "stderr '%s' does not say '%s'", err_text, want);
    cr_assert_eq(out_text[0], '\0');
}

static void damaged_replace_in(const char *good, const char *from, const char *to, const char *want)
{
    char bad[4096];
    const char *at = strstr(good, from);
    cr_assert_not_null(at, "%s not in the costs", from);
    snprintf(bad, sizeof bad, "%.*s%s%s", (int)(at - good), good, to, at + strlen(from));
    damaged(bad, want);
}

static void damaged_replace(const char *from, const char *to, const char *want)
{
    char good[4096];
    snprintf(good, sizeof good, COSTS_FMT, "64");
    damaged_replace_in(good, from, to, want);
}

Test(plan, damaged_costs_file_is_a_clear_error)
{
    char good[4096];
    snprintf(good, sizeof good, COSTS_FMT, "64");
    good[strlen(good) / 2] = '\0';     /* truncated */
    damaged(good, "not valid JSON");
    damaged("", "not valid JSON");
    damaged("[1, 2]", "must be a JSON object");
    damaged_replace("\"selection_us_per_doc\": 0.01", "\"selection_per_doc\": 0.01", "\"selection_us_per_doc\" is missing");
    damaged_replace("\"merge_us_per_shard\": 50", "\"merge_us_per_shard\": \"50\"", "\"merge_us_per_shard\" must be a number");
    damaged_replace("\"cores\": 4", "\"cores\": 0", "\"machine.cores\" is 0, outside");
    damaged_replace("\"shard_fixed_us\": 1000", "\"shard_fixed_us\": -3", "\"shard_fixed_us\" is -3, outside");
    damaged_replace("\"0.9\": 11", "\"0.9\": 31", "must not decrease");
    damaged_replace(", \"0.99\": 21", "", "needs a quantile >= 0.99");
    damaged_replace("\"0.5\": 5", "\"1.5\": 5", "not a quantile in (0, 1)");
    damaged_replace("\"fixed_ms\": 1", "\"fixed_ms\": 6", "fixed_ms is above");
    damaged_replace("\"coordinator_latency_ms\": {\"p50\": 1, \"p99\": 4}", "\"x\": 1",
                    "\"coordinator_latency_ms\"");
    damaged_replace("\"shard_fixed_us\": 1000", "\"shard_fixed_us\": 1000, \"shard_fixed_us\": 2", "duplicate");
}

Test(plan, missing_costs_file_names_it)
{
    snprintf(costs_path, sizeof costs_path, "%s/nope.json", tmp);
    int rc = run_plan("--docs", "1000000", "--qps", "100", "--p99-ms", "50", "--costs", costs_path, NULL);
    cr_assert_eq(rc, OPS_EXIT_FAIL);
    cr_assert_not_null(strstr(err_text, "nope.json"), "%s", err_text);
}

Test(plan, default_costs_from_the_environment)
{
    setenv("FUNNEL_PLAN_COSTS", costs_path, 1);
    int rc = run_plan("--docs", "10000000", "--qps", "1000", "--p99-ms", "50", "--util", "0.5", NULL);
    cr_assert_eq(rc, OPS_EXIT_OK, "%s", err_text);
    cr_assert_not_null(strstr(out_text, costs_path), "%s", out_text);
    cr_assert_not_null(strstr(out_text, "= 58 machines"), "%s", out_text);
}
