/* test_page.c - the result page (coordinator/page.h): the blender's table of
 * slot rules and intents, safe search, near-duplicate folding, the host cap,
 * and the property paging rests on: a page is the same whatever the length
 * of the list past it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dupsig.h"
#include "page.h"

/* A list written as "w w n i w n": one letter per hit's vertical
 * (w web, n news, i image, v video), hit i's id = i. */
static size_t make_list(const char *spec, page_item *it, size_t cap)
{
    static const char *names[] = { ['w'] = "web", ['n'] = "news", ['i'] = "image", ['v'] = "video" };
    size_t n = 0;
    for (const char *p = spec; *p && n < cap; p++) {
        if (*p == ' ') continue;
        it[n] = (page_item){ .e = (uint32_t)n, .rank = (uint32_t)n, .key = n, .vertical = names[(int)*p],
                             .host = "", .rule = -1 };
        n++;
    }
    return n;
}

/* "0 1 n2 n5 3 ..." : the page's e values, a block hit prefixed by its rule's
 * first letter */
static void page_string(const page_out *o, const page_rule *rules, char *buf, size_t cap)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < o->n && at < cap; i++) {
        const page_item *x = &o->list[i];
        at += (size_t)snprintf(buf + at, cap - at, "%s%s%u", i ? " " : "",
                               x->rule >= 0 ? (char[]){ rules[x->rule].name[0], 0 } : "", x->e);
    }
}

typedef struct blend_row {
    const char *rules[3];
    const char *intent;   /* "news=0.7 image=0.1" */
    const char *list;
    const char *want;
} blend_row;

static const blend_row table[] = {
    /* no rule: the list as it is */
    { { NULL }, "news=0.9", "w w n w i w w n", "0 1 2 3 4 5 6 7" },
    /* news intent above the rule's: 2 news hits at place 3 */
    { { "news vertical=news position=3 size=2 min-intent=0.5" }, "news=0.7 web=0.3", "w w w n w n w n",
      "0 1 n3 n5 2 4 6 7" },
    /* below the rule's: nothing moves */
    { { "news vertical=news position=3 size=2 min-intent=0.5" }, "news=0.4 web=0.6", "w w w n w n w n",
      "0 1 2 3 4 5 6 7" },
    /* a vertical the intent model does not know never fires */
    { { "news vertical=news position=3 size=2 min-intent=0" }, "web=1", "w n w", "0 1 2" },
    /* fewer hits than min-hits: no block */
    { { "img vertical=image position=1 size=3 min-hits=2 min-intent=0.1" }, "image=0.5", "w w i w", "0 1 2 3" },
    /* enough: a block at the very top, its hits in rank order */
    { { "img vertical=image position=1 size=3 min-hits=2 min-intent=0.1" }, "image=0.5", "w i w i w i w i",
      "i1 i3 i5 0 2 4 6 7" },
    /* two rules, both fire, at their places; a hit goes to one block */
    { { "news vertical=news position=2 size=1 min-intent=0.2", "img vertical=image position=5 size=2 min-intent=0.2" },
      "news=0.3 image=0.3 web=0.4", "w w w w n i i n i w", "0 n4 1 2 i5 i6 3 7 8 9" },
    /* only the second fires */
    { { "news vertical=news position=2 size=1 min-intent=0.5", "img vertical=image position=5 size=2 min-intent=0.2" },
      "news=0.3 image=0.3 web=0.4", "w w w w n i i n i w", "0 1 2 3 i5 i6 4 7 8 9" },
    /* the block's place is past the list's end: it goes at the end */
    { { "vid vertical=video position=9 size=2 min-intent=0" }, "video=0.1", "w v w v", "0 2 v1 v3" },
    /* the block takes the best hits of its vertical from down the list ... */
    { { "news vertical=news position=1 size=1 min-intent=0" }, "news=0", "w w w w w w w w w n", "n9 0 1 2 3 4 5 6 7 8" },
    /* ... within its depth only */
    { { "news vertical=news position=1 size=1 min-intent=0 depth=9" }, "news=0", "w w w w w w w w w n",
      "0 1 2 3 4 5 6 7 8 9" },
};

Test(page, blender_table)
{
    for (size_t r = 0; r < sizeof table / sizeof table[0]; r++) {
        const blend_row *row = &table[r];
        page_rule rules[3];
        size_t nr = 0;
        fn_errbuf eb = {{0}};
        for (; nr < 3 && row->rules[nr]; nr++) {
            cr_assert_eq(page_rule_parse(row->rules[nr], &rules[nr], &eb), 0, "row %zu: %s", r, eb.msg);
            rules[nr].ord = (unsigned)nr + 1;
        }
        cr_assert_eq(page_rules_check(rules, nr, &eb), 0, "row %zu: %s", r, eb.msg);
        const char *iv[8];
        double is[8];
        char ibuf[128];
        size_t ni = 0;
        snprintf(ibuf, sizeof ibuf, "%s", row->intent);
        for (char *t = strtok(ibuf, " "); t && ni < 8; t = strtok(NULL, " ")) {
            char *eq = strchr(t, '=');
            *eq = '\0';
            iv[ni] = t;
            is[ni++] = atof(eq + 1);
        }
        page_item it[32];
        size_t n = make_list(row->list, it, 32);
        page_opts o = { .safe = PAGE_SAFE_OFF, .block = 10, .blend = 1, .rules = rules, .nrules = nr,
                        .intent_vertical = iv, .intent_score = is, .nintent = ni };
        fn_arena a;
        fn_arena_init(&a);
        page_out out;
        cr_assert_eq(page_build(&a, it, n, &o, &out), 0);
        char got[256];
        page_string(&out, rules, got, sizeof got);
        cr_assert_str_eq(got, row->want, "row %zu (%s | %s): got %s; note: %s", r, row->list, row->intent, got,
                         out.blender.note);
        cr_assert_eq(out.blender.ran, strpbrk(row->want, "niv") != NULL, "row %zu: ran", r);
        /* blending never changes the ranked hits' order among themselves */
        int last = -1;
        for (size_t i = 0; i < out.n; i++)
            if (out.list[i].rule < 0) {
                cr_assert_gt((int)out.list[i].e, last, "row %zu", r);
                last = (int)out.list[i].e;
            }
        /* and no hit is lost or repeated */
        cr_assert_eq(out.n, n, "row %zu", r);
        fn_arena_free(&a);
    }
}

Test(page, rule_errors)
{
    static const struct { const char *text, *msg; } bad[] = {
        { "", "empty" },
        { "vertical=news position=1 size=1", "want a rule name first" },
        { "n/a vertical=news position=1 size=1", "name 'n/a'" },
        { "x position=1 size=1", "missing vertical=" },
        { "x vertical=news size=1", "missing position=" },
        { "x vertical=news position=1", "missing size=" },
        { "x vertical=news position=0 size=1", "position '0': want 1..1000" },
        { "x vertical=news position=1 size=11", "size '11': want 1..10" },
        { "x vertical=news position=1 size=2 min-intent=1.5", "min-intent '1.5'" },
        { "x vertical=news position=1 size=2 min-hits=3", "min-hits 3 is more than size 2" },
        { "x vertical=news position=1 size=2 colour=red", "unknown key 'colour'" },
        { "x vertical=news position=1 size=2 oops", "'oops': want key=value" },
        { "x vertical=new$ position=1 size=2", "vertical 'new$'" },
        { "x vertical=news position=1 size=2 depth=0", "depth '0': want 1..1000" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        page_rule r;
        fn_errbuf eb = {{0}};
        cr_assert_eq(page_rule_parse(bad[i].text, &r, &eb), FN_EINVAL, "'%s' accepted", bad[i].text);
        cr_assert(strstr(eb.msg, bad[i].msg), "'%s': got '%s', want '%s'", bad[i].text, eb.msg, bad[i].msg);
    }
    page_rule r[2];
    fn_errbuf eb = {{0}};
    cr_assert_eq(page_rule_parse("a vertical=news position=3 size=2", &r[0], &eb), 0);
    cr_assert_eq(page_rule_parse("b vertical=image position=4 size=3", &r[1], &eb), 0);
    r[0].ord = 1;
    r[1].ord = 2;
    cr_assert_eq(page_rules_check(r, 2, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "places 4..6 overlap rule #1 a's 3..4"), "%s", eb.msg);
    cr_assert_eq(page_rule_parse("a vertical=image position=5 size=3", &r[1], &eb), 0);
    cr_assert_eq(page_rules_check(r, 2, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "already rule #1"), "%s", eb.msg);
}

static page_item scored(uint32_t i, float fs)
{
    return (page_item){ .e = i, .rank = i, .key = i, .vertical = "", .host = "", .fscore = fs, .has_fs = 1,
                        .rule = -1 };
}

Test(page, safe_search)
{
    page_item it[40];
    for (uint32_t i = 0; i < 40; i++) it[i] = scored(i, i % 7 == 1 ? 0.95f : i % 7 == 2 ? 0.5f : 0.01f);
    page_opts o = { .have_scores = 1, .threshold = 0.9, .strict = 0.4, .demote_by = 5, .block = 10 };
    fn_arena a;
    fn_arena_init(&a);
    page_out out;
    /* strict: every hit at or above 0.4 goes, the rest keep their order */
    o.safe = PAGE_SAFE_STRICT;
    cr_assert_eq(page_build(&a, it, 40, &o, &out), 0);
    size_t removed = 0;
    for (size_t i = 0; i < out.ndrops; i++) removed += out.drops[i].action == PAGE_REMOVED;
    cr_assert_eq(removed, 12);   /* 6 of 0.95, 6 of 0.5 */
    cr_assert_eq(out.n, 28);
    for (size_t i = 0; i < out.n; i++) {
        cr_assert_lt(out.list[i].fscore, 0.4f);
        if (i) cr_assert_gt(out.list[i].e, out.list[i - 1].e);
    }
    cr_assert_eq(out.filter.count_in, 40);
    cr_assert_eq(out.filter.count_out, 28);
    cr_assert(strstr(out.filter.note, "12 removed"), "%s", out.filter.note);
    /* moderate: the 0.95s move 5 places down, after the clean hits there */
    o.safe = PAGE_SAFE_MODERATE;
    cr_assert_eq(page_build(&a, it, 40, &o, &out), 0);
    cr_assert_eq(out.n, 40);
    cr_assert_eq(out.list[0].e, 0);
    cr_assert_eq(out.list[1].e, 2);   /* 1 (0.95) sorts at 1 + 5 = 6, after 6 */
    for (size_t i = 0; i < out.n; i++)
        if (out.list[i].e == 1) {
            cr_assert_eq(i, 6);
            cr_assert_eq(out.list[i].action, PAGE_DEMOTED);
        }
    size_t demoted = 0;
    for (size_t i = 0; i < out.ndrops; i++) demoted += out.drops[i].action == PAGE_DEMOTED;
    cr_assert_eq(demoted, 6);
    /* off: as given, each with its score */
    o.safe = PAGE_SAFE_OFF;
    cr_assert_eq(page_build(&a, it, 40, &o, &out), 0);
    for (size_t i = 0; i < 40; i++) cr_assert_eq(out.list[i].e, i);
    cr_assert_eq(out.ndrops, 0);
    cr_assert_not(out.filter.ran);
    /* an index without scores: nothing to do, and the note says why */
    o.safe = PAGE_SAFE_STRICT;
    o.have_scores = 0;
    cr_assert_eq(page_build(&a, it, 40, &o, &out), 0);
    cr_assert_eq(out.n, 40);
    cr_assert(strstr(out.filter.note, "no content-filter scores"), "%s", out.filter.note);
    fn_arena_free(&a);
}

/* near: equal first 4 bytes */
static int near_first(const uint8_t *a, const uint8_t *b, double *sim)
{
    int eq = !memcmp(a, b, 4);
    *sim = eq ? 1.0 : 0.0;
    return eq;
}

Test(page, collapse)
{
    static uint8_t sig[10][4] = { {1}, {2}, {1}, {3}, {2}, {1}, {4}, {5}, {4}, {6} };   /* groups by byte 0 */
    page_item it[10];
    for (uint32_t i = 0; i < 10; i++)
        it[i] = (page_item){ .e = i, .rank = i, .key = i, .vertical = "", .host = "", .sig = sig[i], .rule = -1 };
    it[9].sig = NULL;   /* no signature: never folded */
    page_opts o = { .safe = PAGE_SAFE_OFF, .collapse = 1, .near = near_first, .sig_bytes = 4, .block = 10 };
    fn_arena a;
    fn_arena_init(&a);
    page_out out;
    cr_assert_eq(page_build(&a, it, 10, &o, &out), 0);
    const uint32_t want[] = { 0, 1, 3, 6, 7, 9 };
    cr_assert_eq(out.n, 6);
    for (size_t i = 0; i < 6; i++) cr_assert_eq(out.list[i].e, want[i]);
    /* each folded hit names the best of its group */
    const uint32_t rep[10] = { [2] = 0, [4] = 1, [5] = 0, [8] = 6 };
    cr_assert_eq(out.ndrops, 4);
    for (size_t i = 0; i < out.ndrops; i++) {
        cr_assert_eq(out.drops[i].action, PAGE_COLLAPSED);
        cr_assert_eq(out.drops[i].rep, rep[out.drops[i].e]);
    }
    cr_assert(strstr(out.diversity.note, "4 near-duplicates folded"), "%s", out.diversity.note);
    o.collapse = 0;
    cr_assert_eq(page_build(&a, it, 10, &o, &out), 0);
    cr_assert_eq(out.n, 10);
    fn_arena_free(&a);
}

static const char *hosts[] = { "a.com", "b.org", "c.net", "d.io", "e.de", "f.fr", "g.uk", "h.jp" };

/* a random list: skewed hosts (a.com most), some verticals, some flagged,
 * one in 20 a near-duplicate of an earlier hit */
static void random_list(page_item *it, size_t n, unsigned seed, uint8_t (*sig)[4])
{
    srand(seed);
    for (size_t i = 0; i < n; i++) {
        int r = rand() % 100;
        const char *h = r < 40 ? hosts[0] : r < 60 ? hosts[1] : hosts[2 + rand() % 6];
        int v = rand() % 10;
        uint32_t g = i && rand() % 20 == 0 ? (uint32_t)(rand() % i) : (uint32_t)i;
        memcpy(sig[i], &g, 4);
        it[i] = (page_item){ .e = (uint32_t)i, .rank = (uint32_t)i, .key = i,
                             .vertical = v < 7 ? "web" : v < 9 ? "news" : "image",
                             .host = rand() % 20 ? h : "", .fscore = (float)(rand() % 100) / 100.0f, .has_fs = 1,
                             .sig = sig[i], .rule = -1 };
    }
}

Test(page, host_cap)
{
    page_item it[400];
    uint8_t sig[400][4];
    for (unsigned seed = 1; seed <= 20; seed++) {
        random_list(it, 400, seed, sig);
        for (uint32_t cap = 1; cap <= 3; cap++) {
            page_opts o = { .safe = PAGE_SAFE_OFF, .host_cap = cap, .block = 10 };
            fn_arena a;
            fn_arena_init(&a);
            page_out out;
            cr_assert_eq(page_build(&a, it, 400, &o, &out), 0);
            /* no block holds more than cap of a host */
            for (size_t b = 0; b < out.n; b += 10)
                for (size_t i = b; i < b + 10 && i < out.n; i++) {
                    if (!out.list[i].host[0]) continue;
                    uint32_t c = 0;
                    for (size_t j = b; j < b + 10 && j < out.n; j++) c += !strcmp(out.list[j].host, out.list[i].host);
                    cr_assert_leq(c, cap, "seed %u cap %u block %zu: %u of %s", seed, cap, b / 10, c,
                                  out.list[i].host);
                }
            /* every hit once: shown or capped */
            cr_assert_eq(out.n + out.ndrops, 400);
            unsigned char seen[400] = {0};
            for (size_t i = 0; i < out.n; i++) cr_assert_eq(seen[out.list[i].e]++, 0);
            for (size_t i = 0; i < out.ndrops; i++) cr_assert_eq(seen[out.drops[i].e]++, 0);
            /* a hit waits only for hits ranked above it of a capped host */
            fn_arena_free(&a);
        }
    }
}

/* Paging: the coordinator builds the list from at least page_list_need()
 * ranked hits; every page up to that end must be what a much longer list
 * gives, with all the page stages on. */
Test(page, prefix_stable)
{
    page_item it[600];
    uint8_t sig[600][4];
    page_rule rules[2];
    fn_errbuf eb = {{0}};
    cr_assert_eq(page_rule_parse("news vertical=news position=3 size=2 min-intent=0.3", &rules[0], &eb), 0);
    cr_assert_eq(page_rule_parse("img vertical=image position=7 size=3 min-intent=0.3", &rules[1], &eb), 0);
    const char *iv[] = { "news", "image", "web" };
    const double is[] = { 0.4, 0.35, 0.25 };
    size_t deeper = 0;
    for (unsigned seed = 1; seed <= 30; seed++) {
        random_list(it, 600, seed, sig);
        for (int safe = PAGE_SAFE_OFF; safe <= PAGE_SAFE_STRICT; safe++) {
            page_opts o = { .safe = safe, .have_scores = 1, .threshold = 0.8, .strict = 0.7, .demote_by = 20,
                            .collapse = 1, .near = near_first, .sig_bytes = 4, .host_cap = 2, .block = 10, .blend = 1,
                            .rules = rules, .nrules = 2, .intent_vertical = iv, .intent_score = is, .nintent = 3 };
            fn_arena a;
            fn_arena_init(&a);
            page_out full, part;
            o.complete = 1;
            cr_assert_eq(page_build(&a, it, 600, &o, &full), 0);
            cr_assert_eq(full.settled, full.n);
            /* the cap holds with vertical blocks too (a block's hit over it leaves its block) */
            size_t blocks = 0;
            for (size_t i = 0; i < full.n; i++) {
                blocks += full.list[i].rule >= 0;
                if (!full.list[i].host[0]) continue;
                uint32_t c = 0;
                for (size_t j = i / 10 * 10; j < i / 10 * 10 + 10 && j < full.n; j++)
                    c += !strcmp(full.list[j].host, full.list[i].host);
                cr_assert_leq(c, 2, "seed %u: place %zu", seed, i);
            }
            cr_assert_gt(blocks, 0, "seed %u: no block fired", seed);
            for (size_t end = 10; end <= 100; end += 10) {
                /* as the coordinator does: a deeper list while the page
                 * reaches past the settled places */
                size_t n = page_list_need(end, rules, 2);
                for (;;) {
                    o.complete = n >= 600;
                    cr_assert_eq(page_build(&a, it, n, &o, &part), 0);
                    if (part.settled >= end || o.complete) break;
                    deeper++;
                    n = n * 4 < 600 ? n * 4 : 600;
                }
                size_t m = end < full.n ? end : full.n;
                cr_assert_geq(part.n, m, "seed %u safe %d end %zu: %zu < %zu", seed, safe, end, part.n, m);
                for (size_t i = 0; i < m; i++)
                    cr_assert_eq(part.list[i].e, full.list[i].e, "seed %u safe %d end %zu place %zu", seed, safe,
                                 end, i);
            }
            fn_arena_free(&a);
        }
    }
    /* the harsh lists here (60% of hits on two hosts, 30% flagged) need it sometimes */
    cr_assert_gt(deeper, 0, "the deeper fetch was never needed: the test does not test it");
}

Test(page, url_host)
{
    static const struct { const char *url, *host; } v[] = {
        { "https://www.Example.org/a/b", "Example.org" }, { "http://a.b.c:8080/x", "a.b.c" },
        { "https://user:pw@host.io/p?q", "host.io" },      { "host.io/path", "" },
        { "https://x.com", "x.com" },                      { "", "" },
        { "https://x.com?q=1", "x.com" },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t n;
        const char *h = page_url_host(v[i].url, &n);
        cr_assert_eq(n, strlen(v[i].host), "%s", v[i].url);
        cr_assert_eq(strncmp(h, v[i].host, n), 0, "%s", v[i].url);
    }
}

/* The band index finds what comparing every pair finds, on real signatures
 * (index/dupsig.h) of texts with planted edited copies. */
Test(page, collapse_bands_match_all_pairs)
{
    enum { N = 400 };
    static char text[N][400];
    static uint8_t sig[N][IDX_DUPSIG_BYTES];
    srand(7);
    for (int i = 0; i < N; i++) {
        if (i > 10 && rand() % 5 == 0) {   /* a copy of an earlier text, one or two words changed */
            int src = rand() % i;
            memcpy(text[i], text[src], sizeof text[i]);
            for (int e = 0; e < 1 + rand() % 2; e++) {
                char *w = strchr(text[i] + rand() % 300, ' ');
                if (w && w[1]) w[1] = (char)('a' + rand() % 26);
            }
        } else {
            size_t at = 0;
            while (at < 360) at += (size_t)snprintf(text[i] + at, sizeof text[i] - at, "w%d ", rand() % 3000);
        }
        idx_dupsig(NULL, 0, text[i], strlen(text[i]), sig[i]);
    }
    page_item it[N];
    for (uint32_t i = 0; i < N; i++)
        it[i] = (page_item){ .e = i, .rank = i, .key = i, .vertical = "", .host = "", .sig = sig[i], .rule = -1 };
    page_opts o = { .safe = PAGE_SAFE_OFF, .collapse = 1, .near = idx_dupsig_near, .sig_bytes = IDX_DUPSIG_BYTES,
                    .block = 10 };
    fn_arena a;
    fn_arena_init(&a);
    page_out out;
    cr_assert_eq(page_build(&a, it, N, &o, &out), 0);
    /* every pair, the obvious way */
    uint32_t kept[N], nk = 0, folded = 0;
    int rep[N];
    for (uint32_t i = 0; i < N; i++) {
        rep[i] = -1;
        for (uint32_t j = 0; j < nk && rep[i] < 0; j++)
            if (idx_dupsig_near(sig[kept[j]], sig[i], NULL)) rep[i] = (int)kept[j];
        if (rep[i] < 0) kept[nk++] = i;
        else folded++;
    }
    cr_assert_gt(folded, 40, "the test plants copies: %u folded", folded);
    cr_assert_eq(out.n, nk);
    for (uint32_t i = 0; i < nk; i++) cr_assert_eq(out.list[i].e, kept[i]);
    cr_assert_eq(out.ndrops, folded);
    for (size_t d = 0; d < out.ndrops; d++) cr_assert_eq((int)out.drops[d].rep, rep[out.drops[d].e]);
    fn_arena_free(&a);
}

/* One request's work is bounded: a long list of one host under a cap of
 * 1 ends once PAGE_MAX_WAITING hits wait; folding looks only at the first
 * PAGE_COLLAPSE_DEPTH. */
Test(page, bounded_work)
{
    enum { N = 20000 };
    page_item *it = calloc(N, sizeof *it);
    uint8_t (*sig)[4] = calloc(N, 4);
    cr_assert(it && sig);
    for (uint32_t i = 0; i < N; i++) {
        memset(sig[i], 1, 4);   /* all near each other */
        it[i] = (page_item){ .e = i, .rank = i, .key = i, .vertical = "", .host = i % 50 ? "big.example" : "small.example",
                             .sig = sig[i], .rule = -1 };
    }
    page_opts o = { .safe = PAGE_SAFE_OFF, .collapse = 1, .near = near_first, .sig_bytes = 4, .host_cap = 1,
                    .block = 10 };
    fn_arena a;
    fn_arena_init(&a);
    page_out out;
    cr_assert_eq(page_build(&a, it, N, &o, &out), 0);
    /* the first 1000 fold into one; past them nothing is compared */
    size_t folded = 0, capped = 0;
    for (size_t d = 0; d < out.ndrops; d++) {
        folded += out.drops[d].action == PAGE_COLLAPSED;
        capped += out.drops[d].action == PAGE_CAPPED;
    }
    cr_assert_eq(folded, PAGE_COLLAPSE_DEPTH - 1);
    cr_assert_eq(out.n + folded + capped, N);
    for (size_t b = 0; b < out.n; b += 10) {
        size_t big = 0;
        for (size_t i = b; i < b + 10 && i < out.n; i++) big += !strcmp(out.list[i].host, "big.example");
        cr_assert_leq(big, 1);
    }
    fn_arena_free(&a);
    free(it);
    free(sig);
}
