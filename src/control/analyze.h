/* SPDX-License-Identifier: Apache-2.0 */
/* Static analysis of a set of resources (and, when known, the live registry), as `meshctl
 * analyze` reports it: problems that validation of one document cannot see. Pure: no I/O. */
#ifndef MESH_CONTROL_ANALYZE_H
#define MESH_CONTROL_ANALYZE_H

#include <stdbool.h>
#include <stddef.h>

#include "mesh/err.h"
#include "mesh/resource.h"
#include "model/node.h"
#include "registry.h"

enum mesh_severity {
    MESH_SEVERITY_ERROR = 0, /* traffic does not go where the config says: exit status 1 */
    MESH_SEVERITY_WARNING,   /* part of the config does nothing */
};

enum mesh_finding_code {
    /* A destination names a Service that has no endpoint: no Service resource and no registered
     * sidecar, or (with a registry) a Service without static endpoints or sidecars. */
    MESH_FINDING_SERVICE_NOT_FOUND = 0,
    /* Two VirtualServices claim one host for the same proxies: only one of them is used. */
    MESH_FINDING_HOST_CONFLICT,
    /* An earlier route of the same VirtualService matches every request a route matches. */
    MESH_FINDING_UNREACHABLE_ROUTE,
    /* (With a registry) a VirtualService names a gateway no registered gateway proxy serves. */
    MESH_FINDING_GATEWAY_NOT_FOUND,
    /* A CircuitBreaker, FaultInjection or SecurityPolicy names a service (or route) that does
     * not exist. */
    MESH_FINDING_POLICY_TARGET_NOT_FOUND,
    /* (With meshd's CA list) a SecurityPolicy names a certificate_authority meshd does not
     * have: meshd's own root signs for those services instead. */
    MESH_FINDING_CA_NOT_FOUND,
    /* An authorization rule admits only identities, for a service its callers reach in
     * plaintext (mtls disable, or permissive without auto_upgrade): no caller has an identity
     * there, so the rule never matches and the service denies every request. */
    MESH_FINDING_AUTHZ_WITHOUT_MTLS,
    MESH_FINDING_COUNT,
};

struct mesh_finding {
    enum mesh_finding_code code;
    enum mesh_severity severity;
    size_t resource; /* index of the resource in the analysed array */
    char *path;      /* field path inside it (spec.http_routes[1]); "" = the whole resource */
    char *message;   /* what is wrong and how to fix it, one sentence or two */
};

struct mesh_findings {
    struct mesh_finding *items; /* by resource index, then in the order found */
    size_t len, cap;
};

/* What a running meshd knows besides the resources; a NULL member is not known (a file
 * analysed before applying, an embedded store), and the checks that need it are then skipped
 * or relaxed. */
struct mesh_analyze_live {
    const struct mesh_registry *reg; /* the live registry: endpoints, gateway proxies */
    const char *const *ca_names;     /* meshd's CAs ("mesh-root", each --ca NAME), NULL-ended */
};

/* Analyses res[0..n) (valid resources, any order, each key at most once) with what live says
 * (NULL: nothing is known). out must be zeroed; the findings are appended (free with
 * mesh_findings_clear). MESH_OK, or MESH_E_NOMEM. Any thread, as long as nothing changes res or
 * live meanwhile. */
enum mesh_err mesh_analyze(const struct mesh_resource *const *res, size_t n,
                           const struct mesh_analyze_live *live, struct mesh_findings *out);

void mesh_findings_clear(struct mesh_findings *f);

/* How many findings of severity sev f holds. */
size_t mesh_findings_count(const struct mesh_findings *f, enum mesh_severity sev);

/* "MESH0101" and "ServiceNotFound" for a code; "Error" / "Warning" for a severity. Static. */
const char *mesh_finding_code_id(enum mesh_finding_code code);
const char *mesh_finding_code_name(enum mesh_finding_code code);
const char *mesh_severity_name(enum mesh_severity sev);

/* Where field path (as in mesh_finding.path) was written in the document tree root: the
 * position of the deepest node of the path that exists (root's own when none does). False when
 * no position is known (a tree built in code). */
bool mesh_analyze_locate(const struct mesh_node *root, const char *path, unsigned *line,
                         unsigned *col);

#endif
