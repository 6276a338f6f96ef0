"""live_updates.py PROTO_DIR COORD CORPUS RUNDIR FUNNEL OUT_JSON - the feed of
test_live_updates.sh (issue 13, acceptance 3).

10,000 operations in batches of 50 through Search/Update: puts of new ids
(cranfield documents under new ids, "u-N"), re-puts of existing ids with a new
title, and deletes of cranfield ids and of earlier puts, interleaved with
searches. After every acknowledged batch:
  - each put id of it is found by Search/Get (timed: all within 1 s), with the
    title it was put with;
  - each deleted id is not found by Get, and a search for its old title does
    not return it.
A third of the way in, shard 1 is killed with SIGKILL and restarted 1 s later
(`funnel cluster restart`): batches touching it are not acknowledged
meanwhile and are sent again. At the end every acknowledged operation is
checked again: puts found with their last title, deletes absent (Get and search).
Writes a JSON summary; exits 1 on any violation.
"""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import funnel_pb as pb  # noqa: E402

proto, coord, corpus, rundir, funnel, out = sys.argv[1:7]
pb.load(proto)
ch = grpc.insecure_channel(coord)
docs = [json.loads(line) for line in open(corpus) if line.strip()]
rnd = random.Random(13)

state = {}        # id -> title (live) or None (deleted): the acknowledged truth
put_ids = []
violations = []
get_lat = []
retries = 0


def get(ids):
    r = pb.call(ch, pb.GET, pb.M.GetRequest(ids=ids, fields=["title"]), pb.M.GetResponse, timeout=10)
    res = {}
    for d in r.docs:
        title = None
        for f in d.fields:
            if f.name == "title":
                title = json.loads(f.json)
        res[d.id] = (d.found, title)
    return res


def search_ids(text):
    if not text or not text.strip(" .,"):
        return []                                  # a document without a title: nothing to search
    r = pb.call(ch, pb.SEARCH, pb.M.SearchRequest(query=text, k=20, plain_text=True), pb.M.SearchResponse,
                timeout=10)
    return [h.id for h in r.hits]


def send(batch):
    global retries
    req = pb.M.UpdateRequest(docs=batch)
    t_end = time.time() + 60
    while True:
        try:
            return pb.call(ch, pb.UPDATE, req, pb.M.UpdateResponse, timeout=30)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.INVALID_ARGUMENT or time.time() > t_end:
                raise
            retries += 1
            time.sleep(0.1)


# background searches: the feed is interleaved with queries
stop = threading.Event()
search_errors = []
nsearch = [0]


def searcher():
    qs = [d["title"] for d in docs[:200] if d.get("title", "").strip(" .,")]
    i = 0
    while not stop.is_set():
        try:
            search_ids(qs[i % len(qs)])
            nsearch[0] += 1
        except grpc.RpcError as e:
            search_errors.append(str(e.code()))
        i += 1


th = threading.Thread(target=searcher, daemon=True)
th.start()

killed = False
nops = 0
next_new = 0
t0 = time.time()
while nops < 10000:
    batch, puts, dels = [], [], []
    for _ in range(50):
        x = rnd.random()
        if x < 0.45:                                   # a new id
            src = docs[rnd.randrange(len(docs))]
            did = "u-%d" % next_new
            next_new += 1
            d = dict(src, id=did, title="%s (copy %s)" % (src.get("title", ""), did))
        elif x < 0.6 and state:                       # a re-put of an id put or deleted before
            did = rnd.choice(put_ids)
            base = next((c for c in docs if c["id"] == did), None) or dict(docs[0])
            d = dict(base, id=did, title="revised %d %s" % (nops, did))
        else:                                          # a delete
            if rnd.random() < 0.5 and put_ids:
                did = rnd.choice(put_ids)
            else:
                did = docs[rnd.randrange(len(docs))]["id"]
            if any(o.id == did for o in batch):
                continue
            batch.append(pb.M.DocUpdate(id=did, remove=True))
            dels.append(did)
            continue
        if any(o.id == d["id"] for o in batch):
            continue
        batch.append(pb.M.DocUpdate(id=d["id"], doc=json.dumps(d)))
        puts.append((d["id"], d["title"]))
    if not batch:
        continue
    if not killed and nops >= 3300:
        pid = int(open(os.path.join(rundir, "shard-1.pid")).read())
        os.kill(pid, signal.SIGKILL)
        killed = True
        threading.Timer(1.0, lambda: subprocess.run([funnel, "cluster", "restart", "--dir", rundir, "shard-1"],
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)).start()
    send(batch)                                        # acknowledged from here on
    ta = time.time()
    for did, title in puts:
        state[did] = title
        put_ids.append(did)
    for did in dels:
        state[did] = None
    nops += len(batch)
    # found by id within 1 s: asked again while not (a shard just restarted
    # may be marked down at the coordinator for a moment)
    want = {p[0]: p[1] for p in puts}
    got = {}
    while True:
        got = get(list(want) + dels) if want or dels else {}
        if all(got.get(i, (False, None)) == (True, t) for i, t in want.items()) or time.time() - ta > 1.0:
            break
        time.sleep(0.02)
    get_lat.append(time.time() - ta)
    for did, title in puts:
        found, t = got.get(did, (False, None))
        if not found or t != title:
            violations.append("put %s not found with its title right after the ack (%s, %r)" % (did, found, t))
    for did in dels:
        if got.get(did, (True,))[0]:
            violations.append("deleted %s found by get after the ack" % did)
    # a deleted cranfield document: searched by its old title, never returned
    for did in dels[:2]:
        src = next((c for c in docs if c["id"] == did), None)
        if src and did in search_ids(src["title"]):
            violations.append("deleted %s returned by a search after the ack" % did)

stop.set()
th.join()
# the end: everything acknowledged, once more
ids = list(state)
for i in range(0, len(ids), 100):
    got = get(ids[i:i + 100])
    for did in ids[i:i + 100]:
        want = state[did]
        found, t = got.get(did, (False, None))
        if want is None and found:
            violations.append("deleted %s found at the end" % did)
        if want is not None and (not found or t != want):
            violations.append("put %s lost or stale at the end (%s, %r, want %r)" % (did, found, t, want))
deleted_src = [c for c in docs if state.get(c["id"], "x") is None]
for c in deleted_src[:300]:
    if c["id"] in search_ids(c["title"]):
        violations.append("deleted %s returned by a search at the end" % c["id"])
summary = {"ops": nops, "acknowledged_ids": len(state), "puts_live": sum(v is not None for v in state.values()),
           "deleted": sum(v is None for v in state.values()), "killed_shard": killed, "retries": retries,
           "searches": nsearch[0], "search_errors": len(search_errors),
           "get_after_ack_max_s": max(get_lat), "seconds": time.time() - t0, "violations": violations[:20],
           "nviolations": len(violations)}
json.dump(summary, open(out, "w"), indent=1)
print(json.dumps(summary))
sys.exit(1 if violations else 0)
