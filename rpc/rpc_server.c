/* rpc_server.c - asynchronous gRPC server on a libuv loop (see rpc_server.h).
 *
 * One completion queue bridged into the loop (uvg_bridge). One request is
 * kept armed per registered method plus one generic request for unknown
 * methods (without it they hang until the deadline: field guide pitfall 1).
 * Every tag is a struct whose first member is a uvg_tag, so the bridge can
 * dispatch it on the loop thread (a health watcher has two tags, found back
 * with offsetof).
 */
#include "rpc_server.h"

#include <errno.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fn_log.h"
#include "health.pb-c.h"
#include "pbbuf.h"
#include "rpc_security.h"
#include "uvg_bridge.h"

#define HEALTH_PATH "/grpc.health.v1.Health/Check"
#define HEALTH_WATCH_PATH "/grpc.health.v1.Health/Watch"
#define DEFAULT_MAX_MSG (4u * 1024 * 1024)

typedef struct watcher watcher;

typedef struct srv_method {
    rpc_method m;
    void *handle;                 /* grpc_server_register_method() */
} srv_method;

struct rpc_server {
    uv_loop_t *loop;
    uvg_bridge bridge;
    grpc_server *server;
    srv_method *methods;          /* user methods + the health check */
    size_t nmethods;
    int port;
    int serving;
    int stopping;                 /* rpc_server_stop() called */
    int server_gone;              /* grpc_server_destroy() done */
    int bridge_closing;           /* uvg_bridge_shutdown() called */
    size_t async_inflight;        /* rpc_async_unary calls not yet completed */
    size_t handling;              /* calls handed to a handler, not replied yet */
    watcher *watchers;            /* open Health/Watch streams (a list) */
    size_t nwatchers;
    uvg_tag shutdown_tag;
    void (*done)(void *ud);
    void *done_ud;
};

typedef enum { CALL_REQUESTED, CALL_HANDLING, CALL_SENDING } call_phase;

struct rpc_call {
    uvg_tag tag;                  /* first member: the CQ tag */
    rpc_server_t *s;
    call_phase phase;
    int method;                   /* index into s->methods; -1 = generic */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array req_md;
    grpc_byte_buffer *req_payload;
    grpc_call_details gdetails;   /* generic requests only */
    ProtobufCMessage *req;
    grpc_byte_buffer *resp_payload;
    grpc_slice details;
    int cancelled;
    grpc_metadata trailer;        /* rpc_call_reply_pushback: grpc-retry-pushback-ms */
    int has_trailer;
};

static void on_call_event(uvg_tag *t, int ok);
static void maybe_close_bridge(rpc_server_t *s);

/* ---- per-call state ------------------------------------------------------ */

static rpc_call_t *call_new(rpc_server_t *s, int method)
{
    rpc_call_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->tag.on_done = on_call_event;
    c->s = s;
    c->phase = CALL_REQUESTED;
    c->method = method;
    c->details = grpc_empty_slice();
    grpc_metadata_array_init(&c->req_md);
    if (method < 0) grpc_call_details_init(&c->gdetails);
    return c;
}

static void call_free(rpc_call_t *c)
{
    if (c->call) grpc_call_unref(c->call);
    grpc_metadata_array_destroy(&c->req_md);
    if (c->method < 0) grpc_call_details_destroy(&c->gdetails);
    if (c->req_payload) grpc_byte_buffer_destroy(c->req_payload);
    if (c->resp_payload) grpc_byte_buffer_destroy(c->resp_payload);
    if (c->req) protobuf_c_message_free_unpacked(c->req, NULL);
    grpc_slice_unref(c->details);
    if (c->has_trailer) grpc_slice_unref(c->trailer.value);
    free(c);
}

/* Arm one request for method i (-1 = unknown methods). */
static void arm(rpc_server_t *s, int i)
{
    rpc_call_t *c = call_new(s, i);
    if (!c) {
        FN_ERROR("rpc: out of memory arming a request");
        return;
    }
    grpc_call_error e;
    if (i >= 0)
        e = grpc_server_request_registered_call(s->server, s->methods[i].handle, &c->call,
                                                &c->deadline, &c->req_md, &c->req_payload,
                                                s->bridge.cq, s->bridge.cq, &c->tag);
    else
        e = grpc_server_request_call(s->server, &c->call, &c->gdetails, &c->req_md,
                                     s->bridge.cq, s->bridge.cq, &c->tag);
    if (e != GRPC_CALL_OK) {
        /* Nothing was queued (pitfall 13): free right away. */
        FN_ERROR("rpc: request_call: %s", grpc_call_error_to_string(e));
        call_free(c);
    }
}

/* ---- replies ------------------------------------------------------------- */

void rpc_call_reply_pushback(rpc_call_t *c, grpc_status_code code, const char *details,
                             uint32_t retry_ms)
{
    /* gRPC's retry design (A6): the server's hint of when to try again, in
     * a trailer clients and proxies understand. */
    char v[16];
    snprintf(v, sizeof v, "%u", retry_ms);
    c->trailer.key = grpc_slice_from_static_string("grpc-retry-pushback-ms");
    c->trailer.value = grpc_slice_from_copied_string(v);
    c->has_trailer = 1;
    rpc_call_reply(c, code, details, NULL);
}

void rpc_call_reply(rpc_call_t *c, grpc_status_code code, const char *details,
                    const ProtobufCMessage *resp)
{
    if (resp && code == GRPC_STATUS_OK) c->resp_payload = pb_to_byte_buffer(resp);
    grpc_slice_unref(c->details);
    c->details = details ? grpc_slice_from_copied_string(details) : grpc_empty_slice();

    rpc_server_t *s = c->s;
    if (c->phase == CALL_HANDLING) s->handling--;
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);     /* flags/reserved must be 0 (pitfall 12) */
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (c->resp_payload) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->resp_payload;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n].data.send_status_from_server.status_details = &c->details;
    if (c->has_trailer) {
        ops[n].data.send_status_from_server.trailing_metadata_count = 1;
        ops[n].data.send_status_from_server.trailing_metadata = &c->trailer;
    }
    n++;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
    c->phase = CALL_SENDING;
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, &c->tag, NULL);
    if (e != GRPC_CALL_OK) {
        FN_ERROR("rpc: start_batch(reply): %s", grpc_call_error_to_string(e));
        call_free(c);
    }
    maybe_close_bridge(s);
}

int64_t rpc_call_ms_left(const rpc_call_t *c)
{
    gpr_timespec d = gpr_convert_clock_type(c->deadline, GPR_CLOCK_MONOTONIC);
    if (gpr_time_cmp(d, gpr_inf_future(GPR_CLOCK_MONOTONIC)) == 0) return INT64_MAX;
    return ms_until(d);
}

gpr_timespec rpc_call_deadline(const rpc_call_t *c)
{
    return gpr_convert_clock_type(c->deadline, GPR_CLOCK_MONOTONIC);
}

/* ---- built-in health check ---------------------------------------------- */

/* "" (the server as a whole) or the "pkg.Service" of one of our methods. */
static int service_known(const rpc_server_t *s, const char *service)
{
    if (!service || !service[0]) return 1;
    size_t sl = strlen(service);
    for (size_t i = 0; i < s->nmethods; i++) {
        const char *p = s->methods[i].m.path;
        if (p[0] == '/' && strncmp(p + 1, service, sl) == 0 && p[1 + sl] == '/') return 1;
    }
    return 0;
}

static void health_check(rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
    rpc_server_t *s = ud;
    const Grpc__Health__V1__HealthCheckRequest *hr =
        (const Grpc__Health__V1__HealthCheckRequest *)req;
    if (!service_known(s, hr->service)) {
        rpc_call_reply(call, GRPC_STATUS_NOT_FOUND, "unknown service", NULL);
        return;
    }
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = s->serving && !s->stopping
                      ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                      : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    rpc_call_reply(call, GRPC_STATUS_OK, NULL, &resp.base);
}

/* ---- built-in health watch (server streaming) ----------------------------
 *
 * grpc.health.v1.Health/Watch: the current status at once, then one message
 * per change, the stream open until the client cancels or the server stops.
 * An unknown service gets SERVICE_UNKNOWN as a message, not an error (the
 * spec: the call stays open). Each watcher owns its grpc_call; it keeps a
 * RECV_CLOSE_ON_SERVER batch pending (completes on client cancel or when the
 * call ends) and at most one send batch (one SEND_MESSAGE in flight at a
 * time, so changes made meanwhile are coalesced into the latest status). It
 * is freed when no batch of it is pending. On stop: NOT_SERVING, then status
 * UNAVAILABLE (the spec only says any status but UNIMPLEMENTED makes clients
 * re-watch with backoff; UNAVAILABLE says why). */

typedef Grpc__Health__V1__HealthCheckResponse__ServingStatus hstatus;

struct watcher {
    uvg_tag send_tag;             /* SEND_* batches */
    uvg_tag close_tag;            /* RECV_CLOSE_ON_SERVER */
    rpc_server_t *s;
    watcher *prev, *next;
    grpc_call *call;
    int known;                    /* the service asked for is ours */
    int sent;                     /* last status sent, -1: none yet */
    int pending;                  /* batches started and not completed */
    int sending;                  /* the send batch is in flight */
    int finished;                 /* SEND_STATUS_FROM_SERVER started */
    int over;                     /* closed by the peer or a send failed: send nothing more */
    int cancelled;
    grpc_byte_buffer *bb;
    grpc_slice details;
};

static hstatus watcher_status(const watcher *w)
{
    if (!w->known) return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
    return w->s->serving && !w->s->stopping
               ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
               : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

static void watcher_maybe_free(watcher *w)
{
    if (w->pending > 0) return;
    rpc_server_t *s = w->s;
    if (w->prev) w->prev->next = w->next;
    else s->watchers = w->next;
    if (w->next) w->next->prev = w->prev;
    s->nwatchers--;
    if (w->bb) grpc_byte_buffer_destroy(w->bb);
    grpc_slice_unref(w->details);
    grpc_call_unref(w->call);
    free(w);
    maybe_close_bridge(s);
}

/* Send what the watcher has not seen yet (the status, and the end of the
 * call when the server is stopping), unless a send is already in flight:
 * its completion calls this again. */
static void watcher_kick(watcher *w)
{
    if (w->over || w->sending || w->finished) return;
    int st = (int)watcher_status(w);
    int finish = w->s->stopping;
    if (st == w->sent && !finish) return;
    grpc_op ops[3];
    memset(ops, 0, sizeof ops);       /* pitfall 12 */
    size_t n = 0;
    if (w->sent < 0) ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (st != w->sent) {
        Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        r.status = (hstatus)st;
        w->bb = pb_to_byte_buffer(&r.base);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = w->bb;
    }
    if (finish) {
        grpc_slice_unref(w->details);
        w->details = grpc_slice_from_static_string("server shutting down");
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n].data.send_status_from_server.status = GRPC_STATUS_UNAVAILABLE;
        ops[n++].data.send_status_from_server.status_details = &w->details;
    }
    grpc_call_error e = grpc_call_start_batch(w->call, ops, n, &w->send_tag, NULL);
    if (e != GRPC_CALL_OK) {
        /* nothing queued (pitfall 13); the close batch still ends the call */
        FN_ERROR("rpc: start_batch(watch): %s", grpc_call_error_to_string(e));
        if (w->bb) grpc_byte_buffer_destroy(w->bb);
        w->bb = NULL;
        w->over = 1;
        grpc_call_cancel(w->call, NULL);
        return;
    }
    w->pending++;
    w->sending = 1;
    w->sent = st;
    w->finished = finish;
}

static void on_watch_sent(uvg_tag *t, int ok)
{
    watcher *w = (watcher *)((char *)t - offsetof(watcher, send_tag));
    w->pending--;
    w->sending = 0;
    if (w->bb) grpc_byte_buffer_destroy(w->bb);   /* ours after the batch (field guide 4) */
    w->bb = NULL;
    if (!ok) w->over = 1;                        /* the stream is gone */
    watcher_kick(w);                             /* a change that came meanwhile */
    watcher_maybe_free(w);
}

static void on_watch_closed(uvg_tag *t, int ok)
{
    (void)ok;
    watcher *w = (watcher *)((char *)t - offsetof(watcher, close_tag));
    if (w->cancelled) FN_DEBUG("rpc: health watch cancelled by the peer");
    w->pending--;
    w->over = 1;
    watcher_maybe_free(w);
}

static void watchers_update(rpc_server_t *s)
{
    for (watcher *w = s->watchers, *next; w; w = next) {
        next = w->next;              /* kick never frees, but keep it safe */
        watcher_kick(w);
    }
}

static void health_watch(rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
    rpc_server_t *s = ud;
    const Grpc__Health__V1__HealthCheckRequest *hr =
        (const Grpc__Health__V1__HealthCheckRequest *)req;
    if (s->stopping) {
        rpc_call_reply(call, GRPC_STATUS_UNAVAILABLE, "server shutting down", NULL);
        return;
    }
    /* Each watcher pins a call and its stream: bound them. */
    if (s->nwatchers >= RPC_HEALTH_MAX_WATCHERS) {
        rpc_call_reply(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many health watchers", NULL);
        return;
    }
    watcher *w = calloc(1, sizeof *w);
    if (!w) {
        rpc_call_reply(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return;
    }
    w->send_tag.on_done = on_watch_sent;
    w->close_tag.on_done = on_watch_closed;
    w->s = s;
    w->known = service_known(s, hr->service);
    w->sent = -1;
    w->details = grpc_empty_slice();
    /* The watcher takes over the call: the rpc_call is done with. */
    w->call = call->call;
    call->call = NULL;
    s->handling--;
    call_free(call);
    w->next = s->watchers;
    if (w->next) w->next->prev = w;
    s->watchers = w;
    s->nwatchers++;

    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &w->cancelled;
    grpc_call_error e = grpc_call_start_batch(w->call, &op, 1, &w->close_tag, NULL);
    if (e != GRPC_CALL_OK) {
        FN_ERROR("rpc: start_batch(watch close): %s", grpc_call_error_to_string(e));
        grpc_call_cancel(w->call, NULL);
        watcher_maybe_free(w);       /* nothing pending: goes now */
        return;
    }
    w->pending++;
    watcher_kick(w);
}

/* ---- CQ events (loop thread) -------------------------------------------- */

/* Does the request carry the admin token? (checked before the payload is
 * even parsed) */
static int admin_authorized(const rpc_call_t *c)
{
    int ok = 0;
    for (size_t i = 0; i < c->req_md.count; i++) {
        const grpc_metadata *md = &c->req_md.metadata[i];
        if (grpc_slice_str_cmp(md->key, "authorization") != 0) continue;
        /* no early exit: every header is checked the same way */
        ok |= rpc_security_check_bearer((const char *)GRPC_SLICE_START_PTR(md->value),
                                        GRPC_SLICE_LENGTH(md->value));
    }
    return ok;
}

static void on_request(rpc_call_t *c)
{
    rpc_server_t *s = c->s;
    if (!s->stopping) arm(s, c->method);      /* keep one armed per method */

    if (c->method < 0) {
        char msg[600];
        char *m = grpc_slice_to_c_string(c->gdetails.method);
        snprintf(msg, sizeof msg, "unknown method %s", m);
        gpr_free(m);
        rpc_call_reply(c, GRPC_STATUS_UNIMPLEMENTED, msg, NULL);
        return;
    }
    const rpc_method *m = &s->methods[c->method].m;
    if (rpc_security_is_admin(m->path) && rpc_admin_token_enabled() && !admin_authorized(c)) {
        FN_WARN("rpc: %s refused: no valid bearer token", m->path);
        rpc_call_reply(c, GRPC_STATUS_UNAUTHENTICATED,
                       "Admin calls need the metadata 'authorization: Bearer <token>' with the "
                       "server's admin token (admin-token-file)", NULL);
        return;
    }
    char why[300];
    c->req = pb_from_byte_buffer_checked(m->req_desc, c->req_payload, why, sizeof why);
    if (c->req_payload) {
        grpc_byte_buffer_destroy(c->req_payload);
        c->req_payload = NULL;
    }
    if (!c->req) {
        char msg[300];
        if (why[0]) snprintf(msg, sizeof msg, "%s", why);
        else snprintf(msg, sizeof msg, "cannot parse %s", m->req_desc->name);
        rpc_call_reply(c, GRPC_STATUS_INVALID_ARGUMENT, msg, NULL);
        return;
    }
    c->phase = CALL_HANDLING;
    s->handling++;
    m->handler(c, c->req, m->ud);
}

static void on_call_event(uvg_tag *t, int ok)
{
    rpc_call_t *c = (rpc_call_t *)t;
    switch (c->phase) {
    case CALL_REQUESTED:
        if (!ok) { call_free(c); return; }   /* server shutting down */
        on_request(c);
        return;
    case CALL_SENDING:
        if (c->cancelled) FN_DEBUG("rpc: call cancelled (deadline or peer)");
        call_free(c);
        return;
    case CALL_HANDLING:
        break;
    }
    FN_ERROR("rpc: unexpected CQ event in phase %d", (int)c->phase);
}

/* ---- start / stop -------------------------------------------------------- */

int rpc_server_start(uv_loop_t *loop, const rpc_server_opts *o, rpc_server_t **out,
                     fn_errbuf *eb)
{
    *out = NULL;
    if (!o || !o->addr || (o->nmethods && !o->methods))
        return fn_seterr(eb, FN_EINVAL, "rpc_server_start: bad options");
    for (size_t i = 0; i < o->nmethods; i++)
        if (!o->methods[i].path || o->methods[i].path[0] != '/' || !o->methods[i].req_desc ||
            !o->methods[i].handler)
            return fn_seterr(eb, FN_EINVAL, "rpc_server_start: bad method %zu", i);

    rpc_server_t *s = calloc(1, sizeof *s);
    if (!s) return fn_seterr(eb, -ENOMEM, "out of memory");
    s->methods = calloc(o->nmethods + 2, sizeof *s->methods);
    if (!s->methods) {
        free(s);
        return fn_seterr(eb, -ENOMEM, "out of memory");
    }
    s->loop = loop;
    s->serving = 1;
    for (size_t i = 0; i < o->nmethods; i++) s->methods[s->nmethods++].m = o->methods[i];
    int has_health = 0, has_watch = 0;
    for (size_t i = 0; i < s->nmethods; i++) {
        has_health |= strcmp(s->methods[i].m.path, HEALTH_PATH) == 0;
        has_watch |= strcmp(s->methods[i].m.path, HEALTH_WATCH_PATH) == 0;
    }
    if (!has_health)
        s->methods[s->nmethods++].m = (rpc_method){
            HEALTH_PATH, &grpc__health__v1__health_check_request__descriptor, health_check, s};
    if (!has_watch)
        s->methods[s->nmethods++].m = (rpc_method){
            HEALTH_WATCH_PATH, &grpc__health__v1__health_check_request__descriptor, health_watch, s};

    grpc_init();   /* our own ref, dropped when the server is freed */
    int rc = 0;

    size_t maxmsg = o->max_message_bytes ? o->max_message_bytes
                  : rpc_security_max_message() ? rpc_security_max_message() : DEFAULT_MAX_MSG;
    if (maxmsg > INT32_MAX) maxmsg = INT32_MAX;
    grpc_arg args[2] = {
        /* SO_REUSEPORT on would let a second server "bind" a busy port. */
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = (int)maxmsg},
    };
    grpc_channel_args cargs = {.num_args = 2, .args = args};
    s->server = grpc_server_create(&cargs, NULL);
    /* Methods must be registered before start (pitfall 3). */
    for (size_t i = 0; i < s->nmethods; i++) {
        s->methods[i].handle = grpc_server_register_method(
            s->server, s->methods[i].m.path, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        if (!s->methods[i].handle) {
            grpc_server_destroy(s->server);   /* legal: no listener yet */
            rc = fn_seterr(eb, FN_EINVAL, "cannot register method %s (duplicate?)",
                           s->methods[i].m.path);
            goto fail_server;
        }
    }
    grpc_server_credentials *creds = rpc_security_server_creds(eb);
    if (!creds) {
        grpc_server_destroy(s->server);       /* legal: no listener yet */
        rc = FN_EINVAL;
        goto fail_server;
    }
    s->port = grpc_server_add_http2_port(s->server, o->addr, creds);
    grpc_server_credentials_release(creds);
    if (s->port == 0) {
        grpc_server_destroy(s->server);       /* legal: never got a listener */
        rc = fn_seterr(eb, FN_EINVAL, "cannot listen on %s (bad address or port in use)",
                       o->addr);
        goto fail_server;
    }
    if (uvg_bridge_init(&s->bridge, loop) != 0) {
        rc = fn_seterr(eb, FN_ERPC, "cannot set up the completion queue bridge");
        goto fail_bridge;
    }
    s->bridge.data = s;
    grpc_server_register_completion_queue(s->server, s->bridge.cq, NULL);
    grpc_server_start(s->server);
    if (uvg_bridge_start(&s->bridge) != 0) {
        /* Thread creation failed: out of resources, and the started server
         * cannot be torn down without the poller. Give up loudly. */
        FN_ERROR("rpc: cannot start the completion queue thread");
        abort();
    }
    for (size_t i = 0; i < s->nmethods; i++) arm(s, (int)i);
    arm(s, -1);
    *out = s;
    return 0;

fail_bridge: {
        /* A server with a listener must be shut down before destroy
         * (pitfall 4): do it synchronously on a private CQ. */
        grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(s->server, cq, NULL);
        grpc_server_start(s->server);
        grpc_server_shutdown_and_notify(s->server, cq, s);
        grpc_server_destroy(s->server);
        grpc_completion_queue_shutdown(cq);
        while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type
               != GRPC_QUEUE_SHUTDOWN) {}
        grpc_completion_queue_destroy(cq);
    }
fail_server:
    free(s->methods);
    free(s);
    grpc_shutdown();
    return rc;
}

int rpc_server_port(const rpc_server_t *s) { return s->port; }

void rpc_server_set_serving(rpc_server_t *s, int serving)
{
    s->serving = serving != 0;
    watchers_update(s);
}

static void on_bridge_closed(uvg_bridge *b)
{
    rpc_server_t *s = b->data;
    void (*done)(void *) = s->done;
    void *ud = s->done_ud;
    free(s->methods);
    free(s);
    grpc_shutdown();
    if (done) done(ud);
}

/* The CQ may go only when nothing can post to it any more: the server is
 * destroyed, every async client call has completed, every handler has
 * replied and every health watcher is gone. (A call cancelled by its deadline no longer holds up the server
 * shutdown, but its late reply still starts a batch on our CQ.) */
static void maybe_close_bridge(rpc_server_t *s)
{
    if (!s->server_gone || s->async_inflight > 0 || s->handling > 0 || s->nwatchers > 0 ||
        s->bridge_closing)
        return;
    s->bridge_closing = 1;
    uvg_bridge_shutdown(&s->bridge, on_bridge_closed);
}

static void on_server_shutdown(uvg_tag *t, int ok)
{
    (void)ok;
    rpc_server_t *s = (rpc_server_t *)((char *)t - offsetof(rpc_server_t, shutdown_tag));
    grpc_server_destroy(s->server);
    s->server = NULL;
    s->server_gone = 1;
    maybe_close_bridge(s);
}

void rpc_server_stop(rpc_server_t *s, void (*done)(void *ud), void *ud)
{
    if (s->stopping) return;
    s->stopping = 1;
    s->serving = 0;
    s->done = done;
    s->done_ud = ud;
    /* Armed requests complete with ok=0; the tag comes once in-flight calls
     * have finished. */
    s->shutdown_tag.on_done = on_server_shutdown;
    grpc_server_shutdown_and_notify(s->server, s->bridge.cq, &s->shutdown_tag);
    /* Watch streams never end by themselves and would hold the shutdown
     * up: NOT_SERVING, then UNAVAILABLE. */
    watchers_update(s);
}

/* ---- outgoing async unary calls ----------------------------------------- */

typedef struct async_call {
    uvg_tag tag;                  /* first member: the CQ tag */
    rpc_server_t *s;
    grpc_call *call;
    const ProtobufCMessageDescriptor *resp_desc;
    ProtobufCAllocator *alloc;
    rpc_async_cb cb;
    void *ud;
    grpc_byte_buffer *send_bb, *recv_bb;
    grpc_metadata_array initial_md, trailing_md;
    grpc_status_code status;
    grpc_slice details;
    const char *error_string;
    grpc_metadata auth;           /* the bearer token on Admin calls */
    size_t nauth;
} async_call;

static void async_free(async_call *a)
{
    grpc_metadata_array_destroy(&a->initial_md);
    grpc_metadata_array_destroy(&a->trailing_md);
    if (a->send_bb) grpc_byte_buffer_destroy(a->send_bb);
    if (a->recv_bb) grpc_byte_buffer_destroy(a->recv_bb);
    grpc_slice_unref(a->details);
    gpr_free((void *)a->error_string);
    if (a->nauth) grpc_slice_unref(a->auth.value);   /* kept until the batch completed */
    if (a->call) grpc_call_unref(a->call);
    free(a);
}

static void on_async_done(uvg_tag *t, int ok)
{
    (void)ok;   /* always 1 for a batch holding RECV_STATUS_ON_CLIENT */
    async_call *a = (async_call *)t;
    rpc_server_t *s = a->s;
    grpc_status_code code = a->status;
    ProtobufCMessage *resp = NULL;
    char msg[512];
    size_t dl = GRPC_SLICE_LENGTH(a->details);
    if (dl >= sizeof msg) dl = sizeof msg - 1;
    memcpy(msg, GRPC_SLICE_START_PTR(a->details), dl);
    msg[dl] = '\0';
    if (code == GRPC_STATUS_OK) {
        resp = pb_from_byte_buffer_in(a->resp_desc, a->recv_bb, a->alloc);
        if (!resp) {
            code = GRPC_STATUS_INTERNAL;
            snprintf(msg, sizeof msg, "cannot parse %s", a->resp_desc->name);
        }
    } else if (msg[0] == '\0') {
        snprintf(msg, sizeof msg, "%s", status_code_name(code));
    }
    rpc_async_cb cb = a->cb;
    void *ud = a->ud;
    async_free(a);
    cb(ud, code, code == GRPC_STATUS_OK ? NULL : msg, resp);
    s->async_inflight--;
    maybe_close_bridge(s);
}

int rpc_async_unary(rpc_server_t *s, grpc_channel *ch, const char *method,
                    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                    gpr_timespec deadline, rpc_async_cb cb, void *ud)
{
    return rpc_async_unary_in(s, ch, method, req, resp_desc, deadline, NULL, cb, ud);
}

int rpc_async_unary_in(rpc_server_t *s, grpc_channel *ch, const char *method,
                       const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                       gpr_timespec deadline, ProtobufCAllocator *alloc, rpc_async_cb cb, void *ud)
{
    if (s->bridge_closing || !ch || !method || !req || !resp_desc || !cb) return FN_ERPC;
    async_call *a = calloc(1, sizeof *a);
    if (!a) return FN_ERPC;
    a->tag.on_done = on_async_done;
    a->s = s;
    a->resp_desc = resp_desc;
    a->alloc = alloc;
    a->cb = cb;
    a->ud = ud;
    a->details = grpc_empty_slice();
    grpc_metadata_array_init(&a->initial_md);
    grpc_metadata_array_init(&a->trailing_md);
    /* The method slice only needs to live through create_call. */
    grpc_slice mslice = grpc_slice_from_copied_string(method);
    a->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, s->bridge.cq, mslice,
                                       NULL, deadline, NULL);
    grpc_slice_unref(mslice);
    if (!a->call) {
        async_free(a);
        return FN_ERPC;
    }
    a->send_bb = pb_to_byte_buffer(req);
    if (rpc_security_is_admin(method) && rpc_security_bearer()) {
        a->auth.key = grpc_slice_from_static_string("authorization");
        a->auth.value = grpc_slice_from_copied_string(rpc_security_bearer());
        a->nauth = 1;
    }

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = a->nauth;
    ops[0].data.send_initial_metadata.metadata = a->nauth ? &a->auth : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = a->send_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    /* Without RECV_INITIAL_METADATA errors surface as deadlines (pitfall 2). */
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &a->initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &a->recv_bb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &a->trailing_md;
    ops[5].data.recv_status_on_client.status = &a->status;
    ops[5].data.recv_status_on_client.status_details = &a->details;
    ops[5].data.recv_status_on_client.error_string = &a->error_string;
    grpc_call_error e = grpc_call_start_batch(a->call, ops, 6, &a->tag, NULL);
    if (e != GRPC_CALL_OK) {
        FN_ERROR("rpc: start_batch(%s): %s", method, grpc_call_error_to_string(e));
        async_free(a);
        return FN_ERPC;
    }
    s->async_inflight++;
    return 0;
}

grpc_channel *rpc_channel_create(const char *target)
{
    /* Loopback peers restart quickly: keep the reconnect backoff short so a
     * restarted shard is used again within a second. NOT
     * GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: in 1.51 it also becomes the connect
     * timeout, and 100 ms made connects fail under load (valgrind). */
    grpc_arg args[3] = {
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
         .value.integer = 100},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
         .value.integer = 1000},
        /* Shard replies with large k can exceed the 4 MiB default. */
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = 64 * 1024 * 1024},
    };
    grpc_channel_args cargs = {.num_args = 3, .args = args};
    /* TLS when the process is configured for it (rpc_security.h) */
    grpc_channel_credentials *creds = rpc_security_channel_creds();
    if (!creds) return NULL;
    grpc_channel *ch = grpc_channel_create(target, creds, &cargs);
    grpc_channel_credentials_release(creds);   /* the channel holds its own ref */
    return ch;
}
