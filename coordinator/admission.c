/* admission.c - load shedding's admission rule (admission.h). */
#include "admission.h"

#include <math.h>
#include <string.h>

void adm_init(adm_t *a, double min_limit, double max_limit, double target_ms, uint64_t now_ms)
{
    memset(a, 0, sizeof *a);
    a->max_limit = max_limit < 1 ? 1 : max_limit;
    a->min_limit = min_limit < 1 ? 1 : min_limit > a->max_limit ? a->max_limit : min_limit;
    a->target_us = target_ms > 0 ? target_ms * 1000 : 100000;
    a->limit = a->min_limit;
    a->win_start_ms = a->base_start_ms = now_ms;
    a->measured = 1;
}

double adm_expected_us(const adm_t *a)
{
    /* Little's law sees a queue grow before its searches finish - but with a
     * shard stalled, in flight / rate is that shard's deadline, not a queue:
     * only while nearly every search is answered by every shard */
    double q = a->rate > 0 && a->measured > 0.9 ? (double)a->inflight / a->rate * 1e6 : 0;
    return q > a->lat_us ? q : a->lat_us;
}

double adm_queue_us(const adm_t *a)
{
    double q = adm_expected_us(a) - a->base_us;
    return q > 0 ? q : 0;
}

/* The retry hint: a slot frees in about 1/rate; the queue drains in its
 * queueing time. At least floor_ms, at most 1 s. */
static uint32_t retry_hint(const adm_t *a, double floor_ms)
{
    double r = a->rate > 0 ? 1000.0 / a->rate * 2 : 10;
    double qms = adm_queue_us(a) / 1000;
    if (r < qms) r = qms;
    if (r < floor_ms) r = floor_ms;
    return r < 1 ? 1 : r > 1000 ? 1000 : (uint32_t)ceil(r);
}

/* Would a user's search be shed now? */
static int user_shed(adm_t *a, int64_t left_us, uint64_t now_ms)
{
    if (a->inflight == 0) {      /* idle until now: the rate window starts here */
        a->win_start_ms = now_ms;
        a->win_done = 0;
    }
    double exp_us = adm_expected_us(a), q = adm_queue_us(a);
    int busy = (double)a->inflight >= a->min_limit;
    int over = busy && a->base_us > 0 && q > a->target_us;
    if (over && !a->over) a->over_since_ms = now_ms;
    a->over = over;
    if (over) a->base_shed++;   /* a queue in its grace is no base either */
    int hard = over && q > ADM_HARD_X * a->target_us;
    if (hard && !a->hard) a->hard_since_ms = now_ms;
    a->hard = hard;
    int standing = over && (now_ms - a->over_since_ms >= a->grace_ms ||
                            (hard && now_ms - a->hard_since_ms >= a->grace_ms / ADM_HARD_GRACE_DIV));
    return (double)a->inflight + 1 > a->max_limit || standing ||
           (busy && left_us > 0 && exp_us > 0.9 * (double)left_us);
}

int adm_admit(adm_t *a, int64_t left_us, uint64_t now_ms, uint32_t *retry_ms)
{
    if (user_shed(a, left_us, now_ms)) {
        *retry_ms = retry_hint(a, 0);
        a->shed++;
        a->base_shed++;
        a->user_shed_ms = now_ms ? now_ms : 1;
        return 0;
    }
    if (a->over) a->graced++;
    a->inflight++;
    a->admitted++;
    return 1;
}

int adm_admit_background(adm_t *a, int64_t left_us, uint64_t now_ms, uint32_t *retry_ms)
{
    if (user_shed(a, left_us, now_ms) || a->bg_inflight >= ADM_BG_MAX_INFLIGHT ||
        (a->user_shed_ms && now_ms - a->user_shed_ms < ADM_BASE_MS) ||
        (a->inflight > 0 && a->base_us > 0 && adm_queue_us(a) > a->target_us / 4)) {
        *retry_ms = retry_hint(a, 100);
        a->bg_shed++;
        return 0;
    }
    a->inflight++;
    a->bg_inflight++;
    a->admitted++;
    return 1;
}

void adm_release_background(adm_t *a, double latency_us, int measured, uint64_t now_ms)
{
    if (a->bg_inflight) a->bg_inflight--;
    adm_release(a, latency_us, measured, now_ms);
}

void adm_release(adm_t *a, double latency_us, int measured, uint64_t now_ms)
{
    if (a->inflight) a->inflight--;
    if (latency_us < 1) latency_us = 1;
    a->win_done++;
    a->measured += 0.05 * ((measured ? 1.0 : 0.0) - a->measured);
    if (!measured) goto rate;
    a->lat_us = a->lat_us > 0 ? a->lat_us + 0.1 * (latency_us - a->lat_us) : latency_us;
    if (a->win_min_us == 0 || latency_us < a->win_min_us) a->win_min_us = latency_us;
    /* the base: the least latency of the last quiet second */
    if (now_ms - a->base_start_ms >= ADM_BASE_MS) {
        if (a->base_shed == 0)
            a->base_us = a->base_us > 0 ? 0.5 * a->base_us + 0.5 * a->win_min_us : a->win_min_us;
        a->base_start_ms = now_ms;
        a->base_shed = 0;
        a->win_min_us = 0;
    }
rate:;
    uint64_t el = now_ms - a->win_start_ms;
    if (el < ADM_WINDOW_MS) return;
    double r = (double)a->win_done * 1000.0 / (double)el;
    a->rate = a->rate > 0 ? 0.7 * a->rate + 0.3 * r : r;
    a->win_done = 0;
    a->win_start_ms = now_ms;
    /* Little: in flight = rate x time */
    double l = a->rate * (a->target_us + a->base_us) / 1e6;
    if (l < a->min_limit) l = a->min_limit;
    if (l > a->max_limit) l = a->max_limit;
    a->limit = l;
}

int adm_pressure(const adm_t *a)
{
    return (double)a->inflight >= a->min_limit && a->base_us > 0 && adm_queue_us(a) > a->target_us / 2;
}
