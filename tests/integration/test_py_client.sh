#!/usr/bin/env bash
# (e) An independent client (python3-grpcio generic API, messages built at
# run time) talks to the cluster: Search, INVALID_ARGUMENT, UNIMPLEMENTED,
# Health/Check on the coordinator and on every shard.
source "$(dirname "$0")/lib.sh"
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || { echo "SKIP: no python3-grpcio"; exit 77; }

I=$(build_index idx 3) || exit 1
R=$T/run
A=$(cluster_up "$I" "$R") || fail "cluster up"
"$FUNNEL" search --server "$A" --json --k 10 "boundary layer transition" >"$T/c.json" || fail "funnel search"
ids=$(json_get "$T/c.json" '",".join(h["id"] for h in r["hits"])')
shards=$(cat "$R"/shard-*.addr | paste -sd, -)
"$PY" "$HERE/py_client.py" "$A" --expect-ids "$ids" --shards "$shards" || fail "python client"
ok "python client agrees with funnel search"
