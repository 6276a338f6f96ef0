/* topology.c - parse and validate the coordinator's topology file. */
#include "topology.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void coord_topology_free(coord_topology *t)
{
    if (!t) return;
    for (uint32_t i = 0; i < t->nshards; i++) {
        for (uint32_t r = 0; r < t->shards[i].nreplicas; r++) free(t->shards[i].replicas[r]);
        free(t->shards[i].replicas);
    }
    free(t->shards);
    t->shards = NULL;
    t->nshards = 0;
}

int coord_addr_check(const char *addr, fn_errbuf *eb)
{
    size_t n = strlen(addr);
    if (n == 0 || n >= COORD_MAX_ADDR)
        return fn_seterr(eb, FN_EINVAL, "address '%s' is empty or too long", addr);
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr)
        return fn_seterr(eb, FN_EINVAL, "address '%s' is not HOST:PORT", addr);
    if (addr[0] == '[') {   /* [v6]:port */
        if (colon[-1] != ']' || colon - addr < 3)
            return fn_seterr(eb, FN_EINVAL, "address '%s': bad [IPv6] host", addr);
    } else if (memchr(addr, ':', (size_t)(colon - addr))) {
        return fn_seterr(eb, FN_EINVAL, "address '%s': IPv6 hosts need [brackets]", addr);
    }
    const char *p = colon + 1;
    if (!*p) return fn_seterr(eb, FN_EINVAL, "address '%s' has no port", addr);
    long port = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || port > 65535)
            return fn_seterr(eb, FN_EINVAL, "address '%s' has a bad port", addr);
        port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535)
        return fn_seterr(eb, FN_EINVAL, "address '%s': port out of range 1..65535", addr);
    return 0;
}

/* Split the next whitespace-separated token of [*p, end); NULL at the end. */
static const char *next_tok(const char **p, const char *end, size_t *tlen)
{
    const char *s = *p;
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\r')) s++;
    if (s == end) { *p = s; return NULL; }
    const char *e = s;
    while (e < end && *e != ' ' && *e != '\t' && *e != '\r') e++;
    *tlen = (size_t)(e - s);
    *p = e;
    return s;
}

int coord_topology_parse(const char *text, size_t len, const char *name,
                         coord_topology *out, fn_errbuf *eb)
{
    int rc = 0;
    coord_topology t = {0, NULL};
    /* Shards may be declared in any order: collect into a sparse table
     * sized to the highest number seen, then check it is dense. */
    uint32_t cap = 0;
    const char *p = text, *end = text + len;
    uint32_t lineno = 0;

    memset(out, 0, sizeof *out);
    while (p < end) {
        lineno++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *hash = memchr(p, '#', (size_t)(le - p));
        const char *ce = hash ? hash : le;
        const char *q = p;
        p = nl ? nl + 1 : end;

        if (memchr(q, '\0', (size_t)(le - q))) {
            rc = fn_seterr(eb, FN_EPARSE, "%s:%u: NUL byte in line", name, lineno);
            goto fail;
        }
        size_t tl;
        const char *tok = next_tok(&q, ce, &tl);
        if (!tok) continue;   /* blank or comment-only line */
        if (tl != 5 || memcmp(tok, "shard", 5) != 0) {
            rc = fn_seterr(eb, FN_EPARSE, "%s:%u: unknown directive '%.*s' (expected 'shard N ADDR...')",
                           name, lineno, (int)(tl > 64 ? 64 : tl), tok);
            goto fail;
        }
        tok = next_tok(&q, ce, &tl);
        if (!tok) {
            rc = fn_seterr(eb, FN_EPARSE, "%s:%u: 'shard' needs a shard number", name, lineno);
            goto fail;
        }
        unsigned long num = 0;
        for (size_t i = 0; i < tl; i++) {
            if (tok[i] < '0' || tok[i] > '9' || num >= COORD_MAX_SHARDS) {
                rc = fn_seterr(eb, FN_EPARSE, "%s:%u: bad shard number '%.*s' (0..%d)",
                               name, lineno, (int)(tl > 64 ? 64 : tl), tok, COORD_MAX_SHARDS - 1);
                goto fail;
            }
            num = num * 10 + (unsigned long)(tok[i] - '0');
        }
        if (num >= COORD_MAX_SHARDS) {
            rc = fn_seterr(eb, FN_EPARSE, "%s:%u: shard number %lu too large (max %d)",
                           name, lineno, num, COORD_MAX_SHARDS - 1);
            goto fail;
        }
        if (num >= cap) {
            uint32_t ncap = (uint32_t)num + 1;
            coord_shard_conf *ns = realloc(t.shards, ncap * sizeof *ns);
            if (!ns) { rc = fn_seterr(eb, -ENOMEM, "%s: out of memory", name); goto fail; }
            memset(ns + cap, 0, (ncap - cap) * sizeof *ns);
            t.shards = ns;
            cap = ncap;
            t.nshards = cap;
        }
        coord_shard_conf *sc = &t.shards[num];
        if (sc->line) {
            rc = fn_seterr(eb, FN_EPARSE, "%s:%u: shard %lu already declared on line %u",
                           name, lineno, num, sc->line);
            goto fail;
        }
        sc->line = lineno;
        sc->replicas = calloc(COORD_MAX_REPLICAS, sizeof *sc->replicas);
        if (!sc->replicas) { rc = fn_seterr(eb, -ENOMEM, "%s: out of memory", name); goto fail; }
        while ((tok = next_tok(&q, ce, &tl)) != NULL) {
            if (sc->nreplicas == COORD_MAX_REPLICAS) {
                rc = fn_seterr(eb, FN_EPARSE, "%s:%u: shard %lu has more than %d replicas",
                               name, lineno, num, COORD_MAX_REPLICAS);
                goto fail;
            }
            if (tl >= COORD_MAX_ADDR) {
                rc = fn_seterr(eb, FN_EPARSE, "%s:%u: address too long", name, lineno);
                goto fail;
            }
            char addr[COORD_MAX_ADDR];
            memcpy(addr, tok, tl);
            addr[tl] = '\0';
            fn_errbuf aeb;
            if (coord_addr_check(addr, &aeb) != 0) {
                rc = fn_seterr(eb, FN_EPARSE, "%s:%u: %s", name, lineno, aeb.msg);
                goto fail;
            }
            for (uint32_t r = 0; r < sc->nreplicas; r++) {
                if (strcmp(sc->replicas[r], addr) == 0) {
                    rc = fn_seterr(eb, FN_EPARSE, "%s:%u: shard %lu lists %s twice",
                                   name, lineno, num, addr);
                    goto fail;
                }
            }
            sc->replicas[sc->nreplicas] = strdup(addr);
            if (!sc->replicas[sc->nreplicas]) {
                rc = fn_seterr(eb, -ENOMEM, "%s: out of memory", name);
                goto fail;
            }
            sc->nreplicas++;
        }
        if (sc->nreplicas == 0) {
            rc = fn_seterr(eb, FN_EPARSE, "%s:%u: shard %lu has no address", name, lineno, num);
            goto fail;
        }
    }
    if (t.nshards == 0) {
        rc = fn_seterr(eb, FN_EPARSE, "%s: no shards declared", name);
        goto fail;
    }
    for (uint32_t i = 0; i < t.nshards; i++) {
        if (!t.shards[i].line) {
            rc = fn_seterr(eb, FN_EPARSE, "%s: shard %u missing (shards must be numbered 0..%u)",
                           name, i, t.nshards - 1);
            goto fail;
        }
    }
    *out = t;
    return 0;

fail:
    /* Shards never reached have nreplicas 0 and replicas NULL: free is safe. */
    coord_topology_free(&t);
    return rc;
}

int coord_topology_load(const char *path, coord_topology *out, fn_errbuf *eb)
{
    int rc;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return fn_seterr(eb, -errno, "%s: %s", path, strerror(errno));
    for (;;) {
        if (len == cap) {
            if (cap >= (1u << 20)) {
                rc = fn_seterr(eb, FN_ELIMIT, "%s: larger than 1 MiB", path);
                goto fail_read;
            }
            cap = cap ? cap * 2 : 4096;
            char *nb = realloc(buf, cap);
            if (!nb) { rc = fn_seterr(eb, -ENOMEM, "%s: out of memory", path); goto fail_read; }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    if (ferror(f)) {
        rc = fn_seterr(eb, -EIO, "%s: read error", path);
        goto fail_read;
    }
    rc = coord_topology_parse(buf, len, path, out, eb);
fail_read:
    free(buf);
    fclose(f);
    return rc;
}
