#!/usr/bin/env bash
# publish.sh BUILD_DIR [DOCS] - issue 13, acceptance 1: index generations swapped under load.
#
# Two generations of the same synthetic corpus (../shared/tools/gen_corpus.py, DOCS documents,
# default 1,000,000; 3 shards), built one after the other, g2 while g1 serves. Every figure is
# from `funnel bench --json` in this run:
#   capacity  closed loop, concurrency 8, 10 s, on g1
#   windows   open loop at 70% of capacity, three windows of W s each (default 20):
#             before (no change), publish (g2 published through the gate 5 s in),
#             rollback (rolled back to g1 5 s in); failed requests and p99 of each, and
#             each swap window's p99 over the before window's (target <= 1.5)
#   kill      a build of g3 killed with SIGKILL mid-build: the live generation's files are
#             unchanged (their checksums), it still serves, and publishing g3 is refused
# W=10 for a shorter run. The corpus, g1 and g2 are kept in $CACHE (default /tmp/funnel-bench);
# REUSE=1 serves the ones built there by an earlier run instead of building them again.
# The publish runs as an operator would: staging (the shards check the new files on a loader
# thread at the lowest priority), the gate's 200 shadow queries paced at 50 searches a second, the switch.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
N=${2:-1000000}
W=${W:-20}
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

window() {   # window NAME ACTION...: W s of load; ACTION runs 5 s in
    local name=$1; shift
    "$F" bench --server "$A" --queries "$Q" --rate "$RATE" --duration "$W" --deadline-ms 2000 --json \
        >"$T/$name.json" 2>"$T/$name.err" </dev/null &
    local bp=$!
    sleep 5
    if [ $# -gt 0 ]; then "$@" >"$T/$name.action" 2>&1 || { cat "$T/$name.action"; echo "FAIL: $name"; }; fi
    wait $bp
    printf "%-9s requests %6s  failed %s  partial %s  p50 %6.2f ms  p99 %7.2f ms  max %7.2f ms\n" "$name" \
        "$(j "$T/$name.json" "r['requests']")" "$(j "$T/$name.json" "r['errors']")" \
        "$(j "$T/$name.json" "r['partial']")" "$(j "$T/$name.json" "r['p50_ms']")" \
        "$(j "$T/$name.json" "r['p99_ms']")" "$(j "$T/$name.json" "r['max_ms']")"
}
window before
window publish "$F" index publish --dir "$T/run" --index "$G2" --gate-queries "$T/gate.tsv"
grep -E "staged|quality gate|published" "$T/publish.action" | sed 's/^/  /'
window rollback "$F" index rollback --dir "$T/run"
grep -E "rolled back" "$T/rollback.action" | sed 's/^/  /'
P0=$(j "$T/before.json" "r['p99_ms']")
for w in publish rollback; do
    echo "$w: p99 $(j "$T/$w.json" "r['p99_ms']") ms / before $P0 ms = $(j "$T/$w.json" "round(r['p99_ms'] / $P0, 3)") (target <= 1.5)"
done

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
