/* SPDX-License-Identifier: Apache-2.0 */
/* meshctl apply / diff against a Kubernetes cluster (kube_apply.h). */
#include "kube_apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "diff.h"
#include "kube/client.h"
#include "kube/cluster.h"
#include "kube/fields.h"
#include "provider_input.h"

#define MANAGED_SELECTOR MESH_MANAGED_BY_LABEL "=" MESH_MANAGED_BY_VALUE

/* The kinds prune lists, per provider, with the version to list them at when this render has no
 * object of the kind (else the rendered object's version is used): one every release we render
 * for still serves. Not the core Service and Namespace: those are the user's own objects, which
 * we only annotate (never label), so they are never ours to delete. */
struct prune_kind {
    const char *provider;
    const char *api_version;
    const char *kind;
};

static const struct prune_kind prune_kinds[] = {
    {"istio", "networking.istio.io/v1beta1", "VirtualService"},
    {"istio", "networking.istio.io/v1beta1", "DestinationRule"},
    {"istio", "networking.istio.io/v1beta1", "Gateway"},
    {"istio", "security.istio.io/v1beta1", "PeerAuthentication"},
    {"istio", "security.istio.io/v1beta1", "AuthorizationPolicy"},
    {"istio", "telemetry.istio.io/v1alpha1", "Telemetry"},
    {"linkerd", "policy.linkerd.io/v1beta1", "Server"},
    {"linkerd", "policy.linkerd.io/v1beta1", "HTTPRoute"},
    {"linkerd", "policy.linkerd.io/v1alpha1", "AuthorizationPolicy"},
    {"linkerd", "policy.linkerd.io/v1alpha1", "MeshTLSAuthentication"},
    {"linkerd", "policy.linkerd.io/v1alpha1", "NetworkAuthentication"},
};

#define N_PRUNE_KINDS (sizeof(prune_kinds) / sizeof(prune_kinds[0]))

/* --- flags --- */

int cli_kube_option(struct cli_kube_opts *o, const struct cli_command *cmd, int c, const char *arg)
{
    switch (c) {
    case CLI_KUBE_OPT_PROVIDER:
        o->provider = arg;
        return CLI_EXIT_OK;
    case CLI_KUBE_OPT_VERSION:
        o->version = arg;
        break;
    case CLI_KUBE_OPT_ALLOW_PARTIAL:
        o->allow_partial = true;
        break;
    case CLI_KUBE_OPT_CONTEXT:
        o->context = arg;
        break;
    case CLI_KUBE_OPT_KUBECONFIG:
        o->kubeconfig = arg;
        break;
    case 'n':
    case CLI_KUBE_OPT_NAMESPACE:
        o->ns = arg;
        break;
    case CLI_KUBE_OPT_TIMEOUT: {
        char *end = NULL;
        double s = strtod(arg, &end);
        if (!end || *end || !(s > 0) || s > 3600)
            return cli_usage_error(cmd, "--timeout takes seconds, from 0.001 to 3600");
        o->timeout_ms = (long)(s * 1000 + 0.5) ? (long)(s * 1000 + 0.5) : 1;
        break;
    }
    case CLI_KUBE_OPT_FORCE:
        o->force = true;
        break;
    case CLI_KUBE_OPT_PRUNE:
        o->prune = true;
        break;
    default:
        return -1;
    }
    o->any = true;
    return CLI_EXIT_OK;
}

int cli_kube_check_flags(const struct cli_kube_opts *o, const struct cli_command *cmd)
{
    if (!o->provider)
        return CLI_EXIT_OK;
    if (strcmp(o->provider, "native") == 0) {
        if (o->any)
            return cli_usage_error(cmd, "--provider native applies to the store: --version, "
                                        "--allow-partial, --context, --kubeconfig, --namespace, "
                                        "--timeout, --force and --prune are for a cluster "
                                        "(istio, linkerd)");
        return CLI_EXIT_OK;
    }
    if (!mesh_translator_find(o->provider))
        return cli_usage_error(cmd, "unknown provider \"%s\" (use istio, linkerd or native)",
                               o->provider);
    return CLI_EXIT_OK;
}

bool cli_kube_wanted(const struct cli_input *in, const struct cli_kube_opts *o)
{
    if (o->provider)
        return strcmp(o->provider, "native") != 0;
    return o->any || cli_provider_named(in) != NULL;
}

/* --- the cluster --- */

/* What apply and diff start with: the translation, and the cluster checked for its provider. */
struct session {
    struct mesh_translation t;
    const char *provider;
    struct mesh_kube_cluster cluster;
};

static void session_close(struct session *s)
{
    mesh_translation_clear(&s->t);
    mesh_kube_cluster_close(&s->cluster);
}

static int session_open(const struct cli_input *in, const struct cli_kube_opts *o,
                        struct session *s)
{
    const struct mesh_kubernetes_config *kc = cli_provider_kube_config(in);
    /* The flags win over the input's KubernetesConfig, field by field. */
    struct mesh_kube_target target = {
        .kubeconfig = o->kubeconfig ? o->kubeconfig
                      : kc          ? kc->kubeconfig
                                    : NULL,
        .context = o->context ? o->context
                   : kc       ? kc->context
                              : NULL,
        .ns = o->ns ? o->ns
              : kc  ? kc->target_namespace
                    : NULL,
        .timeout_ms = o->timeout_ms,
    };
    char *errmsg = NULL, *version = NULL;
    int rc =
        cli_provider_translate(in, o->provider, o->version, o->allow_partial, &s->t, &s->provider);
    if (rc != CLI_EXIT_OK)
        return rc;
    cli_provider_print_warnings(&s->t);
    enum mesh_err err = mesh_kube_cluster_open(&target, &s->cluster, &errmsg);
    if (err == MESH_OK)
        err = mesh_kube_precheck(&s->cluster, s->provider, &version, &errmsg);
    if (err != MESH_OK)
        rc = cli_error("%s", errmsg ? errmsg : mesh_strerror(err));
    free(version);
    free(errmsg);
    return rc;
}

static const char *text_at(const struct mesh_node *map, const char *key)
{
    const struct mesh_node *n = mesh_node_map_get(map, key);
    return n && n->type == MESH_NODE_SCALAR ? n->text : NULL;
}

/* An object's identity, as printed: "VirtualService/default/payment", "Namespace/default". */
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

static char *ident_label(const struct ident *id)
{
    return id->ns ? xasprintf("%s/%s/%s", id->kind, id->ns, id->name)
                  : xasprintf("%s/%s", id->kind, id->name);
}

/* The API group of "group/version" ("" for "v1"), compared without copying. */
static bool same_group(const char *a, const char *b)
{
    const char *sa = strchr(a, '/'), *sb = strchr(b, '/');
    size_t la = sa ? (size_t)(sa - a) : 0, lb = sb ? (size_t)(sb - b) : 0;
    return la == lb && strncmp(a, b, la) == 0;
}

/* --- apply --- */

/* Applies one object; prints its line, or its error. *failed set on error. */
static void apply_one(struct mesh_kube_client *c, const struct mesh_node *obj, bool force,
                      bool *failed)
{
    struct ident id = ident_of(obj);
    struct mesh_node *before = NULL, *after = NULL;
    char *errmsg = NULL, *label = ident_label(&id);
    bool created = false;
    enum mesh_err err = mesh_kube_get(c, id.api_version, id.kind, id.ns, id.name, &before, &errmsg);

    if (err == MESH_E_NOTFOUND) {
        free(errmsg);
        errmsg = NULL;
        if (strcmp(id.api_version, "v1") == 0 && strcmp(id.kind, "Service") == 0) {
            /* What we render for a Service is annotations for the user's own: without it
             * there is nothing to annotate, and the server would refuse it for lack of ports. */
            cli_error("%s does not exist: what meshctl renders for it are annotations for your own "
                      "Service: create it (with its ports) first, then apply again",
                      label);
            *failed = true;
            goto out;
        }
        err = MESH_OK;
    }
    if (err == MESH_OK)
        err = mesh_kube_apply(c, obj, force, &after, &created, &errmsg);
    if (err == MESH_E_CONFLICT) {
        cli_error("%s (another field manager owns these fields: --force takes them over for "
                  "meshctl)",
                  errmsg);
        *failed = true;
        goto out;
    }
    if (err != MESH_OK) {
        cli_error("%s", errmsg ? errmsg : mesh_strerror(err));
        *failed = true;
        goto out;
    }
    const char *rv_before = text_at(mesh_node_map_get(before, "metadata"), "resourceVersion");
    const char *rv_after = text_at(mesh_node_map_get(after, "metadata"), "resourceVersion");
    const char *outcome = !before || created                                      ? "created"
                          : rv_before && rv_after && !strcmp(rv_before, rv_after) ? "unchanged"
                                                                                  : "configured";
    printf("%s %s\n", label, outcome);
    fflush(stdout);
out:
    mesh_node_free(before);
    mesh_node_free(after);
    free(errmsg);
    free(label);
}

/* Whether the render holds an object of api_version's group, kind, ns and name. */
static bool rendered(const struct mesh_translation *t, const char *api_version, const char *kind,
                     const char *ns, const char *name)
{
    for (size_t i = 0; i < t->n_objects; i++) {
        struct ident id = ident_of(t->objects[i]);
        if (same_group(id.api_version, api_version) && strcmp(id.kind, kind) == 0 && id.ns &&
            strcmp(id.ns, ns) == 0 && strcmp(id.name, name) == 0)
            return true;
    }
    return false;
}

/* The version to list kind at: the rendered object's when there is one, else the table's. */
static const char *list_version(const struct mesh_translation *t, const struct prune_kind *pk)
{
    for (size_t i = 0; i < t->n_objects; i++) {
        struct ident id = ident_of(t->objects[i]);
        if (strcmp(id.kind, pk->kind) == 0 && same_group(id.api_version, pk->api_version))
            return id.api_version;
    }
    return pk->api_version;
}

static void add_ns(const char ***nss, size_t *n, const char *ns)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*nss)[i], ns) == 0)
            return;
    *nss = xrealloc(*nss, (*n + 1) * sizeof(**nss));
    (*nss)[(*n)++] = ns;
}

/* Deletes what is labelled ours and no longer rendered. Returns an enum cli_exit value. */
static int prune(struct session *s)
{
    const char **nss = NULL;
    size_t n_ns = 0;
    int rc = CLI_EXIT_OK;

    for (size_t i = 0; i < s->t.n_objects; i++) {
        struct ident id = ident_of(s->t.objects[i]);
        if (id.ns)
            add_ns(&nss, &n_ns, id.ns);
    }
    add_ns(&nss, &n_ns, s->cluster.ns);
    for (size_t k = 0; k < N_PRUNE_KINDS; k++) {
        const struct prune_kind *pk = &prune_kinds[k];
        if (strcmp(pk->provider, s->provider) != 0)
            continue;
        const char *api = list_version(&s->t, pk);
        for (size_t j = 0; j < n_ns; j++) {
            struct mesh_node *items = NULL;
            char *errmsg = NULL;
            enum mesh_err err = mesh_kube_list(s->cluster.client, api, pk->kind, nss[j],
                                               MANAGED_SELECTOR, &items, &errmsg);
            for (size_t i = 0; err == MESH_OK && i < items->len; i++) {
                const struct mesh_node *meta = mesh_node_map_get(items->items[i], "metadata");
                const char *name = text_at(meta, "name");
                if (!name || rendered(&s->t, api, pk->kind, nss[j], name))
                    continue;
                err = mesh_kube_delete(s->cluster.client, api, pk->kind, nss[j], name, &errmsg);
                if (err == MESH_E_NOTFOUND) { /* gone meanwhile: what prune wanted */
                    free(errmsg);
                    errmsg = NULL;
                    err = MESH_OK;
                    continue;
                }
                if (err == MESH_OK) {
                    printf("%s/%s/%s pruned\n", pk->kind, nss[j], name);
                    fflush(stdout);
                }
            }
            if (err != MESH_OK)
                rc = cli_error("%s", errmsg ? errmsg : mesh_strerror(err));
            mesh_node_free(items);
            free(errmsg);
            if (rc != CLI_EXIT_OK)
                goto out;
        }
    }
out:
    free(nss);
    return rc;
}

int cli_kube_apply(const struct cli_input *in, const struct cli_kube_opts *o)
{
    struct session s = {0};
    bool failed = false;
    int rc = session_open(in, o, &s);
    if (rc != CLI_EXIT_OK)
        goto out;
    /* Every object is tried, as kubectl does, so that one refusal shows all the others too. */
    for (size_t i = 0; i < s.t.n_objects; i++)
        apply_one(s.cluster.client, s.t.objects[i], o->force, &failed);
    if (failed) {
        rc = CLI_EXIT_ERROR;
        if (o->prune)
            fprintf(stderr, "nothing pruned: not every object was applied\n");
        goto out;
    }
    if (o->prune)
        rc = prune(&s);
out:
    session_close(&s);
    return rc;
}

/* --- diff --- */

static enum mesh_err yaml_of(const struct mesh_node *n, char **out)
{
    *out = NULL;
    if (!n) {
        *out = xstrdup("");
        return MESH_OK;
    }
    return mesh_yaml_write(n, out);
}

int cli_kube_diff(const struct cli_input *in, const struct cli_kube_opts *o, bool *differs)
{
    struct session s = {0};
    int rc = session_open(in, o, &s);

    *differs = false;
    for (size_t i = 0; rc == CLI_EXIT_OK && i < s.t.n_objects; i++) {
        const struct mesh_node *obj = s.t.objects[i];
        struct ident id = ident_of(obj);
        struct mesh_node *live = NULL, *kept = NULL;
        char *errmsg = NULL, *live_yaml = NULL, *file_yaml = NULL, *label = ident_label(&id);
        char *live_label = NULL, *file_label = NULL;
        enum mesh_err err = mesh_kube_get(s.cluster.client, id.api_version, id.kind, id.ns, id.name,
                                          &live, &errmsg);
        if (err == MESH_E_NOTFOUND)
            err = MESH_OK;
        if (err != MESH_OK) {
            rc = cli_error("%s", errmsg ? errmsg : mesh_strerror(err));
            goto next;
        }
        kept = mesh_kube_fields_kept(live, obj);
        if (yaml_of(kept, &live_yaml) != MESH_OK || yaml_of(obj, &file_yaml) != MESH_OK) {
            rc = cli_error("cannot print %s (out of memory)", label);
            goto next;
        }
        live_label = xasprintf("live/%s", label);
        file_label = xasprintf("rendered/%s", label);
        if (cli_diff_unified(live_yaml, file_yaml, live_label, file_label, stdout))
            *differs = true;
    next:
        mesh_node_free(live);
        mesh_node_free(kept);
        free(errmsg);
        free(live_yaml);
        free(file_yaml);
        free(live_label);
        free(file_label);
        free(label);
    }
    session_close(&s);
    return rc;
}
