/* test_replicas.c - replica scores, latency windows and the retry budget
 * (coordinator/replicas.h). */
#include <criterion/criterion.h>

#include "replicas.h"

Test(replicas, unmeasured_replica_is_tried_first)
{
    rep_stats a = {0}, b = {0};
    rep_observe(&a, 500);
    cr_assert_eq(rep_score(&b), 0);
    cr_assert_gt(rep_score(&a), rep_score(&b));
}

Test(replicas, slow_replica_loses_until_its_sibling_is_queued)
{
    rep_stats fast = {0}, slow = {0};
    for (int i = 0; i < 10; i++) {
        rep_observe(&fast, 1000);     /* 1 ms */
        rep_observe(&slow, 200000);   /* 200 ms */
    }
    cr_assert_float_eq(fast.ewma_us, 1000, 1e-6);
    cr_assert_float_eq(slow.ewma_us, 200000, 1e-6);
    cr_assert_lt(rep_score(&fast), rep_score(&slow));
    /* C3's cube: 5 calls queued at the fast one (6^3 = 216 > 200) tip it */
    fast.outstanding = 4;
    cr_assert_lt(rep_score(&fast), rep_score(&slow));
    fast.outstanding = 5;
    cr_assert_gt(rep_score(&fast), rep_score(&slow));
}

Test(replicas, ewma_follows_a_change_within_a_few_calls)
{
    rep_stats r = {0};
    for (int i = 0; i < 20; i++) rep_observe(&r, 1000);
    for (int i = 0; i < 10; i++) rep_observe(&r, 100000);
    cr_assert_gt(r.ewma_us, 97000);   /* 0.7^10 of the old value is left */
}

Test(replicas, passed_over_replica_drifts_back)
{
    rep_stats slow = {0};
    rep_observe(&slow, 200000);
    int n = 0;
    while (slow.ewma_us > 2 * 1000 && n < 10000) {
        rep_passed_over(&slow, 1000);
        n++;
    }
    /* tried again after a few hundred calls, not never and not at once */
    cr_assert_gt(n, 100);
    cr_assert_lt(n, 1000);
    rep_stats fast = {0};
    rep_observe(&fast, 1000);
    rep_passed_over(&fast, 5000);      /* never pushed up toward a slower one */
    cr_assert_float_eq(fast.ewma_us, 1000, 1e-9);
}

Test(replicas, latency_window_quantiles)
{
    lat_window w = {0};
    cr_assert_eq(lat_quantile(&w, 0.95), 0);
    for (uint32_t i = 1; i <= 100; i++) lat_add(&w, i * 10);
    cr_assert_eq(w.n, 100);
    cr_assert_eq(lat_quantile(&w, 0.5), 510);   /* upper neighbour of 505 */
    cr_assert_eq(lat_quantile(&w, 0.95), 960);
    cr_assert_eq(lat_quantile(&w, 1.0), 1000);
    cr_assert_eq(w.p95_us, 920);                /* recomputed at the 96th add (10..960), then kept */
    /* the ring forgets: 256 slow calls push the old ones out */
    for (int i = 0; i < LAT_WINDOW; i++) lat_add(&w, 50000);
    cr_assert_eq(w.n, LAT_WINDOW);
    cr_assert_eq(lat_quantile(&w, 0.05), 50000);
    cr_assert_eq(w.p50_us, 50000);
}

Test(replicas, budget_allows_its_ratio_and_no_more)
{
    retry_budget b;
    budget_init(&b, 0.1, 0, 5, 0);       /* no floor: only the ratio refills */
    int got = 0;
    for (int i = 0; i < 10; i++) got += budget_take(&b, 0);
    cr_assert_eq(got, 5);                /* the initial cap */
    cr_assert_eq(b.denied, 5);
    for (int i = 0; i < 100; i++) budget_earn(&b, 0);   /* 100 first calls: 10 tokens, capped at 5 */
    got = 0;
    for (int i = 0; i < 10; i++) got += budget_take(&b, 0);
    cr_assert_eq(got, 5);
    for (int i = 0; i < 30; i++) budget_earn(&b, 0);    /* 3 tokens */
    got = 0;
    for (int i = 0; i < 10; i++) got += budget_take(&b, 0);
    cr_assert_eq(got, 3);
}

Test(replicas, budget_floor_refills_with_time)
{
    retry_budget b;
    budget_init(&b, 0.0, 10, 100, 0);
    while (budget_take(&b, 0)) ;
    cr_assert_eq(budget_take(&b, 50), 0);      /* 0.5 token after 50 ms */
    cr_assert_eq(budget_take(&b, 1000), 1);    /* 10 a second */
    int got = 0;
    for (int i = 0; i < 20; i++) got += budget_take(&b, 1000);
    cr_assert_eq(got, 9);
}
