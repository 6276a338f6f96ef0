/* test_fn_metrics.c - common/fn_metrics.c: get-or-create, type and name
 * checks, lock-free updates from threads, the text format (checked by
 * promtool when it is installed) and the /metrics endpoint over a socket. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fn_metrics.h"

static char *render(fn_metrics *m)
{
    char *t;
    size_t n;
    cr_assert_eq(fn_metrics_render(m, &t, &n), 0);
    cr_assert_not_null(t);
    cr_assert_eq(strlen(t), n);
    return t;
}

/* When promtool is installed (ops/scripts/deps.sh puts it in CI), the text
 * must pass `promtool check metrics` (exit 0; lint warnings would be 3). */
static void promtool_ok(const char *text)
{
    if (access("/usr/bin/promtool", X_OK)) return;
    FILE *p = popen("/usr/bin/promtool check metrics >/tmp/test_fn_metrics_promtool.out 2>&1", "w");
    cr_assert_not_null(p);
    fputs(text, p);
    int st = pclose(p);
    char *why = NULL;
    FILE *f = fopen("/tmp/test_fn_metrics_promtool.out", "r");
    char buf[4096] = "";
    if (f) {
        buf[fread(buf, 1, sizeof buf - 1, f)] = '\0';
        fclose(f);
        why = buf;
    }
    unlink("/tmp/test_fn_metrics_promtool.out");
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "promtool: %s\n--- text:\n%s", why ? why : "?",
              text);
}

Test(fn_metrics, get_or_create_identity)
{
    fn_metrics *m = fn_metrics_new();
    cr_assert_not_null(m);
    fn_mcounter *a = fn_metrics_counter(m, "x_total", "X.", "a=\"1\",b=\"2\"");
    cr_assert_not_null(a);
    cr_expect_eq(fn_metrics_counter(m, "x_total", "X.", "a=\"1\",b=\"2\""), a);
    /* Same set in another order: the same series. */
    cr_expect_eq(fn_metrics_counter(m, "x_total", "X.", "b=\"2\",a=\"1\""), a);
    fn_mcounter *b = fn_metrics_counter(m, "x_total", "X.", "a=\"2\"");
    cr_expect(b && b != a);
    cr_expect_eq(fn_metrics_counter(m, "y_total", "Y.", NULL), fn_metrics_counter(m, "y_total", "Y.", ""));
    fn_mgauge *g = fn_metrics_gauge(m, "g", "G.", NULL);
    cr_expect_eq(fn_metrics_gauge(m, "g", "G.", NULL), g);
    fn_mhist *h = fn_metrics_histogram(m, "h_seconds", "H.", NULL, fn_metrics_latency_buckets,
                                       fn_metrics_latency_nbuckets);
    cr_expect_eq(fn_metrics_histogram(m, "h_seconds", "H.", NULL, fn_metrics_latency_buckets,
                                      fn_metrics_latency_nbuckets), h);
    fn_metrics_free(m);
}

Test(fn_metrics, type_clash_is_null)
{
    fn_metrics *m = fn_metrics_new();
    cr_assert_not_null(fn_metrics_counter(m, "a_total", "A.", NULL));
    cr_expect_null(fn_metrics_gauge(m, "a_total", "A.", NULL));
    cr_expect_null(fn_metrics_histogram(m, "a_total", "A.", "x=\"1\"", NULL, 0));
    double b1[] = { 1, 2 }, b2[] = { 1, 3 };
    cr_assert_not_null(fn_metrics_histogram(m, "h", "H.", NULL, b1, 2));
    cr_expect_null(fn_metrics_histogram(m, "h", "H.", "x=\"1\"", b2, 2));   /* other buckets */
    cr_expect_null(fn_metrics_counter(m, "h_count", "C.", NULL));            /* h's own line */
    cr_expect_null(fn_metrics_gauge(m, "h_bucket", "C.", NULL));
    cr_assert_not_null(fn_metrics_gauge(m, "q_sum", "Q.", NULL));
    cr_expect_null(fn_metrics_histogram(m, "q", "Q.", NULL, b1, 2));
    fn_metrics_free(m);
}

Test(fn_metrics, bad_names_refused)
{
    fn_metrics *m = fn_metrics_new();
    const char *names[] = { "", "1abc", "a-b", "a b", "é", "process_open_fds", NULL };
    for (size_t i = 0; names[i]; i++)
        cr_expect_null(fn_metrics_counter(m, names[i], "x", NULL), "%s", names[i]);
    cr_expect_null(fn_metrics_counter(m, NULL, "x", NULL));
    cr_expect_not_null(fn_metrics_counter(m, "ns:sub_total", "colons are allowed", NULL));
    const char *labels[] = { "a", "a=1", "a=\"1", "a=\"1\",", "1a=\"x\"", "__a=\"x\"",
                             "a=\"1\",a=\"2\"", "a=\"\\x\"", "a=\"x\ny\"", "a=\"1\" b=\"2\"", "a=\"\xff\"", NULL };
    for (size_t i = 0; labels[i]; i++)
        cr_expect_null(fn_metrics_counter(m, "ok_total", "x", labels[i]), "%s", labels[i]);
    cr_expect_not_null(fn_metrics_counter(m, "ok_total", "x", "a=\"q\\\"\\\\\\n\""));
    cr_expect_null(fn_metrics_histogram(m, "hh", "x", "le=\"1\"", NULL, 0));
    double unsorted[] = { 2, 1 }, inf[] = { 1, INFINITY };
    cr_expect_null(fn_metrics_histogram(m, "hh", "x", NULL, unsorted, 2));
    cr_expect_null(fn_metrics_histogram(m, "hh", "x", NULL, inf, 2));
    cr_expect_null(fn_metrics_counter(NULL, "a", "x", NULL));
    /* NULL series are metrics that are off: updates do nothing. */
    fn_mcounter_inc(NULL);
    fn_mgauge_set(NULL, 1);
    fn_mgauge_add(NULL, 1);
    fn_mhist_observe(NULL, 1);
    fn_metrics_free(m);
    fn_metrics_free(NULL);
}

#define NTHREADS 8
#define NITER 100000

typedef struct {
    fn_mcounter *c;
    fn_mgauge *g;
    fn_mhist *h;
} thr_arg;

static void *hammer(void *p)
{
    thr_arg *a = p;
    for (int i = 0; i < NITER; i++) {
        fn_mcounter_inc(a->c);
        fn_mgauge_add(a->g, 1);
        fn_mhist_observe(a->h, 0.5);    /* exact in binary: the sum is exact too */
    }
    return NULL;
}

Test(fn_metrics, concurrent_updates_sum_exactly)
{
    fn_metrics *m = fn_metrics_new();
    double b[] = { 1 };
    thr_arg a = { fn_metrics_counter(m, "c_total", "C.", NULL), fn_metrics_gauge(m, "g", "G.", NULL),
                  fn_metrics_histogram(m, "h", "H.", NULL, b, 1) };
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) cr_assert_eq(pthread_create(&t[i], NULL, hammer, &a), 0);
    for (int i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
    char *s = render(m);
    cr_expect(strstr(s, "\nc_total 800000\n"), "%s", s);
    cr_expect(strstr(s, "\ng 800000\n"), "%s", s);
    cr_expect(strstr(s, "\nh_bucket{le=\"1\"} 800000\n"), "%s", s);
    cr_expect(strstr(s, "\nh_sum 400000\n"), "%s", s);
    cr_expect(strstr(s, "\nh_count 800000\n"), "%s", s);
    free(s);
    fn_metrics_free(m);
}

Test(fn_metrics, histogram_text)
{
    fn_metrics *m = fn_metrics_new();
    double b[] = { 0.1, 0.5, 1 };
    fn_mhist *h = fn_metrics_histogram(m, "req_seconds", "Request time.", "method=\"search\"", b, 3);
    fn_mhist *h0 = fn_metrics_histogram(m, "req_seconds", "Request time.", NULL, b, 3);
    cr_assert(h && h0);
    double obs[] = { 0.05, 0.1, 0.2, 0.7, 3, 0.5 };
    for (size_t i = 0; i < 6; i++) fn_mhist_observe(h, obs[i]);
    fn_mhist_observe(h, NAN);   /* ignored */
    fn_mgauge_set(fn_metrics_gauge(m, "a_level", "Line1\nback\\slash", NULL), -INFINITY);
    fn_mgauge_set(fn_metrics_gauge(m, "b_level", "NaN.", NULL), NAN);
    fn_mgauge_set(fn_metrics_gauge(m, "c_level", "Small.", NULL), 1e-300);
    char *s = render(m);
    /* le joins the series' labels; _sum and _count carry them too. */
    cr_expect(strstr(s, "# HELP req_seconds Request time.\n# TYPE req_seconds histogram\n"
                        "req_seconds_bucket{method=\"search\",le=\"0.1\"} 2\n"
                        "req_seconds_bucket{method=\"search\",le=\"0.5\"} 4\n"
                        "req_seconds_bucket{method=\"search\",le=\"1\"} 5\n"
                        "req_seconds_bucket{method=\"search\",le=\"+Inf\"} 6\n"
                        "req_seconds_sum{method=\"search\"} 4.55\n"
                        "req_seconds_count{method=\"search\"} 6\n"
                        "req_seconds_bucket{le=\"0.1\"} 0\n"), "%s", s);
    cr_expect(strstr(s, "req_seconds_bucket{le=\"+Inf\"} 0\nreq_seconds_sum 0\nreq_seconds_count 0\n"),
              "%s", s);
    cr_expect(strstr(s, "# HELP a_level Line1\\nback\\\\slash\n# TYPE a_level gauge\na_level -Inf\n"), "%s", s);
    cr_expect(strstr(s, "\nb_level NaN\n"), "%s", s);
    cr_expect(strstr(s, "\nc_level 1e-300\n"), "%s", s);
    /* Families sorted by name, process_* merged in among them. */
    const char *pa = strstr(s, "# TYPE a_level"), *pp = strstr(s, "# TYPE process_cpu_seconds_total counter"),
               *pr = strstr(s, "# TYPE req_seconds");
    cr_expect(pa && pp && pr && pa < pp && pp < pr, "%s", s);
    promtool_ok(s);
    free(s);
    fn_metrics_free(m);
}

Test(fn_metrics, label_escaping)
{
    char out[64];
    cr_expect_str_eq(fn_metrics_label_escape("a\"b\\c\nd", out, sizeof out), "a\\\"b\\\\c\\nd");
    cr_expect_str_eq(fn_metrics_label_escape(NULL, out, sizeof out), "");
    /* Truncated, never in the middle of an escape. */
    cr_expect_str_eq(fn_metrics_label_escape("ab\"c", out, 4), "ab");
    cr_expect_str_eq(fn_metrics_label_escape("a\xc3\xa9", out, 3), "a");   /* not half an é */
    cr_expect_str_eq(fn_metrics_label_escape("a\xc3\xa9", out, 4), "a\xc3\xa9");
    fn_metrics *m = fn_metrics_new();
    char lab[128];
    snprintf(lab, sizeof lab, "replica=\"%s\"", fn_metrics_label_escape("h\"o\\st\n:1", out, sizeof out));
    fn_mcounter *c = fn_metrics_counter(m, "calls_total", "Calls.", lab);
    cr_assert_not_null(c);
    fn_mcounter_add(c, 3);
    char *s = render(m);
    cr_expect(strstr(s, "\ncalls_total{replica=\"h\\\"o\\\\st\\n:1\"} 3\n"), "%s", s);
    promtool_ok(s);
    free(s);
    fn_metrics_free(m);
}

Test(fn_metrics, empty_registry)
{
    fn_metrics *m = fn_metrics_new();
    char *s = render(m);
    /* Only the process metrics, each with HELP and TYPE. */
    const char *names[] = { "process_cpu_seconds_total", "process_open_fds",
                            "process_resident_memory_bytes", "process_start_time_seconds",
                            "process_virtual_memory_bytes" };
    for (size_t i = 0; i < 5; i++) {
        char want[128];
        snprintf(want, sizeof want, "# HELP %s ", names[i]);
        cr_expect(strstr(s, want), "%s missing:\n%s", names[i], s);
    }
    cr_expect_null(strstr(s, "_bucket"));
    promtool_ok(s);
    free(s);
    fn_metrics_free(m);
}

/* One HTTP/1.0 request over a plain socket; the whole reply. */
static char *http(int port, const char *req)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    size_t n = strlen(req);
    cr_assert_eq(write(fd, req, n), (ssize_t)n);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 == cap) buf = realloc(buf, cap *= 2);
        ssize_t k = read(fd, buf + len, cap - len - 1);
        if (k <= 0) break;
        len += (size_t)k;
    }
    buf[len] = '\0';
    close(fd);
    return buf;
}

Test(fn_metrics, serve)
{
    fn_metrics *m = fn_metrics_new();
    fn_mcounter_add(fn_metrics_counter(m, "served_total", "Served.", "k=\"v\""), 42);
    fn_errbuf eb = { { 0 } };
    int port = 0;
    cr_assert_eq(fn_metrics_serve(m, "127.0.0.1:0", &port, &eb), 0, "%s", eb.msg);
    cr_assert(port > 0);
    cr_expect_eq(fn_metrics_serve(m, "127.0.0.1:0", &port, &eb), FN_EINVAL);   /* one a registry */
    char *r = http(port, "GET /metrics HTTP/1.0\r\n\r\n");
    cr_expect(!strncmp(r, "HTTP/1.0 200", 12) || !strncmp(r, "HTTP/1.1 200", 12), "%s", r);
    cr_expect(strstr(r, "text/plain; version=0.0.4"), "%s", r);
    char *body = strstr(r, "\r\n\r\n");
    cr_assert_not_null(body);
    cr_expect(strstr(body, "\nserved_total{k=\"v\"} 42\n"), "%s", r);
    promtool_ok(body + 4);
    free(r);
    r = http(port, "GET /x HTTP/1.0\r\n\r\n");
    cr_expect(strstr(r, " 404 ") != NULL, "%s", r);
    free(r);
    r = http(port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
    cr_expect(strstr(r, " 405 ") != NULL, "%s", r);
    free(r);
    fn_metrics_free(m);     /* stops the daemon first */
}

Test(fn_metrics, serve_bad_listen)
{
    fn_metrics *m = fn_metrics_new();
    fn_errbuf eb = { { 0 } };
    int port;
    cr_expect_eq(fn_metrics_serve(m, "127.0.0.1", &port, &eb), FN_EINVAL);
    cr_expect(strstr(eb.msg, "HOST:PORT"), "%s", eb.msg);
    cr_expect_eq(fn_metrics_serve(m, "127.0.0.1:99999", &port, &eb), FN_EINVAL);
    cr_expect_eq(fn_metrics_serve(m, "127.0.0.1:x", &port, &eb), FN_EINVAL);
    /* A port in use. */
    cr_assert_eq(fn_metrics_serve(m, "127.0.0.1:0", &port, &eb), 0, "%s", eb.msg);
    fn_metrics *m2 = fn_metrics_new();
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    cr_expect_eq(fn_metrics_serve(m2, addr, &port, &eb), FN_EINVAL);
    fn_metrics_free(m2);
    fn_metrics_free(m);
}
