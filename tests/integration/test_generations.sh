#!/usr/bin/env bash
# Index generations on a running cluster (issue 13, docs/operations.md "Index
# generations"): 2 shards x 2 replicas serve generation g1 while `funnel bench`
# runs; a rebuilt g2 is published through the quality gate, rolled back and
# published again under that load with 0 failed and 0 partial answers; a
# damaged candidate (half the corpus) is refused with a report and discarded;
# an unfinished build (no index.json) is refused; a replica restarted on an
# older generation gets the live one loaded by the coordinator; searches
# naming an unknown generation are INVALID_ARGUMENT. Models pass the same gate:
# a stage-2 model trained on shuffled labels is refused and discarded, one
# trained on the real labels is activated.
source "$(dirname "$0")/lib.sh"
D=$DATA/cranfield

G1=$(build_index g1 2) || exit 1
G2=$(build_index g2 2) || exit 1
head -n 700 "$D/corpus.jsonl" >"$T/half.jsonl"
"$FUNNEL" index build --input "$T/half.jsonl" --shards 2 --out "$T/g3" >/dev/null 2>&1 || fail "build g3"
# an unfinished build: shard directories without the index.json a finished one writes last
mkdir -p "$T/g4" && cp -r "$G2/shard-000" "$G2/shard-001" "$T/g4/"

R=$T/run
A=$("$FUNNEL" cluster up --index "$G1" --dir "$R" --replicas 2 2>"$T/up.err") || { cat "$T/up.err"; fail "cluster up"; }
Q=$T/q.tsv
head -n 60 "$D/queries.tsv" >"$Q"

# the gate refuses the damaged candidate, names why, and g1 stays live
"$FUNNEL" index publish --dir "$R" --index "$T/g3" --gate-queries "$D/queries.tsv" --qrels "$D/qrels.trec" --gate-qps 0 \
    >"$T/g3.out" 2>&1 && { cat "$T/g3.out"; fail "publish of a half-empty generation passed the gate"; }
grep -q "quality gate: REFUSED" "$T/g3.out" || { cat "$T/g3.out"; fail "no refusal in the report"; }
grep -q "below 0.900" "$T/g3.out" || { cat "$T/g3.out"; fail "the report does not name the missing documents"; }
grep -q "NDCG@10 0\.[0-9]* -> 0\.[0-9]*, a drop" "$T/g3.out" || { cat "$T/g3.out"; fail "the report does not name the NDCG drop"; }
"$FUNNEL" index generations --dir "$R" >"$T/gens" || fail "generations"
grep -qx "live: $G1" "$T/gens" || { cat "$T/gens"; fail "live is not g1 after a refusal"; }
grep -qx "staged: none" "$T/gens" || { cat "$T/gens"; fail "the refused candidate is still staged"; }
ok "damaged candidate refused: $(grep REFUSED "$T/g3.out" | cut -c1-150)"

"$FUNNEL" index publish --dir "$R" --index "$T/g4" >"$T/g4.out" 2>&1 && fail "an unfinished build was published"
grep -q "not a finished build" "$T/g4.out" || { cat "$T/g4.out"; fail "unfinished build: message"; }
ok "unfinished build refused"

# the latency check's second look: with no room at all (0 x live + 0 ms) the
# first pass is over, the slowest queries of either side run again, and a
# candidate still over is refused, the report saying so
"$FUNNEL" index publish --dir "$R" --index "$G2" --gate-queries "$Q" --gate-qps 0 --max-latency-ratio 0 \
    --latency-slack-ms 0 >"$T/lat.out" 2>&1 && { cat "$T/lat.out"; fail "a candidate over the latency limit passed"; }
grep -q "REFUSED: p95 .* (over 0.00x + 0 ms, its slowest queries measured again)" "$T/lat.out" \
    || { cat "$T/lat.out"; fail "the latency refusal does not say its slowest queries were measured again"; }
n=$(sed -n 's/.*the \([0-9]*\) slowest queries of either side measured again, 3 times each.*/\1/p' "$T/lat.out")
[ -n "$n" ] && [ "$n" -ge 3 ] && [ "$n" -le 12 ] \
    || { cat "$T/lat.out"; fail "queries measured again: '$n', want 3-12 of 60 (either side's slowest 5%)"; }
"$FUNNEL" index generations --dir "$R" >"$T/gens" || fail "generations"
grep -qx "live: $G1" "$T/gens" || { cat "$T/gens"; fail "live is not g1 after a latency refusal"; }
ok "latency over the limit: $n queries measured again, still refused"

# publish, rollback, publish under load: nothing fails, nothing is partial
"$FUNNEL" bench --server "$A" --queries "$Q" --rate 150 --duration 8 --deadline-ms 2000 --json \
    >"$T/bench.json" 2>"$T/bench.err" </dev/null &
BP=$!
sleep 1.5
"$FUNNEL" index publish --dir "$R" --index "$G2" --gate-queries "$D/queries.tsv" --qrels "$D/qrels.trec" --gate-qps 0 \
    >"$T/g2.out" 2>&1 || { cat "$T/g2.out"; fail "publish g2 through the gate"; }
grep -q "quality gate: passed" "$T/g2.out" || { cat "$T/g2.out"; fail "gate did not pass g2"; }
# the gate's shadow searches are background searches (users first: docs/operations.md)
grep -q '"query":"[^"]*","k":10,"page":0,"background":true' "$R/coordinator.log" \
    || fail "the gate's shadow searches are not logged as background searches"
# every replica warmed g2 with its recent live searches before it answered STAGE
for l in "$R"/shard-*.log; do
    grep -q "generation $G2 warmed with [1-9][0-9]* recent searches (0 failed)" "$l" \
        || { grep generation "$l"; fail "$(basename "$l"): g2 was not warmed with live searches"; }
    # the discarded candidate was closed on a thread of its own, not on the loop that answers searches
    grep -q "generation $T/g3 closed in [0-9.]* s, off the loop" "$l" \
        || { grep generation "$l"; fail "$(basename "$l"): g3 was not closed off the loop"; }
done
sleep 1
"$FUNNEL" index rollback --dir "$R" >"$T/rb.out" 2>&1 || { cat "$T/rb.out"; fail "rollback"; }
grep -qx "live: $G1" "$T/rb.out" || { cat "$T/rb.out"; fail "rollback: live is not g1"; }
sleep 1
"$FUNNEL" index publish --dir "$R" --index "$G2" >"$T/g2b.out" 2>&1 || { cat "$T/g2b.out"; fail "publish g2 again"; }
grep -qx "previous: $G1" "$T/g2b.out" || { cat "$T/g2b.out"; fail "previous is not g1"; }
wait $BP || { cat "$T/bench.err"; fail "bench during the swaps"; }
got=$(json_get "$T/bench.json" '(r["requests"] > 600, r["errors"], r["partial"])')
[ "$got" = "(True, 0, 0)" ] || { cat "$T/bench.json"; fail "during publish/rollback: (requests > 600, errors, partial) = $got"; }
ok "publish, rollback, publish under 150 qps: $(json_get "$T/bench.json" 'r["requests"]') requests, 0 failed, 0 partial"
grep -A1 -x -- "--index" "$R/shard-1-r0.cmd" | grep -qx "$G2/shard-001" || fail "shard command lines do not name g2"

# the answers name the generation they read, and are the same documents
"$FUNNEL" search --server "$A" --json --k 10 --syntax plain "boundary layer transition" >"$T/s.json" || fail "search"
[ "$(json_get "$T/s.json" 'r.get("generation")')" = "$G2" ] || { cat "$T/s.json" | head -c 600; fail "response generation"; }

# a replica restarted on the old generation: the coordinator loads g2 there
sed -i "s#$G2/shard-001#$G1/shard-001#" "$R/shard-1-r0.cmd"
kill -9 "$(cat "$R/shard-1-r0.pid")"
sleep 0.3
"$FUNNEL" cluster restart --dir "$R" shard-1-r0 >/dev/null 2>"$T/restart.err" || { cat "$T/restart.err"; fail "restart"; }
"$FUNNEL" bench --server "$A" --queries "$Q" --rate 100 --duration 3 --deadline-ms 2000 --json >"$T/b2.json" 2>"$T/b2.err" \
    || { cat "$T/b2.err"; fail "bench after the restart"; }
got=$(json_get "$T/b2.json" '(r["errors"], r["partial"])')
[ "$got" = "(0, 0)" ] || { cat "$T/b2.json"; fail "after a restart on an old generation: (errors, partial) = $got"; }
grep -q "generation $G2 loaded on" "$R/coordinator.log" || { tail -5 "$R/coordinator.log"; fail "no repair logged"; }
grep -q "generation $G2 live" "$R/shard-1-r0.log" || { tail -5 "$R/shard-1-r0.log"; fail "the restarted replica did not make g2 live"; }
ok "a replica restarted on g1 got g2 loaded; 0 failed, 0 partial"

# an unknown generation is the request's fault
if "$FUNNEL" search --server "$A" --generation /no/such "heat" >"$T/u.out" 2>&1; then fail "unknown generation answered"; fi
grep -q "INVALID_ARGUMENT" "$T/u.out" && grep -q "generation" "$T/u.out" || { cat "$T/u.out"; fail "unknown generation: message"; }
ok "unknown generation: INVALID_ARGUMENT"

# the model gate: train on 120 queries' features, gate on the other 105
head -n 120 "$D/queries.tsv" >"$T/train.tsv"
tail -n +121 "$D/queries.tsv" >"$T/test.tsv"
"$FUNNEL" features --server "$A" --queries "$T/train.tsv" --qrels "$D/qrels.trec" --stage 2 --window 100 \
    --out "$T/s2.svm" 2>"$T/f.err" || { cat "$T/f.err"; fail "features"; }
shuffle_labels "$T/s2.svm" "$T/shuf.svm" || fail "shuffle labels"
for m in s2 shuf; do
    "$FUNNEL" train --data "$T/$m.svm" --objective lambdarank --trees 30 --depth 3 --out "$T/$m.model" >/dev/null 2>&1 \
        || fail "train $m"
done
"$FUNNEL" model push --server "$A" --stage 2 --model "$T/shuf.model" --gate-queries "$T/test.tsv" --gate-qps 0 \
    --qrels "$D/qrels.trec" >"$T/shuf.out" 2>&1 && { cat "$T/shuf.out"; fail "the shuffled-label model passed the gate"; }
grep -q "quality gate: REFUSED: NDCG@10" "$T/shuf.out" || { cat "$T/shuf.out"; fail "shuffled model: report"; }
grep -q "stage 2 model stays: none" "$T/shuf.out" || { cat "$T/shuf.out"; fail "shuffled model: not discarded"; }
# (--max-latency-ratio 10: the live side has no stage-2 model, and under ASan
# the candidate's scoring made its p95 20.06 ms against 3.29 ms, over the
# default 3x + 10 ms; this checks the NDCG verdict)
"$FUNNEL" model push --server "$A" --stage 2 --model "$T/s2.model" --gate-queries "$T/test.tsv" --gate-qps 0 \
    --qrels "$D/qrels.trec" --max-latency-ratio 10 >"$T/good.out" 2>&1 || { cat "$T/good.out"; fail "the real model was refused"; }
grep -q "quality gate: passed" "$T/good.out" && grep -q "stage 2 model: s2.model" "$T/good.out" \
    || { cat "$T/good.out"; fail "real model: not activated"; }
ok "model gate: $(grep REFUSED "$T/shuf.out" | cut -c1-80); real labels: $(grep 'candidate ' "$T/good.out" | tr -s ' ' | cut -c1-60)"

"$FUNNEL" cluster down --dir "$R" >/dev/null 2>&1 || fail "down"
echo "PASS"
