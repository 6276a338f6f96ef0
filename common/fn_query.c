/* fn_query.c - see fn_query.h. */
#include "fn_query.h"

#include <string.h>
#include <utf8proc.h>

int fn_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        unsigned c = *p;
        if (c < 0x80) { p++; continue; }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
        else return 0;   /* continuation byte, C0/C1 overlong lead, or > F4 */
        if ((size_t)(e - p) < len) return 0;
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        p += len;
    }
    return 1;
}

int fn_text_is_blank(const char *s, size_t n)
{
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    utf8proc_ssize_t left = (utf8proc_ssize_t)n;
    while (left > 0) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t used = utf8proc_iterate(p, left, &cp);
        if (used <= 0) return 0;
        utf8proc_category_t cat = utf8proc_category(cp);
        int space = (cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || cp == 0x85 ||
                     cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
                     cat == UTF8PROC_CATEGORY_ZP);
        if (!space) return 0;
        p += used;
        left -= used;
    }
    return 1;
}

int fn_query_is_blank(const char *q)
{
    return !q || fn_text_is_blank(q, strlen(q));
}

size_t fn_text_words(const char *s, size_t n, size_t stop)
{
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    utf8proc_ssize_t left = (utf8proc_ssize_t)n;
    size_t words = 0;
    int in_word = 0;
    while (left > 0 && words <= stop) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t used = utf8proc_iterate(p, left, &cp);
        if (used <= 0) { used = 1; cp = -1; }
        int alnum = 0;
        if (cp >= 0) {
            utf8proc_category_t cat = utf8proc_category(cp);
            alnum = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
            alnum |= cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO;
        }
        if (alnum && !in_word) words++;
        in_word = alnum;
        p += used;
        left -= used;
    }
    return words;
}

int fn_query_check(const char *q, const fn_query_limits *lim, fn_errbuf *eb)
{
    if (!q) q = "";
    size_t qn = strlen(q);
    if (qn == 0)
        return fn_seterr(eb, FN_EINVAL, "query: must not be empty");
    if (qn > lim->max_bytes)
        return fn_seterr(eb, FN_EINVAL, "query: %zu bytes, over the limit of %zu bytes (max-query-bytes)",
                         qn, lim->max_bytes);
    if (!fn_utf8_valid(q, qn))
        return fn_seterr(eb, FN_EINVAL, "query: not valid UTF-8");
    if (fn_text_is_blank(q, qn))
        return fn_seterr(eb, FN_EINVAL, "query: must not be blank");
    size_t words = fn_text_words(q, qn, lim->max_words);
    if (words > lim->max_words)
        return fn_seterr(eb, FN_EINVAL, "query: more than %u words (max-query-words)",
                         (unsigned)lim->max_words);
    return 0;
}
