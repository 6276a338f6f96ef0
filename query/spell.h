/* spell.h - the spelling corrector of query understanding (issue 10).
 *
 * A dictionary of case-folded surface words (NFKC casefold, marks stripped,
 * never stemmed) with their collection and document frequencies, built from
 * a corpus or loaded from a file; an optional English word list of words
 * that are known good; and spell_correct(), which rewrites a query, replacing
 * each unknown word by its most likely dictionary word (noisy channel:
 * log P(word) + log P(typo | word)), and keeps every other byte as it was.
 *
 * Words are maximal runs of letters and digits (Unicode L* and N*); an
 * apostrophe separates, like any other non-word character. The same split
 * is used for the corpus and for queries, so the two always agree.
 *
 * Not thread-safe while being built; once built or loaded, a dictionary is
 * read-only and spell_correct may run on it from many threads at once.
 */
#ifndef FUNNEL_QUERY_SPELL_H
#define FUNNEL_QUERY_SPELL_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"

typedef struct spell_dict spell_dict_t;   /* opaque */

#define SPELL_MAX_WORD_CPS 32      /* longer words are never corrected */
#define SPELL_MAX_TEXT_BYTES 65536 /* a longer query is FN_ELIMIT */

/* ---- building ---- */

typedef void (*spell_warn_fn)(void *ud, const char *msg);

typedef struct spell_build_opts {
    int skip_bad;               /* 0: the first bad line is the error; 1: warn, count, leave it out */
    spell_warn_fn warn;         /* "FILE:LINE: reason" for skipped lines (may be NULL) */
    void *ud;
    size_t docs;                /* out: good lines read */
    size_t skipped;             /* out: bad lines left out */
} spell_build_opts;

/** @brief An empty dictionary. @return 0 or -ENOMEM */
int spell_dict_create(spell_dict_t **out);
void spell_dict_destroy(spell_dict_t *d);

/**
 * @brief Add cf and df to word (folded here; a text of several words adds
 * each). Invalidates the candidate index until the next spell_dict_finish.
 * @return 0, FN_EINVAL (no word in it), -ENOMEM
 */
int spell_dict_add(spell_dict_t *d, const char *word, uint64_t cf, uint32_t df);

/**
 * @brief Build a dictionary from a JSON Lines corpus: the words of "title"
 * and "body" of every good line (a JSON object with a non-empty string "id").
 * The result is finished (ready for spell_correct).
 * @param opts may be NULL (fail on the first bad line)
 * @return 0, FN_EPARSE ("FILE:LINE: reason" in eb), -errno ("PATH: reason"), -ENOMEM
 */
int spell_dict_build_corpus(const char *path, spell_build_opts *opts, spell_dict_t **out,
                            fn_errbuf *eb);

/**
 * @brief Load a word list into the set of known-good words: one word a line
 * (Debian's /usr/share/dict/american-english), or, for a path ending in
 * ".dic", hunspell's format (a count on the first line, then "word/FLAGS").
 * Known words are never corrected; they are not candidates either.
 * @return 0, -errno ("PATH: reason" in eb), -ENOMEM
 */
int spell_dict_load_wordlist(spell_dict_t *d, const char *path, fn_errbuf *eb);

/**
 * @brief Words whose stem (Snowball stemmer `name`, as the index's analyzer
 * stems: "english" by default there) is the stem of a corpus word are known
 * too: they find documents through stemming ("accuracies" when the corpus
 * has "accuracy"), so they are no misspellings. "none" or NULL: off. Call
 * after the words are in (it stems every one: a few ms for 12k words).
 * @return 0, FN_EINVAL (unknown stemmer), -ENOMEM
 */
int spell_dict_set_stemmer(spell_dict_t *d, const char *name, fn_errbuf *eb);

/**
 * @brief Build the candidate index (symmetric deletes, distance 2, of every
 * dictionary word). spell_correct calls it when needed; call it first when
 * several threads will share d.
 * @return 0 or -ENOMEM
 */
int spell_dict_finish(spell_dict_t *d);

/* ---- saving and loading (format at the top of spell.c) ---- */

/** @brief Write d to path (path.tmp + rename). @return 0, -errno ("PATH: reason" in eb) */
int spell_dict_save(const spell_dict_t *d, const char *path, fn_errbuf *eb);

/**
 * @brief Load a dictionary saved by spell_dict_save and build its candidate
 * index. The word list is not part of the file (load it again).
 * @return 0, FN_ECORRUPT (truncated, checksum, bad record; eb names the
 *         file), FN_EFORMAT (not a dictionary), FN_EVERSION, -errno, -ENOMEM
 */
int spell_dict_load(const char *path, spell_dict_t **out, fn_errbuf *eb);

/* ---- looking things up ---- */

size_t spell_dict_words(const spell_dict_t *d);     /* distinct corpus words */
uint64_t spell_dict_total(const spell_dict_t *d);   /* sum of cf */
/** cf and df of a folded word (0 when absent). Returns 1 when present. */
int spell_dict_get(const spell_dict_t *d, const char *word, size_t len, uint64_t *cf, uint32_t *df);
/** Is the folded word in the dictionary or in the word list? */
int spell_dict_known(const spell_dict_t *d, const char *word, size_t len);

/**
 * @brief Optimal string alignment (restricted Damerau-Levenshtein) distance
 * between two UTF-8 strings, on code points; invalid bytes count as one
 * code point each. Strings of more than 255 code points: -1.
 */
int spell_distance(const char *a, size_t alen, const char *b, size_t blen);

/* ---- correcting a query ---- */

typedef struct spell_opts {
    size_t max_words;           /* words looked at for correction, at most (0 = 32) */
    double min_score;           /* a correction must score at least this (0 = SPELL_DEFAULT_MIN_SCORE) */
} spell_opts;

/* The default threshold: log P(w) - channel cost (natural logs). Measured on
 * cranfield and npl (spell.c, "Scores"). */
#define SPELL_DEFAULT_MIN_SCORE (-14.0)

typedef struct spell_fix {
    const char *from;           /* the word as written (NUL-terminated) */
    const char *to;             /* its replacement, folded */
    size_t offset;              /* byte offset of the word in the query */
    size_t len;                 /* its length in bytes */
    int distance;               /* 1 or 2 */
    double score;               /* log P(to) + log P(from | to) */
} spell_fix;

typedef struct spell_result {
    char *text;                 /* the rewritten query, NUL-terminated */
    size_t text_len;
    spell_fix *fix;             /* in query order */
    size_t nfix;
    size_t looked_at;           /* unknown words tried (at most max_words) */
    void *mem_;                 /* private */
} spell_result;

/**
 * @brief Correct the unknown words of text. Not corrected: words in the
 * dictionary or the word list, words of fewer than 3 or more than 32 code
 * points, words with a digit, the operators AND, OR and NOT (as written, in
 * upper case) and a word directly followed by ':' (a field prefix). A word
 * of fewer than 6 code points gets candidates at distance 1 only.
 * Everything else in the text is copied byte for byte.
 * @param opts may be NULL (defaults)
 * @param[out] res filled on success; release with spell_result_free (also
 *             safe after a failure)
 * @return 0, FN_ELIMIT (text longer than SPELL_MAX_TEXT_BYTES), -ENOMEM
 */
int spell_correct(spell_dict_t *d, const char *text, size_t len, const spell_opts *opts,
                  spell_result *res, fn_errbuf *eb);
void spell_result_free(spell_result *res);

#endif
