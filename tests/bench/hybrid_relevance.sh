#!/usr/bin/env bash
# hybrid_relevance.sh BUILD_DIR - issue 9, acceptance 3 (docs/vectors.md): hybrid
# retrieval on cranfield, npl and cisi with `funnel embed` vectors (fastText
# trained on each collection's own text), through a 3-shard cluster:
#   text only      BM25F (skip_models), the vectors left out
#   vector only    the k-NN list (HNSW, knn-k 1000)
#   rrf            BM25F fused with the k-NN list by reciprocal rank fusion
#   cv text        funnel cv (5 folds, seed 1): the learned funnel, no vectors
#   cv hybrid      funnel cv, the same folds, with the query vectors: the models
#                  can use vec_sim (fusion learned)
# NDCG@10 by ../shared/tools/trec_eval.py for the first three; funnel cv's own
# figures (the same evaluator, agreement tested) for the last two.
# The encoder trains with one fastText thread (EMBED_FLAGS, default
# "--threads 1"): with two, fastText trains hogwild and the vectors, and so
# every figure but "text only", move by about 0.015 NDCG@10 from run to run.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${FUNNEL_DATA:-$SRC/../shared/data}
TOOLS=$(cd "$DATA/../tools" && pwd)
F=$B/ops/funnel
T=$(mktemp -d /tmp/funnel-hybrid.XXXXXX)
trap '"$F" cluster down --dir "$T/run" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
ndcg() { /usr/bin/python3 "$TOOLS/trec_eval.py" "$1" "$2" | grep -o 'ndcg@10=[0-9.]*' | cut -d= -f2; }
for c in ${COLLECTIONS:-cranfield npl cisi}; do
  echo "== $c"
  "$F" embed train --input "$DATA/$c/corpus.jsonl" --out "$T/$c.enc" ${EMBED_FLAGS:---threads 1} >"$T/$c.train.log" 2>&1
  tail -n 1 "$T/$c.train.log" | sed 's/^/  /'
  "$F" embed apply --model "$T/$c.enc" --corpus "$DATA/$c/corpus.jsonl" --out "$T/$c.jsonl" >/dev/null 2>&1
  "$F" embed apply --model "$T/$c.enc" --queries "$DATA/$c/queries.tsv" --out "$T/$c.q.tsv" >/dev/null 2>&1
  cut -f1,2 "$T/$c.q.tsv" > "$T/$c.qtext.tsv"
  "$F" index build --input "$T/$c.jsonl" --shards 3 --out "$T/$c.idx" --metric cosine >/dev/null 2>&1
  ADDR=$("$F" cluster up --index "$T/$c.idx" --dir "$T/run")
  Q=$DATA/$c/qrels.trec
  "$F" search --server "$ADDR" --queries "$T/$c.q.tsv" --k 1000 --skip-models --text-only --run-out "$T/$c.text.trec" 2>/dev/null
  "$F" search --server "$ADDR" --queries "$T/$c.q.tsv" --k 1000 --knn-k 1000 --vector-only --run-out "$T/$c.vec.trec" 2>/dev/null
  "$F" search --server "$ADDR" --queries "$T/$c.q.tsv" --k 1000 --knn-k 1000 --skip-models --fusion rrf --run-out "$T/$c.rrf.trec" 2>/dev/null
  "$F" cluster down --dir "$T/run" >/dev/null
  printf '  %-12s NDCG@10 %s\n' "text only" "$(ndcg "$Q" "$T/$c.text.trec")" "vector only" "$(ndcg "$Q" "$T/$c.vec.trec")" \
    "rrf" "$(ndcg "$Q" "$T/$c.rrf.trec")"
  for v in text hybrid; do
    qf=$T/$c.q.tsv; [ $v = text ] && qf=$T/$c.qtext.tsv
    "$F" cv --index "$T/$c.idx" --queries "$qf" --qrels "$Q" --folds 5 --seed 1 --dir "$T/cv-$c-$v" >"$T/cv-$c-$v.out" 2>&1 \
      || { tail -n 20 "$T/cv-$c-$v.out"; exit 1; }
    echo "  cv $v:"; grep -E "^(fold|all|mean|  *[0-9]|[0-9])" "$T/cv-$c-$v.out" | sed "s/^/    /"
  done
  # which stages' models kept the vector (stage-2 lines carry the paired t)
  L=$T/cv-$c-hybrid/cv.log
  printf '  vec_sim kept by the guard: stage 1 in %s of 5 folds, stage 2 in %s of 5\n' \
    "$(grep '^guard-drop vec_sim' "$L" | grep -v 'paired t' | grep -c ': kept$' || true)" \
    "$(grep '^guard-drop vec_sim' "$L" | grep 'paired t' | grep -c ': kept$' || true)"
done
