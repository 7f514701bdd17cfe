/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's proxy registry: every registered sidecar and gateway, its heartbeat, the config
 * version it acknowledged. A sidecar's address is a live endpoint of its service. In memory
 * only: a restarted meshd learns its proxies again from their re-registrations (docs/api.md).
 * One thread (meshd's loop) uses it. */
#ifndef MESH_CONTROL_REGISTRY_H
#define MESH_CONTROL_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh/err.h"
#include "mesh/resource.h"

#define MESH_PROXY_ID_MAX       63
#define MESH_CONFIG_VERSION_LEN 16 /* hex digits of a config version */

enum mesh_proxy_role {
    MESH_PROXY_SIDECAR = 0,
    MESH_PROXY_GATEWAY,
};

/* What a proxy registers with (PUT /v1/proxies/{id}); strings are copied by the registry. */
struct mesh_proxy_registration {
    const char *id;
    enum mesh_proxy_role role;
    const char *service; /* sidecar: the service it fronts; NULL for a gateway */
    const char *ns;      /* namespace; NULL = "default" */
    const char *gateway; /* gateway: the name VirtualServices' `gateways` use; NULL for a sidecar */
    const char *address; /* sidecar: its inbound listener, "host:port"; NULL for a gateway */
    const char *admin;   /* admin listener, "host:port"; may be NULL */
    const struct mesh_labels *labels; /* e.g. version: v1; may be NULL */
};

/* One registered proxy, owned by the registry. */
struct mesh_proxy_entry {
    char id[MESH_PROXY_ID_MAX + 1];
    enum mesh_proxy_role role;
    char *service, *ns, *gateway, *address, *admin;
    struct mesh_labels labels;
    uint64_t registered_ms, last_heartbeat_ms; /* wall clock (unix ms), for display */
    uint64_t seen_ms;                          /* monotonic, for expiry */
    char acked[MESH_CONFIG_VERSION_LEN + 1];   /* "" until the proxy acknowledges a config */
};

struct mesh_registry;

/* ttl_ms: a proxy whose last heartbeat (or registration) is older is removed by expire. */
struct mesh_registry *mesh_registry_new(uint64_t ttl_ms);
void mesh_registry_free(struct mesh_registry *reg);

/* True when id is a valid proxy id: [a-z0-9][a-z0-9.-]*, at most MESH_PROXY_ID_MAX characters. */
bool mesh_proxy_id_valid(const char *id);

/* Registers r, or replaces the registration with the same id. MESH_E_INVALID (with *errmsg,
 * caller frees, naming the field) when r is incomplete for its role or an address does not
 * parse. *created tells whether the id was new. now_ms monotonic, wall_ms unix time. */
enum mesh_err mesh_registry_register(struct mesh_registry *reg,
                                     const struct mesh_proxy_registration *r, uint64_t now_ms,
                                     uint64_t wall_ms, bool *created, char **errmsg);
/* MESH_E_NOTFOUND when id is unknown. */
enum mesh_err mesh_registry_heartbeat(struct mesh_registry *reg, const char *id, uint64_t now_ms,
                                      uint64_t wall_ms);
enum mesh_err mesh_registry_remove(struct mesh_registry *reg, const char *id);
/* Records the config version id serves. MESH_E_NOTFOUND when id is unknown, MESH_E_INVALID
 * when version is longer than MESH_CONFIG_VERSION_LEN (nothing recorded). */
enum mesh_err mesh_registry_ack(struct mesh_registry *reg, const char *id, const char *version);
/* Removes every proxy not seen for ttl_ms; returns how many. */
size_t mesh_registry_expire(struct mesh_registry *reg, uint64_t now_ms);

/* NULL when unknown. Borrowed until the next change to the registry. */
const struct mesh_proxy_entry *mesh_registry_find(const struct mesh_registry *reg, const char *id);
/* Every proxy, sorted by id, borrowed until the next change. */
const struct mesh_proxy_entry *const *mesh_registry_list(const struct mesh_registry *reg,
                                                         size_t *n);

/* Bumped by every change that can change a compiled config: a new or changed registration
 * (role, service, namespace, gateway, address, labels), a removal, an expiry. Heartbeats and
 * acks do not bump it. */
uint64_t mesh_registry_generation(const struct mesh_registry *reg);

#endif
