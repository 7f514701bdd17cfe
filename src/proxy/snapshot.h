/* SPDX-License-Identifier: Apache-2.0 */
/* The compiled, immutable proxy configuration: virtual hosts, routes, clusters and endpoints,
 * built from resource documents by the main thread and shared read-only by every worker. */
#ifndef MESH_PROXY_SNAPSHOT_H
#define MESH_PROXY_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "balancer.h"
#include "breaker.h"
#include "core/slice.h"
#include "fault.h"
#include "http/h1_parse.h"
#include "mesh/mesh.h"
#include "outlier.h"
#include "route_match.h"
#include "security.h"
#include "trace_config.h"

#define MESH_RETRY_ON_5XX             0x1u
#define MESH_RETRY_ON_GATEWAY_ERROR   0x2u
#define MESH_RETRY_ON_RESET           0x4u
#define MESH_RETRY_ON_CONNECT_FAILURE 0x8u

struct mesh_endpoint_rt {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char name[64];                    /* "127.0.0.1:18081": metrics label and keep-alive pool key */
    uint32_t id;                      /* dense over the snapshot: index of per-worker arrays */
    const struct mesh_labels *labels; /* the Service document's, in the snapshot's copy */
    bool sidecar; /* a sidecar's inbound listener (MESH_LABEL_SIDECAR): mTLS may apply */
};

/* What must survive a reload, shared by every worker and every snapshot that names the same
 * service with the same endpoints: breaker counters and outlier state. */
struct mesh_cluster_state {
    atomic_uint refs;
    char *key;     /* "payment-v1.default|127.0.0.1:18081,..." */
    char *service; /* "payment-v1": the service label of its metrics */
    size_t n_endpoints;
    /* Requests in flight per endpoint, over every worker (the balancer's counts are per worker):
     * what /config_dump shows. Relaxed atomic adds, like the breaker's counters beside it. */
    _Atomic uint32_t *active;
    struct mesh_breaker breaker;
    struct mesh_outlier_cluster outlier;
    struct mesh_outlier_config outlier_cfg; /* of the newest snapshot; main thread */
    uint64_t next_sweep_ms;                 /* main thread */
    struct mesh_cluster_state *next;        /* in the registry of live states */
};

struct mesh_cluster {
    const struct mesh_service *src; /* the document, in the snapshot's copy */
    char *name;                     /* "payment-v1" */
    char *ns;                       /* "default" */
    uint32_t id;
    struct mesh_endpoint_rt *endpoints;
    size_t n_endpoints;
    struct mesh_breaker_limits limits;
    bool outlier_enabled;
    struct mesh_outlier_config outlier;
    bool has_fault;
    struct mesh_fault_rt fault;
    enum mesh_lb_policy lb;
    struct mesh_cluster_state *state;
    /* Calls to its sidecars use mTLS (security.h decides), expecting the SPIFFE ID whose path is
     * peer_path ("/ns/NS/sa/NAME"); peer_strict: they refuse plaintext. */
    bool mtls, peer_strict;
    char *peer_path;
};

struct mesh_route_dest {
    struct mesh_cluster *cluster; /* NULL when the host names no Service: 503 */
    char *host;                   /* as written, for messages */
};

struct mesh_route_rt {
    const struct mesh_http_route *src;   /* in the snapshot's copy; NULL for a Service's host */
    char *name;                          /* the route's name, or "route-N" */
    uint32_t id;                         /* dense over the snapshot */
    uint32_t dest_base;                  /* index of dests[0] in per-worker weight arrays */
    struct mesh_route_matcher *matchers; /* any may match; none = everything */
    size_t n_matchers;
    struct mesh_route_dest *dests;
    int *weights; /* one per destination, for smooth weighted round robin */
    size_t n_dests;
    uint64_t timeout_ms;
    uint32_t retry_attempts;
    uint64_t per_try_timeout_ms;
    uint32_t retry_on; /* MESH_RETRY_ON_* bits */
    bool has_fault;    /* a FaultInjection naming the VirtualService */
    struct mesh_fault_rt fault;
    const struct mesh_vhost *vhost;
};

/* A byte trie over the literal start of each route's paths (all of an exact path; a prefix; a
 * glob up to its first '*'), so that a request only tries the routes whose literal starts its
 * path, plus those that cannot be indexed (regex, or a match without a path), still in
 * declaration order: first match wins exactly as without the index. */
struct mesh_route_trie_node {
    uint32_t first_child, next_sibling; /* node indexes; 0 = none (0 is the root) */
    unsigned char byte;
    uint32_t *prefix_routes; /* routes whose literal ends here and may continue */
    uint32_t n_prefix;
    uint32_t *exact_routes; /* routes whose exact path ends here */
    uint32_t n_exact;
};

struct mesh_route_index {
    struct mesh_route_trie_node *nodes;
    size_t n_nodes, cap_nodes;
    uint32_t *always;
    uint32_t n_always;
};

struct mesh_vhost {
    const struct mesh_virtual_service *src; /* in the snapshot's copy; NULL for a Service's */
    char *name; /* "payment-service.default", or the Service's for a direct host */
    struct mesh_string_list hosts; /* the Host values that lead here (sorted), for dumps */
    struct mesh_route_rt *routes;
    size_t n_routes;
    struct mesh_route_index *index; /* NULL when there are few routes */
};

/* route_index.c: an index over a VirtualService's routes (NULL when it has few); its free. */
struct mesh_route_index *mesh_route_index_build(const struct mesh_http_route *routes, size_t n);
void mesh_route_index_free(struct mesh_route_index *ix);

/* The first route of vh that matches the request, or NULL. No allocation. */
const struct mesh_route_rt *mesh_vhost_match(const struct mesh_vhost *vh,
                                             const struct mesh_h1_message *m);

struct mesh_host_entry {
    char *host; /* lower-case, no port; "*.example.com" for wildcards */
    const struct mesh_vhost *vhost;
};

struct mesh_snapshot {
    atomic_uint refs;
    uint64_t version;
    struct mesh_vhost *vhosts;
    size_t n_vhosts;
    struct mesh_cluster *clusters;
    size_t n_clusters;
    struct mesh_host_entry *exact; /* open-addressed table, capacity n_exact_cap (power of 2) */
    size_t exact_cap;
    struct mesh_host_entry *wildcards; /* longest suffix first */
    size_t n_wildcards;
    const struct mesh_vhost *catch_all; /* a VirtualService host "*" */
    uint32_t n_routes, n_dests, n_endpoints;
    char *source;               /* the documents as YAML, for /config_dump */
    struct mesh_resource **res; /* copies of the documents it was built from */
    size_t n_res;
    /* Set by whoever publishes it, before it is shared: */
    char version_text[40]; /* as the config's source names it: meshd's hash, or a reload count */
    bool from_control;     /* the config came from meshd (else from a file) */
    bool awaiting_config;  /* a placeholder until meshd's first config: routes nothing */
    /* A sidecar's: the mTLS mode and authorization of its own service (mesh_snapshot_secure);
     * NULL for gateways and static proxies, whose listeners take plaintext with no rules. */
    struct mesh_inbound_policy *inbound_policy;
    /* Tracing, from the MeshConfig and ObservabilityConfig documents (also what a sidecar's
     * inbound listener, whose own snapshot is fixed, goes by). */
    struct mesh_trace_config trace;
};

/* Compiles resources into a new snapshot (refs = 1). Unknown kinds for the proxy (SecurityPolicy,
 * MeshConfig...) are kept in the dump but ignored. On error *errmsg (caller frees) says why. */
enum mesh_err mesh_snapshot_build(struct mesh_resource *const *res, size_t n, uint64_t version,
                                  struct mesh_snapshot **out, char **errmsg);

/* Flags of mesh_snapshot_build_flags. NO_SERVICE_HOSTS: a Host naming a Service is not routed
 * (a gateway exposes its VirtualServices only). */
#define MESH_SNAPSHOT_F_NO_SERVICE_HOSTS 0x1u

/* mesh_snapshot_build with flags (MESH_SNAPSHOT_F_*; 0 is mesh_snapshot_build). */
enum mesh_err mesh_snapshot_build_flags(struct mesh_resource *const *res, size_t n,
                                        uint64_t version, unsigned flags,
                                        struct mesh_snapshot **out, char **errmsg);
/* The fixed snapshot of a sidecar's inbound listener: every request, whatever its Host, goes to
 * the one endpoint address (the local app) of a cluster named "inbound|SERVICE" in namespace ns,
 * retried once on a connect failure. It lives outside meshd's config, so snapshot swaps never
 * touch it. On error *errmsg (caller frees) says why (an address that does not parse). */
/* Makes s (not yet published) a sidecar's: computes the inbound policy of service/ns from its
 * documents. MESH_E_NOMEM. */
enum mesh_err mesh_snapshot_secure(struct mesh_snapshot *s, const char *service, const char *ns);

enum mesh_err mesh_snapshot_build_inbound(const char *service, const char *ns, const char *address,
                                          struct mesh_snapshot **out, char **errmsg);
/* Reads FILE (all documents, validated) and compiles it. */
enum mesh_err mesh_snapshot_load_file(const char *path, uint64_t version,
                                      struct mesh_snapshot **out, char **errmsg);

void mesh_snapshot_ref(struct mesh_snapshot *s);
/* Drops a reference; the last one frees the snapshot. Any thread. */
void mesh_snapshot_unref(struct mesh_snapshot *s);

/* The virtual host for a Host header value (port allowed; matched case-insensitively), or
 * NULL. No allocation. */
const struct mesh_vhost *mesh_snapshot_find_vhost(const struct mesh_snapshot *s,
                                                  struct mesh_slice host);

/* A connection or a snapshot holds the state it counts in. Any thread. */
void mesh_cluster_state_ref(struct mesh_cluster_state *st);
void mesh_cluster_state_unref(struct mesh_cluster_state *st);

/* Every shared cluster state alive (for the outlier sweep). Calls fn for each; main thread. */
void mesh_cluster_states_foreach(void (*fn)(struct mesh_cluster_state *st, void *ctx), void *ctx);

#endif
