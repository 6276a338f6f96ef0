/* snippet.c - the highlighted best passage of a body (see snippet.h and
 * docs/snippets.md).
 *
 * 1. Analyze the body's first IDX_SNIPPET_SCAN_MAX bytes with spans; keep the
 *    tokens whose analyzed form is a query term (the matches, in text order).
 * 2. Every candidate window holds a contiguous run of matches; for a fixed
 *    first match the best run is the longest that fits in max_bytes (the
 *    score only grows when a match is added), so one two-pointer sweep over
 *    the matches finds the best window in O(matches). Score: the sum of the
 *    weights of the distinct terms present, plus 10% of a term's weight for
 *    each repeat (up to 3), plus a proximity bonus for neighbouring matches
 *    of different terms (capped at half the distinct sum). Ties: earliest.
 * 3. Place the window around the chosen matches: start at a sentence start
 *    if one lies within half of the spare room before the first match, else
 *    a little context before it, at a word start; end at a word end. When
 *    the window reaches the end of the text anyway, start as early as fits
 *    (at the earliest sentence start that wastes at most half the spare room).
 * 4. Copy the window: whitespace runs collapsed, invalid UTF-8 replaced,
 *    matches inside it mapped to marks in the output.
 */
#include "snippet.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#define DEFAULT_MAX_BYTES 240
#define DEFAULT_MAX_MARKS 64
#define SCAN_BACKOFF 1024       /* the scan cut looks this far back for a space */
#define MIN_WEIGHT 1e-3
#define REPEAT_BONUS 0.1        /* x weight, for each repeat of a term ... */
#define REPEAT_MAX 3            /* ... up to this many repeats */
#define PROX_GAP 24             /* bytes between two matches that count as "close" */
#define PROX_BONUS 0.25         /* x the smaller weight of a close pair of different terms */
#define PROX_CAP 0.5            /* the proximity bonus is at most this x the distinct sum */
#define LEAD_CONTEXT 60         /* bytes of context before the first match, at most */
#define TAIL_CHECK 4096         /* bytes looked at to decide on a trailing "…" */

static const char ELLIPSIS[] = "\xe2\x80\xa6";          /* U+2026 */
static const char REPLACEMENT[] = "\xef\xbf\xbd";       /* U+FFFD */

/* ---- bytes ---- */

static int is_ws(unsigned char c) { return c <= 0x20 || c == 0x7f; }

/* Could be inside a token: ASCII letters/digits and the apostrophe, and any
 * non-ASCII byte (we do not decode here; the cuts these forbid have a
 * fallback). */
static int tok_byte(unsigned char c)
{
    return c >= 0x80 || c == '\'' || (c >= '0' && c <= '9') ||
           (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* p starts a word: the text start, or after whitespace. */
static int word_start(const unsigned char *s, size_t p)
{
    return p == 0 || (is_ws(s[p - 1]) && !is_ws(s[p]));
}

/* A cut at p splits no token (p < n): next to an ASCII separator. */
static int soft_cut(const unsigned char *s, size_t p)
{
    return p == 0 || !tok_byte(s[p - 1]) || !tok_byte(s[p]);
}

/* p starts a sentence: the text start, or the first byte after whitespace
 * that follows '.', '!' or '?' (maybe then a closing quote or bracket), or
 * after a blank line. */
static int sentence_start(const unsigned char *s, size_t p)
{
    if (p == 0) return 1;
    if (!word_start(s, p)) return 0;
    size_t q = p, nl = 0;
    while (q > 0 && is_ws(s[q - 1])) nl += s[--q] == '\n';
    if (q == 0 || nl >= 2) return 1;
    unsigned char c = s[q - 1];
    if ((c == '"' || c == '\'' || c == ')' || c == ']') && q >= 2) c = s[q - 2];
    return c == '.' || c == '!' || c == '?';
}

/* The first word start in [x, hi], else the first cut in it that splits no
 * token, else hi (a token start). */
static size_t snap_start(const unsigned char *s, size_t x, size_t hi)
{
    for (size_t p = x; p <= hi; p++)
        if (word_start(s, p)) return p;
    for (size_t p = x; p <= hi; p++)
        if (soft_cut(s, p)) return p;
    return hi;
}

/* The end of a window that must hold [.., lo) and may reach we < n: the last
 * word end (a whitespace byte) in [lo, we], else the last cut there that
 * splits no token, else the last code point boundary there (a token longer
 * than the window: CJK text without spaces), else lo. lo > 0. */
static size_t snap_end(const unsigned char *s, size_t lo, size_t we)
{
    for (size_t p = we + 1; p-- > lo;)
        if (is_ws(s[p])) return p;
    for (size_t p = we + 1; p-- > lo;)
        if (soft_cut(s, p)) return p;
    for (size_t p = we + 1; p-- > lo;)
        if ((s[p] & 0xC0) != 0x80) return p;
    return lo;
}

/* ---- the query terms ---- */

typedef struct match { size_t s, e; uint32_t t; } match;

typedef struct ctx {
    const char *const *terms;
    const size_t *lens;
    uint32_t *slot;             /* open addressing: 0 = empty, else distinct id + 1 */
    size_t mask;
    uint32_t *orig;             /* distinct id -> index into terms */
    double *w;                  /* distinct id -> weight */
    size_t nd;                  /* distinct terms */
    match *m;
    size_t nm, cap;
} ctx;

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;                   /* FNV-1a */
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 16777619u; }
    return h;
}

/* The distinct id of term t[len], or -1. */
static long lookup(const ctx *c, const char *t, size_t len)
{
    for (size_t i = hash_bytes(t, len) & c->mask;; i = (i + 1) & c->mask) {
        uint32_t v = c->slot[i];
        if (!v) return -1;
        uint32_t k = c->orig[v - 1];
        if (c->lens[k] == len && memcmp(c->terms[k], t, len) == 0) return (long)(v - 1);
    }
}

static int build_terms(ctx *c, const char *const *terms, const size_t *lens,
                       const double *weights, size_t nterms)
{
    size_t cap = 8;
    while (cap < nterms * 2) cap *= 2;
    c->terms = terms;
    c->lens = lens;
    c->mask = cap - 1;
    c->slot = calloc(cap, sizeof *c->slot);
    c->orig = malloc((nterms ? nterms : 1) * sizeof *c->orig);
    c->w = malloc((nterms ? nterms : 1) * sizeof *c->w);
    if (!c->slot || !c->orig || !c->w) return -ENOMEM;
    for (size_t k = 0; k < nterms; k++) {
        if (!lens[k]) continue;
        double w = weights ? weights[k] : 1.0;
        if (!(w > 0) || !isfinite(w)) w = MIN_WEIGHT;
        long d = lookup(c, terms[k], lens[k]);
        if (d >= 0) {                                   /* duplicate: keep the larger weight */
            if (w > c->w[d]) c->w[d] = w;
            continue;
        }
        size_t i = hash_bytes(terms[k], lens[k]) & c->mask;
        while (c->slot[i]) i = (i + 1) & c->mask;
        c->orig[c->nd] = (uint32_t)k;
        c->w[c->nd] = w;
        c->slot[i] = (uint32_t)++c->nd;
    }
    return 0;
}

static int span_cb(void *ud, const char *term, size_t len, uint32_t pos, size_t start, size_t end)
{
    (void)pos;
    ctx *c = ud;
    long d = lookup(c, term, len);
    if (d < 0) return 0;
    if (c->nm == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 64;
        match *nm = realloc(c->m, ncap * sizeof *nm);
        if (!nm) return -ENOMEM;
        c->m = nm;
        c->cap = ncap;
    }
    c->m[c->nm++] = (match){ start, end, (uint32_t)d };
    return 0;
}

/* ---- the best run of matches ---- */

typedef struct win {
    const ctx *c;
    unsigned *cnt;              /* per distinct term, in the window */
    double dsum, rsum, psum;    /* distinct weights, repeat and proximity bonuses */
} win;

static double pair_bonus(const ctx *c, size_t k)   /* matches k, k+1 */
{
    const match *a = &c->m[k], *b = &c->m[k + 1];
    if (a->t == b->t || b->s < a->e || b->s - a->e > PROX_GAP) return 0;
    double wa = c->w[a->t], wb = c->w[b->t];
    return PROX_BONUS * (wa < wb ? wa : wb);
}

static void win_add(win *w, size_t k)
{
    uint32_t t = w->c->m[k].t;
    unsigned n = w->cnt[t]++;
    if (n == 0) w->dsum += w->c->w[t];
    else if (n <= REPEAT_MAX) w->rsum += REPEAT_BONUS * w->c->w[t];
}

static void win_remove(win *w, size_t k)
{
    uint32_t t = w->c->m[k].t;
    unsigned n = --w->cnt[t];
    if (n == 0) w->dsum -= w->c->w[t];
    else if (n <= REPEAT_MAX) w->rsum -= REPEAT_BONUS * w->c->w[t];
}

static double win_score(const win *w)
{
    double p = w->psum < PROX_CAP * w->dsum ? w->psum : PROX_CAP * w->dsum;
    return w->dsum + w->rsum + p;
}

/* The best run [*bi, *bj) of the nm > 0 matches within B bytes. */
static int best_run(const ctx *c, size_t B, size_t *bi, size_t *bj)
{
    win w = { .c = c, .cnt = calloc(c->nd, sizeof(unsigned)) };
    if (!w.cnt) return -ENOMEM;
    double best = -1;
    size_t j = 0;
    for (size_t i = 0; i < c->nm; i++) {
        if (j == i) { win_add(&w, j); j++; }            /* at least match i */
        while (j < c->nm && c->m[j].e - c->m[i].s <= B) {
            win_add(&w, j);
            w.psum += pair_bonus(c, j - 1);
            j++;
        }
        double sc = win_score(&w);
        if (sc > best + 1e-9 * (1 + best)) {            /* ties (and rounding): the earlier */
            best = sc;
            *bi = i;
            *bj = j;
        }
        win_remove(&w, i);
        if (i + 1 < j) w.psum -= pair_bonus(c, i);
    }
    free(w.cnt);
    return 0;
}

/* ---- output ---- */

typedef struct buf { char *p; size_t n; } buf;

static void put(buf *b, const char *s, size_t n) { memcpy(b->p + b->n, s, n); b->n += n; }

/* Copy s[ws, we) into b: whitespace collapsed, invalid UTF-8 replaced.
 * omap[p - ws] = the output offset of original position p (ws <= p <= we). */
static void copy_window(const unsigned char *s, size_t ws, size_t we, buf *b, uint32_t *omap)
{
    int space = 0, started = 0, bad = 0;
    size_t p = ws;
    while (p < we) {
        unsigned char c = s[p];
        if (is_ws(c)) {
            omap[p - ws] = (uint32_t)b->n;
            space = started;
            bad = 0;
            p++;
            continue;
        }
        if (space) { put(b, " ", 1); space = 0; }
        started = 1;
        omap[p - ws] = (uint32_t)b->n;
        if (c < 0x80) {
            put(b, (const char *)&c, 1);
            bad = 0;
            p++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(s + p, (utf8proc_ssize_t)(we - p), &cp);
        if (k > 0) {
            for (utf8proc_ssize_t i = 1; i < k; i++) omap[p + (size_t)i - ws] = (uint32_t)b->n;
            put(b, (const char *)s + p, (size_t)k);
            bad = 0;
            p += (size_t)k;
        } else {
            if (!bad) put(b, REPLACEMENT, 3);           /* one U+FFFD a run of bad bytes */
            bad = 1;
            p++;
        }
    }
    omap[we - ws] = (uint32_t)b->n;
}

int idx_snippet_make(idx_analyzer_t *an, const char *body, size_t len,
                     const char *const *terms, const size_t *term_lens,
                     const double *weights, size_t nterms,
                     const idx_snippet_opts *o, idx_snippet *out, fn_errbuf *eb)
{
    if (out) memset(out, 0, sizeof *out);
    if (!an || !out || (!body && len) || (nterms && (!terms || !term_lens)))
        return fn_seterr(eb, FN_EINVAL, "snippet: missing analyzer, output, body or terms");
    if (nterms > UINT32_MAX / 2)
        return fn_seterr(eb, FN_EINVAL, "snippet: %zu terms is too many", nterms);
    size_t B = o && o->max_bytes ? o->max_bytes : DEFAULT_MAX_BYTES;
    size_t maxm = o && o->max_marks ? o->max_marks : DEFAULT_MAX_MARKS;
    if (B > IDX_SNIPPET_SCAN_MAX) B = IDX_SNIPPET_SCAN_MAX;   /* keeps offsets in uint32 */
    const unsigned char *s = (const unsigned char *)body;

    /* The scanned prefix s[0, n). */
    size_t n = len;
    if (n > IDX_SNIPPET_SCAN_MAX) {
        n = IDX_SNIPPET_SCAN_MAX;
        size_t p = n;
        while (p > IDX_SNIPPET_SCAN_MAX - SCAN_BACKOFF && !is_ws(s[p])) p--;
        if (is_ws(s[p])) n = p;
        else
            for (int k = 0; k < 3 && (s[n] & 0xC0) == 0x80; k++) n--;   /* a code point start */
    }

    ctx c = { 0 };
    uint32_t *omap = NULL;
    char *text = NULL;
    int rc = build_terms(&c, terms, term_lens, weights, nterms);
    if (rc) goto out;
    if (c.nd && n && (rc = idx_analyze_spans(an, body, n, span_cb, &c))) goto out;

    /* The run of matches [bi, bj) to show, and its bytes [ms, me). */
    size_t bi = 0, bj = 0;
    if (c.nm && (rc = best_run(&c, B, &bi, &bj))) goto out;
    size_t ms = bj ? c.m[bi].s : 0, me = bj ? c.m[bj - 1].e : 0;
    size_t L = me - ms, slack = L < B ? B - L : 0;

    /* The window [ws, we). */
    size_t lo = me > B ? me - B : 0, hi = ms;
    if (lo > hi) lo = hi;
    size_t f = n > B ? n - B : 0;                       /* from f on, the window reaches n */
    if (f < lo) f = lo;
    size_t ws = SIZE_MAX;
    if (f <= hi) {                                      /* as early as fits: the earliest sentence */
        size_t last = hi - f < slack / 2 ? hi : f + slack / 2;    /* wasting at most half the room */
        for (size_t p = f; p <= last && ws == SIZE_MAX; p++)
            if (sentence_start(s, p)) ws = p;
        if (ws == SIZE_MAX) ws = snap_start(s, f, hi);
    } else {                                            /* the latest sentence start within reach */
        size_t reach = hi - lo < slack / 2 ? hi - lo : slack / 2;
        for (size_t p = hi + 1; p-- > hi - reach && ws == SIZE_MAX;)
            if (sentence_start(s, p)) ws = p;
        if (ws == SIZE_MAX) {
            size_t lead = slack / 4 < LEAD_CONTEXT ? slack / 4 : LEAD_CONTEXT;
            if (lead > hi - lo) lead = hi - lo;
            ws = snap_start(s, hi - lead, hi);
        }
    }
    size_t we = ws + B;
    if (we < me) we = me;                               /* one token longer than B */
    if (we >= n) we = n;
    else we = snap_end(s, me > ws ? me : ws + 1, we);  /* no match: not empty */

    /* Copy and mark. */
    int prefix = 0, suffix = 0;
    for (size_t p = ws; p-- > 0;)
        if (!is_ws(s[p])) { prefix = 1; break; }
    size_t tail_end = len - we > TAIL_CHECK ? we + TAIL_CHECK : len;
    for (size_t p = we; p < tail_end && !suffix; p++)
        if (!is_ws(s[p])) suffix = 1;
    if (tail_end < len) suffix = 1;

    size_t wl = we - ws;
    text = malloc(3 * wl + 7);
    omap = malloc((wl + 1) * sizeof *omap);
    if (!text || !omap) { rc = -ENOMEM; goto out; }
    buf b = { text, 0 };
    if (prefix) put(&b, ELLIPSIS, 3);
    copy_window(s, ws, we, &b, omap);
    if (suffix) put(&b, ELLIPSIS, 3);
    text[b.n] = '\0';

    size_t first = 0;                                   /* the matches inside [ws, we) */
    while (first < c.nm && c.m[first].s < ws) first++;
    size_t nmk = 0;
    for (size_t k = first; k < c.nm && c.m[k].e <= we; k++) nmk++;
    if (nmk > maxm) nmk = maxm;
    if (nmk) {
        out->marks = malloc(nmk * sizeof *out->marks);
        if (!out->marks) { rc = -ENOMEM; goto out; }
        size_t k = 0;
        for (size_t q = first; q < c.nm && c.m[q].e <= we && k < nmk; q++) {
            uint32_t a = omap[c.m[q].s - ws], z = omap[c.m[q].e - ws];
            if (k && a < out->marks[k - 1][1]) {        /* overlaps the previous: merge */
                if (z > out->marks[k - 1][1]) out->marks[k - 1][1] = z;
                continue;
            }
            out->marks[k][0] = a;
            out->marks[k][1] = z;
            k++;
        }
        out->nmarks = k;
    }
    out->text = text;
    out->len = b.n;
    text = NULL;

out:
    free(text);
    free(omap);
    free(c.slot);
    free(c.orig);
    free(c.w);
    free(c.m);
    if (rc) idx_snippet_free(out);
    return rc;
}

void idx_snippet_free(idx_snippet *s)
{
    if (!s) return;
    free(s->text);
    free(s->marks);
    memset(s, 0, sizeof *s);
}
