/* test_admission.c - load shedding's admission rule (coordinator/admission.h). */
#include <criterion/criterion.h>

#include "admission.h"

/* The simulated server's FIFO: arrival times (us) of admitted searches,
 * kept across simulate() calls of one test. */
enum { QMAX = 1 << 16 };
static double q[QMAX];
static size_t head, tail;

/* Run `secs` of a steady load through a: every ms, `arrive` searches come
 * (fractions carried), and the server finishes `serve` a second in FIFO
 * order. Returns admitted and counts shed in *shed; *max_wait_us gets the
 * longest time an admitted search waited. */
static double service_us = 1000;   /* added to every search's queueing time */

static uint64_t simulate(adm_t *a, double arrive_per_s, double serve_per_s, double secs, double deadline_us,
                         uint64_t *shed, double *max_wait_us, uint64_t t0)
{
    if (t0 == 0) service_us = 1000;
    if (t0 == 0) head = tail = 0;   /* a new test */
    double acc = 0, served = 0;
    uint64_t adm = 0;
    *shed = 0;
    *max_wait_us = 0;
    for (uint64_t ms = 0; ms < (uint64_t)(secs * 1000); ms++) {
        uint64_t now = t0 + ms;
        acc += arrive_per_s / 1000.0;
        while (acc >= 1) {
            acc -= 1;
            uint32_t r;
            if (adm_admit(a, (int64_t)deadline_us, now, &r)) {
                q[tail++ % QMAX] = (double)now * 1000;
                adm++;
            } else {
                (*shed)++;
                cr_assert_geq(r, 1);
                cr_assert_leq(r, 1000);
            }
        }
        served += serve_per_s / 1000.0;
        while (served >= 1 && head < tail) {
            served -= 1;
            double w = (double)now * 1000 - q[head++ % QMAX] + service_us;
            if (w > *max_wait_us) *max_wait_us = w;
            adm_release(a, w, 1, now);
        }
        if (head == tail) served = 0;   /* an idle server banks no capacity */
    }
    return adm;
}

Test(admission, below_capacity_nothing_is_shed)
{
    adm_t a;
    adm_init(&a, 64, 512, 500, 0);
    uint64_t shed;
    double wait;
    simulate(&a, 700, 1000, 20, 1e6, &shed, &wait, 0);
    cr_assert_eq(shed, 0);
    cr_assert_lt(wait, 10000);
}

Test(admission, overload_keeps_goodput_and_deadlines)
{
    adm_t a;
    adm_init(&a, 64, 100000, 250, 0);
    uint64_t shed;
    double wait;
    simulate(&a, 500, 1000, 3, 1e6, &shed, &wait, 0);     /* a quiet start: the base latency */
    cr_assert_eq(shed, 0);
    cr_assert_float_eq(a.base_us, 1000, 1);
    /* 2x capacity for 30 s with a 1 s deadline */
    uint64_t got = simulate(&a, 2000, 1000, 30, 1e6, &shed, &wait, 3000);
    cr_assert_gt(shed, 25000, "shed %llu", (unsigned long long)shed);
    cr_assert_geq((double)got, 0.95 * 30 * 1000, "admitted %llu", (unsigned long long)got);
    cr_assert_leq(wait, 350000, "an admitted search waited %.0f us (target 250 ms)", wait);
    cr_assert_float_eq(a.base_us, 1000, 1, "the base moved while shedding: %.0f", a.base_us);
    /* a queue near the target: the windows shrink (adm_pressure) */
    cr_assert(adm_pressure(&a), "no pressure at the end of an overload: in flight %u, queue %.0f us",
              a.inflight, adm_queue_us(&a));
    /* recovery: back below capacity, shedding stops within a second */
    simulate(&a, 500, 1000, 1, 1e6, &shed, &wait, 33000);
    uint64_t later;
    simulate(&a, 500, 1000, 5, 1e6, &later, &wait, 34000);
    cr_assert_not(adm_pressure(&a));
    cr_assert_eq(later, 0, "shed %llu after recovery: rate %.0f, in flight %u, wait %.0f us", (unsigned long long)later, a.rate, a.inflight, adm_expected_us(&a));
}

Test(admission, cold_overload_keeps_deadlines)
{
    adm_t a;
    adm_init(&a, 64, 100000, 250, 0);
    uint64_t shed;
    double wait;
    /* no quiet second first: no base yet, only the deadline rule */
    uint64_t got = simulate(&a, 2000, 1000, 10, 1e6, &shed, &wait, 0);
    cr_assert_gt(shed, 5000);
    cr_assert_geq((double)got, 0.95 * 10 * 1000);
    cr_assert_leq(wait, 1e6, "an admitted search waited %.0f us past its 1 s deadline", wait);
}

Test(admission, slow_service_is_not_overload)
{
    adm_t a;
    adm_init(&a, 64, 100000, 250, 0);
    simulate(&a, 0, 1000, 0.001, 0, &(uint64_t){0}, &(double){0}, 0);
    service_us = 600000;                                  /* every search takes 0.6 s (valgrind) */
    uint64_t shed;
    double wait;
    simulate(&a, 50, 100, 10, 5e6, &shed, &wait, 1);
    cr_assert_eq(shed, 0, "a slow but idle cluster shed %llu (base %.0f us)", (unsigned long long)shed, a.base_us);
}

Test(admission, short_deadlines_are_refused_when_the_wait_is_longer)
{
    adm_t a;
    adm_init(&a, 64, 100000, 5000, 0);
    uint64_t shed;
    double wait;
    /* a queue of ~400 ms builds with a 5 s target */
    simulate(&a, 1500, 1000, 2, 0, &shed, &wait, 0);
    uint32_t r;
    cr_assert_eq(adm_admit(&a, 100000, 2000, &r), 0, "a 100 ms deadline cannot wait %.0f us", adm_expected_us(&a));
    cr_assert_eq(adm_admit(&a, 60000000, 2000, &r), 1);
}

Test(admission, hard_ceiling)
{
    adm_t a;
    adm_init(&a, 64, 3, 500, 0);   /* the ceiling wins over the reported floor */
    uint32_t r;
    cr_assert(adm_admit(&a, 0, 0, &r));
    cr_assert(adm_admit(&a, 0, 0, &r));
    cr_assert(adm_admit(&a, 0, 0, &r));
    cr_assert_not(adm_admit(&a, 0, 0, &r));
    adm_release(&a, 1000, 1, 1);
    cr_assert(adm_admit(&a, 0, 1, &r));
}

/* A stalled shard: every search waits for its deadline and comes back
 * partial. Slow, many in flight - but no queue: nothing may be shed. */
Test(admission, stalled_shard_is_not_overload)
{
    adm_t a;
    adm_init(&a, 64, 512, 250, 0);
    uint64_t shed;
    double wait;
    simulate(&a, 500, 1000, 2, 1e6, &shed, &wait, 0);     /* a quiet start */
    uint32_t r;
    uint64_t now = 2000;
    for (int i = 0; i < 300; i++) cr_assert(adm_admit(&a, 1000000, now, &r));   /* 300 in flight */
    for (int t = 0; t < 3000; t++) {                      /* 3 s: each ends partial after 900 ms */
        now++;
        adm_release(&a, 900000, 0, now);
        cr_assert(adm_admit(&a, 1000000, now, &r), "shed with a stalled shard at %d ms: in flight %u, "
                  "expected %.0f us", t, a.inflight, adm_expected_us(&a));
    }
}

/* Background searches (the quality gate's shadow queries) run in the
 * capacity users leave and stop while a queue builds, long before a user's
 * search is shed. */
Test(admission, background_is_shed_before_users)
{
    adm_t a;
    adm_init(&a, 64, 512, 100, 0);
    uint32_t r;
    uint64_t now = 0;
    /* 2 s of 2 ms searches, one at a time: the base is 2 ms, no queue */
    for (int i = 0; i < 2000; i++, now++) {
        cr_assert(adm_admit(&a, 0, now, &r));
        adm_release(&a, 2000, 1, now);
    }
    cr_assert_float_eq(a.base_us, 2000, 1);
    cr_assert(adm_admit_background(&a, 0, now, &r), "no queue: a background search runs");
    adm_release_background(&a, 2000, 1, now);
    cr_assert_eq(a.bg_inflight, 0);
    /* searches now take 40 ms with 10 in flight (under min-inflight 64): a
     * 38 ms queue, over a quarter of the 100 ms target */
    for (int i = 0; i < 10; i++) cr_assert(adm_admit(&a, 0, now, &r));
    for (int i = 0; i < 60; i++, now++) {
        adm_release(&a, 40000, 1, now);
        cr_assert(adm_admit(&a, 0, now, &r), "a user's search is admitted at a %.0f us queue", adm_queue_us(&a));
    }
    cr_assert_gt(adm_queue_us(&a), 25000);
    uint64_t shed = a.shed;
    cr_assert_not(adm_admit_background(&a, 0, now, &r), "background admitted at a %.0f us queue", adm_queue_us(&a));
    cr_assert_geq(r, 100, "a background retry hint of %u ms", r);
    cr_assert_eq(a.shed, shed, "a background refusal counts as a user's shed");
    cr_assert_eq(a.bg_shed, 1);
    /* the queue drains: background runs again, at most ADM_BG_MAX_INFLIGHT at once */
    for (int i = 0; i < 60; i++, now++) {
        adm_release(&a, 2000, 1, now);
        cr_assert(adm_admit(&a, 0, now, &r));
    }
    cr_assert_lt(adm_queue_us(&a), 25000);
    for (int i = 0; i < ADM_BG_MAX_INFLIGHT; i++) cr_assert(adm_admit_background(&a, 0, now, &r));
    cr_assert_not(adm_admit_background(&a, 0, now, &r), "more than %d background searches in flight",
                  ADM_BG_MAX_INFLIGHT);
    adm_release_background(&a, 2000, 1, now);
    cr_assert(adm_admit_background(&a, 0, now, &r));
}

/* When a user's search was shed, background waits a second, and the hard
 * ceiling holds for it too. */
Test(admission, background_waits_after_users_are_shed)
{
    adm_t a;
    adm_init(&a, 1, 2, 100, 0);
    uint32_t r;
    cr_assert(adm_admit(&a, 0, 10, &r));
    cr_assert(adm_admit(&a, 0, 10, &r));
    cr_assert_not(adm_admit_background(&a, 0, 10, &r), "over the ceiling");
    cr_assert_not(adm_admit(&a, 0, 10, &r));   /* a user's search shed at 10 ms */
    adm_release(&a, 1000, 1, 11);
    adm_release(&a, 1000, 1, 11);
    cr_assert_eq(a.inflight, 0);
    cr_assert_not(adm_admit_background(&a, 0, 500, &r), "background 490 ms after a user's search was shed");
    cr_assert(adm_admit(&a, 0, 500, &r), "users are not held back");
    adm_release(&a, 1000, 1, 501);
    cr_assert(adm_admit_background(&a, 0, 1011, &r), "background a second after");
}

/* A burst: the server slows to 650 a second for 0.6 s under 800 arriving,
 * a queue of about 140 ms builds and drains. With the grace nothing is
 * shed; shed at once (grace 0), the same burst refuses searches. */
static uint64_t burst(uint64_t grace_ms, double *wait, adm_t *a)
{
    adm_init(a, 64, 100000, 100, 0);
    a->grace_ms = grace_ms;
    uint64_t shed, total = 0;
    simulate(a, 800, 1000, 3, 2e6, &shed, wait, 0);       /* a quiet start: the base latency */
    cr_assert_eq(shed, 0);
    simulate(a, 800, 650, 0.6, 2e6, &shed, wait, 3000);
    total += shed;
    double w;
    simulate(a, 800, 1000, 5, 2e6, &shed, &w, 3600);
    total += shed;
    if (w > *wait) *wait = w;
    return total;
}

Test(admission, a_burst_drains_in_the_grace)
{
    adm_t a;
    double wait;
    uint64_t shed = burst(0, &wait, &a);
    cr_assert_gt(shed, 0, "the burst never went over the target (wait %.0f us): it tests nothing", wait);
    cr_assert_gt(wait, 100000, "the burst's longest wait %.0f us", wait);
    shed = burst(2000, &wait, &a);
    cr_assert_eq(shed, 0, "shed %llu in a burst of %.0f ms queues", (unsigned long long)shed, wait / 1000);
    cr_assert_gt(a.graced, 0);
    cr_assert_lt(wait, 300000);
    cr_assert_float_eq(a.base_us, 1000, 1, "the burst moved the base: %.0f", a.base_us);
    cr_assert_not(a.over, "still over the target 5 s after the burst");
}

/* A standing overload (1.3x capacity for 20 s) with the grace: shed once the
 * queue has stood 2 s or stood over 3 targets for 250 ms (the grace / 8);
 * goodput stays at capacity, no admitted search waits much past 3 targets
 * and what the queue grows in those 250 ms (0.3 x 250 ms), and the base
 * stays put. */
Test(admission, a_standing_queue_is_shed_after_the_grace)
{
    adm_t a;
    adm_init(&a, 64, 100000, 100, 0);
    a.grace_ms = 2000;
    uint64_t shed;
    double wait;
    simulate(&a, 800, 1000, 3, 2e6, &shed, &wait, 0);
    cr_assert_eq(shed, 0);
    uint64_t got = simulate(&a, 1300, 1000, 20, 2e6, &shed, &wait, 3000);
    cr_assert_gt(shed, 20 * 300 * 0.8, "shed %llu of 6000 over capacity", (unsigned long long)shed);
    cr_assert_geq((double)got, 0.95 * 20 * 1000, "admitted %llu", (unsigned long long)got);
    cr_assert_leq(wait, 3 * 100000 + 0.3 * 250000 + 50000, "an admitted search waited %.0f us (target 100 ms)", wait);
    cr_assert_float_eq(a.base_us, 1000, 1, "the base moved under a standing queue: %.0f", a.base_us);
}

/* The VM pauses for `pause_ms` (the server and the client both stop) under
 * 700 a second against a capacity of 1000; the client then sends what fell
 * due meanwhile at once and load goes on. Returns those shed. */
static uint64_t vm_pause(uint64_t grace_ms, double pause_ms, double *wait, adm_t *a)
{
    adm_init(a, 64, 100000, 100, 0);
    a->grace_ms = grace_ms;
    uint64_t shed, total = 0;
    simulate(a, 700, 1000, 3, 2e6, &shed, wait, 0);       /* a quiet start: the base latency */
    cr_assert_eq(shed, 0);
    uint64_t t = 3000 + (uint64_t)pause_ms;
    for (int i = 0; i < (int)(0.7 * pause_ms); i++) {     /* the catch-up: all at once */
        uint32_t r;
        if (adm_admit(a, 2000000, t, &r)) q[tail++ % QMAX] = (double)t * 1000;
        else total++;
    }
    double w;
    simulate(a, 700, 1000, 5, 2e6, &shed, &w, t);
    total += shed;
    *wait = w;
    return total;
}

/* A client catching up after a 400 ms pause of the VM: in flight over the
 * rate says 400 ms of queue, over 3 targets, yet the cluster drains it at
 * its capacity (the longest wait about 280 ms). Shed at once before the
 * short grace for a queue over 3 targets; admitted now. A longer pause
 * (1.5 s: a queue that needs seconds to drain) is still shed. */
Test(admission, a_paused_vm_catching_up_is_not_shed)
{
    adm_t a;
    double wait;
    uint64_t shed = vm_pause(0, 400, &wait, &a);
    cr_assert_gt(shed, 0, "shed at once (grace 0), the pause refused nothing: it tests nothing");
    shed = vm_pause(2000, 400, &wait, &a);
    cr_assert_eq(shed, 0, "shed %llu after a 400 ms pause (longest wait %.0f ms)", (unsigned long long)shed,
                 wait / 1000);
    cr_assert_gt(wait, 3 * 100000 * 0.8, "the catch-up's longest wait %.0f ms: near 3 targets", wait / 1000);
    shed = vm_pause(2000, 1500, &wait, &a);
    cr_assert_gt(shed, 0, "a 1.5 s pause: over 3 targets past the short grace");
    cr_assert_lt(wait, 1.5e6, "an admitted search waited %.0f ms", wait / 1000);
}
