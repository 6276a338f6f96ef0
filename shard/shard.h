/* shard.h - the funnel-shard service on a libuv loop: funnel.v1.Shard/Search,
 * funnel.v1.Admin/Status and grpc.health.v1.Health/Check over one shard
 * directory.
 *
 * Searches run on the libuv thread pool (uv_queue_work), never on the loop
 * thread; each running search borrows one idx_searcher from a fixed pool of
 * cfg->threads searchers. The process should set UV_THREADPOOL_SIZE to
 * cfg->threads before the loop's first uv_queue_work (funnel-shard's main
 * does), so that pool size and searcher count agree.
 */
#ifndef FUNNEL_SHARD_H
#define FUNNEL_SHARD_H

#include <stdint.h>
#include <uv.h>

#include "fn_error.h"
#include "search.h"
#include "shard_config.h"

typedef struct shard shard_t;   /* opaque */

/* Longest index generation name (a directory path; Admin/Generation). */
#define SHARD_MAX_GEN_NAME 1024

/* Open cfg->index_dir, create the searcher pool and start serving on
 * cfg->listen (rpc_init() must have been called). cfg is copied. Returns 0,
 * an index error (-ENOENT, FN_EFORMAT, FN_EVERSION), FN_EINVAL (cannot
 * listen) or -ENOMEM, with the message in eb. Must be called on the loop
 * thread. */
int shard_start(uv_loop_t *loop, const shard_config *cfg, shard_t **out, fn_errbuf *eb);

/* The bound port. */
int shard_port(const shard_t *s);

/* The opened index's metadata. */
const idx_index_info *shard_info(const shard_t *s);

/* Requests served and non-OK replies so far (loop thread). */
uint64_t shard_requests(const shard_t *s);
uint64_t shard_errors(const shard_t *s);

/* Graceful stop: Health answers NOT_SERVING, no new calls are accepted,
 * in-flight searches finish and are answered, then the index is closed,
 * s is freed and done(ud) runs on the loop thread. */
void shard_stop(shard_t *s, void (*done)(void *ud), void *ud);

#endif
