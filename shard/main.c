/* funnel-shard: serve one shard directory over gRPC (see docs/rpc.md).
 *
 * Exit status: 0 after a graceful stop (SIGTERM/SIGINT), 1 when startup
 * fails (index, address), 2 for usage errors. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "fn_arena.h"
#include "fn_metrics.h"
#include "fn_log.h"
#include "fn_version.h"
#include "rpc_client.h"
#include "rpc_security.h"
#include "shard.h"
#include "shard_config.h"

typedef struct app {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    shard_t *shard;
    uint64_t requests, errors;
    int stopping;
} app;

/* Write "HOST:PORT\n" to path via a temporary file + rename, so a reader
 * never sees a partial address. */
static int write_addr_file(const char *path, const char *host, int port, fn_errbuf *eb)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)uv_os_getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return fn_seterr(eb, -errno, "%s: %s", tmp, strerror(errno));
    int bad = fprintf(f, "%s:%d\n", host, port) < 0;
    bad |= fflush(f) != 0;
    bad |= fclose(f) != 0;
    if (bad) {
        int rc = -errno;
        remove(tmp);
        return fn_seterr(eb, rc ? rc : -EIO, "%s: write failed", tmp);
    }
    if (rename(tmp, path) != 0) {
        int rc = -errno;
        remove(tmp);
        return fn_seterr(eb, rc, "rename %s -> %s: %s", tmp, path, strerror(-rc));
    }
    return 0;
}

/* The host to advertise: the listen host, or loopback for a wildcard. */
static void advertised_host(const char *listen, char *out, size_t cap)
{
    const char *colon = strrchr(listen, ':');
    size_t n = colon ? (size_t)(colon - listen) : 0;
    if (n == 0 || (n == 7 && strncmp(listen, "0.0.0.0", 7) == 0) ||
        (n == 4 && strncmp(listen, "[::]", 4) == 0) || n >= cap) {
        snprintf(out, cap, "127.0.0.1");
        return;
    }
    memcpy(out, listen, n);
    out[n] = '\0';
}

/* TLS, the admin token and the request size limit, process-wide in the rpc
 * layer (rpc_security.h), before the server starts. */
static int setup_security(const shard_config *cfg, fn_errbuf *eb)
{
    int tls = cfg->tls_cert[0] != '\0';
    int require = cfg->tls_require_client_cert < 0 ? tls : cfg->tls_require_client_cert;
    if (require && !tls)
        return fn_seterr(eb, FN_EINVAL, "tls-require-client-cert needs tls-cert and tls-key");
    if (require && !cfg->tls_ca[0])
        return fn_seterr(eb, FN_EINVAL, "TLS requires client certificates by default: give tls-ca "
                         "(the CA of the coordinator's certificate) or tls-require-client-cert = 0");
    int rc = rpc_tls_configure(cfg->tls_ca, cfg->tls_cert, cfg->tls_key, require, eb);
    if (rc == 0) rc = rpc_admin_token_load(cfg->admin_token_file, eb);
    if (rc) return rc;
    rpc_server_default_max_message((size_t)cfg->max_message_bytes);
    if (!rpc_addr_is_loopback(cfg->listen) && !tls)
        FN_WARN("listening on %s without TLS: anyone who can reach it can query this shard "
                "(set tls-cert, tls-key and tls-ca; docs/operations.md)", cfg->listen);
    if (tls)
        FN_INFO("TLS on%s; admin token %s", require ? ", client certificates required" : "",
                rpc_admin_token_enabled() ? "required" : "not set");
    return 0;
}

static void on_handle_closed(uv_handle_t *h) { (void)h; }

static void on_shard_stopped(void *ud)
{
    app *a = ud;
    a->shard = NULL;
    uv_close((uv_handle_t *)&a->sigterm, on_handle_closed);
    uv_close((uv_handle_t *)&a->sigint, on_handle_closed);
}

static void on_signal(uv_signal_t *h, int sig)
{
    app *a = h->data;
    if (a->stopping) return;
    a->stopping = 1;
    a->requests = shard_requests(a->shard);
    a->errors = shard_errors(a->shard);
    FN_INFO("%s: stopping (NOT_SERVING, finishing in-flight calls)", strsignal(sig));
    shard_stop(a->shard, on_shard_stopped, a);
}

int main(int argc, char **argv)
{
    /* before the flags and the config file: --version always answers */
    if (fn_version_requested(argc, argv)) {
        fn_version_print(stdout, "funnel-shard");
        return 0;
    }
    shard_config cfg;
    fn_errbuf eb = {{0}};
    int rc = shard_config_from_args(&cfg, argc, argv, &eb);
    if (rc != 0) {
        fprintf(stderr, "funnel-shard: %s\n%s", fn_errmsg(&eb, rc), shard_config_usage());
        return 2;
    }
    if (cfg.help) {
        fputs(shard_config_usage(), stdout);
        return 0;
    }
    fn_log_init("shard", (enum fn_log_level)cfg.log_level);
    /* large per-request buffers go back to the system when freed (fn_arena.h) */
    fn_mem_server_tune();

    /* libuv reads this once, at the first uv_queue_work: one pool thread per
     * searcher. */
    char nthreads[16];
    snprintf(nthreads, sizeof nthreads, "%u", cfg.threads);
    setenv("UV_THREADPOOL_SIZE", nthreads, 1);

    if ((rc = setup_security(&cfg, &eb)) != 0) {
        FN_ERROR("cannot start: %s", fn_errmsg(&eb, rc));
        return 1;
    }

    /* metrics: a registry only when an endpoint serves it (NULL = off) */
    fn_metrics *metrics = NULL;
    if (cfg.metrics_listen[0]) {
        int mport = 0;
        char mhost[256];
        if (!(metrics = fn_metrics_new())) {
            FN_ERROR("cannot start: out of memory");
            return 1;
        }
        advertised_host(cfg.metrics_listen, mhost, sizeof mhost);
        rc = fn_metrics_serve(metrics, cfg.metrics_listen, &mport, &eb);
        if (rc == 0 && cfg.metrics_file[0])
            rc = write_addr_file(cfg.metrics_file, mhost, mport, &eb);
        if (rc != 0) {
            FN_ERROR("cannot start: metrics endpoint: %s", fn_errmsg(&eb, rc));
            fn_metrics_free(metrics);
            return 1;
        }
        FN_INFO("metrics on http://%s:%d/metrics", mhost, mport);
        cfg.metrics = metrics;
    }

    app a;
    memset(&a, 0, sizeof a);
    rpc_init();
    uv_loop_init(&a.loop);
    int exit_code = 0;
    if ((rc = shard_start(&a.loop, &cfg, &a.shard, &eb)) != 0) {
        FN_ERROR("cannot start: %s", fn_errmsg(&eb, rc));
        exit_code = 1;
        goto out_loop;
    }
    uv_signal_init(&a.loop, &a.sigterm);
    uv_signal_init(&a.loop, &a.sigint);
    a.sigterm.data = a.sigint.data = &a;
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_signal_start(&a.sigint, on_signal, SIGINT);

    char host[256], addr[300];
    advertised_host(cfg.listen, host, sizeof host);
    snprintf(addr, sizeof addr, "%s:%d", host, shard_port(a.shard));
    const idx_index_info *info = shard_info(a.shard);
    FN_INFO("serving shard %u/%u index=%s docs=%llu (of %llu) address=%s threads=%u max-k=%u",
            info->shard, info->shards, cfg.index_dir, (unsigned long long)info->docs,
            (unsigned long long)info->docs_total, addr, cfg.threads, (unsigned)cfg.max_k);
    if (cfg.addr_file[0] &&
        (rc = write_addr_file(cfg.addr_file, host, shard_port(a.shard), &eb)) != 0) {
        FN_ERROR("cannot write the address file: %s", fn_errmsg(&eb, rc));
        exit_code = 1;
        a.stopping = 1;
        shard_stop(a.shard, on_shard_stopped, &a);
    }

    uv_run(&a.loop, UV_RUN_DEFAULT);
    if (exit_code == 0)
        FN_INFO("stopped after %llu requests (%llu errors)", (unsigned long long)a.requests,
                (unsigned long long)a.errors);
out_loop:
    if ((rc = uv_loop_close(&a.loop)) != 0) FN_WARN("uv_loop_close: %s", uv_strerror(rc));
    rpc_shutdown();
    fn_metrics_free(metrics);   /* after the shard: it updates series until it stops */
    return exit_code;
}
