#!/usr/bin/env bash
# `funnel bench` (ops/ops_bench.c, issue 12's load tool) against a 3-shard
# cranfield cluster: closed and open loop JSON reports, a stalled shard (the
# run still finishes on time and reports partial answers or errors), usage
# errors exit 2, an unreachable server exits 1.
source "$(dirname "$0")/lib.sh"

Q=$DATA/cranfield/queries.tsv

# usage errors: exit 2, the message names the flag
usage() {   # usage WORD ARGS... : exit 2 and WORD in the message
    local word=$1
    shift
    "$FUNNEL" bench "$@" >"$T/u.out" 2>"$T/u.err"
    local rc=$?
    [ $rc -eq 2 ] || fail "bench $* exited $rc, not 2"
    grep -q -- "$word" "$T/u.err" || { cat "$T/u.err"; fail "bench $*: message does not name $word"; }
}
usage --server --queries "$Q" --concurrency 1 --duration 1
usage --queries --server 127.0.0.1:1 --concurrency 1 --duration 1
usage --duration --server 127.0.0.1:1 --queries "$Q" --concurrency 1
usage "--rate" --server 127.0.0.1:1 --queries "$Q" --duration 1
usage "--rate" --server 127.0.0.1:1 --queries "$Q" --duration 1 --rate 5 --concurrency 2
usage --rate --server 127.0.0.1:1 --queries "$Q" --duration 1 --rate 0
usage --rate --server 127.0.0.1:1 --queries "$Q" --duration 1 --rate abc
usage --concurrency --server 127.0.0.1:1 --queries "$Q" --duration 1 --concurrency 2000
usage --duration --server 127.0.0.1:1 --queries "$Q" --duration 90000 --concurrency 1
usage --deadline-ms --server 127.0.0.1:1 --queries "$Q" --duration 1 --concurrency 1 --deadline-ms 0
usage --syntax --server 127.0.0.1:1 --queries "$Q" --duration 1 --concurrency 1 --syntax fancy
usage --timeline --server 127.0.0.1:1 --queries "$Q" --duration 1 --concurrency 1 --timeline "$T/x.tl"
"$FUNNEL" bench --help | grep -q -- '--concurrency' || fail "bench --help"
"$FUNNEL" --help | grep -q '^  bench ' || fail "bench is not in funnel --help"
ok "usage errors exit 2 and name the flag"

# nothing listens: exit 1 at once; unreadable queries: exit 1
"$FUNNEL" bench --server 127.0.0.1:1 --queries "$Q" --concurrency 1 --duration 1 >"$T/o" 2>"$T/e"
[ $? -eq 1 ] || fail "an unreachable server should exit 1"
grep -q UNAVAILABLE "$T/e" || { cat "$T/e"; fail "unreachable: message"; }
"$FUNNEL" bench --server 127.0.0.1:1 --queries "$T/none.tsv" --concurrency 1 --duration 1 >"$T/o" 2>"$T/e"
[ $? -eq 1 ] || fail "unreadable queries should exit 1"
ok "unreachable server and unreadable queries exit 1"

I3=$(build_index idx3 3) || exit 1
R=$T/run
A=$(cluster_up "$I3" "$R") || fail "cluster up"

# check FILE MODE DURATION [RATE]: the report's fields and their consistency
check() {
    "$PY" - "$@" <<'EOF'
import json, sys
path, mode, dur = sys.argv[1], sys.argv[2], float(sys.argv[3])
r = json.load(open(path))
need = ["qps", "goodput_qps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms", "requests",
        "ok", "errors", "errors_by_status", "partial", "partial_share", "duration_s", "mode", "deadline_ms"]
need += ["rate"] if mode == "open" else ["concurrency"]
missing = [k for k in need if k not in r]
assert not missing, "missing fields %s" % missing
assert r["mode"] == mode, r["mode"]
assert r["requests"] > 0, "no requests"
assert r["errors"] == 0, "errors: %s" % r["errors_by_status"]
assert r["ok"] == r["requests"], (r["ok"], r["requests"])
assert abs(r["duration_s"] - dur) < 1e-9
assert abs(r["qps"] - r["requests"] / dur) <= 0.01 * r["qps"] + 1e-9, (r["qps"], r["requests"])
assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["p999_ms"] <= r["max_ms"], r
assert r["mean_ms"] <= r["max_ms"]
if mode == "open":
    rate = float(sys.argv[4])
    assert abs(r["qps"] - rate) <= 0.2 * rate, "open loop qps %g, target %g" % (r["qps"], rate)
print("%s: %d requests, %.1f qps, p50 %.2f p99 %.2f max %.2f ms" % (mode, r["requests"], r["qps"], r["p50_ms"],
                                                                     r["p99_ms"], r["max_ms"]))
EOF
}

"$FUNNEL" bench --server "$A" --queries "$Q" --concurrency 2 --duration 2 --json >"$T/c.json" 2>"$T/c.err" \
    || { cat "$T/c.err"; fail "closed loop"; }
msg=$(check "$T/c.json" closed 2 2>&1) || { echo "$msg"; cat "$T/c.json"; fail "closed loop report"; }
ok "$msg"
"$FUNNEL" bench --server "$A" --queries "$Q" --rate 50 --duration 2 --json >"$T/o.json" 2>"$T/o.err" \
    || { cat "$T/o.err"; fail "open loop"; }
msg=$(check "$T/o.json" open 2 50 2>&1) || { echo "$msg"; cat "$T/o.json"; fail "open loop report"; }
ok "$msg"
# --timeline: a line per measured request, due times in [0, 2) s and in order
"$FUNNEL" bench --server "$A" --queries "$Q" --rate 50 --duration 1 --timeline "$T/o.tl" --json >"$T/o2.json" \
    2>"$T/o2.err" || { cat "$T/o2.err"; fail "open loop with --timeline"; }
msg=$(/usr/bin/python3 - "$T/o2.json" "$T/o.tl" <<'EOF2'
import json, sys
r = json.load(open(sys.argv[1]))
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])]
assert len(rows) == r["requests"], "timeline: %d lines, the report %d requests" % (len(rows), r["requests"])
due = [float(x[0]) for x in rows]
lat = sorted(float(x[1]) for x in rows)
assert all(0 <= d < 1.0 for d in due) and due == sorted(due), "timeline: due times out of [0, 1) s or order"
assert sum(x[2] == "OK" for x in rows) == r["ok"], "timeline: OK lines differ from the report's ok"
assert abs(lat[-1] - r["max_ms"]) <= 0.01 * r["max_ms"] + 0.01, "timeline max %g, report %g" % (lat[-1], r["max_ms"])
print("timeline: %d lines, due %.3f..%.3f s, max %.2f ms (report %.2f)" % (len(rows), due[0], due[-1], lat[-1], r["max_ms"]))
EOF2
) || { echo "$msg"; head -n 5 "$T/o.tl"; fail "--timeline file"; }
ok "$msg"
# the plain-text report, with a warm-up
"$FUNNEL" bench --server "$A" --queries "$Q" --concurrency 1 --duration 0.5 --warmup 0.2 >"$T/t.out" 2>"$T/t.err" \
    || { cat "$T/t.err"; fail "text report"; }
grep -q '^requests [0-9]* in 0.5 s: .* qps (concurrency 1, closed loop); ok ' "$T/t.out" \
    && grep -q '^latency ms: p50 ' "$T/t.out" || { cat "$T/t.out"; fail "text report format"; }
ok "text report: $(head -n 1 "$T/t.out")"

# a stalled shard: the coordinator answers partially (or requests fail); the
# tool reports it and finishes on time
P=$(cat "$R/shard-2.pid")
kill -STOP "$P"
resume() { kill -CONT "$P" 2>/dev/null; }
trap 'rc=$?; resume; (exit $rc); cleanup' EXIT
t0=$(now_ms)
"$FUNNEL" bench --server "$A" --queries "$Q" --rate 20 --duration 2 --deadline-ms 300 --json >"$T/s.json" 2>"$T/s.err"
rc=$?
dt=$(( $(now_ms) - t0 ))
resume
[ $rc -eq 0 ] || { cat "$T/s.err"; fail "stalled shard: exit $rc"; }
[ $dt -lt 6000 ] || fail "stalled shard: the run took $dt ms for 2 s of load"
got=$(json_get "$T/s.json" '(r["requests"] >= 32, r["partial"] > 0 or r["errors"] > 0, r["partial"] + r["errors"])') \
    || fail "stalled shard: bad JSON"
case "$got" in
    "(True, True, "*) ;;
    *) cat "$T/s.json"; fail "stalled shard: (requests >= 32, partial or errors, how many) = $got" ;;
esac
ok "stalled shard: $(json_get "$T/s.json" '"%d requests, %d partial, errors %s, p99 %.1f ms" % (r["requests"], r["partial"], r["errors_by_status"], r["p99_ms"])') in $dt ms"
