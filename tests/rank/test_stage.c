/* test_stage.c - the stage driver's order (rank/stage.c): a stage sorts only
 * as far as the entries it keeps, and what it keeps is exactly what a full,
 * stable sort by (score desc, NaN last, key asc) would have put first. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "stage.h"

typedef struct ref { double score; uint64_t key; uint32_t item, pos; } ref;

static int ref_cmp(const void *a, const void *b)
{
    const ref *x = a, *y = b;
    int xn = isnan(x->score), yn = isnan(y->score);
    if (xn != yn) return xn - yn;
    if (!xn && x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;   /* stable */
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* n entries whose scores and keys repeat a lot (ties everywhere), some NaN. */
static void random_list(uint64_t *seed, size_t n, double *score, uint64_t *key, uint32_t *item, float *rows)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rnd(seed);
        score[i] = r % 11 == 0 ? NAN : (double)(r % 7) - 3.0;
        key[i] = rnd(seed) % 5;
        item[i] = (uint32_t)i;
        if (rows) rows[i] = (float)score[i];
    }
}

Test(stage, list_sort_is_the_stable_full_sort)
{
    uint64_t seed = 88172645463325252ull;
    for (size_t n = 0; n < 300; n += 1 + n / 4) {
        double score[300];
        uint64_t key[300];
        uint32_t item[300];
        random_list(&seed, n, score, key, item, NULL);
        ref want[300];
        for (size_t i = 0; i < n; i++) want[i] = (ref){ score[i], key[i], item[i], (uint32_t)i };
        qsort(want, n, sizeof *want, ref_cmp);
        rank_list l = { .n = n, .item = item, .key = key, .score = score };
        rank_list_sort(&l);
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(l.item[i], want[i].item, "n %zu position %zu", n, i);
            cr_assert(memcmp(&l.score[i], &want[i].score, sizeof(double)) == 0);
            cr_assert_eq(l.key[i], want[i].key);
        }
    }
}

/* A model that scores its one column exactly (0 trees, weight 1), so the
 * stage's order is the column's. */
static rank_ranker *column_ranker(void)
{
    rank_model_t *m;
    cr_assert_eq(rank_model_new(RANK_MODEL_TREES, "lambdarank", 1, &m), 0);
    const char *names[1] = { "s" };
    cr_assert_eq(rank_model_set_feature_names(m, names, 1), 0);
    double w[1] = { 1 };
    cr_assert_eq(rank_model_set_linear_part(m, w), 0);
    cr_assert_eq(rank_model_finalize(m), 0);
    const char *cols[2] = { "other", "s" };
    rank_ranker *r;
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_ranker_new(m, "col", cols, NULL, 2, &r, &eb), 0, "%s", eb.msg);
    return r;
}

Test(stage, a_stage_keeps_what_a_full_sort_puts_first)
{
    rank_ranker *rk = column_ranker();
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    enum { MAX = 700 };
    static double score[MAX];
    static uint64_t key[MAX];
    static uint32_t item[MAX];
    static float rows[MAX * 2];
    static float col[MAX];
    static ref want[MAX];
    for (size_t n = 1; n <= MAX; n += 1 + n / 3) {
        size_t keeps[] = { 0, 1, 2, 5, 16, 17, n / 3, n / 2, n - 1, n, n + 4 };
        for (size_t j = 0; j < sizeof keeps / sizeof keeps[0]; j++) {
            for (int shuffled = 0; shuffled < 2; shuffled++) {
                random_list(&seed, n, score, key, item, col);
                /* rows by item: column 1 is the score (the model's "s"),
                 * NaN read as 0 by the linear part */
                for (size_t i = 0; i < n; i++) {
                    rows[2 * i] = 99;
                    rows[2 * i + 1] = col[i];
                }
                if (shuffled)
                    for (size_t i = n; i > 1; i--) {
                        size_t k = rnd(&seed) % i;
                        uint32_t t = item[i - 1]; item[i - 1] = item[k]; item[k] = t;
                        uint64_t u = key[i - 1]; key[i - 1] = key[k]; key[k] = u;
                    }
                for (size_t i = 0; i < n; i++) {
                    float v = rows[2 * item[i] + 1];
                    want[i] = (ref){ isnan(v) ? 0.0 : (double)v, key[i], item[i], (uint32_t)i };
                }
                qsort(want, n, sizeof *want, ref_cmp);
                rank_list l = { .n = n, .item = item, .key = key, .score = score, .rows = rows,
                                .stride = 2 };
                rank_stage_acct acct = { .name = "t" };
                cr_assert_eq(rank_stage_run(&l, rk, keeps[j], "selection", &acct), 0);
                size_t kept = keeps[j] < n ? keeps[j] : n;
                cr_assert_eq(l.n, kept);
                cr_assert_eq(acct.count_in, n);
                cr_assert_eq(acct.count_out, kept);
                cr_assert(acct.ran);
                for (size_t i = 0; i < kept; i++) {
                    cr_assert_eq(l.item[i], want[i].item, "n %zu keep %zu shuffled %d position %zu", n,
                                 keeps[j], shuffled, i);
                    cr_assert_eq(l.score[i], want[i].score);
                    cr_assert_eq(l.key[i], want[i].key);
                }
            }
        }
    }
    rank_ranker_unref(rk);
}
