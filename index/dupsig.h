/* dupsig.h - a document's near-duplicate signature (issue 11: the result page
 * folds copies of a hit it already shows).
 *
 * Method: MinHash over the document's word unigrams and word bigrams (title
 * then body, one stream), IDX_DUPSIG_SLOTS independent minima, each kept as
 * 8 bits of a mix of it (b-bit MinHash): IDX_DUPSIG_BYTES bytes. Two signatures
 * estimate the Jaccard resemblance J of the two shingle sets from the share
 * m of equal bytes: J = (m - 2^-8) / (1 - 2^-8). They are near-duplicates
 * when J >= IDX_DUPSIG_NEAR.
 *
 * Words: maximal runs of ASCII letters and digits and of bytes >= 0x80
 * (UTF-8 kept whole), ASCII lowercased, 1..IDX_DUPSIG_MAX_WORD bytes (longer
 * runs are cut); punctuation and case therefore do not count. Work is
 * bounded: the first IDX_DUPSIG_MAX_TITLE bytes of the title and
 * IDX_DUPSIG_MAX_BODY of the body. A document without a word gets the
 * all-zero signature, which is near nothing (not even another empty one).
 *
 * Why this choice (measured, docs/index-format.md "Result-page signals"): on
 * Cranfield (1400 documents) copies with 1..5 small edits
 * (tests/bench/near_dups.py, seeds 1..3) have exact unigram+bigram J >= 0.755
 * for 99.6% of them, while the most similar distinct documents that are not
 * the same paper reach J 0.605: the widest margin of the shingles tried
 * (bigrams 0.561 vs 0.71, trigrams 0.459 vs 0.61, unigrams 0.745 vs 0.85).
 * 128 one-byte slots keep the estimate's spread near 0.04 at J 0.6. With
 * these signatures: recall 0.995..0.998 over 3 x 1400 Cranfield copies, and
 * of Cranfield's 979,300 distinct pairs only its 4 genuine duplicates are
 * near (listed in tests/index/test_dupsig.c); the next highest estimate is
 * 0.608. The comparison first counts equal bytes among the first
 * IDX_DUPSIG_PREFIX slots and rejects below IDX_DUPSIG_PREFIX_MIN (99% of
 * Cranfield's pairs; a true pair at J 0.7 with probability ~1e-5), then
 * counts all of them 8 bytes at a time: 6.2 ns a comparison on average.
 */
#ifndef FUNNEL_INDEX_DUPSIG_H
#define FUNNEL_INDEX_DUPSIG_H

#include <stddef.h>
#include <stdint.h>

#define IDX_DUPSIG_SLOTS 128
#define IDX_DUPSIG_BYTES 128                 /* one byte a slot */
#define IDX_DUPSIG_NEAR 0.70                 /* estimated J at or above: near-duplicates */
#define IDX_DUPSIG_PREFIX 16                 /* fast reject: the first 16 slots ... */
#define IDX_DUPSIG_PREFIX_MIN 4              /* ... must hold 4 equal bytes */
#define IDX_DUPSIG_MAX_TITLE 1024u
#define IDX_DUPSIG_MAX_BODY 65536u
#define IDX_DUPSIG_MAX_WORD 64

/** The signature of a document (title and body, either may be NULL). */
void idx_dupsig(const char *title, size_t tlen, const char *body, size_t blen, uint8_t out[IDX_DUPSIG_BYTES]);

/**
 * @brief Are a and b near-duplicates?
 * @param similarity when not NULL: the estimated Jaccard resemblance (0 after
 *        a fast reject or with an empty signature; it is then not estimated)
 * @return 1 near-duplicates, 0 not
 */
int idx_dupsig_near(const uint8_t *a, const uint8_t *b, double *similarity);

/** The estimated resemblance of a and b, every slot counted (no fast reject). */
double idx_dupsig_similarity(const uint8_t *a, const uint8_t *b);

#endif
