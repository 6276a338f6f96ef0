/* model_int.h - rank_model internals shared by model.c (building, files) and
 * score.c (compiled scoring layouts). Not a public interface: only rank/ and
 * the scoring benchmark include it. */
#ifndef FUNNEL_RANK_MODEL_INT_H
#define FUNNEL_RANK_MODEL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct rank_tree {
    rank_node *nodes;
    size_t n;
    size_t depth;       /* edges on the longest root-to-leaf path */
} rank_tree;

/* Flattened struct-of-arrays layout for trees of any shape. Internal nodes of
 * all trees in one array; a child >= 0 is an internal node, < 0 is leaf ~c. */
typedef struct rank_flat {
    int32_t *feature;
    float *threshold;
    int32_t *child;      /* [2*i] left, [2*i+1] right */
    uint8_t *missing_left;
    double *leaf;
    int32_t *root;       /* per tree: internal node index, or ~leaf for a stump */
} rank_flat;

/* Perfect (padded) binary trees for depth <= RANK_PERFECT_MAX_DEPTH: tree t
 * has depth[t] levels, internal node i's children are 2i+1 / 2i+2 and leaf j
 * is reached as node 2^D - 1 + j. Padding nodes test feature 0 and lead to
 * copies of the same leaf value, so their outcome does not matter. fword =
 * feature | (missing goes right) << 31. */
#define RANK_PERFECT_MAX_DEPTH 8
typedef struct rank_perfect {
    int32_t *fword;
    float *threshold;
    double *leaf;
    size_t *node_off;    /* per tree: first internal node */
    size_t *leaf_off;    /* per tree: first leaf */
    uint8_t *depth;      /* per tree */
    /* Trees of depth <= 6 again, 64-byte aligned, 64 entries a tree: [0..31]
     * nodes 0..30 (levels 0-4), [32..63] nodes 31..62 (level 5), so that a
     * level is one in-register permute (vpermt2d) of two 16-lane vectors. */
    int32_t *tab_fw;
    float *tab_th;
} rank_perfect;

/* QuickScorer layout (trees with <= 64 leaves, any shape): leaves numbered
 * left to right; internal node k clears its left subtree's leaves (mask[k])
 * when the document goes right; the exit leaf is the lowest set bit. Per tree
 * the nodes whose missing values go left come first (x >= t), then those
 * whose missing values go right (!(x < t)): the ANDs commute, so grouping
 * lets each group use one compare predicate. Features are renumbered to the
 * columns the model uses (col[c]) so that a transposed block stays small. */
#define RANK_QS_MAX_COLS 512
typedef struct rank_qs {
    int32_t *fcol;       /* compact column of each node */
    float *threshold;
    uint64_t *mask;
    double *leaf;        /* 64 a tree */
    size_t *off;         /* per tree + 1: first node */
    uint32_t *nleft;     /* per tree: nodes in the missing-left group */
    int32_t *col;        /* compact column -> feature */
    size_t ncols;
} rank_qs;

/* Byte-code QuickScorer (RapidScorer-style, trees with <= 64 leaves): each
 * (feature, missing direction) pair the model uses is a compact column. A
 * document's value is replaced by its rank among the feature's sorted unique
 * thresholds (code = #thresholds <= x, NaN -> 0 or 255 by missing
 * direction), so "x >= t_j" is exactly "code > j" and one byte compare covers
 * 64 documents. Leaf bitvectors are kept transposed: register b holds leaf
 * byte b of 64 documents, and a node touches only the bytes its left subtree
 * covers (one for all but the top nodes). Entries are grouped per tree by
 * byte. Needs <= 255 unique thresholds per feature, no NaN threshold. */
typedef struct rank_qs8_feat {
    int32_t feature;
    uint32_t tab_off;    /* Eytzinger table (1-based, 2^levels floats, NaN padded) in tab */
    uint8_t levels;
    int16_t col_l, col_r; /* compact column coding NaN as 0 / as 255, or -1 */
} rank_qs8_feat;

typedef struct rank_qs8 {
    uint16_t *ecol;      /* per entry: compact column */
    uint32_t *ej;        /* threshold rank j, replicated in all 4 bytes */
    uint32_t *ekeep;     /* leaves of the byte kept when the node is false, x4 */
    size_t *eoff;        /* [t*8 + b] first entry of tree t, byte b; ntrees*8+1 */
    uint8_t *nbytes;     /* per tree: leaf bytes in use */
    double *leaf;        /* 64 a tree */
    uint8_t *plane;      /* 512 a tree, 64-byte aligned: byte p of leaf l at [64 p + l] */
    float *tab;          /* 64-byte aligned */
    rank_qs8_feat *feat;
    size_t nfeat, ncols;
} rank_qs8;

/* QS8AVX2 (AVX2 only): QS8's codes cut into windows of 15 thresholds, code_w
 * = min(max(code - 15 w, 0), 15) and NaN -> 0x80, so that a node is one
 * 16-entry byte table lookup (vpshufb, which gives 0 for 0x80) of its
 * window's codes: lut[code_w] = the leaves of the entry's byte to clear.
 * Nodes whose missing values go right are mirrored (children swapped, test
 * inverted) so that NaN never clears and one column serves both directions;
 * leaves are numbered in that mirrored order. Needs the QS8 layout (its
 * thresholds tables code the values) and <= RANK_QS_MAX_COLS windows. */
typedef struct rank_qsa2 {
    uint8_t *lut;        /* 16 per entry, 16-byte aligned */
    uint16_t *coff;      /* per entry: window column * 64 (block of 64 documents) */
    size_t *eoff;        /* [t*8 + b] first entry of tree t, byte b; ntrees*8+1 */
    uint8_t *nbytes;     /* per tree: leaf bytes in use */
    double *leaf;        /* 64 a tree */
    uint16_t *fcol;      /* per QS8 feature: its first window column */
    uint8_t *fnwin;      /* per QS8 feature: windows */
    size_t ncols;
} rank_qsa2;

struct rank_model {
    enum rank_model_kind kind;
    char objective[32];
    size_t nfeatures;
    double base_score;
    char **names;        /* nfeatures entries or NULL */
    rank_tree *trees;
    size_t ntrees, cap;
    double *weights;     /* linear models: the weights; trees: the linear part (NULL = none) */
    double bias;
    /* trees: the nonzero weights as (column, weight) in column order, added
     * after the trees' sum by rank__score_add_linear (built by finalize) */
    uint32_t *lin_col;
    double *lin_w;
    size_t nlin;
    int finalized;
    int method;          /* rank_score_method chosen by finalize */
    unsigned cpu;        /* RANK_CPU_* the methods may use (finalize: detected, lowered by FUNNEL_SCORE_CPU) */
    rank_flat flat;
    rank_perfect perfect; /* fword == NULL when some tree is too deep */
    rank_qs qs;          /* mask == NULL when unavailable */
    rank_qs8 qs8;        /* ecol == NULL when unavailable */
    rank_qsa2 qsa2;      /* lut == NULL when unavailable */
};

/* Scoring methods, for the benchmark and the tests (all give identical
 * results: leaves are added in tree order in double precision). */
enum rank_score_method {
    RANK_SCORE_AUTO = 0,
    RANK_SCORE_NAIVE,     /* pointer chasing over rank_node, one document at a time */
    RANK_SCORE_FLAT,      /* SoA nodes, blocks of documents tree-major, branchy */
    RANK_SCORE_PERFECT,   /* padded perfect trees, branch-free, scalar */
    RANK_SCORE_AVX512,    /* padded perfect trees, 16 documents per AVX-512 vector, gathers */
    RANK_SCORE_AVX512T,   /* as AVX512, node tables in registers (permutes) for depth <= 6 */
    RANK_SCORE_QS,        /* QuickScorer-style leaf bitvectors, 16 documents a vector (AVX-512) */
    RANK_SCORE_QS8,       /* QuickScorer on byte codes, 64 documents a vector (AVX-512 BW+VBMI) */
    RANK_SCORE_QS8AVX2,   /* QS8's codes in 4-bit windows, a node = one byte shuffle, 32 documents a vector (AVX2) */
    RANK_SCORE_NMETHODS
};

/* CPU features scoring may use. finalize stores the detected ones in
 * rank_model.cpu, lowered by the environment variable FUNNEL_SCORE_CPU =
 * avx512 (no BW/VBMI methods), avx2 (no AVX-512), portable (no SIMD) so that
 * tests and benchmarks can see what another CPU would pick; any other
 * non-empty value counts as portable. */
enum { RANK_CPU_AVX2 = 1, RANK_CPU_AVX512 = 2, RANK_CPU_AVX512_BYTES = 4 };
/* "avx512bw+vbmi", "avx512", "avx2" or "portable": the best level in cpu. */
const char *rank_score_cpu_name(unsigned cpu);

const char *rank_score_method_name(int method);
/* 1 if method can score m on this CPU. */
int rank_score_method_available(const rank_model_t *m, int method);
/* rank_model_score with a given method (must be available). */
void rank_model_score_method(const rank_model_t *m, int method, const float *X, size_t n,
                             size_t stride, double *out);

/* model.c: adds a tree model's linear part to out[0..n) (scores of the trees):
 * out[r] += w_i * x_i for each nonzero weight in column order, NaN x_i
 * counting as 0. Called once at the end of every scoring method, so all
 * methods stay bit-identical. No-op for models without a linear part. */
void rank__score_add_linear(const rank_model_t *m, const float *X, size_t n, size_t stride, double *out);

/* score.c: build / free the compiled layouts (finalize). */
int rank_score_compile(rank_model_t *m);
void rank_score_release(rank_model_t *m);

#endif
