/* mkindex.c - test helper: build an index with idx_build (so the shard's
 * process tests do not depend on the funnel CLI).
 *   mkindex CORPUS.jsonl SHARDS OUTDIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builder.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: mkindex CORPUS.jsonl SHARDS OUTDIR\n");
        return 2;
    }
    idx_build_opts o;
    memset(&o, 0, sizeof o);
    o.input = argv[1];
    o.shards = (uint32_t)atoi(argv[2]);
    o.out_dir = argv[3];
    fn_errbuf eb = {{0}};
    idx_build_stats st;
    int rc = idx_build(&o, &st, &eb);
    if (rc) {
        fprintf(stderr, "mkindex: %s\n", fn_errmsg(&eb, rc));
        return 1;
    }
    printf("%llu docs in %u shards\n", (unsigned long long)st.docs, o.shards);
    return 0;
}
