/* fuzz_topology.c - libFuzzer harness for the coordinator's topology file
 * parser (coordinator/topology.c, coord_topology_parse). Any bytes go in;
 * the parser must never crash, read out of bounds (the text is not
 * NUL-terminated) or leak, and:
 *
 *  - success gives shards 0..N-1, N in 1..COORD_MAX_SHARDS, each declared
 *    once (its line within the text) with 1..COORD_MAX_REPLICAS distinct
 *    addresses that coord_addr_check accepts, each shorter than
 *    COORD_MAX_ADDR;
 *  - failure is FN_EPARSE, FN_EINVAL or -ENOMEM with a message that starts
 *    with "NAME:" and leaves the topology empty;
 *  - coord_topology_free is idempotent.
 *
 * Built two ways: with clang -fsanitize=fuzzer by tests/fuzz/run_fuzz.sh
 * (run_fuzz.sh SRC_DIR SECONDS topology), and with fuzz_main.c in the
 * ordinary build, which runs the seed corpus (tests/fuzz/corpus/topology)
 * as a test. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topology.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *g_in;
static size_t g_n;

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_topology: %s: %s\ninput (%zu bytes): '", what, detail ? detail : "", g_n);
    fwrite(g_in, 1, g_n, stderr);
    fprintf(stderr, "'\n");
    abort();
}

static int contains(const uint8_t *d, size_t n, const char *s)
{
    size_t l = strlen(s);
    for (size_t i = 0; l <= n && i <= n - l; i++)
        if (memcmp(d + i, s, l) == 0) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_in = data;
    g_n = size;
    static const char name[] = "fuzz.topo";
    coord_topology t;
    memset(&t, 0xA5, sizeof t);   /* the parser must set it either way */
    fn_errbuf eb;
    eb.msg[0] = '\0';
    int rc = coord_topology_parse((const char *)data, size, name, &t, &eb);
    if (rc) {
        if (rc != FN_EPARSE && rc != FN_EINVAL && rc != -ENOMEM) fail("unexpected return code", eb.msg);
        if (strncmp(eb.msg, "fuzz.topo:", 10) != 0) fail("message without 'NAME:'", eb.msg);
        if (t.nshards != 0 || t.shards != NULL) fail("topology not empty on error", eb.msg);
        coord_topology_free(&t);
        return 0;
    }
    if (t.nshards < 1 || t.nshards > COORD_MAX_SHARDS || !t.shards) fail("shard count out of range", NULL);
    uint32_t lines = 1;
    for (size_t i = 0; i < size; i++) lines += data[i] == '\n';
    for (uint32_t s = 0; s < t.nshards; s++) {
        const coord_shard_conf *sc = &t.shards[s];
        if (sc->nreplicas < 1 || sc->nreplicas > COORD_MAX_REPLICAS || !sc->replicas)
            fail("replica count out of range", NULL);
        if (sc->line < 1 || sc->line > lines) fail("declaration line out of range", NULL);
        for (uint32_t i = 0; i < sc->nreplicas; i++) {
            const char *a = sc->replicas[i];
            if (!a) fail("NULL address", NULL);
            if (strlen(a) >= COORD_MAX_ADDR) fail("address too long", a);
            fn_errbuf aeb;
            if (coord_addr_check(a, &aeb) != 0) fail("an accepted address fails coord_addr_check", aeb.msg);
            if (!contains(data, size, a)) fail("an address not in the text", a);
            for (uint32_t j = 0; j < i; j++)
                if (strcmp(a, sc->replicas[j]) == 0) fail("an address listed twice", a);
        }
        /* distinct declaration lines: each number once */
        for (uint32_t o = 0; o < s; o++)
            if (t.shards[o].line == sc->line) fail("two shards declared on one line", NULL);
    }
    coord_topology_free(&t);
    if (t.nshards != 0 || t.shards != NULL) fail("free did not empty the topology", NULL);
    coord_topology_free(&t);
    return 0;
}
