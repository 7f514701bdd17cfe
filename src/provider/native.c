/* SPDX-License-Identifier: Apache-2.0 */
/* The native provider: resources kept as canonical JSON in the embedded store, one transaction
 * per apply; or, when mesh_config.server is set, the same calls made to meshd (remote.c). */
#include "native.h"

#include <stdlib.h>
#include <string.h>

#include "mesh/mesh.h"
#include "model/model.h"
#include "store/store.h"

#define DEFAULT_STORE_DIR "./.mesh"

/* The store directory: the config's, else $MESH_STORE, else ./.mesh. */
static const char *store_dir(const struct mesh_config *cfg)
{
    const char *env = getenv("MESH_STORE");

    if (cfg->store_dir && cfg->store_dir[0])
        return cfg->store_dir;
    if (env && env[0])
        return env;
    return DEFAULT_STORE_DIR;
}

static enum mesh_err store_open(struct mesh *mesh, const struct mesh_config *cfg, void **state)
{
    struct mesh_store *st = NULL;
    char *msg = NULL;
    enum mesh_err err;

    *state = NULL;
    const char *dir = store_dir(cfg);
    err = mesh_store_open_sqlite(dir, &st, &msg);
    if (err != MESH_OK) {
        /* The store's message already names the directory. */
        mesh_set_error(mesh, err, "%s", msg ? msg : mesh_strerror(err));
        goto out;
    }
    *state = st;
out:
    free(msg);
    return err;
}

static void store_close(void *state)
{
    mesh_store_close(state);
}

/* Reports a store failure about one resource; returns err. */
static enum mesh_err store_failed(struct mesh *mesh, const struct mesh_store *st, enum mesh_err err,
                                  const char *kind, const char *ns, const char *name)
{
    return mesh_set_error(mesh, err, "%s %s/%s: %s", kind, ns, name, mesh_store_error(st));
}

static struct mesh_apply_result apply_result(const struct mesh_store_put_result *put)
{
    return (struct mesh_apply_result){
        .outcome = put->created     ? MESH_APPLY_CREATED
                   : put->unchanged ? MESH_APPLY_UNCHANGED
                                    : MESH_APPLY_CONFIGURED,
        .resource_version = put->resource_version,
        .generation = put->generation,
    };
}

static enum mesh_err put_one(struct mesh *mesh, struct mesh_store *st,
                             const struct mesh_resource *res, struct mesh_apply_result *result)
{
    struct mesh_store_put_result put = {0};
    const char *kind = mesh_kind_name(res->kind);
    const char *ns = mesh_resource_namespace(res);
    char *body = NULL;

    enum mesh_err err = mesh_model_canonical_json(res, &body);
    if (err != MESH_OK) {
        mesh_set_error(mesh, err, "%s %s/%s: cannot encode: %s", kind, ns, res->name,
                       mesh_strerror(err));
        goto out;
    }
    err = st->ops->put(st, kind, ns, res->name, body, res->resource_version, &put);
    if (err != MESH_OK) {
        store_failed(mesh, st, err, kind, ns, res->name);
        goto out;
    }
    *result = apply_result(&put);
out:
    free(body);
    return err;
}

static enum mesh_err store_apply(struct mesh *mesh, void *state,
                                 const struct mesh_resource *const *res, size_t n,
                                 struct mesh_apply_result *results)
{
    struct mesh_store *st = state;

    enum mesh_err err = st->ops->begin(st);
    if (err != MESH_OK)
        return mesh_set_error(mesh, err, "store: cannot begin a transaction: %s",
                              mesh_store_error(st));
    for (size_t i = 0; i < n; i++) {
        err = put_one(mesh, st, res[i], &results[i]);
        if (err != MESH_OK)
            goto fail;
    }
    err = st->ops->commit(st);
    if (err != MESH_OK) {
        mesh_set_error(mesh, err, "store: cannot commit: %s", mesh_store_error(st));
        goto fail;
    }
    return MESH_OK;
fail:
    /* All or none: nothing of this apply stays in the store. */
    st->ops->rollback(st);
    return err;
}

static enum mesh_err store_restore(struct mesh *mesh, void *state,
                                   const struct mesh_resource *const *res, size_t n,
                                   struct mesh_apply_result *results, enum mesh_restore_mode *mode)
{
    struct mesh_store *st = state;
    struct mesh_store_restore_item *items = calloc(n, sizeof(*items));
    struct mesh_store_put_result *put = calloc(n, sizeof(*put));
    char **bodies = calloc(n, sizeof(*bodies));
    bool kept = false, in_tx = false;
    enum mesh_err err = MESH_OK;

    if (!items || !put || !bodies) {
        err = mesh_set_error(mesh, MESH_E_NOMEM, "restore: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        items[i] = (struct mesh_store_restore_item){
            .kind = mesh_kind_name(res[i]->kind),
            .ns = mesh_resource_namespace(res[i]),
            .name = res[i]->name,
            .resource_version = res[i]->resource_version,
            .generation = res[i]->generation,
        };
        err = mesh_model_canonical_json(res[i], &bodies[i]);
        if (err != MESH_OK) {
            mesh_set_error(mesh, err, "%s %s/%s: cannot encode: %s", items[i].kind, items[i].ns,
                           items[i].name, mesh_strerror(err));
            goto out;
        }
        items[i].body = bodies[i];
    }
    err = st->ops->begin(st);
    if (err != MESH_OK) {
        mesh_set_error(mesh, err, "store: cannot begin a transaction: %s", mesh_store_error(st));
        goto out;
    }
    in_tx = true;
    err = mesh_store_restore(st, items, n, put, &kept);
    if (err != MESH_OK) {
        /* The store's message names the resource ("put VirtualService default/x: ..."). */
        mesh_set_error(mesh, err, "%s", mesh_store_error(st));
        goto out;
    }
    err = st->ops->commit(st);
    if (err != MESH_OK) {
        mesh_set_error(mesh, err, "store: cannot commit: %s", mesh_store_error(st));
        goto out;
    }
    in_tx = false;
    for (size_t i = 0; i < n; i++)
        results[i] = apply_result(&put[i]);
    *mode = kept ? MESH_RESTORE_VERSIONS_KEPT : MESH_RESTORE_APPLIED;
out:
    if (in_tx)
        st->ops->rollback(st); /* all or none */
    for (size_t i = 0; bodies && i < n; i++)
        free(bodies[i]);
    free(bodies);
    free(put);
    free(items);
    return err;
}

/* Decodes a stored record into a new resource carrying the record's versions. */
static enum mesh_err decode_record(struct mesh *mesh, const struct mesh_store_record *rec,
                                   struct mesh_resource **out)
{
    struct mesh_resource *res = NULL;
    char *msg = NULL;

    enum mesh_err err = mesh_model_from_json(rec->body, &res, &msg);
    if (err != MESH_OK) {
        /* The store only holds what we validated: an unreadable body is corruption. */
        err = mesh_set_error(mesh, MESH_E_INTERNAL, "stored %s %s/%s is unreadable: %s", rec->kind,
                             rec->ns, rec->name, msg ? msg : mesh_strerror(err));
        goto out;
    }
    if (strcmp(mesh_kind_name(res->kind), rec->kind) != 0) {
        err = mesh_set_error(mesh, MESH_E_INTERNAL, "stored %s %s/%s holds a %s", rec->kind,
                             rec->ns, rec->name, mesh_kind_name(res->kind));
        goto out;
    }
    res->resource_version = rec->resource_version;
    res->generation = rec->generation;
    *out = res;
    res = NULL; /* the caller owns it now */
out:
    mesh_resource_free(res);
    free(msg);
    return err;
}

static enum mesh_err store_get(struct mesh *mesh, void *state, enum mesh_kind kind, const char *ns,
                               const char *name, struct mesh_resource **out)
{
    struct mesh_store *st = state;
    struct mesh_store_record rec = {0};
    const char *kind_name = mesh_kind_name(kind);

    *out = NULL;
    enum mesh_err err = st->ops->get(st, kind_name, ns, name, &rec);
    if (err != MESH_OK) {
        store_failed(mesh, st, err, kind_name, ns, name);
        goto out;
    }
    err = decode_record(mesh, &rec, out);
out:
    mesh_store_record_clear(&rec);
    return err;
}

static enum mesh_err store_list(struct mesh *mesh, void *state, enum mesh_kind kind, const char *ns,
                                struct mesh_resource ***out, size_t *n)
{
    struct mesh_store *st = state;
    struct mesh_store_record *recs = NULL;
    struct mesh_resource **list = NULL;
    size_t n_recs = 0, done = 0;
    const char *kind_name = mesh_kind_name(kind);

    *out = NULL;
    *n = 0;
    enum mesh_err err = st->ops->list(st, kind_name, ns, &recs, &n_recs);
    if (err != MESH_OK) {
        mesh_set_error(mesh, err, "list %s in %s: %s", kind_name, ns ? ns : "every namespace",
                       mesh_store_error(st));
        goto out;
    }
    list = calloc(n_recs ? n_recs : 1, sizeof(*list));
    if (!list) {
        err = mesh_set_error(mesh, MESH_E_NOMEM, "list %s: out of memory", kind_name);
        goto out;
    }
    for (; done < n_recs; done++) {
        err = decode_record(mesh, &recs[done], &list[done]);
        if (err != MESH_OK)
            goto out;
    }
    *out = list;
    *n = n_recs;
    list = NULL; /* the caller owns it now */
out:
    mesh_resource_list_free(list, done);
    mesh_store_records_free(recs, n_recs);
    return err;
}

static enum mesh_err store_remove(struct mesh *mesh, void *state, enum mesh_kind kind,
                                  const char *ns, const char *name)
{
    struct mesh_store *st = state;
    const char *kind_name = mesh_kind_name(kind);

    enum mesh_err err = st->ops->remove(st, kind_name, ns, name, 0);
    if (err != MESH_OK)
        return store_failed(mesh, st, err, kind_name, ns, name);
    return MESH_OK;
}

static const struct mesh_provider_ops store_ops = {
    .name = "native",
    .open = store_open,
    .close = store_close,
    .apply = store_apply,
    .get = store_get,
    .list = store_list,
    .remove = store_remove,
    .restore = store_restore,
};

/* What one native mesh talks to: the embedded store or meshd, chosen once at open. */
struct native {
    const struct mesh_provider_ops *backend;
    void *state;
};

static enum mesh_err native_open(struct mesh *mesh, const struct mesh_config *cfg, void **state)
{
    struct native *nat = calloc(1, sizeof(*nat));

    *state = NULL;
    if (!nat)
        return mesh_set_error(mesh, MESH_E_NOMEM, "provider \"native\": out of memory");
    nat->backend = cfg->server && cfg->server[0] ? &mesh_native_remote_ops : &store_ops;
    enum mesh_err err = nat->backend->open(mesh, cfg, &nat->state);
    if (err != MESH_OK) {
        free(nat);
        return err;
    }
    *state = nat;
    return MESH_OK;
}

static void native_close(void *state)
{
    struct native *nat = state;
    if (!nat)
        return;
    nat->backend->close(nat->state);
    free(nat);
}

static enum mesh_err native_apply(struct mesh *mesh, void *state,
                                  const struct mesh_resource *const *res, size_t n,
                                  struct mesh_apply_result *results)
{
    struct native *nat = state;
    return nat->backend->apply(mesh, nat->state, res, n, results);
}

static enum mesh_err native_get(struct mesh *mesh, void *state, enum mesh_kind kind, const char *ns,
                                const char *name, struct mesh_resource **out)
{
    struct native *nat = state;
    return nat->backend->get(mesh, nat->state, kind, ns, name, out);
}

static enum mesh_err native_list(struct mesh *mesh, void *state, enum mesh_kind kind,
                                 const char *ns, struct mesh_resource ***out, size_t *n)
{
    struct native *nat = state;
    return nat->backend->list(mesh, nat->state, kind, ns, out, n);
}

static enum mesh_err native_remove(struct mesh *mesh, void *state, enum mesh_kind kind,
                                   const char *ns, const char *name)
{
    struct native *nat = state;
    return nat->backend->remove(mesh, nat->state, kind, ns, name);
}

static enum mesh_err native_restore(struct mesh *mesh, void *state,
                                    const struct mesh_resource *const *res, size_t n,
                                    struct mesh_apply_result *results, enum mesh_restore_mode *mode)
{
    struct native *nat = state;
    return nat->backend->restore(mesh, nat->state, res, n, results, mode);
}

const struct mesh_provider_ops mesh_native_provider = {
    .name = "native",
    .open = native_open,
    .close = native_close,
    .apply = native_apply,
    .get = native_get,
    .list = native_list,
    .remove = native_remove,
    .restore = native_restore,
};
