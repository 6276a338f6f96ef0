/* validate.c - SearchRequest validation (INVALID_ARGUMENT messages); the
 * query text checks and the query-language parser are shared with the
 * shards (common/fn_query.c, query/parse.c). */
#include "validate.h"

#include <math.h>
#include <string.h>

#include "fn_arena.h"
#include "filter.h"
#include "parse.h"
#include "stage.h"
#include "stored.h"

int coord_validate_vector(const Funnel__V1__SearchRequest *req, const coord_limits *lim, fn_errbuf *eb)
{
    /* the result page's fields (checked here for every request: a text-only
     * one returns below before the vector's checks) */
    if ((unsigned)req->safe_search > FUNNEL__V1__SAFE_SEARCH__SAFE_SEARCH_STRICT)
        return fn_seterr(eb, FN_EINVAL, "safe_search: %d is not 0 (default), 1 (off), 2 (moderate) or 3 (strict)",
                         (int)req->safe_search);
    if (req->host_cap > 1000)
        return fn_seterr(eb, FN_EINVAL, "host_cap: %u is over the limit of 1000", req->host_cap);
    if (!req->n_vector) {
        if (req->knn_k || req->ef || req->knn_exact)
            return fn_seterr(eb, FN_EINVAL, "knn_k, ef, knn_exact: need a vector");
        if (req->fusion != FUNNEL__V1__FUSION__FUSION_DEFAULT || req->vector_weight != 0)
            return fn_seterr(eb, FN_EINVAL, "fusion, vector_weight: need a vector (and a query)");
        return 0;
    }
    if (req->n_vector > COORD_MAX_VECTOR_DIM)
        return fn_seterr(eb, FN_EINVAL, "vector: %zu numbers, over the limit of %d", req->n_vector,
                         COORD_MAX_VECTOR_DIM);
    for (size_t i = 0; i < req->n_vector; i++)
        if (!isfinite(req->vector[i])) return fn_seterr(eb, FN_EINVAL, "vector[%zu]: not a finite number", i);
    if (req->knn_k > lim->max_window)
        return fn_seterr(eb, FN_EINVAL, "knn_k: %u is over max_window %u", req->knn_k, lim->max_window);
    if (req->ef > COORD_MAX_EF)
        return fn_seterr(eb, FN_EINVAL, "ef: %u is over %d", req->ef, COORD_MAX_EF);
    if (req->fusion != FUNNEL__V1__FUSION__FUSION_DEFAULT && req->fusion != FUNNEL__V1__FUSION__FUSION_RRF &&
        req->fusion != FUNNEL__V1__FUSION__FUSION_WEIGHTED && req->fusion != FUNNEL__V1__FUSION__FUSION_LEARNED)
        return fn_seterr(eb, FN_EINVAL, "fusion: %d is not 0 (default: rrf), 1 (rrf), 2 (weighted) or 3 (learned)",
                         (int)req->fusion);
    if (!(req->vector_weight >= 0 && req->vector_weight <= 1))
        return fn_seterr(eb, FN_EINVAL, "vector_weight: %g is not in 0..1", (double)req->vector_weight);
    int blank = fn_query_is_blank(req->query);
    if (blank && (req->features || req->fusion == FUNNEL__V1__FUSION__FUSION_LEARNED))
        return fn_seterr(eb, FN_EINVAL, "%s: needs a query text (the vector then informs vec_sim)",
                         req->features ? "features" : "fusion learned");
    return 0;
}

int coord_validate_search(const Funnel__V1__SearchRequest *req, const coord_limits *lim,
                          uint32_t *k_out, fn_errbuf *eb)
{
    /* the same text checks as every shard's (common/fn_query.c) */
    fn_query_limits ql = { lim->max_query_bytes,
                           lim->max_query_words ? lim->max_query_words : FN_QUERY_DEFAULT_MAX_WORDS };
    /* a vector alone is a request too (nearest neighbours) */
    int vec_only = req->n_vector > 0 && fn_query_is_blank(req->query);
    int rc = vec_only ? 0 : fn_query_check(req->query, &ql, eb);
    if (rc) return rc;
    if (!vec_only && !req->plain_text) {
        /* the query language (docs/query-language.md): a syntax error is the
         * client's, named with its column here, before any shard is asked */
        fn_arena a;
        fn_arena_init(&a);
        fn_qparse_opts po;
        fn_qparse_defaults(&po);
        po.mode_all = req->all_terms;
        fn_qnode *tree;
        rc = fn_qparse(req->query, strlen(req->query), &po, &a, &tree, eb);
        fn_arena_free(&a);
        if (rc) return rc;
    }
    if (req->filter && !fn_query_is_blank(req->filter)) {
        /* filters (query/filter.h): refused here, with the column, before fan-out */
        size_t fl = strlen(req->filter);
        if (fl > FN_FPARSE_MAX_BYTES)
            return fn_seterr(eb, FN_EINVAL, "filter: %zu bytes, over the limit of %u", fl, FN_FPARSE_MAX_BYTES);
        fn_arena a;
        fn_arena_init(&a);
        fn_fnode *tree;
        rc = fn_fparse(req->filter, fl, &a, &tree, eb);
        fn_arena_free(&a);
        if (rc) return rc;
    }
    if ((rc = coord_validate_vector(req, lim, eb))) return rc;
    uint32_t k = req->k ? req->k : COORD_DEFAULT_K;
    if (k > lim->max_window)
        return fn_seterr(eb, FN_EINVAL, "k: %u is over max_window %u", k, lim->max_window);
    uint64_t window = ((uint64_t)req->page + 1) * k;
    if (window > lim->max_window)
        return fn_seterr(eb, FN_EINVAL,
                         "page: (page+1)*k = (%u+1)*%u = %llu is over max_window %u",
                         req->page, k, (unsigned long long)window, lim->max_window);
    const char *rid = req->request_id ? req->request_id : "";
    size_t rn = strlen(rid);
    if (rn > COORD_MAX_REQUEST_ID)
        return fn_seterr(eb, FN_EINVAL, "request_id: %zu bytes, over the limit of %d bytes",
                         rn, COORD_MAX_REQUEST_ID);
    if (!fn_utf8_valid(rid, rn))
        return fn_seterr(eb, FN_EINVAL, "request_id: not valid UTF-8");
    if (!(req->coverage_target >= 0 && req->coverage_target <= 1))   /* NaN fails too */
        return fn_seterr(eb, FN_EINVAL, "coverage_target: %g is not in 0..1", (double)req->coverage_target);
    /* the funnel's fields: the coordinator answers for them itself */
    if (req->features > FUNNEL__V1__FEATURE_MODE__FEATURES_WINDOW)
        return fn_seterr(eb, FN_EINVAL, "features: %d is not 0 (none), 1 (selection) or 2 (window)",
                         (int)req->features);
    if (req->user_terms && *req->user_terms) {
        fn_errbuf ueb;
        if (fn_query_check(req->user_terms, &ql, &ueb) != 0) {
            const char *why = strchr(ueb.msg, ':');
            return fn_seterr(eb, FN_EINVAL, "user_terms:%s", why ? why + 1 : ueb.msg);
        }
    }
    /* the experiments' units (experiment.h): hashed, logged in JSON lines */
    const char *const idf[2] = { "user", "session_id" };
    const char *const idv[2] = { req->user ? req->user : "", req->session_id ? req->session_id : "" };
    for (int f = 0; f < 2; f++) {
        size_t un = strlen(idv[f]);
        if (un > COORD_MAX_REQUEST_ID)
            return fn_seterr(eb, FN_EINVAL, "%s: %zu bytes, over the limit of %d bytes", idf[f], un,
                             COORD_MAX_REQUEST_ID);
        if (!fn_utf8_valid(idv[f], un)) return fn_seterr(eb, FN_EINVAL, "%s: not valid UTF-8", idf[f]);
        for (size_t i = 0; i < un; i++)
            if ((unsigned char)idv[f][i] < 0x20 || idv[f][i] == 0x7f)
                return fn_seterr(eb, FN_EINVAL, "%s: a control character at byte %zu", idf[f], i);
    }
    if (req->now < 0)
        return fn_seterr(eb, FN_EINVAL, "now: %lld is before 1970 (unix seconds; 0 = the coordinator's clock)",
                         (long long)req->now);
    if ((rc = idx_fields_check("fields", (const char *const *)req->fields, req->n_fields, eb))) return rc;
    *k_out = k;
    return 0;
}

int coord_validate_get(const Funnel__V1__GetRequest *req, fn_errbuf *eb)
{
    if (req->n_ids == 0 || req->n_ids > COORD_MAX_GET_IDS)
        return fn_seterr(eb, FN_EINVAL, "ids: %zu, must be 1..%d", req->n_ids, COORD_MAX_GET_IDS);
    for (size_t i = 0; i < req->n_ids; i++) {
        size_t len = strlen(req->ids[i]);
        if (len == 0 || len > COORD_MAX_GET_ID_BYTES)
            return fn_seterr(eb, FN_EINVAL, "ids[%zu]: %zu bytes, must be 1..%d", i, len, COORD_MAX_GET_ID_BYTES);
        if (!fn_utf8_valid(req->ids[i], len)) return fn_seterr(eb, FN_EINVAL, "ids[%zu]: not valid UTF-8", i);
    }
    return idx_fields_check("fields", (const char *const *)req->fields, req->n_fields, eb);
}

int coord_validate_push(const Funnel__V1__PushModelRequest *req, fn_errbuf *eb)
{
    if (req->stage < 1 || req->stage > 3)
        return fn_seterr(eb, FN_EINVAL, "stage: %u is not 1, 2 or 3 (intent)", (unsigned)req->stage);
    return rank_push_check_mode((int)req->mode, req->model.len, eb);
}
