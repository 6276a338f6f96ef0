/* admission.h - load shedding: refuse at once what would only queue.
 *
 * Past capacity, queueing (in the shards' pools, in the coordinator's loop)
 * makes every search slower until all of them miss their deadlines. Rather
 * than that, the coordinator refuses a search at once, cheaply, with
 * RESOURCE_EXHAUSTED and a retry hint when the wait ahead of it is too
 * long, so the admitted ones keep their latency and goodput stays at
 * capacity.
 *
 * The time a search should expect is what recent searches took (an EWMA;
 * with FIFO queues, the queue's depth in time when they entered: CoDel's
 * sojourn time), or the searches in flight over the completion rate if
 * that is more (Little's law: it sees a queue grow before its searches
 * finish). Only searches every shard answered count, and Little's term only
 * while nearly all do: a search that waited for a stalled or dead shard
 * until its deadline says nothing about queues, and a slow shard must
 * degrade answers (partial), never turn them into refusals. Its queueing part is that less the base latency: the
 * least a search took in the last quiet second (one in which nothing was
 * shed; frozen while shedding, or a standing queue would become the new
 * base). With at least min-inflight searches in flight (fewer is no
 * overload, whatever the latency: a closed-loop client of a slow cluster)
 * a search is refused when
 *   - the queueing part is over the target (target-latency-ms) and has
 *     been for the grace (shed-grace-ms), or has been over ADM_HARD_X times
 *     the target for a short grace (an eighth): a slow corpus or a slow
 *     machine (valgrind) is not an overload, a standing queue is. A burst
 *     (a second in which the VM or a publish slowed everything) queues and
 *     drains within the grace; shedding it would fail searches that were
 *     going to be answered well within their deadlines (CoDel: a good queue
 *     and a bad one). The short grace is for the client that catches up
 *     after the VM paused: its searches arrive at once, and in flight over
 *     the rate (Little) counts a queue of the whole pause, over 3 targets
 *     after 0.3 s, that the cluster drains at its capacity in a fraction of
 *     that (publish run 23 shed 42 searches so at 70% load: 24 at a window's
 *     start, 18 in a window with nothing happening);
 *   - or the expected time is over 90% of its own deadline;
 * and whatever the estimates, when max-inflight are in flight (memory).
 * A stall shorter than the target (a replica killed, a busy machine) does
 * not shed. The completion rate (over busy time only) x (target + base)
 * is reported as `limit` (metrics). Loop thread only; no I/O.
 */
#ifndef FUNNEL_COORD_ADMISSION_H
#define FUNNEL_COORD_ADMISSION_H

#include <stdint.h>

#define ADM_WINDOW_MS 100       /* the completion rate is measured over these */
#define ADM_BASE_MS   1000      /* the base latency: the least of such a window */
#define ADM_BG_MAX_INFLIGHT 4   /* background searches in flight at most */
#define ADM_HARD_X    3         /* a queue over this many targets is shed after ... */
#define ADM_HARD_GRACE_DIV 8    /* ... the grace / this (2 s: 250 ms) */

typedef struct adm_t {
    double limit;               /* searches in flight the target allows at today's rate (reported) */
    double min_limit, max_limit;
    double target_us;           /* the queueing allowed */
    uint32_t inflight;
    double rate;                /* completions a second (EWMA over windows) */
    double lat_us;              /* latency EWMA of recent searches every shard answered */
    double measured;            /* share of recent searches every shard answered (EWMA) */
    double base_us;             /* the base latency (0: none yet) */
    double win_min_us;          /* least latency in the current base window */
    uint64_t win_start_ms, win_done;
    uint64_t base_start_ms, base_shed;   /* the base window and its sheds (or queues over the target) */
    uint64_t admitted, shed;
    uint32_t bg_inflight;       /* background searches among inflight */
    uint64_t user_shed_ms;      /* when a user's search was last shed (0: never) */
    uint64_t bg_shed;           /* background searches refused (not in shed) */
    uint64_t grace_ms;          /* a queue over the target stands this long before it sheds */
    int over;                   /* the queueing part is over the target ... */
    uint64_t over_since_ms;     /* ... since then */
    int hard;                   /* over ADM_HARD_X targets ... */
    uint64_t hard_since_ms;     /* ... since then */
    uint64_t graced;            /* users' searches admitted over the target in the grace */
} adm_t;

/* min_limit: fewer in flight never sheds on latency (and the reported
 * limit's floor); max_limit: the hard ceiling on searches in flight;
 * target_ms: the queueing allowed (0 = 100). The grace starts at 0 (a queue
 * over the target sheds at once); set grace_ms after this. */
void adm_init(adm_t *a, double min_limit, double max_limit, double target_ms, uint64_t now_ms);

/* 1: admitted (call adm_release when it ends). 0: shed; *retry_ms gets a
 * hint of when a slot is likely free. left_us: the search's time (0 =
 * unknown). */
int adm_admit(adm_t *a, int64_t left_us, uint64_t now_ms, uint32_t *retry_ms);

/* An admitted search ended after latency_us; measured: every shard
 * answered it (only those inform the latency estimates). */
void adm_release(adm_t *a, double latency_us, int measured, uint64_t now_ms);

/* Background searches (SearchRequest.background: the quality gate's shadow
 * queries) are shed before users' ones. One is admitted only when a user's
 * search would be, no user's search was shed in the last ADM_BASE_MS, fewer
 * than ADM_BG_MAX_INFLIGHT background searches are in flight, and, with
 * anything else in flight, the queueing part is under a quarter of the
 * target: it runs in the capacity users leave, and stops while a queue
 * builds, long before users are shed. The retry hint is at least 100 ms.
 * Refusals count in bg_shed, not in shed, and do not freeze the base. The
 * same 1/0 contract as adm_admit; end one with adm_release_background. */
int adm_admit_background(adm_t *a, int64_t left_us, uint64_t now_ms, uint32_t *retry_ms);
void adm_release_background(adm_t *a, double latency_us, int measured, uint64_t now_ms);

/* The time a search admitted now should expect, and its queueing part (us). */
double adm_expected_us(const adm_t *a);
double adm_queue_us(const adm_t *a);

/* Under pressure (min-inflight in flight, the queueing part over half the
 * target): windows should shrink. */
int adm_pressure(const adm_t *a);

#endif
