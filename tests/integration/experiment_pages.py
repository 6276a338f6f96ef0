#!/usr/bin/python3
"""Helpers of test_experiments.sh (online experiments, docs/engagement.md).

  experiment_pages.py pages ADDR PROTO_DIR QUERIES K EXPERIMENT ARM
      every query searched K times, with session ids s1..sK (so K team-draft
      coin sequences a query), through the live coordinator; checks each
      response: it names EXPERIMENT/ARM, every hit has team A, B or AB (AB:
      neutral, both rankers' next), every even prefix of the page's A and B
      hits has as many of each (team draft), some pages have a neutral hit
      and some an A or B hit first, team B's hits
      come in the BM25 order (a skip_models request's), team A's in the
      stage-2 model's (a request without a session: the default ranker,
      which the test's coordinator sets to the same model), and a request
      without an id is in no experiment (checked on every tenth query). The impression log records the pages.
  experiment_pages.py sample IMPRESSIONS OUT N SESSIONS SEED [NSWAP]
      N experiments of SESSIONS sessions: each session a query drawn
      uniformly, shown one of that query's logged interleaved pages (drawn
      uniformly); all written to OUT, experiment E's sessions with request
      ids QID/eEnJ and the experiment renamed EXPERIMENT-E, so that one
      `funnel clicks simulate` (every session its own random stream) and one
      `funnel experiment report` (a line per experiment) do all N. Feature
      vectors are left out: the click simulator does not read them. NSWAP
      more experiments, named swapped-E, show the pages with the teams'
      labels swapped (B is then the better ranker).
"""
import json
import os
import random
import sys
from concurrent.futures import ThreadPoolExecutor

mode = sys.argv[1]

if mode == "sample":
    imp, out, n, sessions, seed = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    nswap = int(sys.argv[7]) if len(sys.argv) > 7 else 0
    pages = {}
    for line in open(imp):
        o = json.loads(line)
        o.pop("features", None)
        o.pop("time", None)
        for h in o["hits"]:
            h.pop("f", None)
        pages.setdefault(o["request_id"].split("/")[0], []).append(o)
    qids = sorted(pages)
    rng = random.Random(seed)
    swap = {"A": "B", "B": "A", "AB": "AB"}
    with open(out, "w") as f:
        for e in range(n + nswap):
            for j in range(sessions):
                q = rng.choice(qids)
                o = dict(rng.choice(pages[q]))
                o["request_id"] = "%s/e%dn%d" % (q, e, j)
                if e < n:
                    o["experiment"] = "%s-%d" % (o["experiment"], e)
                else:
                    o["experiment"] = "swapped-%d" % (e - n)
                    o["hits"] = [dict(h, team=swap[h["team"]]) for h in o["hits"]]
                f.write(json.dumps(o, separators=(",", ":")) + "\n")
    print("%d experiments of %d sessions over %d queries (%d pages)" %
          (n, sessions, len(qids), sum(len(p) for p in pages.values())))
    sys.exit(0)

import grpc  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import funnel_pb as pb  # noqa: E402

addr, proto, queries, k = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
want_exp, want_arm = sys.argv[6], sys.argv[7]
pb.load(proto)
qs = [l.rstrip("\n").split("\t")[:2] for l in open(queries) if "\t" in l]
ch = grpc.insecure_channel(addr)


def search(**kw):
    return pb.call(ch, pb.SEARCH, pb.M.SearchRequest(plain_text=True, **kw), pb.M.SearchResponse, timeout=30)


def check(q):
    qid, text = q
    bm25 = [h.id for h in search(query=text, k=100, skip_models=True, keep_duplicates=True,
                                 request_id="%s/bm25" % qid).hits]
    model = [h.id for h in search(query=text, k=100, keep_duplicates=True, request_id="%s/model" % qid).hits]
    errs = []
    if int(qid) % 10 == 0:   # (every tenth query: the test's time is short)
        r = search(query=text, k=10, request_id="%s/noid" % qid)
        if r.experiment or r.arm or any(h.team for h in r.hits):
            errs.append("%s: a request without an id is in %s/%s" % (qid, r.experiment, r.arm))
    pages = set()
    firsts = []   # the first hit's team of each page
    for s in range(0, k + 1):
        # s0: the interleaved list itself (no duplicate folding, which can take
        # a hit out of the page after interleaving), not logged for the sample
        r = search(query=text, k=10, request_id="%s/s%d" % (qid, s), session_id="s%d" % max(s, 1),
                   keep_duplicates=(s == 0))
        if (r.experiment, r.arm) != (want_exp, want_arm):
            errs.append("%s s%d: arm %s/%s" % (qid, s, r.experiment, r.arm))
            continue
        tl = [h.team for h in r.hits]
        if s:
            pages.add(tuple(h.id for h in r.hits))
        if set(tl) - {"A", "B", "AB"}:
            errs.append("%s s%d: teams %r" % (qid, s, tl))
        if tl:
            firsts.append(tl[0])
        teams = "".join(t for t in tl if t != "AB")
        for m in range(2, len(teams) + 1 if s == 0 else 0, 2):
            if teams[:m].count("A") != teams[:m].count("B"):
                errs.append("%s s%d: teams %s: not a team draft" % (qid, s, teams))
                break
        ids = [h.id for h in r.hits]
        if len(set(ids)) != len(ids):
            errs.append("%s s%d: a document twice" % (qid, s))
        for t, ref in (("A", model), ("B", bm25)):
            ranks = [ref.index(h.id) if h.id in ref else 10 ** 6 for h in r.hits if h.team in (t, "AB")]
            if ranks != sorted(ranks):
                errs.append("%s s%d: team %s's hits are not in its ranker's order" % (qid, s, t))
        # team draft: each team's k-th pick is the best of its ranker's not
        # yet shown; a hit is neutral (AB) exactly when it is both rankers'
        shown = set()
        for h in r.hits if s == 0 else []:
            best_a = next((d for d in model if d not in shown), None)
            best_b = next((d for d in bm25 if d not in shown), None)
            if (h.team == "AB") != (best_a == best_b):
                errs.append("%s s%d: %s is team %s, the rankers' next are %s and %s" %
                            (qid, s, h.id, h.team, best_a, best_b))
                break
            best = best_a if h.team != "B" else best_b
            if best != h.id:
                errs.append("%s s%d: team %s picked %s, not its best left %s" % (qid, s, h.team, h.id, best))
                break
            shown.add(h.id)
    return errs, len(pages), firsts


with ThreadPoolExecutor(4) as ex:
    res = list(ex.map(check, qs))
errs = [e for r in res for e in r[0]]
for e in errs[:10]:
    print("FAIL:", e)
distinct = sum(r[1] for r in res)
firsts = [t for r in res for t in r[2]]
nab = firsts.count("AB")
# both kinds of top: where the rankers agree on the first hit (neutral) and
# where they do not (a coin's team)
if not nab or nab == len(firsts):
    errs.append("the first hit is neutral on %d of %d pages: want some of each" % (nab, len(firsts)))
    print("FAIL:", errs[-1])
print("%d queries x %d sessions: %d distinct pages, %d errors; first hit neutral (AB) on %d of %d pages" %
      (len(qs), k, distinct, len(errs), nab, len(firsts)))
sys.exit(1 if errs else 0)
