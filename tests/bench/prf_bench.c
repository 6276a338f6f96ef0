/* prf_bench - the shard's half of pseudo-relevance feedback on one shard, in
 * process: for each query, a selection of k documents (timed apart), the term
 * vectors of its best `--fb-docs` (idx_feedback_docs) and the rescoring of
 * every third of the k for an expanded query of the query's terms plus the
 * feedback documents' `--terms` most frequent terms (idx_rescore): the work
 * one shard does for one funnel query's feedback stage, without the RPCs.
 *
 *   prf_bench SHARDDIR QUERIES.tsv [--k 500] [--fb-docs 10] [--terms 50] [--max-queries N]
 *
 * Prints the mean microseconds of each part and a digest of the scores (to
 * check that a speed-up changes no score).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "prf.h"
#include "search.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

typedef struct wterm { const char *t; double w; } wterm;

static int wterm_cmp(const void *a, const void *b)
{
    const wterm *x = a, *y = b;
    if (x->w != y->w) return x->w < y->w ? 1 : -1;
    return strcmp(x->t, y->t);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: prf_bench SHARDDIR QUERIES.tsv [--k 500] [--fb-docs 10] [--terms 50] "
                        "[--max-queries N]\n");
        return 2;
    }
    size_t k = 500, nfb = 10, nterms = 50, maxq = (size_t)-1;
    for (int i = 3; i < argc; i++) {
        if (i + 1 >= argc) { fprintf(stderr, "%s: needs a value\n", argv[i]); return 2; }
        size_t v = (size_t)strtoull(argv[i + 1], NULL, 10);
        if (!strcmp(argv[i], "--k")) k = v;
        else if (!strcmp(argv[i], "--fb-docs")) nfb = v;
        else if (!strcmp(argv[i], "--terms")) nterms = v;
        else if (!strcmp(argv[i], "--max-queries")) maxq = v;
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
        i++;
    }
    if (!k || !nfb || nfb > IDX_MAX_FEEDBACK_DOCS || !nterms || nterms > 900) {
        fprintf(stderr, "--k >= 1, --fb-docs 1..%d, --terms 1..900\n", IDX_MAX_FEEDBACK_DOCS);
        return 2;
    }
    FILE *qf = fopen(argv[2], "r");
    if (!qf) { perror(argv[2]); return 2; }
    fn_errbuf eb = { { 0 } };
    idx_reader_t *r;
    if (idx_reader_open_ex(argv[1], IDX_OPEN_QUICK, &r, &eb)) { fprintf(stderr, "%s: %s\n", argv[1], eb.msg); return 2; }
    idx_searcher_t *se;
    if (idx_searcher_create(r, &se, &eb)) { fprintf(stderr, "searcher: %s\n", eb.msg); return 2; }

    char line[65536];
    size_t nq = 0;
    double t_sel = 0, t_fb = 0, t_rs = 0;
    uint64_t digest = 0, fbterms = 0, rsdocs = 0;
    uint32_t *docs = malloc(k * sizeof *docs);
    uint64_t *keys = malloc(k * sizeof *keys);
    double *scores = malloc(k * sizeof *scores);
    if (!docs || !keys || !scores) { perror("malloc"); return 2; }
    while (nq < maxq && fgets(line, sizeof line, qf)) {
        line[strcspn(line, "\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        idx_results res;
        idx_query q = { .text = tab + 1, .k = k, .no_fields = 1, .plain_text = 1 };
        double t0 = now_us();
        if (idx_search(se, &q, &res, &eb)) { fprintf(stderr, "query %zu: %s\n", nq + 1, eb.msg); return 2; }
        double t1 = now_us();
        size_t nh = res.nhits, nf = nh < nfb ? nh : nfb, nd = 0;
        for (size_t h = 0; h < nh; h++) {
            if (h < nf) docs[h] = res.hits[h].doc;
            if (h % 3 == 0) { keys[nd] = res.hits[h].key; scores[nd++] = (double)res.hits[h].doc; }
        }
        fn_arena mem;
        fn_arena_init(&mem);
        idx_fbdoc fb[IDX_MAX_FEEDBACK_DOCS];
        if (idx_feedback_docs(se, docs, nf, 0.2, &mem, fb, &eb)) { fprintf(stderr, "feedback: %s\n", eb.msg); return 2; }
        double t2 = now_us();
        /* the expansion: terms by their summed relative frequency (a stand-in
         * for the coordinator's RM3, enough to give the rescoring its shape) */
        size_t nall = 0;
        for (size_t i = 0; i < nf; i++) nall += fb[i].nterms;
        wterm *all = malloc((nall ? nall : 1) * sizeof *all);
        if (!all) { perror("malloc"); return 2; }
        nall = 0;
        for (size_t i = 0; i < nf; i++)
            for (size_t j = 0; j < fb[i].nterms; j++)
                all[nall++] = (wterm){ fb[i].terms[j], (double)fb[i].tf[j] / (fb[i].length ? fb[i].length : 1) };
        qsort(all, nall, sizeof *all, wterm_cmp);
        const char *terms[1000];
        double w[1000];
        size_t nt = 0;
        for (size_t i = 0; i < nall && nt < nterms; i++) {
            int dup = 0;
            for (size_t j = 0; j < nt && !dup; j++) dup = strcmp(terms[j], all[i].t) == 0;
            if (!dup) { terms[nt] = all[i].t; w[nt++] = all[i].w; }
        }
        fbterms += nt;
        for (size_t i = 0; i < nd; i++) docs[i] = (uint32_t)scores[i];
        double t3 = now_us();
        if (nt && idx_rescore(se, NULL, terms, w, nt, docs, keys, nd, scores, &eb)) {
            fprintf(stderr, "rescore: %s\n", eb.msg);
            return 2;
        }
        double t4 = now_us();
        digest = XXH64(scores, nd * sizeof *scores, digest);
        rsdocs += nd;
        free(all);
        fn_arena_free(&mem);
        t_sel += t1 - t0;
        t_fb += t2 - t1;
        t_rs += t4 - t3;
        nq++;
    }
    fclose(qf);
    if (!nq) { fprintf(stderr, "no queries\n"); return 2; }
    printf("shard=%s queries=%zu k=%zu fb_docs=%zu terms=%zu\n", argv[1], nq, k, nfb, nterms);
    printf("  selection   mean %8.1f us\n", t_sel / nq);
    printf("  term vectors mean %7.1f us (%zu documents)\n", t_fb / nq, nfb);
    printf("  rescoring   mean %8.1f us (%.1f documents, %.1f terms)\n", t_rs / nq, (double)rsdocs / nq,
           (double)fbterms / nq);
    printf("  digest %016llx\n", (unsigned long long)digest);
    free(docs);
    free(keys);
    free(scores);
    idx_searcher_destroy(se);
    idx_reader_close(r);
    return 0;
}
