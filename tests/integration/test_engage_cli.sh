#!/usr/bin/env bash
# The engagement loop end to end (docs/engagement.md): cranfield's 225 queries
# through a 1-shard cluster give a BM25 run; its top 10 a query become
# impressions (engage_impressions.py: features bm25f, grade_hint = grade +
# noise, noise); `funnel clicks simulate` clicks on them from the qrels (20
# sessions a query, both ways: --sessions 20, and 20 impression lines);
# `funnel traindata` turns them into pointwise and pairwise training files that
# `funnel train` takes; a model trained from the clicks of the odd queries
# ranks the even queries' pages better than BM25 (it learns grade_hint from
# clicks alone); bad lines are FILE:LINE errors.
source "$(dirname "$0")/lib.sh"

Q=$DATA/cranfield/qrels.trec
GEN=$HERE/engage_impressions.py
[ -f "$Q" ] || { echo "SKIP: no $Q"; exit 77; }

# ---- help and usage ----
"$FUNNEL" --help | grep -q '^  clicks ' || fail "funnel --help lists clicks"
"$FUNNEL" --help | grep -q '^  traindata ' || fail "funnel --help lists traindata"
"$FUNNEL" clicks simulate --help | grep -q -- '--sessions N' || fail "clicks simulate --help"
"$FUNNEL" traindata --help | grep -q -- '--mode pointwise' || fail "traindata --help"
"$FUNNEL" clicks simulate --impressions x --qrels "$Q" --out "$T/c" >/dev/null 2>&1; [ $? -eq 2 ] || fail "no --model: exit 2"
"$FUNNEL" traindata --impressions x --clicks y --mode frob --out "$T/f" >/dev/null 2>&1; [ $? -eq 2 ] || fail "--mode frob: exit 2"
ok "help and usage errors"

# ---- impressions from a real BM25 run ----
IDX=$(build_index cran 1)
ADDR=$(cluster_up "$IDX" "$T/run") || fail "cluster up"
"$FUNNEL" search --server "$ADDR" --queries "$DATA/cranfield/queries.tsv" --k 10 --run-out "$T/bm25.trec" \
    2>"$T/search.err" || { cat "$T/search.err"; fail "batch search"; }
"$FUNNEL" cluster down --dir "$T/run" >/dev/null 2>&1
"$PY" "$GEN" "$T/bm25.trec" "$Q" "$T/imp1.jsonl" || fail "impressions"
"$PY" "$GEN" "$T/bm25.trec" "$Q" "$T/imp20.jsonl" --repeat 20 || fail "impressions x 20"
[ "$(wc -l <"$T/imp1.jsonl")" -eq 225 ] && [ "$(wc -l <"$T/imp20.jsonl")" -eq 4500 ] || fail "impression lines"
ok "225 impressions (and 4500: 20 a query) from the cluster's BM25 run"

# ---- clicks: 20 sessions a query, two ways, the same clicks ----
"$FUNNEL" clicks simulate --impressions "$T/imp1.jsonl" --qrels "$Q" --model cascade --seed 1 --sessions 20 \
    --impressions-out "$T/imp1x20.jsonl" --out "$T/c1.jsonl" >"$T/sim.out" || fail "simulate --sessions 20"
grep -q '^simulated 4500 sessions (225 impressions x 20), cascade, seed 1: [0-9]* clicks' "$T/sim.out" \
    || { cat "$T/sim.out"; fail "simulate summary"; }
"$FUNNEL" clicks simulate --impressions "$T/imp20.jsonl" --qrels "$Q" --model cascade --seed 1 \
    --out "$T/c20.jsonl" >/dev/null || fail "simulate on 20 lines a query"
# click times follow the impressions' times, which differ between the two files
notime() { sed -e 's/"time":[0-9.]*,//' -e 's/"user":"u[0-9]*",//' "$1"; }
cmp -s <(notime "$T/c1.jsonl") <(notime "$T/c20.jsonl") || fail "--sessions 20 differs from 20 impression lines"
cmp -s <(notime "$T/imp1x20.jsonl") <(notime "$T/imp20.jsonl") || fail "--impressions-out differs from the repeated lines"
"$FUNNEL" clicks simulate --impressions "$T/imp20.jsonl" --qrels "$Q" --model cascade --seed 1 \
    --out "$T/again.jsonl" >/dev/null && cmp -s "$T/c20.jsonl" "$T/again.jsonl" || fail "same seed, other clicks"
"$FUNNEL" clicks simulate --impressions "$T/imp20.jsonl" --qrels "$Q" --model cascade --seed 2 \
    --out "$T/seed2.jsonl" >/dev/null && ! cmp -s "$T/c20.jsonl" "$T/seed2.jsonl" || fail "seed 2 gave seed 1's clicks"
"$FUNNEL" clicks simulate --impressions "$T/imp20.jsonl" --qrels "$Q" --model pbm --seed 1 \
    --out "$T/pbm.jsonl" >"$T/pbm.out" || fail "simulate pbm"
N=$(wc -l <"$T/c20.jsonl")
[ "$N" -gt 3000 ] || fail "only $N cascade clicks on 4500 sessions"
ok "cascade: $N clicks, identical with --sessions 20 and with 20 lines; deterministic; pbm: $(wc -l <"$T/pbm.jsonl") clicks"

# clicks by grade: the more relevant, the more clicks a shown document gets
"$PY" - "$T/imp20.jsonl" "$T/c20.jsonl" "$Q" <<'EOF' || fail "clicks by grade"
import json, sys
g = {}
for l in open(sys.argv[3]):
    p = l.split(); g[(p[0], p[2])] = max(0, int(p[3]))
shown, clicked = [0] * 5, [0] * 5
for l in open(sys.argv[1]):
    im = json.loads(l); q = im["request_id"].split("/")[0]
    for h in im["hits"]: shown[min(g.get((q, h["id"]), 0), 4)] += 1
for l in open(sys.argv[2]):
    c = json.loads(l); q = c["request_id"].split("/")[0]
    clicked[min(g.get((q, c["id"]), 0), 4)] += 1
ctr = [c / s for c, s in zip(clicked, shown)]
print("ok: click-through by grade 0..4:", " ".join("%.3f" % x for x in ctr))
sys.exit(0 if all(ctr[i] < ctr[i + 1] for i in range(4)) else 1)
EOF

# ---- training data ----
"$FUNNEL" traindata --impressions "$T/imp20.jsonl" --clicks "$T/c20.jsonl" --mode pointwise --out "$T/pw.svm" \
    >"$T/td.out" || fail "traindata pointwise"
grep -q '^traindata pointwise: 4500 impressions, [0-9]* clicks, 225 queries, 2250 rows, 3 features; labels 0:' "$T/td.out" \
    || { cat "$T/td.out"; fail "traindata summary"; }
[ "$(head -n 1 "$T/pw.svm")" = "# features: bm25f grade_hint noise" ] || fail "header line"
grep -v '^#' "$T/pw.svm" | grep -qv '^[0-4] qid:[0-9]* 1:[-0-9.e]* 2:[-0-9.e]* 3:[-0-9.e]* # [0-9]*$' \
    && fail "a row is not LABEL qid:N 1:V 2:V 3:V # DOCID"
# labels follow the grades: the mean label rises with the grade
"$PY" - "$T/pw.svm" "$Q" <<'EOF' || fail "pointwise labels by grade"
import sys
g = {}
for l in open(sys.argv[2]):
    p = l.split(); g[(p[0], p[2])] = max(0, int(p[3]))
s, n = [0.0] * 5, [0] * 5
for l in open(sys.argv[1]):
    if l.startswith("#"): continue
    body, doc = l.split("#"); t = body.split()
    gr = min(g.get((t[1][4:], doc.strip()), 0), 4)
    s[gr] += int(t[0]); n[gr] += 1
m = [a / b for a, b in zip(s, n)]
print("ok: mean pointwise label by grade 0..4:", " ".join("%.2f" % x for x in m))
# grades 3 and 4 both mostly reach the top labels: 4 need not be far above 3
sys.exit(0 if all(m[i] < m[i + 1] for i in range(3)) and m[4] > m[3] - 0.25 and m[4] > m[0] + 2 else 1)
EOF
"$FUNNEL" traindata --impressions "$T/imp20.jsonl" --clicks "$T/c20.jsonl" --mode pairwise --out "$T/pp.svm" \
    >"$T/tdp.out" || fail "traindata pairwise"
grep -q 'pairs kept' "$T/tdp.out" || { cat "$T/tdp.out"; fail "pairwise summary"; }
for m in pw pp; do
    "$FUNNEL" train --data "$T/$m.svm" --objective lambdarank --trees 20 --out "$T/$m.model" >"$T/train.$m" 2>&1 \
        || { cat "$T/train.$m"; fail "funnel train on the $m data"; }
done
# the trainer read the header: the model carries the feature names
"$FUNNEL" model info "$T/pw.model" | grep -qx 'named_features	3' || fail "the model lacks the header's feature names"
ok "pointwise: $(cut -d';' -f2 "$T/td.out" | sed 's/^ //'); pairwise: $(grep -o '[0-9]* pairs kept' "$T/tdp.out"); both train, names kept"

# ---- the loop learns: clicks of the odd queries, judged pages of the even ones ----
awk '$1 % 2 == 1 {print $1}' "$DATA/cranfield/queries.tsv" >"$T/odd"
"$PY" "$GEN" "$T/bm25.trec" "$Q" "$T/odd20.jsonl" --repeat 20 --qids "$T/odd" || fail "odd impressions"
"$FUNNEL" clicks simulate --impressions "$T/odd20.jsonl" --qrels "$Q" --model cascade --seed 7 \
    --out "$T/odd.clicks" >/dev/null || fail "simulate odd"
"$FUNNEL" traindata --impressions "$T/odd20.jsonl" --clicks "$T/odd.clicks" --mode pointwise \
    --out "$T/odd.svm" >/dev/null || fail "traindata odd"
"$FUNNEL" train --data "$T/odd.svm" --objective lambdarank --trees 50 --every 0 --out "$T/odd.model" >/dev/null 2>&1 \
    || fail "train odd"
# the even queries' pages with their qrels grades as labels (same vectors)
"$PY" - "$T/imp1.jsonl" "$Q" "$T/even.svm" <<'EOF' || fail "judged pages"
import json, sys
g = {}
for l in open(sys.argv[2]):
    p = l.split(); g[(p[0], p[2])] = max(0, int(p[3]))
with open(sys.argv[3], "w") as o:
    for l in open(sys.argv[1]):
        im = json.loads(l); q = im["request_id"]
        if int(q) % 2: continue
        for h in im["hits"]:
            o.write("%d qid:%s %s # %s\n" % (g.get((q, h["id"]), 0), q,
                    " ".join("%d:%s" % (i + 1, v) for i, v in enumerate(h["f"])), h["id"]))
EOF
"$FUNNEL" predict --model "$T/odd.model" --data "$T/even.svm" >"$T/even.model.scores" || fail "predict"
awk '{split($3, a, ":"); print a[2]}' "$T/even.svm" >"$T/even.bm25.scores"
M=$("$FUNNEL" rank-eval --data "$T/even.svm" --scores "$T/even.model.scores" | awk '$1=="ndcg@10"{print $2}')
B=$("$FUNNEL" rank-eval --data "$T/even.svm" --scores "$T/even.bm25.scores" | awk '$1=="ndcg@10"{print $2}')
awk -v m="$M" -v b="$B" 'BEGIN{exit !(m > b + 0.05)}' || fail "model from clicks ndcg@10 $M, BM25 $B"
ok "clicks of 113 odd queries -> model: ndcg@10 $M on the even queries' pages, BM25 order $B"

# ---- bad lines: FILE:LINE, exit 1, nothing written; --on-error skip ----
cp "$T/c20.jsonl" "$T/bad.jsonl"
echo '{"request_id":"1/1","id":"no-such-doc","position":2,"dwell":3}' >>"$T/bad.jsonl"
L=$(wc -l <"$T/bad.jsonl")
"$FUNNEL" traindata --impressions "$T/imp20.jsonl" --clicks "$T/bad.jsonl" --mode pointwise --out "$T/bad.svm" \
    >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] || fail "bad click: exit $rc, want 1"
grep -q "^funnel traindata: error: $T/bad.jsonl:$L: request \"1/1\" showed \"[0-9]*\" at position 2, not \"no-such-doc\"$" "$T/err" \
    || { cat "$T/err"; fail "bad click message"; }
[ ! -e "$T/bad.svm" ] && [ ! -e "$T/bad.svm.tmp" ] || fail "a failed traindata left a file"
"$FUNNEL" traindata --impressions "$T/imp20.jsonl" --clicks "$T/bad.jsonl" --mode pointwise --out "$T/bad.svm" \
    --on-error skip >"$T/skip.out" 2>"$T/err" || fail "--on-error skip"
grep -q "bad.jsonl:$L: .* (skipped)$" "$T/err" && grep -q ', 1 bad click lines skipped' "$T/skip.out" \
    || { cat "$T/err" "$T/skip.out"; fail "skip report"; }
cmp -s "$T/bad.svm" "$T/pw.svm" || fail "skipping the bad line changed the rest"
sed '17s/"position":3/"position":4/' "$T/imp1.jsonl" >"$T/badimp.jsonl"
"$FUNNEL" clicks simulate --impressions "$T/badimp.jsonl" --qrels "$Q" --model pbm --out "$T/x.jsonl" >/dev/null 2>"$T/err"
[ $? -eq 1 ] && grep -q "badimp.jsonl:17: hits\[2\]: position 4 after 2 (positions must be contiguous, top first)" "$T/err" \
    || { cat "$T/err"; fail "bad impression line"; }
sed 's/"features":\[[^]]*\],//; s/,"f":\[[^]]*\]//g' "$T/imp1.jsonl" >"$T/novec.jsonl"
"$FUNNEL" traindata --impressions "$T/novec.jsonl" --clicks /dev/null --mode pointwise --out "$T/nv.svm" >/dev/null 2>"$T/err"
[ $? -eq 1 ] && grep -q "no feature vectors" "$T/err" || { cat "$T/err"; fail "impressions without vectors"; }
ok "bad lines: $(head -n 1 "$T/err")"
