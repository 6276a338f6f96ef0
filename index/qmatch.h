/* qmatch.h - a structured query on a shard (docs/query-language.md): the
 * parse tree of query/parse.h with its words analysed into the
 * selection's terms, and the match test the selection runs on a document.
 *
 * A query that is a plain bag of words (no operator, phrase or field) is not
 * structured: the selection runs as before (OR, or AND with all_terms), with
 * MaxScore. A structured query's selection walks the union of its positive
 * terms' lists exhaustively and keeps a document only if the tree matches it
 * (idx_qm_match); its score is the same BM25F sum over the positive terms the
 * document holds.
 *
 * Terms: the words of positive leaves (not under a NOT) are the query terms
 * s->qt[0, nq), scored and recorded as ever; words only excluded are terms
 * [nq + nu, nq + nu + nx) after the user's interest terms, looked up and
 * walked (seeked to each candidate) but never scored. A leaf whose word
 * analyses to nothing (a stopword) is neutral: it neither matches nor fails.
 * A word the analyser splits ("x-ray" -> x, ray) is a phrase of its tokens.
 *
 * Field leaves (title:x) match only where the term is in that field; the
 * score stays the term's BM25F over both fields. A phrase matches where its
 * terms stand at the query's relative positions (stopwords counted, as the
 * index counts them) inside one field.
 *
 * State lives in the searcher (s->qm), reset per query, freed with it.
 */
#ifndef FUNNEL_INDEX_QMATCH_H
#define FUNNEL_INDEX_QMATCH_H

#include <stdint.h>

typedef struct idx_searcher idx_searcher_t;

/* Parse text with the query-language parser (mode_all: the default operator
 * is AND). A bag of words: *structured = 0, *bag_text its words joined by
 * spaces (what to analyse instead of text: operators gone) and *bag_all 1
 * when they are all required (AND), 0 for OR. Otherwise the positive words
 * are analysed into the query terms and the tree is kept for idx_qm_match.
 * 0, FN_EINVAL "query: ... at column N" (a syntax error), FN_ELIMIT, -ENOMEM
 * (message in s->eb). */
int idx_qm_prepare(idx_searcher_t *s, const char *text, int mode_all, int *structured, const char **bag_text,
                   int *bag_all);

/* After the user terms are analysed: the excluded words into terms
 * [nq + nu, nq + nu + s->nx). 0 or -ENOMEM. */
int idx_qm_negatives(idx_searcher_t *s);

/* Does document d match the prepared tree? The query terms' cursors must
 * stand at or after d (the selection's merge); the excluded terms' cursors
 * are moved to d here. 1, 0, or an error (damaged positions: FN_ECORRUPT). */
int idx_qm_match(idx_searcher_t *s, uint32_t d);

/* The prepared tree in canonical form (fn_qtree_print), "" when the query
 * is not structured; valid until the next query. For explain. */
const char *idx_qm_tree(const idx_searcher_t *s);

void idx_qm_free(idx_searcher_t *s);

#endif
