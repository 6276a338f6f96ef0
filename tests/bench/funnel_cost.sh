#!/usr/bin/env bash
# funnel_cost.sh [BUILDDIR] [DOCS] - cost of the live funnel on the synthetic corpus of
# ../shared/tools/gen_corpus.py (default 1,000,000 documents, 2,000 queries) through 3 shards.
#
# The corpus has no judgments, so the models are trained on pseudo-judgments: each of the
# first TRAIN_Q queries' exhaustive BM25F top 10 from the same cluster, graded 3/2/1 by rank
# (1-3 / 4-6 / 7-10). That says nothing about relevance; it gives models of the sizes that
# serve: stage 1 a small GBDT (binary, 50 trees of depth 4) over the cheap features, stage 2
# LambdaMART with S2_TREES (500) trees of depth 6 over every feature.
# Prints, on the held-out queries (the last 1,000), in the same run:
#   - BM25F-only QPS (--skip-models) and full-funnel QPS, alternating ROUNDS (3) times, the
#     median of each and their ratio (acceptance: full >= 0.6x);
#   - the mean time of every stage from the responses' stage lists (stage 2: 500 x S2_TREES);
#   - the recall-vs-cost curve: for window settings (selection_k/stage1_k/stage2_k), the
#     share of the exhaustive BM25F top 10 that reaches the stage-2 window, and QPS.
# Corpus and index are cached in $FUNNEL_BENCH_DIR (default /tmp/funnel-bench); the index is
# rebuilt when it is missing or its schema is not this build's (funnel index verify fails).
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
N=${2:-1000000}
TRAIN_Q=${TRAIN_Q:-500}
S2_TREES=${S2_TREES:-500}
ROUNDS=${ROUNDS:-3}
CONC=${CONC:-4}
source "$(dirname "$0")/corpus.sh"
IDX=$W/idx-$N
bench_index "$IDX" 3
T=$(mktemp -d "$W/cost.XXXXXX")
trap '"$F" cluster down --dir "$T/run" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
head -n "$TRAIN_Q" "$Q" > "$T/train.tsv"
tail -n 1000 "$Q" > "$T/test.tsv"
# The coordinator's windows are raised to the curve's largest (a request may only lower them);
# the full-funnel QPS asks for the coordinator's defaults (coordinator/validate.h) explicitly.
DEFW=(--selection-k 1000 --stage1-k 500 --stage2-k 500)
printf 'selection-k = 10000\nstage1-k = 2000\nstage2-k = 1000\n' > "$T/coordinator.conf"
ADDR=$("$F" cluster up --index "$IDX" --dir "$T/run" --coordinator-config "$T/coordinator.conf")

echo "pseudo-judgments and models from $TRAIN_Q training queries ..." >&2
"$F" search --server "$ADDR" --queries "$T/train.tsv" --run-out "$T/train-bm25.trec" --k 10 --skip-models 2>/dev/null
awk '{ g = $4 <= 3 ? 3 : $4 <= 6 ? 2 : 1; print $1, 0, $3, g }' "$T/train-bm25.trec" > "$T/pseudo.qrels"
"$F" features --server "$ADDR" --queries "$T/train.tsv" --qrels "$T/pseudo.qrels" --stage 1 --window 200 \
  --out "$T/s1.svm" >&2
"$F" train --data "$T/s1.svm" --objective binary --trees 50 --depth 4 --every 0 --out "$T/m1.model" >&2
"$F" model push --server "$ADDR" --stage 1 --model "$T/m1.model" >&2
"$F" features --server "$ADDR" --queries "$T/train.tsv" --qrels "$T/pseudo.qrels" --stage 2 --window 500 \
  --out "$T/s2.svm" >&2
"$F" train --data "$T/s2.svm" --objective lambdarank --trees "$S2_TREES" --depth 6 --lr 0.05 --threads 2 \
  --every 0 --out "$T/m2.model" >&2
"$F" model push --server "$ADDR" --stage 2 --model "$T/m2.model" >&2

qps() {   # label, extra search flags...
  local label=$1; shift
  "$F" search --server "$ADDR" --queries "$T/test.tsv" --run-out "$T/run-$label.trec" --k 10 \
    --concurrency "$CONC" "$@" 2>"$T/$label.err" >/dev/null
  grep -o '[0-9.]* QPS' "$T/$label.err" | awk '{print $1}'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
: > "$T/q-bm25"; : > "$T/q-full"
qps warm --skip-models >/dev/null
for r in $(seq "$ROUNDS"); do
  qps bm25 --skip-models >> "$T/q-bm25"
  qps full "${DEFW[@]}" >> "$T/q-full"
done
QB=$(median < "$T/q-bm25"); QF=$(median < "$T/q-full")
echo "docs=$(grep -c . "$C") shards=3 queries=1000 k=10 concurrency=$CONC rounds=$ROUNDS windows ${DEFW[*]}"
echo "qps bm25f-only: $(tr '\n' ' ' < "$T/q-bm25")-> median $QB"
echo "qps full funnel: $(tr '\n' ' ' < "$T/q-full")-> median $QF"
echo "ratio full/bm25f-only: $(awk -v f="$QF" -v b="$QB" 'BEGIN { printf "%.2f", f / b }') (acceptance >= 0.60)"
echo "stages of the full funnel (means over the last round's responses):"
grep '^stage ' "$T/full.err" | sed 's/^/  /'
echo "models:"
"$F" model info "$T/m1.model" | head -3 | sed 's/^/  stage 1: /'
"$F" model info "$T/m2.model" | head -3 | sed 's/^/  stage 2: /'

# What feedback costs: the same stage 2 trained without the prf_rm3 columns reads neither, so
# no feedback runs (docs/ranking.md "prf_rm3").
cols=$(head -n 1 "$T/s2.svm" | tr ' ' '\n' | awk 'NR > 2 && ($1 == "prf_rm3" || $1 == "prf_rm3_rel") { printf "%s%d", s, NR - 2; s = "|" }')
sed -E "s/ (${cols}):[^ ]+//g" "$T/s2.svm" > "$T/s2-nofb.svm"
"$F" train --data "$T/s2-nofb.svm" --objective lambdarank --trees "$S2_TREES" --depth 6 --lr 0.05 --threads 2 \
  --every 0 --out "$T/m2-nofb.model" >/dev/null 2>&1
"$F" model push --server "$ADDR" --stage 2 --model "$T/m2-nofb.model" >&2
: > "$T/q-nofb"
for r in $(seq "$ROUNDS"); do qps nofb "${DEFW[@]}" >> "$T/q-nofb"; done
QN=$(median < "$T/q-nofb")
echo "qps full funnel without feedback (stage 2 without prf_rm3 columns ${cols}): $(tr '\n' ' ' < "$T/q-nofb")-> median $QN, ratio $(awk -v f="$QN" -v b="$QB" 'BEGIN { printf "%.2f", f / b }')"
grep '^stage ' "$T/nofb.err" | sed 's/^/  /'
"$F" model push --server "$ADDR" --stage 2 --model "$T/m2.model" >&2

echo "recall vs cost (exhaustive BM25F top 10 of the held-out queries in the stage-2 window; first 200 queries):"
"$F" search --server "$ADDR" --queries "$T/test.tsv" --run-out "$T/test-bm25.trec" --k 10 --skip-models 2>/dev/null
head -n 200 "$T/test.tsv" > "$T/test200.tsv"
printf '  %-11s %-9s %-9s %-50s %-7s %s\n' selection_k stage1_k stage2_k recall QPS "x bm25f-only"
for w in "1000 200 100" "1000 300 300" "1000 500 200" "1000 500 500" "1500 500 300" "1500 500 500" \
         "2000 500 200" "2000 1000 500" "5000 500 500" "5000 1000 500" "10000 2000 1000"; do
  set -- $w
  rec=$(/usr/bin/python3 "$SRC/tests/bench/funnel_window_recall.py" "$ADDR" "$SRC/proto" "$T/test200.tsv" \
        "$T/test-bm25.trec" "$1" "$2" "$3")
  q=$(qps "w$1-$2-$3" --selection-k "$1" --stage1-k "$2" --stage2-k "$3")
  printf '  %-11s %-9s %-9s %-50s %-7s %s\n' "$1" "$2" "$3" "$rec" "$q" \
    "$(awk -v f="$q" -v b="$QB" 'BEGIN { printf "%.2f", f / b }')"
done
