/* SPDX-License-Identifier: Apache-2.0 */
/* Example: the seed's traffic splits (payment-service 90/10, web-service 80/20) through libmesh. */
#include <stdio.h>
#include <stdlib.h>

#include <mesh/mesh.h>

/* The seed's "Traffic Management" VirtualService: of the requests whose path matches the glob
 * /api/v1/<anything>, 90% go to payment-v1 and 10% to payment-v2. (The seed's default_headers()
 * adds no header condition here.) */
static struct mesh_virtual_service *payment_service(void)
{
    struct mesh_virtual_service *vs = mesh_virtual_service_new("payment-service", "default");
    struct mesh_http_route *route = vs ? mesh_virtual_service_add_route(vs, "primary") : NULL;

    if (!route || mesh_string_list_add(&vs->hosts, "payment.example.com") != MESH_OK ||
        mesh_string_list_add(&vs->gateways, "external-gateway") != MESH_OK ||
        !mesh_http_route_add_match(route, "/api/v1/*") ||
        !mesh_http_route_add_destination(route, "payment-v1", 90) ||
        !mesh_http_route_add_destination(route, "payment-v2", 10)) {
        mesh_virtual_service_free(vs);
        return NULL;
    }
    return vs;
}

/* The seed's "Traffic Splitting" example: /api/v1 on web.example.com, 80% v1 and 20% v2. */
static struct mesh_virtual_service *web_service(void)
{
    struct mesh_virtual_service *vs = mesh_virtual_service_new("web-service", "default");
    struct mesh_http_route *route = vs ? mesh_virtual_service_add_route(vs, NULL) : NULL;

    if (!route || mesh_string_list_add(&vs->hosts, "web.example.com") != MESH_OK ||
        !mesh_http_route_add_match(route, "/api/v1") ||
        !mesh_http_route_add_destination(route, "web-v1", 80) ||
        !mesh_http_route_add_destination(route, "web-v2", 20)) {
        mesh_virtual_service_free(vs);
        return NULL;
    }
    return vs;
}

static void print_route(const struct mesh_http_route *route)
{
    printf("  route %s:", route->name ? route->name : "(unnamed)");
    for (size_t i = 0; i < route->n_matches; i++)
        printf(" %s", route->matches[i].path.value ? route->matches[i].path.value : "*");
    printf(" ->");
    for (size_t i = 0; i < route->n_destinations; i++)
        printf("%s %s %d%%", i ? "," : "", route->destinations[i].host,
               route->destinations[i].weight);
    printf("\n");
}

static void print_virtual_service(const struct mesh_virtual_service *vs)
{
    printf("VirtualService %s/%s (resource_version %llu, generation %llu)\n",
           mesh_resource_namespace(&vs->res), vs->res.name,
           (unsigned long long)vs->res.resource_version, (unsigned long long)vs->res.generation);
    for (size_t i = 0; i < vs->hosts.len; i++)
        printf("  host %s\n", vs->hosts.items[i]);
    for (size_t i = 0; i < vs->gateways.len; i++)
        printf("  gateway %s\n", vs->gateways.items[i]);
    for (size_t i = 0; i < vs->n_http_routes; i++)
        print_route(&vs->http_routes[i]);
}

/* Applies vs, then reads it back from the store and prints it. */
static int apply_and_show(struct mesh *mesh, struct mesh_virtual_service *vs)
{
    struct mesh_virtual_service *stored = NULL;

    if (!vs) {
        fprintf(stderr, "traffic_split: out of memory\n");
        return 1;
    }
    if (mesh_apply_virtual_service(mesh, vs) != MESH_OK ||
        mesh_get_virtual_service(mesh, vs->res.name, vs->res.ns, &stored) != MESH_OK) {
        fprintf(stderr, "traffic_split: %s\n", mesh_last_error(mesh));
        mesh_virtual_service_free(vs);
        return 1;
    }
    print_virtual_service(stored);
    mesh_virtual_service_free(stored);
    mesh_virtual_service_free(vs);
    return 0;
}

int main(int argc, char **argv)
{
    /* NULL store_dir: libmesh falls back to $MESH_STORE, then ./.mesh. */
    struct mesh_config cfg = {.provider = "native", .store_dir = argc > 1 ? argv[1] : NULL};
    struct mesh *mesh = NULL;
    char *why = NULL;

    if (mesh_new_verbose(&cfg, &mesh, &why) != MESH_OK) {
        fprintf(stderr, "traffic_split: %s\n", why ? why : "cannot open the mesh");
        free(why);
        return 1;
    }
    int rc = apply_and_show(mesh, payment_service());
    if (rc == 0)
        rc = apply_and_show(mesh, web_service());
    mesh_free(mesh);
    return rc;
}
