/* test_attrs.c - index/attrs.c: document attributes stored by the builder,
 * filters evaluated inside selection (every algorithm, OR and AND,
 * structured queries, 1 and 3 shards) and in the vector search, checked
 * against the tests' own evaluation of each filter on the corpus JSON
 * (tests/filter_ref.h); bad attribute values; damage. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <jansson.h>
#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "builder.h"
#include "filter.h"
#include "filter_ref.h"
#include "fn_arena.h"
#include "format.h"
#include "knn.h"
#include "search.h"
#include "testutil.h"

static char tmpdir[256];
static void setup(void) { tu_mkdtemp(tmpdir, sizeof tmpdir, "/tmp/test_attrs.XXXXXX"); }
static void teardown(void) { tu_rmtree(tmpdir); }
TestSuite(attrs, .init = setup, .fini = teardown, .timeout = 240);

/* ---- a corpus: cranfield with attributes, deterministic ---- */

enum { MAXDOCS = 80000, DIM = 8 };
static json_t *docs[MAXDOCS];
static size_t ndocs;

static uint32_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 33);
}

/* Cranfield's documents with vertical, lang, labels, popularity and
 * published_at drawn at random (missing, null and odd values included),
 * and with vectors an embedding; written to path. */
static void write_corpus(const char *path, int vectors)
{
    char src[600];
    snprintf(src, sizeof src, "%s/cranfield/corpus.jsonl", tu_data_dir());
    FILE *in = fopen(src, "r");
    cr_assert_not_null(in, "%s", src);
    FILE *out = fopen(path, "w");
    cr_assert_not_null(out);
    static const char *const vert[] = { "web", "news", "image", "video", "n\xc3\xbc" "ws" };
    static const char *const lang[] = { "en", "de", "fr" };
    static const char *const lab[] = { "a", "b", "c", "sports", "long label with spaces" };
    uint64_t seed = 42;
    char *line = NULL;
    size_t cap = 0;
    ndocs = 0;
    while (getline(&line, &cap, in) > 0 && ndocs < MAXDOCS) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        cr_assert_not_null(o);
        uint32_t x = rnd(&seed) % 100;
        if (x < 60) json_object_set_new(o, "vertical", json_string(vert[0]));
        else if (x < 75) json_object_set_new(o, "vertical", json_string(vert[1]));
        else if (x < 82) json_object_set_new(o, "vertical", json_string(vert[2]));
        else if (x < 88) json_object_set_new(o, "vertical", json_string(vert[3]));
        else if (x < 90) json_object_set_new(o, "vertical", json_string(vert[4]));
        else if (x < 93) json_object_set_new(o, "vertical", json_null());
        else if (x < 95) json_object_set_new(o, "vertical", json_string(""));
        x = rnd(&seed) % 10;
        if (x < 7) json_object_set_new(o, "lang", json_string(lang[x % 3]));
        x = rnd(&seed) % 8;
        if (x < 6) {
            json_t *a = json_array();
            uint32_t m = rnd(&seed) % 6;
            for (uint32_t j = 0; j < m; j++) json_array_append_new(a, json_string(lab[rnd(&seed) % 5]));
            if (x == 5) json_array_append_new(a, json_string(""));
            json_object_set_new(o, "labels", a);
        }
        x = rnd(&seed) % 10;
        if (x < 8) json_object_set_new(o, "popularity", json_real((double)(rnd(&seed) % 1000) / 100.0));
        else if (x == 8) json_object_set_new(o, "popularity", json_integer(rnd(&seed) % 5));
        x = rnd(&seed) % 10;
        if (x < 8) json_object_set_new(o, "published_at", json_integer(1500000000 + (json_int_t)(rnd(&seed) % 100000)));
        else if (x == 8) json_object_set_new(o, "published_at", json_real(1500050000.75));
        if (vectors) {
            json_t *e = json_array();
            for (int j = 0; j < DIM; j++) json_array_append_new(e, json_real((double)(rnd(&seed) % 2001) / 1000.0 - 1.0 + 0.0005));
            json_object_set_new(o, "embedding", e);
        }
        char *s = json_dumps(o, JSON_COMPACT);
        fprintf(out, "%s\n", s);
        free(s);
        docs[ndocs++] = o;
    }
    free(line);
    fclose(in);
    fclose(out);
}

static void free_corpus(void)
{
    for (size_t i = 0; i < ndocs; i++) json_decref(docs[i]);
    ndocs = 0;
}

static void build(const char *input, uint32_t shards, const char *name, uint32_t dim)
{
    char out[512];
    snprintf(out, sizeof out, "%s/%s.idx", tmpdir, name);
    idx_build_opts o;
    memset(&o, 0, sizeof o);
    o.input = input;
    o.out_dir = out;
    o.shards = shards;
    o.on_error = IDX_ON_ERROR_FAIL;
    o.vec_dim = dim;
    fn_errbuf eb = { { 0 } };
    idx_build_stats st;
    cr_assert_eq(idx_build(&o, &st, &eb), 0, "%s", eb.msg);
}

/* Each shard's document numbers -> corpus index (corpus order among the
 * documents routed to it) */
static uint32_t *shard_docs(uint32_t shard, uint32_t shards, size_t *n)
{
    uint32_t *m = malloc(sizeof *m * (ndocs + 1));
    *n = 0;
    for (size_t i = 0; i < ndocs; i++) {
        json_t *id = json_object_get(docs[i], "id");
        if ((XXH64(json_string_value(id), json_string_length(id), 0) % 4096) * shards / 4096 == shard)   /* buckets.h */
            m[(*n)++] = (uint32_t)i;
    }
    return m;
}

static const char *const filters[] = {
    "vertical:news",
    "vertical:news,image",
    "vertical:n\xc3\xbcws",
    "vertical:nosuch",
    "-vertical:web",
    "NOT vertical:web AND NOT vertical:news",
    "lang:en",
    "lang:de,fr popularity>=5",
    "labels:a",
    "labels:any(a,sports)",
    "labels:all(a,b)",
    "labels:all(a,nosuch)",
    "labels:\"long label with spaces\"",
    "-labels:a",
    "popularity>=9.5",
    "popularity>9.5",
    "popularity<0.2",
    "popularity<=0.2",
    "popularity=3",
    "popularity:1.5..2.5",
    "popularity:..0",
    "published_at>=1500090000",
    "published_at>1500050000",
    "published_at<1500005000",
    "published_at:1500010000..1500020000",
    "published_at=1500050000",
    "-published_at>=1500000000",
    "vertical:image published_at>=1500050000",
    "vertical:image OR labels:sports",
    "(vertical:news OR vertical:video) AND (lang:en OR popularity>8)",
    "vertical:web lang:en labels:a popularity>=2 published_at<1500080000",
    "id:1,7,100,1399,999999",
    "id:1,2,3 OR vertical:video",
    "-id:1",
    "NOT popularity<9",
    "-vertical:web,news,image",
    "lang:de -popularity<5",
    "-published_at<=1500095000 OR vertical:video",
};
#define NFILTERS (sizeof filters / sizeof *filters)

static const char *const queries[] = {
    "what similarity laws must be obeyed when constructing aeroelastic models of heated high speed aircraft",
    "what are the structural and aeroelastic problems associated with flight of high speed aircraft",
    "boundary layer",
    "heat transfer to a flat plate",
    "shock wave",
    "supersonic flow over a cone",
    "buckling of cylinders under axial compression",
    "laminar",
};
#define NQUERIES (sizeof queries / sizeof *queries)

typedef struct hv { uint32_t doc; double score; } hv;

/* every filter x query x algorithm x (any, all) on every shard: the
 * filtered top k = the exhaustive unfiltered ranking cut to the passing
 * documents (by the reference evaluation of the corpus JSON) */
static void differential_of(const char *name, uint32_t shards, size_t k, int structured,
                            const char *const *filters, size_t nfilters)
{
    fn_arena ar;
    fn_arena_init(&ar);
    fn_fnode *ft[64];
    fn_errbuf eb = { { 0 } };
    cr_assert(nfilters <= 64);
#undef NFILTERS
#define NFILTERS nfilters
    for (size_t f = 0; f < NFILTERS; f++)
        cr_assert_eq(fn_fparse(filters[f], strlen(filters[f]), &ar, &ft[f], &eb), 0, "%s: %s", filters[f], eb.msg);
    uint64_t compared = 0, nonempty = 0;
    for (uint32_t sh = 0; sh < shards; sh++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s.idx/shard-%03u", tmpdir, name, sh);
        idx_reader_t *r;
        idx_searcher_t *s;
        cr_assert_eq(idx_reader_open(p, &r, &eb), 0, "%s", eb.msg);
        cr_assert_eq(idx_searcher_create(r, &s, &eb), 0, "%s", eb.msg);
        size_t n;
        uint32_t *map = shard_docs(sh, shards, &n);
        cr_assert_eq(n, idx_reader_info(r)->docs);
        hv *full = malloc(sizeof *full * (n + 1));
        for (size_t qi = 0; qi < NQUERIES; qi++)
            for (int all = 0; all <= 1; all++) {
                char qtext[400];
                /* structured: a phrase-free tree with NOT, run through qmatch */
                if (structured) snprintf(qtext, sizeof qtext, "(%s) -zzzunknown", queries[qi]);
                else snprintf(qtext, sizeof qtext, "%s", queries[qi]);
                idx_query q = { .text = qtext, .k = n ? n : 1, .algo = IDX_ALGO_EXHAUSTIVE, .no_fields = 1,
                                .plain_text = !structured, .all_terms = all };
                idx_results res;
                cr_assert_eq(idx_search(s, &q, &res, &eb), 0, "%s", eb.msg);
                size_t nfull = res.nhits;
                for (size_t h = 0; h < nfull; h++) full[h] = (hv){ res.hits[h].doc, res.hits[h].score };
                for (size_t f = 0; f < NFILTERS; f++)
                    for (int algo = IDX_ALGO_AUTO; algo < IDX_ALGO_COUNT; algo++) {
                        idx_query fq = { .text = qtext, .k = k, .algo = (idx_algo)algo, .plain_text = !structured,
                                         .all_terms = all, .filter = ft[f], .exact_matches = algo == IDX_ALGO_MAXSCORE };
                        cr_assert_eq(idx_search(s, &fq, &res, &eb), 0, "%s", eb.msg);
                        size_t j = 0;
                        uint64_t passing = 0;
                        for (size_t h = 0; h < nfull; h++) {
                            if (!filter_ref_match(ft[f], docs[map[full[h].doc]])) continue;
                            passing++;
                            if (j >= k) continue;
                            cr_assert(j < res.nhits, "filter \"%s\" query %zu (%s, %s): %zu hits, the reference has more",
                                      filters[f], qi, idx_algo_name((idx_algo)algo), all ? "all" : "any", res.nhits);
                            cr_assert(res.hits[j].doc == full[h].doc && res.hits[j].score == full[h].score,
                                      "filter \"%s\" query %zu (%s, %s) rank %zu: doc %u %.17g, reference doc %u %.17g",
                                      filters[f], qi, idx_algo_name((idx_algo)algo), all ? "all" : "any", j,
                                      res.hits[j].doc, res.hits[j].score, full[h].doc, full[h].score);
                            j++;
                        }
                        cr_assert_eq(j, res.nhits, "filter \"%s\" query %zu: %zu hits, the reference %zu", filters[f],
                                     qi, res.nhits, j);
                        /* the count: exact when the search says so, never above the truth */
                        if (res.matches_exact)
                            cr_assert_eq(res.matches, passing, "filter \"%s\" query %zu: matches %" PRIu64 ", reference %" PRIu64,
                                         filters[f], qi, res.matches, passing);
                        else
                            cr_assert(res.matches <= passing);
                        /* stored fields of the hits are this document's */
                        for (size_t h = 0; h < res.nhits && h < 3; h++)
                            cr_assert(filter_ref_str_is(json_object_get(docs[map[res.hits[h].doc]], "id"), res.hits[h].id));
                        compared++;
                        nonempty += res.nhits > 0;
                    }
            }
        free(full);
        free(map);
        idx_searcher_destroy(s);
        idx_reader_close(r);
    }
    /* the table is not vacuous: most searches return something */
    cr_assert(nonempty * 2 > compared, "%" PRIu64 " of %" PRIu64 " filtered searches returned hits", nonempty, compared);
    fn_arena_free(&ar);
}
#undef NFILTERS
#define NFILTERS (sizeof filters / sizeof *filters)

static void differential(const char *name, uint32_t shards, size_t k, int structured)
{
    differential_of(name, shards, k, structured, filters, NFILTERS);
}

/* A shard of 70,000 documents: ranges go through the prefix bitmaps of
 * whole runs (attrs.h idx_rangeidx, made for shards of 65,536 documents or
 * more), values through their bitmaps; checked as above. */
Test(attrs, ranges_and_bitmaps_on_a_large_shard)
{
    char in[512];
    snprintf(in, sizeof in, "%s/big.jsonl", tmpdir);
    FILE *out = fopen(in, "w");
    cr_assert_not_null(out);
    static const char *const words[] = { "boundary", "layer", "heat", "transfer", "shock", "wave", "flow",
                                         "supersonic", "cone", "laminar", "plate", "flat", "cylinders" };
    static const char *const vert[] = { "web", "news", "image", "video" };
    uint64_t seed = 99;
    ndocs = 0;
    for (int i = 0; i < 70000; i++) {
        json_t *o = json_object();
        char id[32], body[200];
        snprintf(id, sizeof id, "b%d", i);
        int n = 0;
        for (int w = 0; w < 6; w++) n += snprintf(body + n, sizeof body - (size_t)n, "%s ", words[rnd(&seed) % 13]);
        json_object_set_new(o, "id", json_string(id));
        json_object_set_new(o, "body", json_string(body));
        uint32_t x = rnd(&seed) % 100;
        json_object_set_new(o, "vertical", json_string(vert[x < 70 ? 0 : x < 85 ? 1 : x < 95 ? 2 : 3]));
        /* zeros of both signs and times before 1970 too: the sorted orders
         * (a radix sort over the values' bits) must order them as numbers */
        uint32_t y = rnd(&seed) % 100;
        if (y < 80) json_object_set_new(o, "popularity", json_real((double)(rnd(&seed) % 100000) / 1000.0));
        else if (y < 88) json_object_set_new(o, "popularity", json_real(y % 2 ? -0.0 : 0.0));
        if (rnd(&seed) % 10 < 9) json_object_set_new(o, "published_at", json_integer(1500000000 + (json_int_t)(rnd(&seed) % 1000000)));
        else if (rnd(&seed) % 2) json_object_set_new(o, "published_at", json_integer(-(json_int_t)(rnd(&seed) % 1000000)));
        char *s = json_dumps(o, JSON_COMPACT);
        fprintf(out, "%s\n", s);
        free(s);
        docs[ndocs++] = o;
    }
    fclose(out);
    build(in, 1, "big", 0);
    static const char *const bf[] = {
        "popularity>=99.5", "popularity<0.3", "popularity:10..11", "popularity:10..60", "popularity>=3",
        "published_at>=1500990000", "published_at:1500100000..1500400000", "published_at<1500700000",
        "vertical:image popularity:20..70", "vertical:news,video published_at>=1500800000",
        "vertical:video -popularity:5..95", "-vertical:web", "vertical:image,video", "popularity:50..50.5 OR published_at<1500003000",
        "-published_at:1500010000..1500990000", "popularity<=0", "popularity:0..0.01", "published_at<0", "published_at:-500000..1500001000",
    };
    differential_of("big", 1, 10, 0, bf, sizeof bf / sizeof *bf);
    /* (k = 300 too, but not under the sanitizers: the same paths at k = 10
     * take them 15 s) */
    if (!TU_SANITIZED) differential_of("big", 1, 300, 0, bf, sizeof bf / sizeof *bf);
    free_corpus();
}

Test(attrs, filtered_selection_equals_reference_one_shard)
{
    char in[512];
    snprintf(in, sizeof in, "%s/c.jsonl", tmpdir);
    write_corpus(in, 0);
    build(in, 1, "c1", 0);
    differential("c1", 1, 10, 0);
    differential("c1", 1, 100, 0);
    differential("c1", 1, 1000, 1);
    free_corpus();
}

Test(attrs, filtered_selection_equals_reference_three_shards)
{
    char in[512];
    snprintf(in, sizeof in, "%s/c.jsonl", tmpdir);
    write_corpus(in, 0);
    build(in, 3, "c3", 0);
    differential("c3", 3, 10, 0);
    differential("c3", 3, 50, 1);
    free_corpus();
}

/* the vector search: only passing documents, and with a selective filter
 * (exact over them) the true nearest passing ones */
Test(attrs, filtered_knn)
{
    char in[512];
    snprintf(in, sizeof in, "%s/v.jsonl", tmpdir);
    write_corpus(in, 1);
    build(in, 1, "v1", DIM);
    char p[600];
    snprintf(p, sizeof p, "%s/v1.idx/shard-000", tmpdir);
    idx_reader_t *r;
    idx_searcher_t *s;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(idx_reader_open(p, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(idx_searcher_create(r, &s, &eb), 0, "%s", eb.msg);
    fn_arena ar;
    fn_arena_init(&ar);
    static const char *const fk[] = { "vertical:web", "vertical:video", "labels:all(a,b)", "popularity>9.9", "id:5,6,7" };
    uint64_t seed = 7;
    for (size_t f = 0; f < sizeof fk / sizeof *fk; f++) {
        fn_fnode *t;
        cr_assert_eq(fn_fparse(fk[f], strlen(fk[f]), &ar, &t, &eb), 0, "%s", eb.msg);
        for (int qn = 0; qn < 5; qn++) {
            float v[DIM];
            for (int j = 0; j < DIM; j++) v[j] = (float)((double)(rnd(&seed) % 2001) / 1000.0 - 1.0 + 0.0005);
            idx_knn_hit hits[20];
            size_t n;
            idx_knn_query q = { .vec = v, .dim = DIM, .k = 20, .filter = t };
            cr_assert_eq(idx_knn(s, &q, hits, &n, NULL, &eb), 0, "%s", eb.msg);
            /* reference: cosine to every passing document */
            double best[MAXDOCS];
            size_t nb = 0;
            for (size_t i = 0; i < ndocs; i++) {
                if (!filter_ref_match(t, docs[i])) continue;
                json_t *e = json_object_get(docs[i], "embedding");
                double dot = 0, na = 0, nv = 0;
                for (int j = 0; j < DIM; j++) {
                    double x = (float)json_number_value(json_array_get(e, (size_t)j));
                    dot += x * v[j];
                    na += x * x;
                    nv += (double)v[j] * v[j];
                }
                best[nb++] = dot / sqrt(na * nv);
            }
            size_t want = nb < 20 ? nb : 20;
            cr_assert_eq(n, want, "filter %s: %zu hits, %zu pass", fk[f], n, nb);
            for (size_t h = 0; h < n; h++) {
                /* the hit passes: find its corpus document by id */
                idx_hit ih = { .doc = hits[h].doc, .key = hits[h].key };
                cr_assert_eq(idx_docs_fields(s, &ih, 1, &eb), 0, "%s", eb.msg);
                int found = 0;
                for (size_t i = 0; i < ndocs && !found; i++)
                    if (filter_ref_str_is(json_object_get(docs[i], "id"), ih.id)) {
                        found = 1;
                        cr_assert(filter_ref_match(t, docs[i]), "filter %s: hit %s does not pass", fk[f], ih.id);
                    }
                cr_assert(found);
            }
            if (nb <= 2000 / 32) {
                /* exact: the k best passing cosines, in order */
                for (size_t a = 0; a < nb; a++)
                    for (size_t b = a + 1; b < nb; b++)
                        if (best[b] > best[a]) { double x = best[a]; best[a] = best[b]; best[b] = x; }
                for (size_t h = 0; h < n; h++)
                    cr_assert(fabs(hits[h].score - best[h]) < 1e-4, "filter %s rank %zu: %g, reference %g", fk[f], h,
                              hits[h].score, best[h]);
            }
        }
    }
    fn_arena_free(&ar);
    idx_searcher_destroy(s);
    idx_reader_close(r);
    free_corpus();
}

/* a bad attribute is a bad line, with its number */
Test(attrs, bad_values_are_bad_lines)
{
    static const struct { const char *line, *want; } bad[] = {
        { "{\"id\":\"x\",\"vertical\":3}", "\"vertical\" is not a string" },
        { "{\"id\":\"x\",\"lang\":[\"en\"]}", "\"lang\" is not a string" },
        { "{\"id\":\"x\",\"labels\":\"a\"}", "\"labels\" is not an array of strings" },
        { "{\"id\":\"x\",\"labels\":[\"a\",2]}", "\"labels\"[1] is not a string" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char in[512], out[512], text[800];
        snprintf(in, sizeof in, "%s/bad%zu.jsonl", tmpdir, i);
        snprintf(text, sizeof text, "{\"id\":\"ok\",\"title\":\"t\"}\n%s\n", bad[i].line);
        tu_write_file(in, text);
        snprintf(out, sizeof out, "%s/bad%zu.idx", tmpdir, i);
        idx_build_opts o;
        memset(&o, 0, sizeof o);
        o.input = in;
        o.out_dir = out;
        o.shards = 1;
        o.on_error = IDX_ON_ERROR_FAIL;
        fn_errbuf eb = { { 0 } };
        idx_build_stats st;
        cr_assert_neq(idx_build(&o, &st, &eb), 0);
        cr_assert(strstr(eb.msg, ":2:") && strstr(eb.msg, bad[i].want), "line %zu: %s", i, eb.msg);
    }
    /* too long, too many */
    char *big = malloc(20000);
    char in[512], out[512];
    snprintf(in, sizeof in, "%s/long.jsonl", tmpdir);
    int n = snprintf(big, 20000, "{\"id\":\"x\",\"labels\":[");
    for (int i = 0; i < 257; i++) n += snprintf(big + n, 20000 - (size_t)n, "%s\"l%d\"", i ? "," : "", i);
    snprintf(big + n, 20000 - (size_t)n, "]}\n");
    tu_write_file(in, big);
    free(big);
    snprintf(out, sizeof out, "%s/long.idx", tmpdir);
    idx_build_opts o;
    memset(&o, 0, sizeof o);
    o.input = in;
    o.out_dir = out;
    o.shards = 1;
    o.on_error = IDX_ON_ERROR_FAIL;
    fn_errbuf eb = { { 0 } };
    idx_build_stats st;
    cr_assert_neq(idx_build(&o, &st, &eb), 0);
    cr_assert(strstr(eb.msg, "more than 256"), "%s", eb.msg);
}

/* a damaged attrs value is damage at open, named */
Test(attrs, damaged_value_is_named)
{
    char in[512];
    snprintf(in, sizeof in, "%s/c.jsonl", tmpdir);
    write_corpus(in, 0);
    free_corpus();
    build(in, 1, "d1", 0);
    char p[600];
    snprintf(p, sizeof p, "%s/d1.idx/shard-000", tmpdir);
    static const char *const names[] = { "vertical", "lang", "labels" };
    for (int a = 0; a < 3; a++) {
        for (int where = 0; where < 2; where++) {
            MDB_env *env;
            MDB_txn *txn;
            MDB_dbi dbi;
            cr_assert_eq(mdb_env_create(&env), 0);
            mdb_env_set_maxdbs(env, IDX_MAX_DBS);
            mdb_env_set_mapsize(env, 1ull << 30);
            cr_assert_eq(mdb_env_open(env, p, 0, 0644), 0);
            cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
            cr_assert_eq(mdb_dbi_open(txn, IDX_DB_ATTRS, 0, &dbi), 0);
            MDB_val k = { strlen(names[a]), (void *)names[a] }, v;
            cr_assert_eq(mdb_get(txn, dbi, &k, &v), 0);
            uint8_t *copy = malloc(v.mv_size);
            memcpy(copy, v.mv_data, v.mv_size);
            size_t at = where == 0 ? v.mv_size - 1 : 9;   /* the last code, or the entry count */
            copy[at] ^= 0x5a;
            MDB_val nv = { v.mv_size, copy };
            cr_assert_eq(mdb_put(txn, dbi, &k, &nv, 0), 0);
            cr_assert_eq(mdb_txn_commit(txn), 0);
            mdb_env_close(env);
            idx_reader_t *r = NULL;
            fn_errbuf eb = { { 0 } };
            int rc = idx_reader_open_ex(p, IDX_OPEN_QUICK, &r, &eb);
            cr_assert_eq(rc, FN_ECORRUPT, "%s: %d %s", names[a], rc, eb.msg);
            cr_assert(strstr(eb.msg, "attrs") && strstr(eb.msg, names[a]), "%s", eb.msg);
            /* and back, for the next round */
            copy[at] ^= 0x5a;
            cr_assert_eq(mdb_env_create(&env), 0);
            mdb_env_set_maxdbs(env, IDX_MAX_DBS);
            mdb_env_set_mapsize(env, 1ull << 30);
            cr_assert_eq(mdb_env_open(env, p, 0, 0644), 0);
            cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
            cr_assert_eq(mdb_dbi_open(txn, IDX_DB_ATTRS, 0, &dbi), 0);
            cr_assert_eq(mdb_put(txn, dbi, &k, &nv, 0), 0);
            cr_assert_eq(mdb_txn_commit(txn), 0);
            mdb_env_close(env);
            free(copy);
        }
    }
    /* restored: opens quick (the whole-file checksum no longer matches: LMDB rewrote pages) */
    idx_reader_t *r = NULL;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(idx_reader_open_ex(p, IDX_OPEN_QUICK, &r, &eb), 0, "%s", eb.msg);
    idx_reader_close(r);
}
