/* qparse_bench.c - what the query-language parser costs a query: every line
 * of a queries.tsv (or the built-in three) parsed N times (default 100000),
 * the arena reset between parses as a server does; prints the mean time per
 * parse and whether the query keeps the bag-of-words fast path.
 *   qparse_bench [--n N] [queries.tsv]
 * A tool, not a test (docs/query-language.md "On the shard"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fn_arena.h"
#include "parse.h"

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static void bench(const char *q, long n, double *sum, long *count)
{
    fn_arena a;
    fn_arena_init(&a);
    fn_qparse_opts o;
    fn_qparse_defaults(&o);
    int bag = 0, am, rc = 0;
    double t0 = now_us();
    for (long k = 0; k < n; k++) {
        fn_arena_reset(&a);
        fn_qnode *t;
        fn_errbuf eb;
        rc = fn_qparse(q, strlen(q), &o, &a, &t, &eb);
        bag = !rc && fn_qtree_is_bag(t, &am);
    }
    double us = (now_us() - t0) / (double)n;
    printf("%8.3f us  %-5s %s\n", us, rc ? "error" : bag ? "bag" : "tree", q);
    *sum += us;
    (*count)++;
    fn_arena_free(&a);
}

int main(int argc, char **argv)
{
    long n = 100000;
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "--n") == 0) {
        n = atol(argv[i + 1]);
        i += 2;
    }
    if (n <= 0) {
        fprintf(stderr, "usage: qparse_bench [--n N] [queries.tsv]\n");
        return 2;
    }
    double sum = 0;
    long count = 0;
    if (i < argc) {
        FILE *f = fopen(argv[i], "r");
        if (!f) {
            perror(argv[i]);
            return 1;
        }
        char line[8192];
        while (fgets(line, sizeof line, f)) {
            char *tab = strchr(line, '\t');
            if (!tab) continue;
            char *q = tab + 1, *e = strpbrk(q, "\t\r\n");
            if (e) *e = '\0';
            bench(q, n, &sum, &count);
        }
        fclose(f);
    } else {
        const char *qs[] = { "boundary layer transition at high mach numbers",
                             "\"heat transfer\" AND NOT laminar title:shock",
                             "+(supersonic OR hypersonic) -\"wind tunnel\" body:(flutter wing)" };
        for (size_t k = 0; k < sizeof qs / sizeof *qs; k++) bench(qs[k], n, &sum, &count);
    }
    printf("mean %.3f us over %ld queries\n", count ? sum / (double)count : 0.0, count);
    return 0;
}
