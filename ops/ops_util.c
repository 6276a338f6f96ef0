/* ops_util.c - small helpers of the funnel CLI: daemon lookup, queries.tsv,
 * small files. */
#include "ops.h"
#include "fn_io.h"
#include "rpc_security.h"

#include <errno.h>
#include <math.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_exec(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

static int put(char *out, size_t cap, const char *fmt, const char *a, const char *b, const char *c)
{
    int n = snprintf(out, cap, fmt, a, b, c);
    return (n < 0 || (size_t)n >= cap) ? FN_ELIMIT : 0;
}

int ops_find_daemon(const char *self_dir, const char *subdir, const char *name,
                    const char *env_var, char *out, size_t cap, fn_errbuf *eb)
{
    const char *env = env_var ? getenv(env_var) : NULL;
    if (env && *env) {
        if (strlen(env) >= cap) return fn_seterr(eb, FN_ELIMIT, "%s: path too long", env_var);
        strcpy(out, env);
        return 0;
    }
    if (self_dir && *self_dir) {
        if (put(out, cap, "%s/../%s/%s", self_dir, subdir, name) == 0 && is_exec(out)) return 0;
        if (put(out, cap, "%s/%s%s", self_dir, name, "") == 0 && is_exec(out)) return 0;
    }
    const char *path = getenv("PATH");
    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t)(colon - path) : strlen(path);
        char dir[PATH_MAX];
        if (len > 0 && len < sizeof dir) {
            memcpy(dir, path, len);
            dir[len] = '\0';
            if (put(out, cap, "%s/%s%s", dir, name, "") == 0 && is_exec(out)) return 0;
        }
        path = colon ? colon + 1 : NULL;
    }
    out[0] = '\0';
    return fn_seterr(eb, FN_ENOTFOUND,
                     "cannot find %s (looked in %s/../%s, next to funnel and in PATH; set %s)",
                     name, self_dir ? self_dir : "?", subdir, env_var ? env_var : "PATH");
}

int ops_self_dir(char *out, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", out, cap - 1);
    if (n < 0) return -errno;
    if ((size_t)n >= cap - 1) return -ENAMETOOLONG;
    out[n] = '\0';
    char *slash = strrchr(out, '/');
    if (slash == out) slash[1] = '\0';
    else if (slash) *slash = '\0';
    return 0;
}

int ops_words_split(const char *s, char ***words, size_t *n)
{
    size_t cap = 4, cnt = 0;
    char **w = calloc(cap + 1, sizeof *w);
    if (!w) return -ENOMEM;
    while (s && *s) {
        while (*s == ' ' || *s == '\t') s++;
        if (!*s) break;
        const char *e = s;
        while (*e && *e != ' ' && *e != '\t') e++;
        if (cnt == cap) {
            char **nw = realloc(w, (2 * cap + 1) * sizeof *w);
            if (!nw) goto fail;
            w = nw;
            cap *= 2;
        }
        w[cnt] = strndup(s, (size_t)(e - s));
        if (!w[cnt]) goto fail;
        w[++cnt] = NULL;
        s = e;
    }
    w[cnt] = NULL;
    *words = w;
    *n = cnt;
    return 0;
fail:
    ops_words_free(w);
    return -ENOMEM;
}

void ops_words_free(char **words)
{
    if (!words) return;
    for (char **p = words; *p; p++) free(*p);
    free(words);
}

void ops_queries_free(ops_query *q, size_t n)
{
    if (!q) return;
    for (size_t i = 0; i < n; i++) {
        free(q[i].qid);
        free(q[i].text);
        free(q[i].vec);
    }
    free(q);
}

typedef struct queries_ctx {
    const char *path;
    ops_query *q;
    size_t n, cap;
    fn_errbuf *eb;
} queries_ctx;

/* queries.tsv line: "qid<TAB>text[<TAB>vector]"; blank lines are skipped. */
static int query_line(void *ud, char *line, size_t len, size_t lineno)
{
    queries_ctx *c = ud;
    if (strspn(line, " \t") == len) return 0;
    char *tab = strchr(line, '\t');
    if (!tab) return fn_seterr(c->eb, FN_EPARSE, "%s:%zu: no tab between qid and text", c->path, lineno);
    *tab = '\0';
    char *text = tab + 1;
    char *tab2 = strchr(text, '\t');   /* the optional query vector */
    if (tab2) *tab2 = '\0';
    float *vec = NULL;
    size_t nvec = 0;
    if (tab2 && strspn(tab2 + 1, " \t\r") != strlen(tab2 + 1)) {
        fn_errbuf veb;
        int rc = ops_parse_vector(tab2 + 1, &vec, &nvec, &veb);
        if (rc) return rc == -ENOMEM ? rc : fn_seterr(c->eb, FN_EPARSE, "%s:%zu: %s", c->path, lineno, veb.msg);
    }
    if (!*line || (!nvec && strspn(text, " ") == strlen(text))) {
        free(vec);
        return fn_seterr(c->eb, FN_EPARSE, "%s:%zu: empty %s", c->path, lineno, *line ? "text" : "qid");
    }
    if (c->n == c->cap) {
        size_t ncap = c->cap ? 2 * c->cap : 64;
        ops_query *nq = realloc(c->q, ncap * sizeof *nq);
        if (!nq) { free(vec); return -ENOMEM; }
        c->q = nq;
        c->cap = ncap;
    }
    ops_query *e = &c->q[c->n++];
    e->qid = strdup(line);
    e->text = strdup(text);
    e->vec = vec;
    e->nvec = nvec;
    return e->qid && e->text ? 0 : -ENOMEM;
}

int ops_parse_vector(const char *s, float **out, size_t *n, fn_errbuf *eb)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0, cnt = 0;
    float *v = NULL;
    const char *p = s;
    for (;;) {
        p += strspn(p, " \t,\r\n");
        if (!*p) break;
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        float f = (float)x;
        if (end == p || (*end && !strchr(" \t,\r\n", *end)) || !isfinite(x) || !isfinite(f)) {
            size_t w = strcspn(p, " \t,\r\n");
            free(v);
            return fn_seterr(eb, FN_EPARSE, "vector: number %zu, \"%.*s\", is not a finite number", cnt + 1,
                             (int)(w > 40 ? 40 : w), p);
        }
        if (cnt == 65536) {
            free(v);
            return fn_seterr(eb, FN_EPARSE, "vector: more than 65536 numbers");
        }
        if (cnt == cap) {
            size_t nc = cap ? 2 * cap : 64;
            float *nv = realloc(v, nc * sizeof *nv);
            if (!nv) { free(v); return -ENOMEM; }
            v = nv;
            cap = nc;
        }
        v[cnt++] = f;
        p = end;
    }
    if (!cnt) return fn_seterr(eb, FN_EPARSE, "vector: no numbers");
    *out = v;
    *n = cnt;
    return 0;
}

int ops_queries_load(const char *path, ops_query **out, size_t *nout, fn_errbuf *eb)
{
    queries_ctx c = { .path = path, .eb = eb };
    int rc = fn_read_lines(path, query_line, &c, eb);
    if (rc) {
        ops_queries_free(c.q, c.n);
        return rc;
    }
    *out = c.q;
    *nout = c.n;
    return 0;
}

int ops_read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return -errno;
    size_t n = fread(buf, 1, cap - 1, f);
    int full = !feof(f) && fgetc(f) != EOF;
    fclose(f);
    if (full) return FN_ELIMIT;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\r' || buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    return 0;
}

int ops_write_atomic(const char *path, const char *content)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return -ENAMETOOLONG;
    FILE *f = fopen(tmp, "w");
    if (!f) return -errno;
    int ok = fputs(content, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno ? errno : EIO;
        unlink(tmp);
        return -e;
    }
    return 0;
}

int ops_addr_valid(const char *addr)
{
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    if (!colon || colon == addr || !colon[1]) return 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    return *end == '\0' && port > 0 && port < 65536;
}

/* Make dir (and parents). 0 or -errno. */
int ops_mkdirs(const char *dir)
{
    return fn_mkdirs(dir, 0755);
}

void ops_rm_flat_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[PATH_MAX];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < (int)sizeof p) unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

int ops_client_security(int *argc, char **argv, fn_errbuf *eb)
{
    static const char *const flags[4] = {"--tls-ca", "--tls-cert", "--tls-key", "--token-file"};
    static const char *const envs[4] = {"FUNNEL_TLS_CA", "FUNNEL_TLS_CERT", "FUNNEL_TLS_KEY",
                                        "FUNNEL_ADMIN_TOKEN_FILE"};
    const char *val[4] = {NULL, NULL, NULL, NULL};
    int out = 1, i = 1, n = *argc;
    for (; i < n; i++) {
        if (strcmp(argv[i], "--") == 0) break;        /* the rest is operands */
        int hit = -1;
        const char *v = NULL;
        for (int f = 0; f < 4 && hit < 0; f++) {
            size_t fl = strlen(flags[f]);
            if (strncmp(argv[i], flags[f], fl) != 0) continue;
            if (argv[i][fl] == '=') { hit = f; v = argv[i] + fl + 1; }
            else if (argv[i][fl] == '\0') {
                if (i + 1 >= n) return fn_seterr(eb, FN_EINVAL, "%s needs a file", flags[f]);
                hit = f;
                v = argv[++i];
            }
        }
        if (hit >= 0) val[hit] = v;
        else argv[out++] = argv[i];
    }
    for (; i < n; i++) argv[out++] = argv[i];
    argv[out] = NULL;
    *argc = out;
    for (int f = 0; f < 4; f++)
        if (!val[f] || !*val[f]) val[f] = getenv(envs[f]);
    int rc = 0;
    if ((val[0] && *val[0]) || (val[1] && *val[1]) || (val[2] && *val[2])) {
        if (!val[0] || !*val[0])
            return fn_seterr(eb, FN_EINVAL, "--tls-cert/--tls-key need --tls-ca (the CA that "
                             "signs the server's certificate)");
        rc = rpc_tls_configure(val[0], val[1], val[2], 0, eb);
    }
    if (rc == 0) rc = rpc_admin_token_load(val[3], eb);
    return rc;
}

void ops_sleep_ms(double ms)
{
    if (ms <= 0) return;
    struct timespec ts = { (time_t)(ms / 1e3), (long)(fmod(ms, 1e3) * 1e6) };
    nanosleep(&ts, NULL);
}
