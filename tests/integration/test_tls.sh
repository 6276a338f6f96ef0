#!/usr/bin/env bash
# TLS and the Admin token (docs/operations.md "TLS and authentication"), real
# processes over loopback: `cluster up --tls` makes a CA and serves TLS on
# every link (mTLS between coordinator and shards); a plaintext client is
# refused, a TLS client gets the same hits as a plaintext cluster; a shard
# whose certificate comes from another CA is refused by the coordinator (the
# query degrades), a client certificate from another CA is refused by a
# shard; Admin/Status needs the bearer token.
source "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || { echo "SKIP: no openssl"; exit 77; }
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || { echo "SKIP: no python3-grpcio"; exit 77; }
PROTO=$HERE/../../proto

I=$(build_index idx 2) || exit 1
P=$T/plain
R=$T/run
printf 'max-message-bytes = 2048\n' >"$T/coord.conf"
AP=$("$FUNNEL" cluster up --index "$I" --dir "$P" --coordinator-config "$T/coord.conf" 2>"$T/upp.err") \
    || { cat "$T/upp.err"; fail "plain cluster up"; }
A=$("$FUNNEL" cluster up --index "$I" --dir "$R" --tls 2>"$T/up.err") || { cat "$T/up.err"; fail "cluster up --tls"; }
"$FUNNEL" cluster status --dir "$R" >"$T/status" || { cat "$T/status"; fail "status of a TLS cluster"; }
[ "$(grep -c 'SERVING$' "$T/status")" -eq 3 ] || { cat "$T/status"; fail "3 SERVING processes expected"; }
for k in "$R"/tls/*.key "$R/admin.token"; do
    [ "$(stat -c %a "$k")" = 600 ] || fail "$k has mode $(stat -c %a "$k"), want 600"
done
grep 'TLS on, client certificates required; admin token required' "$R/shard-0.log" >/dev/null \
    || { cat "$R/shard-0.log"; fail "shard-0 does not say it serves mTLS"; }
ok "cluster up --tls: 3 processes SERVING over TLS, keys and token mode 600"

# the request size limit (max-message-bytes) of the plain cluster's coordinator
long=$(printf 'heat %.0s' $(seq 600))
if "$FUNNEL" search --server "$AP" --syntax plain "$long" >/dev/null 2>"$T/big.err"; then
    fail "a 3000-byte request passed max-message-bytes = 2048"
fi
grep RESOURCE_EXHAUSTED "$T/big.err" >/dev/null || { cat "$T/big.err"; fail "over max-message-bytes: want RESOURCE_EXHAUSTED"; }
ok "max-message-bytes = 2048: a 3000-byte request gets RESOURCE_EXHAUSTED"

# a plaintext client is refused
if "$FUNNEL" search --server "$A" "heat transfer" >"$T/plain.out" 2>"$T/plain.err"; then
    fail "a plaintext search of a TLS coordinator succeeded"
fi
grep UNAVAILABLE "$T/plain.err" >/dev/null || { cat "$T/plain.err"; fail "plaintext client: want UNAVAILABLE"; }
ok "plaintext client refused: $(head -c 80 "$T/plain.err")"

# a TLS client (flag or environment) gets what a plaintext cluster answers
n=0
while IFS=$'\t' read -r qid text _; do
    [ -n "$qid" ] || continue
    n=$((n + 1)); [ $n -le 20 ] || break
    "$FUNNEL" search --server "$AP" --json --k 10 --syntax plain "$text" >"$T/p.json" 2>"$T/e" || { cat "$T/e"; fail "plain query $qid"; }
    if [ $((n % 2)) -eq 0 ]; then
        "$FUNNEL" search --server "$A" --tls-ca "$R/tls/ca.pem" --json --k 10 --syntax plain "$text" >"$T/t.json" 2>"$T/e"
    else
        FUNNEL_TLS_CA=$R/tls/ca.pem "$FUNNEL" search --server "$A" --json --k 10 --syntax plain "$text" >"$T/t.json" 2>"$T/e"
    fi || { cat "$T/e"; fail "TLS query $qid"; }
    want=$(json_get "$T/p.json" '[(h["id"], round(h["score"], 9)) for h in r["hits"]]')
    got=$(json_get "$T/t.json" '[(h["id"], round(h["score"], 9)) for h in r["hits"]]')
    [ "$want" = "$got" ] || fail "query $qid: TLS hits $got, plaintext $want"
    [ "$(json_get "$T/t.json" 'r["coverage"]["shards_answered"]')" = 2 ] || fail "query $qid: coverage"
done <"$DATA/cranfield/queries.tsv"
ok "20 queries over TLS: the same hits and scores as the plaintext cluster, full coverage"

# model push: the coordinator's PushModel fan-out to the shards carries the token
head -n 60 "$DATA/cranfield/queries.tsv" >"$T/train.tsv"
"$FUNNEL" features --server "$A" --tls-ca "$R/tls/ca.pem" --queries "$T/train.tsv" \
    --qrels "$DATA/cranfield/qrels.trec" --stage 1 --window 50 --out "$T/s1.svm" 2>"$T/f.err" \
    || { cat "$T/f.err"; fail "features over TLS"; }
"$FUNNEL" train --data "$T/s1.svm" --objective logistic --out "$T/m1.model" >/dev/null 2>&1 || fail "train"
if "$FUNNEL" model push --server "$A" --tls-ca "$R/tls/ca.pem" --stage 1 --model "$T/m1.model" \
    >"$T/push0.out" 2>&1; then fail "model push without the token succeeded"; fi
grep UNAUTHENTICATED "$T/push0.out" >/dev/null || { cat "$T/push0.out"; fail "push without a token: want UNAUTHENTICATED"; }
FUNNEL_ADMIN_TOKEN_FILE=$R/admin.token "$FUNNEL" model push --server "$A" --tls-ca "$R/tls/ca.pem" \
    --stage 1 --model "$T/m1.model" >"$T/push.out" 2>&1 || { cat "$T/push.out"; fail "model push with the token"; }
ok "model push: UNAUTHENTICATED without the token; with it, to both shards: $(head -c 100 "$T/push.out")"

# a second, unrelated CA and a certificate it signed for 127.0.0.1
O=$T/other
mkdir -p "$O"
printf 'basicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth, clientAuth\nsubjectAltName = IP:127.0.0.1, DNS:localhost\n' >"$O/ext.cnf"
{
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$O/ca.key" \
        -out "$O/ca.pem" -days 2 -subj "/CN=other CA" &&
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$O/rogue.key" \
        -out "$O/rogue.csr" -subj "/CN=rogue" &&
    openssl x509 -req -in "$O/rogue.csr" -CA "$O/ca.pem" -CAkey "$O/ca.key" -CAcreateserial \
        -out "$O/rogue.pem" -days 2 -extfile "$O/ext.cnf"
} >"$O/openssl.log" 2>&1 || { cat "$O/openssl.log"; fail "openssl: a second CA"; }

# Admin/Status and Health straight to the daemons (python3-grpcio, the real proto)
ADMIN=$(cat <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import grpc
import funnel_pb as pb
pb.load(sys.argv[2])
addr, ca, cert, key, token, method = sys.argv[3:9]
rd = lambda p: open(p, "rb").read() if p != "-" else None
creds = grpc.ssl_channel_credentials(root_certificates=rd(ca), private_key=rd(key), certificate_chain=rd(cert))
ch = grpc.secure_channel(addr, creds)
md = [("authorization", "Bearer " + open(token).read().strip())] if token != "-" else None
try:
    if method == "status":
        fn = ch.unary_unary(pb.STATUS, request_serializer=lambda m: m.SerializeToString(),
                            response_deserializer=pb.M.StatusResponse.FromString)
        r = fn(pb.M.StatusRequest(), timeout=5, metadata=md)
        print("OK", r.role, " ".join("%s=%s" % (b.address, "up" if b.healthy else "down") for b in r.backends))
    else:
        print(pb.health(ch, 5))
except grpc.RpcError as e:
    print(e.code().name, e.details())
EOF
)
admin() { "$PY" -c "$ADMIN" "$HERE" "$PROTO" "$@"; }
S0=$(cat "$R/shard-0.addr")
K=$R/tls
out=$(admin "$A" "$K/ca.pem" - - - status)
case "$out" in UNAUTHENTICATED*Bearer*) ;; *) fail "coordinator Admin/Status without a token: $out" ;; esac
ok "coordinator Admin/Status without the token: $out"
out=$(admin "$A" "$K/ca.pem" - - "$R/admin.token" status)
case "$out" in "OK coordinator"*) ;; *) fail "coordinator Admin/Status with the token: $out" ;; esac
ok "coordinator Admin/Status with the token: $out"
out=$(admin "$S0" "$K/ca.pem" "$K/client.pem" "$K/client.key" - status)
case "$out" in UNAUTHENTICATED*) ;; *) fail "shard Admin/Status without a token: $out" ;; esac
out=$(admin "$S0" "$K/ca.pem" "$K/client.pem" "$K/client.key" "$R/admin.token" status)
case "$out" in "OK shard"*) ;; *) fail "shard Admin/Status with the token: $out" ;; esac
ok "shard Admin/Status: UNAUTHENTICATED without the token, OK with it"

# mTLS at a shard: our client certificate works, none or another CA's is refused
[ "$(admin "$S0" "$K/ca.pem" "$K/client.pem" "$K/client.key" - health)" = SERVING ] || fail "shard health with a good client cert"
out=$(admin "$S0" "$K/ca.pem" "$O/rogue.pem" "$O/rogue.key" - health)
[ "$out" = UNAVAILABLE ] || fail "shard with another CA's client cert: $out, want UNAVAILABLE"
out2=$(admin "$S0" "$K/ca.pem" - - - health)
[ "$out2" = UNAVAILABLE ] || fail "shard without a client cert: $out2, want UNAVAILABLE"
ok "a shard refuses a client certificate from another CA ($out) and no certificate ($out2)"

# a shard presenting another CA's certificate, on shard-1's address: the
# coordinator refuses it and the query degrades to shard 0
S1PID=$(cat "$R/shard-1.pid")
L0=$(wc -l <"$R/coordinator.log")
kill -9 "$S1PID"
mapfile -t CMD <"$R/shard-1.cmd"
"${CMD[@]}" --tls-cert "$O/rogue.pem" --tls-key "$O/rogue.key" >>"$R/shard-1.log" 2>&1 &
echo $! >"$R/shard-1.pid"
for _ in $(seq 100); do [ -s "$R/shard-1.addr" ] && [ "$(cat "$R/shard-1.addr")" = "$(grep -x -A1 -- --listen "$R/shard-1.cmd" | tail -n 1)" ] && break; sleep 0.05; done
sleep 1.5   # a good shard would be back by now (probes every 250 ms)
for q in "heat transfer" "boundary layer" "shock wave"; do
    "$FUNNEL" search --server "$A" --tls-ca "$K/ca.pem" --json "$q" >"$T/r.json" 2>"$T/e" || { cat "$T/e"; fail "query with a rogue shard"; }
    got=$(json_get "$T/r.json" '(r["coverage"]["shards_answered"], r["partial"], [f["shard"] for f in r["failures"]])')
    [ "$got" = "(1, True, [1])" ] || fail "rogue shard 1: (answered, partial, failed) = $got"
done
tail -n +$((L0 + 1)) "$R/coordinator.log" >"$T/coord.tail"
grep -E 'certificate verify failed' "$T/coord.tail" >/dev/null \
    || { cat "$T/coord.tail"; fail "no certificate verify failure in the coordinator's log"; }
ok "a shard with another CA's certificate is refused: coverage 1/2, shard 1 in failures"

# the real shard-1 back on its address: full coverage again
kill "$(cat "$R/shard-1.pid")"; wait 2>/dev/null
"$FUNNEL" cluster restart --dir "$R" shard-1 2>"$T/restart.err" || { cat "$T/restart.err"; fail "cluster restart shard-1"; }
for _ in $(seq 40); do
    "$FUNNEL" search --server "$A" --tls-ca "$K/ca.pem" --json "heat transfer" >"$T/r.json" 2>/dev/null &&
        [ "$(json_get "$T/r.json" 'r["coverage"]["shards_answered"]')" = 2 ] && break
    sleep 0.25
done
[ "$(json_get "$T/r.json" 'r["coverage"]["shards_answered"]')" = 2 ] || fail "shard-1 restarted but coverage $(json_get "$T/r.json" 'r["coverage"]')"
ok "cluster restart shard-1: the good certificate again, coverage 2/2"

pids=$(cat "$R"/*.pid "$P"/*.pid)
"$FUNNEL" cluster down --dir "$R" 2>/dev/null || fail "down"
"$FUNNEL" cluster down --dir "$P" 2>/dev/null || fail "down plain"
for p in $pids; do pid_running "$p" && fail "pid $p alive after down"; done
ok "cluster down: no process left"
