/* test_codec.c - every registered postings codec round-trips, respects
 * max_bytes, and refuses truncated or corrupt input without over-reading. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "codec.h"
#include "codec_simd.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t next_u32(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;   /* xorshift64 */
    return (uint32_t)(rng >> 32);
}

/* Values of every magnitude: small gaps, byte boundaries, up to UINT32_MAX. */
static uint32_t sample(void)
{
    static const uint32_t edges[] = { 0, 1, 127, 128, 16383, 16384, 2097151, 2097152,
                                      268435455, 268435456, UINT32_MAX - 1, UINT32_MAX };
    uint32_t r = next_u32();
    switch (r % 4) {
    case 0: return edges[next_u32() % (sizeof edges / sizeof edges[0])];
    case 1: return next_u32() % 128;
    case 2: return next_u32() >> (next_u32() % 32);
    default: return next_u32();
    }
}

Test(codec, registry)
{
    const idx_codec_t *const *all = idx_codec_all();
    cr_assert_not_null(all[0]);
    cr_assert_eq(idx_codec_find("varint"), idx_codec_find("varint"));
    cr_assert_not_null(idx_codec_find("varint"));
    cr_assert_str_eq(idx_codec_find("varint")->name, "varint");
    cr_assert_null(idx_codec_find("nope"));
    cr_assert_null(idx_codec_find(NULL));
    for (size_t i = 0; all[i]; i++)
        cr_assert_eq(idx_codec_find(all[i]->name), all[i]);
}

Test(codec, roundtrip_all)
{
    uint32_t in[IDX_BLOCK_SIZE], out[IDX_BLOCK_SIZE];
    for (const idx_codec_t *const *c = idx_codec_all(); *c; c++) {
        const idx_codec_t *k = *c;
        for (size_t n = 0; n <= IDX_BLOCK_SIZE; n++) {
            for (int round = 0; round < 20; round++) {
                for (size_t i = 0; i < n; i++) in[i] = sample();
                if (round == 0) for (size_t i = 0; i < n; i++) in[i] = UINT32_MAX;
                size_t cap = k->max_bytes(n);
                /* Exactly cap bytes on the heap so ASan catches an overrun. */
                uint8_t *buf = malloc(cap ? cap : 1);
                cr_assert_not_null(buf);
                size_t w = k->encode(in, n, buf);
                cr_assert_leq(w, cap, "%s n=%zu wrote %zu > max %zu", k->name, n, w, cap);
                uint8_t *exact = malloc(w ? w : 1);
                memcpy(exact, buf, w);
                memset(out, 0xAB, sizeof out);
                size_t r = k->decode(exact, w, n, out);
                cr_assert_eq(r, w, "%s n=%zu consumed %zu of %zu", k->name, n, r, w);
                cr_assert_arr_eq(in, out, n * sizeof in[0], "%s n=%zu", k->name, n);
                /* Truncated by any amount: 0, and no read past avail. */
                if (n > 0) {
                    for (size_t cut = 0; cut < w; cut += 1 + cut / 4) {
                        uint8_t *t = malloc(cut ? cut : 1);
                        memcpy(t, exact, cut);
                        cr_assert_eq(k->decode(t, cut, n, out), 0,
                                     "%s n=%zu truncated to %zu", k->name, n, cut);
                        free(t);
                    }
                }
                free(exact);
                free(buf);
            }
        }
    }
}

Test(codec, concatenated_arrays)
{
    /* Posting blocks are several arrays back to back: decode must stop at
     * the end of its own array. */
    uint32_t a[50], b[70], out[IDX_BLOCK_SIZE];
    for (const idx_codec_t *const *c = idx_codec_all(); *c; c++) {
        const idx_codec_t *k = *c;
        for (size_t i = 0; i < 50; i++) a[i] = sample();
        for (size_t i = 0; i < 70; i++) b[i] = sample();
        uint8_t *buf = malloc(k->max_bytes(50) + k->max_bytes(70));
        size_t wa = k->encode(a, 50, buf);
        size_t wb = k->encode(b, 70, buf + wa);
        size_t ra = k->decode(buf, wa + wb, 50, out);
        cr_assert_eq(ra, wa);
        cr_assert_arr_eq(a, out, sizeof a);
        size_t rb = k->decode(buf + ra, wa + wb - ra, 70, out);
        cr_assert_eq(rb, wb);
        cr_assert_arr_eq(b, out, sizeof b);
        free(buf);
    }
}

Test(codec, varint_bytes_and_corruption)
{
    const idx_codec_t *k = idx_codec_find("varint");
    uint8_t buf[16];
    uint32_t v = 300, out[2];
    cr_assert_eq(k->encode(&v, 1, buf), 2);
    cr_assert_eq(buf[0], 0xAC);
    cr_assert_eq(buf[1], 0x02);
    v = UINT32_MAX;
    cr_assert_eq(k->encode(&v, 1, buf), 5);
    cr_assert_eq(buf[4], 0x0F);
    /* A fifth byte with more than 4 payload bits, or a sixth byte: corrupt. */
    const uint8_t over[] = { 0xFF, 0xFF, 0xFF, 0xFF, 0x1F };
    cr_assert_eq(k->decode(over, sizeof over, 1, out), 0);
    const uint8_t six[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 };
    cr_assert_eq(k->decode(six, sizeof six, 1, out), 0);
    /* Non-canonical but in range (0 padded to 5 bytes) still decodes. */
    const uint8_t pad[] = { 0x81, 0x80, 0x80, 0x80, 0x00 };
    cr_assert_eq(k->decode(pad, sizeof pad, 1, out), 5);
    cr_assert_eq(out[0], 1);
}

/* Runs of one-byte values (the usual term frequencies and gaps) between
 * longer ones, at every alignment: the decoder's eight-at-a-time path and
 * its way back to the byte-at-a-time one, round trips and truncations. */
Test(codec, runs_of_small_values)
{
    uint32_t in[IDX_BLOCK_SIZE], out[IDX_BLOCK_SIZE];
    for (const idx_codec_t *const *c = idx_codec_all(); *c; c++) {
        const idx_codec_t *k = *c;
        for (size_t n = 1; n <= IDX_BLOCK_SIZE; n++) {
            for (int round = 0; round < 30; round++) {
                for (size_t i = 0; i < n; i++) {
                    uint32_t r = next_u32();
                    in[i] = r % (3 + (size_t)round) == 0 ? sample() : r % 128;
                }
                size_t cap = k->max_bytes(n);
                uint8_t *buf = malloc(cap);
                cr_assert_not_null(buf);
                size_t w = k->encode(in, n, buf);
                uint8_t *exact = malloc(w);
                memcpy(exact, buf, w);
                memset(out, 0xAB, sizeof out);
                cr_assert_eq(k->decode(exact, w, n, out), w, "%s n=%zu round %d", k->name, n, round);
                cr_assert_arr_eq(in, out, n * sizeof in[0], "%s n=%zu round %d", k->name, n, round);
                for (size_t cut = 0; cut < w; cut += 1 + cut / 8) {
                    uint8_t *t = malloc(cut ? cut : 1);
                    memcpy(t, exact, cut);
                    cr_assert_eq(k->decode(t, cut, n, out), 0, "%s n=%zu cut %zu", k->name, n, cut);
                    free(t);
                }
                free(exact);
                free(buf);
            }
        }
    }
}

/* ---- no read past avail: the bytes end where a PROT_NONE page begins ---- */

/* Two pages, the second PROT_NONE: guard_at(g, len) is where len bytes
 * must start so that their last byte is the last readable one. */
typedef struct guard { uint8_t *base; size_t page; } guard;

static guard guard_new(void)
{
    guard g;
    g.page = (size_t)sysconf(_SC_PAGESIZE);
    g.base = mmap(NULL, 2 * g.page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(g.base, MAP_FAILED);
    cr_assert_eq(mprotect(g.base + g.page, g.page, PROT_NONE), 0);
    return g;
}

static uint8_t *guard_at(guard g, const uint8_t *src, size_t len)
{
    cr_assert_leq(len, g.page);
    uint8_t *p = g.base + g.page - len;
    memcpy(p, src, len);
    return p;
}

static void guard_free(guard g) { munmap(g.base, 2 * g.page); }

/* Every codec, every n, every length of the encoding from 0 to all of it,
 * and the whole encoding with 0..20 bytes after it (streamvbyte's in-place
 * and padded-copy paths): truncated gives 0, whole gives the values, and
 * nothing reads into the guard page. */
Test(codec, truncation_and_no_overread_at_page_end)
{
    guard g = guard_new();
    uint32_t in[IDX_BLOCK_SIZE], out[IDX_BLOCK_SIZE];
    uint8_t enc[4096];
    for (const idx_codec_t *const *c = idx_codec_all(); *c; c++) {
        const idx_codec_t *k = *c;
        for (size_t n = 1; n <= IDX_BLOCK_SIZE; n++) {
            for (int round = 0; round < 4; round++) {
                for (size_t i = 0; i < n; i++)
                    in[i] = round == 0 ? next_u32() % 128 : round == 1 ? UINT32_MAX : sample();
                cr_assert_leq(k->max_bytes(n), sizeof enc);
                size_t w = k->encode(in, n, enc);
                for (size_t cut = 0; cut < w; cut++)
                    cr_assert_eq(k->decode(guard_at(g, enc, cut), cut, n, out), 0,
                                 "%s n=%zu round %d cut %zu of %zu", k->name, n, round, cut, w);
                for (size_t extra = 0; extra <= 20; extra++) {
                    memset(enc + w, 0xFF, extra);   /* the next array's bytes */
                    memset(out, 0xAB, sizeof out);
                    cr_assert_eq(k->decode(guard_at(g, enc, w + extra), w + extra, n, out), w,
                                 "%s n=%zu round %d extra %zu", k->name, n, round, extra);
                    cr_assert_arr_eq(in, out, n * sizeof in[0], "%s n=%zu extra %zu", k->name, n, extra);
                }
            }
        }
    }
    guard_free(g);
}

/* Random bytes (a damaged value) at the page end: any answer but a crash,
 * and a nonzero one within avail. */
Test(codec, garbage_at_page_end)
{
    guard g = guard_new();
    uint8_t junk[1024];
    uint32_t out[IDX_BLOCK_SIZE];
    for (const idx_codec_t *const *c = idx_codec_all(); *c; c++) {
        const idx_codec_t *k = *c;
        for (int round = 0; round < 20000; round++) {
            size_t len = next_u32() % sizeof junk, n = 1 + next_u32() % IDX_BLOCK_SIZE;
            for (size_t i = 0; i < len; i++) junk[i] = (uint8_t)next_u32();
            size_t r = k->decode(guard_at(g, junk, len), len, n, out);
            cr_assert_leq(r, len, "%s n=%zu len=%zu consumed %zu", k->name, n, len, r);
        }
    }
    guard_free(g);
}

Test(codec, streamvbyte_bytes_and_corruption)
{
    const idx_codec_t *k = idx_codec_find("streamvbyte");
    cr_assert_not_null(k);
    cr_assert_neq(idx_codec_all()[0], k, "varint stays the default");
    uint8_t buf[64];
    uint32_t out[IDX_BLOCK_SIZE];
    /* 1, 2, 3 and 4 data bytes: codes 0,1,2,3 from the low bits. */
    const uint32_t v[5] = { 1, 300, 70000, 0x01000000, 5 };
    cr_assert_leq(k->max_bytes(5), sizeof buf);
    size_t w = k->encode(v, 5, buf);
    const uint8_t want[] = { 0xE4, 0x00, 0x01, 0x2C, 0x01, 0x70, 0x11, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05 };
    cr_assert_eq(w, sizeof want);
    cr_assert_arr_eq(buf, want, sizeof want);
    cr_assert_eq(k->decode(want, sizeof want, 5, out), sizeof want);
    cr_assert_arr_eq(out, v, sizeof v);
    /* A code set for a value past n in the last control byte: corrupt. */
    uint8_t bad[sizeof want];
    memcpy(bad, want, sizeof want);
    bad[1] = 0x04;
    cr_assert_eq(k->decode(bad, sizeof bad, 5, out), 0);
    /* Control bytes that claim more data than there is: 0. */
    const uint8_t big[] = { 0xFF, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
    cr_assert_eq(k->decode(big, sizeof big, 4, out), 0);
    cr_assert_eq(k->decode(big, sizeof big, 3, out), 0);   /* code 3 past n=3 */
    /* More than a block: refused, not decoded into a short stack copy. */
    cr_assert_eq(k->decode(want, sizeof want, IDX_BLOCK_SIZE + 1, out), 0);
    /* The bound holds for the largest values. */
    for (size_t n = 0; n <= IDX_BLOCK_SIZE; n++)
        cr_assert_geq(k->max_bytes(n), (n + 3) / 4 + 4 * n);
}

Test(codec, bp128_bytes_and_corruption)
{
    const idx_codec_t *k = idx_codec_find("bp128");
    cr_assert_not_null(k);
    cr_assert_eq(idx_codec_all()[0], k, "bp128 is the default");
    uint8_t buf[1024];
    uint32_t out[IDX_BLOCK_SIZE + 1];
    /* b = 3; values 1..4 one per lane in one row; 5, 6 in the tail byte. */
    const uint32_t v6[6] = { 1, 2, 3, 4, 5, 6 };
    const uint8_t want6[] = { 3, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5 | 6 << 3 };
    cr_assert_eq(k->encode(v6, 6, buf), sizeof want6);
    cr_assert_arr_eq(buf, want6, sizeof want6);
    cr_assert_eq(k->decode(want6, sizeof want6, 6, out), sizeof want6);
    cr_assert_arr_eq(out, v6, sizeof v6);
    /* Two fields a lane: lane l holds l and l + 4. */
    const uint32_t v8[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
    const uint8_t want8[] = { 3, 0x20, 0, 0, 0, 0x29, 0, 0, 0, 0x32, 0, 0, 0, 0x3B, 0, 0, 0 };
    cr_assert_eq(k->encode(v8, 8, buf), sizeof want8);
    cr_assert_arr_eq(buf, want8, sizeof want8);
    /* Fewer than four: tail only; all zero: the header alone. */
    const uint32_t v3[3] = { 0x7F, 0, 0x41 };
    const uint8_t want3[] = { 7, 0x7F, 0x40, 0x10 };   /* 0x7F | 0 << 7 | 0x41 << 14 */
    cr_assert_eq(k->encode(v3, 3, buf), sizeof want3);
    cr_assert_arr_eq(buf, want3, sizeof want3);
    const uint32_t zeros[IDX_BLOCK_SIZE] = { 0 };
    cr_assert_eq(k->encode(zeros, IDX_BLOCK_SIZE, buf), 1);
    cr_assert_eq(buf[0], 0);
    memset(out, 0xAB, sizeof out);
    cr_assert_eq(k->decode(buf, 1, IDX_BLOCK_SIZE, out), 1);
    cr_assert_arr_eq(out, zeros, sizeof zeros);
    /* A full block is 1 + 16*b bytes. */
    uint32_t ones[IDX_BLOCK_SIZE];
    for (size_t i = 0; i < IDX_BLOCK_SIZE; i++) ones[i] = 1;
    cr_assert_eq(k->encode(ones, IDX_BLOCK_SIZE, buf), 17);
    for (size_t i = 1; i < 17; i++) cr_assert_eq(buf[i], 0xFF);
    ones[77] = 1u << 20;
    cr_assert_eq(k->encode(ones, IDX_BLOCK_SIZE, buf), 1 + 16 * 21);
    /* b > 32 and n over a block: refused. */
    uint8_t bad[sizeof want6];
    memcpy(bad, want6, sizeof want6);
    bad[0] = 33;
    cr_assert_eq(k->decode(bad, sizeof bad, 6, out), 0);
    bad[0] = 0xFF;
    cr_assert_eq(k->decode(bad, sizeof bad, 6, out), 0);
    memset(buf, 0, sizeof buf);
    cr_assert_eq(k->decode(buf, sizeof buf, IDX_BLOCK_SIZE + 1, out), 0);
    cr_assert_eq(k->decode(buf, sizeof buf, 0, out), 0);
    /* A wider b than the values need still decodes (the size follows b). */
    memset(buf, 0, sizeof buf);
    buf[0] = 32;
    cr_assert_eq(k->decode(buf, 1 + 16 * 1 + 4 * 3, 7, out), 1 + 16 + 12);
    cr_assert_eq(k->decode(buf, 1 + 16 * 1 + 4 * 3 - 1, 7, out), 0);
    /* max_bytes is exact for b = 32. */
    for (size_t n = 0; n <= IDX_BLOCK_SIZE; n++) {
        uint32_t big[IDX_BLOCK_SIZE];
        for (size_t i = 0; i < n; i++) big[i] = UINT32_MAX - (uint32_t)i;
        cr_assert_eq(k->max_bytes(n), n ? 1 + 4 * n : 0);
        cr_assert_eq(k->encode(big, n, buf), k->max_bytes(n));
    }
}

/* ---- every decoder path of the SIMD codecs gives the scalar's answer ---- */

typedef size_t path_decode_fn(int path, const uint8_t *in, size_t avail, size_t n, uint32_t *out);

typedef struct path_codec {
    const char *name;
    path_decode_fn *decode;
    int paths[IDX_NPATHS];   /* the paths it has, the first scalar; -1 ends */
} path_codec;

static const path_codec path_codecs[] = {
    { "bp128", idx_bp128_decode_path, { IDX_PATH_SCALAR, IDX_PATH_SSE2, -1 } },
    { "streamvbyte", idx_svb_decode_path, { IDX_PATH_SCALAR, IDX_PATH_SSSE3, -1 } },
};
#define NPATH_CODECS (sizeof path_codecs / sizeof path_codecs[0])

/* Whether path p (one of the codec's) runs here: the SIMD ones on x86-64
 * CPUs that have them. */
static int path_runs(int p)
{
#if !(defined(__x86_64__) && defined(__GNUC__))
    if (p != IDX_PATH_SCALAR) return 0;
#endif
    return idx_codec_path_ok(p);
}

/* Values whose largest bit width is about w: every b of bp128, and runs of
 * one size class for streamvbyte. */
static uint32_t value_of_width(unsigned w)
{
    if (w == 0) return 0;
    uint32_t v = next_u32();
    uint32_t mask = w >= 32 ? UINT32_MAX : (1u << w) - 1;
    switch (next_u32() % 4) {
    case 0: return mask;
    case 1: return v & (mask >> (next_u32() % w));
    default: return v & mask;
    }
}

Test(codec, simd_paths_match_scalar)
{
    uint32_t in[IDX_BLOCK_SIZE], want[IDX_BLOCK_SIZE], got[IDX_BLOCK_SIZE];
    uint8_t enc[1024];
    int tried = 0;
    for (size_t ci = 0; ci < NPATH_CODECS; ci++) {
        const path_codec *pc = &path_codecs[ci];
        const idx_codec_t *k = idx_codec_find(pc->name);
        cr_assert_not_null(k);
        /* The default decode uses a path the machine has, and agrees. */
        int def = strcmp(pc->name, "bp128") == 0 ? idx_bp128_path() : idx_svb_path();
        cr_assert(idx_codec_path_ok(def), "%s: default path %s", pc->name, idx_codec_path_name(def));
        for (size_t n = 1; n <= IDX_BLOCK_SIZE; n++) {
            for (unsigned w = 0; w <= 32; w++) {
                for (int round = 0; round < 3; round++) {
                    for (size_t i = 0; i < n; i++) in[i] = value_of_width(w);
                    if (round == 2) in[next_u32() % n] = w ? (w >= 32 ? UINT32_MAX : (1u << w) - 1) : 0;
                    size_t len = k->encode(in, n, enc);
                    memset(want, 0xAB, sizeof want);
                    cr_assert_eq(pc->decode(IDX_PATH_SCALAR, enc, len, n, want), len, "%s n=%zu w=%u",
                                 pc->name, n, w);
                    cr_assert_arr_eq(want, in, n * sizeof in[0]);
                    memset(got, 0xCD, sizeof got);
                    cr_assert_eq(k->decode(enc, len, n, got), len);
                    cr_assert_arr_eq(got, in, n * sizeof in[0]);
                    for (const int *p = pc->paths + 1; *p >= 0; p++) {
                        if (!path_runs(*p)) continue;
                        tried++;
                        memset(got, 0xCD, sizeof got);
                        cr_assert_eq(pc->decode(*p, enc, len, n, got), len, "%s %s n=%zu w=%u", pc->name,
                                     idx_codec_path_name(*p), n, w);
                        cr_assert_arr_eq(got, in, n * sizeof in[0], "%s %s n=%zu w=%u round %d", pc->name,
                                         idx_codec_path_name(*p), n, w, round);
                        /* Nothing written past n. */
                        for (size_t i = n; i < IDX_BLOCK_SIZE; i++)
                            cr_assert_eq(got[i], 0xCDCDCDCDu, "%s %s n=%zu wrote out[%zu]", pc->name,
                                         idx_codec_path_name(*p), n, i);
                    }
                }
            }
        }
    }
#if defined(__x86_64__) && defined(__GNUC__)
    cr_assert_gt(tried, 0, "no SIMD path ran on x86-64");
#endif
}

/* Random bytes: every path gives the scalar's byte count, and its values
 * when it decodes them. */
Test(codec, simd_paths_match_scalar_on_garbage)
{
    guard g = guard_new();
    uint8_t junk[700];
    uint32_t want[IDX_BLOCK_SIZE], got[IDX_BLOCK_SIZE];
    for (size_t ci = 0; ci < NPATH_CODECS; ci++) {
        const path_codec *pc = &path_codecs[ci];
        for (int round = 0; round < 50000; round++) {
            size_t len = next_u32() % sizeof junk, n = 1 + next_u32() % IDX_BLOCK_SIZE;
            for (size_t i = 0; i < len; i++) junk[i] = (uint8_t)next_u32();
            /* mostly plausible headers: bp128 widths, small control codes */
            if (len && round % 2) junk[0] = (uint8_t)(next_u32() % 34);
            if (round % 3 == 0) for (size_t i = 0; i < len && i < 32; i++) junk[i] &= 0x55;
            const uint8_t *at = guard_at(g, junk, len);
            size_t r = pc->decode(IDX_PATH_SCALAR, at, len, n, want);
            cr_assert_leq(r, len);
            for (const int *p = pc->paths + 1; *p >= 0; p++) {
                if (!path_runs(*p)) continue;
                cr_assert_eq(pc->decode(*p, at, len, n, got), r, "%s %s n=%zu len=%zu", pc->name,
                             idx_codec_path_name(*p), n, len);
                if (r) cr_assert_arr_eq(got, want, n * sizeof got[0]);
            }
        }
    }
    guard_free(g);
}

/* The page-end test above for every path, not only the default one. */
Test(codec, simd_paths_no_overread_at_page_end)
{
    guard g = guard_new();
    uint32_t in[IDX_BLOCK_SIZE], out[IDX_BLOCK_SIZE];
    uint8_t enc[4096];
    for (size_t ci = 0; ci < NPATH_CODECS; ci++) {
        const path_codec *pc = &path_codecs[ci];
        const idx_codec_t *k = idx_codec_find(pc->name);
        for (const int *p = pc->paths; *p >= 0; p++) {
            if (!path_runs(*p)) continue;
            for (size_t n = 1; n <= IDX_BLOCK_SIZE; n++) {
                for (int round = 0; round < 3; round++) {
                    unsigned w = round == 0 ? 1 + next_u32() % 8 : round == 1 ? 32 : next_u32() % 33;
                    for (size_t i = 0; i < n; i++) in[i] = value_of_width(w);
                    size_t len = k->encode(in, n, enc);
                    for (size_t cut = 0; cut < len; cut++)
                        cr_assert_eq(pc->decode(*p, guard_at(g, enc, cut), cut, n, out), 0,
                                     "%s %s n=%zu cut %zu of %zu", pc->name, idx_codec_path_name(*p), n, cut, len);
                    for (size_t extra = 0; extra <= 20; extra++) {
                        memset(enc + len, 0xFF, extra);
                        memset(out, 0xAB, sizeof out);
                        cr_assert_eq(pc->decode(*p, guard_at(g, enc, len + extra), len + extra, n, out), len);
                        cr_assert_arr_eq(in, out, n * sizeof in[0], "%s %s n=%zu extra %zu", pc->name,
                                         idx_codec_path_name(*p), n, extra);
                    }
                }
            }
        }
    }
    guard_free(g);
}

/* FUNNEL_CODEC_SCALAR=1 before the first decode: the scalar paths.
 * (Criterion runs every test in its own process.) */
Test(codec, scalar_forced_by_environment)
{
    cr_assert_eq(setenv("FUNNEL_CODEC_SCALAR", "1", 1), 0);
    cr_assert(idx_codec_scalar_forced());
    cr_assert_eq(idx_bp128_path(), IDX_PATH_SCALAR);
    cr_assert_eq(idx_svb_path(), IDX_PATH_SCALAR);
    const idx_codec_t *k = idx_codec_find("bp128");
    uint32_t in[IDX_BLOCK_SIZE], out[IDX_BLOCK_SIZE];
    uint8_t enc[1024];
    for (size_t i = 0; i < IDX_BLOCK_SIZE; i++) in[i] = next_u32() >> 9;
    size_t len = k->encode(in, IDX_BLOCK_SIZE, enc);
    cr_assert_eq(k->decode(enc, len, IDX_BLOCK_SIZE, out), len);
    cr_assert_arr_eq(in, out, sizeof in);
}
