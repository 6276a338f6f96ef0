#!/usr/bin/env bash
# cfilter_bench.sh BUILD_DIR - issue 11, the content filter (rank/cfilter.h,
# ops/ops_cfilter.c) on the SpamAssassin corpus (6,046 mails, 1,896 spam):
# `funnel filter train --holdout 0.2 --seed 1` (threshold for precision 0.98
# on out-of-fold scores of the training part), then `funnel filter eval` on the held-out
# 20%; prints P, R, F1, ROC AUC, the threshold, the scoring cost per document
# and the training time, writes docs/cfilter-pr.dat (the precision-recall
# curve) and docs/cfilter-pr.png (gnuplot; skipped when gnuplot is missing).
# DATA, C, TARGET to change the corpus, --c and --target-precision.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
F=$B/ops/funnel
HERE=$(cd "$(dirname "$0")" && pwd)
DOCS_DIR=$HERE/../../docs
DATA=${DATA:-$HERE/../../../shared/data/spam-assassin/corpus.jsonl}
C=${C:-100} TARGET=${TARGET:-0.98}
T=$(mktemp -d /tmp/funnel-cfilter.XXXXXX)
trap 'rm -rf "$T"' EXIT
TIME=()
[ -x /usr/bin/time ] && TIME=(/usr/bin/time -f "train: peak RSS %M KiB, wall %e s")
echo "== train: $DATA, holdout 0.2, seed 1, --c $C, --target-precision $TARGET"
"${TIME[@]}" "$F" filter train --input "$DATA" --label-field label --positive spam --out "$T/f.model" \
  --holdout 0.2 --seed 1 --c "$C" --target-precision "$TARGET"
echo "== eval on the held-out 20%"
"$F" filter eval --input "$DATA" --label-field label --positive spam --model "$T/f.model" \
  --holdout 0.2 --seed 1 --curve "$DOCS_DIR/cfilter-pr.dat"
echo "model file: $(stat -c %s "$T/f.model") bytes"
if command -v gnuplot >/dev/null; then
  gnuplot <<GP
set terminal pngcairo size 720,540 noenhanced
set output "$DOCS_DIR/cfilter-pr.png"
set title "Content filter, SpamAssassin held-out 20% (seed 1)"
set xlabel "recall"; set ylabel "precision"
set xrange [0:1]; set yrange [0.5:1.01]; set grid; set key bottom left
plot "$DOCS_DIR/cfilter-pr.dat" using 1:2 with lines lw 2 title "precision-recall"
GP
  echo "wrote docs/cfilter-pr.dat, docs/cfilter-pr.png"
else
  echo "gnuplot not found (apt-get install gnuplot-nox): docs/cfilter-pr.png not drawn; wrote docs/cfilter-pr.dat"
fi
