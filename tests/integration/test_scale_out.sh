#!/usr/bin/env bash
# Scale-out while the cluster serves (issue 13, acceptance 4; docs/operations.md
# "Scale-out"): npl on 3 shards, `funnel cluster add-shard` under load from
# `funnel bench`: 0 failed and 0 partial answers, a quarter of the 4096 buckets
# moved to the new shard; afterwards all 93 npl queries return exactly the
# ranking (ids, ranks, scores) of a fresh 4-shard build, and get by id routes
# by the new bucket map. `funnel index rollback` goes back to 3 shards (and
# RUN/topology.conf follows); `add-replica` then adds a replica that serves
# alone once the first is killed.
source "$(dirname "$0")/lib.sh"
N=$DATA/npl
[ -f "$N/corpus.jsonl" ] || { echo "SKIP: no npl"; exit 77; }

I3=$(build_index npl3 3 npl) || exit 1
I4=$(build_index npl4 4 npl) || exit 1
R=$T/run
A=$(cluster_up "$I3" "$R") || fail "cluster up"
"$FUNNEL" bench --server "$A" --queries "$N/queries.tsv" --rate 120 --duration 8 --deadline-ms 2000 --json \
    >"$T/bench.json" 2>"$T/bench.err" </dev/null &
BP=$!
sleep 2
"$FUNNEL" cluster add-shard --dir "$R" >"$T/add.out" 2>&1 || { cat "$T/add.out"; fail "add-shard"; }
wait $BP || { cat "$T/bench.err"; fail "bench during add-shard"; }
grep -q "1024 of 4096 buckets moved to shard 3" "$T/add.out" || { cat "$T/add.out"; fail "buckets moved"; }
got=$(json_get "$T/bench.json" '(r["requests"] >= 900, r["errors"], r["partial"])')
[ "$got" = "(True, 0, 0)" ] || { cat "$T/bench.json"; fail "during add-shard: (requests >= 900, errors, partial) = $got"; }
[ "$(grep -c '^shard ' "$R/topology.conf")" = 4 ] || { cat "$R/topology.conf"; fail "topology.conf: 4 shards"; }
ok "add-shard under 120 qps: $(json_get "$T/bench.json" 'r["requests"]') requests, 0 failed, 0 partial; $(head -n 1 "$T/add.out" | cut -c1-90)"

# the same ranking as a fresh 4-shard build, for every query
A4=$(cluster_up "$I4" "$T/run4") || fail "cluster up (fresh 4 shards)"
"$FUNNEL" search --server "$A" --queries "$N/queries.tsv" --k 100 --run-out "$T/moved.run" >/dev/null 2>&1 || fail "batch (moved)"
"$FUNNEL" search --server "$A4" --queries "$N/queries.tsv" --k 100 --run-out "$T/fresh.run" >/dev/null 2>&1 || fail "batch (fresh)"
[ "$(wc -l <"$T/moved.run")" -ge 9000 ] || fail "moved.run: $(wc -l <"$T/moved.run") lines"
cmp <(awk '{print $1, $3, $4, $5}' "$T/moved.run") <(awk '{print $1, $3, $4, $5}' "$T/fresh.run") >/dev/null \
    || { diff <(awk '{print $1, $3, $4, $5}' "$T/moved.run") <(awk '{print $1, $3, $4, $5}' "$T/fresh.run") | head; \
         fail "rankings after add-shard differ from a fresh 4-shard build"; }
"$FUNNEL" search --server "$A" --json --k 5 --syntax plain "information retrieval" >"$T/s.json" || fail "search"
[ "$(json_get "$T/s.json" 'r["coverage"]["shards_answered"]')" = 4 ] || fail "4 shards answer"
"$FUNNEL" get --server "$A" --json "$(head -n 1 "$N/corpus.jsonl" | "$PY" -c 'import json,sys; print(json.loads(sys.stdin.readline())["id"])')" \
    >"$T/get.json" 2>&1 || { cat "$T/get.json"; fail "get by id after the move"; }
grep -q '"found": true' "$T/get.json" || { cat "$T/get.json"; fail "get: not found (routing by the moved bucket map)"; }
"$FUNNEL" cluster down --dir "$T/run4" >/dev/null 2>&1
ok "93 queries x 100 hits: the same ids, ranks and scores as a fresh 4-shard build; get by id routes by the new map"

# rollback: 3 shards again, and the run directory's topology says so
"$FUNNEL" index rollback --dir "$R" >"$T/rb.out" 2>&1 || { cat "$T/rb.out"; fail "rollback"; }
"$FUNNEL" search --server "$A" --json --k 5 --syntax plain "information retrieval" >"$T/s.json" || fail "search after rollback"
[ "$(json_get "$T/s.json" 'r["coverage"]["shards_asked"]')" = 3 ] || fail "rollback: 3 shards asked"
[ "$(grep -c '^shard ' "$R/topology.conf")" = 3 ] || { cat "$R/topology.conf"; fail "topology.conf after rollback"; }
ok "rollback: back on 3 shards"
# a replica added while serving takes over when the first one dies
"$FUNNEL" cluster add-replica --dir "$R" --shard 1 >"$T/rep.out" 2>&1 || { cat "$T/rep.out"; fail "add-replica"; }
kill -9 "$(cat "$R/shard-1.pid")"
sleep 0.3
"$FUNNEL" bench --server "$A" --queries "$N/queries.tsv" --rate 80 --duration 3 --deadline-ms 2000 --json \
    >"$T/b2.json" 2>"$T/b2.err" || { cat "$T/b2.err"; fail "bench after add-replica"; }
got=$(json_get "$T/b2.json" '(r["errors"], r["partial"])')
[ "$got" = "(0, 0)" ] || { cat "$T/b2.json"; fail "shard 1 served by the added replica: (errors, partial) = $got"; }
ok "add-replica: the new replica serves shard 1 alone (0 failed, 0 partial)"

echo "PASS"
