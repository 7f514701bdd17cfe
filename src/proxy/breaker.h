/* SPDX-License-Identifier: Apache-2.0 */
/* Circuit breaker admission: hard limits on connections, pending requests, requests and
 * retries per destination service, shared by every worker through atomics. */
#ifndef MESH_PROXY_BREAKER_H
#define MESH_PROXY_BREAKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mesh/circuit_breaker.h"

enum mesh_breaker_resource {
    MESH_BREAKER_CONNECTIONS = 0, /* open upstream connections */
    MESH_BREAKER_PENDING,         /* requests waiting for an upstream connection */
    MESH_BREAKER_REQUESTS,        /* requests in flight upstream */
    MESH_BREAKER_RETRIES,         /* retries in flight */
    MESH_BREAKER_N_RESOURCES,
};

/* "connections", "pending_requests", "requests", "retries" (metric labels); "unknown"
 * otherwise. Never NULL. */
const char *mesh_breaker_resource_str(enum mesh_breaker_resource r);

/* Immutable, part of a snapshot. 0 = unlimited. */
struct mesh_breaker_limits {
    uint32_t max_connections;
    uint32_t max_pending_requests;
    uint32_t max_requests;
    uint32_t max_retries;
};

/* Copies the four limits of a CircuitBreaker config (whose 0 also means unset). */
void mesh_breaker_limits_from_config(struct mesh_breaker_limits *limits,
                                     const struct mesh_circuit_breaker_config *cfg);

/* Shared by every worker (and kept across reloads, in struct mesh_cluster_state): each counter
 * is an atomic, so any thread may call every function below; no locks. */
struct mesh_breaker {
    _Atomic uint32_t active[MESH_BREAKER_N_RESOURCES];    /* currently held */
    _Atomic uint64_t overflows[MESH_BREAKER_N_RESOURCES]; /* refused acquisitions, ever */
};

/* Zeroes every counter. Before the breaker is shared. */
void mesh_breaker_init(struct mesh_breaker *b);

/* Takes one unit of resource r if that keeps it within its limit (limits borrowed). True: the
 * caller holds a unit and must give it back with mesh_breaker_release. False: the limit is
 * reached, the overflow is counted, nothing is held (answer 503 + x-mesh-overflow). The count
 * never exceeds the limit, even with every worker racing (a compare-and-swap loop). A limit
 * lowered by a reload below the current count admits nothing until enough units are released.
 */
bool mesh_breaker_try_acquire(struct mesh_breaker *b, const struct mesh_breaker_limits *limits,
                              enum mesh_breaker_resource r);

/* Gives back one unit taken by a successful mesh_breaker_try_acquire. An unmatched release is
 * ignored rather than wrapping the count (which would close the breaker for good). */
void mesh_breaker_release(struct mesh_breaker *b, enum mesh_breaker_resource r);

/* Current units held and overflows so far, for metrics (relaxed reads). */
uint32_t mesh_breaker_active(const struct mesh_breaker *b, enum mesh_breaker_resource r);
uint64_t mesh_breaker_overflows(const struct mesh_breaker *b, enum mesh_breaker_resource r);

#endif
