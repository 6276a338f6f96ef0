#!/usr/bin/env bash
# select_diff.sh [BUILDDIR] [DOCS] - the selection-speed issue's acceptance 1: every pruning algorithm
# returns the same top k as the exhaustive OR merge (same documents, keys, scores to 1e-9 relative;
# match counts equal when counted exactly, a flagged lower bound otherwise) at k = 10, 1000 and 10000,
# on cranfield and npl (../shared/data, each in one shard, all their queries) and on the synthetic
# corpus of ../shared/tools/gen_corpus.py (default 1,000,000 documents in one shard, the first
# QUERIES (500) of its queries). tests/bench/select_diff prints one line per algorithm and k.
# Exit status 1 if anything differs.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
N=${2:-1000000}
NQ=${QUERIES:-500}
source "$(dirname "$0")/corpus.sh"
DATA=${FUNNEL_DATA:-$SRC/../shared/data}
SD=$B/tests/bench/select_diff
T=$(mktemp -d "$W/diff.XXXXXX")
trap 'rm -rf "$T"' EXIT
rc=0
for coll in cranfield npl; do
  "$F" index build --input "$DATA/$coll/corpus.jsonl" --shards 1 --out "$T/$coll" >/dev/null 2>&1
  "$SD" "$T/$coll/shard-000" "$DATA/$coll/queries.tsv" || rc=1
done
IDX=$W/idx1-$N
bench_index "$IDX" 1
head -n "$NQ" "$Q" > "$T/q.tsv"
"$SD" "$IDX/shard-000" "$T/q.tsv" || rc=1
exit $rc
