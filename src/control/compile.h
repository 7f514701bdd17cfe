/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's snapshot compiler: the stored resources plus the registry, turned into the config
 * one proxy needs (docs/api.md, "The config watch"). Pure: no I/O, no clock. */
#ifndef MESH_CONTROL_COMPILE_H
#define MESH_CONTROL_COMPILE_H

#include <stddef.h>

#include "mesh/err.h"
#include "mesh/resource.h"
#include "registry.h"

/* One proxy's config. */
struct mesh_proxy_config {
    char version[MESH_CONFIG_VERSION_LEN + 1]; /* hash of resources_json: 16 hex digits */
    char *resources_json; /* a JSON array of canonical documents, in (kind, ns, name) order */
};

void mesh_proxy_config_clear(struct mesh_proxy_config *cfg);

/* Compiles the config for proxy from every stored resource (res[0..n), any order, valid) and
 * the live registrations in reg:
 *   - every Service, endpoints = its static ones + the address (and labels) of every sidecar
 *     registered for it; a registered service without a Service resource gets one;
 *   - sidecar: VirtualServices without gateways or listing "mesh"; gateway: those whose
 *     gateways list its name or NAMESPACE/NAME;
 *   - every CircuitBreaker, FaultInjection, SecurityPolicy and MeshConfig.
 * The same input always gives the same bytes and version. MESH_E_NOMEM on allocation failure. */
enum mesh_err mesh_compile_proxy_config(const struct mesh_resource *const *res, size_t n,
                                        const struct mesh_registry *reg,
                                        const struct mesh_proxy_entry *proxy,
                                        struct mesh_proxy_config *out);

/* The body of a 200 watch answer: {"proxy": id, "version": v, "resources": [...]}. Caller
 * frees. NULL on allocation failure. */
char *mesh_proxy_config_body(const struct mesh_proxy_config *cfg, const char *proxy_id);

#endif
