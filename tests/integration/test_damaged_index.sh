#!/usr/bin/env bash
# Issue 6, acceptance 2 with real processes: an index damaged (truncated to
# several sizes; bytes flipped in postings, stored records, LMDB pages and at
# random) gives a clear error at start, or DATA_LOSS + NOT_SERVING with one
# ERROR line, never a signal death, and never an OK answer that differs from
# the undamaged index's (damaged_index.py compares the 225 cranfield queries
# at k=100, ids and scores bit for bit).
#   A. damaged before start: funnel-shard exits non-zero (< 128) at once, naming it
#   B. damaged before start, --verify-on-open quick: served until a read hits it
#   C. damaged under a running shard (mtime changed; and restored with touch -r,
#      so only the per-value checksums can tell)
#   D. damaged under a running cluster: the coordinator's answers
# Called as: bash test_damaged_index.sh FUNNEL SHARD COORDINATOR DAMAGE_TOOL
source "$(dirname "$0")/lib.sh"
DAMAGE=${4:?usage: test_damaged_index.sh FUNNEL SHARD COORDINATOR DAMAGE_TOOL}
[ -x "$DAMAGE" ] || { echo "SKIP: $DAMAGE is not built"; exit 77; }
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || { echo "SKIP: needs python3-grpcio"; exit 77; }
command -v protoc-c >/dev/null || { echo "SKIP: needs protoc-c"; exit 77; }
CHK=("$PY" "$HERE/damaged_index.py" "$HERE/../../proto")
Q=$DATA/cranfield/queries.tsv
T0=$(now_ms)

# the shards this script starts itself (lib.sh's cleanup stops the clusters)
MYPIDS=""
my_cleanup() {
    local rc=$? p
    for p in $MYPIDS; do kill -9 "$p" 2>/dev/null; done
    (exit $rc)
    cleanup
}
trap my_cleanup EXIT

I=$(build_index idx3 3) || exit 1
"$FUNNEL" index verify "$I" >"$T/verify.out" || { cat "$T/verify.out"; fail "verify of the undamaged index"; }
tail -n 1 "$T/verify.out"
# the command line: usage errors exit 2, a path that is no index 1
"$FUNNEL" index --help | grep -q 'funnel index verify IDXDIR|SHARDDIR' || fail "funnel index --help lacks verify"
"$FUNNEL" index verify >/dev/null 2>&1; [ $? -eq 2 ] || fail "funnel index verify without a path: not exit 2"
"$FUNNEL" index verify "$T/nothing" >/dev/null 2>"$T/v.err"; [ $? -eq 1 ] || fail "verify of no index: not exit 1"
grep -q 'No such file' "$T/v.err" || fail "verify of no index: $(cat "$T/v.err")"
S1=$I/shard-001
C=$T/case            # the damaged copy of shard-001
F=$C/data.mdb

# start_shard NAME FLAGS... (index $C): SPID, SADDR; 1 if it did not come up
start_shard() {
    local name=$1 i
    shift
    rm -f "$T/$name.addr"
    "$FUNNEL_SHARD_BIN" --addr-file "$T/$name.addr" --threads 2 "$@" >"$T/$name.log" 2>&1 &
    SPID=$!
    MYPIDS="$MYPIDS $SPID"
    for i in $(seq 200); do
        [ -s "$T/$name.addr" ] && { SADDR=$(cat "$T/$name.addr"); return 0; }
        pid_running "$SPID" || return 1
        sleep 0.05
    done
    return 1
}
# stop_shard: SIGTERM; it must stop by itself (exit 0), not die of a signal
stop_shard() {
    kill -TERM "$SPID" 2>/dev/null
    wait "$SPID"
    local rc=$?
    [ "$rc" -eq 0 ] || fail "funnel-shard exited $rc after SIGTERM (log: $(tail -n 3 "$T/$1.log"))"
}
fresh() { rm -rf "$C"; mkdir -p "$C"; cp "$S1/data.mdb" "$S1/checksum" "$C/"; }
keep_mtime() { touch -r "$F" "$T/mtime.ref"; }
restore_mtime() { touch -r "$T/mtime.ref" "$F"; }

# where things are in the copy: "OFFSET LENGTH" of an entry of DB with KEYHEX
locate() { "$DAMAGE" locate "$C" "$1" | awk -v k="$2" '$3 == k { print $1, $2; exit }'; }
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
u32le_at() { od -An -tu4 -j "$1" -N4 "$F" | tr -d ' '; }
# damage KIND: one kind of damage to $F (mtime changes)
damage() {
    local off len size
    size=$(stat -c %s "$F")
    case $1 in
    trunc-0) truncate -s 0 "$F" ;;
    trunc-4096) truncate -s 4096 "$F" ;;
    trunc-half) truncate -s $((size / 2)) "$F" ;;
    trunc-1) truncate -s $((size - 1)) "$F" ;;
    postings)   # the middle of block 0 of "flow" (the most frequent query term)
        read -r off len < <(locate terms "$(hex flow)")
        read -r off len < <(locate postings "$(printf '%08x00000000' "$(u32le_at "$off")")")
        "$DAMAGE" flip "$F" $((off + len / 2)) ;;
    doc)        # the stored record of the top hit of query 1
        read -r off len < <(locate docs "$(printf '%08x' "$TOPDOC")")
        "$DAMAGE" flip "$F" $((off + len / 2)) ;;
    norms) read -r off len < <(locate norms "$(hex body)"); "$DAMAGE" flip "$F" $((off + 400)) ;;
    pages)      # bytes 12..15 (flags, lower bound) of every 16th page
        local pg
        for ((pg = 2; pg < size / 4096; pg += 16)); do "$DAMAGE" flip "$F" $((pg * 4096 + 12)) 4 >/dev/null; done ;;
    random-*) "$DAMAGE" random "$F" "${1#random-}" 64 >/dev/null ;;
    *) fail "unknown damage $1" ;;
    esac
}

# ---- the undamaged answers ----
fresh
start_shard base --index "$C" || fail "the undamaged shard does not start: $(cat "$T/base.log")"
"${CHK[@]}" baseline shard "$SADDR" "$Q" "$T/base-shard.json" || fail "baseline of shard 1"
stop_shard base
TOPDOC=$(json_get "$T/base-shard.json" 'r["1"][0][2]')

# ---- A. damaged before start: a clear error at once ----
for d in trunc-0 trunc-4096 trunc-half trunc-1 postings doc norms pages random-1 random-2; do
    fresh
    damage "$d"
    t0=$(now_ms)
    timeout 10 "$FUNNEL_SHARD_BIN" --index "$C" --addr-file "$T/a.addr" >"$T/a.log" 2>&1
    rc=$?
    ms=$(($(now_ms) - t0))
    [ "$rc" -ne 0 ] || fail "A $d: funnel-shard started on a damaged index"
    [ "$rc" -lt 124 ] || fail "A $d: funnel-shard exit status $rc (timeout or signal)"
    [ "$ms" -lt 5000 ] || fail "A $d: funnel-shard took $ms ms to refuse"
    grep -Eq 'damaged|truncated' "$T/a.log" || fail "A $d: no clear message: $(cat "$T/a.log")"
    "$FUNNEL" index verify "$C" >"$T/v.out" && fail "A $d: funnel index verify says ok"
    grep -q ': DAMAGED: ' "$T/v.out" || fail "A $d: verify: $(cat "$T/v.out")"
    echo "A  $d: exit $rc in $ms ms: $(grep -m1 -Eo 'cannot start: .*' "$T/a.log" | cut -c1-200)"
    echo "     verify: $(cut -c1-160 "$T/v.out")"
done

# ---- B. damaged before start, --verify-on-open quick ----
for d in postings doc pages random-1 random-2 random-3 trunc-half norms; do
    fresh
    damage "$d"
    expect=()
    case $d in postings | doc) expect=(--expect-damage) ;; esac
    if start_shard b --index "$C" --verify-on-open quick; then
        "${CHK[@]}" check-shard "$SADDR" "$Q" "$T/base-shard.json" "$T/b.log" "$SPID" "B  $d (quick)" \
            "${expect[@]}" || fail "B $d"
        stop_shard b
    else
        wait "$SPID"
        rc=$?
        [ "$rc" -ne 0 ] && [ "$rc" -lt 124 ] || fail "B $d: funnel-shard exit status $rc"
        grep -Eq 'damaged|truncated' "$T/b.log" || fail "B $d: no clear message: $(cat "$T/b.log")"
        echo "B  $d (quick): refused at start, exit $rc: $(grep -m1 -Eo 'cannot start: .*' "$T/b.log" | cut -c1-200)"
    fi
done

# ---- C. damaged under a running shard ----
for d in postings postings:keep-mtime doc:keep-mtime pages:keep-mtime random-4:keep-mtime random-5:keep-mtime \
         trunc-half; do
    fresh
    start_shard c --index "$C" || fail "C $d: the shard does not start: $(cat "$T/c.log")"
    keep_mtime
    damage "${d%%:*}"
    [ "${d#*:}" = keep-mtime ] && restore_mtime
    expect=()
    case $d in random-*) ;; *) expect=(--expect-damage) ;; esac
    "${CHK[@]}" check-shard "$SADDR" "$Q" "$T/base-shard.json" "$T/c.log" "$SPID" "C  $d (running)" \
        "${expect[@]}" || fail "C $d"
    stop_shard c
done

# ---- D. damaged under a running cluster: what clients of the coordinator see ----
for d in postings:keep-mtime trunc-half; do
    rm -rf "$T/cidx" "$T/run"
    cp -r "$I" "$T/cidx"
    A=$(cluster_up "$T/cidx" "$T/run") || fail "D $d: cluster up"
    "${CHK[@]}" baseline coord "$A" "$Q" "$T/base-coord.json" >/dev/null || fail "D $d: baseline"
    C=$T/cidx/shard-001 F=$T/cidx/shard-001/data.mdb
    keep_mtime
    damage "${d%%:*}"
    [ "${d#*:}" = keep-mtime ] && restore_mtime
    "${CHK[@]}" check-coord "$A" "$Q" "$T/base-coord.json" 1 "D  $d (cluster)" "$(cat "$T/run/shard-1.addr")" \
        "$T/run/shard-1.log" "$(cat "$T/run/shard-1.pid")" || fail "D $d"
    # the whole index, offline: shard 1 named, the others checked, exit 1
    "$FUNNEL" index verify "$T/cidx" >"$T/v.out"
    rc=$?
    [ "$rc" -eq 1 ] && grep -q '^shard-001: DAMAGED: ' "$T/v.out" && grep -q '^shard-002: ok (' "$T/v.out" &&
        grep -q '^index: DAMAGED (1 of 3 shards)$' "$T/v.out" || { cat "$T/v.out"; fail "D $d: verify exit $rc"; }
    echo "     verify: $(grep '^shard-001' "$T/v.out" | cut -c1-150)"
    "$FUNNEL" cluster down --dir "$T/run" >/dev/null 2>&1
    C=$T/case F=$T/case/data.mdb
done
ok "damaged indexes: refused at start or DATA_LOSS + NOT_SERVING, no signal, no different OK answer ($(($(now_ms) - T0)) ms)"
