/* test_shard.c - the shard service in-process: a tiny index built with
 * idx_build, a shard on its own uv loop thread, calls through rpc_client. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "builder.h"
#include "funnel.pb-c.h"
#include "rpc_client.h"
#include "shard.h"

static char tmpdir[256];
static char shard_dir[400];

typedef struct tshard {
    pthread_t th;
    uv_loop_t loop;
    uv_async_t stop_async;
    shard_config cfg;
    shard_t *sh;
    int start_rc, ready, stopped, loop_close_rc;
    char err[512];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char target[64];
} tshard;

static void on_stopped(void *ud) { ((tshard *)ud)->stopped = 1; }

static void on_stop_async(uv_async_t *a)
{
    tshard *t = a->data;
    shard_stop(t->sh, on_stopped, t);
    uv_close((uv_handle_t *)a, NULL);
}

static void *shard_main(void *arg)
{
    tshard *t = arg;
    uv_loop_init(&t->loop);
    uv_async_init(&t->loop, &t->stop_async, on_stop_async);
    t->stop_async.data = t;
    fn_errbuf eb = {{0}};
    int rc = shard_start(&t->loop, &t->cfg, &t->sh, &eb);
    pthread_mutex_lock(&t->mu);
    t->start_rc = rc;
    snprintf(t->err, sizeof t->err, "%s", fn_errmsg(&eb, rc));
    if (rc == 0) snprintf(t->target, sizeof t->target, "127.0.0.1:%d", shard_port(t->sh));
    t->ready = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    if (rc != 0) uv_close((uv_handle_t *)&t->stop_async, NULL);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    t->loop_close_rc = uv_loop_close(&t->loop);
    return NULL;
}

static int tshard_start(tshard *t, const shard_config *cfg)
{
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    pthread_create(&t->th, NULL, shard_main, t);
    pthread_mutex_lock(&t->mu);
    while (!t->ready) pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    if (t->start_rc != 0) pthread_join(t->th, NULL);
    return t->start_rc;
}

static void tshard_stop(tshard *t)
{
    uv_async_send(&t->stop_async);
    pthread_join(t->th, NULL);
    cr_assert(t->stopped);
    cr_assert_eq(t->loop_close_rc, 0, "handles left on the loop");
}

static const char *corpus[] = {
    "{\"id\":\"d1\",\"title\":\"wing slipstream\",\"body\":\"experimental study of a wing in a propeller slipstream\",\"url\":\"http://x/d1\"}",
    "{\"id\":\"d2\",\"title\":\"boundary layer\",\"body\":\"laminar boundary layer on a flat plate\"}",
    "{\"id\":\"d3\",\"title\":\"heat transfer\",\"body\":\"heat transfer in a turbulent boundary layer with suction\"}",
    "{\"id\":\"d4\",\"title\":\"supersonic flow\",\"body\":\"supersonic flow past a wing at high angle of attack\"}",
    "{\"id\":\"d5\",\"title\":\"shock waves\",\"body\":\"shock wave boundary layer interaction\"}",
};

static void build_index(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/funnel-test-shard-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    char in[300], out[300];
    snprintf(in, sizeof in, "%s/corpus.jsonl", tmpdir);
    snprintf(out, sizeof out, "%s/idx", tmpdir);
    FILE *f = fopen(in, "w");
    for (size_t i = 0; i < sizeof corpus / sizeof *corpus; i++) fprintf(f, "%s\n", corpus[i]);
    fclose(f);
    idx_build_opts o;
    memset(&o, 0, sizeof o);
    o.input = in;
    o.out_dir = out;
    o.shards = 1;
    fn_errbuf eb = {{0}};
    int rc = idx_build(&o, NULL, &eb);
    cr_assert_eq(rc, 0, "idx_build: %s", fn_errmsg(&eb, rc));
    snprintf(shard_dir, sizeof shard_dir, "%s/shard-000", out);
}

static void setup(void)
{
    rpc_init();
    build_index();
}

static void teardown(void)
{
    rpc_shutdown();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
}

TestSuite(shard, .init = setup, .fini = teardown, .timeout = 60);

static void base_cfg(shard_config *c)
{
    shard_config_defaults(c);
    snprintf(c->index_dir, sizeof c->index_dir, "%s", shard_dir);
    c->threads = 2;
    c->max_k = 100;
}

static grpc_status_code search(rpc_client_t *c, const char *q, uint32_t k, int explain,
                               Funnel__V1__ShardSearchResponse **out, rpc_status *st)
{
    Funnel__V1__ShardSearchRequest req = FUNNEL__V1__SHARD_SEARCH_REQUEST__INIT;
    req.query = (char *)q;
    req.k = k;
    req.explain = explain;
    ProtobufCMessage *resp = NULL;
    grpc_status_code code = rpc_client_call(c, RPC_METHOD_SHARD_SEARCH, &req.base,
                                            &funnel__v1__shard_search_response__descriptor,
                                            5000, &resp, st);
    *out = (Funnel__V1__ShardSearchResponse *)resp;
    return code;
}

Test(shard, search_returns_ranked_hits)
{
    shard_config cfg;
    base_cfg(&cfg);
    tshard t;
    cr_assert_eq(tshard_start(&t, &cfg), 0, "%s", t.err);
    rpc_client_t *c = rpc_client_create(t.target);
    Funnel__V1__ShardSearchResponse *r;
    rpc_status st;
    cr_assert_eq(search(c, "boundary layer", 10, 0, &r, &st), GRPC_STATUS_OK, "%s", st.message);
    cr_assert_eq(r->docs, 5);
    cr_assert_eq(r->docs_total, 5);
    cr_assert_eq(r->shards, 1);
    cr_assert_eq(r->matches, 3, "d2, d3, d5 contain boundary/layer");
    cr_assert_eq(r->n_hits, 3);
    cr_assert_str_eq(r->hits[0]->id, "d2", "title + body match ranks first");
    for (size_t i = 1; i < r->n_hits; i++)
        cr_assert_geq(r->hits[i - 1]->score, r->hits[i]->score);
    cr_assert_geq(r->n_terms, 2);
    cr_assert_str_eq(r->hits[0]->title, "boundary layer");
    cr_assert_eq(r->hits[0]->n_terms, 0, "no explain asked");
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* k limits the hits, matches still counts all. */
    cr_assert_eq(search(c, "boundary layer", 1, 1, &r, &st), GRPC_STATUS_OK, "%s", st.message);
    cr_assert_eq(r->n_hits, 1);
    cr_assert_eq(r->matches, 3);
    cr_assert_gt(r->hits[0]->n_terms, 0, "explain fills per-term details");
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* A hit's explain lists the query terms it holds, and only those. */
    cr_assert_eq(search(c, "boundary layer wing", 10, 1, &r, &st), GRPC_STATUS_OK, "%s", st.message);
    cr_assert_eq(r->n_terms, 3);
    int partial = 0;
    for (size_t i = 0; i < r->n_hits; i++) {
        const Funnel__V1__ShardHit *h = r->hits[i];
        cr_assert_gt(h->n_terms, 0, "%s: a hit holds at least one term", h->id);
        for (size_t t = 0; t < h->n_terms; t++)
            cr_assert_gt(h->terms[t]->tf_title + h->terms[t]->tf_body, 0, "%s: %s listed with tf 0", h->id,
                         h->terms[t]->term);
        partial += h->n_terms < r->n_terms;
    }
    cr_assert_gt(partial, 0, "some hit lacks a query term and lists fewer terms");
    protobuf_c_message_free_unpacked(&r->base, NULL);

    cr_assert_eq(search(c, "wing", 10, 0, &r, &st), GRPC_STATUS_OK);
    cr_assert_eq(r->n_hits, 2);
    int saw_url = 0;
    for (size_t i = 0; i < r->n_hits; i++)
        saw_url |= strcmp(r->hits[i]->url, "http://x/d1") == 0;
    cr_assert(saw_url, "stored url comes back");
    protobuf_c_message_free_unpacked(&r->base, NULL);

    cr_assert_eq(search(c, "zzzunknownzzz", 10, 0, &r, &st), GRPC_STATUS_OK);
    cr_assert_eq(r->n_hits, 0);
    cr_assert_eq(r->matches, 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    rpc_client_destroy(c);
    tshard_stop(&t);
}

/* Two-phase fetch: a search without stored fields, then Shard/Fetch of its
 * hits gives what a search with fields gives; a fetch that does not name
 * this shard's documents is refused. On the loop thread and on a worker. */
Test(shard, two_phase_fetch_gives_the_fields_of_a_search)
{
    for (int inl = 0; inl < 2; inl++) {
        shard_config cfg;
        base_cfg(&cfg);
        cfg.inline_max_k = inl ? 100 : 0;
        tshard t;
        cr_assert_eq(tshard_start(&t, &cfg), 0, "%s", t.err);
        rpc_client_t *c = rpc_client_create(t.target);
        Funnel__V1__ShardSearchResponse *full, *bare;
        rpc_status st;
        cr_assert_eq(search(c, "boundary layer wing", 10, 0, &full, &st), GRPC_STATUS_OK, "%s", st.message);
        Funnel__V1__ShardSearchRequest req = FUNNEL__V1__SHARD_SEARCH_REQUEST__INIT;
        req.query = "boundary layer wing";
        req.k = 10;
        req.no_fields = 1;
        ProtobufCMessage *m = NULL;
        cr_assert_eq(rpc_client_call(c, RPC_METHOD_SHARD_SEARCH, &req.base, &funnel__v1__shard_search_response__descriptor,
                                     5000, &m, &st), GRPC_STATUS_OK, "%s", st.message);
        bare = (Funnel__V1__ShardSearchResponse *)m;
        cr_assert_eq(bare->n_hits, full->n_hits);
        cr_assert_gt(bare->n_hits, 2);
        uint32_t docs[16];
        uint64_t keys[16];
        for (size_t i = 0; i < bare->n_hits; i++) {
            cr_assert_str_eq(bare->hits[i]->id, "", "no stored fields in the first phase");
            cr_assert_eq(bare->hits[i]->doc, full->hits[i]->doc);
            docs[bare->n_hits - 1 - i] = bare->hits[i]->doc;   /* any order */
            keys[bare->n_hits - 1 - i] = bare->hits[i]->key;
        }
        Funnel__V1__ShardFetchRequest fr = FUNNEL__V1__SHARD_FETCH_REQUEST__INIT;
        fr.docs = docs;
        fr.n_docs = bare->n_hits;
        fr.keys = keys;
        fr.n_keys = bare->n_hits;
        m = NULL;
        cr_assert_eq(rpc_client_call(c, RPC_METHOD_SHARD_FETCH, &fr.base, &funnel__v1__shard_fetch_response__descriptor,
                                     5000, &m, &st), GRPC_STATUS_OK, "%s", st.message);
        Funnel__V1__ShardFetchResponse *f = (Funnel__V1__ShardFetchResponse *)m;
        cr_assert_eq(f->n_docs, bare->n_hits);
        for (size_t i = 0; i < f->n_docs; i++) {
            const Funnel__V1__ShardHit *h = full->hits[bare->n_hits - 1 - i];
            cr_assert_str_eq(f->docs[i]->id, h->id);
            cr_assert_str_eq(f->docs[i]->title, h->title);
            cr_assert_str_eq(f->docs[i]->url, h->url);
        }
        protobuf_c_message_free_unpacked(m, NULL);
        /* refused: a wrong key, a document out of range, keys missing */
        static const struct { uint32_t doc; uint64_t key; size_t nkeys; const char *msg; } bad[] = {
            { 0, 12345, 1, "another key" }, { 999, 0, 1, "out of range" }, { 0, 0, 0, "keys: 0 for 1 docs" },
        };
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            uint32_t d = bad[b].doc;
            uint64_t k = bad[b].key;
            fr.docs = &d;
            fr.n_docs = 1;
            fr.keys = &k;
            fr.n_keys = bad[b].nkeys;
            m = NULL;
            cr_assert_eq(rpc_client_call(c, RPC_METHOD_SHARD_FETCH, &fr.base,
                                         &funnel__v1__shard_fetch_response__descriptor, 5000, &m, &st),
                         GRPC_STATUS_INVALID_ARGUMENT, "case %zu", b);
            cr_assert(strstr(st.message, bad[b].msg), "%s", st.message);
        }
        protobuf_c_message_free_unpacked(&full->base, NULL);
        protobuf_c_message_free_unpacked(&bare->base, NULL);
        rpc_client_destroy(c);
        tshard_stop(&t);
    }
}

Test(shard, validation_errors_name_the_field)
{
    shard_config cfg;
    base_cfg(&cfg);
    tshard t;
    cr_assert_eq(tshard_start(&t, &cfg), 0, "%s", t.err);
    rpc_client_t *c = rpc_client_create(t.target);
    Funnel__V1__ShardSearchResponse *r;
    rpc_status st;
    cr_assert_eq(search(c, "", 10, 0, &r, &st), GRPC_STATUS_INVALID_ARGUMENT);
    cr_assert(strncmp(st.message, "query:", 6) == 0, "%s", st.message);
    cr_assert_eq(search(c, "  \t ", 10, 0, &r, &st), GRPC_STATUS_INVALID_ARGUMENT);
    cr_assert(strncmp(st.message, "query:", 6) == 0, "%s", st.message);
    cr_assert_eq(search(c, "wing", 0, 0, &r, &st), GRPC_STATUS_INVALID_ARGUMENT);
    cr_assert(strncmp(st.message, "k:", 2) == 0, "%s", st.message);
    cr_assert_eq(search(c, "wing", 101, 0, &r, &st), GRPC_STATUS_INVALID_ARGUMENT);
    cr_assert_str_eq(st.message, "k: 101 is more than max-k 100");
    cr_assert_eq(search(c, "wing", 100, 0, &r, &st), GRPC_STATUS_OK);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* Admin/Status counts them. */
    Funnel__V1__StatusRequest sreq = FUNNEL__V1__STATUS_REQUEST__INIT;
    ProtobufCMessage *resp;
    cr_assert_eq(rpc_client_call(c, RPC_METHOD_ADMIN_STATUS, &sreq.base,
                                 &funnel__v1__status_response__descriptor, 5000, &resp, &st),
                 GRPC_STATUS_OK, "%s", st.message);
    Funnel__V1__StatusResponse *sr = (Funnel__V1__StatusResponse *)resp;
    cr_assert_str_eq(sr->role, "shard");
    cr_assert_eq(sr->pid, (uint32_t)getpid());
    cr_assert_eq(sr->requests, 5);
    cr_assert_eq(sr->errors, 4);
    cr_assert_eq(sr->docs, 5);
    cr_assert_eq(sr->shards, 1);
    cr_assert_str_eq(sr->index_dir, shard_dir);
    protobuf_c_message_free_unpacked(resp, NULL);
    cr_assert_eq(rpc_health_check(c, 5000), 1);
    rpc_client_destroy(c);
    tshard_stop(&t);
}

typedef struct load_arg {
    const char *target;
    int ok;
} load_arg;

static void *load(void *p)
{
    load_arg *a = p;
    rpc_client_t *c = rpc_client_create(a->target);
    static const char *qs[] = {"wing", "boundary layer", "heat", "supersonic wing", "shock"};
    static const size_t want[] = {2, 3, 1, 2, 1};
    for (int i = 0; i < 40; i++) {
        Funnel__V1__ShardSearchResponse *r;
        rpc_status st;
        if (search(c, qs[i % 5], 10, i % 2, &r, &st) == GRPC_STATUS_OK) {
            a->ok += r->n_hits == want[i % 5];
            protobuf_c_message_free_unpacked(&r->base, NULL);
        }
    }
    rpc_client_destroy(c);
    return NULL;
}

Test(shard, concurrent_searches_agree)
{
    shard_config cfg;
    base_cfg(&cfg);
    tshard t;
    cr_assert_eq(tshard_start(&t, &cfg), 0, "%s", t.err);
    pthread_t th[6];
    load_arg la[6];
    for (int i = 0; i < 6; i++) {
        la[i] = (load_arg){t.target, 0};
        pthread_create(&th[i], NULL, load, &la[i]);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(la[i].ok, 40, "client %d: %d/40 correct", i, la[i].ok);
    }
    tshard_stop(&t);
}

Test(shard, bad_index_dir_fails_to_start)
{
    shard_config cfg;
    base_cfg(&cfg);
    snprintf(cfg.index_dir, sizeof cfg.index_dir, "%s/nope", tmpdir);
    tshard t;
    cr_assert_neq(tshard_start(&t, &cfg), 0);
    cr_assert(strstr(t.err, "nope") != NULL, "message names the directory: %s", t.err);
    cr_assert_eq(t.loop_close_rc, 0);
}

/* A shard called directly is as strict as the coordinator (common/fn_query.c)
 * and bounds the work of one request: words, distinct terms, explain hits,
 * reply size. */
Test(shard, limits_apply_to_direct_calls)
{
    shard_config cfg;
    base_cfg(&cfg);
    cfg.max_query_bytes = 64;
    cfg.max_query_words = 6;
    cfg.max_query_terms = 3;
    cfg.max_explain_hits = 1;
    tshard t;
    cr_assert_eq(tshard_start(&t, &cfg), 0, "%s", t.err);
    rpc_client_t *c = rpc_client_create(t.target);
    Funnel__V1__ShardSearchResponse *r;
    rpc_status st;
    static const struct { const char *q, *msg; } bad[] = {
        { "\xe3\x80\x80\xe3\x80\x80", "query: must not be blank" },            /* U+3000 only */
        { "wing \xff", "query: not valid UTF-8" },
        { "wing wing wing wing wing wing wing wing wing wing wing wing wing", "query: 64 bytes" },
        { "a b c d e f g", "query: more than 6 words (max-query-words)" },
        { "wing boundary heat shock", "query: 4 distinct terms after analysis, over the limit of 3 (max-query-terms)" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char q[80];
        snprintf(q, sizeof q, "%s", bad[i].q);
        if (strncmp(bad[i].msg, "query: 64", 9) == 0) { memset(q, 'w', 65); q[65] = '\0'; }
        cr_assert_eq(search(c, q, 10, 0, &r, &st), GRPC_STATUS_INVALID_ARGUMENT, "accepted '%s'", q);
        cr_assert(strncmp(st.message, bad[i].msg, strlen(bad[i].msg)) == 0 ||
                  (strncmp(bad[i].msg, "query: 64", 9) == 0 && strstr(st.message, "max-query-bytes")),
                  "'%s': got '%s'", q, st.message);
    }
    /* a repeated word is one term: allowed */
    cr_assert_eq(search(c, "wing wing boundary", 10, 1, &r, &st), GRPC_STATUS_OK, "%s", st.message);
    cr_assert_geq(r->n_hits, 2);
    cr_assert_gt(r->hits[0]->n_terms, 0, "the first hit is explained");
    for (size_t i = 1; i < r->n_hits; i++)
        cr_assert_eq(r->hits[i]->n_terms, 0, "hit %zu is past max-explain-hits", i);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    rpc_client_destroy(c);
    tshard_stop(&t);

    /* a reply over max-reply-bytes is refused, naming the cap */
    base_cfg(&cfg);
    cfg.max_reply_bytes = 250;   /* a reply of 1 hit fits, one of 3 does not */
    cr_assert_eq(tshard_start(&t, &cfg), 0, "%s", t.err);
    c = rpc_client_create(t.target);
    cr_assert_eq(search(c, "boundary layer", 10, 0, &r, &st), GRPC_STATUS_RESOURCE_EXHAUSTED);
    cr_assert(strstr(st.message, "max-reply-bytes") != NULL, "%s", st.message);
    cr_assert_eq(search(c, "heat", 10, 0, &r, &st), GRPC_STATUS_OK, "a small reply still fits: %s", st.message);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    rpc_client_destroy(c);
    tshard_stop(&t);
}

/* A shard whose index changes under it (a sealed file never does) stops
 * serving it: DATA_LOSS naming the damage, Health NOT_SERVING, and later
 * searches refused without reading the file. */
Test(shard, damaged_index_turns_not_serving)
{
    shard_config cfg;
    base_cfg(&cfg);
    tshard t;
    cr_assert_eq(tshard_start(&t, &cfg), 0, "%s", t.err);
    rpc_client_t *c = rpc_client_create(t.target);
    Funnel__V1__ShardSearchResponse *r;
    rpc_status st;
    cr_assert_eq(search(c, "wing", 10, 0, &r, &st), GRPC_STATUS_OK, "%s", st.message);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    cr_assert_eq(rpc_health_check(c, 5000), 1);

    char path[600];
    snprintf(path, sizeof path, "%s/data.mdb", shard_dir);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, 100, SEEK_SET), 0);
    int ch = fgetc(f);
    cr_assert_eq(fseek(f, 100, SEEK_SET), 0);
    fputc(ch ^ 0x5a, f);
    fclose(f);

    cr_assert_eq(search(c, "wing", 10, 0, &r, &st), GRPC_STATUS_DATA_LOSS, "%s", st.message);
    cr_assert(strstr(st.message, "data.mdb") != NULL, "%s", st.message);
    cr_assert_eq(rpc_health_check(c, 5000), 0, "NOT_SERVING after damage");
    cr_assert_eq(search(c, "heat", 10, 0, &r, &st), GRPC_STATUS_DATA_LOSS);
    cr_assert(strstr(st.message, "not serving") != NULL, "%s", st.message);
    rpc_client_destroy(c);
    tshard_stop(&t);

    /* and a restart refuses the damaged file, naming it */
    cr_assert_neq(tshard_start(&t, &cfg), 0);
    cr_assert(strstr(t.err, "checksum") != NULL || strstr(t.err, "damaged") != NULL, "%s", t.err);
}

/* ---- the result page's signals (issue 11): page_signals -------------------- */

#include <lmdb.h>
#include <math.h>

#include "cfilter.h"
#include "dupsig.h"
#include "format.h"
#include "integrity.h"

static const char *const sig_corpus[][3] = {   /* id, title, body */
    { "p1", "wing theory", "lift of a swept wing in subsonic flow" },
    { "p2", "win cash now", "click here to win free cash prize money today, limited offer" },
    { "p3", "wing tests", "wind tunnel tests of a delta wing at high angle of attack" },
    { "p4", "cheap pills", "buy cheap pills online, discount pharmacy, order now" },
    { "p5", "wing flutter", "flutter of a wing with an aileron" },
};

static cfilter_model_t *tiny_model(void)
{
    /* a tiny separable training set: spam words against aerodynamics */
    static const char *spam[] = { "win cash prize now", "free money click here", "cheap pills discount order",
                                  "limited offer buy now", "casino bonus winner", "earn income from home" };
    static const char *ham[] = { "boundary layer flow", "shock wave interaction", "heat transfer in a tube",
                                 "supersonic wing lift", "buckling of thin shells", "laminar jet mixing" };
    cfilter_doc d[48];
    char ids[48][16];
    for (int i = 0; i < 48; i++) {
        snprintf(ids[i], sizeof ids[i], "t%d", i);
        const char *b = i % 2 ? spam[(i / 2) % 6] : ham[(i / 2) % 6];
        d[i] = (cfilter_doc){ .id = ids[i], .idlen = strlen(ids[i]), .title = "", .tlen = 0, .body = b,
                              .blen = strlen(b), .positive = i % 2 };
    }
    cfilter_train_opts o;
    cfilter_train_defaults(&o);
    o.buckets = 1u << 12;
    cfilter_model_t *m = NULL;
    cfilter_train_report rep;
    fn_errbuf eb = {{0}};
    cr_assert_eq(cfilter_train(d, 48, &o, &m, &rep, &eb), 0, "%s", eb.msg);
    return m;
}

static double sig_filter_cb(void *ud, const char *t, size_t tl, const char *b, size_t bl, const void *json)
{
    (void)json;
    return cfilter_score(ud, t, tl, b, bl);
}

static cfilter_model_t *sig_model;

static void sig_setup(void)
{
    rpc_init();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/funnel-test-shard-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    char in[300], out[300];
    snprintf(in, sizeof in, "%s/corpus.jsonl", tmpdir);
    snprintf(out, sizeof out, "%s/idx", tmpdir);
    FILE *f = fopen(in, "w");
    for (size_t i = 0; i < sizeof sig_corpus / sizeof *sig_corpus; i++)
        fprintf(f, "{\"id\":\"%s\",\"title\":\"%s\",\"body\":\"%s\",\"vertical\":\"%s\"}\n", sig_corpus[i][0],
                sig_corpus[i][1], sig_corpus[i][2], i % 2 ? "ads" : "science");
    fclose(f);
    sig_model = tiny_model();
    idx_build_opts o;
    memset(&o, 0, sizeof o);
    o.input = in;
    o.out_dir = out;
    o.shards = 1;
    o.filter_score = sig_filter_cb;
    o.filter_ud = sig_model;
    o.filter_model = "tiny.model";
    o.filter_threshold = cfilter_model_threshold(sig_model);
    o.filter_strict = cfilter_model_strict(sig_model);
    fn_errbuf eb = {{0}};
    idx_build_stats st;
    int rc = idx_build(&o, &st, &eb);
    cr_assert_eq(rc, 0, "idx_build: %s", fn_errmsg(&eb, rc));
    cr_assert_eq(st.filter_docs, 5);
    snprintf(shard_dir, sizeof shard_dir, "%s/shard-000", out);
}

static void sig_teardown(void)
{
    cfilter_model_free(sig_model);
    teardown();
}

TestSuite(shard_signals, .init = sig_setup, .fini = sig_teardown, .timeout = 60);

static grpc_status_code search_signals(rpc_client_t *c, const char *q, int signals,
                                       Funnel__V1__ShardSearchResponse **out, rpc_status *st)
{
    Funnel__V1__ShardSearchRequest req = FUNNEL__V1__SHARD_SEARCH_REQUEST__INIT;
    req.query = (char *)q;
    req.k = 10;
    req.page_signals = signals;
    ProtobufCMessage *resp = NULL;
    grpc_status_code code = rpc_client_call(c, RPC_METHOD_SHARD_SEARCH, &req.base,
                                            &funnel__v1__shard_search_response__descriptor, 5000, &resp, st);
    *out = (Funnel__V1__ShardSearchResponse *)resp;
    return code;
}

static size_t sig_doc(const char *id)
{
    for (size_t i = 0; i < sizeof sig_corpus / sizeof *sig_corpus; i++)
        if (strcmp(sig_corpus[i][0], id) == 0) return i;
    cr_assert_fail("unknown id %s", id);
    return 0;
}

/* Every hit carries what the builder computed: the model's score of its
 * title and body, its signature, its vertical; the response the model's
 * name and thresholds. Without page_signals: no signals, the meta still. */
Test(shard_signals, page_signals_are_the_builders)
{
    shard_config cfg;
    base_cfg(&cfg);
    tshard t;
    cr_assert_eq(tshard_start(&t, &cfg), 0, "%s", t.err);
    rpc_client_t *c = rpc_client_create(t.target);
    Funnel__V1__ShardSearchResponse *r;
    rpc_status st;
    const char *queries[] = { "wing", "win cash pills", "wing cheap" };
    int spam_high = 0;
    for (size_t q = 0; q < 3; q++) {
        cr_assert_eq(search_signals(c, queries[q], 1, &r, &st), GRPC_STATUS_OK, "%s", st.message);
        cr_assert_gt(r->n_hits, 0);
        cr_assert_str_eq(r->filter_model, "tiny.model");
        cr_assert_eq(r->filter_threshold, cfilter_model_threshold(sig_model));
        cr_assert_eq(r->filter_strict, cfilter_model_strict(sig_model));
        for (size_t i = 0; i < r->n_hits; i++) {
            const Funnel__V1__ShardHit *h = r->hits[i];
            size_t d = sig_doc(h->id);
            const char *ti = sig_corpus[d][1], *bo = sig_corpus[d][2];
            cr_assert(h->has_filter_score, "%s", h->id);
            float want = (float)cfilter_score(sig_model, ti, strlen(ti), bo, strlen(bo));
            cr_assert_eq(h->filter_score, want, "%s: %.9g vs %.9g", h->id, h->filter_score, want);
            if (d % 2 && h->filter_score >= cfilter_model_threshold(sig_model)) spam_high++;
            uint8_t sig[IDX_DUPSIG_BYTES];
            idx_dupsig(ti, strlen(ti), bo, strlen(bo), sig);
            cr_assert_eq(h->dupsig.len, IDX_DUPSIG_BYTES);
            cr_assert_eq(memcmp(h->dupsig.data, sig, IDX_DUPSIG_BYTES), 0, "%s: signature", h->id);
            cr_assert_str_eq(h->vertical, d % 2 ? "ads" : "science");
        }
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    cr_assert_gt(spam_high, 0, "the spam documents score at or above the threshold");
    cr_assert_eq(search_signals(c, "wing", 0, &r, &st), GRPC_STATUS_OK, "%s", st.message);
    cr_assert_str_eq(r->filter_model, "tiny.model");
    for (size_t i = 0; i < r->n_hits; i++) {
        cr_assert_not(r->hits[i]->has_filter_score);
        cr_assert_eq(r->hits[i]->dupsig.len, 0);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    rpc_client_destroy(c);
    tshard_stop(&t);
}

/* Without stored fields (no_fields: the two-phase fetch) page_signals still
 * sends every hit's id and url (the host cap's key); dupsig_hits bounds the
 * signatures to the best N. */
Test(shard_signals, ids_urls_without_fields_and_dupsig_hits)
{
    shard_config cfg;
    base_cfg(&cfg);
    tshard t;
    cr_assert_eq(tshard_start(&t, &cfg), 0, "%s", t.err);
    rpc_client_t *c = rpc_client_create(t.target);
    Funnel__V1__ShardSearchRequest req = FUNNEL__V1__SHARD_SEARCH_REQUEST__INIT;
    req.query = "wing cheap";
    req.k = 10;
    req.no_fields = 1;
    req.page_signals = 1;
    req.dupsig_hits = 2;
    ProtobufCMessage *resp = NULL;
    rpc_status st;
    cr_assert_eq(rpc_client_call(c, RPC_METHOD_SHARD_SEARCH, &req.base, &funnel__v1__shard_search_response__descriptor,
                                 5000, &resp, &st), GRPC_STATUS_OK, "%s", st.message);
    Funnel__V1__ShardSearchResponse *r = (Funnel__V1__ShardSearchResponse *)resp;
    cr_assert_gt(r->n_hits, 2);
    for (size_t i = 0; i < r->n_hits; i++) {
        const Funnel__V1__ShardHit *h = r->hits[i];
        cr_assert(h->id && *h->id, "hit %zu has no id", i);
        sig_doc(h->id);   /* a real one */
        cr_assert_str_eq(h->title, "", "no_fields: no title");
        cr_assert(h->url != NULL);
        cr_assert_eq(h->dupsig.len, i < 2 ? IDX_DUPSIG_BYTES : 0, "hit %zu", i);
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    rpc_client_destroy(c);
    tshard_stop(&t);
}

/* A docsig value with a right sum but the wrong length (the file resealed,
 * so the shard opens it): a page_signals search fails with DATA_LOSS naming
 * the value; one without page_signals does not read it. */
Test(shard_signals, damaged_docsig_is_data_loss)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, IDX_MAX_DBS);
    cr_assert_eq(mdb_env_open(env, shard_dir, MDB_NOLOCK, 0644), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, IDX_DB_DOCSIG, 0, &dbi), 0);
    uint8_t v[IDX_DOCSIG_BYTES - 1] = { 0 }, dk[4];
    MDB_val k = { 4, dk }, val = { sizeof v, v };
    for (uint32_t d = 0; d < 5; d++) {
        idx_put_u32be(dk, d);
        idx_put_u32le(v, idx_sum32(v + 4, sizeof v - 4, d));
        cr_assert_eq(mdb_put(txn, dbi, &k, &val, 0), 0);
    }
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    char f[600];
    snprintf(f, sizeof f, "%s/data.mdb", shard_dir);
    uint64_t hash, bytes;
    fn_errbuf eb = {{0}};
    cr_assert_eq(idx_file_hash(f, &hash, &bytes, &eb), 0, "%s", eb.msg);
    cr_assert_eq(idx_checksum_write(shard_dir, hash, bytes, &eb), 0, "%s", eb.msg);

    shard_config cfg;
    base_cfg(&cfg);
    tshard t;
    cr_assert_eq(tshard_start(&t, &cfg), 0, "%s", t.err);
    rpc_client_t *c = rpc_client_create(t.target);
    Funnel__V1__ShardSearchResponse *r;
    rpc_status st;
    cr_assert_eq(search_signals(c, "wing", 0, &r, &st), GRPC_STATUS_OK, "%s", st.message);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    cr_assert_eq(search_signals(c, "wing", 1, &r, &st), GRPC_STATUS_DATA_LOSS, "%s", st.message);
    cr_assert(strstr(st.message, "docsig of doc") && strstr(st.message, "bytes, want"), "%s", st.message);
    rpc_client_destroy(c);
    tshard_stop(&t);
}
