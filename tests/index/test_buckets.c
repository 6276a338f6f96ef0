/* test_buckets.c - index/buckets.c: default maps, the text form, add-shard moves. */
#include <criterion/criterion.h>
#include <string.h>

#include "buckets.h"

static void counts(const idx_bucket_map *m, uint32_t *c)
{
    memset(c, 0, IDX_MAX_SHARDS * sizeof *c);
    for (uint32_t b = 0; b < IDX_BUCKETS; b++) c[m->shard[b]]++;
}

Test(buckets, default_map_is_contiguous_and_even)
{
    static idx_bucket_map m;
    static uint32_t c[IDX_MAX_SHARDS];
    for (uint32_t n = 1; n <= 7; n++) {
        idx_buckets_default(&m, n);
        cr_assert_eq(m.shards, n);
        for (uint32_t b = 1; b < IDX_BUCKETS; b++) cr_assert(m.shard[b] >= m.shard[b - 1], "not contiguous");
        counts(&m, c);
        for (uint32_t s = 0; s < n; s++)   /* 4096 / n rounded either way */
            cr_assert(c[s] == IDX_BUCKETS / n || c[s] == IDX_BUCKETS / n + 1, "n %u shard %u: %u", n, s, c[s]);
    }
    idx_buckets_default(&m, 3);   /* by hand: 4096 * s / 3 boundaries 1366 and 2731 */
    cr_assert_eq(m.shard[1365], 0);
    cr_assert_eq(m.shard[1366], 1);
    cr_assert_eq(m.shard[2730], 1);
    cr_assert_eq(m.shard[2731], 2);
}

Test(buckets, text_round_trip)
{
    static idx_bucket_map m, back;
    static char txt[IDX_BUCKETS_TEXT_MAX];
    fn_errbuf eb;
    idx_buckets_default(&m, 3);
    cr_assert_eq(idx_buckets_format(&m, txt, sizeof txt), 0);
    cr_assert_str_eq(txt, "0-1365:0,1366-2730:1,2731-4095:2");
    cr_assert_eq(idx_buckets_parse(txt, &back, &eb), 0, "%s", eb.msg);
    cr_assert_eq(back.shards, 3);
    cr_assert(memcmp(back.shard, m.shard, sizeof m.shard) == 0);
    /* every bucket its own range: the longest text fits */
    for (uint32_t b = 0; b < IDX_BUCKETS; b++) m.shard[b] = (uint16_t)(b % 2 ? 4095 - b / 2 : b / 2);
    m.shards = IDX_BUCKETS;
    cr_assert_eq(idx_buckets_format(&m, txt, sizeof txt), 0);
    cr_assert_eq(idx_buckets_parse(txt, &back, &eb), 0, "%s", eb.msg);
    cr_assert(memcmp(back.shard, m.shard, sizeof m.shard) == 0);
    cr_assert_eq(idx_buckets_format(&m, txt, 100), FN_ELIMIT);
}

Test(buckets, parse_refuses_bad_maps)
{
    static idx_bucket_map m;
    fn_errbuf eb;
    const char *bad[] = { "", "0-4095", "0-100:0,102-4095:1", "0-100:0,100-4095:1", "0-4095:1", "0-4096:0",
                          "0-4095:0,", "0-4095:0x", "5-4095:0", "0-2000:0;2001-4095:1", "-1:0", "0-4095:4096" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(idx_buckets_parse(bad[i], &m, &eb), FN_EPARSE, "accepted '%s'", bad[i]);
    cr_assert_eq(idx_buckets_parse("0-100:0,101-4095:1", &m, &eb), 0, "%s", eb.msg);
    cr_assert_eq(m.shards, 2);
    cr_assert_eq(idx_buckets_parse("0-4095:1,", &m, &eb), FN_EPARSE);
}

Test(buckets, add_shard_moves_a_fair_share_and_nothing_else)
{
    static idx_bucket_map a, b;
    static uint32_t c[IDX_MAX_SHARDS];
    uint32_t moved;
    idx_buckets_default(&a, 3);
    cr_assert_eq(idx_buckets_add_shard(&a, &b, &moved), 0);
    cr_assert_eq(b.shards, 4);
    cr_assert_eq(moved, IDX_BUCKETS / 4);   /* 1024: the least any 4-shard map must move */
    counts(&b, c);
    for (uint32_t s = 0; s < 4; s++) cr_assert(c[s] == 1024 || c[s] == 1023 || c[s] == 1025, "shard %u: %u", s, c[s]);
    uint32_t changed = 0;
    for (uint32_t k = 0; k < IDX_BUCKETS; k++) {
        if (a.shard[k] != b.shard[k]) {
            changed++;
            cr_assert_eq(b.shard[k], 3, "bucket %u moved to %u, not to the new shard", k, b.shard[k]);
        }
    }
    cr_assert_eq(changed, moved);
    /* and again: 4 -> 5 */
    cr_assert_eq(idx_buckets_add_shard(&b, &a, &moved), 0);
    cr_assert_eq(moved, IDX_BUCKETS / 5);
    counts(&a, c);
    for (uint32_t s = 0; s < 5; s++) cr_assert(c[s] >= 818 && c[s] <= 820, "shard %u: %u", s, c[s]);
}
