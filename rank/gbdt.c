/* gbdt.c - histogram-based gradient-boosted trees: LambdaMART (lambdarank
 * objective) and pointwise binary log-loss.
 *
 * Data preparation (once per training run):
 *   - quantile bins per feature from the training data, at most max_bins
 *     (every distinct value gets its own bin when there are few enough).
 *     Missing (NaN) is binned as 0.0, and every split sends NaN the way 0.0
 *     goes (missing_left), so NaN and 0 score the same (model.h).
 *   - cut[b] = the smallest training value of bin b+1; a split "bins <= b go
 *     left" is stored as threshold cut[b] with "x < threshold goes left", so
 *     prediction agrees exactly with training-time binning (x is float).
 *   - a feature-major uint8 bin matrix (partitioning, traversal) and a
 *     row-major sparse list of each row's bins that differ from the feature's
 *     most frequent bin (histogram building touches only those; the frequent
 *     bin is the node total minus the rest, as LightGBM does).
 *
 * Trees: depth-wise growth (XGBoost's hist default) to max_depth, bounded by
 * max_leaves; with max_depth 0, best-first (leaf-wise) growth to max_leaves.
 * Each node keeps its rows as a range of one index array (stable partitions,
 * so rows stay in ascending order). Histograms hold (G, H) doubles plus a
 * count per bin; for a split, the smaller child is built and the larger is
 * parent minus smaller.
 *   gain  = GL^2/(HL+l2) + GR^2/(HR+l2) - G^2/(H+l2), split when
 *           gain > min_split_gain (and > 1e-12, against rounding noise),
 *           each child with >= min_leaf rows and >= min_child_weight hessian;
 *   leaf  = -G/(H+l2) * learning_rate (rounded to float, as the model file
 *           stores it, so a saved model scores exactly as the trainer did).
 *
 * Threads: histogram building, subtraction and split search are split over
 * feature ranges; each feature is handled by one thread in the same row
 * order, and the per-range best splits are reduced in feature order, so the
 * model is bit-identical for any thread count.
 *
 * Binary objective: labels > 0 positive; base_score = log(p/(1-p)) of the
 * training positive rate (LightGBM's boost_from_average; 0 when p is 0 or 1).
 * Lambdarank: base_score 0, gradients from rank_lambda_gradients per query.
 * Base margin (p->base_weight != 0): initial scores add base_weight *
 * x[base_feature] and the model gets that weight as its linear part.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fn_rand.h"
#include "metrics.h"
#include "rank_int.h"
#include "train.h"

void rank_gbdt_defaults(rank_gbdt_params *p)
{
    memset(p, 0, sizeof *p);
    p->objective = RANK_OBJ_LAMBDARANK;
    p->trees = 100;
    p->max_depth = 6;
    p->max_leaves = 0;
    p->learning_rate = 0.1;
    p->min_leaf = 1;
    p->min_child_weight = 1e-3;
    p->lambda_l2 = 1.0;
    p->min_split_gain = 0.0;
    p->row_subsample = 1.0;
    p->feature_subsample = 1.0;
    p->max_bins = 256;
    p->ndcg_k = 10;
    p->early_stopping = 0;
    p->seed = 1;
    p->threads = 1;
}

/* ---------------------------------------------------------------- PRNG */

static double rand_unit(uint64_t *s)
{
    return (double)(fn_splitmix64(s) >> 11) * 0x1.0p-53;
}

/* ---------------------------------------------------------------- bins */

typedef struct binned {
    size_t rows, nf;
    uint32_t *off;      /* nf + 1: global bin offsets */
    float *cut;         /* [total bins]: cut[off[f] + b] = threshold of split "bin <= b" */
    uint8_t *defbin;    /* nf: most frequent bin, left out of the sparse rows */
    uint8_t *col;       /* nf * rows, feature-major bins */
    size_t *rowptr;     /* rows + 1 */
    uint32_t *ent;      /* global bins of the non-default entries, by row, by feature */
    size_t *tstart;     /* rows * (T + 1): per thread range, entry positions */
    unsigned nthreads;
    unsigned *tfeat;    /* T + 1 feature ranges */
} binned;

static void binned_free(binned *b)
{
    free(b->off);
    free(b->cut);
    free(b->defbin);
    free(b->col);
    free(b->rowptr);
    free(b->ent);
    free(b->tstart);
    free(b->tfeat);
    memset(b, 0, sizeof *b);
}

/* Sort n floats (no NaN) ascending, stably, -0.0 equal to 0.0 -- exactly
 * what qsort with a (x > y) - (x < y) comparison gave with glibc's merge sort
 * (the first value of a run of equal values can become a cut, so the order
 * within a run matters) -- as an LSD radix sort on order-preserving keys:
 * the comparison sort was a fifth of a small training run (the guard's).
 * tmp: n floats, key / ktmp: n keys each. */
static void sort_floats(float *v, size_t n, float *tmp, uint32_t *key, uint32_t *ktmp)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], sizeof u);
        if (u == 0x80000000u)
            u = 0; /* -0.0 sorts with 0.0 */
        key[i] = (u & 0x80000000u) ? ~u : u | 0x80000000u;
    }
    size_t cnt[2048];
    float *src = v, *dst = tmp;
    uint32_t *ks = key, *kd = ktmp;
    for (unsigned shift = 0; shift < 32; shift += 11) {
        memset(cnt, 0, sizeof cnt);
        for (size_t i = 0; i < n; i++)
            cnt[(ks[i] >> shift) & 2047]++;
        if (n && cnt[(ks[0] >> shift) & 2047] == n)
            continue; /* every key has this digit: nothing moves */
        size_t sum = 0;
        for (size_t b = 0; b < 2048; b++) {
            size_t c = cnt[b];
            cnt[b] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) {
            size_t j = cnt[(ks[i] >> shift) & 2047]++;
            kd[j] = ks[i];
            dst[j] = src[i];
        }
        float *t = src;
        src = dst;
        dst = t;
        uint32_t *k = ks;
        ks = kd;
        kd = k;
    }
    if (src != v)
        memcpy(v, src, n * sizeof *v);
}

static inline float xval(float v)
{
    return isnan(v) ? 0.0f : v;
}

/* number of cuts <= v: the bin of v */
static inline unsigned bin_of(const float *cut, unsigned ncut, float v)
{
    unsigned lo = 0, hi = ncut;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (cut[mid] <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int build_bins(const rank_dataset *d, unsigned max_bins, unsigned nthreads, binned *b)
{
    size_t N = d->rows, F = d->nfeatures;
    memset(b, 0, sizeof *b);
    b->rows = N;
    b->nf = F;
    b->nthreads = nthreads;
    if (max_bins < 2)
        max_bins = 2;
    if (max_bins > 256)
        max_bins = 256;
    float *vals = malloc((N ? N : 1) * sizeof *vals), *vtmp = malloc((N ? N : 1) * sizeof *vtmp);
    uint32_t *keys = malloc((N ? N : 1) * 2 * sizeof *keys);
    float *cuts = malloc(F * (max_bins - 1) * sizeof *cuts + 1);
    unsigned *ncut = calloc(F + 1, sizeof *ncut);
    size_t *counts = calloc(max_bins, sizeof *counts);
    b->off = calloc(F + 1, sizeof *b->off);
    b->defbin = calloc(F + 1, 1);
    b->col = malloc(F * N + 1);
    b->rowptr = calloc(N + 1, sizeof *b->rowptr);
    b->tfeat = calloc(nthreads + 1, sizeof *b->tfeat);
    int rc = -ENOMEM;
    if (!vals || !vtmp || !keys || !cuts || !ncut || !counts || !b->off || !b->defbin || !b->col || !b->rowptr ||
        !b->tfeat)
        goto fail;

    size_t nnz = 0;
    for (size_t f = 0; f < F; f++) {
        for (size_t r = 0; r < N; r++)
            vals[r] = xval(d->X[r * F + f]);
        sort_floats(vals, N, vtmp, keys, keys + N);
        size_t distinct = 0;
        for (size_t r = 0; r < N; r++)
            if (r == 0 || vals[r] != vals[r - 1])
                distinct++;
        float *c = cuts + f * (max_bins - 1);
        unsigned nc = 0;
        if (distinct <= max_bins) {
            for (size_t r = 1; r < N; r++)
                if (vals[r] != vals[r - 1])
                    c[nc++] = vals[r];
        } else {
            /* greedy equal-count bins over distinct values: close a bin once
             * it holds its share of the remaining rows */
            size_t r = 0, inbin = 0, left = N;
            unsigned binsleft = max_bins;
            while (r < N) {
                size_t e = r;
                while (e < N && vals[e] == vals[r])
                    e++;
                inbin += e - r;
                r = e;
                if (r < N && binsleft > 1 && (double)inbin >= (double)left / binsleft) {
                    c[nc++] = vals[r];
                    left -= inbin;
                    inbin = 0;
                    binsleft--;
                }
            }
        }
        ncut[f] = nc;
        b->off[f + 1] = b->off[f] + nc + 1;
        /* bins and the most frequent one */
        memset(counts, 0, max_bins * sizeof *counts);
        uint8_t *colf = b->col + f * N;
        for (size_t r = 0; r < N; r++) {
            unsigned bb = bin_of(c, nc, xval(d->X[r * F + f]));
            colf[r] = (uint8_t)bb;
            counts[bb]++;
        }
        unsigned def = 0;
        for (unsigned k = 1; k <= nc; k++)
            if (counts[k] > counts[def])
                def = k;
        b->defbin[f] = (uint8_t)def;
        nnz += N - counts[def];
    }
    b->cut = malloc((b->off[F] ? b->off[F] : 1) * sizeof *b->cut);
    b->ent = malloc((nnz ? nnz : 1) * sizeof *b->ent);
    b->tstart = malloc(N * (nthreads + 1) * sizeof *b->tstart + 1);
    if (!b->cut || !b->ent || !b->tstart)
        goto fail;
    for (size_t f = 0; f < F; f++) {
        memcpy(b->cut + b->off[f], cuts + f * (max_bins - 1), ncut[f] * sizeof(float));
        b->cut[b->off[f + 1] - 1] = INFINITY;     /* last bin: never a split */
    }
    /* thread feature ranges balanced by entries (+ bins for the scans) */
    {
        size_t *fw = calloc(F + 1, sizeof *fw);
        if (!fw)
            goto fail;
        size_t tot = 0;
        for (size_t f = 0; f < F; f++) {
            size_t cnt = 0;
            const uint8_t *colf = b->col + f * N;
            for (size_t r = 0; r < N; r++)
                cnt += colf[r] != b->defbin[f];
            fw[f] = cnt + 4 * (b->off[f + 1] - b->off[f]);
            tot += fw[f];
        }
        size_t acc = 0;
        unsigned t = 1;
        b->tfeat[0] = 0;
        for (size_t f = 0; f < F && t < nthreads; f++) {
            acc += fw[f];
            while (t < nthreads && acc * nthreads >= tot * t)
                b->tfeat[t++] = (unsigned)(f + 1);
        }
        while (t <= nthreads)
            b->tfeat[t++] = (unsigned)F;
        free(fw);
    }
    /* sparse rows */
    size_t e = 0;
    for (size_t r = 0; r < N; r++) {
        b->rowptr[r] = e;
        unsigned t = 0;
        for (size_t f = 0; f < F; f++) {
            while (t < nthreads && f >= b->tfeat[t]) {
                b->tstart[r * (nthreads + 1) + t] = e;
                t++;
            }
            uint8_t bb = b->col[f * N + r];
            if (bb != b->defbin[f])
                b->ent[e++] = b->off[f] + bb;
        }
        while (t <= nthreads) {
            b->tstart[r * (nthreads + 1) + t] = e;
            t++;
        }
    }
    b->rowptr[N] = e;
    rc = 0;
fail:
    free(vals);
    free(vtmp);
    free(keys);
    free(cuts);
    free(ncut);
    free(counts);
    if (rc)
        binned_free(b);
    return rc;
}

/* ---------------------------------------------------------------- trees */

typedef struct ghpair {
    double g, h;
} ghpair;

typedef struct hist {
    ghpair *gh;         /* [total bins] */
    uint32_t *cnt;      /* [total bins] */
    struct hist *next;  /* free list */
} hist;

typedef struct split {
    double gain;        /* num / den - G^2/(H+l2) */
    double num, den;    /* children's score as a fraction, for exact comparisons */
    int32_t feature;
    unsigned bin;       /* local bin: bins <= bin go left */
} split;

/* a better than b: a.num/a.den > b.num/b.den, compared without dividing so
 * that every thread count ranks candidates identically */
static inline int split_better(const split *a, const split *b)
{
    return a->feature >= 0 && (b->feature < 0 || a->num * b->den > b->num * a->den);
}

typedef struct tnode {
    int32_t feature;
    unsigned bin;
    float threshold;
    int32_t left, right;
    uint8_t missing_left;
    double value;
    /* training */
    size_t begin, end;
    double G, H;
    unsigned depth;
    hist *h;
    split best;
} tnode;

typedef struct tree {
    tnode *n;
    size_t len, cap;
} tree;

/* one split to apply in a parallel batch */
typedef struct job_item {
    size_t parent, small, large;  /* node ids; large == SIZE_MAX: only small is needed */
} job_item;

struct trainer;
typedef void (*task_fn)(struct trainer *tr, unsigned t);

typedef struct trainer {
    const rank_gbdt_params *p;
    const binned *b;
    size_t N;
    ghpair *gh;             /* [N] gradients of the round */
    size_t *idx, *tmp;      /* [N] row index, partition buffer */
    uint8_t *featon;        /* [nf] feature sampled for this tree */
    tree t;
    hist *freel;
    /* batch */
    job_item *items;
    size_t nitems;
    split *tbest;           /* [T * 2 * nitems]: per thread best for each node of the batch */
    size_t tbest_cap;
    /* pool */
    unsigned T;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv_go, cv_done;
    unsigned gen, ndone, quit;
    task_fn task;
    int pool_ok, sync_init;
    struct worker_arg *wa;
} trainer;

static hist *hist_get(trainer *tr)
{
    hist *h = tr->freel;
    if (h) {
        tr->freel = h->next;
        return h;
    }
    size_t nb = tr->b->off[tr->b->nf];
    h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->gh = malloc((nb ? nb : 1) * sizeof *h->gh);
    h->cnt = malloc((nb ? nb : 1) * sizeof *h->cnt);
    if (!h->gh || !h->cnt) {
        free(h->gh);
        free(h->cnt);
        free(h);
        return NULL;
    }
    return h;
}

static void hist_put(trainer *tr, hist *h)
{
    if (!h)
        return;
    h->next = tr->freel;
    tr->freel = h;
}

static void hist_free_all(hist *h)
{
    while (h) {
        hist *n = h->next;
        free(h->gh);
        free(h->cnt);
        free(h);
        h = n;
    }
}

/* Build node's histogram for thread t's feature range. */
static void hist_build(trainer *tr, const tnode *nd, hist *h, unsigned t)
{
    const binned *b = tr->b;
    unsigned f0 = b->tfeat[t], f1 = b->tfeat[t + 1];
    if (f0 >= f1)
        return;
    uint32_t lo = b->off[f0], hi = b->off[f1];
    ghpair *hg = h->gh;
    uint32_t *hc = h->cnt;
    memset(hg + lo, 0, (hi - lo) * sizeof *hg);
    memset(hc + lo, 0, (hi - lo) * sizeof *hc);
    const size_t T1 = b->nthreads + 1;
    const uint32_t *ent = b->ent;
    for (size_t i = nd->begin; i < nd->end; i++) {
        size_t r = tr->idx[i];
        const ghpair g = tr->gh[r];
        size_t e0 = b->tstart[r * T1 + t], e1 = b->tstart[r * T1 + t + 1];
        for (size_t e = e0; e < e1; e++) {
            uint32_t k = ent[e];
            hg[k].g += g.g;
            hg[k].h += g.h;
            hc[k]++;
        }
    }
    /* the default bin: node total minus the others */
    uint32_t n = (uint32_t)(nd->end - nd->begin);
    for (unsigned f = f0; f < f1; f++) {
        double sg = 0, sh = 0;
        uint32_t sc = 0;
        for (uint32_t k = b->off[f]; k < b->off[f + 1]; k++) {
            sg += hg[k].g;
            sh += hg[k].h;
            sc += hc[k];
        }
        uint32_t k = b->off[f] + b->defbin[f];
        hg[k].g = nd->G - sg;
        hg[k].h = nd->H - sh;
        hc[k] = n - sc;
    }
}

static void hist_sub(const trainer *tr, const hist *parent, const hist *small, hist *out, unsigned t)
{
    const binned *b = tr->b;
    uint32_t lo = b->off[b->tfeat[t]], hi = b->off[b->tfeat[t + 1]];
    for (uint32_t k = lo; k < hi; k++) {
        out->gh[k].g = parent->gh[k].g - small->gh[k].g;
        out->gh[k].h = parent->gh[k].h - small->gh[k].h;
        out->cnt[k] = parent->cnt[k] - small->cnt[k];
    }
}

/* Best split of node over thread t's features (first best in feature, bin order). */
static split find_split(const trainer *tr, const tnode *nd, unsigned t)
{
    const binned *b = tr->b;
    const rank_gbdt_params *p = tr->p;
    split best = { .gain = -INFINITY, .feature = -1, .bin = 0 };
    const double l2 = p->lambda_l2, mcw = p->min_child_weight;
    const uint32_t minleaf = p->min_leaf ? p->min_leaf : 1;
    const double G = nd->G, H = nd->H;
    const uint32_t n = (uint32_t)(nd->end - nd->begin);
    if (n < 2 * minleaf)
        return best;
    const double parent = (H + l2) > 0 ? G * G / (H + l2) : 0.0;
    const hist *h = nd->h;
    /* candidates compare by GL^2/(HL+l2) + GR^2/(HR+l2) = num/den without
     * dividing: num > bnum/bden <=> num * bden > bnum * den (dens > 0) */
    double bnum = -INFINITY, bden = 1.0;
    for (unsigned f = b->tfeat[t]; f < b->tfeat[t + 1]; f++) {
        if (!tr->featon[f])
            continue;
        uint32_t o = b->off[f], nb = b->off[f + 1] - o;
        if (nb < 2 || h->cnt[o + b->defbin[f]] == n)
            continue;   /* one value in this node: no split */
        const ghpair *hg = h->gh + o;
        const uint32_t *hc = h->cnt + o;
        double GL = 0, HL = 0;
        uint32_t nL = 0;
        for (uint32_t k = 0; k + 1 < nb; k++) {
            if (!hc[k])
                continue;   /* same partition as the previous bin */
            GL += hg[k].g;
            HL += hg[k].h;
            nL += hc[k];
            if (nL < minleaf)
                continue;
            uint32_t nR = n - nL;
            if (nR < minleaf)
                break;
            double HR = H - HL;
            if (HL < mcw || HR < mcw)
                continue;
            double GR = G - GL;
            double dl = HL + l2, dr = HR + l2;
            if (!(dl > 0 && dr > 0))
                continue;
            double num = GL * GL * dr + GR * GR * dl, den = dl * dr;
            if (num * bden > bnum * den) {
                bnum = num;
                bden = den;
                best.feature = (int32_t)f;
                best.bin = k;
            }
        }
    }
    if (best.feature >= 0) {
        best.num = bnum;
        best.den = bden;
        best.gain = bnum / bden - parent;
    }
    return best;
}

/* ---------------------------------------------------------------- pool */

typedef struct worker_arg {
    trainer *tr;
    unsigned t;
} worker_arg;

static void run_task(trainer *tr, task_fn fn)
{
    if (tr->T == 1 || !tr->pool_ok) {
        for (unsigned t = 0; t < tr->T; t++)
            fn(tr, t);
        return;
    }
    pthread_mutex_lock(&tr->mu);
    tr->task = fn;
    tr->ndone = 0;
    tr->gen++;
    pthread_cond_broadcast(&tr->cv_go);
    pthread_mutex_unlock(&tr->mu);
    fn(tr, 0);
    pthread_mutex_lock(&tr->mu);
    while (tr->ndone < tr->T - 1)
        pthread_cond_wait(&tr->cv_done, &tr->mu);
    pthread_mutex_unlock(&tr->mu);
}

static void *worker_main(void *arg)
{
    worker_arg *wa = arg;
    trainer *tr = wa->tr;
    unsigned t = wa->t;
    unsigned seen = 0;
    for (;;) {
        pthread_mutex_lock(&tr->mu);
        while (tr->gen == seen && !tr->quit)
            pthread_cond_wait(&tr->cv_go, &tr->mu);
        if (tr->quit) {
            pthread_mutex_unlock(&tr->mu);
            return NULL;
        }
        seen = tr->gen;
        task_fn fn = tr->task;
        pthread_mutex_unlock(&tr->mu);
        fn(tr, t);
        pthread_mutex_lock(&tr->mu);
        tr->ndone++;
        pthread_cond_signal(&tr->cv_done);
        pthread_mutex_unlock(&tr->mu);
    }
}

/* Start threads 1..T-1 (the caller is thread 0). If they cannot all be
 * started, training runs serially: same model, only slower. */
static int pool_start(trainer *tr)
{
    tr->pool_ok = 0;
    if (tr->T <= 1)
        return 0;
    tr->wa = calloc(tr->T, sizeof *tr->wa);
    tr->th = calloc(tr->T, sizeof *tr->th);
    if (!tr->wa || !tr->th)
        return -ENOMEM;
    pthread_mutex_init(&tr->mu, NULL);
    pthread_cond_init(&tr->cv_go, NULL);
    pthread_cond_init(&tr->cv_done, NULL);
    tr->sync_init = 1;
    unsigned started = 1;
    for (unsigned t = 1; t < tr->T; t++) {
        tr->wa[t].tr = tr;
        tr->wa[t].t = t;
        if (pthread_create(&tr->th[t], NULL, worker_main, &tr->wa[t]) != 0)
            break;
        started++;
    }
    if (started < tr->T) {
        pthread_mutex_lock(&tr->mu);
        tr->quit = 1;
        pthread_cond_broadcast(&tr->cv_go);
        pthread_mutex_unlock(&tr->mu);
        for (unsigned t = 1; t < started; t++)
            pthread_join(tr->th[t], NULL);
        tr->quit = 0;
        return 0;
    }
    tr->pool_ok = 1;
    return 0;
}

static void pool_stop(trainer *tr)
{
    if (tr->pool_ok) {
        pthread_mutex_lock(&tr->mu);
        tr->quit = 1;
        pthread_cond_broadcast(&tr->cv_go);
        pthread_mutex_unlock(&tr->mu);
        for (unsigned t = 1; t < tr->T; t++)
            pthread_join(tr->th[t], NULL);
        tr->pool_ok = 0;
    }
    if (tr->sync_init) {
        pthread_mutex_destroy(&tr->mu);
        pthread_cond_destroy(&tr->cv_go);
        pthread_cond_destroy(&tr->cv_done);
        tr->sync_init = 0;
    }
    free(tr->wa);
    free(tr->th);
    tr->wa = NULL;
    tr->th = NULL;
}

/* ---------------------------------------------------------------- growth */

/* Parallel part of a batch: histograms and best splits of the new nodes. */
static void batch_task(trainer *tr, unsigned t)
{
    for (size_t i = 0; i < tr->nitems; i++) {
        job_item *it = &tr->items[i];
        tnode *s = &tr->t.n[it->small];
        hist_build(tr, s, s->h, t);
        split *out = tr->tbest + ((size_t)t * tr->nitems + i) * 2;
        out[0] = find_split(tr, s, t);
        if (it->large != SIZE_MAX) {
            tnode *l = &tr->t.n[it->large];
            if (it->parent != SIZE_MAX)
                hist_sub(tr, tr->t.n[it->parent].h, s->h, l->h, t);
            else
                hist_build(tr, l, l->h, t);
            out[1] = find_split(tr, l, t);
        }
    }
}

static int tree_push(tree *t, size_t begin, size_t end, unsigned depth)
{
    if (t->len == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 64;
        tnode *nn = realloc(t->n, nc * sizeof *nn);
        if (!nn)
            return -ENOMEM;
        t->n = nn;
        t->cap = nc;
    }
    tnode *nd = &t->n[t->len++];
    memset(nd, 0, sizeof *nd);
    nd->feature = -1;
    nd->left = nd->right = -1;
    nd->begin = begin;
    nd->end = end;
    nd->depth = depth;
    nd->best.gain = -INFINITY;
    nd->best.feature = -1;
    return 0;
}

static void node_sums(const trainer *tr, tnode *nd)
{
    double G = 0, H = 0;
    for (size_t i = nd->begin; i < nd->end; i++) {
        G += tr->gh[tr->idx[i]].g;
        H += tr->gh[tr->idx[i]].h;
    }
    nd->G = G;
    nd->H = H;
}

static int can_split(const trainer *tr, const tnode *nd)
{
    const rank_gbdt_params *p = tr->p;
    size_t minleaf = p->min_leaf ? p->min_leaf : 1;
    if (p->max_depth && nd->depth >= p->max_depth)
        return 0;
    return nd->end - nd->begin >= 2 * minleaf;
}

static int split_ok(const trainer *tr, const tnode *nd)
{
    return nd->best.feature >= 0 && nd->best.gain > tr->p->min_split_gain && nd->best.gain > 1e-12;
}

static int ensure_tbest(trainer *tr, size_t nitems)
{
    size_t need = (size_t)tr->T * nitems * 2;
    if (need <= tr->tbest_cap)
        return 0;
    split *s = realloc(tr->tbest, need * sizeof *s);
    if (!s)
        return -ENOMEM;
    tr->tbest = s;
    tr->tbest_cap = need;
    return 0;
}

static void reduce_best(trainer *tr, size_t i, int which, tnode *nd)
{
    split best = { .gain = -INFINITY, .feature = -1, .bin = 0 };
    for (unsigned t = 0; t < tr->T; t++) {
        split s = tr->tbest[((size_t)t * tr->nitems + i) * 2 + which];
        if (split_better(&s, &best))
            best = s;
    }
    nd->best = best;
}

/* Split the listed nodes: partition rows, create children, build their
 * histograms and best splits. */
static int apply_splits(trainer *tr, const size_t *which, size_t nw)
{
    const binned *b = tr->b;
    tree *t = &tr->t;
    size_t nitems = 0;
    for (size_t w = 0; w < nw; w++) {
        size_t id = which[w];
        tnode *nd = &t->n[id];
        unsigned f = (unsigned)nd->best.feature, bin = nd->best.bin;
        const uint8_t *colf = b->col + (size_t)f * tr->N;
        size_t nl = 0, nr = 0;
        for (size_t i = nd->begin; i < nd->end; i++) {
            size_t r = tr->idx[i];
            if (colf[r] <= bin)
                tr->idx[nd->begin + nl++] = r;
            else
                tr->tmp[nr++] = r;
        }
        memcpy(tr->idx + nd->begin + nl, tr->tmp, nr * sizeof *tr->tmp);
        size_t begin = nd->begin, end = nd->end;
        unsigned depth = nd->depth;
        int rc;
        if ((rc = tree_push(t, begin, begin + nl, depth + 1)) ||
            (rc = tree_push(t, begin + nl, end, depth + 1)))
            return rc;
        nd = &t->n[id];
        nd->feature = (int32_t)f;
        nd->bin = bin;
        nd->threshold = b->cut[b->off[f] + bin];
        nd->missing_left = 0.0f < nd->threshold;
        nd->left = (int32_t)(t->len - 2);
        nd->right = (int32_t)(t->len - 1);
        tnode *L = &t->n[nd->left], *R = &t->n[nd->right];
        node_sums(tr, L);
        node_sums(tr, R);
        int needL = can_split(tr, L), needR = can_split(tr, R);
        if (!needL && !needR)
            continue;
        job_item *it = &tr->items[nitems++];
        size_t li = (size_t)nd->left, ri = (size_t)nd->right;
        if (needL && needR) {
            int lsmall = (L->end - L->begin) <= (R->end - R->begin);
            it->small = lsmall ? li : ri;
            it->large = lsmall ? ri : li;
            it->parent = id;
        } else {
            it->small = needL ? li : ri;
            it->large = SIZE_MAX;
            it->parent = SIZE_MAX;
        }
        t->n[it->small].h = hist_get(tr);
        if (!t->n[it->small].h)
            return -ENOMEM;
        if (it->large != SIZE_MAX && !(t->n[it->large].h = hist_get(tr)))
            return -ENOMEM;
    }
    tr->nitems = nitems;
    int rc = ensure_tbest(tr, nitems);
    if (rc)
        return rc;
    if (nitems)
        run_task(tr, batch_task);
    for (size_t i = 0; i < nitems; i++) {
        job_item *it = &tr->items[i];
        reduce_best(tr, i, 0, &t->n[it->small]);
        if (it->large != SIZE_MAX)
            reduce_best(tr, i, 1, &t->n[it->large]);
    }
    /* parents' histograms are no longer needed */
    for (size_t w = 0; w < nw; w++) {
        tnode *nd = &t->n[which[w]];
        hist_put(tr, nd->h);
        nd->h = NULL;
    }
    return 0;
}

static void root_task(trainer *tr, unsigned t)
{
    tnode *r = &tr->t.n[0];
    hist_build(tr, r, r->h, t);
    tr->tbest[t * 2] = find_split(tr, r, t);
}

/* Grow one tree over idx[0..nrows). */
static int grow_tree(trainer *tr, size_t nrows)
{
    const rank_gbdt_params *p = tr->p;
    tree *t = &tr->t;
    t->len = 0;
    int rc = tree_push(t, 0, nrows, 0);
    if (rc)
        return rc;
    node_sums(tr, &t->n[0]);
    size_t max_leaves = p->max_leaves;
    if (!max_leaves)
        max_leaves = p->max_depth ? ((p->max_depth >= 31) ? SIZE_MAX : (size_t)1 << p->max_depth) : 31;
    size_t leaves = 1;
    size_t *which = NULL;
    if (can_split(tr, &t->n[0]) && max_leaves > 1) {
        if ((rc = ensure_tbest(tr, 1)))
            return rc;
        if (!(t->n[0].h = hist_get(tr)))
            return -ENOMEM;
        tr->nitems = 1;
        run_task(tr, root_task);
        reduce_best(tr, 0, 0, &t->n[0]);
    }
    size_t cap = 0;
    for (;;) {
        /* leaves that will never split give their histograms back */
        for (size_t i = 0; i < t->len; i++)
            if (t->n[i].h && !split_ok(tr, &t->n[i])) {
                hist_put(tr, t->n[i].h);
                t->n[i].h = NULL;
            }
        /* candidates: leaves with a valid split, in node order */
        size_t nw = 0;
        if (p->max_depth) {
            /* depth-wise: all splittable leaves of the shallowest open level */
            unsigned level = UINT32_MAX;
            for (size_t i = 0; i < t->len; i++)
                if (t->n[i].feature < 0 && t->n[i].h && split_ok(tr, &t->n[i]) && t->n[i].depth < level)
                    level = t->n[i].depth;
            if (level == UINT32_MAX)
                break;
            for (size_t i = 0; i < t->len; i++) {
                tnode *nd = &t->n[i];
                if (nd->feature < 0 && nd->h && nd->depth == level && split_ok(tr, nd)) {
                    if (leaves + nw + 1 > max_leaves)
                        break;
                    if (nw == cap) {
                        size_t nc = cap ? cap * 2 : 64;
                        size_t *nn = realloc(which, nc * sizeof *nn);
                        if (!nn) {
                            rc = -ENOMEM;
                            goto out;
                        }
                        which = nn;
                        cap = nc;
                    }
                    which[nw++] = i;
                }
            }
        } else {
            /* leaf-wise: the best gain first (lowest id on ties) */
            size_t bi = SIZE_MAX;
            for (size_t i = 0; i < t->len; i++) {
                tnode *nd = &t->n[i];
                if (nd->feature < 0 && nd->h && split_ok(tr, nd) &&
                    (bi == SIZE_MAX || nd->best.gain > t->n[bi].best.gain))
                    bi = i;
            }
            if (bi != SIZE_MAX && leaves + 1 <= max_leaves) {
                if (!cap) {
                    which = malloc(64 * sizeof *which);
                    if (!which) {
                        rc = -ENOMEM;
                        goto out;
                    }
                    cap = 64;
                }
                which[nw++] = bi;
            }
        }
        if (!nw)
            break;
        /* items: at most one per split */
        job_item *items = realloc(tr->items, nw * sizeof *items);
        if (!items) {
            rc = -ENOMEM;
            goto out;
        }
        tr->items = items;
        if ((rc = apply_splits(tr, which, nw)))
            goto out;
        leaves += nw;
        if (leaves >= max_leaves)
            break;
    }
out:
    for (size_t i = 0; i < t->len; i++) {
        hist_put(tr, t->n[i].h);
        t->n[i].h = NULL;
    }
    free(which);
    if (rc)
        return rc;
    /* leaf values */
    const double lr = p->learning_rate, l2 = p->lambda_l2;
    for (size_t i = 0; i < t->len; i++) {
        tnode *nd = &t->n[i];
        if (nd->feature >= 0)
            continue;
        double den = nd->H + l2;
        double v = den > 0 ? -nd->G / den * lr : 0.0;
        nd->value = (double)(float)v;
    }
    return 0;
}

/* leaf of training row r by its bins */
static inline double tree_value_binned(const trainer *tr, size_t r)
{
    const tnode *n = tr->t.n;
    size_t i = 0;
    while (n[i].feature >= 0)
        i = tr->b->col[(size_t)n[i].feature * tr->N + r] <= n[i].bin ? (size_t)n[i].left
                                                                    : (size_t)n[i].right;
    return n[i].value;
}

static inline double tree_value_x(const rank_node *n, const float *x)
{
    size_t i = 0;
    while (n[i].feature >= 0) {
        float v = x[n[i].feature];
        int left = isnan(v) ? n[i].missing_left : v < n[i].threshold;
        i = left ? (size_t)n[i].left : (size_t)n[i].right;
    }
    return n[i].value;
}

/* ---------------------------------------------------------------- driver */

/* NDCG@1,3,5,10 every round, without allocating: the ideal DCGs are fixed
 * per query, so they are computed once. Same formulas, tie order and
 * summation order as rank_ndcg (metrics.c), hence the same values. */
static const unsigned NDCG_KS[4] = { 1, 3, 5, 10 };

typedef struct ndcg_eval {
    const rank_dataset *d;
    double *idcg;       /* nq * 4 */
    size_t *order, *tmp;
} ndcg_eval;

static void ndcg_eval_free(ndcg_eval *e)
{
    free(e->idcg);
    free(e->order);
    free(e->tmp);
}

static int ndcg_eval_init(ndcg_eval *e, const rank_dataset *d)
{
    memset(e, 0, sizeof *e);
    e->d = d;
    size_t nq = d->nqueries, maxn = 1;
    for (size_t q = 0; q < nq; q++)
        if (d->group[q + 1] - d->group[q] > maxn)
            maxn = d->group[q + 1] - d->group[q];
    e->idcg = malloc((nq ? nq : 1) * 4 * sizeof *e->idcg);
    e->order = malloc(maxn * sizeof *e->order);
    e->tmp = malloc(maxn * sizeof *e->tmp);
    float *lab = malloc(maxn * sizeof *lab);
    if (!e->idcg || !e->order || !e->tmp || !lab) {
        free(lab);
        ndcg_eval_free(e);
        return -ENOMEM;
    }
    for (size_t q = 0; q < nq; q++) {
        size_t b = d->group[q], n = d->group[q + 1] - b;
        for (int j = 0; j < 4; j++)
            e->idcg[q * 4 + j] = rank__ideal_dcg(d->label + b, n, NDCG_KS[j], lab);
    }
    free(lab);
    return 0;
}

static void ndcg_eval_run(ndcg_eval *e, const double *scores, double m[4])
{
    const rank_dataset *d = e->d;
    double sum[4] = { 0, 0, 0, 0 };
    for (size_t q = 0; q < d->nqueries; q++) {
        size_t b = d->group[q], n = d->group[q + 1] - b;
        if (n == 0) {
            for (int j = 0; j < 4; j++)
                sum[j] += 1.0;
            continue;
        }
        rank__order_desc(scores + b, n, e->order, e->tmp);
        for (int j = 0; j < 4; j++) {
            double idcg = e->idcg[q * 4 + j];
            if (idcg <= 0) {
                sum[j] += 1.0;
                continue;
            }
            size_t top = NDCG_KS[j] < n ? NDCG_KS[j] : n;
            double dcg = 0;
            for (size_t r = 0; r < top; r++)
                dcg += (exp2(d->label[b + e->order[r]]) - 1.0) / log2((double)r + 2.0);
            sum[j] += dcg / idcg;
        }
    }
    for (int j = 0; j < 4; j++)
        m[j] = d->nqueries ? sum[j] / (double)d->nqueries : 0.0;
}

static void metrics(ndcg_eval *e, const rank_dataset *d, const double *s, enum rank_objective obj, double m[4])
{
    if (obj == RANK_OBJ_LAMBDARANK) {
        ndcg_eval_run(e, s, m);
    } else {
        m[0] = rank_logloss(d, s);
        m[1] = m[2] = m[3] = 0.0;
    }
}

typedef struct saved_tree {
    rank_node *n;
    size_t len;
} saved_tree;

int rank_train_gbdt(const rank_dataset *train, const rank_dataset *valid,
                    const rank_gbdt_params *p, rank_round_cb cb, void *ud,
                    rank_model_t **out, fn_errbuf *eb)
{
    *out = NULL;
    if (!train || !p || train->rows == 0 || train->nfeatures == 0)
        return fn_seterr(eb, FN_EINVAL, "train: empty training data");
    if (p->objective != RANK_OBJ_LAMBDARANK && p->objective != RANK_OBJ_BINARY)
        return fn_seterr(eb, FN_EINVAL, "train: objective must be lambdarank or binary for trees");
    if (p->objective == RANK_OBJ_LAMBDARANK && train->nqueries == 0)
        return fn_seterr(eb, FN_EINVAL, "train: lambdarank needs query groups (qid: or a .query file)");
    if (valid && valid->rows && valid->nfeatures < train->nfeatures)
        return fn_seterr(eb, FN_EINVAL, "train: validation data has %zu features, training %zu",
                         valid->nfeatures, train->nfeatures);
    if (valid && p->objective == RANK_OBJ_LAMBDARANK && valid->nqueries == 0)
        return fn_seterr(eb, FN_EINVAL, "train: lambdarank validation data needs query groups");
    if (!(p->learning_rate > 0) || p->max_bins < 2 || (p->max_depth == 0 && p->max_leaves == 1) ||
        !(p->row_subsample > 0 && p->row_subsample <= 1) ||
        !(p->feature_subsample > 0 && p->feature_subsample <= 1) || p->lambda_l2 < 0)
        return fn_seterr(eb, FN_EINVAL, "train: bad parameters (learning rate, bins, subsample or l2)");
    if (!isfinite(p->base_weight) || (p->base_weight != 0 && p->base_feature >= train->nfeatures))
        return fn_seterr(eb, FN_EINVAL, "train: bad base margin (feature %zu of %zu, weight %g)",
                         p->base_feature, train->nfeatures, p->base_weight);

    const size_t N = train->rows, F = train->nfeatures;
    const size_t NV = valid ? valid->rows : 0;
    unsigned T = p->threads ? p->threads : 1;
    if (T > 64)
        T = 64;
    if (T > F)
        T = (unsigned)F;
    trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.p = p;
    tr.N = N;
    tr.T = T;
    binned b;
    int rc = build_bins(train, p->max_bins, T, &b);
    if (rc)
        return fn_seterr(eb, rc, "train: out of memory binning the data");
    tr.b = &b;

    double *score = calloc(N, sizeof *score);
    double *vscore = calloc(NV + 1, sizeof *vscore);
    double *grad = calloc(N, sizeof *grad), *hess = calloc(N, sizeof *hess);
    uint8_t *qon = malloc(train->nqueries + 1);
    tr.gh = malloc(N * sizeof *tr.gh);
    tr.idx = malloc(N * sizeof *tr.idx);
    tr.tmp = malloc(N * sizeof *tr.tmp);
    tr.featon = malloc(F);
    unsigned *fperm = malloc(F * sizeof *fperm);
    saved_tree *trees = calloc(p->trees + 1, sizeof *trees);
    rank_model_t *m = NULL;
    ndcg_eval etrain, evalid;
    memset(&etrain, 0, sizeof etrain);
    memset(&evalid, 0, sizeof evalid);
    size_t ntrees = 0, keep = 0;
    rc = -ENOMEM;
    if (!score || !vscore || !grad || !hess || !qon || !tr.gh || !tr.idx || !tr.tmp || !tr.featon || !fperm || !trees) {
        fn_seterr(eb, rc, "train: out of memory");
        goto fail;
    }
    if (p->objective == RANK_OBJ_LAMBDARANK &&
        (ndcg_eval_init(&etrain, train) || (valid && ndcg_eval_init(&evalid, valid)))) {
        fn_seterr(eb, rc, "train: out of memory");
        goto fail;
    }
    if (pool_start(&tr)) {
        fn_seterr(eb, rc, "train: out of memory");
        goto fail;
    }

    /* base score */
    double base = 0.0;
    if (p->objective == RANK_OBJ_BINARY) {
        size_t pos = 0;
        for (size_t r = 0; r < N; r++)
            pos += train->label[r] > 0;
        if (pos > 0 && pos < N) {
            double pr = (double)pos / (double)N;
            base = log(pr / (1.0 - pr));
        }
    }
    const double bw = p->base_weight;
    const size_t bf = p->base_feature;
    for (size_t r = 0; r < N; r++)
        score[r] = base + (bw != 0 ? bw * xval(train->X[r * F + bf]) : 0.0);
    for (size_t r = 0; r < NV; r++)
        vscore[r] = base + (bw != 0 ? bw * xval(valid->X[r * valid->nfeatures + bf]) : 0.0);

    uint64_t rng = p->seed;
    double best_metric = 0;
    size_t best_round = 0;
    const int lower_better = p->objective == RANK_OBJ_BINARY;
    for (unsigned round = 1; round <= p->trees; round++) {
        /* row sample (whole queries for lambdarank) before the gradients:
         * rows left out of this tree need none (their slots keep stale
         * values nothing reads), and the sample draws the same numbers */
        size_t nrows = 0;
        int sampled = 0;
        if (p->row_subsample < 1.0) {
            if (p->objective == RANK_OBJ_LAMBDARANK) {
                for (size_t q = 0; q < train->nqueries; q++) {
                    qon[q] = rand_unit(&rng) < p->row_subsample;
                    if (qon[q])
                        for (size_t r = train->group[q]; r < train->group[q + 1]; r++)
                            tr.idx[nrows++] = r;
                }
            } else {
                for (size_t r = 0; r < N; r++)
                    if (rand_unit(&rng) < p->row_subsample)
                        tr.idx[nrows++] = r;
            }
            sampled = nrows > 0;
        }
        if (nrows == 0) {
            for (size_t r = 0; r < N; r++)
                tr.idx[r] = r;
            nrows = N;
        }
        /* gradients */
        if (p->objective == RANK_OBJ_LAMBDARANK) {
            for (size_t q = 0; q < train->nqueries; q++) {
                if (sampled && !qon[q])
                    continue;
                size_t s = train->group[q], e = train->group[q + 1];
                rank_lambda_gradients(train->label + s, score + s, e - s, p->ndcg_k, grad + s, hess + s);
            }
        } else {
            for (size_t r = 0; r < N; r++) {
                double pr = rank_sigmoid(score[r]);
                grad[r] = pr - (train->label[r] > 0 ? 1.0 : 0.0);
                hess[r] = fmax(pr * (1.0 - pr), 1e-16);
            }
        }
        for (size_t r = 0; r < N; r++) {
            tr.gh[r].g = grad[r];
            tr.gh[r].h = hess[r];
        }
        /* feature sample */
        if (p->feature_subsample < 1.0) {
            size_t k = (size_t)ceil(p->feature_subsample * (double)F);
            if (k < 1)
                k = 1;
            for (size_t f = 0; f < F; f++)
                fperm[f] = (unsigned)f;
            memset(tr.featon, 0, F);
            for (size_t i = 0; i < k; i++) {
                size_t j = i + (size_t)(fn_splitmix64(&rng) % (F - i));
                unsigned x = fperm[i];
                fperm[i] = fperm[j];
                fperm[j] = x;
                tr.featon[fperm[i]] = 1;
            }
        } else {
            memset(tr.featon, 1, F);
        }

        if ((rc = grow_tree(&tr, nrows))) {
            fn_seterr(eb, rc, "train: out of memory growing tree %u", round);
            goto fail;
        }
        /* keep the tree in model form */
        saved_tree *st = &trees[ntrees];
        st->n = malloc(tr.t.len * sizeof *st->n);
        if (!st->n) {
            rc = -ENOMEM;
            fn_seterr(eb, rc, "train: out of memory");
            goto fail;
        }
        st->len = tr.t.len;
        for (size_t i = 0; i < tr.t.len; i++) {
            const tnode *nd = &tr.t.n[i];
            st->n[i] = (rank_node){ .feature = nd->feature, .threshold = nd->threshold,
                                    .left = nd->left, .right = nd->right,
                                    .missing_left = nd->missing_left, .value = nd->value };
            if (nd->feature < 0)
                st->n[i].threshold = 0.0f;
        }
        ntrees++;
        keep = ntrees;
        /* scores */
        for (size_t r = 0; r < N; r++)
            score[r] += tree_value_binned(&tr, r);
        for (size_t r = 0; r < NV; r++)
            vscore[r] += tree_value_x(st->n, valid->X + r * valid->nfeatures);

        double tm[4] = { 0 }, vm[4] = { 0 };
        if (cb)
            metrics(&etrain, train, score, p->objective, tm);
        if (valid && NV)
            metrics(&evalid, valid, vscore, p->objective, vm);
        int stop = cb ? cb(ud, round, tm, (valid && NV) ? vm : NULL) : 0;
        if (valid && NV && p->early_stopping) {
            double v = lower_better ? vm[0] : vm[3];
            if (best_round == 0 || (lower_better ? v < best_metric : v > best_metric)) {
                best_metric = v;
                best_round = round;
            }
            keep = best_round;
            if (round - best_round >= p->early_stopping)
                break;
        }
        if (stop)
            break;
    }

    rc = rank_model_new(RANK_MODEL_TREES, p->objective == RANK_OBJ_LAMBDARANK ? "lambdarank" : "binary",
                        F, &m);
    if (rc) {
        fn_seterr(eb, rc, "train: cannot create the model");
        goto fail;
    }
    rank_model_set_base_score(m, base);
    for (size_t i = 0; i < keep; i++)
        if ((rc = rank_model_add_tree(m, trees[i].n, trees[i].len))) {
            fn_seterr(eb, rc, "train: cannot add tree %zu", i);
            goto fail;
        }
    if (bw != 0) {
        double *w = calloc(F, sizeof *w);
        if (w)
            w[bf] = bw;
        rc = w ? rank_model_set_linear_part(m, w) : -ENOMEM;
        free(w);
        if (rc) {
            fn_seterr(eb, rc, "train: cannot set the base margin");
            goto fail;
        }
    }
    if (train->feature_names &&
        (rc = rank_model_set_feature_names(m, (const char *const *)train->feature_names, F))) {
        fn_seterr(eb, rc, "train: cannot set feature names");
        goto fail;
    }
    if ((rc = rank_model_finalize(m))) {
        fn_seterr(eb, rc, "train: cannot finalize the model");
        goto fail;
    }
    *out = m;
    m = NULL;
    rc = 0;
fail:
    rank_model_free(m);
    pool_stop(&tr);
    for (size_t i = 0; i < ntrees; i++)
        free(trees[i].n);
    free(trees);
    for (size_t i = 0; i < tr.t.len; i++)
        hist_put(&tr, tr.t.n[i].h);
    hist_free_all(tr.freel);
    free(tr.t.n);
    free(tr.items);
    free(tr.tbest);
    free(score);
    free(vscore);
    free(grad);
    free(hess);
    free(qon);
    free(tr.gh);
    free(tr.idx);
    free(tr.tmp);
    free(tr.featon);
    free(fperm);
    ndcg_eval_free(&etrain);
    ndcg_eval_free(&evalid);
    binned_free(&b);
    return rc;
}
