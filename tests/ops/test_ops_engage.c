/* test_ops_engage.c - ops/ops_engage.c: the simulated users (determinism,
 * cascade stops, clicks by grade, position decay, dwell), `funnel clicks
 * simulate`, the training data from impressions and clicks (pointwise labels,
 * pairwise preferences, header, qid numbering, latest vectors) and every
 * FILE:LINE error of impression and click lines. */
#include <criterion/criterion.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops.h"
#include "testutil.h"

static char tmp[PATH_MAX];

static void setup(void)
{
    tu_mkdtemp(tmp, sizeof tmp, "/tmp/test_ops_engage.XXXXXX");
}

static void teardown(void)
{
    cr_assert_eq(tu_rmtree(tmp), 0);
}

TestSuite(engage, .init = setup, .fini = teardown);

/* tmp/name with content (unless NULL); a static path (four slots in turn). */
static const char *file(const char *name, const char *content)
{
    static char paths[4][PATH_MAX + 64];
    static int slot;
    char *p = paths[slot++ % 4];
    snprintf(p, PATH_MAX + 64, "%s/%s", tmp, name);
    if (content) tu_write_file(p, content);
    return p;
}

static char *path_of(const char *name)
{
    char *p = malloc(PATH_MAX + 64);
    snprintf(p, PATH_MAX + 64, "%s/%s", tmp, name);
    return p;
}

/* ====================================================================
 * the user models
 * ==================================================================== */

static ops_sim_params params(int model)
{
    ops_sim_params p;
    ops_sim_defaults(&p);
    p.model = model;
    return p;
}

Test(engage, defaults_are_the_documented_ones)
{
    ops_sim_params p = params(OPS_SIM_CASCADE);
    const double click[5] = {0.05, 0.3, 0.5, 0.7, 0.95}, stop[5] = {0.2, 0.3, 0.5, 0.7, 0.9},
                 dwell[5] = {4, 8, 15, 25, 40};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(p.click[i], click[i]);
        cr_assert_eq(p.stop[i], stop[i]);
        cr_assert_eq(p.dwell_median[i], dwell[i]);
    }
    cr_assert_eq(p.eta, 1.0);
    cr_assert_eq(p.dwell_sigma, 0.8);
    ops_traindata_opts o;
    ops_traindata_defaults(&o);
    cr_assert_eq(o.min_dwell, 10.0);
    cr_assert_eq(o.propensity, OPS_TD_PROP_DATA);
    cr_assert_eq(o.clip, 0.1);
    cr_assert_eq(o.smoothing, 1.0);
    cr_assert(o.cuts[0] == 0.05 && o.cuts[1] == 0.2 && o.cuts[2] == 0.45 && o.cuts[3] == 0.75);
}

Test(engage, grade_levels)
{
    /* cranfield: grades 1..4 are the levels */
    for (long g = 0; g <= 4; g++) cr_assert_eq(ops_sim_level(g, 4), (unsigned)g);
    cr_assert_eq(ops_sim_level(-1, 4), 0);
    cr_assert_eq(ops_sim_level(9, 4), 4);
    /* binary judgments: relevant is the top level */
    cr_assert_eq(ops_sim_level(1, 1), 4);
    cr_assert_eq(ops_sim_level(0, 1), 0);
    /* 0..2: 0, 2, 4;  0..3: 0, 1, 3, 4 */
    cr_assert_eq(ops_sim_level(1, 2), 2);
    cr_assert_eq(ops_sim_level(1, 3), 1);
    cr_assert_eq(ops_sim_level(2, 3), 3);
    cr_assert_eq(ops_sim_level(3, 8), 2);
}

Test(engage, session_is_deterministic_in_its_seed)
{
    ops_sim_params p = params(OPS_SIM_CASCADE);
    unsigned char lv[10] = {4, 0, 3, 1, 2, 0, 4, 0, 1, 3};
    uint32_t pos[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    ops_sim_click a[10], b[10];
    int differ = 0;
    for (int m = 0; m < 2; m++) {
        p.model = m ? OPS_SIM_PBM : OPS_SIM_CASCADE;
        for (uint64_t s = 0; s < 200; s++) {
            size_t na = ops_sim_session(&p, lv, pos, 10, s, a);
            size_t nb = ops_sim_session(&p, lv, pos, 10, s, b);
            cr_assert_eq(na, nb);
            for (size_t i = 0; i < na; i++) {
                cr_assert_eq(a[i].hit, b[i].hit);
                cr_assert_eq(a[i].dwell, b[i].dwell);
                cr_assert_eq(a[i].offset_s, b[i].offset_s);
            }
            size_t nc = ops_sim_session(&p, lv, pos, 10, s + 1000, b);
            differ += nc != na || (na && (a[0].hit != b[0].hit || a[0].dwell != b[0].dwell));
        }
    }
    cr_assert_gt(differ, 100, "other seeds give other sessions");
    /* the seed of a session: (seed, request id) and nothing else */
    cr_assert_eq(ops_sim_seed(1, "12/3"), ops_sim_seed(1, "12/3"));
    cr_assert_neq(ops_sim_seed(1, "12/3"), ops_sim_seed(2, "12/3"));
    cr_assert_neq(ops_sim_seed(1, "12/3"), ops_sim_seed(1, "12/4"));
}

Test(engage, cascade_never_clicks_below_its_stop)
{
    ops_sim_params p = params(OPS_SIM_CASCADE);
    unsigned char lv[10] = {0, 1, 2, 3, 4, 0, 1, 2, 3, 4};
    uint32_t pos[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    ops_sim_click c[10];
    /* always stop after a click: at most one click, nothing after it */
    for (int i = 0; i < 5; i++) p.stop[i] = 1.0;
    size_t total = 0;
    for (uint64_t s = 0; s < 5000; s++) {
        size_t n = ops_sim_session(&p, lv, pos, 10, s, c);
        cr_assert_leq(n, 1);
        total += n;
    }
    cr_assert_gt(total, 4000);
    /* a sure click with a sure stop at the third result: never a click below it */
    ops_sim_defaults(&p);
    p.click[4] = 1.0;
    p.stop[4] = 1.0;
    unsigned char lv2[10] = {0, 2, 4, 4, 3, 3, 3, 3, 3, 3};
    size_t at3 = 0;
    for (uint64_t s = 0; s < 5000; s++) {
        size_t n = ops_sim_session(&p, lv2, pos, 10, s, c);
        cr_assert_geq(n, 1);
        cr_assert_leq(c[n - 1].hit, 2, "session %llu clicked hit %zu below the stop", (unsigned long long)s,
                      c[n - 1].hit);
        at3 += c[n - 1].hit == 2;
        for (size_t i = 1; i < n; i++) cr_assert_gt(c[i].hit, c[i - 1].hit, "clicks go top-down");
    }
    /* hit 2 is reached unless the user stopped after a click on hit 0 or 1:
     * 1 - 0.05 * 0.2 - (1 - 0.05 * 0.2) * 0.5 * 0.5 = 0.7425 */
    cr_assert_float_eq(at3 / 5000.0, 0.7425, 0.025);
    /* with stop probability s after each click, clicks after a click happen
     * (1 - s) of the time: level 0 has s = 0.2 by default */
    ops_sim_defaults(&p);
    for (int i = 0; i < 5; i++) p.click[i] = 1.0;
    unsigned char zero[10] = {0};
    size_t two = 0, one = 0;
    for (uint64_t s = 0; s < 20000; s++) {
        size_t n = ops_sim_session(&p, zero, pos, 2, s, c);
        cr_assert_geq(n, 1);
        one++;
        two += n == 2;
    }
    cr_assert_float_eq((double)two / (double)one, 0.8, 0.015);
}

/* Click counts by level over many sessions on pages in random order (each
 * level equally often at each position and after each other level). */
static void clicks_by_level(int model, double *per_level)
{
    ops_sim_params p = params(model);
    uint32_t pos[5] = {1, 2, 3, 4, 5};
    ops_sim_click c[5];
    size_t n[5] = {0};
    uint64_t x = 88172645463325252ull;
    for (uint64_t s = 0; s < 40000; s++) {
        unsigned char lv[5] = {0, 1, 2, 3, 4};
        for (int i = 4; i > 0; i--) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int j = (int)(x % (uint64_t)(i + 1));
            unsigned char t = lv[i];
            lv[i] = lv[j];
            lv[j] = t;
        }
        size_t k = ops_sim_session(&p, lv, pos, 5, s * 7919 + 13, c);
        for (size_t i = 0; i < k; i++) n[lv[c[i].hit]]++;
    }
    for (int l = 0; l < 5; l++) per_level[l] = (double)n[l] / 40000.0;
}

Test(engage, higher_grades_get_more_clicks)
{
    for (int m = 0; m < 2; m++) {
        double r[5];
        clicks_by_level(m ? OPS_SIM_PBM : OPS_SIM_CASCADE, r);
        for (int l = 1; l < 5; l++)
            cr_assert_gt(r[l], r[l - 1] * 1.2, "%s: level %d %.4f vs level %d %.4f", m ? "pbm" : "cascade",
                         l, r[l], l - 1, r[l - 1]);
    }
}

Test(engage, pbm_examination_decays_with_position)
{
    ops_sim_params p = params(OPS_SIM_PBM);
    unsigned char lv[10];
    uint32_t pos[10];
    memset(lv, 4, sizeof lv);
    for (int i = 0; i < 10; i++) pos[i] = (uint32_t)i + 1;
    p.click[4] = 1.0;       /* every examined result is clicked */
    const double etas[2] = {1.0, 2.0};
    for (int e = 0; e < 2; e++) {
        p.eta = etas[e];
        size_t n[10] = {0};
        ops_sim_click c[10];
        const int S = 40000;
        for (int s = 0; s < S; s++) {
            size_t k = ops_sim_session(&p, lv, pos, 10, (uint64_t)s, c);
            for (size_t i = 0; i < k; i++) n[c[i].hit]++;
        }
        for (int i = 0; i < 10; i++) {
            double want = pow(i + 1, -p.eta), got = (double)n[i] / S;
            double sd = sqrt(want * (1 - want) / S);
            cr_assert_float_eq(got, want, 4 * sd + 1e-9, "eta %g position %d: %.4f, want %.4f", p.eta, i + 1,
                               got, want);
            if (i) cr_assert_lt(n[i], n[i - 1]);
        }
    }
    /* the page's own positions count: page 2 (positions 11..20) is seen less */
    uint32_t pos2[10];
    for (int i = 0; i < 10; i++) pos2[i] = (uint32_t)i + 11;
    p.eta = 1.0;
    size_t n1 = 0, n2 = 0;
    ops_sim_click c[10];
    for (uint64_t s = 0; s < 5000; s++) {
        n1 += ops_sim_session(&p, lv, pos, 10, s, c);
        n2 += ops_sim_session(&p, lv, pos2, 10, s, c);
    }
    cr_assert_gt(n1, 3 * n2);
}

Test(engage, dwell_carries_the_grade_with_noise)
{
    ops_sim_params p = params(OPS_SIM_CASCADE);
    for (int i = 0; i < 5; i++) p.click[i] = 1.0, p.stop[i] = 1.0;
    uint32_t pos[1] = {1};
    ops_sim_click c[1];
    for (unsigned l = 0; l < 5; l++) {
        unsigned char lv[1] = {(unsigned char)l};
        size_t long_ = 0;
        double logsum = 0;
        const int S = 20000;
        for (int s = 0; s < S; s++) {
            cr_assert_eq(ops_sim_session(&p, lv, pos, 1, (uint64_t)s, c), 1);
            cr_assert_geq(c[0].dwell, 0);
            cr_assert_float_eq(c[0].dwell * 10, round(c[0].dwell * 10), 1e-6, "0.1 s steps");
            long_ += c[0].dwell >= 10;
            logsum += log(fmax(c[0].dwell, 0.05));
        }
        double frac = (double)long_ / S, med = exp(logsum / S);
        cr_assert_float_eq(med, p.dwell_median[l], p.dwell_median[l] * 0.05, "level %u median %.2f", l, med);
        /* P(dwell >= 10) = 1 - Phi(ln(10/median)/sigma) */
        double want = 0.5 * erfc(log(10.0 / p.dwell_median[l]) / p.dwell_sigma / sqrt(2.0));
        cr_assert_float_eq(frac, want, 0.015, "level %u: P(dwell >= 10) %.3f, want %.3f", l, frac, want);
    }
}

/* ====================================================================
 * funnel clicks simulate
 * ==================================================================== */

static const char *QRELS =
    "1 0 d1 4\n"
    "1 0 d2 0\n"
    "1 0 d3 2\n"
    "2 0 e1 1\n"
    "\n"
    "2 0 e2 3\n";

static const char *IMP3 =
    "{\"request_id\":\"1/1\",\"time\":100.5,\"query\":\"q\",\"hits\":[{\"id\":\"d1\",\"position\":1},"
    "{\"id\":\"d2\",\"position\":2},{\"id\":\"d3\",\"position\":3},{\"id\":\"d4\",\"position\":4}]}\n"
    "{\"request_id\":\"2\",\"time\":200,\"hits\":[{\"id\":\"e2\",\"position\":1},{\"id\":\"e1\",\"position\":2}]}\n"
    "\n"
    "{\"request_id\":\"3/x\",\"hits\":[{\"id\":\"z\",\"position\":11},{\"id\":\"y\",\"position\":12}]}\n";

static const char *IMP3_REVERSED =
    "{\"request_id\":\"3/x\",\"hits\":[{\"id\":\"z\",\"position\":11},{\"id\":\"y\",\"position\":12}]}\n"
    "{\"request_id\":\"2\",\"time\":200,\"hits\":[{\"id\":\"e2\",\"position\":1},{\"id\":\"e1\",\"position\":2}]}\n"
    "{\"request_id\":\"1/1\",\"time\":100.5,\"query\":\"q\",\"hits\":[{\"id\":\"d1\",\"position\":1},"
    "{\"id\":\"d2\",\"position\":2},{\"id\":\"d3\",\"position\":3},{\"id\":\"d4\",\"position\":4}]}\n";

static ops_grades *grades(const char *text)
{
    ops_grades *g = NULL;
    fn_errbuf eb = {{0}};
    int rc = ops_grades_load(file("qrels", text), &g, &eb);
    cr_assert_eq(rc, 0, "%s", fn_errmsg(&eb, rc));
    return g;
}

/* Run the simulator over `impressions` text; the click log as a malloc'd
 * string (and the impressions written, when imps_out is not NULL). */
static char *simulate(const ops_grades *g, int model, uint64_t seed, unsigned sessions, const char *impressions,
                      char **imps_out, ops_sim_stats *st)
{
    char *in = path_of("imp.jsonl"), *out = path_of("clicks.jsonl"), *io = path_of("imp_out.jsonl");
    tu_write_file(in, impressions);
    FILE *f = fopen(out, "w"), *fi = imps_out ? fopen(io, "w") : NULL;
    ops_sim_params p = params(model);
    ops_engage_input ei = {0};
    fn_errbuf eb = {{0}};
    ops_sim_stats s;
    const char *files[1] = {in};
    int rc = ops_clicks_simulate(&p, g, 0, seed, sessions, files, 1, f, fi, &ei, st ? st : &s, &eb);
    cr_assert_eq(rc, 0, "%s", fn_errmsg(&eb, rc));
    fclose(f);
    if (fi) fclose(fi);
    char *text = tu_read_file(out, NULL);
    if (imps_out) *imps_out = tu_read_file(io, NULL);
    free(in);
    free(out);
    free(io);
    return text;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The lines of text, sorted, joined again. */
static char *sorted_lines(const char *text)
{
    char *copy = strdup(text), *lines[4096], *save = NULL;
    size_t n = 0;
    for (char *t = strtok_r(copy, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) lines[n++] = t;
    qsort(lines, n, sizeof *lines, cmp_str);
    char *out = malloc(strlen(text) + 2);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) strcat(strcat(out, lines[i]), "\n");
    free(copy);
    return out;
}

Test(engage, simulate_does_not_depend_on_line_order)
{
    ops_grades *g = grades(QRELS);
    for (int m = 0; m < 2; m++) {
        for (uint64_t seed = 1; seed < 40; seed++) {
            char *a = simulate(g, m, seed, 1, IMP3, NULL, NULL);
            char *b = simulate(g, m, seed, 1, IMP3_REVERSED, NULL, NULL);
            char *sa = sorted_lines(a), *sb = sorted_lines(b);
            cr_assert_str_eq(sa, sb);
            char *again = simulate(g, m, seed, 1, IMP3, NULL, NULL);
            cr_assert_str_eq(a, again, "same seed, same clicks");
            free(a);
            free(b);
            free(sa);
            free(sb);
            free(again);
        }
    }
    ops_grades_free(g);
}

Test(engage, simulate_writes_the_click_format)
{
    ops_grades *g = grades(QRELS);
    ops_sim_stats st;
    /* many seeds: every click line names a shown (id, position) of its request */
    size_t clicks = 0;
    for (uint64_t seed = 1; seed <= 50; seed++) {
        char *c = simulate(g, OPS_SIM_CASCADE, seed, 1, IMP3, NULL, &st);
        cr_assert_eq(st.impressions, 3);
        cr_assert_eq(st.sessions, 3);
        cr_assert_eq(st.unjudged, 1, "query 3 has no judgments");
        clicks += st.clicks;
        for (char *l = c; *l; l = strchr(l, '\n') + 1) {
            char rid[16], id[8];
            unsigned pos;
            double dwell;
            int n = 0;
            if (strncmp(l, "{\"request_id\":\"1/1\",\"time\":", 27) == 0) {
                double t;
                cr_assert_eq(sscanf(l, "{\"request_id\":\"%15[^\"]\",\"time\":%lf,\"id\":\"%7[^\"]\",\"position\":%u,\"dwell\":%lf}%n",
                                    rid, &t, id, &pos, &dwell, &n), 5, "%s", l);
                cr_assert_gt(t, 100.5);
                cr_assert(pos >= 1 && pos <= 4 && id[0] == 'd' && id[1] - '0' == (int)pos);
            } else if (strncmp(l, "{\"request_id\":\"3/x\",\"id\"", 24) == 0) {
                /* no "time" without an impression time */
                cr_assert_eq(sscanf(l, "{\"request_id\":\"%15[^\"]\",\"id\":\"%7[^\"]\",\"position\":%u,\"dwell\":%lf}%n",
                                    rid, id, &pos, &dwell, &n), 4, "%s", l);
                cr_assert((pos == 11 && strcmp(id, "z") == 0) || (pos == 12 && strcmp(id, "y") == 0), "%s", l);
            } else {
                cr_assert_eq(sscanf(l, "{\"request_id\":\"2\",\"time\":%*f,\"id\":\"%7[^\"]\",\"position\":%u,\"dwell\":%lf}%n",
                                    id, &pos, &dwell, &n), 3, "%s", l);
                cr_assert((pos == 1 && strcmp(id, "e2") == 0) || (pos == 2 && strcmp(id, "e1") == 0), "%s", l);
            }
            cr_assert_eq(l[n], '\n', "%s", l);
        }
        free(c);
    }
    cr_assert_gt(clicks, 50);
    ops_grades_free(g);
}

Test(engage, sessions_are_the_same_as_repeated_impressions)
{
    ops_grades *g = grades(QRELS);
    const char *one =
        "{\"request_id\":\"1\",\"time\":5,\"hits\":[{\"id\":\"d1\",\"position\":1,\"score\":10.61},"
        "{\"id\":\"d3\",\"position\":2}],\"user\":\"u7\"}\n";
    char *imps = NULL;
    char *a = simulate(g, OPS_SIM_CASCADE, 9, 3, one, &imps, NULL);
    /* the impressions once per session, request id ID/k, the rest byte for byte */
    cr_assert_str_eq(imps,
                     "{\"request_id\":\"1/1\",\"time\":5,\"hits\":[{\"id\":\"d1\",\"position\":1,\"score\":10.61},"
                     "{\"id\":\"d3\",\"position\":2}],\"user\":\"u7\"}\n"
                     "{\"request_id\":\"1/2\",\"time\":5,\"hits\":[{\"id\":\"d1\",\"position\":1,\"score\":10.61},"
                     "{\"id\":\"d3\",\"position\":2}],\"user\":\"u7\"}\n"
                     "{\"request_id\":\"1/3\",\"time\":5,\"hits\":[{\"id\":\"d1\",\"position\":1,\"score\":10.61},"
                     "{\"id\":\"d3\",\"position\":2}],\"user\":\"u7\"}\n");
    char *b = simulate(g, OPS_SIM_CASCADE, 9, 1, imps, NULL, NULL);
    cr_assert_str_eq(a, b, "--sessions 3 = three impression lines ID/1..ID/3");
    free(a);
    free(b);
    free(imps);
    /* a request id with an escaped key is re-encoded, still renamed */
    const char *escaped = "{\"request\\u005fid\":\"2\",\"hits\":[]}\n";
    a = simulate(g, OPS_SIM_CASCADE, 9, 2, escaped, &imps, NULL);
    cr_assert_str_eq(imps, "{\"request_id\":\"2/1\",\"hits\":[]}\n{\"request_id\":\"2/2\",\"hits\":[]}\n");
    cr_assert_str_eq(a, "");
    free(a);
    free(imps);
    ops_grades_free(g);
}

Test(engage, simulate_reports_bad_impression_lines)
{
    ops_grades *g = grades(QRELS);
    char *in = path_of("bad.jsonl");
    tu_write_file(in, "{\"request_id\":\"1\",\"hits\":[]}\n{\"request_id\":\"1\",\"hits\":[]}\n"
                      "{\"request_id\":\"2\",\"hits\":[{\"id\":\"e1\",\"position\":2}, {\"id\":\"e2\",\"position\":4}]}\n"
                      "{\"request_id\":\"3\",\"hits\":[]}\n");
    FILE *f = tmpfile();
    ops_sim_params p = params(OPS_SIM_CASCADE);
    ops_engage_input ei = {0};
    fn_errbuf eb = {{0}};
    ops_sim_stats st;
    const char *files[1] = {in};
    int rc = ops_clicks_simulate(&p, g, 0, 1, 1, files, 1, f, NULL, &ei, &st, &eb);
    cr_assert_eq(rc, FN_EPARSE);
    char want[PATH_MAX + 128];
    snprintf(want, sizeof want, "%s:2: request_id \"1\" repeats line 1", in);
    cr_assert_str_eq(eb.msg, want);
    /* skip: both bad lines counted, the good ones simulated */
    ei.skip_bad = 1;
    rc = ops_clicks_simulate(&p, g, 0, 1, 1, files, 1, f, NULL, &ei, &st, &eb);
    cr_assert_eq(rc, 0, "%s", eb.msg);
    cr_assert_eq(ei.skipped, 2);
    cr_assert_eq(st.impressions, 2);
    /* more than one session needs somewhere to write the impressions */
    rc = ops_clicks_simulate(&p, g, 0, 1, 2, files, 1, f, NULL, &ei, &st, &eb);
    cr_assert_eq(rc, FN_EINVAL);
    fclose(f);
    free(in);
    ops_grades_free(g);
}

Test(engage, qrels_errors_name_the_line)
{
    ops_grades *g = NULL;
    fn_errbuf eb = {{0}};
    const char *p = file("q1", "1 0 d1 2\n1 0 d2\n");
    cr_assert_eq(ops_grades_load(p, &g, &eb), FN_EPARSE);
    cr_assert(strstr(eb.msg, ":2: expected 4 fields"), "%s", eb.msg);
    p = file("q2", "1 0 d1 2\n\n1 0 d2 x\n");
    cr_assert_eq(ops_grades_load(p, &g, &eb), FN_EPARSE);
    cr_assert(strstr(eb.msg, ":3: grade \"x\" is not an integer"), "%s", eb.msg);
    g = grades("1 0 a 3\n1 0 a 1\n2 0 b -1\n");
    cr_assert_eq(ops_grades_get(g, "1", 1, "a"), 1, "a repeated pair keeps the last grade");
    cr_assert_eq(ops_grades_get(g, "1/7", 1, "a"), 1, "qid by length");
    cr_assert_eq(ops_grades_get(g, "1", 1, "b"), 0);
    cr_assert_eq(ops_grades_max(g), 3);
    cr_assert(ops_grades_has_query(g, "2", 1) && !ops_grades_has_query(g, "3", 1));
    ops_grades_free(g);
}

/* ====================================================================
 * training data
 * ==================================================================== */

typedef struct warns {
    int n;
    char msg[8][600];
} warns;

static void collect(void *ud, const char *msg)
{
    warns *w = ud;
    if (w->n < 8) snprintf(w->msg[w->n], sizeof w->msg[0], "%s", msg);
    w->n++;
}

/* Load impressions + clicks and write the training data; the output text,
 * or NULL with *rc and eb set on an error. */
static char *traindata(const char *imps, const char *clicks, const ops_traindata_opts *o,
                       ops_traindata_stats *st, int *rc, fn_errbuf *eb)
{
    ops_engage_log *lg = NULL;
    cr_assert_eq(ops_engage_log_new(&lg), 0);
    ops_engage_input in = {0};
    ops_traindata_stats s;
    char *ip = path_of("imp.jsonl"), *cp = path_of("clicks.jsonl"), *op = path_of("out.svm");
    tu_write_file(ip, imps);
    tu_write_file(cp, clicks);
    char *text = NULL;
    *rc = ops_engage_load_impressions(lg, ip, &in, eb);
    if (!*rc) *rc = ops_engage_load_clicks(lg, cp, &in, eb);
    if (!*rc) {
        FILE *f = fopen(op, "w");
        *rc = ops_traindata_write(lg, o, f, st ? st : &s, eb);
        fclose(f);
        if (!*rc) text = tu_read_file(op, NULL);
    }
    ops_engage_log_free(lg);
    free(ip);
    free(cp);
    free(op);
    return text;
}

static char *traindata_ok(const char *imps, const char *clicks, const ops_traindata_opts *o,
                          ops_traindata_stats *st)
{
    int rc;
    fn_errbuf eb = {{0}};
    char *t = traindata(imps, clicks, o, st, &rc, &eb);
    cr_assert_eq(rc, 0, "%s", fn_errmsg(&eb, rc));
    return t;
}

/* One page of query 7, shown four times (sessions 7/1..7/4):
 * A B C D at positions 1..4, features x = 1..4, y = 0.5. */
static const char *PAGE4 =
    "{\"request_id\":\"7/1\",\"time\":1,\"features\":[\"x\",\"y\"],\"hits\":["
    "{\"id\":\"A\",\"position\":1,\"f\":[1,0.5]},{\"id\":\"B\",\"position\":2,\"f\":[2,0.5]},"
    "{\"id\":\"C\",\"position\":3,\"f\":[3,0.5]},{\"id\":\"D\",\"position\":4,\"f\":[4,0.5]}]}\n"
    "{\"request_id\":\"7/2\",\"time\":2,\"features\":[\"x\",\"y\"],\"hits\":["
    "{\"id\":\"A\",\"position\":1,\"f\":[1,0.5]},{\"id\":\"B\",\"position\":2,\"f\":[2,0.5]},"
    "{\"id\":\"C\",\"position\":3,\"f\":[3,0.5]},{\"id\":\"D\",\"position\":4,\"f\":[4,0.5]}]}\n"
    "{\"request_id\":\"7/3\",\"time\":3,\"features\":[\"x\",\"y\"],\"hits\":["
    "{\"id\":\"A\",\"position\":1,\"f\":[1,0.5]},{\"id\":\"B\",\"position\":2,\"f\":[2,0.5]},"
    "{\"id\":\"C\",\"position\":3,\"f\":[3,0.5]},{\"id\":\"D\",\"position\":4,\"f\":[4,0.5]}]}\n"
    "{\"request_id\":\"7/4\",\"time\":4,\"features\":[\"x\",\"y\"],\"hits\":["
    "{\"id\":\"A\",\"position\":1,\"f\":[1,0.5]},{\"id\":\"B\",\"position\":2,\"f\":[2,0.5]},"
    "{\"id\":\"C\",\"position\":3,\"f\":[3,0.5]},{\"id\":\"D\",\"position\":4,\"f\":[4,0.5]}]}\n";

/* B: 4 long clicks; C: one long click (7/2) and one without a dwell (7/3);
 * D: two short clicks, and one long one in 7/4 clicked twice. A: none. */
static const char *CLICKS4 =
    "{\"request_id\":\"7/1\",\"id\":\"B\",\"position\":2,\"dwell\":30}\n"
    "{\"request_id\":\"7/2\",\"id\":\"B\",\"position\":2,\"dwell\":12}\n"
    "{\"request_id\":\"7/3\",\"id\":\"B\",\"position\":2,\"dwell\":10}\n"
    "{\"request_id\":\"7/4\",\"id\":\"B\",\"position\":2,\"dwell\":55.5}\n"
    "{\"request_id\":\"7/2\",\"id\":\"C\",\"position\":3,\"dwell\":20}\n"
    "{\"request_id\":\"7/3\",\"id\":\"C\",\"position\":3}\n"
    "{\"request_id\":\"7/1\",\"id\":\"D\",\"position\":4,\"dwell\":3}\n"
    "\n"
    "{\"request_id\":\"7/2\",\"id\":\"D\",\"position\":4,\"dwell\":9.9}\n"
    "{\"request_id\":\"7/4\",\"id\":\"D\",\"position\":4,\"dwell\":2}\n"
    "{\"request_id\":\"7/4\",\"id\":\"D\",\"position\":4,\"dwell\":40}\n";

Test(engage, pointwise_labels_without_bias_correction)
{
    ops_traindata_opts o;
    ops_traindata_defaults(&o);
    o.propensity = OPS_TD_PROP_NONE;
    o.smoothing = 0;
    ops_traindata_stats st;
    char *t = traindata_ok(PAGE4, CLICKS4, &o, &st);
    /* rates over 4 examinations: A 0, B 4/4, C 1/4 (the click without a dwell
     * is not satisfied), D 1/4 (the two clicks of 7/4 are one, dwell 40) */
    cr_assert_str_eq(t,
                     "# features: x y\n"
                     "0 qid:7 1:1 2:0.5 # A\n"
                     "4 qid:7 1:2 2:0.5 # B\n"
                     "2 qid:7 1:3 2:0.5 # C\n"
                     "2 qid:7 1:4 2:0.5 # D\n");
    cr_assert_eq(st.impressions, 4);
    cr_assert_eq(st.clicks, 10);
    cr_assert_eq(st.clicks_no_dwell, 1);
    cr_assert_eq(st.duplicate_clicks, 1);
    cr_assert_eq(st.queries, 1);
    cr_assert_eq(st.rows, 4);
    cr_assert(st.labels[0] == 1 && st.labels[2] == 2 && st.labels[4] == 1);
    free(t);
    /* --min-dwell 0: every click is satisfied; C 2/4, D 3/4 */
    o.min_dwell = 0;
    t = traindata_ok(PAGE4, CLICKS4, &o, &st);
    cr_assert(strstr(t, "\n3 qid:7 1:3 2:0.5 # C\n4 qid:7 1:4 2:0.5 # D\n"), "%s", t);
    free(t);
}

Test(engage, pointwise_labels_with_propensities)
{
    ops_traindata_opts o;
    ops_traindata_defaults(&o);
    ops_traindata_stats st;
    /* pbm, eta 1, smoothing 1: examinations = 4 / p + 1
     *   B: 4 / (2 + 1) = 1.33 -> 4;  C: 1 / (4/3 + 1) = 0.43 -> 2;  D: 1 / (1 + 1) = 0.5 -> 3 */
    o.propensity = OPS_TD_PROP_PBM;
    char *t = traindata_ok(PAGE4, CLICKS4, &o, &st);
    cr_assert_str_eq(t,
                     "# features: x y\n"
                     "0 qid:7 1:1 2:0.5 # A\n"
                     "4 qid:7 1:2 2:0.5 # B\n"
                     "2 qid:7 1:3 2:0.5 # C\n"
                     "3 qid:7 1:4 2:0.5 # D\n");
    cr_assert_float_eq(st.propensity[0], 1.0, 1e-12);
    cr_assert_float_eq(st.propensity[3], 0.25, 1e-12);
    cr_assert(isnan(st.propensity[4]), "only positions shown");
    free(t);
    /* the clip: with eta 3, position 4 would be 1/64; clipped to 0.1 */
    o.eta = 3;
    t = traindata_ok(PAGE4, CLICKS4, &o, &st);
    cr_assert_float_eq(st.propensity[3], 0.1, 1e-12);
    free(t);
    /* data: every session has a click at position 4 but 7/3 (last click 3):
     * position 4 is reached in 3 of 4 clicked sessions -> 0.75, 1..3 -> 1.
     *   B: 4 / 5 -> 4;  C: 1 / 5 = 0.2 -> 2;  D: 1 / (3 + 1) = 0.25 -> 2 */
    o.propensity = OPS_TD_PROP_DATA;
    t = traindata_ok(PAGE4, CLICKS4, &o, &st);
    cr_assert_float_eq(st.propensity[2], 1.0, 1e-12);
    cr_assert_float_eq(st.propensity[3], 0.75, 1e-12);
    cr_assert(strstr(t, "4 qid:7 1:2 2:0.5 # B\n2 qid:7 1:3 2:0.5 # C\n2 qid:7 1:4 2:0.5 # D\n"), "%s", t);
    free(t);
    /* cuts */
    o.propensity = OPS_TD_PROP_NONE;
    o.smoothing = 0;
    double cuts[4] = {0.1, 0.3, 0.6, 0.99};
    memcpy(o.cuts, cuts, sizeof cuts);
    t = traindata_ok(PAGE4, CLICKS4, &o, &st);
    cr_assert(strstr(t, "0 qid:7 1:1 2:0.5 # A\n4 qid:7 1:2 2:0.5 # B\n1 qid:7 1:3 2:0.5 # C\n"), "%s", t);
    free(t);
}

/* Page A B C D E F of query 5, twice:
 *   5/1: C clicked           -> C > A, C > B
 *   5/2: B and E clicked     -> B > A;  E > A, E > C, E > D
 * F is below every click: never examined, left out. */
static const char *PAGE6 =
    "{\"request_id\":\"5/1\",\"features\":[\"x\"],\"hits\":[{\"id\":\"A\",\"position\":1,\"f\":[1]},"
    "{\"id\":\"B\",\"position\":2,\"f\":[2]},{\"id\":\"C\",\"position\":3,\"f\":[3]},"
    "{\"id\":\"D\",\"position\":4,\"f\":[4]},{\"id\":\"E\",\"position\":5,\"f\":[5]},"
    "{\"id\":\"F\",\"position\":6,\"f\":[6]}]}\n"
    "{\"request_id\":\"5/2\",\"features\":[\"x\"],\"hits\":[{\"id\":\"A\",\"position\":1,\"f\":[1]},"
    "{\"id\":\"B\",\"position\":2,\"f\":[2]},{\"id\":\"C\",\"position\":3,\"f\":[3]},"
    "{\"id\":\"D\",\"position\":4,\"f\":[4]},{\"id\":\"E\",\"position\":5,\"f\":[5]},"
    "{\"id\":\"F\",\"position\":6,\"f\":[6]}]}\n";

static const char *CLICKS6 =
    "{\"request_id\":\"5/1\",\"id\":\"C\",\"position\":3,\"dwell\":20}\n"
    "{\"request_id\":\"5/2\",\"id\":\"B\",\"position\":2,\"dwell\":20}\n"
    "{\"request_id\":\"5/2\",\"id\":\"E\",\"position\":5,\"dwell\":20}\n";

/* label of DOC in the output text */
static int label_of(const char *t, const char *doc)
{
    char pat[32];
    snprintf(pat, sizeof pat, " # %s\n", doc);
    const char *p = strstr(t, pat);
    if (!p) return -1;
    while (p > t && p[-1] != '\n') p--;
    return atoi(p);
}

Test(engage, pairwise_clicked_over_skipped_above)
{
    ops_traindata_opts o;
    ops_traindata_defaults(&o);
    o.mode = OPS_TD_PAIRWISE;
    ops_traindata_stats st;
    char *t = traindata_ok(PAGE6, CLICKS6, &o, &st);
    cr_assert_str_eq(t,
                     "# features: x\n"
                     "0 qid:5 1:1 # A\n"
                     "1 qid:5 1:2 # B\n"
                     "2 qid:5 1:3 # C\n"
                     "0 qid:5 1:4 # D\n"
                     "3 qid:5 1:5 # E\n");
    /* every preference holds */
    const char *prefs[6][2] = {{"C", "A"}, {"C", "B"}, {"B", "A"}, {"E", "A"}, {"E", "C"}, {"E", "D"}};
    for (int i = 0; i < 6; i++)
        cr_assert_gt(label_of(t, prefs[i][0]), label_of(t, prefs[i][1]), "%s over %s", prefs[i][0], prefs[i][1]);
    cr_assert_eq(st.prefs, 6);
    cr_assert_eq(st.pairs_kept, 6);
    cr_assert_eq(st.pairs_tied, 0);
    cr_assert_eq(st.pairs_cycle, 0);
    free(t);
    /* a short click is no click: with E's dwell 5, nothing is preferred to D */
    t = traindata_ok(PAGE6,
                     "{\"request_id\":\"5/1\",\"id\":\"C\",\"position\":3,\"dwell\":20}\n"
                     "{\"request_id\":\"5/2\",\"id\":\"B\",\"position\":2,\"dwell\":20}\n"
                     "{\"request_id\":\"5/2\",\"id\":\"E\",\"position\":5,\"dwell\":5}\n",
                     &o, &st);
    cr_assert_eq(label_of(t, "D"), -1, "%s", t);
    cr_assert_eq(label_of(t, "E"), -1, "%s", t);
    cr_assert_gt(label_of(t, "C"), label_of(t, "B"));
    cr_assert_gt(label_of(t, "B"), label_of(t, "A"));
    free(t);
}

Test(engage, pairwise_majority_ties_and_cycles)
{
    ops_traindata_opts o;
    ops_traindata_defaults(&o);
    o.mode = OPS_TD_PAIRWISE;
    ops_traindata_stats st;
    /* P over Q once (Q, P shown; P clicked), Q over P twice: Q wins.
     * R and S: one each way: a tie, both left out. */
    const char *imps =
        "{\"request_id\":\"1/1\",\"features\":[\"x\"],\"hits\":[{\"id\":\"Q\",\"position\":1,\"f\":[1]},{\"id\":\"P\",\"position\":2,\"f\":[2]}]}\n"
        "{\"request_id\":\"1/2\",\"features\":[\"x\"],\"hits\":[{\"id\":\"P\",\"position\":1,\"f\":[2]},{\"id\":\"Q\",\"position\":2,\"f\":[1]}]}\n"
        "{\"request_id\":\"1/3\",\"features\":[\"x\"],\"hits\":[{\"id\":\"P\",\"position\":1,\"f\":[2]},{\"id\":\"Q\",\"position\":2,\"f\":[1]}]}\n"
        "{\"request_id\":\"1/4\",\"features\":[\"x\"],\"hits\":[{\"id\":\"R\",\"position\":1,\"f\":[3]},{\"id\":\"S\",\"position\":2,\"f\":[4]}]}\n"
        "{\"request_id\":\"1/5\",\"features\":[\"x\"],\"hits\":[{\"id\":\"S\",\"position\":1,\"f\":[4]},{\"id\":\"R\",\"position\":2,\"f\":[3]}]}\n";
    const char *clicks =
        "{\"request_id\":\"1/1\",\"id\":\"P\",\"position\":2,\"dwell\":11}\n"
        "{\"request_id\":\"1/2\",\"id\":\"Q\",\"position\":2,\"dwell\":11}\n"
        "{\"request_id\":\"1/3\",\"id\":\"Q\",\"position\":2,\"dwell\":11}\n"
        "{\"request_id\":\"1/4\",\"id\":\"S\",\"position\":2,\"dwell\":11}\n"
        "{\"request_id\":\"1/5\",\"id\":\"R\",\"position\":2,\"dwell\":11}\n";
    char *t = traindata_ok(imps, clicks, &o, &st);
    cr_assert_str_eq(t, "# features: x\n0 qid:1 1:2 # P\n1 qid:1 1:1 # Q\n");
    cr_assert_eq(st.prefs, 5);
    cr_assert_eq(st.pairs_kept, 1);
    cr_assert_eq(st.pairs_tied, 1);
    free(t);
    /* a cycle X > Y > Z > X (one session each, margins 1, 1, 2 with Z > X
     * twice): the weakest edge of the cycle goes, the other two hold */
    imps =
        "{\"request_id\":\"2/1\",\"features\":[\"x\"],\"hits\":[{\"id\":\"Y\",\"position\":1,\"f\":[1]},{\"id\":\"X\",\"position\":2,\"f\":[2]}]}\n"
        "{\"request_id\":\"2/2\",\"features\":[\"x\"],\"hits\":[{\"id\":\"Z\",\"position\":1,\"f\":[3]},{\"id\":\"Y\",\"position\":2,\"f\":[1]}]}\n"
        "{\"request_id\":\"2/3\",\"features\":[\"x\"],\"hits\":[{\"id\":\"X\",\"position\":1,\"f\":[2]},{\"id\":\"Z\",\"position\":2,\"f\":[3]}]}\n"
        "{\"request_id\":\"2/4\",\"features\":[\"x\"],\"hits\":[{\"id\":\"X\",\"position\":1,\"f\":[2]},{\"id\":\"Z\",\"position\":2,\"f\":[3]}]}\n";
    clicks =
        "{\"request_id\":\"2/1\",\"id\":\"X\",\"position\":2,\"dwell\":11}\n"
        "{\"request_id\":\"2/2\",\"id\":\"Y\",\"position\":2,\"dwell\":11}\n"
        "{\"request_id\":\"2/3\",\"id\":\"Z\",\"position\":2,\"dwell\":11}\n"
        "{\"request_id\":\"2/4\",\"id\":\"Z\",\"position\":2,\"dwell\":11}\n";
    t = traindata_ok(imps, clicks, &o, &st);
    cr_assert_eq(st.pairs_cycle, 1);
    cr_assert_eq(st.pairs_kept, 2);
    /* Z > X (margin 2) is kept; of X > Y and Y > Z (margin 1) the first met
     * on the cycle walked from Y (the query's first document) goes: Y > Z */
    cr_assert_gt(label_of(t, "Z"), label_of(t, "X"), "%s", t);
    cr_assert_gt(label_of(t, "X"), label_of(t, "Y"), "%s", t);
    free(t);
}

Test(engage, header_qid_numbers_and_row_order)
{
    ops_traindata_opts o;
    ops_traindata_defaults(&o);
    o.propensity = OPS_TD_PROP_NONE;
    o.smoothing = 0;
    /* numeric qids stay; "abc" and "007" (not canonical) get numbers above the
     * largest numeric one, in byte order; rows by query number */
    const char *imps =
        "{\"request_id\":\"abc/1\",\"features\":[\"f1\",\"f2\"],\"hits\":[{\"id\":\"a\",\"position\":1,\"f\":[1,2]}]}\n"
        "{\"request_id\":\"12\",\"features\":[\"f1\",\"f2\"],\"hits\":[{\"id\":\"b\",\"position\":1,\"f\":[3,4]}]}\n"
        "{\"request_id\":\"007/x\",\"features\":[\"f1\",\"f2\"],\"hits\":[{\"id\":\"c\",\"position\":1,\"f\":[5,null]}]}\n"
        "{\"request_id\":\"3\",\"features\":[\"f1\",\"f2\"],\"hits\":[{\"id\":\"d d\",\"position\":1,\"f\":[7,8]}]}\n";
    const char *clicks = "{\"request_id\":\"12\",\"id\":\"b\",\"position\":1,\"dwell\":100}\n";
    char *t = traindata_ok(imps, clicks, &o, NULL);
    cr_assert_str_eq(t,
                     "# features: f1 f2\n"
                     "# qid 13 = 007\n"
                     "# qid 14 = abc\n"
                     "0 qid:3 1:7 2:8 # d d\n"
                     "4 qid:12 1:3 2:4 # b\n"
                     "0 qid:13 1:5 # c\n"
                     "0 qid:14 1:1 2:2 # a\n");
    free(t);
    /* no numeric qid: dense from 1 */
    imps = "{\"request_id\":\"q2\",\"features\":[\"f\"],\"hits\":[{\"id\":\"a\",\"position\":1,\"f\":[1]}]}\n"
           "{\"request_id\":\"q1\",\"features\":[\"f\"],\"hits\":[{\"id\":\"a\",\"position\":1,\"f\":[1]}]}\n";
    t = traindata_ok(imps, "", &o, NULL);
    cr_assert_str_eq(t, "# features: f\n# qid 1 = q1\n# qid 2 = q2\n0 qid:1 1:1 # a\n0 qid:2 1:1 # a\n");
    free(t);
}

Test(engage, latest_vector_and_feature_lists)
{
    ops_traindata_opts o;
    ops_traindata_defaults(&o);
    o.propensity = OPS_TD_PROP_NONE;
    /* the same (query, doc) three times: the latest by time wins, whatever the
     * line order; equal times: the later line */
    const char *imps =
        "{\"request_id\":\"4/2\",\"time\":20,\"features\":[\"a\",\"b\"],\"hits\":[{\"id\":\"d\",\"position\":1,\"f\":[2,2]}]}\n"
        "{\"request_id\":\"4/1\",\"time\":10,\"features\":[\"a\",\"b\"],\"hits\":[{\"id\":\"d\",\"position\":1,\"f\":[1,1]}]}\n"
        "{\"request_id\":\"4/3\",\"features\":[\"a\",\"b\"],\"hits\":[{\"id\":\"d\",\"position\":1,\"f\":[0,0]}]}\n"
        "{\"request_id\":\"9/1\",\"time\":5,\"features\":[\"b\",\"c\"],\"hits\":[{\"id\":\"e\",\"position\":1,\"f\":[5,6]}]}\n"
        "{\"request_id\":\"9/2\",\"time\":5,\"features\":[\"c\",\"a\"],\"hits\":[{\"id\":\"e\",\"position\":1,\"f\":[7,8]}]}\n"
        "{\"request_id\":\"9/3\",\"time\":6,\"hits\":[{\"id\":\"e\",\"position\":1}]}\n"
        "{\"request_id\":\"9/4\",\"time\":1,\"hits\":[{\"id\":\"novec\",\"position\":1}]}\n";
    ops_traindata_stats st;
    char *t = traindata_ok(imps, "", &o, &st);
    /* header: the union in order of first appearance; 9's latest vector
     * (9/2, names c a) goes out sorted by feature number; 9/3 has no vector */
    cr_assert_str_eq(t,
                     "# features: a b c\n"
                     "0 qid:4 1:2 2:2 # d\n"
                     "0 qid:9 1:8 3:7 # e\n");
    cr_assert_eq(st.feature_lists, 3);
    cr_assert_eq(st.no_vector, 1);
    free(t);
}

Test(engage, header_names_only_the_columns_rows_have)
{
    ops_traindata_opts o;
    ops_traindata_defaults(&o);
    /* c is missing (null) in every row, and d only in a row left out (no
     * preference): the trainer wants the header to match the data's columns */
    const char *imps =
        "{\"request_id\":\"1\",\"features\":[\"a\",\"b\",\"c\"],\"hits\":[{\"id\":\"x\",\"position\":1,\"f\":[1,2,null]},"
        "{\"id\":\"y\",\"position\":2,\"f\":[3,null,null]}]}\n"
        "{\"request_id\":\"q\",\"features\":[\"a\",\"c\",\"d\"],\"hits\":[{\"id\":\"z\",\"position\":1,\"f\":[5,null,6]}]}\n";
    const char *clicks = "{\"request_id\":\"1\",\"id\":\"y\",\"position\":2,\"dwell\":99}\n";
    ops_traindata_stats st;
    char *t = traindata_ok(imps, clicks, &o, &st);
    cr_assert_str_eq(t, "# features: a b c d\n# qid 2 = q\n0 qid:1 1:1 2:2 # x\n3 qid:1 1:3 # y\n0 qid:2 1:5 4:6 # z\n");
    cr_assert_eq(st.features, 4);
    free(t);
    o.mode = OPS_TD_PAIRWISE;
    t = traindata_ok(imps, clicks, &o, &st);
    cr_assert_str_eq(t, "# features: a b\n0 qid:1 1:1 2:2 # x\n1 qid:1 1:3 # y\n");
    cr_assert_eq(st.features, 2);
    free(t);
    /* no row at all: every name */
    t = traindata_ok(imps, "", &o, &st);
    cr_assert_str_eq(t, "# features: a b c d\n");
    free(t);
}

Test(engage, no_feature_vectors_is_refused)
{
    ops_traindata_opts o;
    ops_traindata_defaults(&o);
    int rc;
    fn_errbuf eb = {{0}};
    char *t = traindata("{\"request_id\":\"1\",\"features\":[],\"hits\":[{\"id\":\"a\",\"position\":1}]}\n"
                        "{\"request_id\":\"2\",\"hits\":[{\"id\":\"a\",\"position\":1}]}\n",
                        "{\"request_id\":\"1\",\"id\":\"a\",\"position\":1,\"dwell\":30}\n", &o, NULL, &rc, &eb);
    cr_assert_null(t);
    cr_assert_eq(rc, FN_EINVAL);
    cr_assert(strstr(eb.msg, "no feature vectors"), "%s", eb.msg);
}

/* ====================================================================
 * FILE:LINE errors
 * ==================================================================== */

typedef struct bad_case {
    const char *line;
    const char *want;
} bad_case;

static const char *GOOD_IMP =
    "{\"request_id\":\"q1\",\"features\":[\"x\"],\"hits\":[{\"id\":\"a\",\"position\":1,\"f\":[1]},"
    "{\"id\":\"b\",\"position\":2,\"f\":[2]}]}\n";

Test(engage, every_bad_impression_line_is_file_line)
{
    static const bad_case cases[] = {
        {"{", "invalid JSON: "},
        {"{\"request_id\":\"q9\",\"request_id\":\"q8\",\"hits\":[]}", "invalid JSON: duplicate object key"},
        {"[1,2]", "not a JSON object"},
        {"{\"hits\":[]}", "missing \"request_id\""},
        {"{\"request_id\":5,\"hits\":[]}", "\"request_id\" must be a string"},
        {"{\"request_id\":\"\",\"hits\":[]}", "\"request_id\" is empty"},
        {"{\"request_id\":\"a\\nb\",\"hits\":[]}", "\"request_id\" contains a control character"},
        {"{\"request_id\":\"/3\",\"hits\":[]}", "\"request_id\" \"/3\" has an empty query id"},
        {"{\"request_id\":\"q1\",\"hits\":[]}", "request_id \"q1\" repeats line 1"},
        {"{\"request_id\":\"q9\",\"time\":\"now\",\"hits\":[]}", "\"time\" must be a number"},
        {"{\"request_id\":\"q9\",\"query\":[],\"hits\":[]}", "\"query\" must be a string"},
        {"{\"request_id\":\"q9\",\"user\":3,\"hits\":[]}", "\"user\" must be a string"},
        {"{\"request_id\":\"q9\",\"features\":\"x\",\"hits\":[]}", "\"features\" must be an array of names"},
        {"{\"request_id\":\"q9\",\"features\":[\"a b\"],\"hits\":[]}", "\"features\"[0] \"a b\" is not a feature name ([A-Za-z0-9_.]+)"},
        {"{\"request_id\":\"q9\",\"features\":[\"x\",\"\"],\"hits\":[]}", "\"features\"[1] \"\" is not a feature name"},
        {"{\"request_id\":\"q9\",\"features\":[\"x\",\"bm25-title\"],\"hits\":[]}", "\"features\"[1] \"bm25-title\" is not a feature name"},
        {"{\"request_id\":\"q9\",\"features\":[\"x\",2],\"hits\":[]}", "\"features\"[1] must be a string"},
        {"{\"request_id\":\"q9\",\"features\":[\"x\",\"x\"],\"hits\":[]}", "\"features\" names \"x\" twice"},
        {"{\"request_id\":\"q9\"}", "missing \"hits\""},
        {"{\"request_id\":\"q9\",\"hits\":{}}", "\"hits\" must be an array"},
        {"{\"request_id\":\"q9\",\"hits\":[3]}", "hits[0] is not an object"},
        {"{\"request_id\":\"q9\",\"hits\":[{\"position\":1}]}", "hits[0]: missing \"id\""},
        {"{\"request_id\":\"q9\",\"hits\":[{\"id\":7,\"position\":1}]}", "hits[0]: \"id\" must be a string"},
        {"{\"request_id\":\"q9\",\"hits\":[{\"id\":\"\",\"position\":1}]}", "hits[0]: \"id\" is empty"},
        {"{\"request_id\":\"q9\",\"hits\":[{\"id\":\"a\"}]}", "hits[0]: missing \"position\""},
        {"{\"request_id\":\"q9\",\"hits\":[{\"id\":\"a\",\"position\":\"1\"}]}", "hits[0]: \"position\" must be an integer"},
        {"{\"request_id\":\"q9\",\"hits\":[{\"id\":\"a\",\"position\":1.0}]}", "hits[0]: \"position\" must be an integer"},
        {"{\"request_id\":\"q9\",\"hits\":[{\"id\":\"a\",\"position\":0}]}", "hits[0]: \"position\" 0 is not in 1..1000000"},
        {"{\"request_id\":\"q9\",\"hits\":[{\"id\":\"a\",\"position\":-2}]}", "hits[0]: \"position\" -2 is not in 1..1000000"},
        {"{\"request_id\":\"q9\",\"hits\":[{\"id\":\"a\",\"position\":1},{\"id\":\"b\",\"position\":3}]}",
         "hits[1]: position 3 after 1 (positions must be contiguous, top first)"},
        {"{\"request_id\":\"q9\",\"hits\":[{\"id\":\"a\",\"position\":2},{\"id\":\"b\",\"position\":1}]}",
         "hits[1]: position 1 after 2"},
        {"{\"request_id\":\"q9\",\"hits\":[{\"id\":\"a\",\"position\":1},{\"id\":\"b\",\"position\":2},{\"id\":\"a\",\"position\":3}]}",
         "hits[2]: id \"a\" is shown twice (also hits[0])"},
        {"{\"request_id\":\"q9\",\"hits\":[{\"id\":\"a\",\"position\":1,\"score\":\"high\"}]}", "hits[0]: \"score\" must be a number"},
        {"{\"request_id\":\"q9\",\"features\":[\"x\",\"y\"],\"hits\":[{\"id\":\"a\",\"position\":1,\"f\":[1]}]}",
         "hits[0]: \"f\" has 1 values but \"features\" names 2"},
        {"{\"request_id\":\"q9\",\"features\":[\"x\"],\"hits\":[{\"id\":\"a\",\"position\":1}]}",
         "hits[0]: \"f\" has 0 values but \"features\" names 1"},
        {"{\"request_id\":\"q9\",\"hits\":[{\"id\":\"a\",\"position\":1,\"f\":[1]}]}",
         "hits[0]: \"f\" has 1 values but \"features\" names 0"},
        {"{\"request_id\":\"q9\",\"features\":[\"x\"],\"hits\":[{\"id\":\"a\",\"position\":1,\"f\":{}}]}",
         "hits[0]: \"f\" must be an array"},
        {"{\"request_id\":\"q9\",\"features\":[\"x\"],\"hits\":[{\"id\":\"a\",\"position\":1,\"f\":[\"1\"]}]}",
         "hits[0]: \"f\"[0] must be a number or null"},
    };
    char *p = path_of("bad.jsonl");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[1024];
        snprintf(text, sizeof text, "%s\n%s\n%s", GOOD_IMP, cases[i].line,
                 "{\"request_id\":\"q2\",\"hits\":[]}\n");
        tu_write_file(p, text);
        char want[PATH_MAX + 256];
        snprintf(want, sizeof want, "%s:3: %s", p, cases[i].want);
        /* traindata's loader */
        ops_engage_log *lg = NULL;
        cr_assert_eq(ops_engage_log_new(&lg), 0);
        ops_engage_input in = {0};
        fn_errbuf eb = {{0}};
        int rc = ops_engage_load_impressions(lg, p, &in, &eb);
        cr_assert_eq(rc, FN_EPARSE, "case %zu: %s", i, cases[i].line);
        cr_assert_eq(strncmp(eb.msg, want, strlen(want)), 0, "case %zu:\n got  %s\n want %s", i, eb.msg, want);
        /* skipped and counted with --on-error skip */
        warns w = {0};
        in = (ops_engage_input){.skip_bad = 1, .warn = collect, .ud = &w};
        ops_engage_log_free(lg);
        cr_assert_eq(ops_engage_log_new(&lg), 0);
        rc = ops_engage_load_impressions(lg, p, &in, &eb);
        cr_assert_eq(rc, 0, "case %zu: %s", i, eb.msg);
        cr_assert_eq(in.skipped, 1);
        cr_assert_eq(w.n, 1);
        cr_assert_eq(strncmp(w.msg[0], want, strlen(want)), 0, "case %zu: %s", i, w.msg[0]);
        ops_engage_log_free(lg);
        /* the simulator reads impressions the same way */
        ops_grades *g = grades("q1 0 a 1\n");
        ops_sim_params sp = params(OPS_SIM_CASCADE);
        ops_sim_stats st;
        FILE *f = tmpfile();
        const char *files[1] = {p};
        in = (ops_engage_input){0};
        rc = ops_clicks_simulate(&sp, g, 0, 1, 1, files, 1, f, NULL, &in, &st, &eb);
        fclose(f);
        ops_grades_free(g);
        cr_assert_eq(rc, FN_EPARSE);
        cr_assert_eq(strncmp(eb.msg, want, strlen(want)), 0, "simulate, case %zu: %s", i, eb.msg);
    }
    free(p);
}

Test(engage, every_bad_click_line_is_file_line)
{
    static const bad_case cases[] = {
        {"nope", "invalid JSON: "},
        {"\"q1\"", "invalid JSON: "},
        {"[]", "not a JSON object"},
        {"{\"id\":\"a\",\"position\":1}", "missing \"request_id\""},
        {"{\"request_id\":[],\"id\":\"a\",\"position\":1}", "\"request_id\" must be a string"},
        {"{\"request_id\":\"q1\",\"position\":1}", "missing \"id\""},
        {"{\"request_id\":\"q1\",\"id\":1,\"position\":1}", "\"id\" must be a string"},
        {"{\"request_id\":\"q1\",\"id\":\"a\"}", "missing \"position\""},
        {"{\"request_id\":\"q1\",\"id\":\"a\",\"position\":\"1\"}", "\"position\" must be an integer"},
        {"{\"request_id\":\"q1\",\"id\":\"a\",\"position\":0}", "\"position\" 0 is not in 1..1000000"},
        {"{\"request_id\":\"q1\",\"id\":\"a\",\"position\":1,\"time\":[]}", "\"time\" must be a number"},
        {"{\"request_id\":\"q1\",\"id\":\"a\",\"position\":1,\"dwell\":\"long\"}", "\"dwell\" must be a number"},
        {"{\"request_id\":\"q1\",\"id\":\"a\",\"position\":1,\"dwell\":-2.5}", "\"dwell\" is negative (-2.5)"},
        {"{\"request_id\":\"q7\",\"id\":\"a\",\"position\":1}", "click for an unknown request_id \"q7\" (no such impression)"},
        {"{\"request_id\":\"q1\",\"id\":\"a\",\"position\":3}", "request \"q1\" showed positions 1-2, not 3"},
        {"{\"request_id\":\"q2\",\"id\":\"a\",\"position\":1}", "request \"q2\" showed no hits, so nothing at position 1"},
        {"{\"request_id\":\"q1\",\"id\":\"b\",\"position\":1}", "request \"q1\" showed \"a\" at position 1, not \"b\""},
        {"{\"request_id\":\"q1\",\"id\":\"zz\",\"position\":2}", "request \"q1\" showed \"b\" at position 2, not \"zz\""},
    };
    char imps[512];
    snprintf(imps, sizeof imps, "%s{\"request_id\":\"q2\",\"hits\":[]}\n", GOOD_IMP);
    const char *ip = file("imp.jsonl", imps);
    char *cp = path_of("clicks.jsonl");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[1024];
        snprintf(text, sizeof text, "{\"request_id\":\"q1\",\"id\":\"a\",\"position\":1,\"dwell\":12}\n\n%s\n"
                                    "{\"request_id\":\"q1\",\"id\":\"b\",\"position\":2}\n", cases[i].line);
        tu_write_file(cp, text);
        char want[PATH_MAX + 256];
        snprintf(want, sizeof want, "%s:3: %s", cp, cases[i].want);
        for (int skip = 0; skip < 2; skip++) {
            ops_engage_log *lg = NULL;
            cr_assert_eq(ops_engage_log_new(&lg), 0);
            warns w = {0};
            ops_engage_input in = {.skip_bad = skip, .warn = collect, .ud = &w};
            fn_errbuf eb = {{0}};
            cr_assert_eq(ops_engage_load_impressions(lg, ip, &in, &eb), 0, "%s", eb.msg);
            int rc = ops_engage_load_clicks(lg, cp, &in, &eb);
            if (!skip) {
                cr_assert_eq(rc, FN_EPARSE, "case %zu: %s", i, cases[i].line);
                cr_assert_eq(strncmp(eb.msg, want, strlen(want)), 0, "case %zu:\n got  %s\n want %s", i, eb.msg, want);
            } else {
                cr_assert_eq(rc, 0, "case %zu: %s", i, eb.msg);
                cr_assert_eq(in.skipped, 1);
                cr_assert_eq(strncmp(w.msg[0], want, strlen(want)), 0, "case %zu: %s", i, w.msg[0]);
                /* the good clicks around it are joined */
                ops_traindata_opts o;
                ops_traindata_defaults(&o);
                ops_traindata_stats st;
                FILE *f = tmpfile();
                cr_assert_eq(ops_traindata_write(lg, &o, f, &st, &eb), 0);
                fclose(f);
                cr_assert_eq(st.clicks, 2);
            }
            ops_engage_log_free(lg);
        }
    }
    free(cp);
}

/* ====================================================================
 * the commands
 * ==================================================================== */

/* Run a command with a NULL-terminated argv. */
static int run_argv(int (*cmd)(int, char **), const char **argv)
{
    int argc = 0;
    while (argv[argc]) argc++;
    fflush(stdout);
    fflush(stderr);
    return cmd(argc, (char **)argv);
}

#define RUN(cmd, ...) run_argv(cmd, (const char *[]){__VA_ARGS__, NULL})

Test(engage, commands_end_to_end_and_usage_errors)
{
    char *imp = path_of("imp.jsonl"), *qrels = path_of("qrels"), *clicks = path_of("clicks.jsonl"),
         *imp20 = path_of("imp20.jsonl"), *svm = path_of("t.svm"), *svm2 = path_of("t2.svm");
    /* 3 queries, 5 hits each, with a vector */
    FILE *f = fopen(imp, "w");
    for (int q = 1; q <= 3; q++) {
        fprintf(f, "{\"request_id\":\"%d\",\"time\":%d,\"features\":[\"s\",\"g\"],\"hits\":[", q, 1000 + q);
        for (int i = 1; i <= 5; i++)
            fprintf(f, "%s{\"id\":\"d%d\",\"position\":%d,\"f\":[%d,%d]}", i > 1 ? "," : "", i, i, 6 - i, i % 3);
        fputs("]}\n", f);
    }
    fclose(f);
    tu_write_file(qrels, "1 0 d2 4\n2 0 d3 2\n3 0 d1 1\n3 0 d5 3\n");
    cr_assert_eq(RUN(ops_cmd_clicks, "clicks", "simulate", "--impressions", imp, "--qrels", qrels, "--model",
                     "cascade", "--seed", "3", "--sessions", "20", "--impressions-out", imp20, "--out", clicks),
                 0);
    char *c = tu_read_file(clicks, NULL), *i20 = tu_read_file(imp20, NULL);
    cr_assert(c && strstr(c, "{\"request_id\":\"1/20\","), "session ids ID/k");
    size_t lines = 0;
    for (char *p = i20; *p; p++) lines += *p == '\n';
    cr_assert_eq(lines, 60);
    free(c);
    free(i20);
    cr_assert_eq(RUN(ops_cmd_traindata, "traindata", "--impressions", imp20, "--clicks", clicks, "--mode",
                     "pointwise", "--out", svm),
                 0);
    char *t = tu_read_file(svm, NULL);
    cr_assert(t && strncmp(t, "# features: s g\n", 16) == 0);
    cr_assert(strstr(t, " qid:1 1:4 2:2 # d2\n") && strstr(t, " qid:3 1:1 2:2 # d5\n"), "%s", t);
    cr_assert_gt(label_of(t, "d2"), 0, "the grade-4 document is clicked: %s", t);
    free(t);
    cr_assert_eq(RUN(ops_cmd_traindata, "traindata", "--impressions", imp20, "--clicks", clicks, "--mode",
                     "pairwise", "--min-dwell", "0", "--out", svm2),
                 0);
    cr_assert_eq(access(svm2, F_OK), 0);

    /* usage errors: exit 2, nothing written */
    unlink(svm);
    cr_assert_eq(RUN(ops_cmd_clicks, "clicks"), 2);
    cr_assert_eq(RUN(ops_cmd_clicks, "clicks", "frob"), 2);
    cr_assert_eq(RUN(ops_cmd_clicks, "clicks", "simulate", "--impressions", imp, "--qrels", qrels, "--model",
                     "cascade"), 2);
    cr_assert_eq(RUN(ops_cmd_clicks, "clicks", "simulate", "--impressions", imp, "--qrels", qrels, "--model",
                     "dbn", "--out", svm), 2);
    cr_assert_eq(RUN(ops_cmd_clicks, "clicks", "simulate", "--impressions", imp, "--qrels", qrels, "--model",
                     "pbm", "--sessions", "2", "--out", svm), 2);
    cr_assert_eq(RUN(ops_cmd_clicks, "clicks", "simulate", "--impressions", imp, "--qrels", qrels, "--model",
                     "pbm", "--click-prob", "0.1,0.2,0.3,0.4", "--out", svm), 2);
    cr_assert_eq(RUN(ops_cmd_clicks, "clicks", "simulate", "--impressions", imp, "--qrels", qrels, "--model",
                     "pbm", "--stop-prob", "0.1,0.2,0.3,0.4,1.5", "--out", svm), 2);
    cr_assert_eq(RUN(ops_cmd_clicks, "clicks", "simulate", "--impressions", imp, "--qrels", qrels, "--model",
                     "pbm", "--seed", "-1", "--out", svm), 2);
    cr_assert_eq(RUN(ops_cmd_clicks, "clicks", "simulate", "--impressions", imp, "--qrels", qrels, "--model",
                     "pbm", "--on-error", "ignore", "--out", svm), 2);
    cr_assert_eq(RUN(ops_cmd_clicks, "clicks", "simulate", "--impressions", imp, "--qrels", qrels, "--model",
                     "pbm", "--out", imp), 2);
    cr_assert_eq(RUN(ops_cmd_traindata, "traindata", "--impressions", imp20, "--clicks", clicks, "--out", svm), 2);
    cr_assert_eq(RUN(ops_cmd_traindata, "traindata", "--impressions", imp20, "--clicks", clicks, "--mode",
                     "listwise", "--out", svm), 2);
    cr_assert_eq(RUN(ops_cmd_traindata, "traindata", "--impressions", imp20, "--clicks", clicks, "--mode",
                     "pointwise", "--cuts", "0.5,0.2,0.6,0.7", "--out", svm), 2);
    cr_assert_eq(RUN(ops_cmd_traindata, "traindata", "--impressions", imp20, "--clicks", clicks, "--mode",
                     "pointwise", "--min-dwell", "-1", "--out", svm), 2);
    cr_assert_eq(RUN(ops_cmd_traindata, "traindata", "--impressions", imp20, "--clicks", clicks, "--mode",
                     "pointwise", "--propensity", "magic", "--out", svm), 2);
    cr_assert_neq(access(svm, F_OK), 0);

    /* a bad line: exit 1 and no output (nor its temporary); skip: exit 0 */
    f = fopen(clicks, "a");
    fputs("{\"request_id\":\"1/1\",\"id\":\"d1\",\"position\":1,\"dwell\":-1}\n", f);
    fclose(f);
    cr_assert_eq(RUN(ops_cmd_traindata, "traindata", "--impressions", imp20, "--clicks", clicks, "--mode",
                     "pointwise", "--out", svm), 1);
    cr_assert_neq(access(svm, F_OK), 0);
    char tmpf[PATH_MAX + 80];
    snprintf(tmpf, sizeof tmpf, "%s.tmp", svm);
    cr_assert_neq(access(tmpf, F_OK), 0);
    cr_assert_eq(RUN(ops_cmd_traindata, "traindata", "--impressions", imp20, "--clicks", clicks, "--mode",
                     "pointwise", "--on-error", "skip", "--out", svm), 0);
    cr_assert_eq(access(svm, F_OK), 0);
    /* a file that is no impressions: exit 1 */
    cr_assert_eq(RUN(ops_cmd_clicks, "clicks", "simulate", "--impressions", qrels, "--qrels", qrels, "--model",
                     "pbm", "--out", svm2), 1, "qrels are no impressions");
    free(imp);
    free(qrels);
    free(clicks);
    free(imp20);
    free(svm);
    free(svm2);
}
