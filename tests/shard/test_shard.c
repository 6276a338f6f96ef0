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
