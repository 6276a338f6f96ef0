/* test_parse.c - the query language parser (query/parse.c,
 * docs/query-language.md): a table of queries with their canonical print
 * or their error, then the limits, fn_qtree_is_bag and printing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

typedef struct qcase {
    const char *in;
    int all;            /* mode_all */
    const char *want;   /* canonical print, or NULL for an error */
    const char *err;    /* a substring of the message (with the column) */
} qcase;

static const qcase cases[] = {
    /* plain words and white space */
    { "heat", 0, "heat", NULL },
    { "heat transfer", 0, "(heat transfer)", NULL },
    { "heat transfer", 1, "(+heat +transfer)", NULL },
    { "  heat\t\ttransfer\r\n", 0, "(heat transfer)", NULL },
    { "a\xe3\x80\x80" "b\xc2\xa0" "c", 0, "(a b c)", NULL },            /* U+3000, U+00A0 separate */
    /* phrases */
    { "\"heat transfer\"", 0, "\"heat transfer\"", NULL },
    { "\"heat\"", 0, "heat", NULL },                                      /* a phrase of one word is a term */
    { "\"  heat   transfer  \"", 0, "\"heat transfer\"", NULL },
    { "\"a AND b\"", 0, "\"a AND b\"", NULL },                            /* operators in quotes are words */
    { "\"(a b)\"", 0, "\"a b\"", NULL },                                  /* parentheses separate, even there */
    { "\"a b\"c", 0, "(\"a b\" c)", NULL },
    { "x -\"a b\"", 0, "(x -\"a b\")", NULL },
    /* + and - */
    { "+heat -cold", 0, "(+heat -cold)", NULL },
    { "+heat", 0, "heat", NULL },
    { "heat -cold", 0, "(heat -cold)", NULL },
    { "heat -cold", 1, "(+heat -cold)", NULL },
    { "+a +b", 0, "(+a +b)", NULL },
    { "(a)-b", 0, "(a -b)", NULL },                                       /* a token starts after ) */
    { "-\"-x\" a", 0, "(-\"-x\" a)", NULL },                               /* quoted: the word -x */
    { "+\"-x\" y", 0, "(+\"-x\" y)", NULL },
    /* AND, OR, NOT and precedence: NOT > juxtaposition > AND > OR */
    { "a AND b", 0, "(+a +b)", NULL },
    { "a OR b", 0, "(a b)", NULL },
    { "a OR b", 1, "(a b)", NULL },
    { "a AND b OR c", 0, "((+a +b) c)", NULL },
    { "a OR b AND c", 0, "(a (+b +c))", NULL },
    { "a b AND c", 0, "(+(a b) +c)", NULL },
    { "a b AND c", 1, "(+a +b +c)", NULL },
    { "a b OR c d", 0, "(a b c d)", NULL },
    { "a b OR c d", 1, "((+a +b) (+c +d))", NULL },
    { "a AND NOT b", 0, "(+a -b)", NULL },
    { "NOT b AND a", 0, "(-b +a)", NULL },
    { "a NOT b", 0, "(a -b)", NULL },
    { "a NOT b", 1, "(+a -b)", NULL },
    { "a -b OR c", 0, "((a -b) c)", NULL },
    { "a -b AND c", 0, "(+(a -b) +c)", NULL },
    { "a -b AND c", 1, "(+a -b +c)", NULL },
    { "a OR b OR c AND d", 0, "(a b (+c +d))", NULL },
    { "a AND NOT b AND c", 0, "(+a -b +c)", NULL },
    /* parentheses, flattening and the one-kid rule */
    { "((a))", 0, "a", NULL },
    { "(a b)", 0, "(a b)", NULL },
    { "(a AND b) AND c", 0, "(+a +b +c)", NULL },
    { "(a OR b) OR c", 0, "(a b c)", NULL },
    { "(a OR b) AND c", 0, "(+(a b) +c)", NULL },
    { "a AND (b OR c)", 0, "(+a +(b c))", NULL },
    { "x (a b)", 0, "(x a b)", NULL },                                    /* OR of OR */
    { "+x (a b)", 0, "(+x (a b))", NULL },                                /* kept: MUST beside it */
    { "+x +(a b)", 0, "(+x +(a b))", NULL },
    { "+x +(+a -b)", 0, "(+x +a -b)", NULL },                             /* AND of AND */
    { "-(a b) x", 0, "(-(a b) x)", NULL },
    { "(+a +b) OR c", 0, "((+a +b) c)", NULL },
    { "a(b)", 0, "(a b)", NULL },
    { "NOT(a) b", 0, "(-a b)", NULL },
    { "a AND(b c)", 0, "(+a +(b c))", NULL },
    /* fields */
    { "title:heat", 0, "title:heat", NULL },
    { "body:\"heat transfer\"", 0, "body:\"heat transfer\"", NULL },
    { "title:(heat cold)", 0, "(title:heat title:cold)", NULL },
    { "title:(heat \"a b\")", 0, "(title:heat title:\"a b\")", NULL },
    { "title:(a OR (b AND c))", 0, "(title:a (+title:b +title:c))", NULL },
    { "-title:x y", 0, "(-title:x y)", NULL },
    { "title:(a b) c", 0, "(title:a title:b c)", NULL },
    { "title:\"-x\"", 0, "title:\"-x\"", NULL },
    { "title:\"AND\"", 0, "title:\"AND\"", NULL },
    { "body::x", 0, "body::x", NULL },
    { "Title:x titles:y", 0, "(Title:x titles:y)", NULL },                /* not known fields */
    /* lowercase operators, words with + - :, quoted operators */
    { "and or not", 0, "(and or not)", NULL },
    { "a and b", 1, "(+a +and +b)", NULL },
    { "ANDROID OR ORACLE", 0, "(ANDROID ORACLE)", NULL },
    { "a NOT NOTE", 0, "(a -NOTE)", NULL },
    { "C++ x-ray state-of-the-art", 0, "(C++ x-ray state-of-the-art)", NULL },
    { "ratio:3 http://a.b", 0, "(ratio:3 http://a.b)", NULL },
    { "a+b a-", 0, "(a+b a-)", NULL },
    { "\"AND\" x", 0, "(\"AND\" x)", NULL },
    { "\"-x\"", 0, "\"-x\"", NULL },
    { "\"title:x\"", 0, "\"title:x\"", NULL },
    /* Unicode */
    { "na\xc3\xafve caf\xc3\xa9", 0, "(na\xc3\xafve caf\xc3\xa9)", NULL },
    { "\xe7\x86\xb1 AND \xe4\xbc\x9d", 0, "(+\xe7\x86\xb1 +\xe4\xbc\x9d)", NULL },

    /* errors: the message and the column (code points) of the culprit */
    { "", 0, NULL, "query: empty" },
    { "  \t\r\n", 0, NULL, "query: empty" },
    { "(a b", 0, NULL, "query: unbalanced ( at column 1: no matching )" },
    { "a (b", 0, NULL, "query: unbalanced ( at column 3" },
    { "+(a", 0, NULL, "query: unbalanced ( at column 2" },
    { "a b)", 0, NULL, "query: unbalanced ) at column 4: no matching (" },
    { ")a", 0, NULL, "query: unbalanced ) at column 1" },
    { "caf\xc3\xa9 )", 0, NULL, "query: unbalanced ) at column 6" },
    { "a \"b c", 0, NULL, "query: unterminated quote at column 3" },
    { "\xe6\x97\xa5\xe6\x9c\xac \"\xe8\xaa\x9e", 0, NULL, "query: unterminated quote at column 4" },
    { "a \"\" b", 0, NULL, "query: empty phrase at column 3" },
    { "\"  \"", 0, NULL, "query: empty phrase at column 1" },
    { "a ()", 0, NULL, "query: empty parentheses at column 3" },
    { "title:()", 0, NULL, "query: empty parentheses at column 7" },
    { "AND x", 0, NULL, "query: AND without a left operand at column 1" },
    { "(OR a)", 0, NULL, "query: OR without a left operand at column 2" },
    { "x OR", 0, NULL, "query: OR without a right operand at column 3" },
    { "a AND AND b", 0, NULL, "query: AND without a right operand at column 3" },
    { "a AND ) b", 0, NULL, "query: AND without a right operand at column 3" },
    { "(a) AND", 0, NULL, "query: AND without a right operand at column 5" },
    { "\"na\xc3\xafve\" AND", 0, NULL, "query: AND without a right operand at column 9" },
    { "a NOT", 0, NULL, "query: NOT without an operand at column 3" },
    { "NOT NOT a", 0, NULL, "query: NOT followed by NOT at column 1" },
    { "b NOT -a", 0, NULL, "query: NOT followed by - at column 3" },
    { "a - b", 0, NULL, "query: - must be followed directly by a word, a phrase or ( at column 3" },
    { "a +", 0, NULL, "query: + must be followed directly by a word, a phrase or ( at column 3" },
    { "(a -)", 0, NULL, "query: - must be followed directly by a word, a phrase or ( at column 4" },
    { "--x a", 0, NULL, "query: - must be followed directly by a word, a phrase or ( at column 1" },
    { "a +-x", 0, NULL, "query: + must be followed directly by a word, a phrase or ( at column 3" },
    { "title:-x", 0, NULL, "query: title: must be followed directly by a word, a phrase or ( at column 1" },
    { "-AND x", 0, NULL, "query: - must be followed directly by a word, a phrase or ( at column 1" },
    { "title: x", 0, NULL, "query: title: must be followed directly by a word, a phrase or ( at column 1" },
    { "x body:", 0, NULL, "query: body: must be followed directly by a word, a phrase or ( at column 3" },
    { "title:AND", 0, NULL, "query: title: must be followed directly by a word, a phrase or ( at column 1" },
    { "title:(body:x)", 0, NULL, "query: field body: inside the field title: at column 8" },
    { "title:body:x", 0, NULL, "query: field body: inside the field title: at column 7" },
    { "NOT a", 0, NULL, "query: NOT at column 1 excludes from nothing: combine it with a positive term" },
    { "-a -b", 0, NULL, "query: - at column 1 excludes from nothing" },
    { "-a -b", 1, NULL, "query: - at column 1 excludes from nothing" },
    { "a OR NOT b", 0, NULL, "query: NOT at column 6 excludes from nothing" },
    { "a OR -b", 0, NULL, "query: - at column 6 excludes from nothing" },
    { "(NOT a)", 0, NULL, "query: NOT at column 2 excludes from nothing" },
    { "a OR (NOT b)", 0, NULL, "query: NOT at column 7 excludes from nothing" },
    { "NOT a AND NOT b", 0, NULL, "query: NOT at column 1 excludes from nothing" },
    { "x AND (-y)", 0, NULL, "query: - at column 8 excludes from nothing" },
};

static fn_qparse_opts opts(int all)
{
    fn_qparse_opts o;
    fn_qparse_defaults(&o);
    o.mode_all = all;
    return o;
}

/* Every word of the tree: not empty, no white space, parenthesis or quote. */
static int words_clean(const fn_qnode *n)
{
    if (n->kind == FN_Q_BOOL) {
        if (n->nkids == 0) return 0;
        for (size_t i = 0; i < n->nkids; i++)
            if (!words_clean(n->kids[i])) return 0;
        return 1;
    }
    const char *one[1] = { n->word };
    const char **w = n->kind == FN_Q_TERM ? one : n->words;
    size_t nw = n->kind == FN_Q_TERM ? 1 : n->nwords;
    if (n->kind == FN_Q_PHRASE && nw < 2) return 0;
    for (size_t i = 0; i < nw; i++)
        if (!w[i] || !w[i][0] || strpbrk(w[i], " \t\r\n()\"")) return 0;
    return 1;
}

Test(fn_qparse, table)
{
    size_t ncases = sizeof cases / sizeof cases[0], failed = 0, malformed = 0;
    cr_assert_geq(ncases, 70);
    for (size_t i = 0; i < ncases; i++) {
        const qcase *c = &cases[i];
        fn_qparse_opts o = opts(c->all);
        fn_arena a = FN_ARENA_INIT;
        fn_errbuf eb = {{0}};
        fn_qnode *root = (fn_qnode *)&eb;
        int rc = fn_qparse(c->in, strlen(c->in), &o, &a, &root, &eb);
        char got[512];
        if (c->want) {
            int ok = rc == 0 && root;
            cr_expect(ok, "row %zu '%s': error %d '%s'", i, c->in, rc, eb.msg);
            if (ok) {
                size_t n = fn_qtree_print(root, got, sizeof got);
                cr_expect(n == strlen(got) && strcmp(got, c->want) == 0,
                          "row %zu '%s' (mode %s): got '%s', want '%s'", i, c->in, c->all ? "all" : "any",
                          got, c->want);
                cr_expect_eq(root->occur, FN_Q_MUST, "row %zu: root occur", i);
                cr_expect(words_clean(root), "row %zu '%s': a bad word in the tree", i, c->in);
                /* the canonical print parses (mode ANY) to itself */
                fn_qparse_opts any = opts(0);
                fn_qnode *again;
                char got2[512];
                int rc2 = fn_qparse(got, n, &any, &a, &again, &eb);
                cr_expect(rc2 == 0, "row %zu: canonical '%s' does not parse: %s", i, got, eb.msg);
                if (rc2 == 0) {
                    fn_qtree_print(again, got2, sizeof got2);
                    cr_expect_str_eq(got2, got, "row %zu: reprint of '%s' gives '%s'", i, got, got2);
                }
                failed += !(ok && strcmp(got, c->want) == 0);
            } else {
                failed++;
            }
        } else {
            malformed++;
            int ok = rc == FN_EINVAL && root == NULL && strstr(eb.msg, c->err) != NULL;
            cr_expect(ok, "row %zu '%s': rc %d, message '%s', want '%s'", i, c->in, rc, eb.msg, c->err);
            failed += !ok;
        }
        fn_arena_free(&a);
    }
    cr_assert_geq(malformed, 25);
    cr_assert_eq(failed, 0, "%zu of %zu rows failed", failed, ncases);
}

/* "(((...(a)...)))" with n levels */
static char *nest(size_t n)
{
    char *s = malloc(2 * n + 2);
    memset(s, '(', n);
    s[n] = 'a';
    memset(s + n + 1, ')', n);
    s[2 * n + 1] = '\0';
    return s;
}

Test(fn_qparse, depth_limit)
{
    fn_arena a = FN_ARENA_INIT;
    fn_errbuf eb = {{0}};
    fn_qnode *root;
    char *s;
    s = nest(30);
    cr_assert_eq(fn_qparse(s, strlen(s), NULL, &a, &root, &eb), 0, "%s", eb.msg);
    cr_assert_str_eq(root->word, "a");
    free(s);
    s = nest(32);
    cr_assert_eq(fn_qparse(s, strlen(s), NULL, &a, &root, &eb), 0, "32 levels are allowed: %s", eb.msg);
    free(s);
    s = nest(33);
    cr_assert_eq(fn_qparse(s, strlen(s), NULL, &a, &root, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "query: parentheses nested deeper than 32 levels at column 33");
    free(s);
    s = nest(40);
    cr_assert_eq(fn_qparse(s, strlen(s), NULL, &a, &root, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "at column 33"), "%s", eb.msg);
    free(s);
    /* an own limit, and the cap on it */
    fn_qparse_opts o;
    fn_qparse_defaults(&o);
    o.max_depth = 3;
    cr_assert_eq(fn_qparse("(((a)))", 7, &o, &a, &root, &eb), 0, "%s", eb.msg);
    cr_assert_eq(fn_qparse("x ((((a))))", 11, &o, &a, &root, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "query: parentheses nested deeper than 3 levels at column 6");
    o.max_depth = 1000000;
    s = nest(100000);   /* would overflow the stack without the cap */
    cr_assert_eq(fn_qparse(s, strlen(s), &o, &a, &root, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "deeper than 256 levels at column 257"), "%s", eb.msg);
    free(s);
    fn_arena_free(&a);
}

/* n words "w0 w1 ..." */
static char *words(size_t n)
{
    char *s = malloc(n * 8 + 1), *p = s;
    for (size_t i = 0; i < n; i++) p += sprintf(p, i ? " w%zu" : "w%zu", i);
    return s;
}

Test(fn_qparse, max_nodes)
{
    fn_arena a = FN_ARENA_INIT;
    fn_errbuf eb = {{0}};
    fn_qnode *root;
    fn_qparse_opts o;
    fn_qparse_defaults(&o);
    cr_assert_eq(o.max_nodes, 1024);
    o.max_nodes = 5;
    cr_assert_eq(fn_qparse("a b c d", 7, &o, &a, &root, &eb), 0, "4 terms + 1 BOOL: %s", eb.msg);
    cr_assert_eq(fn_qparse("a b c d e", 9, &o, &a, &root, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "query: more than 5 nodes (terms, phrases, groups) at column 9");
    cr_assert_eq(fn_qparse("a b c d e f g", 13, &o, &a, &root, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "query: more than 5 nodes (terms, phrases, groups) at column 11",
                     "the sixth leaf stops the parse");
    /* nodes merged away by normalisation do not count */
    cr_assert_eq(fn_qparse("((a AND b) AND (c))", 19, &o, &a, &root, &eb), 0, "%s", eb.msg);
    /* the default: 1023 words + their BOOL fit, 1024 do not */
    char *s = words(1023);
    cr_assert_eq(fn_qparse(s, strlen(s), NULL, &a, &root, &eb), 0, "%s", eb.msg);
    cr_assert_eq(root->nkids, 1023);
    free(s);
    s = words(1024);
    cr_assert_eq(fn_qparse(s, strlen(s), NULL, &a, &root, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "more than 1024 nodes"), "%s", eb.msg);
    free(s);
    fn_arena_free(&a);
}

static int bag(const char *q, int all, int *all_must)
{
    fn_arena a = FN_ARENA_INIT;
    fn_errbuf eb = {{0}};
    fn_qparse_opts o = opts(all);
    fn_qnode *root;
    cr_assert_eq(fn_qparse(q, strlen(q), &o, &a, &root, &eb), 0, "'%s': %s", q, eb.msg);
    *all_must = -1;
    int r = fn_qtree_is_bag(root, all_must);
    fn_arena_free(&a);
    return r;
}

Test(fn_qparse, is_bag)
{
    int m;
    cr_assert(bag("heat", 0, &m));
    cr_assert_eq(m, 1, "a single term is a bag (AND of one)");
    cr_assert(bag("heat transfer", 0, &m));
    cr_assert_eq(m, 0);
    cr_assert(bag("heat transfer", 1, &m));
    cr_assert_eq(m, 1);
    cr_assert(bag("+a +b", 0, &m));
    cr_assert_eq(m, 1);
    cr_assert(bag("a AND b", 0, &m));
    cr_assert_eq(m, 1);
    cr_assert(bag("a OR b", 1, &m));
    cr_assert_eq(m, 0);
    cr_assert(bag("(a b) c", 0, &m), "flattened to (a b c)");
    cr_assert_eq(m, 0);
    cr_assert(bag("\"a\" b", 0, &m), "a phrase of one word is a term");
    cr_assert_not(bag("+a b", 0, &m));
    cr_assert_eq(m, -1, "untouched when not a bag");
    cr_assert_not(bag("a -b", 0, &m));
    cr_assert_not(bag("a AND NOT b", 0, &m));
    cr_assert_not(bag("title:a", 0, &m));
    cr_assert_not(bag("a title:b", 0, &m));
    cr_assert_not(bag("\"a b\"", 0, &m));
    cr_assert_not(bag("a OR b AND c", 0, &m));
    cr_assert_not(fn_qtree_is_bag(NULL, &m));
}

Test(fn_qparse, print_truncates_like_snprintf)
{
    fn_arena a = FN_ARENA_INIT;
    fn_qnode *root;
    cr_assert_eq(fn_qparse("heat transfer", 13, NULL, &a, &root, NULL), 0);
    char buf[32];
    cr_assert_eq(fn_qtree_print(root, NULL, 0), 15);
    memset(buf, 'x', sizeof buf);
    cr_assert_eq(fn_qtree_print(root, buf, 5), 15);
    cr_assert_str_eq(buf, "(hea");
    cr_assert_eq(buf[5], 'x', "nothing written past cap");
    cr_assert_eq(fn_qtree_print(root, buf, 1), 15);
    cr_assert_str_eq(buf, "");
    cr_assert_eq(fn_qtree_print(root, buf, 15), 15);
    cr_assert_str_eq(buf, "(heat transfer", "one short: the NUL takes the last byte");
    cr_assert_eq(fn_qtree_print(root, buf, 16), 15);
    cr_assert_str_eq(buf, "(heat transfer)");
    cr_assert_eq(fn_qtree_print(NULL, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "");
    fn_arena_free(&a);
}

Test(fn_qparse, nodes_kinds_fields_and_columns)
{
    fn_arena a = FN_ARENA_INIT;
    fn_errbuf eb = {{0}};
    fn_qnode *r;
    const char *q = "\xc3\xa9t\xc3\xa9  \"c d\" -title:e body:(f)";
    cr_assert_eq(fn_qparse(q, strlen(q), NULL, &a, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(r->kind, FN_Q_BOOL);
    cr_assert_eq(r->col, 1);
    cr_assert_eq(r->nkids, 4);
    cr_assert_eq(r->kids[0]->kind, FN_Q_TERM);
    cr_assert_str_eq(r->kids[0]->word, "\xc3\xa9t\xc3\xa9");
    cr_assert_eq(r->kids[0]->occur, FN_Q_SHOULD);
    cr_assert_eq(r->kids[1]->kind, FN_Q_PHRASE);
    cr_assert_eq(r->kids[1]->nwords, 2);
    cr_assert_str_eq(r->kids[1]->words[1], "d");
    cr_assert_eq(r->kids[1]->col, 6, "columns count code points");
    cr_assert_eq(r->kids[2]->occur, FN_Q_NOT);
    cr_assert_eq(r->kids[2]->field, FN_QF_TITLE);
    cr_assert_eq(r->kids[2]->col, 13, "a field term starts at its field");
    cr_assert_eq(r->kids[3]->field, FN_QF_BODY);
    cr_assert_str_eq(r->kids[3]->word, "f");
    cr_assert_eq(fn_qparse("x (a b)", 7, NULL, &a, &r, &eb), 0);
    cr_assert_eq(fn_qparse("+x (a b)", 8, NULL, &a, &r, &eb), 0);
    cr_assert_eq(r->kids[1]->kind, FN_Q_BOOL);
    cr_assert_eq(r->kids[1]->col, 4, "a group starts at its (");
    /* no text at all, NULL text and defaults */
    cr_assert_eq(fn_qparse(NULL, 0, NULL, &a, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "query: empty");
    cr_assert_null(r);
    fn_arena_free(&a);
}

/* Operators never become terms: a query made only of operator tokens
 * and words never yields a TERM AND/OR/NOT or a word starting with + or -
 * unless it was quoted. */
static int has_operator_word(const fn_qnode *n)
{
    if (n->kind == FN_Q_BOOL) {
        for (size_t i = 0; i < n->nkids; i++)
            if (has_operator_word(n->kids[i])) return 1;
        return 0;
    }
    if (n->kind == FN_Q_TERM)
        return !strcmp(n->word, "AND") || !strcmp(n->word, "OR") || !strcmp(n->word, "NOT") ||
               n->word[0] == '+' || n->word[0] == '-' || !strncmp(n->word, "title:", 6);
    return 0;
}

Test(fn_qparse, operators_never_become_terms)
{
    static const char *tok[] = { "AND", "OR", "NOT", "+", "-", "(", ")", "title:", "body:", "a", "b", "+a", "-b" };
    size_t ntok = sizeof tok / sizeof tok[0], ok = 0;
    fn_arena a = FN_ARENA_INIT;
    char q[64];
    for (size_t i = 0; i < ntok; i++)
        for (size_t j = 0; j < ntok; j++)
            for (size_t k = 0; k < ntok; k++)
                for (int sep = 0; sep < 2; sep++) {
                    snprintf(q, sizeof q, sep ? "%s %s %s" : "%s%s %s", tok[i], tok[j], tok[k]);
                    fn_qnode *r;
                    fn_errbuf eb = {{0}};
                    int rc = fn_qparse(q, strlen(q), NULL, &a, &r, &eb);
                    cr_assert(rc == 0 || (rc == FN_EINVAL && strncmp(eb.msg, "query: ", 7) == 0), "'%s'", q);
                    if (rc == 0) {
                        ok++;
                        cr_assert_not(has_operator_word(r), "'%s' made an operator a term", q);
                    }
                    fn_arena_reset(&a);
                }
    cr_assert_gt(ok, 100);
    fn_arena_free(&a);
}
