/* SPDX-License-Identifier: Apache-2.0 */
/* Example: the seed's configure_observability through libmesh: where metrics, dashboards and
 * traces go, and the mesh's dashboards pushed to Grafana.
 *
 *   observability [STORE_DIR [GRAFANA_URL]]
 *
 * The seed's Grafana (http://grafana:3000) is a name only a cluster resolves, so this example
 * pushes dashboards only to a Grafana given on the command line (http://127.0.0.1:3000), as
 * $MESH_GRAFANA_TOKEN (a service account token) or $MESH_GRAFANA_USER and $MESH_GRAFANA_PASSWORD:
 * the stored endpoint holds no password. */
#include <stdio.h>
#include <stdlib.h>

#include <mesh/mesh.h>

int main(int argc, char **argv)
{
    /* NULL store_dir: libmesh falls back to $MESH_STORE, then ./.mesh. */
    struct mesh_config cfg = {.provider = "native", .store_dir = argc > 1 ? argv[1] : NULL};
    const char *grafana = argc > 2 ? argv[2] : NULL;
    struct mesh *mesh = NULL;
    struct mesh_resource *stored = NULL;
    char *why = NULL;
    int rc = 1;

    if (mesh_new_verbose(&cfg, &mesh, &why) != MESH_OK) {
        fprintf(stderr, "observability: %s\n", why ? why : "cannot open the mesh");
        goto out;
    }
    if (mesh_configure_observability(mesh, "http://prometheus:9090", grafana,
                                     "http://jaeger:16686") != MESH_OK) {
        fprintf(stderr, "observability: %s\n", mesh_last_error(mesh));
        goto out;
    }
    if (mesh_get(mesh, MESH_KIND_OBSERVABILITY_CONFIG, MESH_OBSERVABILITY_CONFIG_NAME, NULL,
                 &stored) != MESH_OK) {
        fprintf(stderr, "observability: %s\n", mesh_last_error(mesh));
        goto out;
    }
    const struct mesh_observability_config *oc = (const struct mesh_observability_config *)stored;
    printf("ObservabilityConfig %s/%s\n", mesh_resource_namespace(stored), stored->name);
    printf("  prometheus %s\n", oc->prometheus_endpoint ? oc->prometheus_endpoint : "-");
    printf("  grafana    %s%s\n", oc->grafana_endpoint ? oc->grafana_endpoint : "-",
           oc->grafana_endpoint ? " (dashboards pushed)" : "");
    printf("  jaeger     %s\n", oc->jaeger_endpoint ? oc->jaeger_endpoint : "-");
    rc = 0;
out:
    mesh_resource_free(stored);
    mesh_free(mesh);
    free(why);
    return rc;
}
