#!/usr/bin/env bash
# Acceptance: 1,000+ malformed or hostile RPCs (random bytes, truncations at
# every kind of boundary, bit flips, 5 and 16 MiB messages, unknown fields of
# every wire type, invalid UTF-8 and NUL in strings, huge repeated fields, deep
# nesting, varint overflow, negative lengths) to the coordinator (Search/Search,
# Search/Get) and to one shard (Shard/Search, Rescore, Fetch, Get): every one
# answered INVALID_ARGUMENT or RESOURCE_EXHAUSTED, no process dies, RSS stays
# flat (hostile_rpc.py), and a normal query still gets full coverage after.
# HOSTILE_SEED=N replays one run (the seed is printed).
source "$(dirname "$0")/lib.sh"
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || { echo "SKIP: no python3-grpcio"; exit 77; }
command -v protoc-c >/dev/null || { echo "SKIP: no protoc-c"; exit 77; }

I=$(build_index idx 2) || exit 1
R=$T/run
A=$(cluster_up "$I" "$R") || fail "cluster up"
CP=$(cat "$R/coordinator.pid") SP=$(cat "$R/shard-0.pid")
seed=${HOSTILE_SEED:-$(( $(date +%s) % 100000 ))}
# under ASan freed memory sits in its quarantine (256 MiB): RSS is printed, not judged
rss=()
case ${FUNNEL_SANITIZE:-none} in none|'') ;; *) rss=(--rss-report-only) ;; esac
"$PY" "$HERE/hostile_rpc.py" "$HERE/../../proto" "$A" "$CP" "$(cat "$R/shard-0.addr")" "$SP" \
    --n 550 --warmup 100 --seed "$seed" "${rss[@]}" >"$T/hostile.out" 2>&1
rc=$?
cat "$T/hostile.out"
for p in "$R"/*.pid; do
    pid_running "$(cat "$p")" || fail "$(basename "$p" .pid) died during the storm"
done
[ $rc -eq 0 ] || fail "hostile RPCs (seed $seed): see above"
ok "every hostile call refused with INVALID_ARGUMENT or RESOURCE_EXHAUSTED, RSS flat (seed $seed)"

"$FUNNEL" search --server "$A" --json "boundary layer" >"$T/q.json" 2>"$T/q.err" || fail "query after the storm: $(cat "$T/q.err")"
[ "$(json_get "$T/q.json" '(r["partial"], r["coverage"]["shards_answered"], len(r["hits"]) > 0)')" = "(False, 2, True)" ] \
    || fail "after the storm: $(json_get "$T/q.json" 'r["coverage"]')"
ok "after the storm a normal query answers with 2/2 shards"
