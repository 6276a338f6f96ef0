#!/usr/bin/python3
"""typos.py - make misspelt queries for the spelling corrector (issue 10).

    typos.py --in queries.tsv --out typo.tsv --rate 0.3 --seed 1 [--truth truth.tsv]
    typos.py --score --truth truth.tsv --in queries.tsv --corrected fixed.tsv

Each word of five or more ASCII letters gets, with probability RATE (seeded),
exactly one edit: a deletion, an insertion of a key next to a neighbouring
letter, a substitution by a neighbouring QWERTY key, or a transposition of two
adjacent (different) letters. Everything else is kept byte for byte. --truth
writes "qid<TAB>offset<TAB>original<TAB>typo" per edit (offset: the byte offset
of the word in the typo text; the word's case is kept).

--score compares a corrected typo file (funnel spell check --queries) with the
truth and the original queries: a fix is right when the typo word came back
as the original (case-insensitive); it prints precision (right / words
changed) and recall (right / typos).
"""
import argparse
import random
import re
import sys

ROWS = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
OFF = [0.0, 0.25, 0.75]
POS = {c: (r, OFF[r] + i) for r, row in enumerate(ROWS) for i, c in enumerate(row)}


def neighbours(c):
    lc = c.lower()
    if lc not in POS:
        return []
    r, x = POS[lc]
    out = []
    for k, (r2, x2) in POS.items():
        if k == lc:
            continue
        if (r2 == r and abs(x2 - x) < 1.01) or (abs(r2 - r) == 1 and abs(x2 - x) < 1.0):
            out.append(k.upper() if c.isupper() else k)
    return sorted(out)


def typo(word, rng):
    """One edit of word (ASCII letters, len >= 5)."""
    while True:
        kind = rng.choice(["delete", "insert", "substitute", "transpose"])
        if kind == "delete":
            i = rng.randrange(len(word))
            return word[:i] + word[i + 1:]
        if kind == "insert":
            i = rng.randrange(len(word) + 1)
            base = word[i - 1] if i > 0 else word[0]
            ns = neighbours(base)
            if ns:
                return word[:i] + rng.choice(ns) + word[i:]
        if kind == "substitute":
            i = rng.randrange(len(word))
            ns = neighbours(word[i])
            if ns:
                return word[:i] + rng.choice(ns) + word[i + 1:]
        if kind == "transpose":
            cands = [i for i in range(len(word) - 1) if word[i] != word[i + 1]]
            if cands:
                i = rng.choice(cands)
                return word[:i] + word[i + 1] + word[i] + word[i + 2:]


WORD = re.compile(r"[A-Za-z0-9]+")


def make(args):
    rng = random.Random(args.seed)
    truth = []
    with open(args.inp, encoding="utf-8") as f, open(args.out, "w", encoding="utf-8") as out:
        for line in f:
            line = line.rstrip("\n")
            if "\t" not in line:
                out.write(line + "\n")
                continue
            qid, text = line.split("\t", 1)
            rest = ""
            if "\t" in text:
                text, rest = text.split("\t", 1)
                rest = "\t" + rest
            last = 0
            newtext = ""
            for m in WORD.finditer(text):
                newtext += text[last:m.start()]
                w = m.group(0)
                if len(w) >= 5 and w.isalpha() and rng.random() < args.rate:
                    t = typo(w, rng)
                    truth.append((qid, len(newtext.encode()), w, t))
                    w = t
                newtext += w
                last = m.end()
            newtext += text[last:]
            out.write(qid + "\t" + newtext + rest + "\n")
    if args.truth:
        with open(args.truth, "w", encoding="utf-8") as t:
            for q, off, w, ty in truth:
                t.write(f"{q}\t{off}\t{w}\t{ty}\n")
    print(f"typos.py: {len(truth)} typos", file=sys.stderr)


def words_of(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if "\t" in line:
                qid, text = line.split("\t", 1)
                out[qid] = [(m.start(), m.group(0).lower()) for m in WORD.finditer(text.split("\t")[0])]
    return out


def score(args):
    """Align the corrected text with the typo text word by word (same count of
    words: the corrector replaces words only)."""
    truth = {}
    with open(args.truth, encoding="utf-8") as f:
        for line in f:
            q, off, w, t = line.rstrip("\n").split("\t")
            truth.setdefault(q, {})[t.lower()] = w.lower()
    typo_words = words_of(args.inp)
    fixed = words_of(args.corrected)
    changed = right = 0
    ntypos = sum(len(v) for v in truth.values())
    total = 0
    for q, ws in typo_words.items():
        fs = fixed.get(q, ws)
        total += len(ws)
        for (_, a), (_, b) in zip(ws, fs):
            if a != b:
                changed += 1
                if truth.get(q, {}).get(a) == b:
                    right += 1
    p = right / changed if changed else 1.0
    r = right / ntypos if ntypos else 1.0
    print(f"words {total} typos {ntypos} changed {changed} right {right} "
          f"precision {p:.3f} recall {r:.3f} changed_fraction {changed / max(total, 1):.4f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--in", dest="inp", required=True)
    ap.add_argument("--out")
    ap.add_argument("--rate", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--truth")
    ap.add_argument("--score", action="store_true")
    ap.add_argument("--corrected")
    args = ap.parse_args()
    if args.score:
        if not args.truth or not args.corrected:
            ap.error("--score needs --truth and --corrected")
        score(args)
    else:
        if not args.out:
            ap.error("--out is required")
        make(args)


if __name__ == "__main__":
    main()
