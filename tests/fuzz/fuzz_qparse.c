/* fuzz_qparse.c - libFuzzer harness for the query language parser
 * (query/parse.c). Any bytes go in, UTF-8 or not; the parser must
 * never crash, read out of bounds or leak, and what it returns must hold:
 *
 *  - a result or FN_EINVAL with "query: ..."; errors other than the node
 *    limit do not depend on the default operator (mode ANY or ALL);
 *  - the tree is well formed and normalised: every BOOL has a positive kid,
 *    no BOOL is one positive kid alone, no kid could be flattened, phrases
 *    have two words or more, no word is empty or holds white space, ( ) ";
 *  - without a quote in the input, no TERM is an operator (AND, OR, NOT),
 *    starts with + or -, or starts with a field prefix;
 *  - the canonical print, parsed again (mode ANY), prints the same;
 *  - tighter limits never change a tree, they only refuse it;
 *  - fn_qtree_print truncates like snprintf.
 *
 * Built two ways: with clang -fsanitize=fuzzer by tests/fuzz/run_fuzz.sh,
 * and with fuzz_main.c in the ordinary build, which runs the seed corpus
 * (tests/fuzz/corpus/qparse) as a test. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *g_in;
static size_t g_n;

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_qparse: %s: %s\ninput (%zu bytes): '", what, detail ? detail : "", g_n);
    fwrite(g_in, 1, g_n, stderr);
    fprintf(stderr, "'\n");
    abort();
}

static int word_ok(const char *w)
{
    if (!w || !w[0]) return 0;
    for (const unsigned char *p = (const unsigned char *)w; *p; p++)
        if (*p <= 0x20 || *p == 0x7F || *p == '(' || *p == ')' || *p == '"') return 0;
    return 1;
}

static int operator_like(const char *w)
{
    return !strcmp(w, "AND") || !strcmp(w, "OR") || !strcmp(w, "NOT") || w[0] == '+' || w[0] == '-' ||
           !strncmp(w, "title:", 6) || !strncmp(w, "body:", 5);
}

/* The same test as parse.c's flattens(). */
static int could_flatten(const fn_qnode *k, int parent_has_must)
{
    if (k->kind != FN_Q_BOOL) return 0;
    size_t must = 0, should = 0;
    for (size_t i = 0; i < k->nkids; i++) {
        must += k->kids[i]->occur == FN_Q_MUST;
        should += k->kids[i]->occur == FN_Q_SHOULD;
    }
    if (k->occur == FN_Q_MUST) return must > 0 && should == 0;
    if (k->occur == FN_Q_SHOULD) return !parent_has_must && should == k->nkids;
    return 0;
}

/* Check node n; returns the nodes under it (itself included). */
static size_t check(const fn_qnode *n, int quoted, uint32_t maxcol, unsigned depth)
{
    if (depth > 4 * FN_QPARSE_MAX_DEPTH_CAP) fail("tree too deep", NULL);
    if (n->col < 1 || n->col > maxcol) fail("column out of range", NULL);
    if ((unsigned)n->occur > FN_Q_NOT) fail("bad occur", NULL);
    switch (n->kind) {
    case FN_Q_TERM:
        if (!word_ok(n->word)) fail("bad term word", n->word);
        if (!quoted && operator_like(n->word)) fail("an operator became a term", n->word);
        if ((unsigned)n->field > FN_QF_BODY) fail("bad field", NULL);
        return 1;
    case FN_Q_PHRASE:
        if (n->nwords < 2) fail("phrase of fewer than two words", NULL);
        for (size_t i = 0; i < n->nwords; i++)
            if (!word_ok(n->words[i])) fail("bad phrase word", n->words[i]);
        if ((unsigned)n->field > FN_QF_BODY) fail("bad field", NULL);
        return 1;
    case FN_Q_BOOL: {
        if (n->nkids == 0 || !n->kids) fail("empty BOOL", NULL);
        if (n->field != FN_QF_ANY) fail("BOOL with a field", NULL);
        size_t pos = 0, neg = 0, must = 0, count = 1;
        for (size_t i = 0; i < n->nkids; i++) {
            neg += n->kids[i]->occur == FN_Q_NOT;
            must += n->kids[i]->occur == FN_Q_MUST;
        }
        pos = n->nkids - neg;
        if (pos == 0) fail("BOOL without a positive kid", NULL);
        if (pos == 1 && neg == 0) fail("BOOL of one kid not collapsed", NULL);
        for (size_t i = 0; i < n->nkids; i++) {
            if (could_flatten(n->kids[i], must > 0)) fail("BOOL not flattened", NULL);
            count += check(n->kids[i], quoted, maxcol, depth + 1);
        }
        return count;
    }
    }
    fail("bad kind", NULL);
    return 0;
}

/* Parse; on success check the tree and return its canonical print (malloc'd). */
static char *parse(const char *text, size_t len, const fn_qparse_opts *o, int *rc, fn_errbuf *eb)
{
    fn_arena a = FN_ARENA_INIT;
    fn_qnode *root = (fn_qnode *)eb;
    eb->msg[0] = '\0';
    *rc = fn_qparse(text, len, o, &a, &root, eb);
    if (*rc) {
        if (*rc != FN_EINVAL) fail("unexpected return code", eb->msg);
        if (root) fail("root set on error", NULL);
        if (strncmp(eb->msg, "query: ", 7) != 0) fail("message without 'query: '", eb->msg);
        if (strcmp(eb->msg, "query: empty") != 0 && !strstr(eb->msg, " at column "))
            fail("message without a column", eb->msg);
        if (strstr(eb->msg, "unexpected token")) fail("the parser's can't-happen branch", eb->msg);
        fn_arena_free(&a);
        return NULL;
    }
    if (!root || root->occur != FN_Q_MUST) fail("bad root", NULL);
    int quoted = memchr(text, '"', len) != NULL;
    uint32_t cps = 1;
    for (size_t i = 0; i < len; i++) cps += ((unsigned char)text[i] & 0xC0) != 0x80;
    size_t nodes = check(root, quoted, cps, 0);
    size_t limit = o->max_nodes ? o->max_nodes : FN_QPARSE_DEFAULT_MAX_NODES;
    if (nodes > limit) fail("more nodes than max_nodes", NULL);
    int all_must = -1;
    if (fn_qtree_is_bag(root, &all_must) && all_must != 0 && all_must != 1) fail("is_bag without all_must", NULL);

    size_t need = fn_qtree_print(root, NULL, 0);
    char *buf = malloc(need + 1), *half = malloc(need / 2 + 1);
    if (!buf || !half) abort();
    if (fn_qtree_print(root, buf, need + 1) != need || strlen(buf) != need) fail("print length", buf);
    if (fn_qtree_print(root, half, need / 2 + 1) != need || strlen(half) != need / 2 ||
        memcmp(half, buf, need / 2) != 0)
        fail("truncated print", half);
    free(half);
    fn_arena_free(&a);
    return buf;
}

static int limit_error(const char *msg)
{
    return strstr(msg, "more than") != NULL || strstr(msg, "deeper than") != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_in = data;
    g_n = size;
    const char *text = (const char *)data;
    fn_qparse_opts any, all, tight, re;
    fn_qparse_defaults(&any);
    fn_qparse_defaults(&all);
    all.mode_all = 1;
    fn_errbuf e1, e2, e3, e4;
    int r1, r2, r3, r4;
    char *p1 = parse(text, size, &any, &r1, &e1);
    char *p2 = parse(text, size, &all, &r2, &e2);

    /* errors do not depend on the mode (the node limit aside) */
    if (!!r1 != !!r2 && !limit_error(r1 ? e1.msg : e2.msg)) fail("modes disagree", r1 ? e1.msg : e2.msg);
    if (r1 && r2 && strcmp(e1.msg, e2.msg) != 0 && !limit_error(e1.msg) && !limit_error(e2.msg))
        fail("modes give different errors", e1.msg);

    /* the canonical print is a fixed point (mode ANY, the depth cap: a
     * print nests one ( per BOOL, deeper than the query's own parentheses) */
    fn_qparse_defaults(&re);
    re.max_depth = FN_QPARSE_MAX_DEPTH_CAP;
    for (int m = 0; m < 2; m++) {
        char *p = m ? p2 : p1;
        if (!p) continue;
        char *again = parse(p, strlen(p), &re, &r4, &e4);
        if (!again) fail("canonical print does not parse", e4.msg);
        if (strcmp(again, p) != 0) fail("canonical print is not stable", again);
        free(again);
    }

    /* tighter limits refuse or give the same tree */
    fn_qparse_defaults(&tight);
    tight.max_nodes = 1 + (size ? data[0] % 12 : 0);
    tight.max_depth = 1 + (size > 1 ? data[1] % 4 : 0);
    char *p3 = parse(text, size, &tight, &r3, &e3);
    if (p3 && (!p1 || strcmp(p3, p1) != 0)) fail("a limit changed the tree", p3);
    if (r3 && !r1 && !limit_error(e3.msg)) fail("a limit gave a non-limit error", e3.msg);
    free(p1);
    free(p2);
    free(p3);
    return 0;
}
