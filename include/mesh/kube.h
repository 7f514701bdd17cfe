/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes: checking that a cluster is ready for the istio or linkerd provider. */
#ifndef MESH_KUBE_H
#define MESH_KUBE_H

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mesh;

/* Which cluster, and for which provider. Every pointer is borrowed. */
struct mesh_kube_config {
    const char *context;    /* kubeconfig context; NULL = its current-context */
    const char *ns;         /* namespace; NULL = the context's, else "default" */
    const char *kubeconfig; /* path; NULL = $KUBECONFIG (':'-separated), else ~/.kube/config */
    /* "istio" or "linkerd"; NULL = the provider of the first MeshConfig stored in mesh that names
     * one of the two. */
    const char *provider;
    /* Optional: on MESH_OK receives the server's version ("v1.30.2"); the caller frees it. */
    char **version;
};

/* Checks that the cluster cfg names is ready for the provider, as `meshctl cluster register`,
 * `istioctl x precheck` and `linkerd check` do: the API server answers with the kubeconfig's
 * credentials, and every CRD the provider's objects need is installed. Nothing is written to the
 * cluster or to the mesh. MESH_OK; else mesh_last_error() says why: MESH_E_NOTFOUND (no
 * kubeconfig, an unknown context, CRDs missing: the message names them and what to install),
 * MESH_E_INVALID (a malformed kubeconfig, no provider), MESH_E_UNAVAILABLE (the server cannot be
 * reached or refuses the credentials), MESH_E_TLS, MESH_E_IO. Blocks for up to 30 seconds per
 * request; call it from the thread that uses mesh. */
enum mesh_err mesh_register_with_kubernetes(struct mesh *mesh, const struct mesh_kube_config *cfg);

#ifdef __cplusplus
}
#endif
#endif
