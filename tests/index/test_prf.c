/* test_prf.c - the shard's half of pseudo-relevance feedback (index/prf.h):
 * term vectors of stored documents, the weighted rescoring against values
 * worked out by hand on a three-document corpus, and every refusal. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "builder.h"
#include "feature_registry.h"
#include "prf.h"
#include "search.h"
#include "testutil.h"

static char tmpdir[256];
static idx_reader_t *r;
static idx_searcher_t *s;

/* Analyzed with stemmer none ("the on with a" are stopwords):
 *   d1 title "cat dog", body "the cat sat on the mat with a dog"
 *        -> cat 2, dog 2, mat 1, sat 1 (6 tokens; title 2, body 4)
 *   d2 title "fish", body "dog cat dog" -> cat 1, dog 2, fish 1 (4; 1, 3)
 *   d3 body "bird" -> bird 1 */
static const char *corpus =
    "{\"id\":\"d1\",\"title\":\"cat dog\",\"body\":\"the cat sat on the mat with a dog\"}\n"
    "{\"id\":\"d2\",\"title\":\"fish\",\"body\":\"dog cat dog\"}\n"
    "{\"id\":\"d3\",\"body\":\"bird\"}\n";

static void setup(void)
{
    tu_mkdtemp(tmpdir, sizeof tmpdir, "/tmp/test_prf.XXXXXX");
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
    cr_assert_eq(idx_reader_open(shard, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(idx_searcher_create(r, &s, &eb), 0, "%s", eb.msg);
}

static void teardown(void)
{
    idx_searcher_destroy(s);
    idx_reader_close(r);
    tu_rmtree(tmpdir);
}

TestSuite(prf, .init = setup, .fini = teardown);

/* the doc number of an external id, through a search that finds it */
static uint32_t docnum(const char *id, uint64_t *key)
{
    idx_query q = { .text = !strcmp(id, "d3") ? "bird" : "cat", .k = 10 };
    idx_results res;
    fn_errbuf eb;
    cr_assert_eq(idx_search(s, &q, &res, &eb), 0, "%s", eb.msg);
    for (size_t i = 0; i < res.nhits; i++)
        if (!strcmp(res.hits[i].id, id)) {
            if (key) *key = res.hits[i].key;
            return res.hits[i].doc;
        }
    cr_assert_fail("%s not found", id);
    return 0;
}

Test(prf, term_vectors_of_stored_documents)
{
    uint32_t docs[2] = { docnum("d1", NULL), docnum("d2", NULL) };
    fn_arena mem;
    fn_arena_init(&mem);
    idx_fbdoc fb[2];
    fn_errbuf eb;
    cr_assert_eq(idx_feedback_docs(s, docs, 2, 0, &mem, fb, &eb), 0, "%s", eb.msg);
    const char *t1[] = { "cat", "dog", "mat", "sat" };
    uint32_t f1[] = { 2, 2, 1, 1 };
    cr_assert_eq(fb[0].length, 6);
    cr_assert_eq(fb[0].nterms, 4);
    for (size_t i = 0; i < 4; i++) {
        cr_assert_str_eq(fb[0].terms[i], t1[i]);
        cr_assert_eq(fb[0].tf[i], f1[i], "%s", t1[i]);
    }
    const char *t2[] = { "cat", "dog", "fish" };
    uint32_t f2[] = { 1, 2, 1 };
    cr_assert_eq(fb[1].length, 4);
    cr_assert_eq(fb[1].nterms, 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_str_eq(fb[1].terms[i], t2[i]);
        cr_assert_eq(fb[1].tf[i], f2[i], "%s", t2[i]);
    }
    uint32_t bad = 3;   /* documents 0..2 */
    cr_assert_eq(idx_feedback_docs(s, &bad, 1, 0, &mem, fb, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "out of range"), "%s", eb.msg);

    /* max_df: cat and dog are in 2 of the 3 documents, over 0.5 x 3; mat,
     * sat and fish in 1. The length stays the whole document's. */
    cr_assert_eq(idx_feedback_docs(s, docs, 2, 0.5, &mem, fb, &eb), 0, "%s", eb.msg);
    cr_assert_eq(fb[0].length, 6);
    cr_assert_eq(fb[0].nterms, 2);
    cr_assert_str_eq(fb[0].terms[0], "mat");
    cr_assert_str_eq(fb[0].terms[1], "sat");
    cr_assert_eq(fb[0].tf[0], 1);
    cr_assert_eq(fb[1].length, 4);
    cr_assert_eq(fb[1].nterms, 1);
    cr_assert_str_eq(fb[1].terms[0], "fish");
    /* 2/3 keeps them all; 1 = no document is over it */
    cr_assert_eq(idx_feedback_docs(s, docs, 2, 2.0 / 3.0, &mem, fb, &eb), 0, "%s", eb.msg);
    cr_assert_eq(fb[0].nterms, 4);
    cr_assert_eq(idx_feedback_docs(s, docs, 2, 1, &mem, fb, &eb), 0, "%s", eb.msg);
    cr_assert_eq(fb[1].nterms, 3);
    cr_assert_eq(idx_feedback_docs(s, docs, 2, 1.5, &mem, fb, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "max_df"), "%s", eb.msg);
    cr_assert_eq(idx_feedback_docs(s, docs, 2, NAN, &mem, fb, &eb), FN_EINVAL);
    fn_arena_free(&mem);
}

Test(prf, rescore_by_hand)
{
    uint64_t k1key, k2key;
    uint32_t d1 = docnum("d1", &k1key), d2 = docnum("d2", &k2key), d3 = docnum("d3", NULL);
    const char *terms[] = { "cat", "mat", "zzz" };     /* zzz: not in the index, adds 0 */
    double w[] = { 0.5, 0.25, 1.0 };
    uint32_t docs[] = { d1, d2, d3 };
    double sc[3];
    fn_errbuf eb;
    cr_assert_eq(idx_rescore(s, NULL, terms, w, 3, docs, NULL, 3, sc, &eb), 0, "%s", eb.msg);
    /* BM25F defaults: k1 1.2, b 0.75 title / 0.6 body, w 2 title / 1 body;
     * title tokens 3 (avg 1), body 8 (avg 8/3); idf = ln(1 + (N - df + .5) / (df + .5)) */
    const double N = 3, avgT = 1, avgB = 8.0 / 3, k1 = 1.2;
    double idf_cat = log(1 + (N - 2 + 0.5) / 2.5), idf_mat = log(1 + (N - 1 + 0.5) / 1.5);
    double n1T = 1 - 0.75 + 0.75 * 2 / avgT, n1B = 1 - 0.6 + 0.6 * 4 / avgB, n2B = 1 - 0.6 + 0.6 * 3 / avgB;
    double tcat1 = 2 * 1 / n1T + 1 / n1B, tmat1 = 1 / n1B, tcat2 = 1 / n2B;
    double want1 = 0.5 * idf_cat * tcat1 * (k1 + 1) / (k1 + tcat1) + 0.25 * idf_mat * tmat1 * (k1 + 1) / (k1 + tmat1);
    double want2 = 0.5 * idf_cat * tcat2 * (k1 + 1) / (k1 + tcat2);
    cr_assert_float_eq(sc[0], want1, 1e-9, "d1: %.12g, by hand %.12g", sc[0], want1);
    cr_assert_float_eq(sc[1], want2, 1e-9, "d2: %.12g, by hand %.12g", sc[1], want2);
    cr_assert_eq(sc[2], 0.0, "d3 has none of the terms");

    /* keys are checked: a document number from another build is refused */
    uint64_t keys[2] = { k1key, k2key };
    cr_assert_eq(idx_rescore(s, NULL, terms, w, 3, docs, keys, 2, sc, &eb), 0, "%s", eb.msg);
    keys[1] = k1key;
    cr_assert_eq(idx_rescore(s, NULL, terms, w, 3, docs, keys, 2, sc, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "another key"), "%s", eb.msg);
}

Test(prf, rescore_refuses_bad_arguments)
{
    uint32_t d1 = docnum("d1", NULL);
    double sc[2];
    fn_errbuf eb;
    const char *t1[] = { "cat" };
    double ok[] = { 1.0 };
    uint32_t out_of_range[] = { 7 };
    cr_assert_eq(idx_rescore(s, NULL, t1, ok, 1, out_of_range, NULL, 1, sc, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "out of range"), "%s", eb.msg);
    uint32_t twice[] = { d1, d1 };
    cr_assert_eq(idx_rescore(s, NULL, t1, ok, 1, twice, NULL, 2, sc, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "twice"), "%s", eb.msg);
    const char *dup[] = { "cat", "cat" };
    double w2[] = { 1, 1 };
    cr_assert_eq(idx_rescore(s, NULL, dup, w2, 2, &d1, NULL, 1, sc, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "appears twice"), "%s", eb.msg);
    double bad[] = { -1.0 }, nan_w[] = { NAN }, inf_w[] = { INFINITY };
    cr_assert_eq(idx_rescore(s, NULL, t1, bad, 1, &d1, NULL, 1, sc, &eb), FN_EINVAL);
    cr_assert_eq(idx_rescore(s, NULL, t1, nan_w, 1, &d1, NULL, 1, sc, &eb), FN_EINVAL);
    cr_assert_eq(idx_rescore(s, NULL, t1, inf_w, 1, &d1, NULL, 1, sc, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "weights[0]"), "%s", eb.msg);
    const char *empty[] = { "" };
    cr_assert_eq(idx_rescore(s, NULL, empty, ok, 1, &d1, NULL, 1, sc, &eb), FN_EINVAL);
    char longterm[300];
    memset(longterm, 'x', sizeof longterm - 1);
    longterm[sizeof longterm - 1] = '\0';
    const char *lt[] = { longterm };
    cr_assert_eq(idx_rescore(s, NULL, lt, ok, 1, &d1, NULL, 1, sc, &eb), FN_EINVAL);
}

Test(prf, query_weights_and_the_relative_window_feature)
{
    idx_query q = { .text = "cat dog cat", .k = 10 };
    idx_results res;
    fn_errbuf eb;
    cr_assert_eq(idx_search(s, &q, &res, &eb), 0, "%s", eb.msg);
    uint32_t qw[4];
    cr_assert_eq(idx_query_weights(s, qw, 4), 2);
    cr_assert_eq(qw[0], 2, "cat twice");
    cr_assert_eq(qw[1], 1, "dog once");

    float rows[3][64];
    memset(rows, 0, sizeof rows);
    long c = idx_feature_find("prf_rm3"), cr = idx_feature_find("prf_rm3_rel");
    cr_assert_eq(c, IDX_F_PRF_RM3);
    rows[0][c] = 2.0f;
    rows[1][c] = 0.5f;
    rows[2][c] = NAN;           /* feedback did not score it */
    idx_features_window(&rows[0][0], 3, 64);
    cr_assert_float_eq(rows[0][cr], 1.0, 1e-6);
    cr_assert_float_eq(rows[1][cr], 0.25, 1e-6);
    cr_assert(isnan(rows[2][cr]), "missing stays missing");
}
