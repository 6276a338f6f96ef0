#!/bin/bash
# test_spell_cli.sh FUNNEL - `funnel spell build|check` (ops/ops_spell.c) on
# cranfield: exit codes, the rewritten query and its corrections, --queries,
# a bad corpus line, a damaged dictionary.
set -u
F=$1
D=${FUNNEL_DATA:-../shared/data}/cranfield
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$F" spell >/dev/null 2>&1; [ $? -eq 2 ] || fail "no sub-command: exit 2"
"$F" spell build --input "$D/corpus.jsonl" >/dev/null 2>&1; [ $? -eq 2 ] || fail "build without --out: exit 2"
"$F" spell build --input x --out y --on-error maybe >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --on-error: exit 2"
"$F" spell check --dict x >/dev/null 2>&1; [ $? -eq 2 ] || fail "check without a query: exit 2"
"$F" spell --help | grep -q "funnel spell build" || fail "help"

"$F" spell build --input "$D/corpus.jsonl" --out "$T/d" 2>"$T/err" || fail "build: $(cat "$T/err")"
grep -q "1400 documents" "$T/err" || fail "build summary: $(cat "$T/err")"
out=$("$F" spell check --dict "$T/d" 'title:"trasnfer of heta" AND bondary 1234') || fail "check"
[ "$(echo "$out" | head -1)" = 'title:"transfer of heat" AND boundary 1234' ] || fail "rewritten: $out"
echo "$out" | grep -q "  trasnfer -> transfer (offset 7, distance 1" || fail "corrections: $out"

printf '1\ttrasnfer rate\n2\tboundary layr\n' > "$T/q.tsv"
"$F" spell check --dict "$T/d" --wordlist /dev/null --queries "$T/q.tsv" > "$T/out" 2>/dev/null || fail "--queries"
printf '1\ttransfer rate\n2\tboundary layer\n' | cmp -s - "$T/out" || fail "--queries output: $(cat "$T/out")"
printf 'no tab here\n' > "$T/bad.tsv"
"$F" spell check --dict "$T/d" --queries "$T/bad.tsv" >/dev/null 2>"$T/err"; [ $? -eq 1 ] || fail "bad queries: exit 1"
grep -q "bad.tsv:1:" "$T/err" || fail "bad queries message: $(cat "$T/err")"

head -3 "$D/corpus.jsonl" > "$T/c.jsonl"; echo '{"id": 7' >> "$T/c.jsonl"
"$F" spell build --input "$T/c.jsonl" --out "$T/d2" 2>"$T/err"; [ $? -eq 1 ] || fail "bad corpus: exit 1"
grep -q "c.jsonl:4:" "$T/err" || fail "bad corpus message: $(cat "$T/err")"
"$F" spell build --input "$T/c.jsonl" --out "$T/d2" --on-error skip 2>"$T/err" || fail "skip"
grep -q "1 bad lines skipped" "$T/err" || fail "skip summary: $(cat "$T/err")"

head -c 1000 "$T/d" > "$T/cut"
"$F" spell check --dict "$T/cut" heta >/dev/null 2>"$T/err"; [ $? -eq 1 ] || fail "truncated: exit 1"
grep -q "cut: damaged spelling dictionary" "$T/err" || fail "truncated message: $(cat "$T/err")"
echo "ok"
