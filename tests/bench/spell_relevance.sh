#!/usr/bin/env bash
# spell_relevance.sh BUILD_DIR - issue 10, acceptance 2 (docs/query-language.md
# "Spelling"): queries with generated typos (tests/bench/typos.py: one edit in
# ~30% of the words of five or more letters, seed 1) through a 3-shard
# cluster whose coordinator has the collection's spelling dictionary and the
# system word list. For cranfield and npl (COLLECTIONS to change), NDCG@10
# (BM25F, --skip-models; ../shared/tools/trec_eval.py) of:
#   clean, spell off      the baseline
#   clean, spell auto     correction must change it by less than 0.5%
#   typos, spell off      what the typos cost
#   typos, spell auto     must recover >= 90% of the clean NDCG@10
# and the correction precision (right fixes / words changed) and recall
# (right fixes / typos) of the coordinator's own corrections (the
# rewritten_query of each response, by funnel search --json).
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${FUNNEL_DATA:-$SRC/../shared/data}
TOOLS=$(cd "$DATA/../tools" && pwd)
F=$B/ops/funnel
PY=/usr/bin/python3
T=$(mktemp -d /tmp/funnel-spell.XXXXXX)
trap '"$F" cluster down --dir "$T/run" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
ndcg() { $PY "$TOOLS/trec_eval.py" "$1" "$2" | grep -o 'ndcg@10=[0-9.]*' | cut -d= -f2; }
for c in ${COLLECTIONS:-cranfield npl}; do
  echo "== $c"
  Q=$DATA/$c/queries.tsv
  "$F" index build --input "$DATA/$c/corpus.jsonl" --shards 3 --out "$T/$c.idx" >/dev/null 2>&1
  "$F" spell build --input "$DATA/$c/corpus.jsonl" --out "$T/$c.idx/spell.dict" 2>&1 | sed 's/^/  /'
  $PY "$SRC/tests/bench/typos.py" --in "$Q" --out "$T/$c.typo.tsv" --rate 0.3 --seed 1 --truth "$T/$c.truth.tsv"
  echo "  typos: $(wc -l < "$T/$c.truth.tsv") edits in $(cut -f1 "$T/$c.truth.tsv" | sort -u | wc -l) of $(grep -c . "$Q") queries"
  ADDR=$("$F" cluster up --index "$T/$c.idx" --dir "$T/run")
  for v in clean typo; do
    qf=$Q; [ $v = typo ] && qf=$T/$c.typo.tsv
    for s in off auto; do
      "$F" search --server "$ADDR" --queries "$qf" --k 1000 --skip-models --spell $s \
        --run-out "$T/$c.$v.$s.trec" 2>/dev/null
    done
  done
  # the coordinator's corrections, query by query (one search each, --json)
  while IFS=$'\t' read -r qid text _; do
    [ -n "$qid" ] || continue
    printf '%s\t%s\n' "$qid" "$("$F" search --server "$ADDR" --syntax plain --k 1 --json "$text" \
      | $PY -c 'import json,sys; r=json.load(sys.stdin); print(r.get("rewrittenQuery") or r.get("rewritten_query") or "")')"
  done < "$T/$c.typo.tsv" > "$T/$c.fixed.tsv"
  "$F" cluster down --dir "$T/run" >/dev/null
  J=$DATA/$c/qrels.trec
  base=$(ndcg "$J" "$T/$c.clean.off.trec"); cl=$(ndcg "$J" "$T/$c.clean.auto.trec")
  ty=$(ndcg "$J" "$T/$c.typo.off.trec"); fx=$(ndcg "$J" "$T/$c.typo.auto.trec")
  printf '  NDCG@10 clean %s, clean corrected %s (%+.2f%%), typos %s (%.1f%% of clean), typos corrected %s (%.1f%% of clean)\n' \
    "$base" "$cl" "$(echo "($cl - $base) / $base * 100" | bc -l)" "$ty" "$(echo "$ty / $base * 100" | bc -l)" \
    "$fx" "$(echo "$fx / $base * 100" | bc -l)"
  $PY "$SRC/tests/bench/typos.py" --score --truth "$T/$c.truth.tsv" --in "$T/$c.typo.tsv" --corrected "$T/$c.fixed.tsv" | sed 's/^/  /'
done
