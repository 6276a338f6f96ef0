/* main.c - funnel-coordinator: settings (coord_config.c), topology, signals;
 * the service is coord.c.
 *
 * Exit status: 0 after a graceful stop (SIGTERM/SIGINT), 1 when startup
 * fails (topology, listen address, address file), 2 for usage errors. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "coord.h"
#include "coord_config.h"
#include "fn_error.h"
#include "fn_arena.h"
#include "fn_log.h"
#include "fn_metrics.h"
#include "fn_version.h"
#include "rpc_client.h"
#include "rpc_security.h"

static int write_addr_file_host(const char *path, const char *host, int port);
static int write_addr_file(const char *path, int port)
{
    return write_addr_file_host(path, "127.0.0.1", port);
}

/* The metrics endpoint's host to advertise: its listen host, or loopback
 * for a wildcard. */
static void metrics_host(const char *listen, char *out, size_t cap)
{
    const char *colon = strrchr(listen, ':');
    size_t n = colon ? (size_t)(colon - listen) : 0;
    if (n == 0 || n >= cap || (n == 7 && strncmp(listen, "0.0.0.0", 7) == 0) ||
        (n == 4 && strncmp(listen, "[::]", 4) == 0)) {
        snprintf(out, cap, "127.0.0.1");
        return;
    }
    memcpy(out, listen, n);
    out[n] = '\0';
}

/* Write "HOST:PORT\n" to path through a temporary file and rename, so a
 * reader never sees a partial address. */
static int write_addr_file_host(const char *path, const char *host, int port)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) return -ENAMETOOLONG;
    FILE *f = fopen(tmp, "w");
    if (!f) return -errno;
    int bad = fprintf(f, "%s:%d\n", host, port) < 0;
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

/* TLS (server side and the links to shards), the admin token and the request
 * size limit, process-wide in the rpc layer (rpc_security.h). */
static int setup_security(const coord_config *cfg, fn_errbuf *eb)
{
    int rc = rpc_tls_configure(cfg->tls_ca, cfg->tls_cert, cfg->tls_key,
                               (int)cfg->tls_require_client_cert, eb);
    if (rc == 0) rc = rpc_admin_token_load(cfg->admin_token_file, eb);
    if (rc) return rc;
    rpc_server_default_max_message((size_t)cfg->max_message_bytes);
    int tls = rpc_tls_server_enabled();
    if (!rpc_addr_is_loopback(cfg->listen) && !tls)
        FN_WARN("listening on %s without TLS: anyone who can reach it can query and administer "
                "this cluster (set tls-cert and tls-key; docs/operations.md)", cfg->listen);
    if (tls && !rpc_tls_client_enabled())
        FN_WARN("TLS to clients but plaintext to shards: set tls-ca to verify the shards");
    if (tls || rpc_tls_client_enabled())
        FN_INFO("TLS: clients %s, shards %s; admin token %s", tls ? "on" : "off",
                rpc_tls_client_enabled() ? (cfg->tls_cert[0] ? "on (mTLS)" : "on") : "off",
                rpc_admin_token_enabled() ? "required" : "not set");
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
    /* before the flags and the config file: --version always answers */
    if (fn_version_requested(argc, argv)) {
        fn_version_print(stdout, "funnel-coordinator");
        return 0;
    }
    coord_config cfg;
    fn_errbuf eb = {{0}};
    int rc = coord_config_from_args(&cfg, argc, argv, &eb);
    if (rc != 0) {
        fprintf(stderr, "funnel-coordinator: %s\n%s", fn_errmsg(&eb, rc), coord_config_usage());
        return 2;
    }
    if (cfg.help) {
        fputs(coord_config_usage(), stdout);
        return 0;
    }
    fn_log_init("coordinator", (enum fn_log_level)cfg.log_level);
    /* large per-request buffers go back to the system when freed (fn_arena.h) */
    fn_mem_server_tune();
    const char *topo_path = cfg.topology, *addr_file = cfg.addr_file[0] ? cfg.addr_file : NULL;
    int64_t budget = cfg.budget_ms;

    if ((rc = setup_security(&cfg, &eb)) != 0) {
        FN_ERROR("cannot start: %s", fn_errmsg(&eb, rc));
        return 1;
    }
    rc = 1;
    int e0;
    coord_topology topo;
    if (coord_topology_load(topo_path, &topo, &eb) != 0) {
        FN_ERROR("topology: %s", eb.msg);
        return 1;
    }
    /* metrics: a registry only when an endpoint serves it (NULL = off) */
    fn_metrics *metrics = NULL;
    if (cfg.metrics_listen[0]) {
        int mport = 0;
        char mhost[256];
        metrics_host(cfg.metrics_listen, mhost, sizeof mhost);
        if (!(metrics = fn_metrics_new())) {
            FN_ERROR("cannot start: out of memory");
            coord_topology_free(&topo);
            return 1;
        }
        if ((rc = fn_metrics_serve(metrics, cfg.metrics_listen, &mport, &eb)) != 0) {
            FN_ERROR("cannot start: metrics endpoint: %s", fn_errmsg(&eb, rc));
            fn_metrics_free(metrics);
            coord_topology_free(&topo);
            return 1;
        }
        if (cfg.metrics_file[0] && (e0 = write_addr_file_host(cfg.metrics_file, mhost, mport)) != 0) {
            FN_ERROR("cannot start: --metrics-file %s: %s", cfg.metrics_file, strerror(-e0));
            fn_metrics_free(metrics);
            coord_topology_free(&topo);
            return 1;
        }
        FN_INFO("metrics on http://%s:%d/metrics", mhost, mport);
    }
    rc = 1;
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
        .topo = &topo, .listen = cfg.listen, .default_deadline_ms = cfg.default_deadline_ms,
        .budget_ms = budget,
        .limits = { .max_window = (uint32_t)cfg.max_window, .max_query_bytes = (size_t)cfg.max_query_bytes,
                    .max_query_words = (uint32_t)cfg.max_query_words,
                    .max_explain_hits = (uint32_t)cfg.max_explain_hits,
                    .max_reply_bytes = (uint64_t)cfg.max_reply_bytes },
        .health_interval_ms = cfg.health_interval_ms,
        .probe_deadline_ms = cfg.probe_deadline_ms, .down_probe_interval_ms = cfg.down_probe_interval_ms,
        .breaker_failures = (uint32_t)cfg.breaker_failures, .breaker_backoff_ms = cfg.breaker_backoff_ms,
        .breaker_max_backoff_ms = cfg.breaker_max_backoff_ms,
        .selection_k = (uint32_t)cfg.selection_k, .stage1_k = (uint32_t)cfg.stage1_k,
        .stage2_k = (uint32_t)cfg.stage2_k, .overprovision = cfg.overprovision,
        .stage2_model = cfg.stage2_model, .model_state = cfg.model_state, .experiments = cfg.experiments,
        .spell_dict = cfg.spell_dict, .spell_wordlist = cfg.spell_wordlist, .spell_min_score = cfg.spell_min_score,
        .spell_stemmer = cfg.spell_stemmer,
        .synonyms = cfg.synonyms, .synonym_weight = cfg.synonym_weight,
        .synonym_senses = (unsigned)cfg.synonym_senses, .analyzer = cfg.analyzer,
        .relax_min_hits = (uint32_t)cfg.relax_min_hits, .intent_model = cfg.intent_model,
        .page = { .safe_search = cfg.safe_search, .demote_by = (uint32_t)cfg.demote_by,
                  .host_cap = (uint32_t)cfg.host_cap, .block = (uint32_t)cfg.page_block,
                  .no_collapse = !cfg.collapse_duplicates, .rules = cfg.rules, .nrules = cfg.nrules },
        .impressions_log = cfg.impressions_log, .impressions_max_bytes = (uint64_t)cfg.impressions_max_bytes,
        .impressions_keep = (unsigned)cfg.impressions_keep,
        .metrics = metrics,
        .prf = {(uint32_t)cfg.prf_docs, (uint32_t)cfg.prf_terms, cfg.prf_lambda, cfg.prf_temperature,
                cfg.prf_max_df},
        /* a config's 0 is "off"; coord_opts' 0 is "the default" */
        .hedge_percentile = cfg.hedge_percentile > 0 ? cfg.hedge_percentile : -1,
        .hedge_min_ms = cfg.hedge_min_ms,
        .retry_budget = cfg.retry_budget > 0 ? cfg.retry_budget : -1, .max_inflight = (uint32_t)cfg.max_inflight,
        .min_inflight = (uint32_t)cfg.min_inflight, .target_latency_ms = cfg.target_latency_ms, .shed_grace_ms = cfg.shed_grace_ms, .slow_query_ms = cfg.slow_query_ms,
        .access_log = (int)cfg.access_log,
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
    fn_metrics_free(metrics);   /* after the coordinator: it updates series until it stops */
    coord_topology_free(&topo);
    return rc;
}
