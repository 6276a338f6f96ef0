#!/usr/bin/env bash
# (b) With one of 3 shards killed (SIGKILL), every query still answers, with
# coverage 2/3 and partial=true, and the coordinator's log says the shard
# went down (one line).
source "$(dirname "$0")/lib.sh"

I3=$(build_index idx3 3) || exit 1
R=$T/run
A=$(cluster_up "$I3" "$R") || fail "cluster up"
"$FUNNEL" cluster status --dir "$R" || fail "status of a healthy cluster"
"$FUNNEL" search --server "$A" --json "heat transfer" >"$T/full.json" || fail "search before the kill"
[ "$(json_get "$T/full.json" '(r["coverage"]["shards_answered"], r["partial"])')" = "(3, False)" ] \
    || fail "healthy cluster: $(json_get "$T/full.json" 'r["coverage"]')"

kill -9 "$(cat "$R/shard-1.pid")"
sleep 0.2
mkdir -p "$T/q"
n=0
while IFS=$'\t' read -r qid text _; do
    [ -n "$qid" ] || continue
    "$FUNNEL" search --server "$A" --json --k 10 --syntax plain "$text" >"$T/q/$qid.json" 2>"$T/q.err" \
        || { cat "$T/q.err"; fail "query $qid failed with a shard down"; }
    n=$((n + 1))
done <"$DATA/cranfield/queries.tsv"
[ "$n" -eq 225 ] || fail "ran $n queries, expected 225"
"$PY" - "$T/q" <<'PY' || fail "coverage with a killed shard"
import json, os, sys
bad = 0
for name in sorted(os.listdir(sys.argv[1])):
    r = json.load(open(os.path.join(sys.argv[1], name)))
    c = r["coverage"]
    got = (c["shards_answered"], c["shards_asked"], r["partial"], [f["shard"] for f in r["failures"]])
    if got != (2, 3, True, [1]):
        print("query", name[:-5], "(answered, asked, partial, failed shards) =", got); bad += 1
sys.exit(1 if bad else 0)
PY
ok "$n queries with shard 1 killed: coverage 2/3, partial=true"

# the coordinator's log says so, once (its probe marked the replica down)
L=$R/coordinator.log
grep -E 'WARN shard 1 replica 127\.0\.0\.1:[0-9]+ marked down: ' "$L" >/dev/null || { cat "$L"; fail "no 'marked down' line in the coordinator's log"; }
[ "$(grep -c 'shard 1 replica' "$L")" -eq 1 ] || { cat "$L"; fail "more than one log line about shard 1"; }
ok "coordinator log: $(grep -m1 'shard 1 replica' "$L" | sed 's/.* WARN //')"

# status tells which process is gone, and exits non-zero
if "$FUNNEL" cluster status --dir "$R" >"$T/status.out"; then fail "status exit 0 with a dead shard"; fi
grep -E '^shard +1 .* no +DOWN' "$T/status.out" >/dev/null || { cat "$T/status.out"; fail "status does not show shard 1 down"; }
ok "cluster status reports shard 1 down"
