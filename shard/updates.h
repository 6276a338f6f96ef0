/* updates.h - a shard's live updates (docs/operations.md "Live updates").
 *
 * Documents put or deleted since the serving generation was built, kept in
 * an LMDB environment of their own (UPDATES_DIR/data.mdb; database "docs":
 * id -> u64le version | u8 live | the document's JSON). A write returns only
 * after its transaction is on disk (LMDB's synchronous commit), so an
 * acknowledged write survives kill -9. Last writer wins: an operation is
 * applied only if its version (the coordinator's clock) is above the one
 * stored for the id, so replicas that see the same writes in another order
 * end the same.
 *
 * What a search sees: every id in the store, live or deleted, hides the
 * generation's document of that id at once (su_excludes, asked with the
 * document's key, xxh64 of the id, from the search threads without a lock);
 * Get reads the store first. A put document is searchable once a merge
 * (`funnel index merge`) has built it into a generation.
 */
#ifndef FUNNEL_SHARD_UPDATES_H
#define FUNNEL_SHARD_UPDATES_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"

typedef struct shard_updates shard_updates;

/* Open (create) the store in dir and load its ids' keys. 0, -errno or an
 * LMDB failure (-errno, or FN_EFORMAT for LMDB's own codes) with the message in eb. */
int su_open(const char *dir, shard_updates **out, fn_errbuf *eb);
void su_close(shard_updates *u);

typedef struct su_op {
    const char *id;
    size_t idlen;
    uint64_t version;           /* > 0 */
    int del;                    /* 1: delete; 0: put json */
    const char *json;
    size_t jsonlen;
} su_op;

/* Apply ops[n] in one write transaction, durable when it returns; op i is
 * applied (applied[i] = 1) only if its version is above the stored one (0:
 * stale, a newer write won). Any thread; writers take turns. 0 or an error
 * (nothing applied). */
int su_apply(shard_updates *u, const su_op *ops, size_t n, uint8_t *applied, fn_errbuf *eb);

/* Is the document of this key hidden by the store? Any thread, no lock. */
int su_excludes(const void *u, uint64_t key);

/* The stored state of id: 0 none, 1 live (*json malloc'd, *len bytes), 2
 * deleted; *version when not 0. Negative: an error (eb). Any thread. */
int su_get(shard_updates *u, const char *id, size_t idlen, char **json, size_t *len, uint64_t *version,
           fn_errbuf *eb);

/* Every entry, from one snapshot (a merge's export): cb(ud, id, idlen,
 * version, live, json, jsonlen) in id order; non-zero from cb stops and is
 * returned. Any thread, any process (LMDB readers). */
typedef int (*su_entry_cb)(void *ud, const char *id, size_t idlen, uint64_t version, int live, const char *json,
                           size_t jsonlen);
int su_snapshot(shard_updates *u, su_entry_cb cb, void *ud, fn_errbuf *eb);

/* After a merge built them into the live generation: drop the entry of each
 * ops[i].id whose stored version is at most ops[i].version (a newer write
 * stays), and hide only what is left. *dropped = entries removed. */
int su_prune(shard_updates *u, const su_op *ops, size_t n, size_t *dropped, fn_errbuf *eb);

/* Entries in the store (live and deleted), and the highest version. */
uint64_t su_count(const shard_updates *u);
uint64_t su_max_version(const shard_updates *u);

#endif
