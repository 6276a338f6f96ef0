/* integrity.c - see integrity.h. */
#define _GNU_SOURCE /* REG_RIP: the faulting instruction of a SIGSEGV */
#include "integrity.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include <xxhash.h>

#include "format.h"

#define HASH_CHUNK (1u << 20)

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int idx_file_hash(const char *path, uint64_t *hash, uint64_t *bytes, fn_errbuf *eb)
{
    return idx_file_hash_paced(path, NULL, hash, bytes, eb);
}

/* Bytes of [off, off + len) of the mapping map (page-aligned, of a file of
 * size bytes) that are not in the page cache; 0 when mincore cannot tell. */
static uint64_t cold_in(const uint8_t *map, uint64_t size, uint64_t off, uint64_t len, unsigned char *vec,
                        long page)
{
    if (!map || off >= size) return 0;
    if (len > size - off) len = size - off;
    if (mincore((void *)(map + off), len, vec) != 0) return 0;
    uint64_t pages = (len + (uint64_t)page - 1) / (uint64_t)page, cold = 0;
    for (uint64_t i = 0; i < pages; i++)
        if (!(vec[i] & 1)) cold += (uint64_t)page;
    return cold > len ? len : cold;
}

/* Before 1 MiB at off of a paced pass (hash or populate): a pause as long as
 * this MiB's pages take at their rate (cold or warm: mincore on map, which
 * may be NULL), then, while the host is busy, a wait within the budget; the
 * time waited moves the schedule (no burst to catch up). */
static void pace_chunk(idx_pace *pace, uint64_t warm, uint64_t cold, const uint8_t *map, uint64_t size,
                       uint64_t off, unsigned char *vec, long page, int64_t t0, double *due_ns)
{
    /* the file's pages and the work on them pass through the caches a
     * little at a time, so the searches beside it keep their working set */
    uint64_t c = cold_in(map, size, off, HASH_CHUNK, vec, page);
    if (pace) pace->cold_bytes += c;
    int64_t now = mono_ns(), due = t0 + (int64_t)*due_ns;
    if (due > now) {
        struct timespec ts = { .tv_sec = (time_t)((due - now) / 1000000000LL),
                               .tv_nsec = (long)((due - now) % 1000000000LL) };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
    double chunk_ns = (double)c * 1e9 / (double)cold + (double)(HASH_CHUNK - c) * 1e9 / (double)warm;   /* c <= 1 MiB */
    *due_ns += chunk_ns;
    /* the host's own work first: wait while it is busy (a shard: CPU pressure) */
    if (pace && pace->busy) {
        int64_t y0 = mono_ns(), budget = (int64_t)(chunk_ns * IDX_PACE_MAX_YIELD);
        while (mono_ns() - y0 < budget && pace->busy(pace->busy_ud)) {
            struct timespec ys = { 0, IDX_PACE_YIELD_MS * 1000000L };
            nanosleep(&ys, NULL);
        }
        int64_t waited = mono_ns() - y0;
        pace->yield_ns += (uint64_t)waited;
        *due_ns += (double)waited;
    }
}

int idx_file_hash_paced(const char *path, idx_pace *pace, uint64_t *hash, uint64_t *bytes, fn_errbuf *eb)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fn_seterr(eb, -errno, "%s: %s", path, strerror(errno));
    int rc = 0;
    uint8_t *buf = malloc(HASH_CHUNK);
    XXH3_state_t *st = XXH3_createState();
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || page > (long)HASH_CHUNK) page = 4096;
    unsigned char *vec = malloc(HASH_CHUNK / (size_t)page + 1);
    const uint8_t *map = NULL;
    uint64_t size = 0;
    if (!buf || !st || !vec) { rc = fn_seterr(eb, -ENOMEM, "out of memory"); goto out; }
    XXH3_64bits_reset(st);
    uint64_t warm = pace ? pace->warm_bps : 0, cold = pace ? (pace->cold_bps ? pace->cold_bps : warm) : 0;
    if (pace) pace->cold_bytes = pace->yield_ns = 0;
    struct stat sb;
    if (warm && cold != warm && fstat(fd, &sb) == 0 && sb.st_size > 0) {
        /* mapped only for mincore, never read through: a file cut short
         * meanwhile cannot fault here (the reads are preads) */
        size = (uint64_t)sb.st_size;
        void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
        map = m == MAP_FAILED ? NULL : m;
        /* no readahead: it would fetch the next MiB from the disk in the
         * background, and mincore would then count it as warm */
        if (map) (void)posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
    }
    uint64_t off = 0;
    double due_ns = 0;   /* the time the bytes read so far may take, at their rates */
    int64_t t0 = mono_ns();
    for (;;) {
        if (warm) pace_chunk(pace, warm, cold, map, size, off, vec, page, t0, &due_ns);
        ssize_t n = pread(fd, buf, HASH_CHUNK, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) continue;
            rc = fn_seterr(eb, -errno, "%s: read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0) break;
        XXH3_64bits_update(st, buf, (size_t)n);
        off += (uint64_t)n;
    }
    *hash = XXH3_64bits_digest(st);
    *bytes = off;
out:
    if (map) munmap((void *)map, (size_t)size);
    XXH3_freeState(st);
    free(vec);
    free(buf);
    close(fd);
    return rc;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22   /* Linux 5.14 (uapi asm-generic/mman-common.h) */
#endif

int idx_map_populate(const void *map, uint64_t len, idx_pace *pace, uint64_t *mapped)
{
    *mapped = 0;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || page > (long)HASH_CHUNK) page = 4096;
    unsigned char *vec = malloc(HASH_CHUNK / (size_t)page + 1);
    if (!vec) return -ENOMEM;
    uint64_t warm = pace ? pace->warm_bps : 0, cold = pace ? (pace->cold_bps ? pace->cold_bps : warm) : 0;
    if (pace) pace->cold_bytes = pace->yield_ns = 0;
    const uint8_t *m = map;
    double due_ns = 0;
    int64_t t0 = mono_ns();
    int rc = 0;
    for (uint64_t off = 0; off < len; off += HASH_CHUNK) {
        if (warm) pace_chunk(pace, warm, cold, m, len, off, vec, page, t0, &due_ns);
        uint64_t n = len - off < HASH_CHUNK ? len - off : HASH_CHUNK;
        /* EINVAL: a kernel before 5.14; EFAULT: past the end of the file
         * (it was cut short: a read there would be a SIGBUS) */
        int r, tries = 0;
        /* the pages not in the page cache in one read first: the populate
         * alone reads them a page at a time (the map is MADV_RANDOM), 4 KiB
         * reads that took 13.4 s for a cold 666 MiB shard file on the dev VM
         * against 0.3 s so (an idle-priority loader's reads beside searches) */
        (void)madvise((void *)(m + off), (size_t)n, MADV_WILLNEED);
        do r = madvise((void *)(m + off), (size_t)n, MADV_POPULATE_READ);
        while (r != 0 && (errno == EINTR || errno == EAGAIN) && ++tries < 100);
        if (r != 0) {
            rc = -errno;
            break;
        }
        *mapped += n;
    }
    free(vec);
    return rc;
}

int idx_checksum_write(const char *shard_dir, uint64_t hash, uint64_t bytes, fn_errbuf *eb)
{
    char path[4200], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", shard_dir, IDX_CHECKSUM_FILE);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", shard_dir, IDX_CHECKSUM_FILE);
    FILE *f = fopen(tmp, "w");
    if (!f) return fn_seterr(eb, -errno, "%s: %s", tmp, strerror(errno));
    int bad = fprintf(f, "funnel-checksum 1\nxxh3-64 %016" PRIx64 "\nbytes %" PRIu64 "\n", hash, bytes) < 0;
    bad |= fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0;
    int e = errno;
    bad |= fclose(f) != 0;
    if (bad) {
        if (!e) e = errno ? errno : EIO;
        unlink(tmp);
        return fn_seterr(eb, -e, "%s: %s", tmp, strerror(e));
    }
    if (rename(tmp, path)) {
        e = errno;
        unlink(tmp);
        return fn_seterr(eb, -e, "%s: %s", path, strerror(e));
    }
    return 0;
}

int idx_checksum_read(const char *shard_dir, uint64_t *hash, uint64_t *bytes, fn_errbuf *eb)
{
    char path[4200], text[256];
    snprintf(path, sizeof path, "%s/%s", shard_dir, IDX_CHECKSUM_FILE);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return fn_seterr(eb, FN_EFORMAT, "%s: missing: the index was not built completely "
                             "(or by a build before schema 2)", path);
        return fn_seterr(eb, -errno, "%s: %s", path, strerror(errno));
    }
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char hex[17];
    uint64_t b;
    int used = 0;
    if (sscanf(text, "funnel-checksum 1\nxxh3-64 %16[0-9a-f]\nbytes %" SCNu64 "\n%n", hex, &b, &used) != 2 ||
        strlen(hex) != 16 || (size_t)used != n)
        return fn_seterr(eb, FN_EFORMAT, "%s: not a funnel checksum file", path);
    *hash = strtoull(hex, NULL, 16);
    *bytes = b;
    return 0;
}

int idx_verify_file(const char *shard_dir, fn_errbuf *eb)
{
    return idx_verify_file_paced(shard_dir, NULL, eb);
}

int idx_verify_file_paced(const char *shard_dir, idx_pace *pace, fn_errbuf *eb)
{
    uint64_t want, want_bytes, got, got_bytes;
    int rc = idx_checksum_read(shard_dir, &want, &want_bytes, eb);
    if (rc) return rc;
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", shard_dir);
    if ((rc = idx_file_hash_paced(path, pace, &got, &got_bytes, eb))) return rc;
    if (got_bytes != want_bytes)
        return fn_seterr(eb, FN_ECORRUPT, "%s: %" PRIu64 " bytes, but the build wrote %" PRIu64
                         ": the file was truncated or changed after the build", path, got_bytes, want_bytes);
    if (got != want)
        return fn_seterr(eb, FN_ECORRUPT, "%s: content does not match its checksum "
                         "(xxh3-64 %016" PRIx64 ", built as %016" PRIx64 "): the file is damaged",
                         path, got, want);
    return 0;
}

int idx_meta_sum(MDB_txn *txn, MDB_dbi meta, uint32_t *out)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, meta, &c);
    if (rc) return rc > 0 ? -rc : rc;
    XXH3_state_t *st = XXH3_createState();
    if (!st) { mdb_cursor_close(c); return -ENOMEM; }
    XXH3_64bits_reset(st);
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size == 8 && memcmp(k.mv_data, "meta_sum", 8) == 0) continue;
        uint8_t len[8];
        idx_put_u32le(len, (uint32_t)k.mv_size);
        idx_put_u32le(len + 4, (uint32_t)v.mv_size);
        XXH3_64bits_update(st, len, 8);
        XXH3_64bits_update(st, k.mv_data, k.mv_size);
        XXH3_64bits_update(st, v.mv_data, v.mv_size);
    }
    mdb_cursor_close(c);
    *out = (uint32_t)XXH3_64bits_digest(st);
    XXH3_freeState(st);
    if (rc != MDB_NOTFOUND) return rc > 0 ? -rc : rc;
    return 0;
}

int idx_is_damage(int rc)
{
    return rc == FN_ECORRUPT || rc == FN_EFORMAT || rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND ||
           rc == MDB_INVALID || rc == MDB_BAD_TXN || rc == MDB_BAD_VALSIZE || rc == MDB_VERSION_MISMATCH ||
           /* a sealed index never changes: LMDB seeing a database's flags or the
            * map size change, or a tree deeper than it can be, is damage */
           rc == MDB_INCOMPATIBLE || rc == MDB_BAD_DBI || rc == MDB_MAP_RESIZED || rc == MDB_CURSOR_FULL;
}

int idx_map_of(const void *inside, const char **start, size_t *len)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f) return -errno;
    uintptr_t a = (uintptr_t)inside;
    char line[512];
    int rc = -ENOENT, bol = 1;
    while (fgets(line, sizeof line, f)) {
        /* only the start of a line holds the range (a long path spans reads) */
        int at_bol = bol;
        bol = strchr(line, '\n') != NULL;
        unsigned long long lo, hi;
        if (!at_bol || sscanf(line, "%llx-%llx", &lo, &hi) != 2) continue;
        if (a >= lo && a < hi) {
            *start = (const char *)(uintptr_t)lo;
            *len = (size_t)(hi - lo);
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

/* ---- SIGBUS guard ---- */

/* LMDB trusts its pages: a damaged one can make it dereference NULL (a node
 * flagged F_DUPDATA in a database that has no duplicates) or read a little
 * past the map (a node offset or key size). A SIGSEGV under a guard is
 * taken for such damage only when the faulting instruction is LMDB's, or the
 * address is just past a guarded map; anything else is a bug and dies. */
#define PAST_MAP (256u << 10)

static _Thread_local idx_guard *guard_top;
static struct sigaction guard_old_bus, guard_old_segv;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static int guard_err;
static const char *lmdb_text;     /* LMDB's code: the mapping holding mdb_get */
static size_t lmdb_text_len;

static int pc_in_lmdb(void *uc)
{
    uintptr_t pc = 0;
#if defined(__x86_64__)
    pc = (uintptr_t)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    pc = (uintptr_t)((ucontext_t *)uc)->uc_mcontext.pc;
#else
    (void)uc;
#endif
    return lmdb_text && pc >= (uintptr_t)lmdb_text && pc - (uintptr_t)lmdb_text < lmdb_text_len;
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    int in_lmdb = sig == SIGSEGV && pc_in_lmdb(uc);
    for (idx_guard *g = guard_top; g; g = g->prev) {
        uintptr_t lo = (uintptr_t)g->lo, hi = (uintptr_t)g->hi;
        int in_map = a >= lo && a < hi;
        int ours = sig == SIGBUS ? in_map : in_lmdb || in_map || (a >= hi && a - hi < PAST_MAP);
        if (ours) {
            g->fault = si->si_addr;
            g->sig = sig;
            guard_top = g->prev;
            siglongjmp(g->jb, 1);
        }
    }
    /* Not ours: put the previous disposition back and return, so the access
     * faults again and gets it (by default, a core dump). */
    const struct sigaction *old = sig == SIGBUS ? &guard_old_bus : &guard_old_segv;
    sigaction(sig, old, NULL);
    if (!(old->sa_flags & SA_SIGINFO) && old->sa_handler == SIG_IGN) signal(sig, SIG_DFL);
}

static void guard_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    const char *text;
    size_t len;
    /* dlsym: LMDB's own code, not a PLT stub of a non-PIE program */
    void *fn = dlsym(RTLD_DEFAULT, "mdb_get");
    if (!fn) fn = (void *)(uintptr_t)&mdb_get;
    if (idx_map_of(fn, &text, &len) == 0) {
        lmdb_text = text;
        lmdb_text_len = len;
    }
    if (sigaction(SIGBUS, &sa, &guard_old_bus) != 0 || sigaction(SIGSEGV, &sa, &guard_old_segv) != 0)
        guard_err = -errno;
}

int idx_guard_enter(idx_guard *g, const void *map, size_t len)
{
    pthread_once(&guard_once, guard_install);
    if (guard_err) return guard_err;
    g->lo = map;
    g->hi = len == IDX_GUARD_ANY ? (const char *)UINTPTR_MAX : (const char *)map + len;
    g->fault = NULL;
    g->sig = 0;
    g->lmdb_assert[0] = '\0';
    g->prev = guard_top;
    guard_top = g;
    return 0;
}

void idx_guard_leave(idx_guard *g)
{
    /* after a jump the handler has already unlinked g */
    if (guard_top == g) guard_top = g->prev;
}

const char *idx_guard_what(const idx_guard *g)
{
    static _Thread_local char buf[256];
    if (g->sig == SIGBUS) return "reading it faulted (SIGBUS): the file was truncated";
    if (g->sig == SIGSEGV) return "LMDB faulted (SIGSEGV) on a damaged page";
    snprintf(buf, sizeof buf, "LMDB stopped at a damaged page (%s)", g->lmdb_assert);
    return buf;
}

void idx_lmdb_assert(MDB_env *env, const char *msg)
{
    (void)env;
    idx_guard *g = guard_top;
    if (!g) return;
    snprintf(g->lmdb_assert, sizeof g->lmdb_assert, "%s", msg);
    guard_top = g->prev;
    siglongjmp(g->jb, 1);
}
