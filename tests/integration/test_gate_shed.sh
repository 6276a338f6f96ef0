#!/usr/bin/env bash
# The quality gate under load shedding (issue 13, acceptance 1; docs/operations.md
# "Index generations"): its shadow searches are background searches, which a
# busy coordinator sheds before users' ones (coordinator/admission.h; the rule
# itself: tests/coordinator/test_admission.c). Against a stand-in coordinator
# (gate_shed.py) that refuses shadow searches as a busy one does -
# RESOURCE_EXHAUSTED with grpc-retry-pushback-ms 120:
#  - the first 3 refused: `funnel index publish` waits for the hint, retries,
#    halves its pace, passes the candidate and says how many were shed;
#  - all refused: each shadow search is retried until its deadline, then the
#    gate refuses the change as "too busy" and the candidate is discarded.
source "$(dirname "$0")/lib.sh"
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || { echo "SKIP: needs python3-grpcio"; exit 77; }
command -v protoc-c >/dev/null || { echo "SKIP: needs protoc-c"; exit 77; }
PROTO=$HERE/../../proto
head -n 20 "$DATA/cranfield/queries.tsv" >"$T/q20.tsv"
head -n 3 "$DATA/cranfield/queries.tsv" >"$T/q3.tsv"

# fake SHED NAME -> the stand-in's address; its pid in $T/NAME.pid
fake() {
    "$PY" "$HERE/gate_shed.py" "$PROTO" "$T/$2.port" "$1" >"$T/$2.out" 2>&1 &
    echo $! >"$T/$2.pid"
    for _ in $(seq 100); do [ -s "$T/$2.port" ] && break; sleep 0.1; done
    [ -s "$T/$2.port" ] || { cat "$T/$2.out" >&2; return 1; }
    echo "127.0.0.1:$(cat "$T/$2.port")"
}
# stop NAME: SIGTERM, wait; the stand-in's summary is in $T/NAME.out
stop() { kill "$(cat "$T/$1.pid")"; wait "$(cat "$T/$1.pid")" 2>/dev/null; }

# ---- 3 shed: retried after the hint, the pace halved, the candidate passes ----
A=$(fake 3 some) || fail "stand-in coordinator"
"$FUNNEL" index publish --coordinator "$A" --index /gen-candidate --gate-queries "$T/q20.tsv" --gate-qps 20 \
    >"$T/some.txt" 2>&1 || { cat "$T/some.txt"; stop some; fail "publish with 3 shadow searches shed"; }
stop some
grep -q "quality gate: passed" "$T/some.txt" || { cat "$T/some.txt"; fail "the gate did not pass"; }
grep -q "shadow searches shed by the coordinator (users first): 3, retried; the pace fell to 2.5 searches a second (asked 20.0)" \
    "$T/some.txt" || { cat "$T/some.txt"; fail "the report does not say 3 were shed and the pace halved 3 times"; }
grep -q "errors" "$T/some.txt" && grep -qE "^  (live|candidate) .* 0 +0$" "$T/some.txt" \
    || { cat "$T/some.txt"; fail "a shed search counted as an error"; }
read -r _ n _ bg _ sh _ gap <"$T/some.out"
[ "$n" -eq 43 ] && [ "$bg" -eq 43 ] && [ "$sh" -eq 3 ] \
    || { cat "$T/some.out"; fail "the stand-in saw $n searches ($bg background, $sh shed), want 43, 43, 3"; }
[ "$gap" -ge 120 ] || { cat "$T/some.out"; fail "a shed search was retried after $gap ms, before the 120 ms hint"; }
ok "3 shadow searches shed: $(grep 'shed by' "$T/some.txt" | sed 's/^ *//'); the stand-in: $(cat "$T/some.out")"

# ---- all shed: each retried until its deadline, then refused as too busy ----
A=$(fake -1 all) || fail "stand-in coordinator"
t0=$(now_ms)
"$FUNNEL" index publish --coordinator "$A" --index /gen-candidate --gate-queries "$T/q3.tsv" --gate-qps 20 \
    --deadline-ms 500 >"$T/all.txt" 2>&1
rc=$?
ms=$(( $(now_ms) - t0 ))
stop all
[ $rc -eq 1 ] || { cat "$T/all.txt"; fail "publish exit $rc with every shadow search shed, want 1"; }
grep -q "quality gate: REFUSED: .*the coordinator shed 6 shadow searches until their deadline: too busy to gate" \
    "$T/all.txt" || { cat "$T/all.txt"; fail "the refusal does not say the cluster was too busy"; }
grep -q "candidate /gen-candidate discarded" "$T/all.txt" || { cat "$T/all.txt"; fail "the candidate was not discarded"; }
[ "$ms" -ge 3000 ] || fail "6 shadow searches gave up in $ms ms, before their 500 ms deadlines"
ok "every shadow search shed: $(grep REFUSED "$T/all.txt" | cut -c1-160) ($ms ms; the stand-in: $(cat "$T/all.out"))"
