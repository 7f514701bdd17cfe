/* SPDX-License-Identifier: Apache-2.0 */
/* A fast per-worker pseudo-random generator (xoshiro256**) for load balancing and faults. */
#ifndef MESH_PROXY_RNG_H
#define MESH_PROXY_RNG_H

#include <stdbool.h>
#include <stdint.h>

#include "mesh/err.h"

/* Not thread-safe: each worker (or each per-worker structure) owns its own generator. Not for
 * secrets: the sequence is predictable from a few outputs. Plain data, copyable. */
struct mesh_rng {
    uint64_t s[4];
};

/* Seeds rng from getrandom(2). MESH_OK, or MESH_E_IO when the kernel gives no entropy (rng is
 * then seeded from the clock and the address of rng, which still differs per worker). */
enum mesh_err mesh_rng_init(struct mesh_rng *rng);

/* Seeds rng deterministically (tests, or deriving one generator from another). Any seed,
 * including 0, gives a valid state. */
void mesh_rng_seed(struct mesh_rng *rng, uint64_t seed);

/* The next 64 random bits. */
uint64_t mesh_rng_next(struct mesh_rng *rng);

/* A uniform integer in [0, n), without modulo bias; 0 when n is 0. */
uint32_t mesh_rng_below(struct mesh_rng *rng, uint32_t n);

/* True with probability pct/100, resolved to 0.01%: pct is rounded to hundredths of a percent.
 * pct <= 0 (or NaN) is never, pct >= 100 always; neither draws a number. */
bool mesh_rng_percent(struct mesh_rng *rng, double pct);

#endif
