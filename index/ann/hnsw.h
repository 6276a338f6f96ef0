/* hnsw.h - approximate nearest neighbours over float32 vectors: an HNSW graph
 * (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor
 * search using Hierarchical Navigable Small World graphs", TPAMI 2018), its
 * one-file serialisation, and the exact search it is measured against.
 *
 * Objects and lifetimes
 *   ann_hnsw_t     the graph. Made by ann_hnsw_build() (heap memory) or
 *                  ann_hnsw_open() (a read-only shared mmap of a file written by
 *                  ann_hnsw_save(), zero-copy); freed by ann_hnsw_close().
 *                  Read-only after either, so any number of threads may search
 *                  one graph at once, each with its own scratch.
 *   the vectors    are NOT copied: the graph keeps the caller's pointer
 *                  (n x dim float32, row i = id i) and reads it at every search.
 *                  It must stay valid and unchanged until ann_hnsw_close().
 *                  A file saved with ANN_SAVE_VECTORS carries its own copy and
 *                  ann_hnsw_open() may then take vecs = NULL (they are read in
 *                  place from the map).
 *   ann_scratch_t  per-thread search state (visited tags with an epoch, two
 *                  heaps, a query copy). Not thread-safe: one per thread. Any
 *                  graph with the same n and dim can use it.
 *
 * Metrics and what a hit's score means
 *   ANN_L2      squared Euclidean distance; score = the squared distance,
 *               smaller is better.
 *   ANN_DOT     inner product (maximum inner product search); score = q.x,
 *               larger is better.
 *   ANN_COSINE  cosine similarity; score = q.x / (|q| |x|), larger is better.
 *               The caller's vectors are left as they are: the graph keeps
 *               1/|x| per vector (4 bytes each, in the file too) and the query
 *               is normalised into the scratch. A zero vector scores 0.
 * Hits are always returned best first (ties: lower id first).
 *
 * Errors follow fn_error.h: 0, FN_EINVAL (bad argument), FN_ECORRUPT (a file
 * that fails its checksum or its structural checks), FN_EFORMAT / FN_EVERSION
 * (not a graph file / another version), -errno, -ENOMEM. A message goes to eb
 * (may be NULL).
 *
 * Format, kernels and measured speed: docs/ann.md. Tests: tests/index/ann/.
 */
#ifndef FUNNEL_INDEX_ANN_HNSW_H
#define FUNNEL_INDEX_ANN_HNSW_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"

typedef struct ann_hnsw ann_hnsw_t;           /* opaque, shared, read-only once made */
typedef struct ann_scratch ann_scratch_t;     /* opaque, one per searching thread */

typedef enum ann_metric {
    ANN_L2 = 0,        /* squared Euclidean distance (smaller is better) */
    ANN_DOT = 1,       /* inner product (larger is better) */
    ANN_COSINE = 2,    /* cosine similarity (larger is better) */
} ann_metric;

/* Limits checked by the build and by ann_hnsw_open(). */
#define ANN_MAX_DIM   65536u           /* floats per vector */
#define ANN_MAX_M     1024u            /* links per node on levels >= 1 (2M on level 0) */
#define ANN_MAX_N     0xfffffffeu      /* ids are uint32 */
#define ANN_MAX_LEVEL 48u

typedef struct ann_hnsw_params {
    ann_metric metric;
    uint32_t M;                 /* links per node on levels >= 1, 2 <= M <= ANN_MAX_M (16);
                                 * level 0 keeps up to 2M */
    uint32_t ef_construction;   /* candidate list while building, >= 1 (200) */
    uint32_t threads;           /* build threads, >= 1 (1). 1 = deterministic */
    uint64_t seed;              /* the levels are drawn from it (42) */
} ann_hnsw_params;

/** Defaults: L2, M 16, ef_construction 200, 1 thread, seed 42. */
void ann_hnsw_params_default(ann_hnsw_params *p);

/** "l2", "dot", "cosine" (NULL-safe: "?" for an unknown value). */
const char *ann_metric_name(ann_metric m);
/** Parse "l2" | "dot" | "ip" | "cosine" | "angular". 0 or FN_EINVAL. */
int ann_metric_parse(const char *s, ann_metric *out);

/* ---- build, save, open, close ---- */

/**
 * @brief Build a graph over n vectors (row i = id i), inserting them with
 * p->threads threads (a per-node lock on each link list, as hnswlib does).
 * With threads == 1 the graph is a function of (vecs, p) only.
 * @param[in] vecs n x dim float32, borrowed: kept (not copied) by the graph
 *            and read by every search, valid until ann_hnsw_close(). Must not
 *            contain NaN or infinities (not checked).
 * @param[out] out the new graph (ann_hnsw_close)
 * @return 0; FN_EINVAL (n 0 or > ANN_MAX_N, dim 0 or > ANN_MAX_DIM, M < 2 or
 *         > ANN_MAX_M, ef_construction 0, threads 0, unknown metric, NULL
 *         vecs), -ENOMEM, -errno (thread creation)
 */
int ann_hnsw_build(const float *vecs, size_t n, size_t dim, const ann_hnsw_params *p,
                   ann_hnsw_t **out, fn_errbuf *eb);

#define ANN_SAVE_VECTORS (1u << 0)  /* also store the n x dim vectors in the file */

/**
 * @brief Write the graph to path (through path.tmp, fsync'd, then renamed).
 * @param[in] flags 0 or ANN_SAVE_VECTORS
 * @return 0, -errno (message names the file)
 */
int ann_hnsw_save(const ann_hnsw_t *h, const char *path, unsigned flags, fn_errbuf *eb);

#define ANN_OPEN_NOVERIFY (1u << 0) /* skip the whole-file checksum (structure is still checked) */

/**
 * @brief Map a file written by ann_hnsw_save() read-only and check it: the
 * xxh3-64 checksum of the whole file (unless ANN_OPEN_NOVERIFY), then every
 * offset, count, level and link, so no search of an opened graph can read out
 * of bounds. The graph's link arrays are used in place (zero-copy).
 * @param[in] vecs the n x dim vectors the graph was built over (borrowed, as in
 *            ann_hnsw_build), or NULL to use the copy in the file
 * @param[in] dim the caller's dimension: must equal the file's (0 = take the
 *            file's; then vecs must be NULL)
 * @return 0; FN_EFORMAT (not a graph file), FN_EVERSION, FN_ECORRUPT (checksum
 *         or structure; the message says which), FN_EINVAL (dim differs, or
 *         vecs NULL and the file has no vectors), -errno
 */
int ann_hnsw_open(const char *path, const float *vecs, size_t dim, unsigned flags,
                  ann_hnsw_t **out, fn_errbuf *eb);

/** Free a built graph or unmap an opened one. NULL-safe. */
void ann_hnsw_close(ann_hnsw_t *h);

/* ---- what a graph is ---- */

typedef struct ann_hnsw_info {
    size_t n, dim;
    ann_metric metric;
    uint32_t M, M0;             /* links per node: levels >= 1, level 0 */
    uint32_t max_level, entry;
    uint64_t upper_nodes;       /* nodes with a level >= 1 (counted per level) */
    uint64_t graph_bytes;       /* links + per-node arrays (+ 1/|x| for cosine), no vectors */
    uint64_t file_bytes;        /* an opened graph: its file; a built one: what save() writes without vectors */
    const char *kernel;         /* distance kernels in use: "avx2" or "scalar" */
} ann_hnsw_info;

void ann_hnsw_get_info(const ann_hnsw_t *h, ann_hnsw_info *info);

/** An opened graph's file mapping (*p, *len), for a SIGBUS guard around
 * searches (index/integrity.h: a file truncated after open); NULL/0 for a
 * built graph. */
void ann_hnsw_mapping(const ann_hnsw_t *h, const void **p, size_t *len);

/** The vectors the graph reads (the caller's, or the file's). */
const float *ann_hnsw_vectors(const ann_hnsw_t *h);

/* ---- search ---- */

typedef struct ann_hit {
    uint32_t id;
    float score;                /* see "Metrics" above */
} ann_hit;

/* Which ids a search may return. Both may be set (an id must pass both).
 * Disallowed nodes are still walked through, so a filter that allows few ids
 * makes the search visit much of the graph (use ann_exact for those). */
typedef struct ann_filter {
    const uint64_t *bits;       /* bit (id % 64) of bits[id / 64] set = allowed; NULL = all */
    int (*allow)(void *ud, uint32_t id);   /* nonzero = allowed; NULL = all */
    void *ud;
} ann_filter;

#define ANN_DEADLINE_HIT (1u << 0)  /* out flag: stopped at the deadline; hits are the best so far */

/**
 * @brief Create search scratch for graphs of n vectors of dim floats.
 * @return 0, FN_EINVAL (n or dim 0), -ENOMEM
 */
int ann_scratch_create(size_t n, size_t dim, ann_scratch_t **out);
void ann_scratch_destroy(ann_scratch_t *s);

/**
 * @brief The k approximate nearest neighbours of query, best first.
 *
 * Greedy descent through the upper levels, then a best-first search of level 0
 * keeping max(ef, k) candidates. Thread-safe for concurrent calls on one graph
 * with different scratch.
 * @param[in] s scratch made for this graph's n and dim (ann_scratch_create)
 * @param[in] query dim floats
 * @param[in] filter may be NULL
 * @param[in] deadline_ns CLOCK_MONOTONIC nanoseconds, 0 = none. Checked before
 *            level 0 and every few node expansions; when passed, the search
 *            stops, returns the best hits found so far (possibly fewer than
 *            k) and sets ANN_DEADLINE_HIT.
 * @param[out] hits room for k
 * @param[out] nhits how many were written (< k when the graph, or the filter,
 *             or the deadline leaves fewer)
 * @param[out] flags ANN_DEADLINE_HIT or 0 (may be NULL)
 * @return 0; FN_EINVAL (k 0, scratch for another n/dim, NULL pointers), -ENOMEM
 */
int ann_hnsw_search(const ann_hnsw_t *h, ann_scratch_t *s, const float *query, size_t k,
                    size_t ef, const ann_filter *filter, uint64_t deadline_ns, ann_hit *hits,
                    size_t *nhits, unsigned *flags);

/**
 * @brief Exact k nearest neighbours by brute force over all n vectors (the
 * "exact configuration", and the reference of the tests), scored exactly as
 * ann_hnsw_search scores (same kernels), best first, ties to the lower id.
 * @param[in] vecs n x dim float32
 * @param[out] hits room for k; *nhits = min(k, allowed ids)
 * @return 0, FN_EINVAL, -ENOMEM
 */
int ann_exact(const float *vecs, size_t n, size_t dim, ann_metric metric, const float *query,
              size_t k, const ann_filter *filter, ann_hit *hits, size_t *nhits);

/** ann_exact over a graph's own vectors (cosine uses its stored 1/|x|). */
int ann_hnsw_exact(const ann_hnsw_t *h, const float *query, size_t k, const ann_filter *filter,
                   ann_hit *hits, size_t *nhits);

/** CLOCK_MONOTONIC now, in nanoseconds (for deadlines). */
uint64_t ann_now_ns(void);

#endif
