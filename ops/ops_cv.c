/* ops_cv.c - `funnel cv`: k-fold cross-validation by query of the whole
 * funnel through a live cluster (docs/ranking.md "Evaluation protocol").
 *
 * For every fold: the models are cleared; the training queries' stage-1
 * candidates (cheap features) train a stage-1 model, which is pushed; their
 * stage-2 windows (all features, in the order the new stage 1 gives) train a
 * stage-2 model, which is pushed; the held-out queries are searched with
 * the models and without them (skip_models: the same cluster's BM25F).
 * Training runs `funnel train ... --guard` as a child process, exactly as a
 * user would. Judged queries only (the others carry no label).
 */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fn_rand.h"
#include "eval.h"
#include "funnel.pb-c.h"
#include "rpc_client.h"

extern char **environ;

static const char cv_usage[] =
    "usage: funnel cv --index IDX --queries Q --qrels R [--folds 5] [--seed S]\n"
    "                 [--dir RUNDIR] [--k 1000] [--stage1 logistic|none]\n"
    "                 [--stage1-window N] [--stage2-window N] [--keep]\n"
    "                 [--labels qrels|clicks] [--sessions 20] [--click-model cascade|pbm]\n"
    "                 [--stage2-k N]\n"
    "\n"
    "K-fold cross-validation by query of the funnel through a live cluster on IDX\n"
    "(started in RUNDIR, default a temporary directory, and stopped at the end):\n"
    "for each fold, train a stage-1 model (logistic, guarded; --stage1 none: no\n"
    "stage-1 model) and a stage-2 model (LambdaMART, guarded) on the other folds'\n"
    "judged queries with features from the cluster, push them, and search the\n"
    "fold's queries with and without them (the same cluster's BM25F).\n"
    "Prints per fold and overall NDCG@10, MAP, MRR for BM25F and the funnel, and\n"
    "funnel recall: of the judged-relevant documents in BM25F's top 10, the share\n"
    "that reaches the stage-2 window. --labels clicks trains the stage-2 model on\n"
    "simulated clicks instead of the judgments (the engagement loop: the training\n"
    "queries' BM25F pages logged as impressions, --sessions simulated users each\n"
    "with `funnel clicks simulate`, `funnel traindata --mode pointwise`); its\n"
    "model re-ranks the top 10 it learnt from (--stage2-k sets the coordinator's\n"
    "stage-2 window; default 10 with clicks, the coordinator's own otherwise).\n"
    "--keep keeps RUNDIR's training files,\n"
    "models and runs. Exit status: 0 ok, 1 failure, 2 usage.\n";

typedef struct cv_args {
    const char *index, *queries, *qrels, *dir;
    unsigned folds;
    uint64_t seed;
    uint32_t k, w1, w2;
    int stage1, keep;
    int clicks;                 /* stage-2 labels from simulated clicks, not the qrels */
    unsigned sessions;
    const char *click_model;
    uint32_t stage2_k;          /* the coordinator's stage-2 window (0 = its default) */
} cv_args;

/* Run `funnel ARGS...` (this very program) with stdout to out_path (or
 * inherited when NULL) and stderr to log_path; wait. 0 if it exited 0. */
static int run_self(char *const *args, const char *out_path, const char *log_path, char *why, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) { snprintf(why, cap, "cannot find this program: %s", strerror(errno)); return -1; }
    self[n] = '\0';
    char *argv[32];
    size_t na = 0;
    argv[na++] = self;
    for (size_t i = 0; args[i] && na < 31; i++) argv[na++] = args[i];
    argv[na] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_path) posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log_path) posix_spawn_file_actions_addopen(&fa, 2, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, self, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) { snprintf(why, cap, "cannot start %.300s: %s", self, strerror(rc)); return -1; }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(why, cap, "`funnel %s` failed (see %s)", args[0], log_path ? log_path : "its output");
        return -1;
    }
    return 0;
}

/* Copy path's bytes from offset on into out (the lines a fold added to the
 * impression log). */
static int copy_tail(const char *path, off_t offset, const char *out, char *why, size_t cap)
{
    FILE *in = fopen(path, "rb"), *o = fopen(out, "wb");
    int rc = 0;
    if (!in || !o || fseeko(in, offset, SEEK_SET) != 0) {
        snprintf(why, cap, "%.500s: %s", !in ? path : out, strerror(errno));
        rc = -1;
    } else {
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0)
            if (fwrite(buf, 1, n, o) != n) { snprintf(why, cap, "%.500s: write failed", out); rc = -1; break; }
    }
    if (in) fclose(in);
    if (o && fclose(o) != 0 && !rc) { snprintf(why, cap, "%.500s: write failed", out); rc = -1; }
    return rc;
}

static int write_queries(const char *path, const ops_query *q, const size_t *idx, size_t n)
{
    FILE *f = fopen(path, "w");
    if (!f) return -errno;
    for (size_t i = 0; i < n; i++) {
        const ops_query *e = &q[idx[i]];
        fprintf(f, "%s\t%s", e->qid, e->text);
        /* the query vector too: the training rows' vec_sim (%.9g: float32 exactly) */
        for (size_t j = 0; j < e->nvec; j++) fprintf(f, "%s%.9g", j ? " " : "\t", (double)e->vec[j]);
        fputc('\n', f);
    }
    return fclose(f) ? -errno : 0;
}

typedef struct recall_acc { uint64_t found, total; } recall_acc;

/* Search q[idx[0..n)] into run (with or without the models); with rec, also
 * count the funnel recall of those queries. */
static int search_fold(rpc_client_t *c, const ops_query *q, const size_t *idx, size_t n, uint32_t k,
                       int skip_models, ops_run *run, ops_run *run2, const ops_grades *g, recall_acc *rec,
                       uint32_t window, char *why, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        const ops_query *qq = &q[idx[i]];
        Funnel__V1__SearchRequest req = FUNNEL__V1__SEARCH_REQUEST__INIT;
        req.query = qq->text;
        req.plain_text = 1;   /* judged query sets are natural language */
        req.k = k;
        req.skip_models = skip_models;
        /* a query vector informs the models' vec_sim (docs/vectors.md) */
        req.vector = qq->vec;
        req.n_vector = qq->nvec;
        if (qq->nvec) req.fusion = FUNNEL__V1__FUSION__FUSION_LEARNED;
        req.request_id = qq->qid;
        ProtobufCMessage *m = NULL;
        rpc_status st;
        grpc_status_code code = rpc_client_call(c, RPC_METHOD_SEARCH, &req.base,
                                                &funnel__v1__search_response__descriptor, 30000, &m, &st);
        if (code != GRPC_STATUS_OK) {
            snprintf(why, cap, "query %s: %s: %s", qq->qid, rpc_status_name(code), st.message);
            return -1;
        }
        const Funnel__V1__SearchResponse *r = (const Funnel__V1__SearchResponse *)m;
        for (size_t h = 0; h < r->n_hits; h++)
            if (ops_eval_run_add(run, qq->qid, r->hits[h]->id, (double)(r->n_hits - h)) != 0 ||
                ops_eval_run_add(run2, qq->qid, r->hits[h]->id, (double)(r->n_hits - h)) != 0) {
                protobuf_c_message_free_unpacked(m, NULL);
                snprintf(why, cap, "out of memory");
                return -1;
            }
        if (rec) {
            /* funnel recall: BM25F's judged-relevant top 10 that reach the window */
            ProtobufCMessage *wm = NULL;
            Funnel__V1__SearchRequest wr = FUNNEL__V1__SEARCH_REQUEST__INIT;
            wr.query = qq->text;
            wr.plain_text = 1;
            wr.vector = qq->vec;
            wr.n_vector = qq->nvec;
            wr.k = window;
            wr.features = FUNNEL__V1__FEATURE_MODE__FEATURES_WINDOW;
            code = rpc_client_call(c, RPC_METHOD_SEARCH, &wr.base, &funnel__v1__search_response__descriptor,
                                   30000, &wm, &st);
            if (code != GRPC_STATUS_OK) {
                protobuf_c_message_free_unpacked(m, NULL);
                snprintf(why, cap, "query %s (window): %s: %s", qq->qid, rpc_status_name(code), st.message);
                return -1;
            }
            const Funnel__V1__SearchResponse *w = (const Funnel__V1__SearchResponse *)wm;
            for (size_t h = 0; h < r->n_hits && h < 10; h++) {
                if (ops_grades_get(g, qq->qid, strlen(qq->qid), r->hits[h]->id) <= 0) continue;
                rec->total++;
                for (size_t j = 0; j < w->n_hits; j++)
                    if (strcmp(w->hits[j]->id, r->hits[h]->id) == 0) { rec->found++; break; }
            }
            protobuf_c_message_free_unpacked(wm, NULL);
        }
        protobuf_c_message_free_unpacked(m, NULL);
    }
    return 0;
}

/* Means over the queries of a run only (a fold's): ops_eval_compute
 * averages over every judged query of the qrels. */
typedef struct fold_acc {
    const ops_query *q;
    const size_t *idx;
    size_t n;
    ops_eval_result r;
} fold_acc;

static void fold_cb(void *ud, const char *qid, const double v[OPS_EVAL_NMETRICS])
{
    fold_acc *a = ud;
    size_t i = 0;
    while (i < a->n && strcmp(a->q[a->idx[i]].qid, qid) != 0) i++;
    if (i == a->n) return;
    a->r.queries++;
    for (int m = 0; m < OPS_EVAL_NMETRICS; m++) a->r.v[m] += v[m];
}

static void fold_eval(const ops_qrels *qr, const ops_run *run, const ops_query *q, const size_t *idx,
                      size_t n, ops_eval_result *out)
{
    fold_acc a = { q, idx, n, { 0, { 0 } } };
    ops_eval_result all;
    ops_eval_compute(qr, run, &all, fold_cb, &a);
    for (int m = 0; m < OPS_EVAL_NMETRICS && a.r.queries; m++) a.r.v[m] /= (double)a.r.queries;
    *out = a.r;
}

static void print_row(const char *label, const ops_eval_result *b, const ops_eval_result *f)
{
    printf("%-8s %5zu  %.4f  %.4f  %+6.1f%%   %.4f  %.4f   %.4f  %.4f\n", label, b->queries,
           b->v[OPS_EVAL_NDCG10], f->v[OPS_EVAL_NDCG10],
           b->v[OPS_EVAL_NDCG10] > 0 ? 100.0 * (f->v[OPS_EVAL_NDCG10] / b->v[OPS_EVAL_NDCG10] - 1) : 0.0,
           b->v[OPS_EVAL_MAP], f->v[OPS_EVAL_MAP], b->v[OPS_EVAL_MRR], f->v[OPS_EVAL_MRR]);
}

static int cv_run(const cv_args *a, char *why, size_t cap)
{
    fn_errbuf eb = {{0}};
    ops_query *q = NULL;
    size_t nq = 0;
    ops_grades *g = NULL;
    ops_qrels *qr = NULL;
    int rc = -1;
    if (ops_queries_load(a->queries, &q, &nq, &eb) || ops_grades_load(a->qrels, &g, &eb) ||
        ops_eval_load_qrels(a->qrels, &qr, &eb)) {
        snprintf(why, cap, "%s", eb.msg);
        goto out_data;
    }
    /* judged queries, shuffled by the seed, dealt round-robin into folds */
    size_t *order = malloc((nq ? nq : 1) * sizeof *order), nj = 0;
    if (!order) { snprintf(why, cap, "out of memory"); goto out_data; }
    for (size_t i = 0; i < nq; i++)
        if (ops_grades_has_query(g, q[i].qid, strlen(q[i].qid))) order[nj++] = i;
    uint64_t st = a->seed;
    for (size_t i = nj; i > 1; i--) {
        size_t j = (size_t)(fn_splitmix64(&st) % i);
        size_t t = order[i - 1]; order[i - 1] = order[j]; order[j] = t;
    }
    if (nj < a->folds) {
        snprintf(why, cap, "%zu judged queries, fewer than %u folds", nj, a->folds);
        free(order);
        goto out_data;
    }

    /* the cluster */
    char dir[PATH_MAX];
    int own_dir = !a->dir;
    if (a->dir) {
        snprintf(dir, sizeof dir, "%s", a->dir);
        ops_mkdirs(dir);
    } else {
        snprintf(dir, sizeof dir, "%s/funnel-cv.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir)) { snprintf(why, cap, "mkdtemp: %s", strerror(errno)); free(order); goto out_data; }
    }
    char run_dir[PATH_MAX + 8], log[PATH_MAX + 16], addr_path[PATH_MAX + 32], addr[256] = "";
    char implog[PATH_MAX + 32], cconf[PATH_MAX + 32];
    snprintf(run_dir, sizeof run_dir, "%s/run", dir);
    snprintf(log, sizeof log, "%s/cv.log", dir);
    snprintf(addr_path, sizeof addr_path, "%s/coordinator.addr", run_dir);
    snprintf(implog, sizeof implog, "%s/impressions.jsonl", dir);
    snprintf(cconf, sizeof cconf, "%s/coordinator.conf", dir);
    {
        FILE *cf = fopen(cconf, "w");
        if (!cf) { snprintf(why, cap, "%.900s: %s", cconf, strerror(errno)); free(order); goto out_dir; }
        if (a->clicks) fprintf(cf, "impressions-log = %s\nimpressions-max-bytes = 0\n", implog);
        if (a->stage2_k) fprintf(cf, "stage2-k = %u\n", a->stage2_k);
        fclose(cf);
        char *args[] = { "cluster", "up", "--index", (char *)a->index, "--dir", run_dir,
                         "--coordinator-config", cconf, NULL };
        if (run_self(args, "/dev/null", log, why, cap)) { free(order); goto out_dir; }
    }
    if (ops_read_small(addr_path, addr, sizeof addr) != 0) {
        snprintf(why, cap, "%.900s: no coordinator address", addr_path);
        free(order);
        goto out_down;
    }
    rpc_init();
    rpc_client_t *c = rpc_client_create(addr);
    ops_run *all_b = NULL, *all_f = NULL;
    ops_eval_run_new(&all_b);
    ops_eval_run_new(&all_f);
    recall_acc rec_all = { 0, 0 };
    printf("fold   queries  ndcg@10 bm25f  funnel   change    map bm25f funnel  mrr bm25f funnel  recall  stage-2 model\n");
    rc = 0;
    for (unsigned f = 0; f < a->folds && rc == 0; f++) {
        size_t *test = malloc(nj * sizeof *test), *train = malloc(nj * sizeof *train), nt = 0, ntr = 0;
        if (!test || !train) { free(test); free(train); snprintf(why, cap, "out of memory"); rc = -1; break; }
        for (size_t i = 0; i < nj; i++) {
            if (i % a->folds == f) test[nt++] = order[i];
            else train[ntr++] = order[i];
        }
        char tq[PATH_MAX + 32], s1[PATH_MAX + 32], s2[PATH_MAX + 32], m1[PATH_MAX + 32], m2[PATH_MAX + 32];
        snprintf(tq, sizeof tq, "%s/fold%u.train.tsv", dir, f + 1);
        snprintf(s1, sizeof s1, "%s/fold%u.stage1.svm", dir, f + 1);
        snprintf(s2, sizeof s2, "%s/fold%u.stage2.svm", dir, f + 1);
        snprintf(m1, sizeof m1, "%s/fold%u.stage1.model", dir, f + 1);
        snprintf(m2, sizeof m2, "%s/fold%u.stage2.model", dir, f + 1);
        char desc2[512] = "";
        if (write_queries(tq, q, train, ntr) ||
            ops_model_push(addr, 1, NULL, 30000, NULL, 0, &eb) ||
            ops_model_push(addr, 2, NULL, 30000, NULL, 0, &eb)) {
            snprintf(why, cap, "fold %u: %s", f + 1, eb.msg[0] ? eb.msg : "cannot write the training queries");
            rc = -1;
        }
        if (!rc && a->stage1) {
            if (ops_features_write(addr, tq, a->qrels, 1, a->w1, 30000, s1, &eb)) {
                snprintf(why, cap, "fold %u: stage-1 features: %s", f + 1, eb.msg);
                rc = -1;
            } else {
                char *args[] = { "train", "--data", s1, "--objective", "logistic", "--guard", "--guard-drop",
                                 "vec_sim", "--out", m1, NULL };
                if (run_self(args, "/dev/null", log, why, cap) || ops_model_push(addr, 1, m1, 30000, NULL, 0, &eb)) {
                    if (eb.msg[0]) snprintf(why, cap, "fold %u: stage-1 push: %s", f + 1, eb.msg);
                    rc = -1;
                }
            }
        }
        if (!rc && a->clicks) {
            /* the engagement loop: the training queries' pages as a BM25F
             * cluster shows them, simulated users, clicks -> training data */
            char imp[PATH_MAX + 64], imp_n[PATH_MAX + 64], clk[PATH_MAX + 64], run[PATH_MAX + 64];
            snprintf(imp, sizeof imp, "%s/fold%u.impressions.jsonl", dir, f + 1);
            snprintf(imp_n, sizeof imp_n, "%s/fold%u.impressions.sessions.jsonl", dir, f + 1);
            snprintf(clk, sizeof clk, "%s/fold%u.clicks.jsonl", dir, f + 1);
            snprintf(run, sizeof run, "%s/fold%u.bm25.trec", dir, f + 1);
            struct stat before;
            if (stat(implog, &before) != 0) before.st_size = 0;
            char seed[32], sess[16];
            snprintf(seed, sizeof seed, "%llu", (unsigned long long)a->seed);
            snprintf(sess, sizeof sess, "%u", a->sessions);
            char *sargs[] = { "search", "--server", addr, "--queries", tq, "--k", "10", "--skip-models",
                              "--concurrency", "1", "--run-out", run, NULL };
            char *cargs[] = { "clicks", "simulate", "--impressions", imp, "--qrels", (char *)a->qrels, "--model",
                              (char *)a->click_model, "--seed", seed, "--sessions", sess, "--impressions-out",
                              imp_n, "--out", clk, NULL };
            char *targs[] = { "traindata", "--impressions", imp_n, "--clicks", clk, "--mode", "pointwise",
                              "--out", s2, NULL };
            char *args[] = { "train", "--data", s2, "--objective", "lambdarank", "--guard", "--guard-drop",
                             "vec_sim", "--out", m2, NULL };
            if (run_self(sargs, "/dev/null", log, why, cap) || copy_tail(implog, before.st_size, imp, why, cap) ||
                run_self(cargs, "/dev/null", log, why, cap) || run_self(targs, "/dev/null", log, why, cap) ||
                run_self(args, "/dev/null", log, why, cap) ||
                ops_model_push(addr, 2, m2, 30000, desc2, sizeof desc2, &eb)) {
                if (eb.msg[0]) snprintf(why, cap, "fold %u: stage-2 push: %s", f + 1, eb.msg);
                rc = -1;
            }
        } else if (!rc) {
            if (ops_features_write(addr, tq, a->qrels, 2, a->w2, 30000, s2, &eb)) {
                snprintf(why, cap, "fold %u: stage-2 features: %s", f + 1, eb.msg);
                rc = -1;
            } else {
                char *args[] = { "train", "--data", s2, "--objective", "lambdarank", "--guard", "--guard-drop",
                                 "vec_sim", "--out", m2, NULL };
                if (run_self(args, "/dev/null", log, why, cap) ||
                    ops_model_push(addr, 2, m2, 30000, desc2, sizeof desc2, &eb)) {
                    if (eb.msg[0]) snprintf(why, cap, "fold %u: stage-2 push: %s", f + 1, eb.msg);
                    rc = -1;
                }
            }
        }
        if (!rc) {
            ops_run *rb = NULL, *rf = NULL;
            ops_eval_run_new(&rb);
            ops_eval_run_new(&rf);
            recall_acc rec = { 0, 0 };
            if (search_fold(c, q, test, nt, a->k, 1, rb, all_b, g, &rec, a->w2, why, cap) ||
                search_fold(c, q, test, nt, a->k, 0, rf, all_f, g, NULL, 0, why, cap)) {
                rc = -1;
            } else {
                ops_eval_result eb_, ef;
                fold_eval(qr, rb, q, test, nt, &eb_);
                fold_eval(qr, rf, q, test, nt, &ef);
                char label[16];
                snprintf(label, sizeof label, "%u", f + 1);
                print_row(label, &eb_, &ef);
                printf("         recall %.4f (%llu/%llu)  %s\n", rec.total ? (double)rec.found / rec.total : 1.0,
                       (unsigned long long)rec.found, (unsigned long long)rec.total, desc2);
                rec_all.found += rec.found;
                rec_all.total += rec.total;
            }
            ops_eval_run_free(rb);
            ops_eval_run_free(rf);
        }
        free(test);
        free(train);
        fflush(stdout);
    }
    if (rc == 0) {
        ops_eval_result eb_, ef;
        ops_eval_compute(qr, all_b, &eb_, NULL, NULL);
        ops_eval_compute(qr, all_f, &ef, NULL, NULL);
        print_row("all", &eb_, &ef);
        printf("funnel recall: %.4f (%llu of %llu judged-relevant documents in BM25F's top 10 reach the "
               "stage-2 window)\n", rec_all.total ? (double)rec_all.found / rec_all.total : 1.0,
               (unsigned long long)rec_all.found, (unsigned long long)rec_all.total);
    }
    ops_eval_run_free(all_b);
    ops_eval_run_free(all_f);
    rpc_client_destroy(c);
    rpc_shutdown();
    free(order);
out_down:
    {
        char *args[] = { "cluster", "down", "--dir", run_dir, NULL };
        char w2[256];
        run_self(args, "/dev/null", log, w2, sizeof w2);
    }
out_dir:
    if (own_dir && !a->keep && rc == 0) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "funnel cv: cannot remove %s\n", dir);
    } else {
        fprintf(stderr, "funnel cv: files in %s\n", dir);
    }
out_data:
    ops_eval_qrels_free(qr);
    ops_grades_free(g);
    ops_queries_free(q, nq);
    return rc;
}

int ops_cmd_cv(int argc, char **argv)
{
    static const struct option lo[] = {
        {"index", required_argument, 0, 'i'}, {"queries", required_argument, 0, 'q'},
        {"qrels", required_argument, 0, 'r'}, {"folds", required_argument, 0, 'f'},
        {"seed", required_argument, 0, 's'},  {"dir", required_argument, 0, 'd'},
        {"k", required_argument, 0, 'k'},     {"stage1", required_argument, 0, '1'},
        {"stage1-window", required_argument, 0, 'a'}, {"stage2-window", required_argument, 0, 'b'},
        {"keep", no_argument, 0, 'K'},        {"labels", required_argument, 0, 'L'},
        {"sessions", required_argument, 0, 'n'}, {"click-model", required_argument, 0, 'm'},
        {"stage2-k", required_argument, 0, 'W'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    cv_args a = { .folds = 5, .seed = 1, .k = 1000, .w1 = 200, .w2 = 500, .stage1 = 1, .sessions = 20,
                  .click_model = "cascade" };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'i': a.index = optarg; break;
        case 'q': a.queries = optarg; break;
        case 'r': a.qrels = optarg; break;
        case 'f': a.folds = (unsigned)strtoul(optarg, NULL, 10); break;
        case 's': a.seed = strtoull(optarg, NULL, 10); break;
        case 'd': a.dir = optarg; break;
        case 'k': a.k = (uint32_t)strtoul(optarg, NULL, 10); break;
        case '1':
            if (strcmp(optarg, "none") == 0) a.stage1 = 0;
            else if (strcmp(optarg, "logistic") == 0) a.stage1 = 1;
            else { fputs(cv_usage, stderr); return OPS_EXIT_USAGE; }
            break;
        case 'a': a.w1 = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'b': a.w2 = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'K': a.keep = 1; break;
        case 'L':
            if (strcmp(optarg, "clicks") == 0) a.clicks = 1;
            else if (strcmp(optarg, "qrels") == 0) a.clicks = 0;
            else { fputs(cv_usage, stderr); return OPS_EXIT_USAGE; }
            break;
        case 'n': a.sessions = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'W': a.stage2_k = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'm': a.click_model = optarg; break;
        case 'h': fputs(cv_usage, stdout); return OPS_EXIT_OK;
        default: fputs(cv_usage, stderr); return OPS_EXIT_USAGE;
        }
    }
    if (!a.index || !a.queries || !a.qrels || a.folds < 2 || a.folds > 100 || !a.k || a.k > 10000 ||
        !a.w1 || !a.w2 || optind != argc) {
        fprintf(stderr, "funnel cv: --index, --queries and --qrels are required; --folds 2..100\n");
        fputs(cv_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    /* a click-trained model has only seen the pages users were shown: it
     * re-ranks those ranks, not documents from deep in the window */
    if (a.clicks && !a.stage2_k) a.stage2_k = 10;
    char why[1024] = "";
    if (cv_run(&a, why, sizeof why) != 0) {
        fprintf(stderr, "funnel cv: %s\n", why);
        return OPS_EXIT_FAIL;
    }
    return OPS_EXIT_OK;
}
