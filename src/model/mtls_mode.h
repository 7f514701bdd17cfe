/* SPDX-License-Identifier: Apache-2.0 */
/* How SecurityPolicies decide a service's mTLS mode (docs/security.md, "How policies apply"):
 * one reading shared by the proxy (its listeners and calls), meshd's analyzer and the Istio
 * translator, so that all three understand a policy the same way.
 *
 * A policy with mtls.mode covers the services its `services` names (a name also names every
 * Service of that namespace labelled app: name), or its whole namespace without `services`. A
 * policy naming the service beats a namespace-wide one; among equals the strictest wins (strict >
 * permissive > disable), then the first by namespace and name. Without one, the mesh's default:
 * permissive, or disable when the native MeshConfig (the first whose provider is native or
 * unset) says mtls.enabled: false. */
#ifndef MESH_MODEL_MTLS_MODE_H
#define MESH_MODEL_MTLS_MODE_H

#include <stdbool.h>
#include <stddef.h>

#include "mesh/resource.h"
#include "mesh/security_policy.h"

/* Whether host, an item of `services` or of a rule's `to` in a policy of policy_ns, names service
 * in ns: the Service of that name, or one labelled app: that name (res holds the Services). */
bool mesh_security_host_names(struct mesh_resource *const *res, size_t n, const char *host,
                              const char *policy_ns, const char *service, const char *ns);

/* strict 3 > permissive 2 > disable 1; 0 for anything else (unset, or a value out of range). */
int mesh_mtls_strictness(enum mesh_mtls_mode mode);

/* The policy that decides the mode of service in ns (NULL ns: "default"), or NULL when none
 * covers it. Borrowed from res. */
const struct mesh_security_policy *mesh_security_deciding_policy(struct mesh_resource *const *res,
                                                                 size_t n, const char *service,
                                                                 const char *ns);

/* The mode of service in ns: its deciding policy's, else the mesh's default. Never UNSET. */
enum mesh_mtls_mode mesh_security_mode(struct mesh_resource *const *res, size_t n,
                                       const char *service, const char *ns);

/* Whether calls to a sidecar of that service use mTLS: always for strict; for permissive while
 * the native MeshConfig's mtls.auto_upgrade and mtls.enabled are not false; never for disable. */
bool mesh_security_outbound_mtls(struct mesh_resource *const *res, size_t n, const char *service,
                                 const char *ns);

#endif
