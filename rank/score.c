/* score.c - compiled scoring layouts and batch scoring.
 *
 * Methods (model_int.h), fastest first as measured by tests/bench/score_bench
 * (500 documents x 500 trees, max depth 6, one thread, AMD EPYC with AVX-512
 * BW/VBMI, 2 shared cores; medians of 1000 calls (--reps 1000), ms; noisy to ~10%):
 *
 *   model kind              naive  flat  perfect avx512 avx512t  qs   qs8
 *   complete (64 leaves)    17.3   11.2   2.69    1.38   0.82   0.82  0.23
 *   sparse (~18 leaves)      9.0    6.3   2.33    1.18   0.73   0.38  0.11
 *   trained (ours, ~55 lv.) 13.2    9.7   2.65    1.36   0.81   0.71  0.23
 *   (earlier: real XGBoost depth-6 model, ~17 leaves: qs 0.37)
 * QS8 history (trained model): 0.48 ms with a gather per tree and 8
 * documents for the leaf values and a gather per feature and 16 documents for
 * coding; 0.34 after the byte-plane leaf lookup (gathers cost ~17 cycles each
 * on this CPU, 0.16 ms in all); 0.23 after the transposed block load. Coding
 * the ~200 features the trained model uses now costs ~0.045 ms of the 0.23
 * (measured with the tree loop skipped).
 * Later machine (Intel Xeon, Emerald Rapids, AVX-512 BW/VBMI, 2 shared vCPUs;
 * --reps 1000, median of 3 runs, ms; QS8AVX2 forced, it runs on AVX2 alone):
 *   model kind              naive  flat  perfect avx512 avx512t  qs   qs8  qs8avx2
 *   complete (64 leaves)    30.7  18.6   2.34    0.97   0.62   0.84  0.29  0.445
 *   sparse (~18 leaves)     15.2  11.0   2.05    0.86   0.49   0.31  0.16  0.239
 *   trained (ours, ~55 lv.) 17.2  15.2   2.36    0.97   0.61   0.73  0.30  0.431
 *   (naive and flat swing by 1.5x with the other tenants' load, the rest
 *   ~5-10%; qs8avx2 from a later run, --method qs8avx2)
 * QS8AVX2 history (complete): 0.52 ms with a compare, or, and per node and
 * a blend-based exit leaf; the same after the byte transpose + tzcnt exit
 * and the window codes + vpshufb (so the per-entry loop, ~3 cycles for 64
 * documents, is not bound by vector ops alone); ~0.45 after pairing entries
 * (two lookups OR-ed, one andnot); ~0.42 with the exit leaf as a byte from
 * a prefix-zero chain (42 vector ops for 32 documents) instead of the
 * transpose + tzcnt (8-byte words, one more op per document). 128-document
 * blocks (codes out of L1) and 32-document ones (twice the per-entry loads)
 * were both slower.
 *
 *   QS8      QuickScorer over byte codes (model_int.h rank_qs8): each value
 *            becomes its rank among its feature's thresholds once per block,
 *            then one byte compare tests a node for 64 documents and leaf
 *            bitvectors are kept transposed by byte, so a node costs ~3
 *            vector ops per 64 documents instead of 3 per 16 (QS). Rows
 *            are loaded 16 features at a time and transposed in registers
 *            (only chunks holding a feature the model uses); leaf values come
 *            from per-tree byte planes (8 vpermb + a 24-unpack transpose for
 *            64 documents) rather than gathers. Stack: ncols * 64 bytes of
 *            codes (<= 32 KiB, RANK_QS_MAX_COLS) + 4 KiB of transposed
 *            floats + ~1 KiB; nothing allocated. Needs
 *            <= 255 unique thresholds per feature (histogram training and
 *            XGBoost's hist give <= 256 bins) and <= 64 leaves a tree.
 *   QS8AVX2  the same QuickScorer for CPUs with AVX2 but no AVX-512
 *            (model_int.h rank_qsa2): QS8's codes cut into windows of 15
 *            thresholds (4-bit codes, NaN 0x80) so that a node is one
 *            vpshufb of its window's codes through a 16-byte table (the
 *            leaves to clear where the node is false) and one andnot, for 32
 *            documents; missing-right nodes are mirrored so NaN never
 *            clears. 64 documents a block (two vectors); exit leaf = first
 *            non-zero leaf byte (a running "all zero so far" mask) and its
 *            trailing zeros (nibble tables), as a byte per document; leaf
 *            values added by scalar loads in tree order (gathers are
 *            slow on many AVX2 CPUs; coding uses them only for features with
 *            > 63 thresholds). Stack: ncols * 64 bytes of codes (<= 32 KiB)
 *            + 10 KiB. No AVX-512 instruction (target("avx2,bmi")).
 *   QS       QuickScorer with 64-bit leaf masks, 16 documents a vector.
 *   AVX512T  padded depth-6 trees with node tables in registers (permutes).
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
#ifndef A2_BLOCK
#define A2_BLOCK 64 /* documents a block in QS8AVX2 (two vectors of byte codes) */
#endif

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
    case RANK_SCORE_QS8: return "qs8";
    case RANK_SCORE_QS8AVX2: return "qs8avx2";
    default: return "?";
    }
}

/* Features of this CPU (RANK_CPU_*), detected once per process; atomic so
 * concurrent first calls are well defined. */
static unsigned cpu_detect(void)
{
#ifdef HAVE_AVX512_CODE
    static _Atomic int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        unsigned c = 0;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi"))
            c |= RANK_CPU_AVX2; /* QS8AVX2 also uses tzcnt (BMI1, on every AVX2 CPU) */
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd"))
            c |= RANK_CPU_AVX512;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vbmi"))
            c |= RANK_CPU_AVX512_BYTES;
        cached = (int)c;
    }
    return (unsigned)cached;
#else
    return 0;
#endif
}

/* Detected features lowered by FUNNEL_SCORE_CPU (model_int.h), read when a
 * model is finalized so that a test can set it for one model. */
static unsigned cpu_effective(void)
{
    unsigned c = cpu_detect();
    const char *e = getenv("FUNNEL_SCORE_CPU");
    if (!e || !*e || !strcmp(e, "native"))
        return c;
    if (!strcmp(e, "avx512"))
        return c & (RANK_CPU_AVX2 | RANK_CPU_AVX512);
    if (!strcmp(e, "avx2"))
        return c & RANK_CPU_AVX2;
    return 0; /* "portable", or a value we do not know: the safe choice */
}

const char *rank_score_cpu_name(unsigned cpu)
{
    if (cpu & RANK_CPU_AVX512_BYTES)
        return "avx512bw+vbmi";
    if (cpu & RANK_CPU_AVX512)
        return "avx512";
    if (cpu & RANK_CPU_AVX2)
        return "avx2";
    return "portable";
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
    case RANK_SCORE_AVX512T: return m->perfect.fword != NULL && (m->cpu & RANK_CPU_AVX512);
    case RANK_SCORE_QS: return m->qs.mask != NULL && (m->cpu & RANK_CPU_AVX512);
    case RANK_SCORE_QS8: return m->qs8.ecol != NULL && (m->cpu & RANK_CPU_AVX512_BYTES);
    case RANK_SCORE_QS8AVX2: return m->qsa2.lut != NULL && (m->cpu & RANK_CPU_AVX2);
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
    free(m->qs8.ecol);
    free(m->qs8.ej);
    free(m->qs8.ekeep);
    free(m->qs8.eoff);
    free(m->qs8.nbytes);
    free(m->qs8.leaf);
    free(m->qs8.plane);
    free(m->qs8.tab);
    free(m->qs8.feat);
    memset(&m->qs8, 0, sizeof(m->qs8));
    free(m->qsa2.lut);
    free(m->qsa2.coff);
    free(m->qsa2.eoff);
    free(m->qsa2.nbytes);
    free(m->qsa2.leaf);
    free(m->qsa2.fcol);
    free(m->qsa2.fnwin);
    memset(&m->qsa2, 0, sizeof(m->qsa2));
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


static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* In-order fill of a 1-based Eytzinger array from sorted s[]. */
static size_t eytz_fill(float *e, size_t i, size_t P, const float *s, size_t k)
{
    if (i >= P)
        return k;
    k = eytz_fill(e, 2 * i, P, s, k);
    e[i] = s[k++];
    return eytz_fill(e, 2 * i + 1, P, s, k);
}

static int compile_qs8(rank_model_t *m)
{
    rank_qs8 *q = &m->qs8;
    size_t nf = m->nfeatures, ni = 0, maxn = 0;
    for (size_t t = 0; t < m->ntrees; t++) {
        const rank_tree *tr = &m->trees[t];
        size_t nl = 0;
        for (size_t i = 0; i < tr->n; i++) {
            nl += tr->nodes[i].feature < 0;
            if (tr->nodes[i].feature >= 0 && isnan(tr->nodes[i].threshold))
                return 0; /* "x < NaN" is never true: no rank can express it */
        }
        if (nl > 64)
            return 0;
        ni += tr->n - nl;
        if (tr->n > maxn)
            maxn = tr->n;
    }
    int rc = -ENOMEM;
    /* per feature: thresholds (sorted, unique), flags for the missing directions used */
    size_t *cnt = calloc(nf + 1, sizeof(size_t)), *start = calloc(nf + 2, sizeof(size_t));
    float *th = malloc((ni + 1) * sizeof(float));
    uint8_t *dirs = calloc(nf + 1, 1);
    int32_t *fidx = malloc((nf + 1) * sizeof(int32_t));
    unsigned *lo = malloc((maxn + 1) * sizeof(unsigned)), *hi = malloc((maxn + 1) * sizeof(unsigned));
    size_t *fill = NULL;
    if (!cnt || !start || !th || !dirs || !fidx || !lo || !hi)
        goto out;
    for (size_t t = 0; t < m->ntrees; t++)
        for (size_t i = 0; i < m->trees[t].n; i++) {
            const rank_node *x = &m->trees[t].nodes[i];
            if (x->feature >= 0) {
                cnt[x->feature]++;
                dirs[x->feature] |= x->missing_left ? 1 : 2;
            }
        }
    for (size_t f = 0; f < nf; f++)
        start[f + 1] = start[f] + cnt[f];
    fill = calloc(nf + 1, sizeof(size_t));
    if (!fill)
        goto out;
    for (size_t t = 0; t < m->ntrees; t++)
        for (size_t i = 0; i < m->trees[t].n; i++) {
            const rank_node *x = &m->trees[t].nodes[i];
            if (x->feature >= 0)
                th[start[x->feature] + fill[x->feature]++] = x->threshold;
        }
    size_t tabn = 0, ncols = 0, nfeat = 0;
    for (size_t f = 0; f < nf; f++) {
        fidx[f] = -1;
        if (!cnt[f])
            continue;
        float *a = th + start[f];
        qsort(a, cnt[f], sizeof(float), cmp_float);
        size_t u = 0;
        for (size_t i = 0; i < cnt[f]; i++)
            if (u == 0 || !(a[i] == a[u - 1]))
                a[u++] = a[i];
        cnt[f] = u;
        if (u > 255) { /* codes would not fit a byte: unavailable */
            rc = 0;
            goto out;
        }
        size_t P = 2;
        while (P < u + 1)
            P *= 2;
        fidx[f] = (int32_t)nfeat++;
        tabn += P < 128 ? 128 : P; /* the scorer loads up to 128 floats as tables */
        ncols += (dirs[f] & 1) + ((dirs[f] >> 1) & 1);
    }
    if (ncols > RANK_QS_MAX_COLS) {
        rc = 0;
        goto out;
    }
    q->feat = malloc((nfeat + 1) * sizeof(rank_qs8_feat));
    q->tab = aligned_alloc(64, (tabn + 16) * sizeof(float));
    q->ecol = malloc((ni * 8 + 1) * sizeof(uint16_t));
    q->ej = malloc((ni * 8 + 1) * sizeof(uint32_t));
    q->ekeep = malloc((ni * 8 + 1) * sizeof(uint32_t));
    q->eoff = malloc((m->ntrees * 8 + 1) * sizeof(size_t));
    q->nbytes = malloc(m->ntrees + 1);
    q->leaf = calloc((m->ntrees + 1) * 64, sizeof(double));
    q->plane = aligned_alloc(64, (m->ntrees + 1) * 512);
    if (!q->feat || !q->tab || !q->ecol || !q->ej || !q->ekeep || !q->eoff || !q->nbytes || !q->leaf ||
        !q->plane)
        goto out;
    int16_t *coll = (int16_t *)malloc((nf + 1) * 2 * sizeof(int16_t));
    if (!coll)
        goto out;
    size_t to = 0, c = 0;
    for (size_t f = 0; f < nf; f++) {
        coll[2 * f] = coll[2 * f + 1] = -1;
        if (fidx[f] < 0)
            continue;
        rank_qs8_feat *F = &q->feat[fidx[f]];
        size_t u = cnt[f], P = 2, L = 1;
        while (P < u + 1) {
            P *= 2;
            L++;
        }
        size_t T = P < 128 ? 128 : P;
        float *e = q->tab + to;
        for (size_t i = 0; i < T; i++)
            e[i] = NAN;
        float s[256];
        for (size_t i = 0; i < P - 1; i++)
            s[i] = i < u ? th[start[f] + i] : NAN;
        eytz_fill(e, 1, P, s, 0);
        F->feature = (int32_t)f;
        F->tab_off = (uint32_t)to;
        F->levels = (uint8_t)L;
        F->col_l = (dirs[f] & 1) ? (int16_t)c++ : -1;
        F->col_r = (dirs[f] & 2) ? (int16_t)c++ : -1;
        coll[2 * f] = F->col_l;
        coll[2 * f + 1] = F->col_r;
        to += T;
    }
    q->nfeat = nfeat;
    q->ncols = ncols;
    size_t k = 0;
    for (size_t t = 0; t < m->ntrees; t++) {
        const rank_tree *tr = &m->trees[t];
        unsigned nl = qs_walk(tr, 0, 0, lo, hi, q->leaf + t * 64);
        q->nbytes[t] = (uint8_t)((nl + 7) / 8);
        for (unsigned b = 0; b < 8; b++) {
            q->eoff[t * 8 + b] = k;
            for (size_t i = 0; i < tr->n; i++) {
                const rank_node *x = &tr->nodes[i];
                if (x->feature < 0)
                    continue;
                uint64_t left = (hi[i] - lo[i] == 64) ? ~0ULL : ((1ULL << (hi[i] - lo[i])) - 1) << lo[i];
                uint8_t keep = (uint8_t)(~left >> (8 * b));
                if (keep == 0xff)
                    continue;
                const float *a = th + start[x->feature];
                size_t j = 0; /* rank of the threshold among the unique ones */
                while (!(a[j] == x->threshold))
                    j++;
                q->ecol[k] = (uint16_t)coll[2 * x->feature + (x->missing_left ? 0 : 1)];
                q->ej[k] = (uint32_t)j * 0x01010101u;
                q->ekeep[k] = (uint32_t)keep * 0x01010101u;
                k++;
            }
        }
    }
    q->eoff[m->ntrees * 8] = k;
    /* leaf byte planes: plane[t*512 + p*64 + l] = byte p of leaf l's double */
    for (size_t t = 0; t < m->ntrees; t++)
        for (unsigned l = 0; l < 64; l++) {
            uint8_t by[8];
            memcpy(by, &q->leaf[t * 64 + l], 8);
            for (unsigned p = 0; p < 8; p++)
                q->plane[t * 512 + p * 64 + l] = by[p];
        }
    free(coll);
    rc = 0;
out:
    if (rc || !q->eoff) { /* failed or unavailable: leave ecol == NULL */
        free(q->ecol);
        q->ecol = NULL;
    }
    free(cnt);
    free(start);
    free(th);
    free(dirs);
    free(fidx);
    free(lo);
    free(hi);
    free(fill);
    return rc;
}

/* In-order walk with nodes whose missing values go right mirrored (their
 * right child first): leaf numbers and each node's first-child leaf range. */
static unsigned qa2_walk(const rank_tree *tr, size_t i, unsigned next, unsigned *lo, unsigned *hi, double *leaf)
{
    const rank_node *x = &tr->nodes[i];
    if (x->feature < 0) {
        if (leaf)
            leaf[next] = x->value;
        return next + 1;
    }
    size_t first = (size_t)(x->missing_left ? x->left : x->right);
    size_t second = (size_t)(x->missing_left ? x->right : x->left);
    lo[i] = next;
    next = qa2_walk(tr, first, next, lo, hi, leaf);
    hi[i] = next;
    return qa2_walk(tr, second, next, lo, hi, leaf);
}

/* Bits of leaves [lo, hi) that fall in leaf byte b. */
static uint8_t qa2_bits(unsigned lo, unsigned hi, unsigned b)
{
    if (hi <= 8 * b || lo >= 8 * b + 8)
        return 0;
    unsigned a = lo > 8 * b ? lo - 8 * b : 0, z = hi < 8 * b + 8 ? hi - 8 * b : 8;
    return (uint8_t)(((1u << z) - 1) & ~((1u << a) - 1));
}

static int compile_qsa2(rank_model_t *m)
{
    const rank_qs8 *q8 = &m->qs8;
    rank_qsa2 *q = &m->qsa2;
    if (!q8->ecol)
        return 0; /* its coding tables are ours */
    size_t maxn = 0, nent = 0, nf = q8->nfeat;
    for (size_t t = 0; t < m->ntrees; t++)
        if (m->trees[t].n > maxn)
            maxn = m->trees[t].n;
    int rc = -ENOMEM;
    float *th = malloc((nf * 255 + 1) * sizeof(float)); /* per QS8 feature: its sorted thresholds */
    int32_t *fidx = malloc((m->nfeatures + 1) * sizeof(int32_t));
    unsigned *lo = malloc((maxn + 1) * sizeof(unsigned)), *hi = malloc((maxn + 1) * sizeof(unsigned));
    q->fcol = malloc((nf + 1) * sizeof(uint16_t));
    q->fnwin = malloc(nf + 1);
    if (!th || !fidx || !lo || !hi || !q->fcol || !q->fnwin)
        goto out;
    q->ncols = 0;
    for (size_t fi = 0; fi < nf; fi++) {
        const rank_qs8_feat *F = &q8->feat[fi];
        const float *e = q8->tab + F->tab_off;
        size_t u = 0;
        for (size_t k = 1; k < ((size_t)1 << F->levels); k++)
            if (!isnan(e[k]))
                th[fi * 255 + u++] = e[k];
        qsort(th + fi * 255, u, sizeof(float), cmp_float);
        fidx[F->feature] = (int32_t)fi;
        q->fcol[fi] = (uint16_t)q->ncols;
        q->fnwin[fi] = (uint8_t)((u + 14) / 15);
        q->ncols += q->fnwin[fi];
        if (q->ncols > RANK_QS_MAX_COLS) { /* codes would not fit the stack */
            rc = 0;
            goto out;
        }
    }
    for (size_t t = 0; t < m->ntrees; t++) {
        const rank_tree *tr = &m->trees[t];
        qa2_walk(tr, 0, 0, lo, hi, NULL);
        for (size_t i = 0; i < tr->n; i++)
            for (unsigned b = 0; tr->nodes[i].feature >= 0 && b < 8; b++)
                nent += qa2_bits(lo[i], hi[i], b) != 0;
    }
    q->lut = aligned_alloc(16, (nent + 1) * 16);
    q->coff = malloc((nent + 1) * sizeof(uint16_t));
    q->eoff = malloc((m->ntrees * 8 + 1) * sizeof(size_t));
    q->nbytes = malloc(m->ntrees + 1);
    q->leaf = calloc((m->ntrees + 1) * 64, sizeof(double));
    if (!q->lut || !q->coff || !q->eoff || !q->nbytes || !q->leaf)
        goto out;
    size_t k = 0;
    for (size_t t = 0; t < m->ntrees; t++) {
        const rank_tree *tr = &m->trees[t];
        unsigned nl = qa2_walk(tr, 0, 0, lo, hi, q->leaf + t * 64);
        q->nbytes[t] = (uint8_t)((nl + 7) / 8);
        for (unsigned b = 0; b < 8; b++) {
            q->eoff[t * 8 + b] = k;
            for (size_t i = 0; i < tr->n; i++) {
                const rank_node *x = &tr->nodes[i];
                uint8_t clear = x->feature >= 0 ? qa2_bits(lo[i], hi[i], b) : 0;
                if (!clear)
                    continue;
                size_t fi = (size_t)fidx[x->feature];
                const float *a = th + fi * 255;
                size_t j = 0; /* rank of the threshold among the unique ones */
                while (!(a[j] == x->threshold))
                    j++;
                unsigned jj = (unsigned)(j % 15);
                /* clear where the first child is not taken: x >= t (code_w >
                 * jj), or for a mirrored node x < t (code_w <= jj) */
                for (unsigned c = 0; c < 16; c++)
                    q->lut[16 * k + c] = (x->missing_left ? c > jj : c <= jj) ? clear : 0;
                q->coff[k] = (uint16_t)((q->fcol[fi] + j / 15) * A2_BLOCK);
                k++;
            }
        }
    }
    q->eoff[m->ntrees * 8] = k;
    rc = 0;
out:
    if (rc || !q->eoff) { /* failed or unavailable: leave lut == NULL */
        free(q->lut);
        q->lut = NULL;
    }
    free(th);
    free(fidx);
    free(lo);
    free(hi);
    return rc;
}

int rank_score_compile(rank_model_t *m)
{
    rank_score_release(m);
    m->cpu = cpu_effective();
    if (m->kind != RANK_MODEL_TREES) {
        m->method = RANK_SCORE_NAIVE;
        return 0;
    }
    int rc = compile_flat(m);
    if (rc == 0)
        rc = compile_perfect(m);
    if (rc == 0)
        rc = compile_qs(m);
    if (rc == 0)
        rc = compile_qs8(m);
    if (rc == 0)
        rc = compile_qsa2(m);
    if (rc) {
        rank_score_release(m);
        return rc;
    }
    /* score_bench figures (top of this file): QS8 is fastest on every model
     * kind we measured, then QS8AVX2 (ahead of the AVX-512F methods too, so
     * it serves AVX-512 CPUs without VBMI); otherwise QS costs ~26 ns per
     * internal node and AVX512T ~270 ns per padded tree level (500 docs), QS
     * winning on sparse trees and tying on complete ones. */
    size_t nodes = m->qs.mask ? m->qs.off[m->ntrees] : 0, levels = 0;
    for (size_t t = 0; t < m->ntrees; t++)
        levels += m->trees[t].depth;
    unsigned cpu = m->cpu;
    if (m->qs8.ecol && (cpu & RANK_CPU_AVX512_BYTES))
        m->method = RANK_SCORE_QS8;
    else if (m->qsa2.lut && (cpu & RANK_CPU_AVX2))
        m->method = RANK_SCORE_QS8AVX2;
    else if (m->qs.mask && (cpu & RANK_CPU_AVX512) && (!m->perfect.fword || nodes <= 10 * levels))
        m->method = RANK_SCORE_QS;
    else if (m->perfect.fword && (cpu & RANK_CPU_AVX512))
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

/* The perfect-tree methods end every tree the same way: lane i sits at heap
 * index idx (internal nodes 0..2^D-2), so its leaf is idx - (2^D - 1). */
__attribute__((target("avx512f")))
static inline void add_exit_leaves(__m512i idx, unsigned D, const double *leaf, __m512d *lo, __m512d *hi)
{
    __m512i li = _mm512_sub_epi32(idx, _mm512_set1_epi32((1 << D) - 1));
    *lo = _mm512_add_pd(*lo, _mm512_i32gather_pd(_mm512_castsi512_si256(li), leaf, 8));
    *hi = _mm512_add_pd(*hi, _mm512_i32gather_pd(_mm512_extracti64x4_epi64(li, 1), leaf, 8));
}

/* Write the first bn of nv x 16 per-document sums to out. */
__attribute__((target("avx512f")))
static inline void store_sums(const __m512d *lo, const __m512d *hi, int nv, size_t bn, double *out)
{
    double acc[8 * 16];   /* nv <= 8 (TBLOCK / 16) */
    for (int v = 0; v < nv; v++) {
        _mm512_storeu_pd(acc + v * 16, lo[v]);
        _mm512_storeu_pd(acc + v * 16 + 8, hi[v]);
    }
    memcpy(out, acc, bn * sizeof(double));
}

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
            for (int v = 0; v < NV; v++)
                add_exit_leaves(idx[v], D, leaf, &acclo[v], &acchi[v]);
        }
        store_sums(acclo, acchi, NV, bn, out + b);
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
_Static_assert(TNV <= 8, "store_sums() holds at most 8 vectors");

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
            for (int v = 0; v < TNV; v++)
                add_exit_leaves(idx[v], D, leaf, &acclo[v], &acchi[v]);
        }
        store_sums(acclo, acchi, TNV, bn, out + b);
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
/* Per 64-document block: (1) code every compact column: transpose the
 * block's rows 16 features at a time (q8_transpose), Eytzinger descent over
 * the feature's thresholds for 16 documents a vector (the first 7 levels are
 * in-register permutes, deeper ones gathers), pack the ranks to bytes; (2) per
 * tree, per leaf byte b, apply the tree's entries for b: one byte compare for
 * 64 documents, then clear the node's left leaves in byte b where the node is
 * false; (3) exit leaf = lowest set bit (last non-zero byte from the top, then
 * a 128-entry trailing-zero table), its double assembled from the tree's 8
 * leaf byte planes. */
#define Q8_BLOCK 64


/* xt[f * 64 + d] = X[row d][c0 + f] for f < 16, d < 64
 * (rows past bn repeat row 0, features >= nf read as 0 and are never used):
 * 64 row loads and four 16 x 16 in-register transposes instead of a gather
 * per feature and 16 documents. */
__attribute__((target("avx512f,avx512bw,avx512vbmi")))
static inline void q8_transpose(const float *Xb, size_t stride, size_t bn, size_t c0, size_t nf, float *xt)
{
    __mmask16 km = nf - c0 >= 16 ? 0xffff : (__mmask16)((1u << (nf - c0)) - 1);
    for (size_t g = 0; g < Q8_BLOCK / 16; g++) {
        __m512 r[16], t[16];
        for (size_t k = 0; k < 16; k++) {
            size_t row = g * 16 + k;
            r[k] = _mm512_maskz_loadu_ps(km, Xb + (row < bn ? row : 0) * stride + c0);
        }
        for (int k = 0; k < 8; k++) {
            t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
            t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
        }
        /* r[4 a + j], 128-bit lane l: column 4 l + j of rows 4 a .. 4 a + 3 */
        for (int a = 0; a < 4; a++) {
            __m512d p = _mm512_castps_pd(t[4 * a]), q2 = _mm512_castps_pd(t[4 * a + 2]);
            __m512d p1 = _mm512_castps_pd(t[4 * a + 1]), q3 = _mm512_castps_pd(t[4 * a + 3]);
            r[4 * a] = _mm512_castpd_ps(_mm512_unpacklo_pd(p, q2));
            r[4 * a + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(p, q2));
            r[4 * a + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(p1, q3));
            r[4 * a + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(p1, q3));
        }
        for (int j = 0; j < 4; j++) {
            __m512 s0 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88), s1 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
            __m512 s2 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
            __m512 s3 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
            _mm512_store_ps(xt + (0 + j) * Q8_BLOCK + g * 16, _mm512_shuffle_f32x4(s0, s2, 0x88));
            _mm512_store_ps(xt + (4 + j) * Q8_BLOCK + g * 16, _mm512_shuffle_f32x4(s1, s3, 0x88));
            _mm512_store_ps(xt + (8 + j) * Q8_BLOCK + g * 16, _mm512_shuffle_f32x4(s0, s2, 0xdd));
            _mm512_store_ps(xt + (12 + j) * Q8_BLOCK + g * 16, _mm512_shuffle_f32x4(s1, s3, 0xdd));
        }
    }
}

/* One Eytzinger level for 16 documents: i = 2 i + (threshold ev <= x). */
__attribute__((target("avx512f,avx512bw,avx512vbmi")))
static inline __m512i q8_descend(__m512i i, __m512 x, __m512 ev)
{
    __mmask16 k = _mm512_cmp_ps_mask(ev, x, _CMP_LE_OQ); /* NaN on either side: no */
    __m512i i2 = _mm512_add_epi32(i, i);
    return _mm512_mask_sub_epi32(i2, k, i2, _mm512_set1_epi32(-1));
}

__attribute__((target("avx512f,avx512bw,avx512vbmi")))
static void score_qs8(const rank_model_t *m, const float *X, size_t n, size_t stride, double *out)
{
    const rank_qs8 *q = &m->qs8;
    const __m512i one = _mm512_set1_epi32(1), ones = _mm512_set1_epi32(-1);
    const __m512i c32 = _mm512_set1_epi32(32), c255 = _mm512_set1_epi32(255);
    /* trailing zeros of a non-zero byte v, indexed by v & 127 (vpermi2b
     * ignores bit 7; v = 128 -> entry 0 = 7) */
    static const uint8_t tzt[128] __attribute__((aligned(64))) = {
        7, 0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 1, 0, 4, 0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 1, 0,
        5, 0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 1, 0, 4, 0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 1, 0,
        6, 0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 1, 0, 4, 0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 1, 0,
        5, 0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 1, 0, 4, 0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 1, 0,
    };
    const __m512i tz0 = _mm512_load_si512(tzt), tz1 = _mm512_load_si512(tzt + 64);
    /* codes: xc[c * 64 + d], at most RANK_QS_MAX_COLS * 64 bytes of stack */
    uint8_t xc[q->ncols * Q8_BLOCK + 64] __attribute__((aligned(64)));
    float xt[16 * Q8_BLOCK] __attribute__((aligned(64))); /* 16 features x 64 documents, 4 KiB */
    for (size_t b = 0; b < n; b += Q8_BLOCK) {
        size_t bn = n - b < Q8_BLOCK ? n - b : Q8_BLOCK;
        const float *Xb = X + b * stride;
        int chunk = -1;
        for (size_t fi = 0; fi < q->nfeat; fi++) {
            const rank_qs8_feat *F = &q->feat[fi];
            if (F->feature >> 4 != chunk) { /* features ascend: each chunk once */
                chunk = F->feature >> 4;
                q8_transpose(Xb, stride, bn, (size_t)chunk * 16, m->nfeatures, xt);
            }
            const float *xf = xt + (F->feature & 15) * Q8_BLOCK;
            const float *e = q->tab + F->tab_off;
            unsigned L = F->levels, lv = 0;
            __m512 x0 = _mm512_load_ps(xf), x1 = _mm512_load_ps(xf + 16);
            __m512 x2 = _mm512_load_ps(xf + 32), x3 = _mm512_load_ps(xf + 48);
            __m512i i0 = one, i1 = one, i2 = one, i3 = one;
#define Q8_LEVEL(EV)                                                                                 \
    do {                                                                                             \
        i0 = q8_descend(i0, x0, EV(i0));                                                             \
        i1 = q8_descend(i1, x1, EV(i1));                                                             \
        i2 = q8_descend(i2, x2, EV(i2));                                                             \
        i3 = q8_descend(i3, x3, EV(i3));                                                             \
    } while (0)
            {
                __m512 t0 = _mm512_load_ps(e), t1 = _mm512_load_ps(e + 16);
#define Q8_EV01(ii) _mm512_permutex2var_ps(t0, ii, t1)
                for (; lv < L && lv < 5; lv++)
                    Q8_LEVEL(Q8_EV01);
#undef Q8_EV01
            }
            if (lv < L) {
                __m512 t2 = _mm512_load_ps(e + 32), t3 = _mm512_load_ps(e + 48);
#define Q8_EV23(ii) _mm512_permutex2var_ps(t2, ii, t3)
                Q8_LEVEL(Q8_EV23);
#undef Q8_EV23
                lv++;
            }
            if (lv < L) {
                __m512 t4 = _mm512_load_ps(e + 64), t5 = _mm512_load_ps(e + 80);
                __m512 t6 = _mm512_load_ps(e + 96), t7 = _mm512_load_ps(e + 112);
#define Q8_EV47(ii)                                                                                  \
    _mm512_mask_blend_ps(_mm512_test_epi32_mask(ii, c32), _mm512_permutex2var_ps(t4, ii, t5),         \
                         _mm512_permutex2var_ps(t6, ii, t7))
                Q8_LEVEL(Q8_EV47);
#undef Q8_EV47
                lv++;
            }
#define Q8_EVG(ii) _mm512_i32gather_ps(ii, e, 4)
            for (; lv < L; lv++)
                Q8_LEVEL(Q8_EVG);
#undef Q8_EVG
#undef Q8_LEVEL
            __m512i P = _mm512_set1_epi32(1 << L);
            /* code = #thresholds <= x (NaN: 0) */
            __m512i k0 = _mm512_sub_epi32(i0, P), k1 = _mm512_sub_epi32(i1, P);
            __m512i k2 = _mm512_sub_epi32(i2, P), k3 = _mm512_sub_epi32(i3, P);
            if (F->col_l >= 0) {
                uint8_t *d = xc + (size_t)F->col_l * Q8_BLOCK;
                _mm_store_si128((__m128i *)d, _mm512_cvtepi32_epi8(k0));
                _mm_store_si128((__m128i *)(d + 16), _mm512_cvtepi32_epi8(k1));
                _mm_store_si128((__m128i *)(d + 32), _mm512_cvtepi32_epi8(k2));
                _mm_store_si128((__m128i *)(d + 48), _mm512_cvtepi32_epi8(k3));
            }
            if (F->col_r >= 0) { /* NaN: 255 */
                uint8_t *d = xc + (size_t)F->col_r * Q8_BLOCK;
                k0 = _mm512_mask_mov_epi32(k0, _mm512_cmp_ps_mask(x0, x0, _CMP_UNORD_Q), c255);
                k1 = _mm512_mask_mov_epi32(k1, _mm512_cmp_ps_mask(x1, x1, _CMP_UNORD_Q), c255);
                k2 = _mm512_mask_mov_epi32(k2, _mm512_cmp_ps_mask(x2, x2, _CMP_UNORD_Q), c255);
                k3 = _mm512_mask_mov_epi32(k3, _mm512_cmp_ps_mask(x3, x3, _CMP_UNORD_Q), c255);
                _mm_store_si128((__m128i *)d, _mm512_cvtepi32_epi8(k0));
                _mm_store_si128((__m128i *)(d + 16), _mm512_cvtepi32_epi8(k1));
                _mm_store_si128((__m128i *)(d + 32), _mm512_cvtepi32_epi8(k2));
                _mm_store_si128((__m128i *)(d + 48), _mm512_cvtepi32_epi8(k3));
            }
        }
        __m512d acc[8];
        for (int g = 0; g < 8; g++)
            acc[g] = _mm512_set1_pd(m->base_score);
        for (size_t t = 0; t < m->ntrees; t++) {
            __m512i B0 = ones, B1 = ones, B2 = ones, B3 = ones, B4 = ones, B5 = ones, B6 = ones, B7 = ones;
            const size_t *eo = q->eoff + t * 8;
            unsigned nb = q->nbytes[t];
#define Q8_APPLY(BB, bi)                                                                             \
    for (size_t k = eo[bi], ke = eo[(bi) + 1]; k < ke; k++) {                                          \
        __m512i xv = _mm512_load_si512(xc + (size_t)q->ecol[k] * Q8_BLOCK);                           \
        __mmask64 f = _mm512_cmpgt_epu8_mask(xv, _mm512_set1_epi32((int)q->ej[k]));                  \
        /* BB &= ~(false & ~keep) */                                                                 \
        BB = _mm512_ternarylogic_epi32(BB, _mm512_movm_epi8(f), _mm512_set1_epi32((int)q->ekeep[k]), 0xB0); \
    }
            switch (nb) {
            case 8: Q8_APPLY(B7, 7) /* fall through */
            case 7: Q8_APPLY(B6, 6) /* fall through */
            case 6: Q8_APPLY(B5, 5) /* fall through */
            case 5: Q8_APPLY(B4, 4) /* fall through */
            case 4: Q8_APPLY(B3, 3) /* fall through */
            case 3: Q8_APPLY(B2, 2) /* fall through */
            case 2: Q8_APPLY(B1, 1) /* fall through */
            default: Q8_APPLY(B0, 0)
            }
#undef Q8_APPLY
            /* exit leaf = lowest set bit: from the highest byte in use down, the
             * last non-zero byte wins (its value and 8 * its index), then one
             * trailing-zero lookup */
            __m512i sel = B0, off = _mm512_setzero_si512();
#define Q8_SEL(BB, bi)                                                                               \
    do {                                                                                             \
        __mmask64 nz_ = _mm512_test_epi8_mask(BB, BB);                                                \
        sel = _mm512_mask_mov_epi8(sel, nz_, BB);                                                     \
        off = _mm512_mask_mov_epi8(off, nz_, _mm512_set1_epi8(8 * (bi)));                            \
    } while (0)
            switch (nb) {
            case 8: sel = B7; off = _mm512_set1_epi8(56); Q8_SEL(B6, 6); /* fall through */
            case 7: if (nb == 7) { sel = B6; off = _mm512_set1_epi8(48); } Q8_SEL(B5, 5); /* fall through */
            case 6: if (nb == 6) { sel = B5; off = _mm512_set1_epi8(40); } Q8_SEL(B4, 4); /* fall through */
            case 5: if (nb == 5) { sel = B4; off = _mm512_set1_epi8(32); } Q8_SEL(B3, 3); /* fall through */
            case 4: if (nb == 4) { sel = B3; off = _mm512_set1_epi8(24); } Q8_SEL(B2, 2); /* fall through */
            case 3: if (nb == 3) { sel = B2; off = _mm512_set1_epi8(16); } Q8_SEL(B1, 1); /* fall through */
            case 2: if (nb == 2) { sel = B1; off = _mm512_set1_epi8(8); } Q8_SEL(B0, 0); /* fall through */
            default: break;
            }
#undef Q8_SEL
            /* the exit leaf's bit is never cleared, so sel != 0 */
            __m512i idx = _mm512_add_epi8(_mm512_permutex2var_epi8(tz0, sel, tz1), off);
            /* leaf values without gathers: byte p of the exit leaf's double for
             * all 64 documents is one vpermb of the tree's byte plane p; a 3-stage
             * unpack transpose makes doubles. acc[k] ends up holding documents
             * 16 L + 2 k + s at qword 2 L + s. */
            const __m512i *pl = (const __m512i *)(q->plane + t * 512);
            __m512i p0 = _mm512_permutexvar_epi8(idx, _mm512_load_si512(pl + 0));
            __m512i p1 = _mm512_permutexvar_epi8(idx, _mm512_load_si512(pl + 1));
            __m512i p2 = _mm512_permutexvar_epi8(idx, _mm512_load_si512(pl + 2));
            __m512i p3 = _mm512_permutexvar_epi8(idx, _mm512_load_si512(pl + 3));
            __m512i p4 = _mm512_permutexvar_epi8(idx, _mm512_load_si512(pl + 4));
            __m512i p5 = _mm512_permutexvar_epi8(idx, _mm512_load_si512(pl + 5));
            __m512i p6 = _mm512_permutexvar_epi8(idx, _mm512_load_si512(pl + 6));
            __m512i p7 = _mm512_permutexvar_epi8(idx, _mm512_load_si512(pl + 7));
            __m512i a0 = _mm512_unpacklo_epi8(p0, p1), a1 = _mm512_unpackhi_epi8(p0, p1);
            __m512i a2 = _mm512_unpacklo_epi8(p2, p3), a3 = _mm512_unpackhi_epi8(p2, p3);
            __m512i a4 = _mm512_unpacklo_epi8(p4, p5), a5 = _mm512_unpackhi_epi8(p4, p5);
            __m512i a6 = _mm512_unpacklo_epi8(p6, p7), a7 = _mm512_unpackhi_epi8(p6, p7);
            __m512i c0 = _mm512_unpacklo_epi16(a0, a2), c1 = _mm512_unpackhi_epi16(a0, a2);
            __m512i c2 = _mm512_unpacklo_epi16(a1, a3), c3 = _mm512_unpackhi_epi16(a1, a3);
            __m512i d0 = _mm512_unpacklo_epi16(a4, a6), d1 = _mm512_unpackhi_epi16(a4, a6);
            __m512i d2 = _mm512_unpacklo_epi16(a5, a7), d3 = _mm512_unpackhi_epi16(a5, a7);
            acc[0] = _mm512_add_pd(acc[0], _mm512_castsi512_pd(_mm512_unpacklo_epi32(c0, d0)));
            acc[1] = _mm512_add_pd(acc[1], _mm512_castsi512_pd(_mm512_unpackhi_epi32(c0, d0)));
            acc[2] = _mm512_add_pd(acc[2], _mm512_castsi512_pd(_mm512_unpacklo_epi32(c1, d1)));
            acc[3] = _mm512_add_pd(acc[3], _mm512_castsi512_pd(_mm512_unpackhi_epi32(c1, d1)));
            acc[4] = _mm512_add_pd(acc[4], _mm512_castsi512_pd(_mm512_unpacklo_epi32(c2, d2)));
            acc[5] = _mm512_add_pd(acc[5], _mm512_castsi512_pd(_mm512_unpackhi_epi32(c2, d2)));
            acc[6] = _mm512_add_pd(acc[6], _mm512_castsi512_pd(_mm512_unpacklo_epi32(c3, d3)));
            acc[7] = _mm512_add_pd(acc[7], _mm512_castsi512_pd(_mm512_unpackhi_epi32(c3, d3)));
        }
        double tmp[Q8_BLOCK], acck[8][8];
        for (int k = 0; k < 8; k++)
            _mm512_storeu_pd(acck[k], acc[k]);
        for (int k = 0; k < 8; k++)
            for (int l = 0; l < 4; l++) {
                tmp[16 * l + 2 * k] = acck[k][2 * l];
                tmp[16 * l + 2 * k + 1] = acck[k][2 * l + 1];
            }
        memcpy(out + b, tmp, bn * sizeof(double));
    }
}

/* ---- QS8AVX2: the QS8 byte codes and entries with AVX2 only ----
 * Per 64-document block: (1) transpose the rows 8 features at a time and code
 * every compact column by an Eytzinger descent, 8 documents a vector (levels
 * 0-5 in-register permutes, deeper ones gathers), codes stored ^ 0x80 for
 * signed byte compares; (2) per tree and leaf byte, 32 documents a vector:
 * B &= (J > code) | keep, i.e. compare, or, and per node (AVX2 has no
 * ternary logic); (3) exit leaf = lowest set bit (first non-zero byte by
 * blends, then a nibble table) as a byte index, kept for A2_TREES trees;
 * (4) per document the leaf values of those trees are added in tree order
 * with scalar loads (no gathers: they are slow on many AVX2 CPUs). */
#define A2_NV (A2_BLOCK / 32)
#ifndef A2_TREES
#define A2_TREES 16 /* trees whose exit leaves are kept before adding leaf values */
#endif

/* xt[f * A2_BLOCK + 8 v + i] = X[row][c0 + f] for f < 8, where vector v of
 * 32-document group g = v / 4, k = v % 4, holds rows 32 g + 4 k + (0..3) and
 * 32 g + 16 + 4 k + (0..3): packing four such vectors of int32 codes with
 * packus (which interleaves 128-bit lanes) then gives bytes in document
 * order. Rows past bn repeat row 0; features >= nf read as 0 (never used). */
__attribute__((target("avx2")))
static inline void a2_transpose(const float *Xb, size_t stride, size_t bn, size_t c0, size_t nf, float *xt)
{
    int partial = nf - c0 < 8;
    __m256i km = _mm256_cmpgt_epi32(_mm256_set1_epi32(partial ? (int)(nf - c0) : 8),
                                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (size_t v = 0; v < A2_BLOCK / 8; v++) {
        size_t g = v / 4, k = v % 4;
        __m256 r[8];
        for (size_t i = 0; i < 8; i++) {
            size_t row = 32 * g + (i < 4 ? 4 * k + i : 16 + 4 * k + i - 4);
            const float *p = Xb + (row < bn ? row : 0) * stride + c0;
            r[i] = partial ? _mm256_maskload_ps(p, km) : _mm256_loadu_ps(p);
        }
        __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
        __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
        __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
        __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
        __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
        __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
        float *o = xt + 8 * v;
        _mm256_store_ps(o + 0 * A2_BLOCK, _mm256_permute2f128_ps(u0, u4, 0x20));
        _mm256_store_ps(o + 1 * A2_BLOCK, _mm256_permute2f128_ps(u1, u5, 0x20));
        _mm256_store_ps(o + 2 * A2_BLOCK, _mm256_permute2f128_ps(u2, u6, 0x20));
        _mm256_store_ps(o + 3 * A2_BLOCK, _mm256_permute2f128_ps(u3, u7, 0x20));
        _mm256_store_ps(o + 4 * A2_BLOCK, _mm256_permute2f128_ps(u0, u4, 0x31));
        _mm256_store_ps(o + 5 * A2_BLOCK, _mm256_permute2f128_ps(u1, u5, 0x31));
        _mm256_store_ps(o + 6 * A2_BLOCK, _mm256_permute2f128_ps(u2, u6, 0x31));
        _mm256_store_ps(o + 7 * A2_BLOCK, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
}

/* One Eytzinger level for 8 documents: i = 2 i + (threshold ev <= x). */
__attribute__((target("avx2")))
static inline __m256i a2_descend(__m256i i, __m256 x, __m256 ev)
{
    __m256 le = _mm256_cmp_ps(ev, x, _CMP_LE_OQ); /* NaN on either side: no */
    return _mm256_sub_epi32(_mm256_add_epi32(i, i), _mm256_castps_si256(le));
}

/* Codes of one feature for the block (xf: A2_BLOCK / 8 vectors in
 * a2_transpose order; all of them descend together, as each level is a
 * chain of dependent permute, compare, add): code[g] = #thresholds <= x (0
 * for NaN) and nan[g] = 0xff where x is NaN, for 32-document group g. */
#define A2_XV (A2_BLOCK / 8)
__attribute__((target("avx2")))
static inline void a2_code(const rank_qs8_feat *F, const float *e, const float *xf, __m256i *code, __m256i *nan)
{
    unsigned L = F->levels, lv = 0;
    __m256i i[A2_XV];
    for (int v = 0; v < A2_XV; v++)
        i[v] = _mm256_set1_epi32(1);
#define A2_LEVEL(EV)                                                                                 \
    for (int v = 0; v < A2_XV; v++)                                                                  \
        i[v] = a2_descend(i[v], _mm256_load_ps(xf + 8 * v), EV(i[v]))
    {
        __m256 t0 = _mm256_load_ps(e);
#define A2_EV0(ii) _mm256_permutevar8x32_ps(t0, ii)
        for (; lv < L && lv < 3; lv++)
            A2_LEVEL(A2_EV0);
#undef A2_EV0
    }
    if (lv < L) {
        __m256 t1 = _mm256_load_ps(e + 8);
#define A2_EV1(ii) _mm256_permutevar8x32_ps(t1, ii)
        A2_LEVEL(A2_EV1);
#undef A2_EV1
        lv++;
    }
    if (lv < L) {
        __m256 t2 = _mm256_load_ps(e + 16), t3 = _mm256_load_ps(e + 24);
#define A2_EV2(ii)                                                                                   \
    _mm256_blendv_ps(_mm256_permutevar8x32_ps(t2, ii), _mm256_permutevar8x32_ps(t3, ii),             \
                     _mm256_castsi256_ps(_mm256_slli_epi32(ii, 28)))
        A2_LEVEL(A2_EV2);
#undef A2_EV2
        lv++;
    }
    if (lv < L) {
        __m256 t4 = _mm256_load_ps(e + 32), t5 = _mm256_load_ps(e + 40);
        __m256 t6 = _mm256_load_ps(e + 48), t7 = _mm256_load_ps(e + 56);
#define A2_EV3(ii)                                                                                   \
    _mm256_blendv_ps(                                                                                \
        _mm256_blendv_ps(_mm256_permutevar8x32_ps(t4, ii), _mm256_permutevar8x32_ps(t5, ii),         \
                         _mm256_castsi256_ps(_mm256_slli_epi32(ii, 28))),                             \
        _mm256_blendv_ps(_mm256_permutevar8x32_ps(t6, ii), _mm256_permutevar8x32_ps(t7, ii),         \
                         _mm256_castsi256_ps(_mm256_slli_epi32(ii, 28))),                             \
        _mm256_castsi256_ps(_mm256_slli_epi32(ii, 27)))
        A2_LEVEL(A2_EV3);
#undef A2_EV3
        lv++;
    }
#define A2_EVG(ii) _mm256_i32gather_ps(e, ii, 4)
    for (; lv < L; lv++) /* > 63 thresholds */
        A2_LEVEL(A2_EVG);
#undef A2_EVG
#undef A2_LEVEL
    __m256i P = _mm256_set1_epi32(1 << L);
    for (int g = 0; g < A2_NV; g++) { /* packed to bytes in document order */
        const float *x = xf + 32 * g;
        __m256i k01 = _mm256_packus_epi32(_mm256_sub_epi32(i[4 * g], P), _mm256_sub_epi32(i[4 * g + 1], P));
        __m256i k23 = _mm256_packus_epi32(_mm256_sub_epi32(i[4 * g + 2], P), _mm256_sub_epi32(i[4 * g + 3], P));
        code[g] = _mm256_packus_epi16(k01, k23);
        __m256 x0 = _mm256_load_ps(x), x1 = _mm256_load_ps(x + 8), x2 = _mm256_load_ps(x + 16), x3 = _mm256_load_ps(x + 24);
        __m256i n01 = _mm256_packs_epi32(_mm256_castps_si256(_mm256_cmp_ps(x0, x0, _CMP_UNORD_Q)),
                                         _mm256_castps_si256(_mm256_cmp_ps(x1, x1, _CMP_UNORD_Q)));
        __m256i n23 = _mm256_packs_epi32(_mm256_castps_si256(_mm256_cmp_ps(x2, x2, _CMP_UNORD_Q)),
                                         _mm256_castps_si256(_mm256_cmp_ps(x3, x3, _CMP_UNORD_Q)));
        nan[g] = _mm256_packs_epi16(n01, n23);
    }
}

__attribute__((target("avx2,bmi")))
static void score_qs8avx2(const rank_model_t *m, const float *X, size_t n, size_t stride, double *out)
{
    const rank_qs8 *q8 = &m->qs8;
    const rank_qsa2 *q = &m->qsa2;
    const __m256i zero = _mm256_setzero_si256(), ones = _mm256_set1_epi32(-1);
    /* trailing zeros of a nibble, 8 for none (vpminub picks the other half) */
    const __m256i tzlo = _mm256_setr_epi8(8, 0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 1, 0,
                                          8, 0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 1, 0);
    const __m256i tzhi = _mm256_setr_epi8(8, 4, 5, 4, 6, 4, 5, 4, 7, 4, 5, 4, 6, 4, 5, 4,
                                          8, 4, 5, 4, 6, 4, 5, 4, 7, 4, 5, 4, 6, 4, 5, 4);
    const __m256i nib = _mm256_set1_epi8(0x0f);
    const __m256i c15 = _mm256_set1_epi8(15), c80 = _mm256_set1_epi8((char)0x80);
    /* window codes: xc[c * A2_BLOCK + d], at most RANK_QS_MAX_COLS * A2_BLOCK bytes of stack */
    uint8_t xc[q->ncols * A2_BLOCK + 32] __attribute__((aligned(32)));
    float xt[8 * A2_BLOCK] __attribute__((aligned(32)));
    uint8_t ix[A2_TREES * A2_BLOCK] __attribute__((aligned(32)));
    __m256i bs[8][A2_NV];
    double acc[A2_BLOCK];
    for (size_t b0 = 0; b0 < n; b0 += A2_BLOCK) {
        size_t bn = n - b0 < A2_BLOCK ? n - b0 : A2_BLOCK;
        const float *Xb = X + b0 * stride;
        int chunk = -1;
        for (size_t fi = 0; fi < q8->nfeat; fi++) {
            const rank_qs8_feat *F = &q8->feat[fi];
            if (F->feature >> 3 != chunk) { /* features ascend: each chunk once */
                chunk = F->feature >> 3;
                a2_transpose(Xb, stride, bn, (size_t)chunk * 8, m->nfeatures, xt);
            }
            const float *xf = xt + (F->feature & 7) * A2_BLOCK;
            __m256i code[A2_NV], nan[A2_NV];
            a2_code(F, q8->tab + F->tab_off, xf, code, nan);
            for (size_t g = 0; g < A2_NV; g++) {
                __m256i nn = _mm256_and_si256(nan[g], c80);
                uint8_t *d = xc + (size_t)q->fcol[fi] * A2_BLOCK + 32 * g;
                for (unsigned w = 0; w < q->fnwin[fi]; w++, d += A2_BLOCK) {
                    __m256i cw = _mm256_min_epu8(_mm256_subs_epu8(code[g], _mm256_set1_epi8((char)(15 * w))), c15);
                    _mm256_store_si256((__m256i *)d, _mm256_or_si256(cw, nn));
                }
            }
        }
        for (size_t p = 0; p < A2_BLOCK; p++)
            acc[p] = m->base_score;
        for (size_t t0 = 0; t0 < m->ntrees; t0 += A2_TREES) {
            size_t tn = m->ntrees - t0 < A2_TREES ? m->ntrees - t0 : A2_TREES;
            for (size_t tt = 0; tt < tn; tt++) {
                size_t t = t0 + tt;
                const size_t *eo = q->eoff + t * 8;
                unsigned nb = q->nbytes[t];
                for (unsigned b = 0; b < nb; b++) {
                    __m256i B[A2_NV];
                    for (int v = 0; v < A2_NV; v++)
                        B[v] = ones;
                    size_t k = eo[b], ke = eo[b + 1];
                    for (; k + 2 <= ke; k += 2) {
                        __m256i lut = _mm256_broadcastsi128_si256(_mm_load_si128((const __m128i *)(q->lut + 16 * k)));
                        __m256i lut2 = _mm256_broadcastsi128_si256(_mm_load_si128((const __m128i *)(q->lut + 16 * k + 16)));
                        const uint8_t *c = xc + q->coff[k], *c2 = xc + q->coff[k + 1];
                        for (int v = 0; v < A2_NV; v++)
                            B[v] = _mm256_andnot_si256(
                                _mm256_or_si256(_mm256_shuffle_epi8(lut, _mm256_load_si256((const __m256i *)(c + 32 * v))),
                                _mm256_shuffle_epi8(lut2, _mm256_load_si256((const __m256i *)(c2 + 32 * v)))), B[v]);
                    }
                    if (k < ke) {
                        __m256i lut = _mm256_broadcastsi128_si256(_mm_load_si128((const __m128i *)(q->lut + 16 * k)));
                        const uint8_t *c = xc + q->coff[k];
                        for (int v = 0; v < A2_NV; v++)
                            B[v] = _mm256_andnot_si256(
                                _mm256_shuffle_epi8(lut, _mm256_load_si256((const __m256i *)(c + 32 * v))), B[v]);
                    }
                    for (int v = 0; v < A2_NV; v++)
                        bs[b][v] = B[v];
                }
                /* exit leaf = lowest set bit: the first non-zero byte (sel,
                 * found with P = "all bytes so far are zero") and its
                 * trailing zeros by two nibble tables */
                for (int v = 0; v < A2_NV; v++) {
                    __m256i sel = bs[0][v], P = _mm256_cmpeq_epi8(bs[0][v], zero), cnt = P;
                    for (unsigned b = 1; b < nb; b++) {
                        sel = _mm256_or_si256(sel, _mm256_and_si256(bs[b][v], P));
                        if (b + 1 < nb) {
                            P = _mm256_and_si256(P, _mm256_cmpeq_epi8(bs[b][v], zero));
                            cnt = _mm256_add_epi8(cnt, P);
                        }
                    }
                    __m256i off = _mm256_slli_epi16(_mm256_sub_epi8(zero, cnt), 3); /* <= 56: no carry */
                    __m256i lo = _mm256_and_si256(sel, nib), hi = _mm256_and_si256(_mm256_srli_epi16(sel, 4), nib);
                    __m256i tz = _mm256_min_epu8(_mm256_shuffle_epi8(tzlo, lo), _mm256_shuffle_epi8(tzhi, hi));
                    _mm256_store_si256((__m256i *)(ix + tt * A2_BLOCK + 32 * v), _mm256_add_epi8(tz, off));
                }
            }
            /* leaf values in tree order, 8 documents at a time */
            for (size_t d = 0; d < A2_BLOCK; d += 8) {
                double s0 = acc[d], s1 = acc[d + 1], s2 = acc[d + 2], s3 = acc[d + 3];
                double s4 = acc[d + 4], s5 = acc[d + 5], s6 = acc[d + 6], s7 = acc[d + 7];
                const double *lf = q->leaf + t0 * 64;
                const uint8_t *p = ix + d;
                for (size_t tt = 0; tt < tn; tt++, lf += 64, p += A2_BLOCK) {
                    s0 += lf[p[0]];
                    s1 += lf[p[1]];
                    s2 += lf[p[2]];
                    s3 += lf[p[3]];
                    s4 += lf[p[4]];
                    s5 += lf[p[5]];
                    s6 += lf[p[6]];
                    s7 += lf[p[7]];
                }
                acc[d] = s0, acc[d + 1] = s1, acc[d + 2] = s2, acc[d + 3] = s3;
                acc[d + 4] = s4, acc[d + 5] = s5, acc[d + 6] = s6, acc[d + 7] = s7;
            }
        }
        memcpy(out + b0, acc, bn * sizeof(double));
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
        score_flat(m, X, n, stride, out);
        break;
    case RANK_SCORE_QS8:
        if (stride <= INT32_MAX / Q8_BLOCK) {
            score_qs8(m, X, n, stride, out);
            break;
        }
        score_flat(m, X, n, stride, out); /* qs8 does not need padded trees */
        break;
    case RANK_SCORE_QS8AVX2: /* no lane offsets: any stride */
        score_qs8avx2(m, X, n, stride, out);
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
    rank__score_add_linear(m, X, n, stride, out);
}

void rank_model_score(const rank_model_t *m, const float *X, size_t n, size_t stride, double *out)
{
    rank_model_score_method(m, RANK_SCORE_AUTO, X, n, stride, out);
}
