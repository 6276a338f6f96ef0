#!/usr/bin/env bash
# soak.sh - a long closed-loop load on a local cluster, watching every
# process's memory. Run by hand (tests/integration/test_soak_short.sh runs a
# 40 s version in the suite):
#
#   bash tests/bench/soak.sh [--duration S] [--replicas R] [--build DIR] [--index IDXDIR]
#                            [--corpus JSONL --queries TSV] [--shards N] [--interval S]
#                            [--max-growth PCT] [--out DIR] [--keep]
#
# Builds an index of ../shared/data/cranfield (or the bundled sample) unless
# --index is given, starts `funnel cluster up` (--replicas R passed through
# when R > 1), runs `funnel bench --concurrency 2 --duration S --json` in the
# background, and samples VmRSS of every process named in RUN/*.pid every
# --interval seconds (default 10) into OUT/rss.csv (t_s,process,pid,rss_kb).
# At the end, per process: RSS after warm-up (the first sample at or after
# 60 s, or after 20% of the run for runs shorter than 300 s), the final RSS,
# the growth in %, and PASS/FAIL against --max-growth (default 5); then the
# bench's qps, p50/p99 and errors. Exit 0 when every process passes, is still
# alive, and the bench saw no errors; 1 otherwise; 2 usage.
# Defaults: --duration 1800, --build ./build, OUT a new /tmp/funnel-soak.XXXXXX.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DURATION=1800 REPLICAS=1 BUILD=$ROOT/build INDEX= CORPUS= QUERIES= SHARDS=3 INTERVAL=10
MAXG=5 OUT= KEEP=0
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
        --duration) DURATION=$2; shift 2 ;;
        --replicas) REPLICAS=$2; shift 2 ;;
        --build) BUILD=$2; shift 2 ;;
        --index) INDEX=$2; shift 2 ;;
        --corpus) CORPUS=$2; shift 2 ;;
        --queries) QUERIES=$2; shift 2 ;;
        --shards) SHARDS=$2; shift 2 ;;
        --interval) INTERVAL=$2; shift 2 ;;
        --max-growth) MAXG=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage ;;
        *) echo "soak.sh: unknown argument $1" >&2; usage ;;
    esac
done
for v in "$DURATION" "$REPLICAS" "$SHARDS" "$INTERVAL"; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "soak.sh: $v is not a positive integer" >&2; exit 2; }
done
FUNNEL=${FUNNEL:-$BUILD/ops/funnel}
[ -x "$FUNNEL" ] || { echo "soak.sh: no $FUNNEL (build first, or --build DIR / FUNNEL=...)" >&2; exit 2; }
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
DATA=${FUNNEL_DATA:-$ROOT/../shared/data}
if [ -z "$CORPUS" ]; then
    if [ -f "$DATA/cranfield/corpus.jsonl" ]; then
        CORPUS=$DATA/cranfield/corpus.jsonl QUERIES=${QUERIES:-$DATA/cranfield/queries.tsv}
    else
        CORPUS=$ROOT/ops/sample/corpus.jsonl QUERIES=${QUERIES:-$ROOT/ops/sample/queries.tsv}
    fi
fi
[ -n "$QUERIES" ] && [ -f "$QUERIES" ] || { echo "soak.sh: no queries file (--queries)" >&2; exit 2; }
if [ -z "$OUT" ]; then OUT=$(mktemp -d "${TMPDIR:-/tmp}/funnel-soak.XXXXXX"); else mkdir -p "$OUT"; fi
RUN=$OUT/run

stop() {
    local rc=$?
    [ -n "${BENCH_PID:-}" ] && kill "$BENCH_PID" 2>/dev/null
    "$FUNNEL" cluster down --dir "$RUN" >/dev/null 2>&1
    [ $KEEP -eq 1 ] || [ $rc -ne 0 ] || rm -rf "$OUT/idx"
    exit $rc
}
trap stop EXIT
trap 'exit 130' INT TERM

if [ -z "$INDEX" ]; then
    INDEX=$OUT/idx
    echo "== index: $CORPUS -> $INDEX ($SHARDS shards)"
    "$FUNNEL" index build --input "$CORPUS" --shards "$SHARDS" --out "$INDEX" >"$OUT/build.log" 2>&1 \
        || { tail -n 5 "$OUT/build.log"; echo "soak.sh: index build failed"; exit 1; }
fi
up=(cluster up --index "$INDEX" --dir "$RUN")
if [ "$REPLICAS" -gt 1 ]; then
    "$FUNNEL" cluster --help >"$OUT/help.txt" 2>&1
    grep -q -- '--replicas' "$OUT/help.txt" || { echo "soak.sh: this funnel has no cluster up --replicas"; exit 2; }
    up+=(--replicas "$REPLICAS")
fi
A=$("$FUNNEL" "${up[@]}" 2>"$OUT/up.err") || { cat "$OUT/up.err"; echo "soak.sh: cluster up failed"; exit 1; }
echo "== cluster at $A ($(ls "$RUN"/*.pid | wc -l) processes); load for $DURATION s, samples every $INTERVAL s"

"$FUNNEL" bench --server "$A" --queries "$QUERIES" --concurrency 2 --duration "$DURATION" --json \
    >"$OUT/bench.json" 2>"$OUT/bench.err" &
BENCH_PID=$!

# one CSV row per process per sample; t from the start of the load
echo "t_s,process,pid,rss_kb" >"$OUT/rss.csv"
t0=$(date +%s)
sample() {
    local t=$(( $(date +%s) - t0 )) p name pid kb
    for p in "$RUN"/*.pid; do
        name=$(basename "$p" .pid) pid=$(cat "$p")
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
        echo "$t,$name,$pid,${kb:-0}" >>"$OUT/rss.csv"
    done
}
sample
while kill -0 "$BENCH_PID" 2>/dev/null; do
    # sleep in small steps so the end of the bench is seen at once
    for _ in $(seq $(( INTERVAL * 10 ))); do kill -0 "$BENCH_PID" 2>/dev/null || break; sleep 0.1; done
    sample
done
wait "$BENCH_PID"
brc=$?
BENCH_PID=
[ $brc -eq 0 ] || { cat "$OUT/bench.err"; echo "soak.sh: funnel bench exited $brc"; exit 1; }

# warm-up: the first sample at >= 60 s (>= 20% of the run for runs under 300 s)
WARM=60
[ "$DURATION" -lt 300 ] && WARM=$(( DURATION / 5 ))
"$PY" - "$OUT/rss.csv" "$OUT/bench.json" "$WARM" "$MAXG" "$RUN" <<'EOF'
import csv, json, os, sys
rows = list(csv.DictReader(open(sys.argv[1])))
bench = json.load(open(sys.argv[2]))
warm, maxg, run = int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
procs = []
for r in rows:
    if r["process"] not in procs:
        procs.append(r["process"])
bad = 0
print("%-16s %8s %12s %12s %8s" % ("process", "pid", "warm_MiB", "final_MiB", "growth"))
for p in procs:
    s = [(int(r["t_s"]), int(r["rss_kb"]), r["pid"]) for r in rows if r["process"] == p]
    after = [x for x in s if x[0] >= warm] or s[-1:]
    w, f = after[0][1], s[-1][1]
    alive = os.path.exists("/proc/%s" % s[-1][2]) and f > 0
    g = 100.0 * (f - w) / w if w else float("inf")
    ok = alive and g < maxg
    bad += not ok
    print("%-16s %8s %12.1f %12.1f %7.1f%%  %s (warm-up sample at %d s)%s"
          % (p, s[-1][2], w / 1024.0, f / 1024.0, g, "PASS" if ok else "FAIL", after[0][0],
             "" if alive else "  DEAD"))
errs = bench.get("errors", 0)
print("bench: qps %.1f  p50 %.1f ms  p99 %.1f ms  errors %d  partial %d"
      % (bench.get("qps", 0), bench.get("p50_ms", 0), bench.get("p99_ms", 0), errs, bench.get("partial", 0)))
print("%s: %d processes, growth limit %g%%, bench errors %d" % ("PASS" if not bad and not errs else "FAIL",
                                                                 len(procs), maxg, errs))
sys.exit(1 if bad or errs else 0)
EOF
rc=$?
echo "samples: $OUT/rss.csv"
exit $rc
