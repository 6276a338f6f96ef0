/* test_fn_modelstate.c - a daemon's live models across restarts
 * (common/fn_modelstate.c): what is saved is read back byte for byte, a
 * removal reads back as none, and a missing, damaged, truncated or
 * inconsistent file is told apart, never read as some other model. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fn_io.h"
#include "fn_modelstate.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/fn_modelstate.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static const char model[] = "funnel-model 1\nkind linear\nweights 1 2 3\n";

/* the file's bytes, for damaging it */
static size_t slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void spit(const char *path, const char *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, n, f), n);
    fclose(f);
}

TestSuite(fn_modelstate, .init = setup, .fini = teardown);

Test(fn_modelstate, saved_model_reads_back_whole)
{
    char sub[128];
    snprintf(sub, sizeof sub, "%s/models/new", dir);   /* the directories are made */
    fn_errbuf eb = {{0}};
    cr_assert_eq(fn_modelstate_save(sub, "stage2", "m2\nv7.model", model, sizeof model - 1, &eb), 0, "%s", eb.msg);
    fn_modelstate st;
    cr_assert_eq(fn_modelstate_load(sub, "stage2", &st, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(st.name, "m2 v7.model", "a newline in the name became a space");
    cr_assert_eq(st.len, sizeof model - 1);
    cr_assert_str_eq(st.model, model);
    cr_assert(strstr(st.path, "/new/stage2.model"));
    fn_modelstate_free(&st);
    /* a later push replaces it; no temporary file is left */
    cr_assert_eq(fn_modelstate_save(sub, "stage2", "m3", "x", 1, &eb), 0, "%s", eb.msg);
    cr_assert_eq(fn_modelstate_load(sub, "stage2", &st, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(st.name, "m3");
    cr_assert_str_eq(st.model, "x", "a model without a last newline comes back without one");
    cr_assert_eq(st.len, 1);
    fn_modelstate_free(&st);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s/stage2.model.tmp", sub);
    cr_assert_neq(access(tmp, F_OK), 0);
}

Test(fn_modelstate, removal_and_missing_are_told_apart)
{
    fn_errbuf eb = {{0}};
    fn_modelstate st;
    cr_assert_eq(fn_modelstate_load(dir, "stage1", &st, &eb), 1, "no file: 1");
    cr_assert_null(st.buf);
    cr_assert_eq(fn_modelstate_save(dir, "stage1", "none", NULL, 0, &eb), 0, "%s", eb.msg);
    cr_assert_eq(fn_modelstate_load(dir, "stage1", &st, &eb), 0, "%s", eb.msg);
    cr_assert_eq(st.len, 0);
    cr_assert_null(st.model, "a removal: no model");
    fn_modelstate_free(&st);
}

Test(fn_modelstate, damaged_files_are_errors_naming_the_file)
{
    fn_errbuf eb = {{0}};
    cr_assert_eq(fn_modelstate_save(dir, "intent", "q.intent", model, sizeof model - 1, &eb), 0, "%s", eb.msg);
    char path[128], buf[4096], bad[4096];
    snprintf(path, sizeof path, "%s/intent.model", dir);
    size_t n = slurp(path, buf, sizeof buf);
    fn_modelstate st;
    /* a flipped byte */
    memcpy(bad, buf, n);
    bad[40] ^= 0x20;
    spit(path, bad, n);
    cr_assert_eq(fn_modelstate_load(dir, "intent", &st, &eb), FN_ECORRUPT);
    cr_assert(strstr(eb.msg, path) && strstr(eb.msg, "checksum mismatch") && strstr(eb.msg, "move the file away"),
              "%s", eb.msg);
    cr_assert_null(st.buf);
    /* cut short */
    spit(path, buf, n - 30);
    cr_assert_eq(fn_modelstate_load(dir, "intent", &st, &eb), FN_ECORRUPT);
    cr_assert(strstr(eb.msg, "truncated"), "%s", eb.msg);
    /* empty */
    spit(path, buf, 0);
    cr_assert_eq(fn_modelstate_load(dir, "intent", &st, &eb), FN_ECORRUPT, "%s", eb.msg);
}

/* a file with a good checksum but a wrong header or byte count (written by
 * something else): a format error, not a model */
Test(fn_modelstate, a_consistent_checksum_over_wrong_contents_is_refused)
{
    fn_errbuf eb = {{0}};
    char path[128];
    snprintf(path, sizeof path, "%s/stage2.model", dir);
    static const char *const texts[] = {
        "funnel-model 1\nkind linear\n",                            /* a bare model, not a state file */
        "funnel-model-state 1\nbytes 3\nname x\nabc\n",              /* lines out of order */
        "funnel-model-state 1\nname x\nbytes 4\nabc\n",              /* the count is not the size */
        "funnel-model-state 1\nname x\nbytes 2\nabc\n",
        "funnel-model-state 1\nname x\nbytes -3\nabc\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        /* a checksummed file through the same writer as the daemons' */
        fn_sbuf b = { 0 };
        cr_assert_eq(fn_sbuf_printf(&b, "%s", texts[i]), 0);
        cr_assert_eq(fn_write_checksummed(path, &b, &eb), 0, "%s", eb.msg);
        fn_modelstate st;
        cr_assert_eq(fn_modelstate_load(dir, "stage2", &st, &eb), FN_EFORMAT, "text %zu: %s", i, eb.msg);
        cr_assert(strstr(eb.msg, path), "%s", eb.msg);
    }
}

Test(fn_modelstate, a_failed_save_keeps_the_old_file)
{
    fn_errbuf eb = {{0}};
    cr_assert_eq(fn_modelstate_save(dir, "stage1", "old", "old\n", 4, &eb), 0, "%s", eb.msg);
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s/stage1.model.tmp", dir);
    cr_assert_eq(mkdir(tmp, 0700), 0);   /* the temporary name taken: the write fails */
    int rc = fn_modelstate_save(dir, "stage1", "new", "new\n", 4, &eb);
    cr_assert_lt(rc, 0);
    cr_assert(strstr(eb.msg, "stage1.model.tmp"), "%s", eb.msg);
    fn_modelstate st;
    cr_assert_eq(fn_modelstate_load(dir, "stage1", &st, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(st.name, "old");
    cr_assert_str_eq(st.model, "old\n");
    fn_modelstate_free(&st);
    /* bad arguments */
    cr_assert_eq(fn_modelstate_save(dir, "a/b", "x", "x", 1, &eb), FN_EINVAL);
    cr_assert_eq(fn_modelstate_save(dir, "stage1", "x", "a\0b", 3, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "NUL"), "%s", eb.msg);
}

/* a file that reads back but whose model the daemon refuses: the same
 * message shape as a damaged file's (the path, the reason, the way out) */
Test(fn_modelstate, blame_names_the_file_and_the_way_out)
{
    fn_errbuf eb = {{0}};
    cr_assert_eq(fn_modelstate_save(dir, "stage2", "m", "not a model", 11, &eb), 0, "%s", eb.msg);
    fn_modelstate st;
    cr_assert_eq(fn_modelstate_load(dir, "stage2", &st, &eb), 0, "%s", eb.msg);
    int rc = fn_seterr(&eb, FN_EPARSE, "m: want \"funnel-model 1\"");
    cr_assert_eq(fn_modelstate_blame(&st, rc, &eb), FN_EPARSE);
    char want[256];
    snprintf(want, sizeof want, "%s/stage2.model: m: want \"funnel-model 1\" (the last pushed model; move the file away", dir);
    cr_assert(strncmp(eb.msg, want, strlen(want)) == 0, "%s", eb.msg);
    fn_modelstate_free(&st);
}
