/* ops_cfilter.c - `funnel filter train | eval`: the content filter of issue
 * 11 (rank/cfilter.h) over labelled JSON Lines documents ("id", "title",
 * "body" and a label field).
 *
 * Splits. --holdout F keeps the documents with cfilter_split(id, seed,
 * CFILTER_SALT_HOLDOUT, F) out of training; eval with the same --holdout and
 * --seed scores exactly those. Inside the training part, cfilter_train
 * chooses the threshold on out-of-fold scores (5 folds by id, salt
 * CFILTER_SALT_VALID): the lowest score reaching --target-precision (0.98)
 * there, and the strict threshold: the highest score whose out-of-fold
 * recall reaches --strict-recall (0.995), never above the threshold. A
 * document without an "id"
 * gets "line:N" as its id.
 *
 * Measured: docs/evaluation.md, "Content filter (issue 11)";
 * tests/bench/cfilter_bench.sh. Tests: tests/rank/test_cfilter.c.
 */
#include "ops.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfilter.h"
#include "fn_io.h"

static const char filter_usage[] =
    "usage: funnel filter train --input labelled.jsonl --positive LABEL --out MODEL [--label-field label]\n"
    "                           [--holdout 0.2] [--seed 1] [--target-precision 0.98] [--strict-recall 0.995]\n"
    "                           [--buckets 262144] [--c 100]\n"
    "       funnel filter eval --input labelled.jsonl --positive LABEL --model MODEL [--label-field label]\n"
    "                          [--holdout F --seed S] [--curve PR.dat]\n"
    "\n"
    "Content filter: L2 logistic regression over hashed words, word bigrams, URL and\n"
    "e-mail domains, lexicon and length counts of each document's \"title\" and \"body\".\n"
    "train: documents in the seeded --holdout share (by id) are left out; of the\n"
    "  rest, out-of-fold scores (5 folds) choose the threshold: the lowest score\n"
    "  reaching --target-precision; and the strict threshold (never above it): the\n"
    "  highest score whose recall reaches --strict-recall.\n"
    "  --label-field F   the label's field (default label); --positive: its positive value\n"
    "  --buckets N       hash buckets (default 262144, at most 2^24)\n"
    "  --c C             inverse L2 strength, as scikit-learn's C (default 100)\n"
    "eval: rows, positives, threshold, precision, recall and F1 at the model's\n"
    "  threshold and at its strict threshold, ROC AUC and the scoring cost per document; with --holdout F and\n"
    "  --seed S only the documents train held out (default: every document).\n"
    "  --curve PATH      write the precision-recall curve: \"recall precision threshold\" lines\n"
    "Exit status: 0 ok, 1 failure (bad input, damaged model), 2 usage error.\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "funnel filter: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    fputs(filter_usage, stderr);
    return OPS_EXIT_USAGE;
}

/* ---- input ---- */

typedef struct docset {
    cfilter_doc *d;
    size_t n, cap, npos;
    const char *path, *label_field, *positive;
    double holdout;             /* keep only (eval) or drop (train) the holdout share; 0 = all */
    int keep_holdout;
    uint64_t seed;
    fn_errbuf *eb;
} docset;

static void docset_free(docset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free((char *)s->d[i].id);
        free((char *)s->d[i].title);
        free((char *)s->d[i].body);
    }
    free(s->d);
    s->d = NULL;
    s->n = 0;
}

static char *dup_str(json_t *o, const char *key, size_t *len)
{
    json_t *v = json_object_get(o, key);
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    *len = json_is_string(v) ? json_string_length(v) : 0;
    char *c = malloc(*len + 1);
    if (c) {
        memcpy(c, s, *len);
        c[*len] = 0;
    }
    return c;
}

static int doc_line(void *ud, char *line, size_t len, size_t lineno)
{
    docset *s = ud;
    if (len == 0 || strspn(line, " \t\r") == len) return 0;
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return fn_seterr(s->eb, FN_EPARSE, "%s:%zu: not a JSON object%s%s", s->path, lineno, o ? "" : ": ",
                         o ? "" : je.text);
    }
    json_t *lv = json_object_get(o, s->label_field);
    char lbuf[64];
    const char *lab;
    if (json_is_string(lv)) lab = json_string_value(lv);
    else if (json_is_integer(lv)) {
        snprintf(lbuf, sizeof lbuf, "%lld", (long long)json_integer_value(lv));
        lab = lbuf;
    } else if (json_is_boolean(lv)) lab = json_is_true(lv) ? "true" : "false";
    else {
        json_decref(o);
        return fn_seterr(s->eb, FN_EPARSE, "%s:%zu: no string, integer or boolean \"%s\" field", s->path, lineno,
                         s->label_field);
    }
    int pos = strcmp(lab, s->positive) == 0;
    size_t idlen = 0, tlen, blen;
    char *id;
    json_t *iv = json_object_get(o, "id");
    if (json_is_string(iv)) id = dup_str(o, "id", &idlen);
    else {
        char b[48];
        snprintf(b, sizeof b, "line:%zu", lineno);
        idlen = strlen(b);
        id = strdup(b);
    }
    if (!id) {
        json_decref(o);
        return fn_seterr(s->eb, -ENOMEM, "%s: out of memory", s->path);
    }
    if (s->holdout > 0 && cfilter_split(id, idlen, s->seed, CFILTER_SALT_HOLDOUT, s->holdout) != s->keep_holdout) {
        free(id);
        json_decref(o);
        return 0;
    }
    char *t = dup_str(o, "title", &tlen), *bd = dup_str(o, "body", &blen);
    cfilter_signals sig;
    cfilter_signals_json(o, &sig);
    json_decref(o);
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 1024;
        cfilter_doc *nd = realloc(s->d, nc * sizeof *nd);
        if (!nd) {
            free(t);
            t = NULL;
        }
        else {
            s->d = nd;
            s->cap = nc;
        }
    }
    if (!t || !bd) {
        free(id);
        free(t);
        free(bd);
        return fn_seterr(s->eb, -ENOMEM, "%s: out of memory", s->path);
    }
    s->d[s->n++] = (cfilter_doc){ .id = id, .idlen = idlen, .title = t, .tlen = tlen, .body = bd, .blen = blen,
                                  .positive = pos, .sig = sig };
    s->npos += (size_t)pos;
    return 0;
}

/* ---- options ---- */

typedef struct cli {
    const char *input, *label_field, *positive, *out, *model, *curve;
    double holdout;
    int holdout_set;
    cfilter_train_opts to;
} cli;

static int parse_opts(int argc, char **argv, cli *a, const char *sub)
{
    static const struct option lo[] = {
        { "input", required_argument, NULL, 'i' }, { "label-field", required_argument, NULL, 'f' },
        { "positive", required_argument, NULL, 'p' }, { "out", required_argument, NULL, 'o' },
        { "model", required_argument, NULL, 'm' }, { "curve", required_argument, NULL, 'k' },
        { "holdout", required_argument, NULL, 'H' }, { "seed", required_argument, NULL, 's' },
        { "target-precision", required_argument, NULL, 't' }, { "buckets", required_argument, NULL, 'b' },
        { "strict-recall", required_argument, NULL, 'R' },
        { "c", required_argument, NULL, 'C' }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'i': a->input = optarg; break;
        case 'f': a->label_field = optarg; break;
        case 'p': a->positive = optarg; break;
        case 'o': a->out = optarg; break;
        case 'm': a->model = optarg; break;
        case 'k': a->curve = optarg; break;
        case 'H':
            a->holdout = strtod(optarg, &end);
            if (end == optarg || *end || !(a->holdout >= 0 && a->holdout < 1))
                return usage_error("--holdout: a fraction in [0, 1), not %s", optarg);
            a->holdout_set = 1;
            break;
        case 's':
            a->to.seed = strtoull(optarg, &end, 10);
            if (end == optarg || *end || *optarg == '-') return usage_error("--seed: not a number: %s", optarg);
            break;
        case 't':
            a->to.target_precision = strtod(optarg, &end);
            if (end == optarg || *end || !(a->to.target_precision > 0 && a->to.target_precision <= 1))
                return usage_error("--target-precision: a fraction in (0, 1], not %s", optarg);
            break;
        case 'R':
            a->to.strict_recall = strtod(optarg, &end);
            if (end == optarg || *end || !(a->to.strict_recall > 0 && a->to.strict_recall <= 1))
                return usage_error("--strict-recall: a fraction in (0, 1], not %s", optarg);
            break;
        case 'b': {
            unsigned long long v = strtoull(optarg, &end, 10);
            if (end == optarg || *end || *optarg == '-' || v == 0 || v > CFILTER_MAX_BUCKETS)
                return usage_error("--buckets: 1..16777216, not %s", optarg);
            a->to.buckets = (uint32_t)v;
            break;
        }
        case 'C':
            a->to.C = strtod(optarg, &end);
            if (end == optarg || *end || !(a->to.C > 0) || !isfinite(a->to.C))
                return usage_error("--c: a positive number, not %s", optarg);
            break;
        case 'h': fputs(filter_usage, stdout); return -1;
        default: {
            char msg[160];
            snprintf(msg, sizeof msg, "%s: unknown or incomplete option %%s", sub);
            return usage_error(msg, argv[optind - 1]);
        }
        }
    }
    if (optind < argc) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: unexpected argument %%s", sub);
        return usage_error(msg, argv[optind]);
    }
    if (!a->input || !a->positive) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: --input and --positive are required%%s", sub);
        return usage_error(msg, "");
    }
    return 0;
}

static int cmd_train(int argc, char **argv)
{
    cli a = { .label_field = "label", .holdout = 0.2 };
    cfilter_train_defaults(&a.to);
    int prc = parse_opts(argc, argv, &a, "train");
    if (prc) return prc < 0 ? OPS_EXIT_OK : prc;
    if (!a.out) return usage_error("train: --out is required%s", "");
    if (a.model || a.curve) return usage_error("train: --model and --curve are for eval%s", "");

    fn_errbuf eb = { { 0 } };
    docset s = { .path = a.input, .label_field = a.label_field, .positive = a.positive, .holdout = a.holdout,
                 .keep_holdout = 0, .seed = a.to.seed, .eb = &eb };
    cfilter_model_t *m = NULL;
    cfilter_train_report r;
    double t0 = now_s();
    int rc = fn_read_lines(a.input, doc_line, &s, &eb);
    double t1 = now_s();
    if (!rc) rc = cfilter_train(s.d, s.n, &a.to, &m, &r, &eb);
    if (!rc) {
        fprintf(stderr, "funnel filter train: %zu documents read in %.2f s (held-out share %.2f left out)\n", s.n,
                t1 - t0, a.holdout);
        printf("train rows %zu positives %zu; validation rows %zu positives %zu\n", r.train_rows, r.train_pos,
               r.valid_rows, r.valid_pos);
        printf("columns used %zu kept %zu of %u buckets; nonzero weights %zu\n", r.used_cols, r.kept_cols,
               a.to.buckets, cfilter_model_nweights(m));
        printf("threshold %.6f (validation precision %.4f recall %.4f%s)\n", cfilter_model_threshold(m),
               r.valid_precision, r.valid_recall, r.target_met ? "" : "; target precision not reached");
        printf("strict %.6f (validation precision %.4f recall %.4f)\n", cfilter_model_strict(m), r.strict_precision,
               r.strict_recall);
        printf("training time %.2f s\n", r.seconds);
        rc = cfilter_model_save(m, a.out, &eb);
    }
    if (rc) fprintf(stderr, "funnel filter train: %s\n", fn_errmsg(&eb, rc));
    cfilter_model_free(m);
    docset_free(&s);
    return rc ? OPS_EXIT_FAIL : OPS_EXIT_OK;
}

typedef struct sy {
    double s;
    int y;
} sy;

static int cmp_desc(const void *x, const void *y)
{
    const sy *p = x, *q = y;
    return (p->s < q->s) - (p->s > q->s);
}

/* "recall precision threshold" at every distinct score, highest first. */
static int write_curve(const char *path, const double *sc, const int *y, size_t n, size_t npos, fn_errbuf *eb)
{
    sy *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return fn_seterr(eb, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        v[i] = (sy){ sc[i], y[i] };
    qsort(v, n, sizeof *v, cmp_desc);
    FILE *f = fopen(path, "w");
    if (!f) {
        free(v);
        return fn_seterr(eb, -errno, "%s: %s", path, strerror(errno));
    }
    fprintf(f, "# recall precision threshold\n");
    size_t tp = 0, k = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j].s == v[i].s) {
            tp += (size_t)v[j].y;
            j++;
        }
        k = j;
        fprintf(f, "%.6f %.6f %.9g\n", npos ? (double)tp / (double)npos : 0.0, (double)tp / (double)k, v[i].s);
        i = j;
    }
    free(v);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return fn_seterr(eb, -EIO, "%s: write failed", path);
    return 0;
}

static int cmd_eval(int argc, char **argv)
{
    cli a = { .label_field = "label" };
    cfilter_train_defaults(&a.to);
    int prc = parse_opts(argc, argv, &a, "eval");
    if (prc) return prc < 0 ? OPS_EXIT_OK : prc;
    if (!a.model) return usage_error("eval: --model is required%s", "");
    if (a.out) return usage_error("eval: --out is for train%s", "");

    fn_errbuf eb = { { 0 } };
    docset s = { .path = a.input, .label_field = a.label_field, .positive = a.positive, .holdout = a.holdout,
                 .keep_holdout = 1, .seed = a.to.seed, .eb = &eb };
    cfilter_model_t *m = NULL;
    double *sc = NULL;
    int *y = NULL;
    int rc = cfilter_model_load(a.model, &m, &eb);
    if (!rc) rc = fn_read_lines(a.input, doc_line, &s, &eb);
    if (!rc && s.n == 0) rc = fn_seterr(&eb, FN_EINVAL, "%s: no documents to evaluate", a.input);
    if (!rc && (!(sc = malloc(s.n * sizeof *sc)) || !(y = malloc(s.n * sizeof *y))))
        rc = fn_seterr(&eb, -ENOMEM, "out of memory");
    if (!rc) {
        double t0 = now_s();
        for (size_t i = 0; i < s.n && !rc; i++) {
            sc[i] = cfilter_score_sig(m, s.d[i].title, s.d[i].tlen, s.d[i].body, s.d[i].blen, &s.d[i].sig);
            if (sc[i] < 0) rc = fn_seterr(&eb, -ENOMEM, "out of memory");
            y[i] = s.d[i].positive;
        }
        double us = (now_s() - t0) * 1e6 / (double)s.n;
        if (!rc) {
            double thr = cfilter_model_threshold(m), p, r, f1;
            cfilter_prf(sc, y, s.n, thr, &p, &r, &f1);
            printf("rows %zu positives %zu\n", s.n, s.npos);
            printf("threshold %.6f\n", thr);
            printf("precision %.4f recall %.4f f1 %.4f\n", p, r, f1);
            double st = cfilter_model_strict(m);
            cfilter_prf(sc, y, s.n, st, &p, &r, &f1);
            printf("strict %.6f\n", st);
            printf("strict precision %.4f recall %.4f f1 %.4f\n", p, r, f1);
            printf("roc_auc %.4f\n", cfilter_auc(sc, y, s.n));
            printf("scoring %.1f us/doc\n", us);
        }
        if (!rc && a.curve) rc = write_curve(a.curve, sc, y, s.n, s.npos, &eb);
    }
    if (rc) fprintf(stderr, "funnel filter eval: %s\n", fn_errmsg(&eb, rc));
    free(sc);
    free(y);
    cfilter_model_free(m);
    docset_free(&s);
    return rc ? OPS_EXIT_FAIL : OPS_EXIT_OK;
}

int ops_cmd_filter(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "train") == 0) return cmd_train(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "eval") == 0) return cmd_eval(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(filter_usage, stdout);
        return OPS_EXIT_OK;
    }
    fprintf(stderr, "funnel filter: train or eval expected\n");
    fputs(filter_usage, stderr);
    return OPS_EXIT_USAGE;
}
