/* blend.c - the blender (page.h): vertical blocks slotted into the list by
 * the query's intent and the slot rules of the coordinator's config, the
 * ranked list filling every other place, and the host cap applied to the
 * whole (a block's hits count toward their hosts' cap but never move).
 *
 * A rule fires when the intent model gives its vertical at least min_intent
 * and the first `depth` hits of the list hold at least min_hits of the
 * vertical; its block is the best `size` of them (in list order), at its 1-based position (or at
 * the end of a shorter list). Rules are tried in config order; a hit goes
 * to one block at most. Without an intent model no rule fires, and when no
 * rule fires the list is left as it is: blending never reorders the ranked
 * hits among themselves.
 *
 * The host cap: walking the places in order, the next hit of the ranked
 * list whose host already has host_cap hits in the current block of
 * `block` places waits (a vertical block's hit too: it leaves its block), and takes the first later place (in a later block)
 * where it fits, ahead of the hits ranked below it. When the list runs out
 * and only waiting hits are left that fit nowhere, the list ends there: they
 * are dropped (capped). The result depends only on the list's prefix, so a
 * page is the same whether asked alone or as part of a longer one.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "fn_config.h"
#include "page.h"

/* ---- rules ---- */

static int name_ok(const char *s, size_t n, size_t max)
{
    if (!n || n > max) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.') return 0;
    return 1;
}

int page_rule_parse(const char *text, page_rule *out, fn_errbuf *eb)
{
    page_rule r;
    memset(&r, 0, sizeof r);
    r.min_hits = 1;
    r.depth = PAGE_DEFAULT_DEPTH;
    const char *p = text;
    int have_v = 0, have_p = 0, have_s = 0, have_mh = 0;
    size_t ntok = 0;
    while (*p) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) break;
        const char *t = p;
        while (*p && *p != ' ' && *p != '\t') p++;
        size_t tl = (size_t)(p - t);
        char tok[128];
        if (tl >= sizeof tok) return fn_seterr(eb, FN_EINVAL, "blend-rule: '%.20s...' is too long", t);
        memcpy(tok, t, tl);
        tok[tl] = '\0';
        if (ntok++ == 0) {
            if (strchr(tok, '='))
                return fn_seterr(eb, FN_EINVAL, "blend-rule: starts with '%s': want a rule name first, "
                                 "e.g. 'news_top vertical=news position=3 size=2 min-intent=0.5'", tok);
            if (!name_ok(tok, tl, PAGE_RULE_NAME_MAX))
                return fn_seterr(eb, FN_EINVAL, "blend-rule: name '%s': want 1..%d of [A-Za-z0-9_.-]", tok,
                                 PAGE_RULE_NAME_MAX);
            memcpy(r.name, tok, tl + 1);
            continue;
        }
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || !eq[1])
            return fn_seterr(eb, FN_EINVAL, "blend-rule %s: '%s': want key=value", r.name, tok);
        *eq = '\0';
        const char *k = tok, *v = eq + 1;
        unsigned long u;
        double d;
        if (fn_config_key_is(k, "vertical")) {
            if (!name_ok(v, strlen(v), PAGE_VERTICAL_MAX))
                return fn_seterr(eb, FN_EINVAL, "blend-rule %s: vertical '%s': want 1..%d of [A-Za-z0-9_.-]",
                                 r.name, v, PAGE_VERTICAL_MAX);
            memcpy(r.vertical, v, strlen(v) + 1);   /* name_ok bounded it */
            have_v = 1;
        } else if (fn_config_key_is(k, "position")) {
            if (fn_parse_ulong(v, 1, PAGE_MAX_POSITION, &u))
                return fn_seterr(eb, FN_EINVAL, "blend-rule %s: position '%s': want 1..%d", r.name, v,
                                 PAGE_MAX_POSITION);
            r.position = (uint32_t)u;
            have_p = 1;
        } else if (fn_config_key_is(k, "size")) {
            if (fn_parse_ulong(v, 1, PAGE_MAX_BLOCK, &u))
                return fn_seterr(eb, FN_EINVAL, "blend-rule %s: size '%s': want 1..%d", r.name, v, PAGE_MAX_BLOCK);
            r.size = (uint32_t)u;
            have_s = 1;
        } else if (fn_config_key_is(k, "min-hits")) {
            if (fn_parse_ulong(v, 1, PAGE_MAX_BLOCK, &u))
                return fn_seterr(eb, FN_EINVAL, "blend-rule %s: min-hits '%s': want 1..%d", r.name, v,
                                 PAGE_MAX_BLOCK);
            r.min_hits = (uint32_t)u;
            have_mh = 1;
        } else if (fn_config_key_is(k, "depth")) {
            if (fn_parse_ulong(v, 1, PAGE_MAX_DEPTH, &u))
                return fn_seterr(eb, FN_EINVAL, "blend-rule %s: depth '%s': want 1..%d", r.name, v, PAGE_MAX_DEPTH);
            r.depth = (uint32_t)u;
        } else if (fn_config_key_is(k, "min-intent")) {
            if (fn_parse_double(v, 0, 1, &d))
                return fn_seterr(eb, FN_EINVAL, "blend-rule %s: min-intent '%s': want a number in 0..1", r.name, v);
            r.min_intent = d;
        } else {
            return fn_seterr(eb, FN_EINVAL, "blend-rule %s: unknown key '%s' (want vertical, position, size, "
                             "min-intent, min-hits, depth)", r.name, k);
        }
    }
    if (!ntok) return fn_seterr(eb, FN_EINVAL, "blend-rule: empty");
    if (!have_v || !have_p || !have_s)
        return fn_seterr(eb, FN_EINVAL, "blend-rule %s: missing %s", r.name,
                         !have_v ? "vertical=" : !have_p ? "position=" : "size=");
    if (have_mh && r.min_hits > r.size)
        return fn_seterr(eb, FN_EINVAL, "blend-rule %s: min-hits %u is more than size %u", r.name, r.min_hits,
                         r.size);
    *out = r;
    return 0;
}

int page_rules_check(const page_rule *rules, size_t n, fn_errbuf *eb)
{
    if (n > PAGE_MAX_RULES) return fn_seterr(eb, FN_EINVAL, "blend-rule: at most %d rules", PAGE_MAX_RULES);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++) {
            const page_rule *a = &rules[j], *b = &rules[i];
            if (!strcmp(a->name, b->name))
                return fn_seterr(eb, FN_EINVAL, "blend-rule %s: the name is already rule #%u's", b->name,
                                 a->ord);
            if (a->position < b->position + b->size && b->position < a->position + a->size)
                return fn_seterr(eb, FN_EINVAL, "blend-rule %s: places %u..%u overlap rule #%u %s's %u..%u",
                                 b->name, b->position, b->position + b->size - 1, a->ord, a->name,
                                 a->position, a->position + a->size - 1);
        }
    return 0;
}

size_t page_list_need(size_t page_end, const page_rule *rules, size_t nrules)
{
    size_t m = page_end;
    for (size_t i = 0; i < nrules; i++)
        if (rules[i].depth > m) m = rules[i].depth;
    return 2 * m + 20;
}

/* ---- blending and the host cap ---- */

static double intent_of(const page_opts *o, const char *vertical, int *known)
{
    for (size_t i = 0; i < o->nintent; i++)
        if (!strcmp(o->intent_vertical[i], vertical)) {
            *known = 1;
            return o->intent_score[i];
        }
    *known = 0;
    return 0;
}

/* Host ids: hosts interned once per list, so the cap counts in O(1). */
/* hid[i] = the id of in[i].host (0 = none); returns the number of ids, or 0
 * without memory. */
static uint32_t intern_hosts(fn_arena *a, const page_item *in, size_t n, uint32_t *hid)
{
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    uint32_t *slot = fn_arena_calloc(a, cap, sizeof *slot);   /* item index + 1 */
    if (!slot) return 0;
    uint32_t next = 1;
    for (size_t i = 0; i < n; i++) {
        if (!in[i].host[0]) {
            hid[i] = 0;
            continue;
        }
        size_t h = (size_t)XXH3_64bits(in[i].host, strlen(in[i].host)) & (cap - 1);
        while (slot[h] && strcmp(in[slot[h] - 1].host, in[i].host)) h = (h + 1) & (cap - 1);
        if (slot[h]) {
            hid[i] = hid[slot[h] - 1];
        } else {
            slot[h] = (uint32_t)i + 1;
            hid[i] = next++;
        }
    }
    return next;
}

typedef struct fired {
    size_t rule;
    uint32_t at;        /* 0-based place */
    uint32_t n;
    uint32_t first;     /* into blk[] */
    int tail;           /* its place or hits depend on the list's length */
} fired;

static int fired_cmp(const void *pa, const void *pb)
{
    const fired *a = pa, *b = pb;
    return a->at < b->at ? -1 : a->at > b->at;
}

size_t page_blend(fn_arena *a, const page_item *in, size_t n, const page_opts *o, page_item *out,
                  page_drop *drops, size_t *ndrops, char *bnote, size_t bnotecap, size_t *capped)
{
    *capped = 0;
    unsigned char *taken = fn_arena_calloc(a, n ? n : 1, 1);
    uint32_t *blk = fn_arena_alloc(a, (PAGE_MAX_RULES * PAGE_MAX_BLOCK) * sizeof *blk);
    uint32_t *wait = fn_arena_alloc(a, (n ? n : 1) * sizeof *wait);
    if (!taken || !blk || !wait) {
        memcpy(out, in, n * sizeof *in);
        snprintf(bnote, bnotecap, "out of memory: the ranked list kept");
        return n;
    }
    fired f[PAGE_MAX_RULES];
    size_t nf = 0, nb = 0;
    size_t bl = 0;
    bnote[0] = '\0';
#define BNOTE(...) do { if (bl < bnotecap) bl += (size_t)snprintf(bnote + bl, bnotecap - bl, __VA_ARGS__); } while (0)
    if (o->blend && o->nrules && !o->nintent) BNOTE("no intent model: no rule can fire");
    for (size_t r = 0; o->blend && o->nintent && r < o->nrules && r < PAGE_MAX_RULES; r++) {
        const page_rule *ru = &o->rules[r];
        int known;
        double sc = intent_of(o, ru->vertical, &known);
        if (!known || sc < ru->min_intent) {
            BNOTE("%s%s: intent %s %.3f < %.3g", bl ? "; " : "", ru->name, ru->vertical, sc, ru->min_intent);
            continue;
        }
        uint32_t first = (uint32_t)nb, got = 0;
        int shallow = !o->complete && n < ru->depth;   /* a longer list may hold other hits of it */
        for (size_t i = 0; i < n && i < ru->depth && got < ru->size; i++)
            if (!taken[i] && !strcmp(in[i].vertical, ru->vertical)) blk[nb + got++] = (uint32_t)i;
        if (got < ru->min_hits) {
            BNOTE("%s%s: %u %s hits in the first %u < min-hits %u", bl ? "; " : "", ru->name, got, ru->vertical,
                  ru->depth, ru->min_hits);
            continue;
        }
        for (uint32_t j = 0; j < got; j++) taken[blk[first + j]] = 1;
        nb += got;
        f[nf++] = (fired){ r, ru->position - 1, got, first, shallow };
        BNOTE("%s%s: %u %s hits at %u (intent %.3f)", bl ? "; " : "", ru->name, got, ru->vertical, ru->position,
              sc);
    }
    qsort(f, nf, sizeof *f, fired_cmp);
    if (o->blend && !o->nrules) BNOTE("no slot rules: the ranked list kept");
    else if (!o->blend) BNOTE("off for this request (no_blend): the ranked list kept");

    /* assemble: blocks at their places, the rest from the list in order
     * (with waiting hits first), each subject to the host cap */
    uint32_t *hid = fn_arena_alloc(a, (n ? n : 1) * sizeof *hid);
    uint32_t *pos = fn_arena_alloc(a, (n ? n : 1) * sizeof *pos);   /* out place -> in index */
    uint32_t nh = hid ? intern_hosts(a, in, n, hid) : 0;
    uint32_t *cnt = nh ? fn_arena_calloc(a, nh, sizeof *cnt) : NULL;
    uint32_t cap = o->host_cap, B = o->block ? o->block : 1;
    if (cap && (!cnt || !pos)) cap = 0;   /* no memory: no cap rather than no page */
    size_t m = 0, next = 0, nwait = 0, fi = 0, blk_start = 0;
#define FITS(i) (!cap || !hid[i] || cnt[hid[i]] < cap)
#define PLACE(i, r) do { out[m] = in[i]; out[m].rule = (int16_t)(r); if (cap) { pos[m] = (uint32_t)(i); \
                         if (hid[i]) cnt[hid[i]]++; } m++; } while (0)
    for (;;) {
        if (cap && m / B * B != blk_start) {   /* a new block: its counts start at 0 */
            for (size_t p = blk_start; p < m; p++) cnt[hid[pos[p]]] = 0;
            blk_start = m / B * B;
        }
        if (fi < nf && f[fi].at <= m) {   /* a block starts here (or the list is shorter) */
            /* a block's hit whose host is full in this page block goes back
             * to the ranked list (it waits there like any capped hit) */
            for (uint32_t j = 0; j < f[fi].n; j++) {
                uint32_t i = blk[f[fi].first + j];
                if (FITS(i)) {
                    PLACE(i, f[fi].rule);
                    out[m - 1].tail |= (uint8_t)f[fi].tail;
                }
                else if (nwait < n) wait[nwait++] = i;   /* ranked among the waiting */
                if (cap && m / B * B != blk_start) {   /* the block crossed into a new page block */
                    for (size_t p = blk_start; p < m; p++) cnt[hid[pos[p]]] = 0;
                    blk_start = m / B * B;
                }
            }
            /* keep the waiting list in rank order */
            for (size_t w = 1; w < nwait; w++)
                for (size_t v = w; v > 0 && wait[v - 1] > wait[v]; v--) {
                    uint32_t t = wait[v];
                    wait[v] = wait[v - 1];
                    wait[v - 1] = t;
                }
            fi++;
            continue;
        }
        int placed = 0;
        /* a waiting hit that fits now goes first (it ranked higher) */
        for (size_t w = 0; w < nwait; w++)
            if (FITS(wait[w])) {
                PLACE(wait[w], -1);
                memmove(wait + w, wait + w + 1, (nwait - w - 1) * sizeof *wait);
                nwait--;
                placed = 1;
                break;
            }
        while (!placed && next < n && nwait < PAGE_MAX_WAITING) {
            size_t i = next++;
            if (taken[i]) continue;
            if (FITS(i)) {
                PLACE(i, -1);
                placed = 1;
            } else {
                wait[nwait++] = (uint32_t)i;
            }
        }
        if (placed) continue;
        if (fi < nf) {   /* the list ran out before the next block's place */
            f[fi].at = (uint32_t)m;
            f[fi].tail |= !o->complete;
            continue;
        }
        break;
    }
#undef FITS
#undef PLACE
    /* what is left waits for nothing: capped (the ones never looked at too) */
    for (; next < n; next++)
        if (!taken[next]) wait[nwait++] = (uint32_t)next;
    for (size_t w = 0; w < nwait; w++) {
        const page_item *it = &in[wait[w]];
        drops[(*ndrops)++] = (page_drop){ it->e, it->rank, PAGE_CAPPED, it->fscore, it->has_fs, 0, 0 };
    }
    *capped = nwait;
#undef BNOTE
    return m;
}
