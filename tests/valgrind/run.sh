#!/usr/bin/env bash
# run.sh BUILDDIR - one integration run with every server under valgrind memcheck.
# Builds a 3-shard Cranfield index, trains a stage-1 and a stage-2 model, starts
# the cluster with each daemon wrapped in valgrind (FUNNEL_WRAPPER) and the models
# loaded, sends normal, explain, batch and malformed queries, pushes models,
# kills nothing, brings the cluster down with SIGTERM and then checks every
# server's log: 0 errors and no definite, indirect or possible leaks.
set -uo pipefail
B=$(cd "${1:-build}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
F=$B/ops/funnel
T=$(mktemp -d /tmp/funnel-vg.XXXXXX)
trap '"$F" cluster down --dir "$T/run" >/dev/null 2>&1; rm -rf "$T"' EXIT
DATA=$SRC/ops/sample/cranfield

# the sample with seeded random 8-d embeddings: the vector path runs under valgrind too
/usr/bin/python3 - "$DATA/corpus.jsonl" "$T/corpus.jsonl" <<'PY' || { echo "embedding the sample failed"; exit 1; }
import json, random, sys
rnd = random.Random(3)
with open(sys.argv[2], "w") as out:
    for line in open(sys.argv[1]):
        d = json.loads(line); d["embedding"] = [round(rnd.uniform(-1, 1), 4) for _ in range(8)]
        d["vertical"] = rnd.choice(["web", "web", "news", "image"]); d["labels"] = rnd.sample(["a", "b", "c"], rnd.randint(0, 2))
        d["url"] = "https://%s/%s" % (rnd.choice(["a.example", "a.example", "b.example", "c.example"]), d["id"])
        out.write(json.dumps(d) + "\n")
PY
# the result page: a content filter (trained outside valgrind on a slice of
# SpamAssassin) scored at index time, an intent model and slot rules for the
# blender, a host cap (docs/result-page.md)
SA=$SRC/../shared/data/spam-assassin/corpus.jsonl
[ -r "$SA" ] || SA=${FUNNEL_DATA:-/nonexistent}/spam-assassin/corpus.jsonl
awk 'NR % 8 == 0' "$SA" > "$T/sa.jsonl"
"$F" filter train --input "$T/sa.jsonl" --label-field label --positive spam --out "$T/f.model" --holdout 0 >/dev/null 2>&1 \
  || { echo "filter train failed"; exit 1; }
"$F" index build --input "$T/corpus.jsonl" --shards 3 --out "$T/idx" --filter-model "$T/f.model" >/dev/null 2>&1 \
  || { echo "index build failed"; exit 1; }
"$F" intent train --queries "$DATA/queries.tsv" --corpus "$T/corpus.jsonl" --out "$T/idx/intent.model" >/dev/null 2>&1 \
  || { echo "intent train failed"; exit 1; }
printf 'host-cap = 2\nblend-rule = news_top vertical=news position=3 size=2 min-intent=0\nblend-rule = img vertical=image position=6 size=2 min-intent=0.2\n' > "$T/coord.conf"
# a spelling dictionary: the coordinator loads it and corrects under valgrind
"$F" spell build --input "$DATA/corpus.jsonl" --out "$T/idx/spell.dict" >/dev/null 2>&1 || { echo "spell build failed"; exit 1; }
# models to serve with (trained on a cluster outside valgrind): a stage-1 GBDT over
# the cheap features, a stage-2 LambdaMART over every feature, and a second
# stage-2 model to push while the cluster runs under valgrind
head -n 60 "$DATA/queries.tsv" > "$T/train.tsv"
ADDR=$("$F" cluster up --index "$T/idx" --dir "$T/run") || { echo "cluster up failed"; exit 1; }
"$F" features --server "$ADDR" --queries "$T/train.tsv" --qrels "$DATA/qrels.trec" --stage 1 --out "$T/s1.svm" >/dev/null &&
"$F" features --server "$ADDR" --queries "$T/train.tsv" --qrels "$DATA/qrels.trec" --stage 2 --window 100 --out "$T/s2.svm" >/dev/null ||
  { echo "funnel features failed"; exit 1; }
"$F" cluster down --dir "$T/run" >/dev/null
"$F" train --data "$T/s1.svm" --objective binary --trees 20 --depth 3 --every 0 --out "$T/m1.model" >/dev/null 2>&1 &&
"$F" train --data "$T/s2.svm" --objective lambdarank --trees 50 --depth 6 --every 0 --out "$T/m2.model" >/dev/null 2>&1 &&
"$F" train --data "$T/s2.svm" --objective lambdarank --trees 30 --depth 4 --every 0 --out "$T/m2b.model" >/dev/null 2>&1 ||
  { echo "funnel train failed"; exit 1; }
export FUNNEL_WRAPPER="valgrind --suppressions=$HERE/grpc-absl.supp --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 --num-callers=30 --log-file=$T/vg-%p.log"

ADDR=$("$F" cluster up --index "$T/idx" --dir "$T/run" --timeout-s 120 --stage1-model "$T/m1.model" --stage2-model "$T/m2.model" --coordinator-config "$T/coord.conf") || { echo "cluster up failed"; tail -n 30 "$T"/run/*.log; exit 1; }
unset FUNNEL_WRAPPER
echo "cluster under valgrind at $ADDR"
"$F" search --server "$ADDR" --deadline-ms 20000 "boundary layer" --k 5 >/dev/null || { echo "search failed"; exit 1; }
"$F" search --server "$ADDR" --deadline-ms 20000 --explain --json "heat transfer" >/dev/null || { echo "explain search failed"; exit 1; }
"$F" search --server "$ADDR" --deadline-ms 20000 "" >/dev/null 2>&1 && { echo "empty query was accepted"; exit 1; }
# both stages ran with their models
"$F" search --server "$ADDR" --deadline-ms 20000 --json "flow over a flat plate" > "$T/models.json" || { echo "search with models failed"; exit 1; }
/usr/bin/python3 - "$T/models.json" <<'PY' || exit 1
import json, sys
st = {s["name"]: s for s in json.load(open(sys.argv[1]))["stages"]}
for name in ("stage1", "stage2"):
    s = st.get(name, {})
    if not s.get("ran") or "model" in s.get("note", "") and "no model" in s.get("note", ""):
        sys.exit("%s did not run with its model: %r" % (name, s))
PY
# window features always run pseudo-relevance feedback (Shard/Rescore)
head -n 5 "$DATA/queries.tsv" > "$T/q5.tsv"
"$F" features --server "$ADDR" --queries "$T/q5.tsv" --qrels "$DATA/qrels.trec" --stage 2 --window 50 \
    --deadline-ms 60000 --out "$T/vgf.svm" >/dev/null 2>&1 || { echo "window features failed"; exit 1; }
head -n 1 "$T/vgf.svm" | grep -q " prf_rm3 " && grep -q " 38:" "$T/vgf.svm" || { echo "no prf_rm3 values"; exit 1; }
"$F" model push --server "$ADDR" --stage 2 --model "$T/m2b.model" >/dev/null || { echo "model push failed"; exit 1; }
"$F" model push --server "$ADDR" --stage 1 --model "$T/m1.model" >/dev/null || { echo "stage-1 model push failed"; exit 1; }
"$F" search --server "$ADDR" --deadline-ms 20000 --explain "boundary layer" >/dev/null || { echo "search after push failed"; exit 1; }
# vectors: HNSW and exact k-NN, hybrid RRF and weighted, a wrong dimension refused
VEC="0.1 -0.2 0.3 0.4 -0.5 0.6 0.7 -0.8"
"$F" search --server "$ADDR" --deadline-ms 20000 --vector "$VEC" --k 5 >/dev/null || { echo "vector search failed"; exit 1; }
"$F" search --server "$ADDR" --deadline-ms 20000 --vector "$VEC" --knn-exact --k 5 >/dev/null || { echo "exact vector search failed"; exit 1; }
"$F" search --server "$ADDR" --deadline-ms 20000 "boundary layer" --vector "$VEC" --k 5 >/dev/null || { echo "hybrid search failed"; exit 1; }
"$F" search --server "$ADDR" --deadline-ms 20000 "heat" --vector "$VEC" --fusion weighted --k 5 >/dev/null || { echo "weighted hybrid failed"; exit 1; }
"$F" search --server "$ADDR" --deadline-ms 20000 --vector "1 2 3" >/dev/null 2>&1 && { echo "a 3-number vector was accepted"; exit 1; }
# filters: parsed on both sides, listed and cached, asked per document, the allow-list
for flt in 'id:1,2,3,50,400' 'popularity>=0 -id:5' 'vertical:news OR id:7' 'vertical:image labels:all(a,b)' \
           'published_at>=0' '-vertical:web' 'vertical:image'; do
  "$F" search --server "$ADDR" --deadline-ms 20000 --k 5 --filter "$flt" "boundary layer" >/dev/null \
    || { echo "filter $flt failed"; exit 1; }
done
"$F" search --server "$ADDR" --deadline-ms 20000 --vector "$VEC" --filter 'id:1,2,3' --k 5 >/dev/null \
  || { echo "filtered vector search failed"; exit 1; }
"$F" search --server "$ADDR" --deadline-ms 20000 --filter 'popularity>=' "heat" >/dev/null 2>&1 \
  && { echo "a malformed filter was accepted"; exit 1; }
# the query language: phrases (positions read), NOT, fields, mode all; a syntax error refused
for q in '"boundary layer" AND NOT laminar title:flow' '+heat -transfer (plate OR cylinder)' \
         'title:("shock wave" OR supersonic) body:pressure'; do
  "$F" search --server "$ADDR" --deadline-ms 20000 --k 5 "$q" >/dev/null || { echo "query language: $q failed"; exit 1; }
done
"$F" search --server "$ADDR" --deadline-ms 20000 --mode all --k 5 'heat transfer "flat plate"' >/dev/null \
  || { echo "mode all failed"; exit 1; }
"$F" search --server "$ADDR" --deadline-ms 20000 '(heat AND' >/dev/null 2>&1 && { echo "a syntax error was accepted"; exit 1; }
# expansion: RM3 and WordNet synonyms (when wordnet-base is installed) re-rank the window
"$F" search --server "$ADDR" --deadline-ms 20000 --k 5 --skip-models --expand rm3 'heat transfer' >/dev/null \
  || { echo "expand rm3 failed"; exit 1; }
if [ -r /usr/share/wordnet/index.noun ]; then
  "$F" search --server "$ADDR" --deadline-ms 60000 --k 5 --skip-models --expand synonyms --explain 'heat flows' \
    > "$T/syn.out" 2>&1; grep -q 'WordNet synonyms' "$T/syn.out" || { echo "expand synonyms failed:"; tail -n 25 "$T/syn.out"; exit 1; }
fi
# spelling: auto and suggest
"$F" search --server "$ADDR" --deadline-ms 20000 --k 5 'heat trasnfer in bondary layers' > "$T/out1.txt" 2>&1; grep -q 'searched for: heat transfer in boundary layers' "$T/out1.txt" \
  || { echo "spelling (auto) failed:"; tail -n 20 "$T/out1.txt"; exit 1; }
"$F" search --server "$ADDR" --deadline-ms 20000 --k 5 --spell suggest '"heat trasnfer" AND NOT lamnar' > "$T/out2.txt" 2>&1; grep -q 'did you mean' "$T/out2.txt" \
  || { echo "spelling (suggest) failed:"; tail -n 20 "$T/out2.txt"; exit 1; }
# stored fields and snippets (a two-phase fetch: the models re-rank), documents by id
"$F" search --server "$ADDR" --deadline-ms 20000 --k 5 --fields title --snippets 'boundary layer' > "$T/out3.txt" 2>&1; grep -q '\[\[' "$T/out3.txt" \
  || { echo "search --fields --snippets failed:"; tail -n 20 "$T/out3.txt"; exit 1; }
"$F" get --server "$ADDR" --deadline-ms 20000 1 2 3 >/dev/null || { echo "funnel get failed"; exit 1; }
"$F" get --server "$ADDR" --deadline-ms 20000 1 no-such-doc --fields title >/dev/null 2>&1
[ $? = 1 ] || { echo "funnel get of an unknown id did not exit 1"; exit 1; }
# the result page: every safe-search level, folding off, blending off, a deeper list
for sflag in "--safe-search strict" "--safe-search moderate --explain" "--safe-search off --keep-duplicates" \
             "--no-blend --host-cap 1" "--host-cap 1 --page 3"; do
  # shellcheck disable=SC2086
  "$F" search --server "$ADDR" --deadline-ms 60000 --k 10 $sflag --json 'boundary layer flow' > "$T/page.json" \
    || { echo "result page ($sflag) failed"; exit 1; }
done
"$F" search --server "$ADDR" --deadline-ms 60000 --k 10 --skip-models --host-cap 1 --explain 'heat transfer' \
  > "$T/cap.out" 2>&1; grep -q 'host cap 1 per 10' "$T/cap.out" || { echo "host cap not in the diversity note:"; tail -n 20 "$T/cap.out"; exit 1; }
"$F" search --server "$ADDR" --deadline-ms 60000 --k 10 --json 'pressure distribution' \
  > "$T/blend.out" 2>&1; grep -q '"slot_rule": "news_top"' "$T/blend.out" || { echo "no news block placed:"; tail -n 20 "$T/blend.out"; exit 1; }
head -n 40 "$DATA/queries.tsv" > "$T/q.tsv"
"$F" search --server "$ADDR" --deadline-ms 60000 --queries "$T/q.tsv" --k 100 --run-out "$T/run.trec" 2>/dev/null || { echo "batch failed"; exit 1; }
"$F" cluster down --dir "$T/run" >/dev/null
sleep 1
status=0
n=0
for log in "$T"/vg-*.log; do
  [ -f "$log" ] || continue
  n=$((n + 1))
  cmd=$(grep -m1 'Command:' "$log" | sed 's/.*Command: //' | awk '{print $1}' | xargs -r basename)
  errs=$(grep -m1 'ERROR SUMMARY' "$log" | sed 's/.*ERROR SUMMARY: \([0-9]*\).*/\1/')
  def=$(grep -m1 'definitely lost:' "$log" | sed 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/')
  ind=$(grep -m1 'indirectly lost:' "$log" | sed 's/.*indirectly lost: \([0-9,]*\) bytes.*/\1/')
  pos=$(grep -m1 'possibly lost:' "$log" | sed 's/.*possibly lost: \([0-9,]*\) bytes.*/\1/')
  leaks_ok=$(grep -q 'All heap blocks were freed' "$log" && echo yes || echo no)
  echo "$cmd: errors=${errs:-?} definitely=${def:-0} indirectly=${ind:-0} possibly=${pos:-0} all_freed=$leaks_ok"
  if [ "${errs:-x}" != 0 ]; then status=1; fi
  if [ "$leaks_ok" = no ] && { [ "${def:-0}" != 0 ] || [ "${ind:-0}" != 0 ] || [ "${pos:-0}" != 0 ]; }; then status=1; fi
  grep -q 'ERROR SUMMARY' "$log" || { echo "  (no summary: process did not exit cleanly)"; status=1; }
done
[ "$n" -ge 4 ] || { echo "expected 4 valgrind logs (1 coordinator + 3 shards), got $n"; status=1; }
[ $status -eq 0 ] && echo "valgrind: clean" || echo "valgrind: FAILED"
exit $status
