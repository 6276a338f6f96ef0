/* builder_int.h - internal seams of builder.c for tests and fuzzing; not
 * part of the index API (builder.h). */
#ifndef FUNNEL_BUILDER_INT_H
#define FUNNEL_BUILDER_INT_H

#include <stddef.h>

/* Run the builder's per-line path (analyze_line: JSON parse, field and
 * attribute checks, embedding, source compression, dupsig, analysis) on one
 * JSON Lines document of len bytes (not NUL-terminated), with a private
 * analyzer (default options) and batch, and free everything. Returns 0 when
 * the line would be indexed or is blank (why = "" or "blank line"), the
 * line's FN_EPARSE / FN_ELIMIT when the build would reject it (why = the
 * builder's reason), or a negative errno (-ENOMEM). why may be NULL. */
int idx_corpus_line_check(const char *line, size_t len, char *why, size_t whylen);

#endif
