/* coord_config.h - funnel-coordinator settings: defaults, key=value config
 * file, command-line flags (flags override the file). Format: fn_config.h. */
#ifndef FUNNEL_COORD_CONFIG_H
#define FUNNEL_COORD_CONFIG_H

#include <stdint.h>

#include "fn_error.h"
#include "page.h"
#include "prf.h"
#include "validate.h"

#define COORD_DEFAULT_LISTEN             "127.0.0.1:0"
#define COORD_DEFAULT_DEADLINE_MS        5000
#define COORD_DEFAULT_BUDGET_MS          20
#define COORD_DEFAULT_MAX_WINDOW         10000
#define COORD_DEFAULT_MAX_QUERY_BYTES    4096
#define COORD_DEFAULT_MAX_QUERY_WORDS    FN_QUERY_DEFAULT_MAX_WORDS
#define COORD_DEFAULT_MAX_EXPLAIN_HITS   COORD_DEFAULT_EXPLAIN_HITS   /* validate.h */
#define COORD_DEFAULT_MAX_REPLY_BYTES    COORD_DEFAULT_REPLY_BYTES
#define COORD_DEFAULT_HEALTH_INTERVAL_MS 1000
/* Circuit breaker (coord.c, docs/architecture.md "The breaker"). */
#define COORD_DEFAULT_PROBE_DEADLINE_MS  500
#define COORD_DEFAULT_DOWN_PROBE_MS      250
#define COORD_DEFAULT_BREAKER_FAILURES   3
#define COORD_DEFAULT_BREAKER_BACKOFF_MS 1000
#define COORD_DEFAULT_BREAKER_MAX_BACKOFF_MS 30000
#define COORD_DEFAULT_HEDGE_PERCENTILE   95
#define COORD_DEFAULT_HEDGE_MIN_MS       2
#define COORD_DEFAULT_RETRY_BUDGET       0.1
#define COORD_DEFAULT_MAX_INFLIGHT       512
#define COORD_DEFAULT_MIN_INFLIGHT       64
#define COORD_DEFAULT_TARGET_LATENCY_MS  100
#define COORD_DEFAULT_SHED_GRACE_MS      2000
#define COORD_DEFAULT_SLOW_QUERY_MS      1000

typedef struct coord_config {
    char topology[4096];          /* --topology FILE (required) */
    char listen[256];             /* --listen HOST:PORT */
    char addr_file[4096];         /* --addr-file ("" = none) */
    char config_file[4096];       /* --config ("" = none) */
    int64_t default_deadline_ms;  /* --default-deadline-ms, 1..3600000 */
    int64_t budget_ms;            /* --budget-ms, 0..600000 */
    int64_t max_window;           /* --max-window, 1..1000000 */
    int64_t max_query_bytes;      /* --max-query-bytes, 1..1048576 */
    int64_t max_query_words;      /* --max-query-words, 1..100000 */
    int64_t max_explain_hits;     /* --max-explain-hits, 1..1000000 */
    int64_t max_reply_bytes;      /* --max-reply-bytes, 4096..1073741824 */
    int64_t selection_k;          /* --selection-k: global window of selection candidates */
    int64_t stage1_k;             /* --stage1-k: kept by the shards' stage-1 models */
    int64_t stage2_k;             /* --stage2-k: the window stage 2 re-ranks */
    double overprovision;         /* --overprovision: a shard's share x this, >= 1 */
    char stage2_model[4096];      /* --stage2-model FILE ("" = none) */
    char model_state[4096];       /* --model-state DIR (fn_modelstate.h; "" = none) */
    char experiments[4096];       /* --experiments FILE: online experiments (experiment.h; "" = none) */
    char spell_dict[4096];        /* --spell-dict FILE: spelling dictionary ("" = no correction) */
    char spell_wordlist[4096];    /* --spell-wordlist FILE: words never corrected ("" = none) */
    double spell_min_score;       /* --spell-min-score: a correction's least score */
    char spell_stemmer[32];       /* --spell-stemmer: the index's stemmer ("english"; "none") */
    char synonyms[4096];          /* --synonyms DIR: WordNet's files ("" = no synonym expansion) */
    double synonym_weight;        /* --synonym-weight: a word's synonyms together, 0..1 */
    int64_t synonym_senses;       /* --synonym-senses: a lemma's most frequent synsets used */
    char analyzer[256];           /* --analyzer: the index's analyzer description (synonym terms) */
    int64_t relax_min_hits;       /* --relax-min-hits: relaxation for all_terms requests (0 = never) */
    char intent_model[4096];      /* --intent-model FILE: query intent (funnel intent train; "" = none) */
    char impressions_log[4096];   /* --impressions-log FILE ("" = off) */
    int64_t impressions_max_bytes;/* --impressions-max-bytes: rotate past this (0 = never) */
    int64_t impressions_keep;     /* --impressions-keep: rotated files kept */
    int64_t prf_docs;             /* --prf-docs: feedback documents (0 = feedback off) */
    int64_t prf_terms;            /* --prf-terms: expansion terms */
    double prf_lambda;            /* --prf-lambda: the original query's share, 0..1 */
    double prf_temperature;       /* --prf-temperature: feedback softmax, x the best score (0 = linear) */
    double prf_max_df;            /* --prf-max-df: expansion terms in at most this share of documents */
    int64_t health_interval_ms;   /* --health-interval-ms, 0..3600000 (0 = never) */
    int64_t probe_deadline_ms;    /* --probe-deadline-ms, 1..60000 */
    int64_t down_probe_interval_ms; /* --down-probe-interval-ms, 1..3600000 */
    int64_t breaker_failures;     /* --breaker-failures, 1..1000 */
    int64_t breaker_backoff_ms;   /* --breaker-backoff-ms, 1..3600000 */
    int64_t breaker_max_backoff_ms; /* --breaker-max-backoff-ms, 1..3600000, >= backoff */
    /* The result page (coordinator/page.h, docs/result-page.md). */
    int safe_search;              /* --safe-search off|moderate|strict (PAGE_SAFE_*; default moderate) */
    int64_t demote_by;            /* --demote-by: places a moderate-flagged hit moves down, 1..10000 */
    int64_t host_cap;             /* --host-cap: hits of one host per page block (0 = no cap), 0..1000 */
    int64_t page_block;           /* --page-block: the block the host cap holds in, 1..1000 */
    int64_t collapse_duplicates;  /* --collapse-duplicates 0|1 */
    page_rule rules[PAGE_MAX_RULES]; /* --blend-rule (repeatable): slot rules, in config order */
    size_t nrules;
    /* Security and limits of the RPC layer (rpc/rpc_security.h; docs/operations.md). */
    char tls_ca[4096];            /* --tls-ca PEM: verifies shards' (and clients') certificates */
    char tls_cert[4096];          /* --tls-cert PEM: served to clients, presented to shards (mTLS) */
    char tls_key[4096];           /* --tls-key PEM */
    int64_t tls_require_client_cert; /* --tls-require-client-cert 0|1 (default 0) */
    char admin_token_file[4096];  /* --admin-token-file: required on Admin calls, sent to shards */
    int64_t max_message_bytes;    /* --max-message-bytes: largest request accepted (default 4 MiB) */
    char metrics_listen[256];     /* --metrics-listen HOST:PORT ("" = no metrics endpoint) */
    char metrics_file[4096];      /* --metrics-file: write the bound metrics "HOST:PORT\n" there */
    /* Serving under load (docs/operations.md "Replicas, hedging, load shedding"). */
    double hedge_percentile;      /* --hedge-percentile: hedge a call slower than this percentile (0 = never) */
    int64_t hedge_min_ms;         /* --hedge-min-ms: ... never sooner than this */
    double retry_budget;          /* --retry-budget: retries + hedges per first call, 0..1 */
    int64_t max_inflight;         /* --max-inflight: load shedding's ceiling (0 = never shed) */
    int64_t min_inflight;         /* --min-inflight: ... and its floor */
    int64_t target_latency_ms;    /* --target-latency-ms: the queueing the limit allows */
    int64_t shed_grace_ms;        /* --shed-grace-ms: how long a queue over it stands before it sheds */
    int64_t slow_query_ms;        /* --slow-query-ms: a slow-query log line above this (0 = never) */
    int64_t access_log;           /* --access-log 0|1: a JSON line per request on stderr */
    int log_level;                /* enum fn_log_level */
    int help;                     /* --help was given */
} coord_config;

/** Fill with the defaults above (no topology, log level info). */
void coord_config_defaults(coord_config *c);

/** Apply one setting by key ("budget-ms" or "budget_ms", ...). Returns 0, or
 *  FN_EINVAL (unknown key / bad value; "KEY: ..." in eb) leaving c as it was. */
int coord_config_set(coord_config *c, const char *key, const char *value, fn_errbuf *eb);

/** Read a key=value file into c ('config' itself is refused there).
 *  Returns 0, -errno (cannot open) or FN_EPARSE ("FILE:LINE: reason"). */
int coord_config_load_file(coord_config *c, const char *path, fn_errbuf *eb);

/** Defaults, then --config FILE if given, then the other flags ("--key value"
 *  or "--key=value"). Returns 0 (check c->help) or FN_EINVAL / FN_EPARSE /
 *  -errno with the message in eb. Checks that a topology is set unless
 *  --help was given, and that breaker-max-backoff-ms >= breaker-backoff-ms. */
int coord_config_from_args(coord_config *c, int argc, char **argv, fn_errbuf *eb);

/** The usage text (static). */
const char *coord_config_usage(void);

#endif
