/* test_stored.c - whole stored documents through a searcher (index/stored.h):
 * field-name checks, stored fields as compact JSON, sources by number,
 * numbers by id, and the snippet terms of a query. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "builder.h"
#include "search.h"
#include "stored.h"
#include "testutil.h"

static char tmpdir[256];
static idx_reader_t *r;
static idx_searcher_t *s;

static const char *corpus =
    "{\"id\":\"d1\",\"title\":\"cat dog\",\"body\":\"the cat sat on the mat\",\"labels\":[\"a\",\"b\"],"
    "\"published_at\":1500000000}\n"
    "{\"id\":\"d2\",\"title\":\"fish\",\"body\":\"dog cat dog\"}\n";

static void setup(void)
{
    tu_mkdtemp(tmpdir, sizeof tmpdir, "/tmp/test_stored.XXXXXX");
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

TestSuite(stored, .init = setup, .fini = teardown);

Test(stored, field_names_are_checked)
{
    fn_errbuf eb;
    const char *ok[] = { "title", "published_at", "X9" };
    cr_assert_eq(idx_fields_check("fields", ok, 3, &eb), 0);
    const char *star[] = { "*" };
    cr_assert_eq(idx_fields_check("fields", star, 1, &eb), 0);
    const char *bad[] = { "title", "ti-tle" };
    cr_assert_eq(idx_fields_check("fields", bad, 2, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "fields[1]: \"ti-tle\" is not a field name"), "%s", eb.msg);
    const char *empty[] = { "" };
    cr_assert_eq(idx_fields_check("fields", empty, 1, &eb), FN_EINVAL);
    const char *star2[] = { "title", "*" };
    cr_assert_eq(idx_fields_check("fields", star2, 2, &eb), FN_EINVAL);
    char longname[66];
    memset(longname, 'a', 65);
    longname[65] = '\0';
    const char *lng[] = { longname };
    cr_assert_eq(idx_fields_check("fields", lng, 1, &eb), FN_EINVAL);
    const char *many[33];
    for (int i = 0; i < 33; i++) many[i] = "x";
    cr_assert_eq(idx_fields_check("fields", many, 33, &eb), FN_EINVAL);
}

typedef struct got { fn_arena *mem; idx_stored_field *f[2]; size_t nf[2]; const char *body[2]; } got;

static const char *const want_fields[] = { "labels", "missing", "published_at", "title" };

static int src_cb(void *ud, size_t i, const char *json, size_t len)
{
    got *g = ud;
    size_t bl;
    return idx_source_fields(json, len, want_fields, 4, g->mem, &g->f[i], &g->nf[i], &g->body[i], &bl, NULL);
}

Test(stored, ids_sources_and_fields)
{
    fn_errbuf eb = {{0}};
    const char *ids[] = { "d2", "nope", "d1" };
    uint32_t docs[3];
    cr_assert_eq(idx_ids_docs(s, ids, 3, docs, &eb), 0, "%s", eb.msg);
    cr_assert_eq(docs[1], IDX_DOC_ABSENT);
    cr_assert_neq(docs[0], IDX_DOC_ABSENT);
    cr_assert_neq(docs[2], IDX_DOC_ABSENT);
    fn_arena mem;
    fn_arena_init(&mem);
    got g = { .mem = &mem };
    uint32_t two[2] = { docs[2], docs[0] };
    cr_assert_eq(idx_docs_sources(s, two, 2, src_cb, &g, &eb), 0, "%s", eb.msg);
    idx_searcher_release(s);
    /* d1: the fields it has, in the asked order, as compact JSON */
    cr_assert_eq(g.nf[0], 3);
    cr_assert_str_eq(g.f[0][0].name, "labels");
    cr_assert_str_eq(g.f[0][0].json, "[\"a\",\"b\"]");
    cr_assert_str_eq(g.f[0][1].name, "published_at");
    cr_assert_str_eq(g.f[0][1].json, "1500000000");
    cr_assert_str_eq(g.f[0][2].json, "\"cat dog\"");
    cr_assert_str_eq(g.body[0], "the cat sat on the mat");
    cr_assert_eq(g.nf[1], 1);
    cr_assert_str_eq(g.f[1][0].json, "\"fish\"");
    /* out of range */
    uint32_t bad = 99;
    cr_assert_eq(idx_docs_sources(s, &bad, 1, src_cb, &g, &eb), FN_EINVAL);
    /* "*": every field, the document's order */
    idx_stored_field *f;
    size_t nf;
    const char *all[] = { "*" };
    const char *src = "{\"id\":\"x\",\"n\":null,\"o\":{\"a\":1.5}}";
    cr_assert_eq(idx_source_fields(src, strlen(src), all, 1, &mem, &f, &nf, NULL, NULL, NULL), 0);
    cr_assert_eq(nf, 3);
    cr_assert_str_eq(f[1].json, "null");
    cr_assert_str_eq(f[2].json, "{\"a\":1.5}");
    cr_assert_eq(idx_source_fields("[1]", 3, all, 1, &mem, &f, &nf, NULL, NULL, NULL), FN_ECORRUPT);
    fn_arena_free(&mem);
}

Test(stored, snippet_terms_skip_not_words)
{
    fn_arena mem;
    fn_arena_init(&mem);
    const char **t;
    size_t *l, n;
    cr_assert_eq(idx_snippet_terms(s, "\"boundary layers\" AND NOT cats title:flows", 0, &mem, &t, &l, &n, NULL), 0);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(t[0], "boundari");
    cr_assert_str_eq(t[1], "layer");
    cr_assert_str_eq(t[2], "flow");
    /* plain text: every word, "dogs" too ("not" is a stopword) */
    cr_assert_eq(idx_snippet_terms(s, "cats NOT dogs", 1, &mem, &t, &l, &n, NULL), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(t[1], "dog");
    /* a query that does not parse: every word */
    cr_assert_eq(idx_snippet_terms(s, "(heat AND", 0, &mem, &t, &l, &n, NULL), 0);
    cr_assert_geq(n, 1);
    cr_assert_str_eq(t[0], "heat");
    fn_arena_free(&mem);
}
