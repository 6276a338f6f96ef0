/* search_int.h - the searcher's state, shared inside index/ by search.c
 * (selection, stored fields, explain) and features.c (the feature
 * extractors), which both work on the query of the searcher's last
 * idx_search() call.
 */
#ifndef FUNNEL_INDEX_SEARCH_INT_H
#define FUNNEL_INDEX_SEARCH_INT_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "analyzer.h"
#include "codec.h"
#include "format.h"
#include "reader_int.h"
#include "search.h"

typedef struct cursor {
    uint32_t termid, nblocks, block;
    uint32_t pos, n;
    uint32_t doc;          /* current document; valid unless done */
    int done;
    uint32_t docs[IDX_BLOCK_SIZE];
    uint32_t tf[IDX_NFIELDS][IDX_BLOCK_SIZE];
} cursor;

typedef struct qterm {
    size_t off;            /* into tbuf */
    uint32_t len, qw;      /* qw: occurrences in the query (or in the user terms) */
    uint32_t termid, nblocks;
    uint64_t gdf;
    uint64_t gcf[IDX_NFIELDS];
    double idf;            /* BM25's, from the global df */
    int found;             /* in this shard's vocabulary (gdf may still be > 0 elsewhere) */
    int user;              /* a user interest term, not a query term */
} qterm;

typedef struct hent { double score; uint64_t key; uint32_t doc; } hent;

struct idx_searcher {
    idx_reader_t *r;
    idx_analyzer_t *an;
    MDB_txn *txn;            /* reset between queries */
    fn_errbuf *eb;           /* the running call's */
    /* the last query: terms [0, nq) are the query's, [nq, nq + nu) the user's */
    char *tbuf; size_t tlen, tcap;
    qterm *qt; size_t nq, nu, qcap;
    uint32_t (*qseq)[2]; size_t nseq, qseqcap;   /* query occurrences: (term, position) */
    int parsing_user;
    const char **tptr; size_t tptrcap;
    idx_bm25_params bm25;
    idx_select_params sel;
    int64_t now;
    cursor *cur; size_t curcap;
    hent *heap; size_t hcap;
    uint32_t *htf; size_t htfcap;         /* candidate tfs: nq*2 per candidate */
    uint32_t (*xdoc)[2]; size_t xdoccap;  /* candidates (doc, index) sorted by doc */
    uint32_t *pos; size_t poscap;         /* candidate positions (features) */
    uint32_t *poff; size_t poffcap;       /* per candidate x term x field: offset into pos */
    uint32_t *bpos; size_t bposcap;       /* one block's positions */
    idx_hit *hits; size_t hitcap;
    idx_term_explain *expl; size_t explcap;
    char *sbuf; size_t slen, scap;
    size_t (*offs)[3]; size_t offscap;
};

int idx_grow(void **p, size_t *cap, size_t need, size_t elem);

/* BM25F share of one term for document d (search.h), with the given
 * parameters; qidf = qw * idf. */
static inline double idx_term_bm25f(const idx_reader_t *r, const idx_bm25_params *p, double qidf,
                                    uint32_t d, const uint32_t tf[IDX_NFIELDS])
{
    double tfn = 0.0;
    for (int f = 0; f < IDX_NFIELDS; f++) {
        if (!tf[f]) continue;
        double norm = 1.0 - p->b[f] + p->b[f] * (double)r->len[f][d] / r->info.avglen[f];
        tfn += p->w[f] * (double)tf[f] / norm;
    }
    if (tfn <= 0.0) return 0.0;
    return qidf * tfn * (p->k1 + 1.0) / (p->k1 + tfn);
}

/* Frequencies (and with want_pos, positions) of the query terms [0, nterms)
 * in the documents docs[0, n): s->htf[i * nterms * 2 + 2 * t + f], and for
 * positions s->poff[(i * nterms + t) * 2 + f] = offset into s->pos of that
 * field's tf positions. One walk over each term's posting blocks, skipping
 * the blocks that hold none of the documents. Inside the caller's read
 * transaction and guard. */
int idx_cand_terms(idx_searcher_t *s, const uint32_t *docs, size_t n, size_t nterms, int want_pos);

/* Run fn(s, ud) inside a renewed read transaction and a SIGBUS guard, after
 * checking that data.mdb has not changed on disk. */
int idx_searcher_run(idx_searcher_t *s, int (*fn)(idx_searcher_t *s, void *ud), void *ud);

#endif
