/* vecio.c - .fvecs / .ivecs / IDX readers (vecio.h). Everything goes through
 * zlib's gzread, which reads gzip'd and plain files alike. */
#include "vecio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

/* read exactly len bytes; 0, 1 at a clean end of file (nothing read), or an error */
static int gz_exact(gzFile f, void *p, size_t len, const char *path, fn_errbuf *eb)
{
    size_t got = 0;
    while (got < len) {
        unsigned chunk = len - got > (1u << 30) ? 1u << 30 : (unsigned)(len - got);
        int r = gzread(f, (char *)p + got, chunk);
        if (r < 0) {
            int zerr;
            const char *m = gzerror(f, &zerr);
            if (zerr == Z_ERRNO) return fn_seterr(eb, -errno, "%s: %s", path, strerror(errno));
            return fn_seterr(eb, FN_EFORMAT, "%s: %s", path, m);
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    if (got == 0) return 1;
    if (got < len) return fn_seterr(eb, FN_EFORMAT, "%s: truncated (a record ends early)", path);
    return 0;
}

static int gz_open(const char *path, gzFile *f, fn_errbuf *eb)
{
    errno = 0;
    *f = gzopen(path, "rb");
    if (!*f) {
        int e = errno ? errno : ENOMEM;
        return fn_seterr(eb, -e, "%s: %s", path, strerror(e));
    }
    gzbuffer(*f, 1u << 20);
    return 0;
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* texmex rows: int32 d then d 4-byte values; elem 4 bytes each */
static int xvecs_load(const char *path, void **out, size_t *n, size_t *dim, int aligned,
                      fn_errbuf *eb)
{
    *out = NULL;
    *n = *dim = 0;
    gzFile f;
    int rc = gz_open(path, &f, eb);
    if (rc) return rc;
    char *data = NULL;
    size_t rows = 0, cap = 0, d = 0;
    for (;;) {
        int32_t hd;
        rc = gz_exact(f, &hd, 4, path, eb);
        if (rc == 1) {
            rc = 0;
            break;
        }
        if (rc) goto fail;
        if (hd <= 0 || hd > (1 << 20)) {
            rc = fn_seterr(eb, FN_EFORMAT, "%s: row %zu: dimension %d", path, rows + 1, (int)hd);
            goto fail;
        }
        if (rows == 0) d = (size_t)hd;
        else if ((size_t)hd != d) {
            rc = fn_seterr(eb, FN_EFORMAT, "%s: row %zu has dimension %d, row 1 has %zu", path,
                           rows + 1, (int)hd, d);
            goto fail;
        }
        if (rows == cap) {
            size_t nc = cap ? cap * 2 : 1024;
            char *nd;
            if (aligned) {
                nd = aligned_alloc(64, (nc * d * 4 + 63) / 64 * 64);
                if (nd && data) memcpy(nd, data, rows * d * 4);
                if (nd) free(data);
            } else {
                nd = realloc(data, nc * d * 4);
            }
            if (!nd) {
                rc = fn_seterr(eb, -ENOMEM, "%s: out of memory", path);
                goto fail;
            }
            data = nd;
            cap = nc;
        }
        rc = gz_exact(f, data + rows * d * 4, d * 4, path, eb);
        if (rc == 1) rc = fn_seterr(eb, FN_EFORMAT, "%s: truncated (row %zu)", path, rows + 1);
        if (rc) goto fail;
        rows++;
    }
    gzclose(f);
    if (rows == 0) {
        free(data);
        return fn_seterr(eb, FN_EFORMAT, "%s: no vectors", path);
    }
    *out = data;
    *n = rows;
    *dim = d;
    return 0;
fail:
    gzclose(f);
    free(data);
    return rc;
}

static int idx_load(const char *path, gzFile f, const unsigned char magic[4], float **vecs,
                    size_t *n, size_t *dim, fn_errbuf *eb)
{
    int type = magic[2], nd = magic[3], esize;
    switch (type) {
    case 0x08: case 0x09: esize = 1; break;
    case 0x0B: esize = 2; break;
    case 0x0C: case 0x0D: esize = 4; break;
    default: return fn_seterr(eb, FN_EFORMAT, "%s: IDX element type 0x%02x", path, type);
    }
    if (nd < 1 || nd > 8) return fn_seterr(eb, FN_EFORMAT, "%s: IDX with %d dimensions", path, nd);
    unsigned char sz[32];
    int rc = gz_exact(f, sz, (size_t)nd * 4, path, eb);
    if (rc == 1) rc = fn_seterr(eb, FN_EFORMAT, "%s: truncated IDX header", path);
    if (rc) return rc;
    size_t rows = be32(sz), d = 1;
    for (int i = 1; i < nd; i++) {
        d *= be32(sz + 4 * i);
        if (d > (1u << 24)) return fn_seterr(eb, FN_EFORMAT, "%s: IDX rows too long", path);
    }
    if (rows == 0 || d == 0) return fn_seterr(eb, FN_EFORMAT, "%s: empty IDX file", path);
    if (rows > ((size_t)1 << 40) / d) return fn_seterr(eb, FN_EFORMAT, "%s: IDX too large", path);
    float *out = aligned_alloc(64, (rows * d * sizeof(float) + 63) / 64 * 64);
    unsigned char *row = malloc(d * (size_t)esize);
    if (!out || !row) {
        free(out);
        free(row);
        return fn_seterr(eb, -ENOMEM, "%s: out of memory", path);
    }
    for (size_t r = 0; r < rows; r++) {
        rc = gz_exact(f, row, d * (size_t)esize, path, eb);
        if (rc == 1) rc = fn_seterr(eb, FN_EFORMAT, "%s: truncated: %zu of %zu rows", path, r, rows);
        if (rc) {
            free(out);
            free(row);
            return rc;
        }
        float *o = out + r * d;
        for (size_t j = 0; j < d; j++) {
            const unsigned char *b = row + j * (size_t)esize;
            switch (type) {
            case 0x08: o[j] = (float)b[0]; break;
            case 0x09: o[j] = (float)(int8_t)b[0]; break;
            case 0x0B: o[j] = (float)(int16_t)(uint16_t)(b[0] << 8 | b[1]); break;
            case 0x0C: o[j] = (float)(int32_t)be32(b); break;
            default: {
                uint32_t u = be32(b);
                float x;
                memcpy(&x, &u, 4);
                o[j] = x;
            }
            }
        }
    }
    free(row);
    *vecs = out;
    *n = rows;
    *dim = d;
    return 0;
}

int ann_vecs_load(const char *path, float **vecs, size_t *n, size_t *dim, fn_errbuf *eb)
{
    *vecs = NULL;
    *n = *dim = 0;
    gzFile f;
    int rc = gz_open(path, &f, eb);
    if (rc) return rc;
    unsigned char magic[4];
    rc = gz_exact(f, magic, 4, path, eb);
    if (rc == 1) rc = fn_seterr(eb, FN_EFORMAT, "%s: empty file", path);
    if (rc == 0 && magic[0] == 0 && magic[1] == 0 && magic[2] >= 0x08 && magic[3] >= 1 &&
        magic[3] <= 8) {
        rc = idx_load(path, f, magic, vecs, n, dim, eb);
        gzclose(f);
        return rc;
    }
    gzclose(f);
    if (rc) return rc;
    void *data;
    rc = xvecs_load(path, &data, n, dim, 1, eb);
    *vecs = data;
    return rc;
}

int ann_ivecs_load(const char *path, int32_t **rows, size_t *n, size_t *dim, fn_errbuf *eb)
{
    void *data;
    int rc = xvecs_load(path, &data, n, dim, 0, eb);
    *rows = rc == 0 ? data : NULL;
    return rc;
}
