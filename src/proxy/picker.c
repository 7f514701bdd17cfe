/* SPDX-License-Identifier: Apache-2.0 */
/* Smooth weighted round robin over a small array of weights. */
#include "picker.h"

#include <string.h>

size_t mesh_swrr_pick(int *current, const int *weights, size_t n)
{
    size_t best = n;
    int total = 0;
    for (size_t i = 0; i < n; i++) {
        int w = weights[i];
        /* A zero weight never takes part, so it cannot be picked on a leftover running value
         * from before its weight was set to 0. */
        if (w <= 0)
            continue;
        current[i] += w;
        total += w;
        if (best == n || current[i] > current[best])
            best = i;
    }
    if (best < n)
        current[best] -= total;
    return best;
}

void mesh_swrr_reset(int *current, size_t n)
{
    if (n > 0)
        memset(current, 0, n * sizeof(*current));
}
