/* attrs.c - document attributes and filters (attrs.h, format.h attrs). */
#include "attrs.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "integrity.h"
#include "reader_int.h"
#include "search_int.h"

const char *const idx_attr_names[IDX_NATTRS] = { "vertical", "lang", "labels" };

struct idx_fcache {
    pthread_mutex_t mu;
    struct { char *key; uint64_t *bits; uint64_t used; } e[IDX_FCACHE_N];
    uint64_t clock;
};

/* ---- JSON ---- */

static const char *one_value(json_t *root, int a, idx_attr_doc *out)
{
    static const char *const not_str[] = { "\"vertical\" is not a string", "\"lang\" is not a string" };
    static const char *const too_long[] = { "\"vertical\" is longer than 511 bytes", "\"lang\" is longer than 511 bytes" };
    json_t *v = json_object_get(root, idx_attr_names[a]);
    out->n[a] = 0;
    if (!v || json_is_null(v)) return NULL;
    if (!json_is_string(v)) return not_str[a];
    size_t n = json_string_length(v);
    if (n == 0) return NULL;
    if (n > IDX_ATTR_MAX_VALUE_BYTES) return too_long[a];
    out->v[a][0] = json_string_value(v);
    out->len[a][0] = (uint32_t)n;
    out->n[a] = 1;
    return NULL;
}

const char *idx_attrs_from_json(json_t *root, idx_attr_doc *out, char *why, size_t whycap)
{
    const char *bad;
    if ((bad = one_value(root, IDX_ATTR_VERTICAL, out)) || (bad = one_value(root, IDX_ATTR_LANG, out))) return bad;
    out->n[IDX_ATTR_LABELS] = 0;
    json_t *l = json_object_get(root, "labels");
    if (!l || json_is_null(l)) return NULL;
    if (!json_is_array(l)) return "\"labels\" is not an array of strings";
    size_t n = json_array_size(l);
    if (n > IDX_ATTR_MAX_LABELS) return "\"labels\" has more than 256 entries";
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(l, i);
        if (!json_is_string(x)) {
            snprintf(why, whycap, "\"labels\"[%zu] is not a string", i);
            return why;
        }
        size_t xl = json_string_length(x);
        if (xl > IDX_ATTR_MAX_VALUE_BYTES) {
            snprintf(why, whycap, "\"labels\"[%zu] is longer than 511 bytes", i);
            return why;
        }
        if (xl == 0) continue;
        const char *xs = json_string_value(x);
        int dup = 0;
        for (uint32_t j = 0; j < k && !dup; j++)
            dup = out->len[IDX_ATTR_LABELS][j] == xl && memcmp(out->v[IDX_ATTR_LABELS][j], xs, xl) == 0;
        if (dup) continue;
        out->v[IDX_ATTR_LABELS][k] = xs;
        out->len[IDX_ATTR_LABELS][k] = (uint32_t)xl;
        k++;
    }
    out->n[IDX_ATTR_LABELS] = k;
    return NULL;
}

/* ---- build ---- */

int idx_attr_acc_add(idx_attr_acc *a, uint32_t doc, const char *v, size_t len)
{
    if (idx_grow((void **)&a->blob, &a->bcap, a->blen + len, 1) ||
        idx_grow((void **)&a->e, &a->cap, a->n + 1, sizeof *a->e))
        return -ENOMEM;
    memcpy(a->blob + a->blen, v, len);
    a->e[a->n++] = (struct idx_attr_ent){ a->blen, (uint32_t)len, doc };
    a->blen += len;
    return 0;
}

/* bytes order: memcmp over the common length, then the shorter first */
static int bytes_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return (al > bl) - (al < bl);
}

static const char *sort_blob;
static int ent_cmp(const void *x, const void *y)
{
    const struct idx_attr_ent *a = x, *b = y;
    int c = bytes_cmp(sort_blob + a->off, a->len, sort_blob + b->off, b->len);
    if (c) return c;
    return (a->doc > b->doc) - (a->doc < b->doc);
}

int idx_attr_acc_value(idx_attr_acc *a, const char *name, uint32_t ndocs, uint8_t **val, size_t *vlen)
{
    /* by (value, doc): the dictionary in order, codes assigned by rank */
    sort_blob = a->blob;   /* the build's main thread only */
    if (a->n) qsort(a->e, a->n, sizeof *a->e, ent_cmp);
    uint64_t nvals = 0, dict = 0;
    for (size_t i = 0; i < a->n; i++)
        if (i == 0 || bytes_cmp(a->blob + a->e[i - 1].off, a->e[i - 1].len, a->blob + a->e[i].off, a->e[i].len)) {
            nvals++;
            dict += 2 + a->e[i].len;
        }
    if (a->n > UINT32_MAX - 1 || dict > UINT32_MAX) return FN_ELIMIT;
    size_t size = IDX_ATTR_HDR + dict + (a->n ? 4 * ((size_t)ndocs + 1) + 4 * a->n : 0);
    uint8_t *p = malloc(size), *w = p + IDX_ATTR_HDR;
    uint32_t *fill = a->n ? calloc((size_t)ndocs + 1, sizeof *fill) : NULL;
    if (!p || (a->n && !fill)) {
        free(p);
        free(fill);
        return -ENOMEM;
    }
    idx_put_u32le(p + 4, (uint32_t)nvals);
    idx_put_u32le(p + 8, (uint32_t)a->n);
    idx_put_u32le(p + 12, (uint32_t)dict);
    for (size_t i = 0; i < a->n; i++)
        if (i == 0 || bytes_cmp(a->blob + a->e[i - 1].off, a->e[i - 1].len, a->blob + a->e[i].off, a->e[i].len)) {
            w[0] = (uint8_t)a->e[i].len;
            w[1] = (uint8_t)(a->e[i].len >> 8);
            memcpy(w + 2, a->blob + a->e[i].off, a->e[i].len);
            w += 2 + a->e[i].len;
        }
    if (a->n) {
        /* offsets: counts, then prefix sums */
        for (size_t i = 0; i < a->n; i++) fill[a->e[i].doc + 1]++;
        for (uint32_t d = 0; d < ndocs; d++) fill[d + 1] += fill[d];
        for (uint32_t d = 0; d <= ndocs; d++) idx_put_u32le(w + 4 * (size_t)d, fill[d]);
        uint8_t *codes = w + 4 * ((size_t)ndocs + 1);
        /* in (value, doc) order, each document's codes come out ascending */
        uint32_t code = 0;
        for (size_t i = 0; i < a->n; i++) {
            if (i && bytes_cmp(a->blob + a->e[i - 1].off, a->e[i - 1].len, a->blob + a->e[i].off, a->e[i].len)) code++;
            idx_put_u32le(codes + 4 * (size_t)fill[a->e[i].doc]++, code);
        }
    }
    free(fill);
    idx_put_u32le(p, idx_sum32(p + 4, size - 4, idx_key_seed(name, strlen(name))));
    *val = p;
    *vlen = size;
    return 0;
}

void idx_attr_acc_free(idx_attr_acc *a)
{
    free(a->blob);
    free(a->e);
    memset(a, 0, sizeof *a);
}

/* ---- read ---- */

static void attr_free(idx_attr *a)
{
    free(a->blob);
    free(a->val);
    free(a->vlen);
    free(a->off);
    free(a->code);
    free(a->voff);
    free(a->vdocs);
    free(a->one);
    for (uint32_t v = 0; a->vbits && v < a->nvals; v++) free(a->vbits[v]);
    free(a->vbits);
    memset(a, 0, sizeof *a);
}

void idx_attrs_free(idx_attrs *at)
{
    for (int i = 0; i < IDX_NATTRS; i++) attr_free(&at->a[i]);
    if (at->fcache) {
        for (int i = 0; i < IDX_FCACHE_N; i++) {
            free(at->fcache->e[i].key);
            free(at->fcache->e[i].bits);
        }
        pthread_mutex_destroy(&at->fcache->mu);
        free(at->fcache);
    }
    free(at->pop.perm);
    free(at->pop.cum);
    free(at->pub.perm);
    free(at->pub.cum);
    memset(at, 0, sizeof *at);
}

static int attr_load(idx_reader_t *r, MDB_txn *txn, MDB_dbi dbi, int ai, fn_errbuf *eb)
{
    const char *name = idx_attr_names[ai];
    idx_attr *a = &r->attrs.a[ai];
    uint64_t docs = r->info.docs;
    MDB_val k = { strlen(name), (void *)name }, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return fn_seterr(eb, FN_EFORMAT, "attrs \"%s\": missing", name);
    if (rc) return fn_seterr(eb, idx_mdb_code(rc), "attrs \"%s\": %s", name, mdb_strerror(rc));
    const uint8_t *p = v.mv_data;
    size_t n = v.mv_size;
    if (!idx_in_map(r, p, n) || n < IDX_ATTR_HDR)
        return fn_seterr(eb, FN_ECORRUPT, "attrs \"%s\": value of %zu bytes is damaged", name, n);
    if (idx_get_u32le(p) != idx_sum32(p + 4, n - 4, idx_key_seed(name, strlen(name))))
        return fn_seterr(eb, FN_ECORRUPT, "attrs \"%s\": checksum mismatch", name);
    uint32_t nvals = idx_get_u32le(p + 4), nent = idx_get_u32le(p + 8), dict = idx_get_u32le(p + 12);
    uint64_t want = (uint64_t)IDX_ATTR_HDR + dict + (nent ? 4 * (docs + 1) + 4 * (uint64_t)nent : 0);
    if (want != n || (nent == 0) != (nvals == 0) || nvals > nent || (uint64_t)nvals * 3 > dict ||
        (uint64_t)nvals * (2 + IDX_ATTR_MAX_VALUE_BYTES) < dict)
        return fn_seterr(eb, FN_ECORRUPT, "attrs \"%s\": %u values, %u entries and %u dictionary bytes do not "
                         "fit a value of %zu bytes for %" PRIu64 " documents", name, nvals, nent, dict, n, docs);
    a->nvals = nvals;
    a->nentries = nent;
    if (!nent) return 0;
    if (!(a->blob = malloc((size_t)dict)) || !(a->val = malloc(4 * (size_t)nvals)) ||
        !(a->vlen = malloc(4 * (size_t)nvals)) || !(a->off = malloc(4 * ((size_t)docs + 1))) ||
        !(a->code = malloc(4 * (size_t)nent)) || !(a->voff = calloc((size_t)nvals + 1, 4)) ||
        !(a->vdocs = malloc(4 * (size_t)nent)))
        return fn_seterr(eb, -ENOMEM, "out of memory");
    const uint8_t *w = p + IDX_ATTR_HDR, *end = w + dict;
    size_t bo = 0;
    for (uint32_t i = 0; i < nvals; i++) {
        uint32_t l = end - w >= 2 ? (uint32_t)w[0] | (uint32_t)w[1] << 8 : 0;
        if (l == 0 || l > IDX_ATTR_MAX_VALUE_BYTES || (size_t)(end - w) < 2 + (size_t)l)
            return fn_seterr(eb, FN_ECORRUPT, "attrs \"%s\": dictionary entry %u is damaged", name, i);
        if (i && bytes_cmp(a->blob + a->val[i - 1], a->vlen[i - 1], (const char *)w + 2, l) >= 0)
            return fn_seterr(eb, FN_ECORRUPT, "attrs \"%s\": dictionary entry %u is out of order", name, i);
        a->val[i] = (uint32_t)bo;
        a->vlen[i] = l;
        memcpy(a->blob + bo, w + 2, l);
        a->blob[bo + l] = '\0';
        bo += l + 1;
        w += 2 + l;
    }
    if (w != end) return fn_seterr(eb, FN_ECORRUPT, "attrs \"%s\": the dictionary does not end where it should", name);
    for (uint64_t d = 0; d <= docs; d++) a->off[d] = idx_get_u32le(w + 4 * d);
    const uint8_t *cw = w + 4 * (docs + 1);
    if (a->off[0] != 0 || a->off[docs] != nent)
        return fn_seterr(eb, FN_ECORRUPT, "attrs \"%s\": offsets do not span the %u entries", name, nent);
    for (uint64_t d = 0; d < docs; d++) {
        if (a->off[d + 1] < a->off[d] || a->off[d + 1] > nent)
            return fn_seterr(eb, FN_ECORRUPT, "attrs \"%s\": offsets of doc %" PRIu64 " are damaged", name, d);
        for (uint32_t j = a->off[d]; j < a->off[d + 1]; j++) {
            uint32_t c = idx_get_u32le(cw + 4 * (size_t)j);
            if (c >= nvals || (j > a->off[d] && c <= a->code[j - 1]))
                return fn_seterr(eb, FN_ECORRUPT, "attrs \"%s\": values of doc %" PRIu64 " are damaged", name, d);
            a->code[j] = c;
            a->voff[c + 1]++;
        }
    }
    /* per value, its documents: a counting sort, documents in order */
    for (uint32_t i = 0; i < nvals; i++) a->voff[i + 1] += a->voff[i];
    uint32_t *at = malloc(4 * (size_t)nvals);
    if (!at) return fn_seterr(eb, -ENOMEM, "out of memory");
    memcpy(at, a->voff, 4 * (size_t)nvals);
    for (uint64_t d = 0; d < docs; d++)
        for (uint32_t j = a->off[d]; j < a->off[d + 1]; j++) a->vdocs[at[a->code[j]]++] = (uint32_t)d;
    free(at);
    /* what a filter asked per document reads: one code a document (one
     * cache line, not two) and the frequent values' bitmaps (small enough
     * to stay in cache) */
    int single = 1;
    for (uint64_t d = 0; d < docs && single; d++) single = a->off[d + 1] - a->off[d] <= 1;
    if (single) {
        if (!(a->one = malloc(4 * (size_t)(docs ? docs : 1)))) return fn_seterr(eb, -ENOMEM, "out of memory");
        for (uint64_t d = 0; d < docs; d++) a->one[d] = a->off[d + 1] > a->off[d] ? a->code[a->off[d]] : UINT32_MAX;
    }
    if (!(a->vbits = calloc(nvals, sizeof *a->vbits))) return fn_seterr(eb, -ENOMEM, "out of memory");
    size_t words = (size_t)docs / 64 + 1;
    for (uint32_t v = 0, made = 0; v < nvals && made < 64 && docs >= 4096; v++) {
        if ((uint64_t)(a->voff[v + 1] - a->voff[v]) * 64 < docs) continue;
        if (!(a->vbits[v] = calloc(words, sizeof **a->vbits))) return fn_seterr(eb, -ENOMEM, "out of memory");
        for (uint32_t j = a->voff[v]; j < a->voff[v + 1]; j++) a->vbits[v][a->vdocs[j] >> 6] |= 1ull << (a->vdocs[j] & 63);
        made++;
    }
    return 0;
}

/* A float's order as an unsigned key (finite values; -0 and +0 are one key,
 * as they compare equal). */
static uint64_t float_key(float f)
{
    if (f == 0.0f) f = 0.0f;
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* perm[0..n) (ascending ids) stably sorted by key[perm[i]] (keys of `bytes`
 * bytes significance): an LSD radix sort, 8 bits a pass, passes where every
 * key has the same byte skipped. Stable, so equal keys stay in id order -
 * the order a comparison sort by (key, id) gives - at a few passes over the
 * array instead of n log n comparisons with random reads: a generation's
 * open (on a loaded shard's loader thread) spent a third of its time in
 * qsort here. tmp: n entries, ktmp: n keys. */
static void radix_perm(uint32_t *perm, uint32_t *tmp, uint64_t *k, uint64_t *ktmp, size_t n, int bytes)
{
    for (int b = 0; b < bytes; b++) {
        size_t cnt[256] = { 0 };
        int sh = 8 * b;
        for (size_t i = 0; i < n; i++) cnt[(k[i] >> sh) & 255]++;
        if (n && cnt[(k[0] >> sh) & 255] == n) continue;   /* one value in this byte: nothing moves */
        size_t at = 0;
        for (int v = 0; v < 256; v++) {
            size_t c = cnt[v];
            cnt[v] = at;
            at += c;
        }
        for (size_t i = 0; i < n; i++) {
            size_t j = cnt[(k[i] >> sh) & 255]++;
            tmp[j] = perm[i];
            ktmp[j] = k[i];
        }
        memcpy(perm, tmp, n * sizeof *perm);
        memcpy(k, ktmp, n * sizeof *k);
    }
}

int idx_attrs_load(idx_reader_t *r, MDB_txn *txn, MDB_dbi dbi, fn_errbuf *eb)
{
    int rc;
    for (int i = 0; i < IDX_NATTRS; i++)
        if ((rc = attr_load(r, txn, dbi, i, eb))) return rc;
    /* the sorted orders (the norms were checked: popularity is finite) */
    size_t docs = (size_t)r->info.docs;
    idx_attrs *at = &r->attrs;
    if (!(at->fcache = calloc(1, sizeof *at->fcache))) return fn_seterr(eb, -ENOMEM, "out of memory");
    pthread_mutex_init(&at->fcache->mu, NULL);
    if (!(at->pop.perm = malloc(4 * (docs ? docs : 1))) || !(at->pub.perm = malloc(4 * (docs ? docs : 1))))
        return fn_seterr(eb, -ENOMEM, "out of memory");
    at->pop.n = (uint32_t)docs;
    at->pub.n = 0;
    for (size_t d = 0; d < docs; d++) {
        at->pop.perm[d] = (uint32_t)d;
        if (r->pub[d] != IDX_NO_TIME) at->pub.perm[at->pub.n++] = (uint32_t)d;
    }
    {
        size_t n = docs ? docs : 1;
        uint32_t *tmp = malloc(4 * n);
        uint64_t *k = malloc(8 * n), *ktmp = malloc(8 * n);
        if (!tmp || !k || !ktmp) {
            free(tmp), free(k), free(ktmp);
            return fn_seterr(eb, -ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < docs; i++) k[i] = float_key(r->pop[at->pop.perm[i]]);
        radix_perm(at->pop.perm, tmp, k, ktmp, docs, 4);
        for (size_t i = 0; i < at->pub.n; i++) k[i] = (uint64_t)r->pub[at->pub.perm[i]] ^ (1ull << 63);
        radix_perm(at->pub.perm, tmp, k, ktmp, at->pub.n, 8);
        free(tmp), free(k), free(ktmp);
    }
    /* prefix bitmaps (attrs.h idx_rangeidx): 65 x docs/8 bytes an attribute,
     * for shards where a range's bits would otherwise cost much */
    idx_rangeidx *ri[2] = { &at->pop, &at->pub };
    for (int k = 0; k < 2 && docs >= 65536; k++) {
        idx_rangeidx *x = ri[k];
        x->words = docs / 64 + 1;
        if (!(x->cum = calloc((size_t)(IDX_RANGE_BUCKETS + 1) * x->words, sizeof *x->cum)))
            return fn_seterr(eb, -ENOMEM, "out of memory");
        for (uint32_t j = 0; j < IDX_RANGE_BUCKETS; j++) {
            uint64_t *cur = x->cum + (size_t)j * x->words, *next = cur + x->words;
            memcpy(next, cur, x->words * sizeof *cur);
            uint32_t from = (uint32_t)((uint64_t)j * x->n / IDX_RANGE_BUCKETS);
            uint32_t to = (uint32_t)((uint64_t)(j + 1) * x->n / IDX_RANGE_BUCKETS);
            for (uint32_t i = from; i < to; i++) next[x->perm[i] >> 6] |= 1ull << (x->perm[i] & 63);
        }
    }
    return 0;
}

const char *idx_doc_vertical(const idx_reader_t *r, uint32_t doc)
{
    const idx_attr *a = &r->attrs.a[IDX_ATTR_VERTICAL];
    if (doc >= r->info.docs || !a->off || a->off[doc + 1] == a->off[doc]) return "";
    return a->blob + a->val[a->code[a->off[doc]]];
}

int64_t idx_attr_find(const idx_attr *a, const char *v, size_t len)
{
    size_t lo = 0, hi = a->nvals;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = bytes_cmp(a->blob + a->val[mid], a->vlen[mid], v, len);
        if (c == 0) return (int64_t)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* ---- filters ---- */

typedef struct fcnode {
    fn_fkind kind;
    fn_fattr attr;
    int all;
    uint32_t *kids, nkids;    /* indexes into the node array */
    uint32_t *set, nset;      /* VALUES: codes (string attributes) or docs (id), ascending */
    int none;                 /* VALUES: matches nothing here (all of, with a value the shard lacks) */
    const idx_attr *a;        /* VALUES of a string attribute: it */
    int bitsok;               /* ... and every value of set has a bitmap (vbits) */
    float flo, fhi;           /* RANGE popularity: closed float bounds */
    int64_t ilo, ihi;         /* RANGE published_at: closed bounds (> IDX_NO_TIME) */
    uint32_t plo, phi;        /* RANGE: its documents are perm[plo .. phi) */
    uint64_t est;
} fcnode;

struct idx_filter {
    const idx_reader_t *r;
    fcnode *n; size_t nn, ncap;
    uint32_t *u32; size_t nu, ucap;     /* the nodes' kids and sets */
    uint32_t root;
    uint64_t *bits; size_t bitscap;
    uint64_t *tmp; size_t tmpcap;        /* collect's second bitmap */
    int listed;                          /* bits hold the passing documents (idx_filter_drive) */
    int bitsdone;                        /* bits hold exactly the passing documents */
    size_t npass;
    const fn_fnode *tree;                /* the filter compiled (its canonical text keys the cache) */
    char key[IDX_FCACHE_KEY];
};

static int u32_cmp(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return (a > b) - (a < b);
}

static int contains(const uint32_t *a, uint32_t n, uint32_t x)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (a[mid] == x) return 1;
        if (a[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

/* First i in [0, n) with key(perm[i]) >= x (pop) */
static uint32_t pop_lower(const idx_reader_t *r, const uint32_t *perm, uint32_t n, float x)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->pop[perm[mid]] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}
static uint32_t pop_upper(const idx_reader_t *r, const uint32_t *perm, uint32_t n, float x)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->pop[perm[mid]] <= x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}
static uint32_t pub_lower(const idx_reader_t *r, const uint32_t *perm, uint32_t n, int64_t x)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->pub[perm[mid]] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}
static uint32_t pub_upper(const idx_reader_t *r, const uint32_t *perm, uint32_t n, int64_t x)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->pub[perm[mid]] <= x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int u32_push(idx_filter *f, uint32_t x, uint32_t *at)
{
    if (idx_grow((void **)&f->u32, &f->ucap, f->nu + 1, sizeof *f->u32)) return -ENOMEM;
    if (at) *at = (uint32_t)f->nu;
    f->u32[f->nu++] = x;
    return 0;
}

/* Compile node t into f->n[*out]. Kids' and sets' arrays live in f->u32 and
 * are referred to by offset until the end (it may move), then fixed up. */
static int compile(idx_searcher_t *s, idx_filter *f, const fn_fnode *t, uint32_t *out, fn_errbuf *eb)
{
    const idx_reader_t *r = s->r;
    uint64_t docs = r->info.docs;
    if (idx_grow((void **)&f->n, &f->ncap, f->nn + 1, sizeof *f->n)) return -ENOMEM;
    uint32_t me = (uint32_t)f->nn++;
    fcnode c;
    memset(&c, 0, sizeof c);
    c.kind = t->kind;
    c.attr = t->attr;
    c.all = t->all;
    int rc;
    switch (t->kind) {
    case FN_F_AND:
    case FN_F_OR:
    case FN_F_NOT: {
        /* kids compiled first (their indexes), then recorded contiguously */
        uint32_t *tmp = malloc(sizeof *tmp * (t->nkids ? t->nkids : 1));
        if (!tmp) return -ENOMEM;
        for (size_t i = 0; i < t->nkids; i++)
            if ((rc = compile(s, f, t->kids[i], &tmp[i], eb))) { free(tmp); return rc; }
        uint32_t at = (uint32_t)f->nu;
        for (size_t i = 0; i < t->nkids; i++)
            if (u32_push(f, tmp[i], NULL)) { free(tmp); return -ENOMEM; }
        free(tmp);
        c.kids = (uint32_t *)(uintptr_t)at;
        c.nkids = (uint32_t)t->nkids;
        if (t->kind == FN_F_AND) {
            c.est = docs;
            for (uint32_t i = 0; i < c.nkids; i++)
                if (f->n[f->u32[at + i]].est < c.est) c.est = f->n[f->u32[at + i]].est;
        } else if (t->kind == FN_F_OR) {
            c.est = 0;
            for (uint32_t i = 0; i < c.nkids; i++) c.est += f->n[f->u32[at + i]].est;
            if (c.est > docs) c.est = docs;
        } else {
            /* NOT of a clause: exact; of anything else: every document */
            const fcnode *k = &f->n[f->u32[at]];
            c.est = k->kind == FN_F_VALUES || k->kind == FN_F_RANGE ? docs - k->est : docs;
        }
        break;
    }
    case FN_F_VALUES: {
        uint32_t at = (uint32_t)f->nu, k = 0;
        if (t->attr == FN_FA_ID) {
            for (size_t i = 0; i < t->nvalues; i++) {
                uint32_t doc;
                rc = idx_id_get(r, s->txn, t->values[i], strlen(t->values[i]), &doc, eb);
                if (rc == FN_ENOTFOUND) continue;   /* another shard's, or no document's */
                if (rc) return rc;
                if ((rc = u32_push(f, doc, NULL))) return rc;
                k++;
            }
            c.est = k;
        } else {
            const idx_attr *a = &r->attrs.a[t->attr == FN_FA_VERTICAL ? IDX_ATTR_VERTICAL
                                            : t->attr == FN_FA_LANG   ? IDX_ATTR_LANG
                                                                      : IDX_ATTR_LABELS];
            c.est = t->all ? docs : 0;
            for (size_t i = 0; i < t->nvalues; i++) {
                int64_t code = idx_attr_find(a, t->values[i], strlen(t->values[i]));
                if (code < 0) {
                    if (t->all) c.none = 1;
                    continue;
                }
                uint64_t cnt = a->voff[code + 1] - a->voff[code];
                if (t->all) { if (cnt < c.est) c.est = cnt; }
                else c.est += cnt;
                if ((rc = u32_push(f, (uint32_t)code, NULL))) return rc;
                k++;
            }
            if (c.none || (!t->all && k == 0)) c.est = 0;
            if (c.est > docs) c.est = docs;
            c.a = a;
            c.bitsok = a->vbits != NULL;
            for (uint32_t i = 0; i < k && c.bitsok; i++) c.bitsok = a->vbits[f->u32[at + i]] != NULL;
        }
        if (k) qsort(f->u32 + at, k, sizeof *f->u32, u32_cmp);   /* u32 may be NULL when k is 0 (UB for qsort) */
        /* ids may repeat nothing (the parser dropped repeats; two ids are two documents) */
        c.set = (uint32_t *)(uintptr_t)at;
        c.nset = k;
        if (k == 0 && !t->all) c.none = 1;
        break;
    }
    case FN_F_RANGE:
        if (t->attr == FN_FA_POPULARITY) {
            float lo = isinf(t->lo) ? -INFINITY : (float)t->lo, hi = isinf(t->hi) ? INFINITY : (float)t->hi;
            if (t->lo_open) lo = nextafterf(lo, INFINITY);
            if (t->hi_open) hi = nextafterf(hi, -INFINITY);
            c.flo = lo;
            c.fhi = hi;
            uint32_t n = (uint32_t)docs;
            c.plo = pop_lower(r, r->attrs.pop.perm, n, lo);
            c.phi = lo <= hi ? pop_upper(r, r->attrs.pop.perm, n, hi) : c.plo;
            if (c.phi < c.plo) c.phi = c.plo;
        } else {
            double lo = t->lo, hi = t->hi;
            int64_t ilo = lo <= -1e15 ? INT64_MIN + 1 : (int64_t)ceil(lo);
            int64_t ihi = hi >= 1e15 ? INT64_MAX : (int64_t)floor(hi);
            if (t->lo_open && !(lo <= -1e15) && (double)ilo == lo) ilo++;
            if (t->hi_open && !(hi >= 1e15) && (double)ihi == hi) ihi--;
            if (ilo <= IDX_NO_TIME) ilo = IDX_NO_TIME + 1;
            c.ilo = ilo;
            c.ihi = ihi;
            uint32_t n = r->attrs.pub.n;
            c.plo = pub_lower(r, r->attrs.pub.perm, n, ilo);
            c.phi = ilo <= ihi ? pub_upper(r, r->attrs.pub.perm, n, ihi) : c.plo;
            if (c.phi < c.plo) c.phi = c.plo;
        }
        c.est = c.phi - c.plo;
        break;
    }
    f->n[me] = c;
    *out = me;
    return 0;
}

static int node_match(const idx_filter *f, const fcnode *c, uint32_t d)
{
    const idx_reader_t *r = f->r;
    switch (c->kind) {
    case FN_F_AND:
        for (uint32_t i = 0; i < c->nkids; i++)
            if (!node_match(f, &f->n[c->kids[i]], d)) return 0;
        return 1;
    case FN_F_OR:
        for (uint32_t i = 0; i < c->nkids; i++)
            if (node_match(f, &f->n[c->kids[i]], d)) return 1;
        return 0;
    case FN_F_NOT:
        return !node_match(f, &f->n[c->kids[0]], d);
    case FN_F_VALUES: {
        if (c->none) return 0;
        if (c->attr == FN_FA_ID) return contains(c->set, c->nset, d);
        const idx_attr *a = c->a;
        if (!a->off) return 0;
        if (c->bitsok) {
            uint32_t hit = 0;
            for (uint32_t j = 0; j < c->nset; j++) hit += (uint32_t)(a->vbits[c->set[j]][d >> 6] >> (d & 63)) & 1;
            return c->all ? hit == c->nset : hit > 0;
        }
        if (a->one && !c->all) {
            uint32_t x = a->one[d];
            return x != UINT32_MAX && contains(c->set, c->nset, x);
        }
        const uint32_t *dc = a->code + a->off[d];
        uint32_t dn = a->off[d + 1] - a->off[d], i = 0, j = 0, hit = 0;
        /* both ascending: a merge */
        while (i < dn && j < c->nset) {
            if (dc[i] < c->set[j]) i++;
            else if (dc[i] > c->set[j]) { if (c->all) return 0; j++; }
            else { hit++; i++; j++; }
        }
        return c->all ? hit == c->nset : hit > 0;
    }
    case FN_F_RANGE:
        if (c->attr == FN_FA_POPULARITY) return r->pop[d] >= c->flo && r->pop[d] <= c->fhi;
        return r->pub[d] >= c->ilo && r->pub[d] <= c->ihi;   /* IDX_NO_TIME < ilo */
    }
    return 0;
}

int idx_filter_match(const idx_filter *f, uint32_t d)
{
    return node_match(f, &f->n[f->root], d);
}

uint64_t idx_filter_estimate(const idx_filter *f)
{
    return f->n[f->root].est;
}

int idx_filter_compile(idx_searcher_t *s, const fn_fnode *root, idx_filter **out, fn_errbuf *eb)
{
    idx_filter *f = *out;
    if (!f) {
        if (!(f = calloc(1, sizeof *f))) return fn_seterr(eb, -ENOMEM, "out of memory");
        *out = f;
    }
    f->r = s->r;
    f->tree = root;
    f->nn = f->nu = 0;
    f->listed = 0;
    f->bitsdone = 0;
    f->npass = 0;
    int rc = compile(s, f, root, &f->root, eb);
    if (rc == -ENOMEM) return fn_seterr(eb, rc, "out of memory");
    if (rc) return rc;
    /* offsets into u32 -> pointers, now that it no longer moves */
    for (size_t i = 0; i < f->nn; i++) {
        fcnode *c = &f->n[i];
        if (c->kind == FN_F_VALUES) c->set = f->u32 + (uintptr_t)c->set;
        else if (c->kind != FN_F_RANGE) c->kids = f->u32 + (uintptr_t)c->kids;
    }
    return 0;
}

/* Set in b the bits of node c's documents (a leaf: VALUES, RANGE). */
static void leaf_bits(const idx_filter *f, const fcnode *c, uint64_t *b)
{
    const idx_reader_t *r = f->r;
    if (c->kind == FN_F_VALUES) {
        if (c->none) return;
        if (c->attr == FN_FA_ID) {
            for (uint32_t i = 0; i < c->nset; i++) b[c->set[i] >> 6] |= 1ull << (c->set[i] & 63);
            return;
        }
        const idx_attr *a = c->a;
        /* all of: the rarest value's documents, then the others' bitmaps or
         * a test of each; any of: every value's */
        uint32_t from = 0, to = c->nset;
        if (c->all && c->nset) {
            uint32_t m = 0;
            for (uint32_t i = 1; i < c->nset; i++)
                if (a->voff[c->set[i] + 1] - a->voff[c->set[i]] < a->voff[c->set[m] + 1] - a->voff[c->set[m]]) m = i;
            from = m;
            to = m + 1;
        }
        size_t words = (size_t)r->info.docs / 64 + 1;
        if (c->bitsok) {
            /* the values' bitmaps, word by word */
            for (size_t w = 0; w < words; w++) {
                uint64_t x = c->all ? ~0ull : 0;
                for (uint32_t i = 0; i < c->nset; i++) x = c->all ? x & a->vbits[c->set[i]][w] : x | a->vbits[c->set[i]][w];
                b[w] |= x;
            }
            return;
        }
        for (uint32_t i = from; i < to; i++)
            for (uint32_t j = a->voff[c->set[i]]; j < a->voff[c->set[i] + 1]; j++) {
                uint32_t d = a->vdocs[j];
                if (!c->all || c->nset == 1 || node_match(f, c, d)) b[d >> 6] |= 1ull << (d & 63);
            }
        return;
    }
    const idx_rangeidx *x = c->attr == FN_FA_POPULARITY ? &r->attrs.pop : &r->attrs.pub;
    const uint32_t *perm = x->perm;
    uint32_t from = c->plo, to = c->phi;
    if (x->cum && to > from) {
        /* the whole runs inside [plo, phi) as two prefixes' difference */
        uint32_t jb = (uint32_t)(((uint64_t)from * IDX_RANGE_BUCKETS + x->n - 1) / x->n);   /* first run start >= plo */
        uint32_t je = (uint32_t)((uint64_t)to * IDX_RANGE_BUCKETS / x->n);                 /* last run start <= phi */
        while (jb > 0 && (uint64_t)(jb - 1) * x->n / IDX_RANGE_BUCKETS >= from) jb--;
        while ((uint64_t)jb * x->n / IDX_RANGE_BUCKETS < from) jb++;
        while (je < IDX_RANGE_BUCKETS && (uint64_t)(je + 1) * x->n / IDX_RANGE_BUCKETS <= to) je++;
        while (je > 0 && (uint64_t)je * x->n / IDX_RANGE_BUCKETS > to) je--;
        if (jb < je) {
            uint32_t sb = (uint32_t)((uint64_t)jb * x->n / IDX_RANGE_BUCKETS);
            uint32_t se = (uint32_t)((uint64_t)je * x->n / IDX_RANGE_BUCKETS);
            const uint64_t *cb = x->cum + (size_t)jb * x->words, *ce = x->cum + (size_t)je * x->words;
            for (size_t w = 0; w < x->words; w++) b[w] |= ce[w] & ~cb[w];
            for (uint32_t i = from; i < sb; i++) b[perm[i] >> 6] |= 1ull << (perm[i] & 63);
            for (uint32_t i = se; i < to; i++) b[perm[i] >> 6] |= 1ull << (perm[i] & 63);
            return;
        }
    }
    for (uint32_t i = from; i < to; i++) b[perm[i] >> 6] |= 1ull << (perm[i] & 63);
}

static int is_leaf(const fcnode *c) { return c->kind == FN_F_VALUES || c->kind == FN_F_RANGE; }

/* Set in f->bits the bits of node c's documents (c->est small): exactly
 * (returns 1) or a superset (0: each must still be tested). An AND starts
 * from its smallest kid and intersects the leaves (and NOT leaves) that
 * are not too large with it, set-wise, through f->tmp; the rest are tested
 * per document. Set-wise, a range costs its documents' bits in a bitmap
 * that stays in cache, where a test per document reads the attribute of
 * each candidate (a cache miss each). */
static int collect(idx_filter *f, const fcnode *c)
{
    uint64_t ndocs = f->r->info.docs;
    size_t words = (size_t)ndocs / 64 + 1;
    switch (c->kind) {
    case FN_F_AND: {
        const fcnode *best = NULL;
        for (uint32_t i = 0; i < c->nkids; i++) {
            const fcnode *k = &f->n[c->kids[i]];
            if ((k->kind != FN_F_NOT || is_leaf(&f->n[k->kids[0]])) && (!best || k->est < best->est)) best = k;
        }
        if (!best) return 0;   /* not reached: such an AND is never listed */
        int exact = collect(f, best);
        for (uint32_t i = 0; i < c->nkids; i++) {
            const fcnode *k = &f->n[c->kids[i]];
            if (k == best) continue;
            int neg = k->kind == FN_F_NOT;
            const fcnode *leaf = neg ? &f->n[k->kids[0]] : k;
            /* set-wise (measured: a range 4 times the smallest kid's
             * documents costs less as bits than as a test of each of them,
             * which reads each one's value out of cache) */
            if (!is_leaf(leaf) || leaf->est > ndocs / 4) {
                exact = 0;
                continue;
            }
            memset(f->tmp, 0, words * sizeof *f->tmp);
            leaf_bits(f, leaf, f->tmp);
            for (size_t w = 0; w < words; w++) f->bits[w] &= neg ? ~f->tmp[w] : f->tmp[w];
        }
        return exact;
    }
    case FN_F_OR: {
        int exact = 1;
        for (uint32_t i = 0; i < c->nkids; i++) exact &= collect(f, &f->n[c->kids[i]]);
        return exact;
    }
    case FN_F_NOT: {
        /* listed only when its kid is a clause (else its estimate is every
         * document): every document but the clause's */
        const fcnode *k = &f->n[c->kids[0]];
        if (!is_leaf(k)) return 0;
        memset(f->tmp, 0, words * sizeof *f->tmp);
        leaf_bits(f, k, f->tmp);
        for (size_t w = 0; w < words; w++) f->bits[w] |= ~f->tmp[w];
        if (ndocs % 64) f->bits[words - 1] &= (1ull << (ndocs % 64)) - 1;
        else f->bits[words - 1] = 0;
        return 1;
    }
    case FN_F_VALUES:
    case FN_F_RANGE:
        leaf_bits(f, c, f->bits);
        return 1;
    }
    return 0;
}

static int bits_ready(idx_filter *f)
{
    size_t words = (size_t)f->r->info.docs / 64 + 1;
    if (idx_grow((void **)&f->bits, &f->bitscap, words, sizeof *f->bits)) return -ENOMEM;
    memset(f->bits, 0, words * sizeof *f->bits);
    return 0;
}

int idx_filter_drive(idx_filter *f, const uint64_t **bits)
{
    uint64_t ndocs = f->r->info.docs;
    if (f->listed) {
        *bits = f->bits;
        return 1;
    }
    if (idx_filter_estimate(f) > ndocs / IDX_FILTER_DRIVE_DIV) return 0;
    size_t words = (size_t)ndocs / 64 + 1;
    if (idx_grow((void **)&f->bits, &f->bitscap, words, sizeof *f->bits)) return -ENOMEM;
    /* the cache (attrs.h): a copy of the bitmap this filter gave before */
    struct idx_fcache *fc = f->r->attrs.fcache;
    size_t klen = fn_ftree_print(f->tree, f->key, sizeof f->key);
    int keyed = fc && klen < sizeof f->key;
    if (keyed) {
        int hit = 0;
        pthread_mutex_lock(&fc->mu);
        for (int i = 0; i < IDX_FCACHE_N && !hit; i++)
            if (fc->e[i].key && strcmp(fc->e[i].key, f->key) == 0) {
                memcpy(f->bits, fc->e[i].bits, words * sizeof *f->bits);
                fc->e[i].used = ++fc->clock;
                hit = 1;
            }
        pthread_mutex_unlock(&fc->mu);
        if (hit) {
            f->listed = 1;
            *bits = f->bits;
            return 1;
        }
    }
    if (bits_ready(f) ||
        idx_grow((void **)&f->tmp, &f->tmpcap, (size_t)ndocs / 64 + 1, sizeof *f->tmp))
        return -ENOMEM;
    if (!collect(f, &f->n[f->root])) {
        /* a superset: each of its documents tested, the others cleared */
        size_t words = (size_t)ndocs / 64 + 1;
        for (size_t w = 0; w < words; w++) {
            uint64_t x = f->bits[w];
            while (x) {
                uint32_t d = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(x));
                x &= x - 1;
                if (!idx_filter_match(f, d)) f->bits[w] &= ~(1ull << (d & 63));
            }
        }
    }
    if (keyed) {
        /* into the least recently used entry (a failed copy just skips caching) */
        char *k = strdup(f->key);
        uint64_t *b = malloc(words * sizeof *b);
        if (k && b) {
            memcpy(b, f->bits, words * sizeof *b);
            pthread_mutex_lock(&fc->mu);
            int v = 0;
            for (int i = 1; i < IDX_FCACHE_N; i++)
                if (fc->e[i].used < fc->e[v].used) v = i;
            char *ok = fc->e[v].key;
            uint64_t *ob = fc->e[v].bits;
            fc->e[v].key = k;
            fc->e[v].bits = b;
            fc->e[v].used = ++fc->clock;
            pthread_mutex_unlock(&fc->mu);
            free(ok);
            free(ob);
        } else {
            free(k);
            free(b);
        }
    }
    f->listed = 1;
    *bits = f->bits;
    return 1;
}

int idx_filter_bits(idx_filter *f, const uint64_t **bits, size_t *npass)
{
    const uint64_t *b;
    if (f->bitsdone) {
        *bits = f->bits;
        *npass = f->npass;
        return 0;
    }
    int rc = idx_filter_drive(f, &b);
    if (rc < 0) return rc;
    size_t k = 0;
    if (rc) {
        size_t words = (size_t)f->r->info.docs / 64 + 1;
        for (size_t w = 0; w < words; w++) k += (size_t)__builtin_popcountll(f->bits[w]);
    } else {
        if (bits_ready(f)) return -ENOMEM;
        for (uint32_t d = 0; d < f->r->info.docs; d++)
            if (idx_filter_match(f, d)) {
                f->bits[d >> 6] |= 1ull << (d & 63);
                k++;
            }
    }
    f->npass = k;
    f->bitsdone = 1;
    *bits = f->bits;
    *npass = f->npass;
    return 0;
}

void idx_filter_free(idx_filter *f)
{
    if (!f) return;
    free(f->n);
    free(f->u32);
    free(f->bits);
    free(f->tmp);
    free(f);
}
