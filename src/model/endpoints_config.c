/* SPDX-License-Identifier: Apache-2.0 */
/* The two small "where is it" kinds: ObservabilityConfig (metrics, dashboards and trace
 * endpoints) and KubernetesConfig (cluster context and namespace). */
#include "kinds.h"
#include "mesh/kubernetes_config.h"
#include "mesh/observability_config.h"

#define OC struct mesh_observability_config
#define KC struct mesh_kubernetes_config

static const struct mesh_field observability_fields[] = {
    {.name = "prometheus_endpoint",
     .type = MESH_F_STRING,
     .offset = offsetof(OC, prometheus_endpoint),
     .check = MESH_CHECK_URL},
    {.name = "grafana_endpoint",
     .type = MESH_F_STRING,
     .offset = offsetof(OC, grafana_endpoint),
     .check = MESH_CHECK_URL},
    {.name = "jaeger_endpoint",
     .type = MESH_F_STRING,
     .offset = offsetof(OC, jaeger_endpoint),
     .check = MESH_CHECK_URL},
};

const struct mesh_schema mesh_observability_config_schema = {
    sizeof(OC), MESH_FIELDS(observability_fields), -1, NULL};

static const struct mesh_field kubernetes_fields[] = {
    {.name = "context", .type = MESH_F_STRING, .offset = offsetof(KC, context)},
    {.name = "namespace",
     .type = MESH_F_STRING,
     .offset = offsetof(KC, target_namespace),
     .check = MESH_CHECK_DNS_LABEL},
    {.name = "kubeconfig", .type = MESH_F_STRING, .offset = offsetof(KC, kubeconfig)},
};

const struct mesh_schema mesh_kubernetes_config_schema = {sizeof(KC),
                                                          MESH_FIELDS(kubernetes_fields), -1, NULL};

struct mesh_observability_config *mesh_observability_config_new(const char *name, const char *ns)
{
    return (OC *)mesh_resource_new(MESH_KIND_OBSERVABILITY_CONFIG, name, ns);
}

void mesh_observability_config_free(struct mesh_observability_config *oc)
{
    mesh_resource_free(oc ? &oc->res : NULL);
}

struct mesh_kubernetes_config *mesh_kubernetes_config_new(const char *name, const char *ns)
{
    return (KC *)mesh_resource_new(MESH_KIND_KUBERNETES_CONFIG, name, ns);
}

void mesh_kubernetes_config_free(struct mesh_kubernetes_config *kc)
{
    mesh_resource_free(kc ? &kc->res : NULL);
}
