/* fn_pressure.c - CPU pressure from Linux PSI (fn_pressure.h). */
#define _GNU_SOURCE   /* SCHED_IDLE */
#include "fn_pressure.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int fn_pressure_open(fn_pressure *p, const char *path, unsigned threshold_pct)
{
    memset(p, 0, sizeof *p);
    p->threshold = threshold_pct / 100.0;
    p->fd = open(path, O_RDONLY | O_CLOEXEC);
    return p->fd < 0 ? -errno : 0;
}

void fn_pressure_close(fn_pressure *p)
{
    if (p->fd >= 0) close(p->fd);
    p->fd = -1;
}

/* "some ... total=US" of the first line; 0 or -1 */
static int read_total(int fd, uint64_t *us)
{
    char buf[256];
    if (lseek(fd, 0, SEEK_SET) != 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n <= 0) return -1;
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl) *nl = '\0';
    const char *t = strstr(buf, " total=");
    if (strncmp(buf, "some ", 5) != 0 || !t || t[7] < '0' || t[7] > '9') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(t + 7, &end, 10);
    if (errno || end == t + 7 || (*end && *end != ' ')) return -1;
    *us = v;
    return 0;
}

double fn_pressure_share(fn_pressure *p)
{
    uint64_t us;
    if (p->fd < 0 || read_total(p->fd, &us) != 0) return -1;
    uint64_t now = mono_ns();
    double share = -1;
    if (p->last_ns && now > p->last_ns && us >= p->last_us) {
        share = (double)(us - p->last_us) * 1e3 / (double)(now - p->last_ns);
        if (share > 1) share = 1;   /* the total and the clock are read apart */
    }
    p->last_us = us;
    p->last_ns = now;
    return share;
}

int fn_pressure_busy(void *ud)
{
    fn_pressure *p = ud;
    return fn_pressure_share(p) > p->threshold;
}

int fn_thread_background(void)
{
    struct sched_param sp = { .sched_priority = 0 };
    if (sched_setscheduler(0, SCHED_IDLE, &sp) == 0) return 1;   /* 0: the calling thread */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) == 0) return 0;
    return -errno;
}
