#!/usr/bin/env bash
# (b) With one of 3 shards killed (SIGKILL), every query still answers, with
# coverage 2/3 and partial=true.
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
n=0
while IFS=$'\t' read -r qid text _; do
    [ -n "$qid" ] || continue
    "$FUNNEL" search --server "$A" --json --k 10 "$text" >"$T/q.json" 2>"$T/q.err" \
        || { cat "$T/q.err"; fail "query $qid failed with a shard down"; }
    got=$(json_get "$T/q.json" '(r["coverage"]["shards_answered"], r["coverage"]["shards_asked"], r["partial"], len(r["failures"]) >= 1)')
    [ "$got" = "(2, 3, True, True)" ] || fail "query $qid: (answered, asked, partial, failure listed) = $got"
    n=$((n + 1))
done <"$DATA/cranfield/queries.tsv"
[ "$n" -eq 225 ] || fail "ran $n queries, expected 225"
ok "$n queries with shard 1 killed: coverage 2/3, partial=true"

# status tells which process is gone, and exits non-zero
if "$FUNNEL" cluster status --dir "$R" >"$T/status.out"; then fail "status exit 0 with a dead shard"; fi
grep -E '^shard +1 .* no +DOWN' "$T/status.out" >/dev/null || { cat "$T/status.out"; fail "status does not show shard 1 down"; }
ok "cluster status reports shard 1 down"
