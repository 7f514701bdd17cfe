/* SPDX-License-Identifier: Apache-2.0 */
/* Lock-free consecutive-failure ejection with a cluster-wide cap on ejected endpoints. */
#include "outlier.h"

#include <stdlib.h>

#include "mesh/resource.h"

/* An endpoint's life: IN_SERVICE -> EJECTING (one reporter won the right to eject it) ->
 * EJECTED (or back to IN_SERVICE when the cluster cap refused) -> IN_SERVICE (sweep). Only
 * EJECTED hides the endpoint from traffic, so the short EJECTING window changes nothing. */
enum {
    ST_IN_SERVICE = 0,
    ST_EJECTING,
    ST_EJECTED,
};

#define RELAXED memory_order_relaxed

void mesh_outlier_config_from_detection(struct mesh_outlier_config *cfg,
                                        const struct mesh_outlier_detection *d)
{
    cfg->consecutive_errors = MESH_OUTLIER_DEFAULT_CONSECUTIVE_ERRORS;
    cfg->interval_ms = MESH_OUTLIER_DEFAULT_INTERVAL_MS;
    cfg->base_ejection_time_ms = MESH_OUTLIER_DEFAULT_BASE_EJECTION_MS;
    cfg->max_ejection_percent = MESH_OUTLIER_DEFAULT_MAX_EJECTION_PERCENT;
    if (d == NULL)
        return;
    if (d->consecutive_errors > 0)
        cfg->consecutive_errors = d->consecutive_errors;
    if (d->interval_ms > 0)
        cfg->interval_ms = d->interval_ms;
    if (d->base_ejection_time_ms > 0)
        cfg->base_ejection_time_ms = d->base_ejection_time_ms;
    if (d->max_ejection_percent != MESH_UNSET && d->max_ejection_percent >= 0)
        cfg->max_ejection_percent =
            d->max_ejection_percent > 100 ? 100u : (uint32_t)d->max_ejection_percent;
}

enum mesh_err mesh_outlier_cluster_init(struct mesh_outlier_cluster *c, size_t n)
{
    c->n = 0;
    c->endpoints = NULL;
    atomic_init(&c->ejected, 0);
    if (n == 0)
        return MESH_OK;
    struct mesh_outlier_endpoint *eps = calloc(n, sizeof(*eps));
    if (eps == NULL)
        return MESH_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        atomic_init(&eps[i].consecutive_failures, 0);
        atomic_init(&eps[i].state, ST_IN_SERVICE);
        atomic_init(&eps[i].ejected_until_ms, 0);
        atomic_init(&eps[i].times_ejected, 0);
    }
    c->endpoints = eps;
    c->n = n;
    return MESH_OK;
}

void mesh_outlier_cluster_destroy(struct mesh_outlier_cluster *c)
{
    free(c->endpoints);
    c->endpoints = NULL;
    c->n = 0;
}

/* Takes one of the cluster's ejection slots, if one more ejected endpoint stays within the
 * allowed share: (ejected + 1) / n <= max_percent / 100, in integers. */
static bool claim_ejection_slot(struct mesh_outlier_cluster *c, uint32_t max_percent)
{
    uint64_t allowed = (uint64_t)max_percent * c->n;
    uint32_t cur = atomic_load_explicit(&c->ejected, RELAXED);
    do {
        if ((uint64_t)(cur + 1) * 100 > allowed)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&c->ejected, &cur, cur + 1, RELAXED, RELAXED));
    return true;
}

/* base x times, saturating instead of wrapping back to a short ejection. */
static uint64_t ejection_end(uint64_t now_ms, uint64_t base_ms, uint32_t times)
{
    if (times != 0 && base_ms > UINT64_MAX / times)
        return UINT64_MAX;
    uint64_t span = base_ms * times;
    return span > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + span;
}

static bool try_eject(struct mesh_outlier_cluster *c, const struct mesh_outlier_config *cfg,
                      struct mesh_outlier_endpoint *ep, uint64_t now_ms)
{
    uint32_t expected = ST_IN_SERVICE;
    /* Only one of several racing reporters gets past this. */
    if (!atomic_compare_exchange_strong_explicit(&ep->state, &expected, ST_EJECTING,
                                                 memory_order_acquire, RELAXED))
        return false;
    if (!claim_ejection_slot(c, cfg->max_ejection_percent)) {
        /* The failure run stays at the threshold: the next failure tries again, and succeeds
         * once another endpoint has returned. */
        atomic_store_explicit(&ep->state, ST_IN_SERVICE, memory_order_release);
        return false;
    }
    uint32_t times = atomic_fetch_add_explicit(&ep->times_ejected, 1, RELAXED) + 1;
    atomic_store_explicit(&ep->ejected_until_ms,
                          ejection_end(now_ms, cfg->base_ejection_time_ms, times), RELAXED);
    atomic_store_explicit(&ep->consecutive_failures, 0, RELAXED);
    /* Publishes ejected_until_ms to the sweep, which loads the state with acquire. */
    atomic_store_explicit(&ep->state, ST_EJECTED, memory_order_release);
    return true;
}

bool mesh_outlier_report(struct mesh_outlier_cluster *c, const struct mesh_outlier_config *cfg,
                         size_t i, bool failure, uint64_t now_ms)
{
    if (i >= c->n)
        return false;
    struct mesh_outlier_endpoint *ep = &c->endpoints[i];
    if (!failure) {
        /* Load first: most requests succeed, and a store on every one would bounce the cache
         * line between workers. */
        if (atomic_load_explicit(&ep->consecutive_failures, RELAXED) != 0)
            atomic_store_explicit(&ep->consecutive_failures, 0, RELAXED);
        return false;
    }
    uint32_t run = atomic_fetch_add_explicit(&ep->consecutive_failures, 1, RELAXED) + 1;
    if (run < cfg->consecutive_errors)
        return false;
    return try_eject(c, cfg, ep, now_ms);
}

bool mesh_outlier_ejected(const struct mesh_outlier_cluster *c, size_t i)
{
    if (i >= c->n)
        return false;
    return atomic_load_explicit(&c->endpoints[i].state, RELAXED) == ST_EJECTED;
}

unsigned mesh_outlier_sweep(struct mesh_outlier_cluster *c, uint64_t now_ms)
{
    unsigned returned = 0;
    for (size_t i = 0; i < c->n; i++) {
        struct mesh_outlier_endpoint *ep = &c->endpoints[i];
        uint32_t state = atomic_load_explicit(&ep->state, memory_order_acquire);
        if (state != ST_EJECTED || atomic_load_explicit(&ep->ejected_until_ms, RELAXED) > now_ms)
            continue;
        /* Failures of requests that were in flight at ejection time do not count against the
         * endpoint's return. */
        atomic_store_explicit(&ep->consecutive_failures, 0, RELAXED);
        if (!atomic_compare_exchange_strong_explicit(&ep->state, &state, ST_IN_SERVICE,
                                                     memory_order_release, RELAXED))
            continue; /* a concurrent sweep returned it */
        /* Released after the endpoint is back, so the cap is never exceeded even briefly. */
        atomic_fetch_sub_explicit(&c->ejected, 1, RELAXED);
        returned++;
    }
    return returned;
}

uint32_t mesh_outlier_ejected_count(const struct mesh_outlier_cluster *c)
{
    return atomic_load_explicit(&c->ejected, RELAXED);
}

uint32_t mesh_outlier_times_ejected(const struct mesh_outlier_cluster *c, size_t i)
{
    if (i >= c->n)
        return 0;
    return atomic_load_explicit(&c->endpoints[i].times_ejected, RELAXED);
}
