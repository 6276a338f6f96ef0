"""Malformed and hostile RPCs to a coordinator and a shard (acceptance: 1,000
malformed or hostile RPCs, all answered INVALID_ARGUMENT or RESOURCE_EXHAUSTED,
no crash, RSS flat).

    hostile_rpc.py PROTO_DIR COORD_ADDR COORD_PID SHARD_ADDR SHARD_PID [--n N] [--seed S]

Raw bytes go out through channel.unary_unary(path) with no serializer. Every
payload is hand-encoded on the wire and kept only if an oracle (below) proves
it is not a valid request: either its wire structure is broken (truncated,
varint over 10 bytes, length past the end, group or reserved wire types,
field 0, a known field with the wrong wire type) so protobuf-c cannot unpack
it, or it unpacks to a request the docs say is refused (empty query, k over
the window, too many ids, invalid UTF-8 or NUL in a string, ...), or it is
over the 4 MiB receive limit. A few valid requests with unknown fields are
sent as controls (proto3: unknown fields are ignored -> OK).

Exit 0 when every hostile call got INVALID_ARGUMENT or RESOURCE_EXHAUSTED,
both processes live, and RSS after a second storm <= RSS after the first x 1.10
+ 24 MiB, read after the servers' memory timer trimmed; otherwise 1, printing each offending method, status and payload (hex).
"""
import argparse
import collections
import concurrent.futures
import os
import random
import struct
import sys
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import funnel_pb as pb  # noqa: E402

# the request types funnel_pb does not name yet: added before load()
pb._NAMES.update({"GetRequest": "funnel.v1.GetRequest", "ShardGetRequest": "funnel.v1.ShardGetRequest",
                  "ShardFetchRequest": "funnel.v1.ShardFetchRequest"})

COORD_METHODS = {"/funnel.v1.Search/Search": "SearchRequest", "/funnel.v1.Search/Get": "GetRequest"}
SHARD_METHODS = {"/funnel.v1.Shard/Search": "ShardSearchRequest", "/funnel.v1.Shard/Rescore": "ShardRescoreRequest",
                 "/funnel.v1.Shard/Fetch": "ShardFetchRequest", "/funnel.v1.Shard/Get": "ShardGetRequest"}
RECV_LIMIT = 4 * 1024 * 1024
MAX_WINDOW = 10000      # coordinator --max-window default
MAX_K = 10000           # shard --max-k default
OK_CODES = ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED")

# ------------------------------------------------------------ wire format ----


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(f, wt):
    return varint((f << 3) | wt)


def f_var(f, v):
    return tag(f, 0) + varint(v)


def f_len(f, b):
    if isinstance(b, str):
        b = b.encode()
    return tag(f, 2) + varint(len(b)) + b


def f_f32(f, x):
    return tag(f, 5) + struct.pack("<f", x)


def f_f64(f, x):
    return tag(f, 1) + struct.pack("<d", x)


def packed_u(f, vals):
    return f_len(f, b"".join(varint(v) for v in vals))


def packed_f32(f, vals):
    return f_len(f, struct.pack("<%df" % len(vals), *vals))


def packed_f64(f, vals):
    return f_len(f, struct.pack("<%dd" % len(vals), *vals))


class Broken(Exception):
    pass


def read_varint(b, i):
    v = shift = 0
    for n in range(10):
        if i >= len(b):
            raise Broken("varint truncated")
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v & ((1 << 64) - 1), i
    raise Broken("varint over 10 bytes")


def scan(b):
    """[(field, wire type, value)] or Broken: the structure protobuf-c needs."""
    out, i = [], 0
    while i < len(b):
        t, i = read_varint(b, i)
        f, wt = t >> 3, t & 7
        if f == 0 or f >= 1 << 29:
            raise Broken("field number %d" % f)
        if wt == 0:
            v, i = read_varint(b, i)
        elif wt == 1:
            if i + 8 > len(b):
                raise Broken("fixed64 truncated")
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            if i + 4 > len(b):
                raise Broken("fixed32 truncated")
            v, i = b[i:i + 4], i + 4
        elif wt == 2:
            n, i = read_varint(b, i)
            if n > len(b) - i:
                raise Broken("length %d past the end" % n)
            v, i = b[i:i + n], i + n
        else:
            raise Broken("wire type %d" % wt)   # groups (3, 4) and 6, 7: protobuf-c has no groups
        out.append((f, wt, v))
    return out


# ------------------------------------------------------------------ oracle ----

T = None   # field tables from the descriptors: {msg: {number: (name, type, repeated)}}


def tables():
    from google.protobuf.descriptor import FieldDescriptor as FD
    t = {}
    for short in set(COORD_METHODS.values()) | set(SHARD_METHODS.values()):
        d = getattr(pb.M, short).DESCRIPTOR
        t[short] = {f.number: (f.name, f.type, f.label == FD.LABEL_REPEATED) for f in d.fields}
    return t


def decode(msg, b):
    """{name: value} as protobuf-c would unpack b (last scalar wins, repeated
    appended), or Broken. Strings stay bytes."""
    from google.protobuf.descriptor import FieldDescriptor as FD
    LEN_TYPES = (FD.TYPE_STRING, FD.TYPE_BYTES, FD.TYPE_MESSAGE)
    FIX32 = (FD.TYPE_FLOAT, FD.TYPE_FIXED32, FD.TYPE_SFIXED32)
    FIX64 = (FD.TYPE_DOUBLE, FD.TYPE_FIXED64, FD.TYPE_SFIXED64)
    vals = {}
    for f, wt, v in scan(b):
        if f not in T[msg]:
            continue
        name, ty, rep = T[msg][f]
        want = 2 if ty in LEN_TYPES else 5 if ty in FIX32 else 1 if ty in FIX64 else 0
        if rep and ty not in LEN_TYPES and wt == 2:      # packed
            items, j = [], 0
            if want == 0:
                while j < len(v):
                    x, j = read_varint(v, j)
                    items.append(x)
            else:
                w = 4 if want == 5 else 8
                if len(v) % w:
                    raise Broken("packed %s: %d bytes" % (name, len(v)))
                items = [v[k:k + w] for k in range(0, len(v), w)]
            vals.setdefault(name, []).extend(items)
            continue
        if wt != want:
            if ty == FD.TYPE_BOOL:   # protobuf-c reads a bool whatever its wire type: value unknown
                vals[name] = None
                continue
            raise Broken("%s: wire type %d" % (name, wt))
        if rep:
            vals.setdefault(name, []).append(v)
        else:
            vals[name] = v
    return vals


def bad_text(s):
    """Invalid UTF-8, or a NUL (a C string would end there: not what was sent)."""
    if b"\0" in s:
        return True
    try:
        s.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def blank(s):
    try:
        return s.decode("utf-8").strip() == ""
    except UnicodeDecodeError:
        return False


def bad_fields(names):
    if len(names) > 32:
        return True
    if names == [b"*"]:
        return False
    for n in names:
        if not (1 <= len(n) <= 64) or any(not (chr(c).isascii() and (chr(c).isalnum() or c == 95)) for c in n):
            if n != b"*":
                return True
    return False


def u32(v):
    return v & 0xFFFFFFFF


def f32(v):
    return struct.unpack("<f", v)[0]


def f64(v):
    return struct.unpack("<d", v)[0]


def invalid_why(method, b):
    """Why b is certainly not a valid request for method ('' = not certain)."""
    if len(b) > RECV_LIMIT:
        return "over the receive limit"
    msg = COORD_METHODS.get(method) or SHARD_METHODS[method]
    try:
        r = decode(msg, b)
    except Broken as e:
        return "wire: %s" % e
    g = r.get
    if msg == "SearchRequest":
        q = g("query", b"")
        if bad_text(q):
            return "query text"
        if len(q) > 4096:
            return "query bytes"
        if (q == b"" or blank(q)) and not g("vector"):
            return "query empty"
        for k in ("request_id", "user"):
            if len(g(k, b"")) > 128 or bad_text(g(k, b"")):
                return k
        if bad_text(g("user_terms", b"")) or bad_text(g("filter", b"")):
            return "user_terms/filter text"
        if u32(g("k", 0)) > MAX_WINDOW:
            return "k"
        if u32(g("host_cap", 0)) > 1000:
            return "host_cap"
        if u32(g("safe_search", 0)) > 3 or u32(g("features", 0)) > 2 or u32(g("fusion", 0)) > 3:
            return "enum"
        if bad_fields(g("fields", [])):
            return "fields"
        return ""
    if msg in ("GetRequest", "ShardGetRequest"):
        ids = g("ids", [])
        if not 1 <= len(ids) <= 100:
            return "ids count"
        if any(not 1 <= len(i) <= 511 for i in ids):
            return "id bytes"
        if msg == "GetRequest" and any(bad_text(i) for i in ids):
            return "id text"
        if bad_fields(g("fields", [])):
            return "fields"
        return ""
    if msg == "ShardSearchRequest":
        q = g("query", b"")
        if bad_text(q) or len(q) > 4096:
            return "query"
        if (q == b"" or blank(q)) and not g("vector"):
            return "query empty"
        if bad_text(g("user_terms", b"")):
            return "user_terms"
        k = u32(g("k", 0))
        if k == 0 or k > MAX_K:
            return "k"
        if u32(g("features", 0)) > 2 or u32(g("feedback_docs", 0)) > 100:
            return "features/feedback_docs"
        df = f64(g("feedback_max_df")) if "feedback_max_df" in r else 0.0
        if not 0.0 <= df <= 1.0:
            return "feedback_max_df"
        return ""
    if msg == "ShardRescoreRequest":
        terms, w, docs, keys = g("terms", []), g("weights", []), g("docs", []), g("keys", [])
        if len(terms) > 1000 or len(w) != len(terms) or len(docs) > MAX_K or (keys and len(keys) != len(docs)):
            return "counts"
        if any(bad_text(t) or t == b"" for t in terms):
            return "term"
        if any(not (f64(x) >= 0 and f64(x) != float("inf")) for x in w):
            return "weight"
        return ""
    if msg == "ShardFetchRequest":
        docs, keys = g("docs", []), g("keys", [])
        if len(docs) > MAX_K or len(keys) != len(docs):
            return "counts"
        if bad_fields(g("fields", [])):
            return "fields"
        if g("snippets", 0) is not None and u32(g("snippets", 0)) and bad_text(g("query", b"")):
            return "query text"
        return ""
    return ""


# -------------------------------------------------------------- payloads ----

BAD_UTF8 = [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\x80", b"ab\xbfcd", b"\xed\xa0\x80",
            b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xff", b"\xfe\xfe", b"\xe2\x82", b"heat \xf0\x9f\x98",
            b"heat\x00transfer", b"\x00", b"a\x00\xff", b"\xc2", b"\xf8\x88\x80\x80\x80"]


class Gen:
    def __init__(self, rnd, fetch):
        self.r = rnd
        self.fetch = fetch

    # valid requests, required field last, so every prefix lacks it
    def valid(self, m):
        if m == "/funnel.v1.Search/Search":
            return f_var(2, 10) + f_len(5, "hostile-1") + f_var(22, 1) + f_len(1, "heat transfer")
        if m == "/funnel.v1.Search/Get":
            return f_len(2, "title") + f_len(1, "1") + f_len(1, "2")
        if m == "/funnel.v1.Shard/Search":
            return f_var(21, 1) + f_var(7, 1700000000) + f_len(1, "boundary layer") + f_var(2, 10)
        if m == "/funnel.v1.Shard/Rescore":
            return packed_f64(2, [1.0, 0.5]) + f_len(1, "heat") + f_len(1, "transfer")
        if m == "/funnel.v1.Shard/Fetch":
            docs, keys = zip(*self.fetch)   # real (doc, key) pairs from a search: a wrong key is refused
            return f_var(4, 1) + f_len(5, "heat") + packed_u(1, docs) + packed_u(2, keys)
        if m == "/funnel.v1.Shard/Get":
            return f_len(2, "title") + f_len(1, "1") + f_len(1, "3")

    # a request refused for one field: the base of mutations
    def invalid_base(self, m):
        r = self.r
        if m == "/funnel.v1.Search/Search":
            return r.choice([f_var(2, 10), f_len(1, "   "), f_len(1, "heat") + f_var(2, 100000),
                             f_len(1, "heat") + f_len(5, "r" * 200), f_len(1, "heat") + f_var(30, 5000),
                             f_len(1, "heat") + f_var(29, 9), f_len(1, "heat") + f_len(27, "no-such field")])
        if m == "/funnel.v1.Search/Get":
            return r.choice([f_len(2, "title"), b"".join(f_len(1, str(i)) for i in range(101)),
                             f_len(1, "x" * 600), f_len(1, "")])
        if m == "/funnel.v1.Shard/Search":
            return r.choice([f_var(2, 10), f_len(1, "heat"), f_len(1, "heat") + f_var(2, 10 ** 6),
                             f_len(1, "heat") + f_var(2, 5) + f_var(8, 7), f_len(1, "heat") + f_var(2, 5) + f_var(11, 500),
                             f_len(1, "heat") + f_var(2, 5) + f_f64(12, 1.5)])
        if m == "/funnel.v1.Shard/Rescore":
            return r.choice([f_len(1, "heat"), packed_f64(2, [1.0]) + f_len(1, "heat") + f_len(1, "x"),
                             packed_f64(2, [-1.0]) + f_len(1, "heat"), packed_f64(2, [float("nan")]) + f_len(1, "heat"),
                             packed_u(3, [1, 2]) + packed_u(4, [1])])
        if m == "/funnel.v1.Shard/Fetch":
            return r.choice([packed_u(1, [1, 2]), packed_u(1, [1]) + packed_u(2, [1, 2]),
                             packed_u(1, [1]) + packed_u(2, [1]) + f_len(3, "bad name")])
        if m == "/funnel.v1.Shard/Get":
            return r.choice([f_len(2, "title"), f_len(1, "x" * 600), f_len(1, ""),
                             b"".join(f_len(1, str(i)) for i in range(101))])

    def random_bytes(self, m):
        n = self.r.choice([1, 2, 3, 5, 8, 16, 64, 256, 1024, 4096])
        return "random", os.urandom(self.r.randint(1, n))

    def truncation(self, m):
        b = self.valid(m)
        return "truncation", b[:self.r.randint(0, len(b) - 1)]

    def bitflip(self, m):
        b = bytearray(self.r.choice([self.valid(m), self.invalid_base(m)]))
        for _ in range(self.r.randint(1, 3)):
            i = self.r.randrange(len(b))
            b[i] ^= 1 << self.r.randrange(8)
        return "bitflip", bytes(b)

    def big(self, m):
        size = self.r.choice([5 * 1024 * 1024, 16 * 1024 * 1024, 4 * 1024 * 1024 + 1])
        return "big_%dMiB" % (size >> 20), f_len(1, b"a " * (size // 2))

    def near_limit(self, m):
        # under the 4 MiB receive limit but over every per-field limit
        b = self.invalid_base(m)
        return "near_limit", b + f_len(self.unknown_field(m), os.urandom(4 * 1024 * 1024 - 1024))

    def unknown_field(self, m):
        known = T[COORD_METHODS.get(m) or SHARD_METHODS[m]]
        while True:
            f = self.r.choice([self.r.randint(1, 200), self.r.randint(1000, 100000), (1 << 29) - 1, 19000])
            if f not in known:
                return f

    def unknown(self, m):
        b = self.invalid_base(m)
        parts = []
        for _ in range(self.r.randint(1, 6)):
            f, wt = self.unknown_field(m), self.r.choice([0, 1, 2, 5, 0, 2])
            parts.append({0: lambda: f_var(f, self.r.getrandbits(64)), 1: lambda: tag(f, 1) + os.urandom(8),
                          2: lambda: f_len(f, os.urandom(self.r.randint(0, 300))),
                          5: lambda: tag(f, 5) + os.urandom(4)}[wt]())
        for p in parts:
            i = self.r.choice([0, len(b)])
            b = b[:i] + p + b[i:]
        return "unknown_fields", b

    def groups(self, m):
        f = self.unknown_field(m)
        return "group", self.valid(m) + tag(f, 3) + f_var(f + 1, 1) + tag(f, 4)

    def bad_utf8(self, m):
        s = self.r.choice(BAD_UTF8)
        r = self.r
        if m == "/funnel.v1.Search/Search":
            return "bad_utf8", r.choice([f_len(1, b"heat " + s), f_len(1, "heat") + f_len(5, s),
                                          f_len(1, "heat") + f_len(13, s), f_len(1, "heat") + f_len(9, s + b" x"),
                                          f_len(1, "heat") + f_len(27, s), f_len(1, "heat") + f_len(26, b"vertical:" + s)])
        if m == "/funnel.v1.Search/Get":
            return "bad_utf8", r.choice([f_len(1, s), f_len(1, "1") + f_len(1, b"x" + s), f_len(1, "1") + f_len(2, s)])
        if m == "/funnel.v1.Shard/Search":
            return "bad_utf8", r.choice([f_len(1, s) + f_var(2, 10), f_len(1, b"heat " + s) + f_var(2, 10),
                                          f_len(1, "heat") + f_var(2, 10) + f_len(6, s)])
        if m == "/funnel.v1.Shard/Rescore":
            return "bad_utf8", packed_f64(2, [1.0, 1.0]) + f_len(1, "heat") + f_len(1, s)
        if m == "/funnel.v1.Shard/Fetch":
            return "bad_utf8", r.choice([f_var(4, 1) + f_len(5, s) + packed_u(1, [0]) + packed_u(2, [0]),
                                          packed_u(1, [0]) + packed_u(2, [0]) + f_len(3, s)])
        return "bad_utf8", f_len(1, "1") + f_len(2, s)

    def huge_repeated(self, m):
        r = self.r
        if m == "/funnel.v1.Search/Search":
            return "huge_repeated", r.choice([f_len(1, "heat") + b"".join(f_len(27, "a") for _ in range(100000)),
                                               f_len(1, "heat") + f_var(2, 10 ** 6) + packed_f32(16, [0.5] * 900000)])
        if m == "/funnel.v1.Search/Get":
            return "huge_repeated", b"".join(f_len(1, str(i)) for i in range(100000))
        if m == "/funnel.v1.Shard/Search":
            return "huge_repeated", r.choice([packed_f32(17, [0.5] * 1000000),
                                               f_len(1, "heat") + b"".join(f_len(1000, "z") for _ in range(200000))])
        if m == "/funnel.v1.Shard/Rescore":
            return "huge_repeated", r.choice([b"".join(f_len(1, "t%d" % i) for i in range(200000)),
                                               packed_u(3, range(500000)) + packed_u(4, range(500000))])
        if m == "/funnel.v1.Shard/Fetch":
            return "huge_repeated", packed_u(1, [7] * 1000000) + packed_u(2, [7] * 1000000)
        return "huge_repeated", b"".join(f_len(1, "id%d" % i) for i in range(50000))

    def deep(self, m):
        depth = self.r.choice([100, 1000, 10000, 50000])
        if self.r.random() < 0.5:   # nested LEN inside an unknown field of a refused request
            f, inner = self.unknown_field(m), b""
            for _ in range(depth):
                inner = f_len(1, inner)
            return "deep_nesting", self.invalid_base(m) + f_len(f, inner)
        return "deep_groups", self.valid(m) + tag(5000, 3) * depth   # group starts, never ended

    def varint_overflow(self, m):
        b = self.valid(m)
        return "varint_overflow", self.r.choice([
            b + tag(2, 0) + b"\xff" * 10 + b"\x01",            # 11-byte varint value
            b + b"\x80" * 10 + b"\x01" + b"\x00",               # 11-byte tag
            b + tag(1, 2) + b"\xff" * 11,                       # 11-byte length
            b + tag(2, 0) + b"\xff" * 5,                        # varint cut short
            self.invalid_base(m) + tag(2, 0) + b"\xff" * 9 + b"\x7f"])  # 10 bytes, bits past 64

    def negative_length(self, m):
        b = self.valid(m)
        n = self.r.choice([(1 << 64) - 1, 1 << 63, (1 << 32) - 1, 1 << 31, (1 << 31) + 5, 100, 1 << 40])
        f = self.r.choice([1, 2, self.unknown_field(m)])
        return "negative_length", b + tag(f, 2) + varint(n) + b"abc"

    def wrong_wire_type(self, m):
        msg = COORD_METHODS.get(m) or SHARD_METHODS[m]
        f = self.r.choice(sorted(T[msg]))
        wt = self.r.choice([0, 1, 2, 5])
        body = {0: varint(3), 1: b"\0" * 8, 2: varint(2) + b"ab", 5: b"\0" * 4}[wt]
        return "wrong_wire_type", self.valid(m) + tag(f, wt) + body

    def zero_field(self, m):
        return "field_zero", self.valid(m) + self.r.choice([b"\x00\x01", b"\x02\x00", b"\x05abcd", b"\x07"])

    def next(self, m):
        gens = [(self.random_bytes, 12), (self.truncation, 12), (self.bitflip, 12), (self.unknown, 10),
                (self.bad_utf8, 12), (self.varint_overflow, 6), (self.negative_length, 6), (self.wrong_wire_type, 6),
                (self.groups, 3), (self.zero_field, 3), (self.deep, 3), (self.huge_repeated, 2), (self.big, 1),
                (self.near_limit, 1)]
        tot = sum(w for _, w in gens)
        x = self.r.uniform(0, tot)
        for fn, w in gens:
            x -= w
            if x <= 0:
                return fn(m)
        return gens[0][0](m)


# ---------------------------------------------------------------- running ----

def rss_mib(pid):
    return pb.rss_kb(pid)[0] / 1024.0


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def call(ch, method, payload):
    fn = ch.unary_unary(method)   # no serializers: raw bytes out and in
    try:
        fn(payload, timeout=5.0)
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


def main():
    global T
    ap = argparse.ArgumentParser()
    ap.add_argument("proto_dir")
    ap.add_argument("coord")
    ap.add_argument("coord_pid", type=int)
    ap.add_argument("shard")
    ap.add_argument("shard_pid", type=int)
    ap.add_argument("--n", type=int, default=600, help="hostile calls per server after the warm-up")
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--rss-report-only", action="store_true",
                    help="print RSS but do not judge it (sanitizer builds: ASan's quarantine grows RSS)")
    a = ap.parse_args()
    pb.load(a.proto_dir)
    T = tables()
    rnd = random.Random(a.seed)
    print("seed %d" % a.seed)
    opts = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    chans = {"coordinator": grpc.insecure_channel(a.coord, options=opts),
             "shard": grpc.insecure_channel(a.shard, options=opts)}
    sr = pb.call(chans["shard"], "/funnel.v1.Shard/Search",
                 pb.M.ShardSearchRequest(query="boundary layer", k=3, plain_text=True), pb.M.ShardSearchResponse)
    if len(sr.hits) < 2:
        raise SystemExit("the shard found fewer than 2 hits for 'boundary layer'")
    gen = Gen(rnd, [(h.doc, h.key) for h in sr.hits[:2]])
    servers = [("coordinator", a.coord_pid, list(COORD_METHODS)), ("shard", a.shard_pid, list(SHARD_METHODS))]
    bad = []
    counts = collections.Counter()
    kinds = collections.Counter()
    skipped = collections.Counter()

    # controls: the valid bases answer OK (so a refusal below is the mutation's
    # doing), also with unknown fields of every wire type appended
    for name, pid, methods in servers:
        for m in methods:
            v = gen.valid(m)
            assert not invalid_why(m, v), (m, invalid_why(m, v))
            extra = f_var(9001, 5) + tag(9002, 1) + b"\1" * 8 + f_len(9003, b"\xff\x00xyz") + tag(9004, 5) + b"\2" * 4
            for label, p in (("valid", v), ("valid+unknown", v + extra), ("unknown+valid", extra + v)):
                st = call(chans[name], m, p)
                counts[(m, "control " + label, st)] += 1
                if st != "OK":
                    bad.append((m, "control " + label, st, p))

    def one(name, m, fn=None):
        for _ in range(1000):
            kind, p = (fn or gen.next)(m)
            if invalid_why(m, p):
                break
            skipped[kind] += 1
        else:
            raise SystemExit("no invalid payload for %s" % m)
        st = call(chans[name], m, p)
        counts[(m, "hostile", st)] += 1
        kinds[(kind, st)] += 1
        if st not in OK_CODES:
            bad.append((m, kind + " (" + invalid_why(m, p) + ")", st, p))

    def batch(n):
        for name, pid, methods in servers:
            for i in range(n):
                one(name, methods[i % len(methods)])

    t0 = time.time()
    # warm-up: every kind of payload to every method once (the 16 MiB ones too),
    # so the baseline RSS already holds what the allocators keep after big messages
    kinds_all = [gen.random_bytes, gen.truncation, gen.bitflip, gen.unknown, gen.bad_utf8, gen.varint_overflow,
                 gen.negative_length, gen.wrong_wire_type, gen.groups, gen.zero_field, gen.deep, gen.huge_repeated,
                 gen.big, gen.near_limit]
    for name, pid, methods in servers:
        for m in methods:
            for fn in kinds_all + [gen.big, gen.big, gen.huge_repeated]:
                one(name, m, fn)
    batch(a.warmup)

    def storm(n):
        batch(n)
        # and a concurrent burst: 8 clients at once on each server
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            futs = [ex.submit(one, name, methods[i % len(methods)])
                    for name, pid, methods in servers for i in range(100)]
            for f in futs:
                f.result()
        # the servers hand a storm's memory back FN_MEM_IDLE_MS (2 s,
        # common/fn_arena.h) after their last large request, or at the first
        # quiet sweep of their memory timer: RSS is read after both
        time.sleep(pb.MEM_IDLE_WAIT_S)

    # Two storms; the second is judged against the first: the first brings
    # the allocators' per-thread arenas to their high-water mark (the burst's
    # 8 clients at once land on threads the warm-up never used), a leak grows
    # again in the second.
    storm(a.n // 2)
    base = {name: rss_mib(pid) if alive(pid) else 0 for name, pid, _ in servers}
    storm(a.n - a.n // 2)
    after = {name: rss_mib(pid) if alive(pid) else 0 for name, pid, _ in servers}
    dt = time.time() - t0

    print("%-28s %-22s %s" % ("method", "kind", "status: calls"))
    by = collections.defaultdict(dict)
    for (m, kind, st), n in sorted(counts.items()):
        by[(m, kind)][st] = n
    for (m, kind), d in sorted(by.items()):
        print("%-28s %-22s %s" % (m, kind, "  ".join("%s: %d" % kv for kv in sorted(d.items()))))
    print("by payload kind:")
    kd = collections.defaultdict(dict)
    for (kind, st), n in kinds.items():
        kd[kind][st] = n
    for kind in sorted(kd):
        print("  %-18s %s" % (kind, "  ".join("%s: %d" % kv for kv in sorted(kd[kind].items()))))
    if skipped:
        print("generated but not certainly invalid (not sent): %s" % dict(skipped))
    total = sum(n for (m, k, st), n in counts.items() if k == "hostile")
    ncoord = sum(n for (m, k, st), n in counts.items() if k == "hostile" and m in COORD_METHODS)
    print("hostile calls: %d (coordinator %d, shard %d) in %.1f s" % (total, ncoord, total - ncoord, dt))
    rc = 0
    for name, pid, _ in servers:
        if not alive(pid):
            print("FAIL: %s (pid %d) died" % (name, pid))
            rc = 1
            continue
        # + 24 MiB: the freed 64 KiB read slices of the storms' over-limit 16 MiB
        # messages stay in glibc's per-thread heaps until a malloc_trim; once
        # only a large search was followed by one, and +14.6 and +18.8 MiB were
        # seen with no leak (valgrind and LeakSanitizer clean). Now the servers'
        # memory timer trims a quiet server whose anonymous RSS grew
        # (fn_mem_idle), and the RSS is read after it; even so the shard's
        # second storm has ended +12.9 MiB over its first (28.2 -> 41.1, CI
        # gate of acf84a3, seed 31721; the same seed then gave +1.5, +0.5 and
        # +8.8: which threads the burst lands on, not the requests). A leaked
        # payload of the storm (4-16 MiB, hundreds of calls) is far over 24.
        lim = base[name] * 1.10 + 24
        verdict = "ok" if after[name] <= lim else "not judged" if a.rss_report_only else "FAIL"
        print("%s: %s RSS after the first storm %.1f MiB, after the second %.1f MiB (limit %.1f MiB)"
              % (verdict, name, base[name], after[name], lim))
        if verdict == "FAIL":
            rc = 1
    seen = set()
    for m, kind, st, p in bad:
        if (m, kind, st) in seen and len(seen) > 40:
            continue
        seen.add((m, kind, st))
        hx = p.hex() if len(p) <= 256 else p[:256].hex() + "... (%d bytes)" % len(p)
        print("FAIL: %s %s -> %s payload %s" % (m, kind, st, hx))
    if bad:
        print("FAIL: %d calls with a wrong status" % len(bad))
        rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
