/* validate.c - SearchRequest validation (INVALID_ARGUMENT messages). */
#include "validate.h"

#include <string.h>
#include <utf8proc.h>

int coord_utf8_valid(const char *s, size_t n)
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

int coord_is_blank(const char *s, size_t n)
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

int coord_validate_search(const Funnel__V1__SearchRequest *req, const coord_limits *lim,
                          uint32_t *k_out, fn_errbuf *eb)
{
    const char *q = req->query ? req->query : "";
    size_t qn = strlen(q);
    if (qn == 0)
        return fn_seterr(eb, FN_EINVAL, "query: must not be empty");
    if (qn > lim->max_query_bytes)
        return fn_seterr(eb, FN_EINVAL, "query: %zu bytes, over the limit of %zu bytes",
                         qn, lim->max_query_bytes);
    if (!coord_utf8_valid(q, qn))
        return fn_seterr(eb, FN_EINVAL, "query: not valid UTF-8");
    if (coord_is_blank(q, qn))
        return fn_seterr(eb, FN_EINVAL, "query: must not be blank");
    uint32_t k = req->k ? req->k : COORD_DEFAULT_K;
    if (k > lim->max_window)
        return fn_seterr(eb, FN_EINVAL, "k: %u is over max_window %u", k, lim->max_window);
    uint64_t window = ((uint64_t)req->page + 1) * k;
    if (window > lim->max_window)
        return fn_seterr(eb, FN_EINVAL,
                         "page: (page+1)*k = (%u+1)*%u = %llu is over max_window %u",
                         req->page, k, (unsigned long long)window, lim->max_window);
    const char *rid = req->request_id ? req->request_id : "";
    size_t rn = strlen(rid);
    if (rn > COORD_MAX_REQUEST_ID)
        return fn_seterr(eb, FN_EINVAL, "request_id: %zu bytes, over the limit of %d bytes",
                         rn, COORD_MAX_REQUEST_ID);
    if (!coord_utf8_valid(rid, rn))
        return fn_seterr(eb, FN_EINVAL, "request_id: not valid UTF-8");
    *k_out = k;
    return 0;
}
