/* codec_bench - postings codecs (codec.h) on a real index's posting blocks.
 *
 *   codec_bench SHARDDIR [--max-blocks N] [--passes P]
 *   codec_bench --synthetic [--blocks N] [--seed S] [--passes P]
 *
 * Reads up to N posting blocks of one shard (the "postings" database, in key
 * order; default all) and decodes them with the index's codec (meta "codec")
 * into their three integer arrays: doc gaps, tf_title, tf_body. Then, for
 * every registered codec, re-encodes each array of every block into one
 * contiguous buffer per array kind (blocks back to back, as in a posting
 * value) and prints per codec and kind the bits per integer and the decode
 * speed in million integers per second: the best of P passes (default 3)
 * over all blocks, decoding from that buffer, so LMDB, page faults and the
 * checksums are not in the number. Every codec's decode is checked against
 * the arrays before it is timed.
 *
 * --synthetic needs no index: N blocks (default 200000) of 128 postings
 * (a term's last block shorter), gaps geometric with a per-term density
 * drawn log-uniformly from 1e-4 to 0.5, tf_body geometric (mean 2), tf_title
 * 0 but for 10% of postings (then geometric, mean 1.25).
 *
 * The SIMD codecs decode with the best path the CPU has (codec_simd.h);
 * FUNNEL_CODEC_SCALAR=1 measures their portable decoders instead.
 */
#include <lmdb.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "codec.h"
#include "codec_simd.h"
#include "format.h"

enum { K_GAPS, K_TF_TITLE, K_TF_BODY, NKINDS };
static const char *const kind_name[NKINDS] = { "gaps", "tf_title", "tf_body" };

typedef struct blocks {
    size_t nblocks, cap_blocks;
    uint8_t *n;                    /* postings per block, 1..128 */
    size_t nints, cap_ints;        /* per kind (all kinds have the same count) */
    uint32_t *v[NKINDS];           /* the arrays of all blocks back to back */
} blocks;

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) { fprintf(stderr, "codec_bench: out of memory (%zu bytes)\n", n); exit(1); }
    return q;
}

/* Room for one more block of n postings; returns its first integer's index. */
static size_t blocks_add(blocks *b, uint32_t n)
{
    if (b->nblocks == b->cap_blocks) {
        b->cap_blocks = b->cap_blocks ? 2 * b->cap_blocks : 4096;
        b->n = xrealloc(b->n, b->cap_blocks);
    }
    if (b->nints + n > b->cap_ints) {
        while (b->nints + n > b->cap_ints) b->cap_ints = b->cap_ints ? 2 * b->cap_ints : 1 << 20;
        for (int k = 0; k < NKINDS; k++) b->v[k] = xrealloc(b->v[k], b->cap_ints * sizeof(uint32_t));
    }
    b->n[b->nblocks++] = (uint8_t)n;
    size_t at = b->nints;
    b->nints += n;
    return at;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* ---- from an index ---- */

static int load_shard(const char *dir, size_t max_blocks, blocks *b, char *codec_name, size_t cap,
                      size_t *stored_bytes)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, post;
    MDB_cursor *cur;
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (stat(path, &st) != 0) { perror(path); return -1; }
    int rc;
    if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, IDX_MAX_DBS)) ||
        (rc = mdb_env_set_mapsize(env, (size_t)st.st_size)) ||
        (rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS | MDB_NOLOCK, 0644)) ||
        (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_META, 0, &meta)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_POSTINGS, 0, &post))) {
        fprintf(stderr, "%s: %s\n", dir, mdb_strerror(rc));
        return -1;
    }
    MDB_val k = { 5, "codec" }, v;
    if ((rc = mdb_get(txn, meta, &k, &v)) || v.mv_size >= cap) {
        fprintf(stderr, "%s: meta \"codec\": %s\n", dir, rc ? mdb_strerror(rc) : "too long");
        return -1;
    }
    memcpy(codec_name, v.mv_data, v.mv_size);
    codec_name[v.mv_size] = '\0';
    const idx_codec_t *c = idx_codec_find(codec_name);
    if (!c) { fprintf(stderr, "%s: unknown codec \"%s\"\n", dir, codec_name); return -1; }
    if ((rc = mdb_cursor_open(txn, post, &cur))) {
        fprintf(stderr, "%s: %s\n", dir, mdb_strerror(rc));
        return -1;
    }
    *stored_bytes = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && b->nblocks < max_blocks;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *p = v.mv_data;
        uint32_t termid = k.mv_size == 8 ? idx_get_u32be(k.mv_data) : 0;
        uint32_t blk = k.mv_size == 8 ? idx_get_u32be((const uint8_t *)k.mv_data + 4) : 0;
        uint32_t n = v.mv_size >= IDX_BLOCK_HDR ? idx_get_u32le(p + 4) : 0;
        if (k.mv_size != 8 || n == 0 || n > IDX_BLOCK_SIZE ||
            idx_get_u32le(p) != idx_sum32(p + 4, v.mv_size - 4, (uint64_t)termid << 32 | blk)) {
            fprintf(stderr, "%s: posting block %u/%u: damaged\n", dir, termid, blk);
            return -1;
        }
        size_t at = blocks_add(b, n), off = IDX_BLOCK_HDR;
        for (int a = 0; a < NKINDS; a++) {
            size_t used = c->decode(p + off, v.mv_size - off, n, b->v[a] + at);
            if (!used) {
                fprintf(stderr, "%s: posting block %u/%u: cannot decode\n", dir, termid, blk);
                return -1;
            }
            off += used;
        }
        *stored_bytes += off - IDX_BLOCK_HDR;
    }
    if (rc && rc != MDB_NOTFOUND) {
        fprintf(stderr, "%s: postings: %s\n", dir, mdb_strerror(rc));
        return -1;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return 0;
}

/* ---- synthetic ---- */

static uint64_t rng_state;

static double uniform01(void)   /* (0, 1) */
{
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}

/* 1 + failures before the first success, success probability p. */
static uint32_t geometric(double p)
{
    if (p >= 1) return 1;
    double g = floor(log(uniform01()) / log1p(-p));
    return g > 1e9 ? 1000000001u : 1 + (uint32_t)g;
}

static void synthesize(size_t nblocks, uint64_t seed, blocks *b)
{
    rng_state = seed ? seed : 0x9E3779B97F4A7C15ull;
    while (b->nblocks < nblocks) {
        /* one term: its density, then its blocks (the last one short) */
        double p = exp(log(1e-4) + uniform01() * (log(0.5) - log(1e-4)));
        size_t tblocks = 1 + (size_t)(uniform01() * 20);
        for (size_t t = 0; t < tblocks && b->nblocks < nblocks; t++) {
            uint32_t n = t + 1 < tblocks ? IDX_BLOCK_SIZE : 1 + (uint32_t)(uniform01() * IDX_BLOCK_SIZE);
            size_t at = blocks_add(b, n);
            for (uint32_t i = 0; i < n; i++) {
                b->v[K_GAPS][at + i] = i ? geometric(p) : 0;
                b->v[K_TF_TITLE][at + i] = uniform01() < 0.1 ? geometric(0.8) : 0;
                b->v[K_TF_BODY][at + i] = geometric(0.5);
            }
        }
    }
}

/* ---- the measurement ---- */

typedef struct result { size_t bytes; double best_s; } result;

/* Encode every block's array of one kind back to back, check the decode,
 * then time P passes of decoding it all. */
static int measure(const idx_codec_t *c, const blocks *b, const uint32_t *vals, int passes, result *res)
{
    size_t cap = 0;
    for (size_t i = 0; i < b->nblocks; i++) cap += c->max_bytes(b->n[i]);
    uint8_t *buf = xrealloc(NULL, cap ? cap : 1);
    size_t len = 0, at = 0;
    for (size_t i = 0; i < b->nblocks; i++) {
        len += c->encode(vals + at, b->n[i], buf + len);
        at += b->n[i];
    }
    uint32_t out[IDX_BLOCK_SIZE];
    size_t off = 0;
    at = 0;
    for (size_t i = 0; i < b->nblocks; i++) {
        size_t used = c->decode(buf + off, len - off, b->n[i], out);
        if (!used || memcmp(out, vals + at, b->n[i] * sizeof out[0])) {
            fprintf(stderr, "codec_bench: %s: block %zu does not round-trip\n", c->name, i);
            free(buf);
            return -1;
        }
        off += used;
        at += b->n[i];
    }
    res->bytes = len;
    res->best_s = INFINITY;
    volatile uint32_t sink = 0;
    for (int p = 0; p < passes; p++) {
        double t0 = now_s();
        off = 0;
        for (size_t i = 0; i < b->nblocks; i++)
            off += c->decode(buf + off, len - off, b->n[i], out);
        double t = now_s() - t0;
        sink += out[0] + (uint32_t)off;
        if (t < res->best_s) res->best_s = t;
    }
    (void)sink;
    free(buf);
    return 0;
}

static void usage(FILE *f)
{
    fputs("usage: codec_bench SHARDDIR [--max-blocks N] [--passes P]\n"
          "       codec_bench --synthetic [--blocks N] [--seed S] [--passes P]\n", f);
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int synthetic = 0, passes = 3;
    size_t max_blocks = SIZE_MAX, syn_blocks = 200000;
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!strcmp(a, "--synthetic")) { synthetic = 1; continue; }
        if (a[0] != '-') {
            if (dir) { usage(stderr); return 2; }
            dir = a;
            continue;
        }
        if (!v) { fprintf(stderr, "codec_bench: %s needs a value\n", a); return 2; }
        char *end;
        unsigned long long x = strtoull(v, &end, 10);
        if (!*v || *end || v[0] == '-') { fprintf(stderr, "codec_bench: %s: not a number: %s\n", a, v); return 2; }
        i++;
        if (!strcmp(a, "--max-blocks")) max_blocks = (size_t)x;
        else if (!strcmp(a, "--blocks")) syn_blocks = (size_t)x;
        else if (!strcmp(a, "--seed")) seed = x;
        else if (!strcmp(a, "--passes") && x >= 1 && x <= 1000) passes = (int)x;
        else { fprintf(stderr, "codec_bench: unknown option or bad value: %s %s\n", a, v); return 2; }
    }
    if (synthetic == !!dir) { usage(stderr); return 2; }

    blocks b;
    memset(&b, 0, sizeof b);
    char codec_name[64] = "";
    size_t stored = 0;
    double t0 = now_s();
    if (synthetic) {
        synthesize(syn_blocks, seed, &b);
        printf("synthetic: %zu blocks, %zu postings (seed %llu)\n", b.nblocks, b.nints,
               (unsigned long long)seed);
    } else {
        if (load_shard(dir, max_blocks, &b, codec_name, sizeof codec_name, &stored)) return 1;
        printf("%s: codec %s, %zu blocks, %zu postings, %.1f bits/int as stored (read in %.1f s)\n",
               dir, codec_name, b.nblocks, b.nints, b.nints ? 8.0 * stored / (3.0 * b.nints) : 0.0,
               now_s() - t0);
    }
    if (!b.nints) { fprintf(stderr, "codec_bench: no postings\n"); return 1; }

    printf("decode: best of %d passes over all blocks from one contiguous buffer per array kind\n",
           passes);
    printf("decoders: bp128 %s, streamvbyte %s (FUNNEL_CODEC_SCALAR=1: the portable ones)\n\n",
           idx_codec_path_name(idx_bp128_path()), idx_codec_path_name(idx_svb_path()));
    printf("%-12s %-9s %9s %14s\n", "codec", "array", "bits/int", "decode Mint/s");
    for (const idx_codec_t *const *c = idx_codec_all(); *c; c++) {
        size_t bytes = 0;
        double secs = 0;
        for (int k = 0; k < NKINDS; k++) {
            result r;
            if (measure(*c, &b, b.v[k], passes, &r)) return 1;
            printf("%-12s %-9s %9.2f %14.0f\n", (*c)->name, kind_name[k], 8.0 * r.bytes / b.nints,
                   b.nints / r.best_s / 1e6);
            bytes += r.bytes;
            secs += r.best_s;
        }
        printf("%-12s %-9s %9.2f %14.0f\n", (*c)->name, "all", 8.0 * bytes / (3.0 * b.nints),
               3.0 * b.nints / secs / 1e6);
        if (!synthetic && !strcmp((*c)->name, codec_name) && bytes != stored)
            printf("%-12s (re-encoded %zu bytes, the index stores %zu)\n", "", bytes, stored);
    }
    for (int k = 0; k < NKINDS; k++) free(b.v[k]);
    free(b.n);
    return 0;
}
