/* shard_config.h - funnel-shard settings: defaults, key=value config file
 * and command-line flags (flags override the file); format: fn_config.h. */
#ifndef FUNNEL_SHARD_CONFIG_H
#define FUNNEL_SHARD_CONFIG_H

#include <stdint.h>

#include "fn_error.h"
#include "search.h"

struct fn_metrics;

#define SHARD_DEFAULT_LISTEN  "127.0.0.1:0"
#define SHARD_DEFAULT_THREADS 4
#define SHARD_DEFAULT_MAX_K   10000
#define SHARD_MAX_THREADS     256
#define SHARD_DEFAULT_MAX_EXPLAIN_HITS 100
#define SHARD_DEFAULT_MAX_REPLY_BYTES  (32u << 20)
#define SHARD_DEFAULT_INLINE_MAX_K     100
#define SHARD_DEFAULT_SLOW_SEARCH_MS   1000
#define SHARD_DEFAULT_LOAD_RATE_MB     256
#define SHARD_DEFAULT_LOAD_COLD_RATE_MB 32
#define SHARD_DEFAULT_LOAD_YIELD_PRESSURE 10
#define SHARD_DEFAULT_WARM_QUERIES     64
#define SHARD_DEFAULT_PRELOAD          1
#define SHARD_DEFAULT_MAX_MESSAGE_BYTES (4u << 20)

typedef struct shard_config {
    char index_dir[4096];       /* --index: IDXDIR/shard-NNN (required) */
    char updates_dir[4096];     /* --updates-dir: the live updates' store (shard/updates.h); "" = none */
    char listen[256];           /* --listen */
    char addr_file[4096];       /* --addr-file ("" = none) */
    char config_file[4096];     /* --config ("" = none) */
    unsigned threads;           /* --threads: search worker threads */
    uint32_t max_k;             /* --max-k */
    /* Bounds on the work and memory one request can cause (issue 6); the
     * coordinator's defaults are the same or smaller. */
    uint32_t max_query_bytes;   /* --max-query-bytes (FN_QUERY_DEFAULT_MAX_BYTES) */
    uint32_t max_query_words;   /* --max-query-words: words in the raw text */
    uint32_t max_query_terms;   /* --max-query-terms: distinct terms after analysis */
    uint32_t max_explain_hits;  /* --max-explain-hits: hits that get per-term explain */
    uint64_t max_reply_bytes;   /* --max-reply-bytes: larger replies are refused */
    uint32_t inline_max_k;      /* --inline-max-k: a search selecting at most this many, without
                                 * features, explain or feedback, runs on the loop thread (0: none) */
    uint32_t slow_search_ms;    /* --slow-search-ms: a WARN line (with the request id) above this (0 = never) */
    uint32_t log_requests;      /* --log-requests 0|1: a JSON line per search (request id, k, hits, time) */
    int verify_quick;           /* --verify-on-open quick: skip the whole-file hash */
    uint32_t warm_queries;      /* --warm-queries: recent searches replayed on a staged generation (0 = none) */
    uint32_t preload;           /* --preload 0|1: data.mdb mapped into the page tables after a full check */
    uint32_t load_rate_mb;      /* --load-rate-mb: MiB/s a staged generation's data.mdb is hashed at (0 = unpaced) */
    uint32_t load_cold_rate_mb; /* --load-cold-rate-mb: the same for pages not in the page cache (0 = load_rate_mb) */
    uint32_t load_yield_pressure; /* --load-yield-pressure: that check waits while CPU pressure is over this % (0 = never) */
    int log_level;              /* enum fn_log_level */
    idx_bm25_params bm25;       /* bm25.k1, bm25.b_title, ... */
    idx_select_params sel;      /* selection.w_popularity, ... (docs/ranking.md) */
    char stage1_model[4096];    /* --stage1-model FILE ("" = none: selection order) */
    char model_state[4096];     /* --model-state DIR (fn_modelstate.h; "" = none) */
    /* Security and limits of the RPC layer (rpc/rpc_security.h; docs/operations.md). */
    char tls_ca[4096];          /* --tls-ca PEM: verifies clients' certificates ("" = none) */
    char tls_cert[4096];        /* --tls-cert PEM: the server certificate ("" = plaintext) */
    char tls_key[4096];         /* --tls-key PEM: its private key */
    int tls_require_client_cert;/* --tls-require-client-cert 0|1 (-1 = default: 1 with TLS) */
    char admin_token_file[4096];/* --admin-token-file: Admin calls need this bearer token ("" = open) */
    uint64_t max_message_bytes; /* --max-message-bytes: largest request accepted (default 4 MiB) */
    char metrics_listen[256];   /* --metrics-listen HOST:PORT ("" = no metrics endpoint) */
    char metrics_file[4096];    /* --metrics-file: write the bound metrics "HOST:PORT\n" there */
    int help;                   /* --help was given */
    struct fn_metrics *metrics; /* not a setting: the process's registry (borrowed; NULL = none) */
} shard_config;

/* Fill with defaults (bm25 = idx_bm25_defaults()). */
void shard_config_defaults(shard_config *c);

/* Apply one setting by key ("index", "max-k" or "max_k", "bm25.k1", ...).
 * Returns 0, or FN_EINVAL (unknown key / bad value; message in eb). */
int shard_config_set(shard_config *c, const char *key, const char *value, fn_errbuf *eb);

/* Read a key=value file ('#' comments, blank lines ignored) into c.
 * Returns 0, -errno (cannot open) or FN_EPARSE ("FILE:LINE: reason" in eb). */
int shard_config_load_file(shard_config *c, const char *path, fn_errbuf *eb);

/* Defaults, then --config FILE if given, then the other flags. Flags take
 * "--key value" or "--key=value". Returns 0 (check c->help) or FN_EINVAL /
 * FN_EPARSE / -errno with the message in eb. Also checks that --index is
 * set unless --help was given. */
int shard_config_from_args(shard_config *c, int argc, char **argv, fn_errbuf *eb);

/* The usage text. */
const char *shard_config_usage(void);

#endif
