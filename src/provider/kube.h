/* SPDX-License-Identifier: Apache-2.0 */
/* Internal: the istio and linkerd providers, which keep our resources as that mesh's objects in
 * a Kubernetes cluster (kube.c). */
#ifndef MESH_PROVIDER_KUBE_H
#define MESH_PROVIDER_KUBE_H

#include "mesh/provider.h"

/* The built-in "istio" and "linkerd" providers' ops; process lifetime. */
extern const struct mesh_provider_ops mesh_istio_provider;
extern const struct mesh_provider_ops mesh_linkerd_provider;

#endif
