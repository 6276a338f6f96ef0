/* shard.c - see shard.h. */
#include "shard.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "fn_arena.h"
#include "fn_memtimer.h"
#include "fn_modelstate.h"
#include "fn_log.h"
#include "fn_metrics.h"
#include "fn_pressure.h"
#include "filter.h"
#include "fn_query.h"
#include "funnel.pb-c.h"
#include "dupsig.h"
#include "feature_registry.h"
#include "integrity.h"
#include "prf.h"
#include "knn.h"
#include "snippet.h"
#include "stage1.h"
#include "stored.h"
#include "rpc_client.h"   /* method paths */
#include "updates.h"
#include "builder_int.h"      /* idx_corpus_line_check: a put is checked as a corpus line */
#include <xxhash.h>
#include <jansson.h>
#include "rpc_server.h"

/* The methods the request metrics are kept by (sm_names: their label). */
enum { SM_SEARCH, SM_RESCORE, SM_FETCH, SM_GET, SM_STATUS, SM_PUSH, SM_GENERATION, SM_UPDATE, SM_NMETHODS };
static const char *const sm_names[SM_NMETHODS] = { "search", "rescore", "fetch", "get", "status", "push",
                                                   "generation", "update" };
#define SM_NSTATUS 17   /* gRPC status codes 0..16 */

/* A fixed pool of searchers (one per worker thread); a running search
 * borrows one. The condvar only matters if other code also uses the libuv
 * pool and more searches run than there are searchers. */
typedef struct searcher_pool {
    uv_mutex_t mu;
    uv_cond_t cv;
    idx_searcher_t **free;
    size_t nfree, n;
} searcher_pool;

/* One loaded index generation (docs/operations.md "Index generations"): its
 * reader and searcher pool. refs counts the table's hold (while it is live,
 * previous or staged) and every job that reads it; a generation leaves the
 * table at once and is closed when its last job is done, so searches in
 * flight finish on the generation they started on. That is read-copy-update
 * with the grace period tracked by counts: every ref and unref happens on
 * the loop thread (handlers and job completions), so the hot path takes no
 * lock and workers never touch the counts. */
typedef struct shard_gen {
    char name[SHARD_MAX_GEN_NAME + 1];   /* the generation directory, as the coordinator names it */
    char dir[SHARD_MAX_GEN_NAME + 16];   /* name/shard-NNN: what was opened */
    idx_reader_t *reader;
    searcher_pool pool;
    unsigned refs;
    int broken;                   /* a read found it damaged (non-live: only its searches fail) */
} shard_gen;

/* A generation closing on a thread of its own (gen_unref): its searchers'
 * memory, the reader's per-term arrays and the munmap of a mapping that has
 * served for minutes cost the loop tens to hundreds of ms, at the moment every
 * shard switches. Joined once done (the next close reaps it) or at stop. */
typedef struct gen_closer {
    uv_thread_t tid;
    shard_gen *g;
    atomic_int done;
    struct gen_closer *next;
} gen_closer;

/* A recent live search, replayed on a generation being staged (its warm-up):
 * plain text searches only, texts up to 255 bytes. */
typedef struct warm_query {
    char text[256];
    uint32_t k, selection_k;
    uint8_t plain_text, all_terms;
} warm_query;

/* A generation being loaded by the loader thread (one at a time). */
typedef struct gen_load {
    rpc_call_t *call;
    uint64_t t0;
    char name[SHARD_MAX_GEN_NAME + 1];
    char dir[SHARD_MAX_GEN_NAME + 16];
    shard_gen *g;                 /* the result, NULL on failure */
    uint32_t shards;              /* the shard count it must have (add-shard: more than the live one's) */
    int rc;
    char msg[512];
    warm_query *warm;             /* the live searches to replay on it (a copy), nwarm of them */
    size_t nwarm;
} gen_load;

struct shard {
    uv_loop_t *loop;
    shard_config cfg;
    /* live: what requests naming no generation read; prev: the one before
     * (rollback); staged: a loaded candidate. Loop thread only. */
    shard_gen *live, *prev, *staged;
    uv_thread_t loader;
    uv_async_t load_done;         /* the loader thread's completion, to the loop */
    fn_mem_timer trim;            /* memory back to the system (fn_memtimer.h) */
    gen_closer *closers;          /* generations closing off the loop (loop thread's list) */
    gen_load *loading;            /* the load running, or NULL */
    atomic_int load_abort;        /* set on stop: the loader's warm-up ends early */
    /* The last cfg.warm_queries live text searches, a ring (loop thread):
     * what a staged generation is warmed with. */
    warm_query *warm;
    size_t warm_n, warm_next;
    shard_updates *updates;       /* live updates (updates.h; NULL: none taken) */
    rpc_server_t *rpc;
    uint64_t requests, errors;
    uint64_t started_ms;
    int stopping;
    /* Set when a read found the index damaged (a checksum failed, the file
     * changed or was truncated): from then on Health says NOT_SERVING and
     * every search is refused with DATA_LOSS until the shard is restarted
     * on a good index. Loop thread only. */
    int broken;
    char broken_reason[512];
    /* The stage-1 model: workers take a reference under the mutex, a push
     * swaps it; a search keeps the model it started with. stage1_cand is
     * a staged candidate (PushModel STAGE: the quality gate's), used only by
     * searches with candidate_model; NULL = none staged here. */
    uv_mutex_t model_mu;
    rank_ranker *stage1;
    rank_ranker *stage1_cand;
    /* --model-state: the staged candidate's bytes as pushed (loop thread;
     * NULL = none), written to the state directory at its ACTIVATE */
    fn_model_src cand_src;
    const char *fnames[64];       /* the registry's names (shard columns) */
    unsigned char fcheap[64];     /* which of them stage 1 may use */
    size_t nfnames;
    void (*done)(void *ud);
    void *done_ud;
    /* Metrics (docs/operations.md "Metrics"): series made once at start, so
     * the hot path is a few atomic adds; all NULL when cfg.metrics is NULL
     * (every update is NULL-safe). req[][] is filled per status on first use,
     * on the loop thread, which makes every reply. */
    struct {
        fn_mcounter *req[SM_NMETHODS][SM_NSTATUS];
        fn_mhist *dur[SM_NMETHODS];
        fn_mhist *queue_wait;
        fn_mgauge *queue_depth, *docs, *damaged;
        fn_mcounter *deadline_dropped;
        fn_mgauge *model;         /* the loaded model's model_info series, or NULL */
        fn_mgauge *updates;       /* entries in the live updates' store */
    } m;
    /* The method and arrival time (uv_hrtime) of the call whose handler is
     * running: handlers run one at a time on the loop thread, so replies made
     * before a job exists (reject, refuse_if_broken) find them here. */
    int cur_meth;
    uint64_t cur_t0;
};

/* One Shard/Search on its way through the thread pool. */
typedef struct search_job {
    uv_work_t work;
    shard_t *s;
    shard_gen *g;                 /* the generation it reads (a reference) */
    rpc_call_t *call;
    uint64_t t0;                  /* arrival (uv_hrtime), for the metrics */
    int queued;                   /* counted in queue_depth */
    gpr_timespec deadline;        /* monotonic */
    const char *rid;              /* the coordinator's request id (the request's; "" = none) */
    char *query;
    char *user_terms;
    uint32_t k, selection_k;
    int64_t now;
    int all_terms, exact_matches, plain_text;
    const fn_fnode *filter;     /* the request's filter, parsed into mem (NULL: none) */
    int features, skip_stage1;
    rank_ranker *cand;            /* candidate_model: the staged stage-1 model it scores with (a reference) */
    uint32_t feature_hits, field_hits;
    int no_fields;
    int page_signals;             /* each hit's vertical, filter score and dupsig (format.h docsig) */
    uint32_t dupsig_hits;         /* ... dupsig for this many top hits (0 = all) */
    int explain;
    uint32_t explain_hits;
    uint32_t feedback_docs;
    double feedback_max_df;
    /* the vector search (knn.h), when n_vector > 0; text_blank: vector only */
    float *vector;
    size_t n_vector;
    uint32_t knn_k, ef;
    int knn_exact, text_blank;
    /* results, filled on the worker thread */
    int damaged;                  /* the index failed a check: stop serving */
    grpc_status_code code;
    char msg[512];
    Funnel__V1__ShardSearchResponse resp;   /* its parts live in `mem` */
    fn_arena mem;                 /* everything this request allocates */
} search_job;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s ? s : "");
    char *p = malloc(n + 1);
    if (p) memcpy(p, s ? s : "", n + 1);
    return p;
}

/* ---- metrics --------------------------------------------------------------- */

/* The stage-1 model's info series: the old one goes to 0, the new one to 1
 * (a series cannot be removed from the registry); model="none" without one,
 * as the coordinator does, so the series is always there. Loop thread. */
static void sm_model(shard_t *s, const rank_ranker *model)
{
    fn_mgauge_set(s->m.model, 0);
    s->m.model = NULL;
    if (!s->cfg.metrics) return;
    char esc[512], labels[600];
    fn_metrics_label_escape(model ? rank_ranker_describe(model) : "none", esc, sizeof esc);
    snprintf(labels, sizeof labels, "stage=\"stage1\",model=\"%s\"", esc);
    s->m.model = fn_metrics_gauge(s->cfg.metrics, "funnel_shard_model_info",
                                  "The stage-1 model in use (1; \"none\" without one); a replaced one reads 0.", labels);
    fn_mgauge_set(s->m.model, 1);
}

/* Create the shard's series (after the index is open). */
static void sm_init(shard_t *s)
{
    fn_metrics *r = s->cfg.metrics;
    if (!r) return;
    for (int i = 0; i < SM_NMETHODS; i++) {
        char l[64];
        snprintf(l, sizeof l, "method=\"%s\"", sm_names[i]);
        s->m.dur[i] = fn_metrics_histogram(r, "funnel_shard_request_duration_seconds",
                                           "Time from a call's arrival to its reply, by method.", l,
                                           fn_metrics_latency_buckets, fn_metrics_latency_nbuckets);
    }
    s->m.queue_wait = fn_metrics_histogram(r, "funnel_shard_queue_wait_seconds",
                                           "Time from a search's arrival to its start with a searcher.",
                                           NULL, fn_metrics_latency_buckets, fn_metrics_latency_nbuckets);
    s->m.queue_depth = fn_metrics_gauge(r, "funnel_shard_queue_depth",
                                        "Searches waiting for or running on the worker pool.", NULL);
    s->m.deadline_dropped = fn_metrics_counter(r, "funnel_shard_deadline_dropped_total",
                                               "Work dropped because its deadline passed while it was queued.",
                                               NULL);
    s->m.docs = fn_metrics_gauge(r, "funnel_shard_index_docs", "Documents in this shard's index.", NULL);
    s->m.damaged = fn_metrics_gauge(r, "funnel_shard_damaged",
                                    "1 when the index was found damaged (the shard answers DATA_LOSS).", NULL);
    const idx_index_info *in = idx_reader_info(s->live->reader);
    fn_mgauge_set(s->m.docs, (double)in->docs);
    fn_mgauge_set(s->m.damaged, s->broken);
    if (s->updates) {
        s->m.updates = fn_metrics_gauge(r, "funnel_shard_live_updates",
                                        "Ids put or deleted since the live generation was built (a merge empties it).",
                                        NULL);
        fn_mgauge_set(s->m.updates, (double)su_count(s->updates));
    }
    char codec[80], l[256];
    fn_metrics_label_escape(in->codec, codec, sizeof codec);
    snprintf(l, sizeof l, "schema=\"%u\",shard=\"%u\",shards=\"%u\",codec=\"%s\"", (unsigned)in->schema,
             (unsigned)in->shard, (unsigned)in->shards, codec);
    fn_mgauge_set(fn_metrics_gauge(r, "funnel_shard_index_info", "The served index (1).", l), 1);
    sm_model(s, s->stage1);
}

/* A call's handler starts (loop thread). */
static void sm_begin(shard_t *s, int meth)
{
    s->cur_meth = meth;
    s->cur_t0 = s->cfg.metrics ? uv_hrtime() : 0;
}

/* Count a reply of method meth that arrived at t0 (loop thread). */
static void sm_count(shard_t *s, int meth, uint64_t t0, grpc_status_code code)
{
    if (!s->cfg.metrics) return;
    fn_mhist_observe(s->m.dur[meth], (double)(uv_hrtime() - t0) / 1e9);
    unsigned c = (unsigned)code < SM_NSTATUS ? (unsigned)code : GRPC_STATUS_UNKNOWN;
    if (!s->m.req[meth][c]) {
        char l[96];
        snprintf(l, sizeof l, "method=\"%s\",status=\"%s\"", sm_names[meth],
                 rpc_status_name((grpc_status_code)c));
        s->m.req[meth][c] = fn_metrics_counter(s->cfg.metrics, "funnel_shard_requests_total",
                                               "Calls answered, by method and gRPC status.", l);
    }
    fn_mcounter_inc(s->m.req[meth][c]);
}

/* Reply to a job's call and count it. */
static void reply_job(shard_t *s, int meth, uint64_t t0, rpc_call_t *call, grpc_status_code code,
                      const char *msg, const ProtobufCMessage *resp)
{
    rpc_call_reply(call, code, msg, resp);
    sm_count(s, meth, t0, code);
}

/* Reply from inside a handler (the call sm_begin saw) and count it. */
static void reply_now(shard_t *s, rpc_call_t *call, grpc_status_code code, const char *msg,
                      const ProtobufCMessage *resp)
{
    reply_job(s, s->cur_meth, s->cur_t0, call, code, msg, resp);
}

/* ---- searcher pool -------------------------------------------------------- */

static int pool_init(searcher_pool *p, idx_reader_t *r, size_t n, fn_errbuf *eb)
{
    memset(p, 0, sizeof *p);
    p->free = calloc(n, sizeof *p->free);
    if (!p->free) return fn_seterr(eb, -ENOMEM, "out of memory");
    if (uv_mutex_init(&p->mu) != 0) {
        free(p->free);
        return fn_seterr(eb, -ENOMEM, "cannot create a mutex");
    }
    if (uv_cond_init(&p->cv) != 0) {
        uv_mutex_destroy(&p->mu);
        free(p->free);
        return fn_seterr(eb, -ENOMEM, "cannot create a condition variable");
    }
    for (size_t i = 0; i < n; i++) {
        int rc = idx_searcher_create(r, &p->free[i], eb);
        if (rc) {
            for (size_t j = 0; j < i; j++) idx_searcher_destroy(p->free[j]);
            uv_cond_destroy(&p->cv);
            uv_mutex_destroy(&p->mu);
            free(p->free);
            return rc;
        }
    }
    p->n = p->nfree = n;
    return 0;
}

static void pool_destroy(searcher_pool *p)
{
    for (size_t i = 0; i < p->nfree; i++) idx_searcher_destroy(p->free[i]);
    uv_cond_destroy(&p->cv);
    uv_mutex_destroy(&p->mu);
    free(p->free);
}

static idx_searcher_t *pool_get(searcher_pool *p)
{
    uv_mutex_lock(&p->mu);
    while (p->nfree == 0) uv_cond_wait(&p->cv, &p->mu);
    idx_searcher_t *se = p->free[--p->nfree];
    uv_mutex_unlock(&p->mu);
    return se;
}

static void pool_put(searcher_pool *p, idx_searcher_t *se)
{
    uv_mutex_lock(&p->mu);
    p->free[p->nfree++] = se;
    uv_cond_signal(&p->cv);
    uv_mutex_unlock(&p->mu);
}

/* ---- generations ------------------------------------------------------------ */

/* Open the shard directory dir as generation name (any thread: the loader's
 * or, at start, the loop's). paced: beside live searches, so the whole-file
 * check reads at --load-rate-mb and --load-cold-rate-mb and yields while
 * the CPU is contended (--load-yield-pressure). Returns 0 or an index error
 * with the message in eb. */
static int gen_open(const shard_config *cfg, const char *name, const char *dir, int paced, shard_gen **out,
                    fn_errbuf *eb)
{
    *out = NULL;
    shard_gen *g = calloc(1, sizeof *g);
    if (!g) return fn_seterr(eb, -ENOMEM, "out of memory");
    snprintf(g->name, sizeof g->name, "%s", name);
    snprintf(g->dir, sizeof g->dir, "%s", dir);
    uint64_t t0 = uv_hrtime();
    unsigned flags = cfg->verify_quick ? IDX_OPEN_QUICK : 0;
    int rc = 0;
    idx_pace pc = { .warm_bps = (uint64_t)cfg->load_rate_mb << 20, .cold_bps = (uint64_t)cfg->load_cold_rate_mb << 20 };
    /* yield to the searches while the CPU is contended (fn_pressure.h) */
    fn_pressure cp = { .fd = -1 };
    if (!flags && paced && cfg->load_rate_mb && cfg->load_yield_pressure &&
        fn_pressure_open(&cp, FN_PRESSURE_CPU, cfg->load_yield_pressure) == 0) {
        pc.busy = fn_pressure_busy;
        pc.busy_ud = &cp;
    }
    if (!flags && paced && cfg->load_rate_mb) {
        /* (an index without a checksum file: the plain open says which version it is) */
        rc = idx_verify_file_paced(dir, &pc, eb);
        if (rc == 0) flags = IDX_OPEN_CHECKED;
        else if (rc == FN_EFORMAT) rc = 0;
    }
    if (!rc) rc = idx_reader_open_ex(dir, flags, &g->reader, eb);
    uint64_t cold_check = pc.cold_bytes, yield_check = pc.yield_ns, mapped = 0;
    double map_s = 0;
    if (!rc && !(flags & IDX_OPEN_QUICK) && cfg->preload) {
        /* the pages the check read, mapped before the switch (at start: before
         * the first search), so that nothing reclaims them as unmapped
         * (idx_map_populate: why); paced beside live searches only */
        uint64_t m0 = uv_hrtime();
        rc = idx_reader_populate(g->reader, (flags & IDX_OPEN_CHECKED) ? &pc : NULL, &mapped, eb);
        map_s = (double)(uv_hrtime() - m0) / 1e9;
        if (rc == -EINVAL) {   /* the kernel cannot: serve as before */
            FN_WARN("generation %s: %s; not preloaded", name, fn_errmsg(eb, rc));
            rc = 0;
        }
        if (rc) idx_reader_close(g->reader);
    }
    fn_pressure_close(&cp);
    if (rc) {
        free(g);
        return rc;
    }
    uint64_t t1 = uv_hrtime();
    size_t nsearchers = cfg->threads ? cfg->threads : 1;
    if ((rc = pool_init(&g->pool, g->reader, nsearchers, eb)) != 0) {
        idx_reader_close(g->reader);
        free(g);
        return rc;
    }
    /* what a generation's load costs, for the operator sizing a publish */
    char cold[240] = "";   /* only a paced check knows what came from the disk */
    int n = 0;
    if (flags & IDX_OPEN_CHECKED)
        n = snprintf(cold, sizeof cold, ", %" PRIu64 " MiB of it read from the disk, %.3f s of it yielding to a busy CPU",
                     cold_check >> 20, (double)yield_check / 1e9);
    if (mapped && n >= 0 && (size_t)n < sizeof cold) {
        if (flags & IDX_OPEN_CHECKED)
            snprintf(cold + n, sizeof cold - (size_t)n, "; %" PRIu64 " MiB mapped in %.3f s, %" PRIu64
                     " MiB of it from the disk again", mapped >> 20, map_s, pc.cold_bytes >> 20);
        else
            snprintf(cold + n, sizeof cold - (size_t)n, "; %" PRIu64 " MiB mapped in %.3f s", mapped >> 20, map_s);
    }
    FN_INFO("generation %s opened in %.3f s (index checked and opened %.3f s%s; %zu searchers %.3f s)", name,
            (double)(uv_hrtime() - t0) / 1e9, (double)(t1 - t0) / 1e9, cold, nsearchers,
            (double)(uv_hrtime() - t1) / 1e9);
    g->refs = 1;   /* the table's */
    *out = g;
    return 0;
}

static void gen_close(shard_gen *g)
{
    pool_destroy(&g->pool);   /* every searcher is back: no job holds g */
    idx_reader_close(g->reader);
    free(g);
}

static void gen_closer_main(void *arg)
{
    gen_closer *c = arg;
    /* below the searches, as the loader is: freeing is never urgent */
    fn_thread_background();
    uint64_t t0 = uv_hrtime();
    char name[sizeof c->g->name];
    snprintf(name, sizeof name, "%s", c->g->name);
    gen_close(c->g);
    FN_INFO("generation %s closed in %.3f s, off the loop (its last search is done)", name,
            (double)(uv_hrtime() - t0) / 1e9);
    atomic_store(&c->done, 1);
}

/* Join the closers that are done (all of them with wait: at stop). */
static void gen_reap(shard_t *s, int wait)
{
    for (gen_closer **pp = &s->closers; *pp;) {
        gen_closer *c = *pp;
        if (!wait && !atomic_load(&c->done)) {
            pp = &c->next;
            continue;
        }
        uv_thread_join(&c->tid);
        *pp = c->next;
        free(c);
    }
}

static shard_gen *gen_ref(shard_gen *g)
{
    g->refs++;
    return g;
}

static void gen_unref(shard_t *s, shard_gen *g)
{
    if (!g || --g->refs > 0) return;
    gen_reap(s, 0);
    gen_closer *c = s->stopping ? NULL : calloc(1, sizeof *c);
    if (c) {
        c->g = g;
        if (uv_thread_create(&c->tid, gen_closer_main, c) == 0) {
            c->next = s->closers;
            s->closers = c;
            return;
        }
        free(c);
    }
    /* stopping (the loop serves no one now), or no thread to be had */
    uint64_t t0 = uv_hrtime();
    FN_INFO("generation %s closing (its last search is done)", g->name);
    gen_close(g);
    FN_INFO("generation closed in %.3f s", (double)(uv_hrtime() - t0) / 1e9);
}

/* Take g out of the table (its slot is cleared by the caller). */
static void gen_drop(shard_t *s, shard_gen *g)
{
    if (g) gen_unref(s, g);
}

/* The generation a request names ("" or NULL: the live one); NULL after
 * answering FAILED_PRECONDITION (not loaded here) or DATA_LOSS (damaged). */
static shard_gen *gen_for(shard_t *s, rpc_call_t *call, const char *name)
{
    shard_gen *g = NULL;
    if (!name || !*name || strcmp(name, s->live->name) == 0) g = s->live;
    else if (s->prev && strcmp(name, s->prev->name) == 0) g = s->prev;
    else if (s->staged && strcmp(name, s->staged->name) == 0) g = s->staged;
    if (!g) {
        char msg[2 * SHARD_MAX_GEN_NAME + 200];
        snprintf(msg, sizeof msg, "generation %.*s is not loaded on this shard (live: %s)", SHARD_MAX_GEN_NAME,
                 name, s->live->name);
        s->errors++;
        reply_now(s, call, GRPC_STATUS_FAILED_PRECONDITION, msg, NULL);
        return NULL;
    }
    if (g->broken && g != s->live) {
        char msg[SHARD_MAX_GEN_NAME + 100];
        snprintf(msg, sizeof msg, "generation %s is damaged on this shard", g->name);
        s->errors++;
        reply_now(s, call, GRPC_STATUS_DATA_LOSS, msg, NULL);
        return NULL;
    }
    return g;
}

/* ---- building the response: every part in the request's arena ----------- */

static Funnel__V1__StageInfo *stage_info(fn_arena *a, const rank_stage_acct *ac)
{
    Funnel__V1__StageInfo *st = fn_arena_alloc(a, sizeof *st);
    if (!st) return NULL;
    funnel__v1__stage_info__init(st);
    st->name = (char *)ac->name;
    st->ran = ac->ran;
    st->time_us = ac->time_us;
    st->count_in = ac->count_in;
    st->count_out = ac->count_out;
    st->note = fn_arena_strdup(a, ac->note);
    return st->note ? st : NULL;
}

/* Copy the funnel's results (valid only until the searcher's next search)
 * into r: every part in the request's arena. */
static int resp_fill(Funnel__V1__ShardSearchResponse *r, fn_arena *a, const idx_reader_t *rd, const shard_funnel_out *fo,
                     const char *const *fnames, int explain, const char *model)
{
    const idx_results *res = &fo->sel;
    r->matches = res->matches;
    r->matches_exact = res->matches_exact;
    r->time_us = res->time_us;
    if (res->nterms) {
        if (!(r->terms = fn_arena_alloc(a, res->nterms * sizeof *r->terms))) return -ENOMEM;
        for (size_t i = 0; i < res->nterms; i++, r->n_terms++)
            if (!(r->terms[i] = fn_arena_strdup(a, res->terms[i]))) return -ENOMEM;
        if (res->term_gdf) {
            if (!(r->term_gdf = fn_arena_alloc(a, res->nterms * sizeof *r->term_gdf))) return -ENOMEM;
            memcpy(r->term_gdf, res->term_gdf, res->nterms * sizeof *r->term_gdf);
            r->n_term_gdf = res->nterms;
        }
    }
    r->stages = fn_arena_alloc(a, 3 * sizeof *r->stages);   /* + "feedback" (feedback_fill) */
    if (!r->stages) return -ENOMEM;
    for (int i = 0; i < 2; i++)
        if (!(r->stages[r->n_stages++] = stage_info(a, &fo->acct[i]))) return -ENOMEM;
    r->stage1_model = (char *)(model ? model : "");
    if (fo->rows) {
        r->feature_names = (char **)fnames;   /* static registry names */
        r->n_feature_names = fo->ncols;
    }
    if (fo->n) {
        r->hits = fn_arena_alloc(a, fo->n * sizeof *r->hits);
        Funnel__V1__ShardHit *hits = fn_arena_alloc(a, fo->n * sizeof *hits);
        if (!r->hits || !hits) return -ENOMEM;
        for (size_t i = 0; i < fo->n; i++) {
            const idx_hit *in = &fo->hits[i];
            Funnel__V1__ShardHit *h = &hits[i];
            funnel__v1__shard_hit__init(h);
            r->hits[r->n_hits++] = h;
            h->doc = in->doc;
            h->selection_score = in->score;
            h->stage1_score = fo->stage1_score[i];
            h->score = fo->stage1_score[i];
            h->key = in->key;
            /* hits past field_hits have no stored fields */
            h->id = in->id ? fn_arena_strdup(a, in->id) : "";
            h->title = in->title ? fn_arena_strdup(a, in->title) : "";
            h->url = in->url ? fn_arena_strdup(a, in->url) : "";
            if (!h->id || !h->title || !h->url) return -ENOMEM;
            if (fo->rows && i < fo->nrows) {
                h->features = (float *)(fo->rows + i * fo->stride);   /* the arena's rows */
                h->n_features = fo->ncols;
                /* its vertical: the coordinator's intent_doc feature */
                const char *v = idx_doc_vertical(rd, in->doc);
                if (*v && !(h->vertical = fn_arena_strdup(a, v))) return -ENOMEM;
            }
            if (!explain || !in->terms || !res->nterms) continue;
            h->terms = fn_arena_alloc(a, res->nterms * sizeof *h->terms);
            Funnel__V1__TermExplain *xs = fn_arena_alloc(a, res->nterms * sizeof *xs);
            if (!h->terms || !xs) return -ENOMEM;
            /* Only the terms the hit holds: an unmatched term adds nothing,
             * and listing all of a long query's terms for every explained
             * hit made explain replies several times larger (the query's
             * terms are in the response's own `terms`). */
            for (size_t t = 0; t < res->nterms; t++) {
                const idx_term_explain *te = &in->terms[t];
                if (!te->tf[0] && !te->tf[1]) continue;
                Funnel__V1__TermExplain *x = &xs[h->n_terms];
                funnel__v1__term_explain__init(x);
                h->terms[h->n_terms++] = x;
                x->term = r->terms[t];   /* same strings, query order */
                x->query_weight = (float)te->qw;
                x->df = te->gdf;
                x->idf = te->idf;
                x->contribution = te->contribution;
                x->tf_title = te->tf[0];
                x->tf_body = te->tf[1];
            }
        }
    }
    return 0;
}

/* The result page's signals of the hits (not knn): the vertical (also
 * without features), the content filter's score when the index has one, the
 * near-duplicate signature; read in one transaction. A damaged docsig value
 * fails the search like any damaged stored value (DATA_LOSS naming it). */
static int page_signals_fill(Funnel__V1__ShardSearchResponse *r, fn_arena *a, const idx_reader_t *rd,
                             idx_searcher_t *se, uint32_t dupsig_hits, fn_errbuf *eb)
{
    size_t n = r->n_hits;
    if (!n) return 0;
    /* ids and urls of the hits sent without stored fields (no_fields): the
     * coordinator's host cap and explain need them for every hit */
    size_t nf = 0;
    for (size_t i = 0; i < n; i++) nf += !r->hits[i]->id || !r->hits[i]->id[0];
    if (nf) {
        idx_hit *ih = fn_arena_calloc(a, nf, sizeof *ih);
        if (!ih) return fn_seterr(eb, -ENOMEM, "out of memory");
        for (size_t i = 0, m = 0; i < n; i++)
            if (!r->hits[i]->id || !r->hits[i]->id[0])
                ih[m++] = (idx_hit){ .doc = r->hits[i]->doc, .key = r->hits[i]->key };
        int frc = idx_docs_fields(se, ih, nf, eb);
        if (frc) return frc;
        for (size_t i = 0, m = 0; i < n; i++) {
            Funnel__V1__ShardHit *h = r->hits[i];
            if (h->id && h->id[0]) continue;
            h->id = fn_arena_strdup(a, ih[m].id ? ih[m].id : "");
            h->url = fn_arena_strdup(a, ih[m].url ? ih[m].url : "");
            m++;
            if (!h->id || !h->url) return fn_seterr(eb, -ENOMEM, "out of memory");
        }
    }
    uint32_t *docs = fn_arena_alloc(a, n * sizeof *docs);
    float *sc = fn_arena_alloc(a, n * sizeof *sc);
    uint8_t *sigs = fn_arena_alloc(a, n * IDX_DUPSIG_BYTES);
    if (!docs || !sc || !sigs) return fn_seterr(eb, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) docs[i] = r->hits[i]->doc;
    int rc = idx_docs_signals(rd, docs, n, sc, sigs, eb);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        Funnel__V1__ShardHit *h = r->hits[i];
        if (!h->vertical || !h->vertical[0]) {
            const char *v = idx_doc_vertical(rd, docs[i]);
            if (*v && !(h->vertical = fn_arena_strdup(a, v))) return fn_seterr(eb, -ENOMEM, "out of memory");
        }
        if (!isnan(sc[i])) {
            h->filter_score = sc[i];
            h->has_filter_score = 1;
        }
        if (!dupsig_hits || i < dupsig_hits) {
            h->dupsig.data = sigs + i * IDX_DUPSIG_BYTES;
            h->dupsig.len = IDX_DUPSIG_BYTES;
        }
    }
    return 0;
}

/* Pseudo-relevance feedback (index/prf.h): the query terms' weights and
 * the term vectors of the best n selection candidates. */
static int feedback_fill(Funnel__V1__ShardSearchResponse *r, fn_arena *a, idx_searcher_t *se,
                         const shard_funnel_out *fo, uint32_t n, double max_df, fn_errbuf *eb)
{
    uint64_t t0 = uv_hrtime();
    size_t nq = fo->sel.nterms;
    if (nq) {
        if (!(r->term_weights = fn_arena_alloc(a, nq * sizeof *r->term_weights)))
            return fn_seterr(eb, -ENOMEM, "out of memory");
        r->n_term_weights = idx_query_weights(se, r->term_weights, nq) == nq ? nq : 0;
    }
    if (n > fo->sel.nhits) n = (uint32_t)fo->sel.nhits;
    if (!n) return 0;
    uint32_t *docs = fn_arena_alloc(a, n * sizeof *docs);
    idx_fbdoc *fb = fn_arena_alloc(a, n * sizeof *fb);
    r->feedback = fn_arena_alloc(a, n * sizeof *r->feedback);
    Funnel__V1__FeedbackDoc *m = fn_arena_alloc(a, n * sizeof *m);
    if (!docs || !fb || !r->feedback || !m) return fn_seterr(eb, -ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++) docs[i] = fo->sel.hits[i].doc;
    int rc = idx_feedback_docs(se, docs, n, max_df, a, fb, eb);
    if (rc) return rc;
    for (uint32_t i = 0; i < n; i++) {
        funnel__v1__feedback_doc__init(&m[i]);
        m[i].key = fo->sel.hits[i].key;
        m[i].score = fo->sel.hits[i].score;
        m[i].length = fb[i].length;
        m[i].terms = (char **)fb[i].terms;
        m[i].n_terms = fb[i].nterms;
        m[i].tf = fb[i].tf;
        m[i].n_tf = fb[i].nterms;
        r->feedback[r->n_feedback++] = &m[i];
    }
    /* its own entry in the shard's stage list, so that the coordinator's
     * "feedback" stage counts this part of the work too */
    rank_stage_acct ac = { .name = "feedback", .ran = 1, .time_us = (uv_hrtime() - t0) / 1000,
                           .count_in = fo->sel.nhits, .count_out = n };
    snprintf(ac.note, sizeof ac.note, "term vectors of the best %u candidates", n);
    if (r->n_stages == 2 && !(r->stages[r->n_stages++] = stage_info(a, &ac)))
        return fn_seterr(eb, -ENOMEM, "out of memory");
    return 0;
}

static rank_ranker *model_get(shard_t *s)
{
    uv_mutex_lock(&s->model_mu);
    rank_ranker *m = rank_ranker_ref(s->stage1);
    uv_mutex_unlock(&s->model_mu);
    return m;
}

static void model_set(shard_t *s, rank_ranker *m)
{
    uv_mutex_lock(&s->model_mu);
    rank_ranker *old = s->stage1;
    s->stage1 = m;
    uv_mutex_unlock(&s->model_mu);
    rank_ranker_unref(old);
}

/* ---- Shard/Search --------------------------------------------------------- */

static int deadline_passed(search_job *j)
{
    if (gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), j->deadline) < 0) return 0;
    j->code = GRPC_STATUS_DEADLINE_EXCEEDED;
    snprintf(j->msg, sizeof j->msg, "deadline passed before the search started");
    return 1;
}

/* Monotonic ns of the call's deadline (0 = none), on CLOCK_MONOTONIC as
 * idx_query wants it (gpr's monotonic clock has its own epoch). */
static uint64_t deadline_ns(gpr_timespec d)
{
    if (gpr_time_cmp(d, gpr_inf_future(GPR_CLOCK_MONOTONIC)) == 0) return 0;
    gpr_timespec left = gpr_time_sub(d, gpr_now(GPR_CLOCK_MONOTONIC));
    int64_t ns = left.tv_sec * 1000000000LL + left.tv_nsec;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t base = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
    return (uint64_t)(base + (ns > 0 ? ns : 1));
}

/* The status a failed search or rescoring call answers with. */
static grpc_status_code status_of(int rc)
{
    if (rc == FN_EINVAL || rc == FN_ELIMIT) return GRPC_STATUS_INVALID_ARGUMENT;
    if (rc == -ETIMEDOUT) return GRPC_STATUS_DEADLINE_EXCEEDED;
    if (rc == -ENOMEM) return GRPC_STATUS_RESOURCE_EXHAUSTED;
    if (idx_is_damage(rc)) return GRPC_STATUS_DATA_LOSS;
    return GRPC_STATUS_INTERNAL;
}

static idx_searcher_t *pool_try_get(searcher_pool *p)
{
    uv_mutex_lock(&p->mu);
    idx_searcher_t *se = p->nfree ? p->free[--p->nfree] : NULL;
    uv_mutex_unlock(&p->mu);
    return se;
}

static void search_run(search_job *j, idx_searcher_t *se);
static int knn_fill(search_job *j, idx_searcher_t *se, fn_errbuf *eb);

static void search_work(uv_work_t *w)   /* worker thread */
{
    search_job *j = w->data;
    shard_t *s = j->s;
    /* The client has given up already: its reply would be dropped. Checked
     * again after waiting for a searcher. */
    if (deadline_passed(j)) {
        fn_mcounter_inc(s->m.deadline_dropped);
        return;
    }
    idx_searcher_t *se = pool_get(&j->g->pool);
    if (deadline_passed(j)) {
        fn_mcounter_inc(s->m.deadline_dropped);
        pool_put(&j->g->pool, se);
        return;
    }
    search_run(j, se);
}

/* The search with searcher se, which it gives back (a worker, or the loop
 * thread for an inline search). */
static void search_run(search_job *j, idx_searcher_t *se)
{
    shard_t *s = j->s;
    if (s->cfg.metrics) fn_mhist_observe(s->m.queue_wait, (double)(uv_hrtime() - j->t0) / 1e9);
    shard_funnel_req rq = {
        .q = {.text = j->query, .k = j->selection_k, .max_terms = s->cfg.max_query_terms,
              .deadline_ns = deadline_ns(j->deadline), .bm25 = &s->cfg.bm25, .sel = &s->cfg.sel,
              .user_terms = j->user_terms, .now = j->now, .all_terms = j->all_terms, .plain_text = j->plain_text,
              .exact_matches = j->exact_matches, .filter = j->filter},
        .k = j->k, .features = j->features, .feature_hits = j->feature_hits,
        .skip_stage1 = j->skip_stage1,
        .explain = j->explain, .explain_hits = j->explain_hits, .field_hits = j->field_hits,
        .no_fields = j->no_fields,
    };
    rq.q.vec = j->vector;   /* the vec_sim feature (NULL: none) */
    rq.q.vdim = (uint32_t)j->n_vector;
    if (s->updates) {       /* ids put or deleted since the build: their old documents are gone */
        rq.q.exclude = su_excludes;
        rq.q.exclude_ud = s->updates;
    }
    /* a candidate_model search scores with the staged model it took when it
     * came (never the live one: the quality gate compares the two) */
    rank_ranker *model = j->cand ? rank_ranker_ref(j->cand) : model_get(s);
    shard_funnel_out fo;
    fn_errbuf eb = {{0}};
    int rc = 0;
    if (!j->text_blank) {
        rc = shard_funnel_run(se, &rq, model, &j->mem, &fo, &eb);
        if (rc == 0) {
            fo.acct[0].count_in = idx_reader_info(j->g->reader)->docs;
            const char *mdesc = model ? fn_arena_strdup(&j->mem, rank_ranker_describe(model)) : NULL;
            rc = resp_fill(&j->resp, &j->mem, j->g->reader, &fo, s->fnames, j->explain, mdesc);
            if (rc == 0 && j->page_signals)
                rc = page_signals_fill(&j->resp, &j->mem, j->g->reader, se, j->dupsig_hits, &eb);
        }
        if (rc == 0 && j->feedback_docs)
            rc = feedback_fill(&j->resp, &j->mem, se, &fo, j->feedback_docs, j->feedback_max_df, &eb);
    }
    if (rc == 0 && j->n_vector && j->knn_k) rc = knn_fill(j, se, &eb);
    rank_ranker_unref(model);
    idx_searcher_release(se);
    pool_put(&j->g->pool, se);
    if (rc == 0) {
        const idx_index_info *info = idx_reader_info(j->g->reader);
        j->resp.docs = info->docs;
        j->resp.docs_total = info->docs_total;
        j->resp.shard = info->shard;
        j->resp.shards = info->shards;
        /* the content filter the index was scored with (reader-owned strings) */
        if (info->filter_model[0]) {
            j->resp.filter_model = (char *)info->filter_model;
            j->resp.filter_threshold = info->filter_threshold;
            j->resp.filter_strict = info->filter_strict;
        }
        /* the reply's size is bounded: k * (id + title + url) could still be large */
        size_t bytes = protobuf_c_message_get_packed_size(&j->resp.base);
        if (bytes > s->cfg.max_reply_bytes) {
            j->code = GRPC_STATUS_RESOURCE_EXHAUSTED;
            snprintf(j->msg, sizeof j->msg, "reply: %zu bytes, over the limit of %llu bytes "
                     "(max-reply-bytes): ask for fewer hits", bytes,
                     (unsigned long long)s->cfg.max_reply_bytes);
            return;
        }
        j->code = GRPC_STATUS_OK;
        return;
    }
    j->code = status_of(rc);
    j->damaged = idx_is_damage(rc);
    snprintf(j->msg, sizeof j->msg, "%s", fn_errmsg(&eb, rc));
}

/* The vector search (index/knn.h): the knn_k nearest documents, with their
 * stored fields unless the caller fetches them (no_fields). */
static int knn_fill(search_job *j, idx_searcher_t *se, fn_errbuf *eb)
{
    fn_arena *a = &j->mem;
    idx_knn_query q = { .vec = j->vector, .dim = (uint32_t)j->n_vector, .k = j->knn_k, .ef = j->ef,
                        .exact = j->knn_exact, .deadline_ns = deadline_ns(j->deadline), .filter = j->filter };
    if (j->s->updates) {
        q.exclude = su_excludes;
        q.exclude_ud = j->s->updates;
    }
    idx_knn_hit *kh = fn_arena_alloc(a, j->knn_k * sizeof *kh);
    idx_hit *ih = fn_arena_calloc(a, j->knn_k, sizeof *ih);
    if (!kh || !ih) return fn_seterr(eb, -ENOMEM, "out of memory");
    size_t n = 0;
    int dl = 0;
    int rc = idx_knn(se, &q, kh, &n, &dl, eb);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        ih[i].doc = kh[i].doc;
        ih[i].key = kh[i].key;
    }
    if (!j->no_fields && n && (rc = idx_docs_fields(se, ih, n, eb))) return rc;
    Funnel__V1__ShardSearchResponse *r = &j->resp;
    r->knn = fn_arena_alloc(a, (n ? n : 1) * sizeof *r->knn);
    Funnel__V1__ShardHit *hits = fn_arena_alloc(a, (n ? n : 1) * sizeof *hits);
    if (!r->knn || !hits) return fn_seterr(eb, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        Funnel__V1__ShardHit *h = &hits[i];
        funnel__v1__shard_hit__init(h);
        h->doc = kh[i].doc;
        h->key = kh[i].key;
        h->score = kh[i].score;
        h->id = ih[i].id ? fn_arena_strdup(a, ih[i].id) : "";
        h->title = ih[i].title ? fn_arena_strdup(a, ih[i].title) : "";
        h->url = ih[i].url ? fn_arena_strdup(a, ih[i].url) : "";
        if (!h->id || !h->title || !h->url) return fn_seterr(eb, -ENOMEM, "out of memory");
        r->knn[r->n_knn++] = h;
    }
    r->knn_deadline = dl;
    return 0;
}

/* A read found generation g damaged: stop serving it (loop thread). A
 * damaged candidate or previous generation fails only its own searches; a
 * damaged live one takes the shard out of service. */
static void mark_broken(shard_t *s, shard_gen *g, const char *why)
{
    if (g && !g->broken) {
        g->broken = 1;
        if (g != s->live) FN_ERROR("generation %s damaged, its searches answer DATA_LOSS: %s", g->name, why);
    }
    if (g && g != s->live) return;
    if (s->broken) return;
    s->broken = 1;
    fn_mgauge_set(s->m.damaged, 1);
    snprintf(s->broken_reason, sizeof s->broken_reason, "%s", why);
    if (!s->stopping) rpc_server_set_serving(s->rpc, 0);
    FN_ERROR("index damaged, NOT_SERVING until restarted on a good index: %s", why);
}

/* Count the request; a shard whose index was found damaged answers
 * DATA_LOSS to everything (1: answered). */
static int refuse_if_broken(shard_t *s, rpc_call_t *call)
{
    s->requests++;
    if (!s->broken) return 0;
    s->errors++;
    char msg[600];
    snprintf(msg, sizeof msg, "shard not serving: index damaged: %s", s->broken_reason);
    reply_now(s, call, GRPC_STATUS_DATA_LOSS, msg, NULL);
    return 1;
}

static void gen_unref(shard_t *s, shard_gen *g);

static void job_free(search_job *j)
{
    if (j->g) gen_unref(j->s, j->g);
    rank_ranker_unref(j->cand);
    int big = fn_arena_held(&j->mem) > (1u << 20);
    fn_arena_free(&j->mem);
    free(j->query);
    free(j->user_terms);
    shard_t *s = j->s;
    free(j);
    /* its memory back to the system after the run of large ones (fn_memtimer.h) */
    if (big && !s->stopping) fn_mem_timer_large(&s->trim);
}

/* What a search leaves in the log, each line naming the coordinator's
 * request id (trace context): with log-requests a JSON line per search;
 * a WARN for one slower than slow-search-ms; a WARN for a failure other than
 * a refused request, at most one a second (a shard dropping late work under
 * overload would flood its log) with the count of those not logged. */
static void log_search(shard_t *s, const search_job *j)
{
    uint64_t us = (uv_hrtime() - j->t0) / 1000;
    if (s->cfg.log_requests) {
        /* jansson escapes (as the coordinator's JSON lines); the strings were
         * checked as UTF-8 when the request was unpacked (rpc/pbbuf.c) */
        json_t *o = json_pack("{s:s, s:i, s:s, s:s, s:i, s:I, s:I, s:I, s:s}", "type", "shard_search",
                              "pid", (int)getpid(), "request_id", j->rid, "status", rpc_status_name(j->code),
                              "k", (int)j->k,
                              "hits", (json_int_t)(j->code == GRPC_STATUS_OK ? j->resp.n_hits : 0),
                              "matches", (json_int_t)(j->code == GRPC_STATUS_OK ? j->resp.matches : 0),
                              "us", (json_int_t)us, "query", j->query ? j->query : "");
        char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
        json_decref(o);
        if (line) {
            flockfile(stderr);
            fputs(line, stderr);
            fputc('\n', stderr);
            funlockfile(stderr);
            free(line);
        }
    }
    if (j->code == GRPC_STATUS_OK) {
        if (s->cfg.slow_search_ms && us >= (uint64_t)s->cfg.slow_search_ms * 1000)
            FN_WARN("slow search (request %s): %.1f ms, k %u, %zu hits: '%.80s'", j->rid, us / 1000.0, j->k,
                    j->resp.n_hits, j->query ? j->query : "");
        return;
    }
    if (j->code == GRPC_STATUS_INVALID_ARGUMENT) return;
    static uint64_t last_ms, quiet;
    uint64_t now = uv_now(s->loop);
    if (last_ms && now - last_ms < 1000) {
        quiet++;
        return;
    }
    FN_WARN("search failed (request %s): %s: %s%s", j->rid, rpc_status_name(j->code), j->msg,
            quiet ? " (and more not logged in the last second)" : "");
    last_ms = now;
    quiet = 0;
}

static void search_done(uv_work_t *w, int status)   /* loop thread */
{
    search_job *j = w->data;
    shard_t *s = j->s;
    if (status != 0) {   /* UV_ECANCELED: never ran */
        j->code = GRPC_STATUS_CANCELLED;
        snprintf(j->msg, sizeof j->msg, "search cancelled: %s", uv_strerror(status));
    }
    if (j->queued) fn_mgauge_add(s->m.queue_depth, -1);
    if (j->damaged) mark_broken(s, j->g, j->msg);
    log_search(s, j);
    if (j->code != GRPC_STATUS_OK) {
        s->errors++;
        reply_job(s, SM_SEARCH, j->t0, j->call, j->code, j->msg, NULL);
    } else {
        reply_job(s, SM_SEARCH, j->t0, j->call, GRPC_STATUS_OK, NULL, &j->resp.base);
    }
    job_free(j);
}

static void reject(shard_t *s, rpc_call_t *call, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reject(shard_t *s, rpc_call_t *call, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->errors++;
    reply_now(s, call, GRPC_STATUS_INVALID_ARGUMENT, msg, NULL);
}

/* Keep a live text search for the warm-up of the next staged generation. */
static void warm_note(shard_t *s, const Funnel__V1__ShardSearchRequest *req, const shard_gen *g, uint32_t selk)
{
    size_t len;
    if (!s->warm || g != s->live || req->n_vector || req->candidate_model || !req->query ||
        (len = strlen(req->query)) == 0 || len >= sizeof s->warm->text ||
        (req->filter && !fn_query_is_blank(req->filter)))
        return;
    warm_query *w = &s->warm[s->warm_next];
    memcpy(w->text, req->query, len + 1);
    w->k = req->k;
    w->selection_k = selk;
    w->plain_text = req->plain_text != 0;
    w->all_terms = req->all_terms != 0;
    s->warm_next = (s->warm_next + 1) % s->cfg.warm_queries;
    if (s->warm_n < s->cfg.warm_queries) s->warm_n++;
}

static void handle_search(rpc_call_t *call, const ProtobufCMessage *m, void *ud)
{
    shard_t *s = ud;
    sm_begin(s, SM_SEARCH);
    const Funnel__V1__ShardSearchRequest *req = (const Funnel__V1__ShardSearchRequest *)m;
    if (refuse_if_broken(s, call)) return;
    /* the same checks as the coordinator's (common/fn_query.c), with this
     * shard's own limits: a shard called directly is no weaker */
    fn_query_limits ql = { s->cfg.max_query_bytes, s->cfg.max_query_words };
    fn_errbuf qeb;
    int text_blank = req->n_vector && fn_query_is_blank(req->query);
    if (!text_blank && fn_query_check(req->query, &ql, &qeb) != 0) {
        reject(s, call, "%s", qeb.msg);
        return;
    }
    shard_gen *g = gen_for(s, call, req->generation);
    if (!g) return;
    if (req->n_vector) {
        const idx_index_info *in = idx_reader_info(g->reader);
        if (!in->vec_dim) {
            reject(s, call, "vector: this shard's index has no vectors");
            return;
        }
        if (req->n_vector != in->vec_dim) {
            reject(s, call, "vector: %zu numbers, the index's vectors have %u", req->n_vector, in->vec_dim);
            return;
        }
        for (size_t i = 0; i < req->n_vector; i++)
            if (!isfinite(req->vector[i])) {
                reject(s, call, "vector[%zu]: not a finite number", i);
                return;
            }
        if ((req->knn_k == 0 && text_blank) || req->knn_k > s->cfg.max_k || req->knn_k > IDX_MAX_KNN_K) {
            reject(s, call, "knn_k: %u is not 1..%u", (unsigned)req->knn_k,
                   (unsigned)(s->cfg.max_k < IDX_MAX_KNN_K ? s->cfg.max_k : IDX_MAX_KNN_K));
            return;
        }
        if (req->ef > IDX_MAX_KNN_EF) {
            reject(s, call, "ef: %u is over %d", (unsigned)req->ef, IDX_MAX_KNN_EF);
            return;
        }
    } else if (req->knn_k || req->ef || req->knn_exact) {
        reject(s, call, "knn_k, ef, knn_exact: need a vector");
        return;
    }
    if (req->k == 0) {
        reject(s, call, "k: must be at least 1");
        return;
    }
    if (req->k > s->cfg.max_k) {
        reject(s, call, "k: %u is more than max-k %u", (unsigned)req->k, (unsigned)s->cfg.max_k);
        return;
    }

    if (req->user_terms && *req->user_terms) {
        fn_query_limits ul = { s->cfg.max_query_bytes, s->cfg.max_query_words };
        if (fn_query_check(req->user_terms, &ul, &qeb) != 0) {
            reject(s, call, "user_terms:%s", strchr(qeb.msg, ':') ? strchr(qeb.msg, ':') + 1 : qeb.msg);
            return;
        }
    }
    if (req->features > 2) {
        reject(s, call, "features: %u is not 0, 1 or 2", (unsigned)req->features);
        return;
    }
    if (!(req->feedback_max_df >= 0 && req->feedback_max_df <= 1)) {
        reject(s, call, "feedback_max_df: %g is not a share of the documents in 0..1", req->feedback_max_df);
        return;
    }
    if (req->feedback_docs > IDX_MAX_FEEDBACK_DOCS) {
        reject(s, call, "feedback_docs: %u is more than %u", (unsigned)req->feedback_docs,
               (unsigned)IDX_MAX_FEEDBACK_DOCS);
        return;
    }
    uint32_t selk = req->selection_k ? req->selection_k : req->k;
    if (selk < req->k) selk = req->k;
    if (selk > s->cfg.max_k) {
        reject(s, call, "selection_k: %u is more than max-k %u", (unsigned)selk, (unsigned)s->cfg.max_k);
        return;
    }
    /* the staged stage-1 model, taken now: a replica without one says so
     * (the coordinator asks another replica) and never scores with the live one */
    rank_ranker *cand = NULL;
    if (req->candidate_model) {
        uv_mutex_lock(&s->model_mu);
        cand = rank_ranker_ref(s->stage1_cand);
        uv_mutex_unlock(&s->model_mu);
        if (!cand) {
            s->errors++;
            reply_now(s, call, GRPC_STATUS_FAILED_PRECONDITION,
                      "candidate_model: no stage-1 model is staged on this replica (PushModel STAGE)", NULL);
            return;
        }
    }

    warm_note(s, req, g, selk);
    search_job *j = calloc(1, sizeof *j);
    char *q = xstrdup(req->query);
    char *ut = req->user_terms && *req->user_terms ? xstrdup(req->user_terms) : NULL;
    if (j) fn_arena_init(&j->mem);
    if (!j || !q || (req->user_terms && *req->user_terms && !ut)) {
        free(j);
        free(q);
        free(ut);
        rank_ranker_unref(cand);
        s->errors++;
        reply_now(s, call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return;
    }
    j->s = s;
    j->g = gen_ref(g);
    j->cand = cand;
    j->call = call;
    j->t0 = s->cur_t0;
    j->deadline = rpc_call_deadline(call);
    j->rid = req->request_id ? req->request_id : "";
    j->query = q;
    j->user_terms = ut;
    j->k = req->k;
    j->selection_k = selk;
    j->now = req->now;
    j->all_terms = req->all_terms;
    j->plain_text = req->plain_text;
    if (req->filter && !fn_query_is_blank(req->filter)) {
        /* the same parser as the coordinator's: a shard called directly is no weaker */
        size_t fl = strlen(req->filter);
        fn_fnode *ft = NULL;
        fn_errbuf feb;
        int frc = fl > FN_FPARSE_MAX_BYTES
                      ? fn_seterr(&feb, FN_EINVAL, "filter: %zu bytes, over the limit of %u", fl, FN_FPARSE_MAX_BYTES)
                      : fn_fparse(req->filter, fl, &j->mem, &ft, &feb);
        if (frc) {
            job_free(j);
            if (frc == FN_EINVAL) reject(s, call, "%s", feb.msg);
            else {
                s->errors++;
                reply_now(s, call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
            }
            return;
        }
        j->filter = ft;
    }
    j->exact_matches = req->exact_matches;
    j->field_hits = req->field_hits;
    j->no_fields = req->no_fields;
    j->page_signals = req->page_signals;
    j->dupsig_hits = req->dupsig_hits;
    j->features = (int)req->features;
    j->feature_hits = req->feature_hits;
    j->skip_stage1 = req->skip_stage1;
    j->explain = req->explain;
    j->feedback_docs = req->feedback_docs;
    j->feedback_max_df = req->feedback_max_df;
    j->text_blank = text_blank;
    if (req->n_vector) {
        if (!(j->vector = fn_arena_alloc(&j->mem, req->n_vector * sizeof *j->vector))) {
            job_free(j);
            s->errors++;
            reply_now(s, call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
            return;
        }
        memcpy(j->vector, req->vector, req->n_vector * sizeof *j->vector);
        j->n_vector = req->n_vector;
        j->knn_k = req->knn_k;
        j->ef = req->ef;
        j->knn_exact = req->knn_exact;
    }
    uint32_t cap = s->cfg.max_explain_hits ? s->cfg.max_explain_hits : SHARD_DEFAULT_MAX_EXPLAIN_HITS;
    j->explain_hits = req->explain_hits && req->explain_hits < cap ? req->explain_hits : cap;
    funnel__v1__shard_search_response__init(&j->resp);
    j->work.data = j;
    /* A short search runs here, on the loop thread, when a searcher is free:
     * the hand-offs to a worker and back (two thread switches) cost more
     * than it does. A model only ranks what the selection keeps (stage 1
     * without one selects k). */
    uv_mutex_lock(&s->model_mu);
    int model = j->cand || s->stage1 != NULL;
    uv_mutex_unlock(&s->model_mu);
    uint32_t eff = req->skip_stage1 || !model ? j->k : selk;
    if (eff <= s->cfg.inline_max_k && !j->features && !j->explain && !j->feedback_docs && !j->n_vector) {
        idx_searcher_t *se = pool_try_get(&g->pool);
        if (se) {
            search_run(j, se);
            search_done(&j->work, 0);
            return;
        }
    }
    int rc = uv_queue_work(s->loop, &j->work, search_work, search_done);
    if (rc != 0) {
        s->errors++;
        reply_now(s, call, GRPC_STATUS_INTERNAL, uv_strerror(rc), NULL);
        job_free(j);
        return;
    }
    j->queued = 1;
    fn_mgauge_add(s->m.queue_depth, 1);
}

/* ---- Shard/Rescore: the expanded query of pseudo-relevance feedback -------- */

typedef struct rescore_job {
    uv_work_t work;
    shard_t *s;
    shard_gen *g;                 /* the generation it reads (a reference) */
    rpc_call_t *call;
    uint64_t t0;                  /* arrival (uv_hrtime), for the metrics */
    gpr_timespec deadline;
    size_t nterms, ndocs;
    char **terms;
    double *weights;
    uint32_t *docs;
    uint64_t *keys;               /* NULL: not checked */
    int damaged;
    grpc_status_code code;
    char msg[512];
    Funnel__V1__ShardRescoreResponse resp;
    fn_arena mem;
} rescore_job;

static void rescore_work(uv_work_t *w)   /* worker thread */
{
    rescore_job *j = w->data;
    shard_t *s = j->s;
    if (gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), j->deadline) >= 0) {
        j->code = GRPC_STATUS_DEADLINE_EXCEEDED;
        snprintf(j->msg, sizeof j->msg, "deadline passed before the rescoring started");
        fn_mcounter_inc(s->m.deadline_dropped);
        return;
    }
    j->resp.scores = fn_arena_alloc(&j->mem, (j->ndocs ? j->ndocs : 1) * sizeof *j->resp.scores);
    if (!j->resp.scores) {
        j->code = GRPC_STATUS_RESOURCE_EXHAUSTED;
        snprintf(j->msg, sizeof j->msg, "out of memory");
        return;
    }
    idx_searcher_t *se = pool_get(&j->g->pool);
    fn_errbuf eb = {{0}};
    int rc = idx_rescore(se, &s->cfg.bm25, (const char *const *)j->terms, j->weights, j->nterms, j->docs,
                         j->keys, j->ndocs, j->resp.scores, &eb);
    idx_searcher_release(se);
    pool_put(&j->g->pool, se);
    if (rc == 0) {
        j->resp.n_scores = j->ndocs;
        j->code = GRPC_STATUS_OK;
        return;
    }
    j->code = status_of(rc);
    j->damaged = idx_is_damage(rc);
    snprintf(j->msg, sizeof j->msg, "%s", fn_errmsg(&eb, rc));
}

/* The reply of a job that ran on the pool (Rescore, Fetch, Get), on the loop
 * thread: cancelled when the pool did not run it, damage marks the shard
 * broken, an error counts. */
static void job_reply(shard_t *s, shard_gen *g, int meth, uint64_t t0, rpc_call_t *call, int status,
                      const char *what, grpc_status_code code, char *msg, size_t msgcap, int damaged,
                      const ProtobufCMessage *resp)
{
    if (status != 0) {
        code = GRPC_STATUS_CANCELLED;
        snprintf(msg, msgcap, "%s cancelled: %s", what, uv_strerror(status));
    }
    if (damaged) mark_broken(s, g, msg);
    if (code != GRPC_STATUS_OK) s->errors++;
    reply_job(s, meth, t0, call, code, code == GRPC_STATUS_OK ? NULL : msg, code == GRPC_STATUS_OK ? resp : NULL);
}

static void rescore_done(uv_work_t *w, int status)   /* loop thread */
{
    rescore_job *j = w->data;
    job_reply(j->s, j->g, SM_RESCORE, j->t0, j->call, status, "rescoring", j->code, j->msg, sizeof j->msg, j->damaged,
              &j->resp.base);
    gen_unref(j->s, j->g);
    fn_arena_free(&j->mem);
    free(j);
}

/* ---- Shard/Fetch: stored fields, the second phase of a two-phase fetch ---- */

typedef struct fetch_job {
    uv_work_t work;
    shard_t *s;
    shard_gen *g;                 /* the generation it reads (a reference) */
    rpc_call_t *call;
    uint64_t t0;                  /* arrival (uv_hrtime), for the metrics */
    size_t n;
    idx_hit *hits;
    char **fields;                /* stored fields asked (in mem) */
    size_t nfields;
    int snippets, plain_text;
    char *query;                  /* snippets: the query text (in mem) */
    const char **sterms;          /* ... its analyzed words */
    size_t *slens, nsterms;
    idx_searcher_t *se;           /* while running */
    fn_errbuf *eb;
    int damaged;
    grpc_status_code code;
    char msg[512];
    Funnel__V1__ShardFetchResponse resp;
    fn_arena mem;
} fetch_job;

/* Stored fields as messages, in mem: *out, n of them. */
static int stored_msgs(fn_arena *mem, const idx_stored_field *f, size_t n, Funnel__V1__StoredField ***out)
{
    *out = NULL;
    if (!n) return 0;
    Funnel__V1__StoredField **pp = fn_arena_alloc(mem, n * sizeof *pp);
    Funnel__V1__StoredField *m = fn_arena_alloc(mem, n * sizeof *m);
    if (!pp || !m) return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        funnel__v1__stored_field__init(&m[i]);
        m[i].name = (char *)f[i].name;
        m[i].json = (char *)f[i].json;
        pp[i] = &m[i];
    }
    *out = pp;
    return 0;
}

/* One document's source: its asked fields and its snippet into resp.docs[i]. */
static int fetch_source_cb(void *ud, size_t i, const char *json, size_t len)
{
    fetch_job *j = ud;
    Funnel__V1__FetchedDoc *d = j->resp.docs[i];
    idx_stored_field *f;
    size_t nf;
    const char *body;
    size_t blen;
    int rc = idx_source_fields(json, len, (const char *const *)j->fields, j->nfields, &j->mem, &f, &nf,
                               j->snippets ? &body : NULL, &blen, j->eb);
    if (rc) return rc;
    if (stored_msgs(&j->mem, f, nf, &d->fields)) return fn_seterr(j->eb, -ENOMEM, "out of memory");
    d->n_fields = nf;
    if (!j->snippets) return 0;
    idx_snippet sn;
    rc = idx_snippet_make(idx_searcher_analyzer(j->se), body, blen, j->sterms, j->slens, NULL, j->nsterms,
                          NULL, &sn, j->eb);
    if (rc) return rc;
    d->snippet = fn_arena_strndup(&j->mem, sn.text, sn.len);
    d->snippet_marks = fn_arena_alloc(&j->mem, (sn.nmarks ? sn.nmarks : 1) * 2 * sizeof *d->snippet_marks);
    if (!d->snippet || !d->snippet_marks) {
        idx_snippet_free(&sn);
        return fn_seterr(j->eb, -ENOMEM, "out of memory");
    }
    for (size_t k = 0; k < sn.nmarks; k++) {
        d->snippet_marks[2 * k] = sn.marks[k][0];
        d->snippet_marks[2 * k + 1] = sn.marks[k][1];
    }
    d->n_snippet_marks = 2 * sn.nmarks;
    idx_snippet_free(&sn);
    return 0;
}

/* The fields of j's documents into j->resp (any thread), with searcher se,
 * which it gives back. */
static void fetch_run(fetch_job *j, idx_searcher_t *se)
{
    shard_t *s = j->s;
    fn_errbuf eb = {{0}};
    int rc = idx_docs_fields(se, j->hits, j->n, &eb);
    j->resp.docs = fn_arena_alloc(&j->mem, (j->n ? j->n : 1) * sizeof *j->resp.docs);
    Funnel__V1__FetchedDoc *d = fn_arena_alloc(&j->mem, (j->n ? j->n : 1) * sizeof *d);
    if (!rc && (!j->resp.docs || !d)) rc = fn_seterr(&eb, -ENOMEM, "out of memory");
    for (size_t i = 0; i < j->n && !rc; i++) {
        funnel__v1__fetched_doc__init(&d[i]);
        d[i].id = fn_arena_strdup(&j->mem, j->hits[i].id);
        d[i].title = fn_arena_strdup(&j->mem, j->hits[i].title);
        d[i].url = fn_arena_strdup(&j->mem, j->hits[i].url);
        if (!d[i].id || !d[i].title || !d[i].url) rc = fn_seterr(&eb, -ENOMEM, "out of memory");
        j->resp.docs[j->resp.n_docs++] = &d[i];
    }
    if (rc == 0 && (j->nfields || j->snippets)) {
        /* the same snapshot idx_docs_fields read */
        j->se = se;
        j->eb = &eb;
        if (j->snippets)
            rc = idx_snippet_terms(se, j->query, j->plain_text, &j->mem, &j->sterms, &j->slens, &j->nsterms, &eb);
        uint32_t *docs = rc ? NULL : fn_arena_alloc(&j->mem, (j->n ? j->n : 1) * sizeof *docs);
        if (!rc && !docs) rc = fn_seterr(&eb, -ENOMEM, "out of memory");
        for (size_t i = 0; i < j->n && !rc; i++) docs[i] = j->hits[i].doc;
        if (!rc) rc = idx_docs_sources(se, docs, j->n, fetch_source_cb, j, &eb);
        j->se = NULL;
        j->eb = NULL;
    }
    idx_searcher_release(se);
    pool_put(&j->g->pool, se);
    if (rc == 0) {
        size_t bytes = protobuf_c_message_get_packed_size(&j->resp.base);
        if (bytes > s->cfg.max_reply_bytes) {
            j->code = GRPC_STATUS_RESOURCE_EXHAUSTED;
            snprintf(j->msg, sizeof j->msg, "reply: %zu bytes, over the limit of %llu bytes "
                     "(max-reply-bytes): ask for fewer documents or fields", bytes,
                     (unsigned long long)s->cfg.max_reply_bytes);
            return;
        }
        j->code = GRPC_STATUS_OK;
        return;
    }
    j->code = status_of(rc);
    j->damaged = idx_is_damage(rc);
    snprintf(j->msg, sizeof j->msg, "%s", fn_errmsg(&eb, rc));
}

static void fetch_work(uv_work_t *w)   /* worker thread */
{
    fetch_job *j = w->data;
    fetch_run(j, pool_get(&j->g->pool));
}

static void fetch_done(uv_work_t *w, int status)   /* loop thread */
{
    fetch_job *j = w->data;
    job_reply(j->s, j->g, SM_FETCH, j->t0, j->call, status, "fetch", j->code, j->msg, sizeof j->msg, j->damaged,
              &j->resp.base);
    gen_unref(j->s, j->g);
    fn_arena_free(&j->mem);
    free(j);
}

static void handle_fetch(rpc_call_t *call, const ProtobufCMessage *m, void *ud)
{
    shard_t *s = ud;
    sm_begin(s, SM_FETCH);
    const Funnel__V1__ShardFetchRequest *req = (const Funnel__V1__ShardFetchRequest *)m;
    if (refuse_if_broken(s, call)) return;
    if (req->n_docs > s->cfg.max_k) {
        reject(s, call, "docs: %zu, more than max-k %u", req->n_docs, (unsigned)s->cfg.max_k);
        return;
    }
    if (req->n_keys != req->n_docs) {
        reject(s, call, "keys: %zu for %zu docs (every document's key is required)", req->n_keys, req->n_docs);
        return;
    }
    fn_errbuf feb = {{0}};
    if (idx_fields_check("fields", (const char *const *)req->fields, req->n_fields, &feb)) {
        reject(s, call, "%s", feb.msg);
        return;
    }
    if (req->snippets && !fn_utf8_valid(req->query, strlen(req->query))) {
        reject(s, call, "query: not valid UTF-8");
        return;
    }
    shard_gen *g = gen_for(s, call, req->generation);
    if (!g) return;
    fetch_job *j = calloc(1, sizeof *j);
    int oom = !j;
    if (j) fn_arena_init(&j->mem);
    if (j) j->hits = fn_arena_alloc(&j->mem, (req->n_docs ? req->n_docs : 1) * sizeof *j->hits);
    if (j && req->n_fields) j->fields = fn_arena_alloc(&j->mem, req->n_fields * sizeof *j->fields);
    for (size_t i = 0; j && j->fields && i < req->n_fields; i++)
        if (!(j->fields[i] = fn_arena_strdup(&j->mem, req->fields[i]))) oom = 1;
    if (j && req->snippets && !(j->query = fn_arena_strdup(&j->mem, req->query))) oom = 1;
    if (oom || !j->hits || (req->n_fields && !j->fields)) {
        if (j) fn_arena_free(&j->mem);
        free(j);
        s->errors++;
        reply_now(s, call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return;
    }
    j->s = s;
    j->g = gen_ref(g);
    j->call = call;
    j->t0 = s->cur_t0;
    j->n = req->n_docs;
    j->nfields = req->n_fields;
    j->snippets = req->snippets;
    j->plain_text = req->plain_text;
    memset(j->hits, 0, (j->n ? j->n : 1) * sizeof *j->hits);
    for (size_t i = 0; i < j->n; i++) {
        j->hits[i].doc = req->docs[i];
        j->hits[i].key = req->keys[i];
    }
    funnel__v1__shard_fetch_response__init(&j->resp);
    j->work.data = j;
    /* a page's fields: on the loop thread, as a short search */
    idx_searcher_t *se = j->n <= s->cfg.inline_max_k ? pool_try_get(&g->pool) : NULL;
    if (se) {
        fetch_run(j, se);
        fetch_done(&j->work, 0);
        return;
    }
    int rc = uv_queue_work(s->loop, &j->work, fetch_work, fetch_done);
    if (rc != 0) {
        s->errors++;
        reply_now(s, call, GRPC_STATUS_INTERNAL, uv_strerror(rc), NULL);
        gen_unref(s, j->g);
        fn_arena_free(&j->mem);
        free(j);
    }
}

/* ---- Shard/Get: documents by external id ------------------------------------ */

#define GET_MAX_IDS 100
#define GET_MAX_ID_BYTES 511

typedef struct get_job {
    uv_work_t work;
    shard_t *s;
    shard_gen *g;                 /* the generation it reads (a reference) */
    rpc_call_t *call;
    uint64_t t0;                  /* arrival (uv_hrtime), for the metrics */
    size_t n;
    char **ids;
    uint32_t *docs;               /* by id; IDX_DOC_ABSENT: not here */
    size_t *which;                /* the found ones: index into ids */
    char **fields;
    size_t nfields;
    fn_errbuf *eb;
    int damaged;
    grpc_status_code code;
    char msg[512];
    Funnel__V1__GetResponse resp;
    fn_arena mem;
} get_job;

static int get_source_cb(void *ud, size_t i, const char *json, size_t len)
{
    get_job *j = ud;
    Funnel__V1__GetDoc *d = j->resp.docs[j->which[i]];
    idx_stored_field *f;
    size_t nf;
    int rc = idx_source_fields(json, len, (const char *const *)j->fields, j->nfields, &j->mem, &f, &nf, NULL,
                               NULL, j->eb);
    if (rc) return rc;
    if (stored_msgs(&j->mem, f, nf, &d->fields)) return fn_seterr(j->eb, -ENOMEM, "out of memory");
    d->n_fields = nf;
    return 0;
}

static void get_work(uv_work_t *w)   /* worker thread (or the loop, inline) */
{
    get_job *j = w->data;
    shard_t *s = j->s;
    fn_errbuf eb = {{0}};
    j->eb = &eb;
    const idx_index_info *info = idx_reader_info(j->g->reader);
    Funnel__V1__GetDoc *d = fn_arena_alloc(&j->mem, j->n * sizeof *d);
    j->resp.docs = fn_arena_alloc(&j->mem, j->n * sizeof *j->resp.docs);
    uint32_t *found = fn_arena_alloc(&j->mem, j->n * sizeof *found);
    int rc = (!d || !j->resp.docs || !found) ? fn_seterr(&eb, -ENOMEM, "out of memory") : 0;
    idx_searcher_t *se = pool_get(&j->g->pool);
    if (!rc) rc = idx_ids_docs(se, (const char *const *)j->ids, j->n, j->docs, &eb);
    size_t nfound = 0;
    for (size_t i = 0; i < j->n && !rc; i++) {
        funnel__v1__get_doc__init(&d[i]);
        d[i].id = j->ids[i];
        d[i].shard = info->shard;
        j->resp.docs[j->resp.n_docs++] = &d[i];
        /* a live update is the document now (put: its JSON; deleted: none) */
        if (s->updates) {
            char *json = NULL;
            size_t jl = 0;
            int st = su_get(s->updates, j->ids[i], strlen(j->ids[i]), &json, &jl, NULL, &eb);
            if (st < 0) {
                rc = st;
                break;
            }
            if (st) {
                d[i].found = st == 1;
                if (st == 1) {
                    idx_stored_field *f;
                    size_t nf;
                    rc = idx_source_fields(json, jl, (const char *const *)j->fields, j->nfields, &j->mem, &f, &nf,
                                           NULL, NULL, &eb);
                    if (!rc && stored_msgs(&j->mem, f, nf, &d[i].fields)) rc = fn_seterr(&eb, -ENOMEM, "out of memory");
                    if (!rc) d[i].n_fields = nf;
                }
                free(json);
                continue;
            }
        }
        d[i].found = j->docs[i] != IDX_DOC_ABSENT;
        if (d[i].found) {
            found[nfound] = j->docs[i];
            j->which[nfound++] = i;
        }
    }
    if (!rc) rc = idx_docs_sources(se, found, nfound, get_source_cb, j, &eb);
    idx_searcher_release(se);
    pool_put(&j->g->pool, se);
    j->eb = NULL;
    if (rc == 0) {
        size_t bytes = protobuf_c_message_get_packed_size(&j->resp.base);
        if (bytes > s->cfg.max_reply_bytes) {
            j->code = GRPC_STATUS_RESOURCE_EXHAUSTED;
            snprintf(j->msg, sizeof j->msg, "reply: %zu bytes, over the limit of %llu bytes "
                     "(max-reply-bytes): ask for fewer documents or fields", bytes,
                     (unsigned long long)s->cfg.max_reply_bytes);
            return;
        }
        j->code = GRPC_STATUS_OK;
        return;
    }
    j->code = status_of(rc);
    j->damaged = idx_is_damage(rc);
    snprintf(j->msg, sizeof j->msg, "%s", fn_errmsg(&eb, rc));
}

static void get_done(uv_work_t *w, int status)   /* loop thread */
{
    get_job *j = w->data;
    job_reply(j->s, j->g, SM_GET, j->t0, j->call, status, "get", j->code, j->msg, sizeof j->msg, j->damaged,
              &j->resp.base);
    gen_unref(j->s, j->g);
    fn_arena_free(&j->mem);
    free(j);
}

static void handle_get(rpc_call_t *call, const ProtobufCMessage *m, void *ud)
{
    shard_t *s = ud;
    sm_begin(s, SM_GET);
    const Funnel__V1__ShardGetRequest *req = (const Funnel__V1__ShardGetRequest *)m;
    if (refuse_if_broken(s, call)) return;
    if (req->n_ids == 0 || req->n_ids > GET_MAX_IDS) {
        reject(s, call, "ids: %zu, must be 1..%d", req->n_ids, GET_MAX_IDS);
        return;
    }
    for (size_t i = 0; i < req->n_ids; i++) {
        size_t len = strlen(req->ids[i]);
        if (len == 0 || len > GET_MAX_ID_BYTES) {
            reject(s, call, "ids[%zu]: %zu bytes, must be 1..%d", i, len, GET_MAX_ID_BYTES);
            return;
        }
    }
    fn_errbuf feb = {{0}};
    if (idx_fields_check("fields", (const char *const *)req->fields, req->n_fields, &feb)) {
        reject(s, call, "%s", feb.msg);
        return;
    }
    shard_gen *g = gen_for(s, call, req->generation);
    if (!g) return;
    get_job *j = calloc(1, sizeof *j);
    int oom = !j;
    if (j) {
        fn_arena_init(&j->mem);
        j->n = req->n_ids;
        j->ids = fn_arena_alloc(&j->mem, j->n * sizeof *j->ids);
        j->docs = fn_arena_alloc(&j->mem, j->n * sizeof *j->docs);
        j->which = fn_arena_alloc(&j->mem, j->n * sizeof *j->which);
        /* no fields: every field */
        j->nfields = req->n_fields ? req->n_fields : 1;
        j->fields = fn_arena_alloc(&j->mem, j->nfields * sizeof *j->fields);
        oom = !j->ids || !j->docs || !j->which || !j->fields;
        for (size_t i = 0; i < j->n && !oom; i++) oom = !(j->ids[i] = fn_arena_strdup(&j->mem, req->ids[i]));
        for (size_t i = 0; i < j->nfields && !oom; i++)
            oom = !(j->fields[i] = fn_arena_strdup(&j->mem, req->n_fields ? req->fields[i] : "*"));
    }
    if (oom) {
        if (j) fn_arena_free(&j->mem);
        free(j);
        s->errors++;
        reply_now(s, call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return;
    }
    j->s = s;
    j->g = gen_ref(g);
    j->call = call;
    j->t0 = s->cur_t0;
    funnel__v1__get_response__init(&j->resp);
    j->work.data = j;
    int rc = uv_queue_work(s->loop, &j->work, get_work, get_done);
    if (rc != 0) {
        s->errors++;
        reply_now(s, call, GRPC_STATUS_INTERNAL, uv_strerror(rc), NULL);
        gen_unref(s, j->g);
        fn_arena_free(&j->mem);
        free(j);
    }
}

static void handle_rescore(rpc_call_t *call, const ProtobufCMessage *m, void *ud)
{
    shard_t *s = ud;
    sm_begin(s, SM_RESCORE);
    const Funnel__V1__ShardRescoreRequest *req = (const Funnel__V1__ShardRescoreRequest *)m;
    if (refuse_if_broken(s, call)) return;
    /* the cheap checks here; terms, weights and documents in idx_rescore */
    if (req->n_terms > IDX_MAX_RESCORE_TERMS) {
        reject(s, call, "terms: %zu, more than %u", req->n_terms, (unsigned)IDX_MAX_RESCORE_TERMS);
        return;
    }
    if (req->n_weights != req->n_terms) {
        reject(s, call, "weights: %zu for %zu terms", req->n_weights, req->n_terms);
        return;
    }
    if (req->n_docs > s->cfg.max_k) {
        reject(s, call, "docs: %zu, more than max-k %u", req->n_docs, (unsigned)s->cfg.max_k);
        return;
    }
    if (req->n_keys && req->n_keys != req->n_docs) {
        reject(s, call, "keys: %zu for %zu docs", req->n_keys, req->n_docs);
        return;
    }
    for (size_t t = 0; t < req->n_terms; t++)
        if (!fn_utf8_valid(req->terms[t], strlen(req->terms[t]))) {
            reject(s, call, "terms[%zu]: not valid UTF-8", t);
            return;
        }
    shard_gen *g = gen_for(s, call, req->generation);
    if (!g) return;
    rescore_job *j = calloc(1, sizeof *j);
    if (!j) {
        s->errors++;
        reply_now(s, call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return;
    }
    fn_arena_init(&j->mem);
    j->s = s;
    j->call = call;
    j->t0 = s->cur_t0;
    j->deadline = rpc_call_deadline(call);
    j->nterms = req->n_terms;
    j->ndocs = req->n_docs;
    j->terms = fn_arena_alloc(&j->mem, (j->nterms ? j->nterms : 1) * sizeof *j->terms);
    j->weights = fn_arena_alloc(&j->mem, (j->nterms ? j->nterms : 1) * sizeof *j->weights);
    j->docs = fn_arena_alloc(&j->mem, (j->ndocs ? j->ndocs : 1) * sizeof *j->docs);
    j->keys = req->n_keys ? fn_arena_alloc(&j->mem, j->ndocs * sizeof *j->keys) : NULL;
    int oom = !j->terms || !j->weights || !j->docs || (req->n_keys && !j->keys);
    for (size_t t = 0; t < j->nterms && !oom; t++)
        oom = !(j->terms[t] = fn_arena_strdup(&j->mem, req->terms[t]));
    if (oom) {
        fn_arena_free(&j->mem);
        free(j);
        s->errors++;
        reply_now(s, call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return;
    }
    j->g = gen_ref(g);
    if (j->nterms) memcpy(j->weights, req->weights, j->nterms * sizeof *j->weights);
    if (j->ndocs) memcpy(j->docs, req->docs, j->ndocs * sizeof *j->docs);
    if (j->keys) memcpy(j->keys, req->keys, j->ndocs * sizeof *j->keys);
    funnel__v1__shard_rescore_response__init(&j->resp);
    j->work.data = j;
    int rc = uv_queue_work(s->loop, &j->work, rescore_work, rescore_done);
    if (rc != 0) {
        s->errors++;
        reply_now(s, call, GRPC_STATUS_INTERNAL, uv_strerror(rc), NULL);
        gen_unref(s, j->g);
        fn_arena_free(&j->mem);
        free(j);
    }
}

/* ---- Shard/Update: live updates (updates.h) ----------------------------------- */

#define UPDATE_MAX_DOCS 1000

typedef struct update_job {
    uv_work_t work;
    shard_t *s;
    shard_gen *g;                 /* the live generation: who owns an id */
    rpc_call_t *call;
    uint64_t t0;
    const Funnel__V1__UpdateRequest *req;   /* the call's, alive until the reply */
    grpc_status_code code;
    char msg[600];
    uint32_t applied, stale;
    uint64_t version;
} update_job;

static void update_work(uv_work_t *w)   /* worker thread */
{
    update_job *j = w->data;
    const Funnel__V1__UpdateRequest *req = j->req;
    size_t n = req->n_docs;
    su_op *ops = calloc(n, sizeof *ops);
    uint8_t *applied = calloc(n, 1);
    if (!ops || !applied) {
        j->code = GRPC_STATUS_RESOURCE_EXHAUSTED;
        snprintf(j->msg, sizeof j->msg, "out of memory");
        goto out;
    }
    const idx_index_info *in = idx_reader_info(j->g->reader);
    size_t nprune = 0;
    for (size_t i = 0; i < n; i++) nprune += req->docs[i]->prune;
    if (nprune && nprune != n) {
        j->code = GRPC_STATUS_INVALID_ARGUMENT;
        snprintf(j->msg, sizeof j->msg, "docs: prune operations come alone (%zu of %zu)", nprune, n);
        goto out;
    }
    if (nprune) {   /* after a merge: drop what the live generation holds now */
        for (size_t i = 0; i < n; i++)
            ops[i] = (su_op){ req->docs[i]->id, strlen(req->docs[i]->id), req->docs[i]->version, 0, NULL, 0 };
        size_t dropped = 0;
        fn_errbuf peb = {{0}};
        int prc = su_prune(j->s->updates, ops, n, &dropped, &peb);
        if (prc) {
            j->code = prc == -ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_INTERNAL;
            snprintf(j->msg, sizeof j->msg, "%s", fn_errmsg(&peb, prc));
            goto out;
        }
        j->applied = (uint32_t)dropped;
        j->stale = (uint32_t)(n - dropped);
        j->code = GRPC_STATUS_OK;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const Funnel__V1__DocUpdate *du = req->docs[i];
        size_t idl = strlen(du->id);
        char why[300] = "";
        /* the same checks as a build's: a shard called directly is no weaker */
        if (idl == 0 || idl > 511) snprintf(why, sizeof why, "id: %zu bytes, want 1..511", idl);
        else if (!du->version) snprintf(why, sizeof why, "version: 0 (the coordinator's clock is required)");
        else if (idx_reader_shard_of(j->g->reader, XXH64(du->id, idl, 0)) != in->shard)
            snprintf(why, sizeof why, "id '%.100s' belongs to shard %u (bucket map), this is shard %u", du->id,
                     idx_reader_shard_of(j->g->reader, XXH64(du->id, idl, 0)), in->shard);
        else if (du->remove && du->doc && *du->doc) snprintf(why, sizeof why, "a delete carries no document");
        else if (!du->remove) {
            char r[256] = "";
            json_error_t je;
            json_t *o = json_loads(du->doc ? du->doc : "", 0, &je);
            json_t *jid = o ? json_object_get(o, "id") : NULL;
            int crc = idx_corpus_line_check(du->doc ? du->doc : "", strlen(du->doc ? du->doc : ""), r, sizeof r);
            if (crc == -ENOMEM) snprintf(why, sizeof why, "out of memory");
            else if (crc) snprintf(why, sizeof why, "doc: %s", r);
            else if (!json_is_string(jid) || strcmp(json_string_value(jid), du->id) != 0)
                snprintf(why, sizeof why, "doc: its \"id\" is not '%.100s'", du->id);
            json_decref(o);
        }
        if (why[0]) {
            j->code = GRPC_STATUS_INVALID_ARGUMENT;
            snprintf(j->msg, sizeof j->msg, "docs[%zu]: %s", i, why);
            goto out;
        }
        ops[i] = (su_op){ du->id, idl, du->version, du->remove, du->doc, du->doc ? strlen(du->doc) : 0 };
        if (du->version > j->version) j->version = du->version;
    }
    fn_errbuf eb = {{0}};
    int rc = su_apply(j->s->updates, ops, n, applied, &eb);
    if (rc) {
        j->code = rc == -ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_INTERNAL;
        snprintf(j->msg, sizeof j->msg, "%s", fn_errmsg(&eb, rc));
        goto out;
    }
    for (size_t i = 0; i < n; i++) applied[i] ? j->applied++ : j->stale++;
    j->code = GRPC_STATUS_OK;
out:
    free(ops);
    free(applied);
}

static void update_done(uv_work_t *w, int status)   /* loop thread */
{
    update_job *j = w->data;
    shard_t *s = j->s;
    if (status != 0) {
        j->code = GRPC_STATUS_CANCELLED;
        snprintf(j->msg, sizeof j->msg, "update cancelled: %s", uv_strerror(status));
    }
    if (j->code != GRPC_STATUS_OK) {
        s->errors++;
        if (j->code != GRPC_STATUS_INVALID_ARGUMENT) FN_WARN("update failed: %s", j->msg);
        reply_job(s, SM_UPDATE, j->t0, j->call, j->code, j->msg, NULL);
    } else {
        Funnel__V1__UpdateResponse r = FUNNEL__V1__UPDATE_RESPONSE__INIT;
        r.applied = j->applied;
        r.stale = j->stale;
        r.version = j->version;
        reply_job(s, SM_UPDATE, j->t0, j->call, GRPC_STATUS_OK, NULL, &r.base);
    }
    if (s->updates) fn_mgauge_set(s->m.updates, (double)su_count(s->updates));
    gen_unref(s, j->g);
    free(j);
}

static void handle_update(rpc_call_t *call, const ProtobufCMessage *m, void *ud)
{
    shard_t *s = ud;
    sm_begin(s, SM_UPDATE);
    const Funnel__V1__UpdateRequest *req = (const Funnel__V1__UpdateRequest *)m;
    if (refuse_if_broken(s, call)) return;
    if (!s->updates) {
        s->errors++;
        reply_now(s, call, GRPC_STATUS_FAILED_PRECONDITION,
                  "this shard takes no live updates (start it with --updates-dir DIR)", NULL);
        return;
    }
    if (req->n_docs == 0 || req->n_docs > UPDATE_MAX_DOCS) {
        reject(s, call, "docs: %zu, want 1..%d", req->n_docs, UPDATE_MAX_DOCS);
        return;
    }
    update_job *j = calloc(1, sizeof *j);
    if (!j) {
        s->errors++;
        reply_now(s, call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return;
    }
    j->s = s;
    j->g = gen_ref(s->live);
    j->call = call;
    j->t0 = s->cur_t0;
    j->req = req;
    j->work.data = j;
    /* checks and the synchronous commit on a worker: the loop keeps serving */
    int rc = uv_queue_work(s->loop, &j->work, update_work, update_done);
    if (rc) {
        s->errors++;
        reply_now(s, call, GRPC_STATUS_INTERNAL, uv_strerror(rc), NULL);
        gen_unref(s, j->g);
        free(j);
    }
}

/* ---- Admin/Status ----------------------------------------------------------- */

static void handle_status(rpc_call_t *call, const ProtobufCMessage *m, void *ud)
{
    (void)m;
    shard_t *s = ud;
    sm_begin(s, SM_STATUS);
    const idx_index_info *info = idx_reader_info(s->live->reader);
    Funnel__V1__StatusResponse r = FUNNEL__V1__STATUS_RESPONSE__INIT;
    r.role = "shard";
    r.pid = (uint32_t)getpid();
    r.uptime_ms = mono_ms() - s->started_ms;
    r.requests = s->requests;
    r.errors = s->errors;
    r.shard = info->shard;
    r.shards = info->shards;
    r.docs = info->docs;
    r.index_dir = s->live->dir;
    r.generation = s->live->name;
    rank_ranker *model = model_get(s);
    r.stage1_model = (char *)(model ? rank_ranker_describe(model) : "");
    uv_mutex_lock(&s->model_mu);
    rank_ranker *cand = rank_ranker_ref(s->stage1_cand);
    uv_mutex_unlock(&s->model_mu);
    r.stage1_staged = (char *)(cand ? rank_ranker_describe(cand) : "");
    reply_now(s, call, GRPC_STATUS_OK, NULL, &r.base);
    rank_ranker_unref(model);
    rank_ranker_unref(cand);
}

/* ---- Admin/PushModel: replace, stage, activate or discard the stage-1 model --- */

/* --model-state: write what is about to go live (len 0: none) before it
 * does. 0, or the call answered INTERNAL naming the file and the reason
 * (the push refused, the old model live). */
static int state_keep(shard_t *s, rpc_call_t *call, const char *name, const void *p, size_t len)
{
    if (!s->cfg.model_state[0]) return 0;
    fn_errbuf eb = {{0}};
    int rc = fn_modelstate_save(s->cfg.model_state, "stage1", name, p, len, &eb);
    if (rc == 0) return 0;
    char msg[700];
    snprintf(msg, sizeof msg, "model state: %s (the model is not live: the one before stays)", fn_errmsg(&eb, rc));
    FN_ERROR("%s", msg);
    reply_now(s, call, GRPC_STATUS_INTERNAL, msg, NULL);
    return -1;
}

static void handle_push(rpc_call_t *call, const ProtobufCMessage *m, void *ud)
{
    shard_t *s = ud;
    sm_begin(s, SM_PUSH);
    const Funnel__V1__PushModelRequest *req = (const Funnel__V1__PushModelRequest *)m;
    if (req->stage != 1) {
        reply_now(s, call, GRPC_STATUS_INVALID_ARGUMENT, "stage: a shard runs stage 1 only", NULL);
        return;
    }
    fn_errbuf eb = {{0}};
    if (rank_push_check_mode((int)req->mode, req->model.len, &eb)) {
        reply_now(s, call, GRPC_STATUS_INVALID_ARGUMENT, eb.msg, NULL);
        return;
    }
    const char *name = req->name && *req->name ? req->name : "pushed model";
    Funnel__V1__PushModelResponse r = FUNNEL__V1__PUSH_MODEL_RESPONSE__INIT;
    char desc[256];
    if (req->mode == FUNNEL__V1__PUSH_MODEL_REQUEST__MODE__ACTIVATE ||
        req->mode == FUNNEL__V1__PUSH_MODEL_REQUEST__MODE__DISCARD) {
        int activate = req->mode == FUNNEL__V1__PUSH_MODEL_REQUEST__MODE__ACTIVATE;
        /* the candidate on disk before it is live (nothing staged: refused below) */
        if (activate && s->stage1_cand && state_keep(s, call, s->cand_src.name, s->cand_src.p, s->cand_src.len))
            return;
        fn_model_src_clear(&s->cand_src);   /* activated or discarded: no candidate from here on */
        uv_mutex_lock(&s->model_mu);
        rank_ranker *cand = s->stage1_cand, *old = NULL;
        if (activate && cand) {
            old = s->stage1;   /* searches in flight keep the one they hold */
            s->stage1 = cand;
            s->stage1_cand = NULL;
        } else if (!activate) {
            old = cand;
            s->stage1_cand = NULL;
        }
        snprintf(desc, sizeof desc, "%s", s->stage1 ? rank_ranker_describe(s->stage1) : "none");
        uv_mutex_unlock(&s->model_mu);
        rank_ranker_unref(old);
        if (activate && !cand) {
            reply_now(s, call, GRPC_STATUS_FAILED_PRECONDITION,
                      "activate: no stage-1 model is staged on this replica", NULL);
            return;
        }
        if (activate) {
            rank_ranker *live = model_get(s);
            sm_model(s, live);
            rank_ranker_unref(live);
            FN_INFO("stage-1 model now %s (staged, activated)", desc);
        } else if (cand) {
            FN_INFO("staged stage-1 model discarded; %s stays", desc);
        }
        r.model = desc;
        r.replicas = 1;
        reply_now(s, call, GRPC_STATUS_OK, NULL, &r.base);
        return;
    }
    if (req->model.len == 0) {   /* REPLACE with nothing: remove (STAGE needs a model: checked) */
        if (state_keep(s, call, name, NULL, 0)) return;
        model_set(s, NULL);
        sm_model(s, NULL);
        FN_INFO("stage-1 model removed (push): selection order from now on");
        r.model = (char *)"none";
        reply_now(s, call, GRPC_STATUS_OK, NULL, &r.base);
        return;
    }
    rank_ranker *rk;
    int rc = rank_ranker_parse((const char *)req->model.data, req->model.len, name, s->fnames,
                               s->fcheap, s->nfnames, &rk, &eb);
    if (rc) {
        FN_WARN("stage-1 model push refused: %s", fn_errmsg(&eb, rc));
        reply_now(s, call, GRPC_STATUS_INVALID_ARGUMENT, fn_errmsg(&eb, rc), NULL);
        return;
    }
    snprintf(desc, sizeof desc, "%s", rank_ranker_describe(rk));
    if (req->mode == FUNNEL__V1__PUSH_MODEL_REQUEST__MODE__STAGE) {
        if (s->cfg.model_state[0] && fn_model_src_set(&s->cand_src, req->model.data, req->model.len, name)) {
            rank_ranker_unref(rk);
            reply_now(s, call, GRPC_STATUS_RESOURCE_EXHAUSTED, "shard out of memory", NULL);
            return;
        }
        uv_mutex_lock(&s->model_mu);
        rank_ranker *old = s->stage1_cand;   /* a later STAGE replaces the candidate */
        s->stage1_cand = rk;
        uv_mutex_unlock(&s->model_mu);
        rank_ranker_unref(old);
        FN_INFO("stage-1 model %s staged (searches with candidate_model use it)", desc);
    } else {
        if (state_keep(s, call, name, req->model.data, req->model.len)) {
            rank_ranker_unref(rk);
            return;
        }
        model_set(s, rk);
        sm_model(s, rk);
        FN_INFO("stage-1 model now %s (push)", desc);
    }
    r.model = desc;
    r.replicas = 1;
    reply_now(s, call, GRPC_STATUS_OK, NULL, &r.base);
}

/* ---- Admin/Generation: load, switch, drop index generations ------------------ */

static void gen_answer(shard_t *s, rpc_call_t *call, int meth, uint64_t t0)
{
    Funnel__V1__GenerationResponse r = FUNNEL__V1__GENERATION_RESPONSE__INIT;
    Funnel__V1__LoadedGeneration lg[3], *lp[3];
    shard_gen *gs[3] = { s->live, s->prev, s->staged };
    static const char *const states[3] = { "live", "previous", "staged" };
    r.live = s->live->name;
    r.previous = s->prev ? s->prev->name : (char *)"";
    r.staged = s->staged ? s->staged->name : (char *)"";
    for (int i = 0; i < 3; i++) {
        if (!gs[i]) continue;
        const idx_index_info *in = idx_reader_info(gs[i]->reader);
        funnel__v1__loaded_generation__init(&lg[r.n_loaded]);
        lg[r.n_loaded].generation = gs[i]->name;
        lg[r.n_loaded].state = (char *)states[i];
        lg[r.n_loaded].docs = in->docs;
        lg[r.n_loaded].docs_total = in->docs_total;
        lg[r.n_loaded].analyzer = (char *)in->analyzer;
        lp[r.n_loaded] = &lg[r.n_loaded];
        r.n_loaded++;
    }
    r.loaded = lp;
    r.replicas = 1;
    reply_job(s, meth, t0, call, GRPC_STATUS_OK, NULL, &r.base);
}

static void gen_fail(shard_t *s, rpc_call_t *call, int meth, uint64_t t0, grpc_status_code code,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void gen_fail(shard_t *s, rpc_call_t *call, int meth, uint64_t t0, grpc_status_code code,
                     const char *fmt, ...)
{
    char msg[SHARD_MAX_GEN_NAME + 600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->errors++;
    if (code != GRPC_STATUS_INVALID_ARGUMENT) FN_WARN("generation: %s", msg);
    reply_job(s, meth, t0, call, code, msg, NULL);
}

/* Replay recent live searches on g before it is staged (loader thread; g
 * is nobody else's yet, so its searchers are free): the first searches on
 * a new generation otherwise pay for its cold pages (the map's page tables,
 * the hot postings not yet in the CPU caches) and for each searcher's
 * first-touch scratch memory, and right after a switch they all do at once.
 * Paced: a pause of 9x each search's time, so the warm-up takes a tenth of
 * one core at most beside the live searches. */
static void gen_warm(shard_t *s, shard_gen *g, const warm_query *w, size_t n)
{
    if (!n || !g->pool.n) return;
    uint64_t t0 = uv_hrtime(), busy = 0;
    rank_ranker *model = model_get(s);
    fn_arena mem;
    fn_arena_init(&mem);
    size_t runs = 0, failed = 0;
    /* every query once; every searcher at least once (its scratch) */
    size_t total = n > g->pool.n ? n : g->pool.n;
    for (size_t i = 0; i < total && !atomic_load(&s->load_abort); i++) {
        const warm_query *q = &w[i % n];
        idx_searcher_t *se = g->pool.free[i % g->pool.n];
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        shard_funnel_req rq = {
            .q = {.text = q->text, .k = q->selection_k, .max_terms = s->cfg.max_query_terms,
                  .deadline_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec + 1000000000ull,
                  .bm25 = &s->cfg.bm25, .sel = &s->cfg.sel, .all_terms = q->all_terms, .plain_text = q->plain_text},
            .k = q->k,
        };
        shard_funnel_out fo;
        fn_errbuf eb = {{0}};
        uint64_t a = uv_hrtime();
        failed += shard_funnel_run(se, &rq, model, &mem, &fo, &eb) != 0;
        idx_searcher_release(se);
        fn_arena_reset(&mem);
        uint64_t took = uv_hrtime() - a;
        busy += took;
        runs++;
        uint64_t pause = 9 * took;
        struct timespec ts = { .tv_sec = (time_t)(pause / 1000000000ull), .tv_nsec = (long)(pause % 1000000000ull) };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
    fn_arena_free(&mem);
    rank_ranker_unref(model);
    FN_INFO("generation %s warmed with %zu recent searches (%zu failed) in %.3f s (%.3f s searching)", g->name, runs,
            failed, (double)(uv_hrtime() - t0) / 1e9, (double)busy / 1e9);
}

static void load_main(void *arg)   /* the loader thread: open and check the whole shard file */
{
    shard_t *s = arg;
    gen_load *l = s->loading;
    /* below the searches: the checksum of a large file and the warm-up
     * must not take the cores searches are served on, nor keep a waking
     * search waiting (SCHED_IDLE: fn_pressure.h) */
    fn_thread_background();
    /* and below their reads: a generation read from disk (a page cache that
     * dropped it) must not queue ahead of a search's page faults on the live
     * one (the idle I/O class: honoured by the mq-deadline and bfq
     * schedulers; no glibc wrapper, and failing it only costs that) */
    enum { IOPRIO_WHO_PROCESS_ = 1, IOPRIO_CLASS_IDLE_ = 3, IOPRIO_CLASS_SHIFT_ = 13 };
    if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS_, (int)syscall(SYS_gettid), IOPRIO_CLASS_IDLE_ << IOPRIO_CLASS_SHIFT_) != 0)
        FN_DEBUG("loader: ioprio_set: %s", strerror(errno));
    fn_errbuf eb = {{0}};
    l->rc = gen_open(&s->cfg, l->name, l->dir, 1, &l->g, &eb);
    if (l->rc) snprintf(l->msg, sizeof l->msg, "%s", fn_errmsg(&eb, l->rc));
    else gen_warm(s, l->g, l->warm, l->nwarm);
    free(l->warm);
    l->warm = NULL;
    uv_async_send(&s->load_done);
}

static void on_load_done(uv_async_t *h)   /* loop thread */
{
    shard_t *s = h->data;
    gen_load *l = s->loading;
    if (!l) return;
    uv_thread_join(&s->loader);
    s->loading = NULL;
    shard_gen *g = l->g;
    if (l->rc) {
        gen_fail(s, l->call, SM_GENERATION, l->t0, l->rc == -ENOENT ? GRPC_STATUS_NOT_FOUND
                                                   : l->rc == -ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED
                                                                      : GRPC_STATUS_FAILED_PRECONDITION,
                 "generation %s: %s", l->name, l->msg);
        free(l);
        return;
    }
    const idx_index_info *in = idx_reader_info(g->reader), *live = idx_reader_info(s->live->reader);
    if (in->shard != live->shard || in->shards != l->shards) {
        gen_fail(s, l->call, SM_GENERATION, l->t0, GRPC_STATUS_FAILED_PRECONDITION,
                 "generation %s: %s is shard %u of %u, this process serves shard %u (of %u)", l->name, l->dir,
                 (unsigned)in->shard, (unsigned)in->shards, (unsigned)live->shard, (unsigned)l->shards);
        gen_close(g);
        free(l);
        return;
    }
    if (s->stopping) {
        gen_fail(s, l->call, SM_GENERATION, l->t0, GRPC_STATUS_UNAVAILABLE, "shard is shutting down");
        gen_close(g);
        free(l);
        return;
    }
    gen_drop(s, s->staged);   /* a newer candidate replaces the old one */
    s->staged = g;
    FN_INFO("generation %s staged: %s, %llu documents", g->name, g->dir, (unsigned long long)in->docs);
    gen_answer(s, l->call, SM_GENERATION, l->t0);
    free(l);
}

/* A generation's name: an absolute directory path without "." or ".."
 * components, at most SHARD_MAX_GEN_NAME bytes (1: acceptable). */
static int gen_name_ok(const char *n, char *why, size_t cap)
{
    size_t len = strlen(n);
    if (len == 0 || n[0] != '/') return snprintf(why, cap, "generation: want an absolute directory path"), 0;
    if (len > SHARD_MAX_GEN_NAME) return snprintf(why, cap, "generation: %zu bytes, over %d", len, SHARD_MAX_GEN_NAME), 0;
    for (const char *p = n; *p; p++) {
        if ((unsigned char)*p < 0x20) return snprintf(why, cap, "generation: a control character"), 0;
        if (p[0] == '/' && p[1] == '.' && (p[2] == '/' || !p[2] || (p[2] == '.' && (p[3] == '/' || !p[3]))))
            return snprintf(why, cap, "generation: no '.' or '..' components"), 0;
    }
    return 1;
}

static void handle_generation(rpc_call_t *call, const ProtobufCMessage *m, void *ud)
{
    shard_t *s = ud;
    sm_begin(s, SM_GENERATION);
    uint64_t t0 = s->cur_t0;
    const Funnel__V1__GenerationRequest *req = (const Funnel__V1__GenerationRequest *)m;
    const char *name = req->generation ? req->generation : "";
    char why[128];
    s->requests++;
    if (req->op != FUNNEL__V1__GENERATION_REQUEST__OP__LIST && req->op != FUNNEL__V1__GENERATION_REQUEST__OP__ROLLBACK &&
        !gen_name_ok(name, why, sizeof why)) {
        gen_fail(s, call, SM_GENERATION, t0, GRPC_STATUS_INVALID_ARGUMENT, "%s", why);
        return;
    }
    shard_gen *g = NULL;
    if (*name) {
        if (strcmp(name, s->live->name) == 0) g = s->live;
        else if (s->prev && strcmp(name, s->prev->name) == 0) g = s->prev;
        else if (s->staged && strcmp(name, s->staged->name) == 0) g = s->staged;
    }
    switch (req->op) {
    case FUNNEL__V1__GENERATION_REQUEST__OP__LIST:
        gen_answer(s, call, SM_GENERATION, t0);
        return;
    case FUNNEL__V1__GENERATION_REQUEST__OP__STAGE: {
        if (g) {   /* loaded already: nothing to do */
            gen_answer(s, call, SM_GENERATION, t0);
            return;
        }
        if (s->loading) {
            gen_fail(s, call, SM_GENERATION, t0, GRPC_STATUS_UNAVAILABLE,
                     "generation %s: another generation (%s) is being loaded", name, s->loading->name);
            return;
        }
        gen_load *l = calloc(1, sizeof *l);
        if (!l) {
            gen_fail(s, call, SM_GENERATION, t0, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        l->call = call;
        l->t0 = t0;
        /* the shard number stays; the count may grow (cluster add-shard) */
        l->shards = req->shards ? req->shards : idx_reader_info(s->live->reader)->shards;
        snprintf(l->name, sizeof l->name, "%s", name);
        snprintf(l->dir, sizeof l->dir, "%s/shard-%03u", name, (unsigned)idx_reader_info(s->live->reader)->shard);
        if (s->warm_n && (l->warm = malloc(s->warm_n * sizeof *l->warm))) {   /* (none: no warm-up) */
            memcpy(l->warm, s->warm, s->warm_n * sizeof *l->warm);
            l->nwarm = s->warm_n;
        }
        s->loading = l;
        /* its own thread, not the search pool: checking a large shard file
         * must not take a searcher's worker under load */
        int rc = uv_thread_create(&s->loader, load_main, s);
        if (rc) {
            s->loading = NULL;
            free(l->warm);
            free(l);
            gen_fail(s, call, SM_GENERATION, t0, GRPC_STATUS_RESOURCE_EXHAUSTED, "cannot start a thread: %s",
                     uv_strerror(rc));
        }
        return;
    }
    case FUNNEL__V1__GENERATION_REQUEST__OP__ACTIVATE: {
        if (!g) {
            gen_fail(s, call, SM_GENERATION, t0, GRPC_STATUS_FAILED_PRECONDITION,
                     "generation %s is not loaded on this shard: stage it first", name);
            return;
        }
        if (g == s->live) {
            gen_answer(s, call, SM_GENERATION, t0);
            return;
        }
        if (g->broken) {
            gen_fail(s, call, SM_GENERATION, t0, GRPC_STATUS_FAILED_PRECONDITION, "generation %s is damaged", name);
            return;
        }
        shard_gen *old = s->live;
        if (g == s->staged) {
            s->staged = NULL;
            gen_drop(s, s->prev);
        }
        s->prev = old;   /* (g was prev: the two change places) */
        s->live = g;
        break;
    }
    case FUNNEL__V1__GENERATION_REQUEST__OP__ROLLBACK: {
        if (!s->prev) {
            gen_fail(s, call, SM_GENERATION, t0, GRPC_STATUS_FAILED_PRECONDITION,
                     "no previous generation is loaded on this shard");
            return;
        }
        shard_gen *old = s->live;
        s->live = s->prev;
        s->prev = old;
        break;
    }
    case FUNNEL__V1__GENERATION_REQUEST__OP__DISCARD:
        if (g == s->live) {
            gen_fail(s, call, SM_GENERATION, t0, GRPC_STATUS_FAILED_PRECONDITION,
                     "generation %s is the live one", name);
            return;
        }
        if (g == s->staged) s->staged = NULL;
        if (g == s->prev) s->prev = NULL;
        gen_drop(s, g);   /* NULL (not loaded): nothing to do */
        gen_answer(s, call, SM_GENERATION, t0);
        return;
    default:
        gen_fail(s, call, SM_GENERATION, t0, GRPC_STATUS_INVALID_ARGUMENT, "op: %d is not a known verb",
                 (int)req->op);
        return;
    }
    /* the live generation changed */
    const idx_index_info *in = idx_reader_info(s->live->reader);
    fn_mgauge_set(s->m.docs, (double)in->docs);
    FN_INFO("generation %s live (%llu documents); previous %s", s->live->name, (unsigned long long)in->docs,
            s->prev ? s->prev->name : "none");
    if (s->broken && !s->live->broken) {   /* a good generation heals a shard stopped by a damaged one */
        s->broken = 0;
        fn_mgauge_set(s->m.damaged, 0);
        if (!s->stopping) rpc_server_set_serving(s->rpc, 1);
        FN_INFO("serving again: the live generation is %s", s->live->name);
    }
    gen_answer(s, call, SM_GENERATION, t0);
}

/* ---- start / stop ------------------------------------------------------------ */

static void on_async_closed(uv_handle_t *h);
static void on_trim_closed(uv_handle_t *h);

int shard_start(uv_loop_t *loop, const shard_config *cfg, shard_t **out, fn_errbuf *eb)
{
    *out = NULL;
    shard_t *s = calloc(1, sizeof *s);
    if (!s) return fn_seterr(eb, -ENOMEM, "out of memory");
    s->loop = loop;
    s->cfg = *cfg;
    s->started_ms = mono_ms();

    /* (no memory for it: no warm-up) */
    s->warm = cfg->warm_queries ? calloc(cfg->warm_queries, sizeof *s->warm) : NULL;
    if (uv_mutex_init(&s->model_mu) != 0) {
        free(s->warm);
        free(s);
        return fn_seterr(eb, -ENOMEM, "cannot create a mutex");
    }
    size_t nreg;
    const idx_feature_def *reg = idx_features(&nreg);
    s->nfnames = idx_features_shard();
    for (size_t i = 0; i < s->nfnames && i < 64; i++) {
        s->fnames[i] = reg[i].name;
        s->fcheap[i] = reg[i].cost == IDX_FEAT_CHEAP;
    }
    int rc = 0;
    fn_modelstate st;
    rc = cfg->model_state[0] ? fn_modelstate_load(cfg->model_state, "stage1", &st, eb) : 1;
    if (rc == 0) {   /* the last push wins over --stage1-model */
        if (st.len)
            rc = rank_ranker_parse(st.model, st.len, st.name, s->fnames, s->fcheap, s->nfnames, &s->stage1, eb);
        if (rc == 0) {
            FN_INFO("stage-1 model %s from %s (the last push; --stage1-model %s not used)",
                    s->stage1 ? rank_ranker_describe(s->stage1) : "none", st.path,
                    cfg->stage1_model[0] ? cfg->stage1_model : "(none)");
        } else {
            fn_modelstate_blame(&st, rc, eb);
        }
        fn_modelstate_free(&st);
    } else if (rc == 1) {
        rc = cfg->stage1_model[0]
                 ? rank_ranker_load(cfg->stage1_model, s->fnames, s->fcheap, s->nfnames, &s->stage1, eb)
                 : 0;
    }
    if (rc) goto fail_mu;
    /* the live generation's name: the directory above the shard's (the
     * index directory, as `funnel index publish` names generations) */
    char gname[SHARD_MAX_GEN_NAME + 1];
    char *rp = realpath(cfg->index_dir, NULL);
    snprintf(gname, sizeof gname, "%.*s", SHARD_MAX_GEN_NAME, rp ? rp : cfg->index_dir);
    free(rp);
    char *slash = strrchr(gname, '/');
    if (slash && slash != gname) *slash = 0;
    if ((rc = gen_open(cfg, gname, cfg->index_dir, 0, &s->live, eb)) != 0) goto fail_model;
    if (cfg->updates_dir[0] && (rc = su_open(cfg->updates_dir, &s->updates, eb)) != 0) {
        gen_close(s->live);
        goto fail_model;
    }
    if (s->updates)
        FN_INFO("live updates in %s: %llu ids hidden or replaced since the build", cfg->updates_dir,
                (unsigned long long)su_count(s->updates));
    if ((rc = uv_async_init(loop, &s->load_done, on_load_done)) != 0) {
        rc = fn_seterr(eb, -ENOMEM, "uv_async_init: %s", uv_strerror(rc));
        goto fail_reader;
    }
    s->load_done.data = s;
    fn_mem_timer_start(&s->trim, loop, &s->requests, s);

    rpc_method methods[] = {
        {RPC_METHOD_SHARD_SEARCH, &funnel__v1__shard_search_request__descriptor,
         handle_search, s},
        {RPC_METHOD_SHARD_RESCORE, &funnel__v1__shard_rescore_request__descriptor,
         handle_rescore, s},
        {RPC_METHOD_SHARD_FETCH, &funnel__v1__shard_fetch_request__descriptor, handle_fetch, s},
        {RPC_METHOD_SHARD_GET, &funnel__v1__shard_get_request__descriptor, handle_get, s},
        {RPC_METHOD_ADMIN_STATUS, &funnel__v1__status_request__descriptor, handle_status, s},
        {RPC_METHOD_ADMIN_PUSH_MODEL, &funnel__v1__push_model_request__descriptor, handle_push, s},
        {RPC_METHOD_ADMIN_GENERATION, &funnel__v1__generation_request__descriptor, handle_generation, s},
        {RPC_METHOD_SHARD_UPDATE, &funnel__v1__update_request__descriptor, handle_update, s},
    };
    rpc_server_opts o = {.addr = cfg->listen, .methods = methods, .nmethods = sizeof methods / sizeof methods[0]};
    if ((rc = rpc_server_start(loop, &o, &s->rpc, eb)) != 0) goto fail_pool;
    sm_init(s);
    *out = s;
    return 0;

fail_pool:
    /* the handles are closed by the loop; s must outlive them */
    fn_mem_timer_close(&s->trim, on_trim_closed);
    gen_close(s->live);
    s->live = NULL;
    su_close(s->updates);
    s->updates = NULL;
    rank_ranker_unref(s->stage1);
    s->stage1 = NULL;
    rank_ranker_unref(s->stage1_cand);
    s->stage1_cand = NULL;
    uv_mutex_destroy(&s->model_mu);
    s->done = NULL;   /* on_async_closed frees s */
    return rc;
fail_reader:
    gen_close(s->live);
    su_close(s->updates);
fail_model:
    rank_ranker_unref(s->stage1);
fail_mu:
    uv_mutex_destroy(&s->model_mu);
    free(s->warm);
    free(s);
    return rc;
}

int shard_port(const shard_t *s) { return rpc_server_port(s->rpc); }
const idx_index_info *shard_info(const shard_t *s) { return idx_reader_info(s->live->reader); }
uint64_t shard_requests(const shard_t *s) { return s->requests; }
uint64_t shard_errors(const shard_t *s) { return s->errors; }

static void on_async_closed(uv_handle_t *h)
{
    shard_t *s = h->data;
    void (*done)(void *) = s->done;
    void *dud = s->done_ud;
    free(s->warm);
    fn_model_src_clear(&s->cand_src);
    free(s);
    if (done) done(dud);
}

/* The timer first, then the async handle, whose close frees s. */
static void on_trim_closed(uv_handle_t *h)
{
    shard_t *s = h->data;
    uv_close((uv_handle_t *)&s->load_done, on_async_closed);
}

static void on_rpc_stopped(void *ud)
{
    shard_t *s = ud;
    /* Every call has been answered (a stage's too: its load is over), so no
     * job holds a generation and no worker a searcher. */
    gen_drop(s, s->staged);
    gen_drop(s, s->prev);
    gen_drop(s, s->live);
    gen_reap(s, 1);
    su_close(s->updates);
    rank_ranker_unref(s->stage1);
    rank_ranker_unref(s->stage1_cand);
    uv_mutex_destroy(&s->model_mu);
    fn_mem_timer_close(&s->trim, on_trim_closed);
}

void shard_stop(shard_t *s, void (*done)(void *ud), void *ud)
{
    if (s->stopping) return;
    s->stopping = 1;
    atomic_store(&s->load_abort, 1);
    s->done = done;
    s->done_ud = ud;
    rpc_server_set_serving(s->rpc, 0);
    rpc_server_stop(s->rpc, on_rpc_stopped, s);
}
