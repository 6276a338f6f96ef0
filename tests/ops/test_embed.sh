#!/usr/bin/env bash
# test_embed.sh - `funnel embed train | apply` (ops/ops_embed.c) on cranfield,
# small (dim 16, 2 epochs) so that it takes seconds:
#   1. usage errors exit 2; a missing fasttext is an error naming the package;
#   2. train writes ENC/model.bin and a manifest (dim, options, corpus hash,
#      fasttext version);
#   3. apply --corpus: every document in input order with its id, every other
#      field unchanged (the line's bytes, even), a unit-length "embedding" of
#      dim floats; documents without words have none and are counted;
#   4. apply --queries: qid, text, dim unit-length floats;
#   5. a query's 10 nearest documents by cosine share more of its words than
#      10 random documents (averaged over the 225 queries);
#   6. bad lines: FILE:LINE: reason; --on-error fail (default) stops without
#      writing OUT, skip leaves them out; an old "embedding" is replaced, or
#      removed from a document without words;
#   7. --threads 1 with one seed: the same model and vectors twice.
# Skipped (77) without fasttext or without ../shared/data.
# usage: test_embed.sh FUNNEL     (FUNNEL_DATA = the shared data directory)
set -uo pipefail
FUNNEL=${1:?usage: test_embed.sh FUNNEL}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DATA=${FUNNEL_DATA:-$HERE/../../../shared/data}
CORPUS=$DATA/cranfield/corpus.jsonl
QUERIES=$DATA/cranfield/queries.tsv
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
[ -x "$FUNNEL" ] || { echo "SKIP: $FUNNEL is not built"; exit 77; }
[ -f "$CORPUS" ] || { echo "SKIP: no $CORPUS"; exit 77; }
command -v fasttext >/dev/null || [ -n "${FUNNEL_FASTTEXT:-}" ] || { echo "SKIP: no fasttext (apt-get install fasttext)"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/funnel-embed-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }
expect() {      # expect CODE CMD...: run CMD (output in $T/out, $T/err), want exit CODE
    local want=$1; shift
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    [ $rc -eq "$want" ] || { cat "$T/out" "$T/err"; fail "exit $rc, want $want: ${*:2}"; }
}

# ---- 1. usage errors, no fasttext ----
"$FUNNEL" embed --help | grep -q 'funnel embed apply --model ENC --queries' || fail "funnel embed --help"
"$FUNNEL" --help | grep -q '^  embed ' || fail "funnel --help lists embed"
expect 2 "$FUNNEL" embed
expect 2 "$FUNNEL" embed frob
expect 2 "$FUNNEL" embed train --input "$CORPUS"
expect 2 "$FUNNEL" embed train --input "$CORPUS" --out "$T/x" --dim 0
expect 2 "$FUNNEL" embed train --input "$CORPUS" --out "$T/x" --epochs 1x
expect 2 "$FUNNEL" embed train --input "$CORPUS" --out "$T/x" --model glove
expect 2 "$FUNNEL" embed apply --model "$T/x" --corpus "$CORPUS" --queries "$QUERIES" --out "$T/y"
expect 2 "$FUNNEL" embed apply --model "$T/x" --corpus "$CORPUS" --out "$T/y" --on-error maybe
[ ! -e "$T/x" ] && [ ! -e "$T/y" ] || fail "a usage error wrote something"
expect 1 env PATH=/nonexistent FUNNEL_FASTTEXT= "$FUNNEL" embed train --input "$CORPUS" --out "$T/x"
grep -q 'Debian package fasttext' "$T/err" || { cat "$T/err"; fail "missing fasttext: name the package"; }
[ ! -e "$T/x" ] || fail "a failed train left $T/x"
expect 1 "$FUNNEL" embed apply --model "$T/nothing" --corpus "$CORPUS" --out "$T/y"
grep -q 'manifest.json' "$T/err" || { cat "$T/err"; fail "apply without an encoder: name the manifest"; }
ok "usage errors exit 2; no fasttext, no encoder: exit 1 with the reason"

# ---- 2. train ----
start=$(date +%s%N)
expect 0 "$FUNNEL" embed train --input "$CORPUS" --out "$T/enc" --dim 16 --epochs 2 --threads 2 --min-count 2 --seed 1
grep -q '^trained skipgram dim 16 on 1400 documents' "$T/out" || { cat "$T/out"; fail "train summary"; }
[ -s "$T/enc/model.bin" ] || fail "no model.bin"
[ "$(ls -A "$T/enc" | sort | tr '\n' ' ')" = "manifest.json model.bin " ] || { ls -A "$T/enc"; fail "ENC holds more than the model and manifest"; }
"$PY" - "$T/enc/manifest.json" "$CORPUS" <<'EOF' || fail "manifest"
import json, sys, os
m = json.load(open(sys.argv[1]))
want = {"format": "funnel-embed", "version": 1, "model": "model.bin", "dim": 16, "algorithm": "skipgram",
        "epochs": 2, "threads": 2, "min_count": 2, "seed": 1, "reproducible": False}
for k, v in want.items():
    assert m[k] == v, (k, m[k], v)
c = m["corpus"]
assert c["path"] == os.path.realpath(sys.argv[2]) and c["bytes"] == os.path.getsize(sys.argv[2]), c
assert len(c["xxh64"]) == 16 and c["docs"] == 1400 and c["tokens"] > 100000, c
assert m["vocabulary"] > 1000 and m["fasttext"]["version"] and "-dim 16" in m["fasttext"]["args"], m
EOF
ok "train: model.bin + manifest in $(( ($(date +%s%N) - start) / 1000000 )) ms"

# ---- 3, 4, 5. apply to the corpus and the queries ----
expect 0 "$FUNNEL" embed apply --model "$T/enc" --corpus "$CORPUS" --out "$T/docs.jsonl"
grep -q '^embedded 1400 documents (dim 16): 2 without words' "$T/out" || { cat "$T/out"; fail "apply summary"; }
expect 0 "$FUNNEL" embed apply --model "$T/enc" --queries "$QUERIES" --out "$T/q.tsv"
grep -q '^embedded 225 queries (dim 16): 0 without words' "$T/out" || { cat "$T/out"; fail "apply --queries summary"; }
[ ! -e "$T/docs.jsonl.tmp" ] || fail "OUT.tmp left behind"
"$PY" - "$CORPUS" "$T/docs.jsonl" "$QUERIES" "$T/q.tsv" 16 <<'EOF' || fail "vectors"
import json, math, random, re, sys
corpus, docs, queries, qout, dim = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
def unit(v, what):
    assert len(v) == dim, (what, len(v))
    n = math.sqrt(sum(x * x for x in v))
    assert abs(n - 1) < 1e-4, (what, n)
    return v
inl = [l.rstrip("\n") for l in open(corpus) if l.strip()]
outl = [l.rstrip("\n") for l in open(docs)]
assert len(inl) == len(outl) == 1400, (len(inl), len(outl))
dvec, without = {}, 0
for a, b in zip(inl, outl):
    da, db = json.loads(a), json.loads(b)
    assert da["id"] == db["id"], (da["id"], db["id"])
    e = db.pop("embedding", None)
    assert da == db, da["id"]                       # every other field unchanged
    if e is None:
        without += 1
        assert b == a, da["id"]
        continue
    # the line's own bytes, then the vector
    assert b.startswith(a.rstrip()[:-1] + ',"embedding":['), da["id"]
    dvec[da["id"]] = unit(e, da["id"])
assert without == 2, without
qin = [l.rstrip("\n").split("\t") for l in open(queries) if l.strip()]
qo = [l.rstrip("\n").split("\t") for l in open(qout)]
assert len(qin) == len(qo) == 225
qvec = []
for a, b in zip(qin, qo):
    assert b[:2] == a[:2] and len(b) == 3, (a, b[:2])
    qvec.append((b[1], unit([float(x) for x in b[2].split(" ")], b[0])))
# nearest documents by cosine share more of the query's words than random ones
text = {json.loads(l)["id"]: json.loads(l) for l in inl}
words = lambda s: set(w for w in re.findall(r"[a-z0-9]+", s.lower()) if len(w) >= 4)
ids = list(dvec)
rnd = random.Random(1)
near = far = 0.0
for qt, q in qvec:
    qw = words(qt)
    top = sorted(ids, key=lambda i: -sum(x * y for x, y in zip(q, dvec[i])))[:10]
    share = lambda i: len(qw & words(text[i].get("title", "") + " " + text[i].get("body", "")))
    near += sum(share(i) for i in top) / 10
    far += sum(share(i) for i in rnd.sample(ids, 10)) / 10
near /= len(qvec); far /= len(qvec)
print("query words shared: nearest 10 %.2f, random 10 %.2f" % (near, far))
assert near > 1.5 * far, (near, far)
EOF
ok "apply: 1400 documents and 225 queries, unit vectors of dim 16, nearest documents share the query's words"

# ---- 6. bad lines, old embeddings, documents without words ----
{
    head -n 2 "$CORPUS"
    echo '{"id": "bad-title", "title": 5}'
    echo '{"id": "e1", "title": "the of and", "embedding": [1, 2]}'
    echo 'not json'
    echo '{"title": "no id here"}'
    echo '{"id": "e2", "title": "Éléphant über wing", "embedding": [0.5], "n": 1.5}'
} > "$T/bad.jsonl"
expect 1 "$FUNNEL" embed apply --model "$T/enc" --corpus "$T/bad.jsonl" --out "$T/bad.out"
grep -qx "funnel embed apply: $T/bad.jsonl:3: \"title\" is not a string" "$T/err" || { cat "$T/err"; fail "bad line 3 (fail)"; }
[ ! -e "$T/bad.out" ] && [ ! -e "$T/bad.out.tmp" ] || fail "--on-error fail wrote OUT"
expect 0 "$FUNNEL" embed apply --model "$T/enc" --corpus "$T/bad.jsonl" --out "$T/bad.out" --on-error skip
for l in "3: \"title\" is not a string" "5: invalid JSON" "6: missing \"id\""; do
    grep -q "^$T/bad.jsonl:$l" "$T/err" || { cat "$T/err"; fail "skip: report line $l"; }
done
grep -q '^embedded 4 documents (dim 16): 1 without words .*, 3 bad lines skipped' "$T/out" || { cat "$T/out"; fail "skip summary"; }
"$PY" - "$T/bad.out" <<'EOF' || fail "bad.out"
import json, sys
d = [json.loads(l) for l in open(sys.argv[1])]
assert [x["id"] for x in d] == ["1", "2", "e1", "e2"], d
assert "embedding" not in d[2], d[2]                 # no words: the old vector goes
assert len(d[3]["embedding"]) == 16 and d[3]["n"] == 1.5 and d[3]["title"] == "Éléphant über wing", d[3]
EOF
printf '1\twing flutter\nno tab here\n3\tthe of\n' > "$T/bad.tsv"
expect 1 "$FUNNEL" embed apply --model "$T/enc" --queries "$T/bad.tsv" --out "$T/bad2.tsv"
grep -q "$T/bad.tsv:2: no tab between qid and text" "$T/err" || { cat "$T/err"; fail "bad query line"; }
expect 0 "$FUNNEL" embed apply --model "$T/enc" --queries "$T/bad.tsv" --out "$T/bad2.tsv" --on-error skip
[ "$(awk -F'\t' '{print $1 ":" NF}' "$T/bad2.tsv" | tr '\n' ' ')" = "1:3 3:2 " ] || { cat "$T/bad2.tsv"; fail "queries: skip, no words"; }
ok "bad lines reported FILE:LINE (fail: no OUT; skip: left out); old embeddings replaced or removed"

# ---- 7. reproducible with one thread ----
head -n 300 "$CORPUS" > "$T/small.jsonl"
for r in 1 2; do
    expect 0 "$FUNNEL" embed train --input "$T/small.jsonl" --out "$T/r$r" --dim 8 --epochs 2 --threads 1 --seed 7
    expect 0 "$FUNNEL" embed apply --model "$T/r$r" --queries "$QUERIES" --out "$T/r$r.tsv"
done
cmp -s "$T/r1/model.bin" "$T/r2/model.bin" || fail "--threads 1: models differ"
cmp -s "$T/r1.tsv" "$T/r2.tsv" || fail "--threads 1: vectors differ"
grep -q '"reproducible": true' "$T/r1/manifest.json" || fail "manifest: reproducible"
ok "--threads 1 --seed 7 twice: the same model.bin and vectors"
