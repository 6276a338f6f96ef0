/* order.c - the document order and ideal DCG shared by trainer and metrics
 * (rank_int.h). */
#include "rank_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* a ranks before b: larger first, NaN after every number. */
static inline int before(double a, double b)
{
    return a > b || (isnan(b) && !isnan(a));
}

void rank__order_desc(const double *s, size_t n, size_t *order, size_t *tmp)
{
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    if (n <= RANK__SMALL_SORT || !tmp) {
        for (size_t i = 1; i < n; i++) {
            size_t v = order[i], j = i;
            while (j > 0 && before(s[v], s[order[j - 1]])) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = v;
        }
        return;
    }
    /* bottom-up merge sort: stable, O(n log n), no allocation */
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t a = lo, b = mid, k = lo;
            while (a < mid && b < hi)
                tmp[k++] = before(s[order[b]], s[order[a]]) ? order[b++] : order[a++];
            while (a < mid)
                tmp[k++] = order[a++];
            while (b < hi)
                tmp[k++] = order[b++];
        }
        memcpy(order, tmp, n * sizeof *order);
    }
}

static int cmp_label_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

double rank__ideal_dcg(const float *labels, size_t n, size_t k, float *scratch)
{
    size_t top = (k == 0 || k > n) ? n : k;
    memcpy(scratch, labels, n * sizeof *scratch);
    qsort(scratch, n, sizeof *scratch, cmp_label_desc);
    double idcg = 0.0;
    for (size_t r = 0; r < top; r++)
        idcg += (exp2(scratch[r]) - 1.0) / log2((double)r + 2.0);
    return idcg;
}
