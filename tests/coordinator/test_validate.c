/* test_validate.c - coordinator/validate.c: INVALID_ARGUMENT cases name the field. */
#include <criterion/criterion.h>
#include <string.h>

#include "validate.h"

static const coord_limits lim = { .max_window = 100, .max_query_bytes = 16 };

static int check(const char *q, uint32_t k, uint32_t page, const char *rid, uint32_t *kout,
                 fn_errbuf *eb)
{
    Funnel__V1__SearchRequest r = FUNNEL__V1__SEARCH_REQUEST__INIT;
    r.query = (char *)q;
    r.k = k;
    r.page = page;
    r.request_id = (char *)rid;
    return coord_validate_search(&r, &lim, kout, eb);
}

static void expect_bad(const char *q, uint32_t k, uint32_t page, const char *rid, const char *field)
{
    uint32_t kk = 77;
    fn_errbuf eb = {{0}};
    cr_assert_eq(check(q, k, page, rid, &kk, &eb), FN_EINVAL, "accepted q='%s' k=%u page=%u", q, k, page);
    cr_assert_eq(strncmp(eb.msg, field, strlen(field)), 0, "'%s' does not start with '%s'", eb.msg, field);
    cr_assert_eq(kk, 77u, "k_out must not change on error");
}

Test(validate, good_requests)
{
    uint32_t k = 0;
    fn_errbuf eb = {{0}};
    cr_assert_eq(check("hello", 0, 0, "", &k, &eb), 0, "%s", eb.msg);
    cr_assert_eq(k, COORD_DEFAULT_K);
    cr_assert_eq(check("  caf\xc3\xa9 ", 5, 19, "r1", &k, &eb), 0, "%s", eb.msg);   /* (19+1)*5 = 100 */
    cr_assert_eq(k, 5u);
    cr_assert_eq(check("0123456789abcdef", 100, 0, NULL, &k, &eb), 0, "%s", eb.msg); /* exactly 16 bytes */
}

Test(validate, bad_requests_name_the_field)
{
    char rid[COORD_MAX_REQUEST_ID + 2];
    memset(rid, 'r', sizeof rid - 1);
    rid[sizeof rid - 1] = '\0';
    expect_bad("", 0, 0, "", "query:");
    expect_bad(" \t\n ", 0, 0, "", "query: must not be blank");
    expect_bad("\xe3\x80\x80\xc2\xa0", 0, 0, "", "query: must not be blank");   /* U+3000, U+00A0 */
    expect_bad("0123456789abcdefg", 0, 0, "", "query: 17 bytes");
    expect_bad("bad \xff utf8", 0, 0, "", "query: not valid UTF-8");
    expect_bad("x", 101, 0, "", "k:");
    expect_bad("x", 10, 10, "", "page:");
    expect_bad("x", 0, 10, "", "page:");          /* default k counts too */
    expect_bad("x", 1u << 31, 4, "", "k:");
    expect_bad("x", 1, 0xffffffffu, "", "page:"); /* no 32-bit overflow */
    expect_bad("x", 1, 0, rid, "request_id:");
}

Test(validate, utf8)
{
    cr_assert(fn_utf8_valid("", 0));
    cr_assert(fn_utf8_valid("\xf0\x9f\x98\x80", 4));            /* U+1F600 */
    cr_assert_not(fn_utf8_valid("\xc0\xaf", 2));                /* overlong '/' */
    cr_assert_not(fn_utf8_valid("\xe0\x80\xaf", 3));            /* overlong */
    cr_assert_not(fn_utf8_valid("\xed\xa0\x80", 3));            /* surrogate */
    cr_assert_not(fn_utf8_valid("\xf4\x90\x80\x80", 4));        /* > U+10FFFF */
    cr_assert_not(fn_utf8_valid("\xe2\x82", 2));                /* truncated */
    cr_assert_not(fn_utf8_valid("\x80", 1));                    /* lone continuation */
}

/* The funnel's request fields are checked by the coordinator itself. */
Test(validate, funnel_fields)
{
    uint32_t k;
    fn_errbuf eb = {{0}};
    Funnel__V1__SearchRequest r = FUNNEL__V1__SEARCH_REQUEST__INIT;
    r.query = "x";
    r.features = 3;
    cr_assert_eq(coord_validate_search(&r, &lim, &k, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "features: 3") == eb.msg, "%s", eb.msg);
    r.features = 2;
    cr_assert_eq(coord_validate_search(&r, &lim, &k, &eb), 0, "%s", eb.msg);
    r.user_terms = "bad \xff";
    cr_assert_eq(coord_validate_search(&r, &lim, &k, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "user_terms:") == eb.msg && strstr(eb.msg, "UTF-8"), "%s", eb.msg);
    r.user_terms = "0123456789abcdefg";   /* 17 bytes, the query limit is 16 */
    cr_assert_eq(coord_validate_search(&r, &lim, &k, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "user_terms:") == eb.msg, "%s", eb.msg);
    r.user_terms = "fish";
    char user[COORD_MAX_REQUEST_ID + 2];
    memset(user, 'u', sizeof user - 1);
    user[sizeof user - 1] = '\0';
    r.user = user;
    cr_assert_eq(coord_validate_search(&r, &lim, &k, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "user:") == eb.msg, "%s", eb.msg);
    r.user = "\xc0\xaf";
    cr_assert_eq(coord_validate_search(&r, &lim, &k, &eb), FN_EINVAL);
    r.user = "u1";
    r.now = -5;
    cr_assert_eq(coord_validate_search(&r, &lim, &k, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "now:") == eb.msg, "%s", eb.msg);
    r.now = 1700000000;
    cr_assert_eq(coord_validate_search(&r, &lim, &k, &eb), 0, "%s", eb.msg);
}

/* The query language is checked before any shard is asked; plain_text skips it. */
Test(validate, query_syntax_errors_name_the_column)
{
    static const coord_limits wide = { .max_window = 100, .max_query_bytes = 4096 };
    static const struct { const char *q; const char *msg; } bad[] = {
        { "heat AND", "query: AND without a right operand at column 6" },
        { "(heat", "query: unbalanced ( at column 1: no matching )" },
        { "a - b", "query: - must be followed directly by a word, a phrase or ( at column 3" },
        { "NOT laminar", "query: NOT at column 1 excludes from nothing" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        Funnel__V1__SearchRequest r = FUNNEL__V1__SEARCH_REQUEST__INIT;
        r.query = (char *)bad[i].q;
        uint32_t k = 0;
        fn_errbuf eb = {{0}};
        cr_expect_eq(coord_validate_search(&r, &wide, &k, &eb), FN_EINVAL, "%s accepted", bad[i].q);
        cr_expect(strncmp(eb.msg, bad[i].msg, strlen(bad[i].msg)) == 0, "%s: '%s'", bad[i].q, eb.msg);
        /* the same words as plain text: accepted */
        r.plain_text = 1;
        cr_expect_eq(coord_validate_search(&r, &wide, &k, &eb), 0, "%s plain: %s", bad[i].q, eb.msg);
    }
    Funnel__V1__SearchRequest r = FUNNEL__V1__SEARCH_REQUEST__INIT;
    r.query = "\"heat transfer\" AND NOT laminar title:shock";
    uint32_t k = 0;
    fn_errbuf eb = {{0}};
    cr_assert_eq(coord_validate_search(&r, &wide, &k, &eb), 0, "%s", eb.msg);
}

/* The result page's and the serving fields of a text-only request (no vector):
 * once skipped by an early return in the vector checks. */
Test(validate, page_and_serving_fields_of_text_requests)
{
    uint32_t k;
    fn_errbuf eb = {{0}};
    Funnel__V1__SearchRequest r = FUNNEL__V1__SEARCH_REQUEST__INIT;
    r.query = "heat";
    r.safe_search = 9;
    cr_assert_eq(coord_validate_search(&r, &lim, &k, &eb), FN_EINVAL);
    cr_assert_eq(strncmp(eb.msg, "safe_search: 9", 14), 0, "%s", eb.msg);
    r.safe_search = 3;
    r.host_cap = 5000;
    cr_assert_eq(coord_validate_search(&r, &lim, &k, &eb), FN_EINVAL);
    cr_assert_eq(strncmp(eb.msg, "host_cap: 5000", 14), 0, "%s", eb.msg);
    r.host_cap = 1000;
    r.coverage_target = 1.5f;
    cr_assert_eq(coord_validate_search(&r, &lim, &k, &eb), FN_EINVAL);
    cr_assert_eq(strncmp(eb.msg, "coverage_target: 1.5", 20), 0, "%s", eb.msg);
    r.coverage_target = 0.9f;
    cr_assert_eq(coord_validate_search(&r, &lim, &k, &eb), 0, "%s", eb.msg);
}

/* the experiments' units (coordinator/experiment.h): user and session_id */
Test(validate, experiment_ids)
{
    Funnel__V1__SearchRequest r = FUNNEL__V1__SEARCH_REQUEST__INIT;
    r.query = "fish";
    uint32_t k;
    fn_errbuf eb = {{0}};
    r.user = "u-7";
    r.session_id = "s\xc3\xa9" "ance-12";
    cr_assert_eq(coord_validate_search(&r, &lim, &k, &eb), 0, "%s", eb.msg);
    char long_id[COORD_MAX_REQUEST_ID + 2];
    memset(long_id, 's', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    static const struct { const char *user, *session, *want; } bad[] = {
        {"u1", "a\tb", "session_id: a control character at byte 1"},
        {"u1", "ab\x7f", "session_id: a control character at byte 2"},
        {"u\n1", "s", "user: a control character at byte 1"},
        {"u1", "\xc0\xaf", "session_id: not valid UTF-8"},
        {"u1", NULL, "session_id: 129 bytes, over the limit of 128 bytes"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r.user = (char *)bad[i].user;
        r.session_id = bad[i].session ? (char *)bad[i].session : long_id;
        cr_assert_eq(coord_validate_search(&r, &lim, &k, &eb), FN_EINVAL, "case %zu", i);
        cr_assert_str_eq(eb.msg, bad[i].want);
    }
}

/* Admin/PushModel (issue 13, the model gate): stage 1..3, the mode, and a
 * model with exactly the modes that take one. */
Test(validate, push_model)
{
    static const struct { uint32_t stage; int mode; size_t len; const char *want; } c[] = {
        {1, 0, 10, NULL}, {1, 0, 0, NULL}, {2, 1, 10, NULL}, {3, 1, 10, NULL}, {3, 0, 0, NULL},
        {1, 2, 0, NULL}, {3, 3, 0, NULL},
        {0, 0, 10, "stage: 0 is not 1, 2 or 3 (intent)"},
        {4, 1, 10, "stage: 4 is not 1, 2 or 3 (intent)"},
        {1, 7, 10, "mode: 7 is not 0 (replace), 1 (stage), 2 (activate) or 3 (discard)"},
        {2, 1, 0, "model: STAGE needs a model (there is no staged removal)"},
        {1, 2, 5, "model: ACTIVATE takes no model (it makes the staged one live)"},
        {3, 3, 5, "model: DISCARD takes no model (it drops the staged one)"},
    };
    static uint8_t bytes[16];
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        Funnel__V1__PushModelRequest r = FUNNEL__V1__PUSH_MODEL_REQUEST__INIT;
        r.stage = c[i].stage;
        r.mode = (Funnel__V1__PushModelRequest__Mode)c[i].mode;
        r.model.data = bytes;
        r.model.len = c[i].len;
        fn_errbuf eb = {{0}};
        int rc = coord_validate_push(&r, &eb);
        if (!c[i].want) {
            cr_assert_eq(rc, 0, "case %zu: %s", i, eb.msg);
            continue;
        }
        cr_assert_eq(rc, FN_EINVAL, "case %zu accepted", i);
        cr_assert_str_eq(eb.msg, c[i].want, "case %zu", i);
    }
}
