/* fn_modelstate.c - see fn_modelstate.h. */
#include "fn_modelstate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fn_io.h"

#define MAGIC "funnel-model-state 1\n"

static int state_path(const char *dir, const char *stage, char *out, size_t cap, fn_errbuf *eb)
{
    if (!dir || !*dir || !stage || !*stage || strchr(stage, '/'))
        return fn_seterr(eb, FN_EINVAL, "model state: bad directory or stage");
    int n = snprintf(out, cap, "%s/%s.model", dir, stage);
    if (n < 0 || (size_t)n >= cap) return fn_seterr(eb, FN_EINVAL, "model state: path too long: %s", dir);
    return 0;
}

/* fsync a directory: its entries (the rename that put the file there) */
static int sync_path(const char *p, fn_errbuf *eb)
{
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fn_seterr(eb, -errno, "%s: %s", p, strerror(errno));
    int rc = fsync(fd) == 0 ? 0 : fn_seterr(eb, -errno, "%s: fsync: %s", p, strerror(errno));
    close(fd);
    return rc;
}

int fn_modelstate_save(const char *dir, const char *stage, const char *name, const void *model, size_t len,
                       fn_errbuf *eb)
{
    char path[4096];
    int rc = state_path(dir, stage, path, sizeof path, eb);
    if (rc) return rc;
    if (len > FN_MODELSTATE_MAX) return fn_seterr(eb, FN_EINVAL, "%s: a model of %zu bytes is too large", path, len);
    if (len && memchr(model, 0, len)) return fn_seterr(eb, FN_EINVAL, "%s: the model has a NUL byte", path);
    /* (its parents too: e.g. under the one systemd's StateDirectory makes) */
    if ((rc = fn_mkdirs(dir, 0750))) return fn_seterr(eb, rc, "%s: cannot make it: %s", dir, strerror(-rc));
    char nm[256];
    snprintf(nm, sizeof nm, "%s", name && *name ? name : "pushed model");
    for (char *p = nm; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    fn_sbuf b = { 0 };
    rc = fn_sbuf_printf(&b, MAGIC "name %s\nbytes %zu\n", nm, len);
    /* the bytes, then a newline of ours: the checksum line must start a line
     * whatever the model's last byte */
    if (rc == 0) rc = fn_sbuf_printf(&b, "%.*s\n", (int)len, len ? (const char *)model : "");
    if (rc) {
        free(b.p);
        return fn_seterr(eb, -ENOMEM, "%s: out of memory", path);
    }
    /* the bytes, then the checksum, to path.tmp, renamed over path */
    if ((rc = fn_write_checksummed(path, &b, eb))) return rc;
    return sync_path(dir, eb);
}

/* a state file that cannot be used stops the start: say how to go on */
static int way_out(fn_errbuf *eb, int rc)
{
    char m[sizeof eb->msg];
    snprintf(m, sizeof m, "%s", fn_errmsg(eb, rc));
    return fn_seterr(eb, rc, "%s (the last pushed model; move the file away to start with the configured one)", m);
}

int fn_modelstate_load(const char *dir, const char *stage, fn_modelstate *st, fn_errbuf *eb)
{
    memset(st, 0, sizeof *st);
    int rc = state_path(dir, stage, st->path, sizeof st->path, eb);
    if (rc) return rc;
    if (access(st->path, F_OK) != 0) {
        if (errno == ENOENT) return 1;
        return fn_seterr(eb, -errno, "%s: %s", st->path, strerror(errno));
    }
    size_t n;
    if ((rc = fn_read_checksummed(st->path, FN_MODELSTATE_MAX + 4096, "a model state file", &st->buf, &n, eb)))
        return way_out(eb, rc);
    const char *p = st->buf, *end = st->buf + n;
    const char *nl1, *nl2;
    size_t len;
    char *e;
    if ((size_t)(end - p) < sizeof MAGIC - 1 || memcmp(p, MAGIC, sizeof MAGIC - 1) != 0) {
        rc = fn_seterr(eb, FN_EFORMAT, "%s: not a model state file (want \"%.*s\" first)", st->path,
                       (int)sizeof MAGIC - 2, MAGIC);
        goto bad;
    }
    p += sizeof MAGIC - 1;
    if (!(nl1 = memchr(p, '\n', (size_t)(end - p))) || strncmp(p, "name ", 5) != 0 ||
        !(nl2 = memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1))) || strncmp(nl1 + 1, "bytes ", 6) != 0) {
        rc = fn_seterr(eb, FN_EFORMAT, "%s: want \"name NAME\" and \"bytes N\" lines", st->path);
        goto bad;
    }
    errno = 0;
    len = strtoull(nl1 + 7, &e, 10);
    if (errno || e != nl2 || nl1[7] < '0' || nl1[7] > '9' || len + 1 != (size_t)(end - nl2 - 1) || end[-1] != '\n') {
        rc = fn_seterr(eb, FN_EFORMAT, "%s: \"bytes\" says %.*s, the file holds %zu and a newline", st->path,
                       (int)(nl2 - nl1 - 7), nl1 + 7, (size_t)(end - nl2 - 1) - (end > nl2 + 1));
        goto bad;
    }
    snprintf(st->name, sizeof st->name, "%.*s", (int)(nl1 - p - 5), p + 5);
    st->len = len;
    st->model = len ? nl2 + 1 : NULL;
    st->buf[(nl2 + 1 - st->buf) + len] = '\0';   /* our newline: the model ends where it did */
    return 0;
bad:
    fn_modelstate_free(st);
    return way_out(eb, rc);
}

int fn_modelstate_blame(const fn_modelstate *st, int rc, fn_errbuf *eb)
{
    char m[sizeof eb->msg];
    snprintf(m, sizeof m, "%s", fn_errmsg(eb, rc));
    fn_seterr(eb, rc, "%s: %s", st->path, m);
    return way_out(eb, rc);
}

int fn_model_src_set(fn_model_src *z, const void *p, size_t len, const char *name)
{
    char *b = malloc(len ? len : 1);
    if (!b) return -ENOMEM;
    memcpy(b, p, len);
    free(z->p);
    z->p = b;
    z->len = len;
    snprintf(z->name, sizeof z->name, "%s", name);
    return 0;
}

void fn_model_src_clear(fn_model_src *z)
{
    free(z->p);
    *z = (fn_model_src){ 0 };
}

void fn_modelstate_free(fn_modelstate *st)
{
    free(st->buf);
    st->buf = NULL;
    st->model = NULL;
    st->len = 0;
}
