#!/usr/bin/env bash
# bootstrap.sh - README's first command: from a fresh Debian 12 clone to a running
# local cluster answering queries.
#   1. installs the missing Debian packages (apt-get),
#   2. builds into build/ (meson + ninja),
#   3. indexes the bundled Cranfield sample into var/index (3 shards),
#   4. starts 1 coordinator + 3 shards on free loopback ports (state in var/run),
#   5. runs a few queries and prints the ranked results.
# The cluster keeps running; stop it with: build/ops/funnel cluster down --dir var/run
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
F=build/ops/funnel
$F cluster down --dir var/run >/dev/null 2>&1 || true
rm -rf var/index
$F index build --input ops/sample/cranfield/corpus.jsonl --shards 3 --out var/index
ADDR=$($F cluster up --index var/index --dir var/run)
echo "coordinator: $ADDR"
$F cluster status --dir var/run
for q in "boundary layer transition at high mach numbers" \
         "heat transfer in laminar flow" \
         "buckling of thin cylindrical shells under axial compression"; do
  echo
  echo "== $q"
  $F search --server "$ADDR" --k 5 "$q"
done
echo
echo "cluster is up at $ADDR; stop it with: build/ops/funnel cluster down --dir var/run"
