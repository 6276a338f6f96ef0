#!/usr/bin/env bash
# filter_bench.sh [BUILDDIR] [DOCS] - filters on the synthetic corpus of ../shared/tools/gen_corpus.py
# (default 1,000,000 documents, seed 1; the filters issue's acceptance 4).
#
# 1. In process, on a 1-shard index (tests/bench/filter_bench): each filter below evaluated on every
#    document's JSON by the bench's own evaluator (tests/filter_ref.h), and for the first DIFF (40)
#    queries the filtered top 1000 compared with the exhaustive unfiltered ranking cut to the passing
#    documents, under every algorithm, OR and AND; then the selection's time per query with and
#    without each filter (first 300 queries, 3 rounds, interleaved) at top 1000 (the funnel's
#    selection window) and top 10.
# 2. Through a cluster (the same index, one shard, a coordinator; no models): the first 500 queries
#    as a batch (--k 1000, the batch interface's, and --k 10; concurrency 1) with and without the 1%
#    filters, wall time per query, two rounds interleaved.
# The 1% filters take their thresholds from the corpus (the 80th percentile of published_at with
# vertical:image's 5%, the 99th of popularity, the 90th of popularity with vertical:news' 10%).
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
N=${2:-1000000}
DIFF=${DIFF:-40}
source "$(dirname "$0")/corpus.sh"
IDX=$W/idx1-$N
bench_index "$IDX" 1
T=$(mktemp -d "$W/filt.XXXXXX")
trap '"$F" cluster down --dir "$T/run" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
read -r PUB80 POP99 POP90 < <(/usr/bin/python3 - "$C" <<'PY'
import json, sys
pub, pop = [], []
for line in open(sys.argv[1]):
    d = json.loads(line)
    pub.append(d.get("published_at", 0)); pop.append(d.get("popularity", 0.0))
pub.sort(); pop.sort(); n = len(pub)
print(pub[int(0.8 * n)], pop[int(0.99 * n)], pop[int(0.9 * n)])
PY
)
ONE=("vertical:image published_at>=$PUB80" "popularity>=$POP99" "vertical:news popularity>=$POP90")
ALL=("${ONE[@]}" "id:d1,d5,d77,d1000,d99999,d500000,d999999" "vertical:news,video" "-vertical:web" "vertical:web")
FB=$B/tests/bench/filter_bench
echo "== in process, top 1000 (differential on the first $DIFF queries)"
"$FB" "$IDX/shard-000" "$C" "$Q" --diff-queries "$DIFF" --queries 300 --reps 3 --k 1000 "${ALL[@]}"
echo "== in process, top 10"
"$FB" "$IDX/shard-000" "$C" "$Q" --diff-queries 0 --queries 300 --reps 3 --k 10 "${ALL[@]}" | grep '^filter'
echo "== through a cluster (1 shard, coordinator, no models), 500 queries"
head -n 500 "$Q" > "$T/q.tsv"
A=$("$F" cluster up --index "$IDX" --dir "$T/run")
batch() {   # batch TAG K [FILTER]: wall ms of the batch
  local t0 t1
  t0=$(date +%s%N)
  if [ -n "${3:-}" ]; then
    "$F" search --server "$A" --queries "$T/q.tsv" --k "$2" --concurrency 1 --filter "$3" --run-out "$T/$1.trec" 2>/dev/null
  else
    "$F" search --server "$A" --queries "$T/q.tsv" --k "$2" --concurrency 1 --run-out "$T/$1.trec" 2>/dev/null
  fi
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}
batch warm 1000 >/dev/null
for k in 1000 10; do
  for f in "${ONE[@]}"; do
    u=0; g=0
    for r in 1 2; do
      u=$((u + $(batch u "$k"))); g=$((g + $(batch f "$k" "$f")))
    done
    awk -v f="$f" -v u="$u" -v g="$g" -v k="$k" 'BEGIN { printf "cluster --k %d: filter \"%s\": unfiltered %.0f us, filtered %.0f us a query: ratio %.3f\n", k, f, u, g, g / u }'
  done
done
