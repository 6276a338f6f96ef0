#!/usr/bin/env bash
# (f) funnel eval agrees with shared/tools/trec_eval.py (tests/ops/eval_agreement.sh),
# and a live run scored by funnel eval gives sensible Cranfield numbers.
source "$(dirname "$0")/lib.sh"

sh "$HERE/../ops/eval_agreement.sh" "$FUNNEL" "$DATA" || fail "eval agreement"

I=$(build_index idx 2) || exit 1
A=$(cluster_up "$I" "$T/run") || fail "cluster up"
"$FUNNEL" search --server "$A" --queries "$DATA/cranfield/queries.tsv" --k 1000 --run-out "$T/run.trec" \
    --concurrency 4 --tag it || fail "batch search"
"$FUNNEL" eval --qrels "$DATA/cranfield/qrels.trec" --run "$T/run.trec" >"$T/eval.out" || fail "funnel eval"
cat "$T/eval.out"
[ "$(head -n 1 "$T/eval.out")" = "$(printf 'queries\t225')" ] || fail "expected 225 queries"
"$PY" - "$T/eval.out" <<'PY' || fail "Cranfield BM25 numbers out of the expected range"
import sys
m = dict(l.rstrip("\n").split("\t") for l in open(sys.argv[1]))
ndcg, rec = float(m["ndcg@10"]), float(m["r@1000"])
print("ndcg@10", ndcg, "r@1000", rec)
sys.exit(0 if 0.25 < ndcg < 0.7 and rec > 0.8 else 1)
PY
"$PY" "$DATA/../tools/trec_eval.py" "$DATA/cranfield/qrels.trec" "$T/run.trec" >"$T/ref.out" 2>&1 \
    && echo "reference: $(tr '\n' ' ' <"$T/ref.out")"
ok "live run evaluated"
