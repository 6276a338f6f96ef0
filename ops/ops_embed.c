/* ops_embed.c - `funnel embed train | apply`: the offline text encoder of
 * issue 9 (vectors). Word vectors are learnt from the corpus itself by
 * fastText (Debian's `fasttext` program, run as a child process); a text's
 * vector is the mean of its words' vectors, L2-normalised.
 *
 * Phases of `train` (docs/cli.md "funnel embed"):
 *   1. hash the corpus file (xxh64, for the manifest);
 *   2. one pass over the corpus: every good line's title and body, analysed
 *      as below, become one line of ENC/.train-XXXXXX/train.txt (tokens
 *      separated by one space, so fastText's own whitespace split sees our
 *      tokens); bad lines are reported FILE:LINE or stop the command;
 *   3. `fasttext skipgram|cbow -input train.txt -output model -dim D ...`
 *      (subword n-grams 3..6, so unseen words still get a vector);
 *   4. model.bin moves to ENC/, then ENC/manifest.json is written (last, so a
 *      directory with a manifest always has its model). The temporary
 *      directory is removed whatever happens.
 * Phases of `apply` (never one fasttext per text):
 *   1. pass 1 over the input: check every line, collect the distinct tokens;
 *   2. `fasttext print-word-vectors ENC/model.bin < words.txt`, once, for the
 *      whole vocabulary of the input; the vectors are kept in memory
 *      (vocabulary x dim floats);
 *   3. pass 2: each good line again, its vector = mean of its tokens' vectors
 *      (each occurrence counts), divided by its L2 norm; lines go to OUT.tmp,
 *      renamed to OUT at the end. Memory: the vocabulary, not the input.
 *
 * Tokens: index/analyzer.h (NFKC case folding, letters/digit runs), with
 * stopwords removed and no stemming by default (subwords play the stemmer's
 * part); the analyzer's description is stored in the manifest, so `apply`
 * tokenizes exactly as `train` did.
 *
 * Determinism: with --threads 1 and a given --seed the model, and so every
 * vector, is the same byte for byte from run to run (fastText seeds thread
 * i's generator with seed + i); with more threads fastText trains hogwild
 * (threads update shared weights without locks) and runs differ slightly.
 *
 * Measured (2-core VM, fastText 0.9.2, defaults but --epochs; docs/cli.md
 * "funnel embed" has the sweep): NDCG@10 of brute-force cosine retrieval, and
 * training time on 2 free cores (fastText CPU time / 2):
 *
 *   collection   docs    tokens   10 epochs          20 epochs
 *   cranfield    1400    144k     0.3345   16 s      0.3468   ~30 s
 *   npl         11429    287k     0.3083   29 s      0.3142   57 s
 *   cisi         1460    106k     0.3293   13 s      0.3322   ~25 s
 *   (BM25F on the cluster: 0.3816, 0.4531, 0.4049)
 *
 * apply: a whole collection and its queries in under a second each (npl
 * 0.9 s, most of it fasttext loading the 54 MB model). Test:
 * tests/ops/test_embed.sh.
 */
#include "ops.h"

#include <dirent.h>
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

#include <xxhash.h>

#include "analyzer.h"
#include "fn_arena.h"
#include "fn_io.h"

extern char **environ;

#define EMB_FORMAT "funnel-embed"
#define EMB_VERSION 1
#define EMB_MANIFEST "manifest.json"
#define EMB_MODEL "model.bin"
#define EMB_MAX_DIM 1024
/* Character n-grams of 3..5 bytes: what gives a word that was never seen in
 * training ("aeroelasticity") a vector near its relatives'. fastText's default
 * maxn is 6; 5 measured the same NDCG@10 on cranfield (0.3318 against 0.3313,
 * 20 epochs) with fewer n-grams to update per word, so faster training. */
#define EMB_MINN 3
#define EMB_MAXN 5
/* Hash buckets for the n-grams. fastText's default, 2M, makes a 512 MB model
 * at dim 64 and is meant for billions of words; a collection of a few million
 * words has a few hundred thousand distinct n-grams, and 200k buckets keep the
 * model at 50 MB (dim 64) with collisions that did not measurably change
 * NDCG@10 on cranfield. */
#define EMB_BUCKET 200000

static const char embed_usage[] =
    "usage: funnel embed train --input corpus.jsonl --out ENC [--dim 64] [--epochs 10]\n"
    "                          [--threads 2] [--min-count 2] [--seed 1]\n"
    "                          [--model skipgram|cbow] [--window 10] [--lr 0.05]\n"
    "                          [--stopwords english|none] [--on-error skip|fail]\n"
    "       funnel embed apply --model ENC --corpus IN.jsonl --out OUT.jsonl [--on-error skip|fail]\n"
    "       funnel embed apply --model ENC --queries Q.tsv --out Q2.tsv [--on-error skip|fail]\n"
    "\n"
    "train: learns word vectors from the corpus's title + body with fastText\n"
    "(the `fasttext` program of the Debian package fasttext, found on PATH or\n"
    "$FUNNEL_FASTTEXT) and writes ENC/model.bin and ENC/manifest.json.\n"
    "  --dim D           vector dimension (1..1024, default 64)\n"
    "  --epochs E        passes over the corpus (default 10)\n"
    "  --threads T       fastText threads (default 2); only T = 1 is reproducible\n"
    "  --min-count N     words seen fewer times get no vector of their own (default 2)\n"
    "  --seed S          fastText's random seed (default 1)\n"
    "  --model M         skipgram (default) or cbow\n"
    "  --window N        context window in words (default 10; fastText's is 5)\n"
    "  --lr X            fastText's starting learning rate (default 0.05)\n"
    "  --stopwords W     english (default: dropped from training and from vectors) or none\n"
    "apply: adds to every document of IN.jsonl an \"embedding\" field (dim floats,\n"
    "the mean of its words' vectors, unit length; other fields as they were), or\n"
    "to every query of Q.tsv a third column \"v1 v2 ... vd\". A text without\n"
    "words gets no vector (counted in the summary).\n"
    "  --on-error MODE   fail (default): stop at the first bad line; skip: report\n"
    "                    bad lines as FILE:LINE: reason and leave them out\n"
    "Exit status: 0 ok, 1 failure (bad input, fasttext failed), 2 usage error.\n";

/* ---- small helpers ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_ulong(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end;
    if (*s < '0' || *s > '9') return -1;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int is_exec(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

/* The fasttext program: $FUNNEL_FASTTEXT if set, else the first one on PATH.
 * 0 or FN_ENOTFOUND (message in eb names the package). */
static int find_fasttext(char *out, size_t cap, fn_errbuf *eb)
{
    const char *env = getenv("FUNNEL_FASTTEXT");
    if (env && *env) {
        if (strlen(env) >= cap || !is_exec(env))
            return fn_seterr(eb, FN_ENOTFOUND, "FUNNEL_FASTTEXT=%s is not an executable file", env);
        strcpy(out, env);
        return 0;
    }
    const char *path = getenv("PATH");
    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t)(colon - path) : strlen(path);
        if (len > 0) {
            int n = snprintf(out, cap, "%.*s/fasttext", (int)len, path);
            if (n > 0 && (size_t)n < cap && is_exec(out)) return 0;
        }
        path = colon ? colon + 1 : NULL;
    }
    out[0] = '\0';
    return fn_seterr(eb, FN_ENOTFOUND,
                     "fasttext not found on PATH: install the Debian package fasttext "
                     "(apt-get install fasttext) or set FUNNEL_FASTTEXT to the program");
}

/* Start argv[0] with stdin from in_path (NULL: /dev/null), stdout to out_fd
 * (-1: the log) and stderr appended to log_path. 0 or -errno. */
static int spawn(char *const argv[], const char *in_path, int out_fd, const char *log_path, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc) return -rc;
    rc = posix_spawn_file_actions_addopen(&fa, 0, in_path ? in_path : "/dev/null", O_RDONLY, 0);
    if (!rc) rc = posix_spawn_file_actions_addopen(&fa, 2, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, out_fd >= 0 ? out_fd : 2, 1);
    if (!rc) rc = posix_spawn(pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return -rc;
}

/* Wait for pid: its exit status, 128 + signal, or -errno. */
static int wait_child(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -errno;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255;
}

/* The last non-empty line of a child's log (progress lines rewritten with
 * "\r" count from their last "\r"), for error messages. */
static void log_tail(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    char buf[4096];
    if (fseek(f, 0, SEEK_END) == 0) {
        long sz = ftell(f);
        fseek(f, sz > (long)sizeof buf - 1 ? sz - (long)sizeof buf + 1 : 0, SEEK_SET);
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) n--;
    buf[n] = '\0';
    char *s = buf + n;
    while (s > buf && s[-1] != '\n' && s[-1] != '\r') s--;
    size_t l = strlen(s) < cap ? strlen(s) : cap - 1;
    memcpy(out, s, l);
    out[l] = '\0';
}

/* "fasttext ... failed (exit 1): <its last line>" into eb. */
static int child_failed(fn_errbuf *eb, const char *what, int st, const char *log)
{
    char tail[300];
    log_tail(log, tail, sizeof tail);
    if (st < 0) return fn_seterr(eb, st, "%s: %s", what, fn_strerror(st));
    return fn_seterr(eb, FN_EINVAL, "%s failed (%s %d)%s%s", what, st > 128 ? "signal" : "exit",
                     st > 128 ? st - 128 : st, tail[0] ? ": " : "", tail);
}

/* ---- input lines ---- */

/* How bad lines are handled: skip_bad 0 makes the first one the error
 * (FN_EPARSE, "FILE:LINE: reason" in eb); skip_bad 1 counts it, reports it on
 * stderr when report is set (pass 1 only) and leaves it out. */
typedef struct emb_input {
    const char *path;
    int skip_bad;
    int report;
    size_t bad;
    fn_errbuf *eb;
} emb_input;

static int bad_line(emb_input *in, size_t lineno, const char *reason)
{
    if (!in->skip_bad) return fn_seterr(in->eb, FN_EPARSE, "%s:%zu: %s", in->path, lineno, reason);
    in->bad++;
    if (in->report) fprintf(stderr, "%s:%zu: %s\n", in->path, lineno, reason);
    return 0;
}

static int blank(const char *line, size_t len)
{
    return strspn(line, " \t\r\n") == len;
}

static int field_text(json_t *root, const char *name, const char **txt, size_t *len)
{
    json_t *v = json_object_get(root, name);
    *txt = "";
    *len = 0;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return -1;
    *txt = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

/* A document line, checked as `funnel index build` checks it: a JSON object
 * with a non-empty string "id" and string (or absent) "title" and "body".
 * Returns the parsed object (json_decref) or NULL with the reason in why. */
typedef struct emb_doc {
    json_t *root;
    const char *text[2];        /* title, body ("" when absent) */
    size_t len[2];
} emb_doc;

static int doc_parse(const char *line, size_t len, emb_doc *d, char *why, size_t cap)
{
    json_error_t jerr;
    d->root = json_loadb(line, len, 0, &jerr);
    if (!d->root) {
        snprintf(why, cap, "invalid JSON: %s (column %d)", jerr.text, jerr.column);
        return -1;
    }
    const char *reason = NULL;
    json_t *jid = json_object_get(d->root, "id");
    if (!json_is_object(d->root)) reason = "not a JSON object";
    else if (!jid) reason = "missing \"id\"";
    else if (!json_is_string(jid)) reason = "\"id\" is not a string";
    else if (json_string_length(jid) == 0) reason = "empty \"id\"";
    else if (field_text(d->root, "title", &d->text[0], &d->len[0])) reason = "\"title\" is not a string";
    else if (field_text(d->root, "body", &d->text[1], &d->len[1])) reason = "\"body\" is not a string";
    if (reason) {
        snprintf(why, cap, "%s", reason);
        json_decref(d->root);
        d->root = NULL;
        return -1;
    }
    return 0;
}

/* A queries.tsv line "qid<TAB>text[<TAB>anything]" (ops_queries_load's rules):
 * 0 with qid and text NUL-terminated in place, or -1 with the reason. */
static int query_parse(char *line, char **qid, char **text, const char **why)
{
    char *tab = strchr(line, '\t');
    if (!tab) {
        *why = "no tab between qid and text";
        return -1;
    }
    *tab = '\0';
    *qid = line;
    *text = tab + 1;
    char *tab2 = strchr(*text, '\t');
    if (tab2) *tab2 = '\0';
    if (!**qid) *why = "empty qid";
    else if (strspn(*text, " ") == strlen(*text)) *why = "empty text";
    else return 0;
    return -1;
}

/* ---- the vocabulary of an input: distinct tokens and their vectors ---- */

typedef struct vocab {
    fn_arena arena;             /* the words */
    char **word;
    uint32_t *len;
    size_t n, wcap;
    uint32_t *slot;             /* open addressing: word index + 1, 0 = empty */
    size_t scap;                /* a power of two, at most half full */
    float *vec;                 /* n x dim, after vocab_vectors */
    unsigned dim;
} vocab;

static void vocab_free(vocab *v)
{
    fn_arena_free(&v->arena);
    free(v->word);
    free(v->len);
    free(v->slot);
    free(v->vec);
}

static size_t vocab_probe(const vocab *v, const char *w, size_t len)
{
    size_t mask = v->scap - 1, i = (size_t)XXH64(w, len, 0) & mask;
    while (v->slot[i]) {
        uint32_t k = v->slot[i] - 1;
        if (v->len[k] == len && memcmp(v->word[k], w, len) == 0) break;
        i = (i + 1) & mask;
    }
    return i;
}

/* The index of w, or -1. */
static long vocab_find(const vocab *v, const char *w, size_t len)
{
    if (!v->scap) return -1;
    size_t i = vocab_probe(v, w, len);
    return v->slot[i] ? (long)v->slot[i] - 1 : -1;
}

/* Add w if new. 0 or -ENOMEM. */
static int vocab_add(vocab *v, const char *w, size_t len)
{
    if (2 * (v->n + 1) > v->scap) {
        size_t ncap = v->scap ? 2 * v->scap : 1024;
        uint32_t *ns = calloc(ncap, sizeof *ns);
        if (!ns) return -ENOMEM;
        for (size_t i = 0; i < v->scap; i++) {
            if (!v->slot[i]) continue;
            uint32_t k = v->slot[i] - 1;
            size_t j = (size_t)XXH64(v->word[k], v->len[k], 0) & (ncap - 1);
            while (ns[j]) j = (j + 1) & (ncap - 1);
            ns[j] = v->slot[i];
        }
        free(v->slot);
        v->slot = ns;
        v->scap = ncap;
    }
    size_t i = vocab_probe(v, w, len);
    if (v->slot[i]) return 0;
    if (v->n == v->wcap) {
        size_t ncap = v->wcap ? 2 * v->wcap : 1024;
        char **nw = realloc(v->word, ncap * sizeof *nw);
        if (!nw) return -ENOMEM;
        v->word = nw;
        uint32_t *nl = realloc(v->len, ncap * sizeof *nl);
        if (!nl) return -ENOMEM;
        v->len = nl;
        v->wcap = ncap;
    }
    char *copy = fn_arena_strndup(&v->arena, w, len);
    if (!copy) return -ENOMEM;
    v->word[v->n] = copy;
    v->len[v->n] = (uint32_t)len;
    v->slot[i] = (uint32_t)++v->n;
    return 0;
}

static int vocab_tok(void *ud, const char *term, size_t len, uint32_t pos)
{
    (void)pos;
    return vocab_add(ud, term, len);
}

/* Every word's vector from `fasttext print-word-vectors MODEL < words.txt`,
 * one process for the whole vocabulary. tmpdir holds words.txt and the log.
 * 0, FN_EINVAL (fasttext failed or answered something else), -errno. */
static int vocab_vectors(vocab *v, const char *ft, const char *model, const char *tmpdir, fn_errbuf *eb)
{
    char words[PATH_MAX + 16], logp[PATH_MAX + 16];
    snprintf(words, sizeof words, "%s/words.txt", tmpdir);
    snprintf(logp, sizeof logp, "%s/fasttext.log", tmpdir);
    v->vec = calloc(v->n ? v->n : 1, (size_t)v->dim * sizeof(float));
    if (!v->vec) return -ENOMEM;
    if (v->n == 0) return 0;
    FILE *f = fopen(words, "w");
    if (!f) return fn_seterr(eb, -errno, "%s: %s", words, strerror(errno));
    for (size_t i = 0; i < v->n; i++) {
        fwrite(v->word[i], 1, v->len[i], f);
        putc('\n', f);
    }
    if (ferror(f) | (fclose(f) != 0)) return fn_seterr(eb, -EIO, "%s: write failed", words);

    int pfd[2];
    if (pipe(pfd) != 0) return fn_seterr(eb, -errno, "pipe: %s", strerror(errno));
    fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
    fcntl(pfd[1], F_SETFD, FD_CLOEXEC);
    char *argv[] = {(char *)ft, "print-word-vectors", (char *)model, NULL};
    pid_t pid;
    int rc = spawn(argv, words, pfd[1], logp, &pid);
    close(pfd[1]);
    if (rc) {
        close(pfd[0]);
        return fn_seterr(eb, rc, "%s: %s", ft, fn_strerror(rc));
    }
    FILE *in = fdopen(pfd[0], "r");
    if (!in) {
        rc = -errno;
        close(pfd[0]);
        wait_child(pid);
        return fn_seterr(eb, rc, "fdopen: %s", fn_strerror(rc));
    }
    char *line = NULL;
    size_t lcap = 0, got = 0;
    ssize_t ll;
    while (rc == 0 && (ll = getline(&line, &lcap, in)) >= 0) {
        if (got == v->n) {
            rc = fn_seterr(eb, FN_EINVAL, "fasttext print-word-vectors: more lines than the %zu words asked", v->n);
            break;
        }
        char *sp = strchr(line, ' ');
        if (!sp || (size_t)(sp - line) != v->len[got] || memcmp(line, v->word[got], v->len[got]) != 0) {
            rc = fn_seterr(eb, FN_EINVAL, "fasttext print-word-vectors: line %zu is not word '%s'", got + 1,
                           v->word[got]);
            break;
        }
        char *p = sp;
        float *dst = v->vec + got * v->dim;
        for (unsigned j = 0; j < v->dim; j++) {
            char *end;
            dst[j] = strtof(p, &end);
            if (end == p || !isfinite(dst[j])) {
                rc = fn_seterr(eb, FN_EINVAL, "fasttext print-word-vectors: line %zu has fewer than %u numbers "
                               "(is the manifest's dim that of the model?)", got + 1, v->dim);
                break;
            }
            p = end;
        }
        got++;
    }
    free(line);
    fclose(in);                 /* a child still writing gets SIGPIPE */
    int st = wait_child(pid);
    if (rc) return rc;
    if (st != 0) return child_failed(eb, "fasttext print-word-vectors", st, logp);
    if (got != v->n)
        return fn_seterr(eb, FN_EINVAL, "fasttext print-word-vectors: %zu vectors for %zu words", got, v->n);
    return 0;
}

/* ---- the manifest ---- */

typedef struct emb_manifest {
    unsigned dim;
    char analyzer[256];         /* idx_analyzer_describe() of training */
    char model[PATH_MAX];       /* ENC/model.bin */
} emb_manifest;

static int manifest_load(const char *enc, emb_manifest *m, fn_errbuf *eb)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", enc, EMB_MANIFEST) >= (int)sizeof path)
        return fn_seterr(eb, -ENAMETOOLONG, "%s: path too long", enc);
    json_error_t jerr;
    json_t *r = json_load_file(path, 0, &jerr);
    if (!r) {
        if (access(path, F_OK) != 0)
            return fn_seterr(eb, FN_ENOTFOUND, "%s: no such file (is %s an encoder from funnel embed train?)",
                             path, enc);
        return fn_seterr(eb, FN_EFORMAT, "%s: %s", path, jerr.text);
    }
    const char *format = NULL, *analyzer = NULL, *model = NULL;
    json_int_t version = 0, dim = 0;
    int rc = 0;
    if (json_unpack(r, "{s:s, s:I, s:I, s:s, s:s}", "format", &format, "version", &version, "dim", &dim,
                    "analyzer", &analyzer, "model", &model) != 0 || strcmp(format, EMB_FORMAT) != 0)
        rc = fn_seterr(eb, FN_EFORMAT, "%s: not a funnel-embed manifest", path);
    else if (version != EMB_VERSION)
        rc = fn_seterr(eb, FN_EVERSION, "%s: version %lld, this funnel reads %d", path, (long long)version,
                       EMB_VERSION);
    else if (dim < 1 || dim > EMB_MAX_DIM || strlen(analyzer) >= sizeof m->analyzer || strchr(model, '/'))
        rc = fn_seterr(eb, FN_EFORMAT, "%s: bad dim, analyzer or model", path);
    else if (snprintf(m->model, sizeof m->model, "%s/%s", enc, model) >= (int)sizeof m->model)
        rc = fn_seterr(eb, -ENAMETOOLONG, "%s: path too long", enc);
    else if (access(m->model, R_OK) != 0)
        rc = fn_seterr(eb, -errno, "%s: %s", m->model, strerror(errno));
    if (rc == 0) {
        m->dim = (unsigned)dim;
        strcpy(m->analyzer, analyzer);
    }
    json_decref(r);
    return rc;
}

/* The version of the Debian package that owns the program, "unknown" if none
 * (fasttext has no --version). */
static void fasttext_version(const char *ft, char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    char real[PATH_MAX];
    if (!realpath(ft, real)) return;
    char *argv[] = {"/usr/bin/dpkg-query", "-W", "-f=${Version}", "fasttext", NULL};
    if (strcmp(real, "/usr/bin/fasttext") != 0 || !is_exec(argv[0])) return;
    int pfd[2];
    if (pipe(pfd) != 0) return;
    fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
    fcntl(pfd[1], F_SETFD, FD_CLOEXEC);
    pid_t pid;
    int rc = spawn(argv, NULL, pfd[1], "/dev/null", &pid);
    close(pfd[1]);
    if (rc) {
        close(pfd[0]);
        return;
    }
    char buf[128];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(pfd[0], buf + n, sizeof buf - 1 - n)) != 0) {
        if (r < 0) {
            if (errno == EINTR) continue;
            break;
        }
        n += (size_t)r;
    }
    close(pfd[0]);
    buf[n] = '\0';
    if (wait_child(pid) == 0 && n > 0 && !strpbrk(buf, "\n\"\\")) snprintf(out, cap, "%s", buf);
}

/* xxh64 of the file's bytes as 16 hex digits, and its size. 0 or -errno. */
static int file_hash(const char *path, char hex[17], uint64_t *bytes)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -errno;
    XXH64_state_t *st = XXH64_createState();
    if (!st) {
        fclose(f);
        return -ENOMEM;
    }
    XXH64_reset(st, 0);
    static char buf[1 << 16];
    size_t n;
    *bytes = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        XXH64_update(st, buf, n);
        *bytes += n;
    }
    int rc = ferror(f) ? -EIO : 0;
    fclose(f);
    snprintf(hex, 17, "%016llx", (unsigned long long)XXH64_digest(st));
    XXH64_freeState(st);
    return rc;
}

/* ---- funnel embed train ---- */

typedef struct train_ctx {
    emb_input in;
    idx_analyzer_t *an;
    FILE *txt;                  /* the training text, one document a line */
    size_t docs, empty, tokens, linetok;
} train_ctx;

static int train_tok(void *ud, const char *term, size_t len, uint32_t pos)
{
    train_ctx *c = ud;
    (void)pos;
    if (c->linetok++) putc(' ', c->txt);
    fwrite(term, 1, len, c->txt);
    c->tokens++;
    return 0;
}

static int train_line(void *ud, char *line, size_t len, size_t lineno)
{
    train_ctx *c = ud;
    if (blank(line, len)) return 0;
    emb_doc d;
    char why[300];
    if (doc_parse(line, len, &d, why, sizeof why)) return bad_line(&c->in, lineno, why);
    c->linetok = 0;
    int rc = idx_analyze(c->an, d.text[0], d.len[0], train_tok, c);
    if (rc == 0) rc = idx_analyze(c->an, d.text[1], d.len[1], train_tok, c);
    json_decref(d.root);
    if (rc) return rc;
    c->docs++;
    if (c->linetok) putc('\n', c->txt);
    else c->empty++;
    return 0;
}

typedef struct train_opts {
    const char *input, *out, *model, *stopwords;
    unsigned long dim, epochs, threads, min_count, seed, window;
    double lr;
    int skip_bad;
} train_opts;

/* "Number of words:  4321" from fastText's log; 0 if absent. */
static unsigned long log_words(const char *log)
{
    FILE *f = fopen(log, "r");
    if (!f) return 0;
    char line[512];
    unsigned long n = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Number of words:", 16) == 0) n = strtoul(line + 16, NULL, 10);
    fclose(f);
    return n;
}

static int embed_train(const train_opts *o, fn_errbuf *eb)
{
    char ft[PATH_MAX], tmpl[PATH_MAX], txt[PATH_MAX + 16], prefix[PATH_MAX + 16], logp[PATH_MAX + 16];
    char p[PATH_MAX];
    char hex[17], ftver[128], desc[256];
    uint64_t bytes = 0;
    double t0 = now_s();
    int rc = find_fasttext(ft, sizeof ft, eb);
    if (rc) return rc;
    if ((rc = file_hash(o->input, hex, &bytes)) != 0) return fn_seterr(eb, rc, "%s: %s", o->input, fn_strerror(rc));
    char corpus_real[PATH_MAX];
    if (!realpath(o->input, corpus_real)) snprintf(corpus_real, sizeof corpus_real, "%s", o->input);

    idx_analyzer_opts ao = {.stemmer = "none", .stopwords = o->stopwords};
    train_ctx c = {.in = {.path = o->input, .skip_bad = o->skip_bad, .report = 1, .eb = eb}};
    if ((rc = idx_analyzer_create(&ao, &c.an, eb)) != 0) return rc;
    idx_analyzer_describe(c.an, desc, sizeof desc);

    struct stat st;
    int created = stat(o->out, &st) != 0;
    if ((rc = ops_mkdirs(o->out)) != 0) {
        rc = fn_seterr(eb, rc, "%s: %s", o->out, fn_strerror(rc));
        goto fail_analyzer;
    }
    if (snprintf(tmpl, sizeof tmpl, "%s/.train-XXXXXX", o->out) >= (int)sizeof tmpl) {
        rc = fn_seterr(eb, -ENAMETOOLONG, "%s: path too long", o->out);
        goto fail_out;
    }
    if (!mkdtemp(tmpl)) {
        rc = fn_seterr(eb, -errno, "%s: cannot make a temporary directory: %s", o->out, strerror(errno));
        goto fail_out;
    }
    snprintf(txt, sizeof txt, "%s/train.txt", tmpl);
    snprintf(prefix, sizeof prefix, "%s/model", tmpl);
    snprintf(logp, sizeof logp, "%s/fasttext.log", tmpl);

    /* phase 2: the training text */
    if (!(c.txt = fopen(txt, "w"))) {
        rc = fn_seterr(eb, -errno, "%s: %s", txt, strerror(errno));
        goto fail_tmp;
    }
    rc = fn_read_lines(o->input, train_line, &c, eb);
    int werr = ferror(c.txt);
    if ((fclose(c.txt) != 0 || werr) && rc == 0) rc = fn_seterr(eb, -EIO, "%s: write failed", txt);
    if (rc) goto fail_tmp;
    if (c.tokens == 0) {
        rc = fn_seterr(eb, FN_EINVAL, "%s: no words to learn from (%zu documents)", o->input, c.docs);
        goto fail_tmp;
    }
    double t1 = now_s();

    /* phase 3: fastText */
    char a_dim[24], a_ep[24], a_th[24], a_mc[24], a_seed[24], a_ws[24], a_lr[32], a_minn[8], a_maxn[8];
    char a_bucket[24];
    snprintf(a_dim, sizeof a_dim, "%lu", o->dim);
    snprintf(a_ep, sizeof a_ep, "%lu", o->epochs);
    snprintf(a_th, sizeof a_th, "%lu", o->threads);
    snprintf(a_mc, sizeof a_mc, "%lu", o->min_count);
    snprintf(a_seed, sizeof a_seed, "%lu", o->seed);
    snprintf(a_ws, sizeof a_ws, "%lu", o->window);
    snprintf(a_lr, sizeof a_lr, "%g", o->lr);
    snprintf(a_minn, sizeof a_minn, "%d", EMB_MINN);
    snprintf(a_maxn, sizeof a_maxn, "%d", EMB_MAXN);
    snprintf(a_bucket, sizeof a_bucket, "%d", EMB_BUCKET);
    char *argv[] = {ft, (char *)o->model, "-input", txt, "-output", prefix, "-dim", a_dim, "-epoch", a_ep,
                    "-thread", a_th, "-minCount", a_mc, "-seed", a_seed, "-ws", a_ws, "-lr", a_lr,
                    "-minn", a_minn, "-maxn", a_maxn, "-bucket", a_bucket, "-verbose", "1", NULL};
    char args[512];
    snprintf(args, sizeof args, "-dim %s -epoch %s -thread %s -minCount %s -seed %s -ws %s -lr %s -minn %s "
             "-maxn %s -bucket %s", a_dim, a_ep, a_th, a_mc, a_seed, a_ws, a_lr, a_minn, a_maxn, a_bucket);
    fprintf(stderr, "funnel embed train: %zu documents, %zu tokens: fasttext %s %s\n", c.docs, c.tokens,
            o->model, args);
    pid_t pid;
    if ((rc = spawn(argv, NULL, -1, logp, &pid)) != 0) {
        rc = fn_seterr(eb, rc, "%s: %s", ft, fn_strerror(rc));
        goto fail_tmp;
    }
    int cst = wait_child(pid);
    if (cst != 0) {
        char what[64];
        snprintf(what, sizeof what, "fasttext %s", o->model);
        rc = child_failed(eb, what, cst, logp);
        goto fail_tmp;
    }
    double t2 = now_s();
    unsigned long words = log_words(logp);
    fasttext_version(ft, ftver, sizeof ftver);

    /* phase 4: publish the model, then the manifest */
    json_t *m = json_pack("{s:s, s:i, s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:s, s:i, s:i, s:i, s:s, "
                          "s:[s,s], "
                          "s:{s:s, s:I, s:s, s:I, s:I, s:I, s:I}, s:I, s:{s:s, s:s, s:s}, s:b, s:f}",
                          "format", EMB_FORMAT, "version", EMB_VERSION, "model", EMB_MODEL,
                          "dim", (json_int_t)o->dim, "algorithm", o->model, "epochs", (json_int_t)o->epochs,
                          "threads", (json_int_t)o->threads, "min_count", (json_int_t)o->min_count,
                          "seed", (json_int_t)o->seed, "window", (json_int_t)o->window, "lr", o->lr,
                          "on_error", o->skip_bad ? "skip" : "fail",
                          "minn", EMB_MINN, "maxn", EMB_MAXN, "bucket", EMB_BUCKET, "analyzer", desc,
                          "fields", "title", "body",
                          "corpus", "path", corpus_real, "bytes", (json_int_t)bytes, "xxh64", hex,
                          "docs", (json_int_t)c.docs, "without_words", (json_int_t)c.empty,
                          "bad_lines_skipped", (json_int_t)c.in.bad, "tokens", (json_int_t)c.tokens,
                          "vocabulary", (json_int_t)words,
                          "fasttext", "path", ft, "version", ftver, "args", args,
                          "reproducible", o->threads == 1, "train_s", t2 - t1);
    char *ms = m ? json_dumps(m, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(m);
    if (!ms) {
        rc = -ENOMEM;
        goto fail_tmp;
    }
    /* an old manifest goes first: never a manifest beside another model */
    snprintf(p, sizeof p, "%s/%s", o->out, EMB_MANIFEST);
    if (unlink(p) != 0 && errno != ENOENT) {
        rc = fn_seterr(eb, -errno, "%s: %s", p, strerror(errno));
        free(ms);
        goto fail_tmp;
    }
    snprintf(p, sizeof p, "%s/%s", o->out, EMB_MODEL);
    char bin[PATH_MAX + 32];
    snprintf(bin, sizeof bin, "%s.bin", prefix);
    if (rename(bin, p) != 0) {
        rc = fn_seterr(eb, -errno, "%s: %s", p, strerror(errno));
        free(ms);
        goto fail_tmp;
    }
    size_t ml = strlen(ms);
    char *ms2 = realloc(ms, ml + 2);
    if (!ms2) {
        free(ms);
        rc = -ENOMEM;
        goto fail_tmp;
    }
    memcpy(ms2 + ml, "\n", 2);
    snprintf(p, sizeof p, "%s/%s", o->out, EMB_MANIFEST);
    rc = ops_write_atomic(p, ms2);
    free(ms2);
    if (rc) {
        rc = fn_seterr(eb, rc, "%s: %s", p, fn_strerror(rc));
        goto fail_tmp;
    }
    ops_rm_flat_dir(tmpl);
    idx_analyzer_destroy(c.an);
    printf("trained %s dim %lu on %zu documents (%zu without words, %zu bad lines skipped), %zu tokens, "
           "%lu words, fasttext %.2f s, total %.2f s -> %s\n",
           o->model, o->dim, c.docs, c.empty, c.in.bad, c.tokens, words, t2 - t1, now_s() - t0, o->out);
    return 0;

fail_tmp:
    ops_rm_flat_dir(tmpl);
fail_out:
    if (created) rmdir(o->out);
fail_analyzer:
    idx_analyzer_destroy(c.an);
    return rc;
}

/* ---- funnel embed apply ---- */

typedef struct apply_ctx {
    emb_input in;
    int queries;                /* Q.tsv rather than JSON Lines */
    int pass;                   /* 1: collect words, 2: write */
    idx_analyzer_t *an;
    vocab v;
    FILE *out;
    double *sum;                /* dim */
    size_t words;               /* tokens of the current text */
    int missing;                /* pass 2 met a token pass 1 did not */
    size_t done, empty;
} apply_ctx;

static int sum_tok(void *ud, const char *term, size_t len, uint32_t pos)
{
    apply_ctx *c = ud;
    (void)pos;
    long k = vocab_find(&c->v, term, len);
    if (k < 0) {
        c->missing = 1;
        return 1;
    }
    const float *x = c->v.vec + (size_t)k * c->v.dim;
    for (unsigned j = 0; j < c->v.dim; j++) c->sum[j] += x[j];
    c->words++;
    return 0;
}

/* Analyse n texts into the vocabulary (pass 1) or into c->sum (pass 2).
 * Pass 2: 1 when the text has a vector (then c->sum is unit length), 0 when
 * it has no word (or a zero mean), or an error. */
static int text_vector(apply_ctx *c, const char *const *text, const size_t *len, int n, size_t lineno)
{
    int rc;
    if (c->pass == 1) {
        for (int i = 0; i < n; i++)
            if ((rc = idx_analyze(c->an, text[i], len[i], vocab_tok, &c->v)) != 0) return rc;
        return 0;
    }
    memset(c->sum, 0, c->v.dim * sizeof *c->sum);
    c->words = 0;
    for (int i = 0; i < n; i++) {
        rc = idx_analyze(c->an, text[i], len[i], sum_tok, c);
        if (c->missing)
            return fn_seterr(c->in.eb, FN_EINVAL, "%s:%zu: changed while being read", c->in.path, lineno);
        if (rc) return rc;
    }
    double norm = 0;
    for (unsigned j = 0; j < c->v.dim; j++) norm += c->sum[j] * c->sum[j];
    norm = sqrt(norm);
    if (c->words == 0 || !(norm > 0)) return 0;
    for (unsigned j = 0; j < c->v.dim; j++) c->sum[j] /= norm;
    return 1;
}

static void put_vector(FILE *f, const double *x, unsigned dim, char sep)
{
    for (unsigned j = 0; j < dim; j++) {
        if (j) putc(sep, f);
        fprintf(f, "%.6g", (double)(float)x[j]);
    }
}

/* Write the document: the input line itself with ,"embedding":[...] spliced
 * in before its closing brace, so that every other byte stays as it was; a
 * line that had an "embedding" field is re-serialised without it first. */
static int write_doc(apply_ctx *c, json_t *root, const char *line, size_t len, int has_vec)
{
    char *dumped = NULL;
    int had = json_object_get(root, "embedding") != NULL;
    if (had) {
        json_object_del(root, "embedding");
        dumped = json_dumps(root, JSON_COMPACT);
        if (!dumped) return -ENOMEM;
        line = dumped;
        len = strlen(dumped);
    }
    if (!has_vec) {
        fwrite(line, 1, len, c->out);
        putc('\n', c->out);
    } else {
        while (len > 0 && line[len - 1] != '}') len--;      /* trailing blanks; a valid object ends in } */
        fwrite(line, 1, len - 1, c->out);
        fputs(json_object_size(root) ? ",\"embedding\":[" : "\"embedding\":[", c->out);
        put_vector(c->out, c->sum, c->v.dim, ',');
        fputs("]}\n", c->out);
    }
    free(dumped);
    return 0;
}

static int apply_line(void *ud, char *line, size_t len, size_t lineno)
{
    apply_ctx *c = ud;
    int rc;
    if (blank(line, len)) return 0;
    if (c->queries) {
        char *qid, *text;
        const char *why;
        if (query_parse(line, &qid, &text, &why)) return bad_line(&c->in, lineno, why);
        const char *t[1] = {text};
        size_t l[1] = {strlen(text)};
        if ((rc = text_vector(c, t, l, 1, lineno)) < 0) return rc;
        if (c->pass == 2) {
            fprintf(c->out, "%s\t%s", qid, text);
            if (rc == 1) {
                putc('\t', c->out);
                put_vector(c->out, c->sum, c->v.dim, ' ');
            } else {
                c->empty++;
            }
            putc('\n', c->out);
            c->done++;
        }
        return 0;
    }
    emb_doc d;
    char why[300];
    if (doc_parse(line, len, &d, why, sizeof why)) return bad_line(&c->in, lineno, why);
    if ((rc = text_vector(c, d.text, d.len, 2, lineno)) >= 0 && c->pass == 2) {
        int has = rc == 1;
        rc = write_doc(c, d.root, line, len, has);
        c->done++;
        c->empty += !has;
    }
    json_decref(d.root);
    return rc < 0 ? rc : 0;
}

typedef struct apply_opts {
    const char *enc, *input, *out;
    int queries, skip_bad;
} apply_opts;

static int embed_apply(const apply_opts *o, fn_errbuf *eb)
{
    double t0 = now_s();
    char ft[PATH_MAX], tmpl[PATH_MAX], tmpout[PATH_MAX], store[256];
    emb_manifest m;
    int rc = find_fasttext(ft, sizeof ft, eb);
    if (rc == 0) rc = manifest_load(o->enc, &m, eb);
    if (rc) return rc;
    idx_analyzer_opts ao;
    if (idx_analyzer_opts_parse(m.analyzer, &ao, store, sizeof store) != 0)
        return fn_seterr(eb, FN_EFORMAT, "%s/%s: bad analyzer '%s'", o->enc, EMB_MANIFEST, m.analyzer);
    apply_ctx c = {.in = {.path = o->input, .skip_bad = o->skip_bad, .report = 1, .eb = eb},
                   .queries = o->queries, .pass = 1};
    c.v.dim = m.dim;
    fn_arena_init(&c.v.arena);
    if ((rc = idx_analyzer_create(&ao, &c.an, eb)) != 0) return rc;
    if (!(c.sum = calloc(m.dim, sizeof *c.sum))) {
        rc = -ENOMEM;
        goto fail_vocab;
    }

    /* pass 1: check the lines, collect the words */
    if ((rc = fn_read_lines(o->input, apply_line, &c, eb)) != 0) goto fail_vocab;
    size_t bad = c.in.bad;
    double t1 = now_s();

    /* the vectors of every word, one fasttext */
    const char *td = getenv("TMPDIR");
    if (snprintf(tmpl, sizeof tmpl, "%s/funnel-embed-XXXXXX", td && *td ? td : "/tmp") >= (int)sizeof tmpl) {
        rc = fn_seterr(eb, -ENAMETOOLONG, "TMPDIR: path too long");
        goto fail_vocab;
    }
    if (!mkdtemp(tmpl)) {
        rc = fn_seterr(eb, -errno, "%s: cannot make a temporary directory: %s", tmpl, strerror(errno));
        goto fail_vocab;
    }
    rc = vocab_vectors(&c.v, ft, m.model, tmpl, eb);
    ops_rm_flat_dir(tmpl);
    if (rc) goto fail_vocab;
    double t2 = now_s();

    /* pass 2: write */
    if (snprintf(tmpout, sizeof tmpout, "%s.tmp", o->out) >= (int)sizeof tmpout) {
        rc = fn_seterr(eb, -ENAMETOOLONG, "%s: path too long", o->out);
        goto fail_vocab;
    }
    if (!(c.out = fopen(tmpout, "w"))) {
        rc = fn_seterr(eb, -errno, "%s: %s", tmpout, strerror(errno));
        goto fail_vocab;
    }
    c.pass = 2;
    c.in.report = 0;
    c.in.bad = 0;
    rc = fn_read_lines(o->input, apply_line, &c, eb);
    int werr = ferror(c.out);
    if ((fclose(c.out) != 0 || werr) && rc == 0) rc = fn_seterr(eb, -EIO, "%s: write failed", tmpout);
    if (rc == 0 && c.in.bad != bad)
        rc = fn_seterr(eb, FN_EINVAL, "%s: changed while being read", o->input);
    if (rc == 0 && rename(tmpout, o->out) != 0) rc = fn_seterr(eb, -errno, "%s: %s", o->out, strerror(errno));
    if (rc) {
        unlink(tmpout);
        goto fail_vocab;
    }
    const char *what = o->queries ? "queries" : "documents";
    printf("embedded %zu %s (dim %u): %zu without words (%s), %zu bad lines skipped; %zu distinct words, "
           "read %.2f s, fasttext %.2f s, total %.2f s -> %s\n",
           c.done, what, m.dim, c.empty, o->queries ? "no vector column" : "no \"embedding\" field", bad,
           c.v.n, t1 - t0, t2 - t1, now_s() - t0, o->out);
fail_vocab:
    vocab_free(&c.v);
    free(c.sum);
    idx_analyzer_destroy(c.an);
    return rc;
}

/* ---- command line ---- */

static int on_error_arg(const char *s, int *skip)
{
    if (strcmp(s, "skip") == 0) *skip = 1;
    else if (strcmp(s, "fail") == 0) *skip = 0;
    else return -1;
    return 0;
}

static int cmd_train(int argc, char **argv)
{
    static const struct option lo[] = {
        {"input", required_argument, 0, 'i'},    {"out", required_argument, 0, 'o'},
        {"dim", required_argument, 0, 'd'},      {"epochs", required_argument, 0, 'e'},
        {"threads", required_argument, 0, 't'},  {"min-count", required_argument, 0, 'm'},
        {"seed", required_argument, 0, 's'},     {"model", required_argument, 0, 'M'},
        {"stopwords", required_argument, 0, 'w'}, {"on-error", required_argument, 0, 'E'},
        {"window", required_argument, 0, 'W'},   {"lr", required_argument, 0, 'l'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    train_opts o = {.model = "skipgram", .stopwords = "english", .dim = 64, .epochs = 10, .threads = 2,
                    .min_count = 2, .seed = 1, .window = 10, .lr = 0.05};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        const char *bad = NULL;
        switch (c) {
        case 'i': o.input = optarg; break;
        case 'o': o.out = optarg; break;
        case 'd': if (parse_ulong(optarg, 1, EMB_MAX_DIM, &o.dim)) bad = "--dim must be 1..1024"; break;
        case 'e': if (parse_ulong(optarg, 1, 10000, &o.epochs)) bad = "--epochs must be 1..10000"; break;
        case 't': if (parse_ulong(optarg, 1, 64, &o.threads)) bad = "--threads must be 1..64"; break;
        case 'm': if (parse_ulong(optarg, 1, INT_MAX, &o.min_count)) bad = "--min-count must be >= 1"; break;
        case 's': if (parse_ulong(optarg, 0, INT_MAX, &o.seed)) bad = "--seed must be 0..2147483647"; break;
        case 'W': if (parse_ulong(optarg, 1, 100, &o.window)) bad = "--window must be 1..100"; break;
        case 'l': {
            char *end;
            errno = 0;
            o.lr = strtod(optarg, &end);
            if (end == optarg || *end || errno || !(o.lr > 0 && o.lr <= 1)) bad = "--lr must be in (0, 1]";
            break;
        }
        case 'M':
            if (strcmp(optarg, "skipgram") != 0 && strcmp(optarg, "cbow") != 0) bad = "--model must be skipgram or cbow";
            o.model = optarg;
            break;
        case 'w':
            if (strcmp(optarg, "english") != 0 && strcmp(optarg, "none") != 0) bad = "--stopwords must be english or none";
            o.stopwords = optarg;
            break;
        case 'E': if (on_error_arg(optarg, &o.skip_bad)) bad = "--on-error must be skip or fail"; break;
        case 'h': fputs(embed_usage, stdout); return OPS_EXIT_OK;
        default: fputs(embed_usage, stderr); return OPS_EXIT_USAGE;
        }
        if (bad) {
            fprintf(stderr, "funnel embed train: %s\n", bad);
            return OPS_EXIT_USAGE;
        }
    }
    if (!o.input || !o.out || optind != argc) {
        fprintf(stderr, "funnel embed train: --input and --out are required\n");
        fputs(embed_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    fn_errbuf eb = {{0}};
    int rc = embed_train(&o, &eb);
    if (rc) {
        fprintf(stderr, "funnel embed train: %s\n", fn_errmsg(&eb, rc));
        return OPS_EXIT_FAIL;
    }
    return OPS_EXIT_OK;
}

static int cmd_apply(int argc, char **argv)
{
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'},   {"corpus", required_argument, 0, 'c'},
        {"queries", required_argument, 0, 'q'}, {"out", required_argument, 0, 'o'},
        {"on-error", required_argument, 0, 'E'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    apply_opts o = {0};
    const char *corpus = NULL, *queries = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': o.enc = optarg; break;
        case 'c': corpus = optarg; break;
        case 'q': queries = optarg; break;
        case 'o': o.out = optarg; break;
        case 'E':
            if (on_error_arg(optarg, &o.skip_bad)) {
                fprintf(stderr, "funnel embed apply: --on-error must be skip or fail\n");
                return OPS_EXIT_USAGE;
            }
            break;
        case 'h': fputs(embed_usage, stdout); return OPS_EXIT_OK;
        default: fputs(embed_usage, stderr); return OPS_EXIT_USAGE;
        }
    }
    if (!o.enc || !o.out || !corpus == !queries || optind != argc) {
        fprintf(stderr, "funnel embed apply: --model, --out and one of --corpus or --queries are required\n");
        fputs(embed_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    o.input = corpus ? corpus : queries;
    o.queries = queries != NULL;
    fn_errbuf eb = {{0}};
    int rc = embed_apply(&o, &eb);
    if (rc) {
        fprintf(stderr, "funnel embed apply: %s\n", fn_errmsg(&eb, rc));
        return OPS_EXIT_FAIL;
    }
    return OPS_EXIT_OK;
}

int ops_cmd_embed(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "train") == 0) return cmd_train(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "apply") == 0) return cmd_apply(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(embed_usage, stdout);
        return OPS_EXIT_OK;
    }
    fprintf(stderr, "funnel embed: train or apply expected\n");
    fputs(embed_usage, stderr);
    return OPS_EXIT_USAGE;
}
