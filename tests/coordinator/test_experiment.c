/* test_experiment.c - online experiments (coordinator/experiment.h): the
 * config, consistent-hash assignment, team-draft interleaving. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "experiment.h"

/* xxh64("s2-2026\nuser-42") % 10000 and xxh64("funnel-traffic\nuser-42") % 10000,
 * computed with the one-shot XXH64 outside this code */
#define EXP_PINNED_BUCKETS "68 6759"

/* ---- team-draft interleaving ---- */

static long draft(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, uint64_t seed, uint32_t *out,
                  uint8_t *team)
{
    fn_arena ar;
    fn_arena_init(&ar);
    long n = coord_team_draft(&ar, a, na, b, nb, 64, seed, out, team);
    fn_arena_free(&ar);
    return n;
}

/* the rules every team draft keeps: an item once; each team's picks in its
 * ranker's order, each the best of that ranker's not yet shown; an item both
 * rankers would take next is neutral (AB), and a neutral item is exactly that */
static void check_draft(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, const uint32_t *out,
                        const uint8_t *team, long n)
{
    uint8_t seen[64] = {0};
    for (long i = 0; i < n; i++) {
        cr_assert(!seen[out[i]], "item %u twice", out[i]);
        size_t ja = 0, jb = 0;
        while (ja < na && seen[a[ja]]) ja++;
        while (jb < nb && seen[b[jb]]) jb++;
        int both = ja < na && jb < nb && a[ja] == b[jb];
        cr_assert_eq(team[i] == COORD_TEAM_AB, both, "position %ld: team %d, both rankers' next %s", i, team[i],
                     both ? "agree" : "differ");
        if (team[i] == COORD_TEAM_A || team[i] == COORD_TEAM_AB)
            cr_assert(ja < na && a[ja] == out[i], "position %ld: A did not take its best left", i);
        if (team[i] == COORD_TEAM_B || team[i] == COORD_TEAM_AB)
            cr_assert(jb < nb && b[jb] == out[i], "position %ld: B did not take its best left", i);
        cr_assert(team[i] >= COORD_TEAM_A && team[i] <= COORD_TEAM_AB, "position %ld: team %d", i, team[i]);
        seen[out[i]] = 1;
    }
}

Test(team_draft, alternates_on_the_same_documents)
{
    uint32_t a[20], b[20], out[40];
    uint8_t team[40];
    for (uint32_t i = 0; i < 20; i++) {
        a[i] = i;
        b[i] = (i * 7) % 20;   /* another order of the same 20 */
    }
    for (uint64_t seed = 1; seed <= 200; seed++) {
        long n = draft(a, 20, b, 20, seed, out, team);
        cr_assert_eq(n, 20);
        check_draft(a, 20, b, 20, out, team, n);
        /* each round one pick of each team, in a coin-flip order (the
         * neutral items, both rankers' next, are outside the rounds) */
        uint8_t picks[40];
        long np = 0, nab = 0;
        for (long i = 0; i < n; i++) {
            if (team[i] == COORD_TEAM_AB) nab++;
            else picks[np++] = team[i];
        }
        cr_assert_eq(team[0], COORD_TEAM_AB, "both rank 0 first");
        cr_assert(np >= n / 2, "seed %llu: %ld neutral items of %ld", (unsigned long long)seed, nab, n);
        for (long i = 0; i + 1 < np; i += 2) {
            cr_assert_neq(picks[i], picks[i + 1], "seed %llu: round %ld gave one team both",
                          (unsigned long long)seed, i / 2);
        }
    }
}

Test(team_draft, deterministic_given_a_seed_and_both_coins_happen)
{
    uint32_t a[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, b[10] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
    uint32_t o1[20], o2[20];
    uint8_t t1[20], t2[20];
    int first_a = 0;
    for (uint64_t seed = 0; seed < 100; seed++) {
        long n1 = draft(a, 10, b, 10, seed, o1, t1), n2 = draft(a, 10, b, 10, seed, o2, t2);
        cr_assert_eq(n1, n2);
        cr_assert_arr_eq(o1, o2, (size_t)n1 * sizeof *o1);
        cr_assert_arr_eq(t1, t2, (size_t)n1);
        first_a += t1[0] == COORD_TEAM_A;
    }
    /* a fair coin: A goes first in about half of 100 seeds */
    cr_assert(first_a > 30 && first_a < 70, "A first in %d of 100", first_a);
}

Test(team_draft, overlaps)
{
    /* the same top document: neutral, with no coin; then a round on 2 / 5:
     * whoever picks first takes its own, the other its own */
    uint32_t a[4] = {1, 2, 3, 4}, b[4] = {1, 5, 2, 6}, out[8];
    uint8_t team[8];
    int a_first = 0;
    for (uint64_t seed = 0; seed < 50; seed++) {
        long n = draft(a, 4, b, 4, seed, out, team);
        cr_assert_eq(n, 6);   /* the union */
        check_draft(a, 4, b, 4, out, team, n);
        cr_assert(out[0] == 1 && team[0] == COORD_TEAM_AB);
        cr_assert_eq(out[1], team[1] == COORD_TEAM_A ? 2 : 5);
        cr_assert_eq(out[2], team[1] == COORD_TEAM_A ? 5 : 2);
        a_first += team[1] == COORD_TEAM_A;
    }
    cr_assert(a_first > 10 && a_first < 40, "A first in %d of 50 rounds on 2 / 5", a_first);
    /* identical lists: the page is that list, all of it neutral */
    uint32_t c[5] = {4, 3, 2, 1, 0};
    long n = draft(c, 5, c, 5, 7, out, team);
    cr_assert_eq(n, 5);
    for (long i = 0; i < n; i++) cr_assert(out[i] == c[i] && team[i] == COORD_TEAM_AB);
    /* agreement later on: b takes 3 in its round, then both lists' next is 2 */
    uint32_t d[3] = {3, 2, 7}, e[3] = {9, 3, 2};
    for (uint64_t seed = 0; seed < 20; seed++) {
        n = draft(d, 3, e, 3, seed, out, team);
        check_draft(d, 3, e, 3, out, team, n);
    }
}

Test(team_draft, short_and_empty_lists)
{
    uint32_t a[2] = {1, 2}, b[5] = {3, 4, 5, 6, 7}, out[16];
    uint8_t team[16];
    long n = draft(a, 2, b, 5, 3, out, team);
    cr_assert_eq(n, 7);
    check_draft(a, 2, b, 5, out, team, n);
    size_t na = 0;
    for (long i = 0; i < n; i++) na += team[i] == COORD_TEAM_A;
    cr_assert_eq(na, 2, "A has 2 documents to give");
    /* after A runs out, B's rest follows, as B's */
    for (long i = 4; i < n; i++) cr_assert_eq(team[i], COORD_TEAM_B);
    n = draft(a, 0, b, 5, 3, out, team);
    cr_assert_eq(n, 5);
    for (long i = 0; i < n; i++) cr_assert(out[i] == b[i] && team[i] == COORD_TEAM_B);
    n = draft(a, 0, b, 0, 3, out, team);
    cr_assert_eq(n, 0);
    /* a ranker that repeats an item: still once on the page */
    uint32_t d[4] = {1, 1, 2, 2};
    n = draft(d, 4, a, 2, 5, out, team);
    cr_assert_eq(n, 2);
}

Test(team_draft, team_names)
{
    cr_assert_str_eq(coord_team_name(COORD_TEAM_A), "A");
    cr_assert_str_eq(coord_team_name(COORD_TEAM_B), "B");
    cr_assert_str_eq(coord_team_name(COORD_TEAM_AB), "AB");
    cr_assert_str_eq(coord_team_name(COORD_TEAM_NONE), "");
}

/* ---- the config ---- */

static const char *conf2 =
    "# two experiments\n"
    "experiment s2 traffic=60 salt=s2-2026 unit=user\n"
    "  arm control share=20 model=none   # BM25\n"
    "  arm one share=30 model=none\n"
    "  arm il share=50 interleave=none,m.model\n"
    "\n"
    "experiment other traffic=40 salt=o1\n"
    "arm x share=100 model=none\n";

Test(exp_config, parses)
{
    coord_exps x;
    fn_errbuf eb = {{0}};
    cr_assert_eq(coord_exps_parse(conf2, "e.conf", &x, &eb), 0, "%s", eb.msg);
    cr_assert_eq(x.nexp, 2);
    cr_assert_eq(x.narms, 4);
    cr_assert_str_eq(x.exp[0].name, "s2");
    cr_assert_eq(x.exp[0].unit, COORD_EXP_UNIT_USER);
    cr_assert_eq(x.exp[1].unit, COORD_EXP_UNIT_ANY);
    cr_assert_eq(x.exp[0].lo, 0);
    cr_assert_eq(x.exp[0].hi, 6000);
    cr_assert_eq(x.exp[1].lo, 6000);
    cr_assert_eq(x.exp[1].hi, 10000);
    cr_assert_eq(x.arms[0].hi, 2000);
    cr_assert_eq(x.arms[1].lo, 2000);
    cr_assert_eq(x.arms[2].hi, 10000);
    cr_assert(x.arms[2].interleave);
    cr_assert_str_eq(x.arms[2].model_path[0], "");
    cr_assert_str_eq(x.arms[2].model_path[1], "m.model");
    cr_assert_eq(x.exp[1].arm0, 3);
}

Test(exp_config, refuses_with_file_and_line)
{
    static const struct { const char *text, *want; } bad[] = {
        {"experiment a traffic=50 salt=s\narm x share=60 model=none\n", "e.conf:2: experiment a: the arms' shares sum to 60.00, not 100"},
        {"arm x share=100 model=none\n", "e.conf:1: arm x before any experiment"},
        {"experiment a traffic=50\narm x share=100 model=none\n", "e.conf:1: experiment a: salt= missing"},
        {"experiment a traffic=70 salt=s\narm x share=100 model=none\nexperiment b traffic=40 salt=t\n",
         "e.conf:3: experiment b: the experiments' traffic passes 100%"},
        {"experiment a traffic=100 salt=s\narm x share=100 interleave=m,m\n", "e.conf:2: arm x: interleaves a ranker with itself"},
        {"experiment a traffic=100 salt=s\narm x share=100 model=none colour=red\n", "e.conf:2: arm: unknown key \"colour\""},
        {"experiment a traffic=100 salt=s unit=device\n", "e.conf:1: unit: \"device\" is not any, user or session"},
        {"experiment a traffic=100 salt=s\narm x share=100\n", "e.conf:2: arm x: model= or interleave= missing"},
        {"experiment a traffic=100 salt=s\narm x y share=100\n", "e.conf:2: \"y\": KEY=VALUE expected"},
        {"experiment a/b traffic=100 salt=s\n", "e.conf:1: experiment: a name of 1..64"},
        {"experiment a traffic=101 salt=s\n", "e.conf:1: traffic: \"101\" is not a percentage 0..100"},
        {"experiment a traffic=100 salt=s\n", "e.conf:1: experiment a has no arm"},
        {"# nothing\n", "e.conf: no experiment"},
        {"experiment a traffic=100 salt=s\narm x share=50 model=none\narm x share=50 model=none\n",
         "e.conf:3: arm x twice in experiment a"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        coord_exps x;
        fn_errbuf eb = {{0}};
        cr_assert_eq(coord_exps_parse(bad[i].text, "e.conf", &x, &eb), FN_EPARSE, "case %zu", i);
        cr_assert(strstr(eb.msg, bad[i].want) == eb.msg, "case %zu: %s", i, eb.msg);
    }
    /* at most 8 arms over all experiments */
    char big[2048] = "experiment a traffic=100 salt=s\n";
    for (int i = 0; i < 9; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big), "arm a%d share=%s model=none\n", i, i < 8 ? "12.5" : "0");
    coord_exps x;
    fn_errbuf eb = {{0}};
    cr_assert_eq(coord_exps_parse(big, "e.conf", &x, &eb), FN_EPARSE);
    cr_assert(strstr(eb.msg, "e.conf:10: more than 8 arms"), "%s", eb.msg);
}

Test(exp_config, load_file_and_models)
{
    char path[] = "/tmp/test_experiment.XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char *t = "experiment a traffic=100 salt=s\narm x share=50 model=none\narm y share=50 model=/no/such.model\n";
    cr_assert_eq(write(fd, t, strlen(t)), (ssize_t)strlen(t));
    close(fd);
    coord_exps *x = NULL;
    fn_errbuf eb = {{0}};
    const char *names[] = {"bm25f"};
    int rc = coord_exps_load(path, names, 1, &x, &eb);
    cr_assert_neq(rc, 0);
    cr_assert_null(x);
    cr_assert(strstr(eb.msg, "arm y:"), "%s", eb.msg);
    FILE *f = fopen(path, "w");
    fputs("experiment a traffic=100 salt=s\narm x share=50 model=none\narm y share=50 model=none\n", f);
    fclose(f);
    cr_assert_eq(coord_exps_load(path, names, 1, &x, &eb), 0, "%s", eb.msg);
    cr_assert_eq(x->narms, 2);
    coord_exps_free(x);
    unlink(path);
    cr_assert_lt(coord_exps_load("/no/such/file", names, 1, &x, &eb), 0);
}

/* ---- assignment ---- */

Test(exp_assign, stable_values)
{
    /* the hash is part of the deployment: a user must stay in the arm they
     * were in after a restart, on every coordinator and build. These are
     * xxh64("salt\nid") % 10000, pinned. */
    uint32_t b1 = coord_exp_bucket("s2-2026", "user-42"), b2 = coord_exp_bucket(NULL, "user-42");
    cr_assert_eq(coord_exp_bucket("s2-2026", "user-42"), b1);
    cr_assert_neq(b1, b2, "the traffic split and an experiment's split use other salts");
    char want[64];
    snprintf(want, sizeof want, "%u %u", b1, b2);
    cr_assert_str_eq(want, EXP_PINNED_BUCKETS, "bucket values changed: %s (assignments would move)", want);
}

Test(exp_assign, shares_within_tolerance)
{
    coord_exps x;
    fn_errbuf eb = {{0}};
    cr_assert_eq(coord_exps_parse(conf2, "e.conf", &x, &eb), 0, "%s", eb.msg);
    size_t count[5] = {0};   /* arms 0..3, 4 = none */
    enum { N = 100000 };
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof id, "u%d", i);
        coord_exp_pick p, q;
        coord_exp_assign(&x, id, NULL, "some query", &p);
        count[p.arm ? (size_t)(p.arm - x.arms) : 4]++;
        /* the same user, another query and a session: the same arm */
        coord_exp_assign(&x, id, "sess", "another query", &q);
        cr_assert_eq(p.arm, q.arm);
        if (i < 1000) cr_assert_neq(p.seed, q.seed, "the coins depend on the query");
    }
    /* s2 holds 60% of the traffic: control 12%, one 18%, il 30%; other 40% */
    const double want[5] = {0.12, 0.18, 0.30, 0.40, 0};
    for (int k = 0; k < 5; k++) {
        double share = count[k] / (double)N;
        cr_assert(share > want[k] - 0.01 && share < want[k] + 0.01, "arm %d: %.4f, want %.2f", k, share, want[k]);
    }
}

Test(exp_assign, units)
{
    coord_exps x;
    fn_errbuf eb = {{0}};
    cr_assert_eq(coord_exps_parse("experiment a traffic=100 salt=s unit=session\narm x share=100 model=none\n",
                                  "e.conf", &x, &eb), 0, "%s", eb.msg);
    coord_exp_pick p;
    coord_exp_assign(&x, NULL, NULL, "q", &p);
    cr_assert_null(p.arm, "no id: in no experiment");
    coord_exp_assign(&x, "", "", "q", &p);
    cr_assert_null(p.arm);
    coord_exp_assign(&x, "u1", NULL, "q", &p);
    cr_assert_null(p.arm, "unit=session: a user id alone is not enough");
    coord_exp_assign(&x, NULL, "s1", "q", &p);
    cr_assert_not_null(p.arm);
    cr_assert_str_eq(p.exp->name, "a");
    coord_exp_assign(NULL, "u1", "s1", "q", &p);
    cr_assert_null(p.arm, "no experiments configured");
    /* unit=any: the user if there is one, else the session */
    coord_experiment e = {.unit = COORD_EXP_UNIT_ANY};
    cr_assert_str_eq(coord_exp_unit_id(&e, "u", "s"), "u");
    cr_assert_str_eq(coord_exp_unit_id(&e, "", "s"), "s");
    e.unit = COORD_EXP_UNIT_USER;
    cr_assert_null(coord_exp_unit_id(&e, NULL, "s"));
}
