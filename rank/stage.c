/* stage.c - rankers and the stage driver (stage.h). */
#include "stage.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fn_arena.h"

struct rank_ranker {
    atomic_int refs;
    rank_model_t *m;
    size_t nf;           /* the model's features */
    uint32_t *col;       /* model feature j = column col[j] of the rows */
    unsigned char *used; /* model feature j is read: a split on it or a nonzero weight */
    char desc[256];
};

static void ranker_free(rank_ranker *r)
{
    if (!r) return;
    rank_model_free(r->m);
    free(r->col);
    free(r->used);
    free(r);
}

int rank_ranker_new(rank_model_t *m, const char *label, const char *const *names,
                    const unsigned char *allowed, size_t ncols, rank_ranker **out, fn_errbuf *eb)
{
    *out = NULL;
    rank_ranker *r = calloc(1, sizeof *r);
    size_t nf = rank_model_nfeatures(m);
    if (!r || !(r->col = calloc(nf ? nf : 1, sizeof *r->col)) ||
        !(r->used = calloc(nf ? nf : 1, sizeof *r->used))) {
        if (r) free(r->col);
        free(r);
        rank_model_free(m);
        return fn_seterr(eb, -ENOMEM, "out of memory");
    }
    r->m = m;
    r->nf = nf;
    atomic_init(&r->refs, 1);
    /* what the model reads: a model may name features it never splits on
     * (trained on a file with more columns); a stage skips computing those */
    for (size_t t = 0; t < rank_model_ntrees(m); t++) {
        size_t nn;
        const rank_node *nodes = rank_model_tree(m, t, &nn);
        for (size_t i = 0; i < nn; i++)
            if (nodes[i].feature >= 0 && (size_t)nodes[i].feature < nf) r->used[nodes[i].feature] = 1;
    }
    for (size_t j = 0; j < nf; j++)
        if (rank_model_weight(m, j) != 0) r->used[j] = 1;
    /* every feature the model uses must be one this stage computes */
    char bad[400] = "", unusable[400] = "";
    size_t nbad = 0, nunusable = 0, unnamed = 0;
    for (size_t j = 0; j < nf; j++) {
        const char *name = rank_model_feature_name(m, j);
        if (!name || !*name) { unnamed++; continue; }
        size_t c = 0;
        while (c < ncols && strcmp(names[c], name) != 0) c++;
        char *list = c == ncols ? bad : unusable;
        size_t *cnt = c == ncols ? &nbad : &nunusable;
        if (c < ncols && (!allowed || allowed[c])) {
            r->col[j] = (uint32_t)c;
            continue;
        }
        size_t used = strlen(list);
        if (used + strlen(name) + 3 < sizeof bad)
            snprintf(list + used, sizeof bad - used, "%s%s", *cnt ? ", " : "", name);
        (*cnt)++;
    }
    if (unnamed) {
        ranker_free(r);
        return fn_seterr(eb, FN_EINVAL, "%s: %zu of its %zu features have no name: the cluster maps a "
                         "model's features by name (train it on files with a '# features:' line)",
                         label, unnamed, nf);
    }
    if (nbad || nunusable) {
        ranker_free(r);
        if (nbad)
            return fn_seterr(eb, FN_EINVAL, "%s: unknown feature%s: %s", label, nbad > 1 ? "s" : "", bad);
        return fn_seterr(eb, FN_EINVAL, "%s: feature%s not available at this stage: %s", label,
                         nunusable > 1 ? "s" : "", unusable);
    }
    snprintf(r->desc, sizeof r->desc, "%s (%s %s, %zu trees, %zu features)", label,
             rank_model_kind(m) == RANK_MODEL_TREES ? "trees" : "linear", rank_model_objective(m),
             rank_model_ntrees(m), nf);
    *out = r;
    return 0;
}

int rank_ranker_load(const char *path, const char *const *names, const unsigned char *allowed,
                     size_t ncols, rank_ranker **out, fn_errbuf *eb)
{
    *out = NULL;
    rank_model_t *m;
    int rc = rank_model_load(path, &m, eb);
    if (rc) return rc;
    return rank_ranker_new(m, path, names, allowed, ncols, out, eb);
}

int rank_ranker_parse(const char *text, size_t len, const char *label, const char *const *names,
                      const unsigned char *allowed, size_t ncols, rank_ranker **out, fn_errbuf *eb)
{
    *out = NULL;
    /* rank_model_load reads files: a pushed model goes through a private
     * temporary file (a rare operator action) */
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/funnel-model-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) return fn_seterr(eb, -errno, "%s: %s", path, strerror(errno));
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            unlink(path);
            return fn_seterr(eb, -e, "%s: %s", path, strerror(e));
        }
        done += (size_t)w;
    }
    close(fd);
    rank_model_t *m;
    int rc = rank_model_load(path, &m, eb);
    unlink(path);
    if (rc) {
        /* name the pushed model, not the temporary file */
        if (eb) {
            char *at = strstr(eb->msg, path);
            if (at) {
                char rest[sizeof eb->msg];
                snprintf(rest, sizeof rest, "%s", at + strlen(path));
                snprintf(eb->msg, sizeof eb->msg, "%s%s", label, rest);
            }
        }
        return rc;
    }
    return rank_ranker_new(m, label, names, allowed, ncols, out, eb);
}

rank_ranker *rank_ranker_ref(rank_ranker *r)
{
    if (r) atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

void rank_ranker_unref(rank_ranker *r)
{
    if (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) ranker_free(r);
}

const char *rank_ranker_describe(const rank_ranker *r) { return r ? r->desc : "none"; }

int rank_ranker_uses(const rank_ranker *r, size_t col)
{
    for (size_t j = 0; r && j < r->nf; j++)
        if (r->used[j] && r->col[j] == col) return 1;
    return 0;
}

const rank_model_t *rank_ranker_model(const rank_ranker *r) { return r->m; }

int rank_ranker_score(const rank_ranker *r, const float *rows, size_t n, size_t stride, double *out)
{
    if (!n) return 0;
    size_t nf = r->nf ? r->nf : 1;
    /* from an arena: its chunk is reused by the next call (fn_arena.h), a
     * malloc of this size would be mapped and faulted in every time */
    fn_arena mem;
    fn_arena_init(&mem);
    float *X = fn_arena_alloc(&mem, n * nf * sizeof *X);
    if (!X) {
        fn_arena_free(&mem);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < r->nf; j++) X[i * nf + j] = rows[i * stride + r->col[j]];
    rank_model_score(r->m, X, n, nf, out);
    fn_arena_free(&mem);
    return 0;
}

/* ---- the driver ---- */

/* The stage order: score descending, NaN last (like every other order in
 * rank/), then key ascending, then the list position - the last makes the
 * order total, so any sort gives what a stable sort gives. */
static inline int before(const rank_list *l, size_t i, size_t j)
{
    double x = l->score[i], y = l->score[j];
    int xn = isnan(x), yn = isnan(y);
    if (xn != yn) return yn;
    if (!xn && x != y) return x > y;
    if (l->key[i] != l->key[j]) return l->key[i] < l->key[j];
    return i < j;
}

static inline void iswap(size_t *a, size_t *b) { size_t t = *a; *a = *b; *b = t; }

/* Partition idx[0, n) around a median of three: returns p with idx[p] the
 * pivot, the entries before it before it in the order, those after after. */
static size_t ipartition(const rank_list *l, size_t *idx, size_t n)
{
    size_t m = n / 2;
    if (before(l, idx[m], idx[0])) iswap(&idx[m], &idx[0]);
    if (before(l, idx[n - 1], idx[0])) iswap(&idx[n - 1], &idx[0]);
    if (before(l, idx[n - 1], idx[m])) iswap(&idx[n - 1], &idx[m]);
    iswap(&idx[0], &idx[m]);
    size_t i = 0, j = n;
    for (;;) {
        while (++i < n && before(l, idx[i], idx[0])) {}
        while (before(l, idx[0], idx[--j])) {}
        if (i >= j) break;
        iswap(&idx[i], &idx[j]);
    }
    iswap(&idx[0], &idx[j]);
    return j;
}

static void iinsertion(const rank_list *l, size_t *idx, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        size_t x = idx[i], j = i;
        for (; j > 0 && before(l, x, idx[j - 1]); j--) idx[j] = idx[j - 1];
        idx[j] = x;
    }
}

/* Sort idx[0, n) into the stage order, but only as far as its first keep
 * entries: those are the best keep, in order; the rest are left unordered.
 * A stage keeps only its best, so it need not sort the others. */
static void isort_top(const rank_list *l, size_t *idx, size_t n, size_t keep)
{
    while (n > 16) {
        size_t p = ipartition(l, idx, n);
        if (keep <= p) {            /* the best keep are all before the pivot */
            n = p;
            continue;
        }
        /* sort the smaller side by recursion, the other in this loop */
        if (p < n - p - 1) {
            isort_top(l, idx, p, p);
            idx += p + 1;
            keep -= p + 1;
            n -= p + 1;
        } else {
            isort_top(l, idx + p + 1, n - p - 1, keep - p - 1);
            n = p;
            keep = p;
        }
    }
    iinsertion(l, idx, n);
}

/* Permute l by idx[0, n) (new position p holds old entry idx[p]). */
static int permute(rank_list *l, const size_t *idx, size_t n)
{
    uint32_t *item = malloc(n * sizeof *item);
    uint64_t *key = malloc(n * sizeof *key);
    double *score = malloc(n * sizeof *score);
    if (!item || !key || !score) {
        free(item);
        free(key);
        free(score);
        return -ENOMEM;
    }
    for (size_t p = 0; p < n; p++) {
        item[p] = l->item[idx[p]];
        key[p] = l->key[idx[p]];
        score[p] = l->score[idx[p]];
    }
    memcpy(l->item, item, n * sizeof *item);
    memcpy(l->key, key, n * sizeof *key);
    memcpy(l->score, score, n * sizeof *score);
    free(item);
    free(key);
    free(score);
    return 0;
}

/* Order l's best keep entries (all of them if keep >= n) into its first
 * keep positions; the entries after those are left in no order. */
static int sort_idx(rank_list *l, size_t keep)
{
    if (l->n < 2) return 0;
    if (keep > l->n) keep = l->n;
    size_t *idx = malloc(l->n * sizeof *idx);
    if (!idx) return -ENOMEM;
    for (size_t i = 0; i < l->n; i++) idx[i] = i;
    isort_top(l, idx, l->n, keep);
    int rc = permute(l, idx, keep);
    free(idx);
    return rc;
}

void rank_list_sort(rank_list *l)
{
    (void)sort_idx(l, l->n);
}

static uint64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000;
}

int rank_stage_run(rank_list *l, const rank_ranker *ranker, size_t keep, const char *kept_order,
                   rank_stage_acct *acct)
{
    uint64_t t0 = now_us();
    acct->count_in = l->n;
    acct->ran = 0;
    acct->note[0] = '\0';
    if (ranker && l->n) {
        if (!l->rows) {
            snprintf(acct->note, sizeof acct->note, "no features: %s order kept", kept_order);
        } else {
            /* the rows of the listed items, in list order (usually they
             * are in list order already: no copy then) */
            size_t stride = l->stride, ident = 1;
            for (size_t i = 0; i < l->n && ident; i++) ident = l->item[i] == i;
            float *rows = ident ? NULL : malloc(l->n * stride * sizeof *rows);
            double *s = malloc(l->n * sizeof *s);
            if ((!ident && !rows) || !s) {
                free(rows);
                free(s);
                return -ENOMEM;
            }
            for (size_t i = 0; i < l->n && !ident; i++)
                memcpy(rows + i * stride, l->rows + (size_t)l->item[i] * stride, stride * sizeof *rows);
            int rc = rank_ranker_score(ranker, ident ? l->rows : rows, l->n, stride, s);
            free(rows);
            if (rc) {
                free(s);
                return rc;
            }
            memcpy(l->score, s, l->n * sizeof *s);
            free(s);
            if ((rc = sort_idx(l, keep))) return rc;
            acct->ran = 1;
            snprintf(acct->note, sizeof acct->note, "%s", rank_ranker_describe(ranker));
        }
    } else if (!ranker) {
        snprintf(acct->note, sizeof acct->note, "no model: %s order kept", kept_order);
    }
    if (l->n > keep) l->n = keep;
    acct->count_out = l->n;
    acct->time_us = now_us() - t0;
    return 0;
}
