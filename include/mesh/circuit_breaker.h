/* SPDX-License-Identifier: Apache-2.0 */
/* CircuitBreaker: connection/request limits and outlier detection for a service. */
#ifndef MESH_CIRCUIT_BREAKER_H
#define MESH_CIRCUIT_BREAKER_H

#include <stdint.h>

#include "resource.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mesh_outlier_detection {
    uint32_t consecutive_errors;    /* 0 = unset */
    uint64_t interval_ms;           /* 0 = unset */
    uint64_t base_ejection_time_ms; /* 0 = unset */
    int max_ejection_percent;       /* 0..100 or MESH_UNSET */
};

/* Every limit is positive when set; 0 means unset (no limit). */
struct mesh_circuit_breaker_config {
    uint32_t max_connections;
    uint32_t max_pending_requests;
    uint32_t max_requests;
    uint32_t max_retries;
    struct mesh_outlier_detection detection;
};

/* Start a struct mesh_circuit_breaker_config from this, so that max_ejection_percent reads as
 * unset rather than 0%. */
#define MESH_CIRCUIT_BREAKER_CONFIG_INIT                                                           \
    {                                                                                              \
        .detection = {.max_ejection_percent = MESH_UNSET }                                         \
    }

struct mesh_circuit_breaker {
    struct mesh_resource res; /* kind MESH_KIND_CIRCUIT_BREAKER */
    char *service;            /* the Service or VirtualService it guards */
    struct mesh_circuit_breaker_config config;
};

struct mesh_circuit_breaker *mesh_circuit_breaker_new(const char *name, const char *ns);
void mesh_circuit_breaker_free(struct mesh_circuit_breaker *cb);

#ifdef __cplusplus
}
#endif
#endif
