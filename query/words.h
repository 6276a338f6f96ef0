/* words.h - words as query understanding sees them (spelling, intent):
 * maximal runs of letters and digits (Unicode L* and N*), every other
 * character, an apostrophe too, separating; folded by NFKC case folding with
 * marks stripped, never stemmed. One split for the corpus and the queries,
 * so the two always agree. (The index's analyzer, index/analyzer.h, joins
 * apostrophes and stems; the shards use it.)
 */
#ifndef FUNNEL_QUERY_WORDS_H
#define FUNNEL_QUERY_WORDS_H

#include <stddef.h>
#include <stdint.h>

/* 1 if code point c is a letter or a digit. */
int qw_is_word_cp(int32_t c);

/* The next word of s[*i..n): 1 with its start and byte length, 0 when none
 * is left. Invalid UTF-8 bytes separate words. */
int qw_next_word(const char *s, size_t n, size_t *i, size_t *start, size_t *wlen);

/* Fold one word into out[cap]: its length, or 0 when it does not fit or
 * folds to nothing. */
size_t qw_fold(const char *w, size_t len, char *out, size_t cap);

#endif
