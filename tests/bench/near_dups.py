#!/usr/bin/python3
"""near_dups.py - near-duplicate copies of real documents (issue 11, index/dupsig.h).

    near_dups.py --in corpus.jsonl --out copies.jsonl --pairs pairs.tsv [--n 500] [--seed 1] [--all]

Chooses N documents (seeded; all of them when N >= the corpus) and writes, for
each, an edited copy with id "<orig>~dup" and k edits, k uniform in 1..5. An
edit picks a whitespace-separated word of the title or the body (uniformly
over both) and does one of, with equal odds:
  replace  the word by a word drawn from the corpus' words
  delete   the word (not the field's last one)
  insert   a corpus word before it
  swap     it with the next word of its field
  case     upper-case or capitalise it, or add punctuation after it, or
           remove its trailing punctuation
Other fields are copied unchanged. --pairs gets "orig_id<TAB>copy_id" lines;
--all writes the original documents to --out too (before the copies), so the
output can be indexed as one corpus. Deterministic for a given --seed.
"""
import argparse
import json
import random
import sys

OPS = ("replace", "delete", "insert", "swap", "case")
PUNCT = ",.;:!?"


def edit(rng, fields, vocab):
    """One edit of fields (a list of word lists), in place."""
    total = sum(len(f) for f in fields)
    if total == 0:
        fields[-1].append(rng.choice(vocab))
        return
    at = rng.randrange(total)
    fi = 0
    while at >= len(fields[fi]):
        at -= len(fields[fi])
        fi += 1
    w = fields[fi]
    op = rng.choice(OPS)
    if op == "replace":
        w[at] = rng.choice(vocab)
    elif op == "delete":
        if len(w) > 1:
            del w[at]
        else:
            w[at] = rng.choice(vocab)
    elif op == "insert":
        w.insert(at, rng.choice(vocab))
    elif op == "swap":
        if at + 1 < len(w):
            w[at], w[at + 1] = w[at + 1], w[at]
        elif at > 0:
            w[at - 1], w[at] = w[at], w[at - 1]
    else:
        kind = rng.randrange(4)
        if kind == 0:
            w[at] = w[at].upper()
        elif kind == 1:
            w[at] = w[at].capitalize()
        elif kind == 2:
            w[at] = w[at] + rng.choice(PUNCT)
        else:
            s = w[at].rstrip(PUNCT)
            w[at] = s if s else w[at] + rng.choice(PUNCT)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--in", dest="inp", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--all", action="store_true", help="write the originals too")
    a = ap.parse_args()
    docs = []
    with open(a.inp, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                docs.append(json.loads(line))
    vocab = sorted({w for d in docs for k in ("title", "body") for w in str(d.get(k, "")).split()})
    if not vocab:
        sys.exit("near_dups.py: no words in " + a.inp)
    rng = random.Random(a.seed)
    chosen = range(len(docs)) if a.n >= len(docs) else sorted(rng.sample(range(len(docs)), a.n))
    with open(a.out, "w", encoding="utf-8") as out, open(a.pairs, "w", encoding="utf-8") as pairs:
        if a.all:
            for d in docs:
                out.write(json.dumps(d, ensure_ascii=False) + "\n")
        for i in chosen:
            d = dict(docs[i])
            fields = [str(d.get("title", "")).split(), str(d.get("body", "")).split()]
            for _ in range(rng.randint(1, 5)):
                edit(rng, fields, vocab)
            d["id"] = "%s~dup" % d["id"]
            d["title"], d["body"] = " ".join(fields[0]), " ".join(fields[1])
            out.write(json.dumps(d, ensure_ascii=False) + "\n")
            pairs.write("%s\t%s\n" % (docs[i]["id"], d["id"]))


if __name__ == "__main__":
    main()
