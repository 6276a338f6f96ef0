/* testutil.c - see testutil.h. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "testutil.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void tu_mkdtemp(char *dir, size_t cap, const char *tmpl)
{
    cr_assert_lt(strlen(tmpl), cap, "template too long: %s", tmpl);
    snprintf(dir, cap, "%s", tmpl);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp %s", tmpl);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

int tu_rmtree(const char *dir)
{
    return nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

void tu_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0, "cannot write %s", path);
}

void tu_write_temp(char *path, size_t cap, const char *tmpl, const char *text)
{
    cr_assert_lt(strlen(tmpl), cap, "template too long: %s", tmpl);
    snprintf(path, cap, "%s", tmpl);
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0, "mkstemp %s", tmpl);
    size_t n = strlen(text);
    cr_assert_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    size_t got;
    while ((got = fread(s + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            s = realloc(s, cap *= 2);
            cr_assert_not_null(s);
        }
    }
    fclose(f);
    s[n] = '\0';
    if (len) *len = n;
    return s;
}

const char *tu_data_dir(void)
{
    const char *d = getenv("FUNNEL_DATA");
    return d ? d : "../shared/data";
}
