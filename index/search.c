/* search.c - postings cursors, the selection score and exhaustive DAAT top-k,
 * stored fields and explain (search.h). Features are in features.c.
 *
 * The reader and the decoders of stored values are in reader.c. Everything a
 * query reads from LMDB (term records, posting blocks, stored records) is
 * read inside the searcher's per-call read transaction, checked against its
 * checksum, and decoded or copied before that transaction is reset; every
 * call runs inside an idx_guard so a data file truncated under us turns into
 * an error instead of a SIGBUS.
 */
#include "search.h"

#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <math.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analyzer.h"
#include "fn_arena.h"
#include "codec.h"
#include "format.h"
#include "integrity.h"
#include "qmatch.h"
#include "reader_int.h"
#include "attrs.h"
#include "search_int.h"

/* Chosen with tests/bench/bm25_grid over cranfield, npl and cisi (one set for
 * all three, docs/evaluation.md): the centre of the plateau k1 1.0-1.4,
 * b_body 0.6; the title parameters hardly matter there (npl has no titles,
 * cranfield's body repeats its title). */
void idx_bm25_defaults(idx_bm25_params *p)
{
    p->k1 = 1.2;
    p->b[IDX_FIELD_TITLE] = 0.75;
    p->b[IDX_FIELD_BODY] = 0.6;
    p->w[IDX_FIELD_TITLE] = 2.0;
    p->w[IDX_FIELD_BODY] = 1.0;
}

void idx_select_defaults(idx_select_params *p)
{
    p->w_popularity = 0;
    p->w_freshness = 0;
    p->half_life_days = 30;
    p->w_user = 0;
}

/* ---- searcher ---- */

int idx_searcher_create(idx_reader_t *r, idx_searcher_t **out, fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    *out = NULL;
    idx_searcher_t *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    s->r = r;
    idx_analyzer_opts ao;
    char storage[512];
    int rc = idx_analyzer_opts_parse(r->info.analyzer, &ao, storage, sizeof storage);
    if (rc) { rc = fn_seterr(eb, FN_EFORMAT, "bad analyzer description \"%s\"", r->info.analyzer); goto fail; }
    if ((rc = idx_analyzer_create(&ao, &s->an, eb))) goto fail;
    if ((rc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &s->txn))) {
        rc = fn_seterr(eb, idx_mdb_code(rc), "txn: %s", mdb_strerror(rc));
        goto fail_an;
    }
    mdb_txn_reset(s->txn);
    *out = s;
    return 0;
fail_an:
    idx_analyzer_destroy(s->an);
fail:
    free(s);
    return rc;
}

#define FREE_SCRATCH(p, cap) do { free(p); (p) = NULL; (cap) = 0; } while (0)

/* Give back scratch arrays that a large query grew: a searcher lives as
 * long as the shard, and one k=10000 explain query must not keep its
 * megabytes for good. Small arrays stay for the next query. */
static void searcher_trim(idx_searcher_t *s)
{
    enum { KEEP = 512u << 10 };   /* the funnel's default windows stay under it */
    if (s->hcap * sizeof *s->heap > KEEP) FREE_SCRATCH(s->heap, s->hcap);
    if (s->htfcap * sizeof *s->htf > KEEP) FREE_SCRATCH(s->htf, s->htfcap);
    if (s->xdoccap * sizeof *s->xdoc > KEEP) FREE_SCRATCH(s->xdoc, s->xdoccap);
    if (s->poscap * sizeof *s->pos > KEEP) FREE_SCRATCH(s->pos, s->poscap);
    if (s->poffcap * sizeof *s->poff > KEEP) FREE_SCRATCH(s->poff, s->poffcap);
    if (s->bposcap * sizeof *s->bpos > KEEP) FREE_SCRATCH(s->bpos, s->bposcap);
    if (s->hitcap * sizeof *s->hits > KEEP) FREE_SCRATCH(s->hits, s->hitcap);
    if (s->explcap * sizeof *s->expl > KEEP) FREE_SCRATCH(s->expl, s->explcap);
    if (s->scap > KEEP) FREE_SCRATCH(s->sbuf, s->scap);
    if (s->src.cap > KEEP) FREE_SCRATCH(s->src.buf, s->src.cap);
    if (s->offscap * sizeof *s->offs > KEEP) FREE_SCRATCH(s->offs, s->offscap);
    if (s->curcap * sizeof *s->cur > KEEP) FREE_SCRATCH(s->cur, s->curcap);
    if (s->ctfcap * sizeof *s->ctf > KEEP) FREE_SCRATCH(s->ctf, s->ctfcap);
    if (s->cloccap * sizeof *s->cloc > KEEP) FREE_SCRATCH(s->cloc, s->cloccap);
    if (s->cdoccap * sizeof *s->cdoc > KEEP) FREE_SCRATCH(s->cdoc, s->cdoccap);
    if (s->sfreecap * sizeof *s->sfree > KEEP) FREE_SCRATCH(s->sfree, s->sfreecap);
    if (s->seencap * sizeof *s->seen > KEEP) FREE_SCRATCH(s->seen, s->seencap);
    s->ncand = 0;   /* the recorded candidates may be gone */
}

void idx_searcher_destroy(idx_searcher_t *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->pccap; i++)
        if (s->pc[i].mc) mdb_cursor_close(s->pc[i].mc);
    free(s->pc);
    if (s->txn) mdb_txn_abort(s->txn);
    idx_analyzer_destroy(s->an);
    idx_qm_free(s);
    idx_filter_free(s->flt);
    idx_srcbuf_free(&s->src);
    idx_tvec_free(&s->tv);
    ann_scratch_destroy(s->knn_scratch);
    free(s->knn_hits);
    free(s->knn_sorted);
    free(s->qvec);
    free(s->tbuf);
    free(s->qt);
    free(s->qseq);
    free(s->tptr);
    free(s->tgdf);
    free(s->cur);
    free(s->heap);
    free(s->htf);
    free(s->xdoc);
    free(s->pos);
    free(s->poff);
    free(s->bpos);
    free(s->hits);
    free(s->expl);
    free(s->sbuf);
    free(s->offs);
    free(s->ctf);
    free(s->cloc);
    free(s->cdoc);
    free(s->sfree);
    free(s->seen);
    free(s);
}

int idx_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2;
    void *n = realloc(*p, nc * elem);
    if (!n) return -ENOMEM;
    /* the new part is about to be written: map it in one call */
    fn_mem_populate((char *)n + *cap * elem, (nc - *cap) * elem);
    *p = n;
    *cap = nc;
    return 0;
}
#define grow idx_grow

/* Query analysis: distinct terms in first-occurrence order, qw = count; the
 * query's occurrences (term, position) in order, for phrases. User interest
 * terms come after the query's, as terms of their own; a structured query's
 * excluded terms after those (search_int.h). */
int idx_qterm_add(idx_searcher_t *s, const char *term, size_t len, uint32_t pos, int where, uint32_t *slot)
{
    if (len == 0 || len > IDX_MAX_TERM_BYTES) return 1;
    size_t end = s->nq + s->nu + s->nx, i;
    if (where == IDX_QT_EXCLUDED) {
        for (i = 0; i < s->nq; i++)
            if (s->qt[i].len == len && memcmp(s->tbuf + s->qt[i].off, term, len) == 0) {
                *slot = (uint32_t)i;
                return 0;
            }
        i = s->nq + s->nu;
    } else {
        i = where == IDX_QT_USER ? s->nq : 0;
    }
    for (; i < end; i++)
        if (s->qt[i].len == len && memcmp(s->tbuf + s->qt[i].off, term, len) == 0) break;
    if (i == end) {
        if (grow((void **)&s->qt, &s->qcap, i + 1, sizeof *s->qt) ||
            grow((void **)&s->tbuf, &s->tcap, s->tlen + len + 1, 1))
            return -ENOMEM;
        memcpy(s->tbuf + s->tlen, term, len);
        s->tbuf[s->tlen + len] = '\0';
        s->qt[i] = (qterm){ .off = s->tlen, .len = (uint32_t)len, .user = where == IDX_QT_USER };
        s->tlen += len + 1;
        if (where == IDX_QT_USER) s->nu++;
        else if (where == IDX_QT_EXCLUDED) s->nx++;
        else s->nq++;
    }
    *slot = (uint32_t)i;
    if (where == IDX_QT_EXCLUDED) return 0;
    s->qt[i].qw++;
    if (where == IDX_QT_QUERY) {
        if (grow((void **)&s->qseq, &s->qseqcap, s->nseq + 1, sizeof *s->qseq)) return -ENOMEM;
        s->qseq[s->nseq][0] = (uint32_t)i;
        s->qseq[s->nseq][1] = pos;
        s->nseq++;
    }
    return 0;
}

static int qtok_cb(void *ud, const char *term, size_t len, uint32_t pos)
{
    idx_searcher_t *s = ud;
    uint32_t slot;
    int rc = idx_qterm_add(s, term, len, pos, s->parsing_user ? IDX_QT_USER : IDX_QT_QUERY, &slot);
    return rc == 1 ? 0 : rc;
}

/* idx_term_bm25f of every posting of c's block at once, with the same
 * operations in the same order (so the same bits). Done a block at a time,
 * one posting's divisions do not wait for the previous posting's, as they
 * do in the document-at-a-time loop. Fields without the term are skipped
 * by selection, not by a branch: their quotient is computed and dropped. */
typedef struct share_params {
    const uint32_t *len0, *len1;
    double om_b0, om_b1, b0, b1, w0, w1, a0, a1, k1, k1p1, qidf;
} share_params;

static void share_params_of(const idx_searcher_t *s, const cursor *c, share_params *sp)
{
    const idx_reader_t *r = s->r;
    const idx_bm25_params *p = &s->bm25;
    *sp = (share_params){
        r->len[0], r->len[1], 1.0 - p->b[0], 1.0 - p->b[1], p->b[0], p->b[1], p->w[0], p->w[1],
        r->info.avglen[0], r->info.avglen[1], p->k1, p->k1 + 1.0, c->qidf,
    };
}

/* noipa (here and on share_avx2): GCC 12.2 at -O1 and up rewrites this
 * loop's stores to c->share as MEM[0B + offset] (ivopts), then takes the
 * function for pure and deletes its calls (local-pure-const, dce): every
 * share would be left unwritten. Callers must see an opaque function. */
__attribute__((noipa))
static void share_scalar(const share_params *p, cursor *c, uint32_t from)
{
    for (uint32_t i = from; i < c->n; i++) {
        uint32_t d = c->docs[i], t0 = c->tf[0][i], t1 = c->tf[1][i];
        double x0 = p->w0 * (double)t0 / (p->om_b0 + p->b0 * (double)p->len0[d] / p->a0);
        double x1 = p->w1 * (double)t1 / (p->om_b1 + p->b1 * (double)p->len1[d] / p->a1);
        double tfn = t0 ? 0.0 + x0 : 0.0;
        tfn = t1 ? tfn + x1 : tfn;
        c->share[i] = tfn <= 0.0 ? 0.0 : p->qidf * tfn * p->k1p1 / (p->k1 + tfn);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* Four postings at a time: the scalar operations lane by lane (no FMA: the
 * target has none, and -std=c11 contracts nothing), so the same bits.
 * Document numbers and frequencies under 2^31 (signed conversions and
 * gather indexes); a group with a larger one goes the scalar way. */
__attribute__((target("avx2"), noipa))
static void share_avx2(const share_params *p, cursor *c)
{
    const __m256d om0 = _mm256_set1_pd(p->om_b0), om1 = _mm256_set1_pd(p->om_b1);
    const __m256d b0 = _mm256_set1_pd(p->b0), b1 = _mm256_set1_pd(p->b1);
    const __m256d w0 = _mm256_set1_pd(p->w0), w1 = _mm256_set1_pd(p->w1);
    const __m256d a0 = _mm256_set1_pd(p->a0), a1 = _mm256_set1_pd(p->a1);
    const __m256d k1 = _mm256_set1_pd(p->k1), k1p1 = _mm256_set1_pd(p->k1p1);
    const __m256d qidf = _mm256_set1_pd(p->qidf), zero = _mm256_setzero_pd();
    uint32_t i = 0;
    for (; i + 4 <= c->n; i += 4) {
        __m128i d = _mm_loadu_si128((const __m128i *)(c->docs + i));
        __m128i t0 = _mm_loadu_si128((const __m128i *)(c->tf[0] + i));
        __m128i t1 = _mm_loadu_si128((const __m128i *)(c->tf[1] + i));
        if (_mm_movemask_ps(_mm_castsi128_ps(_mm_or_si128(d, _mm_or_si128(t0, t1))))) break;
        __m128i l0 = _mm_i32gather_epi32((const int *)p->len0, d, 4);
        __m128i l1 = _mm_i32gather_epi32((const int *)p->len1, d, 4);
        if (_mm_movemask_ps(_mm_castsi128_ps(_mm_or_si128(l0, l1)))) break;
        __m256d n0 = _mm256_add_pd(om0, _mm256_div_pd(_mm256_mul_pd(b0, _mm256_cvtepi32_pd(l0)), a0));
        __m256d n1 = _mm256_add_pd(om1, _mm256_div_pd(_mm256_mul_pd(b1, _mm256_cvtepi32_pd(l1)), a1));
        __m256d x0 = _mm256_div_pd(_mm256_mul_pd(w0, _mm256_cvtepi32_pd(t0)), n0);
        __m256d x1 = _mm256_div_pd(_mm256_mul_pd(w1, _mm256_cvtepi32_pd(t1)), n1);
        __m256d has0 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm_xor_si128(
            _mm_cmpeq_epi32(t0, _mm_setzero_si128()), _mm_set1_epi32(-1))));
        __m256d has1 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm_xor_si128(
            _mm_cmpeq_epi32(t1, _mm_setzero_si128()), _mm_set1_epi32(-1))));
        __m256d tfn = _mm256_blendv_pd(zero, _mm256_add_pd(zero, x0), has0);
        tfn = _mm256_blendv_pd(tfn, _mm256_add_pd(tfn, x1), has1);
        __m256d sh = _mm256_div_pd(_mm256_mul_pd(_mm256_mul_pd(qidf, tfn), k1p1), _mm256_add_pd(k1, tfn));
        /* tfn <= 0 ? 0 : sh (ordered compare: a NaN keeps sh, as in C) */
        __m256d le = _mm256_cmp_pd(tfn, zero, _CMP_LE_OQ);
        _mm256_storeu_pd(c->share + i, _mm256_blendv_pd(sh, zero, le));
    }
    share_scalar(p, c, i);
}

static int cpu_avx2(void)
{
    static int have = -1;   /* a benign race: every thread computes the same */
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx2") != 0;
    }
    return have;
}
#endif

static void score_block(const idx_searcher_t *s, cursor *c)
{
    share_params p;
    share_params_of(s, c, &p);
#if defined(__x86_64__) && defined(__GNUC__)
    if (cpu_avx2()) {
        share_avx2(&p, c);
        return;
    }
#endif
    share_scalar(&p, c, 0);
}

int idx_cursor_block(idx_searcher_t *s, size_t i, cursor *c)
{
    if (i >= s->pccap) {
        size_t cap = s->pccap ? s->pccap : 8;
        while (cap <= i) cap *= 2;
        struct postcur *pc = realloc(s->pc, cap * sizeof *pc);
        if (!pc) return fn_seterr(s->eb, -ENOMEM, "out of memory");
        memset(pc + s->pccap, 0, (cap - s->pccap) * sizeof *pc);
        s->pc = pc;
        s->pccap = cap;
    }
    struct postcur *p = &s->pc[i];
    int rc;
    if (!p->mc || p->gen != s->gen) {
        rc = p->mc ? mdb_cursor_renew(s->txn, p->mc) : mdb_cursor_open(s->txn, s->r->postings, &p->mc);
        if (rc) return fn_seterr(s->eb, idx_mdb_code(rc), "postings cursor: %s", mdb_strerror(rc));
        p->gen = s->gen;
        p->term = UINT32_MAX;
    }
    int next = p->term == c->termid && c->block > 0 && p->block == c->block - 1;
    p->term = UINT32_MAX;   /* until this read succeeds */
    uint32_t n;
    if ((rc = idx_block_get_cur(s->r, p->mc, next, c->termid, c->block, c->docs, c->tf[0], c->tf[1], &n,
                                s->eb)))
        return rc;
    p->term = c->termid;
    p->block = c->block;
    c->n = n;
    return 0;
}

static int load_block(idx_searcher_t *s, cursor *c)
{
    int rc = idx_cursor_block(s, (size_t)(c - s->cur), c);
    if (rc) return rc;
    uint32_t n = c->n;
    /* blocks of a term are in ascending document order */
    if (c->block > 0 && c->docs[0] <= c->doc)
        return fn_seterr(s->eb, FN_ECORRUPT, "postings of term id %u, block %u: out of order",
                         c->termid, c->block);
    c->n = n;
    c->pos = 0;
    c->offpos = c->off = 0;
    c->doc = c->docs[0];
    if (c->scored) score_block(s, c);
    return 0;
}

/* Offset of the current posting's positions in its block's positions value:
 * the tfs before it, summed from where the last call stopped (a block is
 * walked forward only, so each posting is added once at most). */
static inline uint32_t cursor_posoff(cursor *c)
{
    for (; c->offpos < c->pos; c->offpos++) c->off += c->tf[0][c->offpos] + c->tf[1][c->offpos];
    return c->off;
}

static int cursor_next(idx_searcher_t *s, cursor *c)
{
    if (++c->pos < c->n) {
        c->doc = c->docs[c->pos];
        return 0;
    }
    if (++c->block >= c->nblocks) {
        c->done = 1;
        return 0;
    }
    return load_block(s, c);
}

/* Move c to the first document >= d (or done), skipping whole blocks by
 * their last document (the skips' block ends). */
static int cursor_seek(idx_searcher_t *s, cursor *c, uint32_t d)
{
    if (c->done || c->doc >= d) return 0;
    if (c->docs[c->n - 1] < d) {
        uint32_t prev_last = c->docs[c->n - 1];
        const uint32_t *lasts;
        int rc = idx_term_lasts(s->r, s->txn, c->termid, c->nblocks, &lasts, s->eb);
        if (rc) return rc;
        if (lasts) {
            /* the kept block ends: the block that can hold d, at once */
            uint32_t b = idx_lasts_find(lasts, c->block + 1, c->nblocks, d);
            if (b >= c->nblocks) { c->done = 1; return 0; }
            c->block = b;
            prev_last = lasts[b - 1];   /* b > c->block before, so b >= 1 */
        } else {
            /* no skip data: a list of one block, which ends before d */
            c->done = 1;
            return 0;
        }
        c->doc = prev_last;   /* load_block checks the new block starts after it */
        if ((rc = load_block(s, c))) return rc;
        if (lasts && c->docs[c->n - 1] != lasts[c->block])
            return fn_seterr(s->eb, FN_ECORRUPT, "postings of term id %u, block %u: not the documents its "
                             "header said", c->termid, c->block);
    }
    while (c->doc < d) c->doc = c->docs[++c->pos];
    return 0;
}

int idx_cursor_seek(idx_searcher_t *s, cursor *c, uint32_t d) { return cursor_seek(s, c, d); }
uint32_t idx_cursor_posoff(cursor *c) { return cursor_posoff(c); }

/* a ranks before b: score descending, then key ascending */
static inline int better(const hent *a, const hent *b)
{
    return a->score > b->score || (a->score == b->score && (a->key < b->key || (a->key == b->key && a->doc < b->doc)));
}

static inline void hswap(hent *a, hent *b) { hent t = *a; *a = *b; *b = t; }

/* Median of three to the front, for the partitions below. */
static void hent_pivot(hent *h, size_t n)
{
    size_t m = n / 2;
    if (better(&h[m], &h[0])) hswap(&h[m], &h[0]);
    if (better(&h[n - 1], &h[0])) hswap(&h[n - 1], &h[0]);
    if (better(&h[n - 1], &h[m])) hswap(&h[n - 1], &h[m]);
    hswap(&h[0], &h[m]);   /* the median */
}

/* Partition h[0, n) around h[0]: returns p with h[p] the pivot, those
 * before it better, those after it worse (the order is total). */
static size_t hent_partition(hent *h, size_t n)
{
    hent_pivot(h, n);
    size_t i = 0, j = n;
    for (;;) {
        while (++i < n && better(&h[i], &h[0])) {}
        while (better(&h[0], &h[--j])) {}
        if (i >= j) break;
        hswap(&h[i], &h[j]);
    }
    hswap(&h[0], &h[j]);
    return j;
}

static void hent_insertion(hent *h, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        hent x = h[i];
        size_t j = i;
        for (; j > 0 && better(&x, &h[j - 1]); j--) h[j] = h[j - 1];
        h[j] = x;
    }
}

/* Best first (quicksort; a comparison inlined instead of qsort's call). */
static void hent_sort(hent *h, size_t n)
{
    while (n > 16) {
        size_t p = hent_partition(h, n);
        /* recurse into the smaller side: the stack stays O(log n) */
        if (p < n - p - 1) {
            hent_sort(h, p);
            h += p + 1;
            n -= p + 1;
        } else {
            hent_sort(h + p + 1, n - p - 1);
            n = p;
        }
    }
    hent_insertion(h, n);
}

/* Put the best k of h[0, n) (k < n) into h[0, k), h[k - 1] the worst of them. */
static void hent_select(hent *h, size_t n, size_t k)
{
    while (n > 16) {
        size_t p = hent_partition(h, n);
        if (p == k - 1) return;
        if (p < k - 1) {
            h += p + 1;
            n -= p + 1;
            k -= p + 1;
        } else {
            n = p;
        }
    }
    hent_insertion(h, n);
}

/* Append a NUL-terminated copy of p[0..n) to sbuf; returns its offset or (size_t)-1. */
static size_t sbuf_add(idx_searcher_t *s, const char *p, size_t n)
{
    if (grow((void **)&s->sbuf, &s->scap, s->slen + n + 1, 1)) return (size_t)-1;
    size_t off = s->slen;
    if (n) memcpy(s->sbuf + off, p, n);
    s->sbuf[off + n] = '\0';
    s->slen += n + 1;
    return off;
}

static uint64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int xdoc_cmp(const void *a, const void *b)
{
    const uint32_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

int idx_cand_terms(idx_searcher_t *s, const uint32_t *docs, size_t n, size_t nterms, int want_pos)
{
    if (!n || !nterms) return 0;
    const idx_reader_t *r = s->r;
    if (grow((void **)&s->htf, &s->htfcap, n * nterms * 2, sizeof *s->htf) ||
        grow((void **)&s->xdoc, &s->xdoccap, n, sizeof *s->xdoc) ||
        (want_pos && grow((void **)&s->poff, &s->poffcap, n * nterms * 2, sizeof *s->poff)) ||
        grow((void **)&s->cur, &s->curcap, 1, sizeof *s->cur))
        return -ENOMEM;
    memset(s->htf, 0, n * nterms * 2 * sizeof *s->htf);
    if (want_pos) memset(s->poff, 0, n * nterms * 2 * sizeof *s->poff);
    for (size_t h = 0; h < n; h++) {
        s->xdoc[h][0] = docs[h];
        s->xdoc[h][1] = (uint32_t)h;
    }
    qsort(s->xdoc, n, sizeof *s->xdoc, xdoc_cmp);
    uint32_t maxdoc = s->xdoc[n - 1][0];
    size_t npos = 0;
    cursor *c = &s->cur[0];
    for (size_t t = 0; t < nterms; t++) {
        const qterm *q = &s->qt[t];
        if (!q->found) continue;
        memset(c, 0, offsetof(cursor, docs));
        c->termid = q->termid;
        c->nblocks = q->nblocks;
        size_t x = 0;
        uint32_t prev_last = 0;
        const uint32_t *lasts;
        int rc = idx_term_lasts(r, s->txn, c->termid, c->nblocks, &lasts, s->eb);
        if (rc) return rc;
        for (c->block = 0; c->block < c->nblocks && x < n; c->block++) {
            /* skip blocks that hold none of the documents: the header says
             * where a block ends (checked against its checksum); a long
             * list's block ends are kept, and the next block that can hold
             * the next document is found by binary search */
            uint32_t first, last;
            if (lasts) {
                c->block = idx_lasts_find(lasts, c->block, c->nblocks, s->xdoc[x][0]);
                if (c->block >= c->nblocks) break;
                first = c->block ? lasts[c->block - 1] + 1 : 0;   /* a bound: no document of the term before */
                last = lasts[c->block];
            } else {
                if ((rc = idx_block_peek(r, s->txn, c->termid, c->block, &first, &last, s->eb))) return rc;
                if (c->block && first <= prev_last)
                    return fn_seterr(s->eb, FN_ECORRUPT, "postings of term id %u, block %u: out of order",
                                     c->termid, c->block);
            }
            prev_last = last;
            while (x < n && s->xdoc[x][0] < first) x++;
            if (x == n || s->xdoc[x][0] > last) continue;
            if ((rc = idx_cursor_block(s, 0, c))) return rc;
            uint32_t bn = c->n;
            if (lasts && (!bn || c->docs[0] < first || c->docs[bn - 1] != last))
                return fn_seterr(s->eb, FN_ECORRUPT, "postings of term id %u, block %u: not the documents "
                                 "its header said", c->termid, c->block);
            c->n = bn;
            uint32_t *bp = NULL;
            if (want_pos) {
                if ((rc = idx_positions_get(r, s->txn, c->termid, c->block, c->tf[0], c->tf[1], bn,
                                            &s->bpos, &s->bposcap, s->eb)))
                    return rc;
                bp = s->bpos;
            }
            uint32_t boff = 0;
            for (uint32_t p = 0; p < bn && x < n;) {
                uint32_t d = c->docs[p], want = s->xdoc[x][0];
                if (d < want) {
                    boff += c->tf[0][p] + c->tf[1][p];
                    p++;
                } else if (d > want) {
                    x++;
                } else {
                    size_t i = s->xdoc[x][1];
                    uint32_t *tf = s->htf + (i * nterms + t) * 2;
                    tf[0] = c->tf[0][p];
                    tf[1] = c->tf[1][p];
                    if (want_pos) {
                        uint32_t np = tf[0] + tf[1];
                        if (grow((void **)&s->pos, &s->poscap, npos + np, sizeof *s->pos)) return -ENOMEM;
                        memcpy(s->pos + npos, bp + boff, np * sizeof *s->pos);
                        s->poff[(i * nterms + t) * 2] = (uint32_t)npos;
                        s->poff[(i * nterms + t) * 2 + 1] = (uint32_t)(npos + tf[0]);
                        npos += np;
                    }
                    x++;   /* not p: the next entry may be the same document again */
                }
            }
            if (last >= maxdoc) break;
        }
    }
    return 0;
}

int idx_cand_recorded(const idx_searcher_t *s, const idx_hit *hits, size_t n)
{
    if (s->cand_nq != s->nq) return 0;
    for (size_t i = 0; i < n; i++)
        if (hits[i].cand >= s->ncand || s->cdoc[hits[i].cand] != hits[i].doc) return 0;
    return 1;
}

int idx_cand_positions(idx_searcher_t *s, const idx_hit *hits, size_t n)
{
    size_t nq = s->nq;
    if (!n || !nq) return 0;
    const idx_reader_t *r = s->r;
    if (grow((void **)&s->htf, &s->htfcap, n * nq * 2, sizeof *s->htf) ||
        grow((void **)&s->poff, &s->poffcap, n * nq * 2, sizeof *s->poff) ||
        grow((void **)&s->xdoc, &s->xdoccap, n, sizeof *s->xdoc))
        return -ENOMEM;
    memset(s->poff, 0, n * nq * 2 * sizeof *s->poff);
    size_t npos = 0;
    for (size_t h = 0; h < n; h++) {
        memcpy(s->htf + h * nq * 2, s->ctf + (size_t)hits[h].cand * nq * 2, nq * 2 * sizeof *s->htf);
        s->xdoc[h][0] = hits[h].doc;
        s->xdoc[h][1] = (uint32_t)h;
        const uint32_t *tf = s->htf + h * nq * 2;
        for (size_t t = 0; t < nq; t++) npos += (size_t)tf[2 * t] + tf[2 * t + 1];
    }
    if (grow((void **)&s->pos, &s->poscap, npos ? npos : 1, sizeof *s->pos)) return -ENOMEM;
    /* document order is block order for every term, and offset order
     * within a block: each positions value is read once, front to back */
    qsort(s->xdoc, n, sizeof *s->xdoc, xdoc_cmp);
    npos = 0;
    for (size_t t = 0; t < nq; t++) {
        if (!s->qt[t].found) continue;
        uint32_t termid = s->qt[t].termid, block = UINT32_MAX, count = 0, decoded = 0;
        const uint8_t *data = NULL;
        size_t size = 0, used = 0;
        for (size_t x = 0; x < n; x++) {
            size_t h = s->xdoc[x][1];
            const uint32_t *tf = s->htf + (h * nq + t) * 2;
            uint32_t np = tf[0] + tf[1];
            if (!np) continue;
            const uint32_t *loc = s->cloc[(size_t)hits[h].cand * nq + t];
            int rc;
            if (loc[0] != block) {
                block = loc[0];
                if ((rc = idx_positions_raw(r, s->txn, termid, block, &data, &size, &count, s->eb)))
                    return rc;
                used = 0;
                decoded = 0;
            }
            uint64_t end = (uint64_t)loc[1] + np;
            if (end > count)
                return fn_seterr(s->eb, FN_ECORRUPT, "positions of term id %u, block %u: %u positions, "
                                 "a posting needs %llu", termid, block, count, (unsigned long long)end);
            /* the values come in chunks of block_size: decode up to this posting's last */
            if (grow((void **)&s->bpos, &s->bposcap, count, sizeof *s->bpos)) return -ENOMEM;
            while (decoded < end) {
                uint32_t c = count - decoded < r->block_size ? count - decoded : r->block_size;
                size_t u = r->codec->decode(data + used, size - used, c, s->bpos + decoded);
                if (!u)
                    return fn_seterr(s->eb, FN_ECORRUPT, "positions of term id %u, block %u: cannot decode",
                                     termid, block);
                used += u;
                decoded += c;
            }
            /* gaps -> positions, per field */
            const uint32_t *g = s->bpos + loc[1];
            uint32_t *out = s->pos + npos;
            for (int f = 0; f < 2; f++) {
                uint64_t at = 0;
                for (uint32_t j = 0; j < tf[f]; j++, g++, out++) {
                    at += *g;
                    if (at > UINT32_MAX || (j && *g == 0))
                        return fn_seterr(s->eb, FN_ECORRUPT, "positions of term id %u, block %u: not "
                                         "ascending", termid, block);
                    *out = (uint32_t)at;
                }
            }
            s->poff[(h * nq + t) * 2] = (uint32_t)npos;
            s->poff[(h * nq + t) * 2 + 1] = (uint32_t)(npos + tf[0]);
            npos += np;
        }
    }
    return 0;
}

/* The keys of candidates h[from, to): read in one pass, a few ahead of
 * use (the keys array is large and the candidates sparse in it: one cache
 * miss each, overlapped here instead of one at a time in the merge). */
static void keys_fill(const idx_reader_t *r, hent *h, size_t from, size_t to)
{
    enum { AHEAD = 8 };
    for (size_t j = from; j < to && j < from + AHEAD; j++) __builtin_prefetch(&r->keys[h[j].doc]);
    for (size_t j = from; j < to; j++) {
        if (j + AHEAD < to) __builtin_prefetch(&r->keys[h[j + AHEAD].doc]);
        h[j].key = r->keys[h[j].doc];
    }
}

/* Move the non-essential cursor c (pruning, run_query) to its first
 * document >= d, counting as matches the documents it passes that nobody
 * has counted yet (s->seen): those the merge did not visit. Only documents
 * below the merge's position are passed, and the merge has visited every
 * one of those that an essential list holds. */
static int ne_advance(idx_searcher_t *s, cursor *c, uint32_t d, uint64_t *counted)
{
    uint64_t *seen = s->seen, n = 0;
    while (!c->done && c->doc < d) {
        uint32_t p = c->pos;
        for (; p < c->n && c->docs[p] < d; p++) {
            uint32_t x = c->docs[p];
            uint64_t m = 1ull << (x & 63);
            n += !(seen[x >> 6] & m);
            seen[x >> 6] |= m;
        }
        if (p < c->n) {
            c->pos = p;
            c->doc = c->docs[p];
            break;
        }
        c->pos = c->n - 1;
        c->doc = c->docs[c->n - 1];   /* load_block checks the next block starts after it */
        if (++c->block >= c->nblocks) {
            c->done = 1;
            break;
        }
        int rc = load_block(s, c);
        if (rc) return rc;
    }
    *counted += n;
    return 0;
}

typedef struct run_args {
    const idx_query *q;
    idx_results *res;
} run_args;

enum { MAXQ = 256 };   /* query terms pruning handles */

/* Block-max WAND (Ding & Suel, SIGIR 2011) over the query cursors. */
typedef struct bmw_state {
    size_t n;                    /* cursors in play (not done) */
    uint32_t ord[MAXQ];          /* ... by current document */
    double ub[MAXQ];             /* a list's bound: qw idf (k1 + 1), with the margin */
    const uint32_t *lasts[MAXQ]; /* skips: block ends (NULL: one block) */
    const float *bmax[MAXQ];     /* skips: block maxima of the tf part */
    double one[MAXQ];            /* a one-block list's largest share, with the margin */
    uint64_t skips, iter, deadline_ns;
} bmw_state;

/* The next document that could beat the bar (theta, once have_bar) into *d:
 * returns 1, or 0 when none is left, or an error. With the cursors sorted by
 * document, the pivot is the first at which the lists' bounds add up to the
 * bar; documents before it hold only lists that cannot reach it. If the
 * maxima of the blocks holding the pivot's document cannot reach it either,
 * every document up to the first of those blocks' ends (and before the
 * next list's document) is passed over unread. Bounds carry a relative
 * margin of 1e-9, as MaxScore's. */
static int bmw_next(idx_searcher_t *s, bmw_state *w, int have_bar, double theta, uint32_t *d)
{
    int rc;
    for (;;) {
        if (w->deadline_ns && (++w->iter & 4095) == 0 && mono_ns() > w->deadline_ns)
            return fn_seterr(s->eb, -ETIMEDOUT, "search stopped at the deadline after %" PRIu64 " skips", w->skips);
        size_t n = 0;
        for (size_t j = 0; j < w->n; j++)
            if (!s->cur[w->ord[j]].done) w->ord[n++] = w->ord[j];
        w->n = n;
        for (size_t j = 1; j < n; j++)   /* nearly sorted: insertion */
            for (size_t i = j; i > 0 && s->cur[w->ord[i]].doc < s->cur[w->ord[i - 1]].doc; i--) {
                uint32_t t = w->ord[i]; w->ord[i] = w->ord[i - 1]; w->ord[i - 1] = t;
            }
        if (!n) return 0;
        if (!have_bar) {
            *d = s->cur[w->ord[0]].doc;
            return 1;
        }
        double acc = 0.0;
        size_t p = 0;
        for (; p < n; p++) {
            acc += w->ub[w->ord[p]];
            if (acc >= theta) break;
        }
        if (p == n) return 0;
        uint32_t pd = s->cur[w->ord[p]].doc;
        while (p + 1 < n && s->cur[w->ord[p + 1]].doc == pd) p++;
        /* the maxima of the blocks that hold pd, and where the first ends */
        double bsum = 0.0;
        uint32_t end = UINT32_MAX;
        for (size_t j = 0; j <= p; j++) {
            size_t i = w->ord[j];
            const cursor *c = &s->cur[i];
            uint32_t last;
            if (w->lasts[i]) {
                uint32_t b = c->block;
                if (w->lasts[i][b] < pd) b = idx_lasts_find(w->lasts[i], b + 1, c->nblocks, pd);
                if (b >= c->nblocks) continue;   /* nothing at or after pd */
                bsum += c->qidf * (double)w->bmax[i][b] * (1.0 + 1e-9);
                last = w->lasts[i][b];
            } else {
                last = c->docs[c->n - 1];
                if (last < pd) continue;
                bsum += w->one[i];
            }
            if (last < end) end = last;
        }
        if (bsum >= theta) {
            if (s->cur[w->ord[0]].doc == pd) {
                *d = pd;
                return 1;
            }
            for (size_t j = 0; j < p; j++)
                if (s->cur[w->ord[j]].doc < pd && (rc = cursor_seek(s, &s->cur[w->ord[j]], pd))) return rc;
            continue;
        }
        /* nothing in [pd, end] can beat the bar (end >= pd: the pivot's own block) */
        uint32_t to = end + 1;
        if (p + 1 < n && s->cur[w->ord[p + 1]].doc < to) to = s->cur[w->ord[p + 1]].doc;
        w->skips++;
        for (size_t j = 0; j <= p; j++)
            if (s->cur[w->ord[j]].doc < to && (rc = cursor_seek(s, &s->cur[w->ord[j]], to))) return rc;
    }
}

/* Cursor c's share of document d (its current posting): the block's,
 * or, when blocks are not scored as they load (a filter-driven merge reads
 * few of each block's postings), the same value computed for this one. */
static inline double cur_share(const idx_searcher_t *s, const cursor *c, uint32_t d)
{
    if (c->scored) return c->share[c->pos];
    uint32_t tf[IDX_NFIELDS] = { c->tf[0][c->pos], c->tf[1][c->pos] };
    return idx_term_bm25f(s->r, &s->bm25, c->qidf, d, tf);
}

/* The selection proper; runs inside idx_search's guard and read transaction. */
static int run_query(idx_searcher_t *s, void *ud)
{
    run_args *a = ud;
    const idx_query *q = a->q;
    idx_results *res = a->res;
    const idx_reader_t *r = s->r;
    const idx_bm25_params *bp = &s->bm25;
    const idx_select_params *sp = &s->sel;
    fn_errbuf *eb = s->eb;
    size_t nq = s->nq, nt = s->nq + s->nu, nx = s->nx;
    int rc;
    /* a structured query: every positive list walked, each document tested
     * against the tree (idx_qm_match) before it is scored */
    int tree = s->structured, all_terms = s->bag_all && !tree;
    if (grow((void **)&s->cur, &s->curcap, nt + nx + 1, sizeof *s->cur)) return -ENOMEM;
    /* look the terms up; idf from the global df */
    double N = (double)r->info.docs_total;
    size_t active = 0;
    uint64_t maxdf = 0;   /* the longest query term list here: a lower bound of the matches */
    for (size_t i = 0; i < nt + nx; i++) {
        qterm *t = &s->qt[i];
        cursor *c = &s->cur[i];
        memset(c, 0, offsetof(cursor, docs));
        c->done = 1;
        t->found = 0;
        t->gdf = 0;
        t->gcf[0] = t->gcf[1] = 0;
        idx_term_rec tr;
        rc = idx_term_get(r, s->txn, s->tbuf + t->off, t->len, &tr, eb);
        if (rc == 0) {
            c->termid = t->termid = tr.termid;
            c->nblocks = t->nblocks = tr.nblocks;
            t->gdf = tr.gdf;
            t->gcf[0] = tr.gcf[0];
            t->gcf[1] = tr.gcf[1];
            t->found = tr.df > 0;   /* every shard knows every term; postings only where df > 0 */
            if (i < nq && tr.df > maxdf) maxdf = tr.df;
        } else if (rc != FN_ENOTFOUND) {
            return rc;
        }
        double gdf = (double)t->gdf;
        t->idf = log(1.0 + (N - gdf + 0.5) / (gdf + 0.5));
        if (t->found) {
            c->done = 0;
            c->block = 0;
            c->scored = i < nq;
            c->qidf = (double)t->qw * t->idf;
            if ((rc = load_block(s, c))) return rc;
            if (i < nq) active++;
        }
    }
    /* The filter (attrs.h): a selective one lists the documents that pass
     * (a bitmap) and drives the merge (fb: the next listed document is
     * fcur), any other is asked per document (fcheck) */
    const uint64_t *fb = NULL;
    size_t fwords = (size_t)r->info.docs / 64 + 1;
    uint32_t fcur = 0;
    int fcheck = 0, filtered = q->filter != NULL;
    if (filtered) {
        if ((rc = idx_filter_compile(s, q->filter, &s->flt, eb))) return rc;
        if ((rc = idx_filter_drive(s->flt, &fb)) < 0) return fn_seterr(eb, rc, "out of memory");
        fcheck = !rc;
        if (fb) fcur = idx_bits_next(fb, fwords, 0);   /* always a listed document (or none: UINT32_MAX) */
        /* driven: a block's postings are mostly passed over, so shares are
         * computed for the postings that are read, not for whole blocks */
        for (size_t i = 0; fb && i < nq; i++) s->cur[i].scored = 0;
    }
    double user_w = sp->w_user;
    double half_life = sp->half_life_days > 0 ? sp->half_life_days * 86400.0 : 30 * 86400.0;
    int statics = sp->w_popularity != 0 || sp->w_freshness != 0;

    /* Pruning (MaxScore). A term's BM25F share is below ub = qw idf (k1+1)
     * (tfn / (k1 + tfn) < 1 for k1 > 0 and tfn >= 0). Once there is a bar
     * (below), the terms of smallest ub whose ubs together stay under it
     * are non-essential: a document holding only those cannot beat the bar,
     * so the merge walks the essential lists only, and asks the others
     * about a document only when its essential shares and their ubs
     * together could beat it, seeking to it over whole blocks. With
     * exact_matches the others are walked in full instead, to count the
     * documents only they hold, once each (s->seen). Scores are the
     * same sums in query order; everything that is not plain BM25F over
     * the query terms (static signals, interest terms, odd settings) keeps
     * the exhaustive merge. The bounds carry a relative margin of 1e-9 for
     * rounding (the sums' own error is under 1e-13). */
    double ub[MAXQ], ne_ub = 0;
    size_t ord[MAXQ], m = 0, np = 0;
    int count = q->exact_matches;
    /* plain BM25F over the query terms: what the bounds hold for */
    int plain = q->algo != IDX_ALGO_EXHAUSTIVE && nq >= 1 && nq <= MAXQ && (user_w == 0 || nt == nq) &&
                !statics && bp->k1 > 0 && !all_terms && !tree && !(filtered && q->exact_matches);
    /* all terms (AND): a query term without postings here leaves nothing */
    for (size_t i = 0; i < nq && all_terms; i++)
        if (!s->qt[i].found) active = 0;
    for (int f = 0; f < IDX_NFIELDS && plain; f++)
        plain = bp->w[f] >= 0 && bp->b[f] >= 0 && bp->b[f] <= 1 && r->info.avglen[f] >= 0;   /* 0: a field no document has (npl's titles) */
    for (size_t i = 0; i < nq && plain; i++) {
        if (!s->qt[i].found) continue;
        if (!(s->cur[i].qidf > 0)) plain = 0;
        ub[i] = s->cur[i].qidf * (bp->k1 + 1.0) * (1.0 + 1e-9);
        ord[m++] = i;
    }
    /* BMW's block maxima hold at the index's blockmax settings only */
    const idx_bm25_params *ibm = &r->bm;
    int bmok = plain && m >= 1 && !count && bp->k1 == ibm->k1 && bp->b[0] == ibm->b[0] &&
               bp->b[1] == ibm->b[1] && bp->w[0] == ibm->w[0] && bp->w[1] == ibm->w[1];
    int bmw = bmok && q->algo == IDX_ALGO_BMW && !filtered;
    bmw_state bw;
    if (bmok) {
        bw.n = 0;
        bw.skips = bw.iter = 0;
        bw.deadline_ns = q->deadline_ns;
        for (size_t j = 0; j < m; j++) {
            size_t i = ord[j];
            cursor *c = &s->cur[i];
            bw.ord[bw.n++] = (uint32_t)i;
            bw.ub[i] = ub[i];
            if ((rc = idx_term_skips(r, s->txn, c->termid, c->nblocks, &bw.lasts[i], &bw.bmax[i], eb))) return rc;
            bw.one[i] = 0.0;   /* one block (no skips): its maximum is known, it is loaded */
            for (uint32_t p = 0; !bw.lasts[i] && p < c->n; p++)
                if (c->share[p] > bw.one[i]) bw.one[i] = c->share[p];
            bw.one[i] *= 1.0 + 1e-9;
        }
    }
    int prune = plain && !bmw && m >= 2;
    if (prune && count) {
        size_t words = (size_t)r->info.docs / 64 + 1;
        if (grow((void **)&s->seen, &s->seencap, words, sizeof *s->seen)) return -ENOMEM;
        memset(s->seen, 0, words * sizeof *s->seen);
    }
    if (prune) {
        for (size_t i = 1; i < m; i++)   /* by ub, ascending (insertion: a few terms) */
            for (size_t j = i; j > 0 && ub[ord[j]] < ub[ord[j - 1]]; j--) {
                size_t t = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = t;
            }
    }

    /* DAAT OR over the (essential) query terms; interest terms only add */
    size_t kk = q->k < r->info.docs ? q->k : (size_t)r->info.docs;
    if (kk == 0) kk = 1;
    size_t nrec = nq ? nq : 1;
    /* The candidates so far: a buffer of up to 2 kk; when it is full, the
     * best kk stay and the worst of them is the bar a document must beat
     * from then on (amortised O(1) a candidate, where a heap of kk costs
     * O(log kk)). Each entry has a slot for what the selection read. */
    size_t cap = 2 * kk;
    /* Recording costs 16 bytes per candidate slot and query term (a k=10000
     * query of 200 terms: 64 MB to touch): only when features will be
     * computed. Without it features walk the postings again: same values. */
    int record = !q->no_record;
    if (grow((void **)&s->heap, &s->hcap, cap, sizeof *s->heap) ||
        (record && grow((void **)&s->ctf, &s->ctfcap, cap * nrec * 2, sizeof *s->ctf)) ||
        (record && grow((void **)&s->cloc, &s->cloccap, cap * nrec, sizeof *s->cloc)) ||
        grow((void **)&s->cdoc, &s->cdoccap, cap, sizeof *s->cdoc) ||
        grow((void **)&s->sfree, &s->sfreecap, cap, sizeof *s->sfree))
        return -ENOMEM;
    size_t nh = 0, nfree = 0, nkey = 0;   /* heap[0, nkey) have their keys */
    hent bar = { 0, 0, 0, 0 };
    int have_bar = 0;
    for (size_t i = 0; i < cap; i++) {
        s->sfree[nfree++] = (uint32_t)(cap - 1 - i);
        s->cdoc[i] = UINT32_MAX;   /* nothing recorded (documents are < UINT32_MAX) */
    }
    uint64_t matches = 0, counted = 0;   /* visited by the merge; counted by pruned lists */
    uint64_t fpos_iter = 0;
    uint32_t fprobe[MAXQ] = { 0 };
    int fskipped = 0;   /* driven: per list, the block the last bound looked at */
    while (active || bmw) {
        /* the deadline is checked every 4096 documents: a few hundred us */
        if (q->deadline_ns && (matches & 4095) == 4095 && mono_ns() > q->deadline_ns)
            return fn_seterr(eb, -ETIMEDOUT, "search stopped at the deadline after %" PRIu64
                             " matching documents", matches + counted);
        if (all_terms) {
            /* leapfrog: every list to the largest current document until
             * they all stand on one (a match) or one runs out (the end) */
            uint32_t to = 0;
            int stop = 0;
            for (uint64_t round = 1;; round++) {
                int agree = 1;
                for (size_t i = 0; i < nq; i++)
                    if (s->cur[i].doc > to) to = s->cur[i].doc;
                for (size_t i = 0; i < nq && !stop; i++) {
                    if ((rc = cursor_seek(s, &s->cur[i], to))) return rc;
                    stop = s->cur[i].done;
                    agree &= s->cur[i].doc == to;
                }
                if (stop || agree) break;
                if (q->deadline_ns && (round & 4095) == 0 && mono_ns() > q->deadline_ns)
                    return fn_seterr(eb, -ETIMEDOUT, "search stopped at the deadline after %" PRIu64
                                     " matching documents", matches);
            }
            if (stop) break;
        }
        uint32_t d = UINT32_MAX;
        if (bmw) {
            if ((rc = bmw_next(s, &bw, have_bar, bar.score, &d)) < 0) return rc;
            if (!rc) break;
        } else {
            for (size_t i = 0; i < nq; i++)
                if (!s->cur[i].done && !s->cur[i].ne && s->cur[i].doc < d) d = s->cur[i].doc;
        }
        if (fb) {
            /* driven by the filter's list: the merge's lists jump to the
             * next document that passes, over whole blocks (their ends) */
            if (fcur < d) fcur = idx_bits_next(fb, fwords, d);
            if (fcur == UINT32_MAX) break;
            if (have_bar && bmok) {
                /* the block maxima of the blocks that could hold the next
                 * listed document, from the skips (no block read): under
                 * the bar, it is passed over (block-max, as BMW) */
                uint32_t f = fcur, end = UINT32_MAX;
                double bub = 0.0;
                for (size_t i = 0; i < nq; i++) {
                    const cursor *c = &s->cur[i];
                    if (c->done) continue;
                    if (bw.lasts[i]) {
                        uint32_t b = fprobe[i] < c->block ? c->block : fprobe[i];
                        while (b < c->nblocks && bw.lasts[i][b] < f) b++;
                        fprobe[i] = b;
                        if (b < c->nblocks) {
                            bub += c->qidf * (double)bw.bmax[i][b] * (1.0 + 1e-9);
                            if (bw.lasts[i][b] < end) end = bw.lasts[i][b];
                        }
                    } else if (c->docs[c->n - 1] >= f) {
                        bub += bw.one[i];
                        if (c->docs[c->n - 1] < end) end = c->docs[c->n - 1];
                    }
                }
                if (bub * (1.0 + 1e-9) < bar.score) {
                    /* every listed document up to the first of those
                     * blocks' ends lies in the same blocks: passed over too */
                    fcur = end == UINT32_MAX ? UINT32_MAX : idx_bits_next(fb, fwords, end + 1);
                    bw.skips++;
                    fskipped = 1;   /* not visited: the count is a lower bound */
                    if (q->deadline_ns && (++fpos_iter & 4095) == 0 && mono_ns() > q->deadline_ns)
                        return fn_seterr(eb, -ETIMEDOUT, "search stopped at the deadline after %" PRIu64
                                         " matching documents", matches);
                    continue;
                }
            }
            if (fcur > d) {
                for (size_t i = 0; i < nq; i++) {
                    cursor *c = &s->cur[i];
                    if (c->done || c->ne || c->doc >= fcur) continue;
                    if ((rc = cursor_seek(s, c, fcur))) return rc;
                    if (c->done) active--;
                }
                if (q->deadline_ns && (++fpos_iter & 4095) == 0 && mono_ns() > q->deadline_ns)
                    return fn_seterr(eb, -ETIMEDOUT, "search stopped at the deadline after %" PRIu64
                                     " matching documents", matches);
                continue;
            }
        }
        if (tree) {
            if ((rc = idx_qm_match(s, d)) < 0) return rc;
            if (!rc) goto next;
        }
        double score = 0.0;
        if (prune && count) s->seen[d >> 6] |= 1ull << (d & 63);
        if (!np) {
            if (fcheck && !idx_filter_match(s->flt, d)) goto next;
            for (size_t i = 0; i < nq; i++) {
                cursor *c = &s->cur[i];
                if (c->done || c->doc != d) continue;
                score += cur_share(s, c, d);   /* = idx_term_bm25f(..., d, its tfs) */
            }
        } else {
            double ess = 0.0;
            for (size_t i = 0; i < nq; i++) {
                cursor *c = &s->cur[i];
                if (!c->ne && !c->done && c->doc == d) ess += cur_share(s, c, d);
            }
            if ((ess + ne_ub) * (1.0 + 1e-9) < bar.score) {   /* cannot beat the bar */
                matches += !fcheck;   /* with a filter not asked: not counted (a lower bound) */
                goto next;
            }
            if (bmok) {
                /* the same with the maxima of the non-essential lists' blocks
                 * that could hold d, found in the skips without reading a
                 * block (block-max MaxScore) */
                double bub = ess;
                for (size_t i = 0; i < nq; i++) {
                    const cursor *c = &s->cur[i];
                    if (!c->ne || c->done) continue;
                    if (bw.lasts[i]) {
                        uint32_t b = c->block;
                        if (bw.lasts[i][b] < d) b = idx_lasts_find(bw.lasts[i], b + 1, c->nblocks, d);
                        if (b < c->nblocks) bub += c->qidf * (double)bw.bmax[i][b] * (1.0 + 1e-9);
                    } else if (c->docs[c->n - 1] >= d) {
                        bub += bw.one[i];
                    }
                }
                if (bub * (1.0 + 1e-9) < bar.score) {
                    matches += !fcheck;
                    bw.skips++;
                    goto next;
                }
            }
            /* the filter, asked only about a document that could beat the bar */
            if (fcheck && !idx_filter_match(s->flt, d)) goto next;
            for (size_t i = 0; i < nq; i++) {
                cursor *c = &s->cur[i];
                if (c->ne && (rc = count ? ne_advance(s, c, d, &counted) : cursor_seek(s, c, d))) return rc;
            }
            for (size_t i = 0; i < nq; i++) {
                cursor *c = &s->cur[i];
                if (c->done || c->doc != d) continue;
                if (!c->ne) {
                    score += cur_share(s, c, d);
                } else {
                    uint32_t tf[IDX_NFIELDS] = { c->tf[0][c->pos], c->tf[1][c->pos] };
                    score += idx_term_bm25f(r, bp, c->qidf, d, tf);   /* = what share[] would hold */
                }
            }
        }
        if (user_w != 0) {
            double u = 0.0;
            for (size_t i = nq; i < nt; i++) {
                cursor *c = &s->cur[i];
                if ((rc = cursor_seek(s, c, d))) return rc;
                if (c->done || c->doc != d) continue;
                uint32_t tf[IDX_NFIELDS] = { c->tf[0][c->pos], c->tf[1][c->pos] };
                u += idx_term_bm25f(r, bp, (double)s->qt[i].qw * s->qt[i].idf, d, tf);
            }
            score += user_w * u;
        }
        if (statics) {
            score += sp->w_popularity * log1p((double)r->pop[d]);
            if (sp->w_freshness != 0 && r->pub[d] != IDX_NO_TIME) {
                double age = (double)(s->now - r->pub[d]);
                score += sp->w_freshness * exp2(-(age > 0 ? age : 0) / half_life);
            }
        }
        matches++;
        /* below the bar: out, without reading its key */
        if (have_bar && score < bar.score) goto next;
        if (q->exclude && q->exclude(q->exclude_ud, r->keys[d])) goto next;
        /* a candidate's key (the tie-break) is read later, many at once
         * (keys_fill), unless its score ties the bar's */
        hent e = { score, 0, d, 0 };
        if (have_bar && score == bar.score) {
            e.key = r->keys[d];
            if (!better(&e, &bar)) goto next;
        }
        {
            /* a candidate (for now): keep what the cursors say about it, so
             * that features need not read the postings again */
            int new_bar = 0;
            if (nh == cap) {
                keys_fill(r, s->heap, nkey, nh);
                hent_select(s->heap, nh, kk);
                for (size_t j = kk; j < nh; j++) s->sfree[nfree++] = s->heap[j].slot;
                nh = nkey = kk;
                bar = s->heap[kk - 1];
                have_bar = new_bar = 1;
                if (score < bar.score) goto rebar;
                if (score == bar.score) {
                    e.key = r->keys[d];
                    if (!better(&e, &bar)) goto rebar;
                }
            }
            e.slot = s->sfree[--nfree];
            uint32_t *tf = record ? s->ctf + (size_t)e.slot * nrec * 2 : NULL;
            uint32_t (*loc)[2] = record ? s->cloc + (size_t)e.slot * nrec : NULL;
            for (size_t i = 0; record && i < nq; i++) {
                cursor *c = &s->cur[i];
                if (c->done || c->doc != d) {
                    tf[2 * i] = tf[2 * i + 1] = 0;
                    continue;
                }
                tf[2 * i] = c->tf[0][c->pos];
                tf[2 * i + 1] = c->tf[1][c->pos];
                loc[i][0] = c->block;
                loc[i][1] = cursor_posoff(c);
            }
            s->cdoc[e.slot] = d;
            s->heap[nh++] = e;
            if (!have_bar && nh == kk) {
                /* kk candidates: the worst of them is a bar already */
                keys_fill(r, s->heap, nkey, nh);
                nkey = nh;
                bar = s->heap[0];
                for (size_t j = 1; j < nh; j++)
                    if (better(&bar, &s->heap[j])) bar = s->heap[j];
                have_bar = new_bar = 1;
            }
rebar:
            /* a higher bar: more terms may become non-essential */
            while (new_bar && prune && np < m && (ne_ub + ub[ord[np]]) * (1.0 + 1e-9) < bar.score) {
                cursor *c = &s->cur[ord[np]];
                ne_ub += ub[ord[np]];
                np++;
                c->ne = 1;
                c->scored = 0;   /* its shares are computed when asked for */
                if (!c->done) active--;
            }
        }
next:
        for (size_t i = 0; i < nq; i++) {
            cursor *c = &s->cur[i];
            if (c->done || c->ne || c->doc != d) continue;
            if ((rc = cursor_next(s, c))) return rc;
            if (c->done) active--;
        }
    }
    /* the rest of the non-essential lists: their documents the merge did
     * not visit are matches too */
    for (size_t i = 0; i < nq && count; i++)
        if (s->cur[i].ne && (rc = ne_advance(s, &s->cur[i], UINT32_MAX, &counted))) return rc;
    matches += counted;
    /* pruned without counting: the merge saw every document of the
     * essential lists, not all of the others' */
    /* BMW passes over documents once there is a bar */
    res->matches_exact = (!np && !(bmw && have_bar) && !fskipped) || count;
    res->algo = bmw ? IDX_ALGO_BMW : prune ? IDX_ALGO_MAXSCORE : IDX_ALGO_EXHAUSTIVE;
    res->pruned_lists = (uint32_t)np;
    res->skips = bmok ? bw.skips : 0;
    if (!res->matches_exact && matches < maxdf && !filtered) matches = maxdf;
    /* the best kk, best first (the order is total: score, key, doc) */
    keys_fill(r, s->heap, nkey, nh);
    if (nh > kk) {
        hent_select(s->heap, nh, kk);
        nh = kk;
    }
    hent_sort(s->heap, nh);

    /* results; stored fields and explain come after (run_select) */
    if (grow((void **)&s->hits, &s->hitcap, nh + 1, sizeof *s->hits)) return -ENOMEM;
    for (size_t h = 0; h < nh; h++) {
        idx_hit *hit = &s->hits[h];
        memset(hit, 0, sizeof *hit);
        hit->doc = s->heap[h].doc;
        hit->key = s->heap[h].key;
        hit->score = s->heap[h].score;
        hit->cand = s->heap[h].slot;
    }
    res->hits = s->hits;
    res->nhits = nh;
    res->matches = matches;
    s->ncand = record ? cap : 0;   /* slots; cdoc says which hold this query's documents */
    s->cand_nq = nq;
    return 0;
}

/* Per-term explain of hits[0, n): their frequencies from a second walk over
 * the postings (the search itself keeps no per-document frequencies). */
static int explain_hits(idx_searcher_t *s, idx_hit *hits, size_t n)
{
    size_t nq = s->nq;
    if (!n || !nq) return 0;
    if (grow((void **)&s->expl, &s->explcap, n * nq, sizeof *s->expl)) return -ENOMEM;
    uint32_t *docs = malloc(n * sizeof *docs);
    if (!docs) return -ENOMEM;
    for (size_t h = 0; h < n; h++) docs[h] = hits[h].doc;
    int rc = idx_cand_terms(s, docs, n, nq, 0);
    free(docs);
    if (rc) return rc;
    for (size_t h = 0; h < n; h++) {
        idx_hit *hit = &hits[h];
        hit->terms = s->expl + h * nq;
        const uint32_t *tf = s->htf + h * nq * 2;
        for (size_t i = 0; i < nq; i++) {
            idx_term_explain *x = &hit->terms[i];
            x->term = s->tptr[i];
            x->qw = s->qt[i].qw;
            x->gdf = s->qt[i].gdf;
            x->idf = s->qt[i].idf;
            x->tf[0] = tf[2 * i];
            x->tf[1] = tf[2 * i + 1];
            x->contribution = idx_term_bm25f(s->r, &s->bm25, (double)s->qt[i].qw * s->qt[i].idf,
                                             hit->doc, x->tf);
        }
    }
    return 0;
}

/* Stored fields of hits[0, n) into sbuf; pointers set last (sbuf moves). */
static int fetch_fields(idx_searcher_t *s, idx_hit *hits, size_t n)
{
    if (grow((void **)&s->offs, &s->offscap, n + 1, sizeof *s->offs) ||
        grow((void **)&s->xdoc, &s->xdoccap, n ? n : 1, sizeof *s->xdoc))
        return -ENOMEM;
    /* in document order: the records lie in key order in the file */
    for (size_t h = 0; h < n; h++) {
        s->xdoc[h][0] = hits[h].doc;
        s->xdoc[h][1] = (uint32_t)h;
    }
    qsort(s->xdoc, n, sizeof *s->xdoc, xdoc_cmp);
    for (size_t x = 0; x < n; x++) {
        size_t h = s->xdoc[x][1];
        idx_doc_rec dr;
        int rc = idx_doc_get(s->r, s->txn, hits[h].doc, &dr, s->eb);
        if (rc) return rc;
        size_t *o = s->offs[h];
        if ((o[0] = sbuf_add(s, dr.id, dr.id_len)) == (size_t)-1 ||
            (o[1] = sbuf_add(s, dr.title, dr.title_len)) == (size_t)-1 ||
            (o[2] = sbuf_add(s, dr.url, dr.url_len)) == (size_t)-1)
            return -ENOMEM;
    }
    for (size_t h = 0; h < n; h++) {
        hits[h].id = s->sbuf + s->offs[h][0];
        hits[h].title = s->sbuf + s->offs[h][1];
        hits[h].url = s->sbuf + s->offs[h][2];
    }
    return 0;
}

static int run_select(idx_searcher_t *s, void *ud)
{
    run_args *a = ud;
    const idx_query *q = a->q;
    idx_results *res = a->res;
    int rc = run_query(s, ud);
    if (rc == 0 && q->explain) {
        size_t n = q->explain_hits && q->explain_hits < res->nhits ? q->explain_hits : res->nhits;
        rc = explain_hits(s, res->hits, n);
    }
    if (rc == 0 && !q->no_fields) rc = fetch_fields(s, res->hits, res->nhits);
    return rc;
}

/* The query's transaction is over (idx_searcher_release, the next query). */
static void txn_end(idx_searcher_t *s)
{
    if (!s->txn_live) return;
    mdb_txn_reset(s->txn);
    s->txn_live = 0;
}

int idx_searcher_run(idx_searcher_t *s, int (*fn)(idx_searcher_t *s, void *ud), void *ud)
{
    int rc;
    if (!s->txn_live) {
        /* a sealed file that changed under us is damaged: do not read it */
        if ((rc = idx_reader_check(s->r, s->eb))) return rc;
        if ((rc = mdb_txn_renew(s->txn))) return fn_seterr(s->eb, idx_mdb_code(rc), "txn: %s", mdb_strerror(rc));
        s->txn_live = 1;
        s->gen++;   /* the postings cursors are renewed when next used */
    }
    idx_guard g;
    if (idx_guard_enter(&g, s->r->map, s->r->mapsize) == 0) {
        if (sigsetjmp(g.jb, 0) != 0) {
            txn_end(s);
            return fn_seterr(s->eb, FN_ECORRUPT, "%s/data.mdb: %s (while open)", s->r->dir,
                             idx_guard_what(&g));
        }
    }
    rc = fn(s, ud);
    idx_guard_leave(&g);
    if (rc) txn_end(s);   /* after an error the next call starts afresh */
    return rc;
}

static const char *const algo_names[IDX_ALGO_COUNT] = { "auto", "exhaustive", "maxscore", "bmw" };

const char *idx_algo_name(idx_algo a)
{
    return (unsigned)a < IDX_ALGO_COUNT ? algo_names[a] : NULL;
}

int idx_algo_parse(const char *name)
{
    for (int a = 0; name && a < IDX_ALGO_COUNT; a++)
        if (strcmp(algo_names[a], name) == 0) return a;
    return -1;
}

int idx_search(idx_searcher_t *s, const idx_query *q, idx_results *res, fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    memset(res, 0, sizeof *res);
    res->matches_exact = 1;   /* until a pruned selection says otherwise */
    if (!q || !q->text || q->k == 0) return fn_seterr(eb, FN_EINVAL, "query text and k >= 1 are required");
    if ((unsigned)q->algo >= IDX_ALGO_COUNT) return fn_seterr(eb, FN_EINVAL, "unknown selection algorithm %d", (int)q->algo);
    uint64_t t0 = mono_ns();
    if (q->bm25) s->bm25 = *q->bm25;
    else idx_bm25_defaults(&s->bm25);
    if (q->sel) s->sel = *q->sel;
    else idx_select_defaults(&s->sel);
    s->now = q->now ? q->now : (int64_t)time(NULL);
    fn_errbuf local;
    s->eb = eb ? eb : &local;
    s->qvdim = 0;
    if (q->vec && q->vdim) {
        if (q->vdim != s->r->info.vec_dim)
            return fn_seterr(eb, FN_EINVAL, "vector: %u numbers, the index's vectors have %u", q->vdim,
                             s->r->info.vec_dim);
        if (grow((void **)&s->qvec, &s->qveccap, q->vdim, sizeof *s->qvec))
            return fn_seterr(eb, -ENOMEM, "out of memory");
        for (uint32_t i = 0; i < q->vdim; i++) {
            if (!isfinite(q->vec[i])) return fn_seterr(eb, FN_EINVAL, "vector[%u]: not a finite number", i);
            s->qvec[i] = q->vec[i];
        }
        s->qvdim = q->vdim;
    }

    txn_end(s);   /* a query reads one snapshot, from its own start */
    s->nq = s->nu = s->nseq = 0;
    s->ncand = 0;
    s->tlen = 0;
    s->slen = 0;
    s->parsing_user = 0;
    s->nx = 0;
    s->structured = 0;
    /* the query language (docs/query-language.md): a plain bag of words is
     * analysed whole, as ever; anything else becomes a tree of terms */
    const char *bag_text = NULL;
    s->bag_all = q->all_terms;
    int rc = q->plain_text ? 0 : idx_qm_prepare(s, q->text, q->all_terms, &s->structured, &bag_text, &s->bag_all);
    if (rc) return rc;
    if (!s->structured) {
        const char *t = bag_text ? bag_text : q->text;
        rc = idx_analyze(s->an, t, strlen(t), qtok_cb, s);
    }
    if (!rc && q->user_terms && s->sel.w_user != 0) {
        s->parsing_user = 1;
        rc = idx_analyze(s->an, q->user_terms, strlen(q->user_terms), qtok_cb, s);
        s->parsing_user = 0;
    }
    if (!rc) rc = idx_qm_negatives(s);
    if (rc) return fn_seterr(eb, rc < 0 ? rc : -ENOMEM, "query analysis failed");
    size_t nq = s->nq;
    if (q->max_terms && nq + s->nx > q->max_terms)
        return fn_seterr(eb, FN_ELIMIT, "query: %zu distinct terms after analysis, over the limit "
                         "of %u (max-query-terms)", nq + s->nx, (unsigned)q->max_terms);
    if (q->max_terms && s->nu > q->max_terms)
        return fn_seterr(eb, FN_ELIMIT, "user_terms: %zu distinct terms after analysis, over the "
                         "limit of %u (max-query-terms)", s->nu, (unsigned)q->max_terms);
    if (grow((void **)&s->tptr, &s->tptrcap, nq + 1, sizeof *s->tptr)) return -ENOMEM;
    for (size_t i = 0; i < nq; i++) s->tptr[i] = s->tbuf + s->qt[i].off;
    res->terms = s->tptr;
    res->nterms = nq;

    run_args a = { q, res };
    rc = idx_searcher_run(s, run_select, &a);
    res->time_us = (mono_ns() - t0) / 1000;
    if (!rc && grow((void **)&s->tgdf, &s->tgdfcap, nq + 1, sizeof *s->tgdf)) rc = fn_seterr(eb, -ENOMEM, "out of memory");
    if (!rc) {
        for (size_t i = 0; i < nq; i++) s->tgdf[i] = s->qt[i].gdf;
        res->term_gdf = s->tgdf;
    }
    if (rc) {
        res->hits = NULL;
        res->nhits = 0;
        if (eb && !eb->msg[0]) fn_seterr(eb, rc, "search: %s", fn_strerror(rc));
        searcher_trim(s);
        return rc;
    }
    return 0;
}

typedef struct fetch_args { idx_hit *hits; size_t n; } fetch_args;

static int run_fetch(idx_searcher_t *s, void *ud)
{
    fetch_args *a = ud;
    return fetch_fields(s, a->hits, a->n);
}

typedef struct hits_args { idx_hit *hits; size_t n; } hits_args;

static int run_explain(idx_searcher_t *s, void *ud)
{
    hits_args *a = ud;
    return explain_hits(s, a->hits, a->n);
}

int idx_explain_hits(idx_searcher_t *s, idx_hit *hits, size_t n, fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    fn_errbuf local;
    s->eb = eb ? eb : &local;
    hits_args a = { hits, n };
    int rc = idx_searcher_run(s, run_explain, &a);
    if (rc && eb && !eb->msg[0]) fn_seterr(eb, rc, "explain: %s", fn_strerror(rc));
    return rc;
}

int idx_fetch_fields(idx_searcher_t *s, idx_hit *hits, size_t n, fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    fn_errbuf local;
    s->eb = eb ? eb : &local;
    s->slen = 0;
    fetch_args a = { hits, n };
    int rc = idx_searcher_run(s, run_fetch, &a);
    if (rc && eb && !eb->msg[0]) fn_seterr(eb, rc, "fetch: %s", fn_strerror(rc));
    return rc;
}

int idx_docs_fields(idx_searcher_t *s, idx_hit *hits, size_t n, fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    const idx_reader_t *r = s->r;
    for (size_t i = 0; i < n; i++) {
        if (hits[i].doc >= r->info.docs)
            return fn_seterr(eb, FN_EINVAL, "docs[%zu]: %u is out of range (the shard has %llu documents)", i,
                             hits[i].doc, (unsigned long long)r->info.docs);
        if (hits[i].key != r->keys[hits[i].doc])
            return fn_seterr(eb, FN_EINVAL, "docs[%zu]: document %u has another key here (a document number "
                             "from another build of this shard?)", i, hits[i].doc);
    }
    return idx_fetch_fields(s, hits, n, eb);
}

/* Called by the owner once it has copied the results (they live in the
 * scratch arrays until then). */
void idx_searcher_release(idx_searcher_t *s)
{
    txn_end(s);
    searcher_trim(s);
}
