/* test_qmatch.c - structured queries on a shard (index/qmatch.h): a table of
 * queries over a hand-made corpus with the documents each must match, scores
 * that stay the positive terms' BM25F, and a differential test of random
 * boolean/field/phrase queries against a brute-force evaluator written here
 * from the corpus texts alone. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builder.h"
#include "fn_rand.h"
#include "search.h"
#include "testutil.h"

static char tmpdir[256];

static void setup(void)
{
    tu_mkdtemp(tmpdir, sizeof tmpdir, "/tmp/test_qmatch.XXXXXX");
}

static void teardown(void)
{
    tu_rmtree(tmpdir);
}

typedef struct opened { idx_reader_t *r; idx_searcher_t *s; } opened;

/* text -> a 1-shard index without stemming, opened */
static opened build_open(const char *name, const char *text)
{
    char in[512], out[512], p[600];
    snprintf(in, sizeof in, "%s/%s.jsonl", tmpdir, name);
    snprintf(out, sizeof out, "%s/%s.idx", tmpdir, name);
    tu_write_file(in, text);
    idx_build_opts o;
    memset(&o, 0, sizeof o);
    o.input = in;
    o.out_dir = out;
    o.shards = 1;
    o.on_error = IDX_ON_ERROR_FAIL;
    o.analyzer.stemmer = "none";
    fn_errbuf eb = { { 0 } };
    idx_build_stats st;
    cr_assert_eq(idx_build(&o, &st, &eb), 0, "%s", eb.msg);
    snprintf(p, sizeof p, "%s/shard-000", out);
    opened r;
    cr_assert_eq(idx_reader_open(p, &r.r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(idx_searcher_create(r.r, &r.s, &eb), 0, "%s", eb.msg);
    return r;
}

static void close_shard(opened *o)
{
    idx_searcher_destroy(o->s);
    idx_reader_close(o->r);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* the ids a query matches, sorted, joined by spaces */
static void matched(opened *o, const char *text, int all, char *out, size_t cap)
{
    idx_results res;
    fn_errbuf eb = { { 0 } };
    idx_query q = { .text = text, .k = 100, .all_terms = all };
    cr_assert_eq(idx_search(o->s, &q, &res, &eb), 0, "\"%s\": %s", text, eb.msg);
    cr_assert_eq(res.matches, res.nhits, "\"%s\": matches %llu, hits %zu", text,
                 (unsigned long long)res.matches, res.nhits);
    const char *ids[100];
    for (size_t i = 0; i < res.nhits; i++) ids[i] = res.hits[i].id;
    qsort(ids, res.nhits, sizeof *ids, cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < res.nhits; i++) {
        strncat(out, ids[i], cap - strlen(out) - 1);
        if (i + 1 < res.nhits) strncat(out, " ", cap - strlen(out) - 1);
    }
}

static const char *corpus =
    "{\"id\":\"d1\",\"title\":\"heat transfer\",\"body\":\"the heat transfer in laminar flow\"}\n"
    "{\"id\":\"d2\",\"title\":\"shock waves\",\"body\":\"heat shock transfer\"}\n"
    "{\"id\":\"d3\",\"title\":\"laminar flow\",\"body\":\"transfer of heat by radiation\"}\n"
    "{\"id\":\"d4\",\"title\":\"x-ray\",\"body\":\"x ray imaging of the heat\"}\n"
    "{\"id\":\"d5\",\"title\":\"\",\"body\":\"transfer heat\"}\n";

Test(qmatch, the_table, .init = setup, .fini = teardown)
{
    opened o = build_open("t", corpus);
    static const struct { const char *q; int all; const char *want; } T[] = {
        /* phrases: adjacent, in order, inside one field; stopwords keep their place */
        { "\"heat transfer\"", 0, "d1" },
        { "\"transfer heat\"", 0, "d5" },
        { "\"transfer of heat\"", 0, "d3" },
        { "\"transfer the heat\"", 0, "d3" },        /* a stopword's place is kept, not which one */
        { "\"transfer heat\" -\"transfer of heat\"", 0, "d5" },
        { "\"x ray\"", 0, "d4" },
        { "\"flow heat\"", 0, "" },                  /* d3: flow ends the title, heat is in the body */
        { "title:\"shock waves\"", 0, "d2" },
        { "body:\"shock waves\"", 0, "" },
        /* boolean operators */
        { "heat AND NOT laminar", 0, "d2 d4 d5" },
        { "+heat -shock radiation", 0, "d1 d3 d4 d5" },
        { "shock OR radiation", 0, "d2 d3" },
        { "(shock OR radiation) AND transfer", 0, "d2 d3" },
        { "+heat +radiation", 0, "d3" },
        { "heat AND transfer AND laminar", 0, "d1 d3" },   /* a bag of MUST words: the AND selection */
        { "+title:x-ray +imaging", 0, "d4" },
        { "laminar -\"laminar flow\"", 0, "" },
        { "flow AND NOT title:flow", 0, "d1" },
        /* fields */
        { "title:laminar", 0, "d3" },
        { "body:laminar", 0, "d1" },
        { "title:(heat OR shock)", 0, "d1 d2" },
        { "title:heat body:radiation", 0, "d1 d3" },
        /* excluded words: absent from the index, or also wanted */
        { "heat -xyzzy", 0, "d1 d2 d3 d4 d5" },
        { "heat -heat", 0, "" },
        /* stopwords are neutral */
        { "the AND heat", 0, "d1 d2 d3 d4 d5" },
        { "heat AND NOT the", 0, "d1 d2 d3 d4 d5" },
        /* mode all: the default operator is AND */
        { "heat transfer laminar", 1, "d1 d3" },
        { "heat transfer laminar", 0, "d1 d2 d3 d4 d5" },
        { "heat (shock OR radiation)", 1, "d2 d3" },
        { "heat OR imaging", 1, "d1 d2 d3 d4 d5" },
        /* a word the analyser splits: its tokens joined by the default operator */
        { "x-ray AND imaging", 0, "d4" },
        { "waves x-ray", 1, "" },
        { "title:x-ray -waves", 1, "d4" },
        /* operators never become terms */
        { "AND OR", 0, NULL },
    };
    char got[256];
    for (size_t i = 0; i < sizeof T / sizeof *T; i++) {
        if (!T[i].want) continue;
        matched(&o, T[i].q, T[i].all, got, sizeof got);
        cr_expect_str_eq(got, T[i].want, "row %zu: %s%s", i, T[i].q, T[i].all ? " (mode all)" : "");
    }
    /* a syntax error is FN_EINVAL naming the column; nothing is searched */
    static const char *bad[] = { "heat AND", "AND OR", "(heat", "\"heat", "NOT heat", "title:" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        idx_results res;
        fn_errbuf eb = { { 0 } };
        idx_query q = { .text = bad[i], .k = 10 };
        cr_expect_eq(idx_search(o.s, &q, &res, &eb), FN_EINVAL, "%s", bad[i]);
        cr_expect(strstr(eb.msg, "query: ") == eb.msg && strstr(eb.msg, "column"), "%s: %s", bad[i], eb.msg);
        cr_expect_eq(res.nhits, 0);
    }
    close_shard(&o);
}

/* The score of a structured query's hit is the BM25F sum of the positive
 * terms it holds: the same bits as the plain query of those terms. */
Test(qmatch, scores_are_the_positive_terms_bm25f, .init = setup, .fini = teardown)
{
    opened o = build_open("s", corpus);
    static const struct { const char *tree, *plain; } P[] = {
        { "heat AND NOT laminar", "heat" },
        { "+heat -shock radiation", "heat radiation" },
        { "\"heat transfer\"", "heat transfer" },
        { "title:laminar", "laminar" },
    };
    for (size_t i = 0; i < sizeof P / sizeof *P; i++) {
        idx_results a, b;
        fn_errbuf eb = { { 0 } };
        idx_query qa = { .text = P[i].tree, .k = 100 }, qb = { .text = P[i].plain, .k = 100 };
        cr_assert_eq(idx_search(o.s, &qa, &a, &eb), 0, "%s", eb.msg);
        size_t n = a.nhits;
        cr_assert_gt(n, 0, "%s", P[i].tree);
        uint32_t doc[100];
        double sc[100];
        for (size_t h = 0; h < n; h++) {
            doc[h] = a.hits[h].doc;
            sc[h] = a.hits[h].score;
        }
        cr_assert_eq(idx_search(o.s, &qb, &b, &eb), 0, "%s", eb.msg);
        for (size_t h = 0; h < n; h++) {
            size_t j = 0;
            while (j < b.nhits && b.hits[j].doc != doc[h]) j++;
            cr_assert_lt(j, b.nhits, "%s: hit %u not in the plain query's", P[i].tree, doc[h]);
            cr_assert(memcmp(&sc[h], &b.hits[j].score, sizeof(double)) == 0, "%s: %.17g vs %.17g", P[i].tree,
                      sc[h], b.hits[j].score);
        }
    }
    close_shard(&o);
}

/* ---- differential: random queries against brute force ---- */

#define NW 6
#define ND 400
static const char *W[NW] = { "alpha", "bravo", "charlie", "delta", "echo", "foxtrot" };
static unsigned char tok[ND][2][12], ntok[ND][2];   /* word indices per field */

static int has(int d, int f, int w)
{
    for (int i = 0; i < ntok[d][f]; i++)
        if (tok[d][f][i] == w) return 1;
    return 0;
}

static int has_pair(int d, int f, int w1, int w2)
{
    for (int i = 0; i + 1 < ntok[d][f]; i++)
        if (tok[d][f][i] == w1 && tok[d][f][i + 1] == w2) return 1;
    return 0;
}

/* A random expression written into buf; returns a closure-free description
 * evaluated by eval_rand with the same random stream (regenerated). */
typedef struct rx { int kind, field, w1, w2, op; struct rx *a, *b; } rx;

static rx *gen(uint64_t *st, int depth)
{
    rx *e = calloc(1, sizeof *e);
    cr_assert_not_null(e);
    if (depth == 0 || fn_splitmix64(st) % 3 == 0) {
        e->kind = (int)(fn_splitmix64(st) % 2);          /* 0 word, 1 phrase of two */
        e->field = (int)(fn_splitmix64(st) % 3);         /* any, title, body */
        e->w1 = (int)(fn_splitmix64(st) % NW);
        e->w2 = (int)(fn_splitmix64(st) % NW);
        return e;
    }
    e->kind = 2;
    e->op = (int)(fn_splitmix64(st) % 3);                /* AND, OR, AND NOT */
    e->a = gen(st, depth - 1);
    e->b = gen(st, depth - 1);
    return e;
}

static void show(const rx *e, char *buf, size_t cap)
{
    static const char *fl[3] = { "", "title:", "body:" };
    static const char *ops[3] = { " AND ", " OR ", " AND NOT " };
    char x[2048], y[2048];
    if (e->kind == 0) snprintf(buf, cap, "%s%s", fl[e->field], W[e->w1]);
    else if (e->kind == 1) snprintf(buf, cap, "%s\"%s %s\"", fl[e->field], W[e->w1], W[e->w2]);
    else {
        show(e->a, x, sizeof x);
        show(e->b, y, sizeof y);
        size_t n = (size_t)snprintf(buf, cap, "(%.2000s%s%.2000s)", x, ops[e->op], y);
        cr_assert_lt(n, cap);
    }
}

static int eval(const rx *e, int d)
{
    if (e->kind < 2) {
        int ok = 0;
        for (int f = 0; f < 2; f++) {
            if (e->field && e->field - 1 != f) continue;
            ok |= e->kind == 0 ? has(d, f, e->w1) : has_pair(d, f, e->w1, e->w2);
        }
        return ok;
    }
    int a = eval(e->a, d), b = eval(e->b, d);
    return e->op == 0 ? a && b : e->op == 1 ? a || b : a && !b;
}

static void rx_free(rx *e)
{
    if (!e) return;
    rx_free(e->a);
    rx_free(e->b);
    free(e);
}

Test(qmatch, random_queries_equal_brute_force, .init = setup, .fini = teardown, .timeout = 120)
{
    uint64_t st = 42;
    size_t cap = ND * 200, len = 0;
    char *text = malloc(cap);
    cr_assert_not_null(text);
    for (int d = 0; d < ND; d++) {
        char fields[2][128];
        for (int f = 0; f < 2; f++) {
            ntok[d][f] = (unsigned char)(f == 0 ? fn_splitmix64(&st) % 4 : 1 + fn_splitmix64(&st) % 10);
            fields[f][0] = '\0';
            for (int i = 0; i < ntok[d][f]; i++) {
                tok[d][f][i] = (unsigned char)(fn_splitmix64(&st) % NW);
                strcat(fields[f], i ? " " : "");
                strcat(fields[f], W[tok[d][f][i]]);
            }
        }
        len += (size_t)snprintf(text + len, cap - len, "{\"id\":\"r%03d\",\"title\":\"%s\",\"body\":\"%s\"}\n", d,
                                fields[0], fields[1]);
    }
    opened o = build_open("r", text);
    free(text);
    /* the searcher's doc numbers are its own: map them back by id */
    int tested = 0, nonempty = 0;
    for (int qi = 0; qi < 300; qi++) {
        rx *e = gen(&st, 3);
        char q[8192];
        show(e, q, sizeof q);
        idx_results res;
        fn_errbuf eb = { { 0 } };
        idx_query iq = { .text = q, .k = ND };
        int rc = idx_search(o.s, &iq, &res, &eb);
        if (rc == FN_EINVAL && strstr(eb.msg, "excludes from nothing")) {
            rx_free(e);   /* e.g. (a AND NOT b) OR c at the top is fine; a lone NOT is not generated */
            continue;
        }
        cr_assert_eq(rc, 0, "%s: %s", q, eb.msg);
        static char want[ND], got[ND];
        int nwant = 0;
        for (int d = 0; d < ND; d++) nwant += (want[d] = (char)eval(e, d));
        memset(got, 0, sizeof got);
        for (size_t h = 0; h < res.nhits; h++) got[atoi(res.hits[h].id + 1)] = 1;
        cr_assert_eq(res.nhits, (size_t)nwant, "%s: %zu hits, brute force %d", q, res.nhits, nwant);
        cr_assert_eq(res.matches, (uint64_t)nwant, "%s", q);
        cr_assert(memcmp(want, got, sizeof want) == 0, "%s: other documents than brute force", q);
        tested++;
        nonempty += nwant > 0;
        rx_free(e);
    }
    cr_assert_gt(tested, 250);
    cr_assert_gt(nonempty, 100, "the random queries match documents (%d of %d)", nonempty, tested);
    close_shard(&o);
}
