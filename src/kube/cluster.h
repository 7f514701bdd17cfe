/* SPDX-License-Identifier: Apache-2.0 */
/* A cluster as meshctl and libmesh reach it: a kubeconfig context turned into a client, and the
 * checks `meshctl cluster register` and mesh_register_with_kubernetes() make before anything is
 * applied there (the API server answers; the provider's CRDs are installed), like
 * `istioctl x precheck` and `linkerd check`. */
#ifndef MESH_KUBE_CLUSTER_H
#define MESH_KUBE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

#include "kube/client.h"
#include "kube/kubeconfig.h"

/* What to connect to: kubeconfig NULL = $KUBECONFIG, else ~/.kube/config; context NULL = its
 * current-context; ns NULL = the context's namespace, else "default". All borrowed. */
struct mesh_kube_target {
    const char *kubeconfig;
    const char *context;
    const char *ns;
    long timeout_ms; /* 0: MESH_KUBE_DEFAULT_TIMEOUT_MS */
};

/* A connected cluster. */
struct mesh_kube_cluster {
    struct mesh_kube_client *client;
    char *context; /* the context in effect */
    char *ns;      /* the namespace in effect */
    char *server;  /* its API server URL */
};

/* Reads the kubeconfig, resolves the context (running its exec plugin, if any) and makes a
 * client; no request is sent yet. *out zeroed by the caller; on error it holds nothing and
 * *errmsg (caller frees) says why (kubeconfig.h's errors). */
enum mesh_err mesh_kube_cluster_open(const struct mesh_kube_target *t,
                                     struct mesh_kube_cluster *out, char **errmsg);
void mesh_kube_cluster_close(struct mesh_kube_cluster *c);

/* The CRDs a provider's objects need ("virtualservices.networking.istio.io", ...): NULL for a
 * provider we do not render for. NULL-terminated, static. */
const char *const *mesh_kube_provider_crds(const char *provider);

/* The checks: GET /version (*version: "v1.30.2", caller frees), then every CRD of the provider
 * (provider NULL: none). MESH_OK when all is there (only then is *version set); MESH_E_NOTFOUND
 * when CRDs are missing, with *errmsg naming them and what to install; else the client's error. */
enum mesh_err mesh_kube_precheck(struct mesh_kube_cluster *c, const char *provider, char **version,
                                 char **errmsg);

#endif
