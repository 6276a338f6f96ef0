"""Message classes and unary calls for tests, built at run time from the real
proto/funnel.proto and health.proto (protoc-c --descriptor_set_out), so the
Python side of a test always speaks exactly the wire format the C code does.

    import funnel_pb as pb
    pb.load(PROTO_DIR)
    ch = grpc.insecure_channel(addr)
    resp = pb.call(ch, "/funnel.v1.Search/Search", pb.M.SearchRequest(query="x"), pb.M.SearchResponse)
"""
import os
import subprocess
import tempfile

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


class _Messages:
    pass


M = _Messages()
_NAMES = {
    "SearchRequest": "funnel.v1.SearchRequest", "SearchResponse": "funnel.v1.SearchResponse",
    "ShardSearchRequest": "funnel.v1.ShardSearchRequest",
    "ShardSearchResponse": "funnel.v1.ShardSearchResponse",
    "ShardRescoreRequest": "funnel.v1.ShardRescoreRequest",
    "ShardRescoreResponse": "funnel.v1.ShardRescoreResponse",
    "StatusRequest": "funnel.v1.StatusRequest", "StatusResponse": "funnel.v1.StatusResponse",
    "HealthCheckRequest": "grpc.health.v1.HealthCheckRequest",
    "HealthCheckResponse": "grpc.health.v1.HealthCheckResponse",
    "UpdateRequest": "funnel.v1.UpdateRequest", "UpdateResponse": "funnel.v1.UpdateResponse",
    "DocUpdate": "funnel.v1.DocUpdate",
    "GetRequest": "funnel.v1.GetRequest", "GetResponse": "funnel.v1.GetResponse",
    "GenerationRequest": "funnel.v1.GenerationRequest", "GenerationResponse": "funnel.v1.GenerationResponse",
    "PushModelRequest": "funnel.v1.PushModelRequest", "PushModelResponse": "funnel.v1.PushModelResponse",
}
SEARCH = "/funnel.v1.Search/Search"
SHARD_SEARCH = "/funnel.v1.Shard/Search"
SHARD_RESCORE = "/funnel.v1.Shard/Rescore"
STATUS = "/funnel.v1.Admin/Status"
HEALTH = "/grpc.health.v1.Health/Check"
UPDATE = "/funnel.v1.Search/Update"
GET = "/funnel.v1.Search/Get"
PUSH_MODEL = "/funnel.v1.Admin/PushModel"


def load(proto_dir):
    with tempfile.TemporaryDirectory(prefix="funnel-pb-") as tmp:
        desc = os.path.join(tmp, "funnel.desc")
        subprocess.check_call(["protoc-c", "--proto_path=" + proto_dir, "--descriptor_set_out=" + desc,
                               "funnel.proto", "health.proto"])
        fds = descriptor_pb2.FileDescriptorSet.FromString(open(desc, "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    fac = message_factory.MessageFactory(pool)
    for short, full in _NAMES.items():
        setattr(M, short, fac.GetPrototype(pool.FindMessageTypeByName(full)))


def call(channel, method, req, resp_cls, timeout=5.0):
    """One unary call; returns the reply or raises grpc.RpcError."""
    fn = channel.unary_unary(method, request_serializer=lambda m: m.SerializeToString(),
                             response_deserializer=resp_cls.FromString)
    return fn(req, timeout=timeout)


def call_raw(channel, method, req, timeout=5.0):
    """One unary call; returns (reply bytes, None) or (None, grpc.RpcError)."""
    fn = channel.unary_unary(method, request_serializer=lambda m: m.SerializeToString(),
                             response_deserializer=lambda b: b)
    try:
        return fn(req, timeout=timeout), None
    except grpc.RpcError as e:
        return None, e


def health(channel, timeout=2.0):
    """'SERVING', 'NOT_SERVING', ... or the gRPC status name on failure."""
    try:
        r = call(channel, HEALTH, M.HealthCheckRequest(), M.HealthCheckResponse, timeout)
        return M.HealthCheckResponse.DESCRIPTOR.enum_types_by_name["ServingStatus"].values_by_number[r.status].name
    except grpc.RpcError as e:
        return e.code().name


# A server hands a burst's memory back FN_MEM_IDLE_MS (2 s, common/fn_arena.h)
# after its last large request, and what no large request announced at the
# first sweep of its memory timer (every FN_MEM_IDLE_MS) with no request since
# the one before: up to two periods after the last request. A test that reads
# RSS waits that long first.
MEM_IDLE_WAIT_S = 4.5


def rss_kb(pid):
    """(VmRSS, RssAnon) of a process in KiB, from /proc."""
    vals = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon"):
                vals[k] = int(v.split()[0])
    return vals.get("VmRSS", 0), vals.get("RssAnon", 0)
