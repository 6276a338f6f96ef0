/* main.c - funnel-coordinator: flags, topology, signals; the service is coord.c. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "coord.h"
#include "fn_error.h"
#include "fn_log.h"
#include "rpc_client.h"

static void usage(FILE *f)
{
    fprintf(f,
"usage: funnel-coordinator --topology FILE [options]\n"
"Serves funnel.v1.Search/Search, Admin/Status and grpc.health.v1.Health/Check;\n"
"fans each search out to one replica of every shard and merges the results.\n"
"\n"
"  --topology FILE          shard map (required); lines 'shard N ADDR [ADDR...]', '#' comments\n"
"  --listen ADDR            listen address (default 127.0.0.1:0 = any free port)\n"
"  --addr-file PATH         write \"127.0.0.1:PORT\\n\" there (atomically) once listening\n"
"  --default-deadline-ms N  deadline when the client sent none (default 5000)\n"
"  --budget-ms N            time kept for the coordinator's own work: shard calls end\n"
"                           max(N, 10%% of the time left) before the client's deadline (default 20)\n"
"  --max-window N           largest (page+1)*k a request may ask for (default 10000)\n"
"  --max-query-bytes N      longest query in bytes (default 4096)\n"
"  --health-interval-ms N   probe every shard replica this often; 0 = never (default 1000)\n"
"  --log-level LEVEL        debug|info|warn|error (default info)\n"
"  --help                   this text\n");
}

static int parse_i64(const char *flag, const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "funnel-coordinator: %s: '%s' is not a number in %" PRId64 "..%" PRId64 "\n",
                flag, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int write_addr_file(const char *path, int port)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) return -ENAMETOOLONG;
    FILE *f = fopen(tmp, "w");
    if (!f) return -errno;
    int bad = fprintf(f, "127.0.0.1:%d\n", port) < 0;
    bad |= fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        int e = errno ? errno : EIO;
        unlink(tmp);
        return -e;
    }
    return 0;
}

typedef struct app {
    uv_signal_t sigterm, sigint;
    coord_t *coord;
    int stopping;
} app;

static void on_coord_stopped(void *ud)
{
    app *a = ud;
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    FN_INFO("stopped");
}

static void on_signal(uv_signal_t *h, int signum)
{
    app *a = h->data;
    if (a->stopping) return;
    a->stopping = 1;
    FN_INFO("signal %d: stopping", signum);
    coord_stop(a->coord, on_coord_stopped, a);
}

int main(int argc, char **argv)
{
    enum { O_TOPO = 1, O_LISTEN, O_ADDRF, O_DDL, O_BUDGET, O_WIN, O_QB, O_HEALTH, O_LOG, O_HELP };
    static const struct option opts[] = {
        { "topology", required_argument, NULL, O_TOPO },
        { "listen", required_argument, NULL, O_LISTEN },
        { "addr-file", required_argument, NULL, O_ADDRF },
        { "default-deadline-ms", required_argument, NULL, O_DDL },
        { "budget-ms", required_argument, NULL, O_BUDGET },
        { "max-window", required_argument, NULL, O_WIN },
        { "max-query-bytes", required_argument, NULL, O_QB },
        { "health-interval-ms", required_argument, NULL, O_HEALTH },
        { "log-level", required_argument, NULL, O_LOG },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    const char *topo_path = NULL, *listen = "127.0.0.1:0", *addr_file = NULL;
    int64_t ddl = 5000, budget = 20, win = 10000, qb = 4096, health = 1000;
    int level = FN_LOG_INFO;
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case O_TOPO: topo_path = optarg; break;
        case O_LISTEN: listen = optarg; break;
        case O_ADDRF: addr_file = optarg; break;
        case O_DDL: if (parse_i64("--default-deadline-ms", optarg, 1, 3600000, &ddl)) return 2; break;
        case O_BUDGET: if (parse_i64("--budget-ms", optarg, 0, 600000, &budget)) return 2; break;
        case O_WIN: if (parse_i64("--max-window", optarg, 1, 1000000, &win)) return 2; break;
        case O_QB: if (parse_i64("--max-query-bytes", optarg, 1, 1 << 20, &qb)) return 2; break;
        case O_HEALTH: if (parse_i64("--health-interval-ms", optarg, 0, 3600000, &health)) return 2; break;
        case O_LOG:
            level = fn_log_level_parse(optarg);
            if (level < 0) {
                fprintf(stderr, "funnel-coordinator: --log-level: '%s' is not debug|info|warn|error\n", optarg);
                return 2;
            }
            break;
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "funnel-coordinator: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!topo_path) {
        fprintf(stderr, "funnel-coordinator: --topology FILE is required\n");
        usage(stderr);
        return 2;
    }
    fn_log_init("coordinator", (enum fn_log_level)level);

    int rc = 1;
    fn_errbuf eb = {{0}};
    coord_topology topo;
    if (coord_topology_load(topo_path, &topo, &eb) != 0) {
        FN_ERROR("topology: %s", eb.msg);
        return 1;
    }
    rpc_init();
    uv_loop_t loop;
    int e = uv_loop_init(&loop);
    if (e) {
        FN_ERROR("uv_loop_init: %s", uv_strerror(e));
        goto fail_loop;
    }
    app a;
    memset(&a, 0, sizeof a);
    coord_opts co = {
        .topo = &topo, .listen = listen, .default_deadline_ms = ddl, .budget_ms = budget,
        .limits = { .max_window = (uint32_t)win, .max_query_bytes = (size_t)qb },
        .health_interval_ms = health,
    };
    if (coord_start(&loop, &co, &a.coord, &eb) != 0) {
        FN_ERROR("cannot start: %s", eb.msg);
        goto fail_start;
    }
    int port = coord_port(a.coord);
    uv_signal_init(&loop, &a.sigterm);
    uv_signal_init(&loop, &a.sigint);
    a.sigterm.data = a.sigint.data = &a;
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    if (addr_file) {
        e = write_addr_file(addr_file, port);
        if (e) {
            FN_ERROR("--addr-file %s: %s", addr_file, strerror(-e));
            a.stopping = 1;
            coord_stop(a.coord, on_coord_stopped, &a);
        }
    }
    if (!a.stopping) {
        FN_INFO("listening on port %d; %u shards, %zu-byte queries, window %u, budget %" PRId64 " ms",
                port, topo.nshards, co.limits.max_query_bytes, co.limits.max_window, budget);
        rc = 0;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
fail_start:
    e = uv_loop_close(&loop);
    if (e) FN_WARN("uv_loop_close: %s", uv_strerror(e));
fail_loop:
    rpc_shutdown();
    coord_topology_free(&topo);
    return rc;
}
