# lib.sh - shared by the integration scripts (sourced, not run).
#
# Scripts are called as:  bash SCRIPT FUNNEL FUNNEL_SHARD FUNNEL_COORDINATOR
# with FUNNEL_DATA = the shared data directory. Every script works in its own
# temporary directory and ALWAYS stops the clusters it started (trap).
set -uo pipefail

FUNNEL=${1:?usage: SCRIPT FUNNEL SHARD_BIN COORDINATOR_BIN}
export FUNNEL_SHARD_BIN=${2:?shard binary}
export FUNNEL_COORDINATOR_BIN=${3:?coordinator binary}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DATA=${FUNNEL_DATA:-$HERE/../../../shared/data}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
T=$(mktemp -d "${TMPDIR:-/tmp}/funnel-it.XXXXXX")

for b in "$FUNNEL" "$FUNNEL_SHARD_BIN" "$FUNNEL_COORDINATOR_BIN"; do
    [ -x "$b" ] || { echo "SKIP: $b is not built"; exit 77; }
done
[ -f "$DATA/cranfield/corpus.jsonl" ] || { echo "SKIP: no data in $DATA"; exit 77; }

# Every directory under $T that holds pid or log files is a cluster to stop (found
# by looking: cluster_up runs in a $(...) subshell and cannot record it).
cleanup() {
    local rc=$? r
    for r in $(find "$T" \( -name '*.pid' -o -name '*.log' \) -printf '%h\n' 2>/dev/null | sort -u); do
        if [ $rc -ne 0 ]; then
            for log in "$r"/*.log; do
                [ -f "$log" ] || continue
                echo "---- last lines of $log"
                tail -n 15 "$log"
            done
        fi
        "$FUNNEL" cluster down --dir "$r" >/dev/null 2>&1
    done
    # FUNNEL_KEEP_T=DIR keeps a copy of the test's files (to study a run)
    [ -n "${FUNNEL_KEEP_T:-}" ] && cp -r "$T" "$FUNNEL_KEEP_T"
    rm -rf "$T"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }

# build_index NAME SHARDS [COLLECTION] -> prints the index dir
build_index() {
    local out=$T/$1 coll=${3:-cranfield}
    "$FUNNEL" index build --input "$DATA/$coll/corpus.jsonl" --shards "$2" --out "$out" >"$T/$1.build.log" 2>&1 \
        || { cat "$T/$1.build.log"; fail "index build $1"; }
    echo "$out"
}

# cluster_up IDXDIR RUNDIR -> prints the coordinator address
cluster_up() {
    "$FUNNEL" cluster up --index "$1" --dir "$2" 2>"$T/up.err" || { cat "$T/up.err" >&2; return 1; }
}

# json_get FILE EXPR: evaluate a python expression over the parsed JSON `r`
json_get() {
    "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# cran_models_cluster STAGE...: the pushed-model tests' cluster and data.
# Sets D (cranfield), G (its index, 2 shards), R (the run dir) and A (the
# coordinator of 2 x 2 replicas); splits the queries into T/train.tsv (the
# first 120: models train on them) and T/test.tsv (the other 105: the gate's);
# writes T/sS.svm, the training queries' stage-S features (window 100), for
# each STAGE given.
cran_models_cluster() {
    D=$DATA/cranfield
    G=$(build_index g1 2) || exit 1
    R=$T/run
    A=$("$FUNNEL" cluster up --index "$G" --dir "$R" --replicas 2 2>"$T/up.err") || { cat "$T/up.err"; fail "cluster up"; }
    head -n 120 "$D/queries.tsv" >"$T/train.tsv"
    tail -n +121 "$D/queries.tsv" >"$T/test.tsv"
    local s
    for s in "$@"; do
        "$FUNNEL" features --server "$A" --queries "$T/train.tsv" --qrels "$D/qrels.trec" --stage "$s" --window 100 \
            --out "$T/s$s.svm" 2>"$T/f$s.err" || { cat "$T/f$s.err"; fail "features --stage $s"; }
    done
}

# shuffle_labels IN OUT: a copy of the SVMlight file IN with its labels
# shuffled among its rows (seed 7), comment lines kept: the training data of a
# deliberately bad model for the quality gate
shuffle_labels() {
    "$PY" - "$1" "$2" <<'EOF'
import random, sys
random.seed(7)
lines = open(sys.argv[1]).read().split('\n')
head = [l for l in lines if l.startswith('#')]
rows = [l for l in lines if l and not l.startswith('#')]
labels = [r.split(' ', 1)[0] for r in rows]
random.shuffle(labels)
open(sys.argv[2], 'w').write('\n'.join(head + [a + ' ' + r.split(' ', 1)[1] for a, r in zip(labels, rows)]) + '\n')
EOF
}

# pid_running PID: alive and not a zombie (after `down`, init may reap late)
pid_running() {
    [ -r "/proc/$1/stat" ] || return 1
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
