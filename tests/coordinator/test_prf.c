/* test_prf.c - the RM3 expanded query (coordinator/prf.c) against weights
 * worked out by hand, and its independence from how the feedback documents
 * are spread over shards. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "prf.h"

typedef struct fdoc { uint64_t key; double score; uint32_t len; size_t n; char *t[4]; uint32_t tf[4]; } fdoc;

static Funnel__V1__FeedbackDoc mk(fdoc *d)
{
    Funnel__V1__FeedbackDoc m = FUNNEL__V1__FEEDBACK_DOC__INIT;
    m.key = d->key;
    m.score = d->score;
    m.length = d->len;
    m.n_terms = m.n_tf = d->n;
    m.terms = d->t;
    m.tf = d->tf;
    return m;
}

/* shard A: keys 1 (score 4: a 2, b 2 of 4 tokens) and 3 (score 2: b, c);
 * shard B: key 2 (score 4: c 2 of 2). The query "a q q q": a 1, q 3. */
static fdoc da = { 1, 4.0, 4, 2, { "a", "b" }, { 2, 2 } };
static fdoc db = { 3, 2.0, 2, 2, { "b", "c" }, { 1, 1 } };
static fdoc dc = { 2, 4.0, 2, 1, { "c" }, { 2 } };
static char *qterms[] = { "a", "q" };
static uint32_t qw[] = { 1, 3 };

static void expand_at(int swap, uint32_t docs, uint32_t terms, double lambda, double temp, fn_arena *mem,
                      coord_prf_query *q)
{
    static Funnel__V1__FeedbackDoc fa[2], fb[1];
    static Funnel__V1__FeedbackDoc *pa[2], *pb[1];
    fa[0] = mk(&da);
    fa[1] = mk(&db);
    fb[0] = mk(&dc);
    pa[0] = &fa[0];
    pa[1] = &fa[1];
    pb[0] = &fb[0];
    Funnel__V1__ShardSearchResponse ra = FUNNEL__V1__SHARD_SEARCH_RESPONSE__INIT;
    Funnel__V1__ShardSearchResponse rb = FUNNEL__V1__SHARD_SEARCH_RESPONSE__INIT;
    ra.feedback = pa;
    ra.n_feedback = 2;
    rb.feedback = pb;
    rb.n_feedback = 1;
    ra.terms = rb.terms = qterms;
    ra.n_terms = rb.n_terms = 2;
    ra.term_weights = rb.term_weights = qw;
    ra.n_term_weights = rb.n_term_weights = 2;
    const Funnel__V1__ShardSearchResponse *rs[3] = { swap ? &rb : &ra, NULL, swap ? &ra : &rb };
    coord_prf_params p = { docs, terms, lambda, temp, 0 };
    cr_assert_eq(coord_prf_expand(mem, &p, rs, 3, q), 0);
}

static void expand(int swap, uint32_t docs, uint32_t terms, fn_arena *mem, coord_prf_query *q)
{
    expand_at(swap, docs, terms, 0.5, 0.0, mem, q);   /* linear document weights */
}

Test(prf, rm3_weights_by_hand)
{
    fn_arena mem;
    fn_arena_init(&mem);
    coord_prf_query q;
    expand(0, 2, 2, &mem, &q);
    /* feedback: keys 1 and 2 (score 4 each, tie by key), weight 1/2 each;
     * P(a) = .5 x 2/4 = .25, P(b) = .25, P(c) = .5 x 2/2 = .5; two terms
     * kept: c, then a (ties by bytes), renormalised c 2/3, a 1/3;
     * with the query (lambda .5): a .5 x 1/4 + .5 x 1/3, c .5 x 2/3, q .5 x 3/4 */
    cr_assert_eq(q.fb_docs, 2);
    cr_assert_eq(q.n, 3);
    cr_assert_str_eq(q.terms[0], "a");
    cr_assert_str_eq(q.terms[1], "c");
    cr_assert_str_eq(q.terms[2], "q");
    cr_assert_float_eq(q.weights[0], 0.125 + 1.0 / 6, 1e-12);
    cr_assert_float_eq(q.weights[1], 1.0 / 3, 1e-12);
    cr_assert_float_eq(q.weights[2], 0.375, 1e-12);
    double sum = q.weights[0] + q.weights[1] + q.weights[2];
    cr_assert_float_eq(sum, 1.0, 1e-12, "the weights sum to 1");
    fn_arena_free(&mem);
}

/* The default: feedback documents weighted by a softmax of their scores at
 * 0.1 x the best, lambda 0.7. Scores 4, 4, 2: weights 1, 1, e^-5 over
 * 2 + e^-5; P(a) = w .5, P(b) = w .5 + w3 .5, P(c) = w + w3 .5 (sum 1). */
Test(prf, softmax_weights_by_hand)
{
    fn_arena mem;
    fn_arena_init(&mem);
    coord_prf_query q;
    expand_at(0, 3, 50, 0.7, 0.1, &mem, &q);
    double z = 2 + exp(-5.0), w = 1 / z, w3 = exp(-5.0) / z;
    double pa = w * 0.5, pb = w * 0.5 + w3 * 0.5, pc = w + w3 * 0.5;
    cr_assert_eq(q.n, 4);
    const char *want_t[] = { "a", "b", "c", "q" };
    double want_w[] = { 0.7 * 0.25 + 0.3 * pa, 0.3 * pb, 0.3 * pc, 0.7 * 0.75 };
    for (size_t i = 0; i < 4; i++) {
        cr_assert_str_eq(q.terms[i], want_t[i]);
        cr_assert_float_eq(q.weights[i], want_w[i], 1e-12, "%s: %.15g, by hand %.15g", want_t[i], q.weights[i],
                           want_w[i]);
    }
    fn_arena_free(&mem);
}

Test(prf, same_query_whatever_the_shard_order)
{
    fn_arena mem;
    fn_arena_init(&mem);
    coord_prf_query a, b;
    expand(0, 3, 50, &mem, &a);
    expand(1, 3, 50, &mem, &b);
    cr_assert_eq(a.fb_docs, 3);
    cr_assert_eq(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        cr_assert_str_eq(a.terms[i], b.terms[i]);
        cr_assert(memcmp(&a.weights[i], &b.weights[i], sizeof(double)) == 0, "%s: bit-identical", a.terms[i]);
    }
    fn_arena_free(&mem);
}

Test(prf, nothing_to_expand_with)
{
    fn_arena mem;
    fn_arena_init(&mem);
    Funnel__V1__ShardSearchResponse r = FUNNEL__V1__SHARD_SEARCH_RESPONSE__INIT;
    const Funnel__V1__ShardSearchResponse *rs[1] = { &r };
    coord_prf_params p = { 10, 50, 0.5, 0.1, 0 };
    coord_prf_query q;
    cr_assert_eq(coord_prf_expand(&mem, &p, rs, 1, &q), 0);
    cr_assert_eq(q.n, 0, "no feedback documents: no expanded query");
    p.docs = 0;
    cr_assert_eq(coord_prf_expand(&mem, &p, rs, 1, &q), 0);
    cr_assert_eq(q.n, 0);
    fn_arena_free(&mem);
}
