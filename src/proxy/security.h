/* SPDX-License-Identifier: Apache-2.0 */
/* What the SecurityPolicies and the MeshConfig of a snapshot mean for one proxy: the mTLS mode of
 * a service's inbound listener, whether outbound calls to a service use mTLS, and the
 * authorization rules a sidecar's inbound side enforces. Built once per snapshot (control
 * thread); read by the workers without locks (immutable once built).
 *
 * Naming services and identities (docs/security.md):
 *  - A service host in `services` or `to` is "name", "name.namespace" or "name.namespace.svc"
 *    ("name" alone: the policy's namespace). It names the Service of that name, and also every
 *    Service of that namespace labelled app: name (payment names payment-v1 and payment-v2).
 *  - An identity in `from` is "name.namespace", "name.namespace.svc", a full SPIFFE ID
 *    "spiffe://TD/ns/NS/sa/NAME", or "*" (any peer, plaintext included). The short forms name
 *    the sidecars of that service or app in that namespace, in any trust domain the proxy trusts
 *    (the chain was verified against its bundle); a SPIFFE ID names exactly itself.
 *
 * mTLS modes and outbound mTLS: model/mtls_mode.h, shared with meshd's analyzer and the Istio
 * translator.
 *
 * Authorization of service S: the rules (of every SecurityPolicy) whose `to` names S. None: every
 * request is allowed. Otherwise a request is allowed when one of them matches all of: `from`
 * (the peer's identity; empty = anyone), `methods` (empty = any), `paths` (empty = any; "*" any;
 * one ending in '*' a prefix, as "/api/" then '*'; else exact; the request path without its
 * query). Else denied. */
#ifndef MESH_PROXY_SECURITY_H
#define MESH_PROXY_SECURITY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/slice.h"
#include "mesh/err.h"
#include "mesh/resource.h"
#include "mesh/security_policy.h"
#include "model/mtls_mode.h" /* mesh_security_mode, mesh_security_outbound_mtls */

/* One authorization rule, resolved for the service it protects. */
struct mesh_authz_rule_rt {
    char *name; /* "default/payment-security#0": policy namespace/name, rule index (metrics) */
    /* Who may call: "ns/name" for every service the short forms name (apps expanded to their
     * Services, and the name itself), full SPIFFE IDs as written, "*". Empty: anyone. */
    char **from;
    size_t n_from;
    char **methods; /* empty: any */
    size_t n_methods;
    char **paths; /* as written: "/x", a prefix ending in '*', "*"; empty: any */
    size_t n_paths;
};

/* A sidecar's inbound side: its mode and its authorization. */
struct mesh_inbound_policy {
    enum mesh_mtls_mode mode; /* never MESH_MTLS_UNSET */
    char *mode_source;        /* "default/payment-security", or "mesh default" */
    bool authz;               /* some rule names this service: deny unless one matches */
    struct mesh_authz_rule_rt *rules;
    size_t n_rules;
};

/* The inbound policy of service `service` in namespace `ns`, from a snapshot's documents (any
 * kinds; only SecurityPolicy, Service and MeshConfig are read). MESH_E_NOMEM. *out is cleared
 * first; free it with mesh_inbound_policy_clear. */
enum mesh_err mesh_inbound_policy_build(struct mesh_resource *const *res, size_t n,
                                        const char *service, const char *ns,
                                        struct mesh_inbound_policy *out);
void mesh_inbound_policy_clear(struct mesh_inbound_policy *p);

/* "orders.default" for "spiffe://cluster.local/ns/default/sa/orders" (a SPIFFE ID of another
 * shape is written as it is), "unauthenticated" for NULL: the source label of metrics and logs.
 * Writes at most size bytes, NUL-terminated. */
void mesh_authz_source(const char *peer_id, char *out, size_t size);

/* The decision for one request on p's service. peer_id: the SPIFFE ID of the peer's verified
 * certificate, NULL for a plaintext client. True: allowed; *rule is the name of the rule that
 * allowed it, or "none" when p has no authorization. False: denied; *rule is "default-deny".
 * Never allocates. */
bool mesh_authz_check(const struct mesh_inbound_policy *p, const char *peer_id,
                      struct mesh_slice method, struct mesh_slice path, const char **rule);

#endif
