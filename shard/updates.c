/* updates.c - see updates.h. */
#include "updates.h"

#include <errno.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>
#include <xxhash.h>

/* The keys of every id in the store: an open-addressing set that only grows
 * (a merge starts a new store). One writer at a time (the mutex) inserts
 * with release stores; searches read with acquire loads and never lock. A
 * full table is replaced by one twice the size; the old one is kept until
 * the store closes, since a search may still be reading it. Key 0 is kept
 * apart (has_zero). */
typedef struct keyset {
    size_t cap;                  /* a power of two */
    _Atomic uint64_t slot[];
} keyset;

struct shard_updates {
    MDB_env *env;
    MDB_dbi docs;
    uv_mutex_t mu;               /* one writer */
    _Atomic(keyset *) set;
    keyset **old;                /* replaced tables (freed at close) */
    size_t nold;
    atomic_int has_zero;
    size_t nkeys;                /* writer's count */
    _Atomic uint64_t count, maxver;
};

#define REC_HEAD 9               /* u64le version | u8 live */
#define SU_MAP_START ((size_t)256 << 20)
#define SU_MAP_MAX ((size_t)64 << 30)

static keyset *keyset_new(size_t cap)
{
    keyset *k = calloc(1, sizeof *k + cap * sizeof k->slot[0]);
    if (k) k->cap = cap;
    return k;
}

/* Insert key; 1 if it was not there. */
static int keyset_put(keyset *k, uint64_t key)
{
    size_t m = k->cap - 1, i = (size_t)(key * 0x9E3779B97F4A7C15ull) & m;
    for (;;) {
        uint64_t v = atomic_load_explicit(&k->slot[i], memory_order_relaxed);
        if (v == key) return 0;
        if (v == 0) {
            atomic_store_explicit(&k->slot[i], key, memory_order_release);
            return 1;
        }
        i = (i + 1) & m;
    }
}

/* Insert key (the writer, under mu). 0 or -ENOMEM. */
static int set_add(shard_updates *u, uint64_t key)
{
    if (key == 0) {
        atomic_store_explicit(&u->has_zero, 1, memory_order_release);
        return 0;
    }
    keyset *k = atomic_load_explicit(&u->set, memory_order_relaxed);
    if (2 * (u->nkeys + 1) > k->cap) {
        keyset *nk = keyset_new(2 * k->cap);
        keyset **no = realloc(u->old, (u->nold + 1) * sizeof *no);
        if (!nk || !no) {
            free(nk);
            if (no) u->old = no;
            return -ENOMEM;
        }
        u->old = no;
        for (size_t i = 0; i < k->cap; i++) {
            uint64_t v = atomic_load_explicit(&k->slot[i], memory_order_relaxed);
            if (v) keyset_put(nk, v);
        }
        u->old[u->nold++] = k;
        atomic_store_explicit(&u->set, nk, memory_order_release);
        k = nk;
    }
    u->nkeys += (size_t)keyset_put(k, key);   /* an id written again is one key */
    return 0;
}

int su_excludes(const void *ud, uint64_t key)
{
    const shard_updates *u = ud;
    if (key == 0) return atomic_load_explicit(&((shard_updates *)u)->has_zero, memory_order_acquire);
    keyset *k = atomic_load_explicit(&((shard_updates *)u)->set, memory_order_acquire);
    size_t m = k->cap - 1, i = (size_t)(key * 0x9E3779B97F4A7C15ull) & m;
    for (;;) {
        uint64_t v = atomic_load_explicit(&k->slot[i], memory_order_acquire);
        if (v == key) return 1;
        if (v == 0) return 0;
        i = (i + 1) & m;
    }
}

static int lmdb_err(fn_errbuf *eb, const char *what, int rc)
{
    /* MDB_MAP_FULL, a failed fsync, ...: the store's errno when it is one */
    return fn_seterr(eb, rc > 0 && rc < 1000 ? -rc : FN_EFORMAT, "updates store: %s: %s", what, mdb_strerror(rc));
}

int su_open(const char *dir, shard_updates **out, fn_errbuf *eb)
{
    *out = NULL;
    if (mkdir(dir, 0755) && errno != EEXIST) return fn_seterr(eb, -errno, "%s: %s", dir, strerror(errno));
    shard_updates *u = calloc(1, sizeof *u);
    keyset *k = keyset_new(1024);
    if (!u || !k || uv_mutex_init(&u->mu)) {
        free(u);
        free(k);
        return fn_seterr(eb, -ENOMEM, "out of memory");
    }
    atomic_store(&u->set, k);
    int rc;
    /* a modest map that grows when full (su_apply): a 64 GiB map up front
     * is more address space than valgrind grants a process */
    if ((rc = mdb_env_create(&u->env)) || (rc = mdb_env_set_mapsize(u->env, SU_MAP_START)) ||
        (rc = mdb_env_set_maxdbs(u->env, 2)) || (rc = mdb_env_open(u->env, dir, MDB_NOTLS, 0644))) {
        rc = lmdb_err(eb, dir, rc);
        goto fail;
    }
    MDB_txn *txn;
    if ((rc = mdb_txn_begin(u->env, NULL, 0, &txn))) {
        rc = lmdb_err(eb, "begin", rc);
        goto fail;
    }
    if ((rc = mdb_dbi_open(txn, "docs", MDB_CREATE, &u->docs))) {
        mdb_txn_abort(txn);
        rc = lmdb_err(eb, "open docs", rc);
        goto fail;
    }
    MDB_cursor *cur;
    MDB_val key, val;
    if ((rc = mdb_cursor_open(txn, u->docs, &cur))) {
        mdb_txn_abort(txn);
        rc = lmdb_err(eb, "cursor", rc);
        goto fail;
    }
    int mrc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    for (; mrc == 0; mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (val.mv_size < REC_HEAD) {
            mrc = MDB_CORRUPTED;
            break;
        }
        uint64_t ver;
        memcpy(&ver, val.mv_data, 8);   /* little-endian hosts only (format.h) */
        if (ver > atomic_load(&u->maxver)) atomic_store(&u->maxver, ver);
        if (set_add(u, XXH64(key.mv_data, key.mv_size, 0))) {
            mrc = ENOMEM;
            break;
        }
        atomic_fetch_add(&u->count, 1);
    }
    mdb_cursor_close(cur);
    if (mrc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        rc = lmdb_err(eb, "reading the store", mrc);
        goto fail;
    }
    if ((rc = mdb_txn_commit(txn))) {
        rc = lmdb_err(eb, "commit", rc);
        goto fail;
    }
    *out = u;
    return 0;
fail:
    su_close(u);
    return rc;
}

void su_close(shard_updates *u)
{
    if (!u) return;
    if (u->env) mdb_env_close(u->env);
    for (size_t i = 0; i < u->nold; i++) free(u->old[i]);
    free(u->old);
    free(atomic_load(&u->set));
    uv_mutex_destroy(&u->mu);
    free(u);
}

static int su_apply_once(shard_updates *u, const su_op *ops, size_t n, uint8_t *applied, int *mrc, fn_errbuf *eb);

/* The map is full: twice as large (no transaction of ours is open; the
 * writer's mutex is held). 0, or MDB_MAP_FULL at the ceiling. */
static int grow(shard_updates *u)
{
    MDB_envinfo in;
    mdb_env_info(u->env, &in);
    if (in.me_mapsize >= SU_MAP_MAX) return MDB_MAP_FULL;
    return mdb_env_set_mapsize(u->env, 2 * in.me_mapsize);
}

int su_apply(shard_updates *u, const su_op *ops, size_t n, uint8_t *applied, fn_errbuf *eb)
{
    for (;;) {
        int mrc = 0, rc = su_apply_once(u, ops, n, applied, &mrc, eb);
        if (!rc || mrc != MDB_MAP_FULL) return rc;
        uv_mutex_lock(&u->mu);
        int g = grow(u);
        uv_mutex_unlock(&u->mu);
        if (g) return rc;
    }
}

static int su_apply_once(shard_updates *u, const su_op *ops, size_t n, uint8_t *applied, int *mrc, fn_errbuf *eb)
{
    uv_mutex_lock(&u->mu);
    MDB_txn *txn;
    int rc = mdb_txn_begin(u->env, NULL, 0, &txn);
    if (rc) {
        uv_mutex_unlock(&u->mu);
        return lmdb_err(eb, "begin", rc);
    }
    uint64_t added = 0, maxv = atomic_load(&u->maxver);
    for (size_t i = 0; i < n && !rc; i++) {
        applied[i] = 0;
        MDB_val key = { ops[i].idlen, (void *)ops[i].id }, old;
        int g = mdb_get(txn, u->docs, &key, &old);
        if (g == 0 && old.mv_size >= REC_HEAD) {
            uint64_t ov;
            memcpy(&ov, old.mv_data, 8);
            if (ov >= ops[i].version) continue;   /* a newer (or the same) write is stored */
        } else if (g != MDB_NOTFOUND && g != 0) {
            rc = g;
            break;
        }
        size_t len = REC_HEAD + (ops[i].del ? 0 : ops[i].jsonlen);
        MDB_val val = { len, NULL };
        if ((rc = mdb_put(txn, u->docs, &key, &val, MDB_RESERVE))) break;
        uint8_t *w = val.mv_data;
        memcpy(w, &ops[i].version, 8);
        w[8] = !ops[i].del;
        if (!ops[i].del && ops[i].jsonlen) memcpy(w + REC_HEAD, ops[i].json, ops[i].jsonlen);
        applied[i] = 1;
        added += g == MDB_NOTFOUND;
        if (ops[i].version > maxv) maxv = ops[i].version;
    }
    if (rc) {
        mdb_txn_abort(txn);
        uv_mutex_unlock(&u->mu);
        memset(applied, 0, n);
        *mrc = rc;
        return lmdb_err(eb, "write", rc);
    }
    if ((rc = mdb_txn_commit(txn))) {   /* synchronous: on disk when it returns */
        uv_mutex_unlock(&u->mu);
        memset(applied, 0, n);
        *mrc = rc;
        return lmdb_err(eb, "commit", rc);
    }
    /* hidden from searches before the caller acknowledges */
    int oom = 0;
    for (size_t i = 0; i < n; i++)
        if (applied[i] && set_add(u, XXH64(ops[i].id, ops[i].idlen, 0))) oom = 1;
    atomic_fetch_add(&u->count, added);
    atomic_store(&u->maxver, maxv);
    uv_mutex_unlock(&u->mu);
    /* the writes are durable but a search could still see a document they
     * hide: refuse to acknowledge (the store is reloaded at restart) */
    if (oom) return fn_seterr(eb, -ENOMEM, "updates store: out of memory for the hidden-ids set");
    return 0;
}

int su_get(shard_updates *u, const char *id, size_t idlen, char **json, size_t *len, uint64_t *version,
           fn_errbuf *eb)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(u->env, NULL, MDB_RDONLY, &txn);
    if (rc) return lmdb_err(eb, "begin", rc);
    MDB_val key = { idlen, (void *)id }, val;
    rc = mdb_get(txn, u->docs, &key, &val);
    int ret = 0;
    if (rc == MDB_NOTFOUND) {
        ret = 0;
    } else if (rc) {
        ret = lmdb_err(eb, "get", rc);
    } else if (val.mv_size < REC_HEAD) {
        ret = fn_seterr(eb, FN_ECORRUPT, "updates store: a record of %zu bytes", val.mv_size);
    } else {
        const uint8_t *p = val.mv_data;
        if (version) memcpy(version, p, 8);
        if (!p[8]) {
            ret = 2;
        } else {
            size_t n = val.mv_size - REC_HEAD;
            char *j = malloc(n + 1);
            if (!j) {
                ret = fn_seterr(eb, -ENOMEM, "out of memory");
            } else {
                memcpy(j, p + REC_HEAD, n);
                j[n] = 0;
                *json = j;
                *len = n;
                ret = 1;
            }
        }
    }
    mdb_txn_abort(txn);
    return ret;
}

int su_snapshot(shard_updates *u, su_entry_cb cb, void *ud, fn_errbuf *eb)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(u->env, NULL, MDB_RDONLY, &txn);
    if (rc) return lmdb_err(eb, "begin", rc);
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, u->docs, &cur))) {
        mdb_txn_abort(txn);
        return lmdb_err(eb, "cursor", rc);
    }
    MDB_val key, val;
    int ret = 0, mrc;
    for (mrc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); mrc == 0 && !ret;
         mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (val.mv_size < REC_HEAD) {
            ret = fn_seterr(eb, FN_ECORRUPT, "updates store: a record of %zu bytes", val.mv_size);
            break;
        }
        const uint8_t *p = val.mv_data;
        uint64_t ver;
        memcpy(&ver, p, 8);
        ret = cb(ud, key.mv_data, key.mv_size, ver, p[8], (const char *)p + REC_HEAD, val.mv_size - REC_HEAD);
    }
    if (!ret && mrc != MDB_NOTFOUND) ret = lmdb_err(eb, "reading", mrc);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return ret;
}

int su_prune(shard_updates *u, const su_op *ops, size_t n, size_t *dropped, fn_errbuf *eb)
{
    *dropped = 0;
    uv_mutex_lock(&u->mu);
    MDB_txn *txn;
    int rc = mdb_txn_begin(u->env, NULL, 0, &txn);
    if (rc) {
        uv_mutex_unlock(&u->mu);
        return lmdb_err(eb, "begin", rc);
    }
    size_t gone = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        MDB_val key = { ops[i].idlen, (void *)ops[i].id }, old;
        int g = mdb_get(txn, u->docs, &key, &old);
        if (g == MDB_NOTFOUND) continue;
        if (g) {
            rc = g;
            break;
        }
        uint64_t ov = 0;
        if (old.mv_size >= 8) memcpy(&ov, old.mv_data, 8);
        if (ov > ops[i].version) continue;   /* written again since the merge's export */
        if ((rc = mdb_del(txn, u->docs, &key, NULL))) break;
        gone++;
    }
    /* the ids still hidden: a new set from what is left */
    keyset *k = NULL;
    MDB_cursor *cur = NULL;
    MDB_val key, val;
    size_t left = 0;
    if (!rc) rc = mdb_cursor_open(txn, u->docs, &cur);
    for (int m = rc ? MDB_NOTFOUND : mdb_cursor_get(cur, &key, &val, MDB_FIRST); !rc && m == 0;
         m = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
        left++;
    size_t cap = 1024;
    while (cap < 2 * (left + 1)) cap *= 2;
    if (!rc && !(k = keyset_new(cap))) rc = ENOMEM;
    int zero = 0;
    for (int m = rc ? MDB_NOTFOUND : mdb_cursor_get(cur, &key, &val, MDB_FIRST); !rc && m == 0;
         m = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        uint64_t h = XXH64(key.mv_data, key.mv_size, 0);
        if (h) keyset_put(k, h);
        else zero = 1;
    }
    if (cur) mdb_cursor_close(cur);
    if (!rc) {
        keyset **no = realloc(u->old, (u->nold + 1) * sizeof *no);
        if (no) u->old = no;
        else rc = ENOMEM;
    }
    if (rc) {
        mdb_txn_abort(txn);
        free(k);
        uv_mutex_unlock(&u->mu);
        return lmdb_err(eb, "prune", rc);
    }
    if ((rc = mdb_txn_commit(txn))) {   /* freed the txn: nothing changed */
        free(k);
        uv_mutex_unlock(&u->mu);
        return lmdb_err(eb, "prune", rc);
    }
    u->old[u->nold++] = atomic_load(&u->set);   /* a search may still read it */
    atomic_store_explicit(&u->set, k, memory_order_release);
    atomic_store_explicit(&u->has_zero, zero, memory_order_release);
    u->nkeys = left;
    atomic_store(&u->count, left);
    uv_mutex_unlock(&u->mu);
    *dropped = gone;
    return 0;
}

uint64_t su_count(const shard_updates *u) { return atomic_load(&((shard_updates *)u)->count); }
uint64_t su_max_version(const shard_updates *u) { return atomic_load(&((shard_updates *)u)->maxver); }
