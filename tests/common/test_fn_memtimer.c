/* test_fn_memtimer.c - a server's memory timer (common/fn_memtimer.c) on a
 * real libuv loop: a large request's memory goes back FN_MEM_IDLE_MS after
 * the last large request, and each large one starts the countdown over. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <uv.h>

#include "fn_arena.h"
#include "fn_memtimer.h"

typedef struct probe {
    uv_timer_t t;
    fn_mem_timer *m;
    size_t stashed[3];   /* fn_arena_stashed() at each probe */
    int n;
} probe;

static void on_probe(uv_timer_t *t)
{
    probe *p = (probe *)t;
    p->stashed[p->n++] = fn_arena_stashed();
    if (p->n == 1) {   /* another large request: the countdown starts over */
        fn_mem_timer_large(p->m);
        uv_timer_start(t, on_probe, FN_MEM_IDLE_MS - 200, 0);   /* 200 ms before it ends */
    } else if (p->n == 2) {
        uv_timer_start(t, on_probe, 500, 0);                    /* 300 ms after */
    } else {
        uv_close((uv_handle_t *)t, NULL);
        fn_mem_timer_close(p->m, NULL);
    }
}

Test(fn_memtimer, a_run_of_large_requests_is_released_after_its_last)
{
    fn_mem_server_tune();
    fn_mem_release_all();
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    uint64_t requests = 5;
    fn_mem_timer m;
    fn_mem_timer_start(&m, &loop, &requests, &requests);
    cr_assert_eq(m.t.data, &requests, "the owner is the handle's data");

    fn_arena a = FN_ARENA_INIT;   /* a large request's chunk, back in the stash */
    cr_assert_not_null(fn_arena_alloc(&a, 300u << 10));
    fn_arena_free(&a);
    cr_assert_geq(fn_arena_stashed(), 300u << 10);
    fn_mem_timer_large(&m);

    probe p = { .m = &m };
    uv_timer_init(&loop, &p.t);
    uv_timer_start(&p.t, on_probe, FN_MEM_IDLE_MS / 2, 0);
    uint64_t t0 = uv_now(&loop);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(p.n, 3);
    cr_assert_geq(p.stashed[0], 300u << 10, "half the countdown: still stashed");
    /* a regular tick would have dropped it by now (stashed for over FN_MEM_IDLE_MS):
     * the second large request moved the release, and the ticks, along */
    cr_assert_geq(p.stashed[1], 300u << 10, "200 ms before the restarted countdown ends: still stashed");
    cr_assert_eq(p.stashed[2], 0, "after the last large request's countdown: released (%zu bytes left)",
                 p.stashed[2]);
    cr_assert_geq(uv_now(&loop) - t0, (uint64_t)(FN_MEM_IDLE_MS / 2 + FN_MEM_IDLE_MS + 300));
    cr_assert_eq(m.requests_seen, 5);
    cr_assert_eq(uv_loop_close(&loop), 0);
}
