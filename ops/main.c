/* main.c - the funnel CLI: dispatch to the ops_cmd_* commands. */
#include <stdio.h>
#include <string.h>

#include "fn_log.h"
#include "fn_version.h"
#include "ops.h"


static const char usage[] =
    "usage: funnel <command> [options]     (funnel <command> --help for details)\n"
    "\n"
    "  index build    build an index from a JSON Lines corpus\n"
    "  index verify   check an index offline: checksums, structure, global statistics\n"
    "  cluster up     start a local cluster (coordinator + one process per shard)\n"
    "  cluster status show the cluster's processes and their health\n"
    "  cluster down   stop the cluster\n"
    "  search         run one query, or a batch of queries into a TREC run file\n"
    "  get            documents by id: their stored fields\n"
    "  doc            put | delete: live updates of a running cluster's documents\n"
    "  bench          load a cluster: open loop (--rate) or closed loop (--concurrency), qps and latency\n"
    "  plan           capacity plan: shards, replicas, machines for N docs, Q qps, a p99 (measured costs)\n"
    "  eval           score a TREC run against qrels (ndcg@10 map mrr p@10 r@100 r@1000)\n"
    "  train          train a ranking model (LambdaMART, binary GBDT, logistic regression)\n"
    "  predict        score SVMlight/LETOR rows with a model\n"
    "  model          import-xgboost m.json --out MODEL | info MODEL | push (to a cluster)\n"
    "  features       training data from a running cluster (candidates + feature vectors)\n"
    "  cv             k-fold cross-validation of the funnel through a live cluster\n"
    "  rank-eval      NDCG@k and MAP of scores against SVMlight/LETOR labels\n"
    "  clicks         simulate: simulated users' clicks on logged pages (impressions)\n"
    "  traindata      training data (SVMlight/LETOR) from impressions and clicks\n"
    "  experiment     report: online experiments' arms: CTR, successful sessions, interleaving wins\n"
    "  ann bench      HNSW vector search: build a graph, recall@10 and QPS per ef\n"
    "  embed          train | apply: fastText text encoder, document and query vectors\n"
    "  spell          build | check: spelling correction dictionary, corrected queries\n"
    "  intent         train | predict | eval: query-intent classifier (verticals a query wants)\n"
    "  filter         train | eval: content filter (spam / harmful documents), P R F1 AUC\n"
    "\n"
    "  --version      print the version, git id and index schema, exit 0\n"
    "  --tls-ca F --tls-cert F --tls-key F   (any command) talk TLS to servers: the CA that\n"
    "                 signs them, and a client certificate (mTLS); env FUNNEL_TLS_CA, ...\n"
    "  --token-file F (any command) send the admin token in F on Admin calls;\n"
    "                 env FUNNEL_ADMIN_TOKEN_FILE\n"
    "\n"
    "Exit status: 0 ok, 1 failure, 2 usage error.\n";

int main(int argc, char **argv)
{
    fn_log_init("funnel", FN_LOG_WARN);
    if (argc < 2) {
        fputs(usage, stderr);
        return OPS_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return OPS_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        fn_version_print(stdout, "funnel");
        return OPS_EXIT_OK;
    }
    /* --tls-* / --token-file, for whichever command talks to a server */
    fn_errbuf eb = {{0}};
    int src = ops_client_security(&argc, argv, &eb);
    if (src != 0) {
        fprintf(stderr, "funnel: %s\n", fn_errmsg(&eb, src));
        return OPS_EXIT_USAGE;
    }
    if (strcmp(cmd, "index") == 0) return ops_cmd_index(argc - 1, argv + 1);
    if (strcmp(cmd, "cluster") == 0) return ops_cmd_cluster(argc - 1, argv + 1);
    if (strcmp(cmd, "search") == 0) return ops_cmd_search(argc - 1, argv + 1);
    if (strcmp(cmd, "get") == 0) return ops_cmd_get(argc - 1, argv + 1);
    if (strcmp(cmd, "doc") == 0) return ops_cmd_doc(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0) return ops_cmd_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "plan") == 0) return ops_cmd_plan(argc - 1, argv + 1);
    if (strcmp(cmd, "eval") == 0) return ops_cmd_eval(argc - 1, argv + 1);
    if (strcmp(cmd, "train") == 0) return ops_cmd_train(argc - 1, argv + 1);
    if (strcmp(cmd, "predict") == 0) return ops_cmd_predict(argc - 1, argv + 1);
    if (strcmp(cmd, "model") == 0) return ops_cmd_model(argc - 1, argv + 1);
    if (strcmp(cmd, "rank-eval") == 0) return ops_cmd_rank_eval(argc - 1, argv + 1);
    if (strcmp(cmd, "clicks") == 0) return ops_cmd_clicks(argc - 1, argv + 1);
    if (strcmp(cmd, "features") == 0) return ops_cmd_features(argc - 1, argv + 1);
    if (strcmp(cmd, "cv") == 0) return ops_cmd_cv(argc - 1, argv + 1);
    if (strcmp(cmd, "traindata") == 0) return ops_cmd_traindata(argc - 1, argv + 1);
    if (strcmp(cmd, "experiment") == 0) return ops_cmd_experiment(argc - 1, argv + 1);
    if (strcmp(cmd, "ann") == 0) return ops_cmd_ann(argc - 1, argv + 1);
    if (strcmp(cmd, "embed") == 0) return ops_cmd_embed(argc - 1, argv + 1);
    if (strcmp(cmd, "spell") == 0) return ops_cmd_spell(argc - 1, argv + 1);
    if (strcmp(cmd, "intent") == 0) return ops_cmd_intent(argc - 1, argv + 1);
    if (strcmp(cmd, "filter") == 0) return ops_cmd_filter(argc - 1, argv + 1);
    fprintf(stderr, "funnel: unknown command '%s'\n", cmd);
    fputs(usage, stderr);
    return OPS_EXIT_USAGE;
}
