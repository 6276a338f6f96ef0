/* test_merge.c - coordinator/merge.c: the k-way merge must equal a full sort. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "merge.h"

/* Reference: concatenate, sort by (score desc, key asc, list asc), slice. */
typedef struct ref_ent { coord_merge_item it; uint32_t list, pos; } ref_ent;

static int ref_cmp(const void *a, const void *b)
{
    const ref_ent *x = a, *y = b;
    int c = coord_merge_cmp(&x->it, &y->it);
    if (c) return c;
    return (x->list > y->list) - (x->list < y->list);
}

static void check_against_sort(const coord_merge_list *lists, size_t nl, size_t skip, size_t take)
{
    size_t total = 0;
    for (size_t i = 0; i < nl; i++) total += lists[i].n;
    ref_ent *all = malloc((total + 1) * sizeof *all);
    size_t m = 0;
    for (size_t i = 0; i < nl; i++)
        for (size_t j = 0; j < lists[i].n; j++)
            all[m++] = (ref_ent){ lists[i].items[j], (uint32_t)i, (uint32_t)j };
    qsort(all, m, sizeof *all, ref_cmp);
    coord_merge_ref *out = malloc((take + 1) * sizeof *out);
    int err = 1;
    size_t got = coord_merge(lists, nl, skip, take, out, &err);
    cr_assert_eq(err, 0);
    size_t want = skip >= total ? 0 : (total - skip < take ? total - skip : take);
    cr_assert_eq(got, want, "skip %zu take %zu total %zu: got %zu want %zu", skip, take, total, got, want);
    for (size_t i = 0; i < got; i++) {
        cr_assert_eq(out[i].list, all[skip + i].list, "rank %zu list", skip + i);
        cr_assert_eq(out[i].pos, all[skip + i].pos, "rank %zu pos", skip + i);
    }
    free(out);
    free(all);
}

Test(merge, three_lists_exact_order)
{
    coord_merge_item a[] = { {9.0, 5}, {7.0, 1}, {3.0, 2} };
    coord_merge_item b[] = { {8.0, 3}, {7.0, 0}, {1.0, 9} };
    coord_merge_item c[] = { {10.0, 4} };
    coord_merge_list l[] = { {a, 3}, {b, 3}, {c, 1} };
    coord_merge_ref out[7];
    size_t got = coord_merge(l, 3, 0, 7, out, NULL);
    cr_assert_eq(got, 7);
    /* 10(c0) 9(a0) 8(b0) 7/key0(b1) 7/key1(a1) 3(a2) 1(b2) */
    const coord_merge_ref want[] = { {2, 0}, {0, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 2}, {1, 2} };
    for (size_t i = 0; i < 7; i++) {
        cr_assert_eq(out[i].list, want[i].list, "rank %zu", i);
        cr_assert_eq(out[i].pos, want[i].pos, "rank %zu", i);
    }
}

Test(merge, ties_broken_by_key_then_list)
{
    /* Equal scores everywhere: order must be by key ascending. */
    coord_merge_item a[] = { {1.0, 2}, {1.0, 8} };
    coord_merge_item b[] = { {1.0, 1}, {1.0, 5}, {1.0, 9} };
    coord_merge_item c[] = { {1.0, 2} };   /* same (score, key) as a[0]: list index decides */
    coord_merge_list l[] = { {a, 2}, {b, 3}, {c, 1} };
    coord_merge_ref out[6];
    cr_assert_eq(coord_merge(l, 3, 0, 6, out, NULL), 6);
    uint64_t keys[6];
    for (int i = 0; i < 6; i++) keys[i] = l[out[i].list].items[out[i].pos].key;
    const uint64_t want[] = { 1, 2, 2, 5, 8, 9 };
    for (int i = 0; i < 6; i++) cr_assert_eq(keys[i], want[i], "rank %d key %llu", i, (unsigned long long)keys[i]);
    cr_assert_eq(out[1].list, 0);
    cr_assert_eq(out[2].list, 2);
}

Test(merge, pages_and_short_lists)
{
    coord_merge_item a[] = { {5, 1}, {4, 2}, {3, 3}, {2, 4}, {1, 5} };
    coord_merge_item b[] = { {4.5, 6} };                /* a shard with fewer hits */
    coord_merge_list l[] = { {a, 5}, {b, 1}, {NULL, 0} }; /* and one with none */
    coord_merge_ref out[3];
    /* page 1 of size 2: ranks 2,3 = a1 (4), a2 (3) */
    cr_assert_eq(coord_merge(l, 3, 2, 2, out, NULL), 2);
    cr_assert_eq(out[0].list, 0); cr_assert_eq(out[0].pos, 1);
    cr_assert_eq(out[1].list, 0); cr_assert_eq(out[1].pos, 2);
    /* last page is short */
    cr_assert_eq(coord_merge(l, 3, 4, 3, out, NULL), 2);
    cr_assert_eq(out[0].list, 0); cr_assert_eq(out[0].pos, 3);
    cr_assert_eq(out[1].list, 0); cr_assert_eq(out[1].pos, 4);
    /* past the end */
    cr_assert_eq(coord_merge(l, 3, 6, 3, out, NULL), 0);
    cr_assert_eq(coord_merge(l, 3, 100, 3, out, NULL), 0);
}

Test(merge, empty_inputs)
{
    coord_merge_ref out[4];
    cr_assert_eq(coord_merge(NULL, 0, 0, 4, out, NULL), 0);
    coord_merge_list l[] = { {NULL, 0}, {NULL, 0} };
    cr_assert_eq(coord_merge(l, 2, 0, 4, out, NULL), 0);
    coord_merge_item a[] = { {1, 1} };
    coord_merge_list l2[] = { {a, 1} };
    cr_assert_eq(coord_merge(l2, 1, 0, 0, out, NULL), 0, "take 0 writes nothing");
}

Test(merge, nan_ranks_last)
{
    coord_merge_item x = { NAN, 0 }, y = { -1e300, 99 };
    cr_assert_eq(coord_merge_cmp(&x, &y), 1);
    cr_assert_eq(coord_merge_cmp(&y, &x), -1);
}

Test(merge, sort_and_is_sorted_with_perm)
{
    coord_merge_item it[] = { {1, 5}, {3, 2}, {3, 1}, {2, 0} };
    uint32_t perm[] = { 0, 1, 2, 3 };
    cr_assert_not(coord_merge_is_sorted(it, 4));
    cr_assert_eq(coord_merge_sort(it, perm, 4), 0);
    cr_assert(coord_merge_is_sorted(it, 4));
    const uint32_t want[] = { 2, 1, 3, 0 };
    for (int i = 0; i < 4; i++) cr_assert_eq(perm[i], want[i], "perm[%d]=%u", i, perm[i]);
}

/* Random lists (few distinct scores so ties are common), many windows,
 * more lists than the on-stack heap holds. */
Test(merge, randomized_equals_full_sort)
{
    srand(12345);
    for (int round = 0; round < 200; round++) {
        size_t nl = (size_t)(rand() % (round < 190 ? 9 : 100));
        coord_merge_list *l = calloc(nl + 1, sizeof *l);
        coord_merge_item **items = calloc(nl + 1, sizeof *items);
        for (size_t i = 0; i < nl; i++) {
            size_t n = (size_t)(rand() % 30);
            items[i] = malloc((n + 1) * sizeof **items);
            for (size_t j = 0; j < n; j++)
                items[i][j] = (coord_merge_item){ (double)(rand() % 8) / 2.0, (uint64_t)(rand() % 50) };
            cr_assert_eq(coord_merge_sort(items[i], NULL, n), 0);
            l[i] = (coord_merge_list){ items[i], n };
        }
        size_t skip = (size_t)(rand() % 40), take = (size_t)(1 + rand() % 40);
        check_against_sort(l, nl, skip, take);
        check_against_sort(l, nl, 0, 1000);
        for (size_t i = 0; i < nl; i++) free(items[i]);
        free(items);
        free(l);
    }
}
