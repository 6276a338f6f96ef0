#!/usr/bin/python3
"""End-to-end check of the real funnel-coordinator process against fake shard
servers written with python3-grpcio (an independent gRPC implementation of
the same core release), messages built at runtime from funnel.proto.

usage: /usr/bin/python3 e2e_coord.py BUILD/coordinator/funnel-coordinator PROTO_DIR [--valgrind]
Exit 0 when every check passed. With --valgrind the coordinator runs under
valgrind and its leak summary must be clean."""
import atexit, os, signal, subprocess, sys, tempfile, threading, time
from concurrent import futures

try:
    import grpc
    import google.protobuf  # noqa: F401
except ImportError as e:   # meson: 77 = skipped
    print("SKIP: needs python3-grpcio and python3-protobuf:", e)
    sys.exit(77)

exe, proto_dir = sys.argv[1], sys.argv[2]
use_vg = "--valgrind" in sys.argv
tmp = tempfile.mkdtemp(prefix="coord-e2e-")
# message classes from the real protos (shared with the integration tests)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import funnel_pb  # noqa: E402
funnel_pb.load(proto_dir)
P = funnel_pb.M
SearchRequest, SearchResponse = P.SearchRequest, P.SearchResponse
ShardReq, ShardResp = P.ShardSearchRequest, P.ShardSearchResponse
StatusReq, StatusResp = P.StatusRequest, P.StatusResponse
HReq, HResp = P.HealthCheckRequest, P.HealthCheckResponse

failures = 0
def check(cond, what):
    global failures
    print(("PASS " if cond else "FAIL ") + what, flush=True)
    failures += 0 if cond else 1

NDOCS, NSHARDS = 30, 2
score = lambda d: float((d * 7) % 5)
key = lambda d: (d * 2654435761) % 1000003

def shard_handler(shard):
    def search(req, ctx):
        if "stall" in req.query:
            time.sleep(2.0)
        docs = sorted((d for d in range(NDOCS) if d % NSHARDS == shard), key=lambda d: (-score(d), key(d)))
        r = ShardResp(matches=len(docs), docs=len(docs), docs_total=NDOCS, shard=shard, shards=NSHARDS,
                      terms=["t"], time_us=5)
        for d in docs[:req.k]:
            r.hits.add(doc=d, score=score(d), key=key(d), id=f"doc{d}", title=f"t{d}", url=f"u{d}")
        return r
    return search

serving = [1] * NSHARDS   # what each fake's Health/Check answers (1 SERVING, 2 NOT_SERVING)
servers, ports = [], []
for s in range(NSHARDS):
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    h = grpc.method_handlers_generic_handler("funnel.v1.Shard", {
        "Search": grpc.unary_unary_rpc_method_handler(
            shard_handler(s), request_deserializer=ShardReq.FromString,
            response_serializer=ShardResp.SerializeToString)})
    hh = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(
            lambda r, c, s=s: HResp(status=serving[s]), request_deserializer=HReq.FromString,
            response_serializer=HResp.SerializeToString)})
    srv.add_generic_rpc_handlers((h, hh))
    ports.append(srv.add_insecure_port("127.0.0.1:0"))
    srv.start()
    servers.append(srv)

topo = os.path.join(tmp, "topology")
with open(topo, "w") as f:
    f.write("# e2e\n")
    for s in range(NSHARDS):
        f.write(f"shard {s} 127.0.0.1:{ports[s]}\n")
addr_file = os.path.join(tmp, "addr")
vg_log = os.path.join(tmp, "vg.log")
cmd = [exe, "--topology", topo, "--addr-file", addr_file, "--budget-ms", "50",
       "--health-interval-ms", "100", "--log-level", "info", "--probe-deadline-ms", "500",
       "--down-probe-interval-ms", "50", "--breaker-failures", "3", "--breaker-backoff-ms", "1000",
       "--breaker-max-backoff-ms", "30000"]
if use_vg:
    supp = "/work/shared/examples/grpc-c-core/scripts/grpc-absl.supp"
    cmd = ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
           "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99",
           "--log-file=" + vg_log] + (["--suppressions=" + supp] if os.path.exists(supp) else []) + cmd
proc = subprocess.Popen(cmd)
atexit.register(lambda: proc.poll() is None and proc.kill())   # no orphan if a check raises
for _ in range(300):
    if os.path.exists(addr_file):
        break
    time.sleep(0.05)
addr = open(addr_file).read().strip()
check(addr.startswith("127.0.0.1:"), f"addr-file says {addr}")

expected = sorted(range(NDOCS), key=lambda d: (-score(d), key(d)))
with grpc.insecure_channel(addr) as ch:
    search = ch.unary_unary("/funnel.v1.Search/Search", request_serializer=SearchRequest.SerializeToString,
                            response_deserializer=SearchResponse.FromString)
    status = ch.unary_unary("/funnel.v1.Admin/Status", request_serializer=StatusReq.SerializeToString,
                            response_deserializer=StatusResp.FromString)
    health = ch.unary_unary("/grpc.health.v1.Health/Check", request_serializer=HReq.SerializeToString,
                            response_deserializer=HResp.FromString)
    check(health(HReq(), timeout=10).status == 1, "health SERVING")
    for page in range(3):
        r = search(SearchRequest(query="hello", k=7, page=page, request_id="e2e"), timeout=10)
        ids = [h.id for h in r.hits]
        want = [f"doc{d}" for d in expected[page * 7:page * 7 + 7]]
        check(ids == want and not r.partial and r.coverage.shards_answered == 2,
              f"page {page}: {ids}")
    check(r.request_id == "e2e", "request_id echoed")
    r = search(SearchRequest(query="hello", k=3, explain=True), timeout=10)
    r2 = search(SearchRequest(query="hello", k=3), timeout=10)
    check(r.request_id and r2.request_id and r.request_id != r2.request_id,
          f"requests without an id get distinct ones: {r.request_id!r} {r2.request_id!r}")
    check(len(r.hits[0].stages) == 3 and r.hits[0].stages[0].ran and not r.hits[0].stages[1].ran,
          "explain stages: " + ",".join(f"{s.stage}={s.ran}" for s in r.hits[0].stages))
    check([s.name for s in r.stages] == ["analyze", "selection", "stage1", "merge", "feedback", "stage2",
                                        "filter", "diversity", "blender"],
          "stages listed in funnel order")
    check(r.stages[0].ran and r.stages[0].note.startswith("parsed: hello"), "analyze: " + r.stages[0].note)
    # valgrind slows the coordinator's own 10% reserve: give it more time
    stall_s = 1.5 if use_vg else 0.8
    t0 = time.monotonic()
    r = search(SearchRequest(query="stall please", k=5), timeout=stall_s)
    dt = time.monotonic() - t0
    check(r.partial and r.coverage.shards_answered == 0 and dt < stall_s
          and [f.status for f in r.failures] == ["DEADLINE_EXCEEDED"] * 2,
          f"stalled shards: partial={r.partial} after {dt*1000:.0f} ms, failures "
          + ",".join(f.status for f in r.failures))
    try:
        search(SearchRequest(query="   ", k=5), timeout=5)
        check(False, "blank query accepted")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT, f"blank query: {e.code().name} {e.details()!r}")
    time.sleep(0.3)
    st = status(StatusReq(), timeout=5)
    check(st.role == "coordinator" and st.requests == 7 and st.errors == 1 and len(st.backends) == 2
          and all(b.healthy for b in st.backends),
          f"status: requests={st.requests} errors={st.errors} backends="
          + "; ".join(f"{b.address} {b.healthy} {b.detail}" for b in st.backends))

    # the breaker: a NOT_SERVING shard is marked down and skipped at once, then comes back
    def detail(i):
        return status(StatusReq(), timeout=5).backends[i].detail
    def wait_detail(i, want, secs):
        t0 = time.monotonic()
        while time.monotonic() - t0 < secs:
            d = detail(i)
            if want in d:
                return d
            time.sleep(0.02)
        return detail(i)
    serving[1] = 2
    d = wait_detail(1, ": open for", 10)
    check(": open for" in d and "probe NOT_SERVING" in d, f"NOT_SERVING shard marked down: {d}")
    t0 = time.monotonic()
    r = search(SearchRequest(query="hello", k=5), timeout=5)
    dt = time.monotonic() - t0
    check(r.partial and r.coverage.shards_answered == 1 and [f.shard for f in r.failures] == [1]
          and r.failures[0].status == "UNAVAILABLE" and r.failures[0].message.startswith("not called: ")
          and dt < 0.5, f"down shard skipped in {dt*1000:.0f} ms: "
          + "; ".join(f"{f.shard} {f.status} {f.message}" for f in r.failures))
    serving[1] = 1
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        r = search(SearchRequest(query="hello", k=5), timeout=5)
        if not r.partial:
            break
        time.sleep(0.02)
    check(not r.partial and r.coverage.shards_answered == 2,
          f"back after {1000 * (time.monotonic() - t0):.0f} ms: partial={r.partial}")
    d = wait_detail(1, ": closed for", 5)
    check(": closed for" in d, f"closed again: {d}")

time.sleep(1.2)   # let the stalled python handlers finish
proc.send_signal(signal.SIGTERM)
rc = proc.wait(timeout=60)
check(rc == 0, f"exit code after SIGTERM: {rc}")
if use_vg:
    log = open(vg_log).read()
    summary = [l.split("== ", 1)[1] for l in log.splitlines() if "lost:" in l or "ERROR SUMMARY" in l]
    check("ERROR SUMMARY: 0 errors" in log, "valgrind: " + " | ".join(summary))
for s in servers:
    s.stop(0)
print("FAILURES:", failures)
sys.exit(1 if failures else 0)
