/* ops_funnel.c - the live funnel from the command line: `funnel features`
 * (training data from the running cluster) and `funnel model push`
 * (replace a model in a running cluster). `funnel cv` is ops_cv.c. */
#include "ops.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "funnel.pb-c.h"
#include "rpc_client.h"

/* ---- funnel features ---- */

static const char features_usage[] =
    "usage: funnel features --server ADDR --queries Q --qrels R --stage 1|2 --out F.svm\n"
    "                       [--window N] [--deadline-ms N]\n"
    "\n"
    "Asks the running cluster (ADDR: the coordinator) for every query's candidates\n"
    "with their feature vectors and writes SVMlight/LETOR rows for `funnel train`:\n"
    "  --stage 1   the selection's top N candidates (by selection score) with the\n"
    "              cheap features: training data for a stage-1 model\n"
    "  --stage 2   the stage-2 window as the funnel builds it when serving (each\n"
    "              shard's stage-1 survivors merged by stage-1 score), its top N\n"
    "              (at most the coordinator's stage2_k) with every feature:\n"
    "              training data for a stage-2 model\n"
    "  --window N  candidates per query (default 200 for stage 1, 500 for stage 2)\n"
    "The label is the query's judgment of the document in R (TREC qrels; 0 when\n"
    "unjudged). The first line names the features: \"# features: NAME1 NAME2 ...\";\n"
    "a missing value (e.g. the age of a document without a date) is left out of\n"
    "its row. Rows end with \"# DOCID\". Non-numeric qids get dense numbers, each\n"
    "announced by a \"# qid N = QID\" line. Exit status: 0 ok, 1 failure, 2 usage.\n";

static int qid_number(const char *qid, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(qid, &end, 10);
    if (!*qid || *end || errno || v < 0) return -1;
    *out = v;
    return 0;
}

/* Fetch one query's candidates with features. *resp: free with
 * protobuf_c_message_free_unpacked. Returns the gRPC code; st says why. */
static grpc_status_code fetch_features(rpc_client_t *c, const ops_query *q, int stage,
                                       uint32_t window, int64_t deadline_ms,
                                       Funnel__V1__SearchResponse **resp, rpc_status *st)
{
    const char *qid = q->qid;
    Funnel__V1__SearchRequest req = FUNNEL__V1__SEARCH_REQUEST__INIT;
    req.query = q->text;
    req.plain_text = 1;   /* queries.tsv: natural language, not the query language */
    /* a query vector (queries.tsv's third column) fills the vec_sim column */
    req.vector = q->vec;
    req.n_vector = q->nvec;
    req.k = window;
    if (stage == 2) req.stage2_k = window;   /* lowers the window; never widens it */
    req.request_id = (char *)qid;
    req.features = stage == 1 ? FUNNEL__V1__FEATURE_MODE__FEATURES_SELECTION
                              : FUNNEL__V1__FEATURE_MODE__FEATURES_WINDOW;
    ProtobufCMessage *m = NULL;
    grpc_status_code code = rpc_client_call(c, RPC_METHOD_SEARCH, &req.base,
                                            &funnel__v1__search_response__descriptor, deadline_ms, &m, st);
    *resp = (Funnel__V1__SearchResponse *)m;
    return code;
}

int ops_features_write(const char *server, const char *queries, const char *qrels, int stage,
                       uint32_t window, int64_t deadline_ms, const char *out_path, fn_errbuf *eb)
{
    ops_query *q = NULL;
    size_t nq = 0;
    ops_grades *g = NULL;
    int rc = ops_queries_load(queries, &q, &nq, eb);
    if (rc) return rc;
    if ((rc = ops_grades_load(qrels, &g, eb))) {
        ops_queries_free(q, nq);
        return rc;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", out_path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        rc = fn_seterr(eb, -errno, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    rpc_client_t *c = rpc_client_create(server);
    if (!c) {
        rc = fn_seterr(eb, -ENOMEM, "out of memory");
        fclose(f);
        goto out;
    }
    size_t nnames = 0, rows = 0;
    long next_dense = 1000000;
    for (size_t i = 0; i < nq && !rc; i++) {
        Funnel__V1__SearchResponse *r = NULL;
        rpc_status st;
        grpc_status_code code = fetch_features(c, &q[i], stage, window, deadline_ms, &r, &st);
        if (code != GRPC_STATUS_OK) {
            rc = fn_seterr(eb, FN_ERPC, "query %s: %s: %s", q[i].qid, rpc_status_name(code), st.message);
            break;
        }
        if (r->partial)
            fprintf(stderr, "funnel features: query %s: partial answer (%u of %u shards)\n", q[i].qid,
                    r->coverage ? r->coverage->shards_answered : 0, r->coverage ? r->coverage->shards_asked : 0);
        if (!nnames && r->n_feature_names) {
            nnames = r->n_feature_names;
            fprintf(f, "# features:");
            for (size_t k = 0; k < nnames; k++) fprintf(f, " %s", r->feature_names[k]);
            fprintf(f, "\n");
        } else if (r->n_feature_names && r->n_feature_names != nnames) {
            rc = fn_seterr(eb, FN_EFORMAT, "query %s: %zu features, the first answer had %zu",
                           q[i].qid, r->n_feature_names, nnames);
        }
        long qn;
        if (qid_number(q[i].qid, &qn) != 0) {
            qn = next_dense++;
            fprintf(f, "# qid %ld = %s\n", qn, q[i].qid);
        }
        for (size_t h = 0; h < r->n_hits && !rc; h++) {
            const Funnel__V1__Hit *hit = r->hits[h];
            long grade = ops_grades_get(g, q[i].qid, strlen(q[i].qid), hit->id);
            fprintf(f, "%ld qid:%ld", grade > 0 ? grade : 0, qn);
            for (size_t k = 0; k < hit->n_features; k++)
                if (isfinite(hit->features[k])) fprintf(f, " %zu:%.9g", k + 1, (double)hit->features[k]);
            fprintf(f, " # %s\n", hit->id);
            rows++;
        }
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    rpc_client_destroy(c);
    int bad = ferror(f) != 0;
    bad |= fclose(f) != 0;
    if (!rc && bad) rc = fn_seterr(eb, -EIO, "%s: write failed", tmp);
    if (!rc && rename(tmp, out_path) != 0) rc = fn_seterr(eb, -errno, "%s: %s", out_path, strerror(errno));
    if (rc) remove(tmp);
    else fprintf(stderr, "funnel features: %zu queries, %zu rows, %zu features to %s\n", nq, rows, nnames, out_path);
out:
    ops_grades_free(g);
    ops_queries_free(q, nq);
    return rc;
}

int ops_cmd_features(int argc, char **argv)
{
    static const struct option lo[] = {
        {"server", required_argument, 0, 's'}, {"queries", required_argument, 0, 'q'},
        {"qrels", required_argument, 0, 'r'},  {"stage", required_argument, 0, 'S'},
        {"out", required_argument, 0, 'o'},    {"window", required_argument, 0, 'w'},
        {"deadline-ms", required_argument, 0, 'd'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *server = NULL, *queries = NULL, *qrels = NULL, *out = NULL;
    long stage = 0, window = 0, deadline = 30000;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 's': server = optarg; break;
        case 'q': queries = optarg; break;
        case 'r': qrels = optarg; break;
        case 'S': stage = strtol(optarg, NULL, 10); break;
        case 'o': out = optarg; break;
        case 'w': window = strtol(optarg, NULL, 10); break;
        case 'd': deadline = strtol(optarg, NULL, 10); break;
        case 'h': fputs(features_usage, stdout); return OPS_EXIT_OK;
        default: fputs(features_usage, stderr); return OPS_EXIT_USAGE;
        }
    }
    if (!server || !queries || !qrels || !out || (stage != 1 && stage != 2) || window < 0 ||
        window > 100000 || deadline <= 0 || optind != argc) {
        fprintf(stderr, "funnel features: --server, --queries, --qrels, --out and --stage 1|2 are required\n");
        fputs(features_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    if (!window) window = stage == 1 ? 200 : 500;
    rpc_init();
    fn_errbuf eb = {{0}};
    int rc = ops_features_write(server, queries, qrels, (int)stage, (uint32_t)window, deadline, out, &eb);
    rpc_shutdown();
    if (rc) {
        fprintf(stderr, "funnel features: %s\n", fn_errmsg(&eb, rc));
        return OPS_EXIT_FAIL;
    }
    return OPS_EXIT_OK;
}

/* ---- funnel model push ---- */

static const char push_usage[] =
    "usage: funnel model push --server ADDR --stage 1|2|3|intent (--model M | --none) [--deadline-ms N]\n"
    "                         [--gate-queries Q [--qrels R]] [gate thresholds]\n"
    "\n"
    "Replaces the stage's model in a running cluster with no failed query: ADDR is\n"
    "the coordinator, which checks the model (every feature must be one it knows;\n"
    "a stage-1 model may use the cheap features only) and, for stage 1, pushes it on\n"
    "to every shard replica. Stage 3 (or 'intent') is the coordinator's query-intent\n"
    "model (the file `funnel intent train` writes). Searches in flight finish with the\n"
    "model they started with. --none removes the stage's model (the stage then keeps\n"
    "the order it is given). Prints the model now in use. Exit status: 0 ok, 1 refused\n"
    "or not every replica took it (the message says which), 2 usage.\n"
    "\n"
    "Quality gate (every stage): --gate-queries Q [--qrels R] stages the model beside\n"
    "the live one (stage 1: on every shard replica), runs Q with each (the candidate\n"
    "only for these shadow queries), prints the report and activates the model only\n"
    "if it passes; else it is discarded and the exit status is 1. Thresholds:\n"
    "--max-ndcg-drop D (0.02), --min-overlap O (0.5 without --qrels, else only if\n"
    "given), --max-latency-ratio L (3: p95 <= L x the live p95 + 10 ms; a live side\n"
    "without a model pays no stage-2 cost), --gate-qps Q (50 searches a second;\n"
    "0 = unpaced).\n";

static int model_push_mode(const char *server, int stage, const char *path, int mode, int64_t deadline_ms,
                           char *desc, size_t cap, fn_errbuf *eb)
{
    Funnel__V1__PushModelRequest req = FUNNEL__V1__PUSH_MODEL_REQUEST__INIT;
    req.stage = (uint32_t)stage;
    req.mode = (Funnel__V1__PushModelRequest__Mode)mode;
    char *text = NULL;
    size_t len = 0;
    if (path) {
        FILE *f = fopen(path, "rb");
        if (!f) return fn_seterr(eb, -errno, "%s: %s", path, strerror(errno));
        size_t capb = 0;
        for (;;) {
            if (len == capb) {
                capb = capb ? capb * 2 : 65536;
                if (capb > (256u << 20)) {
                    fclose(f);
                    free(text);
                    return fn_seterr(eb, FN_ELIMIT, "%s: larger than 256 MiB", path);
                }
                char *nt = realloc(text, capb);
                if (!nt) {
                    fclose(f);
                    free(text);
                    return fn_seterr(eb, -ENOMEM, "out of memory");
                }
                text = nt;
            }
            size_t got = fread(text + len, 1, capb - len, f);
            len += got;
            if (!got) break;
        }
        fclose(f);
        const char *base = strrchr(path, '/');
        req.name = (char *)(base ? base + 1 : path);
    }
    req.model.data = (uint8_t *)text;
    req.model.len = len;
    rpc_client_t *c = rpc_client_create(server);
    if (!c) {
        free(text);
        return fn_seterr(eb, -ENOMEM, "out of memory");
    }
    ProtobufCMessage *m = NULL;
    rpc_status st;
    grpc_status_code code = rpc_client_call(c, RPC_METHOD_ADMIN_PUSH_MODEL, &req.base,
                                            &funnel__v1__push_model_response__descriptor, deadline_ms, &m, &st);
    rpc_client_destroy(c);
    free(text);
    if (code != GRPC_STATUS_OK) return fn_seterr(eb, FN_ERPC, "%s: %s", rpc_status_name(code), st.message);
    const Funnel__V1__PushModelResponse *r = (const Funnel__V1__PushModelResponse *)m;
    if (desc) snprintf(desc, cap, "%s%s", r->model, "");
    if (desc && stage == 1 && r->replicas && mode != FUNNEL__V1__PUSH_MODEL_REQUEST__MODE__DISCARD) {
        size_t used = strlen(desc);
        snprintf(desc + used, cap - used, " on %u shard replicas", r->replicas);
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}

int ops_model_push(const char *server, int stage, const char *path, int64_t deadline_ms, char *desc,
                   size_t cap, fn_errbuf *eb)
{
    return model_push_mode(server, stage, path, FUNNEL__V1__PUSH_MODEL_REQUEST__MODE__REPLACE, deadline_ms, desc,
                           cap, eb);
}

static const char *stage_name(int stage) { return stage == 3 ? "intent" : stage == 1 ? "stage 1" : "stage 2"; }

/* --gate-queries: stage the model (stage 1: on every shard replica), gate it
 * against the live one, then activate or discard it. 0 pushed, 1 refused or
 * failed. */
static int model_push_gated(const char *server, int stage, const char *model, const char *queries,
                            const char *qrels, const ops_gate_opts *go, int64_t deadline)
{
    fn_errbuf eb = {{0}};
    char desc[512] = "";
    const char *sn = stage_name(stage);
    int rc = model_push_mode(server, stage, model, FUNNEL__V1__PUSH_MODEL_REQUEST__MODE__STAGE, deadline, desc,
                             sizeof desc, &eb);
    if (rc) {
        fprintf(stderr, "funnel model push: stage: %s\n", fn_errmsg(&eb, rc));
        if (stage == 1) {   /* the replicas that took it drop it again */
            fn_errbuf deb = {{0}};
            char d2[512];
            int drc = model_push_mode(server, stage, NULL, FUNNEL__V1__PUSH_MODEL_REQUEST__MODE__DISCARD, deadline,
                                      d2, sizeof d2, &deb);
            if (drc) fprintf(stderr, "funnel model push: discard: %s\n", fn_errmsg(&deb, drc));
        }
        return OPS_EXIT_FAIL;
    }
    printf("%s model staged: %s\n", sn, desc);
    fflush(stdout);
    rpc_client_t *c = rpc_client_create(server);
    int g = c ? ops_gate_run(c, "", "", 1, queries, qrels, go) : -1;
    rpc_client_destroy(c);
    int mode = g == 0 ? FUNNEL__V1__PUSH_MODEL_REQUEST__MODE__ACTIVATE : FUNNEL__V1__PUSH_MODEL_REQUEST__MODE__DISCARD;
    rc = model_push_mode(server, stage, NULL, mode, deadline, desc, sizeof desc, &eb);
    if (rc) {
        fprintf(stderr, "funnel model push: %s: %s\n", g == 0 ? "activate" : "discard", fn_errmsg(&eb, rc));
        return OPS_EXIT_FAIL;
    }
    if (g != 0) {
        printf("candidate discarded; %s model stays: %s\n", sn, desc);
        return OPS_EXIT_FAIL;
    }
    printf("%s model: %s\n", sn, desc);
    return OPS_EXIT_OK;
}

int ops_model_push_cmd(int argc, char **argv)
{
    static const struct option lo[] = {
        {"server", required_argument, 0, 's'}, {"stage", required_argument, 0, 'S'},
        {"model", required_argument, 0, 'm'},  {"none", no_argument, 0, 'n'},
        {"deadline-ms", required_argument, 0, 'd'}, {"help", no_argument, 0, 'h'},
        {"gate-queries", required_argument, 0, 'q'}, {"qrels", required_argument, 0, 'r'},
        {"max-ndcg-drop", required_argument, 0, 'N'}, {"min-overlap", required_argument, 0, 'O'},
        {"max-latency-ratio", required_argument, 0, 'L'}, {"gate-qps", required_argument, 0, 'Q'}, {0, 0, 0, 0}};
    const char *server = NULL, *model = NULL, *queries = NULL, *qrels = NULL;
    long stage = 0, deadline = 30000;
    int none = 0, c;
    /* a live side without a stage-2 model measures no stage-2 cost at all:
     * the latency guard is against a pathological model, not any model */
    ops_gate_opts go = { 0.02, 0.5, 0, 3.0, 10.0, 0, 10000, 50 };
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        double v = 0;
        if (c == 'N' || c == 'O' || c == 'L' || c == 'Q') {
            char *end;
            v = strtod(optarg, &end);
            if (!*optarg || *end || !isfinite(v) || v < 0) {
                fprintf(stderr, "funnel model push: --%s: not a valid number: '%s'\n",
                        c == 'N' ? "max-ndcg-drop" : c == 'O' ? "min-overlap" : c == 'Q' ? "gate-qps" : "max-latency-ratio",
                        optarg);
                return OPS_EXIT_USAGE;
            }
        }
        switch (c) {
        case 'q': queries = optarg; break;
        case 'r': qrels = optarg; break;
        case 'N': go.max_ndcg_drop = v; break;
        case 'O': go.min_overlap = v; go.overlap_given = 1; break;
        case 'L': go.max_latency_ratio = v; break;
        case 'Q': go.qps = v; break;
        case 's': server = optarg; break;
        case 'S': stage = strcmp(optarg, "intent") == 0 ? 3 : strtol(optarg, NULL, 10); break;
        case 'm': model = optarg; break;
        case 'n': none = 1; break;
        case 'd': deadline = strtol(optarg, NULL, 10); break;
        case 'h': fputs(push_usage, stdout); return OPS_EXIT_OK;
        default: fputs(push_usage, stderr); return OPS_EXIT_USAGE;
        }
    }
    if (!server || stage < 1 || stage > 3 || (!model == !none) || deadline <= 0 || optind != argc) {
        fprintf(stderr, "funnel model push: --server, --stage 1|2|3|intent and one of --model M / --none are required\n");
        fputs(push_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    if (queries && !model) {
        fprintf(stderr, "funnel model push: --gate-queries gates a --model (not a removal)\n");
        return OPS_EXIT_USAGE;
    }
    if (qrels && !queries) {
        fprintf(stderr, "funnel model push: --qrels needs --gate-queries\n");
        return OPS_EXIT_USAGE;
    }
    rpc_init();
    if (queries) {
        int grc = model_push_gated(server, (int)stage, model, queries, qrels, &go, deadline);
        rpc_shutdown();
        return grc;
    }
    fn_errbuf eb = {{0}};
    char desc[512] = "";
    int rc = ops_model_push(server, (int)stage, model, deadline, desc, sizeof desc, &eb);
    rpc_shutdown();
    if (rc) {
        fprintf(stderr, "funnel model push: %s\n", fn_errmsg(&eb, rc));
        return OPS_EXIT_FAIL;
    }
    printf("%s model: %s\n", stage_name((int)stage), desc);
    return OPS_EXIT_OK;
}
