/* test_filter.c - the filter language parser (query/filter.c,
 * docs/query-language.md "Filters"): a table of filters with their
 * canonical print or their error, the round trip print -> parse -> print
 * (same text, same tree) for every valid row, the limits, numbers at their
 * edges, columns, printing and a sweep over token combinations. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

typedef struct fcase {
    const char *in;
    const char *want;   /* canonical print, or NULL for an error */
    const char *err;    /* a substring of the message (with the column) */
} fcase;

static const fcase cases[] = {
    /* string attributes: any of the values */
    { "vertical:news", "vertical:news", NULL },
    { "vertical:news,video", "vertical:news,video", NULL },
    { "vertical:news,video,news", "vertical:news,video", NULL },          /* duplicates: the first kept */
    { "lang:de lang:en", "lang:de lang:en", NULL },
    { "id:d1,d7,\"doc 9\"", "id:d1,d7,\"doc 9\"", NULL },
    { "id:\"d1\"", "id:d1", NULL },                                        /* quotes only where needed */
    { "id:a-b.c,d123,x:y", "id:a-b.c,d123,x:y", NULL },
    { "id:\"a\\\"b\",\"c\\\\d\"", "id:\"a\\\"b\",c\\d", NULL },         /* \" and \\; a backslash alone needs no quotes */
    { "id:a\\b", "id:a\\b", NULL },                                        /* a bare backslash is a byte */
    { "id:\"x\\\\\"", "id:x\\", NULL },
    { "id:\"a,b\",\"(x)\"", "id:\"a,b\",\"(x)\"", NULL },
    { "id:AND,OR,NOT,-x", "id:AND,OR,NOT,-x", NULL },                     /* operators are values after : */
    { "vertical:and lang:or", "vertical:and lang:or", NULL },
    { "lang:caf\xc3\xa9,\xe6\x97\xa5\xe6\x9c\xac", "lang:caf\xc3\xa9,\xe6\x97\xa5\xe6\x9c\xac", NULL },
    { "id:\"a\xc2\xa0" "b\"", "id:\"a\xc2\xa0" "b\"", NULL },              /* U+00A0 is white space: quoted */
    { "id:\"AND\" id:x", "id:AND id:x", NULL },
    /* labels: any(...) and all(...) */
    { "labels:all(sports,football)", "labels:all(sports,football)", NULL },
    { "labels:any(a,b)", "labels:a,b", NULL },
    { "labels:all(x)", "labels:x", NULL },                                 /* all of one = that one */
    { "labels:all(a,a)", "labels:a", NULL },
    { "labels:all( a , \"b c\" )", "labels:all(a,\"b c\")", NULL },
    { "labels:any( a , \"b c\" ,a)", "labels:a,\"b c\"", NULL },
    { "labels:any", "labels:any", NULL },                                  /* the label named any */
    { "labels:all,any", "labels:all,any", NULL },
    { "labels:all(a,b) OR labels:c", "labels:all(a,b) OR labels:c", NULL },
    /* numeric attributes */
    { "popularity>=1.5", "popularity>=1.5", NULL },
    { "popularity>1.5", "popularity>1.5", NULL },
    { "popularity<2", "popularity<2", NULL },
    { "popularity<=2", "popularity<=2", NULL },
    { "popularity=3", "popularity=3", NULL },
    { "popularity:1.5..3", "popularity:1.5..3", NULL },
    { "popularity:1..", "popularity>=1", NULL },
    { "popularity:..3", "popularity<=3", NULL },
    { "popularity:3..3", "popularity=3", NULL },
    { "popularity>=0.1", "popularity>=0.1", NULL },
    { "popularity>=.5", "popularity>=0.5", NULL },
    { "popularity>=5.", "popularity>=5", NULL },
    { "popularity>=+2", "popularity>=2", NULL },
    { "popularity>=1e+5", "popularity>=1e+05", NULL },
    { "popularity>=-0", "popularity>=0", NULL },
    { "popularity:1e-50..1", "popularity:0..1", NULL },                   /* rounded to float: 0 */
    { "popularity>0.30000001", "popularity>0.3", NULL },                   /* the same float as 0.3 */
    { "popularity<=3.4028235e38", "popularity<=3.4028235e+38", NULL },    /* FLT_MAX */
    { "popularity:-1..-0.5", "popularity:-1..-0.5", NULL },
    { "popularity:.5..5.", "popularity:0.5..5", NULL },
    { "published_at>=1600000000", "published_at>=1600000000", NULL },
    { "published_at:1600000000..1700000000", "published_at:1600000000..1700000000", NULL },
    { "published_at:-5..+5", "published_at:-5..5", NULL },
    { "published_at=007", "published_at=7", NULL },
    { "published_at<=1000000000000000", "published_at<=1000000000000000", NULL },
    { "published_at>=-1000000000000000", "published_at>=-1000000000000000", NULL },
    { "published_at:-0..0", "published_at=0", NULL },
    /* NOT and - */
    { "-lang:de", "-lang:de", NULL },
    { "NOT lang:de", "-lang:de", NULL },
    { "NOT NOT lang:de", "lang:de", NULL },                                /* double negation */
    { "--lang:de", "lang:de", NULL },
    { "-(-lang:a)", "lang:a", NULL },
    { "-(lang:a lang:b)", "-(lang:a lang:b)", NULL },
    { "NOT (lang:a OR lang:b)", "-(lang:a OR lang:b)", NULL },
    { "NOT(lang:a)", "-lang:a", NULL },
    { "-popularity>=3", "-popularity>=3", NULL },
    { "lang:a NOT lang:b", "lang:a -lang:b", NULL },
    { "NOT lang:a AND NOT lang:b", "-lang:a -lang:b", NULL },
    /* AND, OR, precedence, parentheses, flattening */
    { "lang:de AND lang:en", "lang:de lang:en", NULL },
    { "lang:de OR lang:en", "lang:de OR lang:en", NULL },
    { "lang:a lang:b OR lang:c", "(lang:a lang:b) OR lang:c", NULL },
    { "lang:a OR lang:b lang:c", "lang:a OR (lang:b lang:c)", NULL },
    { "lang:a OR lang:b AND lang:c", "lang:a OR (lang:b lang:c)", NULL },
    { "(lang:a OR lang:b) lang:c", "(lang:a OR lang:b) lang:c", NULL },
    { "(lang:a OR lang:b) OR lang:c", "lang:a OR lang:b OR lang:c", NULL },
    { "lang:a (lang:b lang:c)", "lang:a lang:b lang:c", NULL },
    { "((lang:a))", "lang:a", NULL },
    { "(lang:a AND (lang:b AND lang:c)) AND lang:d", "lang:a lang:b lang:c lang:d", NULL },
    { "lang:a OR (lang:b OR (lang:c OR lang:d))", "lang:a OR lang:b OR lang:c OR lang:d", NULL },
    { "lang:a AND -lang:b OR -(lang:c)", "(lang:a -lang:b) OR -lang:c", NULL },
    { "vertical:news -lang:de popularity>1 OR id:x", "(vertical:news -lang:de popularity>1) OR id:x", NULL },
    { "(lang:a OR lang:b) (lang:c OR lang:d)", "(lang:a OR lang:b) (lang:c OR lang:d)", NULL },
    { "lang:de(vertical:x)", "lang:de vertical:x", NULL },
    { "(lang:a)-lang:b", "lang:a -lang:b", NULL },
    { "  lang:a\t\r\nlang:b  ", "lang:a lang:b", NULL },
    { "lang:a\xe3\x80\x80lang:b", "lang:a lang:b", NULL },                /* U+3000 separates */
    { "vertical:news published_at>=1600000000", "vertical:news published_at>=1600000000", NULL },

    /* errors: the message and the column (code points) of the culprit */
    { "", NULL, "filter: empty" },
    { "  \t\r\n", NULL, "filter: empty" },
    { "(lang:a", NULL, "filter: unbalanced ( at column 1: no matching )" },
    { "lang:a (lang:b", NULL, "filter: unbalanced ( at column 8: no matching )" },
    { "lang:a)", NULL, "filter: unbalanced ) at column 7: no matching (" },
    { ")lang:a", NULL, "filter: unbalanced ) at column 1: no matching (" },
    { "lang:caf\xc3\xa9 )", NULL, "filter: unbalanced ) at column 11" },
    { "()", NULL, "filter: empty parentheses at column 1" },
    { "lang:a ( )", NULL, "filter: empty parentheses at column 8" },
    { "AND lang:a", NULL, "filter: AND without a left operand at column 1" },
    { "(OR lang:a)", NULL, "filter: OR without a left operand at column 2" },
    { "lang:a OR", NULL, "filter: OR without a right operand at column 8" },
    { "lang:a AND", NULL, "filter: AND without a right operand at column 8" },
    { "lang:a AND OR lang:b", NULL, "filter: AND without a right operand at column 8" },
    { "lang:a AND )", NULL, "filter: AND without a right operand at column 8" },
    { "lang:\xe6\x97\xa5 AND", NULL, "filter: AND without a right operand at column 8" },
    { "lang:a NOT", NULL, "filter: NOT without an operand at column 8" },
    { "NOT", NULL, "filter: NOT without an operand at column 1" },
    { "NOT OR lang:a", NULL, "filter: NOT without an operand at column 1" },
    { "- lang:a", NULL, "filter: - must be followed directly by a clause or ( at column 1" },
    { "lang:a -", NULL, "filter: - must be followed directly by a clause or ( at column 8" },
    { "-AND lang:a", NULL, "filter: - must be followed directly by a clause or ( at column 1" },
    { "vertical:", NULL, "filter: missing value after ':' at column 9" },
    { "vertical: news", NULL, "filter: missing value after ':' at column 9" },
    { "vertical:(news)", NULL, "filter: missing value after ':' at column 9" },
    { "lang:a,,b", NULL, "filter: missing value after ',' at column 7" },
    { "lang:a,", NULL, "filter: missing value after ',' at column 7" },
    { "labels:any(a,)", NULL, "filter: missing value after ',' at column 13" },
    { "labels:any((a))", NULL, "filter: missing value after '(' at column 11" },
    { "labels:any()", NULL, "filter: empty parentheses at column 11" },
    { "labels:all(a", NULL, "filter: unbalanced ( at column 11: no matching )" },
    { "labels:any(a b)", NULL, "filter: expected ',' or ')' at column 14" },
    { "vertical:any(a)", NULL, "filter: any(...) and all(...) are for labels only; use vertical:a,b at column 10" },
    { "id:\"abc", NULL, "filter: unterminated quote at column 4" },
    { "id:x,\"ab\\", NULL, "filter: unterminated quote at column 6" },
    { "id:\"a\\x\"", NULL, "filter: unknown escape in a quoted value (only \\\" and \\\\) at column 6" },
    { "id:\"\"", NULL, "filter: empty value at column 4" },
    { "lang:\"a\"b", NULL, "filter: expected white space or a parenthesis after the clause at column 9" },
    { "lang:a\"b\"", NULL, "filter: expected white space or a parenthesis after the clause at column 7" },
    { "labels:all(a)b", NULL, "filter: expected white space or a parenthesis after the clause at column 14" },
    { "color:red", NULL,
      "filter: unknown attribute \"color\" at column 1 (vertical, lang, labels, id, popularity, published_at)" },
    { "lang:de Vertical:news", NULL, "filter: unknown attribute \"Vertical\" at column 9" },
    { "size>3", NULL, "filter: unknown attribute \"size\" at column 1" },
    { "news", NULL, "filter: \"news\" is not a clause (attribute:value or attribute>=number) at column 1" },
    { "lang:de and lang:en", NULL, "filter: \"and\" is not a clause" },
    { "lang", NULL, "filter: lang must be followed directly by ':' at column 1" },
    { "popularity 3", NULL, "filter: popularity must be followed directly by ':' or a comparison at column 1" },
    { ",lang:a", NULL, "filter: expected an attribute, not ',' at column 1" },
    { "lang:a :x", NULL, "filter: expected an attribute, not ':' at column 8" },
    { "\"x\"", NULL, "filter: expected an attribute, not '\"' at column 1" },
    { "vertical>=3", NULL, "filter: vertical is a string attribute; use vertical:value at column 9" },
    { "lang=de", NULL, "filter: lang is a string attribute; use lang:value at column 5" },
    { "popularity:3", NULL, "filter: popularity is a numeric attribute; use popularity:lo..hi or popularity>=x at column 12" },
    { "published_at:>=3", NULL, "filter: published_at is a numeric attribute" },
    { "popularity:3..1", NULL, "filter: empty range popularity:3..1 (the lower bound is above the upper) at column 1" },
    { "lang:a published_at:10..9", NULL, "filter: empty range published_at:10..9 (the lower bound is above the upper) at column 8" },
    { "popularity:..", NULL, "filter: range without bounds at column 12" },
    { "popularity: 1..2", NULL, "filter: missing value after ':' at column 11" },
    { "popularity>=", NULL, "filter: missing number after >= at column 11" },
    { "popularity< 3", NULL, "filter: missing number after < at column 11" },
    { "popularity>=abc", NULL, "filter: bad number \"abc\" at column 13" },
    { "popularity>=0x10", NULL, "filter: bad number \"0x10\" at column 13" },
    { "popularity>=inf", NULL, "filter: bad number \"inf\" at column 13" },
    { "popularity<nan", NULL, "filter: bad number \"nan\" at column 12" },
    { "popularity>=1e", NULL, "filter: bad number \"1e\" at column 13" },
    { "popularity>=.", NULL, "filter: bad number \".\" at column 13" },
    { "popularity==3", NULL, "filter: bad number \"=3\" at column 12" },
    { "popularity>=1,2", NULL, "filter: bad number \"1,2\" at column 13" },
    { "popularity:1...2", NULL, "filter: empty range popularity:1...2" },   /* 1 .. .2 */
    { "published_at:1..x", NULL, "filter: bad number \"x\" at column 17" },
    { "popularity>1e39", NULL, "filter: popularity bound \"1e39\" out of range (about -3.4e38..3.4e38) at column 12" },
    { "popularity:1e400..", NULL, "filter: popularity bound \"1e400\" out of range" },
    { "published_at>=1.5", NULL, "filter: published_at takes whole seconds (an integer), not \"1.5\" at column 15" },
    { "published_at>=1e3", NULL, "filter: published_at takes whole seconds (an integer), not \"1e3\" at column 15" },
    { "published_at:1.0..2", NULL, "filter: published_at takes whole seconds (an integer), not \"1.0\" at column 14" },
    { "published_at>1000000000000001", NULL,
      "filter: published_at bound \"1000000000000001\" out of range (-1e15..1e15) at column 14" },
    { "published_at<-99999999999999999999", NULL, "filter: published_at bound" },
    { "lang:\xff", NULL, "filter: not valid UTF-8 at column 6" },
    { "lang:caf\xc3\xa9 id:\xc3", NULL, "filter: not valid UTF-8 at column 14" },
    { "lang:\xed\xa0\x80", NULL, "filter: not valid UTF-8 at column 6" },  /* a surrogate */
};

/* Same tree, columns aside. */
static int tree_eq(const fn_fnode *x, const fn_fnode *y)
{
    if (x->kind != y->kind || x->nkids != y->nkids) return 0;
    switch (x->kind) {
    case FN_F_AND:
    case FN_F_OR:
    case FN_F_NOT:
        for (size_t i = 0; i < x->nkids; i++)
            if (!tree_eq(x->kids[i], y->kids[i])) return 0;
        return 1;
    case FN_F_VALUES:
        if (x->attr != y->attr || x->nvalues != y->nvalues || x->all != y->all) return 0;
        for (size_t i = 0; i < x->nvalues; i++)
            if (strcmp(x->values[i], y->values[i]) != 0) return 0;
        return 1;
    case FN_F_RANGE:
        return x->attr == y->attr && x->lo == y->lo && x->hi == y->hi && x->lo_open == y->lo_open &&
               x->hi_open == y->hi_open && signbit(x->lo) == signbit(y->lo) && signbit(x->hi) == signbit(y->hi);
    }
    return 0;
}

/* Parse, print, parse the print: it must print the same and be the same
 * tree. Returns the print (static buffer) or NULL with the message. */
static const char *round_trip(const char *in, size_t len, fn_errbuf *eb, int *rc, const fn_fnode **tree,
                              fn_arena *a)
{
    static char got[1 << 16], got2[1 << 16];
    fn_fnode *root = (fn_fnode *)eb, *again;
    *rc = fn_fparse(in, len, a, &root, eb);
    *tree = root;
    if (*rc) {
        cr_expect_null(root, "'%s': root set on error", in);
        return NULL;
    }
    size_t n = fn_ftree_print(root, got, sizeof got);
    cr_expect_eq(n, strlen(got), "'%s': print length", in);
    fn_errbuf eb2 = {{0}};
    int rc2 = fn_fparse(got, n, a, &again, &eb2);
    cr_expect_eq(rc2, 0, "'%s': canonical '%s' does not parse: %s", in, got, eb2.msg);
    if (rc2 == 0) {
        fn_ftree_print(again, got2, sizeof got2);
        cr_expect_str_eq(got2, got, "'%s': reprint of '%s' gives '%s'", in, got, got2);
        cr_expect(tree_eq(root, again), "'%s': '%s' parses to another tree", in, got);
    }
    return got;
}

Test(fn_fparse, table)
{
    size_t ncases = sizeof cases / sizeof cases[0], failed = 0, malformed = 0;
    cr_assert_geq(ncases, 60);
    for (size_t i = 0; i < ncases; i++) {
        const fcase *c = &cases[i];
        fn_arena a = FN_ARENA_INIT;
        fn_errbuf eb = {{0}};
        int rc;
        const fn_fnode *root;
        const char *got = round_trip(c->in, strlen(c->in), &eb, &rc, &root, &a);
        if (c->want) {
            int ok = got && strcmp(got, c->want) == 0;
            cr_expect(ok, "row %zu '%s': got '%s' (%s), want '%s'", i, c->in, got ? got : "error", eb.msg, c->want);
            failed += !ok;
        } else {
            malformed++;
            int ok = rc == FN_EINVAL && root == NULL && strstr(eb.msg, c->err) != NULL;
            cr_expect(ok, "row %zu '%s': rc %d, message '%s', want '%s'", i, c->in, rc, eb.msg, c->err);
            failed += !ok;
        }
        fn_arena_free(&a);
    }
    cr_assert_geq(malformed, 25);
    cr_assert_geq(ncases - malformed, 60);
    cr_assert_eq(failed, 0, "%zu of %zu rows failed", failed, ncases);
}

/* s repeated n times, between pre and post */
static char *rep(const char *pre, const char *s, size_t n, const char *post)
{
    size_t ls = strlen(s), lp = strlen(pre), lq = strlen(post);
    char *b = malloc(lp + ls * n + lq + 1), *p = b;
    memcpy(p, pre, lp);
    p += lp;
    for (size_t i = 0; i < n; i++, p += ls) memcpy(p, s, ls);
    memcpy(p, post, lq + 1);
    return b;
}

static int parse_str(const char *s, fn_arena *a, fn_fnode **root, fn_errbuf *eb)
{
    return fn_fparse(s, strlen(s), a, root, eb);
}

/* n nested levels: "((( lang:a )))" */
static char *nest(size_t n)
{
    char *o = rep("", "(", n, "lang:a"), *s = rep(o, ")", n, "");
    free(o);
    return s;
}

Test(fn_fparse, depth_limit)
{
    fn_arena a = FN_ARENA_INIT;
    fn_errbuf eb = {{0}};
    fn_fnode *r;
    char *s = nest(32);
    cr_assert_eq(parse_str(s, &a, &r, &eb), 0, "32 levels are allowed: %s", eb.msg);
    cr_assert_eq(r->kind, FN_F_VALUES);
    free(s);
    s = nest(33);
    cr_assert_eq(parse_str(s, &a, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "filter: nested deeper than 32 levels (parentheses and NOTs) at column 33");
    free(s);
    /* NOTs count as levels */
    s = rep("", "-", 32, "lang:a");
    cr_assert_eq(parse_str(s, &a, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(r->kind, FN_F_VALUES, "an even number of NOTs cancels out");
    free(s);
    s = rep("", "-", 33, "lang:a");
    cr_assert_eq(parse_str(s, &a, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "filter: nested deeper than 32 levels (parentheses and NOTs) at column 33");
    free(s);
    s = rep("", "NOT (", 16, "lang:a");
    char *t = rep(s, ")", 16, "");
    cr_assert_eq(parse_str(t, &a, &r, &eb), 0, "16 NOTs and 16 parentheses: %s", eb.msg);
    free(s);
    free(t);
    s = rep("", "NOT (", 17, "lang:a");
    cr_assert_eq(parse_str(s, &a, &r, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "nested deeper than 32 levels"), "%s", eb.msg);
    free(s);
    /* far deeper than any stack would take, refused at the 33rd level */
    s = nest(200000);
    cr_assert_eq(parse_str(s, &a, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "filter: nested deeper than 32 levels (parentheses and NOTs) at column 33");
    free(s);
    s = rep("", "-", 500000, "lang:a");
    cr_assert_eq(parse_str(s, &a, &r, &eb), FN_EINVAL);
    free(s);
    fn_arena_free(&a);
}

Test(fn_fparse, node_limit)
{
    fn_arena a = FN_ARENA_INIT;
    fn_errbuf eb = {{0}};
    fn_fnode *r;
    /* 4095 clauses and their AND: 4096 nodes */
    char *s = rep("", "lang:a ", 4095, "");
    cr_assert_eq(parse_str(s, &a, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(r->kind, FN_F_AND);
    cr_assert_eq(r->nkids, 4095);
    free(s);
    /* 4096 clauses: the AND is node 4097; the last clause is over in pre-order */
    s = rep("", "lang:a ", 4096, "");
    cr_assert_eq(parse_str(s, &a, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "filter: more than 4096 nodes (clauses, AND, OR, NOT) at column 28666");
    free(s);
    /* 4097 clauses stop the parse at the 4097th */
    s = rep("", "lang:a ", 4097, "");
    cr_assert_eq(parse_str(s, &a, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "filter: more than 4096 nodes (clauses, AND, OR, NOT) at column 28673");
    free(s);
    /* NOTs are nodes: 2048 of -lang:a are 4096 nodes + the AND */
    s = rep("", "-lang:a ", 2048, "");
    cr_assert_eq(parse_str(s, &a, &r, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "more than 4096 nodes"), "%s", eb.msg);
    free(s);
    s = rep("lang:b ", "-lang:a ", 2047, "");
    cr_assert_eq(parse_str(s, &a, &r, &eb), 0, "1 + 2 * 2047 + 1 = 4096 nodes: %s", eb.msg);
    free(s);
    /* values are not nodes */
    s = rep("id:x", ",x", 5000, "");
    cr_assert_eq(parse_str(s, &a, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(r->nvalues, 1, "duplicates removed");
    free(s);
    fn_arena_free(&a);
}

Test(fn_fparse, value_limits)
{
    fn_arena a = FN_ARENA_INIT;
    fn_errbuf eb = {{0}};
    fn_fnode *r;
    /* 10000 distinct values, then 10001 */
    size_t cap = 10001 * 8 + 16;
    char *s = malloc(cap), *p = s;
    p += sprintf(p, "id:");
    for (int i = 0; i < 10000; i++) p += sprintf(p, i ? ",d%d" : "d%d", i);
    cr_assert_eq(fn_fparse(s, (size_t)(p - s), &a, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(r->nvalues, 10000);
    cr_assert_str_eq(r->values[0], "d0");
    cr_assert_str_eq(r->values[9999], "d9999");
    size_t col = (size_t)(p - s) + 2;   /* the 10001st value, after its comma */
    p += sprintf(p, ",d%d", 10000);
    cr_assert_eq(fn_fparse(s, (size_t)(p - s), &a, &r, &eb), FN_EINVAL);
    char want[128];
    snprintf(want, sizeof want, "filter: more than 10000 values in one clause at column %zu", col);
    cr_assert_str_eq(eb.msg, want);
    free(s);
    /* duplicates count as typed */
    s = rep("labels:all(x", ",x", 10000, ")");
    cr_assert_eq(parse_str(s, &a, &r, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "more than 10000 values"), "%s", eb.msg);
    free(s);
    /* a value of 511 bytes, bare and quoted (escapes count once), and 512 */
    s = rep("id:", "x", 511, "");
    cr_assert_eq(parse_str(s, &a, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(strlen(r->values[0]), 511);
    free(s);
    s = rep("id:", "x", 512, "");
    cr_assert_eq(parse_str(s, &a, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "filter: value longer than 511 bytes at column 4");
    free(s);
    s = rep("id:a,\"", "\\\"", 511, "\"");
    cr_assert_eq(parse_str(s, &a, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(strlen(r->values[1]), 511);
    cr_assert_eq(r->values[1][0], '"');
    free(s);
    s = rep("id:a,\"", "\\\\", 512, "\"");
    cr_assert_eq(parse_str(s, &a, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "filter: value longer than 511 bytes at column 6");
    free(s);
    /* multi-byte values: 511 bytes is the limit, not characters */
    s = rep("lang:a", "\xc3\xa9", 255, "");     /* 1 + 510 bytes */
    cr_assert_eq(parse_str(s, &a, &r, &eb), 0, "%s", eb.msg);
    free(s);
    s = rep("lang:ab", "\xc3\xa9", 255, "");    /* 512 bytes */
    cr_assert_eq(parse_str(s, &a, &r, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "value longer than 511 bytes at column 6"), "%s", eb.msg);
    free(s);
    /* a NUL inside quotes is refused; outside, it is white space */
    cr_assert_eq(fn_fparse("id:\"a\0b\"", 8, &a, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "filter: NUL byte in a quoted value at column 6");
    cr_assert_eq(fn_fparse("id:a\0id:b", 9, &a, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(r->kind, FN_F_AND);
    fn_arena_free(&a);
}

Test(fn_fparse, text_limit)
{
    fn_arena a = FN_ARENA_INIT;
    fn_errbuf eb = {{0}};
    fn_fnode *r;
    size_t max = FN_FPARSE_MAX_BYTES;
    char *s = malloc(max + 2);
    memset(s, ' ', max + 1);
    memcpy(s + 10, "lang:a", 6);
    cr_assert_eq(fn_fparse(s, max, &a, &r, &eb), 0, "exactly the limit: %s", eb.msg);
    cr_assert_eq(fn_fparse(s, max + 1, &a, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "filter: longer than 1048576 bytes at column 1048577");
    memcpy(s, "\xe6\x97\xa5", 3);   /* columns count code points */
    cr_assert_eq(fn_fparse(s, max + 1, &a, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "filter: longer than 1048576 bytes at column 1048575");
    free(s);
    fn_arena_free(&a);
}

/* The RANGE of a one-clause filter. */
static fn_fnode range(const char *f)
{
    fn_arena a = FN_ARENA_INIT;
    fn_errbuf eb = {{0}};
    fn_fnode *r;
    cr_assert_eq(parse_str(f, &a, &r, &eb), 0, "'%s': %s", f, eb.msg);
    cr_assert_eq(r->kind, FN_F_RANGE, "'%s'", f);
    fn_fnode copy = *r;
    fn_arena_free(&a);
    return copy;
}

static void range_is(const char *f, double lo, int lo_open, double hi, int hi_open)
{
    fn_fnode r = range(f);
    cr_expect(r.lo == lo && r.hi == hi && r.lo_open == lo_open && r.hi_open == hi_open,
              "'%s': [%.17g%s, %.17g%s], want [%.17g%s, %.17g%s]", f, r.lo, r.lo_open ? " open" : "", r.hi,
              r.hi_open ? " open" : "", lo, lo_open ? " open" : "", hi, hi_open ? " open" : "");
}

Test(fn_fparse, numbers)
{
    /* operators and ranges */
    range_is("popularity>=2", 2, 0, INFINITY, 0);
    range_is("popularity>2", 2, 1, INFINITY, 0);
    range_is("popularity<=2", -INFINITY, 0, 2, 0);
    range_is("popularity<2", -INFINITY, 0, 2, 1);
    range_is("popularity=2", 2, 0, 2, 0);
    range_is("popularity:1..2", 1, 0, 2, 0);
    range_is("popularity:1..", 1, 0, INFINITY, 0);
    range_is("popularity:..2", -INFINITY, 0, 2, 0);
    /* popularity is rounded to float, as the index stores it */
    range_is("popularity>=0.1", (double)0.1f, 0, INFINITY, 0);
    range_is("popularity>=16777217", 16777216.0, 0, INFINITY, 0);
    range_is("popularity<=3.4028235e38", -INFINITY, 0, FLT_MAX, 0);
    range_is("popularity<=3.4028235677973362e38", -INFINITY, 0, FLT_MAX, 0);   /* just under the midpoint */
    range_is("popularity:1e-50..1e-46", 0, 0, 0, 0);   /* both round to 0: not empty */
    range_is("popularity>=1e-45", (double)1e-45f, 0, INFINITY, 0);                    /* the least subnormal */
    range_is("popularity:0.10000000001..0.1", (double)0.1f, 0, (double)0.1f, 0);    /* equal as floats */
    range_is("popularity:-2.5e+1..2.5E1", -25, 0, 25, 0);
    range_is("popularity=0000.500", 0.5, 0, 0.5, 0);
    fn_fnode z = range("popularity>=-0.0");
    cr_assert_eq(z.lo, 0);
    cr_assert_not(signbit(z.lo), "-0 is 0");
    /* published_at: whole seconds within +-1e15 */
    range_is("published_at>=1600000000", 1600000000, 0, INFINITY, 0);
    range_is("published_at:-1000000000000000..1000000000000000", -1e15, 0, 1e15, 0);
    range_is("published_at=+0000000000000000000042", 42, 0, 42, 0);
    z = range("published_at<=-0");
    cr_assert_not(signbit(z.hi), "-0 is 0");

    fn_arena a = FN_ARENA_INIT;
    fn_errbuf eb = {{0}};
    fn_fnode *r;
    static const char *bad[] = {
        "popularity>=3.4028236e38", "popularity>=-1e39", "popularity>=1e309", "popularity>=-inf",
        "popularity>=INF", "popularity>=NaN", "popularity>=0x1p3", "popularity>=1e+", "popularity>=--1",
        "popularity>=1.2.3", "popularity>=1_000", "popularity>=\xd9\xa1", "popularity>=1e5x",
        "published_at>=1000000000000001", "published_at>=-1000000000000001", "published_at>=0.5",
        "published_at>=1.", "published_at>=.0", "published_at>=1E2", "published_at>=12345678901234567890123",
        "published_at:1..2.5", "published_at>=+", "published_at>=-",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(parse_str(bad[i], &a, &r, &eb), FN_EINVAL, "'%s' parsed", bad[i]);
        cr_expect(strstr(eb.msg, " at column "), "'%s': %s", bad[i], eb.msg);
    }
    cr_assert_eq(parse_str("popularity>=3.4028236e38", &a, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg,
                     "filter: popularity bound \"3.4028236e38\" out of range (about -3.4e38..3.4e38) at column 13");
    cr_assert_eq(parse_str("published_at>=0.5", &a, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "filter: published_at takes whole seconds (an integer), not \"0.5\" at column 15");
    /* a long number is quoted in part */
    char *s = rep("popularity>=", "9", 300, "x");
    cr_assert_eq(parse_str(s, &a, &r, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "bad number \"9999999999999999999999999999999999999999...\" at column 13"), "%s",
              eb.msg);
    free(s);
    s = rep("popularity>=", "9", 300, "");
    cr_assert_eq(parse_str(s, &a, &r, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "out of range"), "%s", eb.msg);
    free(s);
    s = rep("popularity>=0.", "0", 5000, "1");
    cr_assert_eq(parse_str(s, &a, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(r->lo, 0, "1e-5001 rounds to 0");
    free(s);
    fn_arena_free(&a);
}

Test(fn_fparse, print_of_numbers_round_trips)
{
    /* every float bit pattern class: the print reads back as the same float */
    fn_arena a = FN_ARENA_INIT;
    fn_errbuf eb = {{0}};
    uint32_t x = 0x12345678;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        float f;
        uint32_t bits = x & 0x7FFFFFFF;
        if ((bits >> 23) == 0xFF) continue;       /* inf, nan */
        if (i & 1) bits |= 0x80000000;
        memcpy(&f, &bits, sizeof f);
        char in[64], out[128];
        snprintf(in, sizeof in, "popularity<=%.9g", (double)f);
        fn_fnode *r, *r2;
        cr_assert_eq(parse_str(in, &a, &r, &eb), 0, "'%s': %s", in, eb.msg);
        cr_assert_eq(r->hi, f == 0 ? 0.0 : (double)f, "'%s'", in);
        fn_ftree_print(r, out, sizeof out);
        cr_assert_eq(parse_str(out, &a, &r2, &eb), 0, "'%s': %s", out, eb.msg);
        cr_assert_eq(r2->hi, r->hi, "'%s' printed as '%s'", in, out);
        cr_assert_leq(strlen(out), strlen("popularity<=") + 15, "'%s'", out);
        fn_arena_reset(&a);
    }
    fn_arena_free(&a);
}

Test(fn_fparse, nodes_and_columns)
{
    fn_arena a = FN_ARENA_INIT;
    fn_errbuf eb = {{0}};
    fn_fnode *r;
    const char *f = "lang:caf\xc3\xa9 -(vertical:a OR vertical:b) popularity>1 labels:all(x,y,x)";
    cr_assert_eq(parse_str(f, &a, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(r->kind, FN_F_AND);
    cr_assert_eq(r->col, 1);
    cr_assert_eq(r->nkids, 4);
    fn_fnode *k = r->kids[0];
    cr_assert_eq(k->kind, FN_F_VALUES);
    cr_assert_eq(k->attr, FN_FA_LANG);
    cr_assert_eq(k->nvalues, 1);
    cr_assert_str_eq(k->values[0], "caf\xc3\xa9");
    k = r->kids[1];
    cr_assert_eq(k->kind, FN_F_NOT);
    cr_assert_eq(k->col, 11, "columns count code points");
    cr_assert_eq(k->nkids, 1);
    cr_assert_eq(k->kids[0]->kind, FN_F_OR);
    cr_assert_eq(k->kids[0]->col, 12, "a group starts at its (");
    cr_assert_eq(k->kids[0]->kids[1]->col, 27);
    k = r->kids[2];
    cr_assert_eq(k->kind, FN_F_RANGE);
    cr_assert_eq(k->attr, FN_FA_POPULARITY);
    cr_assert_eq(k->col, 39);
    k = r->kids[3];
    cr_assert_eq(k->attr, FN_FA_LABELS);
    cr_assert_eq(k->all, 1);
    cr_assert_eq(k->nvalues, 2);
    cr_assert_str_eq(k->values[0], "x");
    cr_assert_str_eq(k->values[1], "y");
    cr_assert_eq(k->col, 52);
    /* all is only set for labels:all of two values or more */
    cr_assert_eq(parse_str("labels:all(x,x)", &a, &r, &eb), 0);
    cr_assert_eq(r->all, 0);
    cr_assert_eq(parse_str("vertical:x,y", &a, &r, &eb), 0);
    cr_assert_eq(r->all, 0);
    /* no text */
    r = (fn_fnode *)&eb;
    cr_assert_eq(fn_fparse(NULL, 0, &a, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "filter: empty");
    cr_assert_null(r);
    cr_assert_eq(fn_fparse(NULL, 3, &a, &r, &eb), FN_EINVAL);
    cr_assert_str_eq(eb.msg, "filter: no text");
    cr_assert_eq(fn_fparse("lang:a", 6, &a, &r, NULL), 0, "eb may be NULL");
    cr_assert_eq(fn_fparse("lang:", 5, &a, &r, NULL), FN_EINVAL);
    fn_arena_free(&a);
}

Test(fn_fparse, unicode_in_messages_is_cut_at_a_character)
{
    fn_arena a = FN_ARENA_INIT;
    fn_errbuf eb = {{0}};
    fn_fnode *r;
    char *s = rep("", "\xe6\x97\xa5", 100, ":x");     /* a 300-byte unknown attribute */
    cr_assert_eq(parse_str(s, &a, &r, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "filter: unknown attribute \""), "%s", eb.msg);
    const char *q = strchr(eb.msg, '"') + 1;
    size_t n = (size_t)(strstr(q, "...\"") - q);
    cr_assert_eq(n, 63, "21 whole characters of 3 bytes: %s", eb.msg);
    free(s);
    fn_arena_free(&a);
}

Test(fn_fparse, attr_names)
{
    cr_assert_str_eq(fn_fattr_name(FN_FA_VERTICAL), "vertical");
    cr_assert_str_eq(fn_fattr_name(FN_FA_LANG), "lang");
    cr_assert_str_eq(fn_fattr_name(FN_FA_LABELS), "labels");
    cr_assert_str_eq(fn_fattr_name(FN_FA_ID), "id");
    cr_assert_str_eq(fn_fattr_name(FN_FA_POPULARITY), "popularity");
    cr_assert_str_eq(fn_fattr_name(FN_FA_PUBLISHED_AT), "published_at");
    cr_assert_str_eq(fn_fattr_name(FN_FA_COUNT), "?");
}

Test(fn_fparse, print_truncates_like_snprintf)
{
    fn_arena a = FN_ARENA_INIT;
    fn_fnode *root;
    cr_assert_eq(fn_fparse("lang:de OR lang:en", 18, &a, &root, NULL), 0);
    char buf[32];
    cr_assert_eq(fn_ftree_print(root, NULL, 0), 18);
    memset(buf, 'x', sizeof buf);
    cr_assert_eq(fn_ftree_print(root, buf, 5), 18);
    cr_assert_str_eq(buf, "lang");
    cr_assert_eq(buf[5], 'x', "nothing written past cap");
    cr_assert_eq(fn_ftree_print(root, buf, 1), 18);
    cr_assert_str_eq(buf, "");
    cr_assert_eq(fn_ftree_print(root, buf, 18), 18);
    cr_assert_str_eq(buf, "lang:de OR lang:e");
    cr_assert_eq(fn_ftree_print(root, buf, 19), 18);
    cr_assert_str_eq(buf, "lang:de OR lang:en");
    cr_assert_eq(fn_ftree_print(NULL, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "");
    fn_arena_free(&a);
}

/* Every combination of three tokens: a tree that round-trips, or FN_EINVAL
 * with "filter: ... at column N" (or "filter: empty"). */
Test(fn_fparse, token_sweep)
{
    static const char *tok[] = {
        "AND", "OR", "NOT", "-", "(", ")", "lang:a", "lang:", "popularity>1", "popularity:1..", "labels:all(a,b)",
        ",", "\"x\"", "id:\"a b\"", "x", ":", "..", "NOT(", "labels:any(",
    };
    size_t ntok = sizeof tok / sizeof tok[0], ok = 0;
    fn_arena a = FN_ARENA_INIT;
    char q[128];
    for (size_t i = 0; i < ntok; i++)
        for (size_t j = 0; j < ntok; j++)
            for (size_t k = 0; k < ntok; k++)
                for (int sep = 0; sep < 2; sep++) {
                    snprintf(q, sizeof q, sep ? "%s %s %s" : "%s%s %s", tok[i], tok[j], tok[k]);
                    fn_errbuf eb = {{0}};
                    int rc;
                    const fn_fnode *r;
                    const char *got = round_trip(q, strlen(q), &eb, &rc, &r, &a);
                    if (rc == 0) {
                        ok++;
                        cr_assert(got != NULL);
                    } else {
                        cr_assert_eq(rc, FN_EINVAL, "'%s': %d", q, rc);
                        cr_assert(strncmp(eb.msg, "filter: ", 8) == 0, "'%s': %s", q, eb.msg);
                        cr_assert(strstr(eb.msg, " at column ") || strcmp(eb.msg, "filter: empty") == 0,
                                  "'%s': %s", q, eb.msg);
                    }
                    fn_arena_reset(&a);
                }
    cr_assert_gt(ok, 200);
    fn_arena_free(&a);
}
