/* test_features.c - every feature of the registry (index/feature_registry.c)
 * against a value worked out by hand on a three-document corpus, and the
 * registry's own rules (stable, unique names; cheap / full / window order). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "builder.h"
#include "feature_registry.h"
#include "search.h"
#include "search_int.h"   /* idx_cand_recorded */
#include "testutil.h"

static char tmpdir[256];

static void setup(void) { tu_mkdtemp(tmpdir, sizeof tmpdir, "/tmp/test_features.XXXXXX"); }
static void teardown(void) { tu_rmtree(tmpdir); }

TestSuite(features, .init = setup, .fini = teardown);

/* Body token positions (stopwords count, "the on with a" are stopwords):
 *   d1 title "cat dog"          -> cat@0 dog@1          (2 indexed tokens)
 *   d1 body  "the cat sat on the mat with a dog"
 *                               -> cat@1 sat@2 mat@5 dog@8 (4 indexed)
 *   d2 title "fish"             -> fish@0               (1)
 *   d2 body  "dog cat dog"      -> dog@0 cat@1 dog@2    (3)
 *   d3 body  "bird"             -> bird@0               (1)
 * N = 3; title tokens 3 (avg 1), body tokens 8 (avg 8/3).
 * cat: df 2, cf title 1, cf body 2; dog: df 2, cf title 1, cf body 3. */
static const char *corpus =
    "{\"id\":\"d1\",\"title\":\"cat dog\",\"body\":\"the cat sat on the mat with a dog\","
    "\"popularity\":9,\"published_at\":864000,\"url\":\"http://x.org/a/b?q=1\"}\n"
    "{\"id\":\"d2\",\"title\":\"fish\",\"body\":\"dog cat dog\"}\n"
    "{\"id\":\"d3\",\"body\":\"bird\"}\n";

static double col(const float *row, const char *name)
{
    long c = idx_feature_find(name);
    cr_assert_geq(c, 0, "no feature %s", name);
    return row[c];
}

#define NEAR(row, name, want) \
    cr_assert_float_eq(col(row, name), (double)(want), 1e-4 * (1 + fabs((double)(want))), "%s: %.7g, by hand %.7g", name, col(row, name), (double)(want))

static double bm25(double tf, double len, double avg, double idf, double k1, double b)
{
    return tf ? idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg)) : 0;
}

Test(features, every_feature_by_hand)
{
    char in[512], out[512], shard[600];
    snprintf(in, sizeof in, "%s/c.jsonl", tmpdir);
    snprintf(out, sizeof out, "%s/idx", tmpdir);
    tu_write_file(in, corpus);
    idx_build_opts o;
    memset(&o, 0, sizeof o);
    o.input = in;
    o.out_dir = out;
    o.shards = 1;
    o.on_error = IDX_ON_ERROR_FAIL;
    o.analyzer.stemmer = "none";
    fn_errbuf eb = {{0}};
    cr_assert_eq(idx_build(&o, NULL, &eb), 0, "%s", eb.msg);
    snprintf(shard, sizeof shard, "%s/shard-000", out);
    idx_reader_t *r;
    idx_searcher_t *s;
    cr_assert_eq(idx_reader_open(shard, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(idx_searcher_create(r, &s, &eb), 0, "%s", eb.msg);
    idx_query q = { .text = "cat dog", .k = 10, .now = 20 * 86400 };
    idx_results res;
    cr_assert_eq(idx_search(s, &q, &res, &eb), 0, "%s", eb.msg);
    cr_assert_eq(res.nhits, 2);
    const idx_hit *h1 = !strcmp(res.hits[0].id, "d1") ? &res.hits[0] : &res.hits[1];
    const idx_hit *h2 = h1 == &res.hits[0] ? &res.hits[1] : &res.hits[0];
    idx_hit hits[2] = { *h1, *h2 };
    size_t stride = idx_features_shard();
    float rows[2][64];
    cr_assert_eq(idx_features_compute(s, hits, 2, 1, &rows[0][0], 64, &eb), 0, "%s", eb.msg);
    (void)stride;
    const float *a = rows[0], *b = rows[1];

    const double N = 3, avgT = 1, avgB = 8.0 / 3;
    const double idf = log(1 + (N - 2 + 0.5) / (2 + 0.5));   /* both terms: df 2 */
    const double k1 = 1.2, bT = 0.75, bB = 0.6;
    /* BM25F: tfn = 2 tf_title / normT + tf_body / normB */
    double n1T = 1 - bT + bT * 2 / avgT, n1B = 1 - bB + bB * 4 / avgB;
    double n2B = 1 - bB + bB * 3 / avgB;   /* d2 has no query term in its title */
    double tfn1 = 2 * 1 / n1T + 1 / n1B;            /* cat and dog alike in d1 */
    double bm25f1 = 2 * idf * tfn1 * (k1 + 1) / (k1 + tfn1);
    double tfn2c = 1 / n2B, tfn2d = 2 / n2B;        /* d2: cat once, dog twice, body only */
    double bm25f2 = idf * tfn2c * (k1 + 1) / (k1 + tfn2c) + idf * tfn2d * (k1 + 1) / (k1 + tfn2d);
    NEAR(a, "bm25f", bm25f1);
    NEAR(b, "bm25f", bm25f2);
    NEAR(a, "sel_score", bm25f1);   /* no static weights */
    NEAR(a, "bm25_title", 2 * bm25(1, 2, avgT, idf, k1, bT));
    NEAR(a, "bm25_body", 2 * bm25(1, 4, avgB, idf, k1, bB));
    NEAR(b, "bm25_title", 0);
    NEAR(b, "bm25_body", bm25(1, 3, avgB, idf, k1, bB) + bm25(2, 3, avgB, idf, k1, bB));
    NEAR(a, "bm25b_body", 2 * bm25(1, 4, avgB, idf, 0.9, 0.4));
    NEAR(b, "bm25b_body", bm25(1, 3, avgB, idf, 0.9, 0.4) + bm25(2, 3, avgB, idf, 0.9, 0.4));
    NEAR(a, "bm25b_title", 2 * bm25(1, 2, avgT, idf, 0.9, 0.4));
    /* Dirichlet LM, mu = 4 x avglen, p = (cf + 0.5) / (tokens + 1) */
    double muT = 4 * avgT, muB = 4 * avgB;
    double pcT = 1.5 / 4, pcB_cat = 2.5 / 9, pcB_dog = 3.5 / 9;
    NEAR(a, "lm_title", 2 * log((1 + muT * pcT) / (2 + muT)));
    NEAR(b, "lm_title", 2 * log((0 + muT * pcT) / (1 + muT)));
    NEAR(a, "lm_body", log((1 + muB * pcB_cat) / (4 + muB)) + log((1 + muB * pcB_dog) / (4 + muB)));
    NEAR(b, "lm_body", log((1 + muB * pcB_cat) / (3 + muB)) + log((2 + muB * pcB_dog) / (3 + muB)));
    /* DFR InL2: tfn = tf log2(1 + avg / len); tfn / (tfn + 1) log2((N + 1) / (df + 0.5)) */
    double idfd = log2(4 / 2.5);
    double t1B = log2(1 + avgB / 4), t2c = log2(1 + avgB / 3), t2d = 2 * log2(1 + avgB / 3);
    NEAR(a, "dfr_body", 2 * t1B / (t1B + 1) * idfd);
    NEAR(b, "dfr_body", (t2c / (t2c + 1) + t2d / (t2d + 1)) * idfd);
    double t1T = log2(1 + avgT / 2);
    NEAR(a, "dfr_title", 2 * t1T / (t1T + 1) * idfd);
    /* TF-IDF: (1 + ln tf) ln((N + 1) / df) */
    double lidf = log(4.0 / 2);
    NEAR(a, "tfidf_title", 2 * lidf);
    NEAR(a, "tfidf_body", 2 * lidf);
    NEAR(b, "tfidf_body", lidf + (1 + log(2)) * lidf);
    NEAR(a, "tf_title", 2);
    NEAR(a, "tf_body", 2);
    NEAR(b, "tf_title", 0);
    NEAR(b, "tf_body", 3);
    NEAR(a, "cov_title", 1);
    NEAR(b, "cov_title", 0);
    NEAR(b, "cov_body", 1);
    NEAR(b, "cov_any", 1);
    NEAR(a, "idf_sum", 2 * idf);
    NEAR(a, "idf_max", idf);
    NEAR(a, "idf_min", idf);
    NEAR(a, "len_title", 2);
    NEAR(a, "len_body", 4);
    NEAR(b, "len_title", 1);
    NEAR(b, "len_body", 3);
    NEAR(a, "pop_log", log(10));
    NEAR(b, "pop_log", 0);
    NEAR(a, "age_days", 10);                       /* now = day 20, published day 10 */
    cr_assert(isnan(col(b, "age_days")), "no published_at: missing");
    NEAR(a, "url_depth", 2);                       /* /a/b */
    NEAR(b, "url_depth", 0);
    NEAR(a, "q_len", 2);
    NEAR(a, "q_found", 2);
    /* positions */
    NEAR(a, "phrase_title", 1);                    /* cat@0 dog@1 */
    NEAR(a, "phrase_body", 0);                     /* cat@1 ... dog@8 */
    NEAR(b, "phrase_body", 1);                     /* dog@0 cat@1 dog@2: "cat dog" at 1 */
    NEAR(a, "bigrams_title", 1);
    NEAR(a, "bigrams_body", 0);                    /* 7 tokens apart: over 3 */
    NEAR(b, "bigrams_body", 1);
    NEAR(a, "prox_window_body", 8);                /* positions 1..8 */
    NEAR(a, "prox_ratio_body", 2.0 / 8);
    NEAR(b, "prox_window_body", 2);                /* 0..1 or 1..2 */
    NEAR(b, "prox_ratio_body", 1);

    /* the window features, over these two rows */
    float w[2][64];
    memcpy(w[0], a, sizeof w[0]);
    memcpy(w[1], b, sizeof w[1]);
    idx_features_window(&w[0][0], 2, 64);
    double best = bm25f1 > bm25f2 ? bm25f1 : bm25f2;
    NEAR(w[0], "w_bm25f_rel", bm25f1 / best);
    NEAR(w[1], "w_bm25f_rel", bm25f2 / best);
    NEAR(w[0], "w_bm25f_rank", bm25f1 >= bm25f2 ? 1 : 2);
    double lmbest = fmax(col(a, "lm_body"), col(b, "lm_body"));
    NEAR(w[1], "w_lm_body_gap", col(b, "lm_body") - lmbest);

    idx_searcher_destroy(s);
    idx_reader_close(r);
}

Test(features, registry_names_are_unique_and_ordered_by_cost)
{
    size_t n;
    const idx_feature_def *reg = idx_features(&n);
    cr_assert_eq(n, idx_features_all());
    cr_assert_lt(idx_features_cheap(), idx_features_shard());
    cr_assert_lt(idx_features_shard(), idx_features_all());
    for (size_t i = 0; i < n; i++) {
        enum idx_feature_cost want = i < idx_features_cheap() ? IDX_FEAT_CHEAP
                                   : i < idx_features_shard() ? IDX_FEAT_FULL : IDX_FEAT_WINDOW;
        cr_assert_eq(reg[i].cost, want, "%s", reg[i].name);
        cr_assert_eq(idx_feature_find(reg[i].name), (long)i);
        for (const char *p = reg[i].name; *p; p++)
            cr_assert(strchr("abcdefghijklmnopqrstuvwxyz0123456789_", *p), "%s: a name the training files can carry", reg[i].name);
        cr_assert_not_null(reg[i].what);
    }
    cr_assert_eq(idx_feature_find("bm25f"), IDX_F_BM25F);
    cr_assert_eq(idx_feature_find("nope"), -1);
}

/* The selection records its candidates' frequencies and where their
 * positions are, and the features of those candidates come from there; a
 * hit it did not record (here: one whose record reference is spoilt) makes
 * the extractors walk the postings instead. Both give the same bits, cheap
 * and full, for all candidates, a shuffled subset and repeated hits, on a
 * real collection (cranfield, a stemming analyzer, titles and bodies). */
Test(features, recorded_candidates_give_the_features_of_a_fresh_walk, .timeout = 120)
{
    const char *data = getenv("FUNNEL_DATA");
    cr_assert_not_null(data, "FUNNEL_DATA must point at shared/data");
    char in[1024], out[512], shard[600], queries[1024];
    snprintf(in, sizeof in, "%s/cranfield/corpus.jsonl", data);
    snprintf(queries, sizeof queries, "%s/cranfield/queries.tsv", data);
    snprintf(out, sizeof out, "%s/cran", tmpdir);
    idx_build_opts o;
    memset(&o, 0, sizeof o);
    o.input = in;
    o.out_dir = out;
    o.shards = 2;
    o.on_error = IDX_ON_ERROR_FAIL;
    fn_errbuf eb = {{0}};
    cr_assert_eq(idx_build(&o, NULL, &eb), 0, "%s", eb.msg);
    snprintf(shard, sizeof shard, "%s/shard-001", out);
    idx_reader_t *r;
    idx_searcher_t *s;
    cr_assert_eq(idx_reader_open(shard, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(idx_searcher_create(r, &s, &eb), 0, "%s", eb.msg);
    size_t stride = idx_features_shard(), cap = 700;
    float *a = malloc(cap * stride * sizeof *a), *b = malloc(cap * stride * sizeof *b);
    idx_hit *hits = malloc(cap * sizeof *hits);
    cr_assert(a && b && hits);
    FILE *f = fopen(queries, "r");
    cr_assert_not_null(f);
    char line[4096];
    int nq = 0;
    size_t rows = 0;
    while (nq < 50 && fgets(line, sizeof line, f)) {
        char *text = strchr(line, '\t');
        if (!text) continue;
        idx_query q = { .text = text + 1, .k = 300 + 7 * (size_t)nq, .now = 1700000000 };
        idx_results res;
        /* a search that records nothing selects the same hits, and features
         * of its hits come from a fresh walk */
        q.no_record = 1;
        cr_assert_eq(idx_search(s, &q, &res, &eb), 0, "%s", eb.msg);
        size_t n0 = res.nhits;
        memcpy(hits, res.hits, n0 * sizeof *hits);
        cr_assert_eq(idx_cand_recorded(s, hits, n0), n0 == 0, "nothing recorded");
        if (n0) {
            cr_assert_eq(idx_features_compute(s, hits, n0 < 20 ? n0 : 20, 1, a, stride, &eb), 0, "%s", eb.msg);
        }
        q.no_record = 0;
        cr_assert_eq(idx_search(s, &q, &res, &eb), 0, "%s", eb.msg);
        cr_assert_eq(res.nhits, n0);
        for (size_t i = 0; i < n0; i++)
            cr_assert(res.hits[i].doc == hits[i].doc && res.hits[i].key == hits[i].key &&
                      memcmp(&res.hits[i].score, &hits[i].score, sizeof(double)) == 0,
                      "query %d hit %zu: the same with and without recording", nq, i);
        if (n0) {
            cr_assert_eq(idx_features_compute(s, res.hits, n0 < 20 ? n0 : 20, 1, b, stride, &eb), 0, "%s", eb.msg);
            cr_assert(memcmp(a, b, (n0 < 20 ? n0 : 20) * stride * sizeof *a) == 0,
                      "query %d: features after a search without recording differ", nq);
        }
        /* all the candidates; then every third in reverse order, the first twice */
        size_t n = res.nhits;
        memcpy(hits, res.hits, n * sizeof *hits);
        for (int sub = 0; sub < 2; sub++) {
            if (sub) {
                size_t m = 0;
                for (size_t i = n; i-- > 0;)
                    if (i % 3 == 0) hits[m++] = res.hits[i];
                hits[m++] = res.hits[0];
                n = m;
            }
            for (int full = 0; full < 2; full++) {
                memset(a, 0xa5, n * stride * sizeof *a);
                memset(b, 0x5a, n * stride * sizeof *b);
                cr_assert_eq(idx_features_compute(s, hits, n, full, a, stride, &eb), 0, "%s", eb.msg);
                for (size_t i = 0; i < n; i++) hits[i].cand = UINT32_MAX;   /* not recorded */
                cr_assert_eq(idx_features_compute(s, hits, n, full, b, stride, &eb), 0, "%s", eb.msg);
                size_t ncols = full ? stride : idx_features_cheap();
                for (size_t i = 0; i < n; i++)
                    cr_assert(memcmp(a + i * stride, b + i * stride, ncols * sizeof *a) == 0,
                              "query %d (%s) hit %zu, %s features differ", nq, text + 1, i,
                              full ? "full" : "cheap");
                rows += n;
                /* back to the recorded references for the next round */
                if (!sub) memcpy(hits, res.hits, n * sizeof *hits);
                else {
                    size_t m = 0;
                    for (size_t i = res.nhits; i-- > 0;)
                        if (i % 3 == 0) hits[m++] = res.hits[i];
                    hits[m++] = res.hits[0];
                }
            }
        }
        nq++;
    }
    fclose(f);
    cr_assert_eq(nq, 50);
    cr_assert_gt(rows, 20000);
    free(a);
    free(b);
    free(hits);
    idx_searcher_destroy(s);
    idx_reader_close(r);
}

/* The window rank by bm25f (1 + the rows strictly better) is counted from a
 * sorted copy: the same ranks as counting row by row, with ties, -0 and +0,
 * infinities and NaN (a NaN row is rank 1 and makes no other row worse). */
Test(features, window_rank_equals_counting_row_by_row)
{
    uint64_t x = 0x2545f4914f6cdd1dull;
    enum { S = 48 };   /* room for the registry's columns */
    size_t nall = idx_features_all();
    cr_assert_leq(nall, S);
    static float rows[700 * S], ref[700];
    for (size_t n = 0; n <= 700; n += 1 + n / 2) {
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            static const float odd[] = { 0.0f, -0.0f, INFINITY, -INFINITY, NAN, 3.5f };
            float v = x % 5 == 0 ? odd[(x >> 8) % 6] : (float)((x >> 16) % 13) * 0.25f;
            for (size_t c = 0; c < nall; c++) rows[i * S + c] = 1.0f;
            rows[i * S + IDX_F_BM25F] = v;
        }
        for (size_t i = 0; i < n; i++) {
            size_t rank = 1;
            for (size_t j = 0; j < n; j++) rank += rows[j * S + IDX_F_BM25F] > rows[i * S + IDX_F_BM25F];
            ref[i] = (float)rank;
        }
        idx_features_window(rows, n, S);
        long c = idx_feature_find("w_bm25f_rank");
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(rows[i * S + c], ref[i], "n %zu row %zu (bm25f %g)", n, i, rows[i * S + IDX_F_BM25F]);
    }
}
