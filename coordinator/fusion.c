/* fusion.c - a text ranking and a vector list into one list (fusion.h). */
#include "fusion.h"

#include <errno.h>
#include <stdlib.h>

#include "validate.h"   /* COORD_RRF_K */

static int by_key(const void *a, const void *b)
{
    const coord_fused *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}

static int by_score(const void *a, const void *b)
{
    const coord_fused *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->key > y->key) - (x->key < y->key);
}

/* min-max over a list: (s - lo) / (hi - lo), 1 when all are equal */
static void span(const coord_fuse_in *l, size_t n, double *lo, double *hi)
{
    *lo = *hi = n ? l[0].score : 0.0;
    for (size_t i = 1; i < n; i++) {
        if (l[i].score < *lo) *lo = l[i].score;
        if (l[i].score > *hi) *hi = l[i].score;
    }
}

static double norm(double s, double lo, double hi) { return hi > lo ? (s - lo) / (hi - lo) : 1.0; }

int coord_fuse(const coord_fuse_in *text, size_t nt, const coord_fuse_in *vec, size_t nv, int method,
               double w, coord_fused **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if ((method != COORD_FUSE_RRF && method != COORD_FUSE_WEIGHTED) || !(w >= 0 && w <= 1)) return -EINVAL;
    coord_fused *f = malloc((nt + nv ? nt + nv : 1) * sizeof *f);
    if (!f) return -ENOMEM;
    for (size_t i = 0; i < nt; i++) f[i] = (coord_fused){ text[i].key, 0, (int32_t)i, -1 };
    for (size_t i = 0; i < nv; i++) f[nt + i] = (coord_fused){ vec[i].key, 0, -1, (int32_t)i };
    /* one entry per document: both lists' entries of a key side by side */
    qsort(f, nt + nv, sizeof *f, by_key);
    size_t m = 0;
    for (size_t i = 0; i < nt + nv; i++) {
        if (m && f[m - 1].key == f[i].key) {
            if (f[i].t >= 0) f[m - 1].t = f[i].t;
            if (f[i].v >= 0) f[m - 1].v = f[i].v;
            continue;
        }
        f[m++] = f[i];
    }
    double tlo, thi, vlo, vhi;
    span(text, nt, &tlo, &thi);
    span(vec, nv, &vlo, &vhi);
    for (size_t i = 0; i < m; i++) {
        if (method == COORD_FUSE_RRF) {
            /* summed in a fixed order (text, then vector): the same bits for
             * the same ranks */
            double s = 0.0;
            if (f[i].t >= 0) s += 1.0 / (COORD_RRF_K + (double)f[i].t + 1.0);
            if (f[i].v >= 0) s += 1.0 / (COORD_RRF_K + (double)f[i].v + 1.0);
            f[i].score = s;
        } else {
            double t = f[i].t >= 0 ? norm(text[f[i].t].score, tlo, thi) : 0.0;
            double v = f[i].v >= 0 ? norm(vec[f[i].v].score, vlo, vhi) : 0.0;
            f[i].score = w * v + (1.0 - w) * t;
        }
    }
    qsort(f, m, sizeof *f, by_score);
    *out = f;
    *n = m;
    return 0;
}
