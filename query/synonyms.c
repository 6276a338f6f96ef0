/* synonyms.c - WordNet synonyms (synonyms.h).
 *
 * WordNet 3.0's files (wndb(5)): index.POS lines are
 *   lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt offset...
 * with the synset offsets in order of frequency of use; data.POS lines are
 *   offset lex_filenum ss_type w_cnt(2 hex) word lex_id [word lex_id...] p_cnt ...
 * and an offset is the byte position of its line in data.POS. Lines that
 * start with two spaces are the licence. Multi-word lemmas (with '_') are
 * left out: a shard term is one word.
 */
#include "synonyms.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fn_arena.h"
#include "fn_io.h"

#define SYN__MAX_FILE (256u << 20)   /* WordNet 3.0's largest file, data.noun, is 15 MB */

typedef struct syn_ent {
    const char *lemma;
    const char **syn;
    uint32_t nsyn;
} syn_ent;

struct syn_dict {
    fn_arena a;
    syn_ent *e;
    size_t n, cap;
};

static const char *const POS[4] = { "noun", "verb", "adj", "adv" };

void syn_dict_destroy(syn_dict_t *d)
{
    if (!d) return;
    fn_arena_free(&d->a);
    free(d->e);
    free(d);
}

size_t syn_dict_size(const syn_dict_t *d) { return d->n; }

/* The next space-separated token of [*p, end): its start and length, 0 at the end. */
static size_t token(const char **p, const char *end, const char **tok)
{
    const char *s = *p;
    while (s < end && *s == ' ') s++;
    const char *t = s;
    while (t < end && *t != ' ' && *t != '\n') t++;
    *tok = s;
    *p = t;
    return (size_t)(t - s);
}

static int has_upper_or_us(const char *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (w[i] == '_' || isupper((unsigned char)w[i])) return 1;
    return 0;
}

/* The one-word lemmas of the synset at offset of data[0, len) other than
 * the lemma itself, appended to syn[*n, max). 0 or FN_ECORRUPT. */
static int synset_words(const char *data, size_t len, unsigned long off, const char *lemma, size_t llen,
                        syn_dict_t *d, const char **syn, uint32_t *n, uint32_t max, const char *path,
                        fn_errbuf *eb)
{
    if (off >= len || (off > 0 && data[off - 1] != '\n'))
        return fn_seterr(eb, FN_ECORRUPT, "%s: synset offset %lu is not the start of a line", path, off);
    const char *p = data + off, *end = memchr(p, '\n', len - off);
    if (!end) end = data + len;
    const char *t;
    size_t tl = token(&p, end, &t);
    if (tl != 8 || strtoul(t, NULL, 10) != off)
        return fn_seterr(eb, FN_ECORRUPT, "%s: the line at offset %lu is not synset %08lu", path, off, off);
    token(&p, end, &t);                     /* lex_filenum */
    token(&p, end, &t);                     /* ss_type */
    tl = token(&p, end, &t);
    char hex[8] = "";
    if (!tl || tl > 4) return fn_seterr(eb, FN_ECORRUPT, "%s: synset %lu: no word count", path, off);
    memcpy(hex, t, tl);
    unsigned long wc = strtoul(hex, NULL, 16);
    for (unsigned long i = 0; i < wc; i++) {
        size_t wl = token(&p, end, &t);
        const char *w = t;
        token(&p, end, &t);                 /* lex_id */
        if (!wl) return fn_seterr(eb, FN_ECORRUPT, "%s: synset %lu: %lu words promised", path, off, wc);
        const char *paren = memchr(w, '(', wl);   /* adjectives' (a), (p), (ip) markers */
        if (paren) wl = (size_t)(paren - w);
        if (!wl || has_upper_or_us(w, wl) || (wl == llen && memcmp(w, lemma, wl) == 0)) continue;
        int dup = 0;
        for (uint32_t k = 0; k < *n && !dup; k++) dup = strlen(syn[k]) == wl && memcmp(syn[k], w, wl) == 0;
        if (dup || *n >= max) continue;
        char *c = fn_arena_strndup(&d->a, w, wl);
        if (!c) return fn_seterr(eb, -ENOMEM, "out of memory");
        syn[(*n)++] = c;
    }
    return 0;
}

#define MAX_SYN 64

static int load_pos(syn_dict_t *d, const char *dir, const char *pos, unsigned senses, fn_errbuf *eb)
{
    char ipath[4096], dpath[4096];
    snprintf(ipath, sizeof ipath, "%s/index.%s", dir, pos);
    snprintf(dpath, sizeof dpath, "%s/data.%s", dir, pos);
    char *idx, *data;
    size_t ilen, dlen;
    int rc = fn_read_file(ipath, SYN__MAX_FILE, &idx, &ilen, eb);
    if (rc) return rc;
    if ((rc = fn_read_file(dpath, SYN__MAX_FILE, &data, &dlen, eb))) {
        free(idx);
        return rc;
    }
    size_t lineno = 0;
    const char *syn[MAX_SYN];
    for (const char *line = idx; line < idx + ilen && !rc;) {
        const char *end = memchr(line, '\n', (size_t)(idx + ilen - line));
        if (!end) end = idx + ilen;
        lineno++;
        const char *p = line;
        line = end + 1;
        if (*p == ' ' || p == end) continue;   /* the licence */
        const char *lemma, *t;
        size_t ll = token(&p, end, &lemma);
        if (memchr(lemma, '_', ll)) continue;
        token(&p, end, &t);                             /* pos */
        unsigned long nsyn = strtoul(p, NULL, 10);
        token(&p, end, &t);
        unsigned long nptr = strtoul(p, NULL, 10);
        token(&p, end, &t);
        for (unsigned long i = 0; i < nptr; i++) token(&p, end, &t);
        token(&p, end, &t);                             /* sense_cnt */
        token(&p, end, &t);                             /* tagsense_cnt */
        uint32_t n = 0;
        for (unsigned long i = 0; i < nsyn && i < senses && !rc; i++) {
            size_t tl = token(&p, end, &t);
            if (tl != 8) {
                rc = fn_seterr(eb, FN_ECORRUPT, "%s:%zu: synset offset %zu of '%.*s' is not 8 digits", ipath,
                               lineno, (size_t)i + 1, (int)ll, lemma);
                break;
            }
            rc = synset_words(data, dlen, strtoul(t, NULL, 10), lemma, ll, d, syn, &n, MAX_SYN, dpath, eb);
        }
        if (rc || !n) continue;
        if (d->n == d->cap) {
            size_t nc = d->cap ? 2 * d->cap : 65536;
            syn_ent *ne = realloc(d->e, nc * sizeof *ne);
            if (!ne) {
                rc = fn_seterr(eb, -ENOMEM, "out of memory");
                break;
            }
            d->e = ne;
            d->cap = nc;
        }
        syn_ent *e = &d->e[d->n];
        e->lemma = fn_arena_strndup(&d->a, lemma, ll);
        e->syn = fn_arena_alloc(&d->a, n * sizeof *e->syn);
        if (!e->lemma || !e->syn) {
            rc = fn_seterr(eb, -ENOMEM, "out of memory");
            break;
        }
        memcpy(e->syn, syn, n * sizeof *syn);
        e->nsyn = n;
        d->n++;
    }
    free(idx);
    free(data);
    return rc;
}

static int ent_cmp(const void *a, const void *b)
{
    return strcmp(((const syn_ent *)a)->lemma, ((const syn_ent *)b)->lemma);
}

int syn_dict_load(const char *dir, unsigned senses, syn_dict_t **out, fn_errbuf *eb)
{
    *out = NULL;
    syn_dict_t *d = calloc(1, sizeof *d);
    if (!d) return fn_seterr(eb, -ENOMEM, "out of memory");
    fn_arena_init(&d->a);
    if (senses == 0) senses = 1;
    int rc = 0;
    for (int i = 0; i < 4 && !rc; i++) rc = load_pos(d, dir, POS[i], senses, eb);
    if (rc) {
        syn_dict_destroy(d);
        return rc;
    }
    /* one entry a lemma: a noun and a verb "heat" share it */
    qsort(d->e, d->n, sizeof *d->e, ent_cmp);
    size_t w = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (w && strcmp(d->e[w - 1].lemma, d->e[i].lemma) == 0) {
            syn_ent *e = &d->e[w - 1];
            const char **m = fn_arena_alloc(&d->a, (e->nsyn + d->e[i].nsyn) * sizeof *m);
            if (!m) {
                syn_dict_destroy(d);
                return fn_seterr(eb, -ENOMEM, "out of memory");
            }
            uint32_t k = 0;
            for (uint32_t j = 0; j < e->nsyn; j++) m[k++] = e->syn[j];
            for (uint32_t j = 0; j < d->e[i].nsyn; j++) {
                int dup = 0;
                for (uint32_t x = 0; x < e->nsyn && !dup; x++) dup = strcmp(e->syn[x], d->e[i].syn[j]) == 0;
                if (!dup) m[k++] = d->e[i].syn[j];
            }
            e->syn = m;
            e->nsyn = k;
        } else {
            d->e[w++] = d->e[i];
        }
    }
    d->n = w;
    *out = d;
    return 0;
}

static const syn_ent *find(const syn_dict_t *d, const char *w, size_t n)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *l = d->e[mid].lemma;
        int c = strncmp(l, w, n);
        if (c == 0) c = l[n] != '\0';
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo < d->n && strncmp(d->e[lo].lemma, w, n) == 0 && d->e[lo].lemma[n] == '\0') return &d->e[lo];
    return NULL;
}

/* WordNet's detachment rules (morphy(7WN)), nouns, verbs, adjectives. */
static const struct { const char *suf, *rep; } RULES[] = {
    { "ses", "s" }, { "xes", "x" }, { "zes", "z" }, { "ches", "ch" }, { "shes", "sh" }, { "men", "man" },
    { "ies", "y" }, { "s", "" }, { "es", "e" }, { "es", "" }, { "ed", "e" }, { "ed", "" }, { "ing", "e" },
    { "ing", "" }, { "er", "" }, { "est", "" }, { "er", "e" }, { "est", "e" },
};

size_t syn_lookup(const syn_dict_t *d, const char *word, size_t len, const char **out, size_t max)
{
    const syn_ent *e = find(d, word, len);
    char base[128];
    for (size_t r = 0; !e && r < sizeof RULES / sizeof *RULES; r++) {
        size_t sl = strlen(RULES[r].suf), rl = strlen(RULES[r].rep);
        if (len <= sl + 1 || len - sl + rl >= sizeof base || memcmp(word + len - sl, RULES[r].suf, sl) != 0) continue;
        memcpy(base, word, len - sl);
        memcpy(base + len - sl, RULES[r].rep, rl);
        e = find(d, base, len - sl + rl);
    }
    size_t n = 0;
    for (uint32_t i = 0; e && i < e->nsyn && n < max; i++)
        if (strlen(e->syn[i]) != len || memcmp(e->syn[i], word, len) != 0) out[n++] = e->syn[i];
    return n;
}
