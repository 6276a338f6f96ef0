#!/usr/bin/env bash
# expansion_relevance.sh BUILD_DIR - issue 10, acceptance 3 (docs/query-language.md
# "Expansion"): RM3 pseudo-relevance feedback and WordNet synonyms (the
# coordinator's synonym-weight SYN_WEIGHT, default 0.3; needs wordnet-base)
# against plain BM25F on
# cranfield, npl and cisi (COLLECTIONS to change), 3 shards, no models
# (--skip-models), k 1000, the coordinator's stage-2 window raised to 1000 so
# RM3 ranks the whole run. NDCG@10 and MAP by ../shared/tools/trec_eval.py.
# PRF_DOCS, PRF_TERMS, PRF_LAMBDA: the coordinator's RM3 settings (defaults
# 10, 50, 0.7: docs/ranking.md).
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${FUNNEL_DATA:-$SRC/../shared/data}
TOOLS=$(cd "$DATA/../tools" && pwd)
F=$B/ops/funnel
PY=/usr/bin/python3
T=$(mktemp -d /tmp/funnel-expand.XXXXXX)
trap '"$F" cluster down --dir "$T/run" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
cat > "$T/coord.conf" <<EOF
stage2-k = 1000
prf-docs = ${PRF_DOCS:-10}
prf-terms = ${PRF_TERMS:-50}
prf-lambda = ${PRF_LAMBDA:-0.7}
synonym-weight = ${SYN_WEIGHT:-0.3}
EOF
metric() { $PY "$TOOLS/trec_eval.py" "$1" "$2" | grep -o "$3=[0-9.]*" | cut -d= -f2; }
printf '%-10s %8s %8s %8s %8s %8s %8s\n' collection bm25f rm3 synonyms bm25f rm3 synonyms
printf '%-10s %8s %8s %8s %8s %8s %8s\n' "" ndcg@10 ndcg@10 ndcg@10 map map map
for c in ${COLLECTIONS:-cranfield npl cisi}; do
  "$F" index build --input "$DATA/$c/corpus.jsonl" --shards 3 --out "$T/$c.idx" >/dev/null 2>&1
  ADDR=$("$F" cluster up --index "$T/$c.idx" --dir "$T/run" --coordinator-config "$T/coord.conf")
  Q=$DATA/$c/queries.tsv J=$DATA/$c/qrels.trec
  "$F" search --server "$ADDR" --queries "$Q" --k 1000 --skip-models --run-out "$T/$c.bm25.trec" 2>/dev/null
  "$F" search --server "$ADDR" --queries "$Q" --k 1000 --skip-models --expand rm3 --run-out "$T/$c.rm3.trec" 2>/dev/null
  "$F" search --server "$ADDR" --queries "$Q" --k 1000 --skip-models --expand synonyms --run-out "$T/$c.syn.trec" 2>/dev/null
  "$F" cluster down --dir "$T/run" >/dev/null
  printf '%-10s %8s %8s %8s %8s %8s %8s\n' "$c" "$(metric "$J" "$T/$c.bm25.trec" ndcg@10)" \
    "$(metric "$J" "$T/$c.rm3.trec" ndcg@10)" "$(metric "$J" "$T/$c.syn.trec" ndcg@10)" \
    "$(metric "$J" "$T/$c.bm25.trec" map)" "$(metric "$J" "$T/$c.rm3.trec" map)" "$(metric "$J" "$T/$c.syn.trec" map)"
done
