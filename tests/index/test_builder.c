/* test_builder.c - idx_build: layout, metadata, global stats, stored fields,
 * partitioning and bad-line handling (builder.h, format.h). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "builder.h"
#include "format.h"
#include "search.h"
#include "testutil.h"

static char tmpdir[256];

static void setup(void)
{
    tu_mkdtemp(tmpdir, sizeof tmpdir, "/tmp/test_builder.XXXXXX");
}

static void teardown(void)
{
    tu_rmtree(tmpdir);
}

typedef struct warnings { int n; char msg[8][512]; } warnings;

static void on_warning(void *ud, const char *msg)
{
    warnings *w = ud;
    if (w->n < 8) snprintf(w->msg[w->n], sizeof w->msg[0], "%s", msg);
    w->n++;
}

static int build(const char *corpus_text, uint32_t shards, enum idx_on_error mode, const char *name,
                 idx_build_stats *st, warnings *w, fn_errbuf *eb)
{
    char in[512], out[512];
    snprintf(in, sizeof in, "%s/%s.jsonl", tmpdir, name);
    snprintf(out, sizeof out, "%s/%s.idx", tmpdir, name);
    tu_write_file(in, corpus_text);
    idx_build_opts o;
    memset(&o, 0, sizeof o);
    o.input = in;
    o.out_dir = out;
    o.shards = shards;
    o.on_error = mode;
    o.analyzer.stemmer = "none";
    o.analyzer.stopwords = "english";
    o.warning = on_warning;
    o.ud = w;
    return idx_build(&o, st, eb);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Read a terms record straight from LMDB (the format.h contract). */
static int read_term(const char *shard_dir, const char *term, idx_term_rec *rec, char *meta_val, const char *meta_key)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi terms, meta;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, IDX_MAX_DBS);
    cr_assert_eq(mdb_env_open(env, shard_dir, MDB_RDONLY, 0644), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, IDX_DB_TERMS, 0, &terms), 0);
    cr_assert_eq(mdb_dbi_open(txn, IDX_DB_META, 0, &meta), 0);
    MDB_val k = { strlen(term), (void *)term }, v;
    int rc = mdb_get(txn, terms, &k, &v);
    if (rc == 0) {
        cr_assert_eq(v.mv_size, IDX_TERM_REC_BYTES);
        const uint8_t *p = v.mv_data;
        cr_assert_eq(idx_get_u32le(p + 32), idx_sum32(p, 32, idx_key_seed(term, strlen(term))),
                     "term record checksum");
        rec->termid = idx_get_u32le(p);
        rec->df = idx_get_u32le(p + 4);
        rec->gdf = idx_get_u32le(p + 8);
        rec->nblocks = idx_get_u32le(p + 12);
        rec->gcf[0] = idx_get_u64le(p + 16);
        rec->gcf[1] = idx_get_u64le(p + 24);
    }
    if (meta_key) {
        MDB_val mk = { strlen(meta_key), (void *)meta_key }, mv;
        cr_assert_eq(mdb_get(txn, meta, &mk, &mv), 0, "meta key %s", meta_key);
        memcpy(meta_val, mv.mv_data, mv.mv_size);
        meta_val[mv.mv_size] = '\0';
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc;
}

static const char *small_corpus =
    "{\"id\":\"a\",\"title\":\"Apple pie\",\"body\":\"apple apple banana\"}\n"
    "{\"id\":\"b\",\"title\":\"Banana\",\"body\":\"cherry banana\",\"url\":\"http://b\",\"extra\":{\"x\":1}}\n"
    "\n"
    "{\"id\":\"c\",\"body\":\"the apple and the cherry\",\"title\":null}\n"
    "{\"id\":\"d\",\"title\":\"Durian\"}\n";

TestSuite(builder, .init = setup, .fini = teardown);

Test(builder, single_shard_meta_terms_and_docs)
{
    idx_build_stats st;
    warnings w = { 0 };
    fn_errbuf eb = { { 0 } };
    int rc = build(small_corpus, 1, IDX_ON_ERROR_FAIL, "one", &st, &w, &eb);
    cr_assert_eq(rc, 0, "%s", eb.msg);
    cr_assert_eq(st.docs, 4);
    cr_assert_eq(st.lines, 5);
    cr_assert_eq(st.skipped, 0);
    cr_assert_eq(w.n, 0);
    /* apple banana cherry durian pie */
    cr_assert_eq(st.terms, 5);
    /* a: apple,pie,banana  b: banana,cherry  c: apple,cherry  d: durian */
    cr_assert_eq(st.postings, 8);
    cr_assert_gt(st.index_bytes, 0);

    char p[512];
    snprintf(p, sizeof p, "%s/one.idx/index.json", tmpdir);
    cr_assert(exists(p));
    snprintf(p, sizeof p, "%s/one.idx/.build", tmpdir);
    cr_assert_not(exists(p), "temporary run files must be removed");

    snprintf(p, sizeof p, "%s/one.idx/shard-000", tmpdir);
    idx_reader_t *r;
    cr_assert_eq(idx_reader_open(p, &r, &eb), 0, "%s", eb.msg);
    const idx_index_info *in = idx_reader_info(r);
    cr_assert_eq(in->schema, IDX_SCHEMA_VERSION);
    cr_assert_eq(in->shard, 0);
    cr_assert_eq(in->shards, 1);
    cr_assert_eq(in->docs, 4);
    cr_assert_eq(in->docs_total, 4);
    cr_assert_eq(in->terms, 5);
    /* title tokens: 2 + 1 + 0 + 1; body (stopwords dropped): 3 + 2 + 2 + 0 */
    cr_assert_float_eq(in->avglen[0], 4.0 / 4, 1e-12);
    cr_assert_float_eq(in->avglen[1], 7.0 / 4, 1e-12);
    cr_assert_str_eq(in->codec, "bp128");   /* the default */
    cr_assert(strstr(in->analyzer, "stemmer=none") != NULL, "%s", in->analyzer);

    /* stored JSON keeps every field, unknown ones included */
    char *js = NULL;
    cr_assert_eq(idx_reader_get_doc(r, "b", &js, &eb), 0, "%s", eb.msg);
    json_error_t je;
    json_t *o = json_loads(js, 0, &je);
    cr_assert_not_null(o, "%s", js);
    cr_assert_str_eq(json_string_value(json_object_get(o, "url")), "http://b");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(o, "extra"), "x")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(o, "title")), "Banana");
    json_decref(o);
    free(js);
    cr_assert_eq(idx_reader_get_doc(r, "zzz", &js, &eb), FN_ENOTFOUND);
    idx_reader_t *none = NULL;
    char nop[600];
    snprintf(nop, sizeof nop, "%s/one.idx/shard-001", tmpdir);
    cr_assert_eq(idx_reader_open(nop, &none, &eb), -ENOENT);
    cr_assert_null(none);
    cr_assert_null(js);
    idx_reader_close(r);

    idx_term_rec t;
    char val[64];
    cr_assert_eq(read_term(p, "apple", &t, val, "sumlen_body"), 0);
    cr_assert_eq(t.df, 2);
    cr_assert_eq(t.gdf, 2);
    cr_assert_eq(t.nblocks, 1);
    cr_assert_eq(t.gcf[0], 1, "apple once in a title");
    cr_assert_eq(t.gcf[1], 3, "apple three times in bodies");
    cr_assert_str_eq(val, "7");
    /* term ids are ranks in the sorted vocabulary */
    cr_assert_eq(t.termid, 0);
    cr_assert_eq(read_term(p, "pie", &t, NULL, NULL), 0);
    cr_assert_eq(t.termid, 4);
    cr_assert_eq(read_term(p, "the", &t, NULL, NULL), MDB_NOTFOUND, "stopwords are not indexed");
}

Test(builder, shards_partition_by_xxh64_and_share_global_stats)
{
    /* enough ids that every one of 3 shards gets some */
    char *corpus = malloc(64 * 100);
    size_t off = 0;
    for (int i = 0; i < 60; i++)
        off += (size_t)sprintf(corpus + off, "{\"id\":\"doc%d\",\"title\":\"t%d\",\"body\":\"common%s\"}\n",
                               i, i, i % 2 ? " odd" : "");
    idx_build_stats st;
    warnings w = { 0 };
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(build(corpus, 3, IDX_ON_ERROR_FAIL, "three", &st, &w, &eb), 0, "%s", eb.msg);
    free(corpus);
    cr_assert_eq(st.docs, 60);

    uint64_t sum_docs = 0;
    uint32_t sum_df = 0;
    for (uint32_t s = 0; s < 3; s++) {
        char p[512];
        snprintf(p, sizeof p, "%s/three.idx/shard-%03u", tmpdir, s);
        idx_reader_t *r;
        cr_assert_eq(idx_reader_open(p, &r, &eb), 0, "%s", eb.msg);
        const idx_index_info *in = idx_reader_info(r);
        cr_assert_eq(in->shard, s);
        cr_assert_eq(in->shards, 3);
        cr_assert_eq(in->docs_total, 60);
        cr_assert_gt(in->docs, 0);
        sum_docs += in->docs;
        cr_assert_float_eq(in->avglen[1], 90.0 / 60, 1e-12);
        for (int i = 0; i < 60; i++) {
            char id[16], *js = NULL;
            snprintf(id, sizeof id, "doc%d", i);
            int want = XXH64(id, strlen(id), 0) % 3 == s;
            int rc = idx_reader_get_doc(r, id, &js, &eb);
            cr_assert_eq(rc, want ? 0 : FN_ENOTFOUND, "%s in shard %u", id, s);
            free(js);
        }
        idx_reader_close(r);

        idx_term_rec t;
        cr_assert_eq(read_term(p, "odd", &t, NULL, NULL), 0);
        cr_assert_eq(t.gdf, 30, "every shard stores the global df");
        cr_assert_eq(t.nblocks, (t.df + 127) / 128, "a shard without postings of a term still has its record");
        sum_df += t.df;
    }
    cr_assert_eq(sum_docs, 60);
    cr_assert_eq(sum_df, 30);
}

static const char *bad_corpus =
    "{\"id\":\"a\",\"title\":\"one\"}\n"         /* 1 */
    "{\"id\":\"b\",\"title\":\n"                  /* 2 invalid JSON */
    "{\"id\":\"c\",\"title\":\"three\"}\n"        /* 3 */
    "{\"id\":\"a\",\"title\":\"again\"}\n"        /* 4 duplicate */
    "{\"title\":\"no id\"}\n"                     /* 5 missing id */
    "{\"id\":7}\n"                                /* 6 id not a string */
    "{\"id\":\"e\",\"body\":[1]}\n"               /* 7 body not a string */
    "{\"id\":\"\"}\n"                             /* 8 empty id */
    "{\"id\":\"f\",\"body\":\"fine\"}\n";         /* 9 */

Test(builder, skip_mode_reports_line_numbers)
{
    idx_build_stats st;
    warnings w = { 0 };
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(build(bad_corpus, 2, IDX_ON_ERROR_SKIP, "skip", &st, &w, &eb), 0, "%s", eb.msg);
    cr_assert_eq(st.docs, 3);
    cr_assert_eq(st.skipped, 6);
    cr_assert_eq(w.n, 6);
    const int lines[6] = { 2, 4, 5, 6, 7, 8 };
    for (int i = 0; i < 6; i++) {
        char want[64];
        snprintf(want, sizeof want, "skip.jsonl:%d: ", lines[i]);
        cr_assert(strstr(w.msg[i], want) != NULL, "warning %d: %s", i, w.msg[i]);
    }
    cr_assert(strstr(w.msg[1], "duplicate") != NULL, "%s", w.msg[1]);
    /* the first "a" wins */
    char p[512];
    snprintf(p, sizeof p, "%s/skip.idx/index.json", tmpdir);
    cr_assert(exists(p));
}

Test(builder, fail_mode_stops_at_bad_json)
{
    idx_build_stats st;
    warnings w = { 0 };
    fn_errbuf eb = { { 0 } };
    int rc = build(bad_corpus, 1, IDX_ON_ERROR_FAIL, "failj", &st, &w, &eb);
    cr_assert_eq(rc, FN_EPARSE, "%d %s", rc, eb.msg);
    cr_assert(strstr(eb.msg, "failj.jsonl:2: ") != NULL, "%s", eb.msg);
    char p[512];
    snprintf(p, sizeof p, "%s/failj.idx/index.json", tmpdir);
    cr_assert_not(exists(p), "a failed build is never published");
}

Test(builder, fail_mode_duplicate_id)
{
    idx_build_stats st;
    warnings w = { 0 };
    fn_errbuf eb = { { 0 } };
    const char *c = "{\"id\":\"x\"}\n{\"id\":\"y\"}\n{\"id\":\"x\",\"title\":\"dup\"}\n";
    int rc = build(c, 3, IDX_ON_ERROR_FAIL, "faild", &st, &w, &eb);
    cr_assert_eq(rc, FN_EDUP, "%d %s", rc, eb.msg);
    cr_assert(strstr(eb.msg, "faild.jsonl:3: ") != NULL, "%s", eb.msg);
}

Test(builder, long_id_and_existing_index)
{
    char *c = malloc(2000);
    strcpy(c, "{\"id\":\"");
    memset(c + 7, 'x', 600);
    strcpy(c + 607, "\"}\n{\"id\":\"ok\",\"body\":\"word\"}\n");
    idx_build_stats st;
    warnings w = { 0 };
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(build(c, 1, IDX_ON_ERROR_SKIP, "long", &st, &w, &eb), 0, "%s", eb.msg);
    free(c);
    cr_assert_eq(st.docs, 1);
    cr_assert_eq(w.n, 1);
    cr_assert(strstr(w.msg[0], "long.jsonl:1: ") != NULL, "%s", w.msg[0]);

    /* building again into the same directory is refused */
    int rc = build("{\"id\":\"z\"}\n", 1, IDX_ON_ERROR_SKIP, "long", &st, &w, &eb);
    cr_assert_eq(rc, FN_EINVAL, "%d %s", rc, eb.msg);
}

Test(builder, empty_title_body_and_spill)
{
    /* a tiny budget forces many spilled runs; the result must match */
    char in[512], out1[512], out2[512];
    snprintf(in, sizeof in, "%s/spill.jsonl", tmpdir);
    FILE *f = fopen(in, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 3000; i++)
        fprintf(f, "{\"id\":\"s%d\",\"title\":\"w%d\",\"body\":\"w%d w%d shared\"}\n", i, i % 97, i % 13, i % 501);
    fclose(f);
    idx_build_stats st1, st2;
    fn_errbuf eb = { { 0 } };
    idx_build_opts o;
    memset(&o, 0, sizeof o);
    o.input = in;
    o.shards = 2;
    o.on_error = IDX_ON_ERROR_FAIL;
    o.analyzer.stemmer = "none";
    snprintf(out1, sizeof out1, "%s/spill1.idx", tmpdir);
    o.out_dir = out1;
    cr_assert_eq(idx_build(&o, &st1, &eb), 0, "%s", eb.msg);
    snprintf(out2, sizeof out2, "%s/spill2.idx", tmpdir);
    o.out_dir = out2;
    o.mem_budget = 4096;
    cr_assert_eq(idx_build(&o, &st2, &eb), 0, "%s", eb.msg);
    cr_assert_eq(st1.docs, 3000);
    cr_assert_eq(st1.terms, st2.terms);
    cr_assert_eq(st1.postings, st2.postings);
    for (int s = 0; s < 2; s++) {
        char p1[600], p2[600];
        snprintf(p1, sizeof p1, "%s/shard-%03d", out1, s);
        snprintf(p2, sizeof p2, "%s/shard-%03d", out2, s);
        idx_term_rec a, b;
        cr_assert_eq(read_term(p1, "shared", &a, NULL, NULL), 0);
        cr_assert_eq(read_term(p2, "shared", &b, NULL, NULL), 0);
        cr_assert_eq(a.df, b.df);
        cr_assert_eq(a.gdf, 3000);
        cr_assert_eq(b.gdf, 3000);
        cr_assert_eq(a.nblocks, (a.df + 127) / 128);
        cr_assert_eq(a.nblocks, b.nblocks);
    }
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

Test(builder, failed_build_leaves_nothing_behind)
{
    idx_build_stats st;
    warnings w = { 0 };
    fn_errbuf eb = { { 0 } };
    /* the duplicate comes after documents went into several shards */
    const char *c = "{\"id\":\"x\",\"body\":\"one\"}\n{\"id\":\"y\",\"body\":\"two\"}\n{\"id\":\"z\"}\n"
                    "{\"id\":\"w\"}\n{\"id\":\"x\",\"title\":\"dup\"}\n";
    char out[512];
    snprintf(out, sizeof out, "%s/gone.idx", tmpdir);
    cr_assert_eq(build(c, 3, IDX_ON_ERROR_FAIL, "gone", &st, &w, &eb), FN_EDUP, "%s", eb.msg);
    cr_assert(strstr(eb.msg, "gone.jsonl:5: ") != NULL, "the build's error is kept: %s", eb.msg);
    cr_assert_not(exists(out), "an output directory the build created is removed on failure");

    /* an existing output directory stays, emptied of the build's files only */
    cr_assert_eq(mkdir(out, 0755), 0);
    char keep[600];
    snprintf(keep, sizeof keep, "%s/notes.txt", out);
    tu_write_file(keep, "mine\n");
    cr_assert_eq(build(c, 3, IDX_ON_ERROR_FAIL, "gone", &st, &w, &eb), FN_EDUP, "%s", eb.msg);
    cr_assert(exists(out));
    cr_assert(exists(keep), "files the build did not write are left alone");
    cr_assert_eq(count_entries(out), 1, "no shard-NNN, .build or index.json left");
}

Test(builder, unpublished_out_dir_is_cleaned_and_reused)
{
    /* what a build killed midway leaves: shards without index.json, run files */
    char out[512], p[700];
    snprintf(out, sizeof out, "%s/again.idx", tmpdir);
    cr_assert_eq(mkdir(out, 0755), 0);
    const char *dirs[] = { "shard-000", "shard-001", "shard-007", ".build" };
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", out, dirs[i]);
        cr_assert_eq(mkdir(p, 0755), 0);
    }
    snprintf(p, sizeof p, "%s/shard-000/data.mdb", out);
    tu_write_file(p, "not an lmdb file");
    snprintf(p, sizeof p, "%s/.build/s000-r00000.run", out);
    tu_write_file(p, "junk");
    snprintf(p, sizeof p, "%s/.index.json.tmp", out);
    tu_write_file(p, "{");

    idx_build_stats st;
    warnings w = { 0 };
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(build(small_corpus, 2, IDX_ON_ERROR_FAIL, "again", &st, &w, &eb), 0, "%s", eb.msg);
    cr_assert_eq(st.docs, 4);
    snprintf(p, sizeof p, "%s/index.json", out);
    cr_assert(exists(p));
    snprintf(p, sizeof p, "%s/shard-007", out);
    cr_assert_not(exists(p), "stale shards of the unfinished build are removed");
    snprintf(p, sizeof p, "%s/.index.json.tmp", out);
    cr_assert_not(exists(p));
    /* index.json, shard-000, shard-001 */
    cr_assert_eq(count_entries(out), 3);
    uint64_t docs = 0;
    for (int s = 0; s < 2; s++) {
        snprintf(p, sizeof p, "%s/shard-%03d", out, s);
        idx_reader_t *r;
        cr_assert_eq(idx_reader_open(p, &r, &eb), 0, "%s", eb.msg);
        docs += idx_reader_info(r)->docs;
        cr_assert_eq(idx_reader_info(r)->docs_total, 4);
        idx_reader_close(r);
    }
    cr_assert_eq(docs, 4);

    /* now it is published: a second build is refused and changes nothing */
    cr_assert_eq(build("{\"id\":\"q\"}\n", 1, IDX_ON_ERROR_FAIL, "again", &st, &w, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "published index") != NULL, "%s", eb.msg);
    snprintf(p, sizeof p, "%s/shard-001", out);
    cr_assert(exists(p), "a refused build does not touch the published index");
    snprintf(p, sizeof p, "%s/shard-000", out);
    idx_reader_t *r;
    cr_assert_eq(idx_reader_open(p, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(idx_reader_info(r)->docs_total, 4);
    idx_reader_close(r);
}
