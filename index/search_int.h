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
    /* where posting `offpos` of the block starts in the block's positions
     * value (sum of the tfs before it); advanced lazily, only when a
     * candidate needs it (cursor_posoff) */
    uint32_t offpos, off;
    int scored;            /* load_block fills share[] (query terms of the selection) */
    int ne;                /* non-essential (run_query's pruning): not in the merge */
    double qidf;           /* qw * idf, for share[] */
    uint32_t docs[IDX_BLOCK_SIZE];
    uint32_t tf[IDX_NFIELDS][IDX_BLOCK_SIZE];
    double share[IDX_BLOCK_SIZE]; /* with `scored`: each posting's idx_term_bm25f */
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

/* slot: where the selection recorded this candidate's frequencies (ctf, cloc) */
typedef struct hent { double score; uint64_t key; uint32_t doc, slot; } hent;

struct idx_searcher {
    idx_reader_t *r;
    idx_analyzer_t *an;
    MDB_txn *txn;            /* reset between queries */
    fn_errbuf *eb;           /* the running call's */
    /* the last query: terms [0, nq) are the query's, [nq, nq + nu) the user's */
    char *tbuf; size_t tlen, tcap;
    qterm *qt; size_t nq, nu, qcap;
    /* a structured query (qmatch.h): terms [nq + nu, nq + nu + nx) are only
     * excluded; qm holds the tree */
    size_t nx;
    int structured;
    int bag_all;                /* a bag of words, all required: the AND (leapfrog) selection */
    struct idx_qm *qm;
    uint32_t (*qseq)[2]; size_t nseq, qseqcap;   /* query occurrences: (term, position) */
    int parsing_user;
    const char **tptr; size_t tptrcap;
    uint64_t *tgdf; size_t tgdfcap;          /* the last query's terms' global df (idx_results.term_gdf) */
    idx_bm25_params bm25;
    idx_select_params sel;
    int64_t now;
    cursor *cur; size_t curcap;
    hent *heap; size_t hcap;
    /* What the selection read for its candidates, per heap slot, so that
     * features need not walk the postings again: ctf[slot][t][f] the query
     * terms' frequencies, cloc[slot][t] = (posting block, offset of its
     * positions in that block's positions value), cdoc[slot] the document.
     * ncand = the slots of the last idx_search (0: none valid); a slot
     * holds a hit's data when cdoc[hit.cand] == hit.doc (idx_cand_recorded). */
    uint32_t *ctf; size_t ctfcap;
    uint32_t (*cloc)[2]; size_t cloccap;
    uint32_t *cdoc; size_t cdoccap;
    uint32_t *sfree; size_t sfreecap;     /* free slots */
    uint64_t *seen; size_t seencap;       /* pruning: documents counted as matches */
    size_t ncand, cand_nq;
    uint32_t *htf; size_t htfcap;         /* candidate tfs: nq*2 per candidate */
    uint32_t (*xdoc)[2]; size_t xdoccap;  /* candidates (doc, index) sorted by doc */
    uint32_t *pos; size_t poscap;         /* candidate positions (features) */
    uint32_t *poff; size_t poffcap;       /* per candidate x term x field: offset into pos */
    uint32_t *bpos; size_t bposcap;       /* one block's positions */
    idx_hit *hits; size_t hitcap;
    idx_term_explain *expl; size_t explcap;
    char *sbuf; size_t slen, scap;
    idx_srcbuf src;                       /* documents' sources (feedback, prf.c) */
    idx_tvec tv;                          /* a document's term vector (feedback, prf.c) */
    /* vector search (knn.c): the graph's scratch (made on first use), its
     * hits, and the running search's allow-list */
    struct ann_scratch *knn_scratch;
    ann_hit *knn_hits; size_t knn_cap;
    struct idx_knn_hit *knn_sorted; size_t knn_sortcap;
    const uint64_t *knn_allow;
    int (*knn_excl)(const void *ud, uint64_t key);   /* idx_knn_query.exclude, while it runs */
    const void *knn_excl_ud;
    struct idx_filter *flt;               /* the last query's filter, compiled (attrs.h) */
    /* the last idx_search's query vector (vec_sim), qvdim 0: none */
    float *qvec; size_t qveccap; uint32_t qvdim;
    size_t (*offs)[3]; size_t offscap;
    /* One LMDB cursor on the postings per cursor slot (cur[i]), so that the
     * next block of a list is a step, not a search from the B-tree's root:
     * opened on first use, renewed once per transaction (gen), and where
     * each stands (term, block) while its gen is the searcher's. */
    uint64_t gen;                          /* transactions run */
    int txn_live;                          /* txn is open: one per query (idx_searcher_run) */
    struct postcur { MDB_cursor *mc; uint64_t gen; uint32_t term, block; } *pc; size_t pccap;
};

/* Block c->block of cursor slot i's list into c (docs, tfs, n), through the
 * slot's LMDB cursor. Inside the caller's read transaction and guard. */
int idx_cursor_block(idx_searcher_t *s, size_t i, cursor *c);


/* Where idx_qterm_add puts a term: a query term [0, nq) (a repeat adds to
 * its qw and every occurrence goes to qseq), a user interest term
 * [nq, nq + nu), or an excluded term: a query term's slot if it is one,
 * else [nq + nu, nq + nu + nx). Query terms come first, then the user's,
 * then the excluded. */
enum { IDX_QT_QUERY, IDX_QT_USER, IDX_QT_EXCLUDED };
/* 0 with the term's slot, 1 for a token that is not a term (empty or too
 * long), -ENOMEM. */
int idx_qterm_add(idx_searcher_t *s, const char *term, size_t len, uint32_t pos, int where, uint32_t *slot);

/* cursor moves for qmatch.c: to the first document >= d; the offset of the
 * current posting's positions in its block's positions value */
int idx_cursor_seek(idx_searcher_t *s, cursor *c, uint32_t d);
uint32_t idx_cursor_posoff(cursor *c);

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

/* 1 if every hit of hits[0, n) is a candidate of the searcher's last
 * selection (idx_hit.cand), so its frequencies are recorded: ctf. */
int idx_cand_recorded(const idx_searcher_t *s, const idx_hit *hits, size_t n);

/* What idx_cand_terms(want_pos) gives, for hits the selection recorded
 * (idx_cand_recorded): s->htf and s->poff by hit, positions in s->pos. Reads
 * only the positions values that hold the hits' positions, each once, and
 * decodes each only as far as its last hit. Inside the caller's read
 * transaction and guard. */
int idx_cand_positions(idx_searcher_t *s, const idx_hit *hits, size_t n);

/* Run fn(s, ud) inside the query's read transaction and a SIGBUS guard. The
 * first call of a query (after idx_search began it, or after
 * idx_searcher_release) checks that data.mdb has not changed on disk and
 * renews the transaction; the query's later calls (features, explain,
 * stored fields) read the same snapshot, until idx_searcher_release or the
 * next idx_search. */
int idx_searcher_run(idx_searcher_t *s, int (*fn)(idx_searcher_t *s, void *ud), void *ud);

#endif
