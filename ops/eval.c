/* eval.c - TREC evaluation matching shared/tools/trec_eval.py (see eval.h).
 *
 * Strings live in an arena; queries are found through a small open-addressing
 * map. A query's judgments are sorted by docid once, so ranking a run is a
 * sort plus at most 1000 binary searches a query.
 */
#include "eval.h"
#include "fn_io.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const ops_eval_metric_names[OPS_EVAL_NMETRICS] = {
    "ndcg@10", "map", "mrr", "p@10", "r@100", "r@1000",
};

#define CUT_NDCG 10
#define CUT_RANK 1000

/* ---- arena of NUL-terminated strings ---- */

typedef struct arena_blk {
    struct arena_blk *next;
    size_t used, cap;
    char data[];
} arena_blk;

typedef struct arena {
    arena_blk *head;
} arena;

static const char *arena_dup(arena *a, const char *s, size_t n)
{
    arena_blk *b = a->head;
    if (!b || b->cap - b->used < n + 1) {
        size_t cap = n + 1 > 65536 ? n + 1 : 65536;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    char *p = b->data + b->used;
    memcpy(p, s, n);
    p[n] = '\0';
    b->used += n + 1;
    return p;
}

static void arena_free(arena *a)
{
    for (arena_blk *b = a->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    a->head = NULL;
}

/* ---- string -> index map ---- */

typedef struct strmap {
    const char **keys;
    uint32_t *vals;
    size_t mask, count;
} strmap;

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;       /* FNV-1a 64 */
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ull; }
    return h;
}

/* Index of key in the map, or UINT32_MAX. */
static uint32_t strmap_get(const strmap *m, const char *s, size_t n)
{
    if (!m->keys) return UINT32_MAX;
    for (size_t i = hash_str(s, n) & m->mask;; i = (i + 1) & m->mask) {
        const char *k = m->keys[i];
        if (!k) return UINT32_MAX;
        if (strncmp(k, s, n) == 0 && k[n] == '\0') return m->vals[i];
    }
}

static int strmap_put(strmap *m, const char *key, uint32_t val)
{
    if ((m->count + 1) * 2 > (m->keys ? m->mask + 1 : 0)) {
        size_t ncap = m->keys ? (m->mask + 1) * 2 : 64;
        const char **nk = calloc(ncap, sizeof *nk);
        uint32_t *nv = calloc(ncap, sizeof *nv);
        if (!nk || !nv) { free(nk); free(nv); return -ENOMEM; }
        for (size_t i = 0; m->keys && i <= m->mask; i++) {
            if (!m->keys[i]) continue;
            size_t j = hash_str(m->keys[i], strlen(m->keys[i])) & (ncap - 1);
            while (nk[j]) j = (j + 1) & (ncap - 1);
            nk[j] = m->keys[i];
            nv[j] = m->vals[i];
        }
        free(m->keys);
        free(m->vals);
        m->keys = nk;
        m->vals = nv;
        m->mask = ncap - 1;
    }
    size_t j = hash_str(key, strlen(key)) & m->mask;
    while (m->keys[j]) j = (j + 1) & m->mask;
    m->keys[j] = key;
    m->vals[j] = val;
    m->count++;
    return 0;
}

static void strmap_free(strmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- growable arrays ---- */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need) ncap *= 2;
    void *np = realloc(*p, ncap * elem);
    if (!np) return -ENOMEM;
    *p = np;
    *cap = ncap;
    return 0;
}

/* ---- data ---- */

typedef struct judgment {
    const char *docid;
    long grade;
    size_t seq;             /* line order, so that the last duplicate wins */
} judgment;

typedef struct qrels_query {
    const char *qid;
    judgment *j;
    size_t n, cap;
} qrels_query;

struct ops_qrels {
    arena strings;
    strmap ids;
    qrels_query *q;         /* in order of first appearance (the reference's sum order) */
    size_t n, cap;
};

typedef struct run_entry {
    double score;
    const char *docid;
    size_t len;
} run_entry;

typedef struct run_query {
    const char *qid;
    run_entry *e;
    size_t n, cap;
} run_query;

struct ops_run {
    arena strings;
    strmap ids;
    run_query *q;
    size_t n, cap;
};

static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Split line into at most max fields (pointers into line, NUL-terminated in
 * place). Returns the number of fields found, counting past max. */
static size_t split(char *line, char **f, size_t max)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        while (*p && is_space((unsigned char)*p)) p++;
        if (!*p) break;
        char *s = p;
        while (*p && !is_space((unsigned char)*p)) p++;
        if (n < max) f[n] = s;
        n++;
        if (*p) *p++ = '\0';
    }
    return n;
}

/* ---- qrels ---- */

static int qrels_add(ops_qrels *q, const char *qid, const char *docid, long grade, size_t seq)
{
    uint32_t qi = strmap_get(&q->ids, qid, strlen(qid));
    if (qi == UINT32_MAX) {
        if (grow((void **)&q->q, &q->cap, q->n + 1, sizeof *q->q)) return -ENOMEM;
        const char *k = arena_dup(&q->strings, qid, strlen(qid));
        if (!k) return -ENOMEM;
        qi = (uint32_t)q->n;
        if (strmap_put(&q->ids, k, qi)) return -ENOMEM;
        q->q[q->n++] = (qrels_query){ .qid = k };
    }
    qrels_query *qq = &q->q[qi];
    if (grow((void **)&qq->j, &qq->cap, qq->n + 1, sizeof *qq->j)) return -ENOMEM;
    const char *d = arena_dup(&q->strings, docid, strlen(docid));
    if (!d) return -ENOMEM;
    qq->j[qq->n++] = (judgment){ .docid = d, .grade = grade, .seq = seq };
    return 0;
}

static int cmp_judgment(const void *a, const void *b)
{
    const judgment *x = a, *y = b;
    int c = strcmp(x->docid, y->docid);
    if (c) return c;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Sort each query's judgments by docid and keep the last of duplicates. */
static void qrels_finish(ops_qrels *q)
{
    for (size_t i = 0; i < q->n; i++) {
        qrels_query *qq = &q->q[i];
        if (qq->n < 2) continue;
        qsort(qq->j, qq->n, sizeof *qq->j, cmp_judgment);
        size_t w = 0;
        for (size_t k = 0; k < qq->n; k++) {
            if (w && strcmp(qq->j[w - 1].docid, qq->j[k].docid) == 0) qq->j[w - 1] = qq->j[k];
            else qq->j[w++] = qq->j[k];
        }
        qq->n = w;
    }
}

void ops_eval_qrels_free(ops_qrels *q)
{
    if (!q) return;
    for (size_t i = 0; i < q->n; i++) free(q->q[i].j);
    free(q->q);
    strmap_free(&q->ids);
    arena_free(&q->strings);
    free(q);
}

typedef struct load_ctx {
    const char *path;
    void *into;             /* ops_qrels or ops_run */
    fn_errbuf *eb;
} load_ctx;

/* qrels line: "qid iter docid grade"; blank lines are skipped. */
static int qrels_line(void *ud, char *line, size_t len, size_t lineno)
{
    load_ctx *c = ud;
    (void)len;
    char *fl[4];
    size_t nf = split(line, fl, 4);
    if (nf == 0) return 0;
    if (nf != 4)
        return fn_seterr(c->eb, FN_EPARSE, "%s:%zu: expected 4 fields (qid iter docid grade), got %zu",
                         c->path, lineno, nf);
    char *end;
    errno = 0;
    long g = strtol(fl[3], &end, 10);
    if (*end || errno)
        return fn_seterr(c->eb, FN_EPARSE, "%s:%zu: grade \"%s\" is not an integer", c->path, lineno, fl[3]);
    return qrels_add(c->into, fl[0], fl[2], g, lineno);
}

int ops_eval_load_qrels(const char *path, ops_qrels **out, fn_errbuf *eb)
{
    *out = NULL;
    ops_qrels *q = calloc(1, sizeof *q);
    if (!q) return -ENOMEM;
    load_ctx c = { .path = path, .into = q, .eb = eb };
    int rc = fn_read_lines(path, qrels_line, &c, eb);
    if (rc) {
        ops_eval_qrels_free(q);
        return rc;
    }
    qrels_finish(q);
    *out = q;
    return 0;
}

/* ---- run ---- */

int ops_eval_run_new(ops_run **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -ENOMEM;
}

void ops_eval_run_free(ops_run *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) free(r->q[i].e);
    free(r->q);
    strmap_free(&r->ids);
    arena_free(&r->strings);
    free(r);
}

static int valid_id(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (is_space((unsigned char)*s)) return 0;
    return 1;
}

int ops_eval_run_add(ops_run *r, const char *qid, const char *docid, double score)
{
    if (isnan(score) || !valid_id(qid) || !valid_id(docid)) return FN_EINVAL;
    size_t ql = strlen(qid), dl = strlen(docid);
    uint32_t qi = strmap_get(&r->ids, qid, ql);
    if (qi == UINT32_MAX) {
        if (grow((void **)&r->q, &r->cap, r->n + 1, sizeof *r->q)) return -ENOMEM;
        const char *k = arena_dup(&r->strings, qid, ql);
        if (!k) return -ENOMEM;
        qi = (uint32_t)r->n;
        if (strmap_put(&r->ids, k, qi)) return -ENOMEM;
        r->q[r->n++] = (run_query){ .qid = k };
    }
    run_query *rq = &r->q[qi];
    if (grow((void **)&rq->e, &rq->cap, rq->n + 1, sizeof *rq->e)) return -ENOMEM;
    const char *d = arena_dup(&r->strings, docid, dl);
    if (!d) return -ENOMEM;
    rq->e[rq->n++] = (run_entry){ .score = score, .docid = d, .len = dl };
    return 0;
}

/* run line: "qid Q0 docid rank score [tag]"; blank lines are skipped. */
static int run_line(void *ud, char *line, size_t len, size_t lineno)
{
    load_ctx *c = ud;
    (void)len;
    char *fl[5];
    size_t nf = split(line, fl, 5);
    if (nf == 0) return 0;
    if (nf < 5)
        return fn_seterr(c->eb, FN_EPARSE,
                         "%s:%zu: expected at least 5 fields (qid Q0 docid rank score), got %zu",
                         c->path, lineno, nf);
    char *end;
    double s = strtod(fl[4], &end);
    if (*end || end == fl[4] || isnan(s))
        return fn_seterr(c->eb, FN_EPARSE, "%s:%zu: score \"%s\" is not a number", c->path, lineno, fl[4]);
    return ops_eval_run_add(c->into, fl[0], fl[2], s);
}

int ops_eval_load_run(const char *path, ops_run **out, fn_errbuf *eb)
{
    *out = NULL;
    ops_run *r = NULL;
    int rc = ops_eval_run_new(&r);
    if (rc) return rc;
    load_ctx c = { .path = path, .into = r, .eb = eb };
    if ((rc = fn_read_lines(path, run_line, &c, eb))) {
        ops_eval_run_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* ---- evaluation ---- */

/* The reference's sort key: (-score, tuple(-ord(c) for c in docid)). UTF-8
 * byte order is code point order, so bytes compare like characters. */
static int cmp_ranked(const void *a, const void *b)
{
    const run_entry *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->docid, y->docid, n);
    if (c) return -c;                                   /* larger character first */
    return (x->len > y->len) - (x->len < y->len);       /* proper prefix first */
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_long_desc(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x < y) - (x > y);
}

static long grade_of(const qrels_query *qq, const char *docid)
{
    size_t lo = 0, hi = qq->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(qq->j[mid].docid, docid);
        if (c == 0) return qq->j[mid].grade;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return 0;
}

/* Metrics of one query; ranked may be NULL when n == 0. scratch holds
 * qq->n longs. Returns 0 if the query has no positive judgment (skipped). */
static int eval_query(const qrels_query *qq, const run_entry *ranked, size_t n,
                      long *scratch, double v[OPS_EVAL_NMETRICS])
{
    size_t npos = 0;
    for (size_t i = 0; i < qq->n; i++)
        if (qq->j[i].grade > 0) scratch[npos++] = qq->j[i].grade;
    if (!npos) return 0;
    qsort(scratch, npos, sizeof *scratch, cmp_long_desc);
    double idcg = 0;
    for (size_t i = 0; i < npos && i < CUT_NDCG; i++)
        idcg += (double)scratch[i] / log2((double)i + 2);

    double dcg = 0, ap = 0, rr = 0;
    size_t hits = 0, h10 = 0, h100 = 0;
    for (size_t i = 0; i < n && i < CUT_RANK; i++) {
        long g = grade_of(qq, ranked[i].docid);
        if (g <= 0) continue;
        if (i < CUT_NDCG) { dcg += (double)g / log2((double)i + 2); h10++; }
        if (i < 100) h100++;
        hits++;
        ap += (double)hits / (double)(i + 1);
        if (rr == 0) rr = 1.0 / (double)(i + 1);
    }
    v[OPS_EVAL_NDCG10] = dcg / idcg;
    v[OPS_EVAL_MAP] = ap / (double)npos;
    v[OPS_EVAL_MRR] = rr;
    v[OPS_EVAL_P10] = (double)h10 / 10.0;
    v[OPS_EVAL_R100] = (double)h100 / (double)npos;
    v[OPS_EVAL_R1000] = (double)hits / (double)npos;
    return 1;
}

int ops_eval_compute(const ops_qrels *q, const ops_run *r, ops_eval_result *mean,
                     ops_eval_perquery_cb cb, void *ud)
{
    int rc = -ENOMEM;
    double (*per)[OPS_EVAL_NMETRICS] = NULL;
    char *evaluated = NULL;
    const char **order = NULL;
    long *scratch = NULL;
    run_entry *ranked = NULL;
    size_t maxj = 1, maxr = 1;

    memset(mean, 0, sizeof *mean);
    for (size_t i = 0; i < q->n; i++) if (q->q[i].n > maxj) maxj = q->q[i].n;
    for (size_t i = 0; i < r->n; i++) if (r->q[i].n > maxr) maxr = r->q[i].n;
    per = calloc(q->n ? q->n : 1, sizeof *per);
    evaluated = calloc(q->n ? q->n : 1, 1);
    order = calloc(q->n ? q->n : 1, sizeof *order);
    scratch = malloc(maxj * sizeof *scratch);
    ranked = malloc(maxr * sizeof *ranked);
    if (!per || !evaluated || !order || !scratch || !ranked) goto out;

    for (size_t i = 0; i < q->n; i++) {
        const qrels_query *qq = &q->q[i];
        uint32_t ri = strmap_get(&r->ids, qq->qid, strlen(qq->qid));
        size_t n = 0;
        if (ri != UINT32_MAX) {
            n = r->q[ri].n;
            memcpy(ranked, r->q[ri].e, n * sizeof *ranked);
            qsort(ranked, n, sizeof *ranked, cmp_ranked);
        }
        evaluated[i] = (char)eval_query(qq, ranked, n, scratch, per[i]);
    }

    /* Sum in qrels order, as the reference does; report in qid order. */
    size_t ne = 0;
    for (size_t i = 0; i < q->n; i++) {
        if (!evaluated[i]) continue;
        for (int m = 0; m < OPS_EVAL_NMETRICS; m++) mean->v[m] += per[i][m];
        order[ne++] = q->q[i].qid;
    }
    mean->queries = ne;
    if (ne)
        for (int m = 0; m < OPS_EVAL_NMETRICS; m++) mean->v[m] /= (double)ne;
    if (cb) {
        qsort(order, ne, sizeof *order, cmp_cstr);
        for (size_t k = 0; k < ne; k++) {
            uint32_t i = strmap_get(&q->ids, order[k], strlen(order[k]));
            cb(ud, order[k], per[i]);
        }
    }
    rc = 0;
out:
    free(ranked);
    free(scratch);
    free(order);
    free(evaluated);
    free(per);
    return rc;
}
