/* rpc_security.c - process-wide TLS and Admin token (see rpc_security.h). */
#include "rpc_security.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fn_log.h"

#define PEM_MAX (1u << 20)
#define TOKEN_MIN 16
#define TOKEN_MAX 512

static struct {
    char *ca, *cert, *key;        /* PEM text, NULL = not configured */
    int require_client_cert;
    char bearer[TOKEN_MAX + 8];   /* "Bearer <token>", "" = no token */
    size_t max_message;
} sec;

/* The whole file, NUL-terminated. */
static int read_pem(const char *path, char **out, fn_errbuf *eb)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return fn_seterr(eb, -errno, "%s: %s", path, strerror(errno));
    char *buf = malloc(PEM_MAX + 1);
    if (!buf) {
        fclose(f);
        return fn_seterr(eb, -ENOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, PEM_MAX + 1, f);
    int err = ferror(f);
    fclose(f);
    if (err || n == 0 || n > PEM_MAX) {
        free(buf);
        return fn_seterr(eb, FN_EINVAL, "%s: %s", path,
                         err ? "read error" : n == 0 ? "empty" : "larger than 1 MiB");
    }
    buf[n] = '\0';
    if (!strstr(buf, "-----BEGIN ")) {
        free(buf);
        return fn_seterr(eb, FN_EINVAL, "%s: not a PEM file", path);
    }
    *out = buf;
    return 0;
}

void rpc_tls_reset(void)
{
    free(sec.ca);
    free(sec.cert);
    free(sec.key);
    sec.ca = sec.cert = sec.key = NULL;
    sec.require_client_cert = 0;
}

int rpc_tls_configure(const char *ca_file, const char *cert_file, const char *key_file,
                      int require_client_cert, fn_errbuf *eb)
{
    rpc_tls_reset();
    int has_cert = cert_file && *cert_file, has_key = key_file && *key_file;
    if (has_cert != has_key)
        return fn_seterr(eb, FN_EINVAL, "tls-cert and tls-key go together (one is missing)");
    if (require_client_cert && !(ca_file && *ca_file))
        return fn_seterr(eb, FN_EINVAL, "tls-require-client-cert needs tls-ca (the CA that signs clients)");
    int rc = 0;
    if (ca_file && *ca_file && (rc = read_pem(ca_file, &sec.ca, eb)) != 0) goto fail;
    if (has_cert && (rc = read_pem(cert_file, &sec.cert, eb)) != 0) goto fail;
    if (has_key && (rc = read_pem(key_file, &sec.key, eb)) != 0) goto fail;
    sec.require_client_cert = require_client_cert != 0;
    return 0;
fail:
    rpc_tls_reset();
    return rc;
}

int rpc_tls_client_enabled(void) { return sec.ca != NULL; }
int rpc_tls_server_enabled(void) { return sec.cert != NULL; }

int rpc_admin_token_set(const char *token, fn_errbuf *eb)
{
    if (!token || !*token) {
        sec.bearer[0] = '\0';
        return 0;
    }
    size_t n = strlen(token);
    if (n < TOKEN_MIN || n > TOKEN_MAX)
        return fn_seterr(eb, FN_EINVAL, "admin token: want %d..%d characters, got %zu", TOKEN_MIN,
                         TOKEN_MAX, n);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)token[i] <= ' ' || (unsigned char)token[i] >= 127)
            return fn_seterr(eb, FN_EINVAL, "admin token: printable ASCII without blanks only");
    snprintf(sec.bearer, sizeof sec.bearer, "Bearer %s", token);
    return 0;
}

int rpc_admin_token_load(const char *path, fn_errbuf *eb)
{
    if (!path || !*path) return rpc_admin_token_set(NULL, eb);
    FILE *f = fopen(path, "r");
    if (!f) return fn_seterr(eb, -errno, "%s: %s", path, strerror(errno));
    struct stat st;
    /* a secret others can read is no secret: say so, but serve */
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
        FN_WARN("admin token file %s is readable by group/others (mode %03o): chmod 600 it",
                path, (unsigned)(st.st_mode & 0777));
    char line[TOKEN_MAX + 64];
    if (!fgets(line, sizeof line, f)) line[0] = '\0';
    fclose(f);
    char *s = line, *e = line + strlen(line);
    while (*s == ' ' || *s == '\t') s++;
    while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
    if (!*s) return fn_seterr(eb, FN_EINVAL, "%s: no token in the first line", path);
    int rc = rpc_admin_token_set(s, eb);
    if (rc) {
        char m[sizeof eb->msg];
        snprintf(m, sizeof m, "%s", eb ? eb->msg : "");
        return fn_seterr(eb, rc, "%s: %s", path, m);
    }
    return 0;
}

int rpc_admin_token_enabled(void) { return sec.bearer[0] != '\0'; }

void rpc_server_default_max_message(size_t bytes) { sec.max_message = bytes; }
size_t rpc_security_max_message(void) { return sec.max_message; }

int rpc_addr_is_loopback(const char *listen)
{
    if (!listen) return 0;
    const char *colon = strrchr(listen, ':');
    size_t n = colon ? (size_t)(colon - listen) : strlen(listen);
    if (n >= 4 && strncmp(listen, "127.", 4) == 0) return 1;
    if (n == 9 && strncmp(listen, "localhost", 9) == 0) return 1;
    if (n == 5 && strncmp(listen, "[::1]", 5) == 0) return 1;
    return 0;
}

grpc_channel_credentials *rpc_security_channel_creds(void)
{
    if (!sec.ca) return grpc_insecure_credentials_create();
    grpc_ssl_pem_key_cert_pair kp = {sec.key, sec.cert};
    return grpc_ssl_credentials_create(sec.ca, sec.cert ? &kp : NULL, NULL, NULL);
}

grpc_server_credentials *rpc_security_server_creds(fn_errbuf *eb)
{
    if (!sec.cert) return grpc_insecure_server_credentials_create();
    grpc_ssl_pem_key_cert_pair kp = {sec.key, sec.cert};
    grpc_server_credentials *c = grpc_ssl_server_credentials_create_ex(
        sec.ca, &kp, 1,
        sec.require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        NULL);
    if (!c) fn_seterr(eb, FN_EINVAL, "cannot make SSL server credentials (bad certificate or key?)");
    return c;
}

const char *rpc_security_bearer(void) { return sec.bearer[0] ? sec.bearer : NULL; }

int rpc_security_is_admin(const char *path)
{
    return path && strncmp(path, "/funnel.v1.Admin/", 17) == 0;
}

int rpc_security_check_bearer(const char *value, size_t len)
{
    size_t want = strlen(sec.bearer);
    if (!want) return 1;
    /* constant time in the token: every byte of the expected value is
     * compared whatever the first difference */
    unsigned char diff = (unsigned char)(len != want);
    for (size_t i = 0; i < want; i++) {
        unsigned char got = i < len ? (unsigned char)value[i] : 0;
        diff |= (unsigned char)(got ^ (unsigned char)sec.bearer[i]);
    }
    return diff == 0;
}
