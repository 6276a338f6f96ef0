"""gate_shed.py PROTO_DIR PORTFILE SHED - a stand-in coordinator for the quality
gate's handling of load shedding (test_gate_shed.sh): it serves
Admin/Generation (STAGE, ACTIVATE, DISCARD, LIST) and Search. Each Search
must be marked background (the gate's shadow searches); the first SHED of
them (-1: all) are refused as a busy coordinator refuses them -
RESOURCE_EXHAUSTED with the trailer grpc-retry-pushback-ms 120 - and the
others answered with ten hits. Writes its port to PORTFILE, runs until
SIGTERM, then prints what it saw: searches, background ones, shed ones, and
the shortest time between a shed search and the next search (the gate must
wait for the hint).
"""
import os
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

import funnel_pb as pb

HINT_MS = 120


def main():
    proto, portfile, shed_first = sys.argv[1], sys.argv[2], int(sys.argv[3])
    pb.load(proto)
    lock = threading.Lock()
    seen = {"searches": 0, "background": 0, "shed": 0, "min_gap_ms": None, "last_shed": None}
    state = {"live": "/g-live", "staged": ""}

    def search(req, ctx):
        now = time.monotonic()
        with lock:
            seen["searches"] += 1
            seen["background"] += req.background
            if seen["last_shed"] is not None:
                gap = (now - seen["last_shed"]) * 1e3
                seen["min_gap_ms"] = gap if seen["min_gap_ms"] is None else min(gap, seen["min_gap_ms"])
                seen["last_shed"] = None
            refuse = shed_first < 0 or seen["shed"] < shed_first
            if refuse:
                seen["shed"] += 1
                seen["last_shed"] = now
        if refuse:
            ctx.set_trailing_metadata((("grpc-retry-pushback-ms", str(HINT_MS)),))
            ctx.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "background search shed (users first): stand-in")
        r = pb.M.SearchResponse()
        for i in range(10):
            h = r.hits.add()
            h.id = "d%d" % i
            h.score = 10.0 - i
        r.coverage.docs_total = 1000
        return r

    def generation(req, ctx):
        r = pb.M.GenerationResponse()
        if req.op == 1:      # STAGE
            state["staged"] = req.generation
        elif req.op == 2:    # ACTIVATE
            state["live"], state["staged"] = req.generation, ""
        elif req.op == 4:    # DISCARD
            state["staged"] = ""
        r.live, r.staged, r.replicas = state["live"], state["staged"], 1
        g = r.loaded.add()
        g.generation, g.state, g.docs, g.docs_total = state["live"], "live", 1000, 1000
        return r

    def unary(fn, req_cls):
        return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=req_cls.FromString,
                                                   response_serializer=lambda m: m.SerializeToString())

    handlers = {
        pb.SEARCH: unary(search, pb.M.SearchRequest),
        "/funnel.v1.Admin/Generation": unary(generation, pb.M.GenerationRequest),
    }

    class Generic(grpc.GenericRpcHandler):
        def service(self, details):
            return handlers.get(details.method)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((Generic(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(portfile + ".tmp", portfile)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    while not done.wait(0.2):
        pass
    server.stop(0)
    gap = seen["min_gap_ms"]
    print("searches %d background %d shed %d min-gap-after-shed-ms %s" % (
        seen["searches"], seen["background"], seen["shed"], "%.0f" % gap if gap is not None else "-"))


if __name__ == "__main__":
    main()
