/* fn_memtimer.h - a server's memory timer: fn_mem_idle (fn_arena.h) on its
 * loop every FN_MEM_IDLE_MS, its countdown started over by each large
 * request, so that the memory of a run of large requests goes back to the
 * system FN_MEM_IDLE_MS after the last of them, not between them: the arena
 * stash (its chunks otherwise wait for 256 later requests, and an idle
 * server would keep them), then malloc_trim, which also returns the reply
 * buffers gRPC freed when their writes completed.
 *
 * The coordinator and the shard embed one each. Loop thread only.
 */
#ifndef FUNNEL_FN_MEMTIMER_H
#define FUNNEL_FN_MEMTIMER_H

#include <stdint.h>
#include <uv.h>

typedef struct fn_mem_timer {
    uv_timer_t t;               /* t.data: the owner's (its close chain reads it) */
    const uint64_t *requests;   /* the server's request count; read on each tick */
    uint64_t requests_seen;     /* *requests at the last tick */
    int large;                  /* a large request since the last tick */
} fn_mem_timer;

/* Start ticking on loop. requests: the owner's counter (borrowed; it must
 * outlive the timer). owner goes to m->t.data. */
void fn_mem_timer_start(fn_mem_timer *m, uv_loop_t *loop, const uint64_t *requests, void *owner);
/* A large request just gave its memory back to the arena stash and the
 * heap: release it all FN_MEM_IDLE_MS from now, unless another comes. */
void fn_mem_timer_large(fn_mem_timer *m);
/* Close the timer; cb gets the handle (its data: the owner). */
void fn_mem_timer_close(fn_mem_timer *m, uv_close_cb cb);

#endif
