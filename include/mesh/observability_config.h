/* SPDX-License-Identifier: Apache-2.0 */
/* ObservabilityConfig: where metrics, dashboards and traces go. */
#ifndef MESH_OBSERVABILITY_CONFIG_H
#define MESH_OBSERVABILITY_CONFIG_H

#include "resource.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mesh_observability_config {
    struct mesh_resource res;  /* kind MESH_KIND_OBSERVABILITY_CONFIG */
    char *prometheus_endpoint; /* http(s) URLs; NULL = not configured */
    char *grafana_endpoint;
    char *jaeger_endpoint;
};

struct mesh_observability_config *mesh_observability_config_new(const char *name, const char *ns);
void mesh_observability_config_free(struct mesh_observability_config *oc);

#ifdef __cplusplus
}
#endif
#endif
