/* bm25_grid.c - BM25F parameter sweep on the judged test collections.
 *
 *   bm25_grid [--data DIR] [--work DIR] [--collections a,b,c] [--k N] [--sweep-k N]
 *             [--top N] [--runs DIR] [--k1 LIST] [--bt LIST] [--bb LIST] [--wt LIST] [--wb LIST]
 *
 * For every collection (default cranfield,npl,cisi under --data, default
 * ../shared/data from the source root) it builds a 1-shard index with the
 * default analyzer into WORK/<c>.idx, or reuses one already published there
 * (index.json present), then runs every query of queries.tsv for every
 * combination of the parameter lists and evaluates the run in memory with
 * ops/eval.c (the same metrics as shared/tools/trec_eval.py).
 *
 * Two passes: the sweep ranks every setting by mean NDCG@10 over the
 * collections from runs of depth --sweep-k (default 10: NDCG@10 needs only the
 * top 10, and fetching 1000 stored documents a query is what costs); then the
 * --top settings (default 15) and the current defaults are run again at --k
 * (default 1000) and everything printed comes from those full-depth runs.
 * LISTs are comma-separated values or LO:HI:STEP ranges; "def" alone takes
 * idx_bm25_defaults(). With --runs DIR, the k-deep TREC runs of the best
 * setting are written to DIR/<c>.run (use single values to get the runs of
 * one chosen setting).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "builder.h"
#include "eval.h"
#include "search.h"

#define MAXC 8
#define MAXV 64

typedef struct coll {
    char name[64];
    idx_reader_t *r;
    idx_searcher_t *s;
    ops_qrels *qrels;
    char **qid, **qtext;
    size_t nq;
} coll;

typedef struct setting {
    idx_bm25_params p;
    double ndcg[MAXC], mean;
    double all[MAXC][OPS_EVAL_NMETRICS];
} setting;

static void die(const char *what, int rc, const fn_errbuf *eb)
{
    fprintf(stderr, "bm25_grid: %s: %s\n", what, fn_errmsg(eb, rc));
    exit(1);
}

static int parse_list(const char *s, double *v, size_t *n, double def)
{
    *n = 0;
    if (strcmp(s, "def") == 0) { v[(*n)++] = def; return 0; }
    double lo, hi, st;
    if (sscanf(s, "%lf:%lf:%lf", &lo, &hi, &st) == 3 && st > 0) {
        for (int i = 0; lo + i * st <= hi + 1e-9 && *n < MAXV; i++) v[(*n)++] = lo + i * st;
        return *n ? 0 : -1;
    }
    char *copy = strdup(s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && *n < MAXV; t = strtok_r(NULL, ",", &save)) {
        char *end;
        v[*n] = strtod(t, &end);
        if (end == t || *end) { free(copy); return -1; }
        (*n)++;
    }
    free(copy);
    return *n ? 0 : -1;
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void load_queries(coll *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); exit(1); }
    char *line = NULL;
    size_t cap = 0, qcap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0) {
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = '\0';
        char *text = tab + 1, *tab2 = strchr(text, '\t');
        if (tab2) *tab2 = '\0';
        if (c->nq == qcap) {
            qcap = qcap ? qcap * 2 : 128;
            c->qid = realloc(c->qid, qcap * sizeof *c->qid);
            c->qtext = realloc(c->qtext, qcap * sizeof *c->qtext);
            if (!c->qid || !c->qtext) { perror("realloc"); exit(1); }
        }
        c->qid[c->nq] = strdup(line);
        c->qtext[c->nq] = strdup(text);
        c->nq++;
    }
    free(line);
    fclose(f);
}

static void open_coll(coll *c, const char *data, const char *work, const char *name)
{
    fn_errbuf eb = { { 0 } };
    char in[4096], out[4096], p[4200];
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(in, sizeof in, "%s/%s/corpus.jsonl", data, name);
    snprintf(out, sizeof out, "%s/%s.idx", work, name);
    snprintf(p, sizeof p, "%s/index.json", out);
    if (!exists(p)) {
        idx_build_opts o;
        memset(&o, 0, sizeof o);
        o.input = in;
        o.out_dir = out;
        o.shards = 1;
        o.on_error = IDX_ON_ERROR_FAIL;
        idx_build_stats st;
        int rc = idx_build(&o, &st, &eb);
        if (rc) die(in, rc, &eb);
        fprintf(stderr, "built %s: %" PRIu64 " docs, %" PRIu64 " terms\n", out, st.docs, st.terms);
    }
    snprintf(p, sizeof p, "%s/shard-000", out);
    int rc = idx_reader_open(p, &c->r, &eb);
    if (rc) die(p, rc, &eb);
    if ((rc = idx_searcher_create(c->r, &c->s, &eb))) die("searcher", rc, &eb);
    snprintf(p, sizeof p, "%s/%s/qrels.trec", data, name);
    if ((rc = ops_eval_load_qrels(p, &c->qrels, &eb))) die(p, rc, &eb);
    snprintf(p, sizeof p, "%s/%s/queries.tsv", data, name);
    load_queries(c, p);
}

static void close_coll(coll *c)
{
    idx_searcher_destroy(c->s);
    idx_reader_close(c->r);
    ops_eval_qrels_free(c->qrels);
    for (size_t i = 0; i < c->nq; i++) { free(c->qid[i]); free(c->qtext[i]); }
    free(c->qid);
    free(c->qtext);
}

/* Run all queries of c with p; evaluate; optionally write the TREC run. */
static void run_coll(coll *c, const idx_bm25_params *p, size_t k, const char *runfile, double v[OPS_EVAL_NMETRICS])
{
    fn_errbuf eb = { { 0 } };
    ops_run *run;
    if (ops_eval_run_new(&run)) { fprintf(stderr, "bm25_grid: out of memory\n"); exit(1); }
    FILE *f = NULL;
    if (runfile && !(f = fopen(runfile, "w"))) { perror(runfile); exit(1); }
    for (size_t i = 0; i < c->nq; i++) {
        idx_query q = { .text = c->qtext[i], .k = k, .explain = 0, .bm25 = p, .plain_text = 1 };
        idx_results res;
        int rc = idx_search(c->s, &q, &res, &eb);
        if (rc) die(c->qid[i], rc, &eb);
        for (size_t h = 0; h < res.nhits; h++) {
            if (ops_eval_run_add(run, c->qid[i], res.hits[h].id, res.hits[h].score)) {
                fprintf(stderr, "bm25_grid: bad run entry\n");
                exit(1);
            }
            if (f) fprintf(f, "%s Q0 %s %zu %.17g funnel\n", c->qid[i], res.hits[h].id, h + 1, res.hits[h].score);
        }
    }
    if (f && fclose(f)) { perror(runfile); exit(1); }
    ops_eval_result m;
    if (ops_eval_compute(c->qrels, run, &m, NULL, NULL)) { fprintf(stderr, "bm25_grid: eval failed\n"); exit(1); }
    memcpy(v, m.v, sizeof m.v);
    ops_eval_run_free(run);
}

static void eval_setting(setting *s, coll *cs, size_t nc, size_t k, const char *runs)
{
    s->mean = 0;
    for (size_t j = 0; j < nc; j++) {
        char rf[4200];
        if (runs) snprintf(rf, sizeof rf, "%s/%s.run", runs, cs[j].name);
        run_coll(&cs[j], &s->p, k, runs ? rf : NULL, s->all[j]);
        s->ndcg[j] = s->all[j][OPS_EVAL_NDCG10];
        s->mean += s->ndcg[j] / (double)nc;
    }
}

static int by_mean(const void *a, const void *b)
{
    const setting *x = a, *y = b;
    return x->mean > y->mean ? -1 : x->mean < y->mean ? 1 : 0;
}

static void print_setting(const setting *s, const coll *cs, size_t nc, int all)
{
    printf("k1=%.2f b=%.2f/%.2f w=%.2f/%.2f  mean=%.4f ", s->p.k1, s->p.b[0], s->p.b[1], s->p.w[0], s->p.w[1], s->mean);
    for (size_t i = 0; i < nc; i++) printf(" %s=%.4f", cs[i].name, s->ndcg[i]);
    printf("\n");
    if (!all) return;
    printf("  %-10s", "");
    for (int m = 0; m < OPS_EVAL_NMETRICS; m++) printf(" %8s", ops_eval_metric_names[m]);
    printf("\n");
    for (size_t i = 0; i < nc; i++) {
        printf("  %-10s", cs[i].name);
        for (int m = 0; m < OPS_EVAL_NMETRICS; m++) printf(" %8.4f", s->all[i][m]);
        printf("\n");
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: bm25_grid [--data DIR] [--work DIR] [--collections a,b] [--k N] [--sweep-k N]\n"
                    "                 [--top N] [--runs DIR]\n"
                    "                 [--k1 LIST] [--bt LIST] [--bb LIST] [--wt LIST] [--wb LIST]\n"
                    "  LIST: v1,v2,... | LO:HI:STEP | def\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *data = FUNNEL_DATA_DIR, *work = "/tmp/bm25_grid", *colls = "cranfield,npl,cisi", *runs = NULL;
    const char *lists[5] = { "0.6:2.0:0.2", "0.3:0.9:0.15", "0.3:0.9:0.15", "1,1.5,2,2.5,3", "1" };
    size_t k = 1000, sweep_k = 10, top = 15;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--work")) work = v;
        else if (!strcmp(a, "--collections")) colls = v;
        else if (!strcmp(a, "--runs")) runs = v;
        else if (!strcmp(a, "--k")) k = (size_t)atol(v);
        else if (!strcmp(a, "--sweep-k")) sweep_k = (size_t)atol(v);
        else if (!strcmp(a, "--top")) top = (size_t)atol(v);
        else if (!strcmp(a, "--k1")) lists[0] = v;
        else if (!strcmp(a, "--bt")) lists[1] = v;
        else if (!strcmp(a, "--bb")) lists[2] = v;
        else if (!strcmp(a, "--wt")) lists[3] = v;
        else if (!strcmp(a, "--wb")) lists[4] = v;
        else usage();
        i++;
    }
    if (k == 0 || sweep_k == 0) usage();
    idx_bm25_params def;
    idx_bm25_defaults(&def);
    const double defs[5] = { def.k1, def.b[0], def.b[1], def.w[0], def.w[1] };
    double val[5][MAXV];
    size_t nval[5];
    for (int j = 0; j < 5; j++)
        if (parse_list(lists[j], val[j], &nval[j], defs[j])) usage();
    if (mkdir(work, 0755) && errno != EEXIST) { perror(work); return 1; }
    if (runs && mkdir(runs, 0755) && errno != EEXIST) { perror(runs); return 1; }

    coll cs[MAXC];
    size_t nc = 0;
    char *cl = strdup(colls), *save = NULL;
    for (char *t = strtok_r(cl, ",", &save); t && nc < MAXC; t = strtok_r(NULL, ",", &save)) {
        memset(&cs[nc], 0, sizeof cs[nc]);
        open_coll(&cs[nc++], data, work, t);
    }
    free(cl);

    size_t total = nval[0] * nval[1] * nval[2] * nval[3] * nval[4];
    setting *set = calloc(total + 1, sizeof *set);
    if (!set) return 1;
    size_t n = 0;
    for (size_t a = 0; a < nval[0]; a++)
        for (size_t b = 0; b < nval[1]; b++)
            for (size_t c = 0; c < nval[2]; c++)
                for (size_t d = 0; d < nval[3]; d++)
                    for (size_t e = 0; e < nval[4]; e++)
                        set[n++].p = (idx_bm25_params){ val[0][a], { val[1][b], val[2][c] }, { val[3][d], val[4][e] } };
    set[n].p = def;    /* the defaults, evaluated last */

    /* pass 1: the sweep, shallow */
    for (size_t i = 0; i < total; i++) {
        eval_setting(&set[i], cs, nc, sweep_k, NULL);
        if (total > 1 && (i + 1) % 25 == 0) fprintf(stderr, "\r%zu/%zu settings", i + 1, total);
    }
    if (total > 1) fprintf(stderr, "\n");
    qsort(set, total, sizeof *set, by_mean);
    /* pass 2: the best ones and the defaults at full depth */
    size_t nt = top < total ? top : total;
    for (size_t i = 0; i < nt; i++) eval_setting(&set[i], cs, nc, k, i == 0 ? runs : NULL);
    eval_setting(&set[total], cs, nc, k, NULL);
    qsort(set, nt, sizeof *set, by_mean);
    printf("grid: k1=%s b_title=%s b_body=%s w_title=%s w_body=%s: %zu settings swept at k=%zu\n",
           lists[0], lists[1], lists[2], lists[3], lists[4], total, sweep_k);
    printf("top %zu by mean NDCG@10 (figures from k=%zu runs):\n", nt, k);
    for (size_t i = 0; i < nt; i++) print_setting(&set[i], cs, nc, 0);
    printf("best, all metrics:\n");
    print_setting(&set[0], cs, nc, 1);
    printf("current defaults (idx_bm25_defaults):\n");
    print_setting(&set[total], cs, nc, 1);
    free(set);
    for (size_t j = 0; j < nc; j++) close_coll(&cs[j]);
    return 0;
}
