/* SPDX-License-Identifier: Apache-2.0 */
/* How every part of the mesh reads a service host (a destination, a policy's services and to,
 * a short identity): "name" in the namespace of the document that says it, "name.ns",
 * "name.ns.svc" or "name.ns.svc.cluster.local", as Kubernetes DNS spells a Service. */
#ifndef MESH_MODEL_SERVICE_HOST_H
#define MESH_MODEL_SERVICE_HOST_H

#include <stdbool.h>
#include <stddef.h>

/* A Service named by a host: spans of the host (or of default_ns), not NUL-terminated. */
struct mesh_service_ref {
    const char *name;
    size_t name_len;
    const char *ns;
    size_t ns_len;
};

/* Reads host as a Service in *out. "name" alone is in default_ns (refused when default_ns is
 * NULL: identities always carry their namespace). False for any other dotted form (an ordinary
 * DNS name, which names no Service) and for an empty name or namespace. Allocates nothing. */
bool mesh_service_host_split(const char *host, const char *default_ns,
                             struct mesh_service_ref *out);

/* Whether ref names Service name in namespace ns. */
bool mesh_service_ref_is(const struct mesh_service_ref *ref, const char *name, const char *ns);

#endif
