/* SPDX-License-Identifier: Apache-2.0 */
/* The istio and linkerd providers: the Mesh Interface over a Kubernetes cluster. The cluster is
 * the store: every call reads our objects back into our model (the translator's read), and a
 * write translates the changed model and server-side applies it, pruning what the change no
 * longer renders. Services are the cluster's own: read from it, never written. */
#include "kube.h"

#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "kube/cluster.h"
#include "kube/sync.h"
#include "mesh/mesh.h"
#include "model/model.h"
#include "translate.h"

/* The release the objects were written for, stamped by this provider on each, so that a later
 * call writes for the same release without being told. */
#define VERSION_ANNOTATION "mesh.clusterdb.io/provider-version"

struct kube_state {
    const struct mesh_translator *tr;
    struct mesh_kube_cluster cluster;
    char *version; /* mesh_config.version; NULL: the model's MeshConfig, else the objects' stamp */
    bool allow_partial;
};

/* Our model as the cluster holds it. */
struct model {
    struct mesh_resource **res;
    size_t n;
    char *version; /* the stamp found on our objects, if any */
};

static void model_clear(struct model *m)
{
    mesh_resource_list_free(m->res, m->n);
    free(m->version);
    memset(m, 0, sizeof(*m));
}

static enum mesh_err kube_open(struct mesh *mesh, const struct mesh_config *config, void **state)
{
    struct kube_state *st = xcalloc(1, sizeof(*st));
    struct mesh_kube_target target = {.kubeconfig = config->kubeconfig, .context = config->context};
    char *errmsg = NULL, *server_version = NULL;

    st->tr = mesh_translator_find(config->provider);
    st->version = config->version ? xstrdup(config->version) : NULL;
    st->allow_partial = config->allow_partial;
    enum mesh_err err = mesh_kube_cluster_open(&target, &st->cluster, &errmsg);
    if (err == MESH_OK)
        err = mesh_kube_precheck(&st->cluster, st->tr->name, &server_version, &errmsg);
    if (err != MESH_OK) {
        mesh_set_error(mesh, err, "provider %s: %s", st->tr->name, errmsg);
        mesh_kube_cluster_close(&st->cluster);
        free(st->version);
        free(st);
        st = NULL;
    }
    *state = st;
    free(server_version);
    free(errmsg);
    return err;
}

static void kube_close(void *state)
{
    struct kube_state *st = state;
    if (!st)
        return;
    mesh_kube_cluster_close(&st->cluster);
    free(st->version);
    free(st);
}

static enum mesh_err cluster_failed(struct mesh *mesh, const struct kube_state *st,
                                    enum mesh_err err, char *errmsg)
{
    mesh_set_error(mesh, err, "provider %s: %s", st->tr->name,
                   errmsg ? errmsg : mesh_strerror(err));
    free(errmsg);
    return err;
}

/* Moves the items of src (a sequence) to the end of dst. */
static void take_items(struct mesh_node *dst, struct mesh_node *src)
{
    for (size_t i = 0; i < src->len; i++)
        mesh_node_seq_append(dst, src->items[i]);
    src->len = 0;
    mesh_node_free(src);
}

static const char *stamp_of(const struct mesh_node *obj)
{
    /* The key holds dots: looked up whole, not as a mesh_read_str path. */
    const struct mesh_node *v = mesh_node_map_get(
        mesh_node_map_get(mesh_node_map_get(obj, "metadata"), "annotations"), VERSION_ANNOTATION);
    return v && v->type == MESH_NODE_SCALAR ? v->text : NULL;
}

/* Reads the model: our objects, the cluster's Services, and (Linkerd keeps settings there) its
 * Namespaces, through the translator's read. What cannot be read is left out. */
static enum mesh_err read_model(struct mesh *mesh, struct kube_state *st, struct model *m)
{
    struct mesh_kube_client *c = st->cluster.client;
    struct mesh_node *objs = NULL, *more = NULL;
    struct mesh_diags warnings = {0};
    char *errmsg = NULL;
    enum mesh_err err = mesh_kube_list_ours(c, st->tr->name, &objs, &errmsg);

    if (err == MESH_OK &&
        (err = mesh_kube_list(c, "v1", "Service", NULL, NULL, &more, &errmsg)) == MESH_OK)
        take_items(objs, more);
    if (err == MESH_OK && strcmp(st->tr->name, "linkerd") == 0 &&
        (err = mesh_kube_list(c, "v1", "Namespace", NULL, NULL, &more, &errmsg)) == MESH_OK)
        take_items(objs, more);
    if (err != MESH_OK) {
        mesh_node_free(objs);
        return cluster_failed(mesh, st, err, errmsg);
    }
    for (size_t i = 0; i < objs->len && !m->version; i++)
        if (stamp_of(objs->items[i]))
            m->version = xstrdup(stamp_of(objs->items[i]));
    struct mesh_translate_options opt = {.version = st->version ? st->version : m->version,
                                         .allow_partial = true};
    err = st->tr->read(objs->items, objs->len, &opt, &m->res, &m->n, &warnings);
    mesh_diags_clear(&warnings);
    mesh_node_free(objs);
    if (err != MESH_OK)
        return mesh_set_error(mesh, err, "provider %s: cannot read the cluster's objects: %s",
                              st->tr->name, mesh_strerror(err));
    return MESH_OK;
}

/* to: a copy of from without its skip-th resource (-1: none), with room for extra more. */
static void model_copy(const struct model *from, ssize_t skip, size_t extra, struct model *to)
{
    to->res = xcalloc(from->n + extra + 1, sizeof(*to->res));
    for (size_t i = 0; i < from->n; i++)
        if ((ssize_t)i != skip)
            to->res[to->n++] = mesh_resource_clone(from->res[i]);
    to->version = from->version ? xstrdup(from->version) : NULL;
}

static bool same_id(const struct mesh_resource *a, enum mesh_kind kind, const char *ns,
                    const char *name)
{
    return a->kind == kind && strcmp(mesh_resource_namespace(a), ns) == 0 &&
           strcmp(a->name, name) == 0;
}

static ssize_t model_find(const struct model *m, enum mesh_kind kind, const char *ns,
                          const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (same_id(m->res[i], kind, ns, name))
            return (ssize_t)i;
    return -1;
}

/* The release to write for: the mesh's, else a MeshConfig's of the model naming this provider,
 * else the stamp on the objects, else the newest (NULL). */
static const char *effective_version(const struct kube_state *st, const struct model *m)
{
    if (st->version)
        return st->version;
    for (size_t i = 0; i < m->n; i++) {
        const struct mesh_mesh_config *mc = (const struct mesh_mesh_config *)m->res[i];
        if (m->res[i]->kind == MESH_KIND_MESH_CONFIG && mc->provider && mc->version &&
            strcmp(mc->provider, st->tr->name) == 0)
            return mc->version;
    }
    return m->version;
}

/* The translation of m, each object stamped with the release. *errmsg (caller frees) on error. */
static enum mesh_err translate_model(const struct kube_state *st, const struct model *m,
                                     struct mesh_translation *t, char **errmsg)
{
    const char *version = effective_version(st, m);
    struct mesh_translate_options opt = {.version = version, .allow_partial = st->allow_partial};
    enum mesh_err err =
        st->tr->translate((const struct mesh_resource *const *)m->res, m->n, &opt, t, errmsg);
    for (size_t i = 0; err == MESH_OK && version && i < t->n_objects; i++) {
        struct mesh_node *meta = mesh_node_map_get(t->objects[i], "metadata");
        struct mesh_node *ann = mesh_node_map_get(meta, "annotations");
        if (!ann) {
            ann = mesh_node_map();
            mesh_node_map_set(meta, "annotations", ann);
        }
        mesh_node_map_set(ann, VERSION_ANNOTATION, mesh_node_str(version));
    }
    return err;
}

/* --- writing --- */

/* What a write did so far, to undo it when a later object fails: the cluster has no transaction,
 * so all-or-nothing is kept by putting back what was there. */
struct undo {
    const struct mesh_translation *before; /* the translation of the model before the write */
    struct mesh_node **created;            /* borrowed from the new translation */
    size_t n_created, cap_created;
    struct mesh_node **configured;
    size_t n_configured, cap_configured;
};

static const struct mesh_node *find_object(const struct mesh_translation *t,
                                           const struct mesh_node *obj)
{
    const char *kind = mesh_read_str(obj, "kind"), *name = mesh_read_name(obj);
    const char *ns = mesh_read_namespace(obj);
    for (size_t i = 0; i < t->n_objects; i++)
        if (strcmp(mesh_read_str(t->objects[i], "kind"), kind) == 0 &&
            strcmp(mesh_read_name(t->objects[i]), name) == 0 &&
            strcmp(mesh_read_namespace(t->objects[i]), ns) == 0)
            return t->objects[i];
    return NULL;
}

/* Best effort: what was created is deleted, what was changed is applied as it was before. */
static void undo_write(struct kube_state *st, struct undo *u)
{
    struct mesh_kube_client *c = st->cluster.client;
    for (size_t i = 0; i < u->n_created; i++) {
        const struct mesh_node *o = u->created[i];
        char *errmsg = NULL;
        const char *ns = mesh_read_str(o, "metadata.namespace");
        mesh_kube_delete(c, mesh_read_str(o, "apiVersion"), mesh_read_str(o, "kind"),
                         ns && *ns ? ns : NULL, mesh_read_name(o), &errmsg);
        free(errmsg);
    }
    for (size_t i = 0; i < u->n_configured; i++) {
        const struct mesh_node *old = find_object(u->before, u->configured[i]);
        enum mesh_kube_outcome outcome;
        char *errmsg = NULL;
        if (old)
            mesh_kube_sync_apply(c, old, true, &outcome, &errmsg);
        free(errmsg);
    }
}

static void note(struct mesh_node ***list, size_t *n, size_t *cap, struct mesh_node *obj)
{
    xgrow((void **)list, cap, *n + 1, sizeof(**list));
    (*list)[(*n)++] = obj;
}

/* Whether an object the new translation lacks is spared by prune: only what was made from a
 * resource of the model we read is ours to remove; an object we could not read stays. */
static bool spare_unread(void *arg, const struct mesh_node *live)
{
    const struct model *before = arg;
    enum mesh_kind kind;
    char *ns = NULL, *name = NULL;
    bool known =
        mesh_read_source(live, &kind, &ns, &name) && model_find(before, kind, ns, name) >= 0;
    free(ns);
    free(name);
    return !known;
}

/* Makes the cluster hold the translation of after, where it held that of before. */
static enum mesh_err write_model(struct mesh *mesh, struct kube_state *st,
                                 const struct model *before, const struct model *after)
{
    struct mesh_translation old_t = {0}, new_t = {0};
    struct undo u = {.before = &old_t};
    char *errmsg = NULL;
    enum mesh_err err = translate_model(st, after, &new_t, &errmsg);

    if (err != MESH_OK) {
        cluster_failed(mesh, st, err, errmsg);
        errmsg = NULL;
        goto out;
    }
    /* The old translation is only needed to undo: an error in it (a model someone else left
     * inconsistent) must not block the write. */
    if (translate_model(st, before, &old_t, &errmsg) != MESH_OK)
        mesh_translation_clear(&old_t);
    free(errmsg);
    errmsg = NULL;
    for (size_t i = 0; i < new_t.n_objects; i++) {
        enum mesh_kube_outcome outcome;
        err = mesh_kube_sync_apply(st->cluster.client, new_t.objects[i], false, &outcome, &errmsg);
        if (err != MESH_OK) {
            undo_write(st, &u);
            cluster_failed(mesh, st, err, errmsg);
            errmsg = NULL;
            goto out;
        }
        if (outcome == MESH_KUBE_CREATED)
            note(&u.created, &u.n_created, &u.cap_created, new_t.objects[i]);
        else if (outcome == MESH_KUBE_CONFIGURED)
            note(&u.configured, &u.n_configured, &u.cap_configured, new_t.objects[i]);
    }
    const struct mesh_kube_prune_hooks hooks = {.spare = spare_unread, .arg = (void *)before};
    err = mesh_kube_prune(st->cluster.client, st->tr->name, new_t.objects, new_t.n_objects, &hooks,
                          &errmsg);
    if (err != MESH_OK) {
        cluster_failed(mesh, st, err, errmsg);
        errmsg = NULL;
    }
out:
    free(u.created);
    free(u.configured);
    mesh_translation_clear(&old_t);
    mesh_translation_clear(&new_t);
    return err;
}

/* What the cluster cannot hold for this provider: refused, so that nothing is applied and then
 * silently missing when read back. */
static enum mesh_err check_kind(struct mesh *mesh, const struct kube_state *st,
                                const struct mesh_resource *res)
{
    const char *ns = mesh_resource_namespace(res), *kind = mesh_kind_name(res->kind);
    if (res->kind == MESH_KIND_MESH_CONFIG) {
        const struct mesh_mesh_config *mc = (const struct mesh_mesh_config *)res;
        if (mc->provider && strcmp(mc->provider, st->tr->name) != 0)
            return mesh_set_error(mesh, MESH_E_INVALID,
                                  "MeshConfig %s/%s: names provider %s, but this mesh is %s's", ns,
                                  res->name, mc->provider, st->tr->name);
    }
    if (res->kind == MESH_KIND_OBSERVABILITY_CONFIG || res->kind == MESH_KIND_KUBERNETES_CONFIG)
        return mesh_set_error(mesh, MESH_E_UNSUPPORTED,
                              "%s %s/%s: provider %s keeps nothing in the cluster for a %s (it "
                              "configures the native mesh, or meshctl)",
                              kind, ns, res->name, st->tr->name, kind);
    return MESH_OK;
}

/* A Service is the cluster's: applying one only checks that the cluster's says the same. */
static enum mesh_err check_service(struct mesh *mesh, const struct kube_state *st,
                                   const struct model *m, const struct mesh_resource *svc)
{
    const char *ns = mesh_resource_namespace(svc);
    ssize_t i = model_find(m, MESH_KIND_SERVICE, ns, svc->name);
    if (i < 0)
        return mesh_set_error(mesh, MESH_E_NOTFOUND,
                              "Service %s/%s: not in the cluster: with provider %s, Services are "
                              "the cluster's own Kubernetes Services: create it there "
                              "(kubectl apply), then apply again",
                              ns, svc->name, st->tr->name);
    const struct mesh_labels *want = &svc->labels;
    for (size_t w = 0; w < want->len; w++) {
        const char *value = want->items[w].value;
        if (!mesh_labels_has(&m->res[i]->labels, want->items[w].key, value, strlen(value)))
            return mesh_set_error(mesh, MESH_E_INVALID,
                                  "Service %s/%s: the cluster's Service has no label %s=%s: "
                                  "with provider %s, Services are the cluster's own: label it "
                                  "there (kubectl label), then apply again",
                                  ns, svc->name, want->items[w].key, want->items[w].value,
                                  st->tr->name);
    }
    return MESH_OK;
}

static enum mesh_err kube_apply(struct mesh *mesh, void *state,
                                const struct mesh_resource *const *res, size_t n,
                                struct mesh_apply_result *results)
{
    struct kube_state *st = state;
    struct model before = {0}, after = {0};
    enum mesh_err err = read_model(mesh, st, &before);

    if (err != MESH_OK)
        goto out;
    model_copy(&before, -1, n, &after);
    bool changed = false;
    for (size_t i = 0; i < n; i++) {
        const char *ns = mesh_resource_namespace(res[i]);
        ssize_t at = model_find(&before, res[i]->kind, ns, res[i]->name);
        results[i] = (struct mesh_apply_result){.outcome = MESH_APPLY_CREATED};
        if ((err = check_kind(mesh, st, res[i])) != MESH_OK)
            goto out;
        if (res[i]->kind == MESH_KIND_SERVICE) {
            if ((err = check_service(mesh, st, &before, res[i])) != MESH_OK)
                goto out;
            results[i].outcome = MESH_APPLY_UNCHANGED;
            continue;
        }
        if (at >= 0 && mesh_model_same_content(before.res[at], res[i])) {
            results[i].outcome = MESH_APPLY_UNCHANGED;
            continue;
        }
        if (at >= 0)
            results[i].outcome = MESH_APPLY_CONFIGURED;
        ssize_t cur = model_find(&after, res[i]->kind, ns, res[i]->name);
        struct mesh_resource *copy = mesh_resource_clone(res[i]);
        copy->resource_version = copy->generation = 0;
        if (cur >= 0) {
            mesh_resource_free(after.res[cur]);
            after.res[cur] = copy;
        } else {
            after.res[after.n++] = copy;
        }
        changed = true;
    }
    if (changed)
        err = write_model(mesh, st, &before, &after);
out:
    model_clear(&before);
    model_clear(&after);
    return err;
}

static enum mesh_err kube_get(struct mesh *mesh, void *state, enum mesh_kind kind, const char *ns,
                              const char *name, struct mesh_resource **out)
{
    struct kube_state *st = state;
    struct model m = {0};
    enum mesh_err err = read_model(mesh, st, &m);
    if (err != MESH_OK)
        goto out;
    ssize_t i = model_find(&m, kind, ns, name);
    if (i < 0) {
        err = MESH_E_NOTFOUND; /* worded by the front end, as for every provider */
        goto out;
    }
    *out = m.res[i];
    m.res[i] = NULL; /* the caller's now */
out:
    model_clear(&m);
    return err;
}

static enum mesh_err kube_list(struct mesh *mesh, void *state, enum mesh_kind kind, const char *ns,
                               struct mesh_resource ***out, size_t *n)
{
    struct kube_state *st = state;
    struct model m = {0};
    enum mesh_err err = read_model(mesh, st, &m);
    if (err != MESH_OK)
        goto out;
    *out = xcalloc(m.n + 1, sizeof(**out));
    *n = 0;
    /* The read is sorted by kind, namespace, name: so is the list. */
    for (size_t i = 0; i < m.n; i++) {
        if (m.res[i]->kind != kind || (ns && strcmp(mesh_resource_namespace(m.res[i]), ns) != 0))
            continue;
        (*out)[(*n)++] = m.res[i];
        m.res[i] = NULL;
    }
out:
    model_clear(&m);
    return err;
}

static enum mesh_err kube_remove(struct mesh *mesh, void *state, enum mesh_kind kind,
                                 const char *ns, const char *name)
{
    struct kube_state *st = state;
    struct model before = {0}, after = {0};
    enum mesh_err err = read_model(mesh, st, &before);
    if (err != MESH_OK)
        goto out;
    ssize_t at = model_find(&before, kind, ns, name);
    if (at < 0) {
        err = MESH_E_NOTFOUND; /* worded by the front end, as for every provider */
        goto out;
    }
    if (kind == MESH_KIND_SERVICE) {
        err = mesh_set_error(mesh, MESH_E_UNSUPPORTED,
                             "Service %s/%s: with provider %s, Services are the cluster's own: "
                             "delete it there (kubectl delete service)",
                             ns, name, st->tr->name);
        goto out;
    }
    model_copy(&before, at, 0, &after);
    err = write_model(mesh, st, &before, &after);
out:
    model_clear(&before);
    model_clear(&after);
    return err;
}

const struct mesh_provider_ops mesh_istio_provider = {
    .name = "istio",
    .open = kube_open,
    .close = kube_close,
    .apply = kube_apply,
    .get = kube_get,
    .list = kube_list,
    .remove = kube_remove,
};

const struct mesh_provider_ops mesh_linkerd_provider = {
    .name = "linkerd",
    .open = kube_open,
    .close = kube_close,
    .apply = kube_apply,
    .get = kube_get,
    .list = kube_list,
    .remove = kube_remove,
};
