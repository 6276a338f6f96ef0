/* ops_experiment.c - `funnel experiment report` (ops_experiment.h). */
#include "ops.h"
#include "ops_experiment.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- statistics ---- */

void ops_wilson(uint64_t k, uint64_t n, double z, double *lo, double *hi)
{
    if (!n) {
        *lo = 0;
        *hi = 1;
        return;
    }
    double nn = (double)n, p = (double)k / nn, z2 = z * z;
    double den = 1 + z2 / nn;
    double mid = (p + z2 / (2 * nn)) / den;
    double half = z * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / den;
    *lo = mid - half < 0 ? 0 : mid - half;
    *hi = mid + half > 1 ? 1 : mid + half;
}

int ops_interleave_credit(const char *team, const uint8_t *clicked, size_t n)
{
    size_t a = 0, b = 0;
    for (size_t i = 0; i < n; i++) {
        if (!clicked[i]) continue;
        if (team[i] == 'A') a++;
        else if (team[i] == 'B') b++;
    }
    return a > b ? 1 : b > a ? -1 : 0;
}

const char *ops_interleave_verdict(uint64_t wins_a, uint64_t wins_b, double z)
{
    double lo, hi;
    ops_wilson(wins_a, wins_a + wins_b, z, &lo, &hi);
    if (wins_a + wins_b && lo > 0.5) return "A better";
    if (wins_a + wins_b && hi < 0.5) return "B better";
    return "no significant difference";
}

/* ---- the logs ---- */

typedef struct imp {
    char *rid;
    uint32_t group;
    uint32_t first_pos;
    size_t hit0, nhits;          /* into the hit arrays */
} imp;

typedef struct log_state {
    imp *imps;
    size_t nimps, cap;
    char **hid;                  /* per hit: id, team ('A', 'B', 0), clicked, best dwell (NaN: none known) */
    char *team;
    uint8_t *clicked;
    double *dwell;
    size_t nhits, hcap;
    size_t *tab;                 /* request id -> imps index + 1 (open addressing) */
    size_t tcap;
    ops_exp_arm *groups;
    size_t ngroups, gcap;
    uint64_t clicks;
} log_state;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static size_t *slot(log_state *st, const char *rid)
{
    size_t m = st->tcap - 1, i = (size_t)fnv1a(rid) & m;
    while (st->tab[i] && strcmp(st->imps[st->tab[i] - 1].rid, rid) != 0) i = (i + 1) & m;
    return &st->tab[i];
}

static int rehash(log_state *st)
{
    size_t ncap = st->tcap ? st->tcap * 2 : 1024;
    size_t *nt = calloc(ncap, sizeof *nt);
    if (!nt) return -ENOMEM;
    free(st->tab);
    st->tab = nt;
    st->tcap = ncap;
    for (size_t i = 0; i < st->nimps; i++) *slot(st, st->imps[i].rid) = i + 1;
    return 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 256;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * elem);
    if (!q) return -ENOMEM;
    *p = q;
    *cap = nc;
    return 0;
}

static int has_ctrl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

static long group_of(log_state *st, const char *exp, const char *arm)
{
    for (size_t i = 0; i < st->ngroups; i++)
        if (!strcmp(st->groups[i].experiment, exp) && !strcmp(st->groups[i].arm, arm)) return (long)i;
    size_t hc = st->gcap;
    if (grow((void **)&st->groups, &hc, st->ngroups + 1, sizeof *st->groups)) return -ENOMEM;
    st->gcap = hc;
    ops_exp_arm *g = &st->groups[st->ngroups];
    memset(g, 0, sizeof *g);
    g->experiment = strdup(exp);
    g->arm = strdup(arm);
    if (!g->experiment || !g->arm) {
        free(g->experiment);
        free(g->arm);
        return -ENOMEM;
    }
    return (long)st->ngroups++;
}

#define BAD(...) fn_seterr(eb, FN_EPARSE, __VA_ARGS__)

/* an optional string member: 0 (absent or null: *v = ""), 1 bad type */
static int opt_str(json_t *o, const char *key, const char **v)
{
    json_t *j = json_object_get(o, key);
    *v = "";
    if (!j || json_is_null(j)) return 0;
    if (!json_is_string(j)) return 1;
    *v = json_string_value(j);
    return 0;
}

static int imp_line(log_state *st, json_t *o, const char *path, size_t ln, fn_errbuf *eb)
{
    const char *rid, *exp, *arm;
    json_t *jr = json_object_get(o, "request_id");
    if (!json_is_string(jr) || !*(rid = json_string_value(jr)))
        return BAD("%s:%zu: \"request_id\" missing or not a non-empty string", path, ln);
    if (has_ctrl(rid)) return BAD("%s:%zu: \"request_id\" has a control character", path, ln);
    if (opt_str(o, "experiment", &exp) || opt_str(o, "arm", &arm))
        return BAD("%s:%zu: \"experiment\" and \"arm\" must be strings", path, ln);
    if (!*exp != !*arm) return BAD("%s:%zu: \"experiment\" and \"arm\" come together", path, ln);
    json_t *hits = json_object_get(o, "hits");
    if (!json_is_array(hits)) return BAD("%s:%zu: \"hits\" missing or not an array", path, ln);
    if (st->nimps * 2 >= st->tcap && rehash(st)) return -ENOMEM;
    size_t *sl = slot(st, rid);
    if (*sl) return BAD("%s:%zu: request_id \"%s\" repeats an earlier impression", path, ln, rid);
    long g = group_of(st, exp, arm);
    if (g < 0) return (int)g;
    size_t n = json_array_size(hits);
    size_t hc = st->hcap;
    if (grow((void **)&st->hid, &hc, st->nhits + n, sizeof *st->hid)) return -ENOMEM;
    hc = st->hcap;
    if (grow((void **)&st->team, &hc, st->nhits + n, 1)) return -ENOMEM;
    hc = st->hcap;
    if (grow((void **)&st->clicked, &hc, st->nhits + n, 1)) return -ENOMEM;
    hc = st->hcap;
    if (grow((void **)&st->dwell, &hc, st->nhits + n, sizeof *st->dwell)) return -ENOMEM;
    st->hcap = hc;
    if (grow((void **)&st->imps, &st->cap, st->nimps + 1, sizeof *st->imps)) return -ENOMEM;
    imp *im = &st->imps[st->nimps];
    im->hit0 = st->nhits;
    im->nhits = 0;
    im->group = (uint32_t)g;
    im->first_pos = 1;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        json_t *h = json_array_get(hits, i), *jid = json_object_get(h, "id"), *jp = json_object_get(h, "position");
        const char *team = "";
        if (!json_is_object(h)) rc = BAD("%s:%zu: hits[%zu]: not an object", path, ln, i);
        else if (!json_is_string(jid) || !*json_string_value(jid))
            rc = BAD("%s:%zu: hits[%zu]: \"id\" missing or not a non-empty string", path, ln, i);
        else if (!json_is_integer(jp) || json_integer_value(jp) < 1 || json_integer_value(jp) > 1000000)
            rc = BAD("%s:%zu: hits[%zu]: \"position\" missing or not an integer 1..1000000", path, ln, i);
        else if (i && json_integer_value(jp) != (json_int_t)im->first_pos + (json_int_t)i)
            rc = BAD("%s:%zu: hits[%zu]: position %lld after %lld (positions must be contiguous, top first)", path,
                     ln, i, (long long)json_integer_value(jp), (long long)(im->first_pos + i - 1));
        else if (opt_str(h, "team", &team) || (*team && strcmp(team, "A") && strcmp(team, "B") && strcmp(team, "AB")))
            rc = BAD("%s:%zu: hits[%zu]: \"team\" is not \"A\", \"B\" or \"AB\"", path, ln, i);
        if (rc) break;
        if (!i) im->first_pos = (uint32_t)json_integer_value(jp);
        const char *id = json_string_value(jid);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(st->hid[im->hit0 + j], id)) {
                rc = BAD("%s:%zu: hits[%zu]: id \"%s\" twice on the page", path, ln, i, id);
                break;
            }
        if (rc) break;
        size_t k = im->hit0 + i;
        if (!(st->hid[k] = strdup(id))) rc = -ENOMEM;
        else {
            st->team[k] = strcmp(team, "AB") ? *team : 'N';
            st->clicked[k] = 0;
            st->dwell[k] = NAN;
            im->nhits++;
            st->nhits++;
        }
        if (*team) st->groups[g].interleave = 1;
    }
    if (!rc && !(im->rid = strdup(rid))) rc = -ENOMEM;
    if (rc) {
        for (size_t j = 0; j < im->nhits; j++) free(st->hid[im->hit0 + j]);
        st->nhits = im->hit0;
        return rc;
    }
    st->nimps++;
    *slot(st, rid) = st->nimps;
    return 0;
}

static int click_line(log_state *st, json_t *o, const char *path, size_t ln, fn_errbuf *eb)
{
    json_t *jr = json_object_get(o, "request_id"), *jid = json_object_get(o, "id"),
           *jp = json_object_get(o, "position"), *jd = json_object_get(o, "dwell");
    if (!json_is_string(jr) || !*json_string_value(jr))
        return BAD("%s:%zu: \"request_id\" missing or not a non-empty string", path, ln);
    if (!json_is_string(jid) || !*json_string_value(jid))
        return BAD("%s:%zu: \"id\" missing or not a non-empty string", path, ln);
    if (!json_is_integer(jp)) return BAD("%s:%zu: \"position\" missing or not an integer", path, ln);
    double dwell = NAN;
    if (jd && !json_is_null(jd)) {
        if (!json_is_number(jd)) return BAD("%s:%zu: \"dwell\" is not a number", path, ln);
        if ((dwell = json_number_value(jd)) < 0) return BAD("%s:%zu: \"dwell\" is negative (%g)", path, ln, dwell);
    }
    const char *rid = json_string_value(jr);
    size_t ix = st->tcap ? *slot(st, rid) : 0;
    if (!ix) return BAD("%s:%zu: click for an unknown request_id \"%s\" (no such impression)", path, ln, rid);
    imp *im = &st->imps[ix - 1];
    json_int_t p = json_integer_value(jp);
    if (p < im->first_pos || p >= (json_int_t)(im->first_pos + im->nhits))
        return BAD("%s:%zu: request \"%s\" showed positions %u-%zu, not %lld", path, ln, rid, im->first_pos,
                   im->first_pos + im->nhits - 1, (long long)p);
    size_t k = im->hit0 + (size_t)(p - im->first_pos);
    if (strcmp(st->hid[k], json_string_value(jid)))
        return BAD("%s:%zu: request \"%s\" showed \"%s\" at position %lld, not \"%s\"", path, ln, rid, st->hid[k],
                   (long long)p, json_string_value(jid));
    /* two clicks on one hit are one click with the longer dwell */
    if (!st->clicked[k]) st->clicks++;
    st->clicked[k] = 1;
    if (!isnan(dwell) && (isnan(st->dwell[k]) || dwell > st->dwell[k])) st->dwell[k] = dwell;
    return 0;
}

static int read_jsonl(log_state *st, const char *path, int clicks, fn_errbuf *eb)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        return fn_seterr(eb, -e, "%s: %s", path, strerror(e));
    }
    char *line = NULL;
    size_t cap = 0, ln = 0;
    ssize_t len;
    int rc = 0;
    while (!rc && (len = getline(&line, &cap, f)) >= 0) {
        ln++;
        size_t i = 0;
        while (i < (size_t)len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\n' || line[i] == '\r')) i++;
        if (i == (size_t)len) continue;   /* blank */
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &je);
        if (!o) rc = BAD("%s:%zu: invalid JSON: %s (column %d)", path, ln, je.text, je.column);
        else if (!json_is_object(o)) rc = BAD("%s:%zu: not a JSON object", path, ln);
        else rc = clicks ? click_line(st, o, path, ln, eb) : imp_line(st, o, path, ln, eb);
        json_decref(o);
    }
    if (!rc && ferror(f)) rc = fn_seterr(eb, -EIO, "%s: read error", path);
    free(line);
    fclose(f);
    if (rc == -ENOMEM) fn_seterr(eb, rc, "out of memory");
    return rc;
}

static int cmp_arm(const void *a, const void *b)
{
    const ops_exp_arm *x = a, *y = b;
    int c = strcmp(x->experiment, y->experiment);
    return c ? c : strcmp(x->arm, y->arm);
}

static void state_free(log_state *st)
{
    for (size_t i = 0; i < st->nimps; i++) free(st->imps[i].rid);
    for (size_t i = 0; i < st->nhits; i++) free(st->hid[i]);
    free(st->imps);
    free(st->hid);
    free(st->team);
    free(st->clicked);
    free(st->dwell);
    free(st->tab);
}

int ops_experiment_report(const char *const *imps, size_t nimps, const char *const *clicks, size_t nclicks,
                          double min_dwell, ops_exp_report *out, fn_errbuf *eb)
{
    memset(out, 0, sizeof *out);
    log_state st;
    memset(&st, 0, sizeof st);
    int rc = 0;
    for (size_t i = 0; i < nimps && !rc; i++) rc = read_jsonl(&st, imps[i], 0, eb);
    for (size_t i = 0; i < nclicks && !rc; i++) rc = read_jsonl(&st, clicks[i], 1, eb);
    for (size_t i = 0; i < st.nimps && !rc; i++) {
        const imp *im = &st.imps[i];
        ops_exp_arm *g = &st.groups[im->group];
        g->impressions++;
        int any = 0, sat = 0;
        for (size_t j = im->hit0; j < im->hit0 + im->nhits; j++) {
            if (!st.clicked[j]) continue;
            g->clicks++;
            g->neutral_clicks += st.team[j] == 'N';
            any = 1;
            /* a click without a dwell is satisfied only when any click is */
            if (min_dwell <= 0 || (!isnan(st.dwell[j]) && st.dwell[j] >= min_dwell)) sat = 1;
        }
        g->clicked += (uint64_t)any;
        g->successful += (uint64_t)sat;
        if (g->interleave) {
            int w = ops_interleave_credit(st.team + im->hit0, st.clicked + im->hit0, im->nhits);
            if (w > 0) g->wins_a++;
            else if (w < 0) g->wins_b++;
            else g->ties++;
        }
    }
    out->impressions = st.nimps;
    out->clicks = st.clicks;
    out->arms = st.groups;
    out->narms = st.ngroups;
    st.groups = NULL;
    state_free(&st);
    if (rc) {
        ops_exp_report_free(out);
        return rc;
    }
    qsort(out->arms, out->narms, sizeof *out->arms, cmp_arm);
    return 0;
}

void ops_exp_report_free(ops_exp_report *r)
{
    for (size_t i = 0; i < r->narms; i++) {
        free(r->arms[i].experiment);
        free(r->arms[i].arm);
    }
    free(r->arms);
    memset(r, 0, sizeof *r);
}

/* ---- the command ---- */

static const char experiment_usage[] =
    "usage: funnel experiment report --impressions I [--impressions I2 ...] --clicks C [--clicks C2 ...]\n"
    "                                [--min-dwell 10] [--json]\n"
    "\n"
    "Per experiment arm of the coordinator's impression log (its \"experiment\" and\n"
    "\"arm\"; impressions of no experiment are the arm \"-/-\"), with the clicks\n"
    "joined by request id (docs/engagement.md \"Online experiments\"):\n"
    "  impressions; clicks (distinct clicked hits) and clicks an impression;\n"
    "  CTR = share of impressions with a click, with its 95% Wilson interval;\n"
    "  successful sessions = share of impressions (one session each) with a click\n"
    "  of dwell >= --min-dwell seconds (default 10), with its interval.\n"
    "An interleaving arm (hits with a \"team\"), per impression: A wins when more of\n"
    "team A's hits were clicked than of team B's, B wins the other way, else a tie\n"
    "(no click included; a click on a neutral hit, team \"AB\", counts for neither:\n"
    "both rankers would have put it there); A's win rate over the non-tied impressions, its interval,\n"
    "and the verdict: \"A better\" / \"B better\" when the interval lies above /\n"
    "below 0.5, else \"no significant difference\".\n"
    "--json prints one JSON object instead.\n"
    "Exit status: 0 ok, 1 unreadable or malformed input (FILE:LINE: reason), 2 usage error.\n";

static json_t *ci_json(double lo, double hi)
{
    json_t *a = json_array();
    json_array_append_new(a, json_real(lo));
    json_array_append_new(a, json_real(hi));
    return a;
}

static int report_cmd(int argc, char **argv)
{
    static const struct option lo[] = {{"impressions", required_argument, 0, 'i'},
                                       {"clicks", required_argument, 0, 'c'},
                                       {"min-dwell", required_argument, 0, 'd'},
                                       {"json", no_argument, 0, 'j'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    const char *imps[64], *clicks[64];
    size_t ni = 0, nc = 0;
    double min_dwell = 10;
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'i':
            if (ni == 64) goto usage;
            imps[ni++] = optarg;
            break;
        case 'c':
            if (nc == 64) goto usage;
            clicks[nc++] = optarg;
            break;
        case 'd':
            min_dwell = strtod(optarg, &end);
            if (end == optarg || *end || !(min_dwell >= 0 && min_dwell < 1e9)) {
                fprintf(stderr, "funnel experiment report: --min-dwell: \"%s\" is not a number of seconds >= 0\n",
                        optarg);
                return OPS_EXIT_USAGE;
            }
            break;
        case 'j': json = 1; break;
        case 'h': fputs(experiment_usage, stdout); return OPS_EXIT_OK;
        default: goto usage;
        }
    }
    if (!ni || !nc || optind != argc) {
        fprintf(stderr, "funnel experiment report: --impressions and --clicks are required\n");
        goto usage;
    }
    fn_errbuf eb = {{0}};
    ops_exp_report r;
    int rc = ops_experiment_report(imps, ni, clicks, nc, min_dwell, &r, &eb);
    if (rc) {
        fprintf(stderr, "funnel experiment report: error: %s\n", fn_errmsg(&eb, rc));
        return OPS_EXIT_FAIL;
    }
    json_t *jo = json ? json_object() : NULL, *ja = json ? json_array() : NULL;
    if (!json)
        printf("experiment report: %llu impressions, %llu clicks, %zu arms; successful: a click of dwell >= %g s; "
               "95%% Wilson intervals\n",
               (unsigned long long)r.impressions, (unsigned long long)r.clicks, r.narms, min_dwell);
    for (size_t i = 0; i < r.narms; i++) {
        const ops_exp_arm *a = &r.arms[i];
        double clo, chi, slo, shi, wlo, whi;
        ops_wilson(a->clicked, a->impressions, OPS_EXP_Z95, &clo, &chi);
        ops_wilson(a->successful, a->impressions, OPS_EXP_Z95, &slo, &shi);
        ops_wilson(a->wins_a, a->wins_a + a->wins_b, OPS_EXP_Z95, &wlo, &whi);
        double n = a->impressions ? (double)a->impressions : 1;
        const char *e = *a->experiment ? a->experiment : "-", *m = *a->arm ? a->arm : "-";
        const char *verdict = ops_interleave_verdict(a->wins_a, a->wins_b, OPS_EXP_Z95);
        if (json) {
            json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:f,s:f,s:o,s:f,s:o}", "experiment", a->experiment, "arm",
                                  a->arm, "impressions", (json_int_t)a->impressions, "clicks", (json_int_t)a->clicks,
                                  "clicks_per_impression", a->clicks / n, "ctr", a->clicked / n, "ctr_ci",
                                  ci_json(clo, chi), "successful", a->successful / n, "successful_ci",
                                  ci_json(slo, shi));
            if (o && a->interleave) {
                uint64_t nt = a->wins_a + a->wins_b;
                json_object_set_new(o, "wins_a", json_integer((json_int_t)a->wins_a));
                json_object_set_new(o, "wins_b", json_integer((json_int_t)a->wins_b));
                json_object_set_new(o, "ties", json_integer((json_int_t)a->ties));
                json_object_set_new(o, "neutral_clicks", json_integer((json_int_t)a->neutral_clicks));
                json_object_set_new(o, "win_rate_a", nt ? json_real((double)a->wins_a / (double)nt) : json_null());
                json_object_set_new(o, "win_rate_a_ci", ci_json(wlo, whi));
                json_object_set_new(o, "verdict", json_string(verdict));
            }
            json_array_append_new(ja, o);
            continue;
        }
        printf("arm %s/%s: %llu impressions, %llu clicks (%.3f an impression); CTR %.4f [%.4f, %.4f]; "
               "successful sessions %.4f [%.4f, %.4f]\n",
               e, m, (unsigned long long)a->impressions, (unsigned long long)a->clicks, a->clicks / n,
               a->clicked / n, clo, chi, a->successful / n, slo, shi);
        if (a->interleave) {
            uint64_t nt = a->wins_a + a->wins_b;
            printf("interleaving %s/%s: A wins %llu, B wins %llu, ties %llu (of %llu impressions; "
                   "%llu clicks on neutral hits); A's win rate %.4f [%.4f, %.4f] over %llu non-tied; verdict: %s\n",
                   e, m, (unsigned long long)a->wins_a, (unsigned long long)a->wins_b,
                   (unsigned long long)a->ties, (unsigned long long)a->impressions,
                   (unsigned long long)a->neutral_clicks,
                   nt ? (double)a->wins_a / (double)nt : 0.5, wlo, whi, (unsigned long long)nt, verdict);
        }
    }
    if (json) {
        json_object_set_new(jo, "impressions", json_integer((json_int_t)r.impressions));
        json_object_set_new(jo, "clicks", json_integer((json_int_t)r.clicks));
        json_object_set_new(jo, "min_dwell", json_real(min_dwell));
        json_object_set_new(jo, "arms", ja);
        json_dumpf(jo, stdout, JSON_INDENT(1));
        putchar('\n');
        json_decref(jo);
    }
    ops_exp_report_free(&r);
    return OPS_EXIT_OK;
usage:
    fputs(experiment_usage, stderr);
    return OPS_EXIT_USAGE;
}

int ops_cmd_experiment(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "report")) return report_cmd(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(experiment_usage, stdout);
        return OPS_EXIT_OK;
    }
    fputs(experiment_usage, stderr);
    return OPS_EXIT_USAGE;
}
