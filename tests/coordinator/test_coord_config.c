/* test_coord_config.c - funnel-coordinator settings: defaults, flags, the
 * config file (flags override it), errors, and the example files in
 * ops/configs ($FUNNEL_CONFIGS, set by tests/coordinator/meson.build). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "coord_config.h"
#include "fn_log.h"
#include "topology.h"

static char path[64];

static void write_file(const char *text)
{
    if (path[0]) unlink(path);
    tu_write_temp(path, sizeof path, "/tmp/funnel-coord-cfg-XXXXXX", text);
}

static void cleanup(void)
{
    if (path[0]) unlink(path);
    path[0] = '\0';
}

TestSuite(coord_config, .fini = cleanup);

Test(coord_config, defaults)
{
    coord_config c;
    char *argv[] = {"funnel-coordinator", "--topology", "/etc/t.conf", NULL};
    fn_errbuf eb = {{0}};
    cr_assert_eq(coord_config_from_args(&c, 3, argv, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(c.topology, "/etc/t.conf");
    cr_assert_str_eq(c.listen, "127.0.0.1:0");
    cr_assert_str_eq(c.addr_file, "");
    cr_assert_str_eq(c.config_file, "");
    cr_assert_eq(c.default_deadline_ms, 5000);
    cr_assert_eq(c.budget_ms, 20);
    cr_assert_eq(c.max_window, 10000);
    cr_assert_eq(c.max_query_bytes, 4096);
    cr_assert_eq(c.health_interval_ms, 1000);
    cr_assert_eq(c.probe_deadline_ms, 500);
    cr_assert_eq(c.down_probe_interval_ms, 250);
    cr_assert_eq(c.breaker_failures, 3);
    cr_assert_eq(c.breaker_backoff_ms, 1000);
    cr_assert_eq(c.breaker_max_backoff_ms, 30000);
    cr_assert_eq(c.prf_docs, 10);
    cr_assert_eq(c.prf_terms, 50);
    cr_assert_float_eq(c.prf_lambda, 0.7, 1e-12);
    cr_assert_float_eq(c.prf_temperature, 0.1, 1e-12);
    cr_assert_float_eq(c.prf_max_df, 0.2, 1e-12);
    cr_assert_eq(coord_config_set(&c, "prf-max-df", "0", NULL), 0, "0: every term");
    cr_assert_float_eq(c.prf_max_df, 0.0, 1e-12);
    cr_assert_eq(coord_config_set(&c, "prf-temperature", "0", NULL), 0, "0: linear feedback weights");
    cr_assert_float_eq(c.prf_temperature, 0.0, 1e-12);
    cr_assert_eq(c.log_level, FN_LOG_INFO);
    cr_assert_not(c.help);
}

Test(coord_config, every_flag)
{
    coord_config c;
    char *argv[] = {"funnel-coordinator", "--topology=/t", "--listen", "0.0.0.0:7000",
                    "--addr-file", "/run/a", "--default-deadline-ms", "250", "--budget-ms=0",
                    "--max-window", "77", "--max-query-bytes", "1048576",
                    "--health_interval_ms", "0", "--log-level", "debug", NULL};
    fn_errbuf eb = {{0}};
    cr_assert_eq(coord_config_from_args(&c, 17, argv, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(c.topology, "/t");
    cr_assert_str_eq(c.listen, "0.0.0.0:7000");
    cr_assert_str_eq(c.addr_file, "/run/a");
    cr_assert_eq(c.default_deadline_ms, 250);
    cr_assert_eq(c.budget_ms, 0);
    cr_assert_eq(c.max_window, 77);
    cr_assert_eq(c.max_query_bytes, 1 << 20);
    cr_assert_eq(c.health_interval_ms, 0);
    cr_assert_eq(c.log_level, FN_LOG_DEBUG);
}

Test(coord_config, breaker_flags)
{
    coord_config c;
    char *argv[] = {"funnel-coordinator", "--topology=/t", "--probe-deadline-ms", "300",
                    "--down-probe-interval-ms=100", "--breaker-failures", "5",
                    "--breaker_backoff_ms", "200", "--breaker-max-backoff-ms", "200", NULL};
    fn_errbuf eb = {{0}};
    cr_assert_eq(coord_config_from_args(&c, 11, argv, &eb), 0, "%s", eb.msg);
    cr_assert_eq(c.probe_deadline_ms, 300);
    cr_assert_eq(c.down_probe_interval_ms, 100);
    cr_assert_eq(c.breaker_failures, 5);
    cr_assert_eq(c.breaker_backoff_ms, 200);
    cr_assert_eq(c.breaker_max_backoff_ms, 200);

    char *bad[] = {"funnel-coordinator", "--topology=/t", "--breaker-backoff-ms", "50000", NULL};
    cr_assert_eq(coord_config_from_args(&c, 4, bad, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "breaker-max-backoff-ms: 30000 is less than breaker-backoff-ms 50000");
}

Test(coord_config, load_shedding_flags)
{
    coord_config c;
    char *argv[] = {"funnel-coordinator", "--topology=/t", NULL};
    fn_errbuf eb = {{0}};
    cr_assert_eq(coord_config_from_args(&c, 2, argv, &eb), 0, "%s", eb.msg);
    cr_assert_eq(c.max_inflight, 512);
    cr_assert_eq(c.min_inflight, 64);
    cr_assert_eq(c.target_latency_ms, 100);
    cr_assert_eq(c.shed_grace_ms, 2000, "a burst drains for 2 s by default");
    char *set[] = {"funnel-coordinator", "--topology=/t", "--shed-grace-ms", "0", "--target-latency-ms=50", NULL};
    cr_assert_eq(coord_config_from_args(&c, 5, set, &eb), 0, "%s", eb.msg);
    cr_assert_eq(c.shed_grace_ms, 0, "0: shed at once");
    cr_assert_eq(c.target_latency_ms, 50);
    char *bad[] = {"funnel-coordinator", "--topology=/t", "--shed-grace-ms", "-1", NULL};
    cr_assert_eq(coord_config_from_args(&c, 4, bad, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "shed-grace-ms"), "%s", eb.msg);
}

Test(coord_config, topology_required_unless_help)
{
    coord_config c;
    fn_errbuf eb = {{0}};
    char *argv[] = {"funnel-coordinator", "--budget-ms", "5", NULL};
    cr_assert_eq(coord_config_from_args(&c, 3, argv, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "--topology FILE is required");
    char *help[] = {"funnel-coordinator", "--help", NULL};
    cr_assert_eq(coord_config_from_args(&c, 2, help, &eb), 0);
    cr_assert(c.help);
    cr_assert_not_null(strstr(coord_config_usage(), "--config FILE"));
}

Test(coord_config, file_then_flags_override)
{
    write_file("# coordinator\n"
               "topology = /etc/funnel/topology.conf\n"
               "listen=0.0.0.0:7000\n"
               "budget_ms = 40   # trailing comment\n"
               "\n"
               "max-window = 500\n"
               "health-interval-ms = 250\n"
               "log-level = warn\n");
    coord_config c;
    fn_errbuf eb = {{0}};
    /* --budget-ms before --config on the command line still wins */
    char *argv[] = {"funnel-coordinator", "--budget-ms", "7", "--config", path,
                    "--listen=127.0.0.1:7100", NULL};
    cr_assert_eq(coord_config_from_args(&c, 6, argv, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(c.config_file, path);
    cr_assert_str_eq(c.topology, "/etc/funnel/topology.conf");
    cr_assert_str_eq(c.listen, "127.0.0.1:7100");
    cr_assert_eq(c.budget_ms, 7);
    cr_assert_eq(c.max_window, 500);
    cr_assert_eq(c.health_interval_ms, 250);
    cr_assert_eq(c.log_level, FN_LOG_WARN);
    cr_assert_eq(c.default_deadline_ms, 5000, "keys in neither keep the default");
}

Test(coord_config, file_errors_have_line_numbers)
{
    coord_config c;
    coord_config_defaults(&c);
    fn_errbuf eb = {{0}};
    write_file("topology = /t\n\nmax-window = 0\n");
    cr_assert_eq(coord_config_load_file(&c, path, &eb), FN_EPARSE);
    char want[256];
    snprintf(want, sizeof want, "%s:3: max-window: '0' is not a number in 1..1000000", path);
    cr_assert_str_eq(eb.msg, want);

    write_file("topology /t\n");
    cr_assert_eq(coord_config_load_file(&c, path, &eb), FN_EPARSE);
    cr_assert_not_null(strstr(eb.msg, ":1: expected key = value"), "%s", eb.msg);

    write_file("shards = 3\n");
    cr_assert_eq(coord_config_load_file(&c, path, &eb), FN_EPARSE);
    cr_assert_not_null(strstr(eb.msg, ":1: unknown key 'shards'"), "%s", eb.msg);

    write_file("config = /etc/other.conf\n");
    cr_assert_eq(coord_config_load_file(&c, path, &eb), FN_EPARSE);
    cr_assert_not_null(strstr(eb.msg, ":1: 'config' is not allowed"), "%s", eb.msg);

    cr_assert_lt(coord_config_load_file(&c, "/nonexistent/coord.conf", &eb), 0);
    cr_assert_not_null(strstr(eb.msg, "/nonexistent/coord.conf"), "%s", eb.msg);
}

/* slot rules: repeatable, each checked where it stands (its line), also
 * against the rules before it */
Test(coord_config, blend_rules_and_page_settings)
{
    coord_config c;
    coord_config_defaults(&c);
    cr_assert_eq(c.safe_search, PAGE_SAFE_MODERATE);
    cr_assert_eq(c.host_cap, 0);
    cr_assert_eq(c.page_block, 10);
    cr_assert_eq(c.collapse_duplicates, 1);
    fn_errbuf eb = {{0}};
    write_file("topology = /t\nsafe-search = strict\nhost-cap = 2\n"
               "blend-rule = news_top vertical=news position=3 size=2 min-intent=0.5\n"
               "# a comment\nblend-rule = images vertical=image position=6 size=4 min-intent=0.3 min-hits=2\n");
    cr_assert_eq(coord_config_load_file(&c, path, &eb), 0, "%s", eb.msg);
    cr_assert_eq(c.safe_search, PAGE_SAFE_STRICT);
    cr_assert_eq(c.host_cap, 2);
    cr_assert_eq(c.nrules, 2);
    cr_assert_str_eq(c.rules[0].name, "news_top");
    cr_assert_str_eq(c.rules[1].vertical, "image");
    cr_assert_eq(c.rules[1].position, 6);
    cr_assert_eq(c.rules[1].size, 4);
    cr_assert_eq(c.rules[1].min_hits, 2);
    cr_assert_float_eq(c.rules[0].min_intent, 0.5, 1e-12);

    static const struct { const char *file, *want; } bad[] = {
        { "topology = /t\n\nblend-rule = news vertical=news position=3\n", ":3: blend-rule news: missing size=" },
        { "blend-rule = a vertical=news position=3 size=2\nblend-rule = b vertical=image position=4 size=1\n",
          ":2: blend-rule b: places 4..4 overlap rule #1 a's 3..4" },
        { "blend-rule = a vertical=news position=3 size=2\nblend-rule = a vertical=image position=9 size=1\n",
          ":2: blend-rule a: the name is already rule #1's" },
        { "blend-rule = a vertical=news position=3 size=2 min-intent=2\n", ":1: blend-rule a: min-intent '2'" },
        { "safe-search = on\n", ":1: safe-search: 'on' is not off|moderate|strict" },
        { "host-cap = 1001\n", ":1: host-cap: '1001' is not a number in 0..1000" },
        { "page-block = 0\n", ":1: page-block: '0' is not a number in 1..1000" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        coord_config_defaults(&c);
        write_file(bad[i].file);
        cr_assert_eq(coord_config_load_file(&c, path, &eb), FN_EPARSE, "%s", bad[i].file);
        cr_assert_not_null(strstr(eb.msg, bad[i].want), "got '%s', want '%s'", eb.msg, bad[i].want);
    }
}

Test(coord_config, bad_values_rejected)
{
    coord_config c;
    coord_config_defaults(&c);
    fn_errbuf eb = {{0}};
    cr_assert_eq(coord_config_set(&c, "default-deadline-ms", "0", &eb), FN_EINVAL);
    cr_assert_eq(coord_config_set(&c, "default-deadline-ms", "3600001", &eb), FN_EINVAL);
    cr_assert_eq(coord_config_set(&c, "budget-ms", "-1", &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "budget-ms: '-1' is not a number in 0..600000");
    cr_assert_eq(coord_config_set(&c, "budget-ms", "600001", &eb), FN_EINVAL);
    cr_assert_eq(coord_config_set(&c, "max-window", "1000001", &eb), FN_EINVAL);
    cr_assert_eq(coord_config_set(&c, "max-query-bytes", "1048577", &eb), FN_EINVAL);
    cr_assert_eq(coord_config_set(&c, "max-query-bytes", "", &eb), FN_EINVAL);
    cr_assert_eq(coord_config_set(&c, "health-interval-ms", "1s", &eb), FN_EINVAL);
    cr_assert_eq(coord_config_set(&c, "probe-deadline-ms", "0", &eb), FN_EINVAL);
    cr_assert_eq(coord_config_set(&c, "probe-deadline-ms", "60001", &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "probe-deadline-ms: '60001' is not a number in 1..60000");
    cr_assert_eq(coord_config_set(&c, "down-probe-interval-ms", "0", &eb), FN_EINVAL);
    cr_assert_eq(coord_config_set(&c, "breaker-failures", "0", &eb), FN_EINVAL);
    cr_assert_eq(coord_config_set(&c, "breaker-failures", "1001", &eb), FN_EINVAL);
    cr_assert_eq(coord_config_set(&c, "breaker-backoff-ms", "0", &eb), FN_EINVAL);
    cr_assert_eq(coord_config_set(&c, "breaker-max-backoff-ms", "3600001", &eb), FN_EINVAL);
    cr_assert_eq(coord_config_set(&c, "prf-docs", "101", &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "prf-docs: '101' is not a number in 0..100");
    cr_assert_eq(coord_config_set(&c, "prf-terms", "0", &eb), FN_EINVAL);
    cr_assert_eq(coord_config_set(&c, "prf-lambda", "1.5", &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "prf-lambda: '1.5' is not a number in 0..1");
    cr_assert_eq(coord_config_set(&c, "prf-lambda", "nan", &eb), FN_EINVAL);
    cr_assert_eq(coord_config_set(&c, "prf-temperature", "-1", &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "prf-temperature: '-1' is not a number in 0..100");
    cr_assert_eq(coord_config_set(&c, "prf-max-df", "1.01", &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "prf-max-df: '1.01' is not a number in 0..1");
    cr_assert_eq(coord_config_set(&c, "log-level", "loud", &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "log-level: 'loud' is not debug|info|warn|error");
    cr_assert_eq(coord_config_set(&c, "topology", "", &eb), FN_EINVAL);
    cr_assert_eq(coord_config_set(&c, "bogus", "1", &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "unknown key 'bogus'");
    coord_config d;
    coord_config_defaults(&d);
    cr_assert_eq(memcmp(&c, &d, sizeof c), 0, "unchanged after errors");

    char *a1[] = {"funnel-coordinator", "--topology", "/t", "--max-window", NULL};
    cr_assert_eq(coord_config_from_args(&c, 4, a1, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "--max-window needs a value");
    char *a2[] = {"funnel-coordinator", "--topology", "/t", "stray", NULL};
    cr_assert_eq(coord_config_from_args(&c, 4, a2, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "unexpected argument 'stray'");
}

static const char *configs_dir(void)
{
    const char *d = getenv("FUNNEL_CONFIGS");
    cr_assert_not_null(d, "FUNNEL_CONFIGS is not set");
    return d;
}

Test(coord_config, example_coordinator_conf)
{
    char ex[4200];
    snprintf(ex, sizeof ex, "%s/coordinator.conf", configs_dir());
    coord_config c, d;
    coord_config_defaults(&d);
    /* start from other values so that every key must be in the file */
    memset(&c, 0, sizeof c);
    c.log_level = FN_LOG_ERROR;
    fn_errbuf eb = {{0}};
    cr_assert_eq(coord_config_load_file(&c, ex, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(c.topology, "/etc/funnel/topology.conf");
    cr_assert_not_null(strchr(c.listen, ':'));
    cr_assert_eq(c.default_deadline_ms, d.default_deadline_ms);
    cr_assert_eq(c.budget_ms, d.budget_ms);
    cr_assert_eq(c.max_window, d.max_window);
    cr_assert_eq(c.max_query_bytes, d.max_query_bytes);
    cr_assert_eq(c.max_query_words, d.max_query_words);
    cr_assert_eq(c.max_explain_hits, d.max_explain_hits);
    cr_assert_eq(c.max_reply_bytes, d.max_reply_bytes);
    cr_assert_eq(c.health_interval_ms, d.health_interval_ms);
    cr_assert_eq(c.probe_deadline_ms, d.probe_deadline_ms);
    cr_assert_eq(c.down_probe_interval_ms, d.down_probe_interval_ms);
    cr_assert_eq(c.breaker_failures, d.breaker_failures);
    cr_assert_eq(c.breaker_backoff_ms, d.breaker_backoff_ms);
    cr_assert_eq(c.breaker_max_backoff_ms, d.breaker_max_backoff_ms);
    cr_assert_eq(c.log_level, d.log_level);
    /* the funnel's windows and the impression log's rotation */
    cr_assert_eq(c.selection_k, d.selection_k);
    cr_assert_eq(c.stage1_k, d.stage1_k);
    cr_assert_eq(c.stage2_k, d.stage2_k);
    cr_assert_float_eq(c.overprovision, d.overprovision, 1e-12, "overprovision %g", c.overprovision);
    cr_assert_eq(c.impressions_max_bytes, d.impressions_max_bytes);
    cr_assert_eq(c.impressions_keep, d.impressions_keep);
    /* pseudo-relevance feedback */
    cr_assert_eq(c.prf_docs, d.prf_docs);
    cr_assert_eq(c.prf_terms, d.prf_terms);
    cr_assert_float_eq(c.prf_lambda, d.prf_lambda, 1e-12, "prf-lambda %g", c.prf_lambda);
    cr_assert_float_eq(c.prf_temperature, d.prf_temperature, 1e-12, "prf-temperature %g", c.prf_temperature);
    cr_assert_float_eq(c.prf_max_df, d.prf_max_df, 1e-12, "prf-max-df %g", c.prf_max_df);
    /* the safe defaults: no stage-2 model, no impression log (the example
     * only shows those keys, commented) */
    cr_assert_str_eq(c.stage2_model, "");
    cr_assert_str_eq(c.impressions_log, "");
    /* the result page */
    cr_assert_eq(c.safe_search, d.safe_search);
    cr_assert_eq(c.demote_by, d.demote_by);
    cr_assert_eq(c.host_cap, d.host_cap);
    cr_assert_eq(c.page_block, d.page_block);
    cr_assert_eq(c.collapse_duplicates, d.collapse_duplicates);
    cr_assert_eq(c.nrules, 0);
}

Test(coord_config, example_topology_conf)
{
    char ex[4200];
    snprintf(ex, sizeof ex, "%s/topology.conf", configs_dir());
    coord_topology t;
    fn_errbuf eb = {{0}};
    cr_assert_eq(coord_topology_load(ex, &t, &eb), 0, "%s", eb.msg);
    cr_assert_eq(t.nshards, 3);
    uint32_t replicated = 0;
    for (uint32_t s = 0; s < t.nshards; s++)
        if (t.shards[s].nreplicas == 2) replicated++;
    cr_assert_eq(replicated, 1, "one shard with two replicas");
    coord_topology_free(&t);
}
