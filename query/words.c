/* words.c - how query understanding splits and folds words (words.h). */
#include "words.h"

#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#define FOLD_OPTS (UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | \
                   UTF8PROC_CASEFOLD | UTF8PROC_STRIPMARK | UTF8PROC_IGNORE)

int qw_is_word_cp(int32_t c)
{
    if (c < 128) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    utf8proc_category_t cat = utf8proc_category(c);
    return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
           (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

/* The next word of s[*i..n): its start and byte length; 0 when none is left.
 * Invalid UTF-8 bytes separate words. */
int qw_next_word(const char *s, size_t n, size_t *i, size_t *start, size_t *wlen)
{
    const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)s;
    size_t p = *i;
    utf8proc_int32_t c;
    while (p < n) {
        utf8proc_ssize_t k = utf8proc_iterate(u + p, (utf8proc_ssize_t)(n - p), &c);
        if (k > 0 && qw_is_word_cp(c)) break;
        p += k > 0 ? (size_t)k : 1;
    }
    if (p >= n) {
        *i = n;
        return 0;
    }
    *start = p;
    while (p < n) {
        utf8proc_ssize_t k = utf8proc_iterate(u + p, (utf8proc_ssize_t)(n - p), &c);
        if (k <= 0 || !qw_is_word_cp(c)) break;
        p += (size_t)k;
    }
    *wlen = p - *start;
    *i = p;
    return 1;
}

/* Fold one word (NFKC casefold, marks stripped) into out[cap]: its length,
 * or 0 when it does not fit or folds to nothing. */
size_t qw_fold(const char *w, size_t len, char *out, size_t cap)
{
    size_t i;
    for (i = 0; i < len && (unsigned char)w[i] < 128; i++)
        ;
    if (i == len) {
        if (len > cap) return 0;
        for (i = 0; i < len; i++)
            out[i] = (char)((w[i] >= 'A' && w[i] <= 'Z') ? w[i] + 32 : w[i]);
        return len;
    }
    utf8proc_uint8_t *m = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)w, (utf8proc_ssize_t)len, &m, FOLD_OPTS);
    size_t got = 0;
    if (r > 0 && (size_t)r <= cap) {
        memcpy(out, m, (size_t)r);
        got = (size_t)r;
    }
    free(m);
    return got;
}

