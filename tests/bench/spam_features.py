#!/usr/bin/python3
"""spam_features.py CORPUS OUTDIR [--bits 12] [--seed 1] [--test-fraction 0.2]

Turns the spam-assassin corpus (JSON Lines: id, title, body, label ham|spam)
into SVMlight files for the logistic-regression benchmark:
  OUTDIR/spam.train, OUTDIR/spam.test   "label id:value ..." (label 1 = spam),
  1-based ids 1..2^bits, ascending, value log(1 + tf) of the hashed column.
Tokens: lowercased runs of [a-z0-9] (at most 40 chars) in title + " " + body.
Hashing trick with a FIXED hash (first 4 bytes of md5(token), little-endian,
mod 2^bits) so the files are the same on every machine and Python version.
Split: documents shuffled with random.Random(seed), the first test-fraction
to the test file. Prints "features<TAB>2^bits" and the row counts.
"""
import argparse
import hashlib
import json
import math
import os
import random
import re

TOKEN = re.compile(r"[a-z0-9]{1,40}")


def row(text, bits, cache):
    tf = {}
    mask = (1 << bits) - 1
    for tok in TOKEN.findall(text.lower()):
        col = cache.get(tok)
        if col is None:
            col = int.from_bytes(hashlib.md5(tok.encode()).digest()[:4], "little") & mask
            cache[tok] = col
        tf[col] = tf.get(col, 0) + 1
    return " ".join("%d:%.6g" % (c + 1, math.log1p(n)) for c, n in sorted(tf.items()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("outdir")
    ap.add_argument("--bits", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--test-fraction", type=float, default=0.2)
    a = ap.parse_args()
    docs = []
    with open(a.corpus) as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                docs.append((1 if d["label"] == "spam" else 0,
                             (d.get("title") or "") + " " + (d.get("body") or "")))
    random.Random(a.seed).shuffle(docs)
    ntest = int(len(docs) * a.test_fraction)
    os.makedirs(a.outdir, exist_ok=True)
    cache = {}
    for name, part in (("spam.test", docs[:ntest]), ("spam.train", docs[ntest:])):
        with open(os.path.join(a.outdir, name), "w") as out:
            for label, text in part:
                feats = row(text, a.bits, cache)
                out.write("%d %s\n" % (label, feats) if feats else "%d\n" % label)
    print("features\t%d\ntrain_rows\t%d\ntest_rows\t%d" % (1 << a.bits, len(docs) - ntest, ntest))


if __name__ == "__main__":
    main()
