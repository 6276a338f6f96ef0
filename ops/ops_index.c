/* ops_index.c - `funnel index build`: idx_build with progress and a summary;
 * `funnel index verify`: idx_verify, one line per shard and a summary. */
#include "ops.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <errno.h>

#include "builder.h"
#include "buckets.h"
#include "cfilter.h"
#include "codec.h"
#include "fn_io.h"
#include "verify.h"
#include "ann/hnsw.h"

static const char index_usage[] =
    "usage: funnel index build --input corpus.jsonl --shards N --out IDXDIR\n"
    "                          [--on-error skip|fail] [--mem-mb M] [--threads T]\n"
    "                          [--stemmer english|none|ALGO] [--stopwords english|none|FILE]\n"
    "                          [--codec bp128|varint|streamvbyte]\n"
    "                          [--dim D] [--metric cosine|dot|l2] [--M 16] [--efc 200]\n"
    "                          [--filter-model MODEL] [--shard-index I] [--buckets-from GEN]\n"
    "\n"
    "Builds an index of N shards from a JSON Lines corpus (one document a line:\n"
    "\"id\" required and unique, \"title\", \"body\", other fields stored).\n"
    "  --input FILE      corpus (\"-\" = stdin)\n"
    "  --shards N        number of shards (>= 1)\n"
    "  --out IDXDIR      output directory (must not already hold an index)\n"
    "  --on-error MODE   skip (default): report bad lines as FILE:LINE: reason and\n"
    "                    go on; fail: stop at the first bad line\n"
    "  --mem-mb M        memory for in-memory postings before spilling (default 256)\n"
    "  --threads T       threads parsing and analyzing documents (default 0: the\n"
    "                    online CPUs, at most 8; up to 64); any T, same index\n"
    "  --stemmer S       Snowball stemmer name or none (default english)\n"
    "  --stopwords W     english (default), none, or a file with one word a line\n"
    "  --codec C         postings codec: bp128 (default), varint or streamvbyte\n"
    "  --dim D           dimension of the documents' \"embedding\" vectors (default: the\n"
    "                    first document's); a vector of another one is a bad line\n"
    "  --metric M        vector similarity: cosine (default), dot or l2\n"
    "  --M M             links per node of each shard's HNSW graph (default 16)\n"
    "  --efc E           the graph build's candidate list (default 200)\n"
    "  --filter-model F  score every document with this content-filter model\n"
    "                    (funnel filter train) and store the score; the model's\n"
    "                    name and thresholds go into the index's meta\n"
    "  --shard-index I   keep only shard I of the N (one pod of a Kubernetes Indexed\n"
    "                    Job each): the whole index is built privately, since every\n"
    "                    shard stores global statistics, and IDXDIR gets shard I and\n"
    "                    index.json\n"
    "  --buckets-from G  partition as generation G does (its index.json \"buckets\":\n"
    "                    after `cluster add-shard` moved buckets); default: the\n"
    "                    contiguous map of N shards\n"
    "Exit status: 0 ok, 1 build failed, 2 usage error.\n"
    "\n"
    "usage: funnel index verify IDXDIR|SHARDDIR\n"
    "\n"
    "Checks an index offline: every shard's data.mdb against its checksum file,\n"
    "every stored value against its own checksum (term records, posting blocks,\n"
    "stored records, ids, norms, meta), the structure (term ids, block order,\n"
    "entry counts, ids leading back to their documents) and, for a whole index,\n"
    "the global statistics across shards (docs_total, field lengths, every\n"
    "term's gdf). Prints one line per shard and a summary; stops a shard's check\n"
    "at its first damage and goes on with the other shards.\n"
    "Exit status: 0 everything checks out, 1 damaged (or not an index), 2 usage error.\n"
    "\n"
    "funnel index publish | rollback | generations: swap a running cluster's index\n"
    "generation (funnel index publish --help). funnel index merge --dir RUN: live\n"
    "updates into a new generation, published (funnel index merge --help).\n";

typedef struct progress_state {
    int tty;
    uint64_t input_size;        /* 0 = unknown (stdin, pipe) */
    double last_line;           /* monotonic seconds of the last non-TTY line */
    int line_dirty;             /* a TTY progress line is on screen */
} progress_state;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_progress(void *ud, const idx_build_stats *st, const char *phase, int final)
{
    progress_state *ps = ud;
    double rate = st->seconds > 0 ? (double)st->docs / st->seconds : 0.0;
    char eta[32] = "?";
    if (ps->input_size > 0 && st->bytes_read > 0 && st->bytes_read < ps->input_size &&
        st->seconds > 0) {
        double left = st->seconds * (double)(ps->input_size - st->bytes_read) / (double)st->bytes_read;
        snprintf(eta, sizeof eta, "%.0fs", left);
    } else if (ps->input_size > 0 && st->bytes_read >= ps->input_size) {
        snprintf(eta, sizeof eta, "0s");
    }
    if (ps->tty) {
        fprintf(stderr, "\r\033[K%s: %llu docs, %.0f docs/s, %llu skipped, ETA %s",
                phase ? phase : "", (unsigned long long)st->docs, rate,
                (unsigned long long)st->skipped, eta);
        ps->line_dirty = 1;
        if (final) {
            fputc('\n', stderr);
            ps->line_dirty = 0;
        }
        fflush(stderr);
        return;
    }
    double t = now_s();
    if (!final && t - ps->last_line < 5.0) return;
    ps->last_line = t;
    fprintf(stderr, "%s: %llu docs, %.0f docs/s, %llu skipped, ETA %s\n",
            phase ? phase : "", (unsigned long long)st->docs, rate,
            (unsigned long long)st->skipped, eta);
}

static void on_warning(void *ud, const char *msg)
{
    progress_state *ps = ud;
    if (ps->line_dirty) {
        fputs("\r\033[K", stderr);
        ps->line_dirty = 0;
    }
    fprintf(stderr, "%s\n", msg);
}

static int parse_u32(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v > UINT32_MAX || s[0] == '-') return -1;
    *out = (uint32_t)v;
    return 0;
}

/* The builder's filter hook: cfilter_score is thread-safe on a loaded model;
 * the document's signals (report_rate, ...) come from its JSON. */
static double filter_cb(void *ud, const char *title, size_t tlen, const char *body, size_t blen, const void *json)
{
    cfilter_signals sig;
    cfilter_signals_json(json, &sig);
    return cfilter_score_sig(ud, title, tlen, body, blen, &sig);
}

/* --shard-index: move shard I of the private build in tmp to out, then
 * index.json (last: a directory with index.json is a finished build), and
 * remove the rest. */
static int keep_one_shard(const char *tmp, const char *out, uint32_t si, uint32_t n, fn_errbuf *eb)
{
    char from[PATH_MAX + 32], to[PATH_MAX + 32];
    snprintf(from, sizeof from, "%s/shard-%03u", tmp, si);
    snprintf(to, sizeof to, "%s/shard-%03u", out, si);
    if (rename(from, to)) return fn_seterr(eb, -errno, "rename %s -> %s: %s", from, to, strerror(errno));
    snprintf(from, sizeof from, "%s/index.json", tmp);
    snprintf(to, sizeof to, "%s/index.json", out);
    if (rename(from, to)) return fn_seterr(eb, -errno, "rename %s -> %s: %s", from, to, strerror(errno));
    for (uint32_t s = 0; s < n; s++) {
        if (s == si) continue;
        snprintf(from, sizeof from, "%s/shard-%03u", tmp, s);
        DIR *d = opendir(from);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            if (de->d_name[0] == '.') continue;
            char f[PATH_MAX + 300];
            snprintf(f, sizeof f, "%s/%s", from, de->d_name);
            unlink(f);
        }
        if (d) closedir(d);
        rmdir(from);
    }
    rmdir(tmp);
    return 0;
}

static int index_build(int argc, char **argv)
{
    static const struct option lo[] = {
        {"input", required_argument, 0, 'i'},   {"shards", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'},     {"on-error", required_argument, 0, 'e'},
        {"mem-mb", required_argument, 0, 'm'},  {"stemmer", required_argument, 0, 'S'},
        {"stopwords", required_argument, 0, 'W'}, {"codec", required_argument, 0, 'C'},
        {"threads", required_argument, 0, 'T'},
        {"dim", required_argument, 0, 'D'},     {"metric", required_argument, 0, 'X'},
        {"M", required_argument, 0, 'M'},       {"efc", required_argument, 0, 'E'},
        {"filter-model", required_argument, 0, 'F'},
        {"shard-index", required_argument, 0, 'I'}, {"buckets-from", required_argument, 0, 'B'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    idx_build_opts o;
    memset(&o, 0, sizeof o);
    uint32_t mem_mb = 0;
    const char *filter_path = NULL, *buckets_from = NULL;
    uint32_t shard_index = UINT32_MAX;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'i': o.input = optarg; break;
        case 'o': o.out_dir = optarg; break;
        case 's':
            if (parse_u32(optarg, &o.shards) || o.shards == 0) {
                fprintf(stderr, "funnel index build: --shards must be a positive integer\n");
                return OPS_EXIT_USAGE;
            }
            break;
        case 'e':
            if (strcmp(optarg, "skip") == 0) o.on_error = IDX_ON_ERROR_SKIP;
            else if (strcmp(optarg, "fail") == 0) o.on_error = IDX_ON_ERROR_FAIL;
            else {
                fprintf(stderr, "funnel index build: --on-error must be skip or fail\n");
                return OPS_EXIT_USAGE;
            }
            break;
        case 'm':
            if (parse_u32(optarg, &mem_mb) || mem_mb == 0 || mem_mb > 1024 * 1024) {
                fprintf(stderr, "funnel index build: --mem-mb must be 1..1048576\n");
                return OPS_EXIT_USAGE;
            }
            break;
        case 'T':
            if (parse_u32(optarg, &o.threads) || o.threads > 64) {
                fprintf(stderr, "funnel index build: --threads must be 0..64 (0 = the online CPUs, at most 8)\n");
                return OPS_EXIT_USAGE;
            }
            break;
        case 'D':
            if (parse_u32(optarg, &o.vec_dim) || o.vec_dim == 0 || o.vec_dim > ANN_MAX_DIM) {
                fprintf(stderr, "funnel index build: --dim must be 1..%u\n", ANN_MAX_DIM);
                return OPS_EXIT_USAGE;
            }
            break;
        case 'X': {
            ann_metric m;
            if (ann_metric_parse(optarg, &m)) {
                fprintf(stderr, "funnel index build: --metric must be cosine, dot or l2\n");
                return OPS_EXIT_USAGE;
            }
            o.vec_metric = optarg;
            break;
        }
        case 'M':
            if (parse_u32(optarg, &o.ann_M) || o.ann_M < 2 || o.ann_M > ANN_MAX_M) {
                fprintf(stderr, "funnel index build: --M must be 2..%u\n", ANN_MAX_M);
                return OPS_EXIT_USAGE;
            }
            break;
        case 'E':
            if (parse_u32(optarg, &o.ann_efc) || o.ann_efc == 0 || o.ann_efc > 100000) {
                fprintf(stderr, "funnel index build: --efc must be 1..100000\n");
                return OPS_EXIT_USAGE;
            }
            break;
        case 'F': filter_path = optarg; break;
        case 'I':
            if (parse_u32(optarg, &shard_index) || shard_index >= IDX_MAX_SHARDS) {
                fprintf(stderr, "funnel index build: --shard-index must be 0..shards-1\n");
                return OPS_EXIT_USAGE;
            }
            break;
        case 'B': buckets_from = optarg; break;
        case 'S': o.analyzer.stemmer = optarg; break;
        case 'W': o.analyzer.stopwords = optarg; break;
        case 'C':
            if (!idx_codec_find(optarg)) {
                fprintf(stderr, "funnel index build: --codec: unknown codec \"%s\" (", optarg);
                for (const idx_codec_t *const *k = idx_codec_all(); *k; k++)
                    fprintf(stderr, "%s%s", k == idx_codec_all() ? "" : ", ", (*k)->name);
                fputs(")\n", stderr);
                return OPS_EXIT_USAGE;
            }
            o.codec = optarg;
            break;
        case 'h': fputs(index_usage, stdout); return OPS_EXIT_OK;
        default: fputs(index_usage, stderr); return OPS_EXIT_USAGE;
        }
    }
    if (optind != argc || !o.input || !o.out_dir || !o.shards) {
        fprintf(stderr, "funnel index build: --input, --shards and --out are required%s\n",
                optind != argc ? " (and no positional arguments)" : "");
        fputs(index_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    if (shard_index != UINT32_MAX && shard_index >= o.shards) {
        fprintf(stderr, "funnel index build: --shard-index %u: the index has %u shards (0..%u)\n", shard_index,
                o.shards, o.shards - 1);
        return OPS_EXIT_USAGE;
    }
    idx_bucket_map bmap;
    if (buckets_from) {   /* the partitioning of an existing generation (after add-shard) */
        fn_errbuf beb = {{0}};
        int brc = ops_bucket_map_of(buckets_from, &bmap, &beb);
        if (brc) {
            fprintf(stderr, "funnel index build: --buckets-from: %s\n", fn_errmsg(&beb, brc));
            return OPS_EXIT_FAIL;
        }
        if (bmap.shards != o.shards) {
            fprintf(stderr, "funnel index build: --buckets-from %s maps %u shards, --shards is %u\n", buckets_from,
                    bmap.shards, o.shards);
            return OPS_EXIT_USAGE;
        }
        o.buckets = &bmap;
    }
    o.mem_budget = (size_t)mem_mb << 20;
    cfilter_model_t *fm = NULL;
    if (filter_path) {
        fn_errbuf feb = {{0}};
        int frc = cfilter_model_load(filter_path, &fm, &feb);
        if (frc) {
            fprintf(stderr, "funnel index build: --filter-model: %s\n", fn_errmsg(&feb, frc));
            return OPS_EXIT_FAIL;
        }
        const char *base = strrchr(filter_path, '/');
        base = base ? base + 1 : filter_path;
        if (!*base || strlen(base) > 255) {
            fprintf(stderr, "funnel index build: --filter-model: the file name must be 1..255 bytes\n");
            cfilter_model_free(fm);
            return OPS_EXIT_USAGE;
        }
        o.filter_score = filter_cb;
        o.filter_ud = fm;
        o.filter_model = base;
        o.filter_threshold = cfilter_model_threshold(fm);
        o.filter_strict = cfilter_model_strict(fm);
    }

    /* The builder creates --out itself (and refuses a published index there);
     * its parents are ours to make, as `mkdir -p` would. */
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", o.out_dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        int mrc = ops_mkdirs(parent);
        if (mrc != 0) {
            fprintf(stderr, "funnel index build: cannot create %s: %s\n", parent, fn_strerror(mrc));
            cfilter_model_free(fm);
            return OPS_EXIT_FAIL;
        }
    }

    progress_state ps = {.tty = isatty(2), .last_line = now_s()};
    struct stat st;
    if (strcmp(o.input, "-") != 0 && stat(o.input, &st) == 0 && S_ISREG(st.st_mode))
        ps.input_size = (uint64_t)st.st_size;
    o.progress = on_progress;
    o.warning = on_warning;
    o.ud = &ps;

    /* --shard-index I: one shard of a generation (a Kubernetes Indexed Job
     * pod). The whole index is built privately and only shard I is kept:
     * every shard stores the global statistics, which need every document;
     * the cost is the whole build on each pod. */
    const char *final_out = o.out_dir;
    char tmpdir[PATH_MAX];
    if (shard_index != UINT32_MAX) {
        char sd[PATH_MAX + 32];
        snprintf(sd, sizeof sd, "%s/shard-%03u", final_out, shard_index);
        struct stat sst;
        if (stat(sd, &sst) == 0) {
            fprintf(stderr, "funnel index build: %s exists already (a finished shard is never rebuilt in place)\n", sd);
            cfilter_model_free(fm);
            return OPS_EXIT_FAIL;
        }
        if (ops_mkdirs(final_out)) {
            fprintf(stderr, "funnel index build: cannot create %s: %s\n", final_out, strerror(errno));
            cfilter_model_free(fm);
            return OPS_EXIT_FAIL;
        }
        snprintf(tmpdir, sizeof tmpdir, "%s/.shard-%03u.build", final_out, shard_index);
        o.out_dir = tmpdir;
    }
    idx_build_stats stats;
    memset(&stats, 0, sizeof stats);
    fn_errbuf eb = {{0}};
    int rc = idx_build(&o, &stats, &eb);
    if (rc == 0 && shard_index != UINT32_MAX && (rc = keep_one_shard(tmpdir, final_out, shard_index, o.shards, &eb)) == 0)
        o.out_dir = final_out;
    cfilter_model_free(fm);
    if (ps.line_dirty) fputc('\n', stderr);
    if (rc != 0) {
        fprintf(stderr, "funnel index build: %s\n", fn_errmsg(&eb, rc));
        return OPS_EXIT_FAIL;
    }
    char size[32];
    fn_format_bytes(stats.index_bytes, size, sizeof size);
    printf("indexed %llu docs, skipped %llu, %llu terms, %.2f s, %.0f docs/s, index %s (%llu bytes) in %s\n",
           (unsigned long long)stats.docs, (unsigned long long)stats.skipped,
           (unsigned long long)stats.terms, stats.seconds,
           stats.seconds > 0 ? (double)stats.docs / stats.seconds : 0.0, size,
           (unsigned long long)stats.index_bytes, o.out_dir);
    if (stats.vec_dim)
        printf("vectors: %llu of dimension %u, metric %s, HNSW graphs (M %u, efc %u) built in %.2f s\n",
               (unsigned long long)stats.vectors, stats.vec_dim, o.vec_metric ? o.vec_metric : "cosine",
               o.ann_M ? o.ann_M : 16, o.ann_efc ? o.ann_efc : 200, stats.ann_seconds);
    /* thread time, summed over the analyzing threads */
    if (filter_path)
        printf("filter: %llu documents scored in %.2f s (%.0f us per document, %u threads), model %s "
               "threshold %.6f strict %.6f\n",
               (unsigned long long)stats.filter_docs, stats.filter_seconds,
               stats.filter_docs ? stats.filter_seconds * 1e6 / (double)stats.filter_docs : 0.0, stats.threads,
               o.filter_model, o.filter_threshold, o.filter_strict);
    printf("dupsig: %llu signatures in %.2f s (%.0f us per document)\n", (unsigned long long)stats.docs,
           stats.dupsig_seconds, stats.docs ? stats.dupsig_seconds * 1e6 / (double)stats.docs : 0.0);
    return OPS_EXIT_OK;
}

static void on_verify_report(void *ud, const idx_verify_report *rep)
{
    (void)ud;
    printf("%s\n", rep->line);
    fflush(stdout);
}

static int index_verify(int argc, char **argv)
{
    static const struct option lo[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (c == 'h') {
            fputs(index_usage, stdout);
            return OPS_EXIT_OK;
        }
        fputs(index_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    if (argc - optind != 1) {
        fprintf(stderr, "funnel index verify: give exactly one IDXDIR or SHARDDIR\n");
        fputs(index_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    int reports = 0;
    fn_errbuf eb = {{0}};
    int rc = idx_verify(argv[optind], on_verify_report, &reports, &eb);
    if (rc == 0) return OPS_EXIT_OK;
    /* damage is on stdout already; a path that is no index is said here */
    if (rc != FN_ECORRUPT) fprintf(stderr, "funnel index verify: %s\n", fn_errmsg(&eb, rc));
    return OPS_EXIT_FAIL;
}

int ops_cmd_index(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(index_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? OPS_EXIT_USAGE : OPS_EXIT_OK;
    }
    if (strcmp(argv[1], "verify") == 0) return index_verify(argc - 1, argv + 1);
    if (strcmp(argv[1], "publish") == 0 || strcmp(argv[1], "rollback") == 0 || strcmp(argv[1], "generations") == 0)
        return ops_cmd_generation(argc - 1, argv + 1);
    if (strcmp(argv[1], "merge") == 0) return ops_index_merge(argc - 1, argv + 1);
    if (strcmp(argv[1], "build") != 0) {
        fprintf(stderr, "funnel index: unknown sub-command '%s'\n", argv[1]);
        fputs(index_usage, stderr);
        return OPS_EXIT_USAGE;
    }
    return index_build(argc - 1, argv + 1);
}
