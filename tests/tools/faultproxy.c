/* faultproxy - a fault-injecting TCP proxy for tests (libuv, one thread).
 *
 *   faultproxy --listen 127.0.0.1:0 --addr-file F --target HOST:PORT --control CTLFILE
 *              [--max-buffer BYTES] [--seed N]
 *
 * Every accepted connection is connected to the target and forwarded both
 * ways. The faults come from CTLFILE, key=value lines ('#' comments), polled
 * every 50 ms (stat mtime/size/inode) and re-read when it changes; a missing
 * file means no faults:
 *
 *   delay_ms=N      hold every chunk N ms before forwarding it (order kept)
 *   direction=D     up (client->target), down (target->client) or both
 *                   (default): which way delay_ms and stall apply
 *   stall=1         forward nothing, keep every connection open (a black
 *                   hole, as a SIGSTOPped peer looks)
 *   reset=P         per chunk read, close both sides with RST with
 *                   probability P (0..1): TCP's form of loss, since dropping
 *                   bytes inside a stream would corrupt HTTP/2 instead
 *   refuse=1        accept new connections and reset them at once
 *
 * Why not netem: the test kernel has no netem qdisc. Memory is bounded: a
 * direction holding more than --max-buffer bytes (default 1 MiB) stops
 * reading its source until half of that drained. The address actually bound
 * goes to --addr-file as "HOST:PORT\n" (temporary file + rename). One line
 * per fault change goes to stderr; SIGTERM/SIGINT close everything and exit 0.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#define CTL_POLL_MS   50
#define READ_BUF_SIZE (64 * 1024)

enum { DIR_UP = 0, DIR_DOWN = 1 };  /* UP: client -> target; DOWN: target -> client */

typedef struct faults {
    uint64_t delay_ms;
    int dir_up, dir_down;       /* which directions delay/stall apply to */
    int stall;
    double reset;
    int refuse;
} faults;

typedef struct chunk {
    struct chunk *next;
    struct conn *c;
    int dir;
    uint64_t release_ms;        /* uv_now() at which it may be forwarded */
    uv_write_t wr;
    size_t len;
    char data[];
} chunk;

typedef struct conn {
    struct conn *prev, *next;   /* all live connections (faults that change apply to them) */
    uv_tcp_t side[2];           /* side[DIR_UP] = client socket (read for UP), side[DIR_DOWN] = target */
    uv_timer_t timer[2];        /* per direction: fires when the queue's head is due */
    uv_connect_t connect_req;
    uv_shutdown_t shut_req[2];
    chunk *head[2], *tail[2];   /* queued, not yet handed to uv_write */
    size_t buffered[2];         /* queued + being written */
    int paused[2];              /* reading stopped for the buffer cap */
    int eof[2];                 /* the source of this direction sent FIN */
    int shut[2];                /* FIN passed on (0 no, 1 pending, 2 done) */
    int connected;              /* the target side is up */
    int closing;
    int handles_open;
} conn;

static struct {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t ctl_timer;
    uv_signal_t sig_term, sig_int;
    struct sockaddr_storage target;
    const char *ctl_path;
    struct stat ctl_st;
    int ctl_seen;               /* ctl_st is valid (the file existed at the last poll) */
    faults f;
    size_t max_buffer;
    uint64_t rng;
    conn *conns;
    int stopping;
    /* totals, printed at exit */
    uint64_t accepted, refused, resets, bytes[2];
    char rbuf[READ_BUF_SIZE];   /* libuv calls alloc_cb then read_cb back to back: one buffer serves all */
} P;

static void logf_(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("faultproxy: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
    va_end(ap);
}

static double rnd01(void)  /* xorshift64*: reproducible with --seed */
{
    P.rng ^= P.rng >> 12;
    P.rng ^= P.rng << 25;
    P.rng ^= P.rng >> 27;
    return (double)((P.rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static int applies(int dir) { return dir == DIR_UP ? P.f.dir_up : P.f.dir_down; }

/* ------------------------------------------------------------ addresses ---- */

static int resolve(const char *hostport, struct sockaddr_storage *out)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof host) return -1;
    size_t hl = (size_t)(colon - hostport);
    memcpy(host, hostport, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {  /* [v6]:port */
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || !ai) return -1;
    memcpy(out, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return 0;
}

static int write_addr_file(const char *path, const struct sockaddr_storage *ss)
{
    char host[INET6_ADDRSTRLEN] = "", tmp[4200];
    int port;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)ss;
        uv_ip6_name(a, host, sizeof host);
        port = ntohs(a->sin6_port);
    } else {
        const struct sockaddr_in *a = (const void *)ss;
        uv_ip4_name(a, host, sizeof host);
        port = ntohs(a->sin_port);
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "w");
    if (!fp) return -1;
    int bad = fprintf(fp, ss->ss_family == AF_INET6 ? "[%s]:%d\n" : "%s:%d\n", host, port) < 0;
    bad |= fclose(fp) != 0;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------- connections ---- */

static void pump(conn *c, int dir);
static void conn_close(conn *c, int rst);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_handle_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->handles_open > 0) return;
    /* pending write and shutdown callbacks have run (ECANCELED) before any close_cb */
    for (int d = 0; d < 2; d++)
        while (c->head[d]) {
            chunk *k = c->head[d];
            c->head[d] = k->next;
            free(k);
        }
    free(c);
}

static void conn_close(conn *c, int rst)
{
    if (c->closing) return;
    c->closing = 1;
    if (c->prev) c->prev->next = c->next;
    else P.conns = c->next;
    if (c->next) c->next->prev = c->prev;
    for (int s = 0; s < 2; s++) {
        uv_handle_t *h = (uv_handle_t *)&c->side[s];
        /* RST needs a socket that is neither closing nor shutting down */
        if (rst && (s == DIR_UP || c->connected) && c->shut[s ^ 1] == 0 &&
            uv_tcp_close_reset(&c->side[s], on_handle_closed) == 0)
            continue;
        uv_close(h, on_handle_closed);
    }
    for (int d = 0; d < 2; d++) uv_close((uv_handle_t *)&c->timer[d], on_handle_closed);
}

static void maybe_resume(conn *c, int dir)
{
    if (c->paused[dir] && !c->closing && !c->eof[dir] && c->buffered[dir] <= P.max_buffer / 2) {
        c->paused[dir] = 0;
        if (uv_read_start((uv_stream_t *)&c->side[dir], on_alloc, on_read) != 0) conn_close(c, 1);
    }
}

static void on_write(uv_write_t *req, int status)
{
    chunk *k = req->data;
    conn *c = k->c;
    int dir = k->dir;
    c->buffered[dir] -= k->len;
    free(k);
    if (c->closing) return;
    if (status < 0) {
        conn_close(c, 1);
        return;
    }
    maybe_resume(c, dir);
    pump(c, dir);   /* a FIN waiting for the queue to drain */
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn *c = req->data;
    int dir = req == &c->shut_req[DIR_UP] ? DIR_UP : DIR_DOWN;
    if (c->closing) return;
    c->shut[dir] = 2;
    if (status < 0 || (c->shut[DIR_UP] == 2 && c->shut[DIR_DOWN] == 2)) conn_close(c, status < 0);
}

static void on_timer(uv_timer_t *t)
{
    conn *c = t->data;
    pump(c, t == &c->timer[DIR_UP] ? DIR_UP : DIR_DOWN);
}

/* Forward what is due in direction dir, re-arm the timer for the rest, and
 * pass a FIN on once the queue is empty. */
static void pump(conn *c, int dir)
{
    if (c->closing || !c->connected) return;
    if (P.f.stall && applies(dir)) return;
    uv_stream_t *dst = (uv_stream_t *)&c->side[dir ^ 1];
    uint64_t now = uv_now(P.loop);
    while (c->head[dir] && c->head[dir]->release_ms <= now) {
        chunk *k = c->head[dir];
        c->head[dir] = k->next;
        if (!c->head[dir]) c->tail[dir] = NULL;
        uv_buf_t b = uv_buf_init(k->data, (unsigned)k->len);
        k->wr.data = k;
        if (uv_write(&k->wr, dst, &b, 1, on_write) != 0) {
            c->buffered[dir] -= k->len;
            free(k);
            conn_close(c, 1);
            return;
        }
        P.bytes[dir] += k->len;
    }
    if (c->head[dir]) {
        uv_timer_start(&c->timer[dir], on_timer, c->head[dir]->release_ms - now, 0);
    } else if (c->eof[dir] && c->shut[dir] == 0 && c->buffered[dir] == 0) {
        c->shut[dir] = 1;
        c->shut_req[dir].data = c;
        if (uv_shutdown(&c->shut_req[dir], dst, on_shutdown) != 0) conn_close(c, 1);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(P.rbuf, sizeof P.rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    conn *c = s->data;
    int dir = s == (uv_stream_t *)&c->side[DIR_UP] ? DIR_UP : DIR_DOWN;
    if (c->closing || nread == 0) return;
    if (nread < 0) {
        if (nread != UV_EOF) {
            conn_close(c, 1);
            return;
        }
        c->eof[dir] = 1;
        uv_read_stop(s);
        pump(c, dir);
        return;
    }
    if (P.f.reset > 0 && rnd01() < P.f.reset) {
        P.resets++;
        conn_close(c, 1);
        return;
    }
    chunk *k = malloc(sizeof *k + (size_t)nread);
    if (!k) {
        conn_close(c, 1);
        return;
    }
    k->next = NULL;
    k->c = c;
    k->dir = dir;
    k->len = (size_t)nread;
    k->release_ms = uv_now(P.loop) + (applies(dir) ? P.f.delay_ms : 0);
    memcpy(k->data, P.rbuf, (size_t)nread);
    if (c->tail[dir]) c->tail[dir]->next = k;
    else c->head[dir] = k;
    c->tail[dir] = k;
    c->buffered[dir] += k->len;
    if (c->buffered[dir] > P.max_buffer) {  /* bounded memory: let TCP push back */
        uv_read_stop(s);
        c->paused[dir] = 1;
    }
    pump(c, dir);
}

static void on_target_connected(uv_connect_t *req, int status)
{
    conn *c = req->data;
    if (c->closing) return;
    if (status < 0) {
        logf_("target connect failed: %s", uv_strerror(status));
        conn_close(c, 1);
        return;
    }
    c->connected = 1;
    uv_read_start((uv_stream_t *)&c->side[DIR_DOWN], on_alloc, on_read);
    pump(c, DIR_UP);  /* what the client sent meanwhile */
}

static void on_accept(uv_stream_t *server, int status)
{
    if (status < 0 || P.stopping) return;
    conn *c = calloc(1, sizeof *c);
    if (!c) return;
    uv_tcp_init(P.loop, &c->side[DIR_UP]);
    c->side[DIR_UP].data = c;
    c->handles_open = 1;
    if (uv_accept(server, (uv_stream_t *)&c->side[DIR_UP]) != 0) {
        uv_close((uv_handle_t *)&c->side[DIR_UP], on_handle_closed);
        return;
    }
    if (P.f.refuse) {  /* as close to "connection refused" as an accepted socket gets */
        P.refused++;
        if (uv_tcp_close_reset(&c->side[DIR_UP], on_handle_closed) != 0)
            uv_close((uv_handle_t *)&c->side[DIR_UP], on_handle_closed);
        return;
    }
    P.accepted++;
    uv_tcp_init(P.loop, &c->side[DIR_DOWN]);
    c->side[DIR_DOWN].data = c;
    for (int d = 0; d < 2; d++) {
        uv_timer_init(P.loop, &c->timer[d]);
        c->timer[d].data = c;
    }
    c->handles_open = 4;
    c->next = P.conns;
    if (P.conns) P.conns->prev = c;
    P.conns = c;
    uv_tcp_nodelay(&c->side[DIR_UP], 1);
    uv_tcp_nodelay(&c->side[DIR_DOWN], 1);
    c->connect_req.data = c;
    if (uv_tcp_connect(&c->connect_req, &c->side[DIR_DOWN], (const struct sockaddr *)&P.target,
                       on_target_connected) != 0) {
        conn_close(c, 1);
        return;
    }
    uv_read_start((uv_stream_t *)&c->side[DIR_UP], on_alloc, on_read);
}

/* ---------------------------------------------------------- control file ---- */

static void faults_str(const faults *f, char *out, size_t cap)
{
    snprintf(out, cap, "delay_ms=%" PRIu64 " direction=%s stall=%d reset=%g refuse=%d", f->delay_ms,
             f->dir_up && f->dir_down ? "both" : f->dir_up ? "up" : "down", f->stall, f->reset, f->refuse);
}

static void faults_default(faults *f)
{
    memset(f, 0, sizeof *f);
    f->dir_up = f->dir_down = 1;
}

static void parse_ctl(FILE *fp, faults *f)
{
    char line[512];
    int ln = 0;
    while (fgets(line, sizeof line, fp)) {
        ln++;
        char *h = strchr(line, '#');
        if (h) *h = '\0';
        char *k = line + strspn(line, " \t\r\n");
        if (!*k) continue;
        char *eq = strchr(k, '=');
        char *end = k + strlen(k);
        while (end > k && strchr(" \t\r\n", end[-1])) *--end = '\0';
        if (!eq) {
            logf_("%s:%d: not key=value: %s", P.ctl_path, ln, k);
            continue;
        }
        char *v = eq + 1 + strspn(eq + 1, " \t");
        *eq = '\0';
        for (char *e = eq; e > k && (e[-1] == ' ' || e[-1] == '\t'); e--) e[-1] = '\0';
        char *rest = NULL;
        errno = 0;
        if (!strcmp(k, "delay_ms")) {
            unsigned long long n = strtoull(v, &rest, 10);
            if (!errno && *rest == '\0' && n <= 3600000) f->delay_ms = n;
            else logf_("%s:%d: bad delay_ms: %s", P.ctl_path, ln, v);
        } else if (!strcmp(k, "stall") || !strcmp(k, "refuse")) {
            if (strcmp(v, "0") && strcmp(v, "1")) logf_("%s:%d: %s wants 0 or 1", P.ctl_path, ln, k);
            else *(k[0] == 's' ? &f->stall : &f->refuse) = v[0] == '1';
        } else if (!strcmp(k, "reset")) {
            double p = strtod(v, &rest);
            if (!errno && *rest == '\0' && p >= 0 && p <= 1) f->reset = p;
            else logf_("%s:%d: reset wants a probability 0..1: %s", P.ctl_path, ln, v);
        } else if (!strcmp(k, "direction")) {
            if (!strcmp(v, "both")) f->dir_up = f->dir_down = 1;
            else if (!strcmp(v, "up")) f->dir_up = 1, f->dir_down = 0;
            else if (!strcmp(v, "down")) f->dir_up = 0, f->dir_down = 1;
            else logf_("%s:%d: direction wants up|down|both: %s", P.ctl_path, ln, v);
        } else {
            logf_("%s:%d: unknown key %s", P.ctl_path, ln, k);
        }
    }
}

static void apply_faults(const faults *nf)
{
    if (!memcmp(nf, &P.f, sizeof *nf)) return;
    char was[160], now[160];
    faults_str(&P.f, was, sizeof was);
    faults_str(nf, now, sizeof now);
    logf_("faults: %s (was %s)", now, was);
    P.f = *nf;
    /* un-stalled (or a direction no longer stalled): flush what waited */
    for (conn *c = P.conns, *n; c; c = n) {
        n = c->next;
        pump(c, DIR_UP);
        if (!c->closing) pump(c, DIR_DOWN);
    }
}

static void poll_ctl(uv_timer_t *t)
{
    (void)t;
    struct stat st;
    faults nf;
    faults_default(&nf);
    if (stat(P.ctl_path, &st) != 0) {
        if (P.ctl_seen) {
            P.ctl_seen = 0;
            apply_faults(&nf);  /* the file went away: no faults */
        }
        return;
    }
    if (P.ctl_seen && st.st_ino == P.ctl_st.st_ino && st.st_size == P.ctl_st.st_size &&
        st.st_mtim.tv_sec == P.ctl_st.st_mtim.tv_sec && st.st_mtim.tv_nsec == P.ctl_st.st_mtim.tv_nsec)
        return;
    FILE *fp = fopen(P.ctl_path, "r");
    if (!fp) return;  /* replaced between stat and open: the next poll sees it */
    P.ctl_st = st;
    P.ctl_seen = 1;
    parse_ctl(fp, &nf);
    fclose(fp);
    apply_faults(&nf);
}

/* ------------------------------------------------------------- shutdown ---- */

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    if (P.stopping) return;
    P.stopping = 1;
    logf_("signal %d: closing the listener and every connection", signum);
    while (P.conns) conn_close(P.conns, 0);
    uv_close((uv_handle_t *)&P.listener, NULL);
    uv_close((uv_handle_t *)&P.ctl_timer, NULL);
    uv_close((uv_handle_t *)&P.sig_term, NULL);
    uv_close((uv_handle_t *)&P.sig_int, NULL);
}

static void usage(void)
{
    fputs("usage: faultproxy --listen HOST:PORT --addr-file F --target HOST:PORT --control CTLFILE\n"
          "                  [--max-buffer BYTES] [--seed N]\n"
          "CTLFILE (re-read when it changes; missing = no faults), key=value lines:\n"
          "  delay_ms=N  direction=up|down|both  stall=0|1  reset=P(0..1)  refuse=0|1\n",
          stderr);
}

int main(int argc, char **argv)
{
    const char *listen = NULL, *addr_file = NULL, *target = NULL;
    P.max_buffer = 1 << 20;
    P.rng = (uint64_t)getpid() * 0x9E3779B97F4A7C15ULL ^ (uint64_t)uv_hrtime();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        }
        if (!v) {
            usage();
            return 2;
        }
        if (!strcmp(a, "--listen")) listen = v;
        else if (!strcmp(a, "--addr-file")) addr_file = v;
        else if (!strcmp(a, "--target")) target = v;
        else if (!strcmp(a, "--control")) P.ctl_path = v;
        else if (!strcmp(a, "--max-buffer")) P.max_buffer = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--seed")) P.rng = strtoull(v, NULL, 10) | 1;
        else {
            usage();
            return 2;
        }
        i++;
    }
    if (!listen || !target || !P.ctl_path || P.max_buffer < 4096) {
        usage();
        return 2;
    }
    if (!P.rng) P.rng = 1;
    struct sockaddr_storage la;
    if (resolve(listen, &la) != 0 || resolve(target, &P.target) != 0) {
        fprintf(stderr, "faultproxy: cannot resolve %s or %s\n", listen, target);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    faults_default(&P.f);
    P.loop = uv_default_loop();
    uv_tcp_init(P.loop, &P.listener);
    int rc = uv_tcp_bind(&P.listener, (const struct sockaddr *)&la, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&P.listener, 128, on_accept);
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    if (rc == 0) rc = uv_tcp_getsockname(&P.listener, (struct sockaddr *)&bound, &blen);
    if (rc != 0) {
        fprintf(stderr, "faultproxy: listen %s: %s\n", listen, uv_strerror(rc));
        uv_close((uv_handle_t *)&P.listener, NULL);
        uv_run(P.loop, UV_RUN_DEFAULT);
        uv_loop_close(P.loop);
        return 1;
    }
    if (addr_file && write_addr_file(addr_file, &bound) != 0) {
        fprintf(stderr, "faultproxy: cannot write %s: %s\n", addr_file, strerror(errno));
        uv_close((uv_handle_t *)&P.listener, NULL);
        uv_run(P.loop, UV_RUN_DEFAULT);
        uv_loop_close(P.loop);
        return 1;
    }
    uv_timer_init(P.loop, &P.ctl_timer);
    poll_ctl(&P.ctl_timer);
    uv_timer_start(&P.ctl_timer, poll_ctl, CTL_POLL_MS, CTL_POLL_MS);
    uv_signal_init(P.loop, &P.sig_term);
    uv_signal_start(&P.sig_term, on_signal, SIGTERM);
    uv_signal_init(P.loop, &P.sig_int);
    uv_signal_start(&P.sig_int, on_signal, SIGINT);
    char fs[160];
    faults_str(&P.f, fs, sizeof fs);
    logf_("listening on %s (pid %ld) -> %s; %s", listen, (long)getpid(), target, fs);
    uv_run(P.loop, UV_RUN_DEFAULT);
    uv_loop_close(P.loop);
    logf_("exit: %" PRIu64 " connections, %" PRIu64 " refused, %" PRIu64 " resets, %" PRIu64
          " bytes up, %" PRIu64 " bytes down", P.accepted, P.refused, P.resets, P.bytes[DIR_UP],
          P.bytes[DIR_DOWN]);
    return 0;
}
