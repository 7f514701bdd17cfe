/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's snapshot compiler: the stored resources plus the registry, turned into the config
 * one proxy needs (docs/api.md, "The config watch"). Pure: no I/O, no clock. */
#ifndef MESH_CONTROL_COMPILE_H
#define MESH_CONTROL_COMPILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh/err.h"
#include "mesh/resource.h"
#include "registry.h"

struct mesh_virtual_service;

/* One proxy's config. */
struct mesh_proxy_config {
    char version[MESH_CONFIG_VERSION_LEN + 1]; /* hash of resources_json: 16 hex digits */
    char *resources_json;   /* a JSON array of canonical documents, in (kind, ns, name) order */
    uint64_t ca_generation; /* the CA generation (ca_rotation.h); 0 before any root rotation */
};

void mesh_proxy_config_clear(struct mesh_proxy_config *cfg);

/* Compiles the config for proxy from every stored resource (res[0..n), any order, valid) and
 * the live registrations in reg:
 *   - every Service, endpoints = its static ones + the address (and labels) of every sidecar
 *     registered for it; a registered service without a Service resource gets one;
 *   - sidecar: VirtualServices without gateways or listing "mesh"; gateway: those whose
 *     gateways list its NAMESPACE/NAME, or its NAME when they are in its namespace (as Istio
 *     reads a gateway name without a namespace);
 *   - every CircuitBreaker, FaultInjection, SecurityPolicy and MeshConfig, and every
 *     ObservabilityConfig that names a trace collector (jaeger_endpoint).
 * The same input always gives the same bytes and version. MESH_E_NOMEM on allocation failure. */
enum mesh_err mesh_compile_proxy_config(const struct mesh_resource *const *res, size_t n,
                                        const struct mesh_registry *reg,
                                        const struct mesh_proxy_entry *proxy,
                                        struct mesh_proxy_config *out);

/* Whether a VirtualService's `gateways` item ref (NAME, meaning the gateway of that name in the
 * VirtualService's namespace vs_ns, or NAMESPACE/NAME) names gateway in gateway_ns. */
bool mesh_compile_gateway_ref_matches(const char *ref, const char *vs_ns, const char *gateway,
                                      const char *gateway_ns);

/* Whether proxy gets vs in its config, by the rule of mesh_compile_proxy_config. */
bool mesh_compile_vs_serves(const struct mesh_virtual_service *vs,
                            const struct mesh_proxy_entry *proxy);

/* Makes cfg carry the CA generation gen: in its body, and in its version when gen is not 0 (the
 * hash then covers resources_json and gen, so that a new generation is a new version and wakes
 * every config watch; a mesh that never rotated its root keeps the versions it had). */
void mesh_proxy_config_set_ca_generation(struct mesh_proxy_config *cfg, uint64_t gen);

/* The body of a 200 watch answer: {"proxy": id, "version": v, "ca_generation": g, "resources":
 * [...]}. Caller frees. NULL on allocation failure. */
char *mesh_proxy_config_body(const struct mesh_proxy_config *cfg, const char *proxy_id);

#endif
