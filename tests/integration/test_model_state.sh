#!/usr/bin/env bash
# Pushed models survive restarts (--model-state, common/fn_modelstate.h;
# docs/operations.md "Models across restarts"), on cranfield with 2 shards x 2
# replicas started by `funnel cluster up` (which gives every daemon
# RUNDIR/models/NAME):
#  - a stage-1 model activated through the gate, a stage-2 and an intent model
#    pushed live; kill -9 of the coordinator and of a shard replica, both
#    restarted from their command lines (which name no model): they serve the
#    pushed models (Admin/Status, the search's stage notes), not none;
#  - a replica added afterwards (add-replica) starts with the pushed stage-1;
#  - a push removing the stage-2 model (--none) survives a restart too;
#  - a damaged state file: the restart fails naming the file and the way out,
#    never a silent fall back to the command line's model; moved away, it
#    starts with the command line's;
#  - a push whose state cannot be written is refused (INTERNAL, naming the
#    file) and the model before stays live;
#  - `cluster up` again on the same RUNDIR starts from the command line's models.
source "$(dirname "$0")/lib.sh"
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || { echo "SKIP: needs python3-grpcio"; exit 77; }
command -v protoc-c >/dev/null || { echo "SKIP: needs protoc-c"; exit 77; }
cran_models_cluster 1 2
"$FUNNEL" train --data "$T/s1.svm" --objective logistic --out "$T/s1.model" >/dev/null 2>&1 || fail "train s1"
"$FUNNEL" train --data "$T/s2.svm" --objective lambdarank --trees 20 --out "$T/s2.model" >/dev/null 2>&1 || fail "train s2"
awk -F'\t' '{print $1 "\t" (NR % 3 ? "web" : "news")}' "$D/queries.tsv" >"$T/labels.tsv"
"$FUNNEL" intent train --queries "$D/queries.tsv" --labels "$T/labels.tsv" --out "$T/q.intent" >"$T/it.log" 2>&1 \
    || { cat "$T/it.log"; fail "intent train"; }

# Admin/Status ADDR -> "stage1_model|stage2_model|intent_model"
status() {
    "$PY" - "$1" "$HERE" <<'EOF'
import sys
sys.path.insert(0, sys.argv[2])
import grpc, funnel_pb as pb
pb.load(sys.argv[2] + '/../../proto')
r = pb.call(grpc.insecure_channel(sys.argv[1]), pb.STATUS, pb.M.StatusRequest(), pb.M.StatusResponse, 10)
print("|".join([r.stage1_model, r.stage2_model, r.intent_model]))
EOF
}
# the stage notes of one search: "stage1 note | stage2 note"
notes() {
    "$FUNNEL" search --server "$(cat "$R/coordinator.addr")" --json --syntax plain "boundary layer" >"$T/n.json" \
        || return 1
    json_get "$T/n.json" '" | ".join(s["note"] for s in r["stages"] if s["name"] in ("stage1", "stage2"))'
}
restart() {   # NAME: kill -9, then start it again from RUNDIR/NAME.cmd
    kill -9 "$(cat "$R/$1.pid")"
    sleep 0.3
    "$FUNNEL" cluster restart --dir "$R" "$1" >"$T/restart.out" 2>&1
}

"$FUNNEL" model push --server "$A" --stage 1 --model "$T/s1.model" --gate-queries "$T/test.tsv" --gate-qps 0 \
    --qrels "$D/qrels.trec" >"$T/g1.out" 2>&1 || { cat "$T/g1.out"; fail "stage 1 through the gate"; }
"$FUNNEL" model push --server "$A" --stage 2 --model "$T/s2.model" >"$T/p2.out" 2>&1 || { cat "$T/p2.out"; fail "push 2"; }
"$FUNNEL" model push --server "$A" --stage intent --model "$T/q.intent" >"$T/p3.out" 2>&1 || { cat "$T/p3.out"; fail "push intent"; }
for f in coordinator/stage2.model coordinator/intent.model shard-0-r0/stage1.model shard-1-r1/stage1.model; do
    [ -s "$R/models/$f" ] || fail "no $R/models/$f after the pushes"
done
BEFORE=$(notes) || fail "search"
case "$BEFORE" in *"s1.model"*" | s2.model"*) ;; *) fail "before the restart: notes '$BEFORE'";; esac

restart coordinator || { cat "$T/restart.out"; fail "coordinator restart"; }
restart shard-0-r1 || { cat "$T/restart.out"; fail "shard restart"; }
grep -q -- "--stage2-model\|--intent-model" "$R/coordinator.cmd" && fail "the coordinator's command line names a model"
SC=$(status "$(cat "$R/coordinator.addr")") S01=$(status "$(cat "$R/shard-0-r1.addr")")
case "$SC" in "|s2.model (trees lambdarank, 20 trees"*"|q.intent (intent, 2 verticals"*) ;;
    *) fail "restarted coordinator's Status: '$SC', want s2.model and q.intent";; esac
case "$S01" in "s1.model (linear logistic"*"||") ;; *) fail "restarted shard-0-r1's Status: '$S01', want s1.model";; esac
grep -q "stage-2 model s2.model .* from $R/models/coordinator/stage2.model (the last push; --stage2-model (none) not used)" \
    "$R/coordinator.log" || { tail -5 "$R/coordinator.log"; fail "coordinator log: where the model came from"; }
grep -q "stage-1 model s1.model .* from $R/models/shard-0-r1/stage1.model (the last push" "$R/shard-0-r1.log" \
    || { tail -5 "$R/shard-0-r1.log"; fail "shard log: where the model came from"; }
AFTER=
for i in $(seq 20); do   # (until the coordinator reaches the restarted replica)
    AFTER=$(notes) && [ "$AFTER" = "$BEFORE" ] && break
    sleep 0.25
done
[ "$AFTER" = "$BEFORE" ] || fail "after the restarts the notes are '$AFTER', before '$BEFORE'"
ok "kill -9 and restart of the coordinator and shard-0-r1 (command lines without models): coordinator '$SC'," \
   "shard-0-r1 '$S01'; search notes '$AFTER'"

# a replica added now starts with the pushed stage-1 model
"$FUNNEL" cluster add-replica --dir "$R" --shard 1 >"$T/add.out" 2>&1 || { cat "$T/add.out"; fail "add-replica"; }
S12=$(status "$(cat "$R/shard-1-r2.addr")")
case "$S12" in "s1.model (linear logistic"*"||") ;; *) fail "the added replica shard-1-r2: '$S12', want s1.model";; esac
ok "add-replica: shard-1-r2 starts with '$S12'"

# a removal is a push like any other
"$FUNNEL" model push --server "$A" --stage 2 --none >"$T/none.out" 2>&1 || { cat "$T/none.out"; fail "push --none"; }
restart coordinator || { cat "$T/restart.out"; fail "coordinator restart 2"; }
SC=$(status "$(cat "$R/coordinator.addr")")
case "$SC" in "||q.intent"*) ;; *) fail "after --none and a restart: '$SC', want no stage-2 model";; esac
"$FUNNEL" model push --server "$(cat "$R/coordinator.addr")" --stage 2 --model "$T/s2.model" >/dev/null 2>&1 \
    || fail "push s2 again"
ok "stage 2 removed (--none), restart: no stage-2 model ('$SC')"

# a damaged state file stops the start, naming it; moved away, the command line's model
printf 'X' | dd of="$R/models/coordinator/stage2.model" bs=1 seek=200 conv=notrunc 2>/dev/null
restart coordinator && fail "the coordinator started on a damaged state file"
grep -q "stage2.model: checksum mismatch .*damaged (the last pushed model; move the file away to start with the configured one)" \
    "$R/coordinator.log" || { tail -3 "$R/coordinator.log"; cat "$T/restart.out"; fail "damaged: message"; }
DMSG=$(grep -o "stage2.model: checksum mismatch[^;]*" "$R/coordinator.log" | tail -1)
mv "$R/models/coordinator/stage2.model" "$T/damaged.model"
"$FUNNEL" cluster restart --dir "$R" coordinator >"$T/restart.out" 2>&1 || { cat "$T/restart.out"; fail "restart after the move"; }
SC=$(status "$(cat "$R/coordinator.addr")")
case "$SC" in "||q.intent"*) ;; *) fail "started without the state file: '$SC', want the command line's (none)";; esac
ok "a damaged state file: the restart fails ('$DMSG'); moved away, the command line's model ('$SC')"

# a state that cannot be written: the push is refused, the model before stays live
A=$(cat "$R/coordinator.addr")
"$FUNNEL" model push --server "$A" --stage 2 --model "$T/s2.model" >/dev/null 2>&1 || fail "push s2 (3)"
mv "$R/models/coordinator" "$T/coord.models"
: >"$R/models/coordinator"   # a file where the directory was: nothing can be written
"$FUNNEL" model push --server "$A" --stage 2 --none >"$T/w.out" 2>&1 && fail "a push whose state cannot be written was taken"
grep -q "INTERNAL: model state: .*models/coordinator/stage2.model.*(the model is not live: the one before stays)" "$T/w.out" \
    || { cat "$T/w.out"; fail "unwritable state: message"; }
SC=$(status "$A")
case "$SC" in "|s2.model"*) ;; *) fail "after the refused push: '$SC', want s2.model still live";; esac
ok "unwritable state: '$(cut -c1-120 "$T/w.out")...'; still live: s2.model"
rm -f "$R/models/coordinator"
mv "$T/coord.models" "$R/models/coordinator"

# a new cluster on the same RUNDIR: the models of its own command line
"$FUNNEL" cluster down --dir "$R" >/dev/null 2>&1 || fail "down"
A=$("$FUNNEL" cluster up --index "$G" --dir "$R" --stage2-model "$T/s2.model" 2>"$T/up.err") || { cat "$T/up.err"; fail "up again"; }
SC=$(status "$A") S00=$(status "$(cat "$R/shard-0.addr")")
case "$SC" in "|"*"/s2.model (trees lambdarank, 20 trees"*"|") ;;
    *) fail "cluster up again: coordinator '$SC', want the command line's s2.model and no intent model";; esac
[ "$S00" = "||" ] || fail "cluster up again: shard-0 '$S00', want no stage-1 model"
ok "cluster up again on the same RUNDIR: coordinator '$SC', shard-0 '$S00'"
"$FUNNEL" cluster down --dir "$R" >/dev/null 2>&1 || fail "down"
echo "PASS"
