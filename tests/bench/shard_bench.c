/* shard_bench - the shard's part of the funnel (shard/stage1.c) on one shard
 * directory, in process and single-threaded: CPU per query and a digest of
 * everything a shard returns, so a change that is meant to be faster only can
 * be checked bit for bit against the build before it.
 *
 *   shard_bench SHARDDIR QUERIES.tsv [--model M1] [--sel N] [--k N] [--features 0|1|2]
 *               [--skip-stage1] [--explain N] [--reps R] [--digest FILE] [--now T]
 *               [--field-hits N | --no-fields] [--exact-matches] [--algo NAME]
 *
 * The defaults are what the coordinator asks of each of 3 shards at its
 * default windows with both models loaded: selection_k 500, k 250, full
 * features. --digest writes one line per query: qid, matches, survivors and
 * an XXH3 of every survivor's doc, key, scores, stored fields, feature row
 * and explain (binary, so equal digests mean equal bits). Prints the mean
 * CPU time per query (thread CPU clock) and the stages' mean times.
 * --no-fields: doc, key and scores only, as a selection benchmark's peer
 * returns (two-phase fetch reads stored fields for the page alone).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "feature_registry.h"
#include "fn_arena.h"
#include "search.h"
#include "stage.h"
#include "stage1.h"

static double cpu_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static void upd(XXH3_state_t *h, const void *p, size_t n) { XXH3_64bits_update(h, p, n); }
static void upds(XXH3_state_t *h, const char *s) { upd(h, s ? s : "(null)", strlen(s ? s : "(null)") + 1); }

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: shard_bench SHARDDIR QUERIES.tsv [--model M1] [--sel N] [--k N] "
                        "[--features 0|1|2] [--skip-stage1] [--explain N] [--reps R] [--digest FILE] [--now T]\n"
                        "       [--field-hits N | --no-fields] [--exact-matches] [--algo auto|exhaustive|maxscore|bmw]\n");
        return 2;
    }
    const char *dir = argv[1], *qpath = argv[2], *model = NULL, *digest = NULL;
    unsigned sel = 500, k = 250, features = 2, explain = 0, reps = 1;
    int skip = 0, no_fields = 0, exact = 0;
    unsigned field_hits = 0;
    int algo = IDX_ALGO_AUTO;
    long long now = 1700000000;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--skip-stage1")) { skip = 1; continue; }
        if (!strcmp(a, "--no-fields")) { no_fields = 1; continue; }
        if (!strcmp(a, "--exact-matches")) { exact = 1; continue; }
        if (!v) { fprintf(stderr, "%s: needs a value\n", a); return 2; }
        i++;
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--sel")) sel = (unsigned)atoi(v);
        else if (!strcmp(a, "--k")) k = (unsigned)atoi(v);
        else if (!strcmp(a, "--features")) features = (unsigned)atoi(v);
        else if (!strcmp(a, "--explain")) explain = (unsigned)atoi(v);
        else if (!strcmp(a, "--reps")) reps = (unsigned)atoi(v);
        else if (!strcmp(a, "--digest")) digest = v;
        else if (!strcmp(a, "--now")) now = atoll(v);
        else if (!strcmp(a, "--field-hits")) field_hits = (unsigned)atoi(v);
        else if (!strcmp(a, "--algo")) {
            if ((algo = idx_algo_parse(v)) < 0) { fprintf(stderr, "--algo: unknown %s\n", v); return 2; }
        }
        else { fprintf(stderr, "unknown option %s\n", a); return 2; }
    }
    fn_errbuf eb = {{0}};
    idx_reader_t *r;
    int rc = idx_reader_open_ex(dir, IDX_OPEN_QUICK, &r, &eb);
    if (rc) { fprintf(stderr, "%s: %s\n", dir, eb.msg); return 1; }
    size_t nreg;
    const idx_feature_def *reg = idx_features(&nreg);
    const char *names[64];
    unsigned char cheap[64];
    size_t nshard = idx_features_shard();
    for (size_t i = 0; i < nshard; i++) {
        names[i] = reg[i].name;
        cheap[i] = reg[i].cost == IDX_FEAT_CHEAP;
    }
    rank_ranker *rk = NULL;
    if (model && (rc = rank_ranker_load(model, names, cheap, nshard, &rk, &eb))) {
        fprintf(stderr, "%s: %s\n", model, eb.msg);
        return 1;
    }
    idx_searcher_t *se;
    if ((rc = idx_searcher_create(r, &se, &eb))) { fprintf(stderr, "searcher: %s\n", eb.msg); return 1; }

    FILE *qf = fopen(qpath, "r");
    if (!qf) { perror(qpath); return 1; }
    size_t nq = 0, qcap = 0;
    char **qid = NULL, **qtext = NULL;
    char line[4096];
    while (fgets(line, sizeof line, qf)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = '\0';
        if (nq == qcap) {
            qcap = qcap ? 2 * qcap : 1024;
            qid = realloc(qid, qcap * sizeof *qid);
            qtext = realloc(qtext, qcap * sizeof *qtext);
        }
        qid[nq] = strdup(line);
        qtext[nq] = strdup(tab + 1);
        nq++;
    }
    fclose(qf);
    FILE *df = digest ? fopen(digest, "w") : NULL;
    if (digest && !df) { perror(digest); return 1; }

    double total = 0, tsel = 0, ts1 = 0;
    size_t runs = 0;
    XXH3_state_t *h = XXH3_createState();
    for (unsigned rep = 0; rep < reps; rep++) {
        for (size_t i = 0; i < nq; i++) {
            fn_arena mem;
            fn_arena_init(&mem);
            shard_funnel_req rq = {
                .q = {.text = qtext[i], .k = sel, .now = now, .exact_matches = exact,
                      .algo = (idx_algo)algo},
                .k = k, .features = (int)features, .skip_stage1 = skip,
                .field_hits = field_hits, .no_fields = no_fields,
                .explain = explain > 0, .explain_hits = explain,
            };
            shard_funnel_out fo;
            double t0 = cpu_us();
            rc = shard_funnel_run(se, &rq, rk, &mem, &fo, &eb);
            double t1 = cpu_us();
            if (rc) { fprintf(stderr, "%s: %s\n", qid[i], eb.msg); return 1; }
            total += t1 - t0;
            tsel += (double)fo.acct[0].time_us;
            ts1 += (double)fo.acct[1].time_us;
            runs++;
            if (df && rep == 0) {
                XXH3_64bits_reset(h);
                upd(h, &fo.sel.matches, sizeof fo.sel.matches);
                upd(h, &fo.n, sizeof fo.n);
                upd(h, &fo.nrows, sizeof fo.nrows);
                upd(h, &fo.ncols, sizeof fo.ncols);
                for (size_t t = 0; t < fo.sel.nterms; t++) upds(h, fo.sel.terms[t]);
                for (size_t j = 0; j < fo.n; j++) {
                    const idx_hit *x = &fo.hits[j];
                    upd(h, &x->doc, sizeof x->doc);
                    upd(h, &x->key, sizeof x->key);
                    upd(h, &x->score, sizeof x->score);
                    upd(h, &fo.stage1_score[j], sizeof fo.stage1_score[j]);
                    upds(h, x->id);
                    upds(h, x->title);
                    upds(h, x->url);
                    if (j < fo.nrows) upd(h, fo.rows + j * fo.stride, fo.ncols * sizeof *fo.rows);
                    if (x->terms)
                        for (size_t t = 0; t < fo.sel.nterms; t++) {
                            const idx_term_explain *te = &x->terms[t];
                            upds(h, te->term);
                            upd(h, &te->qw, sizeof te->qw);
                            upd(h, &te->gdf, sizeof te->gdf);
                            upd(h, &te->idf, sizeof te->idf);
                            upd(h, &te->contribution, sizeof te->contribution);
                            upd(h, te->tf, sizeof te->tf);
                        }
                }
                fprintf(df, "%s %llu %zu %016llx\n", qid[i], (unsigned long long)fo.sel.matches, fo.n,
                        (unsigned long long)XXH3_64bits_digest(h));
            }
            idx_searcher_release(se);
            fn_arena_free(&mem);
        }
    }
    printf("queries %zu x %u: cpu %.1f us/query (selection %.1f, stage1 %.1f, rest %.1f)\n", nq, reps,
           total / (double)runs, tsel / (double)runs, ts1 / (double)runs,
           (total - tsel - ts1) / (double)runs);
    XXH3_freeState(h);
    if (df) fclose(df);
    idx_searcher_destroy(se);
    rank_ranker_unref(rk);
    idx_reader_close(r);
    for (size_t i = 0; i < nq; i++) { free(qid[i]); free(qtext[i]); }
    free(qid);
    free(qtext);
    return 0;
}
