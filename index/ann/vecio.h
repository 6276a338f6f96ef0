/* vecio.h - reading the ANN benchmark formats: .fvecs, .ivecs (texmex) and
 * IDX (MNIST / Fashion-MNIST, gzip'd or not).
 *
 *   .fvecs   per vector: little-endian int32 d, then d float32
 *   .ivecs   per row:    little-endian int32 d, then d int32
 *   IDX      big-endian: 0, 0, type, ndims, then ndims uint32 sizes, then the
 *            data row-major. Read as n = sizes[0] vectors of the product of the
 *            other sizes; type 0x08 (unsigned byte), 0x09 (signed byte),
 *            0x0B (int16), 0x0C (int32) or 0x0D (float32), converted to float.
 *            zlib reads .gz and plain files alike.
 *
 * Every row of a .fvecs / .ivecs file must have the same d. Errors:
 * FN_EFORMAT with "PATH: reason" (a bad header, a row of another dimension,
 * a truncated file), -errno, -ENOMEM.
 */
#ifndef FUNNEL_INDEX_ANN_VECIO_H
#define FUNNEL_INDEX_ANN_VECIO_H

#include <stddef.h>
#include <stdint.h>

#include "fn_error.h"

/**
 * @brief Load float vectors from a .fvecs file or an IDX file (by content: a
 * file that starts with an IDX magic 00 00 type ndims, gzip'd or not, is IDX;
 * anything else is .fvecs).
 * @param[out] vecs n x dim floats, 64-byte aligned, the caller frees (free())
 * @return 0, FN_EFORMAT, -errno, -ENOMEM
 */
int ann_vecs_load(const char *path, float **vecs, size_t *n, size_t *dim, fn_errbuf *eb);

/**
 * @brief Load an .ivecs file (ground truth: row i = the ids nearest to query i).
 * @param[out] rows n x dim int32, the caller frees (free())
 * @return 0, FN_EFORMAT, -errno, -ENOMEM
 */
int ann_ivecs_load(const char *path, int32_t **rows, size_t *n, size_t *dim, fn_errbuf *eb);

#endif
