/* fuzz_fparse.c - libFuzzer harness for the filter language parser
 * (query/filter.c). Any bytes go in, UTF-8 or not; the parser must never
 * crash, read out of bounds or leak, and what it returns must hold:
 *
 *  - a tree or FN_EINVAL with "filter: ... at column N" (or "filter:
 *    empty"), the message itself valid UTF-8 (it goes back to clients);
 *  - the tree is well formed and normalised: AND and OR have two kids or
 *    more and no kid of their own kind, NOT has one kid and it is no NOT;
 *    a VALUES node has a string attribute and 1..FN_FPARSE_MAX_VALUES
 *    distinct values of 1..FN_FPARSE_MAX_VALUE_BYTES bytes, all only on
 *    labels with two values or more; a RANGE has a numeric attribute,
 *    lo <= hi, at least one finite end, an open end only beside an
 *    infinite one, popularity bounds that are floats, published_at bounds
 *    that are whole seconds within +-1e15, no -0;
 *  - at most FN_FPARSE_MAX_NODES nodes, columns within the text;
 *  - the canonical print parses again to the same tree and prints the same;
 *  - fn_ftree_print truncates like snprintf.
 *
 * Built two ways: with clang -fsanitize=fuzzer by tests/fuzz/run_fuzz.sh
 * (run_fuzz.sh SRC_DIR SECONDS fparse), and with fuzz_main.c in the
 * ordinary build, which runs the seed corpus (tests/fuzz/corpus/fparse) as
 * a test. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *g_in;
static size_t g_n;

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_fparse: %s: %s\ninput (%zu bytes): '", what, detail ? detail : "", g_n);
    fwrite(g_in, 1, g_n, stderr);
    fprintf(stderr, "'\n");
    abort();
}

/* Well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static int utf8_ok(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += len;
    }
    return 1;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static int is_numeric(fn_fattr a)
{
    return a == FN_FA_POPULARITY || a == FN_FA_PUBLISHED_AT;
}

static void check_bound(fn_fattr attr, double x)
{
    if (isinf(x)) return;
    if (isnan(x)) fail("NaN bound", NULL);
    if (x == 0 && signbit(x)) fail("-0 bound", NULL);
    if (attr == FN_FA_POPULARITY && x != (double)(float)x) fail("popularity bound not a float", NULL);
    if (attr == FN_FA_PUBLISHED_AT && (fabs(x) > 1e15 || x != floor(x))) fail("bad published_at bound", NULL);
}

/* Check node n; returns the nodes under it (itself included). */
static size_t check(const fn_fnode *n, uint32_t maxcol, unsigned depth)
{
    if (depth > 3 * (FN_FPARSE_MAX_DEPTH + 1)) fail("tree too deep", NULL);
    if (n->col < 1 || n->col > maxcol) fail("column out of range", NULL);
    size_t count = 1;
    switch (n->kind) {
    case FN_F_AND:
    case FN_F_OR:
        if (n->nkids < 2 || !n->kids) fail("AND/OR of fewer than two kids", NULL);
        for (size_t i = 0; i < n->nkids; i++) {
            if (n->kids[i]->kind == n->kind) fail("AND/OR not flattened", NULL);
            count += check(n->kids[i], maxcol, depth + 1);
        }
        return count;
    case FN_F_NOT:
        if (n->nkids != 1 || !n->kids) fail("NOT without one kid", NULL);
        if (n->kids[0]->kind == FN_F_NOT) fail("NOT NOT not collapsed", NULL);
        return count + check(n->kids[0], maxcol, depth + 1);
    case FN_F_VALUES: {
        if ((unsigned)n->attr >= FN_FA_COUNT || is_numeric(n->attr)) fail("VALUES of a numeric attribute", NULL);
        if (n->nvalues < 1 || n->nvalues > FN_FPARSE_MAX_VALUES || !n->values) fail("bad value count", NULL);
        if (n->all && (n->attr != FN_FA_LABELS || n->nvalues < 2)) fail("all where it means nothing", NULL);
        const char **v = malloc(n->nvalues * sizeof *v);
        if (!v) abort();
        for (size_t i = 0; i < n->nvalues; i++) {
            size_t l = strlen(n->values[i]);
            if (l < 1 || l > FN_FPARSE_MAX_VALUE_BYTES) fail("bad value length", n->values[i]);
            if (!utf8_ok((const unsigned char *)n->values[i], l)) fail("value not UTF-8", n->values[i]);
            v[i] = n->values[i];
        }
        qsort(v, n->nvalues, sizeof *v, cmp_str);
        for (size_t i = 1; i < n->nvalues; i++)
            if (strcmp(v[i - 1], v[i]) == 0) fail("duplicate value", v[i]);
        free(v);
        return count;
    }
    case FN_F_RANGE:
        if ((unsigned)n->attr >= FN_FA_COUNT || !is_numeric(n->attr)) fail("RANGE of a string attribute", NULL);
        if (!(n->lo <= n->hi)) fail("empty range", NULL);
        if (isinf(n->lo) && isinf(n->hi)) fail("range without bounds", NULL);
        if ((isinf(n->lo) && n->lo > 0) || (isinf(n->hi) && n->hi < 0)) fail("infinite bound on the wrong side", NULL);
        if ((n->lo_open && (isinf(n->lo) || !isinf(n->hi))) || (n->hi_open && (isinf(n->hi) || !isinf(n->lo))))
            fail("open end that the syntax cannot give", NULL);
        check_bound(n->attr, n->lo);
        check_bound(n->attr, n->hi);
        return count;
    }
    fail("bad kind", NULL);
    return 0;
}

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
               x->hi_open == y->hi_open;
    }
    return 0;
}

/* Parse into a (the caller frees it); on success check the tree and
 * return its canonical print (malloc'd), else NULL. */
static char *parse(const char *text, size_t len, fn_arena *a, fn_fnode **root, int *rc, fn_errbuf *eb)
{
    *root = (fn_fnode *)eb;
    eb->msg[0] = '\0';
    *rc = fn_fparse(text, len, a, root, eb);
    if (*rc) {
        if (*rc != FN_EINVAL) fail("unexpected return code", eb->msg);
        if (*root) fail("root set on error", NULL);
        if (strncmp(eb->msg, "filter: ", 8) != 0) fail("message without 'filter: '", eb->msg);
        if (strcmp(eb->msg, "filter: empty") != 0 && !strstr(eb->msg, " at column "))
            fail("message without a column", eb->msg);
        if (!utf8_ok((const unsigned char *)eb->msg, strlen(eb->msg))) fail("message not UTF-8", eb->msg);
        return NULL;
    }
    if (!*root) fail("no root", NULL);
    uint32_t cps = 1;
    for (size_t i = 0; i < len; i++) cps += ((unsigned char)text[i] & 0xC0) != 0x80;
    if (check(*root, cps, 0) > FN_FPARSE_MAX_NODES) fail("more nodes than FN_FPARSE_MAX_NODES", NULL);

    size_t need = fn_ftree_print(*root, NULL, 0);
    char *buf = malloc(need + 1), *half = malloc(need / 2 + 1);
    if (!buf || !half) abort();
    if (fn_ftree_print(*root, buf, need + 1) != need || strlen(buf) != need) fail("print length", buf);
    if (fn_ftree_print(*root, half, need / 2 + 1) != need || strlen(half) != need / 2 ||
        memcmp(half, buf, need / 2) != 0)
        fail("truncated print", half);
    free(half);
    if (!utf8_ok((const unsigned char *)buf, need)) fail("print not UTF-8", buf);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_in = data;
    g_n = size;
    fn_arena a = FN_ARENA_INIT;
    fn_errbuf e1, e2;
    fn_fnode *r1, *r2;
    int rc1, rc2;
    char *p1 = parse((const char *)data, size, &a, &r1, &rc1, &e1);
    if (p1) {
        /* the canonical print is a fixed point: same text, same tree */
        char *p2 = parse(p1, strlen(p1), &a, &r2, &rc2, &e2);
        if (!p2) fail("canonical print does not parse", e2.msg);
        if (strcmp(p1, p2) != 0) fail("canonical print is not stable", p2);
        if (!tree_eq(r1, r2)) fail("canonical print parses to another tree", p1);
        free(p2);
    }
    free(p1);
    fn_arena_free(&a);
    return 0;
}
