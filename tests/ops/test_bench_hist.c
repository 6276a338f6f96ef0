/* test_bench_hist.c - ops/ops_bench_hist.c: the latency histogram of
 * `funnel bench` against exact percentiles of random samples. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "ops_bench_hist.h"

static bench_hist *new_hist(void)
{
    bench_hist *h = malloc(sizeof *h);
    cr_assert_not_null(h);
    bench_hist_init(h);
    return h;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)   /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* exact nearest-rank percentile of sorted v[n] */
static int64_t exact_pct(const int64_t *v, size_t n, double p)
{
    if (p <= 0) return v[0];
    size_t r = (size_t)ceil(p / 100.0 * (double)n);
    if (r < 1) r = 1;
    if (r > n) r = n;
    return v[r - 1];
}

Test(bench_hist, empty)
{
    bench_hist *h = new_hist();
    cr_assert_eq(h->count, 0);
    cr_assert_eq(bench_hist_percentile(h, 50), 0.0);
    cr_assert_eq(bench_hist_percentile(h, 100), 0.0);
    cr_assert_eq(bench_hist_mean(h), 0.0);
    /* merging an empty one changes nothing */
    bench_hist *g = new_hist();
    bench_hist_record(g, 42);
    bench_hist_merge(g, h);
    cr_assert_eq(g->count, 1);
    cr_assert_eq(g->min, 42);
    cr_assert_eq(g->max, 42);
    free(g);
    free(h);
}

Test(bench_hist, one_value)
{
    int64_t vals[] = { 0, 1, 255, 256, 12345, 987654, BENCH_HIST_MAX_US };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        bench_hist *h = new_hist();
        bench_hist_record(h, vals[i]);
        for (double p = 0; p <= 100; p += 12.5)
            cr_assert_eq(bench_hist_percentile(h, p), (double)vals[i], "value %lld p %g: %g", (long long)vals[i],
                         p, bench_hist_percentile(h, p));
        cr_assert_eq(bench_hist_mean(h), (double)vals[i]);
        cr_assert_eq(h->clamped, 0);
        free(h);
    }
}

Test(bench_hist, clamps_and_counts)
{
    bench_hist *h = new_hist();
    bench_hist_record(h, -5);
    bench_hist_record(h, BENCH_HIST_MAX_US + 1);
    bench_hist_record(h, INT64_MAX);
    bench_hist_record(h, 1000);
    cr_assert_eq(h->count, 4);
    cr_assert_eq(h->clamped, 3);
    cr_assert_eq(h->min, 0);
    cr_assert_eq(h->max, BENCH_HIST_MAX_US);
    cr_assert_eq(bench_hist_percentile(h, 100), (double)BENCH_HIST_MAX_US);
    cr_assert_eq(bench_hist_percentile(h, 25), 0.0);
    cr_assert(fabs(bench_hist_percentile(h, 50) - 1000.0) <= 10.0);
    cr_assert(fabs(bench_hist_percentile(h, 75) - BENCH_HIST_MAX_US) <= 0.01 * BENCH_HIST_MAX_US);
    free(h);
}

Test(bench_hist, buckets_cover_the_range)
{
    /* every value maps into its bucket's [lo, lo + width), buckets are
     * monotone, and a bucket is at most 1/128 of its values */
    uint32_t prev = 0;
    for (int64_t v = 0; v <= BENCH_HIST_MAX_US; v += (v < 4096 ? 1 : v / 97)) {
        uint32_t b = bench_hist_bucket(v);
        cr_assert_lt(b, BENCH_HIST_BUCKETS);
        cr_assert_geq(b, prev);
        prev = b;
        int64_t lo, w;
        bench_hist_bucket_range(b, &lo, &w);
        cr_assert(v >= lo && v < lo + w, "v %lld bucket %u [%lld, +%lld)", (long long)v, b, (long long)lo,
                  (long long)w);
        cr_assert(w == 1 || (double)w / (double)lo <= 1.0 / 128 + 1e-12);
    }
    cr_assert_lt(bench_hist_bucket(BENCH_HIST_MAX_US), BENCH_HIST_BUCKETS);
}

/* percentiles of n samples against the exact ones, relative error <= 1% */
static void check_random(int64_t (*draw)(void), size_t n, int nthreads)
{
    int64_t *v = malloc(n * sizeof *v);
    cr_assert_not_null(v);
    bench_hist **part = calloc((size_t)nthreads, sizeof *part);
    for (int t = 0; t < nthreads; t++) part[t] = new_hist();
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = draw();
        sum += (double)v[i];
        bench_hist_record(part[i % (size_t)nthreads], v[i]);
    }
    bench_hist *h = new_hist();
    for (int t = 0; t < nthreads; t++) bench_hist_merge(h, part[t]);
    qsort(v, n, sizeof *v, cmp_i64);
    cr_assert_eq(h->count, n);
    cr_assert_eq(h->min, v[0]);
    cr_assert_eq(h->max, v[n - 1]);
    cr_assert(fabs(bench_hist_mean(h) - sum / (double)n) <= 1e-9 * fabs(sum / (double)n) + 1e-9);
    static const double ps[] = { 0, 0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100 };
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        double want = (double)exact_pct(v, n, ps[i]), got = bench_hist_percentile(h, ps[i]);
        cr_assert(fabs(got - want) <= 0.01 * want, "n %zu p %g: got %g want %g", n, ps[i], got, want);
    }
    for (int t = 0; t < nthreads; t++) free(part[t]);
    free(part);
    free(h);
    free(v);
}

static int64_t draw_uniform(void) { return (int64_t)(rng() % 5000000); }
/* log-uniform 1 us .. 60 s: every bucket group */
static int64_t draw_loguniform(void)
{
    double u = (double)(rng() >> 11) / 9007199254740992.0;
    return (int64_t)exp(u * log((double)BENCH_HIST_MAX_US));
}
/* a latency-like mixture: 1-3 ms body, a 100x tail */
static int64_t draw_latency(void)
{
    uint64_t r = rng();
    int64_t base = 1000 + (int64_t)(r % 2000);
    return (r >> 40) % 100 == 0 ? base * 100 : base;
}

Test(bench_hist, random_uniform) { check_random(draw_uniform, 100000, 1); }
Test(bench_hist, random_loguniform) { check_random(draw_loguniform, 200000, 8); }
Test(bench_hist, random_latency_merged) { check_random(draw_latency, 50000, 4); }
Test(bench_hist, random_small_samples)
{
    for (size_t n = 1; n <= 50; n++) check_random(draw_loguniform, n, 3);
}
