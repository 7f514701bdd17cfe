/* SPDX-License-Identifier: Apache-2.0 */
/* CircuitBreaker: the seed's limits and outlier detection, flat in spec as the seed writes them. */
#include <stdint.h>

#include "kinds.h"
#include "mesh/circuit_breaker.h"

#define LIMIT(field)                                                                               \
    {                                                                                              \
        .name = #field, .type = MESH_F_UINT,                                                       \
        .offset = offsetof(struct mesh_circuit_breaker, config.field), .min = 1, .max = INT32_MAX  \
    }

static const struct mesh_field detection_fields[] = {
    {.name = "consecutive_errors",
     .type = MESH_F_UINT,
     .offset = offsetof(struct mesh_outlier_detection, consecutive_errors),
     .min = 1,
     .max = INT32_MAX},
    {.name = "interval",
     .type = MESH_F_DURATION,
     .offset = offsetof(struct mesh_outlier_detection, interval_ms)},
    {.name = "base_ejection_time",
     .type = MESH_F_DURATION,
     .offset = offsetof(struct mesh_outlier_detection, base_ejection_time_ms)},
    {.name = "max_ejection_percent",
     .type = MESH_F_INT_OPT,
     .offset = offsetof(struct mesh_outlier_detection, max_ejection_percent),
     .min = 0,
     .max = 100},
};

static const struct mesh_schema detection_schema = {sizeof(struct mesh_outlier_detection),
                                                    MESH_FIELDS(detection_fields), -1, NULL};

static void circuit_breaker_validate(struct mesh_decoder *d, const void *obj,
                                     const struct mesh_node *node, const char *path)
{
    const struct mesh_circuit_breaker_config *c =
        &((const struct mesh_circuit_breaker *)obj)->config;
    const struct mesh_outlier_detection *o = &c->detection;
    if (!c->max_connections && !c->max_pending_requests && !c->max_requests && !c->max_retries &&
        !o->consecutive_errors && !o->interval_ms && !o->base_ejection_time_ms)
        mesh_decoder_error(d, node, path,
                           "sets nothing: give max_connections, max_pending_requests, "
                           "max_requests, max_retries or detection");
}

static const struct mesh_field circuit_breaker_fields[] = {
    {.name = "service",
     .type = MESH_F_STRING,
     .offset = offsetof(struct mesh_circuit_breaker, service),
     .check = MESH_CHECK_SERVICE_HOST,
     .required = true},
    LIMIT(max_connections),
    LIMIT(max_pending_requests),
    LIMIT(max_requests),
    LIMIT(max_retries),
    {.name = "detection",
     .type = MESH_F_OBJECT,
     .offset = offsetof(struct mesh_circuit_breaker, config.detection),
     .schema = &detection_schema},
};

const struct mesh_schema mesh_circuit_breaker_schema = {sizeof(struct mesh_circuit_breaker),
                                                        MESH_FIELDS(circuit_breaker_fields), -1,
                                                        circuit_breaker_validate};

struct mesh_circuit_breaker *mesh_circuit_breaker_new(const char *name, const char *ns)
{
    return (struct mesh_circuit_breaker *)mesh_resource_new(MESH_KIND_CIRCUIT_BREAKER, name, ns);
}

void mesh_circuit_breaker_free(struct mesh_circuit_breaker *cb)
{
    mesh_resource_free(cb ? &cb->res : NULL);
}
