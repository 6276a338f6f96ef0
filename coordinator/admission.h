/* admission.h - load shedding: an adaptive limit on the searches in flight.
 *
 * Past capacity, queueing (in the shards' pools, in the coordinator's loop)
 * makes every search slower until all of them miss their deadlines. Rather
 * than that, the coordinator admits at most `limit` searches at once and
 * refuses the rest at once, cheaply, with RESOURCE_EXHAUSTED and a retry
 * hint: the admitted ones keep their latency, so goodput stays at capacity.
 *
 * A search is admitted when the wait ahead of it - the searches in flight
 * over the completion rate (Little's law), plus a search's own time - fits
 * both the target latency and half of its own deadline; otherwise it is
 * refused. Past capacity the rate stops rising while arrivals keep coming,
 * so the queue, and every admitted search's wait, stays at the target: the
 * cluster keeps answering at capacity and deadlines are kept. A stall (a
 * replica killed, a busy machine) below capacity does not shed: the rate is
 * measured over 100 ms windows and the wait it implies stays short. A hard
 * ceiling (max-inflight) bounds memory whatever the estimates say.
 * Loop thread only; no I/O.
 */
#ifndef FUNNEL_COORD_ADMISSION_H
#define FUNNEL_COORD_ADMISSION_H

#include <stdint.h>

#define ADM_WINDOW_MS 100       /* the completion rate is measured over these */

typedef struct adm_t {
    double limit;               /* searches the target allows at today's rate (reported) */
    double min_limit, max_limit;
    double target_us;           /* the latency the queue is held to */
    uint32_t inflight;
    double rate;                /* completions a second (EWMA over windows) */
    double lat_us;              /* latency EWMA of recent searches */
    uint64_t win_start_ms, win_done;
    uint64_t admitted, shed;
} adm_t;

/* min_limit: the limit reported at low rates; max_limit: the hard ceiling
 * on searches in flight; target_ms: the wait allowed (0 = 500). */
void adm_init(adm_t *a, double min_limit, double max_limit, double target_ms, uint64_t now_ms);

/* 1: admitted (call adm_release when it ends). 0: shed; *retry_ms gets a
 * hint of when a slot is likely free. left_us: the search's time (0 =
 * unknown): one that cannot finish in it at today's queue is shed too. */
int adm_admit(adm_t *a, int64_t left_us, uint64_t now_ms, uint32_t *retry_ms);

/* An admitted search ended after latency_us. */
void adm_release(adm_t *a, double latency_us, uint64_t now_ms);

/* The wait a search admitted now should expect, microseconds. */
double adm_expected_us(const adm_t *a);

/* Under pressure (the expected wait is over half the target): windows should shrink. */
int adm_pressure(const adm_t *a);

#endif
