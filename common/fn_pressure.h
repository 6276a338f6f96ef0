/* fn_pressure.h - is the machine's CPU contended right now? (Linux PSI)
 *
 * /proc/pressure/cpu's first line, "some avg10=.. avg60=.. avg300=..
 * total=US", counts the microseconds in which some runnable task waited
 * for a CPU. Two looks apart give the share of that interval spent so: a
 * signal of contention that sees every process on the machine, fresh at
 * every look (the avgN figures are 10 s and longer averages). The shard's
 * loader yields to the searches with it (idx_pace.busy).
 *
 * One thread per probe. Without the file (an old kernel, psi=0) a probe
 * cannot open and is never busy.
 */
#ifndef FUNNEL_FN_PRESSURE_H
#define FUNNEL_FN_PRESSURE_H

#include <stdint.h>

#define FN_PRESSURE_CPU "/proc/pressure/cpu"

typedef struct fn_pressure {
    int fd;             /* -1: closed, never busy */
    double threshold;   /* busy above this share of the interval (0..1) */
    uint64_t last_us;   /* the last look's total */
    uint64_t last_ns;   /* its monotonic time; 0: no look yet */
} fn_pressure;

/* Open path (FN_PRESSURE_CPU, or a test's file) with a threshold in percent.
 * 0, or -errno (the probe is then closed and never busy). */
int fn_pressure_open(fn_pressure *p, const char *path, unsigned threshold_pct);
void fn_pressure_close(fn_pressure *p);

/* Read the total again: the share (0..1) of the time since the last look in
 * which some task waited for a CPU, or -1 when it cannot tell (the first
 * look, an unreadable or malformed file, a total that went backwards). */
double fn_pressure_share(fn_pressure *p);

/* An idx_pace.busy callback (ud: an fn_pressure): the share is over the
 * threshold. */
int fn_pressure_busy(void *ud);

/* Put the calling thread below every other thread on the machine, for
 * work that is never urgent (a generation's load and warm-up, its close):
 * SCHED_IDLE, which a normal thread waking preempts at once - under nice 19
 * it preempts only once its lead in virtual runtime exceeds the scheduler's
 * wakeup granularity, milliseconds of a search's time on a busy 2-core
 * machine - else nice 19. 1 under SCHED_IDLE, 0 under nice 19, or -errno
 * when neither took. Linux: the thread's own policy and nice value. */
int fn_thread_background(void);

#endif
