#!/usr/bin/env bash
# (f) Fail fast (issue 6, item 3): one of three shards SIGSTOPped, no replica,
# 20 s of load from a warm python client (4 threads, 1 s deadline). Once the
# coordinator has marked the shard down (seen in Admin/Status), every query
# must answer partial with coverage 2/3, the stopped shard reported "not
# called" (so no query waited for it), within 50 ms; after SIGCONT full
# coverage must return within 2 s. Prints count, p50, p99, max and the rejoin
# time. On a shared 2-core box a whole-machine hiccup can hold a few queries
# at once: up to 0.05% of them may take 50..250 ms (listed); p99 must stay
# under 50 ms. The coordinator's log must say when the shard went down and
# came back, once each.
source "$(dirname "$0")/lib.sh"
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || { echo "SKIP: no python3-grpcio"; exit 77; }
command -v protoc-c >/dev/null || { echo "SKIP: no protoc-c"; exit 77; }

I3=$(build_index idx3 3) || exit 1
R=$T/run
A=$(cluster_up "$I3" "$R") || fail "cluster up"
P=$(cat "$R/shard-2.pid")
# whatever happens below, never leave the shard stopped (cleanup needs it)
trap 'rc=$?; kill -CONT "$P" 2>/dev/null; (exit $rc); cleanup' EXIT

protoc-c --proto_path="$HERE/../../proto" --descriptor_set_out="$T/funnel.desc" funnel.proto health.proto \
    || fail "protoc-c"

"$PY" - "$A" "$T/funnel.desc" "$DATA/cranfield/queries.tsv" "$P" <<'PY' || fail "fail-fast with a stopped shard"
import os, signal, sys, threading, time
import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

addr, desc, qfile, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
LOAD_S, LIMIT_MS, REJOIN_S, THREADS, DEADLINE_S = 20.0, 50.0, 2.0, 4, 1.0
OUTLIER_SHARE, OUTLIER_MAX_MS = 0.0005, 250.0

pool = descriptor_pool.DescriptorPool()
for f in descriptor_pb2.FileDescriptorSet.FromString(open(desc, "rb").read()).file:
    pool.Add(f)
fac = message_factory.MessageFactory(pool)
M = lambda n: fac.GetPrototype(pool.FindMessageTypeByName(n))  # noqa: E731
SearchRequest, SearchResponse = M("funnel.v1.SearchRequest"), M("funnel.v1.SearchResponse")
StatusReq, StatusResp = M("funnel.v1.StatusRequest"), M("funnel.v1.StatusResponse")
queries = [l.rstrip("\n").split("\t")[1] for l in open(qfile) if l.strip()]

ch = grpc.insecure_channel(addr)
grpc.channel_ready_future(ch).result(timeout=10)
search = ch.unary_unary("/funnel.v1.Search/Search", request_serializer=SearchRequest.SerializeToString,
                        response_deserializer=SearchResponse.FromString)
status = ch.unary_unary("/funnel.v1.Admin/Status", request_serializer=StatusReq.SerializeToString,
                        response_deserializer=StatusResp.FromString)

def shard2_detail():
    for b in status(StatusReq(), timeout=5).backends:
        if b.detail.startswith("shard 2 "):
            return b.detail
    return ""

for q in queries[:20]:   # warm: channel, connections, page cache
    r = search(SearchRequest(query=q, k=10, plain_text=True), timeout=5)
    assert not r.partial and r.coverage.shards_answered == 3, "warm-up: " + str(r.coverage)

results = []   # (t_start, t_end, answered, asked, [(shard, status, message)], error)
stop = threading.Event()

def worker(n):
    i = n * 50
    while not stop.is_set():
        q = queries[i % len(queries)]
        i += 1
        t0 = time.monotonic()
        try:
            r = search(SearchRequest(query=q, k=10, plain_text=True), timeout=DEADLINE_S)
            res = (t0, time.monotonic(), r.coverage.shards_answered, r.coverage.shards_asked,
                   [(f.shard, f.status, f.message) for f in r.failures], None, r.took_us)
        except grpc.RpcError as e:
            res = (t0, time.monotonic(), 0, 0, [], f"{e.code().name} {e.details()}", 0)
        results.append(res)

threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
for t in threads:
    t.start()
bad = []
t_cont = None
try:
    time.sleep(0.5)
    t_stop = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    t_down = None
    while time.monotonic() - t_stop < 10:
        d = shard2_detail()
        if ": open for" in d:
            t_down = time.monotonic()
            break
        time.sleep(0.02)
    if t_down is None:
        bad.append("shard 2 never marked down: " + shard2_detail())
    else:
        print(f"shard 2 marked down {1000 * (t_down - t_stop):.0f} ms after SIGSTOP: {shard2_detail()}")
    time.sleep(max(0.0, t_stop + LOAD_S - time.monotonic()))
    t_cont = time.monotonic()
    os.kill(pid, signal.SIGCONT)
    t_back = None
    while time.monotonic() - t_cont < 5 and t_back is None:
        time.sleep(0.01)
        for r in list(results):
            if r[0] >= t_cont and r[2] == 3 and (t_back is None or r[1] < t_back):
                t_back = r[1]
    time.sleep(0.3)
finally:
    if t_cont is None:
        os.kill(pid, signal.SIGCONT)
    stop.set()
    for t in threads:
        t.join()

if t_down is not None:
    # every query that started after the shard was seen marked down, before SIGCONT
    win = [r for r in results if t_down <= r[0] and r[1] < t_cont]
    lat = sorted(1000 * (r[1] - r[0]) for r in win)
    for r in win:
        ok = (r[5] is None and (r[2], r[3]) == (2, 3) and len(r[4]) == 1 and r[4][0][0] == 2
              and r[4][0][1] == "UNAVAILABLE" and r[4][0][2].startswith("not called: every replica is marked down"))
        if not ok:
            bad.append(f"query at +{r[0] - t_stop:.3f} s: error={r[5]} coverage {r[2]}/{r[3]} failures={r[4]}")
    slow = [x for x in lat if x >= LIMIT_MS]
    for r in win:
        if 1000 * (r[1] - r[0]) >= LIMIT_MS:
            print(f"slow: started +{r[0] - t_stop:.3f} s after SIGSTOP, {1000 * (r[1] - r[0]):.1f} ms "
                  f"(coordinator took {r[6] / 1000:.1f} ms)")
    allowed = max(1, int(OUTLIER_SHARE * len(lat)))
    if lat:
        pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]  # noqa: E731
        print(f"stopped shard, marked down: {len(lat)} queries in {t_cont - t_down:.1f} s, "
              f"p50 {pct(0.50):.1f} ms, p99 {pct(0.99):.1f} ms, max {lat[-1]:.1f} ms, "
              f"{len(slow)} at or over {LIMIT_MS:.0f} ms (allowed {allowed}, each under {OUTLIER_MAX_MS:.0f} ms); "
              f"coordinator took max {max(r[6] for r in win) / 1000:.1f} ms")
        if pct(0.99) >= LIMIT_MS:
            bad.append(f"p99 {pct(0.99):.1f} ms")
    if len(lat) < 200:
        bad.append(f"only {len(lat)} queries in the window")
    if len(slow) > allowed or any(x >= OUTLIER_MAX_MS for x in slow):
        bad.append(f"{len(slow)} queries took {LIMIT_MS:.0f} ms or more: {[round(x, 1) for x in slow[:10]]}")
    before = [r for r in results if r[0] < t_down and r[0] >= t_stop]
    if before:
        print(f"before it was marked down: {len(before)} queries, slowest "
              f"{1000 * max(r[1] - r[0] for r in before):.0f} ms")
if t_back is None:
    bad.append("no full-coverage answer within 5 s of SIGCONT: " + shard2_detail())
else:
    print(f"rejoined {1000 * (t_back - t_cont):.0f} ms after SIGCONT (limit {1000 * REJOIN_S:.0f} ms)")
    if t_back - t_cont > REJOIN_S:
        bad.append(f"rejoined only after {t_back - t_cont:.2f} s")
    after = [r for r in results if r[0] > t_back]
    if any(r[2] != 3 for r in after):
        bad.append(f"{sum(r[2] != 3 for r in after)} of {len(after)} queries after the rejoin were partial")
for b in bad[:20]:
    print("FAIL", b)
ch.close()
sys.exit(1 if bad else 0)
PY
ok "stopped shard skipped within 50 ms once marked down; rejoined within 2 s of SIGCONT"

# the coordinator's log tells the story once: down, probe ok, back up
L=$R/coordinator.log
grep -E 'WARN shard 2 replica 127\.0\.0\.1:[0-9]+ marked down: ' "$L" >/dev/null || { cat "$L"; fail "no 'marked down' line"; }
grep -E 'INFO shard 2 replica 127\.0\.0\.1:[0-9]+ back up after [0-9.]+ s' "$L" >/dev/null || { cat "$L"; fail "no 'back up' line"; }
n=$(grep -c 'shard 2 replica' "$L")
[ "$n" -le 4 ] || { cat "$L"; fail "$n log lines about shard 2 (one per state change expected)"; }
grep 'shard 2 replica' "$L" | sed 's/^/  log: /'
ok "the coordinator logged the outage in $n lines"
