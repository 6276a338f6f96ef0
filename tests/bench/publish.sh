#!/usr/bin/env bash
# publish.sh BUILD_DIR [DOCS] - issue 13, acceptance 1: index generations swapped under load.
#
# Two generations of the same synthetic corpus (../shared/tools/gen_corpus.py, DOCS documents,
# default 1,000,000; 3 shards), built one after the other, g2 while g1 serves. Every figure is
# from `funnel bench --json` in this run:
#   capacity  closed loop, concurrency 8, 10 s, on g1
#   rounds    R rounds (default 3) of three windows of open-loop load at 70% of capacity, W s
#             each (default 35: a publish stages for about 12 s and gates for 10): before (no change), publish (g2 published through the gate 5 s
#             in), rollback (back to g1 5 s in). Round r > 1 publishes g2 under a new name (a
#             hard-linked copy of its files, so every round loads a generation the shards do not
#             hold) and so also unloads the previous round's. Per round: failed requests and the
#             p99 of each window; then each swap's p99 over its round's before-window p99, the
#             median of those over the rounds, and the pooled ratio (the p99 of every publish
#             window's requests over that of every before window's; target <= 1.5). Rounds,
#             because this machine's own noise (a VM whose kernel pages out memory untouched for
#             a minute: DAMON) moves a single window's p99 by 2x with nothing happening.
#   kill      a build of g3 killed with SIGKILL mid-build: the live generation's files are
#             unchanged (their checksums), it still serves, and publishing g3 is refused
# W=10 for shorter windows; R=1 for one round. The corpus, g1 and g2 are kept in $CACHE
# (default /tmp/funnel-bench); REUSE=1 serves the ones built there by an earlier run.
# The publish runs as an operator would: staging (each shard hashes the new files at
# --load-rate-mb and replays its recent searches on them, on a loader thread at the lowest
# priority, one replica at a time), the gate's 200 shadow queries paced at GATE_QPS searches a
# second (default 20), the switch. Each window's timeline (funnel bench --timeline) is kept
# in $CACHE/publish-last/.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
N=${2:-1000000}
W=${W:-35}
F=$B/ops/funnel
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${SHARED:-$HERE/../../../shared}
CACHE=${CACHE:-/tmp/funnel-bench}
T=$(mktemp -d /tmp/funnel-publish.XXXXXX)
cleanup() {
    [ -d "$T/run" ] && "$F" cluster down --dir "$T/run" >/dev/null 2>&1
    rm -rf "$T"
}
trap cleanup EXIT
j() { /usr/bin/python3 -c "import json,sys; r=json.load(open('$1')); print($2)"; }

mkdir -p "$CACHE"
C=$CACHE/corpus-$N.jsonl
Q=$CACHE/queries-$N.tsv
[ -s "$C" ] || /usr/bin/python3 "$SHARED/tools/gen_corpus.py" --docs "$N" --seed 1 --out "$C" \
    --queries 2000 --queries-out "$Q"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
build() {   # build DIR: the 3-shard index, seconds to stdout (REUSE=1: a finished one in $CACHE is kept)
    local t0=$(date +%s.%N)
    if [ "${REUSE:-0}" = 1 ] && [ -f "$1/index.json" ]; then echo "0 (reused)"; return; fi
    rm -rf "$1"
    "$F" index build --input "$C" --shards 3 --out "$1" >"$T/build-$(basename "$1").log" 2>&1
    echo "$(date +%s.%N) - $t0" | bc
}
G1=$CACHE/publish-g1-$N
G2=$CACHE/publish-g2-$N
echo "g1: built in $(build "$G1") s"
A=$("$F" cluster up --index "$G1" --dir "$T/run" 2>"$T/up.err")
"$F" bench --server "$A" --queries "$Q" --concurrency 2 --duration 3 --json >/dev/null   # warm-up
"$F" bench --server "$A" --queries "$Q" --concurrency 8 --duration 10 --json >"$T/cap.json"
CAP=$(j "$T/cap.json" "r['qps']")
RATE=$(j "$T/cap.json" "int(r['qps'] * 0.7)")
echo "capacity: $CAP qps (closed loop, concurrency 8); load: $RATE qps (70%)"
# g2 is built while g1 serves (no load then: the build's two cores are not the serving figure)
echo "g2: built in $(build "$G2") s beside the live g1"
head -n 200 "$Q" >"$T/gate.tsv"

TL=$CACHE/publish-last
rm -rf "$TL"; mkdir -p "$TL"
window() {   # window NAME ACTION...: W s of load; ACTION runs 5 s in
    local name=$1; shift
    "$F" bench --server "$A" --queries "$Q" --rate "$RATE" --duration "$W" --deadline-ms 2000 --json \
        --timeline "$TL/$name.tl" >"$T/$name.json" 2>"$T/$name.err" </dev/null &
    local bp=$!
    sleep 5
    if [ $# -gt 0 ]; then "$@" >"$T/$name.action" 2>&1 || { cat "$T/$name.action"; echo "FAIL: $name"; }; fi
    wait $bp
    cp "$T/$name.json" "$TL/"
    printf "%-11s requests %6s  failed %s  partial %s  p50 %6.2f ms  p99 %7.2f ms  max %7.2f ms\n" "$name" \
        "$(j "$T/$name.json" "r['requests']")" "$(j "$T/$name.json" "r['errors']")" \
        "$(j "$T/$name.json" "r['partial']")" "$(j "$T/$name.json" "r['p50_ms']")" \
        "$(j "$T/$name.json" "r['p99_ms']")" "$(j "$T/$name.json" "r['max_ms']")"
}
R=${R:-3}
GATE_QPS=${GATE_QPS:-20}
for r in $(seq 1 "$R"); do
    G=$G2
    if [ "$r" -gt 1 ]; then G=$T/g2-round$r; cp -al "$G2" "$G"; fi
    window "before$r"
    window "publish$r" "$F" index publish --dir "$T/run" --index "$G" --gate-queries "$T/gate.tsv" --gate-qps "$GATE_QPS"
    grep -E "staged|quality gate|published" "$T/publish$r.action" | sed 's/^/    /'
    window "rollback$r" "$F" index rollback --dir "$T/run"
done
/usr/bin/python3 - "$TL" "$R" <<'EOF'
import json, statistics, sys
d, R = sys.argv[1], int(sys.argv[2])
def p99(v):
    v = sorted(v)
    return v[max(0, -(-99 * len(v) // 100) - 1)] if v else float("nan")   # nearest rank
def lat(name):
    return [float(l.split("\t")[1]) for l in open("%s/%s.tl" % (d, name))]
def rep(name):
    return json.load(open("%s/%s.json" % (d, name)))
fails = {w: sum(rep("%s%d" % (w, r))["errors"] for r in range(1, R + 1)) for w in ("before", "publish", "rollback")}
pooled_b = p99([x for r in range(1, R + 1) for x in lat("before%d" % r)])
for w in ("publish", "rollback"):
    ratios = [rep("%s%d" % (w, r))["p99_ms"] / rep("before%d" % r)["p99_ms"] for r in range(1, R + 1)]
    pooled_w = p99([x for r in range(1, R + 1) for x in lat("%s%d" % (w, r))])
    print("%s: p99 / before per round %s; median %.3f; pooled p99 %.2f ms / %.2f ms = %.3f (target <= 1.5); failed %d"
          % (w, " ".join("%.3f" % x for x in ratios), statistics.median(ratios), pooled_w, pooled_b,
             pooled_w / pooled_b, fails[w]))
print("before windows: failed %d" % fails["before"])
EOF

# kill -9 of a builder mid-build: the live generation (g1 again) is untouched and serves
sum_live() { cat "$G1"/shard-*/checksum | md5sum | cut -c1-16; }
before=$(sum_live)
"$F" index build --input "$C" --shards 3 --out "$T/g3" >/dev/null 2>&1 &
BP=$!
sleep 20
kill -9 $BP; wait $BP 2>/dev/null || true
after=$(sum_live)
"$F" index verify "$G1" >"$T/verify.out" 2>&1 && v=ok || v=DAMAGED
"$F" bench --server "$A" --queries "$Q" --rate "$RATE" --duration 5 --json >"$T/after.json" 2>/dev/null
if "$F" index publish --dir "$T/run" --index "$T/g3" >"$T/g3.out" 2>&1; then g3="PUBLISHED (wrong)"; else g3="refused: $(head -c 120 "$T/g3.out")"; fi
echo "kill -9 mid-build: live checksums $before -> $after, verify $v, then $(j "$T/after.json" "r['requests']") requests, $(j "$T/after.json" "r['errors']") failed; publishing the partial g3: $g3"
