/* test_ops_util.c - ops/ops_util.c: daemon lookup, queries.tsv, small files. */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops.h"
#include "testutil.h"

static char tmp[PATH_MAX];

static void setup(void)
{
    tu_mkdtemp(tmp, sizeof tmp, "/tmp/test_ops_util.XXXXXX");
}

static void teardown(void)
{
    cr_assert_eq(tu_rmtree(tmp), 0);
}

static void write_file(const char *rel, const char *content, mode_t mode)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    tu_write_file(p, content);
    chmod(p, mode);
}

static void mk(const char *rel)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    cr_assert_eq(mkdir(p, 0755), 0);
}

TestSuite(ops_util, .init = setup, .fini = teardown);

Test(ops_util, find_daemon_prefers_env_then_build_tree_then_same_dir)
{
    mk("ops");
    mk("shard");
    write_file("shard/funnel-shard", "#!/bin/sh\n", 0755);
    write_file("ops/funnel-shard", "#!/bin/sh\n", 0755);
    char self[PATH_MAX + 8], out[PATH_MAX], want[PATH_MAX + 64];
    snprintf(self, sizeof self, "%s/ops", tmp);
    unsetenv("TEST_SHARD_BIN");

    cr_assert_eq(ops_find_daemon(self, "shard", "funnel-shard", "TEST_SHARD_BIN", out, sizeof out, NULL), 0);
    snprintf(want, sizeof want, "%s/ops/../shard/funnel-shard", tmp);
    cr_assert_str_eq(out, want);

    /* build-tree copy gone: the one next to funnel */
    snprintf(want, sizeof want, "%s/shard/funnel-shard", tmp);
    unlink(want);
    cr_assert_eq(ops_find_daemon(self, "shard", "funnel-shard", "TEST_SHARD_BIN", out, sizeof out, NULL), 0);
    snprintf(want, sizeof want, "%s/ops/funnel-shard", tmp);
    cr_assert_str_eq(out, want);

    setenv("TEST_SHARD_BIN", "/opt/x/funnel-shard", 1);
    cr_assert_eq(ops_find_daemon(self, "shard", "funnel-shard", "TEST_SHARD_BIN", out, sizeof out, NULL), 0);
    cr_assert_str_eq(out, "/opt/x/funnel-shard");
    unsetenv("TEST_SHARD_BIN");
}

Test(ops_util, find_daemon_skips_non_executables_and_uses_path)
{
    mk("bin");
    mk("ops");
    write_file("ops/funnel-coordinator", "not executable", 0644);
    write_file("bin/funnel-coordinator", "#!/bin/sh\n", 0755);
    char self[PATH_MAX + 8], path[PATH_MAX + 32], out[PATH_MAX], want[PATH_MAX + 64];
    snprintf(self, sizeof self, "%s/ops", tmp);
    snprintf(path, sizeof path, "/nonexistent:%s/bin", tmp);
    char *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    setenv("PATH", path, 1);
    int rc = ops_find_daemon(self, "coordinator", "funnel-coordinator", NULL, out, sizeof out, NULL);
    snprintf(want, sizeof want, "%s/bin/funnel-coordinator", tmp);
    setenv("PATH", "/nonexistent", 1);
    fn_errbuf eb = {{0}};
    int rc2 = ops_find_daemon(self, "coordinator", "funnel-coordinator", NULL, out + 0, sizeof out, &eb);
    if (old) setenv("PATH", old, 1);
    free(old);
    cr_assert_eq(rc, 0);
    cr_assert_eq(rc2, FN_ENOTFOUND);
    cr_assert(strstr(eb.msg, "funnel-coordinator") != NULL, "%s", eb.msg);
    (void)want;
}

Test(ops_util, words_split)
{
    char **w;
    size_t n;
    cr_assert_eq(ops_words_split("  valgrind\t--leak-check=full  -q ", &w, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(w[0], "valgrind");
    cr_assert_str_eq(w[1], "--leak-check=full");
    cr_assert_str_eq(w[2], "-q");
    cr_assert_null(w[3]);
    ops_words_free(w);
    cr_assert_eq(ops_words_split(NULL, &w, &n), 0);
    cr_assert_eq(n, 0);
    cr_assert_null(w[0]);
    ops_words_free(w);
}

Test(ops_util, queries_load_keeps_order_and_ignores_vector_column)
{
    write_file("q.tsv", "1\tfirst query\n\n10\tsecond\t0.1 0.2\r\n2\tthird one\n", 0644);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/q.tsv", tmp);
    ops_query *q;
    size_t n;
    cr_assert_eq(ops_queries_load(p, &q, &n, NULL), 0);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(q[0].qid, "1");
    cr_assert_str_eq(q[0].text, "first query");
    cr_assert_str_eq(q[1].qid, "10");
    cr_assert_str_eq(q[1].text, "second");
    cr_assert_str_eq(q[2].text, "third one");
    ops_queries_free(q, n);
}

Test(ops_util, queries_load_reports_file_and_line)
{
    write_file("bad.tsv", "1\tok\n2 no tab here\n", 0644);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/bad.tsv", tmp);
    ops_query *q = NULL;
    size_t n = 0;
    fn_errbuf eb = {{0}};
    cr_assert_eq(ops_queries_load(p, &q, &n, &eb), FN_EPARSE);
    char want[PATH_MAX + 32];
    snprintf(want, sizeof want, "%s:2:", p);
    cr_assert(strstr(eb.msg, want) == eb.msg, "%s", eb.msg);

    write_file("empty.tsv", "1\t  \n", 0644);
    snprintf(p, sizeof p, "%s/empty.tsv", tmp);
    cr_assert_eq(ops_queries_load(p, &q, &n, &eb), FN_EPARSE);
    cr_assert(strstr(eb.msg, ":1: empty text") != NULL, "%s", eb.msg);
    cr_assert(ops_queries_load("/nonexistent/q.tsv", &q, &n, &eb) < 0);
}

Test(ops_util, small_files_round_trip)
{
    char p[PATH_MAX + 16], buf[64];
    snprintf(p, sizeof p, "%s/a.addr", tmp);
    cr_assert_eq(ops_write_atomic(p, "127.0.0.1:4242\n"), 0);
    cr_assert_eq(ops_read_small(p, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "127.0.0.1:4242");
    char small[8];
    cr_assert_eq(ops_read_small(p, small, sizeof small), FN_ELIMIT);
    cr_assert_eq(ops_read_small("/nonexistent/x", buf, sizeof buf), -ENOENT);
}

Test(ops_util, addr_valid)
{
    cr_assert(ops_addr_valid("127.0.0.1:4242"));
    cr_assert(ops_addr_valid("[::1]:80"));
    cr_assert(!ops_addr_valid("127.0.0.1:"));
    cr_assert(!ops_addr_valid("127.0.0.1:0"));
    cr_assert(!ops_addr_valid("127.0.0.1:70000"));
    cr_assert(!ops_addr_valid(":80"));
    cr_assert(!ops_addr_valid("localhost"));
    cr_assert(!ops_addr_valid(NULL));
}
