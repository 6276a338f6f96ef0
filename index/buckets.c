/* buckets.c - see buckets.h. */
#include "buckets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void idx_buckets_default(idx_bucket_map *m, uint32_t n)
{
    if (n < 1) n = 1;
    if (n > IDX_MAX_SHARDS) n = IDX_MAX_SHARDS;
    m->shards = n;
    for (uint32_t b = 0; b < IDX_BUCKETS; b++) m->shard[b] = (uint16_t)((uint64_t)b * n / IDX_BUCKETS);
}

int idx_buckets_format(const idx_bucket_map *m, char *out, size_t cap)
{
    size_t o = 0;
    for (uint32_t b = 0; b < IDX_BUCKETS;) {
        uint32_t e = b;
        while (e + 1 < IDX_BUCKETS && m->shard[e + 1] == m->shard[b]) e++;
        int w = e == b ? snprintf(out + o, o < cap ? cap - o : 0, "%s%u:%u", o ? "," : "", b, m->shard[b])
                       : snprintf(out + o, o < cap ? cap - o : 0, "%s%u-%u:%u", o ? "," : "", b, e, m->shard[b]);
        if (w < 0 || o + (size_t)w >= cap) return FN_ELIMIT;
        o += (size_t)w;
        b = e + 1;
    }
    return 0;
}

static int num(const char **p, unsigned long max, unsigned long *v)
{
    const char *s = *p;
    if (*s < '0' || *s > '9') return -1;
    unsigned long x = 0;
    while (*s >= '0' && *s <= '9') {
        x = x * 10 + (unsigned long)(*s++ - '0');
        if (x > max) return -1;
    }
    *p = s;
    *v = x;
    return 0;
}

int idx_buckets_parse(const char *text, idx_bucket_map *m, fn_errbuf *eb)
{
    const char *p = text;
    uint32_t next = 0, maxs = 0;
    uint8_t seen[IDX_MAX_SHARDS];
    memset(seen, 0, sizeof seen);
    while (next < IDX_BUCKETS) {
        unsigned long a, e, s;
        if (num(&p, IDX_BUCKETS - 1, &a))
            return fn_seterr(eb, FN_EPARSE, "buckets: want a bucket number 0..%u at byte %zu", IDX_BUCKETS - 1,
                             (size_t)(p - text));
        e = a;
        if (*p == '-') {
            p++;
            if (num(&p, IDX_BUCKETS - 1, &e) || e < a)
                return fn_seterr(eb, FN_EPARSE, "buckets: bad range end at byte %zu", (size_t)(p - text));
        }
        if (a != next)
            return fn_seterr(eb, FN_EPARSE, "buckets: range %lu-%lu: want one starting at %u (no gaps, no overlaps, "
                             "in order)", a, e, next);
        if (*p++ != ':' || num(&p, IDX_MAX_SHARDS - 1, &s))
            return fn_seterr(eb, FN_EPARSE, "buckets: want ':SHARD' after range %lu-%lu", a, e);
        for (unsigned long b = a; b <= e; b++) m->shard[b] = (uint16_t)s;
        seen[s] = 1;
        if (s + 1 > maxs) maxs = (uint32_t)s + 1;
        next = (uint32_t)e + 1;
        if (next < IDX_BUCKETS && *p++ != ',')
            return fn_seterr(eb, FN_EPARSE, "buckets: want ',' after range %lu-%lu", a, e);
    }
    if (*p) return fn_seterr(eb, FN_EPARSE, "buckets: text after bucket %u", IDX_BUCKETS - 1);
    for (uint32_t s = 0; s < maxs; s++)
        if (!seen[s]) return fn_seterr(eb, FN_EPARSE, "buckets: shard %u holds no bucket (of %u shards)", s, maxs);
    m->shards = maxs;
    return 0;
}

int idx_buckets_add_shard(const idx_bucket_map *in, idx_bucket_map *out, uint32_t *moved)
{
    uint32_t n = in->shards;
    if (n >= IDX_MAX_SHARDS) return FN_ELIMIT;
    *out = *in;
    out->shards = n + 1;
    uint32_t count[IDX_MAX_SHARDS] = { 0 };
    for (uint32_t b = 0; b < IDX_BUCKETS; b++) count[in->shard[b]]++;
    uint32_t want = IDX_BUCKETS / (n + 1);
    *moved = 0;
    for (uint32_t k = 0; k < want; k++) {
        uint32_t big = 0;   /* the shard with the most buckets (lowest number on ties) */
        for (uint32_t s = 1; s < n; s++)
            if (count[s] > count[big]) big = s;
        if (count[big] <= 1) break;   /* cannot happen while want < IDX_BUCKETS / n */
        uint32_t b = IDX_BUCKETS;
        while (b-- > 0)
            if (out->shard[b] == big) break;
        out->shard[b] = (uint16_t)n;
        count[big]--;
        count[n]++;
        (*moved)++;
    }
    return 0;
}
