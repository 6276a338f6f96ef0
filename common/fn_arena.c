/* fn_arena.c - see fn_arena.h. */
#include "fn_arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#define ARENA_ALIGN 16
#define ARENA_FIRST (4u << 10)
#define ARENA_MAX_CHUNK (1u << 20)

struct fn_arena_chunk {
    fn_arena_chunk *next;    /* older chunk */
    size_t size, used;       /* bytes of data[] */
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

void fn_arena_init(fn_arena *a)
{
    a->head = NULL;
    a->held = 0;
    a->next = ARENA_FIRST;
    a->oom = 0;
}

static fn_arena_chunk *chunk_new(fn_arena *a, size_t size)
{
    if (size > SIZE_MAX - sizeof(fn_arena_chunk)) return NULL;
    fn_arena_chunk *c = malloc(sizeof *c + size);
    if (!c) return NULL;
    c->size = size;
    c->used = 0;
    a->held += size;
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
    fn_arena_chunk *c = a->head, *keep = NULL;
    while (c) {
        fn_arena_chunk *n = c->next;
        /* the oldest ordinary chunk is the smallest: keep it for reuse */
        if (!n && c->size <= ARENA_FIRST) keep = c;
        else free(c);
        c = n;
    }
    a->head = keep;
    a->held = keep ? keep->size : 0;
    if (keep) keep->used = 0;
    a->next = ARENA_FIRST * 2;
    a->oom = 0;
}

void fn_arena_free(fn_arena *a)
{
    fn_arena_chunk *c = a->head;
    while (c) {
        fn_arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    fn_arena_init(a);
}

void fn_mem_server_tune(void)
{
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
#endif
}

void fn_mem_release(void)
{
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
