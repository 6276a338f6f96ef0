/* filter.h - the filter language: which documents a search may return, by
 * their attributes (docs/query-language.md, "Filters", has the grammar,
 * every error message and the limits). One parser for the coordinator
 * (which refuses a bad filter with INVALID_ARGUMENT before fan-out) and
 * the shards (which evaluate it inside selection, index/attrs.h).
 *
 *     vertical:news published_at>=1600000000      clauses; juxtaposition is AND
 *     vertical:news,video                          any of the values
 *     labels:all(sports,football)  labels:any(a,b) a multi-valued attribute: all of / any of
 *     popularity:1.5..3  popularity<2              numeric ranges (bounds inclusive for ..)
 *     id:d1,d7,"doc 9"                             external ids
 *     -lang:de   NOT lang:de   (a OR b) AND c      negation, OR, AND, parentheses
 *
 * Precedence: NOT (and '-') > juxtaposition = AND > OR.
 *
 * Ownership: every node and string of a tree lives in the arena given to
 * fn_fparse; one fn_arena_free releases it. The parser keeps no state
 * between calls (thread-safe, one arena each). Recursion is bounded by
 * FN_FPARSE_MAX_DEPTH, the tree by FN_FPARSE_MAX_NODES, a value list by
 * FN_FPARSE_MAX_VALUES, the text by FN_FPARSE_MAX_BYTES.
 */
#ifndef FUNNEL_QUERY_FILTER_H
#define FUNNEL_QUERY_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "fn_arena.h"
#include "fn_error.h"

#define FN_FPARSE_MAX_BYTES  (1u << 20)   /* filter text */
#define FN_FPARSE_MAX_NODES  4096         /* nodes of the tree */
#define FN_FPARSE_MAX_DEPTH  32           /* nested parentheses / NOTs */
#define FN_FPARSE_MAX_VALUES 10000        /* values of one clause (an id list) */
#define FN_FPARSE_MAX_VALUE_BYTES 511     /* one value (an external id is 1..511 bytes) */

typedef enum fn_fkind {
    FN_F_AND,        /* kids: all must match */
    FN_F_OR,         /* kids: at least one */
    FN_F_NOT,        /* one kid: must not match */
    FN_F_VALUES,     /* a string attribute holds any (or, for labels, all) of values */
    FN_F_RANGE       /* a numeric attribute lies in [lo, hi] (with the open/closed flags) */
} fn_fkind;

typedef enum fn_fattr {
    FN_FA_VERTICAL,      /* string, one value a document (or none) */
    FN_FA_LANG,          /* string, one value a document (or none) */
    FN_FA_LABELS,        /* strings, any number a document */
    FN_FA_ID,            /* the external id */
    FN_FA_POPULARITY,    /* number >= 0 (0 when the document has none) */
    FN_FA_PUBLISHED_AT,  /* unix seconds (a document without one never matches a range) */
    FN_FA_COUNT
} fn_fattr;

typedef struct fn_fnode fn_fnode;
struct fn_fnode {
    fn_fkind kind;
    uint32_t col;                /* 1-based column (code points) where its text starts */
    /* AND, OR: nkids >= 2; NOT: nkids == 1 */
    fn_fnode **kids;
    size_t nkids;
    /* VALUES, RANGE */
    fn_fattr attr;
    /* VALUES: nvalues >= 1 strings (NUL-terminated, 1..FN_FPARSE_MAX_VALUE_BYTES
     * bytes, as typed or unquoted), in input order, duplicates removed */
    const char **values;
    size_t nvalues;
    int all;                     /* VALUES of labels: 1 = all of them (labels:all(...)) */
    /* RANGE: lo <= x <= hi with lo_open / hi_open making either end strict;
     * an absent end is -inf / +inf (closed). popularity's bounds are compared
     * as the index stores popularity: float32 (the bound rounded to float
     * first); published_at's bounds are whole seconds (integers in the
     * text; a fractional bound is an error). fn_fparse stores popularity
     * bounds already rounded to float (as doubles), and -0 as 0. */
    double lo, hi;
    int lo_open, hi_open;
};

/* Parse text[0, len) (UTF-8) into a tree. Empty or blank text is not a
 * filter: callers treat it as "no filter" before calling.
 * @return 0 and *root; FN_EINVAL with "filter: <what> at column N" for a
 *         malformed filter, an unknown attribute ("filter: unknown attribute
 *         \"color\" at column 1 (vertical, lang, labels, id, popularity,
 *         published_at)"), a value of the wrong type or a crossed limit;
 *         -ENOMEM when the arena cannot grow. */
int fn_fparse(const char *text, size_t len, fn_arena *a, fn_fnode **root, fn_errbuf *eb);

/* The canonical text of a tree: parsing it again gives the same tree.
 * Writes at most cap bytes (NUL included); returns the length it needs
 * (like snprintf). AND is juxtaposition, OR " OR ", NOT "-", an AND or OR
 * inside another node in parentheses: (lang:a OR lang:b) -vertical:x. */
size_t fn_ftree_print(const fn_fnode *root, char *buf, size_t cap);

/* "vertical", "lang", ... */
const char *fn_fattr_name(fn_fattr a);

#endif
