#!/usr/bin/env bash
# intent_accuracy.sh BUILD_DIR - issue 10, query intent (query/intent.h,
# ops/ops_intent.c): a gen_corpus.py corpus (100k documents, 2000 queries,
# seed 1; DOCS / QUERIES / SEED to change), `funnel intent train --corpus
# --holdout 0.2`: labels are the majority vertical of each query's top 100
# matching documents; prints the held-out accuracy against the majority
# baseline, per-vertical precision/recall, the spread of the verticals' shares
# in the top documents against the spread from sampling alone, the time and
# the peak memory.
#
# Expect accuracy == baseline here: gen_corpus.py draws a document's vertical
# independently of its words (web 80%, news 10%, image 5%, video 5%), so the
# top-100 vote of every query is web, and the shares vary only as binomial
# sampling does. The learner itself is tested where words do decide the
# vertical (tests/query/test_intent.c).
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
F=$B/ops/funnel
GEN=${GEN:-/work/shared/tools/gen_corpus.py}
DOCS=${DOCS:-100000} QUERIES=${QUERIES:-2000} SEED=${SEED:-1}
T=$(mktemp -d /tmp/funnel-intent.XXXXXX)
trap 'rm -rf "$T"' EXIT
/usr/bin/python3 "$GEN" --docs "$DOCS" --seed "$SEED" --out "$T/corpus.jsonl" \
  --queries "$QUERIES" --queries-out "$T/queries.tsv" 2>/dev/null
echo "== corpus: $DOCS documents, $QUERIES queries, seed $SEED"
TIME=()
[ -x /usr/bin/time ] && TIME=(/usr/bin/time -f "peak RSS %M KiB, wall %e s")
"${TIME[@]}" "$F" intent train --corpus "$T/corpus.jsonl" --queries "$T/queries.tsv" --out "$T/m.intent" \
  --holdout 0.2 --seed 1 2>"$T/err" | tee "$T/out"
sed 's/^/  /' "$T/err"
ls -l "$T/m.intent" | awk '{print "  model file: " $5 " bytes"}'
grep -q '^held-out: .* accuracy [0-9.]*, majority baseline' "$T/out"
