/* validate.h - checks on a client's SearchRequest before any fan-out. */
#ifndef FUNNEL_COORD_VALIDATE_H
#define FUNNEL_COORD_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"
#include "fn_query.h"
#include "funnel.pb-c.h"

#define COORD_DEFAULT_K          10
#define COORD_MAX_REQUEST_ID     128
#define COORD_MAX_GET_IDS        100   /* Search/Get: ids per request */
#define COORD_MAX_GET_ID_BYTES   511
#define COORD_DEFAULT_EXPLAIN_HITS 100
/* The funnel's windows (docs/ranking.md: chosen from the recall curve). */
#define COORD_DEFAULT_SELECTION_K 1000
#define COORD_DEFAULT_STAGE1_K    500
#define COORD_DEFAULT_STAGE2_K    500
#define COORD_DEFAULT_OVERPROVISION 1.5
#define COORD_DEFAULT_REPLY_BYTES  (16u << 20)
#define COORD_MAX_VECTOR_DIM     65536   /* ANN_MAX_DIM */
#define COORD_MAX_EF             100000  /* IDX_MAX_KNN_EF */
#define COORD_DEFAULT_KNN_K      100     /* at least; and the page's end */
#define COORD_RRF_K              60      /* reciprocal rank fusion: 1 / (60 + rank) */

typedef struct coord_limits {
    uint32_t max_window;        /* max (page+1)*k */
    size_t max_query_bytes;
    uint32_t max_query_words;   /* 0 = FN_QUERY_DEFAULT_MAX_WORDS */
    uint32_t max_explain_hits;  /* global ranks that get explain details (0 = 100) */
    uint64_t max_reply_bytes;   /* larger responses get RESOURCE_EXHAUSTED (0 = 16 MiB) */
} coord_limits;

/** Validate req against lim. On success returns 0 and sets *k_out to the
 *  effective page size (k, or COORD_DEFAULT_K for 0). Otherwise returns
 *  FN_EINVAL with a message naming the field ("query: ...") in eb. */
int coord_validate_search(const Funnel__V1__SearchRequest *req, const coord_limits *lim,
                          uint32_t *k_out, fn_errbuf *eb);
/** The vector fields alone (called by coord_validate_search). */
int coord_validate_vector(const Funnel__V1__SearchRequest *req, const coord_limits *lim, fn_errbuf *eb);

/** A Search/Get request: 1..COORD_MAX_GET_IDS ids of 1..511 bytes, valid
 * field names (idx_fields_check). 0 or FN_EINVAL with the message in eb. */
int coord_validate_get(const Funnel__V1__GetRequest *req, fn_errbuf *eb);

/** An Admin/PushModel request, before its model is parsed: stage 1, 2 or 3
 * (the intent model): "stage: 4 is not 1, 2 or 3 (intent)"; the mode and the
 * model's presence (rank_push_check_mode: "mode: 7 is not ...", "model:
 * STAGE needs a model ...", "model: ACTIVATE takes no model ..."). 0 or
 * FN_EINVAL with the message in eb. */
int coord_validate_push(const Funnel__V1__PushModelRequest *req, fn_errbuf *eb);

#endif
