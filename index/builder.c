/* builder.c - JSON Lines corpus -> IDXDIR with N LMDB shards (builder.h, format.h).
 *
 * Phases:
 *   1. invert: read batches of lines; parse, validate and analyze them on
 *      opts.threads threads (the pipeline below); then, in input order on the
 *      main thread, route each document to shard xxh64(id) % N, store it
 *      (docs, ids) and its norms, and add its postings to the shard's
 *      in-memory inversion. When the inversions of all shards
 *      together reach mem_budget they are spilled as sorted runs to
 *      IDXDIR/.build/ (and once more at the end of the input).
 *   2. merge: one pass over every shard's runs in global term order. For each
 *      term, each shard concatenates its runs' postings (later runs hold larger
 *      doc numbers) into blocks written with MDB_APPEND; the sum of the shards'
 *      df is the global df, written into every shard's terms record.
 *   3. finish: norms and meta per shard, sync, then IDXDIR/index.json last.
 *
 * Run file record: u8 term length (0 = end), term bytes, varint n, then n
 * varint triples (doc gap - the first one absolute -, tf_title, tf_body).
 */
#include "builder.h"
#include "builder_int.h"
#include "buckets.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <lmdb.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <xxhash.h>
#include <zstd.h>

#include "attrs.h"
#include "codec.h"
#include "format.h"
#include "integrity.h"
#include "reader_int.h"   /* idx_tf_part: the block maxima (format.h skips) */
#include "ann/hnsw.h"

#define MAX_ID_BYTES 511                 /* LMDB's key size limit */
#define DOCS_PER_TXN 10000
#define MERGE_TXN_BYTES (64u << 20)      /* bound LMDB's dirty pages while merging */
#define RUN_BUF (64u << 10)
#define MAX_OPEN_RUNS 256                /* stay well under the fd limit while merging */

/* ---- small helpers ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* LMDB reports system errors as positive errno values. */
static int mdb_code(int rc) { return rc > 0 ? -rc : rc; }

static size_t put_varint(uint8_t *p, uint32_t v)
{
    size_t n = 0;
    while (v >= 0x80) { p[n++] = (uint8_t)(v | 0x80); v >>= 7; }
    p[n++] = (uint8_t)v;
    return n;
}

static int term_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    /* LMDB's default key order: memcmp on the common prefix, shorter first. */
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

/* ---- arena for term bytes ---- */

typedef struct arena_chunk { struct arena_chunk *next; size_t used, cap; char data[]; } arena_chunk;
typedef struct arena { arena_chunk *head; size_t bytes; } arena;

static char *arena_dup(arena *a, const char *s, size_t len)
{
    if (!a->head || a->head->cap - a->head->used < len) {
        size_t cap = len > (64u << 10) ? len : (64u << 10);
        arena_chunk *c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = a->head; c->used = 0; c->cap = cap;
        a->head = c;
        a->bytes += sizeof *c + cap;
    }
    char *p = a->head->data + a->head->used;
    memcpy(p, s, len);
    a->head->used += len;
    return p;
}

static void arena_free(arena *a)
{
    for (arena_chunk *c = a->head, *n; c; c = n) { n = c->next; free(c); }
    a->head = NULL; a->bytes = 0;
}

/* ---- string -> index hash table (open addressing, linear probing) ---- */

typedef struct strkey { uint64_t h; const char *s; uint32_t len; } strkey;

typedef struct strtab {
    uint32_t *slots;        /* index + 1; 0 = empty */
    size_t nslots;          /* power of two */
    strkey *keys;
    size_t n, kcap;
    arena ar;
} strtab;

static int strtab_grow(strtab *t)
{
    size_t ns = t->nslots ? t->nslots * 2 : 1024;
    uint32_t *slots = calloc(ns, sizeof *slots);
    if (!slots) return -ENOMEM;
    for (size_t i = 0; i < t->n; i++) {
        size_t j = (size_t)t->keys[i].h & (ns - 1);
        while (slots[j]) j = (j + 1) & (ns - 1);
        slots[j] = (uint32_t)i + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = ns;
    return 0;
}

/* Find or insert; *idx gets the key's index, *isnew whether it was added. */
static int strtab_intern(strtab *t, const char *s, size_t len, uint32_t *idx, int *isnew)
{
    if ((t->n + 1) * 2 > t->nslots) {
        int rc = strtab_grow(t);
        if (rc) return rc;
    }
    uint64_t h = XXH64(s, len, 0);
    size_t j = (size_t)h & (t->nslots - 1);
    while (t->slots[j]) {
        const strkey *k = &t->keys[t->slots[j] - 1];
        if (k->h == h && k->len == len && memcmp(k->s, s, len) == 0) {
            *idx = t->slots[j] - 1;
            *isnew = 0;
            return 0;
        }
        j = (j + 1) & (t->nslots - 1);
    }
    if (t->n == t->kcap) {
        size_t nc = t->kcap ? t->kcap * 2 : 256;
        strkey *nk = realloc(t->keys, nc * sizeof *nk);
        if (!nk) return -ENOMEM;
        t->keys = nk;
        t->kcap = nc;
    }
    const char *copy = arena_dup(&t->ar, s, len);
    if (!copy) return -ENOMEM;
    t->keys[t->n] = (strkey){ h, copy, (uint32_t)len };
    t->slots[j] = (uint32_t)t->n + 1;
    *idx = (uint32_t)t->n++;
    *isnew = 1;
    return 0;
}

/* Forget the keys, keep the memory (per-document table). */
static void strtab_clear(strtab *t)
{
    if (t->n) memset(t->slots, 0, t->nslots * sizeof *t->slots);
    t->n = 0;
    for (arena_chunk *c = t->ar.head; c; c = c->next) c->used = 0;
    /* keep only the newest chunk so a huge document does not pin memory */
    if (t->ar.head && t->ar.head->next) {
        arena_chunk *keep = t->ar.head;
        t->ar.head = keep->next;
        arena_free(&t->ar);
        keep->next = NULL;
        t->ar.head = keep;
        t->ar.bytes = sizeof *keep + keep->cap;
    }
}

static void strtab_free(strtab *t)
{
    free(t->slots);
    free(t->keys);
    arena_free(&t->ar);
    memset(t, 0, sizeof *t);
}

static size_t strtab_bytes(const strtab *t)
{
    return t->nslots * sizeof *t->slots + t->kcap * sizeof *t->keys + t->ar.bytes;
}

/* ---- per-shard state ---- */

/* vid: the term's number in the builder's vocabulary (its term vectors' temporary id) */
typedef struct plist { uint8_t *buf; uint32_t len, cap, n, last_doc, vid; } plist;

typedef struct run_reader {
    FILE *f;
    char *vbuf;
    char term[IDX_MAX_TERM_BYTES + 1];
    size_t tlen;
    uint32_t n;        /* postings of the current term */
    int eof;
} run_reader;

typedef struct shard {
    char dir[4096];
    uint64_t file_hash, file_bytes;   /* the sealed data.mdb's checksum (index.json's manifest) */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, terms, postings, docs, ids, norms, source, positions, skips, vocab, tvec, vectors, attrs, docsig;
    uint32_t ndocs, txn_docs;
    /* the vectors in row order (f32 rows of vec_dim) until finish_shard
     * stores them; vdocs[r] = the document of row r */
    FILE *vf;
    uint32_t *vdocs;
    size_t nvec, vdcap;
    /* the documents' term vectors in document order, terms as vocabulary
     * numbers (varints: nterms, then vid, tf_title, tf_body per term), until
     * the merge has given every term its id (write_tvecs) */
    FILE *tv;
    uint32_t *len[IDX_NFIELDS];
    uint64_t *keys;
    float *pop;                 /* static signals (format.h "norms") */
    int64_t *pub;
    uint16_t *urld;
    size_t ncap;
    idx_attr_acc attr[IDX_NATTRS];   /* vertical, lang, labels (attrs.h) until finish_shard */
    /* inversion */
    strtab inv;
    plist *pl;
    size_t plcap;
    size_t pl_bytes;
    uint32_t nruns;
    /* merge */
    run_reader *rr;
    uint32_t nterms;
    uint64_t txn_bytes;
    uint64_t npostings;
} shard;

typedef struct doc_tf { uint32_t tf[IDX_NFIELDS]; } doc_tf;

typedef struct builder {
    const idx_build_opts *o;
    idx_build_stats st;
    fn_errbuf *eb;
    const char *fname;
    const idx_codec_t *codec;
    idx_analyzer_t *an;         /* the main thread's */
    char andesc[256];
    char builddir[4096];
    shard *sh;
    uint32_t nsh;
    idx_bucket_map map;         /* bucket -> shard (buckets.h) */
    char maptext[IDX_BUCKETS_TEXT_MAX];   /* its text form (meta and index.json "buckets") */
    size_t budget;
    uint32_t threads;           /* analyzing threads, the main one included */
    uint64_t lines_read;        /* by the main thread, ahead of st.lines (consumed) */
    uint64_t sumlen[IDX_NFIELDS];
    idx_bm25_params bm;         /* the block maxima's settings (format.h skips) */
    /* every distinct term of the input, numbered in order of first sight
     * (kept whole through spills: the term vectors name terms by it), and
     * at the merge each number's term id */
    strtab vocab;
    uint32_t *vid_termid;
    uint8_t *tvbuf;             /* one document's term vector record (invert_doc) */
    size_t tvcap;
    uint32_t vdim;              /* the vectors' dimension (0: none yet) */
    ann_metric vmetric;
    double avglen[IDX_NFIELDS]; /* global, as meta records them */
    double t0, last_progress;
    int64_t created;
} builder;

static void progress(builder *b, const char *phase, int final)
{
    if (!b->o->progress) return;
    double t = now_s();
    if (!final && t - b->last_progress < 0.5) return;
    b->last_progress = t;
    b->st.seconds = t - b->t0;
    b->o->progress(b->o->ud, &b->st, phase, final);
}

static int open_dbs(shard *s, MDB_txn *txn, unsigned flags)
{
    int rc;
    if ((rc = mdb_dbi_open(txn, IDX_DB_META, flags, &s->meta)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_TERMS, flags, &s->terms)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_POSTINGS, flags, &s->postings)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_DOCS, flags, &s->docs)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_IDS, flags, &s->ids)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_NORMS, flags, &s->norms)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_SOURCE, flags, &s->source)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_POSITIONS, flags, &s->positions)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_SKIPS, flags, &s->skips)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_VOCAB, flags, &s->vocab)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_TVEC, flags, &s->tvec)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_VECTORS, flags, &s->vectors)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_ATTRS, flags, &s->attrs)) ||
        (rc = mdb_dbi_open(txn, IDX_DB_DOCSIG, flags, &s->docsig)))
        return mdb_code(rc);
    return 0;
}

/* A write to path failed with errno e (0 if unknown: EIO); what (may be NULL)
 * says which step. Returns -e, the real errno. A full disk (ENOSPC) or quota
 * (EDQUOT) is said plainly, with the space left on the filesystem holding
 * out_dir:
 *   IDXDIR/.build/s000-r00001.run: no space left on device (0 MiB free on the
 *   filesystem holding IDXDIR; the build needs more disk)
 * LMDB reports a short write (how a full disk often shows) as EIO, so an EIO
 * with under 1 MiB left is reported as a full disk too, naming the EIO. */
static int write_failed(builder *b, const char *path, const char *what, int e)
{
    if (e <= 0) e = EIO;
    struct statvfs fs;
    int known = statvfs(b->o->out_dir, &fs) == 0;
    unsigned long long avail = known ? (unsigned long long)fs.f_bavail * fs.f_frsize : 0;
    int full = e == ENOSPC || e == EDQUOT || (e == EIO && known && avail < (1u << 20));
    if (!full)
        return fn_seterr(b->eb, -e, "%s: %s%s%s", path, what ? what : "write failed", ": ", strerror(e));
    char space[64];
    if (!known) snprintf(space, sizeof space, "free space unknown");
    else if (avail >= (1u << 20)) snprintf(space, sizeof space, "%llu MiB free", avail >> 20);
    else snprintf(space, sizeof space, "%llu KiB free", avail >> 10);
    return fn_seterr(b->eb, -e, "%s: %s%s%s (%s%s on the filesystem holding %s; the build needs more disk%s)",
                     path, what ? what : "", what ? ": " : "",
                     e == EDQUOT ? "disk quota exceeded" : "no space left on device",
                     e == EIO ? "LMDB's short write, reported as Input/output error; " : "", space,
                     b->o->out_dir, e == EDQUOT ? " or a larger quota" : "");
}

/* An LMDB commit/sync failed with rc: a positive errno is a failed write to
 * the shard's data.mdb (write_failed); LMDB's own codes keep their message. */
static int lmdb_failed(builder *b, const shard *s, const char *what, int rc)
{
    if (rc > 0) {
        char path[4200];
        snprintf(path, sizeof path, "%s/data.mdb", s->dir);
        return write_failed(b, path, what, rc);
    }
    return fn_seterr(b->eb, rc, "%s: %s: %s", s->dir, what, mdb_strerror(rc));
}

static void tv_path(const builder *b, uint32_t sh, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/s%03" PRIu32 ".tv", b->builddir, sh);
}

static int shard_open(builder *b, uint32_t i)
{
    shard *s = &b->sh[i];
    int rc;
    snprintf(s->dir, sizeof s->dir, "%s/shard-%03" PRIu32, b->o->out_dir, i);
    if (mkdir(s->dir, 0755) && errno != EEXIST)
        return fn_seterr(b->eb, -errno, "mkdir %s: %s", s->dir, strerror(errno));
    if ((rc = mdb_env_create(&s->env))) goto fail;
    if ((rc = mdb_env_set_mapsize(s->env, IDX_MAP_SIZE)) ||
        (rc = mdb_env_set_maxdbs(s->env, IDX_MAX_DBS)) ||
        /* MDB_NOLOCK: the build is the env's only user, and a lock file is
         * mmap'd: on a full disk touching it is SIGBUS, not an error */
        (rc = mdb_env_open(s->env, s->dir, MDB_NOSYNC | MDB_NOLOCK, 0644)))
        goto fail_env;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &s->txn))) goto fail_env;
    if ((rc = open_dbs(s, s->txn, MDB_CREATE))) goto fail_txn;
    char tp[4200];
    tv_path(b, i, tp, sizeof tp);
    if (!(s->tv = fopen(tp, "w+b"))) return fn_seterr(b->eb, -errno, "%s: %s", tp, strerror(errno));
    snprintf(tp, sizeof tp, "%s/s%03" PRIu32 ".vec", b->builddir, i);
    if (!(s->vf = fopen(tp, "w+b"))) return fn_seterr(b->eb, -errno, "%s: %s", tp, strerror(errno));
    return 0;
fail_txn:
    mdb_txn_abort(s->txn);
    s->txn = NULL;
fail_env:
    mdb_env_close(s->env);
    s->env = NULL;
fail:
    if (rc == ENOSPC || rc == EDQUOT) return write_failed(b, s->dir, "lmdb", rc);
    rc = mdb_code(rc);
    return fn_seterr(b->eb, rc, "%s: lmdb: %s", s->dir, fn_strerror(rc));
}

static int shard_commit(builder *b, shard *s, int reopen)
{
    int rc = mdb_txn_commit(s->txn);
    s->txn = NULL;
    if (rc) return lmdb_failed(b, s, "commit", rc);
    if (reopen && (rc = mdb_txn_begin(s->env, NULL, 0, &s->txn)))
        return fn_seterr(b->eb, mdb_code(rc), "%s: txn: %s", s->dir, mdb_strerror(rc));
    s->txn_docs = 0;
    s->txn_bytes = 0;
    return 0;
}

static void shard_close(shard *s)
{
    if (s->tv) fclose(s->tv);
    s->tv = NULL;
    if (s->vf) fclose(s->vf);
    s->vf = NULL;
    free(s->vdocs);
    s->vdocs = NULL;
    if (s->txn) mdb_txn_abort(s->txn);
    s->txn = NULL;
    if (s->env) mdb_env_close(s->env);
    s->env = NULL;
    for (int f = 0; f < IDX_NFIELDS; f++) free(s->len[f]);
    free(s->keys);
    free(s->pop);
    free(s->pub);
    free(s->urld);
    for (int a = 0; a < IDX_NATTRS; a++) idx_attr_acc_free(&s->attr[a]);
    for (size_t i = 0; i < s->inv.n; i++) free(s->pl[i].buf);
    free(s->pl);
    strtab_free(&s->inv);
    if (s->rr) {
        for (uint32_t r = 0; r < s->nruns; r++) {
            if (s->rr[r].f) fclose(s->rr[r].f);
            free(s->rr[r].vbuf);
        }
        free(s->rr);
    }
}

/* ---- phase 1: invert ---- */

static size_t inv_bytes(const builder *b)
{
    size_t t = 0;
    for (uint32_t i = 0; i < b->nsh; i++)
        t += strtab_bytes(&b->sh[i].inv) + b->sh[i].plcap * sizeof(plist) + b->sh[i].pl_bytes;
    return t;
}

/* One analyzing thread's own state (the analyzer is not thread-safe, and
 * these buffers are reused document after document). */
typedef struct anctx {
    idx_analyzer_t *an;
    /* the document's distinct terms in order of first occurrence, with their
     * frequencies per field */
    strtab dt;
    doc_tf *dtf;
    size_t dtfcap;
    int field;
    uint32_t flen;
    /* the document's tokens as (term index, field, position), in text order;
     * grouped per term into dpos (title positions, then body positions) */
    uint32_t (*toks)[3];
    size_t ntoks, tokcap;
    uint32_t *dpos, *dposoff;
    size_t dposcap, dposoffcap;
    ZSTD_CCtx *zc;              /* compresses the sources (created on first use) */
    const idx_build_opts *o;    /* the content filter (filter_score) */
    double filter_s, sig_s;     /* this thread's time scoring and signing documents */
    uint64_t nfilter;
} anctx;

static void anctx_free(anctx *c)
{
    strtab_free(&c->dt);
    free(c->dtf);
    free(c->toks);
    free(c->dpos);
    free(c->dposoff);
    ZSTD_freeCCtx(c->zc);
    c->zc = NULL;
    c->dtf = NULL;
    c->toks = NULL;
    c->dpos = c->dposoff = NULL;
    c->dtfcap = c->tokcap = c->dposcap = c->dposoffcap = 0;
}

static int tok_cb(void *ud, const char *term, size_t len, uint32_t pos)
{
    anctx *c = ud;
    if (len == 0 || len > IDX_MAX_TERM_BYTES) return 0;
    uint32_t idx;
    int isnew, rc;
    if ((rc = strtab_intern(&c->dt, term, len, &idx, &isnew))) return rc;
    if (isnew) {
        if (idx >= c->dtfcap) {
            size_t nc = c->dtfcap ? c->dtfcap * 2 : 256;
            doc_tf *n = realloc(c->dtf, nc * sizeof *n);
            if (!n) return -ENOMEM;
            c->dtf = n;
            c->dtfcap = nc;
        }
        memset(&c->dtf[idx], 0, sizeof c->dtf[idx]);
    }
    c->dtf[idx].tf[c->field]++;
    c->flen++;
    if (c->ntoks == c->tokcap) {
        size_t nc = c->tokcap ? c->tokcap * 2 : 1024;
        uint32_t (*nt)[3] = realloc(c->toks, nc * sizeof *nt);
        if (!nt) return -ENOMEM;
        c->toks = nt;
        c->tokcap = nc;
    }
    c->toks[c->ntoks][0] = idx;
    c->toks[c->ntoks][1] = (uint32_t)c->field;
    c->toks[c->ntoks][2] = pos;
    c->ntoks++;
    return 0;
}

/* Group the document's token positions by term: dpos[dposoff[i] ..] holds
 * term i's title positions then its body positions, ascending (a counting
 * sort by term keeps text order, and the title is analyzed first). */
static int group_positions(anctx *c)
{
    size_t nt = c->dt.n;
    if (nt + 1 > c->dposoffcap) {
        size_t nc = c->dposoffcap ? c->dposoffcap : 256;
        while (nc < nt + 1) nc *= 2;
        uint32_t *no = realloc(c->dposoff, nc * sizeof *no);
        if (!no) return -ENOMEM;
        c->dposoff = no;
        c->dposoffcap = nc;
    }
    if (c->ntoks > c->dposcap) {
        size_t nc = c->dposcap ? c->dposcap : 1024;
        while (nc < c->ntoks) nc *= 2;
        uint32_t *np = realloc(c->dpos, nc * sizeof *np);
        if (!np) return -ENOMEM;
        c->dpos = np;
        c->dposcap = nc;
    }
    uint32_t off = 0;
    for (size_t i = 0; i < nt; i++) {
        c->dposoff[i] = off;
        off += c->dtf[i].tf[0] + c->dtf[i].tf[1];
    }
    c->dposoff[nt] = off;
    for (size_t t = 0; t < c->ntoks; t++) c->dpos[c->dposoff[c->toks[t][0]]++] = c->toks[t][2];
    for (size_t i = 0; i < nt; i++) c->dposoff[i] -= c->dtf[i].tf[0] + c->dtf[i].tf[1];
    return 0;
}

/* One posting in the in-memory list (and in run files): doc gap, tf_title,
 * tf_body, then the tf_title title positions and the tf_body body positions,
 * each field's as gaps from the previous one (the first from 0). */
static int plist_add(shard *s, uint32_t idx, uint32_t doc, const doc_tf *tf, const uint32_t *pos)
{
    plist *p = &s->pl[idx];
    uint64_t npos = (uint64_t)tf->tf[IDX_FIELD_TITLE] + tf->tf[IDX_FIELD_BODY];
    uint64_t need = 15 + 5 * npos;
    if (need > UINT32_MAX - p->len) return -ENOMEM;
    if (p->cap - p->len < need) {
        uint64_t nc = p->cap ? p->cap : 16;
        while (nc - p->len < need) nc *= 2;
        if (nc > UINT32_MAX) return -ENOMEM;
        uint8_t *nb = realloc(p->buf, nc);
        if (!nb) return -ENOMEM;
        s->pl_bytes += nc - p->cap;
        p->buf = nb;
        p->cap = (uint32_t)nc;
    }
    uint32_t gap = p->n ? doc - p->last_doc : doc;
    p->len += (uint32_t)put_varint(p->buf + p->len, gap);
    p->len += (uint32_t)put_varint(p->buf + p->len, tf->tf[IDX_FIELD_TITLE]);
    p->len += (uint32_t)put_varint(p->buf + p->len, tf->tf[IDX_FIELD_BODY]);
    for (int f = 0, k = 0; f < IDX_NFIELDS; f++) {
        uint32_t prev = 0;
        for (uint32_t i = 0; i < tf->tf[f]; i++, k++) {
            p->len += (uint32_t)put_varint(p->buf + p->len, pos[k] - prev);
            prev = pos[k];
        }
    }
    p->last_doc = doc;
    p->n++;
    return 0;
}

static int key_by_term(const void *a, const void *b)
{
    const strkey *x = *(const strkey *const *)a, *y = *(const strkey *const *)b;
    return term_cmp(x->s, x->len, y->s, y->len);
}

/* A varint written by write_varint (run and term-vector files): 0, or -1 at
 * the end of the file or on a varint longer than 5 bytes. */
static int file_varint(FILE *f, uint32_t *v)
{
    uint32_t x = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        int c = getc_unlocked(f);
        if (c == EOF) return -1;
        x |= (uint32_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) { *v = x; return 0; }
    }
    return -1;
}

static int write_varint(FILE *f, uint32_t v)
{
    uint8_t tmp[5];
    size_t n = put_varint(tmp, v);
    return fwrite(tmp, 1, n, f) == n ? 0 : -1;
}

static void run_path(const builder *b, uint32_t sh, uint32_t run, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/s%03" PRIu32 "-r%05" PRIu32 ".run", b->builddir, sh, run);
}

/* Write one shard's inversion as a sorted run and empty it. */
static int spill_shard(builder *b, shard *s, uint32_t si)
{
    if (s->inv.n == 0) return 0;
    char path[4200];
    run_path(b, si, s->nruns, path, sizeof path);
    const strkey **order = malloc(s->inv.n * sizeof *order);
    if (!order) return -ENOMEM;
    for (size_t i = 0; i < s->inv.n; i++) order[i] = &s->inv.keys[i];
    qsort(order, s->inv.n, sizeof *order, key_by_term);
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(order);
        return fn_seterr(b->eb, -errno, "%s: %s", path, strerror(errno));
    }
    int bad = 0;
    for (size_t i = 0; i < s->inv.n && !bad; i++) {
        const strkey *k = order[i];
        plist *p = &s->pl[k - s->inv.keys];
        uint8_t tl = (uint8_t)k->len;
        bad |= fwrite(&tl, 1, 1, f) != 1;
        bad |= fwrite(k->s, 1, k->len, f) != k->len;
        bad |= write_varint(f, p->n);
        bad |= fwrite(p->buf, 1, p->len, f) != p->len;
    }
    uint8_t zero = 0;
    bad |= fwrite(&zero, 1, 1, f) != 1;
    int err = bad ? errno : 0;   /* the failed write's: ENOSPC, EDQUOT, EIO */
    if (fclose(f) != 0 && !bad) { bad = 1; err = errno; }
    free(order);
    if (bad) return write_failed(b, path, NULL, err);
    for (size_t i = 0; i < s->inv.n; i++) free(s->pl[i].buf);
    free(s->pl);
    s->pl = NULL;
    s->plcap = 0;
    s->pl_bytes = 0;
    strtab_free(&s->inv);
    s->nruns++;
    return 0;
}

static int spill_all(builder *b)
{
    for (uint32_t i = 0; i < b->nsh; i++) {
        int rc = spill_shard(b, &b->sh[i], i);
        if (rc) return rc;
    }
    return 0;
}


/* A bad line: a warning (skip) or the build's error (fail). */
static int bad_line(builder *b, int code, uint64_t line, const char *reason)
{
    if (b->o->on_error == IDX_ON_ERROR_FAIL)
        return fn_seterr(b->eb, code, "%s:%" PRIu64 ": %s", b->fname, line, reason);
    b->st.skipped++;
    if (b->o->warning) {
        char msg[sizeof(fn_errbuf)];
        snprintf(msg, sizeof msg, "%s:%" PRIu64 ": %s", b->fname, line, reason);
        b->o->warning(b->o->ud, msg);
    }
    return 0;
}

static int field_text(json_t *root, const char *name, const char **txt, size_t *len)
{
    json_t *v = json_object_get(root, name);
    *txt = "";
    *len = 0;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return -1;
    *txt = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

static int grow_norms(shard *s)
{
    if (s->ndocs < s->ncap) return 0;
    size_t nc = s->ncap ? s->ncap * 2 : 1024;
    for (int f = 0; f < IDX_NFIELDS; f++) {
        uint32_t *n = realloc(s->len[f], nc * sizeof *n);
        if (!n) return -ENOMEM;
        s->len[f] = n;
    }
    uint64_t *k = realloc(s->keys, nc * sizeof *k);
    if (!k) return -ENOMEM;
    s->keys = k;
    float *pp = realloc(s->pop, nc * sizeof *pp);
    if (!pp) return -ENOMEM;
    s->pop = pp;
    int64_t *pb = realloc(s->pub, nc * sizeof *pb);
    if (!pb) return -ENOMEM;
    s->pub = pb;
    uint16_t *ud = realloc(s->urld, nc * sizeof *ud);
    if (!ud) return -ENOMEM;
    s->urld = ud;
    s->ncap = nc;
    return 0;
}

/* The two stored forms of a document (format.h): the record responses need
 * (id, title, url) in `docs`, and the whole JSON object in `source`: js, jn
 * bytes, is the value after its sum (u32le raw_len | zstd frame, as the
 * analyzing thread compressed it). */
static int put_doc(builder *b, shard *s, const uint8_t dk[4], const char *id, size_t idlen, const char *title,
                   size_t titlelen, const char *url, size_t urllen, const char *js, size_t jn)
{
    uint32_t doc = idx_get_u32be(dk);
    if (titlelen > UINT32_MAX || urllen > UINT32_MAX) return fn_seterr(b->eb, FN_ELIMIT, "%s: field too long", s->dir);
    size_t n = IDX_DOC_HDR + idlen + titlelen + urllen;
    MDB_val k = { 4, (void *)dk }, v = { n, NULL };
    int rc = mdb_put(s->txn, s->docs, &k, &v, MDB_APPEND | MDB_RESERVE);
    if (rc) return fn_seterr(b->eb, mdb_code(rc), "%s: docs: %s", s->dir, mdb_strerror(rc));
    uint8_t *p = v.mv_data;
    idx_put_u32le(p + 4, (uint32_t)idlen);
    idx_put_u32le(p + 8, (uint32_t)titlelen);
    idx_put_u32le(p + 12, (uint32_t)urllen);
    memcpy(p + IDX_DOC_HDR, id, idlen);
    if (titlelen) memcpy(p + IDX_DOC_HDR + idlen, title, titlelen);
    if (urllen) memcpy(p + IDX_DOC_HDR + idlen + titlelen, url, urllen);
    idx_put_u32le(p, idx_sum32(p + 4, n - 4, doc));

    v = (MDB_val){ 4 + jn, NULL };
    rc = mdb_put(s->txn, s->source, &k, &v, MDB_APPEND | MDB_RESERVE);
    if (rc) return fn_seterr(b->eb, mdb_code(rc), "%s: source: %s", s->dir, mdb_strerror(rc));
    memcpy((uint8_t *)v.mv_data + 4, js, jn);
    idx_put_u32le(v.mv_data, idx_sum32(js, jn, doc));
    s->txn_bytes += n + jn + 40;
    return 0;
}

/* The static signals of a document (format.h): popularity (a number >= 0,
 * 0 if absent), published_at (unix seconds, IDX_NO_TIME if absent) and the
 * url's path depth. NULL, or why the line is bad. */
typedef struct doc_attrs { double popularity; int64_t published_at; uint16_t url_depth; } doc_attrs;

static const char *doc_attrs_get(json_t *root, doc_attrs *a)
{
    a->popularity = 0;
    a->published_at = IDX_NO_TIME;
    a->url_depth = 0;
    json_t *v = json_object_get(root, "popularity");
    if (v && !json_is_null(v)) {
        if (!json_is_number(v)) return "\"popularity\" is not a number";
        a->popularity = json_number_value(v);
        if (!(a->popularity >= 0) || !isfinite(a->popularity) || a->popularity > 3.4e38)
            return "\"popularity\" must be a finite number >= 0";
    }
    v = json_object_get(root, "published_at");
    if (v && !json_is_null(v)) {
        if (!json_is_number(v)) return "\"published_at\" is not a number (unix seconds)";
        double t = json_number_value(v);
        if (!isfinite(t) || t < -1e15 || t > 1e15) return "\"published_at\" is out of range";
        a->published_at = (int64_t)floor(t);
    }
    /* a url that is not a string is kept in the source and reads as "" */
    v = json_object_get(root, "url");
    if (json_is_string(v)) a->url_depth = idx_url_depth(json_string_value(v));
    return NULL;
}

/* ---- the parse/analyze pipeline ----
 *
 * The main thread reads the input into batches of lines (at most BATCH_LINES
 * lines, cut after the line that reaches BATCH_BYTES) in a ring of 2 x threads
 * slots. Any thread - the workers, and the main thread whenever the batch it
 * needs next is not ready - takes the oldest batch not yet taken and parses,
 * checks and analyzes each of its lines into the batch's result (the stored
 * fields, the terms with their frequencies and positions, the field lengths;
 * or the reason the line is bad). The main thread then consumes the batches
 * strictly in input order and does the order-dependent work as it would for
 * one line at a time: document numbers, the ids check (duplicates), LMDB
 * writes, norms and postings. The index is the same for any number of threads.
 *
 * Ownership: a slot is the main thread's while it fills it and from the
 * moment it sees it done until it publishes it again (filled++ under mu);
 * between the two it belongs to the one thread that took it (taken++ under
 * mu) until that thread sets done (under mu). Nothing else is shared: each
 * thread has its own analyzer and scratch (anctx), jansson values never leave
 * the thread that parsed them, and only the main thread touches the builder,
 * the shards and LMDB. */

#define BATCH_LINES 256
#define BATCH_BYTES (256u << 10)
#define BATCH_KEEP (1u << 20)   /* a batch buffer larger than this is freed after use */
#define AUTO_THREADS 8          /* threads = 0: online CPUs, at most this */
#define MAX_THREADS 64

enum { BD_BLANK, BD_OK, BD_BAD };

typedef struct bline { size_t off, len; uint64_t lineno; } bline;

/* One line's result. Offsets are into the batch's out (bytes) and pos. */
typedef struct bdoc {
    int kind;
    int code;                   /* BD_BAD: FN_EPARSE */
    size_t reason;              /* BD_BAD: NUL-terminated */
    uint64_t key;               /* BD_OK: xxh64(id) */
    size_t id, idlen, title, titlelen, url, urllen, src, srclen;
    doc_attrs attrs;
    uint32_t flen[IDX_NFIELDS];
    /* nterms terms, each: u8 length, the bytes, varint tf_title, varint
     * tf_body; their positions at pos[pos ..], term by term, as group_positions
     * lays them out */
    size_t terms, pos;
    uint32_t nterms;
    size_t vec;                 /* vdim floats (native, unaligned) at out + vec */
    size_t sattr, sattrlen;     /* the attributes at out + sattr: per attribute a u16 count,
                                   then each value as a u16 length and its bytes */
    uint32_t vdim;              /* 0: no "embedding" */
    size_t sig;                 /* IDX_DUPSIG_BYTES at out + sig */
    float fscore;               /* the content filter's score (NaN: no filter) */
} bdoc;

typedef struct batch {
    /* input: written by the main thread before the batch is published */
    char *in;
    size_t inlen, incap;
    bline line[BATCH_LINES];
    uint32_t nlines;
    /* result: written by the thread that took it */
    bdoc doc[BATCH_LINES];
    uint32_t ndocs;             /* lines analyzed; if < nlines, line ndocs failed with rc */
    int rc;
    uint8_t *out;
    size_t outlen, outcap;
    uint32_t *pos;
    size_t npos, poscap;
    int done;                   /* under pipe.mu */
} batch;

typedef struct pipe_t {
    pthread_mutex_t mu;
    pthread_cond_t work;        /* workers: a batch was published, or stop */
    pthread_cond_t done;        /* main: a batch was analyzed */
    batch *slot;
    uint32_t nb;
    uint64_t filled, taken;     /* batches published / taken, under mu */
    int stop;                   /* under mu */
} pipe_t;

typedef struct worker { pthread_t th; anctx ctx; pipe_t *p; } worker;

static int out_reserve(batch *bt, size_t n)
{
    if (bt->outcap - bt->outlen >= n) return 0;
    size_t nc = bt->outcap ? bt->outcap : BATCH_BYTES;
    while (nc - bt->outlen < n) {
        if (nc > SIZE_MAX / 2) return -ENOMEM;
        nc *= 2;
    }
    uint8_t *no = realloc(bt->out, nc);
    if (!no) return -ENOMEM;
    bt->out = no;
    bt->outcap = nc;
    return 0;
}

static int out_add(batch *bt, const void *p, size_t n, size_t *off)
{
    int rc = out_reserve(bt, n);
    if (rc) return rc;
    *off = bt->outlen;
    if (n) memcpy(bt->out + bt->outlen, p, n);
    bt->outlen += n;
    return 0;
}

static int doc_bad(batch *bt, bdoc *d, int code, const char *fmt, const char *arg)
{
    char reason[300];
    snprintf(reason, sizeof reason, fmt, arg);
    d->kind = BD_BAD;
    d->code = code;
    return out_add(bt, reason, strlen(reason) + 1, &d->reason);
}

/* Parse, check and analyze line i of the batch into doc[i]. Returns 0 (the
 * line may be bad: BD_BAD) or -ENOMEM. */
static int analyze_line(anctx *c, batch *bt, uint32_t i)
{
    const char *line = bt->in + bt->line[i].off;
    size_t len = bt->line[i].len;
    bdoc *d = &bt->doc[i];
    memset(d, 0, sizeof *d);
    size_t j = 0;
    while (j < len && (line[j] == ' ' || line[j] == '\t' || line[j] == '\r' || line[j] == '\n')) j++;
    if (j == len) { d->kind = BD_BLANK; return 0; }    /* nothing to index, not an error */

    json_error_t jerr;
    json_t *root = json_loadb(line, len, 0, &jerr);
    int rc = 0;
    if (!root) return doc_bad(bt, d, FN_EPARSE, "invalid JSON: %s", jerr.text);
    if (!json_is_object(root)) { rc = doc_bad(bt, d, FN_EPARSE, "%s", "not a JSON object"); goto out; }
    json_t *jid = json_object_get(root, "id");
    if (!jid) { rc = doc_bad(bt, d, FN_EPARSE, "%s", "missing \"id\""); goto out; }
    if (!json_is_string(jid)) { rc = doc_bad(bt, d, FN_EPARSE, "%s", "\"id\" is not a string"); goto out; }
    const char *id = json_string_value(jid);
    size_t idlen = json_string_length(jid);
    if (idlen == 0) { rc = doc_bad(bt, d, FN_EPARSE, "%s", "empty \"id\""); goto out; }
    if (idlen > MAX_ID_BYTES) { rc = doc_bad(bt, d, FN_EPARSE, "%s", "\"id\" longer than 511 bytes"); goto out; }
    const char *txt[IDX_NFIELDS];
    size_t tlen[IDX_NFIELDS];
    if (field_text(root, "title", &txt[0], &tlen[0])) { rc = doc_bad(bt, d, FN_EPARSE, "%s", "\"title\" is not a string"); goto out; }
    if (field_text(root, "body", &txt[1], &tlen[1])) { rc = doc_bad(bt, d, FN_EPARSE, "%s", "\"body\" is not a string"); goto out; }
    const char *why = doc_attrs_get(root, &d->attrs);
    if (why) { rc = doc_bad(bt, d, FN_EPARSE, "%s", why); goto out; }
    {
        idx_attr_doc ad;
        char awhy[80];
        if ((why = idx_attrs_from_json(root, &ad, awhy, sizeof awhy))) { rc = doc_bad(bt, d, FN_EPARSE, "%s", why); goto out; }
        size_t need = 0;
        for (int a = 0; a < IDX_NATTRS; a++) {
            need += 2;
            for (uint32_t j = 0; j < ad.n[a]; j++) need += 2 + ad.len[a][j];
        }
        if ((rc = out_reserve(bt, need))) goto out;
        uint8_t *w = bt->out + bt->outlen;
        for (int a = 0; a < IDX_NATTRS; a++) {
            w[0] = (uint8_t)ad.n[a]; w[1] = (uint8_t)(ad.n[a] >> 8); w += 2;
            for (uint32_t j = 0; j < ad.n[a]; j++) {
                w[0] = (uint8_t)ad.len[a][j]; w[1] = (uint8_t)(ad.len[a][j] >> 8);
                memcpy(w + 2, ad.v[a][j], ad.len[a][j]);
                w += 2 + ad.len[a][j];
            }
        }
        d->sattr = bt->outlen;
        d->sattrlen = need;
        bt->outlen += need;
    }
    json_t *je = json_object_get(root, "embedding");
    if (je && !json_is_null(je)) {
        char vwhy[120];
        size_t vn = json_is_array(je) ? json_array_size(je) : 0;
        if (!json_is_array(je)) { rc = doc_bad(bt, d, FN_EPARSE, "%s", "\"embedding\" is not an array of numbers"); goto out; }
        if (vn == 0) { rc = doc_bad(bt, d, FN_EPARSE, "%s", "\"embedding\" is empty"); goto out; }
        if (vn > ANN_MAX_DIM) { rc = doc_bad(bt, d, FN_ELIMIT, "%s", "\"embedding\" has more than 65536 numbers"); goto out; }
        if ((rc = out_reserve(bt, vn * sizeof(float)))) goto out;
        size_t at = bt->outlen;
        for (size_t i = 0; i < vn; i++) {
            json_t *x = json_array_get(je, i);
            if (!json_is_number(x)) {
                snprintf(vwhy, sizeof vwhy, "\"embedding\"[%zu] is not a number", i);
                rc = doc_bad(bt, d, FN_EPARSE, "%s", vwhy);
                goto out;
            }
            double xv = json_number_value(x);
            float f = (float)xv;
            if (!isfinite(xv) || !isfinite(f)) {
                snprintf(vwhy, sizeof vwhy, "\"embedding\"[%zu] = %g is not a finite float32", i, xv);
                rc = doc_bad(bt, d, FN_EPARSE, "%s", vwhy);
                goto out;
            }
            memcpy(bt->out + at + i * sizeof f, &f, sizeof f);
        }
        bt->outlen += vn * sizeof(float);
        d->vec = at;
        d->vdim = (uint32_t)vn;
    }

    d->kind = BD_OK;
    d->key = XXH64(id, idlen, 0);
    json_t *ju = json_object_get(root, "url");
    const char *url = json_is_string(ju) ? json_string_value(ju) : "";
    size_t urllen = json_is_string(ju) ? json_string_length(ju) : 0;
    d->idlen = idlen;
    d->titlelen = tlen[0];
    d->urllen = urllen;
    if ((rc = out_add(bt, id, idlen, &d->id)) || (rc = out_add(bt, txt[0], tlen[0], &d->title)) ||
        (rc = out_add(bt, url, urllen, &d->url)))
        goto out;
    /* the source: the compact dump, compressed here rather than by the
     * main thread (format.h: source; the frame depends only on the bytes
     * and the level, so not on which thread made it) */
    char *js = json_dumps(root, JSON_COMPACT);
    if (!js) { rc = -ENOMEM; goto out; }
    size_t jn = strlen(js);
    if (jn > IDX_MAX_SOURCE_BYTES) {
        free(js);
        rc = doc_bad(bt, d, FN_ELIMIT, "%s", "the document is longer than 64 MiB (as compact JSON)");
        goto out;
    }
    if (!c->zc && !(c->zc = ZSTD_createCCtx())) { free(js); rc = -ENOMEM; goto out; }
    size_t bound = ZSTD_compressBound(jn);
    if ((rc = out_reserve(bt, 4 + bound))) { free(js); goto out; }
    size_t zn = ZSTD_compressCCtx(c->zc, bt->out + bt->outlen + 4, bound, js, jn, IDX_SOURCE_ZSTD_LEVEL);
    free(js);
    if (ZSTD_isError(zn)) { rc = -ENOMEM; goto out; }   /* with a bound-sized buffer: only memory */
    idx_put_u32le(bt->out + bt->outlen, (uint32_t)jn);
    d->src = bt->outlen;
    d->srclen = 4 + zn;
    bt->outlen += d->srclen;

    /* the result page's signals (format.h docsig): here, in parallel */
    {
        double t0 = now_s();
        if ((rc = out_reserve(bt, IDX_DUPSIG_BYTES))) goto out;
        idx_dupsig(txt[0], tlen[0], txt[1], tlen[1], bt->out + bt->outlen);
        d->sig = bt->outlen;
        bt->outlen += IDX_DUPSIG_BYTES;
        double t1 = now_s();
        c->sig_s += t1 - t0;
        d->fscore = NAN;
        if (c->o->filter_score) {
            double p = c->o->filter_score(c->o->filter_ud, txt[0], tlen[0], txt[1], tlen[1], root);
            if (p < 0) { rc = -ENOMEM; goto out; }
            d->fscore = (float)p;
            c->filter_s += now_s() - t1;
            c->nfilter++;
        }
    }

    strtab_clear(&c->dt);
    c->ntoks = 0;
    for (int f = 0; f < IDX_NFIELDS; f++) {
        c->field = f;
        c->flen = 0;
        if (tlen[f] && (rc = idx_analyze(c->an, txt[f], tlen[f], tok_cb, c))) goto out;
        d->flen[f] = c->flen;
    }
    if ((rc = group_positions(c))) goto out;
    size_t need = 0;
    for (size_t t = 0; t < c->dt.n; t++) need += 1 + c->dt.keys[t].len + 10;
    if ((rc = out_reserve(bt, need))) goto out;
    d->terms = bt->outlen;
    d->nterms = (uint32_t)c->dt.n;
    uint8_t *p = bt->out + bt->outlen;
    for (size_t t = 0; t < c->dt.n; t++) {
        const strkey *k = &c->dt.keys[t];
        *p++ = (uint8_t)k->len;
        memcpy(p, k->s, k->len);
        p += k->len;
        p += put_varint(p, c->dtf[t].tf[0]);
        p += put_varint(p, c->dtf[t].tf[1]);
    }
    bt->outlen = (size_t)(p - bt->out);
    if (idx_grow((void **)&bt->pos, &bt->poscap, bt->npos + c->ntoks, sizeof *bt->pos)) {
        rc = -ENOMEM;
        goto out;
    }
    d->pos = bt->npos;
    if (c->ntoks) memcpy(bt->pos + bt->npos, c->dpos, c->ntoks * sizeof *bt->pos);
    bt->npos += c->ntoks;
out:
    json_decref(root);
    return rc;
}

static void process_batch(anctx *c, batch *bt)
{
    bt->outlen = 0;
    bt->npos = 0;
    bt->rc = 0;
    uint32_t i;
    for (i = 0; i < bt->nlines; i++)
        if ((bt->rc = analyze_line(c, bt, i))) break;
    bt->ndocs = i;
}

static size_t get_varint(const uint8_t *p, uint32_t *v)
{
    uint32_t x = 0;
    size_t n = 0;
    for (int shift = 0;; shift += 7) {
        uint8_t c = p[n++];
        x |= (uint32_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) break;
    }
    *v = x;
    return n;
}

/* ---- test seam (builder_int.h) ---- */

static void set_why(char *why, size_t whylen, const char *s)
{
    if (why && whylen) snprintf(why, whylen, "%s", s);
}

/* Is a BD_OK result laid out as invert_doc/index_doc will read it? Any
 * "no" is a parser bug, which the fuzzer must see as such. */
static const char *doc_layout_bad(const batch *bt, const bdoc *d)
{
    size_t L = bt->outlen;
#define FITS(off, n) ((off) <= L && (n) <= L - (off))
    if (d->idlen == 0 || d->idlen > MAX_ID_BYTES || !FITS(d->id, d->idlen)) return "id out of place";
    if (!FITS(d->title, d->titlelen) || !FITS(d->url, d->urllen)) return "title/url out of place";
    if (d->srclen < 4 || !FITS(d->src, d->srclen)) return "source out of place";
    if (!FITS(d->sattr, d->sattrlen) || !FITS(d->sig, IDX_DUPSIG_BYTES)) return "attrs/sig out of place";
    if (d->vdim && !FITS(d->vec, (size_t)d->vdim * sizeof(float))) return "embedding out of place";
    uint64_t tf[IDX_NFIELDS] = { 0 };
    size_t at = d->terms;
    for (uint32_t t = 0; t < d->nterms; t++) {
        /* a length byte, the term, then a varint per field */
        if (!FITS(at, 1) || bt->out[at] == 0 || !FITS(at, 1 + (size_t)bt->out[at])) return "terms out of place";
        at += 1 + bt->out[at];
        for (int f = 0; f < IDX_NFIELDS; f++) {
            size_t e = at;
            while (e < L && e - at < 5 && (bt->out[e] & 0x80)) e++;
            if (e >= L || e - at >= 5) return "terms out of place";
            uint32_t v;
            at += get_varint(bt->out + at, &v);
            tf[f] += v;
        }
    }
#undef FITS
    for (int f = 0; f < IDX_NFIELDS; f++)
        if (tf[f] != d->flen[f]) return "term frequencies do not add up to the field length";
    if (d->pos > bt->npos || tf[0] + tf[1] != bt->npos - d->pos) return "positions out of place";
    return NULL;
}

int idx_corpus_line_check(const char *line, size_t len, char *why, size_t whylen)
{
    set_why(why, whylen, "");
    idx_build_opts o;                  /* zeroed: default analyzer, no content filter */
    memset(&o, 0, sizeof o);
    anctx c;
    memset(&c, 0, sizeof c);
    c.o = &o;
    batch *bt = calloc(1, sizeof *bt); /* tens of KB: not on the stack */
    if (!bt) return -ENOMEM;
    fn_errbuf eb;
    int rc = idx_analyzer_create(&o.analyzer, &c.an, &eb);
    if (rc) {
        set_why(why, whylen, eb.msg);
        free(bt);
        return rc;
    }
    bt->in = (char *)line;             /* analyze_line only reads it */
    bt->inlen = len;
    bt->line[0] = (bline){ 0, len, 1 };
    bt->nlines = 1;
    rc = analyze_line(&c, bt, 0);
    const bdoc *d = &bt->doc[0];
    if (rc == 0 && d->kind == BD_BLANK) {
        set_why(why, whylen, "blank line");
    } else if (rc == 0 && d->kind == BD_BAD) {
        if (d->reason >= bt->outlen || !memchr(bt->out + d->reason, '\0', bt->outlen - d->reason) ||
            !d->code) {
            set_why(why, whylen, "bad line without a reason");
            rc = FN_EFORMAT;
        } else {
            set_why(why, whylen, (const char *)bt->out + d->reason);
            rc = d->code;
        }
    } else if (rc == 0) {
        const char *bad = d->kind == BD_OK ? doc_layout_bad(bt, d) : "unknown result kind";
        if (bad) {
            set_why(why, whylen, bad);
            rc = FN_EFORMAT;
        }
    }
    free(bt->out);
    free(bt->pos);
    free(bt);
    anctx_free(&c);
    idx_analyzer_destroy(c.an);
    return rc;
}

/* Add the document's postings to the shard's inversion, its terms in order
 * of first occurrence, and its term vector to the shard's tv file. */
static int invert_doc(builder *b, shard *s, uint32_t doc, const batch *bt, const bdoc *d)
{
    const uint8_t *p = bt->out + d->terms;
    const uint32_t *pos = bt->pos + d->pos;
    /* the document's term vector record, written with one fwrite */
    if (idx_grow((void **)&b->tvbuf, &b->tvcap, 5 + (size_t)d->nterms * 15, 1)) return -ENOMEM;
    size_t tvn = put_varint(b->tvbuf, d->nterms);
    for (uint32_t i = 0; i < d->nterms; i++) {
        size_t tl = *p++;
        const char *term = (const char *)p;
        p += tl;
        doc_tf tf;
        p += get_varint(p, &tf.tf[0]);
        p += get_varint(p, &tf.tf[1]);
        uint32_t idx;
        int isnew, rc;
        if ((rc = strtab_intern(&s->inv, term, tl, &idx, &isnew))) return rc;
        if (isnew) {
            if (idx >= s->plcap) {
                size_t nc = s->plcap ? s->plcap * 2 : 4096;
                plist *n = realloc(s->pl, nc * sizeof *n);
                if (!n) return -ENOMEM;
                s->pl = n;
                s->plcap = nc;
            }
            memset(&s->pl[idx], 0, sizeof s->pl[idx]);
            int vnew;
            if ((rc = strtab_intern(&b->vocab, term, tl, &s->pl[idx].vid, &vnew))) return rc;
        }
        tvn += put_varint(b->tvbuf + tvn, s->pl[idx].vid);
        tvn += put_varint(b->tvbuf + tvn, tf.tf[0]);
        tvn += put_varint(b->tvbuf + tvn, tf.tf[1]);
        if ((rc = plist_add(s, idx, doc, &tf, pos))) return rc;
        pos += (size_t)tf.tf[0] + tf.tf[1];
    }
    if (fwrite(b->tvbuf, 1, tvn, s->tv) != tvn) return write_failed(b, b->builddir, "term vectors", errno);
    return 0;
}

/* The main thread's part of a good line: number it in its shard, check the
 * id is new, store it, its norms and its postings. */
static int index_doc(builder *b, const batch *bt, const bdoc *d, uint64_t lineno)
{
    const char *o = (const char *)bt->out;
    const char *id = o + d->id;
    size_t idlen = d->idlen;
    uint32_t si = b->map.shard[idx_bucket_of(d->key)];
    shard *s = &b->sh[si];
    int rc;
    if (s->ndocs == UINT32_MAX) return fn_seterr(b->eb, FN_ELIMIT, "%s: shard %" PRIu32 " is full", b->fname, si);
    /* the vector's checks that depend on the order (the dimension is the
     * first vector's) come before anything is stored */
    if (d->vdim) {
        if (b->vdim && d->vdim != b->vdim) {
            char reason[120];
            snprintf(reason, sizeof reason, "\"embedding\" has %" PRIu32 " numbers, the index's dimension is %"
                     PRIu32, d->vdim, b->vdim);
            return bad_line(b, FN_EPARSE, lineno, reason);
        }
        if (b->vmetric == ANN_COSINE) {
            int zero = 1;
            for (uint32_t i = 0; i < d->vdim && zero; i++) {
                float f;
                memcpy(&f, bt->out + d->vec + i * sizeof f, sizeof f);
                zero = f == 0.0f;
            }
            if (zero) return bad_line(b, FN_EPARSE, lineno, "\"embedding\" is all zeros: no direction for cosine");
        }
        b->vdim = d->vdim;
    }

    uint8_t dk[4];
    idx_put_u32be(dk, s->ndocs);
    uint8_t dv[IDX_ID_REC_BYTES];
    idx_put_u32le(dv, s->ndocs);
    idx_put_u32le(dv + 4, idx_sum32(dv, 4, idx_key_seed(id, idlen)));
    MDB_val k = { idlen, (void *)id }, v = { IDX_ID_REC_BYTES, dv };
    rc = mdb_put(s->txn, s->ids, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
        /* the id as far as its first NUL, at most 40 bytes (out is not NUL-terminated) */
        const char *nul = memchr(id, '\0', idlen < 40 ? idlen : 40);
        int shown = nul ? (int)(nul - id) : (int)(idlen < 40 ? idlen : 40);
        char reason[80];
        snprintf(reason, sizeof reason, "duplicate id \"%.*s%s\"", shown, id, idlen > 40 ? "..." : "");
        return bad_line(b, FN_EDUP, lineno, reason);
    }
    if (rc) return fn_seterr(b->eb, mdb_code(rc), "%s: ids: %s", s->dir, mdb_strerror(rc));

    if ((rc = put_doc(b, s, dk, id, idlen, o + d->title, d->titlelen, o + d->url, d->urllen, o + d->src, d->srclen)))
        return rc;
    {
        uint8_t sv[IDX_DOCSIG_BYTES];
        uint32_t bits;
        memcpy(&bits, &d->fscore, 4);
        idx_put_u32le(sv + 4, bits);
        memcpy(sv + 8, bt->out + d->sig, IDX_DUPSIG_BYTES);
        idx_put_u32le(sv, idx_sum32(sv + 4, IDX_DOCSIG_BYTES - 4, s->ndocs));
        MDB_val sk = { 4, dk }, svv = { IDX_DOCSIG_BYTES, sv };
        if ((rc = mdb_put(s->txn, s->docsig, &sk, &svv, MDB_APPEND)))
            return fn_seterr(b->eb, mdb_code(rc), "%s: docsig: %s", s->dir, mdb_strerror(rc));
        s->txn_bytes += IDX_DOCSIG_BYTES + 16;
    }
    if ((rc = grow_norms(s))) return rc;
    for (int f = 0; f < IDX_NFIELDS; f++) {
        s->len[f][s->ndocs] = d->flen[f];
        b->sumlen[f] += d->flen[f];
    }
    s->keys[s->ndocs] = d->key;
    s->pop[s->ndocs] = (float)d->attrs.popularity;
    s->pub[s->ndocs] = d->attrs.published_at;
    s->urld[s->ndocs] = d->attrs.url_depth;
    {
        const uint8_t *p = (const uint8_t *)o + d->sattr;
        for (int a = 0; a < IDX_NATTRS; a++) {
            uint32_t cnt = (uint32_t)p[0] | (uint32_t)p[1] << 8;
            p += 2;
            for (uint32_t j = 0; j < cnt; j++) {
                uint32_t l = (uint32_t)p[0] | (uint32_t)p[1] << 8;
                if ((rc = idx_attr_acc_add(&s->attr[a], s->ndocs, (const char *)p + 2, l))) return rc;
                p += 2 + l;
            }
        }
    }
    if ((rc = invert_doc(b, s, s->ndocs, bt, d))) return rc;
    if (d->vdim) {
        if (idx_grow((void **)&s->vdocs, &s->vdcap, s->nvec + 1, sizeof *s->vdocs)) return -ENOMEM;
        size_t vb = (size_t)d->vdim * sizeof(float);
        if (fwrite(bt->out + d->vec, 1, vb, s->vf) != vb) return write_failed(b, b->builddir, "vectors", errno);
        s->vdocs[s->nvec++] = s->ndocs;
        b->st.vectors++;
    }
    s->ndocs++;
    b->st.docs++;
    if (++s->txn_docs >= DOCS_PER_TXN && (rc = shard_commit(b, s, 1))) return rc;
    if (inv_bytes(b) >= b->budget) rc = spill_all(b);
    return rc;
}

/* Consume an analyzed batch, line by line in input order. */
static int consume_batch(builder *b, const batch *bt)
{
    for (uint32_t i = 0; i < bt->nlines; i++) {
        const bline *l = &bt->line[i];
        b->st.lines++;
        b->st.bytes_read += l->len;
        if (i == bt->ndocs) return bt->rc;
        const bdoc *d = &bt->doc[i];
        int rc = 0;
        if (d->kind == BD_BAD) rc = bad_line(b, d->code, l->lineno, (const char *)bt->out + d->reason);
        else if (d->kind == BD_OK) rc = index_doc(b, bt, d, l->lineno);
        if (rc) return rc;
        if ((b->st.lines & 255) == 0) progress(b, "invert", 0);
    }
    return 0;
}

/* Read up to a batch of lines into bt (nlines 0: end of input). */
static int fill_batch(builder *b, FILE *in, batch *bt, char **line, size_t *cap, int *eof)
{
    bt->inlen = 0;
    bt->nlines = 0;
    while (bt->nlines < BATCH_LINES && bt->inlen < BATCH_BYTES) {
        ssize_t n = getline(line, cap, in);
        if (n < 0) { *eof = 1; break; }
        if (idx_grow((void **)&bt->in, &bt->incap, bt->inlen + (size_t)n, 1)) return -ENOMEM;
        memcpy(bt->in + bt->inlen, *line, (size_t)n);
        bt->line[bt->nlines++] = (bline){ bt->inlen, (size_t)n, ++b->lines_read };
        bt->inlen += (size_t)n;
    }
    return 0;
}

/* A batch once consumed: drop what one large document made it grow to. */
static void batch_trim(batch *bt)
{
    if (bt->incap > BATCH_KEEP) { free(bt->in); bt->in = NULL; bt->incap = 0; }
    if (bt->outcap > 2 * BATCH_KEEP) { free(bt->out); bt->out = NULL; bt->outcap = 0; }
    if (bt->poscap * sizeof *bt->pos > BATCH_KEEP) { free(bt->pos); bt->pos = NULL; bt->poscap = 0; }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    pipe_t *p = w->p;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->taken == p->filled) pthread_cond_wait(&p->work, &p->mu);
        if (p->stop) break;
        batch *bt = &p->slot[p->taken++ % p->nb];
        pthread_mutex_unlock(&p->mu);
        process_batch(&w->ctx, bt);
        pthread_mutex_lock(&p->mu);
        bt->done = 1;
        pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int invert_input(builder *b)
{
    FILE *in = strcmp(b->o->input, "-") == 0 ? stdin : fopen(b->o->input, "r");
    if (!in) return fn_seterr(b->eb, -errno, "%s: %s", b->o->input, strerror(errno));
    int rc = 0;
    uint32_t nw = b->threads - 1, started = 0;
    pipe_t p;
    memset(&p, 0, sizeof p);
    p.nb = 2 * b->threads;
    anctx mc;                       /* the main thread's */
    memset(&mc, 0, sizeof mc);
    mc.an = b->an;
    mc.o = b->o;
    worker *w = nw ? calloc(nw, sizeof *w) : NULL;
    p.slot = calloc(p.nb, sizeof *p.slot);
    if ((nw && !w) || !p.slot) { rc = -ENOMEM; goto out_free; }
    for (uint32_t i = 0; i < nw; i++) {
        w[i].p = &p;
        w[i].ctx.o = b->o;
        if ((rc = idx_analyzer_create(&b->o->analyzer, &w[i].ctx.an, b->eb))) goto out_free;
    }
    if ((rc = pthread_mutex_init(&p.mu, NULL))) { rc = -rc; goto out_free; }
    if ((rc = pthread_cond_init(&p.work, NULL))) { rc = -rc; goto out_mu; }
    if ((rc = pthread_cond_init(&p.done, NULL))) { rc = -rc; goto out_work; }
    /* a worker that cannot be started is only missed: the main thread
     * analyzes whatever no worker took */
    while (started < nw && pthread_create(&w[started].th, NULL, worker_main, &w[started]) == 0) started++;

    char *line = NULL;
    size_t cap = 0;
    uint64_t filled = 0, consumed = 0;
    int eof = 0;
    for (;;) {
        while (!eof && filled - consumed < p.nb) {
            batch *bt = &p.slot[filled % p.nb];
            if ((rc = fill_batch(b, in, bt, &line, &cap, &eof))) break;
            if (!bt->nlines) break;
            pthread_mutex_lock(&p.mu);
            bt->done = 0;
            p.filled = ++filled;
            pthread_cond_signal(&p.work);
            pthread_mutex_unlock(&p.mu);
        }
        if (rc || consumed == filled) break;
        batch *bt = &p.slot[consumed % p.nb];
        pthread_mutex_lock(&p.mu);
        while (!bt->done) {
            if (p.taken < p.filled) {      /* help rather than wait */
                batch *x = &p.slot[p.taken++ % p.nb];
                pthread_mutex_unlock(&p.mu);
                process_batch(&mc, x);
                pthread_mutex_lock(&p.mu);
                x->done = 1;
            } else {
                pthread_cond_wait(&p.done, &p.mu);
            }
        }
        pthread_mutex_unlock(&p.mu);
        rc = consume_batch(b, bt);
        batch_trim(bt);
        consumed++;
        if (rc) break;
    }
    free(line);
    if (!rc && ferror(in)) rc = fn_seterr(b->eb, -EIO, "%s: read error", b->fname);

    pthread_mutex_lock(&p.mu);
    p.stop = 1;
    pthread_cond_broadcast(&p.work);
    pthread_mutex_unlock(&p.mu);
    for (uint32_t i = 0; i < started; i++) pthread_join(w[i].th, NULL);
    pthread_cond_destroy(&p.done);
out_work:
    pthread_cond_destroy(&p.work);
out_mu:
    pthread_mutex_destroy(&p.mu);
out_free:
    b->st.filter_docs += mc.nfilter;
    b->st.filter_seconds += mc.filter_s;
    b->st.dupsig_seconds += mc.sig_s;
    for (uint32_t i = 0; w && i < nw; i++) {
        b->st.filter_docs += w[i].ctx.nfilter;
        b->st.filter_seconds += w[i].ctx.filter_s;
        b->st.dupsig_seconds += w[i].ctx.sig_s;
        idx_analyzer_destroy(w[i].ctx.an);
        anctx_free(&w[i].ctx);
    }
    free(w);
    for (uint32_t i = 0; p.slot && i < p.nb; i++) {
        free(p.slot[i].in);
        free(p.slot[i].out);
        free(p.slot[i].pos);
    }
    free(p.slot);
    anctx_free(&mc);
    if (in != stdin) fclose(in);
    if (rc == -ENOMEM) fn_seterr(b->eb, rc, "out of memory");
    return rc;
}

/* ---- phase 2: merge ---- */

static int rr_read_varint(run_reader *r, uint32_t *v) { return file_varint(r->f, v); }

/* Advance to the next term of the run (the previous one fully consumed). */
static int rr_next(run_reader *r)
{
    int c = getc_unlocked(r->f);
    if (c == EOF) return -1;
    if (c == 0) { r->eof = 1; return 0; }
    r->tlen = (size_t)c;
    if (fread(r->term, 1, r->tlen, r->f) != r->tlen) return -1;
    return rr_read_varint(r, &r->n);
}

typedef struct blockw {
    uint32_t docs[IDX_BLOCK_SIZE], tf[IDX_NFIELDS][IDX_BLOCK_SIZE];
    uint32_t n, nblocks, df, termid, last;
    uint64_t cf[IDX_NFIELDS];   /* this shard's collection frequencies of the term */
    uint32_t *pos;              /* the block's position gaps, posting by posting */
    size_t npos, poscap;
    uint8_t *buf, *pbuf;
    size_t pbufcap;
    /* the term's skip data so far: per block its last document and max
     * BM25F term-frequency part (format.h skips) */
    uint32_t *blast;
    float *bmax;
    size_t bcap, bmcap;
} blockw;

/* The largest tfn (k1 + 1) / (k1 + tfn) of the block's postings, with the
 * operations of idx_term_bm25f (so the bound holds bit for bit), rounded up
 * to a float. */
static float block_max(const builder *b, const shard *s, const blockw *w)
{
    double m = 0.0;
    for (uint32_t i = 0; i < w->n; i++) {
        uint32_t d = w->docs[i];
        const uint32_t len[IDX_NFIELDS] = { s->len[0][d], s->len[1][d] }, tf[IDX_NFIELDS] = { w->tf[0][i], w->tf[1][i] };
        double g = idx_tf_part(&b->bm, b->avglen, len, tf);
        if (g > m) m = g;
    }
    float f = (float)m;
    if ((double)f < m) f = nextafterf(f, INFINITY);
    return f;
}

static int block_flush(builder *b, shard *s, blockw *w)
{
    if (!w->n) return 0;
    if (idx_grow((void **)&w->blast, &w->bcap, w->nblocks + 1, sizeof *w->blast) ||
        idx_grow((void **)&w->bmax, &w->bmcap, w->nblocks + 1, sizeof *w->bmax))
        return -ENOMEM;
    w->blast[w->nblocks] = w->docs[w->n - 1];
    w->bmax[w->nblocks] = block_max(b, s, w);
    uint32_t gaps[IDX_BLOCK_SIZE];
    gaps[0] = 0;
    for (uint32_t i = 1; i < w->n; i++) gaps[i] = w->docs[i] - w->docs[i - 1];
    uint8_t *p = w->buf;
    idx_put_u32le(p + 4, w->n);
    idx_put_u32le(p + 8, w->docs[0]);
    idx_put_u32le(p + 12, w->docs[w->n - 1]);
    size_t len = IDX_BLOCK_HDR;
    len += b->codec->encode(gaps, w->n, p + len);
    len += b->codec->encode(w->tf[0], w->n, p + len);
    len += b->codec->encode(w->tf[1], w->n, p + len);
    idx_put_u32le(p, idx_sum32(p + 4, len - 4, (uint64_t)w->termid << 32 | w->nblocks));
    uint8_t key[8];
    idx_put_u32be(key, w->termid);
    idx_put_u32be(key + 4, w->nblocks);
    MDB_val k = { 8, key }, v = { len, p };
    int rc = mdb_put(s->txn, s->postings, &k, &v, MDB_APPEND);
    if (rc) return fn_seterr(b->eb, mdb_code(rc), "%s: postings: %s", s->dir, mdb_strerror(rc));
    /* the block's positions, under the same key (format.h) */
    size_t pmax = IDX_POS_HDR + (w->npos / IDX_BLOCK_SIZE + 1) * b->codec->max_bytes(IDX_BLOCK_SIZE);
    if (pmax > w->pbufcap) {
        uint8_t *nb = realloc(w->pbuf, pmax);
        if (!nb) return -ENOMEM;
        w->pbuf = nb;
        w->pbufcap = pmax;
    }
    uint8_t *q = w->pbuf;
    if (w->npos > UINT32_MAX) return fn_seterr(b->eb, FN_ELIMIT, "%s: too many positions in a block", s->dir);
    idx_put_u32le(q + 4, (uint32_t)w->npos);
    size_t plen = IDX_POS_HDR;
    for (size_t i = 0; i < w->npos; i += IDX_BLOCK_SIZE) {
        size_t c = w->npos - i < IDX_BLOCK_SIZE ? w->npos - i : IDX_BLOCK_SIZE;
        plen += b->codec->encode(w->pos + i, c, q + plen);
    }
    idx_put_u32le(q, idx_sum32(q + 4, plen - 4, (uint64_t)w->termid << 32 | w->nblocks));
    v = (MDB_val){ plen, q };
    rc = mdb_put(s->txn, s->positions, &k, &v, MDB_APPEND);
    if (rc) return fn_seterr(b->eb, mdb_code(rc), "%s: positions: %s", s->dir, mdb_strerror(rc));
    s->txn_bytes += len + plen + 32;
    w->nblocks++;
    w->n = 0;
    w->npos = 0;
    return 0;
}

/* Stream the current term's postings of run r into the block writer. */
static int merge_run_term(builder *b, shard *s, run_reader *r, blockw *w)
{
    uint32_t doc = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        uint32_t gap, t0, t1;
        if (rr_read_varint(r, &gap) || rr_read_varint(r, &t0) || rr_read_varint(r, &t1))
            return fn_seterr(b->eb, FN_EFORMAT, "%s: truncated run file", b->builddir);
        doc = i ? doc + gap : gap;
        if (w->df && doc <= w->last)
            return fn_seterr(b->eb, FN_EFORMAT, "%s: run postings out of order", b->builddir);
        uint64_t np = (uint64_t)t0 + t1;
        if (idx_grow((void **)&w->pos, &w->poscap, w->npos + np, sizeof *w->pos)) return -ENOMEM;
        for (uint64_t j = 0; j < np; j++)
            if (rr_read_varint(r, &w->pos[w->npos++]))
                return fn_seterr(b->eb, FN_EFORMAT, "%s: truncated run file", b->builddir);
        w->docs[w->n] = doc;
        w->tf[0][w->n] = t0;
        w->tf[1][w->n] = t1;
        w->cf[0] += t0;
        w->cf[1] += t1;
        w->n++;
        w->df++;
        w->last = doc;
        if (w->n == IDX_BLOCK_SIZE) {
            int rc = block_flush(b, s, w);
            if (rc) return rc;
        }
    }
    return 0;
}

static int put_term(builder *b, shard *s, const char *term, size_t tlen, const idx_term_rec *t)
{
    uint8_t v[IDX_TERM_REC_BYTES];
    idx_put_u32le(v, t->termid);
    idx_put_u32le(v + 4, t->df);
    idx_put_u32le(v + 8, t->gdf);
    idx_put_u32le(v + 12, t->nblocks);
    idx_put_u64le(v + 16, t->gcf[0]);
    idx_put_u64le(v + 24, t->gcf[1]);
    idx_put_u32le(v + 32, idx_sum32(v, 32, idx_key_seed(term, tlen)));
    MDB_val k = { tlen, (void *)term }, val = { IDX_TERM_REC_BYTES, v };
    int rc = mdb_put(s->txn, s->terms, &k, &val, MDB_APPEND);
    if (rc) return fn_seterr(b->eb, mdb_code(rc), "%s: terms: %s", s->dir, mdb_strerror(rc));
    s->txn_bytes += tlen + 32;
    return 0;
}

/* The term by id (format.h vocab); ids come in order. */
static int put_vocab(builder *b, shard *s, const char *term, size_t tlen, const idx_term_rec *t)
{
    uint8_t v[IDX_VOCAB_HDR + IDX_MAX_TERM_BYTES], k[4];
    idx_put_u32be(k, t->termid);
    idx_put_u32le(v + 4, t->gdf);
    memcpy(v + IDX_VOCAB_HDR, term, tlen);
    idx_put_u32le(v, idx_sum32(v + 4, 4 + tlen, t->termid));
    MDB_val key = { 4, k }, val = { IDX_VOCAB_HDR + tlen, v };
    int rc = mdb_put(s->txn, s->vocab, &key, &val, MDB_APPEND);
    if (rc) return fn_seterr(b->eb, mdb_code(rc), "%s: vocab: %s", s->dir, mdb_strerror(rc));
    s->txn_bytes += tlen + 12;
    return 0;
}

/* The term's skip data (format.h skips), for 2 blocks or more. */
static int put_skips(builder *b, shard *s, blockw *w)
{
    if (w->nblocks < 2) return 0;
    size_t len = 8 + (size_t)w->nblocks * 8;
    uint8_t *v = malloc(len);
    if (!v) return -ENOMEM;
    idx_put_u32le(v + 4, w->nblocks);
    for (uint32_t i = 0; i < w->nblocks; i++) {
        uint32_t bits;
        memcpy(&bits, &w->bmax[i], 4);
        idx_put_u32le(v + 8 + 4 * (size_t)i, w->blast[i]);
        idx_put_u32le(v + 8 + 4 * ((size_t)w->nblocks + i), bits);
    }
    idx_put_u32le(v, idx_sum32(v + 4, len - 4, w->termid));
    uint8_t key[4];
    idx_put_u32be(key, w->termid);
    MDB_val k = { 4, key }, val = { len, v };
    int rc = mdb_put(s->txn, s->skips, &k, &val, MDB_APPEND);
    free(v);
    if (rc) return fn_seterr(b->eb, mdb_code(rc), "%s: skips: %s", s->dir, mdb_strerror(rc));
    s->txn_bytes += len + 16;
    return 0;
}

static int open_run(builder *b, uint32_t si, uint32_t r, run_reader *rr);
static int compact_runs(builder *b, uint32_t si, uint32_t limit);

static int merge_all(builder *b)
{
    int rc = 0;
    blockw *w = calloc(b->nsh, sizeof *w);
    if (!w) return -ENOMEM;
    size_t maxb = IDX_BLOCK_HDR + 3 * b->codec->max_bytes(IDX_BLOCK_SIZE);
    for (uint32_t i = 0; i < b->nsh; i++) {
        if (!(w[i].buf = malloc(maxb))) { rc = -ENOMEM; goto out; }
    }
    /* the block maxima need the global average lengths: every document is in */
    idx_bm25_defaults(&b->bm);
    for (int f = 0; f < IDX_NFIELDS; f++)
        b->avglen[f] = b->st.docs ? (double)b->sumlen[f] / (double)b->st.docs : 0.0;
    if (!(b->vid_termid = malloc((b->vocab.n ? b->vocab.n : 1) * sizeof *b->vid_termid))) { rc = -ENOMEM; goto out; }
    for (size_t v = 0; v < b->vocab.n; v++) b->vid_termid[v] = UINT32_MAX;
    uint32_t limit = MAX_OPEN_RUNS / b->nsh ? MAX_OPEN_RUNS / b->nsh : 1;
    for (uint32_t i = 0; i < b->nsh; i++)
        if ((rc = compact_runs(b, i, limit))) goto out;
    for (uint32_t i = 0; i < b->nsh; i++) {
        shard *s = &b->sh[i];
        if (!s->nruns) continue;
        if (!(s->rr = calloc(s->nruns, sizeof *s->rr))) { rc = -ENOMEM; goto out; }
        for (uint32_t r = 0; r < s->nruns; r++)
            if ((rc = open_run(b, i, r, &s->rr[r]))) goto out;
    }
    char term[IDX_MAX_TERM_BYTES + 1];
    for (;;) {
        /* the smallest current term over all runs of all shards */
        const run_reader *min = NULL;
        for (uint32_t i = 0; i < b->nsh; i++)
            for (uint32_t r = 0; r < b->sh[i].nruns; r++) {
                const run_reader *rr = &b->sh[i].rr[r];
                if (!rr->eof && (!min || term_cmp(rr->term, rr->tlen, min->term, min->tlen) < 0)) min = rr;
            }
        if (!min) break;
        size_t tlen = min->tlen;
        memcpy(term, min->term, tlen);
        uint32_t gdf = 0;
        uint64_t gcf[IDX_NFIELDS] = { 0, 0 };
        for (uint32_t i = 0; i < b->nsh; i++) {
            shard *s = &b->sh[i];
            w[i].df = w[i].nblocks = w[i].n = 0;
            w[i].npos = 0;
            w[i].cf[0] = w[i].cf[1] = 0;
            w[i].termid = s->nterms;
            for (uint32_t r = 0; r < s->nruns; r++) {
                run_reader *rr = &s->rr[r];
                if (rr->eof || term_cmp(rr->term, rr->tlen, term, tlen) != 0) continue;
                if ((rc = merge_run_term(b, s, rr, &w[i]))) goto out;
                if (rr_next(rr)) { rc = fn_seterr(b->eb, FN_EFORMAT, "%s: bad run file", b->builddir); goto out; }
            }
            if ((rc = block_flush(b, s, &w[i])) || (rc = put_skips(b, s, &w[i]))) goto out;
            gdf += w[i].df;
            gcf[0] += w[i].cf[0];
            gcf[1] += w[i].cf[1];
        }
        /* the term's id is the same on every shard (below): the term
         * vectors' vocabulary numbers map to it */
        uint32_t vid;
        int vnew;
        if ((rc = strtab_intern(&b->vocab, term, tlen, &vid, &vnew))) goto out;
        if (vnew) {
            rc = fn_seterr(b->eb, FN_EFORMAT, "%s: a run holds a term no document had", b->builddir);
            goto out;
        }
        b->vid_termid[vid] = b->sh[0].nterms;
        /* every shard gets every term, with its GLOBAL statistics, also
         * where it has no postings (df 0): features such as the language
         * model's smoothing need them for any query term on any shard */
        for (uint32_t i = 0; i < b->nsh; i++) {
            shard *s = &b->sh[i];
            idx_term_rec t = { s->nterms, w[i].df, gdf, w[i].nblocks, { gcf[0], gcf[1] } };
            if ((rc = put_term(b, s, term, tlen, &t)) || (rc = put_vocab(b, s, term, tlen, &t))) goto out;
            s->nterms++;
            s->npostings += w[i].df;
            if (s->txn_bytes >= MERGE_TXN_BYTES && (rc = shard_commit(b, s, 1))) goto out;
        }
        b->st.terms++;
        b->st.postings += gdf;
        if ((b->st.terms & 1023) == 0) progress(b, "merge", 0);
    }
out:
    for (uint32_t i = 0; i < b->nsh; i++) {
        free(w[i].buf);
        free(w[i].pbuf);
        free(w[i].pos);
        free(w[i].blast);
        free(w[i].bmax);
    }
    free(w);
    return rc;
}

static int open_run(builder *b, uint32_t si, uint32_t r, run_reader *rr)
{
    char path[4200];
    run_path(b, si, r, path, sizeof path);
    memset(rr, 0, sizeof *rr);
    if (!(rr->f = fopen(path, "rb"))) return fn_seterr(b->eb, -errno, "%s: %s", path, strerror(errno));
    if ((rr->vbuf = malloc(RUN_BUF))) setvbuf(rr->f, rr->vbuf, _IOFBF, RUN_BUF);
    if (rr_next(rr)) return fn_seterr(b->eb, FN_EFORMAT, "%s: bad run file", path);
    return 0;
}

static void close_run(run_reader *rr)
{
    if (rr->f) fclose(rr->f);
    free(rr->vbuf);
    memset(rr, 0, sizeof *rr);
}

/* Merge n consecutive runs into one run file (used only when there are too
 * many runs to keep open at once). */
static int merge_runs_to_file(builder *b, run_reader *rr, uint32_t n, FILE *out, const char *path)
{
    for (;;) {
        const run_reader *min = NULL;
        for (uint32_t r = 0; r < n; r++)
            if (!rr[r].eof && (!min || term_cmp(rr[r].term, rr[r].tlen, min->term, min->tlen) < 0)) min = &rr[r];
        if (!min) break;
        char term[IDX_MAX_TERM_BYTES + 1];
        size_t tlen = min->tlen;
        memcpy(term, min->term, tlen);
        uint32_t total = 0;
        for (uint32_t r = 0; r < n; r++)
            if (!rr[r].eof && term_cmp(rr[r].term, rr[r].tlen, term, tlen) == 0) total += rr[r].n;
        uint8_t tl = (uint8_t)tlen;
        int bad = fwrite(&tl, 1, 1, out) != 1 || fwrite(term, 1, tlen, out) != tlen || write_varint(out, total);
        uint32_t prev = 0, k = 0;
        for (uint32_t r = 0; r < n && !bad; r++) {
            run_reader *x = &rr[r];
            if (x->eof || term_cmp(x->term, x->tlen, term, tlen) != 0) continue;
            uint32_t doc = 0;
            for (uint32_t i = 0; i < x->n && !bad; i++) {
                uint32_t gap, t0, t1;
                if (rr_read_varint(x, &gap) || rr_read_varint(x, &t0) || rr_read_varint(x, &t1))
                    return fn_seterr(b->eb, FN_EFORMAT, "%s: truncated run file", b->builddir);
                doc = i ? doc + gap : gap;
                bad |= write_varint(out, k ? doc - prev : doc) || write_varint(out, t0) || write_varint(out, t1);
                for (uint64_t j = 0; j < (uint64_t)t0 + t1 && !bad; j++) {   /* positions, as they are */
                    uint32_t pg;
                    if (rr_read_varint(x, &pg))
                        return fn_seterr(b->eb, FN_EFORMAT, "%s: truncated run file", b->builddir);
                    bad |= write_varint(out, pg);
                }
                prev = doc;
                k++;
            }
            if (rr_next(x)) return fn_seterr(b->eb, FN_EFORMAT, "%s: bad run file", b->builddir);
        }
        if (bad) return write_failed(b, path, NULL, errno);
    }
    uint8_t zero = 0;
    if (fwrite(&zero, 1, 1, out) != 1) return write_failed(b, path, NULL, errno);
    return 0;
}

/* Reduce a shard's runs to at most `limit` by merging groups of them. */
static int compact_runs(builder *b, uint32_t si, uint32_t limit)
{
    shard *s = &b->sh[si];
    while (s->nruns > limit) {
        uint32_t g = (s->nruns + limit - 1) / limit;
        if (g > MAX_OPEN_RUNS) g = MAX_OPEN_RUNS;
        uint32_t nout = (s->nruns + g - 1) / g;
        run_reader *rr = calloc(g, sizeof *rr);
        if (!rr) return -ENOMEM;
        int rc = 0;
        for (uint32_t o = 0; o < nout && !rc; o++) {
            uint32_t lo = o * g, hi = lo + g < s->nruns ? lo + g : s->nruns;
            char tmp[4200], path[4200];
            snprintf(tmp, sizeof tmp, "%s/s%03" PRIu32 "-merge.tmp", b->builddir, si);
            FILE *out = fopen(tmp, "wb");
            if (!out) { rc = fn_seterr(b->eb, -errno, "%s: %s", tmp, strerror(errno)); break; }
            for (uint32_t r = lo; r < hi && !rc; r++) rc = open_run(b, si, r, &rr[r - lo]);
            if (!rc) rc = merge_runs_to_file(b, rr, hi - lo, out, tmp);
            for (uint32_t r = lo; r < hi; r++) {
                close_run(&rr[r - lo]);
                run_path(b, si, r, path, sizeof path);
                unlink(path);
            }
            if (fclose(out) && !rc) rc = write_failed(b, tmp, NULL, errno);
            run_path(b, si, o, path, sizeof path);
            if (!rc && rename(tmp, path)) rc = fn_seterr(b->eb, -errno, "%s: %s", path, strerror(errno));
        }
        free(rr);
        if (rc) return rc;
        s->nruns = nout;
    }
    return 0;
}

/* ---- phase 3: finish ---- */

static int put_meta(shard *s, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int put_meta(shard *s, const char *key, const char *fmt, ...)
{
    char v[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof v) return FN_EINVAL;
    MDB_val k = { strlen(key), (void *)key }, val = { (size_t)n, v };
    return mdb_code(mdb_put(s->txn, s->meta, &k, &val, 0));
}

static int put_norm(shard *s, const char *name, const void *data, size_t bytes)
{
    MDB_val k = { strlen(name), (void *)name }, v = { 4 + bytes, NULL };
    int rc = mdb_put(s->txn, s->norms, &k, &v, MDB_RESERVE);
    if (rc) return mdb_code(rc);
    if (bytes) memcpy((uint8_t *)v.mv_data + 4, data, bytes);
    idx_put_u32le(v.mv_data, idx_sum32(data, bytes, 0));
    return 0;
}

typedef struct tvent { uint32_t termid, tf[IDX_NFIELDS]; } tvent;

static int tvent_cmp(const void *a, const void *b)
{
    uint32_t x = ((const tvent *)a)->termid, y = ((const tvent *)b)->termid;
    return (x > y) - (x < y);
}

/* The shard's term vectors (format.h tvec) from its tv file, now that every
 * term has its id: each document's terms mapped, sorted by id, coded. */
static int write_tvecs(builder *b, shard *s)
{
    int rc = 0;
    tvent *e = NULL;
    uint8_t *val = NULL;
    size_t ecap = 0, vcap = 0;
    if (fflush(s->tv) != 0) return write_failed(b, b->builddir, "term vectors", errno);
    rewind(s->tv);
    for (uint32_t doc = 0; doc < s->ndocs && !rc; doc++) {
        uint32_t n;
        if (file_varint(s->tv, &n)) goto bad;
        if (idx_grow((void **)&e, &ecap, n ? n : 1, sizeof *e) ||
            idx_grow((void **)&val, &vcap, IDX_TVEC_HDR + (size_t)n * 15, 1)) { rc = -ENOMEM; break; }
        for (uint32_t i = 0; i < n; i++) {
            uint32_t vid;
            if (file_varint(s->tv, &vid) || file_varint(s->tv, &e[i].tf[0]) || file_varint(s->tv, &e[i].tf[1]) ||
                vid >= b->vocab.n || b->vid_termid[vid] == UINT32_MAX)
                goto bad;
            e[i].termid = b->vid_termid[vid];
        }
        qsort(e, n, sizeof *e, tvent_cmp);
        uint8_t *p = val + IDX_TVEC_HDR;
        for (uint32_t i = 0; i < n; i++) {
            p += put_varint(p, i ? e[i].termid - e[i - 1].termid : e[i].termid);
            uint64_t code = (uint64_t)e[i].tf[1] * 2 + (e[i].tf[0] > 0);
            /* a body frequency over 2^31 cannot come from a 64 MiB document */
            if (code > UINT32_MAX) goto bad;
            p += put_varint(p, (uint32_t)code);
            if (e[i].tf[0]) p += put_varint(p, e[i].tf[0]);
        }
        size_t len = (size_t)(p - val);
        idx_put_u32le(val + 4, n);
        idx_put_u32le(val, idx_sum32(val + 4, len - 4, doc));
        uint8_t k[4];
        idx_put_u32be(k, doc);
        MDB_val key = { 4, k }, v = { len, val };
        if ((rc = mdb_put(s->txn, s->tvec, &key, &v, MDB_APPEND))) {
            rc = fn_seterr(b->eb, mdb_code(rc), "%s: tvec: %s", s->dir, mdb_strerror(rc));
            break;
        }
        s->txn_bytes += len + 4;
        if (s->txn_bytes >= MERGE_TXN_BYTES) rc = shard_commit(b, s, 1);
        continue;
bad:
        rc = fn_seterr(b->eb, FN_EFORMAT, "%s: the term vectors' temporary file is damaged (document %u)",
                       b->builddir, doc);
    }
    free(e);
    free(val);
    return rc;
}

/* The shard's vectors (format.h vectors, norms vec_rows / vec_docs) from
 * its .vec file: one value, filled in place (MDB_RESERVE). */
static int write_vectors(builder *b, shard *s)
{
    if (!b->vdim || !s->nvec) return 0;
    size_t rowb = (size_t)b->vdim * sizeof(float);
    if (s->nvec > (SIZE_MAX - IDX_VEC_HDR) / rowb || s->nvec * rowb > 0xffffffffu - IDX_VEC_HDR)
        return fn_seterr(b->eb, FN_ELIMIT, "%s: %zu vectors of %" PRIu32 " floats are more than one shard "
                         "holds (4 GiB): use more shards", s->dir, s->nvec, b->vdim);
    if (fflush(s->vf) != 0) return write_failed(b, b->builddir, "vectors", errno);
    rewind(s->vf);
    static const char key[] = "f32";
    MDB_val k = { 3, (void *)key }, v = { IDX_VEC_HDR + s->nvec * rowb, NULL };
    int rc = mdb_put(s->txn, s->vectors, &k, &v, MDB_RESERVE);
    if (rc) return fn_seterr(b->eb, mdb_code(rc), "%s: vectors: %s", s->dir, mdb_strerror(rc));
    uint8_t *p = v.mv_data;
    idx_put_u32le(p + 4, (uint32_t)s->nvec);
    idx_put_u32le(p + 8, b->vdim);
    idx_put_u32le(p + 12, 0);
    uint8_t *row = p + IDX_VEC_HDR;
    for (size_t r = 0; r < s->nvec; r++, row += rowb) {
        if (fread(row, 1, rowb, s->vf) != rowb)
            return fn_seterr(b->eb, FN_EFORMAT, "%s: the vectors' temporary file is short", b->builddir);
        for (uint32_t i = 0; i < b->vdim; i++) {   /* little-endian on disk whatever the host */
            uint32_t bits;
            memcpy(&bits, row + 4 * i, 4);
            idx_put_u32le(row + 4 * i, bits);
        }
    }
    idx_put_u32le(p, idx_sum32(p + 4, v.mv_size - 4, b->vdim));
    uint8_t *tmp = malloc(4 * (s->ndocs > s->nvec ? s->ndocs : s->nvec) + 4);
    if (!tmp) return -ENOMEM;
    for (uint32_t d = 0; d < s->ndocs; d++) idx_put_u32le(tmp + 4 * d, IDX_NO_VECTOR);
    for (size_t r = 0; r < s->nvec; r++) idx_put_u32le(tmp + 4 * s->vdocs[r], (uint32_t)r);
    rc = put_norm(s, "vec_rows", tmp, 4 * (size_t)s->ndocs);
    for (size_t r = 0; !rc && r < s->nvec; r++) idx_put_u32le(tmp + 4 * r, s->vdocs[r]);
    if (!rc) rc = put_norm(s, "vec_docs", tmp, 4 * s->nvec);
    free(tmp);
    if (rc) return fn_seterr(b->eb, rc, "%s: norms: %s", s->dir, fn_strerror(rc));
    return shard_commit(b, s, 1);
}

/* The shard's HNSW graph (format.h ann.hnsw) over its sealed vectors, read
 * in place from a read-only map of data.mdb: the build holds no second copy. */
static int build_ann(builder *b, shard *s)
{
    if (!b->vdim || !s->nvec) return 0;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc;
    if ((rc = mdb_env_create(&env))) return fn_seterr(b->eb, mdb_code(rc), "%s: %s", s->dir, mdb_strerror(rc));
    mdb_env_set_maxdbs(env, IDX_MAX_DBS);
    mdb_env_set_mapsize(env, IDX_MAP_SIZE);
    if ((rc = mdb_env_open(env, s->dir, MDB_RDONLY | MDB_NOLOCK, 0644)) ||
        (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))) {
        mdb_env_close(env);
        return fn_seterr(b->eb, mdb_code(rc), "%s: %s", s->dir, mdb_strerror(rc));
    }
    static const char key[] = "f32";
    MDB_val k = { 3, (void *)key }, v;
    if ((rc = mdb_dbi_open(txn, IDX_DB_VECTORS, 0, &dbi)) || (rc = mdb_get(txn, dbi, &k, &v))) {
        rc = fn_seterr(b->eb, mdb_code(rc), "%s: vectors: %s", s->dir, mdb_strerror(rc));
        goto out;
    }
    ann_hnsw_params hp;
    ann_hnsw_params_default(&hp);
    hp.metric = b->vmetric;
    if (b->o->ann_M) hp.M = b->o->ann_M;
    if (b->o->ann_efc) hp.ef_construction = b->o->ann_efc;
    hp.threads = b->threads;
    hp.seed = 42;
    ann_hnsw_t *h = NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", s->dir, IDX_ANN_FILE);
    const uint8_t *rows = (const uint8_t *)v.mv_data + IDX_VEC_HDR;
    float *copy = NULL;   /* a small value sits 2-byte aligned inside a leaf page: copy it */
    if ((uintptr_t)rows & 3) {
        if (!(copy = malloc(v.mv_size - IDX_VEC_HDR))) { rc = -ENOMEM; goto out; }
        memcpy(copy, rows, v.mv_size - IDX_VEC_HDR);
    }
    rc = ann_hnsw_build(copy ? copy : (const float *)(const void *)rows, s->nvec, b->vdim, &hp, &h, b->eb);
    if (!rc) rc = ann_hnsw_save(h, path, 0, b->eb);
    if (rc) goto out_h;
    struct stat st;
    if (stat(path, &st) == 0) b->st.index_bytes += (uint64_t)st.st_size;
out_h:
    ann_hnsw_close(h);
    free(copy);
out:
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc;
}

static int finish_shard(builder *b, uint32_t si)
{
    shard *s = &b->sh[si];
    int rc;
    if ((rc = write_tvecs(b, s)) || (rc = write_vectors(b, s))) return rc;
    uint64_t total = b->st.docs;
    double avg[IDX_NFIELDS];
    for (int f = 0; f < IDX_NFIELDS; f++) avg[f] = total ? (double)b->sumlen[f] / (double)total : 0.0;
    char bmdesc[160];
    snprintf(bmdesc, sizeof bmdesc, "%.17g %.17g %.17g %.17g %.17g", b->bm.k1, b->bm.b[0], b->bm.b[1], b->bm.w[0],
             b->bm.w[1]);

    /* norms: little-endian on disk whatever the host */
    size_t n = s->ndocs;
    uint8_t *tmp = malloc(n ? n * 8 : 1);
    if (!tmp) return -ENOMEM;
    static const char *const fname[IDX_NFIELDS] = { "title", "body" };
    rc = 0;
    for (int f = 0; f < IDX_NFIELDS && !rc; f++) {
        for (size_t i = 0; i < n; i++) idx_put_u32le(tmp + 4 * i, s->len[f][i]);
        rc = put_norm(s, fname[f], tmp, n * 4);
    }
    if (!rc) {
        for (size_t i = 0; i < n; i++) idx_put_u64le(tmp + 8 * i, s->keys[i]);
        rc = put_norm(s, "keys", tmp, n * 8);
    }
    /* static signals */
    if (!rc) {
        for (size_t i = 0; i < n; i++) {
            uint32_t bits;
            memcpy(&bits, &s->pop[i], 4);
            idx_put_u32le(tmp + 4 * i, bits);
        }
        rc = put_norm(s, "popularity", tmp, n * 4);
    }
    if (!rc) {
        for (size_t i = 0; i < n; i++) idx_put_u64le(tmp + 8 * i, (uint64_t)s->pub[i]);
        rc = put_norm(s, "published_at", tmp, n * 8);
    }
    if (!rc) {
        for (size_t i = 0; i < n; i++) { tmp[2 * i] = (uint8_t)s->urld[i]; tmp[2 * i + 1] = (uint8_t)(s->urld[i] >> 8); }
        rc = put_norm(s, "url_depth", tmp, n * 2);
    }
    free(tmp);
    if (rc) return fn_seterr(b->eb, rc, "%s: norms: %s", s->dir, fn_strerror(rc));
    /* attributes (format.h attrs) */
    for (int a = 0; a < IDX_NATTRS; a++) {
        uint8_t *val;
        size_t vlen;
        if ((rc = idx_attr_acc_value(&s->attr[a], idx_attr_names[a], s->ndocs, &val, &vlen)))
            return fn_seterr(b->eb, rc, "%s: attrs \"%s\": %s", s->dir, idx_attr_names[a], fn_strerror(rc));
        MDB_val k = { strlen(idx_attr_names[a]), (void *)idx_attr_names[a] }, v = { vlen, val };
        rc = mdb_code(mdb_put(s->txn, s->attrs, &k, &v, 0));
        free(val);
        idx_attr_acc_free(&s->attr[a]);
        if (rc) return fn_seterr(b->eb, rc, "%s: attrs: %s", s->dir, fn_strerror(rc));
    }

    if ((rc = put_meta(s, "schema", "%d", IDX_SCHEMA_VERSION)) ||
        (rc = put_meta(s, "shard", "%" PRIu32, si)) ||
        (rc = put_meta(s, "shards", "%" PRIu32, b->nsh)) ||
        (rc = put_meta(s, "buckets", "%s", b->maptext)) ||
        (rc = put_meta(s, "docs", "%" PRIu32, s->ndocs)) ||
        (rc = put_meta(s, "docs_total", "%" PRIu64, total)) ||
        (rc = put_meta(s, "sumlen_title", "%" PRIu64, b->sumlen[0])) ||
        (rc = put_meta(s, "sumlen_body", "%" PRIu64, b->sumlen[1])) ||
        (rc = put_meta(s, "avglen_title", "%.17g", avg[0])) ||
        (rc = put_meta(s, "avglen_body", "%.17g", avg[1])) ||
        (rc = put_meta(s, "terms", "%" PRIu32, s->nterms)) ||
        (rc = put_meta(s, "codec", "%s", b->codec->name)) ||
        (rc = put_meta(s, "block_size", "%d", IDX_BLOCK_SIZE)) ||
        (rc = put_meta(s, "analyzer", "%s", b->andesc)) ||
        (rc = put_meta(s, "blockmax_bm25", "%s", bmdesc)) ||
        (rc = put_meta(s, "vec_dim", "%" PRIu32, s->nvec || b->vdim ? b->vdim : 0)) ||
        (rc = put_meta(s, "vec_metric", "%s", ann_metric_name(b->vmetric))) ||
        (rc = put_meta(s, "vec_count", "%zu", s->nvec)) ||
        (rc = put_meta(s, "ann_M", "%" PRIu32, b->o->ann_M ? b->o->ann_M : 16)) ||
        (rc = put_meta(s, "ann_efc", "%" PRIu32, b->o->ann_efc ? b->o->ann_efc : 200)) ||
        (rc = put_meta(s, "created", "%" PRId64, b->created)))
        return fn_seterr(b->eb, rc, "%s: meta: %s", s->dir, fn_strerror(rc));
    if (b->o->filter_score &&
        ((rc = put_meta(s, "filter_model", "%s", b->o->filter_model ? b->o->filter_model : "")) ||
         (rc = put_meta(s, "filter_threshold", "%.17g", b->o->filter_threshold)) ||
         (rc = put_meta(s, "filter_strict", "%.17g", b->o->filter_strict))))
        return fn_seterr(b->eb, rc, "%s: meta: %s", s->dir, fn_strerror(rc));
    uint32_t msum;
    if ((rc = idx_meta_sum(s->txn, s->meta, &msum)) || (rc = put_meta(s, "meta_sum", "%08" PRIx32, msum)))
        return fn_seterr(b->eb, rc, "%s: meta: %s", s->dir, fn_strerror(rc));
    if ((rc = shard_commit(b, s, 0))) return rc;
    if ((rc = mdb_env_sync(s->env, 1))) return lmdb_failed(b, s, "sync", rc);
    mdb_env_close(s->env);
    s->env = NULL;
    /* The file is sealed from here on: record its checksum (integrity.h). */
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", s->dir);
    uint64_t hash, bytes;
    if ((rc = idx_file_hash(path, &hash, &bytes, b->eb)) ||
        (rc = idx_checksum_write(s->dir, hash, bytes, b->eb)))
        return rc;
    s->file_hash = hash;
    s->file_bytes = bytes;
    b->st.index_bytes += bytes;
    return 0;
}

static int write_index_json(builder *b)
{
    char path[4200], tmp[4200];
    snprintf(path, sizeof path, "%s/index.json", b->o->out_dir);
    snprintf(tmp, sizeof tmp, "%s/.index.json.tmp", b->o->out_dir);
    json_t *j = json_pack("{s:i, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:i, s:I}",
                          "schema", IDX_SCHEMA_VERSION, "shards", (json_int_t)b->nsh,
                          "docs", (json_int_t)b->st.docs, "created", (json_int_t)b->created,
                          "terms", (json_int_t)b->st.terms, "postings", (json_int_t)b->st.postings,
                          "analyzer", b->andesc, "codec", b->codec->name,
                          "block_size", IDX_BLOCK_SIZE, "skipped", (json_int_t)b->st.skipped);
    if (!j) return -ENOMEM;
    /* The generation's manifest (docs/operations.md "Index generations"):
     * what it was built from and how, and every shard file's checksum, so
     * a publish or an audit can tell two generations apart. */
    struct stat cst;
    int have_cst = strcmp(b->o->input, "-") != 0 && stat(b->o->input, &cst) == 0;
    char sums[64];
    json_t *corpus = json_pack("{s:s, s:I, s:I}", "path", b->o->input,
                               "bytes", (json_int_t)(have_cst ? cst.st_size : 0),
                               "mtime", (json_int_t)(have_cst ? cst.st_mtime : 0));
    json_t *settings = json_pack("{s:s, s:s, s:I, s:s, s:i, s:i, s:i, s:s}",
                                 "on_error", b->o->on_error == IDX_ON_ERROR_FAIL ? "fail" : "skip",
                                 "codec", b->codec->name, "mem_budget", (json_int_t)b->o->mem_budget,
                                 "vec_metric", b->o->vec_metric ? b->o->vec_metric : "cosine",
                                 "vec_dim", (int)b->o->vec_dim, "ann_M", (int)(b->o->ann_M ? b->o->ann_M : 16),
                                 "ann_efc", (int)(b->o->ann_efc ? b->o->ann_efc : 200),
                                 "filter_model", b->o->filter_model ? b->o->filter_model : "");
    json_t *files = json_object();
    if (json_object_set_new(j, "buckets", json_string(b->maptext))) {
        json_decref(corpus);
        json_decref(settings);
        json_decref(files);
        json_decref(j);
        return -ENOMEM;
    }
    int bad = !corpus || !settings || !files;
    for (uint32_t i = 0; i < b->nsh && !bad; i++) {
        char name[32];
        snprintf(name, sizeof name, "shard-%03" PRIu32, i);
        snprintf(sums, sizeof sums, "xxh3-64 %016" PRIx64, b->sh[i].file_hash);
        bad = json_object_set_new(files, name, json_pack("{s:s, s:I}", "data_mdb", sums,
                                                         "bytes", (json_int_t)b->sh[i].file_bytes)) != 0;
    }
    if (bad) {
        json_decref(corpus);
        json_decref(settings);
        json_decref(files);
        json_decref(j);
        return -ENOMEM;
    }
    /* set_new takes each reference, also when it fails */
    if (json_object_set_new(j, "corpus", corpus) | json_object_set_new(j, "settings", settings) |
        json_object_set_new(j, "checksums", files)) {
        json_decref(j);
        return -ENOMEM;
    }
    errno = 0;
    int rc = json_dump_file(j, tmp, JSON_INDENT(2) | JSON_SORT_KEYS);
    int err = errno;   /* fopen's, fwrite's or fclose's */
    json_decref(j);
    if (rc) return write_failed(b, tmp, NULL, err);
    int fd = open(tmp, O_RDONLY);
    if (fd >= 0) {
        rc = fsync(fd) ? errno : 0;   /* some filesystems report a full disk only here */
        close(fd);
        if (rc) return write_failed(b, tmp, "fsync", rc);
    }
    if (rename(tmp, path)) return fn_seterr(b->eb, -errno, "%s: %s", path, strerror(errno));
    return 0;
}

/* Remove the files directly inside dir, then dir itself. Only for the
 * directories a build writes (run files; data.mdb/lock.mdb), which never hold
 * subdirectories. Returns 0 or -errno (e.g. -ENOTEMPTY: something else was
 * put there, which is left alone). */
static int remove_flat_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -errno;
    struct dirent *e;
    char path[4400];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    return rmdir(dir) ? -errno : 0;
}

static void remove_builddir(builder *b)
{
    if (b->builddir[0]) remove_flat_dir(b->builddir);
}

/* "shard-" followed by digits only: a directory a build writes. */
static int is_shard_name(const char *n)
{
    if (strncmp(n, "shard-", 6) != 0 || !n[6]) return 0;
    for (n += 6; *n; n++)
        if (*n < '0' || *n > '9') return 0;
    return 1;
}

/* Remove everything a build writes into out_dir (every shard-NNN, .build,
 * the index.json temporary): used on an unpublished out_dir before building
 * into it, and after a failed build. Anything else in out_dir is kept. */
static int remove_build_output(const char *out_dir, fn_errbuf *eb)
{
    char path[4400];
    int rc, ret = 0;
    DIR *d = opendir(out_dir);
    if (!d) return errno == ENOENT ? 0 : fn_seterr(eb, -errno, "%s: %s", out_dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_shard_name(e->d_name) && strcmp(e->d_name, ".build") != 0) continue;
        snprintf(path, sizeof path, "%s/%s", out_dir, e->d_name);
        if ((rc = remove_flat_dir(path)) && !ret)
            ret = fn_seterr(eb, rc, "cannot remove %s (an earlier, unfinished build): %s", path, strerror(-rc));
    }
    closedir(d);
    snprintf(path, sizeof path, "%s/.index.json.tmp", out_dir);
    if (unlink(path) && errno != ENOENT && !ret)
        ret = fn_seterr(eb, -errno, "cannot remove %s: %s", path, strerror(errno));
    return ret;
}

int idx_build(const idx_build_opts *opts, idx_build_stats *stats, fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    if (!opts || !opts->input || !opts->out_dir || opts->shards < 1)
        return fn_seterr(eb, FN_EINVAL, "idx_build: input, out_dir and shards >= 1 are required");
    builder b;
    memset(&b, 0, sizeof b);
    b.o = opts;
    b.eb = eb;
    b.nsh = opts->shards;
    if (opts->shards > IDX_MAX_SHARDS)
        return fn_seterr(eb, FN_EINVAL, "shards: at most %u (one bucket each)", IDX_MAX_SHARDS);
    if (opts->buckets && opts->buckets->shards != opts->shards)
        return fn_seterr(eb, FN_EINVAL, "the bucket map has %u shards, the build %u", opts->buckets->shards,
                         opts->shards);
    if (opts->buckets) b.map = *opts->buckets;
    else idx_buckets_default(&b.map, opts->shards);
    idx_buckets_format(&b.map, b.maptext, sizeof b.maptext);
    b.fname = strcmp(opts->input, "-") == 0 ? "<stdin>" : opts->input;
    b.budget = opts->mem_budget ? opts->mem_budget : (256u << 20);
    b.threads = opts->threads;
    if (b.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        b.threads = n < 1 ? 1 : n > AUTO_THREADS ? AUTO_THREADS : (uint32_t)n;
    }
    if (b.threads > MAX_THREADS) b.threads = MAX_THREADS;
    b.st.threads = b.threads;
    b.t0 = b.last_progress = now_s();
    b.created = (int64_t)time(NULL);
    int rc;

    b.vdim = opts->vec_dim;
    b.vmetric = ANN_COSINE;
    if (opts->vec_metric && ann_metric_parse(opts->vec_metric, &b.vmetric))
        return fn_seterr(eb, FN_EINVAL, "unknown vector metric \"%s\" (cosine, dot, l2)", opts->vec_metric);
    if (opts->vec_dim > ANN_MAX_DIM || (opts->ann_M && (opts->ann_M < 2 || opts->ann_M > ANN_MAX_M)))
        return fn_seterr(eb, FN_EINVAL, "dim at most %u, M 2..%u", ANN_MAX_DIM, ANN_MAX_M);
    b.codec = opts->codec ? idx_codec_find(opts->codec) : idx_codec_all()[0];
    if (!b.codec) return fn_seterr(eb, FN_EINVAL, "unknown codec \"%s\"", opts->codec);
    if ((rc = idx_analyzer_create(&opts->analyzer, &b.an, eb))) return rc;
    if (idx_analyzer_describe(b.an, b.andesc, sizeof b.andesc) >= sizeof b.andesc) {
        rc = fn_seterr(eb, FN_EINVAL, "analyzer description too long");
        goto fail_an;
    }

    int created_out = mkdir(opts->out_dir, 0755) == 0;
    if (!created_out && errno != EEXIST) {
        rc = fn_seterr(eb, -errno, "mkdir %s: %s", opts->out_dir, strerror(errno));
        goto fail_an;
    }
    {
        /* index.json is written last: with it the index is published and
         * never overwritten; without it whatever a build left there is an
         * unfinished (failed or killed) build, cleaned and rebuilt */
        char p[4200];
        struct stat st;
        snprintf(p, sizeof p, "%s/index.json", opts->out_dir);
        if (stat(p, &st) == 0) {
            rc = fn_seterr(eb, FN_EINVAL, "%s already holds a published index (index.json); "
                           "remove it or build into another directory", opts->out_dir);
            goto fail_an;
        }
        if ((rc = remove_build_output(opts->out_dir, eb))) goto fail_an;
    }
    snprintf(b.builddir, sizeof b.builddir, "%s/.build", opts->out_dir);
    if (mkdir(b.builddir, 0755) && errno != EEXIST) {
        rc = fn_seterr(eb, -errno, "mkdir %s: %s", b.builddir, strerror(errno));
        goto fail_dir;
    }
    if (!(b.sh = calloc(b.nsh, sizeof *b.sh))) { rc = -ENOMEM; goto fail_dir; }
    for (uint32_t i = 0; i < b.nsh; i++)
        if ((rc = shard_open(&b, i))) goto fail_shards;

    if ((rc = invert_input(&b))) goto fail_shards;
    if ((rc = spill_all(&b))) goto fail_shards;
    progress(&b, "merge", 0);
    if ((rc = merge_all(&b))) goto fail_shards;
    progress(&b, "finish", 0);
    for (uint32_t i = 0; i < b.nsh; i++)
        if ((rc = finish_shard(&b, i))) goto fail_shards;
    if (b.vdim) {
        progress(&b, "ann", 0);
        double t0 = now_s();
        for (uint32_t i = 0; i < b.nsh; i++)
            if ((rc = build_ann(&b, &b.sh[i]))) goto fail_shards;
        b.st.ann_seconds = now_s() - t0;
    }
    b.st.vec_dim = b.vdim;
    remove_builddir(&b);
    if ((rc = write_index_json(&b))) goto fail_shards;
    b.st.seconds = now_s() - b.t0;
    progress(&b, "done", 1);
    if (stats) *stats = b.st;
fail_shards:
    for (uint32_t i = 0; i < b.nsh; i++) shard_close(&b.sh[i]);
    free(b.sh);
    strtab_free(&b.vocab);
    free(b.vid_termid);
    free(b.tvbuf);
fail_dir:
    remove_builddir(&b);
    if (rc) {
        /* nothing half-built stays behind (shards closed above); keep the
         * build's error message, not a cleanup one */
        fn_errbuf ignore;
        remove_build_output(opts->out_dir, &ignore);
        if (created_out) rmdir(opts->out_dir);
    }
fail_an:
    idx_analyzer_destroy(b.an);
    if (rc == -ENOMEM && eb && !eb->msg[0]) fn_seterr(eb, rc, "out of memory");
    return rc;
}
