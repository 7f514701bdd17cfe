/* SPDX-License-Identifier: Apache-2.0 */
/* mesh_register_with_kubernetes(): libmesh's cluster precheck (include/mesh/kube.h). Its own
 * file, so that only programs that call it link libcurl's side of libmesh. */
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "kube/cluster.h"
#include "mesh/mesh.h"

/* The provider of the first stored MeshConfig that names istio or linkerd, or NULL. *owned gets
 * what to free. */
static const char *stored_provider(struct mesh *mesh, char **owned)
{
    struct mesh_resource **list = NULL;
    size_t n = 0;
    *owned = NULL;
    if (mesh_list(mesh, MESH_KIND_MESH_CONFIG, NULL, &list, &n) != MESH_OK)
        return NULL;
    for (size_t i = 0; i < n && !*owned; i++) {
        const struct mesh_mesh_config *mc = (const struct mesh_mesh_config *)list[i];
        if (mesh_kube_provider_crds(mc->provider))
            *owned = xstrdup(mc->provider);
    }
    mesh_resource_list_free(list, n);
    return *owned;
}

enum mesh_err mesh_register_with_kubernetes(struct mesh *mesh, const struct mesh_kube_config *cfg)
{
    struct mesh_kube_cluster cluster = {0};
    char *errmsg = NULL, *version = NULL, *owned = NULL;
    enum mesh_err err = MESH_OK;

    if (!mesh || !cfg)
        return mesh_set_error(mesh, MESH_E_INVALID, "mesh_register_with_kubernetes: no %s",
                              mesh ? "config" : "mesh");
    const char *provider = cfg->provider ? cfg->provider : stored_provider(mesh, &owned);
    if (!provider) {
        err = mesh_set_error(mesh, MESH_E_INVALID,
                             "no provider to check the cluster for: set provider (istio or "
                             "linkerd), or store a MeshConfig naming one");
        goto out;
    }
    if (!mesh_kube_provider_crds(provider)) {
        err = mesh_set_error(mesh, MESH_E_INVALID,
                             "provider \"%s\" does not run on Kubernetes: use istio or linkerd",
                             provider);
        goto out;
    }
    struct mesh_kube_target t = {
        .kubeconfig = cfg->kubeconfig,
        .context = cfg->context,
        .ns = cfg->ns,
    };
    if ((err = mesh_kube_cluster_open(&t, &cluster, &errmsg)) != MESH_OK ||
        (err = mesh_kube_precheck(&cluster, provider, &version, &errmsg)) != MESH_OK) {
        mesh_set_error(mesh, err, "%s", errmsg);
        goto out;
    }
    if (cfg->version) {
        *cfg->version = version;
        version = NULL;
    }
out:
    free(version);
    free(errmsg);
    free(owned);
    mesh_kube_cluster_close(&cluster);
    return err;
}
