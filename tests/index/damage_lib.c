/* damage_lib.c - see damage.h. */
#include "damage.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fn_rand.h"
#include "integrity.h"

int dmg_locate(const char *shard_dir, const char *db, int keys, dmg_entry_cb cb, void *ud,
               char *err, size_t errcap)
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", shard_dir);
    if (stat(path, &st)) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return -1;
    }
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    MDB_dbi dbi;
    int rc;
    const char *what = "open";
    /* MDB_NOLOCK: no lock.mdb next to the index, and no reader slot */
    if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 16)) ||
        (rc = mdb_env_set_mapsize(env, (size_t)st.st_size)) ||
        (rc = mdb_env_open(env, shard_dir, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0644)))
        goto fail;
    what = "txn";
    if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))) goto fail;
    what = db;
    if ((rc = mdb_dbi_open(txn, db, 0, &dbi)) || (rc = mdb_cursor_open(txn, dbi, &c))) goto fail;
    /* mdb_env_info's me_mapaddr is NULL without MDB_FIXEDMAP: the map is the
     * mapping that holds the first key */
    const char *map = NULL;
    size_t maplen;
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (!map && idx_map_of(k.mv_data, &map, &maplen)) {
            snprintf(err, errcap, "%s: cannot find the map in /proc/self/maps", shard_dir);
            rc = -1;
            break;
        }
        const MDB_val *x = keys ? &k : &v;
        if (cb(ud, (uint64_t)((const char *)x->mv_data - map), x->mv_size, k.mv_data, k.mv_size)) break;
    }
    if (rc == -1) {
        mdb_cursor_close(c);
        mdb_txn_abort(txn);
        mdb_env_close(env);
        return -1;
    }
    if (rc == MDB_NOTFOUND) rc = 0;
    if (rc) goto fail;
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return 0;
fail:
    snprintf(err, errcap, "%s: %s: %s", shard_dir, what, mdb_strerror(rc));
    if (c) mdb_cursor_close(c);
    if (txn) mdb_txn_abort(txn);
    if (env) mdb_env_close(env);
    return -1;
}

static int xor_at(int fd, uint64_t off, uint8_t mask)
{
    uint8_t b;
    if (pread(fd, &b, 1, (off_t)off) != 1) return errno ? -errno : -EIO;
    b ^= mask;
    if (pwrite(fd, &b, 1, (off_t)off) != 1) return errno ? -errno : -EIO;
    return 0;
}

int dmg_flip(const char *file, uint64_t off, uint64_t count, uint8_t mask)
{
    int fd = open(file, O_RDWR);
    if (fd < 0) return -errno;
    int rc = 0;
    for (uint64_t i = 0; i < count && !rc; i++) {
        errno = 0;
        rc = xor_at(fd, off + i, mask);
    }
    if (close(fd) && !rc) rc = -errno;
    return rc;
}

int dmg_random(const char *file, uint64_t seed, uint64_t count, uint64_t lo, uint64_t hi,
               uint64_t *offs)
{
    if (hi <= lo) return -EINVAL;
    int fd = open(file, O_RDWR);
    if (fd < 0) return -errno;
    int rc = 0;
    uint64_t s = seed;
    for (uint64_t i = 0; i < count && !rc; i++) {
        uint64_t off = lo + fn_splitmix64(&s) % (hi - lo);
        uint8_t mask = (uint8_t)(fn_splitmix64(&s) % 255 + 1);
        if (offs) offs[i] = off;
        errno = 0;
        rc = xor_at(fd, off, mask);
    }
    if (close(fd) && !rc) rc = -errno;
    return rc;
}
