/* SPDX-License-Identifier: Apache-2.0 */
/* Example: the seed's circuit breaker for payment-service, configured through libmesh. */
#include <stdio.h>
#include <stdlib.h>

#include <mesh/mesh.h>

static void print_circuit_breaker(const struct mesh_circuit_breaker *cb)
{
    const struct mesh_circuit_breaker_config *c = &cb->config;

    printf("CircuitBreaker %s/%s for service %s (resource_version %llu)\n",
           mesh_resource_namespace(&cb->res), cb->res.name, cb->service,
           (unsigned long long)cb->res.resource_version);
    printf("  max_connections %u, max_pending_requests %u, max_requests %u, max_retries %u\n",
           (unsigned)c->max_connections, (unsigned)c->max_pending_requests,
           (unsigned)c->max_requests, (unsigned)c->max_retries);
    printf("  eject after %u consecutive errors, interval %llums, base_ejection_time %llums\n",
           (unsigned)c->detection.consecutive_errors, (unsigned long long)c->detection.interval_ms,
           (unsigned long long)c->detection.base_ejection_time_ms);
}

int main(int argc, char **argv)
{
    /* NULL store_dir: libmesh falls back to $MESH_STORE, then ./.mesh. */
    struct mesh_config cfg = {.provider = "native", .store_dir = argc > 1 ? argv[1] : NULL};
    /* The seed's CircuitBreakerConfig; it sets no max_ejection_percent, so leave it unset. */
    struct mesh_circuit_breaker_config breaker = {
        .max_connections = 100,
        .max_pending_requests = 100,
        .max_requests = 1000,
        .max_retries = 3,
        .detection =
            {
                .consecutive_errors = 5,
                .interval_ms = 10 * 1000,
                .base_ejection_time_ms = 30 * 1000,
                .max_ejection_percent = MESH_UNSET,
            },
    };
    struct mesh *mesh = NULL;
    struct mesh_resource *stored = NULL;
    char *why = NULL;
    int rc = 1;

    if (mesh_new_verbose(&cfg, &mesh, &why) != MESH_OK) {
        fprintf(stderr, "circuit_breaker: %s\n", why ? why : "cannot open the mesh");
        goto out;
    }
    if (mesh_configure_circuit_breaker(mesh, "payment-service", &breaker) != MESH_OK ||
        mesh_get(mesh, MESH_KIND_CIRCUIT_BREAKER, "payment-service", NULL, &stored) != MESH_OK) {
        fprintf(stderr, "circuit_breaker: %s\n", mesh_last_error(mesh));
        goto out;
    }
    /* mesh_get hands back the kind asked for, so this is a CircuitBreaker. */
    print_circuit_breaker((const struct mesh_circuit_breaker *)stored);
    rc = 0;
out:
    mesh_resource_free(stored);
    mesh_free(mesh);
    free(why);
    return rc;
}
