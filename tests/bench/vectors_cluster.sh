#!/usr/bin/env bash
# vectors_cluster.sh BUILD_DIR [DOCS] - issue 9, acceptance 2 and 4 (docs/vectors.md):
# a gen_corpus.py corpus of DOCS (default 100,000) documents with 64-d embeddings,
# built into 3 shards (documents/s and peak RSS of the build), then through a
# real cluster: coordinator k-NN recall@10 against brute force over the whole
# corpus (numpy, cosine) at several ef, QPS of vector-only and hybrid batches,
# and the same queries with one of the 3 shards killed (coverage 2/3, partial).
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
N=${2:-100000}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
TOOLS=${FUNNEL_TOOLS:-$SRC/../shared/tools}
F=$B/ops/funnel
W=${FUNNEL_BENCH_DIR:-/tmp/funnel-bench}
mkdir -p "$W"
C=$W/corpus-vec-$N.jsonl; Q=$W/queries-vec-$N.tsv
if [ ! -s "$C" ] || [ ! -s "$Q" ]; then
  echo "generating $N documents with 64-d embeddings (cached in $W) ..." >&2
  /usr/bin/python3 "$TOOLS/gen_corpus.py" --docs "$N" --seed 1 --dim 64 --out "$C" --queries 1000 --queries-out "$Q"
fi
T=$(mktemp -d "$W/vec.XXXXXX")
trap '"$F" cluster down --dir "$T/run" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT

echo "== build: $N documents, 3 shards, cosine, M 16, efc 200"
/usr/bin/time -v "$F" index build --input "$C" --shards 3 --out "$T/idx" --metric cosine >"$T/build.out" 2>"$T/build.err"
grep -E "^indexed|^vectors" "$T/build.out"
grep -E "Maximum resident set size|Elapsed \(wall" "$T/build.err" | sed 's/^\s*/  /'
du -sh "$T"/idx/shard-00*/ann.hnsw "$T"/idx/shard-00*/data.mdb | sed 's/^/  /'

echo "== brute force truth (numpy, float64)"
/usr/bin/python3 - "$C" "$Q" "$T/truth.tsv" <<'PY'
import json, sys, numpy as np
ids, vecs = [], []
for line in open(sys.argv[1]):
    d = json.loads(line)
    if "embedding" in d: ids.append(d["id"]); vecs.append(d["embedding"])
X = np.asarray(vecs, dtype=np.float32).astype(np.float64)
X /= np.linalg.norm(X, axis=1, keepdims=True)
with open(sys.argv[3], "w") as out:
    for line in open(sys.argv[2]):
        qid, _, v = line.rstrip("\n").split("\t")
        q = np.asarray([float(x) for x in v.split()], dtype=np.float32).astype(np.float64)
        s = X @ (q / np.linalg.norm(q))
        top = np.argsort(-s, kind="stable")[:10]
        out.write(qid + "\t" + " ".join(ids[i] for i in top) + "\n")
print(f"  {len(ids)} vectors, dim {X.shape[1]}")
PY

recall() {   # run.trec -> recall@10
  /usr/bin/python3 - "$1" "$T/truth.tsv" <<'PY'
import sys
run = {}
for l in open(sys.argv[1]):
    q, _, d, r, s, _ = l.split(); run.setdefault(q, []).append(d)
tot = n = 0
for l in open(sys.argv[2]):
    q, ids = l.rstrip("\n").split("\t"); t = set(ids.split())
    tot += len(t & set(run.get(q, [])[:10])) / 10; n += 1
print(f"{tot / n:.4f}")
PY
}
ADDR=$("$F" cluster up --index "$T/idx" --dir "$T/run")
echo "== k-NN through the coordinator (3 shards, 1000 queries, k 10, concurrency 1)"
for ef in 16 32 64 128; do
  "$F" search --server "$ADDR" --queries "$Q" --vector-only --k 10 --knn-k 10 --ef "$ef" --concurrency 1 \
    --run-out "$T/ef$ef.trec" 2>"$T/ef$ef.err" >/dev/null
  echo "  ef=$ef recall@10=$(recall "$T/ef$ef.trec") $(grep -o '[0-9.]* QPS' "$T/ef$ef.err")"
done
"$F" search --server "$ADDR" --queries "$Q" --vector-only --k 10 --knn-k 10 --knn-exact --concurrency 1 \
  --run-out "$T/exact.trec" 2>"$T/exact.err" >/dev/null
echo "  exact recall@10=$(recall "$T/exact.trec") $(grep -o '[0-9.]* QPS' "$T/exact.err")"
"$F" search --server "$ADDR" --queries "$Q" --k 10 --concurrency 1 --run-out "$T/hy.trec" 2>"$T/hy.err" >/dev/null
echo "  hybrid (RRF, knn-k 100) $(grep -o '[0-9.]* QPS' "$T/hy.err")"

echo "== one of the 3 shards killed"
kill -9 "$(cat "$T/run/shard-1.pid")"
"$F" search --server "$ADDR" --queries "$Q" --vector-only --k 10 --knn-k 10 --concurrency 1 \
  --run-out "$T/killed.trec" 2>"$T/killed.err" >/dev/null || true
grep -E "partial|QPS" "$T/killed.err" | sed 's/^/  /'
V=$(head -n 1 "$Q" | cut -f3)
"$F" search --server "$ADDR" --vector "$V" --k 10 --json >"$T/one.json" || true
/usr/bin/python3 - "$T/one.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); c = r["coverage"]
print("  one query: coverage %d/%d shards, partial=%s, %d hits" % (c["shards_answered"], c["shards_asked"], r.get("partial", False), len(r["hits"])))
PY
echo "  recall@10 with 2 of 3 shards (the lost third's neighbours are missing): $(recall "$T/killed.trec")"
