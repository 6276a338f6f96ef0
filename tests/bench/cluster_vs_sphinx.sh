#!/usr/bin/env bash
# cluster_vs_sphinx.sh [BUILDDIR] [DOCS] - end to end through a 3-shard cluster against a sharded Sphinx
# cluster in the same run (the selection-speed issue's acceptance 3): the synthetic corpus of
# ../shared/tools/gen_corpus.py (default 200,000 documents, seed 1, its 2,000 queries), k = 10, one
# client and 4 clients.
#
# Funnel: `funnel cluster up` (1 coordinator + 3 shards on loopback, default configs, no models: the
#   selection order, BM25F), `funnel search --queries ... --k 10 --concurrency C` over the queries
#   REPS (3) times in a row after a warm-up pass; QPS and the client's latency percentiles.
# Sphinx: ../shared/tools/peer_sphinx.py --shards 3 --agent persistent --ranker bm25 (1 distributed
#   searchd + 3 shard searchd, kept-open agent connections), its own load passes: C client threads
#   looping over the same queries for DURATION (20) s after 2 s of warm-up, k = 10.
# The two clusters never run at the same time. Needs sphinxsearch and python3-pymysql (Debian).
# Prints one line per concurrency: QPS and p50/p99 of each, and the ratios (acceptance: QPS >= 2x,
# p99 no higher than Sphinx's).
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
N=${2:-200000}
REPS=${REPS:-3}
DURATION=${DURATION:-20}
source "$(dirname "$0")/corpus.sh"
"$SRC/ops/scripts/deps.sh" --bench >&2   # the peers, gnuplot
IDX=$W/idx-$N
bench_index "$IDX" 3
T=$(mktemp -d "$W/vs.XXXXXX")
trap '"$F" cluster down --dir "$T/run" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
for _ in $(seq "$REPS"); do cat "$Q"; done | awk -F'\t' '{ printf "%s-%d\t%s\n", $1, NR, $2 }' > "$T/load.tsv"

ADDR=$("$F" cluster up --index "$IDX" --dir "$T/run")
"$F" search --server "$ADDR" --queries "$Q" --k 10 --concurrency 4 --skip-models --run-out "$T/warm.trec" 2>/dev/null
for c in 1 4; do
  "$F" search --server "$ADDR" --queries "$T/load.tsv" --k 10 --concurrency "$c" --skip-models \
    --run-out "$T/f$c.trec" 2> "$T/f$c.err"
  qps=$(sed -n 's/.*, \([0-9.]*\) QPS .*/\1/p' "$T/f$c.err")
  p50=$(sed -n 's/^latency ms: p50 \([0-9.]*\), .*/\1/p' "$T/f$c.err")
  p99=$(sed -n 's/.* p99 \([0-9.]*\), .*/\1/p' "$T/f$c.err")
  echo "funnel C=$c qps=$qps p50_ms=$p50 p99_ms=$p99" | tee -a "$T/funnel.txt"
done
"$F" cluster down --dir "$T/run" >/dev/null

/usr/bin/python3 "$TOOLS/peer_sphinx.py" --corpus "$C" --queries "$Q" --shards 3 --workdir "$T/sphinx" \
  --agent persistent --ranker bm25 --concurrency 4 --duration "$DURATION" --k 10 > "$T/sphinx.out" 2>&1 ||
  { cat "$T/sphinx.out" >&2; exit 1; }
grep -E '^(index|bench|cluster)' "$T/sphinx.out" >&2 || true
/usr/bin/python3 - "$T/funnel.txt" "$T/sphinx/summary.json" <<'PY'
import json, re, sys
ours = {}
for line in open(sys.argv[1]):
    kv = dict(re.findall(r'(\w+)=([0-9.]+)', line))
    ours[int(kv['C'])] = kv
sx = {b['concurrency']: b for b in json.load(open(sys.argv[2]))['bench']}
print("3 shards, k=10, the same queries, one client (C=1) and 4 clients (C=4)")
print("  %-3s %-11s %-11s %-7s %-15s %-15s %s" % ("C", "funnel_qps", "sphinx_qps", "ratio", "funnel_p50/p99", "sphinx_p50/p99", "p99_ratio"))
for c in sorted(ours):
    f, s = ours[c], sx.get(c)
    if not s:
        continue
    fq, sq = float(f['qps']), s['qps']
    print("  %-3d %-11.1f %-11.1f %-7.2f %-15s %-15s %.2f" % (c, fq, sq, fq / sq, f"{float(f['p50_ms']):.2f}/{float(f['p99_ms']):.2f}",
          f"{s['p50_ms']:.2f}/{s['p99_ms']:.2f}", float(f['p99_ms']) / s['p99_ms']))
PY
