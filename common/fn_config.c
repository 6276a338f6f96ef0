/* fn_config.c - see fn_config.h. */
#include "fn_config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fn_config_key_is(const char *key, const char *name)
{
    for (; *key && *name; key++, name++) {
        char a = *key == '_' ? '-' : *key, b = *name == '_' ? '-' : *name;
        if (a != b) return 0;
    }
    return *key == *name;
}

int fn_parse_ulong(const char *v, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end;
    /* strtoul would quietly negate "-1" into a huge number */
    if (!*v || *v == '-') return FN_EINVAL;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (errno || *end || x < lo || x > hi) return FN_EINVAL;
    *out = x;
    return 0;
}

int fn_parse_double(const char *v, double lo, double hi, double *out)
{
    char *end;
    if (!*v) return FN_EINVAL;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || !isfinite(x) || x < lo || x > hi) return FN_EINVAL;
    *out = x;
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

/* fn_config_load_file, refusing the key `forbid` (NULL = none). */
static int load(const char *path, const char *forbid, fn_config_set_fn set, void *ud,
                fn_errbuf *eb)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int rc = -errno;
        return fn_seterr(eb, rc, "%s: %s", path, strerror(-rc));
    }
    char line[8192];
    int rc = 0;
    unsigned lineno = 1;
    for (; fgets(line, sizeof line, f); lineno++) {
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(f)) {
            rc = fn_seterr(eb, FN_EPARSE, "%s:%u: line too long", path, lineno);
            break;
        }
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
        if (!*key) {
            rc = fn_seterr(eb, FN_EPARSE, "%s:%u: expected key = value", path, lineno);
            break;
        }
        if (forbid && fn_config_key_is(key, forbid)) {
            rc = fn_seterr(eb, FN_EPARSE, "%s:%u: '%s' is not allowed in a config file",
                           path, lineno, key);
            break;
        }
        fn_errbuf kb = {{0}};
        int src = set(ud, key, val, &kb);
        if (src != 0) {
            rc = fn_seterr(eb, FN_EPARSE, "%s:%u: %s", path, lineno, fn_errmsg(&kb, src));
            break;
        }
    }
    /* fopen succeeds on a directory; the read is what fails */
    if (rc == 0 && ferror(f)) {
        int e = errno ? errno : EIO;
        rc = fn_seterr(eb, -e, "%s: %s", path, strerror(e));
    }
    fclose(f);
    return rc;
}

int fn_config_load_file(const char *path, fn_config_set_fn set, void *ud, fn_errbuf *eb)
{
    return load(path, NULL, set, ud, eb);
}

int fn_config_from_args(int argc, char **argv, const char *config_key,
                        fn_config_set_fn set, void *ud, fn_errbuf *eb)
{
    /* Two passes: the file first, so that any flag overrides it. */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 1; i < argc; i++) {
            const char *a = argv[i];
            if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return FN_CONFIG_HELP;
            if (strncmp(a, "--", 2) != 0 || !a[2])
                return fn_seterr(eb, FN_EINVAL, "unexpected argument '%s'", a);
            char key[128];
            const char *val;
            const char *eq = strchr(a, '=');
            if (eq) {
                size_t n = (size_t)(eq - a - 2);
                if (n == 0 || n >= sizeof key) return fn_seterr(eb, FN_EINVAL, "bad flag '%s'", a);
                memcpy(key, a + 2, n);
                key[n] = '\0';
                val = eq + 1;
            } else {
                if (strlen(a + 2) >= sizeof key) return fn_seterr(eb, FN_EINVAL, "bad flag '%s'", a);
                snprintf(key, sizeof key, "%s", a + 2);
                if (i + 1 >= argc) return fn_seterr(eb, FN_EINVAL, "--%s needs a value", key);
                val = argv[++i];
            }
            int is_config = config_key && fn_config_key_is(key, config_key);
            if (pass == 0 && is_config) {
                fn_errbuf kb = {{0}};
                int rc = set(ud, key, val, &kb);
                if (rc) return fn_seterr(eb, rc, "%s", fn_errmsg(&kb, rc));
                if ((rc = load(val, config_key, set, ud, eb)) != 0) return rc;
            } else if (pass == 1 && !is_config) {
                fn_errbuf kb = {{0}};
                int rc = set(ud, key, val, &kb);
                if (rc != 0) return fn_seterr(eb, FN_EINVAL, "%s", fn_errmsg(&kb, rc));
            }
        }
    }
    return 0;
}
