/* SPDX-License-Identifier: Apache-2.0 */
/* Example: the seed's fault injection on web-service (100ms delay, 503 for 10%) via libmesh. */
#include <stdio.h>
#include <stdlib.h>

#include <mesh/mesh.h>

static void print_fault_injection(const struct mesh_fault_injection *fi)
{
    const struct mesh_fault *f = &fi->fault;

    printf("FaultInjection %s/%s for service %s (resource_version %llu)\n",
           mesh_resource_namespace(&fi->res), fi->res.name, fi->service,
           (unsigned long long)fi->res.resource_version);
    if (f->delay_ms)
        printf("  delay %llums for %g%% of requests\n", (unsigned long long)f->delay_ms,
               f->delay_percentage == MESH_UNSET ? 100.0 : f->delay_percentage);
    if (f->abort.http_status)
        printf("  abort with %d for %g%% of requests\n", f->abort.http_status,
               f->abort.percentage == MESH_UNSET ? 100.0 : f->abort.percentage);
}

int main(int argc, char **argv)
{
    /* NULL store_dir: libmesh falls back to $MESH_STORE, then ./.mesh. */
    struct mesh_config cfg = {.provider = "native", .store_dir = argc > 1 ? argv[1] : NULL};
    /* The seed gives the delay no percentage: it applies to every request. */
    struct mesh_fault fault = {
        .delay_ms = 100,
        .delay_percentage = MESH_UNSET,
        .abort = {.http_status = 503, .percentage = 10.0},
    };
    struct mesh *mesh = NULL;
    struct mesh_resource *stored = NULL;
    char *why = NULL;
    int rc = 1;

    if (mesh_new_verbose(&cfg, &mesh, &why) != MESH_OK) {
        fprintf(stderr, "fault_injection: %s\n", why ? why : "cannot open the mesh");
        goto out;
    }
    if (mesh_inject_fault(mesh, "web-service", &fault) != MESH_OK ||
        mesh_get(mesh, MESH_KIND_FAULT_INJECTION, "web-service", NULL, &stored) != MESH_OK) {
        fprintf(stderr, "fault_injection: %s\n", mesh_last_error(mesh));
        goto out;
    }
    /* mesh_get hands back the kind asked for, so this is a FaultInjection. */
    print_fault_injection((const struct mesh_fault_injection *)stored);
    rc = 0;
out:
    mesh_resource_free(stored);
    mesh_free(mesh);
    free(why);
    return rc;
}
