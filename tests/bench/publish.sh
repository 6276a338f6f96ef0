#!/usr/bin/env bash
# publish.sh BUILD_DIR [DOCS] - issue 13, acceptance 1: index generations swapped under load.
#
# Two generations of the same synthetic corpus (../shared/tools/gen_corpus.py, DOCS documents,
# default 1,000,000; 3 shards), built one after the other, g2 while g1 serves. Every figure is
# from `funnel bench --json` in this run:
#   capacity  closed loop, concurrency 8, three runs of 10 s on g1: their median; and again
#             (one run) at the start of each round, whose load is 70% of that: this VM's speed
#             wanders (505-848 qps within an hour), and a load set from a fast minute is
#             overload in a slow one
#   rounds    R rounds (default 3) of three windows of open-loop load at 70% of capacity: before
#             (no change, W s, default 35), publish (g2 published through the gate 5 s in; WP s,
#             default 110: a cold publish stages for about 65 s and gates for 10), rollback (back
#             to g1 5 s in, W s). COLD=1 (the default) evicts g2's files from the page cache
#             (posix_fadvise DONTNEED) before each publish, so that every round reads the new
#             generation from the disk, the costly case (COLD=0: as the last round left them,
#             warm). Round r > 1 publishes g2 under a new name (a copy of
#             its files kept in $CACHE, hard links with COLD=0, so every round loads a generation the
#             shards do not hold) and so also unloads the previous round's. Per round: failed requests and the
#             p99 of each window; then each swap's p99 over its round's before-window p99, the
#             median of those over the rounds, and the pooled ratio (the p99 of every publish
#             window's requests over that of every before window's; target <= 1.5). Rounds,
#             because this VM's own noise moves a single window's p99 by 2-3x with nothing
#             happening (6.3 to 19 ms in one run): the pooled ratio is the robust figure.
#   kill      a build of g3 killed with SIGKILL mid-build: the live generation's files are
#             unchanged (their checksums), it still serves, and publishing g3 is refused
# Each window also prints when its action ran (seconds of its timeline) and the coordinator's
# sheds and the searches it admitted in a queue's grace (--shed-grace-ms: a burst let drain).
# W=10 for shorter windows; R=1 for one round. The corpus, g1 and g2 are kept in $CACHE
# (default /tmp/funnel-bench); REUSE=1 serves the ones built there by an earlier run.
# SHARD_CONFIG=F adds --shard-config F to `funnel cluster up` (e.g. a larger warm-queries).
# The publish runs as an operator would: staging (each shard hashes the new files at
# --load-rate-mb and replays its recent searches on them, on a loader thread at the lowest
# priority, one replica at a time), the gate's 200 shadow queries paced at GATE_QPS searches a
# second (default 20), the switch. Each window's timeline (funnel bench --timeline) is kept
# in $CACHE/publish-last/, with the servers' logs. SAMPLE=1 also samples the machine's and each
# server's CPU and page faults every 0.1 s there; `tests/bench/stalls.py $CACHE/publish-last`
# then lists each window's slow or failing seconds beside them and the servers' log lines.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
N=${2:-1000000}
W=${W:-35}
WP=${WP:-110}
COLD=${COLD:-1}
R=${R:-3}
GATE_QPS=${GATE_QPS:-20}
F=$B/ops/funnel
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${SHARED:-$HERE/../../../shared}
CACHE=${CACHE:-/tmp/funnel-bench}
T=$(mktemp -d /tmp/funnel-publish.XXXXXX)
cleanup() {
    [ -n "${SP:-}" ] && kill "$SP" 2>/dev/null || true
    [ -d "$T/run" ] && cp "$T"/run/*.log "$CACHE/publish-last/" 2>/dev/null || true
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
# SHARD_CONFIG=F: every shard reads F too (e.g. a larger warm-queries)
A=$("$F" cluster up --index "$G1" --dir "$T/run" ${SHARD_CONFIG:+--shard-config "$SHARD_CONFIG"} 2>"$T/up.err")
"$F" bench --server "$A" --queries "$Q" --concurrency 2 --duration 3 --json >/dev/null   # warm-up
# capacity: the median of three runs (one run can land in a fast or a slow minute of this VM)
for i in 1 2 3; do
    "$F" bench --server "$A" --queries "$Q" --concurrency 8 --duration 10 --json >"$T/cap$i.json"
done
CAP=$(/usr/bin/python3 -c "import json,statistics,sys; print(statistics.median(json.load(open(f))['qps'] for f in sys.argv[1:]))" "$T"/cap[123].json)
RATE=$(/usr/bin/python3 -c "print(int($CAP * 0.7))")
echo "capacity: $CAP qps (closed loop, concurrency 8; median of $(for i in 1 2 3; do j "$T/cap$i.json" "r['qps']"; done | tr '\n' ' ')); load: $RATE qps (70%)"
# g2 is built while g1 serves (no load then: the build's two cores are not the serving figure)
g2s=$(build "$G2")
echo "g2: built in $g2s s beside the live g1"
case "$g2s" in *reused*) ;; *) rm -rf "$G2"-copy* ;; esac   # copies of an older g2
# COLD=1: rounds > 1 publish copies of g2 made here once (no load yet) and kept in $CACHE (not hard links: the
# previous round's g2, still open on the shards for a rollback, would keep the pages of a shared
# inode in memory; not made during the rounds: after writing 2 GB this VM's virtual disk writes back
# for minutes, and a window then shed requests with nothing happening)
if [ "$COLD" = 1 ]; then
    made=0
    for r in $(seq 2 "$R"); do
        [ -f "$G2-copy$r/index.json" ] && continue
        rm -rf "$G2-copy$r" "$G2-copy$r.tmp"
        cp -r "$G2" "$G2-copy$r.tmp" && mv "$G2-copy$r.tmp" "$G2-copy$r"
        made=1
    done
    if [ "$made" = 1 ]; then sync -f "$G2/index.json"; echo "g2 copied for rounds 2-$R; settling ${SETTLE:-180} s"; sleep "${SETTLE:-180}"; fi
fi
head -n 200 "$Q" >"$T/gate.tsv"

TL=$CACHE/publish-last
rm -rf "$TL"; mkdir -p "$TL"
# SAMPLE=1: the servers' and the machine's CPU, faults and reads every 0.1 s ($TL/procs.log), for
# tests/bench/stalls.py to line up with the timelines (each window's start is in $TL/starts)
if [ "${SAMPLE:-0}" = 1 ]; then /usr/bin/python3 "$HERE/sample_procs.py" "$TL/procs.log" 0.1 & SP=$!; fi
cmetric() {  # cmetric NAME: the coordinator's counter NAME now (its /metrics endpoint)
    curl -s --max-time 5 "http://$(cat "$T"/run/coordinator*.metrics | head -1)/metrics" 2>/dev/null \
        | awk -v m="$1" '$1 == m { v = $2 } END { printf "%d\n", v + 0 }'
}
window() {   # window SECONDS NAME ACTION...: SECONDS of load; ACTION runs 5 s in
    local secs=$1 name=$2; shift 2
    local g0 s0
    g0=$(cmetric funnel_coordinator_shed_graced_total) s0=$(cmetric funnel_coordinator_shed_total)
    echo "$name $(date +%s.%N)" >>"$TL/starts"
    "$F" bench --server "$A" --queries "$Q" --rate "$RATE" --duration "$secs" --deadline-ms 2000 --json \
        --timeline "$TL/$name.tl" >"$T/$name.json" 2>"$T/$name.err" </dev/null &
    local bp=$!
    sleep 5
    local a0=$(date +%s.%N) a1=
    if [ $# -gt 0 ]; then
        "$@" >"$T/$name.action" 2>&1 || { cat "$T/$name.action"; echo "FAIL: $name"; }
        a1=$(date +%s.%N)
        echo "$name.action $a0 $a1" >>"$TL/starts"
    fi
    wait $bp
    cp "$T/$name.json" "$TL/"
    printf "%-11s requests %6s  failed %s  partial %s  p50 %6.2f ms  p99 %7.2f ms  max %7.2f ms\n" "$name" \
        "$(j "$T/$name.json" "r['requests']")" "$(j "$T/$name.json" "r['errors']")" \
        "$(j "$T/$name.json" "r['partial']")" "$(j "$T/$name.json" "r['p50_ms']")" \
        "$(j "$T/$name.json" "r['p99_ms']")" "$(j "$T/$name.json" "r['max_ms']")"
    # when the action ran in the window's timeline (its seconds from the load's start)
    [ -n "$a1" ] && printf "            %s: from 5.0 s to %.1f s of the window\n" "$2 $3" "$(echo "5 + $a1 - $a0" | bc)"
    # searches admitted in a burst's grace (--shed-grace-ms): a coordinator with 0 would have shed them
    echo "            coordinator: shed $(( $(cmetric funnel_coordinator_shed_total) - s0 )), admitted in a" \
         "queue's grace $(( $(cmetric funnel_coordinator_shed_graced_total) - g0 ))"
}
for r in $(seq 1 "$R"); do
    G=$G2
    if [ "$r" -gt 1 ] && [ "$COLD" = 1 ]; then G=$G2-copy$r; fi
    if [ "$r" -gt 1 ] && [ "$COLD" != 1 ]; then G=$T/g2-round$r; cp -al "$G2" "$G"; fi
    if [ "$COLD" = 1 ]; then
        /usr/bin/python3 - "$G"/shard-*/data.mdb <<'EOF'
import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
EOF
        echo "    g2's files evicted from the page cache: $(fincore --bytes --noheadings --output RES "$G"/shard-*/data.mdb 2>/dev/null | tr '\n' ' ')bytes resident"
    fi
    if [ "$r" -gt 1 ] || [ -n "${ROUND_CAP:-}" ]; then
        "$F" bench --server "$A" --queries "$Q" --concurrency 8 --duration 10 --json >"$T/rcap$r.json"
        RATE=$(j "$T/rcap$r.json" "int(r['qps'] * 0.7)")
        echo "round $r: capacity $(j "$T/rcap$r.json" "r['qps']") qps; load $RATE qps"
    fi
    window "$W" "before$r"
    window "$WP" "publish$r" "$F" index publish --dir "$T/run" --index "$G" --gate-queries "$T/gate.tsv" --gate-qps "$GATE_QPS"
    grep -E "staged|quality gate|published|shed by" "$T/publish$r.action" | sed 's/^/    /'
    grep -h "generation $G opened in" "$T"/run/shard-*.log | sed 's/^.*INFO /    /'
    window "$W" "rollback$r" "$F" index rollback --dir "$T/run"
done
# what unloading cost (each close runs off the shard's loop: shard/shard.c gen_unref)
grep -h "closed in" "$T"/run/shard-*.log | sed 's/^.*INFO /    /'
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
