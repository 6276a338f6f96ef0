#!/usr/bin/env bash
# run_fuzz.sh SRC_DIR SECONDS [HARNESS] - fuzz a parser with libFuzzer.
#
# HARNESS is qparse (the default: the query language, query/parse.c) or
# fparse (the filter language, query/filter.c). Builds
# tests/fuzz/fuzz_HARNESS.c with its parser and the common files it needs
# under clang -fsanitize=fuzzer,address,undefined, and runs it for SECONDS
# on a copy of tests/fuzz/corpus/HARNESS (the seeds stay as they are), with
# tests/fuzz/HARNESS.dict. Exit 0 when nothing crashed, 1 on a crash or a
# broken invariant (the input is kept and its path printed), 77 (meson's
# "skipped") when clang or libFuzzer is missing (Debian: clang-14 and
# libclang-rt-14-dev, which has libFuzzer).
#
# Work files go to a temporary directory, removed unless something crashed.
set -u
src=${1:?usage: run_fuzz.sh SRC_DIR SECONDS [qparse|fparse]}
secs=${2:?usage: run_fuzz.sh SRC_DIR SECONDS [qparse|fparse]}
name=${3:-qparse}
case "$name" in
    qparse) parser=query/parse.c ;;
    fparse) parser=query/filter.c ;;
    *) echo "run_fuzz.sh: unknown harness $name (qparse or fparse)"; exit 1 ;;
esac
src=$(cd "$src" && pwd)
cc=${CLANG:-clang}

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "run_fuzz.sh: $cc not found; install clang and libclang-rt-14-dev to fuzz (skipped)"
    exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz_${name}.XXXXXX") || exit 1
keep=0
cleanup() { if [ "$keep" = 0 ]; then rm -rf "$work"; fi; }
trap cleanup EXIT

printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
    > "$work/probe.c"
if ! "$cc" -fsanitize=fuzzer "$work/probe.c" -o "$work/probe" >/dev/null 2>&1; then
    echo "run_fuzz.sh: $cc cannot link -fsanitize=fuzzer (no libFuzzer: install libclang-rt-14-dev) (skipped)"
    exit 77
fi

flags=(-std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -O1
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
       -Wall -Wextra -Werror -I "$src/common" -I "$src/query")
if ! "$cc" "${flags[@]}" -o "$work/fuzz_$name" "$src/tests/fuzz/fuzz_$name.c" \
        "$src/$parser" "$src/common/fn_arena.c" "$src/common/fn_error.c" \
        -lutf8proc -llmdb -lpthread -lm; then
    echo "run_fuzz.sh: build failed"
    exit 1
fi

mkdir -p "$work/corpus" "$work/crashes"
cp "$src/tests/fuzz/corpus/$name/"* "$work/corpus/"
echo "run_fuzz.sh: fuzzing for ${secs}s in $work"
(cd "$work" && "./fuzz_$name" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -dict="$src/tests/fuzz/$name.dict" -artifact_prefix="$work/crashes/" \
    corpus) > "$work/fuzz.log" 2>&1
rc=$?
tail -n 40 "$work/fuzz.log"
last=$(grep -E '^#[0-9]+' "$work/fuzz.log" | tail -n 1)
echo "run_fuzz.sh: last status: $last"
if [ "$rc" != 0 ] || [ -n "$(ls -A "$work/crashes")" ]; then
    keep=1
    echo "run_fuzz.sh: FAILED (libFuzzer exit $rc); inputs and log kept in $work/crashes and $work/fuzz.log"
    ls -l "$work/crashes"
    exit 1
fi
echo "run_fuzz.sh: no crash in ${secs}s"
exit 0
