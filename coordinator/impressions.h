/* impressions.h - the coordinator's impression log: one JSON line per page
 * shown, for the engagement loop (docs/engagement.md has the format, which
 * `funnel clicks simulate` and `funnel traindata` read):
 *
 *   {"request_id":"12/3","time":1764424800.123,"query":"...","user":"u7",
 *    "features":["bm25f",...],"hits":[{"id":"959","position":1,"score":10.61,"f":[...]},...]}
 *
 * Off unless a path is configured. Every line is flushed as it is written
 * (a crash loses at most the line being written); when the file passes
 * max_bytes it is renamed PATH.1 (PATH.1 to PATH.2, ... up to `keep`) and a
 * new one is started. Loop thread only.
 */
#ifndef FUNNEL_COORD_IMPRESSIONS_H
#define FUNNEL_COORD_IMPRESSIONS_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"
#include "funnel.pb-c.h"

typedef struct coord_implog coord_implog;

/* Open (append) path. Returns 0 or -errno with the message in eb. */
int coord_implog_open(const char *path, uint64_t max_bytes, unsigned keep, coord_implog **out, fn_errbuf *eb);
void coord_implog_close(coord_implog *l);

/* Log one page of n hits: ids, final scores and (rows != NULL) each hit's
 * feature row (ncols named columns, row i at rows[i]); positions start at
 * first_position (1 + page * k). A write error is logged once and the log
 * keeps trying; searches never fail for it. */
void coord_implog_write(coord_implog *l, const Funnel__V1__SearchRequest *req, size_t n,
                        char *const *ids, const double *scores, const float *const *rows,
                        const char *const *names, size_t ncols, uint32_t first_position);

/* An online experiment's part of the line (experiment.h): "experiment",
 * "arm" and, for an interleaving arm (team != NULL), each hit's "team"
 * ("A"/"B"). The request's session_id is logged as "session". */
typedef struct coord_implog_exp {
    const char *experiment, *arm;
    const char *const *team;   /* per hit, or NULL */
} coord_implog_exp;

/* coord_implog_write with the experiment (x NULL or x->arm NULL: none). */
void coord_implog_write_exp(coord_implog *l, const Funnel__V1__SearchRequest *req, size_t n,
                            char *const *ids, const double *scores, const float *const *rows,
                            const char *const *names, size_t ncols, uint32_t first_position,
                            const coord_implog_exp *x);

#endif
