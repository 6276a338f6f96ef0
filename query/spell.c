/* spell.c - the spelling corrector (spell.h): dictionary, candidate index,
 * noisy-channel ranking, query rewriting, and the dictionary file.
 *
 * Candidates (symmetric delete, after SymSpell): every dictionary word of at
 * most SPELL_MAX_WORD_CPS + 2 code points, without digits, is indexed under
 * each string obtained by deleting 0, 1 or 2 of its code points. A query
 * word's own deletes (up to its allowed distance d) are looked up there, and
 * every word found is verified with the true optimal-string-alignment
 * distance <= d. The index is a sorted array of (xxh64 of the delete's code
 * points, word id); a hash collision only costs a verification. It is not
 * stored in the file: spell_dict_load rebuilds it. Measured (2-core VM, a
 * whole `funnel spell check` process: load + index + one query): cranfield
 * 7.5k words 0.07 s, npl 12.2k words 0.12 s; 20-27 MB resident.
 *
 * Measured with tests/bench/typos.py (seed 1, rate 0.3), default min_score:
 *                          precision  recall  clean words changed
 *   cranfield              0.894      0.923   0.92%
 *   cranfield + wordlist   0.938      0.913   0.03%
 *   npl                    0.907      0.897   0.69%
 *   npl + wordlist         0.922      0.879   0.30%
 * (wordlist: /usr/share/dict/american-english.)
 *
 * Scores (natural logs): score(w | typo) = log P(w) - cost(typo | w), with
 * P(w) = (cf(w) + 1) / (total + V) and cost the cheapest weighted alignment
 * of the typo against w (a weighted version of the same OSA recurrence):
 *     transposition of adjacent letters                 1.0
 *     substitution by a neighbouring QWERTY key         1.0
 *     doubled letter typed once / single letter doubled 1.0
 *     insertion of a key next to a neighbouring letter  1.5
 *     any other deletion                                1.5
 *     any other insertion                               2.0
 *     any other substitution                            2.5
 * (fixed costs: the common slips are about e times likelier than the rest).
 * The best candidate wins (ties: the lexicographically smaller word) and
 * replaces the word when its score is at least min_score.
 *
 * File format (little endian), version 1:
 *     "FNSPELL\0"  u32 version  u32 reserved (0)  u64 nwords  u64 total_cf
 *     nwords x { u8 len (1..SPELL__MAX_BYTES)  len bytes (folded UTF-8)  u64 cf  u32 df }
 *     u64 xxh64 (seed 0) of every byte before it
 * Invariants checked at load: the checksum; every record inside the file;
 * no trailing bytes; no duplicate word; the cfs add up to total_cf.
 */
#include "spell.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libstemmer.h>
#include <utf8proc.h>
#include <xxhash.h>

#include "fn_arena.h"
#include "words.h"
#include "fn_io.h"

#define SPELL__MAX_BYTES 64        /* longer folded words are left out of the dictionary */
#define MAX_CAND_CPS (SPELL_MAX_WORD_CPS + 2)
#define MIN_CORRECT_CPS 3
#define MIN_DIST2_CPS 6
#define DEFAULT_MAX_WORDS 32
#define SPELL__MAX_FILE (1ull << 30)   /* a dictionary file larger than this is refused */


static const char MAGIC[8] = { 'F', 'N', 'S', 'P', 'E', 'L', 'L', 0 };
#define FILE_VERSION 1u
#define HEADER_BYTES 32

/* ---- a set of words: open addressing over indices ---- */

typedef struct wtab {
    fn_arena arena;
    char **w;
    uint32_t *len;
    size_t n, cap;
    uint32_t *slot;             /* word index + 1; 0 = empty */
    size_t scap;                /* a power of two, at most half full */
} wtab;

static void wtab_free(wtab *t)
{
    fn_arena_free(&t->arena);
    free(t->w);
    free(t->len);
    free(t->slot);
}

static size_t wtab_probe(const wtab *t, const char *w, size_t len)
{
    size_t mask = t->scap - 1, i = (size_t)XXH64(w, len, 0) & mask;
    while (t->slot[i]) {
        uint32_t k = t->slot[i] - 1;
        if (t->len[k] == len && memcmp(t->w[k], w, len) == 0) break;
        i = (i + 1) & mask;
    }
    return i;
}

static long wtab_find(const wtab *t, const char *w, size_t len)
{
    if (!t->scap) return -1;
    size_t i = wtab_probe(t, w, len);
    return t->slot[i] ? (long)t->slot[i] - 1 : -1;
}

/* Index of w, added if new (*added = 1). 0 or -ENOMEM. */
static int wtab_add(wtab *t, const char *w, size_t len, size_t *idx, int *added)
{
    *added = 0;
    if (2 * (t->n + 1) > t->scap) {
        size_t ncap = t->scap ? 2 * t->scap : 1024;
        uint32_t *ns = calloc(ncap, sizeof *ns);
        if (!ns) return -ENOMEM;
        for (size_t i = 0; i < t->scap; i++) {
            if (!t->slot[i]) continue;
            uint32_t k = t->slot[i] - 1;
            size_t j = (size_t)XXH64(t->w[k], t->len[k], 0) & (ncap - 1);
            while (ns[j]) j = (j + 1) & (ncap - 1);
            ns[j] = t->slot[i];
        }
        free(t->slot);
        t->slot = ns;
        t->scap = ncap;
    }
    size_t i = wtab_probe(t, w, len);
    if (t->slot[i]) {
        *idx = t->slot[i] - 1;
        return 0;
    }
    if (t->n == t->cap) {
        size_t ncap = t->cap ? 2 * t->cap : 1024;
        char **nw = realloc(t->w, ncap * sizeof *nw);
        if (!nw) return -ENOMEM;
        t->w = nw;
        uint32_t *nl = realloc(t->len, ncap * sizeof *nl);
        if (!nl) return -ENOMEM;
        t->len = nl;
        t->cap = ncap;
    }
    char *copy = fn_arena_strndup(&t->arena, w, len);
    if (!copy) return -ENOMEM;
    t->w[t->n] = copy;
    t->len[t->n] = (uint32_t)len;
    *idx = t->n;
    t->slot[i] = (uint32_t)++t->n;
    *added = 1;
    return 0;
}

/* ---- the dictionary ---- */

typedef struct del_entry {
    uint64_t h;                 /* xxh64 of the delete's code points */
    uint32_t id;                /* the dictionary word */
} del_entry;

struct spell_dict {
    wtab words;                 /* corpus words */
    uint64_t *cf;
    uint32_t *df;
    size_t fcap;
    uint64_t total;
    wtab known;                 /* the word list */
    wtab stems;                 /* the corpus words' stems (spell_dict_set_stemmer) */
    char stemmer[32];           /* "" = none */
    del_entry *del;             /* sorted by (h, id), unique */
    size_t ndel;
    int finished;
};

int spell_dict_create(spell_dict_t **out)
{
    spell_dict_t *d = calloc(1, sizeof *d);
    if (!d) return -ENOMEM;
    fn_arena_init(&d->words.arena);
    fn_arena_init(&d->known.arena);
    fn_arena_init(&d->stems.arena);
    *out = d;
    return 0;
}

void spell_dict_destroy(spell_dict_t *d)
{
    if (!d) return;
    wtab_free(&d->words);
    wtab_free(&d->known);
    wtab_free(&d->stems);
    free(d->cf);
    free(d->df);
    free(d->del);
    free(d);
}

size_t spell_dict_words(const spell_dict_t *d) { return d->words.n; }
uint64_t spell_dict_total(const spell_dict_t *d) { return d->total; }

int spell_dict_get(const spell_dict_t *d, const char *word, size_t len, uint64_t *cf, uint32_t *df)
{
    long i = wtab_find(&d->words, word, len);
    if (cf) *cf = i < 0 ? 0 : d->cf[i];
    if (df) *df = i < 0 ? 0 : d->df[i];
    return i >= 0;
}

int spell_dict_known(const spell_dict_t *d, const char *word, size_t len)
{
    return wtab_find(&d->words, word, len) >= 0 || wtab_find(&d->known, word, len) >= 0;
}

int spell_dict_set_stemmer(spell_dict_t *d, const char *name, fn_errbuf *eb)
{
    wtab_free(&d->stems);
    memset(&d->stems, 0, sizeof d->stems);
    fn_arena_init(&d->stems.arena);
    d->stemmer[0] = '\0';
    if (!name || !*name || strcmp(name, "none") == 0) return 0;
    if (strlen(name) >= sizeof d->stemmer) return fn_seterr(eb, FN_EINVAL, "stemmer %s: unknown", name);
    struct sb_stemmer *st = sb_stemmer_new(name, "UTF_8");
    if (!st) return fn_seterr(eb, FN_EINVAL, "stemmer %s: unknown (Snowball's names: english, porter, ...)", name);
    for (size_t i = 0; i < d->words.n; i++) {
        const sb_symbol *s = sb_stemmer_stem(st, (const sb_symbol *)d->words.w[i], (int)d->words.len[i]);
        size_t idx;
        int added;
        if (!s || wtab_add(&d->stems, (const char *)s, (size_t)sb_stemmer_length(st), &idx, &added)) {
            sb_stemmer_delete(st);
            return fn_seterr(eb, -ENOMEM, "out of memory");
        }
    }
    sb_stemmer_delete(st);
    strcpy(d->stemmer, name);
    return 0;
}

/* Is the folded word's stem a corpus word's stem? Then the word finds
 * documents through the index's stemming ("accuracies" and "accuracy")
 * and is no misspelling. *st is made on first use (one per call of
 * spell_correct: a Snowball stemmer is not thread-safe). */
static int stem_known(const spell_dict_t *d, struct sb_stemmer **st, const char *w, size_t len)
{
    if (!d->stemmer[0]) return 0;
    if (!*st && !(*st = sb_stemmer_new(d->stemmer, "UTF_8"))) return 0;
    const sb_symbol *s = sb_stemmer_stem(*st, (const sb_symbol *)w, (int)len);
    return s && wtab_find(&d->stems, (const char *)s, (size_t)sb_stemmer_length(*st)) >= 0;
}

/* Add a folded word. *idx receives its index. 0 or -ENOMEM. */
static int dict_add_folded(spell_dict_t *d, const char *w, size_t len, uint64_t cf, uint32_t df,
                           size_t *idx)
{
    int added;
    int rc = wtab_add(&d->words, w, len, idx, &added);
    if (rc) return rc;
    if (added) {
        if (d->words.n > d->fcap) {
            size_t ncap = d->fcap ? 2 * d->fcap : 1024;
            uint64_t *ncf = realloc(d->cf, ncap * sizeof *ncf);
            if (!ncf) return -ENOMEM;
            d->cf = ncf;
            uint32_t *ndf = realloc(d->df, ncap * sizeof *ndf);
            if (!ndf) return -ENOMEM;
            d->df = ndf;
            d->fcap = ncap;
        }
        d->cf[*idx] = 0;
        d->df[*idx] = 0;
    }
    d->cf[*idx] += cf;
    d->df[*idx] += df;
    d->total += cf;
    d->finished = 0;
    return 0;
}

/* ---- words: splitting and folding ---- */

static int is_digit_cp(utf8proc_int32_t c)
{
    if (c < 128) return c >= '0' && c <= '9';
    utf8proc_category_t cat = utf8proc_category(c);
    return cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO;
}

/* UTF-8 to code points, at most cap of them: the count, or cap + 1 when
 * there are more. An invalid byte counts as one code point (its value). */
static size_t decode(const char *s, size_t n, int32_t *out, size_t cap)
{
    const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)s;
    size_t p = 0, k = 0;
    while (p < n) {
        utf8proc_int32_t c;
        utf8proc_ssize_t m = utf8proc_iterate(u + p, (utf8proc_ssize_t)(n - p), &c);
        if (m <= 0) {
            c = 0x110000 + u[p];
            m = 1;
        }
        if (k == cap) return cap + 1;
        out[k++] = c;
        p += (size_t)m;
    }
    return k;
}

int spell_dict_add(spell_dict_t *d, const char *word, uint64_t cf, uint32_t df)
{
    size_t n = strlen(word), i = 0, st, wl, idx;
    char buf[SPELL__MAX_BYTES];
    int any = 0;
    while (qw_next_word(word, n, &i, &st, &wl)) {
        size_t fl = qw_fold(word + st, wl, buf, sizeof buf);
        if (!fl) continue;
        int rc = dict_add_folded(d, buf, fl, cf, df, &idx);
        if (rc) return rc;
        any = 1;
    }
    return any ? 0 : FN_EINVAL;
}

/* ---- building from a corpus ---- */

typedef struct build_ctx {
    spell_dict_t *d;
    const char *path;
    spell_build_opts *opts;
    uint32_t *last;             /* per word: the last document (1-based) that had it */
    size_t lcap;
    uint32_t doc;
    fn_errbuf *eb;
} build_ctx;

static int add_text(build_ctx *b, const char *s, size_t n)
{
    size_t i = 0, st, wl, idx;
    char buf[SPELL__MAX_BYTES];
    while (qw_next_word(s, n, &i, &st, &wl)) {
        size_t fl = qw_fold(s + st, wl, buf, sizeof buf);
        if (!fl) continue;
        int rc = dict_add_folded(b->d, buf, fl, 1, 0, &idx);
        if (rc) return rc;
        if (idx >= b->lcap) {
            size_t ncap = b->lcap ? 2 * b->lcap : 4096;
            while (ncap <= idx) ncap *= 2;
            uint32_t *nl = realloc(b->last, ncap * sizeof *nl);
            if (!nl) return -ENOMEM;
            memset(nl + b->lcap, 0, (ncap - b->lcap) * sizeof *nl);
            b->last = nl;
            b->lcap = ncap;
        }
        if (b->last[idx] != b->doc) {
            b->last[idx] = b->doc;
            b->d->df[idx]++;
        }
    }
    return 0;
}

static int bad_line(build_ctx *b, size_t lineno, const char *why)
{
    if (!b->opts || !b->opts->skip_bad)
        return fn_seterr(b->eb, FN_EPARSE, "%s:%zu: %s", b->path, lineno, why);
    b->opts->skipped++;
    if (b->opts->warn) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s:%zu: %s", b->path, lineno, why);
        b->opts->warn(b->opts->ud, msg);
    }
    return 0;
}

static int build_line(void *ud, char *line, size_t len, size_t lineno)
{
    build_ctx *b = ud;
    if (strspn(line, " \t\r") == len) return 0;
    json_error_t jerr;
    json_t *root = json_loadb(line, len, 0, &jerr);
    if (!root) {
        char why[300];
        snprintf(why, sizeof why, "invalid JSON: %s (column %d)", jerr.text, jerr.column);
        return bad_line(b, lineno, why);
    }
    const char *why = NULL;
    json_t *id = json_object_get(root, "id");
    json_t *f[2] = { json_object_get(root, "title"), json_object_get(root, "body") };
    if (!json_is_object(root)) why = "not a JSON object";
    else if (!id) why = "missing \"id\"";
    else if (!json_is_string(id)) why = "\"id\" is not a string";
    else if (json_string_length(id) == 0) why = "empty \"id\"";
    else if (f[0] && !json_is_null(f[0]) && !json_is_string(f[0])) why = "\"title\" is not a string";
    else if (f[1] && !json_is_null(f[1]) && !json_is_string(f[1])) why = "\"body\" is not a string";
    int rc = 0;
    if (why) {
        rc = bad_line(b, lineno, why);
    } else {
        b->doc++;
        for (int k = 0; k < 2 && !rc; k++)
            if (json_is_string(f[k])) rc = add_text(b, json_string_value(f[k]), json_string_length(f[k]));
        if (rc) fn_seterr(b->eb, rc, "%s:%zu: %s", b->path, lineno, fn_strerror(rc));
        else if (b->opts) b->opts->docs++;
    }
    json_decref(root);
    return rc;
}

int spell_dict_build_corpus(const char *path, spell_build_opts *opts, spell_dict_t **out,
                            fn_errbuf *eb)
{
    spell_dict_t *d;
    int rc = spell_dict_create(&d);
    if (rc) return fn_seterr(eb, rc, "out of memory");
    if (opts) opts->docs = opts->skipped = 0;
    build_ctx b = { .d = d, .path = path, .opts = opts, .eb = eb };
    rc = fn_read_lines(path, build_line, &b, eb);
    free(b.last);
    if (!rc) rc = spell_dict_finish(d);
    if (rc) {
        if (rc == -ENOMEM) fn_seterr(eb, rc, "%s: out of memory", path);
        spell_dict_destroy(d);
        return rc;
    }
    *out = d;
    return 0;
}

/* ---- the word list ---- */

typedef struct wl_ctx {
    spell_dict_t *d;
    int dic;                    /* hunspell .dic */
} wl_ctx;

static int wordlist_line(void *ud, char *line, size_t len, size_t lineno)
{
    wl_ctx *c = ud;
    if (c->dic) {
        if (lineno == 1 && len > 0 && strspn(line, "0123456789 \t\r") == len) return 0;
        char *slash = memchr(line, '/', len);
        if (slash) len = (size_t)(slash - line);
    }
    size_t i = 0, st, wl, idx;
    char buf[SPELL__MAX_BYTES];
    int added;
    while (qw_next_word(line, len, &i, &st, &wl)) {
        size_t fl = qw_fold(line + st, wl, buf, sizeof buf);
        if (!fl) continue;
        int rc = wtab_add(&c->d->known, buf, fl, &idx, &added);
        if (rc) return rc;
    }
    return 0;
}

int spell_dict_load_wordlist(spell_dict_t *d, const char *path, fn_errbuf *eb)
{
    size_t n = strlen(path);
    wl_ctx c = { .d = d, .dic = n >= 4 && strcmp(path + n - 4, ".dic") == 0 };
    int rc = fn_read_lines(path, wordlist_line, &c, eb);
    if (rc == -ENOMEM) fn_seterr(eb, rc, "%s: out of memory", path);
    return rc;
}

/* ---- the candidate index ---- */

static int has_digit(const int32_t *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (is_digit_cp(u[i])) return 1;
    return 0;
}

/* Call fn(h) for the hash of u with 0..maxd code points deleted (each
 * distinct position set once; equal strings may repeat). */
typedef int (*del_fn)(void *ud, uint64_t h);

static uint64_t hash_cps(const int32_t *u, size_t n)
{
    return XXH64(u, n * sizeof *u, 0x5e11);
}

static int for_deletes(const int32_t *u, size_t n, int maxd, del_fn fn, void *ud)
{
    int32_t t[MAX_CAND_CPS];
    int rc = fn(ud, hash_cps(u, n));
    for (size_t p = 0; !rc && maxd >= 1 && p < n; p++) {
        memcpy(t, u, p * sizeof *t);
        memcpy(t + p, u + p + 1, (n - p - 1) * sizeof *t);
        rc = fn(ud, hash_cps(t, n - 1));
        for (size_t q = p; !rc && maxd >= 2 && q < n - 1; q++) {
            int32_t t2[MAX_CAND_CPS];
            memcpy(t2, t, q * sizeof *t2);
            memcpy(t2 + q, t + q + 1, (n - 2 - q) * sizeof *t2);
            rc = fn(ud, hash_cps(t2, n - 2));
        }
    }
    return rc;
}

typedef struct del_build {
    del_entry *e;
    size_t n, cap;
    uint32_t id;
} del_build;

static int del_push(void *ud, uint64_t h)
{
    del_build *b = ud;
    if (b->n == b->cap) {
        size_t ncap = b->cap ? 2 * b->cap : 65536;
        del_entry *ne = realloc(b->e, ncap * sizeof *ne);
        if (!ne) return -ENOMEM;
        b->e = ne;
        b->cap = ncap;
    }
    b->e[b->n].h = h;
    b->e[b->n].id = b->id;
    b->n++;
    return 0;
}

static int del_cmp(const void *a, const void *b)
{
    const del_entry *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

int spell_dict_finish(spell_dict_t *d)
{
    if (d->finished) return 0;
    del_build b = { 0 };
    int32_t u[MAX_CAND_CPS];
    for (size_t i = 0; i < d->words.n; i++) {
        size_t n = decode(d->words.w[i], d->words.len[i], u, MAX_CAND_CPS);
        if (n > MAX_CAND_CPS || has_digit(u, n)) continue;
        b.id = (uint32_t)i;
        if (for_deletes(u, n, 2, del_push, &b)) {
            free(b.e);
            return -ENOMEM;
        }
    }
    qsort(b.e, b.n, sizeof *b.e, del_cmp);
    size_t k = 0;
    for (size_t i = 0; i < b.n; i++)
        if (k == 0 || b.e[i].h != b.e[k - 1].h || b.e[i].id != b.e[k - 1].id) b.e[k++] = b.e[i];
    free(d->del);
    d->del = b.e;
    d->ndel = k;
    d->finished = 1;
    return 0;
}

/* ---- distances and the channel model ---- */

static int osa(const int32_t *a, size_t n, const int32_t *b, size_t m)
{
    /* Three rows: i-2, i-1, i. n, m <= 255. */
    int r0[256], r1[256], r2[256];
    int *pp = r0, *p = r1, *c = r2;
    for (size_t j = 0; j <= m; j++) p[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        c[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = p[j] + 1;
            if (c[j - 1] + 1 < v) v = c[j - 1] + 1;
            if (p[j - 1] + cost < v) v = p[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            c[j] = v;
        }
        int *t = pp;
        pp = p;
        p = c;
        c = t;
    }
    return p[m];
}

int spell_distance(const char *a, size_t alen, const char *b, size_t blen)
{
    int32_t ua[256], ub[256];
    size_t n = decode(a, alen, ua, 255), m = decode(b, blen, ub, 255);
    if (n > 255 || m > 255) return -1;
    return osa(ua, n, ub, m);
}

/* QWERTY: row and horizontal position (in key widths) of a lower-case
 * letter; -1 for anything else. */
static int key_pos(int32_t c, double *x)
{
    static const char *rows[3] = { "qwertyuiop", "asdfghjkl", "zxcvbnm" };
    static const double off[3] = { 0.0, 0.25, 0.75 };
    if (c < 'a' || c > 'z') return -1;
    for (int r = 0; r < 3; r++) {
        const char *p = strchr(rows[r], (int)c);
        if (p) {
            *x = off[r] + (double)(p - rows[r]);
            return r;
        }
    }
    return -1;
}

static int adjacent(int32_t a, int32_t b)
{
    double xa = 0, xb = 0;
    int ra = key_pos(a, &xa), rb = key_pos(b, &xb);
    if (ra < 0 || rb < 0 || a == b) return 0;
    double dx = fabs(xa - xb);
    if (ra == rb) return dx < 1.01;
    return abs(ra - rb) == 1 && dx < 1.0;
}

#define C_TRANSPOSE 1.0
#define C_SUB_NEAR 1.0
#define C_DOUBLE 1.0
#define C_INS_NEAR 1.5
#define C_DEL 1.5
#define C_INS 2.0
#define C_SUB 2.5

/* The cheapest weighted alignment of the typo t[0..n) against the intended
 * word w[0..m): the channel's -log P(t | w). */
static double channel_cost(const int32_t *t, size_t n, const int32_t *w, size_t m)
{
    double D[MAX_CAND_CPS + 1][MAX_CAND_CPS + 1];
    D[0][0] = 0;
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = 0; j <= m; j++) {
            if (i == 0 && j == 0) continue;
            double v = INFINITY;
            if (i > 0) {        /* t[i-1] typed but not meant: an insertion */
                int32_t c = t[i - 1];
                double k = C_INS;
                if ((i > 1 && t[i - 2] == c) || (j > 0 && w[j - 1] == c) || (j < m && w[j] == c))
                    k = C_DOUBLE;
                else if ((j > 0 && adjacent(c, w[j - 1])) || (j < m && adjacent(c, w[j])))
                    k = C_INS_NEAR;
                if (D[i - 1][j] + k < v) v = D[i - 1][j] + k;
            }
            if (j > 0) {        /* w[j-1] meant but not typed: a deletion */
                int32_t c = w[j - 1];
                double k = ((j > 1 && w[j - 2] == c) || (j < m && w[j] == c)) ? C_DOUBLE : C_DEL;
                if (D[i][j - 1] + k < v) v = D[i][j - 1] + k;
            }
            if (i > 0 && j > 0) {
                double k = t[i - 1] == w[j - 1] ? 0 : adjacent(t[i - 1], w[j - 1]) ? C_SUB_NEAR : C_SUB;
                if (D[i - 1][j - 1] + k < v) v = D[i - 1][j - 1] + k;
            }
            if (i > 1 && j > 1 && t[i - 1] == w[j - 2] && t[i - 2] == w[j - 1] && t[i - 1] != t[i - 2] &&
                D[i - 2][j - 2] + C_TRANSPOSE < v)
                v = D[i - 2][j - 2] + C_TRANSPOSE;
            D[i][j] = v;
        }
    }
    return D[n][m];
}

/* ---- candidates of one word ---- */

typedef struct cand_ctx {
    const spell_dict_t *d;
    const int32_t *u;           /* the folded query word */
    size_t n;
    int maxd;
    double logz;                /* log(total + V) */
    long best;                  /* word id, -1 = none */
    double best_score;
    int best_dist;
} cand_ctx;

static void consider(cand_ctx *c, uint32_t id)
{
    const spell_dict_t *d = c->d;
    int32_t w[MAX_CAND_CPS];
    size_t m = decode(d->words.w[id], d->words.len[id], w, MAX_CAND_CPS);
    if (m > MAX_CAND_CPS) return;
    if ((m > c->n ? m - c->n : c->n - m) > (size_t)c->maxd) return;
    int dist = osa(c->u, c->n, w, m);
    if (dist < 1 || dist > c->maxd) return;
    double score = log((double)d->cf[id] + 1.0) - c->logz - channel_cost(c->u, c->n, w, m);
    if (c->best >= 0) {
        if (score < c->best_score) return;
        if (score == c->best_score) {
            const char *a = d->words.w[id], *b = d->words.w[c->best];
            size_t la = d->words.len[id], lb = d->words.len[c->best];
            int cmp = memcmp(a, b, la < lb ? la : lb);
            if (cmp > 0 || (cmp == 0 && la >= lb)) return;
        }
    }
    c->best = id;
    c->best_score = score;
    c->best_dist = dist;
}

static int cand_lookup(void *ud, uint64_t h)
{
    cand_ctx *c = ud;
    const del_entry *e = c->d->del;
    size_t lo = 0, hi = c->d->ndel;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e[mid].h < h) lo = mid + 1;
        else hi = mid;
    }
    for (; lo < c->d->ndel && e[lo].h == h; lo++) consider(c, e[lo].id);
    return 0;
}

/* ---- correcting a query ---- */

typedef struct result_mem {
    fn_arena arena;
} result_mem;

void spell_result_free(spell_result *res)
{
    if (!res) return;
    if (res->mem_) {
        result_mem *m = res->mem_;
        fn_arena_free(&m->arena);
        free(m);
    }
    memset(res, 0, sizeof *res);
}

static int is_operator(const char *w, size_t n)
{
    return (n == 3 && (memcmp(w, "AND", 3) == 0 || memcmp(w, "NOT", 3) == 0)) ||
           (n == 2 && memcmp(w, "OR", 2) == 0);
}

int spell_correct(spell_dict_t *d, const char *text, size_t len, const spell_opts *opts,
                  spell_result *res, fn_errbuf *eb)
{
    struct sb_stemmer *stemmer = NULL;   /* made when a word needs it (stem_known) */
    memset(res, 0, sizeof *res);
    if (len > SPELL_MAX_TEXT_BYTES)
        return fn_seterr(eb, FN_ELIMIT, "query of %zu bytes: at most %d are corrected", len,
                         SPELL_MAX_TEXT_BYTES);
    size_t max_words = opts && opts->max_words ? opts->max_words : DEFAULT_MAX_WORDS;
    double min_score = opts && opts->min_score != 0 ? opts->min_score : SPELL_DEFAULT_MIN_SCORE;
    int rc = spell_dict_finish(d);
    if (rc) return fn_seterr(eb, rc, "out of memory");

    result_mem *mem = calloc(1, sizeof *mem);
    if (!mem) return fn_seterr(eb, -ENOMEM, "out of memory");
    fn_arena_init(&mem->arena);
    res->mem_ = mem;
    /* A replacement is at most SPELL__MAX_BYTES bytes, and there are at most
     * max_words of them: the output is bounded by the input. */
    size_t cap = len + max_words * SPELL__MAX_BYTES + 1;
    char *out = fn_arena_alloc(&mem->arena, cap);
    res->fix = fn_arena_calloc(&mem->arena, max_words, sizeof *res->fix);
    if (!out || !res->fix) goto nomem;

    double logz = log((double)d->total + (double)d->words.n + 1.0);
    size_t o = 0, i = 0, prev = 0, st, wl;
    while (qw_next_word(text, len, &i, &st, &wl)) {
        memcpy(out + o, text + prev, st - prev);
        o += st - prev;
        prev = st;
        const char *w = text + st;
        char f[SPELL__MAX_BYTES];
        int32_t u[SPELL_MAX_WORD_CPS + 1];
        size_t fl = 0, n = 0;
        int skip = res->looked_at >= max_words || is_operator(w, wl) || (st + wl < len && text[st + wl] == ':');
        if (!skip) {
            fl = qw_fold(w, wl, f, sizeof f);
            n = fl ? decode(f, fl, u, SPELL_MAX_WORD_CPS) : 0;
            skip = n < MIN_CORRECT_CPS || n > SPELL_MAX_WORD_CPS || has_digit(u, n) ||
                   spell_dict_known(d, f, fl) || stem_known(d, &stemmer, f, fl);
        }
        if (skip) continue;
        res->looked_at++;
        cand_ctx c = { .d = d, .u = u, .n = n, .maxd = n >= MIN_DIST2_CPS ? 2 : 1, .logz = logz,
                       .best = -1 };
        for_deletes(u, n, c.maxd, cand_lookup, &c);
        if (c.best < 0 || c.best_score < min_score) continue;
        const char *to = d->words.w[c.best];
        size_t tl = d->words.len[c.best];
        spell_fix *x = &res->fix[res->nfix++];
        x->from = fn_arena_strndup(&mem->arena, w, wl);
        x->to = to;
        x->offset = st;
        x->len = wl;
        x->distance = c.best_dist;
        x->score = c.best_score;
        if (!x->from) goto nomem;
        memcpy(out + o, to, tl);
        o += tl;
        prev = st + wl;
    }
    memcpy(out + o, text + prev, len - prev);
    o += len - prev;
    out[o] = '\0';
    res->text = out;
    res->text_len = o;
    if (stemmer) sb_stemmer_delete(stemmer);
    return 0;

nomem:
    if (stemmer) sb_stemmer_delete(stemmer);
    spell_result_free(res);
    return fn_seterr(eb, -ENOMEM, "out of memory");
}

/* ---- the file ---- */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++) p[k] = (unsigned char)(v >> (8 * k));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int k = 0; k < 8; k++) p[k] = (unsigned char)(v >> (8 * k));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int k = 3; k >= 0; k--) v = (v << 8) | p[k];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) v = (v << 8) | p[k];
    return v;
}

int spell_dict_save(const spell_dict_t *d, const char *path, fn_errbuf *eb)
{
    size_t size = HEADER_BYTES + 8;
    for (size_t i = 0; i < d->words.n; i++) size += 1 + d->words.len[i] + 12;
    unsigned char *buf = malloc(size);
    if (!buf) return fn_seterr(eb, -ENOMEM, "%s: out of memory", path);
    memcpy(buf, MAGIC, 8);
    put_u32(buf + 8, FILE_VERSION);
    put_u32(buf + 12, 0);
    put_u64(buf + 16, d->words.n);
    put_u64(buf + 24, d->total);
    size_t o = HEADER_BYTES;
    for (size_t i = 0; i < d->words.n; i++) {
        buf[o++] = (unsigned char)d->words.len[i];
        memcpy(buf + o, d->words.w[i], d->words.len[i]);
        o += d->words.len[i];
        put_u64(buf + o, d->cf[i]);
        put_u32(buf + o + 8, d->df[i]);
        o += 12;
    }
    put_u64(buf + o, XXH64(buf, o, 0));

    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        free(buf);
        return fn_seterr(eb, FN_ELIMIT, "%s: path too long", path);
    }
    int rc = 0;
    FILE *f = fopen(tmp, "wb");
    if (!f) rc = -errno;
    else {
        if (fwrite(buf, 1, size, f) != size) rc = -EIO;
        if (fflush(f) != 0 && !rc) rc = -errno;
        if (!rc && fsync(fileno(f)) != 0) rc = -errno;
        if (fclose(f) != 0 && !rc) rc = -errno;
        if (!rc && rename(tmp, path) != 0) rc = -errno;
        if (rc) unlink(tmp);
    }
    free(buf);
    if (rc) return fn_seterr(eb, rc, "%s: %s", path, fn_strerror(rc));
    return 0;
}

static int corrupt(fn_errbuf *eb, const char *path, const char *why)
{
    return fn_seterr(eb, FN_ECORRUPT, "%s: damaged spelling dictionary: %s", path, why);
}

int spell_dict_load(const char *path, spell_dict_t **out, fn_errbuf *eb)
{
    char *raw;
    size_t size;
    int rc = fn_read_file(path, SPELL__MAX_FILE, &raw, &size, eb);
    if (rc) return rc;
    unsigned char *buf = (unsigned char *)raw;
    spell_dict_t *d = NULL;
    if (size >= 8 && memcmp(buf, MAGIC, 8) != 0) {
        rc = fn_seterr(eb, FN_EFORMAT, "%s: not a funnel spelling dictionary", path);
        goto fail;
    }
    if (size < HEADER_BYTES + 8) {
        rc = corrupt(eb, path, "truncated");
        goto fail;
    }
    if (XXH64(buf, size - 8, 0) != get_u64(buf + size - 8)) {
        rc = corrupt(eb, path, "checksum mismatch (truncated or changed)");
        goto fail;
    }
    if (get_u32(buf + 8) != FILE_VERSION) {
        rc = fn_seterr(eb, FN_EVERSION, "%s: spelling dictionary version %u, expected %u", path,
                       get_u32(buf + 8), FILE_VERSION);
        goto fail;
    }
    uint64_t nwords = get_u64(buf + 16), total = get_u64(buf + 24), sum = 0;
    size_t end = size - 8, o = HEADER_BYTES;
    if (nwords > (end - o) / 14) {
        rc = corrupt(eb, path, "word count larger than the file");
        goto fail;
    }
    rc = spell_dict_create(&d);
    if (rc) {
        rc = fn_seterr(eb, rc, "%s: out of memory", path);
        goto fail;
    }
    for (uint64_t i = 0; i < nwords; i++) {
        size_t wl = o < end ? buf[o] : 0, idx;
        if (o >= end || wl == 0 || wl > SPELL__MAX_BYTES || end - o - 1 < wl + 12) {
            rc = corrupt(eb, path, "bad word record");
            goto fail;
        }
        const char *w = (const char *)buf + o + 1;
        uint64_t cf = get_u64(buf + o + 1 + wl);
        uint32_t df = get_u32(buf + o + 1 + wl + 8);
        if (wtab_find(&d->words, w, wl) >= 0) {
            rc = corrupt(eb, path, "duplicate word");
            goto fail;
        }
        rc = dict_add_folded(d, w, wl, cf, df, &idx);
        if (rc) {
            rc = fn_seterr(eb, rc, "%s: out of memory", path);
            goto fail;
        }
        sum += cf;
        o += 1 + wl + 12;
    }
    if (o != end || sum != total) {
        rc = corrupt(eb, path, o != end ? "trailing bytes" : "frequencies do not add up");
        goto fail;
    }
    rc = spell_dict_finish(d);
    if (rc) {
        rc = fn_seterr(eb, rc, "%s: out of memory", path);
        goto fail;
    }
    free(buf);
    *out = d;
    return 0;

fail:
    spell_dict_destroy(d);
    free(buf);
    return rc;
}
