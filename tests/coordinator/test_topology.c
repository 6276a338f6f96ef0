/* test_topology.c - coordinator/topology.c: good files parse, bad ones say
 * which line is wrong. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "topology.h"

static int parse(const char *text, coord_topology *t, fn_errbuf *eb)
{
    return coord_topology_parse(text, strlen(text), "topo", t, eb);
}

Test(topology, good_file_with_comments_and_replicas)
{
    const char *text =
        "# funnel topology\n"
        "\n"
        "shard 1 127.0.0.1:7002        # out of order is fine\n"
        "  shard 0 127.0.0.1:7001\t127.0.0.1:7101   # two replicas\n"
        "shard 2 [::1]:7003\r\n";
    coord_topology t;
    fn_errbuf eb = {{0}};
    cr_assert_eq(parse(text, &t, &eb), 0, "%s", eb.msg);
    cr_assert_eq(t.nshards, 3);
    cr_assert_eq(t.shards[0].nreplicas, 2);
    cr_assert_str_eq(t.shards[0].replicas[0], "127.0.0.1:7001");
    cr_assert_str_eq(t.shards[0].replicas[1], "127.0.0.1:7101");
    cr_assert_eq(t.shards[0].line, 4);
    cr_assert_eq(t.shards[1].nreplicas, 1);
    cr_assert_str_eq(t.shards[1].replicas[0], "127.0.0.1:7002");
    cr_assert_str_eq(t.shards[2].replicas[0], "[::1]:7003");
    coord_topology_free(&t);
    cr_assert_eq(t.nshards, 0);
    coord_topology_free(&t);   /* idempotent */
}

Test(topology, no_trailing_newline)
{
    coord_topology t;
    fn_errbuf eb = {{0}};
    cr_assert_eq(parse("shard 0 localhost:1", &t, &eb), 0, "%s", eb.msg);
    cr_assert_eq(t.nshards, 1);
    cr_assert_str_eq(t.shards[0].replicas[0], "localhost:1");
    coord_topology_free(&t);
}

static void expect_error(const char *text, const char *want)
{
    coord_topology t;
    fn_errbuf eb = {{0}};
    int rc = parse(text, &t, &eb);
    cr_assert_neq(rc, 0, "accepted: %s", text);
    cr_assert_eq(t.nshards, 0);
    cr_assert_null(t.shards);
    cr_assert(strstr(eb.msg, want) != NULL, "message '%s' lacks '%s'", eb.msg, want);
}

Test(topology, errors_name_the_line)
{
    expect_error("shard 0 a:1\nshard 0 b:2\n", "topo:2: shard 0 already declared on line 1");
    expect_error("# c\nshard 0 a:1\nshrad 1 b:2\n", "topo:3: unknown directive 'shrad'");
    expect_error("shard 0\n", "topo:1: shard 0 has no address");
    expect_error("shard 0 a:1 # ok\nshard\n", "topo:2: 'shard' needs a shard number");
    expect_error("\n\nshard x a:1\n", "topo:3: bad shard number 'x'");
    expect_error("shard -1 a:1\n", "topo:1: bad shard number");
    expect_error("shard 0 a:1\nshard 99999 b:1\n", "topo:2:");
    expect_error("shard 0 noport\n", "topo:1: address 'noport' is not HOST:PORT");
    expect_error("shard 0 a:70000\n", "topo:1: address 'a:70000'");
    expect_error("shard 0 a:0\n", "topo:1: address 'a:0': port out of range");
    expect_error("shard 0 a:1x\n", "topo:1: address 'a:1x' has a bad port");
    expect_error("shard 0 a:\n", "topo:1: address 'a:' has no port");
    expect_error("shard 0 ::1:80\n", "topo:1: address '::1:80': IPv6 hosts need [brackets]");
    expect_error("shard 0 a:1 a:1\n", "topo:1: shard 0 lists a:1 twice");
}

Test(topology, shards_must_be_dense)
{
    expect_error("shard 0 a:1\nshard 2 b:1\n", "topo: shard 1 missing (shards must be numbered 0..2)");
    expect_error("shard 1 a:1\n", "shard 0 missing");
    expect_error("", "topo: no shards declared");
    expect_error("# only comments\n\n   \n", "no shards declared");
}

Test(topology, too_many_replicas)
{
    char buf[4096] = "shard 0";
    for (int i = 0; i <= COORD_MAX_REPLICAS; i++) {
        char a[32];
        snprintf(a, sizeof a, " h:%d", 1000 + i);
        strcat(buf, a);
    }
    expect_error(buf, "topo:1: shard 0 has more than 16 replicas");
}

Test(topology, load_from_file)
{
    char path[] = "/tmp/test_topology_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *text = "shard 0 127.0.0.1:7001\nshard 1 127.0.0.1:7002 127.0.0.1:7102\n";
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    coord_topology t;
    fn_errbuf eb = {{0}};
    cr_assert_eq(coord_topology_load(path, &t, &eb), 0, "%s", eb.msg);
    cr_assert_eq(t.nshards, 2);
    cr_assert_eq(t.shards[1].nreplicas, 2);
    coord_topology_free(&t);
    unlink(path);
    cr_assert_neq(coord_topology_load(path, &t, &eb), 0);
    cr_assert(strstr(eb.msg, path) != NULL, "%s", eb.msg);
}
