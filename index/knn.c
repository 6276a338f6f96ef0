/* knn.c - nearest neighbours of a query vector on one shard (knn.h). */
#include "knn.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attrs.h"
#include "integrity.h"
#include "search_int.h"

typedef struct knn_args {
    const idx_knn_query *q;
    idx_knn_hit *hits;
    size_t n;
    int deadline_hit;
} knn_args;

static int excluded(const idx_searcher_t *s, uint32_t doc)
{
    return s->knn_excl && s->knn_excl(s->knn_excl_ud, s->r->keys[doc]);
}

static int allowed(void *ud, uint32_t row)
{
    const idx_searcher_t *s = ud;
    uint32_t doc = s->r->vec_docs[row];
    if (excluded(s, doc)) return 0;
    return !s->knn_allow || (int)((s->knn_allow[doc / 64] >> (doc % 64)) & 1);
}

/* the filter's bitmap (attrs.h idx_filter_bits), by row */
static int allowed_filter(void *ud, uint32_t row)
{
    const idx_searcher_t *s = ud;
    uint32_t doc = s->r->vec_docs[row];
    const uint64_t *bits;
    size_t n;
    idx_filter_bits(s->flt, &bits, &n);   /* computed already: no work, no failure */
    return (int)((bits[doc / 64] >> (doc % 64)) & 1);
}

static int allowed_both(void *ud, uint32_t row)
{
    return allowed(ud, row) && allowed_filter(ud, row);
}

static int hit_cmp(const void *a, const void *b)
{
    const idx_knn_hit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->key > y->key) - (x->key < y->key);
}

static int run_knn(idx_searcher_t *s, void *ud)
{
    knn_args *a = ud;
    const idx_knn_query *q = a->q;
    const idx_reader_t *r = s->r;
    size_t n = r->info.vec_count;
    if (!n || !r->ann) return 0;
    if (!s->knn_scratch && ann_scratch_create(n, r->info.vec_dim, &s->knn_scratch))
        return fn_seterr(s->eb, -ENOMEM, "out of memory");
    /* a few more than k, so that ties at the k-th score are broken by key,
     * as the coordinator merges, not by row */
    size_t want = q->k + 8 < n ? q->k + 8 : n;
    if (idx_grow((void **)&s->knn_hits, &s->knn_cap, want, sizeof *s->knn_hits))
        return fn_seterr(s->eb, -ENOMEM, "out of memory");
    s->knn_allow = q->allow;
    s->knn_excl = q->exclude;
    s->knn_excl_ud = q->exclude_ud;
    ann_filter f = { NULL, q->allow || q->exclude ? allowed : NULL, s };
    size_t got = 0;
    unsigned flags = 0;
    int rc, exact = q->exact;
    if (q->filter) {
        size_t npass;
        if ((rc = idx_filter_compile(s, q->filter, &s->flt, s->eb))) return rc;
        if ((rc = idx_filter_bits(s->flt, &f.bits, &npass))) return fn_seterr(s->eb, rc, "out of memory");
        /* the graph's ids are rows: the filter's bits are documents */
        f.bits = NULL;
        f.allow = q->allow || q->exclude ? allowed_both : allowed_filter;
        if (npass == 0) return 0;
        if (npass <= n / 32) exact = 1;
    }
    if (exact) {
        rc = ann_hnsw_exact(r->ann, q->vec, want, f.allow ? &f : NULL, s->knn_hits, &got);
    } else {
        size_t ef = q->ef ? q->ef : (q->k > 64 ? q->k : 64);
        if (ef < want) ef = want;
        rc = ann_hnsw_search(r->ann, s->knn_scratch, q->vec, want, ef, f.allow ? &f : NULL, q->deadline_ns,
                             s->knn_hits, &got, &flags);
    }
    if (rc) return fn_seterr(s->eb, rc, "vector search: %s", fn_strerror(rc));
    int l2 = r->info.vec_metric == ANN_L2;
    /* the candidates by (score, key), in the searcher's second buffer */
    if (idx_grow((void **)&s->knn_sorted, &s->knn_sortcap, got ? got : 1, sizeof *s->knn_sorted))
        return fn_seterr(s->eb, -ENOMEM, "out of memory");
    idx_knn_hit *tmp = s->knn_sorted;
    for (size_t i = 0; i < got; i++) {
        uint32_t doc = r->vec_docs[s->knn_hits[i].id];
        float sc = s->knn_hits[i].score;
        tmp[i] = (idx_knn_hit){ doc, r->keys[doc], l2 ? -sc : sc };
    }
    qsort(tmp, got, sizeof *tmp, hit_cmp);
    a->n = got < q->k ? got : q->k;
    memcpy(a->hits, tmp, a->n * sizeof *tmp);
    a->deadline_hit = (flags & ANN_DEADLINE_HIT) != 0;
    return 0;
}

/* run_knn inside a second guard, over the graph's own mapping: a graph
 * file truncated after the shard opened it is damage, not SIGBUS (the
 * searcher's guard covers data.mdb, where the vectors are) */
static int run_knn_guarded(idx_searcher_t *s, void *ud)
{
    const void *map;
    size_t len;
    ann_hnsw_mapping(s->r->ann, &map, &len);
    if (!map) return run_knn(s, ud);
    idx_guard g;
    if (idx_guard_enter(&g, map, len) == 0) {
        if (sigsetjmp(g.jb, 0) != 0)
            return fn_seterr(s->eb, FN_ECORRUPT, "%s/%s: %s", s->r->dir, IDX_ANN_FILE, idx_guard_what(&g));
    }
    int rc = run_knn(s, ud);
    idx_guard_leave(&g);
    return rc;
}

int idx_knn(idx_searcher_t *s, const idx_knn_query *q, idx_knn_hit *hits, size_t *n, int *deadline_hit,
            fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    fn_errbuf local;
    s->eb = eb ? eb : &local;
    *n = 0;
    if (deadline_hit) *deadline_hit = 0;
    const idx_index_info *in = &s->r->info;
    if (!in->vec_dim) return fn_seterr(eb, FN_EINVAL, "vector: this index has no vectors");
    if (q->dim != in->vec_dim)
        return fn_seterr(eb, FN_EINVAL, "vector: %u numbers, the index's vectors have %u", q->dim, in->vec_dim);
    if (q->k < 1 || q->k > IDX_MAX_KNN_K) return fn_seterr(eb, FN_EINVAL, "knn_k: %zu is not 1..%d", q->k, IDX_MAX_KNN_K);
    if (q->ef > IDX_MAX_KNN_EF) return fn_seterr(eb, FN_EINVAL, "ef: %zu is over %d", q->ef, IDX_MAX_KNN_EF);
    int zero = 1;
    for (uint32_t i = 0; i < q->dim; i++) {
        if (!isfinite(q->vec[i])) return fn_seterr(eb, FN_EINVAL, "vector[%u]: not a finite number", i);
        zero &= q->vec[i] == 0.0f;
    }
    if (zero && in->vec_metric == ANN_COSINE)
        return fn_seterr(eb, FN_EINVAL, "vector: all zeros has no direction for cosine");
    knn_args a = { q, hits, 0, 0 };
    int rc = idx_searcher_run(s, run_knn_guarded, &a);
    s->knn_allow = NULL;
    s->knn_excl = NULL;
    s->knn_excl_ud = NULL;
    if (rc) return rc;
    *n = a.n;
    if (deadline_hit) *deadline_hit = a.deadline_hit;
    return 0;
}

