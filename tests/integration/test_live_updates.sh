#!/usr/bin/env bash
# Live updates (issue 13, acceptance 3; docs/operations.md "Live updates"), on
# cranfield, 2 shards:
#  - live_updates.py: 10,000 puts and deletes in batches of 50, interleaved with
#    searches; every acknowledged put found by id (with its title) right after
#    the acknowledgement, every acknowledged delete gone from Get and from
#    searches for good; shard 1 killed with SIGKILL a third of the way in and
#    restarted: no acknowledged write lost;
#  - `funnel index merge` builds the updates into a new generation: the put
#    documents become searchable, the stores are pruned;
#  - every document deleted and put again, then merged: NDCG@10 (and the whole
#    run) equals a fresh build's.
source "$(dirname "$0")/lib.sh"
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || { echo "SKIP: needs python3-grpcio"; exit 77; }
command -v protoc-c >/dev/null || { echo "SKIP: needs protoc-c"; exit 77; }
PROTO=$HERE/../../proto
C=$DATA/cranfield

I=$(build_index live 2) || exit 1
R=$T/run
A=$(cluster_up "$I" "$R") || fail "cluster up"
"$PY" "$HERE/live_updates.py" "$PROTO" "$A" "$C/corpus.jsonl" "$R" "$FUNNEL" "$T/feed.json" >"$T/feed.out" 2>&1 \
    || { cat "$T/feed.out"; fail "the feed: $(json_get "$T/feed.json" 'r["violations"]' 2>/dev/null)"; }
got=$(json_get "$T/feed.json" '(r["ops"] >= 10000, r["killed_shard"], r["nviolations"], r["get_after_ack_max_s"] < 1.0)')
[ "$got" = "(True, True, 0, True)" ] || { cat "$T/feed.json"; fail "feed: (10000 ops, killed, violations, get < 1 s) = $got"; }
ok "feed: $(json_get "$T/feed.json" '"%d ops, %d ids acknowledged (%d live, %d deleted), shard 1 killed and restarted (%d batches sent again), %d searches beside, slowest get after an ack %.3f s, 0 violations" % (r["ops"], r["acknowledged_ids"], r["puts_live"], r["deleted"], r["retries"], r["searches"], r["get_after_ack_max_s"])')"

# merge: the puts become searchable; what was deleted stays gone
"$FUNNEL" index merge --dir "$R" >"$T/merge.out" 2>&1 || { cat "$T/merge.out"; fail "merge"; }
grep -q "^merged " "$T/merge.out" && grep -q "stores pruned: [1-9]" "$T/merge.out" || { cat "$T/merge.out"; fail "merge report"; }
NEW=$("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["ops"])' "$T/feed.json")
"$FUNNEL" search --server "$A" --json --k 5 --syntax plain "copy u-0" >"$T/s.json" || fail "search after merge"
"$PY" - "$T/s.json" "$T/feed.json" <<'EOF' || fail "after the merge: a put document is not searchable"
import json, sys
r = json.load(open(sys.argv[1]))
ids = [h["id"] for h in r.get("hits", [])]
assert any(i.startswith("u-") for i in ids), ids
EOF
ok "merge: $(grep '^merged' "$T/merge.out" | cut -c1-120); $(grep 'stores pruned' "$T/merge.out")"
"$FUNNEL" cluster down --dir "$R" >/dev/null 2>&1

# delete every document, put every one again, merge: the fresh build's ranking
A=$(cluster_up "$I" "$T/run2") || fail "cluster up (2)"
"$PY" -c 'import json,sys
for l in open(sys.argv[1]):
    if l.strip(): print(json.loads(l)["id"])' "$C/corpus.jsonl" >"$T/ids"
"$FUNNEL" doc delete --server "$A" --ids "$T/ids" >"$T/del.out" 2>&1 || { cat "$T/del.out"; fail "delete all"; }
"$FUNNEL" search --server "$A" --json --k 10 --syntax plain "boundary layer" >"$T/empty.json" || fail "search"
[ "$(json_get "$T/empty.json" 'len(r.get("hits", []))')" = 0 ] || fail "every document deleted, yet hits"
"$FUNNEL" doc put --server "$A" "$C/corpus.jsonl" >"$T/put.out" 2>&1 || { cat "$T/put.out"; fail "put all"; }
"$FUNNEL" index merge --dir "$T/run2" >"$T/merge2.out" 2>&1 || { cat "$T/merge2.out"; fail "merge 2"; }
"$FUNNEL" search --server "$A" --queries "$C/queries.tsv" --k 100 --run-out "$T/readded.run" >/dev/null 2>&1 || fail "batch"
A0=$(cluster_up "$I" "$T/run0") || fail "cluster up (fresh)"
"$FUNNEL" search --server "$A0" --queries "$C/queries.tsv" --k 100 --run-out "$T/fresh.run" >/dev/null 2>&1 || fail "batch (fresh)"
"$FUNNEL" eval --run "$T/readded.run" --qrels "$C/qrels.trec" >"$T/e1" 2>&1 || fail "eval"
"$FUNNEL" eval --run "$T/fresh.run" --qrels "$C/qrels.trec" >"$T/e0" 2>&1 || fail "eval fresh"
n1=$(grep -i "ndcg@10" "$T/e1" | head -1); n0=$(grep -i "ndcg@10" "$T/e0" | head -1)
[ -n "$n1" ] && [ "$n1" = "$n0" ] || { cat "$T/e1" "$T/e0"; fail "NDCG@10 after delete + re-add ($n1) != fresh build ($n0)"; }
cmp <(awk '{print $1, $3, $4}' "$T/readded.run") <(awk '{print $1, $3, $4}' "$T/fresh.run") >/dev/null \
    || fail "the ranking after delete + re-add + merge differs from a fresh build's"
ok "every document deleted and put again, merged: $n1 = the fresh build's, the same run"
echo "PASS"
