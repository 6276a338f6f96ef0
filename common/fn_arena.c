/* fn_arena.c - see fn_arena.h. */
#include "fn_arena.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#define ARENA_ALIGN 16
#define ARENA_FIRST (4u << 10)
#define ARENA_MAX_CHUNK (1u << 20)
#define MMAP_MIN (128u << 10)   /* glibc maps allocations this large (fn_mem_server_tune) */

struct fn_arena_chunk {
    fn_arena_chunk *next;    /* older chunk */
    size_t size, used;       /* bytes of data[] */
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

/* ---- the stash: chunks of finished arenas, for the next ones ----
 *
 * A server's requests are alike: the chunks one frees, the next allocates
 * again. A chunk of 128 KiB and more is mmap'd by glibc (fn_mem_server_tune),
 * so without the stash each request pays a page fault for every 4 KiB it
 * touches, and an munmap. The stash keeps chunks of STASH_MIN_CHUNK bytes
 * and more, at most STASH_BYTES in STASH_SLOTS, and gives back any chunk
 * no arena has taken within STASH_AGE arena frees and FN_MEM_IDLE_MS: a
 * burst of large requests leaves nothing behind once ordinary traffic goes
 * on, and nothing larger than STASH_BYTES in any case. Both, because under
 * busy small traffic (600 searches a second) 256 frees pass between two
 * large requests 0.4 s apart, and each large one then faulted all of its
 * memory in again. Thread-safe. */
#define STASH_MIN_CHUNK (64u << 10)
#define STASH_MAX_CHUNK (4u << 20)
#define STASH_BYTES (16u << 20)
#define STASH_SLOTS 32
#define STASH_AGE 256

static struct {
    pthread_mutex_t mu;
    fn_arena_chunk *c[STASH_SLOTS];
    uint64_t at[STASH_SLOTS];     /* clock when stashed */
    uint64_t at_ms[STASH_SLOTS];  /* and the time (CLOCK_MONOTONIC, ms) */
    size_t n, bytes;
    uint64_t clock;               /* arena frees so far */
} stash = { .mu = PTHREAD_MUTEX_INITIALIZER };

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A stashed chunk of at least `size` bytes (at most twice that), or NULL. */
static fn_arena_chunk *stash_take(size_t size)
{
    if (size < STASH_MIN_CHUNK || size > STASH_MAX_CHUNK) return NULL;
    fn_arena_chunk *got = NULL;
    pthread_mutex_lock(&stash.mu);
    size_t best = stash.n;
    for (size_t i = 0; i < stash.n; i++)
        if (stash.c[i]->size >= size && stash.c[i]->size / 2 <= size &&
            (best == stash.n || stash.c[i]->size < stash.c[best]->size))
            best = i;
    if (best < stash.n) {
        got = stash.c[best];
        stash.bytes -= got->size;
        stash.c[best] = stash.c[--stash.n];
        stash.at[best] = stash.at[stash.n];
        stash.at_ms[best] = stash.at_ms[stash.n];
    }
    pthread_mutex_unlock(&stash.mu);
    return got;
}

static void free_chunks(fn_arena_chunk *c)
{
    while (c) {
        fn_arena_chunk *n = c->next;
        free(c);
        c = n;
    }
}

/* Take slot i out of the stash onto *drop (the lock held). */
static void stash_evict(size_t i, fn_arena_chunk **drop)
{
    fn_arena_chunk *old = stash.c[i];
    stash.bytes -= old->size;
    stash.c[i] = stash.c[--stash.n];
    stash.at[i] = stash.at[stash.n];
    stash.at_ms[i] = stash.at_ms[stash.n];
    old->next = *drop;
    *drop = old;
}

/* Chunks of one arena: to the stash while it has room, else freed; then
 * the chunks nobody took in STASH_AGE frees are freed. */
static void stash_put(fn_arena_chunk *c)
{
    fn_arena_chunk *drop = NULL;
    pthread_mutex_lock(&stash.mu);
    uint64_t now = ++stash.clock, now_ms = 0;   /* the time: read only when a chunk needs it */
    while (c) {
        fn_arena_chunk *n = c->next;
        if (c->size >= STASH_MIN_CHUNK && c->size <= STASH_MAX_CHUNK && stash.n < STASH_SLOTS &&
            stash.bytes + c->size <= STASH_BYTES) {
            if (!now_ms) now_ms = mono_ms();
            stash.c[stash.n] = c;
            stash.at_ms[stash.n] = now_ms;
            stash.at[stash.n++] = now;
            stash.bytes += c->size;
        } else {
            c->next = drop;
            drop = c;
        }
        c = n;
    }
    for (size_t i = 0; i < stash.n;) {
        if (now - stash.at[i] <= STASH_AGE) { i++; continue; }
        if (!now_ms) now_ms = mono_ms();
        if (now_ms - stash.at_ms[i] <= FN_MEM_IDLE_MS) { i++; continue; }
        stash_evict(i, &drop);
    }
    pthread_mutex_unlock(&stash.mu);
    free_chunks(drop);
}

size_t fn_arena_stashed(void)
{
    pthread_mutex_lock(&stash.mu);
    size_t b = stash.bytes;
    pthread_mutex_unlock(&stash.mu);
    return b;
}

void fn_arena_init(fn_arena *a)
{
    a->head = NULL;
    a->held = 0;
    a->next = ARENA_FIRST;
    a->oom = 0;
}

void fn_mem_populate(void *p, size_t n)
{
#if defined(MADV_POPULATE_WRITE)
    if (n < MMAP_MIN) return;   /* the heap's: mostly mapped already */
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t b = ((uintptr_t)p + pg - 1) & ~(pg - 1), e = ((uintptr_t)p + n) & ~(pg - 1);
    if (e > b) (void)madvise((void *)b, e - b, MADV_POPULATE_WRITE);
#else
    (void)p; (void)n;
#endif
}

static fn_arena_chunk *chunk_new(fn_arena *a, size_t size)
{
    if (size > SIZE_MAX - sizeof(fn_arena_chunk)) return NULL;
    fn_arena_chunk *c = stash_take(size);
    if (!c) {
        if (!(c = malloc(sizeof *c + size))) return NULL;
        c->size = size;
        fn_mem_populate(c, sizeof *c + size);
    }
    c->used = 0;
    a->held += c->size;
    return c;
}

void *fn_arena_alloc(fn_arena *a, size_t n)
{
    if (n > SIZE_MAX - ARENA_ALIGN) { a->oom = 1; return NULL; }
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need == 0) need = ARENA_ALIGN;
    fn_arena_chunk *c = a->head;
    if (c && c->size - c->used >= need) {
        void *p = c->data + c->used;
        c->used += need;
        return p;
    }
    if (!a->next) a->next = ARENA_FIRST;
    if (need > a->next / 2) {
        /* A big allocation gets a chunk of its own, placed behind the
         * current one so that the current chunk's free space stays usable. */
        fn_arena_chunk *big = chunk_new(a, need);
        if (!big) { a->oom = 1; return NULL; }
        big->used = need;
        if (c) { big->next = c->next; c->next = big; }
        else { big->next = NULL; a->head = big; }
        return big->data;
    }
    fn_arena_chunk *nc = chunk_new(a, a->next);
    if (!nc) { a->oom = 1; return NULL; }
    if (a->next < ARENA_MAX_CHUNK) a->next *= 2;
    nc->next = c;
    a->head = nc;
    nc->used = need;
    return nc->data;
}

void *fn_arena_calloc(fn_arena *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size) { a->oom = 1; return NULL; }
    void *p = fn_arena_alloc(a, count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

char *fn_arena_strndup(fn_arena *a, const char *s, size_t n)
{
    char *p = fn_arena_alloc(a, n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *fn_arena_strdup(fn_arena *a, const char *s)
{
    return fn_arena_strndup(a, s ? s : "", s ? strlen(s) : 0);
}

size_t fn_arena_held(const fn_arena *a) { return a->held; }

void fn_arena_reset(fn_arena *a)
{
    fn_arena_chunk *c = a->head, *keep = NULL, *give = NULL;
    while (c) {
        fn_arena_chunk *n = c->next;
        /* the oldest ordinary chunk is the smallest: keep it for reuse */
        if (!n && c->size <= ARENA_FIRST) {
            keep = c;
        } else {
            c->next = give;
            give = c;
        }
        c = n;
    }
    stash_put(give);
    a->head = keep;
    a->held = keep ? keep->size : 0;
    if (keep) keep->used = 0;
    a->next = ARENA_FIRST * 2;
    a->oom = 0;
}

void fn_arena_free(fn_arena *a)
{
    stash_put(a->head);
    fn_arena_init(a);
}

void fn_mem_server_tune(void)
{
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, MMAP_MIN);
    mallopt(M_TRIM_THRESHOLD, MMAP_MIN);
#endif
}

/* Free heap memory back to the system: a walk over the heap, so only when
 * it is worth it (above). */
static void fn_mem_release(void)
{
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

/* Free the stashed chunks idle for over `idle_ms` (0: all of them). */
static void stash_drop_idle(uint64_t idle_ms)
{
    fn_arena_chunk *drop = NULL;
    uint64_t now_ms = mono_ms();
    pthread_mutex_lock(&stash.mu);
    for (size_t i = 0; i < stash.n;) {
        if (idle_ms && now_ms - stash.at_ms[i] <= idle_ms) { i++; continue; }
        stash_evict(i, &drop);
    }
    pthread_mutex_unlock(&stash.mu);
    free_chunks(drop);
}

/* The process's resident memory that is not a file's pages (statm's
 * resident - shared), in KiB; 0 when unknown. A shard's map of its index
 * grows the file part as searches touch it: that is not ours to give back. */
static uint64_t anon_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size, res, shared;
    int n = f ? fscanf(f, "%llu %llu %llu", &size, &res, &shared) : 0;
    if (f) fclose(f);
    if (n != 3 || res < shared) return 0;
    return (res - shared) * (uint64_t)(sysconf(_SC_PAGESIZE) / 1024);
}

/* (atomic: one server loop per process calls these, but nothing stops two;
 * the resident memory it tracks is the process's) */
static _Atomic uint64_t anon_after_trim;   /* anon_kib() after the last malloc_trim */

void fn_mem_release_all(void)
{
    stash_drop_idle(0);
    fn_mem_release();
    anon_after_trim = anon_kib();
}

int fn_mem_idle(int after_large, uint64_t requests_since)
{
    int quiet = requests_since <= FN_MEM_QUIET_REQUESTS;
    if (after_large) {
        fn_mem_release_all();
        return 1;
    }
    stash_drop_idle(FN_MEM_IDLE_MS);
    if (!quiet) return 0;
    uint64_t now = anon_kib();
    if (now && now < anon_after_trim) anon_after_trim = now;   /* freed on its own since */
    if (!now || now <= anon_after_trim + FN_MEM_SWEEP_KIB) return 0;
    fn_mem_release();
    anon_after_trim = anon_kib();
    return 1;
}
