#!/usr/bin/env bash
# selection_speed.sh [BUILDDIR] [DOCS] - selection speed against Xapian's, single-threaded and in
# process, on the synthetic corpus of ../shared/tools/gen_corpus.py (default 1,000,000 documents,
# seed 1, its queries), at top-10, top-1000 and top-10000 OR, in the same run (the selection-speed
# issue's acceptance 2).
#
# Ours: a 1-shard index of the whole corpus (cached in $FUNNEL_BENCH_DIR/idx1-DOCS), searched by
#   tests/bench/shard_bench with selection only (--sel K --k K --features 0 --skip-stage1), returning
#   doc, key and score like Xapian's MSet (--no-fields: stored fields are read for the final page
#   only, in a second phase): thread CPU time per query, after a first pass that warms the page
#   cache. The match count is then a lower bound where MaxScore skipped lists (as Xapian's MSet
#   estimate is an estimate); the funnel_exact column counts every match (--exact-matches). The default
#   algorithm is block-max MaxScore; funnel_bmw is block-max WAND (--algo bmw), for comparison.
# Xapian: python3-xapian over the same corpus (title + body with positions, the English stemmer; the
#   database is cached in $FUNNEL_BENCH_DIR/xapian-DOCS, built by ../shared/tools/peer_xapian_scale.py),
#   BM25Weight (Xapian's default), QueryParser OR; wall time per query on its second pass.
# The first QUERIES (500) queries of the corpus' query file, for both. Prints QPS and the ratio.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
N=${2:-1000000}
NQ=${QUERIES:-500}
source "$(dirname "$0")/corpus.sh"
SB=$B/tests/bench/shard_bench
IDX=$W/idx1-$N; XDB=$W/xapian-$N
bench_index "$IDX" 1
T=$(mktemp -d "$W/sel.XXXXXX")
trap 'rm -rf "$T"' EXIT
head -n "$NQ" "$Q" > "$T/q.tsv"
if [ ! -d "$XDB" ]; then
  echo "building the Xapian database of $N documents in $XDB ..." >&2
  /usr/bin/python3 "$TOOLS/peer_xapian_scale.py" "$C" "$T/q.tsv" "$XDB" >&2
fi

echo "docs=$N queries=$NQ single thread, in process"
printf '  %-8s %-12s %-12s %-8s %-14s %-12s %s\n' k funnel_qps xapian_qps ratio funnel_exact exact_ratio funnel_bmw
/usr/bin/python3 "$SRC/tests/bench/xapian_topk.py" "$XDB" "$T/q.tsv" 10 1000 10000 > "$T/xapian.txt"
qps() {   # qps K [shard_bench options]: our queries per CPU second
  local k=$1; shift
  "$SB" "$IDX/shard-000" "$T/q.tsv" --sel "$k" --k "$k" --features 0 --skip-stage1 --no-fields "$@" |
    sed -n 's/.*cpu \([0-9.]*\) us\/query.*/\1/p' | awk '{ printf "%.1f", 1e6 / $1 }'
}
for k in 10 1000 10000; do
  qps "$k" >/dev/null   # warm
  ours=$(qps "$k"); exact=$(qps "$k" --exact-matches); bmw=$(qps "$k" --algo bmw)
  xap=$(awk -v k="$k" '$1 == k { print $2 }' "$T/xapian.txt")
  printf '  %-8s %-12s %-12s %-8s %-14s %-12s %s\n' "$k" "$ours" "$xap" "$(awk -v a="$ours" -v b="$xap" 'BEGIN { printf "%.2f", a / b }')" \
    "$exact" "$(awk -v a="$exact" -v b="$xap" 'BEGIN { printf "%.2f", a / b }')" "$bmw"
done
