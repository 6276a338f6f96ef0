/* builder.h - offline index build: JSON Lines corpus -> IDXDIR with N shards.
 *
 * Streaming and bounded in memory: documents are read in batches of lines,
 * parsed and analyzed by opts.threads threads, then taken in input order,
 * partitioned by bucket (buckets.h: xxh64(id) % 4096, mapped to shards), inverted in memory per shard until
 * mem_budget is reached, then spilled as sorted runs to temporary files in
 * IDXDIR/.build/; the runs are merged into each shard's LMDB postings, and a
 * final pass merges the shards' vocabularies to write the global document
 * frequencies into every shard (format.h). Peak memory is about mem_budget
 * plus LMDB's page cache plus the batches in flight (2 x threads batches of
 * at most 256 lines / 256 KiB of input each, with their analysis: about 1 MiB
 * a batch), independent of the corpus size (the per-document norms arrays,
 * 16 bytes a document, are the only part that grows).
 *
 * A bad line (invalid JSON, missing/empty/non-string "id", duplicate id,
 * non-string title/body) is reported as "FILE:LINE: reason": with
 * on_error = IDX_ON_ERROR_SKIP it is counted in stats.skipped and reported
 * through the progress callback's warning hook; with IDX_ON_ERROR_FAIL the
 * build stops with FN_EPARSE / FN_EDUP and the message in eb, and IDXDIR is
 * left without index.json (never half-published).
 */
#ifndef FUNNEL_INDEX_BUILDER_H
#define FUNNEL_INDEX_BUILDER_H

#include <stddef.h>
#include <stdint.h>

#include "analyzer.h"
#include "fn_error.h"

enum idx_on_error { IDX_ON_ERROR_SKIP = 0, IDX_ON_ERROR_FAIL = 1 };

typedef struct idx_build_stats {
    uint64_t lines;         /* lines read */
    uint64_t docs;          /* documents indexed */
    uint64_t skipped;       /* bad lines skipped */
    uint64_t bytes_read;    /* of the input */
    uint64_t terms;         /* distinct terms, whole index */
    uint64_t postings;      /* total postings, whole index */
    uint64_t index_bytes;   /* size of all data.mdb files (and ANN graphs) at the end */
    uint64_t vectors;       /* documents with a vector */
    uint32_t vec_dim;       /* their dimension (0: none) */
    double ann_seconds;     /* building the ANN graphs */
    uint64_t filter_docs;   /* documents the content filter scored (0: no filter) */
    double filter_seconds;  /* their scoring, summed over the analyzing threads */
    double dupsig_seconds;  /* the near-duplicate signatures (every document), likewise */
    uint32_t threads;       /* analyzing threads, the main one included */
    double seconds;
} idx_build_stats;

typedef struct idx_build_opts {
    const char *input;              /* path of the JSON Lines corpus ("-" = stdin) */
    const char *out_dir;            /* IDXDIR; created; must not already hold an index */
    uint32_t shards;                /* 1..IDX_MAX_SHARDS */
    /* Which shard holds each bucket of documents (buckets.h); NULL = the
     * default map for `shards`. Its shard count must be `shards`. */
    const struct idx_bucket_map *buckets;
    enum idx_on_error on_error;
    idx_analyzer_opts analyzer;     /* zeroed = defaults */
    const char *codec;              /* NULL = the default (idx_codec_all()[0], "bp128") */
    size_t mem_budget;              /* bytes for in-memory postings; 0 = 256 MiB */
    /* Threads that parse and analyze the input, the calling one included
     * (which alone does the order-dependent work: numbering, LMDB, postings).
     * 0 = the number of online CPUs, at most 8; larger values are capped at 64.
     * The index is byte for byte the same for any value (but for meta
     * "created", hence "meta_sum" and the file checksum). */
    uint32_t threads;
    /* Vectors (the corpus field "embedding", format.h vectors): their
     * dimension (0 = the first document's), metric (IDX_VEC_* below, a
     * string for the CLI: "cosine" default, "dot", "l2") and the per-shard
     * HNSW graph's links per node (0 = 16) and build candidate list (0 = 200).
     * A document without "embedding" has no vector; a wrong dimension, a
     * non-number or a number that is no finite float32 (or, for cosine, an
     * all-zero vector) is a bad line. */
    uint32_t vec_dim;
    const char *vec_metric;
    uint32_t ann_M, ann_efc;
    /* Optional content filter (issue 11): every document's title and body
     * scored in the analyzing threads (so it must be thread-safe; a
     * probability in [0, 1], < 0 out of memory), stored in `docsig`; meta
     * records filter_model (a name), filter_threshold, filter_strict.
     * NULL: no scores (NaN stored). The near-duplicate signature is always
     * stored. */
    double (*filter_score)(void *filter_ud, const char *title, size_t tlen, const char *body, size_t blen,
                           const void *json);   /* json: the document (a jansson object), for its signals */
    void *filter_ud;
    const char *filter_model;
    double filter_threshold, filter_strict;
    /* Optional progress: called about every 0.5 s and at the end (final = 1). */
    void (*progress)(void *ud, const idx_build_stats *st, const char *phase, int final);
    /* Optional: called for every skipped bad line with "FILE:LINE: reason". */
    void (*warning)(void *ud, const char *msg);
    void *ud;
} idx_build_opts;

/* Build the index. Returns 0 and fills *stats (may be NULL), or an error code
 * with the message in eb. */
int idx_build(const idx_build_opts *opts, idx_build_stats *stats, fn_errbuf *eb);

#endif
