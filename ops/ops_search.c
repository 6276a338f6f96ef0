/* ops_search.c - `funnel search`: one query (ranked list, --json, --explain)
 * or a batch from queries.tsv into a TREC run file. */
#include "ops.h"

#include <errno.h>
#include <math.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "funnel.pb-c.h"
#include "rpc_client.h"

#define DEFAULT_DEADLINE_MS 10000

static const char search_usage[] =
    "usage: funnel search --server ADDR \"query text\" [--k 10] [--page P] [--json]\n"
    "                     [--explain] [--deadline-ms N] [--fields a,b] [--snippets]\n"
    "       funnel search --server ADDR --queries queries.tsv --run-out run.trec [--skip-models]\n"
    "                     [--k 1000] [--concurrency C] [--tag T] [--deadline-ms N]\n"
    "       (both: [--selection-k N] [--stage1-k N] [--stage2-k N] [--mode any|all]\n"
    "              [--syntax language|plain] [--spell off|suggest|auto] [--expand none|rm3|synonyms]\n"
    "              [--min-hits N] [--filter EXPR]\n"
    "              [--safe-search off|moderate|strict] [--host-cap N] [--keep-duplicates] [--no-blend]\n"
    "              [--exact-total] [--knn-k K] [--ef E] [--knn-exact]\n"
    "              [--fusion rrf|weighted] [--vector-weight W])\n"
    "       funnel search --server ADDR --vector \"0.1 0.2 ...\" [\"query text\"] [--json]\n"
    "\n"
    "One query: prints \"rank score id title\" lines and a footer with the coverage\n"
    "(shards that answered / were asked, partial) and the time taken.\n"
    "  --k K            hits per page (default 10)\n"
    "  --page P         0-based page (default 0)\n"
    "  --json           print the whole SearchResponse as JSON\n"
    "  --explain        per-hit stage scores and per-term contributions, stages\n"
    "  --fields a,b     stored fields of each hit (top-level fields of its JSON\n"
    "                   document, e.g. title,url,published_at; \"*\" = every field),\n"
    "                   printed as name=JSON lines below the hit (a batch ignores it)\n"
    "  --snippets       the body's best passage for each hit, the query's words\n"
    "                   marked [[like this]] (a batch ignores it)\n"
    "  --skip-models    the selection order only (BM25F + static signals), no\n"
    "                   stage-1 or stage-2 model: the baseline of an evaluation\n"
    "  --deadline-ms N  gRPC deadline (default 10000)\n"
    "  --selection-k N, --stage1-k N, --stage2-k N\n"
    "                   lower the funnel's global windows for these requests\n"
    "                   (the coordinator's settings are the ceiling)\n"
    "  --mode any|all   the operator between plain words: any (OR, default) or\n"
    "                   all (AND; --all-terms is the same). The query language:\n"
    "                   \"phrase\", +must, -exclude, AND, OR, NOT, ( ), title: and\n"
    "                   body: (docs/query-language.md); a syntax error names its column\n"
    "  --syntax language|plain\n"
    "                   plain: the text is words only, no operator (natural-language\n"
    "                   query sets). Default: language for one query, plain for a\n"
    "                   batch (--queries: test collections are natural language)\n"
    "  --spell off|suggest|auto\n"
    "                   with a cluster that has a spelling dictionary: auto (default)\n"
    "                   searches with the words found in no document corrected and\n"
    "                   prints them; suggest searches as written and prints \"did you\n"
    "                   mean\"; off: no correction\n"
    "  --min-hits N     with --mode all: fewer than N matches drop the most common\n"
    "                   word, one at a time, and search again (relaxation)\n"
    "  --expand none|rm3|synonyms\n"
    "                   without a stage-2 model, the window is ranked by the RM3\n"
    "                   expanded query (pseudo-relevance feedback), or by the query\n"
    "                   with its WordNet synonyms (a cluster with wordnet-base)\n"
    "  --filter EXPR    only documents whose attributes pass, e.g.\n"
    "                   'vertical:news published_at>=1600000000', labels:all(a,b),\n"
    "                   popularity:1..5, id:d1,d2, -lang:de, OR, ( ) (docs/query-language.md)\n"
    "The result page (docs/result-page.md):\n"
    "  --safe-search L  off|moderate|strict: with an index built with --filter-model,\n"
    "                   strict removes the hits its content filter flags, moderate moves\n"
    "                   them down, off shows them (default: the coordinator's, moderate)\n"
    "  --host-cap N     at most N hits of one host in every block of 10 (the\n"
    "                   coordinator's page-block) results (default: the coordinator's)\n"
    "  --keep-duplicates  show near-duplicates (default: folded under the best one)\n"
    "  --no-blend       no vertical blocks: the ranked list only\n"
    "  --generation GEN search this index generation (live, previous or staged;\n"
    "                   funnel index generations): shadow queries before a publish\n"
    "  --candidate-model  use the staged models (funnel model push's gate: stage 1\n"
    "                   on the shards, stage 2, intent) where one is staged\n"
    "  --exact-total    count every match (slower); otherwise the footer's count\n"
    "                   may be a lower bound, printed as \"at least N matches\"\n"
    "Vectors (an index built with \"embedding\"s): --vector alone asks for the\n"
    "nearest documents; with a query text too, the text ranking and the nearest\n"
    "documents are fused (docs/vectors.md).\n"
    "  --vector V       the query vector: numbers separated by spaces or commas\n"
    "  --knn-k K        neighbours from the whole index (default max(page end, 100))\n"
    "  --ef E           HNSW candidate list on each shard (default max(knn-k, 64))\n"
    "  --knn-exact      brute force: the exact neighbours\n"
    "  --fusion F       rrf (default) or weighted: how text and vector lists are fused;\n"
    "                   learned: no fusion, the vector informs the models' vec_sim\n"
    "  --vector-weight W  weighted fusion: the vector share 0..1 (default 0.5)\n"
    "Batch: reads qid<TAB>text[<TAB>vector] lines, runs C queries at a time (default 4)\n"
    "and writes \"qid Q0 docid rank score tag\" lines in query order (tag default funnel).\n"
    "A query's vector (third column) is sent with it: hybrid, or vector only with\n"
    "--vector-only; --text-only leaves the vectors out.\n"
    "Exit status: 0 ok, 1 the server answered an error (printed as\n"
    "\"error: STATUS: message\") or a batch query failed, 2 usage error.\n";

typedef struct search_args {
    const char *server;
    const char *queries;
    const char *run_out;
    const char *tag;
    uint32_t k, page, concurrency;
    int k_set;
    int json, explain, skip_models, all_terms, exact_total;
    int expand;             /* --expand: Funnel__V1__Expand (0 = none) */
    uint32_t min_hits;      /* --min-hits: relaxation in mode all (0 = the server's) */
    const char *filter;     /* --filter: attributes the hits must have (NULL: none) */
    int spell;              /* --spell: Funnel__V1__SpellMode (0 = the server's default, auto) */
    int syntax;             /* --syntax: -1 unset (one query: language; a batch: plain), 0 language, 1 plain */
    float *vector;          /* --vector (one query) */
    size_t nvector;
    uint32_t knn_k, ef, fusion;
    int knn_exact, text_only, vector_only;
    float vector_weight;
    uint32_t win[3];   /* selection_k, stage1_k, stage2_k to lower the windows to (0 = the server's) */
    int64_t deadline_ms;
    char **fields;     /* --fields (one block, free(fields)) */
    size_t nfields;
    int snippets;      /* --snippets */
    int safe_search;   /* --safe-search: Funnel__V1__SafeSearch (0 = the server's) */
    uint32_t host_cap; /* --host-cap (0 = the server's) */
    int keep_duplicates, no_blend;
    const char *generation;       /* --generation: a staged or previous index generation */
    int candidate_model;          /* --candidate-model: the staged models (PushModel STAGE) */
} search_args;

/* The result page's settings of a request (one query or a batch). */
static void page_args(Funnel__V1__SearchRequest *req, const search_args *a)
{
    req->safe_search = (Funnel__V1__SafeSearch)a->safe_search;
    req->host_cap = a->host_cap;
    req->keep_duplicates = a->keep_duplicates;
    req->no_blend = a->no_blend;
    req->generation = (char *)a->generation;
    req->candidate_model = a->candidate_model;
}

/* --json: a hit's result-page fields only when they apply. */
static void prune_page_fields(json_t *hit)
{
    static const char *const str[] = { "vertical", "slot_rule", "host" };
    for (size_t i = 0; i < sizeof str / sizeof str[0]; i++) {
        const char *v = json_string_value(json_object_get(hit, str[i]));
        if (v && !*v) json_object_del(hit, str[i]);
    }
    const char *fa = json_string_value(json_object_get(hit, "filter_action"));
    if (fa && !*fa) {
        json_object_del(hit, "filter_action");
        json_object_del(hit, "filter_score");
    }
    if (!json_array_size(json_object_get(hit, "duplicates"))) json_object_del(hit, "duplicates");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || s[0] == '-' || errno || v > UINT32_MAX) return -1;
    *out = (uint32_t)v;
    return 0;
}

/* ------------------------------------------------------------- single ---- */

static void print_explain_hit(const Funnel__V1__Hit *h)
{
    if (h->n_stages) {
        printf("        stages:");
        for (size_t s = 0; s < h->n_stages; s++) {
            const Funnel__V1__StageScore *ss = h->stages[s];
            if (ss->ran) printf(" %s=%.6g", ss->stage, ss->score);
            else printf(" %s=(not run)", ss->stage);
        }
        printf("\n");
    }
    if (h->n_terms) {
        printf("        %-20s %8s %10s %8s %6s %6s %12s\n", "term", "qweight", "df", "idf",
               "tf_t", "tf_b", "contribution");
        for (size_t t = 0; t < h->n_terms; t++) {
            const Funnel__V1__TermExplain *te = h->terms[t];
            printf("        %-20s %8g %10llu %8.4f %6u %6u %12.6f\n", te->term, (double)te->query_weight,
                   (unsigned long long)te->df, te->idf, te->tf_title, te->tf_body, te->contribution);
        }
    }
}

static void print_response(const Funnel__V1__SearchResponse *r, const search_args *a)
{
    if (r->did_you_mean && *r->did_you_mean) printf("did you mean: %s\n", r->did_you_mean);
    else if (r->n_corrections || r->n_relaxed_terms) printf("searched for: %s\n", r->rewritten_query);
    for (size_t i = 0; i < r->n_relaxed_terms; i++) printf("  relaxed: dropped %s\n", r->relaxed_terms[i]);
    if (r->n_intent) {
        printf("intent:");
        for (size_t i = 0; i < r->n_intent; i++) printf(" %s %.3f", r->intent[i]->vertical, r->intent[i]->score);
        printf("\n");
    }
    for (size_t i = 0; i < r->n_corrections; i++)
        printf("  %s -> %s (distance %u, score %.2f)\n", r->corrections[i]->from, r->corrections[i]->to,
               r->corrections[i]->distance, r->corrections[i]->score);
    printf("%4s  %-12s  %-16s  %s\n", "rank", "score", "id", "title");
    for (size_t i = 0; i < r->n_hits; i++) {
        const Funnel__V1__Hit *h = r->hits[i];
        printf("%4zu  %-12.6f  %-16s  %s", (size_t)a->page * (a->k ? a->k : 10) + i + 1,
               h->score, h->id, h->title);
        /* what the result page did with it */
        if (h->slot_rule && *h->slot_rule && strcmp(h->slot_rule, "main"))
            printf("  [%s block: %s]", h->vertical, h->slot_rule);
        if (h->filter_action && !strcmp(h->filter_action, "demoted"))
            printf("  [demoted: filter_score %.3f]", (double)h->filter_score);
        if (h->n_duplicates) printf("  [+%zu near-duplicates]", h->n_duplicates);
        printf("\n");
        if (a->explain) print_explain_hit(h);
        for (size_t f = 0; f < h->n_fields; f++) printf("        %s=%s\n", h->fields[f]->name, h->fields[f]->json);
        if (h->snippet && *h->snippet) {
            /* the marked words in [[ ]] */
            printf("        ");
            size_t at = 0, len = strlen(h->snippet);
            for (size_t m = 0; m + 1 < h->n_snippet_marks; m += 2) {
                size_t st = h->snippet_marks[m], en = h->snippet_marks[m + 1];
                if (st < at || en < st || en > len) continue;
                printf("%.*s[[%.*s]]", (int)(st - at), h->snippet + at, (int)(en - st), h->snippet + st);
                at = en;
            }
            printf("%s\n", h->snippet + at);
        }
    }
    if (a->explain && r->n_stages) {
        printf("\nstages:\n  %-10s %-4s %10s %10s %10s  %s\n", "name", "ran", "time_us", "in",
               "out", "note");
        for (size_t s = 0; s < r->n_stages; s++) {
            const Funnel__V1__StageInfo *st = r->stages[s];
            printf("  %-10s %-4s %10llu %10llu %10llu  %s\n", st->name, st->ran ? "yes" : "no",
                   (unsigned long long)st->time_us, (unsigned long long)st->count_in,
                   (unsigned long long)st->count_out, st->note);
        }
    }
    if (a->explain && r->n_dropped) {
        printf("\nleft out or moved by the result page:\n");
        for (size_t d = 0; d < r->n_dropped; d++) {
            const Funnel__V1__DroppedHit *x = r->dropped[d];
            printf("  rank %4u  %-16s  %-9s  %-9s  %s\n", x->rank, x->id, x->action, x->reason, x->detail);
        }
    }
    if (a->explain && r->n_terms) {
        printf("terms:");
        for (size_t t = 0; t < r->n_terms; t++) printf(" %s", r->terms[t]);
        printf("\n");
    }
    const Funnel__V1__Coverage *cv = r->coverage;
    printf("-- %zu hits, %s%llu matches; coverage %u/%u shards", r->n_hits,
           r->total_matches_exact ? "" : "at least ", (unsigned long long)r->total_matches, cv ? cv->shards_answered : 0,
           cv ? cv->shards_asked : 0);
    if (cv && cv->docs_total)
        printf(" (%llu/%llu docs)", (unsigned long long)cv->docs_searched,
               (unsigned long long)cv->docs_total);
    printf("%s; took %.1f ms\n", r->partial ? ", PARTIAL" : "", r->took_us / 1000.0);
    for (size_t f = 0; f < r->n_failures; f++) {
        const Funnel__V1__ShardFailure *sf = r->failures[f];
        printf("   shard %u (%s): %s: %s\n", sf->shard, sf->address, sf->status, sf->message);
    }
}

static int search_one(rpc_client_t *c, const char *query, const search_args *a)
{
    Funnel__V1__SearchRequest req = FUNNEL__V1__SEARCH_REQUEST__INIT;
    req.query = (char *)(query ? query : "");
    req.vector = a->vector;
    req.n_vector = a->nvector;
    req.knn_k = a->knn_k;
    req.ef = a->ef;
    req.knn_exact = a->knn_exact;
    req.fusion = (Funnel__V1__Fusion)a->fusion;
    req.vector_weight = a->vector_weight;
    req.k = a->k;
    req.page = a->page;
    req.explain = a->explain;
    req.skip_models = a->skip_models;
    req.all_terms = a->all_terms;
    req.plain_text = a->syntax == 1;
    req.spell = (Funnel__V1__SpellMode)a->spell;
    req.expand = (Funnel__V1__Expand)a->expand;
    req.min_hits = a->min_hits;
    if (a->filter) req.filter = (char *)a->filter;
    req.exact_total = a->exact_total;
    req.selection_k = a->win[0];
    req.stage1_k = a->win[1];
    req.stage2_k = a->win[2];
    req.fields = a->fields;
    req.n_fields = a->nfields;
    req.snippets = a->snippets;
    page_args(&req, a);
    ProtobufCMessage *resp = NULL;
    rpc_status st;
    memset(&st, 0, sizeof st);
    grpc_status_code code = rpc_client_call(c, RPC_METHOD_SEARCH, &req.base,
                                            &funnel__v1__search_response__descriptor,
                                            a->deadline_ms, &resp, &st);
    if (code != GRPC_STATUS_OK) {
        fprintf(stderr, "error: %s: %s\n", rpc_status_name(code), st.message);
        return OPS_EXIT_FAIL;
    }
    if (a->json) {
        json_t *j = ops_pb_to_json(resp);
        /* each hit's stored fields as one object {name: value} */
        json_t *hits = json_object_get(j, "hits");
        size_t hi;
        json_t *ho;
        int bad = 0;
        json_array_foreach(hits, hi, ho) {
            bad |= ops_json_stored_fields(ho) != 0;
            prune_page_fields(ho);
        }
        if (bad) {
            json_decref(j);
            j = NULL;
        }
        char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) : NULL;
        if (text) printf("%s\n", text);
        free(text);
        json_decref(j);
        if (!text) {
            protobuf_c_message_free_unpacked(resp, NULL);
            fprintf(stderr, "error: out of memory\n");
            return OPS_EXIT_FAIL;
        }
    } else {
        print_response((const Funnel__V1__SearchResponse *)resp, a);
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    return OPS_EXIT_OK;
}

/* -------------------------------------------------------------- batch ---- */

typedef struct batch {
    rpc_client_t *client;
    const search_args *args;
    ops_query *q;
    size_t n;
    atomic_size_t next;
    Funnel__V1__SearchResponse **resp;  /* per query; NULL = failed */
    double *lat;                        /* per query: seconds from call to reply */
    atomic_size_t partial, failed;
    pthread_mutex_t err_lock;
} batch;

static void *batch_worker(void *ud)
{
    batch *b = ud;
    for (;;) {
        size_t i = atomic_fetch_add(&b->next, 1);
        if (i >= b->n) break;
        Funnel__V1__SearchRequest req = FUNNEL__V1__SEARCH_REQUEST__INIT;
        req.query = b->args->vector_only && b->q[i].nvec ? "" : b->q[i].text;
        if (b->q[i].nvec && !b->args->text_only) {
            req.vector = b->q[i].vec;
            req.n_vector = b->q[i].nvec;
            req.knn_k = b->args->knn_k;
            req.ef = b->args->ef;
            req.knn_exact = b->args->knn_exact;
            req.fusion = (Funnel__V1__Fusion)b->args->fusion;
            req.vector_weight = b->args->vector_weight;
        }
        req.k = b->args->k;
        req.page = b->args->page;
        /* the qid travels as the request id: an impression log joins on it */
        req.request_id = strlen(b->q[i].qid) <= 128 ? b->q[i].qid : NULL;
        req.skip_models = b->args->skip_models;
        req.all_terms = b->args->all_terms;
        req.plain_text = b->args->syntax != 0;   /* a batch: plain unless --syntax language */
        req.spell = (Funnel__V1__SpellMode)b->args->spell;
        req.expand = (Funnel__V1__Expand)b->args->expand;
        req.min_hits = b->args->min_hits;
        if (b->args->filter) req.filter = (char *)b->args->filter;
        req.exact_total = b->args->exact_total;
        req.selection_k = b->args->win[0];
        req.stage1_k = b->args->win[1];
        req.stage2_k = b->args->win[2];
        page_args(&req, b->args);
        ProtobufCMessage *resp = NULL;
        rpc_status st;
        memset(&st, 0, sizeof st);
        double t0 = now_s();
        grpc_status_code code = rpc_client_call(b->client, RPC_METHOD_SEARCH, &req.base,
                                                &funnel__v1__search_response__descriptor,
                                                b->args->deadline_ms, &resp, &st);
        b->lat[i] = now_s() - t0;
        if (code != GRPC_STATUS_OK) {
            atomic_fetch_add(&b->failed, 1);
            pthread_mutex_lock(&b->err_lock);
            fprintf(stderr, "query %s: error: %s: %s\n", b->q[i].qid, rpc_status_name(code), st.message);
            pthread_mutex_unlock(&b->err_lock);
            continue;
        }
        b->resp[i] = (Funnel__V1__SearchResponse *)resp;
        if (b->resp[i]->partial) atomic_fetch_add(&b->partial, 1);
    }
    return NULL;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The latency percentile p (0..100) of the answered queries, in ms (nearest
 * rank); sorts lat. */
static double pct_ms(double *lat, size_t n, double p)
{
    if (!n) return 0.0;
    size_t r = (size_t)ceil(p / 100.0 * (double)n);
    return 1e3 * lat[(r ? r : 1) - 1];
}

/* One stderr line per stage: mean time and documents in -> out over the
 * answered queries whose response ran it (the stage list, by name). */
static void print_stage_means(Funnel__V1__SearchResponse *const *resp, size_t n)
{
    enum { MAXST = 16 };
    struct { const char *name; double us, in, out; size_t runs; } st[MAXST];
    size_t nst = 0;
    for (size_t i = 0; i < n; i++) {
        if (!resp[i]) continue;
        for (size_t j = 0; j < resp[i]->n_stages; j++) {
            const Funnel__V1__StageInfo *si = resp[i]->stages[j];
            if (!si->ran || !si->name) continue;
            size_t k = 0;
            while (k < nst && strcmp(st[k].name, si->name) != 0) k++;
            if (k == nst) {
                if (nst == MAXST) continue;
                st[nst].name = si->name;
                st[nst].us = st[nst].in = st[nst].out = 0;
                st[nst].runs = 0;
                nst++;
            }
            st[k].us += (double)si->time_us;
            st[k].in += (double)si->count_in;
            st[k].out += (double)si->count_out;
            st[k].runs++;
        }
    }
    for (size_t k = 0; k < nst; k++)
        fprintf(stderr, "stage %-10s ran in %zu queries: mean %.0f us, %.0f -> %.0f documents\n", st[k].name,
                st[k].runs, st[k].us / st[k].runs, st[k].in / st[k].runs, st[k].out / st[k].runs);
}

static int search_batch(rpc_client_t *c, const search_args *a)
{
    int ret = OPS_EXIT_FAIL;
    fn_errbuf eb = {{0}};
    ops_query *q = NULL;
    size_t n = 0;
    int rc = ops_queries_load(a->queries, &q, &n, &eb);
    if (rc != 0) {
        fprintf(stderr, "funnel search: %s\n", fn_errmsg(&eb, rc));
        return OPS_EXIT_FAIL;
    }
    FILE *out = fopen(a->run_out, "w");
    if (!out) {
        fprintf(stderr, "funnel search: %s: %s\n", a->run_out, strerror(errno));
        goto fail_queries;
    }
    batch b = {.client = c, .args = a, .q = q, .n = n};
    atomic_init(&b.next, 0);
    atomic_init(&b.partial, 0);
    atomic_init(&b.failed, 0);
    pthread_mutex_init(&b.err_lock, NULL);
    b.resp = calloc(n ? n : 1, sizeof *b.resp);
    b.lat = calloc(n ? n : 1, sizeof *b.lat);
    uint32_t nt = a->concurrency;
    if (nt > n && n > 0) nt = (uint32_t)n;
    pthread_t *th = calloc(nt ? nt : 1, sizeof *th);
    if (!b.resp || !b.lat || !th) {
        fprintf(stderr, "funnel search: out of memory\n");
        goto fail_mem;
    }
    double t0 = now_s();
    uint32_t started = 0;
    for (; started < nt; started++)
        if (pthread_create(&th[started], NULL, batch_worker, &b) != 0) break;
    if (started == 0) batch_worker(&b);
    for (uint32_t i = 0; i < started; i++) pthread_join(th[i], NULL);
    double secs = now_s() - t0;

    size_t lines = 0;
    for (size_t i = 0; i < n; i++) {
        const Funnel__V1__SearchResponse *r = b.resp[i];
        if (!r) continue;
        double prev = INFINITY;
        for (size_t h = 0; h < r->n_hits; h++) {
            /* Evaluators sort a run by score, so scores must fall with the
             * rank. Past the stage-2 window a hit's final score is its
             * stage-1 score, on another scale than the model's: such a score
             * (and any tie) is lowered just below the line above. Printed
             * with %.9g, a step of 1e-6 relative stays visible. */
            double sc = r->hits[h]->score;
            if (!(sc < prev) && isfinite(prev)) sc = prev - 1e-6 * fmax(1.0, fabs(prev));
            prev = sc;
            fprintf(out, "%s Q0 %s %zu %.9g %s\n", q[i].qid, r->hits[h]->id,
                    (size_t)a->page * a->k + h + 1, sc, a->tag);
            lines++;
        }
    }
    int werr = ferror(out);
    size_t failed = atomic_load(&b.failed);
    fprintf(stderr, "queries %zu, %.1f QPS (%.2f s, concurrency %u), %zu lines to %s, "
            "%zu partial responses, %zu failures\n", n, secs > 0 ? (double)n / secs : 0.0, secs,
            nt, lines, a->run_out, atomic_load(&b.partial), failed);
    size_t nok = 0;   /* the answered queries' latencies, sorted */
    for (size_t i = 0; i < n; i++)
        if (b.resp[i]) b.lat[nok++] = b.lat[i];
    qsort(b.lat, nok, sizeof *b.lat, dbl_cmp);
    fprintf(stderr, "latency ms: p50 %.2f, p95 %.2f, p99 %.2f, max %.2f (%zu answered)\n", pct_ms(b.lat, nok, 50),
            pct_ms(b.lat, nok, 95), pct_ms(b.lat, nok, 99), pct_ms(b.lat, nok, 100), nok);
    /* where the time goes: the coordinator's own (took_us, request in to
     * reply out) and the slowest shard's selection, per query, as medians */
    nok = 0;
    for (size_t i = 0; i < n; i++)
        if (b.resp[i]) b.lat[nok++] = (double)b.resp[i]->took_us / 1e6;
    qsort(b.lat, nok, sizeof *b.lat, dbl_cmp);
    double took50 = pct_ms(b.lat, nok, 50);
    nok = 0;
    for (size_t i = 0; i < n; i++) {
        const Funnel__V1__SearchResponse *r = b.resp[i];
        for (size_t j = 0; r && j < r->n_stages; j++)
            if (r->stages[j]->ran && r->stages[j]->name && strcmp(r->stages[j]->name, "selection") == 0)
                b.lat[nok++] = (double)r->stages[j]->time_us / 1e6;
    }
    qsort(b.lat, nok, sizeof *b.lat, dbl_cmp);
    if (nok) fprintf(stderr, "median ms: coordinator took %.3f, slowest shard's selection %.3f\n", took50,
                     pct_ms(b.lat, nok, 50));
    print_stage_means(b.resp, n);
    if (werr) fprintf(stderr, "funnel search: %s: write error\n", a->run_out);
    ret = (failed || werr) ? OPS_EXIT_FAIL : OPS_EXIT_OK;
fail_mem:
    for (size_t i = 0; b.resp && i < n; i++)
        if (b.resp[i]) protobuf_c_message_free_unpacked(&b.resp[i]->base, NULL);
    free(b.resp);
    free(b.lat);
    free(th);
    pthread_mutex_destroy(&b.err_lock);
    if (fclose(out) != 0) ret = OPS_EXIT_FAIL;
fail_queries:
    ops_queries_free(q, n);
    return ret;
}

/* --------------------------------------------------------------- main ---- */

int ops_cmd_search(int argc, char **argv)
{
    static const struct option lo[] = {
        {"server", required_argument, 0, 's'},   {"k", required_argument, 0, 'k'},
        {"page", required_argument, 0, 'p'},     {"json", no_argument, 0, 'j'},
        {"explain", no_argument, 0, 'e'},        {"deadline-ms", required_argument, 0, 'd'},
        {"skip-models", no_argument, 0, 'S'},    {"all-terms", no_argument, 0, 'A'},
        {"mode", required_argument, 0, 'M'},     {"syntax", required_argument, 0, 'Y'},
        {"spell", required_argument, 0, 'L'},    {"expand", required_argument, 0, 'P'},
        {"min-hits", required_argument, 0, 'H'}, {"filter", required_argument, 0, 'f'},
        {"exact-total", no_argument, 0, 'X'},
        {"selection-k", required_argument, 0, '0'}, {"stage1-k", required_argument, 0, '1'},
        {"stage2-k", required_argument, 0, '2'},
        {"queries", required_argument, 0, 'q'},  {"run-out", required_argument, 0, 'o'},
        {"concurrency", required_argument, 0, 'c'}, {"tag", required_argument, 0, 't'},
        {"vector", required_argument, 0, 'V'},   {"knn-k", required_argument, 0, 'K'},
        {"ef", required_argument, 0, 'E'},       {"knn-exact", no_argument, 0, 'x'},
        {"fusion", required_argument, 0, 'F'},   {"vector-weight", required_argument, 0, 'W'},
        {"text-only", no_argument, 0, 'T'},      {"vector-only", no_argument, 0, 'O'},
        {"fields", required_argument, 0, 'I'},   {"snippets", no_argument, 0, 'N'},
        {"safe-search", required_argument, 0, 'Z'}, {"host-cap", required_argument, 0, 'C'},
        {"keep-duplicates", no_argument, 0, 'D'}, {"no-blend", no_argument, 0, 'B'},
        {"generation", required_argument, 0, 'G'}, {"candidate-model", no_argument, 0, 'g'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    search_args a = {.syntax = -1, .k = 10, .concurrency = 4, .tag = "funnel", .deadline_ms = DEFAULT_DEADLINE_MS};
    uint32_t v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 's': a.server = optarg; break;
        case 'k':
            if (parse_u32(optarg, &a.k)) goto bad_num;
            a.k_set = 1;
            break;
        case 'p': if (parse_u32(optarg, &a.page)) goto bad_num; break;
        case 'j': a.json = 1; break;
        case 'e': a.explain = 1; break;
        case 'S': a.skip_models = 1; break;
        case 'A': a.all_terms = 1; break;
        case 'H': if (parse_u32(optarg, &a.min_hits)) goto bad_num; break;
        case 'f': a.filter = optarg; break;
        case 'P':
            if (strcmp(optarg, "none") == 0) a.expand = FUNNEL__V1__EXPAND__EXPAND_NONE;
            else if (strcmp(optarg, "rm3") == 0) a.expand = FUNNEL__V1__EXPAND__EXPAND_RM3;
            else if (strcmp(optarg, "synonyms") == 0) a.expand = FUNNEL__V1__EXPAND__EXPAND_SYNONYMS;
            else {
                fprintf(stderr, "funnel search: --expand must be none, rm3 or synonyms, not '%s'\n", optarg);
                return OPS_EXIT_USAGE;
            }
            break;
        case 'L':
            if (strcmp(optarg, "off") == 0) a.spell = FUNNEL__V1__SPELL_MODE__SPELL_OFF;
            else if (strcmp(optarg, "suggest") == 0) a.spell = FUNNEL__V1__SPELL_MODE__SPELL_SUGGEST;
            else if (strcmp(optarg, "auto") == 0) a.spell = FUNNEL__V1__SPELL_MODE__SPELL_AUTO;
            else {
                fprintf(stderr, "funnel search: --spell must be off, suggest or auto, not '%s'\n", optarg);
                return OPS_EXIT_USAGE;
            }
            break;
        case 'Y':
            if (strcmp(optarg, "language") == 0) a.syntax = 0;
            else if (strcmp(optarg, "plain") == 0) a.syntax = 1;
            else {
                fprintf(stderr, "funnel search: --syntax must be language or plain, not '%s'\n", optarg);
                return OPS_EXIT_USAGE;
            }
            break;
        case 'M':
            if (strcmp(optarg, "any") == 0) a.all_terms = 0;
            else if (strcmp(optarg, "all") == 0) a.all_terms = 1;
            else {
                fprintf(stderr, "funnel search: --mode must be any or all, not '%s'\n", optarg);
                return OPS_EXIT_USAGE;
            }
            break;
        case 'X': a.exact_total = 1; break;
        case '0': case '1': case '2':
            if (parse_u32(optarg, &a.win[c - '0']) || a.win[c - '0'] == 0) goto bad_num;
            break;
        case 'd':
            if (parse_u32(optarg, &v) || v == 0) goto bad_num;
            a.deadline_ms = v;
            break;
        case 'q': a.queries = optarg; break;
        case 'o': a.run_out = optarg; break;
        case 'c':
            if (parse_u32(optarg, &a.concurrency) || a.concurrency == 0 || a.concurrency > 1024)
                goto bad_num;
            break;
        case 't': a.tag = optarg; break;
        case 'V': {
            fn_errbuf veb;
            free(a.vector);
            if (ops_parse_vector(optarg, &a.vector, &a.nvector, &veb)) {
                fprintf(stderr, "funnel search: --%s\n", veb.msg);
                return OPS_EXIT_USAGE;
            }
            break;
        }
        case 'K': if (parse_u32(optarg, &a.knn_k) || a.knn_k == 0) goto bad_num; break;
        case 'E': if (parse_u32(optarg, &a.ef) || a.ef == 0) goto bad_num; break;
        case 'x': a.knn_exact = 1; break;
        case 'F':
            if (!strcmp(optarg, "rrf")) a.fusion = FUNNEL__V1__FUSION__FUSION_RRF;
            else if (!strcmp(optarg, "weighted")) a.fusion = FUNNEL__V1__FUSION__FUSION_WEIGHTED;
            else if (!strcmp(optarg, "learned")) a.fusion = FUNNEL__V1__FUSION__FUSION_LEARNED;
            else {
                fprintf(stderr, "funnel search: --fusion must be rrf, weighted or learned\n");
                return OPS_EXIT_USAGE;
            }
            break;
        case 'W': {
            char *end;
            double w = strtod(optarg, &end);
            if (end == optarg || *end || !(w > 0 && w <= 1)) {
                fprintf(stderr, "funnel search: --vector-weight must be in (0, 1]\n");
                return OPS_EXIT_USAGE;
            }
            a.vector_weight = (float)w;
            break;
        }
        case 'T': a.text_only = 1; break;
        case 'I':
            free(a.fields);
            a.fields = NULL;
            if (ops_split_fields(optarg, &a.fields, &a.nfields)) {
                fprintf(stderr, "funnel search: out of memory\n");
                return OPS_EXIT_FAIL;
            }
            break;
        case 'N': a.snippets = 1; break;
        case 'Z':
            if (!strcmp(optarg, "off")) a.safe_search = FUNNEL__V1__SAFE_SEARCH__SAFE_SEARCH_OFF;
            else if (!strcmp(optarg, "moderate")) a.safe_search = FUNNEL__V1__SAFE_SEARCH__SAFE_SEARCH_MODERATE;
            else if (!strcmp(optarg, "strict")) a.safe_search = FUNNEL__V1__SAFE_SEARCH__SAFE_SEARCH_STRICT;
            else {
                fprintf(stderr, "funnel search: --safe-search must be off, moderate or strict, not '%s'\n", optarg);
                return OPS_EXIT_USAGE;
            }
            break;
        case 'C': if (parse_u32(optarg, &a.host_cap) || a.host_cap == 0 || a.host_cap > 1000) goto bad_num; break;
        case 'D': a.keep_duplicates = 1; break;
        case 'B': a.no_blend = 1; break;
        case 'G': a.generation = optarg; break;
        case 'g': a.candidate_model = 1; break;
        case 'O': a.vector_only = 1; break;
        case 'h': fputs(search_usage, stdout); return OPS_EXIT_OK;
        default: fputs(search_usage, stderr); return OPS_EXIT_USAGE;
        }
    }
    if (!a.server) {
        fprintf(stderr, "funnel search: --server is required\n");
        fputs(search_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    if (a.queries || a.run_out) {
        if (!a.queries || !a.run_out || optind != argc) {
            fprintf(stderr, "funnel search: batch mode needs --queries and --run-out and no query text\n");
            return OPS_EXIT_USAGE;
        }
        if (!a.k_set) a.k = 1000;
        if (a.vector) {
            fprintf(stderr, "funnel search: batch mode takes the vectors from the queries' third column\n");
            return OPS_EXIT_USAGE;
        }
    } else if (optind != argc - 1 && !(a.vector && optind == argc)) {
        fprintf(stderr, "funnel search: give exactly one query text (quote it), --vector, or --queries\n");
        fputs(search_usage, stderr);
        return OPS_EXIT_USAGE;
    }

    rpc_init();
    rpc_client_t *client = rpc_client_create(a.server);
    int ret = OPS_EXIT_FAIL;
    if (!client) {
        fprintf(stderr, "funnel search: out of memory\n");
    } else {
        ret = a.queries ? search_batch(client, &a) : search_one(client, optind < argc ? argv[optind] : NULL, &a);
        rpc_client_destroy(client);
    }
    rpc_shutdown();
    free(a.vector);
    free(a.fields);
    return ret;

bad_num:
    fprintf(stderr, "funnel search: bad number for --%s: '%s'\n",
            c == 'k' ? "k" : c == 'p' ? "page" : c == 'd' ? "deadline-ms" : c == 'K' ? "knn-k" : c == 'E' ? "ef"
            : c == '0' ? "selection-k"
            : c == '1' ? "stage1-k" : c == '2' ? "stage2-k" : c == 'H' ? "min-hits" : "concurrency", optarg);
    return OPS_EXIT_USAGE;
}
