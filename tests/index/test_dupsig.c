/* test_dupsig.c - near-duplicate signatures (index/dupsig.h) on the real
 * Cranfield corpus: copies made by 1..5 small edits (the edits of
 * tests/bench/near_dups.py, done here in C) are found at >= 95% recall, and
 * no two distinct Cranfield documents are judged near-duplicates, except the
 * genuine duplicates listed below. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dupsig.h"
#include "testutil.h"

/* Cranfield's own duplicates (measured; read side by side): the same report
 * abstracted twice. 179/188: one word of the title differs ("speeds" /
 * "velocities"); 182/1211: another title, the same abstract; 843/889: the
 * same title, 889's abstract contains 843's; 1274/1319: "ft. per sec." /
 * "ft/sec". 471 and 995 are both empty (no title, no body): identical, but
 * an empty signature is near nothing, so they are not merged. */
static const char *const GENUINE[][2] = { { "179", "188" }, { "182", "1211" }, { "843", "889" }, { "1274", "1319" } };
#define NGENUINE (sizeof GENUINE / sizeof *GENUINE)

typedef struct doc {
    char id[16];
    char *title, *body;
    uint8_t sig[IDX_DUPSIG_BYTES];
} doc;

static doc *load_cranfield(size_t *n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/cranfield/corpus.jsonl", tu_data_dir());
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    doc *d = calloc(1400, sizeof *d);
    char *line = NULL;
    size_t cap = 0;
    *n = 0;
    while (getline(&line, &cap, f) > 0 && *n < 1400) {
        json_t *o = json_loads(line, 0, NULL);
        cr_assert(o);
        snprintf(d[*n].id, sizeof d[*n].id, "%s", json_string_value(json_object_get(o, "id")));
        d[*n].title = strdup(json_string_value(json_object_get(o, "title")));
        d[*n].body = strdup(json_string_value(json_object_get(o, "body")));
        idx_dupsig(d[*n].title, strlen(d[*n].title), d[*n].body, strlen(d[*n].body), d[*n].sig);
        json_decref(o);
        (*n)++;
    }
    free(line);
    fclose(f);
    return d;
}

static void free_docs(doc *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(d[i].title);
        free(d[i].body);
    }
    free(d);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A text as whitespace-separated words (pointers into a copy). */
typedef struct words {
    char *w[4096];
    size_t n;
} words;

static void split(char *s, words *w)
{
    w->n = 0;
    for (char *t = strtok(s, " \t\n"); t && w->n < 4096; t = strtok(NULL, " \t\n"))
        w->w[w->n++] = t;
}

/* A word of a random document of the corpus (into buf). */
static char *corpus_word(doc *d, size_t n, uint64_t *s, char *buf, size_t cap)
{
    for (;;) {
        const doc *x = &d[rng_next(s) % n];
        size_t len = strlen(x->body);
        if (!len) continue;
        size_t at = rng_next(s) % len;
        while (at > 0 && x->body[at - 1] != ' ') at--;
        size_t e = at;
        while (x->body[e] && x->body[e] != ' ') e++;
        if (e == at || e - at >= cap) continue;
        memcpy(buf, x->body + at, e - at);
        buf[e - at] = 0;
        return buf;
    }
}

/* One edit of near_dups.py on the word lists of the title and the body. */
static void edit(words *f, doc *d, size_t n, uint64_t *s, char pool[][48], size_t *np)
{
    size_t total = f[0].n + f[1].n;
    char *nw = corpus_word(d, n, s, pool[*np], 48);
    (*np)++;
    if (total == 0) {
        f[1].w[f[1].n++] = nw;
        return;
    }
    size_t at = rng_next(s) % total, fi = 0;
    if (at >= f[0].n) {
        at -= f[0].n;
        fi = 1;
    }
    words *w = &f[fi];
    switch (rng_next(s) % 5) {
    case 0: w->w[at] = nw; break;                                        /* replace */
    case 1:                                                              /* delete */
        if (w->n > 1) {
            memmove(&w->w[at], &w->w[at + 1], (w->n - at - 1) * sizeof *w->w);
            w->n--;
        } else {
            w->w[at] = nw;
        }
        break;
    case 2:                                                              /* insert */
        if (w->n < 4096) {
            memmove(&w->w[at + 1], &w->w[at], (w->n - at) * sizeof *w->w);
            w->w[at] = nw;
            w->n++;
        }
        break;
    case 3: {                                                            /* swap */
        size_t b = at + 1 < w->n ? at + 1 : at > 0 ? at - 1 : at;
        char *t = w->w[at];
        w->w[at] = w->w[b];
        w->w[b] = t;
        break;
    }
    default: {                                                           /* case, punctuation */
        char *c = pool[(*np)++];
        snprintf(c, 48, "%.40s", w->w[at]);
        size_t len = strlen(c);
        switch (rng_next(s) % 4) {
        case 0: for (size_t k = 0; k < len; k++) c[k] = (char)(c[k] >= 'a' && c[k] <= 'z' ? c[k] - 32 : c[k]); break;
        case 1: if (c[0] >= 'a' && c[0] <= 'z') c[0] = (char)(c[0] - 32); break;
        case 2: c[len] = ",.;:!?"[rng_next(s) % 6]; c[len + 1] = 0; break;
        default:
            if (len > 1 && strchr(",.;:!?", c[len - 1])) c[len - 1] = 0;
            else { c[len] = ';'; c[len + 1] = 0; }
        }
        w->w[at] = c;
    }
    }
}

static char *join(const words *w)
{
    size_t len = 1;
    for (size_t i = 0; i < w->n; i++) len += strlen(w->w[i]) + 1;
    char *s = malloc(len), *p = s;
    *p = 0;
    for (size_t i = 0; i < w->n; i++) p += sprintf(p, "%s%s", i ? " " : "", w->w[i]);
    return s;
}

static int genuine(const char *a, const char *b)
{
    for (size_t k = 0; k < NGENUINE; k++)
        if ((!strcmp(a, GENUINE[k][0]) && !strcmp(b, GENUINE[k][1])) ||
            (!strcmp(a, GENUINE[k][1]) && !strcmp(b, GENUINE[k][0])))
            return 1;
    return 0;
}

Test(dupsig, basics)
{
    uint8_t a[IDX_DUPSIG_BYTES], b[IDX_DUPSIG_BYTES], e[IDX_DUPSIG_BYTES], z[IDX_DUPSIG_BYTES];
    const char *t = "Heat transfer in laminar flow", *body = "the heat transfer of a flat plate in laminar flow is measured";
    idx_dupsig(t, strlen(t), body, strlen(body), a);
    const char *t2 = "HEAT transfer, in laminar flow!", *b2 = "The heat transfer of a flat plate in laminar flow is measured.";
    idx_dupsig(t2, strlen(t2), b2, strlen(b2), b);
    cr_assert_eq(memcmp(a, b, IDX_DUPSIG_BYTES), 0, "case and punctuation do not count");
    double s;
    cr_assert_eq(idx_dupsig_near(a, b, &s), 1);
    cr_assert_float_eq(s, 1.0, 1e-12);
    idx_dupsig(NULL, 0, "  ...  ", 7, e);
    idx_dupsig("", 0, NULL, 0, z);
    cr_assert_eq(memcmp(e, z, IDX_DUPSIG_BYTES), 0);
    cr_assert_eq(idx_dupsig_near(e, z, &s), 0, "an empty signature is near nothing");
    cr_assert_eq(idx_dupsig_near(a, e, &s), 0);
    const char *o = "compressor blade stall at part speed";
    idx_dupsig(o, strlen(o), NULL, 0, b);
    cr_assert_eq(idx_dupsig_near(a, b, &s), 0);
    cr_assert_lt(idx_dupsig_similarity(a, b), 0.2);
}

Test(dupsig, cranfield_recall_and_false_merges, .timeout = 120)
{
    size_t n = 0;
    doc *d = load_cranfield(&n);
    if (!d) cr_skip_test("no cranfield corpus under %s", tu_data_dir());
    cr_assert_eq(n, 1400);
    /* every pair of distinct documents */
    size_t merged = 0, found_genuine = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            double s;
            if (!idx_dupsig_near(d[i].sig, d[j].sig, &s)) continue;
            if (genuine(d[i].id, d[j].id)) {
                found_genuine++;
                continue;
            }
            merged++;
            cr_log_error("false merge: %s %s (%.3f)", d[i].id, d[j].id, s);
        }
    cr_log_info("cranfield: %zu false merges among %zu pairs; %zu of %zu genuine duplicates found", merged,
                n * (n - 1) / 2, found_genuine, NGENUINE);
    cr_assert_eq(merged, 0);
    /* a copy of every document with 1..5 edits, three seeds */
    static char pool[32][48];
    size_t hit = 0, total = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        uint64_t s = seed * 0x5bd1e995ULL;
        for (size_t i = 0; i < n; i++) {
            char *tc = strdup(d[i].title), *bc = strdup(d[i].body);
            words f[2];
            split(tc, &f[0]);
            split(bc, &f[1]);
            size_t np = 0, k = 1 + rng_next(&s) % 5;
            for (size_t e = 0; e < k; e++)
                edit(f, d, n, &s, pool, &np);
            char *t2 = join(&f[0]), *b2 = join(&f[1]);
            uint8_t c[IDX_DUPSIG_BYTES];
            idx_dupsig(t2, strlen(t2), b2, strlen(b2), c);
            total++;
            hit += idx_dupsig_near(d[i].sig, c, NULL);
            free(t2);
            free(b2);
            free(tc);
            free(bc);
        }
    }
    double recall = (double)hit / (double)total;
    cr_log_info("copies with 1..5 edits: %zu of %zu near their original, recall %.4f", hit, total, recall);
    cr_assert_geq(recall, 0.95);
    free_docs(d, n);
}
