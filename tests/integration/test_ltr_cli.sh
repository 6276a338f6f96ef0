#!/usr/bin/env bash
# Learning-to-rank commands end to end (docs/ltr.md): funnel train / predict /
# model info / model import-xgboost / rank-eval on the LightGBM lambdarank data,
# their usage and data errors, and an XGBoost model imported and scored within
# 1e-5 of XGBoost's own predictions (skipped with 77 without python3-xgboost).
source "$(dirname "$0")/lib.sh"

LTR=$DATA/lightgbm-lambdarank
[ -f "$LTR/rank.train" ] || { echo "SKIP: no $LTR"; exit 77; }
TR=$LTR/rank.train TE=$LTR/rank.test

# ---- help and usage errors (exit 2) ----
for c in train predict model rank-eval; do
    "$FUNNEL" $c --help >/dev/null || fail "funnel $c --help"
done
"$FUNNEL" --help | grep -q 'rank-eval' || fail "funnel --help lists rank-eval"
expect2() { "$@" >/dev/null 2>&1; local rc=$?; [ $rc -eq 2 ] || fail "exit $rc, want 2: ${*:2}"; }
expect2 "$FUNNEL" train --data "$TR" --objective lambdarank            # no --out
expect2 "$FUNNEL" train --data "$TR" --objective frob --out "$T/x"
expect2 "$FUNNEL" train --data "$TR" --objective lambdarank --trees 1x --out "$T/x"
expect2 "$FUNNEL" train --data "$TR" --objective lambdarank --lr -1 --out "$T/x"
expect2 "$FUNNEL" train --data "$TR" --objective lambdarank --early-stopping 5 --out "$T/x"
expect2 "$FUNNEL" train --data "$TR" --objective lambdarank --bogus --out "$T/x"
expect2 "$FUNNEL" predict --model "$T/x"
expect2 "$FUNNEL" model
expect2 "$FUNNEL" model frob
expect2 "$FUNNEL" model info
expect2 "$FUNNEL" model import-xgboost m.json
expect2 "$FUNNEL" rank-eval --data "$TE"
expect2 "$FUNNEL" rank-eval --data "$TE" --scores "$T/x" --k 0
[ ! -e "$T/x" ] || fail "a usage error wrote a model"
ok "help and usage errors exit 2"

# ---- train, predict, rank-eval, info ----
"$FUNNEL" train --data "$TR" --valid "$TE" --objective lambdarank --trees 20 --depth 6 --lr 0.1 \
    --every 5 --out "$T/m20" >"$T/train.out" 2>"$T/train.err" || { cat "$T/train.out" "$T/train.err"; fail "train"; }
grep -q '^round 5: .*train ndcg@1 .*ndcg@10 .*valid ndcg@1 .*ndcg@3 .*ndcg@5 .*ndcg@10 ' "$T/train.out" \
    || { cat "$T/train.out"; fail "per-round train/valid NDCG@1,3,5,10 lines"; }
[ "$(grep -c '^round ' "$T/train.out")" -eq 5 ] || { cat "$T/train.out"; fail "rounds 1,5,10,15,20 expected"; }
grep -q '^done: lambdarank, 20 trees kept of 20 rounds, training [0-9.]* s' "$T/train.out" \
    || { cat "$T/train.out"; fail "summary"; }
"$FUNNEL" predict --model "$T/m20" --data "$TE" >"$T/p20" || fail "predict"
[ "$(wc -l <"$T/p20")" -eq "$(wc -l <"$TE")" ] || fail "one score per test row"
"$FUNNEL" rank-eval --data "$TE" --scores "$T/p20" >"$T/eval" || fail "rank-eval"
[ "$(cut -f1 "$T/eval" | tr '\n' ' ')" = "ndcg@1 ndcg@3 ndcg@5 ndcg@10 map " ] || { cat "$T/eval"; fail "rank-eval lines"; }
N10=$(awk '$1=="ndcg@10"{print $2}' "$T/eval")
awk -v v="$N10" 'BEGIN{exit !(v > 0.6)}' || fail "ndcg@10 $N10 <= 0.6"
# The summary's valid ndcg@10 comes from the in-memory model; rank-eval of the
# saved-and-reloaded model's predictions must agree.
grep -q "^final: .* valid ndcg@10 $N10\$" "$T/train.out" || { cat "$T/train.out" "$T/eval"; fail "reloaded model scores differently"; }
"$FUNNEL" model info "$T/m20" >"$T/info" || fail "model info"
for kv in 'kind	trees' 'objective	lambdarank' 'trees	20' 'features	300' 'named_features	0'; do
    grep -qx "$kv" "$T/info" || { cat "$T/info"; fail "model info: want '$kv'"; }
done
awk -F'\t' '$1=="max_depth"{d=$2} $1=="leaves"{l=$2} END{exit !(d>=1 && d<=6 && l>=40 && l<=20*64)}' "$T/info" \
    || { cat "$T/info"; fail "model info depth/leaves"; }
ok "lambdarank 20 trees: ndcg@10 $N10 on rank.test; $(grep -c . "$T/info") info lines"

# rank-eval with other cut-offs, more digits; scores from a file of the wrong length
"$FUNNEL" rank-eval --data "$TE" --scores "$T/p20" --k 10,2 --digits 6 >"$T/eval2" || fail "rank-eval --k"
awk -F'\t' -v v="$N10" '$1=="ndcg@10"{ok = length($2)==8 && sprintf("%.4f", $2)==v} END{exit !ok}' "$T/eval2" \
    || { cat "$T/eval2"; fail "--digits"; }
grep -q '^ndcg@2	' "$T/eval2" || fail "--k 10,2"
head -n 100 "$T/p20" >"$T/short"
"$FUNNEL" rank-eval --data "$TE" --scores "$T/short" >/dev/null 2>"$T/err"; [ $? -eq 1 ] || fail "short scores should exit 1"
grep -q "short:100: 100 scores for 768 data rows" "$T/err" || { cat "$T/err"; fail "short scores message"; }
sed '7s/.*/nan?/' "$T/p20" >"$T/badsc"
"$FUNNEL" rank-eval --data "$TE" --scores "$T/badsc" >/dev/null 2>"$T/err"; [ $? -eq 1 ] || fail "bad score should exit 1"
grep -q "badsc:7: " "$T/err" || { cat "$T/err"; fail "bad score line number"; }
ok "rank-eval --k/--digits and score-file errors"

# ---- determinism: same seed, 2 threads -> the same model file and scores ----
"$FUNNEL" train --data "$TR" --objective lambdarank --trees 20 --depth 6 --lr 0.1 --threads 2 \
    --every 0 --out "$T/m20b" >/dev/null 2>&1 || fail "train --threads 2"
cmp -s "$T/m20" "$T/m20b" || fail "model differs with --threads 2 (or with --valid)"
"$FUNNEL" predict --model "$T/m20b" --data "$TE" --out "$T/p20b" || fail "predict --out"
cmp -s "$T/p20" "$T/p20b" || fail "predictions differ"
ok "deterministic across thread counts; predict --out equals stdout"

# ---- data errors: FILE:LINE, exit 1 ----
printf '%s\n' '1 qid:1 1:0.5 2:0.25' '0 qid:1 1:0.1 2:0.2' '2 qid:1 1:abc' '0 qid:2 1:0.3' >"$T/bad.txt"
"$FUNNEL" train --data "$T/bad.txt" --objective lambdarank --out "$T/bad.model" >"$T/out" 2>"$T/err"
rc=$?; [ $rc -eq 1 ] || fail "bad data: exit $rc, want 1"
grep -q "error: .*bad.txt:3: " "$T/err" || { cat "$T/err"; fail "bad data: no FILE:LINE"; }
[ ! -e "$T/bad.model" ] || fail "bad data wrote a model"
"$FUNNEL" predict --model "$T/m20" --data "$T/bad.txt" >/dev/null 2>"$T/err"; [ $? -eq 1 ] || fail "predict bad data exit"
grep -q "bad.txt:3: " "$T/err" || { cat "$T/err"; fail "predict bad data message"; }
"$FUNNEL" predict --model "$T/nonexistent" --data "$TE" >/dev/null 2>"$T/err"; [ $? -eq 1 ] || fail "missing model exit"
printf 'funnel-model 1\nkind trees\nobjective lambdarank\nfeatures 3\nbase_score 0\ntrees 1\ntree 0 nodes 1\nnode 0 leaf x\nend\n' >"$T/bad.model"
"$FUNNEL" model info "$T/bad.model" >/dev/null 2>"$T/err"; [ $? -eq 1 ] || fail "bad model exit"
grep -q "bad.model:8: " "$T/err" || { cat "$T/err"; fail "bad model: no FILE:LINE"; }
printf '%s\n' '1 1:0.5' '0 1:0.1' >"$T/nogroups.txt"
"$FUNNEL" train --data "$T/nogroups.txt" --objective lambdarank --out "$T/ng.model" >/dev/null 2>"$T/err"
[ $? -eq 1 ] || fail "lambdarank without groups should exit 1"
ok "data and model errors: $(head -n 1 "$T/err")"

# ---- pointwise objectives ----
"$FUNNEL" train --data "$TR" --valid "$TE" --objective binary --trees 10 --depth 4 --every 5 \
    --out "$T/bin" >"$T/bin.out" 2>&1 || { cat "$T/bin.out"; fail "train binary"; }
grep -q '^round 5: .*train logloss .*valid logloss' "$T/bin.out" || { cat "$T/bin.out"; fail "binary log-loss lines"; }
"$FUNNEL" predict --proba --model "$T/bin" --data "$TE" >"$T/pb" || fail "predict --proba"
awk '$1<=0 || $1>=1 {bad=1} END{exit bad || NR!=768}' "$T/pb" || fail "probabilities out of (0,1)"
"$FUNNEL" predict --proba --model "$T/m20" --data "$TE" >/dev/null 2>&1; [ $? -eq 1 ] || fail "--proba on lambdarank"
"$FUNNEL" train --data "$TR" --objective logistic --C 0.5 --out "$T/lr" >"$T/lr.out" 2>&1 || { cat "$T/lr.out"; fail "train logistic"; }
"$FUNNEL" model info "$T/lr" | grep -qx 'kind	linear' || fail "logistic model kind"
"$FUNNEL" predict --proba --model "$T/lr" --data "$TE" | awk '$1<=0 || $1>=1 {bad=1} END{exit bad || NR!=768}' \
    || fail "logistic probabilities"
ok "binary GBDT and logistic regression: $(grep '^final' "$T/lr.out")"

# ---- feature names travel with the model; predict matches columns by name ----
seq 1 300 | sed 's/^/f/' >"$T/names"
"$FUNNEL" train --data "$TR" --objective lambdarank --trees 5 --names "$T/names" --every 0 --out "$T/named" >/dev/null 2>&1 \
    || fail "train --names"
"$FUNNEL" model info "$T/named" | grep -qx 'named_features	300' || fail "names not stored"
"$FUNNEL" predict --model "$T/named" --data "$TE" >"$T/pn1" || fail "predict named"
"$FUNNEL" predict --model "$T/named" --data "$TE" --names "$T/names" >"$T/pn2" || fail "predict --names"
cmp -s "$T/pn1" "$T/pn2" || fail "by-name scoring differs"
ok "feature names stored and matched"

# ---- '# features:' header: names travel into the model; predict matches by name ----
# Synthetic queries (python's seeded random: the same file everywhere): bm25f
# sees the utility through noise; with SIG > 0 column 'extra' carries what
# bm25f misses, the other columns are noise.
gen() {  # NQ SIG SEED [rev: columns written in reverse order]
    "$PY" -c '
import math, random, sys
nq, sig, seed = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
rev = len(sys.argv) > 4 and sys.argv[4] == "rev"
random.seed(seed)
names = ["bm25f", "extra"] + ["noise%d" % i for i in range(10)]
order = list(range(len(names)))[::-1] if rev else list(range(len(names)))
print("# features: " + " ".join(names[i] for i in order))
sd = math.sqrt(1 + sig * sig + 0.09)
for q in range(nq):
    for d in range(40):
        z1, z2 = random.gauss(0, 1), random.gauss(0, 1)
        u = z1 + sig * z2 + 0.3 * random.gauss(0, 1)
        lab = 2 if u > 1.75 * sd else 1 if u > 1.2 * sd else 0
        x = [round(8 + 2 * (z1 + 0.6 * random.gauss(0, 1)), 3), round(z2, 3)] + \
            [round(random.gauss(0, 1), 3) for _ in range(10)]
        print("%d qid:%d %s # doc %d" % (lab, q, " ".join("%d:%g" % (k + 1, x[i]) for k, i in enumerate(order)), d))
' "$@"
}
gen 100 0.6 1 >"$T/sig.svm" && gen 100 0.6 2 >"$T/sigte.svm" && gen 100 0.6 2 rev >"$T/sigrev.svm" \
    && gen 100 0 3 >"$T/noise.svm" || fail "generating data"
"$FUNNEL" train --data "$T/sig.svm" --objective lambdarank --trees 10 --depth 3 --every 0 --out "$T/hdr.model" \
    >/dev/null 2>&1 || fail "train on a file with a features header"
"$FUNNEL" model info "$T/hdr.model" | grep -qx 'named_features	12' || fail "header names not stored"
grep -qx 'feature 1 extra' "$T/hdr.model" || fail "header name of column 1"
"$FUNNEL" predict --model "$T/hdr.model" --data "$T/sigte.svm" >"$T/ph1" || fail "predict a file with a header"
"$FUNNEL" predict --model "$T/hdr.model" --data "$T/sigrev.svm" >"$T/ph2" || fail "predict reversed columns"
cmp -s "$T/ph1" "$T/ph2" || fail "columns in another order are not matched by name"
head -n 1 "$T/sigte.svm" | sed 's/ noise9$//' >"$T/short.svm"; tail -n +2 "$T/sigte.svm" >>"$T/short.svm"
"$FUNNEL" train --data "$T/short.svm" --objective lambdarank --out "$T/x" >/dev/null 2>"$T/err"
rc=$?; [ $rc -eq 1 ] || fail "header with 11 names for 12 columns: exit $rc, want 1"
grep -q "short.svm:1: the features header names 11 features but the data has 12 columns" "$T/err" \
    || { cat "$T/err"; fail "header count message"; }
ok "features header: names stored, predict matches columns by name, count mismatch is FILE:1"

# ---- base margin: the model carries 'weight COLUMN W' and model info shows it ----
"$FUNNEL" train --data "$T/sig.svm" --objective lambdarank --base-feature bm25f --base-weight 0.5 --trees 5 \
    --depth 2 --every 0 --out "$T/bm.model" >"$T/bm.out" 2>&1 || { cat "$T/bm.out"; fail "train --base-feature"; }
grep -q '^base margin: bm25f (column 0) x 0.5$' "$T/bm.out" || { cat "$T/bm.out"; fail "base margin line"; }
[ "$(tail -n 2 "$T/bm.model" | tr '\n' ' ')" = 'weight 0 0.5 end ' ] || fail "base margin weight in the model"
"$FUNNEL" model info "$T/bm.model" | grep -qx 'weight	0	bm25f	0.5' || fail "model info: linear part"
ok "base margin: $(grep '^done' "$T/bm.out")"

# ---- --guard: inner CV by query; the report on stderr ----
"$FUNNEL" train --data "$T/sig.svm" --objective lambdarank --guard --out "$T/g.model" >"$T/g.out" 2>"$T/g.err" \
    || { cat "$T/g.out" "$T/g.err"; fail "train --guard"; }
grep -q '^guard: base  ' "$T/g.err" && grep -q '^guard: lm-d2-t50  ' "$T/g.err" \
    && grep -q '^guard: lm-d3-t100-m0.25-a0.25 ' "$T/g.err" \
    && [ "$(grep -c '^guard: lm-' "$T/g.err")" -eq 8 ] && [ "$(grep -c '^guard: lin-l2-' "$T/g.err")" -eq 2 ] \
    || { cat "$T/g.err"; fail "guard report: candidates"; }
grep -Eq '^guard: chose (lm|lin)-' "$T/g.err" || { cat "$T/g.err"; fail "signal beyond bm25f: the guard should use it"; }
grep -Eq '^done: guard chose (lm|lin)-' "$T/g.out" || { cat "$T/g.out"; fail "guard summary"; }
"$FUNNEL" predict --model "$T/g.model" --data "$T/sigte.svm" >"$T/pg" || fail "predict guarded model"
# --guard-drop: the guard again without a column; the signal column earns its
# place, so the model keeps it; a missing name or a missing column changes nothing
"$FUNNEL" train --data "$T/sig.svm" --objective lambdarank --guard --guard-drop extra --out "$T/gd.model" \
    >"$T/gd.out" 2>"$T/gd.err" || { cat "$T/gd.out" "$T/gd.err"; fail "train --guard-drop"; }
grep -Eq '^guard-drop extra: with it (lm|lin)-.* mean [0-9.]+, without it .* mean [0-9.]+; with it better on [0-9] of 5 inner folds, paired t [0-9.]+ \(needs >= 2.50\): kept$' \
    "$T/gd.err" || { grep guard-drop "$T/gd.err"; fail "guard-drop of the signal column"; }
cmp -s "$T/g.model" "$T/gd.model" || fail "a kept column must give the plain guard's model"
# a noise column does not pass the paired t: the model without it is kept,
# and it never splits on that column (the model names features by column)
"$FUNNEL" train --data "$T/sig.svm" --objective lambdarank --guard --guard-drop noise3 --out "$T/gz.model" \
    >/dev/null 2>"$T/gz.err" || { cat "$T/gz.err"; fail "train --guard-drop noise3"; }
grep -Eq '^guard-drop noise3: .*, paired t -?[0-9.]+ \(needs >= 2.50\): dropped$' "$T/gz.err" \
    || { grep guard-drop "$T/gz.err"; fail "guard-drop of a noise column"; }
grep -Eq '^(weight 5 |node .* split 5 )' "$T/gz.model" && fail "the model without noise3 (column 5) uses it"
grep -q '^weight 5 ' "$T/g.model" || fail "the plain guard's linear model should weigh every column, noise3 too"
"$FUNNEL" train --data "$T/sig.svm" --objective lambdarank --guard --guard-drop nosuch --out "$T/gn.model" \
    >/dev/null 2>"$T/gn.err" || fail "train --guard-drop nosuch"
grep -q '^guard-drop: the data names no nosuch: nothing to drop$' "$T/gn.err" || { cat "$T/gn.err"; fail "guard-drop of an unknown name"; }
"$FUNNEL" train --data "$T/sig.svm" --objective lambdarank --guard-drop extra --trees 3 --out "$T/x" >/dev/null 2>"$T/err"
rc=$?; [ $rc -eq 2 ] && grep -q -- "--guard-drop goes with --guard" "$T/err" || { cat "$T/err"; fail "--guard-drop without --guard: exit $rc"; }
"$FUNNEL" rank-eval --data "$T/sigte.svm" --scores "$T/pg" >"$T/eg" || fail "rank-eval guarded"
tail -n +2 "$T/sigte.svm" | cut -d' ' -f3 | sed 's/^1://' >"$T/pbase"
"$FUNNEL" rank-eval --data "$T/sigte.svm" --scores "$T/pbase" >"$T/eb" || fail "rank-eval base"
G10=$(awk '$1=="ndcg@10"{print $2}' "$T/eg"); B10=$(awk '$1=="ndcg@10"{print $2}' "$T/eb")
awk -v g="$G10" -v b="$B10" 'BEGIN{exit !(g > b + 0.02)}' || fail "held out: guard $G10 vs bm25f $B10"
# the same seed, one thread: the same model
"$FUNNEL" train --data "$T/sig.svm" --objective lambdarank --guard --threads 1 --out "$T/g1.model" >/dev/null 2>&1 \
    || fail "train --guard --threads 1"
cmp -s "$T/g.model" "$T/g1.model" || fail "guarded model differs with --threads 1"
ok "guard with signal: $(grep '^guard: chose' "$T/g.err" | cut -d: -f2 | cut -d';' -f1); held out ndcg@10 $G10 vs bm25f $B10"

"$FUNNEL" train --data "$T/noise.svm" --objective lambdarank --guard --seed 3 --out "$T/n.model" >"$T/n.out" 2>"$T/n.err" \
    || { cat "$T/n.out" "$T/n.err"; fail "train --guard on noise"; }
grep -q '^guard: chose base: no candidate is eligible' "$T/n.err" || { cat "$T/n.err"; fail "noise: base order expected"; }
[ "$(tail -n 3 "$T/n.model" | tr '\n' ' ')" = 'trees 0 weight 0 1 end ' ] || fail "noise: the base-order model"
"$FUNNEL" predict --model "$T/n.model" --data "$T/noise.svm" >"$T/pn" || fail "predict base-order model"
# (scores are the float column printed with %.9g: 8.123 comes back as 8.12300014)
tail -n +2 "$T/noise.svm" | cut -d' ' -f3 | sed 's/^1://' | paste - "$T/pn" \
    | awk 'sprintf("%.6g", $1) != sprintf("%.6g", $2) {bad++} END{exit bad}' \
    || fail "the base-order model does not reproduce bm25f"
"$FUNNEL" rank-eval --data "$T/noise.svm" --scores "$T/pn" --digits 17 >"$T/en1" \
    && tail -n +2 "$T/noise.svm" | cut -d' ' -f3 | sed 's/^1://' >"$T/pnb" \
    && "$FUNNEL" rank-eval --data "$T/noise.svm" --scores "$T/pnb" --digits 17 >"$T/en2" && cmp -s "$T/en1" "$T/en2" \
    || fail "the base-order model ranks differently from bm25f"
ok "guard on noise keeps the bm25f order exactly ($(wc -l <"$T/pn") rows)"

"$FUNNEL" train --data "$TR" --objective lambdarank --guard --base-feature 100 --out "$T/gl.model" >"$T/gl.out" 2>"$T/gl.err" \
    || { cat "$T/gl.out" "$T/gl.err"; fail "guard on rank.train"; }
grep -q '^guard: lambdarank, 201 queries' "$T/gl.err" || { cat "$T/gl.err"; fail "guard on rank.train: report"; }
"$FUNNEL" train --data "$T/sig.svm" --objective logistic --guard --out "$T/gq.model" >"$T/gq.out" 2>"$T/gq.err" \
    || { cat "$T/gq.out" "$T/gq.err"; fail "logistic --guard"; }
grep -q '^guard: chose C=' "$T/gq.err" && "$FUNNEL" model info "$T/gq.model" | grep -qx 'kind	linear' \
    || { cat "$T/gq.err"; fail "logistic --guard: C and a linear model"; }
expect2 "$FUNNEL" train --data "$T/sig.svm" --objective lambdarank --guard --trees 5 --out "$T/x"
expect2 "$FUNNEL" train --data "$T/sig.svm" --objective binary --guard --out "$T/x"
expect2 "$FUNNEL" train --data "$T/sig.svm" --objective lambdarank --guard --inner-folds 1 --out "$T/x"
expect2 "$FUNNEL" train --data "$T/sig.svm" --objective lambdarank --base-weight 2 --out "$T/x"
"$FUNNEL" train --data "$TR" --objective lambdarank --guard --out "$T/x" >/dev/null 2>"$T/err"
[ $? -eq 1 ] && grep -q "no feature named 'bm25f' (it has no feature names)" "$T/err" || { cat "$T/err"; fail "no bm25f"; }
[ ! -e "$T/x" ] || fail "a refused --guard wrote a model"
ok "guard on rank.train ($(grep '^guard: chose' "$T/gl.err" | cut -d' ' -f3)), logistic ($(grep '^guard: chose' "$T/gq.err" | cut -d' ' -f3)), usage errors"

# ---- XGBoost import: predictions within 1e-5 of XGBoost's ----
if ! "$PY" -c 'import xgboost, sklearn' 2>/dev/null; then
    echo "SKIP: python3-xgboost / python3-sklearn not installed"
    exit 77
fi
"$PY" - "$TR" "$TE" "$T" <<'EOF' || fail "xgboost training"
import sys, numpy as np, xgboost as xgb
from sklearn.datasets import load_svmlight_file
tr, te, out = sys.argv[1:4]
Xtr, ytr = load_svmlight_file(tr, zero_based=False)
Xte, yte = load_svmlight_file(te, zero_based=False, n_features=Xtr.shape[1])
groups = [int(l) for l in open(tr + ".query") if l.strip()]
r = xgb.XGBRanker(objective="rank:ndcg", tree_method="hist", n_estimators=30, max_depth=5,
                  learning_rate=0.2, n_jobs=1, random_state=3)
r.fit(Xtr, ytr, group=groups)
r.get_booster().save_model(out + "/rank.json")
np.savetxt(out + "/rank.xgb", r.predict(Xte, output_margin=True), fmt="%.9g")
c = xgb.XGBClassifier(objective="binary:logistic", tree_method="hist", n_estimators=15, max_depth=4,
                      learning_rate=0.3, n_jobs=1, base_score=0.3)
c.fit(Xtr, (ytr > 1).astype(int))
c.get_booster().save_model(out + "/bin.json")
np.savetxt(out + "/bin.xgb", c.predict_proba(Xte)[:, 1], fmt="%.9g")
EOF
maxdiff() { paste "$1" "$2" | awk '{d=$1-$2; if(d<0)d=-d; if(d>m)m=d; n++} END{if(n!=768)print "rows", n; else printf "%.3g\n", m}'; }
"$FUNNEL" model import-xgboost "$T/rank.json" --out "$T/rank.model" >"$T/imp.out" || fail "import-xgboost rank:ndcg"
"$FUNNEL" model info "$T/rank.model" | grep -qx 'trees	30' || fail "imported tree count"
"$FUNNEL" predict --model "$T/rank.model" --data "$TE" >"$T/rank.ours" || fail "predict imported"
D=$(maxdiff "$T/rank.ours" "$T/rank.xgb")
awk -v d="$D" 'BEGIN{exit !(d+0 <= 1e-5 && d !~ /rows/)}' || fail "rank:ndcg import: max |diff| $D > 1e-5"
"$FUNNEL" model import-xgboost "$T/bin.json" --out "$T/bin.model" >/dev/null || fail "import-xgboost binary:logistic"
"$FUNNEL" predict --proba --model "$T/bin.model" --data "$TE" >"$T/bin.ours" || fail "predict --proba imported"
DB=$(maxdiff "$T/bin.ours" "$T/bin.xgb")
awk -v d="$DB" 'BEGIN{exit !(d+0 <= 1e-5 && d !~ /rows/)}' || fail "binary:logistic import: max |diff| $DB > 1e-5"
"$FUNNEL" model import-xgboost "$T/bad.txt" --out "$T/no.model" >/dev/null 2>&1; [ $? -eq 1 ] || fail "import of a non-JSON file"
ok "XGBoost import: rank:ndcg max |diff| $D, binary:logistic (probabilities) max |diff| $DB"
