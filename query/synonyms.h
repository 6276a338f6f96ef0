/* synonyms.h - WordNet synonyms for query expansion (issue 10).
 *
 * Reads Debian's wordnet-base files (DIR = /usr/share/wordnet): for every
 * one-word lemma of index.noun, index.verb, index.adj and index.adv, the
 * other one-word lemmas of its `senses` most frequent synsets (WordNet lists
 * a lemma's synsets by frequency of use), lower case, distinct. A word is
 * looked up as written and then by WordNet's detachment rules (the "morphy"
 * suffixes: layers -> layer, flows -> flow, heating -> heat), so inflected
 * query words find their lemma.
 *
 * Loaded once (about a second for the whole of WordNet 3.0), then read-only:
 * lookups may run from many threads.
 */
#ifndef FUNNEL_QUERY_SYNONYMS_H
#define FUNNEL_QUERY_SYNONYMS_H

#include <stddef.h>

#include "fn_error.h"

typedef struct syn_dict syn_dict_t;   /* opaque */

/**
 * @brief Load WordNet's index and data files from dir.
 * @param senses how many of a lemma's most frequent synsets give synonyms (>= 1)
 * @return 0, -errno ("PATH: reason"), FN_ECORRUPT (a line that is not
 *         WordNet's format, named FILE:LINE, or an offset past the data
 *         file), -ENOMEM
 */
int syn_dict_load(const char *dir, unsigned senses, syn_dict_t **out, fn_errbuf *eb);
void syn_dict_destroy(syn_dict_t *d);

/** Lemmas that have synonyms. */
size_t syn_dict_size(const syn_dict_t *d);

/**
 * @brief The synonyms of a lower-case word (len bytes): up to max of them
 * into out (pointers into d, valid while d lives), the word itself never
 * among them. @return how many were written.
 */
size_t syn_lookup(const syn_dict_t *d, const char *word, size_t len, const char **out, size_t max);

#endif
