#!/usr/bin/env bash
# ann_bench.sh BUILD_DIR - vector search (index/ann) against its peers, in one run:
# `funnel ann bench`, hnswlib (python3-hnswlib) and faiss IndexHNSWFlat
# (python3-faiss) through tests/bench/ann_peers.py, all with M=16,
# efConstruction=200, built with $ANN_THREADS threads (2), searched on ONE thread
# for ef in $ANN_EFS (10,20,40,80,160; extended with 320,640,1280 for a system
# that has not reached recall@10 0.95), each ef timed $ANN_REPEAT times (3) and
# the best kept, on two data sets:
#   fashion  Fashion-MNIST, 60,000 x 784, L2, 10,000 queries
#   glove    GloVe Twitter 25-d, 10,931 x 25, cosine, 994 queries
# Prints every system's build time, index size and memory, its recall@10/QPS
# per ef, and the QPS ratio of funnel to each peer at the smallest ef where
# each reaches recall@10 >= 0.95. Writes docs/ann-recall-qps.dat and
# docs/ann-recall-qps.png (gnuplot). Data: $FUNNEL_DATA or ../shared/data.
# The machine's other load shows up in the QPS: run it on a quiet machine,
# and look at the load averages printed at the start and the end.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
F=$B/ops/funnel
PY=/usr/bin/python3
PEERS=$SRC/tests/bench/ann_peers.py
DATA=${FUNNEL_DATA:-$SRC/../shared/data}
EFS=${ANN_EFS:-10,20,40,80,160}
MORE_EFS=320,640,1280
THREADS=${ANN_THREADS:-2}
REPEAT=${ANN_REPEAT:-3}
DAT=$SRC/docs/ann-recall-qps.dat
PNG=$SRC/docs/ann-recall-qps.png
[ -x "$F" ] || { echo "ann_bench: $F not built" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "ann_bench: gnuplot not installed (gnuplot-nox)" >&2; exit 1; }
$PY -c 'import hnswlib, faiss' 2>/dev/null || { echo "ann_bench: python3-hnswlib / python3-faiss missing" >&2; exit 1; }
T=$(mktemp -d /tmp/funnel-ann-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT

FM=$DATA/fashion-mnist
GL=$DATA/glove-twitter-25d-12k
args_of() {   # the data set's --base/--query/--truth/--metric
  case $1 in
  fashion) echo "--base $FM/train-images-idx3-ubyte.gz --query $FM/t10k-images-idx3-ubyte.gz" \
                "--truth $FM/fashion-mnist_t10k_groundtruth_k100.ivecs --metric l2" ;;
  glove) echo "--base $GL/glove_twitter_25d_12k_base.fvecs --query $GL/glove_twitter_25d_12k_query.fvecs" \
              "--truth $GL/glove_twitter_25d_12k_groundtruth_angular_k100.ivecs --metric cosine" ;;
  esac
}
run() {       # run SET SYSTEM EFS -> $T/SET.SYSTEM (appended)
  local set=$1 sys=$2 efs=$3 a
  a=$(args_of "$set")
  # shellcheck disable=SC2086
  case $sys in
  funnel) "$F" ann bench $a --M 16 --efc 200 --threads "$THREADS" --repeat "$REPEAT" --ef "$efs" ;;
  *) $PY "$PEERS" --lib "$sys" $a --M 16 --efc 200 --threads "$THREADS" --repeat "$REPEAT" --ef "$efs" ;;
  esac >> "$T/$set.$sys" || { echo "ann_bench: $sys on $set failed" >&2; exit 1; }
}
best_recall() { awk '/^ef=/ { split($2, r, "="); if (r[2] > m) m = r[2] } END { print m + 0 }' "$1"; }

echo "ann_bench: $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)," \
     "build threads $THREADS, search 1 thread, best of $REPEAT, ef $EFS"
echo "  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); $(gcc --version | head -1)"
for set in fashion glove; do
  for sys in funnel hnswlib faiss; do
    run "$set" "$sys" "$EFS"
    if awk -v r="$(best_recall "$T/$set.$sys")" 'BEGIN { exit !(r < 0.95) }'; then
      # the build is repeated (same parameters): only the ef lines are kept from it
      run "$set" "$sys" "$MORE_EFS"
    fi
  done
done
echo "  load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- the report ----
: > "$DAT"
echo "# ann_bench.sh: recall@10 and single-thread QPS per ef (gnuplot index = data set x system)" >> "$DAT"
for set in fashion glove; do
  echo
  echo "== $set ($(grep -m1 '^ann:' "$T/$set.funnel" | sed 's/^ann: //'))"
  printf '  %-8s %8s %10s %14s %12s %12s\n' system build_s index_MB graph_B/vector peak_rss_MB "recall>=0.95"
  for sys in funnel hnswlib faiss; do
    awk -v sys="$sys" '
      /^build_s=/ && !seen { seen = 1
        for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
      /^ef=/ { split($1, e, "="); split($2, r, "="); split($3, q, "=")
        if (r[2] >= 0.95 && (best == "" || e[2] + 0 < bef)) { bef = e[2] + 0; best = "ef=" e[2] " qps=" q[2] } }
      END { printf "  %-8s %8s %10.1f %14s %12s   %s\n", sys, v["build_s"], v["index_bytes"] / 1048576,
                   v["graph_bytes_per_vector"], v["peak_rss_mb"], best == "" ? "never" : best }' "$T/$set.$sys"
  done
  echo "  (index_MB: the saved index file: funnel's holds the graph only, the peers' the vectors too)"
  printf '  %-8s' ef
  for sys in funnel hnswlib faiss; do printf ' %22s' "$sys recall/qps"; done
  echo
  awk '/^ef=/ { split($1, e, "="); print e[2] + 0 }' "$T/$set.funnel" "$T/$set.hnswlib" "$T/$set.faiss" |
    sort -n -u | while read -r ef; do
      printf '  %-8s' "$ef"
      for sys in funnel hnswlib faiss; do
        awk -v ef="$ef" '/^ef=/ { split($1, e, "="); split($2, r, "="); split($3, q, "=")
          if (e[2] + 0 == ef) { s = sprintf("%.4f / %7d", r[2], q[2]) } }
          END { printf " %22s", s == "" ? "-" : s }' "$T/$set.$sys"
      done
      echo
    done
  # QPS ratios at the smallest ef reaching 0.95, each system at its own ef
  q95() { awk '/^ef=/ { split($1, e, "="); split($2, r, "="); split($3, q, "=")
            if (r[2] >= 0.95 && (b == "" || e[2] + 0 < b)) { b = e[2] + 0; v = q[2] } }
          END { print v + 0 }' "$1"; }
  ours=$(q95 "$T/$set.funnel")
  for peer in hnswlib faiss; do
    theirs=$(q95 "$T/$set.$peer")
    awk -v a="$ours" -v b="$theirs" -v p="$peer" -v s="$set" 'BEGIN {
      if (a > 0 && b > 0) printf "  %s: QPS ratio funnel / %s at recall@10 >= 0.95: %.2fx\n", s, p, a / b
      else printf "  %s: QPS ratio funnel / %s: n/a (recall 0.95 not reached)\n", s, p }'
  done
  for sys in funnel hnswlib faiss; do
    {
      # gnuplot data sets are separated by two blank lines (none before the first)
      [ "$set.$sys" = fashion.funnel ] || printf '\n\n'
      echo "# $set $sys: ef recall@10 qps"
      awk '/^ef=/ { split($1, e, "="); split($2, r, "="); split($3, q, "="); print e[2], r[2], q[2] }' \
        "$T/$set.$sys" | sort -n -u
    } >> "$DAT"
  done
done

# ---- the plot: one panel per data set, recall on x, QPS (log) on y ----
gnuplot <<EOF
set terminal pngcairo size 1200,520 font ",10" noenhanced
set output "$PNG"
set multiplot layout 1,2 title "HNSW M=16 efC=200, recall@10 vs single-thread QPS (ef $EFS)"
set logscale y
set grid
set xlabel "recall@10"
set ylabel "queries per second (1 thread)"
set key bottom left
set arrow 1 from 0.95, graph 0 to 0.95, graph 1 nohead dashtype 2 lc rgb "gray50"
set title "Fashion-MNIST 60k x 784, L2"
plot "$DAT" index 0 using 2:3 with linespoints lw 2 title "funnel", \
     "$DAT" index 1 using 2:3 with linespoints lw 2 title "hnswlib", \
     "$DAT" index 2 using 2:3 with linespoints lw 2 title "faiss HNSWFlat"
set title "GloVe Twitter 25-d 11k, cosine"
plot "$DAT" index 3 using 2:3 with linespoints lw 2 title "funnel", \
     "$DAT" index 4 using 2:3 with linespoints lw 2 title "hnswlib", \
     "$DAT" index 5 using 2:3 with linespoints lw 2 title "faiss HNSWFlat"
unset multiplot
EOF
echo
echo "wrote $DAT and $PNG"
