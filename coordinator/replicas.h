/* replicas.h - which replica of a shard to call, when to ask a second one,
 * and how many retries the cluster can afford: bookkeeping only (no I/O,
 * loop thread), so that it can be tested alone.
 *
 * - Adaptive replica selection, after C3 (Suresh et al., NSDI '15) and
 *   Elasticsearch's ARS: a replica's score is its smoothed latency times a
 *   cubic penalty for the calls this coordinator has in flight there, so a
 *   slow or loaded replica loses traffic long before it times out.
 * - A latency window per replica gives the hedge delay: a call still out
 *   after the shard's best replica's recent p95 is sent to a second one too
 *   (Dean and Barroso, "The tail at scale"), the first answer wins.
 * - A retry budget (as Finagle's): retries and hedges together may add at
 *   most `ratio` of the first calls, plus a small floor per second, so that
 *   a struggling cluster is not buried under its own retries.
 */
#ifndef FUNNEL_COORD_REPLICAS_H
#define FUNNEL_COORD_REPLICAS_H

#include <stdint.h>

/* ---- per replica ---- */

typedef struct rep_stats {
    double ewma_us;             /* smoothed latency of answered calls (0: never measured) */
    uint32_t outstanding;       /* this coordinator's calls in flight there */
    uint64_t answered;
} rep_stats;

#define REP_EWMA_ALPHA 0.3      /* weight of the newest call: ~3 calls to follow a change */

void rep_observe(rep_stats *r, double us);
/* Lower is better. A replica never measured scores 0: it is tried first. */
double rep_score(const rep_stats *r);
/* A replica passed over drifts a little toward the chosen one's latency, so
 * one that was slow for a while is tried again later instead of never. */
void rep_passed_over(rep_stats *r, double chosen_ewma_us);

/* ---- recent latencies (one window per replica) ---- */

#define LAT_WINDOW 256          /* calls remembered */

typedef struct lat_window {
    uint32_t us[LAT_WINDOW];    /* ring of call latencies, microseconds */
    uint32_t n, pos, fresh;     /* filled, next slot, adds since the quantiles */
    uint32_t p50_us, p95_us, p99_us;   /* recomputed every 16 adds (0 until 16 calls) */
} lat_window;

void lat_add(lat_window *w, uint32_t us);
/* The q-quantile (0..1) of the window now, 0 when empty. */
uint32_t lat_quantile(const lat_window *w, double q);

/* ---- retry and hedge budget ---- */

typedef struct retry_budget {
    double ratio;               /* extra calls per first call (0.1 = 10%) */
    double per_s;               /* floor: tokens added per second whatever the traffic */
    double cap;                 /* tokens held at most */
    double tokens;
    uint64_t last_ms;
    uint64_t spent, denied;
} retry_budget;

void budget_init(retry_budget *b, double ratio, double per_s, double cap, uint64_t now_ms);
/* A first call was made: earns ratio of a token. */
void budget_earn(retry_budget *b, uint64_t now_ms);
/* 1 and a token spent, or 0 (denied, counted). */
int budget_take(retry_budget *b, uint64_t now_ms);

#endif
