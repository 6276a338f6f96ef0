#!/usr/bin/env bash
# Every pushed model passes the quality gate (issue 13, docs/operations.md
# "Quality gate"), on cranfield with 2 shards x 2 replicas:
#   stage 1   a model trained on shuffled labels is staged on every shard
#             replica, refused with a report (NDCG drop) and discarded; one
#             trained on the real labels passes and is live on every replica;
#             a replica restarted while a model is staged does not hold it and
#             says so (FAILED_PRECONDITION), never scoring with the live model;
#             bad pushes are INVALID_ARGUMENT naming the field.
#   intent    (stage 3, on a gen_corpus.py corpus with verticals and blend
#             rules) a model trained on shuffled intent labels is refused
#             (NDCG drop against judgments that follow the labels), one
#             retrained on the real labels is activated; a damaged file is
#             refused by its checksum.
source "$(dirname "$0")/lib.sh"
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || { echo "SKIP: needs python3-grpcio"; exit 77; }
command -v protoc-c >/dev/null || { echo "SKIP: needs protoc-c"; exit 77; }
# train on 120 queries' stage-1 features, gate on the other 105
cran_models_cluster 1
shuffle_labels "$T/s1.svm" "$T/shuf.svm" || fail "shuffle labels"
for m in s1 shuf; do
    "$FUNNEL" train --data "$T/$m.svm" --objective logistic --out "$T/$m.model" >/dev/null 2>&1 || fail "train $m"
done

# validation: the field is named
"$FUNNEL" model push --server "$A" --stage 4 --model "$T/s1.model" >"$T/v.out" 2>&1 && fail "stage 4 taken"
"$PY" - "$A" "$HERE" >"$T/v2.out" 2>&1 <<'EOF' || { cat "$T/v2.out"; fail "validation"; }
import sys
sys.path.insert(0, sys.argv[2])
import grpc, funnel_pb as pb
pb.load(sys.argv[2] + '/../../proto')
ch = grpc.insecure_channel(sys.argv[1])
def push(**kw):
    try:
        pb.call(ch, pb.PUSH_MODEL, pb.M.PushModelRequest(**kw), pb.M.PushModelResponse, 10)
        return "OK"
    except grpc.RpcError as e:
        return "%s %s" % (e.code().name, e.details())
want = [
    (dict(stage=4), "INVALID_ARGUMENT stage: 4 is not 1, 2 or 3 (intent)"),
    (dict(stage=1, mode=1), "INVALID_ARGUMENT model: STAGE needs a model"),
    (dict(stage=1, mode=2, model=b"x"), "INVALID_ARGUMENT model: ACTIVATE takes no model"),
    (dict(stage=1, mode=2), "FAILED_PRECONDITION activate: no stage-1 model is staged"),
    (dict(stage=3, mode=2), "FAILED_PRECONDITION activate: no intent model is staged"),
    (dict(stage=3, model=b"funnel-intent 1\n"), "INVALID_ARGUMENT pushed model: no checksum line"),
]
for kw, w in want:
    got = push(**kw)
    if not got.startswith(w):
        print("push %r: %s, want %s" % (kw, got, w)); sys.exit(1)
print("validated %d bad pushes" % len(want))
EOF
ok "bad pushes: $(cat "$T/v2.out")"

# the shuffled-label model: staged on 4 replicas, refused, discarded everywhere
"$FUNNEL" model push --server "$A" --stage 1 --model "$T/shuf.model" --gate-queries "$T/test.tsv" --gate-qps 0 \
    --qrels "$D/qrels.trec" >"$T/shuf.out" 2>&1 && { cat "$T/shuf.out"; fail "the shuffled-label model passed the gate"; }
grep -q "stage 1 model staged: shuf.model .* on 4 shard replicas" "$T/shuf.out" || { cat "$T/shuf.out"; fail "shuffled: not staged on 4"; }
grep -q "quality gate: REFUSED: NDCG@10" "$T/shuf.out" || { cat "$T/shuf.out"; fail "shuffled model: report"; }
grep -q "stage 1 model stays: none" "$T/shuf.out" || { cat "$T/shuf.out"; fail "shuffled model: not discarded"; }
"$FUNNEL" search --server "$A" --candidate-model --syntax plain "boundary layer" >"$T/c.out" 2>&1 \
    && { cat "$T/c.out"; fail "a candidate search after the discard"; }
grep -q "INVALID_ARGUMENT.*no model is staged" "$T/c.out" || { cat "$T/c.out"; fail "candidate search: message"; }
for r in "$R"/shard-*-r*.log; do
    grep -q "staged stage-1 model discarded" "$r" || { tail -5 "$r"; fail "$r: no discard"; }
done
ok "stage 1, shuffled labels: $(grep 'REFUSED' "$T/shuf.out" | cut -c1-90)"
S1_SHUF=$(grep -E '^  (live|candidate) ' "$T/shuf.out" | tr -s ' ' | cut -d' ' -f2,4 | tr '\n' ' ')

# a replica restarted while a model is staged: it does not hold it and says so
"$FUNNEL" model push --server "$A" --stage 1 --model "$T/s1.model" >/dev/null 2>&1 || fail "push s1 live"
"$FUNNEL" model push --server "$A" --stage 1 --none >/dev/null 2>&1 || fail "remove s1"
"$PY" - "$A" "$HERE" "$T/s1.model" >"$T/st.out" 2>&1 <<'EOF' || { cat "$T/st.out"; fail "stage"; }
import sys
sys.path.insert(0, sys.argv[2])
import grpc, funnel_pb as pb
pb.load(sys.argv[2] + '/../../proto')
ch = grpc.insecure_channel(sys.argv[1])
r = pb.call(ch, pb.PUSH_MODEL, pb.M.PushModelRequest(stage=1, mode=1, model=open(sys.argv[3], 'rb').read(),
            name='s1.model'), pb.M.PushModelResponse, 10)
print(r.replicas)
EOF
[ "$(cat "$T/st.out")" = 4 ] || { cat "$T/st.out"; fail "staged on $(cat "$T/st.out") replicas"; }
# Admin/Status ADDR -> "stage1_model|stage1_staged|stage2_staged|intent_staged"
status() {
    "$PY" - "$1" "$HERE" <<'EOF'
import sys
sys.path.insert(0, sys.argv[2])
import grpc, funnel_pb as pb
pb.load(sys.argv[2] + '/../../proto')
r = pb.call(grpc.insecure_channel(sys.argv[1]), pb.STATUS, pb.M.StatusRequest(), pb.M.StatusResponse, 10)
print("|".join([r.stage1_model, r.stage1_staged, r.stage2_staged, r.intent_staged]))
EOF
}
SC=$(status "$A") S1=$(status "$(cat "$R/shard-1-r0.addr")")
case "$SC" in "|s1.model"*"||") ;; *) fail "coordinator Status: staged models '$SC', want stage 1 s1.model only";; esac
case "$S1" in "|s1.model"*"||") ;; *) fail "shard 1 r0 Status: '$S1', want s1.model staged";; esac
for rep in r0 r1; do
    kill -9 "$(cat "$R/shard-1-$rep.pid")"
done
sleep 0.3
for rep in r0 r1; do
    "$FUNNEL" cluster restart --dir "$R" shard-1-$rep >/dev/null 2>"$T/restart.err" \
        || { cat "$T/restart.err"; fail "restart"; }
done
# (until the coordinator reaches the restarted replicas: before, UNAVAILABLE)
for i in $(seq 20); do
    "$FUNNEL" search --server "$A" --candidate-model --json --syntax plain "boundary layer" >"$T/c2.json" 2>&1 \
        || { cat "$T/c2.json"; fail "candidate search with shard 1 restarted"; }
    grep -q "no stage-1 model is staged on this replica" "$T/c2.json" && break
    sleep 0.25
done
grep -q "no stage-1 model is staged on this replica" "$T/c2.json" \
    || { grep -A12 '"failures"' "$T/c2.json"; fail "no clear error"; }
S1R=$(status "$(cat "$R/shard-1-r0.addr")") S0=$(status "$(cat "$R/shard-0-r0.addr")")
[ "$S1R" = "|||" ] || fail "restarted shard 1 r0 Status: '$S1R', want nothing staged"
case "$S0" in "|s1.model"*"||") ;; *) fail "shard 0 r0 Status: '$S0', want s1.model still staged";; esac
ok "Admin/Status names the staged model: coordinator '$SC', shard 0 '$S0', restarted shard 1 '$S1R'"
[ "$(json_get "$T/c2.json" 'r.get("partial")')" = True ] || { head -c 800 "$T/c2.json"; fail "not partial"; }
ok "a replica restarted after the STAGE: $(grep -o 'no stage-1 model is staged on this replica[^"]*' "$T/c2.json" | head -1), answer partial"
# (the restarted replicas' channels may still be reconnecting: a few tries)
for i in 1 2 3 4 5 6; do
    "$FUNNEL" model push --server "$A" --stage 1 --none >"$T/rm.out" 2>&1 && break
    sleep 0.5
done || { cat "$T/rm.out"; fail "remove s1"; }

# the real labels: passes and is live on every replica
"$FUNNEL" model push --server "$A" --stage 1 --model "$T/s1.model" --gate-queries "$T/test.tsv" --gate-qps 0 \
    --qrels "$D/qrels.trec" >"$T/good.out" 2>&1 || { cat "$T/good.out"; fail "the real model was refused"; }
grep -q "quality gate: passed" "$T/good.out" && grep -q "stage 1 model: s1.model .* on 4 shard replicas" "$T/good.out" \
    || { cat "$T/good.out"; fail "real model: not activated"; }
for r in "$R"/shard-*-r*.log; do
    grep -q "stage-1 model now s1.model.*(staged, activated)" "$r" || { tail -5 "$r"; fail "$r: not activated"; }
done
S1_GOOD=$(grep -E '^  (live|candidate) ' "$T/good.out" | tr -s ' ' | cut -d' ' -f2,4 | tr '\n' ' ')
ok "stage 1 gate: shuffled labels ndcg@10 $S1_SHUF$(grep -o 'overlap: [0-9.]*' "$T/shuf.out");" \
   "real labels $S1_GOOD$(grep -o 'overlap: [0-9.]*' "$T/good.out")"
"$FUNNEL" cluster down --dir "$R" >/dev/null 2>&1 || fail "down"

# ---- intent (stage 3): a gen_corpus.py corpus with verticals, blend rules that
# place blocks of a vertical's hits at the top when the intent model says so.
# Every query gets an intent label (3 web : 1 news : 1 image), and judgments
# that follow it: the documents of the query's vertical among its top 100
# (unblended) are the relevant ones. The live model is trained on the labels, a
# candidate trained again on them (another C) passes, one trained on the labels
# shuffled over the queries fires the wrong blocks and is refused (NDCG drop).
C=$T/c.jsonl IQ=$T/iq.tsv
"$PY" "$DATA/../tools/gen_corpus.py" --docs 3000 --seed 11 --out "$C" --queries 80 --queries-out "$IQ" \
    >/dev/null 2>&1 || fail "gen_corpus"
"$FUNNEL" index build --input "$C" --shards 2 --out "$T/ci" >"$T/ci.log" 2>&1 || { cat "$T/ci.log"; fail "build"; }
"$PY" - "$IQ" "$T/labels.tsv" "$T/shuffled.tsv" <<'EOF'
import random, sys
qids = [l.split('\t')[0] for l in open(sys.argv[1]) if l.strip()]
lab = [("web", "web", "web", "news", "image")[i % 5] for i in range(len(qids))]
open(sys.argv[2], 'w').write(''.join('%s\t%s\n' % x for x in zip(qids, lab)))
random.seed(7)
random.shuffle(lab)
open(sys.argv[3], 'w').write(''.join('%s\t%s\n' % x for x in zip(qids, lab)))
EOF
"$FUNNEL" intent train --queries "$IQ" --labels "$T/labels.tsv" --out "$T/ci/intent.model" >"$T/it.log" 2>&1 \
    || { cat "$T/it.log"; fail "intent train"; }
for m in labels shuffled; do
    "$FUNNEL" intent train --queries "$IQ" --labels "$T/$m.tsv" --c 2 --out "$T/$m.intent" >"$T/it.$m.log" 2>&1 \
        || { cat "$T/it.$m.log"; fail "intent train $m"; }
done
printf '%s\n' 'safe-search = off' \
    'blend-rule = news vertical=news position=1 size=4 min-intent=0.4 depth=200' \
    'blend-rule = image vertical=image position=5 size=4 min-intent=0.4 depth=200' >"$T/rules.conf"
R2=$T/run2
A2=$("$FUNNEL" cluster up --index "$T/ci" --dir "$R2" --coordinator-config "$T/rules.conf" 2>"$T/up2.err") \
    || { cat "$T/up2.err"; fail "cluster up (intent)"; }
"$PY" - "$A2" "$HERE" "$IQ" "$T/labels.tsv" >"$T/iqrels.trec" 2>"$T/iqrels.err" <<'EOF' || { cat "$T/iqrels.err"; fail "qrels"; }
import sys
sys.path.insert(0, sys.argv[2])
import grpc, funnel_pb as pb
pb.load(sys.argv[2] + '/../../proto')
ch = grpc.insecure_channel(sys.argv[1])
label = dict(l.rstrip('\n').split('\t') for l in open(sys.argv[4]))
for line in open(sys.argv[3]):
    qid, text = line.rstrip('\n').split('\t')[:2]
    r = pb.call(ch, pb.SEARCH, pb.M.SearchRequest(query=text, plain_text=True, k=100, no_blend=True),
                pb.M.SearchResponse, 10)
    for h in r.hits:
        if h.vertical == label[qid]:
            print("%s 0 %s 1" % (qid, h.id))
EOF
[ -s "$T/iqrels.trec" ] || fail "no judgments"
"$FUNNEL" model push --server "$A2" --stage intent --model "$T/shuffled.intent" --gate-queries "$IQ" --gate-qps 0 \
    --qrels "$T/iqrels.trec" >"$T/imoved.out" 2>&1 && { cat "$T/imoved.out"; fail "the shuffled-label intent model passed the gate"; }
grep -q "intent model staged: shuffled.intent (intent, 3 verticals" "$T/imoved.out" || { cat "$T/imoved.out"; fail "not staged"; }
grep -q "quality gate: REFUSED: NDCG@10" "$T/imoved.out" || { cat "$T/imoved.out"; fail "shuffled: report"; }
grep -q "candidate discarded; intent model stays: intent.model" "$T/imoved.out" \
    || { cat "$T/imoved.out"; fail "moved: not discarded"; }
"$FUNNEL" model push --server "$A2" --stage 3 --model "$T/labels.intent" --gate-queries "$IQ" --gate-qps 0 \
    --qrels "$T/iqrels.trec" >"$T/igood.out" 2>&1 || { cat "$T/igood.out"; fail "the retrained intent model was refused"; }
grep -q "quality gate: passed" "$T/igood.out" && grep -q "^intent model: labels.intent (intent" "$T/igood.out" \
    || { cat "$T/igood.out"; fail "retrained intent model: not activated"; }
grep -q "intent model now labels.intent .*(staged, activated)" "$R2/coordinator.log" || fail "coordinator: not activated"
# the live model answers: a search's intent scores come from it
"$FUNNEL" search --server "$A2" --json --syntax plain "$(head -n1 "$IQ" | cut -f2)" >"$T/is.json" || fail "search"
grep -q '"intent"' "$T/is.json" || { head -c 600 "$T/is.json"; fail "no intent scores after the push"; }
# a damaged file is refused by its checksum, naming the push
sed '3s/^verticals 3$/verticals 2/' "$T/labels.intent" >"$T/bad.intent"
"$FUNNEL" model push --server "$A2" --stage intent --model "$T/bad.intent" >"$T/ibad.out" 2>&1 && fail "damaged intent model taken"
grep -q "INVALID_ARGUMENT: bad.intent: checksum mismatch" "$T/ibad.out" || { cat "$T/ibad.out"; fail "damaged: message"; }
ok "intent gate: shuffled labels $(grep -o 'overlap: [0-9.]*' "$T/imoved.out") ($(grep REFUSED "$T/imoved.out" | cut -c1-70));" \
   "retrained $(grep -E '^  (live|candidate) ' "$T/igood.out" | tr -s ' ' | cut -d' ' -f2,4 | tr '\n' ' ')$(grep -o 'overlap: [0-9.]*' "$T/igood.out"), passed;" \
   "top intent the same: $(grep -o 'the same for [0-9.]*' "$T/imoved.out" | cut -c14-) shuffled, $(grep -o 'the same for [0-9.]*' "$T/igood.out" | cut -c14-) retrained;" \
   "a damaged file: $(cut -c1-90 "$T/ibad.out")"
"$FUNNEL" cluster down --dir "$R2" >/dev/null 2>&1 || fail "down"

echo "PASS"
