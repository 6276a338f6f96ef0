/* model.c - building models, the text model format (load/save), introspection.
 *
 * Format (model.h, docs/ltr.md): thresholds are floats and print with %.9g
 * (float-exact); leaf values, base_score, bias and weights are doubles and
 * print with %.17g so that save -> load -> save is byte-identical and scores
 * are bit-identical. The parser is strict: fixed line order, exact token
 * counts, every number fully consumed; errors are "FILE:LINE: reason". */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_int.h"

static int valid_objective(const char *o)
{
    return !strcmp(o, "lambdarank") || !strcmp(o, "binary") || !strcmp(o, "logistic") ||
           !strcmp(o, "regression");
}

int rank_model_new(enum rank_model_kind kind, const char *objective, size_t nfeatures, rank_model_t **out)
{
    if (!out || !objective || !valid_objective(objective) || (kind != RANK_MODEL_TREES && kind != RANK_MODEL_LINEAR) ||
        nfeatures > INT32_MAX)
        return FN_EINVAL;
    rank_model_t *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->kind = kind;
    snprintf(m->objective, sizeof(m->objective), "%s", objective);
    m->nfeatures = nfeatures;
    *out = m;
    return 0;
}

/* Checks one tree; returns NULL if valid, else a reason and *bad = node. */
static const char *check_tree(const rank_node *nodes, size_t n, size_t nfeatures, size_t *bad, size_t *depth)
{
    *bad = 0;
    if (n == 0)
        return "empty tree";
    if (n > INT32_MAX)
        return "too many nodes";
    uint8_t *parents = calloc(n, 1);
    size_t *stack = malloc(n * sizeof(size_t) * 2);
    const char *why = NULL;
    if (!parents || !stack) {
        why = "out of memory";
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const rank_node *x = &nodes[i];
        *bad = i;
        if (x->feature < 0) {
            if (x->feature != -1) {
                why = "bad feature";
                goto out;
            }
            if (!isfinite(x->value)) {
                why = "leaf value not finite";
                goto out;
            }
            continue;
        }
        if ((size_t)x->feature >= nfeatures) {
            why = "feature out of range";
            goto out;
        }
        if (isnan(x->threshold)) {
            why = "threshold is NaN";
            goto out;
        }
        if (x->left <= 0 || x->right <= 0 || (size_t)x->left >= n || (size_t)x->right >= n) {
            why = "child out of range";
            goto out;
        }
        if (x->left == x->right) {
            why = "both children are the same node";
            goto out;
        }
        if (parents[x->left]++ || parents[x->right]++) {
            why = "node has two parents";
            goto out;
        }
    }
    /* Every non-root node has one parent and the root none; reachability from
     * the root rules out detached cycles. Depth by DFS. */
    size_t sp = 0, seen = 0, maxd = 0;
    stack[sp++] = 0;
    stack[sp++] = 0;
    while (sp) {
        size_t d = stack[--sp], i = stack[--sp];
        seen++;
        if (d > maxd)
            maxd = d;
        if (nodes[i].feature >= 0) {
            if (sp + 4 > 2 * n) {
                why = "cycle";
                goto out;
            }
            stack[sp++] = (size_t)nodes[i].left;
            stack[sp++] = d + 1;
            stack[sp++] = (size_t)nodes[i].right;
            stack[sp++] = d + 1;
        }
    }
    if (seen != n) {
        for (size_t i = 1; i < n; i++)
            if (!parents[i]) {
                *bad = i;
                break;
            }
        why = "node not reachable from the root (cycle or orphan)";
        goto out;
    }
    *depth = maxd;
out:
    free(parents);
    free(stack);
    return why;
}

int rank_model_add_tree(rank_model_t *m, const rank_node *nodes, size_t n)
{
    if (!m || m->kind != RANK_MODEL_TREES || m->finalized || !nodes)
        return FN_EINVAL;
    size_t bad, depth = 0;
    const char *why = check_tree(nodes, n, m->nfeatures, &bad, &depth);
    if (why)
        return strcmp(why, "out of memory") ? FN_EINVAL : -ENOMEM;
    if (m->ntrees == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 64;
        rank_tree *nt = realloc(m->trees, nc * sizeof(*nt));
        if (!nt)
            return -ENOMEM;
        m->trees = nt;
        m->cap = nc;
    }
    rank_node *copy = malloc(n * sizeof(*copy));
    if (!copy)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        copy[i] = nodes[i];
        if (copy[i].feature < 0) { /* canonical leaves: compare equal after a round trip */
            copy[i].threshold = 0;
            copy[i].left = copy[i].right = -1;
            copy[i].missing_left = 0;
        } else {
            copy[i].value = 0;
            copy[i].missing_left = copy[i].missing_left ? 1 : 0;
        }
    }
    m->trees[m->ntrees].nodes = copy;
    m->trees[m->ntrees].n = n;
    m->trees[m->ntrees].depth = depth;
    m->ntrees++;
    return 0;
}

void rank_model_set_base_score(rank_model_t *m, double base)
{
    if (m && !m->finalized)
        m->base_score = base;
}

int rank_model_set_linear(rank_model_t *m, const double *weights, double bias)
{
    if (!m || m->kind != RANK_MODEL_LINEAR || m->finalized || (!weights && m->nfeatures))
        return FN_EINVAL;
    double *w = calloc(m->nfeatures ? m->nfeatures : 1, sizeof(double));
    if (!w)
        return -ENOMEM;
    for (size_t i = 0; i < m->nfeatures; i++) {
        if (!isfinite(weights[i])) {
            free(w);
            return FN_EINVAL;
        }
        w[i] = weights[i];
    }
    free(m->weights);
    m->weights = w;
    m->bias = bias;
    return 0;
}

int rank_model_set_linear_part(rank_model_t *m, const double *weights)
{
    if (!m || m->kind != RANK_MODEL_TREES || m->finalized)
        return FN_EINVAL;
    double *w = NULL;
    if (weights) {
        if (!(w = calloc(m->nfeatures ? m->nfeatures : 1, sizeof(double))))
            return -ENOMEM;
        for (size_t i = 0; i < m->nfeatures; i++) {
            if (!isfinite(weights[i])) {
                free(w);
                return FN_EINVAL;
            }
            w[i] = weights[i];
        }
    }
    free(m->weights);
    m->weights = w;
    return 0;
}

/* Sparse (column, weight) list of a tree model's linear part. */
static int compile_linear_part(rank_model_t *m)
{
    free(m->lin_col);
    free(m->lin_w);
    m->lin_col = NULL;
    m->lin_w = NULL;
    m->nlin = 0;
    if (m->kind != RANK_MODEL_TREES || !m->weights)
        return 0;
    size_t k = 0;
    for (size_t i = 0; i < m->nfeatures; i++)
        k += m->weights[i] != 0;
    if (!k)
        return 0;
    m->lin_col = malloc(k * sizeof *m->lin_col);
    m->lin_w = malloc(k * sizeof *m->lin_w);
    if (!m->lin_col || !m->lin_w)
        return -ENOMEM;
    for (size_t i = 0; i < m->nfeatures; i++)
        if (m->weights[i] != 0) {
            m->lin_col[m->nlin] = (uint32_t)i;
            m->lin_w[m->nlin++] = m->weights[i];
        }
    return 0;
}

void rank__score_add_linear(const rank_model_t *m, const float *X, size_t n, size_t stride, double *out)
{
    if (!m->nlin)
        return;
    for (size_t r = 0; r < n; r++) {
        const float *x = X + r * stride;
        double s = out[r];
        for (size_t k = 0; k < m->nlin; k++) {
            float v = x[m->lin_col[k]];
            if (!isnan(v)) /* missing counts as 0, as in linear models */
                s += m->lin_w[k] * (double)v;
        }
        out[r] = s;
    }
}

/* Names must survive "feature I NAME" lines unchanged. */
static int valid_name(const char *s)
{
    if (!*s || s[0] == ' ' || s[0] == '\t')
        return 0;
    size_t l = strlen(s);
    if (s[l - 1] == ' ' || s[l - 1] == '\t')
        return 0;
    for (; *s; s++)
        if (*s == '\n' || *s == '\r')
            return 0;
    return 1;
}

int rank_model_set_feature_names(rank_model_t *m, const char *const *names, size_t n)
{
    if (!m || m->finalized || n > m->nfeatures || (n && !names))
        return FN_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (names[i] && !valid_name(names[i]))
            return FN_EINVAL;
    char **nn = calloc(m->nfeatures ? m->nfeatures : 1, sizeof(char *));
    if (!nn)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (names[i] && !(nn[i] = strdup(names[i]))) {
            for (size_t j = 0; j < i; j++)
                free(nn[j]);
            free(nn);
            return -ENOMEM;
        }
    }
    if (m->names)
        for (size_t i = 0; i < m->nfeatures; i++)
            free(m->names[i]);
    free(m->names);
    m->names = nn;
    return 0;
}

int rank_model_finalize(rank_model_t *m)
{
    if (!m || m->finalized)
        return FN_EINVAL;
    if (m->kind == RANK_MODEL_LINEAR && !m->weights) {
        m->weights = calloc(m->nfeatures ? m->nfeatures : 1, sizeof(double));
        if (!m->weights)
            return -ENOMEM;
    }
    int rc = compile_linear_part(m);
    if (rc == 0)
        rc = rank_score_compile(m);
    if (rc)
        return rc;
    m->finalized = 1;
    return 0;
}

void rank_model_free(rank_model_t *m)
{
    if (!m)
        return;
    rank_score_release(m);
    for (size_t t = 0; t < m->ntrees; t++)
        free(m->trees[t].nodes);
    free(m->trees);
    if (m->names)
        for (size_t i = 0; i < m->nfeatures; i++)
            free(m->names[i]);
    free(m->names);
    free(m->weights);
    free(m->lin_col);
    free(m->lin_w);
    free(m);
}

/* ---- introspection ---- */
enum rank_model_kind rank_model_kind(const rank_model_t *m) { return m->kind; }
const char *rank_model_objective(const rank_model_t *m) { return m->objective; }
size_t rank_model_nfeatures(const rank_model_t *m) { return m->nfeatures; }
size_t rank_model_ntrees(const rank_model_t *m) { return m->ntrees; }
double rank_model_base_score(const rank_model_t *m) { return m->base_score; }

double rank_model_bias(const rank_model_t *m) { return m->kind == RANK_MODEL_LINEAR ? m->bias : 0.0; }

double rank_model_weight(const rank_model_t *m, size_t i)
{
    return (m->weights && i < m->nfeatures) ? m->weights[i] : 0.0;
}

size_t rank_model_nweights(const rank_model_t *m)
{
    size_t k = 0;
    for (size_t i = 0; m->weights && i < m->nfeatures; i++)
        k += m->weights[i] != 0;
    return k;
}

size_t rank_model_max_depth(const rank_model_t *m)
{
    size_t d = 0;
    for (size_t t = 0; t < m->ntrees; t++)
        if (m->trees[t].depth > d)
            d = m->trees[t].depth;
    return d;
}

size_t rank_model_nleaves(const rank_model_t *m)
{
    size_t l = 0;
    for (size_t t = 0; t < m->ntrees; t++)
        for (size_t i = 0; i < m->trees[t].n; i++)
            l += m->trees[t].nodes[i].feature < 0;
    return l;
}

const char *rank_model_feature_name(const rank_model_t *m, size_t i)
{
    return (m->names && i < m->nfeatures) ? m->names[i] : NULL;
}

long rank_model_feature_index(const rank_model_t *m, const char *name)
{
    if (!m->names || !name)
        return -1;
    for (size_t i = 0; i < m->nfeatures; i++)
        if (m->names[i] && !strcmp(m->names[i], name))
            return (long)i;
    return -1;
}

const rank_node *rank_model_tree(const rank_model_t *m, size_t t, size_t *n)
{
    if (t >= m->ntrees) {
        if (n)
            *n = 0;
        return NULL;
    }
    if (n)
        *n = m->trees[t].n;
    return m->trees[t].nodes;
}

/* ---- save ---- */
int rank_model_save(const rank_model_t *m, const char *path, fn_errbuf *eb)
{
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 32);
    if (!tmp)
        return fn_seterr(eb, -ENOMEM, "%s: out of memory", path);
    snprintf(tmp, pl + 32, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        int e = errno;
        free(tmp);
        return fn_seterr(eb, -e, "%s: %s", path, strerror(e));
    }
    fprintf(f, "funnel-model %d\n", RANK_MODEL_VERSION);
    fprintf(f, "kind %s\n", m->kind == RANK_MODEL_TREES ? "trees" : "linear");
    fprintf(f, "objective %s\n", m->objective);
    fprintf(f, "features %zu\n", m->nfeatures);
    for (size_t i = 0; m->names && i < m->nfeatures; i++)
        if (m->names[i])
            fprintf(f, "feature %zu %s\n", i, m->names[i]);
    fprintf(f, "base_score %.17g\n", m->base_score);
    if (m->kind == RANK_MODEL_TREES) {
        fprintf(f, "trees %zu\n", m->ntrees);
        for (size_t t = 0; t < m->ntrees; t++) {
            const rank_tree *tr = &m->trees[t];
            fprintf(f, "tree %zu nodes %zu\n", t, tr->n);
            for (size_t i = 0; i < tr->n; i++) {
                const rank_node *x = &tr->nodes[i];
                if (x->feature < 0)
                    fprintf(f, "node %zu leaf %.17g\n", i, x->value);
                else
                    fprintf(f, "node %zu split %d %.9g %d %d %c\n", i, x->feature, (double)x->threshold,
                            x->left, x->right, x->missing_left ? 'L' : 'R');
            }
        }
    } else {
        fprintf(f, "bias %.17g\n", m->bias);
    }
    /* linear models' weights, or a tree model's linear part */
    for (size_t i = 0; i < m->nfeatures; i++)
        if (m->weights && m->weights[i] != 0)
            fprintf(f, "weight %zu %.17g\n", i, m->weights[i]);
    fprintf(f, "end\n");
    int bad = ferror(f);
    bad |= fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        int e = errno ? errno : EIO;
        unlink(tmp);
        free(tmp);
        return fn_seterr(eb, -e, "%s: write failed: %s", path, strerror(e));
    }
    free(tmp);
    return 0;
}

/* ---- load ---- */
typedef struct reader {
    FILE *f;
    const char *path;
    size_t lineno;
    char *line;
    size_t cap;
    char *tok[16];
    int ntok;
    char *rest;          /* copy of the text after the first two tokens (feature names) */
    size_t restcap;
} reader;

/* Next non-blank, non-comment line split into tokens; 0 at EOF, 1 ok; ENOMEM
 * is reported as EOF. */
static int next_line(reader *r)
{
    for (;;) {
        ssize_t len = getline(&r->line, &r->cap, r->f);
        if (len < 0)
            return 0;
        r->lineno++;
        while (len > 0 && (r->line[len - 1] == '\n' || r->line[len - 1] == '\r'))
            r->line[--len] = '\0';
        char *p = r->line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#')
            continue;
        /* keep "the rest after two tokens" before tokenising (feature names) */
        char *q = p;
        for (int k = 0; k < 2; k++) {
            while (*q && *q != ' ' && *q != '\t')
                q++;
            while (*q == ' ' || *q == '\t')
                q++;
        }
        size_t rl = strlen(q);
        if (rl + 1 > r->restcap) {
            char *nb = realloc(r->rest, rl + 1);
            if (!nb)
                return 0; /* reported as an unexpected end of file */
            r->rest = nb;
            r->restcap = rl + 1;
        }
        memcpy(r->rest, q, rl + 1);
        r->ntok = 0;
        while (*p && r->ntok < 16) {
            r->tok[r->ntok++] = p;
            while (*p && *p != ' ' && *p != '\t')
                p++;
            if (!*p)
                break;
            *p++ = '\0';
            while (*p == ' ' || *p == '\t')
                p++;
        }
        if (*p) /* more than 16 tokens: make the count check fail */
            r->ntok = 99;
        return 1;
    }
}

static int parse_size(const char *s, size_t *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (*e || errno || v > SIZE_MAX / 2)
        return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (e == s || *e || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_thr(const char *s, float *out)
{
    char *e;
    float v = strtof(s, &e);
    if (e == s || *e || isnan(v))
        return -1;
    *out = v;
    return 0;
}

#define PERR(...) do { rc = fn_seterr(eb, FN_EPARSE, __VA_ARGS__); goto fail; } while (0)

/* Expect a line "KEY VALUE" and return VALUE. */
static const char *expect(reader *r, const char *key, int ntok)
{
    if (!next_line(r) || r->ntok != ntok || strcmp(r->tok[0], key) != 0)
        return NULL;
    return r->tok[1];
}

int rank_model_load(const char *path, rank_model_t **out, fn_errbuf *eb)
{
    *out = NULL;
    reader r = {.path = path};
    r.f = fopen(path, "r");
    if (!r.f) {
        int e = errno;
        return fn_seterr(eb, -e, "%s: %s", path, strerror(e));
    }
    /* what the file can hold bounds what it may make us allocate: a pushed
     * model's header must not ask for gigabytes (found by fuzz_rankmodel) */
    struct stat fst;
    off_t fsize = fstat(fileno(r.f), &fst) == 0 && S_ISREG(fst.st_mode) ? fst.st_size : 0;
    int rc;
    rank_model_t *m = NULL;
    rank_node *nodes = NULL;
    size_t *nline = NULL;
    char **names = NULL;
    size_t nf = 0;
    double *w = NULL, bias = 0;

    if (!next_line(&r) || r.ntok != 2 || strcmp(r.tok[0], "funnel-model") != 0)
        PERR("%s:%zu: not a funnel model (want \"funnel-model %d\")", path, r.lineno, RANK_MODEL_VERSION);
    size_t ver;
    if (parse_size(r.tok[1], &ver))
        PERR("%s:%zu: bad version \"%s\"", path, r.lineno, r.tok[1]);
    if (ver != RANK_MODEL_VERSION) {
        rc = fn_seterr(eb, FN_EVERSION, "%s:%zu: model format version %zu, this build reads %d", path,
                       r.lineno, ver, RANK_MODEL_VERSION);
        goto fail;
    }
    const char *v = expect(&r, "kind", 2);
    enum rank_model_kind kind;
    if (v && !strcmp(v, "trees"))
        kind = RANK_MODEL_TREES;
    else if (v && !strcmp(v, "linear"))
        kind = RANK_MODEL_LINEAR;
    else
        PERR("%s:%zu: want \"kind trees|linear\"", path, r.lineno);
    v = expect(&r, "objective", 2);
    if (!v || !valid_objective(v))
        PERR("%s:%zu: want \"objective lambdarank|binary|logistic|regression\"", path, r.lineno);
    char objective[32];
    snprintf(objective, sizeof(objective), "%s", v);
    v = expect(&r, "features", 2);
    if (!v || parse_size(v, &nf) || nf > INT32_MAX)
        PERR("%s:%zu: want \"features N\"", path, r.lineno);
    if (nf > RANK_MODEL_MAX_FEATURES)
        PERR("%s:%zu: features %zu: more than %d", path, r.lineno, nf, RANK_MODEL_MAX_FEATURES);
    rc = rank_model_new(kind, objective, nf, &m);
    if (rc)
        goto fail;
    names = calloc(nf ? nf : 1, sizeof(char *));
    if (!names)
        goto oom;
    /* feature lines, then base_score */
    long last = -1;
    for (;;) {
        if (!next_line(&r))
            PERR("%s:%zu: unexpected end of file (want base_score)", path, r.lineno);
        if (!strcmp(r.tok[0], "feature")) {
            size_t i;
            if (r.ntok < 3 || parse_size(r.tok[1], &i) || i >= nf || (long)i <= last)
                PERR("%s:%zu: want \"feature I NAME\" with I increasing and < %zu", path, r.lineno, nf);
            last = (long)i;
            if (!(names[i] = strdup(r.rest)))
                goto oom;
            continue;
        }
        break;
    }
    if (r.ntok != 2 || strcmp(r.tok[0], "base_score") || parse_double(r.tok[1], &m->base_score))
        PERR("%s:%zu: want \"base_score VALUE\"", path, r.lineno);
    if (last >= 0 && (rc = rank_model_set_feature_names(m, (const char *const *)names, nf)) != 0)
        PERR("%s:%zu: bad feature name", path, r.lineno);

    if (kind == RANK_MODEL_TREES) {
        size_t nt;
        v = expect(&r, "trees", 2);
        if (!v || parse_size(v, &nt))
            PERR("%s:%zu: want \"trees N\"", path, r.lineno);
        for (size_t t = 0; t < nt; t++) {
            size_t id, n;
            if (!next_line(&r) || r.ntok != 4 || strcmp(r.tok[0], "tree") || strcmp(r.tok[2], "nodes") ||
                parse_size(r.tok[1], &id) || parse_size(r.tok[3], &n))
                PERR("%s:%zu: want \"tree %zu nodes N\"", path, r.lineno, t);
            if (id != t)
                PERR("%s:%zu: tree %zu out of order (want %zu)", path, r.lineno, id, t);
            if (n == 0 || n > (1u << 24))
                PERR("%s:%zu: bad node count %zu", path, r.lineno, n);
            /* every node is a line of at least "node 0 leaf 0\n" */
            long here = ftell(r.f);
            if (fsize > 0 && here >= 0 && n > (size_t)(fsize - here) / 14 + 1)
                PERR("%s:%zu: tree %zu has %zu nodes, more than the rest of the file (%lld bytes) holds", path,
                     r.lineno, t, n, (long long)(fsize - here));
            free(nodes);
            free(nline);
            nodes = calloc(n, sizeof(*nodes));
            nline = calloc(n, sizeof(*nline));
            if (!nodes || !nline)
                goto oom;
            for (size_t i = 0; i < n; i++) {
                size_t nid;
                if (!next_line(&r) || r.ntok < 3 || strcmp(r.tok[0], "node") || parse_size(r.tok[1], &nid))
                    PERR("%s:%zu: want \"node %zu ...\" (tree %zu has %zu nodes)", path, r.lineno, i, t, n);
                if (nid != i)
                    PERR("%s:%zu: node %zu out of order (want %zu)", path, r.lineno, nid, i);
                nline[i] = r.lineno;
                rank_node *x = &nodes[i];
                if (!strcmp(r.tok[2], "leaf")) {
                    if (r.ntok != 4 || parse_double(r.tok[3], &x->value))
                        PERR("%s:%zu: want \"node %zu leaf VALUE\"", path, r.lineno, i);
                    x->feature = -1;
                    x->left = x->right = -1;
                } else if (!strcmp(r.tok[2], "split")) {
                    size_t f, lc, rc2;
                    if (r.ntok != 8 || parse_size(r.tok[3], &f) || parse_thr(r.tok[4], &x->threshold) ||
                        parse_size(r.tok[5], &lc) || parse_size(r.tok[6], &rc2) ||
                        (strcmp(r.tok[7], "L") && strcmp(r.tok[7], "R")))
                        PERR("%s:%zu: want \"node %zu split FEATURE THRESHOLD LEFT RIGHT L|R\"", path,
                             r.lineno, i);
                    if (f >= nf)
                        PERR("%s:%zu: feature %zu out of range (features %zu)", path, r.lineno, f, nf);
                    if (lc >= n || rc2 >= n)
                        PERR("%s:%zu: child out of range (tree has %zu nodes)", path, r.lineno, n);
                    x->feature = (int32_t)f;
                    x->left = (int32_t)lc;
                    x->right = (int32_t)rc2;
                    x->missing_left = r.tok[7][0] == 'L';
                } else {
                    PERR("%s:%zu: want \"leaf\" or \"split\"", path, r.lineno);
                }
            }
            size_t bad, depth;
            const char *why = check_tree(nodes, n, nf, &bad, &depth);
            if (why)
                PERR("%s:%zu: tree %zu node %zu: %s", path, nline[bad], t, bad, why);
            if ((rc = rank_model_add_tree(m, nodes, n)) != 0)
                goto fail;
        }
    } else {
        v = expect(&r, "bias", 2);
        if (!v || parse_double(v, &bias))
            PERR("%s:%zu: want \"bias VALUE\"", path, r.lineno);
    }
    /* weight lines: a linear model's weights, a tree model's linear part */
    if (!(w = calloc(nf ? nf : 1, sizeof(double))))
        goto oom;
    long lastw = -1;
    for (;;) {
        if (!next_line(&r)) {
            r.lineno++;
            PERR("%s:%zu: unexpected end of file (want end)", path, r.lineno);
        }
        if (strcmp(r.tok[0], "weight"))
            break;
        size_t i;
        double val;
        if (r.ntok != 3 || parse_size(r.tok[1], &i) || i >= nf || (long)i <= lastw ||
            parse_double(r.tok[2], &val))
            PERR("%s:%zu: want \"weight I VALUE\" with I increasing and < %zu", path, r.lineno, nf);
        lastw = (long)i;
        w[i] = val;
    }
    if (kind == RANK_MODEL_LINEAR)
        rc = rank_model_set_linear(m, w, bias);
    else
        rc = rank_model_set_linear_part(m, lastw >= 0 ? w : NULL);
    if (rc)
        goto fail;
    if (r.ntok != 1 || strcmp(r.tok[0], "end"))
        PERR("%s:%zu: unexpected \"%s\" (want end)", path, r.lineno, r.tok[0]);
    if (next_line(&r))
        PERR("%s:%zu: content after end", path, r.lineno);
    if ((rc = rank_model_finalize(m)) != 0) {
        fn_seterr(eb, rc, "%s: cannot compile model: %s", path, fn_strerror(rc));
        goto fail;
    }
    *out = m;
    m = NULL;
    rc = 0;
    goto done;
oom:
    rc = fn_seterr(eb, -ENOMEM, "%s: out of memory", path);
fail:
    rank_model_free(m);
done:
    if (names)
        for (size_t i = 0; i < nf; i++)
            free(names[i]);
    free(names);
    free(w);
    free(nodes);
    free(nline);
    free(r.line);
    free(r.rest);
    fclose(r.f);
    return rc;
}
