#!/usr/bin/env bash
# Prometheus metrics of a running cluster (docs/operations.md "Metrics"):
# `funnel cluster up` starts every daemon with a /metrics endpoint (RUN/NAME.metrics);
# after searches through the coordinator and a few direct Shard/Search calls,
# every process's text passes `promtool check metrics`, and each shard's request
# counter equals exactly the searches it served (the coordinator's fan-out, plus
# its hedges and retries, plus the direct calls), agreeing with Admin/Status.
source "$(dirname "$0")/lib.sh"
PROTO=$HERE/../../proto
PROMTOOL=/usr/bin/promtool

I=$(build_index idx3 3) || exit 1
R=$T/run
A=$(cluster_up "$I" "$R") || fail "cluster up"
for p in coordinator shard-0 shard-1 shard-2; do
    [ -s "$R/$p.metrics" ] || fail "no $R/$p.metrics"
done
ok "cluster up wrote a metrics address for every process"

# N searches through the coordinator, each answered in full
N=20 n=0
while IFS=$'\t' read -r qid text _; do
    [ -n "$qid" ] || continue
    "$FUNNEL" search --server "$A" --json --syntax plain --k 10 "$text" >"$T/q.json" 2>"$T/q.err" \
        || { cat "$T/q.err"; fail "query $qid"; }
    [ "$(json_get "$T/q.json" 'r["partial"]')" = False ] || fail "query $qid: partial"
    n=$((n + 1))
    [ $n -ge $N ] && break
done <"$DATA/cranfield/queries.tsv"
[ $n -eq $N ] || fail "ran $n queries"
ok "$N searches through the coordinator, all in full"

# Direct calls to shard 0 (3 OK searches, 1 refused with k=0), the Admin/Status
# of every shard, then every process's /metrics; the checks in python.
"$PY" - "$HERE" "$PROTO" "$R" "$N" "$PROMTOOL" "$T" "$DATA/cranfield/corpus.jsonl" <<'PY' || fail "metrics checks (above)"
import json, os, re, subprocess, sys, urllib.request
sys.path.insert(0, sys.argv[1])
import grpc
import funnel_pb as pb
pb.load(sys.argv[2])
run, N, promtool, tmp = sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
bad = []
def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond: bad.append(what)

shards = sorted(f[:-5] for f in os.listdir(run) if f.startswith("shard-") and f.endswith(".addr"))
addr = {s: open(os.path.join(run, s + ".addr")).read().strip() for s in shards}
ch0 = grpc.insecure_channel(addr["shard-0"])
DIRECT_OK = 3
for q in ["heat transfer", "boundary layer", "supersonic flow"][:DIRECT_OK]:
    pb.call(ch0, pb.SHARD_SEARCH, pb.M.ShardSearchRequest(query=q, k=5), pb.M.ShardSearchResponse)
try:
    pb.call(ch0, pb.SHARD_SEARCH, pb.M.ShardSearchRequest(query="heat", k=0), pb.M.ShardSearchResponse)
    check(False, "k=0 refused")
except grpc.RpcError as e:
    check(e.code() == grpc.StatusCode.INVALID_ARGUMENT, "k=0 refused with INVALID_ARGUMENT")
status = {}
for s in shards:
    st = pb.call(grpc.insecure_channel(addr[s]), pb.STATUS, pb.M.StatusRequest(), pb.M.StatusResponse)
    status[s] = (st.requests, st.errors, st.docs)

SERIES = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
def parse(text):
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"): continue
        m = SERIES.match(line)
        if not m: bad.append("unparsed line: " + line); continue
        out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out
def total(ser, name, **want):
    return sum(v for n, l, v in ser if n == name and all(l.get(k) == x for k, x in want.items()))
def has(ser, name): return any(n == name for n, _, _ in ser)

texts = {}
for p in ["coordinator"] + shards:
    hp = open(os.path.join(run, p + ".metrics")).read().strip()
    with urllib.request.urlopen("http://%s/metrics" % hp, timeout=10) as r:
        check(r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4"),
              "%s: GET /metrics 200 text/plain; version=0.0.4" % p)
        texts[p] = r.read().decode()
    open(os.path.join(tmp, p + ".prom"), "w").write(texts[p])
    try:
        urllib.request.urlopen("http://%s/nope" % hp, timeout=10)
        check(False, "%s: /nope is 404" % p)
    except urllib.error.HTTPError as e:
        check(e.code == 404, "%s: /nope is 404" % p)
    if os.access(promtool, os.X_OK):
        pr = subprocess.run([promtool, "check", "metrics"], input=texts[p], capture_output=True, text=True)
        check(pr.returncode == 0, "%s: promtool check metrics exit %d %s" % (p, pr.returncode,
                                                                            (pr.stdout + pr.stderr).strip()))
    else:
        print("note: no %s, the text format is not checked by promtool" % promtool)
ser = {p: parse(t) for p, t in texts.items()}
for p in ser:
    for name in ["process_resident_memory_bytes", "process_virtual_memory_bytes", "process_cpu_seconds_total",
                 "process_open_fds", "process_start_time_seconds"]:
        check(has(ser[p], name), "%s: %s" % (p, name))

co = ser["coordinator"]
if has(co, "funnel_coordinator_requests_total"):
    check(total(co, "funnel_coordinator_requests_total", method="search") == N,
          "coordinator: funnel_coordinator_requests_total{method=search} == %d" % N)
# a light load: nothing shed, nothing admitted in a queue's grace (--shed-grace-ms)
for name in ["funnel_coordinator_shed_total", "funnel_coordinator_shed_graced_total",
             "funnel_coordinator_background_shed_total"]:
    check(has(co, name) and total(co, name) == 0, "coordinator: %s 0" % name)
docs = 0
for s in shards:
    m, i = ser[s], s.split("-")[1]
    srch = total(m, "funnel_shard_requests_total", method="search")
    nok = total(m, "funnel_shard_requests_total", method="search", status="OK")
    # what the coordinator sent this shard: a call per search, plus hedges and retries
    extra = total(co, "funnel_coordinator_hedges_total", shard=i) + total(co, "funnel_coordinator_retries_total", shard=i)
    direct = DIRECT_OK + 1 if s == "shard-0" else 0
    check(srch == N + extra + direct,
          "%s: funnel_shard_requests_total{method=search} %d == %d searches + %d hedges/retries + %d direct"
          % (s, srch, N, extra, direct))
    check(nok == N + extra + (DIRECT_OK if s == "shard-0" else 0), "%s: status=OK %d" % (s, nok))
    if s == "shard-0":
        check(total(m, "funnel_shard_requests_total", method="search", status="INVALID_ARGUMENT") == 1,
              "shard-0: one INVALID_ARGUMENT")
    # Admin/Status counts the same calls (every method but status and push)
    counted = sum(total(m, "funnel_shard_requests_total", method=x) for x in ["search", "rescore", "fetch", "get"])
    errs = counted - sum(total(m, "funnel_shard_requests_total", method=x, status="OK")
                         for x in ["search", "rescore", "fetch", "get"])
    check((counted, errs) == status[s][:2], "%s: requests/errors %s == Admin/Status %s"
          % (s, (counted, errs), status[s][:2]))
    check(total(m, "funnel_shard_requests_total", method="status", status="OK") >= 1, "%s: Status counted" % s)
    check(total(m, "funnel_shard_request_duration_seconds_count", method="search") == srch,
          "%s: request_duration_seconds_count == requests" % s)
    check(total(m, "funnel_shard_deadline_dropped_total") == 0, "%s: no deadline drops" % s)
    check(total(m, "funnel_shard_queue_wait_seconds_count") == nok,
          "%s: every search that ran waited once (queue_wait_seconds_count)" % s)
    check([l.get("model") for n, l, v in m if n == "funnel_shard_model_info" and v == 1] == ["none"],
          "%s: model_info{model=none} 1 (no model loaded)" % s)
    check(total(m, "funnel_shard_queue_depth") == 0, "%s: queue_depth 0 at rest" % s)
    check(total(m, "funnel_shard_damaged") == 0, "%s: damaged 0" % s)
    check(total(m, "funnel_shard_index_docs") == status[s][2], "%s: index_docs == Status docs" % s)
    info = [l for n, l, v in m if n == "funnel_shard_index_info" and v == 1]
    check(len(info) == 1 and info[0].get("shard") == i and info[0].get("schema"), "%s: index_info %s" % (s, info))
    docs += status[s][2]
check(docs == sum(1 for line in open(sys.argv[7]) if line.strip()), "all shards' docs: %d" % docs)
sys.exit(1 if bad else 0)
PY
ok "promtool accepts every process's metrics; shard request counters are exact"

# The dashboard uses only metrics that exist: every name in its expressions is
# in what the coordinator and the shards export (tests/ops/check_dashboard.py).
"$PY" "$HERE/../ops/check_dashboard.py" "$HERE/../../ops/grafana/funnel.json" "$T"/coordinator.prom "$T"/shard-*.prom \
    >"$T/dash.out" 2>&1 || { cat "$T/dash.out"; fail "dashboard: metric names"; }
ok "every metric name in ops/grafana/funnel.json is exported by the coordinator or a shard: $(tail -n 1 "$T/dash.out")"

# A damaged index (data.mdb changed under the shard) shows: damaged 1 and the
# DATA_LOSS replies counted.
touch -d "2020-01-01" "$I/shard-002/data.mdb"
"$FUNNEL" search --server "$A" --json --syntax plain "heat transfer" >"$T/q.json" 2>/dev/null
"$PY" - "$(cat "$R/shard-2.metrics")" <<'PY' || fail "damaged shard's metrics"
import sys, urllib.request
t = urllib.request.urlopen("http://%s/metrics" % sys.argv[1], timeout=10).read().decode()
lines = t.splitlines()
ok = "funnel_shard_damaged 1" in lines and any(
    l.startswith('funnel_shard_requests_total{method="search",status="DATA_LOSS"} ') for l in lines)
print("\n".join(l for l in lines if l.startswith(("funnel_shard_damaged", "funnel_shard_requests_total"))))
sys.exit(0 if ok else 1)
PY
ok "a damaged shard reads funnel_shard_damaged 1 and counts its DATA_LOSS replies"
