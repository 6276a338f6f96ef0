/* dataset.c - SVMlight / LETOR / LightGBM (.query) reader.
 *
 * The whole file is read into memory and parsed in one pass into sparse
 * triplets (ids are only known at the end), then scattered into the dense
 * NaN-filled matrix. Hand-rolled id parsing, strtof for values: a few MB
 * parse in a few ms. */
#define _POSIX_C_SOURCE 200809L
#include "dataset.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Whole file, NUL-terminated. */
static int slurp(const char *path, char **buf, size_t *len, fn_errbuf *eb)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return fn_seterr(eb, -e, "%s: %s", path, strerror(e));
    }
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    if (!b) {
        fclose(f);
        return fn_seterr(eb, -ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            char *nb = realloc(b, cap * 2 + 1);
            if (!nb) {
                free(b);
                fclose(f);
                return fn_seterr(eb, -ENOMEM, "%s: out of memory", path);
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(b);
        return fn_seterr(eb, -EIO, "%s: read error", path);
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

/* Growable arrays. */
#define GROW(ptr, cnt, cap, fail)                                              \
    do {                                                                       \
        if ((cnt) >= (cap)) {                                                  \
            size_t nc_ = (cap) ? (cap) * 2 : 256;                              \
            void *np_ = realloc((ptr), nc_ * sizeof(*(ptr)));                  \
            if (!np_)                                                          \
                goto fail;                                                     \
            (ptr) = np_;                                                       \
            (cap) = nc_;                                                       \
        }                                                                      \
    } while (0)

/* String set for "was this qid seen before" (non-contiguous queries). */
typedef struct strset {
    char **slot;
    size_t cap, n;
} strset;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Returns 1 if present, 0 if inserted (set does not own s), -1 on ENOMEM. */
static int strset_add(strset *ss, char *s)
{
    if ((ss->n + 1) * 2 > ss->cap) {
        size_t nc = ss->cap ? ss->cap * 2 : 64;
        char **ns = calloc(nc, sizeof(*ns));
        if (!ns)
            return -1;
        for (size_t i = 0; i < ss->cap; i++) {
            if (!ss->slot[i])
                continue;
            size_t j = hash_str(ss->slot[i]) & (nc - 1);
            while (ns[j])
                j = (j + 1) & (nc - 1);
            ns[j] = ss->slot[i];
        }
        free(ss->slot);
        ss->slot = ns;
        ss->cap = nc;
    }
    size_t j = hash_str(s) & (ss->cap - 1);
    while (ss->slot[j]) {
        if (strcmp(ss->slot[j], s) == 0)
            return 1;
        j = (j + 1) & (ss->cap - 1);
    }
    ss->slot[j] = s;
    ss->n++;
    return 0;
}

static int is_blank(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

static char *skip_blank(char *p)
{
    while (is_blank((unsigned char)*p))
        p++;
    return p;
}

/* End of a token: next blank or NUL. */
static char *tok_end(char *p)
{
    while (*p && !is_blank((unsigned char)*p))
        p++;
    return p;
}

/* Parse a float spanning exactly [p, end). Values are rounded via double,
 * as (float)strtod -- what sklearn's reader + XGBoost's float32 matrix see.
 * Fast path for plain decimals ("0.89", "-12.5"): the digits form an exact
 * integer and 10^k is exact, so one division gives the correctly rounded
 * double, the same as strtod. Anything else goes through strtod. */
static const double pow10_tab[19] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
                                     1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};

static int parse_float(char *p, char *end, float *out)
{
    if (p == end)
        return -1;
    const char *s = p;
    int neg = 0;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    uint64_t mant = 0;
    int digits = 0, frac = 0, seen_dot = 0;
    for (; s < end; s++) {
        if (*s >= '0' && *s <= '9') {
            mant = mant * 10 + (uint64_t)(*s - '0');
            digits++;
            frac += seen_dot;
        } else if (*s == '.' && !seen_dot) {
            seen_dot = 1;
        } else {
            break;
        }
    }
    if (s == end && digits > 0 && digits <= 15) {
        double v = (double)mant / pow10_tab[frac];
        *out = (float)(neg ? -v : v);
        return 0;
    }
    char save = *end;
    *end = '\0';
    char *e;
    errno = 0;
    double v = strtod(p, &e);
    *end = save;
    if (e != end)
        return -1;
    float f = (float)v;
    if (isinf(f) && !isinf(v))
        return -1; /* overflows float */
    *out = f;
    return 0;
}

static int load_groups(const char *gpath, size_t rows, rank_dataset *d, fn_errbuf *eb)
{
    char *buf;
    size_t len;
    int rc = slurp(gpath, &buf, &len, eb);
    if (rc)
        return rc;
    size_t *sizes = NULL, n = 0, cap = 0, total = 0, lineno = 0;
    char *p = buf;
    rc = 0;
    while (*p) {
        char *nl = strchr(p, '\n');
        char *next = nl ? nl + 1 : p + strlen(p);
        if (nl)
            *nl = '\0';
        lineno++;
        char *h = strchr(p, '#');
        if (h)
            *h = '\0';
        char *s = skip_blank(p);
        if (*s) {
            char *e;
            errno = 0;
            unsigned long long v = strtoull(s, &e, 10);
            if (e == s || *skip_blank(e) || errno || v == 0 || *s == '-') {
                rc = fn_seterr(eb, FN_EPARSE, "%s:%zu: bad group size \"%s\" (want a positive integer)",
                               gpath, lineno, s);
                goto out;
            }
            GROW(sizes, n, cap, oom);
            sizes[n++] = (size_t)v;
            total += (size_t)v;
            if (total > rows)
                break;
        }
        p = next;
    }
    if (total != rows) {
        rc = fn_seterr(eb, FN_EPARSE, "%s:%zu: group sizes add up to %s%zu but the data has %zu rows",
                       gpath, lineno, total > rows ? "at least " : "", total, rows);
        goto out;
    }
    d->group = malloc((n + 1) * sizeof(size_t));
    d->qids = calloc(n ? n : 1, sizeof(char *));
    if (!d->group || !d->qids)
        goto oom;
    d->nqueries = n;
    d->group[0] = 0;
    for (size_t q = 0; q < n; q++) {
        d->group[q + 1] = d->group[q] + sizes[q];
        char tmp[32];
        snprintf(tmp, sizeof(tmp), "%zu", q + 1);
        if (!(d->qids[q] = strdup(tmp)))
            goto oom;
    }
    goto out;
oom:
    rc = fn_seterr(eb, -ENOMEM, "%s: out of memory", gpath);
out:
    free(sizes);
    free(buf);
    return rc;
}

static int load_names(const char *npath, rank_dataset *d, size_t fixed, fn_errbuf *eb)
{
    char *buf;
    size_t len;
    int rc = slurp(npath, &buf, &len, eb);
    if (rc)
        return rc;
    char **names = NULL;
    size_t n = 0, cap = 0;
    char *p = buf;
    while (*p) {
        char *nl = strchr(p, '\n');
        char *next = nl ? nl + 1 : p + strlen(p);
        if (nl)
            *nl = '\0';
        char *s = skip_blank(p), *e = s + strlen(s);
        while (e > s && is_blank((unsigned char)e[-1]))
            *--e = '\0';
        GROW(names, n, cap, oom);
        names[n] = NULL;
        if (*s && !(names[n] = strdup(s)))
            goto oom;
        n++;
        if (fixed && n > fixed) {
            rc = fn_seterr(eb, FN_EPARSE, "%s:%zu: more names than the %zu features", npath, n, fixed);
            goto out;
        }
        p = next;
    }
    /* Names define columns too: grow the matrix if they name more features. */
    if (n > d->nfeatures) {
        float *nx = malloc((d->rows ? d->rows : 1) * n * sizeof(float));
        if (!nx)
            goto oom;
        for (size_t r = 0; r < d->rows; r++) {
            memcpy(nx + r * n, d->X + r * d->nfeatures, d->nfeatures * sizeof(float));
            for (size_t c = d->nfeatures; c < n; c++)
                nx[r * n + c] = NAN;
        }
        free(d->X);
        d->X = nx;
        d->nfeatures = n;
    }
    d->feature_names = calloc(d->nfeatures ? d->nfeatures : 1, sizeof(char *));
    if (!d->feature_names)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        d->feature_names[i] = names[i];
        names[i] = NULL;
    }
    goto out;
oom:
    rc = fn_seterr(eb, -ENOMEM, "%s: out of memory", npath);
out:
    for (size_t i = 0; i < n; i++)
        free(names ? names[i] : NULL);
    free(names);
    free(buf);
    return rc;
}

/* Feature names as the header line gives them: [A-Za-z0-9_.]+ (what a model
 * file and the servers' registry accept unchanged). */
static int header_name_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.')
            return 0;
    return 1;
}

/* If line (NUL-terminated, not yet cut at '#') is a "# features: N1 N2 ..."
 * header, return 1 and, when names != NULL, its names (malloc'd) in *names /
 * *n; 0 if it is not a header; FN_EPARSE / -ENOMEM with eb set. */
static int parse_header(const char *path, size_t lineno, const char *line, char ***names, size_t *n,
                        fn_errbuf *eb)
{
    const char *s = line;
    while (is_blank((unsigned char)*s))
        s++;
    if (*s != '#')
        return 0;
    s++;
    while (is_blank((unsigned char)*s))
        s++;
    if (strncmp(s, "features:", 9) != 0)
        return 0;
    s += 9;
    if (!names)
        return 1;
    char **nm = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 1;
    for (;;) {
        while (is_blank((unsigned char)*s))
            s++;
        if (!*s)
            break;
        const char *e = s;
        while (*e && !is_blank((unsigned char)*e))
            e++;
        char *w = strndup(s, (size_t)(e - s));
        if (!w)
            goto oom;
        if (!header_name_ok(w)) {
            rc = fn_seterr(eb, FN_EPARSE, "%s:%zu: bad feature name \"%s\" in the features header (want [A-Za-z0-9_.]+)",
                           path, lineno, w);
            free(w);
            goto out;
        }
        for (size_t i = 0; i < cnt; i++)
            if (strcmp(nm[i], w) == 0) {
                rc = fn_seterr(eb, FN_EPARSE, "%s:%zu: feature name \"%s\" appears twice in the features header (%zu and %zu)",
                               path, lineno, w, i + 1, cnt + 1);
                free(w);
                goto out;
            }
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **nn = realloc(nm, nc * sizeof *nn);
            if (!nn) {
                free(w);
                goto oom;
            }
            nm = nn;
            cap = nc;
        }
        nm[cnt++] = w;
        s = e;
    }
    if (cnt == 0) {
        rc = fn_seterr(eb, FN_EPARSE, "%s:%zu: the features header names no feature", path, lineno);
        goto out;
    }
    *names = nm;
    *n = cnt;
    return 1;
oom:
    rc = fn_seterr(eb, -ENOMEM, "%s: out of memory", path);
out:
    for (size_t i = 0; i < cnt; i++)
        free(nm[i]);
    free(nm);
    return rc;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

int rank_dataset_load(const char *path, const rank_dataset_opts *opts, rank_dataset *out, fn_errbuf *eb)
{
    static const rank_dataset_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    memset(out, 0, sizeof(*out));
    char *buf;
    size_t len;
    int rc = slurp(path, &buf, &len, eb);
    if (rc)
        return rc;

    /* Sparse triplets: row r's entries are ent[rowoff[r] .. rowoff[r+1]). */
    uint32_t *fid = NULL;
    float *val = NULL;
    size_t nent = 0, entcap = 0, valcap = 0;
    size_t *rowoff = NULL, rowcap = 0;
    float *label = NULL;
    size_t labcap = 0;
    size_t rows = 0;
    size_t *group = NULL, gcap = 0, nq = 0;
    char **qids = NULL;
    size_t qcap = 0;
    strset seen = {0};
    int have_qid = -1; /* unknown until the first row */
    uint32_t maxid = 0;
    int any_feature = 0;
    const uint32_t base = opts->zero_based ? 0 : 1;
    char *cur_qid = NULL;
    /* "# features: ..." on line 1 names the columns (a names file wins) */
    char **hnames = NULL;
    size_t nhnames = 0;
    int have_header = 0;
    size_t maxid_line = 0;

    size_t lineno = 0;
    char *p = buf;
    while (*p) {
        char *nl = strchr(p, '\n');
        char *next = nl ? nl + 1 : buf + len;
        if (nl)
            *nl = '\0';
        lineno++;
        if (lineno == 1) {
            rc = parse_header(path, lineno, p, opts->names_file ? NULL : &hnames, &nhnames, eb);
            if (rc < 0)
                goto fail;
            have_header = rc == 1;
            rc = 0;
        } else if (parse_header(path, lineno, p, NULL, NULL, eb) == 1) {
            /* A later header (files concatenated) must agree with line 1's. */
            char **again = NULL;
            size_t nagain = 0;
            int same = have_header;
            if (!opts->names_file) {
                rc = parse_header(path, lineno, p, &again, &nagain, eb);
                if (rc != 1)
                    goto fail;
                same = have_header && nagain == nhnames;
                for (size_t i = 0; same && i < nagain; i++)
                    same = strcmp(again[i], hnames[i]) == 0;
                free_names(again, nagain);
            }
            if (!same) {
                rc = fn_seterr(eb, FN_EPARSE, "%s:%zu: a features header %s", path, lineno,
                               have_header ? "that differs from line 1's" : "must be the first line");
                goto fail;
            }
            p = next;
            continue;
        }
        char *h = strchr(p, '#');
        if (h)
            *h = '\0';
        char *s = skip_blank(p);
        if (!*s) {
            p = next;
            continue;
        }
        /* label */
        char *e = tok_end(s);
        float lab;
        if (parse_float(s, e, &lab) || isnan(lab)) {
            *e = '\0';
            rc = fn_seterr(eb, FN_EPARSE, "%s:%zu: bad label \"%s\"", path, lineno, s);
            goto fail;
        }
        GROW(label, rows, labcap, oom);
        GROW(rowoff, rows + 1, rowcap, oom);
        label[rows] = lab;
        rowoff[rows] = nent;
        s = skip_blank(e);
        /* optional qid */
        int row_has_qid = 0;
        if (strncmp(s, "qid:", 4) == 0) {
            char *q = s + 4;
            e = tok_end(q);
            if (e == q) {
                rc = fn_seterr(eb, FN_EPARSE, "%s:%zu: empty qid", path, lineno);
                goto fail;
            }
            char save = *e;
            *e = '\0';
            row_has_qid = 1;
            if (!cur_qid || strcmp(cur_qid, q) != 0) {
                char *key = strdup(q);
                if (!key)
                    goto oom;
                int r = strset_add(&seen, key);
                if (r != 0) {
                    free(key);
                    if (r < 0)
                        goto oom;
                    rc = fn_seterr(eb, FN_EPARSE,
                                   "%s:%zu: rows of query %s are not contiguous (it appeared earlier)",
                                   path, lineno, q);
                    goto fail;
                }
                GROW(qids, nq, qcap, oom);
                GROW(group, nq + 1, gcap, oom);
                if (!(qids[nq] = strdup(q)))
                    goto oom;
                group[nq] = rows;
                cur_qid = qids[nq];
                nq++;
            }
            *e = save;
            s = skip_blank(e);
        }
        if (have_qid < 0)
            have_qid = row_has_qid;
        else if (have_qid != row_has_qid) {
            rc = fn_seterr(eb, FN_EPARSE, "%s:%zu: %s qid: token (other rows %s)", path, lineno,
                           row_has_qid ? "unexpected" : "missing", have_qid ? "have one" : "have none");
            goto fail;
        }
        /* features: all fid:value, or all bare values (dense, ids implied) */
        long long prev = -1;
        int mode = 0; /* 1 sparse, 2 dense */
        uint32_t nextid = base;
        while (*s) {
            e = tok_end(s);
            char *colon = memchr(s, ':', (size_t)(e - s));
            uint32_t id;
            char *vs;
            if (colon) {
                if (mode == 2)
                    goto mixed;
                mode = 1;
                uint64_t v = 0;
                char *d = s;
                while (d < colon && *d >= '0' && *d <= '9' && v <= UINT32_MAX)
                    v = v * 10 + (uint64_t)(*d++ - '0');
                if (d != colon || d == s || v >= UINT32_MAX) {
                    *colon = '\0';
                    rc = fn_seterr(eb, FN_EPARSE, "%s:%zu: bad feature id \"%s\"", path, lineno, s);
                    goto fail;
                }
                id = (uint32_t)v;
                vs = colon + 1;
            } else {
                if (mode == 1)
                    goto mixed;
                mode = 2;
                id = nextid++;
                vs = s;
            }
            if (id < base) {
                rc = fn_seterr(eb, FN_EPARSE, "%s:%zu: feature id 0 in a 1-based file (use zero-based ids option)",
                               path, lineno);
                goto fail;
            }
            if ((long long)id <= prev) {
                rc = fn_seterr(eb, FN_EPARSE, "%s:%zu: feature ids not increasing (%u after %lld)", path,
                               lineno, id, prev);
                goto fail;
            }
            prev = id;
            if (opts->nfeatures && (size_t)(id - base) >= opts->nfeatures) {
                rc = fn_seterr(eb, FN_EPARSE, "%s:%zu: feature id %u beyond the %zu features", path, lineno,
                               id, opts->nfeatures);
                goto fail;
            }
            float v;
            if (parse_float(vs, e, &v)) {
                *e = '\0';
                rc = fn_seterr(eb, FN_EPARSE, "%s:%zu: bad value in \"%s\"", path, lineno, s);
                goto fail;
            }
            GROW(fid, nent, entcap, oom);
            GROW(val, nent, valcap, oom);
            fid[nent] = id - base;
            val[nent] = v;
            nent++;
            if (id > maxid || !any_feature) {
                maxid = id > maxid ? id : maxid;
                maxid_line = lineno;
            }
            any_feature = 1;
            s = skip_blank(e);
        }
        rows++;
        p = next;
        continue;
    mixed:
        rc = fn_seterr(eb, FN_EPARSE, "%s:%zu: mixed fid:value and bare values on one line", path, lineno);
        goto fail;
    }
    GROW(rowoff, rows + 1, rowcap, oom);
    rowoff[rows] = nent;

    size_t ncols = any_feature ? (size_t)(maxid - base) + 1 : 0;
    if (have_header && hnames) {
        /* The header must name every column of the data: a feature id past
         * it means the header belongs to another file. Fewer columns are
         * fine: sparse rows leave missing values out, so the last features
         * may be missing everywhere (e.g. a feature that did not run). An
         * empty file takes its width from the header. */
        if (rows > 0 && ncols > nhnames) {
            rc = fn_seterr(eb, FN_EPARSE, "%s:1: the features header names %zu features but the data has %zu "
                           "columns (feature id %u on line %zu)", path, nhnames, ncols, maxid, maxid_line);
            goto fail;
        }
        if (opts->nfeatures && opts->nfeatures < nhnames) {
            rc = fn_seterr(eb, FN_EPARSE, "%s:1: the features header names %zu features, more than the %zu wanted",
                           path, nhnames, opts->nfeatures);
            goto fail;
        }
        ncols = nhnames;
    }
    size_t nf = opts->nfeatures ? opts->nfeatures : ncols;
    out->rows = rows;
    out->nfeatures = nf;
    out->label = label;
    label = NULL;
    out->X = malloc((rows ? rows : 1) * (nf ? nf : 1) * sizeof(float));
    if (!out->X)
        goto oom;
    for (size_t i = 0; i < rows * nf; i++)
        out->X[i] = NAN;
    for (size_t r = 0; r < rows; r++)
        for (size_t k = rowoff[r]; k < rowoff[r + 1]; k++)
            out->X[r * nf + fid[k]] = val[k];

    /* groups: explicit file, FILE.query, or qid: tokens */
    char *auto_q = NULL;
    const char *gpath = opts->group_file;
    if (!gpath) {
        size_t pl = strlen(path);
        auto_q = malloc(pl + 7);
        if (!auto_q)
            goto oom;
        memcpy(auto_q, path, pl);
        memcpy(auto_q + pl, ".query", 7);
        struct stat st;
        if (stat(auto_q, &st) == 0)
            gpath = auto_q;
    }
    if (gpath) {
        rc = load_groups(gpath, rows, out, eb);
        free(auto_q);
        if (rc)
            goto fail;
    } else {
        free(auto_q);
        if (have_qid == 1) {
            GROW(group, nq + 1, gcap, oom);
            group[nq] = rows;
            out->nqueries = nq;
            out->group = group;
            out->qids = qids;
            group = NULL;
            qids = NULL;
            nq = 0;
        }
    }
    if (opts->names_file) {
        rc = load_names(opts->names_file, out, opts->nfeatures, eb);
        if (rc)
            goto fail;
    } else if (hnames) {
        out->feature_names = calloc(nf ? nf : 1, sizeof(char *));
        if (!out->feature_names)
            goto oom;
        for (size_t i = 0; i < nhnames; i++) {
            out->feature_names[i] = hnames[i];
            hnames[i] = NULL;
        }
    }
    rc = 0;
    goto done;

oom:
    rc = fn_seterr(eb, -ENOMEM, "%s: out of memory", path);
fail:
    rank_dataset_free(out);
done:
    free_names(hnames, nhnames);
    if (seen.slot) {
        for (size_t i = 0; i < seen.cap; i++)
            free(seen.slot[i]);
        free(seen.slot);
    }
    for (size_t i = 0; qids && i < nq; i++)
        free(qids[i]);
    free(qids);
    free(group);
    free(fid);
    free(val);
    free(rowoff);
    free(label);
    free(buf);
    return rc;
}

void rank_dataset_free(rank_dataset *d)
{
    if (!d)
        return;
    if (d->qids)
        for (size_t q = 0; q < d->nqueries; q++)
            free(d->qids[q]);
    if (d->feature_names)
        for (size_t i = 0; i < d->nfeatures; i++)
            free(d->feature_names[i]);
    free(d->qids);
    free(d->feature_names);
    free(d->group);
    free(d->X);
    free(d->label);
    memset(d, 0, sizeof(*d));
}

int rank_dataset_subset(const rank_dataset *d, const size_t *queries, size_t nq, rank_dataset *out)
{
    memset(out, 0, sizeof(*out));
    if (!d || (nq && !queries))
        return FN_EINVAL;
    size_t rows = 0, F = d->nfeatures;
    for (size_t k = 0; k < nq; k++) {
        if (queries[k] >= d->nqueries)
            return FN_EINVAL;
        rows += d->group[queries[k] + 1] - d->group[queries[k]];
    }
    out->rows = rows;
    out->nfeatures = F;
    out->nqueries = nq;
    out->X = malloc((rows ? rows : 1) * (F ? F : 1) * sizeof(float));
    out->label = malloc((rows ? rows : 1) * sizeof(float));
    out->group = malloc((nq + 1) * sizeof(size_t));
    if (!out->X || !out->label || !out->group)
        goto oom;
    if (d->qids && !(out->qids = calloc(nq ? nq : 1, sizeof(char *))))
        goto oom;
    if (d->feature_names) {
        if (!(out->feature_names = calloc(F ? F : 1, sizeof(char *))))
            goto oom;
        for (size_t i = 0; i < F; i++)
            if (d->feature_names[i] && !(out->feature_names[i] = strdup(d->feature_names[i])))
                goto oom;
    }
    size_t r = 0;
    out->group[0] = 0;
    for (size_t k = 0; k < nq; k++) {
        size_t b = d->group[queries[k]], e = d->group[queries[k] + 1];
        memcpy(out->X + r * F, d->X + b * F, (e - b) * F * sizeof(float));
        memcpy(out->label + r, d->label + b, (e - b) * sizeof(float));
        r += e - b;
        out->group[k + 1] = r;
        if (out->qids && d->qids[queries[k]] && !(out->qids[k] = strdup(d->qids[queries[k]])))
            goto oom;
    }
    return 0;
oom:
    rank_dataset_free(out);
    return -ENOMEM;
}
