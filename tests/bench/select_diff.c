/* select_diff - differential check of the selection algorithms on one shard:
 * for every query and every k, each pruning algorithm must return the same
 * top k as the exhaustive OR merge (the reference): the same documents in
 * the same order, the same keys, scores equal to 1e-9 relative (the
 * algorithms sum the same shares in the same order, so they are expected to
 * be bit for bit equal; both counts are printed). With exact_matches the
 * match counts must be equal too; without it a pruned count must be a lower
 * bound of the exact one, flagged as such.
 *
 *   select_diff SHARDDIR QUERIES.tsv [--k 10,1000,10000] [--max-queries N]
 *
 * Prints one line per (algorithm, k): queries, searches that pruned,
 * mismatches, bit-equal scores, the largest relative score difference.
 * Exit status 0 when nothing differs, 1 on a mismatch, 2 on a usage or
 * index error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search.h"

typedef struct ref_hit { uint32_t doc; uint64_t key; double score; } ref_hit;

typedef struct tally {
    size_t queries, pruned, mismatches, equal_bits, scores, inexact;
    double max_rel;
} tally;

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: select_diff SHARDDIR QUERIES.tsv [--k 10,1000,10000] [--max-queries N]\n");
        return 2;
    }
    const char *dir = argv[1], *qpath = argv[2], *klist = "10,1000,10000";
    size_t maxq = (size_t)-1;
    for (int i = 3; i < argc; i++) {
        if (i + 1 >= argc) { fprintf(stderr, "%s: needs a value\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--k")) klist = argv[++i];
        else if (!strcmp(argv[i], "--max-queries")) maxq = (size_t)strtoull(argv[++i], NULL, 10);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    size_t ks[16], nk = 0;
    for (const char *p = klist; *p && nk < 16;) {
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p || v == 0) { fprintf(stderr, "--k: a list of numbers >= 1\n"); return 2; }
        ks[nk++] = (size_t)v;
        p = *end == ',' ? end + 1 : end;
    }

    FILE *qf = fopen(qpath, "r");
    if (!qf) { perror(qpath); return 2; }
    char **qtext = NULL;
    size_t nq = 0, qcap = 0;
    char line[65536];
    while (nq < maxq && fgets(line, sizeof line, qf)) {
        line[strcspn(line, "\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        if (nq == qcap) {
            qcap = qcap ? 2 * qcap : 1024;
            qtext = realloc(qtext, qcap * sizeof *qtext);
            if (!qtext) { perror("realloc"); return 2; }
        }
        qtext[nq++] = strdup(tab + 1);
    }
    fclose(qf);

    fn_errbuf eb = { { 0 } };
    idx_reader_t *r;
    if (idx_reader_open_ex(dir, IDX_OPEN_QUICK, &r, &eb)) { fprintf(stderr, "%s: %s\n", dir, eb.msg); return 2; }
    idx_searcher_t *se;
    if (idx_searcher_create(r, &se, &eb)) { fprintf(stderr, "searcher: %s\n", eb.msg); return 2; }

    const idx_algo algos[] = { IDX_ALGO_MAXSCORE, IDX_ALGO_BMW, IDX_ALGO_AUTO };
    enum { NALGO = sizeof algos / sizeof algos[0] };
    int failed = 0;
    printf("shard=%s queries=%zu docs=%llu\n", dir, nq, (unsigned long long)idx_reader_info(r)->docs);
    printf("  %-15s %-6s %-8s %-7s %-10s %-11s %-9s %s\n", "algorithm", "k", "queries", "pruned", "mismatches",
           "bit_equal", "inexact", "max_rel_diff");
    for (size_t j = 0; j < nk; j++) {
        tally t[NALGO][2];
        memset(t, 0, sizeof t);
        ref_hit *ref = malloc(ks[j] * sizeof *ref);
        if (!ref) { perror("malloc"); return 2; }
        for (size_t i = 0; i < nq; i++) {
            idx_results res;
            idx_query q = { .text = qtext[i], .k = ks[j], .no_fields = 1, .algo = IDX_ALGO_EXHAUSTIVE,
                            .exact_matches = 1 };
            if (idx_search(se, &q, &res, &eb)) { fprintf(stderr, "query %zu: %s\n", i + 1, eb.msg); return 2; }
            size_t nref = res.nhits;
            uint64_t mref = res.matches;
            for (size_t h = 0; h < nref; h++) ref[h] = (ref_hit){ res.hits[h].doc, res.hits[h].key, res.hits[h].score };
            for (size_t a = 0; a < NALGO; a++)
                for (int exact = 0; exact < 2; exact++) {
                    tally *x = &t[a][exact];
                    q.algo = algos[a];
                    q.exact_matches = exact;
                    if (idx_search(se, &q, &res, &eb)) { fprintf(stderr, "query %zu: %s\n", i + 1, eb.msg); return 2; }
                    x->queries++;
                    x->pruned += res.pruned_lists > 0 || res.skips > 0;
                    int bad = res.nhits != nref;
                    if (exact) bad |= res.matches != mref || !res.matches_exact;
                    else if (res.matches_exact) bad |= res.matches != mref;
                    else {
                        bad |= res.matches > mref;
                        x->inexact++;
                    }
                    for (size_t h = 0; h < nref && h < res.nhits; h++) {
                        const idx_hit *g = &res.hits[h];
                        double rel = fabs(g->score - ref[h].score) / fmax(fabs(ref[h].score), 1e-300);
                        if (g->doc != ref[h].doc || g->key != ref[h].key || !(rel <= 1e-9)) bad = 1;
                        if (rel > x->max_rel) x->max_rel = rel;
                        x->equal_bits += memcmp(&g->score, &ref[h].score, sizeof g->score) == 0;
                        x->scores++;
                    }
                    if (bad && x->mismatches++ < 5)
                        fprintf(stderr, "MISMATCH %s k=%zu exact=%d query %zu: %s\n", idx_algo_name(algos[a]),
                                ks[j], exact, i + 1, qtext[i]);
                }
        }
        free(ref);
        for (size_t a = 0; a < NALGO; a++)
            for (int exact = 0; exact < 2; exact++) {
                const tally *x = &t[a][exact];
                char name[32];
                snprintf(name, sizeof name, "%s%s", idx_algo_name(algos[a]), exact ? "+count" : "");
                printf("  %-15s %-6zu %-8zu %-7zu %-10zu %zu/%-9zu %-9zu %.3g\n", name, ks[j], x->queries, x->pruned,
                       x->mismatches, x->equal_bits, x->scores, x->inexact, x->max_rel);
                failed |= x->mismatches > 0;
            }
        fflush(stdout);
    }
    idx_searcher_destroy(se);
    idx_reader_close(r);
    for (size_t i = 0; i < nq; i++) free(qtext[i]);
    free(qtext);
    printf("%s\n", failed ? "FAIL: an algorithm differs from the exhaustive merge" : "OK: every algorithm equals the exhaustive merge");
    return failed;
}
