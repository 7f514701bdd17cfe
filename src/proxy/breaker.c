/* SPDX-License-Identifier: Apache-2.0 */
/* Lock-free admission counters for the circuit breaker. */
#include "breaker.h"

/* The counters guard no other data, so relaxed ordering is enough: only the count matters. */
#define RELAXED memory_order_relaxed

const char *mesh_breaker_resource_str(enum mesh_breaker_resource r)
{
    switch (r) {
    case MESH_BREAKER_CONNECTIONS:
        return "connections";
    case MESH_BREAKER_PENDING:
        return "pending_requests";
    case MESH_BREAKER_REQUESTS:
        return "requests";
    case MESH_BREAKER_RETRIES:
        return "retries";
    case MESH_BREAKER_N_RESOURCES:
        break;
    }
    return "unknown";
}

void mesh_breaker_limits_from_config(struct mesh_breaker_limits *limits,
                                     const struct mesh_circuit_breaker_config *cfg)
{
    limits->max_connections = cfg->max_connections;
    limits->max_pending_requests = cfg->max_pending_requests;
    limits->max_requests = cfg->max_requests;
    limits->max_retries = cfg->max_retries;
}

void mesh_breaker_init(struct mesh_breaker *b)
{
    for (int r = 0; r < MESH_BREAKER_N_RESOURCES; r++) {
        atomic_init(&b->active[r], 0);
        atomic_init(&b->overflows[r], 0);
    }
}

static uint32_t limit_of(const struct mesh_breaker_limits *limits, enum mesh_breaker_resource r)
{
    switch (r) {
    case MESH_BREAKER_CONNECTIONS:
        return limits->max_connections;
    case MESH_BREAKER_PENDING:
        return limits->max_pending_requests;
    case MESH_BREAKER_REQUESTS:
        return limits->max_requests;
    case MESH_BREAKER_RETRIES:
        return limits->max_retries;
    case MESH_BREAKER_N_RESOURCES:
        break;
    }
    return 0;
}

bool mesh_breaker_try_acquire(struct mesh_breaker *b, const struct mesh_breaker_limits *limits,
                              enum mesh_breaker_resource r)
{
    uint32_t limit = limit_of(limits, r);
    if (limit == 0) {
        /* Unlimited: still counted, for the open/pending gauges. */
        atomic_fetch_add_explicit(&b->active[r], 1, RELAXED);
        return true;
    }
    /* A plain fetch_add would let the count overshoot for a moment under contention, and a
     * racing acquire would then be refused while the real count is below the limit. */
    uint32_t cur = atomic_load_explicit(&b->active[r], RELAXED);
    do {
        if (cur >= limit) {
            atomic_fetch_add_explicit(&b->overflows[r], 1, RELAXED);
            return false;
        }
    } while (
        !atomic_compare_exchange_weak_explicit(&b->active[r], &cur, cur + 1, RELAXED, RELAXED));
    return true;
}

void mesh_breaker_release(struct mesh_breaker *b, enum mesh_breaker_resource r)
{
    uint32_t cur = atomic_load_explicit(&b->active[r], RELAXED);
    do {
        if (cur == 0)
            return;
    } while (
        !atomic_compare_exchange_weak_explicit(&b->active[r], &cur, cur - 1, RELAXED, RELAXED));
}

uint32_t mesh_breaker_active(const struct mesh_breaker *b, enum mesh_breaker_resource r)
{
    return atomic_load_explicit(&b->active[r], RELAXED);
}

uint64_t mesh_breaker_overflows(const struct mesh_breaker *b, enum mesh_breaker_resource r)
{
    return atomic_load_explicit(&b->overflows[r], RELAXED);
}
