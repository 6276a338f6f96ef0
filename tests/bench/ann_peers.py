#!/usr/bin/python3
"""ann_peers.py - the ANN peers of `funnel ann bench`: hnswlib and faiss HNSW.

usage: ann_peers.py --lib hnswlib|faiss --base B --query Q --truth T
                    [--metric l2|cosine|dot] [--M 16] [--efc 200] [--threads 2]
                    [--ef 10,20,40,80,160]

Same data readers (.fvecs, IDX .gz; .ivecs truth, first 10 of each row) and
the same output lines as `funnel ann bench`, so tests/bench/ann_bench.sh
parses all three alike:
    build_s=S threads=T index_bytes=B graph_bytes_per_vector=V rss_delta_mb=R peak_rss_mb=P
    ef=E recall@10=R qps=Q
Build uses --threads; every search is single-threaded: hnswlib's knn_query
over all queries in ONE call with num_threads=1, faiss with
omp_set_num_threads(1) and one search() call.
cosine: hnswlib space "cosine"; faiss IndexHNSWFlat(METRIC_INNER_PRODUCT) on
L2-normalised copies of base and queries. dot: hnswlib "ip", faiss METRIC_INNER_PRODUCT.
index_bytes: the size of the peer's own saved index file (vectors included);
graph_bytes_per_vector: (index_bytes - n * dim * 4) / n, the part that is not the vectors.
QPS: a warm-up over the first 500 queries, then the best of --repeat timed
passes, each running the query set as many times as it takes to last 0.25 s
(as `funnel ann bench` does).
"""
import argparse, gzip, os, resource, struct, sys, tempfile, time

import numpy as np


def fvecs(p):
    a = np.fromfile(p, dtype=np.int32)
    d = a[0]
    return np.ascontiguousarray(a.reshape(-1, d + 1)[:, 1:].view(np.float32))


def ivecs(p):
    a = np.fromfile(p, dtype=np.int32)
    d = a[0]
    return a.reshape(-1, d + 1)[:, 1:]


def idx(p):
    with gzip.open(p) as f:
        magic, n, r, c = struct.unpack(">IIII", f.read(16))
        if magic != 2051:
            sys.exit(f"{p}: not an IDX image file (magic {magic})")
        return np.frombuffer(f.read(), np.uint8).reshape(n, r * c).astype(np.float32)


def load(p):
    return fvecs(p) if p.endswith(".fvecs") else idx(p)


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True, choices=["hnswlib", "faiss"])
    ap.add_argument("--base", required=True)
    ap.add_argument("--query", required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--metric", default="l2", choices=["l2", "cosine", "dot"])
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ef", default="10,20,40,80,160")
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    base, q = load(a.base), load(a.query)
    gt = ivecs(a.truth)
    if len(gt) < len(q):
        q = q[:len(gt)]
    gt = gt[:len(q), :10]
    efs = [int(x) for x in a.ef.split(",")]
    n, d = base.shape
    print(f"{a.lib}: n={n} dim={d} queries={len(q)} metric={a.metric} M={a.M} efc={a.efc}")
    tmp = tempfile.NamedTemporaryFile(suffix=".idx", delete=False)
    tmp.close()
    if a.lib == "hnswlib":
        import hnswlib
        space = {"l2": "l2", "cosine": "cosine", "dot": "ip"}[a.metric]
        r0 = rss_mb()
        p = hnswlib.Index(space=space, dim=d)
        p.init_index(max_elements=n, M=a.M, ef_construction=a.efc, random_seed=100)
        t0 = time.perf_counter()
        p.add_items(base, np.arange(n), num_threads=a.threads)
        tb = time.perf_counter() - t0
        r1 = rss_mb()
        p.save_index(tmp.name)

        def search(ef, qq):
            p.set_ef(ef)
            t0 = time.perf_counter()
            lab, _ = p.knn_query(qq, k=10, num_threads=1)
            return lab, time.perf_counter() - t0
    else:
        import faiss
        if a.metric == "cosine":
            base = base / np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-30)
            q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
            base, q = base.astype(np.float32), q.astype(np.float32)
        mt = faiss.METRIC_L2 if a.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        faiss.omp_set_num_threads(a.threads)
        r0 = rss_mb()
        p = faiss.IndexHNSWFlat(d, a.M, mt)
        p.hnsw.efConstruction = a.efc
        t0 = time.perf_counter()
        p.add(base)
        tb = time.perf_counter() - t0
        r1 = rss_mb()
        faiss.write_index(p, tmp.name)
        faiss.omp_set_num_threads(1)

        def search(ef, qq):
            p.hnsw.efSearch = ef
            t0 = time.perf_counter()
            _, lab = p.search(qq, 10)
            return lab, time.perf_counter() - t0
    size = os.path.getsize(tmp.name)
    os.unlink(tmp.name)
    print(f"build_s={tb:.2f} threads={a.threads} index_bytes={size} "
          f"graph_bytes_per_vector={(size - n * d * 4) / n:.1f} rss_delta_mb={r1 - r0:.1f} "
          f"peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0:.1f}")
    for ef in efs:
        search(ef, q[:500])  # warm the caches (and page in the index)
        best = 0.0
        for _ in range(a.repeat):  # best of --repeat timed passes of >= 0.25 s each
            done, el = 0, 0.0
            while el < 0.25:
                lab, dt = search(ef, q)
                done += len(q)
                el += dt
            best = max(best, done / el)
        rec = np.mean([len(set(r.tolist()) & set(g.tolist())) / 10.0 for r, g in zip(lab, gt)])
        print(f"ef={ef} recall@10={rec:.4f} qps={best:.0f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
