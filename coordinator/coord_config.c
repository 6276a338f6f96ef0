/* coord_config.c - see coord_config.h. */
#include "coord_config.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "fn_config.h"
#include "fn_log.h"
#include "spell.h"

void coord_config_defaults(coord_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "%s", COORD_DEFAULT_LISTEN);
    c->default_deadline_ms = COORD_DEFAULT_DEADLINE_MS;
    c->budget_ms = COORD_DEFAULT_BUDGET_MS;
    c->max_window = COORD_DEFAULT_MAX_WINDOW;
    c->max_query_bytes = COORD_DEFAULT_MAX_QUERY_BYTES;
    c->max_query_words = COORD_DEFAULT_MAX_QUERY_WORDS;
    c->max_explain_hits = COORD_DEFAULT_MAX_EXPLAIN_HITS;
    c->max_reply_bytes = COORD_DEFAULT_MAX_REPLY_BYTES;
    c->selection_k = COORD_DEFAULT_SELECTION_K;
    c->stage1_k = COORD_DEFAULT_STAGE1_K;
    c->stage2_k = COORD_DEFAULT_STAGE2_K;
    c->overprovision = COORD_DEFAULT_OVERPROVISION;
    c->impressions_max_bytes = 256 << 20;
    c->impressions_keep = 5;
    c->spell_min_score = SPELL_DEFAULT_MIN_SCORE;
    snprintf(c->spell_stemmer, sizeof c->spell_stemmer, "english");
    c->synonym_weight = 0.3;
    c->synonym_senses = 1;
    snprintf(c->analyzer, sizeof c->analyzer, "stemmer=english;stopwords=english;max_token_bytes=64");
    c->prf_docs = COORD_DEFAULT_PRF_DOCS;
    c->prf_terms = COORD_DEFAULT_PRF_TERMS;
    c->prf_lambda = COORD_DEFAULT_PRF_LAMBDA;
    c->prf_temperature = COORD_DEFAULT_PRF_TEMPERATURE;
    c->prf_max_df = COORD_DEFAULT_PRF_MAX_DF;
    c->health_interval_ms = COORD_DEFAULT_HEALTH_INTERVAL_MS;
    c->probe_deadline_ms = COORD_DEFAULT_PROBE_DEADLINE_MS;
    c->down_probe_interval_ms = COORD_DEFAULT_DOWN_PROBE_MS;
    c->breaker_failures = COORD_DEFAULT_BREAKER_FAILURES;
    c->breaker_backoff_ms = COORD_DEFAULT_BREAKER_BACKOFF_MS;
    c->breaker_max_backoff_ms = COORD_DEFAULT_BREAKER_MAX_BACKOFF_MS;
    c->safe_search = PAGE_SAFE_MODERATE;
    c->demote_by = 20;
    c->host_cap = 0;
    c->page_block = 10;
    c->collapse_duplicates = 1;
    c->max_message_bytes = 4 << 20;
    c->hedge_percentile = COORD_DEFAULT_HEDGE_PERCENTILE;
    c->hedge_min_ms = COORD_DEFAULT_HEDGE_MIN_MS;
    c->retry_budget = COORD_DEFAULT_RETRY_BUDGET;
    c->max_inflight = COORD_DEFAULT_MAX_INFLIGHT;
    c->min_inflight = COORD_DEFAULT_MIN_INFLIGHT;
    c->target_latency_ms = COORD_DEFAULT_TARGET_LATENCY_MS;
    c->shed_grace_ms = COORD_DEFAULT_SHED_GRACE_MS;
    c->slow_query_ms = COORD_DEFAULT_SLOW_QUERY_MS;
    c->access_log = 1;
    c->log_level = FN_LOG_INFO;
}

static int set_str(char *dst, size_t cap, const char *name, const char *v, fn_errbuf *eb)
{
    size_t n = strlen(v);
    if (n >= cap) return fn_seterr(eb, FN_EINVAL, "%s: value too long", name);
    memcpy(dst, v, n + 1);
    return 0;
}

/* The numeric settings and their ranges. */
static const struct num_key {
    const char *name;
    size_t off;
    int64_t min, max;
} num_keys[] = {
    { "default-deadline-ms", offsetof(coord_config, default_deadline_ms), 1, 3600000 },
    { "budget-ms", offsetof(coord_config, budget_ms), 0, 600000 },
    { "max-window", offsetof(coord_config, max_window), 1, 1000000 },
    { "max-query-bytes", offsetof(coord_config, max_query_bytes), 1, 1 << 20 },
    { "max-query-words", offsetof(coord_config, max_query_words), 1, 100000 },
    { "max-explain-hits", offsetof(coord_config, max_explain_hits), 1, 1000000 },
    { "max-reply-bytes", offsetof(coord_config, max_reply_bytes), 4096, 1 << 30 },
    { "selection-k", offsetof(coord_config, selection_k), 1, 1000000 },
    { "stage1-k", offsetof(coord_config, stage1_k), 1, 1000000 },
    { "stage2-k", offsetof(coord_config, stage2_k), 1, 100000 },
    { "impressions-max-bytes", offsetof(coord_config, impressions_max_bytes), 0, 1ll << 40 },
    { "impressions-keep", offsetof(coord_config, impressions_keep), 1, 1000 },
    { "prf-docs", offsetof(coord_config, prf_docs), 0, 100 },
    { "synonym-senses", offsetof(coord_config, synonym_senses), 1, 100 },
    { "relax-min-hits", offsetof(coord_config, relax_min_hits), 0, 1000000 },
    /* 500: with the query's own terms (a shard allows 256) the expanded
     * query stays under Shard/Rescore's 1000 */
    { "prf-terms", offsetof(coord_config, prf_terms), 1, 500 },
    { "health-interval-ms", offsetof(coord_config, health_interval_ms), 0, 3600000 },
    { "probe-deadline-ms", offsetof(coord_config, probe_deadline_ms), 1, 60000 },
    { "down-probe-interval-ms", offsetof(coord_config, down_probe_interval_ms), 1, 3600000 },
    { "breaker-failures", offsetof(coord_config, breaker_failures), 1, 1000 },
    { "breaker-backoff-ms", offsetof(coord_config, breaker_backoff_ms), 1, 3600000 },
    { "breaker-max-backoff-ms", offsetof(coord_config, breaker_max_backoff_ms), 1, 3600000 },
    { "demote-by", offsetof(coord_config, demote_by), 1, 10000 },
    { "host-cap", offsetof(coord_config, host_cap), 0, 1000 },
    { "page-block", offsetof(coord_config, page_block), 1, 1000 },
    { "collapse-duplicates", offsetof(coord_config, collapse_duplicates), 0, 1 },
    { "tls-require-client-cert", offsetof(coord_config, tls_require_client_cert), 0, 1 },
    { "max-message-bytes", offsetof(coord_config, max_message_bytes), 1024, 1 << 30 },
    { "hedge-min-ms", offsetof(coord_config, hedge_min_ms), 0, 60000 },
    { "max-inflight", offsetof(coord_config, max_inflight), 0, 100000 },
    { "min-inflight", offsetof(coord_config, min_inflight), 1, 100000 },
    { "target-latency-ms", offsetof(coord_config, target_latency_ms), 1, 600000 },
    { "shed-grace-ms", offsetof(coord_config, shed_grace_ms), 0, 600000 },
    { "slow-query-ms", offsetof(coord_config, slow_query_ms), 0, 3600000 },
    { "access-log", offsetof(coord_config, access_log), 0, 1 },
};

/* Keys with a number with a fraction: the same parse, range and message. */
static const struct dbl_key {
    const char *name;
    size_t off;
    double min, max;
} dbl_keys[] = {
    { "overprovision", offsetof(coord_config, overprovision), 1, 100 },
    { "prf-lambda", offsetof(coord_config, prf_lambda), 0, 1 },
    { "prf-temperature", offsetof(coord_config, prf_temperature), 0, 100 },
    { "prf-max-df", offsetof(coord_config, prf_max_df), 0, 1 },
    { "spell-min-score", offsetof(coord_config, spell_min_score), -1000, 0 },
    { "synonym-weight", offsetof(coord_config, synonym_weight), 0, 1 },
    { "hedge-percentile", offsetof(coord_config, hedge_percentile), 0, 99.9 },
    { "retry-budget", offsetof(coord_config, retry_budget), 0, 1 },
};

int coord_config_set(coord_config *c, const char *key, const char *v, fn_errbuf *eb)
{
    if (fn_config_key_is(key, "topology")) {
        if (!*v) return fn_seterr(eb, FN_EINVAL, "topology: must not be empty");
        return set_str(c->topology, sizeof c->topology, "topology", v, eb);
    }
    /* The address is checked when the server binds it (exit status 1). */
    if (fn_config_key_is(key, "listen")) return set_str(c->listen, sizeof c->listen, "listen", v, eb);
    if (fn_config_key_is(key, "addr-file"))
        return set_str(c->addr_file, sizeof c->addr_file, "addr-file", v, eb);
    if (fn_config_key_is(key, "config"))
        return set_str(c->config_file, sizeof c->config_file, "config", v, eb);
    if (fn_config_key_is(key, "impressions-log"))
        return set_str(c->impressions_log, sizeof c->impressions_log, "impressions-log", v, eb);
    if (fn_config_key_is(key, "spell-dict"))
        return set_str(c->spell_dict, sizeof c->spell_dict, "spell-dict", v, eb);
    if (fn_config_key_is(key, "intent-model"))
        return set_str(c->intent_model, sizeof c->intent_model, "intent-model", v, eb);
    if (fn_config_key_is(key, "synonyms"))
        return set_str(c->synonyms, sizeof c->synonyms, "synonyms", v, eb);
    if (fn_config_key_is(key, "analyzer"))
        return set_str(c->analyzer, sizeof c->analyzer, "analyzer", v, eb);
    if (fn_config_key_is(key, "spell-stemmer"))
        return set_str(c->spell_stemmer, sizeof c->spell_stemmer, "spell-stemmer", v, eb);
    if (fn_config_key_is(key, "spell-wordlist"))
        return set_str(c->spell_wordlist, sizeof c->spell_wordlist, "spell-wordlist", v, eb);
    if (fn_config_key_is(key, "stage2-model"))
        return set_str(c->stage2_model, sizeof c->stage2_model, "stage2-model", v, eb);
    if (fn_config_key_is(key, "model-state"))
        return set_str(c->model_state, sizeof c->model_state, "model-state", v, eb);
    if (fn_config_key_is(key, "experiments"))
        return set_str(c->experiments, sizeof c->experiments, "experiments", v, eb);
    /* TLS, the admin token and the metrics endpoint (rpc_security.h, fn_metrics.h) */
    static const struct { const char *name; size_t off, cap; } sec_keys[] = {
        { "tls-ca", offsetof(coord_config, tls_ca), sizeof c->tls_ca },
        { "tls-cert", offsetof(coord_config, tls_cert), sizeof c->tls_cert },
        { "tls-key", offsetof(coord_config, tls_key), sizeof c->tls_key },
        { "admin-token-file", offsetof(coord_config, admin_token_file), sizeof c->admin_token_file },
        { "metrics-listen", offsetof(coord_config, metrics_listen), sizeof c->metrics_listen },
        { "metrics-file", offsetof(coord_config, metrics_file), sizeof c->metrics_file },
    };
    for (size_t i = 0; i < sizeof sec_keys / sizeof sec_keys[0]; i++)
        if (fn_config_key_is(key, sec_keys[i].name))
            return set_str((char *)c + sec_keys[i].off, sec_keys[i].cap, sec_keys[i].name, v, eb);
    for (size_t i = 0; i < sizeof dbl_keys / sizeof dbl_keys[0]; i++) {
        const struct dbl_key *k = &dbl_keys[i];
        if (!fn_config_key_is(key, k->name)) continue;
        double d;
        if (fn_parse_double(v, k->min, k->max, &d) != 0)
            return fn_seterr(eb, FN_EINVAL, "%s: '%s' is not a number in %g..%g", k->name, v, k->min, k->max);
        *(double *)((char *)c + k->off) = d;
        return 0;
    }
    if (fn_config_key_is(key, "safe-search")) {
        int l = !strcmp(v, "off") ? PAGE_SAFE_OFF : !strcmp(v, "moderate") ? PAGE_SAFE_MODERATE
              : !strcmp(v, "strict") ? PAGE_SAFE_STRICT : -1;
        if (l < 0) return fn_seterr(eb, FN_EINVAL, "safe-search: '%s' is not off|moderate|strict", v);
        c->safe_search = l;
        return 0;
    }
    if (fn_config_key_is(key, "blend-rule")) {
        /* checked against the rules before it here, so a clash names this line */
        page_rule r;
        if (c->nrules >= PAGE_MAX_RULES)
            return fn_seterr(eb, FN_EINVAL, "blend-rule: at most %d rules", PAGE_MAX_RULES);
        int rc = page_rule_parse(v, &r, eb);
        if (rc) return rc;
        r.ord = (unsigned)c->nrules + 1;
        c->rules[c->nrules] = r;
        if ((rc = page_rules_check(c->rules, c->nrules + 1, eb))) return rc;
        c->nrules++;
        return 0;
    }
    if (fn_config_key_is(key, "log-level")) {
        int l = fn_log_level_parse(v);
        if (l < 0) return fn_seterr(eb, FN_EINVAL, "log-level: '%s' is not debug|info|warn|error", v);
        c->log_level = l;
        return 0;
    }
    for (size_t i = 0; i < sizeof num_keys / sizeof num_keys[0]; i++) {
        const struct num_key *k = &num_keys[i];
        if (!fn_config_key_is(key, k->name)) continue;
        unsigned long u;
        if (fn_parse_ulong(v, (unsigned long)k->min, (unsigned long)k->max, &u) != 0)
            return fn_seterr(eb, FN_EINVAL, "%s: '%s' is not a number in %" PRId64 "..%" PRId64,
                             k->name, v, k->min, k->max);
        *(int64_t *)((char *)c + k->off) = (int64_t)u;
        return 0;
    }
    return fn_seterr(eb, FN_EINVAL, "unknown key '%s'", key);
}

static int set_cb(void *ud, const char *key, const char *value, fn_errbuf *eb)
{
    return coord_config_set(ud, key, value, eb);
}

/* A file naming another file would only confuse: refuse it. */
static int file_set_cb(void *ud, const char *key, const char *value, fn_errbuf *eb)
{
    if (fn_config_key_is(key, "config"))
        return fn_seterr(eb, FN_EINVAL, "'%s' is not allowed in a config file", key);
    return coord_config_set(ud, key, value, eb);
}

int coord_config_load_file(coord_config *c, const char *path, fn_errbuf *eb)
{
    return fn_config_load_file(path, file_set_cb, c, eb);
}

int coord_config_from_args(coord_config *c, int argc, char **argv, fn_errbuf *eb)
{
    coord_config_defaults(c);
    int rc = fn_config_from_args(argc, argv, "config", set_cb, c, eb);
    if (rc == FN_CONFIG_HELP) {
        c->help = 1;
        return 0;
    }
    if (rc) return rc;
    if (!c->topology[0]) return fn_seterr(eb, FN_EINVAL, "--topology FILE is required");
    if (c->breaker_max_backoff_ms < c->breaker_backoff_ms)
        return fn_seterr(eb, FN_EINVAL, "breaker-max-backoff-ms: %" PRId64 " is less than breaker-backoff-ms %" PRId64,
                         c->breaker_max_backoff_ms, c->breaker_backoff_ms);
    return 0;
}

const char *coord_config_usage(void)
{
    return
"usage: funnel-coordinator --topology FILE [options]\n"
"Serves funnel.v1.Search/Search, Admin/Status and grpc.health.v1.Health/Check;\n"
"fans each search out to one replica of every shard and merges the results.\n"
"\n"
"  --topology FILE          shard map (required); lines 'shard N ADDR [ADDR...]', '#' comments\n"
"  --listen ADDR            listen address (default 127.0.0.1:0 = any free port)\n"
"  --addr-file PATH         write \"127.0.0.1:PORT\\n\" there (atomically) once listening\n"
"  --default-deadline-ms N  deadline when the client sent none (default 5000)\n"
"  --budget-ms N            time kept for the coordinator's own work: shard calls end\n"
"                           max(N, 10% of the time left) before the client's deadline (default 20)\n"
"  --max-window N           largest (page+1)*k a request may ask for (default 10000)\n"
"  --max-query-bytes N      longest query in bytes (default 4096)\n"
"  --max-query-words N      most words in a query (default 1024)\n"
"  --max-explain-hits N     explain details for this many global ranks (default 100)\n"
"  --max-reply-bytes N      larger responses get RESOURCE_EXHAUSTED (default 16777216)\n"
"  --selection-k N          candidates selected, all shards together (default 1000)\n"
"  --stage1-k N             kept by the shards' stage-1 models, all together (default 500)\n"
"  --stage2-k N             the window the stage-2 model re-ranks (default 500)\n"
"  --overprovision X        a shard's share of a window is ceil(window x X / shards) (default 1.5)\n"
"  --stage2-model FILE      the stage-2 model (default none: merge order)\n"
"  --model-state DIR        keep the live stage-2 and intent models there: a push is written\n"
"                           before it goes live, a restart serves the last push, not the\n"
"                           FILE options (default none: a restart forgets pushes)\n"
"  --experiments FILE       online experiments: arms (stage-2 models, none, interleaving) by\n"
"                           user/session id (docs/engagement.md \"Online experiments\"; default none)\n"
"  --spell-dict FILE        spelling dictionary (funnel spell build): words found in no\n"
"                           document are corrected (default none: no correction)\n"
"  --spell-wordlist FILES   words never corrected, one a line; files separated by ':'\n"
"                           (e.g. /usr/share/dict/american-english:/usr/share/dict/\n"
"                           british-english; default none)\n"
"  --spell-min-score X      a correction must score at least X (default -14)\n"
"  --synonyms DIR           WordNet's files (wordnet-base: /usr/share/wordnet) for expand\n"
"                           synonyms (default none)\n"
"  --synonym-weight X       a word's synonyms together weigh X (default 0.3; the word 1)\n"
"  --synonym-senses N       synonyms from a word's N most frequent senses (default 1)\n"
"  --intent-model FILE      query intent (funnel intent train): every response carries the\n"
"                           verticals' probabilities (default none)\n"
"  --safe-search L          off|moderate|strict: a request's default (docs/result-page.md;\n"
"                           default moderate: hits the index's content filter flags move down)\n"
"  --demote-by N            places a hit flagged under moderate moves down (default 20)\n"
"  --host-cap N             at most N hits of one host in every page block (default 0: no cap)\n"
"  --page-block N           the block of consecutive results the host cap holds in (default 10)\n"
"  --collapse-duplicates B  1: fold near-duplicates under the best of each group (default 1)\n"
"  --blend-rule RULE        a slot rule, repeatable: 'NAME vertical=V position=P size=S\n"
"                           [min-intent=X] [min-hits=M]' (a block of S hits of vertical V at\n"
"                           place P when the query's intent for V is at least X)\n"
"  --relax-min-hits N       an all_terms query matching fewer than N documents drops its\n"
"                           most common word and runs again, until N match (default 0: never;\n"
"                           a request's min_hits overrides)\n"
"  --analyzer DESC          the index's analyzer (index.json), for synonym terms (default\n"
"                           stemmer=english;stopwords=english;max_token_bytes=64)\n"
"  --spell-stemmer NAME     the index's stemmer: a word whose stem a corpus word has finds\n"
"                           documents and is left alone (default english; none)\n"
"  --impressions-log FILE   log every page shown, with its features (JSON Lines; default off)\n"
"  --impressions-max-bytes N  rotate the log past N bytes (default 268435456; 0 = never)\n"
"  --impressions-keep N     rotated logs kept: FILE.1 .. FILE.N (default 5)\n"
"  --prf-docs N             pseudo-relevance feedback (feature prf_rm3, computed when the\n"
"                           stage-2 model uses it): feedback documents (default 10; 0 = off)\n"
"  --prf-terms N            expansion terms kept (default 50)\n"
"  --prf-lambda X           the original query's share of the expanded query (default 0.7)\n"
"  --prf-temperature X      feedback documents weighted by exp(-(s1 - s) / (X s1)), s1 the\n"
"                           best score (default 0.1; 0 = weights linear in the scores)\n"
"  --prf-max-df X           expansion terms only from terms in at most this share of all\n"
"                           documents (default 0.2; 0 = every term)\n"
"  --health-interval-ms N   probe every shard replica this often; 0 = never (default 1000)\n"
"  --probe-deadline-ms N    a probe not answered within N ms fails (default 500); a search\n"
"                           call's DEADLINE_EXCEEDED counts against a replica only if it had N ms\n"
"  --down-probe-interval-ms N  probe replicas marked down this often (default 250, at most\n"
"                           the health interval), so a recovered shard rejoins quickly\n"
"  --breaker-failures N     failed search calls in a row that mark a replica down (default 3)\n"
"  --breaker-backoff-ms N   a replica that fails again soon after coming back stays down at\n"
"                           least N ms, doubled at each such failure (default 1000)\n"
"  --breaker-max-backoff-ms N  the longest such hold, ms (default 30000)\n"
"  --hedge-percentile P   a shard call still out after this percentile of the\n"
"                         shard's recent latency is also sent to another replica;\n"
"                         the first answer wins (default 95; 0 = never hedge)\n"
"  --hedge-min-ms N       never hedge sooner than this (default 2)\n"
"  --retry-budget R       retries and hedges together per first call, 0..1 (default 0.1)\n"
"  --max-inflight N       load shedding: at most this many searches at once; a search\n"
"                         that would wait in queues longer than target-latency-ms, or\n"
"                         could not make 90% of its deadline, gets RESOURCE_EXHAUSTED\n"
"                         at once with a retry hint (default 512; 0 = never shed)\n"
"  --min-inflight N       fewer searches in flight are never shed on latency (default 64)\n"
"  --target-latency-ms N  the queueing allowed: the expected time less the least a\n"
"                         search took in the last quiet second (default 100)\n"
"  --shed-grace-ms N      a queue over the target is shed once it has stood this long,\n"
"                         or at once past 3 times the target: a burst drains instead\n"
"                         (default 2000; 0 = shed at once)\n"
"  --slow-query-ms N      a slow-query log line for searches slower than this (default 1000; 0 = never)\n"
"  --access-log 0|1       a JSON access-log line per request on stderr (default 1)\n"
"  --tls-cert PEM, --tls-key PEM  serve TLS, and present this certificate to shards (mTLS)\n"
"  --tls-ca PEM             CA that signs the shards' certificates; with it every shard link is TLS\n"
"  --tls-require-client-cert B  1: clients need a certificate from --tls-ca too (default 0)\n"
"  --admin-token-file F     Admin calls need 'authorization: Bearer <first line of F>'; the\n"
"                           coordinator's own Admin calls to shards send it\n"
"  --max-message-bytes N    largest request message accepted (default 4194304)\n"
"  --metrics-listen HOST:PORT  serve Prometheus GET /metrics there (default: off)\n"
"  --metrics-file PATH      write the metrics endpoint's \"HOST:PORT\\n\" there (atomically)\n"
"  --log-level LEVEL        debug|info|warn|error (default info)\n"
"  --config FILE            key = value file with the same keys (without --); flags override it\n"
"  --help                   this text\n"
"Flags take '--key value' or '--key=value'.\n";
}
