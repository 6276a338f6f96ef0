#!/usr/bin/env bash
# run_fuzz.sh SRC_DIR SECONDS [HARNESS] - fuzz a parser with libFuzzer.
#
# HARNESS is one of
#   qparse       the query language (query/parse.c; the default)
#   fparse       the filter language (query/filter.c)
#   searchreq    a SearchRequest's protobuf-c unpack + coord_validate_search
#                (coordinator/validate.c; funnel.pb-c.c generated here by protoc-c)
#   topology     the coordinator's topology file (coordinator/topology.c)
#   coordconfig  the coordinator's config file, blend rules included
#                (coordinator/coord_config.c, blend.c)
#   rankmodel    the ranking model text format (rank/model.c)
#   analyzer     the text analyzer: folding, tokens, stopwords, stemming (index/analyzer.c)
#   corpusline   one JSON Lines corpus document through the index builder's
#                line parser (index/builder.c analyze_line, via builder_int.h)
# Builds tests/fuzz/fuzz_HARNESS.c with the sources it needs (listed below)
# and the common files under clang -fsanitize=fuzzer,address,undefined,
# and runs it for SECONDS on a copy of tests/fuzz/corpus/HARNESS (the seeds
# stay as they are), with tests/fuzz/HARNESS.dict when there is one. Exit 0
# when nothing crashed, 1 on a crash or a broken invariant (the input is
# kept and its path printed), 77 (meson's "skipped") when clang or libFuzzer
# (or, for searchreq, protoc-c) is missing (Debian: clang-14 and
# libclang-rt-14-dev, which has libFuzzer).
#
# Work files go to a temporary directory, removed unless something crashed.
# FUZZ_CFLAGS adds compiler flags (e.g. -DFUZZ_RANKMODEL_MAX_FEATURES=0).
set -u
usage="usage: run_fuzz.sh SRC_DIR SECONDS [qparse|fparse|searchreq|topology|coordconfig|rankmodel|analyzer|corpusline]"
src=${1:?$usage}
secs=${2:?$usage}
name=${3:-qparse}
proto=0
libs=()      # extra libraries a harness needs
nowarn=()    # warnings a harness's sources cannot avoid under clang
case "$name" in
    qparse) parser=(query/parse.c) ;;
    fparse) parser=(query/filter.c) ;;
    searchreq)
        proto=1
        # validate.c's callees; index/stored.c only for idx_fields_check (the
        # rest of the index it calls is stubbed: fuzz_index_stubs.c)
        parser=(coordinator/validate.c common/fn_query.c query/parse.c query/filter.c index/stored.c
                rank/push.c tests/fuzz/fuzz_index_stubs.c) ;;
    topology) parser=(coordinator/topology.c) ;;
    coordconfig) proto=1   # coord_config.h includes funnel.pb-c.h (validate.h, prf.h)
        parser=(coordinator/coord_config.c coordinator/blend.c common/fn_config.c common/fn_log.c) ;;
    rankmodel) parser=(rank/model.c rank/score.c) ;;
    analyzer) parser=(index/analyzer.c index/stopwords.c common/fn_query.c) ;;
    corpusline)
        # builder.c needs most of the index library (idx_grow lives in
        # search.c) and the query and common code that calls: take the whole
        # directories, so that a new index source needs no edit here
        parser=($(cd "$src" && echo index/*.c index/ann/*.c query/*.c)
                common/fn_query.c common/fn_log.c common/fn_io.c common/fn_config.c)
        libs=(-lzstd -lstreamvbyte -lz)
        nowarn=(-Wno-unknown-attributes) ;;   # gcc's noipa in the codecs
    *) echo "run_fuzz.sh: unknown harness $name"; echo "$usage"; exit 1 ;;
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

gen=()
if [ "$proto" = 1 ]; then
    if ! command -v protoc-c >/dev/null 2>&1; then
        echo "run_fuzz.sh: protoc-c not found (skipped)"
        exit 77
    fi
    if ! protoc-c --c_out="$work" -I "$src/proto" "$src/proto/funnel.proto"; then
        echo "run_fuzz.sh: protoc-c failed"
        exit 1
    fi
    gen=("$work/funnel.pb-c.c")
fi

flags=(-std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -O1
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
       -Wall -Wextra -Werror -I "$src/common" -I "$src/query" -I "$src/coordinator" -I "$src/rank"
       -I "$src/index" -I "$work")
# shellcheck disable=SC2206  # split on purpose: several flags
extra=(${FUZZ_CFLAGS:-})
if ! "$cc" "${flags[@]}" "${nowarn[@]}" "${extra[@]}" -o "$work/fuzz_$name" "$src/tests/fuzz/fuzz_$name.c" \
        "${parser[@]/#/$src/}" "${gen[@]}" "$src/common/fn_arena.c" "$src/common/fn_error.c" \
        -lprotobuf-c -ljansson -lxxhash -lutf8proc -lstemmer -llmdb "${libs[@]}" -lpthread -lm; then
    echo "run_fuzz.sh: build failed"
    exit 1
fi

mkdir -p "$work/corpus" "$work/crashes"
cp "$src/tests/fuzz/corpus/$name/"* "$work/corpus/"
dict=()
if [ -f "$src/tests/fuzz/$name.dict" ]; then dict=(-dict="$src/tests/fuzz/$name.dict"); fi
echo "run_fuzz.sh: fuzzing for ${secs}s in $work"
(cd "$work" && "./fuzz_$name" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "${dict[@]}" -artifact_prefix="$work/crashes/" \
    corpus) > "$work/fuzz.log" 2>&1
rc=$?
tail -n 40 "$work/fuzz.log"
last=$(grep -E '^#[0-9]+' "$work/fuzz.log" | tail -n 1)
echo "run_fuzz.sh: last status: $last"
if [ "$rc" != 0 ] || [ -n "$(ls -A "$work/crashes")" ]; then
    keep=1
    echo "run_fuzz.sh: FAILED (libFuzzer exit $rc); inputs and log kept in $work/crashes and $work/fuzz.log"
    ls -l "$work/crashes"
    # CI keeps only the output: the inputs themselves, to replay with fuzz_NAME_seeds
    for f in "$work"/crashes/*; do
        [ -f "$f" ] && echo "run_fuzz.sh: $(basename "$f") in base64: $(head -c 4096 "$f" | base64 -w0)"
    done
    exit 1
fi
echo "run_fuzz.sh: no crash in ${secs}s"
exit 0
