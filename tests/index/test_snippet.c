/* test_snippet.c - index/snippet.c: the highlighted best passage of a body.
 * Hand cases (where the window goes, stemming, no match, empty, long,
 * unicode, invalid UTF-8, whitespace, weights, limits), invariants on random
 * bytes, and every cranfield document against cranfield queries (with the
 * cost per snippet printed). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <utf8proc.h>

#include "analyzer.h"
#include "snippet.h"
#include "testutil.h"

static idx_analyzer_t *an;

static void setup(void)
{
    fn_errbuf eb = { { 0 } };
    int rc = idx_analyzer_create(NULL, &an, &eb);       /* english + english, as an index */
    cr_assert_eq(rc, 0, "%s", fn_errmsg(&eb, rc));
}

static void teardown(void) { idx_analyzer_destroy(an); }

TestSuite(snippet, .init = setup, .fini = teardown);

/* ---- query terms ---- */

#define MAXT 64

typedef struct qterms {
    char *t[MAXT];
    size_t len[MAXT];
    double w[MAXT];
    size_t n;
} qterms;

static int qterm_cb(void *ud, const char *term, size_t len, uint32_t pos)
{
    (void)pos;
    qterms *q = ud;
    if (q->n == MAXT) return 0;
    q->t[q->n] = strndup(term, len);
    cr_assert_not_null(q->t[q->n]);
    q->len[q->n] = len;
    q->w[q->n] = 1;
    q->n++;
    return 0;
}

/* The analyzed terms of a query text, as the query side makes them. */
static qterms query(const char *text)
{
    qterms q = { 0 };
    cr_assert_eq(idx_analyze(an, text, strlen(text), qterm_cb, &q), 0);
    return q;
}

static void qfree(qterms *q)
{
    for (size_t i = 0; i < q->n; i++) free(q->t[i]);
    q->n = 0;
}

static int is_term(const qterms *q, const char *t, size_t len)
{
    for (size_t i = 0; i < q->n; i++)
        if (q->len[i] == len && memcmp(q->t[i], t, len) == 0) return 1;
    return 0;
}

/* ---- invariants ---- */

typedef struct outtok { size_t s, e; int hit; } outtok;

typedef struct outtoks {
    const qterms *q;
    outtok t[4096];
    size_t n;
} outtoks;

static int out_cb(void *ud, const char *term, size_t len, uint32_t pos, size_t s, size_t e)
{
    (void)pos;
    outtoks *o = ud;
    if (o->n < 4096) o->t[o->n++] = (outtok){ s, e, is_term(o->q, term, len) };
    return 0;
}

static int valid_utf8(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

enum { WHOLE = 1 };     /* flags: the window is cut between whole tokens */

/* What every snippet must satisfy. With WHOLE (ordinary text: words of
 * letters, spaces), the marks are exactly the query-term tokens of the
 * output text, found by analyzing it again. */
static void check(const idx_snippet *s, const qterms *q, size_t max_bytes, int flags)
{
    cr_assert_not_null(s->text);
    cr_assert_eq(strlen(s->text), s->len, "embedded NUL");
    cr_assert(valid_utf8(s->text, s->len), "invalid UTF-8: \"%s\"", s->text);
    size_t bound = max_bytes;                           /* a longer token is kept whole */
    for (size_t k = 0; k < s->nmarks; k++)
        if (s->marks[k][1] - s->marks[k][0] > bound) bound = s->marks[k][1] - s->marks[k][0];
    cr_assert(s->len <= 3 * bound + 6, "len %zu", s->len);
    if (s->len) {
        cr_assert_neq(s->text[0], ' ');
        cr_assert_neq(s->text[s->len - 1], ' ');
    }
    for (size_t i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)s->text[i];
        cr_assert(c > 0x20 || (c == ' ' && s->text[i + 1] != ' '), "whitespace left at %zu in \"%s\"", i, s->text);
        cr_assert_neq(c, 0x7f);
    }
    cr_assert(s->nmarks == 0 || s->marks != NULL);
    for (size_t k = 0; k < s->nmarks; k++) {
        uint32_t a = s->marks[k][0], z = s->marks[k][1];
        cr_assert_lt(a, z);
        cr_assert_leq(z, s->len);
        if (k) cr_assert_geq(a, s->marks[k - 1][1], "marks overlap or go back");
        cr_assert(valid_utf8(s->text + a, z - a), "mark on a code point boundary");
        /* The mark is one body token: analyzed alone, one query term. */
        qterms m = { 0 };
        cr_assert_eq(idx_analyze(an, s->text + a, z - a, qterm_cb, &m), 0);
        cr_assert_eq(m.n, 1, "mark \"%.*s\" gives %zu terms", (int)(z - a), s->text + a, m.n);
        cr_assert(is_term(q, m.t[0], m.len[0]), "mark \"%.*s\" -> \"%s\" is no query term",
                  (int)(z - a), s->text + a, m.t[0]);
        qfree(&m);
    }
    if (flags & WHOLE) {
        static outtoks o;
        o.q = q;
        o.n = 0;
        cr_assert_eq(idx_analyze_spans(an, s->text, s->len, out_cb, &o), 0);
        size_t k = 0;
        for (size_t i = 0; i < o.n; i++) {
            if (!o.t[i].hit) continue;
            cr_assert_lt(k, s->nmarks, "query term at %zu not marked in \"%s\"", o.t[i].s, s->text);
            cr_assert_eq(s->marks[k][0], o.t[i].s, "mark %zu in \"%s\"", k, s->text);
            cr_assert_eq(s->marks[k][1], o.t[i].e);
            k++;
        }
        cr_assert_eq(k, s->nmarks, "marks on no query term in \"%s\"", s->text);
    }
}

/* The snippet of body for the query text (analyzed here). */
static idx_snippet snip_w(const char *body, size_t len, const char *qtext, const double *w,
                          size_t max_bytes, int flags)
{
    qterms q = query(qtext);
    if (w) memcpy(q.w, w, q.n * sizeof *w);
    idx_snippet s;
    idx_snippet_opts o = { .max_bytes = max_bytes };
    fn_errbuf eb = { { 0 } };
    int rc = idx_snippet_make(an, body, len, (const char *const *)q.t, q.len, q.w, q.n, &o, &s, &eb);
    cr_assert_eq(rc, 0, "%s", fn_errmsg(&eb, rc));
    check(&s, &q, max_bytes ? max_bytes : 240, flags);
    qfree(&q);
    return s;
}

static idx_snippet snip(const char *body, const char *qtext, size_t max_bytes)
{
    return snip_w(body, strlen(body), qtext, NULL, max_bytes, WHOLE);
}

/* The marked words, "[a] [b]", to compare. */
static const char *marked(const idx_snippet *s)
{
    static char buf[4096];
    buf[0] = '\0';
    for (size_t k = 0; k < s->nmarks; k++) {
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof buf - n, "%s[%.*s]", k ? " " : "",
                 (int)(s->marks[k][1] - s->marks[k][0]), s->text + s->marks[k][0]);
    }
    return buf;
}

#define ELL "\xe2\x80\xa6"

/* ---- hand cases ---- */

static const char *LONG_BODY =
    "Experimental investigation of the aerodynamics of a wing in a slipstream. "
    "An experimental study of a wing in a propeller slipstream was made in order to "
    "determine the spanwise distribution of the lift increase due to slipstream at "
    "different angles of attack of the wing. The results were intended in part as an "
    "evaluation basis for different theoretical treatments of this problem. Heating of "
    "the boundary layer was measured with thin-film gauges near the leading edge. "
    "The comparative span loading curves, together with supporting evidence, showed that "
    "a substantial part of the lift increment produced by the slipstream was due to a "
    "destalling or boundary-layer-control effect. An empirical evaluation of the "
    "destalling effects was made for the specific configuration of the experiment. "
    "Finally the transfer of momentum was estimated";

Test(snippet, term_at_start)
{
    idx_snippet s = snip(LONG_BODY, "experimental investigations", 100);
    cr_assert(strncmp(s.text, "Experimental investigation", 26) == 0, "\"%s\"", s.text);
    /* "experiment." at the very end stems to "experi": not marked. */
    cr_assert_str_eq(marked(&s), "[Experimental] [investigation] [experimental]");
    cr_assert_eq(s.marks[0][0], 0);
    cr_assert_leq(s.len, 100 + 3);
    cr_assert(strcmp(s.text + s.len - 3, ELL) == 0, "cut before the end: \"%s\"", s.text);
    idx_snippet_free(&s);
}

Test(snippet, term_in_middle_starts_at_its_sentence)
{
    idx_snippet s = snip(LONG_BODY, "heated layers", 100);
    /* "Heating of the boundary layer ..." begins a sentence: the passage does too. */
    cr_assert(strncmp(s.text, ELL "Heating of the boundary layer", 32) == 0, "\"%s\"", s.text);
    cr_assert_str_eq(marked(&s), "[Heating] [layer]");
    cr_assert(strcmp(s.text + s.len - 3, ELL) == 0);
    cr_assert_leq(s.len, 100 + 6);
    idx_snippet_free(&s);
}

Test(snippet, term_at_end)
{
    idx_snippet s = snip(LONG_BODY, "momentum transfer", 100);
    cr_assert(strncmp(s.text, ELL, 3) == 0);
    const char *end = "the transfer of momentum was estimated";
    cr_assert(s.len > strlen(end) && strcmp(s.text + s.len - strlen(end), end) == 0, "\"%s\"", s.text);
    cr_assert_str_eq(marked(&s), "[transfer] [momentum]");
    /* The window reaches the end: it uses its room before the terms. */
    cr_assert_gt(s.len, 80, "\"%s\"", s.text);
    idx_snippet_free(&s);
}

Test(snippet, best_window_wins)
{
    /* "heat" alone early; "heat transfer coefficient" together later. */
    char body[2048];
    snprintf(body, sizeof body,
             "Some heat was noted. %s Here the heat transfer coefficient was measured. %s",
             "Filler words about nothing in particular go here and there for a while. "
             "More filler words about nothing in particular go here and there again.",
             "Trailing words.");
    idx_snippet s = snip(body, "heat transfer coefficients", 80);
    cr_assert(strstr(s.text, "heat transfer coefficient") != NULL, "\"%s\"", s.text);
    cr_assert_str_eq(marked(&s), "[heat] [transfer] [coefficient]");
    idx_snippet_free(&s);

    /* Weights: a lone heavy term beats a lone light one. */
    const char *b2 = "alpha words words words words words words words words words words words "
                     "words words words words words words words words words words words omega";
    double w[2] = { 1.0, 5.0 };
    s = snip_w(b2, strlen(b2), "alpha omega", w, 40, WHOLE);
    cr_assert_str_eq(marked(&s), "[omega]");
    idx_snippet_free(&s);
    double w2[2] = { 5.0, 1.0 };
    s = snip_w(b2, strlen(b2), "alpha omega", w2, 40, WHOLE);
    cr_assert_str_eq(marked(&s), "[alpha]");
    idx_snippet_free(&s);
    /* Equal weights: the earliest. */
    s = snip_w(b2, strlen(b2), "alpha omega", NULL, 40, WHOLE);
    cr_assert_str_eq(marked(&s), "[alpha]");
    idx_snippet_free(&s);
}

Test(snippet, repeats_and_proximity)
{
    /* Same distinct terms in both halves; the second has them adjacent. */
    const char *b = "flow appears here, then many unrelated words follow for a while, then the wing. "
                    "Padding padding padding padding padding padding padding padding padding. "
                    "The wing flow was measured.";
    idx_snippet s = snip(b, "wing flow", 40);
    cr_assert(strstr(s.text, "wing flow") != NULL, "\"%s\"", s.text);
    idx_snippet_free(&s);
    /* A repeated term beats a single occurrence. */
    const char *r = "shock once. Padding padding padding padding padding padding padding padding. "
                    "shock and shock again.";
    s = snip(r, "shock", 30);
    cr_assert_str_eq(marked(&s), "[shock] [shock]", "\"%s\"", s.text);
    idx_snippet_free(&s);
}

Test(snippet, stemming_marks_inflections)
{
    idx_snippet s = snip("Heating, heated and HEATS: the heat.", "heat", 0);
    cr_assert_str_eq(s.text, "Heating, heated and HEATS: the heat.");
    cr_assert_str_eq(marked(&s), "[Heating] [heated] [HEATS] [heat]");
    cr_assert_eq(s.marks[0][0], 0); cr_assert_eq(s.marks[0][1], 7);
    idx_snippet_free(&s);
    /* Stopwords in the query are not terms; in the body they are never marked. */
    s = snip("the flow of the air", "the flow", 0);
    cr_assert_str_eq(marked(&s), "[flow]");
    idx_snippet_free(&s);
}

Test(snippet, no_match_gives_the_beginning)
{
    idx_snippet s = snip(LONG_BODY, "hypersonic", 60);
    cr_assert(strncmp(s.text, "Experimental investigation of the", 33) == 0, "\"%s\"", s.text);
    cr_assert_eq(s.nmarks, 0);
    cr_assert_null(s.marks);
    cr_assert(strcmp(s.text + s.len - 3, ELL) == 0);
    cr_assert_leq(s.len, 63);
    idx_snippet_free(&s);
    /* No terms at all: the same. */
    idx_snippet t;
    cr_assert_eq(idx_snippet_make(an, LONG_BODY, strlen(LONG_BODY), NULL, NULL, NULL, 0, NULL, &t, NULL), 0);
    cr_assert(strncmp(t.text, "Experimental investigation", 26) == 0);
    cr_assert_eq(t.nmarks, 0);
    idx_snippet_free(&t);
    /* A short body is shown whole, without ellipses. */
    s = snip("  Short body.\n", "wing", 0);
    cr_assert_str_eq(s.text, "Short body.");
    idx_snippet_free(&s);
}

Test(snippet, empty)
{
    idx_snippet s = snip("", "heat", 0);
    cr_assert_str_eq(s.text, "");
    cr_assert_eq(s.len, 0);
    cr_assert_eq(s.nmarks, 0);
    idx_snippet_free(&s);
    qterms q = query("heat");
    cr_assert_eq(idx_snippet_make(an, NULL, 0, (const char *const *)q.t, q.len, NULL, q.n, NULL, &s, NULL), 0);
    cr_assert_str_eq(s.text, "");
    idx_snippet_free(&s);
    idx_snippet_free(&s);                               /* twice is fine */
    s = snip(" \n\t  ", "heat", 0);
    cr_assert_str_eq(s.text, "");
    idx_snippet_free(&s);
    qfree(&q);
}

Test(snippet, whitespace_collapsed)
{
    idx_snippet s = snip("\n\n  heat\n\n\t  transfer \r\n in\tslabs  \n", "heat transfer slab", 0);
    cr_assert_str_eq(s.text, "heat transfer in slabs");
    cr_assert_str_eq(marked(&s), "[heat] [transfer] [slabs]");
    cr_assert_eq(s.marks[1][0], 5); cr_assert_eq(s.marks[1][1], 13);
    idx_snippet_free(&s);
    /* Control bytes and NUL count as whitespace. */
    const char b[] = "a\0b\x01\x7f" "heat";
    s = snip_w(b, sizeof b - 1, "heat", NULL, 0, WHOLE);
    cr_assert_str_eq(s.text, "a b heat");
    idx_snippet_free(&s);
}

Test(snippet, long_body_is_bounded)
{
    size_t n = 1 << 20;
    char *b = malloc(n + 1);
    cr_assert_not_null(b);
    for (size_t i = 0; i < n; i++) b[i] = (i % 8 == 7) ? ' ' : 'a' + (char)(i % 8);
    memcpy(b + 30000, " heat ", 6);                     /* inside the scanned prefix */
    memcpy(b + 500000, " flux ", 6);                    /* beyond it: not seen */
    b[n] = '\0';
    idx_snippet s = snip_w(b, n, "heat flux", NULL, 0, WHOLE);
    cr_assert_str_eq(marked(&s), "[heat]");
    cr_assert(strncmp(s.text, ELL, 3) == 0 && strcmp(s.text + s.len - 3, ELL) == 0);
    cr_assert_leq(s.len, 246);
    idx_snippet_free(&s);
    s = snip_w(b, n, "flux", NULL, 0, WHOLE);
    cr_assert_eq(s.nmarks, 0);
    cr_assert(strncmp(s.text, "abcdefg abcdefg", 15) == 0);
    idx_snippet_free(&s);
    /* A term right at the scan limit: the cut is at a space, never mid-word. */
    memset(b, 'x', n);
    memcpy(b + IDX_SNIPPET_SCAN_MAX - 3, " heating ", 9);
    s = snip_w(b, n, "heat", NULL, 0, 0);
    cr_assert_eq(s.nmarks, 0);                          /* "heating" is cut off whole */
    idx_snippet_free(&s);
    /* One huge token: cut at code point boundaries, still bounded. */
    s = snip_w(b, n, "heat", NULL, 50, 0);
    cr_assert_leq(s.len, 56);
    idx_snippet_free(&s);
    free(b);
}

Test(snippet, unicode)
{
    const char *b = "\xc3\x86r\xc3\xb8sk\xc3\xb8" "bing r\xc3\xa9sum\xc3\xa9 "
                    "Caf\xc3\xa9 na\xc3\xafve \xef\xac\x81nding cafe\xcc\x81 \xce\xa3\xce\x9f\xce\xa6\xce\x99\xce\x91";
    idx_snippet s = snip(b, "cafe find sophia \xcf\x83\xce\xbf\xcf\x86\xce\xb9\xce\xb1", 0);
    cr_assert_str_eq(marked(&s), "[Caf\xc3\xa9] [\xef\xac\x81nding] [cafe\xcc\x81] "
                                 "[\xce\xa3\xce\x9f\xce\xa6\xce\x99\xce\x91]");
    idx_snippet_free(&s);
    /* CJK without spaces: one long token; cut at code points. */
    char cjk[3 * 400 + 1];
    for (int i = 0; i < 400; i++) memcpy(cjk + 3 * i, "\xe6\xb0\xb4", 3);
    cjk[sizeof cjk - 1] = '\0';
    s = snip_w(cjk, strlen(cjk), "heat", NULL, 100, 0);
    cr_assert_eq(s.len, 99 + 3);
    idx_snippet_free(&s);
}

Test(snippet, invalid_utf8_is_replaced)
{
    const char b[] = "bad \xff\xfe bytes \xc3 heat \xed\xa0\x80 flux \xe2\x82";
    idx_snippet s = snip_w(b, sizeof b - 1, "heat flux", NULL, 0, 0);
    cr_assert_str_eq(s.text, "bad \xef\xbf\xbd bytes \xef\xbf\xbd heat \xef\xbf\xbd flux \xef\xbf\xbd");
    cr_assert_str_eq(marked(&s), "[heat] [flux]");
    idx_snippet_free(&s);
    /* Glued to a word: still a separator for the analyzer, one U+FFFD. */
    const char c[] = "heat\x80\x80transfer";
    s = snip_w(c, sizeof c - 1, "heat transfer", NULL, 0, 0);
    cr_assert_str_eq(s.text, "heat\xef\xbf\xbdtransfer");
    cr_assert_str_eq(marked(&s), "[heat] [transfer]");
    idx_snippet_free(&s);
}

Test(snippet, random_bytes)
{
    unsigned seed = 99;
    char buf[1500];
    for (int round = 0; round < 400; round++) {
        size_t n = 1 + (size_t)(round * 37) % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = seed >> 16;
            buf[i] = r % 3 == 0 ? ' ' : r % 3 == 1 ? "heatflux"[(r >> 4) % 8] : (char)(r >> 4);
        }
        /* max_bytes from 1: tokens longer than the window too. */
        idx_snippet s = snip_w(buf, n, "heat flux eat lux", NULL, 1 + (size_t)round % 90, 0);
        idx_snippet_free(&s);
    }
}

Test(snippet, limits_and_errors)
{
    /* A match longer than max_bytes is kept whole. */
    idx_snippet lt = snip("aa heating bb", "heat", 3);
    cr_assert_str_eq(lt.text, "\xe2\x80\xa6heating\xe2\x80\xa6");
    cr_assert_str_eq(marked(&lt), "[heating]");
    idx_snippet_free(&lt);
    /* max_marks keeps the first marks. */
    idx_snippet s;
    qterms q = query("heat");
    idx_snippet_opts o = { .max_marks = 2 };
    const char *b = "heat heat heat heat heat";
    cr_assert_eq(idx_snippet_make(an, b, strlen(b), (const char *const *)q.t, q.len, NULL, q.n, &o, &s, NULL), 0);
    cr_assert_eq(s.nmarks, 2);
    cr_assert_str_eq(s.text, b);
    idx_snippet_free(&s);
    /* Duplicate, empty and weightless terms. */
    const char *t[4] = { "heat", "heat", "", "flux" };
    size_t tl[4] = { 4, 4, 0, 4 };
    double w[4] = { 1, 2, 3, -1 };
    cr_assert_eq(idx_snippet_make(an, "flux heat", 9, t, tl, w, 4, NULL, &s, NULL), 0);
    cr_assert_str_eq(marked(&s), "[flux] [heat]");
    idx_snippet_free(&s);
    /* Bad arguments. */
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(idx_snippet_make(NULL, "x", 1, NULL, NULL, NULL, 0, NULL, &s, &eb), FN_EINVAL);
    cr_assert_null(s.text);
    cr_assert_eq(idx_snippet_make(an, NULL, 3, NULL, NULL, NULL, 0, NULL, &s, NULL), FN_EINVAL);
    cr_assert_eq(idx_snippet_make(an, "x", 1, NULL, NULL, NULL, 2, NULL, &s, NULL), FN_EINVAL);
    cr_assert_eq(idx_snippet_make(an, "x", 1, NULL, NULL, NULL, 0, NULL, NULL, NULL), FN_EINVAL);
    idx_snippet_free(NULL);
    qfree(&q);
}

/* ---- cranfield ---- */

typedef struct corpus {
    char **body;
    size_t *len;
    size_t n;
    qterms q[256];
    size_t nq;
} corpus;

static void load_cranfield(corpus *c)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/cranfield/corpus.jsonl", tu_data_dir());
    FILE *f = fopen(path, "r");
    if (!f) cr_skip_test("no %s", path);
    c->body = calloc(2000, sizeof *c->body);
    c->len = calloc(2000, sizeof *c->len);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0 && c->n < 2000) {
        json_error_t je;
        json_t *d = json_loads(line, 0, &je);
        cr_assert_not_null(d, "%s", je.text);
        json_t *b = json_object_get(d, "body");
        cr_assert(json_is_string(b));
        c->len[c->n] = json_string_length(b);
        c->body[c->n] = malloc(c->len[c->n] + 1);
        memcpy(c->body[c->n], json_string_value(b), c->len[c->n] + 1);
        c->n++;
        json_decref(d);
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/cranfield/queries.tsv", tu_data_dir());
    f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    while (getline(&line, &cap, f) > 0 && c->nq < 256) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        c->q[c->nq] = query(tab + 1);
        c->nq++;
    }
    free(line);
    fclose(f);
    cr_assert_eq(c->n, 1400);
    cr_assert_eq(c->nq, 225);
}

static void free_cranfield(corpus *c)
{
    for (size_t i = 0; i < c->n; i++) free(c->body[i]);
    free(c->body);
    free(c->len);
    for (size_t i = 0; i < c->nq; i++) qfree(&c->q[i]);
}

static int count_cb(void *ud, const char *term, size_t len, uint32_t pos)
{
    (void)term; (void)len; (void)pos;
    ++*(size_t *)ud;
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

Test(snippet, cranfield, .timeout = 300)
{
    static corpus c;
    load_cranfield(&c);
    /* Every document against three queries (with idf-ish weights varying by
     * term), every invariant checked. */
    size_t marks = 0, with_marks = 0, made = 0;
    for (size_t d = 0; d < c.n; d++) {
        for (size_t r = 0; r < 3; r++) {
            qterms *q = &c.q[(d * 7 + r * 31) % c.nq];
            for (size_t i = 0; i < q->n; i++) q->w[i] = 1.0 + (double)(q->len[i] % 4);
            size_t B = r == 0 ? 240 : r == 1 ? 120 : 400;
            idx_snippet s;
            idx_snippet_opts o = { .max_bytes = B };
            int rc = idx_snippet_make(an, c.body[d], c.len[d], (const char *const *)q->t, q->len,
                                      q->w, q->n, &o, &s, NULL);
            cr_assert_eq(rc, 0);
            check(&s, q, B, WHOLE);
            cr_assert_leq(s.len, B + 6, "doc %zu: %zu bytes", d, s.len);
            if (c.len[d] <= B)                          /* shown whole */
                cr_assert(strncmp(s.text, ELL, 3) != 0 && (s.len < 3 || strcmp(s.text + s.len - 3, ELL) != 0),
                          "doc %zu: \"%s\"", d, s.text);
            marks += s.nmarks;
            with_marks += s.nmarks > 0;
            made++;
            idx_snippet_free(&s);
        }
    }
    cr_assert_gt(with_marks, made / 2, "%zu of %zu snippets have marks", with_marks, made);

    /* The cost: every document x successive queries for about a second (all
     * 225 when fast enough), against analysis alone of the same bodies. */
    size_t nsn = 0, nq = 0;
    double t0 = now();
    while (nq < c.nq && (nq < 3 || now() - t0 < 1.0)) {
        qterms *q = &c.q[nq++];
        for (size_t d = 0; d < c.n; d++) {
            idx_snippet s;
            cr_assert_eq(idx_snippet_make(an, c.body[d], c.len[d], (const char *const *)q->t, q->len,
                                          q->w, q->n, NULL, &s, NULL), 0);
            idx_snippet_free(&s);
            nsn++;
        }
    }
    double t1 = now();
    size_t toks = 0, bytes = 0;
    for (size_t d = 0; d < c.n; d++) {
        cr_assert_eq(idx_analyze(an, c.body[d], c.len[d], count_cb, &toks), 0);
        bytes += c.len[d];
    }
    double t2 = now();
    printf("snippet: cranfield %zu docs (mean body %zu bytes), %zu snippets of %zu queries: "
           "%.2f us per snippet; idx_analyze alone %.2f us per body; %zu marks in the check pass\n",
           c.n, bytes / c.n, nsn, nq, (t1 - t0) * 1e6 / (double)nsn, (t2 - t1) * 1e6 / (double)c.n, marks);
    fflush(stdout);
    free_cranfield(&c);
}
