#!/usr/bin/env bash
# ltr_bench.sh [BUILDDIR] - learning-to-rank benchmark against XGBoost and
# scikit-learn, every figure from ONE run on this machine (docs/ltr.md):
#   a. XGBRanker(rank:ndcg, hist, 100 trees, depth 6, lr 0.1, n_jobs=1) on
#      lightgbm-lambdarank rank.train: fit seconds; NDCG@10 on rank.test by
#      `funnel rank-eval` (the same evaluator for both);
#   b. funnel train lambdarank with the same settings, --threads 1 and 2;
#      (times: the median of REPS=3 runs of each, all in this one run)
#   c. ndcg@10 ours vs XGBoost, training-time ratios;
#   d. the XGBoost model imported, scored by `funnel predict`: max |diff|;
#   e. score_bench: 500 docs x 500 trees of depth 6, median ms;
#   f. logistic regression vs sklearn (C=1, L2) on hashed spam-assassin words.
# Not a meson test: it prints, it does not assert. Takes about a minute.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
B=$(cd "${1:-$ROOT/build}" && pwd) || exit 2
FUNNEL=$B/ops/funnel
DATA=${FUNNEL_DATA:-$ROOT/../shared/data}
LTR=$DATA/lightgbm-lambdarank
PY=/usr/bin/python3
REPS=${REPS:-3}     # training runs per system; the median time is reported
[ -x "$FUNNEL" ] || { echo "no $FUNNEL: build first (ninja -C $B)"; exit 2; }
[ -f "$LTR/rank.train" ] || { echo "no data in $LTR"; exit 2; }
T=$(mktemp -d "${TMPDIR:-/tmp}/ltr-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
die() { echo "ltr_bench: $*" >&2; exit 1; }
ndcg10() { "$FUNNEL" rank-eval --data "$LTR/rank.test" --scores "$1" --k 10 --digits 6 | awk '$1=="ndcg@10"{print $2}'; }
secs() { sed -n 's/.*training \([0-9.]*\) s.*/\1/p' "$1"; }
calc() { awk "BEGIN{printf \"$1\n\", $2}"; }

echo "== machine: $(nproc) cpus, $(uname -m), load average $(cut -d" " -f1-3 /proc/loadavg); funnel: $FUNNEL"
# XGBoost and our trainer take turns, REPS times, so that both see the same
# machine load; each time reported is the median of its REPS runs.
echo "== a/b. XGBoost $($PY -c 'import xgboost; print(xgboost.__version__)') XGBRanker(rank:ndcg, hist, n_jobs=1) and" \
     "funnel train --objective lambdarank, both 100 trees, depth 6, lr 0.1; median of $REPS alternating runs"
median() { sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
: >"$T/xgbsecs"; : >"$T/secs1"; : >"$T/wall1"; : >"$T/secs2"; : >"$T/wall2"
for r in $(seq "$REPS"); do
    $PY "$HERE/ltr_peer.py" xgb-rank --train "$LTR/rank.train" --test "$LTR/rank.test" --out "$T/xgb" \
        --trees 100 --depth 6 --lr 0.1 --threads 1 >"$T/xgb.out" || die "xgboost failed"
    awk '$1=="xgb_fit_seconds"{print $2}' "$T/xgb.out" >>"$T/xgbsecs"
    for th in 1 2; do
        s0=$(date +%s.%N)
        "$FUNNEL" train --data "$LTR/rank.train" --objective lambdarank --trees 100 --depth 6 --lr 0.1 \
            --threads $th --every 0 --out "$T/ours$th.model" >"$T/train$th.out" 2>&1 \
            || { cat "$T/train$th.out"; die "funnel train failed"; }
        s1=$(date +%s.%N)
        secs "$T/train$th.out" >>"$T/secs$th"
        calc %.3f "$s1 - $s0" >>"$T/wall$th"
    done
done
XGB_S=$(median <"$T/xgbsecs")
XGB_NDCG=$(ndcg10 "$T/xgb/xgb.pred") || die "rank-eval of xgboost"
echo "xgboost: fit ${XGB_S} s (runs: $(tr '\n' ' ' <"$T/xgbsecs")), ndcg@10 ${XGB_NDCG}"
for th in 1 2; do
    "$FUNNEL" predict --model "$T/ours$th.model" --data "$LTR/rank.test" --out "$T/ours$th.pred" || die predict
    eval "OURS_S$th=\$(median <\"$T/secs$th\")"
    eval "OURS_WALL$th=\$(median <\"$T/wall$th\")"
    eval "OURS_NDCG$th=\$(ndcg10 \"$T/ours$th.pred\")"
done
cmp -s "$T/ours1.model" "$T/ours2.model" && SAME=yes || SAME=NO
echo "ours --threads 1: training ${OURS_S1} s (runs: $(tr '\n' ' ' <"$T/secs1"); whole command ${OURS_WALL1} s), ndcg@10 ${OURS_NDCG1}"
echo "ours --threads 2: training ${OURS_S2} s (whole command ${OURS_WALL2} s), ndcg@10 ${OURS_NDCG2}; same model as 1 thread: $SAME"

echo "== c. comparison"
echo "ndcg@10: ours ${OURS_NDCG1}  xgboost ${XGB_NDCG}  diff $(calc %+.4f "$OURS_NDCG1 - $XGB_NDCG")  (acceptance: >= 0.7485 and within 0.005)"
echo "training time ours/xgboost, 1 thread:  $(calc %.3f "$OURS_S1 / $XGB_S")  (${OURS_S1} s / ${XGB_S} s; acceptance <= 1.0)"
echo "training time ours(2 threads)/xgboost(1 thread): $(calc %.3f "$OURS_S2 / $XGB_S")"

echo "== d. import-xgboost"
"$FUNNEL" model import-xgboost "$T/xgb/m.json" --out "$T/xgb.model" >/dev/null || die "import-xgboost failed"
"$FUNNEL" predict --model "$T/xgb.model" --data "$LTR/rank.test" --out "$T/imp.pred" || die "predict imported"
paste "$T/imp.pred" "$T/xgb/xgb.pred" | awk '{d=$1-$2; if(d<0)d=-d; if(d>m)m=d; n++}
    END{printf "imported model vs xgboost on %d rows: max |diff| %.3g (acceptance <= 1e-5)\n", n, m}'
echo "imported model ndcg@10 $(ndcg10 "$T/imp.pred") (xgboost's own predictions: ${XGB_NDCG})"

echo "== e. scoring 500 docs x 500 trees, depth 6, single thread"
SB=$B/tests/bench/score_bench
if [ -x "$SB" ]; then
    "$SB" | tee "$T/score.out"
    # the method rank_model_score picks ("auto method: M" in the header)
    awk '/auto method:/{split($0, a, "auto method: "); m=a[2]; sub(/[ ,;].*/, "", m)}
         m != "" && $1==m {printf "scoring 500 docs x 500 trees (rank_model_score, %s): median %s ms (acceptance <= 0.5)\n", m, $2}' "$T/score.out"
else
    echo "no $SB (ninja -C $B tests/bench/score_bench)"
fi

echo "== f. logistic regression vs scikit-learn $($PY -c 'import sklearn; print(sklearn.__version__)') (C=1, L2, lbfgs) on hashed spam-assassin words"
NF=$($PY "$HERE/spam_features.py" "$DATA/spam-assassin/corpus.jsonl" "$T/spam" --bits 12 | awk '$1=="features"{print $2}') \
    || die "spam_features.py"
"$FUNNEL" train --data "$T/spam/spam.train" --objective logistic --C 1 --max-iter 1000 \
    --out "$T/lr.model" >"$T/lr.out" 2>&1 || { cat "$T/lr.out"; die "funnel train logistic"; }
grep '^done' "$T/lr.out"
"$FUNNEL" predict --proba --model "$T/lr.model" --data "$T/spam/spam.train" --out "$T/lr.train.pred" || die predict
"$FUNNEL" predict --proba --model "$T/lr.model" --data "$T/spam/spam.test" --out "$T/lr.test.pred" || die predict
$PY "$HERE/ltr_peer.py" logreg --train "$T/spam/spam.train" --test "$T/spam/spam.test" --nfeatures "$NF" --C 1 \
    --ours-train "$T/lr.train.pred" --ours-test "$T/lr.test.pred" --ours-model "$T/lr.model" | tee "$T/lr.cmp" \
    || die "sklearn side"
awk '$1=="train_logloss"{d=$4+0; if(d<0)d=-d; printf "training log-loss |ours - sklearn| = %.2g (acceptance <= 1e-3)\n", d}' "$T/lr.cmp"
