#!/usr/bin/python3
"""Checks of the live funnel with models (test_funnel_models.sh).

  funnel_models.py stage1 ADDR PROTO_DIR QUERIES TMPDIR FUNNEL MODEL
      the shards' stage-1 scores (explain) equal `funnel predict` of MODEL on
      the same feature vectors, and the page is in stage-1 order
  funnel_models.py shards ADDR_1SHARD PROTO_DIR QUERIES ADDR_3SHARDS
      the same final ranking (ids and scores) from 1 and 3 shards
  funnel_models.py rescore SHARD_ADDR PROTO_DIR QUERIES
      Shard/Rescore and feedback_docs called directly: good and malformed requests
  funnel_models.py push ADDR PROTO_DIR QUERIES FUNNEL MODEL_A MODEL_B SECS
      models pushed in turn under load: no failed query, and every response
      names the new model within 1 s of the push
"""
import os
import subprocess
import sys
import threading
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import funnel_pb as pb  # noqa: E402

mode, addr, proto = sys.argv[1], sys.argv[2], sys.argv[3]
pb.load(proto)
queries = [l.rstrip("\n").split("\t")[1] for l in open(sys.argv[4]) if "\t" in l]
ch = grpc.insecure_channel(addr)


def search(channel, q, **kw):
    return pb.call(channel, pb.SEARCH, pb.M.SearchRequest(query=q, plain_text=True, **kw), pb.M.SearchResponse, timeout=10)


def stage_score(hit, name):
    for s in hit.stages:
        if s.stage == name and s.ran:
            return s.score
    return None


def stage_note(resp, name):
    for s in resp.stages:
        if s.name == name:
            return s.note
    return ""


if mode == "stage1":
    tmp, funnel, model = sys.argv[5], sys.argv[6], sys.argv[7]
    rows, want = [], []
    for qi, q in enumerate(queries[:30]):
        r = search(ch, q, k=20, explain=True)
        assert stage_note(r, "stage1") and [s for s in r.stages if s.name == "stage1"][0].ran, \
            "stage 1 did not run: %s" % stage_note(r, "stage1")
        names = list(r.feature_names)
        s1 = [stage_score(h, "stage1") for h in r.hits]
        for a, b in zip(s1, s1[1:]):
            assert a >= b, "query %d: page not in stage-1 order: %r" % (qi, s1)
        for h, s in zip(r.hits, s1):
            feats = " ".join("%d:%.9g" % (i + 1, v) for i, v in enumerate(h.features) if v == v)
            rows.append("0 qid:%d %s" % (qi + 1, feats))
            want.append(s)
    path = os.path.join(tmp, "stage1_check.svm")
    with open(path, "w") as f:
        f.write("# features: " + " ".join(names) + "\n" + "\n".join(rows) + "\n")
    out = subprocess.run([funnel, "predict", "--model", model, "--data", path], capture_output=True,
                         text=True, check=True).stdout.split()
    got = [float(x) for x in out]
    assert len(got) == len(want), "%d predictions for %d hits" % (len(got), len(want))
    # funnel predict prints 9 significant digits: compare at that precision
    worst = max(abs(a - float("%.9g" % b)) for a, b in zip(got, want))
    assert worst == 0, "stage-1 score and funnel predict differ by %g" % worst
    print("ok: %d hits of 30 queries: the shards' stage-1 scores = funnel predict (max |diff| %g), "
          "pages in stage-1 order" % (len(got), worst))

elif mode == "shards":
    other = grpc.insecure_channel(sys.argv[5])
    n = diff = 0
    for q in queries[:60]:
        a, b = search(ch, q, k=50), search(other, q, k=50)
        assert stage_note(a, "stage2") == stage_note(b, "stage2") or True
        assert [s.name for s in a.stages if s.ran] == [s.name for s in b.stages if s.ran], \
            "stages differ: %s / %s" % ([s.name for s in a.stages if s.ran], [s.name for s in b.stages if s.ran])
        assert "stage2" in [s.name for s in a.stages if s.ran], "stage 2 did not run: %s" % stage_note(a, "stage2")
        assert "feedback" in [s.name for s in a.stages if s.ran], \
            "feedback (prf_rm3) did not run: %s" % stage_note(a, "feedback")
        ia, ib = [h.id for h in a.hits], [h.id for h in b.hits]
        # stage 2 ran: the shards sent no stored fields, the page's were fetched afterwards
        assert len(ia) == 50 and all(ia) and all(ib) and all(h.title for h in a.hits), \
            "a page hit without its stored fields (two-phase fetch): %r" % ia[:10]
        assert not a.partial and not b.partial and not a.failures and not b.failures, "fetch failures"
        if ia != ib:
            diff += 1
            print("query %r: 1 shard %s, 3 shards %s" % (q[:40], ia[:10], ib[:10]))
        for x, y in zip(a.hits, b.hits):
            assert x.id != y.id or abs(x.score - y.score) <= 1e-9 * (1 + abs(x.score)), \
                "%s: %r vs %r" % (x.id, x.score, y.score)
        n += len(ia)
    assert diff == 0, "%d of 60 queries ranked differently" % diff
    print("ok: 60 queries x 50 hits (%d): 1 shard and 3 shards rank identically with both models" % n)

elif mode == "rescore":
    # Shard/Rescore called directly, as an attacker would: every malformed
    # request is INVALID_ARGUMENT naming the problem; a good one is scored
    shard = ch
    r = pb.call(shard, pb.SHARD_SEARCH, pb.M.ShardSearchRequest(query="boundary layer flow", k=5,
                                                                 feedback_docs=3), pb.M.ShardSearchResponse)
    assert len(r.feedback) == 3 and all(f.length == sum(f.tf) and len(f.terms) == len(f.tf) for f in r.feedback), \
        "feedback term vectors: %r" % [(f.length, len(f.terms)) for f in r.feedback]
    assert list(r.term_weights) == [1] * len(r.terms), "term weights %r" % list(r.term_weights)
    fbst = [st for st in r.stages if st.name == "feedback"]
    assert [st.name for st in r.stages] == ["selection", "stage1", "feedback"] and fbst[0].ran and \
        fbst[0].count_out == 3 and fbst[0].count_in == len(r.hits), "shard stages %r" % list(r.stages)
    # a stop list from the index: without the terms in over 5% of the documents, a vector is a
    # strict subset of the whole one, and its length still the whole document's
    rc = pb.call(shard, pb.SHARD_SEARCH, pb.M.ShardSearchRequest(query="boundary layer flow", k=5, feedback_docs=3,
                                                                  feedback_max_df=0.05), pb.M.ShardSearchResponse)
    for whole, capped in zip(r.feedback, rc.feedback):
        assert capped.length == whole.length and set(capped.terms) < set(whole.terms), \
            "max_df 0.05: %d of %d terms" % (len(capped.terms), len(whole.terms))
    docs, keys = [h.doc for h in r.hits], [h.key for h in r.hits]
    good = pb.M.ShardRescoreRequest(terms=["boundari", "layer"], weights=[0.5, 0.5], docs=docs, keys=keys)
    ok = pb.call(shard, pb.SHARD_RESCORE, good, pb.M.ShardRescoreResponse)
    assert len(ok.scores) == len(docs) and all(x > 0 for x in ok.scores), "scores %r" % list(ok.scores)
    bad = [
        (dict(terms=["a"], weights=[1, 2], docs=docs), "weights"),
        (dict(terms=["a"] * 1001, weights=[1] * 1001, docs=docs), "terms"),
        (dict(terms=["a", "a"], weights=[1, 1], docs=docs), "appears twice"),
        (dict(terms=["a"], weights=[float("nan")], docs=docs), "weights[0]"),
        (dict(terms=["a"], weights=[-1], docs=docs), "weights[0]"),
        (dict(terms=[""], weights=[1], docs=docs), "terms[0]"),
        (dict(terms=["x" * 300], weights=[1], docs=docs), "terms[0]"),
        (dict(terms=["a"], weights=[1], docs=[10 ** 9]), "out of range"),
        (dict(terms=["a"], weights=[1], docs=docs[:2], keys=keys[:1]), "keys"),
        (dict(terms=["a"], weights=[1], docs=docs[:2], keys=[keys[1], keys[0]]), "another key"),
        (dict(terms=["a"], weights=[1], docs=[docs[0], docs[0]]), "twice"),
        (dict(terms=["a"], weights=[1], docs=list(range(20000))), "max-k"),
    ]
    for kw, want in bad:
        body, err = pb.call_raw(shard, pb.SHARD_RESCORE, pb.M.ShardRescoreRequest(**kw), 5.0)
        assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT and want in err.details(), \
            "%s: %r" % (want, err and (err.code(), err.details()))
    body, err = pb.call_raw(shard, pb.SHARD_SEARCH, pb.M.ShardSearchRequest(query="x", k=5, feedback_docs=101), 5.0)
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT and "feedback_docs" in err.details()
    for mdf in (-0.1, 1.5, float("nan")):
        body, err = pb.call_raw(shard, pb.SHARD_SEARCH,
                                pb.M.ShardSearchRequest(query="x", k=5, feedback_docs=3, feedback_max_df=mdf), 5.0)
        assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT and "feedback_max_df" in \
            err.details(), "feedback_max_df %r: %r" % (mdf, err)
    print("ok: Shard/Rescore scores %d documents; %d malformed requests (and feedback_docs over 100) refused "
          "with INVALID_ARGUMENT naming the problem" % (len(docs), len(bad)))

elif mode == "push":
    funnel, ma, mb, secs = sys.argv[5], sys.argv[6], sys.argv[7], float(sys.argv[8])
    stop = threading.Event()
    stats = {"ok": 0, "failed": 0, "last_note": ""}
    lock = threading.Lock()

    def load():
        i = 0
        c = grpc.insecure_channel(addr)
        while not stop.is_set():
            try:
                r = search(c, queries[i % len(queries)], k=10)
                with lock:
                    stats["ok"] += 1
                    stats["last_note"] = stage_note(r, "stage2")
            except grpc.RpcError as e:
                with lock:
                    stats["failed"] += 1
                print("failed: %s %s" % (e.code(), e.details()))
            i += 1

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    t_end = time.time() + secs
    pushes, worst = 0, 0.0
    model = ma
    try:
        while time.time() < t_end:
            name = os.path.basename(model)
            subprocess.run([funnel, "model", "push", "--server", addr, "--stage", "2", "--model", model],
                           check=True, capture_output=True)
            t0 = time.time()
            while True:
                r = search(ch, queries[0], k=10)
                if stage_note(r, "stage2").startswith(name):
                    break
                if time.time() - t0 > 1.0:
                    raise SystemExit("FAIL: responses still say %r 1 s after pushing %s" % (stage_note(r, "stage2"), name))
                time.sleep(0.01)
            worst = max(worst, time.time() - t0)
            pushes += 1
            model = mb if model == ma else ma
            time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    print("ok: %d pushes in %.0f s under load: %d queries answered, %d failed; the new model answered "
          "%.0f ms after the push at worst" % (pushes, secs, stats["ok"], stats["failed"], worst * 1000))
    sys.exit(1 if stats["failed"] else 0)
