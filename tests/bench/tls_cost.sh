#!/usr/bin/env bash
# tls_cost.sh [BUILDDIR] - what TLS on every link costs: the same index served by a plaintext
# cluster and by a `cluster up --tls` one (TLS client -> coordinator, mTLS coordinator -> shards),
# both loaded with `funnel bench --concurrency $CONC --duration $DUR --json` on the Cranfield
# queries. ROUNDS (default 1) alternations; prints each run's qps and p99, then the median qps of
# each and their ratio tls/plain. Not a test: a figure for docs/operations.md.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
F=$B/ops/funnel
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${FUNNEL_DATA:-$SRC/../shared/data}
CONC=${CONC:-2}
DUR=${DUR:-10}
ROUNDS=${ROUNDS:-1}
SHARDS=${SHARDS:-3}
Q=$DATA/cranfield/queries.tsv
T=$(mktemp -d "${TMPDIR:-/tmp}/funnel-tls-cost.XXXXXX")
trap '"$F" cluster down --dir "$T/plain" >/dev/null 2>&1 || true
      "$F" cluster down --dir "$T/tls" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT

"$F" index build --input "$DATA/cranfield/corpus.jsonl" --shards "$SHARDS" --out "$T/idx" >/dev/null 2>&1
AP=$("$F" cluster up --index "$T/idx" --dir "$T/plain")
AT=$("$F" cluster up --index "$T/idx" --dir "$T/tls" --tls)

run() {   # run NAME ADDR [client flags...] -> one "qps p99 errors" line
    local name=$1 addr=$2; shift 2
    "$F" bench --server "$addr" --queries "$Q" --concurrency "$CONC" --duration "$DUR" --json "$@" \
        >"$T/$name.json" 2>"$T/$name.err" || true
    /usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))
print("%.1f %.3f %d" % (r["qps"], r["p99_ms"], r["errors"]))' "$T/$name.json"
}

: >"$T/plain.qps"; : >"$T/tls.qps"
for i in $(seq "$ROUNDS"); do
    read -r q p e <<<"$(run plain "$AP")"
    echo "round $i plain: $q qps, p99 $p ms, $e errors"; echo "$q" >>"$T/plain.qps"
    read -r q p e <<<"$(run tls "$AT" --tls-ca "$T/tls/tls/ca.pem")"
    echo "round $i tls:   $q qps, p99 $p ms, $e errors"; echo "$q" >>"$T/tls.qps"
done
/usr/bin/python3 - "$T/plain.qps" "$T/tls.qps" "$CONC" "$SHARDS" <<'PY'
import statistics, sys
p = statistics.median(float(x) for x in open(sys.argv[1]))
t = statistics.median(float(x) for x in open(sys.argv[2]))
print("concurrency %s, %s shards: plain %.1f qps, tls %.1f qps, tls/plain %.3f" % (sys.argv[3], sys.argv[4], p, t, t / p))
PY
