/* SPDX-License-Identifier: Apache-2.0 */
/* KubernetesConfig: which cluster (kubeconfig context) and namespace a provider talks to. */
#ifndef MESH_KUBERNETES_CONFIG_H
#define MESH_KUBERNETES_CONFIG_H

#include "resource.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mesh_kubernetes_config {
    struct mesh_resource res; /* kind MESH_KIND_KUBERNETES_CONFIG */
    char *context;            /* kubeconfig context; NULL = current-context */
    char *target_namespace;   /* spec.namespace: where resources are applied */
    char *kubeconfig;         /* path; NULL = $KUBECONFIG or ~/.kube/config */
};

struct mesh_kubernetes_config *mesh_kubernetes_config_new(const char *name, const char *ns);
void mesh_kubernetes_config_free(struct mesh_kubernetes_config *kc);

#ifdef __cplusplus
}
#endif
#endif
