#!/usr/bin/env bash
# Online experiments (issue 13, acceptance 6; docs/engagement.md "Online
# experiments"), on cranfield:
#  - a stage-2 LambdaMART model trained on cranfield's judgments is better
#    than BM25 by NDCG@10 (funnel eval, both measured here);
#  - a 1-shard cluster whose coordinator has one experiment, 100% of the
#    traffic in an arm that team-draft interleaves that model (A) with BM25
#    (B), serves every query to K sessions (experiment_pages.py pages: the
#    responses name the arm, teams alternate, each team's hits follow its
#    ranker); its impression log records the interleaved pages with teams;
#  - 100 simulated experiments of 500 sessions (a random query, one of its
#    logged pages) with `funnel clicks simulate` (cascade users) and
#    `funnel experiment report`: the verdict is "A better" in >= 95 of 100
#    (K pages a query are enough: the clicks, not the coins, are the noise);
#  - the same pages with the teams' labels swapped give "B better" as often
#    (20 experiments: the report is not biased toward A), and the report's
#    usage errors.
source "$(dirname "$0")/lib.sh"
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || { echo "SKIP: needs python3-grpcio"; exit 77; }
command -v protoc-c >/dev/null || { echo "SKIP: needs protoc-c"; exit 77; }
Q=$DATA/cranfield/queries.tsv
QR=$DATA/cranfield/qrels.trec
K=${EXP_PAGES:-4}         # interleaved pages a query (team-draft coin sequences)
NEXP=100 SESS=500
t0=$(now_ms)

"$FUNNEL" experiment report --impressions x >/dev/null 2>&1; [ $? -eq 2 ] || fail "no --clicks: exit 2"
"$FUNNEL" experiment report --help | grep -q -- '--min-dwell' || fail "experiment report --help"

IDX=$(build_index cran 1) || exit 1
# ---- the better ranker: LambdaMART on cranfield's judgments ----
A0=$(cluster_up "$IDX" "$T/run0") || fail "cluster up"
"$FUNNEL" features --server "$A0" --queries "$Q" --qrels "$QR" --stage 2 --window 100 --out "$T/s2.svm" \
    2>"$T/f.err" || { cat "$T/f.err"; fail "features --stage 2"; }
"$FUNNEL" train --data "$T/s2.svm" --objective lambdarank --trees 30 --depth 3 --out "$T/m2.model" >/dev/null 2>&1 \
    || fail "train stage 2"
"$FUNNEL" cluster down --dir "$T/run0" >/dev/null 2>&1

# ---- the experiment: one arm, the model interleaved with BM25 ----
cat >"$T/exp.conf" <<EOF
# docs/engagement.md "Online experiments"
experiment cranil traffic=100 salt=cran-2026 unit=session
arm il share=100 interleave=$T/m2.model,none
EOF
printf 'experiments = %s\nimpressions-log = %s\n' "$T/exp.conf" "$T/imp.jsonl" >"$T/coord.conf"
A=$("$FUNNEL" cluster up --index "$IDX" --dir "$T/run" --stage2-model "$T/m2.model" \
    --coordinator-config "$T/coord.conf" 2>"$T/up.err") || { cat "$T/up.err"; fail "cluster up with experiments"; }
"$FUNNEL" search --server "$A" --queries "$Q" --k 100 --run-out "$T/model.trec" 2>/dev/null || fail "search (model)"
"$FUNNEL" search --server "$A" --queries "$Q" --k 100 --skip-models --run-out "$T/bm25.trec" 2>/dev/null \
    || fail "search (BM25)"
NM=$("$FUNNEL" eval --qrels "$QR" --run "$T/model.trec" | awk '$1=="ndcg@10"{print $2}')
NB=$("$FUNNEL" eval --qrels "$QR" --run "$T/bm25.trec" | awk '$1=="ndcg@10"{print $2}')
awk -v m="$NM" -v b="$NB" 'BEGIN{exit !(m > b + 0.02)}' || fail "the model is not better: ndcg@10 $NM, BM25 $NB"
ok "$(( ($(now_ms) - t0) / 1000 )) s: the stage-2 model: ndcg@10 $NM, BM25 $NB (cranfield, 225 queries; the model trained on them)"

"$PY" "$HERE/experiment_pages.py" pages "$A" "$HERE/../../proto" "$Q" "$K" cranil il >"$T/pages.out" \
    || { cat "$T/pages.out"; fail "interleaved pages from the coordinator"; }
"$FUNNEL" cluster down --dir "$T/run" >/dev/null 2>&1
grep '"experiment":"cranil","arm":"il"' "$T/imp.jsonl" | grep -v '"request_id":"[0-9]*/s0"' >"$T/il.jsonl"
N=$(wc -l <"$T/il.jsonl")
[ "$N" -eq $((225 * K)) ] || fail "$N interleaved impressions logged, want $((225 * K))"
grep -q '"team":"A"' "$T/il.jsonl" && grep -q '"team":"B"' "$T/il.jsonl" || fail "the log has no teams"
ok "$(( ($(now_ms) - t0) / 1000 )) s: $(cat "$T/pages.out"); $N impressions logged with experiment, arm and teams"

# ---- 100 simulated experiments of 500 sessions ----
# One file holds them all, experiment E renamed cranil-E (sessions are
# independent: each has its own random stream, from the seed and its request
# id); the report then has a verdict line per experiment.
t1=$(now_ms)
NSW=20    # and 20 with the teams' labels swapped: B is then the model
"$PY" "$HERE/experiment_pages.py" sample "$T/il.jsonl" "$T/x.jsonl" $NEXP $SESS 1 $NSW >"$T/sample.out" || fail "sample"
"$FUNNEL" clicks simulate --impressions "$T/x.jsonl" --qrels "$QR" --model cascade --seed 1 \
    --out "$T/x.clicks" >"$T/x.sim" || fail "clicks simulate"
"$FUNNEL" experiment report --impressions "$T/x.jsonl" --clicks "$T/x.clicks" >"$T/x.report" || fail "experiment report"
[ "$(grep -c '^interleaving cranil-[0-9]*/il: A wins [0-9]*, B wins [0-9]*, ties [0-9]* (of 500 impressions)' "$T/x.report")" \
    -eq $NEXP ] || { head "$T/x.report"; fail "not $NEXP interleaving lines of 500 impressions"; }
a=$(grep -c '^interleaving cranil-.*verdict: A better$' "$T/x.report")
b=$(grep -c '^interleaving cranil-.*verdict: B better$' "$T/x.report")
none=$(grep -c '^interleaving cranil-.*verdict: no significant difference$' "$T/x.report")
sb=$(grep -c '^interleaving swapped-.*verdict: B better$' "$T/x.report")
grep -m 2 'cranil-0/il' "$T/x.report"
[ $a -ge 95 ] || fail "interleaving found the better ranker in $a of $NEXP experiments (B $b, no difference $none)"
[ $sb -ge $((NSW - 1)) ] || fail "swapped teams: B better in only $sb of $NSW experiments"
ok "interleaving found the better ranker (A, the model) in $a of $NEXP experiments of $SESS sessions" \
   "(B better $b, no significant difference $none); swapped teams: B better in $sb of $NSW;" \
   "simulation $(( $(now_ms) - t1 )) ms, all $(( ($(now_ms) - t0) / 1000 )) s"

# ---- the report's checks: a click not on the page, an unknown request ----
echo '{"request_id":"nope/1","id":"1","position":1}' >"$T/bad.jsonl"
"$FUNNEL" experiment report --impressions "$T/x.jsonl" --clicks "$T/bad.jsonl" >/dev/null 2>"$T/err"
[ $? -eq 1 ] && grep -q 'bad.jsonl:1: click for an unknown request_id "nope/1"' "$T/err" || { cat "$T/err"; fail "bad click"; }
ok "bad click line: $(cat "$T/err")"
