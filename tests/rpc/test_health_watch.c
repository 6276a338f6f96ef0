/* test_health_watch.c - grpc.health.v1.Health/Watch (rpc_server.c) against
 * a real server on loopback (its own thread and uv loop), watched by real
 * server-streaming calls made with the gRPC C core: the first status at
 * once, changes as they happen, SERVICE_UNKNOWN as a message, the end of the
 * stream on server stop, the watcher cap and a cancel that frees a slot. */
#include <criterion/criterion.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "funnel.pb-c.h"
#include "health.pb-c.h"
#include "rpc_client.h"
#include "rpc_server.h"

#define M_SAY "/funnel.test.Echo/Say"
#define M_WATCH "/grpc.health.v1.Health/Watch"

enum { SERVING = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING,
       NOT_SERVING = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING,
       SERVICE_UNKNOWN = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN,
       END_OF_STREAM = -1, TIMED_OUT = -2 };

/* ---- the server, on its own loop thread ---------------------------------- */

typedef struct tsrv {
    pthread_t th;
    uv_loop_t loop;
    uv_async_t stop_async, poke_async;
    rpc_server_t *srv;
    atomic_int want_serving;      /* applied by poke_async on the loop thread */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready, start_rc, stopped, loop_close_rc;
    char target[64];
} tsrv;

static void say(rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
    (void)req;
    (void)ud;
    rpc_call_reply(call, GRPC_STATUS_UNIMPLEMENTED, "not used here", NULL);
}

static void on_stopped(void *ud) { ((tsrv *)ud)->stopped = 1; }

static void on_stop_async(uv_async_t *a)
{
    tsrv *t = a->data;
    rpc_server_stop(t->srv, on_stopped, t);
    uv_close((uv_handle_t *)&t->poke_async, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static void on_poke(uv_async_t *a)
{
    tsrv *t = a->data;
    rpc_server_set_serving(t->srv, atomic_load(&t->want_serving));
}

static void *srv_main(void *arg)
{
    tsrv *t = arg;
    uv_loop_init(&t->loop);
    uv_async_init(&t->loop, &t->stop_async, on_stop_async);
    uv_async_init(&t->loop, &t->poke_async, on_poke);
    t->stop_async.data = t->poke_async.data = t;
    rpc_method methods[] = {{M_SAY, &funnel__v1__shard_search_request__descriptor, say, t}};
    rpc_server_opts o = {.addr = "127.0.0.1:0", .methods = methods, .nmethods = 1};
    fn_errbuf eb = {{0}};
    int rc = rpc_server_start(&t->loop, &o, &t->srv, &eb);
    pthread_mutex_lock(&t->mu);
    t->start_rc = rc;
    if (rc == 0) snprintf(t->target, sizeof t->target, "127.0.0.1:%d", rpc_server_port(t->srv));
    t->ready = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    if (rc != 0) {
        uv_close((uv_handle_t *)&t->stop_async, NULL);
        uv_close((uv_handle_t *)&t->poke_async, NULL);
    }
    uv_run(&t->loop, UV_RUN_DEFAULT);
    t->loop_close_rc = uv_loop_close(&t->loop);
    return NULL;
}

static void tsrv_start(tsrv *t)
{
    memset(t, 0, sizeof *t);
    atomic_init(&t->want_serving, 1);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    pthread_create(&t->th, NULL, srv_main, t);
    pthread_mutex_lock(&t->mu);
    while (!t->ready) pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    cr_assert_eq(t->start_rc, 0, "server start failed: %d", t->start_rc);
}

static void tsrv_set_serving(tsrv *t, int serving)
{
    atomic_store(&t->want_serving, serving);
    uv_async_send(&t->poke_async);
}

/* Stop without waiting (the watchers' last messages are read meanwhile). */
static void tsrv_stop_begin(tsrv *t) { uv_async_send(&t->stop_async); }

static void tsrv_stop_wait(tsrv *t)
{
    pthread_join(t->th, NULL);
    cr_assert(t->stopped, "done callback did not run");
    cr_assert_eq(t->loop_close_rc, 0, "handles left on the loop");
}

/* ---- a watching client: one server-streaming call, one batch at a time -- */

typedef struct wclient {
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_byte_buffer *send_bb, *recv_bb;
    grpc_metadata_array imd, tmd;
    grpc_status_code status;
    grpc_slice details;
    int ended;                    /* RECV_STATUS_ON_CLIENT done */
} wclient;

/* Wait for the one batch in flight. */
static int wc_wait(wclient *w, int64_t ms)
{
    gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_next(w->cq, dl, NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT) return TIMED_OUT;
    cr_assert_eq(ev.type, GRPC_OP_COMPLETE);
    return ev.success;
}

static void wc_batch(wclient *w, grpc_op *ops, size_t n)
{
    cr_assert_eq(grpc_call_start_batch(w->call, ops, n, w, NULL), GRPC_CALL_OK);
}

/* Start Watch(service) on ch: request sent, initial metadata awaited (the
 * server sends it with its first message, or with an error status). */
static void wc_start(wclient *w, grpc_channel *ch, const char *service)
{
    memset(w, 0, sizeof *w);
    w->cq = grpc_completion_queue_create_for_next(NULL);
    w->details = grpc_empty_slice();
    grpc_metadata_array_init(&w->imd);
    grpc_metadata_array_init(&w->tmd);
    gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(30, GPR_TIMESPAN));
    w->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, w->cq,
                                       grpc_slice_from_static_string(M_WATCH), NULL, dl, NULL);
    cr_assert_not_null(w->call);
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)service;
    size_t len = protobuf_c_message_get_packed_size(&req.base);
    grpc_slice sl = grpc_slice_malloc(len);
    protobuf_c_message_pack(&req.base, GRPC_SLICE_START_PTR(sl));
    w->send_bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = w->send_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &w->imd;
    wc_batch(w, ops, 4);
    cr_assert_eq(wc_wait(w, 10000), 1, "Watch(%s): no initial metadata", service);
}

/* The next streamed status, END_OF_STREAM or TIMED_OUT. */
static int wc_next(wclient *w, int64_t ms)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &w->recv_bb;
    wc_batch(w, &op, 1);
    int ok = wc_wait(w, ms);
    cr_assert_neq(ok, TIMED_OUT, "no message within %lld ms", (long long)ms);
    if (!w->recv_bb) return END_OF_STREAM;
    grpc_byte_buffer_reader r;
    cr_assert(grpc_byte_buffer_reader_init(&r, w->recv_bb));
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    grpc_byte_buffer_destroy(w->recv_bb);
    w->recv_bb = NULL;
    Grpc__Health__V1__HealthCheckResponse *m = grpc__health__v1__health_check_response__unpack(
        NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    cr_assert_not_null(m, "not a HealthCheckResponse");
    int st = (int)m->status;
    protobuf_c_message_free_unpacked(&m->base, NULL);
    return st;
}

/* The call's final status (after reading every message). */
static grpc_status_code wc_status(wclient *w, char *details, size_t cap)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &w->tmd;
    op.data.recv_status_on_client.status = &w->status;
    op.data.recv_status_on_client.status_details = &w->details;
    wc_batch(w, &op, 1);
    cr_assert_eq(wc_wait(w, 10000), 1, "no status");
    w->ended = 1;
    if (details) {
        size_t n = GRPC_SLICE_LENGTH(w->details);
        if (n >= cap) n = cap - 1;
        memcpy(details, GRPC_SLICE_START_PTR(w->details), n);
        details[n] = '\0';
    }
    return w->status;
}

static void wc_cancel(wclient *w)
{
    grpc_call_cancel(w->call, NULL);
    cr_assert_eq(wc_status(w, NULL, 0), GRPC_STATUS_CANCELLED);
}

static void wc_free(wclient *w)
{
    if (!w->ended) wc_cancel(w);
    grpc_call_unref(w->call);
    grpc_byte_buffer_destroy(w->send_bb);
    grpc_metadata_array_destroy(&w->imd);
    grpc_metadata_array_destroy(&w->tmd);
    grpc_slice_unref(w->details);
    grpc_completion_queue_shutdown(w->cq);
    while (grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type
           != GRPC_QUEUE_SHUTDOWN) {}
    grpc_completion_queue_destroy(w->cq);
}

static grpc_channel *channel(const char *target)
{
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, cr, NULL);
    grpc_channel_credentials_release(cr);
    return ch;
}

static void setup(void) { rpc_init(); }
static void teardown(void) { rpc_shutdown(); }

TestSuite(health_watch, .init = setup, .fini = teardown, .timeout = 60);

Test(health_watch, status_now_then_changes_then_stop)
{
    tsrv s;
    tsrv_start(&s);
    grpc_channel *ch = channel(s.target);
    wclient all, svc, unknown;
    wc_start(&all, ch, "");
    cr_assert_eq(wc_next(&all, 5000), SERVING, "the current status at once");
    wc_start(&svc, ch, "funnel.test.Echo");
    cr_assert_eq(wc_next(&svc, 5000), SERVING);
    wc_start(&unknown, ch, "funnel.test.Nope");
    cr_assert_eq(wc_next(&unknown, 5000), SERVICE_UNKNOWN, "a message, not an error");

    tsrv_set_serving(&s, 0);
    cr_assert_eq(wc_next(&all, 5000), NOT_SERVING, "the change is pushed");
    cr_assert_eq(wc_next(&svc, 5000), NOT_SERVING);
    tsrv_set_serving(&s, 1);
    cr_assert_eq(wc_next(&all, 5000), SERVING);
    cr_assert_eq(wc_next(&svc, 5000), SERVING);

    /* Check agrees with what Watch streamed. */
    rpc_client_t *c = rpc_client_create(s.target);
    cr_assert_eq(rpc_health_check(c, 5000), 1);
    rpc_client_destroy(c);

    /* Stop: NOT_SERVING to the known ones, then every stream ends with
     * UNAVAILABLE (the unknown one never got a new status). */
    tsrv_stop_begin(&s);
    char why[128];
    cr_assert_eq(wc_next(&all, 5000), NOT_SERVING);
    cr_assert_eq(wc_next(&all, 5000), END_OF_STREAM);
    cr_assert_eq(wc_status(&all, why, sizeof why), GRPC_STATUS_UNAVAILABLE);
    cr_assert_str_eq(why, "server shutting down");
    cr_assert_eq(wc_next(&svc, 5000), NOT_SERVING);
    cr_assert_eq(wc_next(&svc, 5000), END_OF_STREAM);
    cr_assert_eq(wc_status(&svc, NULL, 0), GRPC_STATUS_UNAVAILABLE);
    cr_assert_eq(wc_next(&unknown, 5000), END_OF_STREAM);
    cr_assert_eq(wc_status(&unknown, NULL, 0), GRPC_STATUS_UNAVAILABLE);
    tsrv_stop_wait(&s);   /* the watchers did not hold the stop up */
    wc_free(&all);
    wc_free(&svc);
    wc_free(&unknown);
    grpc_channel_destroy(ch);
}

Test(health_watch, cap_and_cancel_frees_a_slot)
{
    tsrv s;
    tsrv_start(&s);
    grpc_channel *ch = channel(s.target);
    static wclient w[RPC_HEALTH_MAX_WATCHERS];
    for (int i = 0; i < RPC_HEALTH_MAX_WATCHERS; i++) {
        wc_start(&w[i], ch, "");
        cr_assert_eq(wc_next(&w[i], 5000), SERVING, "watcher %d", i);
    }
    /* One over the cap: refused with a status, not queued. */
    wclient extra;
    char why[128];
    wc_start(&extra, ch, "");
    cr_assert_eq(wc_next(&extra, 5000), END_OF_STREAM);
    cr_assert_eq(wc_status(&extra, why, sizeof why), GRPC_STATUS_RESOURCE_EXHAUSTED);
    cr_assert_str_eq(why, "too many health watchers");
    wc_free(&extra);

    /* A client cancel frees its watcher: a new watch fits again (once the
     * server has seen the cancel). */
    wc_cancel(&w[0]);
    wc_free(&w[0]);
    int got = END_OF_STREAM;
    for (int tries = 0; tries < 100 && got != SERVING; tries++) {
        wc_start(&w[0], ch, "");
        got = wc_next(&w[0], 5000);
        if (got != SERVING) {
            cr_assert_eq(wc_status(&w[0], NULL, 0), GRPC_STATUS_RESOURCE_EXHAUSTED);
            wc_free(&w[0]);
            nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
        }
    }
    cr_assert_eq(got, SERVING, "the cancelled watcher's slot was never freed");

    /* Every watcher, the new one included, gets the change. */
    tsrv_set_serving(&s, 0);
    for (int i = 0; i < RPC_HEALTH_MAX_WATCHERS; i++)
        cr_assert_eq(wc_next(&w[i], 5000), NOT_SERVING, "watcher %d", i);

    /* Cancel them all, then stop (cleanly, whether or not the server has
     * seen every cancel yet). */
    for (int i = 0; i < RPC_HEALTH_MAX_WATCHERS; i++) wc_free(&w[i]);
    tsrv_stop_begin(&s);
    tsrv_stop_wait(&s);
    grpc_channel_destroy(ch);
}
