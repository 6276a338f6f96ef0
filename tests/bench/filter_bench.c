/* filter_bench - filters inside selection (index/attrs.h) on a real shard:
 * are they exact, and does a selective one make the query faster?
 *
 *   filter_bench SHARDDIR CORPUS.jsonl QUERIES.tsv [--queries N] [--k K] [--reps R]
 *                [--diff-queries N] FILTER...
 *
 * Differential: the corpus is read again, independently of the index, and
 * each FILTER is evaluated on every document's JSON by this program's own
 * evaluator (below: not attrs.c). For each of the first --diff-queries
 * queries the shard's whole unfiltered ranking (exhaustive, every matching
 * document) is cut to the documents that pass, and its first K must equal
 * the filtered search's K hits (document, score, order) under every
 * selection algorithm, OR and AND (all_terms). Any difference is printed
 * and the exit status is 1.
 *
 * Speed: for the first --queries queries, the selection (default algorithm,
 * top K, no stored fields) with and without the filter, --reps times each,
 * interleaved; prints the mean per query and the ratio filtered/unfiltered.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "filter.h"
#include "filter_ref.h"
#include "fn_arena.h"
#include "search.h"

#define MAXF 8
#define MAXQ 10000

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

typedef struct hitv { uint32_t doc; double score; } hitv;

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: filter_bench SHARDDIR CORPUS.jsonl QUERIES.tsv [--queries N] [--k K] [--reps R] "
                        "[--diff-queries N] FILTER...\n");
        return 2;
    }
    const char *dir = argv[1], *corpus = argv[2], *qpath = argv[3];
    size_t nqs = 200, k = 1000, reps = 3, ndiff = 100;
    const char *ftext[MAXF];
    size_t nf = 0;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--queries") && i + 1 < argc) nqs = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--k") && i + 1 < argc) k = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--diff-queries") && i + 1 < argc) ndiff = (size_t)atol(argv[++i]);
        else if (nf < MAXF) ftext[nf++] = argv[i];
    }
    fn_errbuf eb;
    idx_reader_t *r;
    idx_searcher_t *s;
    if (idx_reader_open_ex(dir, IDX_OPEN_QUICK, &r, &eb) || idx_searcher_create(r, &s, &eb)) {
        fprintf(stderr, "%s\n", eb.msg);
        return 1;
    }
    const idx_index_info *in = idx_reader_info(r);
    fn_arena ar;
    fn_arena_init(&ar);
    fn_fnode *ft[MAXF];
    for (size_t f = 0; f < nf; f++)
        if (fn_fparse(ftext[f], strlen(ftext[f]), &ar, &ft[f], &eb)) {
            fprintf(stderr, "%s: %s\n", ftext[f], eb.msg);
            return 2;
        }
    /* each document's verdicts, by this shard's document number: corpus
     * order among the documents routed here (their bucket's shard, buckets.h) */
    uint8_t *pass = calloc(in->docs ? in->docs : 1, 1);
    size_t npass[MAXF] = { 0 };
    FILE *cf = ndiff ? fopen(corpus, "r") : fopen("/dev/null", "r");   /* --diff-queries 0: speed only */
    if (!cf || !pass) { perror(corpus); return 1; }
    char *line = NULL;
    size_t cap = 0;
    uint32_t doc = 0;
    double t0 = now_us();
    while (getline(&line, &cap, cf) > 0) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (!o) continue;
        json_t *id = json_object_get(o, "id");
        if (json_is_string(id) &&
            (XXH64(json_string_value(id), json_string_length(id), 0) % 4096) * in->shards / 4096 == in->shard) {
            if (doc >= in->docs) { fprintf(stderr, "corpus has more documents than the shard\n"); return 1; }
            for (size_t f = 0; f < nf; f++)
                if (filter_ref_match(ft[f], o)) {
                    pass[doc] |= (uint8_t)(1u << f);
                    npass[f]++;
                }
            doc++;
        }
        json_decref(o);
    }
    fclose(cf);
    free(line);
    if (ndiff && doc != in->docs) { fprintf(stderr, "corpus: %u documents for this shard, the index has %" PRIu64 "\n", doc, in->docs); return 1; }
    printf("shard %s: %" PRIu64 " documents; corpus read and filters evaluated in %.1f s\n", dir, in->docs,
           (now_us() - t0) / 1e6);

    /* queries */
    FILE *qf = fopen(qpath, "r");
    if (!qf) { perror(qpath); return 1; }
    char **qs = calloc(MAXQ, sizeof *qs);
    size_t nq = 0;
    line = NULL;
    cap = 0;
    while (nq < MAXQ && getline(&line, &cap, qf) > 0) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        char *t = tab + 1, *e = strchr(t, '\t');
        if (!e) e = strchr(t, '\n');
        if (e) *e = '\0';
        qs[nq++] = strdup(t);
    }
    fclose(qf);
    free(line);

    int bad = 0;
    hitv *full = NULL;
    size_t fullcap = 0;
    /* differential */
    uint64_t compared = 0;
    for (size_t qi = 0; qi < nq && qi < ndiff; qi++) {
        for (int all = 0; all <= 1; all++) {
            idx_query q = { .text = qs[qi], .k = in->docs ? in->docs : 1, .algo = IDX_ALGO_EXHAUSTIVE,
                            .no_fields = 1, .no_record = 1, .plain_text = 1, .all_terms = all };
            idx_results res;
            if (idx_search(s, &q, &res, &eb)) { fprintf(stderr, "query %zu: %s\n", qi, eb.msg); return 1; }
            if (res.nhits > fullcap) {
                fullcap = res.nhits;
                full = realloc(full, fullcap * sizeof *full);
            }
            size_t nfull = res.nhits;
            for (size_t h = 0; h < nfull; h++) full[h] = (hitv){ res.hits[h].doc, res.hits[h].score };
            for (size_t f = 0; f < nf; f++) {
                for (int algo = IDX_ALGO_AUTO; algo < IDX_ALGO_COUNT; algo++) {
                    idx_query fq = { .text = qs[qi], .k = k, .algo = (idx_algo)algo, .no_fields = 1,
                                     .plain_text = 1, .all_terms = all, .filter = ft[f] };
                    if (idx_search(s, &fq, &res, &eb)) { fprintf(stderr, "query %zu: %s\n", qi, eb.msg); return 1; }
                    size_t j = 0, h = 0;
                    int diff = 0;
                    for (; h < nfull && j < k; h++) {
                        if (!(pass[full[h].doc] & (1u << f))) continue;
                        if (j >= res.nhits || res.hits[j].doc != full[h].doc || res.hits[j].score != full[h].score) {
                            diff = 1;
                            break;
                        }
                        j++;
                    }
                    if (!diff && j != res.nhits) diff = 1;
                    compared++;
                    if (diff) {
                        bad = 1;
                        printf("MISMATCH filter \"%s\" query %zu \"%s\" algo %s %s: at rank %zu\n", ftext[f], qi, qs[qi],
                               idx_algo_name((idx_algo)algo), all ? "all" : "any", j);
                    }
                }
            }
        }
    }
    printf("differential: %zu queries x %zu filters x %d algorithms x (any, all): %" PRIu64 " comparisons of the top %zu, %s\n",
           nq < ndiff ? nq : ndiff, nf, (int)IDX_ALGO_COUNT, compared, k, bad ? "MISMATCHES (above)" : "all identical");

    /* speed, after a pass that warms the page cache (the first filter's
     * figures would otherwise carry it) */
    for (size_t qi = 0; qi < nq && qi < nqs; qi++) {
        idx_results res;
        idx_query q = { .text = qs[qi], .k = k, .no_fields = 1, .plain_text = 1 };
        if (idx_search(s, &q, &res, &eb)) { fprintf(stderr, "%s\n", eb.msg); return 1; }
        for (size_t f = 0; f < nf; f++) {
            q.filter = ft[f];
            if (idx_search(s, &q, &res, &eb)) { fprintf(stderr, "%s\n", eb.msg); return 1; }
        }
    }
    for (size_t f = 0; f < nf; f++) {
        double tu = 0, tf = 0;
        uint64_t mu = 0, mf = 0;
        size_t n = 0;
        for (size_t rep = 0; rep < reps; rep++)
            for (size_t qi = 0; qi < nq && qi < nqs; qi++) {
                idx_results res;
                idx_query q = { .text = qs[qi], .k = k, .no_fields = 1, .plain_text = 1 };
                double a = now_us();
                if (idx_search(s, &q, &res, &eb)) { fprintf(stderr, "%s\n", eb.msg); return 1; }
                double b = now_us();
                mu += res.nhits;
                q.filter = ft[f];
                if (idx_search(s, &q, &res, &eb)) { fprintf(stderr, "%s\n", eb.msg); return 1; }
                double c = now_us();
                mf += res.nhits;
                tu += b - a;
                tf += c - b;
                n++;
            }
        printf("filter \"%s\": passes %zu of %" PRIu64 " documents (%.2f%%); top %zu selection over %zu queries x %zu: "
               "unfiltered %.0f us, filtered %.0f us a query: ratio %.3f (hits %.0f vs %.0f a query)\n",
               ftext[f], npass[f], in->docs, 100.0 * (double)npass[f] / (double)(in->docs ? in->docs : 1), k,
               n / (reps ? reps : 1), reps, tu / (double)(n ? n : 1), tf / (double)(n ? n : 1),
               tu > 0 ? tf / tu : 0.0, (double)mu / (double)(n ? n : 1), (double)mf / (double)(n ? n : 1));
    }
    for (size_t i = 0; i < nq; i++) free(qs[i]);
    free(qs);
    free(full);
    free(pass);
    fn_arena_free(&ar);
    idx_searcher_destroy(s);
    idx_reader_close(r);
    return bad;
}
