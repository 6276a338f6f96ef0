/* fuzz_corpusline.c - libFuzzer harness for the index builder's corpus line
 * parser (index/builder.c analyze_line: jansson parse, id/title/body/url
 * checks, popularity/published_at, vertical/lang/labels, embedding, source
 * compression, dupsig, analysis), through the seam idx_corpus_line_check
 * (builder_int.h), which runs that path on one line with a private analyzer
 * and batch and frees everything. Any bytes go in as one line (not
 * NUL-terminated, NULs and invalid UTF-8 included); the parser must never
 * crash, read out of bounds or leak, and:
 *
 *  - the result is 0 (indexed, or a blank line), FN_EPARSE or FN_ELIMIT (the
 *    build would reject the line) or -ENOMEM; never anything else, and in
 *    particular not FN_EFORMAT, which the seam returns when an accepted
 *    document's result is laid out wrong (an offset past the batch buffer,
 *    term frequencies that do not add up to the field lengths, positions
 *    that do not match them);
 *  - a rejected line comes with a non-empty reason; an accepted one with
 *    none ("" or "blank line", the latter only for whitespace-only input).
 *
 * Built two ways: with clang -fsanitize=fuzzer by tests/fuzz/run_fuzz.sh
 * (run_fuzz.sh SRC_DIR SECONDS corpusline), and with fuzz_main.c in the
 * ordinary build, which runs the seed corpus (tests/fuzz/corpus/corpusline)
 * as a test. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builder_int.h"
#include "fn_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *g_in;
static size_t g_n;

static void fail(const char *what, int rc, const char *why)
{
    fprintf(stderr, "fuzz_corpusline: %s (rc %d %s, why \"%s\")\ninput (%zu bytes):", what, rc,
            fn_strerror(rc), why, g_n);
    for (size_t i = 0; i < g_n && i < 512; i++) fprintf(stderr, " %02x", g_in[i]);
    fprintf(stderr, "\n");
    abort();
}

static int all_space(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (d[i] != ' ' && d[i] != '\t' && d[i] != '\r' && d[i] != '\n') return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_in = data;
    g_n = size;
    char why[400];
    memset(why, 'x', sizeof why);   /* the seam must overwrite it */
    int rc = idx_corpus_line_check((const char *)data, size, why, sizeof why);
    if (!memchr(why, '\0', sizeof why)) fail("reason not NUL-terminated", rc, "");
    switch (rc) {
    case 0:
        if (strcmp(why, "blank line") == 0) {
            if (!all_space(data, size)) fail("non-blank input called blank", rc, why);
        } else if (why[0] != '\0') {
            fail("accepted line with a reason", rc, why);
        } else if (all_space(data, size)) {
            fail("blank input accepted as a document", rc, why);
        }
        break;
    case FN_EPARSE:
    case FN_ELIMIT:
        if (why[0] == '\0') fail("rejected line without a reason", rc, why);
        break;
    case -ENOMEM:
        break;
    default:
        fail("unexpected result", rc, why);
    }
    return 0;
}
