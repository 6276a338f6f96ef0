/* test_fn_query.c - the query text checks shared by the coordinator and the
 * shards (common/fn_query.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "fn_query.h"

static const fn_query_limits lim = { .max_bytes = 32, .max_words = 4 };

static void bad(const char *q, const char *want)
{
    fn_errbuf eb = {{0}};
    cr_assert_eq(fn_query_check(q, &lim, &eb), FN_EINVAL, "accepted '%s'", q ? q : "(null)");
    cr_assert(strncmp(eb.msg, want, strlen(want)) == 0, "'%s' does not start with '%s'", eb.msg, want);
}

Test(fn_query, good)
{
    fn_errbuf eb = {{0}};
    cr_assert_eq(fn_query_check("heat transfer", &lim, &eb), 0, "%s", eb.msg);
    cr_assert_eq(fn_query_check("  caf\xc3\xa9, na\xc3\xafve!! ", &lim, &eb), 0, "%s", eb.msg);
    cr_assert_eq(fn_query_check("one two three four", &lim, &eb), 0, "exactly max_words: %s", eb.msg);
    cr_assert_eq(fn_query_check("0123456789abcdef0123456789abcdef", &lim, &eb), 0, "exactly max_bytes");
}

Test(fn_query, bad_name_the_field_and_the_limit)
{
    bad(NULL, "query: must not be empty");
    bad("", "query: must not be empty");
    bad(" \t\r\n", "query: must not be blank");
    bad("\xe3\x80\x80\xc2\xa0\xe2\x80\xa8", "query: must not be blank");   /* U+3000 U+00A0 U+2028 */
    bad("0123456789abcdef0123456789abcdefX", "query: 33 bytes, over the limit of 32 bytes (max-query-bytes)");
    bad("heat \xc0\xaf", "query: not valid UTF-8");
    bad("one two three four five", "query: more than 4 words (max-query-words)");
    bad("a,b;c-d e", "query: more than 4 words");
}

Test(fn_query, words_are_runs_of_letters_and_digits)
{
    cr_assert_eq(fn_text_words("", 0, 100), 0);
    cr_assert_eq(fn_text_words("  ,;!  ", 7, 100), 0);
    cr_assert_eq(fn_text_words("heat", 4, 100), 1);
    cr_assert_eq(fn_text_words("mach 2.5 flow", 13, 100), 4);           /* mach, 2, 5, flow */
    const char *cjk = "\xe7\x86\xb1 \xe4\xbc\x9d";                       /* two CJK letters */
    cr_assert_eq(fn_text_words(cjk, strlen(cjk), 100), 2);
    cr_assert_eq(fn_text_words("a b c d e f", 11, 2), 3, "stops counting past the limit");
}

Test(fn_query, utf8)
{
    cr_assert(fn_utf8_valid("", 0));
    cr_assert(fn_utf8_valid("\xf0\x9f\x98\x80", 4));
    cr_assert_not(fn_utf8_valid("\xc0\xaf", 2));
    cr_assert_not(fn_utf8_valid("\xed\xa0\x80", 3));
    cr_assert_not(fn_utf8_valid("\xf4\x90\x80\x80", 4));
    cr_assert_not(fn_utf8_valid("\xe2\x82", 2));
}
