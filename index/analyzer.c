/* analyzer.c - text analysis (see analyzer.h for the pipeline).
 *
 * The text is cut into segments at ASCII separators and invalid UTF-8 bytes.
 * A pure-ASCII segment (the common case) is lowercased and tokenized in place;
 * any other segment goes through utf8proc (NFKC + casefold + strip marks +
 * drop ignorables) into a reused UTF-32 buffer and is tokenized by Unicode
 * category afterwards, so that e.g. "ﬁ" or full-width digits fold first and
 * split correctly. No allocation per token: every buffer lives in the
 * analyzer and only grows.
 */
#include "analyzer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libstemmer.h>
#include <utf8proc.h>

/* stopwords.c */
const char *const *idx_stopwords_english_list(size_t *n);

#define DEFAULT_MAX_TOKEN 64
#define MAX_TOKEN_LIMIT 255   /* format.h IDX_MAX_TERM_BYTES */
#define NAME_CAP 256

/* Options for utf8proc: COMPAT+COMPOSE = NFKC. */
#define FOLD_OPTS (UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | \
                   UTF8PROC_CASEFOLD | UTF8PROC_STRIPMARK | UTF8PROC_IGNORE)

struct idx_analyzer {
    struct sb_stemmer *stem;        /* NULL for "none" */
    char stemmer[NAME_CAP];
    char stopwords[NAME_CAP];       /* "english", "none" or a path */
    size_t max_tok;

    /* Stopword set: open addressing over offsets into sw_pool. */
    char *sw_pool;
    size_t sw_pool_len, sw_pool_cap;
    uint32_t *sw_slots;             /* 0 = empty, else offset+1 into sw_pool (len byte first) */
    size_t sw_mask, sw_count;

    /* Stemming dominates analysis time and word frequencies are Zipfian: a
     * direct-mapped cache of recent (token -> stem) pairs, made on first use. */
    struct stem_slot *cache;

    char *tok;                      /* max_tok + 8 bytes: the current token */
    utf8proc_int32_t *ubuf;         /* UTF-32 scratch for non-ASCII segments */
    size_t ucap;

    /* idx_analyze_spans only: the original bytes [ms[k], me[k]) (segment
     * relative) each folded code point ubuf[k] came from, and the fold of one
     * chunk of the segment (see map_segment). */
    size_t *ms, *me;
    size_t mcap;
    utf8proc_int32_t *cbuf;
    size_t ccap;
};

#define CACHE_SLOTS 8192               /* 512 KiB a stemming analyzer */
#define CACHE_MAX 30                   /* longer tokens are stemmed every time */

struct stem_slot {
    uint8_t tlen, slen;                /* tlen 0 = empty */
    char t[CACHE_MAX + 1], s[CACHE_MAX + 1];
};

/* Bytes that may belong to an ASCII token: 1 = alnum, 2 = apostrophe. */
static unsigned char ascii_class[128];
static unsigned char ascii_lower[128];

static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void build_tables(void)
{
    for (int c = 0; c < 128; c++) {
        int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        ascii_class[c] = alnum ? 1 : (c == '\'' ? 2 : 0);
        ascii_lower[c] = (unsigned char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
}

static void init_tables(void)
{
    pthread_once(&tables_once, build_tables);   /* analyzers are made per thread */
}

/* ---- stopword set ---- */

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;                   /* FNV-1a */
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 16777619u; }
    return h;
}

static int sw_contains_h(const idx_analyzer_t *a, const char *w, size_t len, uint32_t h)
{
    if (!a->sw_slots || len > 255) return 0;
    for (size_t i = h & a->sw_mask;; i = (i + 1) & a->sw_mask) {
        uint32_t s = a->sw_slots[i];
        if (!s) return 0;
        const char *e = a->sw_pool + s - 1;
        if ((unsigned char)e[0] == len && memcmp(e + 1, w, len) == 0) return 1;
    }
}

static int sw_contains(const idx_analyzer_t *a, const char *w, size_t len)
{
    return sw_contains_h(a, w, len, hash_bytes(w, len));
}

static int sw_grow(idx_analyzer_t *a)
{
    size_t ncap = a->sw_mask ? (a->sw_mask + 1) * 2 : 256;
    uint32_t *ns = calloc(ncap, sizeof *ns);
    if (!ns) return -ENOMEM;
    for (size_t i = 0; a->sw_slots && i <= a->sw_mask; i++) {
        uint32_t s = a->sw_slots[i];
        if (!s) continue;
        const char *e = a->sw_pool + s - 1;
        size_t j = hash_bytes(e + 1, (unsigned char)e[0]) & (ncap - 1);
        while (ns[j]) j = (j + 1) & (ncap - 1);
        ns[j] = s;
    }
    free(a->sw_slots);
    a->sw_slots = ns;
    a->sw_mask = ncap - 1;
    return 0;
}

static int sw_add(idx_analyzer_t *a, const char *w, size_t len)
{
    if (len == 0 || len > 255 || sw_contains(a, w, len)) return 0;
    if ((a->sw_count + 1) * 2 > a->sw_mask + 1) {     /* keep load <= 1/2 */
        int rc = sw_grow(a);
        if (rc) return rc;
    }
    if (a->sw_pool_len + len + 1 > a->sw_pool_cap) {
        size_t ncap = a->sw_pool_cap ? a->sw_pool_cap * 2 : 4096;
        while (ncap < a->sw_pool_len + len + 1) ncap *= 2;
        char *np = realloc(a->sw_pool, ncap);
        if (!np) return -ENOMEM;
        a->sw_pool = np;
        a->sw_pool_cap = ncap;
    }
    if (a->sw_pool_len + 1 > UINT32_MAX - 1) return -ENOMEM;
    char *e = a->sw_pool + a->sw_pool_len;
    e[0] = (char)(unsigned char)len;
    memcpy(e + 1, w, len);
    size_t j = hash_bytes(w, len) & a->sw_mask;
    while (a->sw_slots[j]) j = (j + 1) & a->sw_mask;
    a->sw_slots[j] = (uint32_t)a->sw_pool_len + 1;
    a->sw_pool_len += len + 1;
    a->sw_count++;
    return 0;
}

/* ---- tokenizer core ---- */

/* The per-call state of one idx_analyze (or one stopword-file line). */
typedef struct run {
    idx_analyzer_t *a;
    idx_token_cb cb;
    idx_span_cb scb;    /* idx_analyze_spans: called instead of cb */
    void *ud;
    uint32_t pos;
    int raw;            /* 1: no stopwords, no stemming (loading a stopword file) */
    size_t ts, te;      /* scb only: the current token's bytes in the original text */
} run;

static int deliver(run *r, const char *term, size_t len, uint32_t pos)
{
    if (r->scb) return r->scb(r->ud, term, len, pos, r->ts, r->te);
    return r->cb(r->ud, term, len, pos);
}

static int emit(run *r, size_t len)
{
    idx_analyzer_t *a = r->a;
    uint32_t pos = r->pos++;
    if (len > a->max_tok) return 0;             /* skipped, position still used */
    if (r->raw) return deliver(r, a->tok, len, pos);
    uint32_t h = hash_bytes(a->tok, len);
    if (sw_contains_h(a, a->tok, len, h)) return 0;
    if (!a->stem) return deliver(r, a->tok, len, pos);

    struct stem_slot *slot = NULL;
    if (len <= CACHE_MAX) {
        if (!a->cache) a->cache = calloc(CACHE_SLOTS, sizeof *a->cache);
        if (a->cache) {                 /* no cache is only slower */
            slot = &a->cache[(h ^ (h >> 13)) & (CACHE_SLOTS - 1)];
            if (slot->tlen == len && memcmp(slot->t, a->tok, len) == 0)
                return deliver(r, slot->s, slot->slen, pos);
        }
    }
    const sb_symbol *s = sb_stemmer_stem(a->stem, (const sb_symbol *)a->tok, (int)len);
    if (!s) return -ENOMEM;
    int sl = sb_stemmer_length(a->stem);
    if (sl <= 0) return 0;
    if (slot && sl <= CACHE_MAX) {
        slot->tlen = (uint8_t)len;
        slot->slen = (uint8_t)sl;
        memcpy(slot->t, a->tok, len);
        memcpy(slot->s, s, (size_t)sl);
    }
    return deliver(r, (const char *)s, (size_t)sl, pos);
}

/* base: offset of s in the original text (for the spans). */
static int ascii_segment(run *r, const unsigned char *s, size_t n, size_t base)
{
    char *tok = r->a->tok;
    size_t cap = r->a->max_tok + 1, len = 0;   /* len may exceed cap: we keep counting */
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (ascii_class[c] == 1) {
            if (!len) start = i;
            if (len < cap) tok[len] = (char)ascii_lower[c];
            len++;
        } else if (len && i + 1 < n && ascii_class[s[i + 1]] == 1) {
            continue;                                   /* inner apostrophe: dropped */
        } else if (len) {
            r->ts = base + start;
            r->te = base + i;
            int rc = emit(r, len);
            if (rc) return rc;
            len = 0;
        }
    }
    if (!len) return 0;
    r->ts = base + start;
    r->te = base + n;
    return emit(r, len);
}

static int is_word_cp(utf8proc_int32_t c)
{
    if (c < 128) return c >= 0 && ascii_class[c] == 1;
    utf8proc_category_t cat = utf8proc_category(c);
    return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
           (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

static int is_apostrophe(utf8proc_int32_t c)
{
    return c == '\'' || c == 0x2019;    /* RIGHT SINGLE QUOTATION MARK, the typographic one */
}

/* ---- spans of folded text (idx_analyze_spans) ----
 *
 * A non-ASCII segment is folded as a whole (NFKC may compose across code
 * points, e.g. conjoining Hangul jamo), so the tokens come from that whole
 * fold exactly as in idx_analyze. To know which original bytes each folded
 * code point came from, the segment is folded again in chunks, left to right:
 * a chunk is one code point, extended by the following code points (up to
 * MAP_CHUNK_MAX) until its own fold equals the next code points of the whole
 * fold; those code points then map to the chunk's bytes (a chunk folding to
 * nothing, e.g. a combining mark, is added to the code points before it).
 * With the analyzer's options (marks stripped) a chunk is one code point
 * except where a composition happened. Should no chunk match, the rest of the segment maps
 * coarsely to [chunk start, segment end): spans stay inside the segment and
 * cover the token, only wider. */

#define MAP_CHUNK_MAX 32

static int grow_u32(utf8proc_int32_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need) ncap *= 2;
    utf8proc_int32_t *nb = realloc(*buf, ncap * sizeof *nb);
    if (!nb) return -ENOMEM;
    *buf = nb;
    *cap = ncap;
    return 0;
}

/* Fold n bytes of valid UTF-8 into a->cbuf; the length in *out, -1 on a
 * utf8proc error (treated as "does not match"). */
static int fold_chunk(idx_analyzer_t *a, const unsigned char *s, size_t n, utf8proc_ssize_t *out)
{
    utf8proc_ssize_t m;
    for (;;) {
        m = utf8proc_decompose(s, (utf8proc_ssize_t)n, a->cbuf, (utf8proc_ssize_t)a->ccap, FOLD_OPTS);
        if (m < 0) {
            if (m == UTF8PROC_ERROR_NOMEM) return -ENOMEM;
            *out = -1;
            return 0;
        }
        if ((size_t)m <= a->ccap) break;
        if (grow_u32(&a->cbuf, &a->ccap, (size_t)m)) return -ENOMEM;
    }
    *out = utf8proc_normalize_utf32(a->cbuf, m, FOLD_OPTS);
    return 0;
}

/* Fill a->ms/a->me for the m folded code points in a->ubuf of segment s[0..n). */
static int map_segment(idx_analyzer_t *a, const unsigned char *s, size_t n, size_t m)
{
    if (m > a->mcap) {
        size_t ncap = a->mcap ? a->mcap : 256;
        while (ncap < m) ncap *= 2;
        size_t *ns = realloc(a->ms, ncap * sizeof *ns);
        if (!ns) return -ENOMEM;
        a->ms = ns;
        size_t *ne = realloc(a->me, ncap * sizeof *ne);
        if (!ne) return -ENOMEM;
        a->me = ne;
        a->mcap = ncap;
    }
    const utf8proc_int32_t *u = a->ubuf;
    size_t i = 0, p = 0;
    while (i < n) {                 /* to the end: trailing marks join the last token */
        size_t j = i;
        int ok = 0;
        for (int k = 0; k < MAP_CHUNK_MAX && j < n; k++) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t step = utf8proc_iterate(s + j, (utf8proc_ssize_t)(n - j), &cp);
            if (step <= 0) break;                       /* cannot happen: validated */
            j += (size_t)step;
            utf8proc_ssize_t f;
            if (k == 0 && cp < 0x80) {                  /* ASCII letter, digit or ' */
                if (p == m || u[p] != (utf8proc_int32_t)ascii_lower[cp]) continue;
                f = 1;
            } else {
                int rc = fold_chunk(a, s + i, j - i, &f);
                if (rc) return rc;
                /* f == 0 (a chunk folding to nothing) may leave cbuf NULL: no memcmp */
                if (f < 0 || p + (size_t)f > m ||
                    (f > 0 && memcmp(a->cbuf, u + p, (size_t)f * sizeof *u) != 0)) continue;
            }
            for (size_t q = p; q < p + (size_t)f; q++) { a->ms[q] = i; a->me[q] = j; }
            /* A chunk folding to nothing (a combining mark, an ignorable)
             * joins the code points before it: "e" + U+0301 stays whole. */
            for (size_t q = p; f == 0 && q > 0 && a->me[q - 1] == i; q--) a->me[q - 1] = j;
            p += (size_t)f;
            i = j;
            ok = 1;
            break;
        }
        if (!ok) break;
    }
    for (size_t q = p; q < m; q++) {                    /* coarse rest (see above) */
        a->ms[q] = i < n ? i : (p ? a->ms[p - 1] : 0);
        a->me[q] = n;
    }
    return 0;
}

static int unicode_segment(run *r, const unsigned char *s, size_t n, size_t base)
{
    idx_analyzer_t *a = r->a;
    utf8proc_ssize_t m;
    for (;;) {
        m = utf8proc_decompose(s, (utf8proc_ssize_t)n, a->ubuf, (utf8proc_ssize_t)a->ucap, FOLD_OPTS);
        if (m < 0) {
            if (m == UTF8PROC_ERROR_NOMEM) return -ENOMEM;
            return 0;       /* cannot happen on validated input; drop the segment */
        }
        if ((size_t)m <= a->ucap) break;
        size_t ncap = a->ucap ? a->ucap : 256;
        while (ncap < (size_t)m) ncap *= 2;
        utf8proc_int32_t *nb = realloc(a->ubuf, ncap * sizeof *nb);
        if (!nb) return -ENOMEM;
        a->ubuf = nb;
        a->ucap = ncap;
    }
    m = utf8proc_normalize_utf32(a->ubuf, m, FOLD_OPTS);
    if (m < 0) return 0;
    if (r->scb) {
        int rc = map_segment(a, s, n, (size_t)m);
        if (rc) return rc;
    }

    const utf8proc_int32_t *u = a->ubuf;
    char *tok = a->tok;
    size_t cap = a->max_tok + 1, len = 0;
    utf8proc_ssize_t first = 0;
    for (utf8proc_ssize_t i = 0; i < m; i++) {
        utf8proc_int32_t c = u[i];
        if (is_word_cp(c)) {
            if (!len) first = i;
            if (len < cap) {
                len += (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)tok + len);
            } else {
                len += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
            }
        } else if (len && is_apostrophe(c) && i + 1 < m && is_word_cp(u[i + 1])) {
            continue;
        } else if (len) {
            if (r->scb) {                   /* the token is u[first .. i-1] */
                r->ts = base + a->ms[first];
                r->te = base + a->me[i - 1];
            }
            int rc = emit(r, len);
            if (rc) return rc;
            len = 0;
        }
    }
    if (!len) return 0;
    if (r->scb) {
        r->ts = base + a->ms[first];
        r->te = base + a->me[m - 1];
    }
    return emit(r, len);
}

static int analyze_run(run *r, const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        /* Skip separators: ASCII non-word bytes and invalid UTF-8. */
        int ascii = 1;
        while (i < len) {
            unsigned char c = s[i];
            if (c < 128) {
                if (ascii_class[c]) break;
                i++;
                continue;
            }
            utf8proc_int32_t cp;
            utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &cp);
            if (k > 0) break;
            i++;                                      /* invalid byte: a separator */
        }
        size_t start = i;
        /* Extend the segment over word bytes, apostrophes and valid non-ASCII. */
        while (i < len) {
            unsigned char c = s[i];
            if (c < 128) {
                if (!ascii_class[c]) break;
                i++;
                continue;
            }
            utf8proc_int32_t cp;
            utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &cp);
            if (k <= 0) break;
            ascii = 0;
            i += (size_t)k;
        }
        if (i == start) continue;
        int rc = ascii ? ascii_segment(r, s + start, i - start, start)
                       : unicode_segment(r, s + start, i - start, start);
        if (rc) return rc;
    }
    return 0;
}

int idx_analyze(idx_analyzer_t *a, const char *text, size_t len, idx_token_cb cb, void *ud)
{
    run r = { .a = a, .cb = cb, .ud = ud, .pos = 0, .raw = 0 };
    return analyze_run(&r, text, len);
}

int idx_analyze_spans(idx_analyzer_t *a, const char *text, size_t len, idx_span_cb cb, void *ud)
{
    run r = { .a = a, .scb = cb, .ud = ud, .pos = 0, .raw = 0 };
    return analyze_run(&r, text, len);
}

/* ---- creation ---- */

static int add_cb(void *ud, const char *term, size_t len, uint32_t pos)
{
    (void)pos;
    return sw_add(ud, term, len);
}

static int load_stopword_file(idx_analyzer_t *a, const char *path, fn_errbuf *eb)
{
    FILE *f = fopen(path, "r");
    if (!f) return fn_seterr(eb, FN_EINVAL, "stopwords: cannot open %s", path);
    char line[1024];
    int rc = 0;
    run r = { .a = a, .cb = add_cb, .ud = a, .raw = 1 };
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        if (n && line[0] == '#') continue;            /* comment line */
        /* Fold the word exactly as document text is folded. */
        r.pos = 0;
        rc = analyze_run(&r, line, n);
        if (rc) break;
    }
    if (!rc && ferror(f)) rc = fn_seterr(eb, FN_EINVAL, "stopwords: error reading %s", path);
    fclose(f);
    return rc;
}

static int known_stemmer(const char *name)
{
    for (const char **l = sb_stemmer_list(); *l; l++)
        if (strcmp(*l, name) == 0) return 1;
    return 0;
}

int idx_analyzer_create(const idx_analyzer_opts *opts, idx_analyzer_t **out, fn_errbuf *eb)
{
    idx_analyzer_opts def = { 0 };
    if (!opts) opts = &def;
    const char *stemmer = opts->stemmer ? opts->stemmer : "english";
    const char *stop = opts->stopwords ? opts->stopwords : "english";
    size_t max_tok = opts->max_token_bytes ? opts->max_token_bytes : DEFAULT_MAX_TOKEN;
    int rc;

    *out = NULL;
    init_tables();
    if (max_tok > MAX_TOKEN_LIMIT)
        return fn_seterr(eb, FN_EINVAL, "max_token_bytes %zu is over %d", max_tok, MAX_TOKEN_LIMIT);
    if (strlen(stemmer) >= NAME_CAP || strlen(stop) >= NAME_CAP)
        return fn_seterr(eb, FN_EINVAL, "analyzer option too long");
    /* describe() joins options with ';' and '=': refuse what cannot round-trip. */
    if (strpbrk(stemmer, ";=\n") || strpbrk(stop, ";=\n"))
        return fn_seterr(eb, FN_EINVAL, "analyzer options must not contain ';', '=' or newlines");

    idx_analyzer_t *a = calloc(1, sizeof *a);
    if (!a) return -ENOMEM;
    snprintf(a->stemmer, sizeof a->stemmer, "%s", stemmer);
    snprintf(a->stopwords, sizeof a->stopwords, "%s", stop);
    a->max_tok = max_tok;
    a->tok = malloc(max_tok + 8);     /* + room for one encoded code point */
    if (!a->tok) { rc = -ENOMEM; goto fail; }

    if (strcmp(stemmer, "none") != 0) {
        a->stem = sb_stemmer_new(stemmer, "UTF_8");
        if (!a->stem) {
            rc = known_stemmer(stemmer) ? -ENOMEM
                 : fn_seterr(eb, FN_EINVAL, "unknown stemmer \"%s\"", stemmer);
            goto fail;
        }
    }

    if (strcmp(stop, "english") == 0) {
        size_t n;
        const char *const *l = idx_stopwords_english_list(&n);
        for (size_t i = 0; i < n; i++)
            if ((rc = sw_add(a, l[i], strlen(l[i])))) goto fail;
    } else if (strcmp(stop, "none") != 0) {
        if ((rc = load_stopword_file(a, stop, eb))) goto fail;
    }
    *out = a;
    return 0;

fail:
    idx_analyzer_destroy(a);
    return rc;
}

void idx_analyzer_destroy(idx_analyzer_t *a)
{
    if (!a) return;
    if (a->stem) sb_stemmer_delete(a->stem);
    free(a->sw_pool);
    free(a->sw_slots);
    free(a->cache);
    free(a->tok);
    free(a->ubuf);
    free(a->ms);
    free(a->me);
    free(a->cbuf);
    free(a);
}

/* ---- describe / parse ---- */

size_t idx_analyzer_describe(const idx_analyzer_t *a, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "stemmer=%s;stopwords=%s;max_token_bytes=%zu",
                     a->stemmer, a->stopwords, a->max_tok);
    return n < 0 ? 0 : (size_t)n;
}

int idx_analyzer_opts_parse(const char *desc, idx_analyzer_opts *opts, char *storage, size_t cap)
{
    if (!desc || !opts || !storage) return FN_EINVAL;
    size_t dl = strlen(desc);
    if (dl + 1 > cap) return FN_EINVAL;
    memcpy(storage, desc, dl + 1);
    memset(opts, 0, sizeof *opts);

    char *p = storage;
    int seen = 0;
    while (*p) {
        char *end = strchr(p, ';');
        if (end) *end = '\0';
        char *eq = strchr(p, '=');
        if (!eq || eq == p) return FN_EINVAL;
        *eq = '\0';
        const char *key = p, *val = eq + 1;
        if (!*val) return FN_EINVAL;
        if (strcmp(key, "stemmer") == 0 && !(seen & 1)) {
            opts->stemmer = val; seen |= 1;
        } else if (strcmp(key, "stopwords") == 0 && !(seen & 2)) {
            opts->stopwords = val; seen |= 2;
        } else if (strcmp(key, "max_token_bytes") == 0 && !(seen & 4)) {
            char *e;
            unsigned long v;
            if (*val < '0' || *val > '9') return FN_EINVAL;
            errno = 0;
            v = strtoul(val, &e, 10);
            if (*e || errno || v == 0 || v > MAX_TOKEN_LIMIT) return FN_EINVAL;
            opts->max_token_bytes = v;
            seen |= 4;
        } else {
            return FN_EINVAL;       /* unknown or repeated key */
        }
        if (!end) break;
        p = end + 1;
    }
    return 0;
}
