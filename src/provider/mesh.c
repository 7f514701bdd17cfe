/* SPDX-License-Identifier: Apache-2.0 */
/* The Mesh Interface front end: struct mesh, its last error, validation before apply, and the
 * seed's typed calls over whichever provider the mesh was opened with. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "mesh/mesh.h"
#include "registry.h"

struct mesh {
    const struct mesh_provider_ops *ops;
    void *state;            /* the provider's, from ops->open */
    enum mesh_err last_err; /* of the last call; MESH_OK when it succeeded */
    char *last_error;       /* its message, malloc'ed; NULL when none */
};

static void clear_error(struct mesh *mesh)
{
    free(mesh->last_error);
    mesh->last_error = NULL;
    mesh->last_err = MESH_OK;
}

enum mesh_err mesh_set_error(struct mesh *mesh, enum mesh_err err, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;

    if (!mesh)
        return err;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    /* Formatted before the old message is freed: an argument may be mesh_last_error(mesh).
     * Without memory for it, mesh_last_error() falls back to mesh_strerror(err). */
    if (len >= 0 && (msg = malloc((size_t)len + 1))) {
        va_start(ap, fmt);
        vsnprintf(msg, (size_t)len + 1, fmt, ap);
        va_end(ap);
    }
    clear_error(mesh);
    mesh->last_error = msg;
    mesh->last_err = err;
    return err;
}

const char *mesh_last_error(const struct mesh *mesh)
{
    if (!mesh || mesh->last_err == MESH_OK)
        return "";
    return mesh->last_error ? mesh->last_error : mesh_strerror(mesh->last_err);
}

const char *mesh_provider_name(const struct mesh *mesh)
{
    return mesh ? mesh->ops->name : "";
}

/* A provider that failed without saying why still leaves the user a message. */
static enum mesh_err provider_failed(struct mesh *mesh, enum mesh_err err, const char *what)
{
    if (mesh->last_err == MESH_OK || !mesh->last_error)
        return mesh_set_error(mesh, err, "provider \"%s\": %s failed: %s", mesh->ops->name, what,
                              mesh_strerror(err));
    mesh->last_err = err;
    return err;
}

static const char *ns_or_default(const char *ns)
{
    return ns && ns[0] ? ns : MESH_DEFAULT_NAMESPACE;
}

static const char *kind_name(enum mesh_kind kind)
{
    const char *name = mesh_kind_name(kind);
    return name ? name : "unknown kind";
}

/* --- Opening and closing --- */

enum mesh_err mesh_new_verbose(const struct mesh_config *cfg, struct mesh **out, char **errmsg)
{
    struct mesh_config eff = {0};
    const struct mesh_provider_ops *ops = NULL;
    struct mesh *mesh = NULL;
    enum mesh_err err;

    if (errmsg)
        *errmsg = NULL;
    if (!out)
        return MESH_E_INVALID;
    *out = NULL;
    if (cfg)
        eff = *cfg;
    if (!eff.provider || !eff.provider[0])
        eff.provider = "native";

    err = mesh_registry_lookup(eff.provider, &ops, errmsg);
    if (err != MESH_OK)
        goto out;
    mesh = calloc(1, sizeof(*mesh));
    if (!mesh) {
        err = MESH_E_NOMEM;
        goto out;
    }
    mesh->ops = ops;
    err = ops->open(mesh, &eff, &mesh->state);
    if (err != MESH_OK) {
        if (errmsg)
            *errmsg = strdup(mesh_last_error(mesh));
        goto out;
    }
    *out = mesh;
    mesh = NULL; /* the caller owns it now */
out:
    if (errmsg && !*errmsg && err != MESH_OK)
        *errmsg = strdup(mesh_strerror(err));
    if (mesh)
        clear_error(mesh);
    free(mesh);
    return err;
}

enum mesh_err mesh_new(const struct mesh_config *cfg, struct mesh **out)
{
    return mesh_new_verbose(cfg, out, NULL);
}

void mesh_free(struct mesh *mesh)
{
    if (!mesh)
        return;
    mesh->ops->close(mesh->state);
    clear_error(mesh);
    free(mesh);
}

/* --- Generic resource calls --- */

/* Adds one line per problem of res (the index-th) to msg. MESH_E_INVALID when it has any.
 * The validator names the resource where a parser would name the file, so each line reads
 * "VirtualService default/x: spec.http_routes[0].destinations: weights sum to 95, must be 100". */
static enum mesh_err validate_one(const struct mesh_resource *res, size_t index,
                                  struct mesh_strbuf *msg)
{
    struct mesh_diags diags = {0};
    const char *sep = msg->len ? "\n" : "";

    if (!res) {
        mesh_strbuf_printf(msg, "%sresource %zu: missing (NULL)", sep, index);
        return MESH_E_INVALID;
    }
    enum mesh_err err = mesh_validate_resource(res, &diags);
    if (err != MESH_OK && diags.len == 0)
        mesh_strbuf_printf(msg, "%s%s %s/%s: %s", sep, kind_name(res->kind),
                           mesh_resource_namespace(res), res->name ? res->name : "(unnamed)",
                           mesh_strerror(err));
    for (size_t i = 0; i < diags.len; i++) {
        char *line = mesh_diag_format(&diags.items[i]);
        mesh_strbuf_printf(msg, "%s%s", msg->len ? "\n" : "", line);
        free(line);
    }
    mesh_diags_clear(&diags);
    return err;
}

/* Validates every resource, so that the user sees all problems at once. */
static enum mesh_err validate_all(struct mesh *mesh, const struct mesh_resource *const *res,
                                  size_t n)
{
    struct mesh_strbuf msg;
    enum mesh_err err = MESH_OK;

    mesh_strbuf_init(&msg, 0);
    for (size_t i = 0; i < n; i++) {
        enum mesh_err e = validate_one(res[i], i, &msg);
        if (e != MESH_OK && (err == MESH_OK || err == MESH_E_INVALID))
            err = e;
    }
    if (err != MESH_OK)
        mesh_set_error(mesh, err, "%s", msg.len ? msg.data : mesh_strerror(err));
    mesh_strbuf_free(&msg);
    return err;
}

/* What apply and restore check before a provider sees anything: resources given and valid,
 * and somewhere for the results (*tmp, freed by the caller, when the caller wants none). */
static enum mesh_err prepare_write(struct mesh *mesh, const char *what,
                                   const struct mesh_resource *const *res, size_t n,
                                   struct mesh_apply_result **results,
                                   struct mesh_apply_result **tmp)
{
    if (!res)
        return mesh_set_error(mesh, MESH_E_INVALID, "%s: no resources given", what);
    enum mesh_err err = validate_all(mesh, res, n);
    if (err != MESH_OK || *results)
        return err;
    /* Providers always fill n results; the caller just does not want them. */
    *tmp = calloc(n, sizeof(**tmp));
    if (!*tmp)
        return mesh_set_error(mesh, MESH_E_NOMEM, "%s: out of memory", what);
    *results = *tmp;
    return MESH_OK;
}

enum mesh_err mesh_apply(struct mesh *mesh, const struct mesh_resource *const *res, size_t n,
                         struct mesh_apply_result *results)
{
    struct mesh_apply_result *tmp = NULL;

    if (!mesh)
        return MESH_E_INVALID;
    clear_error(mesh);
    if (n == 0)
        return MESH_OK;
    enum mesh_err err = prepare_write(mesh, "apply", res, n, &results, &tmp);
    if (err != MESH_OK)
        goto out;
    err = mesh->ops->apply(mesh, mesh->state, res, n, results);
    if (err != MESH_OK)
        provider_failed(mesh, err, "apply");
out:
    free(tmp);
    return err;
}

/* The restore of a provider that cannot restore versions: the apply it was before. The copies
 * carry no versions, so that no resource_version of the backup is read as a conditional write. */
static enum mesh_err restore_by_apply(struct mesh *mesh, const struct mesh_resource *const *res,
                                      size_t n, struct mesh_apply_result *results)
{
    struct mesh_resource **copies = calloc(n, sizeof(*copies));
    enum mesh_err err = MESH_OK;
    size_t done = 0;

    if (!copies)
        return mesh_set_error(mesh, MESH_E_NOMEM, "restore: out of memory");
    for (; done < n; done++) {
        copies[done] = mesh_resource_clone(res[done]);
        if (!copies[done]) {
            err = mesh_set_error(mesh, MESH_E_NOMEM, "restore: out of memory");
            goto out;
        }
        copies[done]->resource_version = 0;
        copies[done]->generation = 0;
    }
    err = mesh->ops->apply(mesh, mesh->state, (const struct mesh_resource *const *)copies, n,
                           results);
    if (err != MESH_OK)
        provider_failed(mesh, err, "restore");
out:
    mesh_resource_list_free(copies, done);
    return err;
}

enum mesh_err mesh_restore(struct mesh *mesh, const struct mesh_resource *const *res, size_t n,
                           struct mesh_apply_result *results, enum mesh_restore_mode *mode)
{
    struct mesh_apply_result *tmp = NULL;
    enum mesh_restore_mode got = MESH_RESTORE_APPLIED;
    enum mesh_err err;

    if (mode)
        *mode = MESH_RESTORE_APPLIED;
    if (!mesh)
        return MESH_E_INVALID;
    clear_error(mesh);
    if (n == 0)
        return MESH_OK;
    err = prepare_write(mesh, "restore", res, n, &results, &tmp);
    if (err != MESH_OK)
        goto out;
    err = MESH_E_UNSUPPORTED;
    if (mesh->ops->restore)
        err = mesh->ops->restore(mesh, mesh->state, res, n, results, &got);
    if (err == MESH_E_UNSUPPORTED) {
        /* A custom provider without the call, or a meshd older than this libmesh. */
        clear_error(mesh);
        got = MESH_RESTORE_APPLIED;
        err = restore_by_apply(mesh, res, n, results);
    } else if (err != MESH_OK) {
        provider_failed(mesh, err, "restore");
    }
    if (err == MESH_OK && mode)
        *mode = got;
out:
    free(tmp);
    return err;
}

static enum mesh_err check_ref(struct mesh *mesh, const char *call, enum mesh_kind kind,
                               const char *name)
{
    if (!mesh_kind_name(kind))
        return mesh_set_error(mesh, MESH_E_INVALID, "%s: unknown kind %d", call, (int)kind);
    if (!name || !name[0])
        return mesh_set_error(mesh, MESH_E_INVALID, "%s %s: a name is required", call,
                              kind_name(kind));
    return MESH_OK;
}

/* The seed's troubleshooting message, with what was looked for. */
static enum mesh_err not_found(struct mesh *mesh, enum mesh_kind kind, const char *ns,
                               const char *name)
{
    return mesh_set_error(mesh, MESH_E_NOTFOUND, "Service not found: %s %s/%s", kind_name(kind), ns,
                          name);
}

/* A provider that hands back another kind than asked for is a bug in it; never pass it on. */
static enum mesh_err wrong_kind(struct mesh *mesh, const char *call, enum mesh_kind want,
                                const struct mesh_resource *got)
{
    return mesh_set_error(mesh, MESH_E_INTERNAL, "provider \"%s\": %s %s returned %s instead",
                          mesh->ops->name, call, kind_name(want),
                          got ? kind_name(got->kind) : "nothing");
}

enum mesh_err mesh_get(struct mesh *mesh, enum mesh_kind kind, const char *name, const char *ns,
                       struct mesh_resource **out)
{
    struct mesh_resource *res = NULL;
    enum mesh_err err;

    if (!mesh || !out)
        return MESH_E_INVALID;
    *out = NULL;
    clear_error(mesh);
    ns = ns_or_default(ns);
    err = check_ref(mesh, "get", kind, name);
    if (err != MESH_OK)
        return err;
    err = mesh->ops->get(mesh, mesh->state, kind, ns, name, &res);
    if (err == MESH_E_NOTFOUND)
        return not_found(mesh, kind, ns, name);
    if (err != MESH_OK)
        return provider_failed(mesh, err, "get");
    if (!res || res->kind != kind) {
        err = wrong_kind(mesh, "get", kind, res);
        mesh_resource_free(res);
        return err;
    }
    *out = res;
    return MESH_OK;
}

static int compare_resources(const void *a, const void *b)
{
    const struct mesh_resource *ra = *(const struct mesh_resource *const *)a;
    const struct mesh_resource *rb = *(const struct mesh_resource *const *)b;
    int c = strcmp(mesh_resource_namespace(ra), mesh_resource_namespace(rb));
    return c ? c : strcmp(ra->name ? ra->name : "", rb->name ? rb->name : "");
}

enum mesh_err mesh_list(struct mesh *mesh, enum mesh_kind kind, const char *ns,
                        struct mesh_resource ***out, size_t *n)
{
    struct mesh_resource **list = NULL;
    size_t len = 0;
    enum mesh_err err;

    if (!mesh || !out || !n)
        return MESH_E_INVALID;
    *out = NULL;
    *n = 0;
    clear_error(mesh);
    if (!mesh_kind_name(kind))
        return mesh_set_error(mesh, MESH_E_INVALID, "list: unknown kind %d", (int)kind);
    if (ns && !ns[0])
        ns = NULL;
    err = mesh->ops->list(mesh, mesh->state, kind, ns, &list, &len);
    if (err != MESH_OK)
        return provider_failed(mesh, err, "list");
    for (size_t i = 0; i < len; i++) {
        if (!list[i] || list[i]->kind != kind) {
            err = wrong_kind(mesh, "list", kind, list[i]);
            mesh_resource_list_free(list, len);
            return err;
        }
    }
    /* Sorted here, so that every provider lists in the documented order. */
    if (len > 1)
        qsort(list, len, sizeof(*list), compare_resources);
    *out = list;
    *n = len;
    return MESH_OK;
}

enum mesh_err mesh_delete(struct mesh *mesh, enum mesh_kind kind, const char *name, const char *ns)
{
    enum mesh_err err;

    if (!mesh)
        return MESH_E_INVALID;
    clear_error(mesh);
    ns = ns_or_default(ns);
    err = check_ref(mesh, "delete", kind, name);
    if (err != MESH_OK)
        return err;
    err = mesh->ops->remove(mesh, mesh->state, kind, ns, name);
    if (err == MESH_E_NOTFOUND)
        return not_found(mesh, kind, ns, name);
    if (err != MESH_OK)
        return provider_failed(mesh, err, "delete");
    return MESH_OK;
}

/* --- Typed calls --- */

static enum mesh_err apply_typed(struct mesh *mesh, enum mesh_kind kind,
                                 const struct mesh_resource *res)
{
    if (!mesh)
        return MESH_E_INVALID;
    if (!res)
        return mesh_set_error(mesh, MESH_E_INVALID, "apply %s: no resource given", kind_name(kind));
    if (res->kind != kind)
        return mesh_set_error(mesh, MESH_E_INVALID, "apply %s: given a %s", kind_name(kind),
                              kind_name(res->kind));
    return mesh_apply(mesh, &res, 1, NULL);
}

enum mesh_err mesh_apply_virtual_service(struct mesh *mesh, const struct mesh_virtual_service *vs)
{
    return apply_typed(mesh, MESH_KIND_VIRTUAL_SERVICE, vs ? &vs->res : NULL);
}

enum mesh_err mesh_delete_virtual_service(struct mesh *mesh, const char *name, const char *ns)
{
    return mesh_delete(mesh, MESH_KIND_VIRTUAL_SERVICE, name, ns);
}

enum mesh_err mesh_get_virtual_service(struct mesh *mesh, const char *name, const char *ns,
                                       struct mesh_virtual_service **out)
{
    struct mesh_resource *res = NULL;

    if (!out)
        return MESH_E_INVALID;
    *out = NULL;
    enum mesh_err err = mesh_get(mesh, MESH_KIND_VIRTUAL_SERVICE, name, ns, &res);
    if (err == MESH_OK) /* mesh_get checked the kind: res is the first member of a vs */
        *out = (struct mesh_virtual_service *)res;
    return err;
}

enum mesh_err mesh_list_virtual_services(struct mesh *mesh, const char *ns,
                                         struct mesh_virtual_service ***out, size_t *n)
{
    struct mesh_resource **list = NULL;
    struct mesh_virtual_service **typed = NULL;
    size_t len = 0;

    if (!out || !n)
        return MESH_E_INVALID;
    *out = NULL;
    *n = 0;
    enum mesh_err err = mesh_list(mesh, MESH_KIND_VIRTUAL_SERVICE, ns, &list, &len);
    if (err != MESH_OK)
        return err;
    typed = malloc((len ? len : 1) * sizeof(*typed));
    if (!typed) {
        mesh_resource_list_free(list, len);
        return mesh_set_error(mesh, MESH_E_NOMEM, "list VirtualService: out of memory");
    }
    for (size_t i = 0; i < len; i++) /* mesh_list checked every kind */
        typed[i] = (struct mesh_virtual_service *)list[i];
    free(list);
    *out = typed;
    *n = len;
    return MESH_OK;
}

void mesh_virtual_service_list_free(struct mesh_virtual_service **list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        mesh_virtual_service_free(list[i]);
    free(list);
}

enum mesh_err mesh_apply_security_policy(struct mesh *mesh, const struct mesh_security_policy *sp)
{
    return apply_typed(mesh, MESH_KIND_SECURITY_POLICY, sp ? &sp->res : NULL);
}

enum mesh_err mesh_delete_security_policy(struct mesh *mesh, const char *name, const char *ns)
{
    return mesh_delete(mesh, MESH_KIND_SECURITY_POLICY, name, ns);
}

enum mesh_err mesh_get_security_policy(struct mesh *mesh, const char *name, const char *ns,
                                       struct mesh_security_policy **out)
{
    struct mesh_resource *res = NULL;

    if (!out)
        return MESH_E_INVALID;
    *out = NULL;
    enum mesh_err err = mesh_get(mesh, MESH_KIND_SECURITY_POLICY, name, ns, &res);
    if (err == MESH_OK) /* mesh_get checked the kind: res is the first member of an sp */
        *out = (struct mesh_security_policy *)res;
    return err;
}

enum mesh_err mesh_list_security_policies(struct mesh *mesh, const char *ns,
                                          struct mesh_security_policy ***out, size_t *n)
{
    struct mesh_resource **list = NULL;
    struct mesh_security_policy **typed = NULL;
    size_t len = 0;

    if (!out || !n)
        return MESH_E_INVALID;
    *out = NULL;
    *n = 0;
    enum mesh_err err = mesh_list(mesh, MESH_KIND_SECURITY_POLICY, ns, &list, &len);
    if (err != MESH_OK)
        return err;
    typed = malloc((len ? len : 1) * sizeof(*typed));
    if (!typed) {
        mesh_resource_list_free(list, len);
        return mesh_set_error(mesh, MESH_E_NOMEM, "list SecurityPolicy: out of memory");
    }
    for (size_t i = 0; i < len; i++) /* mesh_list checked every kind */
        typed[i] = (struct mesh_security_policy *)list[i];
    free(list);
    *out = typed;
    *n = len;
    return MESH_OK;
}

void mesh_security_policy_list_free(struct mesh_security_policy **list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        mesh_security_policy_free(list[i]);
    free(list);
}

/* --- Resilience --- */

/* Splits "name", "name.namespace" or "name.namespace.svc" into *name and *ns (both malloc'ed;
 * *ns NULL when absent). */
static enum mesh_err split_service(struct mesh *mesh, const char *call, const char *service,
                                   char **name, char **ns)
{
    *name = NULL;
    *ns = NULL;
    if (!service || !service[0])
        return mesh_set_error(mesh, MESH_E_INVALID, "%s: a service name is required", call);

    size_t len = strlen(service);
    if (len > 4 && strcmp(service + len - 4, ".svc") == 0)
        len -= 4;
    const char *dot = memchr(service, '.', len);
    size_t name_len = dot ? (size_t)(dot - service) : len;
    const char *ns_start = dot ? dot + 1 : NULL;
    size_t ns_len = dot ? len - name_len - 1 : 0;
    if (name_len == 0 || (dot && (ns_len == 0 || memchr(ns_start, '.', ns_len))))
        return mesh_set_error(mesh, MESH_E_INVALID,
                              "%s: service \"%s\": expected name, name.namespace or "
                              "name.namespace.svc",
                              call, service);

    *name = strndup(service, name_len);
    *ns = dot ? strndup(ns_start, ns_len) : NULL;
    if (!*name || (dot && !*ns)) {
        free(*name);
        free(*ns);
        *name = *ns = NULL;
        return mesh_set_error(mesh, MESH_E_NOMEM, "%s: out of memory", call);
    }
    return MESH_OK;
}

enum mesh_err mesh_configure_circuit_breaker(struct mesh *mesh, const char *service,
                                             const struct mesh_circuit_breaker_config *cfg)
{
    static const char call[] = "configure_circuit_breaker";
    struct mesh_circuit_breaker *cb = NULL;
    char *name = NULL, *ns = NULL;
    enum mesh_err err;

    if (!mesh)
        return MESH_E_INVALID;
    if (!cfg)
        return mesh_set_error(mesh, MESH_E_INVALID, "%s: no config given", call);
    err = split_service(mesh, call, service, &name, &ns);
    if (err != MESH_OK)
        goto out;
    cb = mesh_circuit_breaker_new(name, ns);
    if (!cb || !(cb->service = strdup(name))) {
        err = mesh_set_error(mesh, MESH_E_NOMEM, "%s: out of memory", call);
        goto out;
    }
    cb->config = *cfg; /* a flat struct: nothing in it is owned */
    err = apply_typed(mesh, MESH_KIND_CIRCUIT_BREAKER, &cb->res);
out:
    mesh_circuit_breaker_free(cb);
    free(name);
    free(ns);
    return err;
}

enum mesh_err mesh_inject_fault(struct mesh *mesh, const char *service,
                                const struct mesh_fault *fault)
{
    static const char call[] = "inject_fault";
    struct mesh_fault_injection *fi = NULL;
    char *name = NULL, *ns = NULL;
    enum mesh_err err;

    if (!mesh)
        return MESH_E_INVALID;
    if (!fault)
        return mesh_set_error(mesh, MESH_E_INVALID, "%s: no fault given", call);
    err = split_service(mesh, call, service, &name, &ns);
    if (err != MESH_OK)
        goto out;
    fi = mesh_fault_injection_new(name, ns);
    if (!fi || !(fi->service = strdup(name))) {
        err = mesh_set_error(mesh, MESH_E_NOMEM, "%s: out of memory", call);
        goto out;
    }
    fi->fault = *fault; /* a flat struct: nothing in it is owned */
    err = apply_typed(mesh, MESH_KIND_FAULT_INJECTION, &fi->res);
out:
    mesh_fault_injection_free(fi);
    free(name);
    free(ns);
    return err;
}
