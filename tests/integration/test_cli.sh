#!/usr/bin/env bash
# The funnel CLI's own behaviour: help and usage exit codes, index build
# error reporting, cluster up failure handling, status/down idempotence.
source "$(dirname "$0")/lib.sh"

"$FUNNEL" --help | grep -q 'cluster up' || fail "funnel --help"
for c in index cluster search eval; do
    "$FUNNEL" $c --help >/dev/null || fail "funnel $c --help"
done
"$FUNNEL" >/dev/null 2>&1; [ $? -eq 2 ] || fail "no command should exit 2"
"$FUNNEL" frobnicate >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown command should exit 2"
"$FUNNEL" index build --shards 2 >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing --input should exit 2"
ok "help and usage errors"

# bad lines: reported as FILE:LINE: reason, skipped or fatal
printf '%s\n' '{"id":"a","title":"t","body":"alpha beta"}' 'not json' '{"title":"no id"}' \
    '{"id":"b","body":"gamma"}' >"$T/bad.jsonl"
"$FUNNEL" index build --input "$T/bad.jsonl" --shards 2 --out "$T/bad-skip" >"$T/out" 2>"$T/err" || fail "skip mode"
grep -q "bad.jsonl:2: " "$T/err" && grep -q "bad.jsonl:3: " "$T/err" || { cat "$T/err"; fail "bad lines not reported"; }
grep -q "indexed 2 docs, skipped 2" "$T/out" || { cat "$T/out"; fail "summary"; }
"$FUNNEL" index build --input "$T/bad.jsonl" --shards 2 --out "$T/bad-fail" --on-error fail >/dev/null 2>"$T/err"
[ $? -eq 1 ] || fail "fail mode should exit 1"
grep -q "bad.jsonl:2: " "$T/err" || fail "fail mode message"
[ ! -f "$T/bad-fail/index.json" ] || fail "fail mode published an index"
ok "index build reports and skips/fails on bad lines"

# cluster up with a shard binary that dies: exit 1, names the process, no leftovers
I=$(build_index idx 2) || exit 1
R=$T/run-bad
FUNNEL_SHARD_BIN=/bin/false "$FUNNEL" cluster up --index "$I" --dir "$R" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] || fail "cluster up with a failing shard should exit 1"
grep -q "shard 0 failed" "$T/err" || { cat "$T/err"; fail "failing process not named"; }
ls "$R"/*.pid >/dev/null 2>&1 && fail "pid files left behind"
ok "cluster up reports a failing shard: $(head -n 1 "$T/err")"

# a good cluster: status, refusing a second up, down twice
R=$T/run
A=$(cluster_up "$I" "$R") || fail "cluster up"
[ "$(cat "$R/coordinator.addr")" = "$A" ] || fail "coordinator.addr differs from the printed address"
grep -c '^shard ' "$R/topology.conf" | grep -qx 2 || fail "topology.conf"
"$FUNNEL" cluster status --dir "$R" >"$T/status" || { cat "$T/status"; fail "status"; }
[ "$(grep -c 'SERVING$' "$T/status")" -eq 3 ] || { cat "$T/status"; fail "3 SERVING processes expected"; }
"$FUNNEL" cluster up --index "$I" --dir "$R" >/dev/null 2>&1 && fail "second cluster up on a live RUNDIR"
pids=$(cat "$R"/*.pid)
"$FUNNEL" cluster down --dir "$R" || fail "down"
for p in $pids; do pid_running "$p" && fail "pid $p still alive after down"; done
"$FUNNEL" cluster down --dir "$R" || fail "second down should exit 0"
"$FUNNEL" cluster status --dir "$R" >/dev/null 2>&1 && fail "status of a stopped cluster should fail"
ok "status, down, down again"
