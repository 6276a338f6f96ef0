#!/usr/bin/python3
"""Independent client for a running Funnel cluster: python3-grpcio's generic
API with message classes built at run time from a FileDescriptorProto that
mirrors the parts of proto/funnel.proto and proto/health.proto we use (no
protoc, no generated stubs, no code shared with the C side).

Usage: py_client.py COORDINATOR_ADDR [--expect-ids ID,ID,...] [--shards ADDR,ADDR,...]
       py_client.py COORDINATOR_ADDR --stall QUERIES.TSV N DEADLINE_MS LIMIT_MS
The second form runs the first N queries one at a time with a DEADLINE_MS
deadline and checks that each answers OK, partial, within LIMIT_MS as seen
by this client (one warm channel, so process start-up is not counted).
Exit 0 when every check passes."""
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
pool = descriptor_pool.DescriptorPool()


def message(fdp, name, fields):
    m = fdp.message_type.add(name=name)
    for num, (fname, ftype, *rest) in enumerate(fields, 1):
        if fname is None:
            continue
        num = next((r for r in rest if isinstance(r, int)), num)   # an explicit field number
        rest = [r for r in rest if not isinstance(r, int)]
        label = F.LABEL_REPEATED if rest and rest[0] == "repeated" else F.LABEL_OPTIONAL
        f = m.field.add(name=fname, number=num, type=ftype, label=label)
        if ftype in (F.TYPE_MESSAGE, F.TYPE_ENUM):
            f.type_name = rest[-1]
    return m


fun = descriptor_pb2.FileDescriptorProto(name="funnel_py.proto", package="funnel.v1", syntax="proto3")
message(fun, "SearchRequest", [("query", F.TYPE_STRING), ("k", F.TYPE_UINT32), ("page", F.TYPE_UINT32),
                               ("explain", F.TYPE_BOOL), ("request_id", F.TYPE_STRING),
                               ("plain_text", F.TYPE_BOOL, 22)])
message(fun, "Hit", [("id", F.TYPE_STRING), ("title", F.TYPE_STRING), ("score", F.TYPE_DOUBLE),
                     ("shard", F.TYPE_UINT32)])
message(fun, "Coverage", [("shards_asked", F.TYPE_UINT32), ("shards_answered", F.TYPE_UINT32),
                          ("shards_failed", F.TYPE_UINT32), ("docs_searched", F.TYPE_UINT64),
                          ("docs_total", F.TYPE_UINT64)])
message(fun, "SearchResponse", [("hits", F.TYPE_MESSAGE, "repeated", ".funnel.v1.Hit"),
                                ("coverage", F.TYPE_MESSAGE, ".funnel.v1.Coverage"),
                                ("partial", F.TYPE_BOOL), (None, 0), ("total_matches", F.TYPE_UINT64),
                                (None, 0), ("terms", F.TYPE_STRING, "repeated"),
                                ("request_id", F.TYPE_STRING), ("took_us", F.TYPE_UINT64)])
pool.Add(fun)

hp = descriptor_pb2.FileDescriptorProto(name="health_py.proto", package="grpc.health.v1", syntax="proto3")
message(hp, "HealthCheckRequest", [("service", F.TYPE_STRING)])
resp = message(hp, "HealthCheckResponse", [("status", F.TYPE_ENUM, ".grpc.health.v1.HealthCheckResponse.ServingStatus")])
enum = resp.enum_type.add(name="ServingStatus")
for i, n in enumerate(["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"]):
    enum.value.add(name=n, number=i)
pool.Add(hp)

_f = message_factory.MessageFactory(pool)
cls = lambda n: _f.GetPrototype(pool.FindMessageTypeByName(n))  # noqa: E731
SearchRequest, SearchResponse = cls("funnel.v1.SearchRequest"), cls("funnel.v1.SearchResponse")
HealthReq, HealthResp = cls("grpc.health.v1.HealthCheckRequest"), cls("grpc.health.v1.HealthCheckResponse")

args = sys.argv[1:]
target = args[0]
expect_ids = args[args.index("--expect-ids") + 1].split(",") if "--expect-ids" in args else None
shard_addrs = args[args.index("--shards") + 1].split(",") if "--shards" in args else []
failures = 0
stall = args[args.index("--stall") + 1:args.index("--stall") + 5] if "--stall" in args else None


def check(cond, what):
    global failures
    print(("PASS " if cond else "FAIL ") + what)
    failures += 0 if cond else 1


def health(addr):
    with grpc.insecure_channel(addr) as ch:
        call = ch.unary_unary("/grpc.health.v1.Health/Check", request_serializer=HealthReq.SerializeToString,
                              response_deserializer=HealthResp.FromString)
        return call(HealthReq(service=""), timeout=5).status


def stall_check(path, n, deadline_ms, limit_ms):
    import time
    queries = [l.rstrip("\n").split("\t")[1] for l in open(path) if l.strip()][:n]
    worst = 0.0
    with grpc.insecure_channel(target) as ch:
        search = ch.unary_unary("/funnel.v1.Search/Search", request_serializer=SearchRequest.SerializeToString,
                                response_deserializer=SearchResponse.FromString)
        grpc.channel_ready_future(ch).result(timeout=10)
        for i, q in enumerate(queries):
            t0 = time.monotonic()
            try:
                r = search(SearchRequest(query=q, k=10, plain_text=True), timeout=deadline_ms / 1000.0)
            except grpc.RpcError as e:
                check(False, f"query {i + 1}: {e.code().name} {e.details()!r}")
                continue
            ms = (time.monotonic() - t0) * 1000
            worst = max(worst, ms)
            check(r.partial and ms < limit_ms and r.coverage.shards_answered == r.coverage.shards_asked - 1,
                  f"query {i + 1}: {ms:.0f} ms, partial={r.partial}, "
                  f"{r.coverage.shards_answered}/{r.coverage.shards_asked}, took_us={r.took_us}")
    print(f"worst latency {worst:.0f} ms over {len(queries)} queries (limit {limit_ms} ms)")


if stall:
    stall_check(stall[0], int(stall[1]), int(stall[2]), int(stall[3]))
    print("PY_CLIENT", "OK" if failures == 0 else f"{failures} FAILED")
    sys.exit(1 if failures else 0)

with grpc.insecure_channel(target) as ch:
    search = ch.unary_unary("/funnel.v1.Search/Search", request_serializer=SearchRequest.SerializeToString,
                            response_deserializer=SearchResponse.FromString)
    # 1. a normal query returns hits, full coverage, descending scores
    r = search(SearchRequest(query="boundary layer transition", k=10, request_id="py-1"), timeout=10)
    scores = [h.score for h in r.hits]
    check(len(r.hits) == 10 and all(h.id for h in r.hits),
          f"search: {len(r.hits)} hits, first {r.hits[0].id if r.hits else None!r}")
    check(scores == sorted(scores, reverse=True), "scores descending")
    check(r.coverage.shards_asked == r.coverage.shards_answered and r.coverage.shards_asked > 0
          and not r.partial, f"coverage {r.coverage.shards_answered}/{r.coverage.shards_asked}, partial={r.partial}")
    check(r.request_id == "py-1", f"request_id echoed: {r.request_id!r}")
    if expect_ids is not None:
        check([h.id for h in r.hits] == expect_ids, "same hits as funnel search --json")

    # 2. empty query -> INVALID_ARGUMENT with a message
    try:
        search(SearchRequest(query=""), timeout=5)
        check(False, "empty query should fail")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and e.details(),
              f"empty query: {e.code().name} {e.details()!r}")

    # 3. raw bytes that are not a SearchRequest -> an error, not a crash
    try:
        ch.unary_unary("/funnel.v1.Search/Search")(b"\xff\xff\xff", timeout=5)
        check(False, "garbage request should fail")
    except grpc.RpcError as e:
        check(e.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL),
              f"garbage request: {e.code().name}")

    # 4. unknown method -> UNIMPLEMENTED (not a hang until the deadline)
    try:
        ch.unary_unary("/funnel.v1.Search/Nope")(b"", timeout=5)
        check(False, "unknown method should fail")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.UNIMPLEMENTED, f"unknown method: {e.code().name}")

    # 5. 32 concurrent searches
    fs = [search.future(SearchRequest(query=q, k=5, plain_text=True), timeout=10)
          for q in ["heat transfer", "shock waves", "wing", "supersonic flow"] * 8]
    check(all(len(f.result().hits) == 5 for f in fs), "32 concurrent searches")

# 6. Health/Check is SERVING on the coordinator and on every shard
for addr in [target] + [a for a in shard_addrs if a]:
    st = health(addr)
    check(st == HealthResp.SERVING, f"health {addr}: {HealthResp.ServingStatus.Name(st)}")

print("PY_CLIENT", "OK" if failures == 0 else f"{failures} FAILED")
sys.exit(1 if failures else 0)
