/* parse.c - the query language parser (parse.h; the grammar, the
 * semantics and every message are in docs/query-language.md).
 *
 * A hand-written recursive-descent parser over a one-token lookahead lexer:
 *
 *     query   := or EOF
 *     or      := and { "OR" and }
 *     and     := seq { "AND" seq }
 *     seq     := unary { unary }
 *     unary   := "NOT" unary | "+" primary | "-" primary | primary
 *     primary := [ FIELD ] ( WORD | PHRASE | "(" or ")" )
 *
 * Each rule builds its node as soon as its operands are parsed and
 * normalises it there (finish_bool), so the tree is normalised bottom-up in
 * one pass and the canonical print of a parse, parsed again, gives itself.
 *
 * Invariants (the tests and the fuzzer check them):
 *  1. A TERM's word is a T_WORD token or a word of a phrase: never AND, OR,
 *     NOT, a + or - that began a token, a parenthesis, a quote or a field
 *     prefix - those are tokens of their own and the parser has no path
 *     that turns a token other than T_WORD/T_PHRASE into a leaf.
 *  2. No word is empty or holds white space, '(', ')' or '"'.
 *  3. Every BOOL of a returned tree has a MUST or a SHOULD kid. A BOOL of
 *     only NOT kids exists while an AND may still absorb it (and, below);
 *     anything else that reaches `or` is an error.
 *  4. Recursion: one parse_or per open parenthesis, at most max_depth deep;
 *     the tree is at most 3 BOOLs deeper per level (or, and, seq), which
 *     bounds fn_qtree_print's recursion too.
 *  5. The lexer reads only text[0, len), whatever the bytes.
 */
#include "parse.h"

#include <errno.h>
#include <string.h>
#include <utf8proc.h>

/* ---- lexer ---- */

typedef enum tok_type {
    T_EOF, T_WORD, T_PHRASE, T_LPAREN, T_RPAREN, T_PLUS, T_MINUS, T_AND, T_OR, T_NOT, T_FIELD
} tok_type;

typedef struct token {
    tok_type type;
    int spaced;             /* white space (or the start of the text) right before it */
    size_t off, len;        /* bytes of the token (a phrase: with its quotes) */
    uint32_t col;           /* 1-based, in code points */
    fn_qfield field;        /* T_FIELD */
} token;

typedef struct parser {
    const unsigned char *s;
    size_t n;
    size_t pos;             /* the lexer's position */
    uint32_t col;           /* column of s[pos] */
    token tok;              /* the lookahead */
    int mode_all;
    size_t max_nodes;
    unsigned max_depth, depth;
    fn_qfield field;        /* inside title:( ... ): that field, else FN_QF_ANY */
    size_t leaves;
    fn_arena *a;
    fn_errbuf *eb;
} parser;

static const char *field_name(fn_qfield f)
{
    return f == FN_QF_TITLE ? "title:" : f == FN_QF_BODY ? "body:" : "";
}

/* Bytes of the white-space character at s[0] (0 if it is none): ASCII
 * space and control characters, U+0085 and Unicode Zs/Zl/Zp - what
 * fn_text_is_blank calls blank, plus the C0 controls and DEL. */
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

static int is_punct(unsigned char c)
{
    return c == '(' || c == ')' || c == '"';
}

/* Move the lexer k bytes on; the column counts every byte that is not a
 * UTF-8 continuation byte (= code points, for valid text). */
static void adv(parser *P, size_t k)
{
    for (size_t i = 0; i < k; i++)
        if ((P->s[P->pos + i] & 0xC0) != 0x80 && P->col < UINT32_MAX) P->col++;
    P->pos += k;
}

/* End of the word that starts at s[i]: the first white space, parenthesis,
 * quote or the end. */
static size_t word_end(const parser *P, size_t i)
{
    while (i < P->n && !is_punct(P->s[i]) && !space_len(P->s + i, P->n - i))
        i += char_len(P->s + i, P->n - i);
    return i < P->n ? i : P->n;
}

/* The next token into P->tok. 0, or FN_EINVAL (unterminated quote). */
static int lex(parser *P)
{
    token *t = &P->tok;
    int spaced = P->pos == 0;
    size_t w;
    while (P->pos < P->n && (w = space_len(P->s + P->pos, P->n - P->pos)) > 0) {
        adv(P, w);
        spaced = 1;
    }
    t->spaced = spaced;
    t->off = P->pos;
    t->col = P->col;
    t->field = FN_QF_ANY;
    t->len = 0;
    if (P->pos >= P->n) {
        t->type = T_EOF;
        return 0;
    }
    const unsigned char *p = P->s + P->pos;
    size_t left = P->n - P->pos;
    /* A word runs to white space or punctuation, so every token but a word
     * or a field prefix ends where the next token starts: + and - begin a
     * token only there (+x, (-x, title:-x, --x), and inside a word they
     * are letters of it (C++, x-ray). */
    if (*p == '(' || *p == ')') {
        t->type = *p == '(' ? T_LPAREN : T_RPAREN;
        t->len = 1;
    } else if (*p == '"') {
        const unsigned char *q = memchr(p + 1, '"', left - 1);
        if (!q) return fn_seterr(P->eb, FN_EINVAL, "query: unterminated quote at column %u", t->col);
        t->type = T_PHRASE;
        t->len = (size_t)(q - p) + 1;
    } else if (*p == '+' || *p == '-') {
        t->type = *p == '+' ? T_PLUS : T_MINUS;
        t->len = 1;
    } else {
        size_t wl = word_end(P, P->pos) - P->pos;
        t->type = T_WORD;
        t->len = wl;
        if (wl >= 6 && memcmp(p, "title:", 6) == 0) {
            t->type = T_FIELD;
            t->field = FN_QF_TITLE;
            t->len = 6;
        } else if (wl >= 5 && memcmp(p, "body:", 5) == 0) {
            t->type = T_FIELD;
            t->field = FN_QF_BODY;
            t->len = 5;
        } else if (wl == 3 && memcmp(p, "AND", 3) == 0) {
            t->type = T_AND;
        } else if (wl == 3 && memcmp(p, "NOT", 3) == 0) {
            t->type = T_NOT;
        } else if (wl == 2 && memcmp(p, "OR", 2) == 0) {
            t->type = T_OR;
        }
    }
    adv(P, t->len);
    return 0;
}

static int starts_primary(tok_type t)
{
    return t == T_WORD || t == T_PHRASE || t == T_LPAREN || t == T_FIELD;
}

static int starts_unary(tok_type t)
{
    return starts_primary(t) || t == T_PLUS || t == T_MINUS || t == T_NOT;
}

/* ---- nodes ---- */

/* A node and, for error messages, the operator that set its occur. The
 * public part comes first, so a fn_qnode * of ours is also a qn *. */
typedef struct qn {
    fn_qnode n;
    char op;                /* 0, '+', '-' or 'N' (NOT) */
    uint32_t opcol;
} qn;

static int oom(parser *P)
{
    return fn_seterr(P->eb, -ENOMEM, "query: out of memory");
}

static fn_qnode *node_new(parser *P, fn_qkind kind, uint32_t col)
{
    qn *q = fn_arena_calloc(P->a, 1, sizeof *q);
    if (!q) return NULL;
    q->n.kind = kind;
    q->n.occur = FN_Q_MUST;
    q->n.field = FN_QF_ANY;
    q->n.col = col;
    return &q->n;
}

static int too_many(parser *P, uint32_t col)
{
    return fn_seterr(P->eb, FN_EINVAL, "query: more than %zu nodes (terms, phrases, groups) at column %u",
                     P->max_nodes, col);
}

/* A growing list of kids, in the arena (the old array is left behind:
 * at most as many bytes again as the final one). */
typedef struct kidlist {
    fn_qnode **v;
    size_t n, cap;
} kidlist;

static int kid_push(parser *P, kidlist *l, fn_qnode *k, fn_qoccur occ)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        fn_qnode **v = fn_arena_alloc(P->a, cap * sizeof *v);
        if (!v) return oom(P);
        if (l->n) memcpy(v, l->v, l->n * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    k->occur = occ;
    l->v[l->n++] = k;
    return 0;
}

static int only_not(const fn_qnode *n)
{
    if (n->kind != FN_Q_BOOL) return 0;
    for (size_t i = 0; i < n->nkids; i++)
        if (n->kids[i]->occur != FN_Q_NOT) return 0;
    return 1;
}

/* Can kid k of a parent (which has a MUST kid or not) give its kids to the
 * parent without changing what matches? AND of AND: a MUST kid whose kids
 * are MUST (at least one) and NOT. OR of OR: a SHOULD kid of only SHOULD
 * kids, in a parent without MUST kids (with one, SHOULD kids do not decide
 * the match and the group is kept as typed). */
static int flattens(const fn_qnode *k, int parent_has_must)
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

/* The BOOL of the kids in l, normalised: flattened (see flattens), and a
 * BOOL of one positive kid and no NOT kid is that kid. A BOOL of only NOT
 * kids is returned as it is; `or` rejects it. */
static int finish_bool(parser *P, kidlist *l, uint32_t col, fn_qnode **out)
{
    int has_must = 0;
    size_t total = 0;
    for (size_t i = 0; i < l->n; i++)
        has_must |= l->v[i]->occur == FN_Q_MUST;
    for (size_t i = 0; i < l->n; i++)
        total += flattens(l->v[i], has_must) ? l->v[i]->nkids : 1;
    fn_qnode **kids = fn_arena_alloc(P->a, total * sizeof *kids);
    if (!kids) return oom(P);
    size_t k = 0, pos = 0, neg = 0;
    for (size_t i = 0; i < l->n; i++) {
        fn_qnode *c = l->v[i];
        if (flattens(c, has_must)) {
            for (size_t j = 0; j < c->nkids; j++) kids[k++] = c->kids[j];
        } else {
            kids[k++] = c;
        }
    }
    for (size_t i = 0; i < k; i++) {
        if (kids[i]->occur == FN_Q_NOT) neg++;
        else pos++;
    }
    if (pos == 1 && neg == 0) {
        *out = kids[0];
        return 0;
    }
    fn_qnode *b = node_new(P, FN_Q_BOOL, col);
    if (!b) return oom(P);
    b->kids = kids;
    b->nkids = k;
    *out = b;
    return 0;
}

/* ---- parser ---- */

static int parse_or(parser *P, fn_qnode **out);

static int leaf_count(parser *P, uint32_t col)
{
    if (++P->leaves > P->max_nodes) return too_many(P, col);
    return 0;
}

/* The next word of a phrase's content s[*i, e): its bounds in *wb, *we
 * and *i moved past it; 0 when no word is left. Words are split at white
 * space and at parentheses (punctuation, never part of a word); everything
 * else, operators included, is a word. */
static int phrase_word(const parser *P, size_t *i, size_t e, size_t *wb, size_t *we)
{
    size_t j = *i, w;
    while (j < e && ((w = space_len(P->s + j, e - j)) > 0 || P->s[j] == '(' || P->s[j] == ')'))
        j += w ? w : 1;
    if (j >= e) return 0;
    *wb = j;
    while (j < e && P->s[j] != '(' && P->s[j] != ')' && !space_len(P->s + j, e - j))
        j += char_len(P->s + j, e - j);
    *we = *i = j < e ? j : e;
    return 1;
}

/* A phrase token: a TERM for one word, a PHRASE for more. */
static int make_phrase(parser *P, const token *t, fn_qfield field, uint32_t col, fn_qnode **out)
{
    size_t b = t->off + 1, e = t->off + t->len - 1, nw = 0, i, wb, we;
    for (i = b; phrase_word(P, &i, e, &wb, &we);) nw++;
    if (nw == 0) return fn_seterr(P->eb, FN_EINVAL, "query: empty phrase at column %u", t->col);
    fn_qnode *n = node_new(P, nw == 1 ? FN_Q_TERM : FN_Q_PHRASE, col);
    const char **words = fn_arena_alloc(P->a, nw * sizeof *words);
    if (!n || !words) return oom(P);
    size_t k = 0;
    for (i = b; phrase_word(P, &i, e, &wb, &we);) {
        if (!(words[k++] = fn_arena_strndup(P->a, (const char *)P->s + wb, we - wb))) return oom(P);
    }
    n->field = field;
    if (nw == 1) {
        n->word = words[0];
    } else {
        n->words = words;
        n->nwords = nw;
    }
    *out = n;
    return leaf_count(P, col);
}

static int nested_field(parser *P, const token *t)
{
    return fn_seterr(P->eb, FN_EINVAL, "query: field %s inside the field %s at column %u",
                     field_name(t->field), field_name(P->field), t->col);
}

/* primary := [ FIELD ] ( WORD | PHRASE | "(" or ")" ); P->tok starts it. */
static int parse_primary(parser *P, fn_qnode **out)
{
    token t = P->tok;
    uint32_t col = t.col;
    fn_qfield field = P->field;
    int rc;
    if (t.type == T_FIELD) {
        if (P->field != FN_QF_ANY) return nested_field(P, &t);
        if ((rc = lex(P))) return rc;
        if (P->tok.type == T_FIELD && !P->tok.spaced) {
            P->field = t.field;     /* for the message */
            return nested_field(P, &P->tok);
        }
        if (P->tok.spaced || !(P->tok.type == T_WORD || P->tok.type == T_PHRASE || P->tok.type == T_LPAREN))
            return fn_seterr(P->eb, FN_EINVAL,
                             "query: %s must be followed directly by a word, a phrase or ( at column %u",
                             field_name(t.field), t.col);
        field = t.field;
        t = P->tok;
    }
    switch (t.type) {
    case T_WORD: {
        fn_qnode *n = node_new(P, FN_Q_TERM, col);
        if (!n) return oom(P);
        n->field = field;
        n->word = fn_arena_strndup(P->a, (const char *)P->s + t.off, t.len);
        if (!n->word) return oom(P);
        if ((rc = leaf_count(P, col))) return rc;
        *out = n;
        return lex(P);
    }
    case T_PHRASE:
        if ((rc = make_phrase(P, &t, field, col, out))) return rc;
        return lex(P);
    case T_LPAREN: {
        if (++P->depth > P->max_depth)
            return fn_seterr(P->eb, FN_EINVAL, "query: parentheses nested deeper than %u levels at column %u",
                             P->max_depth, t.col);
        fn_qfield saved = P->field;
        P->field = field;
        if ((rc = lex(P))) return rc;
        if (P->tok.type == T_RPAREN)
            return fn_seterr(P->eb, FN_EINVAL, "query: empty parentheses at column %u", t.col);
        if (P->tok.type == T_EOF)
            return fn_seterr(P->eb, FN_EINVAL, "query: unbalanced ( at column %u: no matching )", t.col);
        fn_qnode *n;
        if ((rc = parse_or(P, &n))) return rc;
        if (P->tok.type != T_RPAREN)    /* parse_or stops only at ) or the end */
            return fn_seterr(P->eb, FN_EINVAL, "query: unbalanced ( at column %u: no matching )", t.col);
        P->field = saved;
        P->depth--;
        if (n->kind == FN_Q_BOOL) n->col = col;
        *out = n;
        return lex(P);
    }
    default:    /* callers check starts_primary first */
        return fn_seterr(P->eb, FN_EINVAL, "query: unexpected token at column %u", t.col);
    }
}

/* unary := "NOT" unary | "+" primary | "-" primary | primary. *op is the
 * operator: 0, '+', '-' or 'N'. NOT before another operator is an error:
 * NOT NOT x and NOT -x would be double negations, NOT +x a contradiction. */
static int parse_unary(parser *P, fn_qnode **out, char *op)
{
    token t = P->tok;
    int rc;
    *op = 0;
    if (t.type == T_NOT || t.type == T_PLUS || t.type == T_MINUS) {
        if ((rc = lex(P))) return rc;
        if (t.type == T_NOT) {
            tok_type nt = P->tok.type;
            if (nt == T_NOT || nt == T_PLUS || nt == T_MINUS)
                return fn_seterr(P->eb, FN_EINVAL, "query: NOT followed by %s at column %u: use one of them",
                                 nt == T_NOT ? "NOT" : nt == T_PLUS ? "+" : "-", t.col);
            if (!starts_primary(nt))
                return fn_seterr(P->eb, FN_EINVAL, "query: NOT without an operand at column %u", t.col);
        } else if (P->tok.spaced || !starts_primary(P->tok.type)) {
            return fn_seterr(P->eb, FN_EINVAL,
                             "query: %c must be followed directly by a word, a phrase or ( at column %u",
                             t.type == T_PLUS ? '+' : '-', t.col);
        }
        *op = t.type == T_NOT ? 'N' : t.type == T_PLUS ? '+' : '-';
    }
    if ((rc = parse_primary(P, out))) return rc;
    qn *q = (qn *)*out;
    q->op = *op;
    q->opcol = *op ? t.col : (*out)->col;
    return 0;
}

/* seq := unary { unary }; P->tok starts a unary. */
static int parse_seq(parser *P, fn_qnode **out)
{
    uint32_t col = P->tok.col;
    fn_qoccur dflt = P->mode_all ? FN_Q_MUST : FN_Q_SHOULD;
    fn_qnode *n;
    char op;
    int rc;
    if ((rc = parse_unary(P, &n, &op))) return rc;
    if (op == 0 && !starts_unary(P->tok.type)) {
        *out = n;
        return 0;
    }
    kidlist l = { NULL, 0, 0 };
    for (;;) {
        fn_qoccur occ = op == 0 ? dflt : op == '+' ? FN_Q_MUST : FN_Q_NOT;
        if ((rc = kid_push(P, &l, n, occ))) return rc;
        if (!starts_unary(P->tok.type)) break;
        if ((rc = parse_unary(P, &n, &op))) return rc;
    }
    return finish_bool(P, &l, col, out);
}

/* One operand of AND: a BOOL of only NOT kids gives them to the AND
 * (a AND NOT b = +a -b), anything else is a MUST kid. */
static int and_operand(parser *P, kidlist *l, fn_qnode *n)
{
    if (!only_not(n)) return kid_push(P, l, n, FN_Q_MUST);
    for (size_t i = 0; i < n->nkids; i++) {
        int rc = kid_push(P, l, n->kids[i], FN_Q_NOT);
        if (rc) return rc;
    }
    return 0;
}

/* and := seq { "AND" seq }; P->tok starts a unary. */
static int parse_and(parser *P, fn_qnode **out)
{
    uint32_t col = P->tok.col;
    fn_qnode *n;
    int rc;
    if ((rc = parse_seq(P, &n))) return rc;
    if (P->tok.type != T_AND) {
        *out = n;
        return 0;
    }
    kidlist l = { NULL, 0, 0 };
    if ((rc = and_operand(P, &l, n))) return rc;
    while (P->tok.type == T_AND) {
        uint32_t opcol = P->tok.col;
        if ((rc = lex(P))) return rc;
        if (!starts_unary(P->tok.type))
            return fn_seterr(P->eb, FN_EINVAL, "query: AND without a right operand at column %u", opcol);
        if ((rc = parse_seq(P, &n))) return rc;
        if ((rc = and_operand(P, &l, n))) return rc;
    }
    return finish_bool(P, &l, col, out);
}

/* An operand of OR, a group or the query must match something by itself:
 * a BOOL of only NOT kids that no AND took is an error. */
static int positive(parser *P, const fn_qnode *n)
{
    if (!only_not(n)) return 0;
    const qn *k = (const qn *)n->kids[0];
    if (k->op == '-')
        return fn_seterr(P->eb, FN_EINVAL,
                         "query: - at column %u excludes from nothing: combine it with a positive term (a -b)",
                         k->opcol);
    return fn_seterr(P->eb, FN_EINVAL,
                     "query: NOT at column %u excludes from nothing: combine it with a positive term (a AND NOT b)",
                     k->opcol);
}

/* or := and { "OR" and }; stops at ) or the end. */
static int parse_or(parser *P, fn_qnode **out)
{
    uint32_t col = P->tok.col;
    fn_qnode *n;
    int rc;
    if (P->tok.type == T_AND || P->tok.type == T_OR)
        return fn_seterr(P->eb, FN_EINVAL, "query: %s without a left operand at column %u",
                         P->tok.type == T_AND ? "AND" : "OR", P->tok.col);
    if ((rc = parse_and(P, &n)) || (rc = positive(P, n))) return rc;
    if (P->tok.type != T_OR) {
        *out = n;
        return 0;
    }
    kidlist l = { NULL, 0, 0 };
    if ((rc = kid_push(P, &l, n, FN_Q_SHOULD))) return rc;
    while (P->tok.type == T_OR) {
        uint32_t opcol = P->tok.col;
        if ((rc = lex(P))) return rc;
        if (!starts_unary(P->tok.type))
            return fn_seterr(P->eb, FN_EINVAL, "query: OR without a right operand at column %u", opcol);
        if ((rc = parse_and(P, &n)) || (rc = positive(P, n))) return rc;
        if ((rc = kid_push(P, &l, n, FN_Q_SHOULD))) return rc;
    }
    return finish_bool(P, &l, col, out);
}

/* The (max_nodes + 1)-th node in pre-order, or NULL. */
static const fn_qnode *over_limit(const fn_qnode *n, size_t *left)
{
    if (*left == 0) return n;
    (*left)--;
    for (size_t i = 0; n->kind == FN_Q_BOOL && i < n->nkids; i++) {
        const fn_qnode *o = over_limit(n->kids[i], left);
        if (o) return o;
    }
    return NULL;
}

void fn_qparse_defaults(fn_qparse_opts *o)
{
    o->mode_all = 0;
    o->max_nodes = FN_QPARSE_DEFAULT_MAX_NODES;
    o->max_depth = FN_QPARSE_DEFAULT_MAX_DEPTH;
}

int fn_qparse(const char *text, size_t len, const fn_qparse_opts *o, fn_arena *a,
              fn_qnode **root, fn_errbuf *eb)
{
    *root = NULL;
    if (!text && len) return fn_seterr(eb, FN_EINVAL, "query: no text");
    fn_qparse_opts d;
    if (!o) {
        fn_qparse_defaults(&d);
        o = &d;
    }
    parser P = {
        .s = (const unsigned char *)text, .n = len, .col = 1,
        .mode_all = o->mode_all != 0,
        .max_nodes = o->max_nodes ? o->max_nodes : FN_QPARSE_DEFAULT_MAX_NODES,
        .max_depth = o->max_depth ? o->max_depth : FN_QPARSE_DEFAULT_MAX_DEPTH,
        .field = FN_QF_ANY, .a = a, .eb = eb,
    };
    if (P.max_depth > FN_QPARSE_MAX_DEPTH_CAP) P.max_depth = FN_QPARSE_MAX_DEPTH_CAP;
    int rc;
    if ((rc = lex(&P))) return rc;
    if (P.tok.type == T_EOF) return fn_seterr(eb, FN_EINVAL, "query: empty");
    if (P.tok.type == T_RPAREN)
        return fn_seterr(eb, FN_EINVAL, "query: unbalanced ) at column %u: no matching (", P.tok.col);
    fn_qnode *n;
    if ((rc = parse_or(&P, &n))) return rc;
    if (P.tok.type == T_RPAREN)
        return fn_seterr(eb, FN_EINVAL, "query: unbalanced ) at column %u: no matching (", P.tok.col);
    size_t left = P.max_nodes;
    const fn_qnode *over = over_limit(n, &left);
    if (over) return too_many(&P, over->col);
    n->occur = FN_Q_MUST;
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

/* Would the bare word read back as something else: an operator, a + or -
 * that begins a token, or a field prefix? Then it is printed quoted (a
 * phrase of one word is that word). */
static int needs_quotes(const char *w)
{
    return w[0] == '\0' || w[0] == '+' || w[0] == '-' || strcmp(w, "AND") == 0 || strcmp(w, "OR") == 0 ||
           strcmp(w, "NOT") == 0 || strncmp(w, "title:", 6) == 0 || strncmp(w, "body:", 5) == 0;
}

static void print_node(out *o, const fn_qnode *n)
{
    switch (n->kind) {
    case FN_Q_TERM:
        puts_(o, field_name(n->field));
        if (needs_quotes(n->word)) {
            put(o, "\"", 1);
            puts_(o, n->word);
            put(o, "\"", 1);
        } else {
            puts_(o, n->word);
        }
        break;
    case FN_Q_PHRASE:
        puts_(o, field_name(n->field));
        put(o, "\"", 1);
        for (size_t i = 0; i < n->nwords; i++) {
            if (i) put(o, " ", 1);
            puts_(o, n->words[i]);
        }
        put(o, "\"", 1);
        break;
    case FN_Q_BOOL:
        put(o, "(", 1);
        for (size_t i = 0; i < n->nkids; i++) {
            if (i) put(o, " ", 1);
            if (n->kids[i]->occur == FN_Q_MUST) put(o, "+", 1);
            else if (n->kids[i]->occur == FN_Q_NOT) put(o, "-", 1);
            print_node(o, n->kids[i]);
        }
        put(o, ")", 1);
        break;
    }
}

size_t fn_qtree_print(const fn_qnode *n, char *buf, size_t cap)
{
    out o = { buf, buf ? cap : 0, 0 };
    if (n) print_node(&o, n);
    if (o.cap) o.buf[o.len < o.cap ? o.len : o.cap - 1] = '\0';
    return o.len;
}

int fn_qtree_is_bag(const fn_qnode *n, int *all_must)
{
    if (!n) return 0;
    if (n->kind == FN_Q_TERM) {
        if (n->field != FN_QF_ANY) return 0;
        if (all_must) *all_must = 1;
        return 1;
    }
    if (n->kind != FN_Q_BOOL || n->nkids == 0) return 0;
    fn_qoccur occ = n->kids[0]->occur;
    if (occ == FN_Q_NOT) return 0;
    for (size_t i = 0; i < n->nkids; i++) {
        const fn_qnode *k = n->kids[i];
        if (k->kind != FN_Q_TERM || k->field != FN_QF_ANY || k->occur != occ) return 0;
    }
    if (all_must) *all_must = occ == FN_Q_MUST;
    return 1;
}
