/* intent.h - query intent (issue 10): the verticals a query wants (web, news,
 * image, video, ...), as per-vertical probabilities from one-vs-rest
 * logistic regressions over hashed words. The scores are meant for the
 * blender and as query-level features of stage 2; nothing calls this yet but
 * `funnel intent` (ops/ops_intent.c), which also trains the models (with
 * rank/'s logistic trainer: query/ is built before rank/, so this library
 * only holds the model, its file and prediction).
 *
 * Features: the query's words (maximal runs of Unicode letters and digits,
 * NFKC case-folded, marks stripped: query/spell.c's split), each hashed with
 * XXH64 (seed INTENT_HASH_SEED) into one of `buckets` columns; a column is 1
 * when any word lands in it, else 0 (binary bag of words), plus a bias.
 *
 * Prediction: p_v = sigmoid(bias_v + sum of w_v over the query's columns),
 * then normalised to sum 1 over the verticals. A query without a word gets
 * the model's prior (the training labels' distribution) instead.
 *
 * A loaded model is immutable: intent_predict may run on it from many
 * threads at once.
 */
#ifndef FUNNEL_QUERY_INTENT_H
#define FUNNEL_QUERY_INTENT_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"

typedef struct intent_model intent_model_t;   /* opaque */

#define INTENT_HASH_SEED 0x1e7e47ULL
#define INTENT_MAX_VERTICALS 64     /* a model with more is FN_EFORMAT */
#define INTENT_MAX_BUCKETS (1u << 24)
#define INTENT_MAX_NAME 63          /* bytes of a vertical's name: [A-Za-z0-9_.-]+ */
#define INTENT_MAX_WORD 64          /* folded words longer than this are left out */
#define INTENT_MAX_COLS 256         /* a query's first 256 words make its features (training and prediction) */

/* ---- words and features (shared by training and prediction) ---- */

/**
 * @brief The next folded word of s[*pos..n) into out[cap] (cap >=
 * INTENT_MAX_WORD is enough): its length, or 0 when no word is left. Words
 * that fold to nothing or to more than cap bytes are skipped.
 * @param[in,out] pos byte offset, 0 to start
 */
size_t intent_next_word(const char *s, size_t n, size_t *pos, char *out, size_t cap);

/**
 * @brief The distinct feature columns of a text, ascending, into cols[cap].
 * @return the count (at most cap; further columns are dropped)
 */
size_t intent_features(const char *text, size_t len, uint32_t buckets, uint32_t *cols, size_t cap);

/* ---- building (the trainer) ---- */

/**
 * @brief A model of nv verticals over `buckets` columns. Names, prior[nv],
 * bias[nv] and weights[nv * buckets] (vertical-major) are copied; prior is
 * normalised to sum 1.
 * @return 0, FN_EINVAL (bad name, duplicate name, nv or buckets out of range,
 *         a non-finite number, a prior that does not sum above 0), -ENOMEM
 */
int intent_model_build(const char *const *names, size_t nv, uint32_t buckets, const double *prior,
                       const double *bias, const double *weights, intent_model_t **out,
                       fn_errbuf *eb);

/* ---- files ---- */

/**
 * @brief Write m to path (path.tmp, then rename). The file is text:
 *
 *   funnel-intent 1
 *   buckets 4096
 *   verticals 4
 *   vertical web prior 0.8 bias -1.25 weights 812     (then that many lines:)
 *   w 17 0.0421                                        (column, weight; absent = 0)
 *   ...
 *   checksum 0123456789abcdef                          (XXH64, seed 0, of every byte before this line)
 *
 * Numbers are printed with %.17g, so a loaded model predicts bit for bit as
 * the saved one.
 * @return 0, -errno ("PATH: reason" in eb)
 */
int intent_model_save(const intent_model_t *m, const char *path, fn_errbuf *eb);

/**
 * @brief Load a model saved by intent_model_save.
 * @return 0; -errno ("PATH: reason"); FN_ECORRUPT ("PATH: ..." checksum
 *         mismatch, or no checksum line: truncated); FN_EVERSION; FN_EFORMAT
 *         ("PATH:LINE: reason": anything else out of place). Never reads
 *         out of bounds on a damaged file.
 */
int intent_model_load(const char *path, intent_model_t **out, fn_errbuf *eb);

/**
 * @brief The same from a file's bytes in memory (a pushed model; data need
 * not be NUL-terminated); name stands for PATH in the messages.
 * @return as intent_model_load, without -errno
 */
int intent_model_parse(const char *data, size_t len, const char *name, intent_model_t **out, fn_errbuf *eb);

void intent_model_free(intent_model_t *m);

/* ---- using a model ---- */

/** @brief The vertical names, in score order; valid while m is. */
void intent_model_verticals(const intent_model_t *m, const char *const **names, size_t *n);
uint32_t intent_model_buckets(const intent_model_t *m);
/** @brief The prior (training label distribution), nv entries; valid while m is. */
const double *intent_model_prior(const intent_model_t *m);
/** @brief Vertical v's bias and weight of column c (for tests and tools). */
double intent_model_bias(const intent_model_t *m, size_t v);
double intent_model_weight(const intent_model_t *m, size_t v, uint32_t c);

/**
 * @brief Per-vertical probabilities of a query (summing to 1) into
 * scores[n]; n must be the model's vertical count.
 * @return the index of the most probable vertical (the first on ties), or
 *         FN_EINVAL when n is not the vertical count. Allocation-free; a
 *         query's words past the first INTENT_MAX_COLS are not looked at.
 */
int intent_predict(const intent_model_t *m, const char *text, size_t len, double *scores, size_t n);

#endif
