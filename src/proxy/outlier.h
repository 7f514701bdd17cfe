/* SPDX-License-Identifier: Apache-2.0 */
/* Outlier detection: consecutive failures eject an endpoint for a while; a periodic sweep
 * returns it; never more than a bounded share of a cluster is out at once. */
#ifndef MESH_PROXY_OUTLIER_H
#define MESH_PROXY_OUTLIER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh/circuit_breaker.h"
#include "mesh/err.h"

#define MESH_OUTLIER_DEFAULT_CONSECUTIVE_ERRORS   5u
#define MESH_OUTLIER_DEFAULT_INTERVAL_MS          10000u
#define MESH_OUTLIER_DEFAULT_BASE_EJECTION_MS     30000u
#define MESH_OUTLIER_DEFAULT_MAX_EJECTION_PERCENT 50u

/* Immutable, part of a snapshot; every field set (see mesh_outlier_config_from_detection). */
struct mesh_outlier_config {
    uint32_t consecutive_errors;    /* failures in a row that eject, >= 1 */
    uint64_t interval_ms;           /* how often the main thread sweeps */
    uint64_t base_ejection_time_ms; /* first ejection; the n-th lasts n times this */
    uint32_t max_ejection_percent;  /* 0..100: share of the cluster that may be out at once */
};

/* Fills cfg from a CircuitBreaker's outlier_detection (NULL = all unset), taking the defaults
 * above for unset fields: 5 errors, 10 s interval, 30 s base ejection, 50%. */
void mesh_outlier_config_from_detection(struct mesh_outlier_config *cfg,
                                        const struct mesh_outlier_detection *d);

/* One endpoint's state; every field an atomic, updated by any worker. */
struct mesh_outlier_endpoint {
    _Atomic uint32_t consecutive_failures;
    _Atomic uint32_t state;            /* in service, being ejected, ejected (outlier.c) */
    _Atomic uint64_t ejected_until_ms; /* meaningful while ejected */
    _Atomic uint32_t times_ejected;    /* ever, across reloads that keep the state */
};

/* Shared by every worker and kept across reloads (in struct mesh_cluster_state), for one fixed
 * set of endpoints indexed 0..n-1 like the snapshot's. */
struct mesh_outlier_cluster {
    size_t n;
    _Atomic uint32_t ejected; /* endpoints ejected now */
    struct mesh_outlier_endpoint *endpoints;
};

/* Allocates state for n endpoints, all in service. MESH_OK, or MESH_E_NOMEM (c is then empty
 * and mesh_outlier_cluster_destroy is still safe). Main thread, before the state is shared. */
enum mesh_err mesh_outlier_cluster_init(struct mesh_outlier_cluster *c, size_t n);
/* Frees the endpoint array; a zeroed or failed-init cluster is fine. No other thread may still
 * use c. */
void mesh_outlier_cluster_destroy(struct mesh_outlier_cluster *c);

/* Reports the outcome of one request to endpoint i (< c->n) at now_ms; the caller decides what
 * counts as a failure (5xx, connect failure). A success resets the failure run; the
 * consecutive_errors-th failure in a row ejects the endpoint until now_ms + base ejection time
 * x times ejected (this one included, so the first ejection lasts 1x), unless that would put
 * more than max_ejection_percent of the cluster out (with the default 50% a cluster of one
 * never loses its endpoint). Returns true when this very call ejected the endpoint: exactly one
 * of several racing reports does. Any thread; lock-free; cfg borrowed. */
bool mesh_outlier_report(struct mesh_outlier_cluster *c, const struct mesh_outlier_config *cfg,
                         size_t i, bool failure, uint64_t now_ms);

/* Whether endpoint i is ejected (gets no traffic). Any thread; one relaxed load. */
bool mesh_outlier_ejected(const struct mesh_outlier_cluster *c, size_t i);

/* Returns to service every endpoint whose ejection ended by now_ms, with a fresh failure run;
 * returns how many. Called every interval_ms by the main thread (any thread is safe). */
unsigned mesh_outlier_sweep(struct mesh_outlier_cluster *c, uint64_t now_ms);

/* For metrics: endpoints ejected now; times endpoint i was ejected. Any thread. */
uint32_t mesh_outlier_ejected_count(const struct mesh_outlier_cluster *c);
uint32_t mesh_outlier_times_ejected(const struct mesh_outlier_cluster *c, size_t i);

#endif
