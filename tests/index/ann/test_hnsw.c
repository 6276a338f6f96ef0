/* test_hnsw.c - index/ann: the distance kernels agree, the exact search is a
 * brute force, HNSW recall@10 on random data for every metric, a saved and
 * reopened graph answers identically, damaged files are refused with a
 * message, the filter, the deadline, bad arguments, and the vector readers. */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>
#include <zlib.h>

#include "hnsw.h"
#include "kernels.h"
#include "testutil.h"
#include "vecio.h"

static uint64_t rng_state;

static uint64_t next_u64(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [-1, 1) */
static float unif(void) { return (float)((double)(next_u64() >> 11) * 0x1.0p-52 - 1.0); }

static float *random_vecs(size_t n, size_t dim, uint64_t seed)
{
    rng_state = seed;
    float *v = malloc(n * dim * sizeof *v);
    cr_assert_not_null(v);
    for (size_t i = 0; i < n * dim; i++) v[i] = unif();
    return v;
}

/* ---- the test's own brute force, in double ---- */

typedef struct ref_hit {
    double score;
    uint32_t id;
} ref_hit;

static int metric_desc;     /* 1: larger score is better */

static int ref_cmp(const void *a, const void *b)
{
    const ref_hit *x = a, *y = b;
    if (x->score != y->score) return (x->score < y->score) == !metric_desc ? -1 : 1;
    return x->id < y->id ? -1 : 1;
}

static double ref_score(const float *x, const float *q, size_t dim, ann_metric m)
{
    double s = 0, nx = 0, nq = 0;
    for (size_t j = 0; j < dim; j++) {
        if (m == ANN_L2) s += ((double)x[j] - q[j]) * ((double)x[j] - q[j]);
        else s += (double)x[j] * q[j];
        nx += (double)x[j] * x[j];
        nq += (double)q[j] * q[j];
    }
    if (m == ANN_COSINE) s = (nx > 0 && nq > 0) ? s / sqrt(nx) / sqrt(nq) : 0;
    return s;
}

/* all n scores sorted best first into out[n] */
static void ref_all(const float *v, size_t n, size_t dim, ann_metric m, const float *q, ref_hit *out)
{
    for (size_t i = 0; i < n; i++) out[i] = (ref_hit){ ref_score(v + i * dim, q, dim, m), (uint32_t)i };
    metric_desc = m != ANN_L2;
    qsort(out, n, sizeof *out, ref_cmp);
}

/* |found top 10 & true top 10| */
static size_t overlap10(const ann_hit *h, size_t nh, const ref_hit *truth)
{
    size_t f = 0;
    for (size_t a = 0; a < nh && a < 10; a++)
        for (size_t b = 0; b < 10; b++)
            if (h[a].id == truth[b].id) {
                f++;
                break;
            }
    return f;
}

static ann_hnsw_t *build(const float *v, size_t n, size_t dim, ann_metric m, uint32_t threads)
{
    ann_hnsw_params p;
    ann_hnsw_params_default(&p);
    p.metric = m;
    p.M = 12;
    p.ef_construction = 100;
    p.threads = threads;
    ann_hnsw_t *h = NULL;
    fn_errbuf eb = {{0}};
    int rc = ann_hnsw_build(v, n, dim, &p, &h, &eb);
    cr_assert_eq(rc, 0, "build: %s", fn_errmsg(&eb, rc));
    return h;
}

/* ---- kernels ---- */

Test(ann_kernels, avx2_agrees_with_scalar)
{
    const ann__kernel_set *sc = ann__kernels_scalar(), *av = ann__kernels_avx2();
    cr_assert_str_eq(sc->name, "scalar");
    if (!av) cr_skip_test("no AVX2+FMA on this CPU: only the scalar kernels run");
    cr_assert_str_eq(av->name, "avx2");
    const char *force = getenv("FUNNEL_ANN_KERNEL");
    if (force && !strcmp(force, "scalar"))
        cr_assert_eq(ann__kernels(), sc, "FUNNEL_ANN_KERNEL=scalar must force the scalar path");
    else
        cr_assert_eq(ann__kernels(), av, "the dispatcher must pick AVX2 on an AVX2 CPU");
    size_t lens[90], nl = 0;
    for (size_t d = 1; d <= 80; d++) lens[nl++] = d;
    lens[nl++] = 784;
    lens[nl++] = 1000;
    lens[nl++] = 25;
    float *a = random_vecs(1, 1000, 1), *b = random_vecs(1, 1000, 2);
    for (size_t t = 0; t < nl; t++) {
        size_t d = lens[t];
        double l2 = 0, dot = 0, mag = 0;
        for (size_t j = 0; j < d; j++) {
            l2 += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
            dot += (double)a[j] * b[j];
            mag += fabs((double)a[j] * b[j]);
        }
        /* the vector ends exactly at the end of an allocation: a read past it
         * would be seen by ASan and valgrind */
        float *ta = malloc(d * sizeof *ta), *tb = malloc(d * sizeof *tb);
        memcpy(ta, a, d * sizeof *ta);
        memcpy(tb, b, d * sizeof *tb);
        float s2 = sc->l2(ta, tb, d), v2 = av->l2(ta, tb, d);
        float sd = sc->dot(ta, tb, d), vd = av->dot(ta, tb, d);
        cr_assert(fabs(s2 - l2) <= 1e-5 * l2 + 1e-6, "d=%zu scalar l2 %g vs %g", d, s2, l2);
        cr_assert(fabs(v2 - l2) <= 1e-5 * l2 + 1e-6, "d=%zu avx2 l2 %g vs %g", d, v2, l2);
        cr_assert(fabs(sd - dot) <= 1e-5 * mag + 1e-6, "d=%zu scalar dot %g vs %g", d, sd, dot);
        cr_assert(fabs(vd - dot) <= 1e-5 * mag + 1e-6, "d=%zu avx2 dot %g vs %g", d, vd, dot);
        free(ta);
        free(tb);
    }
    /* exact on small integers: both must give the same bits */
    float x[37], y[37];
    for (int j = 0; j < 37; j++) x[j] = (float)(j % 5), y[j] = (float)(j % 3 - 1);
    cr_assert_eq(sc->l2(x, y, 37), av->l2(x, y, 37));
    cr_assert_eq(sc->dot(x, y, 37), av->dot(x, y, 37));
    double want = 0;
    for (int j = 0; j < 37; j++) want += (double)(x[j] - y[j]) * (x[j] - y[j]);
    cr_assert_eq(av->l2(x, y, 37), (float)want);
    free(a);
    free(b);
}

/* ---- exact search ---- */

Test(ann_exact, equals_a_brute_force)
{
    const size_t n = 600, dim = 13, k = 10;
    float *v = random_vecs(n, dim, 7), *q = random_vecs(20, dim, 8);
    ref_hit *ref = malloc(n * sizeof *ref);
    ann_hit hits[10];
    const ann_metric ms[] = { ANN_L2, ANN_DOT, ANN_COSINE };
    for (int mi = 0; mi < 3; mi++) {
        ann_metric m = ms[mi];
        ann_hnsw_t *h = build(v, n, dim, m, 1);
        for (size_t qi = 0; qi < 20; qi++) {
            const float *qq = q + qi * dim;
            ref_all(v, n, dim, m, qq, ref);
            size_t nh = 0;
            cr_assert_eq(ann_exact(v, n, dim, m, qq, k, NULL, hits, &nh), 0);
            cr_assert_eq(nh, k);
            for (size_t i = 0; i < k; i++) {
                /* same id, or a near-tie the float rounding may order either way */
                double mine = ref_score(v + (size_t)hits[i].id * dim, qq, dim, m);
                cr_assert(hits[i].id == ref[i].id || fabs(mine - ref[i].score) < 1e-5,
                          "%s q%zu rank %zu: %u (%.7g) vs %u (%.7g)", ann_metric_name(m), qi, i,
                          hits[i].id, mine, ref[i].id, ref[i].score);
                cr_assert(fabs(hits[i].score - mine) <= 1e-5 * (1 + fabs(mine)),
                          "%s: score %.7g, true %.7g", ann_metric_name(m), hits[i].score, mine);
                if (i) cr_assert(m == ANN_L2 ? hits[i].score >= hits[i - 1].score
                                             : hits[i].score <= hits[i - 1].score);
            }
            /* the graph's own exact search (cosine: its stored 1/|x|) agrees */
            ann_hit h2[10];
            size_t nh2 = 0;
            cr_assert_eq(ann_hnsw_exact(h, qq, k, NULL, h2, &nh2), 0);
            cr_assert_eq(nh2, k);
            for (size_t i = 0; i < k; i++) {
                cr_assert_eq(h2[i].id, hits[i].id);
                cr_assert_float_eq(h2[i].score, hits[i].score, 1e-5f);
            }
        }
        ann_hnsw_close(h);
    }
    /* k larger than n: every vector, best first */
    ann_hit all[8];
    size_t nh = 0;
    cr_assert_eq(ann_exact(v, 5, dim, ANN_L2, q, 8, NULL, all, &nh), 0);
    cr_assert_eq(nh, 5);
    free(ref);
    free(v);
    free(q);
}

/* ---- recall ---- */

static double recall_at_10(ann_hnsw_t *h, const float *v, size_t n, size_t dim, ann_metric m,
                           const float *q, size_t nq, size_t ef)
{
    ann_scratch_t *s;
    cr_assert_eq(ann_scratch_create(n, dim, &s), 0);
    ref_hit *ref = malloc(n * sizeof *ref);
    ann_hit hits[10];
    size_t found = 0;
    for (size_t i = 0; i < nq; i++) {
        size_t nh = 0;
        unsigned fl = 99;
        cr_assert_eq(ann_hnsw_search(h, s, q + i * dim, 10, ef, NULL, 0, hits, &nh, &fl), 0);
        cr_assert_eq(nh, 10);
        cr_assert_eq(fl, 0);
        ref_all(v, n, dim, m, q + i * dim, ref);
        found += overlap10(hits, nh, ref);
        /* the scores are the metric's, best first */
        for (size_t j = 0; j < nh; j++) {
            double t = ref_score(v + (size_t)hits[j].id * dim, q + i * dim, dim, m);
            cr_assert(fabs(hits[j].score - t) <= 1e-4 * (1 + fabs(t)), "score %g, true %g",
                      hits[j].score, t);
            if (j) cr_assert(m == ANN_L2 ? hits[j].score >= hits[j - 1].score
                                         : hits[j].score <= hits[j - 1].score);
        }
    }
    free(ref);
    ann_scratch_destroy(s);
    return (double)found / (10.0 * (double)nq);
}

Test(ann_hnsw, recall_on_random_data_every_metric)
{
    const size_t n = 2000, dim = 16, nq = 100;
    float *v = random_vecs(n, dim, 11), *q = random_vecs(nq, dim, 12);
    const ann_metric ms[] = { ANN_L2, ANN_DOT, ANN_COSINE };
    for (int mi = 0; mi < 3; mi++) {
        ann_hnsw_t *h = build(v, n, dim, ms[mi], 1);
        ann_hnsw_info info;
        ann_hnsw_get_info(h, &info);
        cr_assert_eq(info.n, n);
        cr_assert_eq(info.M0, 24);
        double r = recall_at_10(h, v, n, dim, ms[mi], q, nq, 64);
        double r10 = recall_at_10(h, v, n, dim, ms[mi], q, nq, 10);
        cr_log_info("%s: recall@10 %.3f at ef 64, %.3f at ef 10", ann_metric_name(ms[mi]), r, r10);
        cr_assert(r >= 0.9, "%s: recall@10 %.3f at ef 64", ann_metric_name(ms[mi]), r);
        cr_assert(r10 >= 0.7, "%s: recall@10 %.3f at ef 10", ann_metric_name(ms[mi]), r10);
        cr_assert(r10 <= r + 0.02, "%s: a larger ef must not lose recall", ann_metric_name(ms[mi]));
        ann_hnsw_close(h);
    }
    free(v);
    free(q);
}

Test(ann_hnsw, two_threads_build_a_good_graph)
{
    const size_t n = 2000, dim = 16, nq = 100;
    float *v = random_vecs(n, dim, 21), *q = random_vecs(nq, dim, 22);
    ann_hnsw_t *h = build(v, n, dim, ANN_L2, 2);
    double r = recall_at_10(h, v, n, dim, ANN_L2, q, nq, 64);
    cr_assert(r >= 0.9, "recall@10 %.3f", r);
    ann_hnsw_close(h);
    free(v);
    free(q);
}

/* Tight clusters far apart: keeping only each node's nearest neighbours would
 * leave every cluster an island the search cannot leave; the neighbour
 * selection heuristic keeps the links between them. */
Test(ann_hnsw, clustered_data_stays_connected)
{
    const size_t nc = 20, per = 100, n = nc * per, dim = 8, nq = 60;
    float *v = random_vecs(n, dim, 101), *q = random_vecs(nq, dim, 102);
    float *centre = random_vecs(nc, dim, 103);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < dim; j++) v[i * dim + j] = 100 * centre[(i % nc) * dim + j] + v[i * dim + j];
    for (size_t i = 0; i < nq; i++)
        for (size_t j = 0; j < dim; j++) q[i * dim + j] = 100 * centre[(i % nc) * dim + j] + q[i * dim + j];
    ann_hnsw_params p;
    ann_hnsw_params_default(&p);
    p.M = 6;
    p.ef_construction = 40;
    ann_hnsw_t *h = NULL;
    cr_assert_eq(ann_hnsw_build(v, n, dim, &p, &h, NULL), 0);
    double r = recall_at_10(h, v, n, dim, ANN_L2, q, nq, 20);
    cr_assert(r >= 0.9, "recall@10 %.3f on clustered data", r);
    ann_hnsw_close(h);
    free(centre);
    free(v);
    free(q);
}

/* Many threads may search one graph, each with its own scratch. */
typedef struct search_job {
    const ann_hnsw_t *h;
    const float *q;
    size_t nq, dim;
    ann_hit *out;           /* nq x 10 */
    int rc;
} search_job;

static void *search_all(void *arg)
{
    search_job *j = arg;
    ann_hnsw_info info;
    ann_hnsw_get_info(j->h, &info);
    ann_scratch_t *s;
    j->rc = ann_scratch_create(info.n, j->dim, &s);
    for (size_t i = 0; j->rc == 0 && i < j->nq; i++) {
        size_t nh;
        j->rc = ann_hnsw_search(j->h, s, j->q + i * j->dim, 10, 40, NULL, 0, j->out + i * 10, &nh, NULL);
        if (j->rc == 0 && nh != 10) j->rc = -1;
    }
    ann_scratch_destroy(s);
    return NULL;
}

Test(ann_hnsw, concurrent_searches_agree)
{
    const size_t n = 1500, dim = 16, nq = 200;
    float *v = random_vecs(n, dim, 111), *q = random_vecs(nq, dim, 112);
    ann_hnsw_t *h = build(v, n, dim, ANN_COSINE, 2);
    ann_hit *ref = calloc(nq * 10, sizeof *ref), *out[3];
    search_job ref_job = { h, q, nq, dim, ref, 0 };
    search_all(&ref_job);
    cr_assert_eq(ref_job.rc, 0);
    pthread_t t[3];
    search_job jobs[3];
    for (int i = 0; i < 3; i++) {
        out[i] = calloc(nq * 10, sizeof *out[i]);
        jobs[i] = (search_job){ h, q, nq, dim, out[i], 0 };
        cr_assert_eq(pthread_create(&t[i], NULL, search_all, &jobs[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(jobs[i].rc, 0);
        cr_assert_eq(memcmp(out[i], ref, nq * 10 * sizeof *ref), 0, "thread %d differs", i);
        free(out[i]);
    }
    free(ref);
    ann_hnsw_close(h);
    free(v);
    free(q);
}

/* ---- save / open ---- */

static char tmpdir[256];

static void mk(void) { tu_mkdtemp(tmpdir, sizeof tmpdir, "/tmp/test_hnsw.XXXXXX"); }
static void rm(void) { tu_rmtree(tmpdir); }

static void file_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

Test(ann_file, reopened_graph_answers_identically, .init = mk, .fini = rm)
{
    const size_t n = 1000, dim = 20, nq = 40;
    float *v = random_vecs(n, dim, 31), *q = random_vecs(nq, dim, 32);
    const ann_metric ms[] = { ANN_L2, ANN_DOT, ANN_COSINE };
    for (int mi = 0; mi < 3; mi++) {
        ann_hnsw_t *h = build(v, n, dim, ms[mi], 1);
        char p1[300], p2[300];
        file_path(p1, sizeof p1, "g.hnsw");
        file_path(p2, sizeof p2, "gv.hnsw");
        fn_errbuf eb = {{0}};
        cr_assert_eq(ann_hnsw_save(h, p1, 0, &eb), 0, "%s", eb.msg);
        cr_assert_eq(ann_hnsw_save(h, p2, ANN_SAVE_VECTORS, &eb), 0, "%s", eb.msg);
        ann_hnsw_t *o1 = NULL, *o2 = NULL;
        cr_assert_eq(ann_hnsw_open(p1, v, dim, 0, &o1, &eb), 0, "%s", eb.msg);
        cr_assert_eq(ann_hnsw_open(p2, NULL, 0, 0, &o2, &eb), 0, "%s", eb.msg);
        cr_assert_neq(ann_hnsw_vectors(o2), v, "the vectors come from the file");
        cr_assert_eq(memcmp(ann_hnsw_vectors(o2), v, n * dim * sizeof *v), 0);
        ann_hnsw_info i0, i1;
        ann_hnsw_get_info(h, &i0);
        ann_hnsw_get_info(o1, &i1);
        cr_assert_eq(i0.entry, i1.entry);
        cr_assert_eq(i0.max_level, i1.max_level);
        cr_assert_eq(i0.graph_bytes, i1.graph_bytes);
        cr_assert_eq(i0.file_bytes, i1.file_bytes, "a built graph knows its file size");
        ann_scratch_t *s;
        cr_assert_eq(ann_scratch_create(n, dim, &s), 0);
        for (size_t i = 0; i < nq; i++) {
            ann_hit a[10], b[10], c[10];
            size_t na, nb, nc;
            cr_assert_eq(ann_hnsw_search(h, s, q + i * dim, 10, 30, NULL, 0, a, &na, NULL), 0);
            cr_assert_eq(ann_hnsw_search(o1, s, q + i * dim, 10, 30, NULL, 0, b, &nb, NULL), 0);
            cr_assert_eq(ann_hnsw_search(o2, s, q + i * dim, 10, 30, NULL, 0, c, &nc, NULL), 0);
            cr_assert_eq(na, 10);
            cr_assert_eq(nb, na);
            cr_assert_eq(nc, na);
            cr_assert_eq(memcmp(a, b, sizeof a), 0, "%s: reopened graph differs at query %zu",
                         ann_metric_name(ms[mi]), i);
            cr_assert_eq(memcmp(a, c, sizeof a), 0);
        }
        ann_scratch_destroy(s);
        /* the wrong dimension, or no vectors anywhere, is refused */
        ann_hnsw_t *bad = NULL;
        cr_assert_eq(ann_hnsw_open(p1, v, dim + 1, 0, &bad, &eb), FN_EINVAL);
        cr_assert_null(bad);
        cr_assert_eq(ann_hnsw_open(p1, NULL, 0, 0, &bad, &eb), FN_EINVAL);
        cr_assert(strstr(eb.msg, "no vectors"), "%s", eb.msg);
        ann_hnsw_close(o1);
        ann_hnsw_close(o2);
        ann_hnsw_close(h);
    }
    free(v);
    free(q);
}

Test(ann_file, one_thread_builds_are_deterministic, .init = mk, .fini = rm)
{
    const size_t n = 800, dim = 8;
    float *v = random_vecs(n, dim, 41);
    char p1[300], p2[300];
    file_path(p1, sizeof p1, "a.hnsw");
    file_path(p2, sizeof p2, "b.hnsw");
    for (int i = 0; i < 2; i++) {
        ann_hnsw_t *h = build(v, n, dim, ANN_COSINE, 1);
        cr_assert_eq(ann_hnsw_save(h, i ? p2 : p1, 0, NULL), 0);
        ann_hnsw_close(h);
    }
    size_t l1, l2;
    char *a = tu_read_file(p1, &l1), *b = tu_read_file(p2, &l2);
    cr_assert_eq(l1, l2);
    cr_assert_eq(memcmp(a, b, l1), 0, "same vectors, same seed, one thread: same bytes");
    free(a);
    free(b);
    free(v);
}

static void write_bytes(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(p, 1, len, f), len);
    fclose(f);
}

/* the file's checksum recomputed after an edit, so the structural checks are reached */
static void reseal(char *img, size_t len)
{
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, img, 120);
    XXH3_64bits_update(st, img + 128, len - 128);
    uint64_t sum = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    memcpy(img + 120, &sum, 8);
}

static int open_expect(const char *path, const float *v, size_t dim, unsigned flags, int want,
                       const char *needle)
{
    ann_hnsw_t *h = (ann_hnsw_t *)1;
    fn_errbuf eb = {{0}};
    int rc = ann_hnsw_open(path, v, dim, flags, &h, &eb);
    cr_assert_eq(rc, want, "rc %d (%s), want %d", rc, fn_errmsg(&eb, rc), want);
    cr_assert_null(h);
    cr_assert(strstr(eb.msg, needle), "message \"%s\" lacks \"%s\"", eb.msg, needle);
    cr_assert(strstr(eb.msg, path), "message \"%s\" names no file", eb.msg);
    return rc;
}

Test(ann_file, damaged_files_are_refused_with_a_message, .init = mk, .fini = rm)
{
    const size_t n = 500, dim = 8;
    float *v = random_vecs(n, dim, 51);
    ann_hnsw_t *h = build(v, n, dim, ANN_L2, 1);
    char good[300], bad[300];
    file_path(good, sizeof good, "good.hnsw");
    file_path(bad, sizeof bad, "bad.hnsw");
    cr_assert_eq(ann_hnsw_save(h, good, 0, NULL), 0);
    ann_hnsw_close(h);
    size_t len;
    char *img = tu_read_file(good, &len);
    cr_assert_gt(len, 128);
    char *copy = malloc(len);

    /* every truncation: header cut short, sections cut short */
    size_t cuts[] = { 0, 5, 8, 100, 127, 128, 200, len / 2, len - 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_bytes(bad, img, cuts[i]);
        if (cuts[i] < 8) open_expect(bad, v, dim, 0, FN_EFORMAT, "not an ANN graph");
        else open_expect(bad, v, dim, 0, FN_ECORRUPT, "truncated");
    }
    /* a byte flipped anywhere past the header: the checksum says so */
    size_t spots[] = { 130, len / 3, len / 2, len - 1 };
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
        memcpy(copy, img, len);
        copy[spots[i]] ^= 0x5a;
        write_bytes(bad, copy, len);
        open_expect(bad, v, dim, 0, FN_ECORRUPT, "checksum");
    }
    /* not a graph at all; another version */
    write_bytes(bad, "hello, world: certainly no graph file here....", 46);
    open_expect(bad, v, dim, 0, FN_EFORMAT, "not an ANN graph");
    memcpy(copy, img, len);
    copy[8] = 9;
    write_bytes(bad, copy, len);
    open_expect(bad, v, dim, 0, FN_EVERSION, "version 9");

    /* a consistent checksum over a broken structure: the checks still catch it */
    uint64_t off0;
    memcpy(&off0, img + 56, 8);                 /* level-0 section */
    memcpy(copy, img, len);
    uint32_t far = 0xfffffff0u;
    memcpy(copy + off0 + 4, &far, 4);           /* node 0's first link */
    reseal(copy, len);
    write_bytes(bad, copy, len);
    open_expect(bad, v, dim, 0, FN_ECORRUPT, "links to");
    memcpy(copy, img, len);
    uint32_t many = 1000;
    memcpy(copy + off0, &many, 4);              /* node 0's link count */
    reseal(copy, len);
    write_bytes(bad, copy, len);
    open_expect(bad, v, dim, ANN_OPEN_NOVERIFY, FN_ECORRUPT, "links on level 0");
    memcpy(copy, img, len);
    uint32_t dim0 = 0;
    memcpy(copy + 16, &dim0, 4);
    reseal(copy, len);
    write_bytes(bad, copy, len);
    open_expect(bad, NULL, 0, 0, FN_ECORRUPT, "bad header");
    /* a missing file */
    file_path(bad, sizeof bad, "nope.hnsw");
    open_expect(bad, v, dim, 0, -ENOENT, "No such file");
    /* and the good one still opens */
    ann_hnsw_t *ok = NULL;
    cr_assert_eq(ann_hnsw_open(good, v, dim, 0, &ok, NULL), 0);
    ann_hnsw_close(ok);
    free(copy);
    free(img);
    free(v);
}

/* ---- filter, deadline ---- */

static int allow_mult7(void *ud, uint32_t id)
{
    (*(size_t *)ud)++;
    return id % 7 == 0;
}

Test(ann_hnsw, filter_returns_only_allowed_ids)
{
    const size_t n = 2000, dim = 16, nq = 50;
    float *v = random_vecs(n, dim, 61), *q = random_vecs(nq, dim, 62);
    ann_hnsw_t *h = build(v, n, dim, ANN_L2, 1);
    ann_scratch_t *s;
    cr_assert_eq(ann_scratch_create(n, dim, &s), 0);
    uint64_t *bits = calloc((n + 63) / 64, 8);
    for (size_t i = 0; i < n; i += 2) bits[i / 64] |= 1ull << (i % 64);     /* even ids */
    size_t calls = 0, found = 0, nt;
    ann_filter even = { .bits = bits }, m7 = { .allow = allow_mult7, .ud = &calls };
    ann_filter both = { .bits = bits, .allow = allow_mult7, .ud = &calls };
    ann_hit hits[10], truth[10];
    for (size_t i = 0; i < nq; i++) {
        const float *qq = q + i * dim;
        size_t nh;
        cr_assert_eq(ann_hnsw_search(h, s, qq, 10, 64, &even, 0, hits, &nh, NULL), 0);
        cr_assert_eq(nh, 10);
        for (size_t j = 0; j < nh; j++) cr_assert_eq(hits[j].id % 2, 0, "id %u", hits[j].id);
        cr_assert_eq(ann_exact(v, n, dim, ANN_L2, qq, 10, &even, truth, &nt), 0);
        cr_assert_eq(nt, 10);
        for (size_t j = 0; j < nt; j++) cr_assert_eq(truth[j].id % 2, 0);
        for (size_t a = 0; a < 10; a++)
            for (size_t b = 0; b < 10; b++) found += hits[a].id == truth[b].id;
        cr_assert_eq(ann_hnsw_search(h, s, qq, 10, 64, &m7, 0, hits, &nh, NULL), 0);
        cr_assert_eq(nh, 10);
        for (size_t j = 0; j < nh; j++) cr_assert_eq(hits[j].id % 7, 0, "id %u", hits[j].id);
        cr_assert_eq(ann_hnsw_search(h, s, qq, 10, 64, &both, 0, hits, &nh, NULL), 0);
        cr_assert_eq(nh, 10);
        for (size_t j = 0; j < nh; j++) cr_assert_eq(hits[j].id % 14, 0, "id %u", hits[j].id);
    }
    cr_assert_gt(calls, 0, "the callback was used");
    double r = (double)found / (10.0 * nq);
    cr_assert(r >= 0.9, "filtered recall@10 %.3f", r);
    /* a filter that allows nothing finds nothing; one that allows 3 ids finds exactly them */
    uint64_t *none = calloc((n + 63) / 64, 8);
    ann_filter nf = { .bits = none };
    size_t nh = 99;
    cr_assert_eq(ann_hnsw_search(h, s, q, 10, 64, &nf, 0, hits, &nh, NULL), 0);
    cr_assert_eq(nh, 0);
    none[0] = 1u << 3;
    none[10] = 1u << 5;
    none[30] = 1ull << 63;
    cr_assert_eq(ann_hnsw_search(h, s, q, 10, 64, &nf, 0, hits, &nh, NULL), 0);
    cr_assert_eq(nh, 3);
    uint32_t got[3] = { hits[0].id, hits[1].id, hits[2].id }, seen = 0;
    for (int j = 0; j < 3; j++)
        seen |= (got[j] == 3) << 0 | (got[j] == 645) << 1 | (got[j] == 30 * 64 + 63) << 2;
    cr_assert_eq(seen, 7, "ids %u %u %u", got[0], got[1], got[2]);
    free(none);
    free(bits);
    ann_scratch_destroy(s);
    ann_hnsw_close(h);
    free(v);
    free(q);
}

Test(ann_hnsw, deadline_in_the_past_stops_and_says_so)
{
    const size_t n = 1000, dim = 16;
    float *v = random_vecs(n, dim, 71), *q = random_vecs(1, dim, 72);
    ann_hnsw_t *h = build(v, n, dim, ANN_L2, 1);
    ann_scratch_t *s;
    cr_assert_eq(ann_scratch_create(n, dim, &s), 0);
    ann_hit hits[10];
    size_t nh = 99;
    unsigned fl = 0;
    cr_assert_eq(ann_hnsw_search(h, s, q, 10, 200, NULL, 1, hits, &nh, &fl), 0);
    cr_assert_eq(fl, ANN_DEADLINE_HIT);
    cr_assert_leq(nh, 1, "stopped before level 0 was searched: %zu hits", nh);
    /* a deadline far ahead: the full answer, no flag */
    cr_assert_eq(ann_hnsw_search(h, s, q, 10, 200, NULL, ann_now_ns() + 60000000000ull, hits, &nh,
                                 &fl), 0);
    cr_assert_eq(fl, 0);
    cr_assert_eq(nh, 10);
    ann_scratch_destroy(s);
    ann_hnsw_close(h);
    free(v);
    free(q);
}

/* ---- bad arguments ---- */

Test(ann_hnsw, bad_arguments_are_refused)
{
    float *v = random_vecs(100, 4, 81);
    ann_hnsw_params p;
    ann_hnsw_params_default(&p);
    ann_hnsw_t *h = (ann_hnsw_t *)1;
    fn_errbuf eb = {{0}};
    cr_assert_eq(ann_hnsw_build(v, 100, 0, &p, &h, &eb), FN_EINVAL);
    cr_assert_null(h);
    cr_assert(strstr(eb.msg, "dimension"), "%s", eb.msg);
    cr_assert_eq(ann_hnsw_build(v, 0, 4, &p, &h, &eb), FN_EINVAL);
    cr_assert_eq(ann_hnsw_build(NULL, 100, 4, &p, &h, &eb), FN_EINVAL);
    p.M = 1;
    cr_assert_eq(ann_hnsw_build(v, 100, 4, &p, &h, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "M 1"), "%s", eb.msg);
    p.M = ANN_MAX_M + 1;
    cr_assert_eq(ann_hnsw_build(v, 100, 4, &p, &h, &eb), FN_EINVAL);
    ann_hnsw_params_default(&p);
    p.ef_construction = 0;
    cr_assert_eq(ann_hnsw_build(v, 100, 4, &p, &h, &eb), FN_EINVAL);
    ann_hnsw_params_default(&p);
    p.threads = 0;
    cr_assert_eq(ann_hnsw_build(v, 100, 4, &p, &h, &eb), FN_EINVAL);
    ann_hnsw_params_default(&p);
    p.metric = (ann_metric)7;
    cr_assert_eq(ann_hnsw_build(v, 100, 4, &p, &h, &eb), FN_EINVAL);
    cr_assert_null(h);
    ann_metric m;
    cr_assert_eq(ann_metric_parse("hamming", &m), FN_EINVAL);
    cr_assert_eq(ann_metric_parse("angular", &m), 0);
    cr_assert_eq(m, ANN_COSINE);

    /* search: k 0, scratch of another shape, NULL query */
    ann_hnsw_params_default(&p);
    cr_assert_eq(ann_hnsw_build(v, 100, 4, &p, &h, &eb), 0);
    ann_scratch_t *s, *s0 = (ann_scratch_t *)1;
    cr_assert_eq(ann_scratch_create(100, 4, &s), 0);
    cr_assert_eq(ann_scratch_create(0, 5, &s0), FN_EINVAL);
    cr_assert_null(s0);
    ann_hit hits[4];
    size_t nh;
    cr_assert_eq(ann_hnsw_search(h, s, v, 0, 10, NULL, 0, hits, &nh, NULL), FN_EINVAL);
    cr_assert_eq(ann_hnsw_search(h, s, NULL, 4, 10, NULL, 0, hits, &nh, NULL), FN_EINVAL);
    ann_scratch_t *s3;
    cr_assert_eq(ann_scratch_create(100, 5, &s3), 0);
    cr_assert_eq(ann_hnsw_search(h, s3, v, 4, 10, NULL, 0, hits, &nh, NULL), FN_EINVAL);
    /* ef below k is raised to k; the first hit of a stored vector is itself */
    cr_assert_eq(ann_hnsw_search(h, s, v + 4 * 17, 4, 1, NULL, 0, hits, &nh, NULL), 0);
    cr_assert_eq(nh, 4);
    cr_assert_eq(hits[0].id, 17);
    cr_assert_eq(hits[0].score, 0.0f);
    cr_assert_eq(ann_exact(v, 100, 4, ANN_L2, v, 0, NULL, hits, &nh), FN_EINVAL);
    cr_assert_eq(ann_exact(v, 100, 0, ANN_L2, v, 4, NULL, hits, &nh), FN_EINVAL);
    ann_scratch_destroy(s);
    ann_scratch_destroy(s3);
    ann_hnsw_close(h);
    free(v);
}

Test(ann_hnsw, a_single_vector_and_duplicates)
{
    float one[3] = { 1, 2, 3 };
    ann_hnsw_t *h = build(one, 1, 3, ANN_COSINE, 1);
    ann_scratch_t *s;
    cr_assert_eq(ann_scratch_create(1, 3, &s), 0);
    ann_hit hits[5];
    size_t nh;
    float q[3] = { 2, 4, 6 };
    cr_assert_eq(ann_hnsw_search(h, s, q, 5, 10, NULL, 0, hits, &nh, NULL), 0);
    cr_assert_eq(nh, 1);
    cr_assert_eq(hits[0].id, 0);
    cr_assert_float_eq(hits[0].score, 1.0f, 1e-6f);
    ann_scratch_destroy(s);
    ann_hnsw_close(h);
    /* a few exact copies of one vector among random ones: a query on it finds
     * every copy at distance 0, lower ids first (many copies of one vector can
     * cut them off from the rest: docs/ann.md, "Limits") */
    const size_t n = 1000, dim = 6;
    float *v = random_vecs(n + 5, dim, 91);
    for (size_t c = 0; c < 5; c++) memcpy(v + (n + c) * dim, v + 500 * dim, dim * sizeof *v);
    h = build(v, n + 5, dim, ANN_L2, 2);
    cr_assert_eq(ann_scratch_create(n + 5, dim, &s), 0);
    ann_hit six[6];
    cr_assert_eq(ann_hnsw_search(h, s, v + 500 * dim, 6, 40, NULL, 0, six, &nh, NULL), 0);
    cr_assert_eq(nh, 6);
    const uint32_t want[6] = { 500, 1000, 1001, 1002, 1003, 1004 };
    for (size_t i = 0; i < 6; i++) {
        cr_assert_eq(six[i].id, want[i], "rank %zu: id %u", i, six[i].id);
        cr_assert_eq(six[i].score, 0.0f);
    }
    ann_scratch_destroy(s);
    ann_hnsw_close(h);
    free(v);
}

/* ---- vector files ---- */

Test(ann_vecio, fvecs_ivecs_and_idx, .init = mk, .fini = rm)
{
    char fv[300], iv[300], idx[300], bad[300];
    file_path(fv, sizeof fv, "a.fvecs");
    file_path(iv, sizeof iv, "a.ivecs");
    file_path(idx, sizeof idx, "a-idx3-ubyte.gz");
    file_path(bad, sizeof bad, "bad.fvecs");
    /* 3 vectors of 2 floats */
    unsigned char buf[3 * 12];
    for (int r = 0; r < 3; r++) {
        int32_t d = 2;
        float x[2] = { (float)r, (float)r + 0.5f };
        memcpy(buf + 12 * r, &d, 4);
        memcpy(buf + 12 * r + 4, x, 8);
    }
    write_bytes(fv, buf, sizeof buf);
    float *v;
    size_t n, d;
    fn_errbuf eb = {{0}};
    cr_assert_eq(ann_vecs_load(fv, &v, &n, &d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(n, 3);
    cr_assert_eq(d, 2);
    cr_assert_eq(v[5], 2.5f);
    free(v);
    int32_t *rows;
    cr_assert_eq(ann_ivecs_load(fv, &rows, &n, &d, &eb), 0);    /* same layout, int32 view */
    cr_assert_eq(n, 3);
    free(rows);
    /* a truncated row, a row of another dimension */
    write_bytes(bad, buf, sizeof buf - 3);
    cr_assert_eq(ann_vecs_load(bad, &v, &n, &d, &eb), FN_EFORMAT);
    cr_assert(strstr(eb.msg, "truncated"), "%s", eb.msg);
    cr_assert_null(v);
    int32_t three = 3;
    memcpy(buf + 12, &three, 4);
    write_bytes(bad, buf, sizeof buf);
    cr_assert_eq(ann_vecs_load(bad, &v, &n, &d, &eb), FN_EFORMAT);
    cr_assert(strstr(eb.msg, "row 2"), "%s", eb.msg);
    /* IDX, gzip'd: 2 images of 2 x 3 bytes */
    unsigned char img[16 + 12] = { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3 };
    for (int i = 0; i < 12; i++) img[16 + i] = (unsigned char)(i * 20);
    gzFile g = gzopen(idx, "wb");
    cr_assert_not_null(g);
    cr_assert_eq(gzwrite(g, img, sizeof img), (int)sizeof img);
    gzclose(g);
    cr_assert_eq(ann_vecs_load(idx, &v, &n, &d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(n, 2);
    cr_assert_eq(d, 6);
    cr_assert_eq(v[7], 140.0f);
    free(v);
    /* a truncated IDX */
    g = gzopen(idx, "wb");
    gzwrite(g, img, sizeof img - 4);
    gzclose(g);
    cr_assert_eq(ann_vecs_load(idx, &v, &n, &d, &eb), FN_EFORMAT);
    cr_assert(strstr(eb.msg, "truncated"), "%s", eb.msg);
    /* missing file */
    cr_assert_eq(ann_vecs_load("/nonexistent/x.fvecs", &v, &n, &d, &eb), -ENOENT);
}

/* the shared data, when present: the readers agree with SOURCE.md's counts */
Test(ann_vecio, shared_data_sets)
{
    char p[600];
    snprintf(p, sizeof p, "%s/glove-twitter-25d-12k/glove_twitter_25d_12k_query.fvecs", tu_data_dir());
    if (access(p, R_OK) != 0) cr_skip_test("%s not found", p);
    float *v;
    size_t n, d;
    fn_errbuf eb = {{0}};
    cr_assert_eq(ann_vecs_load(p, &v, &n, &d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(n, 994);
    cr_assert_eq(d, 25);
    cr_assert_float_eq(v[0], -0.010167f, 1e-6f, "the first row is \"the\"");
    free(v);
    snprintf(p, sizeof p, "%s/fashion-mnist/t10k-labels-idx1-ubyte.gz", tu_data_dir());
    cr_assert_eq(ann_vecs_load(p, &v, &n, &d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(n, 10000);
    cr_assert_eq(d, 1);
    free(v);
}
