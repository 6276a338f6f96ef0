/* fn_query.h - the checks every server applies to a query's text before any
 * work is done for it. The coordinator and the shards call the same function
 * with their own limits, so a shard called directly is exactly as strict as
 * the coordinator (issue 6).
 *
 * Messages start with the field's name ("query: ...") and name the limit
 * that was crossed, so a client can tell what to change.
 */
#ifndef FUNNEL_FN_QUERY_H
#define FUNNEL_FN_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"

#define FN_QUERY_DEFAULT_MAX_BYTES 4096
#define FN_QUERY_DEFAULT_MAX_WORDS 1024
/* Distinct terms after analysis; enforced where the analyzer runs (shards). */
#define FN_QUERY_DEFAULT_MAX_TERMS 256

typedef struct fn_query_limits {
    size_t max_bytes;       /* longest query text, bytes */
    uint32_t max_words;     /* most words (runs of letters/digits) in the text */
} fn_query_limits;

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int fn_utf8_valid(const char *s, size_t n);

/* 1 if s (valid UTF-8) holds only white space (ASCII, or Unicode Zs/Zl/Zp). */
int fn_text_is_blank(const char *s, size_t n);
/* No query text at all: NULL, empty or only white space (a request may
 * then carry a vector alone). */
int fn_query_is_blank(const char *q);

/* Words in s (valid UTF-8): maximal runs of letters and digits (Unicode L*
 * and N*), as the analyzer tokenizes. Stops counting past `stop`. */
size_t fn_text_words(const char *s, size_t n, size_t stop);

/* Check a query text: present, at most max_bytes, valid UTF-8, not blank,
 * at most max_words words. q may be NULL (= empty). Returns 0 or FN_EINVAL
 * with "query: ..." in eb. */
int fn_query_check(const char *q, const fn_query_limits *lim, fn_errbuf *eb);

#endif
