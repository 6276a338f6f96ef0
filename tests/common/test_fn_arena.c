/* test_fn_arena.c - the per-request arena (common/fn_arena.c). */
#include <criterion/criterion.h>
#include <unistd.h>
#include <stdint.h>
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
