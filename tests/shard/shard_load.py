#!/usr/bin/python3
# Drive a funnel-shard with python3-grpcio (an independent gRPC client, raw
# protobuf bytes, no stubs): 200 concurrent searches and every error path.
#   shard_load.py HOST:PORT    prints "ok N of 200 ..." and exits 1 on surprises
import sys, grpc
addr = sys.argv[1]
def varint(n):
    out = b''
    while True:
        b = n & 0x7f; n >>= 7
        if n: out += bytes([b | 0x80])
        else: return out + bytes([b])
def req(q, k, explain=False):
    qb = q.encode()
    m = b'\x0a' + varint(len(qb)) + qb + b'\x10' + varint(k)
    if explain: m += b'\x18\x01'
    return m
ch = grpc.insecure_channel(addr)
search = ch.unary_unary('/funnel.v1.Shard/Search')
futs = [search.future(req(q, 10, i % 2 == 0), timeout=30) for i, q in enumerate(
    ["boundary layer", "heat transfer", "supersonic flow wing", "shock", "laminar"] * 40)]
ok = sum(1 for f in futs if f.exception() is None)
sizes = [len(f.result()) for f in futs[:5]]
print("ok", ok, "of", len(futs), "sizes", sizes)
codes = {}
for name, fn in [("empty", lambda: search(req("", 10), timeout=5)),
                 ("k0", lambda: search(req("x", 0), timeout=5)),
                 ("kbig", lambda: search(req("x", 10001), timeout=5)),
                 ("garbage", lambda: search(b'\x0a\xff\xff', timeout=5)),
                 ("unknown", lambda: ch.unary_unary('/funnel.v1.Shard/Nope')(b'', timeout=5)),
                 ("tiny-deadline", lambda: search(req("boundary layer flow", 10000), timeout=0.0005))]:
    try:
        fn(); codes[name] = "OK"
    except grpc.RpcError as e:
        codes[name] = (e.code().name, e.details())
print(codes)
want = {"empty": "INVALID_ARGUMENT", "k0": "INVALID_ARGUMENT", "kbig": "INVALID_ARGUMENT",
        "garbage": "INVALID_ARGUMENT", "unknown": "UNIMPLEMENTED",
        "tiny-deadline": "DEADLINE_EXCEEDED"}
bad = [n for n, c in want.items() if codes[n][0] != c]
st = ch.unary_unary('/funnel.v1.Admin/Status')(b'', timeout=5)
h = ch.unary_unary('/grpc.health.v1.Health/Check')(b'', timeout=5)
print("status bytes", len(st), "health", h)
if bad or h != b'\x08\x01':
    print("unexpected:", bad, h)
    sys.exit(1)
