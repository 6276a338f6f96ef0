/* qmatch.c - structured queries on a shard (qmatch.h). */
#include "qmatch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fn_arena.h"
#include "parse.h"
#include "reader_int.h"
#include "search_int.h"

typedef struct qm_node {
    uint8_t kind, occur, field;     /* fn_qkind, fn_qoccur, fn_qfield */
    uint32_t nkids;
    struct qm_node *kids;           /* BOOL */
    uint32_t nt;                    /* leaf: its terms; 0 = neutral (analysed to nothing) */
    uint32_t *slot;                 /* leaf: cursor slots (s->cur, s->qt) */
    uint32_t *rel;                  /* leaf: position relative to the first term */
} qm_node;

/* One term's decoded positions value (the block its cursor stands in). */
typedef struct qm_pcache {
    uint64_t gen;                   /* s->gen when filled: valid in that transaction only */
    uint32_t termid, block, count, decoded;
    const uint8_t *data;
    size_t size, used;
    uint32_t *buf; size_t cap;
} qm_pcache;

typedef struct idx_qm idx_qm;
struct idx_qm {
    fn_arena a;                     /* the tree, reset per query */
    qm_node *root;
    const fn_qnode *src;            /* the parse tree, kept for the excluded words' pass */
    const char *print;
    int mode_all;
    qm_pcache *pc; size_t pccap;    /* by cursor slot */
    uint32_t *lp; size_t lpcap;     /* a phrase's absolute positions, term after term */
    uint32_t (*tok)[2]; size_t ntok, tokcap;   /* a leaf's analysed tokens: (slot, position) */
    int neg;                        /* analysing excluded words */
    uint32_t base;                  /* position offset of the next leaf in s->qseq */
    uint32_t maxpos;
};

static idx_qm *qm_get(idx_searcher_t *s)
{
    if (!s->qm) {
        s->qm = calloc(1, sizeof *s->qm);
        if (s->qm) fn_arena_init(&s->qm->a);
    }
    return s->qm;
}

void idx_qm_free(idx_searcher_t *s)
{
    idx_qm *m = s->qm;
    if (!m) return;
    fn_arena_free(&m->a);
    for (size_t i = 0; i < m->pccap; i++) free(m->pc[i].buf);
    free(m->pc);
    free(m->lp);
    free(m->tok);
    free(m);
    s->qm = NULL;
}

const char *idx_qm_tree(const idx_searcher_t *s)
{
    return s->structured && s->qm && s->qm->print ? s->qm->print : "";
}

/* ---- compiling: words -> terms ---- */

static int tok_cb(void *ud, const char *term, size_t len, uint32_t pos)
{
    idx_searcher_t *s = ud;
    idx_qm *m = s->qm;
    uint32_t slot;
    int rc = idx_qterm_add(s, term, len, m->base + pos, m->neg ? IDX_QT_EXCLUDED : IDX_QT_QUERY, &slot);
    if (rc == 1) return 0;          /* not a term (too long) */
    if (rc) return rc;
    if (idx_grow((void **)&m->tok, &m->tokcap, m->ntok + 1, sizeof *m->tok)) return -ENOMEM;
    m->tok[m->ntok][0] = slot;
    m->tok[m->ntok][1] = pos;
    m->ntok++;
    if (pos > m->maxpos) m->maxpos = pos;
    return 0;
}

/* The words of leaf n (a term, or a phrase's words joined by spaces) into
 * terms; positions for s->qseq continue from the previous leaf's, two apart
 * (so two leaves never look adjacent to the proximity features). */
static int leaf_analyse(idx_searcher_t *s, const fn_qnode *src, qm_node *n)
{
    idx_qm *m = s->qm;
    m->ntok = 0;
    m->maxpos = 0;
    int rc;
    if (src->kind == FN_Q_TERM) {
        rc = idx_analyze(s->an, src->word, strlen(src->word), tok_cb, s);
    } else {
        size_t len = 0;
        for (size_t i = 0; i < src->nwords; i++) len += strlen(src->words[i]) + 1;
        char *text = fn_arena_alloc(&m->a, len + 1), *p = text;
        if (!text) return -ENOMEM;
        for (size_t i = 0; i < src->nwords; i++) {
            size_t l = strlen(src->words[i]);
            memcpy(p, src->words[i], l);
            p[l] = ' ';
            p += l + 1;
        }
        *p = '\0';
        rc = idx_analyze(s->an, text, len, tok_cb, s);
    }
    if (rc) return rc < 0 ? rc : -ENOMEM;
    n->nt = (uint32_t)m->ntok;
    if (m->ntok) {
        m->base += m->maxpos + 2;
        n->slot = fn_arena_alloc(&m->a, m->ntok * sizeof *n->slot);
        n->rel = fn_arena_alloc(&m->a, m->ntok * sizeof *n->rel);
        if (!n->slot || !n->rel) return -ENOMEM;
        for (size_t i = 0; i < m->ntok; i++) {
            n->slot[i] = m->tok[i][0];
            n->rel[i] = m->tok[i][1] - m->tok[0][1];
        }
    }
    return 0;
}

/* The tree's shape into qm nodes; leaves analysed in pass `neg` (0: the
 * positive ones, 1: those under a NOT). */
static int compile(idx_searcher_t *s, const fn_qnode *src, qm_node *n, int under_not, int pass)
{
    if (pass == 0) {
        n->kind = (uint8_t)src->kind;
        n->occur = (uint8_t)src->occur;
        n->field = (uint8_t)src->field;
    }
    if (src->kind != FN_Q_BOOL)
        return under_not == pass ? leaf_analyse(s, src, n) : 0;
    if (pass == 0) {
        n->nkids = (uint32_t)src->nkids;
        n->kids = fn_arena_calloc(&s->qm->a, src->nkids, sizeof *n->kids);
        if (!n->kids) return -ENOMEM;
    }
    for (size_t i = 0; i < src->nkids; i++) {
        int rc = compile(s, src->kids[i], &n->kids[i], under_not || src->kids[i]->occur == FN_Q_NOT, pass);
        if (rc) return rc;
    }
    return 0;
}

static int count_cb(void *ud, const char *term, size_t len, uint32_t pos)
{
    (void)term, (void)len, (void)pos;
    ++*(size_t *)ud;
    return 0;
}

/* Does a word of bag t analyse to more than one term? */
static int bag_splits(idx_searcher_t *s, const fn_qnode *t)
{
    size_t n = t->kind == FN_Q_TERM ? 1 : t->nkids;
    for (size_t i = 0; i < n; i++) {
        const char *w = t->kind == FN_Q_TERM ? t->word : t->kids[i]->word;
        size_t nt = 0;
        idx_analyze(s->an, w, strlen(w), count_cb, &nt);
        if (nt > 1) return 1;
    }
    return 0;
}

/* The words of a bag's leaves joined by spaces, into m->a (NULL: out of
 * memory). */
static const char *bag_words(idx_searcher_t *s, const fn_qnode *t)
{
    size_t n = t->kind == FN_Q_TERM ? 1 : t->nkids, len = 0;
    for (size_t i = 0; i < n; i++) len += strlen(t->kind == FN_Q_TERM ? t->word : t->kids[i]->word) + 1;
    char *out = fn_arena_alloc(&s->qm->a, len + 1), *p = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *w = t->kind == FN_Q_TERM ? t->word : t->kids[i]->word;
        size_t l = strlen(w);
        memcpy(p, w, l);
        p[l] = ' ';
        p += l + 1;
    }
    *p = '\0';
    return out;
}

int idx_qm_prepare(idx_searcher_t *s, const char *text, int mode_all, int *structured, const char **bag_text,
                   int *bag_all)
{
    *structured = 0;
    *bag_text = NULL;
    *bag_all = mode_all;
    idx_qm *m = qm_get(s);
    if (!m) return fn_seterr(s->eb, -ENOMEM, "out of memory");
    fn_arena_reset(&m->a);
    m->root = NULL;
    m->src = NULL;
    m->print = NULL;
    m->base = 0;
    m->neg = 0;
    fn_qparse_opts o;
    fn_qparse_defaults(&o);
    o.mode_all = mode_all;
    fn_qnode *tree;
    int rc = fn_qparse(text, strlen(text), &o, &m->a, &tree, s->eb);
    if (rc) return rc;
    /* a bag of words keeps the fast path: OR (MaxScore) for SHOULD words,
     * AND (leapfrog) for MUST words (mode all, or +a +b, a AND b). Its words
     * are analysed, not the text, so an operator is never a term. In mode
     * any a MUST word that splits (+x-ray) wants any of its tokens, which
     * AND of all the terms would not give: such a bag stays a tree. */
    int all_must = 0;
    /* (the words are analysed twice only in that rare case: +a +b in mode any) */
    if (fn_qtree_is_bag(tree, &all_must) &&
        (tree->kind == FN_Q_TERM || all_must == !!mode_all || !bag_splits(s, tree))) {
        const char *words = bag_words(s, tree);
        if (!words) return fn_seterr(s->eb, -ENOMEM, "out of memory");
        *bag_text = words;
        *bag_all = tree->kind == FN_Q_TERM ? !!mode_all : all_must;
        return 0;
    }
    m->mode_all = !!mode_all;
    size_t need = fn_qtree_print(tree, NULL, 0);
    char *pr = fn_arena_alloc(&m->a, need + 1);
    qm_node *root = fn_arena_calloc(&m->a, 1, sizeof *root);
    if (!pr || !root) return fn_seterr(s->eb, -ENOMEM, "out of memory");
    fn_qtree_print(tree, pr, need + 1);
    m->print = pr;
    m->src = tree;
    if ((rc = compile(s, tree, root, 0, 0)))
        return rc == -ENOMEM ? fn_seterr(s->eb, rc, "out of memory") : rc;
    m->root = root;
    *structured = 1;
    return 0;
}

int idx_qm_negatives(idx_searcher_t *s)
{
    idx_qm *m = s->qm;
    if (!s->structured || !m || !m->root) return 0;
    m->neg = 1;
    int rc = compile(s, m->src, m->root, 0, 1);
    m->neg = 0;
    return rc == -ENOMEM ? fn_seterr(s->eb, rc, "out of memory") : rc;
}

/* ---- matching ---- */

/* The positions of slot's current posting in field f (0 title, 1 body),
 * ascending, into out[0, tf). Reads and decodes the block's positions value
 * once per block (pc), up to the posting's last value. */
static int positions(idx_searcher_t *s, uint32_t slot, int f, uint32_t *out)
{
    idx_qm *m = s->qm;
    const idx_reader_t *r = s->r;
    cursor *c = &s->cur[slot];
    if (slot >= m->pccap) {
        size_t cap = m->pccap ? m->pccap : 8;
        while (cap <= slot) cap *= 2;
        qm_pcache *pc = realloc(m->pc, cap * sizeof *pc);
        if (!pc) return fn_seterr(s->eb, -ENOMEM, "out of memory");
        memset(pc + m->pccap, 0, (cap - m->pccap) * sizeof *pc);
        m->pc = pc;
        m->pccap = cap;
    }
    qm_pcache *p = &m->pc[slot];
    int rc;
    if (p->gen != s->gen || p->termid != c->termid || p->block != c->block || !p->data) {
        p->data = NULL;
        if ((rc = idx_positions_raw(r, s->txn, c->termid, c->block, &p->data, &p->size, &p->count, s->eb)))
            return rc;
        p->gen = s->gen;
        p->termid = c->termid;
        p->block = c->block;
        p->decoded = 0;
        p->used = 0;
    }
    uint32_t tf0 = c->tf[0][c->pos], tf1 = c->tf[1][c->pos];
    uint32_t off = idx_cursor_posoff(c);
    uint64_t end = (uint64_t)off + tf0 + tf1;
    if (end > p->count)
        return fn_seterr(s->eb, FN_ECORRUPT, "positions of term id %u, block %u: %u positions, a posting "
                         "needs %llu", c->termid, c->block, p->count, (unsigned long long)end);
    if (idx_grow((void **)&p->buf, &p->cap, p->count ? p->count : 1, sizeof *p->buf))
        return fn_seterr(s->eb, -ENOMEM, "out of memory");
    while (p->decoded < end) {
        uint32_t n = p->count - p->decoded < r->block_size ? p->count - p->decoded : r->block_size;
        size_t u = r->codec->decode(p->data + p->used, p->size - p->used, n, p->buf + p->decoded);
        if (!u)
            return fn_seterr(s->eb, FN_ECORRUPT, "positions of term id %u, block %u: cannot decode",
                             c->termid, c->block);
        p->used += u;
        p->decoded += n;
    }
    const uint32_t *g = p->buf + off + (f ? tf0 : 0);
    uint32_t n = f ? tf1 : tf0;
    uint64_t at = 0;
    for (uint32_t j = 0; j < n; j++) {
        at += g[j];
        if (at > UINT32_MAX || (j && g[j] == 0))
            return fn_seterr(s->eb, FN_ECORRUPT, "positions of term id %u, block %u: not ascending",
                             c->termid, c->block);
        out[j] = (uint32_t)at;
    }
    return 0;
}

static int has_pos(const uint32_t *v, uint32_t n, uint64_t x)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && v[lo] == x;
}

/* A phrase leaf in field f of document d (every term's cursor stands on d):
 * 1 if its terms stand at their relative positions, 0 if not, or an error. */
static int phrase_in(idx_searcher_t *s, const qm_node *n, int f)
{
    idx_qm *m = s->qm;
    size_t total = 0;
    for (uint32_t i = 0; i < n->nt; i++) {
        const cursor *c = &s->cur[n->slot[i]];
        if (!c->tf[f][c->pos]) return 0;
        total += c->tf[f][c->pos];
    }
    if (idx_grow((void **)&m->lp, &m->lpcap, total, sizeof *m->lp))
        return fn_seterr(s->eb, -ENOMEM, "out of memory");
    /* lp: term i's positions at lp + at[i]; at[] lives after them */
    size_t at = 0;
    uint32_t *first = m->lp;
    uint32_t nfirst = s->cur[n->slot[0]].tf[f][s->cur[n->slot[0]].pos];
    int rc;
    for (uint32_t i = 0; i < n->nt; i++) {
        const cursor *c = &s->cur[n->slot[i]];
        if ((rc = positions(s, n->slot[i], f, m->lp + at))) return rc;
        at += c->tf[f][c->pos];
    }
    for (uint32_t j = 0; j < nfirst; j++) {
        uint64_t p0 = first[j];
        int ok = 1;
        size_t off = nfirst;
        for (uint32_t i = 1; i < n->nt && ok; i++) {
            const cursor *c = &s->cur[n->slot[i]];
            uint32_t cnt = c->tf[f][c->pos];
            ok = has_pos(m->lp + off, cnt, p0 + n->rel[i]);
            off += cnt;
        }
        if (ok) return 1;
    }
    return 0;
}

enum { QM_NO = 0, QM_YES = 1, QM_NEUTRAL = 2 };

/* A leaf: a phrase where its terms stand in order in one field; a word the
 * analyser split in several terms ("x-ray") as the request's default
 * operator joins them, as a plain query's words (any of them; all in mode
 * all); the field, if any, must hold them. */
static int leaf_match(idx_searcher_t *s, const qm_node *n, uint32_t d)
{
    if (!n->nt) return QM_NEUTRAL;
    size_t first_excluded = s->nq + s->nu;
    int phrase = n->kind == FN_Q_PHRASE, need_all = phrase || s->qm->mode_all;
    int f0 = n->field == FN_QF_BODY ? 1 : 0, f1 = n->field == FN_QF_TITLE ? 0 : 1;
    uint32_t present = 0;
    for (uint32_t i = 0; i < n->nt; i++) {
        cursor *c = &s->cur[n->slot[i]];
        if (n->slot[i] >= first_excluded) {
            int rc = idx_cursor_seek(s, c, d);
            if (rc) return rc;
        }
        int in = !c->done && c->doc == d;
        if (in && !phrase) {   /* in the leaf's field */
            in = 0;
            for (int f = f0; f <= f1; f++) in |= c->tf[f][c->pos] > 0;
        }
        if (!in && need_all) return QM_NO;
        present += (uint32_t)in;
    }
    if (!phrase) return present ? QM_YES : QM_NO;
    for (int f = f0; f <= f1; f++) {
        int rc = phrase_in(s, n, f);
        if (rc) return rc;   /* QM_YES or an error */
    }
    return QM_NO;
}

/* A BOOL matches when every MUST kid does, no NOT kid does and, without a
 * MUST kid, a SHOULD kid does; neutral kids are left out, and a BOOL left
 * with nothing is neutral itself. */
static int node_match(idx_searcher_t *s, const qm_node *n, uint32_t d)
{
    if (n->kind != FN_Q_BOOL) return leaf_match(s, n, d);
    int must = 0, should = 0, any_should = 0;
    for (uint32_t i = 0; i < n->nkids; i++) {
        const qm_node *k = &n->kids[i];
        if (k->occur == FN_Q_SHOULD && should) continue;   /* one is enough */
        int r = node_match(s, k, d);
        if (r < 0) return r;
        if (r == QM_NEUTRAL) continue;
        switch (k->occur) {
        case FN_Q_MUST:
            if (r == QM_NO) return QM_NO;
            must = 1;
            break;
        case FN_Q_NOT:
            if (r == QM_YES) return QM_NO;
            break;
        default:
            any_should = 1;
            should |= r == QM_YES;
            break;
        }
    }
    if (must) return QM_YES;
    return any_should ? should : QM_NEUTRAL;
}

int idx_qm_match(idx_searcher_t *s, uint32_t d)
{
    int r = node_match(s, s->qm->root, d);
    return r < 0 ? r : r == QM_YES;
}
