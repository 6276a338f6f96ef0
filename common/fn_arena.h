/* fn_arena.h - per-request memory: a bump allocator whose memory is given
 * back all at once when the request is done.
 *
 * A request that builds thousands of small objects (protobuf hits, strings)
 * allocates them here instead of one malloc each, and fn_arena_free() (or
 * fn_arena_reset()) returns every chunk in one pass, so one large request
 * cannot leave the process bigger than it was (issue 6). Chunks grow
 * geometrically from 4 KiB to 1 MiB; an allocation larger than a chunk gets a
 * chunk of its own. Chunks of 128 KiB and more are mmap'd by glibc once
 * fn_mem_server_tune() has run, so freeing them unmaps them.
 *
 * Chunks of 64 KiB to 4 MiB that an arena gives back wait in a small,
 * process-wide stash (at most 16 MiB) for the next arena, so that steady
 * traffic does not map, fault in and unmap the same memory for every request;
 * a stashed chunk that no arena takes within 256 arena frees is freed, so a
 * burst of large requests leaves nothing behind once ordinary traffic goes on.
 *
 * Not thread-safe: one arena per request (or per worker); the stash is.
 * Memory is 16-byte aligned and NOT zeroed unless fn_arena_calloc is used.
 */
#ifndef FUNNEL_FN_ARENA_H
#define FUNNEL_FN_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct fn_arena_chunk fn_arena_chunk;

typedef struct fn_arena {
    fn_arena_chunk *head;   /* newest chunk first */
    size_t held;            /* bytes of all chunks */
    size_t next;            /* size of the next ordinary chunk */
    int oom;                /* an allocation failed (sticky until reset) */
} fn_arena;

#define FN_ARENA_INIT { NULL, 0, 0, 0 }

void fn_arena_init(fn_arena *a);
/* n bytes (n == 0 gives a valid unique pointer); NULL (and a->oom) when out of memory. */
void *fn_arena_alloc(fn_arena *a, size_t n);
/* count * size zeroed bytes; NULL on overflow or out of memory. */
void *fn_arena_calloc(fn_arena *a, size_t count, size_t size);
/* NUL-terminated copy of s[0..n); s may be NULL when n == 0. */
char *fn_arena_strndup(fn_arena *a, const char *s, size_t n);
char *fn_arena_strdup(fn_arena *a, const char *s);
/* Bytes the arena holds now (for accounting and tests). */
size_t fn_arena_held(const fn_arena *a);
/* Forget every allocation; keeps only the first, smallest chunk for reuse. */
void fn_arena_reset(fn_arena *a);
/* Give every chunk back; the arena is empty and reusable. */
void fn_arena_free(fn_arena *a);

/* Bytes of chunks waiting in the stash (for tests). */
size_t fn_arena_stashed(void);

/* Process-wide malloc policy for long-running servers, called once at start
 * (glibc; a no-op elsewhere): allocations of 128 KiB and more are mmap'd and
 * unmapped when freed (glibc otherwise raises that threshold after the first
 * large free, and big freed buffers then stay in the heap for good), and free
 * memory at the top of the heap is returned early. */
void fn_mem_server_tune(void);
/* Map the pages of [p, p + n) now, in one call, when the range is as large
 * as a fresh mmap (128 KiB): memory about to be written whole. Faulting them
 * in one at a time cost up to 15 us each on the dev VM (a paravirtualised
 * guest, whose traps are dear): a cold k=10000 explain search, 3,400 pages
 * on the coordinator and 1,000 on each shard, took 100-136 ms, 70-93 ms
 * with its arena chunks mapped this way. Best effort: before Linux 5.14
 * (MADV_POPULATE_WRITE) the pages fault in as they did. */
void fn_mem_populate(void *p, size_t n);
/* Free every chunk the stash keeps (below), then malloc_trim: for a
 * server that has had no large request for a while. The stash otherwise
 * gives a chunk back only after STASH_AGE arena frees, so a server left idle
 * after a burst of large requests would keep up to 16 MiB. */
void fn_mem_release_all(void);
/* How long a server waits after its last large request before it calls
 * fn_mem_release_all (a timer on its loop, restarted by each large one).
 * Requests a second or two apart are still a run (a crawler paging deep, a
 * features job): handing their pages back between them made each fault all
 * of its memory in again (3,400 page faults on the coordinator at k=10000
 * with explain: 100-120 ms instead of 55-65 on the dev VM, whose page faults
 * are dear). 500 ms was too short for the amplification test's own sequence
 * (large requests 0.6-1.8 s apart). The cost: up to the stash's 16 MiB and
 * the freed heap kept 2 s longer after a burst. */
#define FN_MEM_IDLE_MS 2000
/* A server's memory timer's tick (fn_memtimer.h): every FN_MEM_IDLE_MS, the
 * countdown restarted by each large request (after_large: there was one,
 * and FN_MEM_IDLE_MS have passed since: fn_mem_release_all). Otherwise a
 * sweep: the stashed chunks idle for FN_MEM_IDLE_MS are freed, and, when
 * the server was quiet since the last tick (requests_since, its requests
 * since then, at most FN_MEM_QUIET_REQUESTS), the heap is trimmed if the
 * process's anonymous resident memory has grown by FN_MEM_SWEEP_KIB since
 * the last trim. That catches what no large
 * request announced: gRPC's read buffers of refused over-limit messages (a
 * storm of them left 15-19 MiB in glibc's per-thread heaps). Not under
 * load: the heap's level then is what the load needs, and a trim every
 * 2 s at 300 searches a second only had the pages faulted in again.
 * Returns 1 when it trimmed. Loop thread only. */
int fn_mem_idle(int after_large, uint64_t requests_since);
#define FN_MEM_SWEEP_KIB (4u << 10)
#define FN_MEM_QUIET_REQUESTS 16   /* in a tick (2 s): 8 a second is quiet */

#endif
