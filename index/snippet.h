/* snippet.h - the highlighted best passage of a document body for a hit.
 *
 * Given a body and the query's ANALYZED terms (as the query analyzer produced
 * them: "heat", "transfer"), pick the window of the body (at most max_bytes of
 * the original text, cut between tokens, starting at a sentence start when
 * one is within reach) that best covers the terms, and return it as clean
 * UTF-8 with the byte ranges of the matched words. A body token matches when
 * its analyzed form equals a term, so "heat" marks "Heating" and "HEATED".
 * The algorithm, its limits and its cost: docs/snippets.md.
 *
 * Bounded work: only the first IDX_SNIPPET_SCAN_MAX bytes of the body are
 * analyzed (cut back to a whitespace when there is one in the last KiB);
 * terms further on are not seen. Time is linear in that prefix plus the
 * number of terms.
 */
#ifndef FUNNEL_INDEX_SNIPPET_H
#define FUNNEL_INDEX_SNIPPET_H

#include <stddef.h>
#include <stdint.h>

#include "analyzer.h"
#include "fn_error.h"

#define IDX_SNIPPET_SCAN_MAX (64u * 1024u)  /* bytes of the body analyzed, at most */

typedef struct idx_snippet_opts {
    size_t max_bytes;           /* passage length target in bytes of the original text; 0 = 240 */
    size_t max_marks;           /* marks kept (the first ones); 0 = 64 */
} idx_snippet_opts;

/* The result. text and marks are malloc'd by idx_snippet_make and owned by
 * the caller, who releases them with idx_snippet_free.
 *
 * text: the passage, len bytes plus a NUL, valid UTF-8 always (each run of
 * invalid bytes of the body becomes one U+FFFD), whole tokens only, runs of
 * ASCII whitespace and control bytes collapsed to one space, no leading or
 * trailing space. "…" (U+2026) is prefixed when the passage does not start
 * at the body's first word, and suffixed when body text follows it. len is
 * at most max_bytes + 6 for a valid UTF-8 body (3 * max_bytes + 6 in any case)
 * unless a single token is longer than max_bytes (it is then kept whole).
 * Never NULL after success: an empty body gives "" and no marks.
 *
 * marks: nmarks byte ranges [start, end) of text holding matched words,
 * ascending and non-overlapping, each exactly the bytes of one body token as
 * idx_analyze_spans reports it. NULL when nmarks is 0. */
typedef struct idx_snippet {
    char *text;
    size_t len;
    uint32_t (*marks)[2];
    size_t nmarks;
} idx_snippet;

/* Make the snippet of len bytes of body (need not be NUL-terminated; may be
 * NULL when len is 0) for nterms analyzed terms terms[i] of term_lens[i]
 * bytes (borrowed for the call; duplicates and empty terms are ignored).
 * weights[i] (e.g. the term's idf) ranks the terms; NULL = 1 each; a weight
 * that is not a positive finite number counts as 0.001. o may be NULL
 * (defaults). an is the analyzer the index (and so the query terms) used;
 * like every analyzer call this is not thread-safe per analyzer.
 *
 * Returns 0 (out filled), FN_EINVAL (bad arguments; message in eb) or
 * -ENOMEM. On error *out is zeroed and nothing needs freeing. */
int idx_snippet_make(idx_analyzer_t *an, const char *body, size_t len,
                     const char *const *terms, const size_t *term_lens,
                     const double *weights, size_t nterms,
                     const idx_snippet_opts *o, idx_snippet *out, fn_errbuf *eb);

/* Free what idx_snippet_make allocated and zero *s. NULL-safe; safe on a
 * zeroed struct and twice. */
void idx_snippet_free(idx_snippet *s);

#endif
