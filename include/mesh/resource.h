/* SPDX-License-Identifier: Apache-2.0 */
/* What every resource has: its kind and metadata, plus the small shared value types. */
#ifndef MESH_RESOURCE_H
#define MESH_RESOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MESH_API_VERSION       "mesh.clusterdb.io/v1"
#define MESH_DEFAULT_NAMESPACE "default"

/* Marks an optional number (weight, percentage, replicas) that was not given. */
#define MESH_UNSET (-1)

enum mesh_kind {
    MESH_KIND_VIRTUAL_SERVICE = 0,
    MESH_KIND_SECURITY_POLICY,
    MESH_KIND_CIRCUIT_BREAKER,
    MESH_KIND_FAULT_INJECTION,
    MESH_KIND_SERVICE,
    MESH_KIND_MESH_CONFIG,
    MESH_KIND_OBSERVABILITY_CONFIG,
    MESH_KIND_KUBERNETES_CONFIG,
    MESH_KIND_COUNT,
};

/* A boolean that may be absent, so that `enabled: false` survives a round trip. */
enum mesh_tristate {
    MESH_TRI_UNSET = 0,
    MESH_TRI_FALSE,
    MESH_TRI_TRUE,
};

struct mesh_string_list {
    char **items; /* owned, each malloc'ed */
    size_t len;
};

struct mesh_label {
    char *key;
    char *value;
};

struct mesh_labels {
    struct mesh_label *items; /* owned, in document order */
    size_t len;
};

/* The first member of every kind's struct, so that a struct mesh_resource * can point at any
 * of them (like struct sockaddr). */
struct mesh_resource {
    enum mesh_kind kind;
    char *name;                /* metadata.name, an RFC 1123 label */
    char *ns;                  /* metadata.namespace; NULL means "default" */
    struct mesh_labels labels; /* metadata.labels */
    uint64_t resource_version; /* store-wide version of the last change; 0 = not stored / any */
    uint64_t generation;       /* bumped on every change of this resource's content */
};

/* "VirtualService" for MESH_KIND_VIRTUAL_SERVICE; NULL for an out-of-range kind. */
const char *mesh_kind_name(enum mesh_kind kind);

/* Parses a kind as users type it: case-insensitive name ("virtualservice"), plural, or alias
 * (vs, sp, cb, fi, svc, mc, oc, kc). MESH_E_NOTFOUND when unknown. */
enum mesh_err mesh_kind_parse(const char *text, enum mesh_kind *out);

/* Allocates a zeroed struct of kind's type with kind, name and namespace set (copied).
 * Returns NULL only on allocation failure. Free with mesh_resource_free(). */
struct mesh_resource *mesh_resource_new(enum mesh_kind kind, const char *name, const char *ns);

/* Frees a resource of any kind and everything it owns. NULL is a no-op. */
void mesh_resource_free(struct mesh_resource *res);

/* A deep copy; NULL on allocation failure. */
struct mesh_resource *mesh_resource_clone(const struct mesh_resource *res);

/* The namespace, with NULL read as "default". */
const char *mesh_resource_namespace(const struct mesh_resource *res);

/* Appends a copy of s. MESH_E_NOMEM on allocation failure. */
enum mesh_err mesh_string_list_add(struct mesh_string_list *list, const char *s);
void mesh_string_list_clear(struct mesh_string_list *list);

/* Sets key to a copy of value, replacing an existing key. */
enum mesh_err mesh_labels_set(struct mesh_labels *labels, const char *key, const char *value);
void mesh_labels_clear(struct mesh_labels *labels);

#ifdef __cplusplus
}
#endif
#endif
