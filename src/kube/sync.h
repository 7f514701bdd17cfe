/* SPDX-License-Identifier: Apache-2.0 */
/* A rendered set of objects made true in a cluster: server-side apply with an outcome per object,
 * reading back what is ours, and pruning what is ours and no longer rendered. What `meshctl apply`
 * and libmesh's istio and linkerd providers share. */
#ifndef MESH_KUBE_SYNC_H
#define MESH_KUBE_SYNC_H

#include <stdbool.h>
#include <stddef.h>

#include "kube/client.h"
#include "model/node.h"

enum mesh_kube_outcome {
    MESH_KUBE_CREATED = 0,
    MESH_KUBE_CONFIGURED, /* existed; the server changed it */
    MESH_KUBE_UNCHANGED,  /* existed and already said what obj says */
};

/* "VirtualService/default/payment", "Namespace/default": how messages name obj. Malloc'ed. */
char *mesh_kube_object_label(const struct mesh_node *obj);

/* Server-side applies obj (field manager meshctl; force: taking over fields other managers own)
 * and tells what it did. A v1 Service that does not exist is refused with MESH_E_NOTFOUND: what
 * we render for one are annotations for the user's own Service, which has to come first.
 * MESH_E_CONFLICT (another manager owns a field) with the server's words; the client's errors. */
enum mesh_err mesh_kube_sync_apply(struct mesh_kube_client *c, const struct mesh_node *obj,
                                   bool force, enum mesh_kube_outcome *outcome, char **errmsg);

/* Every object of provider's kinds (its CRDs, cluster.h) that carries our managed-by label, in
 * every namespace, each listed at the version the server serves its kind at (API discovery), so
 * that objects written at any version are found. *items: a sequence node (caller frees). */
enum mesh_err mesh_kube_list_ours(struct mesh_kube_client *c, const char *provider,
                                  struct mesh_node **items, char **errmsg);

/* Deletes what mesh_kube_list_ours finds that objects[0..n) does not hold (same group, kind,
 * namespace and name), in any namespace, unless spare (may be NULL) says to keep it; pruned
 * (may be NULL) after each delete. Both get arg. Never the user's Services or Namespaces: those
 * are annotated, never labelled, so never listed as ours. */
struct mesh_kube_prune_hooks {
    bool (*spare)(void *arg, const struct mesh_node *live);
    void (*pruned)(void *arg, const char *label);
    void *arg;
};

enum mesh_err mesh_kube_prune(struct mesh_kube_client *c, const char *provider,
                              struct mesh_node *const *objects, size_t n,
                              const struct mesh_kube_prune_hooks *hooks, char **errmsg);

#endif
