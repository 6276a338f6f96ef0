/* page.h - the result page (docs/result-page.md): the funnel's last stages,
 * run by the coordinator on the list stage 2 left (its window, then the
 * merge order):
 *
 *   filter     safe search by the index's content-filter scores (filter.c):
 *              strict removes, moderate demotes, off shows;
 *   diversity  near-duplicates folded under the best of their group, and at
 *              most host_cap hits of one host in every block of `block`
 *              consecutive results (page.c);
 *   blender    vertical blocks slotted in by the query's intent and the
 *              configured slot rules; the ranked list fills the rest
 *              (blend.c).
 *
 * Every stage keeps the list's order otherwise and depends only on the list
 * before the position it fills, never on the page asked: the page is a
 * slice of one list, so paging never repeats or skips a document. Each
 * stage's accounting (in, out, time, note) is filled by the driver,
 * page_build, and every hit a stage removed, demoted, folded or capped is
 * listed with its reason (page_drop) for explain.
 *
 * Pure functions over arrays: no RPC, no globals; strings are borrowed from
 * the caller (they outlive the call), allocations come from the arena.
 */
#ifndef FUNNEL_COORD_PAGE_H
#define FUNNEL_COORD_PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "fn_arena.h"
#include "fn_error.h"
#include "stage.h"

enum { PAGE_SAFE_DEFAULT = 0, PAGE_SAFE_OFF, PAGE_SAFE_MODERATE, PAGE_SAFE_STRICT };

/* What happened to a hit. */
enum { PAGE_SHOWN = 0, PAGE_DEMOTED, PAGE_REMOVED, PAGE_COLLAPSED, PAGE_CAPPED };

/* A candidate of the ranked list. */
typedef struct page_item {
    uint32_t e;              /* the caller's index of the entry */
    uint32_t rank;           /* 0-based position in the ranked list given */
    uint64_t key;            /* tie-break (xxh64 of the id) */
    const char *vertical;    /* never NULL; "" = none */
    const char *host;        /* never NULL, lower case; "" = none (never capped) */
    float fscore;            /* has_fs: the content filter's probability */
    int has_fs;
    const uint8_t *sig;      /* near-duplicate signature (index/dupsig.h), NULL = none */
    /* set by page_build */
    uint8_t action;          /* PAGE_SHOWN or PAGE_DEMOTED for the items of the list */
    int16_t rule;            /* the blend rule that placed it; -1 = the ranked list */
    uint8_t tail;            /* its place depends on the list's length (see page_out.settled) */
} page_item;

/* A hit the page left out or moved. */
typedef struct page_drop {
    uint32_t e, rank;        /* as in page_item */
    uint8_t action;          /* PAGE_REMOVED, PAGE_DEMOTED, PAGE_COLLAPSED, PAGE_CAPPED */
    float fscore;
    int has_fs;
    uint32_t rep;            /* PAGE_COLLAPSED: the e of the hit it was folded under */
    double similarity;       /* PAGE_COLLAPSED */
} page_drop;

#define PAGE_MAX_RULES 16
#define PAGE_RULE_NAME_MAX 32
#define PAGE_VERTICAL_MAX 64
#define PAGE_MAX_BLOCK 10        /* hits of one vertical block */
#define PAGE_MAX_POSITION 1000

/* Near-duplicates are looked for among the first PAGE_COLLAPSE_DEPTH hits of
 * the list only (a bound on one request's work; the shards send signatures
 * for their best that many), by locality-sensitive hashing: a hit is
 * compared with the kept hits that share at least one band of PAGE_BAND
 * signature bytes with it. With 128 one-byte MinHash slots (32 bands) a pair
 * at the threshold (similarity 0.70) shares no band with probability 1.4e-4. */
#define PAGE_COLLAPSE_DEPTH 1000
#define PAGE_BAND 4
/* At most this many hits wait for a place under the host cap; past that the
 * list ends (a bound on the cap's work when one host floods the list). */
#define PAGE_MAX_WAITING 256

#define PAGE_DEFAULT_DEPTH 50
#define PAGE_MAX_DEPTH 1000

/* A slot rule: a block of `size` hits of `vertical` at 1-based position
 * `position` of the list when the query's intent score for the vertical is
 * at least min_intent and at least min_hits such hits are among the first
 * `depth` of the list (a quality floor, and what keeps the block the same
 * however long the list the coordinator merged: it merges at least
 * page_list_need()). */
typedef struct page_rule {
    char name[PAGE_RULE_NAME_MAX + 1];
    char vertical[PAGE_VERTICAL_MAX + 1];
    uint32_t position, size, min_hits, depth;
    double min_intent;
    unsigned ord;            /* 1-based: the how-manieth rule of the config (messages) */
} page_rule;

/* Parse a rule: "NAME vertical=V position=P size=S [min-intent=X] [min-hits=M]
 * [depth=D]".
 * Returns 0, or FN_EINVAL with the problem in eb ("blend-rule: ..."). */
int page_rule_parse(const char *text, page_rule *out, fn_errbuf *eb);
/* Check rules[0, n) together: names unique, blocks not overlapping. Returns
 * 0 or FN_EINVAL naming both rules. */
int page_rules_check(const page_rule *rules, size_t n, fn_errbuf *eb);

typedef struct page_opts {
    /* filter */
    int safe;                /* PAGE_SAFE_OFF / MODERATE / STRICT */
    int have_scores;         /* the index carries filter scores */
    double threshold;        /* moderate demotes at or above it */
    double strict;           /* strict removes at or above it */
    uint32_t demote_by;      /* a demoted hit goes this many places down */
    /* diversity */
    int collapse;            /* fold near-duplicates */
    int (*near)(const uint8_t *a, const uint8_t *b, double *similarity);   /* 1 = near-duplicates */
    size_t sig_bytes;        /* every signature's length (a multiple of PAGE_BAND) */
    uint32_t host_cap;       /* 0 = no cap */
    uint32_t block;          /* the cap holds in every block of this many results (>= 1) */
    /* blender */
    int blend;
    const page_rule *rules;
    size_t nrules;
    const char *const *intent_vertical;   /* the query's intent scores, NULL/0 = no intent model */
    const double *intent_score;
    size_t nintent;
    int complete;            /* the items are every hit there is (no deeper list exists) */
} page_opts;

typedef struct page_out {
    page_item *list;         /* the page list, best first: slice it for the page */
    size_t n;
    page_drop *drops;        /* in the order they happened */
    size_t ndrops;
    rank_stage_acct filter, diversity, blender;
    /* Places [0, settled) are what any longer list gives (all of them when
     * complete). A place past it holds a hit put there because the list
     * ended: a demoted hit whose demotion reaches past the end, a block
     * moved to the end, or any block of a list shorter than its rule's
     * depth. The coordinator fetches a deeper list when a page reaches past
     * settled. */
    size_t settled;
} page_out;

/* The page list of items[0, n) (the ranked list, best first; rank = index).
 * Returns 0 or -ENOMEM. */
int page_build(fn_arena *a, const page_item *items, size_t n, const page_opts *o, page_out *out);

/* The stages, as page_build runs them (exposed for tests). Each reads in
 * [0, n) and writes the survivors to out (room for n), returning their
 * count; drops are appended to *drops (room for n). */
size_t page_filter(const page_item *in, size_t n, const page_opts *o, page_item *out, page_drop *drops,
                   size_t *ndrops, char *note, size_t notecap);
size_t page_collapse(fn_arena *a, const page_item *in, size_t n, const page_opts *o, page_item *out,
                     page_drop *drops, size_t *ndrops);
/* Blend and cap together (a block counts toward its hosts' cap and is never
 * moved). */
size_t page_blend(fn_arena *a, const page_item *in, size_t n, const page_opts *o, page_item *out,
                  page_drop *drops, size_t *ndrops, char *bnote, size_t bnotecap, size_t *capped);

/* The ranked hits the page stages need to fill places [0, page_end) the same
 * way whatever the list's length: 2 x max(page_end, the rules' deepest
 * depth) + 20 - room for the hits they drop (a bound that holds unless
 * more than half the list is dropped, e.g. one host capped). */
size_t page_list_need(size_t page_end, const page_rule *rules, size_t nrules);

/* The host of a URL: between "//" and the next '/', ':' '?' '#' (a
 * "www." prefix dropped), case as given; *len 0 when there is none. */
const char *page_url_host(const char *url, size_t *len);

const char *page_action_name(int action);

#endif
