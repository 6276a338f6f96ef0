#!/usr/bin/env bash
# blender.sh BUILD_DIR - issue 11, acceptance 3: what blending does to relevance.
#
# Cranfield with verticals that follow the words (a document mentioning "shock" is news,
# "heat" image, the rest web; as tests/integration/test_intent_features.sh), an intent
# model trained on its queries (`funnel intent train`), a 2-shard cluster per rule set.
# The 225 queries run as a batch (k 10) with each coordinator config:
#   none      no rule (the ranked list);
#   never     news and image rules that cannot qualify (min-intent 0.99);
#   intent    the same rules at min-intent 0.5 (news) and 0.4 (image);
#   always    the same rules at min-intent 0.
# Prints NDCG@10 against Cranfield's qrels for each, the queries with a block, and
# whether `never` is identical to `none` line for line (it must be: blending never
# reorders the ranked hits, and no vertical qualifies). The gen_corpus.py side of the
# acceptance (a table of rule sets and intents, page by page) is
# tests/integration/test_result_page.sh.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
F=$B/ops/funnel
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${DATA:-$HERE/../../../shared/data}
PY=/usr/bin/python3
T=$(mktemp -d /tmp/funnel-blend.XXXXXX)
cleanup() {
    for r in "$T"/run-*; do [ -d "$r" ] && "$F" cluster down --dir "$r" >/dev/null 2>&1; done
    rm -rf "$T"
}
trap cleanup EXIT
Q=$DATA/cranfield/queries.tsv QR=$DATA/cranfield/qrels.trec

"$PY" - "$DATA/cranfield/corpus.jsonl" "$T/c.jsonl" <<'EOF'
import json, sys
out = open(sys.argv[2], "w")
n = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    text = (d.get("title", "") + " " + d.get("body", "")).lower()
    d["vertical"] = "news" if "shock" in text else "image" if "heat" in text else "web"
    n[d["vertical"]] = n.get(d["vertical"], 0) + 1
    out.write(json.dumps(d) + "\n")
print("corpus: %s" % ", ".join("%s %d" % kv for kv in sorted(n.items())))
EOF
"$F" index build --input "$T/c.jsonl" --shards 2 --out "$T/idx" >/dev/null 2>&1
"$F" intent train --queries "$Q" --corpus "$T/c.jsonl" --out "$T/idx/intent.model" 2>&1 | tail -n 1

rules() {   # NEWS_MIN IMAGE_MIN
    printf 'blend-rule = news_top vertical=news position=3 size=2 min-intent=%s\n' "$1"
    printf 'blend-rule = images vertical=image position=6 size=3 min-intent=%s min-hits=2\n' "$2"
}
: >"$T/none.conf"
rules 0.99 0.99 >"$T/never.conf"
rules 0.5 0.4 >"$T/intent.conf"
rules 0 0 >"$T/always.conf"
for set in none never intent always; do
    a=$("$F" cluster up --index "$T/idx" --dir "$T/run-$set" --coordinator-config "$T/$set.conf")
    "$F" search --server "$a" --queries "$Q" --run-out "$T/$set.trec" --k 10 >/dev/null 2>&1
    # the queries that got a block: one JSON page each (slot_rule)
    n=0
    while IFS=$'\t' read -r qid text; do
        "$F" search --server "$a" "$text" --syntax plain --k 10 --json 2>/dev/null \
            | "$PY" -c 'import json,sys; r=json.load(sys.stdin); sys.exit(0 if any(h.get("slot_rule","main")!="main" for h in r["hits"]) else 1)' \
            && n=$((n + 1))
    done <"$Q"
    echo "$n" >"$T/$set.blocks"
    "$F" cluster down --dir "$T/run-$set" >/dev/null
done
printf '%-8s %8s %8s %18s\n' rules NDCG@10 P@10 "queries with a block"
for set in none never intent always; do
    "$F" eval --qrels "$QR" --run "$T/$set.trec" \
        | awk -v s="$set" -v b="$(cat "$T/$set.blocks")" -F'\t' '$1=="ndcg@10"{n=$2} $1=="p@10"{p=$2} END{printf "%-8s %8s %8s %18s\n", s, n, p, b}'
done
if cmp -s <(cut -d' ' -f1-5 "$T/none.trec") <(cut -d' ' -f1-5 "$T/never.trec"); then
    echo "never vs none: identical runs (every query, every rank, every score)"
else
    echo "never vs none: the runs DIFFER"; exit 1
fi
