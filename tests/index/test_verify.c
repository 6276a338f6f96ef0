/* test_verify.c - a damaged index is refused, reported or detected, never
 * served differently and never a signal (issue 6, item 2): idx_reader_open,
 * idx_search with IDX_OPEN_QUICK, idx_reader_get_doc and idx_verify on
 * cranfield with each kind of damage aimed at it (tests/index/damage.h).
 *
 * For every damaged copy: a full open fails with a damage code and a message;
 * a quick open either fails the same way or every query of a fixed set
 * (cranfield's first queries plus ones that read the damaged value) answers
 * exactly as the undamaged index did (same ids, scores bit for bit) or with a
 * damage code; idx_verify says DAMAGED and names the kind of value.
 * Criterion runs each test in its own process: a signal fails the test.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "builder.h"
#include "damage.h"
#include "integrity.h"
#include "prf.h"
#include "reader_int.h"
#include "search.h"
#include "testutil.h"
#include "verify.h"

#define K 100
#define NQ 40                /* cranfield queries in every set */

static char tmpdir[256];

static void setup(void) { tu_mkdtemp(tmpdir, sizeof tmpdir, "/tmp/test_verify.XXXXXX"); }
static void teardown(void) { tu_rmtree(tmpdir); }

TestSuite(verify, .init = setup, .fini = teardown, .timeout = 240);

/* ---- building and copying ---- */

static void build_cran(const char *name, uint32_t shards, char *out, size_t cap)
{
    char corpus[1024];
    snprintf(corpus, sizeof corpus, "%s/cranfield/corpus.jsonl", tu_data_dir());
    snprintf(out, cap, "%s/%s", tmpdir, name);
    idx_build_opts o;
    memset(&o, 0, sizeof o);
    o.input = corpus;
    o.out_dir = out;
    o.shards = shards;
    o.on_error = IDX_ON_ERROR_FAIL;
    fn_errbuf eb = { { 0 } };
    idx_build_stats st;
    cr_assert_eq(idx_build(&o, &st, &eb), 0, "%s", eb.msg);
}

static void copy_file(const char *src, const char *dst)
{
    size_t n;
    char *data = tu_read_file(src, &n);
    cr_assert_not_null(data, "read %s", src);
    FILE *f = fopen(dst, "wb");
    cr_assert_not_null(f, "write %s", dst);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
    free(data);
}

/* A fresh undamaged copy of shard directory src as tmpdir/name. */
static void copy_shard(const char *src, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
    tu_rmtree(out);
    cr_assert_eq(mkdir(out, 0755), 0, "mkdir %s", out);
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s/data.mdb", src);
    snprintf(b, sizeof b, "%s/data.mdb", out);
    copy_file(a, b);
    snprintf(a, sizeof a, "%s/checksum", src);
    snprintf(b, sizeof b, "%s/checksum", out);
    copy_file(a, b);
}

static void data_path(const char *dir, char *out, size_t cap) { snprintf(out, cap, "%s/data.mdb", dir); }

static uint64_t file_size(const char *dir)
{
    char p[1200];
    struct stat st;
    data_path(dir, p, sizeof p);
    cr_assert_eq(stat(p, &st), 0);
    return (uint64_t)st.st_size;
}

/* ---- aiming ---- */

typedef struct want_key { const void *key; size_t klen; uint64_t off, len; int found; } want_key;

static int match_key(void *ud, uint64_t off, uint64_t len, const void *key, size_t klen)
{
    want_key *w = ud;
    if (klen != w->klen || memcmp(key, w->key, klen) != 0) return 0;
    w->off = off;
    w->len = len;
    w->found = 1;
    return 1;
}

/* Where the value (or key) stored under key lies in dir/data.mdb. */
static void locate(const char *dir, const char *db, int keys, const void *key, size_t klen, uint64_t *off,
                   uint64_t *len)
{
    want_key w = { key, klen, 0, 0, 0 };
    char err[512];
    cr_assert_eq(dmg_locate(dir, db, keys, match_key, &w, err, sizeof err), 0, "%s", err);
    cr_assert(w.found, "%s: no such key in %s", dir, db);
    *off = w.off;
    *len = w.len;
}

static void locate_doc(const char *dir, const char *db, uint32_t doc, uint64_t *off, uint64_t *len)
{
    uint8_t k[4];
    idx_put_u32be(k, doc);
    locate(dir, db, 0, k, 4, off, len);
}

static void flip(const char *dir, uint64_t off, uint64_t count)
{
    char p[1200];
    data_path(dir, p, sizeof p);
    cr_assert_eq(dmg_flip(p, off, count, 0xff), 0, "flip %s at %" PRIu64, p, off);
}

static uint32_t termid_of(const char *dir, const char *term)
{
    uint64_t off, len;
    locate(dir, IDX_DB_TERMS, 0, term, strlen(term), &off, &len);
    char p[1200];
    data_path(dir, p, sizeof p);
    int fd = open(p, O_RDONLY);
    uint8_t rec[IDX_TERM_REC_BYTES];
    cr_assert_eq(pread(fd, rec, sizeof rec, (off_t)off), (ssize_t)sizeof rec);
    close(fd);
    return idx_get_u32le(rec);
}

/* ---- queries and answers ---- */

typedef struct qset { char *text[NQ + 8]; size_t n; } qset;

static void qset_load(qset *qs)
{
    char path[1024], line[4096];
    snprintf(path, sizeof path, "%s/cranfield/queries.tsv", tu_data_dir());
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    qs->n = 0;
    while (qs->n < NQ && fgets(line, sizeof line, f)) {
        char *t = strchr(line, '\t');
        if (!t) continue;
        t[strcspn(t, "\r\n")] = '\0';
        qs->text[qs->n++] = strdup(t + 1);
    }
    fclose(f);
    cr_assert_eq(qs->n, NQ);
}

static void qset_add(qset *qs, const char *text)
{
    cr_assert_lt(qs->n, sizeof qs->text / sizeof qs->text[0]);
    qs->text[qs->n++] = strdup(text);
}

typedef struct answer { size_t n; char *id[K]; double score[K]; uint32_t doc[K]; } answer;

/* The undamaged index's answers to qs. */
static answer *baseline(const char *dir, const qset *qs)
{
    answer *a = calloc(qs->n, sizeof *a);
    idx_reader_t *r;
    idx_searcher_t *s;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(idx_reader_open(dir, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(idx_searcher_create(r, &s, &eb), 0, "%s", eb.msg);
    for (size_t i = 0; i < qs->n; i++) {
        idx_query q = { .text = qs->text[i], .k = K };
        idx_results res;
        cr_assert_eq(idx_search(s, &q, &res, &eb), 0, "%s", eb.msg);
        a[i].n = res.nhits;
        for (size_t h = 0; h < res.nhits; h++) {
            a[i].id[h] = strdup(res.hits[h].id);
            a[i].score[h] = res.hits[h].score;
            a[i].doc[h] = res.hits[h].doc;
        }
    }
    idx_searcher_destroy(s);
    idx_reader_close(r);
    return a;
}

static void answers_free(answer *a, const qset *qs)
{
    for (size_t i = 0; i < qs->n; i++)
        for (size_t h = 0; h < a[i].n; h++) free(a[i].id[h]);
    free(a);
}

static void qset_free(qset *qs)
{
    for (size_t i = 0; i < qs->n; i++) free(qs->text[i]);
    qs->n = 0;
}

/* ---- one damaged copy ---- */

typedef struct outcome {
    int full_rc, quick_rc, verify_rc;
    char full_msg[512], quick_msg[512], verify_line[1500];
    size_t same, damage;          /* quick-open queries: identical answers, damage codes */
    char first_damage[512];
} outcome;

static void on_report(void *ud, const idx_verify_report *rep)
{
    outcome *o = ud;
    if (!rep->summary) snprintf(o->verify_line, sizeof o->verify_line, "%s", rep->line);
}

/* Everything the brief promises about a damaged copy, asserted; what each
 * part said is returned (and printed) for the kind-specific checks. */
static void run_case(const char *label, const char *dir, const qset *qs, const answer *base, outcome *o)
{
    memset(o, 0, sizeof *o);
    fn_errbuf eb = { { 0 } };
    idx_reader_t *r = NULL;

    o->full_rc = idx_reader_open(dir, &r, &eb);
    snprintf(o->full_msg, sizeof o->full_msg, "%s", eb.msg);
    cr_assert(idx_is_damage(o->full_rc), "%s: full open: rc %d (%s) - expected a damage code", label,
              o->full_rc, eb.msg);
    cr_assert(eb.msg[0], "%s: full open: no message", label);
    cr_assert_null(r);

    eb.msg[0] = '\0';
    o->quick_rc = idx_reader_open_ex(dir, IDX_OPEN_QUICK, &r, &eb);
    snprintf(o->quick_msg, sizeof o->quick_msg, "%s", eb.msg);
    if (o->quick_rc) {
        cr_assert(idx_is_damage(o->quick_rc), "%s: quick open: rc %d (%s) - expected a damage code", label,
                  o->quick_rc, eb.msg);
        cr_assert(eb.msg[0], "%s: quick open: no message", label);
    } else {
        idx_searcher_t *s;
        cr_assert_eq(idx_searcher_create(r, &s, &eb), 0, "%s: %s", label, eb.msg);
        for (size_t i = 0; i < qs->n; i++) {
            idx_query q = { .text = qs->text[i], .k = K };
            idx_results res;
            eb.msg[0] = '\0';
            int rc = idx_search(s, &q, &res, &eb);
            if (rc) {
                cr_assert(idx_is_damage(rc), "%s: query %zu: rc %d (%s) - expected OK or a damage code", label,
                          i, rc, eb.msg);
                cr_assert(eb.msg[0], "%s: query %zu: damage without a message", label, i);
                if (!o->damage++) snprintf(o->first_damage, sizeof o->first_damage, "%s", eb.msg);
                continue;
            }
            const answer *a = &base[i];
            cr_assert_eq(res.nhits, a->n, "%s: query %zu answered OK with %zu hits, undamaged %zu", label, i,
                         res.nhits, a->n);
            for (size_t h = 0; h < a->n; h++) {
                cr_assert_str_eq(res.hits[h].id, a->id[h], "%s: query %zu rank %zu: OK but a different hit",
                                 label, i, h);
                cr_assert(memcmp(&res.hits[h].score, &a->score[h], sizeof(double)) == 0,
                          "%s: query %zu rank %zu: OK but score %.17g, undamaged %.17g", label, i, h,
                          res.hits[h].score, a->score[h]);
            }
            o->same++;
        }
        idx_searcher_destroy(s);
        idx_reader_close(r);
    }

    eb.msg[0] = '\0';
    o->verify_rc = idx_verify(dir, on_report, o, &eb);
    cr_assert_eq(o->verify_rc, FN_ECORRUPT, "%s: verify rc %d (%s)", label, o->verify_rc, eb.msg);
    cr_assert(strstr(o->verify_line, ": DAMAGED: "), "%s: verify said \"%s\"", label, o->verify_line);
    fprintf(stderr, "[%s] open: %s | quick: %s | queries: %zu same, %zu damage%s%s | verify: %s\n", label,
            o->full_msg, o->quick_rc ? o->quick_msg : "ok", o->same, o->damage,
            o->damage ? " - " : "", o->first_damage, o->verify_line);
}

static void common_init(const char *name, uint32_t shards, char *idx, size_t cap, char *shard0, size_t cap0)
{
    build_cran(name, shards, idx, cap);
    snprintf(shard0, cap0, "%s/shard-000", idx);
}

/* ---- tests ---- */

Test(verify, undamaged_index_verifies_ok)
{
    char idx[600], sh[700];
    common_init("ok", 3, idx, sizeof idx, sh, sizeof sh);
    outcome o;
    memset(&o, 0, sizeof o);
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(idx_verify(idx, NULL, NULL, &eb), 0, "%s", eb.msg);
    cr_assert_eq(idx_verify(sh, on_report, &o, &eb), 0, "%s", eb.msg);
    cr_assert(strncmp(o.verify_line, "shard-000: ok (", 15) == 0, "%s", o.verify_line);
    cr_assert(strstr(o.verify_line, "checksum ok)"), "%s", o.verify_line);
}

/* idx_file_hash_paced of p (asserted to succeed), timed: its seconds */
static double hash_timed(const char *p, idx_pace *pc, uint64_t *h, uint64_t *b)
{
    fn_errbuf eb = { { 0 } };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(idx_file_hash_paced(p, pc, h, b, &eb), 0, "%s", eb.msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}

/* A 1-shard cranfield index NAME for the paced checks: its shard dir in
 * sh, its data.mdb in p, and the unpaced hash and size of that file. */
static void paced_init(const char *name, char *sh, size_t capsh, char *p, size_t capp, uint64_t *h0, uint64_t *b0)
{
    char idx[600];
    common_init(name, 1, idx, sizeof idx, sh, capsh);
    data_path(sh, p, capp);
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(idx_file_hash(p, h0, b0, &eb), 0, "%s", eb.msg);
}

/* The paced check (a shard staging a generation while it serves): the same
 * hash as the unpaced one, no sooner than the rate allows (the pauses are
 * sleeps: a lower bound, whatever the machine), and the same verdicts. */
Test(verify, paced_check_hashes_alike_at_the_rate)
{
    char sh[700], p[800];
    uint64_t h0, b0, h1, b1;
    paced_init("paced", sh, sizeof sh, p, sizeof p, &h0, &b0);
    fn_errbuf eb = { { 0 } };
    uint64_t rate = b0 * 4;   /* the whole file in 0.25 s */
    idx_pace pc = { .warm_bps = rate };
    double secs = hash_timed(p, &pc, &h1, &b1);
    cr_assert_eq(h1, h0);
    cr_assert_eq(b1, b0);
    /* the last full MiB is due at (b0 - b0 % 1 MiB) / rate at the earliest */
    double least = (double)(b0 - b0 % (1u << 20)) / (double)rate;
    cr_assert(secs >= least * 0.99, "%" PRIu64 " bytes at %" PRIu64 " B/s took %.3f s, under %.3f s", b0, rate, secs,
              least);
    idx_pace fast = { .warm_bps = rate * 4 };
    cr_assert_eq(idx_verify_file_paced(sh, &fast, &eb), 0, "%s", eb.msg);
    /* a changed byte: the paced check finds it as the unpaced one does */
    int fd = open(p, O_RDWR);
    cr_assert(fd >= 0);
    uint8_t c;
    cr_assert_eq(pread(fd, &c, 1, (off_t)(b0 / 2)), 1);
    c ^= 0x5a;
    cr_assert_eq(pwrite(fd, &c, 1, (off_t)(b0 / 2)), 1);
    close(fd);
    cr_assert_eq(idx_verify_file_paced(sh, &fast, &eb), FN_ECORRUPT);
    cr_assert(strstr(eb.msg, "does not match its checksum"), "%s", eb.msg);
}

/* Pages not in the page cache are read at the cold rate (mincore before each
 * read): the same hash, the cold bytes counted, and a file read cold takes at
 * least its size at that rate (a lower bound: the pauses are sleeps); read
 * again, warm, none of it counts as cold, so all of it is paced at the warm
 * rate (no upper bound on time is asserted: tests do not race the clock). */
Test(verify, paced_check_reads_cold_pages_slower)
{
    char sh[700], p[800];
    uint64_t h0, b0, h1, b1;
    paced_init("cold", sh, sizeof sh, p, sizeof p, &h0, &b0);
    /* out of the page cache: written back first (a dirty page stays) */
    int fd = open(p, O_RDONLY);
    cr_assert(fd >= 0);
    cr_assert_eq(fsync(fd), 0);
    cr_assert_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    close(fd);
    idx_pace pc = { .warm_bps = b0 * 1000, .cold_bps = b0 * 4 };   /* warm: 1 ms; cold: 0.25 s */
    double cold_s = hash_timed(p, &pc, &h1, &b1);
    cr_assert(h1 == h0 && b1 == b0);
    if (pc.cold_bytes == 0) cr_skip_test("the page cache kept %s (a file system without write-back)", p);
    cr_log_info("cold: %" PRIu64 " of %" PRIu64 " bytes in %.3f s", pc.cold_bytes, b0, cold_s);
    cr_assert(pc.cold_bytes <= b0, "%" PRIu64 " of %" PRIu64 " bytes cold", pc.cold_bytes, b0);
    /* every MiB but the last is paid for before the next read */
    double least = (double)(pc.cold_bytes > (1u << 20) ? pc.cold_bytes - (1u << 20) : 0) / (double)pc.cold_bps;
    cr_assert(cold_s >= least * 0.99, "cold read in %.3f s, under %.3f s", cold_s, least);
    /* now in the page cache: nothing cold, and at the warm rate */
    double warm_s = hash_timed(p, &pc, &h1, &b1);
    cr_assert(h1 == h0 && b1 == b0 && pc.cold_bytes == 0, "%" PRIu64 " bytes cold on the second read", pc.cold_bytes);
    cr_log_info("warm: 0 bytes cold, %.3f s", warm_s);
}

/* A busy host (idx_pace.busy: a shard's CPU pressure): the paced check waits for
 * it, at most IDX_PACE_MAX_YIELD times each read's paced time, so it
 * slows down but always finishes, with the same hash. */
static int always_busy(void *ud)
{
    (*(int *)ud)++;
    return 1;
}

static int never_busy(void *ud)
{
    (*(int *)ud)++;
    return 0;
}

Test(verify, paced_check_waits_for_a_busy_host)
{
    char sh[700], p[800];
    uint64_t h0, b0, h1, b1;
    paced_init("busy", sh, sizeof sh, p, sizeof p, &h0, &b0);
    uint64_t rate = b0 * 8;   /* the whole file in 0.125 s */
    int calls = 0;
    idx_pace pc = { .warm_bps = rate, .busy = always_busy, .busy_ud = &calls };
    double secs = hash_timed(p, &pc, &h1, &b1);
    cr_assert(h1 == h0 && b1 == b0);
    uint64_t full = b0 / (1u << 20);   /* full MiB reads: each waited its whole budget */
    double budget = (double)IDX_PACE_MAX_YIELD * (double)(full << 20) / (double)rate;
    cr_assert_geq((double)pc.yield_ns / 1e9, budget * 0.99, "waited %.3f s for a busy host, under %.3f s",
                  (double)pc.yield_ns / 1e9, budget);
    cr_assert_geq(secs, (double)pc.yield_ns / 1e9, "took %.3f s, less than it waited", secs);
    cr_assert_geq(calls, (int)full + 1, "busy asked %d times for %" PRIu64 " full MiB", calls, full);
    cr_log_info("busy host: %" PRIu64 " bytes in %.3f s, %.3f s waiting", b0, secs, (double)pc.yield_ns / 1e9);
    /* an idle host: asked before every read, never waited for */
    int idle_calls = 0;
    idx_pace idle = { .warm_bps = rate, .busy = never_busy, .busy_ud = &idle_calls };
    hash_timed(p, &idle, &h1, &b1);
    cr_assert(h1 == h0 && b1 == b0);
    int reads = (int)((b0 + (1u << 20) - 1) >> 20) + 1;   /* the last one finds the end */
    cr_assert_eq(idle_calls, reads, "an idle host was asked %d times for %d reads", idle_calls, reads);
    cr_assert_gt(calls, reads, "a busy host was asked only %d times", calls);
}

/* The resident pages of a mapping, by mincore: what a populate must leave. */
static uint64_t resident_bytes(const char *map, uint64_t len)
{
    long page = sysconf(_SC_PAGESIZE);
    uint64_t pages = (len + (uint64_t)page - 1) / (uint64_t)page, res = 0;
    unsigned char *vec = malloc(pages);
    cr_assert(vec);
    cr_assert_eq(mincore((void *)map, len, vec), 0, "mincore: %s", strerror(errno));
    for (uint64_t i = 0; i < pages; i++) res += vec[i] & 1;
    free(vec);
    return res * (uint64_t)page;
}

/* A staged generation is mapped whole before the switch (shard --preload):
 * idx_reader_populate walks all of data.mdb, paced, reads what the page
 * cache lost at the cold rate, and leaves every page resident; a file cut
 * short under the open reader is damage (FN_ECORRUPT, "cut short"), never
 * a SIGBUS. */
Test(verify, populate_maps_the_whole_file_and_reports_a_cut)
{
    char sh[700], p[800];
    uint64_t h0, b0;
    paced_init("populate", sh, sizeof sh, p, sizeof p, &h0, &b0);
    idx_reader_t *r = NULL;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(idx_reader_open(sh, &r, &eb), 0, "%s", eb.msg);
    int fd = open(p, O_RDONLY);
    cr_assert(fd >= 0);
    cr_assert_eq(fsync(fd), 0);
    cr_assert_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);   /* mapped pages stay */
    close(fd);
    idx_pace pc = { .warm_bps = b0 * 8, .cold_bps = b0 * 4 };
    uint64_t mapped = 0;
    if (idx_reader_populate(r, &pc, &mapped, &eb) == -EINVAL)
        cr_skip_test("this kernel has no MADV_POPULATE_READ (Linux < 5.14): %s", eb.msg);
    cr_assert_eq(mapped, b0, "mapped %" PRIu64 " of %" PRIu64 " bytes: %s", mapped, b0, eb.msg);
    cr_assert_leq(pc.cold_bytes, b0);
    cr_log_info("populate: %" PRIu64 " bytes mapped, %" PRIu64 " of them cold", mapped, pc.cold_bytes);
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    cr_assert_eq(resident_bytes(r->map, b0), (b0 + page - 1) / page * page, "not every page is resident");
    /* the populate changed nothing the reader checks (size, modification time) */
    cr_assert_eq(idx_reader_check(r, &eb), 0, "%s", eb.msg);
    /* cut short under the reader: the pages past the new end are gone */
    cr_assert_eq(truncate(p, (off_t)(b0 / 2)), 0);
    mapped = 0;
    int rc = idx_reader_populate(r, NULL, &mapped, &eb);
    cr_assert_eq(rc, FN_ECORRUPT, "populate of a cut file: %d %s", rc, eb.msg);
    cr_assert(strstr(eb.msg, "cut short"), "%s", eb.msg);
    cr_assert_lt(mapped, b0);
    idx_reader_close(r);
}

Test(verify, truncated_file)
{
    char idx[600], sh[700], d[1200], p[1300];
    common_init("trunc", 1, idx, sizeof idx, sh, sizeof sh);
    qset qs;
    qset_load(&qs);
    answer *base = baseline(sh, &qs);
    uint64_t size = file_size(sh);
    const uint64_t sizes[] = { 0, 4096, 8192, size / 2, size - 4096, size - 1 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "truncate to %" PRIu64, sizes[i]);
        copy_shard(sh, "case", d, sizeof d);
        data_path(d, p, sizeof p);
        cr_assert_eq(truncate(p, (off_t)sizes[i]), 0);
        outcome o;
        run_case(label, d, &qs, base, &o);
        cr_assert(strstr(o.full_msg, "truncated"), "%s: %s", label, o.full_msg);
        cr_assert_neq(o.quick_rc, 0, "%s: a quick open of a truncated file must fail", label);
        cr_assert(strstr(o.verify_line, "truncated"), "%s: %s", label, o.verify_line);
    }
    answers_free(base, &qs);
    qset_free(&qs);
}

Test(verify, posting_block)
{
    char idx[600], sh[700], d[1200];
    common_init("post", 1, idx, sizeof idx, sh, sizeof sh);
    qset qs;
    qset_load(&qs);
    qset_add(&qs, "flow");
    answer *base = baseline(sh, &qs);
    uint32_t tid = termid_of(sh, "flow");
    for (uint32_t block = 0; block < 3; block++) {
        for (int where = 0; where < 3; where++) {   /* checksum, header, encoded data */
            char label[64];
            snprintf(label, sizeof label, "postings flow/%u byte %s", block,
                     where == 0 ? "0" : where == 1 ? "5" : "middle");
            copy_shard(sh, "case", d, sizeof d);
            uint8_t key[8];
            idx_put_u32be(key, tid);
            idx_put_u32be(key + 4, block);
            uint64_t off, len;
            locate(d, IDX_DB_POSTINGS, 0, key, 8, &off, &len);
            flip(d, off + (where == 0 ? 0 : where == 1 ? 5 : len / 2), 1);
            outcome o;
            run_case(label, d, &qs, base, &o);
            cr_assert_eq(o.quick_rc, 0, "%s: %s", label, o.quick_msg);
            cr_assert_gt(o.damage, 0, "%s: no query noticed", label);
            cr_assert(strstr(o.first_damage, "postings of term id"), "%s: %s", label, o.first_damage);
            cr_assert(strstr(o.verify_line, "DAMAGED: postings of term \"flow\""), "%s: %s", label,
                      o.verify_line);
        }
    }
    answers_free(base, &qs);
    qset_free(&qs);
}

Test(verify, term_record_and_key)
{
    char idx[600], sh[700], d[1200];
    common_init("term", 1, idx, sizeof idx, sh, sizeof sh);
    qset qs;
    qset_load(&qs);
    qset_add(&qs, "heat");
    qset_add(&qs, "pressure distribution");
    answer *base = baseline(sh, &qs);
    static const char *const terms[] = { "heat", "pressur", "distribut" };
    for (size_t t = 0; t < 3; t++) {
        for (int part = 0; part < 3; part++) {   /* value byte 2, value checksum, the key */
            char label[64];
            snprintf(label, sizeof label, "term %s %s", terms[t],
                     part == 0 ? "record" : part == 1 ? "checksum" : "key");
            copy_shard(sh, "case", d, sizeof d);
            uint64_t off, len;
            locate(d, IDX_DB_TERMS, part == 2, terms[t], strlen(terms[t]), &off, &len);
            flip(d, off + (part == 0 ? 2 : part == 1 ? 17 : 0), 1);
            outcome o;
            run_case(label, d, &qs, base, &o);
            cr_assert_eq(o.quick_rc, 0, "%s: %s", label, o.quick_msg);
            cr_assert_gt(o.damage, 0, "%s: no query noticed", label);
            cr_assert(strstr(o.verify_line, "term \""), "%s: %s", label, o.verify_line);
        }
    }
    answers_free(base, &qs);
    qset_free(&qs);
}

Test(verify, doc_record)
{
    char idx[600], sh[700], d[1200];
    common_init("doc", 1, idx, sizeof idx, sh, sizeof sh);
    qset qs;
    qset_load(&qs);
    answer *base = baseline(sh, &qs);
    for (int which = 0; which < 3; which++) {   /* top hit of query 0, 2nd of query 1, 5th of query 2 */
        uint32_t doc = base[which].doc[which == 2 ? 4 : which];
        for (int where = 0; where < 2; where++) {
            char label[64];
            snprintf(label, sizeof label, "docs doc %u byte %s", doc, where ? "middle" : "6");
            copy_shard(sh, "case", d, sizeof d);
            uint64_t off, len;
            locate_doc(d, IDX_DB_DOCS, doc, &off, &len);
            flip(d, off + (where ? len / 2 : 6), 1);
            outcome o;
            run_case(label, d, &qs, base, &o);
            cr_assert_eq(o.quick_rc, 0, "%s: %s", label, o.quick_msg);
            cr_assert_gt(o.damage, 0, "%s: no query noticed", label);
            cr_assert(strstr(o.first_damage, "stored record of doc"), "%s: %s", label, o.first_damage);
            cr_assert(strstr(o.verify_line, "stored record of doc"), "%s: %s", label, o.verify_line);
        }
    }
    answers_free(base, &qs);
    qset_free(&qs);
}

/* source and ids are read by idx_reader_get_doc (and verify), not by searches */
Test(verify, source_and_id_records)
{
    char idx[600], sh[700], d[1200];
    common_init("src", 1, idx, sizeof idx, sh, sizeof sh);
    qset qs;
    qset_load(&qs);
    answer *base = baseline(sh, &qs);
    uint32_t doc = base[0].doc[0];
    const char *id = base[0].id[0];
    for (int db = 0; db < 2; db++) {
        char label[64];
        snprintf(label, sizeof label, "%s of doc %u", db ? "id" : "source", doc);
        copy_shard(sh, "case", d, sizeof d);
        uint64_t off, len;
        if (db) locate(d, IDX_DB_IDS, 0, id, strlen(id), &off, &len);
        else locate_doc(d, IDX_DB_SOURCE, doc, &off, &len);
        flip(d, off + (db ? 1 : len / 2), 1);
        outcome o;
        run_case(label, d, &qs, base, &o);
        cr_assert_eq(o.quick_rc, 0, "%s: %s", label, o.quick_msg);
        cr_assert(strstr(o.verify_line, db ? "id \"" : "source of doc"), "%s: %s", label, o.verify_line);
        idx_reader_t *r;
        fn_errbuf eb = { { 0 } };
        cr_assert_eq(idx_reader_open_ex(d, IDX_OPEN_QUICK, &r, &eb), 0, "%s", eb.msg);
        char *json = NULL;
        int rc = idx_reader_get_doc(r, id, &json, &eb);
        cr_assert_eq(rc, FN_ECORRUPT, "%s: get_doc rc %d (%s)", label, rc, eb.msg);
        cr_assert(strstr(eb.msg, db ? "record checksum mismatch" : "checksum mismatch"), "%s: %s", label, eb.msg);
        cr_assert_null(json);
        idx_reader_close(r);
    }
    answers_free(base, &qs);
    qset_free(&qs);
}

/* ---- source values with a right checksum but a wrong inside ---- */

/* The value under u32be key in db, after its 4-byte sum (malloc'd, *n bytes). */
static uint8_t *get_value(const char *dir, const char *db, uint32_t key, size_t *n)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, IDX_MAX_DBS);
    cr_assert_eq(mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK, 0644), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, db, 0, &dbi), 0);
    uint8_t dk[4];
    idx_put_u32be(dk, key);
    MDB_val k = { 4, dk }, v;
    cr_assert_eq(mdb_get(txn, dbi, &k, &v), 0);
    cr_assert_gt(v.mv_size, 8);
    *n = v.mv_size - 4;
    uint8_t *p = malloc(*n + 16);
    cr_assert_not_null(p);
    memcpy(p, (const uint8_t *)v.mv_data + 4, *n);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return p;
}

/* Store val (n bytes) as doc's source after a right sum, written with LMDB
 * as a build would have, and seal the file again (checksum): only the
 * value's inside can tell it is wrong. */
static void put_value(const char *dir, const char *db, uint32_t key, const uint8_t *val, size_t n)
{
    uint8_t *p = malloc(4 + n);
    cr_assert_not_null(p);
    memcpy(p + 4, val, n);
    idx_put_u32le(p, idx_sum32(p + 4, n, key));
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, IDX_MAX_DBS);
    cr_assert_eq(mdb_env_open(env, dir, MDB_NOLOCK, 0644), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, db, 0, &dbi), 0);
    uint8_t dk[4];
    idx_put_u32be(dk, key);
    MDB_val k = { 4, dk }, v = { 4 + n, p };
    cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    free(p);
    char f[1300];
    data_path(dir, f, sizeof f);
    uint64_t hash, bytes;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(idx_file_hash(f, &hash, &bytes, &eb), 0, "%s", eb.msg);
    cr_assert_eq(idx_checksum_write(dir, hash, bytes, &eb), 0, "%s", eb.msg);
}

Test(verify, source_with_a_right_sum_but_a_bad_frame)
{
    char idx[600], sh[700], d[1200];
    common_init("zsrc", 1, idx, sizeof idx, sh, sizeof sh);
    qset qs;
    qset_load(&qs);
    answer *base = baseline(sh, &qs);
    uint32_t doc = base[0].doc[0];
    const char *id = base[0].id[0];
    size_t n;
    uint8_t *orig = get_value(sh, IDX_DB_SOURCE, doc, &n);
    uint32_t raw = idx_get_u32le(orig);
    cr_assert_eq(ZSTD_getFrameContentSize(orig + 4, n - 4), raw);

    /* hand-made frames (format 1.5, RFC 8878), not zstd's output: the same
     * bytes with any zstd version */
    static const uint8_t bad_block[] = {      /* FCS 100, a compressed block of garbage */
        100, 0, 0, 0, 0x28, 0xb5, 0x2f, 0xfd, 0x20, 100, 1 | 2 << 1 | 8 << 3, 0, 0,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    static const uint8_t short_block[] = {    /* FCS 100, a raw block of 5 bytes */
        100, 0, 0, 0, 0x28, 0xb5, 0x2f, 0xfd, 0x20, 100, 1 | 0 << 1 | 5 << 3, 0, 0, 'h', 'e', 'l', 'l', 'o' };
    static const uint8_t no_fcs[] = {         /* no content size (window 1 KiB), a raw block */
        5, 0, 0, 0, 0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, 1 | 0 << 1 | 5 << 3, 0, 0, 'h', 'e', 'l', 'l', 'o' };
    static const uint8_t huge_fcs[] = {       /* raw_len and FCS agree: 1 GiB */
        0, 0, 0, 0x40, 0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0, 0, 0, 0x40, 1 | 0 << 1 | 5 << 3, 0, 0,
        'h', 'e', 'l', 'l', 'o' };
    struct { const char *label, *want; int edit; const uint8_t *val; size_t n; } cases[] = {
        { "raw_len one more", "but its zstd frame holds", 1, NULL, 0 },
        { "raw_len 4 GiB - 1", "outside 1..67108864", 2, NULL, 0 },
        { "raw_len 0", "outside 1..67108864", 3, NULL, 0 },
        { "magic damaged", "not a zstd frame with its content size", 4, NULL, 0 },
        { "frame cut short", "its zstd frame is damaged", 5, NULL, 0 },
        { "a byte after the frame", "does not end where the value does", 6, NULL, 0 },
        { "header only", "shorter than its 8-byte header", 7, NULL, 0 },
        { "garbage block", "zstd frame does not decompress", 0, bad_block, sizeof bad_block },
        { "block shorter than FCS", "zstd frame does not decompress", 0, short_block, sizeof short_block },
        { "no content size", "not a zstd frame with its content size", 0, no_fcs, sizeof no_fcs },
        { "1 GiB claimed", "outside 1..67108864", 0, huge_fcs, sizeof huge_fcs },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *label = cases[c].label;
        uint8_t *v = malloc(n + 16);
        cr_assert_not_null(v);
        size_t vn = n;
        memcpy(v, orig, n);
        switch (cases[c].edit) {
        case 0: memcpy(v, cases[c].val, cases[c].n); vn = cases[c].n; break;
        case 1: idx_put_u32le(v, raw + 1); break;
        case 2: idx_put_u32le(v, UINT32_MAX); break;
        case 3: idx_put_u32le(v, 0); break;
        case 4: v[4] ^= 0xff; break;
        case 5: vn = n - 1; break;
        case 6: v[n] = 0; vn = n + 1; break;
        case 7: vn = 2; break;
        }
        copy_shard(sh, "case", d, sizeof d);
        put_value(d, IDX_DB_SOURCE, doc, v, vn);
        free(v);
        char want[200];
        snprintf(want, sizeof want, "source of doc %u: ", doc);

        idx_reader_t *r;
        fn_errbuf eb = { { 0 } };
        cr_assert_eq(idx_reader_open(d, &r, &eb), 0, "%s: %s", label, eb.msg);   /* sealed again */
        char *json = NULL;
        int rc = idx_reader_get_doc(r, id, &json, &eb);
        cr_assert_eq(rc, FN_ECORRUPT, "%s: get_doc rc %d (%s)", label, rc, eb.msg);
        cr_assert(strstr(eb.msg, want) && strstr(eb.msg, cases[c].want), "%s: %s", label, eb.msg);
        cr_assert_null(json);
        idx_reader_close(r);

        outcome o;
        memset(&o, 0, sizeof o);
        rc = idx_verify(d, on_report, &o, &eb);
        cr_assert_eq(rc, FN_ECORRUPT, "%s: verify rc %d (%s)", label, rc, eb.msg);
        cr_assert(strstr(o.verify_line, want) && strstr(o.verify_line, cases[c].want), "%s: verify: %s", label,
                  o.verify_line);
        fprintf(stderr, "[%s] %s | verify: %s\n", label, eb.msg, o.verify_line);
    }
    free(orig);
    answers_free(base, &qs);
    qset_free(&qs);
}

/* ---- term vectors and the vocabulary (format.h tvec, vocab) ---- */

/* Feedback and rescoring of doc on the shard in dir: their return codes,
 * and the first failing one's message in msg. */
static void fb_and_rescore(const char *dir, uint32_t doc, int *fb_rc, int *rs_rc, char *msg, size_t cap)
{
    idx_reader_t *r;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(idx_reader_open(dir, &r, &eb), 0, "%s", eb.msg);
    idx_searcher_t *s;
    cr_assert_eq(idx_searcher_create(r, &s, &eb), 0, "%s", eb.msg);
    fn_arena mem;
    fn_arena_init(&mem);
    idx_fbdoc fb[1];
    msg[0] = '\0';
    *fb_rc = idx_feedback_docs(s, &doc, 1, 0.2, &mem, fb, &eb);
    if (*fb_rc) snprintf(msg, cap, "%s", eb.msg);
    const char *terms[] = { "heat", "flow", "pressur" };
    const double w[] = { 1, 0.5, 0.25 };
    double score;
    *rs_rc = idx_rescore(s, NULL, terms, w, 3, &doc, NULL, 1, &score, &eb);
    if (*rs_rc && !msg[0]) snprintf(msg, cap, "%s", eb.msg);
    fn_arena_free(&mem);
    idx_searcher_destroy(s);
    idx_reader_close(r);
}

Test(verify, term_vector_and_vocab_records)
{
    char idx[600], sh[700], d[1200];
    common_init("tvec", 1, idx, sizeof idx, sh, sizeof sh);
    qset qs;
    qset_load(&qs);
    answer *base = baseline(sh, &qs);
    uint32_t doc = base[0].doc[0];
    char want[200], msg[512];
    snprintf(want, sizeof want, "term vector of doc %u: ", doc);
    int frc, rrc;

    /* a flipped byte: the value's sum */
    copy_shard(sh, "case", d, sizeof d);
    uint64_t off, len;
    locate_doc(d, IDX_DB_TVEC, doc, &off, &len);
    flip(d, off + len / 2, 1);
    outcome o;
    run_case("tvec flipped", d, &qs, base, &o);
    cr_assert(strstr(o.verify_line, want) && strstr(o.verify_line, "checksum mismatch"), "verify: %s", o.verify_line);
    /* damage is damage also on a shard opened without the whole-file check */
    idx_reader_t *r;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(idx_reader_open_ex(d, IDX_OPEN_QUICK, &r, &eb), 0, "%s", eb.msg);
    idx_searcher_t *s;
    cr_assert_eq(idx_searcher_create(r, &s, &eb), 0, "%s", eb.msg);
    fn_arena mem;
    fn_arena_init(&mem);
    idx_fbdoc fb[1];
    int rc = idx_feedback_docs(s, &doc, 1, 0, &mem, fb, &eb);
    cr_assert_eq(rc, FN_ECORRUPT, "feedback rc %d (%s)", rc, eb.msg);
    cr_assert(strstr(eb.msg, want), "%s", eb.msg);
    fn_arena_free(&mem);
    idx_searcher_destroy(s);
    idx_reader_close(r);

    /* right sums, wrong insides */
    size_t n;
    uint8_t *orig = get_value(sh, IDX_DB_TVEC, doc, &n);
    uint32_t nt = idx_get_u32le(orig);
    cr_assert_gt(nt, 2);
    cr_assert_lt(orig[4], 0x80, "the first term id fits one byte in cranfield's vocabulary order? %u", orig[4]);
    struct { const char *label, *verify, *reader; int edit; } cases[] = {
        { "count over the bytes", "terms in", "terms in", 0 },
        { "cut short", "bad coding", "bad coding", 1 },
        { "term id past the vocabulary", "bad coding", "bad coding", 2 },
        { "a byte after the last entry", "bad coding", "bad coding", 3 },
        { "a frequency changed", "not the document's postings", NULL, 4 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t *v = malloc(n + 16);
        cr_assert_not_null(v);
        memcpy(v, orig, n);
        size_t vn = n;
        switch (cases[c].edit) {
        case 0: idx_put_u32le(v, UINT32_MAX); break;
        case 1: vn = n - 1; break;
        case 2: /* the first entry's term id becomes 2^28 + its own, five varint bytes */
            memmove(v + 4 + 5, v + 4 + 1, n - 5);
            v[4] = (uint8_t)(orig[4] | 0x80); v[5] = v[6] = v[7] = 0x80; v[8] = 0x01;
            vn = n + 4;
            break;
        case 3: v[n] = 0; vn = n + 1; break;
        case 4: { /* the first entry's code: a body frequency one more */
            uint8_t code = v[5];
            cr_assert_lt(code, 0x7e, "one-byte code expected, got %u", code);
            v[5] = (uint8_t)(code + 2);
            break;
        }
        }
        copy_shard(sh, "case", d, sizeof d);
        put_value(d, IDX_DB_TVEC, doc, v, vn);
        free(v);
        fb_and_rescore(d, doc, &frc, &rrc, msg, sizeof msg);
        if (cases[c].reader) {
            cr_assert_eq(frc, FN_ECORRUPT, "%s: feedback rc %d (%s)", cases[c].label, frc, msg);
            cr_assert_eq(rrc, FN_ECORRUPT, "%s: rescore rc %d (%s)", cases[c].label, rrc, msg);
            cr_assert(strstr(msg, want) && strstr(msg, cases[c].reader), "%s: %s", cases[c].label, msg);
        } else {
            cr_assert_eq(frc, 0, "%s: %s", cases[c].label, msg);   /* well-formed: only verify can tell */
        }
        memset(&o, 0, sizeof o);
        rc = idx_verify(d, on_report, &o, &eb);
        cr_assert_eq(rc, FN_ECORRUPT, "%s: verify rc %d (%s)", cases[c].label, rc, eb.msg);
        cr_assert(strstr(o.verify_line, want) && strstr(o.verify_line, cases[c].verify), "%s: verify: %s",
                  cases[c].label, o.verify_line);
        fprintf(stderr, "[tvec %s] %s | verify: %s\n", cases[c].label, msg, o.verify_line);
    }
    free(orig);

    /* the vocabulary: a flipped byte in a term feedback reads */
    uint32_t heat = termid_of(sh, "heat");
    copy_shard(sh, "case", d, sizeof d);
    locate_doc(d, IDX_DB_VOCAB, heat, &off, &len);
    flip(d, off + len - 1, 1);
    memset(&o, 0, sizeof o);
    rc = idx_verify(d, on_report, &o, &eb);
    cr_assert_eq(rc, FN_ECORRUPT, "vocab: verify rc %d (%s)", rc, eb.msg);
    snprintf(want, sizeof want, "vocabulary: term id %u: checksum", heat);
    cr_assert(strstr(o.verify_line, want), "vocab: verify: %s", o.verify_line);
    /* a right sum over another term's bytes: only verify's cross-check sees it */
    uint8_t *vv = get_value(sh, IDX_DB_VOCAB, heat, &n);
    vv[n - 1] ^= 0x01;
    copy_shard(sh, "case", d, sizeof d);
    put_value(d, IDX_DB_VOCAB, heat, vv, n);
    free(vv);
    memset(&o, 0, sizeof o);
    rc = idx_verify(d, on_report, &o, &eb);
    cr_assert_eq(rc, FN_ECORRUPT, "vocab swap: verify rc %d (%s)", rc, eb.msg);
    snprintf(want, sizeof want, "vocabulary: term id %u is \"heau\"", heat);
    cr_assert(strstr(o.verify_line, want), "vocab swap: verify: %s", o.verify_line);
    answers_free(base, &qs);
    qset_free(&qs);
}

Test(verify, norms_and_meta)
{
    char idx[600], sh[700], d[1200];
    common_init("norms", 1, idx, sizeof idx, sh, sizeof sh);
    qset qs;
    qset_load(&qs);
    answer *base = baseline(sh, &qs);
    static const char *const what[][2] = { { IDX_DB_NORMS, "title" }, { IDX_DB_NORMS, "body" },
                                           { IDX_DB_NORMS, "keys" },  { IDX_DB_META, "avglen_body" },
                                           { IDX_DB_META, "docs_total" }, { IDX_DB_META, "meta_sum" },
                                           { IDX_DB_META, "schema" } };
    for (size_t i = 0; i < sizeof what / sizeof what[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "%s %s", what[i][0], what[i][1]);
        copy_shard(sh, "case", d, sizeof d);
        uint64_t off, len;
        locate(d, what[i][0], 0, what[i][1], strlen(what[i][1]), &off, &len);
        flip(d, off + (len > 100 ? 4 + 4 * 50 : 0), 1);
        outcome o;
        run_case(label, d, &qs, base, &o);
        cr_assert_neq(o.quick_rc, 0, "%s: a quick open must check %s", label, what[i][0]);
        cr_assert(strstr(o.quick_msg, what[i][0]), "%s: %s", label, o.quick_msg);
        cr_assert(strstr(o.verify_line, what[i][0]), "%s: %s", label, o.verify_line);
    }
    answers_free(base, &qs);
    qset_free(&qs);
}

/* LMDB's own structures: page headers, and bytes anywhere */
Test(verify, page_headers_and_random_bytes, .timeout = 400)
{
    char idx[600], sh[700], d[1200], p[1300];
    common_init("rand", 1, idx, sizeof idx, sh, sizeof sh);
    qset qs;
    qset_load(&qs);
    answer *base = baseline(sh, &qs);
    uint64_t size = file_size(sh), pages = size / 4096;
    size_t quick_ok = 0, noticed = 0;
    /* the first bytes of pages: flags, counts and pointers of LMDB's pages */
    /* (every page in 23; under the sanitizers every page in 8) */
    for (uint64_t pg = 0; pg < pages; pg += pages / (TU_SANITIZED ? 8 : 23) + 1) {
        for (int at = 0; at < 24; at += 5) {
            char label[64];
            snprintf(label, sizeof label, "page %" PRIu64 " header byte %d", pg, at);
            copy_shard(sh, "case", d, sizeof d);
            flip(d, pg * 4096 + (uint64_t)at, 1);
            outcome o;
            run_case(label, d, &qs, base, &o);
            quick_ok += o.quick_rc == 0;
            noticed += o.damage > 0;
        }
    }
    /* 1, 8, 64 and 2000 random bytes, several seeds (FUNNEL_DAMAGE_SEEDS=N
     * for a longer run by hand; 10, 4 under the sanitizers) */
    static const uint64_t counts[] = { 1, 8, 64, 2000 };
    uint64_t seeds = getenv("FUNNEL_DAMAGE_SEEDS") ? strtoull(getenv("FUNNEL_DAMAGE_SEEDS"), NULL, 10)
                                                   : TU_SANITIZED ? 4 : 10;
    for (size_t c = 0; c < 4; c++) {
        for (uint64_t seed = 1; seed <= seeds; seed++) {
            char label[64];
            snprintf(label, sizeof label, "random %" PRIu64 " bytes seed %" PRIu64, counts[c], seed);
            copy_shard(sh, "case", d, sizeof d);
            data_path(d, p, sizeof p);
            cr_assert_eq(dmg_random(p, seed, counts[c], 0, size, NULL), 0);
            outcome o;
            run_case(label, d, &qs, base, &o);
            quick_ok += o.quick_rc == 0;
            noticed += o.damage > 0;
        }
    }
    fprintf(stderr, "page/random cases: %zu opened quick, %zu of them noticed by a query\n", quick_ok, noticed);
    answers_free(base, &qs);
    qset_free(&qs);
}

/* An index without a checksum file (a build before schema 2, or one that
 * did not finish) and a schema-1 index are refused with a message. */
Test(verify, old_schema_refused)
{
    char idx[600], sh[700], p[1300];
    common_init("old", 1, idx, sizeof idx, sh, sizeof sh);
    snprintf(p, sizeof p, "%s/checksum", sh);
    cr_assert_eq(unlink(p), 0);
    idx_reader_t *r = NULL;
    fn_errbuf eb = { { 0 } };
    int rc = idx_reader_open(sh, &r, &eb);
    cr_assert_eq(rc, FN_EFORMAT, "rc %d: %s", rc, eb.msg);
    cr_assert(strstr(eb.msg, "checksum: missing"), "%s", eb.msg);
    cr_assert_eq(idx_verify(idx, NULL, NULL, &eb), FN_ECORRUPT, "%s", eb.msg);

    /* meta schema = 1 (written with LMDB, as a schema-1 build would have) */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, IDX_MAX_DBS);
    cr_assert_eq(mdb_env_open(env, sh, MDB_NOLOCK, 0644), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, IDX_DB_META, 0, &dbi), 0);
    MDB_val k = { 6, "schema" }, v = { 1, "1" };
    cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    rc = idx_reader_open(sh, &r, &eb);
    cr_assert_eq(rc, FN_EVERSION, "rc %d: %s", rc, eb.msg);
    cr_assert(strstr(eb.msg, "index schema 1") && strstr(eb.msg, "rebuild"), "%s", eb.msg);
    outcome o;
    memset(&o, 0, sizeof o);
    rc = idx_verify(sh, on_report, &o, &eb);
    cr_assert_eq(rc, FN_EVERSION, "rc %d: %s", rc, eb.msg);
    cr_assert(strstr(o.verify_line, "UNREADABLE: index schema 1"), "%s", o.verify_line);
}

/* The file changes under an open reader. */
Test(verify, changed_under_an_open_reader)
{
    char idx[600], sh[700], p[1300];
    common_init("live", 1, idx, sizeof idx, sh, sizeof sh);
    data_path(sh, p, sizeof p);
    uint64_t size = file_size(sh);
    idx_reader_t *r;
    idx_searcher_t *s;
    fn_errbuf eb = { { 0 } };
    idx_results res;
    idx_query q = { .text = "heat transfer", .k = 10 };

    /* mtime only (same bytes, same size) */
    cr_assert_eq(idx_reader_open_ex(sh, IDX_OPEN_QUICK, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(idx_searcher_create(r, &s, &eb), 0, "%s", eb.msg);
    cr_assert_eq(idx_search(s, &q, &res, &eb), 0, "%s", eb.msg);
    struct timespec ts[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
    cr_assert_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
    int rc = idx_search(s, &q, &res, &eb);
    cr_assert_eq(rc, FN_ECORRUPT, "rc %d: %s", rc, eb.msg);
    cr_assert(strstr(eb.msg, "modified on disk while open"), "%s", eb.msg);
    char *json;
    cr_assert_eq(idx_reader_get_doc(r, "1", &json, &eb), FN_ECORRUPT, "%s", eb.msg);
    idx_searcher_destroy(s);
    idx_reader_close(r);

    /* truncated to half with ftruncate */
    cr_assert_eq(idx_reader_open_ex(sh, IDX_OPEN_QUICK, &r, &eb), 0, "%s", eb.msg);
    cr_assert_eq(idx_searcher_create(r, &s, &eb), 0, "%s", eb.msg);
    cr_assert_eq(idx_search(s, &q, &res, &eb), 0, "%s", eb.msg);
    int fd = open(p, O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)(size / 2)), 0);
    rc = idx_search(s, &q, &res, &eb);
    cr_assert_eq(rc, FN_ECORRUPT, "rc %d: %s", rc, eb.msg);
    cr_assert(strstr(eb.msg, "changed size on disk while open"), "%s", eb.msg);

    /* the guard covers LMDB's map: a read past the new end comes back as a
     * jump, not a SIGBUS (the per-query fstat above answers first; this is
     * what catches a truncation in the middle of a query) */
    cr_assert_not_null(r->map, "the reader does not know where data.mdb is mapped");
    cr_assert_geq(r->mapsize, size);
    volatile int faulted = 0;
    idx_guard g;
    cr_assert_eq(idx_guard_enter(&g, r->map, r->mapsize), 0);
    if (sigsetjmp(g.jb, 0) == 0) {
        volatile char c = r->map[size - 1];
        (void)c;
        idx_guard_leave(&g);
    } else {
        faulted = 1;
    }
    cr_assert(faulted, "reading past the end of a truncated map did not fault into the guard");
    cr_assert_eq(ftruncate(fd, (off_t)size), 0);   /* back to size, zeros in the second half */
    close(fd);
    rc = idx_search(s, &q, &res, &eb);
    cr_assert_eq(rc, FN_ECORRUPT, "rc %d: %s", rc, eb.msg);   /* the mtime changed */
    idx_searcher_destroy(s);
    idx_reader_close(r);
}

/* The file truncated while a verify or a search reads it: whichever check
 * sees it first (the whole-file check, the per-query fstat, the guard around
 * the reads), the answer is FN_ECORRUPT, never a SIGBUS. The truncation
 * comes from another thread after a delay that sweeps the check's duration. */
typedef struct trunc_job { char path[1300]; off_t size; useconds_t delay; } trunc_job;

static void *truncate_later(void *arg)
{
    trunc_job *j = arg;
    usleep(j->delay);
    cr_assert_eq(truncate(j->path, j->size), 0);
    return NULL;
}

Test(verify, truncated_during_verify_and_search)
{
    char idx[600], sh[700], d[1200];
    common_init("race", 1, idx, sizeof idx, sh, sizeof sh);
    uint64_t size = file_size(sh);
    int guarded_verify = 0, guarded_search = 0, late = 0, attempts = 0;
    for (useconds_t delay = 0; delay <= 30000; delay += 1500, attempts++) {
        copy_shard(sh, "case", d, sizeof d);
        trunc_job j = { .size = (off_t)(size / 2), .delay = delay };
        data_path(d, j.path, sizeof j.path);
        pthread_t t;
        fn_errbuf eb = { { 0 } };
        cr_assert_eq(pthread_create(&t, NULL, truncate_later, &j), 0);
        int rc = idx_verify(d, NULL, NULL, &eb);
        pthread_join(t, NULL);
        /* ok only when the check was over before the file changed (the longer delays) */
        cr_assert(rc == FN_ECORRUPT || (rc == 0 && delay > 0), "delay %u us: verify rc %d (%s)", (unsigned)delay,
                  rc, eb.msg);
        late += rc == 0;
        guarded_verify += strstr(eb.msg, "SIGBUS") != NULL;

        /* searches: a reader opened before, queries until one fails */
        copy_shard(sh, "case", d, sizeof d);
        idx_reader_t *r;
        idx_searcher_t *s;
        cr_assert_eq(idx_reader_open_ex(d, IDX_OPEN_QUICK, &r, &eb), 0, "%s", eb.msg);
        cr_assert_eq(idx_searcher_create(r, &s, &eb), 0, "%s", eb.msg);
        j.delay = delay / 10;
        cr_assert_eq(pthread_create(&t, NULL, truncate_later, &j), 0);
        idx_query q = { .text = "flow heat transfer boundary layer pressure distribution wing", .k = 1000 };
        idx_results res;
        for (int n = 0; n < 100000 && (rc = idx_search(s, &q, &res, &eb)) == 0; n++) {}
        pthread_join(t, NULL);
        cr_assert_eq(rc, FN_ECORRUPT, "delay %u us: search rc %d (%s)", (unsigned)j.delay, rc, eb.msg);
        guarded_search += strstr(eb.msg, "SIGBUS") != NULL;
        idx_searcher_destroy(s);
        idx_reader_close(r);
    }
    /* how many truncations landed inside a read is up to timing; none may
     * crash, and over the sweep some must have (else this tested nothing) */
    fprintf(stderr, "truncated during a check: the guard caught %d of %d verifies (%d finished first) and "
            "%d of %d search loops\n", guarded_verify, attempts, late, guarded_search, attempts);
    cr_assert_gt(guarded_verify, 0, "no truncation landed inside a verify's reads");
    cr_assert_gt(guarded_search, 0, "no truncation landed inside a query's reads");
}

/* verify of a whole index: a damaged shard is named, the others are still
 * checked, and the global statistics are checked across shards. */
Test(verify, whole_index)
{
    char idx[600], sh[700], p[1300];
    common_init("whole", 3, idx, sizeof idx, sh, sizeof sh);
    /* shard 1: a posting block of "flow" */
    char s1[800];
    snprintf(s1, sizeof s1, "%s/shard-001", idx);
    uint8_t key[8];
    idx_put_u32be(key, termid_of(s1, "flow"));
    idx_put_u32be(key + 4, 0);
    uint64_t off, len;
    locate(s1, IDX_DB_POSTINGS, 0, key, 8, &off, &len);
    flip(s1, off + len / 2, 1);
    outcome o;
    memset(&o, 0, sizeof o);
    fn_errbuf eb = { { 0 } };
    int rc = idx_verify(idx, on_report, &o, &eb);
    cr_assert_eq(rc, FN_ECORRUPT);
    cr_assert(strstr(eb.msg, "shard-001: postings of term \"flow\", block 0: checksum mismatch"), "%s", eb.msg);
    cr_assert(strncmp(o.verify_line, "shard-002: ok", 13) == 0, "the shard after the damaged one: %s",
              o.verify_line);

    /* a term whose gdf differs between shards (each shard intact by itself:
     * the record rewritten with its checksum, the file checksum renewed) */
    char s2[800];
    snprintf(s2, sizeof s2, "%s/shard-002", idx);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = { 4, "flow" }, v;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, IDX_MAX_DBS);
    cr_assert_eq(mdb_env_open(env, s2, MDB_NOLOCK, 0644), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, IDX_DB_TERMS, 0, &dbi), 0);
    cr_assert_eq(mdb_get(txn, dbi, &k, &v), 0);
    uint8_t rec[IDX_TERM_REC_BYTES];
    memcpy(rec, v.mv_data, sizeof rec);
    idx_put_u32le(rec + 8, idx_get_u32le(rec + 8) + 1);
    idx_put_u32le(rec + 32, idx_sum32(rec, 32, idx_key_seed("flow", 4)));
    v = (MDB_val){ sizeof rec, rec };
    cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    /* and the vocabulary's copy of the gdf, so the shard agrees with itself */
    uint8_t vk[4], vrec[IDX_VOCAB_HDR + 4];
    idx_put_u32be(vk, idx_get_u32le(rec));
    cr_assert_eq(mdb_dbi_open(txn, IDX_DB_VOCAB, 0, &dbi), 0);
    k = (MDB_val){ 4, vk };
    cr_assert_eq(mdb_get(txn, dbi, &k, &v), 0);
    cr_assert_eq(v.mv_size, sizeof vrec);
    memcpy(vrec, v.mv_data, sizeof vrec);
    idx_put_u32le(vrec + 4, idx_get_u32le(rec + 8));
    idx_put_u32le(vrec, idx_sum32(vrec + 4, sizeof vrec - 4, idx_get_u32le(rec)));
    v = (MDB_val){ sizeof vrec, vrec };
    cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    uint64_t hash, bytes;
    snprintf(p, sizeof p, "%s/data.mdb", s2);
    cr_assert_eq(idx_file_hash(p, &hash, &bytes, &eb), 0);
    cr_assert_eq(idx_checksum_write(s2, hash, bytes, &eb), 0);
    memset(&o, 0, sizeof o);
    cr_assert_eq(idx_verify(s2, on_report, &o, &eb), 0, "shard-002 by itself: %s", eb.msg);
    rc = idx_verify(idx, NULL, NULL, &eb);
    cr_assert_eq(rc, FN_ECORRUPT);
    cr_assert(strstr(eb.msg, "shard-001: postings of term \"flow\""), "%s", eb.msg);
    /* shard 1 repaired (a copy from a fresh build of the same corpus) */
    char again[600];
    build_cran("again", 3, again, sizeof again);
    char src[800], dst[1300];
    snprintf(src, sizeof src, "%s/shard-001/data.mdb", again);
    snprintf(dst, sizeof dst, "%s/data.mdb", s1);
    copy_file(src, dst);
    snprintf(src, sizeof src, "%s/shard-001/checksum", again);
    snprintf(dst, sizeof dst, "%s/checksum", s1);
    copy_file(src, dst);
    rc = idx_verify(idx, on_report, &o, &eb);
    cr_assert_eq(rc, FN_ECORRUPT);
    cr_assert(strstr(eb.msg, "global statistics inconsistent: term \"flow\": gdf"), "%s", eb.msg);
    cr_assert(strstr(o.verify_line, "shard-002: ok"), "%s", o.verify_line);

    /* a shard of another index in its place: its meta says another shard number */
    snprintf(src, sizeof src, "%s/shard-000/data.mdb", again);
    snprintf(dst, sizeof dst, "%s/data.mdb", s2);
    copy_file(src, dst);
    snprintf(src, sizeof src, "%s/shard-000/checksum", again);
    snprintf(dst, sizeof dst, "%s/checksum", s2);
    copy_file(src, dst);
    rc = idx_verify(idx, NULL, NULL, &eb);
    cr_assert_eq(rc, FN_ECORRUPT);
    cr_assert(strstr(eb.msg, "shard-002: meta says shard 0 of 3"), "%s", eb.msg);

    /* a shard directory missing altogether */
    snprintf(p, sizeof p, "%s/shard-001", idx);
    tu_rmtree(p);
    rc = idx_verify(idx, NULL, NULL, &eb);
    cr_assert_eq(rc, FN_ECORRUPT);
    cr_assert(strstr(eb.msg, "shard-001: missing"), "%s", eb.msg);
}

/* ---- the result page's signals (format.h docsig) ---- */

/* idx_docs_signals of doc on the shard in dir, opened without the
 * whole-file check: its return code, the message in msg. */
static int signals_of(const char *dir, uint32_t doc, char *msg, size_t cap)
{
    idx_reader_t *r;
    fn_errbuf eb = { { 0 } };
    int rc = idx_reader_open_ex(dir, IDX_OPEN_QUICK, &r, &eb);
    cr_assert_eq(rc, 0, "quick open: %s", eb.msg);
    float sc;
    uint8_t sig[IDX_DUPSIG_BYTES];
    rc = idx_docs_signals(r, &doc, 1, &sc, sig, &eb);
    snprintf(msg, cap, "%s", eb.msg);
    idx_reader_close(r);
    return rc;
}

Test(verify, docsig_records)
{
    char idx[600], sh[700], d[1200];
    common_init("docsig", 1, idx, sizeof idx, sh, sizeof sh);
    qset qs;
    qset_load(&qs);
    answer *base = baseline(sh, &qs);
    uint32_t doc = base[0].doc[0];
    char want[200], msg[512];
    snprintf(want, sizeof want, "docsig of doc %u", doc);

    /* undamaged: no filter score (built without a model), a signature */
    cr_assert_eq(signals_of(sh, doc, msg, sizeof msg), 0, "%s", msg);

    /* a flipped byte: the file's checksum at open, the value's sum after a quick open */
    copy_shard(sh, "case", d, sizeof d);
    uint64_t off, len;
    locate_doc(d, IDX_DB_DOCSIG, doc, &off, &len);
    cr_assert_eq(len, IDX_DOCSIG_BYTES);
    flip(d, off + len / 2, 1);
    outcome o;
    run_case("docsig flipped", d, &qs, base, &o);
    cr_assert(strstr(o.verify_line, want) && strstr(o.verify_line, "checksum mismatch"), "verify: %s", o.verify_line);
    int rc = signals_of(d, doc, msg, sizeof msg);
    cr_assert_eq(rc, FN_ECORRUPT, "signals rc %d (%s)", rc, msg);
    cr_assert(strstr(msg, want) && strstr(msg, "checksum mismatch"), "%s", msg);

    /* right sums, wrong insides */
    size_t n;
    uint8_t *orig = get_value(sh, IDX_DB_DOCSIG, doc, &n);
    cr_assert_eq(n, IDX_DOCSIG_BYTES - 4);
    struct { const char *label, *verify, *reader; int edit; } cases[] = {
        { "cut short", "bytes, want", "bytes, want", 0 },
        { "a byte too many", "bytes, want", "bytes, want", 1 },
        { "a filter score out of range", "outside [0, 1]", "outside [0, 1]", 2 },
        { "a filter score without a model", "meta names no filter model", NULL, 3 },
        { "another signature", "near-duplicate signature is not its source's", NULL, 4 },
    };
    fn_errbuf eb = { { 0 } };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t v[IDX_DOCSIG_BYTES + 8];
        memcpy(v, orig, n);
        size_t vn = n;
        float f;
        uint32_t bits;
        switch (cases[c].edit) {
        case 0: vn = n - 1; break;
        case 1: v[n] = 0; vn = n + 1; break;
        case 2: f = 2.0f; memcpy(&bits, &f, 4); idx_put_u32le(v, bits); break;
        case 3: f = 0.5f; memcpy(&bits, &f, 4); idx_put_u32le(v, bits); break;
        case 4: v[4 + 17] ^= 0x5a; break;
        }
        copy_shard(sh, "case", d, sizeof d);
        put_value(d, IDX_DB_DOCSIG, doc, v, vn);
        rc = signals_of(d, doc, msg, sizeof msg);
        if (cases[c].reader) {
            cr_assert_eq(rc, FN_ECORRUPT, "%s: signals rc %d (%s)", cases[c].label, rc, msg);
            cr_assert(strstr(msg, want) && strstr(msg, cases[c].reader), "%s: %s", cases[c].label, msg);
        } else {
            cr_assert_eq(rc, 0, "%s: %s", cases[c].label, msg);   /* well-formed: only verify can tell */
        }
        memset(&o, 0, sizeof o);
        rc = idx_verify(d, on_report, &o, &eb);
        cr_assert_eq(rc, FN_ECORRUPT, "%s: verify rc %d (%s)", cases[c].label, rc, eb.msg);
        cr_assert(strstr(o.verify_line, want) && strstr(o.verify_line, cases[c].verify), "%s: verify: %s",
                  cases[c].label, o.verify_line);
        fprintf(stderr, "[docsig %s] %s | verify: %s\n", cases[c].label, msg, o.verify_line);
    }
    free(orig);
    answers_free(base, &qs);
    qset_free(&qs);
}
