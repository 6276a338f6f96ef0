/* fn_io.c - see fn_io.h. */
#include "fn_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

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
