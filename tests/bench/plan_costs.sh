#!/usr/bin/env bash
# plan_costs.sh BUILD_DIR [OUT] - measure the costs `funnel plan` sizes a cluster with (issue 13),
# on this machine, and write them as the planner's costs JSON (docs/cli.md "funnel plan") to OUT
# (default: ops/configs/plan-costs.json in the source tree).
#
# Corpus: the synthetic corpus of ../shared/tools/gen_corpus.py (seed 1), its first SIZES documents
# (default "20000 100000 250000"; a prefix of a larger corpus is the smaller corpus, same bytes), and its
# queries. For each size a 1-shard index and a cluster (`funnel cluster up`, 1 replica) serving
# the funnel with models: a stage-1 GBDT (50 trees, depth 4) and a stage-2 LambdaMART
# (S2_TREES=300 trees, depth 6), both trained once on pseudo-judgments (the BM25F top 10 of the
# first 300 queries, graded 3/2/1 by rank, as tests/bench/funnel_cost.sh does; they size the
# models, they say nothing about relevance).
# Per cluster:
#   latency     `funnel bench --concurrency 1 --duration LAT_S` (default 40 s); the coordinator's
#               access log gives, per search, the slowest shard call (here: the only one) and
#               the search's latency: the shard latency distribution and the coordinator's own
#               time (latency - slowest shard).
#   CPU         `funnel bench --concurrency 4 --duration CPU_S` (default 20 s); utime+stime of
#               the shard and coordinator processes (/proc/PID/stat) over the run divided by the
#               searches in the access log: CPU microseconds per search, independent of other
#               load on the machine (wall-clock throughput is not: the machine is shared).
#   stages      funnel_coordinator_stage_duration_seconds (_sum/_count over the latency run)
#               from RUN/coordinator.metrics: the stage-2 time per search.
# The largest size is also served as 2 and 3 shards.
# Fits (least squares): shard CPU per search = shard_fixed_us + selection_us_per_doc * docs per
# shard + shard_window.us_per_doc * the shard's share of the selection window (1000 with 1
# shard, ceil(1000 * 1.5 / S) with S: the coordinator's defaults), over the points (2 and 3
# shards are points at 1/2 and 1/3 of the documents and of the window; a negative coefficient
# falls back to the fit without the window term); the shard p50 latency of the 1-shard points
# likewise against documents, whose intercept is the latency's fixed part.
# merge_us_per_shard = coordinator CPU with 3 shards - with 2 (both get 750 candidates: the
# difference is one more shard call; >= 0), merge_latency_us_per_shard the same difference of
# the coordinator's own p50 latency; coordinator_us_per_query = coordinator CPU with 2 shards -
# stage 2 - two shard calls. The shard latency quantiles are the largest 1-shard cluster's, each kept
# when at least 5 samples lie beyond it.
# Corpus cached in $FUNNEL_BENCH_DIR (default /tmp/funnel-bench): corpus-1000000.jsonl when it is
# there, else corpus-<largest>.jsonl (generated). Run it on an idle machine: see docs/evaluation.md
# "Capacity plan (issue 13)".
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${2:-$HERE/../../ops/configs/plan-costs.json}
SIZES=${SIZES:-"20000 100000 250000"}
LAT_S=${LAT_S:-40}
CPU_S=${CPU_S:-20}
S2_TREES=${S2_TREES:-300}
LARGEST=$(printf '%s\n' $SIZES | sort -n | tail -n 1)
W=${FUNNEL_BENCH_DIR:-/tmp/funnel-bench}
if [ -s "$W/corpus-1000000.jsonl" ] && [ -s "$W/queries-1000000.tsv" ] && [ "$LARGEST" -le 1000000 ]; then
  N=1000000
else
  N=$LARGEST
fi
source "$HERE/corpus.sh"    # F, W, C (corpus), Q (queries)
T=$(mktemp -d "$W/plan.XXXXXX")
RUNS=()
cleanup() {
  for r in "${RUNS[@]}"; do "$F" cluster down --dir "$r" >/dev/null 2>&1 || true; done
  rm -rf "$T"
}
trap cleanup EXIT
PY=/usr/bin/python3
TICK=$(getconf CLK_TCK)

cpu_ticks() {   # cpu_ticks PID: utime + stime in clock ticks
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

build() {   # build DOCS SHARDS -> T/idx-DOCS-SHARDS
  local d=$1 s=$2 idx=$T/idx-$1-$2
  [ -s "$T/c-$d.jsonl" ] || head -n "$d" "$C" >"$T/c-$d.jsonl"
  echo "building a $s-shard index of $d documents ..." >&2
  "$F" index build --input "$T/c-$d.jsonl" --shards "$s" --out "$idx" >"$T/build-$d-$s.log" 2>&1
}

# ---- models, trained once on the smallest index ----
SMALLEST=$(printf '%s\n' $SIZES | sort -n | head -n 1)
build "$SMALLEST" 1
head -n 300 "$Q" >"$T/train.tsv"
R0=$T/run-train; RUNS+=("$R0")
A0=$("$F" cluster up --index "$T/idx-$SMALLEST-1" --dir "$R0")
echo "training the models (pseudo-judgments, stage 2: $S2_TREES trees) ..." >&2
"$F" search --server "$A0" --queries "$T/train.tsv" --run-out "$T/train-bm25.trec" --k 10 --skip-models 2>/dev/null
awk '{ g = $4 <= 3 ? 3 : $4 <= 6 ? 2 : 1; print $1, 0, $3, g }' "$T/train-bm25.trec" >"$T/pseudo.qrels"
"$F" features --server "$A0" --queries "$T/train.tsv" --qrels "$T/pseudo.qrels" --stage 1 --window 200 \
  --out "$T/s1.svm" >"$T/train.log" 2>&1
"$F" train --data "$T/s1.svm" --objective binary --trees 50 --depth 4 --every 0 --out "$T/m1.model" >>"$T/train.log" 2>&1
"$F" model push --server "$A0" --stage 1 --model "$T/m1.model" >>"$T/train.log" 2>&1
"$F" features --server "$A0" --queries "$T/train.tsv" --qrels "$T/pseudo.qrels" --stage 2 --window 200 \
  --out "$T/s2.svm" >>"$T/train.log" 2>&1
"$F" train --data "$T/s2.svm" --objective lambdarank --trees "$S2_TREES" --depth 6 --lr 0.05 --threads 2 \
  --every 0 --out "$T/m2.model" >>"$T/train.log" 2>&1
"$F" cluster down --dir "$R0" >/dev/null

# ---- one cluster per point ----
tail -n +301 "$Q" >"$T/bench.tsv"
metrics() {   # metrics RUN -> the coordinator's stage2 and total stage sums and counts
  curl -s "http://$(cat "$1/coordinator.metrics")/metrics" |
    awk '/^funnel_coordinator_stage_duration_seconds_(sum|count)\{stage="(stage2|total)"/ { print $1, $2 }'
}
measure() {   # measure DOCS SHARDS: one point -> T/point-DOCS-SHARDS.json
  local d=$1 s=$2 run=$T/run-$1-$2
  [ -d "$T/idx-$d-$s" ] || build "$d" "$s"
  RUNS+=("$run")
  local a
  a=$("$F" cluster up --index "$T/idx-$d-$s" --dir "$run" --stage1-model "$T/m1.model" --stage2-model "$T/m2.model")
  echo "measuring $d documents in $s shard(s) ..." >&2
  "$F" bench --server "$a" --queries "$T/bench.tsv" --concurrency 2 --duration 3 --json >/dev/null   # warm-up
  # latency: concurrency 1
  metrics "$run" >"$T/m0-$d-$s"
  local off
  off=$(stat -c %s "$run/coordinator.log")
  "$F" bench --server "$a" --queries "$T/bench.tsv" --concurrency 1 --duration "$LAT_S" --json >"$T/lat-$d-$s.json"
  sleep 0.5
  tail -c +$((off + 1)) "$run/coordinator.log" | grep -E '"type":"(access|slow_query)"' >"$T/lat-$d-$s.log" || true
  metrics "$run" >"$T/m1-$d-$s"
  # CPU: concurrency 4
  local pids=() t0=() t1=() p
  pids+=("$(cat "$run/coordinator.pid")")
  for ((k = 0; k < s; k++)); do pids+=("$(cat "$run/shard-$k.pid")"); done
  for p in "${pids[@]}"; do t0+=("$(cpu_ticks "$p")"); done
  off=$(stat -c %s "$run/coordinator.log")
  "$F" bench --server "$a" --queries "$T/bench.tsv" --concurrency 4 --duration "$CPU_S" --json >"$T/cpu-$d-$s.json"
  sleep 0.5
  for p in "${pids[@]}"; do t1+=("$(cpu_ticks "$p")"); done
  local n
  n=$(tail -c +$((off + 1)) "$run/coordinator.log" | grep -Ec '"type":"(access|slow_query)"' || true)
  local coord=$((t1[0] - t0[0])) shard=0
  for ((k = 1; k <= s; k++)); do shard=$((shard + t1[k] - t0[k])); done
  "$F" cluster down --dir "$run" >/dev/null
  $PY - "$d" "$s" "$n" "$coord" "$shard" "$TICK" "$T" "$(du -sb "$T/idx-$d-$s" | cut -f1)" >"$T/point-$d-$s.json" <<'PY'
import json, sys
d, s, n, coord, shard, tick, T, size = sys.argv[1:]
d, s, n, coord, shard, tick, size = int(d), int(s), int(n), int(coord), int(shard), int(tick), int(size)
def mtr(path):
    m = {}
    for line in open(path):
        k, v = line.split()
        m[k] = float(v)
    return m
m0, m1 = mtr(f"{T}/m0-{d}-{s}"), mtr(f"{T}/m1-{d}-{s}")
def delta(stage):
    ks = [k for k in m1 if f'stage="{stage}"' in k]
    sm = sum(m1[k] - m0.get(k, 0) for k in ks if k.startswith("funnel_coordinator_stage_duration_seconds_sum"))
    ct = sum(m1[k] - m0.get(k, 0) for k in ks if k.startswith("funnel_coordinator_stage_duration_seconds_count"))
    return sm / ct * 1e6 if ct else 0.0
shard_ms, own_ms = [], []
for line in open(f"{T}/lat-{d}-{s}.log"):
    e = json.loads(line)
    if e.get("status") != "OK" or "slowest_shard" not in e: continue
    sl = float(e["slowest_shard"].split()[-1])
    shard_ms.append(sl)
    own_ms.append(max(0.0, e["latency_ms"] - sl))
lat = json.load(open(f"{T}/lat-{d}-{s}.json"))
cpu = json.load(open(f"{T}/cpu-{d}-{s}.json"))
us = 1e6 / tick
print(json.dumps({"docs": d, "shards": s, "docs_per_shard": d / s, "index_bytes": size,
    "searches_cpu_run": n, "coordinator_cpu_us_per_query": coord * us / n,
    "shard_cpu_us_per_query": shard * us / n / s,
    "stage2_us_per_query": delta("stage2"), "total_stage_us": delta("total"),
    "bench_c1": {k: lat[k] for k in ("qps", "p50_ms", "p99_ms", "errors")},
    "bench_c4": {k: cpu[k] for k in ("qps", "p50_ms", "p99_ms", "errors")},
    "shard_ms": shard_ms, "coordinator_own_ms": own_ms}))
PY
}

for d in $SIZES; do
  [ -d "$T/idx-$d-1" ] || build "$d" 1
  measure "$d" 1
done
for s in 2 3; do
  build "$LARGEST" "$s"
  measure "$LARGEST" "$s"
done

# ---- fit and write ----
MEASURED_BY="tests/bench/plan_costs.sh BUILD (SIZES=\"$SIZES\" LAT_S=$LAT_S CPU_S=$CPU_S S2_TREES=$S2_TREES)"
$PY - "$T" "$LARGEST" "$OUT" "$MEASURED_BY" "$SIZES" "$N" <<'PY'
import glob, json, math, os, sys, time
T, largest, out, by, sizes, n_corpus = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
pts = [json.load(open(p)) for p in sorted(glob.glob(f"{T}/point-*.json"))]
def fit(xs, ys):   # least squares y = a + b x
    n = len(xs); mx = sum(xs) / n; my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b
def quant(v, q):   # the empirical quantile, linear between order statistics
    v = sorted(v); h = (len(v) - 1) * q; i = int(math.floor(h))
    return v[i] if i + 1 >= len(v) else v[i] + (h - i) * (v[i + 1] - v[i])
import numpy as np
SEL_K, OVP = 1000, 1.5          # the coordinator's defaults (coordinator/validate.h)
def share(s):                   # a shard's part of the selection window (coord.c per_shard)
    return SEL_K if s <= 1 else min(SEL_K, math.ceil(SEL_K * OVP / s))
xs = [p["docs_per_shard"] for p in pts]
ys = [p["shard_cpu_us_per_query"] for p in pts]
# shard CPU = fixed + per_doc * docs + per_window_doc * its share of the selection window
A = np.array([[1.0, p["docs_per_shard"], share(p["shards"])] for p in pts])
(a, b, e), *_ = np.linalg.lstsq(A, np.array(ys), rcond=None)
if min(a, b, e) < 0:            # noise: the two-term fit
    e = 0.0
    a, b = fit(xs, ys)
    if a < 0: a, b = 0.0, sum(ys) / sum(xs)
one = {p["docs"]: p for p in pts if p["shards"] == 1}
two = [p for p in pts if p["shards"] == 2][0]
three = [p for p in pts if p["shards"] == 3][0]
big = one[largest]
la, lb = fit([p["docs_per_shard"] for p in one.values()], [quant(p["shard_ms"], 0.5) for p in one.values()])
samples = big["shard_ms"]
qs = [q for q in (0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999) if len(samples) * (1 - q) >= 5]
quantiles = {str(q): round(quant(samples, q), 4) for q in qs}
fixed = min(max(0.0, la), quant(samples, qs[0]))
# 2 and 3 shards send the coordinator the same candidates (ceil(500 * 1.5 / S) * S = 750 of the
# stage-1 window): the difference is the cost of one more shard call
merge = max(0.0, three["coordinator_cpu_us_per_query"] - two["coordinator_cpu_us_per_query"])
merge_lat = max(0.0, quant(three["coordinator_own_ms"], 0.5) - quant(two["coordinator_own_ms"], 0.5)) * 1000
stage2 = two["stage2_us_per_query"]
coord = max(0.0, two["coordinator_cpu_us_per_query"] - stage2 - 2 * merge)
cpu = open("/proc/cpuinfo").read()
model = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("model name")), "")
mem = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))) / 1048576
res = {
  "format": "funnel-plan-costs/1",
  "machine": {"cpu_model": model, "cores": os.cpu_count(), "memory_gib": round(mem, 1),
              "load_average_at_end": round(os.getloadavg()[0], 2)},
  "measured_by": by,
  "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
  "corpus": f"gen_corpus.py --seed 1 (first SIZES documents of corpus-{n_corpus}.jsonl), 1 shard each, the largest also 2 and 3",
  "shard_fixed_us": round(a, 2),
  "selection_us_per_doc": round(b, 6),
  "shard_window": {"selection_k": SEL_K, "overprovision": OVP, "us_per_doc": round(e, 4)},
  "coordinator_us_per_query": round(coord, 2),
  "stage2_us_per_query": round(stage2, 2),
  "merge_us_per_shard": round(merge, 2),
  "merge_latency_us_per_shard": round(merge_lat, 2),
  "index_bytes_per_doc": round(big["index_bytes"] / big["docs"], 1),
  "shard_latency": {"docs_per_shard": largest, "fixed_ms": round(fixed, 4), "samples": len(samples),
                    "quantiles_ms": quantiles},
  "coordinator_latency_ms": {"p50": round(quant(big["coordinator_own_ms"], 0.5), 4),
                             "p99": round(quant(big["coordinator_own_ms"], 0.99), 4)},
  "points": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in p.items()
              if k not in ("shard_ms", "coordinator_own_ms")} |
             {"shard_p50_ms": round(quant(p["shard_ms"], 0.5), 4), "shard_p99_ms": round(quant(p["shard_ms"], 0.99), 4),
              "latency_samples": len(p["shard_ms"])} for p in pts],
}
text = json.dumps(res, indent=2) + "\n"
open(out + ".tmp", "w").write(text); os.replace(out + ".tmp", out)
print(text, end="")
PY
