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
static uint64_t simulate(adm_t *a, double arrive_per_s, double serve_per_s, double secs, double deadline_us,
                         uint64_t *shed, double *max_wait_us, uint64_t t0)
{
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
            double w = (double)now * 1000 - q[head++ % QMAX] + 1000;
            if (w > *max_wait_us) *max_wait_us = w;
            adm_release(a, w, now);
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
    adm_init(&a, 64, 100000, 500, 0);
    uint64_t shed;
    double wait;
    /* 2x capacity for 30 s with a 1 s deadline */
    uint64_t got = simulate(&a, 2000, 1000, 30, 1e6, &shed, &wait, 0);
    cr_assert_gt(shed, 25000, "shed %llu", (unsigned long long)shed);
    cr_assert_geq((double)got, 0.95 * 30 * 1000, "admitted %llu", (unsigned long long)got);
    cr_assert_leq(wait, 1e6 * 0.55, "an admitted search waited %.0f us", wait);
    /* recovery: back below capacity, shedding stops within a second */
    simulate(&a, 500, 1000, 1, 1e6, &shed, &wait, 30000);
    uint64_t later;
    simulate(&a, 500, 1000, 5, 1e6, &later, &wait, 31000);
    cr_assert_eq(later, 0, "shed %llu after recovery: rate %.0f, in flight %u, wait %.0f us", (unsigned long long)later, a.rate, a.inflight, adm_expected_us(&a));
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
    adm_init(&a, 1, 3, 500, 0);
    uint32_t r;
    cr_assert(adm_admit(&a, 0, 0, &r));
    cr_assert(adm_admit(&a, 0, 0, &r));
    cr_assert(adm_admit(&a, 0, 0, &r));
    cr_assert_not(adm_admit(&a, 0, 0, &r));
    adm_release(&a, 1000, 1);
    cr_assert(adm_admit(&a, 0, 1, &r));
}
