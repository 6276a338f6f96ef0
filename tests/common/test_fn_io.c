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
