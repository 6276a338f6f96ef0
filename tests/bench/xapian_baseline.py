#!/usr/bin/python3
"""xapian_baseline.py [--data DIR] [--runs DIR] [--stop both|funnel|none] [--collections a,b] - the retrieval-quality
peer for Funnel: index each test collection with python3-xapian and evaluate its top-1000 runs with the
reference evaluator (shared/tools/trec_eval.py).

Setup, chosen to match Funnel's analyzer defaults: title + body indexed as text (title first, a position
gap between), Snowball "english" stemmer (TermGenerator/QueryParser STEM_SOME, Xapian's default), the same
English stopword list as index/stopwords.c (read from that file) through xapian.SimpleStopper, Xapian's
default BM25Weight (k1=1, k2=0, k3=1, b=0.5, min_normlen=0.5), queries lowercased and parsed with OR as the
default operator and no query syntax (flags 0). Lowercasing matters: with STEM_SOME Xapian's QueryParser
does not stem capitalized words, and NPL's queries are all upper case; Funnel case-folds before stemming.
Prints a table of the six metrics per collection, with Funnel's stopword list and without any (--stop).
The no-stopword table reproduces the figures quoted for Xapian (NDCG@10 0.350 cranfield, 0.438 npl,
0.347 cisi).

Run from anywhere:  /usr/bin/python3 tests/bench/xapian_baseline.py
(python3 on PATH may be a pyenv without the xapian module.)"""
import argparse, json, os, re, shutil, sys, tempfile

import xapian

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for tools in (os.path.join(ROOT, "..", "shared", "tools"), "/work/shared/tools"):
    if os.path.exists(os.path.join(tools, "trec_eval.py")):
        sys.path.insert(0, tools)
        break
import trec_eval  # noqa: E402

KEYS = ["ndcg@10", "map", "mrr", "p@10", "r@100", "r@1000"]


def funnel_stopwords():
    """The built-in list of index/stopwords.c (the literals between its markers)."""
    src = open(os.path.join(ROOT, "index", "stopwords.c")).read()
    block = src[src.index("BEGIN STOPWORDS"):src.index("END STOPWORDS")]
    words = re.findall(r'"([^"]+)"', block)
    if not words:
        sys.exit("xapian_baseline: no stopwords found in index/stopwords.c")
    return words


def make_stopper(words):
    st = xapian.SimpleStopper()
    for w in words:
        st.add(w)
    return st


def run_collection(cdir, stopper, run_path):
    tmp = tempfile.mkdtemp(prefix="xapian-baseline.")
    try:
        stem = xapian.Stem("english")
        db = xapian.WritableDatabase(tmp, xapian.DB_CREATE_OR_OVERWRITE)
        tg = xapian.TermGenerator()
        tg.set_stemmer(stem)
        if stopper:
            tg.set_stopper(stopper)
        ndocs = 0
        for line in open(os.path.join(cdir, "corpus.jsonl"), encoding="utf-8"):
            if not line.strip():
                continue
            o = json.loads(line)
            doc = xapian.Document()
            tg.set_document(doc)
            tg.index_text(o.get("title") or "")
            tg.increase_termpos()
            tg.index_text(o.get("body") or "")
            doc.set_data(o["id"])
            doc.add_boolean_term("Q" + o["id"])
            db.replace_document("Q" + o["id"], doc)
            ndocs += 1
        db.commit()

        qp = xapian.QueryParser()
        qp.set_stemmer(stem)
        qp.set_stemming_strategy(xapian.QueryParser.STEM_SOME)
        qp.set_default_op(xapian.Query.OP_OR)
        if stopper:
            qp.set_stopper(stopper)
        qp.set_database(db)
        enq = xapian.Enquire(db)
        enq.set_weighting_scheme(xapian.BM25Weight())
        nq = 0
        with open(run_path, "w") as out:
            for line in open(os.path.join(cdir, "queries.tsv"), encoding="utf-8"):
                if not line.strip():
                    continue
                qid, text = line.rstrip("\n").split("\t")[:2]
                enq.set_query(qp.parse_query(text.lower(), 0))
                nq += 1
                for m in enq.get_mset(0, 1000):
                    out.write("%s Q0 %s %d %.6f xapian\n" % (qid, m.document.get_data().decode(), m.rank + 1, m.weight))
        db.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # Evaluate exactly as the reference does from a run file (its tie-break included).
    mean, per = trec_eval.evaluate(trec_eval.load_run(run_path), trec_eval.load_qrels(os.path.join(cdir, "qrels.trec")))
    return ndocs, nq, len(per), mean


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    ap.add_argument("--runs", help="keep the run files here (default: a temporary directory)")
    ap.add_argument("--stop", choices=["both", "funnel", "none"], default="both",
                    help="stopwords: Funnel's English list, none, or a table for each (default)")
    ap.add_argument("--collections", default="cranfield,npl,cisi")
    a = ap.parse_args()
    rundir = a.runs or tempfile.mkdtemp(prefix="xapian-runs.")
    os.makedirs(rundir, exist_ok=True)
    modes = ["funnel", "none"] if a.stop == "both" else [a.stop]
    try:
        for mode in modes:
            stopper = make_stopper(funnel_stopwords()) if mode == "funnel" else None
            print("Xapian %s BM25Weight(default), english stemmer, %s" %
                  (xapian.version_string(), "Funnel English stopwords" if stopper else "no stopwords"))
            print("%-10s %6s %5s " % ("collection", "docs", "qry") + " ".join("%8s" % k for k in KEYS))
            for c in a.collections.split(","):
                cdir = os.path.join(a.data, c)
                if not os.path.exists(os.path.join(cdir, "corpus.jsonl")):
                    print("%-10s missing" % c)
                    continue
                run_path = os.path.join(rundir, "%s.xapian-%s.run" % (c, "stop" if stopper else "nostop"))
                ndocs, nq, neval, mean = run_collection(cdir, stopper, run_path)
                print("%-10s %6d %5d " % (c, ndocs, neval) + " ".join("%8.4f" % mean[k] for k in KEYS))
            print()
    finally:
        if not a.runs:
            shutil.rmtree(rundir, ignore_errors=True)

if __name__ == "__main__":
    main()
