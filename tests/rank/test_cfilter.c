/* test_cfilter.c - the content filter (rank/cfilter.c, ops/ops_cfilter.c):
 * deterministic features, a separable synthetic set learned, the model file
 * round trip and damage, metrics, and the CLI on SpamAssassin. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cfilter.h"
#include "search.h"
#include "stored.h"
#include "fn_io.h"
#include "ops.h"
#include "testutil.h"

static const char *T1 = "FREE money!!! Click now";
static const char *B1 = "Visit http://www.Cheap-Pills.example.com/buy or mail sales@offers.example.net. WINNER $$$";

Test(cfilter, features_deterministic)
{
    cfilter_feat a[CFILTER_MAX_FEATS], b[CFILTER_MAX_FEATS];
    size_t na = cfilter_features(T1, strlen(T1), B1, strlen(B1), 1u << 18, a, CFILTER_MAX_FEATS);
    size_t nb = cfilter_features(T1, strlen(T1), B1, strlen(B1), 1u << 18, b, CFILTER_MAX_FEATS);
    cr_assert_gt(na, 20);
    cr_assert_eq(na, nb);
    cr_assert(memcmp(a, b, na * sizeof *a) == 0);
    for (size_t k = 1; k < na; k++)
        cr_assert_lt(a[k - 1].col, a[k].col, "columns ascending and distinct");
    /* case folding: the same words in another case give the same token columns */
    const char *t2 = "free MONEY!!! click NOW";
    nb = cfilter_features(t2, strlen(t2), B1, strlen(B1), 1u << 18, b, CFILTER_MAX_FEATS);
    cr_assert_eq(na, nb);
    /* the cap is honoured and empty input gives nothing */
    cr_assert_leq(cfilter_features(T1, strlen(T1), B1, strlen(B1), 1u << 18, b, 5), 5);
    cr_assert_eq(cfilter_features(NULL, 0, NULL, 0, 1u << 18, b, CFILTER_MAX_FEATS), 0);
}

Test(cfilter, metrics)
{
    double s[] = { 0.9, 0.8, 0.8, 0.3, 0.1 };
    int y[] = { 1, 1, 0, 0, 0 };
    /* positives outrank negatives except the 0.8 tie: (2*3 - 0.5) / 6 */
    cr_assert_float_eq(cfilter_auc(s, y, 5), 5.5 / 6.0, 1e-12);
    double p, r, f1;
    cfilter_prf(s, y, 5, 0.8, &p, &r, &f1);
    cr_assert_float_eq(p, 2.0 / 3.0, 1e-12);
    cr_assert_float_eq(r, 1.0, 1e-12);
    int met;
    cr_assert_float_eq(cfilter_pick_threshold(s, y, 5, 1.0, &met), 0.9, 1e-12);
    cr_assert(met);
    cr_assert_float_eq(cfilter_pick_threshold(s, y, 5, 0.6, &met), 0.8, 1e-12);
    /* strict: the highest threshold whose recall reaches the target */
    cr_assert_float_eq(cfilter_pick_strict(s, y, 5, 0.5), 0.9, 1e-12);
    cr_assert_float_eq(cfilter_pick_strict(s, y, 5, 0.995), 0.8, 1e-12);
    int none[] = { 0, 0, 0, 0, 0 };
    cr_assert_float_eq(cfilter_pick_strict(s, none, 5, 0.995), 0.1, 1e-12);
}

/* A separable set: positives use words of one vocabulary, negatives another. */
static const char *POSW[] = { "prize", "lottery", "jackpot", "bonus", "cash", "winner", "claim", "reward" };
static const char *NEGW[] = { "meeting", "agenda", "kernel", "patch", "review", "release", "build", "notes" };

typedef struct synth {
    cfilter_doc d[400];
    char id[400][16], title[400][64], body[400][256];
} synth;

static void make_synth(synth *s, unsigned seed)
{
    srand(seed);
    for (size_t i = 0; i < 400; i++) {
        int pos = i % 3 == 0;
        const char **w = pos ? POSW : NEGW;
        snprintf(s->id[i], sizeof s->id[i], "d%zu", i);
        snprintf(s->title[i], sizeof s->title[i], "%s %s", w[rand() % 8], w[rand() % 8]);
        size_t o = 0;
        for (int k = 0; k < 12; k++)
            o += (size_t)snprintf(s->body[i] + o, sizeof s->body[i] - o, "%s ", w[rand() % 8]);
        s->d[i] = (cfilter_doc){ .id = s->id[i], .idlen = strlen(s->id[i]), .title = s->title[i],
                                 .tlen = strlen(s->title[i]), .body = s->body[i], .blen = o, .positive = pos };
    }
}

static cfilter_model_t *train_synth(synth *s)
{
    cfilter_train_opts o;
    cfilter_train_defaults(&o);
    o.buckets = 4096;
    cfilter_model_t *m = NULL;
    cfilter_train_report r;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(cfilter_train(s->d, 400, &o, &m, &r, &eb), 0, "%s", eb.msg);
    cr_log_info("valid P %.4f R %.4f rows %zu pos %zu", r.valid_precision, r.valid_recall, r.valid_rows, r.valid_pos);
    cr_assert(r.target_met);
    /* out of fold: every positive above the threshold, which may reach into
     * the negatives as long as precision stays at the target */
    cr_assert_geq(r.valid_precision, o.target_precision);
    cr_assert_float_eq(r.valid_recall, 1.0, 1e-12);
    cr_assert_gt(r.valid_rows, 40);
    return m;
}

Test(cfilter, learns_separable_set)
{
    static synth s;
    make_synth(&s, 7);
    cfilter_model_t *m = train_synth(&s);
    static synth t;
    make_synth(&t, 99);
    double sc[400];
    int y[400];
    for (size_t i = 0; i < 400; i++) {
        sc[i] = cfilter_score(m, t.d[i].title, t.d[i].tlen, t.d[i].body, t.d[i].blen);
        y[i] = t.d[i].positive;
    }
    double p, r, f1;
    cfilter_prf(sc, y, 400, cfilter_model_threshold(m), &p, &r, &f1);
    cr_log_info("synthetic: threshold %.6f P %.4f R %.4f AUC %.6f", cfilter_model_threshold(m), p, r, cfilter_auc(sc, y, 400));
    cr_assert_float_eq(cfilter_auc(sc, y, 400), 1.0, 1e-12);
    /* the threshold keeps out-of-fold precision at the target (0.98), so a
     * new set keeps about that precision and nearly all of its recall */
    cr_assert_geq(p, 0.97);
    cr_assert_geq(r, 0.9);
    cfilter_model_free(m);
}

/* Document signals: the same words in both classes, the label told only by
 * the report rate (a numeric field of the document's JSON). The model must
 * learn it from the signal, and be blind without it. */
static void make_signal_set(synth *s, unsigned seed, int with_signal)
{
    srand(seed);
    for (size_t i = 0; i < 400; i++) {
        int pos = i % 3 == 0;
        const char **w = rand() % 2 ? POSW : NEGW;   /* words say nothing */
        snprintf(s->id[i], sizeof s->id[i], "s%zu", i);
        snprintf(s->title[i], sizeof s->title[i], "%s %s", w[rand() % 8], w[rand() % 8]);
        size_t o = 0;
        for (int k = 0; k < 12; k++)
            o += (size_t)snprintf(s->body[i] + o, sizeof s->body[i] - o, "%s ", w[rand() % 8]);
        char js[128];
        double rate = pos ? 0.3 + 0.7 * rand() / (double)RAND_MAX : 0.2 * rand() / (double)RAND_MAX;
        snprintf(js, sizeof js, "{\"report_rate\": %.4f, \"reports\": \"many\"}", rate);
        json_error_t je;
        json_t *j = json_loads(js, 0, &je);
        cr_assert_not_null(j);
        s->d[i] = (cfilter_doc){ .id = s->id[i], .idlen = strlen(s->id[i]), .title = s->title[i],
                                 .tlen = strlen(s->title[i]), .body = s->body[i], .blen = o, .positive = pos };
        if (with_signal) cfilter_signals_json(j, &s->d[i].sig);
        json_decref(j);
    }
}

Test(cfilter, document_signals)
{
    static synth tr, te, blind;
    make_signal_set(&tr, 5, 1);
    make_signal_set(&te, 77, 1);
    make_signal_set(&blind, 77, 0);
    /* only the numeric field counts: "reports" is a string here */
    cr_assert_eq(tr.d[0].sig.mask, 1u);
    cfilter_train_opts o;
    cfilter_train_defaults(&o);
    o.buckets = 4096;
    cfilter_model_t *m = NULL;
    cfilter_train_report r;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(cfilter_train(tr.d, 400, &o, &m, &r, &eb), 0, "%s", eb.msg);
    double sc[400], sb[400];
    int y[400];
    for (size_t i = 0; i < 400; i++) {
        sc[i] = cfilter_score_sig(m, te.d[i].title, te.d[i].tlen, te.d[i].body, te.d[i].blen, &te.d[i].sig);
        sb[i] = cfilter_score_sig(m, blind.d[i].title, blind.d[i].tlen, blind.d[i].body, blind.d[i].blen,
                                  &blind.d[i].sig);
        y[i] = te.d[i].positive;
    }
    double auc = cfilter_auc(sc, y, 400), auc_blind = cfilter_auc(sb, y, 400);
    cr_log_info("signals: AUC %.4f with the report rate, %.4f without", auc, auc_blind);
    cr_assert_geq(auc, 0.95, "AUC %.4f with the signal", auc);
    cr_assert_lt(auc_blind, 0.7, "AUC %.4f without it: the words should say nothing", auc_blind);

    /* index time: funnel index build --filter-model reads the same field
     * from each document's JSON */
    char dir[64], mp[256], cp[256], idx[256], sh[300];
    tu_mkdtemp(dir, sizeof dir, "/tmp/test_cfilter_XXXXXX");
    snprintf(mp, sizeof mp, "%s/sig.model", dir);
    snprintf(cp, sizeof cp, "%s/c.jsonl", dir);
    snprintf(idx, sizeof idx, "%s/idx", dir);
    snprintf(sh, sizeof sh, "%s/shard-000", idx);
    cr_assert_eq(cfilter_model_save(m, mp, &eb), 0, "%s", eb.msg);
    FILE *cf = fopen(cp, "w");
    cr_assert(cf);
    for (size_t i = 0; i < 30; i++)
        fprintf(cf, "{\"id\": \"%s\", \"title\": \"%s\", \"body\": \"%s\", \"report_rate\": %.17g}\n", te.id[i],
                te.title[i], te.body[i], te.d[i].sig.v[0]);
    fclose(cf);
    const char *build[] = { "index", "build", "--input", cp, "--shards", "1", "--out", idx, "--filter-model", mp, NULL };
    fflush(stdout);
    cr_assert_eq(ops_cmd_index(10, (char **)build), OPS_EXIT_OK);
    idx_reader_t *rd = NULL;
    cr_assert_eq(idx_reader_open(sh, &rd, &eb), 0, "%s", eb.msg);
    idx_searcher_t *se = NULL;
    cr_assert_eq(idx_searcher_create(rd, &se, &eb), 0, "%s", eb.msg);
    size_t differ = 0;
    for (size_t i = 0; i < 30; i++) {
        const char *id = te.id[i];
        uint32_t doc;
        float got;
        cr_assert_eq(idx_ids_docs(se, &id, 1, &doc, &eb), 0, "%s: %s", id, eb.msg);
        cr_assert_eq(idx_doc_filter_score(rd, doc, &got, &eb), 0, "%s", eb.msg);
        float want = (float)sc[i], blindf = (float)sb[i];
        cr_assert_eq(got, want, "%s: stored %.9g, with its report rate %.9g", id, got, want);
        differ += got != blindf;
    }
    cr_assert_gt(differ, 20, "the stored scores are the text-only ones");
    idx_searcher_release(se);
    idx_searcher_destroy(se);
    idx_reader_close(rd);
    tu_rmtree(dir);
    cfilter_model_free(m);
}

Test(cfilter, round_trip_and_damage)
{
    static synth s;
    make_synth(&s, 3);
    cfilter_model_t *m = train_synth(&s);
    char dir[64], path[256];
    tu_mkdtemp(dir, sizeof dir, "/tmp/test_cfilter_XXXXXX");
    snprintf(path, sizeof path, "%s/f.model", dir);
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(cfilter_model_save(m, path, &eb), 0, "%s", eb.msg);
    cfilter_model_t *l = NULL;
    cr_assert_eq(cfilter_model_load(path, &l, &eb), 0, "%s", eb.msg);
    cr_assert_eq(cfilter_model_threshold(l), cfilter_model_threshold(m));
    cr_assert_eq(cfilter_model_strict(l), cfilter_model_strict(m));
    cr_assert_leq(cfilter_model_strict(m), cfilter_model_threshold(m));
    cr_assert_eq(cfilter_model_nweights(l), cfilter_model_nweights(m));
    for (size_t i = 0; i < 400; i++) {
        double a = cfilter_score(m, s.d[i].title, s.d[i].tlen, s.d[i].body, s.d[i].blen);
        double b = cfilter_score(l, s.d[i].title, s.d[i].tlen, s.d[i].body, s.d[i].blen);
        cr_assert_eq(a, b, "doc %zu: %.17g vs %.17g", i, a, b);
    }
    cfilter_model_free(l);

    size_t len;
    char *text = tu_read_file(path, &len);
    cr_assert(text && len > 100);
    {   /* a file of before the strict threshold (no "strict" line) loads with strict = threshold */
        char *st = strstr(text, "\nstrict "), *nl = st ? strchr(st + 1, '\n') : NULL;
        cr_assert(st && nl);
        char *ck = strstr(text, "checksum ");
        cr_assert(ck);
        fn_sbuf ob = { 0 };
        cr_assert_eq(fn_sbuf_printf(&ob, "%.*s%.*s", (int)(st - text), text, (int)(ck - nl), nl), 0);
        char old[300];
        snprintf(old, sizeof old, "%s/old.model", dir);
        cr_assert_eq(fn_write_checksummed(old, &ob, &eb), 0, "%s", eb.msg);
        cr_assert_eq(cfilter_model_load(old, &l, &eb), 0, "%s", eb.msg);
        cr_assert_eq(cfilter_model_strict(l), cfilter_model_threshold(m));
        cfilter_model_free(l);
        /* a strict threshold above the threshold is refused */
        fn_sbuf bb = { 0 };
        cr_assert_eq(fn_sbuf_printf(&bb, "%.*s\nstrict 1%.*s", (int)(st - text), text, (int)(ck - nl), nl), 0);
        cr_assert_eq(fn_write_checksummed(old, &bb, &eb), 0, "%s", eb.msg);
        cr_assert_eq(cfilter_model_load(old, &l, &eb), FN_EFORMAT);
        cr_assert(strstr(eb.msg, "strict"), "%s", eb.msg);
    }
    /* a flipped byte in the middle */
    char *bad = malloc(len + 1);
    memcpy(bad, text, len + 1);
    bad[len / 2] ^= 0x01;
    FILE *f = fopen(path, "w");
    fwrite(bad, 1, len, f);
    fclose(f);
    cr_assert_eq(cfilter_model_load(path, &l, &eb), FN_ECORRUPT);
    cr_assert_null(l);
    cr_assert(strstr(eb.msg, path), "message names the file: %s", eb.msg);
    /* truncated */
    f = fopen(path, "w");
    fwrite(text, 1, len - 30, f);
    fclose(f);
    cr_assert_eq(cfilter_model_load(path, &l, &eb), FN_ECORRUPT);
    cr_assert(strstr(eb.msg, path), "message names the file: %s", eb.msg);
    /* not a model at all */
    tu_write_file(path, "hello\n");
    cr_assert_neq(cfilter_model_load(path, &l, &eb), 0);
    cr_assert(strstr(eb.msg, path));
    free(bad);
    free(text);
    cfilter_model_free(m);
    tu_rmtree(dir);
}

/* ---- the CLI on SpamAssassin ---- */

static int run(const char *const *args)
{
    char *argv[32];
    int argc = 0;
    while (args[argc]) {
        argv[argc] = (char *)args[argc];
        argc++;
    }
    argv[argc] = NULL;
    fflush(stdout);
    return ops_cmd_filter(argc, argv);
}

Test(cfilter, cli_spam_assassin, .timeout = 180)   /* ASan -O0: about 45 s quiet */
{
    char data[512];
    snprintf(data, sizeof data, "%s/spam-assassin/corpus.jsonl", tu_data_dir());
    if (access(data, R_OK) != 0) cr_skip_test("no %s", data);
    char dir[64], mp[256], out[256], curve[256];
    tu_mkdtemp(dir, sizeof dir, "/tmp/test_cfilter_XXXXXX");
    snprintf(mp, sizeof mp, "%s/f.model", dir);
    snprintf(out, sizeof out, "%s/eval.txt", dir);
    snprintf(curve, sizeof curve, "%s/pr.dat", dir);
    const char *train[] = { "filter", "train", "--input", data, "--positive", "spam", "--out", mp,
                            "--holdout", "0.2", "--seed", "1", NULL };
    cr_assert_eq(run(train), OPS_EXIT_OK);
    /* eval's stdout into a file, then parsed */
    fflush(stdout);
    int saved = dup(1);
    FILE *f = fopen(out, "w");
    cr_assert(f);
    dup2(fileno(f), 1);
    const char *eval[] = { "filter", "eval", "--input", data, "--positive", "spam", "--model", mp,
                           "--holdout", "0.2", "--seed", "1", "--curve", curve, NULL };
    int rc = run(eval);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    fclose(f);
    cr_assert_eq(rc, OPS_EXIT_OK);
    char *txt = tu_read_file(out, NULL);
    size_t rows = 0, pos = 0;
    double p = 0, r = 0, f1 = 0, auc = 0;
    const char *q = strstr(txt, "rows ");
    cr_assert(q && sscanf(q, "rows %zu positives %zu", &rows, &pos) == 2, "%s", txt);
    cr_assert((q = strstr(txt, "precision ")) && sscanf(q, "precision %lf recall %lf f1 %lf", &p, &r, &f1) == 3);
    cr_assert((q = strstr(txt, "roc_auc ")) && sscanf(q, "roc_auc %lf", &auc) == 1);
    double thr = 0, st = 0, sp = 0, sr = 0, sf1 = 0;
    cr_assert((q = strstr(txt, "threshold ")) && sscanf(q, "threshold %lf", &thr) == 1, "%s", txt);
    cr_assert((q = strstr(txt, "strict ")) && sscanf(q, "strict %lf", &st) == 1, "%s", txt);
    cr_assert((q = strstr(txt, "strict precision ")) &&
              sscanf(q, "strict precision %lf recall %lf f1 %lf", &sp, &sr, &sf1) == 3, "%s", txt);
    cr_log_info("held-out: %zu rows, %zu spam; P %.4f R %.4f F1 %.4f AUC %.4f; strict %.6f P %.4f R %.4f", rows,
                pos, p, r, f1, auc, st, sp, sr);
    cr_assert_leq(st, thr);
    cr_assert_geq(sr, r);
    cr_assert(rows > 1000 && rows < 1400, "the 20%% split: %zu rows", rows);
    cr_assert_geq(f1, 0.95);
    cr_assert_geq(auc, 0.99);
    /* the acceptance: precision >= 0.97 at the threshold chosen for the
     * default target (0.98 out of fold): 0.980 here (docs/evaluation.md) */
    cr_assert_geq(p, 0.97);
    char *c = tu_read_file(curve, NULL);
    cr_assert(c && strstr(c, "# recall precision threshold\n"));
    free(c);
    free(txt);
    /* index build --filter-model: the meta and every stored score are the model's */
    {
        char idx[300], sh[400], sub[300];
        snprintf(idx, sizeof idx, "%s/idx", dir);
        snprintf(sh, sizeof sh, "%s/shard-000", idx);
        /* the corpus' first 200 documents: enough to compare, and cheap under ASan */
        snprintf(sub, sizeof sub, "%s/sub.jsonl", dir);
        {
            FILE *in = fopen(data, "r"), *o = fopen(sub, "w");
            cr_assert(in && o);
            char *ln = NULL;
            size_t lc = 0;
            for (int i = 0; i < 200 && getline(&ln, &lc, in) > 0; i++) fputs(ln, o);
            free(ln);
            fclose(in);
            fclose(o);
        }
        const char *build[] = { "index", "build", "--input", sub, "--shards", "1", "--out", idx,
                                "--filter-model", mp, "--threads", "2", NULL };
        int bargc = 0;
        while (build[bargc]) bargc++;
        fflush(stdout);
        cr_assert_eq(ops_cmd_index(bargc, (char **)build), OPS_EXIT_OK);
        cfilter_model_t *m = NULL;
        fn_errbuf eb = { { 0 } };
        cr_assert_eq(cfilter_model_load(mp, &m, &eb), 0, "%s", eb.msg);
        idx_reader_t *r = NULL;
        cr_assert_eq(idx_reader_open(sh, &r, &eb), 0, "%s", eb.msg);
        idx_searcher_t *se = NULL;
        cr_assert_eq(idx_searcher_create(r, &se, &eb), 0, "%s", eb.msg);
        const idx_index_info *in = idx_reader_info(r);
        cr_assert_str_eq(in->filter_model, "f.model");
        cr_assert_eq(in->filter_threshold, cfilter_model_threshold(m));
        cr_assert_eq(in->filter_strict, cfilter_model_strict(m));
        /* the corpus' first documents, by id */
        FILE *cf = fopen(data, "r");
        char *line = NULL;
        size_t lcap = 0;
        for (int i = 0; i < 20 && getline(&line, &lcap, cf) > 0; i++) {
            json_t *o = json_loads(line, 0, NULL);
            const char *id = json_string_value(json_object_get(o, "id"));
            const char *t = json_string_value(json_object_get(o, "title")), *b = json_string_value(json_object_get(o, "body"));
            uint32_t doc;
            cr_assert_eq(idx_ids_docs(se, &id, 1, &doc, &eb), 0, "%s: %s", id, eb.msg);
            float got;
            cr_assert_eq(idx_doc_filter_score(r, doc, &got, &eb), 0, "%s", eb.msg);
            float want = (float)cfilter_score(m, t ? t : "", t ? strlen(t) : 0, b ? b : "", b ? strlen(b) : 0);
            cr_assert_eq(got, want, "%s: %.9g vs %.9g", id, got, want);
            json_decref(o);
        }
        free(line);
        fclose(cf);
        idx_searcher_release(se);
        idx_searcher_destroy(se);
        idx_reader_close(r);
        cfilter_model_free(m);
    }
    /* a damaged model is refused by eval */
    tu_write_file(mp, "funnel-cfilter 1\n");
    cr_assert_eq(run(eval), OPS_EXIT_FAIL);
    const char *noargs[] = { "filter", "train", "--input", data, NULL };
    cr_assert_eq(run(noargs), OPS_EXIT_USAGE);
    tu_rmtree(dir);
}
