/* SPDX-License-Identifier: Apache-2.0 */
/* Endpoint choice within a cluster: least-request P2C, round robin or random, skipping
 * endpoints the caller says are unusable (ejected). */
#ifndef MESH_PROXY_BALANCER_H
#define MESH_PROXY_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rng.h"

enum mesh_lb_policy {
    /* Default. Power of two choices: two distinct usable endpoints at random, the one with
     * fewer active requests wins, a tie is broken at random. */
    MESH_LB_LEAST_REQUEST = 0,
    MESH_LB_ROUND_ROBIN, /* the next usable endpoint after the previous pick */
    MESH_LB_RANDOM,      /* uniform over the usable endpoints */
};

/* "least_request", "round_robin", "random"; "unknown" otherwise. Never NULL. */
const char *mesh_lb_policy_str(enum mesh_lb_policy policy);

/* Per worker and per cluster: a worker owns one for each cluster of its snapshot, so no
 * atomics. Plain data; initialise with mesh_lb_state_init. */
struct mesh_lb_state {
    size_t rr_next; /* round robin cursor, taken modulo the endpoint count */
    struct mesh_rng rng;
};

/* Seeds the state's generator from seed (e.g. mesh_rng_next of the worker's generator) and
 * starts the round robin cursor at a random place, so workers do not all begin with endpoint 0.
 */
void mesh_lb_state_init(struct mesh_lb_state *st, uint64_t seed);

/* Whether endpoint i may take traffic (not ejected, ...). ctx is the caller's. */
typedef bool (*mesh_lb_usable_fn)(void *ctx, size_t i);

/* Picks an endpoint among n (n <= INT_MAX). active: borrowed, n in-flight request counts, read
 * by MESH_LB_LEAST_REQUEST only (may be NULL for the others). usable: NULL means every endpoint
 * is usable; it may be called a few times per pick and its answers may change between calls
 * (another thread ejecting), which the pick tolerates. Returns the index, or -1 when n is 0 or
 * no endpoint is usable. Caller's worker thread; no allocation. */
int mesh_lb_pick(enum mesh_lb_policy policy, struct mesh_lb_state *st, const uint32_t *active,
                 size_t n, mesh_lb_usable_fn usable, void *ctx);

#endif
