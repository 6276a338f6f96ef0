/* admission.c - the adaptive concurrency limit (admission.h). */
#include "admission.h"

#include <math.h>
#include <string.h>

void adm_init(adm_t *a, double min_limit, double max_limit, double target_ms, uint64_t now_ms)
{
    memset(a, 0, sizeof *a);
    a->min_limit = min_limit < 1 ? 1 : min_limit;
    a->max_limit = max_limit < a->min_limit ? a->min_limit : max_limit;
    a->target_us = target_ms > 0 ? target_ms * 1000 : 500000;
    a->limit = a->min_limit;
    a->win_start_ms = now_ms;
}

/* The expected wait of a search admitted now: the queue ahead of it at
 * today's rate, plus its own time. */
double adm_expected_us(const adm_t *a)
{
    double q = a->rate > 0 ? (double)a->inflight / a->rate * 1e6 : 0;
    return q + a->lat_us;
}

int adm_admit(adm_t *a, int64_t left_us, uint64_t now_ms, uint32_t *retry_ms)
{
    (void)now_ms;
    /* the wait allowed: the target, and at most half of the search's own time */
    double allow = a->target_us;
    if (left_us > 0 && (double)left_us / 2 < allow) allow = (double)left_us / 2;
    if ((double)a->inflight + 1 > a->max_limit || (a->rate > 0 && adm_expected_us(a) > allow)) {
        /* a slot frees in about 1/rate; say at least 1 ms, at most 1 s */
        double r = a->rate > 0 ? 1000.0 / a->rate * 2 : 10;
        if (r < a->lat_us / 1000) r = a->lat_us / 1000;
        *retry_ms = r < 1 ? 1 : r > 1000 ? 1000 : (uint32_t)ceil(r);
        a->shed++;
        return 0;
    }
    a->inflight++;
    a->admitted++;
    return 1;
}

void adm_release(adm_t *a, double latency_us, uint64_t now_ms)
{
    if (a->inflight) a->inflight--;
    a->lat_us = a->lat_us > 0 ? a->lat_us + 0.1 * (latency_us - a->lat_us) : latency_us;
    a->win_done++;
    uint64_t el = now_ms - a->win_start_ms;
    if (el < ADM_WINDOW_MS) return;
    double r = (double)a->win_done * 1000.0 / (double)el;
    a->rate = a->rate > 0 ? 0.7 * a->rate + 0.3 * r : r;
    a->win_done = 0;
    a->win_start_ms = now_ms;
    /* Little: in flight = rate x time; the queue is allowed the target. */
    double l = a->rate * a->target_us / 1e6;
    if (l < a->min_limit) l = a->min_limit;
    if (l > a->max_limit) l = a->max_limit;
    a->limit = l;   /* what the target allows at today's rate (reported) */
}

int adm_pressure(const adm_t *a)
{
    return a->rate > 0 && a->inflight >= 2 && adm_expected_us(a) > a->target_us / 2;
}
