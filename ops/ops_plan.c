/* ops_plan.c - `funnel plan`: the capacity planner (issue 13, docs/cli.md "funnel plan").
 *
 * From per-stage costs measured on one machine (a JSON costs file, written by
 * tests/bench/plan_costs.sh) it sizes a cluster for N documents, Q queries per
 * second and a p99 latency target P, and prints every step as
 * "quantity = formula = value":
 *
 *   1. shards S: the smallest S whose fan-out p99 meets P. A search waits for
 *      the slowest of its S shards; with independent shard latencies of CDF F
 *      the maximum has CDF F^S, so its p99 is the shard quantile q_S with
 *      q_S^S = 0.99, q_S = 0.99^(1/S) (about 1 - 0.01/S). The shard latency
 *      distribution is the measured one at d0 documents per shard, its
 *      variable part scaled linearly with documents per shard:
 *      L_d(q) = fixed + (L_d0(q) - fixed) * d / d0. L_d0 is interpolated
 *      linearly in z = -ln(1 - q) between the measured quantiles and beyond
 *      the last one extrapolated with the last segment's slope (an
 *      exponential tail). p99(S) = coordinator p99 + merge latency * S +
 *      L_{N/S}(q_S), the merge latency per shard measured apart from its CPU.
 *      The index must also fit in memory when the costs give its size.
 *   2. replicas R per shard (one replica per machine): CPU per query on a
 *      shard, c(d) = shard_fixed_us + selection_us_per_doc * d (+ the
 *      shard_window term: us_per_doc * the shard's share of the selection
 *      window, which shrinks as 1/S with overprovision); a replica
 *      serves cores * util / c(d) queries a second; R = max(2, ceil(Q / that)).
 *   3. coordinators: CPU per query coordinator_us_per_query +
 *      stage2_us_per_query + merge_us_per_shard * S; at least 2.
 *   4. machines: S * R + coordinators.
 */
#include "ops.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PLAN_MAX_DOCS 1e13
#define PLAN_MAX_QPS 1e9
#define PLAN_MAX_P99_MS 3600000.0
#define PLAN_MAX_CORES 4096.0
#define PLAN_MAX_SHARDS 1000000u
#define PLAN_MAX_QUANTILES 32
#define PLAN_MEM_FRACTION 0.5      /* of a machine's memory for the index (page cache) */
#define PLAN_FANOUT_P 0.99         /* the planned percentile of a search */
#define PLAN_DEFAULT_UTIL 0.65
#define PLAN_COSTS_ENV "FUNNEL_PLAN_COSTS"
#define PLAN_COSTS_NAME "plan-costs.json"

static const char plan_usage[] =
    "usage: funnel plan --docs N --qps Q --p99-ms P [--costs F] [--util U] [--cores C] [--json]\n"
    "\n"
    "Sizes a cluster for N documents, Q searches per second and a p99 search\n"
    "latency of P ms from per-stage costs measured on one machine, and prints\n"
    "shards, replicas and machines with the arithmetic of each step.\n"
    "  --docs N      documents in the corpus (1..10^13)\n"
    "  --qps Q       searches per second at peak (0 < Q <= 10^9)\n"
    "  --p99-ms P    the p99 latency target of a search, coordinator included, ms\n"
    "  --costs F     the measured costs (JSON, docs/cli.md \"funnel plan\"); default:\n"
    "                $FUNNEL_PLAN_COSTS, else plan-costs.json from the build tree\n"
    "                (BUILDDIR/ops/configs), else /etc/funnel/plan-costs.json; the\n"
    "                repository's is ops/configs/plan-costs.json\n"
    "  --util U      target CPU utilisation of a machine at peak, 0 < U <= 1\n"
    "                (default 0.65)\n"
    "  --cores C     cores per machine (default: the costs file's machine; the\n"
    "                per-core costs are assumed to carry over)\n"
    "  --json        one JSON object instead of the text\n"
    "Exit status: 0 a plan, 1 the costs file is unreadable or damaged or no shard\n"
    "count meets the target, 2 usage error.\n";

typedef struct plan_costs {
    char cpu_model[256];
    char measured_by[512];
    char date[64];
    double cores;
    double memory_gib;              /* 0: not given */
    double shard_fixed_us;
    double selection_us_per_doc;
    double coordinator_us_per_query;
    double stage2_us_per_query;
    double merge_us_per_shard;
    double merge_latency_us_per_shard;   /* added to a search's latency per shard (default: merge_us_per_shard) */
    double index_bytes_per_doc;     /* 0: not given */
    int have_window;                /* shard_window given */
    double win_k, win_ovp, win_us;  /* shard_window: selection_k, overprovision, us_per_doc */
    double lat_docs;                /* shard_latency.docs_per_shard */
    double lat_fixed_ms;            /* shard_latency.fixed_ms */
    double lat_samples;             /* 0: not given */
    size_t nq;
    double q[PLAN_MAX_QUANTILES], x[PLAN_MAX_QUANTILES];   /* sorted by q */
    double coord_p99_ms;            /* coordinator_latency_ms.p99 */
} plan_costs;

typedef struct plan_args {
    double docs, qps, p99_ms, util, cores;   /* cores 0: the costs file's */
    const char *costs;
    int json;
} plan_args;

/* snprintf whose truncation is intended (error messages, labels) */
__attribute__((format(printf, 3, 4))) static void sfmt(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, cap, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------ the costs file ---- */

static int cerr(char *err, size_t cap, const char *path, const char *fmt, const char *a)
{
    char m[512];
    sfmt(m, sizeof m, fmt, a);
    sfmt(err, cap, "%s: %s", path, m);
    return -1;
}

/* obj[key] as a finite number in [lo, hi]; absent: *out = dflt when optional */
static int num_field(json_t *obj, const char *key, const char *where, double lo, double hi, int optional,
                     double *out, const char *path, char *err, size_t cap)
{
    json_t *v = json_object_get(obj, key);
    char name[160];
    sfmt(name, sizeof name, "%s%s", where, key);
    if (!v || json_is_null(v)) {
        if (optional) {
            *out = 0;
            return 0;
        }
        return cerr(err, cap, path, "\"%s\" is missing", name);
    }
    if (!json_is_number(v)) return cerr(err, cap, path, "\"%s\" must be a number", name);
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi) {
        char m[256];
        sfmt(m, sizeof m, "%s\" is %g, outside [%g, %g]", name, d, lo, hi);
        return cerr(err, cap, path, "\"%s", m);
    }
    *out = d;
    return 0;
}

static void str_field(json_t *obj, const char *key, char *out, size_t cap)
{
    const char *s = json_string_value(json_object_get(obj, key));
    sfmt(out, cap, "%s", s ? s : "");
}

static int load_costs(const char *path, plan_costs *c, char *err, size_t cap)
{
    memset(c, 0, sizeof *c);
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (je.line <= 0) return cerr(err, cap, path, "%s", je.text);
        char m[300];
        sfmt(m, sizeof m, "line %d column %d: %s (not valid JSON)", je.line, je.column, je.text);
        return cerr(err, cap, path, "%s", m);
    }
    int rc = -1;
    if (!json_is_object(root)) {
        cerr(err, cap, path, "%s", "the costs must be a JSON object");
        goto out;
    }
    json_t *m = json_object_get(root, "machine");
    if (!json_is_object(m)) {
        cerr(err, cap, path, "%s", "\"machine\" (an object: cpu_model, cores) is missing");
        goto out;
    }
    str_field(m, "cpu_model", c->cpu_model, sizeof c->cpu_model);
    str_field(root, "measured_by", c->measured_by, sizeof c->measured_by);
    str_field(root, "date", c->date, sizeof c->date);
    if (num_field(m, "cores", "machine.", 1, PLAN_MAX_CORES, 0, &c->cores, path, err, cap) ||
        num_field(m, "memory_gib", "machine.", 0, 1e7, 1, &c->memory_gib, path, err, cap) ||
        num_field(root, "shard_fixed_us", "", 0, 1e9, 0, &c->shard_fixed_us, path, err, cap) ||
        num_field(root, "selection_us_per_doc", "", 0, 1e6, 0, &c->selection_us_per_doc, path, err, cap) ||
        num_field(root, "coordinator_us_per_query", "", 0, 1e9, 0, &c->coordinator_us_per_query, path, err,
                  cap) ||
        num_field(root, "stage2_us_per_query", "", 0, 1e9, 0, &c->stage2_us_per_query, path, err, cap) ||
        num_field(root, "merge_us_per_shard", "", 0, 1e9, 0, &c->merge_us_per_shard, path, err, cap) ||
        num_field(root, "index_bytes_per_doc", "", 0, 1e12, 1, &c->index_bytes_per_doc, path, err, cap) ||
        num_field(root, "merge_latency_us_per_shard", "", 0, 1e9, 1, &c->merge_latency_us_per_shard, path, err,
                  cap))
        goto out;
    if (!json_object_get(root, "merge_latency_us_per_shard")) c->merge_latency_us_per_shard = c->merge_us_per_shard;
    if (c->shard_fixed_us + c->selection_us_per_doc <= 0) {
        cerr(err, cap, path, "%s", "shard_fixed_us and selection_us_per_doc are both 0: no shard cost");
        goto out;
    }
    json_t *sw = json_object_get(root, "shard_window");
    if (sw && !json_is_null(sw)) {
        if (!json_is_object(sw)) {
            cerr(err, cap, path, "%s", "\"shard_window\" must be an object: selection_k, overprovision, us_per_doc");
            goto out;
        }
        if (num_field(sw, "selection_k", "shard_window.", 1, 1e7, 0, &c->win_k, path, err, cap) ||
            num_field(sw, "overprovision", "shard_window.", 1, 100, 0, &c->win_ovp, path, err, cap) ||
            num_field(sw, "us_per_doc", "shard_window.", 0, 1e6, 0, &c->win_us, path, err, cap))
            goto out;
        c->have_window = 1;
    }
    json_t *cl = json_object_get(root, "coordinator_latency_ms");
    if (!json_is_object(cl)) {
        cerr(err, cap, path, "%s", "\"coordinator_latency_ms\" (an object with \"p99\") is missing");
        goto out;
    }
    if (num_field(cl, "p99", "coordinator_latency_ms.", 0, 1e7, 0, &c->coord_p99_ms, path, err, cap)) goto out;
    json_t *sl = json_object_get(root, "shard_latency");
    if (!json_is_object(sl)) {
        cerr(err, cap, path, "%s",
             "\"shard_latency\" (an object: docs_per_shard, fixed_ms, quantiles_ms) is missing");
        goto out;
    }
    if (num_field(sl, "docs_per_shard", "shard_latency.", 1, PLAN_MAX_DOCS, 0, &c->lat_docs, path, err, cap) ||
        num_field(sl, "fixed_ms", "shard_latency.", 0, 1e7, 0, &c->lat_fixed_ms, path, err, cap) ||
        num_field(sl, "samples", "shard_latency.", 0, 1e15, 1, &c->lat_samples, path, err, cap))
        goto out;
    json_t *qs = json_object_get(sl, "quantiles_ms");
    if (!json_is_object(qs) || json_object_size(qs) < 2) {
        cerr(err, cap, path, "%s",
             "\"shard_latency.quantiles_ms\" must be an object of at least two \"quantile\": ms pairs, "
             "e.g. {\"0.5\": 2.1, \"0.99\": 9.8}");
        goto out;
    }
    if (json_object_size(qs) > PLAN_MAX_QUANTILES) {
        cerr(err, cap, path, "%s", "\"shard_latency.quantiles_ms\" has more than 32 quantiles");
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(qs, key, v) {
        char *end;
        errno = 0;
        double q = strtod(key, &end);
        if (!*key || *end || errno || !(q > 0 && q < 1)) {
            cerr(err, cap, path, "shard_latency.quantiles_ms: key \"%s\" is not a quantile in (0, 1)", key);
            goto out;
        }
        if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0) {
            cerr(err, cap, path, "shard_latency.quantiles_ms[\"%s\"] must be a number of ms >= 0", key);
            goto out;
        }
        size_t i = c->nq++;   /* insertion sort by q */
        while (i > 0 && c->q[i - 1] > q) {
            c->q[i] = c->q[i - 1];
            c->x[i] = c->x[i - 1];
            i--;
        }
        if (i > 0 && c->q[i - 1] == q) {
            cerr(err, cap, path, "shard_latency.quantiles_ms: quantile \"%s\" given twice", key);
            goto out;
        }
        c->q[i] = q;
        c->x[i] = json_number_value(v);
    }
    for (size_t i = 1; i < c->nq; i++)
        if (c->x[i] < c->x[i - 1]) {
            char m[128];
            sfmt(m, sizeof m, "%g ms at %g is below %g ms at %g", c->x[i], c->q[i], c->x[i - 1], c->q[i - 1]);
            cerr(err, cap, path, "shard_latency.quantiles_ms must not decrease with the quantile: %s", m);
            goto out;
        }
    if (c->q[c->nq - 1] < PLAN_FANOUT_P) {
        cerr(err, cap, path, "%s", "shard_latency.quantiles_ms needs a quantile >= 0.99 (the tail is planned)");
        goto out;
    }
    if (c->lat_fixed_ms > c->x[0]) {
        cerr(err, cap, path, "%s", "shard_latency.fixed_ms is above the lowest measured quantile");
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* The default costs file: $FUNNEL_PLAN_COSTS, SELF/configs/ (the build tree:
 * BUILDDIR/ops/funnel next to BUILDDIR/ops/configs), SELF/../etc/funnel/,
 * /etc/funnel/. 0 and the path, or -1 and the places looked at in err. */
static int find_costs(char *out, size_t cap, char *err, size_t ecap)
{
    const char *env = getenv(PLAN_COSTS_ENV);
    if (env && *env) {
        sfmt(out, cap, "%s", env);
        return 0;
    }
    char self[PATH_MAX], cand[3][PATH_MAX + 64];
    int n = 0;
    if (ops_self_dir(self, sizeof self) == 0) {
        sfmt(cand[n++], sizeof cand[0], "%s/configs/%s", self, PLAN_COSTS_NAME);
        sfmt(cand[n++], sizeof cand[0], "%s/../etc/funnel/%s", self, PLAN_COSTS_NAME);
    }
    sfmt(cand[n++], sizeof cand[0], "/etc/funnel/%s", PLAN_COSTS_NAME);
    for (int i = 0; i < n; i++)
        if (access(cand[i], R_OK) == 0) {
            sfmt(out, cap, "%s", cand[i]);
            return 0;
        }
    sfmt(err, ecap, "no costs file: give --costs F (or $%s); looked for %s%s%s%s%s", PLAN_COSTS_ENV, cand[0],
             n > 1 ? ", " : "", n > 1 ? cand[1] : "", n > 2 ? ", " : "", n > 2 ? cand[2] : "");
    return -1;
}

/* ------------------------------------------------------------ the model ---- */

static double zq(double q)   /* z = -ln(1 - q) */
{
    return -log1p(-q);
}

/* The measured shard latency (ms, at lat_docs) at quantile q, given as z = -ln(1 - q). */
static double lat_d0(const plan_costs *c, double z)
{
    size_t n = c->nq;
    if (z <= zq(c->q[0])) return c->x[0];
    for (size_t i = 1; i < n; i++) {
        double z0 = zq(c->q[i - 1]), z1 = zq(c->q[i]);
        if (z <= z1) return c->x[i - 1] + (c->x[i] - c->x[i - 1]) * (z - z0) / (z1 - z0);
    }
    double z0 = zq(c->q[n - 2]), z1 = zq(c->q[n - 1]);
    return c->x[n - 1] + (c->x[n - 1] - c->x[n - 2]) / (z1 - z0) * (z - z1);
}

static double tail_theta(const plan_costs *c)   /* ms per unit of z beyond the last quantile */
{
    size_t n = c->nq;
    return (c->x[n - 1] - c->x[n - 2]) / (zq(c->q[n - 1]) - zq(c->q[n - 2]));
}

/* A shard's share of the selection window with S shards (coordinator/coord.c
 * per_shard): k with one shard, else min(k, ceil(k * overprovision / S)). */
static double window_share(const plan_costs *c, double S)
{
    if (!c->have_window) return 0;
    if (S <= 1) return c->win_k;
    double w = ceil(c->win_k * c->win_ovp / S);
    return w < c->win_k ? w : c->win_k;
}

typedef struct plan_step {     /* the fan-out arithmetic of one shard count */
    double S, d, one_minus_q, z, l_d0, l_d, merge_ms, p99;
} plan_step;

static void fanout(const plan_costs *c, const plan_args *a, double S, plan_step *st)
{
    st->S = S;
    st->d = ceil(a->docs / S);
    st->one_minus_q = -expm1(log(PLAN_FANOUT_P) / S);   /* 1 - 0.99^(1/S) */
    st->z = -log(st->one_minus_q);
    st->l_d0 = lat_d0(c, st->z);
    st->l_d = c->lat_fixed_ms + (st->l_d0 - c->lat_fixed_ms) * st->d / c->lat_docs;
    st->merge_ms = c->merge_latency_us_per_shard * S / 1000.0;
    st->p99 = c->coord_p99_ms + st->merge_ms + st->l_d;
}

/* ----------------------------------------------------------- printing ---- */

/* A number for the arithmetic lines: integers in full, others to a sensible
 * precision. Up to 16 results live at once (a rotating buffer). */
static const char *g(double v)
{
    static char buf[16][48];
    static unsigned k;
    char *b = buf[k++ % 16];
    double a = fabs(v);
    if (a < 1e15 && v == floor(v)) sfmt(b, 48, "%.0f", v);
    else if (a >= 1000) sfmt(b, 48, "%.0f", v);
    else if (a >= 100) sfmt(b, 48, "%.1f", v);
    else if (a >= 1) sfmt(b, 48, "%.3f", v);
    else sfmt(b, 48, "%.4g", v);
    return b;
}

static const char *qname(double q)   /* 0.999 -> "p99.9" */
{
    static char buf[8][24];
    static unsigned k;
    char *b = buf[k++ % 8];
    sfmt(b, 24, "p%.6g", q * 100);
    return b;
}

typedef struct plan_result {
    plan_step best, prev;           /* prev: S - 1 (when S > 1) */
    int have_prev;
    double s_latency, s_memory, d_memory_max;
    double w_share, c_shard, replica_qps, replicas_exact, R, util_r, util_down;
    double c_coord, coords_exact, coords, shard_machines, machines, busy_cores, util_all;
    double cores;
} plan_result;

static int plan_compute(const plan_costs *c, const plan_args *a, plan_result *r, char *err, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->cores = a->cores > 0 ? a->cores : c->cores;
    /* memory: docs per shard at most mem * fraction / bytes per doc */
    r->s_memory = 1;
    if (c->memory_gib > 0 && c->index_bytes_per_doc > 0) {
        r->d_memory_max = floor(c->memory_gib * 1073741824.0 * PLAN_MEM_FRACTION / c->index_bytes_per_doc);
        if (r->d_memory_max < 1) {
            sfmt(err, cap, "a machine of %s GiB cannot hold one document's index (%s bytes)",
                     g(c->memory_gib), g(c->index_bytes_per_doc));
            return -1;
        }
        r->s_memory = ceil(a->docs / r->d_memory_max);
    }
    /* latency: the smallest S meeting the target */
    double smax = a->docs < PLAN_MAX_SHARDS ? a->docs : PLAN_MAX_SHARDS;
    r->s_latency = 0;
    plan_step st, best_seen = {0};
    for (double S = 1; S <= smax; S++) {
        fanout(c, a, S, &st);
        if (S == 1 || st.p99 < best_seen.p99) best_seen = st;
        if (st.p99 <= a->p99_ms) {
            r->s_latency = S;
            break;
        }
    }
    if (r->s_latency == 0) {
        sfmt(err, cap,
                 "no shard count up to %s meets p99 <= %s ms: the lowest is %s ms at %s shards "
                 "(coordinator p99 %s ms + merge %s ms + shard %s ms)",
                 g(smax), g(a->p99_ms), g(best_seen.p99), g(best_seen.S), g(c->coord_p99_ms),
                 g(best_seen.merge_ms), g(best_seen.l_d));
        return 1;
    }
    double S = r->s_latency > r->s_memory ? r->s_latency : r->s_memory;
    if (S > smax) {
        sfmt(err, cap, "the index needs %s shards to fit in memory, more than the %s planned at most",
             g(r->s_memory), g(smax));
        return 1;
    }
    fanout(c, a, S, &r->best);
    if (r->s_latency > 1) {
        fanout(c, a, r->s_latency - 1, &r->prev);
        r->have_prev = 1;
    }
    /* replicas */
    r->w_share = window_share(c, S);
    r->c_shard = c->shard_fixed_us + c->selection_us_per_doc * r->best.d + c->win_us * r->w_share;
    r->replica_qps = r->cores * a->util * 1e6 / r->c_shard;
    r->replicas_exact = a->qps / r->replica_qps;
    r->R = ceil(r->replicas_exact - 1e-9);
    if (r->R < 2) r->R = 2;
    r->util_r = a->qps * r->c_shard / (r->R * r->cores * 1e6);
    r->util_down = a->qps * r->c_shard / ((r->R - 1) * r->cores * 1e6);
    /* coordinators */
    r->c_coord = c->coordinator_us_per_query + c->stage2_us_per_query + c->merge_us_per_shard * S;
    r->coords_exact = a->qps * r->c_coord / (r->cores * a->util * 1e6);
    r->coords = ceil(r->coords_exact - 1e-9);
    if (r->coords < 2) r->coords = 2;
    r->shard_machines = S * r->R;
    r->machines = r->shard_machines + r->coords;
    r->busy_cores = a->qps * (S * r->c_shard + r->c_coord) / 1e6;
    r->util_all = r->busy_cores / (r->machines * r->cores);
    return 0;
}

static void print_text(const plan_costs *c, const plan_args *a, const char *path, const plan_result *r)
{
    const plan_step *b = &r->best;
    printf("funnel plan: N = %s documents, Q = %s searches/s, p99 <= P = %s ms\n", g(a->docs), g(a->qps),
           g(a->p99_ms));
    printf("costs: %s\n", path);
    printf("  measured %s by %s\n", c->date[0] ? c->date : "(no date)",
           c->measured_by[0] ? c->measured_by : "(not recorded)");
    printf("  machine: %s, %s cores%s%s%s; planned with %s cores per machine, target utilisation U = %s\n",
           c->cpu_model[0] ? c->cpu_model : "(cpu model not recorded)", g(c->cores),
           c->memory_gib > 0 ? ", " : "", c->memory_gib > 0 ? g(c->memory_gib) : "",
           c->memory_gib > 0 ? " GiB" : "", g(r->cores), g(a->util));
    printf("\ninputs (measured)\n");
    if (c->have_window)
        printf("  shard CPU per search      c(d, S) = shard_fixed_us + selection_us_per_doc * d + window_us_per_doc * w(S)"
               " = %s + %s * d + %s * w(S) us,\n"
               "                            w(S) = a shard's share of the selection window = min(%s, ceil(%s * %s / S))"
               " (%s with 1 shard)\n",
               g(c->shard_fixed_us), g(c->selection_us_per_doc), g(c->win_us), g(c->win_k), g(c->win_k),
               g(c->win_ovp), g(c->win_k));
    else
        printf("  shard CPU per search      c(d) = shard_fixed_us + selection_us_per_doc * d = %s + %s * d us\n",
               g(c->shard_fixed_us), g(c->selection_us_per_doc));
    printf("  coordinator CPU per search = coordinator_us_per_query + stage2_us_per_query + merge_us_per_shard * S"
           " = %s + %s + %s * S us\n",
           g(c->coordinator_us_per_query), g(c->stage2_us_per_query), g(c->merge_us_per_shard));
    printf("  shard latency at d0 = %s docs/shard (", g(c->lat_docs));
    if (c->lat_samples > 0) printf("%s searches, ", g(c->lat_samples));
    printf("concurrency 1):");
    for (size_t i = 0; i < c->nq; i++) printf(" %s %s", qname(c->q[i]), g(c->x[i]));
    printf(" ms; fixed part f = %s ms\n", g(c->lat_fixed_ms));
    printf("  coordinator's own latency (search minus its slowest shard call) p99 = %s ms;"
           " per shard fanned out to: merge_latency_us_per_shard = %s us\n",
           g(c->coord_p99_ms), g(c->merge_latency_us_per_shard));
    if (c->index_bytes_per_doc > 0) printf("  index size = %s bytes per document\n", g(c->index_bytes_per_doc));

    printf("\n1. shards: fan-out tail latency\n");
    printf("  a search waits for the slowest of S shards; with independent shard latencies of CDF F,\n"
           "  P(max <= x) = F(x)^S, so the search's p99 is the shard quantile q_S = 0.99^(1/S) ~ 1 - 0.01/S\n");
    printf("  L_d(q) = f + (L_d0(q) - f) * d / d0   (the variable part grows linearly with docs per shard d)\n");
    printf("  L_d0(q): interpolated linearly in z = -ln(1 - q) between the measured quantiles; beyond %s:\n",
           qname(c->q[c->nq - 1]));
    printf("    L_d0(q) = L_d0(%s) + theta * (z - z(%s)), theta = (L_d0(%s) - L_d0(%s)) / (z(%s) - z(%s))"
           " = (%s - %s) / (%s - %s) = %s ms (exponential tail)\n",
           qname(c->q[c->nq - 1]), qname(c->q[c->nq - 1]), qname(c->q[c->nq - 1]), qname(c->q[c->nq - 2]),
           qname(c->q[c->nq - 1]), qname(c->q[c->nq - 2]), g(c->x[c->nq - 1]), g(c->x[c->nq - 2]),
           g(zq(c->q[c->nq - 1])), g(zq(c->q[c->nq - 2])), g(tail_theta(c)));
    printf("  p99(S) = coordinator p99 + merge_latency_us_per_shard * S / 1000 + L_{N/S}(q_S); S = the smallest with"
           " p99(S) <= P\n");
    const plan_step *show[2] = {r->have_prev ? &r->prev : NULL, b};
    for (int i = 0; i < 2; i++) {
        const plan_step *s = show[i];
        if (!s) continue;
        printf("  S = %s:\n", g(s->S));
        printf("    d = ceil(N / S) = ceil(%s / %s) = %s docs\n", g(a->docs), g(s->S), g(s->d));
        printf("    1 - q_S = 1 - 0.99^(1/%s) = %s (q_S = %s), z = -ln(1 - q_S) = %s\n", g(s->S),
               g(s->one_minus_q), qname(1 - s->one_minus_q), g(s->z));
        printf("    L_d0(q_S) = %s ms\n", g(s->l_d0));
        printf("    L_d(q_S) = %s + (%s - %s) * %s / %s = %s ms\n", g(c->lat_fixed_ms), g(s->l_d0),
               g(c->lat_fixed_ms), g(s->d), g(c->lat_docs), g(s->l_d));
        printf("    p99(%s) = %s + %s * %s / 1000 + %s = %.3f ms %s %s ms\n", g(s->S), g(c->coord_p99_ms),
               g(c->merge_latency_us_per_shard), g(s->S), g(s->l_d), s->p99, s->p99 <= a->p99_ms ? "<=" : ">",
               g(a->p99_ms));
    }
    printf("  shards for latency = %s\n", g(r->s_latency));
    if (r->d_memory_max > 0)
        printf("  shards for memory = ceil(N / floor(memory_gib * 2^30 * %g / index_bytes_per_doc))"
               " = ceil(%s / floor(%s * 2^30 * %g / %s)) = ceil(%s / %s) = %s\n",
               PLAN_MEM_FRACTION, g(a->docs), g(c->memory_gib), PLAN_MEM_FRACTION, g(c->index_bytes_per_doc),
               g(a->docs), g(r->d_memory_max), g(r->s_memory));
    else
        printf("  shards for memory: not planned (the costs give no index_bytes_per_doc or machine.memory_gib)\n");
    printf("  S = max(%s, %s) = %s shards of d = %s docs; planned p99 = %.3f ms\n", g(r->s_latency),
           g(r->s_memory), g(b->S), g(b->d), b->p99);

    printf("\n2. replicas per shard: throughput (one shard replica per machine)\n");
    if (c->have_window)
        printf("  w(%s) = %s; c(d, S) = %s + %s * %s + %s * %s = %s us CPU per search per shard\n", g(b->S),
               g(r->w_share), g(c->shard_fixed_us), g(c->selection_us_per_doc), g(b->d), g(c->win_us),
               g(r->w_share), g(r->c_shard));
    else
        printf("  c(d) = %s + %s * %s = %s us CPU per search per shard\n", g(c->shard_fixed_us),
               g(c->selection_us_per_doc), g(b->d), g(r->c_shard));
    printf("  replica capacity = cores * U * 10^6 / c(d) = %s * %s * 10^6 / %s = %s searches/s\n", g(r->cores),
           g(a->util), g(r->c_shard), g(r->replica_qps));
    printf("  R = max(2, ceil(Q / capacity)) = max(2, ceil(%s / %s)) = max(2, ceil(%.3f)) = %s replicas"
           " (at least 2 for availability)\n",
           g(a->qps), g(r->replica_qps), r->replicas_exact, g(r->R));
    printf("  utilisation = Q * c(d) / (R * cores * 10^6) = %s * %s / (%s * %s * 10^6) = %s;"
           " one replica down: %s\n",
           g(a->qps), g(r->c_shard), g(r->R), g(r->cores), g(r->util_r), g(r->util_down));

    printf("\n3. coordinators\n");
    printf("  coordinator CPU per search = %s + %s + %s * %s = %s us\n", g(c->coordinator_us_per_query),
           g(c->stage2_us_per_query), g(c->merge_us_per_shard), g(b->S), g(r->c_coord));
    printf("  coordinators = max(2, ceil(Q * %s / (cores * U * 10^6))) = max(2, ceil(%.3f)) = %s\n", g(r->c_coord),
           r->coords_exact, g(r->coords));

    printf("\n4. machines (%s cores each)\n", g(r->cores));
    printf("  shard machines = S * R = %s * %s = %s\n", g(b->S), g(r->R), g(r->shard_machines));
    printf("  machines = %s + %s = %s\n", g(r->shard_machines), g(r->coords), g(r->machines));
    printf("  busy cores at Q = Q * (S * c(d) + coordinator CPU) / 10^6 = %s * (%s * %s + %s) / 10^6 = %s"
           " of %s (%s)\n",
           g(a->qps), g(b->S), g(r->c_shard), g(r->c_coord), g(r->busy_cores), g(r->machines * r->cores),
           g(r->util_all));
    printf("\nplan: %s shards x %s replicas = %s shard machines + %s coordinators = %s machines;"
           " %s docs per shard; p99 %.3f ms (target %s)\n",
           g(b->S), g(r->R), g(r->shard_machines), g(r->coords), g(r->machines), g(b->d), b->p99,
           g(a->p99_ms));
}

static int print_json(const plan_costs *c, const plan_args *a, const char *path, const plan_result *r)
{
    const plan_step *b = &r->best;
    json_t *o = json_object();
    if (!o) goto oom;
    struct { const char *k; double v; int integer; } f[] = {
        {"docs", a->docs, 1}, {"qps", a->qps, 0}, {"p99_ms", a->p99_ms, 0}, {"cores", r->cores, 0},
        {"util", a->util, 0}, {"shards", b->S, 1}, {"shards_for_latency", r->s_latency, 1},
        {"shards_for_memory", r->s_memory, 1}, {"docs_per_shard", b->d, 1},
        {"fanout_quantile", 1 - b->one_minus_q, 0}, {"fanout_one_minus_q", b->one_minus_q, 0},
        {"shard_latency_d0_ms", b->l_d0, 0}, {"shard_latency_ms", b->l_d, 0}, {"merge_ms", b->merge_ms, 0},
        {"planned_p99_ms", b->p99, 0}, {"tail_theta_ms", tail_theta(c), 0}, {"window_share", r->w_share, 1},
        {"shard_cpu_us", r->c_shard, 0}, {"replica_qps", r->replica_qps, 0},
        {"replicas_exact", r->replicas_exact, 0}, {"replicas", r->R, 1}, {"utilisation", r->util_r, 0},
        {"utilisation_one_replica_down", r->util_down, 0}, {"coordinator_cpu_us", r->c_coord, 0},
        {"coordinators_exact", r->coords_exact, 0}, {"coordinators", r->coords, 1},
        {"shard_machines", r->shard_machines, 1}, {"machines", r->machines, 1},
        {"busy_cores", r->busy_cores, 0}, {"utilisation_all", r->util_all, 0},
    };
    if (json_object_set_new(o, "costs", json_string(path)) != 0) goto oom;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (json_object_set_new(o, f[i].k, f[i].integer ? json_integer((json_int_t)f[i].v) : json_real(f[i].v)) != 0)
            goto oom;
    char *t = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
    json_decref(o);
    o = NULL;
    if (!t) goto oom;
    printf("%s\n", t);
    free(t);
    return OPS_EXIT_OK;
oom:
    json_decref(o);
    fprintf(stderr, "funnel plan: out of memory\n");
    return OPS_EXIT_FAIL;
}

/* --------------------------------------------------------------- main ---- */

static int parse_num(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int ops_cmd_plan(int argc, char **argv)
{
    static const struct option lo[] = {
        {"docs", required_argument, 0, 'n'},  {"qps", required_argument, 0, 'q'},
        {"p99-ms", required_argument, 0, 'p'}, {"costs", required_argument, 0, 'c'},
        {"util", required_argument, 0, 'u'},  {"cores", required_argument, 0, 'C'},
        {"json", no_argument, 0, 'j'},        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    plan_args a = {.docs = -1, .qps = -1, .p99_ms = -1, .util = PLAN_DEFAULT_UTIL};
    const char *flag = NULL, *range = NULL;
    int c;
    optind = 1;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (parse_num(optarg, &a.docs) || a.docs != floor(a.docs) || !(a.docs >= 1 && a.docs <= PLAN_MAX_DOCS)) {
                flag = "docs", range = "a whole number of documents, 1..10^13";
                goto bad;
            }
            break;
        case 'q':
            if (parse_num(optarg, &a.qps) || !(a.qps > 0 && a.qps <= PLAN_MAX_QPS)) {
                flag = "qps", range = "searches per second, 0 < Q <= 10^9";
                goto bad;
            }
            break;
        case 'p':
            if (parse_num(optarg, &a.p99_ms) || !(a.p99_ms > 0 && a.p99_ms <= PLAN_MAX_P99_MS)) {
                flag = "p99-ms", range = "milliseconds, 0 < P <= 3600000";
                goto bad;
            }
            break;
        case 'c': a.costs = optarg; break;
        case 'u':
            if (parse_num(optarg, &a.util) || !(a.util > 0 && a.util <= 1)) {
                flag = "util", range = "a utilisation, 0 < U <= 1";
                goto bad;
            }
            break;
        case 'C':
            if (parse_num(optarg, &a.cores) || !(a.cores >= 1 && a.cores <= PLAN_MAX_CORES)) {
                flag = "cores", range = "cores per machine, 1..4096";
                goto bad;
            }
            break;
        case 'j': a.json = 1; break;
        case 'h': fputs(plan_usage, stdout); return OPS_EXIT_OK;
        default: fputs(plan_usage, stderr); return OPS_EXIT_USAGE;
        }
    }
    const char *missing = a.docs < 0 ? "--docs" : a.qps < 0 ? "--qps" : a.p99_ms < 0 ? "--p99-ms" : NULL;
    if (missing) {
        fprintf(stderr, "funnel plan: %s is required\n", missing);
        fputs(plan_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    if (optind != argc) {
        fprintf(stderr, "funnel plan: unexpected argument '%s'\n", argv[optind]);
        return OPS_EXIT_USAGE;
    }
    char path[PATH_MAX + 64], err[1024];
    if (a.costs) sfmt(path, sizeof path, "%s", a.costs);
    else if (find_costs(path, sizeof path, err, sizeof err) != 0) {
        fprintf(stderr, "funnel plan: %s\n", err);
        return OPS_EXIT_FAIL;
    }
    plan_costs *costs = malloc(sizeof *costs);
    if (!costs) {
        fprintf(stderr, "funnel plan: out of memory\n");
        return OPS_EXIT_FAIL;
    }
    int ret = OPS_EXIT_FAIL;
    if (load_costs(path, costs, err, sizeof err) != 0) {
        fprintf(stderr, "funnel plan: bad costs file %s\n", err);
        goto out;
    }
    plan_result r;
    if (plan_compute(costs, &a, &r, err, sizeof err) != 0) {
        fprintf(stderr, "funnel plan: %s\n", err);
        goto out;
    }
    ret = a.json ? print_json(costs, &a, path, &r) : (print_text(costs, &a, path, &r), OPS_EXIT_OK);
    if (fflush(stdout) != 0) ret = OPS_EXIT_FAIL;
out:
    free(costs);
    return ret;

bad:
    fprintf(stderr, "funnel plan: bad value for --%s: '%s' (%s)\n", flag, optarg, range);
    return OPS_EXIT_USAGE;
}
