/* SPDX-License-Identifier: Apache-2.0 */
/* The part of a live Kubernetes object that an object we render speaks about: what `meshctl diff`
 * compares, so that what the API server adds (status, uid, managedFields, defaults, other
 * managers' labels) never shows as a difference. */
#ifndef MESH_KUBE_FIELDS_H
#define MESH_KUBE_FIELDS_H

#include "model/node.h"

/* A new tree (caller frees) holding the fields of live that shape sets, recursively: of a map,
 * the keys shape has, in shape's order, each value kept the same way; of a sequence, each item
 * kept against shape's item at the same index, and items beyond shape's length whole (a list we
 * set is ours as a whole: an extra item is a difference); a scalar, or a value whose type differs
 * from shape's, whole. NULL when live is NULL. Both borrowed. */
struct mesh_node *mesh_kube_fields_kept(const struct mesh_node *live,
                                        const struct mesh_node *shape);

#endif
