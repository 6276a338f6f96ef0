/* stage1.c - the shard's part of the funnel (stage1.h). */
#include "stage1.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "feature_registry.h"

int shard_funnel_run(idx_searcher_t *se, const shard_funnel_req *rq, const rank_ranker *stage1,
                     fn_arena *mem, shard_funnel_out *out, fn_errbuf *eb)
{
    memset(out, 0, sizeof *out);
    out->acct[0].name = "selection";
    out->acct[1].name = "stage1";
    out->stride = idx_features_shard();

    /* selection: without a model to rank them, the survivors are simply the
     * selection's top k, so selecting more would be wasted work */
    int use_model = stage1 && !rq->skip_stage1 && rq->features != 1;
    idx_query q = rq->q;
    q.no_fields = 1;
    q.explain = 0;
    if (!use_model && q.k > rq->k) q.k = rq->k;
    /* Keeping what the selection read about every candidate pays when
     * features are computed for many of them; for a few (explain's first
     * hits among k = 10000) walking their postings again is cheaper. */
    size_t nfull = rq->features == 2 ? (rq->feature_hits ? rq->feature_hits : q.k) : 0;
    q.no_record = !use_model && rq->features != 1 && nfull * 4 < q.k;
    int rc = idx_search(se, &q, &out->sel, eb);
    if (rc) return rc;
    size_t nsel = out->sel.nhits;
    out->acct[0].ran = 1;
    out->acct[0].time_us = out->sel.time_us;
    out->acct[0].count_in = out->sel.matches;
    out->acct[0].count_out = nsel;
    snprintf(out->acct[0].note, sizeof out->acct[0].note, "BM25F + static signals, %llu matching",
             (unsigned long long)out->sel.matches);

    /* the list stage 1 works on: the candidates in selection order */
    rank_list l = { 0 };
    l.item = fn_arena_alloc(mem, (nsel ? nsel : 1) * sizeof *l.item);
    l.key = fn_arena_alloc(mem, (nsel ? nsel : 1) * sizeof *l.key);
    l.score = fn_arena_alloc(mem, (nsel ? nsel : 1) * sizeof *l.score);
    if (mem->oom) return fn_seterr(eb, -ENOMEM, "out of memory");
    for (size_t i = 0; i < nsel; i++) {
        l.item[i] = (uint32_t)i;
        l.key[i] = out->sel.hits[i].key;
        l.score[i] = out->sel.hits[i].score;
    }
    l.n = nsel;
    l.stride = out->stride;

    /* cheap features: for every candidate when a model ranks them, else
     * (a features request in selection order) for the survivors only */
    size_t nfeat = use_model ? nsel : (rq->features == 1 ? (nsel < rq->k ? nsel : rq->k) : 0);
    float *cheap = NULL;
    if (nfeat) {
        cheap = fn_arena_alloc(mem, nfeat * l.stride * sizeof *cheap);
        if (!cheap) return fn_seterr(eb, -ENOMEM, "out of memory");
        if ((rc = idx_features_compute(se, out->sel.hits, nfeat, 0, cheap, l.stride, eb))) return rc;
        for (size_t i = 0; i < nfeat; i++)
            for (size_t c = idx_features_cheap(); c < l.stride; c++) cheap[i * l.stride + c] = 0;
        l.rows = cheap;
    }

    /* stage 1 */
    if ((rc = rank_stage_run(&l, use_model ? stage1 : NULL, rq->k, "selection", &out->acct[1])))
        return fn_seterr(eb, rc, "stage 1: out of memory");
    if (!use_model && stage1 && rq->skip_stage1)
        snprintf(out->acct[1].note, sizeof out->acct[1].note, "skipped on request: selection order kept");
    if (!use_model && rq->features == 1)
        snprintf(out->acct[1].note, sizeof out->acct[1].note, "features request: selection order kept");

    /* the survivors, best first */
    size_t n = l.n;
    out->n = n;
    out->hits = fn_arena_alloc(mem, (n ? n : 1) * sizeof *out->hits);
    out->stage1_score = fn_arena_alloc(mem, (n ? n : 1) * sizeof *out->stage1_score);
    if (mem->oom) return fn_seterr(eb, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        out->hits[i] = out->sel.hits[l.item[i]];
        out->stage1_score[i] = l.score[i];
    }

    /* their features */
    if (rq->features == 1) {
        out->rows = cheap;             /* selection order: row i is survivor i */
        out->ncols = idx_features_cheap();
        out->nrows = n;
    } else if (rq->features == 2 && n) {
        size_t nf = rq->feature_hits && rq->feature_hits < n ? rq->feature_hits : n;
        out->rows = fn_arena_alloc(mem, nf * out->stride * sizeof *out->rows);
        if (!out->rows) return fn_seterr(eb, -ENOMEM, "out of memory");
        if ((rc = idx_features_compute(se, out->hits, nf, 1, out->rows, out->stride, eb))) return rc;
        out->ncols = out->stride;
        out->nrows = nf;
    }
    if (rq->explain && n) {
        size_t ne = rq->explain_hits && rq->explain_hits < n ? rq->explain_hits : n;
        if ((rc = idx_explain_hits(se, out->hits, ne, eb))) return rc;
    }
    /* stored fields: only where the page can come from (field_hits) */
    size_t nf = rq->no_fields ? 0 : rq->field_hits && rq->field_hits < n ? rq->field_hits : n;
    for (size_t i = nf; i < n; i++) out->hits[i].id = out->hits[i].title = out->hits[i].url = NULL;
    return nf ? idx_fetch_fields(se, out->hits, nf, eb) : 0;
}
