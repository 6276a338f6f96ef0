/* stored.c - whole stored documents through a searcher (stored.h). */
#include "stored.h"

#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "parse.h"
#include "reader_int.h"
#include "search_int.h"

#define SNIPPET_MAX_TERMS 256

idx_analyzer_t *idx_searcher_analyzer(idx_searcher_t *s) { return s->an; }

typedef struct src_args {
    const uint32_t *docs;
    size_t n;
    idx_source_cb cb;
    void *ud;
} src_args;

static int run_sources(idx_searcher_t *s, void *ud)
{
    src_args *a = ud;
    for (size_t i = 0; i < a->n; i++) {
        const char *json;
        size_t len;
        int rc = idx_source_get(s->r, s->txn, a->docs[i], &s->src, &json, &len, s->eb);
        if (rc) return rc;
        if ((rc = a->cb(a->ud, i, json, len))) return rc;
    }
    return 0;
}

int idx_docs_sources(idx_searcher_t *s, const uint32_t *docs, size_t n, idx_source_cb cb, void *ud,
                     fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    fn_errbuf local;
    s->eb = eb ? eb : &local;
    for (size_t i = 0; i < n; i++)
        if (docs[i] >= s->r->info.docs)
            return fn_seterr(eb, FN_EINVAL, "docs[%zu]: %u is out of range (the shard has %llu documents)", i,
                             docs[i], (unsigned long long)s->r->info.docs);
    src_args a = { docs, n, cb, ud };
    int rc = n ? idx_searcher_run(s, run_sources, &a) : 0;
    if (rc && eb && !eb->msg[0]) fn_seterr(eb, rc, "stored source: %s", fn_strerror(rc));
    return rc;
}

typedef struct ids_args {
    const char *const *ids;
    size_t n;
    uint32_t *docs;
} ids_args;

static int run_ids(idx_searcher_t *s, void *ud)
{
    ids_args *a = ud;
    for (size_t i = 0; i < a->n; i++) {
        int rc = idx_id_get(s->r, s->txn, a->ids[i], strlen(a->ids[i]), &a->docs[i], s->eb);
        if (rc == FN_ENOTFOUND) {
            a->docs[i] = IDX_DOC_ABSENT;
            if (s->eb) s->eb->msg[0] = '\0';
            continue;
        }
        if (rc) return rc;
    }
    return 0;
}

int idx_ids_docs(idx_searcher_t *s, const char *const *ids, size_t n, uint32_t *docs, fn_errbuf *eb)
{
    if (eb) eb->msg[0] = '\0';
    fn_errbuf local;
    s->eb = eb ? eb : &local;
    ids_args a = { ids, n, docs };
    int rc = n ? idx_searcher_run(s, run_ids, &a) : 0;
    if (rc && eb && !eb->msg[0]) fn_seterr(eb, rc, "ids: %s", fn_strerror(rc));
    return rc;
}

/* ---- snippet terms ---- */

typedef struct sterm_args {
    fn_arena *mem;
    const char **terms;
    size_t *lens;
    size_t n;
} sterm_args;

static int sterm_cb(void *ud, const char *term, size_t len, uint32_t pos)
{
    (void)pos;
    sterm_args *a = ud;
    if (a->n >= SNIPPET_MAX_TERMS || len == 0) return 0;
    char *t = fn_arena_strndup(a->mem, term, len);
    if (!t) return -ENOMEM;
    a->terms[a->n] = t;
    a->lens[a->n++] = len;
    return 0;
}

static int tree_words(idx_analyzer_t *an, const fn_qnode *q, sterm_args *a)
{
    if (q->occur == FN_Q_NOT) return 0;
    int rc = 0;
    if (q->kind == FN_Q_TERM && q->word) {
        rc = idx_analyze(an, q->word, strlen(q->word), sterm_cb, a);
    } else if (q->kind == FN_Q_PHRASE) {
        for (size_t i = 0; i < q->nwords && !rc; i++)
            rc = idx_analyze(an, q->words[i], strlen(q->words[i]), sterm_cb, a);
    } else if (q->kind == FN_Q_BOOL) {
        for (size_t i = 0; i < q->nkids && !rc; i++) rc = tree_words(an, q->kids[i], a);
    }
    return rc;
}

int idx_snippet_terms(idx_searcher_t *s, const char *query, int plain_text, fn_arena *mem,
                      const char ***terms, size_t **lens, size_t *n, fn_errbuf *eb)
{
    *terms = NULL;
    *lens = NULL;
    *n = 0;
    sterm_args a = { mem, fn_arena_alloc(mem, SNIPPET_MAX_TERMS * sizeof(char *)),
                     fn_arena_alloc(mem, SNIPPET_MAX_TERMS * sizeof(size_t)), 0 };
    if (!a.terms || !a.lens) return fn_seterr(eb, -ENOMEM, "out of memory");
    if (!query) query = "";
    size_t qlen = strlen(query);
    int rc = 1;
    if (!plain_text && qlen) {
        /* the parse's own arena: released here, the words are copied */
        fn_arena tmp;
        fn_arena_init(&tmp);
        fn_qnode *root = NULL;
        if (fn_qparse(query, qlen, NULL, &tmp, &root, NULL) == 0 && root)
            rc = tree_words(s->an, root, &a);
        fn_arena_free(&tmp);
    }
    if (rc == 1) {   /* plain text or a query that does not parse: every word */
        a.n = 0;
        rc = idx_analyze(s->an, query, qlen, sterm_cb, &a);
    }
    if (rc) return fn_seterr(eb, -ENOMEM, "out of memory");
    *terms = a.terms;
    *lens = a.lens;
    *n = a.n;
    return 0;
}

/* ---- stored fields ---- */

int idx_fields_check(const char *what, const char *const *names, size_t n, fn_errbuf *eb)
{
    if (n > IDX_MAX_FIELD_NAMES)
        return fn_seterr(eb, FN_EINVAL, "%s: %zu names, more than %d", what, n, IDX_MAX_FIELD_NAMES);
    for (size_t i = 0; i < n; i++) {
        const char *f = names[i];
        size_t len = strlen(f);
        if (strcmp(f, "*") == 0) {
            if (n > 1) return fn_seterr(eb, FN_EINVAL, "%s[%zu]: \"*\" (every field) must be alone", what, i);
            continue;
        }
        if (len == 0 || len > IDX_MAX_FIELD_NAME)
            return fn_seterr(eb, FN_EINVAL, "%s[%zu]: a name of %zu bytes (1..%d)", what, i, len,
                             IDX_MAX_FIELD_NAME);
        for (size_t k = 0; k < len; k++) {
            char c = f[k];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
                return fn_seterr(eb, FN_EINVAL, "%s[%zu]: \"%.64s\" is not a field name ([A-Za-z0-9_])",
                                 what, i, f);
        }
    }
    return 0;
}

static int add_field(fn_arena *mem, idx_stored_field *out, size_t *nout, const char *name, json_t *v)
{
    char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!txt) return -ENOMEM;
    out[*nout].name = fn_arena_strdup(mem, name);
    out[*nout].json = fn_arena_strdup(mem, txt);
    free(txt);
    if (!out[*nout].name || !out[*nout].json) return -ENOMEM;
    (*nout)++;
    return 0;
}

int idx_source_fields(const char *json, size_t len, const char *const *names, size_t n, fn_arena *mem,
                      idx_stored_field **out, size_t *nout, const char **body, size_t *body_len,
                      fn_errbuf *eb)
{
    *out = NULL;
    *nout = 0;
    if (body) {
        *body = "";
        *body_len = 0;
    }
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return fn_seterr(eb, FN_ECORRUPT, "stored source: not a JSON object");
    }
    int all = (n == 1 && strcmp(names[0], "*") == 0);
    size_t cap = all ? json_object_size(root) : n;
    idx_stored_field *f = fn_arena_alloc(mem, (cap ? cap : 1) * sizeof *f);
    int rc = f ? 0 : -ENOMEM;
    if (!rc && all) {
        const char *k;
        json_t *v;
        json_object_foreach(root, k, v) {
            if ((rc = add_field(mem, f, nout, k, v))) break;
        }
    } else {
        for (size_t i = 0; i < n && !rc; i++) {
            json_t *v = json_object_get(root, names[i]);
            if (v) rc = add_field(mem, f, nout, names[i], v);
        }
    }
    if (!rc && body) {
        json_t *b = json_object_get(root, "body");
        if (json_is_string(b)) {
            size_t bl = json_string_length(b);
            char *c = fn_arena_strndup(mem, json_string_value(b), bl);
            if (!c) rc = -ENOMEM;
            else {
                *body = c;
                *body_len = bl;
            }
        }
    }
    json_decref(root);
    if (rc) return fn_seterr(eb, rc, "out of memory");
    *out = f;
    return 0;
}
