#!/usr/bin/env bash
# The live funnel with models (issue 7, acceptance 5 and 6), on cranfield:
#  - stage 1: the order and scores a shard gives equal `funnel predict` of the
#    same model on the same features, offline;
#  - 1 shard and 3 shards give the same final ranking with both models loaded
#    (the stage-2 model reads prf_rm3: feedback runs and is shard-independent);
#  - Shard/Rescore validates what it is given;
#  - a model naming an unknown feature (or, for stage 1, a positional one) is
#    refused with a message naming it: by push, and by a shard at start;
#  - `funnel model push` under load: no failed query, and the responses name
#    the new model within 1 s of the push (funnel_models.py).
source "$(dirname "$0")/lib.sh"
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || { echo "SKIP: needs python3-grpcio"; exit 77; }
command -v protoc-c >/dev/null || { echo "SKIP: needs protoc-c"; exit 77; }
Q=$DATA/cranfield/queries.tsv
QR=$DATA/cranfield/qrels.trec

I1=$(build_index idx1 1) || exit 1
I3=$(build_index idx3 3) || exit 1
# windows that hold every candidate, so that 1 and 3 shards see the same ones
printf 'selection-k = 5000\nstage1-k = 1500\nstage2-k = 300\n' >"$T/coord.conf"

R3=$T/run3
A3=$(cluster_up "$I3" "$R3") || fail "cluster up (3 shards)"
head -n 120 "$Q" >"$T/train.tsv"
"$FUNNEL" features --server "$A3" --queries "$T/train.tsv" --qrels "$QR" --stage 1 --window 100 \
    --out "$T/s1.svm" 2>"$T/f1.err" || { cat "$T/f1.err"; fail "features --stage 1"; }
head -n 1 "$T/s1.svm" | grep -q '^# features: bm25f ' || fail "the stage-1 file's header: $(head -c 200 "$T/s1.svm")"
"$FUNNEL" train --data "$T/s1.svm" --objective logistic --out "$T/m1.model" >/dev/null 2>&1 || fail "train stage 1"
"$FUNNEL" model push --server "$A3" --stage 1 --model "$T/m1.model" >"$T/push.out" 2>&1 \
    || { cat "$T/push.out"; fail "push stage 1"; }
grep -q "on 3 shard replicas" "$T/push.out" || fail "push stage 1: $(cat "$T/push.out")"
"$FUNNEL" features --server "$A3" --queries "$T/train.tsv" --qrels "$QR" --stage 2 --window 100 \
    --out "$T/s2.svm" 2>"$T/f2.err" || { cat "$T/f2.err"; fail "features --stage 2"; }
"$FUNNEL" train --data "$T/s2.svm" --objective lambdarank --trees 30 --depth 3 --out "$T/m2.model" >/dev/null 2>&1 \
    || fail "train stage 2"
"$FUNNEL" train --data "$T/s2.svm" --objective lambdarank --trees 10 --depth 2 --out "$T/m2b.model" >/dev/null 2>&1 \
    || fail "train stage 2 (b)"
ok "features for both stages, trained and pushed a stage-1 model"

# stage 1 alone: the shard's stage-1 scores are the model's, offline
"$PY" "$HERE/funnel_models.py" stage1 "$A3" "$HERE/../../proto" "$Q" "$T" "$FUNNEL" "$T/m1.model" \
    || fail "stage-1 scores against funnel predict"

# unknown and unusable features are refused, by name
sed 's/^feature 2 .*/feature 2 no_such_feature/' "$T/m2.model" >"$T/bad.model"
"$FUNNEL" model push --server "$A3" --stage 2 --model "$T/bad.model" >"$T/bad.out" 2>&1 \
    && fail "a model with an unknown feature was taken"
grep -q "unknown feature: no_such_feature" "$T/bad.out" || fail "refusal message: $(cat "$T/bad.out")"
"$FUNNEL" model push --server "$A3" --stage 1 --model "$T/m2.model" >"$T/bad1.out" 2>&1 \
    && fail "stage 1 took a model over positional features"
grep -q "not available at this stage" "$T/bad1.out" || fail "stage-1 refusal: $(cat "$T/bad1.out")"
"$FUNNEL_SHARD_BIN" --index "$I3/shard-000" --stage1-model "$T/bad.model" >"$T/shard.out" 2>&1 \
    && fail "a shard started with a bad stage-1 model"
grep -q "no_such_feature\|not available at this stage" "$T/shard.out" || fail "shard start: $(cat "$T/shard.out")"
ok "unknown feature refused by push ($(head -c 120 "$T/bad.out")), stage-1 limits enforced, shard refuses at start"
"$FUNNEL" cluster down --dir "$R3" >/dev/null 2>&1

# 1 shard vs 3 shards with both models loaded: the same final ranking
RA=$T/runa; RB=$T/runb
AA=$("$FUNNEL" cluster up --index "$I1" --dir "$RA" --stage1-model "$T/m1.model" --stage2-model "$T/m2.model" \
     --coordinator-config "$T/coord.conf" 2>"$T/upa.err") || { cat "$T/upa.err"; fail "cluster up (1 shard, models)"; }
AB=$("$FUNNEL" cluster up --index "$I3" --dir "$RB" --stage1-model "$T/m1.model" --stage2-model "$T/m2.model" \
     --coordinator-config "$T/coord.conf" 2>"$T/upb.err") || { cat "$T/upb.err"; fail "cluster up (3 shards, models)"; }
"$PY" "$HERE/funnel_models.py" shards "$AA" "$HERE/../../proto" "$Q" "$AB" || fail "1 vs 3 shards with models"
"$PY" "$HERE/funnel_models.py" rescore "$(cat "$RB/shard-0.addr")" "$HERE/../../proto" "$Q" || fail "Shard/Rescore"
# a run file past the stage-2 window (300): scores still fall with the rank,
# so evaluators that sort by score keep the funnel's order
head -n 20 "$Q" >"$T/q20.tsv"
"$FUNNEL" search --server "$AB" --queries "$T/q20.tsv" --k 600 --run-out "$T/run600.trec" 2>/dev/null \
    || fail "batch search with models"
awk '$1 == q && $5 >= s { print "line " NR ": " $0; bad = 1 } { q = $1; s = $5 } END { exit bad }' "$T/run600.trec" \
    || fail "run file scores do not fall with the rank"
[ "$(awk '$4 == 600' "$T/run600.trec" | wc -l)" -gt 0 ] || fail "no query reached rank 600"
ok "run file past the window: scores fall with the rank ($(wc -l <"$T/run600.trec") lines)"

# push under load (a short run here; the issue's 60 s by hand: FUNNEL_PUSH_SECS=60)
"$PY" "$HERE/funnel_models.py" push "$AB" "$HERE/../../proto" "$Q" "$FUNNEL" "$T/m2.model" "$T/m2b.model" \
    "${FUNNEL_PUSH_SECS:-8}" || fail "push under load"
ok "funnel with models: stage 1 = offline predict, 1 vs 3 shards identical, push under load"
