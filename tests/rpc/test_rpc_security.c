/* test_rpc_security.c - rpc_security.c without a network: the admin token
 * (its file, limits and the constant-time check), the TLS setting's
 * argument checks and the loopback test behind the daemons' warning. The
 * wire side (TLS handshakes, UNAUTHENTICATED) is tests/integration/test_tls.sh. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rpc_security.h"

static char dir[] = "/tmp/test_rpc_sec.XXXXXX";

static void put(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
}

static void setup(void) { cr_assert(mkdtemp(dir) != NULL); }
static void teardown(void)
{
    rpc_admin_token_set(NULL, NULL);
    rpc_tls_reset();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(rpc_security, .init = setup, .fini = teardown);

Test(rpc_security, token_from_file_and_bearer_check)
{
    char p[256];
    fn_errbuf eb = {{0}};
    cr_assert_not(rpc_admin_token_enabled());
    cr_assert(rpc_security_check_bearer("", 0), "no token: everything passes");
    put("tok", "  0123456789abcdef0123  \n second line ignored\n", p, sizeof p);
    cr_assert_eq(rpc_admin_token_load(p, &eb), 0, "%s", eb.msg);
    cr_assert(rpc_admin_token_enabled());
    cr_assert_str_eq(rpc_security_bearer(), "Bearer 0123456789abcdef0123");
    const char *good = "Bearer 0123456789abcdef0123";
    cr_assert(rpc_security_check_bearer(good, strlen(good)));
    cr_assert_not(rpc_security_check_bearer(good, strlen(good) - 1), "a prefix");
    cr_assert_not(rpc_security_check_bearer("Bearer 0123456789abcdef01234", 28), "longer");
    cr_assert_not(rpc_security_check_bearer("bearer 0123456789abcdef0123", 27), "case");
    cr_assert_not(rpc_security_check_bearer("Bearer 0123456789abcdef0124", 27), "last byte");
    cr_assert_not(rpc_security_check_bearer("", 0));
    cr_assert_eq(rpc_admin_token_load(NULL, &eb), 0, "NULL clears");
    cr_assert_not(rpc_admin_token_enabled());
}

Test(rpc_security, bad_tokens_are_refused)
{
    char p[256];
    fn_errbuf eb = {{0}};
    put("short", "tooshort\n", p, sizeof p);
    cr_assert_eq(rpc_admin_token_load(p, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "16..512") != NULL, "%s", eb.msg);
    put("empty", "\n", p, sizeof p);
    cr_assert_eq(rpc_admin_token_load(p, &eb), FN_EINVAL);
    cr_assert_eq(rpc_admin_token_set("0123456789abcdef 01", &eb), FN_EINVAL, "blank inside");
    cr_assert(rpc_admin_token_load("/nonexistent/token", &eb) < 0);
    cr_assert_not(rpc_admin_token_enabled());
}

Test(rpc_security, tls_arguments)
{
    char pem[256], junk[256];
    fn_errbuf eb = {{0}};
    put("c.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", pem, sizeof pem);
    put("junk", "not a certificate\n", junk, sizeof junk);
    cr_assert_eq(rpc_tls_configure(NULL, pem, NULL, 0, &eb), FN_EINVAL, "cert without key");
    cr_assert(strstr(eb.msg, "go together") != NULL, "%s", eb.msg);
    cr_assert_eq(rpc_tls_configure(NULL, pem, pem, 1, &eb), FN_EINVAL, "mTLS without a CA");
    cr_assert_eq(rpc_tls_configure(junk, NULL, NULL, 0, &eb), FN_EINVAL);
    cr_assert(strstr(eb.msg, "not a PEM file") != NULL, "%s", eb.msg);
    cr_assert(rpc_tls_configure("/nonexistent/ca.pem", NULL, NULL, 0, &eb) < 0);
    cr_assert_not(rpc_tls_client_enabled(), "a failed call leaves plaintext");
    cr_assert_eq(rpc_tls_configure(pem, NULL, NULL, 0, &eb), 0, "%s", eb.msg);
    cr_assert(rpc_tls_client_enabled());
    cr_assert_not(rpc_tls_server_enabled());
    cr_assert_eq(rpc_tls_configure(pem, pem, pem, 1, &eb), 0, "%s", eb.msg);
    cr_assert(rpc_tls_server_enabled());
    rpc_tls_reset();
    cr_assert_not(rpc_tls_client_enabled());
}

Test(rpc_security, loopback_and_admin_paths)
{
    cr_assert(rpc_addr_is_loopback("127.0.0.1:0"));
    cr_assert(rpc_addr_is_loopback("127.1.2.3:7000"));
    cr_assert(rpc_addr_is_loopback("localhost:7000"));
    cr_assert(rpc_addr_is_loopback("[::1]:7000"));
    cr_assert_not(rpc_addr_is_loopback("0.0.0.0:7000"));
    cr_assert_not(rpc_addr_is_loopback("[::]:7000"));
    cr_assert_not(rpc_addr_is_loopback("10.0.0.5:7000"));
    cr_assert(rpc_security_is_admin("/funnel.v1.Admin/Status"));
    cr_assert(rpc_security_is_admin("/funnel.v1.Admin/PushModel"));
    cr_assert_not(rpc_security_is_admin("/funnel.v1.Search/Search"));
    cr_assert_not(rpc_security_is_admin("/funnel.v1.AdminX/Status"));
}
