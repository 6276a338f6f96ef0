/* test_model.c - model building, text format round trip, strict parsing with
 * FILE:LINE errors, and every scoring method against a reference traversal on
 * random trees (NaN included), from several threads at once; the CPU override
 * (FUNNEL_SCORE_CPU) and what auto picks under it. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model.h"
#include "stage.h"
#include "model_int.h"

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_model_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(model, .init = setup, .fini = teardown);

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double urand(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

/* Thresholds come from a small grid so that documents hit them exactly. */
static float grid(void) { return (float)((int)(rnd() % 21) - 10) / 4.0f; }

/* Random tree of depth <= maxd (shape random); returns node count. */
static size_t gen_node(rank_node *nodes, size_t *n, unsigned d, unsigned maxd, size_t nf)
{
    size_t i = (*n)++;
    if (d == maxd || (d > 0 && urand() < 0.25)) {
        nodes[i] = (rank_node){.feature = -1, .left = -1, .right = -1, .value = urand() * 2 - 1};
        return i;
    }
    nodes[i].feature = (int32_t)(rnd() % nf);
    nodes[i].threshold = grid();
    nodes[i].missing_left = rnd() & 1;
    nodes[i].value = 0;
    int32_t l = (int32_t)gen_node(nodes, n, d + 1, maxd, nf);
    int32_t r = (int32_t)gen_node(nodes, n, d + 1, maxd, nf);
    nodes[i].left = l;
    nodes[i].right = r;
    return i;
}

typedef struct ref_model {
    rank_node *nodes[64];
    size_t n[64];
    size_t ntrees;
    double base;
} ref_model;

/* Reference: recursive descent written from the documented semantics. */
static double ref_tree(const rank_node *nodes, size_t i, const float *x)
{
    const rank_node *nd = &nodes[i];
    if (nd->feature < 0)
        return nd->value;
    float v = x[nd->feature];
    int left = isnan(v) ? nd->missing_left : v < nd->threshold;
    return ref_tree(nodes, (size_t)(left ? nd->left : nd->right), x);
}

static double ref_score(const ref_model *r, const float *x)
{
    double s = r->base;
    for (size_t t = 0; t < r->ntrees; t++)
        s += ref_tree(r->nodes[t], 0, x);
    return s;
}

static rank_model_t *random_model(ref_model *ref, size_t ntrees, unsigned maxd, size_t nf)
{
    rank_model_t *m;
    cr_assert_eq(rank_model_new(RANK_MODEL_TREES, "lambdarank", nf, &m), 0);
    ref->ntrees = ntrees;
    ref->base = 0.25;
    rank_model_set_base_score(m, ref->base);
    for (size_t t = 0; t < ntrees; t++) {
        ref->nodes[t] = calloc((size_t)2 << maxd, sizeof(rank_node));
        ref->n[t] = 0;
        gen_node(ref->nodes[t], &ref->n[t], 0, t == 3 ? 0 : maxd, nf); /* tree 3 is a stump */
        cr_assert_eq(rank_model_add_tree(m, ref->nodes[t], ref->n[t]), 0);
    }
    cr_assert_eq(rank_model_finalize(m), 0);
    return m;
}

static void free_ref(ref_model *ref)
{
    for (size_t t = 0; t < ref->ntrees; t++)
        free(ref->nodes[t]);
}

static float *random_docs(size_t n, size_t stride)
{
    float *X = malloc(n * stride * sizeof(float));
    for (size_t i = 0; i < n * stride; i++) {
        double u = urand();
        X[i] = u < 0.15 ? NAN : u < 0.5 ? grid() : (float)(urand() * 6 - 3);
    }
    return X;
}

static void check_all_methods(unsigned maxd)
{
    ref_model ref;
    const size_t nf = 7, stride = 9, n = 203; /* not a multiple of the block */
    rank_model_t *m = random_model(&ref, 40, maxd, nf);
    float *X = random_docs(n, stride);
    double *want = malloc(n * sizeof(double)), *got = malloc(n * sizeof(double));
    for (size_t r = 0; r < n; r++)
        want[r] = ref_score(&ref, X + r * stride);
    int tried = 0;
    for (int meth = RANK_SCORE_AUTO; meth < RANK_SCORE_NMETHODS; meth++) {
        if (!rank_score_method_available(m, meth))
            continue;
        tried++;
        for (size_t r = 0; r < n; r++)
            got[r] = NAN;
        rank_model_score_method(m, meth, X, n, stride, got);
        for (size_t r = 0; r < n; r++)
            cr_assert_eq(got[r], want[r], "depth %u method %s row %zu: %.17g != %.17g", maxd,
                         rank_score_method_name(meth), r, got[r], want[r]);
        /* short batches and offsets */
        rank_model_score_method(m, meth, X + 5 * stride, 3, stride, got);
        for (size_t r = 0; r < 3; r++)
            cr_assert_eq(got[r], want[5 + r]);
    }
    cr_assert_geq(tried, maxd <= RANK_PERFECT_MAX_DEPTH ? 4 : 3, "methods tried: %d", tried);
    if (maxd > RANK_PERFECT_MAX_DEPTH)
        cr_assert_not(rank_score_method_available(m, RANK_SCORE_PERFECT));
    rank_model_score(m, X, n, stride, got);
    cr_assert_eq(memcmp(got, want, n * sizeof(double)), 0);
    free(X);
    free(want);
    free(got);
    rank_model_free(m);
    free_ref(&ref);
}

Test(model, scoring_methods_match_reference)
{
    check_all_methods(1);
    check_all_methods(3);
    check_all_methods(6);
    check_all_methods(8);
    check_all_methods(11); /* too deep to pad: FLAT */
}

Test(model, nan_follows_missing_direction)
{
    rank_node t[3] = {
        {.feature = 1, .threshold = 0.5f, .left = 1, .right = 2, .missing_left = 0},
        {.feature = -1, .value = 1.0},
        {.feature = -1, .value = 2.0},
    };
    rank_model_t *m;
    cr_assert_eq(rank_model_new(RANK_MODEL_TREES, "binary", 2, &m), 0);
    cr_assert_eq(rank_model_add_tree(m, t, 3), 0);
    t[0].missing_left = 1;
    cr_assert_eq(rank_model_add_tree(m, t, 3), 0);
    cr_assert_eq(rank_model_finalize(m), 0);
    float X[8] = {0, NAN, 0, 0.4f, 0, 0.5f, NAN, NAN};
    for (int meth = RANK_SCORE_AUTO; meth < RANK_SCORE_NMETHODS; meth++) {
        if (!rank_score_method_available(m, meth))
            continue;
        double out[4];
        rank_model_score_method(m, meth, X, 4, 2, out);
        cr_assert_eq(out[0], 2.0 + 1.0, "%s", rank_score_method_name(meth)); /* NaN: right, then left */
        cr_assert_eq(out[1], 2.0);          /* 0.4 < 0.5: left twice */
        cr_assert_eq(out[2], 4.0);          /* x == threshold goes right */
        cr_assert_eq(out[3], 3.0);
    }
    cr_assert_eq(rank_model_max_depth(m), 1);
    cr_assert_eq(rank_model_nleaves(m), 4);
    rank_model_free(m);
}

/* QS8 codes values by their rank among a feature's thresholds: check the edges
 * of that mapping (x == threshold, -0.0 vs 0.0, infinities, NaN both ways,
 * thresholds +-inf), a feature with 255 distinct thresholds (the most a byte
 * code allows, deepest Eytzinger descent) and that 256 make QS8 unavailable
 * while every other method still agrees. */
static void check_qs8_edges(size_t nthr, int want_qs8)
{
    const size_t nf = 3, stride = 3, n = 700;
    rank_model_t *m;
    cr_assert_eq(rank_model_new(RANK_MODEL_TREES, "lambdarank", nf, &m), 0);
    rank_model_set_base_score(m, -0.5);
    ref_model ref = {.ntrees = 0, .base = -0.5};
    float thr[300];
    cr_assert_leq(nthr, 300);
    for (size_t i = 0; i < nthr; i++)
        thr[i] = (float)i - (float)(nthr / 2);
    thr[0] = -INFINITY;
    thr[1] = INFINITY;
    thr[2] = -0.0f; /* equal to the 0.0 already in the list */
    for (size_t t = 0; t < 60; t++) {
        rank_node *nd = calloc(7, sizeof(rank_node));
        for (int i = 0; i < 3; i++) /* root and two children: feature 0 mostly, all thresholds used */
            nd[i] = (rank_node){.feature = i == 2 ? (int32_t)(t % nf) : 0,
                                .threshold = thr[(t * 3 + (size_t)i * 7 + t / 5) % nthr],
                                .left = i == 0 ? 1 : 2 * i + 1, .right = i == 0 ? 2 : 2 * i + 2,
                                .missing_left = (uint8_t)((t + (size_t)i) & 1)};
        nd[1].left = 3, nd[1].right = 4, nd[2].left = 5, nd[2].right = 6;
        for (int i = 3; i < 7; i++)
            nd[i] = (rank_node){.feature = -1, .left = -1, .right = -1, .value = urand() - 0.5};
        cr_assert_eq(rank_model_add_tree(m, nd, 7), 0);
        ref.nodes[ref.ntrees] = nd;
        ref.n[ref.ntrees++] = 7;
        if (ref.ntrees == 64)
            break;
    }
    /* every threshold at least once on feature 0 */
    for (size_t i = 0; i < nthr; i += 1) {
        rank_node nd[3] = {{.feature = 0, .threshold = thr[i], .left = 1, .right = 2, .missing_left = (uint8_t)(i & 1)},
                           {.feature = -1, .value = 0.25 * (double)(i % 5)},
                           {.feature = -1, .value = -0.125}};
        cr_assert_eq(rank_model_add_tree(m, nd, 3), 0);
    }
    cr_assert_eq(rank_model_finalize(m), 0);
    float *X = malloc(n * stride * sizeof(float));
    for (size_t r = 0; r < n; r++)
        for (size_t f = 0; f < nf; f++) {
            size_t u = rnd() % 8;
            X[r * stride + f] = u == 0 ? NAN : u == 1 ? INFINITY : u == 2 ? -INFINITY : u == 3 ? -0.0f
                              : u < 6 ? thr[rnd() % nthr] : (float)(urand() * (double)nthr) - (float)(nthr / 2);
        }
    double *want = malloc(n * sizeof(double)), *got = malloc(n * sizeof(double));
    for (size_t r = 0; r < n; r++) {
        want[r] = ref_score(&ref, X + r * stride);
        for (size_t i = 0; i < nthr; i++) { /* the single-split trees */
            float v = X[r * stride];
            int left = isnan(v) ? (int)(i & 1) : v < thr[i];
            want[r] += left ? 0.25 * (double)(i % 5) : -0.125;
        }
    }
    /* m->cpu: this CPU's features as FUNNEL_SCORE_CPU (the meson test
     * model_avx2 sets it) leaves them */
    cr_assert_eq(rank_score_method_available(m, RANK_SCORE_QS8) != 0,
                 want_qs8 && (m->cpu & RANK_CPU_AVX512_BYTES), "%zu thresholds", nthr);
    /* 255 unique thresholds on feature 0 are 17 windows of 15 */
    cr_assert_eq(rank_score_method_available(m, RANK_SCORE_QS8AVX2) != 0,
                 want_qs8 && (m->cpu & RANK_CPU_AVX2), "%zu thresholds", nthr);
    for (int meth = RANK_SCORE_AUTO; meth < RANK_SCORE_NMETHODS; meth++) {
        if (!rank_score_method_available(m, meth))
            continue;
        rank_model_score_method(m, meth, X, n, stride, got);
        for (size_t r = 0; r < n; r++)
            cr_assert_eq(got[r], want[r], "%zu thresholds, method %s row %zu (x0 %g): %.17g != %.17g", nthr,
                         rank_score_method_name(meth), r, X[r * stride], got[r], want[r]);
    }
    free(X);
    free(want);
    free(got);
    rank_model_free(m);
    free_ref(&ref);
}

Test(model, qs8_threshold_ranks_are_exact)
{
    /* -0.0 and 0.0 are one threshold: n listed values give n - 1 unique */
    check_qs8_edges(20, 1);
    check_qs8_edges(256, 1); /* 255 unique */
    check_qs8_edges(257, 0); /* 256 unique: no byte code */
}

/* Wide models for QS8's block load (rows transposed 16 features at a time,
 * only chunks holding a used feature, the last chunk masked to nfeatures) and
 * its leaf lookup (byte planes of the leaf doubles): features spread over three
 * chunks with gaps, complete depth-6 trees (64 leaves, all 8 leaf bytes) mixed
 * with random shapes, leaf values with awkward bit patterns, a partial last
 * block, and X allocated to end exactly at the last row's last feature so an
 * over-read trips ASan. */
Test(model, qs8_wide_models_match_reference)
{
    const size_t nf = 45, stride = 47, n = 64 * 3 + 29;
    static const int32_t used[] = {0, 2, 3, 15, 16, 17, 30, 31, 33, 40, 44}; /* none in 4..14 */
    const size_t nused = sizeof used / sizeof used[0];
    static const double odd[] = {-0.0, 4.9e-324, -2.2250738585072014e-308, 1e300, -1.0 / 3.0, 0x1.fffffffffffffp-1};
    ref_model ref = {.ntrees = 64, .base = -1.0 / 7.0};
    rank_model_t *m;
    cr_assert_eq(rank_model_new(RANK_MODEL_TREES, "lambdarank", nf, &m), 0);
    rank_model_set_base_score(m, ref.base);
    for (size_t t = 0; t < ref.ntrees; t++) {
        rank_node *nd = calloc(128, sizeof(rank_node));
        size_t nn = 0;
        if (t % 2 == 0) { /* complete depth 6, BFS order */
            for (size_t i = 0; i < 63; i++)
                nd[i] = (rank_node){.feature = 0, .threshold = grid(), .left = (int32_t)(2 * i + 1),
                                    .right = (int32_t)(2 * i + 2), .missing_left = rnd() & 1};
            for (size_t i = 63; i < 127; i++)
                nd[i] = (rank_node){.feature = -1, .left = -1, .right = -1,
                                    .value = rnd() % 4 == 0 ? odd[rnd() % 6] : urand() * 2 - 1};
            nn = 127;
        } else {
            gen_node(nd, &nn, 0, 6, nf);
        }
        for (size_t i = 0; i < nn; i++)
            if (nd[i].feature >= 0)
                nd[i].feature = used[rnd() % nused];
        cr_assert_eq(rank_model_add_tree(m, nd, nn), 0);
        ref.nodes[t] = nd;
        ref.n[t] = nn;
    }
    cr_assert_eq(rank_model_finalize(m), 0);
    /* X ends right before a PROT_NONE page: any read past the last row's
     * nf-th feature faults (ASan does not see vector intrinsic loads) */
    size_t total = (n - 1) * stride + nf, pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t span = (total * sizeof(float) + pg - 1) / pg * pg + pg;
    char *map = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(map, MAP_FAILED);
    cr_assert_eq(mprotect(map + span - pg, pg, PROT_NONE), 0);
    float *X = (float *)(map + span - pg) - total;
    for (size_t i = 0; i < total; i++) {
        double u = urand();
        X[i] = u < 0.15 ? NAN : u < 0.6 ? grid() : (float)(urand() * 6 - 3);
    }
    double *want = malloc(n * sizeof(double)), *got = malloc(n * sizeof(double));
    for (size_t r = 0; r < n; r++)
        want[r] = ref_score(&ref, X + r * stride);
    for (int meth = RANK_SCORE_AUTO; meth < RANK_SCORE_NMETHODS; meth++) {
        if (!rank_score_method_available(m, meth))
            continue;
        for (size_t start = 0; start < 2; start++) { /* whole batch; one ending mid-block */
            size_t cnt = start ? n - 70 : n;
            rank_model_score_method(m, meth, X + start * 70 * stride, cnt, stride, got);
            for (size_t r = 0; r < cnt; r++)
                cr_assert(memcmp(&got[r], &want[start * 70 + r], sizeof(double)) == 0,
                          "method %s row %zu: %.17g != %.17g", rank_score_method_name(meth), start * 70 + r,
                          got[r], want[start * 70 + r]);
        }
    }
    munmap(map, span);
    free(want);
    free(got);
    rank_model_free(m);
    free_ref(&ref);
}

Test(model, qs8_is_auto_choice_on_avx512_byte_cpus)
{
    ref_model ref;
    rank_model_t *m = random_model(&ref, 40, 6, 7);
    if (rank_score_method_available(m, RANK_SCORE_QS8))
        cr_assert_eq(m->method, RANK_SCORE_QS8);
    else if (rank_score_method_available(m, RANK_SCORE_QS8AVX2)) /* AVX2, no AVX-512 BW/VBMI */
        cr_assert_eq(m->method, RANK_SCORE_QS8AVX2);
    else /* no AVX2 either: some other exact method */
        cr_assert_neq(m->method, RANK_SCORE_QS8);
    rank_model_free(m);
    free_ref(&ref);
}

/* FUNNEL_SCORE_CPU lowers what finalize may pick: with avx2 this machine
 * chooses as an AVX2-only CPU would (QS8AVX2, no AVX-512 method available),
 * with portable a scalar method; it cannot raise what the CPU has. */
static void check_cpu_override(const char *val, unsigned cpu_mask, int want)
{
    ref_model ref, ref0;
    const size_t nf = 9, stride = 11, n = 77;
    cr_assert_eq(setenv("FUNNEL_SCORE_CPU", val, 1), 0);
    rank_model_t *m = random_model(&ref, 40, 6, nf);
    cr_assert_eq(unsetenv("FUNNEL_SCORE_CPU"), 0);
    rank_model_t *native = random_model(&ref0, 0, 6, nf); /* finalized without the override */
    cr_assert_eq(m->cpu & ~cpu_mask, 0, "%s: cpu %s", val, rank_score_cpu_name(m->cpu));
    cr_assert_eq(m->cpu, native->cpu & cpu_mask, "%s: a lower level, never a higher one", val);
    if (want == RANK_SCORE_QS8AVX2 && !(native->cpu & RANK_CPU_AVX2))
        want = RANK_SCORE_PERFECT; /* this CPU has no AVX2 */
    cr_assert_eq(m->method, want, "%s: auto picked %s", val, rank_score_method_name(m->method));
    for (int meth = RANK_SCORE_AVX512; meth <= RANK_SCORE_QS8; meth++)
        if (!(cpu_mask & (RANK_CPU_AVX512 | RANK_CPU_AVX512_BYTES)))
            cr_assert_not(rank_score_method_available(m, meth), "%s: %s", val, rank_score_method_name(meth));
    float *X = random_docs(n, stride);
    double *got = malloc(n * sizeof(double));
    rank_model_score(m, X, n, stride, got);
    for (size_t r = 0; r < n; r++)
        cr_assert_eq(got[r], ref_score(&ref, X + r * stride), "%s row %zu", val, r);
    free(X);
    free(got);
    rank_model_free(m);
    rank_model_free(native);
    free_ref(&ref);
}

Test(model, cpu_override_picks_what_that_cpu_would)
{
    check_cpu_override("avx2", RANK_CPU_AVX2, RANK_SCORE_QS8AVX2);
    check_cpu_override("portable", 0, RANK_SCORE_PERFECT);
    check_cpu_override("avx-2", 0, RANK_SCORE_PERFECT); /* unknown: the safe choice */
    check_cpu_override("avx512", RANK_CPU_AVX2 | RANK_CPU_AVX512, RANK_SCORE_QS8AVX2);
}

/* QS8AVX2's layout: window codes (15 thresholds a window, so features with
 * many thresholds span several columns), mirrored missing-right nodes, 64-
 * document blocks. Every method against the reference on thresholds at float
 * extremes (+-FLT_MAX, subnormals, +-0, +-inf), documents at, just below and
 * just above them, NaN, +-inf, batch sizes 1..70 and 64 k + 1, narrow and
 * wide rows (stride > features). */
static float edge_value(const float *thr, size_t nthr)
{
    size_t u = rnd() % 10;
    float t = thr[rnd() % nthr];
    return u == 0 ? NAN : u == 1 ? INFINITY : u == 2 ? -INFINITY : u < 5 ? t
         : u == 5 ? nextafterf(t, -INFINITY) : u == 6 ? nextafterf(t, INFINITY) : u == 7 ? -0.0f
         : (float)(urand() * 8 - 4);
}

static void check_window_codes(size_t nf, size_t stride, size_t nthr_per_feature)
{
    float thr[128];
    size_t nthr = nthr_per_feature;
    cr_assert_leq(nthr, 128);
    static const float ext[] = {FLT_MAX, -FLT_MAX, FLT_MIN, -FLT_MIN, 1e-45f, -1e-45f, 0.0f, -0.0f,
                                INFINITY, -INFINITY, 1.0f, -1.0f};
    for (size_t i = 0; i < nthr; i++)
        thr[i] = i < sizeof ext / sizeof ext[0] ? ext[i] : (float)(urand() * 8 - 4);
    ref_model ref = {.ntrees = 64, .base = 0.75};
    rank_model_t *m;
    cr_assert_eq(rank_model_new(RANK_MODEL_TREES, "lambdarank", nf, &m), 0);
    rank_model_set_base_score(m, ref.base);
    for (size_t t = 0; t < ref.ntrees; t++) {
        rank_node *nd = calloc(128, sizeof(rank_node));
        size_t nn = 0;
        if (t % 3 == 0) { /* complete depth 6 */
            for (size_t i = 0; i < 63; i++)
                nd[i] = (rank_node){.feature = 0, .left = (int32_t)(2 * i + 1), .right = (int32_t)(2 * i + 2)};
            for (size_t i = 63; i < 127; i++)
                nd[i] = (rank_node){.feature = -1, .left = -1, .right = -1, .value = urand() * 2 - 1};
            nn = 127;
        } else {
            gen_node(nd, &nn, 0, 6, nf);
        }
        for (size_t i = 0; i < nn; i++)
            if (nd[i].feature >= 0) {
                nd[i].feature = (int32_t)(rnd() % nf);
                nd[i].threshold = thr[rnd() % nthr];
                nd[i].missing_left = rnd() & 1;
            }
        cr_assert_eq(rank_model_add_tree(m, nd, nn), 0);
        ref.nodes[t] = nd;
        ref.n[t] = nn;
    }
    cr_assert_eq(rank_model_finalize(m), 0);
    if (m->cpu & RANK_CPU_AVX2)
        cr_assert(rank_score_method_available(m, RANK_SCORE_QS8AVX2), "nf %zu, %zu thresholds", nf, nthr);
    const size_t n = 64 * 3 + 1;
    float *X = malloc(n * stride * sizeof(float));
    for (size_t i = 0; i < n * stride; i++)
        X[i] = edge_value(thr, nthr);
    double *want = malloc(n * sizeof(double)), *got = malloc((n + 1) * sizeof(double));
    for (size_t r = 0; r < n; r++)
        want[r] = ref_score(&ref, X + r * stride);
    for (int meth = RANK_SCORE_AUTO; meth < RANK_SCORE_NMETHODS; meth++) {
        if (!rank_score_method_available(m, meth))
            continue;
        for (size_t cnt = 1; cnt <= n; cnt = cnt < 70 ? cnt + 1 : cnt + 61) {
            size_t off = (cnt * 7) % (n - cnt + 1);
            got[cnt] = 12345.0; /* must stay */
            rank_model_score_method(m, meth, X + off * stride, cnt, stride, got);
            for (size_t r = 0; r < cnt; r++)
                cr_assert(memcmp(&got[r], &want[off + r], sizeof(double)) == 0,
                          "nf %zu method %s batch %zu row %zu: %.17g != %.17g", nf, rank_score_method_name(meth),
                          cnt, off + r, got[r], want[off + r]);
            cr_assert_eq(got[cnt], 12345.0, "method %s wrote past the batch", rank_score_method_name(meth));
        }
    }
    free(X);
    free(want);
    free(got);
    rank_model_free(m);
    free_ref(&ref);
}

Test(model, window_codes_match_reference)
{
    check_window_codes(1, 1, 12);    /* one feature, the float extremes only */
    check_window_codes(3, 5, 40);    /* 3 windows a feature */
    check_window_codes(70, 73, 100); /* wide rows, 7 windows a feature */
    check_window_codes(9, 9, 128);
}

Test(model, add_tree_rejects_bad_structure)
{
    rank_model_t *m;
    cr_assert_eq(rank_model_new(RANK_MODEL_TREES, "lambdarank", 3, &m), 0);
    rank_node cyc[3] = {
        {.feature = 0, .left = 1, .right = 2},
        {.feature = 1, .left = 2, .right = 1},
        {.feature = -1},
    };
    cr_assert_eq(rank_model_add_tree(m, cyc, 3), FN_EINVAL);
    rank_node range[3] = {{.feature = 0, .left = 1, .right = 3}, {.feature = -1}, {.feature = -1}};
    cr_assert_eq(rank_model_add_tree(m, range, 3), FN_EINVAL);
    rank_node feat[3] = {{.feature = 3, .left = 1, .right = 2}, {.feature = -1}, {.feature = -1}};
    cr_assert_eq(rank_model_add_tree(m, feat, 3), FN_EINVAL);
    rank_node orphan[4] = {{.feature = 0, .left = 1, .right = 2}, {.feature = -1}, {.feature = -1}, {.feature = -1}};
    cr_assert_eq(rank_model_add_tree(m, orphan, 4), FN_EINVAL);
    rank_node root_child[3] = {{.feature = 0, .left = 0, .right = 2}, {.feature = -1}, {.feature = -1}};
    cr_assert_eq(rank_model_add_tree(m, root_child, 3), FN_EINVAL);
    cr_assert_eq(rank_model_add_tree(m, orphan, 3), 0);
    cr_assert_eq(rank_model_ntrees(m), 1);
    rank_model_free(m);
    cr_assert_eq(rank_model_new(RANK_MODEL_TREES, "nonsense", 3, &m), FN_EINVAL);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    return b;
}

Test(model, round_trip_trees)
{
    ref_model ref;
    rank_model_t *m = random_model(&ref, 30, 6, 12);
    const char *names[12] = {"bm25_title", "bm25 body", NULL, "pagerank"};
    /* names must be set before finalize: build a second model with names */
    rank_model_free(m);
    cr_assert_eq(rank_model_new(RANK_MODEL_TREES, "lambdarank", 12, &m), 0);
    rank_model_set_base_score(m, 0.1 + 0.2); /* not representable in %.9g */
    cr_assert_eq(rank_model_set_feature_names(m, names, 12), 0);
    for (size_t t = 0; t < ref.ntrees; t++)
        cr_assert_eq(rank_model_add_tree(m, ref.nodes[t], ref.n[t]), 0);
    cr_assert_eq(rank_model_finalize(m), 0);

    char p1[300], p2[300];
    snprintf(p1, sizeof(p1), "%s/a.model", dir);
    snprintf(p2, sizeof(p2), "%s/b.model", dir);
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_model_save(m, p1, &eb), 0, "%s", eb.msg);
    rank_model_t *l;
    cr_assert_eq(rank_model_load(p1, &l, &eb), 0, "%s", eb.msg);
    cr_assert_eq(rank_model_save(l, p2, &eb), 0, "%s", eb.msg);
    char *a = slurp(p1), *b = slurp(p2);
    cr_assert_str_eq(a, b);
    cr_assert(strncmp(a, "funnel-model 1\nkind trees\nobjective lambdarank\nfeatures 12\n", 57) == 0, "%s", a);
    free(a);
    free(b);

    cr_assert_eq(rank_model_ntrees(l), 30);
    cr_assert_eq(rank_model_base_score(l), 0.1 + 0.2);
    cr_assert_str_eq(rank_model_feature_name(l, 1), "bm25 body");
    cr_assert_null(rank_model_feature_name(l, 2));
    cr_assert_eq(rank_model_feature_index(l, "pagerank"), 3);
    cr_assert_eq(rank_model_feature_index(l, "nope"), -1);
    cr_assert_eq(rank_model_max_depth(l), rank_model_max_depth(m));
    for (size_t t = 0; t < 30; t++) {
        size_t n1, n2;
        const rank_node *x = rank_model_tree(m, t, &n1), *y = rank_model_tree(l, t, &n2);
        cr_assert_eq(n1, n2);
        for (size_t i = 0; i < n1; i++) {
            cr_assert_eq(x[i].feature, y[i].feature);
            cr_assert_eq(x[i].value, y[i].value, "leaf values bit-exact");
            cr_assert_eq(x[i].threshold, y[i].threshold);
        }
    }
    float *X = random_docs(100, 12);
    double s1[100], s2[100];
    rank_model_score(m, X, 100, 12, s1);
    rank_model_score(l, X, 100, 12, s2);
    cr_assert_eq(memcmp(s1, s2, sizeof(s1)), 0, "identical scores after a round trip");
    free(X);
    rank_model_free(m);
    rank_model_free(l);
    free_ref(&ref);
}

Test(model, round_trip_linear)
{
    rank_model_t *m;
    cr_assert_eq(rank_model_new(RANK_MODEL_LINEAR, "logistic", 4, &m), 0);
    double w[4] = {0.5, 0, -1.0 / 3.0, 2e-300};
    cr_assert_eq(rank_model_set_linear(m, w, -0.125), 0);
    cr_assert_eq(rank_model_finalize(m), 0);
    char p1[300];
    snprintf(p1, sizeof(p1), "%s/lin.model", dir);
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_model_save(m, p1, &eb), 0, "%s", eb.msg);
    rank_model_t *l;
    cr_assert_eq(rank_model_load(p1, &l, &eb), 0, "%s", eb.msg);
    cr_assert_eq(rank_model_kind(l), RANK_MODEL_LINEAR);
    cr_assert_str_eq(rank_model_objective(l), "logistic");
    float X[8] = {1, 5, 3, 0, NAN, 1, 1, 1};
    double a[2], b[2];
    rank_model_score(m, X, 2, 4, a);
    rank_model_score(l, X, 2, 4, b);
    cr_assert_eq(a[0], -0.125 + 0.5 - 1.0);
    cr_assert_eq(memcmp(a, b, sizeof(a)), 0);
    cr_assert_float_eq(b[1], -0.125 - 1.0 / 3.0 + 2e-300, 1e-15, "NaN counts as 0");
    char *text = slurp(p1);
    cr_assert(strstr(text, "weight 1 ") == NULL, "zero weights are omitted");
    cr_assert(strstr(text, "\nbias -0.125\n") != NULL, "%s", text);
    free(text);
    rank_model_free(m);
    rank_model_free(l);
}

/* Tree models with a linear part: score = base + trees + sum w_i x_i (NaN as
 * 0), added in column order after the trees by every method, so all methods
 * agree bit for bit with the reference computed in the same order. */
static void check_linear_part(unsigned maxd, size_t ntrees)
{
    ref_model ref;
    const size_t nf = 7, stride = 9, n = 203;
    const double w[7] = {0, 0.5, 0, -1.0 / 3.0, 0, 0, 2.5e-3};
    rank_model_t *m0 = random_model(&ref, ntrees, maxd, nf), *m;
    /* the same trees again, plus the linear part (set before finalize) */
    cr_assert_eq(rank_model_new(RANK_MODEL_TREES, "lambdarank", nf, &m), 0);
    rank_model_set_base_score(m, ref.base);
    for (size_t t = 0; t < ref.ntrees; t++)
        cr_assert_eq(rank_model_add_tree(m, ref.nodes[t], ref.n[t]), 0);
    cr_assert_eq(rank_model_set_linear_part(m, w), 0);
    cr_assert_eq(rank_model_finalize(m), 0);
    cr_assert_eq(rank_model_nweights(m), 3);
    cr_assert_eq(rank_model_weight(m, 3), -1.0 / 3.0);
    cr_assert_eq(rank_model_weight(m, 2), 0.0);
    cr_assert_eq(rank_model_weight(m0, 3), 0.0);
    float *X = random_docs(n, stride);
    double *want = malloc(n * sizeof(double)), *got = malloc(n * sizeof(double)), *trees = malloc(n * sizeof(double));
    rank_model_score(m0, X, n, stride, trees);
    for (size_t r = 0; r < n; r++) {
        const float *x = X + r * stride;
        double sc = ref_score(&ref, x);
        cr_assert_eq(sc, trees[r]);
        for (size_t i = 0; i < nf; i++)
            if (w[i] != 0 && !isnan(x[i]))
                sc += w[i] * (double)x[i];
        want[r] = sc;
    }
    int tried = 0;
    for (int meth = RANK_SCORE_AUTO; meth < RANK_SCORE_NMETHODS; meth++) {
        if (!rank_score_method_available(m, meth))
            continue;
        tried++;
        rank_model_score_method(m, meth, X, n, stride, got);
        for (size_t r = 0; r < n; r++)
            cr_assert_eq(got[r], want[r], "depth %u, %zu trees, method %s row %zu: %.17g != %.17g", maxd, ntrees,
                         rank_score_method_name(meth), r, got[r], want[r]);
    }
    cr_assert_geq(tried, 2);
    /* round trip: byte-identical file, bit-identical scores */
    char p1[300], p2[300];
    snprintf(p1, sizeof(p1), "%s/lp1.model", dir);
    snprintf(p2, sizeof(p2), "%s/lp2.model", dir);
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_model_save(m, p1, &eb), 0, "%s", eb.msg);
    rank_model_t *l;
    cr_assert_eq(rank_model_load(p1, &l, &eb), 0, "%s", eb.msg);
    cr_assert_eq(rank_model_save(l, p2, &eb), 0, "%s", eb.msg);
    char *a = slurp(p1), *b = slurp(p2);
    cr_assert_str_eq(a, b);
    cr_assert(strstr(a, "\nweight 1 0.5\nweight 3 -0.33333333333333331\nweight 6 0.0025000000000000001\nend\n"),
              "%s", a);
    free(a);
    free(b);
    cr_assert_eq(rank_model_nweights(l), 3);
    rank_model_score(l, X, n, stride, got);
    cr_assert_eq(memcmp(got, want, n * sizeof(double)), 0);
    free(X);
    free(want);
    free(got);
    free(trees);
    rank_model_free(m);
    rank_model_free(m0);
    rank_model_free(l);
    free_ref(&ref);
}

Test(model, linear_part_scores_trees_plus_weights)
{
    check_linear_part(3, 40);
    check_linear_part(6, 64);
    check_linear_part(11, 20); /* too deep to pad: FLAT */
    check_linear_part(2, 1);
}

/* "Keep the base order": 0 trees and weight 1 on one column score exactly
 * that column (NaN as 0), by every method and after a round trip. */
Test(model, zero_trees_weight_one_is_the_feature)
{
    const size_t nf = 4, n = 150;
    rank_model_t *m;
    cr_assert_eq(rank_model_new(RANK_MODEL_TREES, "lambdarank", nf, &m), 0);
    const char *names[4] = {"x", "bm25f", "y", NULL};
    cr_assert_eq(rank_model_set_feature_names(m, names, 4), 0);
    double w[4] = {0, 1, 0, 0};
    cr_assert_eq(rank_model_set_linear_part(m, w), 0);
    cr_assert_eq(rank_model_finalize(m), 0);
    cr_assert_eq(rank_model_ntrees(m), 0);
    float *X = random_docs(n, nf);
    X[nf * 7 + 1] = 3.4028235e38f;
    X[nf * 8 + 1] = -1e-40f; /* subnormal */
    double got[150];
    char p[300];
    snprintf(p, sizeof(p), "%s/base.model", dir);
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_model_save(m, p, &eb), 0, "%s", eb.msg);
    rank_model_t *l;
    cr_assert_eq(rank_model_load(p, &l, &eb), 0, "%s", eb.msg);
    char *text = slurp(p);
    cr_assert_str_eq(text, "funnel-model 1\nkind trees\nobjective lambdarank\nfeatures 4\nfeature 0 x\n"
                           "feature 1 bm25f\nfeature 2 y\nbase_score 0\ntrees 0\nweight 1 1\nend\n");
    free(text);
    for (int which = 0; which < 2; which++) {
        const rank_model_t *mm = which ? l : m;
        for (int meth = RANK_SCORE_AUTO; meth < RANK_SCORE_NMETHODS; meth++) {
            if (!rank_score_method_available(mm, meth))
                continue;
            rank_model_score_method(mm, meth, X, n, nf, got);
            for (size_t r = 0; r < n; r++) {
                float v = X[r * nf + 1];
                cr_assert_eq(got[r], isnan(v) ? 0.0 : (double)v, "%s row %zu", rank_score_method_name(meth), r);
            }
        }
    }
    cr_assert_eq(rank_model_feature_index(l, "bm25f"), 1);
    /* 0 trees, no weights: the base score */
    rank_model_t *c;
    cr_assert_eq(rank_model_new(RANK_MODEL_TREES, "lambdarank", nf, &c), 0);
    rank_model_set_base_score(c, -2.5);
    cr_assert_eq(rank_model_finalize(c), 0);
    rank_model_score(c, X, n, nf, got);
    for (size_t r = 0; r < n; r++)
        cr_assert_eq(got[r], -2.5);
    free(X);
    rank_model_free(m);
    rank_model_free(l);
    rank_model_free(c);
}

Test(model, linear_part_api_errors)
{
    rank_model_t *m;
    double w[2] = {1, NAN};
    cr_assert_eq(rank_model_new(RANK_MODEL_LINEAR, "logistic", 2, &m), 0);
    cr_assert_eq(rank_model_set_linear_part(m, w), FN_EINVAL, "linear models have weights already");
    rank_model_free(m);
    cr_assert_eq(rank_model_new(RANK_MODEL_TREES, "lambdarank", 2, &m), 0);
    cr_assert_eq(rank_model_set_linear_part(m, w), FN_EINVAL, "NaN weight");
    w[1] = 0;
    cr_assert_eq(rank_model_set_linear_part(m, w), 0);
    cr_assert_eq(rank_model_set_linear_part(m, NULL), 0, "removes it");
    cr_assert_eq(rank_model_nweights(m), 0);
    cr_assert_eq(rank_model_set_linear_part(m, w), 0);
    cr_assert_eq(rank_model_finalize(m), 0);
    cr_assert_eq(rank_model_set_linear_part(m, w), FN_EINVAL, "after finalize");
    cr_assert_eq(rank_model_nweights(m), 1);
    rank_model_free(m);
}

/* The load must fail with code and "FILE:LINE:" prefix. */
static void bad_model(const char *text, int code, int line, const char *what)
{
    char p[300];
    snprintf(p, sizeof(p), "%s/bad.model", dir);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    rank_model_t *m = (rank_model_t *)1;
    fn_errbuf eb = {{0}};
    int rc = rank_model_load(p, &m, &eb);
    cr_assert_eq(rc, code, "%s: rc %d (%s)", what, rc, eb.msg);
    cr_assert_null(m);
    char want[400];
    snprintf(want, sizeof(want), "%s:%d:", p, line);
    cr_assert(strncmp(eb.msg, want, strlen(want)) == 0, "%s: got \"%s\" want prefix \"%s\"", what, eb.msg, want);
}

#define HDR "funnel-model 1\nkind trees\nobjective lambdarank\nfeatures 3\nbase_score 0\n"

Test(model, malformed_files)
{
    bad_model("funnel-model 2\nkind trees\n", FN_EVERSION, 1, "version");
    bad_model("hello\n", FN_EPARSE, 1, "magic");
    bad_model("funnel-model 1\nkind forest\n", FN_EPARSE, 2, "kind");
    bad_model("funnel-model 1\nkind trees\nobjective rank\n", FN_EPARSE, 3, "objective");
    bad_model("funnel-model 1\nkind trees\nobjective binary\nfeatures x\n", FN_EPARSE, 4, "features");
    /* what a header may make the loader allocate is bounded (fuzz_rankmodel
     * found a 4-line file asking for 4 GB; pushed models arrive over RPC) */
    bad_model("funnel-model 1\nkind linear\nobjective regression\nfeatures 00518196431\n", FN_EPARSE, 4,
              "features over RANK_MODEL_MAX_FEATURES");
    bad_model(HDR "trees 1\ntree 0 nodes 16000000\nnode 0 leaf 1\nend\n", FN_EPARSE, 7,
              "more nodes than the file holds");
    bad_model(HDR "trees 1\ntree 0 nodes 3\nnode 0 split 0 0.5 1 2 L\nnode 1 leaf 1\nnode 2 leaf 2\n", FN_EPARSE, 11,
              "no end");
    bad_model(HDR "trees 1\ntree 0 nodes 3\nnode 0 split 3 0.5 1 2 L\nnode 1 leaf 1\nnode 2 leaf 2\nend\n",
              FN_EPARSE, 8, "feature out of range");
    bad_model(HDR "trees 1\ntree 0 nodes 3\nnode 0 split 0 0.5 1 5 L\nnode 1 leaf 1\nnode 2 leaf 2\nend\n",
              FN_EPARSE, 8, "child out of range");
    bad_model(HDR "trees 1\ntree 0 nodes 3\nnode 0 split 0 0.5 1 2 X\nnode 1 leaf 1\nnode 2 leaf 2\nend\n",
              FN_EPARSE, 8, "missing flag");
    bad_model(HDR "trees 1\ntree 0 nodes 3\nnode 0 split 0 0.5x 1 2 L\nnode 1 leaf 1\nnode 2 leaf 2\nend\n",
              FN_EPARSE, 8, "threshold junk");
    bad_model(HDR "trees 1\ntree 0 nodes 3\nnode 0 split 0 0.5 1 2 L\nnode 1 leaf nan\nnode 2 leaf 2\nend\n",
              FN_EPARSE, 9, "leaf nan");
    bad_model(HDR "trees 1\ntree 0 nodes 3\nnode 0 split 0 0.5 1 2 L\nnode 2 leaf 1\nnode 1 leaf 2\nend\n",
              FN_EPARSE, 9, "node order");
    /* cycle: node 1 -> 3 -> 1, node 2 is a leaf; reported at node 1's line */
    bad_model(HDR "trees 1\ntree 0 nodes 5\nnode 0 split 0 0.5 1 2 L\nnode 1 split 1 1 3 4 R\n"
                  "node 2 leaf 2\nnode 3 split 2 1 1 4 L\nnode 4 leaf 1\nend\n",
              FN_EPARSE, 11, "two parents / cycle");
    bad_model(HDR "trees 2\ntree 0 nodes 1\nnode 0 leaf 1\nend\n", FN_EPARSE, 9, "tree count");
    bad_model(HDR "trees 1\ntree 0 nodes 1\nnode 0 leaf 1\nend\ntrees 2\n", FN_EPARSE, 10, "after end");
    bad_model(HDR "trees 1\ntree 0 nodes 1\nnode 0 leaf 1 2\nend\n", FN_EPARSE, 8, "extra token");
    bad_model("funnel-model 1\nkind linear\nobjective logistic\nfeatures 2\nbase_score 0\nbias 0\n"
              "weight 1 1\nweight 0 2\nend\n",
              FN_EPARSE, 8, "weights out of order");
    bad_model(HDR "trees 1\ntree 0 nodes 1\nnode 0 leaf 1\nweight 2 1\nweight 1 1\nend\n", FN_EPARSE, 10,
              "tree model: weights out of order");
    bad_model(HDR "trees 0\nweight 3 1\nend\n", FN_EPARSE, 7, "tree model: weight column out of range");
    bad_model(HDR "trees 0\nweight 0 nan\nend\n", FN_EPARSE, 7, "tree model: NaN weight");
    bad_model(HDR "trees 0\nweight 0 1 2\nend\n", FN_EPARSE, 7, "tree model: extra token");
    bad_model(HDR "weight 0 1\ntrees 0\nend\n", FN_EPARSE, 6, "weights before the trees");
    bad_model(HDR "trees 1\nweight 0 1\ntree 0 nodes 1\nnode 0 leaf 1\nend\n", FN_EPARSE, 7,
              "weights between trees");
    bad_model(HDR "trees 0\nweight 0 1\n", FN_EPARSE, 8, "tree model: no end after the weights");

    /* comments and blank lines are fine */
    char p[300];
    snprintf(p, sizeof(p), "%s/ok.model", dir);
    FILE *f = fopen(p, "w");
    fputs("# trained by hand\n" HDR "\ntrees 1\ntree 0 nodes 1\n  node 0 leaf 1.5\nend\n", f);
    fclose(f);
    rank_model_t *m;
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_model_load(p, &m, &eb), 0, "%s", eb.msg);
    double s;
    float x[3] = {0, 0, 0};
    rank_model_score(m, x, 1, 3, &s);
    cr_assert_eq(s, 1.5);
    rank_model_free(m);
    cr_assert_eq(rank_model_load("/nonexistent/m", &m, &eb), -ENOENT);
}

typedef struct thr_arg {
    const rank_model_t *m;
    const float *X;
    size_t n, stride;
    double *out;
} thr_arg;

static void *score_thread(void *a)
{
    thr_arg *t = a;
    for (int rep = 0; rep < 20; rep++)
        rank_model_score(t->m, t->X, t->n, t->stride, t->out);
    return NULL;
}

Test(model, concurrent_scoring_is_identical)
{
    ref_model ref;
    rank_model_t *m = random_model(&ref, 50, 6, 10);
    const size_t n = 1000;
    float *X = random_docs(n, 10);
    double *want = malloc(n * sizeof(double));
    rank_model_score(m, X, n, 10, want);
    for (size_t r = 0; r < n; r += 97)
        cr_assert_eq(want[r], ref_score(&ref, X + r * 10));
    enum { T = 6 };
    pthread_t th[T];
    thr_arg args[T];
    for (int i = 0; i < T; i++) {
        args[i] = (thr_arg){m, X, n, 10, malloc(n * sizeof(double))};
        cr_assert_eq(pthread_create(&th[i], NULL, score_thread, &args[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(memcmp(args[i].out, want, n * sizeof(double)), 0, "thread %d", i);
        free(args[i].out);
    }
    free(X);
    free(want);
    rank_model_free(m);
    free_ref(&ref);
}

/* A ranker reads a column only if the model does: a split on it or a
 * nonzero weight (a stage skips computing the others, e.g. prf_rm3). */
Test(model, ranker_uses_only_what_the_model_reads)
{
    const char *cols[5] = {"bm25f", "a", "prf_rm3", "b", "c"};
    rank_model_t *m;
    cr_assert_eq(rank_model_new(RANK_MODEL_TREES, "lambdarank", 4, &m), 0);
    const char *names[4] = {"a", "bm25f", "prf_rm3", "b"};
    cr_assert_eq(rank_model_set_feature_names(m, names, 4), 0);
    /* one split on model feature 3 ("b"), weight on 1 ("bm25f"); "a" and prf_rm3 named only */
    rank_node t[3] = {{3, 0.5f, 1, 2, 1, 0}, {-1, 0, -1, -1, 0, -1.0}, {-1, 0, -1, -1, 0, 1.0}};
    cr_assert_eq(rank_model_add_tree(m, t, 3), 0);
    double w[4] = {0, 0.7, 0, 0};
    cr_assert_eq(rank_model_set_linear_part(m, w), 0);
    cr_assert_eq(rank_model_finalize(m), 0);
    rank_ranker *r;
    fn_errbuf eb = {{0}};
    cr_assert_eq(rank_ranker_new(m, "t", cols, NULL, 5, &r, &eb), 0, "%s", eb.msg);
    cr_assert(rank_ranker_uses(r, 0), "bm25f: nonzero weight");
    cr_assert(rank_ranker_uses(r, 3), "b: a split");
    cr_assert(!rank_ranker_uses(r, 1), "a: named, never read");
    cr_assert(!rank_ranker_uses(r, 2), "prf_rm3: named, never read");
    cr_assert(!rank_ranker_uses(r, 4), "c: not the model's");
    cr_assert(!rank_ranker_uses(NULL, 0));
    rank_ranker_unref(r);
}
