/* replicas.c - replica scores, shard latency windows and the retry budget
 * (replicas.h). */
#include "replicas.h"

#include <stdlib.h>
#include <string.h>

void rep_observe(rep_stats *r, double us)
{
    if (us < 1) us = 1;
    r->ewma_us = r->answered ? REP_EWMA_ALPHA * us + (1 - REP_EWMA_ALPHA) * r->ewma_us : us;
    r->answered++;
}

double rep_score(const rep_stats *r)
{
    if (!r->answered) return 0;
    /* C3: the queue this client built at the server, cubed, so that two
     * replicas of equal speed share the load and a fast one is not flooded. */
    double q = 1.0 + r->outstanding;
    return r->ewma_us * q * q * q;
}

void rep_passed_over(rep_stats *r, double chosen_ewma_us)
{
    /* ~1% a pass: a replica 100x slower than its sibling is tried again
     * after a few hundred calls, and if it is still slow one call tells. */
    if (r->answered && r->ewma_us > chosen_ewma_us)
        r->ewma_us -= 0.01 * (r->ewma_us - chosen_ewma_us);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

uint32_t lat_quantile(const lat_window *w, double q)
{
    if (!w->n) return 0;
    uint32_t tmp[LAT_WINDOW];
    memcpy(tmp, w->us, w->n * sizeof tmp[0]);
    qsort(tmp, w->n, sizeof tmp[0], cmp_u32);
    double pos = q * (double)(w->n - 1);
    uint32_t i = (uint32_t)pos;
    if (i >= w->n - 1) return tmp[w->n - 1];
    return tmp[i + (pos - i > 0 ? 1 : 0)];   /* the upper neighbour: never under-estimates */
}

void lat_add(lat_window *w, uint32_t us)
{
    w->us[w->pos] = us;
    w->pos = (w->pos + 1) % LAT_WINDOW;
    if (w->n < LAT_WINDOW) w->n++;
    /* a sort of 256 every 16 calls: cheap next to a shard call */
    if (++w->fresh >= 16) {
        w->fresh = 0;
        w->p50_us = lat_quantile(w, 0.50);
        w->p95_us = lat_quantile(w, 0.95);
        w->p99_us = lat_quantile(w, 0.99);
    }
}

static void budget_refill(retry_budget *b, uint64_t now_ms)
{
    if (now_ms > b->last_ms) {
        b->tokens += b->per_s * (double)(now_ms - b->last_ms) / 1000.0;
        b->last_ms = now_ms;
    }
    if (b->tokens > b->cap) b->tokens = b->cap;
}

void budget_init(retry_budget *b, double ratio, double per_s, double cap, uint64_t now_ms)
{
    memset(b, 0, sizeof *b);
    b->ratio = ratio;
    b->per_s = per_s;
    b->cap = cap;
    b->tokens = cap;
    b->last_ms = now_ms;
}

void budget_earn(retry_budget *b, uint64_t now_ms)
{
    b->tokens += b->ratio;
    budget_refill(b, now_ms);
}

int budget_take(retry_budget *b, uint64_t now_ms)
{
    budget_refill(b, now_ms);
    if (b->tokens < 1.0) {
        b->denied++;
        return 0;
    }
    b->tokens -= 1.0;
    b->spent++;
    return 1;
}
