/* SPDX-License-Identifier: Apache-2.0 */
/* Internal model API used by providers, the store adapters and the CLI: canonical forms of a
 * resource and conversions between resources and node trees. */
#ifndef MESH_MODEL_MODEL_H
#define MESH_MODEL_MODEL_H

#include <stdbool.h>

#include "mesh/document.h"
#include "mesh/mesh_config.h"
#include "mesh/resource.h"
#include "node.h"

/* The canonical JSON body of res, as stored: the whole document (apiVersion, kind, metadata with
 * name, namespace (always set, "default" when NULL) and labels, spec) WITHOUT resource_version and
 * generation, indented, keys in schema order. Two resources with the same content have byte-equal
 * bodies. *out is malloc'ed. */
enum mesh_err mesh_model_canonical_json(const struct mesh_resource *res, char **out);

/* Decodes a body produced by mesh_model_canonical_json (or any valid JSON document) into a new
 * resource. MESH_E_INVALID with *errmsg (caller frees) when the body is not a valid document. */
enum mesh_err mesh_model_from_json(const char *body, struct mesh_resource **out, char **errmsg);

/* The document tree of res, including metadata.resource_version / generation when non-zero.
 * Caller frees with mesh_node_free(). */
struct mesh_node *mesh_model_to_node(const struct mesh_resource *res);

/* Decodes and validates one document tree (envelope or bare seed `mesh:` block). On error adds
 * diags (with positions from the tree) and returns MESH_E_INVALID; *out stays NULL. */
enum mesh_err mesh_model_from_node(const struct mesh_node *root, const char *file,
                                   struct mesh_resource **out, struct mesh_diags *diags);

/* Same content (kind, name, namespace, labels, spec), versions ignored. */
bool mesh_model_same_content(const struct mesh_resource *a, const struct mesh_resource *b);

/* Every diag formatted with mesh_diag_format, one per line, no trailing newline. Caller frees. */
char *mesh_model_diags_text(const struct mesh_diags *diags);

/* Whether labels hold key with exactly the value_len bytes at value. No allocation (the proxy
 * calls it too). */
bool mesh_labels_has(const struct mesh_labels *labels, const char *key, const char *value,
                     size_t value_len);

/* The MeshConfig that configures meshd's own mesh: the first in res[0..n) whose provider is native
 * or unset (one for istio or linkerd describes that provider's mesh), or NULL. Borrowed; no
 * allocation, so the proxy may call it too. */
const struct mesh_mesh_config *mesh_model_native_mesh_config(struct mesh_resource *const *res,
                                                             size_t n);

#endif
