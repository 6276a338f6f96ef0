#!/usr/bin/env bash
# Query intent as stage-2 features (issue 10; docs/ranking.md "intent_doc"): cranfield with
# verticals that follow the words, an intent model trained by the CLI, a cluster that loads it
# (IDXDIR/intent.model). `funnel features --stage 2` rows must carry, for every hit, intent_doc =
# the model's probability of that document's vertical for that query and intent_max = the
# query's largest probability, exactly as `funnel intent predict` gives them.
source "$(dirname "$0")/lib.sh"

"$PY" - "$DATA/cranfield/corpus.jsonl" "$T/c.jsonl" <<'EOF'
import json, sys
out = open(sys.argv[2], "w")
for line in open(sys.argv[1]):
    d = json.loads(line)
    text = (d.get("title", "") + " " + d.get("body", "")).lower()
    d["vertical"] = "news" if "shock" in text else "image" if "heat" in text else "web"
    out.write(json.dumps(d) + "\n")
EOF
Q=$DATA/cranfield/queries.tsv
"$FUNNEL" index build --input "$T/c.jsonl" --shards 2 --out "$T/idx" >"$T/build.log" 2>&1 || { cat "$T/build.log"; fail "build"; }
"$FUNNEL" intent train --queries "$Q" --corpus "$T/c.jsonl" --out "$T/idx/intent.model" >"$T/train.log" 2>&1 \
    || { cat "$T/train.log"; fail "intent train"; }
"$FUNNEL" intent predict --model "$T/idx/intent.model" --queries "$Q" >"$T/pred.tsv" 2>"$T/pred.err" \
    || { cat "$T/pred.err"; fail "intent predict"; }
A=$(cluster_up "$T/idx" "$T/run") || fail "cluster up"
"$FUNNEL" features --server "$A" --queries "$Q" --qrels "$DATA/cranfield/qrels.trec" --stage 2 --out "$T/f.svm" \
    >"$T/feat.log" 2>&1 || { cat "$T/feat.log"; fail "features --stage 2"; }
"$FUNNEL" cluster down --dir "$T/run" >/dev/null || fail "down"

# columns (1-based in the file) by name, from the registry as `funnel model info` prints it is not
# needed: docs/ranking.md fixes intent_doc at column 39 and intent_max at 40 (0-based)
"$PY" - "$T/c.jsonl" "$T/pred.tsv" "$T/f.svm" <<'EOF' || fail "intent columns differ from funnel intent predict"
import json, sys
vert = {}
for line in open(sys.argv[1]):
    d = json.loads(line); vert[d["id"]] = d["vertical"]
pred = {}
for line in open(sys.argv[2]):
    qid, best, rest = line.rstrip("\n").split("\t", 2)
    sc = {}
    for tok in rest.replace(",", " ").split():
        name, _, v = tok.rpartition(":")
        sc[name] = float(v)
    pred[str(int(qid))] = sc
rows = checked = 0
seen = set()
for line in open(sys.argv[3]):
    if line.startswith("#"): continue
    body, _, doc = line.rstrip("\n").partition(" # ")
    parts = body.split()
    qid = parts[1].split(":")[1]
    f = {int(k): float(v) for k, v in (p.split(":") for p in parts[2:])}
    rows += 1
    sc = pred[qid]
    want_doc, want_max = sc[vert[doc]], max(sc.values())
    got_doc, got_max = f.get(40), f.get(41)
    if got_doc is None or got_max is None or abs(got_doc - want_doc) > 1e-5 or abs(got_max - want_max) > 1e-5:
        print("query", qid, "doc", doc, vert[doc], "got", got_doc, got_max, "want", want_doc, want_max); sys.exit(1)
    seen.add(round(got_doc, 4)); checked += 1
print("%d rows, %d checked, %d distinct intent_doc values" % (rows, checked, len(seen)))
sys.exit(0 if checked > 1000 and len(seen) > 3 else 1)
EOF
ok "intent_doc and intent_max in every stage-2 row equal funnel intent predict's: $(tail -n 1 "$T/feat.log")"
