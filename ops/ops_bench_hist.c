/* ops_bench_hist.c - log-linear latency histogram (ops_bench_hist.h). */
#include "ops_bench_hist.h"

#include <math.h>
#include <string.h>

_Static_assert(BENCH_HIST_MAX_US < (1LL << (BENCH_HIST_SUB_BITS + 19)), "top bucket group");

/* floor(log2(v)) for v > 0 */
static int ilog2(uint64_t v)
{
    return 63 - __builtin_clzll(v);
}

uint32_t bench_hist_bucket(int64_t us)
{
    if (us < (int64_t)(2 * BENCH_HIST_SUB)) return (uint32_t)(us < 0 ? 0 : us);
    int e = ilog2((uint64_t)us) - BENCH_HIST_SUB_BITS;   /* >= 1 */
    uint32_t sub = (uint32_t)((uint64_t)us >> e) - BENCH_HIST_SUB;
    return BENCH_HIST_SUB * (uint32_t)(e + 1) + sub;
}

void bench_hist_bucket_range(uint32_t b, int64_t *lo, int64_t *width)
{
    if (b < 2 * BENCH_HIST_SUB) {
        *lo = b;
        *width = 1;
        return;
    }
    uint32_t e = b / BENCH_HIST_SUB - 1, sub = b % BENCH_HIST_SUB;
    *lo = (int64_t)(BENCH_HIST_SUB + sub) << e;
    *width = (int64_t)1 << e;
}

void bench_hist_init(bench_hist *h)
{
    memset(h, 0, sizeof *h);
}

void bench_hist_record(bench_hist *h, int64_t us)
{
    if (us < 0 || us > BENCH_HIST_MAX_US) {
        us = us < 0 ? 0 : BENCH_HIST_MAX_US;
        h->clamped++;
    }
    if (h->count == 0 || us < h->min) h->min = us;
    if (h->count == 0 || us > h->max) h->max = us;
    h->count++;
    h->sum += (double)us;
    h->counts[bench_hist_bucket(us)]++;
}

void bench_hist_merge(bench_hist *dst, const bench_hist *src)
{
    if (src->count == 0) return;
    if (dst->count == 0 || src->min < dst->min) dst->min = src->min;
    if (dst->count == 0 || src->max > dst->max) dst->max = src->max;
    dst->count += src->count;
    dst->clamped += src->clamped;
    dst->sum += src->sum;
    for (uint32_t b = 0; b < BENCH_HIST_BUCKETS; b++) dst->counts[b] += src->counts[b];
}

double bench_hist_percentile(const bench_hist *h, double p)
{
    if (h->count == 0) return 0.0;
    if (!(p > 0)) return (double)h->min;   /* NaN too */
    if (p >= 100) return (double)h->max;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (rank < 1) rank = 1;
    if (rank > h->count) rank = h->count;
    uint64_t seen = 0;
    for (uint32_t b = 0; b < BENCH_HIST_BUCKETS; b++) {
        seen += h->counts[b];
        if (seen >= rank) {
            int64_t lo, w;
            bench_hist_bucket_range(b, &lo, &w);
            double v = (double)lo + (double)(w - 1) / 2.0;
            if (v < (double)h->min) v = (double)h->min;
            if (v > (double)h->max) v = (double)h->max;
            return v;
        }
    }
    return (double)h->max;
}

double bench_hist_mean(const bench_hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
