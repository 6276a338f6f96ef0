#!/usr/bin/env bash
# relevance.sh [BUILDDIR] - BM25 relevance on the judged collections in ../shared/data,
# through the real cluster (3 shards), against Xapian's BM25 on the same data.
# For each of cranfield, npl, cisi: build the index, bring a cluster up, run all
# queries at k=1000 into a TREC run, score it with ../shared/tools/trec_eval.py
# (the reference) and with `funnel eval`, then print Xapian's figures from
# tests/bench/xapian_baseline.py for the same collection.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${FUNNEL_DATA:-$SRC/../shared/data}
TOOLS=$(cd "$DATA/../tools" && pwd)
F=$B/ops/funnel
T=$(mktemp -d /tmp/funnel-rel.XXXXXX)
trap '"$F" cluster down --dir "$T/run" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
for c in ${COLLECTIONS:-cranfield npl cisi}; do
  "$F" index build --input "$DATA/$c/corpus.jsonl" --shards 3 --out "$T/$c.idx" >/dev/null
  ADDR=$("$F" cluster up --index "$T/$c.idx" --dir "$T/run")
  "$F" search --server "$ADDR" --queries "$DATA/$c/queries.tsv" --k 1000 --run-out "$T/$c.run" 2>/dev/null
  "$F" cluster down --dir "$T/run" >/dev/null
  echo "== $c"
  echo -n "funnel  (trec_eval.py): "; /usr/bin/python3 "$TOOLS/trec_eval.py" "$DATA/$c/qrels.trec" "$T/$c.run"
  echo -n "funnel  (funnel eval):  "; "$F" eval --qrels "$DATA/$c/qrels.trec" --run "$T/$c.run" | tr '\t\n' '= ' ; echo
done
echo "== xapian BM25 (same analyzer settings, same evaluator)"
COLS=${COLLECTIONS:-cranfield npl cisi}
/usr/bin/python3 "$SRC/tests/bench/xapian_baseline.py" --data "$DATA" --collections "${COLS// /,}"
