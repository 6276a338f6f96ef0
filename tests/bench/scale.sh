#!/usr/bin/env bash
# scale.sh [BUILDDIR] [DOCS] - index build and batch search at scale on a synthetic corpus
# from ../shared/tools/gen_corpus.py (default 1,000,000 documents, 2,000 queries).
# Prints: build documents/s, peak RSS of the build, index size, and batch search QPS
# through a 3-shard cluster at k=10 and k=1000. A peer (Xapian, python3-xapian) indexes
# and searches the first PEER_DOCS documents (default 100,000) in the same run; the
# same subset is indexed by funnel so that the ratios compare like with like.
# Corpus files are cached in $FUNNEL_BENCH_DIR (default /tmp/funnel-bench).
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
N=${2:-1000000}
PEER_DOCS=${PEER_DOCS:-100000}
source "$(dirname "$0")/corpus.sh"
T=$(mktemp -d "$W/run.XXXXXX")
trap '"$F" cluster down --dir "$T/run" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT

bench_funnel() {   # corpus label
  local corpus=$1 label=$2
  /usr/bin/time -v "$F" index build --input "$corpus" --shards 3 --out "$T/idx-$label" >"$T/build-$label.out" 2>"$T/build-$label.err"
  local docs secs rss size
  docs=$(grep -c . "$corpus")
  secs=$(grep 'Elapsed (wall clock)' "$T/build-$label.err" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(grep 'Maximum resident set size' "$T/build-$label.err" | awk '{print $NF}')
  size=$(du -sb "$T/idx-$label" | awk '{print $1}')
  ADDR=$("$F" cluster up --index "$T/idx-$label" --dir "$T/run")
  local q10 q1000
  q10=$("$F" search --server "$ADDR" --queries "$Q" --k 10 --concurrency 4 --run-out "$T/r10-$label" 2>&1 | grep -o '[0-9.]* QPS' | awk '{print $1}')
  q1000=$("$F" search --server "$ADDR" --queries "$Q" --k 1000 --concurrency 4 --run-out "$T/r1000-$label" 2>&1 | grep -o '[0-9.]* QPS' | awk '{print $1}')
  "$F" cluster down --dir "$T/run" >/dev/null
  echo "funnel $label: docs=$docs build_s=$secs docs_per_s=$(awk -v d=$docs -v s=$secs 'BEGIN{printf "%.0f", d/s}') peak_rss_mib=$((rss / 1024)) index_mib=$((size / 1048576)) qps_k10=$q10 qps_k1000=$q1000"
}

bench_funnel "$C" full
head -n "$PEER_DOCS" "$C" > "$T/peer.jsonl"
bench_funnel "$T/peer.jsonl" peer-subset | tee "$T/funnel-peer.txt"
/usr/bin/python3 "$SRC/tests/bench/xapian_scale.py" "$T/peer.jsonl" "$Q" | tee "$T/xapian-peer.txt"
/usr/bin/python3 - "$T/funnel-peer.txt" "$T/xapian-peer.txt" <<'PY'
import sys, re
def kv(p): return dict(re.findall(r'(\w+)=([0-9.]+)', open(p).read()))
f, x = kv(sys.argv[1]), kv(sys.argv[2])
print(f"ratio funnel/xapian on {f['docs']} docs: build docs/s {float(f['docs_per_s'])/float(x['docs_per_s']):.2f}x, "
      f"search qps k=10 {float(f['qps_k10'])/float(x['qps_k10']):.2f}x (funnel: 3 shards over gRPC, concurrency 4; xapian: in-process, 1 thread)")
PY
