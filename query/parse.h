/* parse.h - the query language: one parser for the coordinator and the
 * shards (docs/query-language.md has the grammar, the semantics, every
 * error message and the limits).
 *
 *     heat transfer              words; the default operator joins them
 *     +heat -radiation           required, excluded
 *     "heat transfer" AND NOT x  phrase, AND, NOT (NOT > juxtaposition > AND > OR)
 *     title:(heat OR cold)       a field on a word, a phrase or a group
 *
 * The parse gives a tree of TERM, PHRASE and BOOL nodes, normalised so that
 * its canonical print (fn_qtree_print) is stable: parsing the print again
 * (mode ANY) gives the same tree. Operators never become words: the only
 * way to search for the word AND, or for "-x", is to quote it.
 *
 * Ownership: every node, array and word of a tree lives in the arena given
 * to fn_qparse; the tree is valid until that arena is reset or freed, and
 * one fn_arena_free releases it. Nothing else is allocated. The parser keeps
 * no state between calls and is safe to call from many threads (one arena
 * each).
 *
 * Cost: one pass over the text, O(n) time and memory; recursion is bounded
 * by max_depth (parentheses), so no input can exhaust the stack.
 */
#ifndef FUNNEL_QUERY_PARSE_H
#define FUNNEL_QUERY_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "fn_arena.h"
#include "fn_error.h"

#define FN_QPARSE_DEFAULT_MAX_NODES 1024
#define FN_QPARSE_DEFAULT_MAX_DEPTH 32
/* A larger max_depth is lowered to this: the parser and fn_qtree_print
 * recurse once per level (a few hundred bytes of stack each). */
#define FN_QPARSE_MAX_DEPTH_CAP 256

typedef enum fn_qkind { FN_Q_TERM, FN_Q_PHRASE, FN_Q_BOOL } fn_qkind;
typedef enum fn_qoccur { FN_Q_SHOULD, FN_Q_MUST, FN_Q_NOT } fn_qoccur;
typedef enum fn_qfield { FN_QF_ANY = 0, FN_QF_TITLE, FN_QF_BODY } fn_qfield;

typedef struct fn_qnode fn_qnode;
struct fn_qnode {
    fn_qkind kind;
    fn_qoccur occur;          /* as a kid of its parent; FN_Q_MUST for the root */
    fn_qfield field;          /* TERM, PHRASE: the field it must be in; FN_QF_ANY for a BOOL */
    uint32_t col;             /* 1-based column (code points) where its text starts */
    const char *word;         /* TERM: NUL-terminated, as typed; NULL otherwise */
    const char **words;       /* PHRASE: nwords >= 2 words, as typed */
    size_t nwords;
    fn_qnode **kids;          /* BOOL: nkids >= 1 kids in input order */
    size_t nkids;
};

/* A BOOL matches a document when every MUST kid matches, no NOT kid
 * matches, and, if it has no MUST kid, at least one SHOULD kid matches.
 * Every BOOL of a parsed tree has a MUST or a SHOULD kid. */

typedef struct fn_qparse_opts {
    int mode_all;             /* the default operator: 0 = ANY (SHOULD), 1 = ALL (MUST) */
    size_t max_nodes;         /* most nodes in the tree (0 = FN_QPARSE_DEFAULT_MAX_NODES) */
    unsigned max_depth;       /* most nested parentheses (0 = default; capped at FN_QPARSE_MAX_DEPTH_CAP) */
} fn_qparse_opts;

/* Fill o with the defaults: mode ANY, 1024 nodes, 32 levels. */
void fn_qparse_defaults(fn_qparse_opts *o);

/* Parse text[0, len) into a tree.
 * @param[in]  text  UTF-8 (callers check with fn_utf8_valid; on invalid
 *                   bytes the parser still reads only text[0, len) and
 *                   returns some result). May be NULL when len == 0.
 * @param[in]  o     options; NULL = the defaults.
 * @param[in]  a     the arena every node, array and word is allocated in.
 * @param[out] root  the tree (root->occur == FN_Q_MUST); NULL on error.
 * @param[out] eb    message on error (may be NULL).
 * @return 0; FN_EINVAL with "query: ... at column N" (or "query: empty")
 *         for a malformed query or a crossed limit; -ENOMEM ("query: out of
 *         memory") when the arena cannot grow. On error the arena may hold
 *         partial work; it is released with the arena. */
int fn_qparse(const char *text, size_t len, const fn_qparse_opts *o, fn_arena *a,
              fn_qnode **root, fn_errbuf *eb);

/* The canonical text of a tree, snprintf-like: writes at most cap bytes
 * including a terminating NUL (buf may be NULL when cap == 0) and returns
 * the length the whole text needs, without the NUL.
 *   TERM   word, title:word; quoted ("AND", title:"-x") when the bare word
 *          would read as an operator or a field
 *   PHRASE "w1 w2", body:"w1 w2"
 *   BOOL   (k1 k2 ...), each kid prefixed by + (MUST), - (NOT) or nothing
 *          (SHOULD), kids in input order. */
size_t fn_qtree_print(const fn_qnode *n, char *buf, size_t cap);

/* 1 if the tree is a plain bag of words, which keeps the bag-of-words fast
 * path: a TERM in FN_QF_ANY (*all_must = 1), or a BOOL whose kids are all
 * FN_QF_ANY TERMs with one occur, all SHOULD (*all_must = 0) or all MUST
 * (*all_must = 1). 0 otherwise (*all_must untouched). all_must may be NULL. */
int fn_qtree_is_bag(const fn_qnode *n, int *all_must);

#endif
