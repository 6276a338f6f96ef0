/* test_fusion.c - coordinator/fusion.c: RRF and weighted fusion by hand. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fusion.h"
#include "validate.h"

static const coord_fused *find(const coord_fused *f, size_t n, uint64_t key)
{
    for (size_t i = 0; i < n; i++)
        if (f[i].key == key) return &f[i];
    return NULL;
}

Test(fusion, rrf_by_hand)
{
    /* text: 10, 20, 30; vector: 30, 40 */
    coord_fuse_in t[] = { { 10, 9.0 }, { 20, 5.0 }, { 30, 1.0 } };
    coord_fuse_in v[] = { { 30, 0.9 }, { 40, 0.8 } };
    coord_fused *f;
    size_t n;
    cr_assert_eq(coord_fuse(t, 3, v, 2, COORD_FUSE_RRF, 0.5, &f, &n), 0);
    cr_assert_eq(n, 4);
    double k = COORD_RRF_K;
    const coord_fused *d30 = find(f, n, 30);
    cr_assert_not_null(d30);
    cr_assert_eq(d30->score, 1.0 / (k + 3) + 1.0 / (k + 1), "30: %.17g", d30->score);
    cr_assert_eq(d30->t, 2);
    cr_assert_eq(d30->v, 0);
    cr_assert_eq(find(f, n, 10)->score, 1.0 / (k + 1));
    cr_assert_eq(find(f, n, 40)->score, 1.0 / (k + 2));
    cr_assert_eq(find(f, n, 40)->t, -1);
    /* in both lists beats first in one */
    cr_assert_eq(f[0].key, 30);
    cr_assert_eq(f[1].key, 10);
    /* 20 (text rank 2) and 40 (vector rank 2) tie: the lower key first */
    cr_assert_eq(f[2].key, 20);
    cr_assert_eq(f[3].key, 40);
    free(f);
}

Test(fusion, weighted_by_hand)
{
    coord_fuse_in t[] = { { 1, 10.0 }, { 2, 6.0 }, { 3, 2.0 } };
    coord_fuse_in v[] = { { 3, 0.5 }, { 4, 0.3 }, { 1, 0.1 } };
    coord_fused *f;
    size_t n;
    cr_assert_eq(coord_fuse(t, 3, v, 3, COORD_FUSE_WEIGHTED, 0.25, &f, &n), 0);
    cr_assert_eq(n, 4);
    /* t norm: (s - 2) / 8; v norm: (s - 0.1) / 0.4 */
    cr_assert_float_eq(find(f, n, 1)->score, 0.25 * 0.0 + 0.75 * 1.0, 1e-12);
    cr_assert_float_eq(find(f, n, 2)->score, 0.75 * 0.5, 1e-12);
    cr_assert_float_eq(find(f, n, 3)->score, 0.25 * 1.0 + 0.75 * 0.0, 1e-12);
    cr_assert_float_eq(find(f, n, 4)->score, 0.25 * 0.5, 1e-12);
    cr_assert_eq(f[0].key, 1);
    cr_assert_eq(f[1].key, 2);
    free(f);
}

Test(fusion, one_list_and_equal_scores)
{
    coord_fuse_in v[] = { { 7, 0.3 }, { 5, 0.3 } };
    coord_fused *f;
    size_t n;
    /* all equal: each normalises to 1 */
    cr_assert_eq(coord_fuse(NULL, 0, v, 2, COORD_FUSE_WEIGHTED, 1.0, &f, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(f[0].score, 1.0);
    cr_assert_eq(f[0].key, 5);   /* tie: lower key */
    free(f);
    cr_assert_eq(coord_fuse(NULL, 0, NULL, 0, COORD_FUSE_RRF, 0.5, &f, &n), 0);
    cr_assert_eq(n, 0);
    free(f);
}

Test(fusion, refuses_bad_arguments)
{
    coord_fused *f;
    size_t n;
    coord_fuse_in t[] = { { 1, 1.0 } };
    cr_assert_eq(coord_fuse(t, 1, t, 1, 7, 0.5, &f, &n), -EINVAL);
    cr_assert_eq(coord_fuse(t, 1, t, 1, COORD_FUSE_WEIGHTED, 1.5, &f, &n), -EINVAL);
    cr_assert_eq(coord_fuse(t, 1, t, 1, COORD_FUSE_WEIGHTED, NAN, &f, &n), -EINVAL);
    cr_assert_null(f);
}

/* The fused list is a function of the two global lists only: a random
 * instance fused twice from shuffled copies of the same entries (as shards
 * in another order would produce after the exact merge) is bit-identical. */
Test(fusion, independent_of_input_order_in_the_key_join)
{
    enum { N = 300 };
    coord_fuse_in t[N], v[N];
    srand(3);
    for (int i = 0; i < N; i++) {
        t[i] = (coord_fuse_in){ (uint64_t)rand() % 500, 100.0 - i };
        v[i] = (coord_fuse_in){ (uint64_t)rand() % 500 + 250, 1.0 - i / 1000.0 };
    }
    /* keys distinct within a list */
    for (int i = 0; i < N; i++) { t[i].key = (uint64_t)i * 7 % 1000; v[i].key = (uint64_t)i * 11 % 1000 + 3; }
    for (int m = COORD_FUSE_RRF; m <= COORD_FUSE_WEIGHTED; m++) {
        coord_fused *a, *b;
        size_t na, nb;
        cr_assert_eq(coord_fuse(t, N, v, N, m, 0.4, &a, &na), 0);
        cr_assert_eq(coord_fuse(t, N, v, N, m, 0.4, &b, &nb), 0);
        cr_assert_eq(na, nb);
        for (size_t i = 0; i < na; i++) {
            cr_assert_eq(a[i].key, b[i].key);
            cr_assert(memcmp(&a[i].score, &b[i].score, sizeof a[i].score) == 0);
            if (i) cr_assert(a[i - 1].score > a[i].score || (a[i - 1].score == a[i].score && a[i - 1].key < a[i].key));
        }
        free(a);
        free(b);
    }
}
