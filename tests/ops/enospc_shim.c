/* enospc_shim.c - an LD_PRELOAD library for tests: a disk that fills up.
 *
 * Files whose path starts with $FUNNEL_ENOSPC_DIR share a budget of
 * $FUNNEL_ENOSPC_AFTER bytes. Writes to them are counted; the write that
 * crosses the budget is short (what still fits) and every later one fails
 * with ENOSPC, as on a real full filesystem. statvfs() on a path under the
 * directory reports the bytes left as the free space. Everything else passes
 * through untouched. Used by tests/integration/test_disk_full.sh.
 *
 * Which writes it sees: the libc calls other libraries and programs make
 * through the PLT - write, pwrite, pwrite64, writev (LMDB's data.mdb) - and
 * stdio streams opened with fopen/fopen64 for writing (the builder's run
 * files, jansson's index.json, checksum files). glibc's stdio writes its
 * buffers with internal calls that an LD_PRELOAD library cannot interpose,
 * so those streams are counted where data enters them: fwrite, fputs, fputc,
 * putc, fprintf, vfprintf. Over the budget such a call writes what fits and
 * fails with ENOSPC and the stream's error flag set (ferror), as a real full
 * disk makes it fail at the next buffer flush; fileno(), fflush() and
 * fclose() stay the real ones.
 *
 * $FUNNEL_ENOSPC_LOG (optional): a file that gets one line per counted write,
 * "OFFSET BYTES PATH" (OFFSET = bytes counted before it), so a test can find
 * where each phase of a job starts and set budgets from that.
 *
 * Not part of Funnel: built only for tests (tests/ops/meson.build), plain C
 * without sanitizers (under ASan, set ASAN_OPTIONS=verify_asan_link_order=0).
 */
#define _GNU_SOURCE
#undef _FILE_OFFSET_BITS   /* define pwrite and pwrite64 etc. as separate symbols */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static const char *dir;          /* NULL: the shim does nothing */
static size_t dirlen;
static uint64_t budget;
static uint64_t used;            /* bytes counted so far (atomic) */
static int logfd = -1;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static FILE *(*real_fopen)(const char *, const char *);
static FILE *(*real_fopen64)(const char *, const char *);
static int (*real_fclose)(FILE *);
static size_t (*real_fwrite)(const void *, size_t, size_t, FILE *);
static int (*real_fputs)(const char *, FILE *);
static int (*real_fputc)(int, FILE *);
static int (*real_vfprintf)(FILE *, const char *, va_list);
static int (*real_statvfs)(const char *, struct statvfs *);
static int (*real_statvfs64)(const char *, struct statvfs64 *);

__attribute__((constructor)) static void shim_init(void)
{
    real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    real_pwrite = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = (ssize_t (*)(int, const void *, size_t, off64_t))dlsym(RTLD_NEXT, "pwrite64");
    real_writev = (ssize_t (*)(int, const struct iovec *, int))dlsym(RTLD_NEXT, "writev");
    real_fopen = (FILE *(*)(const char *, const char *))dlsym(RTLD_NEXT, "fopen");
    real_fopen64 = (FILE *(*)(const char *, const char *))dlsym(RTLD_NEXT, "fopen64");
    real_fclose = (int (*)(FILE *))dlsym(RTLD_NEXT, "fclose");
    real_fwrite = (size_t (*)(const void *, size_t, size_t, FILE *))dlsym(RTLD_NEXT, "fwrite");
    real_fputs = (int (*)(const char *, FILE *))dlsym(RTLD_NEXT, "fputs");
    real_fputc = (int (*)(int, FILE *))dlsym(RTLD_NEXT, "fputc");
    real_vfprintf = (int (*)(FILE *, const char *, va_list))dlsym(RTLD_NEXT, "vfprintf");
    real_statvfs = (int (*)(const char *, struct statvfs *))dlsym(RTLD_NEXT, "statvfs");
    real_statvfs64 = (int (*)(const char *, struct statvfs64 *))dlsym(RTLD_NEXT, "statvfs64");
    const char *d = getenv("FUNNEL_ENOSPC_DIR"), *a = getenv("FUNNEL_ENOSPC_AFTER");
    if (!d || !*d || !a || !*a) return;
    budget = strtoull(a, NULL, 10);
    dirlen = strlen(d);
    while (dirlen > 1 && d[dirlen - 1] == '/') dirlen--;
    dir = d;
    const char *log = getenv("FUNNEL_ENOSPC_LOG");
    if (log && *log) logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static int under_dir(const char *path)
{
    return dir && path && strncmp(path, dir, dirlen) == 0 && (path[dirlen] == '/' || path[dirlen] == '\0');
}

static int fd_under_dir(int fd, char *path, size_t cap)
{
    if (!dir || fd < 0) return 0;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, cap - 1);
    if (n <= 0) return 0;
    path[n] = '\0';
    return under_dir(path);
}

/* Reserve up to want bytes of the budget for a write to path; returns how
 * many may be written (0: the disk is full). */
static size_t take(const char *path, size_t want)
{
    uint64_t before = __atomic_load_n(&used, __ATOMIC_SEQ_CST), grant;
    do {
        grant = before >= budget ? 0 : (budget - before < want ? budget - before : want);
    } while (grant && !__atomic_compare_exchange_n(&used, &before, before + grant, 0,
                                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    if (logfd >= 0 && want) {
        char line[PATH_MAX + 64];
        int n = snprintf(line, sizeof line, "%llu %zu %s\n", (unsigned long long)before, want, path);
        if (n > 0) real_write(logfd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    }
    return (size_t)grant;
}

/* A write that wrote less than take() granted (or failed) gives the rest back. */
static void give_back(size_t unused) { if (unused) __atomic_fetch_sub(&used, unused, __ATOMIC_SEQ_CST); }

ssize_t write(int fd, const void *buf, size_t n)
{
    char path[PATH_MAX];
    if (!real_write) shim_init();
    if (!n || !fd_under_dir(fd, path, sizeof path)) return real_write(fd, buf, n);
    size_t g = take(path, n);
    if (!g) { errno = ENOSPC; return -1; }
    ssize_t w = real_write(fd, buf, g);
    give_back(w < 0 ? g : g - (size_t)w);
    return w;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    char path[PATH_MAX];
    if (!real_pwrite) shim_init();
    if (!n || !fd_under_dir(fd, path, sizeof path)) return real_pwrite(fd, buf, n, off);
    size_t g = take(path, n);
    if (!g) { errno = ENOSPC; return -1; }
    ssize_t w = real_pwrite(fd, buf, g, off);
    give_back(w < 0 ? g : g - (size_t)w);
    return w;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    char path[PATH_MAX];
    if (!real_pwrite64) shim_init();
    if (!n || !fd_under_dir(fd, path, sizeof path)) return real_pwrite64(fd, buf, n, off);
    size_t g = take(path, n);
    if (!g) { errno = ENOSPC; return -1; }
    ssize_t w = real_pwrite64(fd, buf, g, off);
    give_back(w < 0 ? g : g - (size_t)w);
    return w;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    char path[PATH_MAX];
    if (!real_writev) shim_init();
    size_t n = 0;
    for (int i = 0; i < cnt; i++) n += iov[i].iov_len;
    if (!n || !fd_under_dir(fd, path, sizeof path)) return real_writev(fd, iov, cnt);
    size_t g = take(path, n);
    if (!g) { errno = ENOSPC; return -1; }
    if (g == n) {
        ssize_t w = real_writev(fd, iov, cnt);
        give_back(w < 0 ? g : g - (size_t)w);
        return w;
    }
    /* a short write: the first g bytes of the vector */
    struct iovec part[IOV_MAX];
    int k = 0;
    size_t left = g;
    for (int i = 0; i < cnt && left && k < IOV_MAX; i++, k++) {
        part[k] = iov[i];
        if (part[k].iov_len > left) part[k].iov_len = left;
        left -= part[k].iov_len;
    }
    ssize_t w = real_writev(fd, part, k);
    give_back(w < 0 ? g : g - (size_t)w);
    return w;
}

/* ---- stdio: write-mode streams under the directory ---- */

#define MAX_STREAMS 256
static struct { FILE *f; char path[PATH_MAX]; } streams[MAX_STREAMS];

static const char *stream_path(FILE *f)
{
    if (!dir || !f) return NULL;
    for (int i = 0; i < MAX_STREAMS; i++)
        if (__atomic_load_n(&streams[i].f, __ATOMIC_ACQUIRE) == f) return streams[i].path;
    return NULL;
}

static FILE *track(FILE *f, const char *path, const char *mode)
{
    if (!f || !under_dir(path) || !strpbrk(mode, "wa+")) return f;
    for (int i = 0; i < MAX_STREAMS; i++) {
        FILE *none = NULL;
        if (__atomic_load_n(&streams[i].f, __ATOMIC_ACQUIRE) == NULL) {
            snprintf(streams[i].path, sizeof streams[i].path, "%s", path);
            if (__atomic_compare_exchange_n(&streams[i].f, &none, f, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                return f;
        }
    }
    return f;   /* table full: not counted */
}

FILE *fopen(const char *path, const char *mode)
{
    if (!real_fopen) shim_init();
    return track(real_fopen(path, mode), path, mode);
}

FILE *fopen64(const char *path, const char *mode)
{
    if (!real_fopen64) shim_init();
    return track(real_fopen64(path, mode), path, mode);
}

int fclose(FILE *f)
{
    if (!real_fclose) shim_init();
    for (int i = 0; dir && i < MAX_STREAMS; i++)
        if (__atomic_load_n(&streams[i].f, __ATOMIC_ACQUIRE) == f)
            __atomic_store_n(&streams[i].f, NULL, __ATOMIC_RELEASE);
    return real_fclose(f);
}

/* Put n bytes into tracked stream f (path): all of them, or what fits and
 * then ENOSPC with the stream's error flag set. Returns the bytes put. */
static size_t stream_put(FILE *f, const char *path, const void *buf, size_t n)
{
    size_t g = take(path, n);
    size_t w = g ? real_fwrite(buf, 1, g, f) : 0;
    give_back(g - w);
    if (w < n) {
        if (g == n) return w;            /* the real fwrite failed; its errno stands */
        f->_flags |= _IO_ERR_SEEN;
        errno = ENOSPC;
    }
    return w;
}

size_t fwrite(const void *buf, size_t size, size_t nmemb, FILE *f)
{
    if (!real_fwrite) shim_init();
    const char *path = stream_path(f);
    if (!path || !size || !nmemb) return real_fwrite(buf, size, nmemb, f);
    return stream_put(f, path, buf, size * nmemb) / size;
}

int fputs(const char *str, FILE *f)
{
    if (!real_fputs) shim_init();
    const char *path = stream_path(f);
    if (!path) return real_fputs(str, f);
    size_t n = strlen(str);
    return stream_put(f, path, str, n) == n ? 1 : EOF;
}

int fputc(int c, FILE *f)
{
    if (!real_fputc) shim_init();
    const char *path = stream_path(f);
    if (!path) return real_fputc(c, f);
    unsigned char ch = (unsigned char)c;
    return stream_put(f, path, &ch, 1) == 1 ? ch : EOF;
}

int putc(int c, FILE *f) { return fputc(c, f); }

int vfprintf(FILE *f, const char *fmt, va_list ap)
{
    if (!real_vfprintf) shim_init();
    const char *path = stream_path(f);
    if (!path) return real_vfprintf(f, fmt, ap);
    char *text = NULL;
    int n = vasprintf(&text, fmt, ap);
    if (n < 0) return -1;
    size_t w = stream_put(f, path, text, (size_t)n);
    free(text);
    return w == (size_t)n ? n : -1;
}

int fprintf(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(f, fmt, ap);
    va_end(ap);
    return n;
}

/* ---- the free space a full disk would show ---- */

int statvfs(const char *path, struct statvfs *st)
{
    if (!real_statvfs) shim_init();
    int rc = real_statvfs(path, st);
    if (rc == 0 && under_dir(path) && st->f_frsize) {
        uint64_t u = __atomic_load_n(&used, __ATOMIC_SEQ_CST);
        st->f_bavail = st->f_bfree = (fsblkcnt_t)((u >= budget ? 0 : budget - u) / st->f_frsize);
    }
    return rc;
}

int statvfs64(const char *path, struct statvfs64 *st)
{
    if (!real_statvfs64) shim_init();
    int rc = real_statvfs64(path, st);
    if (rc == 0 && under_dir(path) && st->f_frsize) {
        uint64_t u = __atomic_load_n(&used, __ATOMIC_SEQ_CST);
        st->f_bavail = st->f_bfree = (fsblkcnt64_t)((u >= budget ? 0 : budget - u) / st->f_frsize);
    }
    return rc;
}
