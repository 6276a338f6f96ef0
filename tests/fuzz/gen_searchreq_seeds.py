#!/usr/bin/env python3
"""gen_searchreq_seeds.py - writes the seed corpus of fuzz_searchreq.c
(tests/fuzz/corpus/searchreq): funnel.v1.SearchRequest messages encoded by
hand (proto/funnel.proto field numbers), valid ones and ones validation
refuses, and a few that do not unpack. Run from anywhere:
python3 tests/fuzz/gen_searchreq_seeds.py [OUTDIR]"""
import os
import struct
import sys


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


def key(field, wt):
    return varint(field << 3 | wt)


def u(field, n):      # uint32 / uint64 / int64 / bool / enum
    return key(field, 0) + varint(n)


def s(field, text):   # string / bytes
    b = text.encode() if isinstance(text, str) else text
    return key(field, 2) + varint(len(b)) + b


def f32(field, x):    # float
    return key(field, 5) + struct.pack('<f', x)


def floats(field, xs):  # packed repeated float
    b = b''.join(struct.pack('<f', x) for x in xs)
    return key(field, 2) + varint(len(b)) + b


QUERY, K, PAGE, EXPLAIN, RID = 1, 2, 3, 4, 5
SEL_K, S1_K, S2_K, USER_TERMS, NOW, FEATURES = 6, 7, 8, 9, 10, 11
SKIP, USER, ALL, EXACT_TOTAL, VECTOR, KNN_K, EF = 12, 13, 14, 15, 16, 17, 18
KNN_EXACT, FUSION, VWEIGHT, PLAIN, SPELL, EXPAND, MIN_HITS, FILTER, FIELDS = \
    19, 20, 21, 22, 23, 24, 25, 26, 27

SEEDS = {
    # valid
    'plain': s(QUERY, 'hello world'),
    'k_page': s(QUERY, 'rust async') + u(K, 20) + u(PAGE, 3) + u(EXPLAIN, 1) + s(RID, 'req-42'),
    'language': s(QUERY, '+title:"quick brown" fox -lazy (cat OR dog)') + u(ALL, 1),
    'plaintext': s(QUERY, 'a "b ( c') + u(PLAIN, 1),
    'filter': s(QUERY, 'news') + s(FILTER, 'lang:en AND popularity>=0.5 AND NOT labels:any(spam,nsfw)'),
    'vector': floats(VECTOR, [0.1, -0.2, 0.3, 0.0]) + u(KNN_K, 50) + u(EF, 128),
    'hybrid': s(QUERY, 'cats') + floats(VECTOR, [1.0, 2.0]) + u(FUSION, 2) + f32(VWEIGHT, 0.25),
    'funnel': s(QUERY, 'x') + u(SEL_K, 1000) + u(S1_K, 500) + u(S2_K, 100) + u(FEATURES, 2) +
              s(USER_TERMS, 'sports tennis') + s(USER, 'u1') + u(NOW, 1700000000) + u(SKIP, 1),
    'fields': s(QUERY, 'doc') + s(FIELDS, 'title') + s(FIELDS, 'url') + u(SPELL, 1) + u(EXPAND, 1) +
              u(MIN_HITS, 5) + u(EXACT_TOTAL, 1),
    'fields_star': s(QUERY, 'doc') + s(FIELDS, '*'),
    'window_edge': s(QUERY, 'edge') + u(K, 100) + u(PAGE, 99),
    'unknown_field': s(QUERY, 'q') + s(99, 'ignored') + u(100, 7),
    # a key of field 0 as a non-canonical varint: protobuf-c keeps it as an
    # unknown field and packs it as the invalid key 02 (found by fuzzing)
    'unknown_field0': s(QUERY, 'cats') + b'\x82\x00' + varint(8) + b'\x00\x00\x80\x3f\x10\x2d\x00\x00' +
                      u(S2_K, 0) + u(S2_K, 2),
    # refused by validation
    'empty': b'',
    'blank': s(QUERY, '   \t'),
    'k_over': s(QUERY, 'q') + u(K, 10001),
    'page_over': s(QUERY, 'q') + u(K, 10) + u(PAGE, 0xFFFFFFFF),
    'bad_utf8': s(QUERY, b'caf\xc3'),
    'bad_rid': s(QUERY, 'q') + s(RID, b'\xff\xfe'),
    'long_rid': s(QUERY, 'q') + s(RID, 'r' * 129),
    'syntax': s(QUERY, 'a AND (b'),
    'bad_filter': s(QUERY, 'q') + s(FILTER, 'popularity>='),
    'nan_vector': floats(VECTOR, [float('nan')]),
    'knn_no_vec': s(QUERY, 'q') + u(KNN_K, 5),
    'weight_over': s(QUERY, 'q') + floats(VECTOR, [1.0]) + f32(VWEIGHT, 1.5),
    'fusion_bad': s(QUERY, 'q') + floats(VECTOR, [1.0]) + u(FUSION, 9),
    'learned_blank': floats(VECTOR, [1.0]) + u(FUSION, 3),
    'features_bad': s(QUERY, 'q') + u(FEATURES, 7),
    'now_negative': s(QUERY, 'q') + u(NOW, -5),
    'fields_bad': s(QUERY, 'q') + s(FIELDS, '*') + s(FIELDS, 'title'),
    'fields_name': s(QUERY, 'q') + s(FIELDS, 'ti-tle'),
    'user_terms_bad': s(QUERY, 'q') + s(USER_TERMS, b'\xc0\x80'),
    'embedded_nul': s(QUERY, b'a\x00b') + s(RID, b'x\x00\xff'),
    # do not unpack
    'truncated': s(QUERY, 'hello')[:-2],
    'bad_wiretype': key(QUERY, 0) + varint(3) + b'abc',
    'huge_len': key(QUERY, 2) + varint(1 << 40) + b'x',
    'group': key(5, 3) + key(5, 4),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus', 'searchreq')
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name + '.bin'), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
