/* fn_io.c - see fn_io.h. */
#include "fn_io.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <xxhash.h>

int fn_mkdirs(const char *dir, unsigned mode)
{
    char tmp[PATH_MAX];
    size_t n = strlen(dir);
    if (n >= sizeof tmp) return -ENAMETOOLONG;
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(tmp, (mode_t)mode) != 0 && errno != EEXIST) return -errno;
        if (!c) return 0;
        *p = c;
    }
}

int fn_read_lines(const char *path, fn_line_fn fn, void *ud, fn_errbuf *eb)
{
    FILE *f = fopen(path, "r");
    if (!f) return fn_seterr(eb, -errno, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    int rc = 0;
    for (;;) {
        errno = 0;
        ssize_t len = getline(&line, &cap, f);
        if (len < 0) {
            /* getline sets errno for ENOMEM as well as for read errors */
            if (ferror(f) || errno == ENOMEM)
                rc = fn_seterr(eb, errno ? -errno : -EIO, "%s: read error", path);
            break;
        }
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if ((rc = fn(ud, line, (size_t)len, lineno)) != 0) break;
    }
    free(line);
    fclose(f);
    return rc;
}

void fn_format_bytes(uint64_t bytes, char *buf, size_t cap)
{
    static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

int fn_read_file(const char *path, size_t max, char **buf, size_t *len, fn_errbuf *eb)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return fn_seterr(eb, -errno, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return fn_seterr(eb, -e, "%s: %s", path, strerror(e));
    }
    if ((uint64_t)st.st_size > (uint64_t)max) {
        fclose(f);
        return fn_seterr(eb, FN_ELIMIT, "%s: %lld bytes, more than %zu", path, (long long)st.st_size, max);
    }
    size_t n = (size_t)st.st_size;
    char *b = malloc(n + 1);
    if (!b) {
        fclose(f);
        return fn_seterr(eb, -ENOMEM, "%s: out of memory", path);
    }
    size_t got = fread(b, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != n) {
        free(b);
        return fn_seterr(eb, -EIO, "%s: short read", path);
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

int fn_sbuf_printf(fn_sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return -EINVAL;
        if (b->p && (size_t)k < b->cap - b->len) {
            b->len += (size_t)k;
            return 0;
        }
        size_t nc = b->cap ? b->cap * 2 : 1 << 16;
        while (nc < b->len + (size_t)k + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) return -ENOMEM;
        b->p = np;
        b->cap = nc;
    }
}

int fn_write_checksummed(const char *path, fn_sbuf *b, fn_errbuf *eb)
{
    int rc = fn_sbuf_printf(b, "checksum %016llx\n", (unsigned long long)XXH64(b->p, b->len, 0));
    size_t plen = strlen(path);
    char *tmp = rc ? NULL : malloc(plen + 5);
    if (!tmp) {
        free(b->p);
        *b = (fn_sbuf){ 0 };
        return fn_seterr(eb, -ENOMEM, "%s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = fn_seterr(eb, -errno, "%s: %s", tmp, strerror(errno));
    } else {
        int bad = fwrite(b->p, 1, b->len, f) != b->len;
        bad |= fflush(f) != 0;
        bad |= fsync(fileno(f)) != 0;   /* the bytes on disk before the name points at them */
        int e = errno;
        bad |= fclose(f) != 0;
        if (bad) rc = fn_seterr(eb, -(e ? e : EIO), "%s: cannot write: %s", tmp, strerror(e ? e : EIO));
        else if (rename(tmp, path) != 0) rc = fn_seterr(eb, -errno, "%s: cannot rename: %s", path, strerror(errno));
        if (rc) remove(tmp);
    }
    free(tmp);
    free(b->p);
    *b = (fn_sbuf){ 0 };
    return rc;
}

int fn_check_checksummed(char *p, size_t n, const char *name, const char *what, size_t *len, fn_errbuf *eb)
{
    static const char kw[] = "checksum ";
    const size_t cl = sizeof kw - 1 + 16 + 1;
    if (n < cl || p[n - 1] != '\n' || memcmp(p + n - cl, kw, sizeof kw - 1) != 0 || (n > cl && p[n - cl - 1] != '\n'))
        return fn_seterr(eb, FN_ECORRUPT, "%s: no checksum line at the end (truncated or not %s)", name, what);
    char hex[17];
    memcpy(hex, p + n - 17, 16);
    hex[16] = 0;
    char *end;
    unsigned long long want = strtoull(hex, &end, 16);
    if (*end || strspn(hex, "0123456789abcdef") != 16) return fn_seterr(eb, FN_ECORRUPT, "%s: damaged checksum line", name);
    unsigned long long have = (unsigned long long)XXH64(p, n - cl, 0);
    if (have != want)
        return fn_seterr(eb, FN_ECORRUPT, "%s: checksum mismatch (file %016llx, data %016llx): damaged", name, want,
                         have);
    if (memchr(p, 0, n - cl)) return fn_seterr(eb, FN_EFORMAT, "%s: NUL byte in %s", name, what);
    p[n - cl] = 0;
    *len = n - cl;
    return 0;
}

int fn_read_checksummed(const char *path, size_t max, const char *what, char **buf, size_t *len, fn_errbuf *eb)
{
    char *p;
    size_t n;
    *buf = NULL;
    *len = 0;
    int rc = fn_read_file(path, max, &p, &n, eb);
    if (rc) return rc == FN_ELIMIT ? fn_seterr(eb, FN_EFORMAT, "%s: too large for %s", path, what) : rc;
    if ((rc = fn_check_checksummed(p, n, path, what, len, eb))) {
        free(p);
        return rc;
    }
    *buf = p;
    return 0;
}
