/* SPDX-License-Identifier: Apache-2.0 */
/* The seed's configure_observability: the ObservabilityConfig stored through the mesh's
 * provider, and the mesh's Grafana dashboards pushed to its grafana_endpoint. */
#include <stdlib.h>
#include <string.h>

#include "dashboards.h"
#include "grafana.h"
#include "mesh/mesh.h"

/* strdup that keeps NULL (not configured) and empty strings apart: "" is not configured either. */
static char *endpoint_dup(const char *s, bool *nomem)
{
    if (!s || !*s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *nomem = true;
    return d;
}

/* Pushes every dashboard to Grafana at url; the first failure stops it. */
static enum mesh_err push_dashboards(struct mesh *mesh, const char *url)
{
    struct mesh_dashboard *list = NULL;
    size_t n = 0;
    enum mesh_err err = mesh_dashboards_build(&list, &n);
    if (err != MESH_OK)
        return mesh_set_error(mesh, err, "configure_observability: building the dashboards: %s",
                              mesh_strerror(err));
    for (size_t i = 0; i < n && err == MESH_OK; i++) {
        char *where = NULL, *why = NULL;
        err = mesh_grafana_push(url, NULL, list[i].json, &where, &why);
        if (err != MESH_OK)
            mesh_set_error(mesh, err,
                           "configure_observability: the ObservabilityConfig is stored, but "
                           "dashboard %s was not pushed: %s",
                           list[i].uid, why ? why : mesh_strerror(err));
        free(where);
        free(why);
    }
    mesh_dashboards_free(list, n);
    return err;
}

enum mesh_err mesh_configure_observability(struct mesh *mesh, const char *prometheus_endpoint,
                                           const char *grafana_endpoint,
                                           const char *jaeger_endpoint)
{
    struct mesh_observability_config *oc = NULL;
    bool nomem = false;
    enum mesh_err err;

    if (!mesh)
        return MESH_E_INVALID;
    oc = mesh_observability_config_new(MESH_OBSERVABILITY_CONFIG_NAME, MESH_DEFAULT_NAMESPACE);
    if (!oc)
        return mesh_set_error(mesh, MESH_E_NOMEM, "configure_observability: out of memory");
    oc->prometheus_endpoint = endpoint_dup(prometheus_endpoint, &nomem);
    oc->grafana_endpoint = endpoint_dup(grafana_endpoint, &nomem);
    oc->jaeger_endpoint = endpoint_dup(jaeger_endpoint, &nomem);
    if (nomem) {
        err = mesh_set_error(mesh, MESH_E_NOMEM, "configure_observability: out of memory");
        goto out;
    }
    /* Stored first, validated on the way (each endpoint must be a URL): nothing is pushed for a
     * configuration that is refused. */
    const struct mesh_resource *res = &oc->res;
    err = mesh_apply(mesh, &res, 1, NULL);
    if (err != MESH_OK || !oc->grafana_endpoint)
        goto out;
    err = push_dashboards(mesh, oc->grafana_endpoint);
out:
    mesh_observability_config_free(oc);
    return err;
}
