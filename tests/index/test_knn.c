/* test_knn.c - index/knn.c: vectors stored by the builder, searched on a
 * shard (exact and HNSW), with filters, deadlines, refusals and damage. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builder.h"
#include "knn.h"
#include "search.h"
#include "testutil.h"
#include "format.h"
#include "ann/hnsw.h"

enum { NDOC = 1500, DIM = 12, K = 10 };

static char tmpdir[256];
static float vecs[NDOC][DIM];
static int has[NDOC];

static void setup(void) { tu_mkdtemp(tmpdir, sizeof tmpdir, "/tmp/test_knn.XXXXXX"); }
static void teardown(void) { tu_rmtree(tmpdir); }
TestSuite(knn, .init = setup, .fini = teardown, .timeout = 120);

static double gauss(unsigned *s)
{
    double u = (rand_r(s) + 1.0) / (RAND_MAX + 2.0), v = (rand_r(s) + 1.0) / (RAND_MAX + 2.0);
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* A corpus of NDOC documents, every 10th without a vector; built with
 * `shards` shards and the metric. Returns the index directory in out. */
static void build(const char *name, uint32_t shards, const char *metric, char *out, size_t cap)
{
    char in[512];
    snprintf(in, sizeof in, "%s/%s.jsonl", tmpdir, name);
    FILE *f = fopen(in, "w");
    cr_assert_not_null(f);
    unsigned seed = 11;
    for (int d = 0; d < NDOC; d++) {
        has[d] = d % 10 != 9;
        fprintf(f, "{\"id\": \"d%d\", \"title\": \"doc %d\", \"body\": \"word%d common\"", d, d, d % 37);
        for (int i = 0; i < DIM; i++) vecs[d][i] = (float)(round(gauss(&seed) * 1e4) / 1e4);
        if (has[d]) {
            fprintf(f, ", \"embedding\": [");
            for (int i = 0; i < DIM; i++) fprintf(f, "%s%.4f", i ? ", " : "", (double)vecs[d][i]);
            fprintf(f, "]");
        }
        fprintf(f, "}\n");
    }
    fclose(f);
    snprintf(out, cap, "%s/%s", tmpdir, name);
    idx_build_opts o;
    memset(&o, 0, sizeof o);
    o.input = in;
    o.out_dir = out;
    o.shards = shards;
    o.on_error = IDX_ON_ERROR_FAIL;
    o.vec_metric = metric;
    o.threads = 2;
    fn_errbuf eb = { { 0 } };
    idx_build_stats st;
    cr_assert_eq(idx_build(&o, &st, &eb), 0, "%s", eb.msg);
    cr_assert_eq(st.vectors, NDOC - NDOC / 10);
    cr_assert_eq(st.vec_dim, DIM);
}

static double score_of(const char *metric, const float *q, const float *x)
{
    double dot = 0, qq = 0, xx = 0, l2 = 0;
    for (int i = 0; i < DIM; i++) {
        dot += (double)q[i] * x[i];
        qq += (double)q[i] * q[i];
        xx += (double)x[i] * x[i];
        l2 += ((double)q[i] - x[i]) * ((double)q[i] - x[i]);
    }
    if (!strcmp(metric, "l2")) return -l2;
    if (!strcmp(metric, "dot")) return dot;
    return dot / sqrt(qq * xx);
}

typedef struct truth { int doc; double s; } truth;
static int truth_cmp(const void *a, const void *b)
{
    const truth *x = a, *y = b;
    return x->s > y->s ? -1 : x->s < y->s ? 1 : x->doc - y->doc;
}

/* the brute-force top K over the documents with a vector (ids "dN") */
static void brute(const char *metric, const float *q, truth *out)
{
    static truth all[NDOC];
    int n = 0;
    for (int d = 0; d < NDOC; d++)
        if (has[d]) all[n++] = (truth){ d, score_of(metric, q, vecs[d]) };
    qsort(all, (size_t)n, sizeof *all, truth_cmp);
    memcpy(out, all, K * sizeof *out);
}

/* a shard's reader and a searcher on it, or the test fails */
static void open_shard(const char *dir, idx_reader_t **r, idx_searcher_t **s)
{
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(idx_reader_open(dir, r, &eb), 0, "%s: %s", dir, eb.msg);
    cr_assert_eq(idx_searcher_create(*r, s, &eb), 0, "%s", eb.msg);
}

static void close_shard(idx_reader_t *r, idx_searcher_t *s)
{
    idx_searcher_destroy(s);
    idx_reader_close(r);
}

/* a hit as its external document number (ids are "dN") */
static int doc_num(idx_searcher_t *s, const idx_knn_hit *kh)
{
    idx_hit h;
    memset(&h, 0, sizeof h);
    h.doc = kh->doc;
    h.key = kh->key;
    fn_errbuf eb;
    cr_assert_eq(idx_docs_fields(s, &h, 1, &eb), 0, "%s", eb.msg);
    return atoi(h.id + 1);
}

static void query(unsigned *seed, float *q)
{
    for (int i = 0; i < DIM; i++) q[i] = (float)gauss(seed);
}

Test(knn, exact_equals_brute_force_and_hnsw_recall_per_metric)
{
    const char *metrics[] = { "cosine", "l2", "dot" };
    for (int m = 0; m < 3; m++) {
        char dir[600], sh[700];
        build(metrics[m], 1, metrics[m], dir, sizeof dir);
        snprintf(sh, sizeof sh, "%s/shard-000", dir);
        idx_reader_t *r;
        idx_searcher_t *s;
        fn_errbuf eb = { { 0 } };
        open_shard(sh, &r, &s);
        cr_assert_eq(idx_reader_info(r)->vec_dim, DIM);
        unsigned seed = 5;
        double recall = 0;
        for (int t = 0; t < 50; t++) {
            float q[DIM];
            query(&seed, q);
            truth tr[K];
            brute(metrics[m], q, tr);
            idx_knn_hit h[K];
            size_t n;
            int dl;
            idx_knn_query kq = { .vec = q, .dim = DIM, .k = K, .exact = 1 };
            cr_assert_eq(idx_knn(s, &kq, h, &n, &dl, &eb), 0, "%s", eb.msg);
            cr_assert_eq(n, K);
            for (int i = 0; i < K; i++) {
                /* float32 kernels against a double reference */
                cr_assert(fabs(h[i].score - tr[i].s) <= 1e-4 * fmax(1, fabs(tr[i].s)),
                          "%s query %d rank %d: score %.7g, brute force %.7g", metrics[m], t, i, h[i].score, tr[i].s);
                if (i + 1 < K && tr[i].s - tr[i + 1].s > 1e-4)
                    cr_assert_eq(doc_num(s, &h[i]), tr[i].doc, "%s query %d rank %d", metrics[m], t, i);
                if (i) cr_assert(h[i - 1].score >= h[i].score);
            }
            kq.exact = 0;
            kq.ef = 64;
            cr_assert_eq(idx_knn(s, &kq, h, &n, &dl, &eb), 0, "%s", eb.msg);
            cr_assert_eq(dl, 0);
            for (size_t i = 0; i < n; i++) {
                int d = doc_num(s, &h[i]);
                cr_assert(has[d], "doc %d has no vector but was returned", d);
                for (int j = 0; j < K; j++) recall += tr[j].doc == d;
            }
        }
        recall /= 50.0 * K;
        cr_assert_geq(recall, 0.9, "%s: HNSW recall@10 %.3f", metrics[m], recall);
        fprintf(stderr, "%s: HNSW recall@10 %.3f at ef 64\n", metrics[m], recall);
        close_shard(r, s);
    }
}

Test(knn, reopened_index_answers_identically_and_three_shards_merge_to_one)
{
    char d1[600], d3[600], sh[700];
    build("one", 1, "cosine", d1, sizeof d1);
    build("three", 3, "cosine", d3, sizeof d3);
    unsigned seed = 9;
    for (int t = 0; t < 20; t++) {
        float q[DIM];
        query(&seed, q);
        idx_knn_hit a[K], b[K], all[3 * K];
        size_t na, nb, nall = 0;
        fn_errbuf eb = { { 0 } };
        idx_knn_query kq = { .vec = q, .dim = DIM, .k = K, .ef = 50 };
        snprintf(sh, sizeof sh, "%s/shard-000", d1);
        for (int pass = 0; pass < 2; pass++) {
            idx_reader_t *r;
            idx_searcher_t *s;
            open_shard(sh, &r, &s);
            cr_assert_eq(idx_knn(s, &kq, pass ? b : a, pass ? &nb : &na, NULL, &eb), 0, "%s", eb.msg);
            close_shard(r, s);
        }
        cr_assert_eq(na, nb);
        for (size_t i = 0; i < na; i++)
            cr_assert(a[i].doc == b[i].doc && a[i].key == b[i].key && memcmp(&a[i].score, &b[i].score, 4) == 0,
                      "query %d rank %zu: a reopened shard answered differently", t, i);
        /* exact: 3 shards' lists merged by (score, key) = 1 shard's */
        kq.exact = 1;
        idx_reader_t *r;
        idx_searcher_t *s;
        snprintf(sh, sizeof sh, "%s/shard-000", d1);
        open_shard(sh, &r, &s);
        cr_assert_eq(idx_knn(s, &kq, a, &na, NULL, &eb), 0);
        close_shard(r, s);
        for (int i = 0; i < 3; i++) {
            snprintf(sh, sizeof sh, "%s/shard-%03d", d3, i);
            open_shard(sh, &r, &s);
            size_t n;
            cr_assert_eq(idx_knn(s, &kq, all + nall, &n, NULL, &eb), 0);
            nall += n;
            close_shard(r, s);
        }
        for (size_t i = 0; i < nall; i++)   /* sort by (score desc, key asc) */
            for (size_t j = i + 1; j < nall; j++)
                if (all[j].score > all[i].score || (all[j].score == all[i].score && all[j].key < all[i].key)) {
                    idx_knn_hit x = all[i]; all[i] = all[j]; all[j] = x;
                }
        for (int i = 0; i < K; i++) {
            cr_assert_eq(all[i].key, a[i].key, "query %d rank %d: 3 shards merged differ from 1 shard", t, i);
            cr_assert(memcmp(&all[i].score, &a[i].score, sizeof a[i].score) == 0);
        }
    }
}

Test(knn, filter_deadline_and_refusals)
{
    char dir[600], sh[700];
    build("f", 1, "l2", dir, sizeof dir);
    snprintf(sh, sizeof sh, "%s/shard-000", dir);
    idx_reader_t *r;
    idx_searcher_t *s;
    fn_errbuf eb = { { 0 } };
    open_shard(sh, &r, &s);
    float q[DIM] = { 0 };
    q[0] = 1;
    /* only even documents allowed */
    size_t ndocs = idx_reader_info(r)->docs;
    uint64_t *allow = calloc((ndocs + 63) / 64, 8);
    for (size_t d = 0; d < ndocs; d += 2) allow[d / 64] |= 1ull << (d % 64);
    idx_knn_hit h[K];
    size_t n;
    int dl = 0;
    for (int exact = 0; exact < 2; exact++) {
        idx_knn_query kq = { .vec = q, .dim = DIM, .k = K, .exact = exact, .allow = allow };
        cr_assert_eq(idx_knn(s, &kq, h, &n, &dl, &eb), 0, "%s", eb.msg);
        cr_assert_eq(n, K);
        for (size_t i = 0; i < n; i++) cr_assert_eq(h[i].doc % 2, 0, "doc %u is not allowed", h[i].doc);
    }
    free(allow);
    idx_knn_query past = { .vec = q, .dim = DIM, .k = K, .ef = 500, .deadline_ns = 1 };
    cr_assert_eq(idx_knn(s, &past, h, &n, &dl, &eb), 0, "%s", eb.msg);
    cr_assert_eq(dl, 1, "a deadline in the past must be reported");
    struct { idx_knn_query q; const char *want; } bad[] = {
        { { .vec = q, .dim = DIM - 1, .k = K }, "numbers" },
        { { .vec = q, .dim = DIM, .k = 0 }, "knn_k" },
        { { .vec = q, .dim = DIM, .k = IDX_MAX_KNN_K + 1 }, "knn_k" },
        { { .vec = q, .dim = DIM, .k = K, .ef = IDX_MAX_KNN_EF + 1 }, "ef" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(idx_knn(s, &bad[i].q, h, &n, &dl, &eb), FN_EINVAL, "case %zu", i);
        cr_assert(strstr(eb.msg, bad[i].want), "case %zu: %s", i, eb.msg);
    }
    q[3] = NAN;
    idx_knn_query nanq = { .vec = q, .dim = DIM, .k = K };
    cr_assert_eq(idx_knn(s, &nanq, h, &n, &dl, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "vector[3]"), "%s", eb.msg);
    close_shard(r, s);
}

Test(knn, damaged_vectors_or_graph_refused_at_open)
{
    char dir[600], sh[700], p[800];
    build("dmg", 1, "cosine", dir, sizeof dir);
    snprintf(sh, sizeof sh, "%s/shard-000", dir);
    /* the graph file: a flipped byte in its middle */
    snprintf(p, sizeof p, "%s/%s", sh, IDX_ANN_FILE);
    int fd = open(p, O_RDWR);
    cr_assert_geq(fd, 0);
    off_t end = lseek(fd, 0, SEEK_END);
    unsigned char c;
    cr_assert_eq(pread(fd, &c, 1, end / 2), 1);
    c ^= 0x40;
    cr_assert_eq(pwrite(fd, &c, 1, end / 2), 1);
    close(fd);
    idx_reader_t *r = NULL;
    fn_errbuf eb = { { 0 } };
    int rc = idx_reader_open(sh, &r, &eb);
    cr_assert_eq(rc, FN_ECORRUPT, "rc %d: %s", rc, eb.msg);
    cr_assert(strstr(eb.msg, IDX_ANN_FILE), "%s", eb.msg);
    cr_assert_null(r);
    /* and a missing one */
    unlink(p);
    rc = idx_reader_open(sh, &r, &eb);
    cr_assert_eq(rc, FN_ECORRUPT, "rc %d: %s", rc, eb.msg);
    cr_assert(strstr(eb.msg, IDX_ANN_FILE), "%s", eb.msg);
}

Test(knn, index_without_vectors_says_so)
{
    char in[512], out[600], sh[700];
    snprintf(in, sizeof in, "%s/plain.jsonl", tmpdir);
    FILE *f = fopen(in, "w");
    fprintf(f, "{\"id\": \"a\", \"title\": \"x\"}\n{\"id\": \"b\", \"title\": \"y\"}\n");
    fclose(f);
    snprintf(out, sizeof out, "%s/plain", tmpdir);
    idx_build_opts o;
    memset(&o, 0, sizeof o);
    o.input = in;
    o.out_dir = out;
    o.shards = 1;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(idx_build(&o, NULL, &eb), 0, "%s", eb.msg);
    snprintf(sh, sizeof sh, "%s/shard-000", out);
    idx_reader_t *r;
    idx_searcher_t *s;
    open_shard(sh, &r, &s);
    cr_assert_eq(idx_reader_info(r)->vec_dim, 0);
    float q[4] = { 1, 2, 3, 4 };
    idx_knn_hit h[1];
    size_t n;
    idx_knn_query kq = { .vec = q, .dim = 4, .k = 1 };
    cr_assert_eq(idx_knn(s, &kq, h, &n, NULL, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "no vectors"), "%s", eb.msg);
    close_shard(r, s);
}

/* vec_sim (feature_registry.h): the document's similarity to the query
 * vector by the index's metric, in double; missing (NaN) for a document
 * without a vector or a query without one. */
#include "feature_registry.h"
Test(knn, vec_sim_feature_by_hand)
{
    const char *metrics[] = { "cosine", "l2", "dot" };
    long col = idx_feature_find("vec_sim");
    cr_assert_geq(col, 0);
    cr_assert_lt((size_t)col, idx_features_cheap(), "vec_sim is a cheap feature (stage 1 may use it)");
    for (int m = 0; m < 3; m++) {
        char dir[600], sh[700];
        build(metrics[m], 1, metrics[m], dir, sizeof dir);
        snprintf(sh, sizeof sh, "%s/shard-000", dir);
        idx_reader_t *r;
        idx_searcher_t *s;
        fn_errbuf eb = { { 0 } };
        open_shard(sh, &r, &s);
        float q[DIM];
        unsigned seed = 21;
        query(&seed, q);
        for (int with = 0; with < 2; with++) {
            idx_query iq = { .text = "common", .k = 200, .vec = with ? q : NULL, .vdim = with ? DIM : 0 };
            idx_results res;
            cr_assert_eq(idx_search(s, &iq, &res, &eb), 0, "%s", eb.msg);
            cr_assert_eq(res.nhits, 200);
            size_t stride = idx_features_cheap();
            float *rows = calloc(res.nhits * stride, sizeof *rows);
            cr_assert_eq(idx_features_compute(s, res.hits, res.nhits, 0, rows, stride, &eb), 0, "%s", eb.msg);
            int seen_missing = 0;
            for (size_t i = 0; i < res.nhits; i++) {
                int d = atoi(res.hits[i].id + 1);
                float v = rows[i * stride + (size_t)col];
                if (!with || !has[d]) {
                    cr_assert(isnan(v), "%s doc %d: vec_sim %g, want missing", metrics[m], d, (double)v);
                    seen_missing += has[d] == 0;
                } else {
                    double want = score_of(metrics[m], q, vecs[d]);
                    cr_assert_eq(v, (float)want, "%s doc %d: vec_sim %.9g, by hand %.9g", metrics[m], d, (double)v, want);
                }
            }
            if (with) cr_assert_gt(seen_missing, 0, "the sample holds documents without a vector");
            free(rows);
        }
        /* a query vector of another dimension is refused by the search */
        idx_query bad = { .text = "common", .k = 5, .vec = q, .vdim = DIM - 2 };
        idx_results res;
        cr_assert_eq(idx_search(s, &bad, &res, &eb), FN_EINVAL);
        cr_assert(strstr(eb.msg, "vector"), "%s", eb.msg);
        close_shard(r, s);
    }
}

/* A graph file truncated while the shard has it open: the search that
 * touches the lost pages is damage (FN_ECORRUPT naming ann.hnsw), not SIGBUS. */
Test(knn, graph_truncated_under_an_open_shard)
{
    char dir[600], sh[700], p[800];
    build("trunc", 1, "l2", dir, sizeof dir);
    snprintf(sh, sizeof sh, "%s/shard-000", dir);
    idx_reader_t *r;
    idx_searcher_t *s;
    fn_errbuf eb = { { 0 } };
    open_shard(sh, &r, &s);
    snprintf(p, sizeof p, "%s/%s", sh, IDX_ANN_FILE);
    cr_assert_eq(truncate(p, 4096), 0);
    float q[DIM] = { 0 };
    q[1] = 1;
    idx_knn_hit h[K];
    size_t n;
    int rc = 0;
    /* a few searches: the first that touches a lost page reports it */
    for (int i = 0; i < 20 && rc == 0; i++) {
        q[0] = (float)i;
        idx_knn_query kq = { .vec = q, .dim = DIM, .k = K, .ef = 200 };
        rc = idx_knn(s, &kq, h, &n, NULL, &eb);
    }
    cr_assert_eq(rc, FN_ECORRUPT, "rc %d (%s)", rc, eb.msg);
    cr_assert(strstr(eb.msg, IDX_ANN_FILE), "%s", eb.msg);
    close_shard(r, s);
}
