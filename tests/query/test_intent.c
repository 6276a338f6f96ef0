/* test_intent.c - the query-intent classifier (query/intent.c, trained by
 * ops/ops_intent.c): on synthetic queries whose words decide the vertical
 * ("goal" -> news, "photo" -> image, ...), trained through ops_intent_train
 * and through `funnel intent train` (labels file and corpus), held-out
 * accuracy far above the majority baseline; the model file's round trip (bit
 * for bit), truncation and flipped bytes (errors, never crashes); the prior
 * for queries without words; CLI exit codes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "fn_rand.h"
#include "intent.h"
#include "ops.h"
#include "testutil.h"

static const char *const VERTS[] = { "web", "news", "image", "video" };
static const double VERT_P[] = { 0.6, 0.2, 0.1, 0.1 };
static const char *const CUES[4][6] = {
    { "how", "recipe", "guide", "tutorial", "definition", "wiki" },
    { "goal", "match", "election", "minister", "breaking", "headlines" },
    { "photo", "picture", "wallpaper", "png", "jpeg", "gallery" },
    { "watch", "trailer", "clip", "episode", "stream", "youtube" },
};
static const char *const FILLER[] = { "river", "paris", "cat", "engine", "blue", "garden", "mountain",
                                      "jazz", "piano", "storm", "apple", "castle", "train", "ocean" };

/* A synthetic query: 1-2 cue words of its vertical and 1-3 fillers, shuffled
 * order, random case. Returns the vertical. */
static int synth(uint64_t *st, char *buf, size_t cap)
{
    double u = (double)(fn_splitmix64(st) >> 11) / 9007199254740992.0;
    int v = 0;
    for (double acc = VERT_P[0]; v < 3 && u >= acc; acc += VERT_P[++v])
        ;
    const char *w[5];
    size_t k = 0, ncue = 1 + fn_splitmix64(st) % 2, nfill = 1 + fn_splitmix64(st) % 3;
    for (size_t i = 0; i < ncue; i++)
        w[k++] = CUES[v][fn_splitmix64(st) % 6];
    for (size_t i = 0; i < nfill; i++)
        w[k++] = FILLER[fn_splitmix64(st) % (sizeof FILLER / sizeof *FILLER)];
    for (size_t i = k; i > 1; i--) {
        size_t j = fn_splitmix64(st) % i;
        const char *t = w[i - 1];
        w[i - 1] = w[j];
        w[j] = t;
    }
    size_t n = 0;
    for (size_t i = 0; i < k; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? " " : "", w[i]);
    if (fn_splitmix64(st) % 4 == 0) buf[0] = (char)(buf[0] - 32);     /* "Goal paris" */
    return v;
}

typedef struct qset {
    char **text;
    int *label;
    size_t n;
} qset;

static qset make_set(uint64_t seed, size_t n)
{
    qset s = { calloc(n, sizeof(char *)), calloc(n, sizeof(int)), n };
    cr_assert(s.text && s.label);
    char buf[256];
    for (size_t i = 0; i < n; i++) {
        s.label[i] = synth(&seed, buf, sizeof buf);
        s.text[i] = strdup(buf);
    }
    return s;
}

static void free_set(qset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->text[i]);
    free(s->text);
    free(s->label);
}

/* Accuracy of m on s, and of always saying the model's majority prior. */
static double accuracy(const intent_model_t *m, const qset *s, double *baseline)
{
    const char *const *names;
    size_t nv;
    intent_model_verticals(m, &names, &nv);
    const double *prior = intent_model_prior(m);
    size_t base = 0;
    for (size_t v = 1; v < nv; v++)
        if (prior[v] > prior[base]) base = v;
    double sc[INTENT_MAX_VERTICALS];
    size_t ok = 0, bok = 0;
    for (size_t i = 0; i < s->n; i++) {
        int p = intent_predict(m, s->text[i], strlen(s->text[i]), sc, nv);
        cr_assert_geq(p, 0);
        /* labels index VERTS; the model's order may differ: compare names */
        ok += strcmp(names[p], VERTS[s->label[i]]) == 0;
        bok += strcmp(names[base], VERTS[s->label[i]]) == 0;
        double sum = 0;
        for (size_t v = 0; v < nv; v++)
            sum += sc[v];
        cr_assert_float_eq(sum, 1.0, 1e-9);
    }
    if (baseline) *baseline = (double)bok / (double)s->n;
    return (double)ok / (double)s->n;
}

static intent_model_t *train_synth(size_t n, uint32_t buckets)
{
    qset tr = make_set(7, n);
    ops_intent_train_opts o;
    ops_intent_train_defaults(&o);
    o.buckets = buckets;
    intent_model_t *m;
    fn_errbuf eb = { { 0 } };
    int rc = ops_intent_train((const char *const *)tr.text, tr.label, tr.n, VERTS, 4, &o, &m, &eb);
    cr_assert_eq(rc, 0, "%s", eb.msg);
    free_set(&tr);
    return m;
}

Test(intent, words_decide_the_vertical)
{
    intent_model_t *m = train_synth(800, 4096);
    qset te = make_set(99, 400);
    double base, acc = accuracy(m, &te, &base);
    cr_log_info("synthetic held-out: accuracy %.4f, majority baseline %.4f", acc, base);
    cr_assert_gt(acc, 0.95, "accuracy %.4f", acc);
    cr_assert_lt(base, 0.7);
    cr_assert_gt(acc, base + 0.25);
    free_set(&te);

    const char *const *names;
    size_t nv;
    intent_model_verticals(m, &names, &nv);
    double sc[INTENT_MAX_VERTICALS];
    cr_assert_str_eq(names[intent_predict(m, "GOAL", 4, sc, nv)], "news");
    cr_assert_str_eq(names[intent_predict(m, "river photo", 11, sc, nv)], "image");
    cr_assert_str_eq(names[intent_predict(m, "piano trailer", 13, sc, nv)], "video");
    cr_assert_eq(intent_predict(m, "x", 1, sc, nv - 1), FN_EINVAL);
    intent_model_free(m);
}

Test(intent, empty_query_predicts_the_prior)
{
    intent_model_t *m = train_synth(500, 1024);
    const char *const *names;
    size_t nv;
    intent_model_verticals(m, &names, &nv);
    const double *prior = intent_model_prior(m);
    double sc[INTENT_MAX_VERTICALS], sum = 0;
    for (size_t v = 0; v < nv; v++)
        sum += prior[v];
    cr_assert_float_eq(sum, 1.0, 1e-12);
    static const char *const empty[] = { "", "   ", "?!-- ...", "\xff\xfe" };
    for (size_t k = 0; k < sizeof empty / sizeof *empty; k++) {
        int p = intent_predict(m, empty[k], strlen(empty[k]), sc, nv);
        cr_assert_eq(memcmp(sc, prior, nv * sizeof *sc), 0, "query \"%s\"", empty[k]);
        cr_assert_str_eq(names[p], "web");  /* the most frequent training label */
    }
    intent_predict(m, NULL, 0, sc, nv);
    cr_assert_eq(memcmp(sc, prior, nv * sizeof *sc), 0);
    intent_model_free(m);
}

Test(intent, save_load_round_trip_is_exact)
{
    char dir[64], path[512];
    tu_mkdtemp(dir, sizeof dir, "/tmp/test_intent_XXXXXX");
    snprintf(path, sizeof path, "%s/m.intent", dir);
    intent_model_t *m = train_synth(600, 2048), *l;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(intent_model_save(m, path, &eb), 0, "%s", eb.msg);
    cr_assert_eq(intent_model_load(path, &l, &eb), 0, "%s", eb.msg);
    cr_assert_eq(intent_model_buckets(l), 2048);
    const char *const *a, *const *b;
    size_t na, nb;
    intent_model_verticals(m, &a, &na);
    intent_model_verticals(l, &b, &nb);
    cr_assert_eq(na, nb);
    for (size_t v = 0; v < na; v++) {
        cr_assert_str_eq(a[v], b[v]);
        cr_assert(intent_model_bias(m, v) == intent_model_bias(l, v));
        for (uint32_t c = 0; c < 2048; c++)
            cr_assert(intent_model_weight(m, v, c) == intent_model_weight(l, v, c));
    }
    qset te = make_set(5, 300);
    double s1[INTENT_MAX_VERTICALS], s2[INTENT_MAX_VERTICALS];
    for (size_t i = 0; i < te.n; i++) {
        int p1 = intent_predict(m, te.text[i], strlen(te.text[i]), s1, na);
        int p2 = intent_predict(l, te.text[i], strlen(te.text[i]), s2, nb);
        cr_assert_eq(p1, p2);
        cr_assert_eq(memcmp(s1, s2, na * sizeof *s1), 0, "query %s", te.text[i]);
    }
    free_set(&te);
    intent_model_free(m);
    intent_model_free(l);
    tu_rmtree(dir);
}

static int damaged_code(int rc)
{
    return rc == FN_ECORRUPT || rc == FN_EFORMAT || rc == FN_EVERSION;
}

Test(intent, truncated_or_flipped_file_is_an_error)
{
    char dir[64], path[512], bad[512];
    tu_mkdtemp(dir, sizeof dir, "/tmp/test_intent_XXXXXX");
    snprintf(path, sizeof path, "%s/m.intent", dir);
    snprintf(bad, sizeof bad, "%s/bad.intent", dir);
    intent_model_t *m = train_synth(200, 256), *l = NULL;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(intent_model_save(m, path, &eb), 0, "%s", eb.msg);
    intent_model_free(m);
    size_t n;
    char *buf = tu_read_file(path, &n);
    cr_assert(buf && n > 100);
    /* every truncation */
    for (size_t k = 0; k < n; k++) {
        FILE *f = fopen(bad, "wb");
        cr_assert(f);
        cr_assert_eq(fwrite(buf, 1, k, f), k);
        fclose(f);
        int rc = intent_model_load(bad, &l, &eb);
        cr_assert(damaged_code(rc), "truncated to %zu bytes: rc %d", k, rc);
        cr_assert_null(l);
        cr_assert(strstr(eb.msg, bad), "message names the file: %s", eb.msg);
    }
    /* every single flipped bit 0 and bit 5 (case), every byte */
    for (size_t k = 0; k < n; k++)
        for (int bit = 0; bit < 8; bit += 5) {
            buf[k] ^= (char)(1 << bit);
            FILE *f = fopen(bad, "wb");
            cr_assert(f);
            cr_assert_eq(fwrite(buf, 1, n, f), n);
            fclose(f);
            buf[k] ^= (char)(1 << bit);
            int rc = intent_model_load(bad, &l, &eb);
            cr_assert(damaged_code(rc), "byte %zu bit %d: rc %d", k, bit, rc);
            cr_assert_null(l);
        }
    free(buf);
    cr_assert_eq(intent_model_load("/nonexistent/m.intent", &l, &eb), -ENOENT);
    tu_rmtree(dir);
}

/* A file with a good checksum but bad content: strict parsing, with line. */
static int load_text(const char *dir, const char *body, fn_errbuf *eb)
{
    char path[512], *text = malloc(strlen(body) + 64);
    cr_assert(text);
    snprintf(path, sizeof path, "%s/h.intent", dir);
    size_t n = (size_t)sprintf(text, "%s", body);
    sprintf(text + n, "checksum %016llx\n", (unsigned long long)XXH64(text, n, 0));
    tu_write_file(path, text);
    free(text);
    intent_model_t *m = NULL;
    int rc = intent_model_load(path, &m, eb);
    intent_model_free(m);
    return rc;
}

Test(intent, strict_parsing_behind_a_good_checksum)
{
    char dir[64];
    tu_mkdtemp(dir, sizeof dir, "/tmp/test_intent_XXXXXX");
    fn_errbuf eb = { { 0 } };
    const char *good = "funnel-intent 1\nbuckets 8\nverticals 2\n"
                       "vertical web prior 3 bias 1.5 weights 1\nw 3 -0.25\n"
                       "vertical news prior 1 bias -1 weights 0\n";
    cr_assert_eq(load_text(dir, good, &eb), 0, "%s", eb.msg);
    static const struct { const char *body; int rc; const char *msg; } cases[] = {
        { "funnel-intent 2\nbuckets 8\nverticals 1\nvertical web prior 1 bias 0 weights 0\n", FN_EVERSION, "version" },
        { "funnel-intent 1\nbuckets 8\nverticals 1\nvertical web prior 1 bias 0 weights 1\nw 8 1\n", FN_EFORMAT, ":5:" },
        { "funnel-intent 1\nbuckets 8\nverticals 1\nvertical web prior 1 bias 0 weights 2\nw 3 1\nw 3 1\n", FN_EFORMAT, ":6:" },
        { "funnel-intent 1\nbuckets 8\nverticals 1\nvertical web prior 1 bias nan weights 0\n", FN_EFORMAT, ":4:" },
        { "funnel-intent 1\nbuckets 8\nverticals 2\nvertical web prior 1 bias 0 weights 0\n"
          "vertical web prior 1 bias 0 weights 0\n", FN_EFORMAT, "twice" },
        { "funnel-intent 1\nbuckets 8\nverticals 1\nvertical web prior 1 bias 0 weights 0\nextra\n", FN_EFORMAT, ":5:" },
        { "funnel-intent 1\nbuckets 8\nverticals 1\nvertical web prior 0 bias 0 weights 0\n", FN_EFORMAT, "prior" },
        { "funnel-intent 1\nbuckets 0\nverticals 1\n", FN_EFORMAT, ":2:" },
        { "funnel-intent 1\nbuckets 8\nverticals 1\nvertical w/b prior 1 bias 0 weights 0\n", FN_EFORMAT, "name" },
        { "funnel-intent 1\nbuckets 8\nverticals 1\nvertical web prior 1 bias 0 weights 0 \n", FN_EFORMAT, ":4:" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = load_text(dir, cases[i].body, &eb);
        cr_assert_eq(rc, cases[i].rc, "case %zu: rc %d (%s)", i, rc, eb.msg);
        cr_assert(strstr(eb.msg, cases[i].msg), "case %zu: %s", i, eb.msg);
    }
    tu_rmtree(dir);
}

Test(intent, build_rejects_bad_input)
{
    const char *names[] = { "web", "web" };
    double prior[2] = { 1, 1 }, bias[2] = { 0, 0 }, w[8] = { 0 };
    intent_model_t *m;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(intent_model_build(names, 2, 4, prior, bias, w, &m, &eb), FN_EINVAL);
    names[1] = "has space";
    cr_assert_eq(intent_model_build(names, 2, 4, prior, bias, w, &m, &eb), FN_EINVAL);
    names[1] = "news";
    w[3] = NAN;
    cr_assert_eq(intent_model_build(names, 2, 4, prior, bias, w, &m, &eb), FN_EINVAL);
    w[3] = 0;
    cr_assert_eq(intent_model_build(names, 2, 0, prior, bias, w, &m, &eb), FN_EINVAL);
    cr_assert_eq(intent_model_build(names, 2, 4, prior, bias, w, &m, &eb), 0);
    intent_model_free(m);
    int lab[1] = { 2 };
    const char *t[1] = { "goal" };
    ops_intent_train_opts o;
    ops_intent_train_defaults(&o);
    cr_assert_eq(ops_intent_train(t, lab, 1, names, 2, &o, &m, &eb), FN_EINVAL);
    cr_assert_eq(ops_intent_train(t, lab, 0, names, 2, &o, &m, &eb), FN_EINVAL);
}

/* ---- through the CLI ---- */

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
    return ops_cmd_intent(argc, argv);
}

Test(intent, cli_trains_from_labels)
{
    char dir[64], q[512], lab[512], mp[512];
    tu_mkdtemp(dir, sizeof dir, "/tmp/test_intent_XXXXXX");
    snprintf(q, sizeof q, "%s/q.tsv", dir);
    snprintf(lab, sizeof lab, "%s/labels.tsv", dir);
    snprintf(mp, sizeof mp, "%s/m.intent", dir);
    qset tr = make_set(11, 1000);
    FILE *fq = fopen(q, "w"), *fl = fopen(lab, "w");
    cr_assert(fq && fl);
    for (size_t i = 0; i < tr.n; i++) {
        fprintf(fq, "s%zu\t%s\n", i, tr.text[i]);
        if (i % 50 != 0) fprintf(fl, "s%zu\t%s\n", i, VERTS[tr.label[i]]);  /* 2% unlabelled */
    }
    fclose(fq);
    fclose(fl);
    const char *train[] = { "intent", "train", "--queries", q, "--labels", lab, "--out", mp,
                            "--holdout", "0.2", "--seed", "3", "--buckets", "8192", NULL };
    cr_assert_eq(run(train), OPS_EXIT_OK);
    intent_model_t *m;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(intent_model_load(mp, &m, &eb), 0, "%s", eb.msg);
    cr_assert_eq(intent_model_buckets(m), 8192);
    qset te = make_set(12345, 500);
    double base, acc = accuracy(m, &te, &base);
    cr_log_info("CLI (labels) held-out: accuracy %.4f, majority baseline %.4f", acc, base);
    cr_assert_gt(acc, 0.95);
    cr_assert_gt(acc, base + 0.25);
    intent_model_free(m);
    free_set(&te);

    const char *eval[] = { "intent", "eval", "--model", mp, "--queries", q, "--labels", lab, NULL };
    cr_assert_eq(run(eval), OPS_EXIT_OK);
    const char *pred[] = { "intent", "predict", "--model", mp, "watch the trailer", NULL };
    cr_assert_eq(run(pred), OPS_EXIT_OK);
    const char *predq[] = { "intent", "predict", "--model", mp, "--queries", q, NULL };
    cr_assert_eq(run(predq), OPS_EXIT_OK);

    /* a label file with a repeated qid or a bad name is a failure */
    tu_write_file(lab, "s1\tnews\ns1\tweb\n");
    cr_assert_eq(run(train), OPS_EXIT_FAIL);
    tu_write_file(lab, "s1\tne ws\n");
    cr_assert_eq(run(train), OPS_EXIT_FAIL);
    free_set(&tr);
    tu_rmtree(dir);
}

Test(intent, cli_trains_from_a_corpus)
{
    /* Documents whose words go with their vertical: a query's best-matching
     * documents then vote for the vertical its cue word stands for. */
    char dir[64], c[512], q[512], mp[512];
    tu_mkdtemp(dir, sizeof dir, "/tmp/test_intent_XXXXXX");
    snprintf(c, sizeof c, "%s/corpus.jsonl", dir);
    snprintf(q, sizeof q, "%s/q.tsv", dir);
    snprintf(mp, sizeof mp, "%s/m.intent", dir);
    FILE *f = fopen(c, "w");
    cr_assert(f);
    uint64_t st = 42;
    for (int d = 0; d < 2000; d++) {
        char text[256];
        int v = synth(&st, text, sizeof text);
        fprintf(f, "{\"id\":\"d%d\",\"title\":\"%s\",\"body\":\"%s %s\",\"vertical\":\"%s\"}\n", d, text,
                FILLER[d % 14], CUES[v][d % 6], VERTS[v]);
    }
    fclose(f);
    qset qs = make_set(77, 600);
    f = fopen(q, "w");
    cr_assert(f);
    for (size_t i = 0; i < qs.n; i++)
        fprintf(f, "c%zu\t%s\n", i, qs.text[i]);
    fprintf(f, "nomatch\tzzzzqqq\n");
    fclose(f);
    const char *train[] = { "intent", "train", "--corpus", c, "--queries", q, "--out", mp, "--top-docs", "20",
                            "--holdout", "0.25", "--buckets", "4096", NULL };
    cr_assert_eq(run(train), OPS_EXIT_OK);
    intent_model_t *m;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(intent_model_load(mp, &m, &eb), 0, "%s", eb.msg);
    const char *const *names;
    size_t nv;
    intent_model_verticals(m, &names, &nv);
    cr_assert_eq(nv, 4);
    cr_assert_str_eq(names[0], "web");     /* most documents first */
    qset te = make_set(4242, 400);
    double base, acc = accuracy(m, &te, &base);
    cr_log_info("CLI (corpus) held-out: accuracy %.4f, majority baseline %.4f", acc, base);
    cr_assert_gt(acc, base + 0.2, "accuracy %.4f, baseline %.4f", acc, base);
    intent_model_free(m);
    free_set(&te);
    const char *eval[] = { "intent", "eval", "--model", mp, "--corpus", c, "--queries", q, "--top-docs", "20", NULL };
    cr_assert_eq(run(eval), OPS_EXIT_OK);

    /* a document without a vertical is a parse error naming the line */
    f = fopen(c, "a");
    fprintf(f, "{\"id\":\"x\",\"title\":\"goal\"}\n");
    fclose(f);
    cr_assert_eq(run(train), OPS_EXIT_FAIL);
    free_set(&qs);
    tu_rmtree(dir);
}

Test(intent, cli_exit_codes)
{
    const char *none[] = { "intent", NULL };
    const char *bad_sub[] = { "intent", "fly", NULL };
    const char *no_out[] = { "intent", "train", "--queries", "q.tsv", "--labels", "l.tsv", NULL };
    const char *both[] = { "intent", "train", "--queries", "q", "--labels", "l", "--corpus", "c", "--out", "m", NULL };
    const char *bad_hold[] = { "intent", "train", "--queries", "q", "--labels", "l", "--out", "m", "--holdout", "1", NULL };
    const char *bad_buck[] = { "intent", "train", "--queries", "q", "--labels", "l", "--out", "m", "--buckets", "0", NULL };
    const char *no_model[] = { "intent", "predict", "x", NULL };
    const char *missing[] = { "intent", "predict", "--model", "/nonexistent/m", "x", NULL };
    const char *help[] = { "intent", "--help", NULL };
    cr_assert_eq(run(none), OPS_EXIT_USAGE);
    cr_assert_eq(run(bad_sub), OPS_EXIT_USAGE);
    cr_assert_eq(run(no_out), OPS_EXIT_USAGE);
    cr_assert_eq(run(both), OPS_EXIT_USAGE);
    cr_assert_eq(run(bad_hold), OPS_EXIT_USAGE);
    cr_assert_eq(run(bad_buck), OPS_EXIT_USAGE);
    cr_assert_eq(run(no_model), OPS_EXIT_USAGE);
    cr_assert_eq(run(missing), OPS_EXIT_FAIL);
    cr_assert_eq(run(help), OPS_EXIT_OK);
}

/* A pushed model (Admin/PushModel stage 3): the file's bytes in memory parse
 * to the same model; a flipped byte or a cut is an error naming the push. */
Test(intent, parse_from_memory_as_a_push)
{
    char dir[64], path[512];
    tu_mkdtemp(dir, sizeof dir, "/tmp/test_intent_XXXXXX");
    snprintf(path, sizeof path, "%s/m.intent", dir);
    intent_model_t *m = train_synth(400, 1024), *l = NULL;
    fn_errbuf eb = { { 0 } };
    cr_assert_eq(intent_model_save(m, path, &eb), 0, "%s", eb.msg);
    size_t n;
    char *buf = tu_read_file(path, &n);
    cr_assert_not_null(buf);
    cr_assert_eq(intent_model_parse(buf, n, "pushed.intent", &l, &eb), 0, "%s", eb.msg);
    const char *const *a;
    size_t na;
    intent_model_verticals(m, &a, &na);
    double s1[INTENT_MAX_VERTICALS], s2[INTENT_MAX_VERTICALS];
    const char *q = "news today";
    cr_assert_eq(intent_predict(m, q, strlen(q), s1, na), intent_predict(l, q, strlen(q), s2, na));
    cr_assert_eq(memcmp(s1, s2, na * sizeof *s1), 0);
    intent_model_free(l);
    l = NULL;
    buf[n / 2] ^= 0x01;
    cr_assert_eq(intent_model_parse(buf, n, "pushed.intent", &l, &eb), FN_ECORRUPT);
    cr_assert(strstr(eb.msg, "pushed.intent: checksum mismatch"), "%s", eb.msg);
    cr_assert_null(l);
    buf[n / 2] ^= 0x01;
    cr_assert_eq(intent_model_parse(buf, n - 5, "pushed.intent", &l, &eb), FN_ECORRUPT);
    cr_assert(strstr(eb.msg, "pushed.intent: no checksum line"), "%s", eb.msg);
    cr_assert_eq(intent_model_parse("", 0, "empty", &l, &eb), FN_ECORRUPT);
    free(buf);
    intent_model_free(m);
    tu_rmtree(dir);
}
