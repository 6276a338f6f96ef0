#!/usr/bin/env python3
"""engage_impressions.py - impressions (docs/engagement.md) from a TREC run, for
the engagement tests: every query's top K of the run is one shown page, written
REPEAT times (request ids "QID/1".."QID/REPEAT", or "QID" when REPEAT is 1).

Each hit carries three features, the same vector in every repeat:
  bm25f       the run's score
  grade_hint  the qrels grade plus Gaussian noise (sigma --hint-sigma): a
              stand-in for the features a real ranker has that BM25 lacks
  noise       uniform in [0, 1), no signal

usage: engage_impressions.py RUN QRELS OUT [--k 10] [--repeat 1] [--seed 1]
                             [--hint-sigma 1.0] [--qids FILE]
--qids FILE keeps only the queries listed there (one qid a line).
"""
import argparse
import json
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("qrels")
    ap.add_argument("out")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hint-sigma", type=float, default=1.0)
    ap.add_argument("--qids")
    a = ap.parse_args()

    grades = {}
    with open(a.qrels) as f:
        for line in f:
            p = line.split()
            if len(p) == 4:
                grades[(p[0], p[2])] = int(p[3])
    keep = None
    if a.qids:
        with open(a.qids) as f:
            keep = {l.strip() for l in f if l.strip()}
    pages, order = {}, []
    with open(a.run) as f:
        for line in f:
            p = line.split()
            if len(p) < 5 or (keep is not None and p[0] not in keep):
                continue
            if p[0] not in pages:
                pages[p[0]] = []
                order.append(p[0])
            pages[p[0]].append((p[2], float(p[4])))
    rnd = random.Random(a.seed)
    t = 1764424800.0
    with open(a.out, "w") as out:
        for qid in order:
            hits = sorted(pages[qid], key=lambda h: -h[1])[: a.k]
            vecs = [[s, max(grades.get((qid, d), 0), 0) + rnd.gauss(0, a.hint_sigma), rnd.random()]
                    for d, s in hits]
            for r in range(1, a.repeat + 1):
                rid = qid if a.repeat == 1 else "%s/%d" % (qid, r)
                imp = {"request_id": rid, "time": round(t, 3), "query": "q" + qid, "user": "u%d" % r,
                       "features": ["bm25f", "grade_hint", "noise"],
                       "hits": [{"id": d, "position": i + 1, "score": s, "f": [round(x, 6) for x in v]}
                                for i, ((d, s), v) in enumerate(zip(hits, vecs))]}
                out.write(json.dumps(imp, separators=(",", ":")) + "\n")
                t += 7.5


if __name__ == "__main__":
    main()
