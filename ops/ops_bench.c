/* ops_bench.c - `funnel bench`: load against a running coordinator (issue 12).
 *
 * Closed loop (--concurrency C): C threads, each sends the next query as soon
 * as its previous answer arrived. Open loop (--rate R): requests are due at
 * fixed intervals 1/R from the start whatever the answers; a pool of sender
 * threads takes the schedule's slots in turn (slot k is due at start + k/R),
 * sleeps until the slot is due and sends. When every sender is busy a slot is
 * sent late, and its latency still counts from the time it was due: the
 * coordinated-omission correction of wrk2. Latencies go into one histogram
 * per thread (ops_bench_hist.h), merged at the end.
 */
#include "ops.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "funnel.pb-c.h"
#include "ops_bench_hist.h"
#include "rpc_client.h"

#define BENCH_MAX_CONCURRENCY 1024
#define BENCH_MAX_POOL 256          /* open loop: sender threads at most */
#define BENCH_MAX_RATE 100000.0
#define BENCH_MAX_SECONDS 86400.0
#define BENCH_MAX_DEADLINE_MS 600000u
#define BENCH_MAX_K 10000u
#define BENCH_LATE_NS 1000000LL     /* a slot sent more than 1 ms after it was due is "late" */
#define NCODES 18                   /* gRPC codes 0..16, and 17 for any other */

static const char bench_usage[] =
    "usage: funnel bench --server ADDR --queries Q (--rate R | --concurrency C) --duration S\n"
    "                    [--warmup S] [--deadline-ms D] [--k 10] [--syntax language|plain]\n"
    "                    [--seed N] [--json] [--timeline F]\n"
    "\n"
    "Sends the queries of Q (qid<TAB>text[<TAB>vector] lines) to the coordinator at\n"
    "ADDR in file order, cycling, and reports throughput, outcomes and latency.\n"
    "  --concurrency C  closed loop: C threads, each sends its next query when its\n"
    "                   previous answer arrived (1..1024)\n"
    "  --rate R         open loop: R requests per second (fractional, up to 100000)\n"
    "                   at fixed intervals whatever the answers; latency counts from\n"
    "                   the time a request was due, also when all senders were busy\n"
    "                   (coordinated omission corrected, as wrk2 does)\n"
    "  --duration S     seconds of measured load (up to 86400)\n"
    "  --warmup S       seconds of load before it, not measured (default 0)\n"
    "  --deadline-ms D  per request (default 1000)\n"
    "  --k K            hits per request (default 10)\n"
    "  --syntax language|plain\n"
    "                   plain (default): the texts are words only (natural-language\n"
    "                   query sets); language: the query language\n"
    "  --seed N         start the cycle at a query chosen by N (default 0: the first)\n"
    "  --json           one JSON object on stdout\n"
    "  --timeline F     (open loop) one line per measured request to F: the second it\n"
    "                   was due (from the start of the measured part), its latency in\n"
    "                   ms and its status: where in time the slow ones were\n"
    "Outcomes: OK (partial or not) or the gRPC status (DEADLINE_EXCEEDED, ...),\n"
    "counted by status; latency percentiles cover every request.\n"
    "Exit status: 0 the run completed (errors are data), 1 the server could not be\n"
    "reached or the queries could not be read, 2 usage error.\n";

typedef struct bench_args {
    const char *server, *queries;
    double rate;             /* > 0: open loop */
    uint32_t concurrency;    /* > 0: closed loop */
    double duration, warmup;
    uint32_t deadline_ms, k;
    int syntax_language;
    uint64_t seed;
    int json;
    const char *timeline;    /* open loop: per-request lines to this file */
} bench_args;

/* One thread's counts: written by that thread only. */
typedef struct bench_stats {
    bench_hist hist;
    uint64_t requests, ok, partial, late;
    uint64_t by_code[NCODES];
} bench_stats;

typedef struct bench_run {
    rpc_client_t *client;
    const bench_args *a;
    const ops_query *q;
    size_t nq, q0;
    int64_t t_start, t_measure, t_end;   /* CLOCK_MONOTONIC ns */
    atomic_uint_fast64_t next;           /* the next slot (open) or query (closed) */
    pthread_mutex_t msg_lock;            /* the first message of each error status */
    atomic_int have_msg[NCODES];         /* first_msg[c] is set (checked without the lock) */
    char *first_msg[NCODES];
    /* --timeline: slot k's latency (us, +1; 0 = not sent) and status; each
     * slot is taken by one sender, so no lock */
    uint32_t *tl_us;
    uint8_t *tl_code;
    uint64_t tl_n;
} bench_run;

typedef struct bench_worker {
    bench_run *run;
    bench_stats *st;
} bench_worker;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until(int64_t t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / 1000000000LL), .tv_nsec = (long)(t % 1000000000LL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* Send slot's query; the latency counts from `due` (ns). Returns the status. */
static grpc_status_code send_one(bench_run *r, uint64_t slot, int64_t due, int measured, bench_stats *st,
                                 rpc_status *rs)
{
    const ops_query *q = &r->q[(r->q0 + slot) % r->nq];
    Funnel__V1__SearchRequest req = FUNNEL__V1__SEARCH_REQUEST__INIT;
    req.query = q->text;
    req.vector = q->vec;
    req.n_vector = q->nvec;
    req.k = r->a->k;
    req.plain_text = !r->a->syntax_language;
    ProtobufCMessage *resp = NULL;
    memset(rs, 0, sizeof *rs);
    grpc_status_code code = rpc_client_call(r->client, RPC_METHOD_SEARCH, &req.base,
                                            &funnel__v1__search_response__descriptor, r->a->deadline_ms,
                                            &resp, rs);
    int64_t done = now_ns();
    int partial = code == GRPC_STATUS_OK && resp && ((Funnel__V1__SearchResponse *)resp)->partial;
    if (resp) protobuf_c_message_free_unpacked(resp, NULL);
    if (!measured || !st) return code;
    if (r->tl_us && slot < r->tl_n) {
        int64_t us = (done - due + 500) / 1000;
        r->tl_us[slot] = us >= UINT32_MAX - 1 ? UINT32_MAX : (uint32_t)us + 1;
        r->tl_code[slot] = (uint8_t)((unsigned)code < NCODES - 1 ? (unsigned)code : NCODES - 1);
    }
    st->requests++;
    bench_hist_record(&st->hist, (done - due + 500) / 1000);
    if (code == GRPC_STATUS_OK) {
        st->ok++;
        st->partial += partial != 0;
    } else {
        unsigned c = (unsigned)code < NCODES - 1 ? (unsigned)code : NCODES - 1;
        st->by_code[c]++;
        if (!atomic_load_explicit(&r->have_msg[c], memory_order_relaxed)) {
            pthread_mutex_lock(&r->msg_lock);
            if (!r->first_msg[c]) r->first_msg[c] = strdup(rs->message);
            atomic_store_explicit(&r->have_msg[c], 1, memory_order_relaxed);
            pthread_mutex_unlock(&r->msg_lock);
        }
    }
    return code;
}

static void *closed_worker(void *ud)
{
    bench_worker *w = ud;
    bench_run *r = w->run;
    rpc_status rs;
    sleep_until(r->t_start);
    for (;;) {
        int64_t t0 = now_ns();
        if (t0 >= r->t_end) break;
        uint64_t slot = atomic_fetch_add(&r->next, 1);
        send_one(r, slot, t0, t0 >= r->t_measure, w->st, &rs);
    }
    return NULL;
}

/* slot k of the open loop's schedule is due at t_start + k / rate */
static int64_t slot_due(const bench_run *r, uint64_t k)
{
    return r->t_start + (int64_t)llround((double)k * 1e9 / r->a->rate);
}

static void *open_worker(void *ud)
{
    bench_worker *w = ud;
    bench_run *r = w->run;
    rpc_status rs;
    for (;;) {
        uint64_t slot = atomic_fetch_add(&r->next, 1);
        int64_t due = slot_due(r, slot);
        if (due >= r->t_end) break;
        int64_t now = now_ns();
        if (now >= r->t_end) break;   /* due but not sent by the end: unsent */
        if (now < due) sleep_until(due);
        else if (now - due > BENCH_LATE_NS && due >= r->t_measure) w->st->late++;
        send_one(r, slot, due, due >= r->t_measure, w->st, &rs);
    }
    return NULL;
}

/* Slots of the open loop due in [t_measure, t_end). */
static uint64_t slots_due(const bench_run *r)
{
    double per_ns = r->a->rate / 1e9;
    /* first k with due >= t_measure, first k with due >= t_end (due rounds, so step to the exact k) */
    uint64_t k0 = (uint64_t)floor((double)(r->t_measure - r->t_start) * per_ns);
    while (k0 > 0 && slot_due(r, k0 - 1) >= r->t_measure) k0--;
    while (slot_due(r, k0) < r->t_measure) k0++;
    uint64_t k1 = (uint64_t)floor((double)(r->t_end - r->t_start) * per_ns);
    while (k1 > 0 && slot_due(r, k1 - 1) >= r->t_end) k1--;
    while (slot_due(r, k1) < r->t_end) k1++;
    return k1 > k0 ? k1 - k0 : 0;
}

/* ------------------------------------------------------------- report ---- */

static const char *code_name(unsigned c)
{
    return c < NCODES - 1 ? rpc_status_name((grpc_status_code)c) : "OTHER";
}

static int report(const bench_run *r, const bench_stats *tot, uint32_t threads, uint64_t unsent, double elapsed)
{
    const bench_args *a = r->a;
    const bench_hist *h = &tot->hist;
    uint64_t errors = tot->requests - tot->ok;
    double qps = (double)tot->requests / a->duration;
    double goodput = (double)(tot->ok - tot->partial) / a->duration;
    double pshare = tot->requests ? (double)tot->partial / (double)tot->requests : 0.0;
    double p50 = bench_hist_percentile(h, 50) / 1e3, p90 = bench_hist_percentile(h, 90) / 1e3,
           p99 = bench_hist_percentile(h, 99) / 1e3, p999 = bench_hist_percentile(h, 99.9) / 1e3,
           mx = h->count ? (double)h->max / 1e3 : 0.0, mean = bench_hist_mean(h) / 1e3,
           mn = h->count ? (double)h->min / 1e3 : 0.0;
    if (a->json) {
        json_t *o = json_object(), *by = json_object();
        if (!o || !by) goto oom;
        for (unsigned c = 1; c < NCODES; c++)
            if (tot->by_code[c]) json_object_set_new(by, code_name(c), json_integer((json_int_t)tot->by_code[c]));
        json_object_set_new(o, "mode", json_string(a->rate > 0 ? "open" : "closed"));
        if (a->rate > 0) {
            json_object_set_new(o, "rate", json_real(a->rate));
            json_object_set_new(o, "unsent", json_integer((json_int_t)unsent));
            json_object_set_new(o, "late", json_integer((json_int_t)tot->late));
        } else {
            json_object_set_new(o, "concurrency", json_integer(a->concurrency));
        }
        json_object_set_new(o, "threads", json_integer(threads));
        json_object_set_new(o, "duration_s", json_real(a->duration));
        json_object_set_new(o, "warmup_s", json_real(a->warmup));
        json_object_set_new(o, "elapsed_s", json_real(elapsed));
        json_object_set_new(o, "deadline_ms", json_integer(a->deadline_ms));
        json_object_set_new(o, "k", json_integer(a->k));
        json_object_set_new(o, "syntax", json_string(a->syntax_language ? "language" : "plain"));
        json_object_set_new(o, "queries", json_integer((json_int_t)r->nq));
        json_object_set_new(o, "requests", json_integer((json_int_t)tot->requests));
        json_object_set_new(o, "ok", json_integer((json_int_t)tot->ok));
        json_object_set_new(o, "errors", json_integer((json_int_t)errors));
        json_object_set_new(o, "errors_by_status", by);
        json_object_set_new(o, "partial", json_integer((json_int_t)tot->partial));
        json_object_set_new(o, "partial_share", json_real(pshare));
        json_object_set_new(o, "qps", json_real(qps));
        json_object_set_new(o, "goodput_qps", json_real(goodput));
        json_object_set_new(o, "p50_ms", json_real(p50));
        json_object_set_new(o, "p90_ms", json_real(p90));
        json_object_set_new(o, "p99_ms", json_real(p99));
        json_object_set_new(o, "p999_ms", json_real(p999));
        json_object_set_new(o, "max_ms", json_real(mx));
        json_object_set_new(o, "min_ms", json_real(mn));
        json_object_set_new(o, "mean_ms", json_real(mean));
        json_object_set_new(o, "latency_clamped", json_integer((json_int_t)h->clamped));
        char *text = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        json_decref(o);
        if (!text) goto oom;
        printf("%s\n", text);
        free(text);
    } else {
        printf("requests %llu in %.1f s: %.1f qps", (unsigned long long)tot->requests, a->duration, qps);
        if (a->rate > 0) printf(" (target %g/s, open loop)", a->rate);
        else printf(" (concurrency %u, closed loop)", a->concurrency);
        printf("; ok %llu, partial %llu (%.2f%%); ", (unsigned long long)tot->ok,
               (unsigned long long)tot->partial, 100.0 * pshare);
        if (errors) {
            printf("errors:");
            for (unsigned c = 1; c < NCODES; c++)
                if (tot->by_code[c]) printf(" %s %llu", code_name(c), (unsigned long long)tot->by_code[c]);
        } else {
            printf("errors 0");
        }
        printf("; goodput %.1f/s\n", goodput);
        printf("latency ms: p50 %.2f p90 %.2f p99 %.2f p999 %.2f max %.2f mean %.2f\n", p50, p90, p99, p999, mx,
               mean);
        if (a->rate > 0 && (unsent || tot->late))
            printf("behind schedule: %llu requests sent more than 1 ms late, %llu never sent "
                   "(the server's throughput is below the target)\n",
                   (unsigned long long)tot->late, (unsigned long long)unsent);
    }
    if (h->clamped)
        fprintf(stderr, "funnel bench: %llu latencies beyond %lld s were counted as %lld s\n",
                (unsigned long long)h->clamped, BENCH_HIST_MAX_US / 1000000, BENCH_HIST_MAX_US / 1000000);
    for (unsigned c = 1; c < NCODES; c++)
        if (r->first_msg[c])
            fprintf(stderr, "funnel bench: %s (first): %s\n", code_name(c), r->first_msg[c]);
    return fflush(stdout) == 0 ? OPS_EXIT_OK : OPS_EXIT_FAIL;
oom:
    fprintf(stderr, "funnel bench: out of memory\n");
    return OPS_EXIT_FAIL;
}

/* ---------------------------------------------------------------- run ---- */

/* --timeline: "due_s<TAB>latency_ms<TAB>STATUS" for each measured slot sent. */
static int write_timeline(const bench_run *r)
{
    FILE *f = fopen(r->a->timeline, "w");
    if (!f) {
        fprintf(stderr, "funnel bench: --timeline %s: %s\n", r->a->timeline, strerror(errno));
        return -1;
    }
    for (uint64_t k = 0; k < r->tl_n; k++) {
        if (!r->tl_us[k]) continue;
        fprintf(f, "%.4f\t%.3f\t%s\n", (double)(slot_due(r, k) - r->t_measure) / 1e9, (double)(r->tl_us[k] - 1) / 1e3,
                code_name(r->tl_code[k]));
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "funnel bench: --timeline %s: %s\n", r->a->timeline, strerror(errno));
        return -1;
    }
    return 0;
}

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int bench_run_all(const bench_args *a)
{
    fn_errbuf eb = {{0}};
    ops_query *q = NULL;
    size_t nq = 0;
    int rc = ops_queries_load(a->queries, &q, &nq, &eb);
    if (rc != 0) {
        fprintf(stderr, "funnel bench: %s\n", fn_errmsg(&eb, rc));
        return OPS_EXIT_FAIL;
    }
    if (nq == 0) {
        fprintf(stderr, "funnel bench: %s: no queries\n", a->queries);
        ops_queries_free(q, nq);
        return OPS_EXIT_FAIL;
    }
    int ret = OPS_EXIT_FAIL;
    rpc_init();
    bench_run r = {.a = a, .q = q, .nq = nq, .q0 = a->seed ? (size_t)(mix64(a->seed) % nq) : 0};
    atomic_init(&r.next, 0);
    for (unsigned c = 0; c < NCODES; c++) atomic_init(&r.have_msg[c], 0);
    pthread_mutex_init(&r.msg_lock, NULL);
    bench_worker *w = NULL;
    pthread_t *th = NULL;
    r.client = rpc_client_create(a->server);
    if (!r.client) {
        fprintf(stderr, "funnel bench: out of memory\n");
        goto out;
    }

    /* one request first: connects the channel (not measured) and tells an
     * unreachable server from a slow one */
    rpc_status rs;
    grpc_status_code pre = send_one(&r, 0, now_ns(), 0, NULL, &rs);
    if (pre == GRPC_STATUS_UNAVAILABLE) {
        fprintf(stderr, "funnel bench: %s: %s: %s\n", a->server, rpc_status_name(pre), rs.message);
        goto out;
    }

    uint32_t nt;
    if (a->rate > 0) {
        /* enough senders for the in-flight load: a request lasts at most its
         * deadline, so rate x deadline are in flight at most; twice that */
        double need = ceil(2.0 * a->rate * (double)a->deadline_ms / 1000.0) + 4;
        double slots = ceil(a->rate * (a->warmup + a->duration)) + 1;
        if (need > slots) need = slots;
        nt = need > BENCH_MAX_POOL ? BENCH_MAX_POOL : (uint32_t)need;
        if (a->timeline) {
            r.tl_n = (uint64_t)slots + 1;
            r.tl_us = calloc(r.tl_n, sizeof *r.tl_us);
            r.tl_code = calloc(r.tl_n, sizeof *r.tl_code);
            if (!r.tl_us || !r.tl_code) {
                fprintf(stderr, "funnel bench: --timeline: out of memory for %llu slots\n", (unsigned long long)r.tl_n);
                goto out;
            }
        }
    } else {
        nt = a->concurrency;
    }
    w = calloc(nt, sizeof *w);
    th = calloc(nt, sizeof *th);
    if (!w || !th) {
        fprintf(stderr, "funnel bench: out of memory\n");
        goto out;
    }
    for (uint32_t i = 0; i < nt; i++) {
        w[i].run = &r;
        w[i].st = malloc(sizeof *w[i].st);
        if (!w[i].st) {
            fprintf(stderr, "funnel bench: out of memory\n");
            goto out;
        }
        memset(w[i].st, 0, sizeof *w[i].st);
        bench_hist_init(&w[i].st->hist);
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1u << 20);
    /* a little ahead, so that the threads are up when the first slot is due */
    r.t_start = now_ns() + 20000000LL;
    r.t_measure = r.t_start + (int64_t)llround(a->warmup * 1e9);
    r.t_end = r.t_measure + (int64_t)llround(a->duration * 1e9);
    uint32_t started = 0;
    for (; started < nt; started++)
        if (pthread_create(&th[started], &attr, a->rate > 0 ? open_worker : closed_worker, &w[started]) != 0)
            break;
    pthread_attr_destroy(&attr);
    if (started < nt)
        fprintf(stderr, "funnel bench: started %u of %u threads: %s\n", started, nt, strerror(errno));
    if (started == 0) goto out;
    for (uint32_t i = 0; i < started; i++) pthread_join(th[i], NULL);
    double elapsed = (double)(now_ns() - r.t_measure) / 1e9;

    bench_stats *tot = malloc(sizeof *tot);
    if (!tot) {
        fprintf(stderr, "funnel bench: out of memory\n");
        goto out;
    }
    memset(tot, 0, sizeof *tot);
    bench_hist_init(&tot->hist);
    for (uint32_t i = 0; i < started; i++) {
        const bench_stats *s = w[i].st;
        bench_hist_merge(&tot->hist, &s->hist);
        tot->requests += s->requests;
        tot->ok += s->ok;
        tot->partial += s->partial;
        tot->late += s->late;
        for (unsigned c = 0; c < NCODES; c++) tot->by_code[c] += s->by_code[c];
    }
    uint64_t due = a->rate > 0 ? slots_due(&r) : 0;
    uint64_t unsent = due > tot->requests ? due - tot->requests : 0;
    ret = report(&r, tot, started, unsent, elapsed);
    if (r.tl_us && write_timeline(&r) != 0) ret = OPS_EXIT_FAIL;
    if (tot->requests && tot->by_code[GRPC_STATUS_UNAVAILABLE] == tot->requests) {
        fprintf(stderr, "funnel bench: %s: every request was UNAVAILABLE\n", a->server);
        ret = OPS_EXIT_FAIL;
    }
    free(tot);
out:
    for (uint32_t i = 0; w && i < nt; i++) free(w[i].st);
    free(w);
    free(th);
    for (unsigned c = 0; c < NCODES; c++) free(r.first_msg[c]);
    free(r.tl_us);
    free(r.tl_code);
    pthread_mutex_destroy(&r.msg_lock);
    if (r.client) rpc_client_destroy(r.client);
    rpc_shutdown();
    ops_queries_free(q, nq);
    return ret;
}

/* --------------------------------------------------------------- main ---- */

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || s[0] == '-' || errno) return -1;
    *out = v;
    return 0;
}

static int parse_dbl(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int ops_cmd_bench(int argc, char **argv)
{
    static const struct option lo[] = {
        {"server", required_argument, 0, 's'},      {"queries", required_argument, 0, 'q'},
        {"rate", required_argument, 0, 'r'},        {"concurrency", required_argument, 0, 'c'},
        {"duration", required_argument, 0, 'd'},    {"warmup", required_argument, 0, 'w'},
        {"deadline-ms", required_argument, 0, 'D'}, {"k", required_argument, 0, 'k'},
        {"syntax", required_argument, 0, 'Y'},      {"seed", required_argument, 0, 'S'},
        {"json", no_argument, 0, 'j'},              {"help", no_argument, 0, 'h'},
        {"timeline", required_argument, 0, 'T'},
        {0, 0, 0, 0}};
    bench_args a = {.deadline_ms = 1000, .k = 10, .duration = -1};
    uint64_t u;
    int c;
    const char *flag = NULL, *range = NULL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 's': a.server = optarg; break;
        case 'q': a.queries = optarg; break;
        case 'r':
            if (parse_dbl(optarg, &a.rate) || !(a.rate > 0 && a.rate <= BENCH_MAX_RATE)) {
                flag = "rate", range = "a number of requests per second in (0, 100000]";
                goto bad;
            }
            break;
        case 'c':
            if (parse_u64(optarg, &u) || u == 0 || u > BENCH_MAX_CONCURRENCY) {
                flag = "concurrency", range = "1..1024";
                goto bad;
            }
            a.concurrency = (uint32_t)u;
            break;
        case 'd':
            if (parse_dbl(optarg, &a.duration) || !(a.duration > 0 && a.duration <= BENCH_MAX_SECONDS)) {
                flag = "duration", range = "seconds in (0, 86400]";
                goto bad;
            }
            break;
        case 'w':
            if (parse_dbl(optarg, &a.warmup) || !(a.warmup >= 0 && a.warmup <= BENCH_MAX_SECONDS)) {
                flag = "warmup", range = "seconds in [0, 86400]";
                goto bad;
            }
            break;
        case 'D':
            if (parse_u64(optarg, &u) || u == 0 || u > BENCH_MAX_DEADLINE_MS) {
                flag = "deadline-ms", range = "1..600000";
                goto bad;
            }
            a.deadline_ms = (uint32_t)u;
            break;
        case 'k':
            if (parse_u64(optarg, &u) || u == 0 || u > BENCH_MAX_K) {
                flag = "k", range = "1..10000";
                goto bad;
            }
            a.k = (uint32_t)u;
            break;
        case 'Y':
            if (strcmp(optarg, "language") == 0) a.syntax_language = 1;
            else if (strcmp(optarg, "plain") == 0) a.syntax_language = 0;
            else {
                fprintf(stderr, "funnel bench: --syntax must be language or plain, not '%s'\n", optarg);
                return OPS_EXIT_USAGE;
            }
            break;
        case 'S':
            if (parse_u64(optarg, &a.seed)) {
                flag = "seed", range = "a non-negative integer";
                goto bad;
            }
            break;
        case 'j': a.json = 1; break;
        case 'T': a.timeline = optarg; break;
        case 'h': fputs(bench_usage, stdout); return OPS_EXIT_OK;
        default: fputs(bench_usage, stderr); return OPS_EXIT_USAGE;
        }
    }
    const char *missing = !a.server ? "--server" : !a.queries ? "--queries" : a.duration < 0 ? "--duration" : NULL;
    if (missing) {
        fprintf(stderr, "funnel bench: %s is required\n", missing);
        fputs(bench_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    if ((a.rate > 0) == (a.concurrency > 0)) {
        fprintf(stderr, "funnel bench: give exactly one of --rate (open loop) and --concurrency (closed loop)\n");
        return OPS_EXIT_USAGE;
    }
    if (a.timeline && !(a.rate > 0)) {
        fprintf(stderr, "funnel bench: --timeline needs --rate (the open loop's schedule)\n");
        return OPS_EXIT_USAGE;
    }
    if (optind != argc) {
        fprintf(stderr, "funnel bench: unexpected argument '%s'\n", argv[optind]);
        return OPS_EXIT_USAGE;
    }
    if (!ops_addr_valid(a.server)) {
        fprintf(stderr, "funnel bench: --server must be HOST:PORT, not '%s'\n", a.server);
        return OPS_EXIT_USAGE;
    }
    return bench_run_all(&a);

bad:
    fprintf(stderr, "funnel bench: bad value for --%s: '%s' (%s)\n", flag, optarg, range);
    return OPS_EXIT_USAGE;
}
