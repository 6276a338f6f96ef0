#!/usr/bin/python3
"""xapian_scale.py CORPUS QUERIES - the peer for tests/bench/scale.sh: index a JSON Lines corpus with
python3-xapian (English stemmer, BM25Weight, title+body) and run every query at k=10 in one thread.
Prints one line: docs=N build_s=S docs_per_s=R qps_k10=Q."""
import json, sys, tempfile, time, shutil
import xapian

corpus, queries = sys.argv[1], sys.argv[2]
d = tempfile.mkdtemp(prefix="xapian-scale.")
try:
    t0 = time.time()
    db = xapian.WritableDatabase(d, xapian.DB_CREATE_OR_OVERWRITE)
    tg = xapian.TermGenerator(); tg.set_stemmer(xapian.Stem("english"))
    n = 0
    for line in open(corpus):
        o = json.loads(line)
        doc = xapian.Document(); tg.set_document(doc)
        tg.index_text(o.get("title") or ""); tg.increase_termpos(); tg.index_text(o.get("body") or "")
        doc.add_boolean_term("Q" + o["id"]); db.add_document(doc); n += 1
    db.commit(); db.close()
    build = time.time() - t0
    db = xapian.Database(d)
    qp = xapian.QueryParser(); qp.set_stemmer(xapian.Stem("english")); qp.set_stemming_strategy(qp.STEM_SOME)
    qs = [l.rstrip("\n").split("\t")[1] for l in open(queries) if l.strip()]
    enq = xapian.Enquire(db); enq.set_weighting_scheme(xapian.BM25Weight())
    t0 = time.time()
    for q in qs:
        enq.set_query(qp.parse_query(q, 0)); enq.get_mset(0, 10)
    qt = time.time() - t0
    print(f"xapian peer: docs={n} build_s={build:.1f} docs_per_s={n / build:.0f} qps_k10={len(qs) / qt:.1f}")
finally:
    shutil.rmtree(d, ignore_errors=True)
