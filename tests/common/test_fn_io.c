/* test_fn_io.c - fn_read_file (common/fn_io.c): the whole file, NUL
 * terminated; a size limit; a missing file. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fn_io.h"

Test(fn_io, read_file)
{
    char path[] = "/tmp/test_fn_io_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char text[] = "abc\n\0def";
    cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    char *buf;
    size_t len;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(fn_read_file(path, 100, &buf, &len, &eb), 0, "%s", eb.msg);
    cr_expect_eq(len, sizeof text - 1);
    cr_expect(memcmp(buf, text, len) == 0 && buf[len] == '\0');
    free(buf);
    cr_expect_eq(fn_read_file(path, 7, &buf, &len, &eb), FN_ELIMIT);
    cr_expect(strstr(eb.msg, path) && strstr(eb.msg, "more than 7"), "%s", eb.msg);
    cr_expect_null(buf);
    unlink(path);
    cr_expect_eq(fn_read_file(path, 100, &buf, &len, &eb), -ENOENT);
    cr_expect(strstr(eb.msg, path), "%s", eb.msg);
}

/* Checksummed text files: written whole with their checksum line, read back
 * to the same text; a flipped byte, a cut and a NUL are each refused. */
Test(fn_io, checksummed_files)
{
    char path[] = "/tmp/test_fn_io_ck_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    fn_errbuf eb = { { 0 } };
    fn_sbuf b = { 0 };
    cr_assert_eq(fn_sbuf_printf(&b, "model 1\nw %d %.17g\n", 3, 0.25), 0);
    cr_assert_eq(fn_write_checksummed(path, &b, &eb), 0, "%s", eb.msg);
    cr_assert_null(b.p);
    char *buf;
    size_t len;
    cr_assert_eq(fn_read_checksummed(path, 1000, "a test file", &buf, &len, &eb), 0, "%s", eb.msg);
    cr_expect_str_eq(buf, "model 1\nw 3 0.25\n");
    cr_expect_eq(len, strlen("model 1\nw 3 0.25\n"));
    free(buf);
    size_t n;
    char *raw;
    cr_assert_eq(fn_read_file(path, 1000, &raw, &n, &eb), 0);
    static const struct { size_t at; char to; size_t cut; int code; const char *msg; } bad[] = {
        { 2, 'X', 0, FN_ECORRUPT, "checksum mismatch" },
        { 0, 0, 5, FN_ECORRUPT, "no checksum line at the end (truncated or not a test file)" },
        { 3, '\0', 0, FN_ECORRUPT, "checksum mismatch" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *copy = malloc(n);
        memcpy(copy, raw, n);
        if (!bad[i].cut) copy[bad[i].at] = bad[i].to;
        FILE *f = fopen(path, "wb");
        cr_assert_not_null(f);
        fwrite(copy, 1, n - bad[i].cut, f);
        fclose(f);
        free(copy);
        cr_expect_eq(fn_read_checksummed(path, 1000, "a test file", &buf, &len, &eb), bad[i].code, "%zu", i);
        cr_expect(strstr(eb.msg, bad[i].msg) && strstr(eb.msg, path), "%zu: %s", i, eb.msg);
        cr_expect_null(buf);
    }
    cr_expect_eq(fn_read_checksummed(path, 10, "a test file", &buf, &len, &eb), FN_EFORMAT);
    cr_expect(strstr(eb.msg, "too large for a test file"), "%s", eb.msg);
    free(raw);
    unlink(path);
}
