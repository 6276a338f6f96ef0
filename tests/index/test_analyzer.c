/* test_analyzer.c - index/analyzer.c: folding, tokenizing, stopwords,
 * stemming, positions, limits and the describe/parse round trip. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libstemmer.h>

#include "analyzer.h"

#define MAXTOK 64

typedef struct toks {
    int n;
    char term[MAXTOK][128];
    uint32_t pos[MAXTOK];
    int stop_after;     /* return 7 after this many tokens (0 = never) */
} toks;

static int collect(void *ud, const char *term, size_t len, uint32_t pos)
{
    toks *t = ud;
    cr_assert_lt(t->n, MAXTOK);
    cr_assert_lt(len, sizeof t->term[0]);
    memcpy(t->term[t->n], term, len);
    t->term[t->n][len] = '\0';
    t->pos[t->n] = pos;
    t->n++;
    if (t->stop_after && t->n == t->stop_after) return 7;
    return 0;
}

static idx_analyzer_t *make(const char *stemmer, const char *stopwords, size_t maxb)
{
    idx_analyzer_opts o = { .stemmer = stemmer, .stopwords = stopwords, .max_token_bytes = maxb };
    idx_analyzer_t *a = NULL;
    fn_errbuf eb = { { 0 } };
    int rc = idx_analyzer_create(&o, &a, &eb);
    cr_assert_eq(rc, 0, "create: %s", fn_errmsg(&eb, rc));
    return a;
}

/* Analyze s and compare with the space-separated expected terms. */
static void expect(idx_analyzer_t *a, const char *s, size_t len, const char *want)
{
    toks t = { 0 };
    int rc = idx_analyze(a, s, len, collect, &t);
    cr_assert_eq(rc, 0);
    char got[4096] = "";
    for (int i = 0; i < t.n; i++) {
        if (i) strcat(got, " ");
        strcat(got, t.term[i]);
    }
    cr_assert_str_eq(got, want, "input \"%.*s\"", (int)len, s);
}

#define EXPECT(a, s, want) expect((a), (s), strlen(s), (want))

Test(analyzer, ascii_lowercase_and_split)
{
    idx_analyzer_t *a = make("none", "none", 0);
    EXPECT(a, "Hello, WORLD! x86-64 foo_bar\tbaz\n", "hello world x86 64 foo bar baz");
    EXPECT(a, "", "");
    EXPECT(a, "  ...  ", "");
    idx_analyzer_destroy(a);
}

Test(analyzer, unicode_casefold_and_marks)
{
    idx_analyzer_t *a = make("none", "none", 0);
    EXPECT(a, "Ærøskøbing", "ærøskøbing");
    EXPECT(a, "Straße", "strasse");
    EXPECT(a, "Café NAÏVE résumé", "cafe naive resume");
    /* Decomposed input (e + COMBINING ACUTE) folds the same as precomposed. */
    EXPECT(a, "cafe\xcc\x81", "cafe");
    /* NFKC: ligature, full-width letters and digits. */
    EXPECT(a, "\xef\xac\x81nd \xef\xbc\xa1\xef\xbc\xa2\xef\xbc\x91", "find ab1");
    /* Greek capital sigma folds to sigma; soft hyphen is ignorable. */
    EXPECT(a, "\xce\xa3\xce\x9f\xce\xa6\xce\x99\xce\x91 co\xc2\xadoperate", "σοφια cooperate");
    /* Non-ASCII punctuation and spaces separate. */
    EXPECT(a, "alpha\xe2\x80\x94" "beta\xc2\xa0gamma", "alpha beta gamma");
    idx_analyzer_destroy(a);
}

Test(analyzer, apostrophes)
{
    idx_analyzer_t *a = make("none", "none", 0);
    EXPECT(a, "don't O'Neill's 'quoted' rock''n", "dont oneills quoted rock n");
    EXPECT(a, "can\xe2\x80\x99t", "cant");           /* typographic apostrophe */
    EXPECT(a, "caf\xc3\xa9's", "cafes");
    idx_analyzer_destroy(a);
}

Test(analyzer, invalid_utf8_splits)
{
    idx_analyzer_t *a = make("none", "none", 0);
    EXPECT(a, "abc\xff" "def", "abc def");
    EXPECT(a, "abc\xc3" "def", "abc def");              /* truncated sequence */
    EXPECT(a, "\xe2\x82" "x\xed\xa0\x80y", "x y");       /* bad lead, surrogate */
    expect(a, "\xc3", 1, "");                           /* lone lead byte at the end */
    expect(a, "ab\0cd", 5, "ab cd");                     /* NUL is a separator too */
    /* Random bytes: must not crash or overrun (ASan watches). */
    unsigned seed = 12345;
    char buf[512];
    for (int round = 0; round < 500; round++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (char)(seed >> 16);
        }
        toks t = { 0 };
        t.stop_after = MAXTOK - 1;
        int rc = idx_analyze(a, buf, sizeof buf, collect, &t);
        cr_assert(rc == 0 || rc == 7);
    }
    idx_analyzer_destroy(a);
}

Test(analyzer, stemming_english)
{
    idx_analyzer_t *a = make("english", "none", 0);
    EXPECT(a, "running runs ran Connections", "run run ran connect");
    idx_analyzer_destroy(a);
    a = make("porter", "none", 0);
    EXPECT(a, "generalizations", "gener");
    idx_analyzer_destroy(a);
}

Test(analyzer, stopwords_keep_positions)
{
    idx_analyzer_t *a = make(NULL, NULL, 0);      /* defaults: english + english */
    toks t = { 0 };
    const char *s = "The flow of the air over A wing";
    cr_assert_eq(idx_analyze(a, s, strlen(s), collect, &t), 0);
    /* the(0) flow(1) of(2) the(3) air(4) over(5) a(6) wing(7) */
    cr_assert_eq(t.n, 3);
    cr_assert_str_eq(t.term[0], "flow"); cr_assert_eq(t.pos[0], 1);
    cr_assert_str_eq(t.term[1], "air");  cr_assert_eq(t.pos[1], 4);
    cr_assert_str_eq(t.term[2], "wing"); cr_assert_eq(t.pos[2], 7);
    idx_analyzer_destroy(a);
}

Test(analyzer, stopword_list)
{
    cr_assert(idx_stopword_english("the", 3));
    cr_assert(idx_stopword_english("yourselves", 10));
    cr_assert(idx_stopword_english("a", 1));
    cr_assert(!idx_stopword_english("wing", 4));
    cr_assert(!idx_stopword_english("th", 2));
    cr_assert(!idx_stopword_english("them2", 5));
    cr_assert(!idx_stopword_english("", 0));
    /* Capitalized input is folded before the stopword check. */
    idx_analyzer_t *a = make("none", "english", 0);
    EXPECT(a, "THE Wings OF Theirs theory", "wings theory");
    idx_analyzer_destroy(a);
}

Test(analyzer, stopword_file)
{
    char path[] = "/tmp/funnel_sw_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("# comment line\nWing\n  flow \nDon't\n\n", f);
    fclose(f);
    idx_analyzer_t *a = make("none", path, 0);
    EXPECT(a, "the wing flow dont don't air", "the air");
    char d[512];
    idx_analyzer_describe(a, d, sizeof d);
    cr_assert(strstr(d, path) != NULL);
    idx_analyzer_destroy(a);
    unlink(path);

    idx_analyzer_opts o = { .stopwords = "/nonexistent/funnel/stopwords.txt" };
    idx_analyzer_t *b = (idx_analyzer_t *)0x1;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(idx_analyzer_create(&o, &b, &eb), FN_EINVAL);
    cr_assert_null(b);
    cr_assert(strstr(eb.msg, "nonexistent") != NULL);
}

Test(analyzer, long_tokens_skipped)
{
    idx_analyzer_t *a = make("none", "none", 8);
    toks t = { 0 };
    const char *s = "short abcdefgh abcdefghi \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 end";
    cr_assert_eq(idx_analyze(a, s, strlen(s), collect, &t), 0);
    /* "abcdefghi" (9 bytes) is skipped; the five é's fold to "eeeee" (5 bytes) and stay. */
    cr_assert_eq(t.n, 5);
    cr_assert_str_eq(t.term[0], "short");
    cr_assert_str_eq(t.term[1], "abcdefgh");
    cr_assert_str_eq(t.term[2], "eeeee"); cr_assert_eq(t.pos[2], 3);
    cr_assert_str_eq(t.term[3], "eeee");
    cr_assert_str_eq(t.term[4], "end"); cr_assert_eq(t.pos[4], 5);
    idx_analyzer_destroy(a);

    /* Non-ASCII that stays multi-byte after folding counts bytes, not chars. */
    a = make("none", "none", 8);
    EXPECT(a, "\xce\xb1\xce\xb2\xce\xb3\xce\xb4 \xce\xb1\xce\xb2\xce\xb3\xce\xb4\xce\xb5 z",
           "\xce\xb1\xce\xb2\xce\xb3\xce\xb4 z");
    /* A very long run does not overflow anything. */
    char big[5000];
    memset(big, 'q', sizeof big);
    big[2500] = ' ';
    expect(a, big, sizeof big, "");
    idx_analyzer_destroy(a);
}

Test(analyzer, callback_stops)
{
    idx_analyzer_t *a = make("none", "none", 0);
    toks t = { 0 };
    t.stop_after = 2;
    const char *s = "one two three four";
    cr_assert_eq(idx_analyze(a, s, strlen(s), collect, &t), 7);
    cr_assert_eq(t.n, 2);
    idx_analyzer_destroy(a);
}

Test(analyzer, not_nul_terminated)
{
    idx_analyzer_t *a = make("none", "none", 0);
    const char s[] = "alpha beta";
    expect(a, s, 7, "alpha b");
    idx_analyzer_destroy(a);
}

Test(analyzer, describe_parse_roundtrip)
{
    idx_analyzer_t *a = make(NULL, NULL, 0);
    char d[256], storage[256];
    size_t need = idx_analyzer_describe(a, d, sizeof d);
    cr_assert_str_eq(d, "stemmer=english;stopwords=english;max_token_bytes=64");
    cr_assert_eq(need, strlen(d));
    cr_assert_eq(idx_analyzer_describe(a, d, 4), need);   /* reports the needed length */
    cr_assert_str_eq(d, "ste");
    idx_analyzer_destroy(a);

    a = make("porter", "none", 40);
    idx_analyzer_describe(a, d, sizeof d);
    idx_analyzer_opts o;
    cr_assert_eq(idx_analyzer_opts_parse(d, &o, storage, sizeof storage), 0);
    cr_assert_str_eq(o.stemmer, "porter");
    cr_assert_str_eq(o.stopwords, "none");
    cr_assert_eq(o.max_token_bytes, 40);
    idx_analyzer_t *b = NULL;
    cr_assert_eq(idx_analyzer_create(&o, &b, NULL), 0);
    char d2[256];
    idx_analyzer_describe(b, d2, sizeof d2);
    cr_assert_str_eq(d, d2);
    idx_analyzer_destroy(a);
    idx_analyzer_destroy(b);

    cr_assert_eq(idx_analyzer_opts_parse("stemmer=english;bogus=1", &o, storage, sizeof storage), FN_EINVAL);
    cr_assert_eq(idx_analyzer_opts_parse("max_token_bytes=abc", &o, storage, sizeof storage), FN_EINVAL);
    cr_assert_eq(idx_analyzer_opts_parse("max_token_bytes=0", &o, storage, sizeof storage), FN_EINVAL);
    cr_assert_eq(idx_analyzer_opts_parse("stemmer", &o, storage, sizeof storage), FN_EINVAL);
    cr_assert_eq(idx_analyzer_opts_parse("stemmer=english;stemmer=porter", &o, storage, sizeof storage), FN_EINVAL);
    cr_assert_eq(idx_analyzer_opts_parse("stemmer=english", &o, storage, 5), FN_EINVAL);
}

Test(analyzer, unknown_stemmer)
{
    idx_analyzer_opts o = { .stemmer = "klingon" };
    idx_analyzer_t *a = NULL;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(idx_analyzer_create(&o, &a, &eb), FN_EINVAL);
    cr_assert_null(a);
    cr_assert(strstr(eb.msg, "klingon") != NULL);

    idx_analyzer_opts big = { .max_token_bytes = 1000 };
    cr_assert_eq(idx_analyzer_create(&big, &a, NULL), FN_EINVAL);
    idx_analyzer_opts semi = { .stopwords = "a;b" };
    cr_assert_eq(idx_analyzer_create(&semi, &a, NULL), FN_EINVAL);
}

typedef struct stemcheck {
    struct sb_stemmer *st;
    const char *words[3];   /* the unstemmed words of the current call */
    int n, bad;
} stemcheck;

static int check_stem(void *ud, const char *term, size_t len, uint32_t pos)
{
    stemcheck *c = ud;
    const char *w = c->words[pos];
    const sb_symbol *s = sb_stemmer_stem(c->st, (const sb_symbol *)w, (int)strlen(w));
    size_t sl = (size_t)sb_stemmer_length(c->st);
    if (sl != len || memcmp(s, term, len) != 0) c->bad++;
    c->n++;
    return 0;
}

Test(analyzer, stem_cache_agrees_with_stemmer)
{
    /* Many distinct words, each seen several times, so that cache slots are
     * hit, missed and overwritten: every stem must equal libstemmer's. */
    idx_analyzer_t *a = make("english", "none", 0);
    stemcheck c = { .st = sb_stemmer_new("english", "UTF_8") };
    cr_assert_not_null(c.st);
    static const char *suffix[] = { "", "s", "ing", "ed", "ation", "ness", "ly", "er" };
    char w[3][40], text[200];
    unsigned seed = 7;
    for (int i = 0; i < 60000; i++) {
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = (seed >> 8) % 5000;
            snprintf(w[k], sizeof w[k], "%c%c%c%s", 'a' + r % 26, 'a' + (r / 26) % 26,
                     'b' + (r / 676) % 8, suffix[(seed >> 24) % 8]);
            c.words[k] = w[k];
        }
        int n = snprintf(text, sizeof text, "%s %s %s", w[0], w[1], w[2]);
        cr_assert_eq(idx_analyze(a, text, (size_t)n, check_stem, &c), 0);
    }
    cr_assert_eq(c.n, 180000);
    cr_assert_eq(c.bad, 0, "%d stems differ from libstemmer", c.bad);
    sb_stemmer_delete(c.st);
    idx_analyzer_destroy(a);
}

/* ---- idx_analyze_spans ---- */

#include <jansson.h>
#include <utf8proc.h>

typedef struct spantok {
    char term[300];
    size_t len;
    uint32_t pos;
    size_t start, end;
} spantok;

typedef struct spanlist {
    spantok *t;
    size_t n, cap;
} spanlist;

static void spanlist_push(spanlist *l, const char *term, size_t len, uint32_t pos, size_t s, size_t e)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->t = realloc(l->t, l->cap * sizeof *l->t);
        cr_assert_not_null(l->t);
    }
    cr_assert_lt(len, sizeof l->t[0].term);
    spantok *t = &l->t[l->n++];
    memcpy(t->term, term, len);
    t->term[len] = '\0';
    t->len = len;
    t->pos = pos;
    t->start = s;
    t->end = e;
}

static int plain_cb(void *ud, const char *term, size_t len, uint32_t pos)
{
    spanlist_push(ud, term, len, pos, 0, 0);
    return 0;
}

static int span_cb(void *ud, const char *term, size_t len, uint32_t pos, size_t s, size_t e)
{
    spanlist_push(ud, term, len, pos, s, e);
    return 0;
}

static int one_cb(void *ud, const char *term, size_t len, uint32_t pos)
{
    (void)pos;
    spanlist *l = ud;
    if (l->n < 2) spanlist_push(l, term, len, 0, 0, 0);
    else l->n++;
    return 0;
}

/* Both calls give the same (term, pos) sequence; every span is sane; with
 * refold, each span's bytes analyzed alone give exactly that one term.
 * Returns the span list (caller frees .t). */
static spanlist check_spans(idx_analyzer_t *a, const char *s, size_t len, int refold)
{
    spanlist p = { 0 }, q = { 0 };
    cr_assert_eq(idx_analyze(a, s, len, plain_cb, &p), 0);
    cr_assert_eq(idx_analyze_spans(a, s, len, span_cb, &q), 0);
    cr_assert_eq(p.n, q.n, "token count %zu vs %zu in \"%.*s\"", p.n, q.n, (int)len, s);
    size_t ps = 0, pe = 0;
    for (size_t i = 0; i < p.n; i++) {
        spantok *x = &p.t[i], *y = &q.t[i];
        cr_assert_str_eq(x->term, y->term);
        cr_assert_eq(x->pos, y->pos);
        cr_assert_lt(y->start, y->end);
        cr_assert_leq(y->end, len);
        cr_assert_geq(y->start, ps, "spans go back");
        cr_assert_geq(y->end, pe, "spans go back");
        ps = y->start;
        pe = y->end;
        /* Valid UTF-8 (so on code point boundaries), no ASCII separator inside. */
        for (size_t k = y->start; k < y->end;) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s + k,
                                                  (utf8proc_ssize_t)(y->end - k), &cp);
            cr_assert_gt(n, 0, "invalid UTF-8 in the span of \"%s\"", y->term);
            k += (size_t)n;
        }
        for (size_t k = y->start; k < y->end; k++) {
            unsigned char c = (unsigned char)s[k];
            cr_assert(c >= 0x80 || c == '\'' || (c >= '0' && c <= '9') ||
                      (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'),
                      "byte 0x%02x inside the span of \"%s\"", c, y->term);
        }
        if (refold) {
            spanlist r = { 0 };
            cr_assert_eq(idx_analyze(a, s + y->start, y->end - y->start, one_cb, &r), 0);
            cr_assert_eq(r.n, 1, "span \"%.*s\" of \"%s\" gives %zu tokens",
                         (int)(y->end - y->start), s + y->start, y->term, r.n);
            cr_assert_str_eq(r.t[0].term, y->term);
            free(r.t);
        }
    }
    free(p.t);
    return q;
}

/* Expected "term@start-end ..." of s. */
static void expect_spans(idx_analyzer_t *a, const char *s, const char *want)
{
    spanlist l = check_spans(a, s, strlen(s), 1);
    char got[2048] = "";
    for (size_t i = 0; i < l.n; i++) {
        char one[400];
        snprintf(one, sizeof one, "%s%s@%zu-%zu", i ? " " : "", l.t[i].term, l.t[i].start, l.t[i].end);
        strcat(got, one);
    }
    cr_assert_str_eq(got, want, "input \"%s\": got \"%s\", want \"%s\"", s, got, want);
    free(l.t);
}

Test(analyzer_spans, ascii_stopwords_apostrophes)
{
    idx_analyzer_t *a = make(NULL, NULL, 0);
    /* the(0) flow(1) of(2) the(3) air(4): positions as idx_analyze, spans exact */
    expect_spans(a, "The flow of the air", "flow@4-8 air@16-19");
    expect_spans(a, "  Heating, (heated) 'transfer'.", "heat@2-9 heat@12-18 transfer@21-29");
    expect_spans(a, "don't O'Neill's rock''n x86-64", "dont@0-5 oneil@6-15 rock@16-20 n@22-23 x86@24-27 64@28-30");
    idx_analyzer_destroy(a);
}

Test(analyzer_spans, unicode_folding)
{
    idx_analyzer_t *a = make("none", "none", 0);
    /* é is 2 bytes: the spans count original bytes, not folded ones. */
    expect_spans(a, "Caf\xc3\xa9 NA\xc3\x8f" "VE r\xc3\xa9sum\xc3\xa9", "cafe@0-5 naive@6-12 resume@13-21");
    /* Decomposed: the combining accent stays inside the span. */
    expect_spans(a, "cafe\xcc\x81 x", "cafe@0-6 x@7-8");
    /* Ligature (3 bytes -> "fi"), full-width letters (3 bytes each -> 1). */
    expect_spans(a, "\xef\xac\x81nd \xef\xbc\xa1\xef\xbc\xa2\xef\xbc\x91", "find@0-5 ab1@6-15");
    /* Straße -> strasse (longer than the original), soft hyphen inside. */
    expect_spans(a, "Stra\xc3\x9f" "e co\xc2\xadoperate", "strasse@0-7 cooperate@8-19");
    /* Typographic apostrophe, non-ASCII dash and no-break space separate. */
    expect_spans(a, "can\xe2\x80\x99t alpha\xe2\x80\x94" "beta\xc2\xa0gamma",
                 "cant@0-7 alpha@8-13 beta@16-20 gamma@22-27");
    /* Conjoining Hangul jamo compose into one syllable (a chunk of three). */
    expect_spans(a, "x \xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8 y", "x@0-1 \xea\xb0\x81@2-11 y@12-13");
    /* Greek with a final sigma. */
    expect_spans(a, "\xce\xa3\xce\x9f\xce\xa6\xce\x99\xce\x91 ok", "\xcf\x83\xce\xbf\xcf\x86\xce\xb9\xce\xb1@0-10 ok@11-13");
    idx_analyzer_destroy(a);
}

Test(analyzer_spans, one_code_point_several_tokens)
{
    /* U+33C2 SQUARE AM folds to "a.m.": both tokens get its 3 bytes. */
    idx_analyzer_t *a = make("none", "none", 0);
    spanlist l = check_spans(a, "\xe3\x8f\x82 z", 6, 0);
    cr_assert_eq(l.n, 3);
    cr_assert_str_eq(l.t[0].term, "a"); cr_assert_eq(l.t[0].start, 0); cr_assert_eq(l.t[0].end, 3);
    cr_assert_str_eq(l.t[1].term, "m"); cr_assert_eq(l.t[1].start, 0); cr_assert_eq(l.t[1].end, 3);
    cr_assert_str_eq(l.t[2].term, "z"); cr_assert_eq(l.t[2].start, 4); cr_assert_eq(l.t[2].end, 5);
    free(l.t);
    idx_analyzer_destroy(a);
}

Test(analyzer_spans, invalid_utf8_and_limits)
{
    idx_analyzer_t *a = make("none", "none", 8);
    expect_spans(a, "abc\xff" "def", "abc@0-3 def@4-7");
    expect_spans(a, "\xe2\x82" "x\xed\xa0\x80y \xc3\xa9t\xc3", "x@2-3 y@6-7 et@8-11");
    /* Skipped long tokens still count positions. */
    spanlist l = check_spans(a, "short abcdefghi end", 19, 1);
    cr_assert_eq(l.n, 2);
    cr_assert_eq(l.t[1].pos, 2);
    cr_assert_eq(l.t[1].start, 16);
    free(l.t);
    /* Random bytes: same sequence as idx_analyze, sane spans (ASan watches). */
    unsigned seed = 4242;
    char buf[512];
    for (int round = 0; round < 500; round++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = seed >> 16;
            /* Mostly letters and spaces, some high bytes, so tokens do form. */
            buf[i] = (char)(r % 4 == 0 ? ' ' : r % 4 == 1 ? 'a' + (r >> 4) % 26 : (r >> 3));
        }
        spanlist q = check_spans(a, buf, sizeof buf, 0);
        free(q.t);
    }
    idx_analyzer_destroy(a);
}

static int stop_span_cb(void *ud, const char *term, size_t len, uint32_t pos, size_t s, size_t e)
{
    (void)term; (void)len; (void)pos; (void)s; (void)e;
    int *n = ud;
    return ++*n == 2 ? 9 : 0;
}

Test(analyzer_spans, span_callback_stops)
{
    idx_analyzer_t *a = make("none", "none", 0);
    int n = 0;
    cr_assert_eq(idx_analyze_spans(a, "one two caf\xc3\xa9 four", 19, stop_span_cb, &n), 9);
    cr_assert_eq(n, 2);
    n = 0;
    cr_assert_eq(idx_analyze_spans(a, "\xc3\xa9one \xc3\xa9two \xc3\xa9three", 20, stop_span_cb, &n), 9);
    cr_assert_eq(n, 2);
    idx_analyzer_destroy(a);
}

Test(analyzer_spans, cranfield_corpus, .timeout = 120)
{
    const char *dir = getenv("FUNNEL_DATA");
    char path[4096];
    snprintf(path, sizeof path, "%s/cranfield/corpus.jsonl", dir ? dir : "../shared/data");
    FILE *f = fopen(path, "r");
    if (!f) cr_skip_test("no %s", path);
    idx_analyzer_t *a = make(NULL, NULL, 0);
    char *line = NULL;
    size_t cap = 0, docs = 0, tokens = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t je;
        json_t *d = json_loads(line, 0, &je);
        cr_assert_not_null(d, "%s", je.text);
        const char *fields[] = { "title", "body" };
        for (int k = 0; k < 2; k++) {
            json_t *v = json_object_get(d, fields[k]);
            if (!json_is_string(v)) continue;
            spanlist l = check_spans(a, json_string_value(v), json_string_length(v), 1);
            tokens += l.n;
            free(l.t);
        }
        json_decref(d);
        docs++;
    }
    free(line);
    fclose(f);
    cr_assert_eq(docs, 1400);
    cr_assert_gt(tokens, 100000);
    idx_analyzer_destroy(a);
}
