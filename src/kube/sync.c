/* SPDX-License-Identifier: Apache-2.0 */
/* Applying, reading back and pruning our objects in a cluster (sync.h). */
#include "sync.h"

#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "kube/cluster.h"
#include "provider/translate.h"

#define MANAGED_SELECTOR MESH_MANAGED_BY_LABEL "=" MESH_MANAGED_BY_VALUE

static const char *text_at(const struct mesh_node *map, const char *key)
{
    const struct mesh_node *n = mesh_node_map_get(map, key);
    return n && n->type == MESH_NODE_SCALAR ? n->text : NULL;
}

/* An object's identity. */
struct ident {
    const char *api_version, *kind, *ns, *name;
};

static struct ident ident_of(const struct mesh_node *obj)
{
    const struct mesh_node *meta = mesh_node_map_get(obj, "metadata");
    struct ident id = {text_at(obj, "apiVersion"), text_at(obj, "kind"), text_at(meta, "namespace"),
                       text_at(meta, "name")};
    if (id.ns && !*id.ns)
        id.ns = NULL;
    return id;
}

char *mesh_kube_object_label(const struct mesh_node *obj)
{
    struct ident id = ident_of(obj);
    const char *kind = id.kind ? id.kind : "object", *name = id.name ? id.name : "(unnamed)";
    return id.ns ? xasprintf("%s/%s/%s", kind, id.ns, name) : xasprintf("%s/%s", kind, name);
}

/* The API group of "group/version" ("" for "v1"), compared without copying. */
static bool same_group(const char *a, const char *b)
{
    const char *sa = strchr(a, '/'), *sb = strchr(b, '/');
    size_t la = sa ? (size_t)(sa - a) : 0, lb = sb ? (size_t)(sb - b) : 0;
    return la == lb && strncmp(a, b, la) == 0;
}

enum mesh_err mesh_kube_sync_apply(struct mesh_kube_client *c, const struct mesh_node *obj,
                                   bool force, enum mesh_kube_outcome *outcome, char **errmsg)
{
    struct ident id = ident_of(obj);
    struct mesh_node *before = NULL, *after = NULL;
    bool created = false;
    enum mesh_err err = mesh_kube_get(c, id.api_version, id.kind, id.ns, id.name, &before, errmsg);

    if (err == MESH_E_NOTFOUND) {
        free(*errmsg);
        *errmsg = NULL;
        if (strcmp(id.api_version, "v1") == 0 && strcmp(id.kind, "Service") == 0) {
            /* Without the user's Service there is nothing to annotate, and the server would
             * refuse a Service without ports. */
            char *label = mesh_kube_object_label(obj);
            *errmsg = xasprintf("%s does not exist: what we render for it are annotations for "
                                "your own Service: create it (with its ports) first, then apply "
                                "again",
                                label);
            free(label);
            goto out;
        }
        err = MESH_OK;
    }
    if (err == MESH_OK)
        err = mesh_kube_apply(c, obj, force, &after, &created, errmsg);
    if (err != MESH_OK)
        goto out;
    const char *rv_before = text_at(mesh_node_map_get(before, "metadata"), "resourceVersion");
    const char *rv_after = text_at(mesh_node_map_get(after, "metadata"), "resourceVersion");
    *outcome = !before || created                                      ? MESH_KUBE_CREATED
               : rv_before && rv_after && !strcmp(rv_before, rv_after) ? MESH_KUBE_UNCHANGED
                                                                       : MESH_KUBE_CONFIGURED;
out:
    mesh_node_free(before);
    mesh_node_free(after);
    return err;
}

/* Calls fn for each kind of provider's CRDs ("virtualservices.networking.istio.io"), found in the
 * client's kind table by plural and group; stops at the first error. */
static enum mesh_err each_kind(const char *provider,
                               enum mesh_err (*fn)(const struct mesh_kube_kind *k, void *arg),
                               void *arg)
{
    const char *const *crds = mesh_kube_provider_crds(provider);
    size_t n_kinds = 0;
    const struct mesh_kube_kind *kinds = mesh_kube_kinds(&n_kinds);
    enum mesh_err err = MESH_OK;

    for (size_t i = 0; crds && crds[i] && err == MESH_OK; i++) {
        const char *dot = strchr(crds[i], '.');
        size_t plural_len = (size_t)(dot - crds[i]);
        for (size_t k = 0; k < n_kinds && err == MESH_OK; k++)
            if (strlen(kinds[k].plural) == plural_len &&
                strncmp(kinds[k].plural, crds[i], plural_len) == 0 &&
                strcmp(kinds[k].group, dot + 1) == 0)
                err = fn(&kinds[k], arg);
    }
    return err;
}

struct list_state {
    struct mesh_kube_client *c;
    struct mesh_node *items;
    char **errmsg;
};

static enum mesh_err list_kind(const struct mesh_kube_kind *k, void *arg)
{
    struct list_state *st = arg;
    char *api = NULL;
    struct mesh_node *items = NULL;
    enum mesh_err err = mesh_kube_served_version(st->c, k->group, k->kind, &api, st->errmsg);
    if (err == MESH_OK)
        err = mesh_kube_list(st->c, api, k->kind, NULL, MANAGED_SELECTOR, &items, st->errmsg);
    for (size_t i = 0; err == MESH_OK && i < items->len; i++) {
        mesh_node_seq_append(st->items, items->items[i]);
        items->items[i] = NULL;
    }
    if (items)
        items->len = 0;
    mesh_node_free(items);
    free(api);
    return err;
}

enum mesh_err mesh_kube_list_ours(struct mesh_kube_client *c, const char *provider,
                                  struct mesh_node **items, char **errmsg)
{
    struct list_state st = {c, mesh_node_seq(), errmsg};
    enum mesh_err err = each_kind(provider, list_kind, &st);
    if (err != MESH_OK) {
        mesh_node_free(st.items);
        st.items = NULL;
    }
    *items = st.items;
    return err;
}

/* Whether objects[0..n) holds one with live's group, kind, namespace and name. */
static bool rendered(struct mesh_node *const *objects, size_t n, const struct mesh_node *live)
{
    struct ident l = ident_of(live);
    for (size_t i = 0; i < n; i++) {
        struct ident id = ident_of(objects[i]);
        if (id.api_version && id.kind && id.name && same_group(id.api_version, l.api_version) &&
            strcmp(id.kind, l.kind) == 0 && strcmp(id.name, l.name) == 0 &&
            strcmp(id.ns ? id.ns : "", l.ns ? l.ns : "") == 0)
            return true;
    }
    return false;
}

enum mesh_err mesh_kube_prune(struct mesh_kube_client *c, const char *provider,
                              struct mesh_node *const *objects, size_t n,
                              const struct mesh_kube_prune_hooks *hooks, char **errmsg)
{
    struct mesh_node *ours = NULL;
    enum mesh_err err = mesh_kube_list_ours(c, provider, &ours, errmsg);

    for (size_t i = 0; err == MESH_OK && i < ours->len; i++) {
        const struct mesh_node *live = ours->items[i];
        struct ident id = ident_of(live);
        if (!id.api_version || !id.kind || !id.name || rendered(objects, n, live) ||
            (hooks && hooks->spare && hooks->spare(hooks->arg, live)))
            continue;
        err = mesh_kube_delete(c, id.api_version, id.kind, id.ns, id.name, errmsg);
        if (err == MESH_E_NOTFOUND) { /* gone meanwhile: what prune wanted */
            free(*errmsg);
            *errmsg = NULL;
            err = MESH_OK;
            continue;
        }
        if (err == MESH_OK && hooks && hooks->pruned) {
            char *label = mesh_kube_object_label(live);
            hooks->pruned(hooks->arg, label);
            free(label);
        }
    }
    mesh_node_free(ours);
    return err;
}
