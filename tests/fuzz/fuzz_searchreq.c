/* fuzz_searchreq.c - libFuzzer harness for a client's SearchRequest as the
 * coordinator first sees it: arbitrary bytes go to protobuf-c's unpack of
 * funnel.v1.SearchRequest (proto/funnel.proto) and, when they unpack, to
 * coord_validate_search (coordinator/validate.c) with the coordinator's
 * default limits (coordinator/coord_config.h), as coord.c calls it. Nothing
 * may crash, read out of bounds or leak, and:
 *
 *  - validation returns 0 or FN_EINVAL with a non-empty message;
 *  - on 0 the k it returns is within 1..max_window, is the request's k (or
 *    COORD_DEFAULT_K for 0) and (page+1)*k is within max_window too;
 *  - the verdict is the same when asked twice (no hidden state);
 *  - a request that validates, without unknown fields, packs again and
 *    unpacks to a request that validates with the same k (unknown fields
 *    are skipped there: protobuf-c keeps one numbered 0 when its key is a
 *    non-canonical varint, "82 00", and packs it as the invalid key "02").
 *
 * Built two ways: with clang -fsanitize=fuzzer by tests/fuzz/run_fuzz.sh
 * (run_fuzz.sh SRC_DIR SECONDS searchreq), and with fuzz_main.c in the
 * ordinary build, which runs the seed corpus (tests/fuzz/corpus/searchreq)
 * as a test. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_config.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *g_in;
static size_t g_n;

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_searchreq: %s: %s\ninput (%zu bytes):", what, detail ? detail : "", g_n);
    for (size_t i = 0; i < g_n; i++) fprintf(stderr, " %02x", g_in[i]);
    fprintf(stderr, "\n");
    abort();
}

static int validate(const Funnel__V1__SearchRequest *req, const coord_limits *lim, uint32_t *k, fn_errbuf *eb)
{
    *k = 0xDEADBEEF;
    eb->msg[0] = '\0';
    int rc = coord_validate_search(req, lim, k, eb);
    if (rc == 0) {
        uint32_t want = req->k ? req->k : COORD_DEFAULT_K;
        if (*k < 1 || *k > lim->max_window) fail("k out of 1..max_window", NULL);
        if (*k != want) fail("k is not the request's", NULL);
        if (((uint64_t)req->page + 1) * *k > lim->max_window) fail("(page+1)*k over max_window", NULL);
        return 0;
    }
    if (rc != FN_EINVAL) fail("unexpected return code", eb->msg);
    if (!eb->msg[0]) fail("error without a message", NULL);
    if (!memchr(eb->msg, '\0', sizeof eb->msg)) fail("message not terminated", NULL);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_in = data;
    g_n = size;
    Funnel__V1__SearchRequest *req = funnel__v1__search_request__unpack(NULL, size, data);
    if (!req) return 0;
    /* the coordinator's defaults (coord_config_defaults, main.c) */
    coord_limits lim = {
        .max_window = COORD_DEFAULT_MAX_WINDOW,
        .max_query_bytes = COORD_DEFAULT_MAX_QUERY_BYTES,
        .max_query_words = COORD_DEFAULT_MAX_QUERY_WORDS,
        .max_explain_hits = COORD_DEFAULT_MAX_EXPLAIN_HITS,
        .max_reply_bytes = COORD_DEFAULT_MAX_REPLY_BYTES,
    };
    fn_errbuf e1, e2;
    uint32_t k1, k2;
    int r1 = validate(req, &lim, &k1, &e1);
    int r2 = validate(req, &lim, &k2, &e2);
    if (r1 != r2 || (r1 == 0 && k1 != k2) || (r1 && strcmp(e1.msg, e2.msg) != 0))
        fail("a second validation disagrees", r1 ? e1.msg : e2.msg);

    if (r1 == 0 && req->base.n_unknown_fields == 0) {
        /* what validates survives a round trip through the wire format */
        size_t len = funnel__v1__search_request__get_packed_size(req);
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf) abort();
        if (funnel__v1__search_request__pack(req, buf) != len) fail("packed size", NULL);
        Funnel__V1__SearchRequest *again = funnel__v1__search_request__unpack(NULL, len, buf);
        if (!again) fail("a valid request does not unpack after packing", NULL);
        if (validate(again, &lim, &k2, &e2) != 0) fail("a valid request packed again is refused", e2.msg);
        if (k2 != k1) fail("a valid request packed again has another k", NULL);
        funnel__v1__search_request__free_unpacked(again, NULL);
        free(buf);
    }
    funnel__v1__search_request__free_unpacked(req, NULL);
    return 0;
}
