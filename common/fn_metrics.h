/* fn_metrics.h - Prometheus metrics: a registry of counters, gauges and
 * histograms, its text exposition format (version 0.0.4), and an HTTP
 * endpoint serving it (libmicrohttpd, its own thread).
 *
 * Threads: creating a series takes the registry's mutex (get-or-create: the
 * same name and labels give the same series); updating one is lock-free
 * (C11 atomics), so the loop thread, libuv workers and the HTTP thread may
 * all touch it. A series lives as long as its registry.
 *
 * Names follow Prometheus' rules ([a-zA-Z_:][a-zA-Z0-9_:]*); labels are
 * given already formatted, `shard="0",replica="127.0.0.1:7001"` (values
 * escaped by the caller with fn_metrics_label_escape when they are not
 * known to be plain). A family (one name) has one type and one help text;
 * asking for it with another type is a programming error (returns NULL).
 *
 * Details (fn_metrics.c): label sets are compared in any order (`b="2",a="1"`
 * is `a="1",b="2"`); label values must be valid UTF-8 with only \\ \" \n
 * escapes, names starting `__` and a histogram's `le` are refused; a
 * histogram family has one set of bounds (other bounds: NULL); names that
 * would print the same lines as another family (histogram foo and gauge
 * foo_sum) are refused; `process_*` is reserved (render adds the standard
 * process metrics from /proc/self); a NaN observation is ignored.
 */
#ifndef FUNNEL_FN_METRICS_H
#define FUNNEL_FN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"

typedef struct fn_metrics fn_metrics;       /* a registry */
typedef struct fn_mcounter fn_mcounter;     /* one counter series */
typedef struct fn_mgauge fn_mgauge;         /* one gauge series */
typedef struct fn_mhist fn_mhist;           /* one histogram series */

/* Latency buckets in seconds, 100 us .. 10 s (for *_seconds histograms). */
extern const double fn_metrics_latency_buckets[];
extern const size_t fn_metrics_latency_nbuckets;

fn_metrics *fn_metrics_new(void);
/* Stops the HTTP endpoint if serving, then frees every series. NULL-safe. */
void fn_metrics_free(fn_metrics *m);

/* Get or create a series; labels may be NULL or "" (none). NULL on a
 * name, label or type error or out of memory. */
fn_mcounter *fn_metrics_counter(fn_metrics *m, const char *name, const char *help,
                                const char *labels);
fn_mgauge *fn_metrics_gauge(fn_metrics *m, const char *name, const char *help,
                            const char *labels);
/* bounds: nb ascending upper bounds (+Inf is implied); copied. */
fn_mhist *fn_metrics_histogram(fn_metrics *m, const char *name, const char *help,
                               const char *labels, const double *bounds, size_t nb);

/* Updates; all NULL-safe (a NULL series is a metric that is off). */
void fn_mcounter_add(fn_mcounter *c, uint64_t n);
static inline void fn_mcounter_inc(fn_mcounter *c) { fn_mcounter_add(c, 1); }
void fn_mgauge_set(fn_mgauge *g, double v);
void fn_mgauge_add(fn_mgauge *g, double d);
void fn_mhist_observe(fn_mhist *h, double v);

/* Escape a label value (backslash, double quote, newline) into out (cap
 * bytes, NUL-terminated, truncated if need be). Returns out. */
char *fn_metrics_label_escape(const char *v, char *out, size_t cap);

/* The whole registry in the text format, families sorted by name. *out is
 * malloc'd (caller frees), *len its length. 0 or -ENOMEM. */
int fn_metrics_render(fn_metrics *m, char **out, size_t *len);

/* Serve GET /metrics (and 404 elsewhere) on listen ("127.0.0.1:0" picks a
 * free port) from a libmicrohttpd thread. *port gets the bound port. One
 * endpoint per registry. 0, or FN_EINVAL with the reason in eb. */
int fn_metrics_serve(fn_metrics *m, const char *listen, int *port, fn_errbuf *eb);

#endif
