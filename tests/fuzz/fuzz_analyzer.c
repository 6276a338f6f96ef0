/* fuzz_analyzer.c - libFuzzer harness for the text analyzer (index/analyzer.c:
 * utf8proc folding, tokenizing, stopwords, Snowball stemming) that every
 * document and every query goes through. Any bytes go in (invalid UTF-8,
 * NULs, huge code points); the analyzer must never crash, read out of
 * bounds (the text is not NUL-terminated) or leak, and:
 *
 *  - every token is 1..max_token_bytes bytes of valid UTF-8 without an
 *    ASCII space or control byte, and positions never decrease;
 *  - idx_analyze and idx_analyze_spans give the same (term, pos) sequence;
 *  - spans lie inside the text, start <= end, on code point boundaries
 *    (never a continuation byte at start), and neither start nor end ever
 *    decreases from one token to the next;
 *  - analyzing the same bytes twice gives the same tokens (no hidden state).
 *
 * The first input byte picks the stemmer (english, porter, none) and the
 * max token length (8 or 64), so short tokens and the truncation are both
 * exercised. Built with clang -fsanitize=fuzzer by tests/fuzz/run_fuzz.sh
 * (run_fuzz.sh SRC_DIR SECONDS analyzer) and with fuzz_main.c in the
 * ordinary build over tests/fuzz/corpus/analyzer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer.h"
#include "fn_query.h"   /* fn_utf8_valid */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXTOK 4096

typedef struct tok { uint32_t pos; size_t len, start, end; char term[72]; } tok;

typedef struct run {
    tok *t;
    size_t n;
    size_t max_bytes;
    const uint8_t *text;
    size_t tlen;
} run;

static const uint8_t *g_in;
static size_t g_n;

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_analyzer: %s\ninput (%zu bytes):", what, g_n);
    for (size_t i = 0; i < g_n && i < 512; i++) fprintf(stderr, " %02x", g_in[i]);
    fprintf(stderr, "\n");
    abort();
}

static int on_tok(void *ud, const char *term, size_t len, uint32_t pos)
{
    run *r = ud;
    if (len == 0 || len > r->max_bytes) fail("token length out of 1..max_token_bytes");
    if (!fn_utf8_valid(term, len)) fail("token is not valid UTF-8");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)term[i] <= 0x20 || term[i] == 0x7f) fail("token holds a space or control byte");
    if (r->n && pos < r->t[r->n - 1].pos) fail("positions went back");
    if (r->n < MAXTOK) {
        tok *t = &r->t[r->n];
        t->pos = pos;
        t->len = len;
        memcpy(t->term, term, len < sizeof t->term ? len : sizeof t->term);
    }
    r->n++;
    return 0;
}

static int on_span(void *ud, const char *term, size_t len, uint32_t pos, size_t start, size_t end)
{
    run *r = ud;
    size_t i = r->n;
    if (start > end || end > r->tlen) fail("span outside the text");
    if (start < r->tlen && (r->text[start] & 0xc0) == 0x80) fail("span starts inside a code point");
    if (i && i <= MAXTOK && (start < r->t[i - 1].start || end < r->t[i - 1].end)) fail("spans went back");
    if (on_tok(ud, term, len, pos)) return 1;
    if (i < MAXTOK) {
        r->t[i].start = start;
        r->t[i].end = end;
    }
    return 0;
}

static void same(const run *a, const run *b, const char *what)
{
    if (a->n != b->n) fail(what);
    for (size_t i = 0; i < a->n && i < MAXTOK; i++)
        if (a->t[i].pos != b->t[i].pos || a->t[i].len != b->t[i].len ||
            memcmp(a->t[i].term, b->t[i].term, a->t[i].len < sizeof a->t[i].term ? a->t[i].len : sizeof a->t[i].term))
            fail(what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    g_in = data;
    g_n = size;
    static const char *const stemmers[] = { "english", "porter", "none", "english" };
    idx_analyzer_opts o = { stemmers[data[0] & 3], "english", (data[0] & 4) ? 8 : 64 };
    static idx_analyzer_t *an[8];
    int which = data[0] & 7;
    if (!an[which]) {
        fn_errbuf eb;
        if (idx_analyzer_create(&o, &an[which], &eb) != 0) fail("cannot create the analyzer");
    }
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    static tok t1[MAXTOK], t2[MAXTOK], t3[MAXTOK];
    run a = { t1, 0, o.max_token_bytes, data + 1, len };
    run b = { t2, 0, o.max_token_bytes, data + 1, len };
    run c = { t3, 0, o.max_token_bytes, data + 1, len };
    if (idx_analyze(an[which], text, len, on_tok, &a) != 0) fail("idx_analyze failed");
    if (idx_analyze_spans(an[which], text, len, on_span, &b) != 0) fail("idx_analyze_spans failed");
    if (idx_analyze(an[which], text, len, on_tok, &c) != 0) fail("idx_analyze failed the second time");
    same(&a, &b, "idx_analyze and idx_analyze_spans disagree");
    same(&a, &c, "the same text analyzed twice gives other tokens");
    return 0;
}
