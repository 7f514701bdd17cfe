/* SPDX-License-Identifier: Apache-2.0 */
/* What `meshctl explain` finds for one request: the virtual host and route the proxy's own router
 * picks from a compiled snapshot, the policies behind them, and why nothing matched when nothing
 * did. */
#ifndef MESH_CLI_EXPLAIN_H
#define MESH_CLI_EXPLAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "mesh/mesh.h"
#include "proxy/snapshot.h"

/* One route the router tried and passed over. */
struct cli_explain_miss {
    size_t index; /* in the virtual host's routes */
    char *why;    /* why it did not match: one clause per failed condition */
};

/* A VirtualService outside the proxy's view that lists the request's host: the reason a host
 * finds nothing is often that it is served by a gateway, not by sidecars (or the reverse). */
struct cli_explain_elsewhere {
    const struct mesh_virtual_service *vs; /* borrowed from all_res */
    const char *pattern;                   /* the host of vs that matches */
};

struct cli_explain {
    /* inputs, borrowed for the life of the struct */
    const struct mesh_snapshot *snap;     /* its res[] are the documents it was compiled from */
    struct mesh_resource *const *all_res; /* every resource, also those outside the view */
    size_t n_all_res;
    const struct mesh_h1_message *req;

    /* the outcome */
    struct mesh_slice host;                    /* the Host without its port */
    const struct mesh_vhost *vhost;            /* NULL: no virtual host serves host */
    const struct mesh_virtual_service *vs;     /* behind vhost; NULL when host names a Service */
    const char *host_pattern;                  /* the host that matched: exact, *.x or * */
    const struct mesh_route_rt *route;         /* NULL: no route matched */
    const struct mesh_http_route *route_model; /* route as written; NULL for a Service host */
    size_t route_index;
    int match_index;                          /* the match entry that matched; -1 when none */
    const struct mesh_fault_injection *fault; /* behind route->fault, when route->has_fault */
    struct cli_explain_miss *misses; /* routes before route (every route when none matched) */
    size_t n_misses;
    size_t *shadowed; /* later routes that match too: this request never reaches them */
    size_t n_shadowed;
    struct cli_explain_elsewhere *elsewhere; /* when vhost is NULL */
    size_t n_elsewhere;
};

/* Routes x->req through x->snap with mesh_snapshot_find_vhost and mesh_vhost_match, as a worker
 * does, then works out the reasons. The input fields must be set; the rest is overwritten. Free
 * with cli_explain_free. Aborts on allocation failure (CLI). */
void cli_explain_run(struct cli_explain *x);
void cli_explain_free(struct cli_explain *x);

/* The conditions of a match entry as text: "path prefix /api/, method POST, header x exact
 * \"1\"" ("any request" when it has none). Caller frees. */
char *cli_explain_match_text(const struct mesh_route_match *m);

/* The resources of kind (CircuitBreaker or FaultInjection) in x->snap->res that the snapshot
 * applied to cluster c, in the order applied (for a CircuitBreaker the last one's limits win). *out
 * (caller frees the array, not the resources) holds *n borrowed pointers. */
void cli_explain_policies(const struct cli_explain *x, enum mesh_kind kind,
                          const struct mesh_cluster *c, const struct mesh_resource ***out,
                          size_t *n);

#endif
