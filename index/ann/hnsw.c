/* hnsw.c - the HNSW graph of hnsw.h: build, search, exact search, save, open.
 *
 * The graph in memory is exactly the graph on disk (the file's sections are
 * the arrays below), so a built graph and an opened one run the same search:
 *
 *   level0[n][1 + M0]  uint32: count, then up to M0 = 2M neighbour ids (the
 *                      rest 0). One contiguous fixed-stride array: a node's
 *                      level-0 links are at level0 + id * (1 + M0).
 *   ustart[n + 1]      uint32: node i has levels 1..L(i) with
 *                      L(i) = ustart[i + 1] - ustart[i]; its level-l links are
 *                      record ustart[i] + l - 1 of upper[].
 *   upper[nupper][1 + M]  uint32: count, then up to M neighbour ids.
 *   invn[n]            float: 1/|x_i| (cosine only; 0 for a zero vector).
 *   vectors[n][dim]    float: only in a file saved with ANN_SAVE_VECTORS.
 *
 * Internal distance (smaller is better), for a query q and a vector x_i:
 *   L2      |q - x_i|^2
 *   DOT     -q.x_i
 *   COSINE  -(q/|q|).x_i * invn[i]
 * and the score reported is the distance (L2) or minus it (DOT, COSINE).
 *
 * Invariants an opened file is checked against (so a search never reads out
 * of bounds, whatever the file says):
 *   (1) every count <= its record's capacity, every link < n;
 *   (2) a link at level l >= 1 names a node with L(node) >= l;
 *   (3) ustart[0] = 0, ustart is non-decreasing, ustart[n] = nupper,
 *       L(i) <= max_level, L(entry) = max_level.
 *
 * Build (Malkov & Yashunin, algorithms 1 and 4, as hnswlib does them):
 * levels are drawn up front from the seed (level = floor(-ln U / ln M)), so
 * the upper arrays are allocated once. Node 0 is the first entry point; the
 * other nodes are inserted by `threads` workers taking ids from an atomic
 * counter. Inserting node i: greedy descent from the entry point down to
 * L(i) + 1, then at each level min(L(i), max_level) .. 0 a best-first search
 * with ef_construction candidates, the M neighbours kept by the heuristic
 * (a candidate is dropped when it is closer to an already kept neighbour
 * than to i), and a link back from each of them (pruned by the same
 * heuristic when its list is full: M on levels >= 1, 2M on level 0).
 * Locking: one lock per link list (striped: lock id & mask) held only to copy
 * or rewrite that node's lists, never two at once, so no lock order exists to
 * get wrong; a global lock guards the entry point and is held for the whole
 * insertion of a node that raises max_level (rare: about log_M n times).
 *
 * Search (query path): greedy descent through levels max_level .. 1, then the
 * best-first search of level 0 (hnsw_level0.h, compiled once per kernel so
 * the AVX2 kernels inline into it): neighbours scored four at a time, their
 * vectors prefetched a group ahead, visited marks as 16-bit epoch tags.
 *
 * Measured (docs/ann.md, tests/bench/ann_bench.sh; 2 vCPUs Xeon, AVX2 path,
 * M 16, efC 200, one search thread): Fashion-MNIST 60k x 784 L2, recall@10
 * 0.980 at ef 20, ~2x hnswlib's QPS; GloVe 25-d 11k cosine, 0.970 at ef 20,
 * ~1.2x hnswlib's. Build on 2 threads: 9 s and 0.5-1 s (hnswlib 16 s, 0.6-1.2 s).
 * Tests: tests/index/ann/test_hnsw.c.
 */
#include "hnsw.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "fn_rand.h"
#include "kernels.h"
#include "kernels_avx2.h"

/* ---- the file (docs/ann.md) ----
 *
 *   0   char[8]  magic "FNANNHSW"
 *   8   u32      version (1)
 *   12  u32      metric (ann_metric)
 *   16  u32      dim
 *   20  u32      M
 *   24  u32      M0 (= 2M)
 *   28  u32      flags: bit 0 = vectors stored, bit 1 = invn stored
 *   32  u64      n
 *   40  u32      entry point
 *   44  u32      max level
 *   48  u64      nupper (upper-level records)
 *   56  u64[5]   offsets of level0, ustart, upper, invn, vectors (0 = absent)
 *   96  u64      file size
 *   104 u8[16]   zero
 *   120 u64      xxh3-64 of bytes [0, 120) followed by bytes [128, size)
 *   128 sections, in the order of the offsets, each at a multiple of 64,
 *       zero padding between them. Little-endian throughout.
 */
#define FILE_MAGIC "FNANNHSW"
#define FILE_VERSION 1u
#define HDR_BYTES 128u
#define HDR_SUM_AT 120u
#define SEC_ALIGN 64u
#define FLAG_VECTORS 1u
#define FLAG_INVN 2u

enum { SEC_LEVEL0, SEC_USTART, SEC_UPPER, SEC_INVN, SEC_VECTORS, NSEC };

typedef struct file_hdr {
    char magic[8];
    uint32_t version, metric, dim, M, M0, flags;
    uint64_t n;
    uint32_t entry, max_level;
    uint64_t nupper;
    uint64_t off[NSEC];
    uint64_t size;
    uint8_t zero[16];
    uint64_t sum;
} file_hdr;
_Static_assert(sizeof(file_hdr) == HDR_BYTES, "the header is 128 bytes");
_Static_assert(offsetof(file_hdr, sum) == HDR_SUM_AT, "checksum at 120");

struct ann_hnsw {
    size_t n, dim;
    ann_metric metric;
    uint32_t M, M0;
    size_t stride0, strideu;        /* uint32 per level-0 / upper record */
    uint32_t entry, max_level;
    uint64_t nupper;
    uint32_t *level0, *ustart, *upper;
    float *invn;                    /* cosine only */
    const float *vecs;
    const ann__kernel_set *ks;
    ann__kernel_fn kern;            /* l2 (L2) or dot (DOT, COSINE) */
    int avx2;                       /* ks is the AVX2 set: use the *_avx2 search loops */
    void *map;                      /* opened: the whole file; else NULL (arrays malloc'd) */
    size_t map_len;
};

/* ---- small things ---- */

uint64_t ann_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void ann_hnsw_params_default(ann_hnsw_params *p)
{
    memset(p, 0, sizeof *p);
    p->metric = ANN_L2;
    p->M = 16;
    p->ef_construction = 200;
    p->threads = 1;
    p->seed = 42;
}

const char *ann_metric_name(ann_metric m)
{
    switch (m) {
    case ANN_L2: return "l2";
    case ANN_DOT: return "dot";
    case ANN_COSINE: return "cosine";
    }
    return "?";
}

int ann_metric_parse(const char *s, ann_metric *out)
{
    if (!s) return FN_EINVAL;
    if (!strcmp(s, "l2") || !strcmp(s, "euclidean")) *out = ANN_L2;
    else if (!strcmp(s, "dot") || !strcmp(s, "ip")) *out = ANN_DOT;
    else if (!strcmp(s, "cosine") || !strcmp(s, "angular")) *out = ANN_COSINE;
    else return FN_EINVAL;
    return 0;
}

static inline uint32_t node_level(const ann_hnsw_t *h, uint32_t i)
{
    return h->ustart[i + 1] - h->ustart[i];
}

/* The link record of node i at level l (count, then ids). */
static inline uint32_t *links_of(const ann_hnsw_t *h, uint32_t i, uint32_t l)
{
    if (l == 0) return h->level0 + (size_t)i * h->stride0;
    return h->upper + ((size_t)h->ustart[i] + l - 1) * h->strideu;
}

static inline const float *vec_of(const ann_hnsw_t *h, uint32_t i)
{
    return h->vecs + (size_t)i * h->dim;
}

/* Internal distance of (prepared) query q to node i; see the top. */
static inline float qdist(const ann_hnsw_t *h, const float *q, uint32_t i)
{
    float r = h->kern(q, vec_of(h, i), h->dim);
    if (h->metric == ANN_L2) return r;
    if (h->metric == ANN_DOT) return -r;
    return -r * h->invn[i];
}

/* Internal distance between two nodes. */
static inline float pdist(const ann_hnsw_t *h, uint32_t a, uint32_t b)
{
    float r = h->kern(vec_of(h, a), vec_of(h, b), h->dim);
    if (h->metric == ANN_L2) return r;
    if (h->metric == ANN_DOT) return -r;
    return -r * h->invn[a] * h->invn[b];
}

static inline float to_score(ann_metric m, float d) { return m == ANN_L2 ? d : -d; }

static inline void prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

static inline int allowed(const ann_filter *f, uint32_t id)
{
    if (f->bits && !((f->bits[id >> 6] >> (id & 63)) & 1)) return 0;
    if (f->allow && !f->allow(f->ud, id)) return 0;
    return 1;
}

/* ---- heaps of (distance, id) ---- */

typedef struct cand {
    float d;
    uint32_t id;
} cand;

typedef struct heap {
    cand *a;
    size_t n, cap;
} heap;

static int heap_reserve(heap *h, size_t need)
{
    if (need <= h->cap) return 0;
    size_t cap = h->cap ? h->cap : 64;
    while (cap < need) cap *= 2;
    cand *a = realloc(h->a, cap * sizeof *a);
    if (!a) return -ENOMEM;
    h->a = a;
    h->cap = cap;
    return 0;
}

/* min-heap: a[0] is the smallest d (the candidates to expand) */
static inline void minh_push(heap *h, float d, uint32_t id)
{
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->a[p].d <= d) break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = (cand){ d, id };
}

static inline void minh_pop(heap *h)
{
    cand x = h->a[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h->a[c + 1].d < h->a[c].d) c++;
        if (h->a[c].d >= x.d) break;
        h->a[i] = h->a[c];
        i = c;
    }
    h->a[i] = x;
}

/* max-heap: a[0] is the largest d (the worst of the results) */
static inline void maxh_push(heap *h, float d, uint32_t id)
{
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->a[p].d >= d) break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = (cand){ d, id };
}

static inline void maxh_pop(heap *h)
{
    cand x = h->a[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h->a[c + 1].d > h->a[c].d) c++;
        if (h->a[c].d <= x.d) break;
        h->a[i] = h->a[c];
        i = c;
    }
    h->a[i] = x;
}

/* the max-heap's contents into out[], ascending d (ties: lower id first) */
static size_t maxh_drain_sorted(heap *h, cand *out)
{
    size_t m = h->n;
    while (h->n) {
        out[h->n - 1] = h->a[0];
        maxh_pop(h);
    }
    for (size_t i = 1; i < m; i++) {       /* ties only: nearly sorted already */
        cand x = out[i];
        size_t j = i;
        while (j > 0 && out[j - 1].d == x.d && out[j - 1].id > x.id) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = x;
    }
    return m;
}

/* ---- scratch ---- */

struct ann_scratch {
    size_t n, dim;
    uint16_t *tags;                 /* visited: tags[i] == epoch */
    uint16_t epoch;
    heap cand, res;
    float *q;                       /* the prepared query (cosine: normalised) */
    uint32_t *buf;                  /* unvisited neighbours / a copied link list */
    float *dist;                    /* their distances */
    cand *w, *sel;                  /* build: sorted candidates, kept neighbours */
    size_t bufcap;
};

int ann_scratch_create(size_t n, size_t dim, ann_scratch_t **out)
{
    *out = NULL;
    if (n == 0 || dim == 0 || n > ANN_MAX_N || dim > ANN_MAX_DIM) return FN_EINVAL;
    ann_scratch_t *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    s->n = n;
    s->dim = dim;
    s->tags = calloc(n, sizeof *s->tags);
    s->q = aligned_alloc(64, (dim * sizeof(float) + 63) / 64 * 64);
    if (!s->tags || !s->q || heap_reserve(&s->cand, 256) || heap_reserve(&s->res, 256)) {
        ann_scratch_destroy(s);
        return -ENOMEM;
    }
    *out = s;
    return 0;
}

void ann_scratch_destroy(ann_scratch_t *s)
{
    if (!s) return;
    free(s->tags);
    free(s->q);
    free(s->cand.a);
    free(s->res.a);
    free(s->buf);
    free(s->dist);
    free(s->w);
    free(s->sel);
    free(s);
}

/* room for link lists of up to cap ids and cap + 1 candidates */
static int scratch_links(ann_scratch_t *s, size_t cap)
{
    if (cap + 1 <= s->bufcap) return 0;
    size_t c = cap + 1;
    uint32_t *b = realloc(s->buf, c * sizeof *b);
    if (b) s->buf = b;
    float *d = realloc(s->dist, c * sizeof *d);
    if (d) s->dist = d;
    cand *w = realloc(s->w, c * sizeof *w);
    if (w) s->w = w;
    cand *sel = realloc(s->sel, c * sizeof *sel);
    if (sel) s->sel = sel;
    if (!b || !d || !w || !sel) return -ENOMEM;
    s->bufcap = c;
    return 0;
}

static inline uint16_t new_epoch(ann_scratch_t *s)
{
    if (++s->epoch == 0) {
        memset(s->tags, 0, s->n * sizeof *s->tags);
        s->epoch = 1;
    }
    return s->epoch;
}

/* q (dim floats) prepared for the metric into s->q: a copy, normalised for
 * cosine (a zero query stays zero). */
static const float *prepare_query(const ann_hnsw_t *h, ann_scratch_t *s, const float *q)
{
    if (h->metric != ANN_COSINE) return q;
    double nn = 0;
    for (size_t i = 0; i < h->dim; i++) nn += (double)q[i] * q[i];
    float inv = nn > 0 ? (float)(1.0 / sqrt(nn)) : 0.0f;
    for (size_t i = 0; i < h->dim; i++) s->q[i] = q[i] * inv;
    return s->q;
}

/* ---- search ---- */

/* Greedy descent from (*cur, *curd) through levels top .. bottom (>= 1);
 * read-only graph (no locks). */
static void descend(const ann_hnsw_t *h, const float *q, uint32_t top, uint32_t bottom,
                    uint32_t *cur, float *curd)
{
    for (uint32_t l = top; l >= bottom && l > 0; l--) {
        bool changed = true;
        while (changed) {
            changed = false;
            const uint32_t *ll = links_of(h, *cur, l);
            uint32_t cnt = ll[0];
            for (uint32_t j = 1; j <= cnt; j++) prefetch(vec_of(h, ll[j]));
            for (uint32_t j = 1; j <= cnt; j++) {
                float d = qdist(h, q, ll[j]);
                if (d < *curd) {
                    *curd = d;
                    *cur = ll[j];
                    changed = true;
                }
            }
        }
    }
}

/* How many cache lines of a neighbour's vector to prefetch ahead. */
#define PREFETCH_LINES 16

/* ---- the best-first search of a level: hnsw_level0.h, once per kernel ---- */

typedef struct build_ctx {
    ann_hnsw_t *h;
    uint32_t efc;
    pthread_mutex_t *locks;         /* striped: locks[id & lock_mask] */
    size_t lock_mask;
    pthread_mutex_t glock;          /* entry, max_level */
    atomic_size_t next;             /* next id to insert */
    atomic_int err;
} build_ctx;

static inline pthread_mutex_t *lock_of(build_ctx *b, uint32_t id)
{
    return &b->locks[id & b->lock_mask];
}

/* copy node i's level-l links into s->buf under its lock; returns the count */
static uint32_t copy_links(build_ctx *b, ann_scratch_t *s, uint32_t i, uint32_t l)
{
    pthread_mutex_lock(lock_of(b, i));
    const uint32_t *ll = links_of(b->h, i, l);
    uint32_t cnt = ll[0];
    memcpy(s->buf, ll + 1, cnt * sizeof *ll);
    pthread_mutex_unlock(lock_of(b, i));
    return cnt;
}

/* node id's vector, its lines after the first (that one is prefetched when
 * the node is found unvisited), up to PREFETCH_LINES lines in all */
static inline void prefetch_rest(const ann_hnsw_t *h, uint32_t id)
{
    uintptr_t a = (uintptr_t)vec_of(h, id), end = a + h->dim * sizeof(float);
    uintptr_t lim = (a & ~(uintptr_t)63) + 64 * PREFETCH_LINES;
    for (a = (a & ~(uintptr_t)63) + 64; a < end && a < lim; a += 64) prefetch((const void *)a);
}

/* the raw kernel's result as an internal distance (see the top) */
static inline float adjust(const ann_hnsw_t *h, uint32_t id, float r)
{
    if (h->metric == ANN_L2) return r;
    if (h->metric == ANN_DOT) return -r;
    return -r * h->invn[id];
}

#define L0_NAME level0_generic
#define L0_ATTR
#define L0_KERNEL(a, b, d) h->kern(a, b, d)
#define L0_BUILD 0
#include "hnsw_level0.h"

#define L0_NAME layer_build_generic
#define L0_ATTR
#define L0_KERNEL(a, b, d) h->kern(a, b, d)
#define L0_BUILD 1
#include "hnsw_level0.h"

#if ANN_HAVE_AVX2_CODE
#define L0_NAME level0_avx2
#define L0_ATTR __attribute__((target("avx2,fma")))
#define L0_KERNEL(a, b, d) (h->metric == ANN_L2 ? ann__l2_avx2(a, b, d) : ann__dot_avx2(a, b, d))
#define L0_KERNEL4(a, b4, d, out) \
    (h->metric == ANN_L2 ? ann__l2x4_avx2(a, b4, d, out) : ann__dotx4_avx2(a, b4, d, out))
#define L0_BUILD 0
#include "hnsw_level0.h"

#define L0_NAME layer_build_avx2
#define L0_ATTR __attribute__((target("avx2,fma")))
#define L0_KERNEL(a, b, d) (h->metric == ANN_L2 ? ann__l2_avx2(a, b, d) : ann__dot_avx2(a, b, d))
#define L0_KERNEL4(a, b4, d, out) \
    (h->metric == ANN_L2 ? ann__l2x4_avx2(a, b4, d, out) : ann__dotx4_avx2(a, b4, d, out))
#define L0_BUILD 1
#include "hnsw_level0.h"
#endif

static int search_level0(const ann_hnsw_t *h, ann_scratch_t *s, const float *q, uint32_t ep,
                         float epd, size_t ef, const ann_filter *f, uint64_t deadline)
{
#if ANN_HAVE_AVX2_CODE
    if (h->avx2) return level0_avx2(h, s, q, ep, epd, ef, f, deadline);
#endif
    return level0_generic(h, s, q, ep, epd, ef, f, deadline);
}

/* best-first search of level l for the efc nearest, into s->w ascending;
 * returns their number or -ENOMEM */
static long search_layer_build(build_ctx *b, ann_scratch_t *s, const float *q, uint32_t ep,
                               float epd, uint32_t l)
{
#if ANN_HAVE_AVX2_CODE
    if (b->h->avx2) return layer_build_avx2(b, s, q, ep, epd, l);
#endif
    return layer_build_generic(b, s, q, ep, epd, l);
}

int ann_hnsw_search(const ann_hnsw_t *h, ann_scratch_t *s, const float *query, size_t k,
                    size_t ef, const ann_filter *filter, uint64_t deadline_ns, ann_hit *hits,
                    size_t *nhits, unsigned *flags)
{
    if (flags) *flags = 0;
    if (nhits) *nhits = 0;
    if (!h || !s || !query || !hits || !nhits || k == 0) return FN_EINVAL;
    if (s->n != h->n || s->dim != h->dim) return FN_EINVAL;
    if (filter && !filter->bits && !filter->allow) filter = NULL;
    if (ef < k) ef = k;
    if (ef > h->n) ef = h->n > k ? h->n : k;
    int rc;
    if ((rc = scratch_links(s, h->M0)) != 0) return rc;
    if ((rc = heap_reserve(&s->res, ef + 2)) != 0) return rc;
    const float *q = prepare_query(h, s, query);
    uint32_t cur = h->entry;
    float curd = qdist(h, q, cur);
    descend(h, q, h->max_level, 1, &cur, &curd);
    rc = search_level0(h, s, q, cur, curd, ef, filter, deadline_ns);
    if (rc < 0) return rc;
    if (rc == 1 && flags) *flags |= ANN_DEADLINE_HIT;
    heap *res = &s->res;
    while (res->n > k) maxh_pop(res);
    /* the candidates are done with: their array takes the sorted results */
    if ((rc = heap_reserve(&s->cand, res->n)) != 0) return rc;
    cand *out = s->cand.a;
    size_t m = maxh_drain_sorted(res, out);
    for (size_t i = 0; i < m; i++) {
        hits[i].id = out[i].id;
        hits[i].score = to_score(h->metric, out[i].d);
    }
    *nhits = m;
    return 0;
}

/* ---- exact search ---- */

static int exact_impl(const float *vecs, size_t n, size_t dim, ann_metric metric,
                      const float *invn, const float *query, size_t k, const ann_filter *f,
                      ann_hit *hits, size_t *nhits)
{
    *nhits = 0;
    if (!vecs || !query || !hits || k == 0 || n == 0 || dim == 0 || n > ANN_MAX_N)
        return FN_EINVAL;
    if ((unsigned)metric > ANN_COSINE) return FN_EINVAL;
    if (f && !f->bits && !f->allow) f = NULL;
    const ann__kernel_set *ks = ann__kernels();
    ann__kernel_fn kern = metric == ANN_L2 ? ks->l2 : ks->dot;
    float *qn = NULL;
    const float *q = query;
    if (metric == ANN_COSINE) {
        qn = malloc(dim * sizeof *qn);
        if (!qn) return -ENOMEM;
        double nn = 0;
        for (size_t i = 0; i < dim; i++) nn += (double)query[i] * query[i];
        float inv = nn > 0 ? (float)(1.0 / sqrt(nn)) : 0.0f;
        for (size_t i = 0; i < dim; i++) qn[i] = query[i] * inv;
        q = qn;
    }
    heap res = { 0 };
    cand *out = NULL;
    if (heap_reserve(&res, k + 1) || !(out = malloc((k + 1) * sizeof *out))) {
        free(res.a);
        free(qn);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (f && !allowed(f, (uint32_t)i)) continue;
        const float *x = vecs + i * dim;
        float r = kern(q, x, dim), d;
        if (metric == ANN_L2) d = r;
        else if (metric == ANN_DOT) d = -r;
        else if (invn) d = -r * invn[i];
        else {
            double nn = 0;
            for (size_t j = 0; j < dim; j++) nn += (double)x[j] * x[j];
            d = -r * (nn > 0 ? (float)(1.0 / sqrt(nn)) : 0.0f);
        }
        /* keep the k smallest (d, id): a later id never displaces an equal d */
        if (res.n < k) maxh_push(&res, d, (uint32_t)i);
        else if (d < res.a[0].d) {
            maxh_pop(&res);
            maxh_push(&res, d, (uint32_t)i);
        }
    }
    size_t m = maxh_drain_sorted(&res, out);
    for (size_t i = 0; i < m; i++) {
        hits[i].id = out[i].id;
        hits[i].score = to_score(metric, out[i].d);
    }
    *nhits = m;
    free(out);
    free(res.a);
    free(qn);
    return 0;
}

int ann_exact(const float *vecs, size_t n, size_t dim, ann_metric metric, const float *query,
              size_t k, const ann_filter *filter, ann_hit *hits, size_t *nhits)
{
    size_t dummy;
    if (!nhits) nhits = &dummy;
    return exact_impl(vecs, n, dim, metric, NULL, query, k, filter, hits, nhits);
}

int ann_hnsw_exact(const ann_hnsw_t *h, const float *query, size_t k, const ann_filter *filter,
                   ann_hit *hits, size_t *nhits)
{
    size_t dummy;
    if (!nhits) nhits = &dummy;
    if (!h) return FN_EINVAL;
    return exact_impl(h->vecs, h->n, h->dim, h->metric, h->invn, query, k, filter, hits, nhits);
}

/* ---- build ---- */

static void descend_locked(build_ctx *b, ann_scratch_t *s, const float *q, uint32_t top,
                           uint32_t bottom, uint32_t *cur, float *curd)
{
    const ann_hnsw_t *h = b->h;
    for (uint32_t l = top; l >= bottom && l > 0; l--) {
        bool changed = true;
        while (changed) {
            changed = false;
            uint32_t cnt = copy_links(b, s, *cur, l);
            for (uint32_t j = 0; j < cnt; j++) {
                float d = qdist(h, q, s->buf[j]);
                if (d < *curd) {
                    *curd = d;
                    *cur = s->buf[j];
                    changed = true;
                }
            }
        }
    }
}

/* Malkov & Yashunin's heuristic (hnswlib getNeighborsByHeuristic2): from w[]
 * (ascending distance to the base), keep a candidate unless it is closer to
 * an already kept one than to the base; at most m. Writes sel[], returns the
 * count. */
static size_t select_heuristic(const ann_hnsw_t *h, const cand *w, size_t nw, size_t m,
                               cand *sel)
{
    if (nw <= m) {
        memcpy(sel, w, nw * sizeof *w);
        return nw;
    }
    size_t ns = 0;
    for (size_t i = 0; i < nw && ns < m; i++) {
        bool good = true;
        for (size_t j = 0; j < ns; j++)
            if (pdist(h, w[i].id, sel[j].id) < w[i].d) {
                good = false;
                break;
            }
        if (good) sel[ns++] = w[i];
    }
    return ns;
}

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* link node nb (already in the graph) to the new node i at level l */
static void link_back(build_ctx *b, ann_scratch_t *s, uint32_t nb, uint32_t i, float d, uint32_t l)
{
    const ann_hnsw_t *h = b->h;
    uint32_t cap = l ? h->M : h->M0;
    pthread_mutex_lock(lock_of(b, nb));
    uint32_t *ll = links_of(h, nb, l);
    uint32_t cnt = ll[0];
    if (cnt < cap) {
        ll[1 + cnt] = i;
        ll[0] = cnt + 1;
    } else {
        cand *w = s->w, *sel = s->sel;
        for (uint32_t j = 0; j < cnt; j++) w[j] = (cand){ pdist(h, nb, ll[1 + j]), ll[1 + j] };
        w[cnt] = (cand){ d, i };
        qsort(w, cnt + 1, sizeof *w, cand_cmp);
        size_t ns = select_heuristic(h, w, cnt + 1, cap, sel);
        for (size_t j = 0; j < ns; j++) ll[1 + j] = sel[j].id;
        for (size_t j = ns; j < cnt; j++) ll[1 + j] = 0;
        ll[0] = (uint32_t)ns;
    }
    pthread_mutex_unlock(lock_of(b, nb));
}

static int insert(build_ctx *b, ann_scratch_t *s, uint32_t i)
{
    ann_hnsw_t *h = b->h;
    uint32_t li = node_level(h, i);
    const float *q = vec_of(h, i);
    if (h->metric == ANN_COSINE) {
        for (size_t j = 0; j < h->dim; j++) s->q[j] = q[j] * h->invn[i];
        q = s->q;
    }
    pthread_mutex_lock(&b->glock);
    uint32_t ep = h->entry, maxl = h->max_level;
    bool raise = li > maxl;
    if (!raise) pthread_mutex_unlock(&b->glock);
    float epd = qdist(h, q, ep);
    if (maxl > li) descend_locked(b, s, q, maxl, li + 1, &ep, &epd);
    for (uint32_t l = li < maxl ? li : maxl;; l--) {
        long nw = search_layer_build(b, s, q, ep, epd, l);
        if (nw < 0) {
            if (raise) pthread_mutex_unlock(&b->glock);
            return (int)nw;
        }
        size_t ns = select_heuristic(h, s->w, (size_t)nw, h->M, s->sel);
        /* the closest found is where the next level starts */
        ep = s->w[0].id;
        epd = s->w[0].d;
        pthread_mutex_lock(lock_of(b, i));
        uint32_t *ll = links_of(h, i, l);
        for (size_t j = 0; j < ns; j++) ll[1 + j] = s->sel[j].id;
        ll[0] = (uint32_t)ns;
        pthread_mutex_unlock(lock_of(b, i));
        /* link_back reuses s->w and s->sel: the kept neighbours go to the stack */
        uint32_t keep[ANN_MAX_M];
        float kd[ANN_MAX_M];
        for (size_t j = 0; j < ns; j++) {
            keep[j] = s->sel[j].id;
            kd[j] = s->sel[j].d;
        }
        for (size_t j = 0; j < ns; j++) link_back(b, s, keep[j], i, kd[j], l);
        if (l == 0) break;
    }
    if (raise) {
        h->entry = i;
        h->max_level = li;
        pthread_mutex_unlock(&b->glock);
    }
    return 0;
}

static void *build_worker(void *arg)
{
    build_ctx *b = arg;
    ann_hnsw_t *h = b->h;
    ann_scratch_t *s = NULL;
    int rc = ann_scratch_create(h->n, h->dim, &s);
    /* s->w holds a level's ef_construction nearest, or a full list + 1 */
    if (rc == 0) rc = scratch_links(s, b->efc > h->M0 + 1 ? b->efc : h->M0 + 1);
    if (rc == 0) rc = heap_reserve(&s->res, b->efc + 2);
    if (rc != 0) {
        atomic_store(&b->err, rc);
        ann_scratch_destroy(s);
        return NULL;
    }
    for (;;) {
        if (atomic_load(&b->err)) break;
        size_t i = atomic_fetch_add(&b->next, 1);
        if (i >= h->n) break;
        if ((rc = insert(b, s, (uint32_t)i)) != 0) {
            atomic_store(&b->err, rc);
            break;
        }
    }
    ann_scratch_destroy(s);
    return NULL;
}

static void set_kernels(ann_hnsw_t *h)
{
    h->ks = ann__kernels();
    h->kern = h->metric == ANN_L2 ? h->ks->l2 : h->ks->dot;
    h->avx2 = ANN_HAVE_AVX2_CODE && h->ks != ann__kernels_scalar();
}

int ann_hnsw_build(const float *vecs, size_t n, size_t dim, const ann_hnsw_params *p,
                   ann_hnsw_t **out, fn_errbuf *eb)
{
    *out = NULL;
    if (!vecs || !p) return fn_seterr(eb, FN_EINVAL, "ann build: no vectors or no parameters");
    if (n == 0 || n > ANN_MAX_N)
        return fn_seterr(eb, FN_EINVAL, "ann build: %zu vectors (1..%u)", n, ANN_MAX_N);
    if (dim == 0 || dim > ANN_MAX_DIM)
        return fn_seterr(eb, FN_EINVAL, "ann build: dimension %zu (1..%u)", dim, ANN_MAX_DIM);
    if (p->M < 2 || p->M > ANN_MAX_M)
        return fn_seterr(eb, FN_EINVAL, "ann build: M %u (2..%u)", p->M, ANN_MAX_M);
    if (p->ef_construction == 0)
        return fn_seterr(eb, FN_EINVAL, "ann build: ef_construction must be >= 1");
    if (p->threads == 0 || p->threads > 1024)
        return fn_seterr(eb, FN_EINVAL, "ann build: threads %u (1..1024)", p->threads);
    if ((unsigned)p->metric > ANN_COSINE)
        return fn_seterr(eb, FN_EINVAL, "ann build: unknown metric %d", (int)p->metric);

    ann_hnsw_t *h = calloc(1, sizeof *h);
    if (!h) return fn_seterr(eb, -ENOMEM, "ann build: out of memory");
    h->n = n;
    h->dim = dim;
    h->metric = p->metric;
    h->M = p->M;
    h->M0 = 2 * p->M;
    h->stride0 = 1 + (size_t)h->M0;
    h->strideu = 1 + (size_t)h->M;
    h->vecs = vecs;
    set_kernels(h);
    int rc = -ENOMEM;
    build_ctx b = { .h = h, .efc = p->ef_construction };

    /* levels, drawn in id order from the seed */
    h->ustart = malloc((n + 1) * sizeof *h->ustart);
    if (!h->ustart) goto fail;
    double mult = 1.0 / log((double)p->M);
    uint64_t rng = p->seed, total = 0;
    for (size_t i = 0; i < n; i++) {
        double u = ((double)(fn_splitmix64(&rng) >> 11) + 1.0) * 0x1.0p-53;   /* (0, 1] */
        double lv = floor(-log(u) * mult);
        uint32_t l = lv > ANN_MAX_LEVEL ? ANN_MAX_LEVEL : (uint32_t)lv;
        h->ustart[i] = (uint32_t)total;
        total += l;
        if (total > UINT32_MAX) {
            rc = fn_seterr(eb, FN_EINVAL, "ann build: too many upper-level records");
            goto fail;
        }
    }
    h->ustart[n] = (uint32_t)total;
    h->nupper = total;
    h->level0 = calloc(n, h->stride0 * sizeof(uint32_t));
    h->upper = calloc(total ? total : 1, h->strideu * sizeof(uint32_t));
    if (!h->level0 || !h->upper) goto fail;
    if (h->metric == ANN_COSINE) {
        h->invn = malloc(n * sizeof *h->invn);
        if (!h->invn) goto fail;
        for (size_t i = 0; i < n; i++) {
            double nn = 0;
            const float *x = vecs + i * dim;
            for (size_t j = 0; j < dim; j++) nn += (double)x[j] * x[j];
            h->invn[i] = nn > 0 ? (float)(1.0 / sqrt(nn)) : 0.0f;
        }
    }

    /* locks: a power of two, at most 64k, at most ~n */
    size_t nlocks = 1;
    while (nlocks < n && nlocks < 65536) nlocks *= 2;
    b.locks = malloc(nlocks * sizeof *b.locks);
    if (!b.locks) goto fail;
    b.lock_mask = nlocks - 1;
    for (size_t i = 0; i < nlocks; i++) pthread_mutex_init(&b.locks[i], NULL);
    pthread_mutex_init(&b.glock, NULL);

    h->entry = 0;
    h->max_level = node_level(h, 0);
    atomic_init(&b.next, 1);
    atomic_init(&b.err, 0);
    size_t nthr = p->threads;
    if (nthr > n) nthr = n;
    if (nthr <= 1) {
        build_worker(&b);
    } else {
        pthread_t *tids = malloc(nthr * sizeof *tids);
        size_t started = 0;
        if (!tids) atomic_store(&b.err, -ENOMEM);
        for (; tids && started < nthr; started++) {
            int e = pthread_create(&tids[started], NULL, build_worker, &b);
            if (e) {
                atomic_store(&b.err, -e);
                break;
            }
        }
        for (size_t t = 0; t < started; t++) pthread_join(tids[t], NULL);
        free(tids);
    }
    for (size_t i = 0; i < nlocks; i++) pthread_mutex_destroy(&b.locks[i]);
    pthread_mutex_destroy(&b.glock);
    free(b.locks);
    rc = atomic_load(&b.err);
    if (rc != 0) {
        fn_seterr(eb, rc, "ann build: %s", fn_strerror(rc));
        ann_hnsw_close(h);
        return rc;
    }
    *out = h;
    return 0;
fail:
    if (rc == -ENOMEM) fn_seterr(eb, rc, "ann build: out of memory");
    ann_hnsw_close(h);
    return rc;
}

void ann_hnsw_close(ann_hnsw_t *h)
{
    if (!h) return;
    if (h->map) {
        munmap(h->map, h->map_len);
    } else {
        free(h->level0);
        free(h->ustart);
        free(h->upper);
        free(h->invn);
    }
    free(h);
}

/* ---- info ---- */

static uint64_t sec_bytes(const ann_hnsw_t *h, int sec)
{
    switch (sec) {
    case SEC_LEVEL0: return (uint64_t)h->n * h->stride0 * 4;
    case SEC_USTART: return ((uint64_t)h->n + 1) * 4;
    case SEC_UPPER: return h->nupper * h->strideu * 4;
    case SEC_INVN: return h->metric == ANN_COSINE ? (uint64_t)h->n * 4 : 0;
    case SEC_VECTORS: return (uint64_t)h->n * h->dim * 4;
    }
    return 0;
}

static uint64_t align_up(uint64_t x) { return (x + SEC_ALIGN - 1) / SEC_ALIGN * SEC_ALIGN; }

/* section offsets and the file size; with or without the vectors */
static uint64_t layout(const ann_hnsw_t *h, bool with_vectors, uint64_t off[NSEC])
{
    uint64_t at = HDR_BYTES;
    for (int s = 0; s < NSEC; s++) {
        off[s] = 0;
        uint64_t len = sec_bytes(h, s);
        if (s == SEC_VECTORS && !with_vectors) len = 0;
        if (s == SEC_INVN && h->metric != ANN_COSINE) len = 0;
        if (len == 0 && (s == SEC_INVN || s == SEC_VECTORS)) continue;
        at = align_up(at);
        off[s] = at;
        at += len;
    }
    return at;
}

void ann_hnsw_mapping(const ann_hnsw_t *h, const void **p, size_t *len)
{
    *p = h ? h->map : NULL;
    *len = h && h->map ? h->map_len : 0;
}

void ann_hnsw_get_info(const ann_hnsw_t *h, ann_hnsw_info *info)
{
    memset(info, 0, sizeof *info);
    info->n = h->n;
    info->dim = h->dim;
    info->metric = h->metric;
    info->M = h->M;
    info->M0 = h->M0;
    info->max_level = h->max_level;
    info->entry = h->entry;
    info->upper_nodes = h->nupper;
    for (int s = 0; s < SEC_VECTORS; s++) info->graph_bytes += sec_bytes(h, s);
    uint64_t off[NSEC];
    info->file_bytes = h->map ? h->map_len : layout(h, false, off);
    info->kernel = h->ks->name;
}

const float *ann_hnsw_vectors(const ann_hnsw_t *h) { return h->vecs; }

/* ---- save ---- */

static int write_hashed(FILE *f, XXH3_state_t *st, const void *p, size_t len)
{
    if (len == 0) return 0;
    XXH3_64bits_update(st, p, len);
    return fwrite(p, 1, len, f) == len ? 0 : -1;
}

int ann_hnsw_save(const ann_hnsw_t *h, const char *path, unsigned flags, fn_errbuf *eb)
{
    if (!h || !path) return fn_seterr(eb, FN_EINVAL, "ann save: no graph or no path");
    bool vecs = (flags & ANN_SAVE_VECTORS) != 0;
    file_hdr hd;
    memset(&hd, 0, sizeof hd);
    memcpy(hd.magic, FILE_MAGIC, 8);
    hd.version = FILE_VERSION;
    hd.metric = (uint32_t)h->metric;
    hd.dim = (uint32_t)h->dim;
    hd.M = h->M;
    hd.M0 = h->M0;
    hd.flags = (vecs ? FLAG_VECTORS : 0) | (h->metric == ANN_COSINE ? FLAG_INVN : 0);
    hd.n = h->n;
    hd.entry = h->entry;
    hd.max_level = h->max_level;
    hd.nupper = h->nupper;
    hd.size = layout(h, vecs, hd.off);

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) return fn_seterr(eb, -ENOMEM, "ann save: out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int e = -errno;
        fn_seterr(eb, e, "%s: %s", tmp, strerror(-e));
        free(tmp);
        return e;
    }
    XXH3_state_t *st = XXH3_createState();
    int rc = 0;
    if (!st) {
        rc = fn_seterr(eb, -ENOMEM, "ann save: out of memory");
        goto out;
    }
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, &hd, HDR_SUM_AT);
    rc = fwrite(&hd, 1, HDR_BYTES, f) == HDR_BYTES ? 0 : -1;
    const void *src[NSEC] = { h->level0, h->ustart, h->upper, h->invn, h->vecs };
    uint64_t at = HDR_BYTES;
    static const uint8_t zeros[SEC_ALIGN];
    for (int s = 0; s < NSEC && rc == 0; s++) {
        if (!hd.off[s]) continue;
        rc = write_hashed(f, st, zeros, (size_t)(hd.off[s] - at));
        if (rc == 0) rc = write_hashed(f, st, src[s], (size_t)sec_bytes(h, s));
        at = hd.off[s] + sec_bytes(h, s);
    }
    if (rc == 0) {
        hd.sum = XXH3_64bits_digest(st);
        if (fseek(f, HDR_SUM_AT, SEEK_SET) != 0 || fwrite(&hd.sum, 8, 1, f) != 1) rc = -1;
    }
    if (rc == 0 && (fflush(f) != 0 || fsync(fileno(f)) != 0)) rc = -1;
    if (rc != 0) {
        rc = errno ? -errno : -EIO;
        fn_seterr(eb, rc, "%s: %s", tmp, strerror(-rc));
    }
out:
    XXH3_freeState(st);
    if (fclose(f) != 0 && rc == 0) {
        rc = -errno;
        fn_seterr(eb, rc, "%s: %s", tmp, strerror(-rc));
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -errno;
        fn_seterr(eb, rc, "%s: %s", path, strerror(-rc));
    }
    if (rc != 0) unlink(tmp);
    free(tmp);
    return rc;
}

/* ---- open ---- */

/* the checks of invariants (1)..(3) on a mapped graph */
static int check_structure(const ann_hnsw_t *h, const char *path, fn_errbuf *eb)
{
    const uint32_t n = (uint32_t)h->n;
    if (h->ustart[0] != 0)
        return fn_seterr(eb, FN_ECORRUPT, "%s: corrupt ANN graph: level table does not start at 0", path);
    for (uint32_t i = 0; i < n; i++) {
        if (h->ustart[i + 1] < h->ustart[i] || h->ustart[i + 1] - h->ustart[i] > h->max_level)
            return fn_seterr(eb, FN_ECORRUPT, "%s: corrupt ANN graph: node %u has a bad level", path, i);
    }
    if (h->ustart[n] != h->nupper)
        return fn_seterr(eb, FN_ECORRUPT, "%s: corrupt ANN graph: level table ends at %u, not %llu",
                         path, h->ustart[n], (unsigned long long)h->nupper);
    if (node_level(h, h->entry) != h->max_level)
        return fn_seterr(eb, FN_ECORRUPT, "%s: corrupt ANN graph: entry point %u is not on the top level",
                         path, h->entry);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t L = node_level(h, i);
        for (uint32_t l = 0; l <= L; l++) {
            const uint32_t *ll = links_of(h, i, l);
            uint32_t cap = l ? h->M : h->M0;
            if (ll[0] > cap)
                return fn_seterr(eb, FN_ECORRUPT,
                                 "%s: corrupt ANN graph: node %u has %u links on level %u (max %u)",
                                 path, i, ll[0], l, cap);
            for (uint32_t j = 1; j <= ll[0]; j++) {
                if (ll[j] >= n || (l > 0 && node_level(h, ll[j]) < l))
                    return fn_seterr(eb, FN_ECORRUPT,
                                     "%s: corrupt ANN graph: node %u links to %u on level %u",
                                     path, i, ll[j], l);
            }
        }
    }
    return 0;
}

int ann_hnsw_open(const char *path, const float *vecs, size_t dim, unsigned flags,
                  ann_hnsw_t **out, fn_errbuf *eb)
{
    *out = NULL;
    if (!path) return fn_seterr(eb, FN_EINVAL, "ann open: no path");
    if (dim == 0 && vecs)
        return fn_seterr(eb, FN_EINVAL, "%s: vectors given without their dimension", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = -errno;
        return fn_seterr(eb, e, "%s: %s", path, strerror(-e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return fn_seterr(eb, e, "%s: %s", path, strerror(-e));
    }
    uint64_t size = (uint64_t)st.st_size;
    file_hdr hd;
    memset(&hd, 0, sizeof hd);
    ssize_t got = pread(fd, &hd, sizeof hd, 0);
    if (got < 8 || memcmp(hd.magic, FILE_MAGIC, 8) != 0) {
        close(fd);
        return fn_seterr(eb, FN_EFORMAT, "%s: not an ANN graph file (no magic %s)", path, FILE_MAGIC);
    }
    if (got < (ssize_t)HDR_BYTES) {
        close(fd);
        return fn_seterr(eb, FN_ECORRUPT, "%s: corrupt ANN graph: truncated header (%llu bytes)",
                         path, (unsigned long long)size);
    }
    if (hd.version != FILE_VERSION) {
        close(fd);
        return fn_seterr(eb, FN_EVERSION, "%s: ANN graph version %u (this build reads %u)", path,
                         hd.version, FILE_VERSION);
    }
    if (hd.size != size) {
        close(fd);
        return fn_seterr(eb, FN_ECORRUPT, "%s: corrupt ANN graph: %llu bytes, the header says %llu%s",
                         path, (unsigned long long)size, (unsigned long long)hd.size,
                         size < hd.size ? " (truncated)" : "");
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return fn_seterr(eb, -e, "%s: mmap: %s", path, strerror(e));
    int rc;
    ann_hnsw_t *h = calloc(1, sizeof *h);
    if (!h) {
        munmap(map, (size_t)size);
        return fn_seterr(eb, -ENOMEM, "ann open: out of memory");
    }
    h->map = map;
    h->map_len = (size_t)size;
    const uint8_t *base = map;

    if (!(flags & ANN_OPEN_NOVERIFY)) {
        XXH3_state_t *xs = XXH3_createState();
        if (!xs) {
            rc = fn_seterr(eb, -ENOMEM, "ann open: out of memory");
            goto fail;
        }
        XXH3_64bits_reset(xs);
        XXH3_64bits_update(xs, base, HDR_SUM_AT);
        XXH3_64bits_update(xs, base + HDR_BYTES, (size_t)(size - HDR_BYTES));
        uint64_t sum = XXH3_64bits_digest(xs);
        XXH3_freeState(xs);
        if (sum != hd.sum) {
            rc = fn_seterr(eb, FN_ECORRUPT,
                           "%s: corrupt ANN graph: checksum mismatch (stored %016llx, computed %016llx)",
                           path, (unsigned long long)hd.sum, (unsigned long long)sum);
            goto fail;
        }
    }
    /* the header's numbers */
    rc = FN_ECORRUPT;
    if (hd.metric > ANN_COSINE || hd.dim == 0 || hd.dim > ANN_MAX_DIM || hd.M < 2 ||
        hd.M > ANN_MAX_M || hd.M0 != 2 * hd.M || hd.n == 0 || hd.n > ANN_MAX_N ||
        hd.entry >= hd.n || hd.max_level > ANN_MAX_LEVEL || hd.nupper > UINT32_MAX ||
        (hd.flags & ~(FLAG_VECTORS | FLAG_INVN)) != 0 ||
        ((hd.flags & FLAG_INVN) != 0) != (hd.metric == ANN_COSINE)) {
        fn_seterr(eb, rc, "%s: corrupt ANN graph: bad header (metric %u, dim %u, M %u, n %llu)",
                  path, hd.metric, hd.dim, hd.M, (unsigned long long)hd.n);
        goto fail;
    }
    h->n = (size_t)hd.n;
    h->dim = hd.dim;
    h->metric = (ann_metric)hd.metric;
    h->M = hd.M;
    h->M0 = hd.M0;
    h->stride0 = 1 + (size_t)h->M0;
    h->strideu = 1 + (size_t)h->M;
    h->entry = hd.entry;
    h->max_level = hd.max_level;
    h->nupper = hd.nupper;
    /* sections: where our own layout puts them, and inside the file */
    uint64_t want[NSEC];
    uint64_t end = layout(h, (hd.flags & FLAG_VECTORS) != 0, want);
    if (memcmp(want, hd.off, sizeof want) != 0 || end != size) {
        fn_seterr(eb, rc, "%s: corrupt ANN graph: section offsets do not match the header", path);
        goto fail;
    }
    h->level0 = (uint32_t *)(void *)(base + hd.off[SEC_LEVEL0]);
    h->ustart = (uint32_t *)(void *)(base + hd.off[SEC_USTART]);
    h->upper = (uint32_t *)(void *)(base + hd.off[SEC_UPPER]);
    h->invn = hd.off[SEC_INVN] ? (float *)(void *)(base + hd.off[SEC_INVN]) : NULL;
    if ((rc = check_structure(h, path, eb)) != 0) goto fail;
    if (dim && dim != hd.dim) {
        rc = fn_seterr(eb, FN_EINVAL, "%s: the graph has dimension %u, the vectors %zu", path,
                       hd.dim, dim);
        goto fail;
    }
    if (vecs) {
        h->vecs = vecs;
    } else if (hd.off[SEC_VECTORS]) {
        h->vecs = (const float *)(const void *)(base + hd.off[SEC_VECTORS]);
    } else {
        rc = fn_seterr(eb, FN_EINVAL, "%s: the file holds no vectors and none were given", path);
        goto fail;
    }
    set_kernels(h);
    *out = h;
    return 0;
fail:
    ann_hnsw_close(h);
    return rc;
}
