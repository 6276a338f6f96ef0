/* rpc_server.h - an asynchronous gRPC server on a libuv loop, plus async
 * unary client calls on the same loop (for fan-out).
 *
 * Threading model (shared/docs/grpc-c-core.md section 5): one completion
 * queue, one poller thread blocking in grpc_completion_queue_next(), events
 * handed to the loop thread through uv_async_send (rpc/uvg_bridge.c). Every
 * callback below runs ON THE LOOP THREAD, so per-call state needs no locks.
 * CPU or disk work belongs in uv_queue_work; its after-work callback (loop
 * thread) calls rpc_call_reply().
 *
 * Built in: grpc.health.v1.Health/Check and Health/Watch (both answer
 * rpc_server_set_serving(); Watch streams every change), UNIMPLEMENTED for unknown methods, INVALID_ARGUMENT for a payload that does
 * not parse as the method's request type, RESOURCE_EXHAUSTED for a message
 * over max_message_bytes, and graceful shutdown (in-flight calls finish).
 */
#ifndef FUNNEL_RPC_SERVER_H
#define FUNNEL_RPC_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "fn_error.h"

typedef struct rpc_server rpc_server_t;   /* opaque */
typedef struct rpc_call rpc_call_t;       /* one incoming call; opaque */

/* A method handler. req is owned by the call and stays valid until the call
 * is replied to. The handler must call rpc_call_reply() exactly once, now or
 * later (from the loop thread). */
typedef void (*rpc_handler_fn)(rpc_call_t *call, const ProtobufCMessage *req, void *ud);

typedef struct rpc_method {
    const char *path;                              /* "/funnel.v1.Shard/Search" */
    const ProtobufCMessageDescriptor *req_desc;
    rpc_handler_fn handler;
    void *ud;
} rpc_method;

typedef struct rpc_server_opts {
    const char *addr;               /* "127.0.0.1:0" picks a free port */
    const rpc_method *methods;
    size_t nmethods;
    size_t max_message_bytes;       /* 0 = 4 MiB (receive limit) */
} rpc_server_opts;

/* Create, bind and start the server on loop. Returns 0, or FN_EINVAL (bad
 * address / port in use; message in eb). SO_REUSEPORT is off. */
int rpc_server_start(uv_loop_t *loop, const rpc_server_opts *o, rpc_server_t **out, fn_errbuf *eb);

/* The bound port. */
int rpc_server_port(const rpc_server_t *s);

/* What Health/Check answers (SERVING = 1, NOT_SERVING = 0). Starts SERVING.
 * Open Health/Watch streams get the new status (only if it changed). Loop
 * thread only (or before the loop runs). */
void rpc_server_set_serving(rpc_server_t *s, int serving);

/* At most this many Health/Watch streams at once (each pins a call); one
 * more gets RESOURCE_EXHAUSTED. A watch for an unknown service gets
 * SERVICE_UNKNOWN as a message and stays open. rpc_server_stop() sends
 * NOT_SERVING to every watcher and ends its call with UNAVAILABLE. */
#define RPC_HEALTH_MAX_WATCHERS 64

/* Graceful stop: stop accepting, let in-flight calls finish, tear down gRPC
 * objects and the bridge, then call done(ud) on the loop thread and free s.
 * After done, no handle of the server remains on the loop. */
void rpc_server_stop(rpc_server_t *s, void (*done)(void *ud), void *ud);

/* ---- incoming calls ---- */

/* Milliseconds left until the client's deadline (INT64_MAX if none). */
int64_t rpc_call_ms_left(const rpc_call_t *call);
/* The client's deadline on the monotonic clock (gpr_inf_future if none). */
gpr_timespec rpc_call_deadline(const rpc_call_t *call);

/* Reply and finish the call. resp may be NULL (error statuses); it is
 * serialized before this returns, so the caller keeps ownership. details may
 * be NULL. The call object is freed when gRPC completes the batch. */
void rpc_call_reply(rpc_call_t *call, grpc_status_code code, const char *details,
                    const ProtobufCMessage *resp);

/* An error reply (RESOURCE_EXHAUSTED under overload, say) that also
 * carries the trailer grpc-retry-pushback-ms: when to try again. */
void rpc_call_reply_pushback(rpc_call_t *call, grpc_status_code code, const char *details,
                             uint32_t retry_ms);

/* ---- outgoing async unary calls on the same loop ---- */

/* Called once on the loop thread. On GRPC_STATUS_OK resp is the unpacked
 * reply, owned by the callback (protobuf_c_message_free_unpacked); otherwise
 * resp is NULL and details says why. */
typedef void (*rpc_async_cb)(void *ud, grpc_status_code code, const char *details,
                             ProtobufCMessage *resp);

/* Start a unary call on channel ch that completes by deadline at the latest
 * (monotonic clock). Returns 0 (cb will run exactly once) or FN_ERPC (cb will
 * not run). */
int rpc_async_unary(rpc_server_t *s, grpc_channel *ch, const char *method,
                    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                    gpr_timespec deadline, rpc_async_cb cb, void *ud);

/* The same, with the reply unpacked through alloc (e.g. pb_arena_allocator):
 * then the callback must not free resp; it lives as long as the allocator's
 * memory. alloc must stay valid until cb has run. */
int rpc_async_unary_in(rpc_server_t *s, grpc_channel *ch, const char *method,
                       const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                       gpr_timespec deadline, ProtobufCAllocator *alloc, rpc_async_cb cb, void *ud);

/* A channel to target with sane reconnect backoff for loopback: TLS when
 * rpc_tls_configure() set a CA (rpc_security.h), else insecure. */
grpc_channel *rpc_channel_create(const char *target);

#endif
