/* coord.c - the coordinator's request path: validate, fan out under one
 * deadline, merge exactly, answer (partial when shards are missing).
 *
 * Lifetimes: a `search` lives from the Search handler until its reply, and
 * past it until its shard calls still out (a hedge's loser, a straggler
 * left out) have come back and its hedge timer is closed (search_maybe_free);
 * it owns the unpacked shard responses, and the SearchResponse it builds
 * only borrows from them (strings, TermExplain messages) plus a per-request
 * arena for the arrays, so one free pass releases everything.
 *
 * Replica choice, hedging and the retry budget: replicas.h; load shedding:
 * admission.h; both documented in docs/operations.md.
 *
 * Every replica has a circuit breaker (docs/architecture.md, "The breaker"):
 * closed = called; open = not called, probed every down-probe interval;
 * half-open = a probe answered again, one trial search call decides. A shard
 * whose replicas are all open is reported failed without being called.
 */
#include "coord.h"
#include "coord_config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/support/time.h>

#include "fn_arena.h"
#include "fn_memtimer.h"
#include "fn_modelstate.h"
#include "fn_log.h"
#include "feature_registry.h"
#include "stage.h"
#include "impressions.h"
#include "prf.h"
#include "stage2.h"
#include "experiment.h"
#include "funnel.pb-c.h"
#include "health.pb-c.h"
#include "buckets.h"
#include "merge.h"
#include "fusion.h"
#include <xxhash.h>
#include <jansson.h>
#include "pbbuf.h"
#include "rpc_client.h"
#include "rpc_server.h"
#include "spell.h"
#include "synonyms.h"
#include "parse.h"
#include "intent.h"
#include "analyzer.h"
#include "dupsig.h"
#include "page.h"
#include "replicas.h"
#include "admission.h"
#include "fn_metrics.h"

/* Every allocation of a search (the unpacked shard replies, the response's
 * arrays) comes from its arena and goes back at once (common/fn_arena.h). */
static void *ar_alloc(fn_arena *a, size_t n) { return fn_arena_calloc(a, 1, n); }

/* ---- state ---- */

typedef enum { BR_CLOSED, BR_OPEN, BR_HALF_OPEN } br_state;
static const char *const br_name[] = { "closed", "open", "half-open" };

typedef struct backend {
    const char *addr;            /* borrowed from the topology */
    uint32_t shard, replica;
    grpc_channel *ch;
    /* circuit breaker */
    br_state state;
    uint64_t since_ms;           /* uv_now when the state was entered */
    uint64_t down_ms;            /* start of the current outage (left closed) */
    uint64_t back_ms;            /* when it last came back, if came_back */
    uint64_t hold_until_ms;      /* open: stays open until then (backoff) */
    uint32_t flaps;              /* quick re-opens in a row: the backoff exponent */
    uint32_t consec_fail;        /* counted search failures in a row */
    int came_back, trial, ok_seen;
    int answered;                /* a probe or call got an answer from it once */
    uint64_t last_ok_ms;         /* last OK probe or call, if ok_seen */
    uint64_t last_err_ms;        /* when last_err was set, if last_err[0] */
    char last_err[160];
    /* probes */
    int probe_inflight, probed;
    uint64_t probe_ms;           /* start of the last probe */
    uint64_t calls, failures, skipped;
    int warned_mismatch;
    int gen_repairing;           /* loading the generation a search named on it */
    rep_stats rs;                /* adaptive replica selection (replicas.h) */
    lat_window lat;              /* recent answered calls (the hedge delay) */
    uint64_t hedges;             /* calls it got as a hedge */
    fn_mcounter *m_calls[17];    /* by gRPC status (made on first use) */
    fn_mgauge *m_up;
    char m_labels[COORD_MAX_ADDR + 48];   /* shard="N",replica="ADDR" */
    unsigned views;              /* views that list it; 0: retired (no probes, not in Status) */
    char addr_own[COORD_MAX_ADDR];   /* the address (addr points here) */
} backend;

/* A topology in use (docs/operations.md "Scale-out"): the replicas of each
 * shard. New searches fan out over the live view; a search keeps the view
 * it started with (a reference), so a shard or replica added meanwhile
 * never changes a search in flight. Views share backends by address and
 * shard, so breaker and latency state carry over. A backend no view lists
 * is retired but kept until the coordinator stops: calls and probes in
 * flight may still name it. Loop thread only. */
typedef struct view {
    unsigned refs;
    uint32_t nshards, nbackends;
    backend **b;                 /* shard-major: shard s's replica r is b[first[s] + r] */
    uint32_t *first, *nrep, *rr; /* per shard: first index, replicas, round-robin position */
    idx_bucket_map map;          /* which shard holds a document id (Get; buckets.h) */
} view;

/* The response's stages (build_response), then the slowest shard call and
 * the whole request. */
#define N_STAGE_METRICS 11
static const char *const stage_metric_names[N_STAGE_METRICS] = {
    "analyze", "selection", "stage1", "merge", "feedback", "stage2", "filter", "diversity", "blender",
    "shard_call", "total" };

/* The coordinator's series (docs/operations.md "Metrics"); every pointer
 * may be NULL (no registry): the fn_m* calls then do nothing. */
typedef struct coord_metrics {
    fn_metrics *reg;
    uint32_t nshards;            /* shards with per-shard series made so far */
    fn_mcounter *req[3][17];     /* method (search, get, other) x status */
    fn_mhist *req_dur[2];        /* search, get */
    fn_mhist *stage[N_STAGE_METRICS];
    fn_mhist **shard_dur;        /* per shard */
    fn_mcounter **hedges, **hedge_wins, **retries;   /* per shard */
    fn_mcounter *partial, *retries_denied, *shed, *bg_shed, *graced, *shrunk;
    fn_mgauge *inflight, *limit;
} coord_metrics;

struct coord {
    uv_loop_t *loop;
    coord_opts o;
    rank_ranker *stage2;         /* the stage-2 model (loop thread; NULL = none) */
    rank_ranker *stage2_cand;    /* a staged candidate (PushModel STAGE; the gate's), or NULL */
    char stage1_staged[256];     /* the stage-1 candidate every shard replica took (PushModel STAGE
                                  * stage 1): its description; "" = none */
    spell_dict_t *spell;         /* spelling dictionary (read-only once loaded; NULL = none) */
    syn_dict_t *syn;             /* WordNet synonyms (NULL = none) */
    intent_model_t *intent;      /* query intent (NULL = none) */
    intent_model_t *intent_cand; /* a staged intent model (PushModel STAGE stage 3), or NULL */
    /* --model-state DIR (fn_modelstate.h): what is live is written there
     * before it goes live, so the staged candidates' bytes are kept for
     * their ACTIVATE; model_state NULL = off */
    char *model_state;
    fn_model_src stage2_src, intent_src;
    char intent_desc[512], intent_cand_desc[512];   /* their descriptions (PushModelResponse.model) */
    idx_analyzer_t *an, *an_raw; /* the index's analyzer, and it without stemming (synonyms) */
    coord_implog *implog;        /* the impression log, or NULL */
    coord_exps *exps;            /* online experiments (experiment.h), or NULL */
    const char *fnames[64];      /* the registry's names: every column */
    size_t nfnames;                /* breaker fields with their defaults filled in */
    rpc_server_t *srv;
    rpc_method methods[6];
    view *view;                  /* the live topology (new searches) */
    backend **all;               /* every backend ever made (views point into it) */
    uint32_t nall, capall;
    int64_t down_probe_ms;       /* min(down_probe_interval_ms, health_interval_ms) */
    uv_timer_t timer;
    fn_mem_timer trim;           /* memory back to the system (fn_memtimer.h) */
    uint64_t start_ms;
    uint64_t requests, errors;
    retry_budget budget;         /* retries and hedges together */
    adm_t adm;                   /* load shedding (admission.h) */
    coord_metrics m;
    uint64_t hedges, hedge_wins, shed;
    size_t search_timers;        /* searches' hedge timers not closed yet */
    size_t inflight_req;         /* searches waiting for shards */
    size_t inflight_out;         /* outgoing calls (shard searches + probes) */
    int stopping, server_stopping;
    void (*done)(void *);
    void *done_ud;
    /* Index generations (Admin/Generation): the one searches name, the one
     * before (rollback) and a staged candidate; NULL = none ("" on the wire:
     * the shards' own, before the first publish). Loop thread only. */
    char *gen_live, *gen_prev, *gen_staged;
    view *view_prev, *view_staged; /* their topologies (the live one's is `view`); NULL = none */
    struct gen_op *gop;          /* the cluster-wide verb running, or NULL */
    uint64_t upd_clock;          /* the last live update's version (microseconds, or one past) */
};

struct search;

struct shard_slot;

/* One call of a shard slot to one replica. A slot has one, or two while a
 * hedge is out; the first good answer wins and the other is orphaned: its
 * callback only does the replica's bookkeeping. */
typedef struct attempt {
    struct shard_slot *sl;
    backend *b;
    uint64_t t0_ns;
    uint8_t trial;               /* b's half-open trial call */
    uint8_t hedge;               /* sent because the first was slow */
    uint8_t orphan;              /* its slot finished without it */
} attempt;

typedef struct shard_slot {
    struct search *s;
    uint32_t shard;
    uint32_t tries;
    attempt *live[2];            /* calls in flight for this slot */
    uint8_t nlive, hedged, left_out;
    uint64_t sent_ns;            /* the first attempt's start */
    uint64_t took_us;            /* the winning call's latency */
    backend *b;                  /* replica of the winning / last attempt */
    grpc_status_code code;
    uint16_t detail_at;          /* msg + detail_at = the last attempt's details */
    char msg[320];
    Funnel__V1__ShardSearchResponse *resp;
} shard_slot;

typedef struct search {
    coord_t *c;
    rpc_call_t *call;
    uint32_t outstanding;        /* shard attempts whose callback has not run */
    int finished;                /* replied: freed once outstanding is 0 and the timer closed */
    int admitted;                /* holds an admission slot (admission.h): 1 a user's, 2 a background one */
    int timer_on;                /* htimer initialised (closed before the free) */
    uv_timer_t htimer;           /* hedges and the coverage target's cut-off */
    uint32_t hedged;             /* hedge calls made */
    double cov_target;           /* share of shards that is enough (1 = all) */
    const char *degraded[4];     /* SearchResponse.degraded */
    size_t ndegraded;
    const Funnel__V1__SearchRequest *req;
    uint32_t k;
    uint64_t t0_ns;
    gpr_timespec deadline;       /* for shard calls: earlier than the client's */
    int64_t shard_ms;            /* time the shard calls were given */
    size_t pending;
    Funnel__V1__ShardSearchRequest sreq;
    uint32_t win[3];             /* effective selection_k, stage1_k, stage2_k (global) */
    int mode;                    /* the request's FeatureMode */
    rank_ranker *model;          /* the stage-2 model it started with (a reference; NULL = none) */
    coord_exp_pick xp;           /* its experiment arm (xp.arm NULL = none): the arm's rankers */
    const char *request_id;      /* the client's, or one made up here (echoed, logged) */
    char rid[48];
    const char *gen;             /* the index generation every shard call names ("" = the shards' own) */
    view *v;                     /* the topology it fans out over (a reference) */
    /* the exact merge, done once (before feedback, or by build_response) */
    int merged;
    const Funnel__V1__ShardHit **mh;   /* merged entries, best stage-1 score first */
    uint32_t *mshard;
    size_t got;
    uint64_t merged_in, merge_us;
    /* pseudo-relevance feedback (coordinator/prf.h) */
    enum { PRF_OFF, PRF_ASKED, PRF_RESCORING, PRF_DONE } prf;
    double *prf_scores;          /* per merged entry (NaN: not scored), or NULL */
    size_t prf_pending, prf_window, prf_scored;
    uint64_t prf_t0, prf_us;
    int prf_ran;                 /* rescoring calls were made */
    char prf_note[200];
    /* spelling (query/spell.h): the text the shards search, the corrections */
    const char *qtext;
    Funnel__V1__SpellCorrection **fixes;
    size_t nfixes;
    const char *did_you_mean;
    int expand;                  /* EXPAND_RM3 or _SYNONYMS: the window ranked by the expanded query when no model runs */
    int syn;                     /* ... by the query and its synonyms (EXPAND_SYNONYMS) */
    uint64_t analyze_us;         /* query understanding: spelling, parsing, relaxation decisions */
    const char *parsed;          /* the searched text's canonical tree (NULL: plain text, blank) */
    int bag;                     /* ... and it is a bag of words */
    /* the result page (page.h) */
    int page_on;                 /* a text page: filter, diversity, blender run */
    int safe;                    /* the request's safe-search level (PAGE_SAFE_*) */
    size_t list_cap;             /* entries of the merge the page may use (0 = all) */
    int deepen;                  /* deeper fetches so far (the page reached past the settled list) */
    int want_deeper;             /* build_response asks finish_search for one */
    int pg_complete;             /* no shard filled its k: the list is every hit there is */
    page_out pg;
    const char *filter_model;    /* the index's content-filter model (the shards') */
    double pg_threshold, pg_strict;
    uint32_t pg_cap;
    Funnel__V1__IntentScore **intent;   /* the intent model's scores, most probable first */
    size_t nintent;
    /* relaxation (all_terms below min_hits matches): the terms dropped so far */
    uint32_t min_hits;           /* 0: no relaxation */
    const char **relaxed;
    size_t nrelaxed;
    /* a request with a vector (docs/vectors.md): text blank = vector only */
    int vec_only;
    int vec_learned;             /* the vector only informs vec_sim (FUSION_LEARNED, features requests) */
    char vec_note[240];
    /* two-phase fetch: with a model re-ranking the window, shards send no
     * stored fields (sreq.no_fields); the page's are fetched after stage 2 */
    enum { FETCH_NONE, FETCH_RUNNING, FETCH_DONE } fetch;
    uint32_t *page_e;            /* per page hit: its merged entry */
    uint32_t *page_doc;          /* per page hit: its shard-local document ... */
    uint64_t *page_key;          /* ... and key (the fetch's, text or vector page) */
    int want_stored;             /* fields or snippets asked: the page is always fetched */
    size_t fetch_pending;
    Funnel__V1__SearchResponse resp;   /* built, waiting for its page's fields */
    Funnel__V1__Coverage cov;
    /* the impression line, written once the page has its ids */
    struct { size_t n; double *sc; const float **rows; size_t ncols; uint32_t rank0; } log;
    fn_arena mem;                /* all of this search's memory but itself */
    ProtobufCAllocator pba;      /* unpacks shard replies into mem */
    uint32_t nslots;
    shard_slot slots[];
} search;

static void maybe_finish_stop(coord_t *c);

/* ---- topology views ---- */

static view *view_ref(view *v)
{
    if (v) v->refs++;
    return v;
}

static void view_unref(view *v)
{
    if (!v || --v->refs) return;
    for (uint32_t i = 0; i < v->nbackends; i++) v->b[i]->views--;
    free(v->b);
    free(v->first);
    free(v->nrep);
    free(v->rr);
    free(v);
}

/* The backend for (addr, shard): an existing one (live or retired) or a new
 * one with its channel. NULL: out of memory or no channel. */
static backend *backend_get(coord_t *c, const char *addr, uint32_t shard, uint32_t replica)
{
    for (uint32_t i = 0; i < c->nall; i++)
        if (c->all[i]->shard == shard && strcmp(c->all[i]->addr, addr) == 0) return c->all[i];
    if (c->nall == c->capall) {
        uint32_t nc = c->capall ? 2 * c->capall : 16;
        backend **na = realloc(c->all, nc * sizeof *na);
        if (!na) return NULL;
        c->all = na;
        c->capall = nc;
    }
    backend *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    snprintf(b->addr_own, sizeof b->addr_own, "%s", addr);
    b->addr = b->addr_own;
    b->shard = shard;
    b->replica = replica;
    b->state = BR_CLOSED;   /* innocent until a probe or calls say otherwise */
    b->since_ms = uv_now(c->loop);
    if (!(b->ch = rpc_channel_create(b->addr))) {
        free(b);
        return NULL;
    }
    char esc[COORD_MAX_ADDR + 16];
    snprintf(b->m_labels, sizeof b->m_labels, "shard=\"%u\",replica=\"%s\"", shard,
             fn_metrics_label_escape(b->addr, esc, sizeof esc));
    c->all[c->nall++] = b;
    return b;
}

/* A view of topology t (and bucket map m; NULL = the default map of its
 * shards), one reference. NULL with eb set on failure. */
static view *view_new(coord_t *c, const coord_topology *t, const idx_bucket_map *m, fn_errbuf *eb)
{
    view *v = calloc(1, sizeof *v);
    uint32_t n = t->nshards, nb = 0;
    for (uint32_t s = 0; s < n; s++) nb += t->shards[s].nreplicas;
    if (v) {
        v->b = calloc(nb ? nb : 1, sizeof *v->b);
        v->first = calloc(n + 1, sizeof *v->first);
        v->nrep = calloc(n + 1, sizeof *v->nrep);
        v->rr = calloc(n + 1, sizeof *v->rr);
    }
    if (!v || !v->b || !v->first || !v->nrep || !v->rr) {
        if (v) {
            free(v->b);
            free(v->first);
            free(v->nrep);
            free(v->rr);
        }
        free(v);
        fn_seterr(eb, -ENOMEM, "out of memory");
        return NULL;
    }
    v->refs = 1;
    v->nshards = n;
    if (m) v->map = *m;
    else idx_buckets_default(&v->map, n);
    for (uint32_t s = 0; s < n; s++) {
        v->first[s] = v->nbackends;
        v->nrep[s] = t->shards[s].nreplicas;
        for (uint32_t r = 0; r < t->shards[s].nreplicas; r++) {
            backend *b = backend_get(c, t->shards[s].replicas[r], s, r);
            if (!b) {
                fn_seterr(eb, FN_EINVAL, "cannot create a channel to %s", t->shards[s].replicas[r]);
                view_unref(v);
                return NULL;
            }
            b->views++;
            v->b[v->nbackends++] = b;
        }
    }
    return v;
}

/* ---- metrics (fn_metrics.h) ---- */

static fn_mcounter *backend_calls(coord_t *c, backend *b, grpc_status_code code)
{
    unsigned st = (unsigned)code < 17 ? (unsigned)code : 2;
    if (!b->m_calls[st]) {
        char l[sizeof b->m_labels + 48];
        snprintf(l, sizeof l, "%s,status=\"%s\"", b->m_labels, rpc_status_name(code));
        b->m_calls[st] = fn_metrics_counter(c->m.reg, "funnel_coordinator_shard_calls_total",
                                            "Shard search calls by replica and gRPC status.", l);
    }
    return b->m_calls[st];
}

/* Per-shard series for shards [m->nshards, n): made when a topology with
 * more shards arrives (the arrays hold COORD_MAX_SHARDS). */
static void coord_metrics_shards(coord_t *c, uint32_t n)
{
    coord_metrics *m = &c->m;
    if (!m->reg || !m->shard_dur) return;
    const double *lb = fn_metrics_latency_buckets;
    size_t nb = fn_metrics_latency_nbuckets;
    for (uint32_t i = m->nshards; i < n && i < COORD_MAX_SHARDS; i++) {
        char l[32];
        snprintf(l, sizeof l, "shard=\"%u\"", i);
        m->shard_dur[i] = fn_metrics_histogram(m->reg, "funnel_coordinator_shard_call_duration_seconds",
                                               "Latency of answered shard search calls.", l, lb, nb);
        m->hedges[i] = fn_metrics_counter(m->reg, "funnel_coordinator_hedges_total",
                                          "Shard calls also sent to a second replica.", l);
        m->hedge_wins[i] = fn_metrics_counter(m->reg, "funnel_coordinator_hedge_wins_total",
                                              "Hedge calls that answered first.", l);
        m->retries[i] = fn_metrics_counter(m->reg, "funnel_coordinator_retries_total",
                                           "Failed shard calls retried on another replica.", l);
        m->nshards = i + 1;
    }
}

static void coord_metrics_shard_call(coord_t *c, backend *b, grpc_status_code code, uint64_t us)
{
    if (!c->m.reg) return;
    fn_mcounter_inc(backend_calls(c, b, code));
    if (code == GRPC_STATUS_OK && b->shard < c->m.nshards) fn_mhist_observe(c->m.shard_dur[b->shard], (double)us / 1e6);
}

static void coord_metrics_hedge(coord_t *c, uint32_t shard)
{
    if (c->m.reg && shard < c->m.nshards) fn_mcounter_inc(c->m.hedges[shard]);
}

static void coord_metrics_hedge_win(coord_t *c, uint32_t shard)
{
    if (c->m.reg && shard < c->m.nshards) fn_mcounter_inc(c->m.hedge_wins[shard]);
}

static void coord_metrics_retry(coord_t *c, uint32_t shard)
{
    if (c->m.reg && shard < c->m.nshards) fn_mcounter_inc(c->m.retries[shard]);
}

static void coord_metrics_retry_denied(coord_t *c)
{
    fn_mcounter_inc(c->m.retries_denied);
}

/* method: 0 search, 1 get, 2 other */
static void coord_metrics_request(coord_t *c, int method, grpc_status_code code, uint64_t us)
{
    if (!c->m.reg) return;
    unsigned st = (unsigned)code < 17 ? (unsigned)code : 2;
    if (!c->m.req[method][st]) {
        static const char *const mn[3] = { "search", "get", "other" };
        char l[96];
        snprintf(l, sizeof l, "method=\"%s\",status=\"%s\"", mn[method], rpc_status_name(code));
        c->m.req[method][st] = fn_metrics_counter(c->m.reg, "funnel_coordinator_requests_total",
                                                  "Requests answered, by method and gRPC status.", l);
    }
    fn_mcounter_inc(c->m.req[method][st]);
    if (method < 2) fn_mhist_observe(c->m.req_dur[method], (double)us / 1e6);
    fn_mgauge_set(c->m.inflight, (double)c->inflight_req);
    fn_mgauge_set(c->m.limit, c->adm.limit);
}

static void coord_metrics_backend_up(coord_t *c, backend *b)
{
    fn_mgauge_set(b->m_up, b->state == BR_CLOSED ? 1 : 0);
    (void)c;
}

/* Create the series that exist from the start (so a dashboard sees zeros). */
static int coord_metrics_init(coord_t *c)
{
    fn_metrics *r = c->o.metrics;
    coord_metrics *m = &c->m;
    m->reg = r;
    if (!r) return 0;
    m->shard_dur = calloc(COORD_MAX_SHARDS, sizeof *m->shard_dur);
    m->hedges = calloc(COORD_MAX_SHARDS, sizeof *m->hedges);
    m->hedge_wins = calloc(COORD_MAX_SHARDS, sizeof *m->hedge_wins);
    m->retries = calloc(COORD_MAX_SHARDS, sizeof *m->retries);
    if (!m->shard_dur || !m->hedges || !m->hedge_wins || !m->retries) return -ENOMEM;
    const double *lb = fn_metrics_latency_buckets;
    size_t nb = fn_metrics_latency_nbuckets;
    m->req_dur[0] = fn_metrics_histogram(r, "funnel_coordinator_request_duration_seconds",
                                         "Time from a request's arrival to its reply.", "method=\"search\"", lb, nb);
    m->req_dur[1] = fn_metrics_histogram(r, "funnel_coordinator_request_duration_seconds",
                                         "Time from a request's arrival to its reply.", "method=\"get\"", lb, nb);
    for (int i = 0; i < N_STAGE_METRICS; i++) {
        char l[64];
        snprintf(l, sizeof l, "stage=\"%s\"", stage_metric_names[i]);
        m->stage[i] = fn_metrics_histogram(r, "funnel_coordinator_stage_duration_seconds",
                                           "Time a search spent in each coordinator stage.", l, lb, nb);
    }
    coord_metrics_shards(c, c->view->nshards);
    for (uint32_t i = 0; i < c->nall; i++) {
        backend *b = c->all[i];
        b->m_up = fn_metrics_gauge(r, "funnel_coordinator_replica_up",
                                   "1 when the replica's breaker is closed (it is called).", b->m_labels);
        fn_mgauge_set(b->m_up, 1);
        backend_calls(c, b, GRPC_STATUS_OK);   /* the OK series exists from the start */
    }
    m->partial = fn_metrics_counter(r, "funnel_coordinator_partial_responses_total",
                                    "Searches answered without every shard.", NULL);
    m->retries_denied = fn_metrics_counter(r, "funnel_coordinator_retries_denied_total",
                                           "Retries and hedges refused by the retry budget.", NULL);
    m->shed = fn_metrics_counter(r, "funnel_coordinator_shed_total",
                                 "Searches refused at once under overload (RESOURCE_EXHAUSTED).", NULL);
    m->bg_shed = fn_metrics_counter(r, "funnel_coordinator_background_shed_total",
                                    "Background searches (the quality gate's shadow queries) refused while "
                                    "queues were building (RESOURCE_EXHAUSTED).", NULL);
    m->graced = fn_metrics_counter(r, "funnel_coordinator_shed_graced_total",
                                   "Searches admitted while the wait in queues was over the target, "
                                   "within --shed-grace-ms (a burst, not yet a standing queue).", NULL);
    m->shrunk = fn_metrics_counter(r, "funnel_coordinator_windows_shrunk_total",
                                   "Searches whose funnel windows were shrunk under load.", NULL);
    m->inflight = fn_metrics_gauge(r, "funnel_coordinator_inflight_requests",
                                   "Searches in flight.", NULL);
    m->limit = fn_metrics_gauge(r, "funnel_coordinator_concurrency_limit",
                                "The adaptive limit on searches in flight (load shedding).", NULL);
    fn_mgauge_set(m->limit, c->adm.limit);
    char l[600], esc[520];
    snprintf(l, sizeof l, "stage=\"stage2\",model=\"%s\"",
             fn_metrics_label_escape(c->o.stage2_model ? c->o.stage2_model : "none", esc, sizeof esc));
    fn_mgauge_set(fn_metrics_gauge(r, "funnel_coordinator_model_info",
                                   "The models loaded at start (value 1).", l), 1);
    return 0;
}

static void coord_metrics_free(coord_metrics *m)
{
    free(m->shard_dur);
    free(m->hedges);
    free(m->hedge_wins);
    free(m->retries);
}

/* ---- replies and counters ---- */

static void reply(coord_t *c, rpc_call_t *call, grpc_status_code code, const char *details,
                  const ProtobufCMessage *resp)
{
    if (code != GRPC_STATUS_OK) c->errors++;
    rpc_call_reply(call, code, details, resp);
}

/* ---- circuit breaker ---- */

static void replica_event(const backend *b, const char *type, const char *why, double down_s);

/* Failures that say something about the replica. INVALID_ARGUMENT and
 * RESOURCE_EXHAUSTED say something about the request; they are neutral. */
static int counts_against(grpc_status_code code)
{
    return code == GRPC_STATUS_UNAVAILABLE || code == GRPC_STATUS_DEADLINE_EXCEEDED ||
           code == GRPC_STATUS_INTERNAL || code == GRPC_STATUS_DATA_LOSS ||
           code == GRPC_STATUS_UNKNOWN;
}

/* Worth one more try on another replica: the call never reached a server
 * (UNAVAILABLE) or that replica's data is bad (INTERNAL, DATA_LOSS). */
static int retryable(grpc_status_code code)
{
    return code == GRPC_STATUS_UNAVAILABLE || code == GRPC_STATUS_INTERNAL ||
           code == GRPC_STATUS_DATA_LOSS || code == GRPC_STATUS_FAILED_PRECONDITION;
}

static void gen_repair(coord_t *c, backend *b, const char *gen);

/* The request itself was refused; no replica would answer differently. */
static int refusal(grpc_status_code code)
{
    return code == GRPC_STATUS_INVALID_ARGUMENT || code == GRPC_STATUS_RESOURCE_EXHAUSTED;
}

static void set_err(backend *b, uint64_t now, const char *what, grpc_status_code code,
                    const char *details)
{
    snprintf(b->last_err, sizeof b->last_err, "%s %s%s%s", what, rpc_status_name(code),
             details && *details ? ": " : "", details ? details : "");
    b->last_err_ms = now;
}

/* Hold after the n-th quick re-open in a row: backoff * 2^(n-1), capped. */
static uint64_t hold_ms(const coord_t *c, uint32_t flaps)
{
    uint64_t h = (uint64_t)c->o.breaker_backoff_ms, max = (uint64_t)c->o.breaker_max_backoff_ms;
    for (uint32_t i = 1; i < flaps && h < max; i++) h *= 2;
    return h < max ? h : max;
}

/* Open b. flap: a trial call just failed. Leaving closed within
 * max-backoff of coming back is a flap too: either way the replica stays
 * open for a growing hold, so a replica that keeps failing right after it
 * comes back costs one degraded query per hold, not one per probe. */
static void br_open(coord_t *c, backend *b, uint64_t now, int flap, const char *why)
{
    br_state prev = b->state;
    if (prev == BR_CLOSED) {
        b->down_ms = now;
        flap = flap || (b->came_back && now - b->back_ms < (uint64_t)c->o.breaker_max_backoff_ms);
        if (!flap) b->flaps = 0;
    }
    if (flap) b->flaps++;
    uint64_t hold = flap ? hold_ms(c, b->flaps) : 0;
    /* Without probes only time lets a replica be tried again. */
    if (c->o.health_interval_ms == 0 && hold < (uint64_t)c->o.breaker_backoff_ms)
        hold = (uint64_t)c->o.breaker_backoff_ms;
    b->hold_until_ms = now + hold;
    b->state = BR_OPEN;
    coord_metrics_backend_up(c, b);
    b->since_ms = now;
    b->consec_fail = 0;
    replica_event(b, "replica_down", why, -1);
    if (hold)
        FN_WARN("shard %u replica %s marked down%s: %s; not tried again for %.1f s", b->shard,
                b->addr, prev == BR_CLOSED ? "" : " again", why, (double)hold / 1000.0);
    else
        FN_WARN("shard %u replica %s marked down%s: %s", b->shard, b->addr,
                prev == BR_CLOSED ? "" : " again", why);
}

static void br_half_open(coord_t *c, backend *b, uint64_t now, const char *why)
{
    b->state = BR_HALF_OPEN;
    coord_metrics_backend_up(c, b);
    b->since_ms = now;
    FN_INFO("shard %u replica %s %s after %.1f s down; trying one search call", b->shard, b->addr,
            why, (double)(now - b->down_ms) / 1000.0);
}

static void br_close(coord_t *c, backend *b, uint64_t now)
{
    b->state = BR_CLOSED;
    coord_metrics_backend_up(c, b);
    replica_event(b, "replica_up", "its trial call answered", (double)(now - b->down_ms) / 1000.0);
    b->since_ms = now;
    b->came_back = 1;
    b->back_ms = now;
    b->consec_fail = 0;
    FN_INFO("shard %u replica %s back up after %.1f s", b->shard, b->addr,
            (double)(now - b->down_ms) / 1000.0);
}

/* The outcome of a search call on b (trial: it was b's half-open trial;
 * shard_ms: the time the call had). */
static void br_call_done(coord_t *c, backend *b, int trial, grpc_status_code code,
                         const char *details, int64_t shard_ms)
{
    uint64_t now = uv_now(c->loop);
    if (trial) b->trial = 0;
    if (code == GRPC_STATUS_OK) {
        b->ok_seen = b->answered = 1;
        b->last_ok_ms = now;
        b->consec_fail = 0;
        if (trial && b->state == BR_HALF_OPEN) br_close(c, b, now);
        return;
    }
    /* A deadline shorter than a probe's says more about the client's
     * deadline than about the shard: such a miss does not count. */
    if (!counts_against(code) ||
        (code == GRPC_STATUS_DEADLINE_EXCEEDED && shard_ms < c->o.probe_deadline_ms))
        return;
    b->consec_fail++;
    set_err(b, now, "search", code, details);
    char why[224];
    if (trial && b->state == BR_HALF_OPEN) {
        snprintf(why, sizeof why, "its trial call failed: %s", b->last_err);
        br_open(c, b, now, 1, why);
    } else if (b->state == BR_CLOSED && b->consec_fail >= c->o.breaker_failures) {
        snprintf(why, sizeof why, "%u failed search call%s in a row, the last: %s", b->consec_fail,
                 b->consec_fail == 1 ? "" : "s", b->last_err);
        br_open(c, b, now, 0, why);
    }
}

/* The replica for a shard call, or NULL when every replica (but `not`) is
 * open or half-open with its one trial call in flight. A half-open replica
 * with its trial slot free goes first (*trial = 1), so that it can prove
 * itself even while other replicas are fine; then the closed one with the
 * best adaptive score (replicas.h: latency x cubed calls in flight), ties
 * round robin. */
static backend *pick_replica(coord_t *c, view *v, uint32_t shard, const backend *not, int *trial)
{
    backend **base = &v->b[v->first[shard]], *closed = NULL;
    uint32_t n = v->nrep[shard], start = v->rr[shard]++ % n;
    uint64_t now = uv_now(c->loop);
    *trial = 0;
    for (uint32_t i = 0; i < n; i++) {
        backend *b = base[(start + i) % n];
        if (b == not) continue;
        if (b->state == BR_OPEN && c->o.health_interval_ms == 0 && now >= b->hold_until_ms)
            br_half_open(c, b, now, "is due for a try (no probes)");
        if (b->state == BR_HALF_OPEN && !b->trial) {
            *trial = 1;
            return b;
        }
        if (b->state == BR_CLOSED && (!closed || rep_score(&b->rs) < rep_score(&closed->rs))) closed = b;
    }
    if (closed)
        for (uint32_t i = 0; i < n; i++)
            if (base[i] != closed && base[i] != not && base[i]->state == BR_CLOSED)
                rep_passed_over(&base[i]->rs, closed->rs.ewma_us);
    return closed;
}

/* Why a shard was not called, for its `failures` entry. */
static void explain_skip(coord_t *c, shard_slot *sl)
{
    const view *v = sl->s->v;
    backend *const *base = &v->b[v->first[sl->shard]];
    uint32_t nrep = v->nrep[sl->shard];
    uint64_t now = uv_now(c->loop);
    int trials = 0;
    for (uint32_t r = 0; r < nrep; r++) trials += base[r]->state == BR_HALF_OPEN;
    size_t cap = sizeof sl->msg;
    int w = snprintf(sl->msg, cap, "not called: every replica is marked down%s (",
                     trials ? " or busy with its trial call" : "");
    for (uint32_t r = 0; r < nrep; r++) {
        backend *b = base[r];
        b->skipped++;
        if (w < 0 || (size_t)w >= cap) continue;   /* truncated: a message for people */
        if (b->state == BR_HALF_OPEN)
            w += snprintf(sl->msg + w, cap - (size_t)w, "%s%s: answers probes again, its trial call is in flight",
                          r ? "; " : "", b->addr);
        else
            w += snprintf(sl->msg + w, cap - (size_t)w, "%s%s: %s, %" PRIu64 " ms ago", r ? "; " : "",
                          b->addr, b->last_err[0] ? b->last_err : "down",
                          now - (b->last_err[0] ? b->last_err_ms : b->since_ms));
    }
    if (w >= 0 && (size_t)w < cap) snprintf(sl->msg + w, cap - (size_t)w, ")");
    sl->detail_at = 0;
}

/* ---- shard calls ---- */

static void on_shard_done(void *ud, grpc_status_code code, const char *details,
                          ProtobufCMessage *resp);

/* Call b for sl (hedge: as a second call while the first is slow).
 * Returns 0, or nonzero (nothing started; trial released). */
static int start_shard_call(shard_slot *sl, backend *b, int trial, int hedge)
{
    search *s = sl->s;
    coord_t *c = s->c;
    attempt *at = fn_arena_calloc(&s->mem, 1, sizeof *at);
    if (!at || sl->nlive >= 2) return -1;
    at->sl = sl;
    at->b = b;
    at->trial = (uint8_t)trial;
    at->hedge = (uint8_t)hedge;
    at->t0_ns = uv_hrtime();
    if (trial) b->trial = 1;
    int rc = rpc_async_unary_in(c->srv, b->ch, RPC_METHOD_SHARD_SEARCH,
                                &s->sreq.base, &funnel__v1__shard_search_response__descriptor,
                                s->deadline, &s->pba, on_shard_done, at);
    if (rc != 0) {
        if (trial) b->trial = 0;
        return rc;
    }
    if (!sl->nlive && !hedge) sl->sent_ns = at->t0_ns;
    sl->live[sl->nlive++] = at;
    sl->b = b;
    sl->tries++;
    b->calls++;
    b->rs.outstanding++;
    s->outstanding++;
    c->inflight_out++;
    if (!hedge && sl->tries == 1) budget_earn(&c->budget, uv_now(c->loop));
    return 0;
}

/* sl no longer waits for its calls still out. They are not cancelled: their
 * answers, when they come, are measured (a hedge's loser tells how slow its
 * replica really is; cancelled, it would look no slower than the winner and
 * keep being chosen) and dropped. The search's memory waits for them. */
static void orphan_live(shard_slot *sl)
{
    for (uint8_t i = 0; i < sl->nlive; i++) sl->live[i]->orphan = 1;
    sl->nlive = 0;
}

static void finish_search(search *s);
static void deepen_step(search *s);
static void fan_out(search *s, int64_t shard_us, int64_t left_us);
static int relax_step(search *s);
static const char *analyze_note(const search *s, fn_arena *a);

typedef struct relax_word { const char *term; int hit; } relax_word;

static int relax_cb(void *ud, const char *term, size_t len, uint32_t pos)
{
    (void)pos;
    relax_word *r = ud;
    r->hit |= strlen(r->term) == len && memcmp(r->term, term, len) == 0;
    return 0;
}

static void note_attempt(shard_slot *sl, const char *addr, const char *details);

static int coverage_check(search *s, uint64_t now);

static void slot_done(shard_slot *sl)
{
    search *s = sl->s;
    if (--s->pending == 0) {
        if (s->timer_on) uv_timer_stop(&s->htimer);
        finish_search(s);
    } else {
        coverage_check(s, uv_hrtime());   /* this answer may be the one the target waited for */
    }
}

/* ---- hedges and the coverage target (replicas.h) ---- */

/* The q-quantile of a replica's recent answered calls (0: fewer than 16). */
static uint64_t replica_quantile(const backend *b, double pct)
{
    const lat_window *w = &b->lat;
    if (w->n < 16) return 0;
    return pct == 95 ? w->p95_us : pct == 99 ? w->p99_us : pct == 50 ? w->p50_us
         : lat_quantile(w, pct / 100.0);
}

/* The shard's best replica's pct latency: what a call to it is expected to
 * take. The best, not the shard's mix: with one replica slow, the mix's p95
 * would be the slow one's latency and a hedge after it would come too late
 * to help. 0 = not known yet. */
static uint64_t best_quantile(const view *v, uint32_t shard, double pct)
{
    backend *const *base = &v->b[v->first[shard]];
    uint64_t best = 0;
    for (uint32_t r = 0; r < v->nrep[shard]; r++) {
        uint64_t q = replica_quantile(base[r], pct);
        if (q && (!best || q < best)) best = q;
    }
    return best;
}

/* When a call to shard i is slow enough to ask another replica: the best
 * replica's recent p95 (hedge-percentile), at least hedge-min-ms; 0 = not
 * known yet (16 calls). */
static uint64_t hedge_after_us(const coord_t *c, const view *v, uint32_t shard)
{
    if (c->o.hedge_percentile <= 0) return 0;
    uint64_t us = best_quantile(v, shard, c->o.hedge_percentile);
    if (!us) return 0;
    uint64_t min = (uint64_t)c->o.hedge_min_ms * 1000;
    return us > min ? us : min;
}

/* A straggler under a coverage target is left out after twice the best
 * replica's p95. */
static uint64_t cutoff_us(const coord_t *c, const view *v, uint32_t shard)
{
    uint64_t us = 2 * best_quantile(v, shard, 95);
    uint64_t min = (uint64_t)(c->o.hedge_min_ms > 0 ? c->o.hedge_min_ms : 1) * 2000;
    return us > min ? us : min;
}

static int may_hedge(const search *s, const shard_slot *sl)
{
    const coord_t *c = s->c;
    return sl->nlive == 1 && !sl->hedged && !s->req->no_hedge && !c->stopping &&
           s->v->nrep[sl->shard] > 1 && hedge_after_us(c, s->v, sl->shard) > 0;
}

static void on_htimer(uv_timer_t *t);

/* Arm the search's timer for its next hedge or cut-off, if any. checked:
 * the coverage target was just checked at this time (on_htimer), so a
 * cut-off already past needs no timer: nothing changes until a shard
 * answers, and slot_done checks again then. */
static void arm_htimer(search *s, int checked)
{
    coord_t *c = s->c;
    if (s->finished || s->pending == 0) return;
    uint64_t now = uv_hrtime(), next = UINT64_MAX;
    for (uint32_t i = 0; i < s->nslots; i++) {
        const shard_slot *sl = &s->slots[i];
        if (!sl->nlive) continue;
        if (may_hedge(s, sl)) {
            uint64_t t = sl->sent_ns + hedge_after_us(c, s->v, sl->shard) * 1000;
            if (t < next) next = t;
        }
        if (s->cov_target < 1) {
            uint64_t t = sl->sent_ns + cutoff_us(c, s->v, sl->shard) * 1000;
            if (t < next && !(checked && t <= now)) next = t;
        }
    }
    if (next == UINT64_MAX) return;
    if (!s->timer_on) {
        if (uv_timer_init(c->loop, &s->htimer) != 0) return;
        s->htimer.data = s;
        s->timer_on = 1;
        c->search_timers++;
    }
    /* at least 1 ms: libuv 1.44 runs a timer due again within the same
     * pass, before any I/O. A cut-off already past, its coverage not met
     * yet, once re-armed at 0 from on_htimer and the loop spun there
     * forever (a coordinator at 100% CPU that never answered again, found
     * after a gate's coverage-target test); a past cut-off is now left to
     * slot_done, and this floor stays for anything else due */
    uint64_t ms = next > now ? (next - now + 999999) / 1000000 : 1;
    uv_timer_start(&s->htimer, on_htimer, ms, 0);
}

static void on_htimer(uv_timer_t *t)
{
    search *s = t->data;
    coord_t *c = s->c;
    if (s->finished || s->pending == 0) return;
    uint64_t now = uv_hrtime();
    uint64_t now_ms = uv_now(c->loop);
    for (uint32_t i = 0; i < s->nslots; i++) {
        shard_slot *sl = &s->slots[i];
        if (!may_hedge(s, sl) || now < sl->sent_ns + hedge_after_us(c, s->v, sl->shard) * 1000) continue;
        sl->hedged = 1;          /* one hedge per slot, granted or not (a hedge left due re-arms the timer at once) */
        if (ms_until(s->deadline) < 1) continue;
        int trial;
        backend *alt = pick_replica(c, s->v, sl->shard, sl->live[0]->b, &trial);
        if (!alt) continue;
        if (!budget_take(&c->budget, now_ms)) {
            coord_metrics_retry_denied(c);
            continue;
        }
        if (start_shard_call(sl, alt, trial, 1) == 0) {
            s->hedged++;
            c->hedges++;
            alt->hedges++;
            coord_metrics_hedge(c, sl->shard);
        }
    }
    if (coverage_check(s, now)) return;
    arm_htimer(s, 1);
}

/* Under a coverage target: enough shards answered and every one still out
 * is a straggler past its cut-off - answer without them. Checked when the
 * search's timer fires and when a shard answers. 1 if the search finished. */
static int coverage_check(search *s, uint64_t now)
{
    coord_t *c = s->c;
    if (s->cov_target >= 1 || s->finished || s->pending == 0) return 0;
    uint32_t ok = 0, live = 0, late = 0;
    for (uint32_t i = 0; i < s->nslots; i++) {
        const shard_slot *sl = &s->slots[i];
        ok += !sl->nlive && sl->resp != NULL;
        if (sl->nlive) {
            live++;
            late += now >= sl->sent_ns + cutoff_us(c, s->v, sl->shard) * 1000;
        }
    }
    if (live && late == live && ok >= (uint32_t)ceil(s->cov_target * s->nslots - 1e-9)) {
        for (uint32_t i = 0; i < s->nslots; i++) {
            shard_slot *sl = &s->slots[i];
            if (!sl->nlive) continue;
            orphan_live(sl);
            sl->code = GRPC_STATUS_DEADLINE_EXCEEDED;
            sl->left_out = 1;
            char why[160];
            snprintf(why, sizeof why, "left out after %.1f ms: the coverage target %.2f was met "
                     "and this shard was slower than twice its p95", (double)(now - sl->sent_ns) / 1e6,
                     s->cov_target);
            note_attempt(sl, sl->b->addr, why);
        }
        if (s->ndegraded < 4) {
            char *d = fn_arena_alloc(&s->mem, 96);
            if (d) {
                snprintf(d, 96, "coverage target %.2f: %u slow shard%s left out", s->cov_target, live,
                         live == 1 ? "" : "s");
                s->degraded[s->ndegraded++] = d;
            }
        }
        s->pending -= live;
        if (s->pending == 0) {
            if (s->timer_on) uv_timer_stop(&s->htimer);
            finish_search(s);
            return 1;
        }
    }
    return 0;
}

/* Append "ADDR: details" (after "; then " for a retry) to sl->msg. */
static void note_attempt(shard_slot *sl, const char *addr, const char *details)
{
    size_t used = strlen(sl->msg);
    int w = snprintf(sl->msg + used, sizeof sl->msg - used, "%s%s: ", used ? "; then " : "", addr);
    if (w < 0 || (size_t)w >= sizeof sl->msg - used) return;   /* truncated: a message for people */
    used += (size_t)w;
    sl->detail_at = (uint16_t)used;
    snprintf(sl->msg + used, sizeof sl->msg - used, "%s", details);
}

static void search_maybe_free(search *s);

static void on_shard_done(void *ud, grpc_status_code code, const char *details,
                          ProtobufCMessage *resp)
{
    attempt *at = ud;
    shard_slot *sl = at->sl;
    search *s = sl->s;
    coord_t *c = s->c;
    backend *b = at->b;
    uint64_t us = (uv_hrtime() - at->t0_ns) / 1000;
    c->inflight_out--;
    s->outstanding--;
    if (b->rs.outstanding) b->rs.outstanding--;
    br_call_done(c, b, at->trial, code, details, s->shard_ms);
    /* a timeout is a latency too: the replica was at least that slow */
    if (code == GRPC_STATUS_OK || code == GRPC_STATUS_DEADLINE_EXCEEDED) rep_observe(&b->rs, (double)us);
    if (code == GRPC_STATUS_OK) lat_add(&b->lat, (uint32_t)(us > UINT32_MAX ? UINT32_MAX : us));
    coord_metrics_shard_call(c, b, code, us);
    if (at->orphan) {            /* the slot is answered or given up */
        search_maybe_free(s);
        return;
    }
    for (uint8_t i = 0; i < sl->nlive; i++)
        if (sl->live[i] == at) {
            sl->live[i] = sl->live[--sl->nlive];
            break;
        }
    if (code == GRPC_STATUS_OK) {
        sl->code = code;
        sl->b = b;
        sl->took_us = us;
        sl->resp = (Funnel__V1__ShardSearchResponse *)resp;
        if (at->hedge) c->hedge_wins++, coord_metrics_hedge_win(c, sl->shard);
        orphan_live(sl);
        if (sl->resp->shards && (sl->resp->shards != s->v->nshards ||
                                 sl->resp->shard != sl->shard) && !b->warned_mismatch) {
            b->warned_mismatch = 1;
            FN_WARN("%s is configured as shard %u of %u but says it is shard %u of %u",
                    b->addr, sl->shard, s->v->nshards, sl->resp->shard, sl->resp->shards);
        }
        slot_done(sl);
        return;
    }
    b->failures++;
    /* a replica without the search's generation (restarted on an older
     * one): another replica answers now, and it is loaded there */
    if (code == GRPC_STATUS_FAILED_PRECONDITION && *s->gen) gen_repair(c, b, s->gen);
    note_attempt(sl, b->addr, details && *details ? details : rpc_status_name(code));
    FN_DEBUG("request %s shard %u replica %s: %s %s", s->request_id, sl->shard, b->addr,
             rpc_status_name(code), details ? details : "");
    if (sl->nlive) return;       /* its hedge (or the first call) may still answer */
    sl->code = code;
    /* One retry on another replica that is not open, while time is left
     * and the retry budget allows (a sick cluster is not buried in retries). */
    if (retryable(code) && sl->tries < 3 && !c->stopping && ms_until(s->deadline) >= 1) {
        int t;
        backend *alt = pick_replica(c, s->v, sl->shard, b, &t);
        if (alt && !budget_take(&c->budget, uv_now(c->loop))) {
            coord_metrics_retry_denied(c);
            note_attempt(sl, alt->addr, "not retried: the retry budget is spent");
            alt = NULL;
        }
        if (alt) {
            coord_metrics_retry(c, sl->shard);
            if (start_shard_call(sl, alt, t, 0) == 0) {
                arm_htimer(s, 0);   /* the retry's own cut-off */
                return;
            }
            note_attempt(sl, alt->addr, "could not start the call");
            sl->code = GRPC_STATUS_INTERNAL;
        }
    }
    slot_done(sl);
}

/* ---- the response ---- */

static char *ar_strdup(fn_arena *a, const char *s) { return fn_arena_strdup(a, s); }

/* A shard's part of a global window: ceil(w x overprovision / shards). */
static uint32_t per_shard(uint32_t w, double ovp, uint32_t nshards)
{
    if (nshards <= 1) return w;
    double x = ceil((double)w * ovp / nshards);
    return x >= w ? w : (uint32_t)x;
}

static Funnel__V1__StageInfo *stage(fn_arena *a, const char *name, int ran, uint64_t time_us,
                                    uint64_t in, uint64_t out, const char *note)
{
    Funnel__V1__StageInfo *st = ar_alloc(a, sizeof *st);
    if (!st) return NULL;
    funnel__v1__stage_info__init(st);
    st->name = (char *)name;
    st->ran = ran;
    st->time_us = time_us;
    st->count_in = in;
    st->count_out = out;
    if (note) st->note = (char *)note;
    return st;
}

/* ---- the result page (page.h) ---- */

/* The page list of the first nlist ranked entries (st2's order) into s->pg.
 * The index's filter thresholds come from the shards (each sends its own;
 * they agree unless shards of two builds are mixed: the first answer's are
 * used). Returns 0 or -ENOMEM. */
static int result_page(search *s, fn_arena *a, const coord_stage2_out *st2, size_t nlist)
{
    coord_t *c = s->c;
    page_opts o;
    memset(&o, 0, sizeof o);
    o.safe = s->safe;
    o.complete = s->pg_complete;   /* build_response found it */
    for (uint32_t i = 0; i < s->nslots; i++) {
        const Funnel__V1__ShardSearchResponse *r = s->slots[i].resp;
        if (s->slots[i].code != GRPC_STATUS_OK || !r || !r->filter_model || !*r->filter_model) continue;
        o.have_scores = 1;
        o.threshold = r->filter_threshold;
        o.strict = r->filter_strict;
        s->filter_model = r->filter_model;
        s->pg_threshold = r->filter_threshold;
        s->pg_strict = r->filter_strict;
        break;
    }
    o.demote_by = c->o.page.demote_by ? c->o.page.demote_by : 20;
    o.collapse = !c->o.page.no_collapse && !s->req->keep_duplicates;
    o.near = idx_dupsig_near;
    o.sig_bytes = IDX_DUPSIG_BYTES;
    o.host_cap = s->req->host_cap ? s->req->host_cap : c->o.page.host_cap;
    o.block = c->o.page.block ? c->o.page.block : 10;
    s->pg_cap = o.host_cap;
    o.blend = !s->req->no_blend;
    o.rules = c->o.page.rules;
    o.nrules = c->o.page.nrules;
    const char **iv = ar_alloc(a, (s->nintent ? s->nintent : 1) * sizeof *iv);
    double *isc = ar_alloc(a, (s->nintent ? s->nintent : 1) * sizeof *isc);
    page_item *items = ar_alloc(a, (nlist ? nlist : 1) * sizeof *items);
    if (a->oom) return -ENOMEM;
    for (size_t i = 0; i < s->nintent; i++) {
        iv[i] = s->intent[i]->vertical;
        isc[i] = s->intent[i]->score;
    }
    o.intent_vertical = iv;
    o.intent_score = isc;
    o.nintent = s->nintent;
    for (size_t p = 0; p < nlist; p++) {
        uint32_t e = st2->order[p];
        const Funnel__V1__ShardHit *sh = s->mh[e];
        size_t hl;
        const char *h = page_url_host(sh->url, &hl);
        char *host = ar_alloc(a, hl + 1);
        if (!host) return -ENOMEM;
        for (size_t j = 0; j < hl; j++) host[j] = (char)tolower((unsigned char)h[j]);
        host[hl] = '\0';
        items[p] = (page_item){ .e = e, .rank = (uint32_t)p, .key = sh->key,
                                .vertical = sh->vertical ? sh->vertical : "", .host = host,
                                .fscore = sh->filter_score, .has_fs = sh->has_filter_score,
                                .sig = sh->dupsig.len == IDX_DUPSIG_BYTES ? sh->dupsig.data : NULL,
                                .rule = -1 };
    }
    return page_build(a, items, nlist, &o, &s->pg);
}

/* A page hit's result-page fields. Returns 0 or -ENOMEM. */
static int page_hit(search *s, fn_arena *a, const page_item *pi, Funnel__V1__Hit *h)
{
    h->vertical = (char *)pi->vertical;
    h->host = (char *)pi->host;
    h->slot_rule = pi->rule >= 0 ? (char *)s->c->o.page.rules[pi->rule].name : (char *)"main";
    if (pi->has_fs) {
        h->filter_score = pi->fscore;
        h->filter_action = (char *)page_action_name(pi->action);
    }
    size_t nd = 0;
    for (size_t d = 0; d < s->pg.ndrops; d++)
        nd += s->pg.drops[d].action == PAGE_COLLAPSED && s->pg.drops[d].rep == pi->e;
    if (!nd) return 0;
    h->duplicates = ar_alloc(a, nd * sizeof *h->duplicates);
    if (!h->duplicates) return -ENOMEM;
    for (size_t d = 0; d < s->pg.ndrops; d++)
        if (s->pg.drops[d].action == PAGE_COLLAPSED && s->pg.drops[d].rep == pi->e)
            h->duplicates[h->n_duplicates++] = s->mh[s->pg.drops[d].e]->id;
    return 0;
}

/* explain: every hit the page removed, demoted, folded or capped. */
static int page_dropped(search *s, fn_arena *a, Funnel__V1__SearchResponse *resp, const coord_stage2_out *st2)
{
    (void)st2;
    size_t n = s->pg.ndrops;
    if (!n) return 0;
    resp->dropped = ar_alloc(a, n * sizeof *resp->dropped);
    Funnel__V1__DroppedHit *v = ar_alloc(a, n * sizeof *v);
    if (a->oom) return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const page_drop *d = &s->pg.drops[i];
        Funnel__V1__DroppedHit *x = &v[i];
        funnel__v1__dropped_hit__init(x);
        x->id = s->mh[d->e]->id;
        x->shard = s->mshard[d->e];
        x->rank = d->rank + 1;
        x->action = (char *)page_action_name(d->action);
        x->filter_score = d->has_fs ? d->fscore : 0;
        char buf[600];
        switch (d->action) {
        case PAGE_REMOVED:
        case PAGE_DEMOTED:
            x->reason = "unsafe";
            snprintf(buf, sizeof buf, "filter_score %.4f >= %s %.4g (%s)", d->fscore,
                     d->action == PAGE_REMOVED ? "strict" : "threshold",
                     d->action == PAGE_REMOVED ? s->pg_strict : s->pg_threshold,
                     s->filter_model ? s->filter_model : "");
            break;
        case PAGE_COLLAPSED:
            x->reason = "duplicate";
            snprintf(buf, sizeof buf, "near-duplicate of %s (similarity %.3f)", s->mh[d->rep]->id, d->similarity);
            break;
        default:
            x->reason = "host_cap";
            snprintf(buf, sizeof buf, "more than %u hits of its host in every block of %u left", s->pg_cap,
                     s->c->o.page.block ? s->c->o.page.block : 10);
            break;
        }
        x->detail = ar_strdup(a, buf);
        resp->dropped[resp->n_dropped++] = x;
    }
    return a->oom ? -ENOMEM : 0;
}

/* The entries stage 2 looks at: the window, the whole merge for a
 * window-features request, none for a selection-features request. */
/* expand rm3 or synonyms without a model: the first prf_window entries of
 * the final order ranked by their expanded query's score (prf_scores, per
 * merged entry, from Shard/Rescore), best
 * first; an entry feedback did not score (its shard's call failed) goes
 * after the scored ones; ties keep the merge order. */
typedef struct exp_ent { double sc, s1; uint32_t e, pos; } exp_ent;

static int exp_cmp(const void *a, const void *b)
{
    const exp_ent *x = a, *y = b;
    int xn = isnan(x->sc), yn = isnan(y->sc);
    if (xn != yn) return xn - yn;
    if (!xn && x->sc != y->sc) return x->sc > y->sc ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static void expanded_order(search *s, coord_stage2_out *st2)
{
    size_t n = s->prf_window < s->got ? s->prf_window : s->got;
    exp_ent *v = ar_alloc(&s->mem, (n ? n : 1) * sizeof *v);
    if (!v) return;   /* out of memory: the merge order stays */
    for (size_t p = 0; p < n; p++)
        v[p] = (exp_ent){ s->prf_scores[st2->order[p]], st2->score[p], st2->order[p], (uint32_t)p };
    qsort(v, n, sizeof *v, exp_cmp);
    for (size_t p = 0; p < n; p++) {
        st2->order[p] = v[p].e;
        st2->score[p] = isnan(v[p].sc) ? v[p].s1 : v[p].sc;   /* an unscored entry keeps its own */
    }
}

static size_t stage2_window(const search *s)
{
    if (s->mode == FUNNEL__V1__FEATURE_MODE__FEATURES_SELECTION) return 0;
    if (s->mode == FUNNEL__V1__FEATURE_MODE__FEATURES_WINDOW) return s->got;
    return s->win[2] < s->got ? s->win[2] : s->got;
}

/* The exact merge of the shards' lists by stage-1 score, once: the first W
 * global ranks, W = the stage-2 window or the page's end, whichever is
 * further. Returns 0 or -ENOMEM. */
/* The exact merge of the answering shards' lists - their hits, or with
 * knn their nearest neighbours - into the first `want` global ranks:
 * (*hits)[i] and the shard it came from, (*shard)[i]; *got of them, *in the
 * entries the lists held. Returns 0 or -ENOMEM. */
static int merge_lists(search *s, int knn, size_t want, const Funnel__V1__ShardHit ***hits, uint32_t **shard,
                       size_t *got, uint64_t *in)
{
    fn_arena *a = &s->mem;
    uint32_t n = s->nslots;
    coord_merge_list *lists = ar_alloc(a, n * sizeof *lists);
    uint32_t **perms = ar_alloc(a, n * sizeof *perms);
    if (a->oom) return -ENOMEM;
    *in = 0;
    for (uint32_t i = 0; i < n; i++) {
        shard_slot *sl = &s->slots[i];
        if (sl->code != GRPC_STATUS_OK || !sl->resp) continue;
        Funnel__V1__ShardHit *const *l = knn ? sl->resp->knn : sl->resp->hits;
        size_t nl = knn ? sl->resp->n_knn : sl->resp->n_hits;
        *in += nl;
        coord_merge_item *items = ar_alloc(a, (nl ? nl : 1) * sizeof *items);
        if (!items) return -ENOMEM;
        for (size_t h = 0; h < nl; h++) items[h] = (coord_merge_item){ l[h]->score, l[h]->key };
        lists[i] = (coord_merge_list){ items, nl };
        /* Shards return sorted lists; a buggy one must not break exactness. */
        if (!coord_merge_is_sorted(items, nl)) {
            if (!sl->b->warned_mismatch) {
                sl->b->warned_mismatch = 1;
                FN_WARN("%s returned hits out of order; sorting them", sl->b->addr);
            }
            perms[i] = ar_alloc(a, nl * sizeof *perms[i]);
            if (!perms[i]) return -ENOMEM;
            for (size_t h = 0; h < nl; h++) perms[i][h] = (uint32_t)h;
            if (coord_merge_sort(items, perms[i], nl)) return -ENOMEM;
        }
    }
    coord_merge_ref *refs = ar_alloc(a, (want ? want : 1) * sizeof *refs);
    *hits = ar_alloc(a, (want ? want : 1) * sizeof **hits);
    *shard = ar_alloc(a, (want ? want : 1) * sizeof **shard);
    if (a->oom) return -ENOMEM;
    int merr = 0;
    *got = coord_merge(lists, n, 0, want, refs, &merr);
    if (merr) return merr;
    for (size_t i = 0; i < *got; i++) {
        shard_slot *sl = &s->slots[refs[i].list];
        uint32_t pos = perms[refs[i].list] ? perms[refs[i].list][refs[i].pos] : refs[i].pos;
        (*hits)[i] = knn ? sl->resp->knn[pos] : sl->resp->hits[pos];
        (*shard)[i] = sl->shard;
    }
    return 0;
}

static int merge_window(search *s)
{
    if (s->merged) return 0;
    uint64_t t_merge = uv_hrtime();
    size_t page_end = (size_t)(s->req->page + 1) * s->k;
    /* a window-features request gets the real stage-2 window (its first k) */
    size_t want = s->mode == FUNNEL__V1__FEATURE_MODE__FEATURES_SELECTION ? s->k
                : s->mode ? (s->k < s->win[2] ? s->k : s->win[2])
                : (s->win[2] > page_end ? s->win[2] : page_end);
    /* the result page's stages may drop hits: room past the page */
    if (s->page_on) {
        size_t need = page_list_need(page_end, s->c->o.page.rules, s->c->o.page.nrules);
        if (want < need) want = need;
        if (want < s->list_cap) want = s->list_cap;   /* a deeper fetch */
    }
    int rc = merge_lists(s, 0, want, &s->mh, &s->mshard, &s->got, &s->merged_in);
    if (rc) return rc;
    s->merge_us = (uv_hrtime() - t_merge) / 1000;
    s->merged = 1;
    return 0;
}

/* The page of a request with a vector (docs/vectors.md): the global k-NN
 * list (the shards' lists merged exactly), alone or fused with the final
 * text ranking (coordinator/fusion.h). Returns 0 or -ENOMEM. */
static int vector_page(search *s, fn_arena *a, Funnel__V1__SearchResponse *resp, const coord_stage2_out *st2)
{
    int deadline = 0;
    for (uint32_t i = 0; i < s->nslots; i++)
        if (s->slots[i].code == GRPC_STATUS_OK && s->slots[i].resp) deadline |= s->slots[i].resp->knn_deadline;
    size_t kk = s->sreq.knn_k, nv;
    uint64_t vin;
    const Funnel__V1__ShardHit **vh;
    uint32_t *vshard;
    int rc = merge_lists(s, 1, kk, &vh, &vshard, &nv, &vin);
    if (rc) return rc;
    coord_fuse_in *vin_l = ar_alloc(a, (nv ? nv : 1) * sizeof *vin_l);
    if (!vin_l) return -ENOMEM;
    for (size_t i = 0; i < nv; i++) vin_l[i] = (coord_fuse_in){ vh[i]->key, vh[i]->score };
    /* the text ranking as it stands after stage 2 (or the merge) */
    size_t nt = s->vec_only ? 0 : s->got < kk ? s->got : kk;
    coord_fuse_in *tin = ar_alloc(a, (nt ? nt : 1) * sizeof *tin);
    if (!tin) return -ENOMEM;
    for (size_t r = 0; r < nt; r++) tin[r] = (coord_fuse_in){ s->mh[st2->order[r]]->key, st2->score[r] };
    coord_fused *f = NULL;
    size_t nf = 0;
    int method = s->req->fusion == FUNNEL__V1__FUSION__FUSION_WEIGHTED ? COORD_FUSE_WEIGHTED : COORD_FUSE_RRF;
    double w = s->req->vector_weight > 0 ? s->req->vector_weight : 0.5;
    if (s->vec_only) {
        /* the similarity order itself */
        if (!(f = malloc((nv ? nv : 1) * sizeof *f))) return -ENOMEM;
        for (size_t i = 0; i < nv; i++) f[i] = (coord_fused){ vh[i]->key, vh[i]->score, -1, (int32_t)i };
        nf = nv;
    } else if (coord_fuse(tin, nt, vin_l, nv, method, w, &f, &nf)) {
        return -ENOMEM;
    }
    size_t page_end = (size_t)(s->req->page + 1) * s->k;
    size_t from = (size_t)s->req->page * s->k, to = page_end < nf ? page_end : nf;
    size_t npage = to > from ? to - from : 0;
    resp->hits = ar_alloc(a, (npage ? npage : 1) * sizeof *resp->hits);
    Funnel__V1__Hit *hits = ar_alloc(a, (npage ? npage : 1) * sizeof *hits);
    s->page_doc = ar_alloc(a, (npage ? npage : 1) * sizeof *s->page_doc);
    s->page_key = ar_alloc(a, (npage ? npage : 1) * sizeof *s->page_key);
    if (a->oom) { free(f); return -ENOMEM; }
    for (size_t p = from; p < to; p++) {
        const coord_fused *e = &f[p];
        Funnel__V1__Hit *h = &hits[p - from];
        funnel__v1__hit__init(h);
        const Funnel__V1__ShardHit *sh = e->t >= 0 ? s->mh[st2->order[e->t]] : vh[e->v];
        s->page_doc[p - from] = sh->doc;
        s->page_key[p - from] = sh->key;
        h->id = sh->id;
        h->title = sh->title;
        h->url = sh->url;
        h->shard = e->t >= 0 ? s->mshard[st2->order[e->t]] : vshard[e->v];
        h->score = e->score;
        h->from_text = e->t >= 0;
        h->from_vector = e->v >= 0;
        if (e->v >= 0) h->similarity = vh[e->v]->score;
        resp->hits[p - from] = h;
    }
    resp->n_hits = npage;
    resp->explained_hits = 0;
    free(f);
    snprintf(s->vec_note, sizeof s->vec_note, "vector: %zu nearest of %" PRIu64 " from the shards (%s%s)%s%s",
             nv, vin, s->sreq.knn_exact ? "exact" : "HNSW",
             s->sreq.knn_exact ? "" : s->sreq.ef ? ", ef as asked" : ", ef max(knn_k, 64)",
             s->vec_only ? "" : method == COORD_FUSE_RRF ? "; fused with the text ranking by RRF"
                                                          : "; fused with the text ranking, weighted",
             deadline ? "; a shard's vector search stopped at its deadline (partial)" : "");
    if (deadline) resp->partial = 1;
    return 0;
}

/* Fill resp for s. Returns 0, or -ENOMEM. */
static int build_response(search *s, fn_arena *a, Funnel__V1__SearchResponse *resp,
                          Funnel__V1__Coverage *cov)
{
    coord_t *c = s->c;
    uint32_t n = s->nslots;
    uint64_t docs_total = 0, sel_time = 0;
    int have_terms = 0, features_ok = 1;

    funnel__v1__search_response__init(resp);
    funnel__v1__coverage__init(cov);
    resp->coverage = cov;
    cov->shards_asked = n;
    resp->total_matches_exact = 1;   /* until a shard's count is a lower bound */

    resp->failures = ar_alloc(a, n * sizeof *resp->failures);
    if (a->oom) return -ENOMEM;

    for (uint32_t i = 0; i < n; i++) {
        shard_slot *sl = &s->slots[i];
        if (sl->code != GRPC_STATUS_OK || !sl->resp) {
            Funnel__V1__ShardFailure *f = ar_alloc(a, sizeof *f);
            if (!f) return -ENOMEM;
            funnel__v1__shard_failure__init(f);
            f->shard = sl->shard;
            f->address = (char *)(sl->b ? sl->b->addr : "");
            f->status = (char *)rpc_status_name(sl->code);
            f->message = sl->msg;
            resp->failures[resp->n_failures++] = f;
            cov->shards_failed++;
            continue;
        }
        const Funnel__V1__ShardSearchResponse *r = sl->resp;
        cov->shards_answered++;
        if (r->n_feature_names && !coord_features_match(r->feature_names, r->n_feature_names)) {
            features_ok = 0;
            if (!sl->b->warned_mismatch) {
                sl->b->warned_mismatch = 1;
                FN_WARN("%s sends features this coordinator does not know (another build?): "
                        "stage 2 will not run on them", sl->b->addr);
            }
        }
        for (size_t h = 0; h < r->n_hits && features_ok; h++)
            if (s->sreq.features && r->hits[h]->n_features != r->n_feature_names) features_ok = 0;
        cov->docs_searched += r->docs;
        if (!docs_total) docs_total = r->docs_total;
        resp->total_matches += r->matches;
        resp->total_matches_exact &= r->matches_exact;
        if (r->time_us > sel_time) sel_time = r->time_us;
        if (!have_terms) {
            have_terms = 1;
            resp->n_terms = r->n_terms;
            resp->terms = r->terms;
        }
    }
    cov->docs_total = docs_total;
    resp->partial = cov->shards_failed > 0;

    int rc = merge_window(s);
    if (rc) return rc;
    const Funnel__V1__ShardHit **mh = s->mh;
    const uint32_t *mshard = s->mshard;
    size_t got = s->got;
    uint64_t merged_in = s->merged_in, merge_us = s->merge_us;
    size_t page_end = (size_t)(s->req->page + 1) * s->k;

    /* stage 2 over the window (none for a selection-features request) */
    const rank_ranker *model = s->req->skip_models || s->mode ? NULL : s->model;
    size_t window = stage2_window(s);
    int want_rows = (model || s->req->explain || s->mode == FUNNEL__V1__FEATURE_MODE__FEATURES_WINDOW ||
                     (c->implog && !s->mode)) && features_ok;
    coord_stage2_out st2;
    uint8_t *team = NULL;   /* an interleaving arm: per final position, who placed it */
    if (s->xp.arm && model)
        rc = coord_exp_stage2(a, &s->xp, mh, got, window, s->prf_scores, s->intent, s->nintent, want_rows, &st2,
                              &team);
    else
        rc = coord_stage2(a, mh, got, window, s->prf_scores, s->intent, s->nintent, model, want_rows, &st2);
    if (rc) return rc;
    if (s->xp.arm) {
        resp->experiment = (char *)s->xp.exp->name;
        resp->arm = (char *)s->xp.arm->name;
    }
    if (model && !st2.ran && !features_ok)
        snprintf(st2.acct.note, sizeof st2.acct.note,
                 "not run: the shards' features do not match this coordinator's (%s); merge order kept",
                 rank_ranker_describe(model));
    else if (!model && !s->mode && s->expand && s->prf_scores) {
        expanded_order(s, &st2);
        snprintf(st2.acct.note, sizeof st2.acct.note, "no model%s: the first %zu ranked by the %s expanded "
                 "query (expand %s)", s->req->skip_models ? " (skip_models)" : "", s->prf_window,
                 s->syn ? "synonym" : "RM3", s->syn ? "synonyms" : "rm3");
    } else if (!model && !s->mode)
        snprintf(st2.acct.note, sizeof st2.acct.note, "no model%s: merge order kept%s",
                 s->req->skip_models ? " (skip_models)" : "",
                 s->expand ? " (expand: no rescoring scores)" : "");
    else if (s->mode)
        snprintf(st2.acct.note, sizeof st2.acct.note, "features request: merge order kept");

    int stage1_ran = 0;
    for (uint32_t i = 0; i < n; i++)
        if (s->slots[i].resp && s->slots[i].resp->n_stages > 1 && s->slots[i].resp->stages[1]->ran)
            stage1_ran = 1;
    if (s->vec_learned)
        snprintf(s->vec_note, sizeof s->vec_note, "vector: the vec_sim feature only (fusion learned), no neighbours");
    if (s->req->n_vector && !s->vec_learned) {
        if ((rc = vector_page(s, a, resp, &st2))) return rc;
        goto stages;
    }
    /* the result page (page.h): filter, diversity, blender over the ranked
     * list; the page is a slice of it (a features request returns its k
     * candidates instead, as ranked) */
    /* the merge is exact as deep as the shortest list a shard filled up to
     * its k (list_cap); when no shard filled it, every hit is here */
    size_t nlist = got;
    int filled = 0;
    for (uint32_t i = 0; i < n; i++)
        if (s->slots[i].code == GRPC_STATUS_OK && s->slots[i].resp && s->slots[i].resp->n_hits >= s->sreq.k) filled = 1;
    if (s->page_on && s->list_cap && filled && nlist > s->list_cap) nlist = s->list_cap;
    s->pg_complete = !filled;   /* the list is every hit there is */
    if (s->page_on) {
        if ((rc = result_page(s, a, &st2, nlist))) return rc;
        /* the page reaches past what this list settles (its stages dropped
         * many): without a re-ranker a deeper list is cheap, so ask for one
         * (at most 3 times, 4x each, up to max-window) */
        if (s->list_cap && s->pg.settled < page_end && !s->pg_complete && s->deepen < 3 &&
            s->sreq.k < c->o.limits.max_window) {
            s->want_deeper = 1;
            return 0;
        }
    }
    size_t from = s->mode ? 0 : (size_t)s->req->page * s->k;
    size_t avail = s->page_on ? s->pg.n : got;
    size_t to = s->mode ? got : (page_end < avail ? page_end : avail);
    size_t npage = to > from ? to - from : 0;
    resp->hits = ar_alloc(a, (npage ? npage : 1) * sizeof *resp->hits);
    Funnel__V1__Hit *hits = ar_alloc(a, (npage ? npage : 1) * sizeof *hits);
    s->page_e = ar_alloc(a, (npage ? npage : 1) * sizeof *s->page_e);
    s->page_doc = ar_alloc(a, (npage ? npage : 1) * sizeof *s->page_doc);
    s->page_key = ar_alloc(a, (npage ? npage : 1) * sizeof *s->page_key);
    if (a->oom) return -ENOMEM;
    /* explain is bounded: details for the first max_explain_hits global
     * ranks only (each shard explained its own top that many) */
    size_t nexpl = 0;
    if (s->req->explain && from < c->o.limits.max_explain_hits) {
        nexpl = c->o.limits.max_explain_hits - from;
        if (nexpl > npage) nexpl = npage;
    }
    resp->explained_hits = (uint32_t)nexpl;
    size_t nfeat = s->mode == FUNNEL__V1__FEATURE_MODE__FEATURES_SELECTION ? idx_features_cheap()
                   : st2.rows ? st2.ncols : 0;
    if (nfeat && (s->mode || nexpl)) {
        size_t nreg;
        const idx_feature_def *reg = idx_features(&nreg);
        resp->feature_names = ar_alloc(a, nfeat * sizeof *resp->feature_names);
        if (!resp->feature_names) return -ENOMEM;
        for (size_t f = 0; f < nfeat; f++) resp->feature_names[f] = (char *)reg[f].name;
        resp->n_feature_names = nfeat;
    }
    for (size_t q = from; q < to; q++) {
        /* q: the place on the page list; p: the hit's rank after stage 2 */
        const page_item *pi = s->page_on ? &s->pg.list[q] : NULL;
        size_t p = pi ? pi->rank : q;
        size_t e = st2.order[p];
        const Funnel__V1__ShardHit *sh = mh[e];
        Funnel__V1__Hit *h = &hits[q - from];
        funnel__v1__hit__init(h);
        s->page_e[q - from] = (uint32_t)e;
        s->page_doc[q - from] = sh->doc;
        s->page_key[q - from] = sh->key;
        h->id = sh->id;
        h->title = sh->title;
        h->url = sh->url;
        h->score = st2.score[p];
        h->shard = mshard[e];
        if (team) h->team = (char *)coord_team_name(team[p]);
        if (pi && (rc = page_hit(s, a, pi, h))) return rc;
        int in_window = p < st2.window && st2.ran;
        int expl = q - from < nexpl;
        /* the score at every stage that ran; with explain the others too */
        size_t ns = 0, cap = 3;
        h->stages = ar_alloc(a, cap * sizeof *h->stages);
        Funnel__V1__StageScore *ss = ar_alloc(a, cap * sizeof *ss);
        if (a->oom) return -ENOMEM;
        const char *names[] = { "selection", "stage1", "stage2" };
        /* a shard that reports no stages (an older build) sent its selection
         * score as the score */
        const Funnel__V1__ShardSearchResponse *sr = s->slots[mshard[e]].resp;   /* slot i = shard i */
        double sel_score = sr->n_stages ? sh->selection_score : sh->score;
        double scores[] = { sel_score, sh->stage1_score, st2.score[p] };
        int ran[] = { 1, stage1_ran, in_window };
        for (size_t j = 0; j < 3; j++) {
            if (!ran[j] && !expl) continue;
            funnel__v1__stage_score__init(&ss[ns]);
            ss[ns].stage = (char *)names[j];
            ss[ns].ran = ran[j];
            ss[ns].score = ran[j] ? scores[j] : 0.0;
            h->stages[ns] = &ss[ns];
            ns++;
        }
        h->n_stages = ns;
        if (expl) {
            h->n_terms = sh->n_terms;
            h->terms = sh->terms;
        }
        if (resp->n_feature_names && (s->mode || expl)) {
            if (s->mode == FUNNEL__V1__FEATURE_MODE__FEATURES_SELECTION) {
                h->features = sh->features;
                h->n_features = sh->n_features < nfeat ? sh->n_features : nfeat;
            } else if (st2.rows) {
                h->features = st2.rows + e * st2.ncols;
                h->n_features = st2.ncols;
            }
        }
        resp->hits[q - from] = h;
    }
    resp->n_hits = npage;
    if (s->page_on && s->req->explain && (rc = page_dropped(s, a, resp, &st2))) return rc;
    if (c->implog && !s->mode && npage) {
        /* the page as shown, with each hit's stage-2 features (engagement
         * loop); written by implog_page once the page has its ids */
        s->log.sc = ar_alloc(a, npage * sizeof *s->log.sc);
        s->log.rows = ar_alloc(a, npage * sizeof *s->log.rows);
        if (a->oom) return -ENOMEM;
        for (size_t i = 0; i < npage; i++) {
            s->log.sc[i] = resp->hits[i]->score;
            s->log.rows[i] = st2.rows ? st2.rows + (size_t)s->page_e[i] * st2.ncols : NULL;
        }
        s->log.n = npage;
        s->log.ncols = st2.rows ? st2.ncols : 0;
        s->log.rank0 = (uint32_t)from + 1;
    }

stages:;
    /* Funnel order: selection, stage1 (shards), merge, feedback, stage2, filter, diversity, blender. */
    uint64_t sel_out = 0, s1_in = 0, s1_out = 0, s1_time = 0, fb_time = 0;
    const char *s1_note = "";
    for (uint32_t i = 0; i < n; i++) {
        const Funnel__V1__ShardSearchResponse *r = s->slots[i].resp;
        if (!r || s->slots[i].code != GRPC_STATUS_OK) continue;
        if (r->n_stages < 2) {   /* an older shard: its matches were its candidates */
            sel_out += r->matches;
            continue;
        }
        sel_out += r->stages[0]->count_out;
        s1_in += r->stages[1]->count_in;
        s1_out += r->stages[1]->count_out;
        if (r->stages[1]->time_us > s1_time) s1_time = r->stages[1]->time_us;
        if (!*s1_note && r->stages[1]->note) s1_note = r->stages[1]->note;
        /* the shards' part of feedback: their candidates' term vectors */
        if (r->n_stages > 2 && r->stages[2]->name && !strcmp(r->stages[2]->name, "feedback") &&
            r->stages[2]->time_us > fb_time)
            fb_time = r->stages[2]->time_us;
    }
    resp->stages = ar_alloc(a, 9 * sizeof *resp->stages);
    if (!resp->stages) return -ENOMEM;
    size_t nst = 0;
    resp->stages[nst++] = stage(a, "analyze", 1, s->analyze_us, 1, 1, analyze_note(s, a));
    const size_t shard_stage0 = nst;   /* selection, stage1: the shards' stages */
    resp->stages[nst++] = stage(a, "selection", 1, sel_time, cov->docs_searched, sel_out,
                                "BM25F + static signals on the shards");
    if (!*s1_note) s1_note = "no model reported by the shards: selection order kept";
    resp->stages[nst++] = stage(a, "stage1", stage1_ran, s1_time, s1_in, s1_out, s1_note);
    resp->stages[nst++] = stage(a, "merge", 1, merge_us, merged_in, got,
                                s->vec_note[0] ? ar_strdup(a, s->vec_note) : NULL);
    resp->stages[nst++] = stage(a, "feedback", s->prf_ran, s->prf_us + fb_time, s->prf_window, s->prf_scored,
                                s->prf_note[0] ? ar_strdup(a, s->prf_note)
                                : "not needed: neither the stage-2 model nor the request uses prf_rm3");
    resp->stages[nst++] = stage(a, "stage2", st2.ran, st2.acct.time_us, st2.acct.count_in,
                                st2.acct.count_out, ar_strdup(a, st2.acct.note));
    if (s->page_on) {
        const rank_stage_acct *pa[] = { &s->pg.filter, &s->pg.diversity, &s->pg.blender };
        for (size_t i = 0; i < 3; i++)
            resp->stages[nst++] = stage(a, pa[i]->name, pa[i]->ran, pa[i]->time_us, pa[i]->count_in,
                                        pa[i]->count_out, ar_strdup(a, pa[i]->note));
    } else {
        const char *why = s->mode ? "features request: not run" : "vector page: not run";
        resp->stages[nst++] = stage(a, "filter", 0, 0, 0, 0, why);
        resp->stages[nst++] = stage(a, "diversity", 0, 0, 0, 0, why);
        resp->stages[nst++] = stage(a, "blender", 0, 0, 0, 0, why);
    }
    if (a->oom) return -ENOMEM;
    resp->n_stages = nst;
    if (s->req->explain) {
        /* the shard stages, shard by shard */
        for (int st = 0; st < 2; st++) {
            Funnel__V1__StageInfo *si = resp->stages[shard_stage0 + (size_t)st];
            si->shards = ar_alloc(a, n * sizeof *si->shards);
            Funnel__V1__ShardStage *ps = ar_alloc(a, n * sizeof *ps);
            if (a->oom) return -ENOMEM;
            for (uint32_t i = 0; i < n; i++) {
                const Funnel__V1__ShardSearchResponse *r = s->slots[i].resp;
                if (!r || s->slots[i].code != GRPC_STATUS_OK || r->n_stages < 2) continue;
                Funnel__V1__ShardStage *x = &ps[si->n_shards];
                funnel__v1__shard_stage__init(x);
                x->shard = s->slots[i].shard;
                x->time_us = r->stages[st]->time_us;
                x->count_in = r->stages[st]->count_in;
                x->count_out = r->stages[st]->count_out;
                si->shards[si->n_shards++] = x;
            }
        }
    }
    resp->request_id = (char *)s->request_id;
    resp->original_query = s->req->query;
    resp->rewritten_query = (char *)s->qtext;
    resp->corrections = s->fixes;
    resp->n_corrections = s->nfixes;
    if (s->did_you_mean) resp->did_you_mean = (char *)s->did_you_mean;
    resp->intent = s->intent;
    resp->n_intent = s->nintent;
    resp->relaxed_terms = (char **)s->relaxed;
    resp->n_relaxed_terms = s->nrelaxed;
    return 0;
}

/* Query intent (funnel intent train; --intent-model): every vertical's
 * probability for the text searched, most probable first (ties: the model's
 * order). 0 or -ENOMEM. */
static int intent_step(coord_t *c, search *s)
{
    /* a candidate_model search uses the staged intent model when there is one */
    intent_model_t *im = s->req->candidate_model && c->intent_cand ? c->intent_cand : c->intent;
    if (!im || fn_query_is_blank(s->qtext)) return 0;
    const char *const *names;
    size_t n;
    intent_model_verticals(im, &names, &n);
    double *sc = ar_alloc(&s->mem, (n ? n : 1) * sizeof *sc);
    s->intent = ar_alloc(&s->mem, (n ? n : 1) * sizeof *s->intent);
    Funnel__V1__IntentScore *m = ar_alloc(&s->mem, (n ? n : 1) * sizeof *m);
    if (!sc || !s->intent || !m) return -ENOMEM;
    if (intent_predict(im, s->qtext, strlen(s->qtext), sc, n) < 0) return 0;
    for (size_t i = 0; i < n; i++) {
        funnel__v1__intent_score__init(&m[i]);
        /* copied: a push may replace the model before this search ends */
        if (!(m[i].vertical = ar_strdup(&s->mem, names[i]))) return -ENOMEM;
        m[i].score = sc[i];
        size_t j = i;   /* insertion by score, stable */
        while (j > 0 && s->intent[j - 1]->score < sc[i]) {
            s->intent[j] = s->intent[j - 1];
            j--;
        }
        s->intent[j] = &m[i];
    }
    s->nintent = n;
    return 0;
}

/* Spelling (docs/query-language.md "Spelling"): with a dictionary and the
 * request's spell mode not OFF, the words found in no document (and in no
 * word list) are corrected. AUTO searches the corrected text, SUGGEST only
 * offers it (did_you_mean). Everything lives in s->mem. 0 or -ENOMEM. */
static int spell_step(coord_t *c, search *s)
{
    const Funnel__V1__SearchRequest *req = s->req;
    s->qtext = req->query;
    if (!c->spell || req->spell == FUNNEL__V1__SPELL_MODE__SPELL_OFF || fn_query_is_blank(req->query)) return 0;
    spell_opts so = { 0, c->o.spell_min_score };
    spell_result sr;
    fn_errbuf eb;
    int rc = spell_correct(c->spell, req->query, strlen(req->query), &so, &sr, &eb);
    if (rc) {
        spell_result_free(&sr);
        return rc == -ENOMEM ? rc : 0;   /* FN_ELIMIT: longer than validation allows; searched as written */
    }
    if (sr.nfix) {
        char *text = fn_arena_strndup(&s->mem, sr.text, sr.text_len);
        s->fixes = fn_arena_alloc(&s->mem, sr.nfix * sizeof *s->fixes);
        Funnel__V1__SpellCorrection *m = fn_arena_alloc(&s->mem, sr.nfix * sizeof *m);
        if (!text || !s->fixes || !m) {
            spell_result_free(&sr);
            return -ENOMEM;
        }
        for (size_t i = 0; i < sr.nfix; i++) {
            funnel__v1__spell_correction__init(&m[i]);
            m[i].from = fn_arena_strdup(&s->mem, sr.fix[i].from);
            m[i].to = fn_arena_strdup(&s->mem, sr.fix[i].to);
            if (!m[i].from || !m[i].to) {
                spell_result_free(&sr);
                return -ENOMEM;
            }
            m[i].offset = (uint32_t)sr.fix[i].offset;
            m[i].distance = (uint32_t)sr.fix[i].distance;
            m[i].score = sr.fix[i].score;
            s->fixes[i] = &m[i];
        }
        s->nfixes = sr.nfix;
        if (req->spell == FUNNEL__V1__SPELL_MODE__SPELL_SUGGEST) s->did_you_mean = text;
        else s->qtext = text;
    }
    spell_result_free(&sr);
    return 0;
}

/* The "analyze" stage's note: every rewrite of the query, in order - the
 * parsed tree of the text searched, corrections, relaxations, expansion. */
static const char *analyze_note(const search *s, fn_arena *a)
{
    const Funnel__V1__SearchRequest *req = s->req;
    char buf[1024];
    size_t o = 0;
#define NOTE(...) do { if (o < sizeof buf) o += (size_t)snprintf(buf + o, sizeof buf - o, __VA_ARGS__); } while (0)
    if (fn_query_is_blank(s->qtext)) {
        NOTE("no text (vector only)");
    } else if (req->plain_text) {
        NOTE("plain text%s", req->all_terms ? ", all words" : "");
    } else if (s->parsed) {
        NOTE("parsed: %s%s", s->parsed, s->bag ? " (bag of words)" : "");
    }
    for (size_t i = 0; i < s->nfixes; i++)
        NOTE("; %s %s -> %s", s->did_you_mean ? "did you mean" : "corrected", s->fixes[i]->from, s->fixes[i]->to);
    for (size_t i = 0; i < s->nrelaxed; i++) NOTE("; relaxed: dropped %s", s->relaxed[i]);
    if (s->expand) NOTE("; expand %s", s->syn ? "synonyms" : "rm3");
    if (s->nintent) NOTE("; intent %s %.3f", s->intent[0]->vertical, s->intent[0]->score);
#undef NOTE
    return ar_strdup(a, buf);
}

static void free_search_now(search *s)
{
    /* the shard replies were unpacked into mem: one pass frees them */
    int big = fn_arena_held(&s->mem) > (4u << 20);
    coord_t *c = s->c;
    rank_ranker_unref(s->model);
    view_unref(s->v);
    fn_arena_free(&s->mem);
    free(s);
    /* its memory back to the system after the run of large ones (fn_memtimer.h) */
    if (big && !c->stopping) fn_mem_timer_large(&c->trim);
}

static void on_htimer_closed(uv_handle_t *h)
{
    search *s = h->data;
    coord_t *c = s->c;
    s->timer_on = 0;
    c->search_timers--;
    search_maybe_free(s);
    maybe_finish_stop(c);
}

/* Free s once it is replied to, its cancelled calls are back (their
 * replies unpack into its arena) and its timer is closed. */
static void search_maybe_free(search *s)
{
    if (!s->finished || s->outstanding) return;
    if (s->timer_on) {
        if (!uv_is_closing((uv_handle_t *)&s->htimer)) uv_close((uv_handle_t *)&s->htimer, on_htimer_closed);
        return;
    }
    free_search_now(s);
}

static void free_search(search *s)
{
    s->finished = 1;
    search_maybe_free(s);
}

/* ---- pseudo-relevance feedback: rescoring the window (coordinator/prf.h) ---- */

typedef struct prf_leg {
    search *s;
    shard_slot *sl;
    size_t n;
    uint32_t *entry;             /* merged entries this shard scores */
    Funnel__V1__ShardRescoreRequest req;
} prf_leg;

/* The entries of ents[0, n) (merged entries; NULL: 0..n-1) that shard sl
 * holds: their positions in ents (*pos), documents and keys, as a second-
 * round call to that shard names them. Returns how many (0: none, or out
 * of memory: a->oom). */
static size_t shard_share(search *s, fn_arena *a, const shard_slot *sl, const uint32_t *ents, size_t n,
                          uint32_t **pos, uint32_t **docs, uint64_t **keys)
{
    size_t cnt = 0;
    for (size_t j = 0; j < n; j++) cnt += s->mshard[ents ? ents[j] : j] == sl->shard;
    if (!cnt) return 0;
    *pos = ar_alloc(a, cnt * sizeof **pos);
    *docs = ar_alloc(a, cnt * sizeof **docs);
    *keys = ar_alloc(a, cnt * sizeof **keys);
    if (a->oom) return 0;
    size_t m = 0;
    for (size_t j = 0; j < n; j++) {
        size_t e = ents ? ents[j] : j;
        if (s->mshard[e] != sl->shard) continue;
        (*pos)[m] = (uint32_t)j;
        (*docs)[m] = s->mh[e]->doc;
        (*keys)[m] = s->mh[e]->key;
        m++;
    }
    return m;
}

static void prf_note_add(search *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void prf_note_add(search *s, const char *fmt, ...)
{
    size_t used = strlen(s->prf_note);
    if (used + 1 >= sizeof s->prf_note) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->prf_note + used, sizeof s->prf_note - used, fmt, ap);
    va_end(ap);
}

static void on_rescore_done(void *ud, grpc_status_code code, const char *details, ProtobufCMessage *m)
{
    prf_leg *leg = ud;
    search *s = leg->s;
    coord_t *c = s->c;
    c->inflight_out--;
    const Funnel__V1__ShardRescoreResponse *r = (const Funnel__V1__ShardRescoreResponse *)m;
    if (code == GRPC_STATUS_OK && r && r->n_scores == leg->n) {
        for (size_t j = 0; j < leg->n; j++) s->prf_scores[leg->entry[j]] = r->scores[j];
        s->prf_scored += leg->n;
    } else {
        /* its documents keep NaN: the model sees a missing value, the page is not lost */
        const char *why = code == GRPC_STATUS_OK ? "wrong number of scores"
                        : details && *details ? details : rpc_status_name(code);
        prf_note_add(s, "; shard %u (%s): %s: %s", leg->sl->shard, leg->sl->b->addr,
                     rpc_status_name(code), why);
        FN_DEBUG("feedback rescoring on %s: %s %s", leg->sl->b->addr, rpc_status_name(code), why);
    }
    if (--s->prf_pending == 0) {
        s->prf = PRF_DONE;
        s->prf_us = (uv_hrtime() - s->prf_t0) / 1000;
        finish_search(s);
    }
}

/* After the shards answered with feedback: merge, expand the query, ask
 * each shard that holds window documents to score them for it. Returns 0
 * when calls are in flight (finish_search runs again when they are done),
 * nonzero when there is nothing to wait for (the note says why). */
static int start_prf(search *s)
{
    coord_t *c = s->c;
    fn_arena *a = &s->mem;
    s->prf = PRF_DONE;
    s->prf_t0 = uv_hrtime();
    if (merge_window(s)) {
        snprintf(s->prf_note, sizeof s->prf_note, "not run: out of memory");
        return -1;
    }
    const Funnel__V1__ShardSearchResponse **resps = ar_alloc(a, s->nslots * sizeof *resps);
    if (!resps) return -1;
    for (uint32_t i = 0; i < s->nslots; i++)
        if (s->slots[i].code == GRPC_STATUS_OK) resps[i] = s->slots[i].resp;
    coord_prf_query q;
    if (s->syn) {
        /* the query's terms (as the shards analysed them) and their synonyms */
        const Funnel__V1__ShardSearchResponse *qr = NULL;
        for (uint32_t i = 0; i < s->nslots && !qr; i++)
            if (resps[i] && resps[i]->n_terms) qr = resps[i];
        if (coord_syn_expand(a, c->syn, c->an, c->an_raw, c->o.synonym_weight, s->qtext,
                             qr ? (const char *const *)qr->terms : NULL, qr ? qr->n_terms : 0, &q)) {
            snprintf(s->prf_note, sizeof s->prf_note, "not run: out of memory");
            return -1;
        }
    } else if (coord_prf_expand(a, &c->o.prf, resps, s->nslots, &q)) {
        snprintf(s->prf_note, sizeof s->prf_note, "not run: out of memory");
        return -1;
    }
    size_t w = stage2_window(s);
    s->prf_window = w;
    s->prf_scores = ar_alloc(a, (s->got ? s->got : 1) * sizeof *s->prf_scores);
    if (!s->prf_scores) return -1;
    for (size_t i = 0; i < s->got; i++) s->prf_scores[i] = NAN;
    if (!q.n) {
        snprintf(s->prf_note, sizeof s->prf_note, s->syn ? "not run: no query terms" : "not run: no feedback documents");
        s->prf_us = (uv_hrtime() - s->prf_t0) / 1000;
        return -1;
    }
    if (s->syn)
        snprintf(s->prf_note, sizeof s->prf_note, "synonyms: %zu terms, the query's and their WordNet synonyms "
                 "(weight %g)", q.n, c->o.synonym_weight);
    else
        snprintf(s->prf_note, sizeof s->prf_note, "RM3: %zu feedback documents (softmax temperature %g), "
                 "%zu terms, lambda %g", q.fb_docs, c->o.prf.temperature, q.n, c->o.prf.lambda);
    /* one call per shard that has window documents, to the replica that sent them */
    s->prf = PRF_RESCORING;
    for (uint32_t i = 0; i < s->nslots; i++) {
        shard_slot *sl = &s->slots[i];
        prf_leg *leg = ar_alloc(a, sizeof *leg);
        if (!leg) break;
        leg->s = s;
        leg->sl = sl;
        funnel__v1__shard_rescore_request__init(&leg->req);
        leg->n = shard_share(s, a, sl, NULL, w, &leg->entry, &leg->req.docs, &leg->req.keys);
        if (a->oom) break;
        if (!leg->n) continue;
        leg->req.terms = q.terms;
        leg->req.n_terms = q.n;
        leg->req.weights = q.weights;
        leg->req.n_weights = q.n;
        leg->req.n_docs = leg->req.n_keys = leg->n;
        leg->req.request_id = (char *)s->request_id;
        leg->req.generation = (char *)s->gen;
        if (ms_until(s->deadline) < 1 ||
            rpc_async_unary_in(c->srv, sl->b->ch, RPC_METHOD_SHARD_RESCORE, &leg->req.base,
                               &funnel__v1__shard_rescore_response__descriptor, s->deadline, &s->pba,
                               on_rescore_done, leg) != 0) {
            prf_note_add(s, "; shard %u: %s", sl->shard, ms_until(s->deadline) < 1 ? "no time left" :
                         "could not start the call");
            continue;
        }
        c->inflight_out++;
        s->prf_pending++;
        s->prf_ran = 1;
    }
    if (a->oom) prf_note_add(s, "; out of memory");
    if (s->prf_pending) return 0;
    s->prf = PRF_DONE;
    s->prf_us = (uv_hrtime() - s->prf_t0) / 1000;
    return -1;
}

/* The impression line of the page built (s->log), with the hits' ids. */
static void implog_page(search *s)
{
    coord_t *c = s->c;
    if (!c->implog || !s->log.n) return;
    char **ids = ar_alloc(&s->mem, s->log.n * sizeof *ids);
    if (!ids) return;
    size_t n = 0;   /* hits whose fields could not be fetched were dropped */
    for (size_t i = 0; i < s->resp.n_hits && n < s->log.n; i++) ids[n++] = s->resp.hits[i]->id;
    Funnel__V1__SearchRequest logged = *s->req;   /* shallow: with the request id it was given */
    logged.request_id = (char *)s->request_id;
    /* the arm, and who placed each hit when it interleaves (the hits' team) */
    const char **team = s->xp.arm ? ar_alloc(&s->mem, (n ? n : 1) * sizeof *team) : NULL;
    for (size_t i = 0; team && i < n; i++) team[i] = s->resp.hits[i]->team;
    coord_implog_exp x = { s->resp.experiment, s->resp.arm, team };
    coord_implog_write_exp(c->implog, &logged, n, ids, s->log.sc, s->log.ncols ? s->log.rows : NULL, c->fnames,
                           s->log.ncols, s->log.rank0, team ? &x : NULL);
}

typedef struct fetch_leg {
    search *s;
    shard_slot *sl;
    size_t n;
    uint32_t *hit;               /* page hits this shard holds */
    Funnel__V1__ShardFetchRequest req;
} fetch_leg;

static void finish_search(search *s);

/* A shard's part of the page could not be fetched: its hits go (a page
 * entry without an id is of no use), and the response is partial and says
 * why. */
static void fetch_leg_failed(search *s, fetch_leg *leg, grpc_status_code code, const char *why)
{
    Funnel__V1__ShardFailure *f = ar_alloc(&s->mem, sizeof *f);
    char *msg = ar_alloc(&s->mem, 600);
    if (f && msg) {
        funnel__v1__shard_failure__init(f);
        f->shard = leg->sl->shard;
        f->address = (char *)leg->sl->b->addr;
        f->status = (char *)rpc_status_name(code);
        if (s->sreq.no_fields)
            snprintf(msg, 600, "fetch of the page's stored fields: %s (its %zu hits left out)", why, leg->n);
        else   /* the hits have their ids: they stay, without fields or snippets */
            snprintf(msg, 600, "fetch of the page's stored fields: %s (its %zu hits without fields or "
                     "snippets)", why, leg->n);
        f->message = msg;
        s->resp.failures[s->resp.n_failures++] = f;   /* finish_search made room: one per shard */
    }
    s->resp.partial = 1;
    if (s->sreq.no_fields)
        for (size_t j = 0; j < leg->n; j++) s->resp.hits[leg->hit[j]] = NULL;
}

static void on_fetch_done(void *ud, grpc_status_code code, const char *details, ProtobufCMessage *m)
{
    fetch_leg *leg = ud;
    search *s = leg->s;
    coord_t *c = s->c;
    c->inflight_out--;
    const Funnel__V1__ShardFetchResponse *r = (const Funnel__V1__ShardFetchResponse *)m;
    if (code == GRPC_STATUS_OK && r && r->n_docs == leg->n) {
        for (size_t j = 0; j < leg->n; j++) {
            Funnel__V1__Hit *h = s->resp.hits[leg->hit[j]];
            const Funnel__V1__FetchedDoc *d = r->docs[j];
            h->id = d->id;
            h->title = d->title;
            h->url = d->url;
            /* the reply was unpacked into s->mem: it lives as long as the response */
            h->n_fields = d->n_fields;
            h->fields = d->fields;
            h->snippet = d->snippet;
            h->n_snippet_marks = d->n_snippet_marks;
            h->snippet_marks = d->snippet_marks;
        }
    } else {
        const char *why = code == GRPC_STATUS_OK ? "wrong number of documents"
                        : details && *details ? details : rpc_status_name(code);
        FN_DEBUG("fetch on %s: %s %s", leg->sl->b->addr, rpc_status_name(code), why);
        fetch_leg_failed(s, leg, code == GRPC_STATUS_OK ? GRPC_STATUS_INTERNAL : code, why);
    }
    if (--s->fetch_pending == 0) {
        s->fetch = FETCH_DONE;
        finish_search(s);
    }
}

/* The page hits shard sl holds: their positions on the page, documents and
 * keys (in a). */
static size_t page_share(search *s, fn_arena *a, const shard_slot *sl, uint32_t **pos, uint32_t **docs,
                         uint64_t **keys)
{
    size_t cnt = 0, n = s->resp.n_hits;
    for (size_t j = 0; j < n; j++) cnt += s->resp.hits[j]->shard == sl->shard;
    if (!cnt) return 0;
    *pos = ar_alloc(a, cnt * sizeof **pos);
    *docs = ar_alloc(a, cnt * sizeof **docs);
    *keys = ar_alloc(a, cnt * sizeof **keys);
    if (a->oom) return 0;
    size_t m = 0;
    for (size_t j = 0; j < n; j++) {
        if (s->resp.hits[j]->shard != sl->shard) continue;
        (*pos)[m] = (uint32_t)j;
        (*docs)[m] = s->page_doc[j];
        (*keys)[m] = s->page_key[j];
        m++;
    }
    return m;
}

/* The page's stored fields from the shards that hold its hits, one call
 * each to the replica that answered the search. Returns 0 when calls are in
 * flight (finish_search runs again when they are done), nonzero when there
 * is nothing to wait for. */
static int start_fetch(search *s)
{
    coord_t *c = s->c;
    fn_arena *a = &s->mem;
    s->fetch = FETCH_DONE;
    for (uint32_t i = 0; i < s->nslots; i++) {
        shard_slot *sl = &s->slots[i];
        fetch_leg *leg = ar_alloc(a, sizeof *leg);
        if (!leg) break;
        leg->s = s;
        leg->sl = sl;
        funnel__v1__shard_fetch_request__init(&leg->req);
        leg->n = page_share(s, a, sl, &leg->hit, &leg->req.docs, &leg->req.keys);
        if (a->oom) break;
        if (!leg->n) continue;
        leg->req.n_docs = leg->req.n_keys = leg->n;
        leg->req.request_id = (char *)s->request_id;
        leg->req.generation = (char *)s->gen;
        leg->req.n_fields = s->req->n_fields;
        leg->req.fields = s->req->fields;
        leg->req.snippets = s->req->snippets;
        leg->req.query = (char *)(s->qtext ? s->qtext : s->req->query ? s->req->query : "");
        leg->req.plain_text = s->req->plain_text;
        if (ms_until(s->deadline) < 1 ||
            rpc_async_unary_in(c->srv, sl->b->ch, RPC_METHOD_SHARD_FETCH, &leg->req.base,
                               &funnel__v1__shard_fetch_response__descriptor, s->deadline, &s->pba,
                               on_fetch_done, leg) != 0) {
            fetch_leg_failed(s, leg, GRPC_STATUS_DEADLINE_EXCEEDED,
                             ms_until(s->deadline) < 1 ? "no time left" : "could not start the call");
            continue;
        }
        c->inflight_out++;
        s->fetch_pending++;
    }
    if (a->oom) return -1;   /* finish_search answers RESOURCE_EXHAUSTED */
    if (s->fetch_pending) {
        s->fetch = FETCH_RUNNING;
        return 0;
    }
    return 1;
}

/* Drop the NULL hits (their fields could not be fetched). */
static void compact_page(search *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->resp.n_hits; i++)
        if (s->resp.hits[i]) s->resp.hits[n++] = s->resp.hits[i];
    if (s->resp.explained_hits > n) s->resp.explained_hits = (uint32_t)n;
    s->resp.n_hits = n;
}

/* A JSON log event: {"ts", "pid", "type", ...}; json_line writes it. */
static json_t *json_event(const char *type)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char t[96];
    snprintf(t, sizeof t, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000) % 1000);
    json_t *obj = json_object();
    if (!obj) return NULL;
    json_object_set_new(obj, "ts", json_string(t));
    json_object_set_new(obj, "pid", json_integer(getpid()));
    json_object_set_new(obj, "type", json_string(type));
    return obj;
}

/* Write one JSON log line (access, slow query, replica events) to stderr in
 * one locked write, so lines from other threads do not interleave. Takes obj. */
static void json_line(json_t *obj)
{
    if (!obj) return;
    char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6));
    json_decref(obj);
    if (!line) return;
    flockfile(stderr);
    fputs(line, stderr);
    fputc('\n', stderr);
    funlockfile(stderr);
    free(line);
}

/* A replica's breaker opened (replica_down) or closed again (replica_up). */
static void replica_event(const backend *b, const char *type, const char *why, double down_s)
{
    json_t *o = json_event(type);
    if (!o) return;
    json_object_set_new(o, "shard", json_integer(b->shard));
    json_object_set_new(o, "replica", json_string(b->addr));
    json_object_set_new(o, "reason", json_stringn(why, strlen(why)));
    if (down_s >= 0) json_object_set_new(o, "down_s", json_real(down_s));
    json_line(o);
}

/* The slowest shard call of s: its slot (NULL when none answered). */
static const shard_slot *slowest_slot(const search *s)
{
    const shard_slot *w = NULL;
    for (uint32_t i = 0; i < s->nslots; i++) {
        const shard_slot *sl = &s->slots[i];
        if (sl->resp && sl->code == GRPC_STATUS_OK && (!w || sl->took_us > w->took_us)) w = sl;
    }
    return w;
}

/* Bookkeeping of a search that is answered (code, resp: the reply, NULL
 * when it is an error): admission slot, metrics, the access and slow-query
 * logs. Once per search, before free_search. */
static void search_end(search *s, grpc_status_code code, const char *details,
                       const Funnel__V1__SearchResponse *resp)
{
    coord_t *c = s->c;
    uint64_t us = (uv_hrtime() - s->t0_ns) / 1000;
    if (s->admitted) {
        /* a search that waited for a failed shard says nothing about queues */
        (s->admitted == 2 ? adm_release_background : adm_release)(&c->adm, (double)us,
                                                                  code == GRPC_STATUS_OK && resp && !resp->partial,
                                                                  uv_now(c->loop));
        s->admitted = 0;
    }
    coord_metrics_request(c, 0, code, us);
    if (resp && c->m.reg) {
        if (resp->partial) fn_mcounter_inc(c->m.partial);
        for (size_t i = 0; i < resp->n_stages; i++)
            for (int j = 0; j < N_STAGE_METRICS - 2; j++)
                if (resp->stages[i]->ran && strcmp(resp->stages[i]->name, stage_metric_names[j]) == 0)
                    fn_mhist_observe(c->m.stage[j], (double)resp->stages[i]->time_us / 1e6);
        const shard_slot *w = slowest_slot(s);
        if (w) fn_mhist_observe(c->m.stage[N_STAGE_METRICS - 2], (double)w->took_us / 1e6);
        fn_mhist_observe(c->m.stage[N_STAGE_METRICS - 1], (double)us / 1e6);
    }
    int slow = c->o.slow_query_ms > 0 && us >= (uint64_t)c->o.slow_query_ms * 1000;
    if (!c->o.access_log && !slow) return;
    json_t *o = json_event(slow ? "slow_query" : "access");
    if (!o) return;
    json_object_set_new(o, "request_id", json_string(s->request_id));
    json_object_set_new(o, "method", json_string("search"));
    json_object_set_new(o, "status", json_string(rpc_status_name(code)));
    json_object_set_new(o, "latency_ms", json_real((double)us / 1000.0));
    json_object_set_new(o, "query", json_stringn(s->req->query ? s->req->query : "",
                                                 s->req->query ? strlen(s->req->query) : 0));
    json_object_set_new(o, "k", json_integer(s->k));
    json_object_set_new(o, "page", json_integer(s->req->page));
    if (s->req->background) json_object_set_new(o, "background", json_true());
    if (resp) {
        json_object_set_new(o, "hits", json_integer((json_int_t)resp->n_hits));
        if (resp->coverage) {
            json_object_set_new(o, "shards_asked", json_integer(resp->coverage->shards_asked));
            json_object_set_new(o, "shards_answered", json_integer(resp->coverage->shards_answered));
        }
        json_object_set_new(o, "partial", json_boolean(resp->partial));
        if (resp->slowest_shard && *resp->slowest_shard)
            json_object_set_new(o, "slowest_shard", json_string(resp->slowest_shard));
        if (resp->slowest_stage && *resp->slowest_stage)
            json_object_set_new(o, "slowest_stage", json_string(resp->slowest_stage));
        json_object_set_new(o, "hedged", json_integer(resp->hedged));
        if (resp->n_degraded) {
            json_t *d = json_array();
            for (size_t i = 0; i < resp->n_degraded; i++) json_array_append_new(d, json_string(resp->degraded[i]));
            json_object_set_new(o, "degraded", d);
        }
        if (resp->n_failures) {
            json_t *f = json_array();
            for (size_t i = 0; i < resp->n_failures; i++) {
                const Funnel__V1__ShardFailure *sf = resp->failures[i];
                json_t *e = json_object();
                json_object_set_new(e, "shard", json_integer(sf->shard));
                json_object_set_new(e, "address", json_string(sf->address ? sf->address : ""));
                json_object_set_new(e, "status", json_string(sf->status ? sf->status : ""));
                json_array_append_new(f, e);
            }
            json_object_set_new(o, "failures", f);
        }
    } else if (details) {
        json_object_set_new(o, "error", json_stringn(details, strlen(details)));
    }
    json_line(o);
}

/* The access-log line of a search refused by load shedding. */
static void log_shed(coord_t *c, const Funnel__V1__SearchRequest *req, const char *msg, uint64_t us)
{
    if (!c->o.access_log) return;
    json_t *o = json_event("access");
    if (!o) return;
    json_object_set_new(o, "request_id", json_string(req->request_id ? req->request_id : ""));
    json_object_set_new(o, "method", json_string("search"));
    json_object_set_new(o, "status", json_string("RESOURCE_EXHAUSTED"));
    json_object_set_new(o, "latency_ms", json_real((double)us / 1000.0));
    json_object_set_new(o, "shed", json_true());
    if (req->background) json_object_set_new(o, "background", json_true());
    json_object_set_new(o, "error", json_string(msg));
    json_line(o);
}

/* The response's trace fields: the slowest shard call and stage. */
static void trace_fields(search *s, fn_arena *a, Funnel__V1__SearchResponse *resp)
{
    const shard_slot *w = slowest_slot(s);
    if (w) {
        char buf[COORD_MAX_ADDR + 64];
        snprintf(buf, sizeof buf, "%u %s %.3f", w->shard, w->b ? w->b->addr : "", (double)w->took_us / 1000.0);
        resp->slowest_shard = ar_strdup(a, buf);
    }
    const Funnel__V1__StageInfo *ws = NULL;
    for (size_t i = 0; i < resp->n_stages; i++)
        if (resp->stages[i]->ran && (!ws || resp->stages[i]->time_us > ws->time_us)) ws = resp->stages[i];
    if (ws) {
        char buf[96];
        snprintf(buf, sizeof buf, "%s %.3f", ws->name, (double)ws->time_us / 1000.0);
        resp->slowest_stage = ar_strdup(a, buf);
    }
    resp->hedged = s->hedged;
    if (s->ndegraded) {
        resp->degraded = (char **)s->degraded;
        resp->n_degraded = s->ndegraded;
    }
}

static void finish_search(search *s)
{
    coord_t *c = s->c;
    if (relax_step(s)) return;   /* back here when the relaxed query is answered */
    if (s->prf == PRF_ASKED && start_prf(s) == 0) return;   /* back here when rescored */
    /* Shards validate requests too. If every shard that answered refused
     * this one, the request is the problem: say so rather than OK, 0 hits.
     * (All shards failing for other reasons stays OK + partial.) */
    const shard_slot *refused = NULL;
    int answered = 0;
    for (uint32_t i = 0; i < s->nslots; i++) {
        const shard_slot *sl = &s->slots[i];
        if (sl->code == GRPC_STATUS_OK && sl->resp) answered = 1;
        else if (refusal(sl->code) && !refused) refused = sl;
    }
    if (!answered && refused) {
        search_end(s, refused->code, refused->msg + refused->detail_at, NULL);
        reply(c, s->call, refused->code, refused->msg + refused->detail_at, NULL);
        free_search(s);
        c->inflight_req--;
        maybe_finish_stop(c);
        return;
    }
    int rc = 0;
    if (s->fetch == FETCH_NONE) {
        rc = build_response(s, &s->mem, &s->resp, &s->cov);
        if (rc == 0 && s->want_deeper) {
            deepen_step(s);   /* back here when the deeper lists are in */
            return;
        }
        /* room for a fetch failure per shard after the search failures */
        if (rc == 0 && (s->sreq.no_fields || s->want_stored)) {
            Funnel__V1__ShardFailure **fl = ar_alloc(&s->mem, (s->resp.n_failures + s->nslots + 1) * sizeof *fl);
            if (!fl) rc = -ENOMEM;
            else {
                if (s->resp.n_failures) memcpy(fl, s->resp.failures, s->resp.n_failures * sizeof *fl);
                s->resp.failures = fl;
            }
        }
        if (rc == 0 && (s->sreq.no_fields || s->want_stored) && s->resp.n_hits) {
            int f = start_fetch(s);
            if (f == 0) return;   /* back here when the fields are in */
            if (f < 0) rc = -ENOMEM;
        }
    }
    Funnel__V1__SearchResponse resp = s->resp;
    Funnel__V1__Coverage cov = s->cov;
    if (rc == 0) {
        compact_page(s);
        resp = s->resp;
        implog_page(s);
    }
    if (rc == 0) trace_fields(s, &s->mem, &resp);
    size_t bytes = rc == 0 ? protobuf_c_message_get_packed_size(&resp.base) : 0;
    if (rc != 0) {
        search_end(s, GRPC_STATUS_RESOURCE_EXHAUSTED, "coordinator out of memory", NULL);
        reply(c, s->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "coordinator out of memory", NULL);
    } else if (bytes > c->o.limits.max_reply_bytes) {
        char msg[256];
        snprintf(msg, sizeof msg, "reply: %zu bytes, over the limit of %" PRIu64
                 " bytes (max-reply-bytes): ask for fewer hits (k) or without explain",
                 bytes, c->o.limits.max_reply_bytes);
        search_end(s, GRPC_STATUS_RESOURCE_EXHAUSTED, msg, NULL);
        reply(c, s->call, GRPC_STATUS_RESOURCE_EXHAUSTED, msg, NULL);
    } else {
        resp.took_us = (uv_hrtime() - s->t0_ns) / 1000;
        resp.generation = (char *)s->gen;
        search_end(s, GRPC_STATUS_OK, NULL, &resp);
        FN_DEBUG("search '%s' k=%u page=%u: %zu hits, %u/%u shards, %" PRIu64 " us",
                 s->req->query, s->k, s->req->page, resp.n_hits,
                 cov.shards_answered, cov.shards_asked, (uint64_t)resp.took_us);
        reply(c, s->call, GRPC_STATUS_OK, NULL, &resp.base);
    }
    free_search(s);
    c->inflight_req--;
    maybe_finish_stop(c);
}

/* ---- handlers ---- */


/* The deadline of the shard calls of a request: the client's (or
 * default-deadline-ms without one) less our budget, at least 10% of what is
 * left, so a stalled shard cannot make us late. *left_us: the client's time
 * left; *shard_us: the shards' (may be <= 0). */
static gpr_timespec shard_deadline(const coord_t *c, rpc_call_t *call, int64_t *left_us, int64_t *shard_us)
{
    gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
    if (rpc_call_ms_left(call) == INT64_MAX) {
        *left_us = c->o.default_deadline_ms * 1000;
    } else {
        gpr_timespec cd = gpr_convert_clock_type(rpc_call_deadline(call), GPR_CLOCK_MONOTONIC);
        gpr_timespec d = gpr_time_sub(cd, now);
        *left_us = d.tv_sec * 1000000 + d.tv_nsec / 1000;
    }
    int64_t reserve_us = c->o.budget_ms * 1000;
    if (*left_us / 10 > reserve_us) reserve_us = *left_us / 10;
    *shard_us = *left_us - reserve_us;
    return gpr_time_add(now, gpr_time_from_micros(*shard_us > 0 ? *shard_us : 0, GPR_TIMESPAN));
}

static void handle_search(rpc_call_t *call, const ProtobufCMessage *msg, void *ud)
{
    coord_t *c = ud;
    const Funnel__V1__SearchRequest *req = (const Funnel__V1__SearchRequest *)msg;
    uint64_t t0 = uv_hrtime();
    c->requests++;
    if (c->stopping) {
        reply(c, call, GRPC_STATUS_UNAVAILABLE, "coordinator is shutting down", NULL);
        return;
    }
    uint32_t k;
    fn_errbuf eb;
    if (coord_validate_search(req, &c->o.limits, &k, &eb) != 0) {
        coord_metrics_request(c, 0, GRPC_STATUS_INVALID_ARGUMENT, (uv_hrtime() - t0) / 1000);
        reply(c, call, GRPC_STATUS_INVALID_ARGUMENT, eb.msg, NULL);
        return;
    }
    if (req->candidate_model && !c->stage2_cand && !c->stage1_staged[0] && !c->intent_cand) {
        coord_metrics_request(c, 0, GRPC_STATUS_INVALID_ARGUMENT, (uv_hrtime() - t0) / 1000);
        reply(c, call, GRPC_STATUS_INVALID_ARGUMENT,
              "candidate_model: no model is staged (stage 1, 2 or 3 (intent); PushModel STAGE)", NULL);
        return;
    }
    /* a named generation must be one the cluster holds: live, previous or
     * staged (the quality gate's shadow queries name the candidate) */
    if (req->generation && *req->generation &&
        !((c->gen_live && strcmp(req->generation, c->gen_live) == 0) ||
          (c->gen_prev && strcmp(req->generation, c->gen_prev) == 0) ||
          (c->gen_staged && strcmp(req->generation, c->gen_staged) == 0))) {
        char msg[300];
        snprintf(msg, sizeof msg, "generation: '%.200s' is not live, previous or staged on this cluster",
                 req->generation);
        coord_metrics_request(c, 0, GRPC_STATUS_INVALID_ARGUMENT, (uv_hrtime() - t0) / 1000);
        reply(c, call, GRPC_STATUS_INVALID_ARGUMENT, msg, NULL);
        return;
    }
    /* Load shedding (admission.h): refused now, cheaply, rather than late. */
    if (c->o.max_inflight) {
        uint32_t retry_ms;
        int64_t left = rpc_call_ms_left(call);
        int64_t left_us = left == INT64_MAX ? 0 : left * 1000;
        if (req->background ? !adm_admit_background(&c->adm, left_us, uv_now(c->loop), &retry_ms)
                            : !adm_admit(&c->adm, left_us, uv_now(c->loop), &retry_ms)) {
            char msg[240];
            snprintf(msg, sizeof msg, "%s: %u searches in flight, an expected wait of %.0f ms in "
                     "queues (load shedding: target-latency-ms %" PRId64 ", max-inflight %u); retry after %u ms",
                     req->background ? "background search shed (users first)" : "overloaded",
                     c->adm.inflight, adm_queue_us(&c->adm) / 1000,
                     c->o.target_latency_ms ? c->o.target_latency_ms : COORD_DEFAULT_TARGET_LATENCY_MS,
                     c->o.max_inflight, retry_ms);
            c->shed++;
            fn_mcounter_inc(req->background ? c->m.bg_shed : c->m.shed);
            log_shed(c, req, msg, (uv_hrtime() - t0) / 1000);
            coord_metrics_request(c, 0, GRPC_STATUS_RESOURCE_EXHAUSTED, (uv_hrtime() - t0) / 1000);
            rpc_call_reply_pushback(call, GRPC_STATUS_RESOURCE_EXHAUSTED, msg, retry_ms);
            c->errors++;
            return;
        }
        if (c->adm.over && !req->background) fn_mcounter_inc(c->m.graced);
    }
    uint32_t n = c->view->nshards;
    search *s = calloc(1, sizeof *s + n * sizeof s->slots[0]);
    if (!s) {
        if (c->o.max_inflight)
            (req->background ? adm_release_background : adm_release)(&c->adm, 0, 0, uv_now(c->loop));
        reply(c, call, GRPC_STATUS_RESOURCE_EXHAUSTED, "coordinator out of memory", NULL);
        return;
    }
    s->admitted = c->o.max_inflight > 0 ? 1 + (req->background != 0) : 0;
    s->c = c;
    s->v = view_ref(c->view);   /* its topology for good: a scale-out meanwhile changes nothing here */
    s->call = call;
    s->req = req;
    fn_arena_init(&s->mem);
    /* a request without an id gets one: responses and impression lines
     * can always be joined (pid, then a per-process count) */
    if (req->request_id && *req->request_id) {
        s->request_id = req->request_id;
    } else {
        static uint64_t next_id;
        snprintf(s->rid, sizeof s->rid, "c%u-%llu", (unsigned)getpid(), (unsigned long long)++next_id);
        s->request_id = s->rid;
    }
    s->k = k;
    s->t0_ns = t0;
    s->nslots = n;
    funnel__v1__shard_search_request__init(&s->sreq);
    /* the generation is fixed for the whole search (a publish meanwhile
     * does not change what its later calls read); a copy, as c's may go */
    s->gen = req->generation && *req->generation ? req->generation
                                                 : fn_arena_strdup(&s->mem, c->gen_live ? c->gen_live : "");
    if (!s->gen) s->gen = "";   /* out of memory: the shards' own */
    s->sreq.generation = (char *)s->gen;
    uint64_t an0 = uv_hrtime();
    if (spell_step(c, s) != 0) {
        search_end(s, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        free_search(s);
        reply(c, call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return;
    }
    s->sreq.query = (char *)s->qtext;
    /* the text the shards get, parsed once: its canonical form (the analyze
     * note) and whether it is a bag of words (relaxation) */
    if (!req->plain_text && !fn_query_is_blank(s->qtext)) {
        fn_qparse_opts po;
        fn_qparse_defaults(&po);
        po.mode_all = req->all_terms;
        fn_qnode *tree;
        int all_must;
        fn_errbuf peb;
        if (fn_qparse(s->qtext, strlen(s->qtext), &po, &s->mem, &tree, &peb) == 0) {
            size_t need = fn_qtree_print(tree, NULL, 0);
            char *pr = fn_arena_alloc(&s->mem, need + 1);
            if (pr) fn_qtree_print(tree, pr, need + 1);
            s->parsed = pr;
            s->bag = fn_qtree_is_bag(tree, &all_must);
        }
    }
    /* relaxation: plain words in mode all only (dropping a word from a
     * structured query could break it: "a AND b" -> "a AND") */
    s->min_hits = req->min_hits ? req->min_hits : c->o.relax_min_hits;
    if (!req->all_terms || req->n_vector || req->features || (!req->plain_text && !s->bag)) s->min_hits = 0;
    if (intent_step(c, s) != 0) {
        search_end(s, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        free_search(s);
        reply(c, call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return;
    }
    s->analyze_us = (uv_hrtime() - an0) / 1000;
    s->sreq.explain = req->explain;
    s->sreq.explain_hits = c->o.limits.max_explain_hits;
    /* the funnel's windows: global budgets a request may only lower; each
     * shard gets its share times the overprovision, and enough for the page */
    const uint32_t cfgw[3] = { c->o.selection_k, c->o.stage1_k, c->o.stage2_k };
    const uint32_t reqw[3] = { req->selection_k, req->stage1_k, req->stage2_k };
    for (int w = 0; w < 3; w++) s->win[w] = reqw[w] && reqw[w] < cfgw[w] ? reqw[w] : cfgw[w];
    s->mode = (int)req->features;
    uint32_t page_end = (req->page + 1) * k;
    /* Under pressure (3/4 of the admission limit in flight) the funnel's
     * windows halve - less work per search, the same page - and the
     * response says so; a features request (training rows) keeps its own. */
    if (c->o.max_inflight && adm_pressure(&c->adm) && !req->features) {
        uint32_t old0 = s->win[0], old2 = s->win[2];
        for (int w = 0; w < 3; w += 2) {
            uint32_t h = s->win[w] / 2;
            if (h < page_end) h = page_end;
            if (h < s->win[w]) s->win[w] = h;
        }
        if (s->win[0] != old0 || s->win[2] != old2) {
            char *d = fn_arena_alloc(&s->mem, 128);
            if (d && s->ndegraded < 4) {
                snprintf(d, 128, "windows shrunk under load: selection_k %u -> %u, stage2_k %u -> %u",
                         old0, s->win[0], old2, s->win[2]);
                s->degraded[s->ndegraded++] = d;
            }
            fn_mcounter_inc(c->m.shrunk);
        }
    }
    s->cov_target = req->coverage_target > 0 && req->coverage_target < 1 ? req->coverage_target : 1;
    s->sreq.request_id = (char *)s->request_id;
    /* the shards score with their staged stage-1 model (each replica took it
     * at STAGE; one that lost it answers FAILED_PRECONDITION, never the live one) */
    s->sreq.candidate_model = req->candidate_model && c->stage1_staged[0];
    /* an experiment's arm replaces the stage-2 model (experiment.h); skip_models,
     * features, vector and candidate-model requests stay out of experiments */
    if (!req->skip_models && !s->mode && !req->n_vector && !req->candidate_model)
        coord_exp_assign(c->exps, req->user, req->session_id, req->query, &s->xp);
    rank_ranker *s2m = s->xp.arm ? (s->xp.arm->model[0] ? s->xp.arm->model[0] : s->xp.arm->model[1]) : c->stage2;
    if (req->candidate_model && c->stage2_cand) s2m = c->stage2_cand;   /* else the live one */
    int stage2 = s2m && !req->skip_models && !s->mode;
    /* RM3 expansion re-ranks the window when no model does (a model reads
     * prf_rm3 as a feature instead) */
    s->syn = req->expand == FUNNEL__V1__EXPAND__EXPAND_SYNONYMS && c->syn && !stage2 && !s->mode && !req->n_vector;
    s->expand = (req->expand == FUNNEL__V1__EXPAND__EXPAND_RM3 && !stage2 && !s->mode && !req->n_vector) || s->syn;
    int rerank = stage2 || s->expand;
    /* the search keeps the model it started with, even if one is pushed meanwhile */
    s->model = stage2 ? rank_ranker_ref(s2m) : NULL;
    /* feedback when the model reads prf_rm3, and for stage-2 training rows */
    if ((s->model && (rank_ranker_uses(s->model, IDX_F_PRF_RM3) ||
                      rank_ranker_uses(s->model, IDX_F_PRF_RM3_REL))) ||
        s->mode == FUNNEL__V1__FEATURE_MODE__FEATURES_WINDOW || s->expand) {
        if (s->syn) {
            s->prf = PRF_ASKED;   /* the window is rescored; no feedback documents needed */
        } else if (c->o.prf.docs) {
            s->prf = PRF_ASKED;
            s->sreq.feedback_docs = c->o.prf.docs;
            s->sreq.feedback_max_df = c->o.prf.max_df;
        } else {
            snprintf(s->prf_note, sizeof s->prf_note, "off (prf-docs 0): prf_rm3 is missing");
        }
    }
    /* the result page (page.h): a text page; its stages need each hit's
     * vertical, host, filter score and signature */
    s->page_on = !s->mode && !req->n_vector;
    s->safe = req->safe_search ? (int)req->safe_search
            : c->o.page.safe_search ? c->o.page.safe_search : PAGE_SAFE_MODERATE;
    s->sreq.page_signals = s->page_on;
    s->sreq.dupsig_hits = PAGE_COLLAPSE_DEPTH;   /* folding looks no deeper */
    uint32_t s1 = per_shard(s->win[1], c->o.overprovision, n);
    uint32_t sel = per_shard(s->win[0], c->o.overprovision, n);
    if (s->mode == FUNNEL__V1__FEATURE_MODE__FEATURES_SELECTION)
        s1 = k;                                /* k selection candidates from each shard */
    else if (s->mode) ;                        /* the window: stage 1 keeps what it keeps when serving */
    else if (!rerank)                          /* nothing re-ranks after stage 1: the page is enough, */
        s1 = s->page_on ? (uint32_t)page_list_need(page_end, c->o.page.rules, c->o.page.nrules)
                        : page_end;            /* with room for the hits the page stages drop */
    else if (s1 < page_end) s1 = page_end;
    if (sel < s1) sel = s1;
    if (sel > c->o.limits.max_window) sel = c->o.limits.max_window;
    if (s1 > sel) s1 = sel;
    /* without a re-ranker the merge is exact only as deep as every shard's
     * list: the page list stops there */
    if (s->page_on && !rerank) s->list_cap = s1;
    s->sreq.k = s1;
    s->sreq.selection_k = sel;
    /* every shard selects at least its best prf-docs, or the global best
     * would depend on the shard count */
    if (s->prf == PRF_ASKED && s->sreq.selection_k < c->o.prf.docs) s->sreq.selection_k = c->o.prf.docs;
    if (req->n_vector) {
        /* every shard returns the whole knn_k: the global nearest may all be
         * on one shard; the shards' stored fields come with both lists (no
         * two-phase fetch: a fused page can hold any of either) */
        s->vec_only = fn_query_is_blank(req->query);
        s->vec_learned = !s->vec_only && (req->fusion == FUNNEL__V1__FUSION__FUSION_LEARNED || s->mode);
        uint32_t kk = req->knn_k ? req->knn_k : (page_end > COORD_DEFAULT_KNN_K ? page_end : COORD_DEFAULT_KNN_K);
        if (kk > c->o.limits.max_window) kk = c->o.limits.max_window;
        s->sreq.vector = req->vector;
        s->sreq.n_vector = req->n_vector;
        s->sreq.knn_k = kk;
        s->sreq.ef = req->ef;
        s->sreq.knn_exact = req->knn_exact;
        if (s->vec_learned) {
            s->sreq.knn_k = 0;   /* no neighbours: the shards' features read the vector */
            s->sreq.ef = 0;
            s->sreq.knn_exact = 0;
        } else if (s->vec_only) {
            s->prf = PRF_OFF;
            s->sreq.feedback_docs = 0;
            s->prf_note[0] = '\0';
        } else if (s->sreq.k < kk) {
            /* the text list fused is its first knn_k: every shard sends at
             * least that many, so they are the same whatever the shard count */
            s->sreq.k = kk;
            if (s->sreq.selection_k < kk) s->sreq.selection_k = kk;
        }
    }
    s->sreq.user_terms = req->user_terms;
    s->sreq.now = req->now ? req->now : (int64_t)time(NULL);
    s->sreq.all_terms = req->all_terms;
    s->sreq.plain_text = req->plain_text;
    s->sreq.filter = req->filter && !fn_query_is_blank(req->filter) ? req->filter : "";
    s->sreq.exact_matches = req->exact_total;
    /* two-phase fetch: a model re-ranks the window, so the page can be any
     * of its hits; only the page's stored fields are fetched, afterwards */
    s->sreq.no_fields = rerank && (!req->n_vector || s->vec_learned);
    s->want_stored = req->n_fields > 0 || req->snippets;
    s->sreq.skip_stage1 = req->skip_models;
    s->sreq.features = s->mode == FUNNEL__V1__FEATURE_MODE__FEATURES_SELECTION ? 1
                     : (s->mode || req->explain || stage2) ? 2 : 0;
    /* explain alone needs features for the explained ranks only */
    s->sreq.feature_hits = !stage2 && !s->mode && req->explain ? c->o.limits.max_explain_hits : 0;
    if (c->implog && !stage2 && !s->mode) {
        /* the impression log records the shown page's features */
        s->sreq.features = 2;
        if (s->sreq.feature_hits < page_end) s->sreq.feature_hits = page_end;
    }
    pb_arena_allocator(&s->pba, &s->mem);

    /* One deadline for all shards, earlier than the client's by our budget
     * (at least 10% of what is left) so a stalled shard cannot make us late. */
    int64_t left_us, shard_us;
    s->deadline = shard_deadline(c, call, &left_us, &shard_us);

    s->shard_ms = shard_us / 1000;

    c->inflight_req++;
    fan_out(s, shard_us, left_us);
}

/* A Get's reply, counted in the metrics (method "get"). */
static void reply_get(coord_t *c, rpc_call_t *call, uint64_t t0, grpc_status_code code, const char *details,
                      const ProtobufCMessage *resp)
{
    coord_metrics_request(c, 1, code, (uv_hrtime() - t0) / 1000);
    reply(c, call, code, details, resp);
}

/* ---- Search/Get: documents by external id ------------------------------------ */

typedef struct get_req get_req;

/* One shard's part of a Get: its ids, the replica called. */
typedef struct get_leg {
    get_req *g;
    uint32_t shard;
    backend *b;
    int trial, tries;
    Funnel__V1__ShardGetRequest req;
    const Funnel__V1__GetResponse *resp;   /* OK: the shard's answer (in g->mem) */
    grpc_status_code code;
    char msg[300];
} get_leg;

struct get_req {
    coord_t *c;
    view *v;                     /* the topology it was routed over (a reference) */
    rpc_call_t *call;
    uint64_t t0;                 /* arrival (uv_hrtime), for the metrics */
    const Funnel__V1__GetRequest *req;
    gpr_timespec deadline;
    int64_t shard_ms;
    uint32_t *shard_of;          /* per id: its shard */
    get_leg **legs;              /* per shard: NULL when none of the ids is there */
    size_t pending;
    fn_arena mem;
    ProtobufCAllocator pba;
};

static void get_finish(get_req *g);
static void on_get_leg_done(void *ud, grpc_status_code code, const char *details, ProtobufCMessage *m);

static int start_get_leg(get_leg *l, backend *b, int trial)
{
    coord_t *c = l->g->c;
    l->b = b;
    l->trial = trial;
    if (trial) b->trial = 1;
    l->tries++;
    b->calls++;
    int rc = rpc_async_unary_in(c->srv, b->ch, RPC_METHOD_SHARD_GET, &l->req.base,
                                &funnel__v1__get_response__descriptor, l->g->deadline, &l->g->pba,
                                on_get_leg_done, l);
    if (rc == 0) {
        c->inflight_out++;
    } else {
        if (trial) b->trial = 0;
        l->trial = 0;
    }
    return rc;
}

static void on_get_leg_done(void *ud, grpc_status_code code, const char *details, ProtobufCMessage *m)
{
    get_leg *l = ud;
    get_req *g = l->g;
    coord_t *c = g->c;
    backend *b = l->b;
    int trial = l->trial;
    l->trial = 0;
    c->inflight_out--;
    br_call_done(c, b, trial, code, details, g->shard_ms);
    const Funnel__V1__GetResponse *r = (const Funnel__V1__GetResponse *)m;
    if (code == GRPC_STATUS_OK && r && r->n_docs == l->req.n_ids) {
        l->code = GRPC_STATUS_OK;
        l->resp = r;
    } else {
        l->code = code == GRPC_STATUS_OK ? GRPC_STATUS_INTERNAL : code;
        snprintf(l->msg, sizeof l->msg, "%s: %s", b->addr,
                 code == GRPC_STATUS_OK ? "wrong number of documents"
                 : details && *details ? details : rpc_status_name(code));
        if (code != GRPC_STATUS_OK) b->failures++;
        if (retryable(code) && l->tries < 2 && !c->stopping && ms_until(g->deadline) >= 1) {
            int t;
            backend *alt = pick_replica(c, g->v, l->shard, b, &t);
            if (alt && start_get_leg(l, alt, t) == 0) return;
        }
    }
    if (--g->pending == 0) get_finish(g);
}

static void get_free(get_req *g)
{
    coord_t *c = g->c;
    view_unref(g->v);
    fn_arena_free(&g->mem);
    free(g);
    c->inflight_req--;
    maybe_finish_stop(c);
}

/* Every leg is done: the answer in the request's id order. */
static void get_finish(get_req *g)
{
    coord_t *c = g->c;
    const Funnel__V1__GetRequest *req = g->req;
    uint32_t nsh = g->v->nshards;
    fn_arena *a = &g->mem;
    size_t nlegs = 0, nfailed = 0;
    const get_leg *refused = NULL, *failed = NULL;
    for (uint32_t sh = 0; sh < nsh; sh++) {
        const get_leg *l = g->legs[sh];
        if (!l) continue;
        nlegs++;
        if (l->code != GRPC_STATUS_OK) {
            nfailed++;
            if (!failed) failed = l;
            if (refusal(l->code) && !refused) refused = l;
        }
    }
    if (refused) {   /* the request is the problem: no shard would answer differently */
        reply_get(c, g->call, g->t0, refused->code, refused->msg, NULL);
        get_free(g);
        return;
    }
    if (nfailed == nlegs) {
        char msg[400];
        snprintf(msg, sizeof msg, "no shard answered (%zu asked); shard %u: %s", nlegs, failed->shard,
                 failed->msg);
        reply_get(c, g->call, g->t0, GRPC_STATUS_UNAVAILABLE, msg, NULL);
        get_free(g);
        return;
    }
    Funnel__V1__GetResponse resp = FUNNEL__V1__GET_RESPONSE__INIT;
    resp.docs = ar_alloc(a, req->n_ids * sizeof *resp.docs);
    Funnel__V1__GetDoc *miss = ar_alloc(a, req->n_ids * sizeof *miss);
    resp.failed_shards = ar_alloc(a, (nfailed ? nfailed : 1) * sizeof *resp.failed_shards);
    size_t *next = ar_alloc(a, nsh * sizeof *next);
    if (a->oom) {
        reply_get(c, g->call, g->t0, GRPC_STATUS_RESOURCE_EXHAUSTED, "coordinator out of memory", NULL);
        get_free(g);
        return;
    }
    memset(next, 0, nsh * sizeof *next);
    for (uint32_t sh = 0; sh < nsh; sh++)
        if (g->legs[sh] && g->legs[sh]->code != GRPC_STATUS_OK) resp.failed_shards[resp.n_failed_shards++] = sh;
    for (size_t i = 0; i < req->n_ids; i++) {
        uint32_t sh = g->shard_of[i];
        const get_leg *l = g->legs[sh];
        size_t j = next[sh]++;
        if (l->code == GRPC_STATUS_OK) {
            Funnel__V1__GetDoc *d = l->resp->docs[j];
            d->shard = sh;
            resp.docs[resp.n_docs++] = d;
        } else {
            funnel__v1__get_doc__init(&miss[i]);
            miss[i].id = req->ids[i];
            miss[i].shard = sh;
            resp.docs[resp.n_docs++] = &miss[i];
        }
    }
    size_t bytes = protobuf_c_message_get_packed_size(&resp.base);
    if (bytes > c->o.limits.max_reply_bytes) {
        char msg[256];
        snprintf(msg, sizeof msg, "reply: %zu bytes, over the limit of %" PRIu64
                 " bytes (max-reply-bytes): ask for fewer ids or fields", bytes, c->o.limits.max_reply_bytes);
        reply_get(c, g->call, g->t0, GRPC_STATUS_RESOURCE_EXHAUSTED, msg, NULL);
    } else {
        reply_get(c, g->call, g->t0, GRPC_STATUS_OK, NULL, &resp.base);
    }
    get_free(g);
}

static void handle_get(rpc_call_t *call, const ProtobufCMessage *msg, void *ud)
{
    coord_t *c = ud;
    const Funnel__V1__GetRequest *req = (const Funnel__V1__GetRequest *)msg;
    uint64_t t0 = uv_hrtime();
    c->requests++;
    if (c->stopping) {
        reply_get(c, call, t0, GRPC_STATUS_UNAVAILABLE, "coordinator is shutting down", NULL);
        return;
    }
    fn_errbuf eb = {{0}};
    if (coord_validate_get(req, &eb) != 0) {
        reply_get(c, call, t0, GRPC_STATUS_INVALID_ARGUMENT, eb.msg, NULL);
        return;
    }
    uint32_t nsh = c->view->nshards;
    get_req *g = calloc(1, sizeof *g);
    if (!g) {
        reply_get(c, call, t0, GRPC_STATUS_RESOURCE_EXHAUSTED, "coordinator out of memory", NULL);
        return;
    }
    g->c = c;
    g->v = view_ref(c->view);
    g->t0 = t0;
    g->call = call;
    g->req = req;
    fn_arena_init(&g->mem);
    pb_arena_allocator(&g->pba, &g->mem);
    fn_arena *a = &g->mem;
    g->shard_of = ar_alloc(a, req->n_ids * sizeof *g->shard_of);
    g->legs = ar_alloc(a, nsh * sizeof *g->legs);
    size_t *cnt = ar_alloc(a, nsh * sizeof *cnt);
    if (!a->oom) {
        memset(g->legs, 0, nsh * sizeof *g->legs);
        memset(cnt, 0, nsh * sizeof *cnt);
        /* routing by the live generation's bucket map (buckets.h) */
        for (size_t i = 0; i < req->n_ids; i++) {
            g->shard_of[i] = g->v->map.shard[idx_bucket_of(XXH64(req->ids[i], strlen(req->ids[i]), 0))];
            cnt[g->shard_of[i]]++;
        }
        for (uint32_t sh = 0; sh < nsh && !a->oom; sh++) {
            if (!cnt[sh]) continue;
            get_leg *l = ar_alloc(a, sizeof *l);
            char **ids = ar_alloc(a, cnt[sh] * sizeof *ids);
            if (a->oom) break;
            memset(l, 0, sizeof *l);
            l->g = g;
            l->shard = sh;
            l->code = GRPC_STATUS_UNAVAILABLE;
            funnel__v1__shard_get_request__init(&l->req);
            l->req.generation = c->gen_live ? ar_strdup(a, c->gen_live) : "";
            l->req.ids = ids;
            l->req.fields = req->fields;
            l->req.n_fields = req->n_fields;
            g->legs[sh] = l;
        }
        for (size_t i = 0; i < req->n_ids && !a->oom; i++) {
            get_leg *l = g->legs[g->shard_of[i]];
            l->req.ids[l->req.n_ids++] = req->ids[i];
        }
    }
    if (a->oom) {
        fn_arena_free(&g->mem);
        view_unref(g->v);
        free(g);
        reply_get(c, call, t0, GRPC_STATUS_RESOURCE_EXHAUSTED, "coordinator out of memory", NULL);
        return;
    }
    /* the client's deadline less our budget, as a search's */
    int64_t left_us, shard_us;
    g->deadline = shard_deadline(c, call, &left_us, &shard_us);
    g->shard_ms = shard_us / 1000;
    c->inflight_req++;
    g->pending = 1;   /* no finish while still starting */
    for (uint32_t sh = 0; sh < nsh; sh++) {
        get_leg *l = g->legs[sh];
        if (!l) continue;
        if (shard_us <= 0) {
            l->code = GRPC_STATUS_DEADLINE_EXCEEDED;
            snprintf(l->msg, sizeof l->msg, "no time left for shard calls");
            continue;
        }
        int trial;
        backend *b = pick_replica(c, g->v, sh, NULL, &trial);
        if (!b) {
            l->code = GRPC_STATUS_UNAVAILABLE;
            snprintf(l->msg, sizeof l->msg, "every replica is marked down");
            continue;
        }
        if (start_get_leg(l, b, trial) != 0) {
            l->code = GRPC_STATUS_INTERNAL;
            snprintf(l->msg, sizeof l->msg, "%s: could not start the call", b->addr);
            continue;
        }
        g->pending++;
    }
    if (--g->pending == 0) get_finish(g);
}

/* Call every shard with s->sreq (again, for a relaxed query): the slots are
 * (re)started; finish_search runs when the last one is done. shard_us: the
 * time the calls have (<= 0: none is made); left_us: the client's, for the
 * message. */
static void fan_out(search *s, int64_t shard_us, int64_t left_us)
{
    coord_t *c = s->c;
    uint32_t n = s->nslots;
    s->pending = n + 1;   /* +1: no finish while still fanning out */
    for (uint32_t i = 0; i < n; i++) {
        shard_slot *sl = &s->slots[i];
        sl->s = s;
        sl->shard = i;
        sl->b = s->v->b[s->v->first[i]];   /* named in failures if none is called */
        if (shard_us <= 0) {
            sl->code = GRPC_STATUS_DEADLINE_EXCEEDED;
            snprintf(sl->msg, sizeof sl->msg,
                     "no time left for shard calls (client deadline in %" PRId64 " us)", left_us);
            s->pending--;
            continue;
        }
        int trial;
        backend *b = pick_replica(c, s->v, i, NULL, &trial);
        if (!b) {   /* fail fast: waiting for a replica known to be down helps no one */
            sl->code = GRPC_STATUS_UNAVAILABLE;
            explain_skip(c, sl);
            s->pending--;
            continue;
        }
        if (start_shard_call(sl, b, trial, 0) != 0) {
            sl->code = GRPC_STATUS_INTERNAL;
            note_attempt(sl, b->addr, "could not start the call");
            s->pending--;
        }
    }
    if (--s->pending == 0) finish_search(s);
    else arm_htimer(s, 0);
}

/* Relaxation (docs/query-language.md "Relaxation"): an all_terms query whose
 * every shard answered with fewer than min_hits matches in all drops the
 * term in the most documents (the lowest idf; ties by bytes) - the words of
 * its text that analyse to it - and runs again. 1 when a new search is under
 * way, 0 to finish with what is here. */
/* Ask every shard again (relaxation, a deeper list): the slots start over,
 * within what is left of the search's deadline. */
static void refan(search *s)
{
    for (uint32_t i = 0; i < s->nslots; i++) {
        shard_slot *sl = &s->slots[i];
        sl->tries = 0;
        sl->nlive = 0;
        sl->hedged = 0;
        sl->left_out = 0;
        sl->took_us = 0;
        sl->code = GRPC_STATUS_OK;
        sl->detail_at = 0;
        sl->msg[0] = '\0';
        sl->resp = NULL;
    }
    int64_t ms = ms_until(s->deadline);
    fan_out(s, ms * 1000, ms * 1000);
}

static int relax_step(search *s)
{
    coord_t *c = s->c;
    /* only on the shards' answers: not again when feedback or the fetch
     * comes back here */
    if (!s->min_hits || (s->prf != PRF_OFF && s->prf != PRF_ASKED) || s->fetch != FETCH_NONE) return 0;
    uint64_t matches = 0;
    const Funnel__V1__ShardSearchResponse *qr = NULL;
    for (uint32_t i = 0; i < s->nslots; i++) {
        const shard_slot *sl = &s->slots[i];
        if (sl->code != GRPC_STATUS_OK || !sl->resp) return 0;   /* partial: counts would lie */
        matches += sl->resp->matches;
        if (!qr && sl->resp->n_terms && sl->resp->n_term_gdf == sl->resp->n_terms) qr = sl->resp;
    }
    if (!qr || matches >= s->min_hits || qr->n_terms < 2) return 0;
    size_t drop = 0;
    for (size_t i = 1; i < qr->n_terms; i++)
        if (qr->term_gdf[i] > qr->term_gdf[drop] ||
            (qr->term_gdf[i] == qr->term_gdf[drop] && strcmp(qr->terms[i], qr->terms[drop]) < 0))
            drop = i;
    const char *term = qr->terms[drop];
    /* the text without the words that analyse to that term */
    fn_arena *a = &s->mem;
    size_t len = strlen(s->qtext);
    char *out = ar_alloc(a, len + 1);
    if (!out) return 0;
    size_t o = 0;
    for (const char *p = s->qtext; *p;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
        const char *w = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') p++;
        if (p == w) break;
        relax_word rw = { term, 0 };
        idx_analyze(c->an, w, (size_t)(p - w), relax_cb, &rw);
        if (rw.hit) continue;
        if (o) out[o++] = ' ';
        memcpy(out + o, w, (size_t)(p - w));
        o += (size_t)(p - w);
    }
    out[o] = '\0';
    if (!o || o == len) return 0;   /* nothing left, or the term is no word of the text */
    const char **r = ar_alloc(a, (s->nrelaxed + 1) * sizeof *r);
    char *t = fn_arena_strdup(a, term);
    if (!r || !t) return 0;
    if (s->nrelaxed) memcpy(r, s->relaxed, s->nrelaxed * sizeof *r);
    r[s->nrelaxed++] = t;
    s->relaxed = r;
    s->qtext = out;
    s->sreq.query = out;
    refan(s);
    return 1;
}

/* The result page needs a deeper list (build_response set want_deeper):
 * every shard again, for 4x the hits (at most max-window). Only without a
 * re-ranker: there the list is the merge order, so nothing but the fan-out
 * is redone. */
static void deepen_step(search *s)
{
    coord_t *c = s->c;
    s->want_deeper = 0;
    s->deepen++;
    uint64_t k = (uint64_t)s->sreq.k * 4;
    if (k > c->o.limits.max_window) k = c->o.limits.max_window;
    s->sreq.k = (uint32_t)k;
    if (s->sreq.selection_k < s->sreq.k) s->sreq.selection_k = s->sreq.k;
    s->list_cap = k;
    s->merged = 0;
    refan(s);
}

/* ---- Admin/PushModel ---- */

/* The intent model's blend rules: every rule's vertical must be one of the
 * model's (a rule for another could never fire). At start and for a push. */
static int intent_rules_check(const coord_t *c, const intent_model_t *m, fn_errbuf *eb)
{
    const coord_page_opts *po = &c->o.page;
    for (size_t r = 0; r < po->nrules; r++) {
        const char *const *vn;
        size_t nv, i;
        intent_model_verticals(m, &vn, &nv);
        for (i = 0; i < nv && strcmp(vn[i], po->rules[r].vertical); i++) ;
        if (i == nv) {
            char list[512];
            size_t at = 0;
            list[0] = '\0';
            for (size_t j = 0; j < nv && at < sizeof list; j++)
                at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", j ? ", " : "", vn[j]);
            return fn_seterr(eb, FN_EINVAL, "blend-rule #%u %s: vertical '%s' is not one of the intent model's (%s)",
                             po->rules[r].ord, po->rules[r].name, po->rules[r].vertical, list);
        }
    }
    return 0;
}

/* "NAME (intent, N verticals: a, b, ...; B buckets)" into buf. */
static void intent_describe(const char *name, const intent_model_t *m, char *buf, size_t cap)
{
    if (!m) {
        snprintf(buf, cap, "none");
        return;
    }
    const char *const *vn;
    size_t nv;
    intent_model_verticals(m, &vn, &nv);
    size_t at = (size_t)snprintf(buf, cap, "%s (intent, %zu verticals: ", name, nv);
    for (size_t j = 0; j < nv && at < cap; j++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%s", j ? ", " : "", vn[j]);
    if (at < cap) snprintf(buf + at, cap - at, "; %u buckets)", (unsigned)intent_model_buckets(m));
}

/* --model-state: write what is about to go live (len 0: none) before it
 * does. 0, or a reply already sent (INTERNAL naming the file and the
 * reason: the push is refused, the old model stays live). */
static int state_keep(coord_t *c, rpc_call_t *call, const char *stage, const char *name, const void *p,
                      size_t len)
{
    if (!c->model_state) return 0;
    fn_errbuf eb = {{0}};
    int rc = fn_modelstate_save(c->model_state, stage, name, p, len, &eb);
    if (rc == 0) return 0;
    char msg[700];
    snprintf(msg, sizeof msg, "model state: %s (the model is not live: the one before stays)", fn_errmsg(&eb, rc));
    FN_ERROR("%s", msg);
    rpc_call_reply(call, GRPC_STATUS_INTERNAL, msg, NULL);
    return -1;
}

/* Stage 3: the coordinator's query-intent model (mode checked). A search
 * predicts on the loop thread when it arrives and copies the scores and
 * names it keeps, so a model can be freed as soon as it is replaced. */
static void push_intent(coord_t *c, rpc_call_t *call, const Funnel__V1__PushModelRequest *req, const char *name)
{
    Funnel__V1__PushModelResponse r = FUNNEL__V1__PUSH_MODEL_RESPONSE__INIT;
    fn_errbuf eb = {{0}};
    intent_model_t *m = NULL;
    int mode = (int)req->mode;
    if (req->model.len) {
        int rc = intent_model_parse((const char *)req->model.data, req->model.len, name, &m, &eb);
        if (rc == 0) rc = intent_rules_check(c, m, &eb);
        if (rc) {
            intent_model_free(m);
            FN_WARN("intent model push refused: %s", fn_errmsg(&eb, rc));
            rpc_call_reply(call, rc == -ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_INVALID_ARGUMENT,
                           fn_errmsg(&eb, rc), NULL);
            return;
        }
    }
    if (mode == RANK_PUSH_ACTIVATE && !c->intent_cand) {
        rpc_call_reply(call, GRPC_STATUS_FAILED_PRECONDITION, "activate: no intent model is staged", NULL);
        return;
    }
    if (mode == RANK_PUSH_STAGE) {
        if (c->model_state && fn_model_src_set(&c->intent_src, req->model.data, req->model.len, name)) {
            intent_model_free(m);
            rpc_call_reply(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "coordinator out of memory", NULL);
            return;
        }
        intent_model_free(c->intent_cand);
        c->intent_cand = m;
        intent_describe(name, m, c->intent_cand_desc, sizeof c->intent_cand_desc);
        FN_INFO("intent model %s staged (searches with candidate_model use it)", c->intent_cand_desc);
        r.model = c->intent_cand_desc;
    } else if (mode == RANK_PUSH_DISCARD) {
        intent_model_free(c->intent_cand);
        c->intent_cand = NULL;
        fn_model_src_clear(&c->intent_src);
        r.model = c->intent ? c->intent_desc : (char *)"none";
    } else {
        int kept = mode == RANK_PUSH_ACTIVATE
                       ? state_keep(c, call, "intent", c->intent_src.name, c->intent_src.p, c->intent_src.len)
                       : state_keep(c, call, "intent", name, req->model.data, req->model.len);
        if (kept) {
            intent_model_free(m);
            return;
        }
        intent_model_t *old = c->intent;
        if (mode == RANK_PUSH_ACTIVATE) {
            c->intent = c->intent_cand;
            c->intent_cand = NULL;
            fn_model_src_clear(&c->intent_src);
            memcpy(c->intent_desc, c->intent_cand_desc, sizeof c->intent_desc);
        } else {
            c->intent = m;
            intent_describe(name, m, c->intent_desc, sizeof c->intent_desc);
        }
        intent_model_free(old);
        if (!c->intent && c->o.page.nrules)
            FN_WARN("intent model removed: none of the %zu blend rules can fire", c->o.page.nrules);
        FN_INFO("intent model now %s (%s)", c->intent ? c->intent_desc : "none",
                mode == RANK_PUSH_ACTIVATE ? "staged, activated" : "push");
        r.model = c->intent ? c->intent_desc : (char *)"none";
    }
    rpc_call_reply(call, GRPC_STATUS_OK, NULL, &r.base);
}

typedef struct push_ctx {
    coord_t *c;
    rpc_call_t *call;
    int mode;
    size_t pending, ok, total;
    char failed[700];
    char desc[256];
} push_ctx;

static void push_finish(push_ctx *p)
{
    coord_t *c = p->c;
    static const char *const verb[] = { "pushed to", "staged on", "activated on", "discarded on" };
    const char *v = verb[p->mode];
    /* searches ask the shards for the candidate only while every replica
     * holds it; after an activation or a discard none is staged */
    if (p->mode == RANK_PUSH_STAGE && p->ok == p->total)
        snprintf(c->stage1_staged, sizeof c->stage1_staged, "%s", p->desc);
    else if (p->mode != RANK_PUSH_REPLACE)
        c->stage1_staged[0] = '\0';
    if (p->ok == p->total) {
        Funnel__V1__PushModelResponse r = FUNNEL__V1__PUSH_MODEL_RESPONSE__INIT;
        r.model = p->desc[0] ? p->desc : (char *)"none";
        r.replicas = (uint32_t)p->ok;
        FN_INFO("stage-1 model %s %s all %zu shard replicas", r.model, v, p->total);
        rpc_call_reply(p->call, GRPC_STATUS_OK, NULL, &r.base);
    } else {
        char msg[1000];
        snprintf(msg, sizeof msg, "stage-1 model %s %zu of %zu shard replicas (%s); not: %s",
                 p->mode == RANK_PUSH_REPLACE ? "reached" : v, p->ok, p->total,
                 p->mode == RANK_PUSH_STAGE ? "not usable by candidate_model searches: discard it and stage again"
                                            : "those keep it",
                 p->failed);
        FN_WARN("%s", msg);
        rpc_call_reply(p->call, GRPC_STATUS_UNAVAILABLE, msg, NULL);
    }
    free(p);
    c->inflight_req--;
    maybe_finish_stop(c);
}

typedef struct push_leg { push_ctx *p; backend *b; } push_leg;

static void on_push_done(void *ud, grpc_status_code code, const char *details, ProtobufCMessage *resp)
{
    push_leg *leg = ud;
    push_ctx *p = leg->p;
    coord_t *c = p->c;
    c->inflight_out--;
    if (code == GRPC_STATUS_OK) {
        p->ok++;
        /* ACTIVATE, DISCARD: the model now live, as the replicas say */
        const Funnel__V1__PushModelResponse *r = (const Funnel__V1__PushModelResponse *)resp;
        if (!p->desc[0] && r->model) snprintf(p->desc, sizeof p->desc, "%s", r->model);
        protobuf_c_message_free_unpacked(resp, NULL);
    } else {
        size_t used = strlen(p->failed);
        snprintf(p->failed + used, sizeof p->failed - used, "%s%s: %s %s", used ? "; " : "",
                 leg->b->addr, rpc_status_name(code), details ? details : "");
    }
    free(leg);
    if (--p->pending == 0) push_finish(p);
}

static void handle_push(rpc_call_t *call, const ProtobufCMessage *msg, void *ud)
{
    coord_t *c = ud;
    const Funnel__V1__PushModelRequest *req = (const Funnel__V1__PushModelRequest *)msg;
    if (c->stopping) {
        rpc_call_reply(call, GRPC_STATUS_UNAVAILABLE, "coordinator is shutting down", NULL);
        return;
    }
    fn_errbuf eb = {{0}};
    if (coord_validate_push(req, &eb)) {
        rpc_call_reply(call, GRPC_STATUS_INVALID_ARGUMENT, eb.msg, NULL);
        return;
    }
    const int mode = (int)req->mode;
    const char *name = req->name && *req->name ? req->name : "pushed model";
    if (req->stage == 3) {
        push_intent(c, call, req, name);
        return;
    }
    rank_ranker *rk = NULL;
    if (req->model.len) {
        /* a stage-1 model may use the cheap features only: checked here, so a
         * model the shards would refuse reaches none of them */
        unsigned char allowed[64];
        size_t nreg;
        const idx_feature_def *reg = idx_features(&nreg);
        for (size_t i = 0; i < c->nfnames; i++) allowed[i] = req->stage == 2 || reg[i].cost == IDX_FEAT_CHEAP;
        int rc = rank_ranker_parse((const char *)req->model.data, req->model.len, name, c->fnames,
                                   allowed, c->nfnames, &rk, &eb);
        if (rc) {
            FN_WARN("stage-%u model push refused: %s", (unsigned)req->stage, fn_errmsg(&eb, rc));
            rpc_call_reply(call, GRPC_STATUS_INVALID_ARGUMENT, fn_errmsg(&eb, rc), NULL);
            return;
        }
    }
    if (req->stage == 2) {
        Funnel__V1__PushModelResponse r = FUNNEL__V1__PUSH_MODEL_RESPONSE__INIT;
        if (mode == RANK_PUSH_STAGE) {
            if (c->model_state && fn_model_src_set(&c->stage2_src, req->model.data, req->model.len, name)) {
                rank_ranker_unref(rk);
                rpc_call_reply(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "coordinator out of memory", NULL);
                return;
            }
            rank_ranker_unref(c->stage2_cand);
            c->stage2_cand = rk;
            FN_INFO("stage-2 model %s staged (searches with candidate_model use it)", rank_ranker_describe(rk));
            r.model = (char *)rank_ranker_describe(rk);
        } else if (mode == RANK_PUSH_DISCARD) {
            rank_ranker_unref(c->stage2_cand);
            c->stage2_cand = NULL;
            fn_model_src_clear(&c->stage2_src);
            r.model = (char *)(c->stage2 ? rank_ranker_describe(c->stage2) : "none");
        } else {
            if (mode == RANK_PUSH_ACTIVATE) {
                if (!c->stage2_cand) {
                    rpc_call_reply(call, GRPC_STATUS_FAILED_PRECONDITION, "activate: no stage-2 model is staged",
                                   NULL);
                    return;
                }
                if (state_keep(c, call, "stage2", c->stage2_src.name, c->stage2_src.p, c->stage2_src.len)) return;
                rk = c->stage2_cand;
                c->stage2_cand = NULL;
                fn_model_src_clear(&c->stage2_src);
            } else if (state_keep(c, call, "stage2", name, req->model.data, req->model.len)) {
                rank_ranker_unref(rk);
                return;
            }
            rank_ranker *old = c->stage2;
            c->stage2 = rk;   /* loop thread: searches finishing from now on use it; in flight keep theirs */
            rank_ranker_unref(old);
            FN_INFO("stage-2 model now %s (%s)", rk ? rank_ranker_describe(rk) : "none",
                    mode == RANK_PUSH_ACTIVATE ? "staged, activated" : "push");
            r.model = (char *)(rk ? rank_ranker_describe(rk) : "none");
        }
        rpc_call_reply(call, GRPC_STATUS_OK, NULL, &r.base);
        return;
    }
    /* stage 1: on to every replica of every shard */
    if (mode == RANK_PUSH_ACTIVATE && !c->stage1_staged[0]) {
        rpc_call_reply(call, GRPC_STATUS_FAILED_PRECONDITION,
                       "activate: no stage-1 model is staged (a STAGE must reach every shard replica first)", NULL);
        return;
    }
    push_ctx *p = calloc(1, sizeof *p);
    if (!p) {
        rank_ranker_unref(rk);
        rpc_call_reply(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "coordinator out of memory", NULL);
        return;
    }
    p->c = c;
    p->call = call;
    p->mode = mode;
    p->total = c->view->nbackends;
    if (mode == RANK_PUSH_REPLACE || mode == RANK_PUSH_STAGE)
        snprintf(p->desc, sizeof p->desc, "%s", rk ? rank_ranker_describe(rk) : "none");
    /* ACTIVATE, DISCARD: the replicas' answers say what is live */
    rank_ranker_unref(rk);
    /* a new candidate: no search asks for one until every replica holds it */
    if (mode == RANK_PUSH_STAGE) c->stage1_staged[0] = '\0';
    c->inflight_req++;
    p->pending = 1;   /* no finish while still sending */
    for (uint32_t i = 0; i < c->view->nbackends; i++) {
        backend *b = c->view->b[i];
        push_leg *leg = malloc(sizeof *leg);
        int rc = leg ? 0 : -1;
        if (leg) {
            leg->p = p;
            leg->b = b;
            rc = rpc_async_unary(c->srv, b->ch, RPC_METHOD_ADMIN_PUSH_MODEL, &req->base,
                                 &funnel__v1__push_model_response__descriptor, deadline_after_ms(10000),
                                 on_push_done, leg);
        }
        if (rc == 0) {
            c->inflight_out++;
            p->pending++;
        } else {
            free(leg);
            size_t used = strlen(p->failed);
            snprintf(p->failed + used, sizeof p->failed - used, "%s%s: could not start the call",
                     used ? "; " : "", b->addr);
        }
    }
    if (--p->pending == 0) push_finish(p);
}

/* ---- Admin/Generation: index generations across the cluster ---- */

#define GEN_MAX_NAME 1024        /* as the shards' SHARD_MAX_GEN_NAME */
#define GEN_CALL_MS 120000       /* activate, rollback, discard, list */
/* a stage checks whole shard files, paced, and yields to a busy CPU (up to
 * 4x slower: --load-yield-pressure): minutes for a large index */
#define GEN_STAGE_MS 3600000

typedef struct gen_op {
    coord_t *c;
    rpc_call_t *call;
    Funnel__V1__GenerationRequest__Op op;
    char name[GEN_MAX_NAME + 1];
    size_t pending, ok, total;
    uint64_t docs;               /* the generation's documents (first replicas' answers) */
    char live[GEN_MAX_NAME + 1]; /* STAGE: the live generation the replicas report */
    int live_seen, live_differs;
    view *target;                /* the topology the verb goes to (a reference) */
    uint32_t next;               /* STAGE: the next replica to ask (one at a time) */
    int new_topology;            /* STAGE with a topology: it becomes the staged one */
    char failed[1200];
} gen_op;

typedef struct gen_leg { gen_op *g; backend *b; } gen_leg;

static int gen_send(gen_op *g, backend *b);

static void gen_set(char **slot, const char *v)
{
    free(*slot);
    *slot = v && *v ? strdup(v) : NULL;   /* out of memory: unset, which names no generation */
}

static void gen_reply_state(coord_t *c, rpc_call_t *call, const gen_op *g)
{
    Funnel__V1__GenerationResponse r = FUNNEL__V1__GENERATION_RESPONSE__INIT;
    Funnel__V1__LoadedGeneration lg = FUNNEL__V1__LOADED_GENERATION__INIT, *lp = &lg;
    r.live = c->gen_live ? c->gen_live : (char *)"";
    r.previous = c->gen_prev ? c->gen_prev : (char *)"";
    r.staged = c->gen_staged ? c->gen_staged : (char *)"";
    if (g && g->op != FUNNEL__V1__GENERATION_REQUEST__OP__DISCARD) {
        lg.generation = (char *)g->name;
        lg.state = (char *)(c->gen_live && strcmp(c->gen_live, g->name) == 0 ? "live"
                            : c->gen_staged && strcmp(c->gen_staged, g->name) == 0 ? "staged" : "previous");
        lg.docs = lg.docs_total = g->docs;
        r.loaded = &lp;
        r.n_loaded = 1;
    }
    r.replicas = g ? (uint32_t)g->ok : c->view->nbackends;
    rpc_call_reply(call, GRPC_STATUS_OK, NULL, &r.base);
}

static void gen_finish(gen_op *g)
{
    coord_t *c = g->c;
    const char *verb = g->op == FUNNEL__V1__GENERATION_REQUEST__OP__STAGE ? "stage"
                       : g->op == FUNNEL__V1__GENERATION_REQUEST__OP__DISCARD ? "discard" : "activate";
    if (g->ok < g->total) {
        char msg[2600];
        snprintf(msg, sizeof msg, "%s %s reached %zu of %zu shard replicas; not: %s%s", verb, g->name, g->ok,
                 g->total, g->failed,
                 g->op == FUNNEL__V1__GENERATION_REQUEST__OP__ACTIVATE ? " (searches still read the old one)" : "");
        FN_WARN("generation: %s", msg);
        rpc_call_reply(g->call, GRPC_STATUS_UNAVAILABLE, msg, NULL);
    } else if (g->op == FUNNEL__V1__GENERATION_REQUEST__OP__STAGE && g->live_differs) {
        char msg[2600];
        snprintf(msg, sizeof msg, "stage %s: the replicas serve different live generations (%s): publish one "
                 "generation to all first", g->name, g->failed);
        FN_WARN("generation: %s", msg);
        rpc_call_reply(g->call, GRPC_STATUS_FAILED_PRECONDITION, msg, NULL);
    } else {
        switch (g->op) {
        case FUNNEL__V1__GENERATION_REQUEST__OP__STAGE:
            /* before the first publish the coordinator names no generation;
             * from now on its searches name the one the shards serve, so the
             * switch below is one pointer change between two searches */
            if (!c->gen_live && g->live_seen) gen_set(&c->gen_live, g->live);
            if (g->new_topology || !c->gen_live || strcmp(c->gen_live, g->name) != 0) {
                gen_set(&c->gen_staged, g->name);
                view_unref(c->view_staged);
                c->view_staged = view_ref(g->target);
            }
            FN_INFO("generation %s staged on all %zu shard replicas (%llu documents)%s", g->name, g->ok,
                    (unsigned long long)g->docs, g->new_topology ? " with a new topology" : "");
            break;
        case FUNNEL__V1__GENERATION_REQUEST__OP__ACTIVATE: {
            /* the staged candidate first (it may carry the live name with a
             * new topology: add-replica), then the previous one (rollback) */
            int staged = c->gen_staged && strcmp(c->gen_staged, g->name) == 0;
            int prev = !staged && c->gen_prev && strcmp(c->gen_prev, g->name) == 0;
            if (staged || prev) {
                /* the references move: live -> previous, the activated one -> live */
                char *old = c->gen_live;
                view *oldv = c->view;
                c->gen_live = NULL;
                gen_set(&c->gen_live, g->name);
                view *nv = staged ? c->view_staged : c->view_prev;
                if (staged) {
                    c->view_staged = NULL;
                    gen_set(&c->gen_staged, NULL);
                    view_unref(c->view_prev);
                }
                c->view = nv ? nv : view_ref(oldv);
                free(c->gen_prev);
                c->gen_prev = old;
                c->view_prev = oldv;
                coord_metrics_shards(c, c->view->nshards);
            }
            FN_INFO("generation %s live (%llu documents, %u shards); previous %s", g->name,
                    (unsigned long long)g->docs, c->view->nshards, c->gen_prev ? c->gen_prev : "none");
            break;
        }
        default:   /* DISCARD */
            if (c->gen_staged && strcmp(c->gen_staged, g->name) == 0) {
                gen_set(&c->gen_staged, NULL);
                view_unref(c->view_staged);
                c->view_staged = NULL;
            }
            if (c->gen_prev && strcmp(c->gen_prev, g->name) == 0) {
                gen_set(&c->gen_prev, NULL);
                view_unref(c->view_prev);
                c->view_prev = NULL;
            }
            FN_INFO("generation %s discarded", g->name);
            break;
        }
        gen_reply_state(c, g->call, g);
    }
    c->gop = NULL;
    view_unref(g->target);
    free(g);
    c->inflight_req--;
    maybe_finish_stop(c);
}

static void on_gen_done(void *ud, grpc_status_code code, const char *details, ProtobufCMessage *resp)
{
    gen_leg *leg = ud;
    gen_op *g = leg->g;
    g->c->inflight_out--;
    if (code == GRPC_STATUS_OK) {
        Funnel__V1__GenerationResponse *r = (Funnel__V1__GenerationResponse *)resp;
        g->ok++;
        for (size_t i = 0; i < r->n_loaded; i++)
            if (leg->b->replica == 0 && strcmp(r->loaded[i]->generation, g->name) == 0) g->docs += r->loaded[i]->docs;
        /* the live generation, as the replicas of the live topology report it
         * (a shard being added serves the new generation already) */
        int in_live = 0;
        for (uint32_t i = 0; i < g->c->view->nbackends && !in_live; i++) in_live = g->c->view->b[i] == leg->b;
        if (g->op == FUNNEL__V1__GENERATION_REQUEST__OP__STAGE && in_live) {
            if (!g->live_seen) {
                snprintf(g->live, sizeof g->live, "%s", r->live);
                g->live_seen = 1;
            } else if (strcmp(g->live, r->live) != 0 && !g->live_differs) {
                g->live_differs = 1;
                snprintf(g->failed, sizeof g->failed, "%.500s on %s, %.500s elsewhere", r->live, leg->b->addr, g->live);
            }
        }
        protobuf_c_message_free_unpacked(resp, NULL);
    } else {
        size_t used = strlen(g->failed);
        snprintf(g->failed + used, sizeof g->failed - used, "%s%s: %s %s", used ? "; " : "", leg->b->addr,
                 rpc_status_name(code), details ? details : "");
    }
    free(leg);
    /* STAGE goes to one replica at a time: loading a generation costs a
     * shard a few hundred ms of CPU, and all at once on a loaded machine
     * queue the searches of every shard together */
    while (g->op == FUNNEL__V1__GENERATION_REQUEST__OP__STAGE && g->next < g->target->nbackends)
        if (gen_send(g, g->target->b[g->next++]) == 0) return;   /* this call's pending moves to the next */
    if (--g->pending == 0) gen_finish(g);
}

/* One replica's call of g's verb (pending counted by the caller). 0, or -1
 * with the replica named in g->failed. */
static int gen_send(gen_op *g, backend *b)
{
    coord_t *c = g->c;
    Funnel__V1__GenerationRequest rq = FUNNEL__V1__GENERATION_REQUEST__INIT;
    rq.op = g->op;
    rq.generation = g->name;
    rq.shards = g->target->nshards;   /* a topology with more shards: the generation has as many */
    gen_leg *leg = malloc(sizeof *leg);
    int rc = leg ? 0 : -1;
    if (leg) {
        leg->g = g;
        leg->b = b;
        rc = rpc_async_unary(c->srv, b->ch, RPC_METHOD_ADMIN_GENERATION, &rq.base,
                             &funnel__v1__generation_response__descriptor,
                             deadline_after_ms(g->op == FUNNEL__V1__GENERATION_REQUEST__OP__STAGE ? GEN_STAGE_MS
                                                                                                : GEN_CALL_MS),
                             on_gen_done, leg);
    }
    if (rc == 0) {
        c->inflight_out++;
        return 0;
    }
    free(leg);
    size_t used = strlen(g->failed);
    snprintf(g->failed + used, sizeof g->failed - used, "%s%s: could not start the call", used ? "; " : "", b->addr);
    return -1;
}

/* Send g's verb to every replica of every shard of its target topology
 * (STAGE: one after the other, on_gen_done sends the next). */
static void gen_fan_out(gen_op *g)
{
    coord_t *c = g->c;
    g->total = g->target->nbackends;
    c->inflight_req++;
    g->pending = 1;   /* no finish while still sending */
    int one = g->op == FUNNEL__V1__GENERATION_REQUEST__OP__STAGE;
    while (g->next < g->target->nbackends) {
        int rc = gen_send(g, g->target->b[g->next++]);
        if (rc == 0) g->pending++;
        if (rc == 0 && one) break;
    }
    if (--g->pending == 0) gen_finish(g);
}

static void handle_generation(rpc_call_t *call, const ProtobufCMessage *msg, void *ud)
{
    coord_t *c = ud;
    const Funnel__V1__GenerationRequest *req = (const Funnel__V1__GenerationRequest *)msg;
    const char *name = req->generation ? req->generation : "";
    if (c->stopping) {
        rpc_call_reply(call, GRPC_STATUS_UNAVAILABLE, "coordinator is shutting down", NULL);
        return;
    }
    if (req->op == FUNNEL__V1__GENERATION_REQUEST__OP__LIST) {
        gen_reply_state(c, call, NULL);
        return;
    }
    Funnel__V1__GenerationRequest__Op op = req->op;
    if (op == FUNNEL__V1__GENERATION_REQUEST__OP__ROLLBACK) {
        /* rollback = activate the previous one (still loaded on the shards) */
        if (!c->gen_prev) {
            rpc_call_reply(call, GRPC_STATUS_FAILED_PRECONDITION, "rollback: no previous generation", NULL);
            return;
        }
        name = c->gen_prev;
        op = FUNNEL__V1__GENERATION_REQUEST__OP__ACTIVATE;
    } else if (op != FUNNEL__V1__GENERATION_REQUEST__OP__STAGE && op != FUNNEL__V1__GENERATION_REQUEST__OP__ACTIVATE &&
               op != FUNNEL__V1__GENERATION_REQUEST__OP__DISCARD) {
        rpc_call_reply(call, GRPC_STATUS_INVALID_ARGUMENT, "op: not a known verb", NULL);
        return;
    }
    size_t len = strlen(name);
    if (len == 0 || name[0] != '/' || len > GEN_MAX_NAME) {
        char m[120];
        snprintf(m, sizeof m, "generation: want an absolute directory path of 1..%d bytes", GEN_MAX_NAME);
        rpc_call_reply(call, GRPC_STATUS_INVALID_ARGUMENT, m, NULL);
        return;
    }
    if (op == FUNNEL__V1__GENERATION_REQUEST__OP__ACTIVATE &&
        !((c->gen_staged && strcmp(name, c->gen_staged) == 0) || (c->gen_prev && strcmp(name, c->gen_prev) == 0) ||
          (c->gen_live && strcmp(name, c->gen_live) == 0))) {
        rpc_call_reply(call, GRPC_STATUS_FAILED_PRECONDITION,
                       "activate: the generation is not staged on this cluster (stage it first)", NULL);
        return;
    }
    if (op == FUNNEL__V1__GENERATION_REQUEST__OP__DISCARD && c->gen_live && strcmp(name, c->gen_live) == 0) {
        rpc_call_reply(call, GRPC_STATUS_FAILED_PRECONDITION, "discard: that is the live generation", NULL);
        return;
    }
    if (c->gop) {
        rpc_call_reply(call, GRPC_STATUS_UNAVAILABLE, "another generation change is running: retry when it is done",
                       NULL);
        return;
    }
    gen_op *g = calloc(1, sizeof *g);
    if (!g) {
        rpc_call_reply(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "coordinator out of memory", NULL);
        return;
    }
    g->c = c;
    g->call = call;
    g->op = op;
    snprintf(g->name, sizeof g->name, "%s", name);
    /* the topology the verb is for: a new one (STAGE with topology), the
     * staged or previous one's (ACTIVATE), else the live one */
    if (op == FUNNEL__V1__GENERATION_REQUEST__OP__STAGE && req->topology && *req->topology) {
        coord_topology t = {0};
        idx_bucket_map bm;
        fn_errbuf eb = {{0}};
        int rc = coord_topology_parse(req->topology, strlen(req->topology), "topology", &t, &eb);
        if (rc == 0 && req->buckets && *req->buckets) {
            rc = idx_buckets_parse(req->buckets, &bm, &eb);
            if (rc == 0 && bm.shards != t.nshards)
                rc = fn_seterr(&eb, FN_EINVAL, "buckets: the map has %u shards, the topology %u", bm.shards, t.nshards);
        }
        if (rc == 0 && !(g->target = view_new(c, &t, req->buckets && *req->buckets ? &bm : NULL, &eb))) rc = FN_EINVAL;
        coord_topology_free(&t);
        if (rc) {
            free(g);
            rpc_call_reply(call, rc == -ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_INVALID_ARGUMENT,
                           eb.msg, NULL);
            return;
        }
        g->new_topology = 1;
        coord_metrics_shards(c, g->target->nshards);
    } else if (op == FUNNEL__V1__GENERATION_REQUEST__OP__ACTIVATE && c->gen_staged && strcmp(name, c->gen_staged) == 0 &&
               c->view_staged) {
        g->target = view_ref(c->view_staged);
    } else if (op == FUNNEL__V1__GENERATION_REQUEST__OP__ACTIVATE && c->gen_prev && strcmp(name, c->gen_prev) == 0 &&
               c->view_prev) {
        g->target = view_ref(c->view_prev);
    } else {
        g->target = view_ref(c->view);
    }
    c->gop = g;
    gen_fan_out(g);
}

/* Repair: a replica without a generation searches name (restarted on an
 * older one) loads it, and makes it its live one if it is the cluster's.
 * One at a time per replica; searches meanwhile go to other replicas. */
typedef struct gen_fix { coord_t *c; backend *b; int activate; char name[GEN_MAX_NAME + 1]; } gen_fix;

static void on_fix_done(void *ud, grpc_status_code code, const char *details, ProtobufCMessage *resp)
{
    gen_fix *f = ud;
    coord_t *c = f->c;
    c->inflight_out--;
    if (resp) protobuf_c_message_free_unpacked(resp, NULL);
    if (code != GRPC_STATUS_OK) {
        FN_WARN("generation %s could not be loaded on %s: %s %s", f->name, f->b->addr, rpc_status_name(code),
                details ? details : "");
    } else if (f->activate && !c->stopping) {
        f->activate = 0;
        Funnel__V1__GenerationRequest rq = FUNNEL__V1__GENERATION_REQUEST__INIT;
        rq.op = FUNNEL__V1__GENERATION_REQUEST__OP__ACTIVATE;
        rq.generation = f->name;
        rq.shards = c->view->nshards;
        if (rpc_async_unary(c->srv, f->b->ch, RPC_METHOD_ADMIN_GENERATION, &rq.base,
                            &funnel__v1__generation_response__descriptor, deadline_after_ms(GEN_CALL_MS),
                            on_fix_done, f) == 0) {
            c->inflight_out++;
            return;
        }
    } else {
        FN_INFO("generation %s loaded on %s (it had restarted on another)", f->name, f->b->addr);
    }
    f->b->gen_repairing = 0;
    free(f);
    c->inflight_req--;
    maybe_finish_stop(c);
}

static void gen_repair(coord_t *c, backend *b, const char *gen)
{
    if (b->gen_repairing || c->stopping) return;
    int live = c->gen_live && strcmp(gen, c->gen_live) == 0;
    if (!live && !(c->gen_prev && strcmp(gen, c->gen_prev) == 0) &&
        !(c->gen_staged && strcmp(gen, c->gen_staged) == 0))
        return;
    gen_fix *f = calloc(1, sizeof *f);
    if (!f) return;
    f->c = c;
    f->b = b;
    f->activate = live;
    snprintf(f->name, sizeof f->name, "%s", gen);
    Funnel__V1__GenerationRequest rq = FUNNEL__V1__GENERATION_REQUEST__INIT;
    rq.op = FUNNEL__V1__GENERATION_REQUEST__OP__STAGE;
    rq.generation = f->name;
    /* the generation's shard count: its topology's (it may differ from
     * what the replica serves, after an add-shard) */
    const view *gv = live ? c->view
                     : c->gen_prev && strcmp(gen, c->gen_prev) == 0 ? c->view_prev : c->view_staged;
    rq.shards = gv ? gv->nshards : 0;
    if (rpc_async_unary(c->srv, b->ch, RPC_METHOD_ADMIN_GENERATION, &rq.base, &funnel__v1__generation_response__descriptor,
                        deadline_after_ms(GEN_STAGE_MS), on_fix_done, f) != 0) {
        free(f);
        return;
    }
    FN_WARN("%s lacks generation %s (restarted on another?): loading it there", b->addr, gen);
    b->gen_repairing = 1;
    c->inflight_out++;
    c->inflight_req++;
}

/* ---- Search/Update: live updates, routed to every replica of the owning shard ---- */

#define UPDATE_MAX_DOCS 1000

typedef struct upd_req {
    coord_t *c;
    rpc_call_t *call;
    view *v;                     /* the topology it was routed over (a reference) */
    Funnel__V1__UpdateRequest *per;   /* per shard: its operations (pointers into ops) */
    Funnel__V1__DocUpdate *ops;  /* the request's operations with their versions */
    size_t pending, legs;
    uint32_t applied, stale;
    uint64_t version;
    grpc_status_code worst;      /* the first failure's status (OK: none) */
    char failed[1000];
} upd_req;

typedef struct upd_leg { upd_req *u; backend *b; uint32_t shard; } upd_leg;

static void upd_finish(upd_req *u)
{
    coord_t *c = u->c;
    if (u->worst == GRPC_STATUS_OK) {
        Funnel__V1__UpdateResponse r = FUNNEL__V1__UPDATE_RESPONSE__INIT;
        r.applied = u->applied;
        r.stale = u->stale;
        r.version = u->version;
        rpc_call_reply(u->call, GRPC_STATUS_OK, NULL, &r.base);
    } else {
        /* not acknowledged: the client retries the whole request (last
         * writer wins makes the repeat harmless) */
        char msg[1100];
        snprintf(msg, sizeof msg, "%s%s", u->worst == GRPC_STATUS_INVALID_ARGUMENT ? "" :
                 "not stored on every replica (retry the request): ", u->failed);
        rpc_call_reply(u->call, u->worst, msg, NULL);
    }
    for (uint32_t s = 0; s < u->v->nshards; s++) free(u->per[s].docs);
    free(u->per);
    free(u->ops);
    view_unref(u->v);
    free(u);
    c->inflight_req--;
    maybe_finish_stop(c);
}

static void on_upd_done(void *ud, grpc_status_code code, const char *details, ProtobufCMessage *resp)
{
    upd_leg *leg = ud;
    upd_req *u = leg->u;
    u->c->inflight_out--;
    if (code == GRPC_STATUS_OK) {
        const Funnel__V1__UpdateResponse *r = (const Funnel__V1__UpdateResponse *)resp;
        /* it answers: a replica marked down gets its trial call now rather
         * than at the next probe (a Get right after the write goes there) */
        if (leg->b->state == BR_OPEN) br_half_open(u->c, leg->b, uv_now(u->c->loop), "answered an update");
        if (leg->b == u->v->b[u->v->first[leg->shard]]) {   /* the counts of one replica per shard */
            u->applied += r->applied;
            u->stale += r->stale;
        }
        protobuf_c_message_free_unpacked(resp, NULL);
    } else {
        if (u->worst == GRPC_STATUS_OK || code == GRPC_STATUS_INVALID_ARGUMENT) u->worst = code;
        size_t used = strlen(u->failed);
        snprintf(u->failed + used, sizeof u->failed - used, "%sshard %u %s: %s %s", used ? "; " : "", leg->shard,
                 leg->b->addr, rpc_status_name(code), details ? details : "");
    }
    free(leg);
    if (--u->pending == 0) upd_finish(u);
}

static void handle_update(rpc_call_t *call, const ProtobufCMessage *msg, void *ud)
{
    coord_t *c = ud;
    const Funnel__V1__UpdateRequest *req = (const Funnel__V1__UpdateRequest *)msg;
    if (c->stopping) {
        rpc_call_reply(call, GRPC_STATUS_UNAVAILABLE, "coordinator is shutting down", NULL);
        return;
    }
    char why[300] = "";
    if (req->n_docs == 0 || req->n_docs > UPDATE_MAX_DOCS)
        snprintf(why, sizeof why, "docs: %zu, want 1..%d", req->n_docs, UPDATE_MAX_DOCS);
    for (size_t i = 0; i < req->n_docs && !why[0]; i++) {
        const Funnel__V1__DocUpdate *d = req->docs[i];
        size_t l = strlen(d->id);
        if (l == 0 || l > 511) snprintf(why, sizeof why, "docs[%zu].id: %zu bytes, want 1..511", i, l);
        else if (d->remove && d->doc && *d->doc) snprintf(why, sizeof why, "docs[%zu]: a delete carries no doc", i);
        else if (d->prune) snprintf(why, sizeof why, "docs[%zu]: prune is a merge's, sent to the shards", i);
        else if (!d->remove && (!d->doc || !*d->doc)) snprintf(why, sizeof why, "docs[%zu]: a put needs doc (a JSON object)", i);
    }
    if (why[0]) {
        rpc_call_reply(call, GRPC_STATUS_INVALID_ARGUMENT, why, NULL);
        return;
    }
    upd_req *u = calloc(1, sizeof *u);
    view *v = c->view;
    if (u) u->per = calloc(v->nshards, sizeof *u->per);
    Funnel__V1__DocUpdate *ops = u && u->per ? calloc(req->n_docs, sizeof *ops) : NULL;
    uint32_t *cnt = ops ? calloc(v->nshards, sizeof *cnt) : NULL;
    int oom = !cnt;
    for (uint32_t s = 0; s < v->nshards && !oom; s++) funnel__v1__update_request__init(&u->per[s]);
    /* versions: the coordinator's clock in microseconds, strictly rising */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now_us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
    uint32_t *shard_of = oom ? NULL : calloc(req->n_docs, sizeof *shard_of);
    oom |= !shard_of;
    for (size_t i = 0; i < req->n_docs && !oom; i++) {
        shard_of[i] = v->map.shard[idx_bucket_of(XXH64(req->docs[i]->id, strlen(req->docs[i]->id), 0))];
        cnt[shard_of[i]]++;
        ops[i] = *req->docs[i];   /* borrows the request's strings */
        c->upd_clock = now_us > c->upd_clock ? now_us : c->upd_clock + 1;
        ops[i].version = c->upd_clock;
    }
    for (uint32_t s = 0; s < v->nshards && !oom; s++)
        if (cnt[s] && !(u->per[s].docs = calloc(cnt[s], sizeof *u->per[s].docs))) oom = 1;
    for (size_t i = 0; i < req->n_docs && !oom; i++) {
        Funnel__V1__UpdateRequest *p = &u->per[shard_of[i]];
        p->docs[p->n_docs++] = &ops[i];
    }
    free(cnt);
    free(shard_of);
    if (oom) {
        if (u && u->per)
            for (uint32_t s = 0; s < v->nshards; s++) free(u->per[s].docs);
        if (u) free(u->per);
        free(u);
        free(ops);
        rpc_call_reply(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "coordinator out of memory", NULL);
        return;
    }
    u->c = c;
    u->call = call;
    u->v = view_ref(v);
    u->ops = ops;
    u->version = c->upd_clock;
    c->inflight_req++;
    u->pending = 1;   /* no finish while still sending */
    /* every replica of the owning shard stores it before the acknowledgement */
    for (uint32_t s = 0; s < v->nshards; s++) {
        if (!u->per[s].n_docs) continue;
        for (uint32_t r = 0; r < v->nrep[s]; r++) {
            backend *b = v->b[v->first[s] + r];
            upd_leg *leg = malloc(sizeof *leg);
            int rc = leg ? 0 : -1;
            if (leg) {
                *leg = (upd_leg){ u, b, s };
                rc = rpc_async_unary(c->srv, b->ch, RPC_METHOD_SHARD_UPDATE, &u->per[s].base,
                                     &funnel__v1__update_response__descriptor, deadline_after_ms(30000),
                                     on_upd_done, leg);
            }
            if (rc == 0) {
                c->inflight_out++;
                u->pending++;
            } else {
                free(leg);
                if (u->worst == GRPC_STATUS_OK) u->worst = GRPC_STATUS_UNAVAILABLE;
                size_t used = strlen(u->failed);
                snprintf(u->failed + used, sizeof u->failed - used, "%sshard %u %s: could not start the call",
                         used ? "; " : "", s, b->addr);
            }
        }
    }
    if (--u->pending == 0) upd_finish(u);
}

static void handle_status(rpc_call_t *call, const ProtobufCMessage *msg, void *ud)
{
    coord_t *c = ud;
    (void)msg;
    Funnel__V1__StatusResponse r;
    funnel__v1__status_response__init(&r);
    r.role = (char *)"coordinator";
    r.pid = (uint32_t)getpid();
    r.uptime_ms = uv_now(c->loop) - c->start_ms;
    r.requests = c->requests;
    r.errors = c->errors;
    r.shards = c->view->nshards;
    r.stage2_model = (char *)(c->stage2 ? rank_ranker_describe(c->stage2) : "");
    r.stage1_staged = c->stage1_staged;
    r.stage2_staged = (char *)(c->stage2_cand ? rank_ranker_describe(c->stage2_cand) : "");
    r.intent_model = c->intent ? c->intent_desc : (char *)"";
    r.intent_staged = c->intent_cand ? c->intent_cand_desc : (char *)"";
    r.generation = c->gen_live ? c->gen_live : (char *)"";
    const view *v = c->view;
    Funnel__V1__ProcessStatus *ps = calloc(v->nbackends, sizeof *ps);
    Funnel__V1__ProcessStatus **pp = calloc(v->nbackends, sizeof *pp);
    char (*detail)[512] = calloc(v->nbackends, sizeof *detail);
    if (!ps || !pp || !detail) {
        reply(c, call, GRPC_STATUS_RESOURCE_EXHAUSTED, "coordinator out of memory", NULL);
        goto out;
    }
    uint64_t now = uv_now(c->loop);
    for (uint32_t i = 0; i < v->nbackends; i++) {
        backend *b = v->b[i];
        funnel__v1__process_status__init(&ps[i]);
        ps[i].role = (char *)"shard";
        ps[i].address = (char *)b->addr;
        ps[i].shard = b->shard;
        ps[i].healthy = b->state == BR_CLOSED && b->ok_seen;
        char *d = detail[i];
        size_t cap = sizeof detail[i];
        int w = snprintf(d, cap, "shard %u replica %u: %s for %.1f s", b->shard, b->replica,
                         br_name[b->state], (double)(now - b->since_ms) / 1000.0);
        /* every snprintf below appends within cap (w stays < cap) */
#define APPEND(...) do { if (w >= 0 && (size_t)w < cap) w += snprintf(d + w, cap - (size_t)w, __VA_ARGS__); } while (0)
        if (b->state == BR_CLOSED && !b->ok_seen) {
            APPEND(b->last_err[0] ? ", no OK answer yet" : ", not checked yet");
        } else if (b->state == BR_CLOSED) {
            APPEND(" (healthy), last OK %" PRIu64 " ms ago", now - b->last_ok_ms);
        } else if (b->state == BR_OPEN) {
            APPEND(" (down, not called): %s (%" PRIu64 " ms ago)", b->last_err, now - b->last_err_ms);
            if (b->hold_until_ms > now)
                APPEND("; held %.1f s more after %u quick failure%s", (double)(b->hold_until_ms - now) / 1000.0,
                       b->flaps, b->flaps == 1 ? "" : "s");
        } else {
            APPEND(" (answers probes again; %s)", b->trial ? "trial call in flight" : "next search call is its trial");
        }
        if (b->state != BR_OPEN && b->last_err[0])
            APPEND("; last error %" PRIu64 " ms ago: %s", now - b->last_err_ms, b->last_err);
        APPEND("; calls %" PRIu64 " failed %" PRIu64 " skipped %" PRIu64, b->calls, b->failures, b->skipped);
        APPEND("; latency ewma %.2f ms, %u in flight, %" PRIu64 " hedges", b->rs.ewma_us / 1000.0,
               b->rs.outstanding, b->hedges);
        if (b->lat.n >= 16)
            APPEND("; p50 %.2f p95 %.2f p99 %.2f ms", b->lat.p50_us / 1000.0, b->lat.p95_us / 1000.0,
                   b->lat.p99_us / 1000.0);
#undef APPEND
        ps[i].detail = d;
        pp[i] = &ps[i];
    }
    r.n_backends = v->nbackends;
    r.backends = pp;
    /* Admin calls are not searches: they count in neither requests nor errors. */
    rpc_call_reply(call, GRPC_STATUS_OK, NULL, &r.base);
out:
    free(detail);
    free(pp);
    free(ps);
}

/* ---- health probes ---- */

typedef struct probe_ctx { backend *b; coord_t *c; } probe_ctx;

static const char *serving_name(int st)
{
    static const char *const names[] = { "UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN" };
    return st >= 0 && st < 4 ? names[st] : "status?";
}

/* A probe failure opens a replica; a success lets an open one (past its
 * hold) be tried again. Probes run for replicas in every state. */
static void on_probe_done(void *ud, grpc_status_code code, const char *details,
                          ProtobufCMessage *resp)
{
    probe_ctx *p = ud;
    coord_t *c = p->c;
    backend *b = p->b;
    free(p);
    c->inflight_out--;
    b->probe_inflight = 0;
    uint64_t now = uv_now(c->loop);
    int ok = 0;
    /* Until a replica has answered once, a probe that times out may just be
     * a slow first connection (a loaded machine, valgrind): it does not
     * mark the replica down (its failed search calls still can). */
    int first_contact = !b->answered && code == GRPC_STATUS_DEADLINE_EXCEEDED;
    if (code == GRPC_STATUS_OK) {
        b->answered = 1;
        Grpc__Health__V1__HealthCheckResponse *hr = (Grpc__Health__V1__HealthCheckResponse *)resp;
        ok = hr->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
        if (!ok) {
            snprintf(b->last_err, sizeof b->last_err, "probe %s", serving_name((int)hr->status));
            b->last_err_ms = now;
        }
        protobuf_c_message_free_unpacked(resp, NULL);
    } else {
        set_err(b, now, "probe", code, details);
    }
    if (ok) {
        b->ok_seen = 1;
        b->last_ok_ms = now;
        if (b->state == BR_OPEN && now >= b->hold_until_ms)
            br_half_open(c, b, now, "answers its probe again");
    } else if (b->state != BR_OPEN && !first_contact) {
        br_open(c, b, now, 0, b->last_err);
    }
    maybe_finish_stop(c);
}

/* Ticks every down-probe interval: replicas that are open or half-open are
 * probed at each tick (if their last probe has ended: one to a stopped
 * process only ends at its deadline), closed ones every health interval. */
static void on_timer(uv_timer_t *t)
{
    coord_t *c = t->data;
    if (c->stopping) return;
    static const Grpc__Health__V1__HealthCheckRequest req_init = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    Grpc__Health__V1__HealthCheckRequest req = req_init;
    uint64_t now = uv_now(c->loop);
    for (uint32_t i = 0; i < c->nall; i++) {
        backend *b = c->all[i];
        if (b->probe_inflight || !b->views) continue;   /* retired: no view calls it */
        int64_t every = b->state == BR_CLOSED ? c->o.health_interval_ms : c->down_probe_ms;
        if (b->probed && now - b->probe_ms < (uint64_t)every) continue;
        probe_ctx *p = malloc(sizeof *p);
        if (!p) return;
        p->b = b;
        p->c = c;
        if (rpc_async_unary(c->srv, b->ch, RPC_METHOD_HEALTH_CHECK, &req.base,
                            &grpc__health__v1__health_check_response__descriptor,
                            deadline_after_ms(c->o.probe_deadline_ms), on_probe_done, p) == 0) {
            b->probe_inflight = 1;
            b->probed = 1;
            b->probe_ms = now;
            c->inflight_out++;
        } else {
            free(p);
        }
    }
}

/* ---- start / stop ---- */

static void free_coord(coord_t *c)
{
    rank_ranker_unref(c->stage2);
    rank_ranker_unref(c->stage2_cand);
    spell_dict_destroy(c->spell);
    syn_dict_destroy(c->syn);
    intent_model_free(c->intent);
    intent_model_free(c->intent_cand);
    fn_model_src_clear(&c->stage2_src);
    fn_model_src_clear(&c->intent_src);
    free(c->model_state);
    idx_analyzer_destroy(c->an);
    idx_analyzer_destroy(c->an_raw);
    coord_implog_close(c->implog);
    coord_exps_free(c->exps);
    view_unref(c->view);
    view_unref(c->view_prev);
    view_unref(c->view_staged);
    for (uint32_t i = 0; i < c->nall; i++) {
        if (c->all[i]->ch) grpc_channel_destroy(c->all[i]->ch);
        free(c->all[i]);
    }
    free(c->all);
    coord_metrics_free(&c->m);
    free(c->gen_live);
    free(c->gen_prev);
    free(c->gen_staged);
    free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    coord_t *c = h->data;
    void (*done)(void *) = c->done;
    void *ud = c->done_ud;
    free_coord(c);
    if (done) done(ud);
}

static void on_trim_closed(uv_handle_t *h)   /* then the timer, whose close frees c */
{
    coord_t *c = h->data;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static void on_server_stopped(void *ud)
{
    coord_t *c = ud;
    c->srv = NULL;
    fn_mem_timer_close(&c->trim, on_trim_closed);
}

/* The server goes last: its completion queue carries our outgoing calls. */
static void maybe_finish_stop(coord_t *c)
{
    if (!c->stopping || c->server_stopping || c->inflight_req || c->inflight_out || c->search_timers) return;
    c->server_stopping = 1;
    rpc_server_stop(c->srv, on_server_stopped, c);
}

void coord_stop(coord_t *c, void (*done)(void *ud), void *ud)
{
    c->done = done;
    c->done_ud = ud;
    c->stopping = 1;
    rpc_server_set_serving(c->srv, 0);
    uv_timer_stop(&c->timer);
    FN_INFO("stopping: %zu searches and %zu shard calls in flight",
            c->inflight_req, c->inflight_out);
    maybe_finish_stop(c);
}

int coord_port(const coord_t *c)
{
    return rpc_server_port(c->srv);
}

int coord_start(uv_loop_t *loop, const coord_opts *o, coord_t **out, fn_errbuf *eb)
{
    int rc;
    const coord_topology *t = o->topo;
    if (!t || t->nshards == 0) return fn_seterr(eb, FN_EINVAL, "empty topology");
    coord_t *c = calloc(1, sizeof *c);
    if (!c) return fn_seterr(eb, -ENOMEM, "out of memory");
    c->loop = loop;
    c->o = *o;
    /* zero limits (a zero-initialised coord_opts) mean the defaults */
    if (!c->o.limits.max_explain_hits) c->o.limits.max_explain_hits = COORD_DEFAULT_EXPLAIN_HITS;
    if (!c->o.limits.max_reply_bytes) c->o.limits.max_reply_bytes = COORD_DEFAULT_REPLY_BYTES;
    c->start_ms = uv_now(loop);
    coord_opts *co = &c->o;
    if (!co->selection_k) co->selection_k = COORD_DEFAULT_SELECTION_K;
    if (!co->stage1_k) co->stage1_k = COORD_DEFAULT_STAGE1_K;
    if (!co->stage2_k) co->stage2_k = COORD_DEFAULT_STAGE2_K;
    if (!(co->overprovision >= 1)) co->overprovision = COORD_DEFAULT_OVERPROVISION;
    size_t nreg;
    const idx_feature_def *reg = idx_features(&nreg);
    c->nfnames = nreg < 64 ? nreg : 64;
    for (size_t i = 0; i < c->nfnames; i++) c->fnames[i] = reg[i].name;
    if (co->model_state && *co->model_state && !(c->model_state = strdup(co->model_state))) {
        free(c);
        return fn_seterr(eb, -ENOMEM, "out of memory");
    }
    fn_modelstate st;
    rc = c->model_state ? fn_modelstate_load(c->model_state, "stage2", &st, eb) : 1;
    if (rc == 0) {   /* the last push wins over --stage2-model */
        if (st.len) rc = rank_ranker_parse(st.model, st.len, st.name, c->fnames, NULL, c->nfnames, &c->stage2, eb);
        if (rc == 0)
            FN_INFO("stage-2 model %s from %s (the last push; --stage2-model %s not used)",
                    c->stage2 ? rank_ranker_describe(c->stage2) : "none", st.path,
                    co->stage2_model && *co->stage2_model ? co->stage2_model : "(none)");
        else
            fn_modelstate_blame(&st, rc, eb);
        fn_modelstate_free(&st);
    } else if (rc == 1) {
        rc = co->stage2_model && *co->stage2_model
                 ? rank_ranker_load(co->stage2_model, c->fnames, NULL, c->nfnames, &c->stage2, eb)
                 : 0;
    }
    if (rc) {
        free(c->model_state);
        free(c);
        return rc;
    }
    co->stage2_model = NULL;   /* the caller's string; the ranker keeps its own copy */
    if (co->impressions_log && *co->impressions_log &&
        (rc = coord_implog_open(co->impressions_log, co->impressions_max_bytes, co->impressions_keep,
                                &c->implog, eb))) {
        rank_ranker_unref(c->stage2);
        free(c);
        return rc;
    }
    co->impressions_log = NULL;
    /* the experiments' arms' models are loaded now: a bad one stops the start */
    if (co->experiments && *co->experiments &&
        (rc = coord_exps_load(co->experiments, c->fnames, c->nfnames, &c->exps, eb)))
        goto fail_alloc;
    co->experiments = NULL;
    /* the spelling dictionary and word list: a bad file stops the start */
    if (co->spell_dict && *co->spell_dict) {
        rc = spell_dict_load(co->spell_dict, &c->spell, eb);
        /* spell-wordlist: files separated by ':' (American and British English) */
        for (const char *p = co->spell_wordlist; !rc && p && *p;) {
            const char *e = strchr(p, ':');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            char path[4096];
            if (n && n < sizeof path) {
                memcpy(path, p, n);
                path[n] = '\0';
                rc = spell_dict_load_wordlist(c->spell, path, eb);
            }
            p = e ? e + 1 : NULL;
        }
        if (rc ||
            (rc = spell_dict_set_stemmer(c->spell, co->spell_stemmer, eb)) ||
            (rc = spell_dict_finish(c->spell))) {
            if (rc == -ENOMEM) fn_seterr(eb, rc, "spell-dict: out of memory");
            goto fail_alloc;
        }
    }
    co->spell_dict = co->spell_wordlist = co->spell_stemmer = NULL;
    /* the index's analyzer (synonym terms, relaxation), and WordNet */
    {
        idx_analyzer_opts ao;
        char storage[512];
        const char *desc = co->analyzer && *co->analyzer ? co->analyzer
                                                          : "stemmer=english;stopwords=english;max_token_bytes=64";
        if (idx_analyzer_opts_parse(desc, &ao, storage, sizeof storage) != 0) {
            rc = fn_seterr(eb, FN_EINVAL, "analyzer: cannot parse \"%s\"", desc);
            goto fail_alloc;
        }
        if ((rc = idx_analyzer_create(&ao, &c->an, eb))) goto fail_alloc;
        ao.stemmer = "none";
        if ((rc = idx_analyzer_create(&ao, &c->an_raw, eb))) goto fail_alloc;
        if (co->synonyms && *co->synonyms && (rc = syn_dict_load(co->synonyms, co->synonym_senses, &c->syn, eb)))
            goto fail_alloc;
        rc = c->model_state ? fn_modelstate_load(c->model_state, "intent", &st, eb) : 1;
        if (rc == 0) {   /* the last push wins over --intent-model */
            if (st.len) rc = intent_model_parse(st.model, st.len, st.name, &c->intent, eb);
            if (rc == 0) {
                intent_describe(st.name, c->intent, c->intent_desc, sizeof c->intent_desc);
                FN_INFO("intent model %s from %s (the last push; --intent-model %s not used)",
                        c->intent ? c->intent_desc : "none", st.path,
                        co->intent_model && *co->intent_model ? co->intent_model : "(none)");
            } else {
                fn_modelstate_blame(&st, rc, eb);
            }
            fn_modelstate_free(&st);
            if (rc) goto fail_alloc;
        } else if (rc < 0) {
            goto fail_alloc;
        } else {
            rc = 0;
            if (co->intent_model && *co->intent_model && (rc = intent_model_load(co->intent_model, &c->intent, eb)))
                goto fail_alloc;
            if (c->intent) {
                const char *base = strrchr(co->intent_model, '/');
                intent_describe(base ? base + 1 : co->intent_model, c->intent, c->intent_desc, sizeof c->intent_desc);
            }
        }
    }
    /* a slot rule for a vertical the intent model does not know could
     * never fire: refuse it at start rather than ignore it per query */
    if (co->page.nrules && !c->intent)
        FN_WARN("%zu blend rules but no intent model (intent-model): no rule can fire", co->page.nrules);
    if (c->intent && (rc = intent_rules_check(c, c->intent, eb))) goto fail_alloc;
    co->intent_model = NULL;
    co->synonyms = co->analyzer = NULL;
    if (!(co->spell_min_score < 0)) co->spell_min_score = SPELL_DEFAULT_MIN_SCORE;
    if (co->probe_deadline_ms <= 0) co->probe_deadline_ms = COORD_DEFAULT_PROBE_DEADLINE_MS;
    if (co->down_probe_interval_ms <= 0) co->down_probe_interval_ms = COORD_DEFAULT_DOWN_PROBE_MS;
    if (co->breaker_failures == 0) co->breaker_failures = COORD_DEFAULT_BREAKER_FAILURES;
    if (co->breaker_backoff_ms <= 0) co->breaker_backoff_ms = COORD_DEFAULT_BREAKER_BACKOFF_MS;
    if (co->breaker_max_backoff_ms <= 0) co->breaker_max_backoff_ms = COORD_DEFAULT_BREAKER_MAX_BACKOFF_MS;
    if (co->breaker_max_backoff_ms < co->breaker_backoff_ms) co->breaker_max_backoff_ms = co->breaker_backoff_ms;
    /* 0 = the default, negative = off (coord.h) */
    if (co->hedge_percentile == 0) co->hedge_percentile = COORD_DEFAULT_HEDGE_PERCENTILE;
    if (co->hedge_percentile < 0) co->hedge_percentile = 0;
    if (co->hedge_min_ms <= 0) co->hedge_min_ms = COORD_DEFAULT_HEDGE_MIN_MS;
    if (co->retry_budget == 0) co->retry_budget = COORD_DEFAULT_RETRY_BUDGET;
    if (co->retry_budget < 0) co->retry_budget = 0;
    c->down_probe_ms = co->down_probe_interval_ms;
    if (co->health_interval_ms > 0 && co->health_interval_ms < c->down_probe_ms)
        c->down_probe_ms = co->health_interval_ms;
    if (!(c->view = view_new(c, t, NULL, eb))) {
        rc = eb && eb->msg[0] && strstr(eb->msg, "channel") ? FN_EINVAL : -ENOMEM;
        goto fail_alloc;
    }
    /* retries and hedges: ratio of the first calls, floor 10 a second */
    budget_init(&c->budget, c->o.retry_budget, 10, 100, uv_now(loop));
    adm_init(&c->adm, c->o.min_inflight ? c->o.min_inflight : COORD_DEFAULT_MIN_INFLIGHT,
             c->o.max_inflight ? c->o.max_inflight : 1,
             (double)(c->o.target_latency_ms ? c->o.target_latency_ms : COORD_DEFAULT_TARGET_LATENCY_MS),
             uv_now(loop));
    c->adm.grace_ms = c->o.shed_grace_ms > 0 ? (uint64_t)c->o.shed_grace_ms : 0;
    if (coord_metrics_init(c) != 0) {
        rc = fn_seterr(eb, -ENOMEM, "out of memory");
        goto fail_alloc;
    }
    c->methods[0] = (rpc_method){ RPC_METHOD_SEARCH, &funnel__v1__search_request__descriptor,
                                  handle_search, c };
    c->methods[1] = (rpc_method){ RPC_METHOD_ADMIN_STATUS, &funnel__v1__status_request__descriptor,
                                  handle_status, c };
    c->methods[2] = (rpc_method){ RPC_METHOD_ADMIN_PUSH_MODEL, &funnel__v1__push_model_request__descriptor,
                                  handle_push, c };
    c->methods[3] = (rpc_method){ RPC_METHOD_GET, &funnel__v1__get_request__descriptor, handle_get, c };
    c->methods[4] = (rpc_method){ RPC_METHOD_ADMIN_GENERATION, &funnel__v1__generation_request__descriptor,
                                  handle_generation, c };
    c->methods[5] = (rpc_method){ RPC_METHOD_UPDATE, &funnel__v1__update_request__descriptor, handle_update, c };
    rpc_server_opts so = { o->listen, c->methods, 6, 0 };
    rc = rpc_server_start(loop, &so, &c->srv, eb);
    if (rc != 0) goto fail_alloc;
    rc = uv_timer_init(loop, &c->timer);
    if (rc != 0) {
        /* Cannot happen on Linux; the server would need an async stop here. */
        fn_seterr(eb, rc, "uv_timer_init: %s", uv_strerror(rc));
        abort();
    }
    c->timer.data = c;
    fn_mem_timer_start(&c->trim, loop, &c->requests, c);
    if (o->health_interval_ms > 0)
        uv_timer_start(&c->timer, on_timer, 0, (uint64_t)c->down_probe_ms);
    rpc_server_set_serving(c->srv, 1);
    *out = c;
    return 0;

fail_alloc:
    free_coord(c);
    return rc;
}
