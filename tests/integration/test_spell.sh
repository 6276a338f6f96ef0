#!/usr/bin/env bash
# Spelling through the cluster (docs/query-language.md "Spelling"): with
# IDXDIR/spell.dict, funnel cluster up gives the coordinator the dictionary;
# a misspelt query is searched corrected (auto, the default) and returns
# what the corrected query returns; suggest searches as written and offers
# did_you_mean; off searches as written; the query language survives the
# rewrite; a clean query is untouched; a damaged dictionary stops the start.
source "$(dirname "$0")/lib.sh"

I=$(build_index idx 2) || exit 1
"$FUNNEL" spell build --input "$DATA/cranfield/corpus.jsonl" --out "$I/spell.dict" >/dev/null 2>&1 || fail "spell build"
A=$(cluster_up "$I" "$T/run") || fail "cluster up"
j() { "$FUNNEL" search --server "$A" --k 10 --json "$@"; }
j 'heat trasnfer in laminar bondary layers' >"$T/auto.json" || fail "auto search"
j 'heat transfer in laminar boundary layers' >"$T/clean.json" || fail "clean search"
j --spell suggest 'heat trasnfer in laminar bondary layers' >"$T/suggest.json" || fail "suggest search"
j --spell off 'heat trasnfer in laminar bondary layers' >"$T/off.json" || fail "off search"
j '"heat trasnfer" AND NOT lamnar' >"$T/lang.json" || fail "language search"
"$PY" - "$T" <<'PY' || fail "spelling responses"
import json, sys
d = sys.argv[1]
r = {n: json.load(open(f"{d}/{n}.json")) for n in ("auto", "clean", "suggest", "off", "lang")}
ids = lambda x: [h["id"] for h in x["hits"]]
a, c, s, o, l = r["auto"], r["clean"], r["suggest"], r["off"], r["lang"]
assert a["original_query"] == "heat trasnfer in laminar bondary layers", a.get("original_query")
assert a["rewritten_query"] == "heat transfer in laminar boundary layers", a.get("rewritten_query")
assert [(x["from"], x["to"]) for x in a["corrections"]] == [("trasnfer", "transfer"), ("bondary", "boundary")], a["corrections"]
assert ids(a) == ids(c) and a["total_matches"] == c["total_matches"], "auto must search the corrected query"
assert not c.get("corrections") and c["rewritten_query"] == c["original_query"], "a clean query is untouched"
assert s["did_you_mean"] == "heat transfer in laminar boundary layers" and s["rewritten_query"] == s["original_query"]
assert ids(s) == ids(o) and ids(o) != ids(c), "suggest and off search as written"
assert not o.get("corrections") and not o.get("did_you_mean")
assert l["rewritten_query"] == '"heat transfer" AND NOT laminar', l["rewritten_query"]
print("spelling:", a["rewritten_query"], "|", l["rewritten_query"])
PY
"$FUNNEL" cluster down --dir "$T/run" >/dev/null
# a damaged dictionary: the coordinator refuses to start, naming the file
printf 'xx' | dd of="$I/spell.dict" bs=1 seek=40 conv=notrunc 2>/dev/null
"$FUNNEL" cluster up --index "$I" --dir "$T/run2" >/dev/null 2>"$T/up2.err" && fail "started with a damaged dictionary"
grep -rq "spell.dict" "$T/run2"/coordinator.log "$T/up2.err" 2>/dev/null || { cat "$T/up2.err"; fail "the error does not name the dictionary"; }
ok "spelling: auto corrects (= the clean query's hits), suggest offers, off leaves; language kept; damage refused"

# Query intent (funnel intent train, IDXDIR/intent.model): every response
# carries the verticals' probabilities; a query about heat is more "news"
# than one about supersonic flow (the labels' rule)
I2=$(build_index idx2 2) || exit 1
"$PY" - "$DATA/cranfield/queries.tsv" "$T/labels.tsv" <<'PY'
import sys
with open(sys.argv[2], "w") as out:
    for line in open(sys.argv[1]):
        qid, text = line.rstrip("\n").split("\t")[:2]
        out.write(f"{qid}\t{'news' if 'heat' in text.lower() else 'web'}\n")
PY
"$FUNNEL" intent train --queries "$DATA/cranfield/queries.tsv" --labels "$T/labels.tsv" --out "$I2/intent.model" \
    >"$T/intent.out" 2>&1 || { cat "$T/intent.out"; fail "intent train"; }
A2=$(cluster_up "$I2" "$T/run3") || fail "cluster up with an intent model"
"$FUNNEL" search --server "$A2" --k 3 --json 'heat conduction in a slab' >"$T/intent.json" || fail "search with intent"
"$FUNNEL" search --server "$A2" --k 3 --json 'supersonic flow past a cone' >"$T/intent2.json" || fail "search with intent"
"$PY" - "$T/intent.json" "$T/intent2.json" <<'PY' || fail "intent scores"
import json, sys
r, r2 = (json.load(open(p)) for p in sys.argv[1:3])
news = lambda x: {i["vertical"]: i["score"] for i in x["intent"]}["news"]
for x in (r, r2):
    it = x["intent"]
    assert len(it) == 2 and abs(sum(i["score"] for i in it) - 1) < 1e-9, it
    assert it[0]["score"] >= it[1]["score"], it
    assert "intent " + it[0]["vertical"] in x["stages"][0]["note"], x["stages"][0]
assert news(r) > news(r2) + 0.1, (r["intent"], r2["intent"])
print("intent:", r["intent"], "|", r2["intent"])
PY
ok "intent: the coordinator scores the query's verticals (most probable first) and says so in analyze"
