/* rpc_security.h - the process-wide TLS setting and Admin bearer token of the
 * rpc layer (docs/operations.md "TLS and authentication").
 *
 * Call these once in main(), before any server starts or channel is created
 * (they only read files: no gRPC call, so a process may still fork after).
 * Afterwards the setting is read-only and shared by every thread:
 *   - rpc_server_start() listens with SSL server credentials when a
 *     certificate is configured, requiring and verifying a client certificate
 *     signed by the CA when require_client_cert is set (mTLS);
 *   - rpc_channel_create() / rpc_client_create() connect with SSL channel
 *     credentials when a CA is configured, presenting the certificate (if
 *     any) as the client certificate;
 *   - servers refuse every /funnel.v1.Admin/ call without the metadata
 *     `authorization: Bearer <token>` (UNAUTHENTICATED), and outgoing Admin
 *     calls (rpc_client_call, rpc_async_unary) carry it.
 * Without these calls everything is plaintext and unauthenticated, as before.
 */
#ifndef FUNNEL_RPC_SECURITY_H
#define FUNNEL_RPC_SECURITY_H

#include <stddef.h>

#include "fn_error.h"

/* Read the PEM files (any may be NULL or ""): ca_file verifies peers (the
 * server's certificate for a client, a client's for a server with
 * require_client_cert); cert_file + key_file (both or neither) are this
 * process's identity. Replaces an earlier setting. 0, or FN_EINVAL / -errno
 * with the reason in eb. */
int rpc_tls_configure(const char *ca_file, const char *cert_file, const char *key_file,
                      int require_client_cert, fn_errbuf *eb);

/* Forget the TLS setting: plaintext again. */
void rpc_tls_reset(void);

/* Nonzero when channels use TLS (a CA is configured). */
int rpc_tls_client_enabled(void);
/* Nonzero when servers listen with TLS (a certificate is configured). */
int rpc_tls_server_enabled(void);

/* The Admin token: the first line of path, without surrounding blanks; at
 * least 16 characters. NULL or "" clears it. Warns (fn_log) when the file
 * can be read by group or others. 0, or FN_EINVAL / -errno with eb. */
int rpc_admin_token_load(const char *path, fn_errbuf *eb);
/* Set the token directly (NULL clears). 0 or FN_EINVAL (too short/long). */
int rpc_admin_token_set(const char *token, fn_errbuf *eb);
int rpc_admin_token_enabled(void);

/* A process-wide receive limit for servers whose options leave
 * max_message_bytes 0 (0 = the built-in 4 MiB). */
void rpc_server_default_max_message(size_t bytes);

/* Nonzero if listen ("HOST:PORT") binds only a loopback address. */
int rpc_addr_is_loopback(const char *listen);

/* ---- for rpc_server.c / rpc_client.c ---- */
struct grpc_channel_credentials;
struct grpc_server_credentials;
/* New credentials for the current setting (insecure without TLS); the caller
 * releases them. NULL (eb set) if the SSL objects cannot be made. */
struct grpc_channel_credentials *rpc_security_channel_creds(void);
struct grpc_server_credentials *rpc_security_server_creds(fn_errbuf *eb);
/* "Bearer <token>", or NULL without a token. */
const char *rpc_security_bearer(void);
/* Nonzero if path is under /funnel.v1.Admin/. */
int rpc_security_is_admin(const char *path);
/* Constant-time check of an authorization header value. */
int rpc_security_check_bearer(const char *value, size_t len);
size_t rpc_security_max_message(void);

#endif
