/* test_ops_cluster.c - ops/ops_cluster.c: the files of a local cluster. */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ops.h"
#include "testutil.h"

static char tmp[PATH_MAX];

static void setup(void)
{
    tu_mkdtemp(tmp, sizeof tmp, "/tmp/test_ops_cluster.XXXXXX");
}

static void teardown(void)
{
    cr_assert_eq(tu_rmtree(tmp), 0);
}

TestSuite(ops_cluster, .init = setup, .fini = teardown);

static void put(const char *rel, const char *content)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    cr_assert_eq(ops_write_atomic(p, content), 0);
}

Test(ops_cluster, index_shards_reads_index_json)
{
    uint32_t n = 0;
    fn_errbuf eb = {{0}};
    cr_assert_eq(ops_index_shards(tmp, &n, &eb), -ENOENT);
    cr_assert(strstr(eb.msg, "index.json") != NULL, "%s", eb.msg);
    put("index.json", "{\"schema\":1,\"shards\":3,\"docs\":1400}\n");
    cr_assert_eq(ops_index_shards(tmp, &n, &eb), 0);
    cr_assert_eq(n, 3);
    put("index.json", "{\"schema\":1,\"shards\":0}\n");
    cr_assert_eq(ops_index_shards(tmp, &n, &eb), FN_EFORMAT);
    put("index.json", "{\"schema\":1,\"shards\":\"3\"}\n");
    cr_assert_eq(ops_index_shards(tmp, &n, &eb), FN_EFORMAT);
    put("index.json", "{oops\n");
    cr_assert_eq(ops_index_shards(tmp, &n, &eb), FN_EFORMAT);
}

Test(ops_cluster, topology_lines)
{
    char p[PATH_MAX + 32], buf[512];
    snprintf(p, sizeof p, "%s/topology.conf", tmp);
    const char *addrs[] = {"127.0.0.1:4001", "127.0.0.1:4002"};
    cr_assert_eq(ops_topology_write(p, addrs, 2), 0);
    cr_assert_eq(ops_read_small(p, buf, sizeof buf), 0);
    char *body = strchr(buf, '\n');              /* after the '#' comment */
    cr_assert(buf[0] == '#');
    cr_assert_str_eq(body + 1, "shard 0 127.0.0.1:4001\nshard 1 127.0.0.1:4002");
}

Test(ops_cluster, pid_alive_checks_zombies_and_marker)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    cr_assert(pid > 0);
    usleep(100000);
    cr_assert(ops_pid_alive(pid, NULL));
    kill(pid, SIGKILL);
    usleep(50000);
    /* a zombie (not reaped yet) is not alive */
    cr_assert_not(ops_pid_alive(pid, NULL));
    waitpid(pid, NULL, 0);
    cr_assert_not(ops_pid_alive(pid, NULL));
    cr_assert_not(ops_pid_alive(0, NULL));
}

Test(ops_cluster, pid_alive_rejects_a_recycled_pid)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    usleep(100000);
    cr_assert(ops_pid_alive(pid, "sleep"));
    cr_assert_not(ops_pid_alive(pid, "/run/shard-0.addr"));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}
