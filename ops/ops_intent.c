/* ops_intent.c - `funnel intent train | predict | eval`: the query-intent
 * classifier of issue 10 (query/intent.h), trained here because query/ is
 * built before rank/ and cannot link its logistic trainer.
 *
 * Labels. From labelled queries (--labels: "qid<TAB>vertical" lines), or
 * from a corpus (--corpus, JSON Lines with "title", "body", "vertical"):
 *   1. the queries are read first and their folded words (intent.h's split)
 *      form the only vocabulary kept, so memory is one posting (4 bytes) per
 *      (query word, document containing it), not a full inverted index;
 *   2. one pass over the corpus fills word -> ascending document list and
 *      each document's vertical (1 byte);
 *   3. a query scores each document by the number of its distinct words the
 *      document contains; the top D (--top-docs, 100) win, ties broken by
 *      corpus order; the label is the majority vertical among them (ties to
 *      the vertical with more documents in the corpus), the distribution is
 *      kept for the report. A query that matches nothing has no label.
 *
 * Training. One-vs-rest L2 logistic regression per vertical with
 * rank_train_logistic (rank/logreg.c) on binary hashed bag-of-words rows
 * (intent_features). That trainer takes a dense matrix, so the columns are
 * first compacted to the buckets the training queries use: an unused column
 * has weight exactly 0 at the L2 optimum, so this is the same model at
 * rows x used-columns floats instead of rows x buckets (bounded by
 * OPS_INTENT_MAX_DENSE, FN_ELIMIT beyond).
 *
 * Measured (tests/bench/intent_accuracy.sh: gen_corpus.py --docs 100000
 * --seed 1 --queries 2000, --holdout 0.2, debugoptimized, Xeon VM):
 *   corpus pass 3.5 s, labelling 0.2 s, training 0.09 s (4 verticals x 1600
 *   queries, ~3900 used buckets), peak RSS 44 MiB (14 MiB of postings for
 *   4857 query words), model file 0.5 MB;
 *   held-out accuracy 1.0000 = majority baseline 1.0000 (all labels web).
 * gen_corpus.py draws a document's vertical independently of its words, so
 * every query's top-100 vote is web; the verticals' shares in the top
 * documents spread exactly as binomial sampling predicts (web sd 0.041 vs
 * 0.041): there is no signal for any classifier to find. With --top-docs 1
 * the labels become random (web 77%) and the model predicts the prior:
 * 0.7700 = baseline 0.7700.
 *
 * Tests: tests/query/test_intent.c (training through ops_intent_train and
 * through the CLI, round trip, damage), tests/bench/intent_accuracy.sh.
 */
#include "ops.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fn_io.h"
#include "fn_rand.h"
#include "intent.h"
#include "train.h"

/* Largest dense training matrix (rows x used columns x 4 bytes). */
#define OPS_INTENT_MAX_DENSE (1ull << 30)

static const char intent_usage[] =
    "usage: funnel intent train --queries Q.tsv --out MODEL (--corpus corpus.jsonl | --labels labels.tsv)\n"
    "                           [--top-docs 100] [--buckets 262144] [--holdout 0.2] [--seed 1] [--c 1.0]\n"
    "       funnel intent predict --model MODEL \"query text\"\n"
    "       funnel intent predict --model MODEL --queries Q.tsv\n"
    "       funnel intent eval --model MODEL --queries Q.tsv (--corpus corpus.jsonl [--top-docs 100] | --labels labels.tsv)\n"
    "\n"
    "train: one-vs-rest logistic regression per vertical over hashed query words.\n"
    "  --corpus PATH     label each query with the majority vertical of the top-docs\n"
    "                    corpus documents that contain most of its distinct words\n"
    "  --labels PATH     or take labels from \"qid<TAB>vertical\" lines\n"
    "  --top-docs D      documents that vote on a query's label (default 100)\n"
    "  --buckets N       hash buckets for the words (default 262144, at most 2^24)\n"
    "  --holdout F       keep a seeded fraction F of the labelled queries out of\n"
    "                    training and report accuracy on them (default 0: none)\n"
    "  --seed S          the holdout's seed (default 1)\n"
    "  --c C             inverse L2 strength, as scikit-learn's C (default 1)\n"
    "predict: the predicted vertical and every vertical's probability; with\n"
    "  --queries, \"qid<TAB>vertical<TAB>name:p name:p ...\" lines.\n"
    "eval: accuracy, the majority (prior) baseline and per-vertical precision and\n"
    "  recall of MODEL on labelled queries.\n"
    "Exit status: 0 ok, 1 failure (bad input, damaged model), 2 usage error.\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "funnel intent: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    fputs(intent_usage, stderr);
    return OPS_EXIT_USAGE;
}

/* ---- training ---- */

void ops_intent_train_defaults(ops_intent_train_opts *o)
{
    o->buckets = 1u << 18;
    o->C = 1.0;
    o->max_iter = 200;
}

int ops_intent_train(const char *const *texts, const int *labels, size_t n, const char *const *verticals,
                     size_t nv, const ops_intent_train_opts *o, struct intent_model **out, fn_errbuf *eb)
{
    *out = NULL;
    if (n == 0) return fn_seterr(eb, FN_EINVAL, "intent train: no labelled queries");
    if (nv == 0 || nv > INTENT_MAX_VERTICALS)
        return fn_seterr(eb, FN_EINVAL, "intent train: %zu verticals (1..%d)", nv, INTENT_MAX_VERTICALS);
    if (o->buckets == 0 || o->buckets > INTENT_MAX_BUCKETS)
        return fn_seterr(eb, FN_EINVAL, "intent train: --buckets must be 1..%u", INTENT_MAX_BUCKETS);
    for (size_t i = 0; i < n; i++)
        if (labels[i] < 0 || (size_t)labels[i] >= nv)
            return fn_seterr(eb, FN_EINVAL, "intent train: query %zu: label %d out of range", i, labels[i]);

    int rc = -ENOMEM;
    uint32_t *cols = malloc(INTENT_MAX_COLS * sizeof *cols);
    uint32_t **rowcols = calloc(n, sizeof *rowcols);
    size_t *rown = calloc(n, sizeof *rown);
    int32_t *colmap = malloc((size_t)o->buckets * sizeof *colmap);   /* bucket -> compact column or -1 */
    uint32_t *used = NULL;                                           /* compact column -> bucket */
    double *prior = calloc(nv, sizeof *prior), *bias = calloc(nv, sizeof *bias);
    double *weights = calloc(nv * (size_t)o->buckets, sizeof *weights);
    rank_dataset ds = { 0 };
    if (!cols || !rowcols || !rown || !colmap || !prior || !bias || !weights) goto oom;
    memset(colmap, 0xff, (size_t)o->buckets * sizeof *colmap);
    size_t nused = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = intent_features(texts[i], strlen(texts[i]), o->buckets, cols, INTENT_MAX_COLS);
        if (k && !(rowcols[i] = malloc(k * sizeof **rowcols))) goto oom;
        for (size_t j = 0; j < k; j++) {
            if (colmap[cols[j]] < 0) colmap[cols[j]] = (int32_t)nused++;
            rowcols[i][j] = (uint32_t)colmap[cols[j]];
        }
        rown[i] = k;
        prior[labels[i]] += 1.0;
    }
    if (!(used = malloc((nused ? nused : 1) * sizeof *used))) goto oom;
    for (uint32_t b = 0; b < o->buckets; b++)
        if (colmap[b] >= 0) used[colmap[b]] = b;
    size_t ncols = nused ? nused : 1;       /* the trainer wants one column at least */
    if ((unsigned long long)n * ncols * sizeof(float) > OPS_INTENT_MAX_DENSE) {
        rc = fn_seterr(eb, FN_ELIMIT, "intent train: %zu queries x %zu used buckets is over %llu MiB of "
                       "training matrix; use fewer queries or --buckets", n, ncols, OPS_INTENT_MAX_DENSE >> 20);
        goto fail;
    }
    ds.rows = n;
    ds.nfeatures = ncols;
    ds.X = calloc(n * ncols, sizeof *ds.X);
    ds.label = malloc(n * sizeof *ds.label);
    if (!ds.X || !ds.label) goto oom;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < rown[i]; j++)
            ds.X[i * ncols + rowcols[i][j]] = 1.0f;

    rank_logreg_params lp;
    rank_logreg_defaults(&lp);
    lp.C = o->C;
    if (o->max_iter) lp.max_iter = o->max_iter;
    for (size_t v = 0; v < nv; v++) {
        for (size_t i = 0; i < n; i++)
            ds.label[i] = labels[i] == (int)v ? 1.0f : 0.0f;
        rank_model_t *lm;
        if ((rc = rank_train_logistic(&ds, &lp, &lm, eb)) != 0) goto fail;
        bias[v] = rank_model_bias(lm);
        for (size_t j = 0; j < nused; j++)
            weights[v * o->buckets + used[j]] = rank_model_weight(lm, j);
        rank_model_free(lm);
    }
    rc = intent_model_build(verticals, nv, o->buckets, prior, bias, weights, out, eb);
    goto fail;
oom:
    rc = fn_seterr(eb, -ENOMEM, "intent train: out of memory");
fail:
    free(ds.X);
    free(ds.label);
    for (size_t i = 0; rowcols && i < n; i++)
        free(rowcols[i]);
    free(rowcols);
    free(rown);
    free(cols);
    free(colmap);
    free(used);
    free(prior);
    free(bias);
    free(weights);
    return rc;
}

/* ---- labels ---- */

/* Labelled queries: label[i] indexes names (-1: no label); dist, for corpus
 * labels, is nq x nv vote shares. */
typedef struct labelling {
    char **names;
    size_t nv;
    int *label;
    double *dist;           /* NULL for --labels */
    size_t unlabelled;
} labelling;

static void labelling_free(labelling *l)
{
    for (size_t v = 0; l->names && v < l->nv; v++)
        free(l->names[v]);
    free(l->names);
    free(l->label);
    free(l->dist);
    memset(l, 0, sizeof *l);
}

/* Index of name in the list, adding it (with count 0) when new. -1 when the
 * list is full, -2 out of memory. */
static int vert_id(char ***names, size_t **counts, size_t *nv, const char *name, size_t len)
{
    for (size_t v = 0; v < *nv; v++)
        if (strlen((*names)[v]) == len && memcmp((*names)[v], name, len) == 0) return (int)v;
    if (*nv >= INTENT_MAX_VERTICALS) return -1;
    char **nn = realloc(*names, (*nv + 1) * sizeof *nn);
    if (!nn) return -2;
    *names = nn;
    size_t *nc = realloc(*counts, (*nv + 1) * sizeof *nc);
    if (!nc) return -2;
    *counts = nc;
    if (!(nn[*nv] = strndup(name, len))) return -2;
    nc[*nv] = 0;
    return (int)(*nv)++;
}

/* Order the verticals by count, most first (then by name), and remap ids[n]. */
static int vert_sort(char **names, size_t *counts, size_t nv, uint8_t *ids, size_t n, int *ids_int)
{
    size_t perm[INTENT_MAX_VERTICALS], inv[INTENT_MAX_VERTICALS];
    for (size_t v = 0; v < nv; v++)
        perm[v] = v;
    for (size_t a = 1; a < nv; a++)        /* insertion sort: nv <= 64 */
        for (size_t b = a; b > 0; b--) {
            size_t x = perm[b - 1], y = perm[b];
            if (counts[x] > counts[y] || (counts[x] == counts[y] && strcmp(names[x], names[y]) <= 0)) break;
            perm[b - 1] = y;
            perm[b] = x;
        }
    char *tn[INTENT_MAX_VERTICALS];
    size_t tc[INTENT_MAX_VERTICALS];
    for (size_t v = 0; v < nv; v++) {
        tn[v] = names[perm[v]];
        tc[v] = counts[perm[v]];
        inv[perm[v]] = v;
    }
    memcpy(names, tn, nv * sizeof *names);
    memcpy(counts, tc, nv * sizeof *counts);
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = (uint8_t)inv[ids[i]];
    for (size_t i = 0; ids_int && i < n; i++)
        if (ids_int[i] >= 0) ids_int[i] = (int)inv[ids_int[i]];
    return 0;
}

/* -- from a labels file -- */

typedef struct lab_entry {
    char *qid;
    int v;
    size_t lineno;
} lab_entry;

typedef struct lab_ctx {
    const char *path;
    fn_errbuf *eb;
    lab_entry *e;
    size_t n, cap;
    char **names;
    size_t *counts, nv;
} lab_ctx;

static int lab_line(void *ud, char *line, size_t len, size_t lineno)
{
    lab_ctx *c = ud;
    if (len == 0 || strspn(line, " \t\r") == len) return 0;
    char *tab = memchr(line, '\t', len);
    if (!tab || tab == line || tab + 1 == line + len)
        return fn_seterr(c->eb, FN_EPARSE, "%s:%zu: expected \"qid<TAB>vertical\"", c->path, lineno);
    const char *vn = tab + 1;
    size_t vl = (size_t)(line + len - vn);
    while (vl && (vn[vl - 1] == ' ' || vn[vl - 1] == '\r'))
        vl--;
    if (vl == 0 || vl > INTENT_MAX_NAME || strspn(vn, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") < vl)
        return fn_seterr(c->eb, FN_EPARSE, "%s:%zu: bad vertical name (want [A-Za-z0-9_.-], 1..%d bytes)",
                         c->path, lineno, INTENT_MAX_NAME);
    int v = vert_id(&c->names, &c->counts, &c->nv, vn, vl);
    if (v == -1)
        return fn_seterr(c->eb, FN_ELIMIT, "%s:%zu: more than %d verticals", c->path, lineno,
                         INTENT_MAX_VERTICALS);
    if (v < 0) return fn_seterr(c->eb, -ENOMEM, "%s: out of memory", c->path);
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 256;
        lab_entry *ne = realloc(c->e, nc * sizeof *ne);
        if (!ne) return fn_seterr(c->eb, -ENOMEM, "%s: out of memory", c->path);
        c->e = ne;
        c->cap = nc;
    }
    if (!(c->e[c->n].qid = strndup(line, (size_t)(tab - line))))
        return fn_seterr(c->eb, -ENOMEM, "%s: out of memory", c->path);
    c->e[c->n].v = v;
    c->e[c->n++].lineno = lineno;
    return 0;
}

static int cmp_lab(const void *a, const void *b)
{
    const lab_entry *x = a, *y = b;
    int r = strcmp(x->qid, y->qid);
    return r ? r : (x->lineno > y->lineno) - (x->lineno < y->lineno);
}

static int labels_from_file(const char *path, const ops_query *qs, size_t nq, labelling *out, fn_errbuf *eb)
{
    lab_ctx c = { .path = path, .eb = eb };
    int rc = fn_read_lines(path, lab_line, &c, eb);
    if (!rc) {
        qsort(c.e, c.n, sizeof *c.e, cmp_lab);
        for (size_t i = 1; i < c.n; i++)
            if (strcmp(c.e[i - 1].qid, c.e[i].qid) == 0) {
                rc = fn_seterr(eb, FN_EPARSE, "%s:%zu: query %s labelled again (first on line %zu)", path,
                               c.e[i].lineno, c.e[i].qid, c.e[i - 1].lineno);
                break;
            }
    }
    if (!rc && !(out->label = malloc((nq ? nq : 1) * sizeof *out->label)))
        rc = fn_seterr(eb, -ENOMEM, "%s: out of memory", path);
    if (!rc) {
        memset(c.counts, 0, c.nv * sizeof *c.counts);
        for (size_t i = 0; i < nq; i++) {
            lab_entry key = { .qid = qs[i].qid }, *hit = NULL;
            size_t lo = 0, hi = c.n;
            while (lo < hi) {       /* bsearch by qid alone */
                size_t mid = (lo + hi) / 2;
                int r = strcmp(c.e[mid].qid, key.qid);
                if (r == 0) {
                    hit = &c.e[mid];
                    break;
                }
                if (r < 0) lo = mid + 1;
                else hi = mid;
            }
            out->label[i] = hit ? hit->v : -1;
            if (hit) c.counts[hit->v]++;
            else out->unlabelled++;
        }
        vert_sort(c.names, c.counts, c.nv, NULL, nq, out->label);
        out->names = c.names;
        out->nv = c.nv;
        c.names = NULL;
    }
    for (size_t i = 0; i < c.n; i++)
        free(c.e[i].qid);
    free(c.e);
    for (size_t v = 0; c.names && v < c.nv; v++)
        free(c.names[v]);
    free(c.names);
    free(c.counts);
    return rc;
}

/* -- from a corpus -- */

typedef struct qword {
    char *w;
    size_t len;
    uint32_t *post;         /* ascending document numbers */
    size_t n, cap;
} qword;

typedef struct corpus_ctx {
    const char *path;
    fn_errbuf *eb;
    qword *words;           /* the query vocabulary */
    size_t nwords;
    uint32_t *table;        /* open addressing: word index + 1, 0 = empty */
    size_t tcap;            /* power of two */
    uint8_t *vert;          /* per document */
    size_t ndocs, vcap;
    char **names;
    size_t *counts, nv;
    size_t postings;
} corpus_ctx;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;    /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* The word's index, or -1. With add, inserts it (-2 out of memory). */
static long word_find(corpus_ctx *c, const char *w, size_t len, int add)
{
    size_t mask = c->tcap - 1, i = hash_bytes(w, len) & mask;
    for (; c->table[i]; i = (i + 1) & mask) {
        qword *q = &c->words[c->table[i] - 1];
        if (q->len == len && memcmp(q->w, w, len) == 0) return (long)(c->table[i] - 1);
    }
    if (!add) return -1;
    qword *q = &c->words[c->nwords];
    if (!(q->w = malloc(len))) return -2;
    memcpy(q->w, w, len);
    q->len = len;
    c->table[i] = (uint32_t)++c->nwords;
    return (long)(c->nwords - 1);
}

static int add_text(corpus_ctx *c, const char *s, size_t n, uint32_t doc)
{
    char w[INTENT_MAX_WORD];
    size_t pos = 0, wl;
    while ((wl = intent_next_word(s, n, &pos, w, sizeof w)) > 0) {
        long k = word_find(c, w, wl, 0);
        if (k < 0) continue;
        qword *q = &c->words[k];
        if (q->n && q->post[q->n - 1] == doc) continue;
        if (q->n == q->cap) {
            size_t nc = q->cap ? q->cap * 2 : 16;
            uint32_t *np = realloc(q->post, nc * sizeof *np);
            if (!np) return -ENOMEM;
            q->post = np;
            q->cap = nc;
        }
        q->post[q->n++] = doc;
        c->postings++;
    }
    return 0;
}

static int corpus_line(void *ud, char *line, size_t len, size_t lineno)
{
    corpus_ctx *c = ud;
    if (len == 0 || strspn(line, " \t\r") == len) return 0;
    json_error_t je;
    json_t *o = json_loadb(line, len, 0, &je);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return fn_seterr(c->eb, FN_EPARSE, "%s:%zu: not a JSON object%s%s", c->path, lineno, o ? "" : ": ",
                         o ? "" : je.text);
    }
    json_t *vj = json_object_get(o, "vertical");
    int rc = 0;
    if (!json_is_string(vj) || json_string_length(vj) == 0) {
        rc = fn_seterr(c->eb, FN_EPARSE, "%s:%zu: no \"vertical\" string", c->path, lineno);
        goto out;
    }
    if (c->ndocs >= UINT32_MAX) {
        rc = fn_seterr(c->eb, FN_ELIMIT, "%s:%zu: more than 2^32 documents", c->path, lineno);
        goto out;
    }
    int v = vert_id(&c->names, &c->counts, &c->nv, json_string_value(vj), json_string_length(vj));
    if (v == -1) {
        rc = fn_seterr(c->eb, FN_ELIMIT, "%s:%zu: more than %d verticals", c->path, lineno, INTENT_MAX_VERTICALS);
        goto out;
    }
    if (v >= 0 && c->ndocs == c->vcap) {
        size_t nc = c->vcap ? c->vcap * 2 : 4096;
        uint8_t *nv = realloc(c->vert, nc);
        if (nv) {
            c->vert = nv;
            c->vcap = nc;
        }
    }
    if (v < 0 || c->ndocs == c->vcap) {
        rc = fn_seterr(c->eb, -ENOMEM, "%s: out of memory", c->path);
        goto out;
    }
    c->counts[v]++;
    c->vert[c->ndocs] = (uint8_t)v;
    uint32_t doc = (uint32_t)c->ndocs++;
    static const char *const fields[] = { "title", "body" };
    for (size_t f = 0; f < 2 && !rc; f++) {
        json_t *t = json_object_get(o, fields[f]);
        if (json_is_string(t) && add_text(c, json_string_value(t), json_string_length(t), doc))
            rc = fn_seterr(c->eb, -ENOMEM, "%s: out of memory", c->path);
    }
out:
    json_decref(o);
    return rc;
}

/* Doc numbers of one count level, ascending, for the tie at the cut. */
static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int labels_from_corpus(const char *path, const ops_query *qs, size_t nq, size_t top_docs,
                              labelling *out, int verbose, fn_errbuf *eb)
{
    corpus_ctx c = { .path = path, .eb = eb };
    uint32_t **qw = calloc(nq ? nq : 1, sizeof *qw);    /* per query: distinct word indices */
    size_t *nqw = calloc(nq ? nq : 1, sizeof *nqw);
    uint16_t *cnt = NULL;
    uint32_t *touched = NULL, *level = NULL;
    size_t *taken_of = calloc(nq ? nq : 1, sizeof *taken_of);
    int rc = -ENOMEM;
    size_t total_words = 0;
    for (size_t i = 0; i < nq; i++)
        total_words += strlen(qs[i].text) / 2 + 1;      /* a word takes 2 bytes at least */
    c.tcap = 64;
    while (c.tcap < 2 * total_words)
        c.tcap *= 2;
    c.table = calloc(c.tcap, sizeof *c.table);
    c.words = calloc(total_words, sizeof *c.words);
    if (!qw || !nqw || !taken_of || !c.table || !c.words) goto oom;
    double t0 = now_s();
    for (size_t i = 0; i < nq; i++) {
        const char *s = qs[i].text;
        size_t n = strlen(s), pos = 0, wl;
        char w[INTENT_MAX_WORD];
        if (!(qw[i] = malloc((n / 2 + 1) * sizeof **qw))) goto oom;
        while ((wl = intent_next_word(s, n, &pos, w, sizeof w)) > 0) {
            long k = word_find(&c, w, wl, 1);
            if (k == -2) goto oom;
            size_t j;
            for (j = 0; j < nqw[i] && qw[i][j] != (uint32_t)k; j++)
                ;
            if (j == nqw[i]) qw[i][nqw[i]++] = (uint32_t)k;
        }
    }
    if ((rc = fn_read_lines(path, corpus_line, &c, eb)) != 0) goto fail;
    if (c.ndocs == 0) {
        rc = fn_seterr(eb, FN_EINVAL, "%s: no documents", path);
        goto fail;
    }
    vert_sort(c.names, c.counts, c.nv, c.vert, c.ndocs, NULL);
    double t1 = now_s();

    cnt = calloc(c.ndocs, sizeof *cnt);
    touched = malloc(c.ndocs * sizeof *touched);
    level = malloc(c.ndocs * sizeof *level);
    out->label = malloc((nq ? nq : 1) * sizeof *out->label);
    out->dist = calloc((nq ? nq : 1) * c.nv, sizeof *out->dist);
    if (!cnt || !touched || !level || !out->label || !out->dist) goto oom;
    size_t wins[INTENT_MAX_VERTICALS] = { 0 };
    for (size_t i = 0; i < nq; i++) {
        size_t nt = 0, maxc = 0;
        for (size_t j = 0; j < nqw[i]; j++) {
            const qword *q = &c.words[qw[i][j]];
            for (size_t e = 0; e < q->n; e++) {
                uint32_t d = q->post[e];
                if (cnt[d]++ == 0) touched[nt++] = d;
                if (cnt[d] > maxc) maxc = cnt[d];
            }
        }
        size_t votes[INTENT_MAX_VERTICALS] = { 0 }, taken = 0;
        for (size_t lv = maxc; lv >= 1 && taken < top_docs; lv--) {
            size_t nl = 0;
            for (size_t t = 0; t < nt; t++)
                if (cnt[touched[t]] == lv) level[nl++] = touched[t];
            if (taken + nl > top_docs) {
                qsort(level, nl, sizeof *level, cmp_u32);
                nl = top_docs - taken;
            }
            for (size_t t = 0; t < nl; t++)
                votes[c.vert[level[t]]]++;
            taken += nl;
        }
        for (size_t t = 0; t < nt; t++)
            cnt[touched[t]] = 0;
        if (taken == 0) {
            out->label[i] = -1;
            out->unlabelled++;
            continue;
        }
        int best = 0;
        for (size_t v = 0; v < c.nv; v++) {
            out->dist[i * c.nv + v] = (double)votes[v] / (double)taken;
            if (votes[v] > votes[best]) best = (int)v;
        }
        out->label[i] = best;
        taken_of[i] = taken;
        wins[best]++;
    }
    if (verbose) {
        size_t mem = c.postings * sizeof(uint32_t) + c.ndocs * (sizeof *c.vert + sizeof *cnt + 2 * sizeof *touched) +
                     c.tcap * sizeof *c.table + total_words * sizeof *c.words;
        char mb[32];
        fn_format_bytes(mem, mb, sizeof mb);
        fprintf(stderr, "funnel intent: corpus %s: %zu documents,", path, c.ndocs);
        for (size_t v = 0; v < c.nv; v++)
            fprintf(stderr, " %s %.1f%%", c.names[v], 100.0 * (double)c.counts[v] / (double)c.ndocs);
        fprintf(stderr, "; %zu query words, %zu postings, %s held; read in %.2f s, labelled in %.2f s\n",
                c.nwords, c.postings, mb, t1 - t0, now_s() - t1);
        fprintf(stderr, "funnel intent: labels (majority of the top %zu documents):", top_docs);
        for (size_t v = 0; v < c.nv; v++)
            fprintf(stderr, " %s %zu", c.names[v], wins[v]);
        fprintf(stderr, "; %zu queries match no document\n", out->unlabelled);
        /* Is there signal in the votes beyond the corpus mix? Compare the
         * spread of each vertical's share across queries with the spread
         * sampling alone gives (binomial: p(1-p)/taken, p the corpus share). */
        fprintf(stderr, "funnel intent: top-document share per vertical, mean and sd over queries (sd from "
                "sampling alone):");
        size_t nlab = nq - out->unlabelled;
        for (size_t v = 0; v < c.nv && nlab; v++) {
            double p = (double)c.counts[v] / (double)c.ndocs, s1 = 0, s2 = 0, ev = 0;
            for (size_t i = 0; i < nq; i++) {
                if (out->label[i] < 0) continue;
                double x = out->dist[i * c.nv + v];
                s1 += x;
                s2 += x * x;
                ev += p * (1 - p) / (double)taken_of[i];
            }
            double mean = s1 / (double)nlab, var = s2 / (double)nlab - mean * mean;
            fprintf(stderr, " %s %.3f sd %.3f (%.3f)", c.names[v], mean, sqrt(var > 0 ? var : 0),
                    sqrt(ev / (double)nlab));
        }
        fputc('\n', stderr);
    }
    out->names = c.names;
    out->nv = c.nv;
    c.names = NULL;
    rc = 0;
    goto fail;
oom:
    rc = fn_seterr(eb, -ENOMEM, "intent: out of memory");
fail:
    for (size_t i = 0; qw && i < nq; i++)
        free(qw[i]);
    free(qw);
    free(nqw);
    free(taken_of);
    for (size_t k = 0; k < c.nwords; k++) {
        free(c.words[k].w);
        free(c.words[k].post);
    }
    free(c.words);
    free(c.table);
    free(c.vert);
    for (size_t v = 0; c.names && v < c.nv; v++)
        free(c.names[v]);
    free(c.names);
    free(c.counts);
    free(cnt);
    free(touched);
    free(level);
    return rc;
}

/* ---- reports ---- */

/* Accuracy and per-vertical precision/recall of pred against gold (n
 * queries; gold -1 = a label the model does not know: always wrong).
 * baseline: the vertical a majority-class predictor always says. */
static void report(const char *what, const char *const *names, size_t nv, const int *gold, const int *pred,
                   size_t n, int baseline)
{
    size_t ok = 0, base = 0, tp[INTENT_MAX_VERTICALS] = { 0 }, np[INTENT_MAX_VERTICALS] = { 0 },
           ng[INTENT_MAX_VERTICALS] = { 0 };
    for (size_t i = 0; i < n; i++) {
        ok += gold[i] == pred[i];
        base += gold[i] == baseline;
        np[pred[i]]++;
        if (gold[i] >= 0) {
            ng[gold[i]]++;
            tp[gold[i]] += gold[i] == pred[i];
        }
    }
    printf("%s: %zu queries, accuracy %.4f, majority baseline (%s) %.4f\n", what, n,
           n ? (double)ok / (double)n : 0.0, names[baseline], n ? (double)base / (double)n : 0.0);
    printf("  %-12s %8s %8s %9s %9s\n", "vertical", "gold", "predicted", "precision", "recall");
    for (size_t v = 0; v < nv; v++) {
        char p[16] = "-", r[16] = "-";
        if (np[v]) snprintf(p, sizeof p, "%.4f", (double)tp[v] / (double)np[v]);
        if (ng[v]) snprintf(r, sizeof r, "%.4f", (double)tp[v] / (double)ng[v]);
        printf("  %-12s %8zu %8zu %9s %9s\n", names[v], ng[v], np[v], p, r);
    }
}

/* ---- commands ---- */

typedef struct cli {
    const char *corpus, *queries, *out, *labels, *model;
    size_t top_docs;
    double holdout;
    uint64_t seed;
    ops_intent_train_opts to;
} cli;

static int parse_opts(int argc, char **argv, cli *a, const char *sub)
{
    static const struct option lo[] = {
        { "corpus", required_argument, NULL, 'c' }, { "queries", required_argument, NULL, 'q' },
        { "out", required_argument, NULL, 'o' }, { "labels", required_argument, NULL, 'l' },
        { "model", required_argument, NULL, 'm' }, { "top-docs", required_argument, NULL, 'd' },
        { "buckets", required_argument, NULL, 'b' }, { "holdout", required_argument, NULL, 'H' },
        { "seed", required_argument, NULL, 's' }, { "c", required_argument, NULL, 'C' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'c': a->corpus = optarg; break;
        case 'q': a->queries = optarg; break;
        case 'o': a->out = optarg; break;
        case 'l': a->labels = optarg; break;
        case 'm': a->model = optarg; break;
        case 'd': {
            unsigned long long v = strtoull(optarg, &end, 10);
            if (end == optarg || *end || *optarg == '-' || v == 0 || v > 1000000)
                return usage_error("--top-docs: 1..1000000, not %s", optarg);
            a->top_docs = (size_t)v;
            break;
        }
        case 'b': {
            unsigned long long v = strtoull(optarg, &end, 10);
            if (end == optarg || *end || *optarg == '-' || v == 0 || v > INTENT_MAX_BUCKETS)
                return usage_error("--buckets: 1..16777216, not %s", optarg);
            a->to.buckets = (uint32_t)v;
            break;
        }
        case 'H':
            a->holdout = strtod(optarg, &end);
            if (end == optarg || *end || !(a->holdout >= 0 && a->holdout < 1))
                return usage_error("--holdout: a fraction in [0, 1), not %s", optarg);
            break;
        case 's':
            a->seed = strtoull(optarg, &end, 10);
            if (end == optarg || *end || *optarg == '-') return usage_error("--seed: not a number: %s", optarg);
            break;
        case 'C':
            a->to.C = strtod(optarg, &end);
            if (end == optarg || *end || !(a->to.C > 0) || !isfinite(a->to.C))
                return usage_error("--c: a positive number, not %s", optarg);
            break;
        case 'h': fputs(intent_usage, stdout); return -1;
        default: {
            char msg[160];
            snprintf(msg, sizeof msg, "%s: unknown or incomplete option %%s", sub);
            return usage_error(msg, argv[optind - 1]);
        }
        }
    }
    return 0;
}

/* Labels of qs from --labels or --corpus (exactly one must be set). */
static int get_labels(const cli *a, const ops_query *qs, size_t nq, labelling *l, fn_errbuf *eb)
{
    if (a->labels) return labels_from_file(a->labels, qs, nq, l, eb);
    return labels_from_corpus(a->corpus, qs, nq, a->top_docs, l, 1, eb);
}

static int cmd_train(int argc, char **argv)
{
    cli a = { .top_docs = 100, .seed = 1 };
    ops_intent_train_defaults(&a.to);
    int prc = parse_opts(argc, argv, &a, "train");
    if (prc) return prc < 0 ? OPS_EXIT_OK : prc;
    if (optind < argc) return usage_error("train: unexpected argument %s", argv[optind]);
    if (a.model) return usage_error("train: --model is for predict and eval; train writes --out%s", "");
    if (!a.queries || !a.out) return usage_error("train: --queries and --out are required%s", "");
    if (!a.corpus == !a.labels) return usage_error("train: one of --corpus and --labels is required%s", "");

    fn_errbuf eb = { { 0 } };
    ops_query *qs = NULL;
    size_t nq = 0;
    labelling l = { 0 };
    int status = OPS_EXIT_FAIL, rc;
    const char **texts = NULL;
    int *gold = NULL, *pred = NULL;
    size_t *idx = NULL;
    struct intent_model *m = NULL;
    double t0 = now_s();
    if ((rc = ops_queries_load(a.queries, &qs, &nq, &eb)) || (rc = get_labels(&a, qs, nq, &l, &eb))) goto fail;

    /* The labelled queries, shuffled with the seed; the first nh are held out. */
    size_t nl = 0;
    idx = malloc((nq ? nq : 1) * sizeof *idx);
    texts = malloc((nq ? nq : 1) * sizeof *texts);
    gold = malloc((nq ? nq : 1) * sizeof *gold);
    pred = malloc((nq ? nq : 1) * sizeof *pred);
    if (!idx || !texts || !gold || !pred) {
        rc = fn_seterr(&eb, -ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < nq; i++)
        if (l.label[i] >= 0) idx[nl++] = i;
    uint64_t st = a.seed;
    for (size_t i = nl; i > 1; i--) {
        size_t j = (size_t)(fn_splitmix64(&st) % i);
        size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
    size_t nh = (size_t)llround(a.holdout * (double)nl);
    if (a.holdout > 0 && nh == 0) nh = 1;
    if (nh >= nl) {
        rc = fn_seterr(&eb, FN_EINVAL, "%zu labelled queries: too few to hold %zu out and train on the rest", nl, nh);
        goto fail;
    }
    size_t ntr = nl - nh;
    for (size_t k = 0; k < ntr; k++) {
        texts[k] = qs[idx[nh + k]].text;
        gold[k] = l.label[idx[nh + k]];
    }
    double t1 = now_s();
    if ((rc = ops_intent_train(texts, gold, ntr, (const char *const *)l.names, l.nv, &a.to, &m, &eb))) goto fail;
    double t2 = now_s();
    fprintf(stderr, "funnel intent train: %zu queries, %zu labelled, %zu trained on, %zu held out; %zu verticals, "
            "%u buckets; labels in %.2f s, training in %.2f s\n", nq, nl, ntr, nh, l.nv, a.to.buckets, t1 - t0,
            t2 - t1);
    if (nh) {
        /* the majority baseline: the most frequent training label (the model's prior) */
        const double *prior = intent_model_prior(m);
        int base = 0;
        for (size_t v = 1; v < l.nv; v++)
            if (prior[v] > prior[base]) base = (int)v;
        double *sc = malloc(l.nv * sizeof *sc);
        if (!sc) {
            rc = fn_seterr(&eb, -ENOMEM, "out of memory");
            goto fail;
        }
        for (size_t k = 0; k < nh; k++) {
            const char *q = qs[idx[k]].text;
            gold[k] = l.label[idx[k]];
            pred[k] = intent_predict(m, q, strlen(q), sc, l.nv);
        }
        free(sc);
        report("held-out", (const char *const *)l.names, l.nv, gold, pred, nh, base);
    }
    if ((rc = intent_model_save(m, a.out, &eb))) goto fail;
    status = OPS_EXIT_OK;
fail:
    if (rc) fprintf(stderr, "funnel intent train: %s\n", fn_errmsg(&eb, rc));
    intent_model_free(m);
    free(idx);
    free(texts);
    free(gold);
    free(pred);
    labelling_free(&l);
    ops_queries_free(qs, nq);
    return status;
}

static void print_scores(const char *const *names, size_t nv, const double *sc, char sep)
{
    for (size_t v = 0; v < nv; v++)
        printf("%s%s%c%.6f", v ? " " : "", names[v], sep, sc[v]);
}

static int cmd_predict(int argc, char **argv)
{
    cli a = { .top_docs = 100, .seed = 1 };
    ops_intent_train_defaults(&a.to);
    int prc = parse_opts(argc, argv, &a, "predict");
    if (prc) return prc < 0 ? OPS_EXIT_OK : prc;
    if (!a.model) return usage_error("predict: --model is required%s", "");
    if (a.queries && optind < argc) return usage_error("predict: a query text or --queries, not both (%s)", argv[optind]);
    if (!a.queries && optind + 1 != argc) return usage_error("predict: one query text (quoted) or --queries Q.tsv%s", "");

    fn_errbuf eb = { { 0 } };
    intent_model_t *m;
    int rc = intent_model_load(a.model, &m, &eb);
    if (rc) {
        fprintf(stderr, "funnel intent predict: %s\n", fn_errmsg(&eb, rc));
        return OPS_EXIT_FAIL;
    }
    const char *const *names;
    size_t nv;
    intent_model_verticals(m, &names, &nv);
    double sc[INTENT_MAX_VERTICALS];
    int status = OPS_EXIT_OK;
    if (a.queries) {
        ops_query *qs = NULL;
        size_t nq = 0;
        if ((rc = ops_queries_load(a.queries, &qs, &nq, &eb))) {
            fprintf(stderr, "funnel intent predict: %s\n", fn_errmsg(&eb, rc));
            status = OPS_EXIT_FAIL;
        }
        for (size_t i = 0; !rc && i < nq; i++) {
            int best = intent_predict(m, qs[i].text, strlen(qs[i].text), sc, nv);
            printf("%s\t%s\t", qs[i].qid, names[best]);
            print_scores(names, nv, sc, ':');
            putchar('\n');
        }
        ops_queries_free(qs, nq);
    } else {
        const char *q = argv[optind];
        int best = intent_predict(m, q, strlen(q), sc, nv);
        printf("%s\n", names[best]);
        for (size_t v = 0; v < nv; v++)
            printf("  %-12s %.6f\n", names[v], sc[v]);
    }
    intent_model_free(m);
    return status;
}

static int cmd_eval(int argc, char **argv)
{
    cli a = { .top_docs = 100, .seed = 1 };
    ops_intent_train_defaults(&a.to);
    int prc = parse_opts(argc, argv, &a, "eval");
    if (prc) return prc < 0 ? OPS_EXIT_OK : prc;
    if (optind < argc) return usage_error("eval: unexpected argument %s", argv[optind]);
    if (!a.model || !a.queries) return usage_error("eval: --model and --queries are required%s", "");
    if (!a.corpus == !a.labels) return usage_error("eval: one of --corpus and --labels is required%s", "");

    fn_errbuf eb = { { 0 } };
    intent_model_t *m = NULL;
    ops_query *qs = NULL;
    size_t nq = 0, n = 0;
    labelling l = { 0 };
    int *gold = NULL, *pred = NULL, rc, status = OPS_EXIT_FAIL;
    if ((rc = intent_model_load(a.model, &m, &eb)) || (rc = ops_queries_load(a.queries, &qs, &nq, &eb)) ||
        (rc = get_labels(&a, qs, nq, &l, &eb)))
        goto fail;
    const char *const *names;
    size_t nv;
    intent_model_verticals(m, &names, &nv);
    gold = malloc((nq ? nq : 1) * sizeof *gold);
    pred = malloc((nq ? nq : 1) * sizeof *pred);
    if (!gold || !pred) {
        rc = fn_seterr(&eb, -ENOMEM, "out of memory");
        goto fail;
    }
    double sc[INTENT_MAX_VERTICALS];
    for (size_t i = 0; i < nq; i++) {
        if (l.label[i] < 0) continue;
        int g = -1;     /* a vertical the model does not know: always wrong */
        for (size_t v = 0; v < nv; v++)
            if (strcmp(names[v], l.names[l.label[i]]) == 0) g = (int)v;
        gold[n] = g;
        pred[n++] = intent_predict(m, qs[i].text, strlen(qs[i].text), sc, nv);
    }
    const double *prior = intent_model_prior(m);
    int base = 0;
    for (size_t v = 1; v < nv; v++)
        if (prior[v] > prior[base]) base = (int)v;
    fprintf(stderr, "funnel intent eval: %zu queries, %zu labelled\n", nq, n);
    report("eval", names, nv, gold, pred, n, base);
    status = OPS_EXIT_OK;
fail:
    if (rc) fprintf(stderr, "funnel intent eval: %s\n", fn_errmsg(&eb, rc));
    intent_model_free(m);
    labelling_free(&l);
    ops_queries_free(qs, nq);
    free(gold);
    free(pred);
    return status;
}

int ops_cmd_intent(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "train") == 0) return cmd_train(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "predict") == 0) return cmd_predict(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "eval") == 0) return cmd_eval(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(intent_usage, stdout);
        return OPS_EXIT_OK;
    }
    fprintf(stderr, "funnel intent: train, predict or eval expected\n");
    fputs(intent_usage, stderr);
    return OPS_EXIT_USAGE;
}
