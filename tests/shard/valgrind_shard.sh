#!/usr/bin/env bash
# funnel-shard under valgrind: build a 2-shard cranfield index, serve shard 0,
# drive it with python3-grpcio (200 concurrent searches, every error path),
# SIGTERM, then require exit 0 and no definite/indirect/possible leaks.
#   valgrind_shard.sh FUNNEL_SHARD MKINDEX DATA_DIR   (MKINDEX = tests/shard/mkindex.c)
set -euo pipefail
SHARD=$1 MKINDEX=$2 DATA=$3
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
TMP=$(mktemp -d /tmp/funnel-vg-shard-XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
"$MKINDEX" "$DATA/cranfield/corpus.jsonl" 2 "$TMP/idx" >/dev/null
valgrind --suppressions="$SRC/tests/valgrind/grpc-absl.supp" --leak-check=full \
  --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
  --error-exitcode=99 --log-file="$TMP/vg.log" \
  "$SHARD" --index "$TMP/idx/shard-000" --addr-file "$TMP/addr" --threads 3 2>"$TMP/shard.log" &
PID=$!
for _ in $(seq 300); do [ -s "$TMP/addr" ] && break; sleep 0.1; done
[ -s "$TMP/addr" ] || { echo "no address file"; cat "$TMP/shard.log"; exit 1; }
out=$(/usr/bin/python3 "$HERE/shard_load.py" "$(cat "$TMP/addr")")
echo "$out"
echo "$out" | grep -q "^ok 200 of 200" || { echo "load failed"; exit 1; }
kill -TERM "$PID"
rc=0; wait "$PID" || rc=$?
PID=
cat "$TMP/shard.log"
grep -E "definitely lost|indirectly lost|possibly lost|ERROR SUMMARY" "$TMP/vg.log" || true
[ "$rc" = 0 ] || { echo "funnel-shard exited $rc"; sed -n '/HEAP SUMMARY/,$p' "$TMP/vg.log"; exit 1; }
grep -q "ERROR SUMMARY: 0 errors" "$TMP/vg.log"
