/* integrity.h - whole-file and metadata checksums of a shard directory, and
 * the guard that turns a SIGBUS on an index mapping into an error.
 *
 * A shard's data.mdb is sealed when the build finishes: nothing writes it
 * again (a serving shard opens it read-only, new builds go to new
 * directories). So the build records a checksum of the whole file in
 * SHARDDIR/checksum, and a reader can prove at open that it reads exactly
 * what was built. Damage that happens later is caught by the per-value
 * checksums (format.h), by idx_reader_check() (the file changed size or
 * mtime) and, for a file truncated under a running reader, by the guard.
 */
#ifndef FUNNEL_INDEX_INTEGRITY_H
#define FUNNEL_INDEX_INTEGRITY_H

#include <lmdb.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"

/* XXH3-64 of a whole file, read with pread (never mapped, so a short file
 * cannot fault). *bytes is its size. Returns 0 or -errno with the path. */
int idx_file_hash(const char *path, uint64_t *hash, uint64_t *bytes, fn_errbuf *eb);
/* How fast a paced hash reads, for a shard checking a new generation while it
 * serves (shard --load-rate-mb, --load-cold-rate-mb): 1 MiB reads with sleeps
 * between them, warm_bps bytes a second on average for pages already in the
 * page cache and cold_bps for pages the read must fetch from the disk (found
 * with mincore(2) before each read). A disk read costs the host far more than
 * a copy from the page cache (on a VM, the block device's emulation and the
 * page-cache insertion: kernel CPU beside the searches), so cold pages go
 * slower. 0 = as fast as it goes; cold_bps 0 = warm_bps. cold_bytes: set to
 * the bytes that were not in the page cache. */
typedef struct idx_pace {
    uint64_t warm_bps, cold_bps;
    /* Optional: busy(busy_ud) != 0 while the host's own work needs the CPU
     * (a shard: CPU pressure, fn_pressure.h). Before each read the hash then
     * waits, in steps of IDX_PACE_YIELD_MS, for at most IDX_PACE_MAX_YIELD
     * times that read's paced time: it uses the moments the searches leave,
     * and a busy host slows it down at most (1 + IDX_PACE_MAX_YIELD) times,
     * never stops it. Called from the hashing thread. */
    int (*busy)(void *ud);
    void *busy_ud;
    uint64_t cold_bytes;   /* out */
    uint64_t yield_ns;     /* out: the time spent waiting for busy */
} idx_pace;
#define IDX_PACE_YIELD_MS  5
#define IDX_PACE_MAX_YIELD 3
/* pace NULL: unpaced, as idx_file_hash */
int idx_file_hash_paced(const char *path, idx_pace *pace, uint64_t *hash, uint64_t *bytes, fn_errbuf *eb);

/* Map the pages of [map, map + len) (a file's read-only shared mapping,
 * page-aligned, len within the file) into this process's page tables
 * (madvise MADV_POPULATE_READ), 1 MiB at a time at pace's rates (NULL: at
 * once), reading from the disk what is not in the page cache. Why: the
 * pages a paced check read into the page cache are mapped by nobody until
 * searches touch them, and a kernel that proactively reclaims idle unmapped
 * file pages (DAMON's pageout, as on the VMs this was measured on) drops
 * them within minutes, so the first searches after a switch waited for the
 * disk; mapped pages are left to the kernel's ordinary LRU. *mapped: bytes
 * populated. 0, or -errno (-EINVAL: the kernel lacks MADV_POPULATE_READ,
 * Linux < 5.14; -EFAULT: past the end of the file). */
int idx_map_populate(const void *map, uint64_t len, idx_pace *pace, uint64_t *mapped);

/* Write / read SHARDDIR/checksum (written atomically: temporary + rename). */
int idx_checksum_write(const char *shard_dir, uint64_t hash, uint64_t bytes, fn_errbuf *eb);
int idx_checksum_read(const char *shard_dir, uint64_t *hash, uint64_t *bytes, fn_errbuf *eb);

/* Hash SHARDDIR/data.mdb and compare with SHARDDIR/checksum. 0, FN_ECORRUPT
 * ("...: data.mdb does not match its checksum: damaged"), FN_EFORMAT (no or
 * bad checksum file) or -errno, with the message in eb. */
int idx_verify_file(const char *shard_dir, fn_errbuf *eb);
int idx_verify_file_paced(const char *shard_dir, idx_pace *pace, fn_errbuf *eb);

/* The checksum of the meta database: every entry but "meta_sum", in key
 * order (format.h). */
int idx_meta_sum(MDB_txn *txn, MDB_dbi meta, uint32_t *out);

/* Is rc an error that means the stored index is damaged (as opposed to a
 * bad request, a deadline or memory)? FN_ECORRUPT, FN_EFORMAT and LMDB's
 * MDB_CORRUPTED / MDB_PAGE_NOTFOUND / MDB_INVALID / MDB_BAD_TXN /
 * MDB_BAD_VALSIZE / MDB_VERSION_MISMATCH / MDB_INCOMPATIBLE / MDB_BAD_DBI /
 * MDB_MAP_RESIZED / MDB_CURSOR_FULL. */
int idx_is_damage(int rc);

/* ---- SIGBUS (and SIGSEGV) guard ----
 *
 * Reading a mapped file that was truncated under the reader raises SIGBUS.
 * Code that reads the map runs inside a guard, in a wrapper that has no
 * local state of its own to lose:
 *
 *     idx_guard g;
 *     if (idx_guard_enter(&g, map, mapsize) == 0) {
 *         if (sigsetjmp(g.jb, 0) != 0)
 *             return ... the map faulted: clean up (no locks are held), report ...;
 *     }   (if enter failed, the read runs unguarded)
 *     rc = read_the_map(...);
 *     idx_guard_leave(&g);
 *
 * The handler jumps back only for a fault inside [map, map + mapsize) on a
 * thread with an active guard; any other SIGBUS gets the default action (a
 * core dump), so real bugs are not hidden. A damaged page can also make
 * LMDB itself fault (SIGSEGV: a NULL sub-cursor for a node wrongly flagged
 * as holding duplicates, an offset past the map): under a guard, a SIGSEGV
 * whose instruction is in LMDB's code, or whose address is within 256 KiB
 * past the map, jumps back too (if LMDB is linked statically, "LMDB's code"
 * is the whole program's). Guards nest per thread. The mask
 * is not saved (sigsetjmp(.., 0)): the handler runs with SA_NODEFER, so
 * SIGBUS is never left blocked.
 *
 * LMDB also checks some page invariants with assertions that abort() the
 * process; on a damaged file they fire. idx_lmdb_assert (set on an env with
 * mdb_env_set_assert) jumps back to the thread's innermost guard instead,
 * with LMDB's message in `lmdb_assert`. idx_guard_what() says which it was. */
typedef struct idx_guard {
    sigjmp_buf jb;
    const char *lo, *hi;
    struct idx_guard *prev;
    const void *volatile fault;   /* where the fault happened */
    volatile int sig;             /* SIGBUS or SIGSEGV; 0: ... */
    char lmdb_assert[200];        /* ... LMDB's failed assertion */
} idx_guard;

/* The mapping of this process that contains `inside`: its start and length
 * (from /proc/self/maps). LMDB does not tell where it mapped a file
 * (mdb_env_info's me_mapaddr is only set with MDB_FIXEDMAP), but every value
 * of a read-only environment points into that map. 0, -ENOENT or -errno. */
int idx_map_of(const void *inside, const char **start, size_t *len);

/* Installs the process-wide handler on first use. Returns 0, or -errno if
 * sigaction failed (then the caller must not sigsetjmp: run unguarded). */
int idx_guard_enter(idx_guard *g, const void *map, size_t len);
/* len for a guard of any address (map NULL): only while nothing but LMDB
 * reads a mapped file and the map's place is not known yet */
#define IDX_GUARD_ANY SIZE_MAX
void idx_guard_leave(idx_guard *g);

/* After a jump back: "reading it faulted (SIGBUS): the file was truncated",
 * "LMDB faulted (SIGSEGV) on a damaged page" or "LMDB stopped at a damaged
 * page (<assertion>)". */
const char *idx_guard_what(const idx_guard *g);

/* MDB_assert_func: jump to the innermost guard; without one, return (and
 * LMDB aborts, as it would have). */
void idx_lmdb_assert(MDB_env *env, const char *msg);

#endif
