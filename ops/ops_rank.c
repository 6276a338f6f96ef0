/* ops_rank.c - learning-to-rank commands: `funnel train`, `funnel predict`,
 * `funnel model import-xgboost|info` and `funnel rank-eval` (rank/, docs/ltr.md).
 *
 * Data errors are reported as "funnel CMD: error: FILE:LINE: reason" (exit 1);
 * flag errors print the usage text (exit 2). */
#include "ops.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataset.h"
#include "guard.h"
#include "metrics.h"
#include "model.h"
#include "train.h"
#include "xgboost.h"

/* ---- shared helpers ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-' || v > max) return -1;
    *out = (unsigned)v;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-') return -1;
    *out = (uint64_t)v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Print a data/model error: the library's message is already "FILE:LINE:
 * reason" for parse errors; system errors get the path prepended. */
static int report(const char *cmd, const char *path, const fn_errbuf *eb, int rc)
{
    if (eb->msg[0])
        fprintf(stderr, "funnel %s: error: %s\n", cmd, eb->msg);
    else
        fprintf(stderr, "funnel %s: error: %s: %s\n", cmd, path ? path : "", fn_strerror(rc));
    return OPS_EXIT_FAIL;
}

/* --help (c == 'h') prints usage to stdout and succeeds; any other getopt
 * result is a usage error. */
static int help_or_usage(int c, const char *usage)
{
    fputs(usage, c == 'h' ? stdout : stderr);
    return c == 'h' ? OPS_EXIT_OK : OPS_EXIT_USAGE;
}

/* Usage error for missing required options or stray positional arguments. */
static int missing_args(const char *cmd, const char *required, int stray, const char *usage)
{
    fprintf(stderr, "funnel %s: %s required%s\n", cmd, required,
            stray ? " (and no positional arguments)" : "");
    fputs(usage, stderr);
    return OPS_EXIT_USAGE;
}

/* Data options shared by train, predict and rank-eval. */
typedef struct data_opts {
    const char *group_file;
    const char *names_file;
    int zero_based;
} data_opts;

enum { OPT_GROUP = 1000, OPT_ZERO_BASED, OPT_NAMES };

#define DATA_OPTIONS                                                                        \
    {"group", required_argument, 0, OPT_GROUP}, {"zero-based", no_argument, 0, OPT_ZERO_BASED}, \
        {"names", required_argument, 0, OPT_NAMES}

/* Handles the three data flags; returns 1 if c was one of them. */
static int data_opt(data_opts *d, int c)
{
    switch (c) {
    case OPT_GROUP: d->group_file = optarg; return 1;
    case OPT_ZERO_BASED: d->zero_based = 1; return 1;
    case OPT_NAMES: d->names_file = optarg; return 1;
    default: return 0;
    }
}

/* Load path; nfeatures 0 = infer. Reports errors itself. */
static int load_data(const char *cmd, const char *path, const char *group_file,
                     const data_opts *dopt, size_t nfeatures, rank_dataset *out)
{
    rank_dataset_opts o = {.group_file = group_file,
                           .names_file = dopt->names_file,
                           .zero_based = dopt->zero_based,
                           .nfeatures = nfeatures};
    fn_errbuf eb = {{0}};
    memset(out, 0, sizeof *out);
    int rc = rank_dataset_load(path, &o, out, &eb);
    if (rc != 0) {
        memset(out, 0, sizeof *out);    /* the loader frees what it took */
        report(cmd, path, &eb, rc);
        return -1;
    }
    return 0;
}

/* Load path with at least `want` columns (the model's or the training set's
 * width): a file whose largest feature id is smaller is read again padded. */
static int load_data_width(const char *cmd, const char *path, const char *group_file,
                           const data_opts *dopt, size_t want, rank_dataset *out)
{
    if (load_data(cmd, path, group_file, dopt, 0, out) != 0) return -1;
    if (out->nfeatures >= want) return 0;
    rank_dataset_free(out);
    return load_data(cmd, path, group_file, dopt, want, out);
}

static const char *objective_name(enum rank_objective o)
{
    switch (o) {
    case RANK_OBJ_LAMBDARANK: return "lambdarank";
    case RANK_OBJ_BINARY: return "binary";
    case RANK_OBJ_LOGISTIC: return "logistic";
    }
    return "?";
}

/* ---- funnel train ---- */

/* --guard-drop: the guard again on tr with column NAME missing; the model
 * without it is kept unless the one with it passes the rule a model needs to
 * leave the base order (guard.h), now against the model without it, on the
 * same inner folds (same seed): a better mean, better on a strict majority of
 * the folds and, for lambdarank, a paired t of the per-query NDCG@10 gain >=
 * --guard-min-t. A column is one more way to fit noise: on cranfield a stage-2
 * model with vec_sim won 4 of 5 inner folds by +0.007 (t below 1) and lost
 * 0.014 on the held-out fold. *grd and *model are replaced when the column
 * goes. 0, or an error code (eb). */
static int guard_drop(const rank_dataset *tr, const char *name,
                      const rank_guard_params *grp, rank_guard_report *grd, rank_model_t **model, fn_errbuf *eb)
{
    long col = -1;
    for (size_t i = 0; tr->feature_names && i < tr->nfeatures; i++)
        if (tr->feature_names[i] && strcmp(tr->feature_names[i], name) == 0) col = (long)i;
    if (col < 0) {
        fprintf(stderr, "guard-drop: the data names no %s: nothing to drop\n", name);
        return 0;
    }
    size_t present = 0;
    for (size_t r = 0; r < tr->rows; r++) present += !isnan(tr->X[r * tr->nfeatures + (size_t)col]);
    if (!present) {
        fprintf(stderr, "guard-drop: %s is missing in every row: the model cannot use it\n", name);
        return 0;
    }
    rank_dataset td = *tr;   /* shallow: only X is its own */
    if (!(td.X = malloc(tr->rows * tr->nfeatures * sizeof *td.X))) return fn_seterr(eb, -ENOMEM, "out of memory");
    memcpy(td.X, tr->X, tr->rows * tr->nfeatures * sizeof *td.X);
    for (size_t r = 0; r < tr->rows; r++) td.X[r * tr->nfeatures + (size_t)col] = NAN;
    rank_guard_report g2;
    memset(&g2, 0, sizeof g2);
    rank_model_t *m2 = NULL;
    int rc = rank_guard_train(&td, grp, &g2, &m2, eb);
    free(td.X);
    if (rc) return rc;
    const rank_guard_cand *a = &grd->cand[grd->chosen], *b = &g2.cand[g2.chosen];
    int lower_better = grd->objective == RANK_OBJ_LOGISTIC;
    unsigned wins = 0;
    for (unsigned k = 0; k < grd->folds; k++)
        wins += lower_better ? a->fold[k] < b->fold[k] : a->fold[k] > b->fold[k];
    double t = lower_better ? 0 : rank_guard_paired_t(a, b, grd->nqueries);
    int keep_with = (lower_better ? a->mean < b->mean : a->mean > b->mean) && 2 * wins > grd->folds &&
                    (lower_better || t >= grp->min_t);
    char tbuf[64] = "";
    if (!lower_better) snprintf(tbuf, sizeof tbuf, ", paired t %.2f (needs >= %.2f)", t, grp->min_t);
    fprintf(stderr, "guard-drop %s: with it %s mean %.6f, without it %s mean %.6f; with it better on %u of %u "
            "inner folds%s: %s\n", name, a->name, a->mean, b->name, b->mean, wins, grd->folds, tbuf,
            keep_with ? "kept" : "dropped");
    if (keep_with) {
        rank_model_free(m2);
        rank_guard_report_free(&g2);
        return 0;
    }
    rank_model_free(*model);
    *model = m2;
    rank_guard_report_free(grd);
    *grd = g2;
    return 0;
}

static const char train_usage[] =
    "usage: funnel train --data TRAIN [--valid VALID] --objective lambdarank|binary|logistic\n"
    "                    --out MODEL [options]\n"
    "\n"
    "Trains a model on SVMlight/LETOR data and writes it in the funnel model format\n"
    "(docs/ltr.md). lambdarank: LambdaMART (gradient-boosted trees, lambdas\n"
    "optimising NDCG@k); binary: pointwise GBDT on log-loss (labels > 0 positive);\n"
    "logistic: L2-regularised logistic regression.\n"
    "Every --every rounds it prints training (and validation) NDCG@1,3,5,10\n"
    "(binary: log-loss), then a summary with the trees kept and the seconds.\n"
    "  --data FILE          training data (groups: --group, FILE.query or qid:)\n"
    "  --valid FILE         validation data (metrics, early stopping; groups:\n"
    "                       --valid-group or FILE.query or qid:)\n"
    "  --out MODEL          model file to write\n"
    "Trees (lambdarank, binary):\n"
    "  --trees N            boosting rounds (100)\n"
    "  --depth D            maximum depth (6; 0 = unlimited)\n"
    "  --leaves L           maximum leaves per tree (2^depth; --leaves alone\n"
    "                       lifts the depth limit, as LightGBM)\n"
    "  --lr R               learning rate (0.1)\n"
    "  --min-leaf M         minimum documents per leaf (1)\n"
    "  --min-child-weight H minimum hessian sum per leaf (trainer default)\n"
    "  --l2 X               L2 regularisation of leaf values (1.0)\n"
    "  --min-gain X         minimum split gain (0)\n"
    "  --subsample R        row (query, for lambdarank) sampling per tree (1.0)\n"
    "  --colsample R        feature sampling per tree (1.0)\n"
    "  --bins B             histogram bins per feature (256)\n"
    "  --ndcg-k K           lambdas optimise NDCG@K (10; 0 = whole list)\n"
    "  --early-stopping N   stop after N rounds without validation improvement\n"
    "                       and keep the best round's trees (0 = off; needs --valid)\n"
    "  --seed S             seed for the sampling (1)\n"
    "  --threads T          training threads (1); the model does not depend on T\n"
    "  --every N            print metrics every N rounds (10; 0 = only the summary)\n"
    "Logistic regression:\n"
    "  --C X                inverse L2 strength, as scikit-learn (1.0)\n"
    "  --max-iter N         optimizer iterations (200)\n"
    "  --tol X              gradient-norm tolerance (1e-8)\n"
    "  --no-intercept       no bias term\n"
    "Base margin (lambdarank, binary):\n"
    "  --base-feature NAME  start every score at W * NAME (a named column, or a\n"
    "                       feature id): the trees fit what it misses; the model\n"
    "                       keeps 'weight NAME W' (default with --guard: bm25f)\n"
    "  --base-weight W      W (default: fitted on the training data)\n"
    "Guarded selection (lambdarank, logistic; docs/ltr.md):\n"
    "  --guard              choose the model by inner cross-validation by query on\n"
    "                       --data only: lambdarank keeps the base order unless a\n"
    "                       regularised LambdaMART over the base margin beats it on\n"
    "                       the mean, on most inner folds and with paired t >=\n"
    "                       --guard-min-t; logistic picks C. The report goes to\n"
    "                       stderr. Settings flags (--trees, --C, ...) are refused.\n"
    "  --inner-folds K      inner folds (5)\n"
    "  --guard-min-t T      paired t a model needs against the base order (2.5)\n"
    "  --train-depth N      lambdarank models train on each query's top N documents\n"
    "                       by the base feature (100; 0 = all); scored on all\n"
    "  --guard-alt NAME     an alternative ranking score tried alone and\n"
    "                       interpolated with the base (default: prf_rm3 when the\n"
    "                       data names it; none = no such candidates)\n"
    "  --guard-drop NAME    also run the guard with NAME's column missing, and keep\n"
    "                       that model unless the one using NAME has the better\n"
    "                       inner-CV mean, wins most inner folds AND (lambdarank)\n"
    "                       has a paired t >= --guard-min-t over it (a feature must\n"
    "                       earn its place; skipped when the column is all missing)\n"
    "  --threads T          with --guard: trainings run in parallel (default 2)\n"
    "Data:\n"
    "  --group FILE         group sizes for --data (default FILE.query if present)\n"
    "  --valid-group FILE   group sizes for --valid\n"
    "  --zero-based         feature ids start at 0 (default 1, as LETOR/XGBoost)\n"
    "  --names FILE         feature names, one a line, stored in the model (a\n"
    "                       '# features: NAME ...' first line does the same)\n"
    "Exit status: 0 ok, 1 bad data or training failed, 2 usage error.\n";

typedef struct train_log {
    enum rank_objective obj;
    unsigned every, trees;
    int has_valid;
    double last_train[4], last_valid[4];
    unsigned last_round, printed_round;
} train_log;

static void print_metrics(const char *what, enum rank_objective obj, const double m[4])
{
    if (obj == RANK_OBJ_BINARY) {
        printf("%s logloss %.6f", what, m[0]);
        return;
    }
    printf("%s ndcg@1 %.4f ndcg@3 %.4f ndcg@5 %.4f ndcg@10 %.4f", what, m[0], m[1], m[2], m[3]);
}

static void print_round(const train_log *tl)
{
    printf("round %u: ", tl->last_round);
    print_metrics("train", tl->obj, tl->last_train);
    if (tl->has_valid) print_metrics("  valid", tl->obj, tl->last_valid);
    putchar('\n');
    fflush(stdout);
}

static int on_round(void *ud, unsigned round, const double train_metric[4], const double *valid)
{
    train_log *tl = ud;
    memcpy(tl->last_train, train_metric, sizeof tl->last_train);
    if (valid) memcpy(tl->last_valid, valid, sizeof tl->last_valid);
    tl->last_round = round;
    if (tl->every && (round == 1 || round % tl->every == 0 || round == tl->trees)) {
        print_round(tl);
        tl->printed_round = round;
    }
    return 0;
}

/* Column of a feature given by name (the data's names) or, failing that, by
 * feature id in file numbering; -1 with a message if neither. */
static long resolve_feature(const rank_dataset *d, const char *data, const char *what, int zero_based,
                            const char *flag)
{
    for (size_t i = 0; d->feature_names && i < d->nfeatures; i++)
        if (d->feature_names[i] && strcmp(d->feature_names[i], what) == 0) return (long)i;
    unsigned id;
    if (parse_uint(what, UINT_MAX, &id) == 0) {
        size_t base = zero_based ? 0 : 1;
        if (id >= base && id - base < d->nfeatures) return (long)(id - base);
    }
    fprintf(stderr, "funnel train: error: %s: no feature named '%s'", data, what);
    if (d->feature_names) {
        size_t named = 0;
        for (size_t i = 0; i < d->nfeatures; i++) named += d->feature_names[i] != NULL;
        fprintf(stderr, " (it names %zu:", named);
        for (size_t i = 0, k = 0; i < d->nfeatures && k < 8; i++)
            if (d->feature_names[i]) fprintf(stderr, "%s %s", k++ ? "," : "", d->feature_names[i]);
        fprintf(stderr, "%s)", named > 8 ? ", ..." : "");
    } else {
        fprintf(stderr, " (it has no feature names)");
    }
    fprintf(stderr, "; %s takes a name or a feature id %d..%zu\n", flag, zero_based ? 0 : 1,
            d->nfeatures - (zero_based ? 1 : 0));
    return -1;
}

/* Training and validation files with names must name the same columns:
 * positions are what the model sees. */
static int same_names(const rank_dataset *a, const char *pa, const rank_dataset *b, const char *pb)
{
    if (!a->feature_names || !b->feature_names) return 1;
    size_t n = a->nfeatures < b->nfeatures ? a->nfeatures : b->nfeatures;
    for (size_t i = 0; i < n; i++) {
        const char *x = a->feature_names[i], *y = b->feature_names[i];
        if (x && y && strcmp(x, y) != 0) {
            fprintf(stderr, "funnel train: error: %s names column %zu '%s' but %s names it '%s'\n", pb,
                    i + 1, y, pa, x);
            return 0;
        }
    }
    return 1;
}

#define TRAIN_USAGE_ERR(...)                              \
    do {                                                  \
        fprintf(stderr, "funnel train: " __VA_ARGS__);    \
        fputc('\n', stderr);                              \
        return OPS_EXIT_USAGE;                            \
    } while (0)

int ops_cmd_train(int argc, char **argv)
{
    enum {
        O_DATA = 1, O_VALID, O_OBJ, O_OUT, O_TREES, O_DEPTH, O_LEAVES, O_LR, O_MINLEAF,
        O_MCW, O_L2, O_MINGAIN, O_SUB, O_COL, O_BINS, O_NDCGK, O_ES, O_SEED, O_THREADS,
        O_EVERY, O_C, O_MAXITER, O_TOL, O_NOINT, O_VGROUP, O_GUARD, O_BASEF, O_BASEW, O_IFOLDS,
        O_MINT, O_TDEPTH, O_ALT, O_DROP
    };
    static const struct option lo[] = {
        {"data", required_argument, 0, O_DATA},      {"valid", required_argument, 0, O_VALID},
        {"objective", required_argument, 0, O_OBJ},  {"out", required_argument, 0, O_OUT},
        {"trees", required_argument, 0, O_TREES},    {"depth", required_argument, 0, O_DEPTH},
        {"leaves", required_argument, 0, O_LEAVES},  {"lr", required_argument, 0, O_LR},
        {"min-leaf", required_argument, 0, O_MINLEAF},
        {"min-child-weight", required_argument, 0, O_MCW},
        {"l2", required_argument, 0, O_L2},          {"min-gain", required_argument, 0, O_MINGAIN},
        {"subsample", required_argument, 0, O_SUB},  {"colsample", required_argument, 0, O_COL},
        {"bins", required_argument, 0, O_BINS},      {"ndcg-k", required_argument, 0, O_NDCGK},
        {"early-stopping", required_argument, 0, O_ES},
        {"seed", required_argument, 0, O_SEED},      {"threads", required_argument, 0, O_THREADS},
        {"every", required_argument, 0, O_EVERY},    {"C", required_argument, 0, O_C},
        {"max-iter", required_argument, 0, O_MAXITER}, {"tol", required_argument, 0, O_TOL},
        {"no-intercept", no_argument, 0, O_NOINT},   {"valid-group", required_argument, 0, O_VGROUP},
        {"guard", no_argument, 0, O_GUARD},          {"base-feature", required_argument, 0, O_BASEF},
        {"base-weight", required_argument, 0, O_BASEW},
        {"inner-folds", required_argument, 0, O_IFOLDS},
        {"guard-min-t", required_argument, 0, O_MINT},
        {"train-depth", required_argument, 0, O_TDEPTH},
        {"guard-alt", required_argument, 0, O_ALT},  {"guard-drop", required_argument, 0, O_DROP},
        DATA_OPTIONS,                                {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *data = NULL, *valid_path = NULL, *out = NULL, *obj = NULL, *vgroup = NULL;
    data_opts dopt = {0};
    rank_gbdt_params gp;
    rank_logreg_params lp;
    rank_gbdt_defaults(&gp);
    rank_logreg_defaults(&lp);
    unsigned every = 10;
    int depth_set = 0, leaves_set = 0;
    int guard = 0, threads_set = 0, tdepth_set = 0;
    const char *settings_flag = NULL;   /* a settings flag --guard refuses */
    const char *base_feature = NULL;
    const char *alt_feature = NULL;     /* --guard-alt; NULL: prf_rm3 if the data names it */
    const char *drop_feature = NULL;    /* --guard-drop: also guard without this column, keep the better */
    double base_weight = NAN;           /* NaN: fitted */
    rank_guard_params grp;
    rank_guard_defaults(&grp);
    int c, li = -1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, &li)) != -1) {
        if (data_opt(&dopt, c)) continue;
        if ((c >= O_TREES && c <= O_ES) || (c >= O_C && c <= O_NOINT)) settings_flag = lo[li].name;
        li = -1;
        switch (c) {
        case O_GUARD: guard = 1; break;
        case O_BASEF: base_feature = optarg; break;
        case O_BASEW:
            if (parse_double(optarg, -1e300, 1e300, &base_weight))
                TRAIN_USAGE_ERR("--base-weight must be a number");
            break;
        case O_IFOLDS:
            if (parse_uint(optarg, 1000, &grp.inner_folds) || grp.inner_folds < 2)
                TRAIN_USAGE_ERR("--inner-folds must be 2..1000");
            break;
        case O_MINT:
            if (parse_double(optarg, 0, 1e300, &grp.min_t)) TRAIN_USAGE_ERR("--guard-min-t must be >= 0");
            break;
        case O_TDEPTH: {
            unsigned td;
            if (parse_uint(optarg, UINT_MAX, &td)) TRAIN_USAGE_ERR("--train-depth must be >= 0");
            grp.train_depth = td;
            tdepth_set = 1;
            break;
        }
        case O_ALT: alt_feature = optarg; break;
        case O_DROP: drop_feature = optarg; break;
        case O_DATA: data = optarg; break;
        case O_VALID: valid_path = optarg; break;
        case O_VGROUP: vgroup = optarg; break;
        case O_OUT: out = optarg; break;
        case O_OBJ: obj = optarg; break;
        case O_TREES:
            if (parse_uint(optarg, 1000000, &gp.trees) || !gp.trees)
                TRAIN_USAGE_ERR("--trees must be 1..1000000");
            break;
        case O_DEPTH:
            if (parse_uint(optarg, 64, &gp.max_depth)) TRAIN_USAGE_ERR("--depth must be 0..64");
            depth_set = 1;
            break;
        case O_LEAVES:
            if (parse_uint(optarg, 1u << 20, &gp.max_leaves) || gp.max_leaves < 2)
                TRAIN_USAGE_ERR("--leaves must be 2..1048576");
            leaves_set = 1;
            break;
        case O_LR:
            if (parse_double(optarg, 1e-12, 1e6, &gp.learning_rate))
                TRAIN_USAGE_ERR("--lr must be a positive number");
            break;
        case O_MINLEAF:
            if (parse_uint(optarg, UINT_MAX, &gp.min_leaf) || !gp.min_leaf)
                TRAIN_USAGE_ERR("--min-leaf must be a positive integer");
            break;
        case O_MCW:
            if (parse_double(optarg, 0, 1e300, &gp.min_child_weight))
                TRAIN_USAGE_ERR("--min-child-weight must be >= 0");
            break;
        case O_L2:
            if (parse_double(optarg, 0, 1e300, &gp.lambda_l2)) TRAIN_USAGE_ERR("--l2 must be >= 0");
            break;
        case O_MINGAIN:
            if (parse_double(optarg, 0, 1e300, &gp.min_split_gain))
                TRAIN_USAGE_ERR("--min-gain must be >= 0");
            break;
        case O_SUB:
            if (parse_double(optarg, 1e-9, 1, &gp.row_subsample) )
                TRAIN_USAGE_ERR("--subsample must be in (0, 1]");
            break;
        case O_COL:
            if (parse_double(optarg, 1e-9, 1, &gp.feature_subsample))
                TRAIN_USAGE_ERR("--colsample must be in (0, 1]");
            break;
        case O_BINS:
            if (parse_uint(optarg, 65536, &gp.max_bins) || gp.max_bins < 2)
                TRAIN_USAGE_ERR("--bins must be 2..65536");
            break;
        case O_NDCGK:
            if (parse_uint(optarg, UINT_MAX, &gp.ndcg_k)) TRAIN_USAGE_ERR("--ndcg-k must be >= 0");
            break;
        case O_ES:
            if (parse_uint(optarg, UINT_MAX, &gp.early_stopping))
                TRAIN_USAGE_ERR("--early-stopping must be >= 0");
            break;
        case O_SEED:
            if (parse_u64(optarg, &gp.seed)) TRAIN_USAGE_ERR("--seed must be a non-negative integer");
            break;
        case O_THREADS:
            if (parse_uint(optarg, 1024, &gp.threads) || !gp.threads)
                TRAIN_USAGE_ERR("--threads must be 1..1024");
            threads_set = 1;
            break;
        case O_EVERY:
            if (parse_uint(optarg, UINT_MAX, &every)) TRAIN_USAGE_ERR("--every must be >= 0");
            break;
        case O_C:
            if (parse_double(optarg, 1e-300, 1e300, &lp.C)) TRAIN_USAGE_ERR("--C must be positive");
            break;
        case O_MAXITER:
            if (parse_uint(optarg, UINT_MAX, &lp.max_iter) || !lp.max_iter)
                TRAIN_USAGE_ERR("--max-iter must be a positive integer");
            break;
        case O_TOL:
            if (parse_double(optarg, 0, 1e300, &lp.tol)) TRAIN_USAGE_ERR("--tol must be >= 0");
            break;
        case O_NOINT: lp.fit_intercept = 0; break;
        default: return help_or_usage(c, train_usage);
        }
    }
    if (optind != argc || !data || !out || !obj) {
        return missing_args("train", "--data, --objective and --out are", optind != argc, train_usage);
    }
    enum rank_objective objective;
    if (strcmp(obj, "lambdarank") == 0) objective = RANK_OBJ_LAMBDARANK;
    else if (strcmp(obj, "binary") == 0) objective = RANK_OBJ_BINARY;
    else if (strcmp(obj, "logistic") == 0) objective = RANK_OBJ_LOGISTIC;
    else TRAIN_USAGE_ERR("--objective must be lambdarank, binary or logistic");
    if (gp.early_stopping && !valid_path) TRAIN_USAGE_ERR("--early-stopping needs --valid");
    if (guard) {
        if (objective == RANK_OBJ_BINARY)
            TRAIN_USAGE_ERR("--guard works with --objective lambdarank or logistic");
        if (settings_flag)
            TRAIN_USAGE_ERR("--guard chooses the settings itself: drop --%s", settings_flag);
        if (!isnan(base_weight)) TRAIN_USAGE_ERR("--guard fits the base weight itself: drop --base-weight");
        if (objective == RANK_OBJ_LOGISTIC && base_feature)
            TRAIN_USAGE_ERR("--base-feature is for lambdarank (logistic --guard chooses C only)");
        if (!base_feature) base_feature = "bm25f";
        grp.objective = objective;
        grp.seed = gp.seed;
        if (threads_set) grp.threads = gp.threads;
        if (objective == RANK_OBJ_LOGISTIC && alt_feature && strcmp(alt_feature, "none") != 0)
            TRAIN_USAGE_ERR("--guard-alt is for lambdarank");
    } else if (tdepth_set) {
        TRAIN_USAGE_ERR("--train-depth goes with --guard");
    } else if (alt_feature) {
        TRAIN_USAGE_ERR("--guard-alt goes with --guard");
    } else if (drop_feature) {
        TRAIN_USAGE_ERR("--guard-drop goes with --guard");
    } else if (base_feature && objective == RANK_OBJ_LOGISTIC) {
        TRAIN_USAGE_ERR("--base-feature is for tree models (lambdarank, binary)");
    } else if (!isnan(base_weight) && !base_feature) {
        TRAIN_USAGE_ERR("--base-weight needs --base-feature");
    }
    gp.objective = objective;
    /* --leaves alone bounds the tree by leaves only (LightGBM's num_leaves). */
    if (leaves_set && !depth_set) gp.max_depth = 0;

    int ret = OPS_EXIT_FAIL;
    fn_errbuf eb = {{0}};
    rank_dataset tr, va;
    rank_model_t *model = NULL;
    rank_guard_report grd;
    memset(&grd, 0, sizeof grd);
    int have_valid = 0;
    double t0 = now_s();
    if (load_data("train", data, dopt.group_file, &dopt, 0, &tr) != 0) goto fail;
    if (valid_path) {
        if (load_data_width("train", valid_path, vgroup, &dopt, tr.nfeatures, &va) != 0)
            goto fail_train;
        have_valid = 1;
        if (va.nfeatures > tr.nfeatures) {
            /* The validation file names a feature the training file never
             * does: widen the training matrix so both share one layout. */
            size_t w = va.nfeatures;
            rank_dataset_free(&tr);
            if (load_data("train", data, dopt.group_file, &dopt, w, &tr) != 0) goto fail_valid;
        }
        if (!same_names(&tr, data, &va, valid_path)) goto fail_valid;
    }
    long base_col = -1;
    if (base_feature && (base_col = resolve_feature(&tr, data, base_feature, dopt.zero_based, "--base-feature")) < 0)
        goto fail_valid;
    if (objective == RANK_OBJ_LAMBDARANK && tr.nqueries == 0) {
        fprintf(stderr, "funnel train: error: %s: lambdarank needs query groups (qid: tokens, "
                        "%s.query or --group)\n", data, data);
        goto fail_valid;
    }
    if (objective == RANK_OBJ_LAMBDARANK && have_valid && va.nqueries == 0) {
        fprintf(stderr, "funnel train: error: %s: validation data has no query groups\n", valid_path);
        goto fail_valid;
    }
    double load_s = now_s() - t0;
    printf("data: %zu rows, %zu queries, %zu features (%.2f s to load)", tr.rows, tr.nqueries,
           tr.nfeatures, load_s);
    if (have_valid) printf("; valid: %zu rows, %zu queries", va.rows, va.nqueries);
    putchar('\n');
    fflush(stdout);

    train_log tl = {.obj = objective, .every = every, .trees = gp.trees, .has_valid = have_valid};
    double t1 = now_s();
    int rc = 0;
    if (!guard && base_col >= 0) {
        gp.base_feature = (size_t)base_col;
        gp.base_weight = base_weight;
        if (isnan(base_weight) &&
            (rc = rank_base_weight_fit(&tr, (size_t)base_col, objective, gp.ndcg_k, &gp.base_weight)) != 0) {
            fprintf(stderr, "funnel train: error: cannot fit the base weight: %s\n", fn_strerror(rc));
            goto fail_valid;
        }
        printf("base margin: %s (column %ld) x %.9g\n", base_feature, base_col, gp.base_weight);
        fflush(stdout);
        if (gp.base_weight == 0) gp.base_feature = 0;
    }
    if (guard && objective == RANK_OBJ_LAMBDARANK) {
        long alt_col = -1;
        if (alt_feature && strcmp(alt_feature, "none") != 0) {
            if ((alt_col = resolve_feature(&tr, data, alt_feature, dopt.zero_based, "--guard-alt")) < 0)
                goto fail_valid;
        } else if (!alt_feature) {
            for (size_t i = 0; tr.feature_names && i < tr.nfeatures; i++)
                if (tr.feature_names[i] && strcmp(tr.feature_names[i], "prf_rm3") == 0) alt_col = (long)i;
            if (alt_col == base_col) alt_col = -1;   /* the default alt is the base: no alt candidates */
        }
        if (alt_col >= 0 && alt_col == base_col) {
            fprintf(stderr, "funnel train: error: --guard-alt must not be the base feature\n");
            goto fail_valid;
        }
        if (alt_col >= 0) grp.alt_feature = (size_t)alt_col;
    }
    if (guard) {
        if (base_col >= 0) grp.base_feature = (size_t)base_col;
        rc = rank_guard_train(&tr, &grp, &grd, &model, &eb);
        if (rc == 0) {
            rank_guard_report_print(&grd, (const char *const *)tr.feature_names, stderr);
            fflush(stderr);
        }
        if (rc == 0 && drop_feature) rc = guard_drop(&tr, drop_feature, &grp, &grd, &model, &eb);
    } else if (objective == RANK_OBJ_LOGISTIC)
        rc = rank_train_logistic(&tr, &lp, &model, &eb);
    else
        /* Without a callback the trainer skips the per-round training
         * metrics: --every 0 times the boosting alone (the benchmark). */
        rc = rank_train_gbdt(&tr, have_valid ? &va : NULL, &gp,
                             every || gp.early_stopping ? on_round : NULL, &tl, &model, &eb);
    double train_s = now_s() - t1;
    /* Early stopping ends between the printed rounds: show the last one. */
    if (rc == 0 && every && tl.last_round && tl.printed_round != tl.last_round) print_round(&tl);
    if (rc != 0) {
        fprintf(stderr, "funnel train: error: training failed: %s\n", fn_errmsg(&eb, rc));
        goto fail_valid;
    }
    if ((rc = rank_model_save(model, out, &eb)) != 0) {
        report("train", out, &eb, rc);
        goto fail_model;
    }

    /* Summary: final metrics on the kept model, then trees and seconds. */
    size_t ntr = rank_model_ntrees(model);
    double *sc = malloc(sizeof(double) * (tr.rows ? tr.rows : 1));
    double *vs = have_valid ? malloc(sizeof(double) * (va.rows ? va.rows : 1)) : NULL;
    if (!sc || (have_valid && !vs)) {
        free(sc);
        free(vs);
        fprintf(stderr, "funnel train: error: out of memory\n");
        goto fail_model;
    }
    rank_model_score(model, tr.X, tr.rows, tr.nfeatures, sc);
    if (have_valid) rank_model_score(model, va.X, va.rows, va.nfeatures, vs);
    if (objective == RANK_OBJ_LAMBDARANK) {
        printf("final: train ndcg@10 %.4f", rank_ndcg(&tr, sc, 10));
        if (have_valid) printf(" valid ndcg@10 %.4f", rank_ndcg(&va, vs, 10));
    } else {
        printf("final: train logloss %.9f", rank_logloss(&tr, sc));
        if (have_valid) printf(" valid logloss %.9f", rank_logloss(&va, vs));
    }
    putchar('\n');
    free(sc);
    free(vs);
    if (guard && objective == RANK_OBJ_LOGISTIC)
        printf("done: guard chose %s (logistic, %zu features), training %.3f s, wrote %s\n",
               grd.cand[grd.chosen].name, rank_model_nfeatures(model), train_s, out);
    else if (guard)
        printf("done: guard chose %s (lambdarank, %zu trees + %zu weights), training %.3f s, wrote %s\n",
               grd.cand[grd.chosen].name, ntr, rank_model_nweights(model), train_s, out);
    else if (objective == RANK_OBJ_LOGISTIC)
        printf("done: %s, %zu features, training %.3f s, wrote %s\n", objective_name(objective),
               rank_model_nfeatures(model), train_s, out);
    else
        printf("done: %s, %zu trees kept of %u rounds, training %.3f s, wrote %s\n",
               objective_name(objective), ntr, tl.last_round ? tl.last_round : gp.trees, train_s,
               out);
    ret = OPS_EXIT_OK;
fail_model:
    rank_model_free(model);
fail_valid:
    rank_guard_report_free(&grd);
    if (have_valid) rank_dataset_free(&va);
fail_train:
    rank_dataset_free(&tr);
fail:
    return ret;
}

/* ---- funnel predict ---- */

static const char predict_usage[] =
    "usage: funnel predict --model MODEL --data FILE [--out SCORES] [--proba]\n"
    "                      [--group FILE] [--zero-based] [--names FILE]\n"
    "\n"
    "Scores every row of FILE (SVMlight/LETOR) with MODEL and prints one score a\n"
    "line (%.9g): the raw margin, or with --proba the probability (sigmoid) of a\n"
    "binary or logistic model. Feature ids are taken as the model's columns\n"
    "(1-based unless --zero-based). When the model stores feature names and the\n"
    "data has them too (a '# features: ...' first line, or --names), columns are\n"
    "matched by name instead; model features the data lacks score as missing.\n"
    "  --out FILE   write the scores there instead of stdout\n"
    "Exit status: 0 ok, 1 bad data or model, 2 usage error.\n";

/* Rearrange d's columns into the model's by feature name. *Xo is malloc'd
 * rows * nf with NaN for model features the data does not have. */
static int remap_by_name(const rank_model_t *m, const rank_dataset *d, float **Xo)
{
    size_t nf = rank_model_nfeatures(m);
    long *col = malloc(sizeof(long) * (nf ? nf : 1));
    float *X = malloc(sizeof(float) * (d->rows * nf + 1));
    if (!col || !X) {
        free(col);
        free(X);
        return -ENOMEM;
    }
    for (size_t j = 0; j < nf; j++) {
        col[j] = -1;
        const char *name = rank_model_feature_name(m, j);
        if (!name) continue;
        for (size_t k = 0; k < d->nfeatures; k++)
            if (d->feature_names[k] && strcmp(d->feature_names[k], name) == 0) {
                col[j] = (long)k;
                break;
            }
    }
    for (size_t r = 0; r < d->rows; r++)
        for (size_t j = 0; j < nf; j++)
            X[r * nf + j] = col[j] >= 0 ? d->X[r * d->nfeatures + (size_t)col[j]] : NAN;
    free(col);
    *Xo = X;
    return 0;
}

int ops_cmd_predict(int argc, char **argv)
{
    enum { O_MODEL = 1, O_DATA, O_OUT, O_PROBA };
    static const struct option lo[] = {
        {"model", required_argument, 0, O_MODEL}, {"data", required_argument, 0, O_DATA},
        {"out", required_argument, 0, O_OUT},     {"proba", no_argument, 0, O_PROBA},
        DATA_OPTIONS,                             {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *mpath = NULL, *data = NULL, *outp = NULL;
    data_opts dopt = {0};
    int proba = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (data_opt(&dopt, c)) continue;
        switch (c) {
        case O_MODEL: mpath = optarg; break;
        case O_DATA: data = optarg; break;
        case O_OUT: outp = optarg; break;
        case O_PROBA: proba = 1; break;
        default: return help_or_usage(c, predict_usage);
        }
    }
    if (optind != argc || !mpath || !data) {
        return missing_args("predict", "--model and --data are", optind != argc, predict_usage);
    }
    int ret = OPS_EXIT_FAIL;
    fn_errbuf eb = {{0}};
    rank_model_t *m = NULL;
    rank_dataset d;
    float *Xn = NULL;
    double *sc = NULL;
    FILE *f = stdout;
    int rc = rank_model_load(mpath, &m, &eb);
    if (rc != 0) {
        report("predict", mpath, &eb, rc);
        goto fail;
    }
    const char *objv = rank_model_objective(m);
    if (proba && strcmp(objv, "binary") != 0 && strcmp(objv, "logistic") != 0) {
        fprintf(stderr, "funnel predict: error: --proba needs a binary or logistic model, %s is %s\n",
                mpath, objv);
        goto fail_model;
    }
    size_t nf = rank_model_nfeatures(m);
    int model_named = 0;
    for (size_t i = 0; i < nf && !model_named; i++) model_named = rank_model_feature_name(m, i) != NULL;
    /* Names on both sides (the model's, and the data's header or --names):
     * columns are matched by name; otherwise by position. */
    if (load_data("predict", data, dopt.group_file, &dopt, 0, &d) != 0) goto fail_model;
    const float *X = d.X;
    size_t stride = d.nfeatures;
    if (model_named && d.feature_names) {
        if ((rc = remap_by_name(m, &d, &Xn)) != 0) {
            fprintf(stderr, "funnel predict: error: %s\n", fn_strerror(rc));
            goto fail_data;
        }
        size_t missing = 0;
        for (size_t j = 0; j < nf; j++) {
            const char *name = rank_model_feature_name(m, j);
            int found = 0;
            for (size_t k = 0; name && k < d.nfeatures && !found; k++)
                found = d.feature_names[k] && strcmp(d.feature_names[k], name) == 0;
            if (name && !found && missing++ < 8)
                fprintf(stderr, "%s%s", missing == 1 ? "funnel predict: warning: features of the model "
                                                       "the data does not name (scored as missing): " : ", ",
                        name);
        }
        if (missing) fprintf(stderr, "%s\n", missing > 8 ? ", ..." : "");
        X = Xn;
        stride = nf;
    } else if (stride < nf) {
        /* --names without model names and a narrow file: pad to the model. */
        rank_dataset_free(&d);
        if (load_data("predict", data, dopt.group_file, &dopt, nf, &d) != 0) goto fail_model;
        X = d.X;
        stride = d.nfeatures;
    }
    if (!(sc = malloc(sizeof(double) * (d.rows ? d.rows : 1)))) {
        fprintf(stderr, "funnel predict: error: out of memory\n");
        goto fail_data;
    }
    rank_model_score(m, X, d.rows, stride, sc);
    if (outp && !(f = fopen(outp, "w"))) {
        fprintf(stderr, "funnel predict: error: %s: %s\n", outp, strerror(errno));
        goto fail_scores;
    }
    for (size_t r = 0; r < d.rows; r++)
        fprintf(f, "%.9g\n", proba ? rank_sigmoid(sc[r]) : sc[r]);
    if (fflush(f) != 0 || ferror(f)) {
        fprintf(stderr, "funnel predict: error: writing %s: %s\n", outp ? outp : "stdout",
                strerror(errno));
        goto fail_file;
    }
    ret = OPS_EXIT_OK;
fail_file:
    if (outp && fclose(f) != 0 && ret == OPS_EXIT_OK) {
        fprintf(stderr, "funnel predict: error: writing %s: %s\n", outp, strerror(errno));
        ret = OPS_EXIT_FAIL;
    }
fail_scores:
    free(sc);
fail_data:
    free(Xn);
    rank_dataset_free(&d);
fail_model:
    rank_model_free(m);
fail:
    return ret;
}

/* ---- funnel model ---- */

static const char model_usage[] =
    "usage: funnel model import-xgboost m.json --out MODEL\n"
    "       funnel model info MODEL\n"
    "       funnel model push --server ADDR --stage 1|2|3|intent (--model MODEL | --none) [--gate-queries Q]\n"
    "\n"
    "import-xgboost converts an XGBoost JSON model (Booster.save_model(\"m.json\"),\n"
    "gbtree; rank:*, binary:logistic, reg:logistic, reg:squarederror) into the\n"
    "funnel model format; feature fN becomes column N (file id N+1 for 1-based\n"
    "data, as XGBoost reads LIBSVM files). info prints kind, objective,\n"
    "features, trees, max depth, leaves, base score, named features, the count\n"
    "of nonzero weights and, for tree models, each weight of the linear part\n"
    "(\"weight<TAB>COLUMN<TAB>NAME<TAB>VALUE\", column 0-based).\n"
    "Exit status: 0 ok, 1 unreadable or unsupported model, 2 usage error.\n";

static int model_import(int argc, char **argv)
{
    static const struct option lo[] = {{"out", required_argument, 0, 'o'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    const char *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", lo, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        default: return help_or_usage(c, model_usage);
        }
    }
    if (argc - optind != 1 || !out) {
        fprintf(stderr, "funnel model import-xgboost: one m.json and --out are required\n");
        fputs(model_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    const char *in = argv[optind];
    fn_errbuf eb = {{0}};
    rank_model_t *m = NULL;
    int rc = rank_xgboost_import(in, &m, &eb);
    if (rc != 0) return report("model import-xgboost", in, &eb, rc);
    rc = rank_model_save(m, out, &eb);
    if (rc == 0)
        printf("imported %s: %s, %zu trees, %zu features -> %s\n", in, rank_model_objective(m),
               rank_model_ntrees(m), rank_model_nfeatures(m), out);
    rank_model_free(m);
    return rc == 0 ? OPS_EXIT_OK : report("model import-xgboost", out, &eb, rc);
}

static int model_info(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(model_usage, stdout);
        return OPS_EXIT_OK;
    }
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "funnel model info: one MODEL argument is required\n");
        fputs(model_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    fn_errbuf eb = {{0}};
    rank_model_t *m = NULL;
    int rc = rank_model_load(argv[1], &m, &eb);
    if (rc != 0) return report("model info", argv[1], &eb, rc);
    size_t nf = rank_model_nfeatures(m), named = 0;
    for (size_t i = 0; i < nf; i++) named += rank_model_feature_name(m, i) != NULL;
    int trees = rank_model_kind(m) == RANK_MODEL_TREES;
    printf("kind\t%s\n", trees ? "trees" : "linear");
    printf("objective\t%s\n", rank_model_objective(m));
    printf("features\t%zu\n", nf);
    printf("named_features\t%zu\n", named);
    if (trees) {
        printf("trees\t%zu\n", rank_model_ntrees(m));
        printf("max_depth\t%zu\n", rank_model_max_depth(m));
        printf("leaves\t%zu\n", rank_model_nleaves(m));
    }
    printf("base_score\t%.9g\n", rank_model_base_score(m));
    /* a tree model's linear part (base margin), one line a weight; linear
     * models (thousands of hashed columns) only get the count */
    printf("weights\t%zu\n", rank_model_nweights(m));
    for (size_t i = 0; trees && i < nf; i++) {
        double w = rank_model_weight(m, i);
        if (w == 0) continue;
        const char *name = rank_model_feature_name(m, i);
        printf("weight\t%zu\t%s\t%.17g\n", i, name ? name : "-", w);
    }
    rank_model_free(m);
    return OPS_EXIT_OK;
}

int ops_cmd_model(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(model_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? OPS_EXIT_USAGE : OPS_EXIT_OK;
    }
    if (strcmp(argv[1], "import-xgboost") == 0) return model_import(argc - 1, argv + 1);
    if (strcmp(argv[1], "info") == 0) return model_info(argc - 1, argv + 1);
    if (strcmp(argv[1], "push") == 0) return ops_model_push_cmd(argc - 1, argv + 1);
    fprintf(stderr, "funnel model: unknown sub-command '%s'\n", argv[1]);
    fputs(model_usage, stderr);
    return OPS_EXIT_USAGE;
}

/* ---- funnel rank-eval ---- */

static const char rank_eval_usage[] =
    "usage: funnel rank-eval --data FILE --scores SCORES [--k 1,3,5,10] [--digits N]\n"
    "                        [--group FILE] [--zero-based]\n"
    "\n"
    "Ranking metrics of SCORES (one number a line, one per row of FILE, as\n"
    "`funnel predict` writes them) against FILE's labels and query groups.\n"
    "Prints \"ndcg@K<TAB>value\" for each K (exponential gain 2^label-1, log2\n"
    "discount, ties broken by row order; a query without relevant documents\n"
    "counts as 1, as LightGBM and XGBoost do), then \"map<TAB>value\" (label > 0\n"
    "relevant), with --digits decimals (4).\n"
    "Exit status: 0 ok, 1 bad data or scores, 2 usage error.\n";

/* Read one number a line; n must match rows. Reports errors itself. */
static int load_scores(const char *path, size_t rows, double **out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "funnel rank-eval: error: %s: %s\n", path, strerror(errno));
        return -1;
    }
    double *s = malloc(sizeof(double) * (rows ? rows : 1));
    char *line = NULL;
    size_t cap = 0, n = 0, lineno = 0;
    ssize_t len;
    int ok = s != NULL;
    while (ok && (len = getline(&line, &cap, f)) != -1) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' ||
                           line[len - 1] == '\t'))
            line[--len] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) {
            fprintf(stderr, "funnel rank-eval: error: %s:%zu: empty line\n", path, lineno);
            ok = 0;
            break;
        }
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (*end || errno == ERANGE || isnan(v)) {
            fprintf(stderr, "funnel rank-eval: error: %s:%zu: not a number: '%.40s'\n", path, lineno, p);
            ok = 0;
            break;
        }
        if (n >= rows) {
            fprintf(stderr, "funnel rank-eval: error: %s:%zu: more scores than the %zu data rows\n",
                    path, lineno, rows);
            ok = 0;
            break;
        }
        s[n++] = v;
    }
    if (ok && n != rows) {
        fprintf(stderr, "funnel rank-eval: error: %s:%zu: %zu scores for %zu data rows\n", path,
                lineno, n, rows);
        ok = 0;
    }
    if (!s) fprintf(stderr, "funnel rank-eval: error: out of memory\n");
    free(line);
    fclose(f);
    if (!ok) {
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

int ops_cmd_rank_eval(int argc, char **argv)
{
    enum { O_DATA = 1, O_SCORES, O_K, O_DIGITS };
    static const struct option lo[] = {
        {"data", required_argument, 0, O_DATA}, {"scores", required_argument, 0, O_SCORES},
        {"k", required_argument, 0, O_K},       {"digits", required_argument, 0, O_DIGITS},
        DATA_OPTIONS,                           {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *data = NULL, *scores = NULL, *klist = "1,3,5,10";
    data_opts dopt = {0};
    unsigned digits = 4;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (data_opt(&dopt, c)) continue;
        switch (c) {
        case O_DATA: data = optarg; break;
        case O_SCORES: scores = optarg; break;
        case O_K: klist = optarg; break;
        case O_DIGITS:
            if (parse_uint(optarg, 17, &digits)) {
                fprintf(stderr, "funnel rank-eval: --digits must be 0..17\n");
                return OPS_EXIT_USAGE;
            }
            break;
        default: return help_or_usage(c, rank_eval_usage);
        }
    }
    if (optind != argc || !data || !scores) {
        return missing_args("rank-eval", "--data and --scores are", optind != argc, rank_eval_usage);
    }
    /* --k: comma-separated positive cut-offs. */
    unsigned ks[32];
    size_t nk = 0;
    for (const char *p = klist;;) {
        char num[16];
        size_t l = strcspn(p, ",");
        unsigned k;
        if (l == 0 || l >= sizeof num || nk == 32) goto bad_k;
        memcpy(num, p, l);
        num[l] = '\0';
        if (parse_uint(num, UINT_MAX, &k) || k == 0) goto bad_k;
        ks[nk++] = k;
        if (!p[l]) break;
        p += l + 1;
    }

    int ret = OPS_EXIT_FAIL;
    rank_dataset d;
    double *s = NULL;
    if (load_data("rank-eval", data, dopt.group_file, &dopt, 0, &d) != 0) goto fail;
    if (d.nqueries == 0) {
        fprintf(stderr, "funnel rank-eval: error: %s: no query groups (qid: tokens, %s.query or "
                        "--group)\n", data, data);
        goto fail_data;
    }
    if (load_scores(scores, d.rows, &s) != 0) goto fail_data;
    for (size_t i = 0; i < nk; i++)
        printf("ndcg@%u\t%.*f\n", ks[i], (int)digits, rank_ndcg(&d, s, ks[i]));
    printf("map\t%.*f\n", (int)digits, rank_map(&d, s));
    ret = OPS_EXIT_OK;
    free(s);
fail_data:
    rank_dataset_free(&d);
fail:
    return ret;
bad_k:
    fprintf(stderr, "funnel rank-eval: --k must be a comma-separated list of positive integers\n");
    return OPS_EXIT_USAGE;
}
