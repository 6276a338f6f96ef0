#!/usr/bin/env bash
# selection_scale.sh [BUILDDIR] - selection QPS against corpus size, for us and Xapian in the same run
# (the selection-speed issue's acceptance 5): the first 250,000, 500,000 and 1,000,000 documents of
# the 1M-document synthetic corpus (../shared/tools/gen_corpus.py, seed 1) and the same first
# QUERIES (500) of its queries at every size, top-10 and top-1000 OR, single thread, in process,
# measured as tests/bench/selection_speed.sh measures them (ours: shard_bench --no-fields, thread CPU
# time; Xapian: tests/bench/xapian_topk.py, wall time). Indexes are cached in $FUNNEL_BENCH_DIR.
# Prints a table and, per engine and k, QPS(1M) / QPS(250k): a cost growing like N (a 1/N curve)
# gives 0.25. Plots docs/selection-scale.png with gnuplot, its data in docs/selection-scale.dat
# (PLOT=0: neither).
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
N=1000000
NQ=${QUERIES:-500}
SIZES=${SIZES:-"250000 500000 1000000"}
source "$(dirname "$0")/corpus.sh"
"$SRC/ops/scripts/deps.sh" --bench >&2   # the peers, gnuplot
SB=$B/tests/bench/shard_bench
T=$(mktemp -d "$W/scale.XXXXXX")
trap 'rm -rf "$T"' EXIT
head -n "$NQ" "$Q" > "$T/q.tsv"
printf '# docs funnel_k10 xapian_k10 funnel_k1000 xapian_k1000\n' > "$T/data.txt"
for n in $SIZES; do
  if [ "$n" = "$N" ]; then IDX=$W/idx1-$N; XDB=$W/xapian-$N; CN=$C
  else IDX=$W/idx1-prefix-$n; XDB=$W/xapian-prefix-$n; CN=$W/prefix-$n.jsonl
       [ -s "$CN" ] || head -n "$n" "$C" > "$CN"; fi
  bench_index "$IDX" 1 "$CN"
  if [ ! -d "$XDB" ]; then
    echo "building the Xapian database of $n documents in $XDB ..." >&2
    /usr/bin/python3 "$TOOLS/peer_xapian_scale.py" "$CN" "$T/q.tsv" "$XDB" >&2
  fi
  /usr/bin/python3 "$SRC/tests/bench/xapian_topk.py" "$XDB" "$T/q.tsv" 10 1000 > "$T/x-$n.txt"
  row="$n"
  for k in 10 1000; do
    "$SB" "$IDX/shard-000" "$T/q.tsv" --sel "$k" --k "$k" --features 0 --skip-stage1 --no-fields >/dev/null   # warm
    ours=$("$SB" "$IDX/shard-000" "$T/q.tsv" --sel "$k" --k "$k" --features 0 --skip-stage1 --no-fields |
           sed -n 's/.*cpu \([0-9.]*\) us\/query.*/\1/p' | awk '{ printf "%.1f", 1e6 / $1 }')
    row="$row $ours $(awk -v k="$k" '$1 == k { print $2 }' "$T/x-$n.txt")"
  done
  echo "$row" >> "$T/data.txt"
done
echo "queries=$NQ single thread, in process (QPS)"
awk 'NR == 1 { print "  docs      funnel_k10  xapian_k10  funnel_k1000  xapian_k1000"; next }
     { printf "  %-9s %-11s %-11s %-13s %s\n", $1, $2, $3, $4, $5 }' "$T/data.txt"
awk 'NR == 2 { n0 = $1; for (i = 2; i <= 5; i++) a[i] = $i } NR > 2 { n1 = $1; for (i = 2; i <= 5; i++) b[i] = $i }
     END { split("funnel_k10 xapian_k10 funnel_k1000 xapian_k1000", nm, " ");
           printf "QPS(%d) / QPS(%d), 1/N would give %.2f:", n1, n0, n0 / n1;
           for (i = 2; i <= 5; i++) printf " %s %.2f", nm[i - 1], b[i] / a[i]; print "" }' "$T/data.txt"
if [ "${PLOT:-1}" = 1 ] && command -v gnuplot >/dev/null; then
  cp "$T/data.txt" "$SRC/docs/selection-scale.dat"
  gnuplot <<GP
set terminal pngcairo size 900,560 noenhanced
set output "$SRC/docs/selection-scale.png"
set title "Selection QPS vs corpus size: 1 shard, single thread, $NQ queries (tests/bench/selection_scale.sh)"
set xlabel "documents"; set ylabel "queries per second (log)"; set logscale xy; set grid
set xrange [200000:1200000]; set xtics ("250k" 250000, "500k" 500000, "1M" 1000000)
set key top right
ref(x) = $(awk 'NR == 2 { print $2 * $1 }' "$T/data.txt") / x
plot "$T/data.txt" using 1:2 with linespoints lw 2 title "funnel top-10", \
     "" using 1:3 with linespoints lw 2 title "xapian top-10", \
     "" using 1:4 with linespoints lw 2 title "funnel top-1000", \
     "" using 1:5 with linespoints lw 2 title "xapian top-1000", \
     ref(x) with lines dashtype 2 title "1/N through funnel top-10 at 250k"
GP
  echo "plot: docs/selection-scale.png" >&2
fi
