/* fusion.h - a text ranking and a vector list into one list (docs/vectors.md).
 *
 * Both inputs are global lists (every shard's merged), best first, so the
 * fused list depends on neither the shard count nor the shards' order:
 *   RRF       score = sum over the lists holding the document of
 *             1 / (COORD_RRF_K + rank), rank from 1 (Cormack et al. 2009);
 *   WEIGHTED  score = w x v + (1 - w) x t, v and t the document's similarity
 *             and text score min-max normalised over their list (1 when a
 *             list's scores are all equal), 0 for the list it is not in.
 * Ties by key (xxh64 of the id), ascending.
 */
#ifndef FUNNEL_COORD_FUSION_H
#define FUNNEL_COORD_FUSION_H

#include <stddef.h>
#include <stdint.h>

enum coord_fusion { COORD_FUSE_RRF = 1, COORD_FUSE_WEIGHTED = 2 };

typedef struct coord_fuse_in {
    uint64_t key;
    double score;               /* text: its final score; vector: its similarity */
} coord_fuse_in;

typedef struct coord_fused {
    uint64_t key;
    double score;
    int32_t t, v;               /* its index in the text / vector list, -1: not in it */
} coord_fused;

/* Fuse text[0, nt) and vec[0, nv) (each best first, keys distinct within a
 * list) into *out (malloc'd, caller frees; *n = the distinct documents),
 * best first. Returns 0, -ENOMEM, or -EINVAL (an unknown method, w not in
 * 0..1). */
int coord_fuse(const coord_fuse_in *text, size_t nt, const coord_fuse_in *vec, size_t nv, int method,
               double w, coord_fused **out, size_t *n);

#endif
