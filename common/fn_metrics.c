/* fn_metrics.c - Prometheus registry, text format 0.0.4 and the /metrics
 * endpoint (see fn_metrics.h).
 *
 * Layout: the registry keeps its families in an array sorted by name (so a
 * lookup is a binary search and render needs no sort); each family keeps its
 * series in a list in creation order. The mutex guards only that structure;
 * values are C11 atomics, so updates never take it. */
#include "fn_metrics.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fn_io.h"
#include "fn_log.h"
#include "fn_query.h"   /* fn_utf8_valid */

const double fn_metrics_latency_buckets[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
const size_t fn_metrics_latency_nbuckets =
    sizeof fn_metrics_latency_buckets / sizeof fn_metrics_latency_buckets[0];

enum mtype { MT_COUNTER, MT_GAUGE, MT_HIST };
static const char *const type_name[] = { "counter", "gauge", "histogram" };

/* Every series starts with this header, so one list holds any type. */
typedef struct series {
    struct series *next;
    char *labels;               /* canonical: pairs sorted by name; "" = none */
} series;

struct fn_mcounter {
    series h;
    _Atomic uint64_t v;
};

struct fn_mgauge {
    series h;
    _Atomic uint64_t bits;      /* a double's bits: there is no atomic double add */
};

struct fn_mhist {
    series h;
    size_t nb;
    const double *bounds;       /* the family's copy */
    _Atomic uint64_t sum_bits;
    /* nb + 1 per-bucket (not cumulative) counts, the last one for +Inf.
     * There is no separate count: render derives _count from the buckets it
     * read, so _count always equals the +Inf bucket even mid-update. */
    _Atomic uint64_t b[];
};

typedef struct family {
    char *name, *help;
    enum mtype type;
    double *bounds;             /* histograms: every series shares them */
    size_t nb;
    series *head, **tail;
} family;

struct fn_metrics {
    pthread_mutex_t mu;
    family **fam;               /* sorted by name */
    size_t nfam, capfam;
    struct MHD_Daemon *httpd;
};

/* ---- names and labels ---------------------------------------------------- */

static int name_ok(const char *s, int colon)
{
    if (!s || !*s) return 0;
    for (const char *p = s; *p; p++) {
        int c = (unsigned char)*p;
        if (!(isalpha(c) || c == '_' || (colon && c == ':') || (p > s && isdigit(c)))) return 0;
        if (c >= 0x80) return 0;    /* isalpha is locale-dependent; be explicit */
    }
    return 1;
}

typedef struct lpair {
    const char *name, *val;     /* into the parse copy */
    size_t nlen, vlen;
} lpair;

static int lpair_cmp(const void *a, const void *b)
{
    const lpair *x = a, *y = b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->nlen > y->nlen) - (x->nlen < y->nlen);
}

/* Check `a="1",b="x\"y"` and return it with pairs sorted by name (malloc'd),
 * so that the same set in another order is the same series. NULL on a
 * syntax error, a reserved or duplicate name, or `le` on a histogram. */
static char *labels_canon(const char *in, int hist)
{
    if (!in || !*in) return strdup("");
    size_t cap = 8, n = 0;
    lpair *pv = malloc(cap * sizeof *pv);
    if (!pv) return NULL;
    const char *p = in;
    for (;;) {
        const char *ns = p;
        if (!(isalpha((unsigned char)*p) || *p == '_')) goto bad;
        while (isalnum((unsigned char)*p) || *p == '_') p++;
        size_t nlen = (size_t)(p - ns);
        if (nlen >= 2 && ns[0] == '_' && ns[1] == '_') goto bad;    /* reserved */
        if (hist && nlen == 2 && !memcmp(ns, "le", 2)) goto bad;    /* render adds it */
        if (*p++ != '=' || *p++ != '"') goto bad;
        const char *vs = p;
        while (*p && *p != '"') {
            if (*p == '\n') goto bad;
            if (*p == '\\') {
                if (p[1] != '\\' && p[1] != '"' && p[1] != 'n') goto bad;
                p++;
            }
            p++;
        }
        if (*p != '"' || !fn_utf8_valid(vs, (size_t)(p - vs))) goto bad;  /* the format is UTF-8 */
        if (n == cap) {
            lpair *np = realloc(pv, (cap *= 2) * sizeof *pv);
            if (!np) goto bad;
            pv = np;
        }
        pv[n++] = (lpair){ ns, vs, nlen, (size_t)(p - vs) };
        p++;
        if (!*p) break;
        if (*p++ != ',') goto bad;
    }
    qsort(pv, n, sizeof *pv, lpair_cmp);
    for (size_t i = 1; i < n; i++)
        if (!lpair_cmp(&pv[i - 1], &pv[i])) goto bad;
    char *out = malloc(strlen(in) + 1), *o = out;
    if (!out) goto bad;
    for (size_t i = 0; i < n; i++) {
        if (i) *o++ = ',';
        memcpy(o, pv[i].name, pv[i].nlen);
        o += pv[i].nlen;
        *o++ = '=';
        *o++ = '"';
        memcpy(o, pv[i].val, pv[i].vlen);
        o += pv[i].vlen;
        *o++ = '"';
    }
    *o = '\0';
    free(pv);
    return out;
bad:
    free(pv);
    return NULL;
}

char *fn_metrics_label_escape(const char *v, char *out, size_t cap)
{
    if (!out || !cap) return out;
    size_t o = 0;
    for (const char *p = v ? v : ""; *p;) {
        const char *rep = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
        /* whole UTF-8 characters: a cut one would make the value invalid */
        unsigned char c = (unsigned char)*p;
        size_t k = rep ? 2 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (!rep && k > 1 && strnlen(p, k) < k) break;
        if (o + k >= cap) break;    /* never cut an escape or a character in half */
        memcpy(out + o, rep ? rep : p, k);
        o += k;
        p += rep ? 1 : k;
    }
    out[o] = '\0';
    return out;
}

/* ---- registry ------------------------------------------------------------ */

fn_metrics *fn_metrics_new(void)
{
    fn_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    if (pthread_mutex_init(&m->mu, NULL)) {
        free(m);
        return NULL;
    }
    return m;
}

void fn_metrics_free(fn_metrics *m)
{
    if (!m) return;
    /* The HTTP thread renders the registry: stop it before freeing. */
    if (m->httpd) MHD_stop_daemon(m->httpd);
    for (size_t i = 0; i < m->nfam; i++) {
        family *f = m->fam[i];
        for (series *s = f->head, *nx; s; s = nx) {
            nx = s->next;
            free(s->labels);
            free(s);
        }
        free(f->name);
        free(f->help);
        free(f->bounds);
        free(f);
    }
    free(m->fam);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* Index of name in m->fam, or -(insertion point) - 1. Mutex held. */
static long fam_find(const fn_metrics *m, const char *name)
{
    size_t lo = 0, hi = m->nfam;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->fam[mid]->name, name);
        if (!c) return (long)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -(long)lo - 1;
}

static int has_suffix(const char *s, size_t n, const char *suf)
{
    size_t k = strlen(suf);
    return n > k && !memcmp(s + n - k, suf, k);
}

/* Would a new family `name` of type t print lines that clash with another
 * family's? A histogram foo owns foo_bucket, foo_sum and foo_count. */
static int fam_clashes(const fn_metrics *m, const char *name, enum mtype t)
{
    static const char *const suf[] = { "_bucket", "_sum", "_count" };
    size_t n = strlen(name);
    char buf[512];
    if (n + 8 > sizeof buf) return 1;
    for (size_t i = 0; i < 3; i++) {
        if (t == MT_HIST) {
            memcpy(buf, name, n);
            strcpy(buf + n, suf[i]);
            if (fam_find(m, buf) >= 0) return 1;
        }
        if (has_suffix(name, n, suf[i])) {
            size_t k = n - strlen(suf[i]);
            memcpy(buf, name, k);
            buf[k] = '\0';
            long j = fam_find(m, buf);
            if (j >= 0 && m->fam[j]->type == MT_HIST) return 1;
        }
    }
    return 0;
}

static series *get_or_create(fn_metrics *m, enum mtype t, const char *name, const char *help,
                             const char *labels, const double *bounds, size_t nb)
{
    if (!m) return NULL;
    /* process_* are rendered from /proc at render time (see render_process). */
    if (!name_ok(name, 1) || !strncmp(name, "process_", 8) || strlen(name) > 200) return NULL;
    if (t == MT_HIST) {
        if (nb && !bounds) return NULL;
        for (size_t i = 0; i < nb; i++)
            if (isnan(bounds[i]) || isinf(bounds[i]) || (i && !(bounds[i] > bounds[i - 1])))
                return NULL;
    }
    char *canon = labels_canon(labels, t == MT_HIST);
    if (!canon) return NULL;
    series *out = NULL;
    pthread_mutex_lock(&m->mu);
    long i = fam_find(m, name);
    family *f;
    if (i >= 0) {
        f = m->fam[i];
        /* One type per family; a histogram family has one set of buckets. */
        if (f->type != t) goto done;
        if (t == MT_HIST && (f->nb != nb || (nb && memcmp(f->bounds, bounds, nb * sizeof *bounds))))
            goto done;
        for (series *s = f->head; s; s = s->next)
            if (!strcmp(s->labels, canon)) {
                out = s;
                goto done;
            }
    } else {
        if (fam_clashes(m, name, t)) goto done;
        if (m->nfam == m->capfam) {
            size_t nc = m->capfam ? m->capfam * 2 : 16;
            family **nf = realloc(m->fam, nc * sizeof *nf);
            if (!nf) goto done;
            m->fam = nf;
            m->capfam = nc;
        }
        f = calloc(1, sizeof *f);
        if (!f) goto done;
        f->name = strdup(name);
        f->help = strdup(help ? help : "");
        f->type = t;
        f->nb = nb;
        f->bounds = nb ? malloc(nb * sizeof *bounds) : NULL;
        if (!f->name || !f->help || (nb && !f->bounds)) {
            free(f->name);
            free(f->help);
            free(f->bounds);
            free(f);
            goto done;
        }
        if (nb) memcpy(f->bounds, bounds, nb * sizeof *bounds);
        f->tail = &f->head;
        size_t at = (size_t)(-i - 1);
        memmove(m->fam + at + 1, m->fam + at, (m->nfam - at) * sizeof *m->fam);
        m->fam[at] = f;
        m->nfam++;
    }
    size_t sz = t == MT_COUNTER ? sizeof(fn_mcounter)
              : t == MT_GAUGE   ? sizeof(fn_mgauge)
                                : sizeof(fn_mhist) + (nb + 1) * sizeof(_Atomic uint64_t);
    series *s = calloc(1, sz);
    if (!s) goto done;
    s->labels = canon;
    canon = NULL;
    if (t == MT_HIST) {
        fn_mhist *h = (fn_mhist *)s;
        h->nb = nb;
        h->bounds = f->bounds;
        atomic_init(&h->sum_bits, 0);   /* 0.0 is all-zero bits */
        for (size_t k = 0; k <= nb; k++) atomic_init(&h->b[k], 0);
    }
    *f->tail = s;
    f->tail = &s->next;
    out = s;
done:
    pthread_mutex_unlock(&m->mu);
    free(canon);
    return out;
}

fn_mcounter *fn_metrics_counter(fn_metrics *m, const char *name, const char *help,
                                const char *labels)
{
    return (fn_mcounter *)get_or_create(m, MT_COUNTER, name, help, labels, NULL, 0);
}

fn_mgauge *fn_metrics_gauge(fn_metrics *m, const char *name, const char *help,
                            const char *labels)
{
    return (fn_mgauge *)get_or_create(m, MT_GAUGE, name, help, labels, NULL, 0);
}

fn_mhist *fn_metrics_histogram(fn_metrics *m, const char *name, const char *help,
                               const char *labels, const double *bounds, size_t nb)
{
    return (fn_mhist *)get_or_create(m, MT_HIST, name, help, labels, bounds, nb);
}

/* ---- updates (lock-free) ----------------------------------------------- */

static uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* Add d to a double kept as bits; a CAS loop since there is no atomic
 * floating add. Relaxed: a metric orders nothing else. */
static void atomic_add_double(_Atomic uint64_t *a, double d)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, d2u(u2d(old) + d),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void fn_mcounter_add(fn_mcounter *c, uint64_t n)
{
    if (c) atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

void fn_mgauge_set(fn_mgauge *g, double v)
{
    if (g) atomic_store_explicit(&g->bits, d2u(v), memory_order_relaxed);
}

void fn_mgauge_add(fn_mgauge *g, double d)
{
    if (g) atomic_add_double(&g->bits, d);
}

void fn_mhist_observe(fn_mhist *h, double v)
{
    if (!h || isnan(v)) return;     /* a NaN would poison _sum for good */
    size_t lo = 0, hi = h->nb;      /* first bound >= v (le is inclusive) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->bounds[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    atomic_fetch_add_explicit(&h->b[lo], 1, memory_order_relaxed);
    atomic_add_double(&h->sum_bits, v);
}

/* ---- text format ------------------------------------------------------- */

/* A float as Go's strconv.ParseFloat reads it: the shortest %g that reads
 * back to the same double, and +Inf/-Inf/NaN spelled Prometheus' way. */
static void fmt_double(char *buf, size_t cap, double v)
{
    if (isnan(v)) snprintf(buf, cap, "NaN");
    else if (isinf(v)) snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        snprintf(buf, cap, "%.0f", v);  /* whole numbers (bytes, counts) in full */
    else
        for (int prec = 6; prec <= 17; prec++) {
            snprintf(buf, cap, "%.*g", prec, v);
            if (strtod(buf, NULL) == v) break;
        }
}

static int put_help_type(fn_sbuf *b, const char *name, const char *help, const char *type)
{
    int rc = fn_sbuf_printf(b, "# HELP %s ", name);
    /* HELP escapes backslash and newline only. */
    for (const char *p = help; !rc && *p; p++)
        rc = *p == '\\' ? fn_sbuf_printf(b, "\\\\")
           : *p == '\n' ? fn_sbuf_printf(b, "\\n")
                        : fn_sbuf_printf(b, "%c", *p);
    if (!rc) rc = fn_sbuf_printf(b, "\n# TYPE %s %s\n", name, type);
    return rc;
}

/* "{labels}" or "" */
static int put_series(fn_sbuf *b, const char *name, const char *suffix, const char *labels,
                      const char *value)
{
    if (*labels) return fn_sbuf_printf(b, "%s%s{%s} %s\n", name, suffix, labels, value);
    return fn_sbuf_printf(b, "%s%s %s\n", name, suffix, value);
}

static int render_family(fn_sbuf *b, const family *f)
{
    int rc = put_help_type(b, f->name, f->help, type_name[f->type]);
    char v[64];
    for (const series *s = f->head; s && !rc; s = s->next) {
        if (f->type == MT_COUNTER) {
            snprintf(v, sizeof v, "%" PRIu64,
                     atomic_load_explicit(&((const fn_mcounter *)s)->v, memory_order_relaxed));
            rc = put_series(b, f->name, "", s->labels, v);
        } else if (f->type == MT_GAUGE) {
            fmt_double(v, sizeof v,
                       u2d(atomic_load_explicit(&((const fn_mgauge *)s)->bits,
                                                memory_order_relaxed)));
            rc = put_series(b, f->name, "", s->labels, v);
        } else {
            const fn_mhist *h = (const fn_mhist *)s;
            uint64_t cum = 0;
            char le[64];
            for (size_t k = 0; k <= h->nb && !rc; k++) {
                cum += atomic_load_explicit(&h->b[k], memory_order_relaxed);
                fmt_double(le, sizeof le, k < h->nb ? h->bounds[k] : INFINITY);
                /* le joins the series' own labels inside one pair of braces. */
                rc = fn_sbuf_printf(b, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", f->name,
                                    s->labels, *s->labels ? "," : "", le, cum);
            }
            fmt_double(v, sizeof v,
                       u2d(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)));
            if (!rc) rc = put_series(b, f->name, "_sum", s->labels, v);
            snprintf(v, sizeof v, "%" PRIu64, cum);
            if (!rc) rc = put_series(b, f->name, "_count", s->labels, v);
        }
    }
    return rc;
}

/* The standard process_* families, read from /proc at render time. Each is
 * one entry so render can merge them into the sorted family order. */
typedef struct proc_fam {
    const char *name, *help, *type;
    double v;
    int ok;
} proc_fam;

static void read_process(proc_fam pf[5])
{
    pf[0] = (proc_fam){ "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", 0, 0 };
    pf[1] = (proc_fam){ "process_open_fds", "Number of open file descriptors.", "gauge", 0, 0 };
    pf[2] = (proc_fam){ "process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", 0, 0 };
    pf[3] = (proc_fam){ "process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge", 0, 0 };
    pf[4] = (proc_fam){ "process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", 0, 0 };
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    char buf[2048];
    FILE *fp = fopen("/proc/self/stat", "r");
    size_t n = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;
    if (fp) fclose(fp);
    buf[n] = '\0';
    /* comm may hold spaces and parentheses: fields restart after the last ')'. */
    char *p = strrchr(buf, ')');
    if (p && tck > 0 && page > 0) {
        unsigned long utime = 0, stime = 0, vsize = 0;
        unsigned long long start = 0;
        long rss = 0;
        /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
         * utime stime cutime cstime priority nice threads itrealvalue
         * starttime vsize rss */
        if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d"
                          " %*d %llu %lu %ld", &utime, &stime, &start, &vsize, &rss) == 5) {
            pf[0].v = (double)(utime + stime) / (double)tck;
            pf[0].ok = 1;
            pf[2].v = (double)rss * (double)page;
            pf[2].ok = 1;
            pf[4].v = (double)vsize;
            pf[4].ok = 1;
            FILE *st = fopen("/proc/stat", "r");
            char line[256];
            unsigned long long btime;
            while (st && fgets(line, sizeof line, st))
                if (sscanf(line, "btime %llu", &btime) == 1) {
                    pf[3].v = (double)btime + (double)start / (double)tck;
                    pf[3].ok = 1;
                    break;
                }
            if (st) fclose(st);
        }
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long k = 0;
        for (struct dirent *e; (e = readdir(d));)
            if (e->d_name[0] != '.') k++;
        pf[1].v = (double)(k - 1);  /* less the one opendir itself holds */
        pf[1].ok = 1;
        closedir(d);
    }
}

int fn_metrics_render(fn_metrics *m, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    proc_fam pf[5];
    read_process(pf);
    fn_sbuf b = { 0 };
    int rc = fn_sbuf_printf(&b, "%s", "");   /* an empty registry is "" not NULL */
    if (m) pthread_mutex_lock(&m->mu);
    size_t i = 0, j = 0, nf = m ? m->nfam : 0;
    /* Merge the sorted families with the (sorted) process ones. */
    while (!rc && (i < nf || j < 5)) {
        if (j < 5 && (i == nf || strcmp(pf[j].name, m->fam[i]->name) < 0)) {
            if (pf[j].ok) {
                char v[64];
                fmt_double(v, sizeof v, pf[j].v);
                rc = put_help_type(&b, pf[j].name, pf[j].help, pf[j].type);
                if (!rc) rc = fn_sbuf_printf(&b, "%s %s\n", pf[j].name, v);
            }
            j++;
        } else {
            rc = render_family(&b, m->fam[i++]);
        }
    }
    if (m) pthread_mutex_unlock(&m->mu);
    if (rc) {
        free(b.p);
        return -ENOMEM;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

/* ---- HTTP endpoint ----------------------------------------------------- */

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static enum MHD_Result queue_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                                             MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    fn_metrics *m = cls;
    /* Answer on the first call: a request body, if any, is never read. */
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
        return queue_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (strcmp(url, "/metrics")) return queue_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
    char *text;
    size_t len;
    if (fn_metrics_render(m, &text, &len))
        return queue_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = '\0';    /* fn_log adds its own */
    FN_WARN("metrics http: %s", msg);
}

int fn_metrics_serve(fn_metrics *m, const char *listen, int *port, fn_errbuf *eb)
{
    if (!m || !listen) return fn_seterr(eb, FN_EINVAL, "metrics: no registry or address");
    if (m->httpd) return fn_seterr(eb, FN_EINVAL, "metrics: already serving");
    /* HOST:PORT, [V6]:PORT or :PORT (every address). */
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host || !colon[1])
        return fn_seterr(eb, FN_EINVAL, "metrics listen '%s': want HOST:PORT", listen);
    const char *h = listen;
    size_t hl = (size_t)(colon - listen);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end;
    errno = 0;
    long pn = strtol(colon + 1, &end, 10);
    if (errno || *end || pn < 0 || pn > 65535)
        return fn_seterr(eb, FN_EINVAL, "metrics listen '%s': bad port", listen);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *ai = NULL;
    int gr = getaddrinfo(*host ? host : NULL, colon + 1, &hints, &ai);
    if (gr || !ai)
        return fn_seterr(eb, FN_EINVAL, "metrics listen '%s': %s", listen, gai_strerror(gr));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    /* A scrape is small and quick: a few connections, each for a few
     * seconds at most, so a client that opens many or stalls cannot pin the
     * endpoint (or the process's descriptors). */
    m->httpd = MHD_start_daemon(flags, (uint16_t)pn, NULL, NULL, on_request, m,
                                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,   /* first, or MHD warns */
                                MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
                                MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)8,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                                MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!m->httpd)
        return fn_seterr(eb, FN_EINVAL, "metrics listen '%s': cannot listen (in use?)", listen);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(m->httpd, MHD_DAEMON_INFO_BIND_PORT);
    if (port) *port = di ? (int)di->port : (int)pn;
    return 0;
}
