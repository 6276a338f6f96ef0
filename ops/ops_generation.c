/* ops_generation.c - `funnel index publish | rollback | generations`: index
 * generations on a running cluster (docs/operations.md "Index generations").
 *
 * publish: the coordinator stages GEN on every shard replica (Admin/
 * Generation STAGE: each loads and checks GEN/shard-NNN beside the live
 * generation), the quality gate runs the gate queries against both (the
 * candidate by name: SearchRequest.generation) and compares NDCG@10, top-10
 * overlap, the documents and latency; a candidate it refuses is discarded
 * and the report says why. A passed one is activated: from then on every
 * search names it, one in flight finishes on the old one, which stays loaded
 * as the previous generation for `rollback`.
 */
#include "ops.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>

#include "eval.h"
#include "funnel.pb-c.h"
#include "rpc_client.h"

static const char gen_usage[] =
    "usage: funnel index publish (--dir RUN | --coordinator ADDR) --index GEN\n"
    "                            [--gate-queries Q [--qrels R]] [gate thresholds]\n"
    "       funnel index rollback (--dir RUN | --coordinator ADDR)\n"
    "       funnel index generations (--dir RUN | --coordinator ADDR)\n"
    "\n"
    "publish swaps a running cluster to the index generation GEN (a directory\n"
    "`funnel index build` wrote, with the same number of shards) without a\n"
    "restart: every shard replica loads GEN beside the live generation, the\n"
    "quality gate compares the two, then every new search reads GEN. Searches\n"
    "in flight finish on the generation they started on; the old one stays\n"
    "loaded as the previous generation, for rollback.\n"
    "  --dir RUN              a `funnel cluster up` run directory (its coordinator; and\n"
    "                         its shards' command lines then name GEN, so a restarted\n"
    "                         shard comes back on it)\n"
    "  --coordinator ADDR     or a coordinator's host:port\n"
    "  --index GEN            the generation directory (absolute, or made so)\n"
    "  --gate-queries Q       queries.tsv: run against the live and the candidate\n"
    "                         generation; without it the gate is skipped (said so)\n"
    "  --qrels R              TREC qrels: compare NDCG@10 too\n"
    "  --max-ndcg-drop D      refuse if NDCG@10 falls by more than D (default 0.02)\n"
    "  --min-overlap O        refuse if the mean top-10 overlap is below O (default\n"
    "                         0.5 without --qrels; with them only if given)\n"
    "  --min-docs-ratio F     refuse if the candidate holds fewer than F x the live\n"
    "                         generation's documents (default 0.9)\n"
    "  --max-latency-ratio L  refuse if the candidate's p95 exceeds L x the live one's\n"
    "                         plus the slack (default 1.5); over it, the slowest 5%\n"
    "                         of either side run 3 times more on both (the fastest kept)\n"
    "  --latency-slack-ms MS  that slack (default 5)\n"
    "  --deadline-ms MS       per gate query and per admin call step (default 10000)\n"
    "  --gate-qps Q           the shadow queries' pace, searches a second (default 50;\n"
    "                         0 = as fast as they answer). They are background\n"
    "                         searches: a busy coordinator sheds them first, and the\n"
    "                         gate retries and halves its pace\n"
    "rollback makes the previous generation live again (still loaded: instant).\n"
    "generations lists the live, previous and staged generations.\n"
    "Exit status: 0 ok (published, rolled back), 1 failed or refused by the gate,\n"
    "2 usage error.\n";

typedef ops_gate_opts gate_opts;

/* The coordinator's address: --coordinator, or RUN/coordinator.addr. */
static int coord_addr(const char *run, const char *coord, char *out, size_t cap)
{
    if (coord) {
        snprintf(out, cap, "%s", coord);
        return 0;
    }
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/coordinator.addr", run);
    if (ops_read_small(path, out, cap) != 0 || !*out) {
        fprintf(stderr, "funnel index: %s: no coordinator address (is the cluster up?)\n", path);
        return -1;
    }
    return 0;
}

static grpc_status_code gen_call(rpc_client_t *c, Funnel__V1__GenerationRequest__Op op, const char *gen,
                                 int64_t deadline_ms, Funnel__V1__GenerationResponse **out, rpc_status *st)
{
    Funnel__V1__GenerationRequest rq = FUNNEL__V1__GENERATION_REQUEST__INIT;
    rq.op = op;
    rq.generation = (char *)(gen ? gen : "");
    return rpc_client_call(c, RPC_METHOD_ADMIN_GENERATION, &rq.base, &funnel__v1__generation_response__descriptor,
                           deadline_ms, (ProtobufCMessage **)out, st);
}

static void print_state(const Funnel__V1__GenerationResponse *r)
{
    printf("live: %s\nprevious: %s\nstaged: %s\n", *r->live ? r->live : "(the shards' own: nothing published yet)",
           *r->previous ? r->previous : "none", *r->staged ? r->staged : "none");
}

/* ---- the quality gate ---- */

typedef struct side {
    const char *gen;
    int cand_model;               /* re-rank with the staged stage-2 model */
    ops_run *run;
    double *lat_ms;
    size_t n, errors, partial;
    uint64_t docs_total;
    char first_error[300];
} side;

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile of the searches that answered; a failed one is
 * recorded as -1 (its time is the coordinator's refusal, not the
 * generation's latency). Sorts v. */
static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_dbl);
    size_t k = 0;
    while (k < n && v[k] < 0) k++;
    v += k, n -= k;
    if (!n) return 0;
    size_t i = (size_t)ceil(p / 100.0 * (double)n);
    return v[i ? i - 1 : 0];
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The shadow searches are background work (SearchRequest.background): a
 * coordinator near its capacity sheds them before users' searches. A shed
 * one is retried after the coordinator's hint until its deadline has
 * passed since the first try (then it counts as failed), and the pace
 * halves, to recover by a tenth of the asked pace with every query that
 * was not shed. */
typedef struct gate_pace {
    double asked, qps, lowest;   /* searches a second (0: unpaced) */
    size_t shed, gave_up;
} gate_pace;

/* Wait for the pair of searches due at *next (paced: the shadow queries are
 * extra load on a cluster serving users); time lost to retries is not made
 * up in a burst. */
static void pace_wait(const gate_pace *pace, double *next)
{
    if (pace->asked <= 0) return;
    double t = now_ms();
    if (*next < t - 1e3) *next = t - 1e3;
    ops_sleep_ms(*next - t);
    *next += 2e3 / pace->qps;   /* two searches a query */
}

/* One gate query on one side; the hits' ids into *ids (up to 10), the most
 * probable intent vertical into intent[64] ("" = none). 1 if the
 * coordinator shed it at least once. With ids NULL it only measures: the
 * latency into *ms (-1 if the search failed), nothing recorded on sd. */
static int gate_search(rpc_client_t *c, side *sd, const ops_query *q, int64_t deadline_ms, gate_pace *pace,
                       char ids[10][512], size_t *nids, char intent[64], double *ms)
{
    Funnel__V1__SearchRequest rq = FUNNEL__V1__SEARCH_REQUEST__INIT;
    rq.query = q->text;
    rq.k = 10;
    rq.generation = (char *)sd->gen;
    rq.candidate_model = sd->cand_model;
    rq.no_hedge = 1;   /* the latency of the generation, not of a hedge */
    rq.plain_text = 1; /* queries.tsv holds words, as `funnel search --batch` reads them */
    rq.background = 1; /* users first */
    Funnel__V1__SearchResponse *r = NULL;
    rpc_status st;
    double first = now_ms(), t0;
    grpc_status_code code;
    int shed = 0;
    for (;;) {
        t0 = now_ms();
        code = rpc_client_call(c, RPC_METHOD_SEARCH, &rq.base, &funnel__v1__search_response__descriptor, deadline_ms,
                               (ProtobufCMessage **)&r, &st);
        if (code != GRPC_STATUS_RESOURCE_EXHAUSTED || st.retry_ms < 0) break;   /* not shed */
        shed = 1;
        pace->shed++;
        if (pace->asked > 0) {
            double floor = pace->asked < 1 ? pace->asked : 1;   /* never faster than asked */
            pace->qps = pace->qps / 2 < floor ? floor : pace->qps / 2;
            if (pace->qps < pace->lowest) pace->lowest = pace->qps;
        }
        double wait = st.retry_ms < 50 ? 50 : (double)st.retry_ms;
        if (now_ms() + wait - first > (double)deadline_ms) {
            pace->gave_up++;
            break;
        }
        ops_sleep_ms(wait);
    }
    if (!ids) {
        *ms = code == GRPC_STATUS_OK ? now_ms() - t0 : -1;
        if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
        return shed;
    }
    sd->lat_ms[sd->n++] = code == GRPC_STATUS_OK ? now_ms() - t0 : -1;
    *nids = 0;
    intent[0] = '\0';
    if (code != GRPC_STATUS_OK) {
        if (!sd->errors++)
            snprintf(sd->first_error, sizeof sd->first_error, "query %.40s: %s %.200s", q->qid, rpc_status_name(code),
                     st.message);
        return shed;
    }
    if (r->partial) sd->partial++;
    if (r->n_intent && r->intent[0]->vertical) snprintf(intent, 64, "%s", r->intent[0]->vertical);
    if (r->coverage && r->coverage->docs_total > sd->docs_total) sd->docs_total = r->coverage->docs_total;
    for (size_t i = 0; i < r->n_hits && i < 10; i++) {
        snprintf(ids[*nids], 512, "%s", r->hits[i]->id);
        (*nids)++;
        ops_eval_run_add(sd->run, q->qid, r->hits[i]->id, r->hits[i]->score);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return shed;
}

/* NDCG over the gate's queries only: ops_eval_compute averages over every
 * judged query of the qrels, and the gate may run a subset. */
typedef struct gate_acc { const ops_query *q; size_t nq; ops_eval_result r; } gate_acc;

static void gate_cb(void *ud, const char *qid, const double v[OPS_EVAL_NMETRICS])
{
    gate_acc *a = ud;
    size_t i = 0;
    while (i < a->nq && strcmp(a->q[i].qid, qid) != 0) i++;
    if (i == a->nq) return;
    a->r.queries++;
    for (int m = 0; m < OPS_EVAL_NMETRICS; m++) a->r.v[m] += v[m];
}

/* The latency check's second look. A p95 over a few hundred shadow queries
 * on a loaded cluster is its slowest 5%, and a moment of load that lands on
 * one side's call of a pair decides it: under publish run 20's load the gate
 * refused an identical candidate (p95 38.57 ms against 22.28). When the
 * first pass is over the limit, the queries in either side's slowest 5% run
 * again GATE_RETRIES times on both sides (paired, alternating, paced as the
 * first pass), and each side keeps its fastest time for them: a candidate
 * slow on those queries is slow every time, a moment of load is not there
 * every time. A pair with a failed search is not run again: it has no
 * latency to compare (pct leaves failed searches out). first95 gets the
 * first pass's p95s, *nretried the queries run
 * again (0: the first pass was within the limit). 0, or -ENOMEM. */
#define GATE_RETRIES 3
static int tail_measure(rpc_client_t *c, side *sd, const ops_query *q, size_t nq, const ops_gate_opts *go,
                        gate_pace *pace, double first95[2], size_t *nretried)
{
    *nretried = 0;
    if (sd[0].n != nq || sd[1].n != nq || !nq) return 0;   /* one pair a query, or no pairs to look at */
    double *tmp = malloc(nq * sizeof *tmp);
    if (!tmp) return -ENOMEM;
    double cut[2];
    for (int s = 0; s < 2; s++) {
        memcpy(tmp, sd[s].lat_ms, nq * sizeof *tmp);
        first95[s] = pct(tmp, nq, 95);   /* sorts tmp, not the pairs */
        cut[s] = first95[s];
    }
    free(tmp);
    if (first95[1] <= go->max_latency_ratio * first95[0] + go->latency_slack_ms) return 0;
    double next = now_ms();
    for (size_t i = 0; i < nq; i++) {
        if (sd[0].lat_ms[i] < 0 || sd[1].lat_ms[i] < 0) continue;   /* a failed pair has no latency to compare */
        if (sd[0].lat_ms[i] < cut[0] && sd[1].lat_ms[i] < cut[1]) continue;
        (*nretried)++;
        for (int t = 0; t < GATE_RETRIES; t++) {
            pace_wait(pace, &next);
            int first = (int)((i + (size_t)t) & 1);
            for (int k = 0; k < 2; k++) {
                int s = k ? !first : first;
                double ms;
                gate_search(c, &sd[s], &q[i], go->deadline_ms, pace, NULL, NULL, NULL, &ms);
                if (ms >= 0 && ms < sd[s].lat_ms[i]) sd[s].lat_ms[i] = ms;
            }
        }
    }
    return 0;
}

int ops_gate_run(struct rpc_client *c, const char *live, const char *cand, int cand_model, const char *queries,
                 const char *qrels_path, const ops_gate_opts *go)
{
    ops_query *q = NULL;
    size_t nq = 0;
    fn_errbuf eb = {{0}};
    int rc = ops_queries_load(queries, &q, &nq, &eb);
    if (rc) {
        fprintf(stderr, "funnel: --gate-queries: %s\n", fn_errmsg(&eb, rc));
        return -1;
    }
    ops_qrels *qr = NULL;
    if (qrels_path && (rc = ops_eval_load_qrels(qrels_path, &qr, &eb))) {
        fprintf(stderr, "funnel: --qrels: %s\n", fn_errmsg(&eb, rc));
        ops_queries_free(q, nq);
        return -1;
    }
    side sd[2] = { { .gen = live }, { .gen = cand, .cand_model = cand_model } };
    int ret = -1;
    for (int i = 0; i < 2; i++) {
        sd[i].lat_ms = calloc(nq ? nq : 1, sizeof(double));
        if (!sd[i].lat_ms || ops_eval_run_new(&sd[i].run)) {
            fprintf(stderr, "funnel: out of memory\n");
            goto out;
        }
    }
    static char ids[2][10][512];
    char intent[2][64];
    double overlap = 0;
    size_t nover = 0, nintent = 0, intent_same = 0;
    double next = now_ms();
    gate_pace pace = { go->qps, go->qps, go->qps, 0, 0 };
    for (size_t i = 0; i < nq; i++) {
        size_t n[2];
        pace_wait(&pace, &next);
        /* alternate which side goes first: the second finds warmer caches */
        int first = (int)(i & 1);
        int shed = gate_search(c, &sd[first], &q[i], go->deadline_ms, &pace, ids[first], &n[first], intent[first],
                               NULL);
        shed |= gate_search(c, &sd[!first], &q[i], go->deadline_ms, &pace, ids[!first], &n[!first], intent[!first],
                            NULL);
        if (!shed && pace.qps < pace.asked)
            pace.qps = pace.qps + pace.asked / 10 > pace.asked ? pace.asked : pace.qps + pace.asked / 10;
        /* the query-intent model's answer (a pushed intent model is gated by the pages) */
        if (intent[0][0] || intent[1][0]) {
            nintent++;
            intent_same += strcmp(intent[0], intent[1]) == 0;
        }
        size_t common = 0;
        for (size_t a = 0; a < n[0]; a++)
            for (size_t b = 0; b < n[1]; b++)
                if (strcmp(ids[0][a], ids[1][b]) == 0) {
                    common++;
                    break;
                }
        overlap += n[0] ? (double)common / (double)n[0] : n[1] == 0;
        nover++;
    }
    overlap = nover ? overlap / (double)nover : 1;
    ops_eval_result ev[2] = { { 0 }, { 0 } };
    if (qr)
        for (int i = 0; i < 2; i++) {
            gate_acc acc = { q, nq, { 0, { 0 } } };
            ops_eval_result all;
            if (ops_eval_compute(qr, sd[i].run, &all, gate_cb, &acc)) {
                fprintf(stderr, "funnel: out of memory\n");
                goto out;
            }
            for (int m = 0; m < OPS_EVAL_NMETRICS && acc.r.queries; m++) acc.r.v[m] /= (double)acc.r.queries;
            ev[i] = acc.r;
        }
    double p50[2], p95[2], first95[2] = { 0, 0 };
    size_t nretried = 0;
    if (tail_measure(c, sd, q, nq, go, &pace, first95, &nretried)) {
        fprintf(stderr, "funnel: out of memory\n");
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        p95[i] = pct(sd[i].lat_ms, sd[i].n, 95);
        p50[i] = pct(sd[i].lat_ms, sd[i].n, 50);
    }
    double docs_ratio = sd[0].docs_total ? (double)sd[1].docs_total / (double)sd[0].docs_total : 1;
    double min_overlap = qr && !go->overlap_given ? 0 : go->min_overlap;
    char why[1024] = "";
    size_t wl = 0;
#define REFUSE(...) (wl += (size_t)snprintf(why + wl, wl < sizeof why ? sizeof why - wl : 0, __VA_ARGS__), \
                     wl = wl < sizeof why ? wl : sizeof why)
    /* a query the live generation refuses too says nothing about the candidate */
    if (sd[1].errors > sd[0].errors)
        REFUSE("; %zu candidate queries failed, %zu live (first: %s)", sd[1].errors, sd[0].errors, sd[1].first_error);
    if (pace.gave_up)
        REFUSE("; the coordinator shed %zu shadow searches until their deadline: too busy to gate a change now, "
               "try again later", pace.gave_up);
    if (sd[1].partial) REFUSE("; %zu candidate answers were partial", sd[1].partial);
    if (qr && ev[1].v[OPS_EVAL_NDCG10] < ev[0].v[OPS_EVAL_NDCG10] - go->max_ndcg_drop)
        REFUSE("; NDCG@10 %.4f -> %.4f, a drop over %.4f", ev[0].v[OPS_EVAL_NDCG10], ev[1].v[OPS_EVAL_NDCG10],
               go->max_ndcg_drop);
    if (overlap < min_overlap) REFUSE("; top-10 overlap %.3f, below %.3f", overlap, min_overlap);
    if (docs_ratio < go->min_docs_ratio)
        REFUSE("; %llu documents against %llu live (%.3f, below %.3f)", (unsigned long long)sd[1].docs_total,
               (unsigned long long)sd[0].docs_total, docs_ratio, go->min_docs_ratio);
    if (p95[1] > go->max_latency_ratio * p95[0] + go->latency_slack_ms)
        REFUSE("; p95 %.2f ms against %.2f ms live (over %.2fx + %.0f ms%s)", p95[1], p95[0], go->max_latency_ratio,
               go->latency_slack_ms, nretried ? ", its slowest queries measured again" : "");
#undef REFUSE
    char ndcg_s[2][32];
    for (int i = 0; i < 2; i++) snprintf(ndcg_s[i], sizeof ndcg_s[i], qr ? "%.4f" : "-", ev[i].v[OPS_EVAL_NDCG10]);
    printf("quality gate: %zu queries%s\n", nq, qr ? " with judgments" : "");
    printf("  %-10s %10s %10s %9s %9s %8s %8s\n", "", "docs", "ndcg@10", "p50 ms", "p95 ms", "errors", "partial");
    for (int i = 0; i < 2; i++)
        printf("  %-10s %10llu %10s %9.2f %9.2f %8zu %8zu\n", i ? "candidate" : "live",
               (unsigned long long)sd[i].docs_total, ndcg_s[i], p50[i], p95[i], sd[i].errors, sd[i].partial);
    if (qr) printf("  judged queries: %zu\n", ev[1].queries);
    if (nretried)
        printf("  latency: the first pass's p95 %.2f ms against %.2f ms live was over the limit; the %zu slowest "
               "queries of either side measured again, %d times each on both sides (the fastest kept)\n",
               first95[1], first95[0], nretried, GATE_RETRIES);
    printf("  top-10 overlap: %.3f; documents: %.3f of live\n", overlap, docs_ratio);
    if (nintent)
        printf("  top intent vertical: the same for %.3f of %zu queries\n", (double)intent_same / (double)nintent,
               nintent);
    if (pace.shed) {
        printf("  shadow searches shed by the coordinator (users first): %zu, retried", pace.shed);
        if (pace.asked > 0) printf("; the pace fell to %.1f searches a second (asked %.1f)", pace.lowest, pace.asked);
        if (pace.gave_up) printf("; %zu still shed at their deadline, counted as failed", pace.gave_up);
        printf("\n");
    }
    if (sd[0].errors) printf("  note: %zu live queries failed (first: %s)\n", sd[0].errors, sd[0].first_error);
    if (wl) {
        printf("quality gate: REFUSED: %s\n", why + 2);
        ret = 1;
    } else {
        printf("quality gate: passed\n");
        ret = 0;
    }
out:
    for (int i = 0; i < 2; i++) {
        free(sd[i].lat_ms);
        ops_eval_run_free(sd[i].run);
    }
    ops_eval_qrels_free(qr);
    ops_queries_free(q, nq);
    return ret;
}

/* RUN/shard-*.cmd: the --index argument's generation becomes gen, so that
 * `funnel cluster restart` brings a shard back on the live generation. */
void ops_rewrite_shard_cmds(const char *run, const char *gen)
{
    DIR *d = opendir(run);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "shard-", 6) != 0 || l < 5 || strcmp(e->d_name + l - 4, ".cmd") != 0) continue;
        char path[PATH_MAX + 300], buf[65536];
        snprintf(path, sizeof path, "%s/%s", run, e->d_name);
        if (ops_read_small(path, buf, sizeof buf) != 0) continue;
        /* one word a line: the line after "--index" is GENDIR/shard-NNN */
        char out[65536 + PATH_MAX];
        size_t o = 0;
        int next = 0, changed = 0;
        for (char *line = buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
            nl = strchr(line, '\n');
            size_t n = nl ? (size_t)(nl - line) : strlen(line);
            char w[PATH_MAX + 64];
            snprintf(w, sizeof w, "%.*s", (int)n, line);
            const char *sh = next ? strrchr(w, '/') : NULL;
            if (sh && strncmp(sh, "/shard-", 7) == 0) {
                o += (size_t)snprintf(out + o, sizeof out - o, "%s%s\n", gen, sh);
                changed = 1;
            } else {
                o += (size_t)snprintf(out + o, sizeof out - o, "%s\n", w);
            }
            if (o >= sizeof out) break;
            next = strcmp(w, "--index") == 0;
        }
        if (changed && o < sizeof out && ops_write_atomic(path, out) != 0)
            fprintf(stderr, "funnel index publish: warning: cannot rewrite %s\n", path);
    }
    closedir(d);
}

/* RUN/topology.conf: the coordinator's live topology (Admin/Status), after
 * a publish or rollback that changed it (add-shard), so that a coordinator
 * restarted from RUN serves what it served. */
static void write_topology(rpc_client_t *cl, const char *run)
{
    Funnel__V1__StatusRequest rq = FUNNEL__V1__STATUS_REQUEST__INIT;
    Funnel__V1__StatusResponse *r = NULL;
    rpc_status st;
    if (rpc_client_call(cl, RPC_METHOD_ADMIN_STATUS, &rq.base, &funnel__v1__status_response__descriptor, 10000,
                        (ProtobufCMessage **)&r, &st) != GRPC_STATUS_OK)
        return;
    size_t cap = 128 + r->n_backends * 300, o = 0;
    char *t = malloc(cap);
    if (t) {
        o += (size_t)snprintf(t + o, cap - o, "# written by funnel index (the coordinator's live topology)\n");
        for (uint32_t s = 0; s < r->shards; s++) {
            o += (size_t)snprintf(t + o, cap - o, "shard %u", s);
            for (size_t i = 0; i < r->n_backends; i++)
                if (r->backends[i]->shard == s) o += (size_t)snprintf(t + o, cap - o, " %.256s", r->backends[i]->address);
            o += (size_t)snprintf(t + o, cap - o, "\n");
        }
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/topology.conf", run);
        if (o < cap) ops_write_atomic(path, t);
        free(t);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

int ops_cmd_generation(int argc, char **argv)
{
    const char *verb = argv[0];
    static const struct option lo[] = {
        {"dir", required_argument, 0, 'd'},          {"coordinator", required_argument, 0, 'c'},
        {"index", required_argument, 0, 'i'},        {"gate-queries", required_argument, 0, 'q'},
        {"qrels", required_argument, 0, 'r'},        {"max-ndcg-drop", required_argument, 0, 'N'},
        {"min-overlap", required_argument, 0, 'O'},  {"min-docs-ratio", required_argument, 0, 'D'},
        {"max-latency-ratio", required_argument, 0, 'L'}, {"deadline-ms", required_argument, 0, 't'},
        {"gate-qps", required_argument, 0, 'Q'},     {"latency-slack-ms", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},               {0, 0, 0, 0}};
    const char *run = NULL, *coord = NULL, *gen = NULL, *queries = NULL, *qrels = NULL;
    gate_opts go = { 0.02, 0.5, 0.9, 1.5, 5.0, 0, 10000, 50 };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        char *end = NULL;
        double v = 0;
        if (strchr("NODLtQS", c)) {
            v = strtod(optarg, &end);
            if (!*optarg || *end || !isfinite(v) || v < 0 || (c == 't' && (v < 1 || v > 3.6e6))) {
                fprintf(stderr, "funnel index %s: --%s: not a valid number: '%s'\n", verb,
                        c == 'N' ? "max-ndcg-drop" : c == 'O' ? "min-overlap" : c == 'D' ? "min-docs-ratio"
                        : c == 'L' ? "max-latency-ratio" : c == 'Q' ? "gate-qps" : c == 'S' ? "latency-slack-ms"
                        : "deadline-ms", optarg);
                return OPS_EXIT_USAGE;
            }
        }
        switch (c) {
        case 'd': run = optarg; break;
        case 'c': coord = optarg; break;
        case 'i': gen = optarg; break;
        case 'q': queries = optarg; break;
        case 'r': qrels = optarg; break;
        case 'N': go.max_ndcg_drop = v; break;
        case 'O': go.min_overlap = v; go.overlap_given = 1; break;
        case 'D': go.min_docs_ratio = v; break;
        case 'L': go.max_latency_ratio = v; break;
        case 'S': go.latency_slack_ms = v; break;
        case 't': go.deadline_ms = (int64_t)v; break;
        case 'Q': go.qps = v; break;
        case 'h': fputs(gen_usage, stdout); return OPS_EXIT_OK;
        default: fputs(gen_usage, stderr); return OPS_EXIT_USAGE;
        }
    }
    int publish = strcmp(verb, "publish") == 0;
    if (optind != argc || !run == !coord || (publish && !gen) || (!publish && (gen || queries)) ||
        (qrels && !queries)) {
        fprintf(stderr, "funnel index %s: %s\n", verb,
                optind != argc ? "no positional arguments"
                : !run == !coord ? "give one of --dir RUN or --coordinator ADDR"
                : publish && !gen ? "--index GEN is required"
                : qrels && !queries ? "--qrels needs --gate-queries"
                : "--index and --gate-queries are for publish");
        fputs(gen_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    char gabs[PATH_MAX];
    if (gen) {
        /* a local generation is checked here; a remote one (--coordinator)
         * must already be absolute on the shards' machines */
        char *rp = realpath(gen, NULL);
        if (rp) {
            snprintf(gabs, sizeof gabs, "%s", rp);
            free(rp);
            char ij[PATH_MAX + 16];
            struct stat st;
            snprintf(ij, sizeof ij, "%s/index.json", gabs);
            if (stat(ij, &st) != 0) {
                fprintf(stderr, "funnel index publish: %s has no index.json: not a finished build\n", gabs);
                return OPS_EXIT_FAIL;
            }
        } else if (gen[0] == '/' && coord) {
            snprintf(gabs, sizeof gabs, "%s", gen);
        } else {
            fprintf(stderr, "funnel index publish: --index %s: %s\n", gen, strerror(errno));
            return OPS_EXIT_FAIL;
        }
        gen = gabs;
    }
    char addr[512];
    if (coord_addr(run, coord, addr, sizeof addr)) return OPS_EXIT_FAIL;
    rpc_init();
    rpc_client_t *cl = rpc_client_create(addr);
    int ret = OPS_EXIT_FAIL;
    Funnel__V1__GenerationResponse *r = NULL;
    rpc_status st;
    if (!cl) {
        fprintf(stderr, "funnel index %s: out of memory\n", verb);
        goto out;
    }
    int64_t admin_ms = go.deadline_ms > 120000 ? go.deadline_ms : 120000;
    int64_t stage_ms = go.deadline_ms > OPS_STAGE_MS ? go.deadline_ms : OPS_STAGE_MS;
    if (strcmp(verb, "generations") == 0) {
        if (gen_call(cl, FUNNEL__V1__GENERATION_REQUEST__OP__LIST, NULL, go.deadline_ms, &r, &st) != GRPC_STATUS_OK) {
            fprintf(stderr, "funnel index generations: %s: %s\n", rpc_status_name(st.code), st.message);
            goto out;
        }
        print_state(r);
        ret = OPS_EXIT_OK;
        goto out;
    }
    if (strcmp(verb, "rollback") == 0) {
        if (gen_call(cl, FUNNEL__V1__GENERATION_REQUEST__OP__ROLLBACK, NULL, admin_ms, &r, &st) != GRPC_STATUS_OK) {
            fprintf(stderr, "funnel index rollback: %s: %s\n", rpc_status_name(st.code), st.message);
            goto out;
        }
        printf("rolled back on %u shard replicas\n", r->replicas);
        print_state(r);
        if (run) {
            ops_rewrite_shard_cmds(run, r->live);
            write_topology(cl, run);
        }
        ret = OPS_EXIT_OK;
        goto out;
    }
    /* publish */
    double t0 = now_ms();
    if (gen_call(cl, FUNNEL__V1__GENERATION_REQUEST__OP__STAGE, gen, stage_ms, &r, &st) != GRPC_STATUS_OK) {
        fprintf(stderr, "funnel index publish: stage: %s: %s\n", rpc_status_name(st.code), st.message);
        goto out;
    }
    printf("staged %s on %u shard replicas (%llu documents) in %.2f s\n", gen, r->replicas,
           (unsigned long long)(r->n_loaded ? r->loaded[0]->docs : 0), (now_ms() - t0) / 1e3);
    char live[2048];
    snprintf(live, sizeof live, "%s", r->live);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    r = NULL;
    if (strcmp(live, gen) == 0) {
        printf("%s is already the live generation\n", gen);
        ret = OPS_EXIT_OK;
        goto out;
    }
    if (queries) {
        int g = ops_gate_run(cl, live, gen, 0, queries, qrels, &go);
        if (g != 0) {
            Funnel__V1__GenerationResponse *d = NULL;
            if (gen_call(cl, FUNNEL__V1__GENERATION_REQUEST__OP__DISCARD, gen, admin_ms, &d, &st) == GRPC_STATUS_OK) {
                printf("candidate %s discarded; %s stays live\n", gen, live);
                protobuf_c_message_free_unpacked(&d->base, NULL);
            } else {
                fprintf(stderr, "funnel index publish: discard: %s: %s\n", rpc_status_name(st.code), st.message);
            }
            goto out;
        }
    } else {
        printf("quality gate: skipped (no --gate-queries)\n");
    }
    t0 = now_ms();
    if (gen_call(cl, FUNNEL__V1__GENERATION_REQUEST__OP__ACTIVATE, gen, admin_ms, &r, &st) != GRPC_STATUS_OK) {
        fprintf(stderr, "funnel index publish: activate: %s: %s\n", rpc_status_name(st.code), st.message);
        goto out;
    }
    printf("published %s on %u shard replicas in %.3f s\n", gen, r->replicas, (now_ms() - t0) / 1e3);
    print_state(r);
    if (run) {
        ops_rewrite_shard_cmds(run, gen);
        write_topology(cl, run);
    }
    ret = OPS_EXIT_OK;
out:
    if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
    rpc_client_destroy(cl);
    rpc_shutdown();
    return ret;
}

