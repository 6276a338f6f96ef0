/* ops_ann.c - `funnel ann bench`: build an HNSW graph (index/ann/hnsw.h) over
 * a benchmark data set and measure recall@10 against single-thread QPS.
 *
 * The graph is built in memory, saved to a file and opened again (mmap,
 * checksum checked), and the searches run on the opened graph: the path a
 * shard will take. Output (one line each, parsed by tests/bench/ann_bench.sh):
 *   ann: n=N dim=D queries=Q metric=M M=16 efc=200 threads=T kernel=avx2
 *   build_s=S threads=T index_bytes=B graph_bytes_per_vector=V vectors_mb=W
 *       peak_rss_mb=R open_s=O
 * index_bytes: the graph file (without the vectors unless --save-vectors);
 * graph_bytes_per_vector: links and per-node arrays (+ 1/|x| for cosine) / n.
 *   ef=E recall@10=R qps=Q            (one per --ef value, in the order given)
 * QPS: every query searched one by one on one thread, after a warm-up pass
 * over the first 500 queries; a timed pass runs the query set as many times
 * as it takes to last 0.25 s; with --repeat R, the best of R passes. recall@10 = |found top 10 & truth top 10| / 10,
 * averaged over the queries.
 */
#include "ops.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "hnsw.h"
#include "vecio.h"

static const char ann_usage[] =
    "usage: funnel ann bench --base B --query Q --truth T [--metric l2|cosine|dot]\n"
    "                        [--M 16] [--efc 200] [--threads N] [--seed S]\n"
    "                        [--ef 10,20,40,80] [--k 10] [--repeat R] [--index FILE]\n"
    "                        [--save-vectors]\n"
    "\n"
    "Builds an HNSW graph over B (.fvecs or IDX, gzip'd or not) with --threads\n"
    "threads (default 2), saves it to FILE (default: a temporary file, removed at\n"
    "the end), opens it again memory-mapped and, for each ef, searches every query\n"
    "of Q one at a time on one thread. Prints the build time, the index size per\n"
    "vector and the peak RSS, then one line per ef:\n"
    "  ef=E recall@10=R qps=Q\n"
    "T is .ivecs: row i holds the true neighbours of query i, best first (the first\n"
    "10 are used). With fewer truth rows than queries, only the first rows' queries\n"
    "are run. A timed pass runs the queries again until it has lasted 0.25 s;\n"
    "--repeat R times every ef R times and reports the best (default 1).\n"
    "--save-vectors also stores the vectors in FILE and searches them there.\n"
    "Exit status: 0 ok, 1 failure, 2 usage error.\n";

/* A timed pass lasts at least this long (the query set is run again as
 * needed): 994 GloVe queries take ~10 ms, too short to time on a shared machine. */
#define PASS_NS 250000000ull

static int parse_efs(const char *s, size_t *efs, size_t cap, size_t *n)
{
    *n = 0;
    while (*s) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || errno || v == 0 || v > 100000 || *n == cap) return -1;
        efs[(*n)++] = v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return *n ? 0 : -1;
}

static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return -1;
    *out = (uint32_t)v;
    return 0;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int ann_bench(int argc, char **argv)
{
    static const struct option lo[] = {{"base", required_argument, 0, 'b'},
                                       {"query", required_argument, 0, 'q'},
                                       {"truth", required_argument, 0, 't'},
                                       {"metric", required_argument, 0, 'm'},
                                       {"M", required_argument, 0, 'M'},
                                       {"efc", required_argument, 0, 'c'},
                                       {"threads", required_argument, 0, 'j'},
                                       {"seed", required_argument, 0, 's'},
                                       {"ef", required_argument, 0, 'e'},
                                       {"k", required_argument, 0, 'k'},
                                       {"repeat", required_argument, 0, 'r'},
                                       {"index", required_argument, 0, 'i'},
                                       {"save-vectors", no_argument, 0, 'V'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    const char *base_p = NULL, *query_p = NULL, *truth_p = NULL, *index_p = NULL;
    ann_hnsw_params hp;
    ann_hnsw_params_default(&hp);
    hp.threads = 2;
    size_t efs[64], nef = 0;
    uint32_t k = 10, seed = 42, repeat = 1;
    int save_vectors = 0, c;
    parse_efs("10,20,40,80", efs, 64, &nef);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'b': base_p = optarg; break;
        case 'q': query_p = optarg; break;
        case 't': truth_p = optarg; break;
        case 'i': index_p = optarg; break;
        case 'V': save_vectors = 1; break;
        case 'm':
            if (ann_metric_parse(optarg, &hp.metric) != 0) goto usage;
            break;
        case 'M':
            if (parse_u32(optarg, 2, ANN_MAX_M, &hp.M)) goto usage;
            break;
        case 'c':
            if (parse_u32(optarg, 1, 100000, &hp.ef_construction)) goto usage;
            break;
        case 'j':
            if (parse_u32(optarg, 1, 1024, &hp.threads)) goto usage;
            break;
        case 's':
            if (parse_u32(optarg, 0, UINT32_MAX, &seed)) goto usage;
            break;
        case 'k':
            if (parse_u32(optarg, 1, 1000, &k)) goto usage;
            break;
        case 'r':
            if (parse_u32(optarg, 1, 100, &repeat)) goto usage;
            break;
        case 'e':
            if (parse_efs(optarg, efs, 64, &nef)) goto usage;
            break;
        case 'h': fputs(ann_usage, stdout); return OPS_EXIT_OK;
        default: goto usage;
        }
    }
    if (!base_p || !query_p || !truth_p || optind != argc) {
        fprintf(stderr, "funnel ann bench: --base, --query and --truth are required\n");
        goto usage;
    }
    hp.seed = seed;

    int ret = OPS_EXIT_FAIL, rc;
    fn_errbuf eb = {{0}};
    float *base = NULL, *query = NULL;
    int32_t *truth = NULL;
    size_t nb, db, nq, dq, nt, dt;
    ann_hnsw_t *built = NULL, *h = NULL;
    ann_scratch_t *s = NULL;
    ann_hit *hits = NULL;
    uint32_t *got = NULL;
    char tmp_index[] = "/tmp/funnel-ann-XXXXXX";
    int tmp_made = 0;
    if ((rc = ann_vecs_load(base_p, &base, &nb, &db, &eb)) != 0) goto fail;
    if ((rc = ann_vecs_load(query_p, &query, &nq, &dq, &eb)) != 0) goto fail;
    if ((rc = ann_ivecs_load(truth_p, &truth, &nt, &dt, &eb)) != 0) goto fail;
    if (dq != db) {
        rc = fn_seterr(&eb, FN_EINVAL, "queries have dimension %zu, base vectors %zu", dq, db);
        goto fail;
    }
    size_t kt = dt < 10 ? dt : 10;     /* truth per query used for recall@10 */
    if (kt < 10 || k < 10) {
        rc = fn_seterr(&eb, FN_EINVAL, "recall@10 needs --k >= 10 and 10 truth ids a row (%zu)", dt);
        goto fail;
    }
    if (nt < nq) {
        fprintf(stderr, "funnel ann bench: %zu truth rows for %zu queries: using the first %zu\n",
                nt, nq, nt);
        nq = nt;
    }
    for (size_t i = 0; i < nq * dt; i++)
        if (truth[i] < 0 || (size_t)truth[i] >= nb) {
            rc = fn_seterr(&eb, FN_EFORMAT, "%s: row %zu names id %d, base has %zu", truth_p,
                           i / dt + 1, (int)truth[i], nb);
            goto fail;
        }

    uint64_t t0 = ann_now_ns();
    if ((rc = ann_hnsw_build(base, nb, db, &hp, &built, &eb)) != 0) goto fail;
    double build_s = (double)(ann_now_ns() - t0) / 1e9;
    if (!index_p) {
        int fd = mkstemp(tmp_index);
        if (fd < 0) {
            rc = fn_seterr(&eb, -errno, "%s: %s", tmp_index, strerror(errno));
            goto fail;
        }
        close(fd);
        tmp_made = 1;
        index_p = tmp_index;
    }
    if ((rc = ann_hnsw_save(built, index_p, save_vectors ? ANN_SAVE_VECTORS : 0, &eb)) != 0)
        goto fail;
    ann_hnsw_close(built);
    built = NULL;
    t0 = ann_now_ns();
    if ((rc = ann_hnsw_open(index_p, save_vectors ? NULL : base, db, 0, &h, &eb)) != 0) goto fail;
    double open_s = (double)(ann_now_ns() - t0) / 1e9;
    ann_hnsw_info info;
    ann_hnsw_get_info(h, &info);
    printf("ann: n=%zu dim=%zu queries=%zu metric=%s M=%u efc=%u threads=%u kernel=%s\n", nb, db,
           nq, ann_metric_name(hp.metric), hp.M, hp.ef_construction, hp.threads, info.kernel);
    printf("build_s=%.2f threads=%u index_bytes=%llu graph_bytes_per_vector=%.1f "
           "vectors_mb=%.1f peak_rss_mb=%.1f open_s=%.3f\n",
           build_s, hp.threads, (unsigned long long)info.file_bytes,
           (double)info.graph_bytes / (double)nb, (double)nb * db * 4 / 1048576.0, peak_rss_mb(),
           open_s);
    fflush(stdout);

    if ((rc = ann_scratch_create(nb, db, &s)) != 0) goto fail;
    hits = malloc(k * sizeof *hits);
    got = malloc(nq * 10 * sizeof *got);
    if (!hits || !got) {
        rc = -ENOMEM;
        goto fail;
    }
    for (size_t e = 0; e < nef; e++) {
        size_t nh;
        size_t warm = nq < 500 ? nq : 500;
        for (size_t i = 0; i < warm; i++)
            if ((rc = ann_hnsw_search(h, s, query + i * dq, k, efs[e], NULL, 0, hits, &nh, NULL)))
                goto fail;
        double best_qps = 0;
        for (uint32_t r = 0; r < repeat; r++) {
            /* a pass: the query set, again and again until PASS_NS have gone by */
            size_t done = 0;
            uint64_t el;
            t0 = ann_now_ns();
            do {
                for (size_t i = 0; i < nq; i++) {
                    rc = ann_hnsw_search(h, s, query + i * dq, k, efs[e], NULL, 0, hits, &nh, NULL);
                    if (rc) goto fail;
                    uint32_t *g = got + i * 10;    /* the top 10, checked after the clock stops */
                    for (size_t a = 0; a < 10; a++) g[a] = a < nh ? hits[a].id : UINT32_MAX;
                }
                done += nq;
                el = ann_now_ns() - t0;
            } while (el < PASS_NS);
            double qps = (double)done / ((double)el / 1e9);
            if (qps > best_qps) best_qps = qps;
        }
        size_t found = 0;
        for (size_t i = 0; i < nq; i++)
            for (size_t a = 0; a < 10; a++)
                for (size_t b = 0; b < 10; b++)
                    if ((int64_t)got[i * 10 + a] == truth[i * dt + b]) {
                        found++;
                        break;
                    }
        printf("ef=%zu recall@10=%.4f qps=%.0f\n", efs[e], (double)found / (10.0 * (double)nq),
               best_qps);
        fflush(stdout);
    }
    ret = OPS_EXIT_OK;
fail:
    if (ret != OPS_EXIT_OK) fprintf(stderr, "funnel ann bench: %s\n", fn_errmsg(&eb, rc));
    free(hits);
    free(got);
    ann_scratch_destroy(s);
    ann_hnsw_close(h);
    ann_hnsw_close(built);
    if (tmp_made) unlink(tmp_index);
    free(base);
    free(query);
    free(truth);
    return ret;
usage:
    fputs(ann_usage, stderr);
    return OPS_EXIT_USAGE;
}

int ops_cmd_ann(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "bench") == 0) return ann_bench(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(ann_usage, stdout);
        return OPS_EXIT_OK;
    }
    fputs(ann_usage, stderr);
    return OPS_EXIT_USAGE;
}
