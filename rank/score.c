/* score.c - compiled scoring layouts and batch scoring.
 *
 * Methods (model_int.h), fastest first as measured by tests/bench/score_bench
 * (docs/ltr.md has the table):
 *   AVX512   trees padded to perfect binary trees (depth <= 8), 64 documents
 *            a block as 4 vectors of 16 lanes, tree-major over the block;
 *            each level is gather(feature word) + gather(threshold) +
 *            gather(x) + compare, idx = 2*idx + 1 + go_right. No branches.
 *   PERFECT  the same padded layout, scalar and branch-free; the inner loop
 *            runs over the block's documents per level, so the CPU overlaps
 *            the independent chains.
 *   FLAT     any shape: struct-of-arrays nodes, block of documents tree-major,
 *            a data-dependent branch per node.
 *   NAIVE    pointer chasing over rank_node, one document at a time (baseline).
 * Every method adds leaf values in tree order in double precision, so all give
 * bit-identical scores. Missing (NaN) follows each split's default direction.
 * Nothing here allocates or writes shared state: the model is read-only. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX512_CODE 1
#endif

#include "model_int.h"

#define BLOCK 64

const char *rank_score_method_name(int method)
{
    switch (method) {
    case RANK_SCORE_AUTO: return "auto";
    case RANK_SCORE_NAIVE: return "naive";
    case RANK_SCORE_FLAT: return "flat";
    case RANK_SCORE_PERFECT: return "perfect";
    case RANK_SCORE_AVX512: return "avx512";
    case RANK_SCORE_AVX512T: return "avx512t";
    case RANK_SCORE_QS: return "qs";
    default: return "?";
    }
}

static int cpu_avx512(void)
{
#ifdef HAVE_AVX512_CODE
    static int cached = -1;
    if (cached < 0) { /* benign race: every thread computes the same value */
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") ? 1 : 0;
    }
    return cached;
#else
    return 0;
#endif
}

int rank_score_method_available(const rank_model_t *m, int method)
{
    if (method == RANK_SCORE_AUTO || method == RANK_SCORE_NAIVE)
        return 1;
    if (!m->finalized || m->kind != RANK_MODEL_TREES)
        return 0;
    switch (method) {
    case RANK_SCORE_FLAT: return 1;
    case RANK_SCORE_PERFECT: return m->perfect.fword != NULL;
    case RANK_SCORE_AVX512:
    case RANK_SCORE_AVX512T: return m->perfect.fword != NULL && cpu_avx512();
    case RANK_SCORE_QS: return m->qs.mask != NULL && cpu_avx512();
    default: return 0;
    }
}

/* ---- compile ---- */

void rank_score_release(rank_model_t *m)
{
    free(m->flat.feature);
    free(m->flat.threshold);
    free(m->flat.child);
    free(m->flat.missing_left);
    free(m->flat.leaf);
    free(m->flat.root);
    free(m->perfect.fword);
    free(m->perfect.threshold);
    free(m->perfect.leaf);
    free(m->perfect.node_off);
    free(m->perfect.leaf_off);
    free(m->perfect.depth);
    free(m->perfect.tab_fw);
    free(m->perfect.tab_th);
    free(m->qs.fcol);
    free(m->qs.threshold);
    free(m->qs.mask);
    free(m->qs.leaf);
    free(m->qs.off);
    free(m->qs.nleft);
    free(m->qs.col);
    memset(&m->qs, 0, sizeof(m->qs));
    memset(&m->flat, 0, sizeof(m->flat));
    memset(&m->perfect, 0, sizeof(m->perfect));
}

static int compile_flat(rank_model_t *m)
{
    size_t ni = 0, nl = 0;
    for (size_t t = 0; t < m->ntrees; t++)
        for (size_t i = 0; i < m->trees[t].n; i++) {
            if (m->trees[t].nodes[i].feature >= 0)
                ni++;
            else
                nl++;
        }
    if (ni > INT32_MAX || nl > INT32_MAX)
        return FN_ELIMIT;
    rank_flat *f = &m->flat;
    f->feature = malloc((ni + 1) * sizeof(int32_t));
    f->threshold = malloc((ni + 1) * sizeof(float));
    f->child = malloc((2 * ni + 1) * sizeof(int32_t));
    f->missing_left = malloc(ni + 1);
    f->leaf = malloc((nl + 1) * sizeof(double));
    f->root = malloc((m->ntrees + 1) * sizeof(int32_t));
    int32_t *map = NULL;
    size_t maxn = 0;
    for (size_t t = 0; t < m->ntrees; t++)
        if (m->trees[t].n > maxn)
            maxn = m->trees[t].n;
    map = malloc((maxn + 1) * sizeof(int32_t));
    if (!f->feature || !f->threshold || !f->child || !f->missing_left || !f->leaf || !f->root || !map) {
        free(map);
        return -ENOMEM;
    }
    size_t ii = 0, li = 0;
    for (size_t t = 0; t < m->ntrees; t++) {
        const rank_tree *tr = &m->trees[t];
        /* global ids: internal i -> ii.., leaf -> ~li */
        for (size_t i = 0; i < tr->n; i++)
            map[i] = tr->nodes[i].feature >= 0 ? (int32_t)ii++ : ~(int32_t)li++;
        for (size_t i = 0; i < tr->n; i++) {
            const rank_node *x = &tr->nodes[i];
            if (x->feature >= 0) {
                int32_t g = map[i];
                f->feature[g] = x->feature;
                f->threshold[g] = x->threshold;
                f->missing_left[g] = x->missing_left;
                f->child[2 * g] = map[x->left];
                f->child[2 * g + 1] = map[x->right];
            } else {
                f->leaf[~map[i]] = x->value;
            }
        }
        f->root[t] = map[0];
    }
    free(map);
    return 0;
}

/* Fill perfect-tree slot pos (level lv of D) from node i of tree tr. */
static void fill_perfect(const rank_tree *tr, size_t i, size_t pos, size_t lv, size_t D, int32_t *fw, float *th,
                         double *leaf)
{
    const rank_node *x = &tr->nodes[i];
    if (lv == D) {
        leaf[pos - (((size_t)1 << D) - 1)] = x->value;
        return;
    }
    if (x->feature < 0) { /* padding: both sides reach copies of this leaf */
        fw[pos] = 0;
        th[pos] = 0;
        fill_perfect(tr, i, 2 * pos + 1, lv + 1, D, fw, th, leaf);
        fill_perfect(tr, i, 2 * pos + 2, lv + 1, D, fw, th, leaf);
        return;
    }
    fw[pos] = x->feature | (x->missing_left ? 0 : INT32_MIN);
    th[pos] = x->threshold;
    fill_perfect(tr, (size_t)x->left, 2 * pos + 1, lv + 1, D, fw, th, leaf);
    fill_perfect(tr, (size_t)x->right, 2 * pos + 2, lv + 1, D, fw, th, leaf);
}

static int compile_perfect(rank_model_t *m)
{
    size_t ni = 0, nl = 0;
    for (size_t t = 0; t < m->ntrees; t++) {
        size_t D = m->trees[t].depth;
        if (D > RANK_PERFECT_MAX_DEPTH)
            return 0; /* not available; FLAT serves this model */
        ni += ((size_t)1 << D) - 1;
        nl += (size_t)1 << D;
    }
    rank_perfect *p = &m->perfect;
    /* +16 so that vector code may read a little past the last tree */
    p->fword = calloc(ni + 16, sizeof(int32_t));
    p->threshold = calloc(ni + 16, sizeof(float));
    p->leaf = calloc(nl + 16, sizeof(double));
    p->node_off = malloc((m->ntrees + 1) * sizeof(size_t));
    p->leaf_off = malloc((m->ntrees + 1) * sizeof(size_t));
    p->depth = malloc(m->ntrees + 1);
    if (!p->fword || !p->threshold || !p->leaf || !p->node_off || !p->leaf_off || !p->depth)
        return -ENOMEM;
    size_t no = 0, lo = 0;
    for (size_t t = 0; t < m->ntrees; t++) {
        size_t D = m->trees[t].depth;
        p->node_off[t] = no;
        p->leaf_off[t] = lo;
        p->depth[t] = (uint8_t)D;
        fill_perfect(&m->trees[t], 0, 0, 0, D, p->fword + no, p->threshold + no, p->leaf + lo);
        no += ((size_t)1 << D) - 1;
        lo += (size_t)1 << D;
    }
    size_t tn = (m->ntrees ? m->ntrees : 1) * 64;
    p->tab_fw = aligned_alloc(64, tn * sizeof(int32_t));
    p->tab_th = aligned_alloc(64, tn * sizeof(float));
    if (!p->tab_fw || !p->tab_th)
        return -ENOMEM;
    memset(p->tab_fw, 0, tn * sizeof(int32_t));
    memset(p->tab_th, 0, tn * sizeof(float));
    for (size_t t = 0; t < m->ntrees; t++) {
        size_t D = p->depth[t], nn = ((size_t)1 << D) - 1;
        if (D > 6)
            continue;
        for (size_t i = 0; i < nn; i++) {
            size_t slot = i < 31 ? i : 32 + (i - 31);
            p->tab_fw[t * 64 + slot] = p->fword[p->node_off[t] + i];
            p->tab_th[t * 64 + slot] = p->threshold[p->node_off[t] + i];
        }
    }
    return 0;
}


/* In-order walk: number leaves left to right; record each internal node's
 * left-subtree leaf range. */
static unsigned qs_walk(const rank_tree *tr, size_t i, unsigned next, unsigned *lo, unsigned *hi, double *leaf)
{
    const rank_node *x = &tr->nodes[i];
    if (x->feature < 0) {
        leaf[next] = x->value;
        return next + 1;
    }
    lo[i] = next;
    next = qs_walk(tr, (size_t)x->left, next, lo, hi, leaf);
    hi[i] = next;
    return qs_walk(tr, (size_t)x->right, next, lo, hi, leaf);
}

static int compile_qs(rank_model_t *m)
{
    size_t ni = 0, maxn = 0;
    for (size_t t = 0; t < m->ntrees; t++) {
        const rank_tree *tr = &m->trees[t];
        size_t nl = 0;
        for (size_t i = 0; i < tr->n; i++)
            nl += tr->nodes[i].feature < 0;
        if (nl > 64)
            return 0; /* unavailable */
        ni += tr->n - nl;
        if (tr->n > maxn)
            maxn = tr->n;
    }
    rank_qs *q = &m->qs;
    int32_t *colmap = malloc((m->nfeatures + 1) * sizeof(int32_t));
    unsigned *lo = malloc((maxn + 1) * sizeof(unsigned)), *hi = malloc((maxn + 1) * sizeof(unsigned));
    q->fcol = malloc((ni + 1) * sizeof(int32_t));
    q->threshold = malloc((ni + 1) * sizeof(float));
    q->mask = malloc((ni + 1) * sizeof(uint64_t));
    q->leaf = calloc((m->ntrees + 1) * 64, sizeof(double));
    q->off = malloc((m->ntrees + 1) * sizeof(size_t));
    q->nleft = malloc((m->ntrees + 1) * sizeof(uint32_t));
    q->col = malloc((m->nfeatures + 1) * sizeof(int32_t));
    int rc = 0;
    if (!colmap || !lo || !hi || !q->fcol || !q->threshold || !q->mask || !q->leaf || !q->off || !q->nleft ||
        !q->col) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t f = 0; f < m->nfeatures; f++)
        colmap[f] = -1;
    size_t k = 0;
    for (size_t t = 0; t < m->ntrees; t++) {
        const rank_tree *tr = &m->trees[t];
        qs_walk(tr, 0, 0, lo, hi, q->leaf + t * 64);
        q->off[t] = k;
        for (int pass = 0; pass < 2; pass++) { /* missing-left nodes first */
            for (size_t i = 0; i < tr->n; i++) {
                const rank_node *x = &tr->nodes[i];
                if (x->feature < 0 || (pass == 0) != (x->missing_left != 0))
                    continue;
                if (colmap[x->feature] < 0) {
                    colmap[x->feature] = (int32_t)q->ncols;
                    q->col[q->ncols++] = x->feature;
                }
                uint64_t left = (hi[i] - lo[i] == 64) ? ~0ULL : ((1ULL << (hi[i] - lo[i])) - 1) << lo[i];
                q->fcol[k] = colmap[x->feature];
                q->threshold[k] = x->threshold;
                q->mask[k] = ~left;
                k++;
            }
            if (pass == 0)
                q->nleft[t] = (uint32_t)(k - q->off[t]);
        }
    }
    q->off[m->ntrees] = k;
    if (q->ncols > RANK_QS_MAX_COLS) { /* transposed block would not fit the stack */
        free(q->mask);
        q->mask = NULL;
    }
out:
    free(colmap);
    free(lo);
    free(hi);
    return rc;
}

int rank_score_compile(rank_model_t *m)
{
    rank_score_release(m);
    if (m->kind != RANK_MODEL_TREES) {
        m->method = RANK_SCORE_NAIVE;
        return 0;
    }
    int rc = compile_flat(m);
    if (rc == 0)
        rc = compile_perfect(m);
    if (rc == 0)
        rc = compile_qs(m);
    if (rc) {
        rank_score_release(m);
        return rc;
    }
    /* Measured on 500 docs (score_bench, AMD EPYC, AVX-512): QS costs ~26 ns
     * per internal node, AVX512T ~270 ns per padded tree level; QS wins on
     * trained trees (XGBoost depth 6: ~17 leaves a tree, 0.37 vs 0.80 ms),
     * they tie on complete depth-6 trees. */
    size_t nodes = m->qs.mask ? m->qs.off[m->ntrees] : 0, levels = 0;
    for (size_t t = 0; t < m->ntrees; t++)
        levels += m->trees[t].depth;
    if (m->qs.mask && cpu_avx512() && (!m->perfect.fword || nodes <= 10 * levels))
        m->method = RANK_SCORE_QS;
    else if (m->perfect.fword && cpu_avx512())
        m->method = RANK_SCORE_AVX512T;
    else if (m->perfect.fword)
        m->method = RANK_SCORE_PERFECT;
    else
        m->method = RANK_SCORE_FLAT;
    return 0;
}

/* ---- scoring ---- */

static void score_linear(const rank_model_t *m, const float *X, size_t n, size_t stride, double *out)
{
    for (size_t r = 0; r < n; r++) {
        const float *x = X + r * stride;
        double s = m->base_score + m->bias;
        for (size_t i = 0; i < m->nfeatures; i++)
            if (!isnan(x[i])) /* missing counts as 0 */
                s += m->weights[i] * x[i];
        out[r] = s;
    }
}

static void score_naive(const rank_model_t *m, const float *X, size_t n, size_t stride, double *out)
{
    for (size_t r = 0; r < n; r++) {
        const float *x = X + r * stride;
        double s = m->base_score;
        for (size_t t = 0; t < m->ntrees; t++) {
            const rank_node *nodes = m->trees[t].nodes;
            const rank_node *nd = nodes;
            while (nd->feature >= 0) {
                float v = x[nd->feature];
                int left = isnan(v) ? nd->missing_left : v < nd->threshold;
                nd = nodes + (left ? nd->left : nd->right);
            }
            s += nd->value;
        }
        out[r] = s;
    }
}

static void score_flat(const rank_model_t *m, const float *X, size_t n, size_t stride, double *out)
{
    const rank_flat *f = &m->flat;
    for (size_t b = 0; b < n; b += BLOCK) {
        size_t bn = n - b < BLOCK ? n - b : BLOCK;
        double acc[BLOCK];
        for (size_t d = 0; d < bn; d++)
            acc[d] = m->base_score;
        for (size_t t = 0; t < m->ntrees; t++) {
            int32_t root = f->root[t];
            for (size_t d = 0; d < bn; d++) {
                const float *x = X + (b + d) * stride;
                int32_t i = root;
                while (i >= 0) {
                    float v = x[f->feature[i]];
                    int right = isnan(v) ? !f->missing_left[i] : !(v < f->threshold[i]);
                    i = f->child[2 * i + right];
                }
                acc[d] += f->leaf[~i];
            }
        }
        memcpy(out + b, acc, bn * sizeof(double));
    }
}

static void score_perfect(const rank_model_t *m, const float *X, size_t n, size_t stride, double *out)
{
    const rank_perfect *p = &m->perfect;
    for (size_t b = 0; b < n; b += BLOCK) {
        size_t bn = n - b < BLOCK ? n - b : BLOCK;
        double acc[BLOCK];
        uint32_t idx[BLOCK];
        const float *Xb = X + b * stride;
        for (size_t d = 0; d < bn; d++)
            acc[d] = m->base_score;
        for (size_t t = 0; t < m->ntrees; t++) {
            const int32_t *fw = p->fword + p->node_off[t];
            const float *th = p->threshold + p->node_off[t];
            unsigned D = p->depth[t];
            for (size_t d = 0; d < bn; d++)
                idx[d] = 0;
            for (unsigned lv = 0; lv < D; lv++) {
                for (size_t d = 0; d < bn; d++) {
                    uint32_t i = idx[d];
                    uint32_t w = (uint32_t)fw[i];
                    float v = Xb[d * stride + (w & 0x7fffffffu)];
                    uint32_t right = (uint32_t)(v >= th[i]) | ((uint32_t)(v != v) & (w >> 31));
                    idx[d] = 2 * i + 1 + right;
                }
            }
            const double *leaf = p->leaf + p->leaf_off[t];
            uint32_t first = (1u << D) - 1;
            for (size_t d = 0; d < bn; d++)
                acc[d] += leaf[idx[d] - first];
        }
        memcpy(out + b, acc, bn * sizeof(double));
    }
}

#ifdef HAVE_AVX512_CODE
#define NV (BLOCK / 16)

__attribute__((target("avx512f")))
static void score_avx512(const rank_model_t *m, const float *X, size_t n, size_t stride, double *out)
{
    const rank_perfect *p = &m->perfect;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i fmask = _mm512_set1_epi32(0x7fffffff);
    const __m512i zero = _mm512_setzero_si512();
    for (size_t b = 0; b < n; b += BLOCK) {
        size_t bn = n - b < BLOCK ? n - b : BLOCK;
        const float *Xb = X + b * stride;
        __m512i rowoff[NV];
        __m512d acclo[NV], acchi[NV];
        for (int v = 0; v < NV; v++) {
            /* lanes past the end read row 0 of the block and are not stored */
            __m512i r = _mm512_add_epi32(lane, _mm512_set1_epi32(v * 16));
            __mmask16 valid = _mm512_cmplt_epi32_mask(r, _mm512_set1_epi32((int)bn));
            r = _mm512_maskz_mov_epi32(valid, r);
            rowoff[v] = _mm512_mullo_epi32(r, _mm512_set1_epi32((int)stride));
            acclo[v] = acchi[v] = _mm512_set1_pd(m->base_score);
        }
        for (size_t t = 0; t < m->ntrees; t++) {
            const int32_t *fw = p->fword + p->node_off[t];
            const float *th = p->threshold + p->node_off[t];
            unsigned D = p->depth[t];
            __m512i idx[NV];
            if (D == 0) {
                for (int v = 0; v < NV; v++)
                    idx[v] = zero;
            } else {
                /* level 0: every lane is at the root */
                __m512i w = _mm512_set1_epi32(fw[0]);
                __m512 tt = _mm512_set1_ps(th[0]);
                __mmask16 mr = _mm512_cmplt_epi32_mask(w, zero);
                __m512i f = _mm512_and_si512(w, fmask);
                for (int v = 0; v < NV; v++) {
                    __m512 x = _mm512_i32gather_ps(_mm512_add_epi32(rowoff[v], f), Xb, 4);
                    __mmask16 right = _mm512_cmp_ps_mask(x, tt, _CMP_GE_OQ) |
                                      (_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q) & mr);
                    idx[v] = _mm512_mask_add_epi32(one, right, one, one);
                }
                for (unsigned lv = 1; lv < D; lv++) {
                    for (int v = 0; v < NV; v++) {
                        __m512i wv = _mm512_i32gather_epi32(idx[v], fw, 4);
                        __m512 tv = _mm512_i32gather_ps(idx[v], th, 4);
                        __mmask16 mrv = _mm512_cmplt_epi32_mask(wv, zero);
                        __m512i fv = _mm512_and_si512(wv, fmask);
                        __m512 x = _mm512_i32gather_ps(_mm512_add_epi32(rowoff[v], fv), Xb, 4);
                        __mmask16 right = _mm512_cmp_ps_mask(x, tv, _CMP_GE_OQ) |
                                          (_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q) & mrv);
                        __m512i nx = _mm512_add_epi32(_mm512_add_epi32(idx[v], idx[v]), one);
                        idx[v] = _mm512_mask_add_epi32(nx, right, nx, one);
                    }
                }
            }
            const double *leaf = p->leaf + p->leaf_off[t];
            __m512i base = _mm512_set1_epi32((1 << D) - 1);
            for (int v = 0; v < NV; v++) {
                __m512i li = _mm512_sub_epi32(idx[v], base);
                acclo[v] = _mm512_add_pd(acclo[v], _mm512_i32gather_pd(_mm512_castsi512_si256(li), leaf, 8));
                acchi[v] = _mm512_add_pd(acchi[v],
                                         _mm512_i32gather_pd(_mm512_extracti64x4_epi64(li, 1), leaf, 8));
            }
        }
        double acc[BLOCK];
        for (int v = 0; v < NV; v++) {
            _mm512_storeu_pd(acc + v * 16, acclo[v]);
            _mm512_storeu_pd(acc + v * 16 + 8, acchi[v]);
        }
        memcpy(out + b, acc, bn * sizeof(double));
    }
}

/* Per level for 16 lanes: look up the node word and threshold, gather x,
 * idx = 2*idx + 1 + go_right. */
#define AVX_STEP(W, TH, IDX, ROW)                                                                    \
    do {                                                                                             \
        __mmask16 mr_ = _mm512_cmplt_epi32_mask((W), zero);                                          \
        __m512 x_ = _mm512_i32gather_ps(_mm512_add_epi32((ROW), _mm512_and_si512((W), fmask)), Xb, 4); \
        __mmask16 right_ = _mm512_cmp_ps_mask(x_, (TH), _CMP_GE_OQ) |                                 \
                           (_mm512_cmp_ps_mask(x_, x_, _CMP_UNORD_Q) & mr_);                          \
        __m512i nx_ = _mm512_add_epi32(_mm512_add_epi32((IDX), (IDX)), one);                          \
        (IDX) = _mm512_mask_add_epi32(nx_, right_, nx_, one);                                         \
    } while (0)

#ifndef TBLOCK
#define TBLOCK 128
#endif
#define TNV (TBLOCK / 16)

__attribute__((target("avx512f")))
static void score_avx512t(const rank_model_t *m, const float *X, size_t n, size_t stride, double *out)
{
    const rank_perfect *p = &m->perfect;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i fmask = _mm512_set1_epi32(0x7fffffff);
    const __m512i zero = _mm512_setzero_si512();
    const __m512i l5 = _mm512_set1_epi32(31);
    for (size_t b = 0; b < n; b += TBLOCK) {
        size_t bn = n - b < TBLOCK ? n - b : TBLOCK;
        const float *Xb = X + b * stride;
        __m512i rowoff[TNV];
        __m512d acclo[TNV], acchi[TNV];
        for (int v = 0; v < TNV; v++) {
            __m512i r = _mm512_add_epi32(lane, _mm512_set1_epi32(v * 16));
            __mmask16 valid = _mm512_cmplt_epi32_mask(r, _mm512_set1_epi32((int)bn));
            r = _mm512_maskz_mov_epi32(valid, r);
            rowoff[v] = _mm512_mullo_epi32(r, _mm512_set1_epi32((int)stride));
            acclo[v] = acchi[v] = _mm512_set1_pd(m->base_score);
        }
        for (size_t t = 0; t < m->ntrees; t++) {
            unsigned D = p->depth[t];
            __m512i idx[TNV];
            for (int v = 0; v < TNV; v++)
                idx[v] = zero;
            if (D > 6) { /* too big for the register tables: gathers */
                const int32_t *fw = p->fword + p->node_off[t];
                const float *th = p->threshold + p->node_off[t];
                for (unsigned lv = 0; lv < D; lv++)
                    for (int v = 0; v < TNV; v++) {
                        __m512i w = _mm512_i32gather_epi32(idx[v], fw, 4);
                        __m512 tv = _mm512_i32gather_ps(idx[v], th, 4);
                        AVX_STEP(w, tv, idx[v], rowoff[v]);
                    }
            } else if (D > 0) {
                const int32_t *tf = p->tab_fw + t * 64;
                const float *tt = p->tab_th + t * 64;
                __m512i fa0 = _mm512_load_si512(tf), fa1 = _mm512_load_si512(tf + 16);
                __m512 ta0 = _mm512_load_ps(tt), ta1 = _mm512_load_ps(tt + 16);
                unsigned top = D < 5 ? D : 5;
                for (unsigned lv = 0; lv < top; lv++)
                    for (int v = 0; v < TNV; v++) {
                        __m512i w = _mm512_permutex2var_epi32(fa0, idx[v], fa1);
                        __m512 tv = _mm512_permutex2var_ps(ta0, idx[v], ta1);
                        AVX_STEP(w, tv, idx[v], rowoff[v]);
                    }
                if (D == 6) {
                    __m512i fb0 = _mm512_load_si512(tf + 32), fb1 = _mm512_load_si512(tf + 48);
                    __m512 tb0 = _mm512_load_ps(tt + 32), tb1 = _mm512_load_ps(tt + 48);
                    for (int v = 0; v < TNV; v++) {
                        __m512i li = _mm512_sub_epi32(idx[v], l5);
                        __m512i w = _mm512_permutex2var_epi32(fb0, li, fb1);
                        __m512 tv = _mm512_permutex2var_ps(tb0, li, tb1);
                        AVX_STEP(w, tv, idx[v], rowoff[v]);
                    }
                }
            }
            const double *leaf = p->leaf + p->leaf_off[t];
            __m512i base = _mm512_set1_epi32((1 << D) - 1);
            for (int v = 0; v < TNV; v++) {
                __m512i li = _mm512_sub_epi32(idx[v], base);
                acclo[v] = _mm512_add_pd(acclo[v], _mm512_i32gather_pd(_mm512_castsi512_si256(li), leaf, 8));
                acchi[v] = _mm512_add_pd(acchi[v],
                                         _mm512_i32gather_pd(_mm512_extracti64x4_epi64(li, 1), leaf, 8));
            }
        }
        double acc[TBLOCK];
        for (int v = 0; v < TNV; v++) {
            _mm512_storeu_pd(acc + v * 16, acclo[v]);
            _mm512_storeu_pd(acc + v * 16 + 8, acchi[v]);
        }
        memcpy(out + b, acc, bn * sizeof(double));
    }
}

#ifndef QV
#define QV 2
#endif

__attribute__((target("avx512f,avx512cd")))
static void score_qs(const rank_model_t *m, const float *X, size_t n, size_t stride, double *out)
{
    const rank_qs *q = &m->qs;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i ones = _mm512_set1_epi64(-1);
    const __m512i c63 = _mm512_set1_epi64(63);
    /* transposed block: xt[c][v] = 16 lanes of compact column c; at most
     * RANK_QS_MAX_COLS * QV * 64 bytes of stack */
    __m512 xt[q->ncols * QV + 1];
    for (size_t b = 0; b < n; b += 16 * QV) {
        size_t bn = n - b < 16 * QV ? n - b : 16 * QV;
        const float *Xb = X + b * stride;
        for (int v = 0; v < QV; v++) {
            __m512i r = _mm512_add_epi32(lane, _mm512_set1_epi32(v * 16));
            __mmask16 valid = _mm512_cmplt_epi32_mask(r, _mm512_set1_epi32((int)bn));
            r = _mm512_maskz_mov_epi32(valid, r);
            __m512i ro = _mm512_mullo_epi32(r, _mm512_set1_epi32((int)stride));
            for (size_t c = 0; c < q->ncols; c++)
                xt[c * QV + v] = _mm512_i32gather_ps(_mm512_add_epi32(ro, _mm512_set1_epi32(q->col[c])), Xb, 4);
        }
        __m512d acc[QV][2];
        for (int v = 0; v < QV; v++)
            acc[v][0] = acc[v][1] = _mm512_set1_pd(m->base_score);
        for (size_t t = 0; t < m->ntrees; t++) {
            __m512i lv[QV][2];
            for (int v = 0; v < QV; v++)
                lv[v][0] = lv[v][1] = ones;
            size_t k = q->off[t], mid = k + q->nleft[t], end = q->off[t + 1];
            for (; k < mid; k++) {
                __m512 th = _mm512_set1_ps(q->threshold[k]);
                __m512i mk = _mm512_set1_epi64((long long)q->mask[k]);
                const __m512 *xc = xt + (size_t)q->fcol[k] * QV;
                for (int v = 0; v < QV; v++) {
                    __mmask16 r = _mm512_cmp_ps_mask(xc[v], th, _CMP_GE_OQ);
                    lv[v][0] = _mm512_mask_and_epi64(lv[v][0], (__mmask8)r, lv[v][0], mk);
                    lv[v][1] = _mm512_mask_and_epi64(lv[v][1], (__mmask8)(r >> 8), lv[v][1], mk);
                }
            }
            for (; k < end; k++) {
                __m512 th = _mm512_set1_ps(q->threshold[k]);
                __m512i mk = _mm512_set1_epi64((long long)q->mask[k]);
                const __m512 *xc = xt + (size_t)q->fcol[k] * QV;
                for (int v = 0; v < QV; v++) {
                    __mmask16 r = _mm512_cmp_ps_mask(xc[v], th, _CMP_NLT_UQ);
                    lv[v][0] = _mm512_mask_and_epi64(lv[v][0], (__mmask8)r, lv[v][0], mk);
                    lv[v][1] = _mm512_mask_and_epi64(lv[v][1], (__mmask8)(r >> 8), lv[v][1], mk);
                }
            }
            const double *leaf = q->leaf + t * 64;
            for (int v = 0; v < QV; v++)
                for (int h = 0; h < 2; h++) {
                    __m512i x = lv[v][h];
                    __m512i low = _mm512_and_si512(x, _mm512_sub_epi64(_mm512_setzero_si512(), x));
                    __m512i idx = _mm512_sub_epi64(c63, _mm512_lzcnt_epi64(low));
                    acc[v][h] = _mm512_add_pd(acc[v][h], _mm512_i64gather_pd(idx, leaf, 8));
                }
        }
        double tmp[16 * QV];
        for (int v = 0; v < QV; v++) {
            _mm512_storeu_pd(tmp + v * 16, acc[v][0]);
            _mm512_storeu_pd(tmp + v * 16 + 8, acc[v][1]);
        }
        memcpy(out + b, tmp, bn * sizeof(double));
    }
}
#endif

void rank_model_score_method(const rank_model_t *m, int method, const float *X, size_t n, size_t stride,
                             double *out)
{
    if (n == 0)
        return;
    if (m->kind == RANK_MODEL_LINEAR) {
        score_linear(m, X, n, stride, out);
        return;
    }
    if (method == RANK_SCORE_AUTO)
        method = m->finalized ? m->method : RANK_SCORE_NAIVE;
    if (!rank_score_method_available(m, method))
        method = RANK_SCORE_NAIVE;
    switch (method) {
    case RANK_SCORE_FLAT:
        score_flat(m, X, n, stride, out);
        break;
    case RANK_SCORE_PERFECT:
        score_perfect(m, X, n, stride, out);
        break;
#ifdef HAVE_AVX512_CODE
    case RANK_SCORE_AVX512:
        /* 64 * stride lane offsets must fit int32 */
        if (stride <= INT32_MAX / BLOCK) {
            score_avx512(m, X, n, stride, out);
            break;
        }
        score_perfect(m, X, n, stride, out);
        break;
    case RANK_SCORE_QS:
        if (stride <= INT32_MAX / (16 * QV)) {
            score_qs(m, X, n, stride, out);
            break;
        }
        score_perfect(m, X, n, stride, out);
        break;
    case RANK_SCORE_AVX512T:
        if (stride <= INT32_MAX / TBLOCK) {
            score_avx512t(m, X, n, stride, out);
            break;
        }
        score_perfect(m, X, n, stride, out);
        break;
#endif
    default:
        score_naive(m, X, n, stride, out);
        break;
    }
}

void rank_model_score(const rank_model_t *m, const float *X, size_t n, size_t stride, double *out)
{
    rank_model_score_method(m, RANK_SCORE_AUTO, X, n, stride, out);
}
