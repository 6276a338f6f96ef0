/* fn_error.c - error names and message buffers (see fn_error.h). */
#include "fn_error.h"

#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *fn_strerror(int code)
{
    switch (code) {
    case FN_OK: return "success";
    case FN_EINVAL: return "invalid argument or input";
    case FN_EFORMAT: return "unexpected on-disk format";
    case FN_EVERSION: return "unsupported format version";
    case FN_ENOTFOUND: return "not found";
    case FN_EDUP: return "duplicate key";
    case FN_ELIMIT: return "limit exceeded";
    case FN_EPARSE: return "parse error";
    case FN_ERPC: return "rpc failed";
    case FN_ECORRUPT: return "data damaged (checksum mismatch)";
    default: break;
    }
    if (code >= MDB_KEYEXIST && code <= MDB_LAST_ERRCODE) return mdb_strerror(code);
    if (code < 0 && code > -4096) return strerror(-code);
    return "unknown error";
}

int fn_seterr(fn_errbuf *eb, int code, const char *fmt, ...)
{
    if (eb) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(eb->msg, sizeof eb->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *fn_errmsg(const fn_errbuf *eb, int code)
{
    if (eb && eb->msg[0]) return eb->msg;
    return fn_strerror(code);
}
