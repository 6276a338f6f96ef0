#!/usr/bin/env bash
# Filters end to end (docs/query-language.md "Filters"): cranfield with
# attributes, 3 shards behind a coordinator. A filtered batch equals the
# unfiltered selection order cut to the documents that pass (evaluated here,
# in Python, from the corpus JSON); one query with --json; malformed
# filters are INVALID_ARGUMENT naming the column.
source "$(dirname "$0")/lib.sh"

# the corpus: cranfield with vertical, lang, labels, popularity, published_at
"$PY" - "$DATA/cranfield/corpus.jsonl" "$T/c.jsonl" <<'EOF'
import json, random, sys
rnd = random.Random(7)
out = open(sys.argv[2], "w")
for line in open(sys.argv[1]):
    d = json.loads(line)
    d["vertical"] = rnd.choice(["web"] * 6 + ["news", "news", "image", "video"])
    if rnd.random() < 0.8: d["lang"] = rnd.choice(["en", "de"])
    d["labels"] = rnd.sample(["a", "b", "c", "sports"], rnd.randint(0, 3))
    d["popularity"] = round(rnd.random() * 10, 2)
    if rnd.random() < 0.9: d["published_at"] = 1500000000 + rnd.randint(0, 100000)
    out.write(json.dumps(d) + "\n")
EOF
"$FUNNEL" index build --input "$T/c.jsonl" --shards 3 --out "$T/idx" >"$T/build.log" 2>&1 || { cat "$T/build.log"; fail "build"; }
A=$(cluster_up "$T/idx" "$T/run") || fail "cluster up"
Q=$DATA/cranfield/queries.tsv

# the reference: every query's unfiltered selection order (k = all), then
# each filter applied to it in Python
"$FUNNEL" search --server "$A" --queries "$Q" --k 1400 --skip-models --keep-duplicates --run-out "$T/all.trec" 2>"$T/all.err" \
    || { cat "$T/all.err"; fail "unfiltered batch"; }
check() {   # check FILTER PYEXPR(d)
    "$FUNNEL" search --server "$A" --queries "$Q" --k 100 --skip-models --keep-duplicates --filter "$1" --run-out "$T/f.trec" \
        2>"$T/f.err" || { cat "$T/f.err"; fail "batch with --filter '$1'"; }
    "$PY" - "$T/c.jsonl" "$T/all.trec" "$T/f.trec" "$2" "$1" <<'EOF' || fail "filter '$1' differs from the reference"
import json, sys
docs = {}
for line in open(sys.argv[1]):
    d = json.loads(line); docs[d["id"]] = d
keep = eval("lambda d: " + sys.argv[4])
def run(p):
    r = {}
    for line in open(p):
        q, _, doc, rank, score, _ = line.split()
        r.setdefault(q, []).append(doc)
    return r
allr, got = run(sys.argv[2]), run(sys.argv[3])
n = bad = 0
for q, lst in allr.items():
    want = [x for x in lst if keep(docs[x])][:100]
    if got.get(q, []) != want:
        bad += 1
        if bad < 3: print("query", q, "want", want[:5], "got", got.get(q, [])[:5])
    n += len(want)
print("filter %r: %d queries, %d hits, %d differ" % (sys.argv[5], len(allr), n, bad))
sys.exit(1 if bad or n == 0 else 0)
EOF
}
check 'vertical:news' 'd["vertical"] == "news"'
check 'vertical:news,image lang:en' 'd["vertical"] in ("news", "image") and d.get("lang") == "en"'
check 'labels:all(a,b)' '"a" in d["labels"] and "b" in d["labels"]'
check '-labels:sports popularity>=5' '"sports" not in d["labels"] and d["popularity"] >= 5'
check 'published_at:1500020000..1500040000 OR vertical:video' \
      '1500020000 <= d.get("published_at", -1) <= 1500040000 or d["vertical"] == "video"'
check 'id:1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20' 'd["id"] in [str(i) for i in range(1, 21)]'
ok "filtered batches equal the unfiltered order cut to the passing documents"

# one query, --json: every hit passes
"$FUNNEL" search --server "$A" 'boundary layer' --filter 'vertical:news' --k 20 --json >"$T/one.json" 2>"$T/one.err" \
    || { cat "$T/one.err"; fail "one query with --filter"; }
"$PY" - "$T/c.jsonl" "$T/one.json" <<'EOF' || fail "--json hits do not pass"
import json, sys
docs = {json.loads(l)["id"]: json.loads(l) for l in open(sys.argv[1])}
r = json.load(open(sys.argv[2]))
assert len(r["hits"]) == 20, len(r["hits"])
assert all(docs[h["id"]]["vertical"] == "news" for h in r["hits"])
EOF
ok "one query with --filter --json: 20 hits, all news"

# malformed filters: INVALID_ARGUMENT naming the problem and the column
for f in 'vertical:' 'color:red' 'popularity>=x' '(vertical:news' 'published_at>=1.5' 'vertical:news OR'; do
    "$FUNNEL" search --server "$A" 'boundary layer' --filter "$f" >"$T/bad.out" 2>"$T/bad.err"
    [ $? -eq 1 ] || fail "filter '$f' should fail"
    grep -q "INVALID_ARGUMENT: filter: .*column" "$T/bad.err" || { cat "$T/bad.err"; fail "filter '$f': message"; }
done
ok "malformed filters are INVALID_ARGUMENT with a column: $(head -n 1 "$T/bad.err")"

"$FUNNEL" cluster down --dir "$T/run" >/dev/null || fail "down"
ok "filters"
