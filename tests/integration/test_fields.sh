#!/usr/bin/env bash
# Stored fields, snippets and documents by id (issue 10, docs/rpc.md "Stored
# fields"): cranfield, 3 shards behind a coordinator.
#  - search --fields title,url --snippets --json: each hit's title is the
#    corpus's, each snippet mark covers a word that analyzes to a query term;
#    again with a stage-2 model (the two-phase fetch: a re-ranked page)
#  - funnel get of 5 ids: their exact titles and bodies; an unknown id is
#    "not found" with exit 1; a bad field name is INVALID_ARGUMENT
source "$(dirname "$0")/lib.sh"

I=$(build_index idx 3) || exit 1
A=$(cluster_up "$I" "$T/run") || fail "cluster up"
C=$DATA/cranfield/corpus.jsonl

check_page() {   # check_page FILE: titles, fields and snippet marks of a --json page
    "$PY" - "$C" "$1" <<'PYEOF' || fail "fields or snippets of $1"
import json, sys
docs = {}
for line in open(sys.argv[1]):
    d = json.loads(line); docs[d["id"]] = d
r = json.load(open(sys.argv[2]))
hits = r["hits"]
assert len(hits) == 10, len(hits)
stems = ("boundar", "layer")
marks = 0
for h in hits:
    d = docs[h["id"]]
    assert h["fields"].get("title") == d["title"], (h["id"], h["fields"])
    assert ("url" in h["fields"]) == ("url" in d), (h["id"], h["fields"])
    sn = h["snippet"].encode()
    assert sn, h["id"]
    m = h["snippet_marks"]
    assert len(m) % 2 == 0 and m, (h["id"], m)
    for i in range(0, len(m), 2):
        w = sn[m[i]:m[i + 1]].decode().lower()
        assert any(w.startswith(s) for s in stems), (h["id"], w)
        marks += 1
    # the snippet's words are the body's
    plain = h["snippet"].replace("\u2026", "").strip().split()
    body = " ".join(d["body"].split())
    assert " ".join(plain[1:-1]) in body, (h["id"], h["snippet"][:80])
print("%d hits, %d marks checked" % (len(hits), marks))
PYEOF
}

"$FUNNEL" search --server "$A" 'boundary layer' --fields title,url --snippets --json >"$T/p.json" 2>"$T/p.err" \
    || { cat "$T/p.err"; fail "search --fields --snippets --json"; }
check_page "$T/p.json"
ok "search --fields title,url --snippets --json: the corpus's titles, marks on query words"

# text output: fields as name=JSON lines, the snippet with [[marks]]
"$FUNNEL" search --server "$A" 'boundary layer' --fields title --snippets --k 3 >"$T/p.txt" 2>&1 \
    || { cat "$T/p.txt"; fail "search --fields --snippets (text)"; }
[ "$(grep -c '^        title="' "$T/p.txt")" = 3 ] || { cat "$T/p.txt"; fail "3 title= lines"; }
[ "$(grep -c '^        .*\[\[[Bb]oundar[a-z]*\]\]' "$T/p.txt")" = 3 ] || { cat "$T/p.txt"; fail "3 marked snippets"; }
ok "text output: name=JSON lines and [[marked]] snippets"

# with a stage-2 model the shards send no fields: the page is fetched afterwards
head -n 60 "$DATA/cranfield/queries.tsv" >"$T/train.tsv"
if "$FUNNEL" features --server "$A" --queries "$T/train.tsv" --qrels "$DATA/cranfield/qrels.trec" --stage 2 \
        --window 50 --out "$T/s2.svm" >"$T/f2.err" 2>&1 \
   && "$FUNNEL" train --data "$T/s2.svm" --objective logistic --out "$T/m2.model" >/dev/null 2>&1 \
   && "$FUNNEL" model push --server "$A" --stage 2 --model "$T/m2.model" >"$T/push.out" 2>&1; then
    "$FUNNEL" search --server "$A" 'boundary layer' --fields title,url --snippets --json >"$T/p2.json" 2>"$T/p2.err" \
        || { cat "$T/p2.err"; fail "search with a stage-2 model"; }
    [ "$(json_get "$T/p2.json" '[s["ran"] for s in r["stages"] if s["name"] == "stage2"][0]')" = True ] \
        || fail "stage 2 did not run"
    check_page "$T/p2.json"
    "$FUNNEL" model push --server "$A" --stage 2 --model /dev/null >/dev/null 2>&1 || fail "remove the model"
    ok "with a stage-2 model (two-phase fetch): fields and snippets of the re-ranked page"
else
    cat "$T/f2.err" "$T/push.out" 2>/dev/null
    fail "could not train and push a stage-2 model"
fi

# funnel get: 5 ids, exact titles and bodies, in the order asked
"$FUNNEL" get --server "$A" 1 100 555 1400 42 >"$T/g.out" 2>"$T/g.err" || { cat "$T/g.err"; fail "funnel get"; }
"$PY" - "$C" "$T/g.out" <<'PYEOF' || fail "funnel get output"
import json, sys
docs = {}
for line in open(sys.argv[1]):
    d = json.loads(line); docs[d["id"]] = d
got = [json.loads(l) for l in open(sys.argv[2])]
assert [g["id"] for g in got] == ["1", "100", "555", "1400", "42"], [g["id"] for g in got]
for g in got:
    assert g["title"] == docs[g["id"]]["title"] and g["body"] == docs[g["id"]]["body"], g["id"]
    assert g == docs[g["id"]], g["id"]   # every field: the document as indexed
PYEOF
"$FUNNEL" get --server "$A" 7 --fields title >"$T/g1.out" || fail "get --fields title"
"$PY" -c 'import json,sys; d=json.loads(open(sys.argv[1]).read()); assert sorted(d) == ["id", "title"], d' "$T/g1.out" \
    || fail "get --fields title: $(cat "$T/g1.out")"
ok "funnel get: 5 documents exactly as indexed; --fields title only"

"$FUNNEL" get --server "$A" 3 no-such-doc >"$T/nf.out" 2>&1
rc=$?
[ $rc = 1 ] || fail "unknown id: exit $rc, want 1"
grep -qx 'not found: no-such-doc' "$T/nf.out" || fail "unknown id: $(cat "$T/nf.out")"
grep -q '^{"id":"3"' "$T/nf.out" || fail "the found one is still printed: $(cat "$T/nf.out")"
ok "funnel get of an unknown id: not found, exit 1"

"$FUNNEL" search --server "$A" 'boundary layer' --fields 'title,ti-tle' >"$T/bad.out" 2>&1 && fail "bad field accepted"
grep -q 'INVALID_ARGUMENT: fields\[1\]: "ti-tle"' "$T/bad.out" || fail "bad field: $(cat "$T/bad.out")"
"$FUNNEL" get --server "$A" 1 --fields 'a b' >"$T/bad2.out" 2>&1 && fail "bad get field accepted"
grep -q 'INVALID_ARGUMENT: fields\[0\]' "$T/bad2.out" || fail "bad get field: $(cat "$T/bad2.out")"
ok "bad field names: INVALID_ARGUMENT naming them"
