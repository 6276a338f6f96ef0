#!/usr/bin/env bash
# Vectors through the cluster (docs/vectors.md), on cranfield with seeded
# random 16-d embeddings (so the truth is known exactly):
# (a) exact k-NN on 1 and 3 shards: the same list, equal to brute force;
# (b) HNSW k-NN on 3 shards: recall@10 against brute force >= 0.95;
# (c) hybrid (text + vector, RRF and weighted): 1 and 3 shards give the same
#     fused lists, and pages are slices of one list;
# (d) one of 3 shards killed: coverage 2/3, partial;
# (e) bad vectors in the corpus are reported FILE:LINE; bad query vectors are
#     INVALID_ARGUMENT naming the problem.
source "$(dirname "$0")/lib.sh"

"$PY" - "$DATA/cranfield/corpus.jsonl" "$DATA/cranfield/queries.tsv" "$T" <<'PY' || fail "making the corpus"
import json, random, sys
src, qsrc, out = sys.argv[1:4]
rnd = random.Random(7)
D = 16
def vec(): return [round(rnd.gauss(0, 1), 5) for _ in range(D)]
with open(f"{out}/corpus.jsonl", "w") as f:
    for line in open(src):
        d = json.loads(line); d["embedding"] = vec(); f.write(json.dumps(d) + "\n")
with open(f"{out}/q.tsv", "w") as f:
    for i, line in enumerate(open(qsrc)):
        if i >= 40: break
        qid, text = line.rstrip("\n").split("\t")[:2]
        f.write(f"{qid}\t{text}\t{' '.join(str(x) for x in vec())}\n")
# bad lines: a wrong dimension, a string, a number no float32 holds, an empty array
with open(f"{out}/bad.jsonl", "w") as f:
    f.write(json.dumps({"id": "a", "title": "ok", "embedding": vec()}) + "\n")
    f.write(json.dumps({"id": "b", "title": "short", "embedding": vec()[:5]}) + "\n")
    f.write('{"id": "c", "title": "str", "embedding": [1, "x", 3]}\n')
    f.write('{"id": "d", "title": "big", "embedding": [1e39' + ", 0" * 15 + "]}\n")
    f.write('{"id": "e", "title": "empty", "embedding": []}\n')
    f.write(json.dumps({"id": "f", "title": "ok too", "embedding": vec()}) + "\n")
PY
for n in 1 3; do
    "$FUNNEL" index build --input "$T/corpus.jsonl" --shards $n --out "$T/idx$n" --metric cosine >"$T/b$n.log" 2>&1 \
        || { cat "$T/b$n.log"; fail "index build ($n shards)"; }
    grep -q "vectors: 1400 of dimension 16, metric cosine" "$T/b$n.log" || { cat "$T/b$n.log"; fail "vectors line"; }
done
"$FUNNEL" index verify "$T/idx3" >/dev/null || fail "verify of the vector index"
A1=$(cluster_up "$T/idx1" "$T/run1") || fail "cluster up (1 shard)"
A3=$(cluster_up "$T/idx3" "$T/run3") || fail "cluster up (3 shards)"

# (a), (b)
for n in 1 3; do
    eval "A=\$A$n"
    "$FUNNEL" search --server "$A" --queries "$T/q.tsv" --vector-only --knn-exact --k 10 --run-out "$T/ex$n.trec" \
        --tag ex 2>"$T/ex$n.err" || { cat "$T/ex$n.err"; fail "exact k-NN batch ($n shards)"; }
done
"$FUNNEL" search --server "$A3" --queries "$T/q.tsv" --vector-only --k 10 --run-out "$T/hnsw.trec" --tag h \
    2>"$T/h.err" || { cat "$T/h.err"; fail "HNSW k-NN batch"; }
"$PY" - "$T" <<'PY' || fail "k-NN results"
import json, math, sys
T = sys.argv[1]
docs = [json.loads(l) for l in open(f"{T}/corpus.jsonl")]
def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
def run(p):
    r = {}
    for l in open(p):
        q, _, d, rank, s, _ = l.split(); r.setdefault(q, []).append((d, float(s)))
    return r
e1, e3, h = run(f"{T}/ex1.trec"), run(f"{T}/ex3.trec"), run(f"{T}/hnsw.trec")
bad = 0; rec = []
for line in open(f"{T}/q.tsv"):
    qid, _, v = line.rstrip("\n").split("\t"); v = [float(x) for x in v.split()]
    truth = sorted(((-cos(v, d["embedding"]), d["id"]) for d in docs))[:10]
    tids = [d for _, d in truth]
    if e1.get(qid) != e3.get(qid):
        print("query", qid, "1 and 3 shards differ", e1.get(qid), e3.get(qid)); bad += 1
    got = [d for d, _ in e1.get(qid, [])]
    # float32 scores: a swap at a near-tie is rounding, not a miss
    if got != tids and not (set(got) == set(tids) and all(abs(s + t[0]) < 1e-5 for (_, s), t in zip(e1[qid], truth))):
        print("query", qid, "exact k-NN is not brute force:", got, tids); bad += 1
    if any(abs(s + t[0]) > 1e-5 for (_, s), t in zip(e1.get(qid, []), truth)):
        print("query", qid, "similarities differ from brute force"); bad += 1
    rec.append(len(set(d for d, _ in h.get(qid, [])) & set(tids)) / 10)
r = sum(rec) / len(rec)
print(f"exact: {len(rec)} queries, {bad} bad; HNSW recall@10 {r:.4f}")
sys.exit(1 if bad or r < 0.95 else 0)
PY
ok "exact k-NN: 1 shard == 3 shards == brute force; HNSW recall@10 >= 0.95"

# (c) hybrid: the same fused list on 1 and 3 shards (exact neighbours), RRF and weighted
for fu in rrf weighted; do
    for n in 1 3; do
        eval "A=\$A$n"
        "$FUNNEL" search --server "$A" --queries "$T/q.tsv" --knn-exact --fusion $fu --k 30 \
            --run-out "$T/hy-$fu-$n.trec" --tag hy 2>"$T/hy$n.err" || { cat "$T/hy$n.err"; fail "hybrid $fu ($n)"; }
    done
    cmp -s <(cut -d' ' -f1-5 "$T/hy-$fu-1.trec") <(cut -d' ' -f1-5 "$T/hy-$fu-3.trec") \
        || { diff <(cut -d' ' -f1-5 "$T/hy-$fu-1.trec") <(cut -d' ' -f1-5 "$T/hy-$fu-3.trec") | head; fail "hybrid $fu: 1 and 3 shards differ"; }
    [ "$(wc -l < "$T/hy-$fu-3.trec")" -ge 1000 ] || fail "hybrid $fu: too few hits"
done
V=$(sed -n 3p "$T/q.tsv" | cut -f3); Q=$(sed -n 3p "$T/q.tsv" | cut -f2)
"$FUNNEL" search --server "$A3" "$Q" --vector "$V" --knn-exact --k 20 --json >"$T/p0.json" || fail "hybrid page 0"
"$FUNNEL" search --server "$A3" "$Q" --vector "$V" --knn-exact --k 10 --page 1 --json >"$T/p1.json" || fail "hybrid page 1"
[ "$(json_get "$T/p0.json" '[h["id"] for h in r["hits"]][10:]')" = "$(json_get "$T/p1.json" '[h["id"] for h in r["hits"]]')" ] \
    || fail "page 1 of 10 is not ranks 11-20"
[ "$(json_get "$T/p0.json" 'sum(1 for h in r["hits"] if h.get("from_text") or h.get("from_vector"))')" = 20 ] || fail "every fused hit says which list it came from"
ok "hybrid RRF and weighted: 1 shard == 3 shards; pages are slices of one fused list"

# (e) bad query vectors and bad corpus lines
out=$("$FUNNEL" search --server "$A3" --vector "1 2 3" 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "INVALID_ARGUMENT" && echo "$out" | grep -q "16" \
    || fail "a 3-number vector: $out"
out=$("$FUNNEL" search --server "$A3" --vector "1 2 nan" 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "number 3" || fail "a nan in --vector: $out"
"$FUNNEL" index build --input "$T/bad.jsonl" --shards 1 --out "$T/bad.idx" >"$T/bad.log" 2>&1 || { cat "$T/bad.log"; fail "build with bad lines (skip)"; }
for want in 'bad.jsonl:2: "embedding" has 5 numbers, the index'"'"'s dimension is 16' \
            'bad.jsonl:3: "embedding"\[1\] is not a number' \
            'bad.jsonl:4: "embedding"\[0\] = 1e+39 is not a finite float32' \
            'bad.jsonl:5: "embedding" is empty'; do
    grep -q "$want" "$T/bad.log" || { cat "$T/bad.log"; fail "no line: $want"; }
done
grep -q "indexed 2 docs, skipped 4" "$T/bad.log" || { cat "$T/bad.log"; fail "bad lines counted"; }
# two vectors: a value so small LMDB keeps it inside a leaf page, not page-aligned
"$FUNNEL" index verify "$T/bad.idx" >"$T/badv.log" 2>&1 || { cat "$T/badv.log"; fail "a 2-vector index does not verify"; }
"$FUNNEL" index build --input "$T/bad.jsonl" --shards 1 --out "$T/bad2.idx" --on-error fail >"$T/bad2.log" 2>&1 \
    && fail "--on-error fail built anyway"
grep -q 'bad.jsonl:2: "embedding" has 5 numbers' "$T/bad2.log" || { cat "$T/bad2.log"; fail "fail mode message"; }
ok "bad vectors: FILE:LINE in the build, INVALID_ARGUMENT in a search"

# (d) one shard killed
kill -9 "$(cat "$T/run3/shard-1.pid")"
"$FUNNEL" search --server "$A3" --vector "$V" --k 10 --json >"$T/killed.json" || fail "search with a shard killed"
[ "$(json_get "$T/killed.json" 'r["coverage"]["shards_answered"]')" = 2 ] || fail "coverage after the kill"
[ "$(json_get "$T/killed.json" 'r["partial"]')" = True ] || fail "partial after the kill"
[ "$(json_get "$T/killed.json" 'len(r["hits"])')" = 10 ] || fail "hits after the kill"
ok "a shard killed: coverage 2/3, partial, 10 hits"
