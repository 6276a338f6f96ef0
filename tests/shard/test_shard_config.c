/* test_shard_config.c - defaults, config file, flags overriding the file. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "fn_log.h"
#include "shard_config.h"

static char path[64];

static void write_file(const char *text)
{
    if (path[0]) unlink(path);
    tu_write_temp(path, sizeof path, "/tmp/funnel-shard-cfg-XXXXXX", text);
}

static void cleanup(void)
{
    if (path[0]) unlink(path);
    path[0] = '\0';
}

TestSuite(shard_config, .fini = cleanup);

Test(shard_config, defaults)
{
    shard_config c;
    char *argv[] = {"funnel-shard", "--index", "/x/shard-000", NULL};
    fn_errbuf eb = {{0}};
    cr_assert_eq(shard_config_from_args(&c, 3, argv, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(c.index_dir, "/x/shard-000");
    cr_assert_str_eq(c.listen, "127.0.0.1:0");
    cr_assert_eq(c.threads, 4);
    cr_assert_eq(c.max_k, 10000);
    cr_assert_eq(c.log_level, FN_LOG_INFO);
    cr_assert_str_eq(c.addr_file, "");
    idx_bm25_params d;
    idx_bm25_defaults(&d);
    cr_assert_eq(c.bm25.k1, d.k1);
    cr_assert_eq(c.bm25.b[1], d.b[1]);
}

Test(shard_config, index_is_required_unless_help)
{
    shard_config c;
    fn_errbuf eb = {{0}};
    char *argv[] = {"funnel-shard", "--threads", "2", NULL};
    cr_assert_eq(shard_config_from_args(&c, 3, argv, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "--index") != NULL, "%s", eb.msg);
    char *help[] = {"funnel-shard", "--help", NULL};
    cr_assert_eq(shard_config_from_args(&c, 2, help, &eb), 0);
    cr_assert(c.help);
}

Test(shard_config, file_then_flags_override)
{
    write_file("# shard settings\n"
               "index = /idx/shard-001\n"
               "threads=8\n"
               "max_k = 500   # trailing comment\n"
               "\n"
               "bm25.k1 = 0.9\n"
               "bm25.b_title = 0.3\n"
               "bm25.b_body=0.8\n"
               "bm25.w_title = 3\n"
               "bm25.w_body = 1.5\n"
               "log-level = debug\n");
    shard_config c;
    fn_errbuf eb = {{0}};
    /* --threads before --config on the command line still wins. */
    char *argv[] = {"funnel-shard", "--threads", "2", "--config", path,
                    "--listen=0.0.0.0:7001", NULL};
    cr_assert_eq(shard_config_from_args(&c, 6, argv, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(c.index_dir, "/idx/shard-001");
    cr_assert_eq(c.threads, 2);
    cr_assert_eq(c.max_k, 500);
    cr_assert_str_eq(c.listen, "0.0.0.0:7001");
    cr_assert_float_eq(c.bm25.k1, 0.9, 1e-12);
    cr_assert_float_eq(c.bm25.b[0], 0.3, 1e-12);
    cr_assert_float_eq(c.bm25.b[1], 0.8, 1e-12);
    cr_assert_float_eq(c.bm25.w[0], 3.0, 1e-12);
    cr_assert_float_eq(c.bm25.w[1], 1.5, 1e-12);
    cr_assert_eq(c.log_level, FN_LOG_DEBUG);
}

Test(shard_config, file_errors_have_line_numbers)
{
    write_file("index = /x\n\nthreads = many\n");
    shard_config c;
    shard_config_defaults(&c);
    fn_errbuf eb = {{0}};
    cr_assert_eq(shard_config_load_file(&c, path, &eb), FN_EPARSE);
    char want[128];
    snprintf(want, sizeof want, "%s:3: threads:", path);
    cr_assert(strncmp(eb.msg, want, strlen(want)) == 0, "%s", eb.msg);

    write_file("index /x\n");
    cr_assert_eq(shard_config_load_file(&c, path, &eb), FN_EPARSE);
    cr_assert(strstr(eb.msg, ":1: expected key = value") != NULL, "%s", eb.msg);

    write_file("colour = blue\n");
    cr_assert_eq(shard_config_load_file(&c, path, &eb), FN_EPARSE);
    cr_assert(strstr(eb.msg, "unknown key 'colour'") != NULL, "%s", eb.msg);

    cr_assert_lt(shard_config_load_file(&c, "/nonexistent/cfg", &eb), 0);
}

Test(shard_config, bad_values_rejected)
{
    shard_config c;
    shard_config_defaults(&c);
    fn_errbuf eb = {{0}};
    cr_assert_eq(shard_config_set(&c, "threads", "0", &eb), FN_EINVAL);
    cr_assert_eq(shard_config_set(&c, "threads", "-3", &eb), FN_EINVAL);
    cr_assert_eq(shard_config_set(&c, "threads", "257", &eb), FN_EINVAL);
    cr_assert_eq(shard_config_set(&c, "max-k", "0", &eb), FN_EINVAL);
    cr_assert_eq(shard_config_set(&c, "max-k", "10x", &eb), FN_EINVAL);
    cr_assert_eq(shard_config_set(&c, "bm25.b_body", "1.5", &eb), FN_EINVAL);
    cr_assert_eq(shard_config_set(&c, "bm25.k1", "0", &eb), FN_EINVAL);
    cr_assert_eq(shard_config_set(&c, "bm25.k1", "nan", &eb), FN_EINVAL);
    cr_assert_eq(shard_config_set(&c, "log-level", "loud", &eb), FN_EINVAL);
    cr_assert_eq(shard_config_set(&c, "listen", "7000", &eb), FN_EINVAL);
    cr_assert_eq(shard_config_set(&c, "load-yield-pressure", "101", &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "load-yield-pressure: want 0..100") != NULL, "%s", eb.msg);
    cr_assert_eq(c.threads, 4, "unchanged after errors");
    cr_assert_eq(c.load_yield_pressure, SHARD_DEFAULT_LOAD_YIELD_PRESSURE);

    char *argv[] = {"funnel-shard", "--index", "/x", "--threads", NULL};
    cr_assert_eq(shard_config_from_args(&c, 4, argv, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "needs a value") != NULL, "%s", eb.msg);
    char *argv2[] = {"funnel-shard", "--index", "/x", "--bogus", "1", NULL};
    cr_assert_eq(shard_config_from_args(&c, 5, argv2, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "bogus") != NULL, "%s", eb.msg);
    char *argv3[] = {"funnel-shard", "stray", NULL};
    cr_assert_eq(shard_config_from_args(&c, 2, argv3, &eb), FN_EINVAL);
}

/* Find ops/configs/NAME from the working directory upwards (meson test runs
 * in the source or the build directory, both under the source root). */
static int find_example(const char *name, char *out, size_t cap)
{
    char dir[4096];
    if (!getcwd(dir, sizeof dir)) return -1;
    for (;;) {
        snprintf(out, cap, "%s/ops/configs/%s", dir, name);
        if (access(out, R_OK) == 0) return 0;
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) return -1;
        *slash = '\0';
    }
}

Test(shard_config, example_file_has_every_key_and_the_defaults)
{
    char ex[4200];
    cr_assert_eq(find_example("shard.conf", ex, sizeof ex), 0,
                 "ops/configs/shard.conf not found above the working directory");
    shard_config c, d;
    shard_config_defaults(&c);
    shard_config_defaults(&d);
    /* start from other values so that every key must be in the file */
    c.threads = 99;
    c.max_k = 1;
    c.log_level = FN_LOG_ERROR;
    c.bm25.k1 = c.bm25.b[0] = c.bm25.b[1] = c.bm25.w[0] = c.bm25.w[1] = 0.123;
    c.max_query_bytes = c.max_query_words = c.max_query_terms = c.max_explain_hits = 7;
    c.max_reply_bytes = 7;
    c.verify_quick = 1;
    c.load_yield_pressure = 77;
    c.sel.w_popularity = c.sel.w_freshness = c.sel.half_life_days = c.sel.w_user = 0.123;
    fn_errbuf eb = {{0}};
    cr_assert_eq(shard_config_load_file(&c, ex, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(c.index_dir, "/var/lib/funnel/idx/shard-000");
    cr_assert(strchr(c.listen, ':') != NULL);
    cr_assert_eq(c.threads, d.threads);
    cr_assert_eq(c.max_k, d.max_k);
    cr_assert_eq(c.load_yield_pressure, d.load_yield_pressure);
    cr_assert_eq(c.log_level, d.log_level);
    cr_assert_eq(c.max_query_bytes, d.max_query_bytes);
    cr_assert_eq(c.max_query_words, d.max_query_words);
    cr_assert_eq(c.max_query_terms, d.max_query_terms);
    cr_assert_eq(c.max_explain_hits, d.max_explain_hits);
    cr_assert_eq(c.max_reply_bytes, d.max_reply_bytes);
    cr_assert_eq(c.verify_quick, d.verify_quick);
    /* the example documents idx_bm25_defaults(): keep them in step */
    cr_assert_float_eq(c.bm25.k1, d.bm25.k1, 1e-12, "bm25.k1 %g, default %g", c.bm25.k1, d.bm25.k1);
    for (int f = 0; f < 2; f++) {
        cr_assert_float_eq(c.bm25.b[f], d.bm25.b[f], 1e-12, "bm25.b[%d] %g, default %g", f,
                           c.bm25.b[f], d.bm25.b[f]);
        cr_assert_float_eq(c.bm25.w[f], d.bm25.w[f], 1e-12, "bm25.w[%d] %g, default %g", f,
                           c.bm25.w[f], d.bm25.w[f]);
    }
    /* the selection score's keys, at idx_select_defaults() */
    cr_assert_float_eq(c.sel.w_popularity, d.sel.w_popularity, 1e-12, "selection.w_popularity %g", c.sel.w_popularity);
    cr_assert_float_eq(c.sel.w_freshness, d.sel.w_freshness, 1e-12, "selection.w_freshness %g", c.sel.w_freshness);
    cr_assert_float_eq(c.sel.half_life_days, d.sel.half_life_days, 1e-12, "selection.half_life_days %g",
                       c.sel.half_life_days);
    cr_assert_float_eq(c.sel.w_user, d.sel.w_user, 1e-12, "selection.w_user %g", c.sel.w_user);
    /* the safe default: no stage-1 model (the example only shows the key, commented) */
    cr_assert_str_eq(c.stage1_model, "");
}
