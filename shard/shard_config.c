/* shard_config.c - see shard_config.h. */
#include "shard_config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fn_config.h"
#include "fn_log.h"
#include "fn_query.h"

void shard_config_defaults(shard_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "%s", SHARD_DEFAULT_LISTEN);
    c->threads = SHARD_DEFAULT_THREADS;
    c->max_k = SHARD_DEFAULT_MAX_K;
    c->max_query_bytes = FN_QUERY_DEFAULT_MAX_BYTES;
    c->max_query_words = FN_QUERY_DEFAULT_MAX_WORDS;
    c->max_query_terms = FN_QUERY_DEFAULT_MAX_TERMS;
    c->max_explain_hits = SHARD_DEFAULT_MAX_EXPLAIN_HITS;
    c->max_reply_bytes = SHARD_DEFAULT_MAX_REPLY_BYTES;
    c->inline_max_k = SHARD_DEFAULT_INLINE_MAX_K;
    c->slow_search_ms = SHARD_DEFAULT_SLOW_SEARCH_MS;
    c->load_rate_mb = SHARD_DEFAULT_LOAD_RATE_MB;
    c->load_cold_rate_mb = SHARD_DEFAULT_LOAD_COLD_RATE_MB;
    c->load_yield_pressure = SHARD_DEFAULT_LOAD_YIELD_PRESSURE;
    c->warm_queries = SHARD_DEFAULT_WARM_QUERIES;
    c->preload = SHARD_DEFAULT_PRELOAD;
    c->tls_require_client_cert = -1;
    c->max_message_bytes = SHARD_DEFAULT_MAX_MESSAGE_BYTES;
    c->log_level = FN_LOG_INFO;
    idx_bm25_defaults(&c->bm25);
    idx_select_defaults(&c->sel);
}

static int set_str(char *dst, size_t cap, const char *key, const char *v, fn_errbuf *eb)
{
    if (strlen(v) >= cap) return fn_seterr(eb, FN_EINVAL, "%s: value too long", key);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

int shard_config_set(shard_config *c, const char *key, const char *v, fn_errbuf *eb)
{
    unsigned long u;
    double d;
    if (fn_config_key_is(key, "index")) {
        if (!*v) return fn_seterr(eb, FN_EINVAL, "index: must not be empty");
        return set_str(c->index_dir, sizeof c->index_dir, key, v, eb);
    }
    if (fn_config_key_is(key, "listen")) {
        if (!strchr(v, ':')) return fn_seterr(eb, FN_EINVAL, "listen: want HOST:PORT, got '%s'", v);
        return set_str(c->listen, sizeof c->listen, key, v, eb);
    }
    if (fn_config_key_is(key, "addr-file")) return set_str(c->addr_file, sizeof c->addr_file, key, v, eb);
    if (fn_config_key_is(key, "config")) return set_str(c->config_file, sizeof c->config_file, key, v, eb);
    if (fn_config_key_is(key, "threads")) {
        if (fn_parse_ulong(v, 1, SHARD_MAX_THREADS, &u))
            return fn_seterr(eb, FN_EINVAL, "threads: want 1..%d, got '%s'", SHARD_MAX_THREADS, v);
        c->threads = (unsigned)u;
        return 0;
    }
    if (fn_config_key_is(key, "max-k")) {
        if (fn_parse_ulong(v, 1, 1000000, &u))
            return fn_seterr(eb, FN_EINVAL, "max-k: want 1..1000000, got '%s'", v);
        c->max_k = (uint32_t)u;
        return 0;
    }
    static const struct { const char *key; unsigned long lo, hi; size_t off; } caps[] = {
        { "max-query-bytes", 1, 1u << 20, offsetof(shard_config, max_query_bytes) },
        { "max-query-words", 1, 100000, offsetof(shard_config, max_query_words) },
        { "max-query-terms", 1, 100000, offsetof(shard_config, max_query_terms) },
        { "max-explain-hits", 1, 1000000, offsetof(shard_config, max_explain_hits) },
        { "inline-max-k", 0, 1000000, offsetof(shard_config, inline_max_k) },
        { "slow-search-ms", 0, 3600000, offsetof(shard_config, slow_search_ms) },
        { "load-rate-mb", 0, 1000000, offsetof(shard_config, load_rate_mb) },
        { "load-cold-rate-mb", 0, 1000000, offsetof(shard_config, load_cold_rate_mb) },
        { "load-yield-pressure", 0, 100, offsetof(shard_config, load_yield_pressure) },
        { "warm-queries", 0, 4096, offsetof(shard_config, warm_queries) },
        { "preload", 0, 1, offsetof(shard_config, preload) },
        { "log-requests", 0, 1, offsetof(shard_config, log_requests) },
    };
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        if (!fn_config_key_is(key, caps[i].key)) continue;
        if (fn_parse_ulong(v, caps[i].lo, caps[i].hi, &u))
            return fn_seterr(eb, FN_EINVAL, "%s: want %lu..%lu, got '%s'", caps[i].key, caps[i].lo,
                             caps[i].hi, v);
        *(uint32_t *)((char *)c + caps[i].off) = (uint32_t)u;
        return 0;
    }
    if (fn_config_key_is(key, "max-reply-bytes")) {
        if (fn_parse_ulong(v, 4096, 1ul << 30, &u))
            return fn_seterr(eb, FN_EINVAL, "max-reply-bytes: want 4096..1073741824, got '%s'", v);
        c->max_reply_bytes = u;
        return 0;
    }
    if (fn_config_key_is(key, "verify-on-open")) {
        if (strcmp(v, "full") && strcmp(v, "quick"))
            return fn_seterr(eb, FN_EINVAL, "verify-on-open: want full|quick, got '%s'", v);
        c->verify_quick = strcmp(v, "quick") == 0;
        return 0;
    }
    if (fn_config_key_is(key, "stage1-model")) return set_str(c->stage1_model, sizeof c->stage1_model, key, v, eb);
    if (fn_config_key_is(key, "model-state")) return set_str(c->model_state, sizeof c->model_state, key, v, eb);
    static const struct { const char *key; size_t off, cap; } strs[] = {
        { "tls-ca", offsetof(shard_config, tls_ca), sizeof c->tls_ca },
        { "tls-cert", offsetof(shard_config, tls_cert), sizeof c->tls_cert },
        { "tls-key", offsetof(shard_config, tls_key), sizeof c->tls_key },
        { "admin-token-file", offsetof(shard_config, admin_token_file), sizeof c->admin_token_file },
        { "metrics-file", offsetof(shard_config, metrics_file), sizeof c->metrics_file },
        { "updates-dir", offsetof(shard_config, updates_dir), sizeof c->updates_dir },
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (fn_config_key_is(key, strs[i].key))
            return set_str((char *)c + strs[i].off, strs[i].cap, key, v, eb);
    if (fn_config_key_is(key, "metrics-listen")) {
        if (*v && !strchr(v, ':'))
            return fn_seterr(eb, FN_EINVAL, "metrics-listen: want HOST:PORT or empty, got '%s'", v);
        return set_str(c->metrics_listen, sizeof c->metrics_listen, key, v, eb);
    }
    if (fn_config_key_is(key, "tls-require-client-cert")) {
        if (fn_parse_ulong(v, 0, 1, &u))
            return fn_seterr(eb, FN_EINVAL, "tls-require-client-cert: want 0|1, got '%s'", v);
        c->tls_require_client_cert = (int)u;
        return 0;
    }
    if (fn_config_key_is(key, "max-message-bytes")) {
        if (fn_parse_ulong(v, 1024, 1ul << 30, &u))
            return fn_seterr(eb, FN_EINVAL, "max-message-bytes: want 1024..1073741824, got '%s'", v);
        c->max_message_bytes = u;
        return 0;
    }
    static const struct { const char *key; double lo, hi; size_t off; } sels[] = {
        { "selection.w_popularity", -1000, 1000, offsetof(shard_config, sel.w_popularity) },
        { "selection.w_freshness", -1000, 1000, offsetof(shard_config, sel.w_freshness) },
        { "selection.half_life_days", 1e-6, 1e6, offsetof(shard_config, sel.half_life_days) },
        { "selection.w_user", -1000, 1000, offsetof(shard_config, sel.w_user) },
    };
    for (size_t i = 0; i < sizeof sels / sizeof sels[0]; i++) {
        if (!fn_config_key_is(key, sels[i].key)) continue;
        if (fn_parse_double(v, sels[i].lo, sels[i].hi, &d) != 0)
            return fn_seterr(eb, FN_EINVAL, "%s: want a number in [%g, %g], got '%s'", sels[i].key,
                             sels[i].lo, sels[i].hi, v);
        *(double *)((char *)c + sels[i].off) = d;
        return 0;
    }
    if (fn_config_key_is(key, "log-level")) {
        int l = fn_log_level_parse(v);
        if (l < 0) return fn_seterr(eb, FN_EINVAL, "log-level: want debug|info|warn|error, got '%s'", v);
        c->log_level = l;
        return 0;
    }
    if (fn_config_key_is(key, "bm25.k1")) {
        if (fn_parse_double(v, 1e-9, 100, &d) != 0)
            return fn_seterr(eb, FN_EINVAL, "bm25.k1: want a number in (0, 100], got '%s'", v);
        c->bm25.k1 = d;
        return 0;
    }
    static const char *const bkeys[2] = {"bm25.b_title", "bm25.b_body"};
    static const char *const wkeys[2] = {"bm25.w_title", "bm25.w_body"};
    for (int f = 0; f < 2; f++) {
        if (fn_config_key_is(key, bkeys[f])) {
            if (fn_parse_double(v, 0, 1, &d) != 0)
                return fn_seterr(eb, FN_EINVAL, "%s: want a number in [0, 1], got '%s'", bkeys[f], v);
            c->bm25.b[f] = d;
            return 0;
        }
        if (fn_config_key_is(key, wkeys[f])) {
            if (fn_parse_double(v, 0, 1000, &d) != 0)
                return fn_seterr(eb, FN_EINVAL, "%s: want a number in [0, 1000], got '%s'", wkeys[f], v);
            c->bm25.w[f] = d;
            return 0;
        }
    }
    return fn_seterr(eb, FN_EINVAL, "unknown key '%s'", key);
}

static int set_cb(void *ud, const char *key, const char *value, fn_errbuf *eb)
{
    return shard_config_set(ud, key, value, eb);
}

/* A file naming another file would only confuse: refuse it. */
static int file_set_cb(void *ud, const char *key, const char *value, fn_errbuf *eb)
{
    if (fn_config_key_is(key, "config"))
        return fn_seterr(eb, FN_EINVAL, "'%s' is not allowed in a config file", key);
    return shard_config_set(ud, key, value, eb);
}

int shard_config_load_file(shard_config *c, const char *path, fn_errbuf *eb)
{
    return fn_config_load_file(path, file_set_cb, c, eb);
}

const char *shard_config_usage(void)
{
    return "usage: funnel-shard --index DIR [options]\n"
           "  --index DIR        shard directory (IDXDIR/shard-NNN), required\n"
           "  --listen ADDR      HOST:PORT to listen on (default 127.0.0.1:0 = any free port)\n"
           "  --addr-file PATH   write \"HOST:PORT\\n\" there (atomically) once listening\n"
           "  --threads N        search worker threads (default 4)\n"
           "  --max-k N          largest k accepted (default 10000)\n"
           "  --max-query-bytes N  longest query text (default 4096)\n"
           "  --max-query-words N  most words in a query's text (default 1024)\n"
           "  --max-query-terms N  most distinct terms after analysis (default 256)\n"
           "  --max-explain-hits N hits that get per-term explain details (default 100)\n"
           "  --max-reply-bytes N  larger replies are refused with RESOURCE_EXHAUSTED (default 32 MiB)\n"
           "  --inline-max-k N   a search selecting at most N (no features, explain or feedback) runs\n"
           "                     on the loop thread, without the hand-offs to a worker (default 100; 0 = never)\n"
           "  --slow-search-ms N a WARN line naming the coordinator's request id for a search slower\n"
           "                     than this (default 1000; 0 = never)\n"
           "  --log-requests 0|1 a JSON line per search: request id, k, hits, status, time (default 0)\n"
           "  --verify-on-open M   full: hash all of data.mdb before serving (default); quick: skip it\n"
           "  --load-rate-mb N   a generation staged while serving (Admin/Generation STAGE) has its\n"
           "                     data.mdb hashed at N MiB/s at most, so that searches keep their caches\n"
           "                     (default 256; 0 = as fast as it goes; the start's check is not paced)\n"
           "  --load-cold-rate-mb N  the same for the pages of it that are not in the page cache and\n"
           "                     must come from the disk, which costs far more CPU beside the searches\n"
           "                     (default 32; 0 = --load-rate-mb)\n"
           "  --load-yield-pressure P  before each 1 MiB of that check, wait while the machine's CPU\n"
           "                     pressure (PSI: the share of time a runnable task waited for a CPU)\n"
           "                     is over P%, at most 3x that MiB's paced time (default 10; 0 = never)\n"
           "  --warm-queries N   the last N live text searches are replayed on a staged generation\n"
           "                     (each searcher at least once, paced) before it is reported staged, so\n"
           "                     the switch to it meets warm pages (default 64; 0 = no warm-up)\n"
           "  --preload 0|1      after the whole-file check (at start, and of a staged generation at\n"
           "                     the same rates), map all of data.mdb into the shard's page tables\n"
           "                     (MADV_POPULATE_READ), so that a kernel that reclaims idle unmapped\n"
           "                     file pages cannot drop what the check read (default 1)\n"
           "  --stage1-model FILE  the stage-1 model (rank/ model file over cheap features; default none)\n"
           "  --model-state DIR  keep the live stage-1 model there: a push is written before it goes\n"
           "                     live, a restart serves the last push, not --stage1-model (default\n"
           "                     none: a restart forgets pushes)\n"
           "  --selection.w_popularity W, --selection.w_freshness W, --selection.half_life_days D,\n"
           "  --selection.w_user W  static signals and personalisation in the selection score (default 0)\n"
           "  --tls-cert PEM, --tls-key PEM  serve TLS with this certificate and key (default: plaintext)\n"
           "  --tls-ca PEM       CA that signs clients' certificates\n"
           "  --tls-require-client-cert B  1: refuse clients without a certificate from --tls-ca\n"
           "                     (default 1 with TLS: mTLS between coordinator and shards)\n"
           "  --admin-token-file F  Admin calls need 'authorization: Bearer <first line of F>'\n"
           "  --max-message-bytes N  largest request message accepted (default 4194304)\n"
           "  --metrics-listen HOST:PORT  serve Prometheus GET /metrics there (default: off)\n"
           "  --metrics-file PATH  write the metrics endpoint's \"HOST:PORT\\n\" there (atomically)\n"
           "  --updates-dir DIR    take live updates (Shard/Update), durable in DIR (an LMDB\n"
           "                       store of this process); none: Update is refused\n"
           "  --config FILE      key=value file with the same keys (flags override it);\n"
           "                     also bm25.k1, bm25.b_title, bm25.b_body, bm25.w_title, bm25.w_body\n"
           "  --log-level L      debug|info|warn|error (default info)\n"
           "  --help             this text\n";
}

int shard_config_from_args(shard_config *c, int argc, char **argv, fn_errbuf *eb)
{
    shard_config_defaults(c);
    int rc = fn_config_from_args(argc, argv, "config", set_cb, c, eb);
    if (rc == FN_CONFIG_HELP) {
        c->help = 1;
        return 0;
    }
    if (rc) return rc;
    if (!c->index_dir[0]) return fn_seterr(eb, FN_EINVAL, "--index DIR is required");
    return 0;
}
