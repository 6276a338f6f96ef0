# corpus.sh - sourced by the scale benchmarks (scale.sh, funnel_cost.sh, selection_speed.sh): the
# synthetic corpus of ../shared/tools/gen_corpus.py (seed 1, 2,000 queries) and indexes of it, cached
# in $FUNNEL_BENCH_DIR (default /tmp/funnel-bench) across runs.
# Needs B (the build directory) and N (documents); sets SRC, TOOLS, F (funnel), W (the cache),
# C (corpus.jsonl) and Q (queries.tsv), generating them when missing.
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=${FUNNEL_TOOLS:-$SRC/../shared/tools}
F=$B/ops/funnel
W=${FUNNEL_BENCH_DIR:-/tmp/funnel-bench}
mkdir -p "$W"
C=$W/corpus-$N.jsonl; Q=$W/queries-$N.tsv
if [ ! -s "$C" ] || [ ! -s "$Q" ]; then
  echo "generating $N documents (cached in $W) ..." >&2
  /usr/bin/python3 "$TOOLS/gen_corpus.py" --docs "$N" --seed 1 --out "$C" --queries 2000 --queries-out "$Q"
fi

# bench_index DIR SHARDS [CORPUS]: an index of the corpus (default $C) in DIR with the codec
# $BENCH_CODEC (default bp128, the default codec), built unless DIR already holds one that this build
# verifies and that has that codec (a schema or codec change rebuilds it)
BENCH_CODEC=${BENCH_CODEC:-bp128}
bench_index() {
  if [ ! -d "$1" ] || ! grep -q "\"codec\": *\"$BENCH_CODEC\"" "$1/index.json" 2>/dev/null ||
     ! "$F" index verify "$1" >/dev/null 2>&1; then
    echo "building a $2-shard index of ${3:-$C} in $1 ..." >&2
    rm -rf "$1"
    "$F" index build --input "${3:-$C}" --shards "$2" --codec "$BENCH_CODEC" --out "$1" >&2
  fi
}
