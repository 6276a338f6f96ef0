/* fn_error.h - Funnel's one error convention.
 *
 * Every fallible function returns an int: 0 on success, a negative errno
 * (-ENOMEM, -ENOENT, ...) for system errors, or one of the FN_E* codes below
 * (a reserved range under -30000, clear of errno values and of LMDB's
 * -30600..-30800 range, which is passed through unchanged).  fn_strerror()
 * names any of them.
 *
 * Functions that can say more than a code take a `fn_errbuf *` (may be NULL)
 * and write a one-line human message into it ("corpus.jsonl:17: missing
 * \"id\""). The message is for people; callers branch on the code.
 */
#ifndef FUNNEL_FN_ERROR_H
#define FUNNEL_FN_ERROR_H

#include <stddef.h>

#define FN_OK            0
#define FN_EBASE    (-30000)
#define FN_EINVAL   (FN_EBASE - 1)  /* bad argument or malformed input */
#define FN_EFORMAT  (FN_EBASE - 2)  /* on-disk data is not what we expect */
#define FN_EVERSION (FN_EBASE - 3)  /* unsupported schema/format version */
#define FN_ENOTFOUND (FN_EBASE - 4) /* no such document/term/shard */
#define FN_EDUP     (FN_EBASE - 5)  /* duplicate key (e.g. document id) */
#define FN_ELIMIT   (FN_EBASE - 6)  /* a configured limit was exceeded */
#define FN_EPARSE   (FN_EBASE - 7)  /* cannot parse text input (JSON, TSV, config) */
#define FN_ERPC     (FN_EBASE - 8)  /* an RPC failed; details in the errbuf */
#define FN_ECORRUPT (FN_EBASE - 9)  /* stored data failed a checksum or changed under us */
#define FN_ELAST    (FN_EBASE - 10)

/* A caller-owned buffer for a one-line message. */
typedef struct fn_errbuf {
    char msg[512];
} fn_errbuf;

/* Name of an error code: FN_E*, -errno or an LMDB code. Never NULL. */
const char *fn_strerror(int code);

/* printf into eb (NULL-safe). Returns code, so callers can
 * `return fn_seterr(eb, FN_EINVAL, "line %zu: ...", n);`. */
int fn_seterr(fn_errbuf *eb, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* eb->msg if set, else fn_strerror(code). */
const char *fn_errmsg(const fn_errbuf *eb, int code);

#endif
