/* ops_engage.c - the offline engagement tools (docs/engagement.md):
 *
 *   funnel clicks simulate   simulated users click on logged search pages,
 *                            from graded judgments (cascade or position-based)
 *   funnel traindata         impressions + clicks -> SVMlight/LETOR rows
 *                            (pointwise labels with position-bias correction,
 *                            or pairwise "clicked over skipped-above")
 *
 * Both read impressions (one shown page a line) and clicks as JSON Lines;
 * every bad line is "FILE:LINE: reason", and stops the command or, with
 * --on-error skip, is reported, counted and left out.
 */
#include "ops.h"
#include "fn_rand.h"
#include "fn_io.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ======================================================================
 * small helpers: string arena, string -> index map, growable arrays
 * ====================================================================== */

typedef struct arena_blk {
    struct arena_blk *next;
    size_t used, cap;
    char data[];
} arena_blk;

typedef struct arena {
    arena_blk *head;
} arena;

static char *arena_dup(arena *a, const char *s, size_t n)
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

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Keys are NUL-terminated strings owned by the caller (an arena). */
typedef struct strmap {
    const char **keys;
    size_t *vals;
    size_t mask, count;
} strmap;

#define NOT_FOUND SIZE_MAX

static size_t strmap_get(const strmap *m, const char *s, size_t n)
{
    if (!m->keys) return NOT_FOUND;
    for (size_t i = fnv1a(s, n) & m->mask;; i = (i + 1) & m->mask) {
        const char *k = m->keys[i];
        if (!k) return NOT_FOUND;
        if (strncmp(k, s, n) == 0 && k[n] == '\0') return m->vals[i];
    }
}

static int strmap_put(strmap *m, const char *key, size_t val)
{
    if ((m->count + 1) * 2 > (m->keys ? m->mask + 1 : 0)) {
        size_t ncap = m->keys ? (m->mask + 1) * 2 : 64;
        const char **nk = calloc(ncap, sizeof *nk);
        size_t *nv = calloc(ncap, sizeof *nv);
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return -ENOMEM;
        }
        for (size_t i = 0; m->keys && i <= m->mask; i++) {
            if (!m->keys[i]) continue;
            size_t j = fnv1a(m->keys[i], strlen(m->keys[i])) & (ncap - 1);
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
    size_t j = fnv1a(key, strlen(key)) & m->mask;
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

#define GROW(arr, cap, need) grow((void **)&(arr), &(cap), (need), sizeof *(arr))

/* A growable text buffer (composite keys, request ids of sessions). */
typedef struct sbuf {
    char *s;
    size_t n, cap;
} sbuf;

static int sbuf_set(sbuf *b, const char *a, size_t na, const char *sep, const char *c, size_t nc)
{
    size_t ns = sep ? strlen(sep) : 0, need = na + ns + nc + 1;
    if (GROW(b->s, b->cap, need)) return -ENOMEM;
    memcpy(b->s, a, na);
    if (ns) memcpy(b->s + na, sep, ns);
    if (nc) memcpy(b->s + na + ns, c, nc);
    b->n = na + ns + nc;
    b->s[b->n] = '\0';
    return 0;
}

/* "qid\x1fdocid": the key of a (query, document) pair. */
static int pair_key(sbuf *b, const char *qid, size_t qlen, const char *doc)
{
    return sbuf_set(b, qid, qlen, "\x1f", doc, strlen(doc));
}

/* Write s as a JSON string: quotes, backslashes and control characters
 * escaped, other bytes (UTF-8) as they are. */
static void put_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\t': fputs("\\t", f); break;
        case '\r': fputs("\\r", f); break;
        default:
            if (*p < 0x20) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
        }
    }
    fputc('"', f);
}

static int has_ctrl(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 1;
    return 0;
}

/* A feature name as the trainer's "# features:" header takes it:
 * [A-Za-z0-9_.]+ (rank/dataset.c). */
static int feature_name_ok(const char *s, size_t n)
{
    if (n == 0 || strlen(s) != n) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* "FILE:LINE: reason" into eb, FN_EPARSE. */
static int bad(fn_errbuf *eb, const char *path, size_t lineno, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(fn_errbuf *eb, const char *path, size_t lineno, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return fn_seterr(eb, FN_EPARSE, "%s:%zu: %s", path, lineno, why);
}

/* A bad line: stop (return rc) or report, count and skip (return 0). */
static int bad_line(ops_engage_input *in, fn_errbuf *eb, int rc)
{
    if (rc != FN_EPARSE || !in || !in->skip_bad) return rc;
    in->skipped++;
    if (in->warn) in->warn(in->ud, eb ? eb->msg : "bad line");
    if (eb) eb->msg[0] = '\0';
    return 0;
}

static int is_blank_line(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\v' && s[i] != '\f') return 0;
    return 1;
}

/* ======================================================================
 * random numbers: splitmix64 seeds xoshiro256**
 * ====================================================================== */

typedef struct xoshiro {
    uint64_t s[4];
} xoshiro;

static uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t xo_next(xoshiro *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

static void xo_seed(xoshiro *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = fn_splitmix64(&x);
}

/* uniform in [0, 1) */
static double xo_double(xoshiro *r)
{
    return (double)(xo_next(r) >> 11) * 0x1.0p-53;
}

/* standard normal (Box-Muller, one of the pair) */
static double xo_normal(xoshiro *r)
{
    double u1 = 1.0 - xo_double(r), u2 = xo_double(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t ops_sim_seed(uint64_t seed, const char *request_id)
{
    uint64_t x = seed;
    return fn_splitmix64(&x) ^ fnv1a(request_id, strlen(request_id));
}

/* ======================================================================
 * user models
 * ====================================================================== */

void ops_sim_defaults(ops_sim_params *p)
{
    /* "navigational" users of Hofmann et al. (2013), levels 0..4 */
    static const double click[OPS_SIM_LEVELS] = {0.05, 0.3, 0.5, 0.7, 0.95};
    static const double stop[OPS_SIM_LEVELS] = {0.2, 0.3, 0.5, 0.7, 0.9};
    static const double dwell[OPS_SIM_LEVELS] = {4, 8, 15, 25, 40};
    memset(p, 0, sizeof *p);
    p->model = OPS_SIM_CASCADE;
    memcpy(p->click, click, sizeof click);
    memcpy(p->stop, stop, sizeof stop);
    memcpy(p->dwell_median, dwell, sizeof dwell);
    p->eta = 1.0;
    p->dwell_sigma = 0.8;
    p->scan_s = 1.0;
}

unsigned ops_sim_level(long grade, long max_grade)
{
    if (max_grade < 1) max_grade = 1;
    if (grade <= 0) return 0;
    if (grade >= max_grade) return OPS_SIM_LEVELS - 1;
    long l = lround((double)(OPS_SIM_LEVELS - 1) * (double)grade / (double)max_grade);
    return l < 0 ? 0 : l > OPS_SIM_LEVELS - 1 ? OPS_SIM_LEVELS - 1 : (unsigned)l;
}

size_t ops_sim_session(const ops_sim_params *p, const unsigned char *levels,
                       const uint32_t *positions, size_t n, uint64_t seed, ops_sim_click *clicks)
{
    xoshiro r;
    xo_seed(&r, seed);
    size_t nc = 0;
    double t = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned lv = levels[i] < OPS_SIM_LEVELS ? levels[i] : OPS_SIM_LEVELS - 1;
        int click;
        t += p->scan_s;
        if (p->model == OPS_SIM_PBM) {
            double exam = pow((double)(positions[i] ? positions[i] : 1), -p->eta);
            double ue = xo_double(&r), uc = xo_double(&r);
            click = ue < exam && uc < p->click[lv];
        } else {
            click = xo_double(&r) < p->click[lv];
        }
        if (!click) continue;
        double dwell = p->dwell_median[lv] * exp(p->dwell_sigma * xo_normal(&r));
        dwell = round(dwell * 10.0) / 10.0;
        clicks[nc++] = (ops_sim_click){.hit = i, .dwell = dwell, .offset_s = t};
        t += dwell;
        if (p->model == OPS_SIM_CASCADE && xo_double(&r) < p->stop[lv]) break;
    }
    return nc;
}

/* ======================================================================
 * graded judgments (TREC qrels)
 * ====================================================================== */

struct ops_grades {
    arena strings;
    strmap pairs;           /* "qid\x1fdocid" -> index into grade */
    strmap queries;         /* qid -> 1 */
    long *grade;
    size_t n, cap;
    long max;
    sbuf key;
};

typedef struct grades_ctx {
    ops_grades *g;
    const char *path;
    fn_errbuf *eb;
} grades_ctx;

static size_t split_ws(char *line, char **f, size_t max)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\v' || *p == '\f') p++;
        if (!*p) break;
        char *s = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\v' && *p != '\f') p++;
        if (n < max) f[n] = s;
        n++;
        if (*p) *p++ = '\0';
    }
    return n;
}

static int grades_line(void *ud, char *line, size_t len, size_t lineno)
{
    grades_ctx *c = ud;
    ops_grades *g = c->g;
    (void)len;
    char *fl[4];
    size_t nf = split_ws(line, fl, 4);
    if (nf == 0) return 0;
    if (nf != 4)
        return bad(c->eb, c->path, lineno, "expected 4 fields (qid iter docid grade), got %zu", nf);
    char *end;
    errno = 0;
    long v = strtol(fl[3], &end, 10);
    if (*end || errno) return bad(c->eb, c->path, lineno, "grade \"%.40s\" is not an integer", fl[3]);
    if (pair_key(&g->key, fl[0], strlen(fl[0]), fl[2])) return -ENOMEM;
    size_t i = strmap_get(&g->pairs, g->key.s, g->key.n);
    if (i == NOT_FOUND) {
        const char *k = arena_dup(&g->strings, g->key.s, g->key.n);
        if (!k || GROW(g->grade, g->cap, g->n + 1) || strmap_put(&g->pairs, k, g->n)) return -ENOMEM;
        i = g->n++;
    }
    g->grade[i] = v;            /* a repeated pair keeps the last grade, as eval.h */
    if (v > g->max) g->max = v;
    if (strmap_get(&g->queries, fl[0], strlen(fl[0])) == NOT_FOUND) {
        const char *k = arena_dup(&g->strings, fl[0], strlen(fl[0]));
        if (!k || strmap_put(&g->queries, k, 1)) return -ENOMEM;
    }
    return 0;
}

int ops_grades_load(const char *path, ops_grades **out, fn_errbuf *eb)
{
    *out = NULL;
    ops_grades *g = calloc(1, sizeof *g);
    if (!g) return -ENOMEM;
    grades_ctx c = {.g = g, .path = path, .eb = eb};
    int rc = fn_read_lines(path, grades_line, &c, eb);
    if (rc) {
        ops_grades_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

long ops_grades_get(const ops_grades *g, const char *qid, size_t qidlen, const char *docid)
{
    char buf[512];
    size_t dl = strlen(docid), n = qidlen + 1 + dl;
    char *k = n < sizeof buf ? buf : malloc(n + 1);
    if (!k) return 0;
    memcpy(k, qid, qidlen);
    k[qidlen] = '\x1f';
    memcpy(k + qidlen + 1, docid, dl + 1);
    size_t i = strmap_get(&g->pairs, k, n);
    if (k != buf) free(k);
    return i == NOT_FOUND ? 0 : g->grade[i];
}

int ops_grades_has_query(const ops_grades *g, const char *qid, size_t qidlen)
{
    return strmap_get(&g->queries, qid, qidlen) != NOT_FOUND;
}

long ops_grades_max(const ops_grades *g)
{
    return g->max > 1 ? g->max : 1;
}

void ops_grades_free(ops_grades *g)
{
    if (!g) return;
    strmap_free(&g->pairs);
    strmap_free(&g->queries);
    arena_free(&g->strings);
    free(g->grade);
    free(g->key.s);
    free(g);
}

/* ======================================================================
 * impression and click lines
 * ====================================================================== */

/* A checked impression line; pointers borrow from root. */
typedef struct imp_view {
    json_t *root;
    const char *rid;
    size_t ridlen, qidlen;      /* the qid is rid[0..qidlen) */
    int has_time;
    double time;
    json_t *features;           /* NULL or a non-empty array of names */
    size_t nfeat;
    json_t *hits;
    size_t nhits;
    uint32_t first_pos;
} imp_view;

typedef struct id_ref {
    const char *id;
    size_t i;
} id_ref;

static int cmp_id_ref(const void *a, const void *b)
{
    const id_ref *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

typedef struct scratch {
    id_ref *ids;
    size_t cap;
} scratch;

static int load_json_line(const char *path, size_t lineno, const char *line, size_t len,
                          json_t **root, fn_errbuf *eb)
{
    json_error_t je;
    *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!*root) return bad(eb, path, lineno, "invalid JSON: %s (column %d)", je.text, je.column);
    if (!json_is_object(*root)) {
        json_decref(*root);
        *root = NULL;
        return bad(eb, path, lineno, "not a JSON object");
    }
    return 0;
}

/* A required non-empty string without control characters. */
static int get_str(json_t *o, const char *key, const char *where, const char **s, size_t *n,
                   const char *path, size_t lineno, fn_errbuf *eb)
{
    json_t *v = json_object_get(o, key);
    if (!v) return bad(eb, path, lineno, "%smissing \"%s\"", where, key);
    if (!json_is_string(v)) return bad(eb, path, lineno, "%s\"%s\" must be a string", where, key);
    *s = json_string_value(v);
    *n = json_string_length(v);
    if (*n == 0) return bad(eb, path, lineno, "%s\"%s\" is empty", where, key);
    if (has_ctrl(*s, *n) || strlen(*s) != *n)
        return bad(eb, path, lineno, "%s\"%s\" contains a control character", where, key);
    return 0;
}

/* A required integer position 1..OPS_ENGAGE_MAX_POSITION. */
static int get_pos(json_t *o, const char *where, uint32_t *pos, const char *path, size_t lineno,
                   fn_errbuf *eb)
{
    json_t *v = json_object_get(o, "position");
    if (!v) return bad(eb, path, lineno, "%smissing \"position\"", where);
    if (!json_is_integer(v)) return bad(eb, path, lineno, "%s\"position\" must be an integer", where);
    json_int_t p = json_integer_value(v);
    if (p < 1 || p > (json_int_t)OPS_ENGAGE_MAX_POSITION)
        return bad(eb, path, lineno, "%s\"position\" %lld is not in 1..%u", where, (long long)p,
                   OPS_ENGAGE_MAX_POSITION);
    *pos = (uint32_t)p;
    return 0;
}

/* Optional number (absent or null: *has = 0). */
static int get_opt_num(json_t *o, const char *key, int *has, double *v, const char *path,
                       size_t lineno, fn_errbuf *eb)
{
    json_t *x = json_object_get(o, key);
    *has = 0;
    if (!x || json_is_null(x)) return 0;
    if (!json_is_number(x)) return bad(eb, path, lineno, "\"%s\" must be a number", key);
    *has = 1;
    *v = json_number_value(x);
    return 0;
}

static int check_impression(const char *path, size_t lineno, imp_view *v, scratch *sc, fn_errbuf *eb)
{
    json_t *o = v->root;
    int rc;
    if ((rc = get_str(o, "request_id", "", &v->rid, &v->ridlen, path, lineno, eb))) return rc;
    const char *slash = memchr(v->rid, '/', v->ridlen);
    v->qidlen = slash ? (size_t)(slash - v->rid) : v->ridlen;
    if (v->qidlen == 0)
        return bad(eb, path, lineno, "\"request_id\" \"%.60s\" has an empty query id (the part before the first '/')",
                   v->rid);
    if ((rc = get_opt_num(o, "time", &v->has_time, &v->time, path, lineno, eb))) return rc;
    static const char *const opt_strings[] = {"query", "user"};
    for (size_t i = 0; i < 2; i++) {
        json_t *x = json_object_get(o, opt_strings[i]);
        if (x && !json_is_null(x) && !json_is_string(x))
            return bad(eb, path, lineno, "\"%s\" must be a string", opt_strings[i]);
    }
    /* features: absent, null or [] = no vectors */
    v->features = NULL;
    v->nfeat = 0;
    json_t *fs = json_object_get(o, "features");
    if (fs && !json_is_null(fs)) {
        if (!json_is_array(fs)) return bad(eb, path, lineno, "\"features\" must be an array of names");
        size_t nf = json_array_size(fs);
        for (size_t i = 0; i < nf; i++) {
            json_t *x = json_array_get(fs, i);
            if (!json_is_string(x))
                return bad(eb, path, lineno, "\"features\"[%zu] must be a string", i);
            if (!feature_name_ok(json_string_value(x), json_string_length(x)))
                return bad(eb, path, lineno, "\"features\"[%zu] \"%.60s\" is not a feature name ([A-Za-z0-9_.]+)",
                           i, json_string_value(x));
            for (size_t j = 0; j < i; j++)
                if (strcmp(json_string_value(json_array_get(fs, j)), json_string_value(x)) == 0)
                    return bad(eb, path, lineno, "\"features\" names \"%.60s\" twice", json_string_value(x));
        }
        if (nf) {
            v->features = fs;
            v->nfeat = nf;
        }
    }
    json_t *hits = json_object_get(o, "hits");
    if (!hits) return bad(eb, path, lineno, "missing \"hits\"");
    if (!json_is_array(hits)) return bad(eb, path, lineno, "\"hits\" must be an array");
    v->hits = hits;
    v->nhits = json_array_size(hits);
    if (GROW(sc->ids, sc->cap, v->nhits + 1)) return -ENOMEM;
    for (size_t i = 0; i < v->nhits; i++) {
        json_t *h = json_array_get(hits, i);
        char where[48];
        snprintf(where, sizeof where, "hits[%zu]: ", i);
        if (!json_is_object(h)) return bad(eb, path, lineno, "hits[%zu] is not an object", i);
        const char *id;
        size_t idlen;
        uint32_t pos;
        if ((rc = get_str(h, "id", where, &id, &idlen, path, lineno, eb))) return rc;
        if ((rc = get_pos(h, where, &pos, path, lineno, eb))) return rc;
        if (i == 0) v->first_pos = pos;
        else if (pos != v->first_pos + i)
            return bad(eb, path, lineno,
                       "hits[%zu]: position %u after %u (positions must be contiguous, top first)", i,
                       pos, v->first_pos + (uint32_t)i - 1);
        json_t *score = json_object_get(h, "score");
        if (score && !json_is_null(score) && !json_is_number(score))
            return bad(eb, path, lineno, "hits[%zu]: \"score\" must be a number", i);
        json_t *f = json_object_get(h, "f");
        size_t nfv = 0;
        if (f && !json_is_null(f)) {
            if (!json_is_array(f)) return bad(eb, path, lineno, "hits[%zu]: \"f\" must be an array", i);
            nfv = json_array_size(f);
            for (size_t k = 0; k < nfv; k++) {
                json_t *x = json_array_get(f, k);
                if (!json_is_number(x) && !json_is_null(x))
                    return bad(eb, path, lineno, "hits[%zu]: \"f\"[%zu] must be a number or null", i, k);
            }
        }
        if (nfv != v->nfeat)
            return bad(eb, path, lineno, "hits[%zu]: \"f\" has %zu values but \"features\" names %zu", i,
                       nfv, v->nfeat);
        sc->ids[i] = (id_ref){.id = id, .i = i};
    }
    if (v->nhits > 1) {
        qsort(sc->ids, v->nhits, sizeof *sc->ids, cmp_id_ref);
        for (size_t i = 1; i < v->nhits; i++)
            if (strcmp(sc->ids[i - 1].id, sc->ids[i].id) == 0)
                return bad(eb, path, lineno, "hits[%zu]: id \"%.60s\" is shown twice (also hits[%zu])",
                           sc->ids[i].i, sc->ids[i].id, sc->ids[i - 1].i);
    }
    return 0;
}

/* Parse and check one impression line. 0 (v->root owned by the caller), 1
 * for a blank line, FN_EPARSE or -ENOMEM. */
static int parse_impression(const char *path, size_t lineno, const char *line, size_t len,
                            imp_view *v, scratch *sc, fn_errbuf *eb)
{
    memset(v, 0, sizeof *v);
    if (is_blank_line(line, len)) return 1;
    int rc = load_json_line(path, lineno, line, len, &v->root, eb);
    if (rc) return rc;
    if ((rc = check_impression(path, lineno, v, sc, eb))) {
        json_decref(v->root);
        v->root = NULL;
    }
    return rc;
}

static const char *hit_id(const imp_view *v, size_t i)
{
    return json_string_value(json_object_get(json_array_get(v->hits, i), "id"));
}

/* Where a request id was first seen, for "repeats FILE:LINE". */
typedef struct seen_at {
    uint32_t file;
    size_t line;
} seen_at;

static void where_str(char *buf, size_t cap, const char *const *files, uint32_t cur_file,
                      seen_at at)
{
    if (at.file == cur_file) snprintf(buf, cap, "line %zu", at.line);
    else snprintf(buf, cap, "%s:%zu", files[at.file], at.line);
}

/* ======================================================================
 * funnel clicks simulate
 * ====================================================================== */

typedef struct sim_ctx {
    const ops_sim_params *p;
    const ops_grades *g;
    long max_grade;
    uint64_t seed;
    unsigned sessions;
    FILE *clicks, *imps;
    ops_engage_input *in;
    ops_sim_stats *st;
    fn_errbuf *eb;
    const char *const *files;
    uint32_t file;
    arena strings;
    strmap rids;            /* request id -> index into at */
    seen_at *at;
    size_t nat, atcap;
    scratch sc;
    unsigned char *levels;
    uint32_t *positions;
    ops_sim_click *cl;
    size_t hcap;
    sbuf rid;
} sim_ctx;

/* The line with its request_id value replaced by rid (the rest byte for byte);
 * falls back to re-encoding the object when the key is not found verbatim. */
static void write_renamed(FILE *f, const char *line, size_t len, json_t *root, const char *rid)
{
    /* scan the top-level object for the key "request_id" and its string value */
    int depth = 0, in_str = 0, expect_key = 0, after_rid_key = 0;
    size_t key_start = 0;
    for (size_t i = 0; i < len; i++) {
        char c = line[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') {
                in_str = 0;
                if (depth == 1 && expect_key) {
                    if (i - key_start - 1 == 10 && memcmp(line + key_start + 1, "request_id", 10) == 0)
                        after_rid_key = 1;
                    expect_key = 0;
                } else if (depth == 1 && after_rid_key == 2) {
                    fwrite(line, 1, key_start, f);
                    put_json_str(f, rid);
                    fwrite(line + i + 1, 1, len - i - 1, f);
                    fputc('\n', f);
                    return;
                }
            }
            continue;
        }
        switch (c) {
        case '"':
            in_str = 1;
            key_start = i;
            break;
        case '{':
        case '[':
            depth++;
            if (depth == 1 && c == '{') expect_key = 1;
            break;
        case '}':
        case ']': depth--; break;
        case ',':
            if (depth == 1) expect_key = 1, after_rid_key = 0;
            break;
        case ':':
            if (depth == 1 && after_rid_key == 1) after_rid_key = 2;
            break;
        default: break;
        }
    }
    /* not found verbatim (an escaped key): re-encode */
    json_t *copy = json_deep_copy(root);
    if (copy && json_object_set_new(copy, "request_id", json_string(rid)) == 0) {
        char *s = json_dumps(copy, JSON_COMPACT);
        if (s) {
            fputs(s, f);
            fputc('\n', f);
            free(s);
        }
    }
    json_decref(copy);
}

static int sim_line(void *ud, char *line, size_t len, size_t lineno)
{
    sim_ctx *c = ud;
    const char *path = c->files[c->file];
    imp_view v;
    int rc = parse_impression(path, lineno, line, len, &v, &c->sc, c->eb);
    if (rc == 1) return 0;
    if (rc) return bad_line(c->in, c->eb, rc);
    /* a request id may appear once in all the files */
    size_t at = strmap_get(&c->rids, v.rid, v.ridlen);
    if (at != NOT_FOUND) {
        char w[300];
        where_str(w, sizeof w, c->files, c->file, c->at[at]);
        rc = bad(c->eb, path, lineno, "request_id \"%.60s\" repeats %s", v.rid, w);
        json_decref(v.root);
        return bad_line(c->in, c->eb, rc);
    }
    const char *k = arena_dup(&c->strings, v.rid, v.ridlen);
    if (!k || GROW(c->at, c->atcap, c->nat + 1) || strmap_put(&c->rids, k, c->nat)) goto oom;
    c->at[c->nat++] = (seen_at){.file = c->file, .line = lineno};

    if (v.nhits > c->hcap) {
        size_t n = v.nhits;
        unsigned char *l = realloc(c->levels, n);
        if (l) c->levels = l;
        uint32_t *p = realloc(c->positions, n * sizeof *p);
        if (p) c->positions = p;
        ops_sim_click *cl = realloc(c->cl, n * sizeof *cl);
        if (cl) c->cl = cl;
        if (!l || !p || !cl) goto oom;
        c->hcap = n;
    }
    for (size_t i = 0; i < v.nhits; i++) {
        long gr = ops_grades_get(c->g, v.rid, v.qidlen, hit_id(&v, i));
        c->levels[i] = (unsigned char)ops_sim_level(gr, c->max_grade);
        c->positions[i] = v.first_pos + (uint32_t)i;
    }
    c->st->impressions++;
    if (!ops_grades_has_query(c->g, v.rid, v.qidlen)) c->st->unjudged++;
    for (unsigned s = 1; s <= c->sessions; s++) {
        const char *rid = v.rid;
        if (c->sessions > 1) {
            char num[16];
            snprintf(num, sizeof num, "%u", s);
            if (sbuf_set(&c->rid, v.rid, v.ridlen, "/", num, strlen(num))) goto oom;
            rid = c->rid.s;
        }
        if (c->imps) {
            if (c->sessions > 1) write_renamed(c->imps, line, len, v.root, rid);
            else {
                fwrite(line, 1, len, c->imps);
                fputc('\n', c->imps);
            }
        }
        size_t nc = ops_sim_session(c->p, c->levels, c->positions, v.nhits, ops_sim_seed(c->seed, rid), c->cl);
        c->st->sessions++;
        c->st->clicks += nc;
        if (!nc) c->st->silent++;
        for (size_t j = 0; j < nc; j++) {
            const ops_sim_click *ck = &c->cl[j];
            fputs("{\"request_id\":", c->clicks);
            put_json_str(c->clicks, rid);
            if (v.has_time) fprintf(c->clicks, ",\"time\":%.3f", v.time + ck->offset_s);
            fputs(",\"id\":", c->clicks);
            put_json_str(c->clicks, hit_id(&v, ck->hit));
            fprintf(c->clicks, ",\"position\":%u,\"dwell\":%.1f}\n", c->positions[ck->hit], ck->dwell);
        }
    }
    json_decref(v.root);
    return 0;
oom:
    json_decref(v.root);
    return -ENOMEM;
}

int ops_clicks_simulate(const ops_sim_params *p, const ops_grades *g, long max_grade,
                        uint64_t seed, unsigned sessions, const char *const *impressions,
                        size_t nimpressions, FILE *clicks_out, FILE *impressions_out,
                        ops_engage_input *in, ops_sim_stats *st, fn_errbuf *eb)
{
    memset(st, 0, sizeof *st);
    if (sessions == 0 || (sessions > 1 && !impressions_out))
        return fn_seterr(eb, FN_EINVAL, "more than one session per impression needs an impressions output");
    sim_ctx c = {.p = p, .g = g, .max_grade = max_grade > 0 ? max_grade : ops_grades_max(g),
                 .seed = seed, .sessions = sessions, .clicks = clicks_out,
                 .imps = impressions_out, .in = in, .st = st, .eb = eb, .files = impressions};
    int rc = 0;
    for (size_t i = 0; i < nimpressions && rc == 0; i++) {
        c.file = (uint32_t)i;
        rc = fn_read_lines(impressions[i], sim_line, &c, eb);
    }
    arena_free(&c.strings);
    strmap_free(&c.rids);
    free(c.at);
    free(c.sc.ids);
    free(c.levels);
    free(c.positions);
    free(c.cl);
    free(c.rid.s);
    return rc;
}

/* ======================================================================
 * the joined log: impressions + clicks, in memory
 * ====================================================================== */

typedef struct eng_hit {
    const char *id;
    uint32_t pos;
    uint32_t doc;               /* index into lg->docs */
    size_t fofs;                /* into lg->fv, nfeat values of the impression's list; NOT_FOUND = none */
    double dwell;               /* longest dwell of its clicks; NAN = clicked without a dwell */
    uint32_t clicks;            /* click lines joined to it */
} eng_hit;

typedef struct eng_imp {
    const char *rid;
    uint32_t q;                 /* index into lg->qids */
    int32_t fset;               /* index into lg->fsets, -1 = no vectors */
    int has_time;
    double time;
    size_t hit0, nhits;
    size_t seq;                 /* load order */
} eng_imp;

typedef struct eng_doc {
    uint32_t q;
    const char *id;
    uint32_t minpos;
    size_t vimp, vhit;          /* the latest impression with its vector (NOT_FOUND = none) */
} eng_doc;

typedef struct eng_fset {
    size_t n;
    uint32_t *gidx;             /* global feature index of each entry */
    size_t *order;              /* entries sorted by gidx */
} eng_fset;

struct ops_engage_log {
    arena strings;
    const char **files;
    size_t nfiles, filescap;
    eng_imp *imps;
    size_t nimps, impcap;
    eng_hit *hits;
    size_t nhits, hitcap;
    double *fv;
    size_t nfv, fvcap;
    eng_doc *docs;
    size_t ndocs, doccap;
    const char **qids;
    size_t nq, qcap;
    eng_fset *fsets;
    size_t nfsets, fsetcap;
    const char **fnames;
    size_t nfnames, fnamecap;
    strmap rid_map, q_map, doc_map, fname_map, fset_map;
    seen_at *rid_at;            /* per impression */
    size_t ridatcap;
    size_t clicks, clicks_no_dwell, duplicate_clicks;
    scratch sc;
    sbuf key;
};

int ops_engage_log_new(ops_engage_log **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -ENOMEM;
}

void ops_engage_log_free(ops_engage_log *lg)
{
    if (!lg) return;
    for (size_t i = 0; i < lg->nfsets; i++) {
        free(lg->fsets[i].gidx);
        free(lg->fsets[i].order);
    }
    free(lg->fsets);
    free(lg->files);
    free(lg->imps);
    free(lg->hits);
    free(lg->fv);
    free(lg->docs);
    free(lg->qids);
    free(lg->fnames);
    free(lg->rid_at);
    free(lg->sc.ids);
    free(lg->key.s);
    strmap_free(&lg->rid_map);
    strmap_free(&lg->q_map);
    strmap_free(&lg->doc_map);
    strmap_free(&lg->fname_map);
    strmap_free(&lg->fset_map);
    arena_free(&lg->strings);
    free(lg);
}

static int add_file(ops_engage_log *lg, const char *path, uint32_t *idx)
{
    const char *p = arena_dup(&lg->strings, path, strlen(path));
    if (!p || GROW(lg->files, lg->filescap, lg->nfiles + 1)) return -ENOMEM;
    *idx = (uint32_t)lg->nfiles;
    lg->files[lg->nfiles++] = p;
    return 0;
}

static const uint32_t *fset_cmp_ctx;
static int cmp_by_gidx(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (fset_cmp_ctx[x] > fset_cmp_ctx[y]) - (fset_cmp_ctx[x] < fset_cmp_ctx[y]);
}

/* The index of the feature list of v (interned), its names added to the union. */
static int intern_fset(ops_engage_log *lg, const imp_view *v, int32_t *out)
{
    sbuf *k = &lg->key;
    k->n = 0;
    for (size_t i = 0; i < v->nfeat; i++) {
        const char *nm = json_string_value(json_array_get(v->features, i));
        size_t nl = strlen(nm);
        if (GROW(k->s, k->cap, k->n + nl + 2)) return -ENOMEM;
        memcpy(k->s + k->n, nm, nl);
        k->n += nl;
        k->s[k->n++] = ' ';
        k->s[k->n] = '\0';
    }
    size_t f = strmap_get(&lg->fset_map, k->s, k->n);
    if (f != NOT_FOUND) {
        *out = (int32_t)f;
        return 0;
    }
    const char *key = arena_dup(&lg->strings, k->s, k->n);
    if (!key || GROW(lg->fsets, lg->fsetcap, lg->nfsets + 1)) return -ENOMEM;
    eng_fset *fs = &lg->fsets[lg->nfsets];
    fs->n = v->nfeat;
    fs->gidx = malloc(v->nfeat * sizeof *fs->gidx);
    fs->order = malloc(v->nfeat * sizeof *fs->order);
    if (!fs->gidx || !fs->order) {
        free(fs->gidx);
        free(fs->order);
        return -ENOMEM;
    }
    lg->nfsets++;
    for (size_t i = 0; i < v->nfeat; i++) {
        const char *nm = json_string_value(json_array_get(v->features, i));
        size_t g = strmap_get(&lg->fname_map, nm, strlen(nm));
        if (g == NOT_FOUND) {
            const char *s = arena_dup(&lg->strings, nm, strlen(nm));
            if (!s || GROW(lg->fnames, lg->fnamecap, lg->nfnames + 1) ||
                strmap_put(&lg->fname_map, s, lg->nfnames))
                return -ENOMEM;
            g = lg->nfnames;
            lg->fnames[lg->nfnames++] = s;
        }
        fs->gidx[i] = (uint32_t)g;
        fs->order[i] = i;
    }
    fset_cmp_ctx = fs->gidx;
    qsort(fs->order, fs->n, sizeof *fs->order, cmp_by_gidx);
    if (strmap_put(&lg->fset_map, key, lg->nfsets - 1)) return -ENOMEM;
    *out = (int32_t)(lg->nfsets - 1);
    return 0;
}

/* Is impression a more recent than b (time, then load order)? Impressions
 * without a time are older than any with one. */
static int newer(const eng_imp *a, const eng_imp *b)
{
    if (a->has_time != b->has_time) return a->has_time;
    if (a->has_time && a->time != b->time) return a->time > b->time;
    return a->seq > b->seq;
}

typedef struct load_ctx {
    ops_engage_log *lg;
    ops_engage_input *in;
    fn_errbuf *eb;
    uint32_t file;
} load_ctx;

static int imp_line(void *ud, char *line, size_t len, size_t lineno)
{
    load_ctx *c = ud;
    ops_engage_log *lg = c->lg;
    const char *path = lg->files[c->file];
    imp_view v;
    int rc = parse_impression(path, lineno, line, len, &v, &lg->sc, c->eb);
    if (rc == 1) return 0;
    if (rc) return bad_line(c->in, c->eb, rc);
    size_t at = strmap_get(&lg->rid_map, v.rid, v.ridlen);
    if (at != NOT_FOUND) {
        char w[300];
        where_str(w, sizeof w, lg->files, c->file, lg->rid_at[at]);
        rc = bad(c->eb, path, lineno, "request_id \"%.60s\" repeats %s", v.rid, w);
        json_decref(v.root);
        return bad_line(c->in, c->eb, rc);
    }
    rc = -ENOMEM;
    const char *rid = arena_dup(&lg->strings, v.rid, v.ridlen);
    if (!rid || GROW(lg->imps, lg->impcap, lg->nimps + 1) ||
        GROW(lg->rid_at, lg->ridatcap, lg->nimps + 1) || GROW(lg->hits, lg->hitcap, lg->nhits + v.nhits))
        goto out;
    size_t q = strmap_get(&lg->q_map, v.rid, v.qidlen);
    if (q == NOT_FOUND) {
        const char *qs = arena_dup(&lg->strings, v.rid, v.qidlen);
        if (!qs || GROW(lg->qids, lg->qcap, lg->nq + 1) || strmap_put(&lg->q_map, qs, lg->nq)) goto out;
        q = lg->nq;
        lg->qids[lg->nq++] = qs;
    }
    int32_t fset = -1;
    if (v.nfeat && (rc = intern_fset(lg, &v, &fset)) != 0) goto out;
    rc = -ENOMEM;
    if (fset >= 0 && GROW(lg->fv, lg->fvcap, lg->nfv + v.nhits * v.nfeat)) goto out;
    eng_imp *im = &lg->imps[lg->nimps];
    *im = (eng_imp){.rid = rid, .q = (uint32_t)q, .fset = fset, .has_time = v.has_time,
                    .time = v.time, .hit0 = lg->nhits, .nhits = v.nhits, .seq = lg->nimps};
    for (size_t i = 0; i < v.nhits; i++) {
        json_t *h = json_array_get(v.hits, i);
        const char *id = hit_id(&v, i);
        if (pair_key(&lg->key, v.rid, v.qidlen, id)) goto out;
        size_t d = strmap_get(&lg->doc_map, lg->key.s, lg->key.n);
        if (d == NOT_FOUND) {
            const char *k = arena_dup(&lg->strings, lg->key.s, lg->key.n);
            if (!k || GROW(lg->docs, lg->doccap, lg->ndocs + 1) || strmap_put(&lg->doc_map, k, lg->ndocs))
                goto out;
            d = lg->ndocs++;
            lg->docs[d] = (eng_doc){.q = (uint32_t)q, .id = k + v.qidlen + 1, .minpos = UINT32_MAX,
                                    .vimp = NOT_FOUND, .vhit = NOT_FOUND};
        }
        eng_doc *doc = &lg->docs[d];
        uint32_t pos = v.first_pos + (uint32_t)i;
        if (pos < doc->minpos) doc->minpos = pos;
        eng_hit *eh = &lg->hits[lg->nhits + i];
        *eh = (eng_hit){.id = doc->id, .pos = pos, .doc = (uint32_t)d, .fofs = NOT_FOUND, .dwell = 0};
        if (fset >= 0) {
            json_t *f = json_object_get(h, "f");
            eh->fofs = lg->nfv;
            for (size_t k = 0; k < v.nfeat; k++) {
                json_t *x = json_array_get(f, k);
                lg->fv[lg->nfv++] = json_is_null(x) ? NAN : json_number_value(x);
            }
            if (doc->vimp == NOT_FOUND || newer(im, &lg->imps[doc->vimp])) {
                doc->vimp = lg->nimps;
                doc->vhit = lg->nhits + i;
            }
        }
    }
    lg->nhits += v.nhits;
    lg->rid_at[lg->nimps] = (seen_at){.file = c->file, .line = lineno};
    if (strmap_put(&lg->rid_map, rid, lg->nimps)) goto out;
    lg->nimps++;
    rc = 0;
out:
    json_decref(v.root);
    return rc;
}

int ops_engage_load_impressions(ops_engage_log *lg, const char *path, ops_engage_input *in,
                                fn_errbuf *eb)
{
    load_ctx c = {.lg = lg, .in = in, .eb = eb};
    int rc = add_file(lg, path, &c.file);
    return rc ? rc : fn_read_lines(path, imp_line, &c, eb);
}

static int click_line(void *ud, char *line, size_t len, size_t lineno)
{
    load_ctx *c = ud;
    ops_engage_log *lg = c->lg;
    const char *path = lg->files[c->file];
    fn_errbuf *eb = c->eb;
    if (is_blank_line(line, len)) return 0;
    json_t *o;
    int rc = load_json_line(path, lineno, line, len, &o, eb);
    if (rc) return bad_line(c->in, eb, rc);
    const char *rid, *id;
    size_t ridlen, idlen;
    uint32_t pos;
    int has_time, has_dwell;
    double t, dwell = 0;
    if ((rc = get_str(o, "request_id", "", &rid, &ridlen, path, lineno, eb)) ||
        (rc = get_str(o, "id", "", &id, &idlen, path, lineno, eb)) ||
        (rc = get_pos(o, "", &pos, path, lineno, eb)) ||
        (rc = get_opt_num(o, "time", &has_time, &t, path, lineno, eb)) ||
        (rc = get_opt_num(o, "dwell", &has_dwell, &dwell, path, lineno, eb)))
        goto out;
    if (has_dwell && dwell < 0) {
        rc = bad(eb, path, lineno, "\"dwell\" is negative (%g)", dwell);
        goto out;
    }
    size_t im = strmap_get(&lg->rid_map, rid, ridlen);
    if (im == NOT_FOUND) {
        rc = bad(eb, path, lineno, "click for an unknown request_id \"%.60s\" (no such impression)", rid);
        goto out;
    }
    const eng_imp *imp = &lg->imps[im];
    uint32_t first = imp->nhits ? lg->hits[imp->hit0].pos : 0;
    if (imp->nhits == 0 || pos < first || pos >= first + imp->nhits) {
        if (imp->nhits == 0)
            rc = bad(eb, path, lineno, "request \"%.60s\" showed no hits, so nothing at position %u", rid, pos);
        else
            rc = bad(eb, path, lineno, "request \"%.60s\" showed positions %u-%zu, not %u", rid, first,
                     first + imp->nhits - 1, pos);
        goto out;
    }
    eng_hit *h = &lg->hits[imp->hit0 + (pos - first)];
    if (strcmp(h->id, id) != 0) {
        rc = bad(eb, path, lineno, "request \"%.60s\" showed \"%.60s\" at position %u, not \"%.60s\"", rid,
                 h->id, pos, id);
        goto out;
    }
    /* clicks on the same shown hit count once, with the longest dwell */
    double d = has_dwell ? dwell : NAN;
    if (h->clicks == 0) h->dwell = d;
    else {
        lg->duplicate_clicks++;
        if (!isnan(d) && (isnan(h->dwell) || d > h->dwell)) h->dwell = d;
    }
    h->clicks++;
    lg->clicks++;
    if (!has_dwell) lg->clicks_no_dwell++;
    rc = 0;
out:
    json_decref(o);
    return rc ? bad_line(c->in, eb, rc) : 0;
}

int ops_engage_load_clicks(ops_engage_log *lg, const char *path, ops_engage_input *in,
                           fn_errbuf *eb)
{
    load_ctx c = {.lg = lg, .in = in, .eb = eb};
    int rc = add_file(lg, path, &c.file);
    return rc ? rc : fn_read_lines(path, click_line, &c, eb);
}

/* ======================================================================
 * training data
 * ====================================================================== */

void ops_traindata_defaults(ops_traindata_opts *o)
{
    memset(o, 0, sizeof *o);
    o->mode = OPS_TD_POINTWISE;
    o->min_dwell = 10.0;
    o->propensity = OPS_TD_PROP_DATA;
    o->eta = 1.0;
    o->clip = 0.1;
    o->smoothing = 1.0;
    o->cuts[0] = 0.05;
    o->cuts[1] = 0.2;
    o->cuts[2] = 0.45;
    o->cuts[3] = 0.75;
}

static int satisfied(const eng_hit *h, double min_dwell)
{
    if (!h->clicks) return 0;
    if (isnan(h->dwell)) return min_dwell <= 0;
    return h->dwell >= min_dwell;
}

/* Propensity of every position 1..maxpos into theta[1..maxpos]. */
static int propensities(const ops_engage_log *lg, const ops_traindata_opts *o, uint32_t maxpos,
                        double *theta)
{
    if (o->propensity == OPS_TD_PROP_NONE) {
        for (uint32_t p = 1; p <= maxpos; p++) theta[p] = 1.0;
        return 0;
    }
    if (o->propensity == OPS_TD_PROP_PBM) {
        for (uint32_t p = 1; p <= maxpos; p++) theta[p] = fmax(pow((double)p, -o->eta), o->clip);
        return 0;
    }
    /* data: among sessions with a click, the share that clicked at or below
     * position p (a top-down reader who clicked there has read p) */
    size_t *shown = calloc((size_t)maxpos + 1, sizeof *shown);
    size_t *reached = calloc((size_t)maxpos + 1, sizeof *reached);
    if (!shown || !reached) {
        free(shown);
        free(reached);
        return -ENOMEM;
    }
    for (size_t i = 0; i < lg->nimps; i++) {
        const eng_imp *im = &lg->imps[i];
        uint32_t last = 0;
        for (size_t k = 0; k < im->nhits; k++)
            if (lg->hits[im->hit0 + k].clicks) last = lg->hits[im->hit0 + k].pos;
        if (!last) continue;
        for (size_t k = 0; k < im->nhits; k++) {
            uint32_t p = lg->hits[im->hit0 + k].pos;
            shown[p]++;
            if (p <= last) reached[p]++;
        }
    }
    double prev = 1.0;
    for (uint32_t p = 1; p <= maxpos; p++) {
        double t = shown[p] ? (double)reached[p] / (double)shown[p] : prev;
        if (t > prev) t = prev;         /* examination does not grow with depth */
        prev = t;
        theta[p] = fmax(t, o->clip);
    }
    free(shown);
    free(reached);
    return 0;
}

/* ---- qid numbering ---- */

/* A canonical non-negative integer ("0" or no leading zero, < 2^53)? */
static int numeric_qid(const char *s, uint64_t *v)
{
    size_t n = strlen(s);
    if (n == 0 || n > 15 || (n > 1 && s[0] == '0')) return 0;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    *v = x;
    return 1;
}

typedef struct qnum {
    uint64_t n;
    uint32_t q;
    int numeric;
} qnum;

static const char *const *qnum_names;
static int cmp_qname(const void *a, const void *b)
{
    return strcmp(qnum_names[((const qnum *)a)->q], qnum_names[((const qnum *)b)->q]);
}

static int cmp_qnum(const void *a, const void *b)
{
    const qnum *x = a, *y = b;
    return (x->n > y->n) - (x->n < y->n);
}

/* ---- rows ---- */

typedef struct row {
    uint32_t doc;
    uint32_t label;
} row;

static const eng_doc *row_docs;
static int cmp_row(const void *a, const void *b)
{
    const eng_doc *x = &row_docs[((const row *)a)->doc], *y = &row_docs[((const row *)b)->doc];
    if (x->minpos != y->minpos) return (x->minpos > y->minpos) - (x->minpos < y->minpos);
    return strcmp(x->id, y->id);
}

/* One row; returns the highest feature number written (0 = none). */
static uint32_t write_row(FILE *f, const ops_engage_log *lg, uint64_t qn, const row *r)
{
    const eng_doc *d = &lg->docs[r->doc];
    fprintf(f, "%u qid:%llu", r->label, (unsigned long long)qn);
    const eng_hit *h = &lg->hits[d->vhit];
    const eng_fset *fs = &lg->fsets[lg->imps[d->vimp].fset];
    uint32_t top = 0;
    for (size_t k = 0; k < fs->n; k++) {
        size_t e = fs->order[k];
        double x = lg->fv[h->fofs + e];
        if (isnan(x)) continue;
        fprintf(f, " %u:%.9g", fs->gidx[e] + 1, x);
        top = fs->gidx[e] + 1;
    }
    fputs(" # ", f);
    fputs(d->id, f);
    fputc('\n', f);
    return top;
}

/* ---- pairwise: preferences -> labels ---- */

typedef struct pref {
    uint32_t a, b;              /* local ids: a preferred to b */
} pref;

static int cmp_pref(const void *x, const void *y)
{
    const pref *p = x, *q = y;
    uint32_t p0 = p->a < p->b ? p->a : p->b, p1 = p->a < p->b ? p->b : p->a;
    uint32_t q0 = q->a < q->b ? q->a : q->b, q1 = q->a < q->b ? q->b : q->a;
    if (p0 != q0) return (p0 > q0) - (p0 < q0);
    if (p1 != q1) return (p1 > q1) - (p1 < q1);
    return (p->a > q->a) - (p->a < q->a);
}

typedef struct edge {
    uint32_t from, to;
    size_t margin;
    int alive;
} edge;

/* Labels for n local documents from the edges (from preferred to to): the
 * length of the longest path down to a document preferred to nothing, after
 * the weakest edge of every cycle is dropped. label[i] = UINT32_MAX for a
 * document left without an edge. */
static int pair_labels(edge *e, size_t ne, size_t n, uint32_t *label, size_t *dropped)
{
    size_t nn = n ? n : 1;
    size_t *outdeg = calloc(nn, sizeof *outdeg), *queue = malloc(nn * sizeof *queue);
    size_t *in0 = calloc(nn + 1, sizeof *in0), *out0 = calloc(nn + 1, sizeof *out0);
    size_t *inl = malloc((ne ? ne : 1) * sizeof *inl), *outl = malloc((ne ? ne : 1) * sizeof *outl);
    size_t *nxt = malloc(nn * sizeof *nxt);
    unsigned char *state = malloc(nn);
    int rc = -ENOMEM;
    if (!outdeg || !queue || !in0 || !out0 || !inl || !outl || !nxt || !state) goto out;
    /* edge lists by target and by source */
    for (size_t k = 0; k < ne; k++) {
        in0[e[k].to + 1]++;
        out0[e[k].from + 1]++;
    }
    for (size_t i = 0; i < n; i++) {
        in0[i + 1] += in0[i];
        out0[i + 1] += out0[i];
    }
    memset(outdeg, 0, nn * sizeof *outdeg);
    memset(queue, 0, nn * sizeof *queue);
    for (size_t k = 0; k < ne; k++) {
        inl[in0[e[k].to] + outdeg[e[k].to]++] = k;
        outl[out0[e[k].from] + queue[e[k].from]++] = k;
    }
    for (;;) {
        memset(outdeg, 0, nn * sizeof *outdeg);
        for (size_t i = 0; i < n; i++) label[i] = 0;
        for (size_t k = 0; k < ne; k++)
            if (e[k].alive) outdeg[e[k].from]++;
        size_t qh = 0, qt = 0;
        for (size_t i = 0; i < n; i++)
            if (!outdeg[i]) queue[qt++] = i;
        /* reverse topological order: a document's label is final once those
         * of all the documents it is preferred to are */
        while (qh < qt) {
            size_t u = queue[qh++];
            for (size_t j = in0[u]; j < in0[u + 1]; j++) {
                const edge *x = &e[inl[j]];
                if (!x->alive) continue;
                if (label[x->from] < label[u] + 1) label[x->from] = label[u] + 1;
                if (--outdeg[x->from] == 0) queue[qt++] = x->from;
            }
        }
        if (qt == n) break;
        /* a cycle among the documents left (each still has an alive edge to
         * another one left): walk such edges until a document repeats */
        for (size_t i = 0; i < n; i++) state[i] = outdeg[i] ? 1 : 0;
        size_t u = 0;
        while (!state[u]) u++;
        while (state[u] != 2) {
            state[u] = 2;
            for (size_t j = out0[u]; j < out0[u + 1]; j++) {
                const edge *x = &e[outl[j]];
                if (x->alive && state[x->to]) {
                    nxt[u] = outl[j];
                    break;
                }
            }
            u = e[nxt[u]].to;
        }
        /* u is on the cycle: drop its weakest edge (the first of equals) */
        size_t weakest = nxt[u];
        for (size_t v = e[nxt[u]].to; v != u; v = e[nxt[v]].to)
            if (e[nxt[v]].margin < e[weakest].margin) weakest = nxt[v];
        e[weakest].alive = 0;
        (*dropped)++;
    }
    memset(outdeg, 0, nn * sizeof *outdeg);
    for (size_t k = 0; k < ne; k++)
        if (e[k].alive) outdeg[e[k].from]++, outdeg[e[k].to]++;
    for (size_t i = 0; i < n; i++)
        if (!outdeg[i]) label[i] = UINT32_MAX;
    rc = 0;
out:
    free(outdeg);
    free(queue);
    free(in0);
    free(out0);
    free(inl);
    free(outl);
    free(nxt);
    free(state);
    return rc;
}

int ops_traindata_write(const ops_engage_log *lg, const ops_traindata_opts *o, FILE *out,
                        ops_traindata_stats *st, fn_errbuf *eb)
{
    memset(st, 0, sizeof *st);
    st->impressions = lg->nimps;
    st->clicks = lg->clicks;
    st->clicks_no_dwell = lg->clicks_no_dwell;
    st->duplicate_clicks = lg->duplicate_clicks;
    st->features = lg->nfnames;
    st->feature_lists = lg->nfsets;
    if (lg->nfnames == 0)
        return fn_seterr(eb, FN_EINVAL,
                         "the impressions carry no feature vectors (\"features\" is absent or empty on "
                         "every line), so there is nothing to train on; log impressions with features");
    int rc = -ENOMEM;
    uint32_t maxpos = 1;
    for (size_t i = 0; i < lg->nhits; i++)
        if (lg->hits[i].pos > maxpos) maxpos = lg->hits[i].pos;
    double *theta = malloc(((size_t)maxpos + 1) * sizeof *theta);
    double *sat = calloc(lg->ndocs ? lg->ndocs : 1, sizeof *sat);
    double *exam = calloc(lg->ndocs ? lg->ndocs : 1, sizeof *exam);
    size_t *qstart = calloc(lg->nq + 1, sizeof *qstart);        /* impressions by query */
    size_t *qimps = malloc((lg->nimps ? lg->nimps : 1) * sizeof *qimps);
    size_t *dstart = calloc(lg->nq + 1, sizeof *dstart);        /* documents by query */
    uint32_t *qdocs = malloc((lg->ndocs ? lg->ndocs : 1) * sizeof *qdocs);
    uint32_t *local = malloc((lg->ndocs ? lg->ndocs : 1) * sizeof *local);
    uint32_t *label = malloc((lg->ndocs ? lg->ndocs : 1) * sizeof *label);
    qnum *qn = malloc((lg->nq ? lg->nq : 1) * sizeof *qn);
    row *rows = malloc((lg->ndocs ? lg->ndocs : 1) * sizeof *rows);
    unsigned char *qhas = calloc(lg->nq ? lg->nq : 1, 1);      /* query has rows */
    pref *prefs = NULL;
    edge *edges = NULL;
    FILE *body = NULL;
    uint32_t ncols = 0;
    size_t prefcap = 0, edgecap = 0;
    if (!theta || !sat || !exam || !qstart || !qimps || !dstart || !qdocs || !local || !label || !qn || !rows ||
        !qhas)
        goto out;
    if ((rc = propensities(lg, o, maxpos, theta)) != 0) goto out;
    rc = -ENOMEM;
    for (uint32_t p = 1; p <= 10; p++) st->propensity[p - 1] = p <= maxpos ? theta[p] : NAN;

    /* group impressions and documents by query */
    for (size_t i = 0; i < lg->nimps; i++) qstart[lg->imps[i].q + 1]++;
    for (size_t q = 0; q < lg->nq; q++) qstart[q + 1] += qstart[q];
    {
        size_t *fill = calloc(lg->nq + 1, sizeof *fill);
        if (!fill) goto out;
        for (size_t i = 0; i < lg->nimps; i++) {
            uint32_t q = lg->imps[i].q;
            qimps[qstart[q] + fill[q]++] = i;
        }
        memset(fill, 0, (lg->nq + 1) * sizeof *fill);
        for (size_t d = 0; d < lg->ndocs; d++) dstart[lg->docs[d].q + 1]++;
        for (size_t q = 0; q < lg->nq; q++) dstart[q + 1] += dstart[q];
        for (size_t d = 0; d < lg->ndocs; d++) {
            uint32_t q = lg->docs[d].q;
            qdocs[dstart[q] + fill[q]++] = (uint32_t)d;
        }
        free(fill);
    }

    /* qid numbers: numeric qids as they are, the others densely above them
     * in byte order */
    uint64_t maxnum = 0;
    for (size_t q = 0; q < lg->nq; q++) {
        qn[q].q = (uint32_t)q;
        qn[q].numeric = numeric_qid(lg->qids[q], &qn[q].n);
        if (qn[q].numeric && qn[q].n > maxnum) maxnum = qn[q].n;
    }
    {
        size_t nn = 0;
        for (size_t q = 0; q < lg->nq; q++)
            if (!qn[q].numeric) {
                qnum t = qn[nn];
                qn[nn++] = qn[q];
                qn[q] = t;
            }
        qnum_names = lg->qids;
        qsort(qn, nn, sizeof *qn, cmp_qname);
        for (size_t i = 0; i < nn; i++) qn[i].n = maxnum + 1 + i;
        qsort(qn, lg->nq, sizeof *qn, cmp_qnum);
    }

    /* pointwise evidence */
    if (o->mode == OPS_TD_POINTWISE) {
        for (size_t i = 0; i < lg->nhits; i++) {
            const eng_hit *h = &lg->hits[i];
            exam[h->doc] += theta[h->pos];
            if (satisfied(h, o->min_dwell)) sat[h->doc] += 1.0;
        }
    }

    /* the rows go to a temporary file first: the header names the columns
     * the rows have, which are known at the end (the trainer refuses a
     * header naming more columns than the data has) */
    body = tmpfile();
    if (!body) {
        rc = fn_seterr(eb, errno ? -errno : -EIO, "temporary file: %s", strerror(errno));
        goto out;
    }

    row_docs = lg->docs;
    for (size_t qi = 0; qi < lg->nq; qi++) {
        uint32_t q = qn[qi].q;
        size_t nd = dstart[q + 1] - dstart[q];
        const uint32_t *docs = qdocs + dstart[q];
        size_t nrows = 0;
        if (o->mode == OPS_TD_POINTWISE) {
            for (size_t k = 0; k < nd; k++) {
                uint32_t d = docs[k];
                double rate = sat[d] / (exam[d] + o->smoothing);
                uint32_t lab = 0;
                for (int c = 0; c < 4; c++)
                    if (rate >= o->cuts[c]) lab++;
                rows[nrows++] = (row){.doc = d, .label = lab};
            }
        } else {
            /* preferences of every session of the query */
            for (size_t k = 0; k < nd; k++) local[docs[k]] = (uint32_t)k;
            size_t np = 0;
            for (size_t s = qstart[q]; s < qstart[q + 1]; s++) {
                const eng_imp *im = &lg->imps[qimps[s]];
                const eng_hit *h = lg->hits + im->hit0;
                for (size_t j = 0; j < im->nhits; j++) {
                    if (!satisfied(&h[j], o->min_dwell)) continue;
                    for (size_t a = 0; a < j; a++) {
                        if (satisfied(&h[a], o->min_dwell)) continue;
                        if (GROW(prefs, prefcap, np + 1)) goto out;
                        prefs[np++] = (pref){.a = local[h[j].doc], .b = local[h[a].doc]};
                    }
                }
            }
            st->prefs += np;
            if (np == 0) continue;
            qsort(prefs, np, sizeof *prefs, cmp_pref);
            size_t ne = 0;
            for (size_t i = 0; i < np;) {
                uint32_t lo = prefs[i].a < prefs[i].b ? prefs[i].a : prefs[i].b;
                uint32_t hi = prefs[i].a < prefs[i].b ? prefs[i].b : prefs[i].a;
                size_t lo_wins = 0, hi_wins = 0;
                while (i < np && (prefs[i].a < prefs[i].b ? prefs[i].a : prefs[i].b) == lo &&
                       (prefs[i].a < prefs[i].b ? prefs[i].b : prefs[i].a) == hi) {
                    if (prefs[i].a == lo) lo_wins++;
                    else hi_wins++;
                    i++;
                }
                if (lo_wins == hi_wins) {
                    st->pairs_tied++;
                    continue;
                }
                if (GROW(edges, edgecap, ne + 1)) goto out;
                edges[ne++] = lo_wins > hi_wins
                                  ? (edge){.from = lo, .to = hi, .margin = lo_wins - hi_wins, .alive = 1}
                                  : (edge){.from = hi, .to = lo, .margin = hi_wins - lo_wins, .alive = 1};
            }
            if ((rc = pair_labels(edges, ne, nd, label, &st->pairs_cycle)) != 0) goto out;
            rc = -ENOMEM;
            st->pairs_kept += ne;
            for (size_t k = 0; k < nd; k++)
                if (label[k] != UINT32_MAX) rows[nrows++] = (row){.doc = docs[k], .label = label[k]};
        }
        /* rows need a feature vector */
        size_t w = 0;
        for (size_t k = 0; k < nrows; k++) {
            if (lg->docs[rows[k].doc].vimp == NOT_FOUND) st->no_vector++;
            else rows[w++] = rows[k];
        }
        nrows = w;
        if (!nrows) continue;
        qsort(rows, nrows, sizeof *rows, cmp_row);
        for (size_t k = 0; k < nrows; k++) {
            uint32_t top = write_row(body, lg, qn[qi].n, &rows[k]);
            if (top > ncols) ncols = top;
            st->labels[rows[k].label < 15 ? rows[k].label : 15]++;
        }
        st->rows += nrows;
        st->queries++;
        qhas[q] = 1;
    }
    st->pairs_kept -= st->pairs_cycle;
    /* header: "# features:" naming columns 1..ncols (all names when there is
     * no row), "# qid N = STRING" for the queries that have rows and a
     * non-numeric qid; then the rows */
    if (st->rows == 0) ncols = (uint32_t)lg->nfnames;
    st->features = ncols;
    fputs("# features:", out);
    for (size_t i = 0; i < ncols; i++) fprintf(out, " %s", lg->fnames[i]);
    fputc('\n', out);
    for (size_t i = 0; i < lg->nq; i++)
        if (!qn[i].numeric && qhas[qn[i].q])
            fprintf(out, "# qid %llu = %s\n", (unsigned long long)qn[i].n, lg->qids[qn[i].q]);
    rc = fflush(body) != 0 || ferror(body) ? -EIO : 0;
    if (rc == 0) {
        char buf[65536];
        size_t n;
        rewind(body);
        while ((n = fread(buf, 1, sizeof buf, body)) > 0)
            if (fwrite(buf, 1, n, out) != n) break;
        rc = ferror(body) || fflush(out) != 0 || ferror(out) ? -EIO : 0;
    }
    if (rc) fn_seterr(eb, rc, "writing the training data: %s", strerror(errno ? errno : EIO));
out:
    if (body) fclose(body);
    free(theta);
    free(sat);
    free(exam);
    free(qstart);
    free(qimps);
    free(dstart);
    free(qdocs);
    free(local);
    free(label);
    free(qn);
    free(rows);
    free(qhas);
    free(prefs);
    free(edges);
    return rc;
}

/* ======================================================================
 * the commands
 * ====================================================================== */

static int parse_double_arg(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* "a,b,c,d,e": exactly n numbers in [lo, hi]. */
static int parse_list(const char *s, double lo, double hi, double *out, size_t n)
{
    char buf[256];
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    size_t k = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (k == n || parse_double_arg(t, lo, hi, &out[k])) return -1;
        k++;
    }
    return k == n ? 0 : -1;
}

static int parse_u64_arg(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-' || v > max) return -1;
    *out = v;
    return 0;
}

static void warn_stderr(void *ud, const char *msg)
{
    fprintf(stderr, "%s: %s (skipped)\n", (const char *)ud, msg);
}

/* An output file written as PATH.tmp and renamed into place on success. */
typedef struct outfile {
    const char *path;
    char *tmp;
    FILE *f;
} outfile;

static int out_open(outfile *o, const char *path, const char *cmd)
{
    o->path = path;
    o->tmp = malloc(strlen(path) + 16);
    if (!o->tmp) return -1;
    sprintf(o->tmp, "%s.tmp", path);
    if (!(o->f = fopen(o->tmp, "w"))) {
        fprintf(stderr, "%s: error: %s: %s\n", cmd, o->tmp, strerror(errno));
        free(o->tmp);
        o->tmp = NULL;
        return -1;
    }
    return 0;
}

/* commit != 0: flush, close and rename; else close and remove. */
static int out_close(outfile *o, int commit, const char *cmd)
{
    if (!o->f) return commit ? -1 : 0;
    int ok = 1;
    if (commit && (fflush(o->f) != 0 || ferror(o->f))) ok = 0;
    if (fclose(o->f) != 0) ok = 0;
    o->f = NULL;
    if (commit && !ok) fprintf(stderr, "%s: error: writing %s: %s\n", cmd, o->tmp, strerror(errno));
    if (commit && ok && rename(o->tmp, o->path) != 0) {
        fprintf(stderr, "%s: error: %s: %s\n", cmd, o->path, strerror(errno));
        ok = 0;
    }
    if (!commit || !ok) unlink(o->tmp);
    free(o->tmp);
    o->tmp = NULL;
    return commit && ok ? 0 : -1;
}

static int usage_err(const char *cmd, const char *what, const char *usage)
{
    fprintf(stderr, "%s: %s\n", cmd, what);
    fputs(usage, stderr);
    return OPS_EXIT_USAGE;
}

#define MAX_FILES 256

static const char clicks_usage[] =
    "usage: funnel clicks simulate --impressions FILE --qrels QRELS --model cascade|pbm\n"
    "                              --out CLICKS [--seed S] [--sessions N --impressions-out FILE]\n"
    "                              [user model options] [--on-error fail|skip]\n"
    "\n"
    "Simulates users on every logged page (impression) from graded judgments and\n"
    "writes their clicks (JSON Lines: request_id, time, id, position, dwell). Same\n"
    "input, options and seed = the same clicks, whatever the order of the lines\n"
    "(each session is seeded from --seed and its request id). docs/engagement.md.\n"
    "  --impressions FILE   impressions, JSON Lines (repeatable)\n"
    "  --qrels QRELS        TREC qrels \"qid iter docid grade\"; the qid of an\n"
    "                       impression is its request_id up to the first '/'\n"
    "  --model M            cascade: read from the top, click by grade, after a\n"
    "                       click stop by grade; pbm: examine position p with\n"
    "                       probability p^-eta, click by grade\n"
    "  --out CLICKS         the click log to write\n"
    "  --seed S             seed (1)\n"
    "  --sessions N         users per impression (1); N > 1 writes the impressions\n"
    "                       once per session, request id \"ID/k\", to --impressions-out\n"
    "  --impressions-out F  where those impressions go (the click log joins them)\n"
    "User model (5 values = relevance levels 0..4; grades map to levels as\n"
    "round(4 * grade / max grade)):\n"
    "  --click-prob L       P(click | examined) (0.05,0.3,0.5,0.7,0.95)\n"
    "  --stop-prob L        cascade: P(stop | clicked) (0.2,0.3,0.5,0.7,0.9)\n"
    "  --eta X              pbm: examination p^-eta (1)\n"
    "  --dwell-median L     median dwell seconds (4,8,15,25,40)\n"
    "  --dwell-sigma X      log-normal spread of dwell (0.8)\n"
    "  --scan-time X        seconds to read one result, for click times (1)\n"
    "  --max-grade G        the grade that is level 4 (the largest in QRELS)\n"
    "  --on-error MODE      fail (default): a bad impression line stops the run,\n"
    "                       exit 1; skip: report it as FILE:LINE: reason, skip it\n"
    "Prints one summary line. Exit status: 0 ok, 1 bad input, 2 usage error.\n";

static int cmd_simulate(int argc, char **argv)
{
    enum {
        O_IMP = 1, O_QRELS, O_MODEL, O_OUT, O_SEED, O_SESSIONS, O_IMPOUT, O_CLICK, O_STOP, O_ETA,
        O_DMED, O_DSIG, O_SCAN, O_MAXG, O_ONERR
    };
    static const struct option lo[] = {
        {"impressions", required_argument, 0, O_IMP}, {"qrels", required_argument, 0, O_QRELS},
        {"model", required_argument, 0, O_MODEL},     {"out", required_argument, 0, O_OUT},
        {"seed", required_argument, 0, O_SEED},       {"sessions", required_argument, 0, O_SESSIONS},
        {"impressions-out", required_argument, 0, O_IMPOUT},
        {"click-prob", required_argument, 0, O_CLICK}, {"stop-prob", required_argument, 0, O_STOP},
        {"eta", required_argument, 0, O_ETA},         {"dwell-median", required_argument, 0, O_DMED},
        {"dwell-sigma", required_argument, 0, O_DSIG}, {"scan-time", required_argument, 0, O_SCAN},
        {"max-grade", required_argument, 0, O_MAXG},  {"on-error", required_argument, 0, O_ONERR},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0}};
    static const char *cmd = "funnel clicks simulate";
    const char *files[MAX_FILES];
    size_t nfiles = 0;
    const char *qrels = NULL, *outp = NULL, *impout = NULL, *model = NULL;
    uint64_t seed = 1, sessions = 1, maxg = 0;
    ops_sim_params p;
    ops_sim_defaults(&p);
    ops_engage_input in = {.warn = warn_stderr, .ud = (void *)cmd};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case O_IMP:
            if (nfiles == MAX_FILES) return usage_err(cmd, "too many --impressions", clicks_usage);
            files[nfiles++] = optarg;
            break;
        case O_QRELS: qrels = optarg; break;
        case O_MODEL: model = optarg; break;
        case O_OUT: outp = optarg; break;
        case O_IMPOUT: impout = optarg; break;
        case O_SEED:
            if (parse_u64_arg(optarg, UINT64_MAX, &seed))
                return usage_err(cmd, "--seed must be a non-negative integer", clicks_usage);
            break;
        case O_SESSIONS:
            if (parse_u64_arg(optarg, 1000000, &sessions) || !sessions)
                return usage_err(cmd, "--sessions must be 1..1000000", clicks_usage);
            break;
        case O_CLICK:
            if (parse_list(optarg, 0, 1, p.click, OPS_SIM_LEVELS))
                return usage_err(cmd, "--click-prob takes 5 probabilities, e.g. 0.05,0.3,0.5,0.7,0.95", clicks_usage);
            break;
        case O_STOP:
            if (parse_list(optarg, 0, 1, p.stop, OPS_SIM_LEVELS))
                return usage_err(cmd, "--stop-prob takes 5 probabilities, e.g. 0.2,0.3,0.5,0.7,0.9", clicks_usage);
            break;
        case O_ETA:
            if (parse_double_arg(optarg, 0, 100, &p.eta))
                return usage_err(cmd, "--eta must be 0..100", clicks_usage);
            break;
        case O_DMED:
            if (parse_list(optarg, 0, 1e6, p.dwell_median, OPS_SIM_LEVELS))
                return usage_err(cmd, "--dwell-median takes 5 numbers of seconds, e.g. 4,8,15,25,40", clicks_usage);
            break;
        case O_DSIG:
            if (parse_double_arg(optarg, 0, 10, &p.dwell_sigma))
                return usage_err(cmd, "--dwell-sigma must be 0..10", clicks_usage);
            break;
        case O_SCAN:
            if (parse_double_arg(optarg, 0, 3600, &p.scan_s))
                return usage_err(cmd, "--scan-time must be 0..3600 seconds", clicks_usage);
            break;
        case O_MAXG:
            if (parse_u64_arg(optarg, 1000000, &maxg) || !maxg)
                return usage_err(cmd, "--max-grade must be a positive integer", clicks_usage);
            break;
        case O_ONERR:
            if (strcmp(optarg, "fail") == 0) in.skip_bad = 0;
            else if (strcmp(optarg, "skip") == 0) in.skip_bad = 1;
            else return usage_err(cmd, "--on-error must be fail or skip", clicks_usage);
            break;
        case 'h': fputs(clicks_usage, stdout); return OPS_EXIT_OK;
        default: fputs(clicks_usage, stderr); return OPS_EXIT_USAGE;
        }
    }
    if (optind != argc || !nfiles || !qrels || !outp || !model)
        return usage_err(cmd, "--impressions, --qrels, --model and --out are required", clicks_usage);
    if (strcmp(model, "cascade") == 0) p.model = OPS_SIM_CASCADE;
    else if (strcmp(model, "pbm") == 0) p.model = OPS_SIM_PBM;
    else return usage_err(cmd, "--model must be cascade or pbm", clicks_usage);
    if (sessions > 1 && !impout)
        return usage_err(cmd, "--sessions N > 1 needs --impressions-out (the click log refers to the "
                              "sessions' request ids ID/1..ID/N)", clicks_usage);
    for (size_t i = 0; i < nfiles; i++)
        if (strcmp(files[i], outp) == 0 || (impout && (strcmp(files[i], impout) == 0 || strcmp(outp, impout) == 0)))
            return usage_err(cmd, "the output files must differ from each other and from the inputs", clicks_usage);

    fn_errbuf eb = {{0}};
    ops_grades *g = NULL;
    int rc = ops_grades_load(qrels, &g, &eb);
    if (rc) {
        fprintf(stderr, "%s: error: %s\n", cmd, fn_errmsg(&eb, rc));
        return OPS_EXIT_FAIL;
    }
    outfile oc = {0}, oi = {0};
    int ret = OPS_EXIT_FAIL;
    if (out_open(&oc, outp, cmd)) goto done;
    if (impout && out_open(&oi, impout, cmd)) goto done;
    ops_sim_stats st;
    rc = ops_clicks_simulate(&p, g, (long)maxg, seed, (unsigned)sessions, files, nfiles, oc.f, oi.f, &in, &st, &eb);
    if (rc) {
        fprintf(stderr, "%s: error: %s\n", cmd, fn_errmsg(&eb, rc));
        goto done;
    }
    if (out_close(&oc, 1, cmd) || (impout && out_close(&oi, 1, cmd))) goto done;
    printf("simulated %zu sessions (%zu impressions x %llu), %s, seed %llu: %zu clicks (%.2f a session, "
           "%.1f%% of sessions without a click), %zu impressions of unjudged queries, %zu bad lines "
           "skipped -> %s\n",
           st.sessions, st.impressions, (unsigned long long)sessions, model, (unsigned long long)seed,
           st.clicks, st.sessions ? (double)st.clicks / (double)st.sessions : 0.0,
           st.sessions ? 100.0 * (double)st.silent / (double)st.sessions : 0.0, st.unjudged, in.skipped,
           outp);
    ret = OPS_EXIT_OK;
done:
    out_close(&oc, 0, cmd);
    out_close(&oi, 0, cmd);
    ops_grades_free(g);
    return ret;
}

int ops_cmd_clicks(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(clicks_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? OPS_EXIT_USAGE : OPS_EXIT_OK;
    }
    if (strcmp(argv[1], "simulate") == 0) return cmd_simulate(argc - 1, argv + 1);
    fprintf(stderr, "funnel clicks: unknown sub-command '%s'\n", argv[1]);
    fputs(clicks_usage, stderr);
    return OPS_EXIT_USAGE;
}

static const char traindata_usage[] =
    "usage: funnel traindata --impressions FILE --clicks FILE --mode pointwise|pairwise\n"
    "                        --out F.svm [--min-dwell S] [pointwise options]\n"
    "                        [--on-error fail|skip]\n"
    "\n"
    "Joins clicks to impressions by request_id and writes SVMlight/LETOR rows\n"
    "\"LABEL qid:N 1:V ... # DOCID\" grouped by query, after a first line\n"
    "\"# features: NAME1 NAME2 ...\" and \"# qid N = STRING\" lines for query ids\n"
    "that are not numbers. Feature vectors come from the impressions (the latest\n"
    "one of a query's document). docs/engagement.md has the rules.\n"
    "  --impressions FILE   impressions, JSON Lines (repeatable)\n"
    "  --clicks FILE        clicks, JSON Lines (repeatable)\n"
    "  --mode pointwise     per (query, document): rate = satisfied clicks /\n"
    "                       (examinations + smoothing), examinations = the sum of\n"
    "                       the propensities of its positions; label 0..4 = the\n"
    "                       number of --cuts the rate reaches\n"
    "  --mode pairwise      a satisfied click is preferred to every unclicked\n"
    "                       document shown above it (Joachims); labels per query\n"
    "                       that keep every (majority) preference\n"
    "  --out F.svm          the training file to write\n"
    "  --min-dwell S        a click is satisfied when its dwell >= S seconds (10)\n"
    "Pointwise:\n"
    "  --propensity P       data (default): estimated from the clicks; pbm:\n"
    "                       p^-eta; none: no position-bias correction\n"
    "  --eta X              for --propensity pbm (1)\n"
    "  --clip X             smallest propensity (0.1)\n"
    "  --smoothing K        examinations added to every document (1)\n"
    "  --cuts a,b,c,d       rate cut-offs of labels 1..4 (0.05,0.2,0.45,0.75)\n"
    "  --on-error MODE      fail (default): a bad line stops the run, exit 1;\n"
    "                       skip: report it as FILE:LINE: reason and skip it\n"
    "Prints one summary line. Exit status: 0 ok, 1 bad input, 2 usage error.\n";

int ops_cmd_traindata(int argc, char **argv)
{
    enum {
        O_IMP = 1, O_CLICKS, O_MODE, O_OUT, O_MINDWELL, O_PROP, O_ETA, O_CLIP, O_SMOOTH, O_CUTS, O_ONERR
    };
    static const struct option lo[] = {
        {"impressions", required_argument, 0, O_IMP}, {"clicks", required_argument, 0, O_CLICKS},
        {"mode", required_argument, 0, O_MODE},       {"out", required_argument, 0, O_OUT},
        {"min-dwell", required_argument, 0, O_MINDWELL},
        {"propensity", required_argument, 0, O_PROP}, {"eta", required_argument, 0, O_ETA},
        {"clip", required_argument, 0, O_CLIP},       {"smoothing", required_argument, 0, O_SMOOTH},
        {"cuts", required_argument, 0, O_CUTS},       {"on-error", required_argument, 0, O_ONERR},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0}};
    static const char *cmd = "funnel traindata";
    const char *imps[MAX_FILES], *clicks[MAX_FILES];
    size_t nimps = 0, nclicks = 0;
    const char *outp = NULL, *mode = NULL;
    ops_traindata_opts o;
    ops_traindata_defaults(&o);
    ops_engage_input in = {.warn = warn_stderr, .ud = (void *)cmd};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case O_IMP:
            if (nimps == MAX_FILES) return usage_err(cmd, "too many --impressions", traindata_usage);
            imps[nimps++] = optarg;
            break;
        case O_CLICKS:
            if (nclicks == MAX_FILES) return usage_err(cmd, "too many --clicks", traindata_usage);
            clicks[nclicks++] = optarg;
            break;
        case O_MODE: mode = optarg; break;
        case O_OUT: outp = optarg; break;
        case O_MINDWELL:
            if (parse_double_arg(optarg, 0, 1e9, &o.min_dwell))
                return usage_err(cmd, "--min-dwell must be a number of seconds >= 0", traindata_usage);
            break;
        case O_PROP:
            if (strcmp(optarg, "data") == 0) o.propensity = OPS_TD_PROP_DATA;
            else if (strcmp(optarg, "pbm") == 0) o.propensity = OPS_TD_PROP_PBM;
            else if (strcmp(optarg, "none") == 0) o.propensity = OPS_TD_PROP_NONE;
            else return usage_err(cmd, "--propensity must be data, pbm or none", traindata_usage);
            break;
        case O_ETA:
            if (parse_double_arg(optarg, 0, 100, &o.eta)) return usage_err(cmd, "--eta must be 0..100", traindata_usage);
            break;
        case O_CLIP:
            if (parse_double_arg(optarg, 1e-6, 1, &o.clip) )
                return usage_err(cmd, "--clip must be in (0, 1]", traindata_usage);
            break;
        case O_SMOOTH:
            if (parse_double_arg(optarg, 0, 1e9, &o.smoothing))
                return usage_err(cmd, "--smoothing must be >= 0", traindata_usage);
            break;
        case O_CUTS:
            if (parse_list(optarg, 0, 1e9, o.cuts, 4) || !(o.cuts[0] > 0 && o.cuts[0] <= o.cuts[1] &&
                                                             o.cuts[1] <= o.cuts[2] && o.cuts[2] <= o.cuts[3]))
                return usage_err(cmd, "--cuts takes 4 increasing positive numbers, e.g. 0.05,0.2,0.45,0.75",
                                 traindata_usage);
            break;
        case O_ONERR:
            if (strcmp(optarg, "fail") == 0) in.skip_bad = 0;
            else if (strcmp(optarg, "skip") == 0) in.skip_bad = 1;
            else return usage_err(cmd, "--on-error must be fail or skip", traindata_usage);
            break;
        case 'h': fputs(traindata_usage, stdout); return OPS_EXIT_OK;
        default: fputs(traindata_usage, stderr); return OPS_EXIT_USAGE;
        }
    }
    if (optind != argc || !nimps || !nclicks || !outp || !mode)
        return usage_err(cmd, "--impressions, --clicks, --mode and --out are required", traindata_usage);
    if (strcmp(mode, "pointwise") == 0) o.mode = OPS_TD_POINTWISE;
    else if (strcmp(mode, "pairwise") == 0) o.mode = OPS_TD_PAIRWISE;
    else return usage_err(cmd, "--mode must be pointwise or pairwise", traindata_usage);
    for (size_t i = 0; i < nimps + nclicks; i++)
        if (strcmp(i < nimps ? imps[i] : clicks[i - nimps], outp) == 0)
            return usage_err(cmd, "--out must differ from the inputs", traindata_usage);

    int ret = OPS_EXIT_FAIL, rc;
    fn_errbuf eb = {{0}};
    ops_engage_log *lg = NULL;
    outfile of = {0};
    if ((rc = ops_engage_log_new(&lg)) != 0) goto fail;
    for (size_t i = 0; i < nimps; i++)
        if ((rc = ops_engage_load_impressions(lg, imps[i], &in, &eb)) != 0) goto fail;
    size_t bad_imps = in.skipped;
    in.skipped = 0;
    for (size_t i = 0; i < nclicks; i++)
        if ((rc = ops_engage_load_clicks(lg, clicks[i], &in, &eb)) != 0) goto fail;
    if (out_open(&of, outp, cmd)) goto done;
    ops_traindata_stats st;
    if ((rc = ops_traindata_write(lg, &o, of.f, &st, &eb)) != 0) goto fail;
    if (out_close(&of, 1, cmd)) goto done;
    if (st.clicks_no_dwell && o.min_dwell > 0)
        fprintf(stderr, "%s: note: %zu clicks have no dwell and do not count as satisfied "
                        "(--min-dwell 0 counts every click)\n", cmd, st.clicks_no_dwell);
    if (st.feature_lists > 1)
        fprintf(stderr, "%s: note: the impressions carry %zu different feature lists; the header names "
                        "their union and a row has the features its impression logged\n",
                cmd, st.feature_lists);
    printf("traindata %s: %zu impressions, %zu clicks, %zu queries, %zu rows, %zu features; labels",
           mode, st.impressions, st.clicks, st.queries, st.rows, st.features);
    for (int l = 0; l < 16; l++)
        if (st.labels[l]) printf(" %d%s:%zu", l, l == 15 ? "+" : "", st.labels[l]);
    if (o.mode == OPS_TD_POINTWISE) {
        printf("; propensity %s", o.propensity == OPS_TD_PROP_DATA ? "data" : o.propensity == OPS_TD_PROP_PBM ? "pbm" : "none");
        for (int k = 0; k < 10 && !isnan(st.propensity[k]); k++) printf("%s%.3f", k ? "," : " ", st.propensity[k]);
    } else {
        printf("; %zu preferences, %zu pairs kept, %zu tied, %zu dropped in cycles", st.prefs, st.pairs_kept,
               st.pairs_tied, st.pairs_cycle);
    }
    printf("; %zu documents without a vector; %zu bad impression lines, %zu bad click lines skipped -> %s\n",
           st.no_vector, bad_imps, in.skipped, outp);
    ret = OPS_EXIT_OK;
    goto done;
fail:
    fprintf(stderr, "%s: error: %s\n", cmd, fn_errmsg(&eb, rc));
done:
    out_close(&of, 0, cmd);
    ops_engage_log_free(lg);
    return ret;
}
