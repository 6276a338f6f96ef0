/* damage.c - a tool for the integrity tests (built, not installed):
 *
 *   damage locate [--keys] SHARDDIR postings|terms|docs|source|ids|norms|meta
 *        one line per entry: "OFFSET LENGTH KEYHEX", where the value (or, with
 *        --keys, the key) lies in SHARDDIR/data.mdb
 *   damage flip FILE OFFSET [COUNT [MASK]]
 *        XOR COUNT bytes (default 1) at OFFSET with MASK (default 0xff); the
 *        file keeps its size (restore the mtime with `touch -r` if wanted)
 *   damage random FILE SEED COUNT [LO HI]
 *        XOR COUNT bytes at seeded random offsets in [LO, HI) (default the
 *        whole file) with random non-zero masks; prints the offsets
 *
 * Exit 0, 1 on failure, 2 on usage errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "damage.h"

static const char usage[] =
    "usage: damage locate [--keys] SHARDDIR postings|terms|docs|source|ids|norms|meta\n"
    "       damage flip FILE OFFSET [COUNT [MASK]]\n"
    "       damage random FILE SEED COUNT [LO HI]\n";

static int print_entry(void *ud, uint64_t off, uint64_t len, const void *key, size_t klen)
{
    (void)ud;
    printf("%llu %llu ", (unsigned long long)off, (unsigned long long)len);
    const unsigned char *k = key;
    for (size_t i = 0; i < klen; i++) printf("%02x", k[i]);
    putchar('\n');
    return 0;
}

static int num(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-') return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "locate") == 0) {
        int keys = strcmp(argv[2], "--keys") == 0;
        if (argc != 4 + keys) { fputs(usage, stderr); return 2; }
        char err[512];
        if (dmg_locate(argv[2 + keys], argv[3 + keys], keys, print_entry, NULL, err, sizeof err)) {
            fprintf(stderr, "damage: %s\n", err);
            return 1;
        }
        return 0;
    }
    if (argc >= 4 && argc <= 6 && strcmp(argv[1], "flip") == 0) {
        uint64_t off, count = 1, mask = 0xff;
        if (num(argv[3], &off) || (argc > 4 && num(argv[4], &count)) ||
            (argc > 5 && (num(argv[5], &mask) || mask == 0 || mask > 0xff))) {
            fputs(usage, stderr);
            return 2;
        }
        int rc = dmg_flip(argv[2], off, count, (uint8_t)mask);
        if (rc) { fprintf(stderr, "damage: %s: %s\n", argv[2], strerror(-rc)); return 1; }
        return 0;
    }
    if ((argc == 5 || argc == 7) && strcmp(argv[1], "random") == 0) {
        uint64_t seed, count, lo = 0, hi = 0;
        struct stat st;
        if (num(argv[3], &seed) || num(argv[4], &count) ||
            (argc == 7 && (num(argv[5], &lo) || num(argv[6], &hi)))) {
            fputs(usage, stderr);
            return 2;
        }
        if (argc == 5) {
            if (stat(argv[2], &st)) { fprintf(stderr, "damage: %s: %s\n", argv[2], strerror(errno)); return 1; }
            hi = (uint64_t)st.st_size;
        }
        uint64_t *offs = calloc(count ? count : 1, sizeof *offs);
        if (!offs) return 1;
        int rc = dmg_random(argv[2], seed, count, lo, hi, offs);
        if (rc) { fprintf(stderr, "damage: %s: %s\n", argv[2], strerror(-rc)); free(offs); return 1; }
        for (uint64_t i = 0; i < count; i++) printf("%llu\n", (unsigned long long)offs[i]);
        free(offs);
        return 0;
    }
    fputs(usage, stderr);
    return 2;
}
