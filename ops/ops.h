/* ops.h - the funnel CLI: commands and the helpers they share.
 *
 * Every ops_cmd_* takes the argv of its sub-command (argv[0] = "index",
 * "cluster", ...) and returns the process exit status: OPS_EXIT_OK,
 * OPS_EXIT_FAIL or OPS_EXIT_USAGE. The helpers below follow fn_error.h.
 */
#ifndef FUNNEL_OPS_H
#define FUNNEL_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "fn_error.h"

enum { OPS_EXIT_OK = 0, OPS_EXIT_FAIL = 1, OPS_EXIT_USAGE = 2 };

/* The English word lists spelling leaves alone (Debian's wamerican, wbritish). */
#define OPS_SPELL_WORDLIST "/usr/share/dict/american-english"
#define OPS_SPELL_WORDLIST_GB "/usr/share/dict/british-english"
/* WordNet's files (Debian's wordnet-base), for synonym expansion. */
#define OPS_WORDNET_DIR "/usr/share/wordnet"

/* ---- commands (ops_index.c, ops_cluster.c, ops_search.c, ops_evalcmd.c) ---- */
int ops_cmd_index(int argc, char **argv);
/* `funnel index publish|rollback|generations` (ops_generation.c), dispatched by ops_cmd_index */
int ops_cmd_generation(int argc, char **argv);
/* RUN/shard-*.cmd: each --index becomes GEN/shard-NNN (the same shard), so
 * `funnel cluster restart` brings a shard back on the live generation. */
void ops_rewrite_shard_cmds(const char *run, const char *gen);
/* `funnel index merge --dir RUN`: live updates into a new generation, published (ops_cluster.c) */
int ops_index_merge(int argc, char **argv);

/* The quality gate (ops_generation.c; docs/operations.md "Quality gate"):
 * thresholds a candidate must meet against the live side. */
/* The deadline of an Admin/Generation STAGE (publish, add-shard, add-replica):
 * the shards check whole files, one replica at a time, paced and yielding
 * to a busy CPU - minutes for a large index (a 1M-document cold generation
 * of 3 shards: 66 s idle, 98-120 s at 70% load). */
#define OPS_STAGE_MS 3600000
typedef struct ops_gate_opts {
    double max_ndcg_drop;        /* NDCG@10 may fall by at most this (with qrels) */
    double min_overlap;          /* mean top-10 overlap (always without qrels; with them if given) */
    double min_docs_ratio;       /* candidate documents / live documents */
    double max_latency_ratio;    /* candidate p95 <= this x live p95 + latency_slack_ms */
    double latency_slack_ms;     /* (sub-millisecond p95s jitter by more than any ratio) */
    int overlap_given;
    int64_t deadline_ms;         /* per query */
    double qps;                  /* the shadow searches' pace (0 = unpaced) */
} ops_gate_opts;
struct rpc_client;
/* Run queries (queries.tsv) against the live side (generation live, "" =
 * the cluster's) and the candidate (generation cand, and/or the staged
 * stage-2 model), print the report; 0 passed, 1 refused, -1 could not run. */
int ops_gate_run(struct rpc_client *c, const char *live, const char *cand, int cand_model, const char *queries,
                 const char *qrels, const ops_gate_opts *go);
int ops_cmd_cluster(int argc, char **argv);
int ops_cmd_search(int argc, char **argv);
int ops_cmd_get(int argc, char **argv);      /* funnel get: documents by id (ops_get.c) */
int ops_cmd_doc(int argc, char **argv);      /* funnel doc put|delete: live updates (ops_doc.c) */
int ops_cmd_eval(int argc, char **argv);
/* learning to rank (ops_rank.c, docs/ltr.md) */
int ops_cmd_train(int argc, char **argv);
int ops_cmd_predict(int argc, char **argv);
int ops_cmd_model(int argc, char **argv);
int ops_cmd_rank_eval(int argc, char **argv);
/* engagement logs (ops_engage.c, docs/engagement.md) */
int ops_cmd_clicks(int argc, char **argv);
int ops_cmd_features(int argc, char **argv);
int ops_cmd_cv(int argc, char **argv);
/* `funnel model push` (ops_funnel.c), dispatched by ops_cmd_model. */
int ops_model_push_cmd(int argc, char **argv);
/* The two steps `funnel cv` repeats (ops_funnel.c). desc may be NULL. */
int ops_features_write(const char *server, const char *queries, const char *qrels, int stage,
                       uint32_t window, int64_t deadline_ms, const char *out_path, fn_errbuf *eb);
int ops_model_push(const char *server, int stage, const char *path, int64_t deadline_ms, char *desc,
                   size_t cap, fn_errbuf *eb);
int ops_cmd_traindata(int argc, char **argv);
int ops_cmd_experiment(int argc, char **argv);   /* funnel experiment report (ops_experiment.c) */
/* vector search (ops_ann.c, docs/ann.md): `funnel ann bench` */
int ops_cmd_ann(int argc, char **argv);
/* the text encoder (ops_embed.c, docs/cli.md): `funnel embed train|apply` */
int ops_cmd_embed(int argc, char **argv);
/* the spelling corrector (ops_spell.c, query/spell.h): `funnel spell build|check` */
int ops_cmd_spell(int argc, char **argv);
/* the query-intent classifier (ops_intent.c, query/intent.h): `funnel intent train|predict|eval` */
int ops_cmd_intent(int argc, char **argv);
/* the content filter (ops_cfilter.c, rank/cfilter.h): `funnel filter train|eval` */
int ops_cmd_filter(int argc, char **argv);
/* load (ops_bench.c, docs/cli.md): `funnel bench`, open or closed loop, latency histogram */
int ops_cmd_bench(int argc, char **argv);
/* the capacity planner (ops_plan.c, docs/cli.md): `funnel plan --docs N --qps Q --p99-ms P` */
int ops_cmd_plan(int argc, char **argv);

/* ---- query intent: training (ops_intent.c) ---- */

struct intent_model;            /* query/intent.h's intent_model_t */

typedef struct ops_intent_train_opts {
    uint32_t buckets;           /* hash buckets: 2^18 */
    double C;                   /* the logistic regressions' inverse L2 strength: 1 */
    unsigned max_iter;          /* Newton steps per vertical: 200 */
} ops_intent_train_opts;

void ops_intent_train_defaults(ops_intent_train_opts *o);

/**
 * @brief Train the intent classifier: one L2 logistic regression per
 * vertical (rank_train_logistic), vertical v against the rest, on the hashed
 * words of texts[n] (intent_features); the prior is the labels' distribution.
 * @param[in] labels n indices into verticals[nv]
 * @param[out] out a new model (intent_model_free)
 * @return 0, FN_EINVAL (no rows, a label out of range, bad names),
 *         FN_ELIMIT (the dense training matrix, n x used buckets floats,
 *         would pass 1 GiB), -ENOMEM
 */
int ops_intent_train(const char *const *texts, const int *labels, size_t n, const char *const *verticals,
                     size_t nv, const ops_intent_train_opts *o, struct intent_model **out, fn_errbuf *eb);

/* ---- locating the daemons (ops_util.c) ---- */

/**
 * @brief Find a daemon binary the way `funnel cluster up` does.
 *
 * Order: $env_var if set and non-empty (taken as is); self_dir/../subdir/name
 * (build tree); self_dir/name (installed next to funnel); each $PATH entry.
 * @param[in] self_dir directory of the running funnel binary (may be NULL)
 * @param[out] out the path found, NUL-terminated, at most cap bytes
 * @return 0, FN_ENOTFOUND (message in eb) or FN_ELIMIT (path too long)
 */
int ops_find_daemon(const char *self_dir, const char *subdir, const char *name,
                    const char *env_var, char *out, size_t cap, fn_errbuf *eb);

/** Directory of /proc/self/exe into out. Returns 0 or -errno. */
int ops_self_dir(char *out, size_t cap);

/**
 * @brief Split a command prefix ("valgrind --leak-check=full") on blanks.
 * @param[out] words a malloc'd NULL-terminated array of malloc'd strings;
 *             free with ops_words_free. *n receives the count (may be 0).
 * @return 0 or -ENOMEM
 */
int ops_words_split(const char *s, char ***words, size_t *n);
void ops_words_free(char **words);

/* ---- queries.tsv (ops_util.c) ---- */

typedef struct ops_query {
    char *qid;
    char *text;
    float *vec;         /* the optional third column: a query vector (NULL: none) */
    size_t nvec;
} ops_query;

/**
 * @brief Parse a vector: numbers separated by spaces, tabs or commas, each a
 * finite float32; at most 65536 of them.
 * @param[out] out malloc'd (caller frees), *n numbers
 * @return 0, FN_EPARSE (eb names the bad number and its position), -ENOMEM
 */
int ops_parse_vector(const char *s, float **out, size_t *n, fn_errbuf *eb);

/**
 * @brief Load "qid<TAB>text[<TAB>vector]" lines. Blank lines are skipped; a
 * line without a tab, an empty qid or empty text (without a vector), or a
 * vector that does not parse (ops_parse_vector) is an FN_EPARSE error
 * reported as "FILE:LINE: reason".
 * @param[out] out malloc'd array owned by the caller (ops_queries_free)
 * @return 0, FN_EPARSE, -errno
 */
int ops_queries_load(const char *path, ops_query **out, size_t *n, fn_errbuf *eb);
void ops_queries_free(ops_query *q, size_t n);

/* ---- small files (ops_util.c) ---- */

/** Read a small text file, trailing whitespace trimmed. 0, -errno or FN_ELIMIT. */
/* mkdir -p dir. 0 or -errno. */
int ops_mkdirs(const char *dir);
/* Remove a directory of files only, of our own making (a temporary one, a
 * RUNDIR store); what cannot be removed is left. */
void ops_rm_flat_dir(const char *dir);

int ops_read_small(const char *path, char *buf, size_t cap);
/* Sleep ms milliseconds (nothing for ms <= 0; a signal may end it early). */
void ops_sleep_ms(double ms);
/* The client side of TLS and the admin token for every command (ops_util.c):
 * takes --tls-ca F, --tls-cert F, --tls-key F and --token-file F (also
 * "--flag=F") out of argv wherever they are (up to a "--"), falls back to
 * FUNNEL_TLS_CA, FUNNEL_TLS_CERT, FUNNEL_TLS_KEY, FUNNEL_ADMIN_TOKEN_FILE,
 * and configures the rpc layer (rpc_security.h). 0, or an error in eb. */
int ops_client_security(int *argc, char **argv, fn_errbuf *eb);
/** Write content to path through path.tmp + rename. 0 or -errno. */
int ops_write_atomic(const char *path, const char *content);
/** Is "host:port" plausible (non-empty host, port 1..65535)? */
int ops_addr_valid(const char *addr);

/* ---- cluster files (ops_cluster.c) ---- */

/** Shard count from IDXDIR/index.json ("shards"). 0, FN_EFORMAT, -errno. */
int ops_index_shards(const char *idxdir, uint32_t *shards, fn_errbuf *eb);
/** The bucket map of IDXDIR (index.json "buckets", buckets.h). 0, -ENOENT, FN_EFORMAT, FN_EPARSE. */
struct idx_bucket_map;
int ops_bucket_map_of(const char *idxdir, struct idx_bucket_map *m, fn_errbuf *eb);

/** Write "shard N ADDR" lines (one per shard, N from 0) atomically. 0 or -errno. */
int ops_topology_write(const char *path, const char *const *addrs, uint32_t n);

/**
 * @brief Is pid a live process of ours? Alive = kill(pid, 0) succeeds and it
 * is not a zombie; ours = its command line mentions `marker` (the addr-file
 * path it was started with), which guards against recycled pids. marker may
 * be NULL to skip that check.
 */
int ops_pid_alive(pid_t pid, const char *marker);

/* ---- protobuf -> JSON (ops_json.c) ---- */

/**
 * @brief Convert any protobuf-c message to a JSON object, field names as in
 * the .proto, every field present (proto3 defaults included), enums by
 * name, bytes as lowercase hex, 64-bit integers as JSON integers.
 * @return a new reference (json_decref), NULL on out-of-memory
 */
json_t *ops_pb_to_json(const ProtobufCMessage *m);

/* obj["fields"], a JSON array of StoredField objects {name, json} as
 * ops_pb_to_json renders them, becomes one object {name: value} with each
 * value parsed (a value that does not parse stays its text). Nothing when
 * obj has no "fields" array. 0, or -1 out of memory. */
int ops_json_stored_fields(json_t *obj);

/* Split a comma list ("title,url") into *names (*n of them; malloc'd, one
 * block: free(*names)). Empty pieces are kept (the server names them). 0,
 * or -1 out of memory. */
int ops_split_fields(const char *list, char ***names, size_t *n);

/* ---- engagement: simulated users and training data from impressions and
 * clicks (ops_engage.c; formats, models and label rules in docs/engagement.md) ---- */

/* Positions in impressions and clicks are 1..OPS_ENGAGE_MAX_POSITION. */
#define OPS_ENGAGE_MAX_POSITION 1000000u

/* How bad impression/click lines are handled. With skip_bad 0 the first one
 * is the error (FN_EPARSE, "FILE:LINE: reason" in eb); with skip_bad 1 each
 * is passed to warn ("FILE:LINE: reason", may be NULL), counted in skipped
 * and left out. */
typedef void (*ops_engage_warn_fn)(void *ud, const char *msg);
typedef struct ops_engage_input {
    int skip_bad;
    ops_engage_warn_fn warn;
    void *ud;
    size_t skipped;             /* out: bad lines left out */
} ops_engage_input;

/* -- simulated users -- */

#define OPS_SIM_LEVELS 5        /* relevance levels 0..4 (grades are mapped onto them) */
enum { OPS_SIM_CASCADE = 0, OPS_SIM_PBM = 1 };

typedef struct ops_sim_params {
    int model;                              /* OPS_SIM_CASCADE or OPS_SIM_PBM */
    double click[OPS_SIM_LEVELS];           /* P(click | examined, level) */
    double stop[OPS_SIM_LEVELS];            /* cascade: P(stop | clicked, level) */
    double eta;                             /* pbm: P(examine position p) = p^-eta */
    double dwell_median[OPS_SIM_LEVELS];    /* seconds; dwell = median * exp(sigma * N(0,1)) */
    double dwell_sigma;
    double scan_s;                          /* seconds per result read (click times only) */
} ops_sim_params;

/** The documented defaults (docs/engagement.md), model cascade. */
void ops_sim_defaults(ops_sim_params *p);

/** The seed of one simulated session: a function of (seed, request id) only. */
uint64_t ops_sim_seed(uint64_t seed, const char *request_id);

/** Relevance level 0..4 of a qrels grade when the largest grade is max_grade
 * (>= 1): round(4 * grade / max_grade), grade clamped to [0, max_grade]. */
unsigned ops_sim_level(long grade, long max_grade);

typedef struct ops_sim_click {
    size_t hit;                 /* index on the page (0 = top) */
    double dwell;               /* seconds, rounded to 0.1 */
    double offset_s;            /* click time - impression time */
} ops_sim_click;

/**
 * @brief One simulated user on one page of n hits, top first: levels[i] is
 * hit i's level (0..4), positions[i] its position. Deterministic in seed.
 * @param[out] clicks room for n; filled in click order
 * @return the number of clicks
 */
size_t ops_sim_session(const ops_sim_params *p, const unsigned char *levels,
                       const uint32_t *positions, size_t n, uint64_t seed, ops_sim_click *clicks);

/* Graded judgments: TREC qrels "qid iter docid grade" (eval.h's format). */
typedef struct ops_grades ops_grades;
/** 0, -errno, FN_EPARSE ("FILE:LINE: reason" in eb) or -ENOMEM. */
int ops_grades_load(const char *path, ops_grades **out, fn_errbuf *eb);
/** The grade of (qid, docid); 0 when not judged. qid is qidlen bytes. */
long ops_grades_get(const ops_grades *g, const char *qid, size_t qidlen, const char *docid);
/** Is any document of qid judged? */
int ops_grades_has_query(const ops_grades *g, const char *qid, size_t qidlen);
/** The largest grade in the file (at least 1). */
long ops_grades_max(const ops_grades *g);
void ops_grades_free(ops_grades *g);

typedef struct ops_sim_stats {
    size_t impressions;         /* impression lines simulated */
    size_t sessions;
    size_t clicks;
    size_t silent;              /* sessions without a click */
    size_t unjudged;            /* impressions of a query without judgments */
} ops_sim_stats;

/**
 * @brief Simulate `sessions` users on every impression of the files: click
 * lines to clicks_out; with sessions > 1 the impressions, once per session
 * with request id "ID/k" (k = 1..sessions), to impressions_out (required
 * then; with sessions == 1 it may be NULL, else gets the lines unchanged).
 * max_grade 0 = ops_grades_max(g). A repeated request id is a bad line.
 * @return 0, FN_EPARSE (bad line, see ops_engage_input), -errno, -ENOMEM
 */
int ops_clicks_simulate(const ops_sim_params *p, const ops_grades *g, long max_grade,
                        uint64_t seed, unsigned sessions, const char *const *impressions,
                        size_t nimpressions, FILE *clicks_out, FILE *impressions_out,
                        ops_engage_input *in, ops_sim_stats *st, fn_errbuf *eb);

/* -- training data -- */

typedef struct ops_engage_log ops_engage_log;     /* impressions joined with clicks */
int ops_engage_log_new(ops_engage_log **out);
void ops_engage_log_free(ops_engage_log *lg);
/** Add an impressions file (JSON Lines). 0, FN_EPARSE, -errno, -ENOMEM. */
int ops_engage_load_impressions(ops_engage_log *lg, const char *path, ops_engage_input *in,
                                fn_errbuf *eb);
/** Add a clicks file; every click must join an impression loaded before. */
int ops_engage_load_clicks(ops_engage_log *lg, const char *path, ops_engage_input *in,
                           fn_errbuf *eb);

enum { OPS_TD_POINTWISE = 0, OPS_TD_PAIRWISE = 1 };
enum { OPS_TD_PROP_DATA = 0, OPS_TD_PROP_PBM = 1, OPS_TD_PROP_NONE = 2 };

typedef struct ops_traindata_opts {
    int mode;                   /* OPS_TD_POINTWISE or OPS_TD_PAIRWISE */
    double min_dwell;           /* a click with dwell >= this is satisfied (10 s) */
    int propensity;             /* pointwise: OPS_TD_PROP_* (data) */
    double eta;                 /* propensity pbm: p^-eta (1) */
    double clip;                /* propensities below this count as this (0.1) */
    double smoothing;           /* pseudo-examinations without a satisfied click (1) */
    double cuts[4];             /* label = number of cuts <= rate */
} ops_traindata_opts;

void ops_traindata_defaults(ops_traindata_opts *o);

typedef struct ops_traindata_stats {
    size_t impressions, clicks, clicks_no_dwell, duplicate_clicks;
    size_t queries, rows;
    size_t features;            /* columns named in the header */
    size_t feature_lists;       /* distinct "features" lists in the impressions */
    size_t no_vector;           /* (query, doc) pairs left out: no feature vector */
    size_t labels[16];          /* rows by label (the last counts 15 and above) */
    size_t prefs, pairs_kept, pairs_tied, pairs_cycle;   /* pairwise */
    double propensity[10];      /* the propensities of positions 1..10 used */
} ops_traindata_stats;

/**
 * @brief Write SVMlight/LETOR rows from lg to out: "# features: ..." first
 * (the union of the impressions' names, up to the last column a row has),
 * "# qid N = STRING" for the non-numeric query ids that have rows, then
 * "LABEL qid:N i:v ... # DOCID" rows grouped by query, queries by N.
 * @return 0, FN_EINVAL (no feature vectors; message in eb), -EIO, -ENOMEM
 */
int ops_traindata_write(const ops_engage_log *lg, const ops_traindata_opts *o, FILE *out,
                        ops_traindata_stats *st, fn_errbuf *eb);

#endif
