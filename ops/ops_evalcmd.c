/* ops_evalcmd.c - `funnel eval`: TREC metrics of a run against qrels (eval.h). */
#include "ops.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "eval.h"

static const char eval_usage[] =
    "usage: funnel eval --qrels qrels.trec --run run.trec [--per-query]\n"
    "       funnel eval qrels.trec run.trec [--per-query]\n"
    "\n"
    "Prints \"queries<TAB>N\" then one \"metric<TAB>value\" line (%.4f) for each of\n"
    "ndcg@10 map mrr p@10 r@100 r@1000, averaged over the judged queries (a judged\n"
    "query missing from the run scores 0). --per-query first prints\n"
    "\"qid<TAB>metric<TAB>value\" lines for every query.\n"
    "qrels: qid iter docid grade; run: qid Q0 docid rank score tag.\n"
    "Exit status: 0 ok, 1 unreadable or malformed input, 2 usage error.\n";

static void per_query(void *ud, const char *qid, const double v[OPS_EVAL_NMETRICS])
{
    (void)ud;
    for (int m = 0; m < OPS_EVAL_NMETRICS; m++)
        printf("%s\t%s\t%.4f\n", qid, ops_eval_metric_names[m], v[m]);
}

int ops_cmd_eval(int argc, char **argv)
{
    static const struct option lo[] = {{"qrels", required_argument, 0, 'q'},
                                       {"run", required_argument, 0, 'r'},
                                       {"per-query", no_argument, 0, 'p'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    const char *qrels_path = NULL, *run_path = NULL;
    int perq = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'q': qrels_path = optarg; break;
        case 'r': run_path = optarg; break;
        case 'p': perq = 1; break;
        case 'h': fputs(eval_usage, stdout); return OPS_EXIT_OK;
        default: fputs(eval_usage, stderr); return OPS_EXIT_USAGE;
        }
    }
    /* "funnel eval QRELS RUN" (positional, as trec_eval takes them) too. */
    if (!qrels_path && !run_path && argc - optind == 2) {
        qrels_path = argv[optind];
        run_path = argv[optind + 1];
        optind = argc;
    }
    if (!qrels_path || !run_path || optind != argc) {
        fprintf(stderr, "funnel eval: --qrels and --run are required\n");
        fputs(eval_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    int ret = OPS_EXIT_FAIL;
    fn_errbuf eb = {{0}};
    ops_qrels *q = NULL;
    ops_run *r = NULL;
    ops_eval_result res;
    int rc = ops_eval_load_qrels(qrels_path, &q, &eb);
    if (rc != 0) goto fail;
    if ((rc = ops_eval_load_run(run_path, &r, &eb)) != 0) goto fail_qrels;
    if ((rc = ops_eval_compute(q, r, &res, perq ? per_query : NULL, NULL)) != 0) goto fail_run;
    printf("queries\t%zu\n", res.queries);
    for (int m = 0; m < OPS_EVAL_NMETRICS; m++)
        printf("%s\t%.4f\n", ops_eval_metric_names[m], res.v[m]);
    ret = OPS_EXIT_OK;
fail_run:
    ops_eval_run_free(r);
fail_qrels:
    ops_eval_qrels_free(q);
fail:
    if (rc != 0) fprintf(stderr, "funnel eval: %s\n", fn_errmsg(&eb, rc));
    return ret;
}
