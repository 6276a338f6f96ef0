#!/usr/bin/python3
"""Funnel recall of a window setting (tests/bench/funnel_cost.sh).

  funnel_window_recall.py ADDR PROTO_DIR QUERIES BM25_RUN SELECTION_K STAGE1_K STAGE2_K

For each query of QUERIES that has lines in BM25_RUN (the exhaustive BM25F top
10 of the same cluster, from `funnel search --skip-models --k 10`), asks the
coordinator for the stage-2 window as it is built when serving with the given
global windows (SearchRequest.features = FEATURES_WINDOW) and counts how many
of the BM25F top 10 are in it. Prints "recall R (found/total) window W" with
W the mean window size.
"""
import os
import sys

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import funnel_pb as pb  # noqa: E402

addr, proto, qpath, runpath = sys.argv[1:5]
sel, s1, s2 = (int(x) for x in sys.argv[5:8])
pb.load(proto)
top = {}
for line in open(runpath):
    f = line.split()
    if len(f) >= 3 and int(f[3]) <= 10:
        top.setdefault(f[0], []).append(f[2])
ch = grpc.insecure_channel(addr)
found = total = wsum = nq = 0
for line in open(qpath):
    if "\t" not in line:
        continue
    qid, text = line.rstrip("\n").split("\t", 1)
    if qid not in top:
        continue
    req = pb.M.SearchRequest(query=text, k=s2, selection_k=sel, stage1_k=s1, stage2_k=s2,
                             features=2)  # FeatureMode FEATURES_WINDOW
    r = pb.call(ch, pb.SEARCH, req, pb.M.SearchResponse, timeout=30)
    window = {h.id for h in r.hits}
    wsum += len(window)
    nq += 1
    total += len(top[qid])
    found += sum(1 for d in top[qid] if d in window)
print("recall %.4f (%d/%d) window %.0f queries %d" % (found / total if total else 1.0, found, total,
                                                        wsum / nq if nq else 0, nq))
