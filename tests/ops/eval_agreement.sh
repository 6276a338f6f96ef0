#!/bin/sh
# eval_agreement.sh - `funnel eval` must agree with the reference evaluator
# (shared/tools/trec_eval.py) to 1e-4 on every metric.
#
# Usage:  tests/ops/eval_agreement.sh /path/to/funnel [DATA_DIR]
#   e.g.  tests/ops/eval_agreement.sh build/ops/funnel
#
# For each of cranfield, npl and cisi (DATA_DIR defaults to ../shared/data
# from the repository root) it writes pseudo-random runs from the qrels -
# heavy score ties, ids that are prefixes of each other, duplicate documents,
# judged queries left out, unjudged queries added, lists longer than 1000 -
# runs `funnel eval QRELS RUN` and compares its output, which must be
#     queries<TAB>N
#     ndcg@10<TAB>0.xxxx   (then map, mrr, p@10, r@100, r@1000)
# with trec_eval.py's numbers. No cluster needed. Exit 0 on agreement, 1 on
# any difference (printed), 77 (skip) if the data or tools are missing.
set -eu

FUNNEL=${1:?usage: eval_agreement.sh /path/to/funnel [DATA_DIR]}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${2:-$ROOT/../shared/data}
TOOLS=$ROOT/../shared/tools
[ -f "$TOOLS/trec_eval.py" ] || TOOLS=/work/shared/tools
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
if [ ! -f "$TOOLS/trec_eval.py" ] || [ ! -d "$DATA" ]; then
    echo "eval_agreement: no trec_eval.py or data dir; skipping"
    exit 77
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM

fail=0
runs=0
for coll in cranfield npl cisi; do
    QRELS=$DATA/$coll/qrels.trec
    [ -f "$QRELS" ] || continue
    for seed in 1 2 3 4; do
        RUN=$TMP/$coll.$seed.run
        "$PY" - "$QRELS" "$RUN" "$seed" <<'PYEOF'
import random, sys
qrels_path, run_path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
judged = {}
for line in open(qrels_path):
    if line.strip():
        qid, _, did, g = line.split()
        judged.setdefault(qid, {})[did] = int(g)
ids = sorted({d for j in judged.values() for d in j})
maxid = max((int(d) for d in ids if d.isdigit()), default=100)
pool = ids + [str(i) for i in range(1, maxid + 1)]
qids = list(judged)
with open(run_path, "w") as out:
    for qid in qids + ["unjudged-%d" % i for i in range(3)]:
        if rng.random() < 0.08:
            continue                       # judged query missing from the run
        n = rng.choice([0, 1, 5, 10, 50, 200, 999, 1000, 1001, 1500])
        docs = [rng.choice(pool) for _ in range(n)]
        rel = [d for d, g in judged.get(qid, {}).items() if g > 0]
        docs += rng.sample(rel, min(len(rel), rng.randint(0, 8)))
        if docs and rng.random() < 0.3:
            docs.append(docs[0])           # a duplicate document
        style = seed % 4
        for rank, d in enumerate(docs, 1):
            if style == 0:
                s = float(rng.randint(0, 3))                 # massive ties
            elif style == 1:
                s = round(rng.uniform(0, 20), 1)             # some ties
            elif style == 2:
                s = rng.uniform(-5, 5)                       # few ties, negatives
            else:
                s = 1.0 / rank if rng.random() < 0.7 else 0.5
            if d in rel and rng.random() < 0.5:
                s += 2
            out.write("%s Q0 %s %d %r tag\n" % (qid, d, rank, s))
PYEOF
        if ! "$FUNNEL" eval "$QRELS" "$RUN" >"$TMP/out" 2>"$TMP/err"; then
            echo "FAIL $coll seed $seed: funnel eval exited non-zero"
            cat "$TMP/err"
            fail=1
            continue
        fi
        runs=$((runs + 1))
        if ! "$PY" - "$TOOLS" "$QRELS" "$RUN" "$TMP/out" "$coll.$seed" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1])
import trec_eval
qrels, run, out, label = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
mean, per = trec_eval.evaluate(trec_eval.load_run(run), trec_eval.load_qrels(qrels))
lines = [l.split("\t") for l in open(out).read().splitlines() if l.strip()]
want = [("queries", len(per))] + list(mean.items())
ok = len(lines) == len(want)
for i, (name, ref) in enumerate(want):
    if i >= len(lines) or len(lines[i]) != 2 or lines[i][0] != name:
        print("FAIL %s: line %d should be '%s<TAB>value', got %r" % (label, i + 1, name, lines[i] if i < len(lines) else None))
        ok = False
        continue
    got = float(lines[i][1])
    if (name == "queries" and got != ref) or abs(got - ref) > 1e-4:
        print("FAIL %s: %s funnel %s reference %.6f" % (label, name, lines[i][1], ref))
        ok = False
print("%s %s: %s" % ("ok  " if ok else "FAIL", label, " ".join("%s=%.4f" % kv for kv in mean.items())))
sys.exit(0 if ok else 1)
PYEOF
        then
            fail=1
        fi
    done
done
[ "$runs" -gt 0 ] || { echo "eval_agreement: no run evaluated"; exit 1; }
exit $fail
