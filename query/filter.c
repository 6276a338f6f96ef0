/* filter.c - the filter language parser (filter.h; the grammar, the
 * semantics, every message and the limits are in docs/query-language.md,
 * "Filters").
 *
 * A hand-written recursive-descent parser that reads the bytes directly
 * (a clause's values have a lexical structure of their own, so there is no
 * separate token stream):
 *
 *     filter  := or EOF
 *     or      := and { "OR" and }
 *     and     := unary { [ "AND" ] unary }
 *     unary   := "NOT" unary | "-" unary | "(" or ")" | clause   ("-" directly before its operand)
 *     clause  := SATTR ":" values
 *              | "labels" ":" ( "any" | "all" ) "(" values ")"
 *              | NATTR OP number
 *              | NATTR ":" range
 *     values  := value { "," value }
 *     range   := number ".." [ number ] | ".." number
 *
 * SATTR is vertical, lang, labels or id; NATTR popularity or published_at;
 * OP is >=, <=, >, < or =. AND, OR and NOT are operators only in upper case
 * and as whole words. Each rule builds and normalises its node as soon as
 * its operands are parsed, bottom-up in one pass:
 *
 *  1. an AND or OR of one operand is that operand; an AND kid of an AND
 *     (an OR kid of an OR) gives its kids to its parent, in place;
 *  2. NOT NOT x is x (the complement of a complement);
 *  3. a clause's values keep their first occurrence, in input order;
 *     labels:all of one value is labels:value (all = 0);
 *  4. a range is [lo, hi] with open/closed ends: popularity>=x and
 *     popularity:x.. are the same node; popularity bounds are stored
 *     rounded to float (as the index stores popularity), published_at
 *     bounds are whole seconds.
 *
 * So the canonical print (fn_ftree_print) of a tree parses to the same
 * tree, and prints the same (tests/query/test_filter.c and the fuzzer,
 * tests/fuzz/fuzz_fparse.c, check both).
 *
 * Bounds: the text is at most FN_FPARSE_MAX_BYTES and valid UTF-8 (checked
 * first); recursion goes one level per "(" and per NOT or "-", at most
 * FN_FPARSE_MAX_DEPTH deep (three frames per level), so no input can
 * exhaust the stack, and the tree is at most two nodes deeper per level,
 * which bounds fn_ftree_print's recursion too. Time is linear in the text
 * but for the duplicate check of a value list, a merge sort: O(v log v) for
 * v values.
 */
#include "filter.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- attributes ---- */

static const struct {
    const char *name;
    size_t len;
    int numeric;
} attrs[FN_FA_COUNT] = {
    [FN_FA_VERTICAL] = { "vertical", 8, 0 },
    [FN_FA_LANG] = { "lang", 4, 0 },
    [FN_FA_LABELS] = { "labels", 6, 0 },
    [FN_FA_ID] = { "id", 2, 0 },
    [FN_FA_POPULARITY] = { "popularity", 10, 1 },
    [FN_FA_PUBLISHED_AT] = { "published_at", 12, 1 },
};

#define ATTR_LIST "vertical, lang, labels, id, popularity, published_at"

const char *fn_fattr_name(fn_fattr a)
{
    return (unsigned)a < FN_FA_COUNT ? attrs[a].name : "?";
}

static int attr_lookup(const unsigned char *s, size_t n)
{
    for (int i = 0; i < FN_FA_COUNT; i++)
        if (n == attrs[i].len && memcmp(s, attrs[i].name, n) == 0) return i;
    return -1;
}

/* ---- text ---- */

/* The values of one clause while it is read (see scratch_grow). */
typedef struct scratch {
    size_t *off;            /* where each value starts in the text (its quote, if quoted) */
    size_t *len;            /* its bytes, unquoted */
    size_t *idx, *tmp;      /* the duplicate check's sort */
    unsigned char *dup;
    size_t n, cap;
} scratch;

typedef struct parser {
    const unsigned char *s;
    size_t n;
    size_t pos;             /* the next byte to read */
    uint32_t col;           /* column of s[pos] */
    unsigned depth;         /* open ( and NOTs around pos */
    size_t leaves;          /* clauses read so far */
    scratch sc;             /* the values of the clause being read */
    fn_arena *a;
    fn_errbuf *eb;
} parser;

/* Bytes of the white-space character at s[0] (0 if it is none): ASCII
 * space and control characters, U+0085 and Unicode Zs/Zl/Zp - as in the
 * query language (parse.c). */
static size_t space_len(const unsigned char *s, size_t left)
{
    if (s[0] < 0x80) return s[0] <= 0x20 || s[0] == 0x7F;
    utf8proc_int32_t cp;
    utf8proc_ssize_t used = utf8proc_iterate(s, (utf8proc_ssize_t)(left < 4 ? left : 4), &cp);
    if (used <= 0) return 0;
    utf8proc_category_t cat = utf8proc_category(cp);
    if (cp == 0x85 || cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
        cat == UTF8PROC_CATEGORY_ZP)
        return (size_t)used;
    return 0;
}

/* Bytes of the character at s[0]; an invalid byte is a character of one. */
static size_t char_len(const unsigned char *s, size_t left)
{
    if (s[0] < 0x80) return 1;
    utf8proc_int32_t cp;
    utf8proc_ssize_t used = utf8proc_iterate(s, (utf8proc_ssize_t)(left < 4 ? left : 4), &cp);
    return used > 0 ? (size_t)used : 1;
}

static int is_space_at(const parser *P, size_t i)
{
    return i < P->n && space_len(P->s + i, P->n - i) > 0;
}

/* Offset of the first byte that is not well-formed UTF-8 (no overlongs,
 * surrogates or > U+10FFFF; fn_utf8_valid's rules), or n. */
static size_t utf8_bad(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
        else return i;
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += len;
    }
    return n;
}

/* Code points in s[0, n) (bytes that are not continuation bytes). */
static uint32_t cps(const unsigned char *s, size_t n)
{
    uint32_t c = 0;
    for (size_t i = 0; i < n; i++)
        if ((s[i] & 0xC0) != 0x80 && c < UINT32_MAX) c++;
    return c;
}

/* Move k bytes on, counting code points. */
static void adv(parser *P, size_t k)
{
    for (size_t i = 0; i < k; i++)
        if ((P->s[P->pos + i] & 0xC0) != 0x80 && P->col < UINT32_MAX) P->col++;
    P->pos += k;
}

static void skip_ws(parser *P)
{
    size_t w;
    while (P->pos < P->n && (w = space_len(P->s + P->pos, P->n - P->pos)) > 0) adv(P, w);
}

/* The column of s[off], off >= pos (for messages about a byte ahead). */
static uint32_t col_at(const parser *P, size_t off)
{
    uint32_t c = cps(P->s + P->pos, off - P->pos);
    return P->col > UINT32_MAX - c ? UINT32_MAX : P->col + c;
}

/* How many bytes of s[0, n) to quote in a message: at most max, cut at a
 * character boundary (the text is valid UTF-8 by then, and so must the
 * message be: it goes back to the client). *more: something was cut. */
static int excerpt(const unsigned char *s, size_t n, size_t max, const char **more)
{
    *more = "";
    if (n <= max) return (int)n;
    size_t k = max;
    while (k > 0 && (s[k] & 0xC0) == 0x80) k--;
    *more = "...";
    return (int)k;
}

/* ---- operators ---- */

typedef enum opkind { OP_NONE, OP_AND, OP_OR, OP_NOT } opkind;

/* Where an operator word may end: the end, white space, ( ) or ". */
static int op_end(const parser *P, size_t i)
{
    return i >= P->n || P->s[i] == '(' || P->s[i] == ')' || P->s[i] == '"' || is_space_at(P, i);
}

/* The operator at pos (pos < n). */
static opkind peek_op(const parser *P)
{
    const unsigned char *p = P->s + P->pos;
    size_t left = P->n - P->pos;
    if (left >= 3 && memcmp(p, "AND", 3) == 0 && op_end(P, P->pos + 3)) return OP_AND;
    if (left >= 3 && memcmp(p, "NOT", 3) == 0 && op_end(P, P->pos + 3)) return OP_NOT;
    if (left >= 2 && memcmp(p, "OR", 2) == 0 && op_end(P, P->pos + 2)) return OP_OR;
    return OP_NONE;
}

/* Does a unary start at pos (white space skipped)? */
static int starts_unary(const parser *P)
{
    if (P->pos >= P->n || P->s[P->pos] == ')') return 0;
    opkind k = peek_op(P);
    return k != OP_AND && k != OP_OR;
}

/* ---- nodes ---- */

static int oom(parser *P)
{
    return fn_seterr(P->eb, -ENOMEM, "filter: out of memory");
}

static fn_fnode *node_new(parser *P, fn_fkind kind, uint32_t col)
{
    fn_fnode *n = fn_arena_calloc(P->a, 1, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->col = col;
    return n;
}

static int too_many_nodes(parser *P, uint32_t col)
{
    return fn_seterr(P->eb, FN_EINVAL, "filter: more than %d nodes (clauses, AND, OR, NOT) at column %u",
                     FN_FPARSE_MAX_NODES, col);
}

static int too_deep(parser *P, uint32_t col)
{
    return fn_seterr(P->eb, FN_EINVAL, "filter: nested deeper than %d levels (parentheses and NOTs) at column %u",
                     FN_FPARSE_MAX_DEPTH, col);
}

/* A growing list of kids in the arena (the old array is left behind). */
typedef struct kidlist {
    fn_fnode **v;
    size_t n, cap;
} kidlist;

static int kid_push(parser *P, kidlist *l, fn_fnode *k)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        fn_fnode **v = fn_arena_alloc(P->a, cap * sizeof *v);
        if (!v) return oom(P);
        if (l->n) memcpy(v, l->v, l->n * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = k;
    return 0;
}

/* The AND or OR of the kids in l, normalised: a kid of the same kind gives
 * its kids in its place, and one kid is that kid. */
static int finish(parser *P, fn_fkind kind, kidlist *l, uint32_t col, fn_fnode **out)
{
    size_t total = 0;
    for (size_t i = 0; i < l->n; i++) total += l->v[i]->kind == kind ? l->v[i]->nkids : 1;
    if (total == 1) {
        *out = l->v[0];
        return 0;
    }
    fn_fnode **kids = fn_arena_alloc(P->a, total * sizeof *kids);
    fn_fnode *n = node_new(P, kind, col);
    if (!kids || !n) return oom(P);
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        fn_fnode *c = l->v[i];
        if (c->kind == kind) {
            memcpy(kids + k, c->kids, c->nkids * sizeof *kids);
            k += c->nkids;
        } else {
            kids[k++] = c;
        }
    }
    n->kids = kids;
    n->nkids = k;
    *out = n;
    return 0;
}

/* ---- values ---- */

/* The values of the clause being read: where each starts in the text and
 * its length once unquoted. The arrays (and the sort's) are reused from
 * clause to clause, so a filter of many small clauses costs its values'
 * bytes and one pointer each, not a list per clause. */
static int scratch_grow(parser *P, size_t need)
{
    scratch *c = &P->sc;
    if (need <= c->cap) return 0;
    size_t cap = c->cap ? c->cap * 2 : 16;
    while (cap < need) cap *= 2;
    size_t *off = fn_arena_alloc(P->a, cap * sizeof *off), *len = fn_arena_alloc(P->a, cap * sizeof *len);
    size_t *idx = fn_arena_alloc(P->a, cap * sizeof *idx), *tmp = fn_arena_alloc(P->a, cap * sizeof *tmp);
    unsigned char *dup = fn_arena_alloc(P->a, cap);
    if (!off || !len || !idx || !tmp || !dup) return oom(P);
    if (c->n) {
        memcpy(off, c->off, c->n * sizeof *off);
        memcpy(len, c->len, c->n * sizeof *len);
    }
    c->off = off;
    c->len = len;
    c->idx = idx;
    c->tmp = tmp;
    c->dup = dup;
    c->cap = cap;
    return 0;
}

/* A bare value stops here: white space, ',', '(', ')' or '"'. */
static int value_stop(const parser *P, size_t i)
{
    unsigned char c = P->s[i];
    return c == ',' || c == '(' || c == ')' || c == '"' || is_space_at(P, i);
}

/* One value at pos (callers checked that one starts there): a bare run of
 * bytes up to value_stop, or a quoted string with \" and \\. Checked and
 * noted in P->sc; copied by finish_values. */
static int read_value(parser *P)
{
    size_t b = P->pos, i, len;
    uint32_t col = P->col;
    int rc;
    if (P->sc.n >= FN_FPARSE_MAX_VALUES)
        return fn_seterr(P->eb, FN_EINVAL, "filter: more than %d values in one clause at column %u",
                         FN_FPARSE_MAX_VALUES, col);
    if (P->s[b] == '"') {
        for (i = b + 1, len = 0;; len++) {
            if (i >= P->n) return fn_seterr(P->eb, FN_EINVAL, "filter: unterminated quote at column %u", col);
            unsigned char c = P->s[i];
            if (c == '"') break;
            if (c == '\\') {
                if (i + 1 >= P->n)
                    return fn_seterr(P->eb, FN_EINVAL, "filter: unterminated quote at column %u", col);
                if (P->s[i + 1] != '"' && P->s[i + 1] != '\\')
                    return fn_seterr(P->eb, FN_EINVAL,
                                     "filter: unknown escape in a quoted value (only \\\" and \\\\) at column %u",
                                     col_at(P, i));
                i += 2;
            } else {
                if (c == 0)
                    return fn_seterr(P->eb, FN_EINVAL, "filter: NUL byte in a quoted value at column %u",
                                     col_at(P, i));
                i++;
            }
        }
        if (len == 0) return fn_seterr(P->eb, FN_EINVAL, "filter: empty value at column %u", col);
        i++;    /* the closing quote */
    } else {
        for (i = b; i < P->n && !value_stop(P, i);) i += char_len(P->s + i, P->n - i);
        if (i > P->n) i = P->n;
        len = i - b;
    }
    if (len > FN_FPARSE_MAX_VALUE_BYTES)
        return fn_seterr(P->eb, FN_EINVAL, "filter: value longer than %d bytes at column %u",
                         FN_FPARSE_MAX_VALUE_BYTES, col);
    if ((rc = scratch_grow(P, P->sc.n + 1))) return rc;
    P->sc.off[P->sc.n] = b;
    P->sc.len[P->sc.n++] = len;
    adv(P, i - b);
    return 0;
}

/* Order of values for the duplicate check: by length, bytes, then input
 * position (so the first of equal values comes first). */
static int val_cmp(const char **v, const size_t *len, size_t x, size_t y)
{
    if (len[x] != len[y]) return len[x] < len[y] ? -1 : 1;
    int c = memcmp(v[x], v[y], len[x]);
    if (c) return c;
    return x < y ? -1 : x > y;
}

/* Bottom-up merge sort of idx[0, n) with tmp as scratch. */
static void val_sort(const char **v, const size_t *len, size_t *idx, size_t *tmp, size_t n)
{
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = val_cmp(v, len, idx[i], idx[j]) <= 0 ? idx[i++] : idx[j++];
            while (i < mid) tmp[k++] = idx[i++];
            while (j < hi) tmp[k++] = idx[j++];
        }
        memcpy(idx, tmp, n * sizeof *idx);
    }
}

/* The values noted in P->sc into n: copied (unquoted) into one block of
 * the arena, duplicates removed (the first kept, input order). */
static int finish_values(parser *P, fn_fnode *n)
{
    scratch *c = &P->sc;
    size_t total = 0;
    for (size_t i = 0; i < c->n; i++) total += c->len[i] + 1;
    char *block = fn_arena_alloc(P->a, total);
    const char **v = fn_arena_alloc(P->a, c->n * sizeof *v);
    if (!block || !v) return oom(P);
    char *w = block;
    for (size_t i = 0; i < c->n; i++) {
        const unsigned char *p = P->s + c->off[i];
        v[i] = w;
        if (*p == '"') {
            for (size_t j = 1, k = 0; k < c->len[i]; k++, j++) {
                if (p[j] == '\\') j++;
                *w++ = (char)p[j];
            }
        } else {
            memcpy(w, p, c->len[i]);
            w += c->len[i];
        }
        *w++ = '\0';
    }
    size_t k = c->n;
    if (c->n > 1) {
        for (size_t i = 0; i < c->n; i++) {
            c->idx[i] = i;
            c->dup[i] = 0;
        }
        val_sort(v, c->len, c->idx, c->tmp, c->n);
        for (size_t i = 1; i < c->n; i++) {
            size_t x = c->idx[i - 1], y = c->idx[i];
            if (c->len[x] == c->len[y] && memcmp(v[x], v[y], c->len[x]) == 0) c->dup[y] = 1;
        }
        k = 0;
        for (size_t i = 0; i < c->n; i++)
            if (!c->dup[i]) v[k++] = v[i];
    }
    n->values = v;
    n->nvalues = k;
    return 0;
}

/* After a clause: the end, white space or a parenthesis. */
static int clause_end(parser *P)
{
    if (P->pos >= P->n || P->s[P->pos] == '(' || P->s[P->pos] == ')' || is_space_at(P, P->pos)) return 0;
    return fn_seterr(P->eb, FN_EINVAL, "filter: expected white space or a parenthesis after the clause at column %u",
                     P->col);
}

static int missing_value(parser *P, char after, uint32_t col)
{
    return fn_seterr(P->eb, FN_EINVAL, "filter: missing value after '%c' at column %u", after, col);
}

/* attr:v1,v2 / labels:any(v1, v2) / labels:all(v1, v2); pos at the ':'. */
static int string_clause(parser *P, fn_fattr attr, uint32_t col, fn_fnode **out)
{
    uint32_t ccol = P->col;
    int rc, all = 0;
    P->sc.n = 0;
    adv(P, 1);
    const unsigned char *p = P->s + P->pos;
    size_t left = P->n - P->pos;
    if (left >= 4 && (memcmp(p, "any(", 4) == 0 || memcmp(p, "all(", 4) == 0)) {
        if (attr != FN_FA_LABELS)
            return fn_seterr(P->eb, FN_EINVAL,
                             "filter: any(...) and all(...) are for labels only; use %s:a,b at column %u",
                             attrs[attr].name, P->col);
        all = p[1] == 'l';
        adv(P, 3);
        uint32_t pcol = P->col, prevcol = P->col;
        char prev = '(';
        adv(P, 1);
        skip_ws(P);
        if (P->pos < P->n && P->s[P->pos] == ')')
            return fn_seterr(P->eb, FN_EINVAL, "filter: empty parentheses at column %u", pcol);
        for (;;) {
            skip_ws(P);
            if (P->pos >= P->n)
                return fn_seterr(P->eb, FN_EINVAL, "filter: unbalanced ( at column %u: no matching )", pcol);
            unsigned char c = P->s[P->pos];
            if (c == ',' || c == '(' || c == ')') return missing_value(P, prev, prevcol);
            if ((rc = read_value(P))) return rc;
            skip_ws(P);
            if (P->pos >= P->n)
                return fn_seterr(P->eb, FN_EINVAL, "filter: unbalanced ( at column %u: no matching )", pcol);
            c = P->s[P->pos];
            if (c == ')') {
                adv(P, 1);
                break;
            }
            if (c != ',')
                return fn_seterr(P->eb, FN_EINVAL, "filter: expected ',' or ')' at column %u", P->col);
            prev = ',';
            prevcol = P->col;
            adv(P, 1);
        }
    } else {
        if (P->pos >= P->n || (value_stop(P, P->pos) && P->s[P->pos] != '"')) return missing_value(P, ':', ccol);
        for (;;) {
            if ((rc = read_value(P))) return rc;
            if (P->pos >= P->n || P->s[P->pos] != ',') break;
            uint32_t kcol = P->col;
            adv(P, 1);
            if (P->pos >= P->n || (value_stop(P, P->pos) && P->s[P->pos] != '"')) return missing_value(P, ',', kcol);
        }
    }
    if ((rc = clause_end(P))) return rc;
    fn_fnode *n = node_new(P, FN_F_VALUES, col);
    if (!n) return oom(P);
    n->attr = attr;
    if ((rc = finish_values(P, n))) return rc;
    n->all = all && n->nvalues > 1;
    *out = n;
    return 0;
}

/* popularity as the index stores it: the number rounded to float. 0 and
 * *out, or -1 when it is beyond float's range (rounds to infinity; the
 * midpoint between FLT_MAX and 2^128 rounds to even, 2^128, too). */
static int pop_round(double d, double *out)
{
    if (!isfinite(d) || fabs(d) >= 0x1.ffffffp127) return -1;
    float f = (float)d;
    d = f;
    *out = d == 0 ? 0.0 : d;     /* -0 is 0 */
    return 0;
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* The number s[off, off+len) for attr into *out; col is its column. */
static int parse_number(parser *P, fn_fattr attr, size_t off, size_t len, uint32_t col, double *out)
{
    const unsigned char *p = P->s + off;
    const char *more;
    int ex = excerpt(p, len, 40, &more);
    size_t i = 0, nint, nfrac = 0;
    int frac = 0, expo = 0;
    if (i < len && (p[i] == '+' || p[i] == '-')) i++;
    size_t d0 = i;
    while (i < len && is_digit(p[i])) i++;
    nint = i - d0;
    if (i < len && p[i] == '.') {
        frac = 1;
        size_t f0 = ++i;
        while (i < len && is_digit(p[i])) i++;
        nfrac = i - f0;
    }
    if ((nint || nfrac) && i < len && (p[i] == 'e' || p[i] == 'E')) {
        size_t j = i + 1;
        if (j < len && (p[j] == '+' || p[j] == '-')) j++;
        size_t e0 = j;
        while (j < len && is_digit(p[j])) j++;
        if (j > e0) {
            expo = 1;
            i = j;
        }
    }
    if (i != len || (nint == 0 && nfrac == 0))
        return fn_seterr(P->eb, FN_EINVAL, "filter: bad number \"%.*s%s\" at column %u", ex, (const char *)p, more,
                         col);
    if (attr == FN_FA_PUBLISHED_AT) {
        if (frac || expo)
            return fn_seterr(P->eb, FN_EINVAL,
                             "filter: published_at takes whole seconds (an integer), not \"%.*s%s\" at column %u", ex,
                             (const char *)p, more, col);
        double v = 0;
        for (size_t j = d0; j < len; j++) {
            v = v * 10 + (p[j] - '0');
            if (v > 1e15)
                return fn_seterr(P->eb, FN_EINVAL,
                                 "filter: published_at bound \"%.*s%s\" out of range (-1e15..1e15) at column %u", ex,
                                 (const char *)p, more, col);
        }
        if (p[0] == '-') v = -v;
        *out = v == 0 ? 0.0 : v;
        return 0;
    }
    char buf[64], *z = buf;
    if (len >= sizeof buf && !(z = fn_arena_alloc(P->a, len + 1))) return oom(P);
    memcpy(z, p, len);
    z[len] = '\0';
    if (pop_round(strtod(z, NULL), out))
        return fn_seterr(P->eb, FN_EINVAL,
                         "filter: popularity bound \"%.*s%s\" out of range (about -3.4e38..3.4e38) at column %u", ex,
                         (const char *)p, more, col);
    return 0;
}

/* End of a number token from i: white space, a parenthesis or the end. */
static size_t number_end(const parser *P, size_t i)
{
    while (i < P->n && P->s[i] != '(' && P->s[i] != ')' && !is_space_at(P, i)) i += char_len(P->s + i, P->n - i);
    return i < P->n ? i : P->n;
}

/* attr OP number / attr:lo..hi; pos at the ':' or the operator. */
static int numeric_clause(parser *P, fn_fattr attr, uint32_t col, fn_fnode **out)
{
    const char *name = attrs[attr].name;
    double lo = -INFINITY, hi = INFINITY;
    int lo_open = 0, hi_open = 0, rc;
    unsigned char c = P->s[P->pos];
    if (c == ':') {
        uint32_t ccol = P->col;
        adv(P, 1);
        size_t b = P->pos, e = number_end(P, b), d = b;
        if (e == b) return missing_value(P, ':', ccol);
        while (d + 1 < e && !(P->s[d] == '.' && P->s[d + 1] == '.')) d++;
        if (d + 1 >= e)
            return fn_seterr(P->eb, FN_EINVAL,
                             "filter: %s is a numeric attribute; use %s:lo..hi or %s>=x at column %u", name, name,
                             name, P->col);
        if (d == b && e == d + 2)
            return fn_seterr(P->eb, FN_EINVAL, "filter: range without bounds at column %u", P->col);
        if (d > b && (rc = parse_number(P, attr, b, d - b, P->col, &lo))) return rc;
        if (e > d + 2 && (rc = parse_number(P, attr, d + 2, e - d - 2, col_at(P, d + 2), &hi))) return rc;
        if (lo > hi) {
            const char *more;
            int ex = excerpt(P->s + b, e - b, 80, &more);
            return fn_seterr(P->eb, FN_EINVAL,
                             "filter: empty range %s:%.*s%s (the lower bound is above the upper) at column %u", name,
                             ex, (const char *)P->s + b, more, col);
        }
        adv(P, e - b);
    } else {
        uint32_t opcol = P->col;
        size_t oplen = (c == '<' || c == '>') && P->pos + 1 < P->n && P->s[P->pos + 1] == '=' ? 2 : 1;
        const char *op = (const char *)P->s + P->pos;
        adv(P, oplen);
        size_t b = P->pos, e = number_end(P, b);
        if (e == b)
            return fn_seterr(P->eb, FN_EINVAL, "filter: missing number after %.*s at column %u", (int)oplen, op,
                             opcol);
        double x;
        if ((rc = parse_number(P, attr, b, e - b, P->col, &x))) return rc;
        if (c == '=' || c == '>') lo = x;
        if (c == '=' || c == '<') hi = x;
        lo_open = c == '>' && oplen == 1;
        hi_open = c == '<' && oplen == 1;
        adv(P, e - b);
    }
    fn_fnode *n = node_new(P, FN_F_RANGE, col);
    if (!n) return oom(P);
    n->attr = attr;
    n->lo = lo;
    n->hi = hi;
    n->lo_open = lo_open;
    n->hi_open = hi_open;
    *out = n;
    return 0;
}

/* A name stops at white space, ( ) " , : < > =. */
static int name_stop(const parser *P, size_t i)
{
    unsigned char c = P->s[i];
    return c == '(' || c == ')' || c == '"' || c == ',' || c == ':' || c == '<' || c == '>' || c == '=' ||
           is_space_at(P, i);
}

/* clause; pos at its first byte (not white space, not ')'). */
static int parse_clause(parser *P, fn_fnode **out)
{
    size_t b = P->pos, e = b;
    uint32_t col = P->col;
    while (e < P->n && !name_stop(P, e)) e += char_len(P->s + e, P->n - e);
    if (e > P->n) e = P->n;
    if (e == b)
        return fn_seterr(P->eb, FN_EINVAL, "filter: expected an attribute, not '%c' at column %u", P->s[b], col);
    if (++P->leaves > FN_FPARSE_MAX_NODES) return too_many_nodes(P, col);
    int attr = attr_lookup(P->s + b, e - b);
    unsigned char c = e < P->n ? P->s[e] : 0;
    int sep = c == ':' || c == '<' || c == '>' || c == '=';
    const char *more;
    int ex = excerpt(P->s + b, e - b, 64, &more);
    if (attr < 0 && sep)
        return fn_seterr(P->eb, FN_EINVAL, "filter: unknown attribute \"%.*s%s\" at column %u (" ATTR_LIST ")", ex,
                         (const char *)P->s + b, more, col);
    if (attr < 0)
        return fn_seterr(P->eb, FN_EINVAL,
                         "filter: \"%.*s%s\" is not a clause (attribute:value or attribute>=number) at column %u", ex,
                         (const char *)P->s + b, more, col);
    const char *name = attrs[attr].name;
    if (!sep) {
        if (attrs[attr].numeric)
            return fn_seterr(P->eb, FN_EINVAL,
                             "filter: %s must be followed directly by ':' or a comparison at column %u", name, col);
        return fn_seterr(P->eb, FN_EINVAL, "filter: %s must be followed directly by ':' at column %u", name, col);
    }
    adv(P, e - b);
    if (attrs[attr].numeric) return numeric_clause(P, (fn_fattr)attr, col, out);
    if (c != ':')
        return fn_seterr(P->eb, FN_EINVAL, "filter: %s is a string attribute; use %s:value at column %u", name, name,
                         P->col);
    return string_clause(P, (fn_fattr)attr, col, out);
}

/* ---- grammar ---- */

static int parse_or(parser *P, fn_fnode **out);

/* unary := "NOT" unary | "-" unary | "(" or ")" | clause; pos starts one. */
static int parse_unary(parser *P, fn_fnode **out)
{
    uint32_t col = P->col;
    unsigned char c = P->s[P->pos];
    int rc;
    if (c == '-' || peek_op(P) == OP_NOT) {
        if (++P->depth > FN_FPARSE_MAX_DEPTH) return too_deep(P, col);
        if (c == '-') {
            adv(P, 1);
            if (!starts_unary(P) || is_space_at(P, P->pos))
                return fn_seterr(P->eb, FN_EINVAL, "filter: - must be followed directly by a clause or ( at column %u",
                                 col);
        } else {
            adv(P, 3);
            skip_ws(P);
            if (!starts_unary(P))
                return fn_seterr(P->eb, FN_EINVAL, "filter: NOT without an operand at column %u", col);
        }
        fn_fnode *k;
        if ((rc = parse_unary(P, &k))) return rc;
        P->depth--;
        if (k->kind == FN_F_NOT) {      /* NOT NOT x = x */
            *out = k->kids[0];
            return 0;
        }
        fn_fnode *n = node_new(P, FN_F_NOT, col);
        fn_fnode **kids = fn_arena_alloc(P->a, sizeof *kids);
        if (!n || !kids) return oom(P);
        kids[0] = k;
        n->kids = kids;
        n->nkids = 1;
        *out = n;
        return 0;
    }
    if (c == '(') {
        if (++P->depth > FN_FPARSE_MAX_DEPTH) return too_deep(P, col);
        adv(P, 1);
        skip_ws(P);
        if (P->pos < P->n && P->s[P->pos] == ')')
            return fn_seterr(P->eb, FN_EINVAL, "filter: empty parentheses at column %u", col);
        if (P->pos >= P->n)
            return fn_seterr(P->eb, FN_EINVAL, "filter: unbalanced ( at column %u: no matching )", col);
        fn_fnode *n;
        if ((rc = parse_or(P, &n))) return rc;
        if (P->pos >= P->n)     /* parse_or stops only at ) or the end */
            return fn_seterr(P->eb, FN_EINVAL, "filter: unbalanced ( at column %u: no matching )", col);
        adv(P, 1);
        P->depth--;
        if (n->kind == FN_F_AND || n->kind == FN_F_OR) n->col = col;
        *out = n;
        return 0;
    }
    return parse_clause(P, out);
}

/* and := unary { [ "AND" ] unary }; pos starts a unary. Stops at OR, ) or
 * the end. */
static int parse_and(parser *P, fn_fnode **out)
{
    uint32_t col = P->col;
    fn_fnode *n;
    int rc;
    if ((rc = parse_unary(P, &n))) return rc;
    kidlist l = { NULL, 0, 0 };
    for (;;) {
        skip_ws(P);
        if (P->pos >= P->n || P->s[P->pos] == ')') break;
        opkind op = peek_op(P);
        if (op == OP_OR) break;
        if (l.n == 0 && (rc = kid_push(P, &l, n))) return rc;
        if (op == OP_AND) {
            uint32_t opcol = P->col;
            adv(P, 3);
            skip_ws(P);
            if (!starts_unary(P))
                return fn_seterr(P->eb, FN_EINVAL, "filter: AND without a right operand at column %u", opcol);
        }
        if ((rc = parse_unary(P, &n)) || (rc = kid_push(P, &l, n))) return rc;
    }
    if (l.n == 0) {
        *out = n;
        return 0;
    }
    return finish(P, FN_F_AND, &l, col, out);
}

/* or := and { "OR" and }; pos at a non-blank byte other than ')'. Stops at
 * ) or the end. */
static int parse_or(parser *P, fn_fnode **out)
{
    uint32_t col = P->col;
    opkind op = peek_op(P);
    fn_fnode *n;
    int rc;
    if (op == OP_AND || op == OP_OR)
        return fn_seterr(P->eb, FN_EINVAL, "filter: %s without a left operand at column %u",
                         op == OP_AND ? "AND" : "OR", col);
    if ((rc = parse_and(P, &n))) return rc;
    if (P->pos >= P->n || P->s[P->pos] == ')') {
        *out = n;
        return 0;
    }
    kidlist l = { NULL, 0, 0 };
    if ((rc = kid_push(P, &l, n))) return rc;
    while (P->pos < P->n && P->s[P->pos] != ')') {  /* parse_and stopped at OR */
        uint32_t opcol = P->col;
        adv(P, 2);
        skip_ws(P);
        if (!starts_unary(P))
            return fn_seterr(P->eb, FN_EINVAL, "filter: OR without a right operand at column %u", opcol);
        if ((rc = parse_and(P, &n)) || (rc = kid_push(P, &l, n))) return rc;
    }
    return finish(P, FN_F_OR, &l, col, out);
}

/* The (FN_FPARSE_MAX_NODES + 1)-th node in pre-order, or NULL. */
static const fn_fnode *over_limit(const fn_fnode *n, size_t *left)
{
    if (*left == 0) return n;
    (*left)--;
    for (size_t i = 0; (n->kind == FN_F_AND || n->kind == FN_F_OR || n->kind == FN_F_NOT) && i < n->nkids; i++) {
        const fn_fnode *o = over_limit(n->kids[i], left);
        if (o) return o;
    }
    return NULL;
}

int fn_fparse(const char *text, size_t len, fn_arena *a, fn_fnode **root, fn_errbuf *eb)
{
    *root = NULL;
    if (!text && len) return fn_seterr(eb, FN_EINVAL, "filter: no text");
    if (len == 0) return fn_seterr(eb, FN_EINVAL, "filter: empty");
    const unsigned char *s = (const unsigned char *)text;
    if (len > FN_FPARSE_MAX_BYTES) {
        uint32_t c = cps(s, FN_FPARSE_MAX_BYTES);
        return fn_seterr(eb, FN_EINVAL, "filter: longer than %u bytes at column %u", FN_FPARSE_MAX_BYTES,
                         c < UINT32_MAX ? c + 1 : c);
    }
    size_t bad = utf8_bad(s, len);
    if (bad < len) return fn_seterr(eb, FN_EINVAL, "filter: not valid UTF-8 at column %u", cps(s, bad) + 1);
    parser P = { .s = s, .n = len, .col = 1, .a = a, .eb = eb };
    skip_ws(&P);
    if (P.pos >= P.n) return fn_seterr(eb, FN_EINVAL, "filter: empty");
    if (P.s[P.pos] == ')')
        return fn_seterr(eb, FN_EINVAL, "filter: unbalanced ) at column %u: no matching (", P.col);
    fn_fnode *n;
    int rc;
    if ((rc = parse_or(&P, &n))) return rc;
    if (P.pos < P.n)    /* a ) that closes nothing */
        return fn_seterr(eb, FN_EINVAL, "filter: unbalanced ) at column %u: no matching (", P.col);
    size_t left = FN_FPARSE_MAX_NODES;
    const fn_fnode *over = over_limit(n, &left);
    if (over) return too_many_nodes(&P, over->col);
    *root = n;
    return 0;
}

/* ---- printing ---- */

typedef struct out {
    char *buf;
    size_t cap, len;        /* len: bytes the whole text needs so far */
} out;

static void put(out *o, const char *s, size_t n)
{
    if (o->cap && o->len < o->cap - 1) {
        size_t room = o->cap - 1 - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void puts_(out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* Can the value be printed bare (it would read back as itself)? */
static int bare_ok(const char *v)
{
    const unsigned char *p = (const unsigned char *)v;
    size_t n = strlen(v);
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i += char_len(p + i, n - i)) {
        unsigned char c = p[i];
        if (c == ',' || c == '(' || c == ')' || c == '"' || space_len(p + i, n - i)) return 0;
    }
    return 1;
}

static void put_value(out *o, const char *v)
{
    if (bare_ok(v)) {
        puts_(o, v);
        return;
    }
    put(o, "\"", 1);
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\') put(o, "\\", 1);
        put(o, p, 1);
    }
    put(o, "\"", 1);
}

/* A bound as it reads back to the same double: published_at as an
 * integer, popularity in the fewest digits that round to the same float. */
static void put_num(out *o, fn_fattr attr, double x)
{
    char b[64];
    if (attr == FN_FA_PUBLISHED_AT && fabs(x) <= 1e15 && x == (double)(long long)x) {
        snprintf(b, sizeof b, "%lld", (long long)x);
    } else {
        int ok = 0;
        for (int prec = 1; prec <= 9 && !ok; prec++) {
            double y;
            snprintf(b, sizeof b, "%.*g", prec, x);
            ok = pop_round(strtod(b, NULL), &y) == 0 && y == x;
        }
        if (!ok) snprintf(b, sizeof b, "%.17g", x);
    }
    puts_(o, b);
}

static void print_node(out *o, const fn_fnode *n, int nested)
{
    switch (n->kind) {
    case FN_F_AND:
    case FN_F_OR:
        if (nested) put(o, "(", 1);
        for (size_t i = 0; i < n->nkids; i++) {
            if (i) puts_(o, n->kind == FN_F_AND ? " " : " OR ");
            print_node(o, n->kids[i], 1);
        }
        if (nested) put(o, ")", 1);
        break;
    case FN_F_NOT:
        put(o, "-", 1);
        if (n->nkids) print_node(o, n->kids[0], 1);
        break;
    case FN_F_VALUES:
        puts_(o, fn_fattr_name(n->attr));
        puts_(o, n->all ? ":all(" : ":");
        for (size_t i = 0; i < n->nvalues; i++) {
            if (i) put(o, ",", 1);
            put_value(o, n->values[i]);
        }
        if (n->all) put(o, ")", 1);
        break;
    case FN_F_RANGE: {
        int lo_inf = isinf(n->lo) && n->lo < 0, hi_inf = isinf(n->hi) && n->hi > 0;
        puts_(o, fn_fattr_name(n->attr));
        if (!lo_inf && !hi_inf && n->lo == n->hi && !n->lo_open && !n->hi_open) {
            put(o, "=", 1);
            put_num(o, n->attr, n->lo);
        } else if (!lo_inf && hi_inf) {
            puts_(o, n->lo_open ? ">" : ">=");
            put_num(o, n->attr, n->lo);
        } else if (lo_inf && !hi_inf) {
            puts_(o, n->hi_open ? "<" : "<=");
            put_num(o, n->attr, n->hi);
        } else {    /* both ends (closed), or a tree fn_fparse cannot give */
            put(o, ":", 1);
            if (!lo_inf) put_num(o, n->attr, n->lo);
            put(o, "..", 2);
            if (!hi_inf) put_num(o, n->attr, n->hi);
        }
        break;
    }
    }
}

size_t fn_ftree_print(const fn_fnode *root, char *buf, size_t cap)
{
    out o = { buf, buf ? cap : 0, 0 };
    if (root) print_node(&o, root, 0);
    if (o.cap) o.buf[o.len < o.cap ? o.len : o.cap - 1] = '\0';
    return o.len;
}
