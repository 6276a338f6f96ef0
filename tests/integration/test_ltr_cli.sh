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
