/* search.h - read side of a shard index: open it, search it, fetch documents.
 *
 * idx_reader_t: one opened shard directory (read-only LMDB environment,
 * MDB_RDONLY | MDB_NOTLS, so any thread can use it). Shared by all threads.
 *
 * idx_searcher_t: per-thread search state (its own analyzer, scratch arrays
 * and a read transaction per query). Not thread-safe; create one per worker
 * thread. Results live in the searcher and are valid until its next
 * idx_search() call or its destruction.
 *
 * Scoring (stage "selection"): BM25F over title and body with GLOBAL
 * statistics from the index metadata, so a document scores the same whatever
 * the number of shards:
 *
 *   tfn(t,d) = sum_f w_f * tf_f(t,d) / (1 - b_f + b_f * len_f(d) / avglen_f)
 *   idf(t)   = ln(1 + (N - gdf(t) + 0.5) / (gdf(t) + 0.5))
 *   score(d) = sum_t qw(t) * idf(t) * tfn * (k1 + 1) / (k1 + tfn)
 *
 * qw(t) = number of times t occurs in the analyzed query. Terms are summed in
 * query order (first occurrence), so floating point sums are identical on
 * every shard. Candidate selection is document-at-a-time OR over the query
 * terms with MaxScore pruning (plain BM25F only: static signals and interest
 * terms keep the exhaustive merge); either way the exact top k and the exact
 * count of matching documents. Ordering everywhere: score descending, then
 * key (xxh64 of the external id) ascending - identical across shard counts.
 */
#ifndef FUNNEL_INDEX_SEARCH_H
#define FUNNEL_INDEX_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"

struct fn_fnode;
typedef struct idx_reader idx_reader_t;       /* opaque, shared */
typedef struct idx_searcher idx_searcher_t;   /* opaque, per thread */

typedef struct idx_bm25_params {
    double k1;        /* 1.2 */
    double b[2];      /* per field: title, body */
    double w[2];      /* field weights: title, body */
} idx_bm25_params;

/* Defaults (tuned on cranfield/npl/cisi, see docs/evaluation.md). */
void idx_bm25_defaults(idx_bm25_params *p);

/* The selection score (the funnel's first stage, docs/ranking.md):
 *   BM25F(query terms)
 *   + w_popularity x ln(1 + popularity)
 *   + w_freshness  x 2^(-age / half_life)        (0 for a document without published_at)
 *   + w_user       x BM25F(the user's interest terms)
 * A document must match a query term; interest terms only add to its score.
 * Every shard of a cluster must use the same values. */
typedef struct idx_select_params {
    double w_popularity;
    double w_freshness;
    double half_life_days;      /* > 0 */
    double w_user;
} idx_select_params;

/* All weights 0 (plain BM25F), half life 30 days. */
void idx_select_defaults(idx_select_params *p);

typedef struct idx_index_info {
    uint32_t schema, shard, shards;
    uint64_t docs, docs_total, terms;
    double avglen[2];
    char analyzer[256];
    char codec[32];
    uint32_t vec_dim;       /* 0: the index has no vectors */
    uint32_t vec_metric;    /* ann_metric (index/ann/hnsw.h) */
    uint64_t vec_count;     /* this shard's documents with a vector */
    /* the content filter the documents were scored with at build time (meta
     * filter_model etc.): "" and NaN thresholds when none */
    char filter_model[256];
    double filter_threshold, filter_strict;
} idx_index_info;

/* Open a shard directory read-only. First the whole data.mdb is checked
 * against SHARDDIR/checksum (integrity.h; skipped with IDX_OPEN_QUICK), then
 * LMDB's metadata against the file size, then the meta entries and norms
 * against their checksums. Returns 0, -ENOENT, FN_ECORRUPT (damaged: the
 * message says where), FN_EFORMAT, FN_EVERSION (message in eb). */
#define IDX_OPEN_QUICK 1u
/* data.mdb was checked against its checksum by the caller just now
 * (idx_verify_file_paced): the rest of a full open (the ANN file whole) */
#define IDX_OPEN_CHECKED 2u
int idx_reader_open(const char *dir, idx_reader_t **out, fn_errbuf *eb);
int idx_reader_open_ex(const char *dir, unsigned flags, idx_reader_t **out, fn_errbuf *eb);
void idx_reader_close(idx_reader_t *r);
const idx_index_info *idx_reader_info(const idx_reader_t *r);
const char *idx_reader_dir(const idx_reader_t *r);
/* The shard that holds the document of this key (xxh64 of its id) by the
 * index's bucket map (buckets.h). */
uint32_t idx_reader_shard_of(const idx_reader_t *r, uint64_t key);

/* Map all of data.mdb into this process's page tables now, paced as pace
 * says (integrity.h idx_map_populate: why), so that a generation about to
 * be switched to serves from mapped pages. *mapped: the bytes done. 0,
 * FN_ECORRUPT (the file was cut short) or -errno with the message in eb
 * (-EINVAL: the kernel cannot, Linux < 5.14). */
struct idx_pace;
int idx_reader_populate(idx_reader_t *r, struct idx_pace *pace, uint64_t *mapped, fn_errbuf *eb);

/* Has data.mdb changed on disk (size or modification time) since it was
 * opened? A sealed index never changes, so any change means damage: 0 or
 * FN_ECORRUPT with the reason. Costs one fstat; idx_search calls it. */
int idx_reader_check(const idx_reader_t *r, fn_errbuf *eb);

/* Document doc's vertical attribute (its first value; attrs.h), "" when it
 * has none or doc is out of range. Owned by the reader. */
const char *idx_doc_vertical(const idx_reader_t *r, uint32_t doc);

/* The result page's signals of documents (format.h docsig), read from
 * LMDB per document (in place in the map: no copy at open, nothing held per
 * document). For docs[0, n): the content filter's score into scores[i] (NaN
 * when the index was built without a filter model) and the near-duplicate
 * signature into sigs + i * IDX_DUPSIG_BYTES (dupsig.h); either may be NULL.
 * One read transaction for all of them. Returns 0, FN_EINVAL (a document
 * out of range, naming it), a damage code (idx_is_damage: a checksum or
 * length that does not hold, "docsig of doc 7: checksum mismatch"), -ENOMEM. */
int idx_docs_signals(const idx_reader_t *r, const uint32_t *docs, size_t n, float *scores, uint8_t *sigs,
                     fn_errbuf *eb);
/* One document's: 0 and *out (NaN: no filter score), or as idx_docs_signals. */
int idx_doc_filter_score(const idx_reader_t *r, uint32_t doc, float *out, fn_errbuf *eb);
int idx_doc_dupsig(const idx_reader_t *r, uint32_t doc, uint8_t *out, fn_errbuf *eb);

typedef struct idx_term_explain {
    const char *term;       /* analyzed form */
    uint32_t qw;            /* occurrences in the query */
    uint64_t gdf;
    double idf;
    double contribution;    /* share of this hit's score */
    uint32_t tf[2];
} idx_term_explain;

typedef struct idx_hit {
    uint32_t doc;           /* shard-local doc number */
    uint64_t key;           /* xxh64(external id) */
    double score;           /* the selection score */
    const char *id;         /* stored fields: NUL-terminated, owned by the searcher;
                               NULL with idx_query.no_fields until idx_fetch_fields */
    const char *title;      /* "" if none */
    const char *url;        /* "" if none */
    idx_term_explain *terms;/* explain only, and only for the first explain_hits
                               hits: nterms entries (query terms); else NULL */
    uint32_t cand;          /* internal: where the selection recorded this hit's term
                               frequencies (features and explain reuse them) */
} idx_hit;

/* How the selection walks the postings. Every algorithm returns the same
 * top k, bit for bit (tests/bench/select_diff.sh); they differ in what they
 * may skip. */
typedef enum idx_algo {
    IDX_ALGO_AUTO = 0,      /* the fastest that applies (MaxScore) */
    IDX_ALGO_EXHAUSTIVE,    /* document-at-a-time OR over every posting: the reference */
    IDX_ALGO_MAXSCORE,      /* MaxScore: lists that cannot lift a document over the bar
                             * are only asked, never walked (plain BM25F over the query
                             * terms; other scorings run exhaustively); at the index's
                             * blockmax settings their block maxima are asked first
                             * (block-max MaxScore) */
    IDX_ALGO_BMW,           /* block-max WAND: whole posting blocks whose maxima (the
                             * index's skips) cannot reach the bar are jumped over unread
                             * (plain BM25F at the index's blockmax settings, matches not
                             * counted exactly; otherwise as MaxScore) */
    IDX_ALGO_COUNT
} idx_algo;

/* "auto", "exhaustive", "maxscore", "bmw"; NULL for another value. */
const char *idx_algo_name(idx_algo a);
/* The algorithm of that name, or -1. */
int idx_algo_parse(const char *name);

typedef struct idx_results {
    idx_hit *hits;          /* best first */
    size_t nhits;
    uint64_t matches;       /* documents matching at least one query term (all of them with
                             * all_terms); a lower bound unless matches_exact */
    int matches_exact;      /* matches is the exact count: always with exact_matches, and
                             * whenever the selection did not prune */
    idx_algo algo;          /* what ran: IDX_ALGO_EXHAUSTIVE, _MAXSCORE or _BMW */
    uint32_t pruned_lists;  /* query terms MaxScore stopped walking (0: none) */
    uint64_t skips;         /* block maxima that ruled documents out (BMW: jumps over
                             * blocks; MaxScore: candidates not looked up) */
    const char *const *terms; /* distinct analyzed query terms, query order */
    const uint64_t *term_gdf; /* parallel to terms: their global document frequencies (after a search) */
    size_t nterms;
    uint64_t time_us;
} idx_results;

typedef struct idx_query {
    const char *text;       /* raw query text */
    size_t k;               /* top-k to return (>= 1) */
    int explain;            /* fill idx_hit.terms ... */
    size_t explain_hits;    /* ... for this many hits at most (0 = all) */
    uint32_t max_terms;     /* refuse more distinct analyzed terms (0 = no limit) */
    uint64_t deadline_ns;   /* CLOCK_MONOTONIC ns; stop with -ETIMEDOUT after it (0 = none) */
    const idx_bm25_params *bm25; /* NULL = defaults */
    const idx_select_params *sel; /* NULL = idx_select_defaults */
    const char *user_terms; /* a user's interest terms (text, analyzed like the query); NULL = none */
    int64_t now;            /* request time, unix seconds (freshness); 0 = the clock */
    int no_fields;          /* selection only: leave id/title/url NULL (idx_fetch_fields later) */
    int all_terms;          /* AND: a document must hold every query term (default: any, OR) */
    int plain_text;         /* text is plain words: no query language (qmatch.h), every word a term */
    idx_algo algo;          /* IDX_ALGO_AUTO unless a test or benchmark asks */
    int exact_matches;      /* count every matching document (idx_results.matches) even where
                             * pruning could skip it: the lists it would jump over are then
                             * walked in full (slower). Default: a lower bound when pruned. */
    const float *vec;       /* a query vector (the index's vec_dim floats) for the vec_sim feature; NULL = none */
    uint32_t vdim;
    const struct fn_fnode *filter; /* only documents that pass this filter (query/filter.h, attrs.h);
                             * NULL = all. Evaluated inside the selection: a selective filter
                             * (a small part of the shard) drives it, any other is asked per
                             * document; pruning stays exact. */
    int no_record;          /* do not keep the candidates' term frequencies and position offsets
                             * for idx_features_compute (it then reads the postings again: same
                             * values, more time); for a search whose hits get no features */
    /* Documents to leave out whatever they score (live updates: ids deleted
     * or replaced since the build, shard/updates.h): asked with the key
     * (xxh64 of the id) of every document that would enter the top k, from
     * any thread; NULL = none. matches still counts the ones left out. */
    int (*exclude)(const void *ud, uint64_t key);
    const void *exclude_ud;
} idx_query;

int idx_searcher_create(idx_reader_t *r, idx_searcher_t **out, fn_errbuf *eb);
void idx_searcher_destroy(idx_searcher_t *s);

/* Run one query. Returns 0 and fills *res (owned by s, valid until the next
 * call), or an error: FN_EINVAL for k == 0; FN_ELIMIT for more than
 * max_terms terms ("query: ... (max-query-terms)" in eb); -ETIMEDOUT past
 * the deadline; a damage code (idx_is_damage() in integrity.h: a checksum
 * failed, the file changed or was truncated) with what was damaged in eb;
 * -ENOMEM. A query with no indexable terms succeeds with 0 hits. */
int idx_search(idx_searcher_t *s, const idx_query *q, idx_results *res, fn_errbuf *eb);

/* Stored fields (id, title, url) of hits[0, n) - hits of the searcher's
 * last idx_search, in any order - into those hits. Valid until the next
 * idx_search. Damage codes as idx_search. */
int idx_fetch_fields(idx_searcher_t *s, idx_hit *hits, size_t n, fn_errbuf *eb);

/* Stored fields of documents by number: the second phase of a two-phase
 * fetch (Shard/Fetch), after a search that returned doc, key and scores
 * only. hits[i].doc and .key must be set; a document out of range or whose
 * key is not this shard's (a number from another build) is FN_EINVAL naming
 * it. Fills id/title/url, valid until the searcher's next call. Damage
 * codes as idx_search. */
int idx_docs_fields(idx_searcher_t *s, idx_hit *hits, size_t n, fn_errbuf *eb);

/* Per-term explain (idx_hit.terms) of hits[0, n) - hits of the last
 * idx_search, in any order. Valid until the next idx_search. */
int idx_explain_hits(idx_searcher_t *s, idx_hit *hits, size_t n, fn_errbuf *eb);

/* The caller is done with the last results: scratch memory that a large
 * query grew (k = 10000, explain) is given back, so a burst of large
 * queries does not leave the process bigger. Optional; cheap. */
void idx_searcher_release(idx_searcher_t *s);

/* Fetch a document's stored JSON (the `source` db) by external id (for
 * `funnel` debugging and tests). *json is malloc'd; caller frees.
 * FN_ENOTFOUND if absent; damage codes as idx_search. */
int idx_reader_get_doc(idx_reader_t *r, const char *id, char **json, fn_errbuf *eb);

#endif
