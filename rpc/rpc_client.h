/* rpc_client.h - blocking unary gRPC calls with protobuf-c messages.
 *
 * For the CLI, tests and tools (the servers use the asynchronous bridge in
 * rpc_server.h / uvg_bridge.h). A client holds one channel; calls from many
 * threads at once are fine (each call uses its own completion queue).
 * The process must have called rpc_init() (grpc_init) first and should call
 * rpc_shutdown() (a grpc_shutdown that waits for gRPC's own threads) last.
 */
#ifndef FUNNEL_RPC_CLIENT_H
#define FUNNEL_RPC_CLIENT_H

#include <stdint.h>
#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

typedef struct rpc_client rpc_client_t;   /* opaque */

typedef struct rpc_status {
    grpc_status_code code;   /* GRPC_STATUS_OK on success */
    char message[512];       /* status details from the server, or the local failure */
    int64_t retry_ms;        /* the server's grpc-retry-pushback-ms trailer (load shedding); -1: none */
} rpc_status;

void rpc_init(void);
void rpc_shutdown(void);

/* Connect lazily to target ("127.0.0.1:7000"). NULL only on out-of-memory. */
rpc_client_t *rpc_client_create(const char *target);
void rpc_client_destroy(rpc_client_t *c);

/* Call method ("/funnel.v1.Search/Search") with req; wait at most
 * deadline_ms (<= 0 means 30 s). On GRPC_STATUS_OK *resp is the unpacked
 * reply (free with protobuf_c_message_free_unpacked(*resp, NULL)); otherwise
 * *resp is NULL and st says why. Returns st->code. */
grpc_status_code rpc_client_call(rpc_client_t *c, const char *method,
                                 const ProtobufCMessage *req,
                                 const ProtobufCMessageDescriptor *resp_desc,
                                 int64_t deadline_ms, ProtobufCMessage **resp,
                                 rpc_status *st);

/* grpc.health.v1.Health/Check with service "". Returns 1 if SERVING. */
int rpc_health_check(rpc_client_t *c, int64_t deadline_ms);

/* "OK", "DEADLINE_EXCEEDED", ... */
const char *rpc_status_name(grpc_status_code code);

/* Method paths. */
#define RPC_METHOD_SEARCH        "/funnel.v1.Search/Search"
#define RPC_METHOD_SHARD_SEARCH  "/funnel.v1.Shard/Search"
#define RPC_METHOD_SHARD_RESCORE "/funnel.v1.Shard/Rescore"
#define RPC_METHOD_SHARD_FETCH "/funnel.v1.Shard/Fetch"
#define RPC_METHOD_SHARD_GET    "/funnel.v1.Shard/Get"
#define RPC_METHOD_GET          "/funnel.v1.Search/Get"
#define RPC_METHOD_UPDATE       "/funnel.v1.Search/Update"
#define RPC_METHOD_SHARD_UPDATE "/funnel.v1.Shard/Update"
#define RPC_METHOD_ADMIN_STATUS  "/funnel.v1.Admin/Status"
#define RPC_METHOD_ADMIN_PUSH_MODEL "/funnel.v1.Admin/PushModel"
#define RPC_METHOD_ADMIN_GENERATION "/funnel.v1.Admin/Generation"
#define RPC_METHOD_HEALTH_CHECK  "/grpc.health.v1.Health/Check"

#endif
