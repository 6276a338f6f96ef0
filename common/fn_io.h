/* fn_io.h - reading text files a line at a time, with line numbers for
 * "FILE:LINE: reason" messages, or whole (bounded). */
#ifndef FUNNEL_FN_IO_H
#define FUNNEL_FN_IO_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"

/* Called once per line. `line` has its "\n" / "\r\n" ending removed, is
 * writable, and belongs to fn_read_lines (valid only during the call); len is
 * its length, lineno counts from 1. Return 0 to go on; anything else stops
 * the reading and becomes fn_read_lines' result. */
typedef int (*fn_line_fn)(void *ud, char *line, size_t len, size_t lineno);

/* Call fn for every line of path (any length). Returns 0 at end of file,
 * fn's nonzero result, or a negative errno with "PATH: reason" in eb when
 * path cannot be opened or read. */
int fn_read_lines(const char *path, fn_line_fn fn, void *ud, fn_errbuf *eb);

/* The whole of path into a malloc'd buffer (*buf, freed by the caller), NUL
 * terminated after its *len bytes. 0; FN_ELIMIT when it is larger than max
 * bytes ("PATH: N bytes, more than MAX"); -errno with "PATH: reason" (a read
 * that comes short is -EIO); -ENOMEM. For files read once and checked whole
 * (dictionaries, models). */
int fn_read_file(const char *path, size_t max, char **buf, size_t *len, fn_errbuf *eb);

/* A growing text buffer (p malloc'd; free(p) when done). */
typedef struct fn_sbuf {
    char *p;
    size_t len, cap;
} fn_sbuf;

/* Append printf output to b. 0, -ENOMEM, -EINVAL (a format error). */
int fn_sbuf_printf(fn_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Checksummed text files (the intent and content-filter models): the last
 * line is "checksum HEX16\n", the XXH64 (seed 0) of every byte before it.
 * fn_write_checksummed appends that line to b's text and writes it to path
 * atomically (path.tmp, fsync'd, then renamed); b is freed either way. */
int fn_write_checksummed(const char *path, fn_sbuf *b, fn_errbuf *eb);

/* Read path (at most max bytes) and check its last line against the bytes
 * before it, which must hold no NUL. 0 with *buf (malloc'd, the caller
 * frees) NUL-terminated after the *len checked bytes, the checksum line
 * excluded; FN_ECORRUPT "PATH: no checksum line at the end (truncated or
 * not WHAT)", "... damaged checksum line", "... checksum mismatch (file X,
 * data Y): damaged"; FN_EFORMAT "PATH: too large for WHAT", "... NUL byte
 * in WHAT"; what fn_read_file returns otherwise. what names the kind of file
 * ("an intent model"). */
int fn_read_checksummed(const char *path, size_t max, const char *what, char **buf, size_t *len, fn_errbuf *eb);

/* The same check on n bytes in memory at p (a pushed model; name stands
 * for PATH in the messages): 0 with p NUL-terminated in place after the *len
 * checked bytes (the checksum line cut off), or the errors above. */
int fn_check_checksummed(char *p, size_t n, const char *name, const char *what, size_t *len, fn_errbuf *eb);

/* mkdir -p: dir and its missing parents with mode (existing ones kept as
 * they are). 0 or -errno (-ENAMETOOLONG past PATH_MAX). */
int fn_mkdirs(const char *dir, unsigned mode);

/* "797.4 MiB", "12 B": a byte count for people (binary units). */
void fn_format_bytes(uint64_t bytes, char *buf, size_t cap);

#endif
