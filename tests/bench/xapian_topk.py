#!/usr/bin/python3
"""xapian_topk.py DBDIR QUERIES.tsv K [K ...] - Xapian's single-threaded top-k OR speed, in process:
BM25Weight (Xapian's default), QueryParser OR with the English stemmer (STEM_SOME), one
Enquire.get_mset(0, k) per query; wall time per pass over all queries, the second of two passes
(the first warms the caches). Prints "K QPS" lines. The peer of tests/bench/selection_speed.sh and
selection_scale.sh."""
import sys
import time
import xapian

db = xapian.Database(sys.argv[1])
qp = xapian.QueryParser()
qp.set_stemmer(xapian.Stem("english"))
qp.set_stemming_strategy(qp.STEM_SOME)
qp.set_database(db)
qp.set_default_op(xapian.Query.OP_OR)
qs = [l.rstrip("\n").split("\t", 1)[1] for l in open(sys.argv[2]) if "\t" in l]
enq = xapian.Enquire(db)
for k in map(int, sys.argv[3:]):
    for rep in range(2):
        t0 = time.perf_counter()
        for q in qs:
            enq.set_query(qp.parse_query(q, 0))
            enq.get_mset(0, k)
        dt = time.perf_counter() - t0
    print("%d %.1f" % (k, len(qs) / dt))
