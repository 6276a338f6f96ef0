/* fuzz_rankmodel.c - libFuzzer harness for the ranking model text format
 * (rank/model.c, rank_model_load; docs/ltr.md). The loader reads a file, so
 * the input is written to a temporary file (mkstemp in /tmp, unlinked
 * after). Nothing may crash, read out of bounds or leak, and:
 *
 *  - the load returns 0 or FN_EPARSE / FN_EVERSION / FN_EINVAL / -errno
 *    with a message that starts with the path, and no model on error;
 *  - a model that loads scores the all-zero feature vector (and the
 *    all-missing one) to the value a plain walk of its trees gives
 *    (base_score + the leaves 0 reaches; the linear part adds 0), finite
 *    whenever the sum of those terms' magnitudes is;
 *  - saved (rank_model_save) and loaded again it is the same model: same
 *    kind, objective, feature and tree counts, and the same scores bit for
 *    bit.
 *
 * Models are trusted configuration, but the format also arrives over RPC
 * (a pushed model, rank_ranker_parse). This harness found that the loader
 * allocated 8 * N bytes for "features N" (N up to INT32_MAX) before reading
 * anything else; it now refuses more than RANK_MODEL_MAX_FEATURES and node
 * counts the rest of the file cannot hold, and the input is a seed
 * (corpus/rankmodel/features-oom.bin). FUZZ_RANKMODEL_MAX_FEATURES (default 0:
 * no cap) can still skip inputs declaring more features.
 *
 * Built two ways: with clang -fsanitize=fuzzer by tests/fuzz/run_fuzz.sh
 * (run_fuzz.sh SRC_DIR SECONDS rankmodel), and with fuzz_main.c in the
 * ordinary build, which runs the seed corpus (tests/fuzz/corpus/rankmodel)
 * as a test. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"

#ifndef FUZZ_RANKMODEL_MAX_FEATURES
#define FUZZ_RANKMODEL_MAX_FEATURES 0
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *g_in;
static size_t g_n;
static char g_path[64], g_path2[80];

static void cleanup(void)
{
    if (g_path[0]) unlink(g_path);
    if (g_path2[0]) unlink(g_path2);
    g_path[0] = g_path2[0] = '\0';
}

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_rankmodel: %s: %s\ninput (%zu bytes): '", what, detail ? detail : "", g_n);
    fwrite(g_in, 1, g_n, stderr);
    fprintf(stderr, "'\n");
    cleanup();
    abort();
}

/* 1 if the text declares more features than the cap (a line "features N",
 * leading blanks allowed, N past the cap). */
static int too_many_features(const uint8_t *d, size_t n)
{
    if (FUZZ_RANKMODEL_MAX_FEATURES <= 0) return 0;
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && d[e] != '\n') e++;
        size_t p = i;
        while (p < e && (d[p] == ' ' || d[p] == '\t')) p++;
        if (e - p > 8 && memcmp(d + p, "features", 8) == 0) {
            p += 8;
            while (p < e && (d[p] == ' ' || d[p] == '\t')) p++;
            unsigned long long v = 0;
            while (p < e && d[p] >= '0' && d[p] <= '9') {
                v = v * 10 + (unsigned)(d[p++] - '0');
                if (v > (unsigned long long)FUZZ_RANKMODEL_MAX_FEATURES) return 1;
            }
        }
        i = e + 1;
    }
    return 0;
}

static void write_file(const uint8_t *d, size_t n)
{
    snprintf(g_path, sizeof g_path, "/tmp/fuzz_rankmodel.XXXXXX");
    int fd = mkstemp(g_path);
    if (fd < 0) {
        g_path[0] = '\0';
        perror("fuzz_rankmodel: mkstemp");
        abort();
    }
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, d + off, n - off);
        if (w <= 0) {
            close(fd);
            fail("cannot write the temporary file", g_path);
        }
        off += (size_t)w;
    }
    close(fd);
}

static int load(const char *path, rank_model_t **m, fn_errbuf *eb)
{
    *m = (rank_model_t *)eb;
    eb->msg[0] = '\0';
    int rc = rank_model_load(path, m, eb);
    if (rc) {
        if (rc != FN_EPARSE && rc != FN_EVERSION && rc != FN_EINVAL && !(rc < 0 && rc > -4096))
            fail("unexpected return code", eb->msg);
        if (*m) fail("a model set on error", eb->msg);
        size_t pl = strlen(path);
        if (strncmp(eb->msg, path, pl) != 0 || eb->msg[pl] != ':') fail("message without 'PATH:'", eb->msg);
    } else if (!*m) {
        fail("no model on success", NULL);
    }
    return rc;
}

/* base_score + the leaves the row x (one value for every feature) reaches,
 * walking the trees as built; *mag = the sum of the terms' magnitudes. */
static double walk(const rank_model_t *m, float x, double *mag)
{
    double s = rank_model_base_score(m);
    *mag = fabs(s);
    for (size_t t = 0; t < rank_model_ntrees(m); t++) {
        size_t n;
        const rank_node *nodes = rank_model_tree(m, t, &n);
        if (!nodes || n == 0) fail("a tree without nodes", NULL);
        size_t i = 0, steps = 0;
        while (nodes[i].feature >= 0) {
            if (++steps > n) fail("a tree with a cycle", NULL);
            int left = isnan(x) ? nodes[i].missing_left : x < nodes[i].threshold;
            long c = left ? nodes[i].left : nodes[i].right;
            if (c < 0 || (size_t)c >= n) fail("a child out of range", NULL);
            i = (size_t)c;
        }
        s += nodes[i].value;
        *mag += fabs(nodes[i].value);
    }
    if (rank_model_kind(m) == RANK_MODEL_LINEAR) {
        s += rank_model_bias(m);
        *mag += fabs(rank_model_bias(m));
    }
    return s;
}

static void score(const rank_model_t *m, double out[2])
{
    size_t nf = rank_model_nfeatures(m);
    float *X = calloc(2 * (nf ? nf : 1), sizeof *X);
    if (!X) abort();
    for (size_t i = 0; i < nf; i++) X[nf + i] = NAN;
    size_t stride = nf ? nf : 1;
    rank_model_score(m, X, 2, stride, out);
    free(X);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_in = data;
    g_n = size;
    if (too_many_features(data, size)) return 0;
    write_file(data, size);
    fn_errbuf eb;
    rank_model_t *m;
    if (load(g_path, &m, &eb) != 0) {
        cleanup();
        return 0;
    }

    double got[2];
    score(m, got);
    for (int row = 0; row < 2; row++) {
        double mag, want = walk(m, row ? NAN : 0.0f, &mag);
        char what[96];
        snprintf(what, sizeof what, "%s row: score %.17g, tree walk %.17g", row ? "missing" : "zero", got[row],
                 want);
        if (mag <= DBL_MAX) {
            if (!isfinite(got[row])) fail("a non-finite score", what);
            if (fabs(got[row] - want) > 1e-9 * mag + 1e-300) fail("the score is not the trees' sum", what);
        }
    }

    /* save and load again: the same model */
    snprintf(g_path2, sizeof g_path2, "%s.saved", g_path);
    if (rank_model_save(m, g_path2, &eb) != 0) fail("cannot save a model that loaded", eb.msg);
    rank_model_t *m2;
    if (load(g_path2, &m2, &eb) != 0) fail("a saved model does not load", eb.msg);
    if (rank_model_kind(m2) != rank_model_kind(m) || strcmp(rank_model_objective(m2), rank_model_objective(m)) ||
        rank_model_nfeatures(m2) != rank_model_nfeatures(m) || rank_model_ntrees(m2) != rank_model_ntrees(m))
        fail("a saved model loads as another", NULL);
    double again[2];
    score(m2, again);
    if (memcmp(again, got, sizeof got) != 0) fail("a saved model scores differently", NULL);
    rank_model_free(m2);
    rank_model_free(m);
    cleanup();
    return 0;
}
