/* SPDX-License-Identifier: Apache-2.0 */
/* Example: the seed's payment traffic split and circuit breaker applied to a Kubernetes cluster
 * through libmesh's istio (or linkerd) provider, then read back from the cluster's own objects.
 *
 *   kubernetes [istio|linkerd [VERSION]]
 *
 * The cluster is the current context of $KUBECONFIG (else ~/.kube/config); its Services
 * payment, payment-v1 and payment-v2 (labels app: payment, and version: v1 / v2) must exist. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mesh/mesh.h>

/* In a cluster the split is for calls inside the mesh: the host is the app's Service (Linkerd
 * attaches routes to Services only). */
static struct mesh_virtual_service *payment_service(void)
{
    struct mesh_virtual_service *vs = mesh_virtual_service_new("payment-service", "default");
    struct mesh_http_route *route = vs ? mesh_virtual_service_add_route(vs, "primary") : NULL;

    if (!route || mesh_string_list_add(&vs->hosts, "payment") != MESH_OK ||
        !mesh_http_route_add_match(route, "/api/v1/*") ||
        !mesh_http_route_add_destination(route, "payment-v1", 90) ||
        !mesh_http_route_add_destination(route, "payment-v2", 10)) {
        mesh_virtual_service_free(vs);
        return NULL;
    }
    return vs;
}

static void print_virtual_service(const struct mesh_virtual_service *vs)
{
    printf("VirtualService %s/%s\n", mesh_resource_namespace(&vs->res), vs->res.name);
    for (size_t i = 0; i < vs->hosts.len; i++)
        printf("  host %s\n", vs->hosts.items[i]);
    for (size_t r = 0; r < vs->n_http_routes; r++) {
        const struct mesh_http_route *route = &vs->http_routes[r];
        printf("  route %s ->", route->name ? route->name : "(unnamed)");
        for (size_t d = 0; d < route->n_destinations; d++)
            printf("%s %s %d%%", d ? "," : "", route->destinations[d].host,
                   route->destinations[d].weight);
        printf("\n");
    }
}

/* The seed's configure_circuit_breaker("payment-service", ...). */
static enum mesh_err configure_breaker(struct mesh *mesh)
{
    struct mesh_circuit_breaker_config cb = MESH_CIRCUIT_BREAKER_CONFIG_INIT;
    cb.max_connections = 100;
    cb.max_pending_requests = 100;
    cb.max_requests = 1000;
    cb.max_retries = 3;
    cb.detection.consecutive_errors = 5;
    cb.detection.interval_ms = 10000;
    cb.detection.base_ejection_time_ms = 30000;
    return mesh_configure_circuit_breaker(mesh, "payment-service", &cb);
}

int main(int argc, char **argv)
{
    struct mesh_config cfg = {.provider = argc > 1 ? argv[1] : "istio",
                              .version = argc > 2 ? argv[2] : NULL,
                              .allow_partial = argc > 1 && strcmp(argv[1], "linkerd") == 0};
    struct mesh *mesh = NULL;
    struct mesh_virtual_service *vs = payment_service(), *back = NULL;
    char *why = NULL;
    int rc = 1;

    if (!vs) {
        fprintf(stderr, "kubernetes: out of memory\n");
        return 1;
    }
    if (mesh_new_verbose(&cfg, &mesh, &why) != MESH_OK) {
        fprintf(stderr, "kubernetes: %s\n", why ? why : "cannot open the mesh");
        goto out;
    }
    if (mesh_apply_virtual_service(mesh, vs) != MESH_OK || configure_breaker(mesh) != MESH_OK ||
        mesh_get_virtual_service(mesh, "payment-service", "default", &back) != MESH_OK) {
        fprintf(stderr, "kubernetes: %s\n", mesh_last_error(mesh));
        goto out;
    }
    printf("applied to the cluster through provider %s; read back:\n", mesh_provider_name(mesh));
    print_virtual_service(back);
    rc = 0;
out:
    mesh_virtual_service_free(back);
    mesh_virtual_service_free(vs);
    mesh_free(mesh);
    free(why);
    return rc;
}
