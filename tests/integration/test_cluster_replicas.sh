#!/usr/bin/env bash
# `funnel cluster up --replicas 2`: 2 shards x 2 replicas (shard-N-rJ), the
# topology lists both replicas of each shard; queries keep full coverage with
# one replica killed (kill -9); `cluster restart` brings it back on the same
# address, the coordinator's Admin/Status shows it up, and it serves alone
# once its sibling is killed; `cluster down` leaves no process.
source "$(dirname "$0")/lib.sh"
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || { echo "SKIP: no python3-grpcio"; exit 77; }
PROTO=$HERE/../../proto

I=$(build_index idx 2) || exit 1
R=$T/run
A=$("$FUNNEL" cluster up --index "$I" --dir "$R" --replicas 2 2>"$T/up.err") || { cat "$T/up.err"; fail "cluster up --replicas 2"; }
names=$(cd "$R" && ls *.pid | sort | tr '\n' ' ')
[ "$names" = "coordinator.pid shard-0-r0.pid shard-0-r1.pid shard-1-r0.pid shard-1-r1.pid " ] || fail "pid files: $names"
for s in 0 1; do
    want="shard $s $(cat "$R/shard-$s-r0.addr") $(cat "$R/shard-$s-r1.addr")"
    grep -x "$want" "$R/topology.conf" >/dev/null || { cat "$R/topology.conf"; fail "topology: want '$want'"; }
done
"$FUNNEL" cluster status --dir "$R" >"$T/status" || { cat "$T/status"; fail "status"; }
[ "$(grep -c 'SERVING$' "$T/status")" -eq 5 ] || { cat "$T/status"; fail "5 SERVING processes expected"; }
ok "4 shard replicas + coordinator, topology 'shard N ADDR ADDR', all SERVING"

# run_queries TAG: 30 queries, each must answer with coverage 2/2, not partial
run_queries() {
    local n=0 qid text
    while IFS=$'\t' read -r qid text _; do
        [ -n "$qid" ] || continue
        n=$((n + 1)); [ $n -le 30 ] || break
        "$FUNNEL" search --server "$A" --json --k 10 --syntax plain "$text" >"$T/q.json" 2>"$T/q.err" \
            || { cat "$T/q.err"; fail "$1: query $qid failed"; }
        got=$(json_get "$T/q.json" '(r["coverage"]["shards_answered"], r["partial"])')
        [ "$got" = "(2, False)" ] || fail "$1: query $qid: (answered, partial) = $got"
    done <"$DATA/cranfield/queries.tsv"
}
run_queries healthy
ok "30 queries: full coverage"

# coordinator's view of a replica: up|down (Admin/Status over python3-grpcio)
STATUS=$(cat <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import grpc
import funnel_pb as pb
pb.load(sys.argv[2])
r = pb.call(grpc.insecure_channel(sys.argv[3]), pb.STATUS, pb.M.StatusRequest(), pb.M.StatusResponse)
print(next(("up" if b.healthy else "down") for b in r.backends if b.address == sys.argv[4]))
EOF
)
backend() { "$PY" -c "$STATUS" "$HERE" "$PROTO" "$A" "$1"; }

ADDR=$(cat "$R/shard-0-r1.addr")
OLD=$(cat "$R/shard-0-r1.pid")
kill -9 "$OLD"
sleep 0.1
run_queries "shard-0-r1 killed"
ok "30 queries with shard-0-r1 killed: still full coverage"
if "$FUNNEL" cluster status --dir "$R" >"$T/status"; then fail "status exit 0 with a dead replica"; fi
grep -E '^shard +0 +1 .* no +DOWN$' "$T/status" >/dev/null || { cat "$T/status"; fail "status does not show shard 0 replica 1 down"; }
for _ in $(seq 40); do [ "$(backend "$ADDR")" = down ] && break; sleep 0.1; done
[ "$(backend "$ADDR")" = down ] || fail "the coordinator does not mark $ADDR down"
ok "status and the coordinator's Admin/Status show shard-0-r1 down"

# restart: refused while alive, then the dead one on its old address
if "$FUNNEL" cluster restart --dir "$R" shard-0-r0 2>"$T/live.err"; then fail "restart of a live process"; fi
grep 'is running' "$T/live.err" >/dev/null || { cat "$T/live.err"; fail "restart of a live process: no reason"; }
"$FUNNEL" cluster restart --dir "$R" shard-0-r1 2>"$T/restart.err" || { cat "$T/restart.err"; fail "cluster restart shard-0-r1"; }
[ "$(cat "$R/shard-0-r1.addr")" = "$ADDR" ] || fail "restarted on $(cat "$R/shard-0-r1.addr"), was $ADDR"
NEW=$(cat "$R/shard-0-r1.pid")
[ "$NEW" != "$OLD" ] && pid_running "$NEW" || fail "no new shard-0-r1 process"
"$FUNNEL" cluster status --dir "$R" >"$T/status" || { cat "$T/status"; fail "status after restart"; }
# (a replica that answers its probe again is marked up by one trial search)
for _ in $(seq 50); do
    [ "$(backend "$ADDR")" = up ] && break
    "$FUNNEL" search --server "$A" "heat transfer" >/dev/null 2>&1
    sleep 0.1
done
[ "$(backend "$ADDR")" = up ] || fail "the coordinator does not see $ADDR up again"
ok "restart refused for a live process; shard-0-r1 back on $ADDR (pid $NEW), the coordinator sees it up"

# the restarted replica serves: with its sibling gone, shard 0 still answers
kill -9 "$(cat "$R/shard-0-r0.pid")"
sleep 0.1
run_queries "shard-0-r0 killed, shard-0-r1 restarted"
ok "30 queries served by the restarted shard-0-r1 alone: full coverage"

pids=$(cat "$R"/*.pid)
"$FUNNEL" cluster down --dir "$R" 2>/dev/null || fail "down"
for p in $pids; do pid_running "$p" && fail "pid $p alive after down"; done
ls "$R"/*.pid >/dev/null 2>&1 && fail "pid files left after down"
ok "cluster down: no process left"
