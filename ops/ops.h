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

/* ---- commands (ops_index.c, ops_cluster.c, ops_search.c, ops_evalcmd.c) ---- */
int ops_cmd_index(int argc, char **argv);
int ops_cmd_cluster(int argc, char **argv);
int ops_cmd_search(int argc, char **argv);
int ops_cmd_eval(int argc, char **argv);
/* learning to rank (ops_rank.c, docs/ltr.md) */
int ops_cmd_train(int argc, char **argv);
int ops_cmd_predict(int argc, char **argv);
int ops_cmd_model(int argc, char **argv);
int ops_cmd_rank_eval(int argc, char **argv);

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
} ops_query;

/**
 * @brief Load "qid<TAB>text[<TAB>vector]" lines. Blank lines are skipped; a
 * line without a tab, an empty qid or empty text is an FN_EPARSE error
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

int ops_read_small(const char *path, char *buf, size_t cap);
/** Write content to path through path.tmp + rename. 0 or -errno. */
int ops_write_atomic(const char *path, const char *content);
/** Is "host:port" plausible (non-empty host, port 1..65535)? */
int ops_addr_valid(const char *addr);

/* ---- cluster files (ops_cluster.c) ---- */

/** Shard count from IDXDIR/index.json ("shards"). 0, FN_EFORMAT, -errno. */
int ops_index_shards(const char *idxdir, uint32_t *shards, fn_errbuf *eb);

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

#endif
