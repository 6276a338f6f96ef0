/* test_main.c - the funnel-shard binary as a process: flags, the address
 * file, serving, SIGTERM -> graceful exit 0, startup failures. The binary's
 * path comes from $FUNNEL_SHARD (set by tests/shard/meson.build). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "builder.h"
#include "funnel.pb-c.h"
#include "rpc_client.h"

static char tmpdir[256];
static char shard_dir[400], addr_file[400], log_file[400];

static const char *bin(void)
{
    const char *b = getenv("FUNNEL_SHARD");
    cr_assert_not_null(b, "FUNNEL_SHARD is not set");
    return b;
}

static void setup(void)
{
    rpc_init();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/funnel-test-shardmain-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    char in[300], out[300];
    snprintf(in, sizeof in, "%s/corpus.jsonl", tmpdir);
    snprintf(out, sizeof out, "%s/idx", tmpdir);
    FILE *f = fopen(in, "w");
    fprintf(f, "{\"id\":\"a\",\"title\":\"wing\",\"body\":\"a wing in a slipstream\"}\n"
               "{\"id\":\"b\",\"title\":\"plate\",\"body\":\"flow over a flat plate\"}\n"
               "{\"id\":\"c\",\"title\":\"nozzle\",\"body\":\"nozzle flow and a wing\"}\n");
    fclose(f);
    idx_build_opts o;
    memset(&o, 0, sizeof o);
    o.input = in;
    o.out_dir = out;
    o.shards = 2;
    fn_errbuf eb = {{0}};
    int rc = idx_build(&o, NULL, &eb);
    cr_assert_eq(rc, 0, "idx_build: %s", fn_errmsg(&eb, rc));
    snprintf(shard_dir, sizeof shard_dir, "%s/shard-001", out);
    snprintf(addr_file, sizeof addr_file, "%s/shard.addr", tmpdir);
    snprintf(log_file, sizeof log_file, "%s/shard.log", tmpdir);
}

static void teardown(void)
{
    rpc_shutdown();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
}

TestSuite(shard_main, .init = setup, .fini = teardown, .timeout = 60);

/* Run the binary with stdout+stderr into log_file. */
static pid_t spawn(char *const argv[])
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(log_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid, int timeout_ms)
{
    struct timespec d = {0, 10 * 1000 * 1000};
    for (int i = 0; i < timeout_ms / 10; i++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        nanosleep(&d, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static int read_addr(char *buf, size_t cap, int timeout_ms)
{
    struct timespec d = {0, 10 * 1000 * 1000};
    for (int i = 0; i < timeout_ms / 10; i++) {
        FILE *f = fopen(addr_file, "r");
        if (f) {
            int ok = fgets(buf, (int)cap, f) != NULL;
            fclose(f);
            if (ok) return 0;
        }
        nanosleep(&d, NULL);
    }
    return -1;
}

static char *slurp(const char *p)
{
    static char buf[16384];
    FILE *f = fopen(p, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = '\0';
    return buf;
}

Test(shard_main, serves_then_stops_on_sigterm)
{
    char *argv[] = {(char *)bin(), "--index", shard_dir, "--addr-file", addr_file,
                    "--threads", "2", "--max-k", "50", NULL};
    pid_t pid = spawn(argv);
    char addr[128];
    cr_assert_eq(read_addr(addr, sizeof addr, 10000), 0, "no address file; log:\n%s",
                 slurp(log_file));
    size_t n = strlen(addr);
    cr_assert(n > 0 && addr[n - 1] == '\n', "address ends with a newline");
    addr[n - 1] = '\0';
    cr_assert(strncmp(addr, "127.0.0.1:", 10) == 0, "%s", addr);
    cr_assert_gt(atoi(addr + 10), 0);
    struct stat sb;
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", addr_file, (int)pid);
    cr_assert_neq(stat(tmp, &sb), 0, "temporary file renamed away");

    rpc_client_t *c = rpc_client_create(addr);
    cr_assert_eq(rpc_health_check(c, 5000), 1);
    Funnel__V1__ShardSearchRequest req = FUNNEL__V1__SHARD_SEARCH_REQUEST__INIT;
    req.query = "wing";
    req.k = 10;
    ProtobufCMessage *resp;
    rpc_status st;
    cr_assert_eq(rpc_client_call(c, RPC_METHOD_SHARD_SEARCH, &req.base,
                                 &funnel__v1__shard_search_response__descriptor, 5000, &resp,
                                 &st), GRPC_STATUS_OK, "%s", st.message);
    Funnel__V1__ShardSearchResponse *r = (Funnel__V1__ShardSearchResponse *)resp;
    cr_assert_eq(r->shard, 1);
    cr_assert_eq(r->shards, 2);
    cr_assert_eq(r->docs_total, 3);
    cr_assert_leq(r->n_hits, r->docs);
    protobuf_c_message_free_unpacked(resp, NULL);
    req.k = 51;   /* over --max-k */
    cr_assert_eq(rpc_client_call(c, RPC_METHOD_SHARD_SEARCH, &req.base,
                                 &funnel__v1__shard_search_response__descriptor, 5000, &resp,
                                 &st), GRPC_STATUS_INVALID_ARGUMENT);
    rpc_client_destroy(c);

    cr_assert_eq(kill(pid, SIGTERM), 0);
    cr_assert_eq(wait_exit(pid, 10000), 0, "log:\n%s", slurp(log_file));
    const char *log = slurp(log_file);
    cr_assert(strstr(log, "serving shard 1/2") != NULL, "start line; log:\n%s", log);
    cr_assert(strstr(log, addr) != NULL, "start line names the address; log:\n%s", log);
    cr_assert(strstr(log, "stopped after 2 requests (1 errors)") != NULL, "log:\n%s", log);
}

Test(shard_main, usage_and_startup_errors)
{
    char *help[] = {(char *)bin(), "--help", NULL};
    cr_assert_eq(wait_exit(spawn(help), 10000), 0);
    cr_assert(strstr(slurp(log_file), "--addr-file") != NULL);

    char *noindex[] = {(char *)bin(), "--threads", "2", NULL};
    cr_assert_eq(wait_exit(spawn(noindex), 10000), 2);

    char bad[500];
    snprintf(bad, sizeof bad, "%s/missing", tmpdir);
    char *badindex[] = {(char *)bin(), "--index", bad, "--addr-file", addr_file, NULL};
    cr_assert_eq(wait_exit(spawn(badindex), 10000), 1);
    struct stat sb;
    cr_assert_neq(stat(addr_file, &sb), 0, "no address file on failure");

    char *badaddr[] = {(char *)bin(), "--index", shard_dir, "--listen", "256.1.1.1:1", NULL};
    cr_assert_eq(wait_exit(spawn(badaddr), 10000), 1, "log:\n%s", slurp(log_file));
}
