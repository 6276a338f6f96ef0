#!/usr/bin/env bash
# serving.sh BUILD_DIR [--quick] - issue 12, acceptance 1-3: serving under faults and overload.
#
# A 3-shard Cranfield index; every figure comes from `funnel bench --json` in this run.
#   capacity  closed loop, concurrency 8, 10 s: the cluster's qps (3 shards x 2 replicas).
#   A1 kills  3 x 2 replicas, 60 s open loop at 70% of capacity, kill -9 one replica every
#             10 s and `funnel cluster restart` it 2 s later: failed and partial responses
#             (both must be 0). Then 1 replica per shard, the same kills: every answer
#             within its deadline (max latency vs deadline) and its coverage says which
#             shards answered (partial answers are counted; each must name a failure).
#   A2 delay  one replica of shard 0 behind tests/tools/faultproxy with 200 ms added each
#             way, closed loop concurrency 2, 20 s: p99 with hedging over the no-fault p99
#             (target <= 1.5), and the p99 without hedging (--hedge-percentile 0).
#   A3 overload  open loop at 2x capacity for 30 s, deadline 1000 ms: goodput over
#             capacity (target >= 0.8), the slowest answer over the deadline (target
#             <= 1.1), statuses (shed = RESOURCE_EXHAUSTED); then how long until a run
#             at 50% of capacity has no error (target <= 5 s).
# --quick: 20 s instead of 60 s for A1, 10 s for A2 and A3 (a smoke run, not the figures).
# SKIP=A1 (or A2, A3, comma-separated) leaves parts out.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
QUICK=0; [ "${2:-}" = --quick ] && QUICK=1
F=$B/ops/funnel
FP=$B/tests/tools/faultproxy
COORD=$B/coordinator/funnel-coordinator
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${DATA:-$HERE/../../../shared/data}
Q=$DATA/cranfield/queries.tsv
T=$(mktemp -d /tmp/funnel-serving.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for r in "$T"/run-*; do [ -d "$r" ] && "$F" cluster down --dir "$r" >/dev/null 2>&1; done
    rm -rf "$T"
}
trap cleanup EXIT
j() { /usr/bin/python3 -c "import json,sys; r=json.load(open('$1')); print($2)"; }

"$F" index build --input "$DATA/cranfield/corpus.jsonl" --shards 3 --out "$T/idx" >"$T/build.log" 2>&1
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

up() {   # up NAME REPLICAS -> coordinator address
    "$F" cluster up --index "$T/idx" --dir "$T/run-$1" --replicas "$2" 2>"$T/up-$1.err"
}

# ---- capacity ----
A=$(up main 2)
"$F" bench --server "$A" --queries "$Q" --concurrency 2 --duration 3 --json >/dev/null   # warm-up
"$F" bench --server "$A" --queries "$Q" --concurrency 8 --duration 10 --json >"$T/cap.json"
CAP=$(j "$T/cap.json" "r['qps']")
echo "capacity: $CAP qps (closed loop, concurrency 8, p99 $(j "$T/cap.json" "r['p99_ms']") ms)"

# ---- A1: kill -9 a replica every 10 s ----
kills() {   # kills RUNDIR SECONDS NAMES...: kill -9 one every 10 s, restart it 2 s later
    local run=$1 secs=$2; shift 2
    local names=("$@") i=0 t=0
    while [ $((t + 10)) -le "$secs" ]; do
        sleep 8
        local n=${names[$((i % ${#names[@]}))]}
        kill -9 "$(cat "$run/$n.pid")"
        sleep 2
        "$F" cluster restart --dir "$run" "$n" >>"$T/restart.log" 2>&1 || echo "restart $n failed: $(tail -n 1 "$T/restart.log")"
        i=$((i + 1)); t=$((t + 10))
    done
}
skip() { case ",${SKIP:-}," in *",$1,"*) return 0 ;; esac; return 1; }
D1=60; [ $QUICK = 1 ] && D1=20
RATE=$(/usr/bin/python3 -c "print(int($CAP * 0.7))")
if ! skip A1; then
"$F" bench --server "$A" --queries "$Q" --rate "$RATE" --duration "$D1" --deadline-ms 1000 --json >"$T/a1.json" &
BP=$!
kills "$T/run-main" "$D1" shard-0-r0 shard-1-r1 shard-2-r0 shard-0-r1 shard-1-r0 shard-2-r1
wait $BP
echo "A1 3x2 replicas, $D1 s at $RATE qps (70%), kill -9 every 10 s: requests $(j "$T/a1.json" "r['requests']")," \
     "failed $(j "$T/a1.json" "r['errors']") $(j "$T/a1.json" "r['errors_by_status']"), partial $(j "$T/a1.json" "r['partial']")," \
     "p99 $(j "$T/a1.json" "r['p99_ms']") ms, max $(j "$T/a1.json" "r['max_ms']") ms"

A1=$(up one 1)
"$F" bench --server "$A1" --queries "$Q" --concurrency 2 --duration 2 --json >/dev/null
"$F" bench --server "$A1" --queries "$Q" --rate "$RATE" --duration "$D1" --deadline-ms 1000 --json >"$T/a1b.json" &
BP=$!
kills "$T/run-one" "$D1" shard-0 shard-1 shard-2
wait $BP
echo "A1 1 replica per shard, the same kills: requests $(j "$T/a1b.json" "r['requests']"), failed $(j "$T/a1b.json" "r['errors']")" \
     "$(j "$T/a1b.json" "r['errors_by_status']"), partial $(j "$T/a1b.json" "r['partial']"), max $(j "$T/a1b.json" "r['max_ms']") ms" \
     "against a 1000 ms deadline"
"$F" cluster down --dir "$T/run-one" >/dev/null
fi

# ---- A2: 200 ms on one replica ----
if ! skip A2; then
D2=20; [ $QUICK = 1 ] && D2=10
R1=$(cat "$T/run-main/shard-0-r1.addr")
"$FP" --listen 127.0.0.1:0 --addr-file "$T/px.addr" --target "$R1" --control "$T/ctl" >/dev/null 2>"$T/px.err" &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$T/px.addr" ] && break; sleep 0.1; done
sed "s/$R1/$(cat "$T/px.addr")/" "$T/run-main/topology.conf" >"$T/topo-px.conf"
coord() {   # coord NAME FLAGS... -> address (a coordinator over the proxied topology)
    local name=$1; shift
    "$COORD" --topology "$T/topo-px.conf" --listen 127.0.0.1:0 --addr-file "$T/$name.addr" --access-log 0 "$@" \
        >/dev/null 2>"$T/$name.log" &   # stdout not $(...)'s pipe, or it waits for the daemon
    PIDS+=($!)
    for _ in $(seq 50); do [ -s "$T/$name.addr" ] && break; sleep 0.1; done
    cat "$T/$name.addr"
}
CH=$(coord hedge)
CN=$(coord nohedge --hedge-percentile 0)
bench2() { "$F" bench --server "$1" --queries "$Q" --concurrency 2 --duration "$D2" --warmup 2 --json >"$2"; }
bench2 "$CH" "$T/a2-base.json"
echo "delay_ms=200" >"$T/ctl"; sleep 0.5
bench2 "$CH" "$T/a2-hedge.json"
bench2 "$CN" "$T/a2-nohedge.json"
P0=$(j "$T/a2-base.json" "r['p99_ms']"); PH=$(j "$T/a2-hedge.json" "r['p99_ms']"); PN=$(j "$T/a2-nohedge.json" "r['p99_ms']")
echo "A2 200 ms on one replica of shard 0: p99 no fault $P0 ms; with hedging $PH ms" \
     "(ratio $(/usr/bin/python3 -c "print(round($PH / $P0, 2))"), max $(j "$T/a2-hedge.json" "r['max_ms']") ms);" \
     "without hedging $PN ms (max $(j "$T/a2-nohedge.json" "r['max_ms']") ms)"
echo "delay_ms=0" >"$T/ctl"
fi

# ---- A3: 2x capacity ----
skip A3 && exit 0
D3=30; [ $QUICK = 1 ] && D3=10
OVER=$(/usr/bin/python3 -c "print(int($CAP * 2))")
"$F" bench --server "$A" --queries "$Q" --rate "$OVER" --duration "$D3" --deadline-ms 1000 --json >"$T/a3.json"
echo "A3 $D3 s at $OVER qps (2x): goodput $(j "$T/a3.json" "r['goodput_qps']") qps =" \
     "$(j "$T/a3.json" "round(r['goodput_qps'] / $CAP, 2)") of capacity; statuses $(j "$T/a3.json" "r['errors_by_status']");" \
     "slowest answer $(j "$T/a3.json" "r['max_ms']") ms = $(j "$T/a3.json" "round(r['max_ms'] / 1000, 3)") of the deadline;" \
     "p99 $(j "$T/a3.json" "r['p99_ms']") ms"
HALF=$(/usr/bin/python3 -c "print(max(1, int($CAP * 0.5)))")
t0=$(date +%s.%N)
for i in $(seq 30); do
    "$F" bench --server "$A" --queries "$Q" --rate "$HALF" --duration 1 --deadline-ms 1000 --json >"$T/rec.json"
    [ "$(j "$T/rec.json" "r['errors']")" = 0 ] && break
done
echo "A3 recovery: the first clean 1 s run at $HALF qps ended $(/usr/bin/python3 -c "print(round($(date +%s.%N) - $t0, 1))") s after the overload"
