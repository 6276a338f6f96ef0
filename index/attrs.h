/* attrs.h - document attributes (format.h `attrs`) and the filters over
 * them (query/filter.h), inside index/.
 *
 * Three string attributes are stored at index time, from the corpus's
 * `vertical`, `lang` (one string each) and `labels` (an array of strings):
 * per shard a sorted dictionary of the values and each document's value
 * codes. popularity and published_at are the norms arrays the selection
 * already keeps (format.h norms). Nothing is parsed from the stored JSON at
 * query time.
 *
 * Build side: idx_attrs_from_json (one line's values, in a worker thread)
 * and idx_attr_acc (a shard's values in document order, serialized at the
 * end). Read side: idx_attrs_load copies and checks them at open and builds
 * what filters use: per value its documents (ascending), and the documents
 * sorted by popularity and by published_at (range counts and range lists).
 * Query side: idx_filter_compile resolves a parsed filter against the shard
 * (values to codes, ids to document numbers, ranges to float / integer
 * bounds), estimates how many documents it can match and, when that is a
 * small part of the shard, lists them (the selection is then driven by the
 * list); otherwise the selection asks idx_filter_match per document.
 */
#ifndef FUNNEL_INDEX_ATTRS_H
#define FUNNEL_INDEX_ATTRS_H

#include <jansson.h>
#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "filter.h"
#include "fn_error.h"

enum { IDX_ATTR_VERTICAL, IDX_ATTR_LANG, IDX_ATTR_LABELS, IDX_NATTRS };

#define IDX_ATTR_MAX_VALUE_BYTES 511   /* = FN_FPARSE_MAX_VALUE_BYTES */
#define IDX_ATTR_MAX_LABELS 256        /* labels of one document */
#define IDX_ATTR_HDR 16                /* attrs value: sum, nvals, nentries, dict_bytes */

/* "vertical", "lang", "labels" */
extern const char *const idx_attr_names[IDX_NATTRS];

/* One document's values (pointers into the JSON object: valid while it is). */
typedef struct idx_attr_doc {
    uint32_t n[IDX_NATTRS];
    const char *v[IDX_NATTRS][IDX_ATTR_MAX_LABELS];
    uint32_t len[IDX_NATTRS][IDX_ATTR_MAX_LABELS];
} idx_attr_doc;

/* The attribute values of a corpus object: vertical and lang a string (or
 * missing, null or "": none), labels an array of strings (or missing or
 * null; "" entries and repeats dropped). NULL, or why the line is bad
 * ("\"labels\"[3] is not a string", "\"vertical\" is longer than 511
 * bytes", "\"labels\" has more than 256 entries"), possibly written in
 * why[whycap]. */
const char *idx_attrs_from_json(json_t *root, idx_attr_doc *out, char *why, size_t whycap);

/* ---- build ---- */

typedef struct idx_attr_acc {
    char *blob; size_t blen, bcap;                 /* the values, back to back */
    struct idx_attr_ent { uint64_t off; uint32_t len, doc; } *e; size_t n, cap;
} idx_attr_acc;

/* Add document doc's value (documents in ascending order; a document's
 * values distinct). 0 or -ENOMEM. */
int idx_attr_acc_add(idx_attr_acc *a, uint32_t doc, const char *v, size_t len);
/* The `attrs` value of attribute `name` for ndocs documents (format.h),
 * malloc'd into *val. 0 or -ENOMEM / FN_ELIMIT (over 2^32 - 1 values). */
int idx_attr_acc_value(idx_attr_acc *a, const char *name, uint32_t ndocs, uint8_t **val, size_t *vlen);
void idx_attr_acc_free(idx_attr_acc *a);

/* ---- read ---- */

typedef struct idx_attr {
    uint32_t nvals, nentries;
    char *blob;           /* the values, each NUL-terminated, ascending */
    uint32_t *val;        /* nvals: offset of value v in blob */
    uint32_t *vlen;       /* nvals: its length */
    uint32_t *off;        /* docs + 1: document d's codes are code[off[d] .. off[d+1]) (NULL: nentries 0) */
    uint32_t *code;       /* nentries, each document's ascending */
    uint32_t *voff;       /* nvals + 1: value v's documents are vdocs[voff[v] .. voff[v+1]) */
    uint32_t *vdocs;      /* nentries, each value's ascending */
    /* made at open, for filters asked per document: */
    uint32_t *one;        /* docs, when no document has two values: its code (UINT32_MAX: none), else NULL */
    uint64_t **vbits;     /* nvals: a bitmap of the documents of each frequent value (1/64 of the
                             documents or more; 64 values at most), NULL for the others */
} idx_attr;

/* A numeric attribute's documents in value order, cut into IDX_RANGE_BUCKETS
 * equal runs, with the bitmap of every prefix of whole runs: the documents
 * of a range are then two prefixes' difference (word by word) and at most
 * two partial runs (bit by bit), instead of a bit a document. */
#define IDX_RANGE_BUCKETS 64
typedef struct idx_rangeidx {
    uint32_t *perm;       /* n documents by value ascending (then doc) */
    uint32_t n;
    uint64_t *cum;        /* (IDX_RANGE_BUCKETS + 1) bitmaps of words each: cum[j] = the documents
                             perm[0 .. j * n / IDX_RANGE_BUCKETS); NULL for a small shard */
    size_t words;
} idx_rangeidx;

/* The bitmaps of the last selective filters a shard listed, by their
 * canonical text (fn_ftree_print): filters repeat across queries, and a
 * copy costs a fraction of listing again. IDX_FCACHE_N entries of docs/8
 * bytes, least recently used out; keys of at most IDX_FCACHE_KEY bytes
 * (longer filters, e.g. long id lists, are listed every time). Shared by
 * the shard's searchers under a mutex. */
#define IDX_FCACHE_N 16
#define IDX_FCACHE_KEY 4096
struct idx_fcache;

typedef struct idx_attrs {
    struct idx_fcache *fcache;
    idx_attr a[IDX_NATTRS];
    idx_rangeidx pop;     /* every document, by popularity */
    idx_rangeidx pub;     /* the documents with a published_at, by it */
} idx_attrs;

struct idx_reader;
/* Read, check and copy the attributes of an open shard (inside its guard and
 * a read transaction): sum, sizes, the dictionary strictly ascending with
 * values of 1..511 bytes, offsets ascending to nentries, each document's
 * codes strictly ascending and below nvals. Then the per-value lists and
 * the sorted orders. 0, FN_EFORMAT (missing), FN_ECORRUPT naming the value,
 * -ENOMEM. */
int idx_attrs_load(struct idx_reader *r, MDB_txn *txn, MDB_dbi dbi, fn_errbuf *eb);
void idx_attrs_free(idx_attrs *at);

/* Value v's code in attribute a, or -1. */
int64_t idx_attr_find(const idx_attr *a, const char *v, size_t len);

/* ---- filters ---- */

typedef struct idx_filter idx_filter;   /* compiled for one shard and one query; per searcher */

/* Compile root for the searcher's shard (inside its read transaction: ids
 * are looked up). *f is the searcher's (reused; freed with it). 0,
 * -ENOMEM, or damage of an ids record. */
struct idx_searcher;
int idx_filter_compile(struct idx_searcher *s, const fn_fnode *root, idx_filter **f, fn_errbuf *eb);
/* Does document d pass? */
int idx_filter_match(const idx_filter *f, uint32_t d);
/* An upper bound of the documents that pass (exact for one clause). */
uint64_t idx_filter_estimate(const idx_filter *f);
/* The documents that pass as a bitmap (bit d % 64 of word d / 64; owned by
 * f, valid until its next compile), when the filter is selective enough to
 * drive the selection (estimate <= docs / IDX_FILTER_DRIVE_DIV: a quarter,
 * measured on the 1M corpus): 1 with *bits; 0 when it is not (ask
 * idx_filter_match per document); -ENOMEM. The selection walks the bitmap
 * from where its lists stand, so a search that ends early never reads the
 * rest of it. */
#define IDX_FILTER_DRIVE_DIV 4
int idx_filter_drive(idx_filter *f, const uint64_t **bits);
/* The first set bit of bits[0, words) at or after from, or UINT32_MAX. */
static inline uint32_t idx_bits_next(const uint64_t *bits, size_t words, uint32_t from)
{
    size_t w = from >> 6;
    if (w >= words) return UINT32_MAX;
    uint64_t x = bits[w] & (~0ull << (from & 63));
    while (!x) {
        if (++w >= words) return UINT32_MAX;
        x = bits[w];
    }
    return (uint32_t)(w * 64 + (size_t)__builtin_ctzll(x));
}
/* Every passing document as a bitmap (bit d % 64 of word d / 64), owned by f.
 * Lists first when the filter is selective, else tests every document. */
int idx_filter_bits(idx_filter *f, const uint64_t **bits, size_t *npass);
void idx_filter_free(idx_filter *f);

#endif
