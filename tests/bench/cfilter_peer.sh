#!/usr/bin/env bash
# cfilter_peer.sh BUILD_DIR - the content filter against scikit-learn in the same run (issue 11).
#
# One split of SpamAssassin by the md5 of the id (SHARE held out, default 20%), the same files
# for both:
#   funnel   `funnel filter train --holdout 0` on the training part (its own threshold for
#            precision 0.98 on out-of-fold scores), `funnel filter eval` on the held-out part;
#   sklearn  HashingVectorizer (words and bigrams of title + body, 2^18 features, l2) and
#            LogisticRegression (C 100, lbfgs), threshold likewise for precision 0.98 on 5-fold
#            out-of-fold scores of the training part (python3-sklearn).
# Prints P, R, F1, ROC AUC and the training time of each, and the ratios funnel / sklearn.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
F=$B/ops/funnel
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${DATA:-$HERE/../../../shared/data}/spam-assassin/corpus.jsonl
SHARE=${SHARE:-0.2}
PY=/usr/bin/python3
T=$(mktemp -d /tmp/funnel-cfpeer.XXXXXX)
trap 'rm -rf "$T"' EXIT
"$PY" - "$DATA" "$T" "$SHARE" <<'EOF'
import hashlib, sys
src, t, share = sys.argv[1], sys.argv[2], float(sys.argv[3])
tr, te = open(t + "/train.jsonl", "w"), open(t + "/test.jsonl", "w")
for line in open(src):
    import json
    i = json.loads(line)["id"]
    (te if int(hashlib.md5(i.encode()).hexdigest()[:8], 16) / 2**32 < share else tr).write(line)
EOF
t0=$(date +%s.%N)
"$F" filter train --input "$T/train.jsonl" --label-field label --positive spam --out "$T/f.model" --holdout 0 >/dev/null 2>&1
t1=$(date +%s.%N)
"$F" filter eval --input "$T/test.jsonl" --label-field label --positive spam --model "$T/f.model" >"$T/eval.txt"
echo "funnel filter eval:"; sed 's/^/   /' "$T/eval.txt"
"$PY" - "$T" "$(echo "$t1 - $t0" | bc)" <<'EOF'
import json, re, sys, time
import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold
t, funnel_train_s = sys.argv[1], float(sys.argv[2])
def load(p):
    docs = [json.loads(l) for l in open(p)]
    return [(d.get("title", "") + "\n" + d.get("body", ""))[:65536] for d in docs], \
           np.array([d["label"] == "spam" for d in docs], dtype=int)
Xtr_t, ytr = load(t + "/train.jsonl")
Xte_t, yte = load(t + "/test.jsonl")
t0 = time.time()
hv = HashingVectorizer(n_features=2**18, ngram_range=(1, 2), alternate_sign=False, norm="l2")
Xtr, Xte = hv.transform(Xtr_t), hv.transform(Xte_t)
oof = np.zeros(len(ytr))
for a, b in KFold(5, shuffle=True, random_state=1).split(Xtr):
    oof[b] = LogisticRegression(C=100, max_iter=2000).fit(Xtr[a], ytr[a]).predict_proba(Xtr[b])[:, 1]
order = np.argsort(-oof)
tp = np.cumsum(ytr[order]); prec = tp / np.arange(1, len(ytr) + 1)
ok = np.where(prec >= 0.98)[0]
thr = oof[order][ok.max()] if len(ok) else 0.5
m = LogisticRegression(C=100, max_iter=2000).fit(Xtr, ytr)
train_s = time.time() - t0
t1 = time.time()
p = m.predict_proba(hv.transform(Xte_t))[:, 1]   # features + score, as funnel's figure
score_us = (time.time() - t1) / len(yte) * 1e6
pred = p >= thr
P = (pred & (yte == 1)).sum() / max(pred.sum(), 1); R = (pred & (yte == 1)).sum() / max((yte == 1).sum(), 1)
F1 = 2 * P * R / max(P + R, 1e-12); auc = roc_auc_score(yte, p)
ev = open(t + "/eval.txt").read()
def grab(name):
    m_ = re.search(r"\b%s\s+([0-9.]+)" % name, ev)
    return float(m_.group(1)) if m_ else float("nan")
fP, fR, fF1, fAUC = grab("precision"), grab("recall"), grab("f1"), grab("roc_auc")
print("sklearn (HashingVectorizer 1-2 grams + LogisticRegression C 100): threshold %.4f" % thr)
print("%-8s %8s %8s %8s %8s %10s" % ("", "P", "R", "F1", "AUC", "train s"))
print("%-8s %8.4f %8.4f %8.4f %8.4f %10.2f" % ("funnel", fP, fR, fF1, fAUC, funnel_train_s))
print("%-8s %8.4f %8.4f %8.4f %8.4f %10.2f" % ("sklearn", P, R, F1, auc, train_s))
fus = grab("scoring")
print("ratio funnel/sklearn: F1 %.3f, AUC %.4f, training time %.2f, scoring %.2f (funnel %.1f us a document, "
      "one at a time; sklearn %.1f us, features + score, batched)"
      % (fF1 / F1, fAUC / auc, funnel_train_s / train_s, fus / score_us, fus, score_us))
EOF
