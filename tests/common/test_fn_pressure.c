/* test_fn_pressure.c - CPU pressure from a PSI file (common/fn_pressure.h),
 * on a file the test writes, and on the kernel's when it has one. */
#define _GNU_SOURCE   /* SCHED_IDLE */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "fn_pressure.h"
#include "testutil.h"

static char path[64];

static void setup(void)
{
    snprintf(path, sizeof path, "/tmp/fn-psi-%ld", (long)getpid());
}

static void teardown(void)
{
    unlink(path);
}

TestSuite(fn_pressure, .init = setup, .fini = teardown);

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

Test(fn_pressure, share_of_the_interval)
{
    tu_write_file(path, "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000\n"
              "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    fn_pressure p;
    cr_assert_eq(fn_pressure_open(&p, path, 10), 0);
    cr_assert_eq(fn_pressure_share(&p), -1, "the first look has no interval");
    sleep_ms(50);
    /* the file is read again at every look: 1 us more of stall in >= 50 ms */
    tu_write_file(path, "some avg10=0.00 avg60=0.00 avg300=0.00 total=1001\nfull total=0\n");
    double s = fn_pressure_share(&p);
    cr_assert(s >= 0 && s < 0.001, "share %f", s);
    cr_assert_not(fn_pressure_busy(&p), "no stall since the last look: not busy");
    /* 10 s of stall in a few ms: capped at the whole interval, busy */
    tu_write_file(path, "some avg10=50.00 avg60=0.00 avg300=0.00 total=10001001\nfull total=0\n");
    s = fn_pressure_share(&p);
    cr_assert_float_eq(s, 1.0, 1e-9, "share %f", s);
    tu_write_file(path, "some avg10=50.00 avg60=0.00 avg300=0.00 total=20001001\nfull total=0\n");
    cr_assert(fn_pressure_busy(&p));
    /* a total that went backwards (a counter reset) says nothing */
    tu_write_file(path, "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n");
    cr_assert_eq(fn_pressure_share(&p), -1);
    fn_pressure_close(&p);
    cr_assert_eq(p.fd, -1);
    cr_assert_not(fn_pressure_busy(&p), "a closed probe is never busy");
}

Test(fn_pressure, malformed_or_missing_is_never_busy)
{
    const char *bad[] = { "", "full avg10=0 total=5\n", "some avg10=0.00\n", "some total=\n",
                          "some avg10=0 total=12x\n", "some avg10=0 total=-3\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_write_file(path, "some avg10=0 total=1\n");
        fn_pressure p;
        cr_assert_eq(fn_pressure_open(&p, path, 0), 0);
        cr_assert_eq(fn_pressure_share(&p), -1);
        tu_write_file(path, bad[i]);
        cr_assert_eq(fn_pressure_share(&p), -1, "'%s' gave a share", bad[i]);
        cr_assert_not(fn_pressure_busy(&p), "'%s' is busy", bad[i]);
        fn_pressure_close(&p);
    }
    fn_pressure p;
    cr_assert_lt(fn_pressure_open(&p, "/nonexistent/pressure/cpu", 10), 0);
    cr_assert_not(fn_pressure_busy(&p));
}

/* The kernel's own file, when it has PSI: shares within [0, 1]. */
Test(fn_pressure, the_kernels_file)
{
    fn_pressure p;
    if (fn_pressure_open(&p, FN_PRESSURE_CPU, 10) != 0) cr_skip_test("no %s (no PSI)", FN_PRESSURE_CPU);
    fn_pressure_share(&p);
    for (int i = 0; i < 5; i++) {
        sleep_ms(10);
        double s = fn_pressure_share(&p);
        cr_assert(s >= 0 && s <= 1, "share %f", s);
    }
    fn_pressure_close(&p);
}

/* fn_thread_background: the calling thread, and only it, goes under
 * SCHED_IDLE (an unprivileged thread may always lower its own policy). */
static void *bg_main(void *arg)
{
    int *r = arg;
    r[0] = fn_thread_background();
    r[1] = sched_getscheduler(0);
    return NULL;
}

Test(fn_pressure, a_background_thread_is_idle_class_alone)
{
    int r[2] = { -100, -100 };
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, bg_main, r), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert_eq(r[0], 1, "fn_thread_background: %d", r[0]);
    cr_assert_eq(r[1], SCHED_IDLE, "the thread's policy: %d", r[1]);
    cr_assert_eq(sched_getscheduler(0), SCHED_OTHER, "the caller's thread is unchanged");
}
