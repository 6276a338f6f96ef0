/* ops_bench_hist.h - a latency histogram for `funnel bench` (HDR-style).
 *
 * Log-linear buckets over microseconds: values below 256 have a bucket each;
 * above, every power of two [2^(7+e), 2^(8+e)) is split into 128 buckets of
 * width 2^e, so a bucket is at most 1/128 (0.78%) of the values in it and a
 * percentile (the middle of its bucket) is within 0.4% of the true value.
 * Range 0 .. BENCH_HIST_MAX_US (60 s); larger values (and negative ones, at 0)
 * are clamped to the range and counted in `clamped`.
 *
 * One histogram per thread, merged at the end: recording takes no lock and
 * allocates nothing. A bench_hist is ~20 KiB (allocate it, or keep it static).
 */
#ifndef FUNNEL_OPS_BENCH_HIST_H
#define FUNNEL_OPS_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_SUB_BITS 7                          /* 128 sub-buckets per power of two */
#define BENCH_HIST_SUB (1u << BENCH_HIST_SUB_BITS)
#define BENCH_HIST_MAX_US 60000000LL                   /* 60 s */
/* 60e6 < 2^26: the top power of two is [2^25, 2^26), e = 18 -> 128 * 20 buckets */
#define BENCH_HIST_BUCKETS (BENCH_HIST_SUB * 20u)

typedef struct bench_hist {
    uint64_t count;      /* values recorded (clamped ones included) */
    uint64_t clamped;    /* values outside 0 .. BENCH_HIST_MAX_US */
    int64_t min, max;    /* exact, after clamping (0 when empty) */
    double sum;          /* for the mean (after clamping) */
    uint64_t counts[BENCH_HIST_BUCKETS];
} bench_hist;

/** Empty the histogram. */
void bench_hist_init(bench_hist *h);

/** Record one value in microseconds (clamped to 0 .. BENCH_HIST_MAX_US). */
void bench_hist_record(bench_hist *h, int64_t us);

/** Add src's values to dst (dst and src may not be the same). */
void bench_hist_merge(bench_hist *dst, const bench_hist *src);

/**
 * @brief The p-th percentile (0..100, nearest rank: the smallest value with
 * at least p% of the values at or below it), in microseconds: the middle of
 * its bucket, kept within [min, max]. p <= 0 gives min, p >= 100 max; 0 when
 * the histogram is empty.
 */
double bench_hist_percentile(const bench_hist *h, double p);

/** Mean in microseconds (0 when empty). */
double bench_hist_mean(const bench_hist *h);

/** The bucket of a value in 0 .. BENCH_HIST_MAX_US, and its lowest value and width (tests). */
uint32_t bench_hist_bucket(int64_t us);
void bench_hist_bucket_range(uint32_t b, int64_t *lo, int64_t *width);

#endif
