/* test_updates.c - shard/updates.c: the live updates' store. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "testutil.h"
#include "updates.h"

static su_op put(const char *id, uint64_t v, const char *json)
{
    return (su_op){ id, strlen(id), v, 0, json, strlen(json) };
}

static su_op del(const char *id, uint64_t v) { return (su_op){ id, strlen(id), v, 1, NULL, 0 }; }

static uint64_t key(const char *id) { return XXH64(id, strlen(id), 0); }

static int state(shard_updates *u, const char *id, char **json, uint64_t *ver)
{
    fn_errbuf eb;
    size_t len;
    *json = NULL;
    return su_get(u, id, strlen(id), json, &len, ver, &eb);
}

Test(updates, last_writer_wins_and_survives_a_reopen)
{
    char dir[256];
    tu_mkdtemp(dir, sizeof dir, "/tmp/funnel-updates-XXXXXX");
    shard_updates *u;
    fn_errbuf eb;
    cr_assert_eq(su_open(dir, &u, &eb), 0, "%s", eb.msg);
    su_op a[] = { put("a", 10, "{\"id\":\"a\",\"title\":\"ten\"}"), del("b", 10), put("c", 5, "{\"id\":\"c\"}") };
    uint8_t ap[3];
    cr_assert_eq(su_apply(u, a, 3, ap, &eb), 0, "%s", eb.msg);
    cr_assert(ap[0] && ap[1] && ap[2]);
    /* older versions lose; a newer one wins, whatever the arrival order */
    su_op b[] = { put("a", 9, "{\"id\":\"a\",\"title\":\"nine\"}"), put("b", 11, "{\"id\":\"b\"}"), del("c", 5) };
    cr_assert_eq(su_apply(u, b, 3, ap, &eb), 0);
    cr_assert(!ap[0] && ap[1] && !ap[2], "%d %d %d", ap[0], ap[1], ap[2]);
    char *j;
    uint64_t v;
    cr_assert_eq(state(u, "a", &j, &v), 1);
    cr_assert_str_eq(j, "{\"id\":\"a\",\"title\":\"ten\"}");
    cr_assert_eq(v, 10);
    free(j);
    cr_assert_eq(state(u, "b", &j, &v), 1);
    free(j);
    cr_assert_eq(state(u, "nope", &j, &v), 0);
    cr_assert_eq(su_count(u), 3);
    cr_assert_eq(su_max_version(u), 11);
    su_close(u);
    /* what was acknowledged is on disk: a new process finds it, and hides the same ids */
    cr_assert_eq(su_open(dir, &u, &eb), 0, "%s", eb.msg);
    cr_assert_eq(su_count(u), 3);
    cr_assert(su_excludes(u, key("a")) && su_excludes(u, key("b")) && su_excludes(u, key("c")));
    cr_assert(!su_excludes(u, key("d")));
    cr_assert_eq(state(u, "c", &j, &v), 1);
    free(j);
    su_op d[] = { del("c", 6) };
    cr_assert_eq(su_apply(u, d, 1, ap, &eb), 0);
    cr_assert_eq(state(u, "c", &j, &v), 2);
    cr_assert_eq(v, 6);
    su_close(u);
    tu_rmtree(dir);
}

static int count_cb(void *ud, const char *id, size_t idlen, uint64_t version, int live, const char *json, size_t jl)
{
    (void)id; (void)idlen; (void)version; (void)json; (void)jl;
    ((size_t *)ud)[live]++;
    return 0;
}

Test(updates, prune_keeps_what_was_written_again)
{
    char dir[256];
    tu_mkdtemp(dir, sizeof dir, "/tmp/funnel-updates-XXXXXX");
    shard_updates *u;
    fn_errbuf eb;
    cr_assert_eq(su_open(dir, &u, &eb), 0, "%s", eb.msg);
    su_op a[] = { put("x", 1, "{\"id\":\"x\"}"), del("y", 2), put("z", 3, "{\"id\":\"z\"}") };
    uint8_t ap[3];
    cr_assert_eq(su_apply(u, a, 3, ap, &eb), 0);
    size_t n[2] = { 0, 0 };
    cr_assert_eq(su_snapshot(u, count_cb, n, &eb), 0);
    cr_assert_eq(n[0], 1);
    cr_assert_eq(n[1], 2);
    /* z written again after the merge's export (version 4): it stays */
    su_op again[] = { put("z", 4, "{\"id\":\"z\",\"title\":\"again\"}") };
    cr_assert_eq(su_apply(u, again, 1, ap, &eb), 0);
    su_op pr[] = { put("x", 1, ""), del("y", 2), put("z", 3, ""), del("never", 9) };
    size_t dropped;
    cr_assert_eq(su_prune(u, pr, 4, &dropped, &eb), 0, "%s", eb.msg);
    cr_assert_eq(dropped, 2);
    cr_assert(!su_excludes(u, key("x")) && !su_excludes(u, key("y")));
    cr_assert(su_excludes(u, key("z")));
    cr_assert_eq(su_count(u), 1);
    char *j;
    uint64_t v;
    cr_assert_eq(state(u, "z", &j, &v), 1);
    cr_assert_eq(v, 4);
    free(j);
    su_close(u);
    tu_rmtree(dir);
}

/* searches ask while a writer grows the hidden-ids set many times over */
typedef struct { shard_updates *u; volatile int stop; long asked; } reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    while (!a->stop) {
        cr_assert(su_excludes(a->u, key("id-0")), "an id hidden once is always hidden");
        a->asked++;
    }
    return NULL;
}

Test(updates, the_hidden_set_grows_under_readers)
{
    char dir[256];
    tu_mkdtemp(dir, sizeof dir, "/tmp/funnel-updates-XXXXXX");
    shard_updates *u;
    fn_errbuf eb;
    cr_assert_eq(su_open(dir, &u, &eb), 0, "%s", eb.msg);
    uint8_t ap[1];
    su_op first[] = { del("id-0", 1) };
    cr_assert_eq(su_apply(u, first, 1, ap, &eb), 0);
    reader_arg ra = { u, 0, 0 };
    pthread_t th;
    pthread_create(&th, NULL, reader, &ra);
    enum { N = 5000, B = 500 };
    static char ids[N][16];
    for (int b = 0; b < N / B; b++) {
        su_op ops[B];
        uint8_t ok[B];
        for (int i = 0; i < B; i++) {
            snprintf(ids[b * B + i], sizeof ids[0], "id-%d", 1 + b * B + i);
            ops[i] = del(ids[b * B + i], 2);
        }
        cr_assert_eq(su_apply(u, ops, B, ok, &eb), 0, "%s", eb.msg);
    }
    ra.stop = 1;
    pthread_join(th, NULL);
    for (int i = 0; i < N; i++) cr_assert(su_excludes(u, key(ids[i])), "%s", ids[i]);
    cr_assert_eq(su_count(u), N + 1);
    cr_assert(ra.asked > 0);
    su_close(u);
    tu_rmtree(dir);
}

/* the map starts small and grows: 40 MB of documents in a 256 MiB start */
Test(updates, the_map_grows_when_full)
{
    char dir[256];
    tu_mkdtemp(dir, sizeof dir, "/tmp/funnel-updates-XXXXXX");
    shard_updates *u;
    fn_errbuf eb;
    cr_assert_eq(su_open(dir, &u, &eb), 0, "%s", eb.msg);
    size_t big = 4u << 20;
    char *json = malloc(big + 64);
    cr_assert_not_null(json);
    for (int i = 0; i < 100; i++) {
        char id[32];
        snprintf(id, sizeof id, "big-%d", i);
        int n = snprintf(json, 64, "{\"id\":\"%s\",\"body\":\"", id);
        memset(json + n, 'a' + i % 26, big);
        memcpy(json + n + big, "\"}", 3);
        su_op op = put(id, (uint64_t)i + 1, json);
        uint8_t ok;
        cr_assert_eq(su_apply(u, &op, 1, &ok, &eb), 0, "write %d: %s", i, eb.msg);
        cr_assert(ok);
    }
    free(json);
    cr_assert_eq(su_count(u), 100);
    su_close(u);
    tu_rmtree(dir);
}
