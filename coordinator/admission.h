/* admission.h - load shedding: refuse at once what would only queue.
 *
 * Past capacity, queueing (in the shards' pools, in the coordinator's loop)
 * makes every search slower until all of them miss their deadlines. Rather
 * than that, the coordinator refuses a search at once, cheaply, with
 * RESOURCE_EXHAUSTED and a retry hint when the wait ahead of it is too
 * long, so the admitted ones keep their latency and goodput stays at
 * capacity.
 *
 * The time a search should expect is the larger of what recent searches
 * took (FIFO: the queue's depth in time when they entered, CoDel's sojourn
 * time) and the searches in flight over the completion rate (Little's law:
 * it sees a queue grow before its searches finish). Its queueing part is
 * that less the base latency: the least a search took in the last quiet
 * second (a second in which nothing was shed; frozen while shedding, or a
 * standing queue would become the new base). A search is refused when
 *   - the queueing part is over the target (target-latency-ms), with at
 *     least 2 in flight: a slow corpus or a slow machine (valgrind) is not
 *     an overload, a queue is;
 *   - or the expected time is over 90% of its own deadline: it would miss
 *     it anyway;
 *   - or max-inflight are in flight: memory is bounded whatever the
 *     estimates say.
 * A stall shorter than the target (a replica killed, a busy machine) does
 * not shed. The completion rate is measured over busy time only, or an idle
 * minute would make the next burst look hopeless. Loop thread only; no I/O.
 */
#ifndef FUNNEL_COORD_ADMISSION_H
#define FUNNEL_COORD_ADMISSION_H

#include <stdint.h>

#define ADM_WINDOW_MS 100       /* the completion rate is measured over these */
#define ADM_BASE_MS   1000      /* the base latency: the least of such a window */

typedef struct adm_t {
    double limit;               /* searches in flight the target allows at today's rate (reported) */
    double min_limit, max_limit;
    double target_us;           /* the queueing allowed */
    uint32_t inflight;
    double rate;                /* completions a second (EWMA over windows) */
    double lat_us;              /* latency EWMA of recent searches */
    double base_us;             /* the base latency (0: none yet) */
    double win_min_us;          /* least latency in the current base window */
    uint64_t win_start_ms, win_done;
    uint64_t base_start_ms, base_shed;   /* the base window and its sheds */
    uint64_t admitted, shed;
} adm_t;

/* min_limit: the reported limit's floor; max_limit: the hard ceiling on
 * searches in flight; target_ms: the queueing allowed (0 = 250). */
void adm_init(adm_t *a, double min_limit, double max_limit, double target_ms, uint64_t now_ms);

/* 1: admitted (call adm_release when it ends). 0: shed; *retry_ms gets a
 * hint of when a slot is likely free. left_us: the search's time (0 =
 * unknown). */
int adm_admit(adm_t *a, int64_t left_us, uint64_t now_ms, uint32_t *retry_ms);

/* An admitted search ended after latency_us. */
void adm_release(adm_t *a, double latency_us, uint64_t now_ms);

/* The time a search admitted now should expect, and its queueing part (us). */
double adm_expected_us(const adm_t *a);
double adm_queue_us(const adm_t *a);

/* Under pressure (the queueing part is over half the target): windows should shrink. */
int adm_pressure(const adm_t *a);

#endif
