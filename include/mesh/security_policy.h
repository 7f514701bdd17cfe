/* SPDX-License-Identifier: Apache-2.0 */
/* SecurityPolicy: mutual TLS mode and authorization rules for services. */
#ifndef MESH_SECURITY_POLICY_H
#define MESH_SECURITY_POLICY_H

#include "resource.h"

#ifdef __cplusplus
extern "C" {
#endif

enum mesh_mtls_mode {
    MESH_MTLS_UNSET = 0,
    MESH_MTLS_STRICT,
    MESH_MTLS_PERMISSIVE,
    MESH_MTLS_DISABLE,
};

struct mesh_mtls {
    enum mesh_mtls_mode mode;
    char *certificate_authority; /* NULL = the mesh CA */
};

struct mesh_authorization_rule {
    struct mesh_string_list from; /* identities: orders.default.svc, orders.default, spiffe://… */
    struct mesh_string_list to;   /* services this rule covers */
    struct mesh_string_list methods; /* HTTP methods; empty = any */
    struct mesh_string_list paths;   /* exact, or prefix ending in '*'; empty = any */
};

struct mesh_security_policy {
    struct mesh_resource res;         /* kind MESH_KIND_SECURITY_POLICY */
    struct mesh_string_list services; /* what mtls covers; empty = the whole namespace */
    struct mesh_mtls mtls;
    struct mesh_authorization_rule *authorization;
    size_t n_authorization;
};

struct mesh_security_policy *mesh_security_policy_new(const char *name, const char *ns);
void mesh_security_policy_free(struct mesh_security_policy *sp);
/* Adds an empty rule to fill with mesh_string_list_add(). NULL on allocation failure. */
struct mesh_authorization_rule *mesh_security_policy_add_rule(struct mesh_security_policy *sp);

/* "strict" for MESH_MTLS_STRICT; NULL for MESH_MTLS_UNSET. */
const char *mesh_mtls_mode_name(enum mesh_mtls_mode mode);

#ifdef __cplusplus
}
#endif
#endif
