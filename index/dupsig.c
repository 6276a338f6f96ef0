/* dupsig.c - near-duplicate signatures: b-bit MinHash over word unigrams and
 * bigrams (dupsig.h says why, docs/index-format.md what was measured). */
#include "dupsig.h"

#include <pthread.h>
#include <string.h>
#include <xxhash.h>

#define M1 0x9E3779B97F4A7C15ULL
#define M2 0xBF58476D1CE4E5B9ULL

/* One seed a slot, fixed: a signature must not change between builds. */
static uint64_t slot_seed[IDX_DUPSIG_SLOTS];
static pthread_once_t seeded = PTHREAD_ONCE_INIT;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += M1);
    z = (z ^ (z >> 30)) * M2;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void seed_slots(void)
{
    uint64_t s = 0xd0b5195eULL;
    for (int i = 0; i < IDX_DUPSIG_SLOTS; i++)
        slot_seed[i] = splitmix(&s);
}

static void add(uint64_t *mins, uint64_t h)
{
    for (int i = 0; i < IDX_DUPSIG_SLOTS; i++) {
        uint64_t x = (h ^ slot_seed[i]) * M1;
        x ^= x >> 29;
        if (x < mins[i]) mins[i] = x;
    }
}

static int is_wc(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* The words of s[0..n) into the shingles: each word, and each word with the
 * one before it (*prev, 0 before the first word). */
static size_t words(uint64_t *mins, const char *s, size_t n, uint64_t *prev)
{
    char w[IDX_DUPSIG_MAX_WORD];
    size_t i = 0, count = 0;
    for (;;) {
        while (i < n && !is_wc((unsigned char)s[i]))
            i++;
        if (i >= n) break;
        size_t len = 0;
        for (; i < n && is_wc((unsigned char)s[i]); i++) {
            char c = s[i];
            if (len < sizeof w) w[len++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
        uint64_t h = XXH3_64bits(w, len) | 1;          /* never 0: 0 means "no word before" */
        add(mins, h * M2);
        if (*prev) add(mins, (*prev * M1 + h) ^ 0x6b1a9ULL);
        *prev = h;
        count++;
    }
    return count;
}

void idx_dupsig(const char *title, size_t tlen, const char *body, size_t blen, uint8_t out[IDX_DUPSIG_BYTES])
{
    pthread_once(&seeded, seed_slots);
    uint64_t mins[IDX_DUPSIG_SLOTS];
    memset(mins, 0xff, sizeof mins);
    uint64_t prev = 0;
    size_t nw = 0;
    if (title) nw += words(mins, title, tlen < IDX_DUPSIG_MAX_TITLE ? tlen : IDX_DUPSIG_MAX_TITLE, &prev);
    if (body) nw += words(mins, body, blen < IDX_DUPSIG_MAX_BODY ? blen : IDX_DUPSIG_MAX_BODY, &prev);
    if (nw == 0) {
        memset(out, 0, IDX_DUPSIG_BYTES);
        return;
    }
    /* the stored byte: mixed bits of the minimum (its own high bits are small) */
    for (int i = 0; i < IDX_DUPSIG_SLOTS; i++)
        out[i] = (uint8_t)((mins[i] * M2) >> 56);
}

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Equal bytes of a and b over n bytes (n a multiple of 8). */
static int equal_bytes(const uint8_t *a, const uint8_t *b, size_t n)
{
    const uint64_t lo7 = 0x7F7F7F7F7F7F7F7FULL;
    int eq = 0;
    for (size_t k = 0; k < n; k += 8) {
        uint64_t x = load64(a + k) ^ load64(b + k);
        uint64_t y = ~(((x & lo7) + lo7) | x | lo7);    /* the high bit of each zero byte */
        eq += __builtin_popcountll(y);
    }
    return eq;
}

static int is_empty(const uint8_t *a)
{
    for (size_t k = 0; k < IDX_DUPSIG_BYTES; k++)
        if (a[k]) return 0;
    return 1;
}

static double estimate(int eq)
{
    double m = (double)eq / IDX_DUPSIG_SLOTS, c = 1.0 / 256;
    double j = (m - c) / (1 - c);
    return j < 0 ? 0 : j;
}

double idx_dupsig_similarity(const uint8_t *a, const uint8_t *b)
{
    if (is_empty(a) || is_empty(b)) return 0;
    return estimate(equal_bytes(a, b, IDX_DUPSIG_BYTES));
}

int idx_dupsig_near(const uint8_t *a, const uint8_t *b, double *similarity)
{
    if (similarity) *similarity = 0;
    int pre = equal_bytes(a, b, IDX_DUPSIG_PREFIX);
    if (pre < IDX_DUPSIG_PREFIX_MIN) return 0;
    double j = estimate(pre + equal_bytes(a + IDX_DUPSIG_PREFIX, b + IDX_DUPSIG_PREFIX,
                                          IDX_DUPSIG_BYTES - IDX_DUPSIG_PREFIX));
    if (j < IDX_DUPSIG_NEAR || is_empty(a) || is_empty(b)) {
        if (similarity && j < IDX_DUPSIG_NEAR) *similarity = j;
        return 0;
    }
    if (similarity) *similarity = j;
    return 1;
}
