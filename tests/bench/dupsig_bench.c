/* dupsig_bench - near-duplicate signatures (index/dupsig.h) measured:
 *
 *   dupsig_bench CORPUS.jsonl [COPIES.jsonl PAIRS.tsv]
 *
 * Every pair of distinct CORPUS documents that idx_dupsig_near judges
 * near-duplicates (with its estimate and exact unigram+bigram Jaccard
 * not computed here: compare by eye), the recall over PAIRS (orig<TAB>copy,
 * tests/bench/near_dups.py), signature cost per document and comparison cost
 * per pair (all pairs of CORPUS). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dupsig.h"

typedef struct doc {
    char *id;
    uint8_t sig[IDX_DUPSIG_BYTES];
} doc;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static doc *load(const char *path, size_t *n, double *sig_s)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    size_t cap = 1024;
    doc *d = malloc(cap * sizeof *d);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    *n = 0;
    *sig_s = 0;
    while ((len = getline(&line, &lcap, f)) > 0) {
        json_t *o = json_loadb(line, (size_t)len, 0, NULL);
        if (!o) continue;
        if (*n == cap) d = realloc(d, (cap *= 2) * sizeof *d);
        json_t *t = json_object_get(o, "title"), *b = json_object_get(o, "body");
        const char *ts = json_is_string(t) ? json_string_value(t) : "", *bs = json_is_string(b) ? json_string_value(b) : "";
        double t0 = now_s();
        idx_dupsig(ts, strlen(ts), bs, strlen(bs), d[*n].sig);
        *sig_s += now_s() - t0;
        d[*n].id = strdup(json_string_value(json_object_get(o, "id")));
        (*n)++;
        json_decref(o);
    }
    free(line);
    fclose(f);
    return d;
}

static doc *find(doc *d, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(d[i].id, id) == 0) return &d[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 4) {
        fprintf(stderr, "usage: dupsig_bench CORPUS.jsonl [COPIES.jsonl PAIRS.tsv]\n");
        return 2;
    }
    size_t n;
    double sig_s;
    doc *d = load(argv[1], &n, &sig_s);
    printf("corpus %zu documents; signature %.1f us per document\n", n, sig_s * 1e6 / (double)n);
    size_t near = 0, pairs = 0, passed = 0;
    double best = 0, t0 = now_s();
    volatile int sink = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            double s;
            sink += idx_dupsig_near(d[i].sig, d[j].sig, &s);
            pairs++;
        }
    double cmp_s = now_s() - t0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            double s;
            if (idx_dupsig_near(d[i].sig, d[j].sig, &s)) {
                near++;
                printf("near: %s %s %.3f\n", d[i].id, d[j].id, s);
            } else if (s > 0) {
                passed++;
                if (s > best) best = s;
            }
        }
    printf("pairs %zu: near %zu; past the fast reject but not near %zu (highest estimate %.3f); %.1f ns per "
           "comparison\n", pairs, near, passed, best, cmp_s * 1e9 / (double)pairs);
    (void)sink;
    if (argc == 4) {
        size_t m;
        double s2;
        doc *c = load(argv[2], &m, &s2);
        FILE *f = fopen(argv[3], "r");
        if (!f) {
            perror(argv[3]);
            return 1;
        }
        char a[256], b[256];
        size_t total = 0, hit = 0;
        while (fscanf(f, "%255s\t%255s", a, b) == 2) {
            doc *x = find(d, n, a), *y = find(c, m, b);
            if (!x || !y) continue;
            double s;
            total++;
            if (idx_dupsig_near(x->sig, y->sig, &s)) hit++;
            else printf("missed: %s %s %.3f (full %.3f)\n", a, b, s, idx_dupsig_similarity(x->sig, y->sig));
        }
        fclose(f);
        printf("copies %zu: near %zu, recall %.4f\n", total, hit, total ? (double)hit / (double)total : 0);
        for (size_t i = 0; i < m; i++) free(c[i].id);
        free(c);
    }
    for (size_t i = 0; i < n; i++) free(d[i].id);
    free(d);
    return 0;
}
