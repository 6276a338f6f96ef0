/* damage.h - aiming damage at a shard's stored values, for the integrity
 * tests (tests/index/damage.c is the command-line front end, test_verify.c
 * links the same code).
 *
 * A read-only LMDB environment maps data.mdb whole and returns values (and
 * keys) as pointers into that map, stored in place, so "pointer minus map
 * address" is the value's offset in the file.
 */
#ifndef FUNNEL_TESTS_DAMAGE_H
#define FUNNEL_TESTS_DAMAGE_H

#include <stddef.h>
#include <stdint.h>

/* Called once per entry of the database: where its value (or, with keys,
 * its key) lies in data.mdb, and its key. Return non-zero to stop. */
typedef int (*dmg_entry_cb)(void *ud, uint64_t off, uint64_t len, const void *key, size_t klen);

/* Walk database `db` (postings, terms, docs, source, ids, norms, meta) of
 * SHARDDIR. 0, or -1 with a message in err. */
int dmg_locate(const char *shard_dir, const char *db, int keys, dmg_entry_cb cb, void *ud,
               char *err, size_t errcap);

/* XOR count bytes of file at off with mask (the size does not change;
 * the modification time does). 0 or -errno. */
int dmg_flip(const char *file, uint64_t off, uint64_t count, uint8_t mask);

/* XOR `count` bytes at pseudo-random offsets (seeded, reproducible) in
 * [lo, hi) of file with random non-zero masks; offs[] (if not NULL, room
 * for count) receives the offsets. 0 or -errno. */
int dmg_random(const char *file, uint64_t seed, uint64_t count, uint64_t lo, uint64_t hi,
               uint64_t *offs);

#endif
