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
#include <zstd.h>

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

/* format.h source (schema 5): u32le sum | u32le raw_len | one zstd frame of
 * the compact dump; idx_reader_get_doc gives that dump back byte for byte. */
Test(builder, source_is_the_compact_json_compressed)
{
    /* escapes, non-ASCII, nesting, spaces the compact dump drops, and a
     * document of several zstd blocks (> 128 KiB) */
    size_t big = 300u << 10, cap = big + 4096, len = 0;
    char *corpus = malloc(cap);
    cr_assert_not_null(corpus);
    len += (size_t)snprintf(corpus + len, cap - len, "%s",
                            "{ \"id\" : \"e\\u00e9\", \"title\": \"Tab\\there \\\"q\\\" \\u2603\", "
                            "  \"body\":\"x\", \"n\": [1, 2.5, null, true], \"o\": {\"k\": \"\\/\"}}\n"
                            "{\"id\":\"big\",\"title\":\"big\",\"body\":\"");
    for (size_t i = 0; len < big; i++) len += (size_t)snprintf(corpus + len, cap - len, "w%zu ", i % 5000);
    len += (size_t)snprintf(corpus + len, cap - len, "\"}\n");
    cr_assert_lt(len, cap);
    char text[600];
    size_t slen = strlen(small_corpus);
    char *all = malloc(slen + len + 1);
    cr_assert_not_null(all);
    memcpy(all, small_corpus, slen);
    memcpy(all + slen, corpus, len + 1);
    free(corpus);

    idx_build_stats st;
    warnings w = { 0 };
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(build(all, 1, IDX_ON_ERROR_FAIL, "src", &st, &w, &eb), 0, "%s", eb.msg);
    cr_assert_eq(st.docs, 6);
    char p[512];
    snprintf(p, sizeof p, "%s/src.idx/shard-000", tmpdir);
    idx_reader_t *r;
    cr_assert_eq(idx_reader_open(p, &r, &eb), 0, "%s", eb.msg);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi src, ids;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, IDX_MAX_DBS);
    cr_assert_eq(mdb_env_open(env, p, MDB_RDONLY, 0644), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, IDX_DB_SOURCE, 0, &src), 0);
    cr_assert_eq(mdb_dbi_open(txn, IDX_DB_IDS, 0, &ids), 0);
    size_t ndocs = 0;
    for (char *line = all, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        cr_assert_not_null(nl);
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)(nl - line), 0, &je);
        if (!o) continue;   /* the blank line */
        char *want = json_dumps(o, JSON_COMPACT);
        cr_assert_not_null(want);
        const char *id = json_string_value(json_object_get(o, "id"));
        snprintf(text, sizeof text, "doc \"%s\"", id);
        /* the stored value, read as format.h says */
        MDB_val k = { strlen(id), (void *)id }, v;
        cr_assert_eq(mdb_get(txn, ids, &k, &v), 0, "%s", text);
        uint32_t doc = idx_get_u32le(v.mv_data);
        uint8_t dk[4];
        idx_put_u32be(dk, doc);
        k = (MDB_val){ 4, dk };
        cr_assert_eq(mdb_get(txn, src, &k, &v), 0, "%s", text);
        const uint8_t *sv = v.mv_data;
        cr_assert_gt(v.mv_size, IDX_SOURCE_HDR, "%s", text);
        cr_assert_eq(idx_get_u32le(sv), idx_sum32(sv + 4, v.mv_size - 4, doc), "%s: sum", text);
        cr_assert_eq(idx_get_u32le(sv + 4), strlen(want), "%s: raw_len", text);
        cr_assert_eq(ZSTD_getFrameContentSize(sv + 8, v.mv_size - 8), strlen(want), "%s", text);
        cr_assert_eq(ZSTD_findFrameCompressedSize(sv + 8, v.mv_size - 8), v.mv_size - 8, "%s: one frame", text);
        char *raw = malloc(strlen(want) + 1);
        cr_assert_not_null(raw);
        cr_assert_eq(ZSTD_decompress(raw, strlen(want), sv + 8, v.mv_size - 8), strlen(want), "%s", text);
        cr_assert(memcmp(raw, want, strlen(want)) == 0, "%s: decompressed source", text);
        free(raw);
        if (strcmp(id, "big") == 0)
            cr_assert_lt(v.mv_size, strlen(want) / 2, "big: %zu bytes for %zu", v.mv_size, strlen(want));
        /* and through the reader */
        char *js = NULL;
        cr_assert_eq(idx_reader_get_doc(r, id, &js, &eb), 0, "%s: %s", text, eb.msg);
        cr_assert_str_eq(js, want, "%s", text);
        free(js);
        free(want);
        json_decref(o);
        ndocs++;
    }
    cr_assert_eq(ndocs, 6);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    idx_reader_close(r);
    free(all);
}

/* A document whose compact JSON is over IDX_MAX_SOURCE_BYTES is a bad line
 * (the reader refuses a source value that claims more). */
Test(builder, document_over_the_source_cap_is_a_bad_line)
{
    size_t n = IDX_MAX_SOURCE_BYTES + 16;
    char *c = malloc(n + 256);
    cr_assert_not_null(c);
    size_t len = (size_t)sprintf(c, "{\"id\":\"a\",\"title\":\"ok\"}\n{\"id\":\"huge\",\"blob\":\"");
    memset(c + len, 'x', n);
    len += n;
    len += (size_t)sprintf(c + len, "\"}\n{\"id\":\"b\",\"title\":\"ok too\"}\n");
    idx_build_stats st;
    warnings w = { 0 };
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(build(c, 1, IDX_ON_ERROR_SKIP, "huge", &st, &w, &eb), 0, "%s", eb.msg);
    free(c);
    cr_assert_eq(st.docs, 2);
    cr_assert_eq(st.skipped, 1);
    cr_assert_eq(w.n, 1);
    cr_assert(strstr(w.msg[0], "huge.jsonl:2: the document is longer than 64 MiB") != NULL, "%s", w.msg[0]);
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
            int want = (XXH64(id, strlen(id), 0) % 4096) * 3 / 4096 == s;   /* buckets.h default map */
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

/* ---- the parallel pipeline: any number of threads builds the same index ---- */

typedef struct msglist { int n, cap; char **msg; } msglist;

static void on_warning_all(void *ud, const char *msg)
{
    msglist *m = ud;
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 64;
        m->msg = realloc(m->msg, (size_t)m->cap * sizeof *m->msg);
        cr_assert_not_null(m->msg);
    }
    m->msg[m->n++] = strdup(msg);
}

static void msglist_free(msglist *m)
{
    for (int i = 0; i < m->n; i++) free(m->msg[i]);
    free(m->msg);
    memset(m, 0, sizeof *m);
}

/* Every named database of two shards holds the same entries, meta's
 * "created" and "meta_sum" aside. Returns the number of entries compared. */
static size_t same_shard(const char *da, const char *db)
{
    static const char *const dbs[] = { IDX_DB_META, IDX_DB_TERMS, IDX_DB_POSTINGS, IDX_DB_DOCS, IDX_DB_IDS,
                                       IDX_DB_NORMS, IDX_DB_SOURCE, IDX_DB_POSITIONS, IDX_DB_SKIPS, IDX_DB_VOCAB,
                                       IDX_DB_TVEC, NULL };
    MDB_env *env[2];
    MDB_txn *txn[2];
    const char *dir[2] = { da, db };
    for (int e = 0; e < 2; e++) {
        cr_assert_eq(mdb_env_create(&env[e]), 0);
        mdb_env_set_maxdbs(env[e], IDX_MAX_DBS);
        cr_assert_eq(mdb_env_open(env[e], dir[e], MDB_RDONLY | MDB_NOLOCK, 0644), 0, "%s", dir[e]);
        cr_assert_eq(mdb_txn_begin(env[e], NULL, MDB_RDONLY, &txn[e]), 0);
    }
    size_t total = 0;
    for (int i = 0; dbs[i]; i++) {
        MDB_dbi dbi[2];
        MDB_cursor *cur[2];
        for (int e = 0; e < 2; e++) {
            cr_assert_eq(mdb_dbi_open(txn[e], dbs[i], 0, &dbi[e]), 0, "%s: %s", dir[e], dbs[i]);
            cr_assert_eq(mdb_cursor_open(txn[e], dbi[e], &cur[e]), 0);
        }
        int meta = strcmp(dbs[i], IDX_DB_META) == 0;
        size_t n = 0;
        MDB_val k[2], v[2];
        int rc[2];
        for (int e = 0; e < 2; e++) rc[e] = mdb_cursor_get(cur[e], &k[e], &v[e], MDB_FIRST);
        for (;;) {
            cr_assert_eq(rc[0], rc[1], "%s: %s: one has more entries (after %zu)", da, dbs[i], n);
            if (rc[0] == MDB_NOTFOUND) break;
            cr_assert_eq(rc[0], 0);
            cr_assert(k[0].mv_size == k[1].mv_size && memcmp(k[0].mv_data, k[1].mv_data, k[0].mv_size) == 0,
                      "%s: %s: entry %zu: keys differ", da, dbs[i], n);
            int skip = meta && ((k[0].mv_size == 7 && memcmp(k[0].mv_data, "created", 7) == 0) ||
                                (k[0].mv_size == 8 && memcmp(k[0].mv_data, "meta_sum", 8) == 0));
            if (!skip)
                cr_assert(v[0].mv_size == v[1].mv_size && memcmp(v[0].mv_data, v[1].mv_data, v[0].mv_size) == 0,
                          "%s: %s: entry %zu (key %.*s): values differ", da, dbs[i], n, (int)k[0].mv_size,
                          (const char *)k[0].mv_data);
            n++;
            for (int e = 0; e < 2; e++) rc[e] = mdb_cursor_get(cur[e], &k[e], &v[e], MDB_NEXT);
        }
        cr_assert_gt(n, 0, "%s: %s is empty", da, dbs[i]);
        total += n;
        for (int e = 0; e < 2; e++) mdb_cursor_close(cur[e]);
    }
    for (int e = 0; e < 2; e++) {
        mdb_txn_abort(txn[e]);
        mdb_env_close(env[e]);
    }
    return total;
}

/* Several batches' worth of lines (a batch is at most 256 lines or 256 KiB):
 * bad lines of every kind, duplicates of ids from earlier batches, blank
 * lines, non-ASCII text, positions, and a line longer than a whole batch
 * (and than the buffers a batch keeps). */
static char *pipeline_corpus(size_t *len_out)
{
    size_t cap = 8u << 20, len = 0;
    char *c = malloc(cap);
    cr_assert_not_null(c);
    static const char *const words[] = { "apple", "Banana", "cherry", "the", "Déjà", "vu", "running", "runs",
                                         "ﬁsh", "ＡＢＣ", "don't", "naïve", "x", "zebra", "of", "quick" };
    for (int i = 0; i < 3000; i++) {
        int k = i % 50;
        if (k == 7) len += (size_t)sprintf(c + len, "{\"id\":\"b%d\",\"title\":\n", i);            /* invalid JSON */
        else if (k == 13) len += (size_t)sprintf(c + len, "{\"id\":\"d%d\",\"title\":\"dup\"}\n", i / 3); /* duplicate */
        else if (k == 19) len += (size_t)sprintf(c + len, "{\"title\":\"no id %d\"}\n", i);
        else if (k == 23) len += (size_t)sprintf(c + len, "{\"id\":%d}\n", i);
        else if (k == 29) len += (size_t)sprintf(c + len, "{\"id\":\"e%d\",\"body\":[1]}\n", i);
        else if (k == 31) len += (size_t)sprintf(c + len, "[\"not an object\"]\n");
        else if (k == 37) len += (size_t)sprintf(c + len, "{\"id\":\"p%d\",\"popularity\":-1}\n", i);
        else if (k == 41) len += (size_t)sprintf(c + len, "   \n");
        else {
            len += (size_t)sprintf(c + len, "{\"id\":\"d%d\",\"title\":\"%s %s\",\"body\":\"", i, words[i % 16],
                                   words[(i / 16) % 16]);
            int nw = 5 + i % 40;
            if (i == 1500) nw = 200000;    /* ~1.4 MB: larger than a whole batch */
            for (int w = 0; w < nw; w++)
                len += (size_t)sprintf(c + len, "%s%s%d", w ? " " : "", words[(i * 7 + w * 3) % 16], (w * i) % 11);
            len += (size_t)sprintf(c + len, "\",\"url\":\"http://h/%d/%d\",\"popularity\":%d,\"x\":{\"n\":%d}}\n",
                                   i % 5, i, i % 9, i);
        }
        cr_assert_lt(len + (2u << 20), cap);
    }
    *len_out = len;
    return c;
}

static void build_threads(const char *in, const char *out, uint32_t shards, uint32_t threads, enum idx_on_error mode,
                          size_t budget, int want_rc, idx_build_stats *st, msglist *m, fn_errbuf *eb)
{
    idx_build_opts o;
    memset(&o, 0, sizeof o);
    o.input = in;
    o.out_dir = out;
    o.shards = shards;
    o.on_error = mode;
    o.threads = threads;
    o.mem_budget = budget;
    o.warning = on_warning_all;
    o.ud = m;
    memset(st, 0, sizeof *st);
    int rc = idx_build(&o, st, eb);
    cr_assert_eq(rc, want_rc, "threads %u: %d %s", threads, rc, eb->msg);
}

Test(builder, threads_build_the_same_index)
{
    size_t len;
    char *corpus = pipeline_corpus(&len);
    char in[512];
    snprintf(in, sizeof in, "%s/pipe.jsonl", tmpdir);
    FILE *f = fopen(in, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(corpus, 1, len, f), len);
    fclose(f);
    free(corpus);

    static const uint32_t shards[] = { 1, 3 };
    for (int si = 0; si < 2; si++) {
        char out1[600], out4[600];
        snprintf(out1, sizeof out1, "%s/pipe-%u-t1.idx", tmpdir, shards[si]);
        snprintf(out4, sizeof out4, "%s/pipe-%u-t4.idx", tmpdir, shards[si]);
        idx_build_stats st1, st4;
        msglist m1 = { 0 }, m4 = { 0 };
        fn_errbuf eb = { { 0 } };
        /* a small budget: spills (and so run files) along the way too */
        build_threads(in, out1, shards[si], 1, IDX_ON_ERROR_SKIP, 64u << 10, 0, &st1, &m1, &eb);
        build_threads(in, out4, shards[si], 4, IDX_ON_ERROR_SKIP, 64u << 10, 0, &st4, &m4, &eb);
        cr_assert_eq(st1.lines, 3000);
        cr_assert_eq(st4.lines, 3000);
        cr_assert_eq(st1.docs, st4.docs);
        cr_assert_eq(st1.skipped, st4.skipped);
        cr_assert_eq(st1.bytes_read, st4.bytes_read);
        cr_assert_eq(st1.terms, st4.terms);
        cr_assert_eq(st1.postings, st4.postings);
        cr_assert_eq(st1.index_bytes, st4.index_bytes);
        /* 60 lines of each of 6 bad kinds, 60 blank, and the duplicates (of
         * ids some of which are bad lines, so new) */
        cr_assert_gt(st1.skipped, 6 * 60, "%llu", (unsigned long long)st1.skipped);
        cr_assert_eq(st1.docs + st1.skipped, 3000 - 60);
        cr_assert_eq(m1.n, (int)st1.skipped);
        cr_assert_eq(m4.n, m1.n);
        for (int i = 0; i < m1.n; i++) cr_assert_str_eq(m4.msg[i], m1.msg[i], "warning %d", i);
        cr_assert(strstr(m1.msg[0], "pipe.jsonl:8: invalid JSON") != NULL, "%s", m1.msg[0]);
        cr_assert(strstr(m1.msg[1], "pipe.jsonl:14: duplicate id \"d4\"") != NULL, "%s", m1.msg[1]);
        size_t entries = 0;
        for (uint32_t s = 0; s < shards[si]; s++) {
            char p1[700], p4[700];
            snprintf(p1, sizeof p1, "%s/shard-%03u", out1, s);
            snprintf(p4, sizeof p4, "%s/shard-%03u", out4, s);
            entries += same_shard(p1, p4);
        }
        cr_assert_gt(entries, 3 * st1.docs);
        msglist_free(&m1);
        msglist_free(&m4);
    }

    /* --on-error fail: the same first bad line stops both, nothing is left */
    for (uint32_t t = 1; t <= 4; t += 3) {
        char out[600];
        snprintf(out, sizeof out, "%s/pipe-fail-t%u.idx", tmpdir, t);
        idx_build_stats st;
        msglist m = { 0 };
        fn_errbuf eb = { { 0 } };
        build_threads(in, out, 3, t, IDX_ON_ERROR_FAIL, 0, FN_EPARSE, &st, &m, &eb);
        cr_assert(strstr(eb.msg, "pipe.jsonl:8: invalid JSON") != NULL, "%s", eb.msg);
        cr_assert_eq(m.n, 0);
        cr_assert_not(exists(out), "a failed build removes what it wrote");
    }
}

Test(builder, threads_fail_late_and_on_duplicates)
{
    /* the first bad line is deep into the input (many batches in flight) */
    size_t cap = 8u << 20, len = 0;
    char *c = malloc(cap);
    cr_assert_not_null(c);
    for (int i = 0; i < 20000; i++)
        len += (size_t)sprintf(c + len, "{\"id\":\"%d\",\"body\":\"w%d w%d common\"}\n", i == 12345 ? 77 : i, i % 301,
                               i % 7);
    char in[512];
    snprintf(in, sizeof in, "%s/late.jsonl", tmpdir);
    FILE *f = fopen(in, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(c, 1, len, f), len);
    fclose(f);
    free(c);
    for (uint32_t t = 1; t <= 8; t *= 2) {
        char out[600];
        snprintf(out, sizeof out, "%s/late-t%u.idx", tmpdir, t);
        idx_build_stats st;
        msglist m = { 0 };
        fn_errbuf eb = { { 0 } };
        build_threads(in, out, 2, t, IDX_ON_ERROR_FAIL, 0, FN_EDUP, &st, &m, &eb);
        cr_assert(strstr(eb.msg, "late.jsonl:12346: duplicate id \"77\"") != NULL, "threads %u: %s", t, eb.msg);
        cr_assert_not(exists(out));
        build_threads(in, out, 2, t, IDX_ON_ERROR_SKIP, 0, 0, &st, &m, &eb);
        cr_assert_eq(st.docs, 19999);
        cr_assert_eq(m.n, 1);
        cr_assert(strstr(m.msg[0], "late.jsonl:12346: duplicate id \"77\"") != NULL, "%s", m.msg[0]);
        msglist_free(&m);
    }
}
