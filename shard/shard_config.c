/* shard_config.c - see shard_config.h. */
#include "shard_config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fn_log.h"

void shard_config_defaults(shard_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "%s", SHARD_DEFAULT_LISTEN);
    c->threads = SHARD_DEFAULT_THREADS;
    c->max_k = SHARD_DEFAULT_MAX_K;
    c->log_level = FN_LOG_INFO;
    idx_bm25_defaults(&c->bm25);
}

static int parse_ulong(const char *v, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end;
    if (!*v || *v == '-') return -1;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (errno || *end || x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

static int parse_double(const char *v, double lo, double hi, double *out)
{
    char *end;
    if (!*v) return -1;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || !isfinite(x) || x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

static int set_str(char *dst, size_t cap, const char *key, const char *v, fn_errbuf *eb)
{
    if (strlen(v) >= cap) return fn_seterr(eb, FN_EINVAL, "%s: value too long", key);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

/* "max_k" and "max-k" are the same key. */
static int key_is(const char *key, const char *name)
{
    for (; *key && *name; key++, name++) {
        char a = *key == '_' ? '-' : *key, b = *name == '_' ? '-' : *name;
        if (a != b) return 0;
    }
    return *key == *name;
}

int shard_config_set(shard_config *c, const char *key, const char *v, fn_errbuf *eb)
{
    unsigned long u;
    double d;
    if (key_is(key, "index")) {
        if (!*v) return fn_seterr(eb, FN_EINVAL, "index: must not be empty");
        return set_str(c->index_dir, sizeof c->index_dir, key, v, eb);
    }
    if (key_is(key, "listen")) {
        if (!strchr(v, ':')) return fn_seterr(eb, FN_EINVAL, "listen: want HOST:PORT, got '%s'", v);
        return set_str(c->listen, sizeof c->listen, key, v, eb);
    }
    if (key_is(key, "addr-file")) return set_str(c->addr_file, sizeof c->addr_file, key, v, eb);
    if (key_is(key, "config")) return set_str(c->config_file, sizeof c->config_file, key, v, eb);
    if (key_is(key, "threads")) {
        if (parse_ulong(v, 1, SHARD_MAX_THREADS, &u))
            return fn_seterr(eb, FN_EINVAL, "threads: want 1..%d, got '%s'", SHARD_MAX_THREADS, v);
        c->threads = (unsigned)u;
        return 0;
    }
    if (key_is(key, "max-k")) {
        if (parse_ulong(v, 1, 1000000, &u))
            return fn_seterr(eb, FN_EINVAL, "max-k: want 1..1000000, got '%s'", v);
        c->max_k = (uint32_t)u;
        return 0;
    }
    if (key_is(key, "log-level")) {
        int l = fn_log_level_parse(v);
        if (l < 0) return fn_seterr(eb, FN_EINVAL, "log-level: want debug|info|warn|error, got '%s'", v);
        c->log_level = l;
        return 0;
    }
    if (key_is(key, "bm25.k1")) {
        if (parse_double(v, 1e-9, 100, &d) != 0)
            return fn_seterr(eb, FN_EINVAL, "bm25.k1: want a number in (0, 100], got '%s'", v);
        c->bm25.k1 = d;
        return 0;
    }
    static const char *const bkeys[2] = {"bm25.b_title", "bm25.b_body"};
    static const char *const wkeys[2] = {"bm25.w_title", "bm25.w_body"};
    for (int f = 0; f < 2; f++) {
        if (key_is(key, bkeys[f])) {
            if (parse_double(v, 0, 1, &d) != 0)
                return fn_seterr(eb, FN_EINVAL, "%s: want a number in [0, 1], got '%s'", bkeys[f], v);
            c->bm25.b[f] = d;
            return 0;
        }
        if (key_is(key, wkeys[f])) {
            if (parse_double(v, 0, 1000, &d) != 0)
                return fn_seterr(eb, FN_EINVAL, "%s: want a number in [0, 1000], got '%s'", wkeys[f], v);
            c->bm25.w[f] = d;
            return 0;
        }
    }
    return fn_seterr(eb, FN_EINVAL, "unknown key '%s'", key);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

int shard_config_load_file(shard_config *c, const char *path, fn_errbuf *eb)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int rc = -errno;
        return fn_seterr(eb, rc, "%s: %s", path, strerror(-rc));
    }
    char line[8192];
    int rc = 0;
    for (unsigned lineno = 1; fgets(line, sizeof line, f); lineno++) {
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *s = trim(line);
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = fn_seterr(eb, FN_EPARSE, "%s:%u: expected key = value", path, lineno);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        fn_errbuf kb = {{0}};
        if (key_is(key, "config")) {
            rc = fn_seterr(eb, FN_EPARSE, "%s:%u: 'config' is not allowed in a config file",
                           path, lineno);
            break;
        }
        if (shard_config_set(c, key, val, &kb) != 0) {
            rc = fn_seterr(eb, FN_EPARSE, "%s:%u: %s", path, lineno, kb.msg);
            break;
        }
    }
    fclose(f);
    return rc;
}

const char *shard_config_usage(void)
{
    return "usage: funnel-shard --index DIR [options]\n"
           "  --index DIR        shard directory (IDXDIR/shard-NNN), required\n"
           "  --listen ADDR      HOST:PORT to listen on (default 127.0.0.1:0 = any free port)\n"
           "  --addr-file PATH   write \"HOST:PORT\\n\" there (atomically) once listening\n"
           "  --threads N        search worker threads (default 4)\n"
           "  --max-k N          largest k accepted (default 10000)\n"
           "  --config FILE      key=value file with the same keys (flags override it);\n"
           "                     also bm25.k1, bm25.b_title, bm25.b_body, bm25.w_title, bm25.w_body\n"
           "  --log-level L      debug|info|warn|error (default info)\n"
           "  --help             this text\n";
}

int shard_config_from_args(shard_config *c, int argc, char **argv, fn_errbuf *eb)
{
    shard_config_defaults(c);
    /* Two passes: the file first, so that any flag overrides it. */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 1; i < argc; i++) {
            const char *a = argv[i];
            if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                c->help = 1;
                return 0;
            }
            if (strncmp(a, "--", 2) != 0 || !a[2])
                return fn_seterr(eb, FN_EINVAL, "unexpected argument '%s'", a);
            char key[128];
            const char *val;
            const char *eq = strchr(a, '=');
            if (eq) {
                size_t n = (size_t)(eq - a - 2);
                if (n >= sizeof key) return fn_seterr(eb, FN_EINVAL, "bad flag '%s'", a);
                memcpy(key, a + 2, n);
                key[n] = '\0';
                val = eq + 1;
            } else {
                if (strlen(a + 2) >= sizeof key) return fn_seterr(eb, FN_EINVAL, "bad flag '%s'", a);
                snprintf(key, sizeof key, "%s", a + 2);
                if (i + 1 >= argc) return fn_seterr(eb, FN_EINVAL, "--%s needs a value", key);
                val = argv[++i];
            }
            int is_config = key_is(key, "config");
            if (pass == 0 && is_config) {
                int rc = shard_config_set(c, key, val, eb);
                if (rc) return rc;
                if ((rc = shard_config_load_file(c, val, eb)) != 0) return rc;
            } else if (pass == 1 && !is_config) {
                fn_errbuf kb = {{0}};
                if (shard_config_set(c, key, val, &kb) != 0)
                    return fn_seterr(eb, FN_EINVAL, "%s", kb.msg);
            }
        }
    }
    if (!c->index_dir[0]) return fn_seterr(eb, FN_EINVAL, "--index DIR is required");
    return 0;
}
