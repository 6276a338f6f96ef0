/* cfilter.c - the content filter of issue 11 (cfilter.h): hashed sparse
 * features, the model and its file, training with rank_train_logistic,
 * threshold choice and the metrics the CLI reports (ops/ops_cfilter.c).
 *
 * Training matrix. rank_train_logistic takes a dense matrix, so the columns
 * are compacted to the buckets the training rows use (an unused column has
 * weight exactly 0 at the L2 optimum); when rows x used columns x 4 bytes
 * passes opts.max_dense, only the columns used by the most training
 * documents are kept (ties: the lower bucket), and the rest get weight 0.
 */
#include "cfilter.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <xxhash.h>

#include "fn_io.h"
#include "train.h"

#define CFILTER_MAX_FILE (512ull << 20)
#define CFILTER_NUMERIC (16 + 2 * CFILTER_NSIGNALS)   /* slots kept for the counts, lengths and signals */
#define CFILTER_MAX_HOST 128

struct cfilter_model {
    uint32_t buckets;
    double bias, threshold;
    double strict;              /* <= threshold: the high-recall cut (cfilter_model_strict) */
    double *w;                  /* [buckets] */
    size_t nnz;
};

/* ---- features ---- */

typedef struct fx {
    cfilter_feat *out;
    size_t n, cap;
    uint32_t buckets;
} fx;

static void emit(fx *x, char ns, const char *s, size_t len, float val)
{
    if (x->n >= x->cap) return;
    char b[2 * CFILTER_MAX_HOST + 8];
    if (len > sizeof b - 1) len = sizeof b - 1;
    b[0] = ns;
    memcpy(b + 1, s, len);
    x->out[x->n].col = (uint32_t)(XXH64(b, len + 1, CFILTER_HASH_SEED) % x->buckets);
    x->out[x->n++].val = val;
}

static int is_wc(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static int is_hc(unsigned char c)    /* host characters */
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

static const char *const lexicon[] = { CFILTER_LEXICON };

static int lexicon_hit(const char *w, size_t len)
{
    for (size_t k = 0; k < sizeof lexicon / sizeof *lexicon; k++)
        if (lexicon[k][0] == w[0] && strlen(lexicon[k]) == len && memcmp(lexicon[k], w, len) == 0) return 1;
    return 0;
}

typedef struct counts {
    size_t words, lex, caps, dollars, bangs, urls, emails;
} counts;

static void words(fx *x, const char *s, size_t n, char wns, char bns, counts *c)
{
    char prev[CFILTER_MAX_WORD], w[CFILTER_MAX_WORD], bg[2 * CFILTER_MAX_WORD + 1];
    size_t plen = 0, i = 0;
    for (;;) {
        while (i < n && !is_wc((unsigned char)s[i])) {
            c->dollars += s[i] == '$';
            c->bangs += s[i] == '!';
            i++;
        }
        size_t st = i;
        while (i < n && is_wc((unsigned char)s[i]))
            i++;
        size_t len = i - st;
        if (len == 0) break;
        if (len > CFILTER_MAX_WORD) {
            plen = 0;
            continue;
        }
        size_t upper = 0, letters = 0;
        for (size_t k = 0; k < len; k++) {
            char ch = s[st + k];
            if (ch >= 'A' && ch <= 'Z') {
                upper++;
                letters++;
                ch = (char)(ch + 32);
            } else if (ch >= 'a' && ch <= 'z') {
                letters++;
            }
            w[k] = ch;
        }
        c->caps += letters >= 3 && upper == letters;
        c->words++;
        c->lex += lexicon_hit(w, len);
        emit(x, wns, w, len, 1.0f);
        if (plen) {
            memcpy(bg, prev, plen);
            bg[plen] = ' ';
            memcpy(bg + plen + 1, w, len);
            emit(x, bns, bg, plen + 1 + len, 1.0f);
        }
        memcpy(prev, w, len);
        plen = len;
    }
}

static int prefix_ci(const char *s, size_t n, const char *p)
{
    size_t k = 0;
    for (; p[k]; k++) {
        if (k >= n) return 0;
        char ch = s[k];
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch + 32);
        if (ch != p[k]) return 0;
    }
    return 1;
}

/* The host at s[0..n): lowercased into h, its length; dots trimmed at the ends. */
static size_t host_at(const char *s, size_t n, char *h)
{
    size_t len = 0;
    while (len < n && len < CFILTER_MAX_HOST && is_hc((unsigned char)s[len])) {
        char ch = s[len];
        h[len++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    while (len && (h[len - 1] == '.' || h[len - 1] == '-'))
        len--;
    return len;
}

/* The last two labels of a host. */
static const char *domain_of(const char *h, size_t len, size_t *dl)
{
    size_t dots = 0, k = len;
    while (k > 0) {
        if (h[k - 1] == '.' && ++dots == 2) break;
        k--;
    }
    *dl = len - k;
    return h + k;
}

static void links(fx *x, const char *s, size_t n, counts *c)
{
    char h[CFILTER_MAX_HOST];
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        size_t skip = 0;
        if (ch == 'h' || ch == 'H') {
            if (prefix_ci(s + i, n - i, "http://")) skip = 7;
            else if (prefix_ci(s + i, n - i, "https://")) skip = 8;
        } else if ((ch == 'w' || ch == 'W') && (i == 0 || !is_hc((unsigned char)s[i - 1])) &&
                   prefix_ci(s + i, n - i, "www.")) {
            skip = 0;
            size_t len = host_at(s + i, n - i, h);
            if (len > 4) {
                c->urls++;
                emit(x, 'U', h, len, 1.0f);
                size_t dl;
                const char *d = domain_of(h, len, &dl);
                emit(x, 'D', d, dl, 1.0f);
            }
            i += len ? len - 1 : 0;
            continue;
        } else if (ch == '@' && i > 0 && is_wc((unsigned char)s[i - 1])) {
            size_t len = host_at(s + i + 1, n - i - 1, h);
            if (len && memchr(h, '.', len)) {
                c->emails++;
                size_t dl;
                const char *d = domain_of(h, len, &dl);
                emit(x, 'E', d, dl, 1.0f);
            }
            i += len;
            continue;
        }
        if (!skip) continue;
        size_t len = host_at(s + i + skip, n - i - skip, h);
        if (len) {
            c->urls++;
            emit(x, 'U', h, len, 1.0f);
            size_t dl;
            const char *d = domain_of(h, len, &dl);
            emit(x, 'D', d, dl, 1.0f);
        }
        i += skip + len - 1;
    }
}

static int cmp_feat(const void *a, const void *b)
{
    const cfilter_feat *x = a, *y = b;
    if (x->col != y->col) return x->col < y->col ? -1 : 1;
    return (x->val < y->val) - (x->val > y->val);      /* larger value first */
}

static const char *const signal_names[CFILTER_NSIGNALS] = { CFILTER_SIGNALS };

const char *const *cfilter_signal_names(void) { return signal_names; }

void cfilter_signals_json(const void *json, cfilter_signals *out)
{
    memset(out, 0, sizeof *out);
    const json_t *o = json;
    if (!o || !json_is_object(o)) return;
    for (size_t k = 0; k < CFILTER_NSIGNALS; k++) {
        json_t *v = json_object_get(o, signal_names[k]);
        if (!json_is_number(v)) continue;
        out->v[k] = json_number_value(v);
        out->mask |= 1u << k;
    }
}

size_t cfilter_features(const char *title, size_t tlen, const char *body, size_t blen, uint32_t buckets,
                        cfilter_feat *out, size_t cap)
{
    return cfilter_features_sig(title, tlen, body, blen, NULL, buckets, out, cap);
}

size_t cfilter_features_sig(const char *title, size_t tlen, const char *body, size_t blen,
                            const cfilter_signals *sig, uint32_t buckets, cfilter_feat *out, size_t cap)
{
    if (!buckets || !cap) return 0;
    if (!title) tlen = 0;
    if (!body) blen = 0;
    if (tlen > CFILTER_MAX_TITLE) tlen = CFILTER_MAX_TITLE;
    if (blen > CFILTER_MAX_BODY) blen = CFILTER_MAX_BODY;
    fx x = { .out = out, .n = 0, .cap = cap > CFILTER_NUMERIC ? cap - CFILTER_NUMERIC : 0, .buckets = buckets };
    counts ct = { 0 }, cb = { 0 };
    words(&x, title, tlen, 't', 'T', &ct);
    words(&x, body, blen, 'b', 'B', &cb);
    links(&x, title, tlen, &ct);
    links(&x, body, blen, &cb);
    /* the token features, merged, each 1/sqrt(their count) (unit L2 norm) */
    qsort(out, x.n, sizeof *out, cmp_feat);
    size_t m = 0;
    for (size_t k = 0; k < x.n; k++)
        if (m == 0 || out[m - 1].col != out[k].col) out[m++] = out[k];
    float unit = m ? (float)(1.0 / sqrt((double)m)) : 1.0f;
    for (size_t k = 0; k < m; k++)
        out[k].val = unit;
    x.n = m;
    x.cap = cap;
    struct {
        const char *name;
        double v;
    } num[] = {
        { "lex", (double)(ct.lex + cb.lex) },     { "dollar", (double)(ct.dollars + cb.dollars) },
        { "bang", (double)(ct.bangs + cb.bangs) }, { "url", (double)(ct.urls + cb.urls) },
        { "email", (double)(ct.emails + cb.emails) }, { "caps", (double)(ct.caps + cb.caps) },
        { "tbang", (double)ct.bangs },            { "tcaps", (double)ct.caps },
        { "tlen", (double)tlen },                 { "blen", (double)blen },
        { "bwords", (double)cb.words },
    };
    for (size_t k = 0; k < sizeof num / sizeof *num; k++)
        if (num[k].v > 0) emit(&x, '#', num[k].name, strlen(num[k].name), (float)log1p(num[k].v));
    /* a signal present at 0 is a feature too (its presence says something) */
    for (size_t k = 0; sig && k < CFILTER_NSIGNALS; k++)
        if (sig->mask >> k & 1u) {
            double v = isfinite(sig->v[k]) && sig->v[k] > 0 ? sig->v[k] : 0;
            emit(&x, '$', signal_names[k], strlen(signal_names[k]), (float)log1p(v));
            emit(&x, '?', signal_names[k], strlen(signal_names[k]), 1.0f);
        }
    qsort(out, x.n, sizeof *out, cmp_feat);
    m = 0;
    for (size_t k = 0; k < x.n; k++)
        if (m == 0 || out[m - 1].col != out[k].col) out[m++] = out[k];
    return m;
}

/* ---- the model ---- */

int cfilter_model_build(uint32_t buckets, double bias, double threshold, const uint32_t *cols,
                        const double *w, size_t n, cfilter_model_t **out, fn_errbuf *eb)
{
    *out = NULL;
    if (buckets == 0 || buckets > CFILTER_MAX_BUCKETS)
        return fn_seterr(eb, FN_EINVAL, "cfilter: buckets must be 1..%u", CFILTER_MAX_BUCKETS);
    if (!isfinite(bias)) return fn_seterr(eb, FN_EINVAL, "cfilter: bias is not finite");
    if (!(threshold >= 0 && threshold <= 1)) return fn_seterr(eb, FN_EINVAL, "cfilter: threshold outside [0, 1]");
    cfilter_model_t *m = calloc(1, sizeof *m);
    if (!m || !(m->w = calloc(buckets, sizeof *m->w))) {
        free(m);
        return fn_seterr(eb, -ENOMEM, "cfilter: out of memory");
    }
    m->buckets = buckets;
    m->bias = bias;
    m->threshold = threshold;
    m->strict = threshold;
    for (size_t k = 0; k < n; k++) {
        if (cols[k] >= buckets || !isfinite(w[k])) {
            cfilter_model_free(m);
            return fn_seterr(eb, FN_EINVAL, "cfilter: weight %zu: column %u or value out of range", k, cols[k]);
        }
        m->w[cols[k]] = w[k];
    }
    for (uint32_t b = 0; b < buckets; b++)
        m->nnz += m->w[b] != 0;
    *out = m;
    return 0;
}

void cfilter_model_free(cfilter_model_t *m)
{
    if (!m) return;
    free(m->w);
    free(m);
}

uint32_t cfilter_model_buckets(const cfilter_model_t *m) { return m->buckets; }
double cfilter_model_threshold(const cfilter_model_t *m) { return m->threshold; }
double cfilter_model_strict(const cfilter_model_t *m) { return m->strict; }

int cfilter_model_set_strict(cfilter_model_t *m, double strict)
{
    if (!(strict >= 0 && strict <= m->threshold)) return FN_EINVAL;
    m->strict = strict;
    return 0;
}
double cfilter_model_bias(const cfilter_model_t *m) { return m->bias; }
size_t cfilter_model_nweights(const cfilter_model_t *m) { return m->nnz; }

double cfilter_score_feats(const cfilter_model_t *m, const cfilter_feat *f, size_t n)
{
    double z = m->bias;
    for (size_t k = 0; k < n; k++)
        z += m->w[f[k].col] * (double)f[k].val;
    return 1.0 / (1.0 + exp(-z));
}

double cfilter_score(const cfilter_model_t *m, const char *title, size_t tlen, const char *body, size_t blen)
{
    return cfilter_score_sig(m, title, tlen, body, blen, NULL);
}

double cfilter_score_sig(const cfilter_model_t *m, const char *title, size_t tlen, const char *body, size_t blen,
                         const cfilter_signals *sig)
{
    cfilter_feat *f = malloc(CFILTER_MAX_FEATS * sizeof *f);
    if (!f) return -1;
    size_t n = cfilter_features_sig(title, tlen, body, blen, sig, m->buckets, f, CFILTER_MAX_FEATS);
    double p = cfilter_score_feats(m, f, n);
    free(f);
    return p;
}

/* ---- files ---- */

int cfilter_model_save(const cfilter_model_t *m, const char *path, fn_errbuf *eb)
{
    fn_sbuf b = { 0 };
    int rc = fn_sbuf_printf(&b,
                            "funnel-cfilter 1\nbuckets %u\nbias %.17g\nthreshold %.17g\nstrict %.17g\n"
                            "weights %zu\n",
                            m->buckets, m->bias, m->threshold, m->strict, m->nnz);
    for (uint32_t c = 0; !rc && c < m->buckets; c++)
        if (m->w[c] != 0) rc = fn_sbuf_printf(&b, "w %u %.17g\n", c, m->w[c]);
    if (rc) {
        free(b.p);
        return fn_seterr(eb, rc, "%s: out of memory", path);
    }
    return fn_write_checksummed(path, &b, eb);
}

/* Next line of [*p, end) into *line (NUL-terminated in place). 0 at the end. */
static int next_line(char **p, char *end, char **line)
{
    if (*p >= end) return 0;
    char *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (!nl) return 0;
    *nl = 0;
    *line = *p;
    *p = nl + 1;
    return 1;
}

int cfilter_model_load(const char *path, cfilter_model_t **out, fn_errbuf *eb)
{
    *out = NULL;
    char *buf;
    size_t n;
    int rc = fn_read_checksummed(path, CFILTER_MAX_FILE, "a content-filter model", &buf, &n, eb);
    if (rc) return rc;
    uint32_t *cols = NULL;
    double *w = NULL;
    char *p = buf, *end = buf + n, *line;
    unsigned buckets = 0;
    double bias = 0, thr = 0, strict = -1;
    size_t nw = 0, lineno = 0;
    int pos = 0;
    if (!next_line(&p, end, &line) || strcmp(line, "funnel-cfilter 1") != 0) {
        rc = fn_seterr(eb, FN_EFORMAT, "%s:1: not a content-filter model (want \"funnel-cfilter 1\")", path);
        goto out;
    }
    lineno = 1;
#define BAD(what) do { rc = fn_seterr(eb, FN_EFORMAT, "%s:%zu: %s", path, lineno, what); goto out; } while (0)
    lineno++;
    if (!next_line(&p, end, &line) || sscanf(line, "buckets %u%n", &buckets, &pos) != 1 || line[pos] ||
        buckets == 0 || buckets > CFILTER_MAX_BUCKETS)
        BAD("want \"buckets N\" (1..2^24)");
    lineno++;
    if (!next_line(&p, end, &line) || sscanf(line, "bias %lf%n", &bias, &pos) != 1 || line[pos] || !isfinite(bias))
        BAD("want \"bias X\"");
    lineno++;
    if (!next_line(&p, end, &line) || sscanf(line, "threshold %lf%n", &thr, &pos) != 1 || line[pos] ||
        !(thr >= 0 && thr <= 1))
        BAD("want \"threshold X\" in [0, 1]");
    lineno++;
    if (!next_line(&p, end, &line)) BAD("want \"weights N\"");
    if (strncmp(line, "strict ", 7) == 0) {     /* optional: files before it load with strict = threshold */
        if (sscanf(line, "strict %lf%n", &strict, &pos) != 1 || line[pos] || !(strict >= 0 && strict <= thr))
            BAD("want \"strict X\" in [0, threshold]");
        lineno++;
        if (!next_line(&p, end, &line)) BAD("want \"weights N\"");
    }
    if (sscanf(line, "weights %zu%n", &nw, &pos) != 1 || line[pos] || nw > buckets)
        BAD("want \"weights N\" (at most buckets)");
    cols = malloc((nw ? nw : 1) * sizeof *cols);
    w = malloc((nw ? nw : 1) * sizeof *w);
    if (!cols || !w) {
        rc = fn_seterr(eb, -ENOMEM, "%s: out of memory", path);
        goto out;
    }
    for (size_t k = 0; k < nw; k++) {
        lineno++;
        unsigned c;
        if (!next_line(&p, end, &line) || sscanf(line, "w %u %lf%n", &c, &w[k], &pos) != 2 || line[pos] ||
            c >= buckets || !isfinite(w[k]) || (k && c <= cols[k - 1]))
            BAD("want \"w COLUMN WEIGHT\", columns ascending and below buckets");
        cols[k] = c;
    }
    lineno++;
    if (p != end) BAD("unexpected line after the weights");
#undef BAD
    rc = cfilter_model_build(buckets, bias, thr, cols, w, nw, out, eb);
    if (!rc && strict >= 0) (*out)->strict = strict;
out:
    free(cols);
    free(w);
    free(buf);
    return rc;
}

/* ---- training ---- */

int cfilter_split(const char *id, size_t idlen, uint64_t seed, uint64_t salt, double share)
{
    uint64_t h = XXH64(id, idlen, seed ^ salt);
    return (double)(h >> 11) * 0x1.0p-53 < share;
}

void cfilter_train_defaults(cfilter_train_opts *o)
{
    o->buckets = 1u << 18;
    o->C = 100.0;
    o->target_precision = 0.98;   /* out-of-fold: a margin for the held-out sample (docs/evaluation.md) */
    o->strict_recall = 0.995;
    o->valid_share = 0.2;
    o->seed = 1;
    o->max_dense = 256u << 20;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct colcount {
    uint32_t bucket, df;
} colcount;

static int cmp_df(const void *a, const void *b)
{
    const colcount *x = a, *y = b;
    if (x->df != y->df) return x->df > y->df ? -1 : 1;
    return (x->bucket > y->bucket) - (x->bucket < y->bucket);
}

/* Fit on the rows of docs with use[i] set, over the kept columns (colmap:
 * bucket -> column, -1 = dropped): the weights of the kept buckets in
 * ascending bucket order into kw, the bias into *bias. */
static int fit(const cfilter_doc *docs, size_t n, cfilter_feat *const *rows, const size_t *rn, const char *use,
               const int32_t *colmap, size_t ncols, uint32_t buckets, double C, double *kw, double *bias,
               fn_errbuf *eb)
{
    rank_dataset ds = { 0 };
    rank_model_t *lm = NULL;
    for (size_t i = 0; i < n; i++) ds.rows += use[i] != 0;
    ds.nfeatures = ncols;
    ds.X = calloc(ds.rows * ds.nfeatures > 0 ? ds.rows * ds.nfeatures : 1, sizeof *ds.X);
    ds.label = malloc((ds.rows ? ds.rows : 1) * sizeof *ds.label);
    int rc = -ENOMEM;
    if (!ds.X || !ds.label) {
        rc = fn_seterr(eb, -ENOMEM, "cfilter train: out of memory");
        goto out;
    }
    size_t row = 0;
    for (size_t i = 0; i < n; i++) {
        if (!use[i]) continue;
        for (size_t j = 0; j < rn[i]; j++) {
            int32_t c = colmap[rows[i][j].col];
            if (c >= 0) ds.X[row * ds.nfeatures + (size_t)c] = rows[i][j].val;
        }
        ds.label[row++] = docs[i].positive ? 1.0f : 0.0f;
    }
    rank_logreg_params lp;
    rank_logreg_defaults(&lp);
    lp.C = C;
    if ((rc = rank_train_logistic(&ds, &lp, &lm, eb)) != 0) goto out;
    size_t nk = 0;
    for (uint32_t b = 0; b < buckets; b++)       /* ascending buckets */
        if (colmap[b] >= 0) kw[nk++] = rank_model_weight(lm, (size_t)colmap[b]);
    *bias = rank_model_bias(lm);
    rc = 0;
out:
    rank_model_free(lm);
    free(ds.X);
    free(ds.label);
    return rc;
}

int cfilter_train(const cfilter_doc *docs, size_t n, const cfilter_train_opts *o, cfilter_model_t **out,
                  cfilter_train_report *rep, fn_errbuf *eb)
{
    *out = NULL;
    cfilter_train_report r = { 0 };
    if (o->buckets == 0 || o->buckets > CFILTER_MAX_BUCKETS)
        return fn_seterr(eb, FN_EINVAL, "cfilter train: buckets must be 1..%u", CFILTER_MAX_BUCKETS);
    double t0 = now_s();
    int rc = -ENOMEM;
    cfilter_feat *buf = malloc(CFILTER_MAX_FEATS * sizeof *buf);
    cfilter_feat **rows = calloc(n ? n : 1, sizeof *rows);
    size_t *rn = calloc(n ? n : 1, sizeof *rn);
    char *fold = calloc(n ? n : 1, 1), *use = calloc(n ? n : 1, 1);
    uint32_t *df = calloc(o->buckets, sizeof *df);
    int32_t *colmap = malloc((size_t)o->buckets * sizeof *colmap);
    colcount *cc = NULL;
    uint32_t *kcols = NULL;
    double *kw = NULL, *vs = NULL;
    int *vy = NULL;
    cfilter_model_t *fm = NULL;
    if (!buf || !rows || !rn || !fold || !use || !df || !colmap) goto oom;
    /* Every document is in one of CFILTER_FOLDS folds (by its id and the
     * seed). The threshold is chosen on out-of-fold scores: each fold scored
     * by a model fitted on the others, so every training document informs
     * it (a held-out validation part of a fifth was too small: its
     * threshold moved with a handful of mails). The model is then fitted on
     * all of them. */
    for (size_t i = 0; i < n; i++) {
        size_t k = cfilter_features_sig(docs[i].title, docs[i].tlen, docs[i].body, docs[i].blen, &docs[i].sig,
                                        o->buckets, buf, CFILTER_MAX_FEATS);
        if (k && !(rows[i] = malloc(k * sizeof **rows))) goto oom;
        memcpy(rows[i], buf, k * sizeof *buf);
        rn[i] = k;
        fold[i] = (char)(XXH64(docs[i].id, docs[i].idlen, o->seed ^ CFILTER_SALT_VALID) % CFILTER_FOLDS);
        r.train_rows++;
        r.train_pos += docs[i].positive != 0;
        for (size_t j = 0; j < k; j++)
            df[rows[i][j].col]++;
    }
    r.valid_rows = r.train_rows;
    r.valid_pos = r.train_pos;
    if (r.train_pos == 0 || r.train_pos == r.train_rows) {
        rc = fn_seterr(eb, FN_EINVAL, "cfilter train: need positives and negatives (%zu of %zu positive)",
                       r.train_pos, r.train_rows);
        goto fail;
    }
    for (uint32_t b = 0; b < o->buckets; b++)
        r.used_cols += df[b] != 0;
    if (!(cc = malloc((r.used_cols ? r.used_cols : 1) * sizeof *cc))) goto oom;
    size_t u = 0;
    for (uint32_t b = 0; b < o->buckets; b++)
        if (df[b]) cc[u++] = (colcount){ b, df[b] };
    size_t maxcols = o->max_dense / (sizeof(float) * r.train_rows);
    r.kept_cols = r.used_cols;
    if (r.kept_cols > maxcols) {
        qsort(cc, u, sizeof *cc, cmp_df);
        r.kept_cols = maxcols;
    }
    if (r.kept_cols == 0) {
        rc = fn_seterr(eb, FN_ELIMIT, "cfilter train: no feature columns fit (rows %zu)", r.train_rows);
        goto fail;
    }
    memset(colmap, 0xff, (size_t)o->buckets * sizeof *colmap);
    for (size_t k = 0; k < r.kept_cols; k++)
        colmap[cc[k].bucket] = (int32_t)k;
    kcols = malloc(r.kept_cols * sizeof *kcols);
    kw = malloc(r.kept_cols * sizeof *kw);
    vs = malloc((n ? n : 1) * sizeof *vs);
    vy = malloc((n ? n : 1) * sizeof *vy);
    if (!kcols || !kw || !vs || !vy) goto oom;
    size_t nk = 0;
    for (uint32_t b = 0; b < o->buckets; b++)
        if (colmap[b] >= 0) kcols[nk++] = b;
    double bias;
    for (int f = 0; f < CFILTER_FOLDS; f++) {
        for (size_t i = 0; i < n; i++) use[i] = fold[i] != f;
        if ((rc = fit(docs, n, rows, rn, use, colmap, r.kept_cols, o->buckets, o->C, kw, &bias, eb))) goto fail;
        if ((rc = cfilter_model_build(o->buckets, bias, 0.5, kcols, kw, nk, &fm, eb))) goto fail;
        for (size_t i = 0; i < n; i++)
            if (fold[i] == f) vs[i] = cfilter_score_feats(fm, rows[i], rn[i]);
        cfilter_model_free(fm);
        fm = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        use[i] = 1;
        vy[i] = docs[i].positive != 0;
    }
    if ((rc = fit(docs, n, rows, rn, use, colmap, r.kept_cols, o->buckets, o->C, kw, &bias, eb))) goto fail;
    if ((rc = cfilter_model_build(o->buckets, bias, 0.5, kcols, kw, nk, out, eb))) goto fail;
    (*out)->threshold = cfilter_pick_threshold(vs, vy, n, o->target_precision, &r.target_met);
    (*out)->strict = cfilter_pick_strict(vs, vy, n, o->strict_recall);
    if ((*out)->strict > (*out)->threshold) (*out)->strict = (*out)->threshold;
    double f1;
    cfilter_prf(vs, vy, n, (*out)->threshold, &r.valid_precision, &r.valid_recall, &f1);
    cfilter_prf(vs, vy, n, (*out)->strict, &r.strict_precision, &r.strict_recall, &f1);
    r.seconds = now_s() - t0;
    rc = 0;
    goto fail;
oom:
    rc = fn_seterr(eb, -ENOMEM, "cfilter train: out of memory");
fail:
    if (rc) {
        cfilter_model_free(*out);
        *out = NULL;
    }
    if (rep) *rep = r;
    cfilter_model_free(fm);
    for (size_t i = 0; rows && i < n; i++)
        free(rows[i]);
    free(rows);
    free(rn);
    free(fold);
    free(use);
    free(buf);
    free(df);
    free(colmap);
    free(cc);
    free(kcols);
    free(kw);
    free(vs);
    free(vy);
    return rc;
}

/* ---- metrics ---- */

typedef struct sy {
    double s;
    int y;
} sy;

static int cmp_desc(const void *a, const void *b)
{
    const sy *x = a, *y = b;
    return (x->s < y->s) - (x->s > y->s);
}

static sy *sorted_desc(const double *s, const int *y, size_t n)
{
    sy *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < n; i++)
        v[i] = (sy){ s[i], y[i] != 0 };
    qsort(v, n, sizeof *v, cmp_desc);
    return v;
}

double cfilter_pick_threshold(const double *s, const int *y, size_t n, double target, int *met)
{
    *met = 0;
    sy *v = sorted_desc(s, y, n);
    if (!v || n == 0) {
        free(v);
        return 0.5;
    }
    size_t tp = 0, fp = 0;
    double best = v[0].s, bestp = -1, reach = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j].s == v[i].s) {
            tp += (size_t)v[j].y;
            fp += (size_t)!v[j].y;
            j++;
        }
        double p = (double)tp / (double)(tp + fp);
        if (p >= target) {
            *met = 1;
            reach = v[i].s;
        }
        if (p >= bestp) {
            bestp = p;
            best = v[i].s;
        }
        i = j;
    }
    free(v);
    return *met ? reach : best;
}

double cfilter_pick_strict(const double *s, const int *y, size_t n, double recall)
{
    sy *v = sorted_desc(s, y, n);
    if (!v || n == 0) {
        free(v);
        return 0;
    }
    size_t npos = 0, tp = 0;
    for (size_t i = 0; i < n; i++)
        npos += (size_t)v[i].y;
    double t = v[n - 1].s;        /* the lowest score: recall 1 */
    for (size_t i = 0; npos && i < n;) {
        size_t j = i;
        while (j < n && v[j].s == v[i].s)
            tp += (size_t)v[j++].y;
        if ((double)tp / (double)npos >= recall) {
            t = v[i].s;
            break;
        }
        i = j;
    }
    free(v);
    return t;
}

void cfilter_prf(const double *s, const int *y, size_t n, double t, double *p, double *r, double *f1)
{
    size_t tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < n; i++) {
        int pred = s[i] >= t;
        tp += pred && y[i];
        fp += pred && !y[i];
        fn += !pred && y[i];
    }
    *p = tp + fp ? (double)tp / (double)(tp + fp) : 0;
    *r = tp + fn ? (double)tp / (double)(tp + fn) : 0;
    *f1 = *p + *r > 0 ? 2 * *p * *r / (*p + *r) : 0;
}

double cfilter_auc(const double *s, const int *y, size_t n)
{
    sy *v = sorted_desc(s, y, n);
    if (!v) return 0.5;
    /* ascending ranks: position from the end; ties share their average rank */
    double rsum = 0;
    size_t npos = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i, pos = 0;
        while (j < n && v[j].s == v[i].s)
            pos += (size_t)v[j++].y;
        /* descending positions i..j-1 are ascending ranks n-j+1 .. n-i */
        double avg = ((double)(n - j + 1) + (double)(n - i)) / 2.0;
        rsum += avg * (double)pos;
        npos += pos;
        i = j;
    }
    free(v);
    size_t nneg = n - npos;
    if (!npos || !nneg) return 0.5;
    return (rsum - (double)npos * ((double)npos + 1) / 2.0) / ((double)npos * (double)nneg);
}
