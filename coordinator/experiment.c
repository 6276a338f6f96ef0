/* experiment.c - online experiments: config, assignment, team-draft
 * interleaving (experiment.h). */
#include "experiment.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define TRAFFIC_SALT "funnel-traffic"   /* the split between experiments */

/* ---- parsing ---- */

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > COORD_EXP_MAX_NAME) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

/* "12.5" -> 1250 buckets; -1 unless a number in 0..100 */
static long pct_buckets(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0 && v <= 100)) return -1;
    return lround(v * (COORD_EXP_BUCKETS / 100));
}

static int path_or_none(const char *v, char *dst, size_t cap)
{
    if (!*v || strlen(v) >= cap) return -1;
    snprintf(dst, cap, "%s", strcmp(v, "none") == 0 ? "" : v);
    return 0;
}

/* close the experiment being read: its arms' shares fill its buckets */
static int end_experiment(coord_exps *x, const char *file, size_t line, fn_errbuf *eb)
{
    if (!x->nexp) return 0;
    coord_experiment *e = &x->exp[x->nexp - 1];
    if (!e->narms) return fn_seterr(eb, FN_EPARSE, "%s:%zu: experiment %s has no arm", file, line, e->name);
    uint32_t end = x->arms[e->arm0 + e->narms - 1].hi;
    if (end != COORD_EXP_BUCKETS)
        return fn_seterr(eb, FN_EPARSE, "%s:%zu: experiment %s: the arms' shares sum to %.2f, not 100", file, line,
                         e->name, end / (double)(COORD_EXP_BUCKETS / 100));
    return 0;
}

static int parse_line(coord_exps *x, char *l, const char *file, size_t line, fn_errbuf *eb)
{
    char *tok[8];
    size_t nt = 0;
    for (char *p = strtok(l, " \t\r"); p; p = strtok(NULL, " \t\r")) {
        if (nt == 8) return fn_seterr(eb, FN_EPARSE, "%s:%zu: too many words", file, line);
        tok[nt++] = p;
    }
    if (!nt) return 0;
    int is_exp = strcmp(tok[0], "experiment") == 0;
    if (!is_exp && strcmp(tok[0], "arm") != 0)
        return fn_seterr(eb, FN_EPARSE, "%s:%zu: \"%s\": want \"experiment NAME ...\" or \"arm NAME ...\"", file,
                         line, tok[0]);
    if (nt < 2 || !name_ok(tok[1]))
        return fn_seterr(eb, FN_EPARSE, "%s:%zu: %s: a name of 1..64 [A-Za-z0-9_.-] expected", file, line, tok[0]);
    if (is_exp) {
        int rc = end_experiment(x, file, line, eb);
        if (rc) return rc;
        if (x->nexp == COORD_EXP_MAX_ARMS)
            return fn_seterr(eb, FN_EPARSE, "%s:%zu: more than %d experiments", file, line, COORD_EXP_MAX_ARMS);
        for (size_t i = 0; i < x->nexp; i++)
            if (!strcmp(x->exp[i].name, tok[1]))
                return fn_seterr(eb, FN_EPARSE, "%s:%zu: experiment %s twice", file, line, tok[1]);
        coord_experiment *e = &x->exp[x->nexp];
        memset(e, 0, sizeof *e);
        snprintf(e->name, sizeof e->name, "%s", tok[1]);
        e->lo = x->nexp ? x->exp[x->nexp - 1].hi : 0;
        long traffic = -1;
        for (size_t i = 2; i < nt; i++) {
            char *v = strchr(tok[i], '=');
            if (!v) return fn_seterr(eb, FN_EPARSE, "%s:%zu: \"%s\": KEY=VALUE expected", file, line, tok[i]);
            *v++ = '\0';
            if (!strcmp(tok[i], "traffic")) {
                if ((traffic = pct_buckets(v)) < 0)
                    return fn_seterr(eb, FN_EPARSE, "%s:%zu: traffic: \"%s\" is not a percentage 0..100", file,
                                     line, v);
            } else if (!strcmp(tok[i], "salt")) {
                if (!name_ok(v))
                    return fn_seterr(eb, FN_EPARSE, "%s:%zu: salt: 1..64 [A-Za-z0-9_.-] expected", file, line);
                snprintf(e->salt, sizeof e->salt, "%s", v);
            } else if (!strcmp(tok[i], "unit")) {
                if (!strcmp(v, "any")) e->unit = COORD_EXP_UNIT_ANY;
                else if (!strcmp(v, "user")) e->unit = COORD_EXP_UNIT_USER;
                else if (!strcmp(v, "session")) e->unit = COORD_EXP_UNIT_SESSION;
                else return fn_seterr(eb, FN_EPARSE, "%s:%zu: unit: \"%s\" is not any, user or session", file, line, v);
            } else {
                return fn_seterr(eb, FN_EPARSE, "%s:%zu: experiment: unknown key \"%s\" (traffic, salt, unit)", file,
                                 line, tok[i]);
            }
        }
        if (traffic < 0) return fn_seterr(eb, FN_EPARSE, "%s:%zu: experiment %s: traffic= missing", file, line, e->name);
        /* without its own salt two experiments would split users alike */
        if (!e->salt[0]) return fn_seterr(eb, FN_EPARSE, "%s:%zu: experiment %s: salt= missing", file, line, e->name);
        if (e->lo + (uint32_t)traffic > COORD_EXP_BUCKETS)
            return fn_seterr(eb, FN_EPARSE, "%s:%zu: experiment %s: the experiments' traffic passes 100%%", file,
                             line, e->name);
        e->hi = e->lo + (uint32_t)traffic;
        e->arm0 = x->narms;
        x->nexp++;
        return 0;
    }
    if (!x->nexp) return fn_seterr(eb, FN_EPARSE, "%s:%zu: arm %s before any experiment", file, line, tok[1]);
    coord_experiment *e = &x->exp[x->nexp - 1];
    if (x->narms == COORD_EXP_MAX_ARMS)
        return fn_seterr(eb, FN_EPARSE, "%s:%zu: more than %d arms (all experiments together)", file, line,
                         COORD_EXP_MAX_ARMS);
    for (size_t i = e->arm0; i < x->narms; i++)
        if (!strcmp(x->arms[i].name, tok[1]))
            return fn_seterr(eb, FN_EPARSE, "%s:%zu: arm %s twice in experiment %s", file, line, tok[1], e->name);
    coord_exp_arm *a = &x->arms[x->narms];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", tok[1]);
    a->lo = e->narms ? x->arms[x->narms - 1].hi : 0;
    long share = -1;
    int ranker = 0;
    for (size_t i = 2; i < nt; i++) {
        char *v = strchr(tok[i], '=');
        if (!v) return fn_seterr(eb, FN_EPARSE, "%s:%zu: \"%s\": KEY=VALUE expected", file, line, tok[i]);
        *v++ = '\0';
        if (!strcmp(tok[i], "share")) {
            if ((share = pct_buckets(v)) < 0)
                return fn_seterr(eb, FN_EPARSE, "%s:%zu: share: \"%s\" is not a percentage 0..100", file, line, v);
        } else if (!strcmp(tok[i], "model")) {
            if (ranker++ || path_or_none(v, a->model_path[0], sizeof a->model_path[0]))
                return fn_seterr(eb, FN_EPARSE, "%s:%zu: arm %s: one model=FILE|none or interleave=A,B", file, line,
                                 a->name);
        } else if (!strcmp(tok[i], "interleave")) {
            char *comma = strchr(v, ',');
            if (comma) *comma = '\0';
            if (ranker++ || !comma || path_or_none(v, a->model_path[0], sizeof a->model_path[0]) ||
                path_or_none(comma + 1, a->model_path[1], sizeof a->model_path[1]))
                return fn_seterr(eb, FN_EPARSE, "%s:%zu: arm %s: interleave=A,B (each a model FILE or none)", file,
                                 line, a->name);
            if (!strcmp(a->model_path[0], a->model_path[1]))
                return fn_seterr(eb, FN_EPARSE, "%s:%zu: arm %s: interleaves a ranker with itself", file, line,
                                 a->name);
            a->interleave = 1;
        } else {
            return fn_seterr(eb, FN_EPARSE, "%s:%zu: arm: unknown key \"%s\" (share, model, interleave)", file, line,
                             tok[i]);
        }
    }
    if (share < 0) return fn_seterr(eb, FN_EPARSE, "%s:%zu: arm %s: share= missing", file, line, a->name);
    if (!ranker) return fn_seterr(eb, FN_EPARSE, "%s:%zu: arm %s: model= or interleave= missing", file, line, a->name);
    if (a->lo + (uint32_t)share > COORD_EXP_BUCKETS)
        return fn_seterr(eb, FN_EPARSE, "%s:%zu: experiment %s: the arms' shares pass 100", file, line, e->name);
    a->hi = a->lo + (uint32_t)share;
    x->narms++;
    e->narms++;
    return 0;
}

int coord_exps_parse(const char *text, const char *file, coord_exps *out, fn_errbuf *eb)
{
    memset(out, 0, sizeof *out);
    size_t line = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        line++;
        char buf[8192 + 256];
        if (len >= sizeof buf) return fn_seterr(eb, FN_EPARSE, "%s:%zu: line too long", file, line);
        memcpy(buf, p, len);
        buf[len] = '\0';
        char *hash = strchr(buf, '#');
        if (hash) *hash = '\0';
        int rc = parse_line(out, buf, file, line, eb);
        if (rc) return rc;
        p += len + (nl != NULL);
    }
    int rc = end_experiment(out, file, line, eb);
    if (rc) return rc;
    if (!out->nexp) return fn_seterr(eb, FN_EPARSE, "%s: no experiment", file);
    return 0;
}

int coord_exps_load(const char *path, const char *const *names, size_t ncols, coord_exps **out, fn_errbuf *eb)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        return fn_seterr(eb, -e, "experiments %s: %s", path, strerror(e));
    }
    char *text = malloc(1 << 20);
    size_t n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
    int big = text && n == (1 << 20) - 1;
    fclose(f);
    if (!text) return fn_seterr(eb, -ENOMEM, "out of memory");
    text[n] = '\0';
    if (big) {
        free(text);
        return fn_seterr(eb, FN_EPARSE, "experiments %s: over 1 MiB", path);
    }
    coord_exps *x = calloc(1, sizeof *x);
    if (!x) {
        free(text);
        return fn_seterr(eb, -ENOMEM, "out of memory");
    }
    int rc = coord_exps_parse(text, path, x, eb);
    free(text);
    /* every arm's models now: a bad one stops the coordinator at start,
     * not a request later; a file named twice is loaded once */
    for (size_t i = 0; i < x->narms && !rc; i++)
        for (int k = 0; k < 2 && !rc; k++) {
            coord_exp_arm *a = &x->arms[i];
            if (!a->model_path[k][0]) continue;
            for (size_t j = 0; j <= i && !a->model[k]; j++)
                for (int m = 0; m < 2 && !a->model[k]; m++)
                    if ((j < i || m < k) && x->arms[j].model[m] && !strcmp(x->arms[j].model_path[m], a->model_path[k]))
                        a->model[k] = rank_ranker_ref(x->arms[j].model[m]);
            if (a->model[k]) continue;
            fn_errbuf meb = {{0}};
            if ((rc = rank_ranker_load(a->model_path[k], names, NULL, ncols, &a->model[k], &meb)))
                fn_seterr(eb, rc, "experiments %s: arm %s: %s", path, a->name, meb.msg);
        }
    if (rc) {
        coord_exps_free(x);
        return rc;
    }
    *out = x;
    return 0;
}

void coord_exps_free(coord_exps *x)
{
    if (!x) return;
    for (size_t i = 0; i < x->narms; i++) {
        rank_ranker_unref(x->arms[i].model[0]);
        rank_ranker_unref(x->arms[i].model[1]);
    }
    free(x);
}

/* ---- assignment ---- */

const char *coord_exp_unit_id(const coord_experiment *e, const char *user, const char *session)
{
    int hu = user && *user, hs = session && *session;
    switch (e->unit) {
    case COORD_EXP_UNIT_USER: return hu ? user : NULL;
    case COORD_EXP_UNIT_SESSION: return hs ? session : NULL;
    default: return hu ? user : hs ? session : NULL;
    }
}

/* xxh64 of "SALT\nID[\nEXTRA]": the same on every machine and build */
static uint64_t salted(const char *salt, const char *id, const char *extra)
{
    XXH64_state_t *st = XXH64_createState();
    if (!st) return 0;
    XXH64_reset(st, 0);
    XXH64_update(st, salt, strlen(salt));
    XXH64_update(st, "\n", 1);
    XXH64_update(st, id, strlen(id));
    if (extra) {
        XXH64_update(st, "\n", 1);
        XXH64_update(st, extra, strlen(extra));
    }
    uint64_t h = XXH64_digest(st);
    XXH64_freeState(st);
    return h;
}

uint32_t coord_exp_bucket(const char *salt, const char *id)
{
    return (uint32_t)(salted(salt ? salt : TRAFFIC_SALT, id, NULL) % COORD_EXP_BUCKETS);
}

void coord_exp_assign(const coord_exps *x, const char *user, const char *session, const char *query,
                      coord_exp_pick *pick)
{
    memset(pick, 0, sizeof *pick);
    if (!x) return;
    /* the traffic split needs one id for all experiments: the user's if any */
    const char *any = user && *user ? user : session && *session ? session : NULL;
    if (!any) return;
    uint32_t tb = coord_exp_bucket(NULL, any);
    for (size_t i = 0; i < x->nexp; i++) {
        const coord_experiment *e = &x->exp[i];
        if (tb < e->lo || tb >= e->hi) continue;
        const char *id = coord_exp_unit_id(e, user, session);
        if (!id) return;
        uint32_t b = coord_exp_bucket(e->salt, id);
        for (size_t j = e->arm0; j < e->arm0 + e->narms; j++)
            if (b >= x->arms[j].lo && b < x->arms[j].hi) {
                pick->exp = e;
                pick->arm = &x->arms[j];
                pick->seed = salted(e->salt, id, query ? query : "");
                return;
            }
        return;
    }
}

/* ---- team-draft interleaving ---- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

long coord_team_draft(fn_arena *a, const uint32_t *ra, size_t na, const uint32_t *rb, size_t nb,
                      uint32_t max_item, uint64_t seed, uint32_t *out, uint8_t *team)
{
    uint8_t *seen = fn_arena_alloc(a, max_item ? max_item : 1);
    if (!seen) return -ENOMEM;
    memset(seen, 0, max_item ? max_item : 1);
    size_t ia = 0, ib = 0, ca = 0, cb = 0, n = 0;
    uint64_t st = seed;
    for (;;) {
        while (ia < na && seen[ra[ia]]) ia++;
        while (ib < nb && seen[rb[ib]]) ib++;
        if (ia == na || ib == nb) break;
        if (ra[ia] == rb[ib]) {
            seen[ra[ia]] = 1;
            out[n] = ra[ia];
            team[n++] = COORD_TEAM_AB;
            continue;
        }
        int take_a = ca < cb || (ca == cb && (splitmix64(&st) >> 63));
        uint32_t it = take_a ? ra[ia] : rb[ib];
        seen[it] = 1;
        out[n] = it;
        team[n++] = take_a ? COORD_TEAM_A : COORD_TEAM_B;
        if (take_a) ca++;
        else cb++;
    }
    /* one list ran out: the other's rest, still credited to it (a page is
     * not cut short because one ranker found fewer documents) */
    for (; ia < na; ia++)
        if (!seen[ra[ia]]) {
            seen[ra[ia]] = 1;
            out[n] = ra[ia];
            team[n++] = COORD_TEAM_A;
        }
    for (; ib < nb; ib++)
        if (!seen[rb[ib]]) {
            seen[rb[ib]] = 1;
            out[n] = rb[ib];
            team[n++] = COORD_TEAM_B;
        }
    return (long)n;
}

const char *coord_team_name(int team)
{
    switch (team) {
    case COORD_TEAM_A: return "A";
    case COORD_TEAM_B: return "B";
    case COORD_TEAM_AB: return "AB";
    default: return "";
    }
}

int coord_exp_stage2(fn_arena *a, const coord_exp_pick *pick, const Funnel__V1__ShardHit *const *hits,
                     size_t got, size_t window, const double *prf, Funnel__V1__IntentScore *const *intent,
                     size_t nintent, int want_rows, coord_stage2_out *out, uint8_t **team)
{
    *team = NULL;
    const coord_exp_arm *arm = pick->arm;
    if (!arm->interleave)
        return coord_stage2(a, hits, got, window, prf, intent, nintent, arm->model[0], want_rows, out);
    coord_stage2_out s[2];
    for (int k = 0; k < 2; k++) {
        int rc = coord_stage2(a, hits, got, window, prf, intent, nintent, arm->model[k], want_rows, &s[k]);
        if (rc) return rc;
    }
    memset(out, 0, sizeof *out);
    size_t cap = got ? got : 1;
    out->order = fn_arena_alloc(a, cap * sizeof *out->order);
    out->score = fn_arena_alloc(a, cap * sizeof *out->score);
    uint8_t *t = fn_arena_alloc(a, cap);
    /* each ranker's score of an entry, by entry (its lists are by position) */
    double *by_e[2] = { fn_arena_alloc(a, cap * sizeof(double)), fn_arena_alloc(a, cap * sizeof(double)) };
    if (a->oom) return -ENOMEM;
    for (int k = 0; k < 2; k++)
        for (size_t p = 0; p < got; p++) by_e[k][s[k].order[p]] = s[k].score[p];
    long n = coord_team_draft(a, s[0].order, got, s[1].order, got, (uint32_t)got, pick->seed, out->order, t);
    if (n < 0) return (int)n;
    for (long p = 0; p < n; p++) out->score[p] = by_e[t[p] == COORD_TEAM_B ? 1 : 0][out->order[p]];
    int r = s[0].rows ? 0 : 1;
    out->rows = s[r].rows;
    out->ncols = s[r].ncols;
    out->window = s[0].window > s[1].window ? s[0].window : s[1].window;
    out->ran = s[0].ran || s[1].ran;
    out->acct = s[0].acct;
    out->acct.time_us += s[1].acct.time_us;
    out->acct.count_in = out->window;
    out->acct.count_out = out->window;
    out->acct.ran = out->ran;
    snprintf(out->acct.note, sizeof out->acct.note, "team-draft interleaving: A %s, B %s",
             arm->model[0] ? rank_ranker_describe(arm->model[0]) : "none",
             arm->model[1] ? rank_ranker_describe(arm->model[1]) : "none");
    *team = t;
    return 0;
}
