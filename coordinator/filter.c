/* filter.c - the content filter's stage of the result page: safe search
 * (page.h). The score was computed at index time (funnel index build
 * --filter-model) and travels with each hit; the thresholds come from the
 * index too, so the coordinator holds no model.
 *
 *   strict    removes every hit scored at or above the model's strict
 *             threshold (chosen at training for high recall);
 *   moderate  moves every hit at or above its threshold (chosen for high
 *             precision) demote_by places down: it sorts as if it were
 *             ranked demote_by places lower, after the clean hits there.
 *             Moving by a fixed distance, rather than to the end, keeps
 *             the list a function of its prefix (stable pages);
 *   off       shows every hit (each still says its score).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "page.h"

typedef struct demote_ent {
    uint64_t at;      /* the sort position: rank, or rank + demote_by */
    uint32_t flagged; /* at a tie the clean hit goes first */
    uint32_t i;       /* the input index (stable) */
} demote_ent;

static int demote_cmp(const void *pa, const void *pb)
{
    const demote_ent *a = pa, *b = pb;
    if (a->at != b->at) return a->at < b->at ? -1 : 1;
    if (a->flagged != b->flagged) return a->flagged < b->flagged ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

size_t page_filter(const page_item *in, size_t n, const page_opts *o, page_item *out, page_drop *drops,
                   size_t *ndrops, char *note, size_t notecap)
{
    const char *level = o->safe == PAGE_SAFE_STRICT ? "strict" : o->safe == PAGE_SAFE_MODERATE ? "moderate" : "off";
    if (!o->have_scores || o->safe == PAGE_SAFE_OFF) {
        memcpy(out, in, n * sizeof *in);
        for (size_t i = 0; i < n; i++) out[i].action = PAGE_SHOWN;
        if (!o->have_scores)
            snprintf(note, notecap, "safe search %s: no content-filter scores in the index: every hit shown", level);
        else
            snprintf(note, notecap, "safe search off: every hit shown");
        return n;
    }
    size_t m = 0, removed = 0, demoted = 0, unscored = 0;
    if (o->safe == PAGE_SAFE_STRICT) {
        for (size_t i = 0; i < n; i++) {
            unscored += !in[i].has_fs;
            if (in[i].has_fs && in[i].fscore >= o->strict) {
                drops[(*ndrops)++] = (page_drop){ in[i].e, in[i].rank, PAGE_REMOVED, in[i].fscore, 1, 0, 0 };
                removed++;
                continue;
            }
            out[m] = in[i];
            out[m++].action = PAGE_SHOWN;
        }
        snprintf(note, notecap, "safe search strict: %zu removed (filter_score >= %.4g)%s", removed, o->strict,
                 unscored ? "; some hits have no score: shown" : "");
        return m;
    }
    /* moderate: a stable sort by (rank, or rank + demote_by) */
    demote_ent *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) {   /* no room to sort: keep the order, flag nothing moved */
        memcpy(out, in, n * sizeof *in);
        snprintf(note, notecap, "safe search moderate: out of memory, order kept");
        return n;
    }
    for (size_t i = 0; i < n; i++) {
        int flag = in[i].has_fs && in[i].fscore >= o->threshold;
        unscored += !in[i].has_fs;
        v[i] = (demote_ent){ (uint64_t)i + (flag ? o->demote_by : 0), (uint32_t)flag, (uint32_t)i };
        if (flag) {
            drops[(*ndrops)++] = (page_drop){ in[i].e, in[i].rank, PAGE_DEMOTED, in[i].fscore, 1, 0, 0 };
            demoted++;
        }
    }
    qsort(v, n, sizeof *v, demote_cmp);
    for (size_t i = 0; i < n; i++) {
        out[i] = in[v[i].i];
        out[i].action = v[i].flagged ? PAGE_DEMOTED : PAGE_SHOWN;
        /* moved past the list's end: a longer list puts hits before it */
        if (v[i].at >= n && !o->complete) out[i].tail = 1;
    }
    free(v);
    snprintf(note, notecap, "safe search moderate: %zu demoted %u places (filter_score >= %.4g)%s", demoted,
             o->demote_by, o->threshold, unscored ? "; some hits have no score: shown" : "");
    return n;
}
