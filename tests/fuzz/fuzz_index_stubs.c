/* fuzz_index_stubs.c - for run_fuzz.sh's clang builds only: the index
 * functions that index/stored.c calls but a harness never reaches (the
 * harnesses need only idx_fields_check from it). Linking the whole index
 * library under the sanitizers would cost a minute per run; these stubs
 * abort, so reaching one is a crash, never a silent wrong answer. */
#include <stdio.h>
#include <stdlib.h>

#include "analyzer.h"
#include "reader_int.h"
#include "search_int.h"

static void unreachable(const char *fn)
{
    fprintf(stderr, "fuzz_index_stubs: %s called: a harness reached the index\n", fn);
    abort();
}

int idx_searcher_run(idx_searcher_t *s, int (*fn)(idx_searcher_t *s, void *ud), void *ud)
{
    (void)s, (void)fn, (void)ud;
    unreachable(__func__);
    return -1;
}

int idx_source_get(const idx_reader_t *r, MDB_txn *txn, uint32_t doc, idx_srcbuf *sb, const char **json,
                   size_t *len, fn_errbuf *eb)
{
    (void)r, (void)txn, (void)doc, (void)sb, (void)json, (void)len, (void)eb;
    unreachable(__func__);
    return -1;
}

int idx_id_get(const idx_reader_t *r, MDB_txn *txn, const char *id, size_t len, uint32_t *doc, fn_errbuf *eb)
{
    (void)r, (void)txn, (void)id, (void)len, (void)doc, (void)eb;
    unreachable(__func__);
    return -1;
}

int idx_analyze(idx_analyzer_t *a, const char *text, size_t len, idx_token_cb cb, void *ud)
{
    (void)a, (void)text, (void)len, (void)cb, (void)ud;
    unreachable(__func__);
    return -1;
}
