/* SPDX-License-Identifier: Apache-2.0 */
/* libmesh: the ClusterDB Mesh C API. One Mesh Interface over the native, istio, linkerd and
 * custom providers, with the seed's traffic, security, circuit breaking and fault calls. */
#ifndef MESH_MESH_H
#define MESH_MESH_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "resource.h"
#include "virtual_service.h"
#include "security_policy.h"
#include "circuit_breaker.h"
#include "fault_injection.h"
#include "service.h"
#include "mesh_config.h"
#include "observability_config.h"
#include "kubernetes_config.h"
#include "kube.h"
#include "document.h"
#include "provider.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MESH_VERSION "0.1.0"

struct mesh; /* opaque; one per thread, or guarded by the caller */

struct mesh_config {
    const char *provider;  /* "native" when NULL; "istio", "linkerd" or a registered name */
    const char *store_dir; /* native: embedded store directory; NULL = $MESH_STORE, else ./.mesh */
    const char *server;    /* native: meshd URL (http://127.0.0.1:15010); NULL = embedded store */
    /* native with server: meshd's bearer token (the text of meshd's DATA_DIR/token); NULL = the
     * first line of the file $MESH_TOKEN_FILE names, else $MESH_TOKEN, else none (reads only). */
    const char *token;
    /* native with an https:// server: the PEM CA bundle meshd's certificate must chain to;
     * NULL = $MESH_CACERT, else the system trust store. meshd's certificate must also name the
     * URL's host (a DNS name or an IP address). */
    const char *ca_file;
    /* istio, linkerd: the cluster the resources are applied to and read back from. */
    const char *kubeconfig; /* NULL = $KUBECONFIG (':'-separated), else ~/.kube/config */
    const char *context;    /* NULL = the kubeconfig's current-context */
    /* istio, linkerd: the release to write for ("1.14", "2.11"): API versions and fields; NULL =
     * the version of a MeshConfig among the resources, else the newest we know. */
    const char *version;
    /* istio, linkerd: leave out what the provider cannot express instead of refusing it. */
    bool allow_partial;
};

/* Opens the provider cfg names (cfg may be NULL for all defaults). On success *out is a new
 * mesh, freed with mesh_free(). On error *out is NULL; for a message about why, pass a non-NULL
 * errmsg to mesh_new_verbose(). MESH_E_UNSUPPORTED for a provider this build cannot run. */
enum mesh_err mesh_new(const struct mesh_config *cfg, struct mesh **out);
/* Like mesh_new; on error *errmsg (caller frees) says why. */
enum mesh_err mesh_new_verbose(const struct mesh_config *cfg, struct mesh **out, char **errmsg);
void mesh_free(struct mesh *mesh);

/* The message of the last failed call on mesh ("" when none). Borrowed until the next call. */
const char *mesh_last_error(const struct mesh *mesh);
/* The name of the provider in use ("native"). */
const char *mesh_provider_name(const struct mesh *mesh);

/* --- Generic resource calls (every kind) --- */

/* Validates then applies res[0..n) in one transaction: all or none. results may be NULL; else it
 * has n slots. MESH_E_INVALID (nothing written), MESH_E_CONFLICT (a stale resource_version). */
enum mesh_err mesh_apply(struct mesh *mesh, const struct mesh_resource *const *res, size_t n,
                         struct mesh_apply_result *results);
/* Puts a backup (meshctl backup) back: validates, then writes res[0..n) in one transaction, all
 * or none. Into a new store (no resource, version counter 0), when every resource carries a
 * resource_version and a generation (>= 1), the versions all distinct and no resource twice:
 * each is written with its own versions, so that the store reads back exactly as the one the
 * backup was taken from; every result is created; *mode (may be NULL) is
 * MESH_RESTORE_VERSIONS_KEPT. Into any other store, or for resources without versions: exactly
 * mesh_apply with every resource_version ignored (the store's versions move on from where they
 * are, as watchers and optimistic concurrency need); *mode is MESH_RESTORE_APPLIED. res is
 * borrowed and keeps its versions; results as for mesh_apply. MESH_E_INVALID (nothing written).
 * Same thread rules as mesh_apply. */
enum mesh_err mesh_restore(struct mesh *mesh, const struct mesh_resource *const *res, size_t n,
                           struct mesh_apply_result *results, enum mesh_restore_mode *mode);
/* ns NULL = "default". *out is a new resource owned by the caller. MESH_E_NOTFOUND. */
enum mesh_err mesh_get(struct mesh *mesh, enum mesh_kind kind, const char *name, const char *ns,
                       struct mesh_resource **out);
/* ns NULL = every namespace. Sorted by namespace, then name. Free with mesh_resource_list_free. */
enum mesh_err mesh_list(struct mesh *mesh, enum mesh_kind kind, const char *ns,
                        struct mesh_resource ***out, size_t *n);
enum mesh_err mesh_delete(struct mesh *mesh, enum mesh_kind kind, const char *name, const char *ns);

/* --- Traffic management (the seed's TrafficManager) --- */
enum mesh_err mesh_apply_virtual_service(struct mesh *mesh, const struct mesh_virtual_service *vs);
enum mesh_err mesh_delete_virtual_service(struct mesh *mesh, const char *name, const char *ns);
enum mesh_err mesh_get_virtual_service(struct mesh *mesh, const char *name, const char *ns,
                                       struct mesh_virtual_service **out);
enum mesh_err mesh_list_virtual_services(struct mesh *mesh, const char *ns,
                                         struct mesh_virtual_service ***out, size_t *n);
void mesh_virtual_service_list_free(struct mesh_virtual_service **list, size_t n);

/* --- Security management (the seed's SecurityManager) --- */
enum mesh_err mesh_apply_security_policy(struct mesh *mesh, const struct mesh_security_policy *sp);
enum mesh_err mesh_delete_security_policy(struct mesh *mesh, const char *name, const char *ns);
enum mesh_err mesh_get_security_policy(struct mesh *mesh, const char *name, const char *ns,
                                       struct mesh_security_policy **out);
enum mesh_err mesh_list_security_policies(struct mesh *mesh, const char *ns,
                                          struct mesh_security_policy ***out, size_t *n);
void mesh_security_policy_list_free(struct mesh_security_policy **list, size_t n);

/* --- Resilience --- */
/* Stores a CircuitBreaker named after service ("name" or "name.namespace") guarding it. */
enum mesh_err mesh_configure_circuit_breaker(struct mesh *mesh, const char *service,
                                             const struct mesh_circuit_breaker_config *cfg);
/* Stores a FaultInjection named after service ("name" or "name.namespace") for it. */
enum mesh_err mesh_inject_fault(struct mesh *mesh, const char *service,
                                const struct mesh_fault *fault);

/* --- Observability --- */

/* The ObservabilityConfig mesh_configure_observability() writes: default/default. */
#define MESH_OBSERVABILITY_CONFIG_NAME "default"

/* The seed's configure_observability. Stores the ObservabilityConfig "default" in namespace
 * "default" with the three endpoints (http:// or https:// URLs; NULL or "" = not configured),
 * replacing the one stored before. Then, when grafana_endpoint is set, creates or replaces the
 * mesh's Grafana dashboards there (the ones `meshctl dashboards` writes) through Grafana's HTTP
 * API, as $MESH_GRAFANA_TOKEN (a service account token) when set, else as $MESH_GRAFANA_USER
 * with $MESH_GRAFANA_PASSWORD, else anonymously (docs/observability.md): an endpoint holds no
 * password. Blocks for up to 10 s per dashboard. MESH_E_INVALID: an endpoint is not a URL
 * (nothing stored), or Grafana refused a dashboard or the credentials; MESH_E_UNAVAILABLE,
 * MESH_E_TLS: Grafana cannot be reached. When the push fails the configuration stays stored, and
 * mesh_last_error() says so. Same thread rules as mesh_apply. */
enum mesh_err mesh_configure_observability(struct mesh *mesh, const char *prometheus_endpoint,
                                           const char *grafana_endpoint,
                                           const char *jaeger_endpoint);

#ifdef __cplusplus
}
#endif
#endif
