/* SPDX-License-Identifier: Apache-2.0 */
/* The Mesh Interface: the vtable every provider (native, istio, linkerd, custom) implements. */
#ifndef MESH_PROVIDER_H
#define MESH_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "resource.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mesh;
struct mesh_config;

enum mesh_apply_outcome {
    MESH_APPLY_CREATED = 0,
    MESH_APPLY_CONFIGURED, /* existed, content changed */
    MESH_APPLY_UNCHANGED,  /* identical content: nothing written, version kept */
};

struct mesh_apply_result {
    enum mesh_apply_outcome outcome;
    uint64_t resource_version;
    uint64_t generation;
};

/* Which way a restore went (mesh_restore). */
enum mesh_restore_mode {
    /* As mesh_apply with every resource_version ignored: the store assigned the versions. */
    MESH_RESTORE_APPLIED = 0,
    /* Into a new store, each resource with its own resource_version and generation. */
    MESH_RESTORE_VERSIONS_KEPT,
};

/* A provider. libmesh validates every resource before calling apply, so a provider sees only
 * valid input. Each callback returns MESH_OK or an error after calling mesh_set_error() with a
 * message for the user. Callbacks are called from the thread that uses the struct mesh. */
struct mesh_provider_ops {
    const char *name; /* what MeshConfig.provider / mesh_config.provider names */

    /* Connects; *state is handed back to every other callback. */
    enum mesh_err (*open)(struct mesh *mesh, const struct mesh_config *config, void **state);
    void (*close)(void *state);

    /* All or nothing: either every resource is applied, or none is. results has n slots. */
    enum mesh_err (*apply)(struct mesh *mesh, void *state, const struct mesh_resource *const *res,
                           size_t n, struct mesh_apply_result *results);
    /* *out: a new resource, owned by the caller. */
    enum mesh_err (*get)(struct mesh *mesh, void *state, enum mesh_kind kind, const char *ns,
                         const char *name, struct mesh_resource **out);
    /* ns NULL = every namespace. *out: a new array of new resources, owned by the caller. */
    enum mesh_err (*list)(struct mesh *mesh, void *state, enum mesh_kind kind, const char *ns,
                          struct mesh_resource ***out, size_t *n);
    enum mesh_err (*remove)(struct mesh *mesh, void *state, enum mesh_kind kind, const char *ns,
                            const char *name);
    /* Optional: NULL (or MESH_E_UNSUPPORTED) makes mesh_restore apply the resources with their
     * versions ignored. All or nothing, in one transaction. When the target is a new store (no
     * resource, version counter 0) and every resource carries a resource_version and a
     * generation (>= 1), the versions all distinct and no resource twice: writes each with its
     * own versions, in ascending resource_version order; every result created; *mode
     * VERSIONS_KEPT. Otherwise: exactly apply, with every resource_version ignored; *mode
     * APPLIED. results has n slots, in res's order; *mode is only read after MESH_OK. */
    enum mesh_err (*restore)(struct mesh *mesh, void *state, const struct mesh_resource *const *res,
                             size_t n, struct mesh_apply_result *results,
                             enum mesh_restore_mode *mode);
};

/* Adds a provider by ops->name (borrowed: ops must outlive every mesh that uses it).
 * MESH_E_CONFLICT when the name is taken, MESH_E_INVALID when a callback is missing.
 * Thread-safe. */
enum mesh_err mesh_register_provider(const struct mesh_provider_ops *ops);

/* For providers: records err and a printf-style message as the mesh's last error; returns err. */
enum mesh_err mesh_set_error(struct mesh *mesh, enum mesh_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
