/* fn_memtimer.c - a server's memory timer (fn_memtimer.h). */
#include "fn_memtimer.h"

#include "fn_arena.h"

static void on_tick(uv_timer_t *t)   /* every FN_MEM_IDLE_MS, or that long after a large request */
{
    fn_mem_timer *m = (fn_mem_timer *)t;   /* t is its first member */
    uint64_t n = *m->requests;
    fn_mem_idle(m->large, n - m->requests_seen);
    m->requests_seen = n;
    m->large = 0;
}

void fn_mem_timer_start(fn_mem_timer *m, uv_loop_t *loop, const uint64_t *requests, void *owner)
{
    uv_timer_init(loop, &m->t);   /* (cannot fail on Linux) */
    m->t.data = owner;
    m->requests = requests;
    m->requests_seen = *requests;
    m->large = 0;
    uv_timer_start(&m->t, on_tick, FN_MEM_IDLE_MS, FN_MEM_IDLE_MS);
}

void fn_mem_timer_large(fn_mem_timer *m)
{
    /* Not at once: malloc_trim walks the heap on the loop, and a run of
     * large requests would hand pages back only to fault them in again. */
    m->large = 1;
    uv_timer_again(&m->t);
}

void fn_mem_timer_close(fn_mem_timer *m, uv_close_cb cb)
{
    uv_close((uv_handle_t *)&m->t, cb);
}
