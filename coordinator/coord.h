/* coord.h - the coordinator service: Search/Search, Admin/Status and Health
 * on one rpc_server, fanning each search out to one replica of every shard.
 *
 * Everything runs on the loop thread (see rpc_server.h); the coordinator has
 * no locks and no worker threads: its own work (validation, merge, response
 * building) is small and bounded by max_window.
 */
#ifndef FUNNEL_COORD_COORD_H
#define FUNNEL_COORD_COORD_H

#include <stdint.h>
#include <uv.h>

#include "fn_error.h"
#include "page.h"
#include "prf.h"
#include "topology.h"
#include "validate.h"

typedef struct coord coord_t;   /* opaque */
struct fn_metrics;

/* The result page's settings (page.h); zero = the defaults. */
typedef struct coord_page_opts {
    int safe_search;                /* a request's default level (PAGE_SAFE_*; 0 = moderate) */
    uint32_t demote_by;             /* 0 = 20 */
    uint32_t host_cap;              /* 0 = no cap */
    uint32_t block;                 /* 0 = 10 */
    int no_collapse;                /* keep near-duplicates */
    const page_rule *rules;         /* borrowed; must outlive the coordinator */
    size_t nrules;
} coord_page_opts;

typedef struct coord_opts {
    const coord_topology *topo;     /* borrowed; must outlive the coordinator */
    const char *listen;             /* "127.0.0.1:0" picks a free port */
    int64_t default_deadline_ms;    /* used when the client sent no deadline */
    int64_t budget_ms;              /* reserved for our own work, at least */
    coord_limits limits;
    int64_t health_interval_ms;     /* shard health probes; 0 = none */
    /* Circuit breaker per replica; 0 = the COORD_DEFAULT_* in coord_config.h. */
    int64_t probe_deadline_ms;      /* a probe fails after this */
    int64_t down_probe_interval_ms; /* probe period of replicas marked down */
    uint32_t breaker_failures;      /* failed search calls in a row that open it */
    int64_t breaker_backoff_ms;     /* hold after a failed trial, doubling ... */
    int64_t breaker_max_backoff_ms; /* ... up to this */
    /* The funnel (docs/ranking.md): global windows, 0 = COORD_DEFAULT_*; a
     * shard's share is ceil(window x overprovision / shards). */
    uint32_t selection_k, stage1_k, stage2_k;
    double overprovision;           /* 0 = COORD_DEFAULT_OVERPROVISION */
    const char *stage2_model;       /* a model file, or NULL: merge order */
    const char *model_state;        /* --model-state DIR (fn_modelstate.h): the last push wins, or NULL */
    const char *experiments;        /* online experiments' config (experiment.h), or NULL */
    const char *spell_dict;         /* spelling dictionary (query/spell.h), or NULL: no correction */
    const char *spell_wordlist;     /* words never corrected, or NULL */
    double spell_min_score;         /* 0 = SPELL_DEFAULT_MIN_SCORE */
    const char *spell_stemmer;      /* the index's stemmer, or NULL / "none" */
    const char *synonyms;           /* WordNet's directory, or NULL: no synonym expansion */
    double synonym_weight;          /* a word's synonyms together */
    unsigned synonym_senses;        /* 0 = 1 */
    const char *analyzer;           /* the index's analyzer description (NULL = the default) */
    uint32_t relax_min_hits;        /* all_terms relaxation below this many matches (0 = never) */
    const char *intent_model;       /* query intent model (query/intent.h), or NULL */
    coord_page_opts page;           /* filter, diversity, blender */
    /* The impression log (coordinator/impressions.h); NULL = off. */
    const char *impressions_log;
    uint64_t impressions_max_bytes; /* rotate past this; 0 = never */
    unsigned impressions_keep;      /* rotated files kept */
    coord_prf_params prf;           /* pseudo-relevance feedback; docs 0 = off */
    struct fn_metrics *metrics;     /* the process's registry (borrowed; NULL = no metrics) */
    /* Serving under load (docs/operations.md "Replicas, hedging, load shedding"). */
    double hedge_percentile;        /* a call still out after this percentile of its shard's best
                                     * replica's recent latency is sent to a second replica (0 = 95, < 0 = never) */
    int64_t hedge_min_ms;           /* ... but never sooner than this (0 = 2) */
    double retry_budget;            /* retries + hedges per first call at most (0 = 0.1, < 0 = none) */
    uint32_t max_inflight;          /* load shedding: the adaptive limit's ceiling (0 = no shedding) */
    uint32_t min_inflight;          /* ... and its floor (0 = 64) */
    int64_t target_latency_ms;      /* load shedding: the queueing allowed (0 = 100) */
    int64_t shed_grace_ms;          /* ... and how long a queue over it stands before it sheds (0 = at once) */
    int64_t slow_query_ms;          /* log a slow-query line above this (0 = never) */
    int access_log;                 /* one JSON line per request on stderr */
} coord_opts;

/** Start serving on loop. Returns 0 and *out, or FN_EINVAL / -ENOMEM with a
 *  message in eb (e.g. the listen address is in use). */
int coord_start(uv_loop_t *loop, const coord_opts *o, coord_t **out, fn_errbuf *eb);

/** The bound port. */
int coord_port(const coord_t *c);

/** Graceful stop: Health turns NOT_SERVING, new searches get UNAVAILABLE,
 *  searches in flight finish (each by its deadline at the latest), then the
 *  server, channels and timer go away, c is freed and done(ud) runs on the
 *  loop thread. Call once. */
void coord_stop(coord_t *c, void (*done)(void *ud), void *ud);

#endif
