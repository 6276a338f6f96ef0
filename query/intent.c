/* intent.c - query intent: the model, its file, and prediction (intent.h).
 *
 * Contract: a model is built (intent_model_build, by ops/ops_intent.c from
 * rank/'s logistic regressions) or loaded, then read-only. Weights are held
 * dense, vertical-major (nv x buckets doubles: 4 verticals x 4096 buckets is
 * 128 KiB); the file stores only the non-zero ones.
 *
 * File: see intent_model_save in intent.h. Loading reads the whole file
 * (at most INTENT__MAX_FILE bytes), checks the checksum over every byte
 * before the last line that starts with "checksum ", and only then parses,
 * strictly: every line in its place, every number finite, every column in
 * range, no line left over. A damaged file is FN_ECORRUPT or FN_EFORMAT
 * with the path (and line) in the message.
 *
 * Cost: intent_predict folds and hashes the query's words (one XXH64 per
 * word) and adds nv weights per distinct column: 0.33-0.39 us per query of
 * 1-5 words, 4 verticals, 2^18 buckets (debugoptimized, Xeon VM, 1M calls).
 * Test: tests/query/test_intent.c.
 */
#include "intent.h"
#include "words.h"
#include "fn_io.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <xxhash.h>

#define INTENT__VERSION 1
#define INTENT__MAX_FILE (1024ull << 20)   /* 64 verticals x 2^24 weights would not fit: fine */


struct intent_model {
    size_t nv;
    uint32_t buckets;
    char **names;
    double *prior;      /* nv, sums to 1 */
    double *bias;       /* nv */
    double *w;          /* nv * buckets, vertical-major */
};

/* ---- words (query/words.h) ---- */

size_t intent_next_word(const char *s, size_t n, size_t *pos, char *out, size_t cap)
{
    size_t st, wl;
    while (qw_next_word(s, n, pos, &st, &wl)) {
        size_t fl = qw_fold(s + st, wl, out, cap);
        if (fl) return fl;
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

size_t intent_features(const char *text, size_t len, uint32_t buckets, uint32_t *cols, size_t cap)
{
    if (!text || buckets == 0 || cap == 0) return 0;
    char w[INTENT_MAX_WORD];
    size_t pos = 0, k = 0, wl;
    while (k < cap && (wl = intent_next_word(text, len, &pos, w, sizeof w)) > 0)
        cols[k++] = (uint32_t)(XXH64(w, wl, INTENT_HASH_SEED) % buckets);
    qsort(cols, k, sizeof *cols, cmp_u32);
    size_t d = 0;
    for (size_t i = 0; i < k; i++)
        if (d == 0 || cols[d - 1] != cols[i]) cols[d++] = cols[i];
    return d;
}

/* ---- building ---- */

static int name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > INTENT_MAX_NAME) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

void intent_model_free(intent_model_t *m)
{
    if (!m) return;
    for (size_t v = 0; m->names && v < m->nv; v++)
        free(m->names[v]);
    free(m->names);
    free(m->prior);
    free(m->bias);
    free(m->w);
    free(m);
}

/* An empty model of nv verticals and `buckets` columns, names unset. */
static int model_alloc(size_t nv, uint32_t buckets, intent_model_t **out)
{
    intent_model_t *m = calloc(1, sizeof *m);
    if (!m) return -ENOMEM;
    m->nv = nv;
    m->buckets = buckets;
    m->names = calloc(nv, sizeof *m->names);
    m->prior = calloc(nv, sizeof *m->prior);
    m->bias = calloc(nv, sizeof *m->bias);
    m->w = calloc(nv * (size_t)buckets, sizeof *m->w);
    if (!m->names || !m->prior || !m->bias || !m->w) {
        intent_model_free(m);
        return -ENOMEM;
    }
    *out = m;
    return 0;
}

/* Normalise the prior; FN_EINVAL if it is negative, not finite or sums to 0. */
static int prior_normalise(double *p, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(p[i]) || p[i] < 0) return FN_EINVAL;
        s += p[i];
    }
    if (!(s > 0) || !isfinite(s)) return FN_EINVAL;
    for (size_t i = 0; i < n; i++)
        p[i] /= s;
    return 0;
}

int intent_model_build(const char *const *names, size_t nv, uint32_t buckets, const double *prior,
                       const double *bias, const double *weights, intent_model_t **out,
                       fn_errbuf *eb)
{
    *out = NULL;
    if (nv == 0 || nv > INTENT_MAX_VERTICALS)
        return fn_seterr(eb, FN_EINVAL, "intent: %zu verticals (1..%d)", nv, INTENT_MAX_VERTICALS);
    if (buckets == 0 || buckets > INTENT_MAX_BUCKETS)
        return fn_seterr(eb, FN_EINVAL, "intent: %" PRIu32 " buckets (1..%u)", buckets, INTENT_MAX_BUCKETS);
    for (size_t v = 0; v < nv; v++) {
        if (!name_ok(names[v]))
            return fn_seterr(eb, FN_EINVAL, "intent: bad vertical name \"%s\"", names[v] ? names[v] : "");
        for (size_t u = 0; u < v; u++)
            if (strcmp(names[u], names[v]) == 0)
                return fn_seterr(eb, FN_EINVAL, "intent: vertical \"%s\" twice", names[v]);
        if (!isfinite(bias[v]))
            return fn_seterr(eb, FN_EINVAL, "intent: vertical %s: bias not finite", names[v]);
    }
    for (size_t i = 0; i < nv * (size_t)buckets; i++)
        if (!isfinite(weights[i]))
            return fn_seterr(eb, FN_EINVAL, "intent: weight %zu not finite", i);
    intent_model_t *m;
    int rc = model_alloc(nv, buckets, &m);
    if (rc) return fn_seterr(eb, rc, "intent: out of memory");
    for (size_t v = 0; v < nv; v++)
        if (!(m->names[v] = strdup(names[v]))) {
            intent_model_free(m);
            return fn_seterr(eb, -ENOMEM, "intent: out of memory");
        }
    memcpy(m->prior, prior, nv * sizeof *prior);
    memcpy(m->bias, bias, nv * sizeof *bias);
    memcpy(m->w, weights, nv * (size_t)buckets * sizeof *weights);
    if (prior_normalise(m->prior, nv)) {
        intent_model_free(m);
        return fn_seterr(eb, FN_EINVAL, "intent: the prior must be finite, >= 0 and not all 0");
    }
    *out = m;
    return 0;
}

/* ---- using ---- */

void intent_model_verticals(const intent_model_t *m, const char *const **names, size_t *n)
{
    *names = (const char *const *)m->names;
    *n = m->nv;
}

uint32_t intent_model_buckets(const intent_model_t *m) { return m->buckets; }
const double *intent_model_prior(const intent_model_t *m) { return m->prior; }
double intent_model_bias(const intent_model_t *m, size_t v) { return v < m->nv ? m->bias[v] : 0.0; }

double intent_model_weight(const intent_model_t *m, size_t v, uint32_t c)
{
    return v < m->nv && c < m->buckets ? m->w[v * m->buckets + c] : 0.0;
}

static double sigmoid(double x)
{
    return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

int intent_predict(const intent_model_t *m, const char *text, size_t len, double *scores, size_t n)
{
    if (!m || n != m->nv) return FN_EINVAL;
    uint32_t cols[INTENT_MAX_COLS];
    size_t k = intent_features(text, text ? len : 0, m->buckets, cols, INTENT_MAX_COLS);
    if (k == 0) {
        memcpy(scores, m->prior, n * sizeof *scores);
    } else {
        double s = 0;
        for (size_t v = 0; v < n; v++) {
            const double *w = m->w + v * m->buckets;
            double z = m->bias[v];
            for (size_t i = 0; i < k; i++)
                z += w[cols[i]];
            scores[v] = sigmoid(z);
            s += scores[v];
        }
        for (size_t v = 0; v < n; v++)
            scores[v] = s > 0 ? scores[v] / s : 1.0 / (double)n;
    }
    int best = 0;
    for (size_t v = 1; v < n; v++)
        if (scores[v] > scores[best]) best = (int)v;
    return best;
}

/* ---- files ---- */

int intent_model_save(const intent_model_t *m, const char *path, fn_errbuf *eb)
{
    fn_sbuf b = { 0 };
    int rc = fn_sbuf_printf(&b, "funnel-intent %d\nbuckets %" PRIu32 "\nverticals %zu\n", INTENT__VERSION,
                            m->buckets, m->nv);
    for (size_t v = 0; !rc && v < m->nv; v++) {
        const double *w = m->w + v * m->buckets;
        size_t nz = 0;
        for (uint32_t c = 0; c < m->buckets; c++)
            nz += w[c] != 0.0;
        rc = fn_sbuf_printf(&b, "vertical %s prior %.17g bias %.17g weights %zu\n", m->names[v], m->prior[v],
                            m->bias[v], nz);
        for (uint32_t c = 0; !rc && c < m->buckets; c++)
            if (w[c] != 0.0) rc = fn_sbuf_printf(&b, "w %" PRIu32 " %.17g\n", c, w[c]);
    }
    if (rc) {
        free(b.p);
        return fn_seterr(eb, rc, "%s: out of memory", path);
    }
    return fn_write_checksummed(path, &b, eb);
}

/* The parser's cursor: one line at a time of a NUL-terminated buffer. */
typedef struct lp {
    char *p, *end;
    size_t lineno;
    const char *path;
    fn_errbuf *eb;
} lp;

/* The next line (NUL-terminated in place), or NULL at the end. */
static char *lp_line(lp *l)
{
    if (l->p >= l->end) return NULL;
    char *s = l->p, *nl = memchr(s, '\n', (size_t)(l->end - s));
    if (nl) {
        *nl = 0;
        l->p = nl + 1;
    } else {
        l->p = l->end;
    }
    l->lineno++;
    return s;
}

static int bad(lp *l, const char *what)
{
    return fn_seterr(l->eb, FN_EFORMAT, "%s:%zu: %s", l->path, l->lineno, what);
}

/* An unsigned decimal of at most max, then a space or the end of the string. */
static int parse_uint(char **s, uint64_t max, uint64_t *out)
{
    char *p = *s;
    if (*p < '0' || *p > '9') return -1;
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > max) return -1;
        p++;
    }
    if ((*p != ' ' && *p != 0) || (*p == ' ' && p[1] == 0)) return -1;   /* no trailing blank */
    *out = v;
    *s = *p ? p + 1 : p;
    return 0;
}

/* A finite double, then a space or the end of the string. */
static int parse_double(char **s, double *out)
{
    char *p = *s, *end;
    if (!strchr("-+.0123456789", *p) || *p == 0) return -1;    /* strtod would skip blanks */
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || (*end != ' ' && *end != 0) || (*end == ' ' && end[1] == 0) || !isfinite(v)) return -1;
    *out = v;
    *s = *end ? end + 1 : end;
    return 0;
}

/* The literal word kw and one space. */
static int expect(char **s, const char *kw)
{
    size_t n = strlen(kw);
    if (strncmp(*s, kw, n) != 0 || (*s)[n] != ' ') return -1;
    *s += n + 1;
    return 0;
}

static int parse_body(lp *l, intent_model_t **out)
{
    char *s = lp_line(l);
    uint64_t ver, buckets, nv;
    if (!s || expect(&s, "funnel-intent") || parse_uint(&s, 1000000, &ver) || *s)
        return bad(l, "not a funnel intent model (no \"funnel-intent VERSION\" line)");
    if (ver != INTENT__VERSION)
        return fn_seterr(l->eb, FN_EVERSION, "%s: intent model version %llu (this build reads %d)", l->path,
                         (unsigned long long)ver, INTENT__VERSION);
    s = lp_line(l);
    if (!s || expect(&s, "buckets") || parse_uint(&s, INTENT_MAX_BUCKETS, &buckets) || *s || buckets == 0)
        return bad(l, "expected \"buckets N\" (1..2^24)");
    s = lp_line(l);
    if (!s || expect(&s, "verticals") || parse_uint(&s, INTENT_MAX_VERTICALS, &nv) || *s || nv == 0)
        return bad(l, "expected \"verticals N\" (1..64)");
    intent_model_t *m;
    if (model_alloc(nv, (uint32_t)buckets, &m))
        return fn_seterr(l->eb, -ENOMEM, "%s: out of memory", l->path);
    int rc = 0;
    for (size_t v = 0; v < nv && !rc; v++) {
        s = lp_line(l);
        char *name;
        uint64_t nw;
        if (!s || expect(&s, "vertical")) {
            rc = bad(l, "expected \"vertical NAME prior P bias B weights N\"");
            break;
        }
        name = s;
        char *sp = strchr(s, ' ');
        if (!sp) {
            rc = bad(l, "expected \"vertical NAME prior P bias B weights N\"");
            break;
        }
        *sp = 0;
        s = sp + 1;
        if (!name_ok(name)) {
            rc = bad(l, "bad vertical name");
            break;
        }
        for (size_t u = 0; u < v && !rc; u++)
            if (strcmp(m->names[u], name) == 0) rc = bad(l, "vertical named twice");
        if (rc) break;
        if (expect(&s, "prior") || parse_double(&s, &m->prior[v]) || m->prior[v] < 0 || expect(&s, "bias") ||
            parse_double(&s, &m->bias[v]) || expect(&s, "weights") || parse_uint(&s, buckets, &nw) || *s) {
            rc = bad(l, "expected \"vertical NAME prior P bias B weights N\" (N <= buckets)");
            break;
        }
        if (!(m->names[v] = strdup(name))) {
            rc = fn_seterr(l->eb, -ENOMEM, "%s: out of memory", l->path);
            break;
        }
        double *w = m->w + v * buckets;
        int64_t last = -1;
        for (uint64_t i = 0; i < nw; i++) {
            uint64_t c;
            double x;
            s = lp_line(l);
            if (!s || expect(&s, "w") || parse_uint(&s, buckets - 1, &c) || parse_double(&s, &x) || *s) {
                rc = bad(l, "expected \"w COLUMN WEIGHT\" (column < buckets)");
                break;
            }
            if ((int64_t)c <= last) {
                rc = bad(l, "weight columns out of order");
                break;
            }
            last = (int64_t)c;
            w[c] = x;
        }
    }
    if (!rc && (s = lp_line(l)) != NULL)
        rc = bad(l, "unexpected line after the last vertical");
    if (!rc && prior_normalise(m->prior, m->nv))
        rc = bad(l, "the priors do not sum above 0");
    if (rc) {
        intent_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int intent_model_load(const char *path, intent_model_t **out, fn_errbuf *eb)
{
    *out = NULL;
    char *buf;
    size_t n;
    int rc = fn_read_checksummed(path, INTENT__MAX_FILE, "an intent model", &buf, &n, eb);
    if (rc) return rc;
    lp l = { .p = buf, .end = buf + n, .lineno = 0, .path = path, .eb = eb };
    rc = parse_body(&l, out);
    free(buf);
    return rc;
}

int intent_model_parse(const char *data, size_t len, const char *name, intent_model_t **out, fn_errbuf *eb)
{
    *out = NULL;
    if (len > INTENT__MAX_FILE) return fn_seterr(eb, FN_EFORMAT, "%s: too large for an intent model", name);
    char *buf = malloc(len + 1);
    if (!buf) return fn_seterr(eb, -ENOMEM, "%s: out of memory", name);
    memcpy(buf, data, len);
    buf[len] = 0;
    size_t n;
    int rc = fn_check_checksummed(buf, len, name, "an intent model", &n, eb);
    if (rc == 0) {
        lp l = { .p = buf, .end = buf + n, .lineno = 0, .path = name, .eb = eb };
        rc = parse_body(&l, out);
    }
    free(buf);
    return rc;
}
