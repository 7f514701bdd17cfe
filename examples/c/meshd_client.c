/* SPDX-License-Identifier: Apache-2.0 */
/* Example: libmesh talking to a running meshd (mesh_config.server) instead of an embedded store:
 * apply the seed's payment-service split, read it back, change it, list, then delete it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mesh/mesh.h>

/* payment-service: /api/v1/<anything> on payment.example.com, v1_weight% to payment-v1 and the
 * rest to payment-v2. */
static struct mesh_virtual_service *payment_service(int v1_weight)
{
    struct mesh_virtual_service *vs = mesh_virtual_service_new("payment-service", "default");
    struct mesh_http_route *route = vs ? mesh_virtual_service_add_route(vs, "primary") : NULL;

    if (!route || mesh_string_list_add(&vs->hosts, "payment.example.com") != MESH_OK ||
        !mesh_http_route_add_match(route, "/api/v1/*") ||
        !mesh_http_route_add_destination(route, "payment-v1", v1_weight) ||
        !mesh_http_route_add_destination(route, "payment-v2", 100 - v1_weight)) {
        mesh_virtual_service_free(vs);
        return NULL;
    }
    return vs;
}

static void print_split(const char *when, const struct mesh_virtual_service *vs)
{
    const struct mesh_http_route *route = &vs->http_routes[0];
    printf("%s: %s/%s generation %llu:", when, mesh_resource_namespace(&vs->res), vs->res.name,
           (unsigned long long)vs->res.generation);
    for (size_t i = 0; i < route->n_destinations; i++)
        printf(" %s=%d", route->destinations[i].host, route->destinations[i].weight);
    printf("\n");
}

/* Applies the split with v1_weight, reads it back from meshd and prints it. */
static enum mesh_err apply_split(struct mesh *mesh, int v1_weight, const char *when)
{
    struct mesh_virtual_service *vs = payment_service(v1_weight), *stored = NULL;
    enum mesh_err err = MESH_E_NOMEM;

    if (!vs)
        goto out;
    err = mesh_apply_virtual_service(mesh, vs);
    if (err != MESH_OK)
        goto out;
    err = mesh_get_virtual_service(mesh, "payment-service", "default", &stored);
    if (err != MESH_OK)
        goto out;
    print_split(when, stored);
out:
    mesh_virtual_service_free(stored);
    mesh_virtual_service_free(vs);
    return err;
}

int main(int argc, char **argv)
{
    /* The token: NULL lets libmesh read $MESH_TOKEN_FILE (meshd's DATA_DIR/token), else
     * $MESH_TOKEN. */
    struct mesh_config cfg = {
        .provider = "native",
        .server = argc > 1 ? argv[1] : "http://127.0.0.1:15010",
        .token = NULL,
    };
    struct mesh_virtual_service **list = NULL;
    struct mesh *mesh = NULL;
    size_t n = 0;
    char *why = NULL;

    if (mesh_new_verbose(&cfg, &mesh, &why) != MESH_OK) {
        fprintf(stderr, "meshd_client: %s\n", why ? why : "cannot open the mesh");
        free(why);
        return 1;
    }
    if (apply_split(mesh, 90, "applied") != MESH_OK || apply_split(mesh, 50, "changed") != MESH_OK)
        goto fail;
    if (mesh_list_virtual_services(mesh, NULL, &list, &n) != MESH_OK)
        goto fail;
    printf("listed %zu VirtualService(s)\n", n);
    mesh_virtual_service_list_free(list, n);
    if (mesh_delete_virtual_service(mesh, "payment-service", NULL) != MESH_OK)
        goto fail;
    struct mesh_virtual_service *gone = NULL;
    enum mesh_err err = mesh_get_virtual_service(mesh, "payment-service", NULL, &gone);
    printf("after delete: %s (%s)\n", mesh_err_name(err), mesh_last_error(mesh));
    mesh_virtual_service_free(gone);
    mesh_free(mesh);
    return err == MESH_E_NOTFOUND ? 0 : 1;
fail:
    fprintf(stderr, "meshd_client: %s\n", mesh_last_error(mesh));
    mesh_free(mesh);
    return 1;
}
