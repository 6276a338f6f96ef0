/* topology.h - the coordinator's cluster map: which addresses serve which shard.
 *
 * File format (one directive a line, '#' starts a comment anywhere):
 *
 *     # funnel topology
 *     shard 0 127.0.0.1:7001 127.0.0.1:7101   # shard number, then replica addresses
 *     shard 1 127.0.0.1:7002
 *
 * Rules: shards are numbered 0..N-1 and each number appears exactly once
 * (in any order); each shard has 1..COORD_MAX_REPLICAS distinct addresses of
 * the form HOST:PORT (HOST may be "[v6addr]"), PORT 1..65535. Errors say
 * "FILE:LINE: what" (or "FILE: what" for a missing shard).
 */
#ifndef FUNNEL_COORD_TOPOLOGY_H
#define FUNNEL_COORD_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"

#define COORD_MAX_SHARDS   1024
#define COORD_MAX_REPLICAS 16
#define COORD_MAX_ADDR     256   /* bytes, including the NUL */

typedef struct coord_shard_conf {
    uint32_t nreplicas;
    char **replicas;             /* nreplicas owned strings "host:port" */
    uint32_t line;               /* where the shard was declared (for messages) */
} coord_shard_conf;

typedef struct coord_topology {
    uint32_t nshards;
    coord_shard_conf *shards;    /* indexed by shard number */
} coord_topology;

/** Parse topology text (len bytes, need not be NUL-terminated). name is used
 *  in error messages. On success fills *out (free with coord_topology_free)
 *  and returns 0; on error returns FN_EPARSE/FN_EINVAL/-ENOMEM with
 *  "name:line: message" in eb and leaves *out empty. */
int coord_topology_parse(const char *text, size_t len, const char *name,
                         coord_topology *out, fn_errbuf *eb);

/** Read and parse the file at path (see coord_topology_parse). */
int coord_topology_load(const char *path, coord_topology *out, fn_errbuf *eb);

/** Free what parse/load allocated; leaves *t empty. NULL-safe, idempotent. */
void coord_topology_free(coord_topology *t);

/** Check a "host:port" address; 0 or FN_EINVAL with the reason in eb. */
int coord_addr_check(const char *addr, fn_errbuf *eb);

#endif
