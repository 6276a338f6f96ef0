#!/usr/bin/env bash
# Network faults between the coordinator and one shard, made by
# tests/tools/faultproxy (the kernel here has no netem): a 2-shard cluster,
# and a second coordinator whose topology reaches shard 1 through the proxy.
#   no faults      -> full coverage, the same hits and scores as the direct coordinator
#   delay_ms=200   -> full answers, took_us >= 2 x 200 ms (both directions);
#                     a 100 ms deadline -> partial 1/2 within the deadline, not an error
#   stall=1        -> partial answers within the deadline (a black hole)
#   reset=1 / refuse=1 -> partial answers; reset=0 -> full coverage again in seconds
# Called as: bash test_fault_proxy.sh FUNNEL SHARD COORDINATOR FAULTPROXY
source "$(dirname "$0")/lib.sh"
PROXY=${4:-}
[ -x "$PROXY" ] || { echo "SKIP: faultproxy is not built"; exit 77; }
T0=$(now_ms)

I=$(build_index idx 2) || exit 1
A=$(cluster_up "$I" "$T/run") || fail "cluster up"

# the proxy in front of shard 1; it is ours to stop (cluster down does not know it)
CTL=$T/px.ctl
"$PROXY" --listen 127.0.0.1:0 --addr-file "$T/px.addr" --target "$(cat "$T/run/shard-1.addr")" \
    --control "$CTL" 2>"$T/px.err" &
PXPID=$!
stop_proxy() { kill -TERM "$PXPID" 2>/dev/null && wait "$PXPID" 2>/dev/null; }
trap 'rc=$?; stop_proxy; (exit $rc); cleanup' EXIT
for _ in $(seq 100); do [ -s "$T/px.addr" ] && break; sleep 0.05; done
[ -s "$T/px.addr" ] || { cat "$T/px.err"; fail "faultproxy wrote no address"; }

# coordinator 2 in its own run dir, so lib.sh's cleanup stops it with `cluster down`.
# A 2 s probe deadline: the 2 x 200 ms delay must show as latency, not trip the
# breaker's 500 ms probe deadline (that path is the stall case's).
R2=$T/run2
mkdir -p "$R2"
printf 'shard 0 %s\nshard 1 %s\n' "$(cat "$T/run/shard-0.addr")" "$(cat "$T/px.addr")" >"$R2/topology.conf"
"$FUNNEL_COORDINATOR_BIN" --topology "$R2/topology.conf" --listen 127.0.0.1:0 \
    --addr-file "$R2/coordinator.addr" --probe-deadline-ms 2000 >"$R2/coordinator.log" 2>&1 &
echo $! >"$R2/coordinator.pid"
for _ in $(seq 200); do [ -s "$R2/coordinator.addr" ] && break; sleep 0.05; done
[ -s "$R2/coordinator.addr" ] || fail "coordinator 2 wrote no address"
A2=$(cat "$R2/coordinator.addr")

# set_faults TEXT: replace the control file atomically and wait for the proxy's log line
set_faults() {
    local before
    before=$(grep -c 'faults:' "$T/px.err")
    printf '%s\n' "$@" >"$CTL.tmp" && mv "$CTL.tmp" "$CTL"
    for _ in $(seq 60); do
        [ "$(grep -c 'faults:' "$T/px.err")" -gt "$before" ] && return 0
        sleep 0.05
    done
    cat "$T/px.err"
    fail "the proxy did not take: $*"
}

# q SERVER OUT ARGS...: one query; rc of funnel search; wall ms in $WALL
q() {
    local srv=$1 out=$2 t0
    shift 2
    t0=$(now_ms)
    "$FUNNEL" search --server "$srv" --json --syntax plain "$@" >"$out" 2>"$out.err"
    local rc=$?
    WALL=$(( $(now_ms) - t0 ))
    return $rc
}
cov() { json_get "$1" '(r["partial"], r["coverage"]["shards_answered"])'; }

# wait_full SECONDS: until coordinator 2 answers with 2/2 shards; prints the ms it took
wait_full() {
    local t0 end
    t0=$(now_ms)
    end=$(( t0 + $1 * 1000 ))
    while [ "$(now_ms)" -lt "$end" ]; do
        if q "$A2" "$T/w.json" --deadline-ms 1000 "boundary layer" && [ "$(cov "$T/w.json")" = "(False, 2)" ]; then
            echo $(( $(now_ms) - t0 ))
            return 0
        fi
        sleep 0.1
    done
    return 1
}

mapfile -t QUERIES < <(head -n 10 "$DATA/cranfield/queries.tsv" | cut -f2)
[ ${#QUERIES[@]} -eq 10 ] || fail "cannot read 10 queries"

# 1. no faults: coordinator 2 (through the proxy) = coordinator 1 (direct)
ms=$(wait_full 10) || fail "coordinator 2 never reached full coverage: $(cat "$T/w.json" "$T/w.json.err")"
hits='[(h["id"], "%.9g" % h["score"]) for h in r["hits"]]'
n=0
for text in "${QUERIES[@]}"; do
    q "$A" "$T/d.json" --k 20 "$text" || fail "direct query failed: $(cat "$T/d.json.err")"
    q "$A2" "$T/p.json" --k 20 "$text" || fail "proxied query failed: $(cat "$T/p.json.err")"
    [ "$(cov "$T/p.json")" = "(False, 2)" ] || fail "no faults: coverage $(cov "$T/p.json") for '$text'"
    [ "$(json_get "$T/d.json" "$hits")" = "$(json_get "$T/p.json" "$hits")" ] \
        || fail "no faults: different hits for '$text'"
    n=$((n + 1))
done
ok "no faults: $n queries through the proxy, 2/2 shards, same top 20 (ids, scores) as direct"

# 2. delay 200 ms each way: full answers that take >= 400 ms (server's took_us)
set_faults delay_ms=200
worst=0 best=999999
for text in "${QUERIES[@]:0:5}"; do
    q "$A2" "$T/p.json" --deadline-ms 3000 "$text" || fail "delay 200: query failed: $(cat "$T/p.json.err")"
    [ "$(cov "$T/p.json")" = "(False, 2)" ] || fail "delay 200: coverage $(cov "$T/p.json")"
    took=$(( $(json_get "$T/p.json" 'r["took_us"]') / 1000 ))
    [ "$took" -gt "$worst" ] && worst=$took
    [ "$took" -lt "$best" ] && best=$took
done
[ "$best" -ge 395 ] && [ "$worst" -lt 1500 ] || fail "delay 200: took $best..$worst ms, expected 400..1500"
ok "delay_ms=200: 5 queries, 2/2 shards, took $best..$worst ms (>= 2 x 200 ms)"

# the same through funnel bench (closed loop, 2 s): the latency is the delay's
printf '1\tboundary layer\n2\theat transfer\n3\tsupersonic flow\n' >"$T/bq.tsv"
"$FUNNEL" bench --server "$A2" --queries "$T/bq.tsv" --concurrency 2 --duration 2 --deadline-ms 3000 --json \
    >"$T/bench.json" 2>"$T/bench.err" || fail "bench: $(cat "$T/bench.err")"
b=$(json_get "$T/bench.json" '"%d %d %d %d" % (r["p50_ms"], r["p99_ms"], r["errors"], r["partial"])')
read -r p50 p99 berr bpart <<<"$b"
[ "$p50" -ge 395 ] && [ "$berr" -eq 0 ] && [ "$bpart" -eq 0 ] || fail "bench with delay 200: p50 $p50 ms, errors $berr, partial $bpart"
ok "delay_ms=200: funnel bench p50 $p50 ms, p99 $p99 ms, 0 errors, 0 partial"

# a 100 ms deadline: shard 1 cannot make it; a partial answer (1/2) in time, not an error
worst=0
for text in "${QUERIES[@]:0:5}"; do
    q "$A2" "$T/p.json" --deadline-ms 100 "$text" || fail "delay 200, deadline 100: error $(cat "$T/p.json.err")"
    got=$(json_get "$T/p.json" '(r["partial"], r["coverage"]["shards_answered"], r["took_us"] < 150000, [f["shard"] for f in r["failures"]])')
    [ "$got" = "(True, 1, True, [1])" ] || fail "delay 200, deadline 100: (partial, answered, took<150ms, failed) = $got"
    [ "$WALL" -gt "$worst" ] && worst=$WALL
done
# wall time includes starting the funnel process
[ "$worst" -lt 1000 ] || fail "a 100 ms query took $worst ms of wall time"
ok "delay_ms=200, deadline 100 ms: 5 queries partial 1/2, took < 150 ms, slowest wall $worst ms"

# 3. stall: a black hole; answers partial within a 300 ms deadline
set_faults stall=1
for i in 1 2 3 4 5 6; do
    q "$A2" "$T/p.json" --deadline-ms 300 "${QUERIES[$i]}" || fail "stall: error $(cat "$T/p.json.err")"
    got=$(json_get "$T/p.json" '(r["partial"], r["coverage"]["shards_answered"], r["took_us"] < 350000)')
    [ "$got" = "(True, 1, True)" ] || fail "stall query $i: (partial, answered, took<350ms) = $got"
done
ok "stall=1: 6 queries partial 1/2 within 300 ms (+50 ms)"

# 4. reset every chunk (TCP loss), then refuse new connections: degraded, never an error
set_faults reset=1
for i in 1 2 3 4; do
    q "$A2" "$T/p.json" --deadline-ms 1000 "${QUERIES[$i]}" || fail "reset: error $(cat "$T/p.json.err")"
    [ "$(cov "$T/p.json")" = "(True, 1)" ] || fail "reset=1: coverage $(cov "$T/p.json")"
done
ok "reset=1: 4 queries partial 1/2 ($(grep -c marked "$R2/coordinator.log") 'marked down' lines in the log)"
set_faults refuse=1 reset=1
for i in 1 2 3; do
    q "$A2" "$T/p.json" --deadline-ms 1000 "${QUERIES[$i]}" || fail "refuse: error $(cat "$T/p.json.err")"
    [ "$(cov "$T/p.json")" = "(True, 1)" ] || fail "refuse=1: coverage $(cov "$T/p.json")"
done
ok "refuse=1: 3 queries partial 1/2"

# 5. faults off: full coverage again within a few seconds, the same results as direct
set_faults reset=0
ms=$(wait_full 8) || fail "no full coverage 8 s after the faults ended: $(cov "$T/w.json")"
ok "faults off: 2/2 shards again after $ms ms"
for text in "${QUERIES[@]:0:3}"; do
    q "$A" "$T/d.json" --k 20 "$text" && q "$A2" "$T/p.json" --k 20 "$text" || fail "query after recovery"
    [ "$(json_get "$T/d.json" "$hits")" = "$(json_get "$T/p.json" "$hits")" ] || fail "after recovery: different hits"
done
ok "after recovery: same top 20 as direct"

kill -0 "$PXPID" || fail "faultproxy died"
stop_proxy
grep -q '^faultproxy: exit: ' "$T/px.err" || { cat "$T/px.err"; fail "faultproxy did not exit cleanly"; }
ok "$(grep '^faultproxy: exit: ' "$T/px.err" | sed 's/^faultproxy: //') in $(( ($(now_ms) - T0) / 1000 )) s"
