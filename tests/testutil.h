/* testutil.h - small helpers shared by the Criterion tests: temporary
 * directories and files, reading files back, and the shared data directory.
 * Every helper fails the current test (cr_assert) instead of returning an
 * error, unless its contract says otherwise. */
#ifndef FUNNEL_TESTUTIL_H
#define FUNNEL_TESTUTIL_H

#include <stddef.h>

/** Create a fresh directory from the mkdtemp(3) template `tmpl` (ending in
 * XXXXXX) into dir[cap]. */
void tu_mkdtemp(char *dir, size_t cap, const char *tmpl);

/** Remove `dir` and everything below it (links are not followed).
 * Returns 0, or -1 when something could not be removed. */
int tu_rmtree(const char *dir);

/** Write `text` to `path`, replacing it. */
void tu_write_file(const char *path, const char *text);

/** Create a new file from the mkstemp(3) template `tmpl` into path[cap] and
 * write `text` to it. The caller unlinks it. */
void tu_write_temp(char *path, size_t cap, const char *tmpl, const char *text);

/** The whole of `path` as a NUL-terminated malloc'd string (caller frees);
 * its length in *len when len is not NULL. NULL when it cannot be read. */
char *tu_read_file(const char *path, size_t *len);

/** The shared test collections: $FUNNEL_DATA, or ../shared/data. */
const char *tu_data_dir(void);

/** TU_SANITIZED: 1 in the ASan + UBSan build (gcc and clang define
 * __SANITIZE_ADDRESS__ / the address_sanitizer feature there), else 0. The
 * few cases that are long for their size (a large differential, hundreds of
 * damaged copies) do fewer rounds there: the same code paths, a third of the
 * repetitions, so that the suite stays under 20 minutes on CI. */
#if defined(__SANITIZE_ADDRESS__)
#define TU_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_SANITIZED 1
#endif
#endif
#ifndef TU_SANITIZED
#define TU_SANITIZED 0
#endif

#endif
