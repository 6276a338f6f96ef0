/* analyzer.h - text analysis shared by indexing and querying.
 *
 * Pipeline: UTF-8 validation -> NFKC case folding (utf8proc, stripping marks
 * and ignorables) -> tokens = maximal runs of letters/digits (Unicode
 * categories L* and N*; an apostrophe inside a word is dropped, "don't" ->
 * "dont") -> stopword removal -> Snowball stemming (libstemmer).
 * Invalid UTF-8 bytes act as separators; they never fail the analysis.
 * Tokens longer than max_token_bytes after folding are skipped (but still
 * advance the position counter).
 *
 * An idx_analyzer_t is NOT thread-safe (libstemmer keeps state): create one
 * per thread. Creation is cheap.
 */
#ifndef FUNNEL_INDEX_ANALYZER_H
#define FUNNEL_INDEX_ANALYZER_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"

typedef struct idx_analyzer idx_analyzer_t;   /* opaque */

typedef struct idx_analyzer_opts {
    const char *stemmer;        /* Snowball algorithm name ("english", "porter", ...) or "none"; NULL = "english" */
    const char *stopwords;      /* "english" (built-in list), "none", or a path to a file with one word a line; NULL = "english" */
    size_t max_token_bytes;     /* 0 = 64 */
} idx_analyzer_opts;

/* Called once per token. term is NOT NUL-terminated and valid only during the
 * call. pos counts every token seen, including stopwords (for phrase/proximity
 * later). Return non-zero to stop; idx_analyze then returns that value. */
typedef int (*idx_token_cb)(void *ud, const char *term, size_t len, uint32_t pos);

/* Create an analyzer. opts may be NULL (defaults). Returns 0, or FN_EINVAL
 * (unknown stemmer, unreadable stopword file; message in eb), -ENOMEM. */
int idx_analyzer_create(const idx_analyzer_opts *opts, idx_analyzer_t **out, fn_errbuf *eb);
void idx_analyzer_destroy(idx_analyzer_t *a);

/* Analyze len bytes of text (need not be NUL-terminated). Returns 0, the
 * callback's non-zero value, or -ENOMEM. */
int idx_analyze(idx_analyzer_t *a, const char *text, size_t len, idx_token_cb cb, void *ud);

/* Like idx_token_cb, with the token's bytes in the ORIGINAL text: [start,
 * end) covers the code points the token was folded from, from the one giving
 * its first letter/digit to the one giving its last (an inner apostrophe or
 * ignorable code point is inside; surrounding punctuation is not). Spans lie
 * on UTF-8 code point boundaries, never include an ASCII separator or an
 * invalid byte, and neither start nor end ever decreases from one token to
 * the next. A code point that folds to several tokens (U+33C2, folded to
 * "a.m.") gives each of them its whole bytes, so two spans may be equal.
 * (Should the per-code-point mapping ever fail, which NFKC with marks
 * stripped does not do, a span widens to the end of its separator-free run.) */
typedef int (*idx_span_cb)(void *ud, const char *term, size_t len, uint32_t pos,
                           size_t start, size_t end);

/* idx_analyze with spans: exactly the same (term, pos) sequence as
 * idx_analyze on the same text, stopwords skipped but counted. Costs about
 * one extra utf8proc call per non-ASCII code point (ASCII text: nothing
 * measurable). Returns 0, the callback's non-zero value, or -ENOMEM. */
int idx_analyze_spans(idx_analyzer_t *a, const char *text, size_t len, idx_span_cb cb, void *ud);

/* A canonical one-line description of the options, stored in the index
 * metadata so that queries are analyzed exactly as documents were:
 * "stemmer=english;stopwords=english;max_token_bytes=64". Writes at most
 * cap bytes including the NUL; returns the length it needed. */
size_t idx_analyzer_describe(const idx_analyzer_t *a, char *buf, size_t cap);

/* Inverse of describe: parse such a string into opts. The strings in opts
 * point into `storage` (cap bytes, caller-owned). Returns 0 or FN_EINVAL. */
int idx_analyzer_opts_parse(const char *desc, idx_analyzer_opts *opts, char *storage, size_t cap);

/* Is w (folded, unstemmed) in the built-in English list? For tests/docs. */
int idx_stopword_english(const char *w, size_t len);

#endif
