/* cfilter.h - content filter (issue 11): a binary text classifier (spam and
 * other harmful content) as L2 logistic regression (rank_train_logistic)
 * over hashed sparse features of a document's title and body.
 *
 * Features (cfilter_features), each hashed with XXH64 (seed
 * CFILTER_HASH_SEED, a namespace byte first) into one of `buckets` columns:
 *   - words: maximal runs of ASCII letters and digits and of bytes >= 0x80
 *     (UTF-8 kept whole), ASCII case-folded, 1..CFILTER_MAX_WORD bytes;
 *     title and body words in separate namespaces;
 *   - word bigrams of consecutive words (title and body namespaces);
 *   - URL hosts ("http://", "https://", "www." in the text) as the host
 *     and its last two labels (the domain), e-mail domains (after '@') as
 *     domain;
 *   these token features are binary, then scaled together to unit L2 norm
 *   (each 1/sqrt(their distinct count));
 *   - document signals (cfilter_signals): numeric top-level fields of the
 *     document that say something the text does not, e.g. the share of
 *     users who reported it, each log(1 + max(x, 0)) when the document has
 *     the field;
 *   - counts, as log(1 + count): lexicon hits (CFILTER_LEXICON below: money,
 *     urgency, marketing words), '$' signs, '!' marks, URLs, e-mail
 *     addresses, ALL-CAPS words of 3+ letters; and lengths as log(1 + n):
 *     title bytes, body bytes, body words.
 * Work per document is bounded: the first CFILTER_MAX_BODY bytes of the
 * body, the first CFILTER_MAX_TITLE of the title, at most CFILTER_MAX_FEATS
 * features.
 *
 * Score: p = sigmoid(bias + sum of w[col] * value); a document is flagged
 * when p >= the model's threshold (chosen at training for a target
 * precision on a validation part of the training data).
 *
 * A loaded model is immutable: cfilter_score may run on it from many threads.
 */
#ifndef FUNNEL_RANK_CFILTER_H
#define FUNNEL_RANK_CFILTER_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"

#define CFILTER_HASH_SEED 0xcf11e7ULL
#define CFILTER_MAX_BUCKETS (1u << 24)
#define CFILTER_MAX_BODY 65536u     /* body bytes looked at */
#define CFILTER_MAX_TITLE 1024u     /* title bytes looked at */
#define CFILTER_MAX_WORD 40         /* longer words are left out */
#define CFILTER_MAX_FEATS 32768     /* features per document */

/* The lexicon: words (whole, case-folded) whose hits are counted together. */
#define CFILTER_LEXICON                                                                          \
    "free", "click", "unsubscribe", "remove", "viagra", "winner", "win", "guarantee",            \
    "guaranteed", "money", "cash", "credit", "offer", "order", "buy", "cheap", "discount",        \
    "save", "income", "earn", "million", "dollars", "investment", "loan", "mortgage", "debt",     \
    "urgent", "act", "now", "limited", "today", "instant", "bonus", "prize", "risk", "opportunity", \
    "casino", "pills", "pharmacy", "weight", "rates", "marketing", "subscribe", "deal", "sex"

typedef struct cfilter_feat {
    uint32_t col;
    float val;
} cfilter_feat;

typedef struct cfilter_model cfilter_model_t;   /* opaque */

/* Document signals: the numeric fields read (by name, from the document's
 * JSON: `funnel filter train|eval` and `funnel index build --filter-model`),
 * in this order. */
#define CFILTER_SIGNALS "report_rate", "reports"
#define CFILTER_NSIGNALS 2
typedef struct cfilter_signals {
    unsigned mask;                 /* bit i: the document has signal i */
    double v[CFILTER_NSIGNALS];
} cfilter_signals;

/** The signals' names (CFILTER_SIGNALS), CFILTER_NSIGNALS of them. */
const char *const *cfilter_signal_names(void);
/** A document's signals from its JSON object (a jansson json_t *; other
 * values and non-numbers: none). */
void cfilter_signals_json(const void *json, cfilter_signals *out);

/**
 * @brief The features of one document, ascending by column, duplicates
 * merged (the larger value kept), into out[cap].
 * @return the count (at most cap)
 */
size_t cfilter_features(const char *title, size_t tlen, const char *body, size_t blen, uint32_t buckets,
                        cfilter_feat *out, size_t cap);
/** The same with the document's signals (NULL or mask 0 = none). */
size_t cfilter_features_sig(const char *title, size_t tlen, const char *body, size_t blen,
                            const cfilter_signals *sig, uint32_t buckets, cfilter_feat *out, size_t cap);

/* ---- the model ---- */

/**
 * @brief A model over `buckets` columns: n (column, weight) pairs (other
 * columns 0), the bias and the threshold are copied.
 * @return 0, FN_EINVAL (buckets out of range, a column >= buckets, a
 *         non-finite number, threshold outside [0, 1]), -ENOMEM
 */
int cfilter_model_build(uint32_t buckets, double bias, double threshold, const uint32_t *cols,
                        const double *w, size_t n, cfilter_model_t **out, fn_errbuf *eb);
void cfilter_model_free(cfilter_model_t *m);
uint32_t cfilter_model_buckets(const cfilter_model_t *m);
double cfilter_model_threshold(const cfilter_model_t *m);
/** The strict threshold (<= threshold): chosen at training for a target
 * recall (cfilter_train_opts.strict_recall); = threshold when the model file
 * has none. */
double cfilter_model_strict(const cfilter_model_t *m);
/** Set the strict threshold before the model is shared. FN_EINVAL unless
 * 0 <= strict <= threshold. */
int cfilter_model_set_strict(cfilter_model_t *m, double strict);
double cfilter_model_bias(const cfilter_model_t *m);
size_t cfilter_model_nweights(const cfilter_model_t *m);   /* nonzero weights */

/** The probability of the positive class from features (cfilter_features). */
double cfilter_score_feats(const cfilter_model_t *m, const cfilter_feat *f, size_t n);
/** The probability of the positive class of a document. -1 out of memory. */
double cfilter_score(const cfilter_model_t *m, const char *title, size_t tlen, const char *body, size_t blen);
/** The same with the document's signals (NULL = none). */
double cfilter_score_sig(const cfilter_model_t *m, const char *title, size_t tlen, const char *body, size_t blen,
                         const cfilter_signals *sig);

/**
 * @brief Write m to path (path.tmp, then rename). Text:
 *
 *   funnel-cfilter 1
 *   buckets 262144
 *   bias -1.25
 *   threshold 0.83
 *   strict 0.41            (optional: absent in older files, then = threshold)
 *   weights 812            (then that many "w COLUMN WEIGHT" lines, columns ascending)
 *   checksum 0123456789abcdef     (XXH64, seed 0, of every byte before this line)
 *
 * Numbers are %.17g: a loaded model scores bit for bit as the saved one.
 * @return 0 or -errno (message in eb)
 */
int cfilter_model_save(const cfilter_model_t *m, const char *path, fn_errbuf *eb);

/**
 * @brief Load a model; the checksum is checked before anything is parsed.
 * @return 0, FN_ECORRUPT (truncated or damaged, message names the file),
 *         FN_EFORMAT (checksum fine but not a valid model), -errno
 */
int cfilter_model_load(const char *path, cfilter_model_t **out, fn_errbuf *eb);

/* ---- training ---- */

/** Is the document in the `share` part of the split? A fixed function of
 * (id, seed, salt): XXH64 of the id seeded with seed ^ salt, as a fraction. */
int cfilter_split(const char *id, size_t idlen, uint64_t seed, uint64_t salt, double share);

#define CFILTER_SALT_HOLDOUT 0x401d077ULL
#define CFILTER_SALT_VALID 0x7a11dULL

typedef struct cfilter_doc {
    const char *id, *title, *body;
    size_t idlen, tlen, blen;
    int positive;               /* label: 1 positive, 0 negative */
    cfilter_signals sig;        /* zero: none */
} cfilter_doc;

typedef struct cfilter_train_opts {
    uint32_t buckets;           /* 2^18 */
    double C;                   /* inverse L2 strength (scikit-learn's C): 100 (the token
                                   features are unit-normalised, so the data term is small) */
    double target_precision;    /* 0.98 */
    double strict_recall;       /* the strict threshold's out-of-fold recall: 0.995 */
    double valid_share;         /* unused since out-of-fold thresholds (kept for callers that set it) */
    uint64_t seed;              /* the validation split's seed: 1 */
    size_t max_dense;           /* bytes of the dense training matrix: 256 MiB; the columns
                                   used by the fewest documents are dropped beyond it */
} cfilter_train_opts;

void cfilter_train_defaults(cfilter_train_opts *o);

typedef struct cfilter_train_report {
    size_t train_rows, train_pos, valid_rows, valid_pos;
    size_t used_cols, kept_cols;        /* buckets used; columns kept in the dense matrix */
    double valid_precision, valid_recall;   /* at the threshold */
    double strict_precision, strict_recall; /* at the strict threshold */
    int target_met;                     /* did any threshold reach the target on validation? */
    double seconds;                     /* features + training + threshold */
} cfilter_train_report;

#define CFILTER_FOLDS 5

/**
 * @brief Train on docs[n] (the caller has set the held-out docs aside). The
 * threshold is picked on out-of-fold scores: the docs fall in CFILTER_FOLDS
 * folds (xxh64 of the id, seed ^ CFILTER_SALT_VALID), each scored by a
 * regression fitted on the others; the model is then fitted on all of them.
 * The report's valid_* fields describe those out-of-fold scores (every doc);
 * valid_share is no longer used.
 * @return 0, FN_EINVAL (too few rows or no positive/negative in a part),
 *         -ENOMEM, a trainer error
 */
int cfilter_train(const cfilter_doc *docs, size_t n, const cfilter_train_opts *o, cfilter_model_t **out,
                  cfilter_train_report *rep, fn_errbuf *eb);

/* ---- metrics ---- */

/** The lowest threshold t (a score in s[]) with precision >= target among
 * s >= t; when none reaches it, the threshold of the highest precision
 * (the lowest such). *met says which. n > 0. */
double cfilter_pick_threshold(const double *s, const int *y, size_t n, double target, int *met);
/** The highest threshold t (a score in s[]) with recall >= target among
 * s >= t (the lowest score when none but all reach it). n > 0. */
double cfilter_pick_strict(const double *s, const int *y, size_t n, double recall);
/** Precision, recall and F1 of "s >= t" (0 when undefined). */
void cfilter_prf(const double *s, const int *y, size_t n, double t, double *p, double *r, double *f1);
/** Exact ROC AUC (ties count 1/2); 0.5 without both classes. */
double cfilter_auc(const double *s, const int *y, size_t n);

#endif
