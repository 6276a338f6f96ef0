/* verify.h - offline check of a shard directory or of a whole index
 * (`funnel index verify`).
 *
 * Per shard, everything a reader could ever read:
 *   - data.mdb against SHARDDIR/checksum (idx_verify_file);
 *   - an IDX_OPEN_QUICK open (LMDB's page count against the file size, the
 *     meta checksum, the norms checksums);
 *   - every term record (checksum, termids 0..terms-1 in key order, found again
 *     by a lookup), every posting block of every term (checksum, shape, full
 *     blocks but the last, documents strictly ascending across the term's
 *     blocks, postings == df), postings entries == sum of blocks;
 *   - every stored record (docs, source, ids: checksums, entries == docs), each
 *     document's id looked up to the same document, norms keys[doc] ==
 *     xxh64(id), source (checksum, then its zstd frame: raw_len within the
 *     cap and the frame's content size, decompressing to exactly raw_len
 *     bytes) a JSON object whose "id" (title, url) is the record's;
 *   - meta: avglen == sumlen / docs_total.
 * A shard's check stops at its first damage. Whole index (IDXDIR with
 * index.json): every shard-NNN that index.json names, each checked as above,
 * then the global statistics: shard numbers, docs_total == sum of docs,
 * sumlen (and so avglen) identical everywhere and equal to the sums of the
 * shards' norms, and for every term (a k-way merge of the shards' term
 * cursors) gdf identical on every shard that has it and == the sum of its df.
 * Every read of a map runs inside an idx_guard: a file truncated while it is
 * checked is reported, not a SIGBUS.
 */
#ifndef FUNNEL_INDEX_VERIFY_H
#define FUNNEL_INDEX_VERIFY_H

#include <stdint.h>

#include "fn_error.h"

typedef struct idx_verify_report {
    int summary;             /* 0: one shard's line; 1: the whole index's */
    const char *name;        /* "shard-001" (the directory's name), or "index" */
    int rc;                  /* 0 ok; else the first problem's code (FN_ECORRUPT, FN_EFORMAT,
                                FN_EVERSION, LMDB's, -errno) */
    const char *problem;     /* the first problem, "" when ok */
    const char *line;        /* ready to print: "shard-000: ok (466 docs, 3012 terms, ...)",
                                "shard-001: DAMAGED: postings of term \"heat\", block 0: ...",
                                "index: ok (3 shards, 1400 docs, global statistics consistent)" */
    uint32_t shards, damaged;            /* summary: shards checked, of them not ok (damaged,
                                            or UNREADABLE: an older schema, no permission) */
    uint64_t docs, terms, postings, bytes;   /* shard: its own; summary: the index's */
} idx_verify_report;

typedef void (*idx_verify_cb)(void *ud, const idx_verify_report *rep);

/* Check PATH: an index directory (with index.json: every shard, then the
 * global statistics, then one summary report) or a single shard directory
 * (with data.mdb: one report). Reports go to cb (may be NULL) as they are
 * made. Returns 0 when everything checked out; FN_ECORRUPT when anything is
 * damaged or inconsistent (eb: the first problem); the code of a shard that
 * cannot be read at all when nothing is damaged (FN_EVERSION: an older
 * schema; -EACCES); and, without any report, when PATH is neither (-ENOENT,
 * FN_EFORMAT: unreadable index.json). */
int idx_verify(const char *path, idx_verify_cb cb, void *ud, fn_errbuf *eb);

#endif
