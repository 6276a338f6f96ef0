/* test_coord.c - the coordinator in-process against fake shard servers on
 * the same libuv loop (real gRPC over loopback): exact merge across shards,
 * partial coverage when a shard fails, stalls past the deadline or is down,
 * replica failover, INVALID_ARGUMENT, Admin/Status and Health. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "coord.h"
#include "funnel.pb-c.h"
#include "rpc_client.h"
#include "rpc_server.h"

#define NDOCS 40
#define MAXF 4

enum fake_mode { FAKE_OK, FAKE_FAIL, FAKE_STALL };

/* The test corpus: doc d lives on shard d % nshards; few distinct scores so
 * ties (broken by key) are common. */
static double doc_score(int d) { return (double)((d * 7) % 5); }
static uint64_t doc_key(int d) { return (uint64_t)((d * 2654435761u) % 1000003u); }

typedef struct fake {
    rpc_server_t *srv;
    int mode;
    uint32_t shard, nshards;
    int calls;
    int stall_ms;
} fake;

typedef struct stall { uv_timer_t t; rpc_call_t *call; } stall;

typedef struct harness {
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t stop;
    fake fakes[MAXF];
    int nfakes, fakes_left;
    coord_topology topo;
    coord_t *coord;
    rpc_client_t *client;
    char addr[64];
} harness;

static harness H;

static int cmp_doc(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    if (doc_score(x) != doc_score(y)) return doc_score(x) > doc_score(y) ? -1 : 1;
    return doc_key(x) < doc_key(y) ? -1 : doc_key(x) > doc_key(y);
}

static void fake_reply(fake *f, rpc_call_t *call, const Funnel__V1__ShardSearchRequest *req)
{
    int docs[NDOCS], n = 0;
    for (int d = 0; d < NDOCS; d++)
        if ((uint32_t)d % f->nshards == f->shard) docs[n++] = d;
    qsort(docs, (size_t)n, sizeof docs[0], cmp_doc);
    size_t k = req->k < (uint32_t)n ? req->k : (size_t)n;
    Funnel__V1__ShardHit hits[NDOCS], *hp[NDOCS];
    char ids[NDOCS][16], titles[NDOCS][32];
    Funnel__V1__TermExplain te = FUNNEL__V1__TERM_EXPLAIN__INIT, *tep = &te;
    te.term = (char *)"fake";
    te.df = NDOCS;
    for (size_t i = 0; i < k; i++) {
        funnel__v1__shard_hit__init(&hits[i]);
        snprintf(ids[i], sizeof ids[i], "doc%d", docs[i]);
        snprintf(titles[i], sizeof titles[i], "title %d", docs[i]);
        hits[i].doc = (uint32_t)i;
        hits[i].id = ids[i];
        hits[i].title = titles[i];
        hits[i].score = doc_score(docs[i]);
        hits[i].key = doc_key(docs[i]);
        if (req->explain) { hits[i].n_terms = 1; hits[i].terms = &tep; }
        hp[i] = &hits[i];
    }
    char *terms[] = { (char *)"fake", (char *)"term" };
    Funnel__V1__ShardSearchResponse r = FUNNEL__V1__SHARD_SEARCH_RESPONSE__INIT;
    r.n_hits = k;
    r.hits = hp;
    r.matches = (uint64_t)n;
    r.docs = (uint64_t)n;
    r.docs_total = NDOCS;
    r.shard = f->shard;
    r.shards = f->nshards;
    r.n_terms = 2;
    r.terms = terms;
    r.time_us = 100 + f->shard;
    rpc_call_reply(call, GRPC_STATUS_OK, NULL, &r.base);
}

static void stall_closed(uv_handle_t *h) { free(h->data); }

static void stall_fire(uv_timer_t *t)
{
    stall *s = t->data;
    /* Late answer: the caller has long given up. */
    rpc_call_reply(s->call, GRPC_STATUS_UNAVAILABLE, "too late", NULL);
    uv_close((uv_handle_t *)&s->t, stall_closed);
}

static void fake_search(rpc_call_t *call, const ProtobufCMessage *msg, void *ud)
{
    fake *f = ud;
    f->calls++;
    if (f->mode == FAKE_FAIL) {
        rpc_call_reply(call, GRPC_STATUS_INTERNAL, "fake shard broke", NULL);
    } else if (f->mode == FAKE_STALL) {
        stall *s = calloc(1, sizeof *s);
        s->call = call;
        s->t.data = s;
        uv_timer_init(&H.loop, &s->t);
        uv_timer_start(&s->t, stall_fire, (uint64_t)f->stall_ms, 0);
    } else {
        fake_reply(f, call, (const Funnel__V1__ShardSearchRequest *)msg);
    }
}

static void on_fake_stopped(void *ud)
{
    (void)ud;
    if (--H.fakes_left == 0) uv_close((uv_handle_t *)&H.stop, NULL);
}

static void on_coord_stopped(void *ud)
{
    (void)ud;
    H.fakes_left = H.nfakes;
    if (H.nfakes == 0) { uv_close((uv_handle_t *)&H.stop, NULL); return; }
    for (int i = 0; i < H.nfakes; i++) rpc_server_stop(H.fakes[i].srv, on_fake_stopped, NULL);
}

static void on_stop(uv_async_t *a)
{
    (void)a;
    coord_stop(H.coord, on_coord_stopped, NULL);
}

static void loop_main(void *arg)
{
    (void)arg;
    uv_run(&H.loop, UV_RUN_DEFAULT);
}

/* Start nfakes fake shards with the given modes and a coordinator whose
 * topology is built by topo_fmt: "%d"/"%s" patterns are filled by build(). */
static void start(int nfakes, const int *modes, const char *topo_text_extra, int64_t budget_ms)
{
    memset(&H, 0, sizeof H);
    rpc_init();
    cr_assert_eq(uv_loop_init(&H.loop), 0);
    H.nfakes = nfakes;
    static rpc_method fm[MAXF];
    char topo[1024] = "# test topology\n";
    for (int i = 0; i < nfakes; i++) {
        fake *f = &H.fakes[i];
        f->mode = modes[i];
        f->shard = (uint32_t)i;
        f->nshards = (uint32_t)nfakes;
        f->stall_ms = 1500;
        fm[i] = (rpc_method){ RPC_METHOD_SHARD_SEARCH, &funnel__v1__shard_search_request__descriptor,
                              fake_search, f };
        rpc_server_opts so = { "127.0.0.1:0", &fm[i], 1, 0 };
        fn_errbuf eb = {{0}};
        cr_assert_eq(rpc_server_start(&H.loop, &so, &f->srv, &eb), 0, "%s", eb.msg);
        char line[128];
        /* shard 0 gets the extra replicas (e.g. a dead one) in front */
        snprintf(line, sizeof line, "shard %d %s127.0.0.1:%d\n", i,
                 i == 0 && topo_text_extra ? topo_text_extra : "", rpc_server_port(f->srv));
        strcat(topo, line);
    }
    if (nfakes == 0 && topo_text_extra) strcat(topo, topo_text_extra);
    fn_errbuf eb = {{0}};
    cr_assert_eq(coord_topology_parse(topo, strlen(topo), "test", &H.topo, &eb), 0, "%s", eb.msg);
    coord_opts o = {
        .topo = &H.topo, .listen = "127.0.0.1:0", .default_deadline_ms = 3000,
        .budget_ms = budget_ms, .limits = { .max_window = 1000, .max_query_bytes = 64 },
        .health_interval_ms = 200,
    };
    cr_assert_eq(coord_start(&H.loop, &o, &H.coord, &eb), 0, "%s", eb.msg);
    snprintf(H.addr, sizeof H.addr, "127.0.0.1:%d", coord_port(H.coord));
    cr_assert_eq(uv_async_init(&H.loop, &H.stop, on_stop), 0);
    cr_assert_eq(uv_thread_create(&H.thread, loop_main, NULL), 0);
    H.client = rpc_client_create(H.addr);
    cr_assert_not_null(H.client);
}

static void stop(void)
{
    rpc_client_destroy(H.client);
    uv_async_send(&H.stop);
    uv_thread_join(&H.thread);
    cr_assert_eq(uv_loop_close(&H.loop), 0, "handles left on the loop");
    coord_topology_free(&H.topo);
    rpc_shutdown();
}

static Funnel__V1__SearchResponse *search(const char *q, uint32_t k, uint32_t page, int explain,
                                          int64_t deadline_ms, rpc_status *st)
{
    Funnel__V1__SearchRequest r = FUNNEL__V1__SEARCH_REQUEST__INIT;
    r.query = (char *)q;
    r.k = k;
    r.page = page;
    r.explain = explain;
    r.request_id = (char *)"req-42";
    ProtobufCMessage *resp = NULL;
    rpc_client_call(H.client, RPC_METHOD_SEARCH, &r.base, &funnel__v1__search_response__descriptor,
                    deadline_ms, &resp, st);
    return (Funnel__V1__SearchResponse *)resp;
}

/* The expected global ranking over the docs of the answering shards. */
static int expected(uint32_t nshards, int skip_shard, int *out)
{
    int n = 0;
    for (int d = 0; d < NDOCS; d++)
        if ((int)((uint32_t)d % nshards) != skip_shard) out[n++] = d;
    qsort(out, (size_t)n, sizeof out[0], cmp_doc);
    return n;
}

static void check_hits(const Funnel__V1__SearchResponse *r, uint32_t nshards, int skip_shard,
                       size_t skip, size_t k)
{
    int exp[NDOCS];
    int n = expected(nshards, skip_shard, exp);
    size_t want = skip >= (size_t)n ? 0 : ((size_t)n - skip < k ? (size_t)n - skip : k);
    cr_assert_eq(r->n_hits, want, "hits %zu want %zu", r->n_hits, want);
    for (size_t i = 0; i < r->n_hits; i++) {
        char id[16];
        snprintf(id, sizeof id, "doc%d", exp[skip + i]);
        cr_assert_str_eq(r->hits[i]->id, id, "rank %zu", skip + i);
        cr_assert_eq(r->hits[i]->score, doc_score(exp[skip + i]));
        cr_assert_eq(r->hits[i]->shard, (uint32_t)exp[skip + i] % nshards);
    }
}

static const Funnel__V1__StageInfo *find_stage(const Funnel__V1__SearchResponse *r, const char *name)
{
    for (size_t i = 0; i < r->n_stages; i++)
        if (!strcmp(r->stages[i]->name, name)) return r->stages[i];
    return NULL;
}

Test(coord, all_shards_exact_merge_and_pages)
{
    int modes[] = { FAKE_OK, FAKE_OK, FAKE_OK };
    start(3, modes, NULL, 20);
    rpc_status st;
    for (uint32_t page = 0; page < 5; page++) {
        Funnel__V1__SearchResponse *r = search("hello world", 7, page, 0, 5000, &st);
        cr_assert_not_null(r, "%s %s", rpc_status_name(st.code), st.message);
        check_hits(r, 3, -1, page * 7, 7);
        cr_assert_not(r->partial);
        cr_assert_eq(r->coverage->shards_asked, 3);
        cr_assert_eq(r->coverage->shards_answered, 3);
        cr_assert_eq(r->coverage->shards_failed, 0);
        cr_assert_eq(r->coverage->docs_searched, NDOCS);
        cr_assert_eq(r->coverage->docs_total, NDOCS);
        cr_assert_eq(r->total_matches, NDOCS);
        cr_assert_eq(r->n_failures, 0);
        cr_assert_str_eq(r->request_id, "req-42");
        cr_assert_eq(r->n_terms, 2);
        cr_assert_str_eq(r->terms[0], "fake");
        cr_assert_eq(r->n_stages, 6);
        const Funnel__V1__StageInfo *sel = find_stage(r, "selection"), *mg = find_stage(r, "merge");
        cr_assert(sel && sel->ran && sel->time_us == 102 && sel->count_out == NDOCS);
        cr_assert(mg && mg->ran);
        const char *off[] = { "stage1", "stage2", "blender", "filter" };
        for (int i = 0; i < 4; i++) {
            const Funnel__V1__StageInfo *s = find_stage(r, off[i]);
            cr_assert(s && !s->ran && strstr(s->note, "not built yet"), "%s", off[i]);
        }
        cr_assert_eq(r->hits[0]->n_stages, 0, "no per-hit stages without explain");
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    /* k = 0 means 10 */
    Funnel__V1__SearchResponse *r = search("x", 0, 0, 0, 5000, &st);
    cr_assert_not_null(r);
    check_hits(r, 3, -1, 0, 10);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    cr_assert(rpc_health_check(H.client, 2000));
    stop();
}

Test(coord, explain_fills_stage_scores_and_terms)
{
    int modes[] = { FAKE_OK, FAKE_OK };
    start(2, modes, NULL, 20);
    rpc_status st;
    Funnel__V1__SearchResponse *r = search("hello", 5, 0, 1, 5000, &st);
    cr_assert_not_null(r, "%s", st.message);
    check_hits(r, 2, -1, 0, 5);
    for (size_t i = 0; i < r->n_hits; i++) {
        const Funnel__V1__Hit *h = r->hits[i];
        cr_assert_eq(h->n_stages, 5);
        cr_assert_str_eq(h->stages[0]->stage, "selection");
        cr_assert(h->stages[0]->ran);
        cr_assert_eq(h->stages[0]->score, h->score);
        for (int j = 1; j < 5; j++) cr_assert_not(h->stages[j]->ran);
        cr_assert_eq(h->n_terms, 1);
        cr_assert_str_eq(h->terms[0]->term, "fake");
        cr_assert_eq(h->terms[0]->df, NDOCS);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    stop();
}

Test(coord, failing_shard_gives_partial_coverage)
{
    int modes[] = { FAKE_OK, FAKE_FAIL, FAKE_OK };
    start(3, modes, NULL, 20);
    rpc_status st;
    Funnel__V1__SearchResponse *r = search("hello", 10, 1, 0, 5000, &st);
    cr_assert_not_null(r, "%s", st.message);
    cr_assert(r->partial);
    check_hits(r, 3, 1, 10, 10);
    cr_assert_eq(r->coverage->shards_answered, 2);
    cr_assert_eq(r->coverage->shards_failed, 1);
    cr_assert_eq(r->coverage->docs_searched, 27);   /* docs 0..39 on shards 0 and 2 */
    cr_assert_eq(r->n_failures, 1);
    cr_assert_eq(r->failures[0]->shard, 1);
    cr_assert_str_eq(r->failures[0]->status, "INTERNAL");
    cr_assert(strstr(r->failures[0]->message, "fake shard broke"), "%s", r->failures[0]->message);
    char a[64];
    snprintf(a, sizeof a, "127.0.0.1:%d", rpc_server_port(H.fakes[1].srv));
    cr_assert_str_eq(r->failures[0]->address, a);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    stop();
}

Test(coord, stalled_shard_does_not_delay_past_deadline)
{
    int modes[] = { FAKE_OK, FAKE_STALL };
    start(2, modes, NULL, 50);
    rpc_status st;
    uint64_t t0 = uv_hrtime();
    Funnel__V1__SearchResponse *r = search("hello", 10, 0, 0, 1000, &st);
    double ms = (double)(uv_hrtime() - t0) / 1e6;
    cr_assert_not_null(r, "%s %s after %.0f ms", rpc_status_name(st.code), st.message, ms);
    cr_assert_lt(ms, 1000.0);
    /* shard calls end max(50 ms budget, 10%) = 100 ms before the client's deadline */
    cr_assert_gt(ms, 850.0, "answered after %.0f ms: before the shard deadline?", ms);
    cr_assert(r->partial);
    check_hits(r, 2, 1, 0, 10);
    cr_assert_eq(r->n_failures, 1);
    cr_assert_str_eq(r->failures[0]->status, "DEADLINE_EXCEEDED");
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* No client deadline: --default-deadline-ms (3000 here) applies. */
    t0 = uv_hrtime();
    r = search("hello", 10, 0, 0, 0, &st);   /* rpc_client: <= 0 means 30 s */
    ms = (double)(uv_hrtime() - t0) / 1e6;
    cr_assert_not_null(r);
    cr_assert(r->partial);
    cr_assert_lt(ms, 3000.0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    stop();
}

Test(coord, all_shards_down_is_ok_with_zero_hits)
{
    start(0, NULL, "shard 0 127.0.0.1:1\nshard 1 127.0.0.1:2\n", 20);
    rpc_status st;
    Funnel__V1__SearchResponse *r = search("hello", 10, 0, 0, 3000, &st);
    cr_assert_not_null(r, "%s %s", rpc_status_name(st.code), st.message);
    cr_assert_eq(r->n_hits, 0);
    cr_assert(r->partial);
    cr_assert_eq(r->coverage->shards_asked, 2);
    cr_assert_eq(r->coverage->shards_answered, 0);
    cr_assert_eq(r->coverage->shards_failed, 2);
    cr_assert_eq(r->n_failures, 2);
    cr_assert_str_eq(r->failures[0]->status, "UNAVAILABLE");
    cr_assert_str_eq(r->failures[1]->address, "127.0.0.1:2");
    protobuf_c_message_free_unpacked(&r->base, NULL);
    stop();
}

Test(coord, dead_replica_fails_over_and_status_reports_it)
{
    int modes[] = { FAKE_OK, FAKE_OK };
    start(2, modes, "127.0.0.1:1 ", 20);   /* shard 0: dead replica first, then the fake */
    rpc_status st;
    for (int i = 0; i < 4; i++) {
        Funnel__V1__SearchResponse *r = search("hello", 10, 0, 0, 3000, &st);
        cr_assert_not_null(r, "%s", st.message);
        cr_assert_not(r->partial, "round %d: %s", i, r->n_failures ? r->failures[0]->message : "");
        check_hits(r, 2, -1, 0, 10);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    cr_assert_eq(H.fakes[0].calls >= 4, 1);

    Funnel__V1__StatusRequest sr = FUNNEL__V1__STATUS_REQUEST__INIT;
    ProtobufCMessage *m = NULL;
    cr_assert_eq(rpc_client_call(H.client, RPC_METHOD_ADMIN_STATUS, &sr.base,
                                 &funnel__v1__status_response__descriptor, 3000, &m, &st), GRPC_STATUS_OK);
    Funnel__V1__StatusResponse *s = (Funnel__V1__StatusResponse *)m;
    cr_assert_str_eq(s->role, "coordinator");
    cr_assert_eq(s->requests, 4);
    cr_assert_eq(s->errors, 0);
    cr_assert_eq(s->n_backends, 3);
    cr_assert_str_eq(s->backends[0]->address, "127.0.0.1:1");
    cr_assert_not(s->backends[0]->healthy);
    cr_assert(s->backends[1]->healthy, "%s", s->backends[1]->detail);
    protobuf_c_message_free_unpacked(m, NULL);
    stop();
}

Test(coord, invalid_arguments)
{
    int modes[] = { FAKE_OK };
    start(1, modes, NULL, 20);
    struct { const char *q; uint32_t k, page; const char *field; } cases[] = {
        { "", 10, 0, "query:" },
        { "   ", 10, 0, "query:" },
        { "\xc3\x28", 10, 0, "query: not valid UTF-8" },
        { "0123456789012345678901234567890123456789012345678901234567890123456789", 10, 0, "query:" },
        { "ok", 1001, 0, "k:" },
        { "ok", 100, 10, "page:" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rpc_status st;
        Funnel__V1__SearchResponse *r = search(cases[i].q, cases[i].k, cases[i].page, 0, 3000, &st);
        cr_assert_null(r);
        cr_assert_eq(st.code, GRPC_STATUS_INVALID_ARGUMENT, "case %zu: %s", i, rpc_status_name(st.code));
        cr_assert(strstr(st.message, cases[i].field), "case %zu: '%s'", i, st.message);
    }
    cr_assert_eq(H.fakes[0].calls, 0, "invalid requests never reach a shard");
    stop();
}
