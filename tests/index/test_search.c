/* test_search.c - BM25F scores against hand computation, ordering, explain,
 * edge cases, and shard-count independence on cranfield (search.h). */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "builder.h"
#include "codec.h"
#include "reader_int.h"   /* idx_term_lasts */
#include "search.h"
#include "testutil.h"

static char tmpdir[256];

static void setup(void)
{
    tu_mkdtemp(tmpdir, sizeof tmpdir, "/tmp/test_search.XXXXXX");
}

static void teardown(void)
{
    tu_rmtree(tmpdir);
}

/* Build `text` (or the file `input` if text is NULL) into tmpdir/name.idx. */
static const char *build_codec;   /* NULL: the default */

static void build(const char *text, const char *input, uint32_t shards, const char *name, int plain)
{
    char in[512], out[512];
    if (text) {
        snprintf(in, sizeof in, "%s/%s.jsonl", tmpdir, name);
        tu_write_file(in, text);
        input = in;
    }
    snprintf(out, sizeof out, "%s/%s.idx", tmpdir, name);
    idx_build_opts o;
    memset(&o, 0, sizeof o);
    o.input = input;
    o.out_dir = out;
    o.shards = shards;
    o.on_error = IDX_ON_ERROR_FAIL;
    if (plain) o.analyzer.stemmer = "none";
    o.codec = build_codec;
    fn_errbuf eb = { { 0 } };
    idx_build_stats st;
    cr_assert_eq(idx_build(&o, &st, &eb), 0, "%s", eb.msg);
}

typedef struct opened { idx_reader_t *r; idx_searcher_t *s; } opened;

static opened open_shard(const char *name, uint32_t shard)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s.idx/shard-%03u", tmpdir, name, shard);
    opened o;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(idx_reader_open(p, &o.r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(idx_searcher_create(o.r, &o.s, &eb), 0, "%s", eb.msg);
    return o;
}

static void close_shard(opened *o)
{
    idx_searcher_destroy(o->s);
    idx_reader_close(o->r);
}

static const char *animals =
    "{\"id\":\"d1\",\"title\":\"cat\",\"body\":\"cat dog\",\"url\":\"u1\"}\n"
    "{\"id\":\"d2\",\"title\":\"dog\",\"body\":\"dog dog bird\"}\n"
    "{\"id\":\"d3\",\"title\":\"\",\"body\":\"cat bird bird fish\"}\n"
    "{\"id\":\"d4\",\"title\":\"fish\",\"body\":\"fish\"}\n";

TestSuite(search, .init = setup, .fini = teardown);

Test(search, bm25f_matches_hand_computation)
{
    build(animals, NULL, 1, "animals", 1);
    opened o = open_shard("animals", 0);
    idx_results res;
    fn_errbuf eb = { { 0 } };

    /* N = 4, avglen title = 3/4, body = 10/4; defaults k1 1.2, b .75/.6, w 2/1.
     * "cat": gdf 2 -> idf = ln(1 + 2.5/2.5) = ln 2.
     * d1: title tf 1 len 1, body tf 1 len 2; d3: body tf 1 len 4. */
    idx_bm25_params def;
    idx_bm25_defaults(&def);
    cr_assert_eq(def.k1, 1.2);
    cr_assert_eq(def.b[0], 0.75);
    cr_assert_eq(def.b[1], 0.6);
    cr_assert_eq(def.w[0], 2.0);
    cr_assert_eq(def.w[1], 1.0);
    double idf = log(2.0);
    double tfn1 = 2.0 * 1 / (0.25 + 0.75 * 1 / 0.75) + 1.0 * 1 / (0.4 + 0.6 * 2 / 2.5);
    double tfn3 = 1.0 / (0.4 + 0.6 * 4 / 2.5);
    double s1 = idf * tfn1 * 2.2 / (1.2 + tfn1);
    double s3 = idf * tfn3 * 2.2 / (1.2 + tfn3);
    idx_query q = { .text = "Cat", .k = 10 };
    cr_assert_eq(idx_search(o.s, &q, &res, &eb), 0, "%s", eb.msg);
    cr_assert_eq(res.matches, 2);
    cr_assert_eq(res.nhits, 2);
    cr_assert_eq(res.nterms, 1);
    cr_assert_str_eq(res.terms[0], "cat");
    cr_assert_str_eq(res.hits[0].id, "d1");
    cr_assert_str_eq(res.hits[0].title, "cat");
    cr_assert_str_eq(res.hits[0].url, "u1");
    cr_assert_float_eq(res.hits[0].score, s1, 1e-12);
    cr_assert_str_eq(res.hits[1].id, "d3");
    cr_assert_str_eq(res.hits[1].title, "");
    cr_assert_str_eq(res.hits[1].url, "");
    cr_assert_float_eq(res.hits[1].score, s3, 1e-12);
    cr_assert_eq(res.hits[1].key, XXH64("d3", 2, 0));

    /* explicit parameters and a repeated query term (qw = 2):
     * "dog dog bird" on d2: dog title tf 1 (len 1), body tf 2 (len 3); bird body tf 1. */
    idx_bm25_params p = { .k1 = 2.0, .b = { 0.5, 0.3 }, .w = { 3.0, 1.0 } };
    double tdog = 3.0 * 1 / (0.5 + 0.5 * 1 / 0.75) + 1.0 * 2 / (0.7 + 0.3 * 3 / 2.5);
    double tbird = 1.0 / (0.7 + 0.3 * 3 / 2.5);
    double s2 = 2 * idf * tdog * 3.0 / (2.0 + tdog) + idf * tbird * 3.0 / (2.0 + tbird);
    idx_query q2 = { .text = "dog, DOG bird!", .k = 1, .explain = 1, .bm25 = &p };
    cr_assert_eq(idx_search(o.s, &q2, &res, &eb), 0, "%s", eb.msg);
    cr_assert_eq(res.matches, 3);          /* d1, d2, d3 */
    cr_assert_eq(res.nhits, 1);
    cr_assert_eq(res.nterms, 2);
    cr_assert_str_eq(res.terms[0], "dog");
    cr_assert_str_eq(res.terms[1], "bird");
    cr_assert_str_eq(res.hits[0].id, "d2");
    cr_assert_float_eq(res.hits[0].score, s2, 1e-12);
    const idx_term_explain *x = res.hits[0].terms;
    cr_assert_not_null(x);
    cr_assert_str_eq(x[0].term, "dog");
    cr_assert_eq(x[0].qw, 2);
    cr_assert_eq(x[0].gdf, 2);
    cr_assert_eq(x[0].tf[0], 1);
    cr_assert_eq(x[0].tf[1], 2);
    cr_assert_float_eq(x[0].idf, idf, 1e-12);
    cr_assert_eq(x[1].tf[0], 0);
    cr_assert_eq(x[1].tf[1], 1);
    cr_assert_float_eq(x[0].contribution + x[1].contribution, res.hits[0].score, 1e-12);
    close_shard(&o);
}

Test(search, explain_sums_and_k_larger_than_matches)
{
    build(animals, NULL, 1, "animals", 1);
    opened o = open_shard("animals", 0);
    idx_results res;
    fn_errbuf eb = { { 0 } };
    idx_query q = { .text = "fish cat bird unknownword", .k = 100, .explain = 1 };
    cr_assert_eq(idx_search(o.s, &q, &res, &eb), 0, "%s", eb.msg);
    cr_assert_eq(res.matches, 4);
    cr_assert_eq(res.nhits, 4, "k > matches returns every match");
    cr_assert_eq(res.nterms, 4);
    for (size_t h = 0; h < res.nhits; h++) {
        double sum = 0;
        for (size_t t = 0; t < res.nterms; t++) {
            const idx_term_explain *x = &res.hits[h].terms[t];
            cr_assert_str_eq(x->term, res.terms[t]);
            if (x->tf[0] + x->tf[1] == 0) cr_assert_eq(x->contribution, 0.0);
            else cr_assert_gt(x->contribution, 0.0);
            sum += x->contribution;
        }
        cr_assert_eq(res.hits[h].terms[3].gdf, 0);
        cr_assert_float_eq(sum, res.hits[h].score, 1e-12);
        if (h) cr_assert_geq(res.hits[h - 1].score, res.hits[h].score);
    }
    /* only stopwords: no terms, no hits, not an error */
    idx_query qs = { .text = "the and of a", .k = 10 };
    cr_assert_eq(idx_search(o.s, &qs, &res, &eb), 0, "%s", eb.msg);
    cr_assert_eq(res.nhits, 0);
    cr_assert_eq(res.nterms, 0);
    cr_assert_eq(res.matches, 0);
    idx_query qz = { .text = "cat", .k = 0 };
    cr_assert_eq(idx_search(o.s, &qz, &res, &eb), FN_EINVAL);
    close_shard(&o);
}

Test(search, ties_are_ordered_by_key)
{
    char corpus[2048];
    size_t off = 0;
    for (int i = 0; i < 12; i++)
        off += (size_t)sprintf(corpus + off, "{\"id\":\"x%d\",\"title\":\"zebra\",\"body\":\"stripes\"}\n", i);
    off += (size_t)sprintf(corpus + off, "{\"id\":\"y\",\"title\":\"zebra zebra\",\"body\":\"stripes\"}\n");
    build(corpus, NULL, 1, "ties", 1);
    opened o = open_shard("ties", 0);
    idx_results res;
    fn_errbuf eb = { { 0 } };
    idx_query q = { .text = "zebra", .k = 5 };
    cr_assert_eq(idx_search(o.s, &q, &res, &eb), 0, "%s", eb.msg);
    cr_assert_eq(res.matches, 13);
    cr_assert_eq(res.nhits, 5);
    cr_assert_str_eq(res.hits[0].id, "y");
    /* the 12 tied documents: the 4 smallest keys, ascending */
    uint64_t keys[12];
    for (int i = 0; i < 12; i++) {
        char id[16];
        snprintf(id, sizeof id, "x%d", i);
        keys[i] = XXH64(id, strlen(id), 0);
    }
    for (int a = 0; a < 12; a++)
        for (int b = a + 1; b < 12; b++)
            if (keys[b] < keys[a]) { uint64_t t = keys[a]; keys[a] = keys[b]; keys[b] = t; }
    for (int h = 1; h < 5; h++) {
        cr_assert_eq(res.hits[h].score, res.hits[1].score);
        cr_assert_eq(res.hits[h].key, keys[h - 1], "hit %d", h);
        cr_assert_eq(XXH64(res.hits[h].id, strlen(res.hits[h].id), 0), res.hits[h].key);
    }
    close_shard(&o);
}

/* ---- shard-count independence on a real collection ---- */

typedef struct scored { double score; uint64_t key; char id[32]; } scored;

static int scored_cmp(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->key < y->key ? -1 : x->key > y->key ? 1 : 0;
}

/* All matches of q over every shard of name, merged in the global order. */
static size_t search_all(const char *name, uint32_t shards, const char *text, scored *out, size_t cap)
{
    size_t n = 0;
    for (uint32_t s = 0; s < shards; s++) {
        opened o = open_shard(name, s);
        idx_results res;
        fn_errbuf eb = { { 0 } };
        idx_query q = { .text = text, .k = cap };
        cr_assert_eq(idx_search(o.s, &q, &res, &eb), 0, "%s", eb.msg);
        cr_assert_eq(res.nhits, res.matches);
        for (size_t h = 0; h < res.nhits; h++) {
            cr_assert_lt(n, cap);
            out[n].score = res.hits[h].score;
            out[n].key = res.hits[h].key;
            snprintf(out[n].id, sizeof out[n].id, "%s", res.hits[h].id);
            n++;
        }
        close_shard(&o);
    }
    qsort(out, n, sizeof *out, scored_cmp);
    return n;
}

Test(search, scores_do_not_depend_on_shard_count, .timeout = 120)
{
    const char *data = getenv("FUNNEL_DATA");
    cr_assert_not_null(data, "FUNNEL_DATA must point at shared/data");
    char corpus[1024], queries[1024];
    snprintf(corpus, sizeof corpus, "%s/cranfield/corpus.jsonl", data);
    snprintf(queries, sizeof queries, "%s/cranfield/queries.tsv", data);
    build(NULL, corpus, 1, "cran1", 0);
    build(NULL, corpus, 3, "cran3", 0);

    FILE *f = fopen(queries, "r");
    cr_assert_not_null(f);
    size_t cap = 2000;
    scored *a = malloc(cap * sizeof *a), *b = malloc(cap * sizeof *b);
    char line[4096];
    int nq = 0;
    size_t total = 0;
    while (nq < 40 && fgets(line, sizeof line, f)) {
        char *text = strchr(line, '\t');
        if (!text) continue;
        text++;
        size_t na = search_all("cran1", 1, text, a, cap);
        size_t nb = search_all("cran3", 3, text, b, cap);
        cr_assert_eq(na, nb, "query %d: match counts differ", nq);
        cr_assert_gt(na, 0);
        /* every document: same score, bit for bit, same global order */
        for (size_t i = 0; i < na; i++) {
            cr_assert_str_eq(a[i].id, b[i].id, "query %d rank %zu", nq, i);
            cr_assert_eq(a[i].score, b[i].score, "query %d %s: %.17g vs %.17g", nq, a[i].id, a[i].score, b[i].score);
        }
        total += na;
        nq++;
    }
    fclose(f);
    free(a);
    free(b);
    cr_assert_eq(nq, 40);
    cr_assert_gt(total, 1000);
}

/* Stored fields come from the compact record the builder writes (schema 2),
 * taken from the JSON values: escapes, nesting, key order and non-string
 * values must come back exactly as the corpus had them. */
Test(search, hit_fields_from_stored_json)
{
    const char *c =
        "{\"body\":\"zebra\",\"extra\":{\"title\":\"inner\",\"a\":[1,\"}]\",{\"url\":\"no\"}],\"n\":null},"
        "\"url\":\"http://x/\\\"q\\\"\",\"title\":\"Tab\\there \\\\ \\/ caf\xc3\xa9\",\"id\":\"z1\"}\n"
        "{\"id\":\"z2\",\"title\":null,\"url\":7,\"body\":\"zebra zebra\",\"k\":[true,false,-1.5e3]}\n"
        "{\"id\":\"z3\",\"title\":\"\\u00e9t\\u00e9\\u0001 \\ud83d\\ude00\",\"body\":\"zebra zebra zebra\",\"url\":\"u\"}\n";
    build(c, NULL, 1, "fields", 1);
    opened o = open_shard("fields", 0);
    idx_results res;
    fn_errbuf eb = { { 0 } };
    idx_query q = { .text = "zebra", .k = 10 };
    cr_assert_eq(idx_search(o.s, &q, &res, &eb), 0, "%s", eb.msg);
    cr_assert_eq(res.nhits, 3);
    int seen = 0;
    for (size_t h = 0; h < res.nhits; h++) {
        const idx_hit *x = &res.hits[h];
        if (!strcmp(x->id, "z1")) {
            cr_assert_str_eq(x->title, "Tab\there \\ / caf\xc3\xa9");
            cr_assert_str_eq(x->url, "http://x/\"q\"");
            seen |= 1;
        } else if (!strcmp(x->id, "z2")) {
            cr_assert_str_eq(x->title, "");
            cr_assert_str_eq(x->url, "", "a non-string url reads as empty");
            seen |= 2;
        } else if (!strcmp(x->id, "z3")) {
            cr_assert_str_eq(x->title, "\xc3\xa9t\xc3\xa9\x01 \xf0\x9f\x98\x80");
            cr_assert_str_eq(x->url, "u");
            seen |= 4;
        }
    }
    cr_assert_eq(seen, 7);
    close_shard(&o);
}

/* The bounds one request's work is held to (issue 6): distinct terms,
 * explained hits, the deadline. */
Test(search, limits_terms_explain_hits_and_deadline)
{
    build(animals, NULL, 1, "animals", 1);
    opened o = open_shard("animals", 0);
    idx_results res;
    fn_errbuf eb = { { 0 } };
    idx_query q = { .text = "fish cat bird dog", .k = 10, .max_terms = 3 };
    cr_assert_eq(idx_search(o.s, &q, &res, &eb), FN_ELIMIT);
    cr_assert_str_eq(eb.msg, "query: 4 distinct terms after analysis, over the limit of 3 (max-query-terms)");
    idx_query q3 = { .text = "fish fish cat cat bird", .k = 10, .max_terms = 3 };
    cr_assert_eq(idx_search(o.s, &q3, &res, &eb), 0, "repeats count once: %s", eb.msg);

    idx_query qe = { .text = "fish cat bird", .k = 10, .explain = 1, .explain_hits = 2 };
    cr_assert_eq(idx_search(o.s, &qe, &res, &eb), 0, "%s", eb.msg);
    cr_assert_eq(res.nhits, 4);
    cr_assert_not_null(res.hits[0].terms);
    cr_assert_not_null(res.hits[1].terms);
    cr_assert_null(res.hits[2].terms, "past explain_hits");
    cr_assert_null(res.hits[3].terms);

    idx_query qd = { .text = "fish", .k = 10, .deadline_ns = 1 };   /* long past */
    cr_assert_eq(idx_search(o.s, &qd, &res, &eb), 0, "the deadline is checked every 4096 documents: "
                 "a 4-document shard finishes: %s", eb.msg);
    close_shard(&o);
}

Test(search, deadline_stops_a_long_search)
{
    /* 20000 documents sharing one term: past the first check */
    char in[512];
    snprintf(in, sizeof in, "%s/many.jsonl", tmpdir);
    FILE *f = fopen(in, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 20000; i++) fprintf(f, "{\"id\":\"m%d\",\"body\":\"zebra %d\"}\n", i, i);
    fclose(f);
    build(NULL, in, 1, "many", 1);
    opened o = open_shard("many", 0);
    idx_results res;
    fn_errbuf eb = { { 0 } };
    idx_query q = { .text = "zebra", .k = 10, .deadline_ns = 1 };
    cr_assert_eq(idx_search(o.s, &q, &res, &eb), -ETIMEDOUT);
    cr_assert(strstr(eb.msg, "deadline") != NULL, "%s", eb.msg);
    idx_query q2 = { .text = "zebra", .k = 10 };
    cr_assert_eq(idx_search(o.s, &q2, &res, &eb), 0, "the searcher is usable again: %s", eb.msg);
    cr_assert_eq(res.matches, 20000);
    close_shard(&o);
}

/* ---- the selection's top k at large k (the funnel asks for thousands) ---- */

typedef struct ranked { double score; uint64_t key; uint32_t doc; } ranked;

static int ranked_cmp(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->doc < y->doc ? -1 : x->doc > y->doc;
}

/* Every k gives exactly the first k of all matches scored and sorted
 * independently (qsort here, the selection's own buffer, partition and sort
 * there), with the same bits; and each score is the sum, in query order, of
 * the per-term shares explain computes one document at a time (the
 * selection computes them a posting block at a time). */
Test(search, top_k_at_every_k_equals_exhaustive_scoring, .timeout = 120)
{
    const char *data = getenv("FUNNEL_DATA");
    cr_assert_not_null(data, "FUNNEL_DATA must point at shared/data");
    char corpus[1024], queries[1024];
    snprintf(corpus, sizeof corpus, "%s/cranfield/corpus.jsonl", data);
    snprintf(queries, sizeof queries, "%s/cranfield/queries.tsv", data);
    build(NULL, corpus, 1, "cranall", 0);
    opened o = open_shard("cranall", 0);
    size_t ndocs = idx_reader_info(o.r)->docs;
    ranked *all = malloc(ndocs * sizeof *all);
    cr_assert_not_null(all);
    FILE *f = fopen(queries, "r");
    cr_assert_not_null(f);
    char line[4096];
    int nq = 0;
    size_t big = 0, inexact = 0;
    fn_errbuf eb = { { 0 } };
    while (nq < 60 && fgets(line, sizeof line, f)) {
        char *text = strchr(line, '\t');
        if (!text) continue;
        text++;
        /* all matches, with explain: the per-term shares */
        idx_results res;
        idx_query qa = { .text = text, .k = ndocs + 10, .explain = 1 };
        cr_assert_eq(idx_search(o.s, &qa, &res, &eb), 0, "%s", eb.msg);
        size_t m = res.nhits;
        cr_assert_eq(m, res.matches);
        for (size_t h = 0; h < m; h++) {
            const idx_hit *x = &res.hits[h];
            double sum = 0.0;
            for (size_t t = 0; t < res.nterms; t++) sum += x->terms[t].contribution;
            cr_assert(sum == x->score, "query %d %s: score %.17g, shares sum to %.17g", nq, x->id,
                      x->score, sum);
            all[h] = (ranked){ x->score, x->key, x->doc };
        }
        qsort(all, m, sizeof *all, ranked_cmp);
        for (size_t h = 0; h < m; h++)
            cr_assert(all[h].doc == res.hits[h].doc, "query %d: rank %zu of all matches", nq, h);
        if (m > 500) big++;
        size_t ks[] = { 1, 2, 3, 10, 17, 100, 250, 499, 500, 501, 1000, m > 1 ? m - 1 : 1, m, m + 1 };
        for (size_t j = 0; j < 2 * sizeof ks / sizeof ks[0]; j++) {
            /* each k twice: matches counted exactly, then the pruned lower bound */
            int exact = j % 2 == 0;
            idx_query q = { .text = text, .k = ks[j / 2], .exact_matches = exact };
            cr_assert_eq(idx_search(o.s, &q, &res, &eb), 0, "%s", eb.msg);
            if (exact || res.matches_exact) {
                cr_assert(res.matches_exact);
                cr_assert_eq(res.matches, m);
            } else {
                cr_assert(res.matches <= m && res.matches >= res.nhits, "query %d k %zu: %" PRIu64 " of %zu",
                          nq, ks[j / 2], res.matches, m);
                inexact++;
            }
            cr_assert_eq(res.nhits, ks[j / 2] < m ? ks[j / 2] : m, "query %d k %zu", nq, ks[j / 2]);
            for (size_t h = 0; h < res.nhits; h++) {
                cr_assert_eq(res.hits[h].doc, all[h].doc, "query %d k %zu rank %zu", nq, ks[j / 2], h);
                cr_assert_eq(res.hits[h].key, all[h].key);
                cr_assert(memcmp(&res.hits[h].score, &all[h].score, sizeof all[h].score) == 0,
                          "query %d k %zu rank %zu: %.17g vs %.17g", nq, ks[j / 2], h, res.hits[h].score,
                          all[h].score);
            }
        }
        nq++;
    }
    fclose(f);
    free(all);
    close_shard(&o);
    cr_assert_eq(nq, 60);
    cr_assert_gt(big, 10, "queries with more than 500 matches: %zu", big);
    cr_assert_gt(inexact, 100, "pruned searches that skipped matches: %zu", inexact);
}

/* The same on a generated corpus with a few very common terms (the pruned
 * lists of the selection), static signals and interest terms (which keep
 * the exhaustive merge): every k gives the first k of all matches, bit for
 * bit, and the same match count. */
Test(search, top_k_equals_all_matches_with_common_terms_and_signals, .timeout = 120)
{
    char in[512];
    snprintf(in, sizeof in, "%s/gen.jsonl", tmpdir);
    FILE *f = fopen(in, "w");
    cr_assert_not_null(f);
    static const char *words[] = { "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
                                   "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi" };
    uint64_t x = 0x853c49e6748fea9bull;
    for (int i = 0; i < 3000; i++) {
        fprintf(f, "{\"id\":\"g%d\",\"popularity\":%d,\"published_at\":%d,\"title\":\"", i, i % 97,
                1700000000 - (i % 13) * 86400);
        for (int w = 0; w < 3; w++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            fprintf(f, "%s%s", w ? " " : "", words[(x % 16) * (x % 16) / 16]);   /* skewed: common first words */
        }
        fprintf(f, "\",\"body\":\"");
        int len = 5 + (int)(x % 40);
        for (int w = 0; w < len; w++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            fprintf(f, "%s%s", w ? " " : "", words[(x % 16) * (x % 16) / 16]);
        }
        fprintf(f, "\"}\n");
    }
    fclose(f);
    build(NULL, in, 1, "gen", 1);
    opened o = open_shard("gen", 0);
    size_t ndocs = idx_reader_info(o.r)->docs;
    ranked *all = malloc(ndocs * sizeof *all);
    cr_assert_not_null(all);
    static const char *queries[] = { "alpha beta", "alpha pi", "beta gamma delta", "pi omicron xi nu",
                                     "alpha alpha zeta", "theta", "alpha beta gamma delta epsilon zeta",
                                     "mu lambda kappa iota alpha" };
    idx_select_params sig = { .w_popularity = 0.3, .w_freshness = 0.5, .half_life_days = 7, .w_user = 0.7 };
    fn_errbuf eb = { { 0 } };
    for (int setting = 0; setting < 3; setting++) {
        for (size_t qi = 0; qi < sizeof queries / sizeof queries[0]; qi++) {
            idx_query base = { .text = queries[qi], .now = 1700000000 };
            if (setting >= 1) base.sel = &sig;
            if (setting == 2) base.user_terms = "pi xi";
            idx_results res;
            idx_query qa = base;
            qa.k = ndocs + 10;
            cr_assert_eq(idx_search(o.s, &qa, &res, &eb), 0, "%s", eb.msg);
            size_t m = res.nhits;
            cr_assert_eq(m, res.matches);
            for (size_t h = 0; h < m; h++) all[h] = (ranked){ res.hits[h].score, res.hits[h].key, res.hits[h].doc };
            size_t ks[] = { 1, 3, 10, 64, 100, 333, 1000, m > 1 ? m - 1 : 1, m };
            for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
                idx_query q = base;
                q.k = ks[j];
                q.exact_matches = 1;
                cr_assert_eq(idx_search(o.s, &q, &res, &eb), 0, "%s", eb.msg);
                cr_assert_eq(res.matches, m, "setting %d %s k %zu: matches", setting, queries[qi], ks[j]);
                cr_assert(res.matches_exact);
                cr_assert_eq(res.nhits, ks[j] < m ? ks[j] : m);
                for (size_t h = 0; h < res.nhits; h++) {
                    cr_assert_eq(res.hits[h].doc, all[h].doc, "setting %d %s k %zu rank %zu", setting,
                                 queries[qi], ks[j], h);
                    cr_assert(memcmp(&res.hits[h].score, &all[h].score, sizeof all[h].score) == 0);
                }
            }
        }
    }
    free(all);
    close_shard(&o);
}

/* Randomized differential check over synthetic postings: corpora whose
 * common terms span dozens of blocks, built with every registered codec;
 * random queries (1-8 terms, repeats, absent terms) at random k and random
 * BM25F settings. Every algorithm gives the exhaustive merge's top k bit for
 * bit; counted exactly, the same matches; otherwise a flagged lower bound. */
Test(search, every_codec_and_algorithm_equals_exhaustive_on_random_postings, .timeout = 300)
{
    char in[512];
    snprintf(in, sizeof in, "%s/rnd.jsonl", tmpdir);
    FILE *f = fopen(in, "w");
    cr_assert_not_null(f);
    enum { V = 400, DOCS = 6000 };
    uint64_t x = 0x2545F4914F6CDD1Dull;
#define RND() (x ^= x << 13, x ^= x >> 7, x ^= x << 17, x)
    for (int i = 0; i < DOCS; i++) {
        fprintf(f, "{\"id\":\"r%d\",\"title\":\"", i);
        int tl = (int)(RND() % 5), bl = (int)(RND() % 80);
        for (int w = 0; w < tl; w++) {
            uint64_t r = RND() % V;
            fprintf(f, "%sw%llu", w ? " " : "", (unsigned long long)(r * r / V));   /* skewed */
        }
        fprintf(f, "\",\"body\":\"");
        for (int w = 0; w < bl; w++) {
            uint64_t r = RND() % V;
            fprintf(f, "%sw%llu", w ? " " : "", (unsigned long long)(r * r / V));
        }
        fprintf(f, "\"}\n");
    }
    fclose(f);
    const idx_codec_t *const *codecs = idx_codec_all();
    size_t ncodec = 0, pruned = 0, inexact = 0, runs = 0, bmw_skips = 0;
    fn_errbuf eb = { { 0 } };
    ranked *ref = malloc(DOCS * sizeof *ref);
    cr_assert_not_null(ref);
    for (; codecs[ncodec]; ncodec++) {
        const char *cn = codecs[ncodec]->name;
        char name[64];
        snprintf(name, sizeof name, "rnd-%s", cn);
        build_codec = cn;
        build(NULL, in, 1, name, 1);
        build_codec = NULL;
        opened o = open_shard(name, 0);
        for (int qi = 0; qi < 150; qi++) {
            char text[256];
            size_t len = 0;
            int nt = 1 + (int)(RND() % 8);
            for (int t = 0; t < nt; t++) {
                uint64_t r = RND() % (V + 8);
                if (r >= V)
                    len += (size_t)snprintf(text + len, sizeof text - len, "%sabsent%d", t ? " " : "", (int)(r - V));
                else
                    len += (size_t)snprintf(text + len, sizeof text - len, "%sw%llu", t ? " " : "",
                                            (unsigned long long)(r % 3 ? r * r / V : r));
            }
            static const size_t ks[] = { 1, 5, 10, 100, 127, 128, 129, 1000, 5000 };
            size_t k = ks[RND() % (sizeof ks / sizeof ks[0])];
            idx_bm25_params bm;
            idx_bm25_defaults(&bm);
            if (qi % 3 == 1) {
                bm.k1 = 0.3 + (double)(RND() % 100) / 50.0;
                bm.b[0] = (double)(RND() % 101) / 100.0;
                bm.b[1] = (double)(RND() % 101) / 100.0;
                bm.w[0] = (double)(RND() % 50) / 10.0;
            }
            idx_results res;
            idx_query q = { .text = text, .k = k, .bm25 = &bm, .algo = IDX_ALGO_EXHAUSTIVE, .exact_matches = 1 };
            cr_assert_eq(idx_search(o.s, &q, &res, &eb), 0, "%s", eb.msg);
            cr_assert_eq(res.algo, IDX_ALGO_EXHAUSTIVE);
            cr_assert(res.matches_exact);
            size_t n = res.nhits;
            uint64_t m = res.matches;
            for (size_t h = 0; h < n; h++) ref[h] = (ranked){ res.hits[h].score, res.hits[h].key, res.hits[h].doc };
            for (int a = 0; a < IDX_ALGO_COUNT; a++) {
                if (a == IDX_ALGO_EXHAUSTIVE) continue;
                for (int exact = 0; exact < 2; exact++) {
                    q.algo = (idx_algo)a;
                    q.exact_matches = exact;
                    cr_assert_eq(idx_search(o.s, &q, &res, &eb), 0, "%s", eb.msg);
                    runs++;
                    pruned += res.pruned_lists > 0 || res.skips > 0;
                    if (a == IDX_ALGO_BMW) {
                        cr_assert(res.algo == IDX_ALGO_BMW || exact || qi % 3 == 1 || n == 0, "BMW ran where it applies");
                        bmw_skips += res.skips > 0;
                    }
                    cr_assert_eq(res.nhits, n, "%s %s k %zu '%s'", cn, idx_algo_name(a), k, text);
                    if (exact || res.matches_exact) {
                        cr_assert(res.matches_exact);
                        cr_assert_eq(res.matches, m, "%s %s k %zu '%s'", cn, idx_algo_name(a), k, text);
                    } else {
                        cr_assert(res.matches <= m && res.matches >= n);
                        inexact++;
                    }
                    for (size_t h = 0; h < n; h++) {
                        cr_assert_eq(res.hits[h].doc, ref[h].doc, "%s %s k %zu rank %zu '%s'", cn,
                                     idx_algo_name(a), k, h, text);
                        cr_assert(memcmp(&res.hits[h].score, &ref[h].score, sizeof ref[h].score) == 0);
                    }
                }
            }
        }
        close_shard(&o);
    }
    free(ref);
#undef RND
    cr_assert_geq(ncodec, 1);
    cr_assert_gt(pruned, runs / 4, "searches that pruned: %zu of %zu", pruned, runs);
    cr_assert_gt(inexact, 0);
    cr_assert_gt(bmw_skips, 20, "BMW searches that jumped blocks: %zu", bmw_skips);
}

/* A long list's block ends are read once and kept (idx_term_lasts): they are
 * the blocks' own last documents, ascending, shared by later calls, and a
 * search for a document lands on the block that can hold it. */
Test(search, block_ends_of_long_lists_are_kept, .timeout = 120)
{
    const char *data = getenv("FUNNEL_DATA");
    cr_assert_not_null(data, "FUNNEL_DATA must point at shared/data");
    char corpus[1024];
    snprintf(corpus, sizeof corpus, "%s/cranfield/corpus.jsonl", data);
    build(NULL, corpus, 1, "cranl", 0);
    opened o = open_shard("cranl", 0);
    MDB_txn *txn;
    cr_assert_eq(mdb_txn_begin(o.r->env, NULL, MDB_RDONLY, &txn), 0);
    fn_errbuf eb = { { 0 } };
    const char *terms[] = { "flow", "pressur", "number", "boundari", "superson", "hyperson", "ablat", "cone" };
    int long_lists = 0, short_lists = 0;
    for (size_t t = 0; t < sizeof terms / sizeof *terms; t++) {
        idx_term_rec rec;
        int rc = idx_term_get(o.r, txn, terms[t], strlen(terms[t]), &rec, &eb);
        if (rc == FN_ENOTFOUND) continue;
        cr_assert_eq(rc, 0, "%s: %s", terms[t], eb.msg);
        const uint32_t *a, *again;
        cr_assert_eq(idx_term_lasts(o.r, txn, rec.termid, rec.nblocks, &a, &eb), 0, "%s", eb.msg);
        if (rec.nblocks < IDX_LASTS_MIN_BLOCKS) {
            cr_assert_null(a, "%s: %u blocks, nothing kept", terms[t], rec.nblocks);
            short_lists++;
            continue;
        }
        long_lists++;
        cr_assert_not_null(a);
        cr_assert_eq(idx_term_lasts(o.r, txn, rec.termid, rec.nblocks, &again, &eb), 0, "%s", eb.msg);
        cr_assert_eq(a, again, "%s: the kept array is shared", terms[t]);
        for (uint32_t b = 0; b < rec.nblocks; b++) {
            uint32_t first, last;
            cr_assert_eq(idx_block_peek(o.r, txn, rec.termid, b, &first, &last, &eb), 0, "%s", eb.msg);
            cr_assert_eq(a[b], last, "%s block %u", terms[t], b);
            if (b) cr_assert_gt(first, a[b - 1], "%s block %u starts after the one before", terms[t], b);
        }
        for (uint32_t d = 0; d <= a[rec.nblocks - 1] + 1; d += 7) {
            uint32_t b = idx_lasts_find(a, 0, rec.nblocks, d);
            if (b < rec.nblocks) cr_assert_geq(a[b], d);
            else cr_assert_lt(a[rec.nblocks - 1], d);
            if (b > 0) cr_assert_lt(a[b - 1], d, "%s: doc %u, block %u is the first that can hold it", terms[t], d, b);
        }
    }
    cr_assert_gt(long_lists, 0);
    cr_assert_gt(short_lists, 0);
    mdb_txn_abort(txn);
    close_shard(&o);
}

/* A stored record's place is kept after the first read: the second read of
 * every document gives the same record (the same bytes in the map), and a
 * document number past the shard's is refused, not read. */
Test(search, stored_records_read_again_from_where_they_lie)
{
    build(animals, NULL, 1, "docat", 0);
    opened o = open_shard("docat", 0);
    MDB_txn *txn;
    cr_assert_eq(mdb_txn_begin(o.r->env, NULL, MDB_RDONLY, &txn), 0);
    fn_errbuf eb = { { 0 } };
    uint64_t ndocs = idx_reader_info(o.r)->docs;
    cr_assert_eq(ndocs, 4);
    idx_doc_rec first[4], again;
    for (uint32_t d = 0; d < ndocs; d++)
        cr_assert_eq(idx_doc_get(o.r, txn, d, &first[d], &eb), 0, "%s", eb.msg);
    for (uint32_t d = 0; d < ndocs; d++) {
        cr_assert_eq(idx_doc_get(o.r, txn, d, &again, &eb), 0, "%s", eb.msg);
        cr_assert_eq(again.id, first[d].id, "doc %u: the same record", d);
        cr_assert_eq(again.id_len, first[d].id_len);
        cr_assert_eq(again.url_len, first[d].url_len);
    }
    cr_assert_eq(idx_doc_get(o.r, txn, (uint32_t)ndocs, &again, &eb), FN_ECORRUPT);
    cr_assert(strstr(eb.msg, "out of range"), "%s", eb.msg);
    mdb_txn_abort(txn);
    close_shard(&o);
}

/* AND (idx_query.all_terms): exactly the documents of the OR search that
 * hold every query term, with the same scores in the same order, and the
 * match count theirs; a term missing from the shard leaves nothing. On 3
 * shards of cranfield, so that the leapfrog also meets lists that end. */
Test(search, all_terms_is_the_or_search_filtered, .timeout = 120)
{
    const char *data = getenv("FUNNEL_DATA");
    cr_assert_not_null(data, "FUNNEL_DATA must point at shared/data");
    char corpus[1024];
    snprintf(corpus, sizeof corpus, "%s/cranfield/corpus.jsonl", data);
    build(NULL, corpus, 3, "cranand", 0);
    static const char *qs[] = { "boundary layer", "supersonic flow", "heat transfer", "shock wave interaction",
                                "pressure distribution on the wing", "laminar flow", "flutter", "mach number",
                                "skin friction heat transfer", "boundary layer flow pressure", "xyzzy flow" };
    size_t total = 0;
    for (uint32_t sh = 0; sh < 3; sh++) {
        opened o = open_shard("cranand", sh);
        size_t ndocs = idx_reader_info(o.r)->docs;
        uint32_t *want = malloc(ndocs * sizeof *want);
        double *wscore = malloc(ndocs * sizeof *wscore);
        cr_assert(want && wscore);
        for (size_t qi = 0; qi < sizeof qs / sizeof *qs; qi++) {
            fn_errbuf eb = { { 0 } };
            idx_results res;
            idx_query q = { .text = qs[qi], .k = ndocs, .explain = 1, .explain_hits = 0 };
            cr_assert_eq(idx_search(o.s, &q, &res, &eb), 0, "%s", eb.msg);
            size_t nw = 0;
            for (size_t h = 0; h < res.nhits; h++) {
                int all = 1;
                for (size_t t = 0; t < res.nterms; t++)
                    all &= res.hits[h].terms[t].tf[0] + res.hits[h].terms[t].tf[1] > 0;
                if (all && res.nterms) {
                    want[nw] = res.hits[h].doc;
                    wscore[nw++] = res.hits[h].score;
                }
            }
            if (strstr(qs[qi], "xyzzy")) cr_assert_eq(nw, 0);
            idx_query qa = { .text = qs[qi], .k = ndocs, .all_terms = 1 };
            cr_assert_eq(idx_search(o.s, &qa, &res, &eb), 0, "%s", eb.msg);
            cr_assert_eq(res.nhits, nw, "shard %u \"%s\": %zu AND hits, %zu OR hits with every term", sh,
                         qs[qi], res.nhits, nw);
            cr_assert_eq(res.matches, nw);
            for (size_t h = 0; h < nw; h++) {
                cr_assert_eq(res.hits[h].doc, want[h], "shard %u \"%s\" rank %zu", sh, qs[qi], h);
                cr_assert(memcmp(&res.hits[h].score, &wscore[h], sizeof(double)) == 0);
            }
            /* a smaller k: the best of them, the same way */
            idx_query qk = { .text = qs[qi], .k = 3, .all_terms = 1 };
            cr_assert_eq(idx_search(o.s, &qk, &res, &eb), 0, "%s", eb.msg);
            cr_assert_eq(res.matches, nw);
            for (size_t h = 0; h < res.nhits; h++) cr_assert_eq(res.hits[h].doc, want[h]);
            total += nw;
        }
        free(want);
        free(wscore);
        close_shard(&o);
    }
    cr_assert_gt(total, 100, "the AND queries match documents");
}
