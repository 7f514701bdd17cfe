/* SPDX-License-Identifier: Apache-2.0 */
/* Service: a named set of endpoints that destinations route to. */
#ifndef MESH_SERVICE_H
#define MESH_SERVICE_H

#include "resource.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The label meshd puts on an endpoint that is a registered sidecar's inbound listener: calls to
 * it may use mesh mTLS (a static endpoint is a plain server outside the mesh). */
#define MESH_LABEL_SIDECAR "mesh.clusterdb.io/sidecar"

struct mesh_endpoint {
    char *address;             /* "host:port", "[v6]:port" */
    struct mesh_labels labels; /* e.g. version: v2 */
};

struct mesh_service {
    struct mesh_resource res; /* kind MESH_KIND_SERVICE */
    char *protocol;           /* http (default), http2, grpc, tcp */
    char *load_balancer;      /* least_request (default), round_robin, random */
    struct mesh_endpoint *endpoints;
    size_t n_endpoints;
};

struct mesh_service *mesh_service_new(const char *name, const char *ns);
void mesh_service_free(struct mesh_service *svc);
struct mesh_endpoint *mesh_service_add_endpoint(struct mesh_service *svc, const char *address);

#ifdef __cplusplus
}
#endif
#endif
