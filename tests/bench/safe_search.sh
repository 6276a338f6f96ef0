#!/usr/bin/env bash
# safe_search.sh BUILD_DIR - issue 11, acceptance 2: safe search end to end.
#
# The corpus mixes the 1,400 Cranfield abstracts with SpamAssassin mails: the
# mails of a seeded 20% share by id (SHARE) that the content filter never saw in
# training (the other 80% train it: `funnel filter train`). Both indexes are
# built by `funnel index build --filter-model` and served by a 2-shard cluster:
#   clean  Cranfield alone (no spam);
#   mixed  Cranfield + the held-out mails (spam and ham).
# The 225 Cranfield queries run as a batch (k 10) against
#   mixed with --safe-search strict, moderate and off, and clean with off.
# Prints, per run: NDCG@10 (funnel eval against Cranfield's qrels), the known-spam
# documents in any top 10 (and the queries that had one), and the mails of any kind
# there. Acceptance: strict -> 0 known-spam documents in any top 10; off on mixed ->
# NDCG@10 within 1% of clean.
# ALL=1 mixes every SpamAssassin mail instead (those the filter trained on too);
# STRICT_RECALL (default 0.995) is train's --strict-recall.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
F=$B/ops/funnel
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${DATA:-$HERE/../../../shared/data}
SHARE=${SHARE:-0.2} SHARDS=${SHARDS:-2} STRICT_RECALL=${STRICT_RECALL:-0.995}
PY=/usr/bin/python3
T=$(mktemp -d /tmp/funnel-safe.XXXXXX)
cleanup() {
    for r in "$T"/run-*; do [ -d "$r" ] && "$F" cluster down --dir "$r" >/dev/null 2>&1; done
    rm -rf "$T"
}
trap cleanup EXIT

"$PY" - "$DATA/spam-assassin/corpus.jsonl" "$DATA/cranfield/corpus.jsonl" "$T" "$SHARE" "${ALL:-0}" <<'EOF'
import hashlib, json, sys
sa, cran, t, share, every = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5] == "1"
train, mixed, spam_ids = open(t + "/train.jsonl", "w"), open(t + "/mixed.jsonl", "w"), open(t + "/spam.ids", "w")
n = {"train": 0, "mixed_spam": 0, "mixed_ham": 0}
for line in open(sa):
    d = json.loads(line)
    # a split independent of the filter's own (cfilter_split): md5 of the id
    held = int(hashlib.md5(d["id"].encode()).hexdigest()[:8], 16) / 2**32 < share
    if not held:
        train.write(line); n["train"] += 1
    if held or every:
        mixed.write(json.dumps({"id": "sa:" + d["id"], "title": d.get("title", ""), "body": d.get("body", "")}) + "\n")
        if d["label"] == "spam":
            spam_ids.write("sa:" + d["id"] + "\n"); n["mixed_spam"] += 1
        else:
            n["mixed_ham"] += 1
for line in open(cran):
    mixed.write(line)
print("split: %(train)d mails train the filter; %(mixed_spam)d spam and %(mixed_ham)d ham mails mixed "
      "into the 1400 Cranfield documents" % n)
EOF

echo "== funnel filter train (the 80% the mixed corpus does not hold)"
"$F" filter train --input "$T/train.jsonl" --label-field label --positive spam --out "$T/f.model" --holdout 0 \
    --strict-recall "$STRICT_RECALL" \
    2>&1 | sed 's/^/   /'
for ix in clean mixed; do
    in=$T/mixed.jsonl; [ $ix = clean ] && in=$DATA/cranfield/corpus.jsonl
    echo "== index build $ix ($(wc -l <"$in") documents, --filter-model)"
    "$F" index build --input "$in" --shards "$SHARDS" --out "$T/$ix" --filter-model "$T/f.model" 2>&1 \
        | grep -i "filter" | sed 's/^/   /' || true
done

Q=$DATA/cranfield/queries.tsv QR=$DATA/cranfield/qrels.trec
run() {   # INDEX SAFE
    local a
    [ -f "$T/run-$1/coordinator.addr" ] || "$F" cluster up --index "$T/$1" --dir "$T/run-$1" >/dev/null
    a=$(cat "$T/run-$1/coordinator.addr")
    "$F" search --server "$a" --queries "$Q" --run-out "$T/$1-$2.trec" --k 10 --safe-search "$2" >/dev/null
}
run clean off
for s in off moderate strict; do run mixed $s; done

"$PY" - "$T" "$QR" "$F" <<'EOF'
import subprocess, sys
t, qrels, funnel = sys.argv[1:4]
spam = set(l.strip() for l in open(t + "/spam.ids"))
def ndcg(run):
    out = subprocess.run([funnel, "eval", "--qrels", qrels, "--run", run], capture_output=True, text=True, check=True)
    return float([l.split("\t")[1] for l in out.stdout.splitlines() if l.startswith("ndcg@10")][0])
res = {}
print("%-16s %8s %8s %14s %12s" % ("run", "NDCG@10", "vs clean", "spam in top10", "mails top10"))
base = ndcg(t + "/clean-off.trec")
for name in ("clean-off", "mixed-off", "mixed-moderate", "mixed-strict"):
    path = "%s/%s.trec" % (t, name)
    nd = ndcg(path)
    sp, mails, qs = 0, 0, set()
    for line in open(path):
        qid, _, doc, rank = line.split()[:4]
        if doc.startswith("sa:"):
            mails += 1
        if doc in spam:
            sp += 1; qs.add(qid)
    res[name] = (nd, sp)
    print("%-16s %8.4f %+7.2f%% %7d (%3d q) %12d" % (name, nd, 100 * (nd - base) / base, sp, len(qs), mails))
ok_strict = res["mixed-strict"][1] == 0
ok_off = abs(res["mixed-off"][0] - base) <= 0.01 * base
print("acceptance: strict has no known-spam document in any top 10: %s; off within 1%% of clean: %s"
      % ("yes" if ok_strict else "NO", "yes" if ok_off else "NO"))
sys.exit(0 if ok_strict and ok_off else 1)
EOF
