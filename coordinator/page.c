/* page.c - the result page's driver and its diversity stage (page.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <strings.h>
#include <uv.h>

#include "page.h"

const char *page_action_name(int action)
{
    switch (action) {
    case PAGE_SHOWN: return "shown";
    case PAGE_DEMOTED: return "demoted";
    case PAGE_REMOVED: return "removed";
    case PAGE_COLLAPSED: return "collapsed";
    case PAGE_CAPPED: return "capped";
    }
    return "?";
}

const char *page_url_host(const char *url, size_t *len)
{
    *len = 0;
    if (!url) return "";
    const char *p = strstr(url, "//");
    if (!p) return "";
    p += 2;
    const char *at = p;   /* user:pass@ goes */
    for (const char *q = p; *q && *q != '/' && *q != '?' && *q != '#'; q++)
        if (*q == '@') at = q + 1;
    p = at;
    if (!strncasecmp(p, "www.", 4)) p += 4;
    size_t n = strcspn(p, "/:?#");
    *len = n;
    return p;
}

/* Near-duplicates: each hit is compared with the hits kept before it that
 * share a band with it (page.h); the best-ranked near one is its group's
 * best, and it is folded under that one. Kept hits only, so a chain a~b~c
 * with a and c far apart folds b under a and keeps c. */
typedef struct band_ent {
    uint64_t key;     /* band number << 32 | the band's bytes */
    uint32_t kept;    /* index into out */
    uint32_t next;    /* the next entry with the same key, + 1 (0 = none) */
} band_ent;

static uint64_t band_key(const uint8_t *sig, size_t b)
{
    uint32_t v;
    memcpy(&v, sig + b * PAGE_BAND, PAGE_BAND);
    return (uint64_t)b << 32 | v;
}

static size_t band_slot(uint64_t key, size_t mask)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & mask;
}

size_t page_collapse(fn_arena *a, const page_item *in, size_t n, const page_opts *o, page_item *out,
                     page_drop *drops, size_t *ndrops)
{
    size_t nb = o->sig_bytes / PAGE_BAND, depth = n < PAGE_COLLAPSE_DEPTH ? n : PAGE_COLLAPSE_DEPTH;
    size_t cap = 16;
    while (cap < 2 * depth * nb) cap <<= 1;
    uint32_t *slot = fn_arena_calloc(a, cap, sizeof *slot);   /* entry + 1, 0 = empty */
    size_t nents = depth * nb;
    band_ent *ent = fn_arena_alloc(a, (nents ? nents : 1) * sizeof *ent);
    uint32_t *seen = fn_arena_calloc(a, depth ? depth : 1, sizeof *seen);
    if (!nb || !o->near || !slot || !ent || !seen) {   /* nothing to compare (or no memory: keep all) */
        memcpy(out, in, n * sizeof *in);
        return n;
    }
    size_t m = 0, nent = 0;
    for (size_t i = 0; i < n; i++) {
        const page_item *it = &in[i];
        if (i >= depth || !it->sig) {
            out[m++] = *it;
            continue;
        }
        size_t rep = SIZE_MAX;
        double rsim = 0;
        for (size_t b = 0; b < nb; b++) {
            uint64_t key = band_key(it->sig, b);
            for (size_t h = band_slot(key, cap - 1); slot[h]; h = (h + 1) & (cap - 1)) {
                if (ent[slot[h] - 1].key != key) continue;
                for (uint32_t e = slot[h]; e; e = ent[e - 1].next) {
                    uint32_t j = ent[e - 1].kept;
                    double sim;
                    if (seen[j] == i + 1 || j >= rep) continue;
                    seen[j] = (uint32_t)i + 1;
                    if (o->near(out[j].sig, it->sig, &sim)) {
                        rep = j;
                        rsim = sim;
                    }
                }
                break;
            }
        }
        if (rep != SIZE_MAX) {
            drops[(*ndrops)++] = (page_drop){ it->e, it->rank, PAGE_COLLAPSED, it->fscore, it->has_fs, out[rep].e, rsim };
            continue;
        }
        /* kept: its bands go in the table */
        for (size_t b = 0; b < nb; b++) {
            uint64_t key = band_key(it->sig, b);
            size_t h = band_slot(key, cap - 1);
            while (slot[h] && ent[slot[h] - 1].key != key) h = (h + 1) & (cap - 1);
            ent[nent] = (band_ent){ key, (uint32_t)m, slot[h] };
            slot[h] = (uint32_t)++nent;
        }
        out[m++] = *it;
    }
    return m;
}

int page_build(fn_arena *a, const page_item *items, size_t n, const page_opts *o, page_out *out)
{
    memset(out, 0, sizeof *out);
    page_item *b1 = fn_arena_alloc(a, (n ? n : 1) * sizeof *b1);
    page_item *b2 = fn_arena_alloc(a, (n ? n : 1) * sizeof *b2);
    /* a hit is dropped once at most, and a demoted one may be capped too */
    out->drops = fn_arena_alloc(a, (2 * n + 1) * sizeof *out->drops);
    if (!b1 || !b2 || !out->drops) return -ENOMEM;

    uint64_t t = uv_hrtime();
    rank_stage_acct *fa = &out->filter;
    fa->name = "filter";
    fa->count_in = n;
    size_t n1 = page_filter(items, n, o, b1, out->drops, &out->ndrops, fa->note, sizeof fa->note);
    fa->ran = o->have_scores && o->safe != PAGE_SAFE_OFF;
    fa->count_out = n1;
    fa->time_us = (uv_hrtime() - t) / 1000;

    t = uv_hrtime();
    rank_stage_acct *da = &out->diversity;
    da->name = "diversity";
    da->count_in = n1;
    size_t n2 = n1, nsig = 0;
    for (size_t i = 0; i < n1; i++) nsig += b1[i].sig != NULL;
    if (o->collapse && nsig) {
        n2 = page_collapse(a, b1, n1, o, b2, out->drops, &out->ndrops);
    } else {
        memcpy(b2, b1, n1 * sizeof *b1);
    }
    uint64_t div_us = (uv_hrtime() - t) / 1000;

    t = uv_hrtime();
    rank_stage_acct *ba = &out->blender;
    ba->name = "blender";
    ba->count_in = n2;
    size_t capped = 0;
    for (size_t i = 0; i < n2; i++) b2[i].rule = -1;
    size_t n3 = page_blend(a, b2, n2, o, b1, out->drops, &out->ndrops, ba->note, sizeof ba->note, &capped);
    size_t blocks = 0;
    for (size_t i = 0; i < n3; i++) blocks += b1[i].rule >= 0;
    ba->ran = blocks > 0;
    ba->count_out = n3;
    uint64_t blend_us = (uv_hrtime() - t) / 1000;
    ba->time_us = blend_us;

    /* the host cap runs inside the blender's walk: its hits count here */
    da->ran = (o->collapse && nsig) || o->host_cap;
    da->count_out = n2 - capped;
    da->time_us = div_us;
    int dl = snprintf(da->note, sizeof da->note, "%zu near-duplicates folded%s", n1 - n2,
                      !o->collapse ? " (off)" : !nsig ? " (no signatures in the index)" : "");
    if (o->host_cap && dl > 0 && (size_t)dl < sizeof da->note)
        snprintf(da->note + dl, sizeof da->note - (size_t)dl, "; host cap %u per %u: %zu dropped", o->host_cap,
                 o->block, capped);
    out->list = b1;
    out->n = n3;
    out->settled = n3;
    for (size_t i = 0; i < n3; i++)
        if (b1[i].tail) {
            out->settled = i;
            break;
        }
    return 0;
}
