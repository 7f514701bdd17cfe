/* SPDX-License-Identifier: Apache-2.0 */
/* Smooth weighted round robin: picks a route's destination so that shares are exact. */
#ifndef MESH_PROXY_PICKER_H
#define MESH_PROXY_PICKER_H

#include <stddef.h>

/* The nginx algorithm: each pick adds every weight to its running value, takes the largest and
 * subtracts the total weight from it. Over any total-weight picks each index is chosen exactly
 * weight times (90/10 over 1000 picks is 900/100), and picks are spread out, not bunched
 * (50/50 alternates).
 *
 * current: the caller's running values, one per weight, zeroed before the first pick (see
 * mesh_swrr_reset); per worker, so no atomics. weights: borrowed, >= 0 (negative values count
 * as 0), their sum must fit an int. Returns the picked index, or n when every weight is 0 (or
 * n is 0). No allocation. */
size_t mesh_swrr_pick(int *current, const int *weights, size_t n);

/* Zeroes the running values, e.g. when a worker adopts a new snapshot. */
void mesh_swrr_reset(int *current, size_t n);

#endif
