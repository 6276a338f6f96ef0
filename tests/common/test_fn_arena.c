/* test_fn_arena.c - the per-request arena (common/fn_arena.c). */
#include <criterion/criterion.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fn_arena.h"

Test(fn_arena, allocations_are_aligned_distinct_and_usable)
{
    fn_arena a;
    fn_arena_init(&a);
    char *prev = NULL;
    for (size_t i = 0; i < 5000; i++) {
        size_t n = (i * 37) % 300;
        char *p = fn_arena_alloc(&a, n);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % 16, 0, "alignment");
        memset(p, (int)i, n);
        cr_assert_neq(p, prev);
        prev = p;
    }
    cr_assert_not(a.oom);
    cr_assert_gt(fn_arena_held(&a), 5000 * 100);
    fn_arena_free(&a);
    cr_assert_eq(fn_arena_held(&a), 0);
}

Test(fn_arena, big_allocations_get_their_own_chunk_and_all_go_back)
{
    fn_arena a = FN_ARENA_INIT;
    char *small = fn_arena_alloc(&a, 10);
    char *big = fn_arena_alloc(&a, 3u << 20);
    char *small2 = fn_arena_alloc(&a, 10);
    cr_assert(small && big && small2);
    memset(big, 1, 3u << 20);
    cr_assert_eq(small2, small + 16, "the current chunk stays in use after a big allocation");
    cr_assert_geq(fn_arena_held(&a), 3u << 20);
    fn_arena_reset(&a);
    cr_assert_leq(fn_arena_held(&a), 4096, "reset keeps at most the first small chunk");
    cr_assert_not_null(fn_arena_alloc(&a, 100));
    fn_arena_free(&a);
    cr_assert_eq(fn_arena_held(&a), 0);
}

Test(fn_arena, calloc_strdup_and_overflow)
{
    fn_arena a;
    fn_arena_init(&a);
    int *z = fn_arena_calloc(&a, 100, sizeof *z);
    for (int i = 0; i < 100; i++) cr_assert_eq(z[i], 0);
    cr_assert_str_eq(fn_arena_strdup(&a, "funnel"), "funnel");
    cr_assert_str_eq(fn_arena_strdup(&a, NULL), "");
    cr_assert_str_eq(fn_arena_strndup(&a, "abcdef", 3), "abc");
    cr_assert_null(fn_arena_calloc(&a, SIZE_MAX / 2, 4));
    cr_assert(a.oom);
    fn_arena_free(&a);
}

/* Chunks a finished arena gives back wait in the stash for the next arena
 * (no new mapping, no page faults); a chunk nobody takes leaves after 256
 * arena frees; chunks over 4 MiB are never kept. */
Test(fn_arena, the_stash_reuses_chunks_and_gives_them_back)
{
    fn_arena a = FN_ARENA_INIT;
    size_t base = fn_arena_stashed();
    char *p = fn_arena_alloc(&a, 300u << 10);   /* a chunk of its own */
    cr_assert_not_null(p);
    memset(p, 7, 300u << 10);
    fn_arena_free(&a);
    cr_assert_geq(fn_arena_stashed(), base + (300u << 10), "stashed");
    char *q = fn_arena_alloc(&a, 290u << 10);
    cr_assert_eq(q, p, "the next arena takes the stashed chunk");
    cr_assert_eq(fn_arena_stashed(), base);
    cr_assert_geq(fn_arena_held(&a), 290u << 10);
    fn_arena_free(&a);
    cr_assert_geq(fn_arena_stashed(), base + (300u << 10));
    /* too small a request for it (less than half): a chunk of its own */
    char *r = fn_arena_alloc(&a, 100u << 10);
    cr_assert_neq(r, p);
    fn_arena_free(&a);
    /* 300 more frees at once (busy small traffic): still kept for the
     * next large request within FN_MEM_IDLE_MS */
    for (int i = 0; i < 300; i++) {
        fn_arena e = FN_ARENA_INIT;
        fn_arena_alloc(&e, 100);
        fn_arena_free(&e);
    }
    cr_assert_geq(fn_arena_stashed(), base + (400u << 10), "kept within the idle time");
    /* nobody takes them: gone after 256 more frees once FN_MEM_IDLE_MS has passed */
    usleep((FN_MEM_IDLE_MS + 50) * 1000);
    for (int i = 0; i < 300; i++) {
        fn_arena e = FN_ARENA_INIT;
        fn_arena_alloc(&e, 100);
        fn_arena_free(&e);
    }
    cr_assert_eq(fn_arena_stashed(), 0, "aged out: %zu bytes left", fn_arena_stashed());
    /* a big request's chunk is freed at once */
    char *big = fn_arena_alloc(&a, 5u << 20);
    cr_assert_not_null(big);
    fn_arena_free(&a);
    cr_assert_eq(fn_arena_stashed(), 0);
}

/* A server left idle after large requests gives the stash back at once
 * (fn_mem_release_all, its timer FN_MEM_IDLE_MS after the last large request). */
Test(fn_arena, release_all_empties_the_stash)
{
    fn_arena a = FN_ARENA_INIT;
    for (int i = 0; i < 3; i++) {
        char *p = fn_arena_alloc(&a, (size_t)(200 + 300 * i) << 10);
        cr_assert_not_null(p);
        memset(p, 1, 200u << 10);
        fn_arena_free(&a);   /* one chunk each: kept */
    }
    cr_assert_geq(fn_arena_stashed(), 1200u << 10, "stashed %zu", fn_arena_stashed());
    fn_mem_release_all();
    cr_assert_eq(fn_arena_stashed(), 0, "%zu bytes left", fn_arena_stashed());
    /* and the stash works as before afterwards */
    char *q = fn_arena_alloc(&a, 300u << 10);
    cr_assert_not_null(q);
    fn_arena_free(&a);
    cr_assert_geq(fn_arena_stashed(), 300u << 10);
    fn_mem_release_all();
}

static long anon_kib(void)   /* resident - shared, as fn_mem_idle reads it */
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size, res, shared;
    int n = f ? fscanf(f, "%ld %ld %ld", &size, &res, &shared) : 0;
    if (f) fclose(f);
    return n == 3 ? (res - shared) * (sysconf(_SC_PAGESIZE) / 1024) : -1;
}

#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1   /* its own allocator: malloc_trim has nothing to give back */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN 1
#endif
#endif

/* The memory timer's sweep (fn_mem_idle(0, requests_since)) trims memory no large request
 * announced: 24 MiB of heap blocks freed behind a live one (as gRPC's read
 * buffers of a refused message are) go back once the server is quiet (at most
 * FN_MEM_QUIET_REQUESTS since the last sweep), and a sweep with nothing new to give does not walk the heap again; stashed chunks idle for
 * FN_MEM_IDLE_MS are freed, fresher ones kept. */
Test(fn_arena, the_sweep_gives_back_what_no_large_request_announced)
{
    fn_mem_server_tune();
    fn_mem_release_all();
    enum { N = 384, SZ = 64 << 10 };
    static char *blk[N];
    for (int i = 0; i < N; i++) {
        blk[i] = malloc(SZ);
        cr_assert_not_null(blk[i]);
        memset(blk[i], 7, SZ);
    }
    char *pin = malloc(SZ);   /* the heap's top stays in use: no trim on free */
    cr_assert_not_null(pin);
    memset(pin, 1, 64);
    for (int i = 0; i < N; i++) free(blk[i]);
    long before = anon_kib();
    cr_assert_eq(fn_mem_idle(0, 1000), 0, "1000 requests since the last sweep: no trim under load");
    cr_assert_eq(fn_mem_idle(0, 10), 1, "24 MiB freed in the heap, 10 requests since: the sweep trims");
    long after = anon_kib();
#ifndef ASAN
    cr_assert_lt(after, before - (16 << 10), "anonymous RSS %ld -> %ld KiB", before, after);
#else
    (void)before;
    (void)after;
#endif
    cr_assert_eq(fn_mem_idle(0, 0), 0, "nothing new: no second trim (%ld KiB)", anon_kib());
    free(pin);

    fn_arena a = FN_ARENA_INIT;
    char *p = fn_arena_alloc(&a, 300u << 10);
    cr_assert_not_null(p);
    fn_arena_free(&a);
    cr_assert_geq(fn_arena_stashed(), 300u << 10);
    fn_mem_idle(0, 0);
    cr_assert_geq(fn_arena_stashed(), 300u << 10, "a fresh chunk stays stashed");
    usleep((FN_MEM_IDLE_MS + 100) * 1000);
    fn_mem_idle(0, 0);
    cr_assert_eq(fn_arena_stashed(), 0, "idle for FN_MEM_IDLE_MS: %zu bytes left", fn_arena_stashed());
}
