/* hnsw_level0.h - a template, included by hnsw.c only, once per instance: the
 * best-first search of one level of the graph (Malkov & Yashunin, algorithm
 * 2; hnswlib's searchBaseLayerST). It is a template so that each kernel is
 * inlined into its own copy of the loop: the AVX2 instances are compiled with
 * target("avx2,fma") and call ann__l2_avx2 / ann__dot_avx2 directly; the
 * generic ones call the kernel through h->kern.
 *
 * Parameters (#defined before the #include, #undef'd at its end):
 *   L0_NAME             the function's name
 *   L0_ATTR             its attributes (the target of the AVX2 instances)
 *   L0_KERNEL(a, b, d)  the raw kernel: l2 for ANN_L2, dot for DOT and COSINE
 *   L0_BUILD            1: the build's search. Any level l; every link list
 *                       copied under its node's lock; no filter, no deadline;
 *                       returns the number of results, left in s->w ascending,
 *                       or -ENOMEM.
 *                       0: the query's search. Level 0 read in place (the graph
 *                       is read-only); filter and deadline; the results are
 *                       left in the max-heap s->res; returns 0, 1 (deadline)
 *                       or -ENOMEM.
 *
 * One expansion: pop the nearest candidate; stop when it is farther than the
 * worst of the ef results (and, with a filter, the results are full); else
 * mark its unvisited neighbours, prefetch their vectors, and score them one
 * by one while the lines after the first of the next one are prefetched. A
 * neighbour enters the candidates when the results are not full or it beats
 * their worst; it enters the results too when the filter allows it.
 */
#if L0_BUILD
L0_ATTR static long L0_NAME(build_ctx *b, ann_scratch_t *s, const float *q, uint32_t ep,
                            float epd, uint32_t level)
#else
L0_ATTR static int L0_NAME(const ann_hnsw_t *h, ann_scratch_t *s, const float *q, uint32_t ep,
                           float epd, size_t ef, const ann_filter *f, uint64_t deadline)
#endif
{
#if L0_BUILD
    const ann_hnsw_t *h = b->h;
    const size_t ef = b->efc;
    const ann_filter *f = NULL;
#endif
    uint16_t *tags = s->tags;
    const uint16_t e = new_epoch(s);
    heap *cq = &s->cand, *res = &s->res;
    uint32_t *buf = s->buf;
    const size_t dim = h->dim;
    cq->n = res->n = 0;
    tags[ep] = e;
    minh_push(cq, epd, ep);
    float lower = INFINITY;
    if (!f || allowed(f, ep)) {
        maxh_push(res, epd, ep);
        lower = epd;
    }
#if !L0_BUILD
    if (deadline && ann_now_ns() >= deadline) return 1;
    unsigned steps = 0;
#endif
    while (cq->n) {
        cand c = cq->a[0];
        if (c.d > lower && (res->n == ef || !f)) break;
        minh_pop(cq);
#if !L0_BUILD
        if (deadline && (++steps & 15) == 0 && ann_now_ns() >= deadline) return 1;
#endif
        if (heap_reserve(cq, cq->n + h->M0)) return -ENOMEM;
#if L0_BUILD
        const uint32_t cnt = copy_links(b, s, c.id, level);
        const uint32_t *ll = buf - 1;       /* ll[1..cnt], as a record */
#else
        const uint32_t *ll = h->level0 + (size_t)c.id * h->stride0;
        const uint32_t cnt = ll[0];
#endif
        uint32_t m = 0;
        for (uint32_t j = 1; j <= cnt; j++) {
            uint32_t nb = ll[j];
            if (tags[nb] == e) continue;
            tags[nb] = e;
            buf[m++] = nb;
            prefetch(vec_of(h, nb));
        }
        float *dist = s->dist;
        uint32_t j = 0;
#ifdef L0_KERNEL4
        for (; j + 4 <= m; j += 4) {
            for (uint32_t t = j + 4; t < j + 8 && t < m; t++) prefetch_rest(h, buf[t]);
            const float *x4[4] = { vec_of(h, buf[j]), vec_of(h, buf[j + 1]),
                                   vec_of(h, buf[j + 2]), vec_of(h, buf[j + 3]) };
            L0_KERNEL4(q, x4, dim, dist + j);
            for (uint32_t t = j; t < j + 4; t++) dist[t] = adjust(h, buf[t], dist[t]);
        }
#endif
        for (; j < m; j++) {
            if (j + 1 < m) prefetch_rest(h, buf[j + 1]);
            dist[j] = adjust(h, buf[j], L0_KERNEL(q, vec_of(h, buf[j]), dim));
        }
        for (uint32_t j = 0; j < m; j++) {
            const uint32_t nb = buf[j];
            const float d = dist[j];
            if (res->n < ef || d < lower) {
                minh_push(cq, d, nb);
#if !L0_BUILD
                prefetch(h->level0 + (size_t)cq->a[0].id * h->stride0);
#endif
                if (!f || allowed(f, nb)) {
                    maxh_push(res, d, nb);
                    if (res->n > ef) maxh_pop(res);
                }
                if (res->n) lower = res->a[0].d;
            }
        }
    }
#if L0_BUILD
    return (long)maxh_drain_sorted(res, s->w);
#else
    return 0;
#endif
}

#undef L0_NAME
#undef L0_ATTR
#undef L0_KERNEL
#undef L0_KERNEL4
#undef L0_BUILD
