/* rpc_client.c - blocking unary calls (see rpc_client.h).
 *
 * Each call gets its own completion queue, so any number of threads can call
 * through one client at once; gRPC channels are thread-safe.
 */
#include "rpc_client.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.pb-c.h"
#include "pbbuf.h"
#include "rpc_security.h"
#include "rpc_server.h"   /* rpc_channel_create */

struct rpc_client {
    grpc_channel *ch;
};

void rpc_init(void) { grpc_init(); }

void rpc_shutdown(void)
{
    /* Waits for gRPC's own threads so nothing is left for valgrind. */
    grpc_shutdown_and_wait(2000);
}

rpc_client_t *rpc_client_create(const char *target)
{
    rpc_client_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->ch = rpc_channel_create(target);
    if (!c->ch) {
        free(c);
        return NULL;
    }
    return c;
}

void rpc_client_destroy(rpc_client_t *c)
{
    if (!c) return;
    grpc_channel_destroy(c->ch);
    free(c);
}

const char *rpc_status_name(grpc_status_code code) { return status_code_name(code); }

static void set_status(rpc_status *st, grpc_status_code code, const char *fmt, const char *arg)
{
    st->code = code;
    snprintf(st->message, sizeof st->message, fmt, arg);
}

/* grpc-retry-pushback-ms of a trailer (rpc_call_reply_pushback), -1 if none */
static int64_t pushback_ms(const grpc_metadata_array *md)
{
    for (size_t i = 0; i < md->count; i++) {
        if (!grpc_slice_str_cmp(md->metadata[i].key, "grpc-retry-pushback-ms")) {
            char buf[24];
            size_t n = GRPC_SLICE_LENGTH(md->metadata[i].value);
            if (n == 0 || n >= sizeof buf) return -1;
            memcpy(buf, GRPC_SLICE_START_PTR(md->metadata[i].value), n);
            buf[n] = '\0';
            char *end;
            long long v = strtoll(buf, &end, 10);
            return *end || v < 0 ? -1 : (int64_t)v;
        }
    }
    return -1;
}

grpc_status_code rpc_client_call(rpc_client_t *c, const char *method,
                                 const ProtobufCMessage *req,
                                 const ProtobufCMessageDescriptor *resp_desc,
                                 int64_t deadline_ms, ProtobufCMessage **resp,
                                 rpc_status *st)
{
    rpc_status local;
    if (!st) st = &local;
    *resp = NULL;
    memset(st, 0, sizeof *st);
    st->retry_ms = -1;
    if (deadline_ms <= 0) deadline_ms = 30000;

    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    grpc_slice mslice = grpc_slice_from_copied_string(method);
    grpc_call *call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, mslice,
                                               NULL, deadline_after_ms(deadline_ms), NULL);
    grpc_slice_unref(mslice);   /* only needed through create_call */
    if (!call) {
        set_status(st, GRPC_STATUS_INTERNAL, "cannot create call to %s", method);
        goto out_cq;
    }

    grpc_byte_buffer *send_bb = pb_to_byte_buffer(req), *recv_bb = NULL;
    grpc_metadata_array initial_md, trailing_md;
    grpc_metadata_array_init(&initial_md);
    grpc_metadata_array_init(&trailing_md);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    const char *error_string = NULL;

    /* Admin calls carry the bearer token; the slices live past the batch */
    grpc_metadata auth;
    memset(&auth, 0, sizeof auth);
    size_t nauth = 0;
    if (rpc_security_is_admin(method) && rpc_security_bearer()) {
        auth.key = grpc_slice_from_static_string("authorization");
        auth.value = grpc_slice_from_copied_string(rpc_security_bearer());
        nauth = 1;
    }

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);   /* flags/reserved must be 0 */
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = nauth;
    ops[0].data.send_initial_metadata.metadata = nauth ? &auth : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    /* Needed, or server errors surface as DEADLINE_EXCEEDED (pitfall 2). */
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv_bb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    ops[5].data.recv_status_on_client.error_string = &error_string;

    int tag;
    grpc_call_error e = grpc_call_start_batch(call, ops, 6, &tag, NULL);
    if (e != GRPC_CALL_OK) {
        set_status(st, GRPC_STATUS_INTERNAL, "start_batch: %s", grpc_call_error_to_string(e));
    } else {
        /* Completes by the deadline at the latest: no timeout of our own. */
        grpc_event ev;
        do ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        while (ev.type != GRPC_OP_COMPLETE || ev.tag != &tag);
        st->code = status;
        size_t n = GRPC_SLICE_LENGTH(details);
        if (n >= sizeof st->message) n = sizeof st->message - 1;
        memcpy(st->message, GRPC_SLICE_START_PTR(details), n);
        st->message[n] = '\0';
        if (status == GRPC_STATUS_OK) {
            *resp = pb_from_byte_buffer(resp_desc, recv_bb);
            if (!*resp) set_status(st, GRPC_STATUS_INTERNAL, "cannot parse %s", resp_desc->name);
        } else if (st->message[0] == '\0') {
            set_status(st, status, "%s", status_code_name(status));
        }
        st->retry_ms = pushback_ms(&trailing_md);
    }

    grpc_metadata_array_destroy(&initial_md);
    grpc_metadata_array_destroy(&trailing_md);
    grpc_byte_buffer_destroy(send_bb);
    if (recv_bb) grpc_byte_buffer_destroy(recv_bb);
    grpc_slice_unref(details);
    gpr_free((void *)error_string);
    if (nauth) grpc_slice_unref(auth.value);
    grpc_call_unref(call);
out_cq:
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type
           != GRPC_QUEUE_SHUTDOWN) {}
    grpc_completion_queue_destroy(cq);
    return st->code;
}

int rpc_health_check(rpc_client_t *c, int64_t deadline_ms)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    rpc_status st;
    if (rpc_client_call(c, RPC_METHOD_HEALTH_CHECK, &req.base,
                        &grpc__health__v1__health_check_response__descriptor, deadline_ms,
                        &resp, &st) != GRPC_STATUS_OK)
        return 0;
    int serving = ((Grpc__Health__V1__HealthCheckResponse *)resp)->status ==
                  GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    protobuf_c_message_free_unpacked(resp, NULL);
    return serving;
}
