/* SPDX-License-Identifier: Apache-2.0 */
/* Keeping the fields of a live object that a rendered object sets (fields.h). */
#include "fields.h"

#include <stddef.h>

/* A deep copy of n. */
static struct mesh_node *copy(const struct mesh_node *n)
{
    struct mesh_node *c = NULL;
    switch (n->type) {
    case MESH_NODE_SCALAR:
        return mesh_node_scalar(n->scalar_kind, n->text);
    case MESH_NODE_SEQ:
        c = mesh_node_seq();
        for (size_t i = 0; i < n->len; i++)
            mesh_node_seq_append(c, copy(n->items[i]));
        return c;
    case MESH_NODE_MAP:
        c = mesh_node_map();
        for (size_t i = 0; i < n->len; i++)
            mesh_node_map_set(c, n->pairs[i].key->text, copy(n->pairs[i].value));
        return c;
    }
    return NULL;
}

struct mesh_node *mesh_kube_fields_kept(const struct mesh_node *live, const struct mesh_node *shape)
{
    struct mesh_node *out = NULL;
    if (!live)
        return NULL;
    if (!shape || shape->type != live->type || live->type == MESH_NODE_SCALAR)
        return copy(live);
    if (live->type == MESH_NODE_SEQ) {
        out = mesh_node_seq();
        for (size_t i = 0; i < live->len; i++)
            mesh_node_seq_append(out, mesh_kube_fields_kept(
                                          live->items[i], i < shape->len ? shape->items[i] : NULL));
        return out;
    }
    out = mesh_node_map();
    for (size_t i = 0; i < shape->len; i++) {
        const char *key = shape->pairs[i].key->text;
        const struct mesh_node *v = mesh_node_map_get(live, key);
        if (v)
            mesh_node_map_set(out, key, mesh_kube_fields_kept(v, shape->pairs[i].value));
    }
    return out;
}
