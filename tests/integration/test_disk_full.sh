#!/bin/bash
# test_disk_full.sh - `funnel index build` on a disk that fills up names the
# full disk, exits 1 and leaves nothing behind.
#
# The disk is tests/ops/enospc_shim.c, preloaded: writes under $T/disk share a
# budget of FUNNEL_ENOSPC_AFTER bytes, then fail with ENOSPC (the write that
# crosses it is short, as on a real filesystem, and LMDB reports a short
# write as EIO); statvfs there reports what is left. A first build with an
# unlimited budget logs every write (FUNNEL_ENOSPC_LOG), which gives the
# offset where each phase starts writing; the budgets are set just past them:
#   0              the LMDB environments' first pages (mdb_env_open)
#   first run +1K  spilling sorted runs to IDXDIR/.build/sNNN-rNNNNN.run
#   data.mdb +4K   LMDB commits of the merged postings (shard-NNN/data.mdb)
#   index.json +10 writing IDXDIR/.index.json.tmp
# Each must print "PATH: ... no space left on device (N KiB free on the
# filesystem holding IDXDIR; the build needs more disk)" naming a file of the
# expected phase, exit 1, and leave no index.json, shard-NNN, .build or
# temporary file (the output directory, which the build created, is gone).
# usage: test_disk_full.sh FUNNEL SHARD COORDINATOR ENOSPC_SHIM.so
. "$(dirname "$0")/lib.sh"
SHIM=${4:?enospc shim}
[ -f "$SHIM" ] || { echo "SKIP: $SHIM is not built"; exit 77; }
CORPUS=$DATA/cranfield/corpus.jsonl
# the shim is a plain library; under ASan it is preloaded ahead of the runtime
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0

# build_on_disk NAME BUDGET: funnel index build into $T/NAME/disk/idx with the
# shim; stderr in $T/NAME.err, the write log in $T/NAME.log; returns its status
build_on_disk() {
    mkdir -p "$T/$1/disk"
    LD_PRELOAD=$SHIM FUNNEL_ENOSPC_DIR=$T/$1/disk FUNNEL_ENOSPC_AFTER=$2 FUNNEL_ENOSPC_LOG=$T/$1.log \
        "$FUNNEL" index build --input "$CORPUS" --shards 3 --out "$T/$1/disk/idx" >"$T/$1.out" 2>"$T/$1.err"
}

# 1. unlimited: the build succeeds through the shim; find where phases start
build_on_disk free 1000000000000 || { cat "$T/free.err"; fail "build with an unlimited budget: exit $?"; }
[ -f "$T/free/disk/idx/index.json" ] || fail "no index.json after a build with an unlimited budget"
first() { awk -v re="$1" '$3 ~ re { print $1; exit }' "$T/free.log"; }
run_at=$(first '/\.build/s[0-9]+-r[0-9]+\.run$')
mdb_at=$(awk '$3 ~ /\.run$/ { seen = 1 } seen && $3 ~ /\/data\.mdb$/ { print $1; exit }' "$T/free.log")
json_at=$(first '/\.index\.json\.tmp$')
total=$(awk '{ t += $2 } END { print t }' "$T/free.log")
[ -n "$run_at" ] && [ -n "$mdb_at" ] && [ -n "$json_at" ] || { cat "$T/free.log"; fail "the write log lacks a phase"; }
ok "unlimited budget: built; $total bytes written (runs from $run_at, LMDB commits from $mdb_at, index.json at $json_at)"

# 2. the disk fills up in each phase
check_full() {  # check_full NAME BUDGET WHAT PATH_REGEX
    local name=$1 budget=$2 what=$3 re=$4 rc out="$T/$1/disk/idx"
    build_on_disk "$name" "$budget"; rc=$?
    [ "$rc" = 1 ] || { cat "$T/$name.err"; fail "$what: exit $rc (want 1)"; }
    local msg
    msg=$(grep '^funnel index build: ' "$T/$name.err" | tail -n 1)
    [[ $msg =~ ^funnel\ index\ build:\ (/[^:]+):\ .*no\ space\ left\ on\ device\ \(.*[0-9]+\ [KM]iB\ free\ on\ the\ filesystem\ holding\ $out\;\ the\ build\ needs\ more\ disk\)$ ]] \
        || { cat "$T/$name.err"; fail "$what: not a disk-full message naming a path: $msg"; }
    local path=${BASH_REMATCH[1]}
    [[ $path =~ $re ]] || fail "$what: the message names $path, want a path matching $re"
    grep -qi "input/output error" <<<"${msg%%(*}" && fail "$what: still says Input/output error first: $msg"
    [ ! -e "$out" ] || { find "$out"; fail "$what: $out left behind"; }
    [ -z "$(ls -A "$T/$name/disk")" ] || { ls -A "$T/$name/disk"; fail "$what: files left on the disk"; }
    ok "$what (budget $budget): exit 1, nothing left: $msg"
}
check_full open 0 "LMDB environment open" "/idx/shard-[0-9]+$"
check_full spill $((run_at + 1024)) "spilling runs" "/idx/\.build/s[0-9]+-r[0-9]+\.run$"
check_full commit $((mdb_at + 4096)) "LMDB commit" "/idx/shard-[0-9]+/data\.mdb$"
check_full json $((json_at + 10)) "index.json" "/idx/\.index\.json\.tmp$"
