/* impressions.c - the impression log (impressions.h). */
#include "impressions.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fn_log.h"

struct coord_implog {
    char path[4096];
    FILE *f;
    uint64_t bytes, max_bytes;
    unsigned keep;
    int warned;
};

int coord_implog_open(const char *path, uint64_t max_bytes, unsigned keep, coord_implog **out, fn_errbuf *eb)
{
    *out = NULL;
    coord_implog *l = calloc(1, sizeof *l);
    if (!l) return fn_seterr(eb, -ENOMEM, "out of memory");
    if (strlen(path) >= sizeof l->path - 16) {
        free(l);
        return fn_seterr(eb, FN_EINVAL, "impressions-log: path too long");
    }
    snprintf(l->path, sizeof l->path, "%s", path);
    l->max_bytes = max_bytes;
    l->keep = keep ? keep : 1;
    if (!(l->f = fopen(path, "a"))) {
        int e = errno;
        free(l);
        return fn_seterr(eb, -e, "impressions-log %s: %s", path, strerror(e));
    }
    struct stat st;
    if (stat(path, &st) == 0) l->bytes = (uint64_t)st.st_size;
    *out = l;
    return 0;
}

void coord_implog_close(coord_implog *l)
{
    if (!l) return;
    if (l->f) fclose(l->f);
    free(l);
}

/* PATH -> PATH.1 -> ... -> PATH.keep (the oldest goes) and a new PATH. */
static void rotate(coord_implog *l)
{
    fclose(l->f);
    l->f = NULL;
    char from[4200], to[4200];
    for (unsigned i = l->keep; i >= 1; i--) {
        if (i == 1) snprintf(from, sizeof from, "%s", l->path);
        else snprintf(from, sizeof from, "%s.%u", l->path, i - 1);
        snprintf(to, sizeof to, "%s.%u", l->path, i);
        rename(from, to);   /* a missing one is fine */
    }
    l->f = fopen(l->path, "a");
    l->bytes = 0;
    if (!l->f) FN_WARN("impressions-log %s: cannot start a new file: %s", l->path, strerror(errno));
}

void coord_implog_write(coord_implog *l, const Funnel__V1__SearchRequest *req, size_t n,
                        char *const *ids, const double *scores, const float *const *rows,
                        const char *const *names, size_t ncols, uint32_t first_position)
{
    coord_implog_write_exp(l, req, n, ids, scores, rows, names, ncols, first_position, NULL);
}

void coord_implog_write_exp(coord_implog *l, const Funnel__V1__SearchRequest *req, size_t n,
                            char *const *ids, const double *scores, const float *const *rows,
                            const char *const *names, size_t ncols, uint32_t first_position,
                            const coord_implog_exp *x)
{
    if (!l) return;
    if (x && (!x->experiment || !x->arm || !*x->arm)) x = NULL;
    if (!l->f) {
        l->f = fopen(l->path, "a");
        if (!l->f) return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *o = json_object();
    json_object_set_new(o, "request_id", json_string(req->request_id ? req->request_id : ""));
    json_object_set_new(o, "time", json_real((double)ts.tv_sec + ts.tv_nsec / 1e9));
    json_object_set_new(o, "query", json_string(req->query ? req->query : ""));
    if (req->user && *req->user) json_object_set_new(o, "user", json_string(req->user));
    if (req->session_id && *req->session_id) json_object_set_new(o, "session", json_string(req->session_id));
    if (x) {
        json_object_set_new(o, "experiment", json_string(x->experiment));
        json_object_set_new(o, "arm", json_string(x->arm));
    }
    json_t *jn = json_array();
    for (size_t i = 0; rows && i < ncols; i++) json_array_append_new(jn, json_string(names[i]));
    json_object_set_new(o, "features", jn);
    json_t *hits = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *jh = json_object();
        json_object_set_new(jh, "id", json_string(ids[i]));
        json_object_set_new(jh, "position", json_integer((json_int_t)first_position + (json_int_t)i));
        json_object_set_new(jh, "score", isfinite(scores[i]) ? json_real(scores[i]) : json_null());
        if (x && x->team && x->team[i] && *x->team[i]) json_object_set_new(jh, "team", json_string(x->team[i]));
        if (rows && rows[i]) {
            json_t *fv = json_array();
            for (size_t k = 0; k < ncols; k++)
                json_array_append_new(fv, isfinite(rows[i][k]) ? json_real(rows[i][k]) : json_null());
            json_object_set_new(jh, "f", fv);
        }
        json_array_append_new(hits, jh);
    }
    json_object_set_new(o, "hits", hits);
    char *line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!line) return;
    size_t len = strlen(line);
    int bad = fprintf(l->f, "%s\n", line) < 0 || fflush(l->f) != 0;
    free(line);
    if (bad) {
        if (!l->warned) FN_WARN("impressions-log %s: write failed: %s", l->path, strerror(errno));
        l->warned = 1;
        clearerr(l->f);
        return;
    }
    l->warned = 0;
    l->bytes += len + 1;
    if (l->max_bytes && l->bytes >= l->max_bytes) rotate(l);
}
