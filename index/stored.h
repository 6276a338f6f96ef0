/* stored.h - a searcher's reads of whole stored documents: the JSON sources
 * of documents by number (Shard/Fetch stored fields and snippets), document
 * numbers by external id (Shard/Get), and the analyzed words of a query for
 * its snippets. Every read goes through idx_searcher_run (the query's read
 * transaction and SIGBUS guard), so damage is reported, never crashed on. */
#ifndef FUNNEL_INDEX_STORED_H
#define FUNNEL_INDEX_STORED_H

#include <stddef.h>
#include <stdint.h>

#include "analyzer.h"
#include "fn_arena.h"
#include "fn_error.h"
#include "search.h"

#define IDX_DOC_ABSENT UINT32_MAX   /* idx_ids_docs: no document with that id */

/* Called with docs[i]'s JSON source (json[len] is NUL; valid for the call
 * only). Non-zero stops the walk and is returned (message in eb). */
typedef int (*idx_source_cb)(void *ud, size_t i, const char *json, size_t len);

/* The sources of docs[0, n) in order, in the searcher's current snapshot
 * (the one idx_docs_fields read, until idx_searcher_release). A document out
 * of range is FN_EINVAL; damage codes as idx_search. */
int idx_docs_sources(idx_searcher_t *s, const uint32_t *docs, size_t n, idx_source_cb cb, void *ud,
                     fn_errbuf *eb);

/* docs[i] = the document number of ids[i] (NUL-terminated), IDX_DOC_ABSENT
 * when this shard has none. Damage codes as idx_search. */
int idx_ids_docs(idx_searcher_t *s, const char *const *ids, size_t n, uint32_t *docs, fn_errbuf *eb);

/* The analyzed words of query for a snippet: every word of a plain_text
 * query; of a query-language query the words of its terms and phrases that
 * are not under NOT (a malformed query gives every word). *terms and *lens
 * (n entries) live in mem. At most 256 terms. */
int idx_snippet_terms(idx_searcher_t *s, const char *query, int plain_text, fn_arena *mem,
                      const char ***terms, size_t **lens, size_t *n, fn_errbuf *eb);

#define IDX_MAX_FIELD_NAMES 32     /* stored fields asked for, at most */
#define IDX_MAX_FIELD_NAME 64      /* bytes of a field name, at most */

/* Check a list of stored field names (SearchRequest.fields): at most
 * IDX_MAX_FIELD_NAMES names of 1..IDX_MAX_FIELD_NAME bytes of [A-Za-z0-9_],
 * or "*" alone (every field). 0, or FN_EINVAL with "fields[i]: ..." in eb
 * (what prefixes the message). */
int idx_fields_check(const char *what, const char *const *names, size_t n, fn_errbuf *eb);

/* A stored field: its name and value as compact JSON text. */
typedef struct idx_stored_field {
    const char *name;
    const char *json;
} idx_stored_field;

/* The top-level fields names[0, n) of the JSON object json[0, len) (every
 * field, in the document's order, when names is "*" alone; none when n is
 * 0), as
 * compact JSON, in mem: *out, *nout entries (a field the document does not
 * have is left out). With body non-NULL, *body and *body_len = its "body"
 * string (in mem; "" when none). FN_ECORRUPT for a source that is not a
 * JSON object; -ENOMEM. */
int idx_source_fields(const char *json, size_t len, const char *const *names, size_t n, fn_arena *mem,
                      idx_stored_field **out, size_t *nout, const char **body, size_t *body_len,
                      fn_errbuf *eb);

/* The searcher's analyzer (the index's): for idx_snippet_make on the
 * searcher's thread. */
idx_analyzer_t *idx_searcher_analyzer(idx_searcher_t *s);

#endif
