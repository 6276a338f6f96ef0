/* ops_spell.c - `funnel spell build | check`: the spelling corrector of
 * issue 10 (query/spell.h) from the command line, before the coordinator
 * uses it.
 *
 *   build: corpus.jsonl -> DICT (spell.c's file format: words, cf, df, xxh64)
 *   check: DICT (+ an optional word list) and one query, or a queries.tsv,
 *          -> the rewritten queries (and, for one query, each correction)
 *
 * Test: tests/ops/test_spell_cli.sh.
 */
#include "ops.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fn_io.h"
#include "spell.h"

static const char spell_usage[] =
    "usage: funnel spell build --input corpus.jsonl --out DICT [--on-error skip|fail]\n"
    "       funnel spell check --dict DICT [--wordlist PATH] [--min-score S] [--stemmer S] \"query text\"\n"
    "       funnel spell check --dict DICT [--wordlist PATH] [--min-score S] [--stemmer S] --queries Q.tsv\n"
    "\n"
    "build: the dictionary of the corpus's words (title + body, case folded, not\n"
    "stemmed) with their collection and document frequencies, written to DICT.\n"
    "  --on-error MODE   fail (default): stop at the first bad line; skip: report\n"
    "                    bad lines as FILE:LINE: reason and leave them out\n"
    "check: corrects the words that are neither in DICT nor in the word list.\n"
    "  --stemmer NAME    the index's Snowball stemmer (default english; none): a word\n"
    "                    whose stem is a corpus word's finds documents, left alone\n"
    "  --wordlist PATH   known-good words, one a line (/usr/share/dict/american-english)\n"
    "                    or hunspell's .dic format; they are never corrected\n"
    "  --min-score S     a correction must score at least S (log P(w) + log P(typo|w),\n"
    "                    default -14)\n"
    "  one query: prints the rewritten query, then one line per correction:\n"
    "             \"  FROM -> TO (offset O, distance D, score S)\"\n"
    "  --queries Q.tsv: prints \"qid<TAB>rewritten text\" for each line of Q.tsv\n"
    "Exit status: 0 ok, 1 failure (bad input, damaged dictionary), 2 usage error.\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "funnel spell: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    fputs(spell_usage, stderr);
    return OPS_EXIT_USAGE;
}

static void warn_line(void *ud, const char *msg)
{
    (void)ud;
    fprintf(stderr, "%s\n", msg);
}

static int cmd_build(int argc, char **argv)
{
    static const struct option lo[] = {
        { "input", required_argument, NULL, 'i' }, { "out", required_argument, NULL, 'o' },
        { "on-error", required_argument, NULL, 'e' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 } };
    const char *input = NULL, *outp = NULL;
    int skip = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'i': input = optarg; break;
        case 'o': outp = optarg; break;
        case 'e':
            if (strcmp(optarg, "skip") == 0) skip = 1;
            else if (strcmp(optarg, "fail") == 0) skip = 0;
            else return usage_error("--on-error: skip or fail, not %s", optarg);
            break;
        case 'h': fputs(spell_usage, stdout); return OPS_EXIT_OK;
        default: return usage_error("build: unknown or incomplete option %s", argv[optind - 1]);
        }
    }
    if (optind < argc) return usage_error("build: unexpected argument %s", argv[optind]);
    if (!input || !outp) return usage_error("build: --input and --out are required%s", "");

    fn_errbuf eb = { { 0 } };
    spell_build_opts bo = { .skip_bad = skip, .warn = warn_line };
    spell_dict_t *d;
    double t0 = now_s();
    int rc = spell_dict_build_corpus(input, &bo, &d, &eb);
    if (rc) {
        fprintf(stderr, "funnel spell build: %s\n", fn_errmsg(&eb, rc));
        return OPS_EXIT_FAIL;
    }
    double t1 = now_s();
    rc = spell_dict_save(d, outp, &eb);
    if (rc) {
        fprintf(stderr, "funnel spell build: %s\n", fn_errmsg(&eb, rc));
        spell_dict_destroy(d);
        return OPS_EXIT_FAIL;
    }
    fprintf(stderr, "funnel spell build: %zu documents (%zu bad lines skipped), %zu words, %llu tokens; "
            "built in %.3f s, saved in %.3f s\n", bo.docs, bo.skipped, spell_dict_words(d),
            (unsigned long long)spell_dict_total(d), t1 - t0, now_s() - t1);
    spell_dict_destroy(d);
    return OPS_EXIT_OK;
}

static int cmd_check(int argc, char **argv)
{
    static const struct option lo[] = {
        { "dict", required_argument, NULL, 'd' }, { "wordlist", required_argument, NULL, 'w' },
        { "queries", required_argument, NULL, 'q' }, { "min-score", required_argument, NULL, 's' },
        { "stemmer", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
    const char *dictp = NULL, *wl = NULL, *queries = NULL, *stemmer = "english";
    spell_opts so = { 0 };
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'd': dictp = optarg; break;
        case 'w': wl = optarg; break;
        case 'q': queries = optarg; break;
        case 't': stemmer = optarg; break;
        case 's': {
            char *end;
            so.min_score = strtod(optarg, &end);
            if (end == optarg || *end) return usage_error("--min-score: not a number: %s", optarg);
            break;
        }
        case 'h': fputs(spell_usage, stdout); return OPS_EXIT_OK;
        default: return usage_error("check: unknown or incomplete option %s", argv[optind - 1]);
        }
    }
    if (!dictp) return usage_error("check: --dict is required%s", "");
    if (queries && optind < argc) return usage_error("check: a query text or --queries, not both (%s)", argv[optind]);
    if (!queries && optind + 1 != argc) return usage_error("check: one query text (quoted) or --queries Q.tsv%s", "");

    fn_errbuf eb = { { 0 } };
    spell_dict_t *d = NULL;
    int rc = spell_dict_load(dictp, &d, &eb);
    if (!rc && wl) rc = spell_dict_load_wordlist(d, wl, &eb);
    if (!rc) rc = spell_dict_set_stemmer(d, stemmer, &eb);
    if (rc) {
        fprintf(stderr, "funnel spell check: %s\n", fn_errmsg(&eb, rc));
        spell_dict_destroy(d);
        return OPS_EXIT_FAIL;
    }
    int status = OPS_EXIT_OK;
    if (queries) {
        /* queries.tsv as every command reads it (ops_queries_load) */
        ops_query *qs = NULL;
        size_t nq = 0, fixes = 0;
        rc = ops_queries_load(queries, &qs, &nq, &eb);
        for (size_t i = 0; !rc && i < nq; i++) {
            spell_result r;
            if ((rc = spell_correct(d, qs[i].text, strlen(qs[i].text), &so, &r, &eb)) == 0) {
                printf("%s\t%s\n", qs[i].qid, r.text);
                fixes += r.nfix;
            }
            spell_result_free(&r);
        }
        if (rc) {
            fprintf(stderr, "funnel spell check: %s\n", fn_errmsg(&eb, rc));
            status = OPS_EXIT_FAIL;
        } else {
            fprintf(stderr, "funnel spell check: %zu queries, %zu corrections\n", nq, fixes);
        }
        ops_queries_free(qs, nq);
    } else {
        const char *q = argv[optind];
        spell_result r;
        rc = spell_correct(d, q, strlen(q), &so, &r, &eb);
        if (rc) {
            fprintf(stderr, "funnel spell check: %s\n", fn_errmsg(&eb, rc));
            status = OPS_EXIT_FAIL;
        } else {
            printf("%s\n", r.text);
            for (size_t i = 0; i < r.nfix; i++)
                printf("  %s -> %s (offset %zu, distance %d, score %.2f)\n", r.fix[i].from, r.fix[i].to,
                       r.fix[i].offset, r.fix[i].distance, r.fix[i].score);
            spell_result_free(&r);
        }
    }
    spell_dict_destroy(d);
    return status;
}

int ops_cmd_spell(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "build") == 0) return cmd_build(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "check") == 0) return cmd_check(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(spell_usage, stdout);
        return OPS_EXIT_OK;
    }
    fprintf(stderr, "funnel spell: build or check expected\n");
    fputs(spell_usage, stderr);
    return OPS_EXIT_USAGE;
}
