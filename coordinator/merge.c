/* merge.c - k-way merge with a binary min-heap of list heads (O(W log N) for a
 * window of W over N lists). */
#include "merge.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int coord_merge_cmp(const coord_merge_item *a, const coord_merge_item *b)
{
    int an = isnan(a->score), bn = isnan(b->score);
    if (an != bn) return an ? 1 : -1;
    if (!an) {
        if (a->score > b->score) return -1;
        if (a->score < b->score) return 1;
    }
    if (a->key < b->key) return -1;
    if (a->key > b->key) return 1;
    return 0;
}

int coord_merge_is_sorted(const coord_merge_item *items, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (coord_merge_cmp(&items[i - 1], &items[i]) > 0) return 0;
    return 1;
}

typedef struct sort_ent { coord_merge_item it; uint32_t perm; } sort_ent;

static int sort_ent_cmp(const void *a, const void *b)
{
    const sort_ent *x = a, *y = b;
    int c = coord_merge_cmp(&x->it, &y->it);
    if (c) return c;
    return (x->perm > y->perm) - (x->perm < y->perm);   /* stable */
}

int coord_merge_sort(coord_merge_item *items, uint32_t *perm, size_t n)
{
    if (n < 2) return 0;
    sort_ent *e = malloc(n * sizeof *e);
    if (!e) return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        e[i].it = items[i];
        e[i].perm = perm ? perm[i] : (uint32_t)i;
    }
    qsort(e, n, sizeof *e, sort_ent_cmp);
    for (size_t i = 0; i < n; i++) {
        items[i] = e[i].it;
        if (perm) perm[i] = e[i].perm;
    }
    free(e);
    return 0;
}

typedef struct head { const coord_merge_item *it; uint32_t list, pos; } head;

static int head_before(const head *a, const head *b)
{
    int c = coord_merge_cmp(a->it, b->it);
    if (c) return c < 0;
    return a->list < b->list;
}

static void sift_down(head *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && head_before(&h[l], &h[m])) m = l;
        if (r < n && head_before(&h[r], &h[m])) m = r;
        if (m == i) return;
        head t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

size_t coord_merge(const coord_merge_list *lists, size_t nlists, size_t skip, size_t take,
                   coord_merge_ref *out, int *err)
{
    head stackh[64];
    head *h = stackh;
    size_t n = 0, written = 0;
    if (err) *err = 0;
    if (take == 0) return 0;
    if (nlists > 64) {
        h = malloc(nlists * sizeof *h);
        if (!h) { if (err) *err = -ENOMEM; return 0; }
    }
    for (size_t i = 0; i < nlists; i++)
        if (lists[i].n > 0)
            h[n++] = (head){ &lists[i].items[0], (uint32_t)i, 0 };
    for (size_t i = n / 2; i-- > 0;) sift_down(h, n, i);

    for (size_t rank = 0; n > 0 && written < take; rank++) {
        head top = h[0];
        if (rank >= skip) out[written++] = (coord_merge_ref){ top.list, top.pos };
        if (top.pos + 1 < lists[top.list].n) {
            h[0].pos = top.pos + 1;
            h[0].it = &lists[top.list].items[top.pos + 1];
        } else {
            h[0] = h[--n];
        }
        sift_down(h, n, 0);
    }
    if (h != stackh) free(h);
    return written;
}
