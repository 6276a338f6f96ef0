#!/usr/bin/python3
"""Issue 6, acceptance 2, with test_damaged_index.sh: the answers of a shard
(or a cluster) whose index is damaged, against the undamaged index's.

usage: damaged_index.py PROTO_DIR baseline shard|coord ADDR QUERIES.TSV OUT.json
       damaged_index.py PROTO_DIR check-shard ADDR QUERIES.TSV BASE.json LOG PID LABEL [--expect-damage]
       damaged_index.py PROTO_DIR check-coord ADDR QUERIES.TSV BASE.json SHARD LABEL SHARD_ADDR SHARD_LOG SHARD_PID

baseline: every query at k=100, the hits' (id, score, shard) to OUT.json.
check-shard: every query straight to the shard: each answer is either exactly
  the baseline (same ids, scores bit for bit) or DATA_LOSS; once one was
  DATA_LOSS, every later one is too, Health says NOT_SERVING, the log has the
  ERROR line and the process is alive. --expect-damage: some query must have
  hit the damage (it was aimed at what the queries read).
check-coord: every query through the coordinator: either the baseline with
  full coverage, or partial with SHARD among the failures and the baseline's
  hits from the other shards as a prefix of the hits; then SHARD is as above.
Prints one summary line; exit 0 when every check holds."""
import json
import os
import sys

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import funnel_pb as pb  # noqa: E402

K = 100
LOG_LINE = "index damaged, NOT_SERVING until restarted"


def queries(path):
    out = []
    with open(path) as f:
        for line in f:
            qid, _, text = line.rstrip("\n").partition("\t")
            if qid and text:
                out.append((qid, text))
    return out


def hits_of(resp, coord):
    """[id, score, shard] from the coordinator, [id, score, doc] from a shard"""
    return [[h.id, h.score, h.shard if coord else h.doc] for h in resp.hits]


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def shard_state(addr, log, pid):
    """(health, log has the ERROR line, alive)"""
    with grpc.insecure_channel(addr) as ch:
        h = pb.health(ch)
    try:
        text = open(log, errors="replace").read()
    except OSError:
        text = ""
    return h, any(LOG_LINE in l and "ERROR" in l for l in text.splitlines()), alive(pid)


def main():
    proto_dir, mode = sys.argv[1], sys.argv[2]
    pb.load(proto_dir)
    if mode == "baseline":
        kind, addr, qpath, out = sys.argv[3:7]
        coord = kind == "coord"
        res = {}
        with grpc.insecure_channel(addr) as ch:
            for qid, text in queries(qpath):
                if coord:
                    r = pb.call(ch, pb.SEARCH, pb.M.SearchRequest(query=text, k=K, plain_text=True, keep_duplicates=True), pb.M.SearchResponse)
                    assert not r.partial and r.coverage.shards_answered == r.coverage.shards_asked, qid
                else:
                    r = pb.call(ch, pb.SHARD_SEARCH, pb.M.ShardSearchRequest(query=text, k=K, plain_text=True),
                                pb.M.ShardSearchResponse)
                res[qid] = hits_of(r, coord)
        json.dump(res, open(out, "w"))
        print("baseline: %d queries, %d hits" % (len(res), sum(len(v) for v in res.values())))
        return 0

    bad = []
    if mode == "check-shard":
        addr, qpath, basef, log, pid, label = sys.argv[3:9]
        expect = "--expect-damage" in sys.argv
        base = json.load(open(basef))
        same = lost = 0
        first = ""
        with grpc.insecure_channel(addr) as ch:
            for qid, text in queries(qpath):
                try:
                    r = pb.call(ch, pb.SHARD_SEARCH, pb.M.ShardSearchRequest(query=text, k=K, plain_text=True),
                                pb.M.ShardSearchResponse)
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.DATA_LOSS:
                        bad.append("query %s: %s %s" % (qid, e.code().name, e.details()))
                        continue
                    if not lost:
                        first = e.details()
                    lost += 1
                    continue
                if lost:
                    bad.append("query %s: OK after the shard reported damage" % qid)
                if hits_of(r, False) != base[qid]:
                    bad.append("query %s: OK but different from the undamaged index" % qid)
                else:
                    same += 1
        h, logged, up = shard_state(addr, log, int(pid))
        if lost and h != "NOT_SERVING":
            bad.append("health %s after DATA_LOSS" % h)
        if lost and not logged:
            bad.append("no ERROR line '%s' in %s" % (LOG_LINE, log))
        if not up:
            bad.append("the shard process is gone")
        if expect and not lost:
            bad.append("no query noticed the damage")
        print("%s: %d identical, %d DATA_LOSS, health %s, ERROR line %s, alive %s%s" %
              (label, same, lost, h, "yes" if logged else "no", "yes" if up else "NO",
               (" - first: " + first) if first else ""))
    elif mode == "check-coord":
        addr, qpath, basef, shard, label, saddr, slog, spid = sys.argv[3:11]
        shard = int(shard)
        base = json.load(open(basef))
        same = partial = 0
        statuses = set()
        with grpc.insecure_channel(addr) as ch:
            for qid, text in queries(qpath):
                try:
                    r = pb.call(ch, pb.SEARCH, pb.M.SearchRequest(query=text, k=K, plain_text=True, keep_duplicates=True), pb.M.SearchResponse)
                except grpc.RpcError as e:
                    bad.append("query %s: %s %s" % (qid, e.code().name, e.details()))
                    continue
                got = hits_of(r, True)
                if not r.partial:
                    if got != base[qid] or r.coverage.shards_answered != r.coverage.shards_asked:
                        bad.append("query %s: OK, not partial, but different from the undamaged index" % qid)
                    else:
                        same += 1
                    continue
                failed = {f.shard: f.status for f in r.failures}
                if shard not in failed:
                    bad.append("query %s: partial, but shard %d is not among the failures %s" % (qid, shard, failed))
                statuses.add(failed.get(shard, "?"))
                rest = [x for x in base[qid] if x[2] != shard]
                if got[:len(rest)] != rest:
                    bad.append("query %s: partial, and the other shards' hits differ from the undamaged index" % qid)
                partial += 1
        h, logged, up = shard_state(saddr, slog, int(spid))
        if partial and h != "NOT_SERVING":
            bad.append("shard %d health %s after it failed" % (shard, h))
        if partial and not logged:
            bad.append("no ERROR line in %s" % slog)
        if not up:
            bad.append("shard %d's process is gone" % shard)
        if not partial:
            bad.append("no query noticed the damage")
        print("%s: %d identical, %d partial (shard %d: %s), shard health %s, ERROR line %s, alive %s" %
              (label, same, partial, shard, ",".join(sorted(statuses)) or "-", h, "yes" if logged else "no",
               "yes" if up else "NO"))
    else:
        print(__doc__)
        return 2
    for b in bad[:10]:
        print("  FAIL " + b)
    if len(bad) > 10:
        print("  ... %d more" % (len(bad) - 10))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
