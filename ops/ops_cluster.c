/* ops_cluster.c - `funnel cluster up|status|down|restart`: a local cluster of
 * one coordinator and R funnel-shard replicas per index shard, on loopback.
 *
 * RUNDIR holds everything about a running cluster (absolute paths are passed
 * to the daemons so that status/down work from any working directory). Each
 * process NAME ("coordinator", "shard-N" with one replica a shard, or
 * "shard-N-rJ" with R > 1 replicas, J = 0..R-1) has:
 *   NAME.pid  NAME.addr  NAME.log     pid, bound "127.0.0.1:PORT", stdout+stderr
 *   NAME.cmd      the exact argv, one a line, with --listen at the bound port
 *                 (what `restart` runs, so the topology stays valid)
 *   NAME.metrics  the metrics endpoint's "HOST:PORT" (written by the daemon)
 *   updates/NAME  a shard's live-updates store (--updates-dir)
 *   models/NAME   its pushed live models (--model-state, fn_modelstate.h):
 *                 `restart` keeps them, `up` starts without
 * and the cluster:
 *   topology.conf    "shard N ADDR [ADDR...]" lines read by the coordinator
 *   cluster.json     summary: index, pids, addresses, logs
 *   tls/, admin.token  with --tls: the development CA, certificates, keys and
 *                      the Admin bearer token (all keys and the token 0600)
 *
 * `up` never forks after gRPC is initialised: it runs openssl, starts the
 * shards, waits for their address files, starts the coordinator, and only
 * then initialises gRPC to health-check everything. The processes are our
 * children while `up` runs (so an early exit is noticed with waitpid), then
 * get re-parented to init.
 */
#include "ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buckets.h"
#include "fn_modelstate.h"
#include "builder.h"
#include "stored.h"
#include "updates.h"
#include <xxhash.h>
#include "funnel.pb-c.h"
#include "rpc_client.h"
#include "rpc_security.h"

#define UP_TIMEOUT_S 30
#define DOWN_TIMEOUT_S 10
#define MAX_REPLICAS 16            /* coordinator/topology.h COORD_MAX_REPLICAS */
#define MAX_ARGS 64

static const char cluster_usage[] =
    "usage: funnel cluster up --index IDXDIR --dir RUNDIR [--replicas R] [--tls]\n"
    "                         [--timeout-s S] [--stage1-model M1] [--stage2-model M2]\n"
    "                         [--shard-config F] [--coordinator-config F]\n"
    "       funnel cluster status --dir RUNDIR\n"
    "       funnel cluster down --dir RUNDIR\n"
    "       funnel cluster restart --dir RUNDIR NAME [--timeout-s S]\n"
    "       funnel cluster add-shard --dir RUNDIR [--input CORPUS] [--out GEN]\n"
    "       funnel cluster add-replica --dir RUNDIR --shard S\n"
    "\n"
    "up      starts R funnel-shard processes (replicas, default 1) per IDXDIR/shard-NNN\n"
    "        and one funnel-coordinator on free 127.0.0.1 ports, waits until all answer\n"
    "        Health/Check SERVING (at most S seconds, default 30), and prints the\n"
    "        coordinator address (also in RUNDIR/coordinator.addr). Processes are named\n"
    "        shard-N (R = 1) or shard-N-rJ (J = 0..R-1) and coordinator. --tls makes a\n"
    "        development CA and certificates with openssl in RUNDIR/tls, serves TLS on\n"
    "        every link (mTLS between coordinator and shards) and requires the Admin\n"
    "        token in RUNDIR/admin.token (clients: --tls-ca RUNDIR/tls/ca.pem,\n"
    "        --token-file RUNDIR/admin.token). Every daemon serves metrics on a free\n"
    "        port, written to RUNDIR/NAME.metrics. Daemons are found next to funnel\n"
    "        (../shard, ../coordinator, same dir) or in PATH; FUNNEL_SHARD_BIN and\n"
    "        FUNNEL_COORDINATOR_BIN override, FUNNEL_WRAPPER prefixes a command\n"
    "        (e.g. \"valgrind --leak-check=full\"). --stage1-model / --stage2-model\n"
    "        load the funnel's models (docs/ranking.md); --shard-config and\n"
    "        --coordinator-config pass a key=value file to every daemon of that kind.\n"
    "        With IDXDIR/spell.dict (funnel spell build) the coordinator corrects\n"
    "        spelling, with " OPS_SPELL_WORDLIST " and\n"
    "        " OPS_SPELL_WORDLIST_GB " as word lists when present; with\n"
    "        IDXDIR/intent.model (funnel intent train) it scores query intent.\n"
    "status  one line per process: role, shard, replica, address, metrics, pid, alive,\n"
    "        health; exit 0 only when every process is alive and SERVING.\n"
    "down    SIGTERM every process, SIGKILL after 10 s; exit 0 even if already down.\n"
    "restart starts the dead process NAME (e.g. shard-0-r1) again with the same\n"
    "        arguments on the same address, and waits until it is SERVING; a process\n"
    "        that is alive is left alone (exit 1).\n"
    "add-shard   while the cluster serves: builds generation GEN (default LIVE.sN+1)\n"
    "        with one shard more from the live generation's corpus (its index.json;\n"
    "        --input to override) and settings, 4096/(N+1) buckets moved to the new\n"
    "        shard; starts its replicas (as many as shard 0 has); the coordinator loads\n"
    "        GEN on every replica and switches generation and topology at once\n"
    "        (searches in flight finish on the old ones); RUNDIR/topology.conf and the\n"
    "        shards' command lines follow. `funnel index rollback` goes back.\n"
    "add-replica starts one more replica of shard S on the live generation and adds\n"
    "        it to the coordinator's topology without a restart.\n";

typedef struct proc {
    const char *role;           /* "shard" | "coordinator" */
    int shard;                  /* -1 for the coordinator */
    int replica;                /* -1: the only replica (plain names) */
    pid_t pid;
    char name[64];              /* "coordinator", "shard-N", "shard-N-rJ" */
    char addr[256];
    char metrics[256];          /* from NAME.metrics, "" if none */
    char addr_file[PATH_MAX];
    char pid_file[PATH_MAX];
    char log_file[PATH_MAX];
    char cmd_file[PATH_MAX];
    char metrics_file[PATH_MAX];
} proc;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* snprintf without -Wformat-truncation: our paths are bounded by PATH_MAX and
 * a truncated message is acceptable. */
static void sfmt(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sfmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

static void proc_paths(proc *p, const char *rundir, const char *role, int shard, int replica)
{
    memset(p, 0, sizeof *p);
    p->role = role;
    p->shard = shard;
    p->replica = shard >= 0 ? replica : -1;
    if (shard < 0) sfmt(p->name, sizeof p->name, "coordinator");
    else if (replica < 0) sfmt(p->name, sizeof p->name, "shard-%d", shard);
    else sfmt(p->name, sizeof p->name, "shard-%d-r%d", shard, replica);
    sfmt(p->addr_file, sizeof p->addr_file, "%s/%s.addr", rundir, p->name);
    sfmt(p->pid_file, sizeof p->pid_file, "%s/%s.pid", rundir, p->name);
    sfmt(p->log_file, sizeof p->log_file, "%s/%s.log", rundir, p->name);
    sfmt(p->cmd_file, sizeof p->cmd_file, "%s/%s.cmd", rundir, p->name);
    sfmt(p->metrics_file, sizeof p->metrics_file, "%s/%s.metrics", rundir, p->name);
}

static void proc_name(const proc *p, char *buf, size_t cap)
{
    if (p->shard < 0) sfmt(buf, cap, "coordinator");
    else if (p->replica < 0) sfmt(buf, cap, "shard %d", p->shard);
    else sfmt(buf, cap, "shard %d replica %d", p->shard, p->replica);
}

/* ------------------------------------------------------------ helpers ---- */

/* IDXDIR/index.json (its path into path[PATH_MAX]): the manifest, or NULL
 * with the reason in eb (*rc: -ENOENT or FN_EFORMAT). */
static json_t *load_manifest(const char *idxdir, char *path, int *rc, fn_errbuf *eb)
{
    sfmt(path, PATH_MAX, "%s/index.json", idxdir);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (root) return root;
    if (access(path, F_OK) != 0) *rc = fn_seterr(eb, -ENOENT, "%s: no index here (missing index.json)", idxdir);
    else *rc = fn_seterr(eb, FN_EFORMAT, "%s:%d: %s", path, je.line, je.text);
    return NULL;
}

int ops_index_shards(const char *idxdir, uint32_t *shards, fn_errbuf *eb)
{
    char path[PATH_MAX];
    int rc = 0;
    json_t *root = load_manifest(idxdir, path, &rc, eb);
    if (!root) return rc;
    json_t *s = json_object_get(root, "shards");
    if (!json_is_integer(s) || json_integer_value(s) < 1 || json_integer_value(s) > 100000)
        rc = fn_seterr(eb, FN_EFORMAT, "%s: \"shards\" is missing or not a positive integer", path);
    else
        *shards = (uint32_t)json_integer_value(s);
    json_decref(root);
    return rc;
}

int ops_bucket_map_of(const char *idxdir, idx_bucket_map *m, fn_errbuf *eb)
{
    char path[PATH_MAX];
    int rc = 0;
    json_t *root = load_manifest(idxdir, path, &rc, eb);
    if (!root) return rc;
    json_t *b = json_object_get(root, "buckets");
    if (!json_is_string(b)) {
        rc = fn_seterr(eb, FN_EFORMAT, "%s: no \"buckets\" (an index of schema 9 or later has them)", path);
    } else if ((rc = idx_buckets_parse(json_string_value(b), m, eb)) == 0) {
        uint32_t n = 0;
        json_t *s = json_object_get(root, "shards");
        if (json_is_integer(s)) n = (uint32_t)json_integer_value(s);
        if (n != m->shards)
            rc = fn_seterr(eb, FN_EFORMAT, "%s: \"buckets\" maps %u shards, \"shards\" says %u", path, m->shards, n);
    }
    json_decref(root);
    return rc;
}

int ops_topology_write(const char *path, const char *const *addrs, uint32_t n)
{
    size_t cap = 128;
    for (uint32_t i = 0; i < n; i++) cap += strlen(addrs[i]) + 32;
    char *buf = malloc(cap);
    if (!buf) return -ENOMEM;
    size_t len = (size_t)snprintf(buf, cap, "# written by funnel cluster up\n");
    for (uint32_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "shard %u %s\n", i, addrs[i]);
    int rc = ops_write_atomic(path, buf);
    free(buf);
    return rc;
}

int ops_pid_alive(pid_t pid, const char *marker)
{
    if (pid <= 0 || kill(pid, 0) != 0) return 0;
    char path[64], buf[8192];
    sfmt(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *rp = strrchr(buf, ')');            /* "pid (comm) S ..." */
        if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X')) return 0;
    }
    if (!marker) return 1;
    sfmt(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    f = fopen(path, "r");
    if (!f) return 1;                            /* no /proc: trust kill() */
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\0') buf[i] = ' ';
    buf[n] = '\0';
    return strstr(buf, marker) != NULL;
}

/* Print the last lines of a log, to explain why a process failed. */
static void log_tail(const char *path, int lines)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "  (no log at %s)\n", path);
        return;
    }
    char buf[4096];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long start = size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0;
    fseek(f, start, SEEK_SET);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && buf[n - 1] == '\n') buf[--n] = '\0';
    char *p = buf + n;
    int seen = 0;
    while (p > buf && seen < lines) {
        p--;
        if (*p == '\n') seen++;
    }
    if (*p == '\n') p++;
    fprintf(stderr, "  last lines of %s:\n", path);
    for (char *line = strtok(p, "\n"); line; line = strtok(NULL, "\n"))
        fprintf(stderr, "  | %s\n", line);
}

static int write_pid(const proc *p)
{
    char buf[32];
    sfmt(buf, sizeof buf, "%d\n", (int)p->pid);
    return ops_write_atomic(p->pid_file, buf);
}

static pid_t read_pid(const char *path)
{
    char buf[32];
    if (ops_read_small(path, buf, sizeof buf) != 0) return 0;
    char *end;
    long v = strtol(buf, &end, 10);
    return (*end || v <= 0 || v > INT32_MAX) ? 0 : (pid_t)v;
}

/* Start argv (with the optional wrapper words first) as a daemon in its own
 * session, stdout/stderr to log (appended to when keep_log, else truncated
 * first). Returns the pid or -errno. */
static pid_t spawn(char **wrapper, size_t nwrap, char *const *argv, const char *log, int keep_log)
{
    size_t n = 0;
    while (argv[n]) n++;
    char **full = calloc(nwrap + n + 1, sizeof *full);
    if (!full) return -ENOMEM;
    for (size_t i = 0; i < nwrap; i++) full[i] = wrapper[i];
    for (size_t i = 0; i < n; i++) full[nwrap + i] = argv[i];
    int fd = open(log, O_WRONLY | O_CREAT | (keep_log ? 0 : O_TRUNC) | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        free(full);
        return -e;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execvp(full[0], full);
        dprintf(2, "funnel: cannot execute %s: %s\n", full[0], strerror(errno));
        _exit(127);
    }
    int e = errno;
    close(fd);
    free(full);
    return pid < 0 ? -e : pid;
}

/* Run argv to completion, output to log. 0 if it exited 0, else -1 with why. */
static int run_tool(char *const *argv, const char *log, char *why, size_t cap)
{
    pid_t pid = spawn(NULL, 0, argv, log, 1);
    if (pid < 0) {
        sfmt(why, cap, "cannot start %s: %s", argv[0], strerror((int)-pid));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    sfmt(why, cap, "%s %s failed (see %s)", argv[0], argv[1] ? argv[1] : "", log);
    return -1;
}

/* Has our child p exited? Fills why. */
static int child_exited(proc *p, char *why, size_t cap)
{
    int status;
    if (p->pid <= 0) return 0;
    if (waitpid(p->pid, &status, WNOHANG) != p->pid) return 0;
    if (WIFEXITED(status)) sfmt(why, cap, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) sfmt(why, cap, "killed by signal %d", WTERMSIG(status));
    else sfmt(why, cap, "stopped");
    p->pid = 0;
    return 1;
}

static void stop_all(proc *ps, size_t n, double grace_s)
{
    for (size_t i = 0; i < n; i++)
        if (ps[i].pid > 0 && ops_pid_alive(ps[i].pid, ps[i].addr_file)) {
            kill(ps[i].pid, SIGTERM);
            kill(ps[i].pid, SIGCONT);            /* a stopped process must run to exit */
        } else {
            ps[i].pid = 0;
        }
    double until = now_s() + grace_s;
    for (;;) {
        int left = 0;
        for (size_t i = 0; i < n; i++) {
            if (ps[i].pid <= 0) continue;
            waitpid(ps[i].pid, NULL, WNOHANG);   /* reap if it is our child */
            if (ops_pid_alive(ps[i].pid, ps[i].addr_file)) left++;
            else ps[i].pid = 0;
        }
        if (!left || now_s() >= until) break;
        ops_sleep_ms(50);
    }
    for (size_t i = 0; i < n; i++)
        if (ps[i].pid > 0) {
            char name[48];
            proc_name(&ps[i], name, sizeof name);
            fprintf(stderr, "funnel cluster: %s (pid %d) did not stop in %.0f s: SIGKILL\n",
                    name, (int)ps[i].pid, grace_s);
            kill(ps[i].pid, SIGKILL);
            for (int k = 0; k < 40 && ops_pid_alive(ps[i].pid, NULL); k++) {
                waitpid(ps[i].pid, NULL, WNOHANG);
                ops_sleep_ms(25);
            }
        }
    for (size_t i = 0; i < n; i++) {
        unlink(ps[i].pid_file);
        unlink(ps[i].addr_file);
        unlink(ps[i].cmd_file);
        unlink(ps[i].metrics_file);
    }
}

static int proc_cmp(const void *a, const void *b)
{
    const proc *x = a, *y = b;
    if (x->shard != y->shard) return x->shard < y->shard ? -1 : 1;
    return (x->replica > y->replica) - (x->replica < y->replica);
}

/* Collect the processes recorded in RUNDIR by their pid files: coordinator
 * first, then shards by number and replica. */
static int load_procs(const char *rundir, proc **out, size_t *n)
{
    DIR *d = opendir(rundir);
    if (!d) return -errno;
    size_t cap = 16, cnt = 0;
    proc *ps = calloc(cap, sizeof *ps);
    if (!ps) {
        closedir(d);
        return -ENOMEM;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        int k = -1, r = -1, len = 0, coord = strcmp(e->d_name, "coordinator.pid") == 0;
        if (!coord) {
            if (sscanf(e->d_name, "shard-%d-r%d.pid%n", &k, &r, &len) == 2 && len > 0 &&
                e->d_name[len] == '\0' && r >= 0 && r < MAX_REPLICAS) {
            } else if (len = 0, r = -1,
                       sscanf(e->d_name, "shard-%d.pid%n", &k, &len) == 1 && len > 0 &&
                       e->d_name[len] == '\0') {
            } else {
                continue;
            }
            if (k < 0 || k >= 100000) continue;
        }
        if (cnt == cap) {
            proc *np = realloc(ps, 2 * cap * sizeof *ps);
            if (!np) {
                free(ps);
                closedir(d);
                return -ENOMEM;
            }
            ps = np;
            cap *= 2;
        }
        if (coord) proc_paths(&ps[cnt++], rundir, "coordinator", -1, -1);
        else proc_paths(&ps[cnt++], rundir, "shard", k, r);
    }
    closedir(d);
    qsort(ps, cnt, sizeof *ps, proc_cmp);   /* the coordinator (-1) sorts first */
    for (size_t i = 0; i < cnt; i++) {
        ps[i].pid = read_pid(ps[i].pid_file);
        if (ops_read_small(ps[i].addr_file, ps[i].addr, sizeof ps[i].addr) != 0) ps[i].addr[0] = '\0';
        if (ops_read_small(ps[i].metrics_file, ps[i].metrics, sizeof ps[i].metrics) != 0)
            ps[i].metrics[0] = '\0';
    }
    *out = ps;
    *n = cnt;
    return 0;
}

static int write_cluster_json(const char *rundir, const char *idxdir, const proc *ps, size_t n,
                              int replicas, int tls)
{
    json_t *root = json_object(), *shards = json_array();
    json_object_set_new(root, "index", json_string(idxdir));
    json_object_set_new(root, "replicas", json_integer(replicas));
    json_object_set_new(root, "tls", json_boolean(tls));
    json_object_set_new(root, "shards", shards);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(ps[i].name));
        json_object_set_new(o, "role", json_string(ps[i].role));
        if (ps[i].shard >= 0) json_object_set_new(o, "shard", json_integer(ps[i].shard));
        if (ps[i].shard >= 0)
            json_object_set_new(o, "replica", json_integer(ps[i].replica < 0 ? 0 : ps[i].replica));
        json_object_set_new(o, "pid", json_integer(ps[i].pid));
        json_object_set_new(o, "address", json_string(ps[i].addr));
        json_object_set_new(o, "metrics_file", json_string(ps[i].metrics_file));
        json_object_set_new(o, "log", json_string(ps[i].log_file));
        if (ps[i].shard >= 0) json_array_append_new(shards, o);
        else json_object_set_new(root, "coordinator", o);
    }
    char *text = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    if (!text) return -ENOMEM;
    char path[PATH_MAX];
    sfmt(path, sizeof path, "%s/cluster.json", rundir);
    size_t len = strlen(text);
    char *withnl = realloc(text, len + 2);
    if (!withnl) {
        free(text);
        return -ENOMEM;
    }
    memcpy(withnl + len, "\n", 2);
    int rc = ops_write_atomic(path, withnl);
    free(withnl);
    return rc;
}

/* ---------------------------------------------------------------- TLS ---- */

/* Write content to path with mode 0600 from the start (a secret). */
static int write_secret(const char *path, const char *content)
{
    char tmp[PATH_MAX + 8];
    sfmt(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    size_t len = strlen(content);
    int ok = write(fd, content, len) == (ssize_t)len;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno ? errno : EIO;
        unlink(tmp);
        return -e;
    }
    return 0;
}

/* RUNDIR/tls: a development CA and one certificate per role (coordinator,
 * shard, client), each for IP:127.0.0.1 and DNS:localhost and good for both
 * ends of a link; RUNDIR/admin.token. Runs openssl (before any gRPC). */
static int tls_generate(const char *rundir, char *why, size_t cap)
{
    char dir[PATH_MAX], log[PATH_MAX + 16], ext[PATH_MAX + 16], cakey[PATH_MAX + 16],
        capem[PATH_MAX + 16], serial[PATH_MAX + 16];
    sfmt(dir, sizeof dir, "%s/tls", rundir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        sfmt(why, cap, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    chmod(dir, 0700);
    sfmt(log, sizeof log, "%s/openssl.log", dir);
    sfmt(ext, sizeof ext, "%s/ext.cnf", dir);
    sfmt(cakey, sizeof cakey, "%s/ca.key", dir);
    sfmt(capem, sizeof capem, "%s/ca.pem", dir);
    sfmt(serial, sizeof serial, "%s/ca.srl", dir);
    unlink(log);
    if (ops_write_atomic(ext, "basicConstraints = critical, CA:FALSE\n"
                              "keyUsage = critical, digitalSignature, keyEncipherment\n"
                              "extendedKeyUsage = serverAuth, clientAuth\n"
                              "subjectAltName = IP:127.0.0.1, DNS:localhost\n") != 0) {
        sfmt(why, cap, "cannot write %s", ext);
        return -1;
    }
    /* P-256 keys: generated in milliseconds, unlike RSA */
    char *ca[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", cakey, "-out", capem,
                  "-days", "30", "-subj", "/CN=funnel development CA", "-addext",
                  "basicConstraints=critical,CA:TRUE", "-addext",
                  "keyUsage=critical,keyCertSign,cRLSign", NULL};
    if (run_tool(ca, log, why, cap) != 0) return -1;
    chmod(cakey, 0600);
    static const char *const roles[] = {"coordinator", "shard", "client"};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        char key[PATH_MAX + 32], csr[PATH_MAX + 32], pem[PATH_MAX + 32], subj[64];
        sfmt(key, sizeof key, "%s/%s.key", dir, roles[i]);
        sfmt(csr, sizeof csr, "%s/%s.csr", dir, roles[i]);
        sfmt(pem, sizeof pem, "%s/%s.pem", dir, roles[i]);
        sfmt(subj, sizeof subj, "/CN=funnel-%s", roles[i]);
        char *req[] = {"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                       "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr,
                       "-subj", subj, NULL};
        char *sign[] = {"openssl", "x509", "-req", "-in", csr, "-CA", capem, "-CAkey", cakey,
                        "-CAserial", serial, "-CAcreateserial", "-out", pem, "-days", "30",
                        "-extfile", ext, NULL};
        if (run_tool(req, log, why, cap) != 0 || run_tool(sign, log, why, cap) != 0) return -1;
        chmod(key, 0600);
        unlink(csr);
    }
    /* the Admin bearer token: 32 random bytes, hex */
    unsigned char rnd[32];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    int got = fd >= 0 && read(fd, rnd, sizeof rnd) == (ssize_t)sizeof rnd;
    if (fd >= 0) close(fd);
    if (!got) {
        sfmt(why, cap, "cannot read /dev/urandom");
        return -1;
    }
    char tok[2 * sizeof rnd + 2], tokpath[PATH_MAX + 16];
    for (size_t i = 0; i < sizeof rnd; i++) sfmt(tok + 2 * i, 3, "%02x", rnd[i]);
    memcpy(tok + 2 * sizeof rnd, "\n", 2);
    sfmt(tokpath, sizeof tokpath, "%s/admin.token", rundir);
    int rc = write_secret(tokpath, tok);
    if (rc) {
        sfmt(why, cap, "cannot write %s: %s", tokpath, strerror(-rc));
        return -1;
    }
    return 0;
}

/* The client side for talking to RUNDIR's daemons: TLS with RUNDIR/tls's
 * client certificate if the cluster has it, else plaintext (whatever
 * --tls-* said: the cluster is what RUNDIR says). */
static int cluster_client_security(const char *rundir, int *tls, fn_errbuf *eb)
{
    char ca[PATH_MAX + 16], cert[PATH_MAX + 16], key[PATH_MAX + 16];
    sfmt(ca, sizeof ca, "%s/tls/ca.pem", rundir);
    sfmt(cert, sizeof cert, "%s/tls/client.pem", rundir);
    sfmt(key, sizeof key, "%s/tls/client.key", rundir);
    *tls = access(ca, R_OK) == 0;
    if (!*tls) {
        rpc_tls_reset();
        return 0;
    }
    return rpc_tls_configure(ca, cert, key, 0, eb);
}

/* ----------------------------------------------------------------- up ---- */

/* Wait for p's address file. 0, or -1 with why filled (timeout / exit). */
static int wait_addr(proc *p, double deadline, char *why, size_t cap)
{
    for (;;) {
        if (ops_read_small(p->addr_file, p->addr, sizeof p->addr) == 0 && ops_addr_valid(p->addr))
            return 0;
        if (child_exited(p, why, cap)) return -1;
        if (now_s() >= deadline) {
            sfmt(why, cap, "no address in %s before the timeout", p->addr_file);
            return -1;
        }
        ops_sleep_ms(20);
    }
}

static int wait_healthy(proc *p, double deadline, char *why, size_t cap)
{
    rpc_client_t *c = rpc_client_create(p->addr);
    if (!c) {
        sfmt(why, cap, "out of memory");
        return -1;
    }
    int rc = -1;
    for (;;) {
        if (rpc_health_check(c, 1000)) {
            rc = 0;
            break;
        }
        if (child_exited(p, why, cap)) break;
        if (now_s() >= deadline) {
            sfmt(why, cap, "not SERVING at %s", p->addr);
            break;
        }
        ops_sleep_ms(50);
    }
    rpc_client_destroy(c);
    return rc;
}

/* RUNDIR/NAME.cmd: the command line, one word a line, with the --listen
 * value replaced by the bound address (restart reuses the port). */
static int write_cmd(const proc *p, char **wrap, size_t nwrap, char *const *av)
{
    size_t cap = 64;
    for (size_t i = 0; i < nwrap; i++) cap += strlen(wrap[i]) + 1;
    for (size_t i = 0; av[i]; i++) cap += strlen(av[i]) + strlen(p->addr) + 1;
    char *buf = malloc(cap), *w = buf;
    if (!buf) return -ENOMEM;
    for (size_t i = 0; i < nwrap; i++) w += sprintf(w, "%s\n", wrap[i]);
    for (size_t i = 0; av[i]; i++) {
        int listen = i > 0 && strcmp(av[i - 1], "--listen") == 0;
        if (strchr(av[i], '\n')) {
            free(buf);
            return FN_EINVAL;                   /* cannot be written one a line */
        }
        w += sprintf(w, "%s\n", listen ? p->addr : av[i]);
    }
    int rc = ops_write_atomic(p->cmd_file, buf);
    free(buf);
    return rc;
}

static int cluster_up(int argc, char **argv)
{
    static const struct option lo[] = {{"index", required_argument, 0, 'i'},
                                       {"dir", required_argument, 0, 'd'},
                                       {"timeout-s", required_argument, 0, 't'},
                                       {"replicas", required_argument, 0, 'r'},
                                       {"tls", no_argument, 0, 'T'},
                                       {"stage1-model", required_argument, 0, '1'},
                                       {"stage2-model", required_argument, 0, '2'},
                                       {"shard-config", required_argument, 0, 's'},
                                       {"coordinator-config", required_argument, 0, 'c'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    const char *idx_arg = NULL, *dir_arg = NULL;
    const char *m1 = NULL, *m2 = NULL, *shard_conf = NULL, *coord_conf = NULL;
    char m1abs[PATH_MAX], m2abs[PATH_MAX], sconf[PATH_MAX], cconf[PATH_MAX];
    double timeout_s = UP_TIMEOUT_S;
    long replicas = 1;
    int tls = 0;
    int c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'i': idx_arg = optarg; break;
        case 'd': dir_arg = optarg; break;
        case 't': timeout_s = atof(optarg); break;
        case 'r':
            replicas = strtol(optarg, &end, 10);
            if (*end || replicas < 1 || replicas > MAX_REPLICAS) {
                fprintf(stderr, "funnel cluster up: --replicas: want 1..%d, got '%s'\n",
                        MAX_REPLICAS, optarg);
                return OPS_EXIT_USAGE;
            }
            break;
        case 'T': tls = 1; break;
        case '1': m1 = optarg; break;
        case '2': m2 = optarg; break;
        case 's': shard_conf = optarg; break;
        case 'c': coord_conf = optarg; break;
        case 'h': fputs(cluster_usage, stdout); return OPS_EXIT_OK;
        default: fputs(cluster_usage, stderr); return OPS_EXIT_USAGE;
        }
    }
    if (!idx_arg || !dir_arg || optind != argc || timeout_s <= 0) {
        fprintf(stderr, "funnel cluster up: --index and --dir are required\n");
        fputs(cluster_usage, stderr);
        return OPS_EXIT_USAGE;
    }

    fn_errbuf eb = {{0}};
    char self[PATH_MAX], shard_bin[PATH_MAX], coord_bin[PATH_MAX];
    if (ops_self_dir(self, sizeof self) != 0) self[0] = '\0';
    int rc = ops_find_daemon(self, "shard", "funnel-shard", "FUNNEL_SHARD_BIN", shard_bin,
                             sizeof shard_bin, &eb);
    if (rc == 0)
        rc = ops_find_daemon(self, "coordinator", "funnel-coordinator", "FUNNEL_COORDINATOR_BIN",
                             coord_bin, sizeof coord_bin, &eb);
    if (rc != 0) {
        fprintf(stderr, "funnel cluster up: %s\n", fn_errmsg(&eb, rc));
        return OPS_EXIT_FAIL;
    }

    /* the daemons run elsewhere (their own working directory is ours, but
     * absolute paths keep RUNDIR/cluster.json meaningful) */
    const char *files[4] = { m1, m2, shard_conf, coord_conf };
    char *abs[4] = { m1abs, m2abs, sconf, cconf };
    for (int f = 0; f < 4; f++) {
        if (!files[f]) continue;
        if (!realpath(files[f], abs[f])) {
            fprintf(stderr, "funnel cluster up: %s: %s\n", files[f], strerror(errno));
            return OPS_EXIT_FAIL;
        }
        files[f] = abs[f];
    }
    m1 = files[0];
    m2 = files[1];
    shard_conf = files[2];
    coord_conf = files[3];

    char idxdir[PATH_MAX], rundir[PATH_MAX];
    uint32_t nshards = 0;
    if (!realpath(idx_arg, idxdir)) {
        fprintf(stderr, "funnel cluster up: %s: %s\n", idx_arg, strerror(errno));
        return OPS_EXIT_FAIL;
    }
    if ((rc = ops_index_shards(idxdir, &nshards, &eb)) != 0) {
        fprintf(stderr, "funnel cluster up: %s\n", fn_errmsg(&eb, rc));
        return OPS_EXIT_FAIL;
    }
    for (uint32_t i = 0; i < nshards; i++) {
        char sd[PATH_MAX + 32];
        struct stat st;
        sfmt(sd, sizeof sd, "%s/shard-%03u", idxdir, i);
        if (stat(sd, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "funnel cluster up: %s: missing (index.json says %u shards)\n", sd, nshards);
            return OPS_EXIT_FAIL;
        }
    }
    if ((rc = ops_mkdirs(dir_arg)) != 0 || !realpath(dir_arg, rundir)) {
        fprintf(stderr, "funnel cluster up: %s: %s\n", dir_arg, strerror(rc ? -rc : errno));
        return OPS_EXIT_FAIL;
    }

    /* Refuse to start a second cluster over a live one. */
    proc *old = NULL;
    size_t nold = 0;
    if (load_procs(rundir, &old, &nold) == 0) {
        for (size_t i = 0; i < nold; i++)
            if (ops_pid_alive(old[i].pid, old[i].addr_file)) {
                fprintf(stderr, "funnel cluster up: a cluster is already running in %s "
                        "(pid %d); run funnel cluster down --dir %s first\n",
                        rundir, (int)old[i].pid, dir_arg);
                free(old);
                return OPS_EXIT_FAIL;
            }
        for (size_t i = 0; i < nold; i++) {
            unlink(old[i].pid_file);
            unlink(old[i].cmd_file);
            unlink(old[i].metrics_file);
        }
        free(old);
    }

    /* TLS material first: it needs openssl, and forks are fine only before
     * gRPC starts. Without --tls, remove what an earlier --tls left, so that
     * status and restart do not speak TLS to plaintext daemons. */
    char why[512] = "";
    char tlsdir[PATH_MAX + 8], ca_pem[PATH_MAX + 16], tokfile[PATH_MAX + 16];
    char coord_pem[PATH_MAX + 32], coord_key[PATH_MAX + 32], shard_pem[PATH_MAX + 32],
        shard_key[PATH_MAX + 32];
    sfmt(tlsdir, sizeof tlsdir, "%s/tls", rundir);
    sfmt(ca_pem, sizeof ca_pem, "%s/ca.pem", tlsdir);
    sfmt(tokfile, sizeof tokfile, "%s/admin.token", rundir);
    sfmt(coord_pem, sizeof coord_pem, "%s/coordinator.pem", tlsdir);
    sfmt(coord_key, sizeof coord_key, "%s/coordinator.key", tlsdir);
    sfmt(shard_pem, sizeof shard_pem, "%s/shard.pem", tlsdir);
    sfmt(shard_key, sizeof shard_key, "%s/shard.key", tlsdir);
    if (tls) {
        if (tls_generate(rundir, why, sizeof why) != 0) {
            fprintf(stderr, "funnel cluster up: --tls: %s\n", why);
            return OPS_EXIT_FAIL;
        }
    } else {
        unlink(ca_pem);
        unlink(tokfile);
    }
    if ((rc = cluster_client_security(rundir, &tls, &eb)) != 0) {
        fprintf(stderr, "funnel cluster up: %s\n", fn_errmsg(&eb, rc));
        return OPS_EXIT_FAIL;
    }

    char **wrap = NULL;
    size_t nwrap = 0;
    if (ops_words_split(getenv("FUNNEL_WRAPPER"), &wrap, &nwrap) != 0) return OPS_EXIT_FAIL;

    size_t nsp = (size_t)nshards * (size_t)replicas, nprocs = nsp + 1;
    proc *ps = calloc(nprocs, sizeof *ps);
    const char **addrs = calloc(nshards, sizeof *addrs);
    char *addrbuf = calloc(nshards, (size_t)replicas * 260);
    if (!ps || !addrs || !addrbuf) {
        free(ps);
        free(addrs);
        free(addrbuf);
        ops_words_free(wrap);
        return OPS_EXIT_FAIL;
    }
    for (uint32_t i = 0; i < nshards; i++)
        for (long r = 0; r < replicas; r++)
            proc_paths(&ps[i * replicas + r], rundir, "shard", (int)i, replicas > 1 ? (int)r : -1);
    proc *coord = &ps[nsp];
    proc_paths(coord, rundir, "coordinator", -1, -1);
    for (size_t i = 0; i < nprocs; i++) {
        unlink(ps[i].addr_file);
        unlink(ps[i].metrics_file);
    }

    proc *bad = NULL;
    int grpc_up = 0;
    double deadline = now_s() + timeout_s;
    char *shard_av[MAX_ARGS];      /* kept for NAME.cmd */

    /* a new cluster starts with no live updates (an earlier cluster's stores
     * in RUNDIR would hide documents of this index) and no pushed models (it
     * serves the models of this command line): RUNDIR/updates/NAME and
     * RUNDIR/models/NAME are emptied */
    for (int k = 0; k < 2; k++) {
        char ud[PATH_MAX + 16];
        sfmt(ud, sizeof ud, "%s/%s", rundir, k ? "models" : "updates");
        DIR *d = opendir(ud);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            if (de->d_name[0] == '.') continue;
            char f[PATH_MAX + 600];
            sfmt(f, sizeof f, "%s/%s", ud, de->d_name);
            ops_rm_flat_dir(f);
        }
        if (d) closedir(d);
        ops_mkdirs(ud);
    }

    /* 1. shards: every replica serves the same directory */
    for (size_t i = 0; i < nsp; i++) {
        char sd[PATH_MAX + 32];
        sfmt(sd, sizeof sd, "%s/shard-%03d", idxdir, ps[i].shard);
        char ud[PATH_MAX + 96], md[PATH_MAX + 96];
        sfmt(ud, sizeof ud, "%s/updates/%s", rundir, ps[i].name);
        sfmt(md, sizeof md, "%s/models/%s", rundir, ps[i].name);
        char *av[MAX_ARGS] = {shard_bin, "--index", sd, "--listen", "127.0.0.1:0",
                              "--addr-file", ps[i].addr_file,
                              "--metrics-listen", "127.0.0.1:0", "--metrics-file", ps[i].metrics_file,
                              "--updates-dir", ud, "--model-state", md, NULL};
        int na = 15;
        if (shard_conf) { av[na++] = "--config"; av[na++] = (char *)shard_conf; }
        if (m1) { av[na++] = "--stage1-model"; av[na++] = (char *)m1; }
        if (tls) {
            av[na++] = "--tls-ca"; av[na++] = ca_pem;
            av[na++] = "--tls-cert"; av[na++] = shard_pem;
            av[na++] = "--tls-key"; av[na++] = shard_key;
            av[na++] = "--admin-token-file"; av[na++] = tokfile;
        }
        av[na] = NULL;
        pid_t pid = spawn(wrap, nwrap, av, ps[i].log_file, 0);
        if (pid < 0) {
            bad = &ps[i];
            sfmt(why, sizeof why, "cannot start %s: %s", shard_bin, strerror((int)-pid));
            goto fail;
        }
        ps[i].pid = pid;
        write_pid(&ps[i]);
        if (i == 0) memcpy(shard_av, av, sizeof av);
    }
    for (size_t i = 0; i < nsp; i++) {
        if (wait_addr(&ps[i], deadline, why, sizeof why) != 0) {
            bad = &ps[i];
            goto fail;
        }
        /* the same argv as started, but for this process's own paths */
        char sd[PATH_MAX + 32];
        sfmt(sd, sizeof sd, "%s/shard-%03d", idxdir, ps[i].shard);
        char *av[MAX_ARGS];
        memcpy(av, shard_av, sizeof av);
        char ud[PATH_MAX + 96], md[PATH_MAX + 96];
        sfmt(ud, sizeof ud, "%s/updates/%s", rundir, ps[i].name);
        sfmt(md, sizeof md, "%s/models/%s", rundir, ps[i].name);
        av[2] = sd;
        av[6] = ps[i].addr_file;
        av[10] = ps[i].metrics_file;
        av[12] = ud;
        av[14] = md;
        write_cmd(&ps[i], wrap, nwrap, av);
    }

    /* 2. topology + coordinator */
    char topo[PATH_MAX + 32];
    sfmt(topo, sizeof topo, "%s/topology.conf", rundir);
    for (uint32_t i = 0; i < nshards; i++) {
        char *w = addrbuf + (size_t)i * (size_t)replicas * 260;
        w[0] = '\0';
        for (long r = 0; r < replicas; r++)
            sfmt(w + strlen(w), 260, "%s%s", r ? " " : "", ps[i * replicas + r].addr);
        addrs[i] = w;
    }
    if ((rc = ops_topology_write(topo, addrs, nshards)) != 0) {
        bad = coord;
        sfmt(why, sizeof why, "cannot write %s: %s", topo, fn_strerror(rc));
        goto fail;
    }
    {
        char md[PATH_MAX + 96];
        sfmt(md, sizeof md, "%s/models/%s", rundir, coord->name);
        char *av[MAX_ARGS] = {coord_bin, "--topology", topo, "--listen", "127.0.0.1:0",
                              "--addr-file", coord->addr_file,
                              "--metrics-listen", "127.0.0.1:0", "--metrics-file", coord->metrics_file,
                              "--model-state", md, NULL};
        int na = 13;
        if (coord_conf) { av[na++] = "--config"; av[na++] = (char *)coord_conf; }
        if (m2) { av[na++] = "--stage2-model"; av[na++] = (char *)m2; }
        if (tls) {
            /* its certificate serves clients and is its client certificate to shards */
            av[na++] = "--tls-ca"; av[na++] = ca_pem;
            av[na++] = "--tls-cert"; av[na++] = coord_pem;
            av[na++] = "--tls-key"; av[na++] = coord_key;
            av[na++] = "--admin-token-file"; av[na++] = tokfile;
        }
        /* spelling: the index's dictionary (funnel spell build --out
         * IDXDIR/spell.dict), and the system's English word list */
        /* the index's analyzer, for the coordinator's synonym terms; WordNet */
        static char analyzer[256];
        {
            char ij[PATH_MAX + 16];
            sfmt(ij, sizeof ij, "%s/index.json", idxdir);
            json_error_t je;
            json_t *root = json_load_file(ij, 0, &je);
            const char *desc = root ? json_string_value(json_object_get(root, "analyzer")) : NULL;
            if (desc && strlen(desc) < sizeof analyzer) {
                sfmt(analyzer, sizeof analyzer, "%s", desc);
                av[na++] = "--analyzer";
                av[na++] = analyzer;
            }
            json_decref(root);
        }
        if (access(OPS_WORDNET_DIR "/index.noun", R_OK) == 0) {
            av[na++] = "--synonyms";
            av[na++] = OPS_WORDNET_DIR;
        }
        static char imodel[PATH_MAX + 16];
        sfmt(imodel, sizeof imodel, "%s/intent.model", idxdir);
        if (access(imodel, R_OK) == 0) {
            av[na++] = "--intent-model";
            av[na++] = imodel;
        }
        static char sdict[PATH_MAX + 16];
        sfmt(sdict, sizeof sdict, "%s/spell.dict", idxdir);
        if (access(sdict, R_OK) == 0) {
            av[na++] = "--spell-dict";
            av[na++] = sdict;
            static char lists[2 * sizeof OPS_SPELL_WORDLIST_GB + 8];
            lists[0] = '\0';
            const char *wl[2] = { OPS_SPELL_WORDLIST, OPS_SPELL_WORDLIST_GB };
            for (int w = 0; w < 2; w++)
                if (access(wl[w], R_OK) == 0)
                    sfmt(lists + strlen(lists), sizeof lists - strlen(lists), "%s%s", lists[0] ? ":" : "", wl[w]);
            if (lists[0]) {
                av[na++] = "--spell-wordlist";
                av[na++] = lists;
            }
        }
        av[na] = NULL;
        pid_t pid = spawn(wrap, nwrap, av, coord->log_file, 0);
        if (pid < 0) {
            bad = coord;
            sfmt(why, sizeof why, "cannot start %s: %s", coord_bin, strerror((int)-pid));
            goto fail;
        }
        coord->pid = pid;
        write_pid(coord);
        if (wait_addr(coord, deadline, why, sizeof why) != 0) {
            bad = coord;
            goto fail;
        }
        write_cmd(coord, wrap, nwrap, av);
    }

    /* 3. health: only now is it safe to start gRPC (no fork after this). */
    rpc_init();
    grpc_up = 1;
    for (size_t i = 0; i < nprocs; i++)
        if (wait_healthy(&ps[i], deadline, why, sizeof why) != 0) {
            bad = &ps[i];
            goto fail;
        }
    rpc_shutdown();
    grpc_up = 0;

    for (size_t i = 0; i < nprocs; i++)
        if (ops_read_small(ps[i].metrics_file, ps[i].metrics, sizeof ps[i].metrics) != 0)
            ps[i].metrics[0] = '\0';
    if ((rc = write_cluster_json(rundir, idxdir, ps, nprocs, (int)replicas, tls)) != 0)
        fprintf(stderr, "funnel cluster up: warning: cannot write cluster.json: %s\n", fn_strerror(rc));
    printf("%s\n", coord->addr);
    fflush(stdout);
    free(addrs);
    free(addrbuf);
    free(ps);
    ops_words_free(wrap);
    return OPS_EXIT_OK;

fail:
    if (grpc_up) rpc_shutdown();
    {
        char name[48];
        proc_name(bad, name, sizeof name);
        fprintf(stderr, "funnel cluster up: %s failed: %s\n", name, why);
        log_tail(bad->log_file, 15);
        fprintf(stderr, "funnel cluster up: stopping what was started\n");
    }
    stop_all(ps, nprocs, 3.0);
    free(addrs);
    free(addrbuf);
    free(ps);
    ops_words_free(wrap);
    return OPS_EXIT_FAIL;
}

/* ------------------------------------------------------ status / down ---- */

static int dir_only(const char *what, int argc, char **argv, const char **dir)
{
    static const struct option lo[] = {{"dir", required_argument, 0, 'd'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    int c;
    *dir = NULL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'd': *dir = optarg; break;
        case 'h': fputs(cluster_usage, stdout); return OPS_EXIT_OK;
        default: fputs(cluster_usage, stderr); return OPS_EXIT_USAGE;
        }
    }
    if (!*dir || optind != argc) {
        fprintf(stderr, "funnel cluster %s: --dir is required\n", what);
        fputs(cluster_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    return -1;
}

static int cluster_status(int argc, char **argv)
{
    const char *dir_arg;
    int rc = dir_only("status", argc, argv, &dir_arg);
    if (rc >= 0) return rc;
    char rundir[PATH_MAX];
    proc *ps = NULL;
    size_t n = 0;
    if (!realpath(dir_arg, rundir) || load_procs(rundir, &ps, &n) != 0 || n == 0) {
        fprintf(stderr, "funnel cluster status: no cluster in %s\n", dir_arg);
        free(ps);
        return OPS_EXIT_FAIL;
    }
    fn_errbuf eb = {{0}};
    int tls;
    if ((rc = cluster_client_security(rundir, &tls, &eb)) != 0) {
        fprintf(stderr, "funnel cluster status: %s\n", fn_errmsg(&eb, rc));
        free(ps);
        return OPS_EXIT_FAIL;
    }
    rpc_init();
    int all_ok = 1;
    printf("%-12s %-6s %-7s %-22s %-22s %-8s %-6s %s\n", "ROLE", "SHARD", "REPLICA", "ADDRESS",
           "METRICS", "PID", "ALIVE", "HEALTH");
    for (size_t i = 0; i < n; i++) {
        int alive = ops_pid_alive(ps[i].pid, ps[i].addr_file);
        int healthy = 0;
        if (alive && ps[i].addr[0]) {
            rpc_client_t *c = rpc_client_create(ps[i].addr);
            if (c) {
                healthy = rpc_health_check(c, 1000);
                rpc_client_destroy(c);
            }
        }
        char shard[16] = "-", replica[16] = "-";
        if (ps[i].shard >= 0) sfmt(shard, sizeof shard, "%d", ps[i].shard);
        if (ps[i].shard >= 0) sfmt(replica, sizeof replica, "%d", ps[i].replica < 0 ? 0 : ps[i].replica);
        printf("%-12s %-6s %-7s %-22s %-22s %-8d %-6s %s\n", ps[i].role, shard, replica,
               ps[i].addr[0] ? ps[i].addr : "-", ps[i].metrics[0] ? ps[i].metrics : "-",
               (int)ps[i].pid, alive ? "yes" : "no",
               healthy ? "SERVING" : (alive ? "NOT_SERVING" : "DOWN"));
        all_ok = all_ok && alive && healthy;
    }
    fflush(stdout);
    rpc_shutdown();
    free(ps);
    return all_ok ? OPS_EXIT_OK : OPS_EXIT_FAIL;
}

static int cluster_down(int argc, char **argv)
{
    const char *dir_arg;
    int rc = dir_only("down", argc, argv, &dir_arg);
    if (rc >= 0) return rc;
    char rundir[PATH_MAX];
    proc *ps = NULL;
    size_t n = 0;
    if (!realpath(dir_arg, rundir) || load_procs(rundir, &ps, &n) != 0 || n == 0) {
        fprintf(stderr, "funnel cluster down: nothing running in %s\n", dir_arg);
        free(ps);
        return OPS_EXIT_OK;
    }
    size_t running = 0;
    for (size_t i = 0; i < n; i++) running += ops_pid_alive(ps[i].pid, ps[i].addr_file);
    stop_all(ps, n, DOWN_TIMEOUT_S);
    char path[PATH_MAX + 16];
    sfmt(path, sizeof path, "%s/cluster.json", rundir);
    unlink(path);
    fprintf(stderr, "funnel cluster down: stopped %zu of %zu processes\n", running, n);
    free(ps);
    return OPS_EXIT_OK;
}

/* ------------------------------------------------------------ restart ---- */

/* Read NAME.cmd into a NULL-terminated argv (one block: free(*av) frees all). */
static int read_cmd(const char *path, char ***out)
{
    FILE *f = fopen(path, "r");
    if (!f) return -errno;
    char *text = malloc(65536);
    size_t n = text ? fread(text, 1, 65535, f) : 0;
    fclose(f);
    if (!text) return -ENOMEM;
    text[n] = '\0';
    size_t lines = 0;
    for (size_t i = 0; i < n; i++) lines += text[i] == '\n';
    char **av = malloc((lines + 2) * sizeof *av + n + 1);
    if (!av) {
        free(text);
        return -ENOMEM;
    }
    char *s = (char *)(av + lines + 2);
    memcpy(s, text, n + 1);
    free(text);
    size_t k = 0;
    for (char *line = strtok(s, "\n"); line && k < lines + 1; line = strtok(NULL, "\n")) av[k++] = line;
    av[k] = NULL;
    if (k == 0) {
        free(av);
        return FN_EFORMAT;
    }
    *out = av;
    return 0;
}

static int cluster_restart(int argc, char **argv)
{
    static const struct option lo[] = {{"dir", required_argument, 0, 'd'},
                                       {"timeout-s", required_argument, 0, 't'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    const char *dir_arg = NULL;
    double timeout_s = UP_TIMEOUT_S;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'd': dir_arg = optarg; break;
        case 't': timeout_s = atof(optarg); break;
        case 'h': fputs(cluster_usage, stdout); return OPS_EXIT_OK;
        default: fputs(cluster_usage, stderr); return OPS_EXIT_USAGE;
        }
    }
    if (!dir_arg || optind != argc - 1 || timeout_s <= 0) {
        fprintf(stderr, "funnel cluster restart: want --dir RUNDIR and one process NAME\n");
        fputs(cluster_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    const char *name = argv[optind];
    char rundir[PATH_MAX];
    proc *ps = NULL;
    size_t n = 0;
    if (!realpath(dir_arg, rundir) || load_procs(rundir, &ps, &n) != 0 || n == 0) {
        fprintf(stderr, "funnel cluster restart: no cluster in %s\n", dir_arg);
        free(ps);
        return OPS_EXIT_FAIL;
    }
    proc *p = NULL;
    for (size_t i = 0; i < n && !p; i++)
        if (strcmp(ps[i].name, name) == 0) p = &ps[i];
    if (!p) {
        fprintf(stderr, "funnel cluster restart: no process %s in %s (names:", name, dir_arg);
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %s", ps[i].name);
        fprintf(stderr, ")\n");
        free(ps);
        return OPS_EXIT_FAIL;
    }
    if (ops_pid_alive(p->pid, p->addr_file)) {
        fprintf(stderr, "funnel cluster restart: %s is running (pid %d): not restarted "
                "(stop it first)\n", name, (int)p->pid);
        free(ps);
        return OPS_EXIT_FAIL;
    }
    char **av = NULL;
    int rc = read_cmd(p->cmd_file, &av);
    if (rc != 0) {
        fprintf(stderr, "funnel cluster restart: %s: %s (was the cluster started by this "
                "funnel's cluster up?)\n", p->cmd_file, fn_strerror(rc));
        free(ps);
        return OPS_EXIT_FAIL;
    }
    char want[256] = "";
    for (size_t i = 1; av[i]; i++)
        if (strcmp(av[i - 1], "--listen") == 0) sfmt(want, sizeof want, "%s", av[i]);
    fn_errbuf eb = {{0}};
    int tls;
    if ((rc = cluster_client_security(rundir, &tls, &eb)) != 0) {
        fprintf(stderr, "funnel cluster restart: %s\n", fn_errmsg(&eb, rc));
        free(av);
        free(ps);
        return OPS_EXIT_FAIL;
    }
    unlink(p->addr_file);
    unlink(p->metrics_file);
    char why[512] = "";
    double deadline = now_s() + timeout_s;
    pid_t pid = spawn(NULL, 0, av, p->log_file, 1);   /* the log goes on */
    free(av);
    if (pid < 0) {
        fprintf(stderr, "funnel cluster restart: cannot start %s: %s\n", name, strerror((int)-pid));
        free(ps);
        return OPS_EXIT_FAIL;
    }
    p->pid = pid;
    write_pid(p);
    int ok = wait_addr(p, deadline, why, sizeof why) == 0;
    if (ok && want[0] && strcmp(p->addr, want) != 0) {
        sfmt(why, sizeof why, "listens on %s, not %s", p->addr, want);
        ok = 0;
    }
    if (ok) {
        rpc_init();
        ok = wait_healthy(p, deadline, why, sizeof why) == 0;
        rpc_shutdown();
    }
    if (!ok) {
        fprintf(stderr, "funnel cluster restart: %s failed: %s\n", name, why);
        log_tail(p->log_file, 15);
        if (p->pid > 0 && ops_pid_alive(p->pid, NULL)) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
        }
        free(ps);
        return OPS_EXIT_FAIL;
    }
    fprintf(stderr, "funnel cluster restart: %s is SERVING again at %s (pid %d)\n", name, p->addr,
            (int)pid);
    free(ps);
    return OPS_EXIT_OK;
}

/* ------------------------------------------------- add-shard / add-replica ---- */

/* The value after flag in a NULL-terminated argv, or -1. */
static int arg_at(char **av, const char *flag)
{
    for (int i = 1; av[i]; i++)
        if (strcmp(av[i - 1], flag) == 0) return i;
    return -1;
}

/* RUNDIR/SUB/NAME for process p (RUNDIR: where its pid file is) into out */
static char *run_subdir(const proc *p, const char *sub, char *out, size_t cap)
{
    const char *slash = strrchr(p->pid_file, '/');
    sfmt(out, cap, "%.*s/%s/%s", slash ? (int)(slash - p->pid_file) : 1, slash ? p->pid_file : ".", sub, p->name);
    return out;
}

/* A new shard process p from template argv tmpl (a sibling's NAME.cmd):
 * the index directory sd, p's own files, a free port. Started and its
 * address read (no gRPC here: forks come before rpc_init). 0 or -1 (why). */
static int start_like(proc *p, char **tmpl, const char *sd, double deadline, char *why, size_t cap)
{
    size_t n = 0;
    while (tmpl[n]) n++;
    char **av = calloc(n + 1, sizeof *av);
    if (!av) return sfmt(why, cap, "out of memory"), -1;
    memcpy(av, tmpl, n * sizeof *av);
    int ix = arg_at(av, "--index"), il = arg_at(av, "--listen"), ia = arg_at(av, "--addr-file"),
        im = arg_at(av, "--metrics-file");
    if (ix < 0 || il < 0 || ia < 0) {
        free(av);
        return sfmt(why, cap, "the shard command line has no --index, --listen or --addr-file"), -1;
    }
    av[ix] = (char *)sd;
    av[il] = "127.0.0.1:0";
    av[ia] = p->addr_file;
    if (im >= 0) av[im] = p->metrics_file;
    /* its own live-updates store, beside its siblings' */
    int iu = arg_at(av, "--updates-dir");
    char ud[PATH_MAX + 96];
    if (iu >= 0) av[iu] = run_subdir(p, "updates", ud, sizeof ud);
    /* its own model state, starting from the template's last stage-1 push
     * (pushes reach every replica of every shard: the new one joins them) */
    int is = arg_at(av, "--model-state");
    char md[PATH_MAX + 96];
    if (is >= 0) {
        run_subdir(p, "models", md, sizeof md);
        fn_modelstate st;
        fn_errbuf eb = {{0}};
        int got = fn_modelstate_load(tmpl[is], "stage1", &st, &eb);
        if (got == 0) {
            got = fn_modelstate_save(md, "stage1", st.name, st.model, st.len, &eb);
            fn_modelstate_free(&st);
        } else if (got == 1) {   /* none pushed: no older process's file either */
            char f[PATH_MAX + 128];
            sfmt(f, sizeof f, "%s/stage1.model", md);
            unlink(f);
        }
        if (got < 0) {
            free(av);
            return sfmt(why, cap, "the template's pushed stage-1 model: %s", eb.msg), -1;
        }
        av[is] = md;
    }
    unlink(p->addr_file);
    unlink(p->metrics_file);
    pid_t pid = spawn(NULL, 0, av, p->log_file, 0);
    if (pid < 0) {
        sfmt(why, cap, "cannot start %s: %s", av[0], strerror((int)-pid));
        free(av);
        return -1;
    }
    p->pid = pid;
    write_pid(p);
    int rc = wait_addr(p, deadline, why, cap);
    if (rc == 0) write_cmd(p, NULL, 0, av);
    free(av);
    return rc;
}

/* RUNDIR's shard processes, a template command line (the first shard's) and
 * the live generation (the parent of its --index). 0 or -1 (message printed). */
static int scale_load(const char *cmdname, const char *dir_arg, char *rundir, proc **ps, size_t *n, char ***tmpl,
                      char *gen)
{
    if (!realpath(dir_arg, rundir) || load_procs(rundir, ps, n) != 0 || *n < 2) {
        fprintf(stderr, "funnel cluster %s: no cluster in %s\n", cmdname, dir_arg);
        return -1;
    }
    const proc *first = NULL;
    for (size_t i = 0; i < *n && !first; i++)
        if ((*ps)[i].shard >= 0) first = &(*ps)[i];
    int rc = first ? read_cmd(first->cmd_file, tmpl) : -ENOENT;
    int ix = rc == 0 ? arg_at(*tmpl, "--index") : -1;
    char sd[PATH_MAX];
    if (ix < 0 || !realpath((*tmpl)[ix], sd)) {
        fprintf(stderr, "funnel cluster %s: %s: no shard command line with an existing --index\n", cmdname,
                first ? first->cmd_file : rundir);
        return -1;
    }
    char *slash = strrchr(sd, '/');
    if (slash) *slash = '\0';
    snprintf(gen, PATH_MAX, "%s", sd);
    return 0;
}

/* The coordinator: stage gen with the topology (and bucket map) and
 * activate it. 0 or -1 (message printed; a staged candidate is discarded). */
static int scale_switch(const char *cmdname, const char *rundir, const char *gen, const char *topo,
                        const char *buckets)
{
    char path[PATH_MAX + 32], addr[300];
    sfmt(path, sizeof path, "%s/coordinator.addr", rundir);
    if (ops_read_small(path, addr, sizeof addr) != 0) {
        fprintf(stderr, "funnel cluster %s: %s: no coordinator address\n", cmdname, path);
        return -1;
    }
    rpc_client_t *c = rpc_client_create(addr);
    if (!c) return -1;
    Funnel__V1__GenerationRequest rq = FUNNEL__V1__GENERATION_REQUEST__INIT;
    rq.op = FUNNEL__V1__GENERATION_REQUEST__OP__STAGE;
    rq.generation = (char *)gen;
    rq.topology = (char *)topo;
    rq.buckets = (char *)(buckets ? buckets : "");
    ProtobufCMessage *m = NULL;
    rpc_status st;
    int ret = -1;
    if (rpc_client_call(c, RPC_METHOD_ADMIN_GENERATION, &rq.base, &funnel__v1__generation_response__descriptor,
                        OPS_STAGE_MS, &m, &st) != GRPC_STATUS_OK) {
        fprintf(stderr, "funnel cluster %s: stage: %s: %s\n", cmdname, rpc_status_name(st.code), st.message);
        goto out;
    }
    protobuf_c_message_free_unpacked(m, NULL);
    rq.op = FUNNEL__V1__GENERATION_REQUEST__OP__ACTIVATE;
    rq.topology = rq.buckets = (char *)"";
    if (rpc_client_call(c, RPC_METHOD_ADMIN_GENERATION, &rq.base, &funnel__v1__generation_response__descriptor,
                        120000, &m, &st) != GRPC_STATUS_OK) {
        fprintf(stderr, "funnel cluster %s: activate: %s: %s\n", cmdname, rpc_status_name(st.code), st.message);
        rq.op = FUNNEL__V1__GENERATION_REQUEST__OP__DISCARD;
        if (rpc_client_call(c, RPC_METHOD_ADMIN_GENERATION, &rq.base, &funnel__v1__generation_response__descriptor,
                            120000, &m, &st) == GRPC_STATUS_OK)
            protobuf_c_message_free_unpacked(m, NULL);
        goto out;
    }
    protobuf_c_message_free_unpacked(m, NULL);
    ret = 0;
out:
    rpc_client_destroy(c);
    return ret;
}

static void stop_new(proc *np, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (np[i].pid > 0) kill(np[i].pid, SIGTERM);
        unlink(np[i].pid_file);
        unlink(np[i].cmd_file);
        unlink(np[i].addr_file);
    }
}

/* analyzer description "stemmer=X;stopwords=Y;..." -> the value of key */
static const char *desc_value(const char *desc, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = desc; p && *p; p = strchr(p, ';') ? strchr(p, ';') + 1 : NULL) {
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t n = strcspn(p + kl + 1, ";");
            snprintf(out, cap, "%.*s", (int)n, p + kl + 1);
            return out;
        }
    }
    return NULL;
}

/* Build gen from corpus with the settings and analyzer of the generation
 * whose manifest (index.json) is man, into nshards shards by map. */
static int build_like(json_t *man, const char *corpus, const char *gen, uint32_t nshards, const idx_bucket_map *map,
                      int fail_on_bad, idx_build_stats *bst, fn_errbuf *eb)
{
    json_t *set = json_object_get(man, "settings");
    char stem[64] = "english", stop[PATH_MAX] = "english", codec[32] = "bp128", metric[16] = "cosine";
    const char *an = json_string_value(json_object_get(man, "analyzer"));
    if (an) {
        desc_value(an, "stemmer", stem, sizeof stem);
        desc_value(an, "stopwords", stop, sizeof stop);
    }
    if (json_is_string(json_object_get(set, "codec"))) sfmt(codec, sizeof codec, "%s", json_string_value(json_object_get(set, "codec")));
    if (json_is_string(json_object_get(set, "vec_metric"))) sfmt(metric, sizeof metric, "%s", json_string_value(json_object_get(set, "vec_metric")));
    idx_build_opts o;
    memset(&o, 0, sizeof o);
    o.input = corpus;
    o.out_dir = gen;
    o.shards = nshards;
    o.buckets = map;
    o.analyzer.stemmer = stem;
    o.analyzer.stopwords = stop;
    o.codec = codec;
    o.vec_metric = metric;
    o.vec_dim = (uint32_t)json_integer_value(json_object_get(set, "vec_dim"));
    o.ann_M = (uint32_t)json_integer_value(json_object_get(set, "ann_M"));
    o.ann_efc = (uint32_t)json_integer_value(json_object_get(set, "ann_efc"));
    o.mem_budget = (size_t)json_integer_value(json_object_get(set, "mem_budget"));
    o.on_error = fail_on_bad ? IDX_ON_ERROR_FAIL : IDX_ON_ERROR_SKIP;
    return idx_build(&o, bst, eb);
}

static int cluster_add_shard(int argc, char **argv)
{
    static const struct option lo[] = {{"dir", required_argument, 0, 'd'}, {"input", required_argument, 0, 'i'},
                                       {"out", required_argument, 0, 'o'}, {"timeout-s", required_argument, 0, 't'},
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *dir_arg = NULL, *input = NULL, *out_arg = NULL;
    double timeout_s = UP_TIMEOUT_S;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'd': dir_arg = optarg; break;
        case 'i': input = optarg; break;
        case 'o': out_arg = optarg; break;
        case 't': timeout_s = atof(optarg); break;
        case 'h': fputs(cluster_usage, stdout); return OPS_EXIT_OK;
        default: fputs(cluster_usage, stderr); return OPS_EXIT_USAGE;
        }
    }
    if (!dir_arg || optind != argc || timeout_s <= 0) {
        fprintf(stderr, "funnel cluster add-shard: --dir RUNDIR is required\n");
        return OPS_EXIT_USAGE;
    }
    char rundir[PATH_MAX], live[PATH_MAX], why[512] = "";
    proc *ps = NULL;
    size_t n = 0;
    char **tmpl = NULL;
    int ret = OPS_EXIT_FAIL;
    proc np[MAX_REPLICAS];
    size_t nnew = 0;
    if (scale_load("add-shard", dir_arg, rundir, &ps, &n, &tmpl, live)) goto out;
    /* the live generation's partitioning and how it was built */
    idx_bucket_map map, nmap;
    fn_errbuf eb = {{0}};
    int rc = ops_bucket_map_of(live, &map, &eb);
    if (rc) {
        fprintf(stderr, "funnel cluster add-shard: %s\n", fn_errmsg(&eb, rc));
        goto out;
    }
    uint32_t moved, N = map.shards;
    if (idx_buckets_add_shard(&map, &nmap, &moved)) {
        fprintf(stderr, "funnel cluster add-shard: %u shards is the most buckets allow\n", N);
        goto out;
    }
    char ij[PATH_MAX + 16];
    sfmt(ij, sizeof ij, "%s/index.json", live);
    json_error_t je;
    json_t *man = json_load_file(ij, 0, &je);
    const char *corpus = input ? input : json_string_value(json_object_get(json_object_get(man, "corpus"), "path"));
    json_t *set = json_object_get(man, "settings");
    const char *fmodel = json_string_value(json_object_get(set, "filter_model"));
    if (!man || !corpus || (fmodel && *fmodel)) {
        fprintf(stderr, "funnel cluster add-shard: %s: %s\n", ij,
                !man ? je.text : !corpus ? "no corpus path in the manifest (give --input)"
                : "built with a content-filter model: rebuild with funnel index build --buckets-from and publish");
        json_decref(man);
        goto out;
    }
    char gen[PATH_MAX + 32];
    if (out_arg) sfmt(gen, sizeof gen, "%s", out_arg);
    else sfmt(gen, sizeof gen, "%s.s%u", live, N + 1);
    /* the new generation: the same corpus, settings and analyzer, N + 1
     * shards and the moved buckets (scores do not depend on the split) */
    double t0 = now_s();
    idx_build_stats bst;
    rc = build_like(man, corpus, gen, N + 1, &nmap, 0, &bst, &eb);
    json_decref(man);
    if (rc) {
        fprintf(stderr, "funnel cluster add-shard: building %s: %s\n", gen, fn_errmsg(&eb, rc));
        goto out;
    }
    printf("built %s: %u shards, %llu documents, %u of %u buckets moved to shard %u, %.1f s\n", gen, N + 1,
           (unsigned long long)bst.docs, moved, IDX_BUCKETS, N, now_s() - t0);
    /* the new shard's processes, as many replicas as shard 0 has */
    size_t R = 0;
    int plain = 0;
    for (size_t i = 0; i < n; i++)
        if (ps[i].shard == 0) {
            R++;
            plain = ps[i].replica < 0;
        }
    double deadline = now_s() + timeout_s;
    char sd[PATH_MAX + 64];
    sfmt(sd, sizeof sd, "%s/shard-%03u", gen, N);
    for (size_t r = 0; r < R && r < MAX_REPLICAS; r++) {
        proc_paths(&np[nnew], rundir, "shard", (int)N, plain ? -1 : (int)r);
        nnew++;
        if (start_like(&np[nnew - 1], tmpl, sd, deadline, why, sizeof why)) {
            fprintf(stderr, "funnel cluster add-shard: %s: %s\n", np[nnew - 1].name, why);
            goto fail;
        }
    }
    /* the topology with the new shard */
    char tpath[PATH_MAX + 32], ttext[65536];
    sfmt(tpath, sizeof tpath, "%s/topology.conf", rundir);
    if (ops_read_small(tpath, ttext, sizeof ttext - 4096) != 0) {
        fprintf(stderr, "funnel cluster add-shard: cannot read %s\n", tpath);
        goto fail;
    }
    size_t tl = strlen(ttext);
    tl += (size_t)snprintf(ttext + tl, sizeof ttext - tl, "\nshard %u", N);
    for (size_t i = 0; i < nnew; i++) tl += (size_t)snprintf(ttext + tl, sizeof ttext - tl, " %s", np[i].addr);
    snprintf(ttext + tl, sizeof ttext - tl, "\n");
    char btext[IDX_BUCKETS_TEXT_MAX];
    idx_buckets_format(&nmap, btext, sizeof btext);
    rpc_init();
    int tls;
    if (cluster_client_security(rundir, &tls, &eb) != 0) {
        fprintf(stderr, "funnel cluster add-shard: %s\n", eb.msg);
        rpc_shutdown();
        goto fail;
    }
    for (size_t i = 0; i < nnew; i++)
        if (wait_healthy(&np[i], deadline, why, sizeof why)) {
            fprintf(stderr, "funnel cluster add-shard: %s: %s\n", np[i].name, why);
            rpc_shutdown();
            goto fail;
        }
    rc = scale_switch("add-shard", rundir, gen, ttext, btext);
    rpc_shutdown();
    if (rc) goto fail;
    ops_write_atomic(tpath, ttext);
    ops_rewrite_shard_cmds(rundir, gen);
    printf("shard %u added (%zu replica%s): %u shards serve %s\n", N, nnew, nnew == 1 ? "" : "s", N + 1, gen);
    ret = OPS_EXIT_OK;
    goto out;
fail:
    stop_new(np, nnew);
out:
    free(tmpl);
    free(ps);
    return ret;
}

static int cluster_add_replica(int argc, char **argv)
{
    static const struct option lo[] = {{"dir", required_argument, 0, 'd'}, {"shard", required_argument, 0, 's'},
                                       {"timeout-s", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    const char *dir_arg = NULL;
    long shard = -1;
    double timeout_s = UP_TIMEOUT_S;
    int c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'd': dir_arg = optarg; break;
        case 's':
            shard = strtol(optarg, &end, 10);
            if (*end || shard < 0) shard = -2;
            break;
        case 't': timeout_s = atof(optarg); break;
        case 'h': fputs(cluster_usage, stdout); return OPS_EXIT_OK;
        default: fputs(cluster_usage, stderr); return OPS_EXIT_USAGE;
        }
    }
    if (!dir_arg || shard < 0 || optind != argc || timeout_s <= 0) {
        fprintf(stderr, "funnel cluster add-replica: --dir RUNDIR and --shard S (a number) are required\n");
        return OPS_EXIT_USAGE;
    }
    char rundir[PATH_MAX], live[PATH_MAX], why[512] = "";
    proc *ps = NULL;
    size_t n = 0;
    char **tmpl = NULL;
    int ret = OPS_EXIT_FAIL;
    proc np;
    int started = 0;
    if (scale_load("add-replica", dir_arg, rundir, &ps, &n, &tmpl, live)) goto out;
    int next = 0, have = 0;
    for (size_t i = 0; i < n; i++)
        if (ps[i].shard == shard) {
            have++;
            if (ps[i].replica + 1 > next) next = ps[i].replica + 1;
        }
    if (!have) {
        fprintf(stderr, "funnel cluster add-replica: the cluster has no shard %ld\n", shard);
        goto out;
    }
    if (next < 1) next = 1;   /* shard-S (plain) is replica 0 */
    if (have >= MAX_REPLICAS || next >= MAX_REPLICAS) {
        fprintf(stderr, "funnel cluster add-replica: shard %ld has the most replicas (%d)\n", shard, MAX_REPLICAS);
        goto out;
    }
    char sd[PATH_MAX + 64];
    sfmt(sd, sizeof sd, "%s/shard-%03ld", live, shard);
    proc_paths(&np, rundir, "shard", (int)shard, next);
    started = 1;
    double deadline = now_s() + timeout_s;
    if (start_like(&np, tmpl, sd, deadline, why, sizeof why)) {
        fprintf(stderr, "funnel cluster add-replica: %s: %s\n", np.name, why);
        goto fail;
    }
    /* the topology with the replica: shard S's line gets its address */
    char tpath[PATH_MAX + 32], ttext[65536], ntext[65536 + 300];
    sfmt(tpath, sizeof tpath, "%s/topology.conf", rundir);
    if (ops_read_small(tpath, ttext, sizeof ttext) != 0) {
        fprintf(stderr, "funnel cluster add-replica: cannot read %s\n", tpath);
        goto fail;
    }
    size_t o = 0;
    int found = 0;
    for (char *line = ttext, *nl; line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        long k = -1;
        int is = sscanf(line, "shard %ld", &k) == 1 && k == shard;
        o += (size_t)snprintf(ntext + o, sizeof ntext - o, "%s%s%s\n", line, is ? " " : "", is ? np.addr : "");
        found |= is;
        if (o >= sizeof ntext) break;
    }
    if (!found || o >= sizeof ntext) {
        fprintf(stderr, "funnel cluster add-replica: %s has no line for shard %ld\n", tpath, shard);
        goto fail;
    }
    rpc_init();
    fn_errbuf eb = {{0}};
    int tls;
    int rc = cluster_client_security(rundir, &tls, &eb) != 0 ? -1 : wait_healthy(&np, deadline, why, sizeof why);
    if (rc) fprintf(stderr, "funnel cluster add-replica: %s: %s\n", np.name, eb.msg[0] ? eb.msg : why);
    else rc = scale_switch("add-replica", rundir, live, ntext, NULL);
    rpc_shutdown();
    if (rc) goto fail;
    ops_write_atomic(tpath, ntext);
    printf("%s added: shard %ld has %d replicas, serving %s\n", np.name, shard, have + 1, live);
    ret = OPS_EXIT_OK;
    goto out;
fail:
    if (started) stop_new(&np, 1);
out:
    free(tmpl);
    free(ps);
    return ret;
}

/* ---------------------------------------------------------------- merge ---- */

/* One shard's export: the store's snapshot (the keys it hides, the live
 * documents, what to prune after the publish) and the generation's
 * documents it does not hide, all to out. */
typedef struct mg_shard {
    FILE *out;
    uint64_t *keys;              /* sorted: every id in the store */
    size_t nkeys, capkeys;
    Funnel__V1__DocUpdate *prune;   /* (id, version) of every entry */
    char **ids;
    size_t nprune, cap;
    uint64_t puts, dels, kept;
    fn_errbuf *eb;
} mg_shard;

static int mg_entry(void *ud, const char *id, size_t idlen, uint64_t version, int live, const char *json, size_t jl)
{
    mg_shard *m = ud;
    if (m->nkeys == m->capkeys) {
        size_t nc = m->capkeys ? 2 * m->capkeys : 1024;
        uint64_t *nk = realloc(m->keys, nc * sizeof *nk);
        Funnel__V1__DocUpdate *np = realloc(m->prune, nc * sizeof *np);
        char **ni = realloc(m->ids, nc * sizeof *ni);
        if (nk) m->keys = nk;
        if (np) m->prune = np;
        if (ni) m->ids = ni;
        if (!nk || !np || !ni) return fn_seterr(m->eb, -ENOMEM, "out of memory");
        m->capkeys = nc;
    }
    char *idc = malloc(idlen + 1);
    if (!idc) return fn_seterr(m->eb, -ENOMEM, "out of memory");
    memcpy(idc, id, idlen);
    idc[idlen] = 0;
    m->keys[m->nkeys++] = XXH64(id, idlen, 0);
    funnel__v1__doc_update__init(&m->prune[m->nprune]);
    m->prune[m->nprune].id = idc;
    m->prune[m->nprune].version = version;
    m->prune[m->nprune].prune = 1;
    m->ids[m->nprune++] = idc;
    if (live) {
        m->puts++;
        if (fwrite(json, 1, jl, m->out) != jl || fputc('\n', m->out) == EOF)
            return fn_seterr(m->eb, -EIO, "writing the merged corpus: %s", strerror(errno));
    } else {
        m->dels++;
    }
    return 0;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int mg_source(void *ud, size_t i, const char *json, size_t len)
{
    (void)i;
    mg_shard *m = ud;
    json_error_t je;
    json_t *o = json_loadb(json, len, 0, &je);
    json_t *jid = o ? json_object_get(o, "id") : NULL;
    int rc = 0;
    if (!json_is_string(jid)) {
        rc = fn_seterr(m->eb, FN_EFORMAT, "a stored document without an id");
    } else {
        uint64_t k = XXH64(json_string_value(jid), json_string_length(jid), 0);
        if (!bsearch(&k, m->keys, m->nkeys, sizeof k, u64_cmp)) {   /* not put again, not deleted */
            m->kept++;
            if (fwrite(json, 1, len, m->out) != len || fputc('\n', m->out) == EOF)
                rc = fn_seterr(m->eb, -EIO, "writing the merged corpus: %s", strerror(errno));
        }
    }
    json_decref(o);
    return rc;
}

int ops_index_merge(int argc, char **argv)
{
    static const struct option lo[] = {{"dir", required_argument, 0, 'd'}, {"out", required_argument, 0, 'o'},
                                       {"gate-queries", required_argument, 0, 'q'}, {"qrels", required_argument, 0, 'r'},
                                       {"every", required_argument, 0, 'e'},
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *dir_arg = NULL, *out_arg = NULL, *gq = NULL, *gr = NULL;
    double every = 0;
    int c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'd': dir_arg = optarg; break;
        case 'o': out_arg = optarg; break;
        case 'e':
            every = strtod(optarg, &end);
            if (*end || !(every >= 1) || every > 86400) {
                fprintf(stderr, "funnel index merge: --every: want 1..86400 seconds\n");
                return OPS_EXIT_USAGE;
            }
            break;
        case 'q': gq = optarg; break;
        case 'r': gr = optarg; break;
        case 'h':
            printf("usage: funnel index merge --dir RUN [--out GEN] [--gate-queries Q [--qrels R]] [--every S]\n"
                   "builds the live generation's documents with every live update (puts in, deleted\n"
                   "and replaced ones out) into generation GEN (default LIVE-PARENT/gen-UNIXTIME),\n"
                   "publishes it (through the gate when asked) and drops the updates it holds\n"
                   "from the shards' stores. Queries are served throughout. Nothing to merge: exit 0.\n"
                   "--every S: again and again, S seconds apart, until stopped (a failed merge is\n"
                   "reported and tried again at the next turn).\n");
            return OPS_EXIT_OK;
        default: return OPS_EXIT_USAGE;
        }
    }
    if (!dir_arg || optind != argc || (gr && !gq) || (every && out_arg)) {
        fprintf(stderr, "funnel index merge: --dir RUN is required (--qrels needs --gate-queries; "
                "--every names each generation itself)\n");
        return OPS_EXIT_USAGE;
    }
    if (every) {   /* the periodic merge: this command again, without --every */
        char *av[12] = { "merge", "--dir", (char *)dir_arg };
        int na = 3;
        if (gq) { av[na++] = "--gate-queries"; av[na++] = (char *)gq; }
        if (gr) { av[na++] = "--qrels"; av[na++] = (char *)gr; }
        av[na] = NULL;
        for (;;) {
            int r = ops_index_merge(na, av);
            if (r != OPS_EXIT_OK) fprintf(stderr, "funnel index merge: this turn failed; the next in %.0f s\n", every);
            fflush(stdout);
            struct timespec ts = { (time_t)every, (long)((every - (time_t)every) * 1e9) };
            nanosleep(&ts, NULL);
        }
    }
    char rundir[PATH_MAX], live[PATH_MAX];
    proc *ps = NULL;
    size_t n = 0;
    char **tmpl = NULL;
    int ret = OPS_EXIT_FAIL;
    mg_shard *ms = NULL;
    uint32_t N = 0;
    char corpus[PATH_MAX + 64] = "";
    json_t *man = NULL;
    if (scale_load("merge", dir_arg, rundir, &ps, &n, &tmpl, live)) goto out;
    fn_errbuf eb = {{0}};
    idx_bucket_map map;
    int rc = ops_bucket_map_of(live, &map, &eb);
    if (rc) {
        fprintf(stderr, "funnel index merge: %s\n", fn_errmsg(&eb, rc));
        goto out;
    }
    N = map.shards;
    char ij[PATH_MAX + 16];
    sfmt(ij, sizeof ij, "%s/index.json", live);
    json_error_t je;
    if (!(man = json_load_file(ij, 0, &je))) {
        fprintf(stderr, "funnel index merge: %s: %s\n", ij, je.text);
        goto out;
    }
    sfmt(corpus, sizeof corpus, "%s/merge-%d.jsonl", rundir, (int)getpid());
    FILE *out = fopen(corpus, "w");
    if (!out || !(ms = calloc(N, sizeof *ms))) {
        fprintf(stderr, "funnel index merge: %s: %s\n", corpus, strerror(errno));
        if (out) fclose(out);
        goto out;
    }
    double t0 = now_s();
    uint64_t puts = 0, dels = 0, kept = 0;
    for (uint32_t s = 0; s < N && !rc; s++) {
        mg_shard *m = &ms[s];
        m->out = out;
        m->eb = &eb;
        /* the store of the shard's first replica (every replica acknowledged the same writes) */
        const proc *p = NULL;
        for (size_t i = 0; i < n; i++)
            if (ps[i].shard == (int)s && (!p || ps[i].replica < p->replica)) p = &ps[i];
        char ud[PATH_MAX + 96], sd[PATH_MAX + 32];
        sfmt(ud, sizeof ud, "%s/updates/%s", rundir, p ? p->name : "none");
        sfmt(sd, sizeof sd, "%s/shard-%03u", live, s);
        shard_updates *u = NULL;
        struct stat st;
        if (stat(ud, &st) == 0 && (rc = su_open(ud, &u, &eb))) break;
        if (u) {
            rc = su_snapshot(u, mg_entry, m, &eb);
            su_close(u);
            if (rc) break;
        }
        qsort(m->keys, m->nkeys, sizeof *m->keys, u64_cmp);
        idx_reader_t *r = NULL;
        idx_searcher_t *se = NULL;
        if ((rc = idx_reader_open_ex(sd, IDX_OPEN_QUICK, &r, &eb)) || (rc = idx_searcher_create(r, &se, &eb))) {
            if (r) idx_reader_close(r);
            break;
        }
        uint64_t nd = idx_reader_info(r)->docs;
        uint32_t docs[512];
        for (uint64_t d = 0; d < nd && !rc; d += 512) {
            size_t k = nd - d < 512 ? (size_t)(nd - d) : 512;
            for (size_t i = 0; i < k; i++) docs[i] = (uint32_t)(d + i);
            rc = idx_docs_sources(se, docs, k, mg_source, m, &eb);
            idx_searcher_release(se);
        }
        idx_searcher_destroy(se);
        idx_reader_close(r);
        puts += m->puts;
        dels += m->dels;
        kept += m->kept;
    }
    if (fclose(out) && !rc) rc = fn_seterr(&eb, -EIO, "%s: %s", corpus, strerror(errno));
    if (rc) {
        fprintf(stderr, "funnel index merge: exporting: %s\n", fn_errmsg(&eb, rc));
        goto out;
    }
    if (puts + dels == 0) {
        printf("nothing to merge: no live updates since %s was built\n", live);
        ret = OPS_EXIT_OK;
        goto out;
    }
    char gen[PATH_MAX + 64];
    if (out_arg) {
        sfmt(gen, sizeof gen, "%s", out_arg);
    } else {
        char parent[PATH_MAX];
        sfmt(parent, sizeof parent, "%s", live);
        char *sl = strrchr(parent, '/');
        if (sl && sl != parent) *sl = 0;
        sfmt(gen, sizeof gen, "%s/gen-%lld", parent, (long long)time(NULL));
    }
    idx_build_stats bst;
    if ((rc = build_like(man, corpus, gen, N, &map, 1, &bst, &eb))) {
        fprintf(stderr, "funnel index merge: building %s: %s\n", gen, fn_errmsg(&eb, rc));
        goto out;
    }
    printf("merged %llu documents (%llu of the live generation, %llu put; %llu deleted or replaced) into %s "
           "in %.1f s\n", (unsigned long long)bst.docs, (unsigned long long)kept, (unsigned long long)puts,
           (unsigned long long)dels, gen, now_s() - t0);
    /* publish (the gate's report is printed by it) */
    char *pav[16] = { "publish", "--dir", rundir, "--index", gen };
    int na = 5;
    if (gq) { pav[na++] = "--gate-queries"; pav[na++] = (char *)gq; }
    if (gr) { pav[na++] = "--qrels"; pav[na++] = (char *)gr; }
    pav[na] = NULL;
    if (ops_cmd_generation(na, pav) != OPS_EXIT_OK) {
        fprintf(stderr, "funnel index merge: %s not published; the stores keep every update\n", gen);
        goto out;
    }
    /* drop from every replica's store what the live generation now holds */
    char tpath[PATH_MAX + 32], ttext[65536];
    sfmt(tpath, sizeof tpath, "%s/topology.conf", rundir);
    if (ops_read_small(tpath, ttext, sizeof ttext) != 0) {
        fprintf(stderr, "funnel index merge: cannot read %s (the stores were not pruned)\n", tpath);
        goto out;
    }
    rpc_init();
    int tls;
    cluster_client_security(rundir, &tls, &eb);
    size_t dropped = 0, kept_store = 0, failed = 0;
    for (char *line = ttext, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl) *nl = 0;
        unsigned sh;
        int off = 0;
        if (sscanf(line, "shard %u%n", &sh, &off) != 1 || sh >= N) continue;
        for (char *tok = strtok(line + off, " \t"); tok; tok = strtok(NULL, " \t")) {
            rpc_client_t *cl = rpc_client_create(tok);
            for (size_t at = 0; cl && at < ms[sh].nprune; at += 1000) {
                size_t k = ms[sh].nprune - at < 1000 ? ms[sh].nprune - at : 1000;
                Funnel__V1__DocUpdate *pp[1000];
                for (size_t i = 0; i < k; i++) pp[i] = &ms[sh].prune[at + i];
                Funnel__V1__UpdateRequest rq = FUNNEL__V1__UPDATE_REQUEST__INIT;
                rq.docs = pp;
                rq.n_docs = k;
                Funnel__V1__UpdateResponse *r = NULL;
                rpc_status st;
                if (rpc_client_call(cl, RPC_METHOD_SHARD_UPDATE, &rq.base, &funnel__v1__update_response__descriptor,
                                    30000, (ProtobufCMessage **)&r, &st) != GRPC_STATUS_OK) {
                    fprintf(stderr, "funnel index merge: prune on %s: %s: %s\n", tok, rpc_status_name(st.code), st.message);
                    failed++;
                    break;
                }
                dropped += r->applied;
                kept_store += r->stale;
                protobuf_c_message_free_unpacked(&r->base, NULL);
            }
            rpc_client_destroy(cl);
        }
    }
    rpc_shutdown();
    printf("stores pruned: %zu entries dropped, %zu written again since the export (kept)%s\n", dropped, kept_store,
           failed ? "; some replicas failed (their entries keep hiding what the generation also holds)" : "");
    ret = failed ? OPS_EXIT_FAIL : OPS_EXIT_OK;
out:
    if (corpus[0]) unlink(corpus);
    for (uint32_t s = 0; ms && s < N; s++) {
        for (size_t i = 0; i < ms[s].nprune; i++) free(ms[s].ids[i]);
        free(ms[s].ids);
        free(ms[s].prune);
        free(ms[s].keys);
    }
    free(ms);
    json_decref(man);
    free(tmpl);
    free(ps);
    return ret;
}

int ops_cmd_cluster(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(cluster_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? OPS_EXIT_USAGE : OPS_EXIT_OK;
    }
    if (strcmp(argv[1], "up") == 0) return cluster_up(argc - 1, argv + 1);
    if (strcmp(argv[1], "status") == 0) return cluster_status(argc - 1, argv + 1);
    if (strcmp(argv[1], "down") == 0) return cluster_down(argc - 1, argv + 1);
    if (strcmp(argv[1], "restart") == 0) return cluster_restart(argc - 1, argv + 1);
    if (strcmp(argv[1], "add-shard") == 0) return cluster_add_shard(argc - 1, argv + 1);
    if (strcmp(argv[1], "add-replica") == 0) return cluster_add_replica(argc - 1, argv + 1);
    fprintf(stderr, "funnel cluster: unknown sub-command '%s'\n", argv[1]);
    fputs(cluster_usage, stderr);
    return OPS_EXIT_USAGE;
}
