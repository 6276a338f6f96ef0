#!/usr/bin/env bash
# bootstrap.sh - README's first command: from a fresh Debian 12 clone to a running
# local cluster answering queries, in six steps, each announced with a header
# "==> [k/6] NAME" and closed with its elapsed time:
#   1. deps: installs the missing Debian packages (ops/scripts/deps.sh; waits,
#      FUNNEL_APT_TIMEOUT s at most, for another apt/dpkg run holding the lock),
#   2. configure: meson setup build/ (once),
#   3. build: ninja -C build, showing ninja's [n/N] progress (one line per
#      step when the output is not a terminal),
#   4. index: the bundled Cranfield sample into var/index (3 shards),
#   5. cluster: 1 coordinator + 3 shards on free loopback ports (state in var/run),
#   6. queries: a few queries and their ranked results.
# The cluster keeps running; stop it with: build/ops/funnel cluster down --dir var/run
set -euo pipefail
cd "$(dirname "$0")/.."

STEPS=6 step_no=0 step_name= step_t0=
now_ms() { date +%s%3N; }
elapsed() { local ms=$(( $(now_ms) - $1 )); printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100)); }
T0=$(now_ms)
end_step() {
    [ -n "$step_name" ] && echo "    ($step_name: $(elapsed "$step_t0"))"
    step_name=
}
step() {   # step NAME DESCRIPTION: close the running step, announce the next
    end_step
    step_no=$((step_no + 1)) step_name=$1 step_t0=$(now_ms)
    echo
    echo "==> [$step_no/$STEPS] $1: $2"
}
on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -n "$step_name" ]; then
        echo "==> bootstrap FAILED in step $step_no/$STEPS ($step_name) after $(elapsed "$step_t0") (exit $rc)" >&2
    fi
}
trap on_exit EXIT

step deps "Debian packages (apt-get, only the missing ones)"
bash ops/scripts/deps.sh

step configure "meson setup build"
if [ -f build/build.ninja ]; then
    echo "build/ is configured already (meson reconfigures by itself if needed)"
else
    meson setup build
fi

step build "ninja -C build"
ninja -C build

F=build/ops/funnel
step index "the Cranfield sample (1400 documents) into var/index, 3 shards"
$F cluster down --dir var/run >/dev/null 2>&1 || true
rm -rf var/index
$F index build --input ops/sample/cranfield/corpus.jsonl --shards 3 --out var/index
$F spell build --input ops/sample/cranfield/corpus.jsonl --out var/index/spell.dict   # spelling correction

step cluster "1 coordinator + 3 shards on loopback (state and logs in var/run)"
ADDR=$($F cluster up --index var/index --dir var/run)
echo "coordinator: $ADDR"
$F cluster status --dir var/run

step queries "3 queries, top 5"
for q in "boundary layer transition at high mach numbers" \
         "heat transfer in laminar flow" \
         "bukling of thin cylindrical shells under axial compresion"; do
  echo
  echo "== $q"
  $F search --server "$ADDR" --k 5 "$q"
done
end_step
echo
echo "bootstrap: done in $(elapsed "$T0")"
echo "cluster is up at $ADDR; stop it with: build/ops/funnel cluster down --dir var/run"
