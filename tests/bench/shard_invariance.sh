#!/usr/bin/env bash
# shard_invariance.sh [BUILDDIR] [COLLECTION] - the same corpus indexed with 1, 3 and 7
# shards must give the same top-1000 per query with scores equal to 1e-5.
# Prints, per shard count, the number of queries compared, ranking mismatches and
# the largest score difference against the 1-shard run.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
C=${2:-npl}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${FUNNEL_DATA:-$SRC/../shared/data}
F=$B/ops/funnel
T=$(mktemp -d /tmp/funnel-inv.XXXXXX)
trap '"$F" cluster down --dir "$T/run" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
for n in 1 3 7; do
  "$F" index build --input "$DATA/$C/corpus.jsonl" --shards $n --out "$T/idx$n" >/dev/null
  ADDR=$("$F" cluster up --index "$T/idx$n" --dir "$T/run")
  "$F" search --server "$ADDR" --queries "$DATA/$C/queries.tsv" --k 1000 --run-out "$T/run$n" 2>/dev/null
  "$F" cluster down --dir "$T/run" >/dev/null
done
/usr/bin/python3 - "$T" <<'PY'
import sys, collections
t = sys.argv[1]
def load(p):
    r = collections.defaultdict(list)
    for line in open(p):
        q, _, d, rank, s, _tag = line.split()
        r[q].append((d, float(s)))
    return r
base = load(f"{t}/run1")
bad = 0
for n in (3, 7):
    other = load(f"{t}/run{n}")
    mism = 0; maxd = 0.0
    for q in base:
        a, b = base[q], other.get(q, [])
        if [d for d, _ in a] != [d for d, _ in b]: mism += 1
        for (_, x), (_, y) in zip(a, b): maxd = max(maxd, abs(x - y))
    print(f"shards=1 vs shards={n}: queries={len(base)} ranking_mismatches={mism} max_score_diff={maxd:.3g} hits={sum(len(v) for v in base.values())}")
    bad += mism > 0 or maxd > 1e-5
print("shard invariance:", "OK" if not bad else "FAILED")
sys.exit(1 if bad else 0)
PY
