/* SPDX-License-Identifier: Apache-2.0 */
/* Service: protocol and endpoints ("127.0.0.1:18081" or {address, labels}). */
#include <stdlib.h>
#include <string.h>

#include "kinds.h"
#include "mesh/service.h"

static const struct mesh_field endpoint_fields[] = {
    {.name = "address",
     .type = MESH_F_STRING,
     .offset = offsetof(struct mesh_endpoint, address),
     .check = MESH_CHECK_ADDRESS,
     .required = true},
    {.name = "labels", .type = MESH_F_LABELS, .offset = offsetof(struct mesh_endpoint, labels)},
};

/* shorthand 0: an endpoint may be written as its address alone. */
static const struct mesh_schema endpoint_schema = {sizeof(struct mesh_endpoint),
                                                   MESH_FIELDS(endpoint_fields), 0, NULL};

static const struct mesh_field service_fields[] = {
    {.name = "protocol",
     .type = MESH_F_STRING,
     .offset = offsetof(struct mesh_service, protocol),
     .check = MESH_CHECK_PROTOCOL},
    {.name = "load_balancer",
     .type = MESH_F_STRING,
     .offset = offsetof(struct mesh_service, load_balancer),
     .check = MESH_CHECK_LB_POLICY},
    {.name = "endpoints",
     .type = MESH_F_OBJECTS,
     .offset = offsetof(struct mesh_service, endpoints),
     .count_offset = offsetof(struct mesh_service, n_endpoints),
     .schema = &endpoint_schema},
};

const struct mesh_schema mesh_service_schema = {sizeof(struct mesh_service),
                                                MESH_FIELDS(service_fields), -1, NULL};

struct mesh_service *mesh_service_new(const char *name, const char *ns)
{
    return (struct mesh_service *)mesh_resource_new(MESH_KIND_SERVICE, name, ns);
}

void mesh_service_free(struct mesh_service *svc)
{
    mesh_resource_free(svc ? &svc->res : NULL);
}

struct mesh_endpoint *mesh_service_add_endpoint(struct mesh_service *svc, const char *address)
{
    struct mesh_endpoint *ep =
        mesh_schema_append((void **)&svc->endpoints, &svc->n_endpoints, &endpoint_schema);
    if (ep && !(ep->address = strdup(address))) {
        svc->n_endpoints--;
        return NULL;
    }
    return ep;
}
