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

struct rank_ranker {
    atomic_int refs;
    rank_model_t *m;
    size_t nf;           /* the model's features */
    uint32_t *col;       /* model feature j = column col[j] of the rows */
    char desc[256];
};

static void ranker_free(rank_ranker *r)
{
    if (!r) return;
    rank_model_free(r->m);
    free(r->col);
    free(r);
}

int rank_ranker_new(rank_model_t *m, const char *label, const char *const *names,
                    const unsigned char *allowed, size_t ncols, rank_ranker **out, fn_errbuf *eb)
{
    *out = NULL;
    rank_ranker *r = calloc(1, sizeof *r);
    size_t nf = rank_model_nfeatures(m);
    if (!r || !(r->col = calloc(nf ? nf : 1, sizeof *r->col))) {
        free(r);
        rank_model_free(m);
        return fn_seterr(eb, -ENOMEM, "out of memory");
    }
    r->m = m;
    r->nf = nf;
    atomic_init(&r->refs, 1);
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
        if (r->col[j] == col) return 1;
    return 0;
}

const rank_model_t *rank_ranker_model(const rank_ranker *r) { return r->m; }

int rank_ranker_score(const rank_ranker *r, const float *rows, size_t n, size_t stride, double *out)
{
    if (!n) return 0;
    size_t nf = r->nf ? r->nf : 1;
    float *X = malloc(n * nf * sizeof *X);
    if (!X) return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < r->nf; j++) X[i * nf + j] = rows[i * stride + r->col[j]];
    rank_model_score(r->m, X, n, nf, out);
    free(X);
    return 0;
}

/* ---- the driver ---- */

/* qsort has no context argument: the list being sorted, per thread */
static _Thread_local const rank_list *tl_list;

static int by_score(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const rank_list *l = tl_list;
    double x = l->score[i], y = l->score[j];
    /* NaN ranks last, like every other order in rank/ */
    int xn = isnan(x), yn = isnan(y);
    if (xn != yn) return xn - yn;
    if (!xn && x != y) return x > y ? -1 : 1;
    return l->key[i] < l->key[j] ? -1 : l->key[i] > l->key[j];
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

static int sort_idx(rank_list *l)
{
    if (l->n < 2) return 0;
    size_t *idx = malloc(l->n * sizeof *idx);
    if (!idx) return -ENOMEM;
    for (size_t i = 0; i < l->n; i++) idx[i] = i;
    tl_list = l;
    qsort(idx, l->n, sizeof *idx, by_score);
    int rc = permute(l, idx, l->n);
    free(idx);
    return rc;
}

void rank_list_sort(rank_list *l)
{
    (void)sort_idx(l);
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
            /* the rows of the listed items, in list order */
            size_t stride = l->stride;
            float *rows = malloc(l->n * stride * sizeof *rows);
            double *s = malloc(l->n * sizeof *s);
            if (!rows || !s) {
                free(rows);
                free(s);
                return -ENOMEM;
            }
            for (size_t i = 0; i < l->n; i++)
                memcpy(rows + i * stride, l->rows + (size_t)l->item[i] * stride, stride * sizeof *rows);
            int rc = rank_ranker_score(ranker, rows, l->n, stride, s);
            free(rows);
            if (rc) {
                free(s);
                return rc;
            }
            memcpy(l->score, s, l->n * sizeof *s);
            free(s);
            if ((rc = sort_idx(l))) return rc;
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
