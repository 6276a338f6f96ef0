/* test_fn_config.c - the generic key=value file reader and flag parser. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "fn_config.h"

static char path[64];

static void write_file(const char *text)
{
    if (path[0]) unlink(path);
    tu_write_temp(path, sizeof path, "/tmp/funnel-fn-config-XXXXXX", text);
}

static void cleanup(void)
{
    if (path[0]) unlink(path);
    path[0] = '\0';
}

TestSuite(fn_config, .fini = cleanup);

/* A recording callback: knows "name", "count" (0..100), "config" and
 * "long-key"; "fail" is refused with an errno-style code to check that the
 * code reaches the caller of fn_config_from_args as FN_EINVAL. */
typedef struct rec {
    char name[64];
    unsigned long count;
    char config[128];
    char long_key[64];
    int calls;
    char log[512];          /* "key=value;" for every call, in order */
} rec;

static int rec_set(void *ud, const char *key, const char *value, fn_errbuf *eb)
{
    rec *r = ud;
    r->calls++;
    size_t n = strlen(r->log);
    snprintf(r->log + n, sizeof r->log - n, "%s=%s;", key, value);
    if (fn_config_key_is(key, "name")) {
        snprintf(r->name, sizeof r->name, "%s", value);
        return 0;
    }
    if (fn_config_key_is(key, "count")) {
        if (fn_parse_ulong(value, 0, 100, &r->count))
            return fn_seterr(eb, FN_EINVAL, "count: want 0..100, got '%s'", value);
        return 0;
    }
    if (fn_config_key_is(key, "config")) {
        snprintf(r->config, sizeof r->config, "%s", value);
        return 0;
    }
    if (fn_config_key_is(key, "long-key")) {
        snprintf(r->long_key, sizeof r->long_key, "%s", value);
        return 0;
    }
    if (fn_config_key_is(key, "fail")) return fn_seterr(eb, -EPERM, "fail: refused");
    return fn_seterr(eb, FN_EINVAL, "unknown key '%s'", key);
}

Test(fn_config, key_equivalence)
{
    cr_assert(fn_config_key_is("max_k", "max-k"));
    cr_assert(fn_config_key_is("max-k", "max_k"));
    cr_assert(fn_config_key_is("bm25.b_title", "bm25.b-title"));
    cr_assert(fn_config_key_is("a_b-c", "a-b_c"));
    cr_assert_not(fn_config_key_is("max-k", "max-kk"));
    cr_assert_not(fn_config_key_is("max-kk", "max-k"));
    cr_assert_not(fn_config_key_is("max.k", "max-k"));
    cr_assert_not(fn_config_key_is("Max-k", "max-k"), "keys are case-sensitive");
    cr_assert_not(fn_config_key_is("", "x"));
    cr_assert(fn_config_key_is("", ""));
}

Test(fn_config, numbers)
{
    unsigned long u = 7;
    cr_assert_eq(fn_parse_ulong("42", 1, 100, &u), 0);
    cr_assert_eq(u, 42);
    cr_assert_eq(fn_parse_ulong("0", 0, 0, &u), 0);
    cr_assert_eq(u, 0);
    u = 7;
    cr_assert_eq(fn_parse_ulong("", 0, 100, &u), FN_EINVAL);
    cr_assert_eq(fn_parse_ulong("-1", 0, 100, &u), FN_EINVAL);
    cr_assert_eq(fn_parse_ulong("101", 0, 100, &u), FN_EINVAL);
    cr_assert_eq(fn_parse_ulong("0", 1, 100, &u), FN_EINVAL);
    cr_assert_eq(fn_parse_ulong("12x", 0, 100, &u), FN_EINVAL);
    cr_assert_eq(fn_parse_ulong("1.5", 0, 100, &u), FN_EINVAL);
    cr_assert_eq(fn_parse_ulong("99999999999999999999999", 0, (unsigned long)-1, &u), FN_EINVAL);
    cr_assert_eq(u, 7, "unchanged after errors");

    double d = 3;
    cr_assert_eq(fn_parse_double("0.25", 0, 1, &d), 0);
    cr_assert_float_eq(d, 0.25, 1e-15);
    cr_assert_eq(fn_parse_double("1e-3", 0, 1, &d), 0);
    cr_assert_float_eq(d, 1e-3, 1e-15);
    cr_assert_eq(fn_parse_double("1", 0, 1, &d), 0, "hi is inclusive");
    d = 3;
    cr_assert_eq(fn_parse_double("", 0, 1, &d), FN_EINVAL);
    cr_assert_eq(fn_parse_double("1.01", 0, 1, &d), FN_EINVAL);
    cr_assert_eq(fn_parse_double("-0.1", 0, 1, &d), FN_EINVAL);
    cr_assert_eq(fn_parse_double("nan", -1e300, 1e300, &d), FN_EINVAL);
    cr_assert_eq(fn_parse_double("inf", -1e300, 1e300, &d), FN_EINVAL);
    cr_assert_eq(fn_parse_double("0.5x", 0, 1, &d), FN_EINVAL);
    cr_assert_eq(fn_parse_double("1e999", 0, 1e300, &d), FN_EINVAL);
    cr_assert_eq(d, 3, "unchanged after errors");
}

Test(fn_config, file_comments_blanks_whitespace)
{
    write_file("# a comment line\n"
               "\n"
               "   \t\n"
               "  name   =   hello world  \n"
               "count=5# comment right after the value\n"
               "\t# indented comment\n"
               "long_key = a=b\r\n"          /* CRLF; the first '=' splits */
               "count = 9\n"                 /* last one wins */
               "name = last");               /* no final newline */
    rec r = {0};
    fn_errbuf eb = {{0}};
    cr_assert_eq(fn_config_load_file(path, rec_set, &r, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(r.log, "name=hello world;count=5;long_key=a=b;count=9;name=last;");
    cr_assert_str_eq(r.name, "last");
    cr_assert_eq(r.count, 9);
    cr_assert_str_eq(r.long_key, "a=b");
}

Test(fn_config, file_empty_value_is_passed_on)
{
    write_file("name =\n");
    rec r = {0};
    strcpy(r.name, "x");
    fn_errbuf eb = {{0}};
    cr_assert_eq(fn_config_load_file(path, rec_set, &r, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(r.name, "");
    cr_assert_eq(r.calls, 1);
}

static void expect_file_error(const char *text, unsigned line, const char *reason)
{
    write_file(text);
    rec r = {0};
    fn_errbuf eb = {{0}};
    cr_assert_eq(fn_config_load_file(path, rec_set, &r, &eb), FN_EPARSE, "%s", text);
    char want[256];
    snprintf(want, sizeof want, "%s:%u: %s", path, line, reason);
    cr_assert_str_eq(eb.msg, want);
}

Test(fn_config, file_errors_say_file_and_line)
{
    expect_file_error("name = a\n\n# c\nname b\n", 4, "expected key = value");
    expect_file_error("= value\n", 1, "expected key = value");
    expect_file_error("count = 1\ncount = 1000\n", 2, "count: want 0..100, got '1000'");
    /* the callback's own message, unknown keys included */
    expect_file_error("# x\ncolour = blue\n", 2, "unknown key 'colour'");
    expect_file_error("fail = 1\n", 1, "fail: refused");
}

Test(fn_config, file_stops_at_first_error)
{
    write_file("name = a\nbogus = 1\ncount = 3\n");
    rec r = {0};
    fn_errbuf eb = {{0}};
    cr_assert_eq(fn_config_load_file(path, rec_set, &r, &eb), FN_EPARSE);
    cr_assert_eq(r.calls, 2);
    cr_assert_eq(r.count, 0);
}

Test(fn_config, file_line_too_long)
{
    size_t n = 10000;
    char *text = malloc(n + 32);
    cr_assert_not_null(text);
    strcpy(text, "name = ok\nname = ");
    size_t len = strlen(text);
    memset(text + len, 'x', n);
    strcpy(text + len + n, "\n");
    write_file(text);
    free(text);
    rec r = {0};
    fn_errbuf eb = {{0}};
    cr_assert_eq(fn_config_load_file(path, rec_set, &r, &eb), FN_EPARSE);
    cr_assert(strstr(eb.msg, ":2: line too long") != NULL, "%s", eb.msg);
}

Test(fn_config, file_cannot_open)
{
    rec r = {0};
    fn_errbuf eb = {{0}};
    cr_assert_eq(fn_config_load_file("/nonexistent/funnel.conf", rec_set, &r, &eb), -ENOENT);
    cr_assert(strstr(eb.msg, "/nonexistent/funnel.conf") != NULL, "%s", eb.msg);
    /* a directory opens but cannot be read */
    cr_assert_eq(fn_config_load_file("/tmp", rec_set, &r, &eb), -EISDIR, "%s", eb.msg);
    cr_assert_eq(r.calls, 0);
}

Test(fn_config, flags_both_forms)
{
    rec r = {0};
    fn_errbuf eb = {{0}};
    char *argv[] = {"prog", "--name", "n1", "--count=7", "--long_key=x=y", "--name=", NULL};
    cr_assert_eq(fn_config_from_args(6, argv, "config", rec_set, &r, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(r.log, "name=n1;count=7;long_key=x=y;name=;");
    cr_assert_eq(r.count, 7);
    cr_assert_str_eq(r.long_key, "x=y");
    cr_assert_str_eq(r.config, "");
}

Test(fn_config, flags_override_file_wherever_they_are)
{
    write_file("name = from-file\ncount = 1\nlong-key = file\n");
    rec r = {0};
    fn_errbuf eb = {{0}};
    /* --count comes before --config, yet wins over the file's count */
    char *argv[] = {"prog", "--count", "50", "--config", path, "--name=flag", NULL};
    cr_assert_eq(fn_config_from_args(6, argv, "config", rec_set, &r, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(r.config, path, "the config flag reaches the callback");
    cr_assert_eq(r.count, 50);
    cr_assert_str_eq(r.name, "flag");
    cr_assert_str_eq(r.long_key, "file", "keys only in the file keep the file's value");
    char want[256];
    snprintf(want, sizeof want, "config=%s;name=from-file;count=1;long-key=file;count=50;name=flag;", path);
    cr_assert_str_eq(r.log, want);
}

Test(fn_config, config_key_equivalence_and_form)
{
    write_file("name = f\n");
    rec r = {0};
    fn_errbuf eb = {{0}};
    char opt[128];
    snprintf(opt, sizeof opt, "--settings_file=%s", path);
    char *argv[] = {"prog", opt, NULL};
    cr_assert_eq(fn_config_from_args(2, argv, "settings-file", rec_set, &r, &eb), FN_EINVAL);
    /* rec_set does not know "settings_file": the callback sees it first */
    cr_assert(strstr(eb.msg, "unknown key 'settings_file'") != NULL, "%s", eb.msg);

    rec r2 = {0};
    snprintf(opt, sizeof opt, "--config=%s", path);
    char *argv2[] = {"prog", opt, NULL};
    cr_assert_eq(fn_config_from_args(2, argv2, "config", rec_set, &r2, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(r2.name, "f");
}

Test(fn_config, config_not_allowed_in_the_file)
{
    write_file("name = a\nconfig = /etc/other.conf\n");
    rec r = {0};
    fn_errbuf eb = {{0}};
    char *argv[] = {"prog", "--config", path, NULL};
    cr_assert_eq(fn_config_from_args(3, argv, "config", rec_set, &r, &eb), FN_EPARSE);
    char want[256];
    snprintf(want, sizeof want, "%s:2: 'config' is not allowed in a config file", path);
    cr_assert_str_eq(eb.msg, want);
}

Test(fn_config, file_errors_via_flags)
{
    write_file("count = lots\n");
    rec r = {0};
    fn_errbuf eb = {{0}};
    char *argv[] = {"prog", "--name", "x", "--config", path, NULL};
    cr_assert_eq(fn_config_from_args(5, argv, "config", rec_set, &r, &eb), FN_EPARSE);
    char want[256];
    snprintf(want, sizeof want, "%s:1: count: want 0..100, got 'lots'", path);
    cr_assert_str_eq(eb.msg, want);
    cr_assert_str_eq(r.name, "", "no flag applied after the file failed");

    char *argv2[] = {"prog", "--config", "/nonexistent/x.conf", NULL};
    cr_assert_eq(fn_config_from_args(3, argv2, "config", rec_set, &r, &eb), -ENOENT);
}

Test(fn_config, no_config_key)
{
    rec r = {0};
    fn_errbuf eb = {{0}};
    char *argv[] = {"prog", "--config", "/x", NULL};
    /* without a config key, --config is an ordinary flag */
    cr_assert_eq(fn_config_from_args(3, argv, NULL, rec_set, &r, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(r.config, "/x");
}

Test(fn_config, flag_errors)
{
    rec r = {0};
    fn_errbuf eb = {{0}};
    char *a1[] = {"prog", "--count", NULL};
    cr_assert_eq(fn_config_from_args(2, a1, "config", rec_set, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "--count needs a value");
    char *a2[] = {"prog", "stray", NULL};
    cr_assert_eq(fn_config_from_args(2, a2, "config", rec_set, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "unexpected argument 'stray'");
    char *a3[] = {"prog", "-c", "1", NULL};
    cr_assert_eq(fn_config_from_args(3, a3, "config", rec_set, &r, &eb), FN_EINVAL);
    char *a4[] = {"prog", "--", NULL};
    cr_assert_eq(fn_config_from_args(2, a4, "config", rec_set, &r, &eb), FN_EINVAL);
    char *a5[] = {"prog", "--=1", NULL};
    cr_assert_eq(fn_config_from_args(2, a5, "config", rec_set, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "bad flag '--=1'");
    char *a6[] = {"prog", "--bogus", "1", NULL};
    cr_assert_eq(fn_config_from_args(3, a6, "config", rec_set, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "unknown key 'bogus'");
    char *a7[] = {"prog", "--count", "101", NULL};
    cr_assert_eq(fn_config_from_args(3, a7, "config", rec_set, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "count: want 0..100, got '101'");
    /* a callback's other codes become FN_EINVAL for a flag */
    char *a8[] = {"prog", "--fail", "1", NULL};
    cr_assert_eq(fn_config_from_args(3, a8, "config", rec_set, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "fail: refused");
    char longflag[300];
    memset(longflag, 'k', sizeof longflag - 1);
    longflag[0] = longflag[1] = '-';
    longflag[sizeof longflag - 1] = '\0';
    char *a9[] = {"prog", longflag, "1", NULL};
    cr_assert_eq(fn_config_from_args(3, a9, "config", rec_set, &r, &eb), FN_EINVAL);
    cr_assert(strncmp(eb.msg, "bad flag", 8) == 0, "%s", eb.msg);
}

Test(fn_config, help)
{
    rec r = {0};
    fn_errbuf eb = {{0}};
    char *a1[] = {"prog", "--name", "x", "--help", "--bogus", NULL};
    cr_assert_eq(fn_config_from_args(5, a1, "config", rec_set, &r, &eb), FN_CONFIG_HELP);
    cr_assert_eq(r.calls, 0, "nothing applied when --help is given");
    char *a2[] = {"prog", "-h", NULL};
    cr_assert_eq(fn_config_from_args(2, a2, "config", rec_set, &r, &eb), FN_CONFIG_HELP);
    char *a3[] = {"prog", NULL};
    cr_assert_eq(fn_config_from_args(1, a3, "config", rec_set, &r, &eb), 0);
    cr_assert_eq(r.calls, 0);
}
